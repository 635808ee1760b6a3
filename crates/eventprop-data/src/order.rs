//! A generated order-of-events task with speaker and tempo variation (for tests,
//! benchmarks and `eventprop data order`): words are sequences of syllables, and every
//! class uses the same syllables in another order, so spike counts per channel carry
//! (almost) no class information — only the order does.
//!
//! There are `syllables` syllables, each a fixed burst pattern over a band of `band`
//! channels (centre uniform in `[band / 2, channels − band / 2]`): every channel of the band
//! fires `spikes_per_channel` spikes at offsets uniform in `[0, syllable_duration)`. A
//! class is a word, a distinct permutation of all the syllables (so `classes` may be at
//! most `syllables!`); templates and words are drawn from `task_seed`. A sample of class
//! `k` says its word with a speaker shift `Δc` (an integer uniform in `[−shift, shift]`,
//! added to every channel) and a tempo `s` (uniform in `[1 − tempo, 1 + tempo]`, stretching
//! every time): syllable `m` starts at `t_0 + m · (syllable_duration + gap) · s`, its spikes
//! at that onset plus `offset · s + N(0, jitter)`, with the word's start `t_0` uniform over
//! the room the stretched word leaves in `[0, duration)`. Events outside `[0, channels)` or
//! `[0, duration)` are left out; background noise of `noise_rate` Hz per channel comes on
//! top. Without shift, jitter and noise every sample has exactly the same spike count on
//! every channel.

use rand::seq::SliceRandom;
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::error::{Error, Result};
use crate::generated::{check_common, check_non_negative, generate};
use crate::sample::{Spike, SpikeSet};

/// Words of reordered syllables ([`order_task`]).
#[derive(Debug, Clone, PartialEq)]
pub struct OrderTask {
    /// Samples.
    pub samples: usize,
    /// Input channels.
    pub channels: usize,
    /// Classes (at most `syllables!`).
    pub classes: usize,
    /// Sample duration (s).
    pub duration: f64,
    /// Syllables in every word (each word is a permutation of all of them).
    pub syllables: usize,
    /// Duration of a syllable at tempo 1 (s).
    pub syllable_duration: f64,
    /// Pause between syllables at tempo 1 (s).
    pub gap: f64,
    /// Channels of a syllable's band.
    pub band: usize,
    /// Spikes of every channel of a band in one syllable.
    pub spikes_per_channel: usize,
    /// Largest speaker shift (channels; uniform integer in `[−shift, shift]`).
    pub shift: usize,
    /// Tempo variation: the time stretch is uniform in `[1 − tempo, 1 + tempo]` (in `[0, 1)`).
    pub tempo: f64,
    /// Spike-time jitter (s, Gaussian std).
    pub jitter: f64,
    /// Background noise (Hz per channel, Poisson; 0 = none).
    pub noise_rate: f64,
    /// Seed of the syllables and words (shared by the splits of one task).
    pub task_seed: u64,
    /// Seed of the samples.
    pub seed: u64,
}

impl Default for OrderTask {
    /// SHD's shape: 700 channels, 20 classes, 1 s; words of 4 syllables (24 orders) of
    /// 150 ms with 50 ms gaps; bands of 120 channels with 4 spikes each (1920 events per
    /// sample); speaker shift up to 20 channels, tempo ±10 %, jitter 2 ms; no background
    /// noise.
    fn default() -> Self {
        Self {
            samples: 1000,
            channels: 700,
            classes: 20,
            duration: 1.0,
            syllables: 4,
            syllable_duration: 0.15,
            gap: 0.05,
            band: 120,
            spikes_per_channel: 4,
            shift: 20,
            tempo: 0.1,
            jitter: 2e-3,
            noise_rate: 0.0,
            task_seed: 0,
            seed: 0,
        }
    }
}

/// `n!`, saturating.
fn factorial(n: usize) -> usize {
    (1..=n).fold(1usize, |f, k| f.saturating_mul(k))
}

/// Words of reordered syllables: every class the same syllables in another order, each
/// sample with a speaker shift and a tempo (the module docs give the model). Labels cycle
/// through the classes in a `seed`-shuffled order; each sample's events are sorted by
/// time.
///
/// # Errors
/// [`Error::Invalid`] for zero sizes (`samples`, `channels`, `classes`, `syllables`,
/// `band`, `spikes_per_channel`), more classes than orders (`syllables!`), a band wider
/// than the channels, a non-positive or non-finite duration or syllable duration, a
/// negative gap, jitter or noise rate, a tempo outside `[0, 1)`, or a word that does not
/// fit into `duration` at the slowest tempo.
///
/// ```
/// use eventprop_data::order::{order_task, OrderTask};
/// let set = order_task(&OrderTask { samples: 4, ..OrderTask::default() })?;
/// assert_eq!(set.len(), 4);
/// // 4 syllables have 24 orders: 25 classes cannot be told apart by order.
/// assert!(order_task(&OrderTask { classes: 25, ..OrderTask::default() }).is_err());
/// # Ok::<(), eventprop_data::Error>(())
/// ```
pub fn order_task(t: &OrderTask) -> Result<SpikeSet> {
    check_common(t.samples, t.channels, t.classes, t.duration, t.noise_rate)?;
    for (name, v) in [
        ("syllables", t.syllables),
        ("band", t.band),
        ("spikes_per_channel", t.spikes_per_channel),
    ] {
        if v == 0 {
            return Err(Error::invalid(name, ">= 1", 0));
        }
    }
    if t.classes > factorial(t.syllables) {
        return Err(Error::invalid(
            "classes",
            format!(
                "at most {} (the orders of {} syllables)",
                factorial(t.syllables),
                t.syllables
            ),
            t.classes,
        ));
    }
    if t.band > t.channels {
        return Err(Error::invalid(
            "band",
            format!("at most the channels ({})", t.channels),
            t.band,
        ));
    }
    if !(t.syllable_duration.is_finite() && t.syllable_duration > 0.0) {
        return Err(Error::invalid(
            "syllable_duration",
            "finite and > 0",
            t.syllable_duration,
        ));
    }
    check_non_negative("gap", t.gap)?;
    check_non_negative("jitter", t.jitter)?;
    if !(0.0..1.0).contains(&t.tempo) {
        return Err(Error::invalid("tempo", "in [0, 1)", t.tempo));
    }
    let n = t.syllables as f64;
    let word = n * t.syllable_duration + (n - 1.0) * t.gap;
    if word * (1.0 + t.tempo) > t.duration {
        return Err(Error::invalid(
            "duration",
            format!(
                "at least the word at the slowest tempo, ({} syllables × {} s + {} gaps × {} s) × (1 + {}) = {} s",
                t.syllables,
                t.syllable_duration,
                t.syllables - 1,
                t.gap,
                t.tempo,
                word * (1.0 + t.tempo)
            ),
            t.duration,
        ));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(t.task_seed);
    // Syllable templates: (channel, offset) pairs of a band.
    let templates: Vec<Vec<(usize, f64)>> = (0..t.syllables)
        .map(|_| {
            let low = rng.random_range(0..=t.channels - t.band);
            (low..low + t.band)
                .flat_map(|c| std::iter::repeat_n(c, t.spikes_per_channel))
                .map(|c| (c, rng.random_range(0.0..t.syllable_duration)))
                .collect()
        })
        .collect();
    // Words: distinct permutations of the syllables.
    let mut words: Vec<Vec<usize>> = Vec::with_capacity(t.classes);
    while words.len() < t.classes {
        let mut w: Vec<usize> = (0..t.syllables).collect();
        w.shuffle(&mut rng);
        if !words.contains(&w) {
            words.push(w);
        }
    }
    let jitter = Normal::new(0.0, t.jitter).expect("checked finite and >= 0");
    Ok(generate(
        (t.samples, t.classes, t.seed),
        (t.noise_rate, t.channels, t.duration),
        |k, rng| {
            let shift = rng.random_range(-(t.shift as i64)..=t.shift as i64);
            let s = if t.tempo > 0.0 {
                rng.random_range(1.0 - t.tempo..=1.0 + t.tempo)
            } else {
                1.0
            };
            let room = (t.duration - word * s).max(0.0);
            let t0 = if room > 0.0 {
                rng.random_range(0.0..room)
            } else {
                0.0
            };
            let mut events = Vec::with_capacity(t.syllables * t.band * t.spikes_per_channel);
            for (m, &syl) in words[k].iter().enumerate() {
                let onset = t0 + m as f64 * (t.syllable_duration + t.gap) * s;
                for &(c, offset) in &templates[syl] {
                    let time = onset + offset * s + jitter.sample(rng);
                    let c = c as i64 + shift;
                    if (0.0..t.duration).contains(&time) && (0..t.channels as i64).contains(&c) {
                        events.push(Spike {
                            time,
                            neuron: c as u32,
                        });
                    }
                }
            }
            events
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generated::testing::{check_set, count_classifier_accuracy, counts, mean_events};

    #[test]
    fn order_sizes_ranges_balance_and_determinism() {
        let t = OrderTask {
            samples: 60,
            ..OrderTask::default()
        };
        let set = order_task(&t).unwrap();
        check_set(&set, 60, 700, 20, 1.0);
        // 4 syllables × 120 channels × 4 spikes = 1920, less a few shifted off an edge.
        let m = mean_events(&set);
        assert!((1800.0..=1920.0).contains(&m), "{m}");
        assert_eq!(order_task(&t).unwrap(), set);
        assert_ne!(
            order_task(&OrderTask {
                seed: 1,
                ..t.clone()
            })
            .unwrap(),
            set
        );
        let other = order_task(&OrderTask {
            task_seed: 1,
            ..t.clone()
        })
        .unwrap();
        assert_eq!(other.labels, set.labels);
        assert_ne!(other.samples, set.samples);
    }

    #[test]
    fn order_counts_are_class_independent() {
        // Without speaker shift, jitter and noise every sample has the same counts.
        let t = OrderTask {
            samples: 40,
            shift: 0,
            jitter: 0.0,
            ..OrderTask::default()
        };
        let set = order_task(&t).unwrap();
        let first = counts(&set.samples[0], 700);
        assert!(set.samples.iter().all(|s| counts(s, 700) == first));
        assert_eq!(first.iter().sum::<f64>(), 1920.0);
        // With the defaults (speaker shift, tempo, jitter) and background noise, a
        // nearest-class-mean classifier of counts is near chance (5 % for 20 classes).
        let t = OrderTask {
            samples: 400,
            noise_rate: 1.0,
            ..OrderTask::default()
        };
        let train = order_task(&t).unwrap();
        let test = order_task(&OrderTask {
            samples: 200,
            seed: 1,
            ..t
        })
        .unwrap();
        let acc = count_classifier_accuracy(&train, &test, 700, 20);
        assert!(acc < 0.12, "counts classify {acc}");
    }

    #[test]
    fn order_words_are_distinct_permutations() {
        // 3 syllables, 6 classes: every order once. Each syllable's band shows up in every
        // class, at another position in the word.
        let t = OrderTask {
            samples: 12,
            classes: 6,
            syllables: 3,
            shift: 0,
            tempo: 0.0,
            jitter: 0.0,
            ..OrderTask::default()
        };
        let set = order_task(&t).unwrap();
        check_set(&set, 12, 700, 6, 1.0);
        let firsts: Vec<Vec<Spike>> = (0..6)
            .map(|k| {
                let i = set.labels.iter().position(|&l| l == k).unwrap();
                set.samples[i].clone()
            })
            .collect();
        for a in 0..6 {
            for b in a + 1..6 {
                assert_ne!(firsts[a], firsts[b]);
            }
        }
        assert!(order_task(&OrderTask { classes: 7, ..t }).is_err());
    }

    #[test]
    fn order_errors() {
        let t = OrderTask::default();
        for bad in [
            OrderTask {
                syllables: 0,
                ..t.clone()
            },
            OrderTask {
                band: 701,
                ..t.clone()
            },
            OrderTask {
                tempo: 1.0,
                ..t.clone()
            },
            OrderTask {
                duration: 0.5,
                ..t.clone()
            },
            OrderTask {
                gap: -1.0,
                ..t.clone()
            },
        ] {
            assert!(order_task(&bad).is_err(), "{bad:?}");
        }
    }
}

//! A generated task of place-coded feature sequences (for tests, benchmarks and
//! `eventprop data place`): in every time bin a narrow band of channels is active around a
//! position that moves along the channel axis in a class-specific way, like a formant
//! moving along the frequency axis of a spectrogram.
//!
//! Class `k` has `tracks` trajectories `p_k,j(t)`, each piecewise linear through `knots`
//! positions uniform in `[width, channels − width]` at equally spaced times over
//! `[0, duration]`, drawn from `task_seed`. A sample moves each track by a channel offset
//! `N(0, position_jitter)` and all of them by a time offset `N(0, time_jitter)`; in each
//! time bin `[b · bin, (b + 1) · bin)` the channels `c` with `|c − p| < width / 2` around
//! each track's position `p` (at the bin's centre) fire one spike each with probability
//! `fire_prob`, at a uniform time inside the bin. Events outside `[0, channels)` are left
//! out; background noise of `noise_rate` Hz per channel comes on top.

use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::error::{Error, Result};
use crate::generated::{check_common, check_non_negative, generate};
use crate::sample::{Spike, SpikeSet};

/// Place-coded trajectories ([`place_task`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PlaceTask {
    /// Samples.
    pub samples: usize,
    /// Input channels.
    pub channels: usize,
    /// Classes.
    pub classes: usize,
    /// Sample duration (s).
    pub duration: f64,
    /// Time bin (s): the band is redrawn every bin.
    pub bin: f64,
    /// Trajectories (formants) per class.
    pub tracks: usize,
    /// Knots of each piecewise linear trajectory (>= 2).
    pub knots: usize,
    /// Width of the active band (channels).
    pub width: f64,
    /// Probability that a channel of the band fires in a bin.
    pub fire_prob: f64,
    /// Per-sample channel offset of each track (channels, Gaussian std).
    pub position_jitter: f64,
    /// Per-sample time offset of the trajectories (s, Gaussian std).
    pub time_jitter: f64,
    /// Background noise (Hz per channel, Poisson; 0 = none).
    pub noise_rate: f64,
    /// Seed of the class trajectories (shared by the splits of one task).
    pub task_seed: u64,
    /// Seed of the samples.
    pub seed: u64,
}

impl Default for PlaceTask {
    /// SHD's shape: 700 channels, 20 classes, 1 s; 10 ms bins, 2 tracks of 4 knots, bands
    /// of 10 channels firing with probability 0.5 (about 1000 events per sample);
    /// position jitter 10 channels, time jitter 20 ms; no background noise.
    fn default() -> Self {
        Self {
            samples: 1000,
            channels: 700,
            classes: 20,
            duration: 1.0,
            bin: 10e-3,
            tracks: 2,
            knots: 4,
            width: 10.0,
            fire_prob: 0.5,
            position_jitter: 10.0,
            time_jitter: 20e-3,
            noise_rate: 0.0,
            task_seed: 0,
            seed: 0,
        }
    }
}

/// The position at time `t` of the piecewise linear trajectory through `knots` (equally
/// spaced over `[0, duration]`; constant outside).
fn position(knots: &[f64], t: f64, duration: f64) -> f64 {
    let segments = (knots.len() - 1) as f64;
    let u = (t / duration).clamp(0.0, 1.0) * segments;
    let j = (u.floor() as usize).min(knots.len() - 2);
    let f = u - j as f64;
    knots[j] + f * (knots[j + 1] - knots[j])
}

/// Place-coded trajectories: each class a set of moving bands of active channels, each
/// sample a jittered Bernoulli draw of them (the module docs give the model). Labels cycle
/// through the classes in a `seed`-shuffled order; each sample's events are sorted by
/// time.
///
/// # Errors
/// [`Error::Invalid`] for zero sizes (`samples`, `channels`, `classes`, `tracks`), fewer
/// than 2 `knots`, a non-positive or non-finite duration, bin or width, a band wider than
/// half the channels, `fire_prob` outside `[0, 1]`, or a negative jitter or noise rate.
///
/// ```
/// use eventprop_data::place::{place_task, PlaceTask};
/// let set = place_task(&PlaceTask { samples: 4, ..PlaceTask::default() })?;
/// assert_eq!(set.len(), 4);
/// assert!(place_task(&PlaceTask { knots: 1, ..PlaceTask::default() }).is_err());
/// # Ok::<(), eventprop_data::Error>(())
/// ```
pub fn place_task(t: &PlaceTask) -> Result<SpikeSet> {
    check_common(t.samples, t.channels, t.classes, t.duration, t.noise_rate)?;
    if t.tracks == 0 {
        return Err(Error::invalid("tracks", ">= 1", 0));
    }
    if t.knots < 2 {
        return Err(Error::invalid("knots", ">= 2", t.knots));
    }
    for (name, v) in [("bin", t.bin), ("width", t.width)] {
        if !(v.is_finite() && v > 0.0) {
            return Err(Error::invalid(name, "finite and > 0", v));
        }
    }
    let c_max = t.channels as f64;
    if 2.0 * t.width > c_max {
        return Err(Error::invalid(
            "width",
            format!("at most half the channels ({})", c_max / 2.0),
            t.width,
        ));
    }
    if !(0.0..=1.0).contains(&t.fire_prob) {
        return Err(Error::invalid("fire_prob", "in [0, 1]", t.fire_prob));
    }
    check_non_negative("position_jitter", t.position_jitter)?;
    check_non_negative("time_jitter", t.time_jitter)?;
    let mut rng = ChaCha8Rng::seed_from_u64(t.task_seed);
    let trajectories: Vec<Vec<Vec<f64>>> = (0..t.classes)
        .map(|_| {
            (0..t.tracks)
                .map(|_| {
                    (0..t.knots)
                        .map(|_| rng.random_range(t.width..=c_max - t.width))
                        .collect()
                })
                .collect()
        })
        .collect();
    let dp = Normal::new(0.0, t.position_jitter).expect("checked finite and >= 0");
    let dt = Normal::new(0.0, t.time_jitter).expect("checked finite and >= 0");
    let bins = (t.duration / t.bin).ceil() as usize;
    let half = t.width / 2.0;
    Ok(generate(
        (t.samples, t.classes, t.seed),
        (t.noise_rate, t.channels, t.duration),
        |k, rng| {
            let offsets: Vec<f64> = (0..t.tracks).map(|_| dp.sample(rng)).collect();
            let lag = dt.sample(rng);
            let mut events = Vec::new();
            for b in 0..bins {
                let start = b as f64 * t.bin;
                let end = (start + t.bin).min(t.duration);
                if end <= start {
                    break;
                }
                let centre = (start + end) / 2.0;
                for (knots, off) in trajectories[k].iter().zip(&offsets) {
                    let p = position(knots, centre - lag, t.duration) + off;
                    let lo = (p - half).ceil().max(0.0) as usize;
                    let hi = ((p + half).ceil().max(0.0) as usize).min(t.channels);
                    for c in lo..hi {
                        if (c as f64 - p).abs() < half && rng.random_bool(t.fire_prob) {
                            events.push(Spike {
                                time: rng.random_range(start..end),
                                neuron: c as u32,
                            });
                        }
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
    use crate::generated::testing::{check_set, mean_events};

    #[test]
    fn place_sizes_ranges_balance_and_determinism() {
        let t = PlaceTask {
            samples: 60,
            ..PlaceTask::default()
        };
        let set = place_task(&t).unwrap();
        check_set(&set, 60, 700, 20, 1.0);
        // 100 bins × 2 tracks × 10 channels × 0.5 = 1000 events expected.
        let m = mean_events(&set);
        assert!((900.0..1100.0).contains(&m), "{m}");
        assert_eq!(place_task(&t).unwrap(), set);
        assert_ne!(
            place_task(&PlaceTask {
                seed: 1,
                ..t.clone()
            })
            .unwrap(),
            set
        );
        let other = place_task(&PlaceTask {
            task_seed: 1,
            ..t.clone()
        })
        .unwrap();
        assert_eq!(other.labels, set.labels);
        assert_ne!(other.samples, set.samples);
    }

    #[test]
    fn place_bands_follow_the_trajectory() {
        // One track, no jitter: every spike of a bin lies within width / 2 of the
        // trajectory at the bin's centre.
        let t = PlaceTask {
            samples: 10,
            classes: 2,
            tracks: 1,
            position_jitter: 0.0,
            time_jitter: 0.0,
            ..PlaceTask::default()
        };
        let set = place_task(&t).unwrap();
        check_set(&set, 10, 700, 2, 1.0);
        let mut rng = ChaCha8Rng::seed_from_u64(t.task_seed);
        let knots: Vec<Vec<f64>> = (0..2)
            .map(|_| (0..4).map(|_| rng.random_range(10.0..=690.0)).collect())
            .collect();
        for (s, &k) in set.samples.iter().zip(&set.labels) {
            for e in s {
                let b = (e.time / t.bin).floor();
                let p = position(&knots[k], (b + 0.5) * t.bin, 1.0);
                assert!((f64::from(e.neuron) - p).abs() < 5.0, "{e:?} vs {p}");
            }
        }
        assert_eq!(position(&[0.0, 10.0, 0.0], 0.25, 1.0), 5.0);
    }

    #[test]
    fn place_errors() {
        let t = PlaceTask::default();
        for bad in [
            PlaceTask {
                tracks: 0,
                ..t.clone()
            },
            PlaceTask {
                knots: 1,
                ..t.clone()
            },
            PlaceTask {
                width: 400.0,
                ..t.clone()
            },
            PlaceTask {
                fire_prob: 1.5,
                ..t.clone()
            },
            PlaceTask {
                bin: 0.0,
                ..t.clone()
            },
        ] {
            assert!(place_task(&bad).is_err(), "{bad:?}");
        }
    }
}

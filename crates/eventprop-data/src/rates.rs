//! A generated task of dense, SHD-like Poisson rates (for tests, benchmarks and
//! `eventprop data rates`): every class is a time-varying rate profile over the channels,
//! every sample a Poisson draw of it plus background noise.
//!
//! Class `k` has the rate
//! `r_k(c, t) = Σ_j N_j · 𝒩(c; c_j, σ_c,j) · 𝒩(t; t_j, σ_t,j)` (events per channel and
//! second; `𝒩` the Gaussian density), a sum of `bumps` components drawn from `task_seed`:
//! centre channel `c_j` uniform in `[0, channels)`, channel width `σ_c,j` uniform in
//! `[0.02, 0.06] · channels`, centre time `t_j` uniform in `[0.15, 0.85] · duration`, time
//! width `σ_t,j` uniform in `[0.05, 0.15] · duration`, and expected events `N_j` splitting
//! `events_per_sample` in proportion to weights uniform in `[0.5, 1]`. A sample moves and
//! scales each component independently — gain `exp(N(0, gain_jitter))`, time offset
//! `N(0, time_jitter)`, channel offset `N(0, channel_jitter)` — and draws a
//! `Poisson(gain · N_j)` number of events from it (channel rounded to the nearest
//! integer; events outside `[0, channels)` or `[0, duration)` are left out), plus
//! background noise of `noise_rate` Hz on every channel.

use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Poisson, StandardNormal};

use crate::error::{Error, Result};
use crate::generated::{check_common, check_non_negative, generate};
use crate::sample::{Spike, SpikeSet};

/// Dense Poisson-rate classes ([`rates_task`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RatesTask {
    /// Samples.
    pub samples: usize,
    /// Input channels.
    pub channels: usize,
    /// Classes.
    pub classes: usize,
    /// Sample duration (s).
    pub duration: f64,
    /// Rate components (Gaussian bumps in channel × time) per class.
    pub bumps: usize,
    /// Expected class-driven events per sample (before edge losses; the background noise
    /// comes on top).
    pub events_per_sample: f64,
    /// Per-sample gain of each component (std of its logarithm).
    pub gain_jitter: f64,
    /// Per-sample time offset of each component (s, Gaussian std).
    pub time_jitter: f64,
    /// Per-sample channel offset of each component (channels, Gaussian std).
    pub channel_jitter: f64,
    /// Background noise (Hz per channel, Poisson; 0 = none).
    pub noise_rate: f64,
    /// Seed of the class profiles (shared by the splits of one task).
    pub task_seed: u64,
    /// Seed of the samples.
    pub seed: u64,
}

impl Default for RatesTask {
    /// SHD's shape: 700 channels, 20 classes, 1 s; 4 bumps per class with 3500 expected
    /// events, 1 Hz background (700 events), so about 4000 events per sample; gain jitter
    /// 0.2, time jitter 20 ms, channel jitter 5 channels.
    fn default() -> Self {
        Self {
            samples: 1000,
            channels: 700,
            classes: 20,
            duration: 1.0,
            bumps: 4,
            events_per_sample: 3500.0,
            gain_jitter: 0.2,
            time_jitter: 20e-3,
            channel_jitter: 5.0,
            noise_rate: 1.0,
            task_seed: 0,
            seed: 0,
        }
    }
}

/// One component of a class's rate profile.
#[derive(Debug, Clone, Copy)]
struct Bump {
    channel: f64,
    channel_width: f64,
    time: f64,
    time_width: f64,
    events: f64,
}

/// Dense Poisson rates: each class a sum of Gaussian bumps in channel × time, each sample a
/// jittered Poisson draw of its class plus background noise (the module docs give the
/// model). Labels cycle through the classes in a `seed`-shuffled order; each sample's
/// events are sorted by time.
///
/// # Errors
/// [`Error::Invalid`] for zero sizes (`samples`, `channels`, `classes`, `bumps`), a
/// non-positive or non-finite duration, or a negative or non-finite
/// `events_per_sample`, jitter or noise rate.
///
/// ```
/// use eventprop_data::rates::{rates_task, RatesTask};
/// let set = rates_task(&RatesTask { samples: 4, ..RatesTask::default() })?;
/// assert!(set.samples.iter().all(|s| s.len() > 2000));
/// assert!(rates_task(&RatesTask { bumps: 0, ..RatesTask::default() }).is_err());
/// # Ok::<(), eventprop_data::Error>(())
/// ```
pub fn rates_task(t: &RatesTask) -> Result<SpikeSet> {
    check_common(t.samples, t.channels, t.classes, t.duration, t.noise_rate)?;
    if t.bumps == 0 {
        return Err(Error::invalid("bumps", ">= 1", 0));
    }
    for (name, v) in [
        ("events_per_sample", t.events_per_sample),
        ("gain_jitter", t.gain_jitter),
        ("time_jitter", t.time_jitter),
        ("channel_jitter", t.channel_jitter),
    ] {
        check_non_negative(name, v)?;
    }
    let (c_max, d) = (t.channels as f64, t.duration);
    let mut rng = ChaCha8Rng::seed_from_u64(t.task_seed);
    let profiles: Vec<Vec<Bump>> = (0..t.classes)
        .map(|_| {
            let mut bumps: Vec<Bump> = (0..t.bumps)
                .map(|_| Bump {
                    channel: rng.random_range(0.0..c_max),
                    channel_width: c_max * rng.random_range(0.02..0.06),
                    time: d * rng.random_range(0.15..0.85),
                    time_width: d * rng.random_range(0.05..0.15),
                    events: rng.random_range(0.5..1.0),
                })
                .collect();
            let total: f64 = bumps.iter().map(|b| b.events).sum();
            for b in &mut bumps {
                b.events *= t.events_per_sample / total;
            }
            bumps
        })
        .collect();
    let gain = Normal::new(0.0, t.gain_jitter).expect("checked finite and >= 0");
    let dt = Normal::new(0.0, t.time_jitter).expect("checked finite and >= 0");
    let dc = Normal::new(0.0, t.channel_jitter).expect("checked finite and >= 0");
    Ok(generate(
        (t.samples, t.classes, t.seed),
        (t.noise_rate, t.channels, d),
        |k, rng| {
            let mut events = Vec::new();
            for b in &profiles[k] {
                let g = gain.sample(rng).exp();
                let (t0, c0) = (b.time + dt.sample(rng), b.channel + dc.sample(rng));
                let mean = g * b.events;
                let n = if mean > 0.0 {
                    Poisson::new(mean).expect("mean finite and > 0").sample(rng) as usize
                } else {
                    0
                };
                for _ in 0..n {
                    let zc: f64 = StandardNormal.sample(rng);
                    let zt: f64 = StandardNormal.sample(rng);
                    let c = (c0 + b.channel_width * zc).round();
                    let time = t0 + b.time_width * zt;
                    if (0.0..c_max).contains(&c) && (0.0..d).contains(&time) {
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
    use crate::generated::testing::{check_set, count_classifier_accuracy, mean_events};

    #[test]
    fn rates_sizes_ranges_balance_and_determinism() {
        let t = RatesTask {
            samples: 60,
            ..RatesTask::default()
        };
        let set = rates_task(&t).unwrap();
        check_set(&set, 60, 700, 20, 1.0);
        // About 3500 class-driven events (less what falls off the edges) + 700 noise.
        let m = mean_events(&set);
        assert!((3000.0..5000.0).contains(&m), "{m}");
        assert_eq!(rates_task(&t).unwrap(), set);
        assert_ne!(
            rates_task(&RatesTask {
                seed: 1,
                ..t.clone()
            })
            .unwrap(),
            set
        );
        let other = rates_task(&RatesTask {
            task_seed: 1,
            ..t.clone()
        })
        .unwrap();
        assert_eq!(other.labels, set.labels);
        assert_ne!(other.samples, set.samples);
    }

    #[test]
    fn rates_counts_carry_the_class() {
        // The classes are rate profiles, so spike counts per channel separate them: a
        // nearest-class-mean classifier of counts is far above chance (20 %).
        let t = RatesTask {
            samples: 100,
            classes: 5,
            channels: 100,
            events_per_sample: 1000.0,
            ..RatesTask::default()
        };
        let train = rates_task(&t).unwrap();
        let test = rates_task(&RatesTask { seed: 1, ..t }).unwrap();
        let acc = count_classifier_accuracy(&train, &test, 100, 5);
        assert!(acc > 0.6, "{acc}");
    }

    #[test]
    fn rates_errors() {
        let t = RatesTask::default();
        for bad in [
            RatesTask {
                channels: 0,
                ..t.clone()
            },
            RatesTask {
                bumps: 0,
                ..t.clone()
            },
            RatesTask {
                events_per_sample: f64::NAN,
                ..t.clone()
            },
            RatesTask {
                noise_rate: -1.0,
                ..t.clone()
            },
        ] {
            assert!(rates_task(&bad).is_err(), "{bad:?}");
        }
    }
}

//! A generated classification task whose classes differ only in spike timing (for tests,
//! benchmarks and `eventprop data timing`).

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::error::Result;
use crate::generated::{add_noise, check_common, check_non_negative, sort_events};
use crate::sample::{Spike, SpikeSet};

/// A generated classification task whose classes differ only in spike timing
/// ([`timing_task`]).
#[derive(Debug, Clone, PartialEq)]
pub struct TimingTask {
    /// Samples.
    pub samples: usize,
    /// Input channels.
    pub channels: usize,
    /// Classes.
    pub classes: usize,
    /// Sample duration (s).
    pub duration: f64,
    /// Mean events per sample.
    pub events_per_sample: usize,
    /// Spike-time jitter (s, Gaussian std).
    pub jitter: f64,
    /// Background noise (Hz per channel, Poisson; 0 = none), added to every sample.
    pub noise_rate: f64,
    /// Seed of the class templates (shared by the splits of one task).
    pub task_seed: u64,
    /// Seed of the samples.
    pub seed: u64,
}

impl Default for TimingTask {
    /// SHD's shape: 700 channels, 20 classes, 1 s; 5000 events per sample; 10 ms jitter;
    /// no background noise.
    fn default() -> Self {
        Self {
            samples: 1000,
            channels: 700,
            classes: 20,
            duration: 1.0,
            events_per_sample: 5000,
            jitter: 10e-3,
            noise_rate: 0.0,
            task_seed: 0,
            seed: 0,
        }
    }
}

/// A timing-only task: every channel fires the same number of spikes in every class (so
/// spike counts per channel carry no class information); the classes differ in *when*.
/// Each channel `c` has `n_c` spikes (`events_per_sample / channels`, the remainder
/// spread over the first channels) at times drawn per class from `task_seed`, uniform in
/// the middle 80 % of `duration`; a sample of class `k` is class `k`'s template with every
/// spike jittered by `N(0, jitter)` (clamped into `[0, duration)`). Labels cycle through
/// the classes in a `seed`-shuffled order. With `noise_rate > 0` every sample also gets
/// background events, a Poisson process of `noise_rate` Hz on every channel (drawn from
/// stream 1 of `ChaCha8(seed)`, so the jittered template spikes are the same as without
/// noise); noise changes the counts per channel, but not their expectation per class.
/// Times are in seconds, each sample's events sorted by time.
///
/// # Errors
/// [`crate::Error::Invalid`] for zero sizes, or a non-positive or non-finite duration, a negative
/// jitter or noise rate.
pub fn timing_task(t: &TimingTask) -> Result<SpikeSet> {
    check_common(t.samples, t.channels, t.classes, t.duration, t.noise_rate)?;
    check_non_negative("jitter", t.jitter)?;
    let per = |c: usize| {
        t.events_per_sample / t.channels + usize::from(c < t.events_per_sample % t.channels)
    };
    let mut rng = ChaCha8Rng::seed_from_u64(t.task_seed);
    let templates: Vec<Vec<Spike>> = (0..t.classes)
        .map(|_| {
            (0..t.channels)
                .flat_map(|c| (0..per(c)).map(move |_| c))
                .map(|c| Spike {
                    time: t.duration * rng.random_range(0.1..0.9),
                    neuron: c as u32,
                })
                .collect()
        })
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(t.seed);
    let mut labels: Vec<usize> = (0..t.samples).map(|i| i % t.classes).collect();
    labels.shuffle(&mut rng);
    let noise = Normal::new(0.0, t.jitter).expect("jitter checked finite and >= 0");
    let below = t.duration * (1.0 - f64::EPSILON);
    let mut noise_rng = ChaCha8Rng::seed_from_u64(t.seed);
    noise_rng.set_stream(1);
    let samples = labels
        .iter()
        .map(|&k| {
            let mut s: Vec<Spike> = templates[k]
                .iter()
                .map(|e| Spike {
                    time: (e.time + noise.sample(&mut rng)).clamp(0.0, below),
                    neuron: e.neuron,
                })
                .collect();
            add_noise(&mut s, t.noise_rate, t.channels, t.duration, &mut noise_rng);
            sort_events(&mut s);
            s
        })
        .collect();
    Ok(SpikeSet { samples, labels })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generated::testing::{check_set, mean_events};

    #[test]
    fn timing_task_counts_are_class_independent() {
        let t = TimingTask {
            samples: 40,
            channels: 7,
            classes: 4,
            events_per_sample: 30,
            ..TimingTask::default()
        };
        let set = timing_task(&t).unwrap();
        assert_eq!(set.len(), 40);
        // 30 events over 7 channels: 4 each, the first 2 channels one more (30 = 7·4 + 2).
        for s in &set.samples {
            let mut counts = [0; 7];
            for e in s {
                counts[e.neuron as usize] += 1;
                assert!((0.0..1.0).contains(&e.time));
            }
            assert_eq!(counts, [5, 5, 4, 4, 4, 4, 4]);
            assert!(s.windows(2).all(|w| w[0].time <= w[1].time));
        }
        // Classes balanced: 40 samples over 4 classes.
        for k in 0..4 {
            assert_eq!(set.labels.iter().filter(|&&l| l == k).count(), 10);
        }
        // Deterministic in the seeds.
        assert_eq!(timing_task(&t).unwrap(), set);
        assert_ne!(
            timing_task(&TimingTask {
                seed: 1,
                ..t.clone()
            })
            .unwrap(),
            set
        );
    }

    #[test]
    fn timing_noise_adds_events_and_keeps_the_template_spikes() {
        let t = TimingTask {
            samples: 40,
            channels: 20,
            classes: 4,
            duration: 0.5,
            events_per_sample: 100,
            ..TimingTask::default()
        };
        let clean = timing_task(&t).unwrap();
        let noisy = timing_task(&TimingTask {
            noise_rate: 10.0,
            ..t.clone()
        })
        .unwrap();
        check_set(&noisy, 40, 20, 4, 0.5);
        assert_eq!(noisy.labels, clean.labels);
        // 10 Hz × 20 channels × 0.5 s = 100 noise events per sample on average.
        let extra = mean_events(&noisy) - mean_events(&clean);
        assert!((extra - 100.0).abs() < 10.0, "{extra}");
        // Every template spike is still there (noise is drawn from its own stream).
        for (c, n) in clean.samples.iter().zip(&noisy.samples) {
            let mut rest = n.clone();
            for e in c {
                let k = rest
                    .iter()
                    .position(|x| x == e)
                    .expect("template spike kept");
                rest.swap_remove(k);
            }
        }
        assert!(timing_task(&TimingTask {
            noise_rate: -1.0,
            ..t
        })
        .is_err());
    }
}

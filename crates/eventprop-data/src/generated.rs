//! Parts shared by the generated event tasks ([`crate::timing`], [`crate::latency`],
//! [`crate::rates`], [`crate::place`], [`crate::order`]): the checks of their common
//! settings, balanced labels, one random stream per sample, and background Poisson noise.
//!
//! Every task draws its class templates from `ChaCha8(task_seed)` (so the train and test
//! files of one task share them) and its samples from `ChaCha8(seed)`: the labels from
//! stream 0 and sample `i` from stream `i + 1`, so a sample does not depend on how many
//! random numbers the others used.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Poisson};

use crate::error::{Error, Result};
use crate::sample::{Spike, SpikeSet};

/// Checks the settings every generated task has.
///
/// # Errors
/// [`Error::Invalid`] for zero `samples`, `channels` or `classes`, more than `2^32 - 1`
/// channels, a non-positive or non-finite `duration`, or a negative or non-finite
/// `noise_rate`.
pub(crate) fn check_common(
    samples: usize,
    channels: usize,
    classes: usize,
    duration: f64,
    noise_rate: f64,
) -> Result<()> {
    for (name, v) in [
        ("samples", samples),
        ("channels", channels),
        ("classes", classes),
    ] {
        if v == 0 {
            return Err(Error::invalid(name, ">= 1", 0));
        }
    }
    if channels > u32::MAX as usize {
        return Err(Error::invalid("channels", "<= 2^32 - 1", channels));
    }
    if !(duration.is_finite() && duration > 0.0) {
        return Err(Error::invalid("duration", "finite and > 0", duration));
    }
    check_non_negative("noise_rate", noise_rate)
}

/// `v` finite and `>= 0`.
///
/// # Errors
/// [`Error::Invalid`] naming `name`.
pub(crate) fn check_non_negative(name: &'static str, v: f64) -> Result<()> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(name, "finite and >= 0", v))
    }
}

/// `samples` labels cycling through `0..classes` (balanced to within one), shuffled by
/// stream 0 of `ChaCha8(seed)`.
pub(crate) fn balanced_labels(samples: usize, classes: usize, seed: u64) -> Vec<usize> {
    let mut labels: Vec<usize> = (0..samples).map(|i| i % classes).collect();
    labels.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    labels
}

/// The random stream of sample `i`: stream `i + 1` of `ChaCha8(seed)`.
pub(crate) fn sample_rng(seed: u64, i: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(i as u64 + 1);
    rng
}

/// Appends background noise to `events`: a homogeneous Poisson process of `rate` Hz on
/// each of `channels` channels over `[0, duration)` (a `Poisson(rate × channels ×
/// duration)` number of events, each on a uniform channel at a uniform time). Draws
/// nothing when `rate` is 0.
pub(crate) fn add_noise(
    events: &mut Vec<Spike>,
    rate: f64,
    channels: usize,
    duration: f64,
    rng: &mut impl Rng,
) {
    let mean = rate * channels as f64 * duration;
    if mean <= 0.0 {
        return;
    }
    let n = Poisson::new(mean)
        .expect("mean checked finite and > 0")
        .sample(rng) as usize;
    events.reserve(n);
    for _ in 0..n {
        events.push(Spike {
            time: rng.random_range(0.0..duration),
            neuron: rng.random_range(0..channels) as u32,
        });
    }
}

/// Sorts events by time, then channel.
pub(crate) fn sort_events(events: &mut [Spike]) {
    events.sort_by(|a, b| a.time.total_cmp(&b.time).then(a.neuron.cmp(&b.neuron)));
}

/// The samples of a generated task: `samples` balanced labels over `classes`
/// ([`balanced_labels`] of `seed`), then sample `i` of class `k` drawn by `draw(k, rng)`
/// from its own stream ([`sample_rng`]), with background noise of `noise = (rate,
/// channels, duration)` from the same stream ([`add_noise`]), sorted ([`sort_events`]).
pub(crate) fn generate(
    (samples, classes, seed): (usize, usize, u64),
    (rate, channels, duration): (f64, usize, f64),
    mut draw: impl FnMut(usize, &mut ChaCha8Rng) -> Vec<Spike>,
) -> SpikeSet {
    let labels = balanced_labels(samples, classes, seed);
    let samples = labels
        .iter()
        .enumerate()
        .map(|(i, &k)| {
            let mut rng = sample_rng(seed, i);
            let mut events = draw(k, &mut rng);
            add_noise(&mut events, rate, channels, duration, &mut rng);
            sort_events(&mut events);
            events
        })
        .collect();
    SpikeSet { samples, labels }
}

/// Test helpers shared by the generators' tests.
#[cfg(test)]
pub(crate) mod testing {
    use crate::sample::SpikeSet;

    /// Sizes, balance and ranges of a generated set: `samples` samples, labels balanced to
    /// within one over `classes`, every event in `[0, duration)` and on a channel below
    /// `channels`, events sorted by time.
    pub(crate) fn check_set(
        set: &SpikeSet,
        samples: usize,
        channels: usize,
        classes: usize,
        duration: f64,
    ) {
        assert_eq!(set.len(), samples);
        assert_eq!(set.labels.len(), samples);
        let mut per_class = vec![0usize; classes];
        for &l in &set.labels {
            assert!(l < classes, "label {l} >= {classes}");
            per_class[l] += 1;
        }
        let (lo, hi) = (samples / classes, samples.div_ceil(classes));
        assert!(
            per_class.iter().all(|&n| (lo..=hi).contains(&n)),
            "unbalanced classes: {per_class:?}"
        );
        for s in &set.samples {
            for e in s {
                assert!(
                    (0.0..duration).contains(&e.time),
                    "time {} outside [0, {duration})",
                    e.time
                );
                assert!((e.neuron as usize) < channels, "channel {}", e.neuron);
            }
            assert!(s.windows(2).all(|w| w[0].time <= w[1].time), "unsorted");
        }
    }

    /// Spike counts per channel of one sample.
    pub(crate) fn counts(events: &[crate::sample::Spike], channels: usize) -> Vec<f64> {
        let mut c = vec![0.0; channels];
        for e in events {
            c[e.neuron as usize] += 1.0;
        }
        c
    }

    /// Accuracy on `test` of a nearest-class-mean classifier of spike counts per channel
    /// fitted on `train`: how much class information the counts alone carry.
    pub(crate) fn count_classifier_accuracy(
        train: &SpikeSet,
        test: &SpikeSet,
        channels: usize,
        classes: usize,
    ) -> f64 {
        let mut means = vec![vec![0.0; channels]; classes];
        let mut n = vec![0.0; classes];
        for (s, &l) in train.samples.iter().zip(&train.labels) {
            for (m, c) in means[l].iter_mut().zip(counts(s, channels)) {
                *m += c;
            }
            n[l] += 1.0;
        }
        for (m, n) in means.iter_mut().zip(&n) {
            m.iter_mut().for_each(|v| *v /= f64::max(*n, 1.0));
        }
        let correct = test
            .samples
            .iter()
            .zip(&test.labels)
            .filter(|(s, &l)| {
                let c = counts(s, channels);
                let dist = |m: &Vec<f64>| -> f64 {
                    m.iter().zip(&c).map(|(a, b)| (a - b) * (a - b)).sum()
                };
                let best = (0..classes)
                    .min_by(|&a, &b| dist(&means[a]).total_cmp(&dist(&means[b])))
                    .expect("classes >= 1");
                best == l
            })
            .count();
        correct as f64 / test.len().max(1) as f64
    }

    /// Mean events per sample.
    pub(crate) fn mean_events(set: &SpikeSet) -> f64 {
        set.samples.iter().map(Vec::len).sum::<usize>() as f64 / set.len().max(1) as f64
    }
}

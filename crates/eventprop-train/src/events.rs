//! Event data for `task = "events"`: reading the files of a run (SHD/SSC HDF5 or event
//! `.npz`), the validation hold-out, taking the grid and sizes from the data, and a
//! generated timing task for tests and benchmarks.
//!
//! Samples stay as event lists (16 bytes per event); the stepped engine bins one batch at a
//! time onto its grid ([`crate::data::rasterize`]), so memory grows with the events and
//! the batch, never with samples × steps × channels.

use std::path::Path;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::config::{Task, TrainConfig};
use crate::data::{Spike, SpikeSet};
use crate::error::{Error, Result};
use crate::trainer::RunData;
use crate::{files, shd};

/// Largest channel count accepted when `events.channels` is not given (the unit type is
/// `u32`).
const ANY_CHANNELS: usize = u32::MAX as usize;
/// Largest class count accepted when `events.classes` is not given.
const ANY_CLASSES: usize = 1 << 20;

/// Reads an event file by its extension: `.h5`/`.hdf5` ([`shd::read_shd`]) or `.npz`
/// ([`files::read_events`]), with units in `0..channels` and labels in `0..classes`
/// (any, when not given).
///
/// # Errors
/// The readers' errors, naming the file and the field; [`Error::Format`] for another
/// extension.
pub fn read_event_file(
    path: &Path,
    channels: Option<usize>,
    classes: Option<usize>,
) -> Result<SpikeSet> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let (c, k) = (
        channels.unwrap_or(ANY_CHANNELS),
        classes.unwrap_or(ANY_CLASSES),
    );
    match ext.as_deref() {
        Some("h5" | "hdf5") => shd::read_shd(path, c, k),
        Some("npz") => files::read_events(path, c, k),
        _ => Err(Error::format(
            path,
            "unknown event file type: expected an SHD/SSC-layout HDF5 file (`.h5`, `.hdf5`) or an event `.npz`",
        )),
    }
}

/// Holds out `round(fraction × S)` samples of `set` (at least 1 when `fraction > 0`, and
/// at least one left to train on), chosen by a `ChaCha8(seed)` permutation; returns
/// `(train, validation)`, each in the file's order.
///
/// # Errors
/// [`Error::Invalid`] naming `events.val_fraction` when nothing would be left to train on.
pub fn hold_out(set: SpikeSet, fraction: f64, seed: u64) -> Result<(SpikeSet, SpikeSet)> {
    let s = set.len();
    let n_val = if fraction > 0.0 {
        ((fraction * s as f64).round() as usize).max(1)
    } else {
        0
    };
    if n_val >= s && n_val > 0 {
        return Err(Error::invalid(
            "events.val_fraction",
            format!("a fraction that leaves training samples (the train file has {s})"),
            fraction,
        ));
    }
    let mut order: Vec<usize> = (0..s).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x005E_ED0F_7A11));
    let mut is_val = vec![false; s];
    for &i in &order[..n_val] {
        is_val[i] = true;
    }
    let (mut train, mut val) = (SpikeSet::default(), SpikeSet::default());
    for (i, (sample, label)) in set.samples.into_iter().zip(set.labels).enumerate() {
        let dst = if is_val[i] { &mut val } else { &mut train };
        dst.samples.push(sample);
        dst.labels.push(label);
    }
    Ok((train, val))
}

/// Reads the files of an events run (`[data]`), holds out the validation set, and fills
/// the `[events]` values that are not given from the data: `channels` = largest unit + 1,
/// `classes` = largest label + 1, `t_max` = the step after the latest event's step
/// (`(round(t / dt) + 1) dt`, so that every event lies on the grid).
///
/// # Errors
/// [`Error::Invalid`] for another task or a missing train file; the readers' errors;
/// [`hold_out`]'s.
pub fn load(config: &mut TrainConfig) -> Result<RunData> {
    if config.task != Task::Events {
        return Err(Error::invalid("task", "events", config.task));
    }
    config.events.validate()?;
    let ev = config.events.clone();
    let train_path =
        config.data.train.clone().ok_or_else(|| {
            Error::invalid("data.train", "a training file for task `events`", "none")
        })?;
    let read = |p: &Path| read_event_file(p, ev.channels, ev.classes);
    let train = read(&train_path)?;
    let (train, validation) = match &config.data.validation {
        Some(p) => (train, read(p)?),
        None => hold_out(train, ev.val_fraction, config.data_seed)?,
    };
    let test = match &config.data.test {
        Some(p) => read(p)?,
        None => SpikeSet::default(),
    };
    let sets = [&train, &validation, &test];
    let events = || sets.iter().flat_map(|s| s.samples.iter().flatten());
    if config.events.channels.is_none() {
        let max = events().map(|e| e.neuron).max().unwrap_or(0);
        config.events.channels = Some(max as usize + 1);
    }
    if config.events.classes.is_none() {
        let max = sets
            .iter()
            .flat_map(|s| s.labels.iter())
            .copied()
            .max()
            .unwrap_or(0);
        config.events.classes = Some(max + 1);
    }
    if config.events.t_max.is_none() {
        let last = events().map(|e| e.time).fold(0.0, f64::max);
        let steps = (last / ev.dt).round() + 1.0;
        config.events.t_max = Some(steps * ev.dt);
    }
    Ok(RunData {
        train,
        validation,
        test,
    })
}

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
    /// Seed of the class templates (shared by the splits of one task).
    pub task_seed: u64,
    /// Seed of the samples.
    pub seed: u64,
}

impl Default for TimingTask {
    /// SHD's shape: 700 channels, 20 classes, 1 s; 5000 events per sample; 10 ms jitter.
    fn default() -> Self {
        Self {
            samples: 1000,
            channels: 700,
            classes: 20,
            duration: 1.0,
            events_per_sample: 5000,
            jitter: 10e-3,
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
/// the classes in a `seed`-shuffled order. Times are in seconds, each sample's events
/// sorted by time.
///
/// # Errors
/// [`Error::Invalid`] for zero sizes, or a non-positive or non-finite duration or a
/// negative jitter.
pub fn timing_task(t: &TimingTask) -> Result<SpikeSet> {
    for (name, v) in [
        ("samples", t.samples),
        ("channels", t.channels),
        ("classes", t.classes),
    ] {
        if v == 0 {
            return Err(Error::invalid(name, ">= 1", 0));
        }
    }
    if !(t.duration.is_finite() && t.duration > 0.0) {
        return Err(Error::invalid("duration", "finite and > 0", t.duration));
    }
    if !(t.jitter.is_finite() && t.jitter >= 0.0) {
        return Err(Error::invalid("jitter", "finite and >= 0", t.jitter));
    }
    if t.channels > u32::MAX as usize {
        return Err(Error::invalid("channels", "<= 2^32 - 1", t.channels));
    }
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
            s.sort_by(|a, b| a.time.total_cmp(&b.time).then(a.neuron.cmp(&b.neuron)));
            s
        })
        .collect();
    Ok(SpikeSet { samples, labels })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_ne!(timing_task(&TimingTask { seed: 1, ..t }).unwrap(), set);
    }

    #[test]
    fn hold_out_sizes_and_errors() {
        let set = SpikeSet {
            samples: vec![Vec::new(); 10],
            labels: (0..10).collect(),
        };
        let (tr, va) = hold_out(set.clone(), 0.25, 3).unwrap();
        // round(0.25 · 10) = 3 (2.5 rounds away from zero).
        assert_eq!((tr.len(), va.len()), (7, 3));
        let mut all: Vec<usize> = tr.labels.iter().chain(&va.labels).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        let (tr, va) = hold_out(set.clone(), 0.0, 3).unwrap();
        assert_eq!((tr.len(), va.len()), (10, 0));
        assert!(hold_out(set, 0.99, 3).is_err());
    }
}

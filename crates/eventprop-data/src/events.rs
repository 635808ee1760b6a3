//! Event data: reading the files of a run (SHD/SSC HDF5 or event `.npz`), the validation
//! hold-out, and the sizes the data imply.
//!
//! Samples stay as event lists (16 bytes per event; the `.npz` reader peaks at
//! [`files::LOAD_BYTES_PER_EVENT`] while it reads); the stepped engine bins one batch at a
//! time onto its grid ([`crate::rasterize`]), so memory grows with the events and
//! the batch, never with samples × steps × channels.

use std::path::Path;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};
use crate::files;
use crate::sample::SpikeSet;
#[cfg(feature = "hdf5")]
use crate::shd;

/// Largest channel count accepted when `events.channels` is not given (the unit type is
/// `u32`).
const ANY_CHANNELS: usize = u32::MAX as usize;
/// Largest class count accepted when `events.classes` is not given.
const ANY_CLASSES: usize = 1 << 20;

/// A reader of one event-file format: the file, the channel bound (units must lie below)
/// and the class bound (labels must lie below).
pub type EventReader = fn(&Path, usize, usize) -> Result<SpikeSet>;

/// The event-file formats: extensions (lower case), what the format is (for messages) and
/// its reader. A new format is one module with its reader plus one line here.
pub fn event_readers() -> Vec<(&'static [&'static str], &'static str, EventReader)> {
    vec![
        #[cfg(feature = "hdf5")]
        (
            &["h5", "hdf5"],
            "an SHD/SSC-layout HDF5 file (`.h5`, `.hdf5`)",
            shd::read_shd,
        ),
        (&["npz"], "an event `.npz`", files::read_events),
    ]
}

/// Reads an event file with the reader of its extension ([`event_readers`]: SHD/SSC HDF5,
/// event `.npz`), with units in `0..channels` and labels in `0..classes` (any, when not
/// given).
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
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let (c, k) = (
        channels.unwrap_or(ANY_CHANNELS),
        classes.unwrap_or(ANY_CLASSES),
    );
    let readers = event_readers();
    match readers
        .iter()
        .find(|(exts, _, _)| exts.contains(&ext.as_str()))
    {
        Some((_, _, read)) => read(path, c, k),
        None => {
            let what: Vec<&str> = readers.iter().map(|(_, what, _)| *what).collect();
            Err(Error::format(
                path,
                format!("unknown event file type: expected {}", what.join(" or ")),
            ))
        }
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

/// The labelled sets of a run: training, validation and test samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Splits {
    /// Training samples.
    pub train: SpikeSet,
    /// Validation samples.
    pub validation: SpikeSet,
    /// Test samples.
    pub test: SpikeSet,
}

/// The event files of a run and how to read them ([`load`]).
#[derive(Debug, Clone, Copy)]
pub struct EventSources<'a> {
    /// The training file.
    pub train: &'a Path,
    /// A validation file; without one, [`hold_out`] takes `val_fraction` of `train`.
    pub validation: Option<&'a Path>,
    /// A test file (none: an empty test set).
    pub test: Option<&'a Path>,
    /// Input channels (units must lie below; any, when not given).
    pub channels: Option<usize>,
    /// Classes (labels must lie below; any, when not given).
    pub classes: Option<usize>,
    /// Fraction of `train` held out for validation when there is no validation file.
    pub val_fraction: f64,
    /// Seed of the hold-out.
    pub seed: u64,
    /// The most bytes the loaded events may take (16 B per event held, and
    /// [`files::LOAD_BYTES_PER_EVENT`] while an `.npz` file is read): a file declaring
    /// more is refused before its arrays are read. `None`: no bound.
    pub max_bytes: Option<u64>,
}

/// What the data of a run imply about the network: `channels` = largest unit + 1,
/// `classes` = largest label + 1, and the latest event time, over all three sets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DataSizes {
    /// Largest unit + 1 (1 when there are no events).
    pub channels: usize,
    /// Largest label + 1 (1 when there are no samples).
    pub classes: usize,
    /// The latest event time (s; 0 when there are no events).
    pub last_event: f64,
}

/// Reads the files of an events run, holds out the validation set, and returns the sets
/// with the sizes they imply.
///
/// # Errors
/// The readers' errors; [`hold_out`]'s.
pub fn load(src: &EventSources) -> Result<(Splits, DataSizes)> {
    let held = std::cell::Cell::new(0u64);
    let read = |p: &Path, channels: Option<usize>, classes: Option<usize>| -> Result<SpikeSet> {
        let is_npz = p.extension().is_some_and(|e| e.eq_ignore_ascii_case("npz"));
        let set = match src.max_bytes {
            Some(max) if is_npz => files::read_events_bounded(
                p,
                channels.unwrap_or(ANY_CHANNELS),
                classes.unwrap_or(ANY_CLASSES),
                Some(max.saturating_sub(held.get()) / files::LOAD_BYTES_PER_EVENT),
            )?,
            _ => read_event_file(p, channels, classes)?,
        };
        let events: u64 = set.samples.iter().map(|s| s.len() as u64).sum();
        held.set(held.get() + events * std::mem::size_of::<crate::Spike>() as u64);
        if let Some(max) = src.max_bytes {
            if held.get() > max {
                return Err(Error::invalid(
                    "memory",
                    format!("event data within {max} bytes (memory_limit_gib)"),
                    format!(
                        "{} bytes after reading {} ({events} events × 16 B)",
                        held.get(),
                        p.display()
                    ),
                ));
            }
        }
        Ok(set)
    };
    let train = read(src.train, src.channels, src.classes)?;
    // the network's sizes come from the train file (unless given): a validation or test
    // file with a unit or label beyond them is an error, not a larger network
    let train_channels = train
        .samples
        .iter()
        .flatten()
        .map(|e| e.neuron as usize + 1)
        .max()
        .unwrap_or(1);
    let train_classes = train.labels.iter().max().map_or(1, |&l| l + 1);
    let (channels, classes) = (
        src.channels.unwrap_or(train_channels),
        src.classes.unwrap_or(train_classes),
    );
    let read_other = |p: &Path| {
        read(p, Some(channels), Some(classes)).map_err(|e| match e {
            Error::Format { path, reason } if src.channels.is_none() || src.classes.is_none() => {
                Error::Format {
                    path,
                    reason: format!(
                        "{reason} (the train file's {channels} channels and {classes} classes; set events.channels / events.classes to allow more)"
                    ),
                }
            }
            e => e,
        })
    };
    let (train, validation) = match src.validation {
        Some(p) => (train, read_other(p)?),
        None => hold_out(train, src.val_fraction, src.seed)?,
    };
    let test = match src.test {
        Some(p) => read_other(p)?,
        None => SpikeSet::default(),
    };
    let sets = [&train, &validation, &test];
    let events = || sets.iter().flat_map(|s| s.samples.iter().flatten());
    let sizes = DataSizes {
        channels: events().map(|e| e.neuron).max().unwrap_or(0) as usize + 1,
        classes: sets
            .iter()
            .flat_map(|s| s.labels.iter())
            .copied()
            .max()
            .unwrap_or(0)
            + 1,
        last_event: events().map(|e| e.time).fold(0.0, f64::max),
    };
    Ok((
        Splits {
            train,
            validation,
            test,
        },
        sizes,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

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

//! Data files: labelled feature sets (`.npz`, CSV) and labelled spike-event sets (`.npz`).
//!
//! * Feature `.npz` ([`read_features`]): `x`, shape `(S, F)`, float32 or float64, and `y`,
//!   shape `(S,)`, integer labels (any integer dtype; float labels must be whole numbers).
//!   The published Yin-Yang sets are `(S, 4)` arrays of `(x, y, 1-x, 1-y)` with labels
//!   0..2 ([`read_yinyang`]).
//! * Feature CSV: per line `F` feature columns then the integer label, separated by
//!   commas; an optional header line (the first non-comment line, if any of its fields is
//!   not a number); `#` starts a comment (to the end of the line); blank lines are skipped.
//! * Event `.npz` ([`read_events`]): `times` (float, seconds, `>= 0`), `units` (integer
//!   input channel per event), `labels` `(S,)`, and either `offsets` (`S + 1` integers:
//!   sample `i` has events `offsets[i]..offsets[i+1]`) or `sample` (the sample index of
//!   each event).
//!
//! The format is chosen by the extension (`.npz` or `.csv`). Every problem is an
//! [`Error::Format`] whose one-line message names the file and the array, line or field:
//! a missing array, ragged or mismatched lengths, NaN/infinite features or times, negative
//! times, units or labels out of range, bad offsets, an empty file. A `.npy` entry's
//! declared shape and dtype are checked against the entry's size (and a deflated entry's
//! size against the file's) before anything is allocated.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use eventprop_core::error::{fmt_shape, one_line};
use ndarray::{Array2, ArrayD};
use ndarray_npy::npy::header::Header;
use ndarray_npy::{ReadNpyExt, ReadableElement};
use zip::ZipArchive;

use crate::error::{Error, Result};
use crate::npy;
use crate::sample::{Spike, SpikeSet};
use crate::yinyang;

/// A labelled feature set.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    /// `(samples, features)`, finite.
    pub values: Array2<f64>,
    /// The class of each sample.
    pub labels: Vec<usize>,
}

impl Features {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Features per sample.
    pub fn n_features(&self) -> usize {
        self.values.ncols()
    }
}

/// Reads a feature set (`.npz` or `.csv`, see the module docs) with labels in
/// `0..n_classes`.
///
/// # Errors
/// [`Error::Io`] for an unreadable file; [`Error::Format`] naming the file and the field
/// for anything else (another extension, missing arrays, mismatched lengths, non-finite
/// features, labels out of range, no samples).
pub fn read_features(path: &Path, n_classes: usize) -> Result<Features> {
    match extension(path).as_deref() {
        Some("npz") => read_features_npz(path, n_classes),
        Some("csv") => read_features_csv(path, n_classes),
        _ => Err(Error::format(
            path,
            "unknown data file type: expected a `.npz` (arrays `x`, `y`) or `.csv` file",
        )),
    }
}

/// Reads a Yin-Yang feature file ([`read_features`]): 4 features per sample in `[0, 1]`
/// (`x, y, 1-x, 1-y`), labels in `0..3`.
///
/// # Errors
/// As [`read_features`], and [`Error::Format`] for another feature count or a feature
/// outside `[0, 1]` (it would be encoded as a spike outside the input window).
pub fn read_yinyang(path: &Path) -> Result<yinyang::Dataset> {
    let f = read_features(path, yinyang::N_CLASSES)?;
    let field = if extension(path).as_deref() == Some("npz") {
        "`x`"
    } else {
        "columns"
    };
    if f.n_features() != 4 {
        return Err(Error::format(
            path,
            format!(
                "{field}: {} features per sample, Yin-Yang expects 4 (x, y, 1-x, 1-y)",
                f.n_features()
            ),
        ));
    }
    let mut features = Vec::with_capacity(f.len());
    for (i, row) in f.values.outer_iter().enumerate() {
        let r = [row[0], row[1], row[2], row[3]];
        if let Some(j) = r.iter().position(|v| !(0.0..=1.0).contains(v)) {
            return Err(Error::format(
                path,
                format!(
                    "{field}: sample {i}, feature {j} is {}, Yin-Yang features lie in [0, 1]",
                    r[j]
                ),
            ));
        }
        features.push(r);
    }
    Ok(yinyang::Dataset {
        features,
        labels: f.labels,
    })
}

/// Reads an event set (`.npz`, see the module docs) with units in `0..n_channels` and
/// labels in `0..n_classes`. The events of each sample keep their order in the file.
///
/// # Errors
/// [`Error::Io`] for an unreadable file; [`Error::Format`] naming the file and the array
/// for anything else (another extension, missing arrays, both or neither of `offsets` and
/// `sample`, mismatched lengths, non-finite or negative times, units or labels out of
/// range, offsets not starting at 0, decreasing, or not ending at the event count, no
/// samples).
pub fn read_events(path: &Path, n_channels: usize, n_classes: usize) -> Result<SpikeSet> {
    read_events_bounded(path, n_channels, n_classes, None)
}

/// The peak bytes per event of [`read_events`] while it reads: measured 28 B for the
/// `offsets` layout (docs/measurements.md), ≈ 36 B by count for a `sample` index per
/// event; the samples it returns hold 16 B per event.
pub const LOAD_BYTES_PER_EVENT: u64 = 40;

/// The peak bytes per sample of [`read_events`] while it reads, by count: its event list
/// (24 B), its label (8 B) and the label as read (16 B).
pub const LOAD_BYTES_PER_SAMPLE: u64 = 48;

/// [`read_events`], refusing a file whose `times` declares more than `max_events` events
/// before any array is read: a small file of well-compressed zeros may declare gigabytes.
///
/// # Errors
/// As [`read_events`]; [`Error::Invalid`] naming `memory`, the file and the declared
/// count.
pub fn read_events_bounded(
    path: &Path,
    n_channels: usize,
    n_classes: usize,
    max_events: Option<u64>,
) -> Result<SpikeSet> {
    if extension(path).as_deref() != Some("npz") {
        return Err(Error::format(
            path,
            "unknown event file type: expected a `.npz` file (arrays `times`, `units`, `labels`, and `offsets` or `sample`)",
        ));
    }
    let mut npz = Npz::open(path)?;
    let expected = "(`times`, `units`, `labels`, and `offsets` or `sample`)";
    if let Some(max) = max_events {
        let declared = npz.declared_len("times", expected)?;
        if declared > max {
            return Err(Error::invalid(
                "memory",
                format!(
                    "at most {max} events in {} (what memory_limit_gib leaves at {LOAD_BYTES_PER_EVENT} B per event while loading)",
                    path.display()
                ),
                format!("{declared} events declared by `times`"),
            ));
        }
        // samples cost memory without events (a list and a label each): a small file may
        // declare millions of empty ones
        let most = max.saturating_mul(LOAD_BYTES_PER_EVENT) / LOAD_BYTES_PER_SAMPLE;
        let samples = npz.declared_len("labels", expected)?;
        if samples > most {
            return Err(Error::invalid(
                "memory",
                format!(
                    "at most {most} samples in {} (what memory_limit_gib leaves at {LOAD_BYTES_PER_SAMPLE} B per sample while loading)",
                    path.display()
                ),
                format!("{samples} samples declared by `labels`"),
            ));
        }
    }
    let labels = npz.ints("labels", true, expected)?;
    let labels = check_labels(path, "`labels`", &labels, n_classes)?;
    let s = labels.len();
    let times = npz.floats("times", 1, expected)?.1;
    let units = npz.ints("units", false, expected)?;
    let e = times.len();
    if units.len() != e {
        return Err(Error::format(
            path,
            format!(
                "`units`: {} entries, expected one per event ({e}, the length of `times`)",
                units.len()
            ),
        ));
    }
    if let Some((i, t)) = times
        .iter()
        .enumerate()
        .find(|(_, t)| !t.is_finite() || **t < 0.0)
    {
        let what = if t.is_finite() {
            "negative"
        } else {
            "not finite"
        };
        return Err(Error::format(
            path,
            format!("`times`: event {i} is {t} ({what}; expected seconds >= 0)"),
        ));
    }
    if let Some((i, u)) = units
        .iter()
        .enumerate()
        .find(|(_, &u)| u < 0 || u >= n_channels as i128 || u > u32::MAX as i128)
    {
        return Err(Error::format(
            path,
            format!(
                "`units`: event {i} has unit {u}, expected 0..{n_channels} (the input channels)"
            ),
        ));
    }
    // 4 bytes per event from here on instead of 16 (the loader's peak per event)
    let units: Vec<u32> = units.into_iter().map(|u| u as u32).collect();
    let (has_offsets, has_sample) = (npz.has("offsets"), npz.has("sample"));
    let mut samples: Vec<Vec<Spike>> = vec![Vec::new(); s];
    let spike = |k: usize| Spike {
        time: times[k],
        neuron: units[k],
    };
    match (has_offsets, has_sample) {
        (true, true) => {
            return Err(Error::format(
                path,
                "has both `offsets` and `sample`; expected one of them",
            ))
        }
        (false, false) => {
            return Err(Error::format(
                path,
                format!(
                    "has neither `offsets` (S + 1 event offsets) nor `sample` (a sample index per event); it holds: {}",
                    npz.names_list()
                ),
            ))
        }
        (true, false) => {
            let offsets = npz.ints("offsets", false, expected)?;
            if offsets.len() != s + 1 {
                return Err(Error::format(
                    path,
                    format!(
                        "`offsets`: {} entries, expected samples + 1 = {} (`labels` has {s})",
                        offsets.len(),
                        s + 1
                    ),
                ));
            }
            if offsets[0] != 0 {
                return Err(Error::format(
                    path,
                    format!("`offsets`: starts at {}, expected 0", offsets[0]),
                ));
            }
            if let Some(i) = offsets.windows(2).position(|w| w[1] < w[0]) {
                return Err(Error::format(
                    path,
                    format!(
                        "`offsets`: not non-decreasing: entry {} is {} after {}",
                        i + 1,
                        offsets[i + 1],
                        offsets[i]
                    ),
                ));
            }
            if offsets[s] != e as i128 {
                return Err(Error::format(
                    path,
                    format!(
                        "`offsets`: ends at {}, expected the event count {e} (the length of `times`)",
                        offsets[s]
                    ),
                ));
            }
            for (i, sample) in samples.iter_mut().enumerate() {
                *sample = (offsets[i] as usize..offsets[i + 1] as usize)
                    .map(spike)
                    .collect();
            }
        }
        (false, true) => {
            let index = npz.ints("sample", false, expected)?;
            if index.len() != e {
                return Err(Error::format(
                    path,
                    format!(
                        "`sample`: {} entries, expected one per event ({e}, the length of `times`)",
                        index.len()
                    ),
                ));
            }
            if let Some((k, i)) = index
                .iter()
                .enumerate()
                .find(|(_, &i)| i < 0 || i >= s as i128)
            {
                return Err(Error::format(
                    path,
                    format!(
                        "`sample`: event {k} belongs to sample {i}, expected 0..{s} (`labels` has {s})"
                    ),
                ));
            }
            let index: Vec<usize> = index.into_iter().map(|i| i as usize).collect();
            // exact capacities: no growth slack on top of the 16 B per event
            let mut counts = vec![0usize; s];
            for &i in &index {
                counts[i] += 1;
            }
            for (sample, &c) in samples.iter_mut().zip(&counts) {
                sample.reserve_exact(c);
            }
            drop(counts);
            for (k, &i) in index.iter().enumerate() {
                samples[i].push(spike(k));
            }
        }
    }
    Ok(SpikeSet { samples, labels })
}

/// Writes an event set as the event `.npz` that [`read_events`] reads: `times` (float64,
/// s), `units` (uint32), `offsets` (int64, `S + 1`) and `labels` (int64); atomically.
///
/// # Errors
/// [`Error::Io`] naming `path`.
pub fn write_events(path: &Path, set: &SpikeSet) -> Result<()> {
    let n: usize = set.samples.iter().map(Vec::len).sum();
    let mut times = Vec::with_capacity(n);
    let mut units = Vec::with_capacity(n);
    let mut offsets = Vec::with_capacity(set.len() + 1);
    offsets.push(0i64);
    for s in &set.samples {
        for e in s {
            times.push(e.time);
            units.push(e.neuron);
        }
        offsets.push(times.len() as i64);
    }
    let labels: Vec<i64> = set.labels.iter().map(|&l| l as i64).collect();
    crate::fsio::write_atomic_with(path, |w| {
        let io = |e: ndarray_npy::WriteNpzError| std::io::Error::other(e.to_string());
        let mut npz = ndarray_npy::NpzWriter::new(w);
        npz.add_array("times", &ndarray::Array1::from(times))
            .map_err(io)?;
        npz.add_array("units", &ndarray::Array1::from(units))
            .map_err(io)?;
        npz.add_array("offsets", &ndarray::Array1::from(offsets))
            .map_err(io)?;
        npz.add_array("labels", &ndarray::Array1::from(labels))
            .map_err(io)?;
        npz.finish().map_err(io)?;
        Ok(())
    })
}

/// Writes a Yin-Yang set as the feature `.npz` that [`read_yinyang`] reads: `x` (float64,
/// `(S, 4)`: `x, y, 1-x, 1-y`) and `y` (int64 labels); atomically. The features are stored
/// bit-exactly, so training on the file equals training on the set.
///
/// # Errors
/// [`Error::Io`] naming `path`.
pub fn write_yinyang(path: &Path, set: &yinyang::Dataset) -> Result<()> {
    let x: Vec<f64> = set.features.iter().flatten().copied().collect();
    let x = Array2::from_shape_vec((set.features.len(), 4), x).expect("4 features per sample");
    let y: Vec<i64> = set.labels.iter().map(|&l| l as i64).collect();
    crate::fsio::write_atomic_with(path, |w| {
        let io = |e: ndarray_npy::WriteNpzError| std::io::Error::other(e.to_string());
        let mut npz = ndarray_npy::NpzWriter::new(w);
        npz.add_array("x", &x).map_err(io)?;
        npz.add_array("y", &ndarray::Array1::from(y)).map_err(io)?;
        npz.finish().map_err(io)?;
        Ok(())
    })
}

fn extension(path: &Path) -> Option<String> {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
}

/// Labels as `usize`, each in `0..n_classes`; at least one.
fn check_labels(path: &Path, field: &str, labels: &[i128], n_classes: usize) -> Result<Vec<usize>> {
    if labels.is_empty() {
        return Err(Error::format(path, format!("{field}: no samples")));
    }
    if let Some((i, l)) = labels
        .iter()
        .enumerate()
        .find(|(_, &l)| l < 0 || l >= n_classes as i128)
    {
        return Err(Error::format(
            path,
            format!("{field}: sample {i} has label {l}, expected 0..{n_classes}"),
        ));
    }
    Ok(labels.iter().map(|&l| l as usize).collect())
}

fn read_features_npz(path: &Path, n_classes: usize) -> Result<Features> {
    let mut npz = Npz::open(path)?;
    let expected = "(`x`: (samples, features) floats, `y`: (samples,) integer labels)";
    let (shape, x) = npz.floats("x", 2, expected)?;
    let y = npz.ints("y", true, expected)?;
    let (s, f) = (shape[0], shape[1]);
    if y.len() != s {
        return Err(Error::format(
            path,
            format!("`y`: {} labels, expected one per row of `x` ({s})", y.len()),
        ));
    }
    let labels = check_labels(path, "`y`", &y, n_classes)?;
    if f == 0 {
        return Err(Error::format(path, "`x`: 0 features per sample"));
    }
    if let Some(k) = x.iter().position(|v| !v.is_finite()) {
        return Err(Error::format(
            path,
            format!(
                "`x`: sample {}, feature {} is {} (expected finite features)",
                k / f,
                k % f,
                x[k]
            ),
        ));
    }
    let values = Array2::from_shape_vec((s, f), x).expect("length checked against the shape");
    Ok(Features { values, labels })
}

fn read_features_csv(path: &Path, n_classes: usize) -> Result<Features> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if len == 0 {
        return Err(Error::format(
            path,
            "empty file (0 bytes), expected CSV rows of features then a label",
        ));
    }
    let mut values = Vec::new();
    let mut labels = Vec::new();
    let mut columns: Option<(usize, usize)> = None; // (count, line it was set on)
    let mut header: Option<(usize, usize)> = None;
    let mut seen_content = false;
    for (k, line) in BufReader::new(file).lines().enumerate() {
        let n = k + 1;
        let line = line.map_err(|e| {
            if e.kind() == std::io::ErrorKind::InvalidData {
                Error::format(path, format!("line {n}: not UTF-8 text"))
            } else {
                Error::io(path, e)
            }
        })?;
        let content = line.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let fields: Vec<&str> = content.split(',').map(str::trim).collect();
        let first = !seen_content;
        seen_content = true;
        if first && fields.iter().any(|f| f.parse::<f64>().is_err()) {
            header = Some((fields.len(), n));
            continue;
        }
        match columns {
            None => {
                if fields.len() < 2 {
                    return Err(Error::format(
                        path,
                        format!("line {n}: 1 column, expected feature columns then a label"),
                    ));
                }
                if let Some((h, hl)) = header {
                    if h != fields.len() {
                        return Err(Error::format(
                            path,
                            format!(
                                "line {n}: {} columns, but the header (line {hl}) names {h}",
                                fields.len()
                            ),
                        ));
                    }
                }
                columns = Some((fields.len(), n));
            }
            Some((c, cl)) if c != fields.len() => {
                return Err(Error::format(
                    path,
                    format!(
                        "line {n}: {} columns, expected {c} (as on line {cl})",
                        fields.len()
                    ),
                ));
            }
            Some(_) => {}
        }
        let (label, feats) = fields.split_last().expect("at least two fields");
        for (j, s) in feats.iter().enumerate() {
            let v: f64 = s.parse().map_err(|_| {
                Error::format(
                    path,
                    format!("line {n}, column {}: `{s}` is not a number", j + 1),
                )
            })?;
            if !v.is_finite() {
                return Err(Error::format(
                    path,
                    format!(
                        "line {n}, column {}: feature is {v} (expected finite features)",
                        j + 1
                    ),
                ));
            }
            values.push(v);
        }
        let l = parse_label(label).ok_or_else(|| {
            Error::format(
                path,
                format!(
                    "line {n}, column {} (label): `{label}` is not an integer",
                    fields.len()
                ),
            )
        })?;
        if l < 0 || l >= n_classes as i128 {
            return Err(Error::format(
                path,
                format!(
                    "line {n}, column {} (label): {l}, expected 0..{n_classes}",
                    fields.len()
                ),
            ));
        }
        labels.push(l as usize);
    }
    let Some((c, _)) = columns else {
        return Err(Error::format(
            path,
            "no samples (only comments, blank lines or a header)",
        ));
    };
    let values = Array2::from_shape_vec((labels.len(), c - 1), values)
        .expect("every row has c - 1 features");
    Ok(Features { values, labels })
}

/// An integer label: `3`, or a whole float such as `3.0`.
fn parse_label(s: &str) -> Option<i128> {
    if let Ok(v) = s.parse::<i128>() {
        return Some(v);
    }
    let v: f64 = s.parse().ok()?;
    (v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15).then_some(v as i128)
}

/// An open `.npz` archive whose arrays are read with their sizes checked first (also the
/// chip's recording files, `chip::record_file`).
pub struct Npz {
    path: PathBuf,
    file_len: u64,
    zip: ZipArchive<BufReader<File>>,
}

impl Npz {
    /// Opens the archive at `path`.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file; [`Error::Format`] for an empty file or one that is
    /// not a zip archive.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if file_len == 0 {
            return Err(Error::format(
                path,
                "empty file (0 bytes), expected a .npz archive",
            ));
        }
        let zip = ZipArchive::new(BufReader::new(file)).map_err(|e| {
            Error::format(path, format!("not a .npz (zip) archive ({})", one_line(e)))
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            file_len,
            zip,
        })
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.zip
            .index_for_name(&format!("{name}.npy"))
            .or_else(|| self.zip.index_for_name(name))
    }

    /// Whether the archive holds array `name` (`name.npy` or `name`).
    pub fn has(&self, name: &str) -> bool {
        self.index(name).is_some()
    }

    fn names_list(&self) -> String {
        let mut names: Vec<&str> = self
            .zip
            .file_names()
            .map(|n| n.strip_suffix(".npy").unwrap_or(n))
            .collect();
        names.sort_unstable();
        if names.is_empty() {
            "nothing".into()
        } else {
            names.join(", ")
        }
    }

    /// An [`Error::Format`] naming the file and array `name`.
    pub fn err(&self, name: &str, reason: impl std::fmt::Display) -> Error {
        Error::format(&self.path, format!("`{name}`: {reason}"))
    }

    /// The header of array `name`, after checking that the entry holds exactly the data
    /// it declares; and the entry's index.
    fn header(&mut self, name: &str, expected: &str) -> Result<(usize, Header)> {
        let Some(index) = self.index(name) else {
            return Err(self.err(
                name,
                format!(
                    "missing array, expected {expected}; the file holds: {}",
                    self.names_list()
                ),
            ));
        };
        let path = self.path.clone();
        let zip_err = |e: zip::result::ZipError| {
            Error::format(
                &path,
                format!("`{name}`: cannot read the zip entry ({})", one_line(e)),
            )
        };
        let (size, compressed, method) = {
            let raw = self.zip.by_index_raw(index).map_err(zip_err)?;
            (raw.size(), raw.compressed_size(), raw.compression())
        };
        let Some(plausible) = npy::zip_entry_plausible(size, compressed, method) else {
            return Err(self.err(
                name,
                format!("compression method {method} is not supported (only stored, as from np.savez, or deflate, as from np.savez_compressed)"),
            ));
        };
        if compressed > self.file_len || !plausible {
            return Err(self.err(
                name,
                format!(
                    "corrupt zip entry: it declares {size} bytes ({compressed} compressed, {method}) in a file of {} bytes",
                    self.file_len
                ),
            ));
        }
        let entry = self.zip.by_index(index).map_err(zip_err)?;
        let (header, header_len) = match npy::read_header(entry, size) {
            Ok(read) => read,
            Err(npy::HeaderError::Truncated) => {
                return Err(self.err(
                    name,
                    format!("truncated .npy: the entry ends inside the header ({size} bytes)"),
                ))
            }
            Err(npy::HeaderError::Io(e)) => {
                return Err(self.err(name, format!("not a valid .npy array ({})", one_line(e))))
            }
            Err(npy::HeaderError::Invalid(e)) => {
                return Err(self.err(name, format!("not a valid .npy array ({})", one_line(e))))
            }
        };
        let Some((_, item)) = npy::dtype(&header) else {
            return Err(self.err(
                name,
                format!("unsupported dtype {}", header.type_descriptor),
            ));
        };
        let data_len = size.saturating_sub(header_len);
        let declared = match npy::data_size(&header, item) {
            npy::DataSize::Bytes(b) if b == data_len && b <= isize::MAX as u64 => None,
            npy::DataSize::Bytes(b) => Some(format!("{b} bytes")),
            npy::DataSize::Overflow | npy::DataSize::TooManyElements => {
                Some("more bytes than fit in memory".to_string())
            }
        };
        if let Some(declared) = declared {
            return Err(self.err(
                name,
                format!(
                    "truncated or corrupt .npy: the header declares shape {} of dtype {} ({declared}), but {data_len} bytes of data follow the header",
                    fmt_shape(&header.shape),
                    header.type_descriptor,
                ),
            ));
        }
        Ok((index, header))
    }

    fn read<T: ReadableElement + Clone>(&mut self, index: usize, name: &str) -> Result<Vec<T>> {
        let entry = self.zip.by_index(index).map_err(|e| {
            Error::format(
                &self.path,
                format!("`{name}`: cannot read the zip entry ({e})"),
            )
        })?;
        let a = ArrayD::<T>::read_npy(entry).map_err(|e| {
            Error::format(
                &self.path,
                format!("`{name}`: cannot read the array ({})", one_line(e)),
            )
        })?;
        // Row-major order whatever the file's layout (the buffer itself, without a copy,
        // where it already is).
        if a.is_standard_layout() {
            let (v, offset) = a.into_raw_vec_and_offset();
            if offset.unwrap_or(0) == 0 {
                return Ok(v);
            }
            return Ok(v[offset.unwrap_or(0)..].to_vec());
        }
        Ok(a.iter().cloned().collect())
    }

    /// The number of elements array `name` declares (its header's shape; the entry's
    /// data are checked to match it), without reading the data.
    ///
    /// # Errors
    /// As the readers: a missing array, a corrupt entry or header.
    pub fn declared_len(&mut self, name: &str, expected: &str) -> Result<u64> {
        let (_, header) = self.header(name, expected)?;
        Ok(header
            .shape
            .iter()
            .fold(1u64, |n, &d| n.saturating_mul(d as u64)))
    }

    /// A float32/float64 array of `ndim` dimensions: its shape and its values (row-major).
    pub fn floats(
        &mut self,
        name: &str,
        ndim: usize,
        expected: &str,
    ) -> Result<(Vec<usize>, Vec<f64>)> {
        let (index, header) = self.header(name, expected)?;
        if header.shape.len() != ndim {
            return Err(self.err(
                name,
                format!(
                    "expected a {ndim}-D array, got shape {} {expected}",
                    fmt_shape(&header.shape)
                ),
            ));
        }
        let values = match npy::dtype(&header) {
            Some(('f', 8)) => self.read::<f64>(index, name)?,
            Some(('f', 4)) => self
                .read::<f32>(index, name)?
                .into_iter()
                .map(f64::from)
                .collect(),
            _ => {
                return Err(self.err(
                    name,
                    format!(
                        "expected float32 or float64, got dtype {}",
                        header.type_descriptor
                    ),
                ))
            }
        };
        Ok((header.shape, values))
    }

    /// A 1-D integer array (any integer dtype; with `whole_floats`, also float arrays of
    /// whole numbers).
    pub fn ints(&mut self, name: &str, whole_floats: bool, expected: &str) -> Result<Vec<i128>> {
        let (index, header) = self.header(name, expected)?;
        if header.shape.len() != 1 {
            return Err(self.err(
                name,
                format!(
                    "expected a 1-D array, got shape {}",
                    fmt_shape(&header.shape)
                ),
            ));
        }
        fn wide<T: Into<i128>>(v: Vec<T>) -> Vec<i128> {
            v.into_iter().map(Into::into).collect()
        }
        let floats = |s: &mut Self, v: Vec<f64>| -> Result<Vec<i128>> {
            match v
                .iter()
                .position(|x| !(x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15))
            {
                Some(i) => Err(s.err(name, format!("entry {i} is {}, expected an integer", v[i]))),
                None => Ok(v.into_iter().map(|x| x as i128).collect()),
            }
        };
        match npy::dtype(&header) {
            Some(('i', 1)) => Ok(wide(self.read::<i8>(index, name)?)),
            Some(('i', 2)) => Ok(wide(self.read::<i16>(index, name)?)),
            Some(('i', 4)) => Ok(wide(self.read::<i32>(index, name)?)),
            Some(('i', 8)) => Ok(wide(self.read::<i64>(index, name)?)),
            Some(('u', 1)) => Ok(wide(self.read::<u8>(index, name)?)),
            Some(('u', 2)) => Ok(wide(self.read::<u16>(index, name)?)),
            Some(('u', 4)) => Ok(wide(self.read::<u32>(index, name)?)),
            Some(('u', 8)) => Ok(wide(self.read::<u64>(index, name)?)),
            Some(('f', 8)) if whole_floats => {
                let v = self.read::<f64>(index, name)?;
                floats(self, v)
            }
            Some(('f', 4)) if whole_floats => {
                let v = self
                    .read::<f32>(index, name)?
                    .into_iter()
                    .map(f64::from)
                    .collect();
                floats(self, v)
            }
            _ => Err(self.err(
                name,
                format!(
                    "expected an integer array, got dtype {}",
                    header.type_descriptor
                ),
            )),
        }
    }
}

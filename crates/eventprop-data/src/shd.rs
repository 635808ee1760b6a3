//! Spike-event sets in the HDF5 layout of the Spiking Heidelberg Digits (SHD) and Spiking
//! Speech Commands (SSC), read directly (no conversion step).
//!
//! Datasets (Cramer et al. 2022, the files as published):
//!
//! * `spikes/times`: `(S,)` variable-length sequences of floats (float32 or float64), the
//!   spike times of each sample in seconds;
//! * `spikes/units`: `(S,)` variable-length sequences of integers (any width, signed or
//!   not), the input channel of each spike;
//! * `labels`: `(S,)` integers.
//!
//! `extra/*` (speaker, keys, meta data) is not read. Every problem is an [`Error::Format`]
//! naming the file and the dataset: a missing dataset, another datatype, `times` and
//! `units` of different lengths (as a whole or in one sample), NaN or negative times,
//! units or labels out of range, no samples. The reader is the pure-Rust `hdf5-reader`
//! crate (DESIGN.md "Dependencies").

use std::path::Path;

use eventprop_core::error::one_line;
use hdf5_reader::{ByteOrder, Dataset, Datatype, Hdf5File};

use crate::error::{Error, Result};
use crate::sample::{Spike, SpikeSet};

const TIMES: &str = "spikes/times";
const UNITS: &str = "spikes/units";
const LABELS: &str = "labels";

/// Reads an SHD/SSC-layout HDF5 file (see the module docs) with units in `0..n_channels`
/// and labels in `0..n_classes`. The events of each sample keep their order in the file.
///
/// # Errors
/// [`Error::Format`] naming the file and the dataset (see the module docs); an unreadable
/// or corrupt file is an [`Error::Format`] too, with the reader's message.
pub fn read_shd(path: &Path, n_channels: usize, n_classes: usize) -> Result<SpikeSet> {
    let file = Hdf5File::open(path)
        .map_err(|e| Error::format(path, format!("not a readable HDF5 file: {}", one_line(&e))))?;
    let open = |name: &str| {
        file.dataset(name).map_err(|e| {
            Error::format(
                path,
                format!(
                    "`{name}`: {} (an SHD/SSC file has `{TIMES}`, `{UNITS}` and `{LABELS}`)",
                    one_line(&e)
                ),
            )
        })
    };
    let (times, units, labels) = (open(TIMES)?, open(UNITS)?, open(LABELS)?);
    let labels = read_ints(path, LABELS, &labels)?;
    if labels.is_empty() {
        return Err(Error::format(path, format!("`{LABELS}`: no samples")));
    }
    if let Some((i, l)) = labels
        .iter()
        .enumerate()
        .find(|(_, &l)| l < 0 || l >= n_classes as i128)
    {
        return Err(Error::format(
            path,
            format!("`{LABELS}`: sample {i} has label {l}, expected 0..{n_classes}"),
        ));
    }
    let s = labels.len();
    let time_seqs = read_vlen(path, TIMES, &times, Kind::Float, floats)?;
    let unit_seqs = read_vlen(path, UNITS, &units, Kind::Int, ints)?;
    for (name, n) in [(TIMES, time_seqs.len()), (UNITS, unit_seqs.len())] {
        if n != s {
            return Err(Error::format(
                path,
                format!(
                    "`{name}`: {n} samples, expected one per label ({s}, the length of `{LABELS}`)"
                ),
            ));
        }
    }
    let mut samples = Vec::with_capacity(s);
    for (i, (t, u)) in time_seqs.iter().zip(&unit_seqs).enumerate() {
        if t.len() != u.len() {
            return Err(Error::format(
                path,
                format!(
                    "`{UNITS}`: sample {i} has {} units for {} spike times (`{TIMES}`), expected one per spike",
                    u.len(),
                    t.len()
                ),
            ));
        }
        let mut events = Vec::with_capacity(t.len());
        for (k, (&time, &unit)) in t.iter().zip(u).enumerate() {
            if !(time.is_finite() && time >= 0.0) {
                return Err(Error::format(
                    path,
                    format!(
                        "`{TIMES}`: sample {i}, spike {k} is at {time} (expected seconds >= 0)"
                    ),
                ));
            }
            if unit < 0 || unit >= n_channels as i128 || unit > u32::MAX as i128 {
                return Err(Error::format(
                    path,
                    format!(
                        "`{UNITS}`: sample {i}, spike {k} has unit {unit}, expected 0..{n_channels} (the input channels)"
                    ),
                ));
            }
            events.push(Spike {
                time,
                neuron: unit as u32,
            });
        }
        samples.push(events);
    }
    Ok(SpikeSet {
        samples,
        labels: labels.iter().map(|&l| l as usize).collect(),
    })
}

/// What a numeric dataset holds.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Float,
    Int,
}

/// The element layout of a numeric datatype: size, signedness (integers) and byte order.
#[derive(Clone, Copy)]
struct Layout {
    size: usize,
    signed: bool,
    little: bool,
}

fn layout(path: &Path, name: &str, dt: &Datatype, kind: Kind) -> Result<Layout> {
    let l = match (dt, kind) {
        (
            Datatype::FloatingPoint {
                size: size @ (4 | 8),
                byte_order,
            },
            Kind::Float,
        ) => Layout {
            size: usize::from(*size),
            signed: true,
            little: matches!(byte_order, ByteOrder::LittleEndian),
        },
        (
            Datatype::FixedPoint {
                size: size @ (1 | 2 | 4 | 8),
                signed,
                byte_order,
            },
            Kind::Int,
        ) => Layout {
            size: usize::from(*size),
            signed: *signed,
            little: matches!(byte_order, ByteOrder::LittleEndian),
        },
        _ => {
            let want = match kind {
                Kind::Float => "float32 or float64",
                Kind::Int => "integers of 1, 2, 4 or 8 bytes",
            };
            return Err(Error::format(
                path,
                format!("`{name}`: datatype {dt:?}, expected {want}"),
            ));
        }
    };
    Ok(l)
}

/// The values of `bytes` (elements of layout `l`) as raw little-endian `u64`s.
fn raw(bytes: &[u8], l: Layout) -> impl Iterator<Item = u64> + '_ {
    bytes.chunks_exact(l.size).map(move |c| {
        let mut b = [0u8; 8];
        if l.little {
            b[..l.size].copy_from_slice(c);
        } else {
            for (d, s) in b[..l.size].iter_mut().zip(c.iter().rev()) {
                *d = *s;
            }
        }
        u64::from_le_bytes(b)
    })
}

fn floats(bytes: &[u8], l: Layout) -> Vec<f64> {
    raw(bytes, l)
        .map(|r| {
            if l.size == 4 {
                f64::from(f32::from_bits(r as u32))
            } else {
                f64::from_bits(r)
            }
        })
        .collect()
}

fn ints(bytes: &[u8], l: Layout) -> Vec<i128> {
    let shift = 64 - 8 * l.size as u32;
    raw(bytes, l)
        .map(|r| {
            if l.signed {
                i128::from(((r << shift) as i64) >> shift)
            } else {
                i128::from(r)
            }
        })
        .collect()
}

fn check_1d(path: &Path, name: &str, d: &Dataset) -> Result<()> {
    if d.shape().len() != 1 {
        return Err(Error::format(
            path,
            format!(
                "`{name}`: shape {:?}, expected one dimension (samples,)",
                d.shape()
            ),
        ));
    }
    Ok(())
}

fn reader_error(path: &Path, name: &str, e: impl std::fmt::Display) -> Error {
    Error::format(path, format!("`{name}`: {}", one_line(&e)))
}

/// A 1-D integer dataset.
fn read_ints(path: &Path, name: &str, d: &Dataset) -> Result<Vec<i128>> {
    check_1d(path, name, d)?;
    let l = layout(path, name, d.dtype(), Kind::Int)?;
    let bytes = d
        .read_raw_bytes()
        .map_err(|e| reader_error(path, name, e))?;
    Ok(ints(&bytes, l))
}

/// A 1-D dataset of variable-length sequences of numbers of `kind`.
fn read_vlen<T>(
    path: &Path,
    name: &str,
    d: &Dataset,
    kind: Kind,
    decode: fn(&[u8], Layout) -> Vec<T>,
) -> Result<Vec<Vec<T>>> {
    check_1d(path, name, d)?;
    let Datatype::VarLen { base, .. } = d.dtype() else {
        return Err(Error::format(
            path,
            format!(
                "`{name}`: datatype {:?}, expected variable-length sequences (one per sample)",
                d.dtype()
            ),
        ));
    };
    let l = layout(path, name, base, kind)?;
    let refs = d
        .read_raw_bytes()
        .map_err(|e| reader_error(path, name, e))?;
    let size = d.vlen_reference_size();
    refs.chunks_exact(size)
        .map(|r| {
            let bytes = d
                .resolve_vlen_reference_bytes(r, l.size)
                .map_err(|e| reader_error(path, name, e))?;
            Ok(decode(&bytes, l))
        })
        .collect()
}

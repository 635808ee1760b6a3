//! Recordings as `.npz` files, so that a run on real hardware can be stored and replayed
//! through the mapping ([`super::GridMap`]) and the seed function.
//!
//! Arrays (NumPy names; `k` = layer index, hidden layers first):
//!
//! | name | dtype, shape | meaning |
//! |---|---|---|
//! | `samples`, `layers` | int64 `(1,)` | batch size `B`, number of layers |
//! | `l{k}.size` | int64 `(1,)` | neurons of layer `k` |
//! | `l{k}.spikes_recorded` | int64 `(1,)` | 1 if the layer's spikes were recorded |
//! | `l{k}.spike_sample`, `l{k}.spike_neuron` | int64 `(E,)` | sample and neuron of each event |
//! | `l{k}.spike_time` | float64 `(E,)` | event time (s) |
//! | `l{k}.trace_offsets` | int64 `(B·N + 1,)` | traces (sample-major) `j` = entries `[o[j], o[j+1])` (only where membranes were recorded) |
//! | `l{k}.trace_times`, `l{k}.trace_values` | float64 `(S,)` | sample times (s) and readout values |

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use ndarray::Array1;
use ndarray_npy::{NpzReader, NpzWriter};

use super::{LayerRecording, Recording, SampledTrace};
use crate::data::Spike;
use crate::error::{Error, Result};

/// Writes `recording` to `path` (atomically).
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn save_npz(recording: &Recording, path: &Path) -> Result<()> {
    let one = |v: usize| Array1::from_elem(1, v as i64);
    crate::fsio::write_atomic_with(path, |w| {
        let mut npz = NpzWriter::new(w);
        let mut add_i =
            |name: String, a: Array1<i64>| npz.add_array(name, &a).map_err(std::io::Error::other);
        add_i("samples".into(), one(recording.samples))?;
        add_i("layers".into(), one(recording.layers.len()))?;
        let mut floats: Vec<(String, Array1<f64>)> = Vec::new();
        for (k, l) in recording.layers.iter().enumerate() {
            add_i(format!("l{k}.size"), one(l.size))?;
            add_i(
                format!("l{k}.spikes_recorded"),
                one(usize::from(!l.spikes.is_empty())),
            )?;
            let events: Vec<(usize, &Spike)> = l
                .spikes
                .iter()
                .enumerate()
                .flat_map(|(b, e)| e.iter().map(move |s| (b, s)))
                .collect();
            add_i(
                format!("l{k}.spike_sample"),
                events.iter().map(|e| e.0 as i64).collect(),
            )?;
            add_i(
                format!("l{k}.spike_neuron"),
                events.iter().map(|e| i64::from(e.1.neuron)).collect(),
            )?;
            floats.push((
                format!("l{k}.spike_time"),
                events.iter().map(|e| e.1.time).collect(),
            ));
            if let Some(m) = &l.membrane {
                let traces: Vec<&SampledTrace> = m.iter().flatten().collect();
                let mut offsets = vec![0i64];
                for t in &traces {
                    offsets.push(offsets.last().copied().unwrap_or(0) + t.times.len() as i64);
                }
                add_i(format!("l{k}.trace_offsets"), Array1::from(offsets))?;
                floats.push((
                    format!("l{k}.trace_times"),
                    traces
                        .iter()
                        .flat_map(|t| t.times.iter().copied())
                        .collect(),
                ));
                floats.push((
                    format!("l{k}.trace_values"),
                    traces
                        .iter()
                        .flat_map(|t| t.values.iter().copied())
                        .collect(),
                ));
            }
        }
        for (name, a) in floats {
            npz.add_array(name, &a).map_err(std::io::Error::other)?;
        }
        npz.finish().map_err(std::io::Error::other)?;
        Ok(())
    })
}

/// Largest batch a recording file may declare (the per-sample lists are allocated first).
pub const MAX_SAMPLES: usize = 10_000_000;
/// Largest number of layers a recording file may declare.
pub const MAX_LAYERS: usize = 1024;
/// Largest `samples × neurons` of a layer (one list per trace).
pub const MAX_TRACES: usize = 100_000_000;

fn bad(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::format(path, reason.to_string())
}

/// Reads a recording written by [`save_npz`] (or by any tool writing the same arrays).
///
/// # Errors
/// [`Error::Io`] for an unreadable file; [`Error::Format`] naming the file and the array for
/// a missing array, a wrong dtype or length, a negative or out-of-range index, offsets that
/// do not increase or end at the data length, more than [`MAX_SAMPLES`] samples,
/// [`MAX_LAYERS`] layers or [`MAX_TRACES`] samples × neurons in a layer. (The values themselves — finite, increasing
/// times — are checked by [`super::GridMap::map`].)
pub fn load_npz(path: &Path) -> Result<Recording> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut npz = NpzReader::new(BufReader::new(file)).map_err(|e| bad(path, e))?;
    let mut ints = |name: &str| -> Result<Vec<i64>> {
        npz.by_name::<ndarray::OwnedRepr<i64>, ndarray::Ix1>(name)
            .map(|a| a.to_vec())
            .map_err(|e| bad(path, format!("array `{name}`: {e}")))
    };
    let scalar = |name: &str, v: Vec<i64>| -> Result<usize> {
        match v.as_slice() {
            [x] if *x >= 0 => Ok(*x as usize),
            _ => Err(bad(
                path,
                format!("array `{name}`: expected one value >= 0"),
            )),
        }
    };
    let samples = scalar("samples", ints("samples")?)?;
    let n_layers = scalar("layers", ints("layers")?)?;
    if samples > MAX_SAMPLES || n_layers > MAX_LAYERS {
        return Err(bad(
            path,
            format!("at most {MAX_SAMPLES} samples and {MAX_LAYERS} layers, got {samples} and {n_layers}"),
        ));
    }
    let mut raw = Vec::with_capacity(n_layers.min(1024));
    for k in 0..n_layers {
        let size = scalar("size", ints(&format!("l{k}.size"))?)?;
        if samples.saturating_mul(size) > MAX_TRACES {
            return Err(bad(
                path,
                format!(
                    "layer {k}: at most {MAX_TRACES} samples × neurons, got {samples} × {size}"
                ),
            ));
        }
        let recorded = scalar("spikes_recorded", ints(&format!("l{k}.spikes_recorded"))?)?;
        let sample = ints(&format!("l{k}.spike_sample"))?;
        let neuron = ints(&format!("l{k}.spike_neuron"))?;
        let offsets = ints(&format!("l{k}.trace_offsets")).ok();
        raw.push((size, recorded, sample, neuron, offsets));
    }
    let mut floats = |name: &str| -> Result<Vec<f64>> {
        npz.by_name::<ndarray::OwnedRepr<f64>, ndarray::Ix1>(name)
            .map(|a| a.to_vec())
            .map_err(|e| bad(path, format!("array `{name}`: {e}")))
    };
    let mut layers = Vec::with_capacity(raw.len());
    for (k, (size, recorded, sample, neuron, offsets)) in raw.into_iter().enumerate() {
        let time = floats(&format!("l{k}.spike_time"))?;
        if sample.len() != time.len() || neuron.len() != time.len() {
            return Err(bad(
                path,
                format!(
                    "layer {k}: spike_sample, spike_neuron and spike_time of different lengths"
                ),
            ));
        }
        let mut spikes = if recorded == 1 {
            vec![Vec::new(); samples]
        } else {
            Vec::new()
        };
        for ((&b, &n), &t) in sample.iter().zip(&neuron).zip(&time) {
            if b < 0 || b as usize >= samples || n < 0 || n as usize >= size || recorded != 1 {
                return Err(bad(
                    path,
                    format!("layer {k}: event (sample {b}, neuron {n}) outside {samples} samples × {size} neurons (or spikes_recorded = 0)"),
                ));
            }
            spikes[b as usize].push(Spike {
                time: t,
                neuron: n as u32,
            });
        }
        let membrane = match offsets {
            None => None,
            Some(o) => {
                let times = floats(&format!("l{k}.trace_times"))?;
                let values = floats(&format!("l{k}.trace_values"))?;
                let traces = samples.saturating_mul(size);
                let ok = o.len() == traces.saturating_add(1)
                    && o.first() == Some(&0)
                    && o.windows(2).all(|w| w[0] <= w[1])
                    && o.last().is_some_and(|&e| e as usize == times.len())
                    && times.len() == values.len();
                if !ok {
                    return Err(bad(
                        path,
                        format!("layer {k}: trace_offsets must be {} increasing values from 0 to the length of trace_times (= trace_values)", traces.saturating_add(1)),
                    ));
                }
                let mut per_sample = Vec::with_capacity(samples);
                for b in 0..samples {
                    per_sample.push(
                        (0..size)
                            .map(|n| {
                                let j = b * size + n;
                                let (s, e) = (o[j] as usize, o[j + 1] as usize);
                                SampledTrace {
                                    times: times[s..e].to_vec(),
                                    values: values[s..e].to_vec(),
                                }
                            })
                            .collect(),
                    );
                }
                Some(per_sample)
            }
        };
        layers.push(LayerRecording {
            size,
            spikes,
            membrane,
        });
    }
    Ok(Recording { layers, samples })
}

//! Recordings as `.npz` files, so that a run on real hardware can be stored and replayed
//! through the mapping ([`crate::GridMap`]) and the seed function.
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

use std::path::Path;

use ndarray::Array1;
use ndarray_npy::NpzWriter;

use crate::error::Result;
use crate::{LayerRecording, Recording, SampledTrace};
use eventprop_core::Spike;
use eventprop_data::files::Npz;

/// Writes `recording` to `path` (atomically).
///
/// # Errors
/// [`crate::Error::Io`] naming the file.
pub fn save_npz(recording: &Recording, path: &Path) -> Result<()> {
    let one = |v: usize| Array1::from_elem(1, v as i64);
    eventprop_data::fsio::write_atomic_with(path, |w| {
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
    })?;
    Ok(())
}

/// Largest batch a recording file may declare (the per-sample lists are allocated first).
pub const MAX_SAMPLES: usize = 10_000_000;
/// Largest number of layers a recording file may declare.
pub const MAX_LAYERS: usize = 1024;
/// Largest `samples × neurons` of a layer (one list per trace, 48 B each before any
/// sample: at most 0.5 GB however well the file's offsets compress).
pub const MAX_TRACES: usize = 10_000_000;

/// Reads a recording written by [`save_npz`] (or by any tool writing the same arrays).
///
/// Arrays are read through the checked `.npz` reader of the data files
/// ([`eventprop_data::files`]): every entry's declared shape and dtype are checked against its data
/// before anything is allocated, so a truncated or corrupt file is an error, not an
/// allocation of what its header claims. Integer arrays may have any integer dtype, float
/// arrays float32 or float64.
///
/// # Errors
/// [`crate::Error::Io`] for an unreadable file; [`crate::Error::Format`] naming the file and the array
/// (expected vs found) for: not a zip archive, a missing array, a wrong dtype or number of
/// dimensions, a truncated or corrupt entry, a wrong length, a negative or out-of-range
/// index, a non-finite or negative spike time, a non-finite sample time or value, sample
/// times not increasing within a trace, offsets that do not increase or end at the data
/// length, more than [`MAX_SAMPLES`] samples, [`MAX_LAYERS`] layers or [`MAX_TRACES`]
/// samples × neurons in a layer.
pub fn load_npz(path: &Path) -> Result<Recording> {
    let mut npz = Npz::open(path)?;
    let count = |npz: &mut Npz, name: &str| -> Result<usize> {
        let v = npz.ints(name, false, "int64 (1,)")?;
        match v.as_slice() {
            [x] if *x >= 0 && *x <= usize::MAX as i128 => Ok(*x as usize),
            _ => Err(npz_err(
                npz,
                name,
                format!(
                    "expected one integer >= 0, got {} values {:?}",
                    v.len(),
                    &v[..v.len().min(4)]
                ),
            )),
        }
    };
    let samples = count(&mut npz, "samples")?;
    let n_layers = count(&mut npz, "layers")?;
    if samples > MAX_SAMPLES {
        return Err(npz_err(
            &npz,
            "samples",
            format!("expected at most {MAX_SAMPLES}, got {samples}"),
        ));
    }
    if n_layers > MAX_LAYERS {
        return Err(npz_err(
            &npz,
            "layers",
            format!("expected at most {MAX_LAYERS}, got {n_layers}"),
        ));
    }
    let mut layers = Vec::with_capacity(n_layers);
    for k in 0..n_layers {
        let size = count(&mut npz, &format!("l{k}.size"))?;
        if samples.saturating_mul(size) > MAX_TRACES {
            return Err(npz_err(
                &npz,
                &format!("l{k}.size"),
                format!("expected at most {MAX_TRACES} samples × neurons, got {samples} × {size}"),
            ));
        }
        let recorded_name = format!("l{k}.spikes_recorded");
        let recorded = count(&mut npz, &recorded_name)?;
        if recorded > 1 {
            return Err(npz_err(
                &npz,
                &recorded_name,
                format!("expected 0 or 1, got {recorded}"),
            ));
        }
        let (sn, nn, tn) = (
            format!("l{k}.spike_sample"),
            format!("l{k}.spike_neuron"),
            format!("l{k}.spike_time"),
        );
        let sample = npz.ints(&sn, false, "int64 (E,)")?;
        let neuron = npz.ints(&nn, false, "int64 (E,)")?;
        let (_, time) = npz.floats(&tn, 1, "float64 (E,)")?;
        if sample.len() != time.len() || neuron.len() != time.len() {
            return Err(npz_err(
                &npz,
                &tn,
                format!(
                    "expected {} events as in {sn}, got {} ({nn}: {})",
                    sample.len(),
                    time.len(),
                    neuron.len()
                ),
            ));
        }
        if recorded == 0 && !time.is_empty() {
            return Err(npz_err(
                &npz,
                &tn,
                format!(
                    "expected no events ({recorded_name} = 0), got {}",
                    time.len()
                ),
            ));
        }
        let mut spikes = if recorded == 1 {
            vec![Vec::new(); samples]
        } else {
            Vec::new()
        };
        for (i, ((&b, &n), &t)) in sample.iter().zip(&neuron).zip(&time).enumerate() {
            if b < 0 || b as usize >= samples {
                return Err(npz_err(
                    &npz,
                    &sn,
                    format!("entry {i}: expected a sample in [0, {samples}), got {b}"),
                ));
            }
            if n < 0 || n as usize >= size {
                return Err(npz_err(
                    &npz,
                    &nn,
                    format!("entry {i}: expected a neuron in [0, {size}), got {n}"),
                ));
            }
            if !(t.is_finite() && t >= 0.0) {
                return Err(npz_err(
                    &npz,
                    &tn,
                    format!("entry {i}: expected a finite time >= 0 s, got {t}"),
                ));
            }
            spikes[b as usize].push(Spike {
                time: t,
                neuron: n as u32,
            });
        }
        let on = format!("l{k}.trace_offsets");
        let membrane = if npz.has(&on) {
            let traces = samples * size;
            let o = npz.ints(&on, false, &format!("int64 ({},)", traces + 1))?;
            let (ttn, tvn) = (format!("l{k}.trace_times"), format!("l{k}.trace_values"));
            let (_, times) = npz.floats(&ttn, 1, "float64 (S,)")?;
            let (_, values) = npz.floats(&tvn, 1, "float64 (S,)")?;
            if values.len() != times.len() {
                return Err(npz_err(
                    &npz,
                    &tvn,
                    format!(
                        "expected {} values as in {ttn}, got {}",
                        times.len(),
                        values.len()
                    ),
                ));
            }
            let ok = o.len() == traces + 1
                && o.first() == Some(&0)
                && o.windows(2).all(|w| w[0] <= w[1])
                && o.last().is_some_and(|&e| e == times.len() as i128);
            if !ok {
                return Err(npz_err(&npz,
                    &on,
                    format!(
                        "expected {} non-decreasing values from 0 to {} (the length of {ttn}), got {} values",
                        traces + 1,
                        times.len(),
                        o.len()
                    ),
                ));
            }
            if let Some(i) = times.iter().position(|t| !t.is_finite()) {
                return Err(npz_err(
                    &npz,
                    &ttn,
                    format!("entry {i}: expected a finite time, got {}", times[i]),
                ));
            }
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(npz_err(
                    &npz,
                    &tvn,
                    format!("entry {i}: expected a finite value, got {}", values[i]),
                ));
            }
            let mut per_sample = Vec::with_capacity(samples);
            for b in 0..samples {
                let mut row = Vec::with_capacity(size);
                for n in 0..size {
                    let j = b * size + n;
                    let (s, e) = (o[j] as usize, o[j + 1] as usize);
                    if let Some(w) = times[s..e].windows(2).position(|w| w[1] <= w[0]) {
                        return Err(npz_err(&npz,
                            &ttn,
                            format!(
                                "entry {}: expected increasing times within a trace (sample {b}, neuron {n}), got {} after {}",
                                s + w + 1,
                                times[s + w + 1],
                                times[s + w]
                            ),
                        ));
                    }
                    row.push(SampledTrace {
                        times: times[s..e].to_vec(),
                        values: values[s..e].to_vec(),
                    });
                }
                per_sample.push(row);
            }
            Some(per_sample)
        } else {
            None
        };
        layers.push(LayerRecording {
            size,
            spikes,
            membrane,
        });
    }
    Ok(Recording { layers, samples })
}

/// [`Npz::err`] as this crate's error.
fn npz_err(npz: &Npz, name: &str, reason: impl std::fmt::Display) -> crate::Error {
    npz.err(name, reason).into()
}

//! A chip's recording on the time grid: the seed function's `hw_data`.
//!
//! With step `dt`, `T` steps, for every layer of a [`Recording`]:
//!
//! ```text
//! spikes:   z[k, b, n] = 1  for each event (t, n) of sample b with k = round(t / dt) in [0, T)
//!           (round half away from zero: t = (k + 1/2) dt goes to step k + 1);
//!           a second event of n in step k is *collapsed* (z stays 1), an event with
//!           k outside [0, T) is *dropped*; both are counted in MappingStats
//! membrane: v[k, b, n] = (trace_n(k dt + shift) - offset) * trace_scale
//!           (offset: readout_offset for the last layer where set — a readout with an
//!           operating point of its own)
//!           trace_n(t): linear interpolation between the two samples around t, or the
//!           nearest sample (ties: the earlier); before the first / after the last sample
//!           the end sample's value is held
//! ```
//!
//! For an ideal recording (events at `k dt`, samples at every `k dt`, `shift = 0`,
//! `offset = 0`, `trace_scale = 1`) the mapping returns the recorded values bit for bit: the
//! interpolation weight at a sample time is exactly 0.

use eventprop_core::fused::{EventBatch, EventRow};
use ndarray::{Array3, ArrayView2, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::{Recording, SampledTrace};

/// How membrane samples are read at the grid times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interpolation {
    /// Linear between the two neighbouring samples (the hardware workflow's default).
    #[default]
    Linear,
    /// The nearest sample (ties: the earlier one).
    Nearest,
}

/// The mapping of a recording onto the time grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridMap {
    /// Grid step in seconds (> 0).
    pub dt: f64,
    /// Number of grid steps `T` (≥ 1).
    pub steps: usize,
    /// Interpolation of membrane samples.
    pub interpolation: Interpolation,
    /// Step `k` reads the trace at `k dt + shift` (seconds; e.g. a readout delay).
    pub shift: f64,
    /// Subtracted from every sample (readout units; the reading of the model's 0).
    pub offset: f64,
    /// The offset of the recording's last layer (the readout), where it has an operating
    /// point of its own (the mock's non-spiking readout); `None`: `offset`.
    #[serde(default)]
    pub readout_offset: Option<f64>,
    /// Multiplies `(sample - offset)`: model units per readout unit (model threshold over
    /// the measured chip threshold, both relative to the rest level).
    pub trace_scale: f64,
}

/// A zeroed `(T, B, N)` array, allocated fallibly: an allocation the machine cannot give
/// is an error naming `steps` and the bytes (the bound of [`GridMap::check_grid_size`]
/// comes first; this is for a machine with less memory than the bound).
fn try_zeros(shape: (usize, usize, usize)) -> Result<Array3<f64>> {
    let (t, b, n) = shape;
    let len = t.checked_mul(b).and_then(|x| x.checked_mul(n));
    let mut v: Vec<f64> = Vec::new();
    let ok = len.is_some_and(|len| v.try_reserve_exact(len).is_ok());
    if !ok {
        return Err(Error::invalid(
            "steps",
            "a grid that fits in memory",
            format!(
                "{t} steps × {b} samples × {n} neurons × 8 B = {:.1} GiB could not be allocated",
                t as f64 * b as f64 * n as f64 * 8.0 / (1u64 << 30) as f64
            ),
        ));
    }
    v.resize(len.unwrap_or(0), 0.0);
    Ok(Array3::from_shape_vec(shape, v).expect("the length is the shape's"))
}

/// The largest mapped grid ([`GridMap::check_grid_size`]), bytes.
pub const MAX_GRID_BYTES: u64 = 8 << 30;

impl GridMap {
    /// The identity mapping on a grid: linear, no shift, offset 0, scale 1.
    pub fn identity(dt: f64, steps: usize) -> Self {
        Self {
            dt,
            steps,
            interpolation: Interpolation::Linear,
            shift: 0.0,
            offset: 0.0,
            readout_offset: None,
            trace_scale: 1.0,
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the field (`dt`, `steps`, `shift`, `offset`,
    /// `trace_scale`).
    ///
    /// ```
    /// use eventprop_chip::GridMap;
    /// let err = GridMap { trace_scale: f64::NAN, ..GridMap::identity(1e-6, 38) }.validate().unwrap_err();
    /// assert_eq!(err.to_string(), "trace_scale: expected finite, got NaN");
    /// ```
    pub fn validate(&self) -> Result<()> {
        if !(self.dt.is_finite() && self.dt > 0.0) {
            return Err(Error::invalid("dt", "finite and > 0", self.dt));
        }
        if self.steps == 0 {
            return Err(Error::invalid("steps", ">= 1", 0));
        }
        let window = self.steps as f64 * self.dt;
        if self.shift.is_nan() || self.shift.abs() >= window {
            return Err(Error::invalid(
                "shift",
                format!(
                    "|shift| < the window steps × dt = {window:e} s (else no grid time reads a sample)"
                ),
                self.shift,
            ));
        }
        for (name, v) in [
            ("shift", self.shift),
            ("offset", self.offset),
            ("readout_offset", self.readout_offset.unwrap_or(0.0)),
            ("trace_scale", self.trace_scale),
        ] {
            if !v.is_finite() {
                return Err(Error::invalid(name, "finite", v));
            }
        }
        Ok(())
    }

    /// Refuses a mapping whose grid arrays (`steps × samples × neurons` of 8 B per layer:
    /// the spikes where `dense_spikes`, else a step offset per sample, and the membrane
    /// where recorded) would
    /// exceed [`MAX_GRID_BYTES`]: one error naming `steps`, the sizes and the bytes, before
    /// anything is allocated (a 26 KB recording may declare a million samples).
    ///
    /// # Errors
    /// [`Error::Invalid`] naming `steps`.
    pub fn check_grid_size(&self, recording: &Recording, dense_spikes: bool) -> Result<()> {
        let cells_per_step_sample: u128 = recording
            .layers
            .iter()
            .map(|l| {
                let arrays = u128::from(dense_spikes) + u128::from(l.membrane.is_some());
                // event lists: a step offset per sample and step
                l.size as u128 * arrays + u128::from(!dense_spikes)
            })
            .sum();
        let bytes = self.steps as u128 * recording.samples as u128 * cells_per_step_sample * 8;
        if bytes > u128::from(MAX_GRID_BYTES) {
            let neurons: usize = recording.layers.iter().map(|l| l.size).sum();
            return Err(Error::invalid(
                "steps",
                format!(
                    "a grid of at most {} GiB (steps × samples × neurons × 8 B per array)",
                    MAX_GRID_BYTES >> 30
                ),
                format!(
                    "{} steps × {} samples × {neurons} neurons ({} layers) = {:.1} GiB",
                    self.steps,
                    recording.samples,
                    recording.layers.len(),
                    bytes as f64 / (1u64 << 30) as f64
                ),
            ));
        }
        Ok(())
    }

    /// Maps `recording` onto the grid.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an invalid map, and for a malformed recording (naming
    /// `recording` with the layer and sample): a sample count that differs from
    /// `recording.samples`, a neuron index ≥ the layer size, a non-finite spike time, a trace
    /// with no samples, unequal `times`/`values` lengths, non-finite or decreasing times,
    /// non-finite values.
    pub fn map(&self, recording: &Recording) -> Result<MappedRecording> {
        self.validate()?;
        self.check_grid_size(recording, true)?;
        let b_len = recording.samples;
        let mut stats = MappingStats::default();
        let mut layers = Vec::with_capacity(recording.layers.len());
        let mut keys = Vec::new();
        for (l, layer) in recording.layers.iter().enumerate() {
            let n = layer.size;
            let mut z = try_zeros((self.steps, b_len, n))?;
            check_spike_samples(l, layer, b_len)?;
            for (b, events) in layer.spikes.iter().enumerate() {
                self.bin(l, b, n, events, &mut keys, &mut stats)?;
                for &(k, j) in &keys {
                    z[[k, b, j as usize]] = 1.0;
                }
            }
            layers.push(MappedLayer {
                spikes: z,
                membrane: self.membrane(
                    l,
                    layer,
                    b_len,
                    self.offset_of(l, recording),
                    &mut stats,
                )?,
            });
        }
        Ok(MappedRecording { layers, stats })
    }

    /// Maps `recording` onto the grid as [`GridMap::map`] does, with the spikes as event
    /// lists (one event of value 1 per occupied `(step, neuron)`, in step and then neuron
    /// order) instead of dense arrays: the input of the fused layers
    /// ([`eventprop_core::fused::FusedLif::forward_hw`]). The same numbers, statistics and
    /// errors as [`GridMap::map`] (`EventBatch::to_dense` of a layer's events is its
    /// `spikes`).
    ///
    /// # Errors
    /// As [`GridMap::map`].
    pub fn map_events(&self, recording: &Recording) -> Result<MappedEvents> {
        self.validate()?;
        self.check_grid_size(recording, false)?;
        let b_len = recording.samples;
        for (l, layer) in recording.layers.iter().enumerate() {
            check_spike_samples(l, layer, b_len)?;
            check_trace_samples(l, layer, b_len)?;
        }
        // the samples in parallel (every layer of a sample in one job); errors and counts
        // taken in sample order
        let per_sample: Vec<Result<SampleOnGrid>> = (0..b_len)
            .into_par_iter()
            .map_init(Vec::new, |keys, b| {
                let mut out = SampleOnGrid {
                    rows: Vec::with_capacity(recording.layers.len()),
                    membranes: Vec::with_capacity(recording.layers.len()),
                    stats: MappingStats::default(),
                };
                for (l, layer) in recording.layers.iter().enumerate() {
                    let n = layer.size;
                    let events = layer.spikes.get(b).map_or(&[][..], Vec::as_slice);
                    self.bin(l, b, n, events, keys, &mut out.stats)?;
                    let mut row = EventRow::new();
                    let mut p = 0;
                    for t in 0..self.steps {
                        while p < keys.len() && keys[p].0 == t {
                            row.push(keys[p].1, 1.0);
                            p += 1;
                        }
                        row.end_step();
                    }
                    out.rows.push(row);
                    let membrane = match &layer.membrane {
                        Some(traces) => {
                            let mut v = vec![0.0; self.steps * n];
                            let offset = self.offset_of(l, recording);
                            self.membrane_sample(
                                l,
                                b,
                                n,
                                &traces[b],
                                offset,
                                &mut v,
                                &mut out.stats,
                            )?;
                            Some(v)
                        }
                        None => None,
                    };
                    out.membranes.push(membrane);
                }
                Ok(out)
            })
            .collect();
        let mut stats = MappingStats::default();
        let mut rows: Vec<Vec<EventRow<f64>>> = recording
            .layers
            .iter()
            .map(|_| Vec::with_capacity(b_len))
            .collect();
        let mut membranes: Vec<Option<Array3<f64>>> = recording
            .layers
            .iter()
            .map(|layer| {
                layer
                    .membrane
                    .as_ref()
                    .map(|_| try_zeros((self.steps, b_len, layer.size)))
                    .transpose()
            })
            .collect::<Result<_>>()?;
        for (b, sample) in per_sample.into_iter().enumerate() {
            let sample = sample?;
            stats += sample.stats;
            for (l, (row, membrane)) in sample.rows.into_iter().zip(sample.membranes).enumerate() {
                rows[l].push(row);
                if let (Some(m), Some(v)) = (&mut membranes[l], membrane) {
                    put_sample(m, b, &v);
                }
            }
        }
        let mut layers = Vec::with_capacity(recording.layers.len());
        for (l, ((layer, rows), membrane)) in
            recording.layers.iter().zip(rows).zip(membranes).enumerate()
        {
            let spikes = EventBatch::from_rows(self.steps, layer.size, rows)
                .map_err(|e| bad(l, "spike events on the grid".into(), e))?;
            layers.push(MappedEventLayer { spikes, membrane });
        }
        Ok(MappedEvents { layers, stats })
    }

    /// The grid cells `(step, neuron)` of one sample's spike events, sorted, each once:
    /// into `keys` (cleared first); counts every event, and the collapsed and dropped ones.
    fn bin(
        &self,
        l: usize,
        b: usize,
        n: usize,
        events: &[eventprop_core::Spike],
        keys: &mut Vec<(usize, u32)>,
        stats: &mut MappingStats,
    ) -> Result<()> {
        keys.clear();
        for e in events {
            let j = e.neuron as usize;
            if j >= n {
                return Err(bad(
                    l,
                    format!("neuron indices < {n} (sample {b})"),
                    e.neuron,
                ));
            }
            if !e.time.is_finite() {
                return Err(bad(l, format!("finite spike times (sample {b})"), e.time));
            }
            stats.spikes += 1;
            let k = (e.time / self.dt).round();
            if !(k >= 0.0 && k < self.steps as f64) {
                stats.dropped += 1;
                continue;
            }
            keys.push((k as usize, e.neuron));
        }
        keys.sort_unstable();
        let before = keys.len();
        keys.dedup();
        stats.collapsed += (before - keys.len()) as u64;
        Ok(())
    }

    /// The offset of layer `l` of `recording`: `readout_offset` for the last layer where
    /// set, else `offset`.
    fn offset_of(&self, l: usize, recording: &Recording) -> f64 {
        match self.readout_offset {
            Some(o) if l + 1 == recording.layers.len() => o,
            _ => self.offset,
        }
    }

    /// The membrane of layer `l` on the grid (`None` where not recorded), with `offset`.
    fn membrane(
        &self,
        l: usize,
        layer: &crate::LayerRecording,
        b_len: usize,
        offset: f64,
        stats: &mut MappingStats,
    ) -> Result<Option<Array3<f64>>> {
        let n = layer.size;
        let Some(traces) = &layer.membrane else {
            return Ok(None);
        };
        check_trace_samples(l, layer, b_len)?;
        let mut v = try_zeros((self.steps, b_len, n))?;
        let mut sample = vec![0.0; self.steps * n];
        for (b, per_neuron) in traces.iter().enumerate() {
            self.membrane_sample(l, b, n, per_neuron, offset, &mut sample, stats)?;
            put_sample(&mut v, b, &sample);
        }
        Ok(Some(v))
    }

    /// The membrane of sample `b` of layer `l` (`n` neurons) on the grid, into `out`
    /// step-major (`out[k n + j]`); counts the reads outside each trace's sampled span in
    /// `stats.held`.
    ///
    /// A trace of two or more samples whose span `[first, last]` holds none of the grid's
    /// read times `k dt + shift` is refused: every step would read an end sample's value
    /// (the recording and the grid do not describe the same window).
    #[allow(clippy::too_many_arguments)]
    fn membrane_sample(
        &self,
        l: usize,
        b: usize,
        n: usize,
        per_neuron: &[SampledTrace],
        offset: f64,
        out: &mut [f64],
        stats: &mut MappingStats,
    ) -> Result<()> {
        if per_neuron.len() != n {
            return Err(bad(
                l,
                format!("{n} traces in sample {b}"),
                per_neuron.len(),
            ));
        }
        for (j, tr) in per_neuron.iter().enumerate() {
            check_trace(tr).map_err(|e| {
                bad(
                    l,
                    format!("{e} (sample {b}, neuron {j})"),
                    "a malformed trace",
                )
            })?;
            // the grid times rise with k: walk the samples along (`seen` = the number
            // of samples at or before t, as a binary search would find it)
            let mut seen = 0;
            let (first, last) = (tr.times[0], tr.times[tr.times.len() - 1]);
            let mut held = 0u64;
            for k in 0..self.steps {
                let t = k as f64 * self.dt + self.shift;
                while seen < tr.times.len() && tr.times[seen] <= t {
                    seen += 1;
                }
                if t < first || t > last {
                    held += 1;
                }
                let last = seen.checked_sub(1);
                let raw = match self.interpolation {
                    Interpolation::Linear => linear(tr, last, t),
                    Interpolation::Nearest => nearest(tr, last, t),
                };
                out[k * n + j] = (raw - offset) * self.trace_scale;
            }
            if held == self.steps as u64 && tr.times.len() > 1 {
                let (g0, g1) = (self.shift, (self.steps - 1) as f64 * self.dt + self.shift);
                return Err(bad(
                    l,
                    format!(
                        "trace samples overlapping the grid's read times [{g0:e}, {g1:e}] s \
                         (steps × dt, moved by the shift; sample {b}, neuron {j})"
                    ),
                    format!("samples in [{first:e}, {last:e}] s"),
                ));
            }
            stats.held += held;
        }
        Ok(())
    }
}

/// Writes one sample's membrane on the grid (step-major, `T × N`) into `m` `(T, B, N)` at
/// sample `b`.
fn put_sample(m: &mut Array3<f64>, b: usize, sample: &[f64]) {
    let (steps, _, n) = m.dim();
    let sample = ArrayView2::from_shape((steps, n), sample).expect("T × N values");
    m.index_axis_mut(Axis(1), b).assign(&sample);
}

/// Traces per sample where a layer has them.
fn check_trace_samples(l: usize, layer: &crate::LayerRecording, b_len: usize) -> Result<()> {
    match &layer.membrane {
        Some(traces) if traces.len() != b_len => {
            Err(bad(l, format!("traces of {b_len} samples"), traces.len()))
        }
        _ => Ok(()),
    }
}

/// One sample of a recording on the grid ([`GridMap::map_events`]): per layer its spike
/// row and membrane (step-major), and its counts.
struct SampleOnGrid {
    rows: Vec<EventRow<f64>>,
    membranes: Vec<Option<Vec<f64>>>,
    stats: MappingStats,
}

/// A spike list per sample, or none (a non-spiking layer).
fn check_spike_samples(l: usize, layer: &crate::LayerRecording, b_len: usize) -> Result<()> {
    if !layer.spikes.is_empty() && layer.spikes.len() != b_len {
        return Err(bad(
            l,
            format!("spikes of {b_len} samples"),
            layer.spikes.len(),
        ));
    }
    Ok(())
}

fn bad(layer: usize, expected: String, actual: impl std::fmt::Display) -> Error {
    Error::Invalid {
        arg: "recording",
        expected: format!("{expected} in layer {layer}"),
        actual: actual.to_string(),
    }
}

fn check_trace(tr: &SampledTrace) -> std::result::Result<(), &'static str> {
    if tr.times.is_empty() {
        return Err("at least one sample");
    }
    if tr.times.len() != tr.values.len() {
        return Err("as many values as times");
    }
    if tr.times.iter().chain(&tr.values).any(|v| !v.is_finite()) {
        return Err("finite sample times and values");
    }
    if tr.times.windows(2).any(|w| w[1] < w[0]) {
        return Err("increasing sample times");
    }
    Ok(())
}

/// The trace at `t` by linear interpolation; `last` is the index of the last sample at or
/// before `t` (`None` before the first).
fn linear(tr: &SampledTrace, last: Option<usize>, t: f64) -> f64 {
    match last {
        None => tr.values[0],
        Some(j) if j + 1 == tr.times.len() => tr.values[j],
        Some(j) => {
            let (t0, t1) = (tr.times[j], tr.times[j + 1]);
            let (v0, v1) = (tr.values[j], tr.values[j + 1]);
            if t == t0 || t1 == t0 {
                v0
            } else {
                v0 + (v1 - v0) * ((t - t0) / (t1 - t0))
            }
        }
    }
}

/// The trace at `t` from the nearest sample (the earlier one at a tie); `last` as for
/// [`linear`].
fn nearest(tr: &SampledTrace, last: Option<usize>, t: f64) -> f64 {
    match last {
        None => tr.values[0],
        Some(j) if j + 1 == tr.times.len() => tr.values[j],
        Some(j) => {
            if t - tr.times[j] <= tr.times[j + 1] - t {
                tr.values[j]
            } else {
                tr.values[j + 1]
            }
        }
    }
}

/// What the mapping did with the spike events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MappingStats {
    /// Spike events in the recording.
    pub spikes: u64,
    /// Events that fell in a step already holding a spike of the same neuron.
    pub collapsed: u64,
    /// Events outside the grid (`round(t / dt)` not in `[0, T)`).
    pub dropped: u64,
    /// Membrane reads (one per step and neuron of every sample) at a grid time outside the
    /// trace's sampled span, where an end sample's value is held.
    #[serde(default)]
    pub held: u64,
}

impl std::ops::AddAssign for MappingStats {
    fn add_assign(&mut self, o: Self) {
        self.spikes += o.spikes;
        self.collapsed += o.collapsed;
        self.dropped += o.dropped;
        self.held += o.held;
    }
}

/// One layer on the grid.
#[derive(Debug, Clone, PartialEq)]
pub struct MappedLayer {
    /// Spikes `(T, B, N)` (0 or 1).
    pub spikes: Array3<f64>,
    /// Membrane `(T, B, N)` in model units, where recorded.
    pub membrane: Option<Array3<f64>>,
}

/// A recording on the grid: the seed function's `hw_data` of every layer.
#[derive(Debug, Clone, PartialEq)]
pub struct MappedRecording {
    /// Hidden layers, then the output layer.
    pub layers: Vec<MappedLayer>,
    /// Counts of the spike mapping.
    pub stats: MappingStats,
}

/// One layer of a recording on the grid, spikes as events ([`GridMap::map_events`]).
#[derive(Debug, Clone, PartialEq)]
pub struct MappedEventLayer {
    /// Spike events, `B` rows of `T` steps (value 1 each).
    pub spikes: EventBatch<f64>,
    /// Membrane `(T, B, N)` in model units, where recorded.
    pub membrane: Option<Array3<f64>>,
}

/// A recording on the grid with spike events ([`GridMap::map_events`]).
#[derive(Debug, Clone, PartialEq)]
pub struct MappedEvents {
    /// One entry per recorded layer.
    pub layers: Vec<MappedEventLayer>,
    /// Spikes recorded, collapsed and dropped.
    pub stats: MappingStats,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LayerRecording;
    use eventprop_core::Spike;

    fn one_layer(spikes: Vec<Spike>, trace: Option<SampledTrace>) -> Recording {
        Recording {
            layers: vec![LayerRecording {
                size: 2,
                spikes: vec![spikes],
                membrane: trace.map(|t| vec![vec![t.clone(), t]]),
            }],
            samples: 1,
        }
    }

    #[test]
    fn boundary_and_same_bin_spikes_map_as_documented_and_are_counted() {
        let dt = 1e-6;
        let s = |time, neuron| Spike { time, neuron };
        let rec = one_layer(
            vec![
                // exactly on the boundary between steps 2 and 3: round half away → 3
                s(2.5e-6, 0),
                // two spikes in step 5 (4.6 µs and 5.4 µs round to 5): one collapses
                s(4.6e-6, 1),
                s(5.4e-6, 1),
                // -0.4 dt rounds to step 0 (kept); -0.6 dt to -1 (dropped)
                s(-0.4e-6, 0),
                s(-0.6e-6, 0),
                // 9.5 µs rounds to 10 = T (dropped); 9.4 µs to 9 (kept)
                s(9.5e-6, 1),
                s(9.4e-6, 1),
            ],
            None,
        );
        let m = GridMap::identity(dt, 10).map(&rec).unwrap();
        let z = &m.layers[0].spikes;
        assert_eq!(z[[3, 0, 0]], 1.0);
        assert_eq!(z[[2, 0, 0]], 0.0);
        assert_eq!(z[[5, 0, 1]], 1.0);
        assert_eq!(z[[0, 0, 0]], 1.0);
        assert_eq!(z[[9, 0, 1]], 1.0);
        // 7 events: 2 dropped, 1 collapsed, 4 spikes on the grid
        assert_eq!(z.sum(), 4.0);
        assert_eq!(
            m.stats,
            MappingStats {
                spikes: 7,
                collapsed: 1,
                dropped: 2,
                held: 0
            }
        );
    }

    #[test]
    fn linear_and_nearest_interpolation_with_shift_offset_and_scale() {
        // Samples at 0, 2, 4 µs with values 80, 100, 90 (CADC-like).
        let tr = SampledTrace {
            times: vec![0.0, 2e-6, 4e-6],
            values: vec![80.0, 100.0, 90.0],
        };
        let rec = one_layer(vec![], Some(tr));
        let map = GridMap {
            offset: 80.0,
            trace_scale: 0.5,
            ..GridMap::identity(1e-6, 6)
        };
        let v = map.map(&rec).unwrap().layers[0].membrane.clone().unwrap();
        // linear: t = 1 µs → 90, t = 3 µs → 95; beyond 4 µs the last sample (90) is held;
        // then (x - 80) * 0.5.
        let expect = [0.0, 5.0, 10.0, 7.5, 5.0, 5.0];
        for (k, e) in expect.iter().enumerate() {
            assert!(
                (v[[k, 0, 0]] - e).abs() < 1e-12,
                "step {k}: {}",
                v[[k, 0, 0]]
            );
        }
        // nearest, shifted by +0.6 µs: t = 0.6 → sample 0 (80); 1.6 → 2 µs (100);
        // 2.6 → 2 µs (100); 3.6 → 4 µs (90); 4.6, 5.6 → held 90.
        let map = GridMap {
            interpolation: Interpolation::Nearest,
            shift: 0.6e-6,
            ..map
        };
        let v = map.map(&rec).unwrap().layers[0].membrane.clone().unwrap();
        let expect = [0.0, 10.0, 10.0, 5.0, 5.0, 5.0];
        for (k, e) in expect.iter().enumerate() {
            assert_eq!(v[[k, 0, 1]], *e, "step {k}");
        }
    }

    #[test]
    fn reads_outside_a_trace_are_counted_and_a_trace_missing_the_grid_is_refused() {
        // samples at 0, 2, 4 µs (both neurons of `one_layer`); a grid of 6 steps of 1 µs
        // reads 0..5 µs: 5 µs is past the last sample (1 held read per neuron); the shifted
        // grid (+0.6 µs) reads 0.6..5.6: 2 per neuron
        let tr = SampledTrace {
            times: vec![0.0, 2e-6, 4e-6],
            values: vec![80.0, 100.0, 90.0],
        };
        let rec = one_layer(vec![], Some(tr.clone()));
        let map = GridMap::identity(1e-6, 6);
        assert_eq!(map.map(&rec).unwrap().stats.held, 2);
        assert_eq!(map.map_events(&rec).unwrap().stats.held, 2);
        let shifted = GridMap {
            shift: 0.6e-6,
            ..map.clone()
        };
        assert_eq!(shifted.map(&rec).unwrap().stats.held, 4);
        // the same trace recorded 1 s later: no grid time falls in its span — refused by
        // both mappings, naming the recording, the sample, the neuron and both spans
        let late = SampledTrace {
            times: tr.times.iter().map(|t| t + 1.0).collect(),
            values: tr.values.clone(),
        };
        let rec = one_layer(vec![], Some(late));
        for e in [
            map.map(&rec).map(|_| ()).unwrap_err().to_string(),
            map.map_events(&rec).map(|_| ()).unwrap_err().to_string(),
        ] {
            assert!(
                e.starts_with("recording: expected trace samples overlapping the grid's read times [0e0, 4.99")
                    && e.contains("sample 0, neuron 0")
                    && e.contains("got samples in [1e0, 1.000004e0] s"),
                "{e}"
            );
        }
        // a one-sample trace is a constant by definition: held at all 6 steps of both
        // neurons, accepted
        let one = SampledTrace {
            times: vec![1.0],
            values: vec![90.0],
        };
        let m = map.map(&one_layer(vec![], Some(one))).unwrap();
        assert_eq!(m.stats.held, 12);
    }

    #[test]
    fn grids_beyond_the_bound_are_refused_before_allocating() {
        // a recording declaring a million samples of 3 neurons, 38 steps: 0.9 GiB (spikes +
        // membrane) is fine; 10^10 steps of one sample is not
        let rec = Recording {
            layers: vec![LayerRecording {
                size: 3,
                spikes: vec![Vec::new(); 1],
                membrane: None,
            }],
            samples: 1,
        };
        let e = GridMap::identity(1e-6, 10_000_000_000)
            .map(&rec)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("steps: expected a grid of at most 8 GiB")
                && e.contains("got 10000000000 steps × 1 samples × 3 neurons"),
            "{e}"
        );
        let e = GridMap::identity(1e-6, 10_000_000_000)
            .map_events(&rec)
            .map(|_| ())
            .unwrap_err();
        assert!(e.to_string().starts_with("steps: expected"), "{e}");
        let big = Recording {
            samples: 1_000_000,
            layers: vec![LayerRecording {
                size: 3,
                spikes: Vec::new(),
                membrane: Some(Vec::new()),
            }],
        };
        let e = GridMap::identity(1e-6, 38_000).check_grid_size(&big, true);
        assert!(e.is_err());
        GridMap::identity(1e-6, 38)
            .check_grid_size(&big, true)
            .unwrap();
        // a shift beyond the window reads no sample at any grid time: refused
        let e = GridMap {
            shift: 1e300,
            ..GridMap::identity(1e-6, 38)
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("shift: expected |shift| < the window"), "{e}");
        // the fallible allocation: an overflowing or impossible size is an error
        let e = try_zeros((usize::MAX, 2, 1)).unwrap_err().to_string();
        assert!(
            e.starts_with("steps: expected a grid that fits in memory"),
            "{e}"
        );
        let e = try_zeros((1 << 40, 1 << 20, 1)).unwrap_err().to_string();
        assert!(e.contains("could not be allocated"), "{e}");
        assert_eq!(
            try_zeros((2, 3, 4)).unwrap(),
            Array3::<f64>::zeros((2, 3, 4))
        );
    }

    #[test]
    fn malformed_recordings_are_errors_naming_the_recording() {
        let s = Spike {
            time: 1e-6,
            neuron: 2,
        };
        let e = GridMap::identity(1e-6, 4)
            .map(&one_layer(vec![s], None))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "recording: expected neuron indices < 2 (sample 0) in layer 0, got 2"
        );
        let tr = SampledTrace {
            times: vec![2e-6, 1e-6],
            values: vec![0.0, 1.0],
        };
        let e = GridMap::identity(1e-6, 4)
            .map(&one_layer(vec![], Some(tr)))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "recording: expected increasing sample times (sample 0, neuron 0) in layer 0, got a malformed trace"
        );
        let e = GridMap::identity(0.0, 4)
            .map(&one_layer(vec![], None))
            .unwrap_err();
        assert_eq!(e.to_string(), "dt: expected finite and > 0, got 0");
    }
}

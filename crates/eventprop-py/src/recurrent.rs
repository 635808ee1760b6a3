//! The time-stepped LIF layer with recurrent weights, per-neuron parameters and delays
//! ([`eventprop_core::stepped::layer::SteppedLayer`]: the seed's update order and the
//! `Corrected` adjoint, extended) for Python, behind `eventprop.torch.RecurrentLIF`.
//!
//! Entry points (float64 numpy arrays; the batch runs with the GIL released):
//!
//! - `recurrent_lif_forward(input, weight, leak, reset, threshold, tau_syn, tau_mem,
//!   recurrent=None, delays=None, dt=1e-6) -> RecurrentContext`: `input` `(T, B, N_in)`
//!   spikes (0 or 1; other values are a `ValueError`), `weight` `(N, N_in)`, the five parameters `(N,)`,
//!   `recurrent` `(N, N)`, `delays` `(N, N_in)` in seconds; `ctx.spikes` `(T, B, N)`;
//! - `recurrent_lif_backward(ctx, grad_spikes) -> dict`: for `grad_spikes` `(T, B, N)`
//!   (docs/spec.md §3 convention) the batch sums `weight`, `recurrent`, `delays`, `leak`, `reset`,
//!   `threshold`, `tau_syn`, `tau_mem` and `input` `(T, B, N_in)`, the spike gradient of
//!   the layer below, formed at its spikes only.
//!
//! Bad shapes and values become `ValueError` with the library's one-line message.

use eventprop_core::stepped::layer::{LayerRun, SteppedLayer};
use eventprop_core::NeuronParams;
use ndarray::{Array1, Array2, Array3, Axis, Ix1, Ix2, Ix3};
use numpy::{IntoPyArray, PyArray3, PyReadonlyArrayDyn};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

fn bad(arg: &str, expected: impl std::fmt::Display, actual: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(format!("{arg}: expected {expected}, got {actual}"))
}

fn matrix(arg: &str, a: PyReadonlyArrayDyn<'_, f64>) -> PyResult<Array2<f64>> {
    let a = a.as_array();
    let shape = a.shape().to_vec();
    a.into_dimensionality::<Ix2>()
        .map(|v| v.to_owned())
        .map_err(|_| bad(arg, "a 2-D float64 array", format!("shape {shape:?}")))
}

fn vector(arg: &str, a: PyReadonlyArrayDyn<'_, f64>, n: usize) -> PyResult<Vec<f64>> {
    let a = a.as_array();
    let shape = a.shape().to_vec();
    let v = a
        .into_dimensionality::<Ix1>()
        .map_err(|_| bad(arg, format!("shape ({n},)"), format!("{shape:?}")))?;
    if v.len() != n {
        return Err(bad(arg, format!("shape ({n},)"), format!("{shape:?}")));
    }
    Ok(v.to_vec())
}

/// What the backward needs: the layer's arrays and every sample's input spikes and run.
#[pyclass(module = "eventprop._eventprop", name = "RecurrentContext", frozen)]
pub struct RecurrentContext {
    weight: Array2<f64>,
    recurrent: Option<Array2<f64>>,
    delays: Option<Array2<f64>>,
    params: NeuronParams,
    dt: f64,
    inputs: Vec<Vec<Vec<u32>>>,
    runs: Vec<LayerRun>,
    spikes: Array3<f64>,
}

impl RecurrentContext {
    fn layer(&self) -> SteppedLayer<'_> {
        SteppedLayer {
            w: self.weight.view(),
            r: self.recurrent.as_ref().map(|r| r.view()),
            delays: self.delays.as_ref().map(|d| d.view()),
            params: &self.params,
            dt: self.dt,
        }
    }
}

#[pymethods]
impl RecurrentContext {
    /// The layer's spikes `(T, B, N)` (a copy).
    #[getter]
    fn spikes<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray3<f64>> {
        self.spikes.clone().into_pyarray(py)
    }
}

/// Runs the layer on a batch (see the module docs).
#[pyfunction]
#[pyo3(signature = (input, weight, leak, reset, threshold, tau_syn, tau_mem, recurrent=None, delays=None, dt=1e-6))]
#[allow(clippy::too_many_arguments)]
pub fn recurrent_lif_forward(
    py: Python<'_>,
    input: PyReadonlyArrayDyn<'_, f64>,
    weight: PyReadonlyArrayDyn<'_, f64>,
    leak: PyReadonlyArrayDyn<'_, f64>,
    reset: PyReadonlyArrayDyn<'_, f64>,
    threshold: PyReadonlyArrayDyn<'_, f64>,
    tau_syn: PyReadonlyArrayDyn<'_, f64>,
    tau_mem: PyReadonlyArrayDyn<'_, f64>,
    recurrent: Option<PyReadonlyArrayDyn<'_, f64>>,
    delays: Option<PyReadonlyArrayDyn<'_, f64>>,
    dt: f64,
) -> PyResult<RecurrentContext> {
    let x = input.as_array();
    let shape = x.shape().to_vec();
    let x = x
        .into_dimensionality::<Ix3>()
        .map_err(|_| bad("input", "shape (T, B, N_in)", format!("{shape:?}")))?;
    let weight = matrix("weight", weight)?;
    let (n, n_in) = weight.dim();
    if x.dim().2 != n_in {
        return Err(bad(
            "input",
            format!("shape (T, B, {n_in}) (N_in of weight)"),
            format!("{shape:?}"),
        ));
    }
    if let Some(v) = x.iter().find(|v| !v.is_finite()) {
        return Err(bad("input", "finite values", v));
    }
    let params = NeuronParams {
        leak: vector("leak", leak, n)?,
        reset: vector("reset", reset, n)?,
        threshold: vector("threshold", threshold, n)?,
        tau_syn: vector("tau_syn", tau_syn, n)?,
        tau_mem: vector("tau_mem", tau_mem, n)?,
    };
    let recurrent = recurrent.map(|r| matrix("recurrent", r)).transpose()?;
    let delays = delays.map(|d| matrix("delays", d)).transpose()?;
    for (name, m) in [("weight", Some(&weight)), ("recurrent", recurrent.as_ref())] {
        if let Some(v) = m.and_then(|m| m.iter().find(|v| !v.is_finite())) {
            return Err(bad(name, "finite values", v));
        }
    }
    // the layer reads an entry as one spike or none: a graded or negative value would be
    // read as a whole spike (0.5 and -1 as 1), silently unlike EventPropSynapse +
    // EventPropLIF, which weight the value
    if let Some(v) = x.iter().find(|&&v| v != 0.0 && v != 1.0) {
        return Err(bad(
            "input",
            "spikes, each entry 0 or 1 (graded inputs: EventPropSynapse + EventPropLIF)",
            v,
        ));
    }
    let (steps, batch, _) = x.dim();
    // the spikes and the run's per-step state: 4 arrays of (T, B, N) f64
    crate::convert::ensure_memory(
        "input",
        &format!("the layer's arrays ({steps} steps × {batch} samples × {n} neurons × 4)"),
        4 * steps as u128 * batch as u128 * n as u128,
        8,
    )?;
    let inputs: Vec<Vec<Vec<u32>>> = (0..batch)
        .map(|b| {
            (0..steps)
                .map(|t| {
                    (0..n_in as u32)
                        .filter(|&j| x[[t, b, j as usize]] != 0.0)
                        .collect()
                })
                .collect()
        })
        .collect();
    let mut ctx = RecurrentContext {
        weight,
        recurrent,
        delays,
        params,
        dt,
        inputs,
        runs: Vec::new(),
        spikes: Array3::zeros((steps, batch, n)),
    };
    let runs = py.detach(|| {
        let layer = ctx.layer();
        ctx.inputs
            .iter()
            .map(|i| layer.forward(i))
            .collect::<eventprop_core::Result<Vec<_>>>()
    });
    let runs = runs.map_err(|e| PyValueError::new_err(e.to_string()))?;
    for (b, r) in runs.iter().enumerate() {
        for (t, s) in r.spikes.iter().enumerate() {
            for &q in s {
                ctx.spikes[[t, b, q as usize]] = 1.0;
            }
        }
    }
    ctx.runs = runs;
    Ok(ctx)
}

/// The adjoint of a forward (see the module docs).
#[pyfunction]
pub fn recurrent_lif_backward<'py>(
    py: Python<'py>,
    ctx: &RecurrentContext,
    grad_spikes: PyReadonlyArrayDyn<'_, f64>,
) -> PyResult<Bound<'py, PyDict>> {
    let g = grad_spikes.as_array();
    let shape = g.shape().to_vec();
    let g = g
        .into_dimensionality::<Ix3>()
        .map_err(|_| bad("grad_spikes", "shape (T, B, N)", format!("{shape:?}")))?;
    if g.dim() != ctx.spikes.dim() {
        return Err(bad(
            "grad_spikes",
            format!("shape {:?} (of the forward's spikes)", ctx.spikes.shape()),
            format!("{shape:?}"),
        ));
    }
    if let Some(v) = g.iter().find(|v| !v.is_finite()) {
        return Err(bad("grad_spikes", "finite values", v));
    }
    let g = g.to_owned();
    let per_sample = py.detach(|| {
        let layer = ctx.layer();
        ctx.inputs
            .iter()
            .zip(&ctx.runs)
            .enumerate()
            .map(|(b, (i, r))| layer.backward(i, r, g.index_axis(Axis(1), b)))
            .collect::<eventprop_core::Result<Vec<_>>>()
    });
    let per_sample = per_sample.map_err(|e| PyValueError::new_err(e.to_string()))?;
    let (steps, batch, _) = ctx.spikes.dim();
    let (n, n_in) = ctx.weight.dim();
    let mut w = Array2::zeros((n, n_in));
    let mut r = ctx.recurrent.as_ref().map(|_| Array2::<f64>::zeros((n, n)));
    let mut d = ctx.delays.as_ref().map(|_| Array2::<f64>::zeros((n, n_in)));
    let mut p = NeuronParams::uniform(&Default::default(), n);
    let mut gi = Array3::zeros((steps, batch, n_in));
    for (b, s) in per_sample.into_iter().enumerate() {
        w += &s.w;
        if let (Some(a), Some(x)) = (r.as_mut(), s.r.as_ref()) {
            *a += x;
        }
        if let (Some(a), Some(x)) = (d.as_mut(), s.delays.as_ref()) {
            *a += x;
        }
        for ((_, a), (_, x)) in p.fields_mut().into_iter().zip(s.params.fields()) {
            for (a, x) in a.iter_mut().zip(x) {
                *a += x;
            }
        }
        gi.index_axis_mut(Axis(1), b).assign(&s.input);
    }
    let out = PyDict::new(py);
    out.set_item("weight", w.into_pyarray(py))?;
    out.set_item("recurrent", r.map(|r| r.into_pyarray(py)))?;
    out.set_item("delays", d.map(|d| d.into_pyarray(py)))?;
    for (name, v) in p.fields() {
        out.set_item(name, Array1::from(v.to_vec()).into_pyarray(py))?;
    }
    out.set_item("input", gi.into_pyarray(py))?;
    Ok(out)
}

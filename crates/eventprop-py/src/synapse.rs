//! The companion synapse (docs/spec.md §3): `synapse_forward` and `synapse_backward`.

use eventprop_core::{Real, SparseRows, SynapseInput};
use ndarray::{Axis, Ix2, Ix3, Ix4};
use numpy::{Element, PyArray3, PyArray4, PyArrayDyn};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::convert::{dtype_of, readonly, same_dtype, value_error, Dtype};

/// Converts a view to rank `D`, or a `ValueError` naming `arg`.
fn rank<'a, F, D: ndarray::Dimension>(
    arg: &str,
    expected: &str,
    v: ndarray::ArrayViewD<'a, F>,
) -> PyResult<ndarray::ArrayView<'a, F, D>> {
    let shape = eventprop_core::error::fmt_shape(v.shape());
    v.into_dimensionality::<D>().map_err(|_| {
        PyValueError::new_err(format!("{arg}: expected shape {expected}, got {shape}"))
    })
}

fn forward_impl<'py, F: Real + Element>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
    stacked: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let xa = readonly::<F>("input", x)?;
    let wa = readonly::<F>("weight", weight)?;
    let xv = rank::<F, Ix3>("input", "(T, B, N_in)", xa.as_array())?;
    let wv = rank::<F, Ix2>("weight", "(N_out, N_in)", wa.as_array())?;
    let (t, b, _) = xv.dim();
    let n_out = wv.dim().0;
    crate::convert::ensure_memory(
        "input",
        &format!(
            "the output ({} × {t} steps × {b} samples × {n_out} outputs)",
            if stacked { 2 } else { 1 }
        ),
        (t as u128) * (b as u128) * (n_out as u128) * if stacked { 2 } else { 1 },
        std::mem::size_of::<F>() as u128,
    )?;
    if stacked {
        let y = py
            .detach(|| eventprop_core::synapse_forward_stacked(xv, wv))
            .map_err(value_error)?;
        Ok(PyArray4::from_owned_array(py, y).into_any())
    } else {
        let y = py
            .detach(|| eventprop_core::synapse_forward(xv, wv))
            .map_err(value_error)?;
        Ok(PyArray3::from_owned_array(py, y).into_any())
    }
}

type Grads<'py> = (Option<Bound<'py, PyAny>>, Bound<'py, PyAny>);

fn backward_impl<'py, F: Real + Element>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
    grad: &Bound<'py, PyAny>,
    need_input: bool,
) -> PyResult<Grads<'py>> {
    let xa = readonly::<F>("input", x)?;
    let wa = readonly::<F>("weight", weight)?;
    let ga = readonly::<F>("grad", grad)?;
    let xv = rank::<F, Ix3>("input", "(T, B, N_in)", xa.as_array())?;
    let wv = rank::<F, Ix2>("weight", "(N_out, N_in)", wa.as_array())?;
    let gv = rank::<F, Ix4>("grad", "(2, T, B, N_out)", ga.as_array())?;
    let g = py
        .detach(|| eventprop_core::synapse_backward(xv, wv, gv, need_input))
        .map_err(value_error)?;
    let gx = g
        .input
        .map(|a| PyArrayDyn::from_owned_array(py, a.into_dyn()).into_any());
    Ok((
        gx,
        PyArrayDyn::from_owned_array(py, g.weight.into_dyn()).into_any(),
    ))
}

/// Synapse forward (docs/spec.md §3): `y = x @ weight.T` for `x` `(T, B, N_in)` and `weight`
/// `(N_out, N_in)`; returns `(T, B, N_out)`, or the seed's stacked `(2, T, B, N_out) =
/// [y, 0]` when `stacked`. Event-driven for sparse inputs.
#[pyfunction]
#[pyo3(signature = (input, weight, stacked=false))]
pub fn synapse_forward<'py>(
    py: Python<'py>,
    input: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
    stacked: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let dtype = dtype_of("input", input)?;
    same_dtype("weight", weight, "input", dtype)?;
    match dtype {
        Dtype::F32 => forward_impl::<f32>(py, input, weight, stacked),
        Dtype::F64 => forward_impl::<f64>(py, input, weight, stacked),
    }
}

/// Synapse backward (docs/spec.md §3) from the neuron's gradient `grad` `(2, T, B, N_out)`:
/// returns `(grad_input, grad_weight)` with `grad_input = grad[1] @ weight`
/// `(T, B, N_in)` (`None` unless `need_input`) and `grad_weight = Σ_{t,b} grad[0][t,b] ⊗
/// input[t,b]` `(N_out, N_in)`.
#[pyfunction]
#[pyo3(signature = (input, weight, grad, need_input=true))]
pub fn synapse_backward<'py>(
    py: Python<'py>,
    input: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
    grad: &Bound<'py, PyAny>,
    need_input: bool,
) -> PyResult<Grads<'py>> {
    let dtype = dtype_of("input", input)?;
    same_dtype("weight", weight, "input", dtype)?;
    same_dtype("grad", grad, "input", dtype)?;
    match dtype {
        Dtype::F32 => backward_impl::<f32>(py, input, weight, grad, need_input),
        Dtype::F64 => backward_impl::<f64>(py, input, weight, grad, need_input),
    }
}

/// The non-zeros of a synapse input, collected once by `_synapse_forward_events` and reused
/// by `_synapse_backward_events` (for `eventprop.torch`, which saves the input tensor for
/// backward, so that an in-place edit of it makes the backward raise before these are
/// used).
#[pyclass(frozen, module = "eventprop._eventprop", name = "SynapseEvents")]
#[derive(Debug)]
pub struct SynapseEvents {
    inner: Events,
}

/// The non-zeros of one dtype.
#[derive(Debug)]
enum Events {
    F32(SparseRows<f32>),
    F64(SparseRows<f64>),
}

/// Element types with an [`Events`] variant.
trait WrapEvents: Real + Element {
    fn wrap(s: SparseRows<Self>) -> Events;
    fn unwrap(e: &Events) -> Option<&SparseRows<Self>>;
}

impl WrapEvents for f32 {
    fn wrap(s: SparseRows<f32>) -> Events {
        Events::F32(s)
    }
    fn unwrap(e: &Events) -> Option<&SparseRows<f32>> {
        match e {
            Events::F32(s) => Some(s),
            Events::F64(_) => None,
        }
    }
}

impl WrapEvents for f64 {
    fn wrap(s: SparseRows<f64>) -> Events {
        Events::F64(s)
    }
    fn unwrap(e: &Events) -> Option<&SparseRows<f64>> {
        match e {
            Events::F64(s) => Some(s),
            Events::F32(_) => None,
        }
    }
}

fn forward_events_impl<'py, F: WrapEvents>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
) -> PyResult<(Bound<'py, PyAny>, SynapseEvents)> {
    let xa = readonly::<F>("input", x)?;
    let wa = readonly::<F>("weight", weight)?;
    let xv = rank::<F, Ix3>("input", "(T, B, N_in)", xa.as_array())?;
    let wv = rank::<F, Ix2>("weight", "(N_out, N_in)", wa.as_array())?;
    let (y, sparse) = py
        .detach(|| -> eventprop_core::Result<_> {
            let input = SynapseInput::new(xv)?;
            Ok((input.forward_stacked(wv)?, input.sparse().clone()))
        })
        .map_err(value_error)?;
    Ok((
        PyArray4::from_owned_array(py, y).into_any(),
        SynapseEvents {
            inner: F::wrap(sparse),
        },
    ))
}

fn backward_events_impl<'py, F: WrapEvents>(
    py: Python<'py>,
    events: &SparseRows<F>,
    x: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
    grad: &Bound<'py, PyAny>,
    need_input: bool,
) -> PyResult<Grads<'py>> {
    let xa = readonly::<F>("input", x)?;
    let wa = readonly::<F>("weight", weight)?;
    let ga = readonly::<F>("grad", grad)?;
    let xv = rank::<F, Ix3>("input", "(T, B, N_in)", xa.as_array())?;
    let wv = rank::<F, Ix2>("weight", "(N_out, N_in)", wa.as_array())?;
    let gv = rank::<F, Ix4>("grad", "(2, T, B, N_out)", ga.as_array())?;
    let (t, b, n_in) = xv.dim();
    if events.rows() != t * b || events.n_cols() != n_in {
        return Err(PyValueError::new_err(format!(
            "input: expected the (T, B, N_in) of the forward ({} rows of {} values), got {}",
            events.rows(),
            events.n_cols(),
            eventprop_core::error::fmt_shape(xv.shape())
        )));
    }
    let g = py
        .detach(|| -> eventprop_core::Result<_> {
            if wv.ncols() != n_in {
                return Err(eventprop_core::Error::Shape {
                    arg: "weight",
                    expected: format!("(N_out, N_in) with N_in = {n_in}"),
                    actual: eventprop_core::error::fmt_shape(wv.shape()),
                });
            }
            eventprop_core::error::check_shape("grad", gv.shape(), &[2, t, b, wv.nrows()])?;
            let x = xv.as_standard_layout();
            let xs = x.as_slice().expect("standard layout");
            let gw = eventprop_core::synapse::weight_grad(events, xs, gv.index_axis(Axis(0), 0))?;
            let gx = if need_input {
                Some(eventprop_core::synapse::input_grad(
                    wv,
                    gv.index_axis(Axis(0), 1),
                )?)
            } else {
                None
            };
            Ok((gx, gw))
        })
        .map_err(value_error)?;
    Ok((
        g.0.map(|a| PyArrayDyn::from_owned_array(py, a.into_dyn()).into_any()),
        PyArrayDyn::from_owned_array(py, g.1.into_dyn()).into_any(),
    ))
}

/// `synapse_forward(input, weight, stacked=True)` that also returns the input's collected
/// non-zeros, for `_synapse_backward_events` (used by `eventprop.torch`).
#[pyfunction]
#[pyo3(name = "_synapse_forward_events")]
pub fn synapse_forward_events<'py>(
    py: Python<'py>,
    input: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
) -> PyResult<(Bound<'py, PyAny>, SynapseEvents)> {
    let dtype = dtype_of("input", input)?;
    same_dtype("weight", weight, "input", dtype)?;
    match dtype {
        Dtype::F32 => forward_events_impl::<f32>(py, input, weight),
        Dtype::F64 => forward_events_impl::<f64>(py, input, weight),
    }
}

/// `synapse_backward` reusing the non-zeros that `_synapse_forward_events` collected from
/// the same `input` (which is not scanned again).
#[pyfunction]
#[pyo3(name = "_synapse_backward_events")]
pub fn synapse_backward_events<'py>(
    py: Python<'py>,
    events: &Bound<'py, SynapseEvents>,
    input: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
    grad: &Bound<'py, PyAny>,
    need_input: bool,
) -> PyResult<Grads<'py>> {
    let dtype = dtype_of("input", input)?;
    same_dtype("weight", weight, "input", dtype)?;
    same_dtype("grad", grad, "input", dtype)?;
    let ev = &events.get().inner;
    let mismatch = || {
        PyTypeError::new_err("input: expected the dtype of the forward that collected the events")
    };
    match dtype {
        Dtype::F32 => {
            let s = f32::unwrap(ev).ok_or_else(mismatch)?;
            backward_events_impl::<f32>(py, s, input, weight, grad, need_input)
        }
        Dtype::F64 => {
            let s = f64::unwrap(ev).ok_or_else(mismatch)?;
            backward_events_impl::<f64>(py, s, input, weight, grad, need_input)
        }
    }
}

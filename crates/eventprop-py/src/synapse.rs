//! The companion synapse (SPEC §3): `synapse_forward` and `synapse_backward`.

use eventprop_core::Real;
use ndarray::{Ix2, Ix3, Ix4};
use numpy::{Element, PyArray3, PyArray4, PyArrayDyn};
use pyo3::exceptions::PyValueError;
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

/// Synapse forward (SPEC §3): `y = x @ weight.T` for `x` `(T, B, N_in)` and `weight`
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

/// Synapse backward (SPEC §3) from the neuron's gradient `grad` `(2, T, B, N_out)`:
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

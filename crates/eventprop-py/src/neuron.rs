//! The LIF neuron function: `neuron_forward` returns a [`NeuronContext`] whose outputs are
//! read-only numpy views into the Rust-owned arrays, and whose `backward` runs the EventProp
//! adjoint (which reads those arrays).

use eventprop_core::{
    Discretization, EventPropNeuron, HwData, LifParams, NeuronContext as CoreContext, Real,
};
use ndarray::{ArrayView3, Ix3};
use numpy::{Element, PyArray3, PyArray4, PyReadonlyArrayDyn};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::convert::{dtype_of, param, readonly, same_dtype, value_error, Dtype};

/// Counts of the numerical guards the adjoint applied (the seed sets these terms to 0
/// silently; here they are counted).
#[pyclass(frozen, module = "eventprop._eventprop", name = "GuardStats")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GuardStats {
    /// Entries where `out = z * grad_spikes / dv_m` was not finite and was set to 0.
    #[pyo3(get)]
    pub nonfinite_out: u64,
    /// Entries where `jump = z * dv_p / dv_m` was not finite and was set to 0.
    #[pyo3(get)]
    pub nonfinite_jump: u64,
    /// Guarded entries at a spike: there the guard dropped the spike's contribution.
    #[pyo3(get)]
    pub guarded_spikes: u64,
}

impl From<eventprop_core::GuardStats> for GuardStats {
    fn from(s: eventprop_core::GuardStats) -> Self {
        Self {
            nonfinite_out: s.nonfinite_out,
            nonfinite_jump: s.nonfinite_jump,
            guarded_spikes: s.guarded_spikes,
        }
    }
}

#[pymethods]
impl GuardStats {
    /// The counts as a dict.
    fn as_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("nonfinite_out", self.nonfinite_out)?;
        d.set_item("nonfinite_jump", self.nonfinite_jump)?;
        d.set_item("guarded_spikes", self.guarded_spikes)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "GuardStats(nonfinite_out={}, nonfinite_jump={}, guarded_spikes={})",
            self.nonfinite_out, self.nonfinite_jump, self.guarded_spikes
        )
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<GuardStats>().is_ok_and(|o| *o.get() == *self)
    }
}

/// A forward pass of one dtype.
#[derive(Debug)]
enum Inner {
    F32(CoreContext<f32>),
    F64(CoreContext<f64>),
}

/// Element types with a context variant.
trait Wrap: Real + Element {
    fn wrap(ctx: CoreContext<Self>) -> Inner;
}

impl Wrap for f32 {
    fn wrap(ctx: CoreContext<f32>) -> Inner {
        Inner::F32(ctx)
    }
}

impl Wrap for f64 {
    fn wrap(ctx: CoreContext<f64>) -> Inner {
        Inner::F64(ctx)
    }
}

/// The result of `neuron_forward`: outputs `spikes`, `membrane`, `current` (each
/// `(T, B, N)`) and what the backward needs.
///
/// The outputs are **read-only** numpy views of this object's buffers (no copy), because
/// `backward` reads spikes and current from those same buffers: writing to them would
/// silently change the gradient. Their `writeable` flag cannot be set back (the base
/// object is this context, not an array); take a `.copy()` to modify the values.
#[pyclass(frozen, module = "eventprop._eventprop", name = "NeuronContext")]
#[derive(Debug)]
pub struct NeuronContext {
    inner: Inner,
}

/// One of the three outputs of a forward.
#[derive(Debug, Clone, Copy)]
enum Output {
    Spikes,
    Membrane,
    Current,
}

/// A numpy view (no copy) of output `which` of `slf`, which owns it: read-only unless
/// `writeable`.
///
/// # Errors
/// Only if setting numpy's `flags.writeable` on the fresh view fails (it does not).
fn view<'py>(
    slf: &Bound<'py, NeuronContext>,
    which: Output,
    writeable: bool,
) -> PyResult<Bound<'py, PyAny>> {
    fn borrow3<'py, F: Real + Element>(
        c: &CoreContext<F>,
        which: Output,
        owner: &Bound<'py, NeuronContext>,
    ) -> Bound<'py, PyAny> {
        let o = c.output();
        let array = match which {
            Output::Spikes => &o.spikes,
            Output::Membrane => &o.membrane,
            Output::Current => &o.current,
        };
        // SAFETY: `array` lives inside the frozen `NeuronContext` `owner`, which never
        // reallocates or replaces it; the numpy array keeps `owner` alive as its base
        // object. Rust only reads the buffer (in `backward`); Python can write to it only
        // through a view from `_writeable_outputs`, meant for `eventprop.torch`, which
        // saves the tensors for backward so that torch's version counter rejects the
        // backward after an in-place edit.
        unsafe { PyArray3::borrow_from_array(array, owner.clone().into_any()).into_any() }
    }
    let array = match &slf.get().inner {
        Inner::F32(c) => borrow3(c, which, slf),
        Inner::F64(c) => borrow3(c, which, slf),
    };
    if !writeable {
        // Not through rust-numpy's borrow tracking: the fresh view is referenced nowhere
        // else, and a borrow of another view of this context (e.g. passed as `hw_data` to
        // a forward running in another thread) must not make this getter fail.
        array.getattr("flags")?.setattr("writeable", false)?;
    }
    Ok(array)
}

fn backward_impl<'py, F: Wrap>(
    py: Python<'py>,
    ctx: &CoreContext<F>,
    grad_spikes: &Bound<'py, PyAny>,
    grad_membrane: Option<&Bound<'py, PyAny>>,
    grad_current: Option<&Bound<'py, PyAny>>,
) -> PyResult<(Bound<'py, PyAny>, GuardStats)> {
    let g = readonly::<F>("grad_spikes", grad_spikes)?;
    let g3 = as3("grad_spikes", &g)?;
    // Shapes of the ignored gradients are still checked, as by the core.
    let gm = grad_membrane
        .map(|a| readonly::<F>("grad_membrane", a))
        .transpose()?;
    let gc = grad_current
        .map(|a| readonly::<F>("grad_current", a))
        .transpose()?;
    let gm3 = gm.as_ref().map(|a| as3("grad_membrane", a)).transpose()?;
    let gc3 = gc.as_ref().map(|a| as3("grad_current", a)).transpose()?;
    let grad = py
        .detach(|| ctx.backward(g3, gm3, gc3))
        .map_err(value_error)?;
    let stats = GuardStats::from(grad.stats);
    Ok((
        PyArray4::from_owned_array(py, grad.grad_input).into_any(),
        stats,
    ))
}

/// A 3-d view of `a`.
fn as3<'a, F: Element>(arg: &str, a: &'a PyReadonlyArrayDyn<'_, F>) -> PyResult<ArrayView3<'a, F>> {
    let v = a.as_array();
    let shape = eventprop_core::error::fmt_shape(v.shape());
    v.into_dimensionality::<Ix3>()
        .map_err(|_| PyValueError::new_err(format!("{arg}: expected shape (T, B, N), got {shape}")))
}

#[pymethods]
impl NeuronContext {
    /// Spikes `z` `(T, B, N)`: a read-only view of this context's buffer, which the
    /// backward reads.
    #[getter]
    fn spikes<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        view(slf, Output::Spikes, false)
    }

    /// Membrane `v` `(T, B, N)`: a read-only view of this context's buffer.
    #[getter]
    fn membrane<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        view(slf, Output::Membrane, false)
    }

    /// Synaptic current `i` `(T, B, N)`: a read-only view of this context's buffer, which
    /// the backward reads.
    #[getter]
    fn current<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        view(slf, Output::Current, false)
    }

    /// `(spikes, membrane, current)` as **writeable** views of this context's buffers (no
    /// copy), for `eventprop.torch` only: it wraps them as the forward's output tensors and
    /// saves them with `ctx.save_for_backward`, so that torch's version counter makes the
    /// backward raise after an in-place edit instead of reading the edited buffers.
    #[pyo3(name = "_writeable_outputs")]
    fn writeable_outputs<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        Ok((
            view(slf, Output::Spikes, true)?,
            view(slf, Output::Membrane, true)?,
            view(slf, Output::Current, true)?,
        ))
    }

    /// `"float32"` or `"float64"`.
    #[getter]
    fn dtype(&self) -> &'static str {
        match self.inner {
            Inner::F32(_) => "float32",
            Inner::F64(_) => "float64",
        }
    }

    /// EventProp backward (docs/spec.md §2): returns `(grad_input, stats)`, `grad_input` of shape
    /// `(2, T, B, N)` = `[lambda_i * tau_syn, lambda_v - lambda_i]`. `grad_membrane` and
    /// `grad_current` are accepted as in the seed and not used (their shapes are checked).
    #[pyo3(signature = (grad_spikes, grad_membrane=None, grad_current=None))]
    fn backward<'py>(
        &self,
        py: Python<'py>,
        grad_spikes: &Bound<'py, PyAny>,
        grad_membrane: Option<&Bound<'py, PyAny>>,
        grad_current: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<(Bound<'py, PyAny>, GuardStats)> {
        match &self.inner {
            Inner::F32(c) => backward_impl(py, c, grad_spikes, grad_membrane, grad_current),
            Inner::F64(c) => backward_impl(py, c, grad_spikes, grad_membrane, grad_current),
        }
    }

    fn __repr__(&self) -> String {
        let (t, b, n) = match &self.inner {
            Inner::F32(c) => c.output().spikes.dim(),
            Inner::F64(c) => c.output().spikes.dim(),
        };
        format!("NeuronContext(T={t}, B={b}, N={n}, dtype={})", self.dtype())
    }
}

/// The parsed arguments of a forward call.
struct ForwardArgs<'a, 'py> {
    input: &'a Bound<'py, PyAny>,
    params: [&'a Bound<'py, PyAny>; 5],
    hw: Option<Vec<Option<Bound<'py, PyAny>>>>,
    dt: f64,
    discretization: Discretization,
}

fn forward_impl<F: Wrap>(py: Python<'_>, args: &ForwardArgs<'_, '_>) -> PyResult<NeuronContext> {
    let [leak, reset, threshold, tau_syn, tau_mem] = args.params;
    let neuron = EventPropNeuron::<F> {
        params: LifParams {
            leak: param("leak", leak)?,
            reset: param("reset", reset)?,
            threshold: param("threshold", threshold)?,
            tau_syn: param("tau_syn", tau_syn)?,
            tau_mem: param("tau_mem", tau_mem)?,
        },
        dt: F::of(args.dt),
        discretization: args.discretization,
    };
    let input = readonly::<F>("input", args.input)?;
    const NAMES: [&str; 3] = ["hw_spikes", "hw_membrane", "hw_current"];
    let hw: Option<Vec<Option<PyReadonlyArrayDyn<'_, F>>>> = match &args.hw {
        None => None,
        Some(items) => Some(
            items
                .iter()
                .zip(NAMES)
                .map(|(a, name)| a.as_ref().map(|a| readonly::<F>(name, a)).transpose())
                .collect::<PyResult<_>>()?,
        ),
    };
    let hw_views = match &hw {
        None => None,
        Some(h) => {
            let mut views = Vec::with_capacity(3);
            for (a, name) in h.iter().zip(NAMES) {
                views.push(a.as_ref().map(|a| as3(name, a)).transpose()?);
            }
            let current = views.pop().flatten();
            let membrane = views.pop().flatten();
            let spikes = views.pop().flatten();
            match (spikes, membrane) {
                (Some(spikes), Some(membrane)) => Some(HwData {
                    spikes,
                    membrane,
                    current,
                }),
                _ => {
                    return Err(PyValueError::new_err(
                        "hw_data: spikes and membrane must not be None",
                    ))
                }
            }
        }
    };
    let x = input.as_array();
    // spikes, membrane, current and the backward's buffers: 4 arrays of the input's shape
    crate::convert::ensure_memory(
        "input",
        &format!("the context of shape {:?} (4 arrays of it)", x.shape()),
        4 * x.len() as u128,
        std::mem::size_of::<F>() as u128,
    )?;
    let ctx = py
        .detach(|| neuron.forward_dyn(x, hw_views))
        .map_err(value_error)?;
    Ok(NeuronContext {
        inner: F::wrap(ctx),
    })
}

/// Splits `hw_data` (None, or a tuple/list `(spikes, membrane[, current])`) into three
/// optional arrays, checking their dtypes against the input's.
fn parse_hw<'py>(
    hw_data: Option<&Bound<'py, PyAny>>,
    dtype: Dtype,
) -> PyResult<Option<Vec<Option<Bound<'py, PyAny>>>>> {
    let Some(hw) = hw_data else { return Ok(None) };
    if hw.is_none() {
        return Ok(None);
    }
    let items: Vec<Bound<'py, PyAny>> = if let Ok(t) = hw.cast::<PyTuple>() {
        t.iter().collect()
    } else if let Ok(l) = hw.cast::<pyo3::types::PyList>() {
        l.iter().collect()
    } else {
        return Err(PyTypeError::new_err(
            "hw_data: expected None or a tuple (spikes, membrane[, current])",
        ));
    };
    if !(2..=3).contains(&items.len()) {
        return Err(PyValueError::new_err(format!(
            "hw_data: expected a tuple (spikes, membrane[, current]) of 2 or 3 arrays, got {} items",
            items.len()
        )));
    }
    let names = ["hw_spikes", "hw_membrane", "hw_current"];
    let mut out = Vec::with_capacity(3);
    for (k, name) in names.iter().enumerate() {
        match items.get(k) {
            Some(a) if !a.is_none() => {
                same_dtype(name, a, "input", dtype)?;
                out.push(Some(a.clone()));
            }
            _ => out.push(None),
        }
    }
    Ok(Some(out))
}

/// Forward of the EventProp LIF neuron (docs/spec.md §1), the seed's `EventPropNeuronFunction`.
///
/// `input` is `(2, T, B, N)` (`input[1]` ignored) or `(T, B, N)`, float32 or float64, any
/// strides (read without a copy when C-contiguous). Parameters are numbers, or arrays of
/// one value per neuron. `hw_data` is `None` or `(spikes, membrane[, current])` recorded
/// on hardware, returned unchanged. `discretization` (`"seed"` or `"corrected"`) selects
/// the current used by the backward's jump terms. Returns a `NeuronContext`.
#[pyfunction]
#[pyo3(signature = (input, leak, reset, threshold, tau_syn, tau_mem, hw_data=None, dt=None, discretization=None))]
#[allow(clippy::too_many_arguments)]
pub fn neuron_forward(
    py: Python<'_>,
    input: &Bound<'_, PyAny>,
    leak: &Bound<'_, PyAny>,
    reset: &Bound<'_, PyAny>,
    threshold: &Bound<'_, PyAny>,
    tau_syn: &Bound<'_, PyAny>,
    tau_mem: &Bound<'_, PyAny>,
    hw_data: Option<&Bound<'_, PyAny>>,
    dt: Option<&Bound<'_, PyAny>>,
    discretization: Option<&Bound<'_, PyAny>>,
) -> PyResult<NeuronContext> {
    // Extracted by hand so that a wrong type names the argument; `None` is the default
    // (`dt = 1e-6`, `discretization = "seed"`).
    let dt: f64 = dt.map_or(Ok(1e-6), |dt| dt.extract()).map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err(format!(
            "dt: expected a real number (seconds), got {}",
            dt.map_or_else(String::new, type_name)
        ))
    })?;
    let discretization: String = discretization
        .map_or(Ok("seed".to_string()), |d| d.extract())
        .map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(format!(
                "discretization: expected \"seed\" or \"corrected\", got {}",
                discretization.map_or_else(String::new, type_name)
            ))
        })?;
    let discretization: Discretization = discretization.parse().map_err(PyValueError::new_err)?;
    let dtype = dtype_of("input", input)?;
    let args = ForwardArgs {
        input,
        params: [leak, reset, threshold, tau_syn, tau_mem],
        hw: parse_hw(hw_data, dtype)?,
        dt,
        discretization,
    };
    match dtype {
        Dtype::F32 => forward_impl::<f32>(py, &args),
        Dtype::F64 => forward_impl::<f64>(py, &args),
    }
}

/// EventProp backward of a `neuron_forward` (docs/spec.md §2): `(grad_input, stats)`, with
/// `grad_input` `(2, T, B, N)`. Same as `ctx.backward(...)`.
#[pyfunction]
#[pyo3(signature = (ctx, grad_spikes, grad_membrane=None, grad_current=None))]
pub fn neuron_backward<'py>(
    py: Python<'py>,
    ctx: &Bound<'py, NeuronContext>,
    grad_spikes: &Bound<'py, PyAny>,
    grad_membrane: Option<&Bound<'py, PyAny>>,
    grad_current: Option<&Bound<'py, PyAny>>,
) -> PyResult<(Bound<'py, PyAny>, GuardStats)> {
    ctx.get()
        .backward(py, grad_spikes, grad_membrane, grad_current)
}

/// The Python type name of `v` (for error messages).
fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .name()
        .map_or_else(|_| "an object".to_string(), |n| n.to_string())
}

#[cfg(test)]
mod tests {
    use super::GuardStats;

    #[test]
    fn guard_stats_fields_map_one_to_one() {
        // Distinct counts, so that a swapped field shows.
        let core = eventprop_core::GuardStats {
            nonfinite_out: 3,
            nonfinite_jump: 5,
            guarded_spikes: 7,
        };
        let py = GuardStats::from(core);
        assert_eq!(
            (py.nonfinite_out, py.nonfinite_jump, py.guarded_spikes),
            (3, 5, 7)
        );
        assert_eq!(
            py.__repr__(),
            "GuardStats(nonfinite_out=3, nonfinite_jump=5, guarded_spikes=7)"
        );
    }
}

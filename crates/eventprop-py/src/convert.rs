//! Conversions between Python objects and the core's types: dtype dispatch, read-only
//! array views (no copy), parameters, and the mapping of core errors to Python exceptions.

use eventprop_core::{Error, Param, Real};
use numpy::{Element, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

/// The element types the kernels accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dtype {
    /// `numpy.float32`.
    F32,
    /// `numpy.float64`.
    F64,
}

impl Dtype {
    fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
        }
    }
}

/// Maps a core error to `ValueError` carrying the core's message (which names the argument
/// and the expected against the actual value).
pub(crate) fn value_error(e: Error) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// A readable description of what `obj` is, for `TypeError` messages.
fn describe(obj: &Bound<'_, PyAny>) -> String {
    if let Ok(a) = obj.cast::<numpy::PyUntypedArray>() {
        match a.dtype().str() {
            Ok(s) => format!("a numpy array of dtype {s}"),
            Err(_) => "a numpy array".to_owned(),
        }
    } else {
        match obj.get_type().name() {
            Ok(n) => format!("an object of type {n}"),
            Err(_) => "an object of unknown type".to_owned(),
        }
    }
}

/// The dtype of the array `obj`, which must be a float32 or float64 numpy array.
///
/// # Errors
/// `TypeError` naming `arg` for anything else.
pub(crate) fn dtype_of(arg: &str, obj: &Bound<'_, PyAny>) -> PyResult<Dtype> {
    if obj.cast::<PyArrayDyn<f32>>().is_ok() {
        Ok(Dtype::F32)
    } else if obj.cast::<PyArrayDyn<f64>>().is_ok() {
        Ok(Dtype::F64)
    } else {
        Err(PyTypeError::new_err(format!(
            "{arg}: expected a numpy array of dtype float32 or float64, got {}",
            describe(obj)
        )))
    }
}

/// A read-only view of `obj` as an array of `F`, without copying (any strides).
///
/// # Errors
/// `TypeError` naming `arg` when `obj` is not an array of `F` (e.g. a dtype that differs
/// from the first array argument's); `ValueError` when it is mutably borrowed elsewhere.
pub(crate) fn readonly<'py, F: Real + Element>(
    arg: &str,
    obj: &Bound<'py, PyAny>,
) -> PyResult<PyReadonlyArrayDyn<'py, F>> {
    let array = obj.cast::<PyArrayDyn<F>>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{arg}: expected a numpy array of dtype {}, got {}",
            if F::NAME == "f32" {
                "float32"
            } else {
                "float64"
            },
            describe(obj)
        ))
    })?;
    array
        .try_readonly()
        .map_err(|e| PyValueError::new_err(format!("{arg}: cannot be read: {e}")))
}

/// Requires `obj` to have the dtype of the first array argument.
///
/// # Errors
/// `TypeError` naming both arguments and dtypes.
pub(crate) fn same_dtype(
    arg: &str,
    obj: &Bound<'_, PyAny>,
    first: &str,
    dtype: Dtype,
) -> PyResult<()> {
    let d = dtype_of(arg, obj)?;
    if d == dtype {
        Ok(())
    } else {
        Err(PyTypeError::new_err(format!(
            "{arg}: expected dtype {} (the dtype of {first}), got {}",
            dtype.name(),
            d.name()
        )))
    }
}

/// A neuron parameter: a Python number, a 0-d or length-1 array (broadcast over all
/// neurons), or a 1-d array of one value per neuron (any float dtype).
///
/// # Errors
/// `ValueError` for arrays of rank > 1, `TypeError` for anything that is not a number or a
/// float array.
pub(crate) fn param<F: Real>(arg: &str, obj: &Bound<'_, PyAny>) -> PyResult<Param<F>> {
    fn from_values<F: Real, T: Copy + Into<f64>>(
        arg: &str,
        shape: &[usize],
        values: impl Iterator<Item = T>,
    ) -> PyResult<Param<F>> {
        let values: Vec<F> = values.map(|v| F::of(v.into())).collect();
        match shape.len() {
            0 => Ok(Param::Scalar(values[0])),
            1 if values.len() == 1 => Ok(Param::Scalar(values[0])),
            1 => Ok(Param::PerNeuron(values)),
            _ => Err(PyValueError::new_err(format!(
                "{arg}: expected a scalar or a 1-d array of one value per neuron, got shape {}",
                eventprop_core::error::fmt_shape(shape)
            ))),
        }
    }
    if let Ok(a) = obj.cast::<PyArrayDyn<f64>>() {
        let a = a
            .try_readonly()
            .map_err(|e| PyValueError::new_err(format!("{arg}: cannot be read: {e}")))?;
        let v = a.as_array();
        return from_values(arg, v.shape(), v.iter().copied());
    }
    if let Ok(a) = obj.cast::<PyArrayDyn<f32>>() {
        let a = a
            .try_readonly()
            .map_err(|e| PyValueError::new_err(format!("{arg}: cannot be read: {e}")))?;
        let v = a.as_array();
        return from_values(arg, v.shape(), v.iter().copied());
    }
    match obj.extract::<f64>() {
        Ok(v) => Ok(Param::Scalar(F::of(v))),
        Err(_) => Err(PyTypeError::new_err(format!(
            "{arg}: expected a float or a float32/float64 array, got {}",
            describe(obj)
        ))),
    }
}

/// Checks that `elems` elements of `elem_bytes` each can be allocated before a kernel
/// allocates its outputs infallibly: a size the process cannot hold is a Python
/// `MemoryError` naming `arg` and the bytes, not an abort (or an out-of-memory kill) of the
/// interpreter. Two checks: the size is at most the machine's memory (`MemTotal` of
/// `/proc/meminfo`, where there is one), and the system allocator can reserve it (a probe
/// released at once, never touched). The probe goes to the system allocator, not to this
/// module's mimalloc: mimalloc reserves address space without committing it, so it grants
/// any size and the kernel kills the process only when the pages are written (measured:
/// an 80 TB output was granted and the interpreter was killed at 24 GB).
pub(crate) fn ensure_memory(arg: &str, what: &str, elems: u128, elem_bytes: u128) -> PyResult<()> {
    let bytes = elems.saturating_mul(elem_bytes);
    let fits = match machine_memory() {
        Some(total) => bytes <= u128::from(total),
        None => true,
    };
    let ok = fits && usize::try_from(bytes).ok().is_some_and(system_can_reserve);
    if ok {
        Ok(())
    } else {
        Err(pyo3::exceptions::PyMemoryError::new_err(format!(
            "{arg}: {what} need {bytes} bytes ({:.1} GiB), which cannot be allocated",
            bytes as f64 / (1u64 << 30) as f64
        )))
    }
}

/// Whether the system allocator grants `bytes` (the block is freed at once, untouched).
fn system_can_reserve(bytes: usize) -> bool {
    use std::alloc::{GlobalAlloc, Layout, System};
    let Ok(layout) = Layout::from_size_align(bytes.max(1), 16) else {
        return false;
    };
    // SAFETY: `layout` has a non-zero size; the pointer is freed with the same layout and
    // never read or written.
    unsafe {
        let p = System.alloc(layout);
        if p.is_null() {
            return false;
        }
        System.dealloc(p, layout);
    }
    true
}

/// The machine's memory in bytes (`MemTotal` of `/proc/meminfo`), where it can be read.
fn machine_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod memory_tests {
    use super::ensure_memory;

    #[test]
    fn impossible_sizes_are_refused_and_possible_ones_pass() {
        assert!(ensure_memory("input", "x", 10, 8).is_ok());
        // more than an address space holds
        assert!(ensure_memory("input", "x", u128::from(u64::MAX), 8).is_err());
        assert!(ensure_memory("input", "x", u128::MAX, u128::MAX).is_err());
        // larger than the machine, yet within the address space: refused without touching
        // anything (the case that mimalloc would have granted)
        if let Some(total) = super::machine_memory() {
            assert!(ensure_memory("input", "x", u128::from(total) + 1, 1).is_err());
            assert!(ensure_memory("input", "x", 10_000_000 * 1_000_000, 8).is_err());
        }
    }
}

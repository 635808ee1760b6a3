//! # eventprop-py
//!
//! Python bindings of [`eventprop_core`], built with PyO3 and maturin into the extension
//! module `eventprop._eventprop` (an abi3 wheel for CPython ≥ 3.9). The pure-Python package
//! `eventprop` (in `python/eventprop`) re-exports the numpy entry points defined here and
//! adds `eventprop.torch` (`torch.autograd.Function`s and `nn.Module`s) on top.
//!
//! Entry points (float32 and float64 numpy arrays, any strides, no copy of C-contiguous
//! inputs; kernels run with the GIL released; returned arrays take ownership of fresh Rust
//! buffers, except the context's outputs, which are read-only views):
//!
//! - `neuron_forward(input, leak, reset, threshold, tau_syn, tau_mem, hw_data=None,
//!   dt=1e-6, discretization="seed") -> NeuronContext` (docs/spec.md §1), with `.spikes`,
//!   `.membrane`, `.current` `(T, B, N)`: read-only views of the buffers its backward reads;
//! - `neuron_backward(ctx, grad_spikes, grad_membrane=None, grad_current=None) ->
//!   (grad_input (2, T, B, N), GuardStats)` (docs/spec.md §2);
//! - `synapse_forward(input, weight, stacked=False)` and
//!   `synapse_backward(input, weight, grad, need_input=True) -> (grad_input, grad_weight)`
//!   (docs/spec.md §3);
//! - `MockChip` and `map_recording` (module [`chip`]): the mock chip and recording files as
//!   `hw_data`, behind `eventprop.chip`.
//!
//! - `recurrent_lif_forward(...)`, `recurrent_lif_backward(ctx, grad_spikes)`: the
//!   time-stepped layer with recurrent weights, per-neuron parameters and delays
//!   ([`recurrent`]), behind `eventprop.torch.RecurrentLIF`.
//!
//! Errors of the core (shapes, non-finite values, non-positive time constants) become
//! `ValueError` with the core's message; wrong dtypes or types become `TypeError`.
//!
//! The `extension-module` feature (set by maturin only) stops linking libpython, so that a
//! plain `cargo build`/`cargo test` of the workspace links.
#![deny(missing_docs)]

pub mod chip;
mod convert;
pub mod neuron;
pub mod recurrent;
pub mod synapse;

use pyo3::prelude::*;

/// mimalloc keeps freed pages for reuse: with the system allocator every forward and
/// backward over large `(T, B, N)` buffers page-faults fresh memory from the kernel. Arrays
/// handed to numpy keep their Rust allocation and are freed through this allocator too.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (index 15 of `mi_option_t` in mimalloc 2.x, which
/// `libmimalloc-sys` does not name).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed pages are returned to the OS only after this many milliseconds (mimalloc's default
/// is 10): long enough to reuse them across the passes of a training loop, short enough
/// not to hold a large pass's memory for the rest of the Python session.
const PURGE_DELAY_MS: std::os::raw::c_long = 2000;

/// The extension module `eventprop._eventprop`.
#[pymodule]
#[pyo3(name = "_eventprop")]
fn eventprop_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // SAFETY: sets a process-wide option of this extension's allocator; the call has no
    // memory-safety preconditions.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    m.add_function(wrap_pyfunction!(neuron::neuron_forward, m)?)?;
    m.add_function(wrap_pyfunction!(neuron::neuron_backward, m)?)?;
    m.add_function(wrap_pyfunction!(synapse::synapse_forward, m)?)?;
    m.add_function(wrap_pyfunction!(synapse::synapse_backward, m)?)?;
    m.add_function(wrap_pyfunction!(synapse::synapse_forward_events, m)?)?;
    m.add_function(wrap_pyfunction!(synapse::synapse_backward_events, m)?)?;
    m.add_class::<synapse::SynapseEvents>()?;
    m.add_class::<neuron::NeuronContext>()?;
    m.add_class::<chip::PyMockChip>()?;
    m.add_function(wrap_pyfunction!(chip::map_recording, m)?)?;
    m.add_class::<neuron::GuardStats>()?;
    m.add_function(wrap_pyfunction!(recurrent::recurrent_lif_forward, m)?)?;
    m.add_function(wrap_pyfunction!(recurrent::recurrent_lif_backward, m)?)?;
    m.add_class::<recurrent::RecurrentContext>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

//! # eventprop-core
//!
//! The EventProp leaky-integrate-and-fire (LIF) neuron function and its companion synapse,
//! as in the BrainScaleS-2 `EventPropNeuronFunction` (the "seed"), with the EventProp
//! adjoint (Wunderlich & Pehle 2021) as backward. Kernels are plain functions over slices,
//! parallel over the batch with rayon; this crate has no framework dependency.
//!
//! ## Forward (time-stepped, seed update order)
//!
//! Shapes are time-major `(T, B, N)`. With `x` the input current per step,
//! `k_syn = dt/tau_syn`, `k_mem = dt/tau_mem`:
//!
//! ```text
//! z[0] = 0,  i[0] = 0,  v[0] = leak
//! i[t+1] = i[t] (1 - k_syn) + x[t]
//! u      = v[t] + k_mem (leak - v[t] + i[t+1])
//! z[t+1] = [u > threshold],   v[t+1] = reset if z[t+1] else u
//! ```
//!
//! With hardware data the recorded spikes and membrane are returned unchanged (the current
//! is recomputed from `x` by the same recursion unless recorded).
//!
//! ## Backward (EventProp adjoint, Euler-discretised)
//!
//! `lambda_v[T-1] = lambda_i[T-1] = 0`; for `t = T-1 … 1`, with `i* = i[t-1]`
//! ([`Discretization::Seed`]) or `i[t]` ([`Discretization::Corrected`]):
//!
//! ```text
//! dv_m = leak - threshold + i*,    dv_p = leak - reset + i*
//! lambda_i[t-1] = lambda_i[t] + k_syn (lambda_v[t] - lambda_i[t])
//! lambda_v[t-1] = (1 - z[t]) w + z[t] (dv_p/dv_m) w + z[t] grad_spikes[t] / dv_m,
//!                 w = lambda_v[t] (1 - k_mem)
//! grad_input = (lambda_i tau_syn, lambda_v - lambda_i)      # (2, T, B, N)
//! ```
//!
//! Non-finite `out`/`jump` terms are set to 0 as in the seed, and counted in
//! [`GuardStats`].
//!
//! ## Synapse
//!
//! `y = x W^T` (returned stacked as `(2, T, B, N_out) = [y, 0]` in the seed form);
//! backward `grad_x = g[1] W`, `grad_W = Σ_{t,b} g[0][t,b] ⊗ x[t,b]`. The returned weight
//! gradient is `+dL/dW` when `grad_spikes` at a spike step holds `-dL/dt_k`.
//!
//! ## Example
//!
//! ```
//! use eventprop_core::{synapse_backward, synapse_forward, EventPropNeuron, LifParams};
//! use ndarray::{Array2, Array3};
//!
//! // T = 20 steps, B = 1, 2 inputs → 3 neurons; one input spike at t = 2.
//! let mut x = Array3::<f64>::zeros((20, 1, 2));
//! x[[2, 0, 0]] = 1.0;
//! let w = Array2::from_elem((3, 2), 5.0);
//! let y = synapse_forward(x.view(), w.view())?;
//! let neuron = EventPropNeuron { params: LifParams::scalar(0.0, 0.0, 1.0, 5e-6, 1e-5), ..Default::default() };
//! let ctx = neuron.forward(y.view(), None)?;
//! assert!(ctx.output().spikes.sum() > 0.0);
//! let grad = ctx.backward(ctx.output().spikes.view(), None, None)?;
//! let gw = synapse_backward(x.view(), w.view(), grad.grad_input.view(), false)?.weight;
//! assert_eq!(gw.dim(), (3, 2));
//! # Ok::<(), eventprop_core::Error>(())
//! ```
//!
//! To reuse output buffers across batches (or write into memory someone else owns), use
//! [`EventPropNeuron::forward_into`], [`NeuronContext::backward_into`] /
//! [`EventPropNeuron::backward_into`] and [`SynapseInput::forward_into`]: same results, bit
//! for bit. Problems smaller than [`SERIAL_BELOW`] elements run on the calling thread.
#![deny(missing_docs)]
#![warn(rustdoc::broken_intra_doc_links)]

pub mod error;
pub mod fused;
pub mod lif;
pub mod model;
pub mod params;
mod real;
mod rows;
pub mod spec;
pub mod spike;
pub mod stepped;
pub mod synapse;
pub mod workload;

pub use error::{Error, Result};
pub use lif::{
    Discretization, EventPropNeuron, GuardStats, HwData, NeuronContext, NeuronGrad, NeuronOutput,
    NeuronOutputMut,
};
pub use model::{Lif, NeuronParams};
pub use params::{Coefficients, LifParams, Param};
pub use real::Real;
pub use rows::SERIAL_BELOW;
pub use spec::NetworkSpec;
pub use spike::{sort_spikes, Spike};
pub use synapse::{
    synapse_backward, synapse_forward, synapse_forward_stacked, SparseRows, SynapseGrad,
    SynapseInput,
};

//! # eventprop-exact
//!
//! Event-based simulation of feed-forward networks of current-based LIF neurons with exact
//! spike times, and the exact EventProp adjoint (Wunderlich & Pehle 2021, Sci. Rep.
//! 11:12829), event by event: weight gradients and input-spike-time gradients that match
//! central finite differences of the forward to rounding.
//!
//! ## Model (docs/spec.md §4)
//!
//! Per neuron, between events, `tau_mem dV/dt = (leak - V) + I`, `tau_syn dI/dt = -I`;
//! a presynaptic spike of `j` adds `W[n, j]` to `I_n`; `V` crossing `threshold` from below at
//! `t_k` is a spike and `V` is set to `reset`. All neurons start at `V = leak`, `I = 0`.
//! With `u = V - leak`, `a = 1/tau_mem`, `b = 1/tau_syn`:
//!
//! ```text
//! I(s) = I0 e^{-b s},   u(s) = u0 e^{-a s} + a I0 phi(a, b, s),
//! phi(a, b, s) = (e^{-a s} - e^{-b s}) / (b - a)   (= s e^{-a s} for a = b)
//! ```
//!
//! evaluated without dividing by `b - a` ([`dynamics`]). Crossings are bracketed from the
//! analytic extremum and solved by safeguarded Newton ([`dynamics::Kinetics::first_crossing`]).
//!
//! ## Adjoint
//!
//! `tau_mem dλ_V/dτ = -λ_V`, `tau_syn dλ_I/dτ = -λ_I + λ_V` in reverse time; at a spike,
//! `λ_V ← (D+/D-) λ_V + (dL/dt_k)/D-` with `D± = leak - {reset, threshold} + I(t_k)` and
//! `dL/dt_k = ∂l/∂t_k + Σ_m W[m, n] (λ_V,m - λ_I,m)(t_k)`; `dL/dW[n, j] = -tau_syn Σ λ_I,n(t_j)`
//! over the presynaptic spikes `t_j` ([`backward`]).
//!
//! ## Losses and training
//!
//! [`loss`]: sum of output spike times (for checks) and the paper's first-spike
//! cross-entropy with its regulariser; silent neurons count at `t_max`, and a silent label
//! neuron adds an exact membrane-maximum term ([`FirstSpikeCe`]). [`batch`] runs samples in
//! parallel (rayon) with thread-count-independent sums. This crate knows nothing of
//! training: the trainer (`eventprop-train`) drives it as one of its engines.
//!
//! ## Guards
//!
//! A neuron firing more than [`SolverConfig::max_spikes_per_neuron`] times is an
//! [`Error::TooManySpikes`]; a grazing crossing (`D-` below
//! [`SolverConfig::grazing_floor`]) has its `D-` raised to the floor and is counted in
//! [`AdjointStats`].
//!
//! ## Example
//!
//! ```
//! use eventprop_exact::{loss, Network, Lif, SolverConfig, Spike};
//! use ndarray::array;
//!
//! let p = Lif::default(); // tau_syn 5 ms, tau_mem 20 ms, threshold 1
//! let net = Network::new(vec![array![[12.0, 9.0], [4.0, 15.0]], array![[8.0, 7.0]]], vec![p, p])?;
//! let input = [Spike { time: 1e-3, neuron: 0 }, Spike { time: 2e-3, neuron: 1 }];
//! let cfg = SolverConfig::default();
//! let trace = net.forward(&input, 0.05, &cfg)?;
//! let l = loss::spike_time_sum(trace.output());
//! let grads = trace.backward(&net, &l.dl_dt, &cfg)?;
//! assert_eq!(grads.weights[0].dim(), (2, 2));
//! assert_eq!(grads.input_times.len(), 2);
//! # Ok::<(), eventprop_exact::Error>(())
//! ```
#![deny(missing_docs)]
#![warn(rustdoc::broken_intra_doc_links)]

pub mod backward;
pub mod batch;
pub mod dynamics;
pub mod error;
pub mod forward;
pub mod loss;
pub mod network;
pub mod params;

pub use backward::{AdjointStats, Gradients};
pub use batch::{first_spike_batch, loss_batch, BatchResult, Objective, ReadoutGrads};
pub use error::{Error, Result};
pub use forward::{ForwardStats, LayerTrace, Trace};
pub use loss::{
    BatchCounts, FirstSpikeCe, LocalCounts, LossOutput, RateTargets, ReadoutIntegral,
    ReadoutOutput, TimeWeight,
};
pub use network::{sort_spikes, Network, Spike};
pub use params::{Lif, NeuronParams, SolverConfig};

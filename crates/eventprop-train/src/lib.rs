//! # eventprop-train
//!
//! Training spiking networks with EventProp gradients from [`eventprop_core`]:
//!
//! * [`network`]: EventProp hidden layers (synapse + LIF, any number stacked, seed or
//!   corrected adjoint discretization) and an output layer behind a plain synapse — the
//!   leaky-integrator readout of [`readout`] or spiking LIF neurons;
//! * [`loss`]: max-over-time cross-entropy with the seed's readout regulariser,
//!   first-spike-time cross-entropy, a hidden firing-rate regulariser;
//! * [`optim`]: Adam and a step learning-rate schedule;
//! * [`yinyang`]: the Yin-Yang data set and its spike-time encoding;
//! * [`train`]: the training loop with checkpoint/resume; [`metrics`], [`plot`],
//!   [`checkpoint`]: its outputs.
//!
//! ## The chain
//!
//! Hidden layer `k`: `y_k = z_{k-1} W_k^T`, `z_k = LIF(y_k)` (the core's forward). Readout:
//! `y = z_L W_out^T`, `i[t+1] = i[t](1 - dt/tau_syn) + y[t]`,
//! `v[t+1] = v[t] + dt/tau_mem (leak - v[t] + i[t+1])`, score `= max_t v[t]`,
//! `L = CE(softmax(score), label) + reg mean(score²)`.
//! Backward: `dL/dy` is the exact adjoint of the readout recursion, `dL/dW_out = Σ dL/dy ⊗ z_L`,
//! the last hidden layer receives `grad_spikes = dL/dy W_out`; a hidden LIF backward returns
//! `g = [tau_syn lambda_i, lambda_v - lambda_i]`, `dL/dW_k = Σ g0 ⊗ z_{k-1}` and the layer
//! below receives `g1 W_k` (SPEC §3).
//!
//! ## Example
//!
//! ```
//! use eventprop_train::train::{TrainConfig, Trainer};
//! let config = TrainConfig { train_size: 100, val_size: 50, test_size: 50, epochs: 1, ..Default::default() };
//! let mut trainer = Trainer::new(config)?;
//! let m = trainer.run_epoch(&mut |_| {})?;
//! assert!(m.train_loss.is_finite() && m.test_acc.is_some());
//! # Ok::<(), eventprop_train::Error>(())
//! ```
#![deny(missing_docs)]
#![warn(rustdoc::broken_intra_doc_links)]

pub mod checkpoint;
pub mod error;
pub mod fsio;
pub mod metrics;
pub mod optim;
pub mod plot;
pub mod yinyang;

pub use error::{Error, Result};
pub mod loss;
pub mod network;
pub mod readout;
pub mod train;

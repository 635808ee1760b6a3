//! # eventprop-train
//!
//! Training spiking networks with EventProp gradients from [`eventprop_core`]: the
//! Yin-Yang data set and its spike encoding ([`yinyang`]), Adam and a step schedule
//! ([`optim`]), per-epoch metrics files ([`metrics`]), loss/accuracy plots ([`plot`]) and
//! safetensors checkpoints ([`checkpoint`]).
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

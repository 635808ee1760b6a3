//! # eventprop-train
//!
//! Training spiking networks with EventProp gradients, on any engine:
//!
//! * [`model`]: the network description shared by the engines (sizes, [`Lif`] parameters,
//!   the output layer, weight initialisation);
//! * [`engine`]: the [`Engine`] trait and its implementations — the time-stepped seed
//!   function ([`eventprop_core`], with [`network`] and [`readout`]) and the exact event
//!   engine ([`eventprop_exact`]);
//! * [`config`]: one configuration (TOML keys = CLI flags) with an `engine` key and a
//!   preset per engine;
//! * [`trainer`]: the one training loop (shuffling, Adam + step schedule, evaluation,
//!   checkpoints, resume, best-validation checkpoint, metrics, plot);
//! * [`data`]: samples as input spike events; [`yinyang`]: the Yin-Yang data set and its
//!   spike-time encoding; [`files`]: feature and event data files (`.npz`, CSV);
//! * [`loss`]: max-over-time cross-entropy, first-spike-time cross-entropy (on a time
//!   grid; the loss itself is shared with the exact engine), a firing-rate regulariser;
//! * [`chip`]: hardware in the loop — the [`chip::Chip`] interface, recordings and their
//!   mapping onto the time grid (`hw_data`), the ideal and the mock chip, calibration;
//! * [`optim`], [`metrics`], [`plot`], [`checkpoint`], [`fsio`]: the trainer's parts.
//!
//! ## Example
//!
//! ```
//! use eventprop_train::{config::TrainConfig, engine::EngineKind, Trainer};
//! let config = TrainConfig { train_size: 100, val_size: 50, test_size: 50, epochs: 1, ..TrainConfig::default() };
//! let mut trainer = Trainer::new(config)?;
//! let m = trainer.run_epoch(&mut |_| {})?;
//! assert!(m.train_loss.is_finite() && m.test_acc.is_some());
//! // The same trainer on the exact engine:
//! let mut exact = TrainConfig { train_size: 64, val_size: 32, test_size: 32, epochs: 1, ..TrainConfig::preset(EngineKind::Exact) };
//! exact.network.hidden = vec![30];
//! let m = Trainer::new(exact)?.run_epoch(&mut |_| {})?;
//! assert!(m.train_loss.is_finite());
//! # Ok::<(), eventprop_train::Error>(())
//! ```
#![deny(missing_docs)]
#![warn(rustdoc::broken_intra_doc_links)]

pub mod checkpoint;
pub mod collective;
pub mod config;
pub mod engine;
pub mod error;
#[cfg(feature = "figures")]
pub mod figures;
pub mod init;
pub mod init_settings;
pub mod loss;
pub mod metrics;
pub mod nir;
pub mod optim;
#[cfg(feature = "figures")]
pub mod plot;
pub mod trainer;

pub use eventprop_chip as chip;
pub use eventprop_core::spec as model;
pub use eventprop_core::stepped::{layer as stepped_layer, network, readout};
/// Samples as input spike events (the data crate's `sample` module).
pub use eventprop_data::sample as data;
pub use eventprop_data::{events, files, fsio, npy, shd, timing, yinyang};

pub use config::TrainConfig;
pub use engine::{Engine, EngineKind};
pub use error::{Error, Result};
pub use eventprop_core::Lif;
pub use trainer::Trainer;

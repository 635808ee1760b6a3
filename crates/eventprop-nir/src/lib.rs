//! # eventprop-nir
//!
//! Export and import of eventprop networks as [NIR](https://neuroir.org) graphs (the
//! Neuromorphic Intermediate Representation: HDF5 files read and written by the Python
//! `nir` package 1.0.x, and through it by norse, snnTorch, Rockpool, Sinabs, Lava, …).
//!
//! * [`graph`]: the graph in memory and its file layout ([`Graph::read`],
//!   [`Graph::write`]);
//! * [`convert`]: a trained network to a graph ([`to_graph`]) and back ([`to_trainer`]),
//!   with the units and scaling conventions in its docs.
//!
//! ## Example
//!
//! ```
//! use eventprop_train::{TrainConfig, Trainer};
//! let config = TrainConfig { train_size: 10, val_size: 0, test_size: 10, ..TrainConfig::default() };
//! let trainer = Trainer::new(config)?;
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("model.nir");
//! eventprop_nir::save(&trainer, &path)?;
//! let back = eventprop_nir::load(&path)?;
//! assert_eq!(back.weights, trainer.weights);
//! // A graph this project cannot run is refused with the node's name:
//! let mut g = eventprop_nir::Graph::read(&path)?;
//! g.nodes.insert("lif0".into(), eventprop_nir::graph::Node::Other("Conv2d".into()));
//! let err = eventprop_nir::to_trainer(&g).unwrap_err();
//! assert!(err.to_string().starts_with("node `lif0` (Conv2d): expected a CubaLIF hidden layer"));
//! # Ok::<(), eventprop_nir::Error>(())
//! ```
#![deny(missing_docs)]
#![warn(rustdoc::broken_intra_doc_links)]

pub mod convert;
pub mod error;
pub mod graph;

use std::path::Path;

pub use convert::{to_graph, to_trainer};
pub use error::{Error, Result};
use eventprop_train::Trainer;
pub use graph::Graph;

/// Writes the network of `trainer` to `path` as a NIR file (atomically).
///
/// # Errors
/// [`Error::Unsupported`] for a network with trained recurrent weights, delays, time
/// constants or thresholds (`[learn]`; not exported yet), [`Error::Io`] for the file.
pub fn save(trainer: &Trainer, path: &Path) -> Result<()> {
    let learn = trainer.engine.spec().learn;
    if learn.any() {
        return Err(Error::Unsupported {
            node: "graph".into(),
            kind: "export".into(),
            reason: format!(
                "expected a feed-forward network with shared neuron parameters, got [learn] \
                 {learn:?} (recurrent weights, delays and per-neuron parameters are not \
                 exported yet)"
            ),
        });
    }
    to_graph(trainer).write(path)
}

/// Reads a NIR file into a network ready for evaluation ([`to_trainer`]).
///
/// # Errors
/// As [`Graph::read`] and [`to_trainer`].
pub fn load(path: &Path) -> Result<Trainer> {
    to_trainer(&Graph::read(path)?)
}

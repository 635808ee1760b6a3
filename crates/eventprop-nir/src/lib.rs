//! # eventprop-nir
//!
//! Export and import of eventprop networks as [NIR](https://neuroir.org) graphs (the
//! Neuromorphic Intermediate Representation: HDF5 files read and written by the Python
//! `nir` package 1.0.x, and through it by norse, snnTorch, Rockpool, Sinabs, Lava, …).
//!
//! * [`graph`]: the graph in memory and its file layout ([`Graph::read`],
//!   [`Graph::write`]);
//! * [`convert`]: a network description and its tensors (weights, recurrent weights,
//!   per-neuron parameters) to a graph ([`network_graph`]) and back
//!   ([`network_from_graph`]), with the units and scaling conventions in its docs.
//!
//! The trainer's side (a run's metadata and config in the graph, evaluating an imported
//! graph) is `eventprop-train`'s `nir` module.
//!
//! ## Example
//!
//! ```
//! use eventprop_core::spec::{NetworkSpec, Readout};
//! use eventprop_core::Lif;
//! use ndarray::Array2;
//! let spec = NetworkSpec {
//!     n_in: 2, hidden: vec![3], n_out: 1, lif: Lif::default(),
//!     readout: Readout::Integrator { tau_syn: 5e-3, tau_mem: 20e-3 }, learn: Default::default(),
//! };
//! let weights = vec![Array2::from_elem((3, 2), 0.5), Array2::from_elem((1, 3), 0.1)];
//! let g = eventprop_nir::network_graph(&spec, &weights)?;
//! let back = eventprop_nir::network_from_graph(&g, None)?;
//! assert_eq!(back.tensors, weights);
//! assert_eq!(back.spec, spec);
//! # Ok::<(), eventprop_nir::Error>(())
//! ```
#![deny(missing_docs)]
#![warn(rustdoc::broken_intra_doc_links)]

pub mod convert;
pub mod error;
pub mod graph;

pub use convert::{network_from_graph, network_graph, NirNetwork};
pub use error::{Error, Result};
pub use graph::Graph;

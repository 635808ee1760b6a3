//! The time-stepped simulator: a peer of the exact engine (`eventprop-exact`) on a time
//! grid, built from this crate's kernels.
//!
//! * [`network`]: a multi-layer network of the seed function's LIF layers with a
//!   leaky-integrator or spiking output layer, forward and EventProp backward (also from
//!   hardware data);
//! * [`readout`]: the leaky-integrator output layer;
//! * [`layer`]: one layer with recurrent weights, per-neuron parameters and synaptic
//!   delays, with the gradients of all of them.

pub mod layer;
pub mod network;
pub mod readout;

pub use layer::{LayerGrads, LayerRun, SteppedLayer};
pub use network::SteppedNetwork;
pub use readout::LeakyIntegrator;

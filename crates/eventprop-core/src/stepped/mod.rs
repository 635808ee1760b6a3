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

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::Discretization;

/// The time-stepped engines' own settings (the `[stepped]` section of a training config;
/// read by the stepped engine and by hardware in the loop, whose adjoint is stepped).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SteppedSettings {
    /// Adjoint discretization of the LIF layers.
    pub discretization: Discretization,
    /// Weight of the hidden firing-rate regulariser `rate_reg · mean(count²)` (0 = off).
    pub rate_reg: f64,
}

impl Default for SteppedSettings {
    /// The corrected adjoint, no rate regulariser.
    fn default() -> Self {
        Self {
            discretization: Discretization::Corrected,
            rate_reg: 0.0,
        }
    }
}

impl SteppedSettings {
    /// Checks every value.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the key (`stepped.rate_reg`).
    pub fn validate(&self) -> Result<()> {
        if !(self.rate_reg.is_finite() && self.rate_reg >= 0.0) {
            return Err(Error::invalid(
                "stepped.rate_reg",
                "finite and >= 0",
                self.rate_reg,
            ));
        }
        Ok(())
    }
}
pub use network::SteppedNetwork;
pub use readout::LeakyIntegrator;

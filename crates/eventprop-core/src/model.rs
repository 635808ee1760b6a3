//! The LIF neuron's parameters as one scalar set per layer: the vocabulary shared by every
//! engine (the time-stepped function of this crate, the exact event engine, the trainer's
//! network description).
//!
//! [`crate::LifParams`] is the same five numbers in the kernels' form (generic float, each a
//! scalar or one value per neuron); [`Lif::params`] converts.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::params::LifParams;
use crate::real::Real;

/// Parameters of a layer of current-based LIF neurons (SI units; volts arbitrary), in the
/// seed function's argument order.
///
/// `Default` is the EventProp paper's LIF (Wunderlich & Pehle 2021, Yin-Yang):
/// `leak = reset = 0`, `threshold = 1`, `tau_syn = 5 ms`, `tau_mem = 20 ms`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lif {
    /// Leak (resting) potential; the membrane starts here.
    pub leak: f64,
    /// Reset potential after a spike.
    pub reset: f64,
    /// Firing threshold.
    pub threshold: f64,
    /// Synaptic time constant in seconds (> 0).
    pub tau_syn: f64,
    /// Membrane time constant in seconds (> 0).
    pub tau_mem: f64,
}

impl Default for Lif {
    fn default() -> Self {
        Self {
            leak: 0.0,
            reset: 0.0,
            threshold: 1.0,
            tau_syn: 5e-3,
            tau_mem: 20e-3,
        }
    }
}

impl Lif {
    /// Checks that every value is finite and both time constants are `> 0` (what the
    /// time-stepped function needs; the exact engine adds `leak < threshold`, `reset <
    /// threshold`).
    ///
    /// # Errors
    /// [`Error::NonFinite`] / [`Error::NonPositive`] naming the field.
    ///
    /// ```
    /// use eventprop_core::Lif;
    /// let p = Lif { tau_mem: 0.0, ..Lif::default() };
    /// assert_eq!(p.validate().unwrap_err().to_string(), "tau_mem: expected a value > 0, got 0 at index 0");
    /// ```
    pub fn validate(&self) -> Result<()> {
        for (arg, v) in [
            ("leak", self.leak),
            ("reset", self.reset),
            ("threshold", self.threshold),
            ("tau_syn", self.tau_syn),
            ("tau_mem", self.tau_mem),
        ] {
            if !v.is_finite() {
                return Err(Error::NonFinite {
                    arg,
                    index: Vec::new(),
                    value: v,
                });
            }
        }
        for (arg, v) in [("tau_syn", self.tau_syn), ("tau_mem", self.tau_mem)] {
            if v <= 0.0 {
                return Err(Error::NonPositive {
                    arg,
                    index: 0,
                    value: v,
                });
            }
        }
        Ok(())
    }

    /// The kernels' form: every parameter a scalar of type `F`.
    pub fn params<F: Real>(&self) -> LifParams<F> {
        LifParams::scalar(
            F::of(self.leak),
            F::of(self.reset),
            F::of(self.threshold),
            F::of(self.tau_syn),
            F::of(self.tau_mem),
        )
    }
}

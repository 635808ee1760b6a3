//! Neuron parameters of one layer and the settings of the event-based solver.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Parameters of a layer of current-based LIF neurons (SI units; volts arbitrary).
///
/// The defaults are the EventProp paper's Yin-Yang setup (Wunderlich & Pehle 2021):
/// `leak = reset = 0`, `threshold = 1`, `tau_syn = 5 ms`, `tau_mem = 20 ms`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NeuronParams {
    /// Leak (resting) potential; the membrane starts here at `t = 0`.
    pub leak: f64,
    /// Reset potential after a spike (must be below `threshold`).
    pub reset: f64,
    /// Firing threshold (must be above `leak`).
    pub threshold: f64,
    /// Synaptic time constant in seconds (> 0).
    pub tau_syn: f64,
    /// Membrane time constant in seconds (> 0); may equal `tau_syn`.
    pub tau_mem: f64,
}

impl Default for NeuronParams {
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

impl NeuronParams {
    /// Checks the valid ranges.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a non-finite value, a time constant `<= 0`,
    /// `threshold <= leak` (the resting neuron would sit above threshold) or
    /// `reset >= threshold` (the neuron would fire again at once, forever).
    ///
    /// ```
    /// use eventprop_exact::NeuronParams;
    /// let p = NeuronParams { reset: 2.0, ..Default::default() };
    /// assert_eq!(p.validate().unwrap_err().to_string(), "reset: expected a value < threshold = 1, got 2");
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
                return Err(Error::Invalid {
                    arg,
                    expected: "a finite value".into(),
                    actual: v.to_string(),
                });
            }
        }
        for (arg, v) in [("tau_syn", self.tau_syn), ("tau_mem", self.tau_mem)] {
            if v <= 0.0 {
                return Err(Error::Invalid {
                    arg,
                    expected: "a value > 0".into(),
                    actual: v.to_string(),
                });
            }
        }
        if self.threshold <= self.leak {
            return Err(Error::Invalid {
                arg: "threshold",
                expected: format!("a value > leak = {}", self.leak),
                actual: self.threshold.to_string(),
            });
        }
        if self.reset >= self.threshold {
            return Err(Error::Invalid {
                arg: "reset",
                expected: format!("a value < threshold = {}", self.threshold),
                actual: self.reset.to_string(),
            });
        }
        Ok(())
    }

    /// The rates and leak-relative levels the kernels use.
    pub fn kinetics(&self) -> crate::dynamics::Kinetics {
        crate::dynamics::Kinetics {
            a: 1.0 / self.tau_mem,
            b: 1.0 / self.tau_syn,
            theta: self.threshold - self.leak,
            reset: self.reset - self.leak,
        }
    }
}

/// Settings of the event-based solver (forward and adjoint).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SolverConfig {
    /// Cap on the spikes of one neuron in one sample (default 1000). Exceeding it is an
    /// [`Error::TooManySpikes`], never a silent drop; it bounds memory and time when
    /// weights make a neuron fire densely.
    pub max_spikes_per_neuron: usize,
    /// Floor on `D- = leak - threshold + I(t_k)` (the membrane slope times `tau_mem` at a
    /// crossing) used by the adjoint jump, in units of `threshold - leak` (default 1e-9).
    /// Spikes with a smaller `D-` are grazing crossings whose exact gradient diverges; their
    /// `D-` is raised to the floor and counted in [`crate::AdjointStats::grazing_clamped`].
    pub grazing_floor: f64,
}

impl Default for SolverConfig {
    fn default() -> Self {
        Self {
            max_spikes_per_neuron: 1000,
            grazing_floor: 1e-9,
        }
    }
}

impl SolverConfig {
    /// Checks the valid ranges.
    ///
    /// # Errors
    /// [`Error::Invalid`] for `max_spikes_per_neuron = 0` or a `grazing_floor` that is not
    /// finite and `> 0`.
    pub fn validate(&self) -> Result<()> {
        if self.max_spikes_per_neuron == 0 {
            return Err(Error::Invalid {
                arg: "max_spikes_per_neuron",
                expected: "a value >= 1".into(),
                actual: "0".into(),
            });
        }
        if !(self.grazing_floor.is_finite() && self.grazing_floor > 0.0) {
            return Err(Error::Invalid {
                arg: "grazing_floor",
                expected: "a finite value > 0".into(),
                actual: self.grazing_floor.to_string(),
            });
        }
        Ok(())
    }
}

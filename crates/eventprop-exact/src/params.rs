//! Checks of a layer's LIF parameters ([`Lif`], shared with the other engines) for the
//! event engine, and the settings of the event-based solver.

use serde::{Deserialize, Serialize};

pub use eventprop_core::Lif;

use crate::error::{Error, Result};

/// Checks the parameters of a layer for the event engine.
///
/// # Errors
/// [`Error::Invalid`] for a non-finite value, a time constant `<= 0`,
/// `threshold <= leak` (the resting neuron would sit above threshold) or
/// `reset >= threshold` (the neuron would fire again at once, forever).
///
/// ```
/// use eventprop_exact::{params::validate_lif, Lif};
/// let p = Lif { reset: 2.0, ..Default::default() };
/// assert_eq!(validate_lif(&p).unwrap_err().to_string(), "reset: expected a value < threshold = 1, got 2");
/// ```
pub fn validate_lif(p: &Lif) -> Result<()> {
    for (arg, v) in [
        ("leak", p.leak),
        ("reset", p.reset),
        ("threshold", p.threshold),
        ("tau_syn", p.tau_syn),
        ("tau_mem", p.tau_mem),
    ] {
        if !v.is_finite() {
            return Err(Error::Invalid {
                arg,
                expected: "a finite value".into(),
                actual: v.to_string(),
            });
        }
    }
    for (arg, v) in [("tau_syn", p.tau_syn), ("tau_mem", p.tau_mem)] {
        if v <= 0.0 {
            return Err(Error::Invalid {
                arg,
                expected: "a value > 0".into(),
                actual: v.to_string(),
            });
        }
    }
    if p.threshold <= p.leak {
        return Err(Error::Invalid {
            arg: "threshold",
            expected: format!("a value > leak = {}", p.leak),
            actual: p.threshold.to_string(),
        });
    }
    if p.reset >= p.threshold {
        return Err(Error::Invalid {
            arg: "reset",
            expected: format!("a value < threshold = {}", p.threshold),
            actual: p.reset.to_string(),
        });
    }
    Ok(())
}

/// The rates and leak-relative levels the kernels use.
pub fn kinetics(p: &Lif) -> crate::dynamics::Kinetics {
    crate::dynamics::Kinetics {
        a: 1.0 / p.tau_mem,
        b: 1.0 / p.tau_syn,
        theta: p.threshold - p.leak,
        reset: p.reset - p.leak,
    }
}

/// Settings of the event-based solver (forward and adjoint).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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

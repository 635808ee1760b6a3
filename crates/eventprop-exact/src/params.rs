//! Checks of a layer's LIF parameters ([`Lif`], shared with the other engines) for the
//! event engine, and the settings of the event-based solver.

use serde::{Deserialize, Serialize};

use eventprop_core::model::NeuronViolation;
pub use eventprop_core::{Lif, NeuronParams};

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
    match p.violation() {
        None => Ok(()),
        Some(v) => Err(Error::Invalid {
            arg: v.arg,
            expected: v.expected,
            actual: v.actual,
        }),
    }
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
    /// Whether the adjoint also computes the gradients of the per-neuron parameters
    /// (`tau_mem`, `tau_syn`, `threshold`, `leak`, `reset`; default off). They need the
    /// forward state between events, which the adjoint recomputes neuron by neuron
    /// (about twice the adjoint's time). A request, not a setting: never serialised.
    #[serde(skip)]
    pub parameter_gradients: bool,
    /// Stop simulating each output neuron at its first spike (default off), for losses of
    /// the first output spike times ([`crate::FirstSpikeCe`], [`crate::batch`]): under such
    /// a loss the adjoint of an output neuron is exactly zero after its first spike (no loss
    /// term and no downstream layer there), so the gradients are bit-identical with and
    /// without it, while the later output spikes are not computed (on the Yin-Yang preset
    /// they are ~70 % of all crossings). The trace then holds at most one spike per output
    /// neuron. Ignored for a recurrent output layer, whose later spikes reach the other
    /// output neurons. A request, not a setting: never serialised.
    #[serde(skip)]
    pub first_output_spike_only: bool,
}

impl Default for SolverConfig {
    fn default() -> Self {
        Self {
            max_spikes_per_neuron: 1000,
            grazing_floor: 1e-9,
            parameter_gradients: false,
            first_output_spike_only: false,
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

/// Checks per-neuron parameters `p` of layer `layer` (0 = the first layer after the input) with
/// `n` neurons: every field has `n` values and each neuron is valid as
/// [`validate_lif`] states.
///
/// # Errors
/// [`Error::Shape`] for a field of the wrong length, [`Error::Range`] naming the field
/// and neuron (`threshold1[3]`) for an invalid value.
pub fn validate_neurons(p: &NeuronParams, layer: usize, n: usize) -> Result<()> {
    match p.violation(layer, n) {
        None => Ok(()),
        Some(NeuronViolation::Length(arg, expected, actual)) => Err(Error::Shape {
            arg,
            expected,
            actual,
        }),
        Some(NeuronViolation::Value(arg, v)) => Err(Error::Range {
            arg,
            expected: v.expected,
            actual: v.actual,
        }),
    }
}

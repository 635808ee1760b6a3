//! The `[init]` table of the config: how the initial weight scales are chosen, the data
//! rule's targets and the chosen values ([`crate::init`] runs the calibration).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How the initial weight scales are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InitRule {
    /// The preset's (or the given) `hidden_init_*` and `readout_init_*` values.
    #[default]
    Fixed,
    /// Calibrated on the training data before the first epoch ([`crate::init`]).
    Data,
}

impl fmt::Display for InitRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Fixed => "fixed",
            Self::Data => "data",
        })
    }
}

impl std::str::FromStr for InitRule {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "fixed" => Ok(Self::Fixed),
            "data" => Ok(Self::Data),
            _ => Err(format!("expected `data` or `fixed`, got `{s}`")),
        }
    }
}

/// The `[init]` table: the rule, its targets, and the chosen (or given) values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitSettings {
    /// `fixed` (Yin-Yang presets) or `data` (event presets).
    pub rule: InitRule,
    /// Target mean firing rate of every hidden layer at the start (Hz, > 0).
    pub target_rate: f64,
    /// Spiking outputs: the largest fraction of calibration samples with a silent output
    /// neuron, in `[0, 1)`.
    pub silent_outputs: f64,
    /// Integrator outputs: the spread (std across classes) of the initial scores (> 0).
    pub score_spread: f64,
    /// Training batches (`batch_size` samples each) of the calibration set (>= 1).
    pub batches: usize,
    /// The std of each hidden layer (chosen by the calibration, or given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden_std: Option<Vec<f64>>,
    /// The output weights' mean (chosen, or given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readout_mean: Option<f64>,
    /// The output weights' std (chosen, or given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readout_std: Option<f64>,
}

impl Default for InitSettings {
    /// The fixed rule, with the data rule's targets (tuned on the validation splits of a
    /// latency-coded, a noisy timing and an SHD-shaped task; docs/measurements.md).
    fn default() -> Self {
        Self {
            rule: InitRule::Fixed,
            target_rate: 40.0,
            silent_outputs: 0.1,
            score_spread: 0.3,
            batches: 3,
            hidden_std: None,
            readout_mean: None,
            readout_std: None,
        }
    }
}

impl InitSettings {
    /// Checks the targets and the given values against `n_hidden` hidden layers.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the key.
    pub fn validate(&self, n_hidden: usize) -> Result<()> {
        if !(self.target_rate.is_finite() && self.target_rate > 0.0) {
            return Err(Error::invalid(
                "init.target_rate",
                "finite and > 0",
                self.target_rate,
            ));
        }
        if !(0.0..1.0).contains(&self.silent_outputs) {
            return Err(Error::invalid(
                "init.silent_outputs",
                "in [0, 1)",
                self.silent_outputs,
            ));
        }
        if !(self.score_spread.is_finite() && self.score_spread > 0.0) {
            return Err(Error::invalid(
                "init.score_spread",
                "finite and > 0",
                self.score_spread,
            ));
        }
        if self.batches == 0 {
            return Err(Error::invalid("init.batches", ">= 1", 0));
        }
        if let Some(h) = &self.hidden_std {
            if h.len() != n_hidden {
                return Err(Error::invalid(
                    "init.hidden_std",
                    format!("{n_hidden} values (one per hidden layer)"),
                    h.len(),
                ));
            }
            if let Some(v) = h.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
                return Err(Error::invalid("init.hidden_std", "finite and >= 0", v));
            }
        }
        if let Some(v) = self.readout_std.filter(|v| !(v.is_finite() && *v >= 0.0)) {
            return Err(Error::invalid("init.readout_std", "finite and >= 0", v));
        }
        if let Some(v) = self.readout_mean.filter(|v| !v.is_finite()) {
            return Err(Error::invalid("init.readout_mean", "finite", v));
        }
        Ok(())
    }
}

//! Losses on output spike times, with their derivatives `∂l/∂t_k` for the adjoint.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::network::Spike;

/// Value, derivatives and prediction of a loss on one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct LossOutput {
    /// Loss value.
    pub value: f64,
    /// `∂l/∂t_k` for every output spike (order of the output spike list).
    pub dl_dt: Vec<f64>,
    /// Predicted class (the earliest-firing output neuron), `None` when no output neuron
    /// fired (counted as wrong).
    pub prediction: Option<usize>,
}

/// Sum of the times of all output spikes, `L = Σ_k t_k` (for gradient checks):
/// `∂L/∂t_k = 1`.
pub fn spike_time_sum(output: &[Spike]) -> LossOutput {
    LossOutput {
        value: output.iter().map(|s| s.time).sum(),
        dl_dt: vec![1.0; output.len()],
        prediction: first_spike_prediction(&first_spike_times(output, usize::MAX)),
    }
}

/// The earliest spike time of each of `n` output neurons (`None` for silent neurons) and
/// its index in the output list (spikes of neurons `>= n` are ignored).
pub fn first_spikes(output: &[Spike], n: usize) -> Vec<Option<(f64, usize)>> {
    let mut first = vec![None; n];
    for (k, s) in output.iter().enumerate() {
        let Some(slot) = first.get_mut(s.neuron as usize) else {
            continue;
        };
        if slot.is_none() {
            *slot = Some((s.time, k));
        }
    }
    first
}

fn first_spike_times(output: &[Spike], n: usize) -> Vec<Option<f64>> {
    let n = n.min(
        output
            .iter()
            .map(|s| s.neuron as usize + 1)
            .max()
            .unwrap_or(0),
    );
    first_spikes(output, n)
        .into_iter()
        .map(|f| f.map(|p| p.0))
        .collect()
}

/// Earliest-firing neuron (lowest index on ties); `None` when all are silent.
pub fn first_spike_prediction(first: &[Option<f64>]) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (m, t) in first.iter().enumerate() {
        if let Some(t) = *t {
            if best.is_none_or(|(_, bt)| t < bt) {
                best = Some((m, t));
            }
        }
    }
    best.map(|b| b.0)
}

/// First-spike-time cross-entropy of the EventProp paper's Yin-Yang task:
///
/// ```text
/// L = -log softmax(-t_first / tau0)[label] + alpha (exp(t_label / tau1) - 1)
/// ∂L/∂t_m = (δ_{m,label} - p_m) / tau0 + δ_{m,label} alpha exp(t_label/tau1) / tau1
/// ```
///
/// where `t_first[m]` is the first spike of output neuron `m`. Missing-spike policy: a
/// silent neuron counts with `t_first = t_max` (a constant: it gets no gradient, the only
/// choice that keeps the gradient exact); only first spikes get a non-zero `∂L/∂t`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FirstSpikeCe {
    /// Softmax temperature `tau0` in seconds (> 0).
    pub tau0: f64,
    /// Regulariser time constant `tau1` in seconds (> 0).
    pub tau1: f64,
    /// Regulariser weight `alpha` (>= 0).
    pub alpha: f64,
}

impl Default for FirstSpikeCe {
    /// `tau0 = 0.5 ms`, `tau1 = 6.4 ms`, `alpha = 3e-3` (the paper's Yin-Yang values).
    fn default() -> Self {
        Self {
            tau0: 0.5e-3,
            tau1: 6.4e-3,
            alpha: 3e-3,
        }
    }
}

impl FirstSpikeCe {
    /// Loss, derivatives and prediction for one sample with `n_classes` output neurons.
    ///
    /// # Errors
    /// [`Error::Label`] when `label >= n_classes`; [`Error::Invalid`] for bad settings.
    pub fn evaluate(
        &self,
        output: &[Spike],
        n_classes: usize,
        label: usize,
        t_max: f64,
    ) -> Result<LossOutput> {
        if label >= n_classes {
            return Err(Error::Label { label, n_classes });
        }
        for (arg, v) in [("tau0", self.tau0), ("tau1", self.tau1)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::Invalid {
                    arg,
                    expected: "a finite value > 0".into(),
                    actual: v.to_string(),
                });
            }
        }
        if !(self.alpha.is_finite() && self.alpha >= 0.0) {
            return Err(Error::Invalid {
                arg: "alpha",
                expected: "a finite value >= 0".into(),
                actual: self.alpha.to_string(),
            });
        }
        let first = first_spikes(output, n_classes);
        let t: Vec<f64> = first.iter().map(|f| f.map_or(t_max, |p| p.0)).collect();
        // log-sum-exp of -t/tau0, shifted by the smallest time for stability.
        let t_min = t.iter().copied().fold(f64::INFINITY, f64::min);
        let e: Vec<f64> = t
            .iter()
            .map(|&tm| (-(tm - t_min) / self.tau0).exp())
            .collect();
        let z: f64 = e.iter().sum();
        let ce = (t[label] - t_min) / self.tau0 + z.ln();
        let reg_exp = (t[label] / self.tau1).exp();
        let value = ce + self.alpha * (reg_exp - 1.0);
        let mut dl_dt = vec![0.0; output.len()];
        for (m, f) in first.iter().enumerate() {
            if let Some((_, k)) = *f {
                let delta = if m == label { 1.0 } else { 0.0 };
                let mut g = (delta - e[m] / z) / self.tau0;
                if m == label {
                    g += self.alpha * reg_exp / self.tau1;
                }
                dl_dt[k] = g;
            }
        }
        let times: Vec<Option<f64>> = first.iter().map(|f| f.map(|p| p.0)).collect();
        Ok(LossOutput {
            value,
            dl_dt,
            prediction: first_spike_prediction(&times),
        })
    }
}

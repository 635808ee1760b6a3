//! Losses on output spike times, with their derivatives `∂l/∂t_k` for the adjoint.

use serde::{Deserialize, Serialize};

use crate::backward::Gradients;
use crate::dynamics::{chi, phi};
use crate::error::{Error, Result};
use crate::forward::{arrivals, membrane_max, Trace};
use crate::network::{Network, Spike};
use crate::params::SolverConfig;

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

/// The first-spike-time cross-entropy on the first spike times `t[m]` of the `K` output
/// neurons (silent neurons enter with whatever time the caller substitutes), and
/// `∂L/∂t[m]`:
///
/// ```text
/// L = -log softmax(-t / tau0)[label] + alpha (exp(t[label] / tau1) - 1)
/// ∂L/∂t[m] = (δ_{m,label} - p_m) / tau0 + δ_{m,label} alpha exp(t[label]/tau1) / tau1
/// ```
///
/// The softmax is shifted by the smallest time. This is the one implementation of the
/// loss: [`FirstSpikeCe`] (exact spike times) and the time-stepped trainer (first spike
/// steps times `dt`) both call it. Settings are not checked here (see
/// [`FirstSpikeCe::evaluate`]).
///
/// # Panics
/// If `label >= t.len()`.
pub fn first_spike_ce(
    t: &[f64],
    label: usize,
    tau0: f64,
    tau1: f64,
    alpha: f64,
) -> (f64, Vec<f64>) {
    // log-sum-exp of -t/tau0, shifted by the smallest time for stability.
    let t_min = t.iter().copied().fold(f64::INFINITY, f64::min);
    let e: Vec<f64> = t.iter().map(|&tm| (-(tm - t_min) / tau0).exp()).collect();
    let z: f64 = e.iter().sum();
    let ce = (t[label] - t_min) / tau0 + z.ln();
    let reg_exp = (t[label] / tau1).exp();
    let value = ce + alpha * (reg_exp - 1.0);
    let grad = e
        .iter()
        .enumerate()
        .map(|(m, &em)| {
            let delta = if m == label { 1.0 } else { 0.0 };
            let mut g = (delta - em / z) / tau0;
            if m == label {
                g += alpha * reg_exp / tau1;
            }
            g
        })
        .collect();
    (value, grad)
}

/// First-spike-time cross-entropy of the EventProp paper's Yin-Yang task:
///
/// ```text
/// L = -log softmax(-t_first / tau0)[label] + alpha (exp(t_label / tau1) - 1)
/// ∂L/∂t_m = (δ_{m,label} - p_m) / tau0 + δ_{m,label} alpha exp(t_label/tau1) / tau1
/// ```
///
/// where `t_first[m]` is the first spike of output neuron `m`. Missing-spike policy: a
/// silent neuron counts with `t_first = t_max` (a constant: it gets no gradient through the
/// cross-entropy); only first spikes get a non-zero `∂L/∂t`.
///
/// Silent label neuron ([`FirstSpikeCe::sample`] only): the cross-entropy cannot make a
/// silent neuron fire (its gradient w.r.t. that neuron's weights is exactly 0), and training
/// then drifts towards silent outputs. When the label neuron is silent, the term
/// `gamma (theta - max_t u_label(t))` (`theta = threshold - leak`, `u = V - leak`) is added;
/// for a neuron without resets `max_t u = Σ_i W[label, j_i] K(t* - t_i)` with the PSP kernel
/// `K(s) = phi(a, b, s) / tau_mem`, and its gradient (envelope theorem: `du/dt = 0` at an
/// interior maximum `t*`) is exact: `∂/∂W[label, j] = -gamma Σ_{i: j_i = j, t_i <= t*}
/// K(t* - t_i)`, `∂/∂t_i = gamma W[label, j_i] K'(t* - t_i)`. `gamma = 0` disables it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FirstSpikeCe {
    /// Softmax temperature `tau0` in seconds (> 0).
    pub tau0: f64,
    /// Regulariser time constant `tau1` in seconds (> 0).
    pub tau1: f64,
    /// Regulariser weight `alpha` (>= 0).
    pub alpha: f64,
    /// Weight `gamma` (>= 0) of the silent-label membrane term; `0` disables it.
    #[serde(default)]
    pub silent_label_gamma: f64,
}

impl Default for FirstSpikeCe {
    /// `tau0 = 0.5 ms`, `tau1 = 6.4 ms`, `alpha = 3e-3` (the paper's Yin-Yang values) and
    /// `silent_label_gamma = 1` (this crate's policy, see the type docs).
    fn default() -> Self {
        Self {
            tau0: 0.5e-3,
            tau1: 6.4e-3,
            alpha: 3e-3,
            silent_label_gamma: 1.0,
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
        let (value, grad) = first_spike_ce(&t, label, self.tau0, self.tau1, self.alpha);
        let mut dl_dt = vec![0.0; output.len()];
        for (f, g) in first.iter().zip(grad) {
            if let Some((_, k)) = *f {
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

impl FirstSpikeCe {
    /// Loss (cross-entropy plus, when the label neuron is silent, the membrane term) and
    /// its exact weight gradients for one simulated sample.
    ///
    /// # Errors
    /// As [`FirstSpikeCe::evaluate`] and [`Trace::backward_direct`].
    pub fn sample(
        &self,
        net: &Network,
        trace: &Trace,
        label: usize,
        cfg: &SolverConfig,
    ) -> Result<(LossOutput, Gradients)> {
        let n_layers = net.n_layers();
        let n_out = *net.sizes().last().expect("at least one layer");
        let mut out = self.evaluate(trace.output(), n_out, label, trace.t_max())?;
        let mut direct: Vec<Vec<f64>> = (1..=n_layers)
            .map(|k| vec![0.0; trace.spikes(k).len()])
            .collect();
        direct[n_layers - 1].clone_from(&out.dl_dt);
        let silent = !trace.output().iter().any(|s| s.neuron as usize == label);
        let mut term = None;
        if silent && self.silent_label_gamma > 0.0 {
            let t = membrane_term(net, trace, label, self.silent_label_gamma);
            out.value += t.value;
            for &(src, g) in &t.dl_dt {
                match src {
                    Source::Below { index, .. } if n_layers >= 2 => {
                        direct[n_layers - 2][index] += g
                    }
                    Source::Same { k, .. } => direct[n_layers - 1][k] += g,
                    Source::Below { .. } => {}
                }
            }
            term = Some(t);
        }
        let mut grads = trace.backward_direct(net, &direct, cfg)?;
        if let Some(t) = term {
            let top = n_layers - 1;
            for &(src, g) in &t.dl_dw {
                match src {
                    Source::Below { j, .. } => grads.weights[top][[label, j]] += g,
                    Source::Same { m, .. } => {
                        if let Some(r) = grads.recurrent[top].as_mut() {
                            r[[label, m]] += g;
                        }
                    }
                }
            }
            for &(src, g) in &t.dl_dt {
                if let Source::Below { index, j } = src {
                    if n_layers == 1 {
                        grads.input_times[trace.input_order[index]] += g;
                    }
                    if let Some(d) = grads.delays[top].as_mut() {
                        d[[label, j]] += g;
                    }
                }
            }
            if let Some(p) = grads.params.as_mut() {
                let p = &mut p[top];
                p.tau_mem[label] += t.dl_dtau_mem;
                p.tau_syn[label] += t.dl_dtau_syn;
                p.threshold[label] += self.silent_label_gamma;
                p.leak[label] -= self.silent_label_gamma;
            }
        }
        Ok((out, grads))
    }
}

/// Where an input of the membrane term comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Source {
    /// Spike `index` of the layer below, from neuron `j`.
    Below { index: usize, j: usize },
    /// Spike `k` of the output layer itself (recurrent), from neuron `m`.
    Same { k: usize, m: usize },
}

/// The silent-label membrane term `gamma (theta - max_t u(t))` of one neuron and its exact
/// derivatives w.r.t. the weights, arrival times and time constants of its inputs.
struct MembraneTerm {
    value: f64,
    /// `∂l/∂w` per input (summed by the caller into the weight matrices).
    dl_dw: Vec<(Source, f64)>,
    /// `∂l/∂t` per input arrival (= per presynaptic spike time, and per delay).
    dl_dt: Vec<(Source, f64)>,
    dl_dtau_mem: f64,
    dl_dtau_syn: f64,
}

/// `u(t*) = Σ_{t_i < t*} W_{j_i} K(t* - t_i)`, `K(s) = a phi(a, b, s)`,
/// `K'(s) = a (e^{-b s} - a phi(a, b, s))`. At an interior maximum `du/dt(t*) = 0`, so moving
/// `t*` costs nothing and `∂u/∂t_i = -W K'(t* - t_i)`. When the maximum sits on an input
/// spike `e` (a kink made by a negative weight), `t* = t_e` moves with it and
/// `∂u(t*)/∂t_e = u'(t_e⁻) = a (I(t_e⁻) - u(t*))`.
fn membrane_term(net: &Network, trace: &Trace, label: usize, gamma: f64) -> MembraneTerm {
    let top = net.n_layers() - 1;
    let kin = net.kinetics(top, label);
    let t_max = trace.t_max();
    let below = trace.spikes(top);
    let mut arr = Vec::new();
    arrivals(net, top, label, below, t_max, &mut arr);
    let mut inputs: Vec<(f64, f64, Source)> = arr
        .iter()
        .map(|a| {
            let index = a.index as usize;
            let j = below[index].neuron as usize;
            (a.time, a.weight, Source::Below { index, j })
        })
        .collect();
    if let Some(r) = net.recurrent(top) {
        for (k, s) in trace.output().iter().enumerate() {
            let m = s.neuron as usize;
            inputs.push((s.time, r[[label, m]], Source::Same { k, m }));
        }
        inputs.sort_by(|x, y| x.0.total_cmp(&y.0));
    }
    let m = membrane_max(&kin, inputs.iter().map(|x| (x.0, x.1)), t_max);
    let (a, b) = (kin.a, kin.b);
    let mut term = MembraneTerm {
        value: gamma * (kin.theta - m.u_max),
        dl_dw: Vec::new(),
        dl_dt: Vec::new(),
        dl_dtau_mem: 0.0,
        dl_dtau_syn: 0.0,
    };
    let (mut current_before, mut du_da, mut du_db) = (0.0, 0.0, 0.0);
    let mut kink = None;
    for &(time, w, src) in inputs.iter().take_while(|x| x.0 <= m.time) {
        if time == m.time && m.time < t_max {
            kink.get_or_insert(src);
            continue;
        }
        let lag = m.time - time;
        let ph = phi(a, b, lag);
        let eb = (-b * lag).exp();
        term.dl_dw.push((src, -gamma * a * ph));
        term.dl_dt.push((src, gamma * w * a * (eb - a * ph)));
        current_before += w * eb;
        du_da += w * (ph - a * chi(a, b, lag));
        du_db -= w * a * chi(b, a, lag);
    }
    if let Some(src) = kink {
        // L = gamma (theta - u(t_e)): dL/dt_e = -gamma u'(t_e⁻).
        term.dl_dt
            .push((src, -gamma * a * (current_before - m.u_max)));
    }
    // L = gamma (theta - u*), u* = Σ w a phi(a, b, lag): the maximum's time does not move
    // to first order (an interior maximum, or pinned to an input), so only the kernel's
    // rate derivatives count; tau = 1/rate.
    term.dl_dtau_mem = gamma * a * a * du_da;
    term.dl_dtau_syn = gamma * b * b * du_db;
    term
}

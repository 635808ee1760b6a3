//! Losses on output spike times, with their derivatives `∂l/∂t_k` for the adjoint; the
//! time-integral readout losses of loss shaping ([`ReadoutIntegral`]) and the per-neuron
//! spike-count targets ([`RateTargets`]) of Nowotny et al., "Loss shaping enhances exact
//! gradient learning with EventProp in spiking neural networks".

use ndarray::{Array2, ArrayView2};
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
        self.sample_with(net, trace, label, cfg, None)
    }

    /// [`FirstSpikeCe::sample`] with further direct spike-time terms `extra[k - 1][i] =
    /// ∂l/∂t_i` of spike `i` of layer `k` (e.g. [`RateTargets`] on the hidden layers),
    /// added before the adjoint runs.
    ///
    /// # Errors
    /// As [`FirstSpikeCe::sample`]; [`Error::Shape`] (from the adjoint) when `extra` does
    /// not have one entry per spike of every layer.
    pub fn sample_with(
        &self,
        net: &Network,
        trace: &Trace,
        label: usize,
        cfg: &SolverConfig,
        extra: Option<&[Vec<f64>]>,
    ) -> Result<(LossOutput, Gradients)> {
        let n_layers = net.n_layers();
        let n_out = *net.sizes().last().expect("at least one layer");
        let mut out = self.evaluate(trace.output(), n_out, label, trace.t_max())?;
        let mut direct: Vec<Vec<f64>> = (1..=n_layers)
            .map(|k| vec![0.0; trace.spikes(k).len()])
            .collect();
        direct[n_layers - 1].clone_from(&out.dl_dt);
        if let Some(extra) = extra {
            add_direct(&mut direct, extra)?;
        }
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

/// `direct += extra`, layer by layer and spike by spike.
///
/// # Errors
/// [`Error::Shape`] when the spike counts differ.
pub(crate) fn add_direct(direct: &mut [Vec<f64>], extra: &[Vec<f64>]) -> Result<()> {
    let lens = |v: &[Vec<f64>]| v.iter().map(Vec::len).collect::<Vec<_>>();
    if lens(direct) != lens(extra) {
        return Err(Error::Shape {
            arg: "extra".into(),
            expected: format!("spikes per layer {:?}", lens(direct)),
            actual: format!("{:?}", lens(extra)),
        });
    }
    for (d, e) in direct.iter_mut().zip(extra) {
        for (d, e) in d.iter_mut().zip(e) {
            *d += e;
        }
    }
    Ok(())
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

/// How the readout integral weights time ([`ReadoutIntegral`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TimeWeight {
    /// `w(t) = 1`: the loss `L_sum`.
    Uniform,
    /// `w(t) = e^{-t / tau_w}` (`tau_w` in seconds, > 0): the loss `L_sum_exp`, which weights
    /// early times more.
    Exp {
        /// Time constant of the weighting (s).
        tau_w: f64,
    },
}

impl TimeWeight {
    /// The decay rate `c` of the weight (`1 / tau_w`, 0 for [`TimeWeight::Uniform`]).
    fn rate(self) -> f64 {
        match self {
            Self::Uniform => 0.0,
            Self::Exp { tau_w } => 1.0 / tau_w,
        }
    }
}

/// Cross-entropy on the time-weighted mean membrane of a leaky-integrator readout
/// (non-spiking LIF: `tau_mem dV/dt = leak - V + I`, `tau_syn dI/dt = -I`, a spike of `n`
/// adds `W[k, n]` to `I_k`, `V(0) = leak`) over the window `[0, T]`:
///
/// ```text
/// s_k = (1/T) ∫_0^T w(t) V_k(t) dt,      L = -log softmax(s)[label]
/// ```
///
/// with `w = 1` (`L_sum`) or `w = e^{-t/tau_w}` (`L_sum_exp`). The readout is linear in
/// its input spikes, so with `u = V - leak`, `a = 1/tau_mem`, `b = 1/tau_syn`,
/// `c = 1/tau_w` (0 for `L_sum`) and the unit response `u(s) = a phi(a, b, s)` to a spike
/// arriving at `t_a` (`s = t - t_a`):
///
/// ```text
/// s_k = leak Ω + Σ_j W[k, n_j] F(t_j + d[k, n_j]),    Ω = (1/T) ∫_0^T w,
/// F(t_a) = (1/T) e^{-c t_a} H(T - t_a),   H(S) = ∫_0^S e^{-c s} u(s) ds
///        = [a (1 - e^{-(b+c) S}) / (b + c) - e^{-c S} a phi(a, b, S)] / (a + c)
/// dF/dt_a = -(1/T) [c e^{-c t_a} H(T - t_a) + e^{-c T} a phi(a, b, T - t_a)]
/// ```
///
/// (`H` from `d/ds (e^{-cs} u) = e^{-cs} (a I - (a + c) u)`, so no division by `b - a`;
/// `F = 0` for arrivals at or after `T`). With `δ_k = softmax(s)_k - [k = label]`:
/// `∂L/∂W[k, n] = Σ_{j: n_j = n} δ_k F`, `∂L/∂d[k, n] = Σ_{j: n_j = n} δ_k W[k, n] F'`,
/// and each input spike gets `∂L/∂t_j = Σ_k δ_k W[k, n_j] F'(t_j + d[k, n_j])`, which the
/// adjoint of the layer below takes as its direct spike-time term
/// ([`Trace::backward_direct`]). The prediction is the largest score (lowest index on
/// ties).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReadoutIntegral {
    /// Readout synaptic time constant (s, > 0).
    pub tau_syn: f64,
    /// Readout membrane time constant (s, > 0).
    pub tau_mem: f64,
    /// Readout resting potential (its membrane starts there).
    pub leak: f64,
    /// The time weighting.
    pub weight: TimeWeight,
}

/// Value and derivatives of [`ReadoutIntegral`] on one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadoutOutput {
    /// Loss value.
    pub value: f64,
    /// The scores `s_k`.
    pub scores: Vec<f64>,
    /// The largest score's class.
    pub prediction: usize,
    /// `∂L/∂t_j` of every input spike of the readout (the order given).
    pub dl_dt: Vec<f64>,
    /// `∂L/∂W` `(K, N)`.
    pub dl_dw: Array2<f64>,
    /// `∂L/∂d` `(K, N)` when delays were given.
    pub dl_dd: Option<Array2<f64>>,
}

impl ReadoutIntegral {
    /// Checks the settings.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the setting.
    pub fn validate(&self) -> Result<()> {
        let mut checks = vec![("tau_syn", self.tau_syn), ("tau_mem", self.tau_mem)];
        if let TimeWeight::Exp { tau_w } = self.weight {
            checks.push(("tau_w", tau_w));
        }
        for (arg, v) in checks {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::Invalid {
                    arg,
                    expected: "a finite value > 0".into(),
                    actual: v.to_string(),
                });
            }
        }
        if !self.leak.is_finite() {
            return Err(Error::Invalid {
                arg: "leak",
                expected: "a finite value".into(),
                actual: self.leak.to_string(),
            });
        }
        Ok(())
    }

    /// `(F(t_a), dF/dt_a)` of a unit-weight arrival at `t_a` in the window `[0, t_max]`
    /// (see the type docs); `(0, 0)` at or after `t_max`.
    pub fn kernel(&self, t_a: f64, t_max: f64) -> (f64, f64) {
        let s_len = t_max - t_a;
        if s_len <= 0.0 {
            return (0.0, 0.0);
        }
        let (a, b, c) = (1.0 / self.tau_mem, 1.0 / self.tau_syn, self.weight.rate());
        let u_end = a * phi(a, b, s_len);
        let ec_s = (-c * s_len).exp();
        let h = (a * (-(-(b + c) * s_len).exp_m1()) / (b + c) - ec_s * u_end) / (a + c);
        let ec_a = (-c * t_a).exp();
        let f = ec_a * h / t_max;
        let df = -(c * ec_a * h + ec_a * ec_s * u_end) / t_max;
        (f, df)
    }

    /// `Ω = (1/T) ∫_0^T w(t) dt`, the score of a readout without input.
    fn resting_weight(&self, t_max: f64) -> f64 {
        match self.weight {
            TimeWeight::Uniform => 1.0,
            TimeWeight::Exp { tau_w } => tau_w * (-(-t_max / tau_w).exp_m1()) / t_max,
        }
    }

    /// Loss, scores, prediction and derivatives for one sample: `spikes` are the readout's
    /// input spikes (the last hidden layer's), `w` its weights `(K, N)`, `d` its delays in
    /// seconds (`(K, N)`, optional).
    ///
    /// # Errors
    /// [`Error::Label`] when `label >= K`; [`Error::Invalid`] for bad settings or a spike of
    /// a neuron `>= N`; [`Error::Shape`] when `d` is not `(K, N)`.
    pub fn sample(
        &self,
        w: ArrayView2<'_, f64>,
        d: Option<ArrayView2<'_, f64>>,
        spikes: &[Spike],
        label: usize,
        t_max: f64,
    ) -> Result<ReadoutOutput> {
        self.validate()?;
        let (k_out, n_in) = w.dim();
        if label >= k_out {
            return Err(Error::Label {
                label,
                n_classes: k_out,
            });
        }
        if let Some(d) = d {
            if d.dim() != w.dim() {
                return Err(Error::Shape {
                    arg: "delays".into(),
                    expected: format!("{:?} (the readout weights')", w.dim()),
                    actual: format!("{:?}", d.dim()),
                });
            }
        }
        if let Some(s) = spikes.iter().find(|s| s.neuron as usize >= n_in) {
            return Err(Error::Invalid {
                arg: "spikes",
                expected: format!("neurons < {n_in} (the readout's inputs)"),
                actual: s.neuron.to_string(),
            });
        }
        let rest = self.leak * self.resting_weight(t_max);
        let mut scores = vec![rest; k_out];
        // (F, F') per spike and class (one column per class when delayed).
        let kern: Vec<Vec<(f64, f64)>> = spikes
            .iter()
            .map(|s| {
                let n = s.neuron as usize;
                match d {
                    None => vec![self.kernel(s.time, t_max)],
                    Some(d) => (0..k_out)
                        .map(|k| self.kernel(s.time + d[[k, n]], t_max))
                        .collect(),
                }
            })
            .collect();
        let at = |kj: &Vec<(f64, f64)>, k: usize| kj[if kj.len() == 1 { 0 } else { k }];
        for (s, kj) in spikes.iter().zip(&kern) {
            let n = s.neuron as usize;
            for (k, sc) in scores.iter_mut().enumerate() {
                *sc += w[[k, n]] * at(kj, k).0;
            }
        }
        let m = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = scores.iter().map(|x| (x - m).exp()).collect();
        let z: f64 = e.iter().sum();
        let value = m + z.ln() - scores[label];
        let delta: Vec<f64> = e
            .iter()
            .enumerate()
            .map(|(k, ek)| ek / z - if k == label { 1.0 } else { 0.0 })
            .collect();
        let mut dl_dw = Array2::zeros((k_out, n_in));
        let mut dl_dd = d.map(|_| Array2::zeros((k_out, n_in)));
        let mut dl_dt = vec![0.0; spikes.len()];
        for ((s, kj), g) in spikes.iter().zip(&kern).zip(dl_dt.iter_mut()) {
            let n = s.neuron as usize;
            for (k, &dk) in delta.iter().enumerate() {
                let (f, df) = at(kj, k);
                dl_dw[[k, n]] += dk * f;
                let dt = dk * w[[k, n]] * df;
                *g += dt;
                if let Some(dd) = dl_dd.as_mut() {
                    dd[[k, n]] += dt;
                }
            }
        }
        let mut prediction = 0;
        for (k, &s) in scores.iter().enumerate() {
            if s > scores[prediction] {
                prediction = k;
            }
        }
        Ok(ReadoutOutput {
            value,
            scores,
            prediction,
            dl_dt,
            dl_dw,
            dl_dd,
        })
    }
}

/// Per-neuron spike-count targets of a hidden layer (loss shaping's rate regulariser),
/// on the counts `c̄_n` of neuron `n` averaged over the batch (spikes per sample):
///
/// ```text
/// L_reg = upper_strength Σ_n max(0, c̄_n - upper_rate)² + lower_strength Σ_n max(0, lower_rate - c̄_n)²
/// g_n   = ∂L_reg/∂c̄_n = 2 upper_strength max(0, c̄_n - upper_rate) - 2 lower_strength max(0, lower_rate - c̄_n)
/// ```
///
/// and `∂L_reg/∂c_{b,n} = g_n / B` for the count of sample `b`. A count has no derivative
/// w.r.t. spike times; EventProp takes `∂L_reg/∂c` as the spike-tensor gradient at every
/// spike of the neuron (as an autograd pipeline does for a sum of spikes): the stepped
/// engine adds `g_n / B` to `grad_spikes` at each spike step (SPEC §3: `grad_spikes =
/// -dL/dt_k`), the exact engine adds `∂l/∂t_k = -g_n` to each spike of sample `b` (its
/// per-sample gradients are averaged afterwards). With `g` held fixed this is the exact
/// gradient of `-Σ_n g_n Σ_k t_{n,k}`: a neuron above its upper target has its spikes
/// pushed later (out of the window), one below its lower target earlier.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateTargets {
    /// `upper_rate`: spikes per sample above which a neuron is penalised (>= 0).
    pub upper_rate: f64,
    /// `lower_rate`: spikes per sample below which a neuron is penalised (>= 0,
    /// <= `upper_rate`).
    pub lower_rate: f64,
    /// `upper_strength` (>= 0; 0: no upper term).
    pub upper_strength: f64,
    /// `lower_strength` (>= 0; 0: no lower term).
    pub lower_strength: f64,
}

impl Default for RateTargets {
    /// Off (both strengths 0), with the loss-shaping paper's SHD targets: at most 14 and at
    /// least 5 spikes per neuron and sample.
    fn default() -> Self {
        Self {
            upper_rate: 14.0,
            lower_rate: 5.0,
            upper_strength: 0.0,
            lower_strength: 0.0,
        }
    }
}

impl RateTargets {
    /// Whether either term is on.
    pub fn is_active(&self) -> bool {
        self.upper_strength > 0.0 || self.lower_strength > 0.0
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the setting.
    pub fn validate(&self) -> Result<()> {
        for (arg, v) in [
            ("upper_rate", self.upper_rate),
            ("lower_rate", self.lower_rate),
            ("upper_strength", self.upper_strength),
            ("lower_strength", self.lower_strength),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::Invalid {
                    arg,
                    expected: "a finite value >= 0".into(),
                    actual: v.to_string(),
                });
            }
        }
        if self.lower_rate > self.upper_rate {
            return Err(Error::Invalid {
                arg: "lower_rate",
                expected: format!("<= upper_rate = {}", self.upper_rate),
                actual: self.lower_rate.to_string(),
            });
        }
        Ok(())
    }

    /// `L_reg` and `g_n` of every hidden layer from the layers' per-neuron count sums
    /// `sums[k][n]` over this process's `samples` samples: the batch means come from
    /// `counts` (one [`BatchCounts::mean`] call for all layers; none without layers), then
    /// [`RateTargets::evaluate`] per layer.
    pub fn evaluate_sums(
        &self,
        sums: &[Vec<f64>],
        samples: usize,
        counts: &dyn BatchCounts,
    ) -> Vec<(f64, Vec<f64>)> {
        if sums.is_empty() {
            return Vec::new();
        }
        let mean = counts.mean(sums.concat(), samples);
        let mut at = 0;
        sums.iter()
            .map(|layer| {
                let m = &mean[at..at + layer.len()];
                at += layer.len();
                self.evaluate(m)
            })
            .collect()
    }

    /// `L_reg` and `g_n = ∂L_reg/∂c̄_n` for the batch-mean counts `mean_counts[n]`.
    pub fn evaluate(&self, mean_counts: &[f64]) -> (f64, Vec<f64>) {
        let mut value = 0.0;
        let g = mean_counts
            .iter()
            .map(|&c| {
                let over = (c - self.upper_rate).max(0.0);
                let under = (self.lower_rate - c).max(0.0);
                value += self.upper_strength * over * over + self.lower_strength * under * under;
                2.0 * self.upper_strength * over - 2.0 * self.lower_strength * under
            })
            .collect();
        (value, g)
    }
}

/// Where the batch-mean spike counts of the [`RateTargets`] come from: the samples of
/// this process ([`LocalCounts`]), or — in data-parallel training — the whole global batch
/// whose shares other processes hold (the trainer's collective implementation).
///
/// An engine calls [`BatchCounts::mean`] once per training batch with active targets and
/// at least one hidden layer, after the forward pass and before the adjoint, with every
/// hidden layer's per-neuron count sums concatenated in layer order. Processes of one job
/// must call it the same number of times (a collective).
pub trait BatchCounts {
    /// The batch-mean count of every hidden neuron (layers concatenated, as `sums`) from
    /// this process's per-neuron count sums `sums` over its `samples` samples.
    fn mean(&self, sums: Vec<f64>, samples: usize) -> Vec<f64>;
}

/// One process: the mean over this process's samples, `sums[n] / samples` (`samples`
/// taken as 1 when 0).
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalCounts;

impl BatchCounts for LocalCounts {
    fn mean(&self, mut sums: Vec<f64>, samples: usize) -> Vec<f64> {
        let b = samples.max(1) as f64;
        sums.iter_mut().for_each(|c| *c /= b);
        sums
    }
}

#[cfg(test)]
mod shaping_tests {
    use super::*;
    use ndarray::array;

    /// `(1/T) ∫_{t_a}^T w(t) a phi(a, b, t - t_a) dt` by composite Simpson (2000 panels).
    fn simpson(r: &ReadoutIntegral, t_a: f64, t_max: f64) -> f64 {
        let (a, b) = (1.0 / r.tau_mem, 1.0 / r.tau_syn);
        let w = |t: f64| match r.weight {
            TimeWeight::Uniform => 1.0,
            TimeWeight::Exp { tau_w } => (-t / tau_w).exp(),
        };
        let f = |t: f64| w(t) * a * phi(a, b, t - t_a);
        let n = 2000;
        let h = (t_max - t_a) / n as f64;
        let mut s = f(t_a) + f(t_max);
        for i in 1..n {
            s += f(t_a + i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
        }
        s * h / 3.0 / t_max
    }

    #[test]
    fn readout_kernel_matches_quadrature_and_its_derivative_matches_differences() {
        // Unequal, equal and nearly equal time constants; both weightings.
        for (tau_mem, tau_syn) in [(20e-3, 5e-3), (6e-3, 6e-3), (5e-3, 5e-3 * (1.0 + 1e-9))] {
            for weight in [TimeWeight::Uniform, TimeWeight::Exp { tau_w: 30e-3 }] {
                let r = ReadoutIntegral {
                    tau_syn,
                    tau_mem,
                    leak: 0.0,
                    weight,
                };
                for t_a in [0.0, 3e-3, 41e-3] {
                    let (f, df) = r.kernel(t_a, 0.05);
                    // Expected: Simpson quadrature of the definition (error ~1e-13).
                    let q = simpson(&r, t_a, 0.05);
                    assert!((f - q).abs() <= 1e-9 * q.abs(), "{f} vs {q}");
                    // Expected: central difference of F (step 1e-7 s, error ~1e-9 rel.).
                    let h = 1e-7;
                    let fd = (r.kernel(t_a + h, 0.05).0 - r.kernel(t_a - h, 0.05).0) / (2.0 * h);
                    assert!((df - fd).abs() <= 1e-6 * df.abs(), "{df} vs {fd}");
                }
                // After the window: no contribution.
                assert_eq!(r.kernel(0.05, 0.05), (0.0, 0.0));
            }
        }
    }

    #[test]
    fn readout_scores_of_a_silent_input_are_the_resting_level() {
        // No input: V = leak throughout, so s_k = leak Ω for every class and the loss is
        // ln K (uniform softmax); Ω = 1 (sum) and (tau_w/T)(1 - e^{-T/tau_w}) (sum_exp).
        let w = array![[1.0, 2.0], [0.5, -1.0], [0.0, 0.3]];
        for (weight, omega) in [
            (TimeWeight::Uniform, 1.0),
            (
                TimeWeight::Exp { tau_w: 0.02 },
                0.02 / 0.05 * (1.0 - (-0.05f64 / 0.02).exp()),
            ),
        ] {
            let r = ReadoutIntegral {
                tau_syn: 5e-3,
                tau_mem: 20e-3,
                leak: 0.25,
                weight,
            };
            let out = r.sample(w.view(), None, &[], 1, 0.05).unwrap();
            for s in &out.scores {
                assert!((s - 0.25 * omega).abs() < 1e-15);
            }
            assert!((out.value - 3f64.ln()).abs() < 1e-12);
            assert!(out.dl_dw.iter().all(|&g| g == 0.0));
        }
    }

    #[test]
    fn rate_targets_value_and_gradient() {
        let t = RateTargets {
            upper_rate: 4.0,
            lower_rate: 2.0,
            upper_strength: 0.5,
            lower_strength: 0.25,
        };
        // c̄ = 6 (2 over), 3 (inside), 1 (1 under):
        // L = 0.5·2² + 0.25·1² = 2.25; g = (2·0.5·2, 0, -2·0.25·1) = (2, 0, -0.5).
        let (v, g) = t.evaluate(&[6.0, 3.0, 1.0]);
        assert!((v - 2.25).abs() < 1e-15);
        assert_eq!(g, vec![2.0, 0.0, -0.5]);
        assert!(RateTargets::default().validate().is_ok());
        assert!(!RateTargets::default().is_active());
        let bad = RateTargets {
            lower_rate: 5.0,
            ..t
        };
        assert!(bad.validate().is_err());
    }
}

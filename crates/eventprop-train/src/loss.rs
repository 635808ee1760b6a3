//! Decoders and losses, each returning the batch-mean loss, the number of correct
//! predictions and the gradient w.r.t. the network's output tensor.
//!
//! * [`max_over_time`]: `score[b,k] = max_t v[t,b,k]` of the readout membrane;
//!   `L = mean_b CE(softmax(score_b), label_b) + reg * mean_{b,k} score[b,k]²` (the seed
//!   example's readout regulariser). Gradient `∂L/∂v` is non-zero only at each argmax step.
//! * [`first_spike`]: first-spike-time cross-entropy of the EventProp paper on output spike
//!   times `t_k` (silent neurons count as `t_k = t_sim`, without gradient):
//!   `L = mean_b [ -log softmax(-t/tau0)[label] + alpha (exp(t_label/tau1) - 1) ]`.
//!   The spike-tensor gradient holds `-dL/dt_k` at each neuron's first spike step (docs/spec.md §3).
//! * [`rate_regularizer`]: `reg * mean_{b,n} c[b,n]²` with `c` the hidden spike counts;
//!   gradient `∂/∂z[t,b,n] = 2 reg c[b,n] / (B N)` (autograd-style, w.r.t. the spike tensor).
//! * [`readout_integral`] (loss shaping, Nowotny et al.): cross-entropy on the time-weighted
//!   mean of the readout membrane, `score[b,k] = (1/T) Σ_t w(t dt) v[t,b,k]` (the Riemann
//!   sum of `(1/T) ∫ w V dt` with `T` steps), `w = 1` (`sum`) or `e^{-t/tau_w}`
//!   (`sum_exp`); gradient `∂L/∂v[t,b,k] = (softmax - onehot)[b,k] w(t dt) / (B T)`.
//! * [`rate_targets`]: per-neuron spike-count targets on the batch-mean counts
//!   ([`RateTargets`]); gradient `∂/∂z[t,b,n] = g_n / B` (the same autograd-style spike
//!   gradient as the rate regulariser).

use eventprop_core::Real;
use eventprop_exact::loss::first_spike_ce;
pub use eventprop_exact::{BatchCounts, LocalCounts, RateTargets};
use ndarray::{Array2, Array3, ArrayView2, ArrayView3};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One label per sample, each `< k`.
fn check_labels(labels: &[usize], b_len: usize, k: usize) -> Result<()> {
    if labels.len() != b_len {
        return Err(Error::invalid(
            "labels",
            format!("{b_len} (one per sample)"),
            labels.len(),
        ));
    }
    if let Some(&l) = labels.iter().find(|&&l| l >= k) {
        return Err(Error::invalid("labels", format!("< {k} (classes)"), l));
    }
    Ok(())
}

/// Loss value, accuracy count and gradient w.r.t. the loss's input tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct LossOutput<F> {
    /// Batch-mean loss.
    pub loss: f64,
    /// Number of correctly classified samples.
    pub correct: usize,
    /// The predicted class of each sample (`None`: no output neuron fired, for spiking
    /// outputs).
    pub predictions: Vec<Option<usize>>,
    /// Gradient `(T, B, K)` w.r.t. the loss's input tensor (see each loss).
    pub grad: Array3<F>,
}

/// Which loss trains the network (and which output layer it needs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LossKind {
    /// Max-over-time of a leaky-integrator readout + cross-entropy + `reg * mean(score²)`.
    MaxOverTime {
        /// Weight of the readout regulariser (seed example: `4e-4`).
        reg: f64,
    },
    /// First-spike-time cross-entropy on spiking output neurons. This is loss shaping's
    /// `L_time` (`time` is accepted as its name): the same cross-entropy of
    /// `softmax(-t/tau0)` plus `alpha (exp(t_label/tau1) - 1)`.
    #[serde(alias = "time")]
    FirstSpike {
        /// Softmax temperature (seconds).
        tau0: f64,
        /// Time constant of the early-spike term (seconds).
        tau1: f64,
        /// Weight of the early-spike term.
        alpha: f64,
        /// Weight of the silent-label membrane term (exact engine only; 0 = off; see
        /// [`eventprop_exact::FirstSpikeCe`]).
        #[serde(default)]
        silent_label_gamma: f64,
    },
    /// `L_sum`: cross-entropy on the mean readout membrane over the window,
    /// `(1/T) ∫_0^T V dt` (leaky-integrator readout).
    Sum,
    /// `L_sum_exp`: cross-entropy on the exponentially weighted mean readout membrane,
    /// `(1/T) ∫_0^T e^{-t/tau_w} V dt` (leaky-integrator readout): early times weigh more.
    SumExp {
        /// Time constant of the weighting (s, > 0); absent: the window `T` (loss shaping's
        /// choice, `e^{-t/T}`: the end of the window weighs `1/e` of its start).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tau_w: Option<f64>,
    },
}

impl LossKind {
    /// Refuses the silent-label membrane term of the first-spike loss, which only the exact
    /// engine has (the time-stepped engines call this when they are built).
    ///
    /// # Errors
    /// [`Error::Invalid`] for a first-spike loss with `silent_label_gamma != 0`.
    pub fn refuse_silent_label(&self) -> Result<()> {
        match *self {
            LossKind::FirstSpike {
                silent_label_gamma, ..
            } if silent_label_gamma != 0.0 => Err(Error::invalid(
                "loss.silent_label_gamma",
                "0 with the stepped engine (its membrane-maximum term is exact-engine only)",
                silent_label_gamma,
            )),
            _ => Ok(()),
        }
    }
}

/// `log Σ exp(s)` and the softmax of `s`.
fn softmax(s: &[f64]) -> (f64, Vec<f64>) {
    let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
    let z: f64 = e.iter().sum();
    (m + z.ln(), e.into_iter().map(|x| x / z).collect())
}

/// Index of the largest value (first one on ties).
fn argmax(s: &[f64]) -> usize {
    let mut best = 0;
    for (k, &x) in s.iter().enumerate() {
        if x > s[best] {
            best = k;
        }
    }
    best
}

/// Cross-entropy + score regulariser on scores `(B, K)` (row-major): returns the loss and
/// `dL/dscore`. `dL/ds[b,k] = (softmax[b,k] - [k = label_b]) / B + 2 reg s[b,k] / (B K)`.
pub fn scores_loss(scores: &[f64], k: usize, labels: &[usize], reg: f64) -> (f64, Vec<f64>) {
    let b_len = labels.len();
    let mut loss = 0.0;
    let mut grad = vec![0.0; scores.len()];
    let nb = b_len as f64;
    let nbk = (b_len * k) as f64;
    for (b, &label) in labels.iter().enumerate() {
        let s = &scores[b * k..(b + 1) * k];
        let (lse, p) = softmax(s);
        loss += (lse - s[label]) / nb;
        for j in 0..k {
            let onehot = if j == label { 1.0 } else { 0.0 };
            loss += reg * s[j] * s[j] / nbk;
            grad[b * k + j] = (p[j] - onehot) / nb + 2.0 * reg * s[j] / nbk;
        }
    }
    (loss, grad)
}

/// Max-over-time decoder + cross-entropy on the readout membrane `v` `(T, B, K)`; the
/// gradient is `∂L/∂v`.
///
/// # Errors
/// [`Error::Invalid`] if `labels.len() != B` or a label is `>= K`.
pub fn max_over_time<F: Real>(
    v: ArrayView3<'_, F>,
    labels: &[usize],
    reg: f64,
) -> Result<LossOutput<F>> {
    let (t_len, b_len, k) = v.dim();
    check_labels(labels, b_len, k)?;
    let mut scores = vec![f64::NEG_INFINITY; b_len * k];
    let mut at = vec![0usize; b_len * k];
    for t in 0..t_len {
        for b in 0..b_len {
            for j in 0..k {
                let x = v[[t, b, j]].to_f64().expect("float");
                if x > scores[b * k + j] {
                    scores[b * k + j] = x;
                    at[b * k + j] = t;
                }
            }
        }
    }
    let predictions: Vec<Option<usize>> = (0..b_len)
        .map(|b| Some(argmax(&scores[b * k..(b + 1) * k])))
        .collect();
    let correct = labels
        .iter()
        .zip(&predictions)
        .filter(|&(&l, &p)| p == Some(l))
        .count();
    let (loss, gs) = scores_loss(&scores, k, labels, reg);
    let mut grad = Array3::zeros((t_len, b_len, k));
    if t_len > 0 {
        for b in 0..b_len {
            for j in 0..k {
                grad[[at[b * k + j], b, j]] = F::of(gs[b * k + j]);
            }
        }
    }
    Ok(LossOutput {
        loss,
        correct,
        predictions,
        grad,
    })
}

/// The loss of `kind` on the output tensor `(T, B, K)` of a stepped network (readout
/// membrane or output spikes) with step `dt`: [`max_over_time`], [`first_spike`] or
/// [`readout_integral`].
///
/// # Errors
/// As those functions.
pub fn evaluate<F: Real>(
    kind: &LossKind,
    output: ArrayView3<'_, F>,
    labels: &[usize],
    dt: f64,
) -> Result<LossOutput<F>> {
    match *kind {
        LossKind::MaxOverTime { reg } => max_over_time(output, labels, reg),
        LossKind::FirstSpike {
            tau0, tau1, alpha, ..
        } => first_spike(output, labels, dt, tau0, tau1, alpha),
        LossKind::Sum => readout_integral(output, labels, dt, None),
        LossKind::SumExp { tau_w } => {
            let tau_w = tau_w.unwrap_or(output.dim().0 as f64 * dt);
            readout_integral(output, labels, dt, Some(tau_w))
        }
    }
}

/// Time-weighted mean of the readout membrane `v` `(T, B, K)` + cross-entropy (loss
/// shaping's `L_sum`, `tau_w = None`, and `L_sum_exp`): `score[b,k] = (1/T) Σ_t w_t
/// v[t,b,k]`, `w_t = e^{-t dt / tau_w}` (1 without `tau_w`), `L = mean_b CE(softmax(score_b),
/// label_b)`. The gradient is `∂L/∂v[t,b,k] = (softmax[b,k] - [k = label_b]) w_t / (B T)`;
/// the prediction is the largest score.
///
/// # Errors
/// [`Error::Invalid`] if `labels.len() != B` or a label is `>= K`.
pub fn readout_integral<F: Real>(
    v: ArrayView3<'_, F>,
    labels: &[usize],
    dt: f64,
    tau_w: Option<f64>,
) -> Result<LossOutput<F>> {
    let (t_len, b_len, k) = v.dim();
    check_labels(labels, b_len, k)?;
    let weights: Vec<f64> = (0..t_len)
        .map(|t| tau_w.map_or(1.0, |tw| (-(t as f64) * dt / tw).exp()) / t_len.max(1) as f64)
        .collect();
    let mut scores = vec![0.0; b_len * k];
    for (t, &w) in weights.iter().enumerate() {
        for b in 0..b_len {
            for j in 0..k {
                scores[b * k + j] += w * v[[t, b, j]].to_f64().expect("float");
            }
        }
    }
    let predictions: Vec<Option<usize>> = (0..b_len)
        .map(|b| Some(argmax(&scores[b * k..(b + 1) * k])))
        .collect();
    let correct = labels
        .iter()
        .zip(&predictions)
        .filter(|&(&l, &p)| p == Some(l))
        .count();
    let (loss, gs) = scores_loss(&scores, k, labels, 0.0);
    let grad = Array3::from_shape_fn((t_len, b_len, k), |(t, b, j)| {
        F::of(gs[b * k + j] * weights[t])
    });
    Ok(LossOutput {
        loss,
        correct,
        predictions,
        grad,
    })
}

/// The [`RateTargets`] term of one hidden layer from its spike counts `(B, N)`: `L_reg`
/// of the batch-mean counts and `∂L_reg/∂c[b,n] = g_n / B`.
pub fn rate_targets_of_counts(
    counts: ArrayView2<'_, f64>,
    targets: &RateTargets,
) -> (f64, Array2<f64>) {
    rate_targets_of_layers(&[counts], targets, &LocalCounts)
        .pop()
        .expect("one layer in, one out")
}

/// [`rate_targets_of_counts`] for every hidden layer at once (`counts[k]`: layer `k`'s
/// spike counts `(B, N_k)` over this process's `B` samples), with the batch-mean counts
/// formed by `shared` (one [`BatchCounts::mean`] call for all layers: [`LocalCounts`] in
/// one process, the global batch's mean in data-parallel training). The gradient stays
/// `g_n / B` per local sample: the trainer weights each process's batch mean by its share.
pub fn rate_targets_of_layers(
    counts: &[ArrayView2<'_, f64>],
    targets: &RateTargets,
    shared: &dyn BatchCounts,
) -> Vec<(f64, Array2<f64>)> {
    // Integer-valued sums: exact in any order.
    let sums: Vec<Vec<f64>> = counts
        .iter()
        .map(|c| c.columns().into_iter().map(|col| col.sum()).collect())
        .collect();
    let samples = counts.first().map_or(0, |c| c.nrows());
    targets
        .evaluate_sums(&sums, samples, shared)
        .into_iter()
        .zip(counts)
        .map(|((value, g), c)| {
            let b_len = c.nrows().max(1) as f64;
            let grad = Array2::from_shape_fn(c.dim(), |(_, n)| g[n] / b_len);
            (value, grad)
        })
        .collect()
}

/// [`RateTargets`] on every hidden layer's spikes `(T, B, N_k)` ([`rate_targets_of_layers`]):
/// per layer `L_reg` and `∂L/∂z` `(T, B, N_k)` (`g_n / B` at every step; EventProp reads
/// it at the spike steps only).
pub fn rate_targets_dense<F: Real>(
    spikes: &[ArrayView3<'_, F>],
    targets: &RateTargets,
    shared: &dyn BatchCounts,
) -> Vec<(f64, Array3<F>)> {
    let counts: Vec<Array2<f64>> = spikes
        .iter()
        .map(|z| {
            z.sum_axis(ndarray::Axis(0))
                .mapv(|c| c.to_f64().expect("float"))
        })
        .collect();
    let views: Vec<_> = counts.iter().map(|a| a.view()).collect();
    rate_targets_of_layers(&views, targets, shared)
        .into_iter()
        .zip(spikes)
        .map(|((value, g), z)| {
            let grad = Array3::from_shape_fn(z.dim(), |(_, b, n)| F::of(g[[b, n]]));
            (value, grad)
        })
        .collect()
}

/// [`RateTargets`] on a hidden layer's spikes `(T, B, N)`: `L_reg` and `∂L/∂z` `(T, B, N)`
/// (`g_n / B` at every step; EventProp reads it at the spike steps only).
pub fn rate_targets<F: Real>(spikes: ArrayView3<'_, F>, targets: &RateTargets) -> (f64, Array3<F>) {
    rate_targets_dense(&[spikes], targets, &LocalCounts)
        .pop()
        .expect("one layer in, one out")
}

/// First-spike-time loss on output spikes `(T, B, K)` with step `dt`. The gradient holds
/// `-dL/dt_k / B` at each neuron's first spike step (docs/spec.md §3 convention) and 0 elsewhere;
/// silent neurons count as spiking at `T dt` and get no gradient. The prediction is the
/// earliest neuron (lowest index on ties).
///
/// The loss itself is [`eventprop_exact::loss::first_spike_ce`], shared with the exact
/// engine.
///
/// # Errors
/// [`Error::Invalid`] if `labels.len() != B` or a label is `>= K`.
pub fn first_spike<F: Real>(
    spikes: ArrayView3<'_, F>,
    labels: &[usize],
    dt: f64,
    tau0: f64,
    tau1: f64,
    alpha: f64,
) -> Result<LossOutput<F>> {
    let (t_len, b_len, k) = spikes.dim();
    check_labels(labels, b_len, k)?;
    let mut grad = Array3::zeros((t_len, b_len, k));
    let mut loss = 0.0;
    let mut correct = 0;
    let mut predictions = Vec::with_capacity(b_len);
    for (b, &label) in labels.iter().enumerate() {
        let first: Vec<Option<usize>> = (0..k)
            .map(|j| (0..t_len).find(|&t| spikes[[t, b, j]] != F::zero()))
            .collect();
        let times: Vec<f64> = first
            .iter()
            .map(|f| f.unwrap_or(t_len) as f64 * dt)
            .collect();
        let (l, g) = first_spike_ce(&times, label, tau0, tau1, alpha);
        loss += l / b_len as f64;
        let pred = (0..k).fold(0, |best, j| if times[j] < times[best] { j } else { best });
        let pred = first[pred].map(|_| pred);
        if pred == Some(label) {
            correct += 1;
        }
        predictions.push(pred);
        for j in 0..k {
            if let Some(t) = first[j] {
                grad[[t, b, j]] = F::of(-g[j] / b_len as f64);
            }
        }
    }
    Ok(LossOutput {
        loss,
        correct,
        predictions,
        grad,
    })
}

/// Firing-rate regulariser `reg * mean_{b,n} c[b,n]²` on spikes `(T, B, N)`: the loss and
/// `∂L/∂z` `(T, B, N)`.
pub fn rate_regularizer<F: Real>(spikes: ArrayView3<'_, F>, reg: f64) -> (f64, Array3<F>) {
    let (_, b_len, n) = spikes.dim();
    let counts = spikes
        .sum_axis(ndarray::Axis(0))
        .mapv(|c| c.to_f64().expect("float"));
    let bn = (b_len * n).max(1) as f64;
    let loss = reg * counts.iter().map(|c| c * c).sum::<f64>() / bn;
    let mut grad = Array3::zeros(spikes.dim());
    for mut row in grad.outer_iter_mut() {
        ndarray::Zip::from(&mut row)
            .and(&counts)
            .for_each(|g, &c| *g = F::of(2.0 * reg * c / bn));
    }
    (loss, grad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn fd<Fn1: Fn(&[f64]) -> f64>(f: Fn1, x: &[f64], h: f64) -> Vec<f64> {
        (0..x.len())
            .map(|i| {
                let mut p = x.to_vec();
                p[i] += h;
                let mut m = x.to_vec();
                m[i] -= h;
                (f(&p) - f(&m)) / (2.0 * h)
            })
            .collect()
    }

    #[test]
    fn scores_loss_gradient_matches_finite_differences() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let s: Vec<f64> = (0..12).map(|_| rng.random_range(-2.0..2.0)).collect();
        let labels = [0, 2, 1, 2];
        let (_, g) = scores_loss(&s, 3, &labels, 4e-4);
        let num = fd(|x| scores_loss(x, 3, &labels, 4e-4).0, &s, 1e-5);
        for (a, b) in g.iter().zip(num) {
            assert!((a - b).abs() < 1e-9, "{a} vs {b}");
        }
    }

    #[test]
    fn max_over_time_value_and_gradient_through_the_membrane() {
        // v perturbed at the argmax changes the loss by the gradient (max is locally
        // linear when the maximum is unique); elsewhere not at all.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        let v = Array3::from_shape_fn((6, 3, 3), |_| rng.random_range(-1.0..1.0));
        let labels = [1, 0, 2];
        let out = max_over_time(v.view(), &labels, 4e-4).unwrap();
        let h = 1e-6;
        for idx in ndarray::indices(v.dim()) {
            let (t, b, k) = idx;
            let mut p = v.clone();
            p[[t, b, k]] += h;
            let mut m = v.clone();
            m[[t, b, k]] -= h;
            let num = (max_over_time(p.view(), &labels, 4e-4).unwrap().loss
                - max_over_time(m.view(), &labels, 4e-4).unwrap().loss)
                / (2.0 * h);
            assert!((num - out.grad[[t, b, k]]).abs() < 1e-8, "{idx:?}");
        }
        // Uniform scores of 0: CE = ln 3 per sample, regulariser 0.
        let z = max_over_time(Array3::<f64>::zeros((4, 2, 3)).view(), &[0, 1], 4e-4).unwrap();
        assert!((z.loss - 3f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn first_spike_time_gradient_matches_finite_differences() {
        let t = [3e-6, 5e-6, 4.5e-6];
        for label in 0..3 {
            let (_, g) = first_spike_ce(&t, label, 2e-6, 20e-6, 3e-3);
            let num = fd(|x| first_spike_ce(x, label, 2e-6, 20e-6, 3e-3).0, &t, 1e-11);
            for (a, b) in g.iter().zip(&num) {
                assert!((a - b).abs() < 1e-6 * a.abs().max(1.0), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn first_spike_feeds_minus_dl_dt_at_first_spikes_only() {
        // Sample 0: neuron 0 spikes at steps 2 and 4, neuron 1 at 3, neuron 2 silent.
        let mut z = Array3::<f64>::zeros((6, 1, 3));
        z[[2, 0, 0]] = 1.0;
        z[[4, 0, 0]] = 1.0;
        z[[3, 0, 1]] = 1.0;
        let out = first_spike(z.view(), &[0], 1e-6, 2e-6, 20e-6, 0.0).unwrap();
        // times 2, 3, 6 µs (silent = T dt).
        let (l, g) = first_spike_ce(&[2e-6, 3e-6, 6e-6], 0, 2e-6, 20e-6, 0.0);
        assert!((out.loss - l).abs() < 1e-12);
        assert_eq!(out.correct, 1);
        assert_eq!(out.grad[[2, 0, 0]], -g[0]);
        assert_eq!(out.grad[[3, 0, 1]], -g[1]);
        assert_eq!(out.grad.iter().filter(|&&x| x != 0.0).count(), 2);
        // The label neuron spiking first must be pushed earlier: dL/dt_label > 0.
        assert!(g[0] > 0.0);
    }

    #[test]
    fn bad_labels_are_errors_not_panics() {
        let z = Array3::<f64>::zeros((4, 2, 3));
        let e = max_over_time(z.view(), &[0], 0.0).unwrap_err().to_string();
        assert_eq!(e, "labels: expected 2 (one per sample), got 1");
        let e = first_spike(z.view(), &[0, 3], 1e-6, 1e-6, 1e-5, 0.0).unwrap_err();
        assert_eq!(e.to_string(), "labels: expected < 3 (classes), got 3");
    }

    #[test]
    fn rate_regularizer_matches_finite_differences_in_the_counts() {
        let mut z = Array3::<f64>::zeros((4, 2, 2));
        z[[0, 0, 0]] = 1.0;
        z[[2, 0, 0]] = 1.0;
        z[[1, 1, 1]] = 1.0;
        let (l, g) = rate_regularizer(z.view(), 0.5);
        // counts 2, 0, 0, 1: 0.5 * (4 + 1) / 4.
        assert!((l - 0.625).abs() < 1e-15);
        let h = 1e-6;
        let mut p = z.clone();
        p[[3, 0, 1]] += h;
        let mut m = z.clone();
        m[[3, 0, 1]] -= h;
        let num =
            (rate_regularizer(p.view(), 0.5).0 - rate_regularizer(m.view(), 0.5).0) / (2.0 * h);
        assert!((num - g[[3, 0, 1]]).abs() < 1e-8);
        assert!((g[[0, 0, 0]] - 0.5).abs() < 1e-15); // 2 * 0.5 * 2 / 4
    }
}

#[cfg(test)]
mod shaping_tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn readout_integral_gradient_matches_finite_differences() {
        // The loss is smooth in v (a weighted mean, then CE): central differences with
        // h = 1e-6 agree to ~1e-10.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let v = Array3::from_shape_fn((7, 3, 4), |_| rng.random_range(-1.0..1.0));
        let labels = [3, 0, 2];
        for tau_w in [None, Some(3e-6)] {
            let out = readout_integral(v.view(), &labels, 1e-6, tau_w).unwrap();
            let h = 1e-6;
            for idx in ndarray::indices(v.dim()) {
                let mut p = v.clone();
                p[idx] += h;
                let mut m = v.clone();
                m[idx] -= h;
                let num = (readout_integral(p.view(), &labels, 1e-6, tau_w)
                    .unwrap()
                    .loss
                    - readout_integral(m.view(), &labels, 1e-6, tau_w)
                        .unwrap()
                        .loss)
                    / (2.0 * h);
                assert!((num - out.grad[idx]).abs() < 1e-9, "{idx:?}");
            }
        }
        // v = 1 everywhere, uniform weights: every score is 1, the loss ln 4 (uniform
        // softmax over 4 classes).
        let ones = Array3::<f64>::ones((5, 2, 4));
        let out = readout_integral(ones.view(), &[0, 1], 1e-6, None).unwrap();
        assert!((out.loss - 4f64.ln()).abs() < 1e-12);
        // sum_exp with tau_w absent weighs by e^{-t/T}: `evaluate` fills in T = steps·dt.
        let kind = LossKind::SumExp { tau_w: None };
        let a = evaluate(&kind, v.view(), &labels, 1e-6).unwrap();
        let b = readout_integral(v.view(), &labels, 1e-6, Some(7e-6)).unwrap();
        assert_eq!(a.loss, b.loss);
    }

    #[test]
    fn rate_targets_gradient_is_the_count_derivative() {
        let t = RateTargets {
            upper_rate: 1.0,
            lower_rate: 1.0,
            upper_strength: 0.3,
            lower_strength: 0.2,
        };
        // Counts (B = 2, N = 3): neuron 0: 3 and 1 (mean 2, one over), neuron 1: 1 and 1
        // (on target), neuron 2: 0 and 0 (one under).
        let mut z = Array3::<f64>::zeros((4, 2, 3));
        for t in 0..3 {
            z[[t, 0, 0]] = 1.0;
        }
        z[[1, 1, 0]] = 1.0;
        z[[2, 0, 1]] = 1.0;
        z[[0, 1, 1]] = 1.0;
        let (l, g) = rate_targets(z.view(), &t);
        // L = 0.3·1² + 0.2·1² = 0.5.
        assert!((l - 0.5).abs() < 1e-15);
        // ∂L/∂c[b,n] = g_n / B: neuron 0: 2·0.3·1 / 2 = 0.3, neuron 1: 0,
        // neuron 2: -2·0.2·1 / 2 = -0.2; the same at every step.
        assert!((g[[0, 0, 0]] - 0.3).abs() < 1e-15);
        assert!((g[[3, 1, 0]] - 0.3).abs() < 1e-15);
        assert_eq!(g[[2, 0, 1]], 0.0);
        assert!((g[[1, 1, 2]] + 0.2).abs() < 1e-15);
        // And it is the derivative of L in the counts (central differences, L is
        // piecewise quadratic, exact to rounding away from the kinks).
        let counts = z.sum_axis(ndarray::Axis(0));
        let (_, gc) = rate_targets_of_counts(counts.view(), &t);
        let h = 1e-6;
        for idx in ndarray::indices(counts.dim()) {
            let mut p = counts.clone();
            p[idx] += h;
            let mut m = counts.clone();
            m[idx] -= h;
            let num = (rate_targets_of_counts(p.view(), &t).0
                - rate_targets_of_counts(m.view(), &t).0)
                / (2.0 * h);
            // At the kink (neuron 1, c̄ = 1) the one-sided quadratics leave
            // (0.3 - 0.2) (h/2)² / (2h) = 1.25e-8.
            assert!((num - gc[idx]).abs() < 1e-7, "{idx:?}");
        }
    }
}

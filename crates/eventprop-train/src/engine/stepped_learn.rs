//! The time-stepped engine for networks with [`eventprop_core::spec::Learn`] extras (recurrent
//! hidden layers, delays, trained time constants and thresholds): every spiking layer is a
//! [`SteppedLayer`] (the seed's update order and `Corrected` adjoint, extended), the
//! output is the configured readout (leaky integrator with the max-over-time loss, or
//! spiking with the first-spike loss), samples run in parallel (rayon) and their gradients
//! are summed in sample order, so results do not depend on the thread count.
//!
//! Used by [`super::build`] for `engine = "stepped"` when `[learn]` asks for delays, or
//! trained taus or thresholds with a spiking output; a plain stepped run, and one with
//! recurrence or hidden thresholds and taus (integrator readout), runs on the fused layers of
//! [`super::stepped::SteppedEngine`] (for which this engine, built directly, is the dense
//! reference: `tests/it/stepped_recurrent.rs`).

use eventprop_exact::NeuronParams;
use ndarray::{Array2, Array3, ArrayView2, Axis};
use rayon::prelude::*;

use super::{BatchOutcome, Engine, EngineKind, EngineSettings, Pass};
use crate::error::{Error, Result};
use crate::loss::{self, BatchCounts, LossKind, RateTargets};
use eventprop_core::spec::{NetworkGrads, NetworkSpec, Readout};
use eventprop_core::stepped::layer::{delay_steps, LayerRun, SteppedLayer};
use eventprop_core::stepped::readout::LeakyIntegrator;
use eventprop_data::Spike;

/// Peak bytes of a batch on the dense time grid (the stepped engine with `[learn]` extras,
/// and the chip engine): `8 B × steps × max(6 × batch_size, 4 × eval_batch_size) ×
/// (N_in + Σ N)` — forward state and adjoint of every layer (factors measured: 5.8 and 3.8
/// values per neuron and step).
pub(super) fn dense_memory(s: &EngineSettings) -> (f64, String) {
    let spec = &s.network;
    let neurons = (spec.n_in + spec.hidden.iter().sum::<usize>() + spec.n_out) as f64;
    let steps = s.steps as f64;
    let train = 6.0 * s.batch_size as f64;
    let eval = 4.0 * s.eval_batch_size as f64;
    let per = 8.0 * steps * neurons;
    (
        per * train.max(eval),
        format!(
            "the time grid: {steps} steps (t_sim / dt) × {} samples ({}) × {neurons} neurons",
            if train >= eval {
                s.batch_size
            } else {
                s.eval_batch_size
            },
            if train >= eval {
                "batch_size"
            } else {
                "eval_batch_size"
            },
        ),
    )
}

/// Time-stepped simulation with recurrent weights, delays and per-neuron parameters.
#[derive(Debug, Clone)]
pub struct SteppedLearnEngine {
    spec: NetworkSpec,
    dt: f64,
    steps: usize,
    loss: LossKind,
    rate_reg: f64,
    targets: RateTargets,
}

/// One sample's forward: the spike lists of the input and of every spiking layer, and the
/// runs of the spiking layers.
struct SampleRun {
    spikes: Vec<Vec<Vec<u32>>>,
    runs: Vec<LayerRun>,
}

impl SteppedLearnEngine {
    /// The engine of `config`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for the silent-label term (exact engine only), a `Seed`
    /// discretization (these layers implement the `Corrected` one) or an invalid network.
    pub fn new(config: &EngineSettings) -> Result<Self> {
        config.loss.refuse_silent_label()?;
        if config.stepped.discretization != eventprop_core::Discretization::Corrected {
            return Err(Error::invalid(
                "stepped.discretization",
                "corrected with [learn] on the stepped engine (its layers implement the \
                 corrected adjoint)",
                config.stepped.discretization,
            ));
        }
        let spec = config.network.clone();
        spec.validate()?;
        Ok(Self {
            spec,
            dt: config.dt,
            steps: config.steps,
            loss: config.loss,
            rate_reg: config.stepped.rate_reg,
            targets: config.reg,
        })
    }

    /// The spiking layers of the tensors (hidden layers, then a spiking output); `delays`
    /// in seconds ([`NetworkSpec::delays`]).
    fn layers<'a>(
        &'a self,
        weights: &'a [Array2<f64>],
        params: &'a [NeuronParams],
        delays: Option<&'a [Array2<f64>]>,
    ) -> Vec<SteppedLayer<'a>> {
        let l = self.spec.layout();
        params
            .iter()
            .enumerate()
            .map(|(k, p)| SteppedLayer {
                w: weights[k].view(),
                r: l.recurrent
                    .filter(|_| k < self.spec.hidden.len())
                    .map(|r| weights[r + k].view()),
                delays: delays.map(|d| d[k].view()),
                params: p,
                dt: self.dt,
            })
            .collect()
    }

    /// The input spikes of one sample per step (several in one step collapse to one, as
    /// [`eventprop_data::rasterize`] does; events outside the grid are dropped).
    fn input_steps(&self, input: &[Spike]) -> Vec<Vec<u32>> {
        let mut steps = vec![Vec::new(); self.steps];
        for s in input {
            let t = (s.time / self.dt).round();
            if t >= 0.0 && (t as usize) < self.steps && (s.neuron as usize) < self.spec.n_in {
                steps[t as usize].push(s.neuron);
            }
        }
        for v in &mut steps {
            v.sort_unstable();
            v.dedup();
        }
        steps
    }

    fn forward_sample(&self, layers: &[SteppedLayer], input: &[Spike]) -> Result<SampleRun> {
        let mut spikes = vec![self.input_steps(input)];
        let mut runs = Vec::with_capacity(layers.len());
        for (k, layer) in layers.iter().enumerate() {
            let run = layer.forward(&spikes[k])?;
            spikes.push(run.spikes.clone());
            runs.push(run);
        }
        Ok(SampleRun { spikes, runs })
    }

    /// The output current `y[t] = Σ W z[t - D]` of the integrator readout, `(T, K)`.
    fn readout_input(
        &self,
        w: ArrayView2<'_, f64>,
        d: Option<ArrayView2<'_, f64>>,
        z: &[Vec<u32>],
    ) -> Array2<f64> {
        let (k_out, _) = w.dim();
        let delay = delay_steps(d, self.dt, w.dim());
        let mut y = Array2::zeros((self.steps, k_out));
        for (t, spikes) in z.iter().enumerate() {
            for &j in spikes {
                for k in 0..k_out {
                    let ta = t + delay[[k, j as usize]];
                    if ta < self.steps {
                        y[[ta, k]] += w[[k, j as usize]];
                    }
                }
            }
        }
        y
    }
}

/// Spike lists as a dense `(T, N)` block of a `(T, B, N)` tensor.
fn densify(z: &[Vec<u32>], into: &mut ndarray::ArrayViewMut2<'_, f64>) {
    for (t, s) in z.iter().enumerate() {
        for &n in s {
            into[[t, n as usize]] = 1.0;
        }
    }
}

impl Engine for SteppedLearnEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Stepped
    }

    fn spec(&self) -> &NetworkSpec {
        &self.spec
    }

    fn run_shared(
        &self,
        weights: &[Array2<f64>],
        inputs: &[&[Spike]],
        labels: &[usize],
        pass: Pass,
        counts: &dyn BatchCounts,
    ) -> Result<BatchOutcome> {
        self.spec.check_weights(weights)?;
        let params = self.spec.neuron_params(weights);
        let delays = self.spec.delays(weights);
        let layers = self.layers(weights, &params, delays.as_deref());
        let n_hidden = self.spec.hidden.len();
        let b = inputs.len();
        let runs: Vec<SampleRun> = inputs
            .par_iter()
            .map(|x| self.forward_sample(&layers, x))
            .collect::<Result<_>>()?;
        let k_out = self.spec.n_out;
        let integrator = match self.spec.readout {
            Readout::Integrator { tau_syn, tau_mem } => Some(LeakyIntegrator {
                tau_syn,
                tau_mem,
                leak: self.spec.lif.leak,
                dt: self.dt,
            }),
            Readout::Spiking(_) => None,
        };
        // The output tensor (T, B, K): readout membrane or output spikes.
        let out = match &integrator {
            Some(li) => {
                let mut y = Array3::zeros((self.steps, b, k_out));
                let w_out = weights[n_hidden].view();
                let d_out = delays.as_ref().map(|d| d[n_hidden].view());
                for (bi, r) in runs.iter().enumerate() {
                    let yb = self.readout_input(w_out, d_out, &r.spikes[n_hidden]);
                    y.index_axis_mut(Axis(1), bi).assign(&yb);
                }
                li.forward(y.view())
            }
            None => {
                let mut z = Array3::zeros((self.steps, b, k_out));
                for (bi, r) in runs.iter().enumerate() {
                    densify(&r.spikes[n_hidden + 1], &mut z.index_axis_mut(Axis(1), bi));
                }
                z
            }
        };
        let lo = loss::evaluate(&self.loss, out.view(), labels, self.dt)?;
        let hidden_count: usize = runs
            .iter()
            .flat_map(|r| r.spikes[1..=n_hidden].iter())
            .map(|s| s.iter().flatten().count())
            .sum();
        let silent_outputs = integrator.is_none().then(|| {
            runs.iter()
                .filter(|r| {
                    let mut seen = vec![false; k_out];
                    r.spikes[n_hidden + 1]
                        .iter()
                        .flatten()
                        .for_each(|&k| seen[k as usize] = true);
                    seen.iter().any(|s| !s)
                })
                .count()
        });
        let mut batch_loss = lo.loss;
        // Rate regulariser on the hidden spike counts (as the plain stepped engine: a
        // training term, not part of the evaluation loss).
        let rate_grads: Option<Vec<Array3<f64>>> =
            (pass == Pass::Train && (self.rate_reg > 0.0 || self.targets.is_active())).then(|| {
                let z: Vec<Array3<f64>> = (1..=n_hidden)
                    .map(|k| {
                        let mut z = Array3::zeros((self.steps, b, self.spec.hidden[k - 1]));
                        for (bi, r) in runs.iter().enumerate() {
                            densify(&r.spikes[k], &mut z.index_axis_mut(Axis(1), bi));
                        }
                        z
                    })
                    .collect();
                let mut target_terms = if self.targets.is_active() {
                    let views: Vec<_> = z.iter().map(|a| a.view()).collect();
                    loss::rate_targets_dense(&views, &self.targets, counts).into_iter()
                } else {
                    Vec::new().into_iter()
                };
                z.iter()
                    .map(|z| {
                        let mut g = if self.rate_reg > 0.0 {
                            let (lr, g) = loss::rate_regularizer(z.view(), self.rate_reg);
                            batch_loss += lr;
                            g
                        } else {
                            Array3::zeros(z.dim())
                        };
                        if let Some((lt, gt)) = target_terms.next() {
                            batch_loss += lt;
                            g += &gt;
                        }
                        g
                    })
                    .collect()
            });
        let grads = if pass == Pass::Train {
            let grad_y = integrator.as_ref().map(|li| li.backward(lo.grad.view()));
            let per_sample: Vec<NetworkGrads> = runs
                .par_iter()
                .enumerate()
                .map(|(bi, r)| {
                    self.backward_sample(
                        weights,
                        delays.as_deref(),
                        &layers,
                        r,
                        bi,
                        &lo.grad,
                        grad_y.as_ref(),
                        rate_grads.as_deref(),
                    )
                })
                .collect::<Result<_>>()?;
            let mut sum = NetworkGrads::default();
            for g in per_sample {
                add_grads(&mut sum, g);
            }
            Some(self.spec.tensor_grads(&params, sum))
        } else {
            None
        };
        Ok(BatchOutcome {
            loss_sum: batch_loss * b as f64,
            correct: lo.correct,
            predictions: lo.predictions,
            samples: b,
            hidden_spikes: hidden_count as f64,
            silent_outputs,
            grads,
            chip: None,
        })
    }

    fn hidden_spikes(&self, weights: &[Array2<f64>], input: &[Spike]) -> Result<Vec<Vec<Spike>>> {
        self.spec.check_weights(weights)?;
        let params = self.spec.neuron_params(weights);
        let delays = self.spec.delays(weights);
        let layers = self.layers(weights, &params, delays.as_deref());
        let r = self.forward_sample(&layers, input)?;
        Ok(r.spikes[1..=self.spec.hidden.len()]
            .iter()
            .map(|z| {
                z.iter()
                    .enumerate()
                    .flat_map(|(t, s)| {
                        s.iter().map(move |&n| Spike {
                            time: t as f64 * self.dt,
                            neuron: n,
                        })
                    })
                    .collect()
            })
            .collect())
    }

    /// The layers' parameters and delays are resolved once for the batch; each sample runs
    /// [`Engine::hidden_spikes`]'s forward of the hidden layers (not the spiking output
    /// layer, which the counts do not need), samples in parallel.
    fn hidden_counts(
        &self,
        weights: &[Array2<f64>],
        inputs: &[&[Spike]],
    ) -> Result<Vec<Vec<usize>>> {
        self.spec.check_weights(weights)?;
        let params = self.spec.neuron_params(weights);
        let delays = self.spec.delays(weights);
        let layers = self.layers(weights, &params, delays.as_deref());
        let hidden = &layers[..self.spec.hidden.len()];
        inputs
            .par_iter()
            .map(|x| {
                let r = self.forward_sample(hidden, x)?;
                Ok(r.spikes[1..]
                    .iter()
                    .map(|z| z.iter().map(Vec::len).sum())
                    .collect())
            })
            .collect()
    }
}

impl SteppedLearnEngine {
    /// One sample's gradients: the output part (readout or spiking output layer), then the
    /// hidden layers top down.
    #[allow(clippy::too_many_arguments)]
    fn backward_sample(
        &self,
        weights: &[Array2<f64>],
        delays: Option<&[Array2<f64>]>,
        layers: &[SteppedLayer],
        r: &SampleRun,
        bi: usize,
        grad_out: &Array3<f64>,
        grad_y: Option<&Array3<f64>>,
        rate: Option<&[Array3<f64>]>,
    ) -> Result<NetworkGrads> {
        let n_hidden = self.spec.hidden.len();
        let l = self.spec.layout();
        let mut g = NetworkGrads {
            weights: vec![Array2::zeros((0, 0)); n_hidden + 1],
            recurrent: vec![
                Array2::zeros((0, 0));
                if l.recurrent.is_some() { n_hidden } else { 0 }
            ],
            delays: vec![Array2::zeros((0, 0)); if l.delays.is_some() { n_hidden + 1 } else { 0 }],
            params: Vec::new(),
        };
        // The spike gradient of the top hidden layer and the output part's gradients.
        let mut gs = match grad_y {
            Some(gy) => {
                // Integrator readout: y[t + D] gets W z[t]; the seed passes dL/dy both to
                // the weight gradient and (through Wᵀ) to the hidden spikes.
                let gy = gy.index_axis(Axis(1), bi);
                let w = weights[n_hidden].view();
                let d = delays.map(|d| d[n_hidden].view());
                let (k_out, n_in) = w.dim();
                let mut gw = Array2::zeros((k_out, n_in));
                let mut gd = Array2::zeros((k_out, n_in));
                let mut gz = Array2::zeros((self.steps, n_in));
                let delay = delay_steps(d, self.dt, (k_out, n_in));
                for (t, spikes) in r.spikes[n_hidden].iter().enumerate() {
                    for &j in spikes {
                        let j = j as usize;
                        for k in 0..k_out {
                            let ta = t + delay[[k, j]];
                            if ta < self.steps {
                                gw[[k, j]] += gy[[ta, k]];
                                gz[[t, j]] += w[[k, j]] * gy[[ta, k]];
                                gd[[k, j]] -= w[[k, j]] * gy[[ta, k]];
                            }
                        }
                    }
                }
                g.weights[n_hidden] = gw;
                if l.delays.is_some() {
                    g.delays[n_hidden] = gd;
                }
                gz
            }
            None => {
                let top = &layers[n_hidden];
                let gl = top.backward(
                    &r.spikes[n_hidden],
                    &r.runs[n_hidden],
                    grad_out.index_axis(Axis(1), bi),
                )?;
                g.weights[n_hidden] = gl.w;
                if let Some(d) = gl.delays {
                    g.delays[n_hidden] = d;
                }
                g.params.push(gl.params);
                gl.input
            }
        };
        let mut hidden_params = Vec::with_capacity(n_hidden);
        for k in (0..n_hidden).rev() {
            if let Some(rate) = rate {
                gs += &rate[k].index_axis(Axis(1), bi);
            }
            let gl = layers[k].backward(&r.spikes[k], &r.runs[k], gs.view())?;
            g.weights[k] = gl.w;
            if let Some(rr) = gl.r {
                g.recurrent[k] = rr;
            }
            if let Some(d) = gl.delays {
                g.delays[k] = d;
            }
            hidden_params.push(gl.params);
            gs = gl.input;
        }
        hidden_params.reverse();
        hidden_params.append(&mut g.params);
        g.params = hidden_params;
        Ok(g)
    }
}

/// `sum += g` (the first sample's gradients are taken as they are).
fn add_grads(sum: &mut NetworkGrads, g: NetworkGrads) {
    if sum.weights.is_empty() {
        *sum = g;
        return;
    }
    for (a, b) in sum.weights.iter_mut().zip(&g.weights) {
        *a += b;
    }
    for (a, b) in sum.recurrent.iter_mut().zip(&g.recurrent) {
        *a += b;
    }
    for (a, b) in sum.delays.iter_mut().zip(&g.delays) {
        *a += b;
    }
    for (a, b) in sum.params.iter_mut().zip(&g.params) {
        for ((_, x), (_, y)) in a.fields_mut().into_iter().zip(b.fields()) {
            for (x, y) in x.iter_mut().zip(y) {
                *x += y;
            }
        }
    }
}

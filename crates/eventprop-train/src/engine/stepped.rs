//! The time-stepped engine: the seed's EventProp discretization on a grid of `dt`.
//!
//! Two implementations of the same numbers ([`SteppedPath`]):
//!
//! * **fused** (default): the hidden layers are [`eventprop_core::fused::FusedLif`] layers fed
//!   by event lists — memory O(spikes), no dense `(T, B, N)` array; the output layer (a few
//!   neurons) runs densely as in the seed path, and its gradient reaches the last hidden
//!   layer at that layer's spikes only;
//! * **seed**: [`eventprop_core::stepped::network::SteppedNetwork`] on the seed function's dense arrays, inputs
//!   put on the grid by [`eventprop_data::rasterize`] (the reference; the chip engine's
//!   backward ran on it before it moved to the fused path's `hw_data` forward,
//!   [`SteppedEngine::run_hw`]).
//!
//! Both give the same spikes, losses and predictions; gradients agree to rounding (the
//! fused path sums the weight gradient in another order), checked to ≤ 1e-12 relative in
//! `tests/it/stepped_fused.rs`.
//!
//! With recurrent hidden layers (`[learn] recurrent`) the fused path runs them with
//! [`FusedLif::forward_recurrent`] / [`FusedLif::backward_recurrent`], and with trained
//! thresholds or time constants (`[learn] threshold`, `[learn] taus`, integrator readout)
//! it sets each batch's parameters ([`FusedLif::set_params`]) and reads their gradients
//! ([`FusedLif::grad_threshold`], [`FusedLif::grad_tau_mem`], [`FusedLif::grad_tau_syn`]);
//! the seed path has none of them and refuses them. Their reference is the dense
//! [`super::stepped_learn::SteppedLearnEngine`], checked in `tests/it/stepped_recurrent.rs`.

use std::sync::Mutex;

use eventprop_core::fused::{EventBatch, EventRow, FusedLif};
use eventprop_core::{EventPropNeuron, HwData, NeuronContext};
use ndarray::{Array2, Array3, Axis};

use super::{BatchOutcome, Engine, EngineKind, EngineSettings, Pass};
use crate::error::{Error, Result};
use crate::loss::{self, BatchCounts, LocalCounts, LossKind, LossOutput, RateTargets};
use eventprop_core::spec::{NetworkGrads, NetworkSpec, Readout};
use eventprop_core::stepped::network::{HwLayer, SteppedNetwork, Trace};
use eventprop_core::stepped::readout::LeakyIntegrator;
use eventprop_core::{LifParams, NeuronParams, Param};
use eventprop_data::{rasterize, Spike};

/// The stepped engine in the registry ([`super::EngineKind::Stepped`]): the common preset,
/// the fused path (for delays, and a spiking output's trained taus or thresholds, the dense
/// layers of [`super::stepped_learn::SteppedLearnEngine`]).
pub(super) const REGISTRATION: super::Registration = super::Registration {
    name: "stepped",
    reads: &["stepped", "encoding.dt", "events.dt", "loss.reg", "learn"],
    preset: "",
    events_preset: "",
    loss_defaults: |_| None,
    memory,
    build: |s| {
        // Recurrence and trained hidden thresholds and taus run on the fused layers; delays
        // and a spiking output's trained taus or thresholds on the dense stepped layers.
        Ok(if !s.network.fused_stepped() {
            Box::new(super::stepped_learn::SteppedLearnEngine::new(s)?)
        } else {
            Box::new(SteppedEngine::new(s)?)
        })
    },
};

/// Peak bytes of the stepped engine's batch state (measured model, DESIGN.md "Memory
/// estimate"): on the fused path `steps × max(batch_size, eval_batch_size) × (48 B × N_out
/// + 12 B × Σ N_hidden)` — hidden spikes are event lists (12 B a spike, at most one per
/// neuron and step: a bound, not a guess), the output layer is dense (measured 3.75
/// values per output neuron and step); on the dense layers the model of
/// [`super::stepped_learn::dense_memory`].
fn memory(s: &EngineSettings) -> (f64, String) {
    if !s.network.fused_stepped() {
        return super::stepped_learn::dense_memory(s);
    }
    let spec = &s.network;
    let steps = s.steps as f64;
    let (rows, which) = if s.batch_size >= s.eval_batch_size {
        (s.batch_size, "batch_size")
    } else {
        (s.eval_batch_size, "eval_batch_size")
    };
    let hidden = spec.hidden.iter().sum::<usize>() as f64;
    let per = steps * (48.0 * spec.n_out as f64 + 12.0 * hidden);
    (
        per * rows as f64,
        format!(
            "the time grid: {steps} steps (t_sim / dt) × {rows} samples ({which}) × ({} output neurons × 48 B + {hidden} hidden neurons × 12 B for at most one spike a step)",
            spec.n_out
        ),
    )
}

/// Which implementation the stepped engine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SteppedPath {
    /// Fused event-driven hidden layers, O(spikes) memory (the default).
    #[default]
    Fused,
    /// The seed function on dense `(T, B, N)` arrays.
    Seed,
}

/// Reusable fused layers (one set per batch in flight).
#[derive(Debug, Default)]
struct LayerPool(Mutex<Vec<Vec<FusedLif<f64>>>>);

impl Clone for LayerPool {
    /// A clone starts with an empty pool (the buffers are a cache).
    fn clone(&self) -> Self {
        Self::default()
    }
}

/// Time-stepped simulation with the EventProp adjoint of the seed function.
#[derive(Debug, Clone)]
pub struct SteppedEngine {
    net: SteppedNetwork,
    steps: usize,
    loss: LossKind,
    rate_reg: f64,
    targets: RateTargets,
    path: SteppedPath,
    pool: LayerPool,
}

impl SteppedEngine {
    /// The engine of `config` (network, `dt`, number of steps, loss), on the fused path —
    /// for a chip config (`engine = "chip"`) too: the chip engine's backward runs on this
    /// path ([`SteppedEngine::run_hw`]), so that the two compare bit for bit.
    ///
    /// # Errors
    /// [`Error::Invalid`] for settings this engine does not have (the silent-label term of
    /// the first-spike loss) or an invalid network.
    pub fn new(config: &EngineSettings) -> Result<Self> {
        config.loss.refuse_silent_label()?;
        let spec = config.network.clone();
        spec.validate()?;
        if !spec.fused_stepped() {
            return Err(Error::invalid(
                "learn",
                "recurrent weights, or thresholds and taus with the integrator readout, on \
                 the fused stepped engine (delays and a spiking output's taus or thresholds \
                 run on the dense stepped layers)",
                format!("{:?}", spec.learn),
            ));
        }
        if spec.learn.any()
            && config.stepped.discretization != eventprop_core::Discretization::Corrected
        {
            return Err(Error::invalid(
                "stepped.discretization",
                "corrected with [learn] on the stepped engine (its layers implement the \
                 corrected adjoint)",
                config.stepped.discretization,
            ));
        }
        Ok(Self {
            net: SteppedNetwork {
                spec,
                dt: config.dt,
                discretization: config.stepped.discretization,
            },
            steps: config.steps,
            loss: config.loss,
            rate_reg: config.stepped.rate_reg,
            targets: config.reg,
            path: SteppedPath::Fused,
            pool: LayerPool::default(),
        })
    }

    /// The engine of `config` on an explicit path.
    ///
    /// # Errors
    /// As [`SteppedEngine::new`]; [`Error::Invalid`] naming `path` for the seed path with
    /// recurrent layers or trained thresholds (the seed function has neither; their dense
    /// reference is [`super::stepped_learn::SteppedLearnEngine`]).
    pub fn with_path(config: &EngineSettings, path: SteppedPath) -> Result<Self> {
        let engine = Self::new(config)?;
        if path == SteppedPath::Seed && engine.net.spec.learn.any() {
            return Err(Error::invalid(
                "path",
                "fused with [learn] extras (the seed function has no recurrence and no \
                 trained thresholds)",
                format!("{path:?}"),
            ));
        }
        Ok(Self { path, ..engine })
    }

    /// The recurrent weights of hidden layer `k` among `weights` (all tensors), if the
    /// layers are recurrent.
    fn recurrent<'a>(&self, weights: &'a [Array2<f64>], k: usize) -> Option<&'a Array2<f64>> {
        self.net.spec.layout().recurrent.map(|r| &weights[r + k])
    }

    /// The path this engine runs.
    pub fn path(&self) -> SteppedPath {
        self.path
    }

    /// Fused layers for one batch: from the pool, or new.
    fn take_layers(&self) -> Result<Vec<FusedLif<f64>>> {
        if let Some(layers) = self.pool.0.lock().ok().and_then(|mut p| p.pop()) {
            return Ok(layers);
        }
        let spec = &self.net.spec;
        let params = spec.lif.params::<f64>();
        spec.hidden
            .iter()
            .map(|&n| {
                Ok(FusedLif::new(
                    &params,
                    n,
                    self.net.dt,
                    self.net.discretization,
                )?)
            })
            .collect()
    }

    fn put_layers(&self, layers: Vec<FusedLif<f64>>) {
        if let Ok(mut p) = self.pool.0.lock() {
            p.push(layers);
        }
    }
}

/// A chip's recording on the grid, as the fused path takes it ([`SteppedEngine::run_hw`]).
#[derive(Debug, Clone, Copy)]
pub struct HwEvents<'a> {
    /// The recorded spikes of each hidden layer (events of value 1, `B` rows of `T`
    /// steps).
    pub hidden: &'a [EventBatch<f64>],
    /// The output layer: spikes `(T, B, K)` (zeros for the integrator) and membrane.
    pub output: &'a HwLayer<f64>,
}

impl SteppedEngine {
    /// A batch on the fused path with the forward observables of a chip (the seed
    /// function's `hw_data`, [`FusedLif::forward_hw`]): each hidden layer returns its
    /// recorded spikes, its current recomputed from its input (the input spikes, or the
    /// recorded spikes of the layer below) through the software `weights`; the loss reads
    /// the recorded output. The backward is the fused adjoint, as for software batches —
    /// so a recording of this engine's own forward gives its numbers bit for bit.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming `hw_data` for a layer count other than the hidden layers';
    /// the core's shape errors naming `hw_spikes` / `hw_membrane`; as [`Engine::run`].
    pub fn run_hw(
        &self,
        weights: &[Array2<f64>],
        inputs: &[&[Spike]],
        labels: &[usize],
        pass: Pass,
        hw: &HwEvents<'_>,
    ) -> Result<BatchOutcome> {
        let n_hidden = self.net.spec.hidden.len();
        if hw.hidden.len() != n_hidden {
            return Err(Error::invalid(
                "hw_data",
                format!("{n_hidden} hidden layers"),
                hw.hidden.len(),
            ));
        }
        let mut layers = self.take_layers()?;
        let out = self.fused_run(
            &mut layers,
            weights,
            inputs,
            labels,
            pass,
            Some(hw),
            &LocalCounts,
        );
        self.put_layers(layers);
        out
    }
}

impl Engine for SteppedEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Stepped
    }

    fn spec(&self) -> &NetworkSpec {
        &self.net.spec
    }

    fn run_shared(
        &self,
        weights: &[Array2<f64>],
        inputs: &[&[Spike]],
        labels: &[usize],
        pass: Pass,
        counts: &dyn BatchCounts,
    ) -> Result<BatchOutcome> {
        if self.path == SteppedPath::Fused {
            let mut layers = self.take_layers()?;
            let out = self.fused_run(&mut layers, weights, inputs, labels, pass, None, counts);
            self.put_layers(layers);
            return out;
        }
        let spec = &self.net.spec;
        let (x, _) = rasterize(inputs, spec.n_in, self.steps, self.net.dt);
        let trace = self.net.forward(weights, x.view())?;
        outcome(
            &self.net,
            self.loss,
            self.rate_reg,
            &self.targets,
            counts,
            weights,
            &trace,
            labels,
            pass,
        )
    }

    fn hidden_spikes(&self, weights: &[Array2<f64>], input: &[Spike]) -> Result<Vec<Vec<Spike>>> {
        if self.path == SteppedPath::Fused {
            let mut layers = self.take_layers()?;
            let events = input_events(&[input], self.net.spec.n_in, self.steps, self.net.dt);
            let out = self
                .fused_forward(&mut layers, weights, &events, None)
                .map(|_| {
                    layers
                        .iter()
                        .map(|l| {
                            let row = &l.spikes().rows()[0];
                            row.event_steps()
                                .zip(row.indices())
                                .map(|(t, &n)| Spike {
                                    time: t as f64 * self.net.dt,
                                    neuron: n,
                                })
                                .collect()
                        })
                        .collect()
                });
            self.put_layers(layers);
            return out;
        }
        let (x, _) = rasterize(&[input], self.net.spec.n_in, self.steps, self.net.dt);
        let trace = self.net.forward(weights, x.view())?;
        Ok((0..trace.n_hidden())
            .map(|k| {
                let z = trace.hidden_spikes(k);
                let mut events = Vec::new();
                for (t, row) in z.outer_iter().enumerate() {
                    for (n, &v) in row.row(0).iter().enumerate() {
                        if v != 0.0 {
                            events.push(Spike {
                                time: t as f64 * self.net.dt,
                                neuron: n as u32,
                            });
                        }
                    }
                }
                events
            })
            .collect())
    }

    fn hidden_counts(
        &self,
        weights: &[Array2<f64>],
        inputs: &[&[Spike]],
    ) -> Result<Vec<Vec<usize>>> {
        self.counts(weights, inputs)
    }
}

impl SteppedEngine {
    /// [`Engine::hidden_counts`]: on the fused path one batched forward of the hidden
    /// layers (rows are independent in [`FusedLif`], so each row's spikes are those of
    /// its sample alone; the output layer, which the counts do not need, is not run); on
    /// the seed path per sample.
    fn counts(&self, weights: &[Array2<f64>], inputs: &[&[Spike]]) -> Result<Vec<Vec<usize>>> {
        if self.path != SteppedPath::Fused {
            return super::per_sample_counts(self, weights, inputs);
        }
        let mut layers = self.take_layers()?;
        let events = input_events(inputs, self.net.spec.n_in, self.steps, self.net.dt);
        let out = self
            .fused_hidden(&mut layers, weights, &events, None)
            .map(|()| {
                (0..inputs.len())
                    .map(|b| layers.iter().map(|l| l.spikes().rows()[b].len()).collect())
                    .collect()
            });
        self.put_layers(layers);
        out
    }
}

/// Loss, accuracy and (for [`Pass::Train`]) gradients of a forward `trace` of `net`: shared
/// by the stepped engine and the hardware-in-the-loop engine ([`super::chip`]), whose
/// trace comes from a chip's recording.
#[allow(clippy::too_many_arguments)]
pub(crate) fn outcome(
    net: &SteppedNetwork,
    loss_kind: LossKind,
    rate_reg: f64,
    targets: &RateTargets,
    counts: &dyn BatchCounts,
    weights: &[Array2<f64>],
    trace: &Trace<f64>,
    labels: &[usize],
    pass: Pass,
) -> Result<BatchOutcome> {
    let spec = &net.spec;
    let out = loss::evaluate(&loss_kind, trace.output.view(), labels, net.dt)?;
    let silent_outputs = matches!(spec.readout, Readout::Spiking(_)).then(|| {
        trace
            .output
            .sum_axis(Axis(0))
            .outer_iter()
            .filter(|row| row.iter().any(|&c| c == 0.0))
            .count()
    });
    let b = labels.len();
    let mut batch_loss = out.loss;
    let grads = if pass == Pass::Train {
        let mut target_terms = if targets.is_active() {
            let z: Vec<_> = (0..trace.n_hidden())
                .map(|k| trace.hidden_spikes(k).view())
                .collect();
            loss::rate_targets_dense(&z, targets, counts).into_iter()
        } else {
            Vec::new().into_iter()
        };
        let extra = (rate_reg > 0.0 || targets.is_active()).then(|| {
            (0..trace.n_hidden())
                .map(|k| {
                    let z = trace.hidden_spikes(k);
                    let mut g = if rate_reg > 0.0 {
                        let (l, g) = loss::rate_regularizer(z.view(), rate_reg);
                        batch_loss += l;
                        g
                    } else {
                        Array3::zeros(z.dim())
                    };
                    if let Some((l, gt)) = target_terms.next() {
                        batch_loss += l;
                        g += &gt;
                    }
                    g
                })
                .collect::<Vec<_>>()
        });
        Some(
            net.backward(weights, trace, out.grad.view(), extra.as_deref())?
                .weights,
        )
    } else {
        None
    };
    Ok(BatchOutcome {
        loss_sum: batch_loss * b as f64,
        correct: out.correct,
        predictions: out.predictions,
        samples: b,
        hidden_spikes: trace.total_hidden_spikes(),
        silent_outputs,
        grads,
        chip: None,
    })
}

/// The input events of a batch on the grid, as [`rasterize`] puts them: a spike at time `t`
/// of channel `c` is an event of step `round(t / dt)`; several of one channel in one step
/// collapse to one; spikes at or after step `steps`, before 0, and channels `>= n_in` are
/// dropped.
pub fn input_events(samples: &[&[Spike]], n_in: usize, steps: usize, dt: f64) -> EventBatch<f64> {
    let mut keys: Vec<(usize, u32)> = Vec::new();
    let rows = samples
        .iter()
        .map(|events| {
            keys.clear();
            keys.extend(events.iter().filter_map(|s| {
                let step = (s.time / dt).round();
                let c = s.neuron as usize;
                (step >= 0.0 && (step as usize) < steps && c < n_in)
                    .then_some((step as usize, s.neuron))
            }));
            keys.sort_unstable();
            keys.dedup();
            let mut row = EventRow::new();
            let mut p = 0;
            for t in 0..steps {
                while p < keys.len() && keys[p].0 == t {
                    row.push(keys[p].1, 1.0);
                    p += 1;
                }
                row.end_step();
            }
            row
        })
        .collect();
    EventBatch::from_rows(steps, n_in, rows).expect("events built on the grid")
}

/// What the fused forward leaves besides the layers' spikes: the output layer's state.
struct FusedOutput {
    /// Spiking output context (for [`Readout::Spiking`]).
    out_ctx: Option<NeuronContext<f64>>,
    /// The output `(T, B, K)`: readout membrane or output spikes.
    output: Array3<f64>,
}

impl SteppedEngine {
    fn integrator(&self, tau_syn: f64, tau_mem: f64) -> LeakyIntegrator {
        LeakyIntegrator {
            tau_syn,
            tau_mem,
            leak: self.net.spec.lif.leak,
            dt: self.net.dt,
        }
    }

    /// Forward of the fused path's hidden layers on events (their spikes are left in
    /// `layers`), after the checks of the weights — the output weight's too, so that a
    /// batch fails here exactly when [`SteppedEngine::fused_forward`] fails before its
    /// output layer.
    fn fused_hidden(
        &self,
        layers: &mut [FusedLif<f64>],
        weights: &[Array2<f64>],
        input: &EventBatch<f64>,
        hw: Option<&HwEvents<'_>>,
    ) -> Result<()> {
        let spec = &self.net.spec;
        let n_hidden = spec.hidden.len();
        if spec.learn.any() {
            if hw.is_some() {
                return Err(Error::invalid(
                    "hw_data",
                    "none with [learn] extras (the chip engine has none)",
                    "a recording",
                ));
            }
            spec.check_weights(weights)?;
            if spec.learn.threshold || spec.learn.taus {
                // This batch's trained thresholds and time constants (per neuron).
                for (layer, p) in layers.iter_mut().zip(spec.neuron_params(weights)) {
                    layer.set_tau_grads(spec.learn.taus);
                    layer.set_params(&LifParams {
                        leak: Param::PerNeuron(p.leak),
                        reset: Param::PerNeuron(p.reset),
                        threshold: Param::PerNeuron(p.threshold),
                        tau_syn: Param::PerNeuron(p.tau_syn),
                        tau_mem: Param::PerNeuron(p.tau_mem),
                    })?;
                }
            }
        } else {
            spec.check_weight_dims(weights.iter().map(|w| w.dim()))?;
        }
        for (k, w) in weights[..n_hidden].iter().enumerate() {
            let (below, rest) = layers.split_at_mut(k);
            let x = below.last().map_or(input, |l| l.spikes());
            match (hw, self.recurrent(weights, k)) {
                (None, None) => rest[0].forward(x, w.view())?,
                (None, Some(r)) => rest[0].forward_recurrent(x, w.view(), r.view())?,
                (Some(h), _) => rest[0].forward_hw(x, w.view(), &h.hidden[k])?,
            };
        }
        if let Some(bad) = weights[n_hidden].iter().find(|v| !v.is_finite()) {
            return Err(Error::invalid("weight", "finite values", bad));
        }
        Ok(())
    }

    /// Forward of the fused path: hidden layers on events, the output layer dense.
    fn fused_forward(
        &self,
        layers: &mut [FusedLif<f64>],
        weights: &[Array2<f64>],
        input: &EventBatch<f64>,
        hw: Option<&HwEvents<'_>>,
    ) -> Result<FusedOutput> {
        self.fused_hidden(layers, weights, input, hw)?;
        let spec = &self.net.spec;
        let w_out = &weights[spec.hidden.len()];
        let last = layers.last().map_or(input, |l| l.spikes());
        // The seed's event-driven synapse: y[t, b] = Σ_events x W[:, n], in event order.
        let k_out = spec.n_out;
        let wt = w_out.t().as_standard_layout().into_owned();
        let wt = wt.as_slice().expect("standard layout");
        let batch = last.batch();
        let mut y = Array3::<f64>::zeros((self.steps, batch, k_out));
        let ys = y.as_slice_mut().expect("owned");
        for (b, row) in last.rows().iter().enumerate() {
            for ((t, &n), &x) in row.event_steps().zip(row.indices()).zip(row.values()) {
                let w = &wt[n as usize * k_out..(n as usize + 1) * k_out];
                let at = (t * batch + b) * k_out;
                for (y, &w) in ys[at..at + k_out].iter_mut().zip(w) {
                    *y += x * w;
                }
            }
        }
        let out_hw = hw.map(|h| HwData {
            spikes: h.output.spikes.view(),
            membrane: h.output.membrane.view(),
            current: None,
        });
        Ok(match spec.readout {
            Readout::Spiking(l) => {
                let ctx = EventPropNeuron {
                    params: l.params(),
                    dt: self.net.dt,
                    discretization: self.net.discretization,
                }
                .forward(y.view(), out_hw)?;
                FusedOutput {
                    output: ctx.output().spikes.clone(),
                    out_ctx: Some(ctx),
                }
            }
            Readout::Integrator { tau_syn, tau_mem } => FusedOutput {
                output: match out_hw {
                    None => self.integrator(tau_syn, tau_mem).forward(y.view()),
                    // the seed path's check ([`SteppedNetwork::forward_hw`])
                    Some(h) => {
                        if h.membrane.dim() != y.dim() {
                            return Err(Error::invalid(
                                "hw_membrane",
                                format!("output membrane of shape {:?}", y.dim()),
                                format!("{:?}", h.membrane.dim()),
                            ));
                        }
                        if let Some(bad) = h.membrane.iter().find(|v| !v.is_finite()) {
                            return Err(Error::invalid("hw_membrane", "finite values", bad));
                        }
                        h.membrane.as_standard_layout().into_owned()
                    }
                },
                out_ctx: None,
            },
        })
    }

    /// Loss, accuracy and gradients on the fused path (the numbers of [`outcome`]).
    #[allow(clippy::too_many_arguments)]
    fn fused_run(
        &self,
        layers: &mut [FusedLif<f64>],
        weights: &[Array2<f64>],
        inputs: &[&[Spike]],
        labels: &[usize],
        pass: Pass,
        hw: Option<&HwEvents<'_>>,
        counts: &dyn BatchCounts,
    ) -> Result<BatchOutcome> {
        let spec = &self.net.spec;
        let input = input_events(inputs, spec.n_in, self.steps, self.net.dt);
        let fwd = self.fused_forward(layers, weights, &input, hw)?;
        let out: LossOutput<f64> =
            loss::evaluate(&self.loss, fwd.output.view(), labels, self.net.dt)?;
        let silent_outputs = matches!(spec.readout, Readout::Spiking(_)).then(|| {
            fwd.output
                .sum_axis(Axis(0))
                .outer_iter()
                .filter(|row| row.iter().any(|&c| c == 0.0))
                .count()
        });
        let b = labels.len();
        let hidden_spikes: f64 = layers.iter().map(|l| l.spikes().len() as f64).sum();
        let mut batch_loss = out.loss;
        let grads = if pass == Pass::Train {
            if self.rate_reg > 0.0 {
                for l in layers.iter() {
                    batch_loss += rate_loss(l.spikes(), self.rate_reg);
                }
            }
            let mut target_grads = Vec::new();
            if self.targets.is_active() {
                let c: Vec<Array2<f64>> = layers.iter().map(|l| spike_counts(l.spikes())).collect();
                let views: Vec<_> = c.iter().map(|a| a.view()).collect();
                for (l, g) in loss::rate_targets_of_layers(&views, &self.targets, counts) {
                    batch_loss += l;
                    target_grads.push(g);
                }
            }
            Some(self.fused_backward(
                layers,
                weights,
                &input,
                &fwd,
                out.grad.view(),
                &target_grads,
            )?)
        } else {
            None
        };
        Ok(BatchOutcome {
            loss_sum: batch_loss * b as f64,
            correct: out.correct,
            predictions: out.predictions,
            samples: b,
            hidden_spikes,
            silent_outputs,
            grads,
            chip: None,
        })
    }

    /// Backward of the fused path from `grad_output` `(T, B, K)`.
    fn fused_backward(
        &self,
        layers: &mut [FusedLif<f64>],
        weights: &[Array2<f64>],
        input: &EventBatch<f64>,
        fwd: &FusedOutput,
        grad_output: ndarray::ArrayView3<'_, f64>,
        target_grads: &[Array2<f64>],
    ) -> Result<Vec<Array2<f64>>> {
        let spec = &self.net.spec;
        let n_hidden = spec.hidden.len();
        // The stacked gradient (g0, g1) at the output synapse (docs/spec.md §3).
        let (g0, g1) = match (spec.readout, &fwd.out_ctx) {
            (Readout::Integrator { tau_syn, tau_mem }, None) => {
                let g = self.integrator(tau_syn, tau_mem).backward(grad_output);
                (g.clone(), g)
            }
            (Readout::Spiking(_), Some(ctx)) => {
                let g = ctx.backward(grad_output, None, None)?.grad_input;
                (
                    g.index_axis(Axis(0), 0).to_owned(),
                    g.index_axis(Axis(0), 1).to_owned(),
                )
            }
            _ => {
                return Err(Error::invalid(
                    "trace",
                    "the output kind of this network",
                    "a trace of another output kind",
                ))
            }
        };
        let w_out = &weights[n_hidden];
        let last = layers.last().map_or(input, |l| l.spikes());
        // dL/dW_out = Σ g0 ⊗ z over the events of the last layer; the last hidden layer's
        // grad_spikes = g1 W_out at its spikes (plus the rate term).
        let (k_out, n_last, batch) = (w_out.nrows(), w_out.ncols(), last.batch());
        // Transposed (N_last, K): one contiguous row per presynaptic neuron.
        let mut gwt = vec![0.0; n_last * k_out];
        let wt = w_out.t().as_standard_layout().into_owned();
        let wt = wt.as_slice().expect("standard layout");
        let (g0, g1) = (g0.as_standard_layout(), g1.as_standard_layout());
        let (g0, g1) = (
            g0.as_slice().expect("standard"),
            g1.as_slice().expect("standard"),
        );
        let mut grad_spikes: Vec<Vec<f64>> = Vec::with_capacity(batch);
        let rate = if n_hidden > 0 {
            self.count_grad(last, target_grads.get(n_hidden - 1))
        } else {
            None
        };
        for (b, row) in last.rows().iter().enumerate() {
            let mut gs = Vec::with_capacity(row.len());
            for ((t, &n), &x) in row.event_steps().zip(row.indices()).zip(row.values()) {
                let n = n as usize;
                let at = (t * batch + b) * k_out;
                let (g0r, g1r) = (&g0[at..at + k_out], &g1[at..at + k_out]);
                for (a, &g) in gwt[n * k_out..(n + 1) * k_out].iter_mut().zip(g0r) {
                    *a += x * g;
                }
                let mut s = g1r
                    .iter()
                    .zip(&wt[n * k_out..(n + 1) * k_out])
                    .fold(0.0, |acc, (&g, &w)| acc + g * w);
                if let Some(r) = &rate {
                    s += r[[b, n]];
                }
                gs.push(s);
            }
            grad_spikes.push(gs);
        }
        let gw_out = Array2::from_shape_fn((k_out, n_last), |(k, n)| gwt[n * k_out + k]);
        let mut grads = vec![gw_out];
        // The recurrent weights' and the neuron parameters' gradients, top layer first.
        let mut rec_grads = Vec::new();
        let mut param_grads = Vec::new();
        let mut grad_below: Vec<Vec<f64>> = Vec::new();
        for k in (0..n_hidden).rev() {
            let (below, rest) = layers.split_at_mut(k);
            let x = below.last().map_or(input, |l| l.spikes());
            let mut gw = Array2::<f64>::zeros(weights[k].dim());
            let gi = (k > 0).then_some(&mut grad_below);
            match self.recurrent(weights, k) {
                None => rest[0].backward(x, &grad_spikes, &mut gw, gi)?,
                Some(r) => {
                    let mut gr = Array2::<f64>::zeros(r.dim());
                    let s = rest[0].backward_recurrent(x, &grad_spikes, &mut gw, &mut gr, gi)?;
                    rec_grads.push(gr);
                    s
                }
            };
            grads.push(gw);
            if spec.learn.threshold || spec.learn.taus {
                let l = &rest[0];
                let (th, re) = (l.grad_threshold().to_vec(), l.grad_reset().to_vec());
                let n = th.len();
                let tau = |g: &[f64]| match spec.learn.taus {
                    true => g.to_vec(),
                    false => vec![0.0; n],
                };
                param_grads.push(NeuronParams {
                    leak: th.iter().zip(&re).map(|(a, b)| -(a + b)).collect(),
                    reset: re,
                    threshold: th,
                    tau_syn: tau(l.grad_tau_syn()),
                    tau_mem: tau(l.grad_tau_mem()),
                });
            }
            if k > 0 {
                if let Some(r) = self.count_grad(x, target_grads.get(k - 1)) {
                    for (b, (g, row)) in grad_below.iter_mut().zip(x.rows()).enumerate() {
                        for (g, &n) in g.iter_mut().zip(row.indices()) {
                            *g += r[[b, n as usize]];
                        }
                    }
                }
                std::mem::swap(&mut grad_spikes, &mut grad_below);
            }
        }
        grads.reverse();
        rec_grads.reverse();
        param_grads.reverse();
        // The tensor order ([`NetworkSpec::tensor_grads`]): feed-forward weights, one
        // recurrent matrix per hidden layer, the threshold parameters.
        Ok(spec.tensor_grads(
            &spec.neuron_params(weights),
            NetworkGrads {
                weights: grads,
                recurrent: rec_grads,
                delays: Vec::new(),
                params: param_grads,
            },
        ))
    }
}

impl SteppedEngine {
    /// The spike-count terms' gradient per `(b, n)` of a hidden layer (the rate
    /// regulariser, and the rate targets' `target`, computed for the batch by
    /// [`loss::rate_targets_of_layers`]; the same at every step, so needed at the spikes
    /// only); `None` when both are off.
    fn count_grad(
        &self,
        spikes: &EventBatch<f64>,
        target: Option<&Array2<f64>>,
    ) -> Option<Array2<f64>> {
        let rate = (self.rate_reg > 0.0).then(|| rate_grad(spikes, self.rate_reg));
        match (rate, target) {
            (rate, None) => rate,
            (Some(r), Some(g)) => Some(r + g),
            (None, Some(g)) => Some(g.clone()),
        }
    }
}

/// Spike counts `(B, N)` of a layer.
fn spike_counts(spikes: &EventBatch<f64>) -> Array2<f64> {
    let mut c = Array2::<f64>::zeros((spikes.batch(), spikes.channels()));
    for (b, row) in spikes.rows().iter().enumerate() {
        for &n in row.indices() {
            c[[b, n as usize]] += 1.0;
        }
    }
    c
}

/// The rate regulariser's loss ([`loss::rate_regularizer`]) from a layer's spike events.
fn rate_loss(spikes: &EventBatch<f64>, reg: f64) -> f64 {
    let bn = (spikes.batch() * spikes.channels()).max(1) as f64;
    reg * spike_counts(spikes).iter().map(|c| c * c).sum::<f64>() / bn
}

/// The rate regulariser's gradient per `(b, n)` (the same at every step, so it is needed at
/// the spikes only): `2 reg count / (B N)`, as [`loss::rate_regularizer`].
fn rate_grad(spikes: &EventBatch<f64>, reg: f64) -> Array2<f64> {
    let bn = (spikes.batch() * spikes.channels()).max(1) as f64;
    spike_counts(spikes).mapv(|c| 2.0 * reg * c / bn)
}

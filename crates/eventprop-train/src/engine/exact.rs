//! The exact engine: event-based simulation with exact spike times and the exact
//! EventProp adjoint ([`eventprop_exact`]), samples in parallel. Losses: first-spike-time
//! cross-entropy on spiking outputs (`first_spike`, alias `time`), or the time-integral
//! losses of a leaky-integrator readout (`sum`, `sum_exp`: the readout integral in closed
//! form, [`ReadoutIntegral`]); optional per-neuron spike-count targets of the hidden
//! layers ([`RateTargets`], `[reg]`).
//!
//! Besides the feed-forward weights it trains what [`eventprop_core::spec::Learn`] asks for:
//! recurrent weights of the hidden layers, delays, per-neuron `ln tau_mem`, `ln tau_syn`
//! (gradient `tau · dL/dtau`) and threshold parameters `s` with
//! `threshold = max(leak, reset) + e^s` (gradient `e^s · dL/dthreshold`).

use eventprop_exact::{
    loss_batch, FirstSpikeCe, Gradients, Network, NeuronParams, Objective, ReadoutGrads,
    ReadoutIntegral, SolverConfig, TimeWeight,
};
use ndarray::Array2;
use rayon::prelude::*;

use super::{BatchOutcome, Engine, EngineKind, EngineSettings, Pass};
use crate::error::{Error, Result};
use crate::loss::{BatchCounts, LossKind, RateTargets};
use eventprop_core::spec::{NetworkGrads, NetworkSpec, Readout};
use eventprop_data::Spike;

/// The exact engine's loss.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ExactLoss {
    /// First-spike cross-entropy on the spiking output layer.
    FirstSpike(FirstSpikeCe),
    /// A time-integral loss of the leaky-integrator readout (the simulated network is the
    /// hidden layers; the readout is closed form).
    Readout(ReadoutIntegral),
}

/// The exact engine in the registry ([`super::EngineKind::Exact`]): the EventProp paper's
/// Yin-Yang setup (5-200-3, `tau_mem = 20 ms`, `tau_syn = 5 ms`, first-spike
/// cross-entropy, 40 epochs, batch 32, Adam `3e-3` decayed by 0.93 per epoch; inputs in
/// `[0, 30 ms]` of a 60 ms window; init `N(1.5, 0.8)` / `N(0.93, 0.1)`, chosen here so that
/// every output neuron fires at the start); on event data a first-spike loss on the
/// ~1 s samples' time scale, with outputs that fire at the start (measured: readout mean
/// 0 left every output silent on the SHD-shaped timing task, 0.3 trains).
pub(super) const REGISTRATION: super::Registration = super::Registration {
    name: "exact",
    reads: &["exact", "learn"],
    preset: r#"
        epochs = 40
        batch_size = 32
        [optim]
        lr = 3e-3
        lr_step = 1
        lr_gamma = 0.93
        [network]
        hidden = [200]
        tau_mem = 20e-3
        tau_syn = 5e-3
        readout_tau_mem = 20e-3
        readout_tau_syn = 5e-3
        hidden_init_mean = 1.5
        hidden_init_std = 0.8
        readout_init_mean = 0.93
        readout_init_std = 0.1
        [loss]
        kind = "first_spike"
        [encoding]
        t_early = 0.0
        t_late = 30e-3
        t_bias = 0.0
        t_sim = 60e-3
        dt = 1e-4
    "#,
    events_preset: r#"
        [network]
        readout_init_mean = 0.3
        [reg]
        lower_rate = 5.0
        lower_strength = 1e-2
    "#,
    loss_defaults,
    memory,
    build: |s| Ok(Box::new(ExactEngine::new(s)?)),
};

/// The first-spike loss on the exact engine: the EventProp paper's `tau0 = 0.5 ms`,
/// `tau1 = 6.4 ms`, `alpha = 3e-3`, plus this project's silent-label term (`gamma = 30`,
/// DESIGN.md).
fn loss_defaults(kind: &str) -> Option<LossKind> {
    matches!(kind, "first_spike" | "time").then_some(LossKind::FirstSpike {
        tau0: 0.5e-3,
        tau1: 6.4e-3,
        alpha: 3e-3,
        silent_label_gamma: 30.0,
    })
}

/// Peak bytes of the exact engine's state: `40 B × max_spikes_per_neuron × Σ N` per
/// sample in flight (one per thread) — memory grows with spikes only.
fn memory(s: &EngineSettings) -> (f64, String) {
    let spec = &s.network;
    let neurons = (spec.n_in + spec.hidden.iter().sum::<usize>() + spec.n_out) as f64;
    let threads = rayon::current_num_threads() as f64;
    (
        40.0 * s.exact.max_spikes_per_neuron as f64 * neurons * threads,
        format!(
            "spike buffers: exact.max_spikes_per_neuron = {} × {neurons} neurons × {threads} threads",
            s.exact.max_spikes_per_neuron
        ),
    )
}

/// Exact event-based simulation and gradients.
#[derive(Debug, Clone)]
pub struct ExactEngine {
    spec: NetworkSpec,
    loss: ExactLoss,
    targets: RateTargets,
    t_max: f64,
    solver: SolverConfig,
}

impl ExactEngine {
    /// The engine of `config`: its network, loss (first-spike on a spiking output, or a
    /// readout integral on a leaky-integrator readout), window `encoding.t_sim`, rate
    /// targets and solver settings.
    ///
    /// # Errors
    /// [`Error::Invalid`] for what this engine does not have (the max-over-time loss, the
    /// quadratic rate regulariser, a readout loss without hidden layers) and
    /// [`Error::Exact`] for invalid neuron, loss or solver settings.
    pub fn new(config: &EngineSettings) -> Result<Self> {
        if config.stepped.rate_reg != 0.0 {
            return Err(Error::invalid(
                "stepped.rate_reg",
                "0 with the exact engine (no quadratic rate regulariser there; the rate \
                 targets of [reg] are)",
                config.stepped.rate_reg,
            ));
        }
        let spec = config.network.clone();
        spec.validate()?;
        let loss = match config.loss {
            LossKind::FirstSpike {
                tau0,
                tau1,
                alpha,
                silent_label_gamma,
            } => ExactLoss::FirstSpike(FirstSpikeCe {
                tau0,
                tau1,
                alpha,
                silent_label_gamma,
            }),
            LossKind::Sum | LossKind::SumExp { .. } => {
                if spec.hidden.is_empty() {
                    return Err(Error::invalid(
                        "network.hidden",
                        "at least one hidden layer for --loss sum/sum_exp on the exact engine",
                        "none",
                    ));
                }
                let weight = match config.loss {
                    LossKind::SumExp { tau_w } => TimeWeight::Exp {
                        tau_w: tau_w.unwrap_or(config.t_sim),
                    },
                    _ => TimeWeight::Uniform,
                };
                let Readout::Integrator { tau_syn, tau_mem } = spec.readout else {
                    return Err(Error::invalid("readout", "an integrator", "spiking"));
                };
                ExactLoss::Readout(ReadoutIntegral {
                    tau_syn,
                    tau_mem,
                    leak: spec.lif.leak,
                    weight,
                })
            }
            LossKind::MaxOverTime { .. } => {
                return Err(Error::invalid(
                    "loss.kind",
                    "first_spike, time, sum or sum_exp with the exact engine (--loss \
                     max-over-time: the readout maximum is not implemented there)",
                    "max_over_time",
                ))
            }
        };
        match (&loss, spec.readout) {
            (ExactLoss::FirstSpike(_), Readout::Spiking(_)) => {}
            (ExactLoss::Readout(_), Readout::Integrator { .. }) => {}
            (ExactLoss::FirstSpike(_), _) => {
                return Err(Error::invalid("readout", "spiking", "an integrator"))
            }
            (ExactLoss::Readout(_), _) => {
                return Err(Error::invalid("readout", "an integrator", "spiking"))
            }
        }
        for p in spec.spiking_layers() {
            eventprop_exact::params::validate_lif(&p)?;
        }
        config.exact.validate()?;
        eventprop_exact::forward::check_t_max(config.t_sim)?;
        // The losses check their settings when evaluated.
        match &loss {
            ExactLoss::FirstSpike(l) => {
                l.evaluate(&[], spec.n_out, 0, config.t_sim)?;
            }
            ExactLoss::Readout(l) => l.validate()?,
        }
        let solver = SolverConfig {
            parameter_gradients: config.network.learn.taus || config.network.learn.threshold,
            // The first-spike loss needs each output neuron's first spike only (the
            // gradients are bit-identical; DESIGN.md "Exact mode"); a readout loss reads
            // every spike of the last simulated (hidden) layer.
            first_output_spike_only: matches!(loss, ExactLoss::FirstSpike(_)),
            ..config.exact
        };
        Ok(Self {
            spec,
            loss,
            targets: config.reg,
            t_max: config.t_sim,
            solver,
        })
    }

    /// Number of layers the event simulation runs: every spiking layer (with a readout
    /// loss the hidden layers only).
    fn simulated(&self) -> usize {
        self.spec.spiking_layers().len()
    }

    /// The network of the tensors `weights` ([`eventprop_core::spec::Layout`]) and its per-neuron
    /// parameters.
    fn network(&self, weights: &[Array2<f64>]) -> Result<(Network, Vec<NeuronParams>)> {
        self.spec.check_weights(weights)?;
        let l = self.spec.layout();
        let n_sim = self.simulated();
        let mut net = Network::new(weights[..n_sim].to_vec(), self.spec.spiking_layers())?;
        if let Some(r) = l.recurrent {
            for k in 0..self.spec.hidden.len() {
                net = net.with_recurrent(k, weights[r + k].clone())?;
            }
        }
        for (k, d) in self
            .spec
            .delays(weights)
            .into_iter()
            .flatten()
            .take(n_sim)
            .enumerate()
        {
            net = net.with_delays(k, d)?;
        }
        let params = self.spec.neuron_params(weights);
        if l.taus.is_some() || l.threshold.is_some() {
            for (k, np) in params.iter().enumerate() {
                net = net.with_neuron_params(k, np.clone())?;
            }
        }
        Ok((net, params))
    }

    /// The batch-mean gradients of the tensors from the network's summed gradients.
    /// With a readout loss, `readout` holds the readout's weight (and delay) gradients.
    fn tensor_grads(
        &self,
        params: &[NeuronParams],
        g: Gradients,
        readout: Option<ReadoutGrads>,
        samples: usize,
    ) -> Vec<Array2<f64>> {
        let scale = 1.0 / samples.max(1) as f64;
        let n_hidden = self.spec.hidden.len();
        let mut weights = g.weights;
        let mut delays: Vec<Array2<f64>> = g.delays.into_iter().flatten().collect();
        if let Some(r) = readout {
            weights.push(r.weight);
            if let Some(d) = r.delays {
                delays.push(d);
            }
        }
        let mut out = self.spec.tensor_grads(
            params,
            NetworkGrads {
                weights,
                recurrent: g.recurrent.into_iter().take(n_hidden).flatten().collect(),
                delays,
                params: g.params.unwrap_or_default(),
            },
        );
        for t in &mut out {
            t.mapv_inplace(|v| v * scale);
        }
        out
    }
}

impl Engine for ExactEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Exact
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
        let (net, params) = self.network(weights)?;
        let n_hidden = self.spec.hidden.len();
        let readout_delays = self
            .spec
            .delays(weights)
            .map(|mut d| d.swap_remove(n_hidden));
        let objective = match &self.loss {
            ExactLoss::FirstSpike(l) => Objective::FirstSpike(l),
            ExactLoss::Readout(l) => Objective::Readout {
                loss: l,
                weight: weights[n_hidden].view(),
                delays: readout_delays.as_ref().map(|d| d.view()),
            },
        };
        let train = pass == Pass::Train;
        let r = loss_batch(
            &net,
            inputs,
            labels,
            objective,
            self.targets.is_active().then_some(&self.targets),
            counts,
            self.t_max,
            &self.solver,
            train,
        )?;
        let loss_sum = if train && self.targets.is_active() {
            r.loss_sum + r.reg_loss * r.samples as f64
        } else {
            r.loss_sum
        };
        let readout = r.readout;
        Ok(BatchOutcome {
            loss_sum,
            correct: r.correct,
            predictions: r.predictions,
            samples: r.samples,
            hidden_spikes: r.spikes[1..=n_hidden].iter().sum::<usize>() as f64,
            silent_outputs: matches!(self.loss, ExactLoss::FirstSpike(_))
                .then_some(r.silent_outputs),
            grads: r
                .grads
                .map(|g| self.tensor_grads(&params, g, readout, r.samples)),
            chip: None,
        })
    }

    fn hidden_spikes(&self, weights: &[Array2<f64>], input: &[Spike]) -> Result<Vec<Vec<Spike>>> {
        let (net, _) = self.network(weights)?;
        let trace = net.forward(input, self.t_max, &self.solver)?;
        Ok((1..=self.spec.hidden.len())
            .map(|k| trace.spikes(k).to_vec())
            .collect())
    }

    /// The network is built once for the batch (not once per sample); each sample's
    /// event simulation is [`Engine::hidden_spikes`]'s, samples in parallel.
    fn hidden_counts(
        &self,
        weights: &[Array2<f64>],
        inputs: &[&[Spike]],
    ) -> Result<Vec<Vec<usize>>> {
        let (net, _) = self.network(weights)?;
        let n_hidden = self.spec.hidden.len();
        inputs
            .par_iter()
            .map(|x| {
                let trace = net.forward(x, self.t_max, &self.solver)?;
                Ok((1..=n_hidden).map(|k| trace.spikes(k).len()).collect())
            })
            .collect()
    }
}

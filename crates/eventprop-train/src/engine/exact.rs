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

use super::{BatchOutcome, Engine, EngineKind, Pass};
use crate::config::TrainConfig;
use crate::error::{Error, Result};
use crate::loss::{LossKind, RateTargets};
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
    pub fn new(config: &TrainConfig) -> Result<Self> {
        if config.rate_reg != 0.0 {
            return Err(Error::invalid(
                "rate_reg",
                "0 with the exact engine (no quadratic rate regulariser there; the rate \
                 targets of [reg] are)",
                config.rate_reg,
            ));
        }
        let spec = config.network();
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
                        "hidden",
                        "at least one hidden layer for --loss sum/sum_exp on the exact engine",
                        "none",
                    ));
                }
                let weight = match config.loss {
                    LossKind::SumExp { tau_w } => TimeWeight::Exp {
                        tau_w: tau_w.unwrap_or(config.t_sim()),
                    },
                    _ => TimeWeight::Uniform,
                };
                ExactLoss::Readout(ReadoutIntegral {
                    tau_syn: config.readout_tau_syn,
                    tau_mem: config.readout_tau_mem,
                    leak: config.leak,
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
        eventprop_exact::forward::check_t_max(config.t_sim())?;
        // The losses check their settings when evaluated.
        match &loss {
            ExactLoss::FirstSpike(l) => {
                l.evaluate(&[], spec.n_out, 0, config.t_sim())?;
            }
            ExactLoss::Readout(l) => l.validate()?,
        }
        let solver = SolverConfig {
            parameter_gradients: config.learn.taus || config.learn.threshold,
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
            t_max: config.t_sim(),
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

    fn run(
        &self,
        weights: &[Array2<f64>],
        inputs: &[&[Spike]],
        labels: &[usize],
        pass: Pass,
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
}

//! The exact engine: event-based simulation with exact spike times and the exact
//! EventProp adjoint ([`eventprop_exact`]), first-spike-time loss, samples in parallel.
//!
//! Besides the feed-forward weights it trains what [`eventprop_core::spec::Learn`] asks for:
//! recurrent weights of the hidden layers, delays, per-neuron `ln tau_mem`, `ln tau_syn`
//! (gradient `tau · dL/dtau`) and threshold parameters `s` with
//! `threshold = max(leak, reset) + e^s` (gradient `e^s · dL/dthreshold`).

use eventprop_exact::{
    first_spike_batch, FirstSpikeCe, Gradients, Network, NeuronParams, SolverConfig,
};
use ndarray::Array2;

use super::{BatchOutcome, Engine, EngineKind, Pass};
use crate::config::TrainConfig;
use crate::error::{Error, Result};
use crate::loss::LossKind;
use eventprop_core::spec::{NetworkGrads, NetworkSpec, Readout};
use eventprop_data::Spike;

/// Exact event-based simulation and gradients.
#[derive(Debug, Clone)]
pub struct ExactEngine {
    spec: NetworkSpec,
    loss: FirstSpikeCe,
    t_max: f64,
    solver: SolverConfig,
}

impl ExactEngine {
    /// The engine of `config`: its network (spiking output), first-spike loss, window
    /// `encoding.t_sim` and solver settings.
    ///
    /// # Errors
    /// [`Error::Invalid`] for what this engine does not have (max-over-time loss, rate
    /// regulariser) and [`Error::Exact`] for invalid neuron, loss or solver settings.
    pub fn new(config: &TrainConfig) -> Result<Self> {
        let LossKind::FirstSpike {
            tau0,
            tau1,
            alpha,
            silent_label_gamma,
        } = config.loss
        else {
            return Err(Error::invalid(
                "loss.kind",
                "first_spike with the exact engine",
                "max_over_time",
            ));
        };
        if config.rate_reg != 0.0 {
            return Err(Error::invalid(
                "rate_reg",
                "0 with the exact engine (no rate regulariser there)",
                config.rate_reg,
            ));
        }
        let spec = config.network();
        spec.validate()?;
        if !matches!(spec.readout, Readout::Spiking(_)) {
            return Err(Error::invalid("readout", "spiking", "an integrator"));
        }
        for p in spec.spiking_layers() {
            eventprop_exact::params::validate_lif(&p)?;
        }
        config.exact.validate()?;
        eventprop_exact::forward::check_t_max(config.t_sim())?;
        let loss = FirstSpikeCe {
            tau0,
            tau1,
            alpha,
            silent_label_gamma,
        };
        // The loss checks its settings when evaluated.
        loss.evaluate(&[], spec.n_out, 0, config.t_sim())?;
        let solver = SolverConfig {
            parameter_gradients: config.learn.taus || config.learn.threshold,
            // The first-spike loss needs each output neuron's first spike only (the
            // gradients are bit-identical; DESIGN.md "Exact mode").
            first_output_spike_only: true,
            ..config.exact
        };
        Ok(Self {
            spec,
            loss,
            t_max: config.t_sim(),
            solver,
        })
    }

    /// The network of the tensors `weights` ([`eventprop_core::spec::Layout`]) and its per-neuron
    /// parameters.
    fn network(&self, weights: &[Array2<f64>]) -> Result<(Network, Vec<NeuronParams>)> {
        self.spec.check_weights(weights)?;
        let l = self.spec.layout();
        let mut net = Network::new(weights[..l.n_ff].to_vec(), self.spec.spiking_layers())?;
        if let Some(r) = l.recurrent {
            for k in 0..self.spec.hidden.len() {
                net = net.with_recurrent(k, weights[r + k].clone())?;
            }
        }
        for (k, d) in self.spec.delays(weights).into_iter().flatten().enumerate() {
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
    fn tensor_grads(
        &self,
        params: &[NeuronParams],
        g: Gradients,
        samples: usize,
    ) -> Vec<Array2<f64>> {
        let scale = 1.0 / samples.max(1) as f64;
        let n_hidden = self.spec.hidden.len();
        let mut out = self.spec.tensor_grads(
            params,
            NetworkGrads {
                weights: g.weights,
                recurrent: g.recurrent.into_iter().take(n_hidden).flatten().collect(),
                delays: g.delays.into_iter().flatten().collect(),
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
        let r = first_spike_batch(
            &net,
            inputs,
            labels,
            &self.loss,
            self.t_max,
            &self.solver,
            pass == Pass::Train,
        )?;
        let n_hidden = self.spec.hidden.len();
        Ok(BatchOutcome {
            loss_sum: r.loss_sum,
            correct: r.correct,
            predictions: r.predictions,
            samples: r.samples,
            hidden_spikes: r.spikes[1..=n_hidden].iter().sum::<usize>() as f64,
            silent_outputs: Some(r.silent_outputs),
            grads: r.grads.map(|g| self.tensor_grads(&params, g, r.samples)),
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

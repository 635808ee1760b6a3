//! The exact engine: event-based simulation with exact spike times and the exact
//! EventProp adjoint ([`eventprop_exact`]), first-spike-time loss, samples in parallel.

use eventprop_exact::{first_spike_batch, FirstSpikeCe, Network, SolverConfig};
use ndarray::Array2;

use super::{BatchOutcome, Engine, EngineKind, Pass};
use crate::config::TrainConfig;
use crate::data::Spike;
use crate::error::{Error, Result};
use crate::loss::LossKind;
use crate::model::{NetworkSpec, Readout};

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
        Ok(Self {
            spec,
            loss,
            t_max: config.t_sim(),
            solver: config.exact,
        })
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
        self.spec.check_weights(weights)?;
        let net = Network::new(weights.to_vec(), self.spec.spiking_layers())?;
        let r = first_spike_batch(
            &net,
            inputs,
            labels,
            &self.loss,
            self.t_max,
            &self.solver,
            pass == Pass::Train,
        )?;
        let scale = 1.0 / r.samples.max(1) as f64;
        let n_hidden = self.spec.hidden.len();
        Ok(BatchOutcome {
            loss_sum: r.loss_sum,
            correct: r.correct,
            predictions: r.predictions,
            samples: r.samples,
            hidden_spikes: r.spikes[1..=n_hidden].iter().sum::<usize>() as f64,
            silent_outputs: Some(r.silent_outputs),
            grads: r
                .grads
                .map(|g| g.into_iter().map(|g| g.mapv(|v| v * scale)).collect()),
            chip: None,
        })
    }

    fn hidden_spikes(&self, weights: &[Array2<f64>], input: &[Spike]) -> Result<Vec<Vec<Spike>>> {
        self.spec.check_weights(weights)?;
        let net = Network::new(weights.to_vec(), self.spec.spiking_layers())?;
        let trace = net.forward(input, self.t_max, &self.solver)?;
        Ok((1..=self.spec.hidden.len())
            .map(|k| trace.spikes(k).to_vec())
            .collect())
    }
}

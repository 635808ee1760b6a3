//! The time-stepped engine: the seed's EventProp function on a grid of `dt`
//! ([`crate::network::SteppedNetwork`]), inputs put on the grid by
//! [`crate::data::rasterize`].

use ndarray::{Array2, Axis};

use super::{BatchOutcome, Engine, EngineKind, Pass};
use crate::config::TrainConfig;
use crate::data::{rasterize, Spike};
use crate::error::{Error, Result};
use crate::loss::{self, LossKind};
use crate::model::{NetworkSpec, Readout};
use crate::network::{SteppedNetwork, Trace};

/// Time-stepped simulation with the EventProp adjoint of the seed function.
#[derive(Debug, Clone)]
pub struct SteppedEngine {
    net: SteppedNetwork,
    steps: usize,
    loss: LossKind,
    rate_reg: f64,
}

impl SteppedEngine {
    /// The engine of `config` (network, `dt`, number of steps, loss).
    ///
    /// # Errors
    /// [`Error::Invalid`] for settings this engine does not have (the silent-label term of
    /// the first-spike loss) or an invalid network.
    pub fn new(config: &TrainConfig) -> Result<Self> {
        if let LossKind::FirstSpike {
            silent_label_gamma, ..
        } = config.loss
        {
            if silent_label_gamma != 0.0 {
                return Err(Error::invalid(
                    "loss.silent_label_gamma",
                    "0 with the stepped engine (its membrane-maximum term is exact-engine only)",
                    silent_label_gamma,
                ));
            }
        }
        let spec = config.network();
        spec.validate()?;
        Ok(Self {
            net: SteppedNetwork {
                spec,
                dt: config.dt(),
                discretization: config.discretization,
            },
            steps: config.steps(),
            loss: config.loss,
            rate_reg: config.rate_reg,
        })
    }
}

impl Engine for SteppedEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Stepped
    }

    fn spec(&self) -> &NetworkSpec {
        &self.net.spec
    }

    fn run(
        &self,
        weights: &[Array2<f64>],
        inputs: &[&[Spike]],
        labels: &[usize],
        pass: Pass,
    ) -> Result<BatchOutcome> {
        let spec = &self.net.spec;
        let (x, _) = rasterize(inputs, spec.n_in, self.steps, self.net.dt);
        let trace = self.net.forward(weights, x.view())?;
        outcome(
            &self.net,
            self.loss,
            self.rate_reg,
            weights,
            &trace,
            labels,
            pass,
        )
    }

    fn hidden_spikes(&self, weights: &[Array2<f64>], input: &[Spike]) -> Result<Vec<Vec<Spike>>> {
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
}

/// Loss, accuracy and (for [`Pass::Train`]) gradients of a forward `trace` of `net`: shared
/// by the stepped engine and the hardware-in-the-loop engine ([`super::chip`]), whose
/// trace comes from a chip's recording.
pub(crate) fn outcome(
    net: &SteppedNetwork,
    loss_kind: LossKind,
    rate_reg: f64,
    weights: &[Array2<f64>],
    trace: &Trace<f64>,
    labels: &[usize],
    pass: Pass,
) -> Result<BatchOutcome> {
    let spec = &net.spec;
    let out = match loss_kind {
        LossKind::MaxOverTime { reg } => loss::max_over_time(trace.output.view(), labels, reg)?,
        LossKind::FirstSpike {
            tau0, tau1, alpha, ..
        } => loss::first_spike(trace.output.view(), labels, net.dt, tau0, tau1, alpha)?,
    };
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
        let extra = (rate_reg > 0.0).then(|| {
            (0..trace.n_hidden())
                .map(|k| {
                    let (l, g) = loss::rate_regularizer(trace.hidden_spikes(k).view(), rate_reg);
                    batch_loss += l;
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

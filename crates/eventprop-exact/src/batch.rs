//! Loss and gradients over a batch of samples, parallel over the batch (rayon).
//!
//! Every sample is simulated and differentiated on its own; per-sample results are
//! collected in sample order and summed sequentially, so the result is bit-identical for
//! any number of threads.

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use crate::backward::{AdjointStats, Gradients};
use crate::error::{Error, Result};
use crate::forward::Trace;
use crate::loss::{
    add_direct, BatchCounts, FirstSpikeCe, LocalCounts, RateTargets, ReadoutIntegral,
};
use crate::network::{Network, Spike};
use crate::params::SolverConfig;

/// Sums over a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchResult {
    /// Sum of the per-sample losses.
    pub loss_sum: f64,
    /// Number of correctly classified samples (earliest output spike = label).
    pub correct: usize,
    /// Number of samples.
    pub samples: usize,
    /// Sum of the per-sample gradients of weights, recurrent weights, delays and (when
    /// [`SolverConfig::parameter_gradients`] is set) neuron parameters (`None` unless
    /// requested). Its spike-time fields are empty; its guard counts are the batch's.
    pub grads: Option<Gradients>,
    /// Spike count per layer (input first), summed over the batch.
    pub spikes: Vec<usize>,
    /// Samples in which at least one output neuron was silent.
    pub silent_outputs: usize,
    /// The predicted class of each sample (the earliest-firing output neuron; `None` when
    /// no output neuron fired).
    pub predictions: Vec<Option<usize>>,
    /// Adjoint guards, summed.
    pub stats: AdjointStats,
    /// Summed `∂L/∂W` and `∂L/∂d` of the readout ([`Objective::Readout`] with gradients
    /// only).
    pub readout: Option<ReadoutGrads>,
    /// The batch's [`RateTargets`] loss `L_reg` (0 when off or without gradients): a
    /// batch-level term, not included in `loss_sum`.
    pub reg_loss: f64,
}

/// Summed gradients of a leaky-integrator readout ([`Objective::Readout`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ReadoutGrads {
    /// `∂L/∂W` `(K, N)`.
    pub weight: Array2<f64>,
    /// `∂L/∂d` `(K, N)` when the readout has delays.
    pub delays: Option<Array2<f64>>,
}

/// What scores a batch.
#[derive(Debug, Clone, Copy)]
pub enum Objective<'a> {
    /// First-spike cross-entropy on the network's last (spiking) layer.
    FirstSpike(&'a FirstSpikeCe),
    /// A time-integral readout loss on a leaky-integrator readout fed by the network's
    /// last layer: its weights `(K, N)` and delays in seconds.
    Readout {
        /// The loss.
        loss: &'a ReadoutIntegral,
        /// Readout weights `(K, N_last)`.
        weight: ArrayView2<'a, f64>,
        /// Readout delays (s), `(K, N_last)`.
        delays: Option<ArrayView2<'a, f64>>,
    },
}

/// First-spike cross-entropy loss, accuracy and (if `with_grad`) the summed weight
/// gradients of a batch. With `with_grad` the loss includes the silent-label term of
/// [`FirstSpikeCe::sample`]; without, it is the plain cross-entropy of
/// [`FirstSpikeCe::evaluate`]. ([`loss_batch`] with [`Objective::FirstSpike`] and no rate
/// targets.)
///
/// # Errors
/// [`Error::Shape`] when `inputs` and `labels` differ in length; any error of
/// [`Network::forward`], [`crate::Trace::backward`] or [`FirstSpikeCe::evaluate`] (the
/// first failing sample's).
pub fn first_spike_batch<S: AsRef<[Spike]> + Sync>(
    net: &Network,
    inputs: &[S],
    labels: &[usize],
    loss: &FirstSpikeCe,
    t_max: f64,
    cfg: &SolverConfig,
    with_grad: bool,
) -> Result<BatchResult> {
    loss_batch(
        net,
        inputs,
        labels,
        Objective::FirstSpike(loss),
        None,
        &LocalCounts,
        t_max,
        cfg,
        with_grad,
    )
}

/// Loss, accuracy and (if `with_grad`) the summed gradients of a batch scored by
/// `objective`, plus (with gradients) the [`RateTargets`] of every layer below the scored
/// one (the hidden layers: all but the last for [`Objective::FirstSpike`], all for
/// [`Objective::Readout`]).
///
/// The samples are simulated first (in parallel); the targets need the counts averaged
/// over the batch, `c̄_n` (formed by `counts` from this call's count sums: [`LocalCounts`]
/// for the samples given here), and add `∂l/∂t_k = -g_n` ([`RateTargets::evaluate`]) to every
/// spike of neuron `n` of each sample before its adjoint runs (also in parallel). Per-sample
/// results are summed in sample order.
///
/// # Errors
/// As [`first_spike_batch`]; [`ReadoutIntegral::sample`]'s errors; [`Error::Invalid`] for
/// invalid rate targets.
#[allow(clippy::too_many_arguments)]
pub fn loss_batch<S: AsRef<[Spike]> + Sync>(
    net: &Network,
    inputs: &[S],
    labels: &[usize],
    objective: Objective<'_>,
    targets: Option<&RateTargets>,
    counts: &dyn BatchCounts,
    t_max: f64,
    cfg: &SolverConfig,
    with_grad: bool,
) -> Result<BatchResult> {
    if inputs.len() != labels.len() {
        return Err(Error::Shape {
            arg: "labels".into(),
            expected: format!("({},) (one per input sample)", inputs.len()),
            actual: format!("({},)", labels.len()),
        });
    }
    if let Some(t) = targets {
        t.validate()?;
    }
    let n_layers = net.n_layers();
    let n_out = *net.sizes().last().expect("at least one layer");
    let traces: Vec<Trace> = inputs
        .par_iter()
        .map(|input| net.forward(input.as_ref(), t_max, cfg))
        .collect::<Result<_>>()?;
    // Rate targets: g_n per hidden layer from the batch-mean counts.
    let hidden_layers = match objective {
        Objective::FirstSpike(_) => n_layers - 1,
        Objective::Readout { .. } => n_layers,
    };
    let mut reg_loss = 0.0;
    let reg: Option<Vec<Vec<f64>>> = match targets {
        Some(t) if with_grad && t.is_active() && !traces.is_empty() => {
            let sizes = net.sizes();
            let sums: Vec<Vec<f64>> = (1..=hidden_layers)
                .map(|k| {
                    let mut sum = vec![0.0; sizes[k]];
                    for tr in &traces {
                        for s in tr.spikes(k) {
                            sum[s.neuron as usize] += 1.0;
                        }
                    }
                    sum
                })
                .collect();
            Some(
                t.evaluate_sums(&sums, traces.len(), counts)
                    .into_iter()
                    .map(|(v, g)| {
                        reg_loss += v;
                        g
                    })
                    .collect(),
            )
        }
        _ => None,
    };
    let per_sample: Vec<_> = traces
        .par_iter()
        .zip(labels.par_iter())
        .map(|(trace, &label)| -> Result<_> {
            let extra: Option<Vec<Vec<f64>>> = reg.as_ref().map(|g| {
                (1..=n_layers)
                    .map(|k| {
                        trace
                            .spikes(k)
                            .iter()
                            .map(|s| g.get(k - 1).map_or(0.0, |gk| -gk[s.neuron as usize]))
                            .collect()
                    })
                    .collect()
            });
            let (value, prediction, grads, readout) = match objective {
                Objective::FirstSpike(loss) => {
                    if with_grad {
                        let (out, g) =
                            loss.sample_with(net, trace, label, cfg, extra.as_deref())?;
                        (out.value, out.prediction, Some(g), None)
                    } else {
                        let out = loss.evaluate(trace.output(), n_out, label, t_max)?;
                        (out.value, out.prediction, None, None)
                    }
                }
                Objective::Readout {
                    loss,
                    weight,
                    delays,
                } => {
                    let out = loss.sample(weight, delays, trace.output(), label, t_max)?;
                    if with_grad {
                        let mut direct: Vec<Vec<f64>> = (1..=n_layers)
                            .map(|k| vec![0.0; trace.spikes(k).len()])
                            .collect();
                        direct[n_layers - 1].clone_from(&out.dl_dt);
                        if let Some(e) = &extra {
                            add_direct(&mut direct, e)?;
                        }
                        let g = trace.backward_direct(net, &direct, cfg)?;
                        let r = ReadoutGrads {
                            weight: out.dl_dw,
                            delays: out.dl_dd,
                        };
                        (out.value, Some(out.prediction), Some(g), Some(r))
                    } else {
                        (out.value, Some(out.prediction), None, None)
                    }
                }
            };
            let silent = match objective {
                Objective::FirstSpike(_) => {
                    let mut seen = vec![false; n_out];
                    for s in trace.output() {
                        seen[s.neuron as usize] = true;
                    }
                    seen.iter().any(|&x| !x)
                }
                Objective::Readout { .. } => false,
            };
            Ok((
                value,
                prediction,
                trace.spike_counts(),
                silent,
                grads,
                readout,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut result = BatchResult {
        loss_sum: 0.0,
        correct: 0,
        samples: inputs.len(),
        grads: None,
        spikes: vec![0; n_layers + 1],
        silent_outputs: 0,
        predictions: Vec::with_capacity(inputs.len()),
        stats: AdjointStats::default(),
        readout: None,
        reg_loss,
    };
    for ((value, prediction, counts, silent, grads, readout), &label) in
        per_sample.into_iter().zip(labels)
    {
        result.loss_sum += value;
        result.correct += usize::from(prediction == Some(label));
        result.predictions.push(prediction);
        result.silent_outputs += usize::from(silent);
        for (acc, c) in result.spikes.iter_mut().zip(counts) {
            *acc += c;
        }
        if let Some(mut g) = grads {
            result.stats += g.stats;
            match result.grads.as_mut() {
                Some(acc) => acc.accumulate(&g),
                None => {
                    g.input_times.clear();
                    g.spike_times.clear();
                    result.grads = Some(g);
                }
            }
        }
        if let Some(r) = readout {
            match result.readout.as_mut() {
                Some(acc) => {
                    acc.weight += &r.weight;
                    if let (Some(a), Some(b)) = (acc.delays.as_mut(), r.delays.as_ref()) {
                        *a += b;
                    }
                }
                None => result.readout = Some(r),
            }
        }
    }
    Ok(result)
}

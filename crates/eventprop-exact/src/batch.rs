//! Loss and gradients over a batch of samples, parallel over the batch (rayon).
//!
//! Every sample is simulated and differentiated on its own; per-sample results are
//! collected in sample order and summed sequentially, so the result is bit-identical for
//! any number of threads.

use rayon::prelude::*;

use crate::backward::{AdjointStats, Gradients};
use crate::error::{Error, Result};
use crate::loss::FirstSpikeCe;
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
}

/// First-spike cross-entropy loss, accuracy and (if `with_grad`) the summed weight
/// gradients of a batch. With `with_grad` the loss includes the silent-label term of
/// [`FirstSpikeCe::sample`]; without, it is the plain cross-entropy of
/// [`FirstSpikeCe::evaluate`].
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
    if inputs.len() != labels.len() {
        return Err(Error::Shape {
            arg: "labels".into(),
            expected: format!("({},) (one per input sample)", inputs.len()),
            actual: format!("({},)", labels.len()),
        });
    }
    let n_out = *net.sizes().last().expect("at least one layer");
    let per_sample: Vec<_> = inputs
        .par_iter()
        .zip(labels.par_iter())
        .map(|(input, &label)| -> Result<_> {
            let trace = net.forward(input.as_ref(), t_max, cfg)?;
            let (out, grads) = if with_grad {
                let (out, g) = loss.sample(net, &trace, label, cfg)?;
                (out, Some(g))
            } else {
                (loss.evaluate(trace.output(), n_out, label, t_max)?, None)
            };
            let mut seen = vec![false; n_out];
            for s in trace.output() {
                seen[s.neuron as usize] = true;
            }
            let silent = seen.iter().any(|&x| !x);
            Ok((
                out.value,
                out.prediction,
                trace.spike_counts(),
                silent,
                grads,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut result = BatchResult {
        loss_sum: 0.0,
        correct: 0,
        samples: inputs.len(),
        grads: None,
        spikes: vec![0; net.n_layers() + 1],
        silent_outputs: 0,
        predictions: Vec::with_capacity(inputs.len()),
        stats: AdjointStats::default(),
    };
    for ((value, prediction, counts, silent, grads), &label) in per_sample.into_iter().zip(labels) {
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
    }
    Ok(result)
}

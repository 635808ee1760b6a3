//! Spikes, the feed-forward network and the validation of inputs.

use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use serde::{Deserialize, Serialize};

use crate::error::{check_finite, Error, Result};
use crate::params::Lif;

/// One spike: a time in seconds and the index of the neuron within its layer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spike {
    /// Spike time in seconds.
    pub time: f64,
    /// Neuron index within its layer.
    pub neuron: u32,
}

/// Sorts spikes by `(time, neuron)` (the order every spike list of this crate uses).
pub fn sort_spikes(spikes: &mut [Spike]) {
    spikes.sort_by(|x, y| x.time.total_cmp(&y.time).then(x.neuron.cmp(&y.neuron)));
}

/// A feed-forward network of current-based LIF layers.
///
/// Layer `k` (`k = 1 …`) receives the spikes of layer `k - 1` through `weights[k-1]`,
/// shape `(N_k, N_{k-1})`; layer 0 is the input. `params[k-1]` are the neuron parameters
/// of layer `k`.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    weights: Vec<Array2<f64>>,
    params: Vec<Lif>,
}

impl Network {
    /// Builds a network from its weight matrices and one parameter set per layer.
    ///
    /// # Errors
    /// [`Error::Shape`] when there are no layers, when `params` does not hold one entry
    /// per weight matrix, or when `weights[k]` does not have `N_k` columns (`N_k` the rows
    /// of `weights[k-1]`); [`Error::NonFinite`] for NaN/inf weights; [`Error::Invalid`]
    /// for invalid parameters (see [`crate::params::validate_lif`]).
    ///
    /// ```
    /// use eventprop_exact::{Network, Lif};
    /// use ndarray::Array2;
    /// let w = vec![Array2::zeros((3, 2)), Array2::zeros((1, 4))];
    /// let err = Network::new(w, vec![Lif::default(); 2]).unwrap_err();
    /// assert_eq!(err.to_string(), "w1: expected shape (N_2, N_1) with N_1 = 3, got (1, 4)");
    /// ```
    pub fn new(weights: Vec<Array2<f64>>, params: Vec<Lif>) -> Result<Self> {
        if weights.is_empty() {
            return Err(Error::Shape {
                arg: "weights".into(),
                expected: "at least one weight matrix".into(),
                actual: "none".into(),
            });
        }
        if params.len() != weights.len() {
            return Err(Error::Shape {
                arg: "params".into(),
                expected: format!("one parameter set per layer ({})", weights.len()),
                actual: params.len().to_string(),
            });
        }
        for (k, w) in weights.iter().enumerate() {
            if k > 0 && w.ncols() != weights[k - 1].nrows() {
                return Err(Error::Shape {
                    arg: format!("w{k}"),
                    expected: format!(
                        "(N_{}, N_{k}) with N_{k} = {}",
                        k + 1,
                        weights[k - 1].nrows()
                    ),
                    actual: format!("({}, {})", w.nrows(), w.ncols()),
                });
            }
            let w = w.as_standard_layout();
            check_finite(&format!("w{k}"), w.as_slice().expect("standard layout"))?;
        }
        for p in &params {
            crate::params::validate_lif(p)?;
        }
        let weights = weights
            .into_iter()
            .map(|w| w.as_standard_layout().into_owned())
            .collect();
        Ok(Self { weights, params })
    }

    /// Number of layers after the input.
    pub fn n_layers(&self) -> usize {
        self.weights.len()
    }

    /// Layer sizes `[N_0, N_1, …, N_L]`, input first.
    pub fn sizes(&self) -> Vec<usize> {
        std::iter::once(self.weights[0].ncols())
            .chain(self.weights.iter().map(|w| w.nrows()))
            .collect()
    }

    /// Weight matrix `k` (into layer `k + 1`), shape `(N_{k+1}, N_k)`.
    pub fn weight(&self, k: usize) -> ArrayView2<'_, f64> {
        self.weights[k].view()
    }

    /// All weight matrices.
    pub fn weights(&self) -> &[Array2<f64>] {
        &self.weights
    }

    /// Mutable views of the weights (shapes cannot change). The caller keeps them finite.
    pub fn weights_mut(&mut self) -> impl Iterator<Item = ArrayViewMut2<'_, f64>> {
        self.weights.iter_mut().map(|w| w.view_mut())
    }

    /// Neuron parameters of layer `k + 1`.
    pub fn params(&self, k: usize) -> &Lif {
        &self.params[k]
    }

    /// Validates input spikes against the input layer and returns them sorted by
    /// `(time, neuron)` together with the permutation: `sorted[i] = given[order[i]]`.
    ///
    /// # Errors
    /// [`Error::InputTime`] for a negative or non-finite time, [`Error::InputNeuron`] for
    /// a neuron index `>= N_0`.
    pub fn check_input(&self, spikes: &[Spike]) -> Result<(Vec<Spike>, Vec<usize>)> {
        let n_inputs = self.weights[0].ncols();
        for (index, s) in spikes.iter().enumerate() {
            if !(s.time.is_finite() && s.time >= 0.0) {
                return Err(Error::InputTime {
                    index,
                    time: s.time,
                });
            }
            if s.neuron as usize >= n_inputs {
                return Err(Error::InputNeuron {
                    index,
                    neuron: s.neuron.into(),
                    n_inputs,
                });
            }
        }
        let mut order: Vec<usize> = (0..spikes.len()).collect();
        order.sort_by(|&x, &y| {
            let (p, q) = (&spikes[x], &spikes[y]);
            p.time
                .total_cmp(&q.time)
                .then(p.neuron.cmp(&q.neuron))
                .then(x.cmp(&y))
        });
        let sorted = order.iter().map(|&i| spikes[i]).collect();
        Ok((sorted, order))
    }
}

//! Spikes, the feed-forward network and the validation of inputs.

use ndarray::{Array2, ArrayView2, ArrayViewMut2};

use crate::dynamics::Kinetics;
use crate::error::{check_finite, Error, Result};
use crate::params::{Lif, NeuronParams};
pub use eventprop_core::spike::{sort_spikes, Spike};

/// A network of current-based LIF layers.
///
/// Layer `k` (`k = 1 …`) receives the spikes of layer `k - 1` through `weights[k-1]`,
/// shape `(N_k, N_{k-1})`; layer 0 is the input. `params[k-1]` are the neuron parameters
/// of layer `k`. Optional, per layer (index `k - 1`, as the weights):
///
/// * recurrent weights `r`, `(N_k, N_k)`: a spike of neuron `m` of layer `k` adds
///   `r[n, m]` to `I_n` of the same layer at the spike time, after `m`'s reset
///   ([`Network::with_recurrent`]);
/// * synaptic delays `d >= 0` in seconds, shape of the weights: spike `t_j` of `j` reaches
///   neuron `n` of the next layer at `t_j + d[n, j]` ([`Network::with_delays`]);
/// * per-neuron parameters ([`Network::with_neuron_params`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    weights: Vec<Array2<f64>>,
    params: Vec<Lif>,
    neurons: Vec<NeuronParams>,
    recurrent: Vec<Option<Array2<f64>>>,
    delays: Vec<Option<Array2<f64>>>,
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
        let weights: Vec<Array2<f64>> = weights
            .into_iter()
            .map(|w| w.as_standard_layout().into_owned())
            .collect();
        let neurons = weights
            .iter()
            .zip(&params)
            .map(|(w, p)| NeuronParams::uniform(p, w.nrows()))
            .collect();
        let n = weights.len();
        Ok(Self {
            weights,
            params,
            neurons,
            recurrent: vec![None; n],
            delays: vec![None; n],
        })
    }

    fn check_layer(&self, k: usize, what: &str) -> Result<()> {
        if k < self.n_layers() {
            Ok(())
        } else {
            Err(Error::Shape {
                arg: format!("{what}{k}"),
                expected: format!("a layer index < {}", self.n_layers()),
                actual: k.to_string(),
            })
        }
    }

    /// Adds recurrent weights `r`, shape `(N, N)`, to layer `k + 1` (the layer fed by
    /// `weights[k]`).
    ///
    /// # Errors
    /// [`Error::Shape`] for a bad `k` or shape, [`Error::NonFinite`] for NaN/inf.
    ///
    /// ```
    /// use eventprop_exact::{Network, Lif};
    /// use ndarray::Array2;
    /// let net = Network::new(vec![Array2::zeros((3, 2))], vec![Lif::default()])?;
    /// let err = net.with_recurrent(0, Array2::zeros((3, 2))).unwrap_err();
    /// assert_eq!(err.to_string(), "r0: expected shape (3, 3), got (3, 2)");
    /// # Ok::<(), eventprop_exact::Error>(())
    /// ```
    pub fn with_recurrent(mut self, k: usize, r: Array2<f64>) -> Result<Self> {
        self.check_layer(k, "r")?;
        let n = self.weights[k].nrows();
        if r.dim() != (n, n) {
            return Err(Error::Shape {
                arg: format!("r{k}"),
                expected: format!("({n}, {n})"),
                actual: format!("({}, {})", r.nrows(), r.ncols()),
            });
        }
        let r = r.as_standard_layout().into_owned();
        check_finite(&format!("r{k}"), r.as_slice().expect("standard layout"))?;
        self.recurrent[k] = Some(r);
        Ok(self)
    }

    /// Adds synaptic delays (seconds, `>= 0`, the shape of `weights[k]`) to the
    /// connections of `weights[k]`.
    ///
    /// # Errors
    /// [`Error::Shape`] for a bad `k` or shape, [`Error::Range`] for a negative or
    /// non-finite delay.
    pub fn with_delays(mut self, k: usize, d: Array2<f64>) -> Result<Self> {
        self.check_layer(k, "d")?;
        if d.dim() != self.weights[k].dim() {
            let (r, c) = self.weights[k].dim();
            return Err(Error::Shape {
                arg: format!("d{k}"),
                expected: format!("({r}, {c}) (as w{k})"),
                actual: format!("({}, {})", d.nrows(), d.ncols()),
            });
        }
        let d = d.as_standard_layout().into_owned();
        let cols = d.ncols();
        let flat = d.as_slice().expect("standard layout");
        if let Some(i) = flat.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
            return Err(Error::Range {
                arg: format!("d{k}[{}, {}]", i / cols, i % cols),
                expected: "a finite delay >= 0 (seconds)".into(),
                actual: flat[i].to_string(),
            });
        }
        self.delays[k] = Some(d);
        Ok(self)
    }

    /// Sets per-neuron parameters of layer `k + 1`.
    ///
    /// # Errors
    /// As [`crate::params::validate_neurons`], and [`Error::Shape`] for a bad `k`.
    ///
    /// ```
    /// use eventprop_exact::{Network, Lif, NeuronParams};
    /// use ndarray::Array2;
    /// let net = Network::new(vec![Array2::zeros((2, 2))], vec![Lif::default()])?;
    /// let mut p = NeuronParams::uniform(&Lif::default(), 2);
    /// p.tau_mem[1] = -1.0;
    /// let err = net.with_neuron_params(0, p).unwrap_err();
    /// assert_eq!(err.to_string(), "tau_mem0[1]: expected a value > 0, got -1");
    /// # Ok::<(), eventprop_exact::Error>(())
    /// ```
    pub fn with_neuron_params(mut self, k: usize, p: NeuronParams) -> Result<Self> {
        self.check_layer(k, "params")?;
        crate::params::validate_neurons(&p, k, self.weights[k].nrows())?;
        self.neurons[k] = p;
        Ok(self)
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

    /// The layer-wide neuron parameters layer `k + 1` was built with; per-neuron values
    /// set by [`Network::with_neuron_params`] are in [`Network::neuron_params`].
    pub fn params(&self, k: usize) -> &Lif {
        &self.params[k]
    }

    /// Per-neuron parameters of layer `k + 1`.
    pub fn neuron_params(&self, k: usize) -> &NeuronParams {
        &self.neurons[k]
    }

    /// Rates and levels of neuron `n` of layer `k + 1`.
    pub fn kinetics(&self, k: usize, n: usize) -> Kinetics {
        crate::params::kinetics(&self.neurons[k].get(n))
    }

    /// Recurrent weights of layer `k + 1`, if any.
    pub fn recurrent(&self, k: usize) -> Option<ArrayView2<'_, f64>> {
        self.recurrent[k].as_ref().map(|r| r.view())
    }

    /// Delays of the connections of `weights[k]`, if any.
    pub fn delays(&self, k: usize) -> Option<ArrayView2<'_, f64>> {
        self.delays[k].as_ref().map(|d| d.view())
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

//! The network description shared by every engine: layer sizes, the LIF parameters of the
//! hidden layers, the output layer, and the seeded weight initialisation.
//!
//! A network is `n_in → hidden[0] → … → hidden[L-1] → n_out`, feed-forward, with one
//! weight matrix per connection (`W_k` of shape `(N_k, N_{k-1})`, the last one feeding the
//! output layer). The weights themselves live with the trainer ([`crate::Trainer`]); an
//! engine ([`crate::engine::Engine`]) reads them for each batch.

use eventprop_core::Lif;
use ndarray::Array2;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The output layer after the last weight matrix.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Readout {
    /// Leaky integrator without threshold (membrane traces are the output; starts at the
    /// hidden layers' `leak`).
    Integrator {
        /// Synaptic time constant (s).
        tau_syn: f64,
        /// Membrane time constant (s).
        tau_mem: f64,
    },
    /// Spiking LIF neurons (spike trains or spike times are the output).
    Spiking(Lif),
}

/// Architecture and neuron parameters of a feed-forward network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// Number of input channels.
    pub n_in: usize,
    /// Sizes of the hidden layers (any number, each ≥ 1).
    pub hidden: Vec<usize>,
    /// Number of output neurons (classes).
    pub n_out: usize,
    /// LIF parameters of every hidden layer.
    pub lif: Lif,
    /// The output layer.
    pub readout: Readout,
}

/// Weight initialisation `N(mean, std)` of one weight matrix.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Init {
    /// Mean.
    pub mean: f64,
    /// Standard deviation (≥ 0).
    pub std: f64,
}

impl NetworkSpec {
    /// Checks sizes and the time-stepped engine's parameter ranges (finite values,
    /// positive time constants); engines add their own checks.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.n_in == 0 {
            return Err(Error::invalid("n_in", ">= 1", 0));
        }
        if self.n_out == 0 {
            return Err(Error::invalid("n_out", ">= 1", 0));
        }
        if let Some(z) = self.hidden.iter().position(|&h| h == 0) {
            return Err(Error::invalid(
                "hidden",
                "sizes >= 1",
                format!("0 at layer {z}"),
            ));
        }
        self.lif.validate()?;
        match self.readout {
            Readout::Integrator { tau_syn, tau_mem } => {
                for (name, v) in [("readout_tau_syn", tau_syn), ("readout_tau_mem", tau_mem)] {
                    if !(v.is_finite() && v > 0.0) {
                        return Err(Error::invalid(name, "finite and > 0", v));
                    }
                }
                Ok(())
            }
            Readout::Spiking(l) => Ok(l.validate()?),
        }
    }

    /// `(N_out, N_in)` of each weight matrix, input side first.
    pub fn weight_shapes(&self) -> Vec<(usize, usize)> {
        let mut sizes = vec![self.n_in];
        sizes.extend(&self.hidden);
        sizes.push(self.n_out);
        sizes.windows(2).map(|w| (w[1], w[0])).collect()
    }

    /// The LIF parameters of every spiking layer, input side first (the hidden layers,
    /// then the output layer when it spikes).
    pub fn spiking_layers(&self) -> Vec<Lif> {
        let mut v = vec![self.lif; self.hidden.len()];
        if let Readout::Spiking(l) = self.readout {
            v.push(l);
        }
        v
    }

    /// Checks that `weights` match [`NetworkSpec::weight_shapes`] and are finite.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the weight (`weight.k`).
    pub fn check_weights(&self, weights: &[Array2<f64>]) -> Result<()> {
        let shapes = self.weight_shapes();
        if weights.len() != shapes.len() {
            return Err(Error::invalid(
                "weights",
                format!("{} matrices", shapes.len()),
                weights.len(),
            ));
        }
        for (k, (w, s)) in weights.iter().zip(&shapes).enumerate() {
            if w.dim() != *s {
                return Err(Error::Invalid {
                    arg: "weight",
                    expected: format!("weight.{k} of shape {s:?}"),
                    actual: format!("{:?}", w.dim()),
                });
            }
            if let Some((i, v)) = w.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(Error::Invalid {
                    arg: "weight",
                    expected: format!("finite values in weight.{k}"),
                    actual: format!("{v} at flat index {i}"),
                });
            }
        }
        Ok(())
    }

    /// Weights with matrix `k` drawn from `N(inits[k].mean, inits[k].std)` (one entry per
    /// weight matrix), in layer order from one ChaCha8 stream seeded with `seed`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an invalid spec, a wrong number of inits, or a
    /// negative/non-finite std or non-finite mean.
    pub fn init_weights(&self, inits: &[Init], seed: u64) -> Result<Vec<Array2<f64>>> {
        self.validate()?;
        let shapes = self.weight_shapes();
        if inits.len() != shapes.len() {
            return Err(Error::invalid(
                "inits",
                format!("{} (one per hidden layer and the output)", shapes.len()),
                inits.len(),
            ));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut weights = Vec::with_capacity(shapes.len());
        for (&(o, i), init) in shapes.iter().zip(inits) {
            if !init.mean.is_finite() {
                return Err(Error::invalid("init mean", "finite", init.mean));
            }
            let normal = Normal::new(init.mean, init.std)
                .ok()
                .filter(|_| init.std.is_finite() && init.std >= 0.0)
                .ok_or_else(|| Error::invalid("init std", "finite and >= 0", init.std))?;
            weights.push(Array2::from_shape_simple_fn((o, i), || {
                normal.sample(&mut rng)
            }));
        }
        Ok(weights)
    }
}

//! The network description shared by every engine: layer sizes, the LIF parameters of the
//! hidden layers, the output layer, and the seeded weight initialisation.
//!
//! A network is `n_in → hidden[0] → … → hidden[L-1] → n_out`, with one weight matrix per
//! feed-forward connection (`W_k` of shape `(N_k, N_{k-1})`, the last one feeding the
//! output layer). With [`Learn`] (the `[learn]` table) more is trained: recurrent weights
//! of the hidden layers, synaptic delays, per-neuron time constants and thresholds.
//! Everything trained is a list of matrices, the *tensors* ([`NetworkSpec::tensor_shapes`],
//! [`Layout`]): the trainer (the trainer of `eventprop-train`) owns them, initialises, optimises and
//! checkpoints them alike; an engine (an `Engine` of `eventprop-train`) reads them for each batch.

use crate::model::{Lif, NeuronParams};
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

/// What is trained besides the feed-forward weights (the `[learn]` table; all off by
/// default, and then the tensors are exactly the feed-forward weights). Exact engine only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Learn {
    /// Recurrent weights `(H_k, H_k)` in every hidden layer (init `N(0, std_k / sqrt(H_k))`
    /// with `std_k` the layer's input weight std).
    #[serde(default)]
    pub recurrent: bool,
    /// A delay on every feed-forward connection (init 0 s, kept `>= 0`), trained in units
    /// of the hidden `tau_syn` ([`NetworkSpec::delay_unit`]).
    #[serde(default)]
    pub delays: bool,
    /// Per-neuron `tau_mem` and `tau_syn` of every spiking layer, trained as `ln tau`
    /// (positive by construction).
    #[serde(default)]
    pub taus: bool,
    /// Per-neuron thresholds of every spiking layer, trained as `s` with
    /// `threshold = max(leak, reset) + e^s` (above leak and reset by construction).
    #[serde(default)]
    pub threshold: bool,
}

impl Learn {
    /// Whether anything beyond the feed-forward weights is trained.
    pub fn any(&self) -> bool {
        self.recurrent || self.delays || self.taus || self.threshold
    }
}

/// Where each kind of tensor sits in the list of [`NetworkSpec::tensor_shapes`]: the
/// feed-forward weights first, then (each present only when learned) one recurrent matrix
/// per hidden layer, one delay matrix per weight matrix, `ln tau_mem` and `ln tau_syn`
/// rows `(1, N)` per spiking layer, and threshold rows `(1, N)` per spiking layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Number of feed-forward weight matrices (at index 0).
    pub n_ff: usize,
    /// Number of spiking layers (hidden, then the output when it spikes).
    pub n_spiking: usize,
    /// Index of the first recurrent matrix (one per hidden layer).
    pub recurrent: Option<usize>,
    /// Index of the first delay matrix (one per weight matrix).
    pub delays: Option<usize>,
    /// Index of the first `ln tau_mem` row (one per spiking layer), followed by the
    /// `ln tau_syn` rows.
    pub taus: Option<usize>,
    /// Index of the first threshold parameter row (one per spiking layer).
    pub threshold: Option<usize>,
}

/// Gradients of a network's quantities, the input of [`NetworkSpec::tensor_grads`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NetworkGrads {
    /// `dL/dW` per feed-forward weight matrix.
    pub weights: Vec<Array2<f64>>,
    /// `dL/dr` per hidden layer (when recurrent).
    pub recurrent: Vec<Array2<f64>>,
    /// `dL/dd` per weight matrix (when delayed).
    pub delays: Vec<Array2<f64>>,
    /// Gradients of the per-neuron parameters per spiking layer (when trained).
    pub params: Vec<NeuronParams>,
}

impl Layout {
    /// Number of weight tensors (feed-forward and recurrent; these are what weight
    /// clipping and a chip's weight range apply to), at the start of the list.
    pub fn n_weights(&self) -> usize {
        self.n_ff + self.recurrent.map_or(0, |_| self.n_ff - 1)
    }
}

/// Architecture and neuron parameters of a network.
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
    /// What is trained besides the feed-forward weights.
    #[serde(default)]
    pub learn: Learn,
}

/// The network's section of a training config (`[network]`): hidden sizes, the neurons'
/// parameters and the initial weight distributions. The input and output sizes come from
/// the data, the output layer's kind from the loss: [`NetworkSettings::spec`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSettings {
    /// Hidden layer sizes.
    pub hidden: Vec<usize>,
    /// Hidden membrane time constant (s).
    pub tau_mem: f64,
    /// Hidden synaptic time constant (s).
    pub tau_syn: f64,
    /// Threshold (hidden and spiking output neurons).
    pub threshold: f64,
    /// Leak potential.
    pub leak: f64,
    /// Reset potential.
    pub reset: f64,
    /// Readout (or spiking output) membrane time constant (s).
    pub readout_tau_mem: f64,
    /// Readout (or spiking output) synaptic time constant (s).
    pub readout_tau_syn: f64,
    /// Hidden weight init mean.
    pub hidden_init_mean: f64,
    /// Hidden weight init std.
    pub hidden_init_std: f64,
    /// Output weight init mean.
    pub readout_init_mean: f64,
    /// Output weight init std.
    pub readout_init_std: f64,
}

impl NetworkSettings {
    /// The LIF parameters of the hidden layers.
    pub fn lif(&self) -> Lif {
        Lif {
            leak: self.leak,
            reset: self.reset,
            threshold: self.threshold,
            tau_syn: self.tau_syn,
            tau_mem: self.tau_mem,
        }
    }

    /// The network `n_in → hidden → n_out` of these settings, with a spiking output layer
    /// (the hidden neurons' parameters with the readout time constants) or a leaky
    /// integrator, training `learn` besides the feed-forward weights.
    pub fn spec(
        &self,
        n_in: usize,
        n_out: usize,
        spiking_readout: bool,
        learn: Learn,
    ) -> NetworkSpec {
        let lif = self.lif();
        let readout = if spiking_readout {
            Readout::Spiking(Lif {
                tau_syn: self.readout_tau_syn,
                tau_mem: self.readout_tau_mem,
                ..lif
            })
        } else {
            Readout::Integrator {
                tau_syn: self.readout_tau_syn,
                tau_mem: self.readout_tau_mem,
            }
        };
        NetworkSpec {
            n_in,
            hidden: self.hidden.clone(),
            n_out,
            lif,
            readout,
            learn,
        }
    }

    /// Checks the initial weight distributions (the neuron parameters are checked with the
    /// network, [`NetworkSpec::validate`]).
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the key (`network.hidden_init_std`, ...).
    pub fn validate_inits(&self) -> Result<()> {
        for (name, v) in [
            ("network.hidden_init_mean", self.hidden_init_mean),
            ("network.readout_init_mean", self.readout_init_mean),
        ] {
            if !v.is_finite() {
                return Err(Error::invalid(name, "finite", v));
            }
        }
        for (name, v) in [
            ("network.hidden_init_std", self.hidden_init_std),
            ("network.readout_init_std", self.readout_init_std),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::invalid(name, "finite and >= 0", v));
            }
        }
        Ok(())
    }
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

    /// Whether the time-stepped engine runs this network on its fused, event-driven layers
    /// ([`crate::fused`]): with nothing beyond the feed-forward weights, recurrent weights,
    /// and trained thresholds and time constants with the integrator readout (a spiking
    /// output layer's have no fused gradient). Delays, and trained time constants or
    /// thresholds with a spiking output, run on the dense
    /// [`crate::stepped::layer::SteppedLayer`].
    pub fn fused_stepped(&self) -> bool {
        let spiking_out = matches!(self.readout, Readout::Spiking(_));
        !(self.learn.delays || ((self.learn.taus || self.learn.threshold) && spiking_out))
    }

    /// `(N_out, N_in)` of each weight matrix, input side first.
    pub fn weight_shapes(&self) -> Vec<(usize, usize)> {
        let mut sizes = vec![self.n_in];
        sizes.extend(&self.hidden);
        sizes.push(self.n_out);
        sizes.windows(2).map(|w| (w[1], w[0])).collect()
    }

    /// Where each kind of tensor sits ([`NetworkSpec::tensor_shapes`]).
    pub fn layout(&self) -> Layout {
        let n_ff = self.hidden.len() + 1;
        let n_spiking = self.spiking_layers().len();
        let mut next = n_ff;
        let mut take = |on: bool, count: usize| {
            on.then(|| {
                let at = next;
                next += count;
                at
            })
        };
        Layout {
            n_ff,
            n_spiking,
            recurrent: take(self.learn.recurrent, self.hidden.len()),
            delays: take(self.learn.delays, n_ff),
            taus: take(self.learn.taus, 2 * n_spiking),
            threshold: take(self.learn.threshold, n_spiking),
        }
    }

    /// Shapes of everything trained ([`Layout`] gives the order): the feed-forward weights
    /// ([`NetworkSpec::weight_shapes`]) and what [`Learn`] adds.
    pub fn tensor_shapes(&self) -> Vec<(usize, usize)> {
        let ff = self.weight_shapes();
        let sizes: Vec<usize> = ff.iter().map(|s| s.0).collect();
        let spiking = &sizes[..self.spiking_layers().len()];
        let mut v = ff.clone();
        if self.learn.recurrent {
            v.extend(self.hidden.iter().map(|&h| (h, h)));
        }
        if self.learn.delays {
            v.extend(&ff);
        }
        if self.learn.taus {
            v.extend(spiking.iter().chain(spiking).map(|&n| (1, n)));
        }
        if self.learn.threshold {
            v.extend(spiking.iter().map(|&n| (1, n)));
        }
        v
    }

    /// A name for each tensor of [`NetworkSpec::tensor_shapes`] that says what it holds
    /// (the names of the checkpoint's tensors): `weight.{k}` for feed-forward weight matrix
    /// `k`, `recurrent.{k}` for hidden layer `k`'s recurrent weights, `delay.{k}` for the
    /// delays of weight matrix `k` (in units of [`NetworkSpec::delay_unit`]),
    /// `log_tau_mem.{k}` / `log_tau_syn.{k}` (`ln` of the time constants in seconds) and
    /// `threshold_param.{k}` (`s` of `threshold = max(leak, reset) + e^s`) for spiking
    /// layer `k` (the hidden layers, then a spiking output layer).
    ///
    /// Checkpoints written before these names held every tensor as `weight.{i}`, `i` its
    /// index in this list; the feed-forward weights keep that name.
    pub fn tensor_names(&self) -> Vec<String> {
        let l = self.layout();
        let mut v: Vec<String> = (0..l.n_ff).map(|k| format!("weight.{k}")).collect();
        let mut add = |on: bool, name: &str, count: usize| {
            if on {
                v.extend((0..count).map(|k| format!("{name}.{k}")));
            }
        };
        add(self.learn.recurrent, "recurrent", self.hidden.len());
        add(self.learn.delays, "delay", l.n_ff);
        add(self.learn.taus, "log_tau_mem", l.n_spiking);
        add(self.learn.taus, "log_tau_syn", l.n_spiking);
        add(self.learn.threshold, "threshold_param", l.n_spiking);
        v
    }

    /// The lowest threshold of a spiking layer with parameters `p`: `max(leak, reset)`.
    pub fn threshold_floor(p: &Lif) -> f64 {
        p.leak.max(p.reset)
    }

    /// The per-neuron parameters of every spiking layer: the spec's values, with `tau_mem`,
    /// `tau_syn` (`e^{ln tau}`) and thresholds (`max(leak, reset) + e^s`) from the tensors
    /// where [`Learn`] trains them.
    pub fn neuron_params(&self, tensors: &[Array2<f64>]) -> Vec<NeuronParams> {
        let l = self.layout();
        let sizes: Vec<usize> = self.weight_shapes().iter().map(|s| s.0).collect();
        self.spiking_layers()
            .iter()
            .enumerate()
            .map(|(k, p)| {
                let mut np = NeuronParams::uniform(p, sizes[k]);
                if let Some(t) = l.taus {
                    np.tau_mem = tensors[t + k].iter().map(|v| v.exp()).collect();
                    np.tau_syn = tensors[t + l.n_spiking + k]
                        .iter()
                        .map(|v| v.exp())
                        .collect();
                }
                if let Some(t) = l.threshold {
                    let floor = Self::threshold_floor(p);
                    np.threshold = tensors[t + k].iter().map(|v| floor + v.exp()).collect();
                }
                np
            })
            .collect()
    }

    /// The gradients of the tensors ([`Layout`] order) from the gradients of the network's
    /// quantities (chain rule through `ln tau` and the threshold parameterisation); parts
    /// that are not trained are ignored. `params` are the values of
    /// [`NetworkSpec::neuron_params`].
    pub fn tensor_grads(&self, params: &[NeuronParams], g: NetworkGrads) -> Vec<Array2<f64>> {
        let l = self.layout();
        let mut out = g.weights;
        if l.recurrent.is_some() {
            out.extend(g.recurrent);
        }
        if l.delays.is_some() {
            let unit = self.delay_unit();
            out.extend(g.delays.into_iter().map(|d| d * unit));
        }
        let row = |v: Vec<f64>| Array2::from_shape_vec((1, v.len()), v).expect("a row");
        if l.taus.is_some() {
            for (k, gp) in g.params.iter().enumerate() {
                let t = &params[k].tau_mem;
                out.push(row(t.iter().zip(&gp.tau_mem).map(|(t, g)| t * g).collect()));
            }
            for (k, gp) in g.params.iter().enumerate() {
                let t = &params[k].tau_syn;
                out.push(row(t.iter().zip(&gp.tau_syn).map(|(t, g)| t * g).collect()));
            }
        }
        if l.threshold.is_some() {
            for ((gp, np), p) in g.params.iter().zip(params).zip(self.spiking_layers()) {
                let floor = Self::threshold_floor(&p);
                out.push(row(np
                    .threshold
                    .iter()
                    .zip(&gp.threshold)
                    .map(|(t, g)| (t - floor) * g)
                    .collect()));
            }
        }
        out
    }

    /// The unit of the delay tensors in seconds: the hidden layers' `tau_syn`. Adam moves a
    /// parameter by about the learning rate per step whatever its gradient's scale, so
    /// delays held in seconds would move by `lr` seconds per step — far beyond a µs-scale
    /// window (the stepped preset: measured all-silent after 2 epochs); in units of the
    /// synaptic time constant they move by `lr · tau_syn`.
    pub fn delay_unit(&self) -> f64 {
        self.lif.tau_syn
    }

    /// The delays in seconds, one matrix per weight matrix (when [`Learn::delays`]).
    pub fn delays(&self, tensors: &[Array2<f64>]) -> Option<Vec<Array2<f64>>> {
        let l = self.layout();
        let unit = self.delay_unit();
        l.delays.map(|d| {
            tensors[d..d + l.n_ff]
                .iter()
                .map(|t| t.mapv(|v| v * unit))
                .collect()
        })
    }

    /// Keeps trained values in their ranges after an update: delays `>= 0`.
    pub fn project(&self, tensors: &mut [Array2<f64>]) {
        let l = self.layout();
        if let Some(d) = l.delays {
            for t in &mut tensors[d..d + l.n_ff] {
                t.mapv_inplace(|x| x.max(0.0));
            }
        }
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

    /// Checks that `dims` are the shapes of the feed-forward weights
    /// ([`NetworkSpec::weight_shapes`]), e.g. of the weights a simulator is given.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the count (`weights`) or the weight (`weight.k`).
    pub fn check_weight_dims(
        &self,
        dims: impl ExactSizeIterator<Item = (usize, usize)>,
    ) -> Result<()> {
        check_dims(&self.weight_shapes(), dims)
    }

    /// Checks that `weights` (all tensors) match [`NetworkSpec::tensor_shapes`] and are
    /// finite.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the weight (`weight.k`).
    pub fn check_weights(&self, weights: &[Array2<f64>]) -> Result<()> {
        let shapes = self.tensor_shapes();
        check_count(&shapes, weights.len())?;
        for (k, (w, s)) in weights.iter().zip(&shapes).enumerate() {
            check_dim(k, w.dim(), *s)?;
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
    /// weight matrix), in layer order from one ChaCha8 stream seeded with `seed`; then the
    /// tensors of [`Learn`] (recurrent weights from the same stream after the feed-forward
    /// ones, delays 0, `ln tau` and threshold parameters from the spec's values).
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
        if self.learn.recurrent {
            for (&h, init) in self.hidden.iter().zip(inits) {
                let normal = Normal::new(0.0, init.std / (h as f64).sqrt())
                    .map_err(|_| Error::invalid("init std", "finite and >= 0", init.std))?;
                weights.push(Array2::from_shape_simple_fn((h, h), || {
                    normal.sample(&mut rng)
                }));
            }
        }
        if self.learn.delays {
            weights.extend(shapes.iter().map(|&s| Array2::zeros(s)));
        }
        let spiking = self.spiking_layers();
        let sizes: Vec<usize> = shapes.iter().map(|s| s.0).collect();
        if self.learn.taus {
            for pick in [|p: &Lif| p.tau_mem, |p: &Lif| p.tau_syn] {
                for (p, &n) in spiking.iter().zip(&sizes) {
                    weights.push(Array2::from_elem((1, n), pick(p).ln()));
                }
            }
        }
        if self.learn.threshold {
            for (p, &n) in spiking.iter().zip(&sizes) {
                let s = (p.threshold - Self::threshold_floor(p)).ln();
                weights.push(Array2::from_elem((1, n), s));
            }
        }
        Ok(weights)
    }
}

/// Checks `dims` against `shapes`: the count, then each shape.
fn check_dims(
    shapes: &[(usize, usize)],
    dims: impl ExactSizeIterator<Item = (usize, usize)>,
) -> Result<()> {
    check_count(shapes, dims.len())?;
    for (k, (d, s)) in dims.zip(shapes).enumerate() {
        check_dim(k, d, *s)?;
    }
    Ok(())
}

/// Checks the number of weight matrices.
fn check_count(shapes: &[(usize, usize)], n: usize) -> Result<()> {
    if n == shapes.len() {
        return Ok(());
    }
    Err(Error::invalid(
        "weights",
        format!("{} matrices", shapes.len()),
        n,
    ))
}

/// Checks the shape `d` of weight `k` against `s`.
fn check_dim(k: usize, d: (usize, usize), s: (usize, usize)) -> Result<()> {
    if d == s {
        return Ok(());
    }
    Err(Error::Invalid {
        arg: "weight",
        expected: format!("weight.{k} of shape {s:?}"),
        actual: format!("{d:?}"),
    })
}

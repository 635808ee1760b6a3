//! A feed-forward spiking network: EventProp hidden layers (synapse + LIF), stacked, and an
//! output layer reached through a plain synapse — a leaky-integrator readout
//! ([`LeakyIntegrator`]) or spiking LIF neurons (for the first-spike-time loss).
//!
//! Chain (SPEC §3): layer `k`: `y_k = z_{k-1} W_k^T`, `z_k = LIF(y_k)`; output
//! `y_out = z_L W_out^T`, then `v = LI(y_out)` or `z_out = LIF(y_out)`.
//! Backward: the output layer turns `∂L/∂(output)` into `dL/dy_out` (LI adjoint) or the
//! EventProp stacked gradient `g = [tau_syn lambda_i, lambda_v - lambda_i]` (LIF);
//! `dL/dW_out = Σ g0 ⊗ z_L`, and the last hidden layer receives `grad_spikes = g1 W_out`;
//! the same step repeats layer by layer down to `W_1`.
//!
//! # Shapes
//! Input spikes `(T, B, N_in)`; hidden `k`: `W_k` `(N_k, N_{k-1})`; output `(T, B, K)`.

use eventprop_core::synapse::{self, input_grad, SparseRows, DENSE_ABOVE};
use eventprop_core::{
    synapse_forward, Discretization, EventPropNeuron, GuardStats, LifParams, NeuronContext, Real,
};
use ndarray::{Array2, Array3, Array4, ArrayView2, ArrayView3, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::readout::LeakyIntegrator;

/// LIF parameters shared by the neurons of a layer (SI units).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Lif {
    /// Membrane time constant (s).
    pub tau_mem: f64,
    /// Synaptic time constant (s).
    pub tau_syn: f64,
    /// Threshold.
    pub threshold: f64,
    /// Leak (rest) potential.
    pub leak: f64,
    /// Reset potential.
    pub reset: f64,
}

impl Default for Lif {
    /// SPEC §5: `tau_mem = tau_syn = 6 µs`, threshold 1, leak = reset = 0.
    fn default() -> Self {
        Self {
            tau_mem: 6e-6,
            tau_syn: 6e-6,
            threshold: 1.0,
            leak: 0.0,
            reset: 0.0,
        }
    }
}

impl Lif {
    fn neuron<F: Real>(&self, dt: f64, discretization: Discretization) -> EventPropNeuron<F> {
        EventPropNeuron {
            params: LifParams::scalar(
                F::of(self.leak),
                F::of(self.reset),
                F::of(self.threshold),
                F::of(self.tau_syn),
                F::of(self.tau_mem),
            ),
            dt: F::of(dt),
            discretization,
        }
    }
}

/// The output layer after the last synapse.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutputLayer {
    /// Leaky-integrator readout (membrane traces are the output).
    Integrator(LeakyIntegrator),
    /// Spiking LIF neurons (spike trains are the output), with the hidden layers'
    /// discretization.
    Spiking(Lif),
}

/// Architecture and neuron settings of a [`Network`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkConfig {
    /// Number of input channels.
    pub n_in: usize,
    /// Sizes of the hidden layers (any number, each ≥ 1).
    pub hidden: Vec<usize>,
    /// Number of output neurons.
    pub n_out: usize,
    /// Hidden LIF parameters.
    pub lif: Lif,
    /// Time step (s).
    pub dt: f64,
    /// Adjoint discretization of the LIF layers.
    pub discretization: Discretization,
    /// Output layer.
    pub output: OutputLayer,
}

/// Weight initialisation `N(mean, std)` for one layer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Init {
    /// Mean.
    pub mean: f64,
    /// Standard deviation (≥ 0).
    pub std: f64,
}

/// A network: weights plus neuron settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Network<F> {
    /// Settings.
    pub config: NetworkConfig,
    /// `W_1 … W_L, W_out`; `W_k` is `(N_k, N_{k-1})`.
    pub weights: Vec<Array2<F>>,
}

/// What the forward keeps for the backward.
#[derive(Debug)]
pub struct Trace<F> {
    /// The network input `(T, B, N_in)`.
    input: Array3<F>,
    /// Non-zeros of each synapse input (`sparse[k]` feeds `weights[k]`), collected once for
    /// the forward and the weight gradient.
    sparse: Vec<SparseRows<F>>,
    /// Hidden LIF contexts (spikes in `ctx.output().spikes`).
    hidden: Vec<NeuronContext<F>>,
    /// Spiking output context (for [`OutputLayer::Spiking`]).
    out_ctx: Option<NeuronContext<F>>,
    /// The output `(T, B, K)`: readout membrane or output spikes.
    pub output: Array3<F>,
}

impl<F: Real> Trace<F> {
    /// Spikes of hidden layer `k` `(T, B, N_k)`.
    pub fn hidden_spikes(&self, k: usize) -> &Array3<F> {
        &self.hidden[k].output().spikes
    }
    /// Number of hidden layers.
    pub fn n_hidden(&self) -> usize {
        self.hidden.len()
    }
    /// Input of synapse `k`: the network input or the spikes of hidden layer `k - 1`.
    pub fn synapse_input(&self, k: usize) -> &Array3<F> {
        if k == 0 {
            &self.input
        } else {
            self.hidden_spikes(k - 1)
        }
    }
    /// Total number of hidden spikes.
    pub fn total_hidden_spikes(&self) -> f64 {
        self.hidden
            .iter()
            .map(|c| c.output().spikes.sum().to_f64().expect("float"))
            .sum()
    }
}

/// Synapse forward on collected non-zeros (dense product above [`DENSE_ABOVE`]).
fn synapse_fwd<F: Real>(
    x: &Array3<F>,
    sparse: &SparseRows<F>,
    w: ArrayView2<'_, F>,
) -> Result<Array3<F>> {
    let (t_len, b_len, _) = x.dim();
    if sparse.density() > DENSE_ABOVE {
        return Ok(synapse_forward(x.view(), w)?);
    }
    let y = synapse::sparse_forward(sparse, &w);
    Ok(y.into_shape_with_order((t_len, b_len, w.nrows()))
        .expect("sizes match"))
}

/// The stacked gradient `(g0, g1)` arriving at a synapse from the layer above.
enum Upstream<F> {
    /// Leaky integrator: `g0 = g1 = dL/dy`.
    Same(Array3<F>),
    /// LIF: `[tau_syn lambda_i, lambda_v - lambda_i]`.
    Stacked(Array4<F>),
}

impl<F: Real> Upstream<F> {
    fn g0(&self) -> ArrayView3<'_, F> {
        match self {
            Self::Same(a) => a.view(),
            Self::Stacked(s) => s.index_axis(Axis(0), 0),
        }
    }
    fn g1(&self) -> ArrayView3<'_, F> {
        match self {
            Self::Same(a) => a.view(),
            Self::Stacked(s) => s.index_axis(Axis(0), 1),
        }
    }
}

/// Gradients of one backward pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Gradients<F> {
    /// `dL/dW` per weight, same order and shapes as [`Network::weights`].
    pub weights: Vec<Array2<F>>,
    /// Guard counts summed over the LIF layers.
    pub guards: GuardStats,
}

fn add_guards(a: &mut GuardStats, b: GuardStats) {
    a.nonfinite_out += b.nonfinite_out;
    a.nonfinite_jump += b.nonfinite_jump;
    a.guarded_spikes += b.guarded_spikes;
}

impl NetworkConfig {
    /// Checks sizes and neuron parameters.
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
        if !(self.dt.is_finite() && self.dt > 0.0) {
            return Err(Error::invalid("dt", "finite and > 0", self.dt));
        }
        let check_lif = |l: &Lif| -> Result<()> {
            for (name, v) in [("tau_mem", l.tau_mem), ("tau_syn", l.tau_syn)] {
                if !(v.is_finite() && v > 0.0) {
                    return Err(Error::invalid(name, "finite and > 0", v));
                }
            }
            for (name, v) in [
                ("threshold", l.threshold),
                ("leak", l.leak),
                ("reset", l.reset),
            ] {
                if !v.is_finite() {
                    return Err(Error::invalid(name, "finite", v));
                }
            }
            Ok(())
        };
        check_lif(&self.lif)?;
        match &self.output {
            OutputLayer::Integrator(li) => li.validate(),
            OutputLayer::Spiking(l) => check_lif(l),
        }
    }

    /// `(N_out, N_in)` of each weight.
    pub fn weight_shapes(&self) -> Vec<(usize, usize)> {
        let mut sizes = vec![self.n_in];
        sizes.extend(&self.hidden);
        sizes.push(self.n_out);
        sizes.windows(2).map(|w| (w[1], w[0])).collect()
    }
}

impl<F: Real> Network<F> {
    /// A network with weights drawn from `N(mean, std)`: `hidden_init` for every hidden
    /// layer, `out_init` for the output synapse; seeded with ChaCha8.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an invalid config or a negative/non-finite std.
    pub fn init(
        config: NetworkConfig,
        hidden_init: Init,
        out_init: Init,
        seed: u64,
    ) -> Result<Self> {
        let mut inits = vec![hidden_init; config.hidden.len()];
        inits.push(out_init);
        Self::init_layers(config, &inits, seed)
    }

    /// A network with the weights of layer `k` drawn from `N(inits[k].mean, inits[k].std)`
    /// (one entry per hidden layer, then the output synapse), in layer order from one
    /// ChaCha8 stream seeded with `seed`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an invalid config, a wrong number of inits, or a
    /// negative/non-finite std or non-finite mean.
    pub fn init_layers(config: NetworkConfig, inits: &[Init], seed: u64) -> Result<Self> {
        config.validate()?;
        let shapes = config.weight_shapes();
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
                F::of(normal.sample(&mut rng))
            }));
        }
        Ok(Self { config, weights })
    }

    /// A network from given weights.
    ///
    /// # Errors
    /// [`Error::Invalid`] when a weight's shape does not match the config.
    pub fn from_weights(config: NetworkConfig, weights: Vec<Array2<F>>) -> Result<Self> {
        config.validate()?;
        let shapes = config.weight_shapes();
        if weights.len() != shapes.len() {
            return Err(Error::invalid(
                "weights",
                format!("{} tensors", shapes.len()),
                weights.len(),
            ));
        }
        for (w, s) in weights.iter().zip(&shapes) {
            if w.dim() != *s {
                return Err(Error::invalid(
                    "weight",
                    format!("shape {s:?}"),
                    format!("{:?}", w.dim()),
                ));
            }
        }
        Ok(Self { config, weights })
    }

    fn hidden_neuron(&self) -> EventPropNeuron<F> {
        self.config
            .lif
            .neuron(self.config.dt, self.config.discretization)
    }

    /// Forward over a batch of input spikes `(T, B, N_in)`.
    ///
    /// # Errors
    /// Core shape/finiteness errors (e.g. wrong `N_in`).
    pub fn forward(&self, x: ArrayView3<'_, F>) -> Result<Trace<F>> {
        let neuron = self.hidden_neuron();
        let input = x.as_standard_layout().into_owned();
        let n_hidden = self.config.hidden.len();
        if input.dim().2 != self.config.n_in {
            return Err(Error::invalid(
                "input",
                format!("(T, B, {}) spikes", self.config.n_in),
                format!("{:?}", input.dim()),
            ));
        }
        if let Some(bad) = input.iter().find(|v| !v.is_finite()) {
            return Err(Error::invalid("input", "finite values", bad));
        }
        let mut sparse = Vec::with_capacity(self.weights.len());
        let mut hidden: Vec<NeuronContext<F>> = Vec::with_capacity(n_hidden);
        for (k, w) in self.weights.iter().enumerate() {
            let z = if k == 0 {
                &input
            } else {
                &hidden[k - 1].output().spikes
            };
            let sp = SparseRows::from_dense(z.as_slice().expect("standard layout"), z.dim().2);
            let y = synapse_fwd(z, &sp, w.view())?;
            sparse.push(sp);
            if k < n_hidden {
                hidden.push(neuron.forward(y.view(), None)?);
            } else {
                let (output, out_ctx) = match &self.config.output {
                    OutputLayer::Integrator(li) => (li.forward(y.view()), None),
                    OutputLayer::Spiking(l) => {
                        let ctx = l
                            .neuron::<F>(self.config.dt, self.config.discretization)
                            .forward(y.view(), None)?;
                        (ctx.output().spikes.clone(), Some(ctx))
                    }
                };
                return Ok(Trace {
                    input,
                    sparse,
                    hidden,
                    out_ctx,
                    output,
                });
            }
        }
        unreachable!("the output synapse returns")
    }

    /// Backward from `grad_output` `(T, B, K)` (`∂L/∂v` for the integrator; the spike
    /// gradient in the SPEC §3 convention for spiking outputs), plus optional extra
    /// `∂L/∂z_k` per hidden layer (e.g. a rate regulariser).
    ///
    /// # Errors
    /// Core shape/finiteness errors.
    pub fn backward(
        &self,
        trace: &Trace<F>,
        grad_output: ArrayView3<'_, F>,
        hidden_extra: Option<&[Array3<F>]>,
    ) -> Result<Gradients<F>> {
        let n_hidden = self.config.hidden.len();
        let mut guards = GuardStats::default();
        let mut grads: Vec<Option<Array2<F>>> = vec![None; self.weights.len()];
        let mut up = match (&self.config.output, &trace.out_ctx) {
            (OutputLayer::Integrator(li), _) => Upstream::Same(li.backward(grad_output)),
            (OutputLayer::Spiking(_), Some(ctx)) => {
                let g = ctx.backward(grad_output, None, None)?;
                add_guards(&mut guards, g.stats);
                Upstream::Stacked(g.grad_input)
            }
            (OutputLayer::Spiking(_), None) => unreachable!("spiking output keeps its context"),
        };
        for k in (0..=n_hidden).rev() {
            let x = trace.synapse_input(k);
            grads[k] = Some(synapse::weight_grad(
                &trace.sparse[k],
                x.as_slice().expect("standard layout"),
                up.g0(),
            )?);
            if k == 0 {
                break;
            }
            let mut gz = input_grad(self.weights[k].view(), up.g1())?;
            if let Some(extra) = hidden_extra {
                gz += &extra[k - 1];
            }
            let g = trace.hidden[k - 1].backward(gz.view(), None, None)?;
            add_guards(&mut guards, g.stats);
            up = Upstream::Stacked(g.grad_input);
        }
        Ok(Gradients {
            weights: grads.into_iter().map(|g| g.expect("all layers")).collect(),
            guards,
        })
    }
}

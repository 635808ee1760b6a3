//! The time-stepped network: EventProp hidden layers (synapse + the seed's LIF function,
//! stacked) and an output layer reached through a plain synapse — a leaky-integrator
//! readout ([`LeakyIntegrator`]) or spiking LIF neurons (for the first-spike-time loss).
//! The stepped engine (`eventprop-train`'s `engine::stepped`) runs it; the weights are passed in.
//!
//! Chain (docs/spec.md §3): layer `k`: `y_k = z_{k-1} W_k^T`, `z_k = LIF(y_k)`; output
//! `y_out = z_L W_out^T`, then `v = LI(y_out)` or `z_out = LIF(y_out)`.
//! Backward: the output layer turns `∂L/∂(output)` into `dL/dy_out` (LI adjoint) or the
//! EventProp stacked gradient `g = [tau_syn lambda_i, lambda_v - lambda_i]` (LIF);
//! `dL/dW_out = Σ g0 ⊗ z_L`, and the last hidden layer receives `grad_spikes = g1 W_out`;
//! the same step repeats layer by layer down to `W_1`.
//!
//! # Shapes
//! Input spikes `(T, B, N_in)`; hidden `k`: `W_k` `(N_k, N_{k-1})`; output `(T, B, K)`.

use crate::synapse::{self, input_grad, SparseRows, DENSE_ABOVE};
use crate::{
    synapse_forward, Discretization, EventPropNeuron, GuardStats, HwData, Lif, NeuronContext, Real,
};
use ndarray::{Array2, Array3, Array4, ArrayView2, ArrayView3, Axis};

use super::readout::LeakyIntegrator;
use crate::error::{Error, Result};
use crate::spec::{NetworkSpec, Readout};

/// A time-stepped network: its description, the time step and the adjoint
/// discretization of its LIF layers.
#[derive(Debug, Clone, PartialEq)]
pub struct SteppedNetwork {
    /// Sizes and neuron parameters.
    pub spec: NetworkSpec,
    /// Time step (s).
    pub dt: f64,
    /// Adjoint discretization of the LIF layers.
    pub discretization: Discretization,
}

fn neuron<F: Real>(lif: &Lif, dt: f64, discretization: Discretization) -> EventPropNeuron<F> {
    EventPropNeuron {
        params: lif.params(),
        dt: F::of(dt),
        discretization,
    }
}

/// The recorded observables of one layer on the time grid (hardware in the loop), each
/// `(T, B, N)`: spikes (zeros for an integrator output) and membrane (model units; zeros
/// where the chip recorded none — the LIF adjoint does not read it).
#[derive(Debug, Clone, PartialEq)]
pub struct HwLayer<F> {
    /// Spikes (0 or 1).
    pub spikes: Array3<F>,
    /// Membrane.
    pub membrane: Array3<F>,
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
    /// Spiking output context (for [`Readout::Spiking`]).
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
    /// Membrane `(T, B, N_k)` of hidden layer `k`.
    pub fn hidden_membrane(&self, k: usize) -> &Array3<F> {
        &self.hidden[k].output().membrane
    }
    /// Membrane `(T, B, K)` of the output layer (the output itself for an integrator).
    pub fn output_membrane(&self) -> &Array3<F> {
        self.out_ctx
            .as_ref()
            .map_or(&self.output, |c| &c.output().membrane)
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
        return synapse_forward(x.view(), w);
    }
    // The weight shapes are checked in `forward`, so this cannot panic.
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
    /// `dL/dW` per weight, same order and shapes as the weights passed in.
    pub weights: Vec<Array2<F>>,
    /// Guard counts summed over the LIF layers.
    pub guards: GuardStats,
}

fn add_guards(a: &mut GuardStats, b: GuardStats) {
    a.nonfinite_out += b.nonfinite_out;
    a.nonfinite_jump += b.nonfinite_jump;
    a.guarded_spikes += b.guarded_spikes;
}

impl SteppedNetwork {
    /// The leaky integrator of a [`Readout::Integrator`] output layer.
    fn integrator(&self, tau_syn: f64, tau_mem: f64) -> LeakyIntegrator {
        LeakyIntegrator {
            tau_syn,
            tau_mem,
            leak: self.spec.lif.leak,
            dt: self.dt,
        }
    }

    /// Forward over a batch of input spikes `(T, B, N_in)` with `weights` (shapes of
    /// [`NetworkSpec::weight_shapes`]).
    ///
    /// # Errors
    /// [`Error::Invalid`] for a wrong input width, non-finite input or wrong weight count;
    /// core shape/finiteness errors.
    pub fn forward<F: Real>(
        &self,
        weights: &[Array2<F>],
        x: ArrayView3<'_, F>,
    ) -> Result<Trace<F>> {
        self.forward_impl(weights, x, None)
    }

    /// Forward with hardware data (hardware in the loop): every LIF layer returns the
    /// recorded `hw[k]` (hidden layers, then a spiking output) unchanged through the seed
    /// function's `hw_data` path, its current recomputed from its input; an integrator
    /// output returns the recorded membrane (`hw.last().membrane`). The synapse inputs of
    /// the backward are the recorded spikes. `x` `(T, B, N_in)`; every `hw` array
    /// `(T, B, N_layer)`.
    ///
    /// # Errors
    /// As [`SteppedNetwork::forward`]; [`Error::Invalid`] naming `hw_data` for a wrong layer
    /// count or a missing output membrane; core shape errors naming `hw_spikes` /
    /// `hw_membrane`.
    pub fn forward_hw<F: Real>(
        &self,
        weights: &[Array2<F>],
        x: ArrayView3<'_, F>,
        hw: &[HwLayer<F>],
    ) -> Result<Trace<F>> {
        let n_hidden = self.spec.hidden.len();
        if hw.len() != n_hidden + 1 {
            return Err(Error::invalid(
                "hw_data",
                format!("{} layers (hidden layers and the output)", n_hidden + 1),
                hw.len(),
            ));
        }
        self.forward_impl(weights, x, Some(hw))
    }

    fn forward_impl<F: Real>(
        &self,
        weights: &[Array2<F>],
        x: ArrayView3<'_, F>,
        hw: Option<&[HwLayer<F>]>,
    ) -> Result<Trace<F>> {
        let spec = &self.spec;
        let n_hidden = spec.hidden.len();
        spec.check_weight_dims(weights.iter().map(|w| w.dim()))?;
        if x.dim().2 != spec.n_in {
            return Err(Error::invalid(
                "input",
                format!("(T, B, {}) spikes", spec.n_in),
                format!("{:?}", x.dim()),
            ));
        }
        if let Some(bad) = x.iter().find(|v| !v.is_finite()) {
            return Err(Error::invalid("input", "finite values", bad));
        }
        let input = x.as_standard_layout().into_owned();
        let hidden_neuron = neuron::<F>(&spec.lif, self.dt, self.discretization);
        let mut sparse = Vec::with_capacity(weights.len());
        let mut hidden: Vec<NeuronContext<F>> = Vec::with_capacity(n_hidden);
        let hw_data = |k: usize| {
            hw.map(|h| HwData {
                spikes: h[k].spikes.view(),
                membrane: h[k].membrane.view(),
                current: None,
            })
        };
        for (k, w) in weights[..n_hidden].iter().enumerate() {
            let z = hidden.last().map_or(&input, |c| &c.output().spikes);
            let sp = SparseRows::new(z.as_slice().expect("standard layout"), z.dim().2)?;
            let y = synapse_fwd(z, &sp, w.view())?;
            sparse.push(sp);
            hidden.push(hidden_neuron.forward(y.view(), hw_data(k))?);
        }
        let z = hidden.last().map_or(&input, |c| &c.output().spikes);
        let sp = SparseRows::new(z.as_slice().expect("standard layout"), z.dim().2)?;
        let y = synapse_fwd(z, &sp, weights[n_hidden].view())?;
        sparse.push(sp);
        let (output, out_ctx) = match spec.readout {
            Readout::Spiking(l) => {
                let ctx = neuron::<F>(&l, self.dt, self.discretization)
                    .forward(y.view(), hw_data(n_hidden))?;
                (ctx.output().spikes.clone(), Some(ctx))
            }
            Readout::Integrator { tau_syn, tau_mem } => match hw {
                None => (self.integrator(tau_syn, tau_mem).forward(y.view()), None),
                Some(h) => {
                    let v = &h[n_hidden].membrane;
                    if v.dim() != y.dim() {
                        return Err(Error::invalid(
                            "hw_membrane",
                            format!("output membrane of shape {:?}", y.dim()),
                            format!("{:?}", v.dim()),
                        ));
                    }
                    if let Some(bad) = v.iter().find(|v| !v.is_finite()) {
                        return Err(Error::invalid("hw_membrane", "finite values", bad));
                    }
                    (v.as_standard_layout().into_owned(), None)
                }
            },
        };
        Ok(Trace {
            input,
            sparse,
            hidden,
            out_ctx,
            output,
        })
    }

    /// Backward from `grad_output` `(T, B, K)` (`∂L/∂v` for the integrator; the spike
    /// gradient in the docs/spec.md §3 convention for spiking outputs), plus optional extra
    /// `∂L/∂z_k` per hidden layer (e.g. a rate regulariser).
    ///
    /// # Errors
    /// [`Error::Invalid`] when `trace` does not come from this network's forward (wrong
    /// layer count or output kind); core shape/finiteness errors.
    pub fn backward<F: Real>(
        &self,
        weights: &[Array2<F>],
        trace: &Trace<F>,
        grad_output: ArrayView3<'_, F>,
        hidden_extra: Option<&[Array3<F>]>,
    ) -> Result<Gradients<F>> {
        let n_hidden = self.spec.hidden.len();
        if weights.len() != n_hidden + 1 || trace.hidden.len() != n_hidden {
            return Err(Error::invalid(
                "trace",
                format!("{n_hidden} hidden layers and {} weights", n_hidden + 1),
                format!("{} and {}", trace.hidden.len(), weights.len()),
            ));
        }
        if hidden_extra.is_some_and(|e| e.len() != n_hidden) {
            return Err(Error::invalid(
                "hidden_extra",
                format!("{n_hidden} tensors"),
                hidden_extra.map_or(0, <[_]>::len),
            ));
        }
        let mut guards = GuardStats::default();
        let mut grads: Vec<Array2<F>> = Vec::with_capacity(weights.len());
        let mut up = match (self.spec.readout, &trace.out_ctx) {
            (Readout::Integrator { tau_syn, tau_mem }, None) => {
                Upstream::Same(self.integrator(tau_syn, tau_mem).backward(grad_output))
            }
            (Readout::Spiking(_), Some(ctx)) => {
                let g = ctx.backward(grad_output, None, None)?;
                add_guards(&mut guards, g.stats);
                Upstream::Stacked(g.grad_input)
            }
            _ => {
                return Err(Error::invalid(
                    "trace",
                    "the output kind of this network",
                    "a trace of another output kind",
                ))
            }
        };
        for k in (0..=n_hidden).rev() {
            let x = trace.synapse_input(k);
            grads.push(synapse::weight_grad(
                &trace.sparse[k],
                x.as_slice().expect("standard layout"),
                up.g0(),
            )?);
            if k == 0 {
                break;
            }
            let mut gz = input_grad(weights[k].view(), up.g1())?;
            if let Some(extra) = hidden_extra {
                gz += &extra[k - 1];
            }
            let g = trace.hidden[k - 1].backward(gz.view(), None, None)?;
            add_guards(&mut guards, g.stats);
            up = Upstream::Stacked(g.grad_input);
        }
        grads.reverse();
        Ok(Gradients {
            weights: grads,
            guards,
        })
    }
}

//! Fused event-driven training layer: synapse and LIF neuron in one pass, with memory
//! O(spikes + events) instead of the seed function's dense `(T, B, N)` arrays.
//!
//! [`FusedLif`] computes exactly the seed function's numbers (same update order, same
//! adjoint, both [`Discretization`]s) for a layer fed by spike events:
//!
//! * **forward** ([`FusedLif::forward`]): for each batch row, the synaptic input of a step
//!   is the sum of the weight rows `W^T[j, :]` of its input events (in channel order, as
//!   the seed's event-driven synapse); the LIF step is branch-free over `N`; spikes are
//!   compacted into an [`EventRow`] together with the one current the adjoint needs
//!   (`i[t-1]` or `i[t]`, see [`Discretization`]). Nothing else is kept.
//! * **backward** ([`FusedLif::backward`]): reverse time per row; `lambda_i`, `lambda_v`
//!   decay as in [`crate::lif::backward`], jumps are applied at the stored spikes only, and
//!   at every input event of step `t` the row `x tau_syn lambda_i[t]` is added to the
//!   weight gradient (the seed's `Σ g0 ⊗ x`), and `W^T[j, :] · (lambda_v - lambda_i)` (the
//!   seed's `g1 W`) is the gradient of that event for the layer below — which only needs
//!   it at its own spikes, i.e. at these input events.
//!
//! Rows run in parallel (rayon) in a fixed number of groups ([`GROUPS`]), each with its
//! own scratch rows and weight-gradient buffer, summed in group order: the result does not
//! depend on the number of threads. All buffers live in the layer and are reused.
//!
//! Guards: the seed also counts `0/0` guards where a neuron does not spike (they do not
//! change the gradient); the fused layer never evaluates those terms, so its
//! [`GuardStats`] count the guards at spikes only.
//!
//! **Recurrent layers** ([`FusedLif::forward_recurrent`], [`FusedLif::backward_recurrent`]):
//! a recurrent weight `R` `(N, N)` feeds the layer's spikes of step `t` into step `t + 1`
//! (their rows `R^T[m, :]` are added into `y` after the input events'), in the update order
//! of [`crate::stepped::layer::SteppedLayer`]; in reverse, each spike's gradient gains
//! `R^T[m, :] · (lambda_v - lambda_i)` (the adjoint of the step it drives) and the layer's
//! own spikes are input events for the recurrent weight gradient. Nothing of size `T N`
//! is kept: memory stays O(events + spikes) per row, plus one `(N, N)` partial per group.
//!
//! **Per-neuron parameters** ([`FusedLif::set_params`]) and their gradients: thresholds and
//! reset at the spikes ([`FusedLif::grad_threshold`], [`FusedLif::grad_reset`]); time
//! constants ([`FusedLif::set_tau_grads`], [`FusedLif::grad_tau_mem`],
//! [`FusedLif::grad_tau_syn`]) from three auxiliary adjoint rows run backward with
//! `lambda` — `P` (decay `1 - k_syn`, driven by `lambda_i`), `R` (decay `1 - k_mem`,
//! driven by `lambda_v`, restarted at the neuron's spikes) and `U` (decay `1 - k_syn`,
//! driven by `lambda_v - k_mem R`, `R` taken as 0 at a step where the neuron spikes) — which
//! move [`crate::stepped::layer::SteppedLayer`]'s sums over steps of `lambda` times the
//! state onto the input events (the current is linear in the inputs, the membrane too
//! between spikes): `dL/dtau_syn = k_syn Σ_s y[s] P[s]`, `dL/dtau_mem = -k_mem (Σ_s y[s]
//! U[s] - (reset - leak) Σ_{spikes} R)`, `y[s]` the input current of step `s`. No state of
//! size `T` is kept (derivation:
//! docs/stepped.md, "Time-constant gradients without stored state").
//!
//! # Shapes
//! Input events: `B` rows of `T` steps, channels `< N_in`; weight `(N, N_in)`; output
//! spikes `B` rows of `T` steps, channels `< N`; weight gradient `(N, N_in)`.
//!
//! # Example
//! ```
//! use eventprop_core::fused::{EventBatch, FusedLif};
//! use eventprop_core::{Discretization, LifParams};
//! use ndarray::{Array2, Array3};
//!
//! let mut x = Array3::<f64>::zeros((20, 1, 2));
//! x[[2, 0, 0]] = 1.0;
//! let input = EventBatch::from_dense(x.view())?;
//! let w = Array2::from_elem((3, 2), 5.0);
//! let params = LifParams::scalar(0.0, 0.0, 1.0, 5e-6, 1e-5);
//! let mut layer = FusedLif::new(&params, 3, 1e-6, Discretization::Seed)?;
//! let spikes = layer.forward(&input, w.view())?;
//! assert!(!spikes.is_empty());
//! let grad = vec![vec![1.0; spikes.rows()[0].len()]];
//! let mut gw = Array2::zeros((3, 2));
//! let stats = layer.backward(&input, &grad, &mut gw, None)?;
//! assert_eq!(stats.guarded_spikes, 0);
//! # Ok::<(), eventprop_core::Error>(())
//! ```

mod backward;
mod events;
mod forward;
pub(crate) mod simd;

use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

pub use events::{EventBatch, EventRow};

use crate::error::{check_finite, Error, Result};
use crate::lif::{Discretization, GuardStats};
use crate::params::{Coefficients, LifParams};
use crate::Real;
use backward::{row_backward, BackwardScratch, RowAdjoint, RowRecurrent};
use forward::{row_current, row_forward, ForwardScratch};

/// Number of row groups: the unit of parallel work and of weight-gradient partial sums.
/// Fixed, so that results are the same for every thread count.
pub const GROUPS: usize = 8;

/// Shape of the last forward: what the backward must be called with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    steps: usize,
    batch: usize,
    n_in: usize,
    events: usize,
    /// Whether the forward was recurrent.
    recurrent: bool,
}

impl Stamp {
    fn of<F: Real>(input: &EventBatch<F>, recurrent: bool) -> Self {
        Self {
            steps: input.steps(),
            batch: input.batch(),
            n_in: input.channels(),
            events: input.len(),
            recurrent,
        }
    }
}

/// [`Error::Shape`] naming `weight` unless it is `(n, n_in)`.
fn check_weight_shape<F>(weight: &ArrayView2<'_, F>, n: usize, n_in: usize) -> Result<()> {
    if weight.dim() != (n, n_in) {
        return Err(Error::Shape {
            arg: "weight",
            expected: format!("(N, N_in) = ({n}, {n_in})"),
            actual: format!("{:?}", weight.dim()),
        });
    }
    Ok(())
}

/// [`Error::Overflow`] naming `input` at batch row `b`.
fn input_overflow<F: Real>(b: usize, quantity: &'static str) -> Error {
    Error::Overflow {
        arg: "input",
        quantity,
        dtype: F::NAME,
        index: vec![b],
        value: f64::INFINITY,
    }
}

/// A fused synapse + LIF layer with its reusable buffers.
#[derive(Debug, Clone)]
pub struct FusedLif<F> {
    coefficients: Coefficients<F>,
    discretization: Discretization,
    /// The forward's weight, transposed `(N_in, N)`.
    wt: Vec<F>,
    /// The forward's recurrent weight, transposed `(N, N)` (empty when not recurrent).
    rt: Vec<F>,
    spikes: EventBatch<F>,
    /// Per row: the current `i*` at each spike.
    i_star: Vec<Vec<F>>,
    fwd: Vec<ForwardScratch<F>>,
    bwd: Vec<BackwardScratch<F>>,
    /// Per group: the weight-gradient partial sum `(N_in, N)`.
    partials: Vec<Vec<F>>,
    /// Per group: the recurrent weight-gradient partial sum `(N, N)` (recurrent only).
    rec_partials: Vec<Vec<F>>,
    /// `dL/dthreshold` per neuron of the last backward (batch sum).
    grad_threshold: Vec<F>,
    /// `dL/dreset` per neuron of the last backward (batch sum).
    grad_reset: Vec<F>,
    /// Whether the backward computes the time-constant gradients.
    tau_grads: bool,
    /// `dL/dtau_syn` per neuron of the last backward (batch sum; empty when off).
    grad_tau_syn: Vec<F>,
    /// `dL/dtau_mem` per neuron of the last backward (batch sum; empty when off).
    grad_tau_mem: Vec<F>,
    stamp: Option<Stamp>,
}

/// The smaller of two optional row indices (the first failing row, whatever the thread
/// count).
fn first_row(a: Option<usize>, b: Option<usize>) -> Option<usize> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

/// Rows per group for a batch of `b` rows.
fn group_len(b: usize) -> usize {
    b.div_ceil(GROUPS).max(1)
}

impl<F: Real> FusedLif<F> {
    /// A layer of `n` neurons with `params` (scalar or per neuron), step `dt`.
    ///
    /// # Errors
    /// As [`LifParams::resolve`].
    ///
    /// ```
    /// use eventprop_core::fused::FusedLif;
    /// use eventprop_core::{Discretization, Error, LifParams};
    /// let err = FusedLif::new(&LifParams::<f32>::default(), 4, 0.0, Discretization::Seed)
    ///     .unwrap_err();
    /// assert!(matches!(err, Error::NonPositive { arg: "dt", .. }));
    /// ```
    pub fn new(
        params: &LifParams<F>,
        n: usize,
        dt: F,
        discretization: Discretization,
    ) -> Result<Self> {
        let coefficients = params.resolve(n, dt)?;
        Ok(Self {
            coefficients,
            discretization,
            wt: Vec::new(),
            rt: Vec::new(),
            spikes: EventBatch::empty(0, 0, n),
            i_star: Vec::new(),
            fwd: Vec::new(),
            bwd: Vec::new(),
            partials: Vec::new(),
            rec_partials: Vec::new(),
            grad_threshold: Vec::new(),
            grad_reset: Vec::new(),
            tau_grads: false,
            grad_tau_syn: Vec::new(),
            grad_tau_mem: Vec::new(),
            stamp: None,
        })
    }

    /// Number of neurons `N`.
    pub fn neurons(&self) -> usize {
        self.coefficients.len()
    }

    /// The spikes of the last forward.
    pub fn spikes(&self) -> &EventBatch<F> {
        &self.spikes
    }

    /// Replaces the neuron parameters (scalar or per neuron; `N` and `dt` stay), e.g. the
    /// trained thresholds of the next batch. The next backward needs a forward with them.
    ///
    /// # Errors
    /// As [`LifParams::resolve`].
    ///
    /// ```
    /// use eventprop_core::fused::FusedLif;
    /// use eventprop_core::{Discretization, Error, LifParams, Param};
    /// let mut layer = FusedLif::new(&LifParams::<f64>::default(), 2, 1e-6, Discretization::Corrected)?;
    /// let mut p = LifParams::<f64>::default();
    /// p.threshold = Param::PerNeuron(vec![1.0, 1.5]);
    /// layer.set_params(&p)?;
    /// p.threshold = Param::PerNeuron(vec![1.0]);
    /// assert!(matches!(layer.set_params(&p).unwrap_err(), Error::Shape { arg: "threshold", .. }));
    /// # Ok::<(), eventprop_core::Error>(())
    /// ```
    pub fn set_params(&mut self, params: &LifParams<F>) -> Result<()> {
        self.coefficients = params.resolve(self.neurons(), self.coefficients.dt)?;
        self.stamp = None;
        Ok(())
    }

    /// `dL/dthreshold` per neuron from the last backward, summed over the batch (the sums
    /// of [`crate::stepped::layer::SteppedLayer`]: `-tau_mem lambda_v` after each spike's
    /// jump); empty before any backward.
    pub fn grad_threshold(&self) -> &[F] {
        &self.grad_threshold
    }

    /// `dL/dreset` per neuron from the last backward, summed over the batch (`tau_mem
    /// lambda_v` before each spike's jump); `dL/dleak` is `-(dL/dthreshold + dL/dreset)`.
    pub fn grad_reset(&self) -> &[F] {
        &self.grad_reset
    }

    /// Whether the backward also computes `dL/dtau_syn` and `dL/dtau_mem` per neuron
    /// ([`FusedLif::grad_tau_syn`], [`FusedLif::grad_tau_mem`]; off by default: they cost
    /// three more adjoint rows per step and a pass over each step's input events).
    pub fn set_tau_grads(&mut self, on: bool) {
        self.tau_grads = on;
    }

    /// `dL/dtau_syn` per neuron from the last backward with [`FusedLif::set_tau_grads`]
    /// on, summed over the batch (the sums of [`crate::stepped::layer::SteppedLayer`],
    /// `(dt/tau_syn) Σ_t lambda_i[t-1] i[t]`, accumulated from auxiliary adjoints at the
    /// input events: module docs); empty otherwise.
    pub fn grad_tau_syn(&self) -> &[F] {
        &self.grad_tau_syn
    }

    /// `dL/dtau_mem` per neuron from the last backward with [`FusedLif::set_tau_grads`]
    /// on, summed over the batch (`-(dt/tau_mem) Σ_t lambda_v[t-1] (i[t] - (v[t-1] -
    /// leak))` of [`crate::stepped::layer::SteppedLayer`]); empty otherwise.
    pub fn grad_tau_mem(&self) -> &[F] {
        &self.grad_tau_mem
    }

    /// Keeps the transpose `(N_in, N)` of `weight` (shape already checked) for the passes;
    /// [`Error::NonFinite`] naming `weight` for NaN/inf.
    fn load_weight(&mut self, weight: ArrayView2<'_, F>) -> Result<()> {
        let (n, n_in) = weight.dim();
        self.wt.clear();
        self.wt.extend(weight.t().iter().copied());
        check_finite("weight", &self.wt, &[n_in, n])
    }

    /// Forward of a batch of input events with `weight` `(N, N_in)`; returns the spikes
    /// (value 1 each; spikes of step `t` are `z[t]` of the seed function).
    ///
    /// # Errors
    /// [`Error::Shape`] naming `weight` when it is not `(N, input.channels())`;
    /// [`Error::NonFinite`] for NaN/inf in `weight`; [`Error::Overflow`] naming `input`
    /// (index `[b]`) when a row's current or membrane left the float range.
    pub fn forward(
        &mut self,
        input: &EventBatch<F>,
        weight: ArrayView2<'_, F>,
    ) -> Result<&EventBatch<F>> {
        self.forward_with(input, weight, None)
    }

    /// [`FusedLif::forward`] of a recurrent layer: the spikes of step `t` also drive step
    /// `t + 1` through `recurrent` `(N, N)` (row = receiving neuron), as
    /// [`crate::stepped::layer::SteppedLayer`] with `r = recurrent`. Follow it with
    /// [`FusedLif::backward_recurrent`].
    ///
    /// # Errors
    /// As [`FusedLif::forward`]; [`Error::Shape`] naming `recurrent` when it is not
    /// `(N, N)`, [`Error::NonFinite`] naming it for NaN/inf.
    ///
    /// ```
    /// use eventprop_core::fused::{EventBatch, FusedLif};
    /// use eventprop_core::{Discretization, Error, LifParams};
    /// use ndarray::{Array2, Array3};
    ///
    /// let mut x = Array3::<f64>::zeros((20, 1, 2));
    /// x[[2, 0, 0]] = 1.0;
    /// let input = EventBatch::from_dense(x.view())?;
    /// let params = LifParams::scalar(0.0, 0.0, 1.0, 5e-6, 1e-5);
    /// let mut layer = FusedLif::new(&params, 3, 1e-6, Discretization::Corrected)?;
    /// let w = Array2::from_elem((3, 2), 5.0);
    /// let plain = layer.forward(&input, w.view())?.len();
    /// // Excitatory recurrence: more spikes than without.
    /// let r = Array2::from_elem((3, 3), 2.0);
    /// assert!(layer.forward_recurrent(&input, w.view(), r.view())?.len() > plain);
    /// let err = layer.forward_recurrent(&input, w.view(), w.view()).unwrap_err();
    /// assert!(matches!(err, Error::Shape { arg: "recurrent", .. }));
    /// # Ok::<(), eventprop_core::Error>(())
    /// ```
    pub fn forward_recurrent(
        &mut self,
        input: &EventBatch<F>,
        weight: ArrayView2<'_, F>,
        recurrent: ArrayView2<'_, F>,
    ) -> Result<&EventBatch<F>> {
        self.forward_with(input, weight, Some(recurrent))
    }

    fn forward_with(
        &mut self,
        input: &EventBatch<F>,
        weight: ArrayView2<'_, F>,
        recurrent: Option<ArrayView2<'_, F>>,
    ) -> Result<&EventBatch<F>> {
        let n = self.neurons();
        let (steps, batch, n_in) = (input.steps(), input.batch(), input.channels());
        check_weight_shape(&weight, n, n_in)?;
        self.stamp = None;
        self.load_weight(weight)?;
        self.rt.clear();
        if let Some(r) = recurrent {
            if r.dim() != (n, n) {
                return Err(Error::Shape {
                    arg: "recurrent",
                    expected: format!("(N, N) = ({n}, {n})"),
                    actual: format!("{:?}", r.dim()),
                });
            }
            if let Some(((q, m), v)) = r.indexed_iter().find(|(_, v)| !v.is_finite()) {
                return Err(Error::NonFinite {
                    arg: "recurrent",
                    index: vec![q, m],
                    value: v.to_f64().unwrap_or(f64::NAN),
                });
            }
            self.rt.extend(r.t().iter().copied());
        }
        self.spikes.reset_shape(steps, batch, n);
        self.i_star.resize_with(batch, Vec::new);
        let gl = group_len(batch);
        self.fwd.resize_with(batch.div_ceil(gl), Default::default);
        let (c, disc, wt) = (&self.coefficients, self.discretization, &self.wt[..]);
        let rt = recurrent.map(|_| &self.rt[..]);
        let bad = self
            .spikes
            .rows_mut()
            .par_chunks_mut(gl)
            .zip(self.i_star.par_chunks_mut(gl))
            .zip(input.rows().par_chunks(gl))
            .zip(self.fwd.par_iter_mut())
            .enumerate()
            .map(|(g, (((out, istar), inp), scratch))| {
                let mut bad = None;
                for (r, ((o, is), x)) in out.iter_mut().zip(istar).zip(inp).enumerate() {
                    if !row_forward(c, disc, wt, rt, x, steps, scratch, o, is) && bad.is_none() {
                        bad = Some(g * gl + r);
                    }
                }
                bad
            })
            .reduce(|| None, first_row);
        if let Some(b) = bad {
            return Err(input_overflow::<F>(b, "synaptic current or membrane"));
        }
        self.stamp = Some(Stamp::of(input, recurrent.is_some()));
        Ok(&self.spikes)
    }

    /// The hardware-in-the-loop forward: the spikes are `recorded` (e.g. on a chip, one
    /// event of value 1 per spike, `B` rows of `T` steps, channels `< N`), returned
    /// unchanged as the seed function's `hw_data` path returns them; the current is
    /// recomputed from `input` and `weight` (the update of [`FusedLif::forward`], the same
    /// numbers) and kept at the recorded spikes for [`FusedLif::backward`]. Recorded spikes
    /// equal to this layer's own forward spikes give its backward bit for bit.
    ///
    /// # Errors
    /// As [`FusedLif::forward`]; [`Error::Shape`] naming `hw_spikes` when `recorded` is not
    /// `T` steps × `B` rows × `N` channels of `input` and this layer, or holds a value
    /// other than 1.
    pub fn forward_hw(
        &mut self,
        input: &EventBatch<F>,
        weight: ArrayView2<'_, F>,
        recorded: &EventBatch<F>,
    ) -> Result<&EventBatch<F>> {
        self.stamp = None;
        let n = self.neurons();
        let (steps, batch, n_in) = (input.steps(), input.batch(), input.channels());
        check_weight_shape(&weight, n, n_in)?;
        if (recorded.steps(), recorded.batch(), recorded.channels()) != (steps, batch, n) {
            return Err(Error::Shape {
                arg: "hw_spikes",
                expected: format!("(T, B, N) = ({steps}, {batch}, {n}) events"),
                actual: format!(
                    "({}, {}, {})",
                    recorded.steps(),
                    recorded.batch(),
                    recorded.channels()
                ),
            });
        }
        if let Some(v) = recorded
            .rows()
            .iter()
            .flat_map(|r| r.values())
            .find(|&&v| v != F::one())
        {
            return Err(Error::Shape {
                arg: "hw_spikes",
                expected: "spike events of value 1".into(),
                actual: format!("an event of value {}", v.to_f64().unwrap_or(f64::NAN)),
            });
        }
        self.load_weight(weight)?;
        self.spikes.clone_from(recorded);
        self.i_star.resize_with(batch, Vec::new);
        let gl = group_len(batch);
        self.fwd.resize_with(batch.div_ceil(gl), Default::default);
        let (c, disc, wt) = (&self.coefficients, self.discretization, &self.wt[..]);
        let bad = self
            .i_star
            .par_chunks_mut(gl)
            .zip(self.spikes.rows().par_chunks(gl))
            .zip(input.rows().par_chunks(gl))
            .zip(self.fwd.par_iter_mut())
            .enumerate()
            .map(|(g, (((istar, sp), inp), scratch))| {
                let mut bad = None;
                for (r, ((is, s), x)) in istar.iter_mut().zip(sp).zip(inp).enumerate() {
                    if !row_current(c, disc, wt, x, s, steps, scratch, is) && bad.is_none() {
                        bad = Some(g * gl + r);
                    }
                }
                bad
            })
            .reduce(|| None, first_row);
        if let Some(b) = bad {
            return Err(input_overflow::<F>(b, "synaptic current"));
        }
        self.stamp = Some(Stamp::of(input, false));
        Ok(&self.spikes)
    }

    /// Backward after [`FusedLif::forward`] on the same `input`: `grad_spikes` holds, per
    /// row, `dL/dz` at each spike of [`FusedLif::spikes`] (aligned with its events; the
    /// seed's `grad_spikes` elsewhere has no effect). Writes `dL/dW` `(N, N_in)` into
    /// `grad_weight` (overwritten) and, if given, the gradient at each input event (the
    /// seed's `grad_input[1] W`, aligned with `input`'s events) into `grad_input`.
    ///
    /// # Errors
    /// [`Error::Shape`] naming `input` when no forward ran or `input` differs in shape or
    /// event count from the forward's; naming `grad_spikes` or `grad_weight` for
    /// mismatched lengths; [`Error::NonFinite`] for NaN/inf in `grad_spikes`;
    /// [`Error::Overflow`] naming `grad_spikes` (index `[b]`) when the adjoint overflows.
    pub fn backward(
        &mut self,
        input: &EventBatch<F>,
        grad_spikes: &[Vec<F>],
        grad_weight: &mut Array2<F>,
        grad_input: Option<&mut Vec<Vec<F>>>,
    ) -> Result<GuardStats> {
        self.backward_with(input, grad_spikes, grad_weight, None, grad_input)
    }

    /// [`FusedLif::backward`] after [`FusedLif::forward_recurrent`]: also writes `dL/dR`
    /// `(N, N)` into `grad_recurrent` (overwritten); the spike gradients include the
    /// recurrent path (as [`crate::stepped::layer::SteppedLayer::backward`]).
    ///
    /// # Errors
    /// As [`FusedLif::backward`]; [`Error::Shape`] naming `grad_recurrent` when it is not
    /// `(N, N)`, and naming `input` when the last forward was not recurrent (or, for
    /// [`FusedLif::backward`], when it was).
    pub fn backward_recurrent(
        &mut self,
        input: &EventBatch<F>,
        grad_spikes: &[Vec<F>],
        grad_weight: &mut Array2<F>,
        grad_recurrent: &mut Array2<F>,
        grad_input: Option<&mut Vec<Vec<F>>>,
    ) -> Result<GuardStats> {
        self.backward_with(
            input,
            grad_spikes,
            grad_weight,
            Some(grad_recurrent),
            grad_input,
        )
    }

    fn backward_with(
        &mut self,
        input: &EventBatch<F>,
        grad_spikes: &[Vec<F>],
        grad_weight: &mut Array2<F>,
        grad_recurrent: Option<&mut Array2<F>>,
        grad_input: Option<&mut Vec<Vec<F>>>,
    ) -> Result<GuardStats> {
        let n = self.neurons();
        let recurrent = grad_recurrent.is_some();
        let stamp = Stamp::of(input, recurrent);
        if let Some(gr) = grad_recurrent.as_deref() {
            if gr.dim() != (n, n) {
                return Err(Error::Shape {
                    arg: "grad_recurrent",
                    expected: format!("({n}, {n})"),
                    actual: format!("{:?}", gr.dim()),
                });
            }
        }
        if self.stamp != Some(stamp) {
            return Err(Error::Shape {
                arg: "input",
                expected: match self.stamp {
                    Some(s) => format!(
                        "the forward's input: T = {}, B = {}, N_in = {}, {} events, {}",
                        s.steps,
                        s.batch,
                        s.n_in,
                        s.events,
                        kind(s.recurrent)
                    ),
                    None => "a forward before the backward".into(),
                },
                actual: format!(
                    "T = {}, B = {}, N_in = {}, {} events, {}",
                    stamp.steps,
                    stamp.batch,
                    stamp.n_in,
                    stamp.events,
                    kind(stamp.recurrent)
                ),
            });
        }
        let (steps, batch, n_in) = (stamp.steps, stamp.batch, stamp.n_in);
        if grad_weight.dim() != (n, n_in) {
            return Err(Error::Shape {
                arg: "grad_weight",
                expected: format!("({n}, {n_in})"),
                actual: format!("{:?}", grad_weight.dim()),
            });
        }
        let spike_rows = self.spikes.rows();
        if grad_spikes.len() != batch
            || grad_spikes
                .iter()
                .zip(spike_rows)
                .any(|(g, s)| g.len() != s.len())
        {
            return Err(Error::Shape {
                arg: "grad_spikes",
                expected: format!("{batch} rows with one value per spike"),
                actual: format!("{} rows", grad_spikes.len()),
            });
        }
        for (b, g) in grad_spikes.iter().enumerate() {
            if let Some(p) = g.iter().position(|v| !v.is_finite()) {
                return Err(Error::NonFinite {
                    arg: "grad_spikes",
                    index: vec![b, p],
                    value: g[p].to_f64().unwrap_or(f64::NAN),
                });
            }
        }
        let mut gi_rows: Vec<Option<&mut [F]>> = match grad_input {
            Some(v) => {
                v.resize_with(batch, Vec::new);
                v.iter_mut()
                    .zip(input.rows())
                    .map(|(g, r)| {
                        g.resize(r.len(), F::zero());
                        Some(&mut g[..])
                    })
                    .collect()
            }
            None => (0..batch).map(|_| None).collect(),
        };
        let gl = group_len(batch);
        let groups = batch.div_ceil(gl);
        self.bwd.resize_with(groups, Default::default);
        self.partials.resize_with(groups, Vec::new);
        self.rec_partials
            .resize_with(if recurrent { groups } else { 0 }, Vec::new);
        let mut rec_partials: Vec<Option<&mut Vec<F>>> = match recurrent {
            true => self.rec_partials.iter_mut().map(Some).collect(),
            false => (0..groups).map(|_| None).collect(),
        };
        let (c, wt, rt) = (&self.coefficients, &self.wt[..], &self.rt[..]);
        let taus = self.tau_grads;
        let (stats, bad) = self
            .partials
            .par_iter_mut()
            .zip(rec_partials.par_iter_mut())
            .zip(self.bwd.par_iter_mut())
            .zip(gi_rows.par_chunks_mut(gl))
            .enumerate()
            .map(|(g, (((partial, rec_partial), scratch), gi))| {
                partial.clear();
                partial.resize(n_in * n, F::zero());
                if let Some(rp) = rec_partial.as_deref_mut() {
                    rp.clear();
                    rp.resize(n * n, F::zero());
                }
                scratch.start_params(n);
                let mut stats = GuardStats::default();
                let mut bad = None;
                for (r, gi) in gi.iter_mut().enumerate() {
                    let b = g * gl + r;
                    let row = RowAdjoint {
                        input: &input.rows()[b],
                        spikes: &spike_rows[b],
                        i_star: &self.i_star[b],
                        grad_spikes: &grad_spikes[b],
                    };
                    let rec = rec_partial.as_deref_mut().map(|rp| RowRecurrent {
                        rt,
                        grad_rt: &mut rp[..],
                    });
                    let (s, ok) = row_backward(
                        c,
                        wt,
                        &row,
                        steps,
                        scratch,
                        partial,
                        rec,
                        gi.as_deref_mut(),
                        taus,
                    );
                    stats += s;
                    if !ok && bad.is_none() {
                        bad = Some(b);
                    }
                }
                (stats, bad)
            })
            .reduce(
                || (GuardStats::default(), None),
                |a, b| (a.0 + b.0, first_row(a.1, b.1)),
            );
        if let Some(b) = bad {
            return Err(Error::Overflow {
                arg: "grad_spikes",
                quantity: "adjoint",
                dtype: F::NAME,
                index: vec![b],
                value: f64::INFINITY,
            });
        }
        // Sum the group partials in group order, transposing to (N, N_in).
        grad_weight.fill(F::zero());
        for partial in self.partials[..groups].iter().filter(|_| n > 0) {
            match grad_weight.as_slice_mut() {
                Some(gw) => {
                    for (j, src) in partial.chunks_exact(n).enumerate() {
                        for (o, &v) in src.iter().enumerate() {
                            gw[o * n_in + j] += v;
                        }
                    }
                }
                None => {
                    for (j, src) in partial.chunks_exact(n).enumerate() {
                        for (o, &v) in src.iter().enumerate() {
                            grad_weight[[o, j]] += v;
                        }
                    }
                }
            }
        }
        // The parameter gradients, summed in group order.
        for b in [&mut self.grad_threshold, &mut self.grad_reset] {
            b.clear();
            b.resize(n, F::zero());
        }
        for scratch in &self.bwd[..groups] {
            let (th, re) = scratch.param_grads();
            for (a, &v) in self.grad_threshold.iter_mut().zip(th) {
                *a += v;
            }
            for (a, &v) in self.grad_reset.iter_mut().zip(re) {
                *a += v;
            }
        }
        self.grad_tau_syn.clear();
        self.grad_tau_mem.clear();
        if taus {
            self.grad_tau_syn.resize(n, F::zero());
            self.grad_tau_mem.resize(n, F::zero());
            for scratch in &self.bwd[..groups] {
                let (ts, tm) = scratch.tau_grads();
                for (a, &v) in self.grad_tau_syn.iter_mut().zip(ts) {
                    *a += v;
                }
                for (a, &v) in self.grad_tau_mem.iter_mut().zip(tm) {
                    *a += v;
                }
            }
        }
        if let Some(gr) = grad_recurrent {
            gr.fill(F::zero());
            for partial in self.rec_partials[..groups].iter().filter(|_| n > 0) {
                for (m, src) in partial.chunks_exact(n).enumerate() {
                    for (q, &v) in src.iter().enumerate() {
                        gr[[q, m]] += v;
                    }
                }
            }
        }
        Ok(stats)
    }
}

/// How a forward was run, for the backward's shape error.
fn kind(recurrent: bool) -> &'static str {
    if recurrent {
        "recurrent"
    } else {
        "feed-forward"
    }
}

//! The EventProp LIF neuron function: the seed's `EventPropNeuronFunction`.
//!
//! [`EventPropNeuron::forward`] integrates the LIF dynamics (or passes recorded hardware
//! observables through) and returns a [`NeuronContext`]; [`NeuronContext::backward`]
//! runs the EventProp adjoint. Kernels live in [`forward`] and [`backward`]; the equations
//! are in the crate docs.
//!
//! # Shapes
//! Time-major: `input` `(T, B, N)` (or the seed's stacked `(2, T, B, N)`, whose second
//! half is ignored), outputs `(T, B, N)`, gradient `(2, T, B, N)`.

pub mod backward;
pub mod forward;

use std::mem::MaybeUninit;

use ndarray::{
    Array3, Array4, ArrayView3, ArrayView4, ArrayViewD, ArrayViewMut3, ArrayViewMut4, Axis, Ix3,
    Ix4,
};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{all_finite, check_finite, check_shape, fmt_shape, Error, Result};
use crate::params::{Coefficients, LifParams};
use crate::rows::{group_size, split_time_rows};
use crate::Real;

/// Which current the jump terms `dv_m`, `dv_p` of the adjoint use at a spike at step `t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Discretization {
    /// `i[t-1]`, as the seed does (default, bit-compatible with the seed).
    #[default]
    Seed,
    /// `i[t]`, the current that drove the crossing at step `t`. Converges to the exact
    /// EventProp gradient as `dt → 0`; see DESIGN.md for the measured errors.
    Corrected,
}

impl std::str::FromStr for Discretization {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "seed" => Ok(Self::Seed),
            "corrected" => Ok(Self::Corrected),
            other => Err(format!(
                "discretization: expected `seed` or `corrected`, got `{other}`"
            )),
        }
    }
}

impl std::fmt::Display for Discretization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Seed => "seed",
            Self::Corrected => "corrected",
        })
    }
}

/// Counts of the numerical guards the adjoint applied (the seed zeroes these silently).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GuardStats {
    /// Entries where `out = z * grad_spikes / dv_m` was not finite and was set to 0.
    pub nonfinite_out: u64,
    /// Entries where `jump = z * dv_p / dv_m` was not finite and was set to 0.
    pub nonfinite_jump: u64,
    /// Of the guarded entries, those at a spike (`z != 0`): there the guard changes the
    /// gradient (the spike's contribution is dropped). Guards at `z = 0` only replace a
    /// `0/0` by the intended 0.
    pub guarded_spikes: u64,
}

impl std::ops::AddAssign for GuardStats {
    fn add_assign(&mut self, o: Self) {
        self.nonfinite_out += o.nonfinite_out;
        self.nonfinite_jump += o.nonfinite_jump;
        self.guarded_spikes += o.guarded_spikes;
    }
}

impl std::ops::Add for GuardStats {
    type Output = Self;
    fn add(mut self, o: Self) -> Self {
        self += o;
        self
    }
}

/// Observables recorded on neuromorphic hardware, returned unchanged by the forward.
#[derive(Debug, Clone)]
pub struct HwData<'a, F> {
    /// Spikes `(T, B, N)`.
    pub spikes: ArrayView3<'a, F>,
    /// Membrane trace `(T, B, N)`.
    pub membrane: ArrayView3<'a, F>,
    /// Synaptic current `(T, B, N)`; recomputed from the input when `None`.
    pub current: Option<ArrayView3<'a, F>>,
}

/// The seed's neuron function with its settings.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPropNeuron<F> {
    /// Neuron parameters (scalar or per neuron).
    pub params: LifParams<F>,
    /// Step width in seconds (seed default `1e-6`).
    pub dt: F,
    /// Current used by the adjoint's jump terms.
    pub discretization: Discretization,
}

impl<F: Real> Default for EventPropNeuron<F> {
    fn default() -> Self {
        Self {
            params: LifParams::default(),
            dt: F::of(1e-6),
            discretization: Discretization::Seed,
        }
    }
}

/// Outputs of the forward, each `(T, B, N)`.
#[derive(Debug, Clone, PartialEq)]
pub struct NeuronOutput<F> {
    /// Spikes `z` (0 or 1; hardware values unchanged).
    pub spikes: Array3<F>,
    /// Membrane `v`.
    pub membrane: Array3<F>,
    /// Synaptic current `i`.
    pub current: Array3<F>,
}

/// Caller-provided buffers that [`EventPropNeuron::forward_into`] writes the outputs
/// into, each `(T, B, N)` (e.g. reused across batches, or memory owned by numpy or torch).
#[derive(Debug)]
pub struct NeuronOutputMut<'a, F> {
    /// Spikes `z`.
    pub spikes: ArrayViewMut3<'a, F>,
    /// Membrane `v`.
    pub membrane: ArrayViewMut3<'a, F>,
    /// Synaptic current `i`.
    pub current: ArrayViewMut3<'a, F>,
}

/// What the backward needs: the forward's outputs and the validated coefficients.
#[derive(Debug, Clone)]
pub struct NeuronContext<F> {
    output: NeuronOutput<F>,
    coefficients: Coefficients<F>,
    discretization: Discretization,
}

/// Result of the backward.
#[derive(Debug, Clone, PartialEq)]
pub struct NeuronGrad<F> {
    /// `(2, T, B, N)`: `[lambda_i * tau_syn, lambda_v - lambda_i]` (docs/spec.md §2).
    pub grad_input: Array4<F>,
    /// Numerical guards applied.
    pub stats: GuardStats,
}

fn check_input_rank<'a, F: Real>(input: ArrayViewD<'a, F>) -> Result<ArrayView3<'a, F>> {
    match input.ndim() {
        3 => Ok(input.into_dimensionality::<Ix3>().expect("rank checked")),
        4 if input.shape()[0] == 2 => {
            let stacked = input.into_dimensionality::<Ix4>().expect("rank checked");
            Ok(stacked.index_axis_move(Axis(0), 0))
        }
        _ => Err(Error::Shape {
            arg: "input",
            expected: "(2, T, B, N) or (T, B, N)".into(),
            actual: fmt_shape(input.shape()),
        }),
    }
}

/// The [`Error::Overflow`] for the first non-finite element among `quantities` (each a
/// row-major buffer of shape `dims`), taking the earliest flat position (the earliest time
/// step for time-major arrays).
fn overflow<F: Real>(
    arg: &'static str,
    quantities: &[(&'static str, &[F])],
    dims: &[usize],
) -> Error {
    let first = quantities
        .iter()
        .filter_map(|&(name, data)| {
            data.iter()
                .position(|v| !v.is_finite())
                .map(|p| (p, name, data[p]))
        })
        .min_by_key(|&(p, _, _)| p);
    let (flat, quantity, value) = first.unwrap_or((0, "state", F::nan()));
    Error::Overflow {
        arg,
        quantity,
        dtype: F::NAME,
        index: crate::error::unravel(flat, dims),
        value: value.to_f64().unwrap_or(f64::NAN),
    }
}

impl<F: Real> EventPropNeuron<F> {
    /// Forward on an input of shape `(2, T, B, N)` (seed form, `input[1]` ignored) or
    /// `(T, B, N)`.
    ///
    /// # Errors
    /// As [`EventPropNeuron::forward`], and [`Error::Shape`] for any other rank.
    pub fn forward_dyn(
        &self,
        input: ArrayViewD<'_, F>,
        hw: Option<HwData<'_, F>>,
    ) -> Result<NeuronContext<F>> {
        let x = check_input_rank(input)?;
        self.forward(x, hw)
    }

    /// Forward on the seed's stacked input `(2, T, B, N)`; `input[1]` is ignored.
    ///
    /// # Errors
    /// As [`EventPropNeuron::forward`].
    pub fn forward_stacked(
        &self,
        input: ArrayView4<'_, F>,
        hw: Option<HwData<'_, F>>,
    ) -> Result<NeuronContext<F>> {
        self.forward_dyn(input.into_dyn(), hw)
    }

    /// Forward on the input current `x` `(T, B, N)`.
    ///
    /// Without `hw`, integrates the LIF dynamics in the seed's update order. With `hw`,
    /// returns the recorded spikes and membrane unchanged and recomputes the current from
    /// `x` unless it was recorded too.
    ///
    /// Allocates the three outputs and runs [`EventPropNeuron::forward_into`]'s kernel on
    /// them (bit-identical results).
    ///
    /// # Errors
    /// [`Error::Shape`] when a parameter vector is not of length `N` or a hardware array is
    /// not `(T, B, N)`; [`Error::NonFinite`] for NaN/inf in `x`, hardware data or
    /// parameters; [`Error::NonPositive`] for `tau_syn`, `tau_mem` or `dt` ≤ 0;
    /// [`Error::Overflow`] (naming `input`) when the computed current or membrane is not
    /// finite although every argument is (e.g. inputs near the float type's maximum).
    ///
    /// ```
    /// use eventprop_core::{EventPropNeuron, Error};
    /// use ndarray::Array3;
    /// let neuron = EventPropNeuron::<f64> { dt: 0.0, ..Default::default() };
    /// let err = neuron.forward(Array3::zeros((4, 1, 2)).view(), None).unwrap_err();
    /// assert!(matches!(err, Error::NonPositive { arg: "dt", .. }));
    /// ```
    pub fn forward(
        &self,
        x: ArrayView3<'_, F>,
        hw: Option<HwData<'_, F>>,
    ) -> Result<NeuronContext<F>> {
        let dims = x.dim();
        let coefficients = self.params.resolve(dims.2, self.dt)?;
        let mut spikes = Array3::uninit(dims);
        let mut membrane = Array3::uninit(dims);
        let mut current = Array3::uninit(dims);
        forward_slices(
            &coefficients,
            x,
            hw,
            [
                spikes.as_slice_mut().expect("owned"),
                membrane.as_slice_mut().expect("owned"),
                current.as_slice_mut().expect("owned"),
            ],
        )?;
        // SAFETY: `forward_slices` returned `Ok`, so it wrote every element of the three
        // buffers.
        let output = unsafe {
            NeuronOutput {
                spikes: spikes.assume_init(),
                membrane: membrane.assume_init(),
                current: current.assume_init(),
            }
        };
        Ok(NeuronContext {
            output,
            coefficients,
            discretization: self.discretization,
        })
    }

    /// [`EventPropNeuron::forward`] into caller-provided buffers: writes spikes, membrane
    /// and current into `out` (each `(T, B, N)`, overwritten; contents on error are
    /// unspecified) instead of allocating them. The results are bit-identical to
    /// [`EventPropNeuron::forward`]'s. C-contiguous buffers are written in place; others
    /// are computed into a temporary and copied.
    ///
    /// The backward then runs with [`EventPropNeuron::backward_into`] on the same spikes
    /// and current.
    ///
    /// # Errors
    /// As [`EventPropNeuron::forward`], and [`Error::Shape`] naming `out.spikes`,
    /// `out.membrane` or `out.current` when that buffer is not `(T, B, N)` like `x`.
    ///
    /// ```
    /// use eventprop_core::{EventPropNeuron, NeuronOutputMut};
    /// use ndarray::{Array3, Array4};
    /// let neuron = EventPropNeuron::<f32>::default();
    /// let x = Array3::from_elem((4, 2, 3), 0.6f32); // (T, B, N)
    /// // Buffers reused across calls.
    /// let (mut z, mut v, mut i) = (Array3::zeros((4, 2, 3)), Array3::zeros((4, 2, 3)), Array3::zeros((4, 2, 3)));
    /// let mut grad = Array4::zeros((2, 4, 2, 3));
    /// for _ in 0..2 {
    ///     let out = NeuronOutputMut { spikes: z.view_mut(), membrane: v.view_mut(), current: i.view_mut() };
    ///     neuron.forward_into(x.view(), None, out)?;
    ///     let stats = neuron.backward_into(z.view(), i.view(), z.view(), grad.view_mut())?;
    ///     assert_eq!(stats.guarded_spikes, 0);
    /// }
    /// // Same values as the allocating API.
    /// let ctx = neuron.forward(x.view(), None)?;
    /// assert_eq!(ctx.output().membrane, v);
    /// assert_eq!(ctx.backward(z.view(), None, None)?.grad_input, grad);
    ///
    /// // A buffer of the wrong shape is named.
    /// let mut small = Array3::zeros((3, 2, 3));
    /// let out = NeuronOutputMut { spikes: z.view_mut(), membrane: small.view_mut(), current: i.view_mut() };
    /// let err = neuron.forward_into(x.view(), None, out).unwrap_err();
    /// assert_eq!(err.to_string(), "out.membrane: expected shape (4, 2, 3), got (3, 2, 3)");
    /// # Ok::<(), eventprop_core::Error>(())
    /// ```
    pub fn forward_into(
        &self,
        x: ArrayView3<'_, F>,
        hw: Option<HwData<'_, F>>,
        out: NeuronOutputMut<'_, F>,
    ) -> Result<()> {
        let dims = x.dim();
        let d = [dims.0, dims.1, dims.2];
        let NeuronOutputMut {
            mut spikes,
            mut membrane,
            mut current,
        } = out;
        check_shape("out.spikes", spikes.shape(), &d)?;
        check_shape("out.membrane", membrane.shape(), &d)?;
        check_shape("out.current", current.shape(), &d)?;
        let coefficients = self.params.resolve(dims.2, self.dt)?;
        match (
            uninit_slice(&mut spikes),
            uninit_slice(&mut membrane),
            uninit_slice(&mut current),
        ) {
            (Some(z), Some(v), Some(i)) => forward_slices(&coefficients, x, hw, [z, v, i]),
            _ => {
                let ctx = self.forward(x, hw)?;
                spikes.assign(&ctx.output.spikes);
                membrane.assign(&ctx.output.membrane);
                current.assign(&ctx.output.current);
                Ok(())
            }
        }
    }

    /// The EventProp backward (as [`NeuronContext::backward`]) of a forward whose spikes
    /// and current are held by the caller (e.g. written by
    /// [`EventPropNeuron::forward_into`]): writes the gradient `(2, T, B, N)` into
    /// `grad_input` (overwritten; contents on error are unspecified) and returns the guard
    /// counts. Bit-identical to [`NeuronContext::backward`] on the same forward.
    ///
    /// # Errors
    /// [`Error::Shape`] when `current`, `grad_spikes` are not `(T, B, N)` like `spikes` or
    /// `grad_input` is not `(2, T, B, N)`; [`Error::NonFinite`] for NaN/inf in `spikes`,
    /// `current` or `grad_spikes`; the parameter errors of [`EventPropNeuron::forward`];
    /// [`Error::Overflow`] (naming `grad_spikes`) when the adjoint leaves the float range.
    pub fn backward_into(
        &self,
        spikes: ArrayView3<'_, F>,
        current: ArrayView3<'_, F>,
        grad_spikes: ArrayView3<'_, F>,
        grad_input: ArrayViewMut4<'_, F>,
    ) -> Result<GuardStats> {
        let (t_len, b_len, n) = spikes.dim();
        let d = [t_len, b_len, n];
        check_shape("current", current.shape(), &d)?;
        let coefficients = self.params.resolve(n, self.dt)?;
        let z = spikes.as_standard_layout();
        let i = current.as_standard_layout();
        let (zs, is) = (
            z.as_slice().expect("standard layout"),
            i.as_slice().expect("standard layout"),
        );
        check_finite("spikes", zs, &d)?;
        check_finite("current", is, &d)?;
        backward_into_impl(
            &coefficients,
            self.discretization,
            (zs, is, d),
            grad_spikes,
            None,
            None,
            grad_input,
        )
    }
}

/// A view of `a`'s elements as possibly uninitialised slots when it is C-contiguous.
///
/// Writing through it is sound: the kernels only ever store initialised values.
fn uninit_slice<'s, F, D: ndarray::Dimension>(
    a: &'s mut ndarray::ArrayViewMut<'_, F, D>,
) -> Option<&'s mut [MaybeUninit<F>]> {
    let s = a.as_slice_mut()?;
    // SAFETY: `MaybeUninit<F>` has the layout of `F`; every writer of the returned slice
    // (the row kernels) stores initialised values only, so the elements stay initialised.
    Some(unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast(), s.len()) })
}

/// Reads a buffer that has been completely written.
///
/// # Safety
/// Every element of `s` must be initialised.
unsafe fn assume_init_slice<F>(s: &[MaybeUninit<F>]) -> &[F] {
    // SAFETY: same layout; initialised per the caller's contract.
    unsafe { std::slice::from_raw_parts(s.as_ptr().cast(), s.len()) }
}

/// The forward kernel on row-major output buffers `[spikes, membrane, current]`, each of
/// `T * B * N` elements (checked by the callers). On `Ok`, every element is written.
fn forward_slices<F: Real>(
    coefficients: &Coefficients<F>,
    x: ArrayView3<'_, F>,
    hw: Option<HwData<'_, F>>,
    [z_out, v_out, i_out]: [&mut [MaybeUninit<F>]; 3],
) -> Result<()> {
    let (t_len, b_len, n) = x.dim();
    let dims = [t_len, b_len, n];
    debug_assert!(z_out.len() == t_len * b_len * n);
    let x = x.as_standard_layout();
    let xs = x.as_slice().expect("standard layout");
    let row_len = b_len * n;
    let chunk = group_size(b_len, xs.len()) * n;
    match hw {
        None => {
            let zs = split_time_rows(&mut *z_out, row_len, chunk);
            let vs = split_time_rows(&mut *v_out, row_len, chunk);
            let is = split_time_rows(&mut *i_out, row_len, chunk);
            // `reduce`, not `all`: every group must run to write all its rows.
            let finite = zs
                .into_par_iter()
                .zip(vs)
                .zip(is)
                .enumerate()
                .map(|(g, ((mut z, mut v), mut i))| {
                    let width = z.first().map_or(0, |r| r.len());
                    let (mut i_state, mut v_state) =
                        (vec![F::zero(); width], vec![F::zero(); width]);
                    forward::lif_forward_rows(
                        coefficients,
                        xs,
                        row_len,
                        g * chunk,
                        &mut z,
                        &mut v,
                        &mut i,
                        (&mut i_state, &mut v_state),
                    )
                })
                .reduce(|| true, |a, b| a && b);
            if !finite {
                // A non-finite input makes the state non-finite (see
                // `forward::lif_forward_rows`): name the input first, then an overflow.
                check_finite("input", xs, &dims)?;
                // SAFETY: the batch groups of `split_time_rows` cover every (t, b) row,
                // and `lif_forward_rows` writes every element of each of its rows.
                let (i, v) = unsafe { (assume_init_slice(i_out), assume_init_slice(v_out)) };
                return Err(overflow(
                    "input",
                    &[("synaptic current", i), ("membrane", v)],
                    &dims,
                ));
            }
            // The last time step of `x` is not read by the recursion, so a NaN there does
            // not show in the state.
            let last = (t_len.max(1) - 1) * row_len;
            if !all_finite(&xs[last..]) {
                check_finite("input", xs, &dims)?;
            }
            Ok(())
        }
        Some(hw) => {
            check_finite("input", xs, &dims)?;
            check_shape("hw_spikes", hw.spikes.shape(), &dims)?;
            check_shape("hw_membrane", hw.membrane.shape(), &dims)?;
            copy_checked("hw_spikes", hw.spikes, z_out)?;
            copy_checked("hw_membrane", hw.membrane, v_out)?;
            match hw.current {
                Some(c) => {
                    check_shape("hw_current", c.shape(), &dims)?;
                    copy_checked("hw_current", c, i_out)
                }
                None => {
                    let is = split_time_rows(&mut *i_out, row_len, chunk);
                    let finite = is
                        .into_par_iter()
                        .enumerate()
                        .map(|(g, mut i)| {
                            let mut i_state = vec![F::zero(); i.first().map_or(0, |r| r.len())];
                            forward::current_rows(
                                coefficients,
                                xs,
                                row_len,
                                g * chunk,
                                &mut i,
                                &mut i_state,
                            )
                        })
                        .reduce(|| true, |a, b| a && b);
                    if !finite {
                        // SAFETY: as above, `current_rows` writes every element of its
                        // rows and the groups cover all rows.
                        let i = unsafe { assume_init_slice(i_out) };
                        return Err(overflow("input", &[("synaptic current", i)], &dims));
                    }
                    Ok(())
                }
            }
        }
    }
}

/// Copies `src` (same element count, any layout) into `dst` in row-major order, checking
/// that every value is finite ([`Error::NonFinite`] naming `arg`).
fn copy_checked<F: Real>(
    arg: &'static str,
    src: ArrayView3<'_, F>,
    dst: &mut [MaybeUninit<F>],
) -> Result<()> {
    let src = src.as_standard_layout();
    let s = src.as_slice().expect("standard layout");
    check_finite(arg, s, src.shape())?;
    for (d, &v) in dst.iter_mut().zip(s) {
        d.write(v);
    }
    Ok(())
}

impl<F: Real> NeuronContext<F> {
    /// The forward's outputs.
    pub fn output(&self) -> &NeuronOutput<F> {
        &self.output
    }

    /// Gives up the context, keeping the outputs.
    pub fn into_output(self) -> NeuronOutput<F> {
        self.output
    }

    /// The validated per-neuron coefficients used by the forward.
    pub fn coefficients(&self) -> &Coefficients<F> {
        &self.coefficients
    }

    /// EventProp backward (docs/spec.md §2).
    ///
    /// `grad_membrane` and `grad_current` are accepted for signature parity with the seed and
    /// are **not used**: the EventProp adjoint only takes the loss's dependence on spikes
    /// (the seed documents the same). Their shapes are still checked when given.
    ///
    /// It takes `&self`, so the same forward can be differentiated for several upstream
    /// gradients (useful for Jacobian checks). Allocates the gradient and runs
    /// [`NeuronContext::backward_into`]'s kernel on it (bit-identical results).
    ///
    /// # Errors
    /// [`Error::Shape`] when a gradient is not `(T, B, N)`; [`Error::NonFinite`] for NaN/inf
    /// in `grad_spikes`; [`Error::Overflow`] (naming `grad_spikes`) when the adjoint leaves
    /// the float type's range.
    pub fn backward(
        &self,
        grad_spikes: ArrayView3<'_, F>,
        grad_membrane: Option<ArrayView3<'_, F>>,
        grad_current: Option<ArrayView3<'_, F>>,
    ) -> Result<NeuronGrad<F>> {
        let (t_len, b_len, n) = self.output.spikes.dim();
        let d = [t_len, b_len, n];
        check_upstream(&d, grad_spikes, grad_membrane, grad_current)?;
        let mut grad_input = Array4::uninit((2, t_len, b_len, n));
        let stats = backward_slices(
            &self.coefficients,
            self.discretization,
            self.state(),
            grad_spikes,
            grad_input.as_slice_mut().expect("owned"),
        )?;
        // SAFETY: `backward_slices` returned `Ok`, so it wrote every element.
        let grad_input = unsafe { grad_input.assume_init() };
        Ok(NeuronGrad { grad_input, stats })
    }

    /// [`NeuronContext::backward`] into a caller-provided gradient buffer `grad_input`
    /// `(2, T, B, N)` (overwritten; contents on error are unspecified); returns the guard
    /// counts. Bit-identical to [`NeuronContext::backward`]. A C-contiguous buffer is
    /// written in place; another is computed into a temporary and copied.
    ///
    /// # Errors
    /// As [`NeuronContext::backward`], and [`Error::Shape`] naming `grad_input` when it is
    /// not `(2, T, B, N)`.
    ///
    /// ```
    /// use eventprop_core::{EventPropNeuron, Error};
    /// use ndarray::{Array3, Array4};
    /// let neuron = EventPropNeuron::<f64>::default();
    /// let x = Array3::from_elem((5, 1, 2), 0.5); // (T, B, N)
    /// let ctx = neuron.forward(x.view(), None)?;
    /// let grad_spikes = Array3::ones((5, 1, 2));
    /// let mut grad = Array4::zeros((2, 5, 1, 2)); // reusable across calls
    /// ctx.backward_into(grad_spikes.view(), None, None, grad.view_mut())?;
    /// assert_eq!(grad, ctx.backward(grad_spikes.view(), None, None)?.grad_input);
    ///
    /// let mut wrong = Array4::zeros((2, 5, 1, 3));
    /// let err = ctx.backward_into(grad_spikes.view(), None, None, wrong.view_mut()).unwrap_err();
    /// assert!(matches!(err, Error::Shape { arg: "grad_input", .. }));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn backward_into(
        &self,
        grad_spikes: ArrayView3<'_, F>,
        grad_membrane: Option<ArrayView3<'_, F>>,
        grad_current: Option<ArrayView3<'_, F>>,
        grad_input: ArrayViewMut4<'_, F>,
    ) -> Result<GuardStats> {
        backward_into_impl(
            &self.coefficients,
            self.discretization,
            self.state(),
            grad_spikes,
            grad_membrane,
            grad_current,
            grad_input,
        )
    }

    /// Spikes and current as row-major slices, with their `(T, B, N)`.
    fn state(&self) -> (&[F], &[F], [usize; 3]) {
        let (t_len, b_len, n) = self.output.spikes.dim();
        (
            self.output.spikes.as_slice().expect("owned"),
            self.output.current.as_slice().expect("owned"),
            [t_len, b_len, n],
        )
    }
}

/// The shape checks of the upstream gradients against the forward's `(T, B, N)` `d`.
fn check_upstream<F>(
    d: &[usize; 3],
    grad_spikes: ArrayView3<'_, F>,
    grad_membrane: Option<ArrayView3<'_, F>>,
    grad_current: Option<ArrayView3<'_, F>>,
) -> Result<()> {
    check_shape("grad_spikes", grad_spikes.shape(), d)?;
    if let Some(g) = grad_membrane {
        check_shape("grad_membrane", g.shape(), d)?;
    }
    if let Some(g) = grad_current {
        check_shape("grad_current", g.shape(), d)?;
    }
    Ok(())
}

/// The shared body of both `backward_into`s: checks, then the kernel on `grad_input` (in
/// place when C-contiguous).
fn backward_into_impl<F: Real>(
    coefficients: &Coefficients<F>,
    discretization: Discretization,
    state: (&[F], &[F], [usize; 3]),
    grad_spikes: ArrayView3<'_, F>,
    grad_membrane: Option<ArrayView3<'_, F>>,
    grad_current: Option<ArrayView3<'_, F>>,
    mut grad_input: ArrayViewMut4<'_, F>,
) -> Result<GuardStats> {
    let [t_len, b_len, n] = state.2;
    check_upstream(&state.2, grad_spikes, grad_membrane, grad_current)?;
    check_shape("grad_input", grad_input.shape(), &[2, t_len, b_len, n])?;
    if let Some(out) = uninit_slice(&mut grad_input) {
        return backward_slices(coefficients, discretization, state, grad_spikes, out);
    }
    let mut tmp = Array4::uninit((2, t_len, b_len, n));
    let stats = backward_slices(
        coefficients,
        discretization,
        state,
        grad_spikes,
        tmp.as_slice_mut().expect("owned"),
    )?;
    // SAFETY: `backward_slices` returned `Ok`, so it wrote every element.
    grad_input.assign(&unsafe { tmp.assume_init() });
    Ok(stats)
}

/// The adjoint kernel: reads spikes `z` and current `i` (row-major `(T, B, N)` `d`, shapes
/// checked by the callers) and writes `grad_input` `(2, T, B, N)` into `out`. On `Ok`,
/// every element is written.
fn backward_slices<F: Real>(
    coefficients: &Coefficients<F>,
    discretization: Discretization,
    (z, i, d): (&[F], &[F], [usize; 3]),
    grad_spikes: ArrayView3<'_, F>,
    out: &mut [MaybeUninit<F>],
) -> Result<GuardStats> {
    let [t_len, b_len, n] = d;
    let g = grad_spikes.as_standard_layout();
    let gs = g.as_slice().expect("standard layout");
    check_finite("grad_spikes", gs, &d)?;
    let row_len = b_len * n;
    let chunk = group_size(b_len, gs.len()) * n;
    let inputs = backward::AdjointInputs {
        z,
        i,
        grad_spikes: gs,
        row_len,
        offset: 0,
    };
    let half = t_len * row_len;
    let (gi, gv) = out.split_at_mut(half);
    let gis = split_time_rows(gi, row_len, chunk);
    let gvs = split_time_rows(gv, row_len, chunk);
    let (stats, finite) = gis
        .into_par_iter()
        .zip(gvs)
        .enumerate()
        .map(|(g, (mut gi, mut gv))| {
            let width = gi.first().map_or(0, |r| r.len());
            let mut lambda_v = vec![F::zero(); width];
            let mut lambda_i = vec![F::zero(); width];
            let inp = backward::AdjointInputs {
                offset: g * chunk,
                ..inputs
            };
            backward::lif_backward_rows(
                coefficients,
                discretization,
                &inp,
                &mut gi,
                &mut gv,
                &mut lambda_v,
                &mut lambda_i,
            )
        })
        .reduce(
            || (GuardStats::default(), true),
            |a, b| (a.0 + b.0, a.1 && b.1),
        );
    if !finite {
        // SAFETY: the groups cover every (t, b) row of both halves, and
        // `lif_backward_rows` writes every element of its rows.
        let written = unsafe { assume_init_slice(out) };
        return Err(overflow(
            "grad_spikes",
            &[("adjoint (grad_input)", written)],
            &[2, t_len, b_len, n],
        ));
    }
    Ok(stats)
}

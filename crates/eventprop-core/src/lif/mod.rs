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

use ndarray::{Array3, Array4, ArrayView3, ArrayView4, ArrayViewD, Axis, Ix3, Ix4};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{check_finite, check_shape, fmt_shape, Error, Result};
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
    /// `(2, T, B, N)`: `[lambda_i * tau_syn, lambda_v - lambda_i]` (SPEC §2).
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
        let (t_len, b_len, n) = x.dim();
        let coefficients = self.params.resolve(n, self.dt)?;
        let x = x.as_standard_layout();
        let xs = x.as_slice().expect("standard layout");
        check_finite("input", xs, x.shape())?;
        let row_len = b_len * n;
        let chunk = group_size(b_len) * n;
        let output = match hw {
            None => {
                let mut spikes = Array3::uninit((t_len, b_len, n));
                let mut membrane = Array3::uninit((t_len, b_len, n));
                let mut current = Array3::uninit((t_len, b_len, n));
                let zs = split_time_rows(spikes.as_slice_mut().expect("owned"), row_len, chunk);
                let vs = split_time_rows(membrane.as_slice_mut().expect("owned"), row_len, chunk);
                let is = split_time_rows(current.as_slice_mut().expect("owned"), row_len, chunk);
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
                            &coefficients,
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
                // SAFETY: the batch groups of `split_time_rows` cover every (t, b) row, and
                // `lif_forward_rows` writes every element of each of its rows (row 0 and
                // rows 1..T), so all elements are initialised.
                let (spikes, membrane, current) = unsafe {
                    (
                        spikes.assume_init(),
                        membrane.assume_init(),
                        current.assume_init(),
                    )
                };
                if !finite {
                    return Err(overflow(
                        "input",
                        &[
                            ("synaptic current", current.as_slice().expect("owned")),
                            ("membrane", membrane.as_slice().expect("owned")),
                        ],
                        &[t_len, b_len, n],
                    ));
                }
                NeuronOutput {
                    spikes,
                    membrane,
                    current,
                }
            }
            Some(hw) => {
                let dims = [t_len, b_len, n];
                check_shape("hw_spikes", hw.spikes.shape(), &dims)?;
                check_shape("hw_membrane", hw.membrane.shape(), &dims)?;
                let spikes = hw.spikes.as_standard_layout().into_owned();
                let membrane = hw.membrane.as_standard_layout().into_owned();
                check_finite("hw_spikes", spikes.as_slice().expect("owned"), &dims)?;
                check_finite("hw_membrane", membrane.as_slice().expect("owned"), &dims)?;
                let current = match hw.current {
                    Some(c) => {
                        check_shape("hw_current", c.shape(), &dims)?;
                        let c = c.as_standard_layout().into_owned();
                        check_finite("hw_current", c.as_slice().expect("owned"), &dims)?;
                        c
                    }
                    None => {
                        let mut current = Array3::uninit((t_len, b_len, n));
                        let is =
                            split_time_rows(current.as_slice_mut().expect("owned"), row_len, chunk);
                        let finite = is
                            .into_par_iter()
                            .enumerate()
                            .map(|(g, mut i)| {
                                let mut i_state = vec![F::zero(); i.first().map_or(0, |r| r.len())];
                                forward::current_rows(
                                    &coefficients,
                                    xs,
                                    row_len,
                                    g * chunk,
                                    &mut i,
                                    &mut i_state,
                                )
                            })
                            .reduce(|| true, |a, b| a && b);
                        // SAFETY: as above, `current_rows` writes every element of its rows
                        // and the groups cover all rows.
                        let current = unsafe { current.assume_init() };
                        if !finite {
                            return Err(overflow(
                                "input",
                                &[("synaptic current", current.as_slice().expect("owned"))],
                                &dims,
                            ));
                        }
                        current
                    }
                };
                NeuronOutput {
                    spikes,
                    membrane,
                    current,
                }
            }
        };
        Ok(NeuronContext {
            output,
            coefficients,
            discretization: self.discretization,
        })
    }
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

    /// EventProp backward (SPEC §2).
    ///
    /// `grad_membrane` and `grad_current` are accepted for signature parity with the seed and
    /// are **not used**: the EventProp adjoint only takes the loss's dependence on spikes
    /// (the seed documents the same). Their shapes are still checked when given.
    ///
    /// It takes `&self`, so the same forward can be differentiated for several upstream
    /// gradients (useful for Jacobian checks).
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
        let dims = self.output.spikes.dim();
        let (t_len, b_len, n) = dims;
        let d = [t_len, b_len, n];
        check_shape("grad_spikes", grad_spikes.shape(), &d)?;
        if let Some(g) = grad_membrane {
            check_shape("grad_membrane", g.shape(), &d)?;
        }
        if let Some(g) = grad_current {
            check_shape("grad_current", g.shape(), &d)?;
        }
        let g = grad_spikes.as_standard_layout();
        let gs = g.as_slice().expect("standard layout");
        check_finite("grad_spikes", gs, &d)?;
        let mut grad_input = Array4::uninit((2, t_len, b_len, n));
        let row_len = b_len * n;
        let chunk = group_size(b_len) * n;
        let inputs = backward::AdjointInputs {
            z: self.output.spikes.as_slice().expect("owned"),
            i: self.output.current.as_slice().expect("owned"),
            grad_spikes: gs,
            row_len,
            offset: 0,
        };
        let half = t_len * row_len;
        let (gi, gv) = grad_input.as_slice_mut().expect("owned").split_at_mut(half);
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
                    &self.coefficients,
                    self.discretization,
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
        // SAFETY: the groups cover every (t, b) row of both halves, and
        // `lif_backward_rows` writes every element of its rows (row T-1 and rows 0..T-1).
        let grad_input = unsafe { grad_input.assume_init() };
        if !finite {
            return Err(overflow(
                "grad_spikes",
                &[(
                    "adjoint (grad_input)",
                    grad_input.as_slice().expect("owned"),
                )],
                &[2, t_len, b_len, n],
            ));
        }
        Ok(NeuronGrad { grad_input, stats })
    }
}

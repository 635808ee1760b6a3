//! Shared helpers of the integration tests: seeded random data, an independent
//! straightforward implementation of docs/spec.md §1–§3 (plain loops over full arrays, in the spec's
//! order) and the closed-form continuous-time solutions of docs/spec.md §4.
#![allow(dead_code)]

use eventprop_core::{LifParams, Param, Real};
use ndarray::{Array2, Array3, Array4, ArrayView2, ArrayView3, ArrayView4};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The seeded RNG every test uses.
pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Uniform values in `[lo, hi)`.
pub fn uniform3(rng: &mut ChaCha8Rng, dim: (usize, usize, usize), lo: f64, hi: f64) -> Array3<f64> {
    Array3::from_shape_fn(dim, |_| rng.random_range(lo..hi))
}

/// Uniform values in `[lo, hi)`.
pub fn uniform2(rng: &mut ChaCha8Rng, dim: (usize, usize), lo: f64, hi: f64) -> Array2<f64> {
    Array2::from_shape_fn(dim, |_| rng.random_range(lo..hi))
}

/// Spike raster with `P(1) = p` per entry.
pub fn bernoulli3(rng: &mut ChaCha8Rng, dim: (usize, usize, usize), p: f64) -> Array3<f64> {
    Array3::from_shape_fn(dim, |_| if rng.random_bool(p) { 1.0 } else { 0.0 })
}

/// Graded input current: zero with probability `1 - p`, else uniform in `[0, hi)`.
pub fn graded3(rng: &mut ChaCha8Rng, dim: (usize, usize, usize), p: f64, hi: f64) -> Array3<f64> {
    Array3::from_shape_fn(dim, |_| {
        if rng.random_bool(p) {
            rng.random_range(0.0..hi)
        } else {
            0.0
        }
    })
}

/// Per-neuron LIF parameters drawn at random: `leak ∈ [-0.2, 0.2)`, `reset ∈ [-0.3, 0.1)`,
/// `threshold ∈ [0.8, 1.2)`, `tau_syn ∈ [3, 8) µs`, `tau_mem ∈ [6, 14) µs`.
pub fn random_params(rng: &mut ChaCha8Rng, n: usize) -> LifParams<f64> {
    let mut vec =
        |lo: f64, hi: f64| Param::PerNeuron((0..n).map(|_| rng.random_range(lo..hi)).collect());
    LifParams {
        leak: vec(-0.2, 0.2),
        reset: vec(-0.3, 0.1),
        threshold: vec(0.8, 1.2),
        tau_syn: vec(3e-6, 8e-6),
        tau_mem: vec(6e-6, 14e-6),
    }
}

/// Converts f64 parameters to another element type (rounding to nearest).
pub fn params_as<F: Real>(p: &LifParams<f64>) -> LifParams<F> {
    let conv = |q: &Param<f64>| match q {
        Param::Scalar(v) => Param::Scalar(F::of(*v)),
        Param::PerNeuron(v) => Param::PerNeuron(v.iter().map(|&x| F::of(x)).collect()),
    };
    LifParams {
        leak: conv(&p.leak),
        reset: conv(&p.reset),
        threshold: conv(&p.threshold),
        tau_syn: conv(&p.tau_syn),
        tau_mem: conv(&p.tau_mem),
    }
}

/// Expands a parameter to `n` values (no validation: the reference trusts its input).
pub fn expand<F: Real>(p: &Param<F>, n: usize) -> Vec<F> {
    match p {
        Param::Scalar(v) => vec![*v; n],
        Param::PerNeuron(v) => v.clone(),
    }
}

/// Per-neuron parameter values in the reference's layout.
pub struct RefParams<F> {
    pub leak: Vec<F>,
    pub reset: Vec<F>,
    pub threshold: Vec<F>,
    pub tau_syn: Vec<F>,
    pub tau_mem: Vec<F>,
}

impl<F: Real> RefParams<F> {
    pub fn new(p: &LifParams<F>, n: usize) -> Self {
        Self {
            leak: expand(&p.leak, n),
            reset: expand(&p.reset, n),
            threshold: expand(&p.threshold, n),
            tau_syn: expand(&p.tau_syn, n),
            tau_mem: expand(&p.tau_mem, n),
        }
    }
}

/// docs/spec.md §1 forward, written out literally: returns `(z, v, i)`, each `(T, B, N)`.
pub fn ref_forward<F: Real>(
    x: ArrayView3<'_, F>,
    p: &LifParams<F>,
    dt: F,
) -> (Array3<F>, Array3<F>, Array3<F>) {
    let (t_len, b_len, n) = x.dim();
    let q = RefParams::new(p, n);
    let mut z = Array3::<F>::zeros((t_len, b_len, n));
    let mut v = Array3::<F>::zeros((t_len, b_len, n));
    let mut i = Array3::<F>::zeros((t_len, b_len, n));
    if t_len == 0 {
        return (z, v, i);
    }
    for b in 0..b_len {
        for k in 0..n {
            v[[0, b, k]] = q.leak[k];
        }
    }
    for t in 0..t_len.saturating_sub(1) {
        for b in 0..b_len {
            for k in 0..n {
                i[[t + 1, b, k]] = i[[t, b, k]] * (F::one() - dt / q.tau_syn[k]) + x[[t, b, k]];
                let u = v[[t, b, k]]
                    + dt / q.tau_mem[k] * (q.leak[k] - v[[t, b, k]] + i[[t + 1, b, k]]);
                let spike = u > q.threshold[k];
                z[[t + 1, b, k]] = if spike { F::one() } else { F::zero() };
                v[[t + 1, b, k]] = if spike { q.reset[k] } else { u };
            }
        }
    }
    (z, v, i)
}

/// docs/spec.md §2 backward, written out literally; `corrected` uses `i[t]` instead of `i[t-1]` in
/// `dv_m` and `dv_p`. Returns `grad_input` `(2, T, B, N)`.
pub fn ref_backward<F: Real>(
    z: ArrayView3<'_, F>,
    i: ArrayView3<'_, F>,
    grad_spikes: ArrayView3<'_, F>,
    p: &LifParams<F>,
    dt: F,
    corrected: bool,
) -> Array4<F> {
    let (t_len, b_len, n) = z.dim();
    let q = RefParams::new(p, n);
    let mut lam_v = Array3::<F>::zeros((t_len, b_len, n));
    let mut lam_i = Array3::<F>::zeros((t_len, b_len, n));
    for t in (1..t_len).rev() {
        for b in 0..b_len {
            for k in 0..n {
                let i_star = if corrected {
                    i[[t, b, k]]
                } else {
                    i[[t - 1, b, k]]
                };
                let dv_m = q.leak[k] - q.threshold[k] + i_star;
                let dv_p = q.leak[k] - q.reset[k] + i_star;
                lam_i[[t - 1, b, k]] =
                    lam_i[[t, b, k]] + dt / q.tau_syn[k] * (lam_v[[t, b, k]] - lam_i[[t, b, k]]);
                let w = lam_v[[t, b, k]] * (F::one() - dt / q.tau_mem[k]);
                let mut out = z[[t, b, k]] * grad_spikes[[t, b, k]] / dv_m;
                if !out.is_finite() {
                    out = F::zero();
                }
                let mut jump = z[[t, b, k]] * dv_p / dv_m;
                if !jump.is_finite() {
                    jump = F::zero();
                }
                lam_v[[t - 1, b, k]] = (F::one() - z[[t, b, k]]) * w + jump * w + out;
            }
        }
    }
    let mut g = Array4::<F>::zeros((2, t_len, b_len, n));
    for t in 0..t_len {
        for b in 0..b_len {
            for k in 0..n {
                g[[0, t, b, k]] = lam_i[[t, b, k]] * q.tau_syn[k];
                g[[1, t, b, k]] = lam_v[[t, b, k]] - lam_i[[t, b, k]];
            }
        }
    }
    g
}

/// docs/spec.md §3 synapse forward as a naive triple loop: `y[t, b, o] = Σ_j W[o, j] x[t, b, j]`.
pub fn naive_synapse_forward(x: ArrayView3<'_, f64>, w: ArrayView2<'_, f64>) -> Array3<f64> {
    let (t_len, b_len, n_in) = x.dim();
    let n_out = w.nrows();
    let mut y = Array3::zeros((t_len, b_len, n_out));
    for t in 0..t_len {
        for b in 0..b_len {
            for o in 0..n_out {
                let mut acc = 0.0;
                for j in 0..n_in {
                    acc += w[[o, j]] * x[[t, b, j]];
                }
                y[[t, b, o]] = acc;
            }
        }
    }
    y
}

/// docs/spec.md §3 synapse backward as naive loops: `(grad_x = g[1] W, grad_W = Σ g[0] ⊗ x)`.
pub fn naive_synapse_backward(
    x: ArrayView3<'_, f64>,
    w: ArrayView2<'_, f64>,
    g: ArrayView4<'_, f64>,
) -> (Array3<f64>, Array2<f64>) {
    let (t_len, b_len, n_in) = x.dim();
    let n_out = w.nrows();
    let mut gx = Array3::zeros((t_len, b_len, n_in));
    let mut gw = Array2::zeros((n_out, n_in));
    for t in 0..t_len {
        for b in 0..b_len {
            for j in 0..n_in {
                let mut acc = 0.0;
                for o in 0..n_out {
                    acc += g[[1, t, b, o]] * w[[o, j]];
                    gw[[o, j]] += g[[0, t, b, o]] * x[[t, b, j]];
                }
                gx[[t, b, j]] = acc;
            }
        }
    }
    (gx, gw)
}

/// Largest `|a - b| / max(|b|, floor)` over all elements.
pub fn max_rel_err<'a, D: ndarray::Dimension>(
    a: &ndarray::ArrayView<'a, f64, D>,
    b: &ndarray::ArrayView<'a, f64, D>,
    floor: f64,
) -> f64 {
    assert_eq!(a.shape(), b.shape(), "shapes differ");
    a.iter()
        .zip(b.iter())
        .map(|(&x, &y)| (x - y).abs() / y.abs().max(floor))
        .fold(0.0, f64::max)
}

/// Bitwise equality of two f64 arrays (so that `0.0` vs `-0.0` and NaN payloads count).
pub fn bits_equal<D: ndarray::Dimension, F: Real>(
    a: &ndarray::Array<F, D>,
    b: &ndarray::Array<F, D>,
) -> bool {
    a.shape() == b.shape()
        && a.iter()
            .zip(b.iter())
            .all(|(x, y)| x.to_f64().map(f64::to_bits) == y.to_f64().map(f64::to_bits))
}

// ---------------------------------------------------------------------------------------
// docs/spec.md §4: continuous-time LIF, one input spike of weight `w` into the current at s = 0,
// starting from rest (`u = V - leak = 0`).

/// Post-synaptic kernel `K(s)` for unit weight: `u(s) = w K(s)`.
///
/// docs/spec.md §4 with `u0 = 0`, `I0 = 1`: `b = tau_syn/(tau_syn - tau_mem)`, `a = -b`, so
/// `K(s) = b (e^{-s/tau_syn} - e^{-s/tau_mem})`; for `tau_mem = tau_syn = tau`,
/// `K(s) = (s/tau) e^{-s/tau}`.
pub fn psp_kernel(s: f64, tau_syn: f64, tau_mem: f64) -> f64 {
    if tau_syn == tau_mem {
        s / tau_syn * (-s / tau_syn).exp()
    } else {
        tau_syn / (tau_syn - tau_mem) * ((-s / tau_syn).exp() - (-s / tau_mem).exp())
    }
}

/// Time of the maximum of `K`: `dK/ds = 0`, i.e. `e^{-s/tau_syn}/tau_syn = e^{-s/tau_mem}/tau_mem`,
/// so `s = ln(tau_mem/tau_syn) tau_syn tau_mem / (tau_mem - tau_syn)`; `tau` when equal.
pub fn psp_peak_time(tau_syn: f64, tau_mem: f64) -> f64 {
    if tau_syn == tau_mem {
        tau_syn
    } else {
        (tau_mem / tau_syn).ln() * tau_syn * tau_mem / (tau_mem - tau_syn)
    }
}

/// First crossing `s*` of `w K(s) = theta_rel` (`theta_rel = threshold - leak`) on the
/// rising flank, by bisection on `[0, peak]` to machine precision; `None` if `w K` stays
/// below `theta_rel`.
pub fn first_crossing(w: f64, theta_rel: f64, tau_syn: f64, tau_mem: f64) -> Option<f64> {
    let peak = psp_peak_time(tau_syn, tau_mem);
    if w * psp_kernel(peak, tau_syn, tau_mem) <= theta_rel {
        return None;
    }
    let (mut lo, mut hi) = (0.0, peak);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if w * psp_kernel(mid, tau_syn, tau_mem) > theta_rel {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(0.5 * (lo + hi))
}

/// Implicit-function derivative of the first spike time w.r.t. the input weight:
/// with `F(s, w) = w K(s) - theta_rel = 0`, `ds*/dw = -(∂F/∂w)/(∂F/∂s) = -K(s*)/(w K'(s*))`.
/// `w K'(s*) = dV/dt = (-(u) + I)/tau_mem = (I(s*) - theta_rel)/tau_mem = D-/tau_mem`
/// (docs/spec.md §4 ODE; `I(s*) = w e^{-s*/tau_syn}`), hence
/// `ds*/dw = -(theta_rel/w) tau_mem / (w e^{-s*/tau_syn} - theta_rel)`.
pub fn spike_time_derivative(w: f64, theta_rel: f64, tau_syn: f64, tau_mem: f64) -> Option<f64> {
    let s = first_crossing(w, theta_rel, tau_syn, tau_mem)?;
    let d_minus = w * (-s / tau_syn).exp() - theta_rel;
    Some(-(theta_rel / w) * tau_mem / d_minus)
}

//! Adjoint kernel of the fused layer, mirroring [`super::forward`]: one batch row, reverse
//! time, the jumps applied at the stored spikes only, the weight gradient accumulated at
//! the input events.
//!
//! With `lambda_v = lambda_i = 0` at `T-1`, for `t = T-1 … 1` (as [`crate::lif::backward`]):
//!
//! ```text
//! lambda_i ← lambda_i + k_syn (lambda_v - lambda_i);   lambda_v ← lambda_v decay_mem
//! at a spike (n, i*) of step t:  dv_m = leak - threshold + i*,  dv_p = leak - reset + i*
//!     lambda_v[n] ← (dv_p / dv_m) lambda_v[n] + grad / dv_m      # 0 where not finite (counted)
//! at an input event (j, x) of step t-1:
//!     gradW^T[j, :] += x tau_syn lambda_i
//!     grad_input    = W^T[j, :] · (lambda_v - lambda_i)          # to the layer below
//! ```
//!
//! Where the neuron does not spike the seed's `lambda_v[t-1]` is `w = lambda_v decay_mem`
//! whatever its guards do, so only spikes need work; guards are counted at spikes only.

use super::events::EventRow;
use super::forward::axpy;
use super::simd::dispatch;
use crate::lif::GuardStats;
use crate::params::Coefficients;
use crate::Real;

/// Per-thread adjoint rows, `N` values each (reused across calls).
#[derive(Debug, Clone, Default)]
pub(crate) struct BackwardScratch<F> {
    lambda_v: Vec<F>,
    lambda_i: Vec<F>,
    g0: Vec<F>,
    g1: Vec<F>,
}

impl<F: Real> BackwardScratch<F> {
    fn fit(&mut self, n: usize) {
        for b in [
            &mut self.lambda_v,
            &mut self.lambda_i,
            &mut self.g0,
            &mut self.g1,
        ] {
            b.resize(n, F::zero());
        }
    }
}

/// `Σ a_k b_k` with eight partial sums, so that it is vectorised.
#[inline(always)]
fn dot_body<F: Real>(a: &[F], b: &[F]) -> F {
    let b = &b[..a.len()];
    let mut acc = [F::zero(); 8];
    let (ca, ra) = a.split_at(a.len() / 8 * 8);
    let (cb, rb) = b.split_at(ca.len());
    for (x, y) in ca.chunks_exact(8).zip(cb.chunks_exact(8)) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        s += *x * *y;
    }
    s
}

/// One reverse step of the adjoint between events: `lambda_i += k_syn (lambda_v -
/// lambda_i)`, `lambda_v *= decay_mem`.
#[inline(always)]
fn decay_body<F: Real>(lambda_v: &mut [F], lambda_i: &mut [F], k_syn: &[F], decay_mem: &[F]) {
    let n = lambda_v.len();
    let (lambda_i, k_syn, decay_mem) = (&mut lambda_i[..n], &k_syn[..n], &decay_mem[..n]);
    for k in 0..n {
        let lv = lambda_v[k];
        lambda_i[k] = lambda_i[k] + k_syn[k] * (lv - lambda_i[k]);
        lambda_v[k] = lv * decay_mem[k];
    }
}

dispatch! {
    /// [`decay_body`], as wide as the CPU allows.
    fn decay(lambda_v: &mut [F], lambda_i: &mut [F], k_syn: &[F], decay_mem: &[F]) = decay_body;
}

dispatch! {
    /// [`dot_body`], as wide as the CPU allows.
    fn dot(a: &[F], b: &[F]) -> F = dot_body;
}

/// What one row's adjoint reads.
pub(crate) struct RowAdjoint<'a, F> {
    /// The row's input events (the forward's input).
    pub input: &'a EventRow<F>,
    /// The row's output spikes of the forward.
    pub spikes: &'a EventRow<F>,
    /// The current `i*` at each spike.
    pub i_star: &'a [F],
    /// `dL/dz` at each spike.
    pub grad_spikes: &'a [F],
}

/// Runs the adjoint of one batch row, adding its weight gradient into `grad_wt`
/// (`(N_in, N)`, row-major) and, if given, writing the gradient at each input event into
/// `grad_input` (aligned with the input's events). Returns the guard counts and whether the
/// adjoint stayed finite.
///
/// # Panics
/// If the slices do not fit the row's events and `N`.
#[track_caller]
pub(crate) fn row_backward<F: Real>(
    c: &Coefficients<F>,
    wt: &[F],
    row: &RowAdjoint<'_, F>,
    steps: usize,
    s: &mut BackwardScratch<F>,
    grad_wt: &mut [F],
    mut grad_input: Option<&mut [F]>,
) -> (GuardStats, bool) {
    let n = c.len();
    let mut stats = GuardStats::default();
    if steps == 0 {
        return (stats, true);
    }
    s.fit(n);
    let BackwardScratch {
        lambda_v,
        lambda_i,
        g0,
        g1,
    } = s;
    let (lambda_v, lambda_i) = (&mut lambda_v[..n], &mut lambda_i[..n]);
    lambda_v.fill(F::zero());
    lambda_i.fill(F::zero());
    let (k_syn, decay_mem, tau_syn) = (&c.k_syn[..n], &c.decay_mem[..n], &c.tau_syn[..n]);
    let (leak, reset, threshold) = (&c.leak[..n], &c.reset[..n], &c.threshold[..n]);
    let (in_idx, in_val) = (row.input.indices(), row.input.values());
    let sp_idx = row.spikes.indices();
    // Events of the last step see lambda = 0.
    if let Some(gi) = grad_input.as_deref_mut() {
        gi[row.input.range(steps - 1)].fill(F::zero());
    }
    for t in (1..steps).rev() {
        decay(lambda_v, lambda_i, k_syn, decay_mem);
        for p in row.spikes.range(t) {
            let k = sp_idx[p] as usize;
            let i_star = row.i_star[p];
            let dv_m = leak[k] - threshold[k] + i_star;
            let dv_p = leak[k] - reset[k] + i_star;
            // The seed's `z grad / dv_m` and `z dv_p / dv_m` with `z = 1`.
            let mut out = row.grad_spikes[p] / dv_m;
            let mut jump = dv_p / dv_m;
            let (out_ok, jump_ok) = (out.is_finite(), jump.is_finite());
            if !(out_ok && jump_ok) {
                if !out_ok {
                    out = F::zero();
                    stats.nonfinite_out += 1;
                }
                if !jump_ok {
                    jump = F::zero();
                    stats.nonfinite_jump += 1;
                }
                stats.guarded_spikes += 1;
            }
            lambda_v[k] = jump * lambda_v[k] + out;
        }
        let r = row.input.range(t - 1);
        if r.is_empty() {
            continue;
        }
        for k in 0..n {
            g0[k] = lambda_i[k] * tau_syn[k];
        }
        if grad_input.is_some() {
            for k in 0..n {
                g1[k] = lambda_v[k] - lambda_i[k];
            }
        }
        for p in r {
            let j = in_idx[p] as usize;
            axpy(&mut grad_wt[j * n..(j + 1) * n], in_val[p], g0);
            if let Some(gi) = grad_input.as_deref_mut() {
                gi[p] = dot(&wt[j * n..(j + 1) * n], g1);
            }
        }
    }
    let finite = lambda_v
        .iter()
        .chain(lambda_i.iter())
        .all(|l| l.is_finite());
    (stats, finite)
}

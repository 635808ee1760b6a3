//! Adjoint kernel of the seed LIF function (EventProp, Euler-discretised), mirroring
//! [`forward`](super::forward).
//!
//! With `lambda_v[T-1] = lambda_i[T-1] = 0`, for `t = T-1` down to `1`:
//!
//! ```text
//! i*   = i[t-1]   (Discretization::Seed)   or   i[t]   (Discretization::Corrected)
//! dv_m = leak - threshold + i*        # tau_mem dV/dt just before the spike
//! dv_p = leak - reset     + i*        # tau_mem dV/dt just after the reset
//! lambda_i[t-1] = lambda_i[t] + k_syn * (lambda_v[t] - lambda_i[t])
//! w             = lambda_v[t] * decay_mem
//! out           = z[t] * grad_spikes[t] / dv_m     # 0 where not finite (counted)
//! jump          = z[t] * dv_p / dv_m               # 0 where not finite (counted)
//! lambda_v[t-1] = (1 - z[t]) * w + jump * w + out
//! ```
//!
//! and the returned gradient is `(lambda_i * tau_syn, lambda_v - lambda_i)`.

use std::mem::MaybeUninit;

use super::{Discretization, GuardStats};
use crate::fused::simd::dispatch;
use crate::params::Coefficients;
use crate::Real;

/// Read-only inputs of the adjoint for one batch group.
pub(crate) struct AdjointInputs<'a, F> {
    /// Spikes `z`, full `(T, B, N)`.
    pub z: &'a [F],
    /// Current `i`, full `(T, B, N)`.
    pub i: &'a [F],
    /// Gradient w.r.t. the spikes, full `(T, B, N)`.
    pub grad_spikes: &'a [F],
    /// `B * N`.
    pub row_len: usize,
    /// Start of the group within a time row.
    pub offset: usize,
}

/// Runs the adjoint recursion for one batch group, writing one row per time step of
/// `grad_i = lambda_i * tau_syn` and `grad_v = lambda_v - lambda_i` (every element is
/// written, so the outputs may start uninitialised).
///
/// `lambda_v`/`lambda_i` are caller-owned scratch rows of the group's width. Returns the
/// guard counts and whether the adjoint stayed finite. That is checked on the final
/// `lambda_v`, `lambda_i` only: a non-finite lambda never becomes finite again (the guards
/// zero `out` and `jump`, which do not depend on lambda, and `0 * inf` is NaN), so this
/// finds every overflow of the adjoint state at no cost per step.
///
/// # Panics
/// If the row lists or scratch rows do not match in length.
#[track_caller]
pub(crate) fn lif_backward_rows<F: Real>(
    c: &Coefficients<F>,
    discretization: Discretization,
    inp: &AdjointInputs<'_, F>,
    grad_i: &mut [&mut [MaybeUninit<F>]],
    grad_v: &mut [&mut [MaybeUninit<F>]],
    lambda_v: &mut [F],
    lambda_i: &mut [F],
) -> (GuardStats, bool) {
    let n = c.len();
    let steps = grad_i.len();
    assert_eq!(grad_v.len(), steps, "row lists differ in length");
    let mut stats = GuardStats::default();
    if steps == 0 || n == 0 {
        return (stats, true);
    }
    let width = grad_i[0].len();
    assert!(
        lambda_v.len() == width && lambda_i.len() == width,
        "scratch rows have the wrong width"
    );
    lambda_v.fill(F::zero());
    lambda_i.fill(F::zero());
    for slot in grad_i[steps - 1]
        .iter_mut()
        .chain(grad_v[steps - 1].iter_mut())
    {
        slot.write(F::zero());
    }
    let row = |t: usize| t * inp.row_len + inp.offset..t * inp.row_len + inp.offset + width;
    for t in (1..steps).rev() {
        let z = &inp.z[row(t)];
        let g = &inp.grad_spikes[row(t)];
        let i_jump = match discretization {
            Discretization::Seed => &inp.i[row(t - 1)],
            Discretization::Corrected => &inp.i[row(t)],
        };
        let (gi, gv) = (&mut *grad_i[t - 1], &mut *grad_v[t - 1]);
        for b in 0..width / n {
            let r = b * n..(b + 1) * n;
            stats += step_row(
                c,
                &z[r.clone()],
                &g[r.clone()],
                &i_jump[r.clone()],
                &mut lambda_v[r.clone()],
                &mut lambda_i[r.clone()],
                &mut gi[r.clone()],
                &mut gv[r],
            );
        }
    }
    let finite = lambda_v
        .iter()
        .chain(lambda_i.iter())
        .all(|l| l.is_finite());
    (stats, finite)
}

dispatch! {
    /// One reverse step for one batch row, as wide as the CPU allows ([`step_row_body`]).
    #[allow(clippy::too_many_arguments)]
    fn step_row(
        c: &Coefficients<F>,
        z: &[F],
        grad_spikes: &[F],
        i_jump: &[F],
        lambda_v: &mut [F],
        lambda_i: &mut [F],
        grad_i: &mut [MaybeUninit<F>],
        grad_v: &mut [MaybeUninit<F>],
    ) -> GuardStats = step_row_body;
}

/// One reverse step for one batch row; updates `lambda_v`, `lambda_i` in place.
///
/// Branch-free, so that the loop is vectorised: both divisions are computed for every
/// entry and the result is selected. The values equal those of the branchy form: where
/// `z = 0` and `dv_m`, `dv_p` are regular, `out` and `jump` are exactly ±0 (finite, so
/// not counted) and `lambda_v = w` is taken as is; elsewhere the guarded formula.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn step_row_body<F: Real>(
    c: &Coefficients<F>,
    z: &[F],
    grad_spikes: &[F],
    i_jump: &[F],
    lambda_v: &mut [F],
    lambda_i: &mut [F],
    grad_i: &mut [MaybeUninit<F>],
    grad_v: &mut [MaybeUninit<F>],
) -> GuardStats {
    let n = c.len();
    let (leak, reset, threshold) = (&c.leak[..n], &c.reset[..n], &c.threshold[..n]);
    let (k_syn, decay_mem, tau_syn) = (&c.k_syn[..n], &c.decay_mem[..n], &c.tau_syn[..n]);
    let (z, grad_spikes, i_jump) = (&z[..n], &grad_spikes[..n], &i_jump[..n]);
    let (lambda_v, lambda_i) = (&mut lambda_v[..n], &mut lambda_i[..n]);
    let (grad_i, grad_v) = (&mut grad_i[..n], &mut grad_v[..n]);
    // Per-row counts in u32 (a row has far fewer than 2^32 entries), so that the counting
    // vectorises along with the rest.
    let (mut bad_out, mut bad_jump, mut bad_spike) = (0u32, 0u32, 0u32);
    for k in 0..n {
        let dv_m = leak[k] - threshold[k] + i_jump[k];
        let dv_p = leak[k] - reset[k] + i_jump[k];
        let li = lambda_i[k] + k_syn[k] * (lambda_v[k] - lambda_i[k]);
        let w = lambda_v[k] * decay_mem[k];
        let out = z[k] * grad_spikes[k] / dv_m;
        let jump = z[k] * dv_p / dv_m;
        let out_ok = out.abs() <= F::max_value();
        let jump_ok = jump.abs() <= F::max_value();
        let out = F::select(out_ok, out, F::zero());
        let jump = F::select(jump_ok, jump, F::zero());
        let spike = z[k] != F::zero();
        bad_out += u32::from(!out_ok);
        bad_jump += u32::from(!jump_ok);
        bad_spike += u32::from(spike & !(out_ok & jump_ok));
        let regular = !spike
            & (dv_m != F::zero())
            & (dv_m.abs() <= F::max_value())
            & (dv_p.abs() <= F::max_value());
        let general = (F::one() - z[k]) * w + jump * w + out;
        let lv = F::select(regular, w, general);
        lambda_i[k] = li;
        lambda_v[k] = lv;
        grad_i[k].write(li * tau_syn[k]);
        grad_v[k].write(lv - li);
    }
    GuardStats {
        nonfinite_out: u64::from(bad_out),
        nonfinite_jump: u64::from(bad_jump),
        guarded_spikes: u64::from(bad_spike),
    }
}

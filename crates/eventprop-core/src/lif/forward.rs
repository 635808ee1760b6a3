//! Forward kernel of the seed LIF function (time-stepped, seed update order).
//!
//! For one group of batch rows, with `x` the input current per step:
//!
//! ```text
//! z[0] = 0,  i[0] = 0,  v[0] = leak
//! for t in 0 .. T-1:
//!     i[t+1] = i[t] * decay_syn + x[t]              # current first
//!     u      = v[t] + k_mem * (leak - v[t] + i[t+1]) # membrane sees the NEW current
//!     z[t+1] = 1 if u > threshold else 0             # strict '>'
//!     v[t+1] = reset if z[t+1] == 1 else u
//! ```

use crate::params::Coefficients;
use crate::Real;

/// Runs the forward recursion for one batch group.
///
/// `x` is the full `(T, B, N)` input; the group's rows start at `offset` within each
/// time row of length `row_len`. `z`, `v`, `i` hold one mutable row (`group * N` values)
/// per time step.
///
/// # Panics
/// If the row slices do not all have the same length, a multiple of `N`.
#[track_caller]
pub(crate) fn lif_forward_rows<F: Real>(
    c: &Coefficients<F>,
    x: &[F],
    row_len: usize,
    offset: usize,
    z: &mut [&mut [F]],
    v: &mut [&mut [F]],
    i: &mut [&mut [F]],
) {
    let n = c.len();
    let steps = z.len();
    assert!(
        v.len() == steps && i.len() == steps,
        "row lists differ in length"
    );
    if steps == 0 || n == 0 {
        return;
    }
    let width = z[0].len();
    assert_eq!(width % n, 0, "row width is not a multiple of N");
    z[0].fill(F::zero());
    i[0].fill(F::zero());
    for row in v[0].chunks_mut(n) {
        row.copy_from_slice(&c.leak);
    }
    for t in 0..steps - 1 {
        let xt = &x[t * row_len + offset..t * row_len + offset + width];
        let (i_prev, i_next) = i.split_at_mut(t + 1);
        let (v_prev, v_next) = v.split_at_mut(t + 1);
        let (i_prev, i_next) = (&*i_prev[t], &mut *i_next[0]);
        let (v_prev, v_next) = (&*v_prev[t], &mut *v_next[0]);
        let z_next = &mut *z[t + 1];
        for b in 0..width / n {
            let r = b * n..(b + 1) * n;
            step_row(
                c,
                &xt[r.clone()],
                &i_prev[r.clone()],
                &v_prev[r.clone()],
                &mut i_next[r.clone()],
                &mut v_next[r.clone()],
                &mut z_next[r],
            );
        }
    }
}

/// One time step for one batch row of `N` neurons.
#[inline]
fn step_row<F: Real>(
    c: &Coefficients<F>,
    x: &[F],
    i_prev: &[F],
    v_prev: &[F],
    i_next: &mut [F],
    v_next: &mut [F],
    z_next: &mut [F],
) {
    let n = c.len();
    let (leak, reset, threshold) = (&c.leak[..n], &c.reset[..n], &c.threshold[..n]);
    let (decay_syn, k_mem) = (&c.decay_syn[..n], &c.k_mem[..n]);
    let (x, i_prev, v_prev) = (&x[..n], &i_prev[..n], &v_prev[..n]);
    let (i_next, v_next, z_next) = (&mut i_next[..n], &mut v_next[..n], &mut z_next[..n]);
    for k in 0..n {
        let i = i_prev[k] * decay_syn[k] + x[k];
        let u = v_prev[k] + k_mem[k] * (leak[k] - v_prev[k] + i);
        let spike = u > threshold[k];
        i_next[k] = i;
        z_next[k] = if spike { F::one() } else { F::zero() };
        v_next[k] = if spike { reset[k] } else { u };
    }
}

/// Recomputes the synaptic current `i[0] = 0, i[t+1] = i[t] * decay_syn + x[t]` for one
/// batch group (the hardware-data path, when no current was recorded).
#[track_caller]
pub(crate) fn current_rows<F: Real>(
    c: &Coefficients<F>,
    x: &[F],
    row_len: usize,
    offset: usize,
    i: &mut [&mut [F]],
) {
    let n = c.len();
    let steps = i.len();
    if steps == 0 || n == 0 {
        return;
    }
    let width = i[0].len();
    i[0].fill(F::zero());
    for t in 0..steps - 1 {
        let xt = &x[t * row_len + offset..t * row_len + offset + width];
        let (prev, next) = i.split_at_mut(t + 1);
        let (prev, next) = (&*prev[t], &mut *next[0]);
        for ((nx, (&p, &xv)), &d) in next
            .iter_mut()
            .zip(prev.iter().zip(xt))
            .zip(c.decay_syn.iter().cycle())
        {
            *nx = p * d + xv;
        }
    }
}

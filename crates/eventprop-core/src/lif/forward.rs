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

use std::mem::MaybeUninit;

use crate::fused::simd::dispatch;
use crate::params::Coefficients;
use crate::Real;

/// Runs the forward recursion for one batch group.
///
/// `x` is the full `(T, B, N)` input; the group's rows start at `offset` within each
/// time row of length `row_len`. `z`, `v`, `i` hold one output row (`group * N` values)
/// per time step; every element of every row is written (the outputs may start
/// uninitialised). `i_state`/`v_state` are caller-owned scratch rows of the group's width
/// that carry the state from step to step.
///
/// Returns whether the current and membrane stayed finite (finite inputs can still
/// overflow); all elements are written either way. A non-finite state never becomes finite
/// again (with finite `x`, `±inf` current stays `±inf` or turns NaN; `-inf` membrane turns
/// NaN the next step, `+inf` is not stored but reset), so checking the final state costs
/// nothing per step and finds every overflow.
///
/// # Panics
/// If the row slices or scratch rows do not all have the same length, a multiple of `N`.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub(crate) fn lif_forward_rows<F: Real>(
    c: &Coefficients<F>,
    x: &[F],
    row_len: usize,
    offset: usize,
    z: &mut [&mut [MaybeUninit<F>]],
    v: &mut [&mut [MaybeUninit<F>]],
    i: &mut [&mut [MaybeUninit<F>]],
    (i_state, v_state): (&mut [F], &mut [F]),
) -> bool {
    let n = c.len();
    let steps = z.len();
    assert!(
        v.len() == steps && i.len() == steps,
        "row lists differ in length"
    );
    if steps == 0 || n == 0 {
        return true;
    }
    let width = z[0].len();
    assert_eq!(width % n, 0, "row width is not a multiple of N");
    assert!(
        i_state.len() == width && v_state.len() == width,
        "scratch rows have the wrong width"
    );
    i_state.fill(F::zero());
    for row in v_state.chunks_mut(n) {
        row.copy_from_slice(&c.leak);
    }
    write_row(z[0], |_| F::zero());
    write_row(i[0], |k| i_state[k]);
    write_row(v[0], |k| v_state[k]);
    for t in 0..steps - 1 {
        let xt = &x[t * row_len + offset..t * row_len + offset + width];
        let (z_next, v_next, i_next) = (&mut *z[t + 1], &mut *v[t + 1], &mut *i[t + 1]);
        for b in 0..width / n {
            let r = b * n..(b + 1) * n;
            step_row(
                c,
                &xt[r.clone()],
                &mut i_state[r.clone()],
                &mut v_state[r.clone()],
                &mut i_next[r.clone()],
                &mut v_next[r.clone()],
                &mut z_next[r],
            );
        }
    }
    i_state.iter().chain(v_state.iter()).all(|s| s.is_finite())
}

/// Writes `value(k)` into every element of an output row.
#[inline]
fn write_row<F: Real>(row: &mut [MaybeUninit<F>], value: impl Fn(usize) -> F) {
    for (k, slot) in row.iter_mut().enumerate() {
        slot.write(value(k));
    }
}

dispatch! {
    /// One time step for one batch row of `N` neurons, as wide as the CPU allows
    /// ([`step_row_body`]).
    fn step_row(
        c: &Coefficients<F>,
        x: &[F],
        i_state: &mut [F],
        v_state: &mut [F],
        i_next: &mut [MaybeUninit<F>],
        v_next: &mut [MaybeUninit<F>],
        z_next: &mut [MaybeUninit<F>],
    ) = step_row_body;
}

/// One time step for one batch row of `N` neurons: updates the state and writes it out.
/// Branch-free ([`Real::select`]), so that the loop is vectorised; the values are those of
/// the seed's `if`.
#[inline(always)]
fn step_row_body<F: Real>(
    c: &Coefficients<F>,
    x: &[F],
    i_state: &mut [F],
    v_state: &mut [F],
    i_next: &mut [MaybeUninit<F>],
    v_next: &mut [MaybeUninit<F>],
    z_next: &mut [MaybeUninit<F>],
) {
    let n = c.len();
    let (leak, reset, threshold) = (&c.leak[..n], &c.reset[..n], &c.threshold[..n]);
    let (decay_syn, k_mem) = (&c.decay_syn[..n], &c.k_mem[..n]);
    let (x, i_state, v_state) = (&x[..n], &mut i_state[..n], &mut v_state[..n]);
    let (i_next, v_next, z_next) = (&mut i_next[..n], &mut v_next[..n], &mut z_next[..n]);
    for k in 0..n {
        let i = i_state[k] * decay_syn[k] + x[k];
        let u = v_state[k] + k_mem[k] * (leak[k] - v_state[k] + i);
        let spike = u > threshold[k];
        let v = F::select(spike, reset[k], u);
        i_state[k] = i;
        v_state[k] = v;
        i_next[k].write(i);
        z_next[k].write(F::select(spike, F::one(), F::zero()));
        v_next[k].write(v);
    }
}

/// Recomputes the synaptic current `i[0] = 0, i[t+1] = i[t] * decay_syn + x[t]` for one
/// batch group (the hardware-data path, when no current was recorded); writes every
/// element of `i`. `i_state` is a scratch row of the group's width. Returns whether the
/// current stayed finite (checked on the final state, as in [`lif_forward_rows`]).
#[track_caller]
pub(crate) fn current_rows<F: Real>(
    c: &Coefficients<F>,
    x: &[F],
    row_len: usize,
    offset: usize,
    i: &mut [&mut [MaybeUninit<F>]],
    i_state: &mut [F],
) -> bool {
    let n = c.len();
    let steps = i.len();
    if steps == 0 || n == 0 {
        return true;
    }
    let width = i[0].len();
    assert_eq!(i_state.len(), width, "scratch row has the wrong width");
    i_state.fill(F::zero());
    write_row(i[0], |_| F::zero());
    for t in 0..steps - 1 {
        let xt = &x[t * row_len + offset..t * row_len + offset + width];
        for (((slot, state), &xv), &d) in i[t + 1]
            .iter_mut()
            .zip(i_state.iter_mut())
            .zip(xt)
            .zip(c.decay_syn.iter().cycle())
        {
            *state = *state * d + xv;
            slot.write(*state);
        }
    }
    i_state.iter().all(|s| s.is_finite())
}

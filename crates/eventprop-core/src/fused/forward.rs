//! Forward kernel of the fused layer: one batch row, event-driven synapse, the seed's LIF
//! update, spikes compacted into an [`EventRow`].
//!
//! For `t = 0 .. T-2` (the seed's update order, [`crate::lif::forward`]):
//!
//! ```text
//! y      = Σ_{events (j, x) of step t} x W^T[j, :]    # 0 without events
//! i[t+1] = i[t] decay_syn + y
//! u      = v + k_mem (leak - v + i[t+1]);  z = [u > threshold];  v = z ? reset : u
//! ```
//!
//! A spike of step `t + 1` is stored with `i* = i[t]` (seed discretization) or `i[t+1]`
//! (corrected): all the adjoint needs besides the events.
//!
//! A recurrent layer (weight `R` `(N, N)`, held transposed) adds, after the input events,
//! the rows `R^T[m, :]` of its own spikes `m` of step `t` to `y` in ascending `m`: the
//! spikes of step `t` drive step `t + 1`, in the order of
//! [`crate::stepped::layer::SteppedLayer`].

use super::events::{reserve_pow2, EventRow};
use super::simd::dispatch;
use crate::lif::Discretization;
use crate::params::Coefficients;
use crate::Real;

/// Per-thread state rows of the forward, `N` values each (reused across calls).
#[derive(Debug, Clone, Default)]
pub(crate) struct ForwardScratch<F> {
    i_a: Vec<F>,
    i_b: Vec<F>,
    v: Vec<F>,
    y: Vec<F>,
    /// Spike flags (0 or 1) of the step, padded with zeros to a multiple of 8.
    spike: Vec<u8>,
    found: Vec<u32>,
}

impl<F: Real> ForwardScratch<F> {
    fn fit(&mut self, n: usize) {
        for b in [&mut self.i_a, &mut self.i_b, &mut self.v, &mut self.y] {
            b.resize(n, F::zero());
        }
        self.spike.clear();
        self.spike.resize(n.next_multiple_of(8), 0);
        self.found.resize(n, 0);
    }
}

/// `y += x w` over a row; `y += w` for `x = 1` (a spike), which is the same number
/// (`1 w = w` exactly) without the multiplication.
#[inline(always)]
fn axpy_body<F: Real>(y: &mut [F], x: F, w: &[F]) {
    let w = &w[..y.len()];
    if x == F::one() {
        for (y, &w) in y.iter_mut().zip(w) {
            *y += w;
        }
    } else {
        for (y, &w) in y.iter_mut().zip(w) {
            *y += x * w;
        }
    }
}

dispatch! {
    /// `y += x w` over a row (a weight row of an event), as wide as the CPU allows.
    fn axpy(y: &mut [F], x: F, w: &[F]) = axpy_body;
}

/// The synaptic current of one step, `i_next = i_now decay + y` (`+ 0` without input, as
/// the forward's step does), for the current-only pass [`row_current`].
#[inline(always)]
fn current_step_body<F: Real>(decay: &[F], y: Option<&[F]>, i_now: &[F], i_next: &mut [F]) {
    let n = i_next.len();
    let (decay, i_now) = (&decay[..n], &i_now[..n]);
    match y {
        None => {
            for ((i1, &i0), &d) in i_next.iter_mut().zip(i_now).zip(decay) {
                *i1 = i0 * d + F::zero();
            }
        }
        Some(y) => {
            for (((i1, &i0), &d), &y) in i_next.iter_mut().zip(i_now).zip(decay).zip(&y[..n]) {
                *i1 = i0 * d + y;
            }
        }
    }
}

dispatch! {
    /// One step of the synaptic current for `N` neurons, as wide as the CPU allows
    /// ([`current_step_body`]).
    fn current_step(decay: &[F], y: Option<&[F]>, i_now: &[F], i_next: &mut [F]) = current_step_body;
}

dispatch! {
    /// One LIF step for `N` neurons, as wide as the CPU allows ([`step_body`]).
    fn step(
        c: &Coefficients<F>,
        x: Option<&[F]>,
        i_now: &[F],
        i_next: &mut [F],
        v: &mut [F],
        spike: &mut [u8],
    ) = step_body;
}

/// One LIF step for `N` neurons; `x` is the synaptic input of the step (`None`: zero).
/// Writes the new current into `i_next`, updates `v` and writes `1`/`0` spike flags into
/// `spike[..N]`. Branch-free ([`Real::select`]), so that the loop is vectorised.
#[inline(always)]
fn step_body<F: Real>(
    c: &Coefficients<F>,
    x: Option<&[F]>,
    i_now: &[F],
    i_next: &mut [F],
    v: &mut [F],
    spike: &mut [u8],
) {
    let n = c.len();
    let (leak, reset, threshold) = (&c.leak[..n], &c.reset[..n], &c.threshold[..n]);
    let (decay_syn, k_mem) = (&c.decay_syn[..n], &c.k_mem[..n]);
    let (i_now, i_next, v, spike) = (&i_now[..n], &mut i_next[..n], &mut v[..n], &mut spike[..n]);
    match x {
        Some(x) => {
            let x = &x[..n];
            for k in 0..n {
                let i = i_now[k] * decay_syn[k] + x[k];
                let u = v[k] + k_mem[k] * (leak[k] - v[k] + i);
                let s = u > threshold[k];
                i_next[k] = i;
                v[k] = F::select(s, reset[k], u);
                spike[k] = u8::from(s);
            }
        }
        None => {
            // `i decay + 0` equals the seed's `i decay + x` with `x = 0`.
            for k in 0..n {
                let i = i_now[k] * decay_syn[k] + F::zero();
                let u = v[k] + k_mem[k] * (leak[k] - v[k] + i);
                let s = u > threshold[k];
                i_next[k] = i;
                v[k] = F::select(s, reset[k], u);
                spike[k] = u8::from(s);
            }
        }
    }
}

/// Compacts the spike flags (`0`/`1` bytes, length a multiple of 8) into their indices in
/// ascending order: `found[..m]`, returns `m`.
///
/// Eight flags are read as one little-endian `u64` and gathered into eight mask bits by
/// one multiplication: byte `i` (0 or 1) times `0x0102040810204080` lands on bit `56 + i`
/// and on no other bit of the top byte, and no two partial products meet, so nothing
/// carries. The set bits of each 64-neuron mask are then visited with `trailing_zeros`:
/// the work is `N / 8` multiplications plus one store per spike, instead of a compare and
/// a store per neuron.
#[inline(always)]
fn compact(spike: &[u8], found: &mut [u32]) -> usize {
    const GATHER: u64 = 0x0102_0408_1020_4080;
    let mut m = 0;
    for (block, flags) in spike.chunks(64).enumerate() {
        let mut mask = 0u64;
        for (i, w) in flags.chunks_exact(8).enumerate() {
            let w = u64::from_le_bytes(w.try_into().expect("chunks of 8 bytes"));
            mask |= (w.wrapping_mul(GATHER) >> 56) << (8 * i);
        }
        let base = (block * 64) as u32;
        while mask != 0 {
            found[m] = base + mask.trailing_zeros();
            m += 1;
            mask &= mask - 1;
        }
    }
    m
}

/// Runs the forward of one batch row over `steps` steps.
///
/// `wt` is the transposed weight `(N_in, N)`, row-major; `rt`, if given, the transposed
/// recurrent weight `(N, N)` (the layer's spikes of step `t` feed step `t + 1` through it).
/// Fills `spikes` (cleared first,
/// `steps` steps, value 1 per spike) and `i_star` (the current the adjoint's jump uses, one
/// per spike). Returns whether the current and membrane stayed finite (a non-finite state
/// stays non-finite, see [`crate::lif::forward`], so the final state tells).
///
/// # Panics
/// If `input` has fewer than `steps` steps or a channel beyond `wt`.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub(crate) fn row_forward<F: Real>(
    c: &Coefficients<F>,
    discretization: Discretization,
    wt: &[F],
    rt: Option<&[F]>,
    input: &EventRow<F>,
    steps: usize,
    s: &mut ForwardScratch<F>,
    spikes: &mut EventRow<F>,
    i_star: &mut Vec<F>,
) -> bool {
    let n = c.len();
    spikes.clear();
    i_star.clear();
    if steps == 0 {
        return true;
    }
    s.fit(n);
    let ForwardScratch {
        i_a,
        i_b,
        v,
        y,
        spike,
        found,
    } = s;
    i_a.fill(F::zero());
    v.copy_from_slice(&c.leak);
    spikes.end_step(); // step 0: no spike
    let (idx, val) = (input.indices(), input.values());
    let (mut i_now, mut i_next) = (i_a, i_b);
    for t in 0..steps - 1 {
        let r = input.range(t);
        // The layer's own spikes of step `t` (recurrent input; none without `rt`).
        let own = match rt {
            Some(_) => spikes.range(t),
            None => 0..0,
        };
        let x = if r.is_empty() && own.is_empty() {
            None
        } else {
            y.fill(F::zero());
            for p in r {
                let j = idx[p] as usize;
                axpy(y, val[p], &wt[j * n..(j + 1) * n]);
            }
            if let Some(rt) = rt {
                for p in own {
                    let m = spikes.indices()[p] as usize;
                    axpy(y, F::one(), &rt[m * n..(m + 1) * n]);
                }
            }
            Some(&y[..])
        };
        step(c, x, i_now, i_next, v, spike);
        let m = compact(spike, found);
        if m > 0 {
            let cur = match discretization {
                Discretization::Seed => &i_now[..],
                Discretization::Corrected => &i_next[..],
            };
            let found = &found[..m];
            spikes.extend_uniform(found, F::one());
            reserve_pow2(i_star, m);
            i_star.extend(found.iter().map(|&k| cur[k as usize]));
        }
        spikes.end_step();
        std::mem::swap(&mut i_now, &mut i_next);
    }
    i_now.iter().chain(v.iter()).all(|x| x.is_finite())
}

/// The current of one batch row driven by `input` (the update of [`row_forward`] without
/// the membrane), with the spikes given (`spikes`: recorded on hardware, `steps` steps):
/// fills `i_star` with the current the adjoint's jump uses at each of them — `i[t-1]`
/// (seed discretization) or `i[t]` (corrected) for a spike of step `t`; a spike of step 0
/// gets `0` (the adjoint never reads it: its jumps run for `t >= 1`, as the seed's).
/// Returns whether the current stayed finite.
///
/// The current is the same number [`row_forward`] computes (same sums in the same order),
/// so that spikes recorded from the software forward give its `i_star` bit for bit.
///
/// # Panics
/// If `input` or `spikes` has fewer than `steps` steps or a channel beyond `wt`.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub(crate) fn row_current<F: Real>(
    c: &Coefficients<F>,
    discretization: Discretization,
    wt: &[F],
    input: &EventRow<F>,
    spikes: &EventRow<F>,
    steps: usize,
    s: &mut ForwardScratch<F>,
    i_star: &mut Vec<F>,
) -> bool {
    let n = c.len();
    i_star.clear();
    if steps == 0 {
        return true;
    }
    s.fit(n);
    let ForwardScratch { i_a, i_b, y, .. } = s;
    i_a.fill(F::zero());
    let (idx, val) = (input.indices(), input.values());
    let sp = spikes.indices();
    i_star.extend(spikes.range(0).map(|_| F::zero()));
    let (mut i_now, mut i_next) = (&mut i_a[..n], &mut i_b[..n]);
    let decay = &c.decay_syn[..n];
    for t in 0..steps - 1 {
        let r = input.range(t);
        if r.is_empty() {
            // `i decay + 0`, as the forward's step without input
            current_step(decay, None, i_now, i_next);
        } else {
            y.fill(F::zero());
            for p in r {
                let j = idx[p] as usize;
                axpy(y, val[p], &wt[j * n..(j + 1) * n]);
            }
            current_step(decay, Some(&y[..n]), i_now, i_next);
        }
        let cur = match discretization {
            Discretization::Seed => &i_now[..],
            Discretization::Corrected => &i_next[..],
        };
        i_star.extend(spikes.range(t + 1).map(|p| cur[sp[p] as usize]));
        std::mem::swap(&mut i_now, &mut i_next);
    }
    i_now.iter().all(|x| x.is_finite())
}

#[cfg(test)]
mod tests {
    use super::compact;

    /// The mask gathering against the obvious loop, on flag patterns that exercise every
    /// byte position and block: all zeros, all ones, single spikes and pseudo-random
    /// patterns (a fixed LCG, so the test is deterministic), for lengths around the 64-flag
    /// block boundary.
    #[test]
    fn compact_finds_exactly_the_set_flags_in_order() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for n in [1usize, 7, 8, 9, 63, 64, 65, 120, 128, 200] {
            let padded = n.next_multiple_of(8);
            let mut patterns: Vec<Vec<u8>> = vec![vec![0; n], vec![1; n]];
            patterns.extend((0..n).map(|k| (0..n).map(|j| u8::from(j == k)).collect()));
            for _ in 0..50 {
                patterns.push(
                    (0..n)
                        .map(|_| {
                            state = state
                                .wrapping_mul(6_364_136_223_846_793_005)
                                .wrapping_add(1);
                            u8::from((state >> 33) % 10 < 3)
                        })
                        .collect(),
                );
            }
            for flags in patterns {
                let mut buf = flags.clone();
                buf.resize(padded, 0);
                let mut found = vec![u32::MAX; n];
                let m = compact(&buf, &mut found);
                let expected: Vec<u32> =
                    (0..n as u32).filter(|&k| flags[k as usize] == 1).collect();
                assert_eq!(&found[..m], &expected[..], "n = {n}");
            }
        }
    }
}

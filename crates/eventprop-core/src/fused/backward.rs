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
//! A recurrent layer (weight `R`, held transposed as `R^T`) adds two terms, those of
//! [`crate::stepped::layer::SteppedLayer`]: at the start of step `t` (before the decay,
//! `lambda` is then `lambda[t]`) each spike `m` of step `t` gains
//! `R^T[m, :] · (lambda_v - lambda_i)` in its spike gradient (its recurrent input acts at
//! step `t + 1`); and the layer's own spikes of step `t - 1` are input events for the
//! recurrent weight gradient, `gradR^T[m, :] += tau_syn lambda_i`, as the input events are
//! for `gradW^T`.
//!
//! Where the neuron does not spike the seed's `lambda_v[t-1]` is `w = lambda_v decay_mem`
//! whatever its guards do, so only spikes need work; guards are counted at spikes only.

use super::events::EventRow;
use super::forward::axpy;
use super::simd::dispatch;
use crate::lif::GuardStats;
use crate::params::Coefficients;
use crate::Real;

/// Bytes of `tau_syn lambda_i` rows kept per block of steps ([`row_backward`]): small
/// enough to stay in L2 next to a weight-gradient partial of the SHD-like size (700 × 256
/// f32 = 700 KiB), large enough that a channel fires several times per block.
const BLOCK_BYTES: usize = 128 * 1024;

/// Per-thread adjoint rows, `N` values each, and the block buffers of the weight gradient
/// (reused across calls).
#[derive(Debug, Clone, Default)]
pub(crate) struct BackwardScratch<F> {
    lambda_v: Vec<F>,
    lambda_i: Vec<F>,
    g1: Vec<F>,
    /// `tau_syn lambda_i` at the steps of the block's input events, `block × N`.
    g0: Vec<F>,
    /// Per input channel: start of its events in `sorted` (counting sort), `N_in + 1`.
    start: Vec<u32>,
    /// The block's input events by channel: `(position, step - block start)`.
    sorted: Vec<(u32, u32)>,
    /// The recurrent spike gradients of one step's spikes.
    rec_grad: Vec<F>,
    /// `dL/dthreshold` per neuron, summed over the group's rows.
    grad_threshold: Vec<F>,
    /// `dL/dreset` per neuron, summed over the group's rows.
    grad_reset: Vec<F>,
    /// The time-constant traces of one row ([`TauTraces`]).
    taus: TauTraces<F>,
    /// `dL/dtau_syn` per neuron, summed over the group's rows.
    grad_tau_syn: Vec<F>,
    /// `dL/dtau_mem` per neuron, summed over the group's rows.
    grad_tau_mem: Vec<F>,
}

/// The auxiliary adjoints of the time-constant gradients of one row (module docs of
/// [`super`], DESIGN.md "Time-constant gradients on the fused path"), `N` values each.
#[derive(Debug, Clone, Default)]
struct TauTraces<F> {
    /// `P[s] = lambda_i[s] + decay_syn P[s+1]`.
    p: Vec<F>,
    /// `U[s] = lambda_v[s] - k_mem d[s+1] + decay_syn U[s+1]`, with `d = R` where the
    /// neuron does not spike and 0 where it does (`Q - k_mem S` of the derivation).
    u: Vec<F>,
    /// `R[s] = lambda_v[s] + decay_mem R[s+1]`, restarted where the neuron spikes at `s+1`.
    r: Vec<F>,
    /// The input current of one step, `y[e] = Σ x W^T[j, :]` (plus the recurrent rows).
    y: Vec<F>,
    /// `Σ_e y[e] P[e]` of the row.
    acc_syn: Vec<F>,
    /// `Σ_e y[e] U[e]` of the row.
    acc_i: Vec<F>,
    /// `Σ_{spikes at s} (reset - leak) R[s]` of the row.
    acc_v: Vec<F>,
}

impl<F: Real> TauTraces<F> {
    fn start(&mut self, n: usize) {
        for b in [
            &mut self.p,
            &mut self.u,
            &mut self.r,
            &mut self.y,
            &mut self.acc_syn,
            &mut self.acc_i,
            &mut self.acc_v,
        ] {
            b.clear();
            b.resize(n, F::zero());
        }
    }
}

impl<F: Real> BackwardScratch<F> {
    /// Zeroes the group's parameter gradients (`n` each) before its first row.
    pub(crate) fn start_params(&mut self, n: usize) {
        for b in [
            &mut self.grad_threshold,
            &mut self.grad_reset,
            &mut self.grad_tau_syn,
            &mut self.grad_tau_mem,
        ] {
            b.clear();
            b.resize(n, F::zero());
        }
    }

    /// The group's `dL/dthreshold` and `dL/dreset` (after its rows' backward).
    pub(crate) fn param_grads(&self) -> (&[F], &[F]) {
        (&self.grad_threshold, &self.grad_reset)
    }

    /// The group's `dL/dtau_syn` and `dL/dtau_mem` (after its rows' backward with the
    /// time-constant gradients on; zeros otherwise).
    pub(crate) fn tau_grads(&self) -> (&[F], &[F]) {
        (&self.grad_tau_syn, &self.grad_tau_mem)
    }

    fn fit(&mut self, n: usize, block: usize) {
        for b in [&mut self.lambda_v, &mut self.lambda_i, &mut self.g1] {
            b.resize(n, F::zero());
        }
        self.g0.resize(block * n, F::zero());
        // Keeps what the group's earlier rows accumulated ([`Self::start_params`] zeroes).
        self.grad_threshold.resize(n, F::zero());
        self.grad_reset.resize(n, F::zero());
        self.grad_tau_syn.resize(n, F::zero());
        self.grad_tau_mem.resize(n, F::zero());
    }
}

/// Adds the weight gradient of the input events of steps `lo ..= hi` into `grad_wt`:
/// `gradW^T[j, :] += x g0[e - lo]` for each event `(j, x)` of step `e`.
///
/// The events are visited channel by channel (a counting sort), so that each gradient row
/// is loaded once per block and then stays in L1 for all of that channel's events, where
/// visiting them step by step streams a row from L2 and back for every event. Within a
/// channel they come in decreasing step (and, within a step, increasing position) order —
/// the order the step-by-step loop adds them in, blocks being visited in decreasing step
/// order too — so every gradient row receives the same additions in the same order:
/// the result is bit-identical to the step-by-step accumulation, whatever the block size.
#[allow(clippy::too_many_arguments)]
fn flush_block<F: Real>(
    input: &EventRow<F>,
    lo: usize,
    hi: usize,
    n: usize,
    g0: &[F],
    start: &mut Vec<u32>,
    sorted: &mut Vec<(u32, u32)>,
    grad_wt: &mut [F],
) {
    let (idx, val) = (input.indices(), input.values());
    let events = input.range(lo).start..input.range(hi).end;
    if events.is_empty() || n == 0 {
        return;
    }
    let n_in = grad_wt.len() / n;
    start.clear();
    start.resize(n_in + 1, 0);
    for &j in &idx[events.clone()] {
        start[j as usize + 1] += 1;
    }
    for j in 0..n_in {
        start[j + 1] += start[j];
    }
    sorted.resize(events.len(), (0, 0));
    // `start[j]` is used as the next free slot of channel j, then restored below.
    for e in (lo..=hi).rev() {
        for p in input.range(e) {
            let j = idx[p] as usize;
            sorted[start[j] as usize] = (p as u32, (e - lo) as u32);
            start[j] += 1;
        }
    }
    // Now `start[j]` is the end of channel j, i.e. the start of j + 1.
    let mut from = 0usize;
    for j in 0..n_in {
        let to = start[j] as usize;
        if to > from {
            let row = &mut grad_wt[j * n..(j + 1) * n];
            for &(p, e) in &sorted[from..to] {
                let e = e as usize;
                axpy(row, val[p as usize], &g0[e * n..(e + 1) * n]);
            }
        }
        from = to;
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

/// The recurrent part of one row's adjoint.
pub(crate) struct RowRecurrent<'a, F> {
    /// The transposed recurrent weight `R^T` `(N, N)`, row-major.
    pub rt: &'a [F],
    /// The transposed recurrent weight gradient `(N, N)` it adds into.
    pub grad_rt: &'a mut [F],
}

/// Runs the adjoint of one batch row, adding its weight gradient into `grad_wt`
/// (`(N_in, N)`, row-major), for a recurrent layer (`rec`) its recurrent weight gradient
/// into `rec.grad_rt`, and, if given, writing the gradient at each input event into
/// `grad_input` (aligned with the input's events). Returns the guard counts and whether the
/// adjoint stayed finite.
///
/// # Panics
/// If the slices do not fit the row's events and `N`.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub(crate) fn row_backward<F: Real>(
    c: &Coefficients<F>,
    wt: &[F],
    row: &RowAdjoint<'_, F>,
    steps: usize,
    s: &mut BackwardScratch<F>,
    grad_wt: &mut [F],
    rec: Option<RowRecurrent<'_, F>>,
    grad_input: Option<&mut [F]>,
    taus: bool,
) -> (GuardStats, bool) {
    let block = BLOCK_BYTES / (c.len().max(1) * std::mem::size_of::<F>());
    row_backward_in_blocks(c, wt, row, steps, block, s, grad_wt, rec, grad_input, taus)
}

/// [`row_backward`] with the weight gradient flushed every `block` steps (any `block >=
/// 1` gives the same numbers, bit for bit; see [`flush_block`]).
#[allow(clippy::too_many_arguments)]
#[track_caller]
fn row_backward_in_blocks<F: Real>(
    c: &Coefficients<F>,
    wt: &[F],
    row: &RowAdjoint<'_, F>,
    steps: usize,
    block: usize,
    s: &mut BackwardScratch<F>,
    grad_wt: &mut [F],
    mut rec: Option<RowRecurrent<'_, F>>,
    mut grad_input: Option<&mut [F]>,
    taus: bool,
) -> (GuardStats, bool) {
    let n = c.len();
    let mut stats = GuardStats::default();
    if steps == 0 {
        return (stats, true);
    }
    let block = block.clamp(1, steps);
    s.fit(n, block);
    let BackwardScratch {
        lambda_v,
        lambda_i,
        g1,
        g0,
        start,
        sorted,
        rec_grad: rg,
        grad_threshold: g_th,
        grad_reset: g_re,
        taus: tr,
        grad_tau_syn: g_ts,
        grad_tau_mem: g_tm,
    } = s;
    if taus {
        tr.start(n);
    }
    let (decay_syn, k_mem) = (&c.decay_syn[..n], &c.k_mem[..n]);
    let (lambda_v, lambda_i) = (&mut lambda_v[..n], &mut lambda_i[..n]);
    lambda_v.fill(F::zero());
    lambda_i.fill(F::zero());
    let (k_syn, decay_mem, tau_syn) = (&c.k_syn[..n], &c.decay_mem[..n], &c.tau_syn[..n]);
    let tau_mem = &c.tau_mem[..n];
    let (g_th, g_re) = (&mut g_th[..n], &mut g_re[..n]);
    let (leak, reset, threshold) = (&c.leak[..n], &c.reset[..n], &c.threshold[..n]);
    let in_idx = row.input.indices();
    let sp_idx = row.spikes.indices();
    // Events of the last step see lambda = 0.
    if let Some(gi) = grad_input.as_deref_mut() {
        gi[row.input.range(steps - 1)].fill(F::zero());
    }
    // Input events of step `e = t - 1` are handled at `t`; their weight gradient waits in
    // `g0` until the block `lo ..= hi` of such steps is complete (see `flush_block`).
    let mut hi = steps.saturating_sub(2);
    for t in (1..steps).rev() {
        let e = t - 1;
        let lo = (hi + 1).saturating_sub(block);
        // Recurrent: the spikes of step t drive step t + 1, whose adjoint is lambda now.
        let own = row.spikes.range(t);
        let rt = rec.as_ref().map(|r| r.rt).filter(|_| !own.is_empty());
        if let Some(rt) = rt {
            for k in 0..n {
                g1[k] = lambda_v[k] - lambda_i[k];
            }
            rg.clear();
            rg.extend(own.map(|p| {
                let m = sp_idx[p] as usize;
                dot(&rt[m * n..(m + 1) * n], g1)
            }));
        }
        decay(lambda_v, lambda_i, k_syn, decay_mem);
        if taus {
            // The spikes of step t: their reset value's term, and R restarts there (v after
            // the spike does not depend on v before it).
            for p in row.spikes.range(t) {
                let k = sp_idx[p] as usize;
                tr.acc_v[k] += (reset[k] - leak[k]) * tr.r[k];
                tr.r[k] = F::zero();
            }
        }
        for (q, p) in row.spikes.range(t).enumerate() {
            let k = sp_idx[p] as usize;
            let i_star = row.i_star[p];
            let dv_m = leak[k] - threshold[k] + i_star;
            let dv_p = leak[k] - reset[k] + i_star;
            // The seed's `z grad / dv_m` and `z dv_p / dv_m` with `z = 1`.
            let grad = match rt {
                Some(_) => row.grad_spikes[p] + rg[q],
                None => row.grad_spikes[p],
            };
            let mut out = grad / dv_m;
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
            // The parameter gradients at the spike (SteppedLayer's): the reset by the
            // post-spike adjoint, the threshold by the pre-spike one.
            g_re[k] += tau_mem[k] * lambda_v[k];
            lambda_v[k] = jump * lambda_v[k] + out;
            g_th[k] -= tau_mem[k] * lambda_v[k];
        }
        if taus {
            // lambda is lambda[e] now: the traces of step e.
            trace_step(
                &mut tr.p, &mut tr.u, &mut tr.r, lambda_v, lambda_i, decay_syn, decay_mem, k_mem,
            );
            let own = rec
                .as_ref()
                .map(|r| (r.rt, row.spikes.range(e)))
                .filter(|(_, o)| !o.is_empty());
            let events = row.input.range(e);
            if !events.is_empty() || own.is_some() {
                tr.y.fill(F::zero());
                let vals = row.input.values();
                for p in events {
                    let j = in_idx[p] as usize;
                    axpy(&mut tr.y, vals[p], &wt[j * n..(j + 1) * n]);
                }
                if let Some((rt, own)) = own {
                    for p in own {
                        let m = sp_idx[p] as usize;
                        axpy(&mut tr.y, F::one(), &rt[m * n..(m + 1) * n]);
                    }
                }
                trace_acc(&mut tr.acc_syn, &mut tr.acc_i, &tr.y, &tr.p, &tr.u);
            }
        }
        let r = row.input.range(e);
        let own_in = rec.is_some() && !row.spikes.range(e).is_empty();
        if !r.is_empty() || own_in {
            let g0 = &mut g0[(e - lo) * n..(e - lo + 1) * n];
            for k in 0..n {
                g0[k] = lambda_i[k] * tau_syn[k];
            }
            if let Some(gi) = grad_input.as_deref_mut() {
                for k in 0..n {
                    g1[k] = lambda_v[k] - lambda_i[k];
                }
                for p in r {
                    let j = in_idx[p] as usize;
                    gi[p] = dot(&wt[j * n..(j + 1) * n], g1);
                }
            }
        }
        if e == lo {
            flush_block(row.input, lo, hi, n, g0, start, sorted, grad_wt);
            if let Some(rec) = rec.as_mut() {
                flush_block(row.spikes, lo, hi, n, g0, start, sorted, rec.grad_rt);
            }
            hi = lo.saturating_sub(1);
        }
    }
    if taus {
        let (g_ts, g_tm) = (&mut g_ts[..n], &mut g_tm[..n]);
        for k in 0..n {
            g_ts[k] += k_syn[k] * tr.acc_syn[k];
            g_tm[k] -= k_mem[k] * (tr.acc_i[k] - tr.acc_v[k]);
        }
    }
    let finite = lambda_v
        .iter()
        .chain(lambda_i.iter())
        .all(|l| l.is_finite());
    (stats, finite)
}

/// One reverse step of the time-constant traces, with `lambda` at step `e` and `R` already
/// zeroed where the neuron spikes at `e + 1` (so `R` is `d[e+1]`): `U ← lambda_v - k_mem R
/// + decay_syn U`, then `R ← lambda_v + decay_mem R`, `P ← lambda_i + decay_syn P`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn trace_step_body<F: Real>(
    p: &mut [F],
    u: &mut [F],
    r: &mut [F],
    lambda_v: &[F],
    lambda_i: &[F],
    decay_syn: &[F],
    decay_mem: &[F],
    k_mem: &[F],
) {
    let n = p.len();
    let (u, r) = (&mut u[..n], &mut r[..n]);
    let (lambda_v, lambda_i) = (&lambda_v[..n], &lambda_i[..n]);
    let (decay_syn, decay_mem, k_mem) = (&decay_syn[..n], &decay_mem[..n], &k_mem[..n]);
    for k in 0..n {
        u[k] = (lambda_v[k] - k_mem[k] * r[k]) + decay_syn[k] * u[k];
        r[k] = lambda_v[k] + decay_mem[k] * r[k];
        p[k] = lambda_i[k] + decay_syn[k] * p[k];
    }
}

/// The time-constant sums of one step with input current `y`: `acc_syn += y P`, `acc_i +=
/// y U`.
#[inline(always)]
fn trace_acc_body<F: Real>(acc_syn: &mut [F], acc_i: &mut [F], y: &[F], p: &[F], u: &[F]) {
    let n = acc_syn.len();
    let (acc_i, y, p, u) = (&mut acc_i[..n], &y[..n], &p[..n], &u[..n]);
    for k in 0..n {
        acc_syn[k] += y[k] * p[k];
        acc_i[k] += y[k] * u[k];
    }
}

dispatch! {
    /// [`trace_acc_body`], as wide as the CPU allows.
    fn trace_acc(acc_syn: &mut [F], acc_i: &mut [F], y: &[F], p: &[F], u: &[F]) = trace_acc_body;
}

dispatch! {
    /// [`trace_step_body`], as wide as the CPU allows.
    #[allow(clippy::too_many_arguments)]
    fn trace_step(
        p: &mut [F],
        u: &mut [F],
        r: &mut [F],
        lambda_v: &[F],
        lambda_i: &[F],
        decay_syn: &[F],
        decay_mem: &[F],
        k_mem: &[F],
    ) = trace_step_body;
}

#[cfg(test)]
mod tests {
    use super::super::events::EventBatch;
    use super::super::forward::{row_forward, ForwardScratch};
    use super::*;
    use crate::lif::Discretization;
    use crate::LifParams;
    use ndarray::Array3;

    /// The blocked weight-gradient accumulation adds the same terms in the same order per
    /// gradient row whatever the block, so every block size gives the gradient (and the
    /// input gradients, and for a recurrent layer the recurrent gradient) of the one-block
    /// run bit for bit. Inputs: 3 rows of 60 steps, 9 channels firing in most steps
    /// (several events per step, repeated channels across steps), 7 neurons that spike,
    /// deterministic pseudo-random weights and gradients; without and with recurrent
    /// weights.
    #[test]
    fn every_block_size_gives_the_same_bits() {
        let (steps, batch, n_in, n) = (60, 3, 9, 7);
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let x = Array3::from_shape_fn((steps, batch, n_in), |_| {
            let r = next();
            if r < 0.3 {
                1.0
            } else if r < 0.4 {
                0.5 + r
            } else {
                0.0
            }
        });
        let input = EventBatch::from_dense(x.view()).unwrap();
        let wt: Vec<f64> = (0..n_in * n).map(|_| 2.0 * next() - 0.3).collect();
        let c = LifParams::scalar(0.0, 0.0, 1.0, 5e-6, 1e-5)
            .resolve(n, 1e-6)
            .unwrap();
        let rt: Vec<f64> = (0..n * n).map(|_| next() - 0.6).collect();
        let mut fwd = ForwardScratch::default();
        let mut total_spikes = 0;
        for (b, row) in input.rows().iter().enumerate() {
            for rt in [None, Some(&rt[..])] {
                let (mut spikes, mut i_star) = (EventRow::new(), Vec::new());
                assert!(row_forward(
                    &c,
                    Discretization::Seed,
                    &wt,
                    rt,
                    row,
                    steps,
                    &mut fwd,
                    &mut spikes,
                    &mut i_star
                ));
                total_spikes += spikes.len();
                let grad: Vec<f64> = (0..spikes.len()).map(|_| next() - 0.5).collect();
                let adj = RowAdjoint {
                    input: row,
                    spikes: &spikes,
                    i_star: &i_star,
                    grad_spikes: &grad,
                };
                let run = |block: usize| {
                    let mut s = BackwardScratch::default();
                    let mut gw = vec![0.25; n_in * n]; // accumulates into what is there
                    let mut gi = vec![0.0; row.len()];
                    let mut gr = vec![-0.5; n * n];
                    let rec = rt.map(|rt| RowRecurrent {
                        rt,
                        grad_rt: &mut gr[..],
                    });
                    let (_, ok) = row_backward_in_blocks(
                        &c,
                        &wt,
                        &adj,
                        steps,
                        block,
                        &mut s,
                        &mut gw,
                        rec,
                        Some(&mut gi),
                        true,
                    );
                    assert!(ok);
                    (gw, gi, gr)
                };
                let whole = run(steps);
                assert!(
                    whole.0.iter().any(|&g| g != 0.25),
                    "row {b}: the gradient must not be trivial"
                );
                if rt.is_some() {
                    assert!(
                        whole.2.iter().any(|&g| g != -0.5),
                        "row {b}: the recurrent gradient must not be trivial"
                    );
                }
                for block in [1, 2, 3, 7, 16, 59] {
                    let (gw, gi, gr) = run(block);
                    let same = |a: &[f64], b: &[f64]| {
                        a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
                    };
                    assert!(
                        same(&gw, &whole.0),
                        "row {b}, block {block}: weight gradient"
                    );
                    assert!(
                        same(&gi, &whole.1),
                        "row {b}, block {block}: input gradient"
                    );
                    assert!(
                        same(&gr, &whole.2),
                        "row {b}, block {block}: recurrent gradient"
                    );
                }
            }
        }
        assert!(
            total_spikes > 10,
            "the layer must spike ({total_spikes} spikes)"
        );
    }
}

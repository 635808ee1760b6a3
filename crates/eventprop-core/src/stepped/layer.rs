//! A time-stepped LIF layer with recurrent weights, per-neuron parameters and synaptic
//! delays, in the seed's update order, with its EventProp adjoint (the `Corrected`
//! discretization) and the gradients of everything it has: `W`, `r`, delays, `tau_mem`,
//! `tau_syn`, `threshold`, `leak`, `reset`, and the input spikes.
//!
//! ## Forward (per neuron `n`; `k = dt/tau`, one sample)
//!
//! ```text
//! x[t]   = Σ_{j spiking at t - D[n,j]} W[n,j]  +  Σ_{m spiking at t} r[n,m]
//! i[t+1] = i[t] (1 - k_syn) + x[t]
//! u      = v[t] + k_mem (leak - v[t] + i[t+1])
//! z[t+1] = u > threshold;   v[t+1] = reset if z[t+1] else u
//! ```
//!
//! with `i[0] = 0`, `v[0] = leak`. The recurrent input of step `t + 1` comes from the
//! layer's spikes of step `t`, as an input spike of step `t` from the layer below does.
//! Delays are held as floats in seconds and applied as `D = round(d/dt)` steps (rounding to
//! nearest, so the applied delay is within `dt/2` of the float; arrivals at or after the
//! last step are dropped, so the longest delay that acts is `(T - 2) dt`).
//!
//! ## Adjoint (the seed's recursion, `Corrected`: `i* = i[t]` at a spike of step `t`)
//!
//! ```text
//! g_spike[t] += Σ_n r[n, m] (λ_V[t] - λ_I[t])_n          (recurrent: before step t's jump)
//! λ_I[t-1] = λ_I[t] + k_syn (λ_V[t] - λ_I[t]);   w = λ_V[t] (1 - k_mem)
//! λ_V[t-1] = z[t] ? (dv_p/dv_m) w + g_spike[t]/dv_m : w
//! ```
//!
//! with `dv_∓ = leak - {threshold, reset} + i[t]`; `λ` here is the seed's, the negative of
//! the continuous adjoint of the exact engine (`eventprop-exact`) (docs/spec.md §3: `g_spike = -dL/dt` at spike steps).
//! Gradients: `dL/dW[n,j] = Σ tau_syn λ_I[t + D]` over `j`'s spikes at `t` (and `dL/dr`
//! alike over the layer's spikes), the previous layer's `g_spike[t][j] = Σ_n W[n,j] (λ_V -
//! λ_I)[t + D]`, `dL/dd[n,j] = -Σ W[n,j] (λ_V - λ_I)[t + D]`; the neuron parameters by the
//! Euler sums of the continuous formulas (DESIGN.md):
//! `dL/dtau_mem = -(dt/tau_mem) Σ_t λ_V[t] (i[t+1] - (v[t] - leak))`,
//! `dL/dtau_syn = (dt/tau_syn) Σ_t λ_I[t] i[t+1]`, and at each spike of step `t + 1`
//! `dL/dthreshold -= tau_mem λ_V[t]`, `dL/dreset += tau_mem w`, with
//! `dL/dleak = -(dL/dthreshold + dL/dreset)`. They converge to the exact gradients at first
//! order in `dt` (`eventprop-train`'s `tests/it/stepped_layer.rs`).
//!
//! Memory: the current and membrane of every step are kept (`2 T N` values), the spikes as
//! lists.

use crate::model::NeuronParams;
use ndarray::{Array2, ArrayView2};

use crate::error::{Error, Result};

/// Delays in seconds as whole steps `round(d/dt)`, shape `shape` (all 0 without delays):
/// computed once per pass, read at every input event.
pub fn delay_steps(
    delays: Option<ArrayView2<'_, f64>>,
    dt: f64,
    shape: (usize, usize),
) -> Array2<usize> {
    match delays {
        Some(d) => d.mapv(|v| (v / dt).round() as usize),
        None => Array2::zeros(shape),
    }
}

/// One layer's connections and neurons.
#[derive(Debug, Clone, Copy)]
pub struct SteppedLayer<'a> {
    /// Feed-forward weights `(N, N_in)`.
    pub w: ArrayView2<'a, f64>,
    /// Recurrent weights `(N, N)`.
    pub r: Option<ArrayView2<'a, f64>>,
    /// Delays in seconds `(N, N_in)`, `>= 0`.
    pub delays: Option<ArrayView2<'a, f64>>,
    /// Per-neuron parameters (`N` each).
    pub params: &'a NeuronParams,
    /// Step in seconds.
    pub dt: f64,
}

/// A forward run of one layer on one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerRun {
    /// The neurons spiking at each step.
    pub spikes: Vec<Vec<u32>>,
    /// `i[t]`, row-major `(T, N)`.
    current: Vec<f64>,
    /// `v[t]`, row-major `(T, N)`.
    membrane: Vec<f64>,
}

/// Gradients of one layer on one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerGrads {
    /// `dL/dW`.
    pub w: Array2<f64>,
    /// `dL/dr` (when the layer is recurrent).
    pub r: Option<Array2<f64>>,
    /// `dL/dd` (when the layer has delays).
    pub delays: Option<Array2<f64>>,
    /// Gradients of the neuron parameters.
    pub params: NeuronParams,
    /// The spike gradient of the layer below, `(T, N_in)` (docs/spec.md §3 convention), formed
    /// at that layer's spikes only (zero elsewhere: a neuron's adjoint reads its spike
    /// gradient only at its spikes).
    pub input: Array2<f64>,
}

impl SteppedLayer<'_> {
    fn check(&self) -> Result<(usize, usize)> {
        let (n, n_in) = self.w.dim();
        if !(self.dt.is_finite() && self.dt > 0.0) {
            return Err(Error::invalid("dt", "finite and > 0", self.dt));
        }
        if let Some(r) = self.r {
            if r.dim() != (n, n) {
                return Err(Error::invalid(
                    "r",
                    format!("shape ({n}, {n})"),
                    format!("{:?}", r.dim()),
                ));
            }
        }
        if let Some(d) = self.delays {
            if d.dim() != (n, n_in) {
                return Err(Error::invalid(
                    "delays",
                    format!("shape ({n}, {n_in})"),
                    format!("{:?}", d.dim()),
                ));
            }
            if let Some(v) = d.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
                return Err(Error::invalid("delays", "finite and >= 0", v));
            }
        }
        if let Some(e) = self.params.violation(0, n) {
            return Err(Error::invalid("params", "valid neuron parameters", e));
        }
        Ok((n, n_in))
    }

    /// The input currents `x[t]` from the layer below, `(T, N)` row-major.
    fn feed_forward(&self, input: &[Vec<u32>], n: usize) -> Vec<f64> {
        let steps = input.len();
        let delay = delay_steps(self.delays, self.dt, self.w.dim());
        let mut x = vec![0.0; steps * n];
        for (t, spikes) in input.iter().enumerate() {
            for &j in spikes {
                let j = j as usize;
                for m in 0..n {
                    let ta = t + delay[[m, j]];
                    if ta < steps {
                        x[ta * n + m] += self.w[[m, j]];
                    }
                }
            }
        }
        x
    }

    /// Runs the layer on `input` (the spiking neurons of the layer below at each of `T`
    /// steps).
    ///
    /// # Errors
    /// [`Error::Invalid`] for shapes, delays, parameters or `dt`, or an input index
    /// `>= N_in`.
    pub fn forward(&self, input: &[Vec<u32>]) -> Result<LayerRun> {
        let (n, n_in) = self.check()?;
        if let Some(j) = input.iter().flatten().find(|&&j| j as usize >= n_in) {
            return Err(Error::invalid("input", format!("indices < {n_in}"), j));
        }
        let steps = input.len();
        let p = self.params;
        let mut x = self.feed_forward(input, n);
        let mut run = LayerRun {
            spikes: vec![Vec::new(); steps],
            current: vec![0.0; steps * n],
            membrane: vec![0.0; steps * n],
        };
        if steps == 0 {
            return Ok(run);
        }
        run.membrane[..n].copy_from_slice(&p.leak);
        for t in 0..steps.saturating_sub(1) {
            if let Some(r) = self.r {
                for &m in &run.spikes[t] {
                    for q in 0..n {
                        x[t * n + q] += r[[q, m as usize]];
                    }
                }
            }
            let mut fired = Vec::new();
            for q in 0..n {
                let (k_syn, k_mem) = (self.dt / p.tau_syn[q], self.dt / p.tau_mem[q]);
                let i_next = run.current[t * n + q] * (1.0 - k_syn) + x[t * n + q];
                let v = run.membrane[t * n + q];
                let u = v + k_mem * (p.leak[q] - v + i_next);
                let spike = u > p.threshold[q];
                run.current[(t + 1) * n + q] = i_next;
                run.membrane[(t + 1) * n + q] = if spike { p.reset[q] } else { u };
                if spike {
                    fired.push(q as u32);
                }
            }
            run.spikes[t + 1] = fired;
        }
        Ok(run)
    }

    /// The adjoint for `grad_spikes` `(T, N)` (docs/spec.md §3: `-dL/dt_k` at spike steps) of a
    /// run of this layer on `input`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for mismatched shapes (as [`SteppedLayer::forward`]).
    pub fn backward(
        &self,
        input: &[Vec<u32>],
        run: &LayerRun,
        grad_spikes: ArrayView2<'_, f64>,
    ) -> Result<LayerGrads> {
        let (n, n_in) = self.check()?;
        let steps = input.len();
        if run.spikes.len() != steps || grad_spikes.dim() != (steps, n) {
            return Err(Error::invalid(
                "grad_spikes",
                format!("shape ({steps}, {n}) of a run on this input"),
                format!("{:?}", grad_spikes.dim()),
            ));
        }
        let p = self.params;
        let dt = self.dt;
        let mut g = LayerGrads {
            w: Array2::zeros((n, n_in)),
            r: self.r.map(|_| Array2::zeros((n, n))),
            delays: self.delays.map(|_| Array2::zeros((n, n_in))),
            params: NeuronParams::uniform(&Default::default(), n),
            input: Array2::zeros((steps, n_in)),
        };
        if steps == 0 {
            return Ok(g);
        }
        // g0[t] = tau_syn λ_I[t], g1[t] = λ_V[t] - λ_I[t] (the seed's stacked gradient),
        // kept for every step: the synapse terms read them at arrival steps.
        let mut g0 = vec![0.0; steps * n];
        let mut g1 = vec![0.0; steps * n];
        let mut lv = vec![0.0; n];
        let mut li = vec![0.0; n];
        let mut gs: Vec<f64> = vec![0.0; n];
        let (mut g_th, mut g_re) = (vec![0.0; n], vec![0.0; n]);
        let (mut g_tm, mut g_ts) = (vec![0.0; n], vec![0.0; n]);
        let mut is_spike = vec![false; n];
        for t in (1..steps).rev() {
            // The spike gradient of step t: external plus recurrent (through r at the
            // next step's input, whose adjoint g1[t] is known).
            gs.copy_from_slice(grad_spikes.row(t).as_slice().expect("standard layout"));
            is_spike.fill(false);
            for &m in &run.spikes[t] {
                is_spike[m as usize] = true;
                if let Some(r) = self.r {
                    gs[m as usize] += (0..n)
                        .map(|q| r[[q, m as usize]] * g1[t * n + q])
                        .sum::<f64>();
                }
            }
            for q in 0..n {
                let (k_syn, k_mem) = (dt / p.tau_syn[q], dt / p.tau_mem[q]);
                let new_li = li[q] + k_syn * (lv[q] - li[q]);
                let w = lv[q] * (1.0 - k_mem);
                let new_lv = if is_spike[q] {
                    let i_star = run.current[t * n + q];
                    let dv_m = p.leak[q] - p.threshold[q] + i_star;
                    let dv_p = p.leak[q] - p.reset[q] + i_star;
                    let lv_minus = (dv_p / dv_m) * w + gs[q] / dv_m;
                    g_re[q] += p.tau_mem[q] * w;
                    g_th[q] -= p.tau_mem[q] * lv_minus;
                    lv_minus
                } else {
                    w
                };
                // The interval (t-1, t]: forward state v[t-1], i[t]; adjoint λ[t-1].
                let v_prev = run.membrane[(t - 1) * n + q];
                let i_now = run.current[t * n + q];
                g_tm[q] -= k_mem * new_lv * (i_now - (v_prev - p.leak[q]));
                g_ts[q] += k_syn * new_li * i_now;
                li[q] = new_li;
                lv[q] = new_lv;
                g0[(t - 1) * n + q] = new_li * p.tau_syn[q];
                g1[(t - 1) * n + q] = new_lv - new_li;
            }
        }
        for q in 0..n {
            g.params.tau_mem[q] = g_tm[q];
            g.params.tau_syn[q] = g_ts[q];
            g.params.threshold[q] = g_th[q];
            g.params.reset[q] = g_re[q];
            g.params.leak[q] = -(g_th[q] + g_re[q]);
        }
        let delay = delay_steps(self.delays, self.dt, (n, n_in));
        for (t, spikes) in input.iter().enumerate() {
            for &j in spikes {
                let j = j as usize;
                for q in 0..n {
                    let ta = t + delay[[q, j]];
                    if ta >= steps {
                        continue;
                    }
                    g.w[[q, j]] += g0[ta * n + q];
                    let through = self.w[[q, j]] * g1[ta * n + q];
                    g.input[[t, j]] += through;
                    if let Some(d) = g.delays.as_mut() {
                        d[[q, j]] -= through;
                    }
                }
            }
        }
        if let Some(gr) = g.r.as_mut() {
            for (t, spikes) in run.spikes.iter().enumerate() {
                for &m in spikes {
                    for q in 0..n {
                        gr[[q, m as usize]] += g0[t * n + q];
                    }
                }
            }
        }
        Ok(g)
    }
}

//! Exact EventProp adjoint, event by event in reverse, mirroring [`forward`](crate::forward).
//!
//! Per neuron, with `a = 1/tau_mem`, `b = 1/tau_syn` and reverse time `τ`, between events
//!
//! ```text
//! tau_mem dλ_V/dτ = -λ_V,      tau_syn dλ_I/dτ = -λ_I + λ_V
//! λ_V(τ) = λ_V0 e^{-a τ},      λ_I(τ) = λ_I0 e^{-b τ} + b λ_V0 phi(a, b, τ)
//! ```
//!
//! At a spike `t_k` of neuron `n` (processed top layer first), with
//! `D- = leak - threshold + I(t_k)`, `D+ = leak - reset + I(t_k)` and the total derivative
//! of the loss w.r.t. that spike time
//!
//! ```text
//! dL/dt_k = ∂l/∂t_k + Σ_m W[m, n] (λ_V,m - λ_I,m)(t_k)       (m: neurons of the next layer)
//! λ_V,n ← (D+/D-) λ_V,n + (dL/dt_k) / D-,                   λ_I does not jump
//! ```
//!
//! and at every presynaptic spike `t_j` of neuron `j` into `n`:
//! `dL/dW[n, j] += -tau_syn λ_I,n(t_j)`. The same sum as in `dL/dt_k` gives the gradient
//! w.r.t. the input spike times (layer 0). The adjoint is continuous at input spikes.
//!
//! Derivation in short: `μ = ∂L/∂(u, I)` obeys `dμ/dt = -Aᵀ μ` between events; a shift
//! `δt_k = -δu⁻ / u̇⁻` of a spike changes the state after the reset by
//! `δu⁺ = -u̇⁺ δt_k` and shifts the next layer's current jump, which changes its state by
//! `-δt_k W (a, -b)`; collecting terms gives the jump above with
//! `λ_V = -tau_mem⁻¹ μ_u`, `λ_I = -tau_syn⁻¹ μ_I`, `u̇± = D±/tau_mem`.
//!
//! ## Recurrent layers and delays
//! A spike `t_k` of neuron `m` of a recurrent layer also jumps `I_n += r[n, m]` of its own
//! layer, so `dL/dt_k` gains `Σ_n r[n, m] (λ_V,n - λ_I,n)(t_k⁺)` and
//! `dL/dr[n, m] += -tau_syn,n λ_I,n(t_k)`: the layer's events are processed in reverse
//! global order, each spike's recurrent arrivals before its own jump. With a delay, the
//! arrival of `t_j` at `n` is at `t_j + d[n, j]`; the arrival terms are evaluated there and
//! `dL/dd[n, j] = Σ W[n, j] (λ_V,n - λ_I,n)(t_j + d[n, j])` (the arrival-time derivative).
//!
//! ## Neuron parameters
//! With the forward state `(u, I)` between events (recomputed neuron by neuron from the
//! trace), `a = 1/tau_mem`, `b = 1/tau_syn`:
//!
//! ```text
//! dL/dtau_mem   =  a ∫ λ_V (I - u) dt          dL/dtau_syn = -b ∫ λ_I I dt
//! dL/dthreshold =  Σ_k tau_mem λ_V(t_k⁻)        dL/dreset   = -Σ_k tau_mem λ_V(t_k⁺)
//! dL/dleak      = -(dL/dthreshold + dL/dreset)
//! ```
//!
//! (`λ_V(t_k⁻)` after the jump in reverse time, `λ_V(t_k⁺)` before it). The integrals over
//! each inter-event interval have closed forms in `phi` and [`chi`] (DESIGN.md). `leak`
//! enters only through `threshold - leak` and `reset - leak` since `V(0) = leak`.
//!
//! # Degenerate crossings
//! `D-` is `tau_mem` times the membrane slope at the crossing (`>= 0` for a crossing from
//! below). When `D- < grazing_floor · (threshold - leak)` (a grazing crossing, whose exact
//! gradient diverges) it is raised to that floor, which bounds the jump, and the spike is
//! counted in [`AdjointStats::grazing_clamped`].

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::dynamics::{chi, Kinetics, Propagator};
use crate::error::{check_finite, Error, Result};
use crate::forward::{arrivals, interval_props, Arrival, LayerTrace, Trace};
use crate::network::{Network, Spike};
use crate::params::{NeuronParams, SolverConfig};

/// Counts of the numerical guards the adjoint applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AdjointStats {
    /// Spikes whose `D-` was below the grazing floor and was raised to it.
    pub grazing_clamped: u64,
}

impl std::ops::AddAssign for AdjointStats {
    fn add_assign(&mut self, o: Self) {
        self.grazing_clamped += o.grazing_clamped;
    }
}

/// Gradients of one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Gradients {
    /// `dL/dW_k`, same shapes as the network's weights.
    pub weights: Vec<Array2<f64>>,
    /// `dL/dr_k` for the layers with recurrent weights (`None` elsewhere).
    pub recurrent: Vec<Option<Array2<f64>>>,
    /// `dL/dd_k` for the connections with delays (`None` elsewhere).
    pub delays: Vec<Option<Array2<f64>>>,
    /// Gradients of the per-neuron parameters of each layer, when
    /// [`SolverConfig::parameter_gradients`] was set.
    pub params: Option<Vec<NeuronParams>>,
    /// `dL/dt` of each input spike, in the order the input spikes were given.
    pub input_times: Vec<f64>,
    /// Total `dL/dt_k` of every spike of layer `k = 1 … L` (index `k - 1`), in the order of
    /// [`Trace::spikes`].
    pub spike_times: Vec<Vec<f64>>,
    /// Guards applied.
    pub stats: AdjointStats,
}

impl Gradients {
    /// Adds the parameter gradients of `o` (same network) into `self`: weights, recurrent
    /// weights, delays and neuron parameters (spike-time gradients are per sample and are
    /// left alone); guard counts are summed.
    ///
    /// # Panics
    /// If `o` comes from a network of other shapes.
    pub fn accumulate(&mut self, o: &Gradients) {
        for (a, b) in self.weights.iter_mut().zip(&o.weights) {
            *a += b;
        }
        for (a, b) in self.recurrent.iter_mut().zip(&o.recurrent) {
            if let (Some(a), Some(b)) = (a.as_mut(), b.as_ref()) {
                *a += b;
            }
        }
        for (a, b) in self.delays.iter_mut().zip(&o.delays) {
            if let (Some(a), Some(b)) = (a.as_mut(), b.as_ref()) {
                *a += b;
            }
        }
        if let (Some(a), Some(b)) = (self.params.as_mut(), o.params.as_ref()) {
            for (pa, pb) in a.iter_mut().zip(b) {
                for ((_, x), (_, y)) in pa.fields_mut().into_iter().zip(pb.fields()) {
                    for (x, y) in x.iter_mut().zip(y) {
                        *x += y;
                    }
                }
            }
        }
        self.stats += o.stats;
    }
}

impl Trace {
    /// Runs the adjoint for the loss derivatives `dl_dt_output[k] = ∂l/∂t_k` of the output
    /// spikes (order of [`Trace::output`]).
    ///
    /// `net` must be the network that produced this trace.
    ///
    /// # Errors
    /// [`Error::Shape`] when `dl_dt_output` does not have one entry per output spike or
    /// `net` has a different number of layers; [`Error::NonFinite`] for NaN/inf.
    pub fn backward(
        &self,
        net: &Network,
        dl_dt_output: &[f64],
        cfg: &SolverConfig,
    ) -> Result<Gradients> {
        let mut direct: Vec<Vec<f64>> = self.layers[1..]
            .iter()
            .map(|l| vec![0.0; l.spikes.len()])
            .collect();
        if let Some(last) = direct.last_mut() {
            if dl_dt_output.len() != last.len() {
                return Err(Error::Shape {
                    arg: "dl_dt_output".into(),
                    expected: format!("({},) (one per output spike)", last.len()),
                    actual: format!("({},)", dl_dt_output.len()),
                });
            }
            last.copy_from_slice(dl_dt_output);
        }
        self.backward_direct(net, &direct, cfg)
    }

    /// Runs the adjoint for a loss that depends directly on the spike times of any layer:
    /// `direct[k - 1][i] = ∂l/∂t_i` for spike `i` of layer `k = 1 … L` (order of
    /// [`Trace::spikes`]).
    ///
    /// # Errors
    /// [`Error::Shape`] when `direct` does not have one entry per spike of every layer or
    /// `net` has a different number of layers; [`Error::NonFinite`] for NaN/inf.
    pub fn backward_direct(
        &self,
        net: &Network,
        direct: &[Vec<f64>],
        cfg: &SolverConfig,
    ) -> Result<Gradients> {
        cfg.validate()?;
        if net.n_layers() + 1 != self.layers.len() {
            return Err(Error::Shape {
                arg: "net".into(),
                expected: format!("{} layers (as in the trace)", self.layers.len() - 1),
                actual: net.n_layers().to_string(),
            });
        }
        let expected: Vec<usize> = self.layers[1..].iter().map(|l| l.spikes.len()).collect();
        let actual: Vec<usize> = direct.iter().map(Vec::len).collect();
        if expected != actual {
            return Err(Error::Shape {
                arg: "direct".into(),
                expected: format!("spikes per layer {expected:?}"),
                actual: format!("{actual:?}"),
            });
        }
        for d in direct {
            check_finite("direct", d)?;
        }
        let n_layers = net.n_layers();
        let mut weights = vec![Array2::zeros((0, 0)); n_layers];
        let mut recurrent = vec![None; n_layers];
        let mut delays = vec![None; n_layers];
        let mut params = Vec::with_capacity(n_layers);
        let mut spike_times = vec![Vec::new(); n_layers];
        let mut stats = AdjointStats::default();
        let mut dl_dt = direct[n_layers - 1].clone();
        for l in (1..=n_layers).rev() {
            let mut dl_dt_prev = if l >= 2 {
                direct[l - 2].clone()
            } else {
                vec![0.0; self.layers[0].spikes.len()]
            };
            let ctx = LayerAdjoint {
                net,
                k: l - 1,
                inputs: &self.layers[l - 1].spikes,
                own: &self.layers[l],
                t_max: self.t_max,
                grazing_floor: cfg.grazing_floor,
                with_params: cfg.parameter_gradients,
            };
            let g = ctx.run(&mut dl_dt, &mut dl_dt_prev, &mut stats);
            weights[l - 1] = g.w;
            recurrent[l - 1] = g.r;
            delays[l - 1] = g.d;
            params.push(g.params);
            spike_times[l - 1] = std::mem::replace(&mut dl_dt, dl_dt_prev);
        }
        params.reverse();
        let mut input_times = vec![0.0; dl_dt.len()];
        for (i, &g) in dl_dt.iter().enumerate() {
            input_times[self.input_order[i]] = g;
        }
        Ok(Gradients {
            weights,
            recurrent,
            delays,
            params: cfg.parameter_gradients.then_some(params),
            input_times,
            spike_times,
            stats,
        })
    }
}

/// What happens to a neuron at one of its events.
#[derive(Debug, Clone, Copy, PartialEq)]
enum EntryKind {
    /// Arrival of presynaptic spike `index` (of the layer below).
    Arrival { index: u32, weight: f64 },
    /// The neuron's own spike `k` (index into the layer's spikes).
    Own { k: u32 },
    /// Recurrent arrival of spike `k` of the same layer, fired by `source`.
    Recurrent { k: u32, source: u32 },
}

/// One event of one neuron, with the forward state `(u, I)` right after it (filled by
/// [`replay`] when parameter gradients are wanted).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    time: f64,
    neuron: u32,
    kind: EntryKind,
    u: f64,
    i: f64,
}

/// The reverse-time adjoint of one neuron and its parameter-gradient sums.
#[derive(Debug, Clone, Copy)]
struct Walker {
    kin: Kinetics,
    tau_syn: f64,
    tau_mem: f64,
    lv: f64,
    li: f64,
    t: f64,
    g_tau_mem: f64,
    g_tau_syn: f64,
    g_threshold: f64,
    g_reset: f64,
}

impl Walker {
    fn new(net: &Network, k: usize, n: usize, t_max: f64) -> Self {
        let p = net.neuron_params(k).get(n);
        Self {
            kin: crate::params::kinetics(&p),
            tau_syn: p.tau_syn,
            tau_mem: p.tau_mem,
            lv: 0.0,
            li: 0.0,
            t: t_max,
            g_tau_mem: 0.0,
            g_tau_syn: 0.0,
            g_threshold: 0.0,
            g_reset: 0.0,
        }
    }

    /// Carries the adjoint back to `te`. `state` is the forward `(u, I)` right after the
    /// event at `te` (the start of the interval), for the parameter integrals. `hint` is a
    /// `(length, propagator)` for this neuron's rates, used when its length is the
    /// interval's (the same value `Kinetics::propagator` would compute).
    #[inline]
    fn back_to(&mut self, te: f64, state: Option<(f64, f64)>, hint: Option<&(f64, Propagator)>) {
        let s = self.t - te;
        if s <= 0.0 {
            return;
        }
        let (a, b) = (self.kin.a, self.kin.b);
        let (lv1, li1) = (self.lv, self.li);
        if lv1 == 0.0 && li1 == 0.0 {
            // A vanishing adjoint stays zero (and adds nothing to the parameter integrals):
            // after a neuron's last spike that matters, and on silent neurons.
            self.t = te;
            return;
        }
        let Propagator {
            e_a: ea,
            e_b: eb,
            phi: ph,
        } = match hint {
            Some(&(d, p)) if d == s => p,
            _ => self.kin.propagator(s),
        };
        if let Some((u0, i0)) = state {
            if lv1 != 0.0 || li1 != 0.0 {
                // ∫ λ_V (I - u) and ∫ λ_I I over the interval (DESIGN.md, parameter gradients).
                let jv = lv1 * i0 * ph - lv1 * u0 * s * ea - a * lv1 * i0 * chi(a, b, s);
                let ji = li1 * i0 * s * eb + b * lv1 * i0 * chi(b, a, s);
                self.g_tau_mem += a * jv;
                self.g_tau_syn -= b * ji;
            }
        }
        self.lv = lv1 * ea;
        self.li = li1 * eb + b * lv1 * ph;
        self.t = te;
    }

    /// The jump at an own spike with current `current` and total `dL/dt_k = g`.
    #[inline]
    fn spike(&mut self, current: f64, g: f64, floor: f64, stats: &mut AdjointStats) {
        let mut d_minus = current - self.kin.theta;
        let floor = floor * self.kin.theta;
        if d_minus < floor {
            d_minus = floor;
            stats.grazing_clamped += 1;
        }
        let d_plus = current - self.kin.reset;
        self.g_reset -= self.tau_mem * self.lv;
        self.lv = (d_plus / d_minus) * self.lv + g / d_minus;
        self.g_threshold += self.tau_mem * self.lv;
    }
}

/// Recomputes the forward state right after each entry (entries in forward order; each
/// neuron starts at `u = I = 0` at `t = 0`).
fn replay(net: &Network, k: usize, entries: &mut [Entry], state: &mut [(f64, f64, f64)]) {
    let r = net.recurrent(k);
    let np = net.neuron_params(k);
    for e in entries.iter_mut() {
        let n = e.neuron as usize;
        let kin = net.kinetics(k, n);
        let (t, u, i) = &mut state[n];
        let s = e.time - *t;
        if s > 0.0 {
            (*u, *i) = kin.state_at(*u, *i, s);
            *t = e.time;
        }
        match e.kind {
            EntryKind::Arrival { weight, .. } => *i += weight,
            EntryKind::Own { .. } => *u = np.reset[n] - np.leak[n],
            EntryKind::Recurrent { source, .. } => {
                *i += r.expect("recurrent entries need r")[[n, source as usize]];
            }
        }
        e.u = *u;
        e.i = *i;
    }
}

/// Gradients of one layer.
struct LayerGrads {
    w: Array2<f64>,
    r: Option<Array2<f64>>,
    d: Option<Array2<f64>>,
    params: NeuronParams,
}

/// The adjoint of one layer (`k + 1`, fed by `weights[k]`).
struct LayerAdjoint<'a> {
    net: &'a Network,
    k: usize,
    inputs: &'a [Spike],
    own: &'a LayerTrace,
    t_max: f64,
    grazing_floor: f64,
    with_params: bool,
}

impl LayerAdjoint<'_> {
    /// Runs the layer's adjoint: adds the recurrent part of each own spike's `dL/dt_k` into
    /// `dl_dt_own` (which holds the direct and downstream parts) and `dL/dt_j` of the
    /// presynaptic spikes into `dl_dt_prev`.
    fn run(
        &self,
        dl_dt_own: &mut [f64],
        dl_dt_prev: &mut [f64],
        stats: &mut AdjointStats,
    ) -> LayerGrads {
        let net = self.net;
        let (n_out, n_in) = net.weight(self.k).dim();
        let mut g = LayerGrads {
            w: Array2::zeros((n_out, n_in)),
            r: net.recurrent(self.k).map(|_| Array2::zeros((n_out, n_out))),
            d: net.delays(self.k).map(|_| Array2::zeros((n_out, n_in))),
            params: NeuronParams::uniform(&Default::default(), n_out),
        };
        let mut walkers: Vec<Walker> = (0..n_out)
            .map(|n| Walker::new(net, self.k, n, self.t_max))
            .collect();
        let mut state = vec![(0.0, 0.0, 0.0); n_out];
        let mut arr = Vec::new();
        let mut entries = Vec::new();
        if net.recurrent(self.k).is_some() {
            for n in 0..n_out {
                arrivals(net, self.k, n, self.inputs, self.t_max, &mut arr);
                self.push_arrivals(n, &arr, &mut entries);
            }
            self.push_recurrent(n_out, &mut entries);
            sort_entries(&mut entries);
            if self.with_params {
                replay(net, self.k, &mut entries, &mut state);
            }
            self.reverse(
                &entries,
                &mut walkers,
                &mut g,
                dl_dt_own,
                dl_dt_prev,
                None,
                stats,
            );
        } else {
            // Without delays every neuron sees the input spikes as arrivals, so the walk
            // from one arrival back to the one before covers the forward's shared interval:
            // its propagator is computed once per layer when the neurons share their rates.
            let rates = |w: &Walker| (w.kin.a, w.kin.b);
            let shared = net.delays(self.k).is_none()
                && walkers.iter().all(|w| rates(w) == rates(&walkers[0]));
            let mut hints = Vec::new();
            if let (true, Some(first)) = (shared, walkers.first()) {
                let kin = &first.kin;
                let times = self.inputs.iter().map(|s| s.time);
                let times = times.take_while(|&t| t <= self.t_max);
                interval_props(kin, times, self.t_max, &mut hints);
            }
            // Independent neurons: one neuron's events at a time (memory O(its events)).
            let mut by_neuron: Vec<Vec<u32>> = vec![Vec::new(); n_out];
            for (k, s) in self.own.spikes.iter().enumerate() {
                by_neuron[s.neuron as usize].push(k as u32);
            }
            for (n, mine) in by_neuron.iter().enumerate() {
                arrivals(net, self.k, n, self.inputs, self.t_max, &mut arr);
                entries.clear();
                merge_own(n, &arr, mine, &self.own.spikes, &mut entries);
                if self.with_params {
                    replay(net, self.k, &mut entries, &mut state);
                }
                let hints = shared.then_some(hints.as_slice());
                self.reverse(
                    &entries,
                    &mut walkers,
                    &mut g,
                    dl_dt_own,
                    dl_dt_prev,
                    hints,
                    stats,
                );
            }
        }
        for (n, w) in walkers.iter().enumerate() {
            let p = &mut g.params;
            p.tau_mem[n] = w.g_tau_mem;
            p.tau_syn[n] = w.g_tau_syn;
            p.threshold[n] = w.g_threshold;
            p.reset[n] = w.g_reset;
            p.leak[n] = -(w.g_threshold + w.g_reset);
        }
        g
    }

    fn push_arrivals(&self, n: usize, arr: &[Arrival], entries: &mut Vec<Entry>) {
        entries.extend(arr.iter().map(|a| Entry {
            time: a.time,
            neuron: n as u32,
            kind: EntryKind::Arrival {
                index: a.index,
                weight: a.weight,
            },
            u: 0.0,
            i: 0.0,
        }));
    }

    /// Own and recurrent entries of every spike of a recurrent layer.
    fn push_recurrent(&self, n_out: usize, entries: &mut Vec<Entry>) {
        for (k, s) in self.own.spikes.iter().enumerate() {
            let blank = |neuron: u32, kind| Entry {
                time: s.time,
                neuron,
                kind,
                u: 0.0,
                i: 0.0,
            };
            entries.push(blank(s.neuron, EntryKind::Own { k: k as u32 }));
            for n in 0..n_out as u32 {
                entries.push(blank(
                    n,
                    EntryKind::Recurrent {
                        k: k as u32,
                        source: s.neuron,
                    },
                ));
            }
        }
    }

    /// Processes `entries` (forward order) in reverse. `hints[j]`: the propagator of the
    /// interval before input spike `j` (`j = len`: before `t_max`), see
    /// [`interval_props`], for layers whose arrivals are the input spikes.
    #[allow(clippy::too_many_arguments)]
    fn reverse(
        &self,
        entries: &[Entry],
        walkers: &mut [Walker],
        g: &mut LayerGrads,
        dl_dt_own: &mut [f64],
        dl_dt_prev: &mut [f64],
        hints: Option<&[(f64, Propagator)]>,
        stats: &mut AdjointStats,
    ) {
        let r = self.net.recurrent(self.k);
        for e in entries.iter().rev() {
            let n = e.neuron as usize;
            let wk = &mut walkers[n];
            // walking back from the arrival after this one: the shared interval before it
            let hint = match (e.kind, hints) {
                (EntryKind::Arrival { index, .. }, Some(h)) => h.get(index as usize + 1),
                _ => None,
            };
            wk.back_to(e.time, self.with_params.then_some((e.u, e.i)), hint);
            match e.kind {
                EntryKind::Arrival { index, weight } => {
                    let j = self.inputs[index as usize].neuron as usize;
                    g.w[[n, j]] -= wk.tau_syn * wk.li;
                    let dt = weight * (wk.lv - wk.li);
                    dl_dt_prev[index as usize] += dt;
                    if let Some(d) = g.d.as_mut() {
                        d[[n, j]] += dt;
                    }
                }
                EntryKind::Recurrent { k, source } => {
                    let m = source as usize;
                    let gr = g.r.as_mut().expect("recurrent layer");
                    gr[[n, m]] -= wk.tau_syn * wk.li;
                    let rw = r.expect("recurrent layer")[[n, m]];
                    dl_dt_own[k as usize] += rw * (wk.lv - wk.li);
                }
                EntryKind::Own { k } => {
                    let k = k as usize;
                    wk.spike(
                        self.own.currents[k],
                        dl_dt_own[k],
                        self.grazing_floor,
                        stats,
                    );
                }
            }
        }
    }
}

/// Merges the sorted arrivals and the own spikes `mine` (indices into `spikes`, in time
/// order) of neuron `n` in forward order: at equal times the own spike first (the forward
/// takes a crossing before an arrival's jump).
fn merge_own(n: usize, arr: &[Arrival], mine: &[u32], spikes: &[Spike], out: &mut Vec<Entry>) {
    let (mut p, mut q) = (0, 0);
    let entry = |time, kind| Entry {
        time,
        neuron: n as u32,
        kind,
        u: 0.0,
        i: 0.0,
    };
    while p < arr.len() || q < mine.len() {
        let take_own = match (p < arr.len(), q < mine.len()) {
            (true, true) => spikes[mine[q] as usize].time <= arr[p].time,
            (_, own) => own,
        };
        if take_own {
            let k = mine[q];
            out.push(entry(spikes[k as usize].time, EntryKind::Own { k }));
            q += 1;
        } else {
            let a = arr[p];
            out.push(entry(
                a.time,
                EntryKind::Arrival {
                    index: a.index,
                    weight: a.weight,
                },
            ));
            p += 1;
        }
    }
}

/// Forward order of a recurrent layer's entries: by time; at equal times the spikes in
/// `(time, neuron)` order, each one's own entry then its recurrent arrivals, then the
/// arrivals from the layer below.
fn sort_entries(entries: &mut [Entry]) {
    let key = |e: &Entry| -> (u8, u32, u32) {
        match e.kind {
            EntryKind::Own { k } => (0, k, 0),
            EntryKind::Recurrent { k, .. } => (0, k, 1 + e.neuron),
            EntryKind::Arrival { index, .. } => (1, e.neuron, index),
        }
    };
    entries.sort_by(|x, y| x.time.total_cmp(&y.time).then(key(x).cmp(&key(y))));
}

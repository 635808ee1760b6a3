//! Event-based forward: exact spike times of a LIF network on one sample.
//!
//! Layers are simulated one after the other (a layer only sees the spikes of the layer
//! below). Every neuron has its own list of *arrivals* `(t_j + d[n, j], W[n, j])` (sorted;
//! without delays all neurons of a layer share the input times). In a layer without
//! recurrent weights each neuron is simulated independently: its state `(u, I)` is carried
//! in closed form from one arrival to the next ([`Kinetics::u_at`]), every crossing in
//! between is found by [`Kinetics::first_crossing`], the membrane is reset, and the search
//! resumes until the next arrival; at an arrival `I += W[n, j]`. A crossing at the same
//! time as an arrival is taken before the arrival's current jump. Spikes after `t_max` are
//! not simulated. Memory is proportional to the number of spikes.
//!
//! A recurrent layer couples its neurons at their spikes, so it is simulated in global
//! time order: a heap holds each neuron's next arrival and its
//! predicted next crossing (recomputed whenever its current jumps); the earliest event is
//! processed, crossings before arrivals at equal times and lower neuron indices first. A
//! spike of `m` resets `m` and then adds `r[n, m]` to `I_n` of every neuron (`n = m`
//! included). A neuron found at or above threshold right after a jump (only possible at
//! an exact tie) fires at that time; such equal-time spikes of a recurrent layer are
//! counted in [`ForwardStats::simultaneous_spikes`].

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use crate::dynamics::{Kinetics, Propagator, Step};
use crate::error::{Error, Result};
use crate::network::{Network, Spike};
use crate::params::SolverConfig;

/// Spikes of one layer, sorted by `(time, neuron)`, and the synaptic current of the
/// spiking neuron at each spike (needed by the adjoint's jump).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LayerTrace {
    pub(crate) spikes: Vec<Spike>,
    pub(crate) currents: Vec<f64>,
}

impl LayerTrace {
    /// The layer's spikes, sorted by `(time, neuron)`.
    pub fn spikes(&self) -> &[Spike] {
        &self.spikes
    }

    /// `I(t_k)` of the spiking neuron at each spike (same order as [`LayerTrace::spikes`]).
    pub fn currents(&self) -> &[f64] {
        &self.currents
    }
}

/// A crossing this close before an arrival (in units of `f64::EPSILON` relative to the
/// arrival time) counts as a spike at the arrival ([`ForwardStats::spikes_at_arrivals`]):
/// closer than the crossing solver's own rounding.
const AT_ARRIVAL_ULPS: f64 = 4.0;

/// Degenerate events the forward met (they make the loss non-differentiable there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ForwardStats {
    /// Spikes of a recurrent layer at exactly the time of an earlier spike of the same
    /// layer (processed in `(time, neuron)` order).
    pub simultaneous_spikes: u64,
    /// Spikes at the time of an arrival into the spiking neuron, to within the solver's
    /// rounding (4 ulps); the crossing is taken before the arrival's jump.
    pub spikes_at_arrivals: u64,
}

impl std::ops::AddAssign for ForwardStats {
    fn add_assign(&mut self, o: Self) {
        self.simultaneous_spikes += o.simultaneous_spikes;
        self.spikes_at_arrivals += o.spikes_at_arrivals;
    }
}

/// The forward's result for one sample; [`Trace::backward`] differentiates it.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub(crate) t_max: f64,
    /// `sorted[i] = given[input_order[i]]` for the input spikes.
    pub(crate) input_order: Vec<usize>,
    /// `layers[0]` is the (sorted) input, `layers[k]` the spikes of layer `k`.
    pub(crate) layers: Vec<LayerTrace>,
    pub(crate) stats: ForwardStats,
}

impl Trace {
    /// Spikes of layer `k` (0 = the input, sorted), sorted by `(time, neuron)`.
    ///
    /// # Panics
    /// If `k` exceeds the number of layers.
    #[track_caller]
    pub fn spikes(&self, k: usize) -> &[Spike] {
        &self.layers[k].spikes
    }

    /// The trace of layer `k` (0 = the input).
    ///
    /// # Panics
    /// If `k` exceeds the number of layers.
    #[track_caller]
    pub fn layer(&self, k: usize) -> &LayerTrace {
        &self.layers[k]
    }

    /// Output-layer spikes.
    pub fn output(&self) -> &[Spike] {
        &self.layers.last().expect("at least the input").spikes
    }

    /// Number of layers including the input.
    pub fn n_layers(&self) -> usize {
        self.layers.len()
    }

    /// The simulated window `[0, t_max]`.
    pub fn t_max(&self) -> f64 {
        self.t_max
    }

    /// Spike count per layer, input first.
    pub fn spike_counts(&self) -> Vec<usize> {
        self.layers.iter().map(|l| l.spikes.len()).collect()
    }

    /// Degenerate events met by the forward.
    pub fn stats(&self) -> ForwardStats {
        self.stats
    }
}

/// Checks the simulation window.
///
/// # Errors
/// [`Error::Invalid`] unless `t_max` is finite and `> 0`.
pub fn check_t_max(t_max: f64) -> Result<()> {
    if t_max.is_finite() && t_max > 0.0 {
        Ok(())
    } else {
        Err(Error::Invalid {
            arg: "t_max",
            expected: "a finite value > 0".into(),
            actual: t_max.to_string(),
        })
    }
}

impl Network {
    /// Simulates one sample on `[0, t_max]`; input spikes after `t_max` are ignored.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a bad `t_max` or solver setting, [`Error::InputTime`] /
    /// [`Error::InputNeuron`] for bad input spikes, [`Error::TooManySpikes`] when a neuron
    /// exceeds [`SolverConfig::max_spikes_per_neuron`].
    ///
    /// ```
    /// use eventprop_exact::{Network, Lif, SolverConfig, Spike};
    /// use ndarray::array;
    /// // One input spike at 1 ms into one neuron with a large weight: it fires (4 times).
    /// let net = Network::new(vec![array![[20.0]]], vec![Lif::default()])?;
    /// let trace = net.forward(&[Spike { time: 1e-3, neuron: 0 }], 0.05, &SolverConfig::default())?;
    /// assert_eq!(trace.output().len(), 4);
    /// assert!(trace.output()[0].time > 1e-3);
    /// # Ok::<(), eventprop_exact::Error>(())
    /// ```
    pub fn forward(&self, input: &[Spike], t_max: f64, cfg: &SolverConfig) -> Result<Trace> {
        check_t_max(t_max)?;
        cfg.validate()?;
        let (sorted, input_order) = self.check_input(input)?;
        let mut layers = Vec::with_capacity(self.n_layers() + 1);
        layers.push(LayerTrace {
            currents: vec![0.0; sorted.len()],
            spikes: sorted,
        });
        let mut stats = ForwardStats::default();
        for k in 0..self.n_layers() {
            let ctx = LayerForward {
                net: self,
                k,
                t_max,
                cap: cfg.max_spikes_per_neuron,
                first_only: cfg.first_output_spike_only && k + 1 == self.n_layers(),
            };
            let next = match self.recurrent(k) {
                None => ctx.feed_forward(&layers[k].spikes, &mut stats)?,
                Some(r) => ctx.recurrent(r, &layers[k].spikes, &mut stats)?,
            };
            layers.push(next);
        }
        Ok(Trace {
            t_max,
            input_order,
            layers,
            stats,
        })
    }
}

/// One arrival of a presynaptic spike at a neuron.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Arrival {
    /// Arrival time (spike time plus delay).
    pub time: f64,
    /// The connection's weight.
    pub weight: f64,
    /// Index of the presynaptic spike in its (sorted) layer list.
    pub index: u32,
}

/// The arrivals at neuron `n` of layer `k + 1` from the sorted spikes `inputs` of the layer
/// below, up to `t_max`, sorted by `(time, index)`.
pub(crate) fn arrivals(
    net: &Network,
    k: usize,
    n: usize,
    inputs: &[Spike],
    t_max: f64,
    out: &mut Vec<Arrival>,
) {
    out.clear();
    let w = net.weight(k);
    let w_row = w.row(n);
    let w_row = w_row.as_slice().expect("standard layout");
    match net.delays(k) {
        None => out.extend(
            inputs
                .iter()
                .take_while(|s| s.time <= t_max)
                .enumerate()
                .map(|(p, s)| Arrival {
                    time: s.time,
                    weight: w_row[s.neuron as usize],
                    index: p as u32,
                }),
        ),
        Some(d) => {
            let d_row = d.row(n);
            let d_row = d_row.as_slice().expect("standard layout");
            out.extend(inputs.iter().enumerate().filter_map(|(p, s)| {
                let j = s.neuron as usize;
                let time = s.time + d_row[j];
                (time <= t_max).then_some(Arrival {
                    time,
                    weight: w_row[j],
                    index: p as u32,
                })
            }));
            out.sort_by(|x, y| x.time.total_cmp(&y.time).then(x.index.cmp(&y.index)));
        }
    }
}

struct LayerForward<'a> {
    net: &'a Network,
    /// Index of the weights into the layer.
    k: usize,
    t_max: f64,
    cap: usize,
    /// Stop each neuron at its first spike ([`SolverConfig::first_output_spike_only`];
    /// feed-forward layers only).
    first_only: bool,
}

impl LayerForward<'_> {
    fn too_many(&self, neuron: usize, time: f64) -> Error {
        Error::TooManySpikes {
            layer: self.k + 1,
            neuron,
            cap: self.cap,
            time,
        }
    }

    /// A layer without recurrent weights: each neuron on its own.
    fn feed_forward(&self, inputs: &[Spike], stats: &mut ForwardStats) -> Result<LayerTrace> {
        let n_out = self.net.weight(self.k).nrows();
        let kins: Vec<Kinetics> = (0..n_out).map(|n| self.net.kinetics(self.k, n)).collect();
        if self.net.delays(self.k).is_none()
            && !kins.is_empty()
            && kins.iter().all(|k| (k.a, k.b) == (kins[0].a, kins[0].b))
        {
            return self.feed_forward_lockstep(inputs, &kins, stats);
        }
        let mut all: Vec<(Spike, f64)> = Vec::new();
        let mut scratch = Vec::new();
        let mut arr = Vec::new();
        // Without delays every neuron sees the same arrival times, so the propagators of the
        // intervals between them are shared by all neurons with the same rates.
        let shared_times = self.net.delays(self.k).is_none();
        let mut shared = SharedIntervals::default();
        for (n, &kin) in kins.iter().enumerate() {
            arrivals(self.net, self.k, n, inputs, self.t_max, &mut arr);
            scratch.clear();
            if !shared_times || n == 0 || !shared.matches(&kin) {
                shared.fill(&kin, &arr, self.t_max);
            }
            let cap = if self.first_only {
                Cap::StopAtFirst
            } else {
                Cap::Error(self.cap)
            };
            neuron_forward(
                &kin,
                &arr,
                &shared.props,
                self.t_max,
                cap,
                &mut scratch,
                stats,
            )
            .map_err(|time| self.too_many(n, time))?;
            all.extend(scratch.iter().map(|&(time, current)| {
                (
                    Spike {
                        time,
                        neuron: n as u32,
                    },
                    current,
                )
            }));
        }
        Ok(sorted_trace(all))
    }

    /// A feed-forward layer without delays whose neurons share their rates: every neuron
    /// sees the same arrival times, so all are carried through each interval between
    /// arrivals together with the interval's one propagator, and only a neuron that may
    /// cross the threshold in it ([`Kinetics::may_cross`]) takes the search
    /// ([`advance_neuron`]). Each neuron's arithmetic is that of [`neuron_forward`] in the
    /// same order, so the spikes and currents are the same bit for bit (and the error, for
    /// the lowest-numbered neuron over the cap); the loop over neurons per arrival replaces
    /// a gather of every neuron's arrivals (measured: issue 25's exact-engine profile).
    fn feed_forward_lockstep(
        &self,
        inputs: &[Spike],
        kins: &[Kinetics],
        stats: &mut ForwardStats,
    ) -> Result<LayerTrace> {
        let n_out = kins.len();
        let cap = if self.first_only {
            Cap::StopAtFirst
        } else {
            Cap::Error(self.cap)
        };
        // weights by presynaptic neuron: row `j` holds every neuron's weight from input `j`
        let w_t = self
            .net
            .weight(self.k)
            .t()
            .as_standard_layout()
            .into_owned();
        let inputs = &inputs[..inputs.partition_point(|s| s.time <= self.t_max)];
        let mut props = Vec::new();
        interval_props(
            &kins[0],
            inputs.iter().map(|s| s.time),
            self.t_max,
            &mut props,
        );
        let (mut u, mut i) = (vec![0.0_f64; n_out], vec![0.0_f64; n_out]);
        let mut out: Vec<Vec<(f64, f64)>> = vec![Vec::new(); n_out];
        // each neuron's threshold; +inf once it has stopped (its first spike, or over the
        // cap), so that the quiet test below always passes and it is never searched again
        let mut theta: Vec<f64> = kins.iter().map(|k| k.theta).collect();
        let mut search = vec![0u8; n_out];
        let mut over: Option<(usize, f64)> = None;
        let a = kins[0].a;
        let mut t = 0.0_f64;
        // the weights of the last arrival, added at the start of the next interval
        let mut pending: Option<usize> = None;
        let row = |j: usize| w_t.row(j).to_slice().expect("standard layout");
        for (j, prop) in props.iter().enumerate() {
            let target = inputs.get(j).map_or(self.t_max, |s| s.time);
            let delta = target - t;
            if delta.is_nan() || delta <= 0.0 {
                if let Some(src) = pending.take() {
                    for (i, &w) in i.iter_mut().zip(row(src)) {
                        *i += w;
                    }
                }
            } else {
                let p = &prop.1;
                let exact_length = prop.0 == delta;
                // every neuron at once: the last arrival's weights, then the propagated
                // state (`Kinetics::apply`), kept where the cheap tests of
                // `Kinetics::may_cross` rule a crossing out
                let step = LockstepInterval {
                    w: pending.take().map(row),
                    a,
                    p: *p,
                    exact_length,
                };
                propagate_quiet(&mut u, &mut i, &theta, &mut search, &step);
                // the rest: the full test, then the search, from the interval's start
                // (8 flags at a time: most intervals have none)
                for (c, chunk) in search.chunks(8).enumerate() {
                    if chunk.iter().all(|&f| f == 0) {
                        continue;
                    }
                    for (n, _) in (c * 8..).zip(chunk).filter(|(_, &f)| f != 0) {
                        if theta[n] == f64::INFINITY {
                            // stopped (flagged only when `!exact_length`)
                            continue;
                        }
                        let kin = &kins[n];
                        let (u0, i0) = (u[n], i[n]);
                        let (u1, i1) = kin.apply(u0, i0, p);
                        if exact_length && !kin.may_cross(u0, i0, u1, i1) {
                            (u[n], i[n]) = (u1, i1);
                            continue;
                        }
                        let mut tn = t;
                        let state = (&mut tn, &mut u[n], &mut i[n]);
                        let stop = match advance_neuron(
                            kin,
                            state,
                            Some(prop),
                            target,
                            self.t_max,
                            cap,
                            &mut out[n],
                            stats,
                        ) {
                            Ok(stop) => stop,
                            Err(time) => {
                                if over.is_none_or(|(m, _)| n < m) {
                                    over = Some((n, time));
                                }
                                true
                            }
                        };
                        if stop {
                            theta[n] = f64::INFINITY;
                        }
                    }
                }
                t = target;
            }
            // (a stopped neuron's state is never read again)
            pending = inputs.get(j).map(|s| s.neuron as usize);
        }
        if let Some((n, time)) = over {
            return Err(self.too_many(n, time));
        }
        let all = out
            .into_iter()
            .enumerate()
            .flat_map(|(n, spikes)| {
                spikes.into_iter().map(move |(time, current)| {
                    (
                        Spike {
                            time,
                            neuron: n as u32,
                        },
                        current,
                    )
                })
            })
            .collect();
        Ok(sorted_trace(all))
    }

    /// A recurrent layer, in global time order.
    fn recurrent(
        &self,
        r: ArrayView2<'_, f64>,
        inputs: &[Spike],
        stats: &mut ForwardStats,
    ) -> Result<LayerTrace> {
        let n_out = self.net.weight(self.k).nrows();
        let kins: Vec<Kinetics> = (0..n_out).map(|n| self.net.kinetics(self.k, n)).collect();
        let arr: Vec<Vec<Arrival>> = (0..n_out)
            .map(|n| {
                let mut v = Vec::new();
                arrivals(self.net, self.k, n, inputs, self.t_max, &mut v);
                v
            })
            .collect();
        let mut st = vec![(0.0_f64, 0.0_f64, 0.0_f64); n_out]; // (t, u, I)
        let mut next = vec![0usize; n_out];
        let mut version = vec![0u64; n_out];
        let mut count = vec![0usize; n_out];
        let mut heap = BinaryHeap::new();
        for (n, a) in arr.iter().enumerate() {
            if let Some(first) = a.first() {
                heap.push(Event::arrival(first.time, n));
            }
            predict(&kins[n], st[n], n, self.t_max, &mut version, &mut heap);
        }
        let mut all: Vec<(Spike, f64)> = Vec::new();
        let mut last_time = f64::NEG_INFINITY;
        while let Some(ev) = heap.pop() {
            let n = ev.neuron as usize;
            match ev.kind {
                EventKind::Crossing(v) => {
                    if v != version[n] {
                        continue;
                    }
                    let kin = &kins[n];
                    let (t0, _, i0) = st[n];
                    let i_k = kin.i_at(i0, ev.time - t0);
                    if ev.time == last_time {
                        stats.simultaneous_spikes += 1;
                    }
                    last_time = ev.time;
                    all.push((
                        Spike {
                            time: ev.time,
                            neuron: n as u32,
                        },
                        i_k,
                    ));
                    count[n] += 1;
                    if count[n] > self.cap {
                        return Err(self.too_many(n, ev.time));
                    }
                    st[n] = (ev.time, kin.reset, i_k);
                    for m in 0..n_out {
                        let w = r[[m, n]];
                        if w != 0.0 {
                            advance_to(&kins[m], &mut st[m], ev.time);
                            st[m].2 += w;
                        }
                        if w != 0.0 || m == n {
                            predict(&kins[m], st[m], m, self.t_max, &mut version, &mut heap);
                        }
                    }
                }
                EventKind::Arrival => {
                    let a = arr[n][next[n]];
                    next[n] += 1;
                    advance_to(&kins[n], &mut st[n], a.time);
                    st[n].2 += a.weight;
                    predict(&kins[n], st[n], n, self.t_max, &mut version, &mut heap);
                    if let Some(b) = arr[n].get(next[n]) {
                        heap.push(Event::arrival(b.time, n));
                    }
                }
            }
        }
        Ok(sorted_trace(all))
    }
}

/// One interval of a lockstep layer ([`propagate_quiet`]).
struct LockstepInterval<'a> {
    /// The weights of the arrival that starts it, by neuron (none for the first interval
    /// and after simultaneous arrivals, whose weights were added already).
    w: Option<&'a [f64]>,
    /// The membrane rate `1 / tau_mem` every neuron shares.
    a: f64,
    /// The interval's propagator.
    p: Propagator,
    /// Whether `p` is the propagator of this interval's length.
    exact_length: bool,
}

/// Adds the weights `w` of the arrival that starts the interval (when there is one) to the
/// currents, then carries every neuron of a lockstep layer through the interval with the shared
/// propagator `p` (`Kinetics::apply`, rate `a`), where the cheap tests of
/// [`Kinetics::may_cross`] rule a crossing out (both ends at or below `theta` and no
/// interior maximum, or one whose current starts below a positive threshold); elsewhere
/// (and everywhere when the interval is not the propagator's, `!exact_length`) the state is
/// left at the interval's start and `search` is 1 (else 0). Branch-free, so the loop vectorises;
/// compiled for AVX2 and AVX-512F too and chosen at run time. No FMA: each lane does the
/// baseline's multiplies and adds, so the results are the same bit for bit on any CPU.
fn propagate_quiet(
    u: &mut [f64],
    i: &mut [f64],
    theta: &[f64],
    search: &mut [u8],
    step: &LockstepInterval<'_>,
) {
    #[inline(always)]
    fn body(
        u: &mut [f64],
        i: &mut [f64],
        theta: &[f64],
        search: &mut [u8],
        step: &LockstepInterval<'_>,
    ) {
        let &LockstepInterval {
            w,
            a,
            ref p,
            exact_length,
        } = step;
        let n = u.len().min(i.len()).min(theta.len()).min(search.len());
        let (u, i, theta, search) = (&mut u[..n], &mut i[..n], &theta[..n], &mut search[..n]);
        if let Some(w) = w {
            for (i, &w) in i.iter_mut().zip(w) {
                *i += w;
            }
        }
        for k in 0..n {
            let (u0, i0, th) = (u[k], i[k], theta[k]);
            let u1 = u0 * p.e_a + a * i0 * p.phi;
            let i1 = i0 * p.e_b;
            let no_interior_max = !((i0 > u0) & (i1 < u1));
            let quiet = exact_length
                & (u0 <= th)
                & (u1 <= th)
                & (no_interior_max | ((th > 0.0) & (i0 < th)));
            u[k] = if quiet { u1 } else { u0 };
            i[k] = if quiet { i1 } else { i0 };
            search[k] = u8::from(!quiet);
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        // `body` compiled once per extension
        macro_rules! compiled_for {
            ($($name:ident: $feature:literal),*) => {$(
                #[target_feature(enable = $feature)]
                fn $name(
                    u: &mut [f64],
                    i: &mut [f64],
                    theta: &[f64],
                    search: &mut [u8],
                    step: &LockstepInterval<'_>,
                ) {
                    body(u, i, theta, search, step)
                }
            )*};
        }
        compiled_for!(avx2: "avx2", avx512: "avx512f");
        use std::sync::OnceLock;
        static LEVEL: OnceLock<u8> = OnceLock::new();
        let level = *LEVEL.get_or_init(|| {
            if std::is_x86_feature_detected!("avx512f") {
                2
            } else {
                u8::from(std::is_x86_feature_detected!("avx2"))
            }
        });
        match level {
            // SAFETY: AVX-512F was detected on this CPU.
            2 => return unsafe { avx512(u, i, theta, search, step) },
            // SAFETY: AVX2 was detected on this CPU.
            1 => return unsafe { avx2(u, i, theta, search, step) },
            _ => {}
        }
    }
    body(u, i, theta, search, step)
}

/// Sorts `(spike, current)` pairs by `(time, neuron)` (stable) into a layer trace.
fn sorted_trace(mut all: Vec<(Spike, f64)>) -> LayerTrace {
    if all
        .windows(2)
        .any(|p| (p[0].0.time, p[0].0.neuron) > (p[1].0.time, p[1].0.neuron))
    {
        all.sort_by(|x, y| {
            x.0.time
                .total_cmp(&y.0.time)
                .then(x.0.neuron.cmp(&y.0.neuron))
        });
    }
    LayerTrace {
        spikes: all.iter().map(|p| p.0).collect(),
        currents: all.iter().map(|p| p.1).collect(),
    }
}

/// Carries a neuron's state `(t, u, I)` to `time` (no crossing search: the caller knows
/// none happens before `time`).
fn advance_to(kin: &Kinetics, st: &mut (f64, f64, f64), time: f64) {
    let s = time - st.0;
    if s > 0.0 {
        (st.1, st.2) = kin.state_at(st.1, st.2, s);
        st.0 = time;
    }
}

/// Pushes the next crossing of neuron `n` from state `st` (invalidating older ones).
///
/// Without a crossing search where none can come before the next input: below the
/// threshold with `I < theta` (`theta > 0`), `u` stays at or below `max(u, I)` for ever (it
/// rises only while below the decaying `I`), the rule [`Kinetics::step`] applies to the
/// feed-forward layers. Measured on a recurrent 700-32-20 network of an SHD-shaped task
/// (86 samples, one epoch with the data-calibrated start-up, 1 thread): 92 → 55 s, the
/// same weights bit for bit.
fn predict(
    kin: &Kinetics,
    st: (f64, f64, f64),
    n: usize,
    t_max: f64,
    version: &mut [u64],
    heap: &mut BinaryHeap<Event>,
) {
    version[n] += 1;
    let (t, u, i) = st;
    let s = if u >= kin.theta {
        Some(0.0)
    } else if kin.theta > 0.0 && i < kin.theta {
        None
    } else {
        kin.first_crossing(u, i, t_max - t)
    };
    if let Some(s) = s {
        heap.push(Event {
            time: t + s,
            kind: EventKind::Crossing(version[n]),
            neuron: n as u32,
        });
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum EventKind {
    /// A predicted crossing, valid while the neuron's version is this one.
    Crossing(u64),
    /// The neuron's next arrival.
    Arrival,
}

/// A heap entry; the heap pops the earliest time, crossings before arrivals, lower
/// neuron first.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Event {
    time: f64,
    kind: EventKind,
    neuron: u32,
}

impl Event {
    fn arrival(time: f64, n: usize) -> Self {
        Self {
            time,
            kind: EventKind::Arrival,
            neuron: n as u32,
        }
    }

    fn rank(&self) -> u8 {
        match self.kind {
            EventKind::Crossing(_) => 0,
            EventKind::Arrival => 1,
        }
    }
}

impl Eq for Event {}

impl Ord for Event {
    fn cmp(&self, o: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap.
        o.time
            .total_cmp(&self.time)
            .then(o.rank().cmp(&self.rank()))
            .then(o.neuron.cmp(&self.neuron))
    }
}

impl PartialOrd for Event {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// The propagators of the intervals `[0, t_1], [t_1, t_2], …, [t_last, t_max]` between the
/// arrival times of one neuron, for rates `(a, b)`: `(length, propagator)` per interval.
#[derive(Default)]
struct SharedIntervals {
    rates: (f64, f64),
    props: Vec<(f64, Propagator)>,
}

impl SharedIntervals {
    fn matches(&self, kin: &Kinetics) -> bool {
        self.rates == (kin.a, kin.b)
    }

    fn fill(&mut self, kin: &Kinetics, arrivals: &[Arrival], t_max: f64) {
        self.rates = (kin.a, kin.b);
        interval_props(kin, arrivals.iter().map(|a| a.time), t_max, &mut self.props);
    }
}

/// The `(length, propagator)` of each interval `[0, t_1], [t_1, t_2], …, [t_last, t_max]`
/// between the arrival `times` (sorted), for the rates of `kin`, into `props`.
pub(crate) fn interval_props(
    kin: &Kinetics,
    times: impl Iterator<Item = f64>,
    t_max: f64,
    props: &mut Vec<(f64, Propagator)>,
) {
    props.clear();
    let mut t = 0.0;
    for target in times.chain(std::iter::once(t_max)) {
        let d = target - t;
        props.push((d, kin.propagator(d)));
        t = target;
    }
}

/// What ends a neuron's simulation early.
#[derive(Clone, Copy)]
enum Cap {
    /// More spikes than this are an error.
    Error(usize),
    /// The first spike ([`SolverConfig::first_output_spike_only`]).
    StopAtFirst,
}

/// Carries one neuron from its state `(t, u, i)` (not spiked since `t`) to `target`,
/// pushing `(t_k, I(t_k))` per threshold crossing on the way. `prop` is the propagator of
/// the whole interval when the neuron enters it at its start (`(length, propagator)`; used
/// when the length matches `target - t`). Returns `Ok(true)` when [`Cap::StopAtFirst`]
/// ends the neuron, and on exceeding a [`Cap::Error`] the time of the offending spike.
#[allow(clippy::too_many_arguments)]
#[inline]
fn advance_neuron(
    kin: &Kinetics,
    (t, u, i): (&mut f64, &mut f64, &mut f64),
    prop: Option<&(f64, Propagator)>,
    target: f64,
    t_max: f64,
    cap: Cap,
    out: &mut Vec<(f64, f64)>,
    stats: &mut ForwardStats,
) -> std::result::Result<bool, f64> {
    loop {
        let delta = target - *t;
        if delta.is_nan() || delta <= 0.0 {
            return Ok(false);
        }
        let p = match prop {
            Some(&(d, p)) if d == delta => p,
            _ => kin.propagator(delta),
        };
        match kin.step(*u, *i, delta, &p) {
            Step::Crossing(s) => {
                let i_k = kin.i_at(*i, s);
                let t_k = *t + s;
                if target - t_k <= AT_ARRIVAL_ULPS * f64::EPSILON * target && target < t_max {
                    stats.spikes_at_arrivals += 1;
                }
                out.push((t_k, i_k));
                match cap {
                    Cap::StopAtFirst => return Ok(true),
                    Cap::Error(cap) if out.len() > cap => return Err(t_k),
                    Cap::Error(_) => {}
                }
                *t = t_k;
                *u = kin.reset;
                *i = i_k;
            }
            Step::End(u1, i1) => {
                *u = u1;
                *i = i1;
                *t = target;
                return Ok(false);
            }
        }
    }
}

/// Simulates one neuron on its sorted arrivals; pushes `(t_k, I(t_k))` per spike. On
/// exceeding a [`Cap::Error`], returns the time of the offending spike. `props[j]` is the
/// propagator of the interval before arrival `j` (`j = len`: before `t_max`) when the neuron
/// enters it at its start, i.e. has not spiked since the previous arrival.
fn neuron_forward(
    kin: &Kinetics,
    arrivals: &[Arrival],
    props: &[(f64, Propagator)],
    t_max: f64,
    cap: Cap,
    out: &mut Vec<(f64, f64)>,
    stats: &mut ForwardStats,
) -> std::result::Result<(), f64> {
    let (mut t, mut u, mut i) = (0.0_f64, 0.0_f64, 0.0_f64);
    for (j, a) in arrivals.iter().enumerate() {
        let state = (&mut t, &mut u, &mut i);
        if advance_neuron(kin, state, props.get(j), a.time, t_max, cap, out, stats)? {
            return Ok(());
        }
        i += a.weight;
    }
    let state = (&mut t, &mut u, &mut i);
    advance_neuron(
        kin,
        state,
        props.get(arrivals.len()),
        t_max,
        t_max,
        cap,
        out,
        stats,
    )
    .map(|_| ())
}

/// Maximum of the membrane `u = V - leak` of a neuron that does not spike in `[0, t_max]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MembraneMax {
    /// `max_t u(t)` (relative to the leak).
    pub u_max: f64,
    /// Where it is reached (the earliest such time).
    pub time: f64,
}

/// The membrane maximum over `[0, t_max]` of a neuron without resets, fed by the
/// `arrivals` `(time, weight)` sorted by time: on each inter-event interval the candidates
/// are the interval's end and the analytic extremum [`Kinetics::extremum`].
pub fn membrane_max(
    kin: &Kinetics,
    arrivals: impl IntoIterator<Item = (f64, f64)>,
    t_max: f64,
) -> MembraneMax {
    let (mut t, mut u, mut i) = (0.0_f64, 0.0_f64, 0.0_f64);
    let mut best = MembraneMax {
        u_max: 0.0,
        time: 0.0,
    };
    let mut visit = |t: &mut f64, u: &mut f64, i: &mut f64, target: f64| {
        let delta = target - *t;
        if delta <= 0.0 {
            return;
        }
        if let Some(s) = kin.extremum(*u, *i).filter(|&s| s < delta) {
            let um = kin.u_at(*u, *i, s);
            if um > best.u_max {
                best = MembraneMax {
                    u_max: um,
                    time: *t + s,
                };
            }
        }
        (*u, *i) = kin.state_at(*u, *i, delta);
        *t = target;
        if *u > best.u_max {
            best = MembraneMax {
                u_max: *u,
                time: target,
            };
        }
    };
    for (time, w) in arrivals.into_iter().take_while(|a| a.0 <= t_max) {
        visit(&mut t, &mut u, &mut i, time);
        i += w;
    }
    visit(&mut t, &mut u, &mut i, t_max);
    best
}

//! The mock chip's analog core, in two forms that share every formula:
//!
//! * [`advance_neuron`]: one neuron over one interval between the events it sees, with the
//!   threshold-crossing search (the exact engine's tests and bracket, then [`solve`], to
//!   `2e-12` of the interval; the per-neuron path of
//!   [`super::MockChip::simulate_neuron`], calibration, and the rare intervals below);
//! * [`LayerRun`]: every neuron of a layer at once. The neurons of a layer share their
//!   breakpoints — the presynaptic events, the noise kicks every `noise_dt`, the CADC
//!   samples — and differ only in their kinetics, so between two breakpoints the layer is one
//!   loop over neurons with per-neuron propagators from a table (on the 125 MHz clock every
//!   interval is a whole number of ticks). An interval where a neuron may cross its
//!   threshold ([`crossing_possible`], an exact bound) goes through [`advance_neuron`] for
//!   that neuron; every other neuron takes the closed-form step. Both give the same
//!   numbers as the per-neuron path to rounding (unit test).

use eventprop_exact::dynamics::{Bracket, Kinetics};

use crate::error::{Error, Result};

/// Spikes per neuron and sample beyond which a run is an error (a runaway configuration).
pub const MAX_SPIKES_PER_NEURON: usize = 1000;

/// One neuron as built on this chip instance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NeuronPhys {
    /// Rates and leak-relative threshold/reset (`theta = +inf` for the integrator).
    pub kinetics: Kinetics,
    /// Rest potential `leak_n` (model units).
    pub leak: f64,
    /// Whether the neuron spikes (false: the integrator readout).
    pub spiking: bool,
    /// CADC offset (codes).
    pub cadc_offset: f64,
    /// Peak of the membrane response to a unit current from rest, `max_s a φ(a, b, s)`:
    /// bounds `u(s) ≤ max(u0, 0) + max(I0, 0) psp_peak`, so that intervals that cannot
    /// reach the threshold skip the crossing search.
    pub psp_peak: f64,
    /// Time of that peak (s): `a φ` rises on `[0, psp_peak_time]`, so over an interval `d`
    /// no longer than it the bound tightens to `max(u0, 0) + max(I0, 0) a φ(a, b, d)`.
    pub psp_peak_time: f64,
}

/// The propagator of an interval `d`: `(e^{-a d}, e^{-b d}, a φ(a, b, d))`, with two
/// transcendental calls (`e^{-min(a,b) d}` and `expm1(-|b-a| d)` give both exponentials and
/// `φ` without dividing by a small difference).
#[inline]
pub(super) fn propagator(k: &Kinetics, d: f64) -> [f64; 3] {
    let (lo, diff) = if k.a <= k.b {
        (k.a, k.b - k.a)
    } else {
        (k.b, k.a - k.b)
    };
    let e_lo = (-lo * d).exp();
    let m = (-diff * d).exp_m1();
    let e_hi = e_lo * (1.0 + m);
    let phi = if diff * d == 0.0 {
        e_lo * d
    } else {
        e_lo * (-m / diff)
    };
    let (e_a, e_b) = if k.a <= k.b {
        (e_lo, e_hi)
    } else {
        (e_hi, e_lo)
    };
    [e_a, e_b, k.a * phi]
}

/// The threshold the crossing bounds compare with: `theta` less a `1e-12` relative margin
/// (so that the bounds skip only searches that find nothing), `+inf` for the non-spiking
/// readout.
pub(super) fn margin(p: &NeuronPhys) -> f64 {
    let theta = p.kinetics.theta;
    if p.spiking {
        theta - 1e-12 * theta.abs()
    } else {
        f64::INFINITY
    }
}

/// Whether an interval from `(u0, i0)` to `(u1, i1)` may hold a threshold crossing (docs/spec.md §4:
/// `u` has at most one extremum per interval). None when
/// * `max(u0, 0) + max(i0, 0) rise` stays below the threshold (`rise` = `a φ(d)` up to the
///   PSP's peak time, where `a φ` rises, the PSP peak beyond), or
/// * both ends stay below it and there is no interior maximum (`du/ds = a (I - u)` would go
///   from positive at the start to negative at the end), or
/// * both ends and `i0` stay below it: at an interior maximum `du/ds = 0`, so there
///   `u = I(s) ≤ max(i0, 0)` (the current only decays between events).
///
/// Each bounds the exact `u` (the second is the exact engine's test,
/// [`Kinetics::step`]), against `margin` (the threshold less a relative 1e-12).
#[inline(always)]
pub(super) fn crossing_possible(
    (u0, i0): (f64, f64),
    (u1, i1): (f64, f64),
    rise: f64,
    margin: f64,
) -> bool {
    // `max(x, 0)` as a select: `f64::max`'s NaN rule keeps the neuron loop from vectorising
    let pos = |x: f64| if x > 0.0 { x } else { 0.0 };
    let ends_below = (u0 < margin) & (u1 < margin);
    let interior_max = (i0 > u0) & (i1 < u1);
    (pos(u0) + pos(i0) * rise >= margin)
        & !(ends_below & !interior_max)
        & !(ends_below & (i0 < margin))
}

/// `a φ` bounded over an interval `d`: `a φ(d)` while it rises, the PSP peak beyond.
#[inline(always)]
fn rise(d: f64, a_phi: f64, peak_time: f64, peak: f64) -> f64 {
    if d <= peak_time {
        a_phi
    } else {
        peak
    }
}

/// One neuron's state while it is simulated (time in seconds).
#[derive(Debug, Clone, Copy)]
pub(super) struct NeuronState {
    /// Time (s).
    pub t: f64,
    /// Membrane relative to the neuron's leak.
    pub u: f64,
    /// Synaptic current.
    pub i: f64,
    /// End of the refractory period (s).
    pub ref_until: f64,
}

impl NeuronState {
    /// At rest at time 0.
    pub fn rest() -> Self {
        Self {
            t: 0.0,
            u: 0.0,
            i: 0.0,
            ref_until: f64::NEG_INFINITY,
        }
    }
}

/// Advances one neuron to `stop`, with the spikes (passed to `on_spike`) and refractory
/// periods on the way; `prop` is the propagator of the whole interval `stop - s.t`.
/// Returns whether the interval was propagated whole with `prop` (no spike, not
/// refractory). The crossing search runs only where [`crossing_possible`].
///
/// # Errors
/// What `on_spike` returns.
#[inline(always)]
pub(super) fn advance_neuron(
    p: &NeuronPhys,
    refractory: f64,
    s: &mut NeuronState,
    stop: f64,
    prop: [f64; 3],
    on_spike: &mut impl FnMut(f64) -> Result<()>,
) -> Result<bool> {
    let k = &p.kinetics;
    let margin = margin(p);
    let mut first = Some(prop);
    let mut whole = true;
    while s.t < stop {
        if s.t < s.ref_until {
            let e = s.ref_until.min(stop);
            s.i = k.i_at(s.i, e - s.t);
            s.u = k.reset;
            s.t = e;
            first = None;
            whole = false;
            continue;
        }
        let d = stop - s.t;
        let [e_a, e_b, a_phi] = first.take().unwrap_or_else(|| propagator(k, d));
        let (u1, i1) = (s.u * e_a + s.i * a_phi, s.i * e_b);
        let bracket = if s.u <= k.theta && u1 > k.theta {
            // the ends straddle the threshold: exactly one crossing (`u` has at most one
            // extremum), so the whole interval brackets it ([`solve`] needs no monotone
            // bracket) and the extremum is not needed
            Some(Bracket {
                lo: 0.0,
                hi: d,
                f_lo: s.u - k.theta,
                f_hi: u1 - k.theta,
            })
        } else if crossing_possible(
            (s.u, s.i),
            (u1, i1),
            rise(d, a_phi, p.psp_peak_time, p.psp_peak),
            margin,
        ) && k.may_cross(s.u, s.i, u1, i1)
        {
            k.bracket(s.u, s.i, d, u1)
        } else {
            None
        };
        if let Some(b) = bracket {
            let (x, i_x) = solve(k, (s.u, s.i), b, d);
            s.t += x;
            on_spike(s.t)?;
            s.i = i_x;
            s.u = k.reset;
            if refractory > 0.0 {
                s.ref_until = s.t + refractory;
            }
            whole = false;
            continue;
        }
        s.u = u1;
        s.i = i1;
        s.t = stop;
    }
    Ok(whole)
}

/// The threshold crossing in `b` (an interval of length `d` from `(u0, i0)`; the only
/// sign change of `u - theta` in it, not necessarily on a monotone piece) and the current
/// there: Halley's method from the secant point where `u` rises, bisection of the bracket
/// otherwise (as the exact engine's solver), with the states from [`propagator`] (two
/// transcendental calls),
/// until a step or the bracket is below `1e-12 d` (so the root is within `2e-12 d` of the
/// result: 2e-18 s on a 1 µs kick interval, where the chip stamps spikes to 8 ns). Returns
/// the last point evaluated, with its current, so that the reset needs no further
/// exponential.
fn solve(k: &Kinetics, (u0, i0): (f64, f64), b: Bracket, d: f64) -> (f64, f64) {
    let (mut lo, mut hi) = (b.lo, b.hi);
    if b.f_lo == 0.0 {
        return (lo, k.i_at(i0, lo));
    }
    let tol = 1e-12 * d;
    let mut s = b.start();
    let mut width = hi - lo;
    for _ in 0..200 {
        let [e_a, e_b, a_phi] = propagator(k, s);
        let (u, i) = (u0 * e_a + i0 * a_phi, i0 * e_b);
        let fs = u - k.theta;
        if fs == 0.0 {
            return (s, i);
        }
        if fs < 0.0 {
            lo = s;
        } else {
            hi = s;
        }
        let next = k.halley_next(s, (u, i), (lo, hi), width);
        width = (next - s).abs();
        if width <= tol || hi - lo <= tol {
            return (s, i);
        }
        s = next;
    }
    (s, k.i_at(i0, s))
}

/// `x += y`, elementwise (a jump of the currents).
#[inline]
fn add_to(x: &mut [f64], y: &[f64]) {
    for (x, y) in x.iter_mut().zip(y) {
        *x += y;
    }
}

/// The error of a neuron that fires more than [`MAX_SPIKES_PER_NEURON`] times in a sample.
pub(super) fn too_many_spikes(count: usize) -> Error {
    Error::invalid(
        "chip",
        format!(
            "at most {MAX_SPIKES_PER_NEURON} spikes per neuron and sample (weights too large?)"
        ),
        count,
    )
}

/// The propagators of one interval length for every neuron of a layer.
#[derive(Debug, Clone, Default)]
pub(super) struct PropSet {
    e_a: Vec<f64>,
    e_b: Vec<f64>,
    a_phi: Vec<f64>,
    /// `a φ` bounded over the interval ([`rise`]).
    rise: Vec<f64>,
}

impl PropSet {
    fn of(neurons: &[NeuronPhys], d: f64) -> Self {
        let mut set = Self::default();
        set.fill(neurons, d);
        set
    }

    fn fill(&mut self, neurons: &[NeuronPhys], d: f64) {
        self.e_a.clear();
        self.e_b.clear();
        self.a_phi.clear();
        self.rise.clear();
        for p in neurons {
            let [e_a, e_b, a_phi] = propagator(&p.kinetics, d);
            self.e_a.push(e_a);
            self.e_b.push(e_b);
            self.a_phi.push(a_phi);
            self.rise.push(rise(d, a_phi, p.psp_peak_time, p.psp_peak));
        }
    }
}

/// The time base of a run. On the chip clock (`quantize_time`, with the kick interval, the
/// CADC period and the window whole numbers of ticks) every breakpoint is a whole number of
/// ticks and times are counted in ticks, exactly; otherwise in seconds.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct TimeBase {
    /// Seconds per time unit (`1 / clock_hz` on the clock, else 1).
    pub unit: f64,
    /// Whether times are whole ticks.
    pub ticks: bool,
    /// The noise-kick interval (units).
    pub kick: f64,
    /// The CADC period (units).
    pub sample: f64,
    /// The end of the window (units).
    pub end: f64,
}

impl TimeBase {
    /// The time base for a clock of `clock_hz` (`quantize`: spike times on it), kicks every
    /// `kick` s, CADC samples every `sample` s, a window of `end` s.
    pub fn new(quantize: bool, clock_hz: f64, kick: f64, sample: f64, end: f64) -> Self {
        let whole = |x: f64| {
            let y = x * clock_hz;
            (y - y.round()).abs() <= 1e-6 * y.max(1.0) && y.round() >= 1.0 && y < 1e15
        };
        if quantize && whole(kick) && whole(sample) && whole(end) {
            Self {
                unit: 1.0 / clock_hz,
                ticks: true,
                kick: (kick * clock_hz).round(),
                sample: (sample * clock_hz).round(),
                end: (end * clock_hz).round(),
            }
        } else {
            Self {
                unit: 1.0,
                ticks: false,
                kick,
                sample,
                end,
            }
        }
    }

    /// The number of noise kicks in the window (at `m · kick`, `m = 1 ..= kicks()`).
    pub fn kicks(&self) -> usize {
        (self.end / self.kick + 1e-9).floor() as usize
    }

    /// A (stamped) time in seconds in this base's units.
    pub fn of_seconds(&self, t: f64) -> f64 {
        if self.ticks {
            (t / self.unit).round()
        } else {
            t
        }
    }
}

/// Interval lengths (ticks) with tabulated propagators at most.
const TABLE_TICKS: f64 = 1024.0;

/// What [`LayerRun`] needs of a layer beyond its neurons: the crossing margins as an
/// array, and the propagators of the recurring interval lengths.
#[derive(Debug, Clone)]
pub(super) struct LayerCore {
    margin: Vec<f64>,
    /// No neuron spikes (the integrator readout): intervals need no crossing bounds.
    linear: bool,
    /// On the clock: the propagators of `k` ticks at index `k`, up to the longer of the
    /// kick interval and the CADC period (every interval of a noisy layer).
    table: Vec<PropSet>,
    /// Off the clock: the propagators of the kick interval.
    kick: PropSet,
}

impl LayerCore {
    /// The core of a layer of `neurons` on `time`.
    pub fn new(neurons: &[NeuronPhys], time: &TimeBase) -> Self {
        let table = if time.ticks {
            let len = time.kick.max(time.sample).min(TABLE_TICKS) as usize;
            (0..=len)
                .map(|k| PropSet::of(neurons, k as f64 * time.unit))
                .collect()
        } else {
            Vec::new()
        };
        Self {
            margin: neurons.iter().map(margin).collect(),
            linear: neurons.iter().all(|p| !p.spiking),
            table,
            kick: if time.ticks {
                PropSet::default()
            } else {
                PropSet::of(neurons, time.kick)
            },
        }
    }
}

/// Buffers of [`LayerRun::run`], reused across layers and samples.
#[derive(Debug, Default)]
pub(super) struct Scratch {
    u: Vec<f64>,
    i: Vec<f64>,
    /// The state after the current interval (swapped with `u`, `i` after it).
    u_next: Vec<f64>,
    i_next: Vec<f64>,
    ref_until: Vec<f64>,
    /// Per neuron: 1 where [`LayerRun::advance`] hands the interval to [`advance_neuron`]
    /// (a `u64` so that the neuron loop vectorises with the `f64` lanes).
    flag: Vec<u64>,
    count: Vec<usize>,
    prop: PropSet,
    /// The kicks of the current kick time.
    kick: Vec<f64>,
}

/// One layer's run: its neurons, their core, and what they receive.
pub(super) struct LayerRun<'a> {
    /// The neurons as built on the chip.
    pub neurons: &'a [NeuronPhys],
    /// Their [`LayerCore`].
    pub core: &'a LayerCore,
    /// The time base.
    pub time: &'a TimeBase,
    /// Refractory period (s; 0 = none).
    pub refractory: f64,
    /// Presynaptic events `(time in units, channel)`, sorted by time.
    pub events: &'a [(f64, u32)],
    /// Effective weights, transposed: `weights_t[j * N + n]` is the jump of neuron `n`'s
    /// current at a spike of channel `j`.
    pub weights_t: &'a [f64],
    /// CADC samples to record (at `k · time.sample`, `k < samples`; 0 = none).
    pub samples: usize,
    /// Whether the currents get noise kicks, at `m · time.kick`, `m = 1 ..=`
    /// [`TimeBase::kicks`] (drawn by [`LayerRun::run`]'s `kick`).
    pub noisy: bool,
}

impl LayerRun<'_> {
    /// Runs the layer: spikes `(time in s, neuron)` appended to `spikes` in the order they
    /// are found (sorted by time per neuron), the membranes (relative to each neuron's
    /// leak) at the CADC samples appended to `values` sample-major (`values[k N + n]`).
    /// At each kick time (where `noisy`), `kick` fills the kicks of the `N` neurons, which
    /// are added to their currents. At equal times a sample comes before an event, an
    /// event before a kick.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming `chip` when a neuron fires more than
    /// [`MAX_SPIKES_PER_NEURON`] times.
    pub fn run(
        &self,
        sc: &mut Scratch,
        spikes: &mut Vec<(f64, u32)>,
        values: &mut Vec<f64>,
        kick: &mut dyn FnMut(&mut [f64]),
    ) -> Result<()> {
        let n = self.neurons.len();
        for v in [&mut sc.u, &mut sc.i, &mut sc.u_next, &mut sc.i_next] {
            v.clear();
            v.resize(n, 0.0);
        }
        sc.ref_until.clear();
        sc.ref_until.resize(n, f64::NEG_INFINITY);
        sc.flag.clear();
        sc.flag.resize(n, 0);
        sc.count.clear();
        sc.count.resize(n, 0);
        let time = self.time;
        let n_kicks = if self.noisy { time.kicks() } else { 0 };
        let mut kicks = std::mem::take(&mut sc.kick);
        kicks.resize(n, 0.0);
        let (mut now, mut ei, mut ki, mut si) = (0.0, 0, 1, 0);
        loop {
            let te = self.events.get(ei).map_or(f64::INFINITY, |e| e.0);
            let tk = if ki <= n_kicks {
                ki as f64 * time.kick
            } else {
                f64::INFINITY
            };
            let ts = if si < self.samples {
                si as f64 * time.sample
            } else {
                f64::INFINITY
            };
            let next = te.min(tk).min(ts);
            if next > time.end {
                self.advance(now, time.end, None, sc, spikes)?;
                break;
            }
            // the currents' jump at `next` (none at a sample): an event's weights or a kick
            let jump = if ts == next {
                None
            } else if te == next {
                let j = self.events[ei].1 as usize;
                Some(&self.weights_t[j * n..(j + 1) * n])
            } else {
                kick(&mut kicks);
                Some(&kicks[..])
            };
            if next > now {
                // the jump is added to the interval's end state in the same pass
                self.advance(now, next, jump, sc, spikes)?;
                now = next;
            } else if let Some(x) = jump {
                add_to(&mut sc.i, x);
            }
            if ts == next {
                values.extend_from_slice(&sc.u);
                si += 1;
            } else if te == next {
                ei += 1;
            } else {
                ki += 1;
            }
        }
        // samples after the end (none for the chip's own sample times)
        for _ in si..self.samples {
            values.extend_from_slice(&sc.u);
        }
        sc.kick = kicks;
        Ok(())
    }

    /// Advances every neuron from `from` to `to` (units; nothing unless `to > from`), then
    /// adds `jump` (per neuron) to the currents.
    fn advance(
        &self,
        from: f64,
        to: f64,
        jump: Option<&[f64]>,
        sc: &mut Scratch,
        spikes: &mut Vec<(f64, u32)>,
    ) -> Result<()> {
        let time = self.time;
        let steps = to - from;
        if steps <= 0.0 {
            if let Some(x) = jump {
                add_to(&mut sc.i, x);
            }
            return Ok(());
        }
        let d = steps * time.unit;
        let core = self.core;
        let prop = if time.ticks && (steps as usize) < core.table.len() {
            &core.table[steps as usize]
        } else if !time.ticks && (steps - time.kick).abs() <= 1e-12 * steps {
            &core.kick
        } else {
            sc.prop.fill(self.neurons, d);
            &sc.prop
        };
        let n = self.neurons.len();
        if core.linear {
            // a non-spiking layer: the closed-form step alone (no flags, no search)
            let (u, i) = (&mut sc.u[..n], &mut sc.i[..n]);
            let (e_a, e_b, a_phi) = (&prop.e_a[..n], &prop.e_b[..n], &prop.a_phi[..n]);
            for k in 0..n {
                (u[k], i[k]) = (u[k] * e_a[k] + i[k] * a_phi[k], i[k] * e_b[k]);
            }
            if let Some(x) = jump {
                add_to(i, x);
            }
            return Ok(());
        }
        let t0 = from * time.unit;
        let props = (
            &prop.e_a[..n],
            &prop.e_b[..n],
            &prop.a_phi[..n],
            &prop.rise[..n],
        );
        let any = step_neurons(
            t0,
            props,
            (&core.margin[..n], &sc.ref_until[..n], self.refractory > 0.0),
            (&sc.u[..n], &sc.i[..n]),
            jump,
            (&mut sc.u_next[..n], &mut sc.i_next[..n]),
            &mut sc.flag[..n],
        );
        if any {
            let stop = to * time.unit;
            let (e_a, e_b, a_phi, _) = props;
            // flags in chunks: most chunks hold none
            let chunks = sc.flag.chunks(8).enumerate();
            let flagged = chunks
                .filter(|(_, c)| c.iter().fold(0, |a, &f| a | f) != 0)
                .flat_map(|(c, f)| {
                    (0..f.len())
                        .filter(move |&k| f[k] != 0)
                        .map(move |k| c * 8 + k)
                });
            for k in flagged {
                let mut s = NeuronState {
                    t: t0,
                    u: sc.u[k],
                    i: sc.i[k],
                    ref_until: sc.ref_until[k],
                };
                let count = &mut sc.count[k];
                advance_neuron(
                    &self.neurons[k],
                    self.refractory,
                    &mut s,
                    stop,
                    [e_a[k], e_b[k], a_phi[k]],
                    &mut |t| {
                        *count += 1;
                        if *count > MAX_SPIKES_PER_NEURON {
                            return Err(too_many_spikes(*count));
                        }
                        spikes.push((t, k as u32));
                        Ok(())
                    },
                )?;
                sc.u_next[k] = s.u;
                sc.i_next[k] = match jump {
                    Some(x) => s.i + x[k],
                    None => s.i,
                };
                sc.ref_until[k] = s.ref_until;
            }
        }
        std::mem::swap(&mut sc.u, &mut sc.u_next);
        std::mem::swap(&mut sc.i, &mut sc.i_next);
        Ok(())
    }
}

/// The propagators of an interval for every neuron: `e^{-a d}`, `e^{-b d}`, `a φ(d)`, and
/// the bound of `a φ` over it ([`rise`]).
type Props<'a> = (&'a [f64], &'a [f64], &'a [f64], &'a [f64]);
/// Per neuron: crossing margin and end of the refractory period; whether a refractory
/// period is set.
type Bounds<'a> = (&'a [f64], &'a [f64], bool);
/// Per neuron: `u` and `I`.
type State<'a> = (&'a [f64], &'a [f64]);
/// Per neuron: `u` and `I` to write.
type StateMut<'a> = (&'a mut [f64], &'a mut [f64]);

/// Advances every neuron over an interval from `t0` (s) in closed form, from `now` into
/// `next` (with `jump` added to the end currents), and flags (1 in `flag`) the neurons that
/// may cross their threshold on it ([`crossing_possible`], on the state before the jump) or
/// are refractory; returns whether any is flagged. Compiled for
/// AVX2 where the CPU has it (no FMA: the same IEEE operations as the baseline build, so
/// bit-identical results on every CPU).
fn step_neurons(
    t0: f64,
    props: Props<'_>,
    bounds: Bounds<'_>,
    now: State<'_>,
    jump: Option<&[f64]>,
    next: StateMut<'_>,
    flag: &mut [u64],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2")]
        fn avx2(
            t0: f64,
            props: Props<'_>,
            bounds: Bounds<'_>,
            now: State<'_>,
            jump: Option<&[f64]>,
            next: StateMut<'_>,
            flag: &mut [u64],
        ) -> bool {
            match jump {
                Some(x) => step_neurons_body::<true>(t0, props, bounds, now, x, next, flag),
                None => step_neurons_body::<false>(t0, props, bounds, now, &[], next, flag),
            }
        }
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (detected above).
            return unsafe { avx2(t0, props, bounds, now, jump, next, flag) };
        }
    }
    match jump {
        Some(x) => step_neurons_body::<true>(t0, props, bounds, now, x, next, flag),
        None => step_neurons_body::<false>(t0, props, bounds, now, &[], next, flag),
    }
}

/// The loop of [`step_neurons`]; `JUMP`: `jump` is added to the end currents.
#[inline(always)]
fn step_neurons_body<const JUMP: bool>(
    t0: f64,
    (e_a, e_b, a_phi, rise): Props<'_>,
    (margin, ref_until, refractory): Bounds<'_>,
    (u, i): State<'_>,
    jump: &[f64],
    (u_next, i_next): StateMut<'_>,
    flag: &mut [u64],
) -> bool {
    let n = u.len();
    let (e_a, e_b, a_phi, rise) = (&e_a[..n], &e_b[..n], &a_phi[..n], &rise[..n]);
    let (margin, ref_until, i) = (&margin[..n], &ref_until[..n], &i[..n]);
    let (u_next, i_next, flag) = (&mut u_next[..n], &mut i_next[..n], &mut flag[..n]);
    let jump = if JUMP { &jump[..n] } else { jump };
    let mut any = 0;
    for k in 0..n {
        let (u0, i0) = (u[k], i[k]);
        let (u1, i1) = (u0 * e_a[k] + i0 * a_phi[k], i0 * e_b[k]);
        let f = crossing_possible((u0, i0), (u1, i1), rise[k], margin[k])
            | (refractory & (t0 < ref_until[k]));
        u_next[k] = u1;
        i_next[k] = if JUMP { i1 + jump[k] } else { i1 };
        flag[k] = f as u64;
        any |= f as u64;
    }
    any != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn neuron(tau_mem: f64, tau_syn: f64, theta: f64) -> NeuronPhys {
        let kinetics = Kinetics {
            a: 1.0 / tau_mem,
            b: 1.0 / tau_syn,
            theta,
            reset: 0.0,
        };
        let peak_time = kinetics.extremum(0.0, 1.0).expect("a PSP has a peak");
        NeuronPhys {
            kinetics,
            leak: 0.0,
            spiking: true,
            cadc_offset: 0.0,
            psp_peak: kinetics.u_at(0.0, 1.0, peak_time),
            psp_peak_time: peak_time,
        }
    }

    /// Wherever [`crossing_possible`] rules a crossing out, the exact engine's search
    /// (`first_crossing`, no bounds) finds none: 400 000 random intervals, with states
    /// around the threshold, strong currents of both signs, intervals from 0.1 to 30 µs and
    /// time constants from 1 to 30 µs (either larger).
    #[test]
    fn ruled_out_intervals_hold_no_crossing() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let (mut ruled_out, mut crossings, mut interior) = (0, 0, 0);
        for _ in 0..400_000 {
            let p = neuron(
                rng.random_range(1e-6..30e-6),
                rng.random_range(1e-6..30e-6),
                rng.random_range(0.2..1.5),
            );
            let (u0, i0) = (rng.random_range(-1.0..1.6), rng.random_range(-2.0..5.0));
            let d = rng.random_range(1e-7..30e-6);
            let [e_a, e_b, a_phi] = propagator(&p.kinetics, d);
            let u1 = u0 * e_a + i0 * a_phi;
            let possible = crossing_possible(
                (u0, i0),
                (u1, i0 * e_b),
                rise(d, a_phi, p.psp_peak_time, p.psp_peak),
                margin(&p),
            );
            let found = p.kinetics.first_crossing(u0, i0, d);
            if !possible {
                ruled_out += 1;
                assert!(
                    found.is_none(),
                    "{p:?} from ({u0}, {i0}) over {d}: {found:?}"
                );
            }
            crossings += usize::from(found.is_some());
            // a crossing with both ends below the threshold: only an interior maximum
            interior +=
                usize::from(found.is_some() && u0 < p.kinetics.theta && u1 < p.kinetics.theta);
        }
        // both outcomes are common, so the test covers both sides of each bound
        assert!(
            ruled_out > 100_000 && crossings > 50_000 && interior > 1000,
            "{ruled_out} {crossings} {interior}"
        );
    }

    /// [`advance_neuron`]'s crossings (the exact engine's pre-checks and bracket, then
    /// [`solve`]) against the exact engine's search ([`Kinetics::first_crossing`]) on
    /// 200 000 random intervals: the same intervals hold a crossing; the times agree to
    /// within `2e-12 d` ([`solve`]'s bound), and the current after the spike is `i0 e^{-b s}`
    /// at the returned time to rounding.
    #[test]
    fn solver_agrees_with_the_exact_engine() {
        let mut rng = ChaCha8Rng::seed_from_u64(10);
        let (mut crossings, mut worst) = (0, 0.0f64);
        for _ in 0..200_000 {
            let p = neuron(
                rng.random_range(1e-6..30e-6),
                rng.random_range(1e-6..30e-6),
                rng.random_range(0.2..1.5),
            );
            let (u0, i0) = (rng.random_range(-1.0..1.2), rng.random_range(-2.0..5.0));
            let d = rng.random_range(1e-7..30e-6);
            let mut s = NeuronState::rest();
            (s.u, s.i) = (u0, i0);
            let mut found = Vec::new();
            let whole = advance_neuron(&p, 0.0, &mut s, d, propagator(&p.kinetics, d), &mut |t| {
                found.push(t);
                Ok(())
            })
            .expect("no spike limit");
            let exact = p.kinetics.first_crossing(u0, i0, d);
            assert_eq!(!found.is_empty(), exact.is_some(), "{p:?} ({u0}, {i0}) {d}");
            assert_eq!(whole, found.is_empty());
            if let (Some(&t), Some(x)) = (found.first(), exact) {
                crossings += 1;
                let err = (t - x).abs() / d;
                worst = worst.max(err);
                assert!(err <= 2e-12, "{p:?} ({u0}, {i0}) {d}: {t} vs {x}");
                if found.len() == 1 && p.kinetics.theta > 0.0 {
                    // no second spike: the state at the end is the reset's, carried on
                    let i_end = p.kinetics.i_at(p.kinetics.i_at(i0, t), d - t);
                    // (to rounding of `i0`: `propagator` gives the faster decay to
                    // absolute, not relative, precision)
                    assert!((s.i - i_end).abs() <= 1e-14 * i0.abs(), "{} {}", s.i, i_end);
                }
            }
        }
        assert!(crossings > 20_000, "{crossings}");
        eprintln!("{crossings} crossings, worst time error {worst:e} of the interval");
    }
}

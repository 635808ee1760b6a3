//! A BrainScaleS-2-like mock chip: a continuous-time analog core with seeded
//! non-idealities, each with a switch ([`MockConfig`]).
//!
//! # Analog core
//! Every neuron follows docs/spec.md §4 in continuous time with its own parameters: with
//! `u = V - leak_n`, between events `u(s) = u0 e^{-s/tau_mem,n} + (1/tau_mem,n) I0 φ(s)`,
//! `I(s) = I0 e^{-s/tau_syn,n}` (the exact engine's closed form,
//! [`eventprop_exact::dynamics::Kinetics`]); a presynaptic spike of `j` at `t` adds
//! `W_eff[n, j]` to `I_n` at `t`; `V` crossing `threshold_n` from below is a spike (found by
//! the exact engine's bracketed Newton search), after which `V = reset_n`, held for the
//! refractory period if one is set. The integrator readout has no threshold. So spikes fall
//! off the time grid — the first difference from a time-stepped model.
//!
//! # Non-idealities (defaults in [`MockConfig::default`], reasoning in DESIGN.md)
//! * **weights**: the host writes `q = clamp(round(weight_scale · w), -63, 63)` (signed
//!   6-bit: 127 levels; rounding half away from zero); the chip applies
//!   `W_eff = q · weight_gain / design_weight_scale · g_nj` (model units; 32 levels per
//!   model unit by design, `weight_gain` the chip's deviation from it);
//! * **fixed pattern** (drawn once from `ChaCha8(chip_seed)`, the same chip on every run):
//!   `tau_{mem,syn},n = tau (1 + cv ξ)`, `threshold_n = threshold + threshold_offset +
//!   threshold_std (threshold - leak) ξ`, `leak_n`, `reset_n` likewise, synapse gains
//!   `g_nj = 1 + synapse_gain_cv ξ`, a CADC offset per neuron (`ξ ~ N(0, 1)`, taus and gains
//!   bounded below by 0.2 of nominal);
//! * **temporal membrane noise**: current kicks `σ ξ` every `noise_dt` on every neuron, σ
//!   chosen so that the free membrane's stationary standard deviation is `noise_std` (model
//!   units), `ξ` standard normal by inverse transform on 2^12 equiprobable bins
//!   (DESIGN.md "Mock chip model"); seeded from the chip seed, the configuration and the sample
//!   (reproducible; two samples or two weight sets see different noise);
//! * **timestamps** of input and recorded spikes on the 125 MHz clock:
//!   `t_q = floor(t · clock_hz) / clock_hz` (downstream layers receive `t_q`);
//! * **CADC**: the membrane sampled every `cadc_period` from 0 to `t_sim`, as
//!   `code = rest + offset_n + (V - leak) (cadc_threshold - cadc_leak) / (threshold - leak)`,
//!   rounded and clamped to `[0, 255]` (8 bit), with `rest = cadc_leak` for spiking
//!   neurons and `rest = cadc_readout_leak` for the non-spiking readout (its own operating
//!   point: no threshold, its scores only rise from rest);
//! * **refractory period** (optional, default 0 = none, as the software model).

mod analog;
mod noise;

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use eventprop_exact::dynamics::{phi, Kinetics};
use rand_xoshiro::Xoshiro256PlusPlus;

use analog::{
    advance_neuron, propagator, too_many_spikes, LayerCore, LayerRun, NeuronState, Scratch,
    TimeBase,
};
pub use analog::{NeuronPhys, MAX_SPIKES_PER_NEURON};

use crate::error::{Error, Result};
use crate::{Chip, ChipKind, Configuration, GridMap, LayerRecording, Recording, SampledTrace};
use eventprop_core::spec::{NetworkSpec, Readout};
use eventprop_core::Spike;

/// Largest weight level of the signed 6-bit synapse (levels `-63 ..= 63`).
pub const MAX_LEVEL: i8 = 63;
/// Largest CADC code (8 bit).
pub const CADC_MAX: f64 = 255.0;
/// The default [`MockConfig::cadc_readout_leak`]: the readout's rest code (chosen on the
/// validation split of HIL training, DESIGN.md "Readout operating point").
pub const READOUT_REST_CODE: f64 = 20.0;

/// The mock chip's non-idealities. Field names are the TOML keys of `--chip-config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MockConfig {
    /// Signed 6-bit weights with saturation (on) or the weights as given (off).
    pub quantize_weights: bool,
    /// Weight levels per model unit the chip is designed for: a level adds
    /// `weight_gain / design_weight_scale` to the synaptic current (model units).
    pub design_weight_scale: f64,
    /// The chip's synaptic efficacy relative to its design (1 = as designed).
    pub weight_gain: f64,
    /// Fixed-pattern variation of neurons and synapses (on) or nominal parameters (off).
    pub fixed_pattern: bool,
    /// Relative std of the per-neuron `tau_mem`.
    pub tau_mem_cv: f64,
    /// Relative std of the per-neuron `tau_syn`.
    pub tau_syn_cv: f64,
    /// Std of the per-neuron threshold, in units of `threshold - leak`.
    pub threshold_std: f64,
    /// Std of the per-neuron leak, in units of `threshold - leak`.
    pub leak_std: f64,
    /// Std of the per-neuron reset, in units of `threshold - leak`.
    pub reset_std: f64,
    /// Relative std of the per-synapse gain.
    pub synapse_gain_cv: f64,
    /// A global threshold offset of the chip (model units; 0 = none).
    pub threshold_offset: f64,
    /// Temporal membrane noise (on) or none (off).
    pub noise: bool,
    /// Stationary std of the free membrane caused by the noise (model units).
    pub noise_std: f64,
    /// Interval of the noise kicks (s).
    pub noise_dt: f64,
    /// Spike timestamps on the chip clock (on) or exact (off).
    pub quantize_time: bool,
    /// The chip clock (Hz).
    pub clock_hz: f64,
    /// CADC sampling period (s; the hardware needs ≥ 1.7 µs).
    pub cadc_period: f64,
    /// 8-bit CADC codes, rounded and clamped to `[0, 255]` (on), or unrounded (off).
    pub cadc_quantize: bool,
    /// Per-neuron CADC offsets (on) or none (off).
    pub cadc_offset: bool,
    /// Std of the per-neuron CADC offset (codes).
    pub cadc_offset_std: f64,
    /// CADC code of the model's leak potential.
    pub cadc_leak: f64,
    /// CADC code of the model's threshold.
    pub cadc_threshold: f64,
    /// CADC code of the rest potential of the non-spiking readout (the leaky integrator):
    /// its own operating point, as a chip sets each neuron's leak potential and the readout
    /// has no threshold to keep a distance to; the same codes per model unit as the
    /// spiking neurons (`cadc_threshold - cadc_leak` per `threshold - leak`). A spiking
    /// output layer uses `cadc_leak`.
    pub cadc_readout_leak: f64,
    /// Refractory period after a spike (s; 0 = none).
    pub refractory: f64,
    /// Record the hidden layers' membranes too (the output layer's always is).
    pub record_hidden_membrane: bool,
}

impl Default for MockConfig {
    /// Every non-ideality on with the values DESIGN.md justifies: 6-bit weights, 32 levels
    /// per model unit (the largest weight is 63/32 ≈ 1.97 threshold units), gain 1;
    /// fixed pattern tau 5 %, threshold 5 %, leak and reset 2 %, synapse gain 10 %; noise
    /// 2 % of the threshold, kicked every 1 µs; 125 MHz timestamps; CADC every 2 µs, 8 bit,
    /// leak at 80, threshold at 125, the non-spiking readout's rest at 20 ([`READOUT_REST_CODE`]),
    /// offsets 2 codes; no refractory period.
    fn default() -> Self {
        Self {
            quantize_weights: true,
            design_weight_scale: 32.0,
            weight_gain: 1.0,
            fixed_pattern: true,
            tau_mem_cv: 0.05,
            tau_syn_cv: 0.05,
            threshold_std: 0.05,
            leak_std: 0.02,
            reset_std: 0.02,
            synapse_gain_cv: 0.1,
            threshold_offset: 0.0,
            noise: true,
            noise_std: 0.02,
            noise_dt: 1e-6,
            quantize_time: true,
            clock_hz: 125e6,
            cadc_period: 2e-6,
            cadc_quantize: true,
            cadc_offset: true,
            cadc_offset_std: 2.0,
            cadc_leak: 80.0,
            cadc_threshold: 125.0,
            cadc_readout_leak: READOUT_REST_CODE,
            refractory: 0.0,
            record_hidden_membrane: false,
        }
    }
}

impl MockConfig {
    /// Every non-ideality off (a continuous-time chip with nominal parameters, exact
    /// timestamps and unrounded readout): the base of the switch tests.
    pub fn clean() -> Self {
        Self {
            quantize_weights: false,
            fixed_pattern: false,
            noise: false,
            quantize_time: false,
            cadc_quantize: false,
            cadc_offset: false,
            refractory: 0.0,
            ..Self::default()
        }
    }

    /// Checks every value.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the key (`chip.<key>`).
    ///
    /// ```
    /// use eventprop_chip::mock::MockConfig;
    /// let err = MockConfig { cadc_period: 0.0, ..MockConfig::default() }.validate().unwrap_err();
    /// assert_eq!(err.to_string(), "chip.cadc_period: expected finite and > 0, got 0");
    /// ```
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("chip.weight_gain", self.weight_gain),
            ("chip.design_weight_scale", self.design_weight_scale),
            ("chip.noise_dt", self.noise_dt),
            ("chip.clock_hz", self.clock_hz),
            ("chip.cadc_period", self.cadc_period),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::invalid(name, "finite and > 0", v));
            }
        }
        let (lo, hi) = CLOCK_HZ_RANGE;
        if !(lo..=hi).contains(&self.clock_hz) {
            return Err(Error::invalid(
                "chip.clock_hz",
                format!("in [{lo:e}, {hi:e}] Hz"),
                self.clock_hz,
            ));
        }
        for (name, v, hi) in [
            ("chip.weight_gain", self.weight_gain, MAX_WEIGHT_GAIN),
            (
                "chip.design_weight_scale",
                self.design_weight_scale,
                MAX_DESIGN_WEIGHT_SCALE,
            ),
            ("chip.noise_dt", self.noise_dt, MAX_PERIOD_S),
            ("chip.cadc_period", self.cadc_period, MAX_PERIOD_S),
        ] {
            if v > hi {
                return Err(Error::invalid(name, format!("<= {hi:e}"), v));
            }
        }
        for (name, v) in [
            ("chip.tau_mem_cv", self.tau_mem_cv),
            ("chip.tau_syn_cv", self.tau_syn_cv),
            ("chip.threshold_std", self.threshold_std),
            ("chip.leak_std", self.leak_std),
            ("chip.reset_std", self.reset_std),
            ("chip.synapse_gain_cv", self.synapse_gain_cv),
        ] {
            if !(v.is_finite() && (0.0..=0.5).contains(&v)) {
                return Err(Error::invalid(name, "in [0, 0.5]", v));
            }
        }
        for (name, v, hi) in [
            ("chip.noise_std", self.noise_std, MAX_MODEL_UNITS),
            ("chip.cadc_offset_std", self.cadc_offset_std, CADC_MAX),
            ("chip.refractory", self.refractory, MAX_PERIOD_S),
        ] {
            if !(v.is_finite() && (0.0..=hi).contains(&v)) {
                return Err(Error::invalid(name, format!("in [0, {hi:e}]"), v));
            }
        }
        if !(self.threshold_offset.is_finite() && self.threshold_offset.abs() <= MAX_MODEL_UNITS) {
            return Err(Error::invalid(
                "chip.threshold_offset",
                format!("in [-{MAX_MODEL_UNITS:e}, {MAX_MODEL_UNITS:e}]"),
                self.threshold_offset,
            ));
        }
        for (name, v) in [
            ("chip.cadc_leak", self.cadc_leak),
            ("chip.cadc_threshold", self.cadc_threshold),
            ("chip.cadc_readout_leak", self.cadc_readout_leak),
        ] {
            if !(v.is_finite() && (0.0..=CADC_MAX).contains(&v)) {
                return Err(Error::invalid(name, "in [0, 255]", v));
            }
        }
        if self.cadc_threshold <= self.cadc_leak {
            return Err(Error::invalid(
                "chip.cadc_threshold",
                format!("> chip.cadc_leak = {}", self.cadc_leak),
                self.cadc_threshold,
            ));
        }
        Ok(())
    }

    /// Checks the periods against a simulated window of `steps` steps of `dt` (after
    /// [`MockConfig::validate`]): at least one CADC sample period and one noise-kick
    /// interval fit in the window (`period <= steps · dt`), at most
    /// [`MAX_EVENTS_PER_STEP`] samples or kicks fall in one step (`period >= dt /
    /// MAX_EVENTS_PER_STEP`), at most [`MAX_CADC_SAMPLES`] CADC samples and
    /// [`MAX_NOISE_KICKS`] kicks per window, and the chip clock ticks at least once per
    /// step (`clock_hz · dt >= 1`) when spike times are on it.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the key (`chip.<key>`), its value and the bound.
    ///
    /// ```
    /// use eventprop_chip::mock::MockConfig;
    /// let c = MockConfig { cadc_period: 1e-12, ..MockConfig::default() };
    /// let err = c.validate_window(1e-6, 38).unwrap_err();
    /// assert!(err.to_string().starts_with("chip.cadc_period: expected >= "), "{err}");
    /// ```
    pub fn validate_window(&self, dt: f64, steps: usize) -> Result<()> {
        if !(dt.is_finite() && dt > 0.0) {
            return Err(Error::invalid("dt", "finite and > 0", dt));
        }
        if steps == 0 {
            return Err(Error::invalid("steps", ">= 1", 0));
        }
        let t_sim = steps as f64 * dt;
        for (name, p, most) in [
            ("chip.cadc_period", self.cadc_period, MAX_CADC_SAMPLES),
            ("chip.noise_dt", self.noise_dt, MAX_NOISE_KICKS),
        ] {
            if p > t_sim * (1.0 + 1e-9) {
                return Err(Error::invalid(
                    name,
                    format!("<= the simulated window {t_sim:e} s (at least one per window)"),
                    p,
                ));
            }
            let lo = (dt / MAX_EVENTS_PER_STEP as f64).max(t_sim / most as f64);
            if p < lo {
                return Err(Error::invalid(
                    name,
                    format!(
                        ">= {lo:e} s (at most {MAX_EVENTS_PER_STEP} per step of {dt:e} s and \
                         {most} per window of {t_sim:e} s)"
                    ),
                    p,
                ));
            }
        }
        if self.quantize_time && self.clock_hz * dt < 1.0 {
            return Err(Error::invalid(
                "chip.clock_hz",
                format!(">= 1/dt = {:e} Hz (at least one tick per step)", 1.0 / dt),
                self.clock_hz,
            ));
        }
        Ok(())
    }
}

/// The chip clock's range, Hz (`chip.clock_hz`; the hardware's is 125 MHz).
pub const CLOCK_HZ_RANGE: (f64, f64) = (1e3, 1e12);
/// The longest `chip.noise_dt`, `chip.cadc_period` and `chip.refractory` (s), before the
/// window is known ([`MockConfig::validate_window`] bounds the periods by the window).
pub const MAX_PERIOD_S: f64 = 1.0;
/// The largest `chip.weight_gain`.
pub const MAX_WEIGHT_GAIN: f64 = 1e3;
/// The largest `chip.design_weight_scale` (levels per model unit).
pub const MAX_DESIGN_WEIGHT_SCALE: f64 = 1e6;
/// The largest magnitude of `chip.noise_std` and `chip.threshold_offset` (model units).
pub const MAX_MODEL_UNITS: f64 = 1e6;
/// The most CADC samples or noise kicks in one grid step.
pub const MAX_EVENTS_PER_STEP: usize = 100;
/// The most CADC samples in one window (each is stored per neuron and sample).
pub const MAX_CADC_SAMPLES: usize = 100_000;
/// The most noise kicks in one window.
pub const MAX_NOISE_KICKS: usize = 1_000_000;

/// The host-side settings of a chip: how model weights become levels and how readout codes
/// become model units (from [`crate::calibrate`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HostScales {
    /// Weight levels per model unit.
    pub weight_scale: f64,
    /// CADC code of the model's 0 (subtracted) for the spiking layers.
    pub offset: f64,
    /// CADC code of the model's 0 for the non-spiking readout layer (its own operating
    /// point, [`MockConfig::cadc_readout_leak`]).
    pub readout_offset: f64,
    /// Model units per CADC code.
    pub trace_scale: f64,
}

/// One layer as built on this chip instance.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerPhys {
    /// The neurons.
    pub neurons: Vec<NeuronPhys>,
    /// Per-synapse gain `g_nj` `(N, N_in)`.
    pub gain: Array2<f64>,
    /// Std of a noise kick (current, model units).
    pub kick_std: f64,
}

/// A mock chip instance: the network, the non-idealities, the fixed pattern of its seed,
/// and the host's scales.
#[derive(Debug, Clone)]
pub struct MockChip {
    spec: NetworkSpec,
    config: MockConfig,
    seed: u64,
    dt: f64,
    steps: usize,
    t_sim: f64,
    layers: Vec<LayerPhys>,
    /// The layers' arrays and propagator tables for the layer core.
    cores: Vec<LayerCore>,
    /// The time base of a run (ticks of the chip clock where every breakpoint is on it).
    time: TimeBase,
    host: HostScales,
}

/// `Σ_{m ≥ 1} (a φ(a, b, m h))²`: the membrane variance per unit kick variance of current
/// kicks every `h` on a free neuron (stationary, sampled just before a kick).
fn kick_variance_factor(a: f64, b: f64, h: f64) -> f64 {
    let horizon = 40.0 / a.min(b);
    if horizon / h > 1e6 {
        // kicks much denser than the time constants: the sum is (1/h) ∫ (a φ)² ds =
        // a / (2 b (a + b) h) up to O(h²) (Euler–Maclaurin, the integrand and its slope
        // vanish at 0), and the loop below would run for ever
        return a / (2.0 * b * (a + b) * h);
    }
    let mut sum = 0.0;
    let mut m = 1.0;
    while m * h < horizon {
        let r = a * phi(a, b, m * h);
        sum += r * r;
        m += 1.0;
    }
    sum
}

/// Buffers of [`MockChip::run_sample`], reused across the samples of a worker thread.
#[derive(Debug, Default)]
struct SampleScratch {
    core: Scratch,
    events: Vec<(f64, u32)>,
    found: Vec<(f64, u32)>,
    values: Vec<f64>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<SampleScratch> = Default::default();
}

/// What one sample recorded in one layer: spikes and (where recorded) the traces.
type SampleLayer = (Vec<Spike>, Option<Vec<SampledTrace>>);

/// The per-neuron simulation's state ([`MockChip::simulate_neuron`]): the neuron, and
/// propagator caches for its interval lengths.
struct State {
    neuron: NeuronState,
    /// The last interval and its propagator: intervals of a recurring length (the kick
    /// interval, a fine sampling period) reuse it, to rounding of their times (below 1e-12
    /// relative, which the cache accepts).
    cache: (f64, [f64; 3]),
    /// Whether `cache` served a later interval (a recurring length).
    cache_reused: bool,
    /// Propagators of recurring interval lengths (cache entries that were reused), by
    /// their exact length, a ring of [`RECENT`]: where the cache misses (the kick interval
    /// after an input event between two kicks), a length seen before takes its propagator
    /// from here instead of recomputing it — the same numbers, since the propagator is a
    /// function of the length.
    recent: [(f64, [f64; 3]); RECENT],
    next: usize,
}

/// Entries of [`State::recent`].
const RECENT: usize = 4;

impl State {
    /// Advances to `stop` ([`advance_neuron`]), with the spikes appended to `spikes`.
    #[inline(always)]
    fn advance(
        &mut self,
        p: &NeuronPhys,
        refractory: f64,
        stop: f64,
        spikes: &mut Vec<f64>,
    ) -> Result<()> {
        let d = stop - self.neuron.t;
        if d <= 0.0 {
            return Ok(());
        }
        let hit = (d - self.cache.0).abs() <= 1e-12 * d;
        let prop = if hit {
            self.cache.1
        } else if let Some(&(_, p)) = self.recent.iter().find(|r| r.0 == d) {
            p
        } else {
            propagator(&p.kinetics, d)
        };
        let whole = advance_neuron(p, refractory, &mut self.neuron, stop, prop, &mut |t| {
            spikes.push(t);
            if spikes.len() > MAX_SPIKES_PER_NEURON {
                return Err(too_many_spikes(spikes.len()));
            }
            Ok(())
        })?;
        if whole {
            if hit {
                self.cache_reused = true;
            } else {
                if self.cache_reused && !self.recent.iter().any(|r| r.0 == self.cache.0) {
                    self.recent[self.next] = self.cache;
                    self.next = (self.next + 1) % RECENT;
                }
                self.cache = (d, prop);
                self.cache_reused = false;
            }
        }
        Ok(())
    }
}

/// splitmix64 step: a well-mixed 64-bit hash of `x`.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn hash_f64s<'a>(h: u64, values: impl IntoIterator<Item = &'a f64>) -> u64 {
    values.into_iter().fold(h, |h, v| mix(h ^ v.to_bits()))
}

/// Rounds half away from zero and clamps to the 6-bit range.
pub fn quantize_level(x: f64) -> i8 {
    x.round().clamp(-(MAX_LEVEL as f64), MAX_LEVEL as f64) as i8
}

impl MockChip {
    /// A chip instance for `spec` on a grid of `steps` × `dt` (window `t_sim = steps dt`),
    /// with non-idealities `config` and fixed pattern from `seed`, and nominal host scales
    /// (the design weight scale; offset and trace scale from the nominal CADC levels). Use
    /// [`MockChip::with_host`] to apply a calibration.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an invalid spec or config, `dt ≤ 0` or `steps = 0`.
    pub fn new(
        spec: NetworkSpec,
        config: MockConfig,
        seed: u64,
        dt: f64,
        steps: usize,
    ) -> Result<Self> {
        spec.validate()?;
        config.validate()?;
        config.validate_window(dt, steps)?;
        let span = spec.lif.threshold - spec.lif.leak;
        if span.is_nan() || span <= 0.0 {
            return Err(Error::invalid(
                "threshold",
                format!("> leak = {} on the mock chip", spec.lif.leak),
                spec.lif.threshold,
            ));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut offset_rng = ChaCha8Rng::seed_from_u64(mix(seed ^ 0x0CAD_C0FF));
        let mut normal = move || -> f64 { rng.sample(StandardNormal) };
        let c = &config;
        let fp = c.fixed_pattern;
        let mut layers = Vec::new();
        let shapes = spec.weight_shapes();
        for (l, &(n, n_in)) in shapes.iter().enumerate() {
            let is_out = l + 1 == shapes.len();
            let (lif, spiking) = match (is_out, spec.readout) {
                (false, _) => (spec.lif, true),
                (true, Readout::Spiking(o)) => (o, true),
                (true, Readout::Integrator { tau_syn, tau_mem }) => (
                    eventprop_core::Lif {
                        tau_syn,
                        tau_mem,
                        ..spec.lif
                    },
                    false,
                ),
            };
            // Draw every number whatever the switches, so that a switch changes only its
            // own part of the pattern.
            let mut draw = |cv: f64| {
                let x = normal();
                if fp {
                    cv * x
                } else {
                    0.0
                }
            };

            let neurons = (0..n)
                .map(|_| {
                    let tau_mem = lif.tau_mem * (1.0 + draw(c.tau_mem_cv)).max(0.2);
                    let tau_syn = lif.tau_syn * (1.0 + draw(c.tau_syn_cv)).max(0.2);
                    let threshold =
                        lif.threshold + c.threshold_offset + span * draw(c.threshold_std);
                    let leak = lif.leak + span * draw(c.leak_std);
                    // keep reset below the threshold (a chip's reset that is not would fire
                    // forever; hardware calibration avoids it too)
                    let reset = (lif.reset + span * draw(c.reset_std)).min(threshold - 0.05 * span);
                    // the CADC offsets have their own switch: their own stream
                    let off: f64 = offset_rng.sample(StandardNormal);
                    let kinetics = Kinetics {
                        a: 1.0 / tau_mem,
                        b: 1.0 / tau_syn,
                        theta: if spiking {
                            threshold - leak
                        } else {
                            f64::INFINITY
                        },
                        reset: reset - leak,
                    };
                    let peak_time = kinetics.extremum(0.0, 1.0);
                    NeuronPhys {
                        kinetics,
                        psp_peak: peak_time.map_or(1.0, |s| kinetics.u_at(0.0, 1.0, s)),
                        psp_peak_time: peak_time.unwrap_or(0.0),
                        leak,
                        spiking,
                        cadc_offset: if c.cadc_offset {
                            c.cadc_offset_std * off
                        } else {
                            0.0
                        },
                    }
                })
                .collect();
            let gain = Array2::from_shape_simple_fn((n, n_in), || {
                (1.0 + draw(c.synapse_gain_cv)).max(0.2)
            });
            let (a, b) = (1.0 / lif.tau_mem, 1.0 / lif.tau_syn);
            let kick_std = if c.noise {
                c.noise_std / kick_variance_factor(a, b, c.noise_dt).sqrt()
            } else {
                0.0
            };
            layers.push(LayerPhys {
                neurons,
                gain,
                kick_std,
            });
        }
        let g = (config.cadc_threshold - config.cadc_leak) / span;
        let host = HostScales {
            weight_scale: config.design_weight_scale,
            offset: config.cadc_leak - spec.lif.leak * g,
            readout_offset: config.cadc_readout_leak - spec.lif.leak * g,
            trace_scale: span / (config.cadc_threshold - config.cadc_leak),
        };
        let t_sim = steps as f64 * dt;
        let time = TimeBase::new(
            config.quantize_time,
            config.clock_hz,
            config.noise_dt,
            config.cadc_period,
            t_sim,
        );
        let cores = layers
            .iter()
            .map(|l| LayerCore::new(&l.neurons, &time))
            .collect();
        Ok(Self {
            spec,
            config,
            seed,
            dt,
            steps,
            t_sim,
            layers,
            cores,
            time,
            host,
        })
    }

    /// The same chip with the host scales of a calibration.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a non-finite or non-positive scale or a non-finite offset.
    pub fn with_host(mut self, host: HostScales) -> Result<Self> {
        for (name, v) in [
            ("weight_scale", host.weight_scale),
            ("trace_scale", host.trace_scale),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::invalid(name, "finite and > 0", v));
            }
        }
        for (name, v) in [
            ("offset", host.offset),
            ("readout_offset", host.readout_offset),
        ] {
            if !v.is_finite() {
                return Err(Error::invalid(name, "finite", v));
            }
        }
        self.host = host;
        Ok(self)
    }

    /// The host scales in use.
    pub fn host(&self) -> HostScales {
        self.host
    }

    /// The non-idealities.
    pub fn config(&self) -> &MockConfig {
        &self.config
    }

    /// The chip seed (fixed pattern).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The layers as built on this instance (fixed pattern).
    pub fn layers(&self) -> &[LayerPhys] {
        &self.layers
    }

    /// The grid step the chip's recordings are mapped onto (s).
    pub fn dt(&self) -> f64 {
        self.dt
    }

    /// The simulated window (s).
    pub fn t_sim(&self) -> f64 {
        self.t_sim
    }

    /// The chip's time stamp of an event at `t`.
    fn stamp(&self, t: f64) -> f64 {
        if self.config.quantize_time {
            (t * self.config.clock_hz).floor() / self.config.clock_hz
        } else {
            t
        }
    }

    /// Spikes `(time, neuron)` as the chip records them: stamped ([`MockChip::stamp`]) and
    /// sorted by time, then neuron.
    fn stamped(&self, spikes: impl Iterator<Item = (f64, u32)>) -> Vec<Spike> {
        let mut out: Vec<Spike> = spikes
            .map(|(t, neuron)| Spike {
                time: self.stamp(t),
                neuron,
            })
            .collect();
        eventprop_exact::sort_spikes(&mut out);
        out
    }

    /// The CADC code of membrane `v` (model units) of neuron `p`: from the rest code of its
    /// operating point (`cadc_leak`, or `cadc_readout_leak` for the non-spiking readout).
    pub fn cadc_code(&self, v: f64, p: &NeuronPhys) -> f64 {
        let c = &self.config;
        let g = (c.cadc_threshold - c.cadc_leak) / (self.spec.lif.threshold - self.spec.lif.leak);
        let rest = if p.spiking {
            c.cadc_leak
        } else {
            c.cadc_readout_leak
        };
        let code = rest + p.cadc_offset + (v - self.spec.lif.leak) * g;
        if c.cadc_quantize {
            code.round().clamp(0.0, CADC_MAX)
        } else {
            code
        }
    }

    /// The CADC sample times of a run: `0, P, 2P, …` up to `t_sim`.
    pub fn cadc_times(&self) -> Vec<f64> {
        let p = self.config.cadc_period;
        let n = (self.t_sim / p + 1e-9).floor() as usize;
        (0..=n).map(|j| j as f64 * p).collect()
    }

    /// Simulates neuron `p` of layer `layer` on current jumps `events` (time, jump; sorted by
    /// time) up to `t_end`; returns the spike times (not stamped) and the membrane (model
    /// units) at `sample_times` (sorted).
    ///
    /// # Errors
    /// [`Error::Invalid`] naming `chip` when the neuron fires more than
    /// [`MAX_SPIKES_PER_NEURON`] times.
    pub fn simulate_neuron(
        &self,
        p: &NeuronPhys,
        events: &[(f64, f64)],
        t_end: f64,
        sample_times: &[f64],
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        let (mut spikes, mut values) = (Vec::new(), Vec::with_capacity(sample_times.len()));
        let refractory = self.config.refractory;
        let mut st = State {
            neuron: NeuronState::rest(),
            cache: (-1.0, [0.0; 3]),
            cache_reused: false,
            recent: [(-1.0, [0.0; 3]); RECENT],
            next: 0,
        };
        let (mut ei, mut si) = (0, 0);
        loop {
            let te = events.get(ei).map_or(f64::INFINITY, |e| e.0);
            let ts = sample_times.get(si).copied().unwrap_or(f64::INFINITY);
            let stop = te.min(ts);
            if stop > t_end {
                st.advance(p, refractory, t_end, &mut spikes)?;
                break;
            }
            st.advance(p, refractory, stop, &mut spikes)?;
            if ts <= te {
                values.push(st.neuron.u + p.leak);
                si += 1;
            } else {
                st.neuron.i += events[ei].1;
                ei += 1;
            }
        }
        // samples after the end (none for the chip's own sample times)
        values.resize(sample_times.len(), st.neuron.u + p.leak);
        Ok((spikes, values))
    }

    /// Runs one sample: input events → the recording of every layer (spikes stamped,
    /// membranes as CADC codes), on the layer core ([`analog`]): each layer's neurons
    /// advance together over the layer's breakpoints (presynaptic events, noise kicks
    /// `m noise_dt`, `m = 1 ..= t_sim/noise_dt`, CADC samples). At each kick time every
    /// neuron's kick `σ ξ` is drawn from the sample's stream, in neuron order (layer by
    /// layer, in time order within a layer).
    fn run_sample(
        &self,
        weights_t: &[Vec<f64>],
        sample_times: &[f64],
        input: &[Spike],
        noise_seed: u64,
        scratch: &mut SampleScratch,
    ) -> Result<Vec<SampleLayer>> {
        let SampleScratch {
            core: sc,
            events,
            found,
            values,
        } = scratch;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(noise_seed);
        let stamped = self.stamped(input.iter().map(|s| (s.time, s.neuron)));
        let n_layers = self.layers.len();
        let mut out: Vec<SampleLayer> = Vec::with_capacity(n_layers);
        for (l, (layer, core)) in self.layers.iter().zip(&self.cores).enumerate() {
            let record = l + 1 == n_layers || self.config.record_hidden_membrane;
            // the layer's events: the stamped input, or the spikes of the layer below
            let below = out.last().map_or(&stamped[..], |o| &o.0[..]);
            events.clear();
            events.extend(
                below
                    .iter()
                    .map(|s| (self.time.of_seconds(s.time), s.neuron)),
            );
            found.clear();
            values.clear();
            LayerRun {
                neurons: &layer.neurons,
                core,
                time: &self.time,
                refractory: self.config.refractory,
                events,
                weights_t: &weights_t[l],
                samples: if record { sample_times.len() } else { 0 },
                noisy: layer.kick_std != 0.0,
            }
            .run(sc, found, values, &mut |kicks| {
                noise::fill(&mut rng, layer.kick_std, kicks)
            })?;
            let spikes = self.stamped(found.iter().copied());
            let traces = record.then(|| {
                let n = layer.neurons.len();
                layer
                    .neurons
                    .iter()
                    .enumerate()
                    .map(|(k, p)| SampledTrace {
                        times: sample_times.to_vec(),
                        values: values
                            .iter()
                            .skip(k)
                            .step_by(n)
                            .map(|&u| self.cadc_code(u + p.leak, p))
                            .collect(),
                    })
                    .collect()
            });
            out.push((spikes, traces));
        }
        Ok(out)
    }

    /// The effective weights of `config` (levels × gain × the chip's unit, model units) per
    /// layer, transposed for the layer core: `[j * N + n]`.
    fn weights_t(&self, config: &Configuration) -> Vec<Vec<f64>> {
        config
            .weights
            .iter()
            .zip(&self.layers)
            .map(|(w, layer)| {
                let (n, n_in) = w.dim();
                let mut t = vec![0.0; n * n_in];
                for ((k, j), &x) in w.indexed_iter() {
                    t[j * n + k] = x * layer.gain[[k, j]];
                }
                t
            })
            .collect()
    }
}

impl Chip for MockChip {
    fn kind(&self) -> ChipKind {
        ChipKind::Mock
    }

    fn spec(&self) -> &NetworkSpec {
        &self.spec
    }

    fn configure(&self, weights: &[Array2<f64>]) -> Result<Configuration> {
        self.spec.check_weights(weights)?;
        let unit = self.config.weight_gain / self.config.design_weight_scale;
        let s = self.host.weight_scale;
        let total = weights.iter().map(Array2::len).sum();
        if !self.config.quantize_weights {
            return Ok(Configuration {
                weights: weights.iter().map(|w| w.mapv(|x| x * s * unit)).collect(),
                levels: None,
                saturated_weights: 0,
                total_weights: total,
            });
        }
        let mut saturated = 0;
        let levels: Vec<Array2<i8>> = weights
            .iter()
            .map(|w| {
                w.mapv(|x| {
                    if (s * x).round().abs() > MAX_LEVEL as f64 {
                        saturated += 1;
                    }
                    quantize_level(s * x)
                })
            })
            .collect();
        Ok(Configuration {
            weights: levels.iter().map(|q| q.mapv(|q| q as f64 * unit)).collect(),
            levels: Some(levels),
            saturated_weights: saturated,
            total_weights: total,
        })
    }

    fn run(&self, config: &Configuration, inputs: &[&[Spike]]) -> Result<Recording> {
        self.spec.check_weights(&config.weights)?;
        for (b, s) in inputs.iter().enumerate() {
            if let Some(e) = s
                .iter()
                .find(|e| e.neuron as usize >= self.spec.n_in || !e.time.is_finite())
            {
                return Err(Error::Invalid {
                    arg: "inputs",
                    expected: format!("channels < {} and finite times", self.spec.n_in),
                    actual: format!("channel {} at {} s in sample {b}", e.neuron, e.time),
                });
            }
        }
        let base = hash_f64s(mix(self.seed), config.weights.iter().flat_map(|w| w.iter()));
        let weights_t = self.weights_t(config);
        let sample_times = self.cadc_times();
        let per_sample: Vec<_> = inputs
            .par_iter()
            .map(|s| {
                let h = s.iter().fold(
                    base,
                    |h, e| mix(mix(h ^ e.time.to_bits()) ^ e.neuron as u64),
                );
                // the worker's buffers, kept across batches (every run overwrites them)
                SCRATCH.with_borrow_mut(|sc| self.run_sample(&weights_t, &sample_times, s, h, sc))
            })
            .collect::<Result<_>>()?;
        let sizes: Vec<usize> = self.spec.weight_shapes().iter().map(|s| s.0).collect();
        let mut layers: Vec<LayerRecording> = sizes
            .iter()
            .map(|&size| LayerRecording {
                size,
                spikes: Vec::with_capacity(inputs.len()),
                membrane: None,
            })
            .collect();
        let spiking_out = matches!(self.spec.readout, Readout::Spiking(_));
        for sample in per_sample {
            for (l, (spikes, traces)) in sample.into_iter().enumerate() {
                let layer = &mut layers[l];
                if l + 1 < sizes.len() || spiking_out {
                    layer.spikes.push(spikes);
                }
                if let Some(t) = traces {
                    layer.membrane.get_or_insert_with(Vec::new).push(t);
                }
            }
        }
        Ok(Recording {
            layers,
            samples: inputs.len(),
        })
    }

    fn grid_map(&self) -> GridMap {
        let integrator = matches!(self.spec.readout, Readout::Integrator { .. });
        GridMap {
            offset: self.host.offset,
            readout_offset: integrator.then_some(self.host.readout_offset),
            trace_scale: self.host.trace_scale,
            ..GridMap::identity(self.dt, self.steps)
        }
    }

    fn weight_limit(&self) -> Option<f64> {
        self.config
            .quantize_weights
            .then(|| MAX_LEVEL as f64 / self.host.weight_scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eventprop_data::yinyang;

    /// A plain simulation of one neuron, independent of the mock's bounds, propagators and
    /// caches: on every interval between events the exact engine's unbounded crossing search
    /// and closed-form state; samples before events at equal times.
    fn plain_neuron(
        p: &NeuronPhys,
        refractory: f64,
        events: &[(f64, f64)],
        t_end: f64,
        sample_times: &[f64],
    ) -> (Vec<f64>, Vec<f64>) {
        let k = &p.kinetics;
        let (mut t, mut u, mut i, mut ref_until) = (0.0, 0.0, 0.0, f64::NEG_INFINITY);
        let (mut spikes, mut values) = (Vec::new(), Vec::new());
        let (mut ei, mut si) = (0, 0);
        loop {
            let te = events.get(ei).map_or(f64::INFINITY, |e| e.0);
            let ts = sample_times.get(si).copied().unwrap_or(f64::INFINITY);
            let stop = te.min(ts).min(t_end);
            while t < stop {
                if t < ref_until {
                    let e = ref_until.min(stop);
                    i = k.i_at(i, e - t);
                    (u, t) = (k.reset, e);
                } else if let Some(x) = k.first_crossing(u, i, stop - t).filter(|_| p.spiking) {
                    t += x;
                    spikes.push(t);
                    i = k.i_at(i, x);
                    u = k.reset;
                    ref_until = t + refractory;
                } else {
                    (u, i) = k.state_at(u, i, stop - t);
                    t = stop;
                }
            }
            if te.min(ts) > t_end {
                break;
            }
            if ts <= te {
                values.push(u + p.leak);
                si += 1;
            } else {
                i += events[ei].1;
                ei += 1;
            }
        }
        (spikes, values)
    }

    fn close(x: f64, y: f64, tol: f64) -> bool {
        (x - y).abs() <= tol
    }

    /// The layer core ([`LayerRun`], all neurons over shared breakpoints, propagators from
    /// tick tables) against the per-neuron simulation ([`MockChip::simulate_neuron`], each
    /// neuron alone on its merged events and kicks, propagators from the float interval
    /// lengths) and against [`plain_neuron`]: with the same kicks, the same spikes and
    /// samples to rounding, on both layers (hidden, and the non-spiking readout on the
    /// hidden spikes) of 100 Yin-Yang samples with random weights that make the neurons
    /// fire. Returns the number of spikes compared.
    fn core_agrees_with_per_neuron_simulation(config: MockConfig) -> usize {
        let encoding = yinyang::Encoding::default();
        let chip = MockChip::new(
            crate::yinyang_network(vec![120]),
            config,
            5,
            encoding.dt,
            encoding.steps(),
        )
        .expect("valid chip");
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let weights: Vec<Array2<f64>> = chip
            .spec
            .weight_shapes()
            .iter()
            .map(|&s| Array2::from_shape_simple_fn(s, || rng.random_range(-0.3..2.0)))
            .collect();
        let wt = chip.weights_t(&chip.configure(&weights).expect("valid weights"));
        let set = yinyang::encode(&yinyang::generate(100, 3), &encoding);
        let sample_times = chip.cadc_times();
        let mut scratch = Scratch::default();
        let mut checked = 0;
        for (b, input) in set.samples.iter().enumerate() {
            let mut stamped = chip.stamped(input.iter().map(|s| (s.time, s.neuron)));
            let mut draws = ChaCha8Rng::seed_from_u64(b as u64);
            // the hidden layer, then the readout (non-spiking) on the hidden layer's spikes
            for (l, layer) in chip.layers.iter().enumerate() {
                let n = layer.neurons.len();
                let events: Vec<(f64, u32)> = stamped
                    .iter()
                    .map(|s| (chip.time.of_seconds(s.time), s.neuron))
                    .collect();
                // the kicks as the layer draws them, kick-major, kept for the per-neuron runs
                let mut kicks: Vec<f64> = Vec::new();
                let (mut found, mut values) = (Vec::new(), Vec::new());
                LayerRun {
                    neurons: &layer.neurons,
                    core: &chip.cores[l],
                    time: &chip.time,
                    refractory: chip.config.refractory,
                    events: &events,
                    weights_t: &wt[l],
                    samples: sample_times.len(),
                    noisy: layer.kick_std != 0.0,
                }
                .run(&mut scratch, &mut found, &mut values, &mut |out| {
                    for v in out.iter_mut() {
                        *v = layer.kick_std * draws.sample::<f64, _>(StandardNormal);
                    }
                    kicks.extend_from_slice(out);
                })
                .expect("runs");
                assert_eq!(
                    kicks.len(),
                    if layer.kick_std == 0.0 {
                        0
                    } else {
                        chip.time.kicks() * n
                    }
                );
                assert_eq!(values.len(), sample_times.len() * n);
                for (k, p) in layer.neurons.iter().enumerate() {
                    // events first: at equal times an event comes before a kick (stable sort)
                    let mut merged: Vec<(f64, f64)> = stamped
                        .iter()
                        .map(|s| (s.time, wt[l][s.neuron as usize * n + k]))
                        .collect();
                    merged.extend(
                        kicks
                            .chunks(n)
                            .enumerate()
                            .map(|(m, kv)| ((m + 1) as f64 * chip.config.noise_dt, kv[k])),
                    );
                    merged.sort_by(|x, y| x.0.total_cmp(&y.0));
                    let (spikes, v) = chip
                        .simulate_neuron(p, &merged, chip.t_sim, &sample_times)
                        .expect("runs");
                    let (plain_spikes, plain_v) = plain_neuron(
                        p,
                        chip.config.refractory,
                        &merged,
                        chip.t_sim,
                        &sample_times,
                    );
                    let mine: Vec<f64> = found
                        .iter()
                        .filter(|s| s.1 == k as u32)
                        .map(|s| s.0)
                        .collect();
                    for other in [&spikes, &plain_spikes] {
                        assert_eq!(other.len(), mine.len(), "sample {b} layer {l} neuron {k}");
                        for (x, y) in other.iter().zip(&mine) {
                            assert!(close(*x, *y, 1e-9 * x.abs()), "{x} vs {y}");
                        }
                    }
                    for other in [&v, &plain_v] {
                        for (j, x) in other.iter().enumerate() {
                            let y = values[j * n + k] + p.leak;
                            // the readout integrates up to ~40 model units: relative
                            assert!(
                                close(*x, y, 1e-9 * x.abs().max(1.0)),
                                "sample {b} layer {l} neuron {k} at {j}: {x} vs {y}"
                            );
                        }
                    }
                    checked += spikes.len();
                }
                // the next layer's input: this layer's spikes, stamped and sorted
                stamped = chip.stamped(found.iter().copied());
            }
        }
        checked
    }

    #[test]
    fn layer_core_agrees_with_the_per_neuron_simulation() {
        // default: every non-ideality on, times in ticks of the clock, tabulated propagators
        let n = core_agrees_with_per_neuron_simulation(MockConfig::default());
        assert!(n > 500);
        // off the clock: times in seconds, the kick propagators and computed ones
        let off_clock = MockConfig {
            quantize_time: false,
            ..MockConfig::default()
        };
        let n = core_agrees_with_per_neuron_simulation(off_clock);
        assert!(n > 500);
        // a refractory period; no noise (long intervals beyond the table)
        let refractory = MockConfig {
            refractory: 2e-6,
            noise: false,
            ..MockConfig::default()
        };
        let n = core_agrees_with_per_neuron_simulation(refractory);
        assert!(n > 500);
    }

    /// Periods against the window: tiny or huge periods and clocks are refused before
    /// anything is allocated, and the kick-variance sum never loops for ever.
    #[test]
    fn periods_and_clock_are_bounded_by_the_window_and_the_step() {
        let (dt, steps) = (1e-6, 38);
        let net = || crate::yinyang_network(vec![4]);
        for (c, key) in [
            (
                MockConfig {
                    cadc_period: 1e-300,
                    ..MockConfig::default()
                },
                "chip.cadc_period",
            ),
            (
                MockConfig {
                    cadc_period: 1e-12,
                    ..MockConfig::default()
                },
                "chip.cadc_period",
            ),
            (
                MockConfig {
                    cadc_period: 39e-6,
                    ..MockConfig::default()
                },
                "chip.cadc_period",
            ),
            (
                MockConfig {
                    noise_dt: 1e-300,
                    ..MockConfig::default()
                },
                "chip.noise_dt",
            ),
            (
                MockConfig {
                    noise_dt: 1e-12,
                    ..MockConfig::default()
                },
                "chip.noise_dt",
            ),
            (
                MockConfig {
                    clock_hz: 1e300,
                    ..MockConfig::default()
                },
                "chip.clock_hz",
            ),
            (
                MockConfig {
                    clock_hz: 1e5,
                    ..MockConfig::default()
                },
                "chip.clock_hz",
            ),
        ] {
            let err = MockChip::new(net(), c, 0, dt, steps)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(&format!("{key}: expected ")), "{err}");
        }
        // the edges are accepted: one period per window, 100 per step
        for c in [
            MockConfig {
                cadc_period: 38e-6,
                noise_dt: 38e-6,
                ..MockConfig::default()
            },
            MockConfig {
                cadc_period: 1e-8,
                noise_dt: 1e-8,
                ..MockConfig::default()
            },
        ] {
            MockChip::new(net(), c, 0, dt, steps).expect("edge accepted");
        }
        // kicks far denser than the time constants: the closed form, close to the sum
        let (a, b) = (1.0 / 4e-6, 1.0 / 6e-6);
        let h = 1e-12;
        let start = std::time::Instant::now();
        let f = kick_variance_factor(a, b, h);
        assert!(start.elapsed().as_secs() < 1);
        let sum = {
            let h = 1e-10;
            kick_variance_factor(a, b, h) * 1e-10 / 1e-12
        };
        assert!(((f - sum) / sum).abs() < 1e-3, "{f} vs {sum}");
    }

    /// Fuzzer (bounded, fixed seed): 400 configs with keys drawn from hostile values (0,
    /// ±tiny, ±huge, NaN, ±∞, and values around the defaults) never panic or hang in
    /// [`MockChip::new`]; each accepted one runs a Yin-Yang sample within its bounds.
    #[test]
    fn fuzzed_configs_are_accepted_or_refused_never_panic() {
        let mut rng = ChaCha8Rng::seed_from_u64(26);
        let hostile = [
            0.0,
            -1.0,
            1e-300,
            1e-12,
            1e-9,
            1e-7,
            1e-6,
            2e-6,
            3.8e-5,
            1e-3,
            1.0,
            1e3,
            1e6,
            1e12,
            1e300,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        let encoding = yinyang::Encoding::default();
        let input = yinyang::encode(&yinyang::generate(1, 4), &encoding);
        let (mut accepted, mut refused) = (0, 0);
        for _ in 0..400 {
            let mut c = MockConfig::default();
            let mut pick = |v: &mut f64| {
                if rng.random_range(0..3) == 0 {
                    *v = hostile[rng.random_range(0..hostile.len())];
                }
            };
            for v in [
                &mut c.noise_dt,
                &mut c.cadc_period,
                &mut c.clock_hz,
                &mut c.weight_gain,
                &mut c.design_weight_scale,
                &mut c.noise_std,
                &mut c.refractory,
                &mut c.threshold_offset,
                &mut c.tau_mem_cv,
                &mut c.cadc_offset_std,
            ] {
                pick(v);
            }
            let start = std::time::Instant::now();
            let r = std::panic::catch_unwind(|| {
                let chip = MockChip::new(
                    crate::yinyang_network(vec![10]),
                    c.clone(),
                    1,
                    encoding.dt,
                    encoding.steps(),
                )?;
                let w: Vec<Array2<f64>> = chip
                    .spec
                    .weight_shapes()
                    .iter()
                    .map(|&s| Array2::from_elem(s, 0.5))
                    .collect();
                let conf = chip.configure(&w)?;
                let inputs: Vec<&[Spike]> = input.samples.iter().map(Vec::as_slice).collect();
                chip.run(&conf, &inputs).map(|_| ())
            });
            match r {
                Ok(Ok(())) => accepted += 1,
                Ok(Err(e)) => {
                    let e = e.to_string();
                    assert!(e.contains(": expected "), "{e}");
                    refused += 1;
                }
                Err(_) => panic!("panicked on {c:?}"),
            }
            assert!(start.elapsed().as_secs() < 10, "slow on {c:?}");
        }
        assert!(
            accepted > 20 && refused > 100,
            "{accepted} accepted, {refused} refused"
        );
    }
}

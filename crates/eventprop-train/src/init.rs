//! Initialisation from the data (`[init]`, `init.rule = "data"`): before the first epoch
//! each layer's initial weight scale is chosen from the activity that the training data
//! cause in it, so that hidden neurons start in a useful firing regime and the outputs are
//! neither silent nor saturated.
//!
//! The rule, layer by layer on a fixed calibration set (the first `init.batches` batches
//! of epoch 1's shuffle, so it is deterministic for a seed):
//!
//! * **hidden layer `k`** (input side first, the layers before it already chosen): the
//!   std `s_k` of `N(hidden_init_mean, s_k)` is searched on a log scale (doubling or
//!   halving from `hidden_init_std` until the target is bracketed, then bisection) until
//!   the layer's mean firing rate `r_k = spikes / (samples · H_k · t_sim)` is
//!   `init.target_rate` (Hz). The weights are `mean + s_k Z` with `Z` fixed by the seed,
//!   so the rate grows with `s_k`. With `--recurrent` the layer's recurrent weights
//!   `N(0, s_k / sqrt(H_k))` scale with it and take part in the simulation.
//! * **spiking output** (first-spike loss): the readout mean `m` (std kept) is searched the
//!   same way until at most `init.silent_outputs` of the samples have an output neuron
//!   that never fires (the first-spike loss has no gradient for a silent neuron).
//! * **integrator output** (max-over-time loss): the readout std is searched until the
//!   spread of the initial scores is `init.score_spread`, measured through the initial
//!   cross-entropy: for scores spread by `sigma` across classes, `E[L] ≈ ln C +
//!   (1 - 1/C) sigma² / 2`. A spread far above 1 starts the softmax saturated.
//!
//! Values that are already in `[init]` (`hidden_std`, `readout_mean`/`readout_std`) are
//! used as they are: an explicit `hidden_init_std` or `readout_init_*` (flag or config file)
//! puts its value there ([`crate::TrainConfig::layered`]), and a run stores the chosen values
//! in its config, so `--resume`, `eval` and a run from its `config.toml` do not calibrate
//! again.

use std::fmt;

use ndarray::Array2;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::config::shuffle_seed;
use crate::config::TrainConfig;
use crate::engine::{Engine, Pass};
use crate::error::{Error, Result};
pub use crate::init_settings::{InitRule, InitSettings};
use eventprop_core::spec::Readout;
use eventprop_data::{Spike, SpikeSet};

/// Which weights a [`LayerInit`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitLayer {
    /// Hidden layer `k` (0-based), with its recurrent weights when there are some.
    Hidden(usize),
    /// The output weights.
    Readout,
}

/// Why a layer got its values.
#[derive(Debug, Clone, PartialEq)]
pub enum InitSource {
    /// The fixed rule: the config's `hidden_init_*` / `readout_init_*`.
    Fixed,
    /// Given in `[init]` (an explicit flag or config key, or a stored run config).
    Given,
    /// Calibrated: `measured` is the activity reached, `target` the goal, `what` its name.
    Calibrated {
        /// What was measured (e.g. "mean rate").
        what: &'static str,
        /// Its unit ("Hz", "%", "").
        unit: &'static str,
        /// The value reached with the chosen scale.
        measured: f64,
        /// The target.
        target: f64,
        /// The value at the preset's scale (where the search started).
        start: f64,
        /// Calibration samples.
        samples: usize,
        /// Forward passes over them.
        evaluations: usize,
    },
    /// Calibration could not reach the target (e.g. no input spike reaches the layer); the
    /// scale the search ended at is used.
    Unreached {
        /// Why.
        why: String,
    },
}

/// The initialisation chosen for one layer.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerInit {
    /// The layer.
    pub layer: InitLayer,
    /// Mean of its weights.
    pub mean: f64,
    /// Std of its weights.
    pub std: f64,
    /// Hidden layers with recurrent weights (`N(0, std / sqrt(H))`, scaled with `std`).
    pub recurrent: bool,
    /// Why.
    pub source: InitSource,
}

impl fmt::Display for LayerInit {
    /// One line, e.g. `hidden layer 1: std 1.37 (calibrated: 10.1 Hz mean rate, target
    /// 10 Hz; 0.3 Hz at the preset's 0.4; 96 samples, 14 passes)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let recurrent = if self.recurrent {
            " (recurrent weights N(0, std / sqrt(H)))"
        } else {
            ""
        };
        match self.layer {
            InitLayer::Hidden(k) => {
                write!(f, "hidden layer {}: std {:.4}{recurrent}", k + 1, self.std)?
            }
            InitLayer::Readout => write!(f, "readout: mean {:.4}, std {:.4}", self.mean, self.std)?,
        }
        match &self.source {
            InitSource::Fixed => write!(f, " (fixed: the config's values)"),
            InitSource::Given => write!(f, " (given: no calibration)"),
            InitSource::Unreached { why } => write!(f, " (calibration did not reach its target: {why})"),
            InitSource::Calibrated {
                what,
                unit,
                measured,
                target,
                start,
                samples,
                evaluations,
            } => write!(
                f,
                " (calibrated: {what} {measured:.3}{unit}, target {target}{unit}; {start:.3}{unit} at the preset's scale; {samples} samples, {evaluations} passes)"
            ),
        }
    }
}

/// Relative tolerance of the searches (on the scale; the search stops earlier when the
/// measured value is within 2 % of the target).
const SCALE_TOL: f64 = 0.02;
/// At most this many doublings/halvings when bracketing.
const MAX_BRACKET: usize = 14;
/// At most this many bisection steps.
const MAX_BISECT: usize = 12;

/// The calibration samples: the first `batches` batches of epoch 1's shuffle.
fn calibration_set<'a>(
    config: &TrainConfig,
    train: &'a SpikeSet,
) -> (Vec<&'a [Spike]>, Vec<usize>) {
    let mut order: Vec<usize> = (0..train.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(shuffle_seed(config.seed, 0)));
    order.truncate(config.batch_size.saturating_mul(config.init.batches));
    (
        order.iter().map(|&i| train.samples[i].as_slice()).collect(),
        order.iter().map(|&i| train.labels[i]).collect(),
    )
}

/// The result of a search.
struct Found {
    /// The chosen scale.
    scale: f64,
    /// The measure there (`None`: past the engine's limits).
    value: Option<f64>,
    /// The measure at the start of the search.
    at_start: Option<f64>,
    /// Measurements made.
    evaluations: usize,
    /// Whether the target was bracketed (and the search converged).
    reached: bool,
}

/// What one measurement gives: `Ok(value)`, or `Err(())` when the activity ran past the
/// engine's limits (the exact engine's spike cap), which counts as "above the target".
type Measured = std::result::Result<f64, ()>;

/// Searches `scale > 0` on a log scale, starting at `start`, for `measure(scale) ≈ target`
/// with `measure` increasing. Returns the scale, its value (`None`: past the limits), the
/// value at `start` and the number of measurements ([`Found`]).
fn search(
    start: f64,
    target: f64,
    measure: &mut dyn FnMut(f64) -> Result<Measured>,
) -> Result<Found> {
    let mut evals = 0;
    let mut eval = |s: f64, evals: &mut usize| -> Result<Measured> {
        *evals += 1;
        measure(s)
    };
    let close = |v: f64| (v - target).abs() <= 0.02 * target;
    let first = eval(start, &mut evals)?;
    let at_start = first.ok();
    if first.is_ok_and(close) {
        return Ok(Found {
            scale: start,
            value: at_start,
            at_start,
            evaluations: evals,
            reached: true,
        });
    }
    // Bracket: lo below the target, hi above it.
    let above = |m: Measured| m.map_or(true, |v| v > target);
    let (mut lo, mut hi) = (start, start);
    let (mut m_lo, mut m_hi) = (first, first);
    if above(first) {
        let mut found = false;
        for _ in 0..MAX_BRACKET {
            lo /= 2.0;
            m_lo = eval(lo, &mut evals)?;
            if !above(m_lo) {
                found = true;
                break;
            }
            hi = lo;
            m_hi = m_lo;
        }
        if !found {
            return Ok(Found {
                scale: lo,
                value: m_lo.ok(),
                at_start,
                evaluations: evals,
                reached: false,
            });
        }
    } else {
        let mut found = false;
        for _ in 0..MAX_BRACKET {
            hi *= 2.0;
            m_hi = eval(hi, &mut evals)?;
            if above(m_hi) {
                found = true;
                break;
            }
            lo = hi;
            m_lo = m_hi;
        }
        if !found {
            return Ok(Found {
                scale: hi,
                value: m_hi.ok(),
                at_start,
                evaluations: evals,
                reached: false,
            });
        }
    }
    for _ in 0..MAX_BISECT {
        if hi / lo <= 1.0 + SCALE_TOL || m_lo.is_ok_and(close) || m_hi.is_ok_and(close) {
            break;
        }
        let mid = (lo * hi).sqrt();
        let m = eval(mid, &mut evals)?;
        if above(m) {
            hi = mid;
            m_hi = m;
        } else {
            lo = mid;
            m_lo = m;
        }
    }
    // The end closer to the target (an end past the limits is never closer).
    let d = |m: Measured| m.map_or(f64::INFINITY, |v| (v - target).abs());
    Ok(if d(m_lo) <= d(m_hi) {
        Found {
            scale: lo,
            value: m_lo.ok(),
            at_start,
            evaluations: evals,
            reached: true,
        }
    } else {
        Found {
            scale: hi,
            value: m_hi.ok(),
            at_start,
            evaluations: evals,
            reached: true,
        }
    })
}

/// Runs `f`, turning the exact engine's spike cap into `Err(())` ("too much activity").
fn limited(r: Result<f64>) -> Result<Measured> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(Error::Exact(eventprop_exact::Error::TooManySpikes { .. })) => Ok(Err(())),
        Err(e) => Err(e),
    }
}

/// Chooses every layer's initial weights as `config.init` asks (module docs), writes the
/// chosen values into `config.init` (so that they are stored with the run) and returns
/// one [`LayerInit`] per layer, hidden layers first. Under the fixed rule, or when every
/// value is given, nothing is simulated.
///
/// # Errors
/// [`Error::Invalid`] for invalid `[init]` settings or an empty training set under the
/// data rule; the engine's errors.
pub fn calibrate(
    config: &mut TrainConfig,
    engine: &dyn Engine,
    train: &SpikeSet,
) -> Result<Vec<LayerInit>> {
    let spec = engine.spec().clone();
    let n_hidden = spec.hidden.len();
    config.init.validate(n_hidden)?;
    let data = config.init.rule == InitRule::Data;
    let mut report = Vec::with_capacity(n_hidden + 1);
    let given_hidden = config.init.hidden_std.is_some();
    let mut hidden_std = config
        .init
        .hidden_std
        .clone()
        .unwrap_or_else(|| vec![config.network.hidden_init_std; n_hidden]);
    let given_readout = config.init.readout_mean.is_some() || config.init.readout_std.is_some();
    let mut readout_mean = config
        .init
        .readout_mean
        .unwrap_or(config.network.readout_init_mean);
    let mut readout_std = config
        .init
        .readout_std
        .unwrap_or(config.network.readout_init_std);
    let needs_data = data && !(given_hidden && given_readout);
    if needs_data && train.is_empty() {
        return Err(Error::invalid(
            "init.rule",
            "`fixed` when there are no training samples (`data` calibrates on them)",
            "data",
        ));
    }
    let (inputs, labels) = calibration_set(config, train);
    let samples = inputs.len();
    let seed = config.seed;
    let t_sim = config.t_sim();
    let mean = config.network.hidden_init_mean;
    let chunk = config.eval_batch_size.max(1);
    let weights_of =
        |hidden_std: &[f64], readout_mean: f64, readout_std: f64| -> Result<Vec<Array2<f64>>> {
            let mut inits: Vec<_> = hidden_std
                .iter()
                .map(|&std| eventprop_core::spec::Init { mean, std })
                .collect();
            inits.push(eventprop_core::spec::Init {
                mean: readout_mean,
                std: readout_std,
            });
            Ok(spec.init_weights(&inits, seed)?)
        };
    let source_of = |given: bool| {
        if given {
            InitSource::Given
        } else {
            InitSource::Fixed
        }
    };

    for k in 0..n_hidden {
        if !data || given_hidden {
            report.push(LayerInit {
                layer: InitLayer::Hidden(k),
                mean,
                std: hidden_std[k],
                recurrent: spec.learn.recurrent,
                source: source_of(given_hidden),
            });
            continue;
        }
        let neurons = spec.hidden[k] as f64;
        let mut measure = |s: f64| -> Result<Measured> {
            let mut stds = hidden_std.clone();
            stds[k] = s;
            let w = weights_of(&stds, readout_mean, readout_std)?;
            // Batched forwards of the hidden layers (evaluation-sized batches); an integer
            // sum does not depend on the batching or the thread count.
            let mut spikes = 0usize;
            let mut counted = Ok(());
            for x in inputs.chunks(chunk) {
                match engine.hidden_counts(&w, x) {
                    Ok(c) => spikes += c.iter().map(|c| c[k]).sum::<usize>(),
                    Err(e) => {
                        counted = Err(e);
                        break;
                    }
                }
            }
            limited(counted.map(|()| spikes as f64 / (samples as f64 * neurons * t_sim)))
        };
        let Found {
            scale: s,
            value: measured,
            at_start: start,
            evaluations,
            reached,
        } = search(hidden_std[k], config.init.target_rate, &mut measure)?;
        hidden_std[k] = s;
        report.push(LayerInit {
            layer: InitLayer::Hidden(k),
            mean,
            std: s,
            recurrent: spec.learn.recurrent,
            source: match (reached, measured) {
                (true, Some(measured)) => InitSource::Calibrated {
                    what: "mean rate",
                    unit: " Hz",
                    measured,
                    target: config.init.target_rate,
                    start: start.unwrap_or(f64::NAN),
                    samples,
                    evaluations,
                },
                _ => InitSource::Unreached {
                    why: format!(
                        "{} Hz at std {s:.4} after {evaluations} passes, target {} Hz",
                        measured.map_or("past the spike cap".into(), |m| format!("{m:.3}")),
                        config.init.target_rate
                    ),
                },
            },
        });
    }

    if !data || given_readout {
        report.push(LayerInit {
            layer: InitLayer::Readout,
            mean: readout_mean,
            std: readout_std,
            recurrent: false,
            source: source_of(given_readout),
        });
    } else {
        let eval = |rm: f64, rs: f64| -> Result<(f64, usize)> {
            let w = weights_of(&hidden_std, rm, rs)?;
            let (mut loss, mut silent) = (0.0, 0usize);
            for (x, y) in inputs.chunks(chunk).zip(labels.chunks(chunk)) {
                let o = engine.run(&w, x, y, Pass::Eval)?;
                loss += o.loss_sum;
                silent += o.silent_outputs.unwrap_or(0);
            }
            Ok((loss / samples as f64, silent))
        };
        let source = match spec.readout {
            Readout::Spiking(_) => {
                // Fewer silent samples with a larger mean: search the mean, measuring
                // "1 - silent fraction" so that the measure grows with the scale.
                let target = 1.0 - config.init.silent_outputs;
                let std = readout_std;
                let mut measure = |m: f64| -> Result<Measured> {
                    limited(eval(m, std).map(|(_, s)| 1.0 - s as f64 / samples as f64))
                };
                let start = readout_mean.max(std).max(1e-3);
                let Found {
                    scale: m,
                    value: measured,
                    at_start,
                    evaluations,
                    reached,
                } = search_at_least(start, target, &mut measure)?;
                readout_mean = m;
                match (reached, measured) {
                    (true, Some(v)) => InitSource::Calibrated {
                        what: "samples with a silent output neuron",
                        unit: " %",
                        measured: 100.0 * (1.0 - v),
                        target: 100.0 * config.init.silent_outputs,
                        start: 100.0 * (1.0 - at_start.unwrap_or(f64::NAN)),
                        samples,
                        evaluations,
                    },
                    _ => InitSource::Unreached {
                        why: format!(
                            "silent outputs remain at mean {m:.4} after {evaluations} passes"
                        ),
                    },
                }
            }
            Readout::Integrator { .. } => {
                let c = spec.n_out.max(2) as f64;
                let spread = |loss: f64| (2.0 * (loss - c.ln()).max(0.0) * c / (c - 1.0)).sqrt();
                let mean = readout_mean;
                let mut measure =
                    |s: f64| -> Result<Measured> { limited(eval(mean, s).map(|(l, _)| spread(l))) };
                let Found {
                    scale: s,
                    value: measured,
                    at_start,
                    evaluations,
                    reached,
                } = search(
                    readout_std.max(1e-6),
                    config.init.score_spread,
                    &mut measure,
                )?;
                readout_std = s;
                match (reached, measured) {
                    (true, Some(v)) => InitSource::Calibrated {
                        what: "score spread",
                        unit: "",
                        measured: v,
                        target: config.init.score_spread,
                        start: at_start.unwrap_or(f64::NAN),
                        samples,
                        evaluations,
                    },
                    _ => InitSource::Unreached {
                        why: format!(
                            "score spread not reached at std {s:.4} after {evaluations} passes"
                        ),
                    },
                }
            }
        };
        report.push(LayerInit {
            layer: InitLayer::Readout,
            mean: readout_mean,
            std: readout_std,
            recurrent: false,
            source,
        });
    }
    if data {
        config.init.hidden_std = Some(hidden_std);
        config.init.readout_mean = Some(readout_mean);
        config.init.readout_std = Some(readout_std);
    }
    Ok(report)
}

/// The smallest scale (to [`SCALE_TOL`]) with `measure(scale) >= target` for an increasing
/// `measure` (a step-like one: the silent-output fraction), starting at `start`. Returns as
/// [`search`] does.
fn search_at_least(
    start: f64,
    target: f64,
    measure: &mut dyn FnMut(f64) -> Result<Measured>,
) -> Result<Found> {
    let mut evals = 1;
    let ok = |m: Measured| m.map_or(true, |v| v >= target);
    let first = measure(start)?;
    let (mut lo, mut hi, mut m_hi) = (start, start, first);
    if ok(first) {
        // Halve until it fails.
        let mut found = false;
        for _ in 0..MAX_BRACKET {
            lo = hi / 2.0;
            evals += 1;
            let m = measure(lo)?;
            if !ok(m) {
                found = true;
                break;
            }
            hi = lo;
            m_hi = m;
        }
        if !found {
            return Ok(Found {
                scale: hi,
                value: m_hi.ok(),
                at_start: first.ok(),
                evaluations: evals,
                reached: true,
            });
        }
    } else {
        let mut found = false;
        for _ in 0..MAX_BRACKET {
            lo = hi;
            hi *= 2.0;
            evals += 1;
            m_hi = measure(hi)?;
            if ok(m_hi) {
                found = true;
                break;
            }
        }
        if !found {
            return Ok(Found {
                scale: hi,
                value: m_hi.ok(),
                at_start: first.ok(),
                evaluations: evals,
                reached: false,
            });
        }
    }
    for _ in 0..MAX_BISECT {
        if hi / lo <= 1.0 + SCALE_TOL {
            break;
        }
        let mid = (lo * hi).sqrt();
        evals += 1;
        let m = measure(mid)?;
        if ok(m) {
            hi = mid;
            m_hi = m;
        } else {
            lo = mid;
        }
    }
    Ok(Found {
        scale: hi,
        value: m_hi.ok(),
        at_start: first.ok(),
        evaluations: evals,
        reached: m_hi.is_ok(),
    })
}

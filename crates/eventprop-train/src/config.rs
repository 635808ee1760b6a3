//! One configuration for every engine: a flat set of keys (the TOML keys of `--config`
//! files; the CLI flags map onto the same keys), with `engine` choosing the engine and
//! its preset.
//!
//! `task` chooses the data: `yinyang` (the generator or Yin-Yang feature files, latency
//! encoded by `[encoding]`) or `events` (spike-event files, binned by `[events]`).
//!
//! Settings are layered: the preset of the chosen task and engine
//! ([`TrainConfig::preset_for`]) ←
//! each layer in turn ([`TrainConfig::layered`]; the CLI passes the `--config` file, then
//! the flags). A layer names only the keys it changes; nested tables (`[encoding]`,
//! `[loss]`, `[exact]`) may be partial. An unknown key at any level is an error naming its
//! full path. Changing `loss.kind` first resets the `[loss]` table to that kind's defaults
//! for the engine.

use std::path::{Path, PathBuf};

use eventprop_core::{Discretization, Lif};
use eventprop_exact::SolverConfig;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::init_settings::{InitRule, InitSettings};
use crate::loss::{LossKind, RateTargets};
use crate::optim::{Adam, StepLr};
use eventprop_core::error::one_line;
use eventprop_core::spec::{Init, NetworkSpec, Readout};
use eventprop_data::augment::Augment;
use eventprop_data::yinyang::{self, Encoding, Splits};
use std::fmt;
use std::str::FromStr;

/// The engines, by the name used in configs, flags and checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// Time-stepped seed function ([`crate::engine::stepped::SteppedEngine`]).
    #[default]
    Stepped,
    /// Event-based, exact spike times and gradients ([`crate::engine::exact::ExactEngine`]).
    Exact,
    /// Hardware in the loop: forward on a chip, stepped adjoint ([`crate::engine::chip::ChipEngine`]).
    Chip,
}

impl EngineKind {
    /// Every engine, in the order of the docs.
    pub const ALL: [EngineKind; 3] = [EngineKind::Stepped, EngineKind::Exact, EngineKind::Chip];

    /// The name in configs and checkpoints.
    pub fn name(self) -> &'static str {
        match self {
            Self::Stepped => "stepped",
            Self::Exact => "exact",
            Self::Chip => "chip",
        }
    }
}

/// The config keys (a section, or a dotted key) that only some engines read, with those
/// engines; every other key is read by all. A flag that sets a key the chosen engine does
/// not read would be silently ignored, so the command-line tool refuses it
/// ([`EngineKind::reads`]).
pub const ENGINE_KEYS: &[(&str, &[EngineKind])] = &[
    // The sections of one engine.
    ("exact", &[EngineKind::Exact]),
    ("chip", &[EngineKind::Chip]),
    ("learn", &[EngineKind::Stepped, EngineKind::Exact]),
    // The time grid and the grid-only loss terms (stepped function, and the chip's
    // adjoint on its recording).
    ("discretization", &[EngineKind::Stepped, EngineKind::Chip]),
    ("encoding.dt", &[EngineKind::Stepped, EngineKind::Chip]),
    ("events.dt", &[EngineKind::Stepped, EngineKind::Chip]),
    ("loss.reg", &[EngineKind::Stepped, EngineKind::Chip]),
    ("rate_reg", &[EngineKind::Stepped, EngineKind::Chip]),
];

impl EngineKind {
    /// Whether this engine reads config key `key` (a dotted path such as `exact.max_steps`):
    /// false when `key` or a section above it is listed in [`ENGINE_KEYS`] without this
    /// engine.
    pub fn reads(self, key: &str) -> bool {
        ENGINE_KEYS.iter().all(|(k, engines)| {
            let under = key == *k || key.starts_with(&format!("{k}."));
            !under || engines.contains(&self)
        })
    }
}

/// Seed of the training shuffle of epoch `epoch` (0-based) of a run seeded `seed` (the
/// trainer's order, and the calibration batches of [`crate::init`]).
pub fn shuffle_seed(seed: u64, epoch: usize) -> u64 {
    seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for EngineKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("expected `stepped`, `exact` or `chip`, got `{s}`"))
    }
}

/// Every setting of a Yin-Yang run. Field names are the TOML keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// The data: `yinyang` (default) or `events`.
    #[serde(default)]
    pub task: Task,
    /// The engine: `stepped` (time-stepped seed function) or `exact` (event-based).
    pub engine: EngineKind,
    /// Seed of initialisation and shuffling.
    pub seed: u64,
    /// Seed of the data splits ([`yinyang::split_seeds`]).
    pub data_seed: u64,
    /// Number of epochs.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Training samples (the standard split has 5000).
    pub train_size: usize,
    /// Validation samples (1000).
    pub val_size: usize,
    /// Test samples (1000).
    pub test_size: usize,
    /// Evaluation batch size.
    pub eval_batch_size: usize,
    /// Adam learning rate of epoch 0.
    pub lr: f64,
    /// Epochs between learning-rate decays.
    pub lr_step: usize,
    /// Learning-rate decay factor.
    pub lr_gamma: f64,
    /// Adam `beta1`.
    pub beta1: f64,
    /// Adam `beta2`.
    pub beta2: f64,
    /// Adam `eps` (> 0).
    pub eps: f64,
    /// Clip all weights to `[-c, c]` after each update (absent: no clipping).
    pub weight_clip: Option<f64>,
    /// Hidden layer sizes.
    pub hidden: Vec<usize>,
    /// Hidden membrane time constant (s).
    pub tau_mem: f64,
    /// Hidden synaptic time constant (s).
    pub tau_syn: f64,
    /// Threshold (hidden and spiking output neurons).
    pub threshold: f64,
    /// Leak potential.
    pub leak: f64,
    /// Reset potential.
    pub reset: f64,
    /// Readout (or spiking output) membrane time constant (s).
    pub readout_tau_mem: f64,
    /// Readout (or spiking output) synaptic time constant (s).
    pub readout_tau_syn: f64,
    /// Adjoint discretization of the LIF layers (stepped engine).
    pub discretization: Discretization,
    /// Loss (and with it the output layer: integrator for `max_over_time`, spiking for
    /// `first_spike`).
    pub loss: LossKind,
    /// Weight of the hidden firing-rate regulariser (0 = off; stepped engine).
    pub rate_reg: f64,
    /// Per-neuron spike-count targets of the hidden layers (`[reg]`: `upper_rate`,
    /// `lower_rate`, `upper_strength`, `lower_strength`; off while both strengths are 0,
    /// the default), both engines ([`RateTargets`]).
    #[serde(default)]
    pub reg: RateTargets,
    /// Hidden weight init mean.
    pub hidden_init_mean: f64,
    /// Hidden weight init std.
    pub hidden_init_std: f64,
    /// Output weight init mean.
    pub readout_init_mean: f64,
    /// Output weight init std.
    pub readout_init_std: f64,
    /// Input spike encoding (also fixes `dt` and the window `t_sim`).
    pub encoding: Encoding,
    /// Solver settings of the exact engine.
    pub exact: SolverConfig,
    /// Refuse configs whose estimated peak memory ([`TrainConfig::memory_estimate`]) is
    /// above this many GiB.
    pub memory_limit_gib: f64,
    /// Data files of the splits (`[data]`; absent paths: the generator).
    #[serde(default)]
    pub data: DataFiles,
    /// The chip of the `chip` engine (`[chip]`; read by that engine only).
    #[serde(default)]
    pub chip: eventprop_chip::ChipSettings,
    /// Time grid and sizes of event data (`[events]`, task `events` only).
    #[serde(default)]
    pub events: EventSettings,
    /// What is trained besides the feed-forward weights (`[learn]`: recurrent weights,
    /// delays, time constants, thresholds; exact engine only).
    #[serde(default)]
    pub learn: eventprop_core::spec::Learn,
    /// Augmentation of the training samples (`[augment]`: time and channel shift, time
    /// stretch, blend; [`eventprop_data::augment`]). All off by default; never applied to
    /// validation or test samples.
    #[serde(default)]
    pub augment: Augment,
    /// How the initial weight scales are chosen (`[init]`: `rule = "fixed" | "data"`, the
    /// data rule's targets, and the chosen values; [`crate::init`]).
    #[serde(default)]
    pub init: InitSettings,
}

/// What a run trains on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// The Yin-Yang task: generated, or feature files; latency-encoded (`[encoding]`).
    #[default]
    Yinyang,
    /// Labelled spike-event files (SHD/SSC HDF5 or event `.npz`; `[events]`).
    Events,
}

impl Task {
    /// The name in configs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Yinyang => "yinyang",
            Self::Events => "events",
        }
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Task {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        [Self::Yinyang, Self::Events]
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("expected `yinyang` or `events`, got `{s}`"))
    }
}

/// The time grid and sizes of an event data set (`[events]`). Absent values are taken from
/// the data when the run starts (and then stored in the run's config, so that a resumed or
/// evaluated run uses the same ones): `t_max` = the latest event of all splits rounded up
/// to a whole step, `channels` = largest unit + 1, `classes` = largest label + 1. The
/// data files are the `[data]` paths (`train` required).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSettings {
    /// Time step of the stepped engine (s; events are put on the grid at `round(t / dt)`).
    pub dt: f64,
    /// Simulated window (s); events after it are dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t_max: Option<f64>,
    /// Input channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<usize>,
    /// Classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<usize>,
    /// Without a validation file: the fraction of the train file held out for validation
    /// (samples chosen by `data_seed`; 0 = no validation set).
    pub val_fraction: f64,
}

impl Default for EventSettings {
    /// 1 ms steps (common practice for SHD), everything else from the data, 10 % held out.
    fn default() -> Self {
        Self {
            dt: 1e-3,
            t_max: None,
            channels: None,
            classes: None,
            val_fraction: 0.1,
        }
    }
}

impl EventSettings {
    /// Checks the values that are set.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the key.
    pub fn validate(&self) -> Result<()> {
        if !(self.dt.is_finite() && self.dt > 0.0) {
            return Err(Error::invalid("events.dt", "finite and > 0", self.dt));
        }
        if let Some(t) = self.t_max {
            if !(t.is_finite() && t > 0.0) {
                return Err(Error::invalid("events.t_max", "finite and > 0", t));
            }
            let steps = t / self.dt;
            if steps.round() < 1.0 {
                return Err(Error::invalid(
                    "events.t_max",
                    format!(
                        "at least one step of events.dt = {} s (round(t_max / dt) >= 1)",
                        self.dt
                    ),
                    format!("{t} s ({} steps)", steps.round()),
                ));
            }
            if steps > 1e7 {
                return Err(Error::invalid(
                    "events.t_max",
                    format!("at most 1e7 steps of events.dt = {} s", self.dt),
                    format!("{t} s ({steps:.3e} steps)"),
                ));
            }
        }
        for (name, v) in [
            ("events.channels", self.channels),
            ("events.classes", self.classes),
        ] {
            if v == Some(0) {
                return Err(Error::invalid(name, ">= 1", 0));
            }
        }
        if !(0.0..1.0).contains(&self.val_fraction) {
            return Err(Error::invalid(
                "events.val_fraction",
                "in [0, 1)",
                self.val_fraction,
            ));
        }
        Ok(())
    }
}

/// Bytes per sample of an encoded Yin-Yang data set (features, labels, five input events
/// and their vectors), measured as an upper bound.
pub const BYTES_PER_SAMPLE: f64 = 200.0;

/// An estimate of the peak memory of a run, with its largest part in words.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryEstimate {
    /// Estimated peak bytes.
    pub bytes: f64,
    /// What dominates, with the settings that set it.
    pub dominant: String,
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Yin-Yang feature files ([`eventprop_data::files::read_yinyang`]: `.npz` with `x` `(S, 4)` and
/// `y`, or CSV) for the splits, each optional (the `[data]` table). Relative paths are
/// stored as given and resolved against the working directory of the process (so resume
/// from the same directory).
///
/// * `train` absent: the generator's training split (`train_size` samples); given: the
///   file, and `train_size` is not read.
/// * `validation` given: the file. Absent: with a `train` file, the **last `val_size`
///   samples of the train file** are held out as the validation set (and not trained on;
///   `val_size = 0`: no validation set); without one, the generator's validation split.
/// * `test` absent: the generator's test split (`test_size` samples); given: the file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataFiles {
    /// Training set file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train: Option<PathBuf>,
    /// Validation set file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<PathBuf>,
    /// Test set file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<PathBuf>,
    /// The fingerprint of each file the run read (`train`, `validation`, `test`: size and
    /// content hash, [`eventprop_data::fsio::fingerprint`]), recorded when the run starts
    /// and checked on resume.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub fingerprints: std::collections::BTreeMap<String, String>,
}

impl DataFiles {
    /// The files given, by key (`train`, `validation`, `test`).
    pub fn files(&self) -> Vec<(&'static str, &std::path::Path)> {
        [
            ("train", &self.train),
            ("validation", &self.validation),
            ("test", &self.test),
        ]
        .into_iter()
        .filter_map(|(k, p)| p.as_deref().map(|p| (k, p)))
        .collect()
    }
}

/// Keys (full paths) that may be absent from a complete config (optional settings).
const OPTIONAL_KEYS: [&str; 12] = [
    "weight_clip",
    "loss.tau_w",
    "data.train",
    "data.validation",
    "data.test",
    "data.fingerprints",
    "events.t_max",
    "events.channels",
    "events.classes",
    "init.hidden_std",
    "init.readout_mean",
    "init.readout_std",
];

impl Default for TrainConfig {
    /// The stepped preset.
    fn default() -> Self {
        Self::preset(EngineKind::Stepped)
    }
}

impl LossKind {
    /// The defaults of loss `kind` (`max_over_time`, `first_spike` (alias `time`), `sum`
    /// or `sum_exp`) for `engine`.
    ///
    /// First-spike: the stepped values are on the seed's µs time scale (measured 86 % with
    /// `--lr 2e-3 --readout-init-mean 1 --readout-init-std 0.5`); the exact values are the
    /// EventProp paper's (`tau0 = 0.5 ms`, `tau1 = 6.4 ms`, `alpha = 3e-3`) plus this
    /// project's silent-label term (`gamma = 30`, DESIGN.md).
    ///
    /// # Errors
    /// [`Error::Invalid`] for another kind name.
    pub fn defaults(kind: &str, engine: EngineKind) -> Result<Self> {
        match (kind, engine) {
            // Hardware in the loop: a 10× stronger readout regulariser keeps the scores
            // inside the 8-bit CADC's range (DESIGN.md, "HIL accuracy").
            ("max_over_time", EngineKind::Chip) => Ok(Self::MaxOverTime { reg: 4e-3 }),
            ("max_over_time", _) => Ok(Self::MaxOverTime { reg: 4e-4 }),
            ("sum", _) => Ok(Self::Sum),
            ("sum_exp", _) => Ok(Self::SumExp { tau_w: None }),
            ("first_spike" | "time", EngineKind::Stepped | EngineKind::Chip) => {
                Ok(Self::FirstSpike {
                    tau0: 1e-6,
                    tau1: 2e-5,
                    alpha: 0.0,
                    silent_label_gamma: 0.0,
                })
            }
            ("first_spike" | "time", EngineKind::Exact) => Ok(Self::FirstSpike {
                tau0: 0.5e-3,
                tau1: 6.4e-3,
                alpha: 3e-3,
                silent_label_gamma: 30.0,
            }),
            _ => Err(Error::invalid(
                "loss.kind",
                "`max_over_time`, `first_spike`, `time`, `sum` or `sum_exp`",
                format!("`{kind}`"),
            )),
        }
    }

    /// The name of this kind in configs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::MaxOverTime { .. } => "max_over_time",
            Self::FirstSpike { .. } => "first_spike",
            Self::Sum => "sum",
            Self::SumExp { .. } => "sum_exp",
        }
    }
}

impl TrainConfig {
    /// The defaults of an engine.
    ///
    /// * `stepped`: the seed example (docs/spec.md §5) with the tuned changes that reach ≥ 95 %
    ///   test accuracy in 10 epochs (measured, see DESIGN.md): `Corrected` discretization,
    ///   hidden `tau_mem = tau_syn = 4 µs` (seed: 6 µs), Adam lr `1e-2` (seed: `2e-3`),
    ///   `StepLR(step 2, gamma 0.7)` (seed: step 10, gamma 0.9), hidden init std `0.5`
    ///   (seed: 0.25). Everything else is the seed's: 120 hidden, batch 50, readout LI
    ///   with 6 µs, max-over-time + `4e-4 mean(score²)`, hidden init mean 0.8, readout
    ///   `N(0, 0.1)`.
    /// * `chip`: the stepped preset (hardware in the loop trains the stepped network's
    ///   adjoint on a chip's recording), with the `[chip]` table's defaults, except the
    ///   readout regulariser `4e-3` (stepped: `4e-4`), tuned on the validation split of
    ///   HIL on the mock (DESIGN.md). `--readout-reg 4e-4` gives the software settings
    ///   (e.g. for `--chip ideal`, which then trains bit-identically to software).
    /// * `exact`: the EventProp paper's Yin-Yang setup: 5-200-3, `tau_mem = 20 ms`,
    ///   `tau_syn = 5 ms`, first-spike cross-entropy, 40 epochs, batch 32, Adam `3e-3`
    ///   decayed by 0.93 per epoch; inputs in `[0, 30 ms]` of a 60 ms window; init
    ///   `N(1.5, 0.8)` / `N(0.93, 0.1)` (chosen here so that every output neuron fires at
    ///   the start).
    pub fn preset(engine: EngineKind) -> Self {
        let stepped = Self {
            task: Task::Yinyang,
            engine,
            seed: 0,
            data_seed: 0,
            epochs: 10,
            batch_size: 50,
            train_size: 5000,
            val_size: 1000,
            test_size: 1000,
            eval_batch_size: 1000,
            lr: 1e-2,
            lr_step: 2,
            lr_gamma: 0.7,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_clip: None,
            hidden: vec![120],
            tau_mem: 4e-6,
            tau_syn: 4e-6,
            threshold: 1.0,
            leak: 0.0,
            reset: 0.0,
            readout_tau_mem: 6e-6,
            readout_tau_syn: 6e-6,
            discretization: Discretization::Corrected,
            loss: LossKind::MaxOverTime { reg: 4e-4 },
            rate_reg: 0.0,
            reg: RateTargets::default(),
            hidden_init_mean: 0.8,
            hidden_init_std: 0.5,
            readout_init_mean: 0.0,
            readout_init_std: 0.1,
            encoding: Encoding::default(),
            exact: SolverConfig::default(),
            memory_limit_gib: 16.0,
            data: DataFiles::default(),
            events: EventSettings::default(),
            chip: eventprop_chip::ChipSettings::default(),
            learn: eventprop_core::spec::Learn::default(),
            augment: Augment::default(),
            init: InitSettings::default(),
        };
        match engine {
            EngineKind::Stepped => stepped,
            EngineKind::Chip => Self {
                loss: LossKind::MaxOverTime { reg: 4e-3 },
                ..stepped
            },
            EngineKind::Exact => Self {
                epochs: 40,
                batch_size: 32,
                lr: 3e-3,
                lr_step: 1,
                lr_gamma: 0.93,
                hidden: vec![200],
                tau_mem: 20e-3,
                tau_syn: 5e-3,
                readout_tau_mem: 20e-3,
                readout_tau_syn: 5e-3,
                loss: LossKind::defaults("first_spike", engine).expect("known kind"),
                hidden_init_mean: 1.5,
                hidden_init_std: 0.8,
                readout_init_mean: 0.93,
                readout_init_std: 0.1,
                encoding: Encoding {
                    t_early: 0.0,
                    t_late: 30e-3,
                    t_bias: 0.0,
                    t_sim: 60e-3,
                    dt: 1e-4,
                },
                ..stepped
            },
        }
    }

    /// The defaults of `task` on `engine`: [`TrainConfig::preset`] for Yin-Yang; for event
    /// data a 700-256-20-style network on the SHD recipe's time scale (DESIGN.md "Event
    /// data"): 1 ms steps, one hidden layer of 256 with `tau_mem = 20 ms`,
    /// `tau_syn = 5 ms` (readout the same), batch 32, Adam `1e-3`; stepped: max-over-time
    /// readout cross-entropy; exact: first-spike cross-entropy with times scaled to the
    /// ~1 s samples (`tau0 = 20 ms`, `tau1 = 200 ms`); initial weight scales calibrated on
    /// the data (`init.rule = "data"`, [`crate::init`]), starting from `N(0, 0.4)` hidden.
    pub fn preset_for(task: Task, engine: EngineKind) -> Self {
        let base = Self::preset(engine);
        match task {
            Task::Yinyang => base,
            Task::Events => Self {
                task,
                epochs: 20,
                batch_size: 32,
                eval_batch_size: 64,
                lr: 1e-3,
                lr_step: 1,
                lr_gamma: 1.0,
                hidden: vec![256],
                tau_mem: 20e-3,
                tau_syn: 5e-3,
                readout_tau_mem: 20e-3,
                readout_tau_syn: 5e-3,
                hidden_init_mean: 0.0,
                hidden_init_std: 0.4,
                readout_init_mean: match engine {
                    EngineKind::Stepped | EngineKind::Chip => 0.0,
                    // First-spike outputs must fire at the start (measured: mean 0 left
                    // every output silent on the SHD-shaped timing task, 0.3 trains).
                    EngineKind::Exact => 0.3,
                },
                readout_init_std: 0.1,
                loss: match engine {
                    EngineKind::Stepped | EngineKind::Chip => LossKind::MaxOverTime { reg: 4e-4 },
                    EngineKind::Exact => LossKind::FirstSpike {
                        tau0: 20e-3,
                        tau1: 200e-3,
                        alpha: 3e-3,
                        silent_label_gamma: 30.0,
                    },
                },
                // The hidden and readout init values above are where the calibration
                // starts (crate::init).
                init: InitSettings {
                    rule: InitRule::Data,
                    ..InitSettings::default()
                },
                ..base
            },
        }
    }

    /// The config of `layers` applied in order over the preset of the task and engine
    /// that the last layers naming `task` and `engine` choose (Yin-Yang and stepped when
    /// none does). `origin` names each layer in error messages (a file name, `flags`).
    ///
    /// # Errors
    /// [`Error::Config`] for an unknown key (with its full path), a wrong type, or an
    /// unknown engine or loss kind.
    pub fn layered(layers: &[(&str, toml::Table)]) -> Result<Self> {
        let mut engine = EngineKind::Stepped;
        let mut task = Task::Yinyang;
        for (origin, t) in layers {
            if let Some(v) = t.get("engine") {
                engine = v
                    .as_str()
                    .ok_or_else(|| "expected a string".to_string())
                    .and_then(str::parse)
                    .map_err(|e| Error::config(origin, format!("engine: {e}")))?;
            }
            if let Some(v) = t.get("task") {
                task = v
                    .as_str()
                    .ok_or_else(|| "expected a string".to_string())
                    .and_then(str::parse)
                    .map_err(|e| Error::config(origin, format!("task: {e}")))?;
            }
        }
        let mut base =
            toml::Table::try_from(Self::preset_for(task, engine)).expect("the preset serialises");
        for (origin, t) in layers {
            merge(&mut base, t, "", engine, origin)?;
        }
        let origin = layers.last().map_or("defaults", |l| l.0);
        let mut config: Self = toml::Value::Table(base)
            .try_into()
            .map_err(|e: toml::de::Error| Error::config(origin, one_line(&e)))?;
        config.pin_given_inits(layers);
        Ok(config)
    }

    /// Under the data rule, an init value that a layer names explicitly is not calibrated:
    /// `hidden_init_std` fixes every hidden layer's std, `readout_init_mean` or
    /// `readout_init_std` the output weights' (unless `[init]` already holds values).
    fn pin_given_inits(&mut self, layers: &[(&str, toml::Table)]) {
        if self.init.rule != InitRule::Data {
            return;
        }
        let named = |key: &str| layers.iter().any(|(_, t)| t.contains_key(key));
        if named("hidden_init_std") && self.init.hidden_std.is_none() {
            self.init.hidden_std = Some(vec![self.hidden_init_std; self.hidden.len()]);
        }
        if (named("readout_init_mean") || named("readout_init_std"))
            && self.init.readout_mean.is_none()
            && self.init.readout_std.is_none()
        {
            self.init.readout_mean = Some(self.readout_init_mean);
            self.init.readout_std = Some(self.readout_init_std);
        }
    }

    /// Parses a TOML config file (layered over the preset of its `engine`).
    ///
    /// # Errors
    /// [`Error::Io`] / [`Error::Format`] naming the file; [`Error::Config`] as
    /// [`TrainConfig::layered`].
    pub fn from_toml_file(path: &Path) -> Result<Self> {
        let table = read_toml_table(path)?;
        Self::layered(&[(&path.display().to_string(), table)])
    }

    /// Checks every value ([`TrainConfig::validate_settings`]) and the memory estimate
    /// ([`TrainConfig::check_memory`]). Whether an engine can run the config is checked
    /// when it is built ([`crate::engine::build`]; the trainer checks settings, builds the
    /// engine, then checks memory).
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the field.
    pub fn validate(&self) -> Result<()> {
        self.validate_settings()?;
        self.check_memory()
    }

    /// Checks every value and the network description.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the field.
    pub fn validate_settings(&self) -> Result<()> {
        match self.task {
            Task::Yinyang => self.encoding.validate()?,
            Task::Events => {
                self.events.validate()?;
                if self.data.train.is_none() {
                    return Err(Error::invalid(
                        "data.train",
                        "a training file for task `events`",
                        "none",
                    ));
                }
                for (name, missing) in [
                    ("events.t_max", self.events.t_max.is_none()),
                    ("events.channels", self.events.channels.is_none()),
                    ("events.classes", self.events.classes.is_none()),
                ] {
                    if missing {
                        return Err(Error::invalid(
                            name,
                            "a value (given, or taken from the data by `Trainer::new`)",
                            "none",
                        ));
                    }
                }
            }
        }
        for (name, v) in [
            ("epochs", self.epochs),
            ("batch_size", self.batch_size),
            ("train_size", self.train_size),
            ("eval_batch_size", self.eval_batch_size),
        ] {
            if v == 0 {
                return Err(Error::invalid(name, ">= 1", v));
            }
        }
        Adam::new(self.lr, self.beta1, self.beta2, self.eps)?;
        StepLr::new(self.lr, self.lr_step, self.lr_gamma)?;
        self.augment.validate()?;
        if !(self.rate_reg.is_finite() && self.rate_reg >= 0.0) {
            return Err(Error::invalid("rate_reg", "finite and >= 0", self.rate_reg));
        }
        for (name, v) in [
            ("reg.upper_rate", self.reg.upper_rate),
            ("reg.lower_rate", self.reg.lower_rate),
            ("reg.upper_strength", self.reg.upper_strength),
            ("reg.lower_strength", self.reg.lower_strength),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::invalid(name, "finite and >= 0", v));
            }
        }
        if self.reg.lower_rate > self.reg.upper_rate {
            return Err(Error::invalid(
                "reg.lower_rate",
                format!("<= reg.upper_rate = {}", self.reg.upper_rate),
                self.reg.lower_rate,
            ));
        }
        if let Some(c) = self.weight_clip {
            if !(c.is_finite() && c > 0.0) {
                return Err(Error::invalid("weight_clip", "finite and > 0", c));
            }
        }
        for (name, v) in [
            ("hidden_init_mean", self.hidden_init_mean),
            ("readout_init_mean", self.readout_init_mean),
        ] {
            if !v.is_finite() {
                return Err(Error::invalid(name, "finite", v));
            }
        }
        for (name, v) in [
            ("hidden_init_std", self.hidden_init_std),
            ("readout_init_std", self.readout_init_std),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::invalid(name, "finite and >= 0", v));
            }
        }
        self.init.validate(self.hidden.len())?;
        match self.loss {
            LossKind::MaxOverTime { reg } => {
                if !(reg.is_finite() && reg >= 0.0) {
                    return Err(Error::invalid("loss.reg", "finite and >= 0", reg));
                }
            }
            LossKind::FirstSpike {
                tau0,
                tau1,
                alpha,
                silent_label_gamma,
            } => {
                for (name, v) in [("loss.tau0", tau0), ("loss.tau1", tau1)] {
                    if !(v.is_finite() && v > 0.0) {
                        return Err(Error::invalid(name, "finite and > 0", v));
                    }
                }
                for (name, v) in [
                    ("loss.alpha", alpha),
                    ("loss.silent_label_gamma", silent_label_gamma),
                ] {
                    if !(v.is_finite() && v >= 0.0) {
                        return Err(Error::invalid(name, "finite and >= 0", v));
                    }
                }
            }
            LossKind::Sum => {}
            LossKind::SumExp { tau_w } => {
                if let Some(v) = tau_w {
                    if !(v.is_finite() && v > 0.0) {
                        return Err(Error::invalid("loss.tau_w", "finite and > 0", v));
                    }
                }
            }
        }
        Ok(self.network().validate()?)
    }

    /// Estimated peak memory (measured model, DESIGN.md "Memory estimate"):
    ///
    /// * stepped, fused path (no `[learn]` extras): `steps × max(batch_size,
    ///   eval_batch_size) × (48 B × N_out + 12 B × Σ N_hidden)` — hidden spikes are event
    ///   lists (12 B a spike, at most one per neuron and step: a bound, not a guess), the
    ///   output layer is dense (measured 3.75 values per output neuron and step);
    /// * chip, and stepped with `[learn]` extras:
    ///   `8 B × steps × max(6 × batch_size, 4 × eval_batch_size) × (N_in + Σ N)`
    ///   per batch (forward state and adjoint of every layer; factors measured: 5.8 and
    ///   3.8 values per neuron and step) — the time grid is dense;
    /// * exact: `40 B × max_spikes_per_neuron × Σ N` per sample in flight (one per thread)
    ///   — memory grows with spikes only;
    ///
    /// plus the weights with their gradient and Adam moments (`4 × 8 B` per weight) and
    /// the data sets ([`BYTES_PER_SAMPLE`] per sample).
    pub fn memory_estimate(&self) -> MemoryEstimate {
        let spec = self.network();
        let neurons: f64 = (spec.n_in + spec.hidden.iter().sum::<usize>() + spec.n_out) as f64;
        let weights: f64 = spec
            .weight_shapes()
            .iter()
            .map(|&(o, i)| o as f64 * i as f64)
            .sum::<f64>()
            * 32.0;
        // Event data are already in memory when the config is checked (they set its sizes):
        // only generated Yin-Yang sets are counted here.
        let samples = match (self.task, &self.data.train) {
            (Task::Events, _) => 0.0,
            (Task::Yinyang, Some(_)) => 0.0,
            (Task::Yinyang, None) => {
                self.train_size as f64 + self.val_size as f64 + self.test_size as f64
            }
        };
        let data = samples * BYTES_PER_SAMPLE;
        let (batch, what) = match self.engine {
            // The fused path (stepped engine without [learn] extras): hidden spikes as
            // event lists (12 B a spike, at most one per neuron and step), the few output
            // neurons on the dense grid.
            EngineKind::Stepped if !self.learn.any() => {
                let steps = self.steps() as f64;
                let (rows, which) = if self.batch_size >= self.eval_batch_size {
                    (self.batch_size, "batch_size")
                } else {
                    (self.eval_batch_size, "eval_batch_size")
                };
                let hidden = spec.hidden.iter().sum::<usize>() as f64;
                let per = steps * (48.0 * spec.n_out as f64 + 12.0 * hidden);
                (
                    per * rows as f64,
                    format!(
                        "the time grid: {steps} steps (t_sim / dt) × {rows} samples ({which}) × ({} output neurons × 48 B + {hidden} hidden neurons × 12 B for at most one spike a step)",
                        spec.n_out
                    ),
                )
            }
            EngineKind::Stepped | EngineKind::Chip => {
                let steps = self.steps() as f64;
                let train = 6.0 * self.batch_size as f64;
                let eval = 4.0 * self.eval_batch_size as f64;
                let per = 8.0 * steps * neurons;
                (
                    per * train.max(eval),
                    format!(
                        "the time grid: {steps} steps (t_sim / dt) × {} samples ({}) × {neurons} neurons",
                        if train >= eval { self.batch_size } else { self.eval_batch_size },
                        if train >= eval { "batch_size" } else { "eval_batch_size" },
                    ),
                )
            }
            EngineKind::Exact => {
                let threads = rayon::current_num_threads() as f64;
                (
                    40.0 * self.exact.max_spikes_per_neuron as f64 * neurons * threads,
                    format!(
                        "spike buffers: exact.max_spikes_per_neuron = {} × {neurons} neurons × {threads} threads",
                        self.exact.max_spikes_per_neuron
                    ),
                )
            }
        };
        let parts = [
            (batch, what),
            (
                weights,
                format!(
                    "the weights: {} inputs, {} outputs, {} hidden",
                    spec.n_in,
                    spec.n_out,
                    spec.hidden
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            ),
            (
                data,
                format!("the data: {samples} samples (train_size + val_size + test_size)"),
            ),
        ];
        let bytes = parts.iter().map(|p| p.0).sum();
        let dominant = parts
            .into_iter()
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|p| p.1)
            .unwrap_or_default();
        MemoryEstimate { bytes, dominant }
    }

    /// Refuses a config whose [`TrainConfig::memory_estimate`] exceeds `memory_limit_gib`.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming `memory`, the estimate, the limit and what dominates.
    pub fn check_memory(&self) -> Result<()> {
        if !(self.memory_limit_gib.is_finite() && self.memory_limit_gib > 0.0) {
            return Err(Error::invalid(
                "memory_limit_gib",
                "finite and > 0",
                self.memory_limit_gib,
            ));
        }
        let e = self.memory_estimate();
        let gib = e.bytes / GIB;
        if gib > self.memory_limit_gib {
            return Err(Error::Invalid {
                arg: "memory",
                expected: format!(
                    "an estimated peak below memory_limit_gib = {} GiB",
                    self.memory_limit_gib
                ),
                actual: format!(
                    "{gib:.1} GiB, mostly {} (reduce those, or raise --memory-limit-gib)",
                    e.dominant
                ),
            });
        }
        Ok(())
    }

    /// Time step of the grid (s): `encoding.dt` (Yin-Yang) or `events.dt`.
    pub fn dt(&self) -> f64 {
        match self.task {
            Task::Yinyang => self.encoding.dt,
            Task::Events => self.events.dt,
        }
    }

    /// The simulated window (s): `encoding.t_sim` (Yin-Yang) or `events.t_max` (0 while it
    /// is not yet taken from the data).
    pub fn t_sim(&self) -> f64 {
        match self.task {
            Task::Yinyang => self.encoding.t_sim,
            Task::Events => self.events.t_max.unwrap_or(0.0),
        }
    }

    /// Steps of the grid: `round(t_sim / dt)`.
    pub fn steps(&self) -> usize {
        (self.t_sim() / self.dt()).round().max(0.0) as usize
    }

    /// The network this config describes.
    pub fn network(&self) -> NetworkSpec {
        let lif = Lif {
            leak: self.leak,
            reset: self.reset,
            threshold: self.threshold,
            tau_syn: self.tau_syn,
            tau_mem: self.tau_mem,
        };
        let readout = match self.loss {
            LossKind::MaxOverTime { .. } | LossKind::Sum | LossKind::SumExp { .. } => {
                Readout::Integrator {
                    tau_syn: self.readout_tau_syn,
                    tau_mem: self.readout_tau_mem,
                }
            }
            LossKind::FirstSpike { .. } => Readout::Spiking(Lif {
                tau_syn: self.readout_tau_syn,
                tau_mem: self.readout_tau_mem,
                ..lif
            }),
        };
        let (n_in, n_out) = match self.task {
            Task::Yinyang => (yinyang::N_INPUTS, yinyang::N_CLASSES),
            Task::Events => (
                self.events.channels.unwrap_or(0),
                self.events.classes.unwrap_or(0),
            ),
        };
        NetworkSpec {
            n_in,
            hidden: self.hidden.clone(),
            n_out,
            lif,
            readout,
            learn: self.learn,
        }
    }

    /// The weight initialisations: `hidden_init_*` for every hidden layer, then
    /// `readout_init_*` for the output weights.
    ///
    /// Values stored in `[init]` (chosen by the data rule, or given) take their place.
    pub fn inits(&self) -> Vec<Init> {
        let mut v: Vec<Init> = (0..self.hidden.len())
            .map(|k| Init {
                mean: self.hidden_init_mean,
                std: self
                    .init
                    .hidden_std
                    .as_ref()
                    .and_then(|h| h.get(k).copied())
                    .unwrap_or(self.hidden_init_std),
            })
            .collect();
        v.push(Init {
            mean: self.init.readout_mean.unwrap_or(self.readout_init_mean),
            std: self.init.readout_std.unwrap_or(self.readout_init_std),
        });
        v
    }

    /// The data splits: the files of [`DataFiles`] (`[data]`) where given, else generated
    /// with sizes from the config and seeds from [`yinyang::split_seeds`] (5000/1000/1000
    /// reproduce [`yinyang::standard_splits`]). With a train file and no validation file
    /// the validation set is the last `val_size` samples of the train file.
    ///
    /// # Errors
    /// The readers' errors ([`eventprop_data::files::read_yinyang`]), naming the file;
    /// [`Error::Invalid`] for a `val_size` that leaves no training sample of a train file.
    pub fn splits(&self) -> Result<Splits> {
        let [a, b, c] = yinyang::split_seeds(self.data_seed);
        let read = |p: &PathBuf| eventprop_data::files::read_yinyang(p);
        let (train, validation) = match (&self.data.train, &self.data.validation) {
            (Some(t), Some(v)) => (read(t)?, read(v)?),
            (Some(t), None) => {
                let mut train = read(t)?;
                if self.val_size >= train.len() {
                    return Err(Error::invalid(
                        "val_size",
                        format!(
                            "< {} (the samples of data.train {}; without data.validation the validation set is held out of the train file)",
                            train.len(),
                            t.display()
                        ),
                        self.val_size,
                    ));
                }
                let keep = train.len() - self.val_size;
                let validation = yinyang::Dataset {
                    features: train.features.split_off(keep),
                    labels: train.labels.split_off(keep),
                };
                (train, validation)
            }
            (None, v) => (
                yinyang::generate(self.train_size, a),
                match v {
                    Some(v) => read(v)?,
                    None => yinyang::generate(self.val_size, b),
                },
            ),
        };
        let test = match &self.data.test {
            Some(p) => read(p)?,
            None => yinyang::generate(self.test_size, c),
        };
        Ok(Splits {
            train,
            validation,
            test,
        })
    }
}

/// Reads a TOML file into a table.
///
/// # Errors
/// [`Error::Io`] for an unreadable file, [`Error::Format`] for invalid TOML (with line and
/// column).
pub fn read_toml_table(path: &Path) -> Result<toml::Table> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    text.parse::<toml::Table>()
        .map_err(|e| Error::format(path, format!("invalid TOML: {}", one_line(&e))))
}

/// `layer` with dotted keys (`encoding.t_sim = 1`) turned into nested tables.
fn expand_dotted(layer: &toml::Table) -> toml::Table {
    let mut out = toml::Table::new();
    for (key, value) in layer {
        let mut parts: Vec<&str> = key.split('.').collect();
        let last = parts.pop().expect("split yields one part");
        let mut t = &mut out;
        for p in parts {
            let slot = t
                .entry(p.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !slot.is_table() {
                *slot = toml::Value::Table(toml::Table::new());
            }
            t = slot.as_table_mut().expect("made a table above");
        }
        t.insert(last.to_string(), value.clone());
    }
    out
}

/// Merges `layer` into `base` (complete for its level): values replace, tables merge,
/// dotted keys (`encoding.t_sim`) address nested tables; a key missing from `base` is
/// unknown. A new `loss.kind` first resets the loss table to that kind's defaults.
fn merge(
    base: &mut toml::Table,
    layer: &toml::Table,
    path: &str,
    engine: EngineKind,
    origin: &str,
) -> Result<()> {
    for (key, value) in &expand_dotted(layer) {
        let full = format!("{path}{key}");
        if path.is_empty() && key == "loss" {
            if let Some(kind) = value.get("kind") {
                let kind = kind.as_str().ok_or_else(|| {
                    Error::config(origin, "loss.kind: expected a string".to_string())
                })?;
                let current = base
                    .get("loss")
                    .and_then(|l| l.get("kind"))
                    .and_then(|k| k.as_str());
                let fresh = LossKind::defaults(kind, engine)
                    .map_err(|e| Error::config(origin, e.to_string()))?;
                // `time` names `first_spike`: the same kind keeps its settings.
                if current != Some(fresh.name()) {
                    base.insert(
                        "loss".into(),
                        toml::Value::try_from(fresh).expect("the loss serialises"),
                    );
                }
            }
        }
        let is_sum_exp = base.get("kind").and_then(|k| k.as_str()) == Some("sum_exp");
        match (base.get_mut(key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(l)) => {
                merge(b, l, &format!("{full}."), engine, origin)?;
            }
            (Some(toml::Value::Table(_)), _) => {
                return Err(Error::config(origin, format!("{full}: expected a table")));
            }
            (Some(slot), _) => *slot = value.clone(),
            // `loss.tau_w` belongs to `sum_exp` only.
            (None, _)
                if OPTIONAL_KEYS.contains(&full.as_str())
                    && (full != "loss.tau_w" || is_sum_exp) =>
            {
                base.insert(key.clone(), value.clone());
            }
            (None, _) => {
                let known: Vec<&str> = base.keys().map(String::as_str).collect();
                return Err(Error::config(
                    origin,
                    format!("unknown key `{full}` (known here: {})", known.join(", ")),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod engine_key_tests {
    use super::*;

    /// The keys each engine ignores (the table the command-line tool refused flags by
    /// before it was derived from [`ENGINE_KEYS`]).
    #[test]
    fn engines_read_their_sections_only() {
        let unread = |e: EngineKind| -> Vec<&str> {
            [
                "exact",
                "exact.max_spikes_per_neuron",
                "chip",
                "chip.seed",
                "learn.recurrent",
                "discretization",
                "encoding.dt",
                "encoding.t_sim",
                "events.dt",
                "loss.reg",
                "loss.kind",
                "rate_reg",
                "lr",
            ]
            .into_iter()
            .filter(|k| !e.reads(k))
            .collect()
        };
        assert_eq!(
            unread(EngineKind::Stepped),
            ["exact", "exact.max_spikes_per_neuron", "chip", "chip.seed"]
        );
        assert_eq!(
            unread(EngineKind::Exact),
            [
                "chip",
                "chip.seed",
                "discretization",
                "encoding.dt",
                "events.dt",
                "loss.reg",
                "rate_reg"
            ]
        );
        assert_eq!(
            unread(EngineKind::Chip),
            ["exact", "exact.max_spikes_per_neuron", "learn.recurrent"]
        );
        // a key that only shares a prefix with a section is read by all
        assert!(EngineKind::Stepped.reads("exactly"));
    }
}

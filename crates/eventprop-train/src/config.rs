//! One configuration for every engine: the run's own keys at the top level (task, engine,
//! seed, epochs, sizes) and one section per component (`[optim]`, `[network]`,
//! `[stepped]`, `[exact]`, `[chip]`, `[loss]`, `[events]`, …), each built into its component
//! by that component ([`OptimSettings::adam`], [`NetworkSettings::spec`], the engines from
//! [`EngineSettings`] via [`TrainConfig::engine`]). The TOML keys are those of `--config`
//! files; the CLI flags map onto the same keys.
//!
//! `task` chooses the data: `yinyang` (the generator or Yin-Yang feature files, latency
//! encoded by `[encoding]`) or `events` (spike-event files, binned by `[events]`).
//!
//! Settings are layered: the preset of the chosen task and engine
//! ([`TrainConfig::preset_for`]: the common base, then the engine's registration) ←
//! each layer in turn ([`TrainConfig::layered`]; the CLI passes the `--config` file, then
//! the flags). A layer names only the keys it changes; tables may be partial. An unknown
//! key at any level is an error naming its full path. Changing `loss.kind` first resets the
//! `[loss]` table to that kind's defaults for the engine. Keys that were at the top level
//! before the sections existed ([`MOVED_KEYS`]) are still read there.

use std::path::{Path, PathBuf};

use eventprop_exact::SolverConfig;
use serde::{Deserialize, Serialize};

use crate::engine::delay_line::DelayLine;
pub use crate::engine::EngineKind;
use crate::engine::{Engine, EngineSettings};
use crate::error::{Error, Result};
use crate::init_settings::{InitRule, InitSettings};
use crate::loss::{LossKind, RateTargets};
pub use crate::optim::OptimSettings;
use eventprop_core::error::one_line;
pub use eventprop_core::spec::NetworkSettings;
use eventprop_core::spec::{Init, NetworkSpec};
pub use eventprop_core::stepped::SteppedSettings;
use eventprop_data::augment::Augment;
use eventprop_data::yinyang::{self, Encoding, Splits};

/// Seed of the training shuffle of epoch `epoch` (0-based) of a run seeded `seed` (the
/// trainer's order, and the calibration batches of [`crate::init`]).
pub fn shuffle_seed(seed: u64, epoch: usize) -> u64 {
    seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Every setting of a run. Field names are the TOML keys (sections are tables).
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
    /// Number of epochs; `0` = automatic ([`TrainConfig::resolve_epochs`]: at least
    /// [`AUTO_MIN_EPOCHS`] and enough for `min_steps` optimiser steps; the event
    /// presets' default). A run stores the number it chose.
    pub epochs: usize,
    /// With `epochs = 0`: the fewest optimiser steps (batches) a run trains for, so that a
    /// small training set still gets enough updates.
    #[serde(default)]
    pub min_steps: usize,
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
    /// The optimiser (`[optim]`: Adam, its step schedule, weight clipping).
    pub optim: OptimSettings,
    /// The network (`[network]`: hidden sizes, neuron parameters, initial weights).
    pub network: NetworkSettings,
    /// The time-stepped engines' settings (`[stepped]`: adjoint discretization, hidden
    /// rate regulariser; stepped and chip engines).
    pub stepped: SteppedSettings,
    /// Loss (and with it the output layer: integrator for `max_over_time`, spiking for
    /// `first_spike`).
    pub loss: LossKind,
    /// Per-neuron spike-count targets of the hidden layers (`[reg]`: `upper_rate`,
    /// `lower_rate`, `upper_strength`, `lower_strength`; off while both strengths are 0,
    /// the default), both engines ([`RateTargets`]).
    #[serde(default)]
    pub reg: RateTargets,
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
    /// The delay-line input: copies of every channel fed to the network, copy `k` delayed
    /// by `k × delay_line_spacing` (the network has `channels × delay_line` inputs; 1 = the
    /// data as they are). [`crate::engine::delay_line`].
    #[serde(default = "one")]
    pub delay_line: usize,
    /// Delay between successive copies of the delay line (s).
    #[serde(default = "default_delay_line_spacing")]
    pub delay_line_spacing: f64,
    /// Channel binning: channel `c` is input `c / channel_bin` (neighbouring channels
    /// merged; the network has `ceil(channels / channel_bin)` inputs per delay-line copy),
    /// for every engine, so that software trains on the input a chip gets. Absent: taken
    /// when the run starts (and stored): with the chip engine the smallest bin that fits
    /// the chip's synapse rows (`chip.input_rows`,
    /// [`eventprop_chip::input::channel_bin_for`]), else 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_bin: Option<usize>,
}

fn one() -> usize {
    1
}

/// The loss-shaping paper's SHD spacing, 30 ms.
fn default_delay_line_spacing() -> f64 {
    30e-3
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
            delay_line: 1,
            delay_line_spacing: default_delay_line_spacing(),
            channel_bin: None,
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
        if !(1..=64).contains(&self.delay_line) {
            return Err(Error::invalid(
                "events.delay_line",
                "1 to 64 copies",
                self.delay_line,
            ));
        }
        if !(self.delay_line_spacing.is_finite() && self.delay_line_spacing > 0.0) {
            return Err(Error::invalid(
                "events.delay_line_spacing",
                "finite and > 0",
                self.delay_line_spacing,
            ));
        }
        if let Some(c) = self.channels {
            if c.checked_mul(self.delay_line)
                .is_none_or(|n| n > u32::MAX as usize)
            {
                return Err(Error::invalid(
                    "events.delay_line",
                    "channels × copies that fit a 32-bit neuron index",
                    format!("{c} × {}", self.delay_line),
                ));
            }
        }
        if let Some(b) = self.channel_bin {
            if !(1..=u32::MAX as usize).contains(&b) {
                return Err(Error::invalid(
                    "events.channel_bin",
                    "1 to 2^32 - 1 channels per input",
                    b,
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

/// The fewest epochs an automatic epoch count (`epochs = 0`) chooses
/// ([`TrainConfig::resolve_epochs`]).
pub const AUTO_MIN_EPOCHS: usize = 20;

/// Keys (full paths) that may be absent from a complete config (optional settings).
const OPTIONAL_KEYS: [&str; 14] = [
    "optim.weight_clip",
    "chip.calibration",
    "loss.tau_w",
    "data.train",
    "data.validation",
    "data.test",
    "data.fingerprints",
    "events.t_max",
    "events.channels",
    "events.classes",
    "events.channel_bin",
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
        if let Some(l) = (engine.registration().loss_defaults)(kind) {
            return Ok(l);
        }
        match kind {
            "max_over_time" => Ok(Self::MaxOverTime { reg: 4e-4 }),
            "sum" => Ok(Self::Sum),
            "sum_exp" => Ok(Self::SumExp { tau_w: None }),
            "first_spike" | "time" => Ok(Self::FirstSpike {
                tau0: 1e-6,
                tau1: 2e-5,
                alpha: 0.0,
                silent_label_gamma: 0.0,
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

/// The event-data preset of every engine, over the engine's Yin-Yang preset (the engine's
/// [`crate::engine::Registration::events_preset`] follows): a 700-256-20-style network on
/// the SHD recipe's time scale (DESIGN.md "Event data"): 1 ms steps, one hidden layer of
/// 256 with `tau_mem = 20 ms`, `tau_syn = 5 ms` (readout the same), batch 32, Adam `5e-3`,
/// the `sum_exp` loss with a lower spike-count target, automatic epochs (`epochs = 0`,
/// [`TrainConfig::resolve_epochs`]); initial weight scales calibrated on the data
/// (`init.rule = "data"`, [`crate::init`]), starting from `N(0, 0.4)` hidden and
/// `N(0, 0.1)` readout.
pub const EVENTS_PRESET: &str = r#"
    task = "events"
    epochs = 0
    min_steps = 1500
    batch_size = 32
    eval_batch_size = 64
    [optim]
    lr = 5e-3
    lr_step = 1
    lr_gamma = 1.0
    [network]
    hidden = [256]
    tau_mem = 20e-3
    tau_syn = 5e-3
    readout_tau_mem = 20e-3
    readout_tau_syn = 5e-3
    hidden_init_mean = 0.0
    hidden_init_std = 0.4
    readout_init_mean = 0.0
    readout_init_std = 0.1
    [loss]
    kind = "sum_exp"
    [reg]
    lower_rate = 1.0
    lower_strength = 1e-3
    [init]
    rule = "data"
"#;

/// Named recipes: complete training setups laid over the preset of their task and engine
/// (`eventprop train events --preset NAME`), before any `--config` file and the flags. Each
/// is a TOML file of the crate's `recipes/` folder, compiled in.
pub const RECIPES: &[Recipe] = &[Recipe {
    name: "shd",
    task: Task::Events,
    toml: include_str!("../recipes/shd.toml"),
}];

/// One of [`RECIPES`].
#[derive(Debug, Clone, Copy)]
pub struct Recipe {
    /// The name `--preset` takes.
    pub name: &'static str,
    /// The task it trains.
    pub task: Task,
    /// Its settings (keys of [`TrainConfig`]).
    pub toml: &'static str,
}

impl Recipe {
    /// The recipe called `name`.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming `--preset` and the known names.
    pub fn named(name: &str) -> Result<&'static Recipe> {
        RECIPES.iter().find(|r| r.name == name).ok_or_else(|| {
            let names: Vec<&str> = RECIPES.iter().map(|r| r.name).collect();
            Error::invalid("--preset", format!("one of {}", names.join(", ")), name)
        })
    }

    /// Its settings as a config layer.
    pub fn table(&self) -> toml::Table {
        self.toml.parse().expect("a recipe is valid TOML")
    }
}

impl TrainConfig {
    /// The common base of every preset: the seed example (docs/spec.md §5) with the tuned
    /// changes that reach ≥ 95 % test accuracy in 10 epochs (measured, see DESIGN.md):
    /// `Corrected` discretization, hidden `tau_mem = tau_syn = 4 µs` (seed: 6 µs), Adam lr
    /// `1e-2` (seed: `2e-3`), `StepLR(step 2, gamma 0.7)` (seed: step 10, gamma 0.9),
    /// hidden init std `0.5` (seed: 0.25). Everything else is the seed's: 120 hidden,
    /// batch 50, readout LI with 6 µs, max-over-time + `4e-4 mean(score²)`, hidden init
    /// mean 0.8, readout `N(0, 0.1)`. It is the stepped engine's preset.
    fn base(engine: EngineKind) -> Self {
        Self {
            task: Task::Yinyang,
            engine,
            seed: 0,
            data_seed: 0,
            epochs: 10,
            min_steps: 0,
            batch_size: 50,
            train_size: 5000,
            val_size: 1000,
            test_size: 1000,
            eval_batch_size: 1000,
            optim: OptimSettings {
                lr: 1e-2,
                lr_step: 2,
                lr_gamma: 0.7,
                ..OptimSettings::default()
            },
            network: NetworkSettings {
                hidden: vec![120],
                tau_mem: 4e-6,
                tau_syn: 4e-6,
                threshold: 1.0,
                leak: 0.0,
                reset: 0.0,
                readout_tau_mem: 6e-6,
                readout_tau_syn: 6e-6,
                hidden_init_mean: 0.8,
                hidden_init_std: 0.5,
                readout_init_mean: 0.0,
                readout_init_std: 0.1,
            },
            stepped: SteppedSettings::default(),
            loss: LossKind::MaxOverTime { reg: 4e-4 },
            reg: RateTargets::default(),
            encoding: Encoding::default(),
            exact: SolverConfig::default(),
            memory_limit_gib: 16.0,
            data: DataFiles::default(),
            events: EventSettings::default(),
            chip: eventprop_chip::ChipSettings::default(),
            learn: eventprop_core::spec::Learn::default(),
            augment: Augment::default(),
            init: InitSettings::default(),
        }
    }

    /// The Yin-Yang defaults of an engine: the common base (the seed example with tuned
    /// changes, the stepped engine's preset) with the engine's
    /// [`crate::engine::Registration::preset`] over it (each engine's documents its own).
    pub fn preset(engine: EngineKind) -> Self {
        Self::preset_for(Task::Yinyang, engine)
    }

    /// The defaults of `task` on `engine`: [`TrainConfig::preset`] for Yin-Yang; for event
    /// data [`EVENTS_PRESET`] and then the engine's
    /// [`crate::engine::Registration::events_preset`] over it.
    pub fn preset_for(task: Task, engine: EngineKind) -> Self {
        let r = engine.registration();
        let mut layers = vec![r.preset];
        if task == Task::Events {
            layers.extend([EVENTS_PRESET, r.events_preset]);
        }
        let mut t = toml::Table::try_from(Self::base(engine)).expect("the base serialises");
        for layer in layers {
            let layer: toml::Table = layer.parse().expect("a preset is valid TOML");
            merge(&mut t, &layer, "", engine, "preset").expect("a preset names known keys");
        }
        toml::Value::Table(t)
            .try_into()
            .expect("a preset is a complete config")
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
        let layers = layers
            .iter()
            .map(|(origin, t)| Ok((*origin, into_sections(t, origin)?)))
            .collect::<Result<Vec<_>>>()?;
        let mut base =
            toml::Table::try_from(Self::preset_for(task, engine)).expect("the preset serialises");
        for (origin, t) in &layers {
            merge(&mut base, t, "", engine, origin)?;
        }
        let origin = layers.last().map_or("defaults", |l| l.0);
        let mut config: Self = toml::Value::Table(base)
            .try_into()
            .map_err(|e: toml::de::Error| Error::config(origin, one_line(&e)))?;
        config.pin_given_inits(&layers);
        Ok(config)
    }

    /// Under the data rule, an init value that a layer names explicitly is not calibrated:
    /// `hidden_init_std` fixes every hidden layer's std, `readout_init_mean` or
    /// `readout_init_std` the output weights' (unless `[init]` already holds values).
    fn pin_given_inits(&mut self, layers: &[(&str, toml::Table)]) {
        if self.init.rule != InitRule::Data {
            return;
        }
        let named = |key: &str| {
            layers
                .iter()
                .any(|(_, t)| t.get("network").and_then(|n| n.get(key)).is_some())
        };
        if named("hidden_init_std") && self.init.hidden_std.is_none() {
            self.init.hidden_std = Some(vec![
                self.network.hidden_init_std;
                self.network.hidden.len()
            ]);
        }
        if (named("readout_init_mean") || named("readout_init_std"))
            && self.init.readout_mean.is_none()
            && self.init.readout_std.is_none()
        {
            self.init.readout_mean = Some(self.network.readout_init_mean);
            self.init.readout_std = Some(self.network.readout_init_std);
        }
    }

    /// Chooses the epoch count of an automatic run (`epochs = 0`) for `train_samples`
    /// training samples: the larger of [`AUTO_MIN_EPOCHS`] and the epochs of
    /// `ceil(train_samples / batch_size)` batches that make at least `min_steps` optimiser
    /// steps; stores it in `epochs` and returns the line that says why. `None` (and nothing
    /// changed) when `epochs` is given.
    ///
    /// Measured reason (docs/measurements.md, "Automatic epochs"): on training sets of
    /// 540–900 samples, 20 epochs (17–29 batches each) stopped the event tasks well short
    /// of what 50–90 epochs reach.
    pub fn resolve_epochs(&mut self, train_samples: usize) -> Option<String> {
        if self.epochs != 0 {
            return None;
        }
        let batches = train_samples.div_ceil(self.batch_size.max(1)).max(1);
        let for_steps = self.min_steps.div_ceil(batches);
        self.epochs = for_steps.max(AUTO_MIN_EPOCHS);
        Some(format!(
            "{} (automatic: at least {} optimiser steps of {} per epoch, at least {} epochs; --epochs sets it)",
            self.epochs, self.min_steps, batches, AUTO_MIN_EPOCHS
        ))
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
        // Every section is checked whatever the task and engine read from it: a config (and
        // the run folder that stores it) never holds a value no run could use.
        self.encoding.validate()?;
        self.events.validate()?;
        self.exact.validate().map_err(|e| match e {
            eventprop_exact::Error::Invalid {
                arg,
                expected,
                actual,
            } => Error::Invalid {
                arg: match arg {
                    "max_spikes_per_neuron" => "exact.max_spikes_per_neuron",
                    "grazing_floor" => "exact.grazing_floor",
                    other => other,
                },
                expected,
                actual,
            },
            other => other.into(),
        })?;
        // the mock's own values (its bounds against the time grid are checked where a chip
        // engine is built: they depend on the grid it runs)
        self.chip.mock.validate()?;
        self.chip.validate_resources()?;
        // the hidden neurons every engine runs: finite, taus > 0, threshold above the leak
        // and the reset (else a neuron fires at every step without input, forever)
        let lif = eventprop_core::Lif {
            leak: self.network.leak,
            reset: self.network.reset,
            threshold: self.network.threshold,
            tau_syn: self.network.tau_syn,
            tau_mem: self.network.tau_mem,
        };
        if let Some(v) = lif.violation() {
            return Err(Error::Invalid {
                arg: match v.arg {
                    "leak" => "network.leak",
                    "reset" => "network.reset",
                    "threshold" => "network.threshold",
                    "tau_syn" => "network.tau_syn",
                    "tau_mem" => "network.tau_mem",
                    other => other,
                },
                expected: v.expected,
                actual: v.actual,
            });
        }
        match self.task {
            Task::Yinyang => {}
            Task::Events => {
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
            ("batch_size", self.batch_size),
            ("train_size", self.train_size),
            ("eval_batch_size", self.eval_batch_size),
        ] {
            if v == 0 {
                return Err(Error::invalid(name, ">= 1", v));
            }
        }
        self.optim.validate()?;
        self.stepped.validate()?;
        self.augment.validate()?;
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
        self.network.validate_inits()?;
        self.init.validate(self.network.hidden.len())?;
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

    /// Augmentation shifts that move every event of a sample out of the data in a share of
    /// their draws, as one-line warnings (without the `warning: ` prefix): a time shift
    /// drawn uniformly from `[-S, S]` does so when `|Δ| >= window` (a share `1 - window/S`
    /// of the draws), a channel shift from `[-N, N]` when `|s| >= channels` (a share
    /// `2 (N - channels + 1) / (2N + 1)`).
    pub fn augment_warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let window = self.t_sim();
        let s = self.augment.time_shift;
        if s > 0.0 && window > 0.0 && s >= window {
            out.push(format!(
                "augment.time_shift = {s} s is not below the window {window} s: {:.0} % of the \
                 draws move every event of a training sample out of it",
                100.0 * (1.0 - window / s)
            ));
        }
        let channels = match self.task {
            Task::Yinyang => Some(yinyang::N_INPUTS),
            Task::Events => self.events.channels.map(|_| self.input_channels()),
        };
        let n = self.augment.channel_shift;
        if let Some(c) = channels.filter(|&c| n >= c) {
            let share = 2.0 * (n - c + 1) as f64 / (2 * n + 1) as f64;
            out.push(format!(
                "augment.channel_shift = {n} is not below the {c} input channels: {:.0} % of \
                 the draws move every event of a training sample out of them",
                100.0 * share
            ));
        }
        out
    }

    /// Estimated peak memory (measured model, DESIGN.md "Memory estimate"): the engine's
    /// batch state ([`crate::engine::Registration::memory`]: stepped fused path, dense grid
    /// for `[learn]` extras and the chip, spike buffers for the exact engine), plus the
    /// weights with their gradient and Adam moments (`4 × 8 B` per weight) and the data
    /// sets ([`BYTES_PER_SAMPLE`] per sample).
    pub fn memory_estimate(&self) -> MemoryEstimate {
        let settings = self.engine_settings();
        let spec = &settings.network;
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
        let (batch, what) = (self.engine.registration().memory)(&settings);
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
        let spiking = matches!(self.loss, LossKind::FirstSpike { .. });
        let (n_in, n_out) = match self.task {
            Task::Yinyang => (yinyang::N_INPUTS, yinyang::N_CLASSES),
            Task::Events => (
                self.input_channels() * self.events.delay_line.max(1),
                self.events.classes.unwrap_or(0),
            ),
        };
        self.network.spec(n_in, n_out, spiking, self.learn)
    }

    /// The event data's channels after binning (`events.channel_bin`, 1 when absent): the
    /// inputs per delay-line copy (0 while the channels are not yet known; Yin-Yang: 5).
    pub fn input_channels(&self) -> usize {
        match self.task {
            Task::Yinyang => yinyang::N_INPUTS,
            Task::Events => eventprop_chip::input::binned_channels(
                self.events.channels.unwrap_or(0),
                self.events.channel_bin.unwrap_or(1),
            ),
        }
    }

    /// What the engine is built from: the network, the time grid, the batch sizes and the
    /// sections engines read.
    pub fn engine_settings(&self) -> EngineSettings {
        EngineSettings {
            network: self.network(),
            dt: self.dt(),
            steps: self.steps(),
            t_sim: self.t_sim(),
            events: self.task == Task::Events,
            batch_size: self.batch_size,
            eval_batch_size: self.eval_batch_size,
            loss: self.loss,
            reg: self.reg,
            stepped: self.stepped,
            exact: self.exact,
            chip: self.chip.clone(),
            delay_line: (self.task == Task::Events && self.events.delay_line > 1).then(|| {
                DelayLine {
                    channels: self.input_channels(),
                    copies: self.events.delay_line,
                    spacing: self.events.delay_line_spacing,
                    t_sim: self.t_sim(),
                }
            }),
        }
    }

    /// The engine this config asks for, after everything [`crate::Trainer::new`] checks
    /// before it trains, in its order: every value ([`TrainConfig::validate_settings`]),
    /// that the engine can run the config (it is built once, from its registration), and
    /// the memory estimate ([`TrainConfig::check_memory`]).
    ///
    /// # Errors
    /// The first of those errors.
    pub fn engine(&self) -> Result<Box<dyn Engine>> {
        self.engine_with(|s| crate::engine::build(self.engine, s))
    }

    /// As [`TrainConfig::engine`], with the engine that `make` builds from the settings
    /// (e.g. the stepped engine on an explicit path).
    ///
    /// # Errors
    /// As [`TrainConfig::engine`], and those of `make`.
    pub fn engine_with(
        &self,
        make: impl FnOnce(&EngineSettings) -> Result<Box<dyn Engine>>,
    ) -> Result<Box<dyn Engine>> {
        self.validate_settings()?;
        let engine = make(&self.engine_settings())?;
        self.check_memory()?;
        Ok(engine)
    }

    /// Everything [`TrainConfig::engine`] checks, without keeping the engine.
    ///
    /// # Errors
    /// As [`TrainConfig::engine`].
    pub fn check(&self) -> Result<()> {
        self.engine().map(drop)
    }

    /// The weight initialisations: `hidden_init_*` for every hidden layer, then
    /// `readout_init_*` for the output weights.
    ///
    /// Values stored in `[init]` (chosen by the data rule, or given) take their place.
    pub fn inits(&self) -> Vec<Init> {
        let net = &self.network;
        let mut v: Vec<Init> = (0..net.hidden.len())
            .map(|k| Init {
                mean: net.hidden_init_mean,
                std: self
                    .init
                    .hidden_std
                    .as_ref()
                    .and_then(|h| h.get(k).copied())
                    .unwrap_or(net.hidden_init_std),
            })
            .collect();
        v.push(Init {
            mean: self.init.readout_mean.unwrap_or(net.readout_init_mean),
            std: self.init.readout_std.unwrap_or(net.readout_init_std),
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

/// The keys that were top-level settings before the config had sections, with the
/// section that holds each now. [`TrainConfig::layered`] reads them at the top level too,
/// so configs and run folders written before the sections existed load unchanged.
pub const MOVED_KEYS: &[(&str, &str)] = &[
    ("lr", "optim"),
    ("lr_step", "optim"),
    ("lr_gamma", "optim"),
    ("beta1", "optim"),
    ("beta2", "optim"),
    ("eps", "optim"),
    ("weight_clip", "optim"),
    ("hidden", "network"),
    ("tau_mem", "network"),
    ("tau_syn", "network"),
    ("threshold", "network"),
    ("leak", "network"),
    ("reset", "network"),
    ("readout_tau_mem", "network"),
    ("readout_tau_syn", "network"),
    ("hidden_init_mean", "network"),
    ("hidden_init_std", "network"),
    ("readout_init_mean", "network"),
    ("readout_init_std", "network"),
    ("discretization", "stepped"),
    ("rate_reg", "stepped"),
];

/// `layer` with dotted keys expanded and the top-level keys of [`MOVED_KEYS`] moved into
/// their sections.
///
/// # Errors
/// [`Error::Config`] when a layer sets a key both at the top level and in its section.
fn into_sections(layer: &toml::Table, origin: &str) -> Result<toml::Table> {
    let mut t = expand_dotted(layer);
    for (key, section) in MOVED_KEYS {
        let Some(value) = t.remove(*key) else {
            continue;
        };
        let slot = t
            .entry(section.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let toml::Value::Table(table) = slot else {
            return Err(Error::config(
                origin,
                format!("{section}: expected a table"),
            ));
        };
        if table.contains_key(*key) {
            return Err(Error::config(
                origin,
                format!(
                    "{key} is given twice: at the top level (the old place) and as {section}.{key}"
                ),
            ));
        }
        table.insert(key.to_string(), value);
    }
    Ok(t)
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

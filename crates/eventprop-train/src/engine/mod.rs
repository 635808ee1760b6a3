//! Engines: what runs a network's forward pass and its gradient for a batch.
//!
//! The trainer ([`crate::Trainer`]) owns the weights, the optimiser, the data and the
//! files; an [`Engine`] only answers "loss, accuracy and gradient of these weights on
//! these samples". Four engines exist (three kinds; the stepped kind has two):
//!
//! * [`stepped::SteppedEngine`]: the seed's time-stepped function (`eventprop-core`), with
//!   the seed or the corrected adjoint discretization; max-over-time or first-spike loss;
//! * [`stepped_learn::SteppedLearnEngine`]: the stepped engine on dense layers when
//!   delays, or a spiking output's taus or thresholds, are trained (`[learn]`; recurrence
//!   and hidden thresholds and taus run on the fused path of [`stepped::SteppedEngine`], and
//!   this engine is its dense reference);
//! * [`exact::ExactEngine`]: event-based simulation with exact spike times and the exact
//!   adjoint (`eventprop-exact`); first-spike loss;
//! * [`chip::ChipEngine`]: hardware in the loop — the forward on a chip
//!   (`eventprop-chip`), the stepped adjoint on its recording.
//!
//! Each engine file ends with its [`Registration`]: its name, the config keys that it (and
//! no engine that does not list them) reads, its preset, its loss defaults, its memory
//! model and its builder. Adding an engine is one file here plus one line in the
//! `engines!` list below (which makes the [`EngineKind`] variant and dispatches to the
//! registration). Engines are built from [`EngineSettings`] — the network, the time grid
//! and the config sections engines read — not from the whole training config
//! (`TrainConfig::engine_settings` makes them).

pub mod chip;
pub mod delay_line;
pub mod exact;
pub mod stepped;
pub mod stepped_learn;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use std::fmt;
use std::str::FromStr;

use crate::error::Result;
use crate::loss::{BatchCounts, LocalCounts, LossKind, RateTargets};
use eventprop_chip::ChipSettings;
use eventprop_core::spec::NetworkSpec;
use eventprop_core::stepped::SteppedSettings;
use eventprop_data::Spike;
use eventprop_exact::SolverConfig;

/// Makes [`EngineKind`] (one variant per listed engine, named in configs by its
/// registration's `name`) and [`EngineKind::registration`] from the list of engines.
macro_rules! engines {
    ($($(#[$doc:meta])* $variant:ident => $module:ident),+ $(,)?) => {
        /// The engines, by the name used in configs, flags and checkpoints.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EngineKind {
            $($(#[$doc])* $variant),+
        }

        impl EngineKind {
            /// Every engine, in the order of the docs.
            pub const ALL: &'static [EngineKind] = &[$(EngineKind::$variant),+];

            /// What the trainer knows of this engine.
            pub fn registration(self) -> &'static Registration {
                match self {
                    $(Self::$variant => &$module::REGISTRATION),+
                }
            }
        }
    };
}

// The registry: one line per engine.
engines! {
    /// Time-stepped seed function ([`stepped::SteppedEngine`]; with `[learn]` extras
    /// [`stepped_learn::SteppedLearnEngine`]).
    Stepped => stepped,
    /// Event-based, exact spike times and gradients ([`exact::ExactEngine`]).
    Exact => exact,
    /// Hardware in the loop: forward on a chip, stepped adjoint ([`chip::ChipEngine`]).
    Chip => chip,
}

impl Default for EngineKind {
    /// The stepped engine.
    fn default() -> Self {
        Self::Stepped
    }
}

impl EngineKind {
    /// The name in configs and checkpoints.
    pub fn name(self) -> &'static str {
        self.registration().name
    }

    /// Whether this engine reads config key `key` (a dotted path such as
    /// `exact.max_steps`): false when `key` or a section above it is listed in another
    /// engine's [`Registration::reads`] but not in this engine's.
    pub fn reads(self, key: &str) -> bool {
        let under = |k: &&str| key == *k || key.starts_with(&format!("{k}."));
        let specific = Self::ALL
            .iter()
            .any(|e| e.registration().reads.iter().any(under));
        !specific || self.registration().reads.iter().any(under)
    }
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
            .iter()
            .copied()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<String> = Self::ALL.iter().map(|k| format!("`{k}`")).collect();
                format!("expected one of {}, got `{s}`", names.join(", "))
            })
    }
}

impl serde::Serialize for EngineKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for EngineKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// What the trainer knows of an engine besides running it. Each engine file defines one
/// (`REGISTRATION`) and lists itself in `engines!`.
#[derive(Debug)]
pub struct Registration {
    /// The name in configs, flags and checkpoints.
    pub name: &'static str,
    /// The config keys (sections or dotted keys) that only the engines listing them read;
    /// a flag setting a key the chosen engine does not read is refused by the command-line
    /// tool ([`EngineKind::reads`]).
    pub reads: &'static [&'static str],
    /// The engine's preset for Yin-Yang, as config keys over the common base (the stepped
    /// seed example, `TrainConfig::preset`).
    pub preset: &'static str,
    /// The engine's changes to the event-data preset (over the common event preset).
    pub events_preset: &'static str,
    /// The defaults of loss kind `kind` on this engine, where they differ from the common
    /// ones ([`LossKind::defaults`]); `None`: the common ones.
    pub loss_defaults: fn(kind: &str) -> Option<LossKind>,
    /// Estimated peak bytes of the engine's batch state, with what dominates in words.
    pub memory: fn(&EngineSettings) -> (f64, String),
    /// The engine of these settings.
    pub build: fn(&EngineSettings) -> Result<Box<dyn Engine>>,
}

/// What an engine is built from: the network, the time grid, the batch sizes and the config
/// sections engines read (made from a training config by `TrainConfig::engine_settings`).
#[derive(Debug, Clone, PartialEq)]
pub struct EngineSettings {
    /// The network (sizes, neurons, readout, what is learned).
    pub network: NetworkSpec,
    /// Time step of the grid (s).
    pub dt: f64,
    /// Steps of the grid.
    pub steps: usize,
    /// The simulated window (s).
    pub t_sim: f64,
    /// Whether the data are event files (task `events`) rather than Yin-Yang.
    pub events: bool,
    /// Training and evaluation batch sizes.
    pub batch_size: usize,
    /// Evaluation batch size.
    pub eval_batch_size: usize,
    /// The loss.
    pub loss: LossKind,
    /// Per-neuron spike-count targets of the hidden layers.
    pub reg: RateTargets,
    /// `[stepped]`.
    pub stepped: SteppedSettings,
    /// `[exact]`.
    pub exact: SolverConfig,
    /// `[chip]`.
    pub chip: ChipSettings,
    /// The delay-line input (`events.delay_line`; `None`: the data are the input).
    pub delay_line: Option<delay_line::DelayLine>,
}

/// Whether a batch is for training (gradients, training-only loss terms) or evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Loss with every training term, and the gradient.
    Train,
    /// The plain loss and accuracy, no gradient.
    Eval,
}

/// What an engine reports for one batch.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchOutcome {
    /// Sum of the per-sample losses.
    pub loss_sum: f64,
    /// Correctly classified samples.
    pub correct: usize,
    /// The predicted class of each sample, in batch order (`None`: no output neuron fired).
    pub predictions: Vec<Option<usize>>,
    /// Samples in the batch.
    pub samples: usize,
    /// Hidden spikes, summed over the batch and the hidden layers.
    pub hidden_spikes: f64,
    /// Samples in which at least one output neuron never fired (spiking outputs only).
    pub silent_outputs: Option<usize>,
    /// Batch-mean `dL/dW`, one per weight matrix ([`Pass::Train`] only).
    pub grads: Option<Vec<Array2<f64>>>,
    /// What the chip and the mapping of its recording did (chip engine only).
    pub chip: Option<ChipStats>,
}

/// Recording statistics of chip runs (summed over batches).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ChipStats {
    /// Spike events recorded, collapsed and dropped by the mapping onto the grid.
    pub mapping: eventprop_chip::MappingStats,
    /// Weights clipped at the chip's largest level.
    pub saturated_weights: u64,
    /// Weights configured.
    pub total_weights: u64,
    /// Input events offered to the chip, merged (a second event of a synapse row in a grid
    /// step) and dropped (event data only, [`eventprop_chip::input::InputMap`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<eventprop_chip::input::InputStats>,
}

impl std::ops::AddAssign for ChipStats {
    fn add_assign(&mut self, o: Self) {
        self.mapping += o.mapping;
        self.saturated_weights += o.saturated_weights;
        self.total_weights += o.total_weights;
        if let Some(b) = o.input {
            *self.input.get_or_insert_with(Default::default) += b;
        }
    }
}

/// Runs a network's forward pass and gradient on a batch.
///
/// Implementations must be deterministic: the same weights, samples and thread count give
/// bit-identical outcomes.
pub trait Engine: Send + Sync + std::fmt::Debug {
    /// Which engine this is.
    fn kind(&self) -> EngineKind;

    /// The network this engine simulates.
    fn spec(&self) -> &NetworkSpec;

    /// Loss, accuracy and (for [`Pass::Train`]) the batch-mean weight gradients of
    /// `weights` (shapes of [`NetworkSpec::weight_shapes`]) on `inputs` with `labels`.
    ///
    /// # Errors
    /// Wrong shapes or labels, non-finite values, and each engine's own failures (e.g.
    /// the exact engine's spike cap).
    fn run(
        &self,
        weights: &[Array2<f64>],
        inputs: &[&[Spike]],
        labels: &[usize],
        pass: Pass,
    ) -> Result<BatchOutcome> {
        self.run_shared(weights, inputs, labels, pass, &LocalCounts)
    }

    /// [`Engine::run`] on one process's share of a batch: the spike-count targets
    /// (`[reg]`) take their batch-mean counts from `counts` ([`BatchCounts`]: called once
    /// per training batch when the targets are on and the network has hidden layers;
    /// [`LocalCounts`] in [`Engine::run`]), so that data-parallel ranks use the global
    /// batch's mean. The chip engine, which runs on one process only, uses its own samples.
    ///
    /// # Errors
    /// As [`Engine::run`].
    fn run_shared(
        &self,
        weights: &[Array2<f64>],
        inputs: &[&[Spike]],
        labels: &[usize],
        pass: Pass,
        counts: &dyn BatchCounts,
    ) -> Result<BatchOutcome>;

    /// The spikes of every hidden layer (in order) for one input sample, as
    /// `(time in seconds, neuron)` events sorted by time — for rasters. The stepped engine
    /// reports a spike of step `t` at `t dt`.
    ///
    /// # Errors
    /// As [`Engine::run`].
    fn hidden_spikes(&self, weights: &[Array2<f64>], input: &[Spike]) -> Result<Vec<Vec<Spike>>>;

    /// The spike count of every hidden layer (in order) for each of `inputs`:
    /// `counts[b][k]` is the number of spikes [`Engine::hidden_spikes`] reports for
    /// `inputs[b]` in layer `k` (samples are independent, so the counts are the same). What
    /// the data-calibrated initialisation and the activity watchdog measure.
    ///
    /// The default runs [`Engine::hidden_spikes`] per sample (samples in parallel); the
    /// engines override it with a batched forward of the hidden layers (without the output
    /// layer where the hidden layers do not depend on it), which runs once per batch what
    /// the per-sample path runs once per sample (weight set-up, the layers' buffers).
    ///
    /// # Errors
    /// As [`Engine::hidden_spikes`] for any of the samples.
    fn hidden_counts(
        &self,
        weights: &[Array2<f64>],
        inputs: &[&[Spike]],
    ) -> Result<Vec<Vec<usize>>> {
        per_sample_counts(self, weights, inputs)
    }

    /// The largest weight magnitude the engine can apply (a chip's largest level); the
    /// trainer clamps the weights to it after every update. `None`: unbounded.
    fn weight_limit(&self) -> Option<f64> {
        None
    }
}

/// [`Engine::hidden_counts`] from [`Engine::hidden_spikes`], one sample at a time (samples
/// in parallel; the counts are integers, so they do not depend on the thread count): the
/// trait's default, and the reference of the engines' batched versions.
///
/// # Errors
/// As [`Engine::hidden_spikes`].
pub fn per_sample_counts<E: Engine + ?Sized>(
    engine: &E,
    weights: &[Array2<f64>],
    inputs: &[&[Spike]],
) -> Result<Vec<Vec<usize>>> {
    use rayon::prelude::*;
    inputs
        .par_iter()
        .map(|x| {
            Ok(engine
                .hidden_spikes(weights, x)?
                .iter()
                .map(Vec::len)
                .collect())
        })
        .collect()
}

/// The engine `settings` ask for, from the engine's registration (the trainer builds it
/// through `TrainConfig::engine`, which checks the config's values first and its memory
/// estimate after).
///
/// # Errors
/// [`crate::Error::Invalid`] when the settings do not suit the engine.
pub fn build(kind: EngineKind, settings: &EngineSettings) -> Result<Box<dyn Engine>> {
    let engine = (kind.registration().build)(settings)?;
    Ok(match settings.delay_line {
        Some(line) if line.copies > 1 => Box::new(delay_line::DelayLined::new(engine, line)),
        _ => engine,
    })
}

#[cfg(test)]
mod registry_tests {
    use super::*;

    /// The keys each engine ignores (the table the command-line tool refused flags by
    /// before it was derived from the registrations).
    #[test]
    fn engines_read_their_sections_only() {
        let unread = |e: EngineKind| -> Vec<&str> {
            [
                "exact",
                "exact.max_spikes_per_neuron",
                "chip",
                "chip.seed",
                "learn.recurrent",
                "stepped.discretization",
                "encoding.dt",
                "encoding.t_sim",
                "events.dt",
                "loss.reg",
                "loss.kind",
                "stepped.rate_reg",
                "optim.lr",
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
                "stepped.discretization",
                "encoding.dt",
                "events.dt",
                "loss.reg",
                "stepped.rate_reg"
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

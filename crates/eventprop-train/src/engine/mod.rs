//! Engines: what runs a network's forward pass and its gradient for a batch.
//!
//! The trainer ([`crate::Trainer`]) owns the weights, the optimiser, the data and the
//! files; an [`Engine`] only answers "loss, accuracy and gradient of these weights on
//! these samples". Four engines exist (three kinds; the stepped kind has two):
//!
//! * [`stepped::SteppedEngine`]: the seed's time-stepped function (`eventprop-core`), with
//!   the seed or the corrected adjoint discretization; max-over-time or first-spike loss;
//! * [`stepped_learn::SteppedLearnEngine`]: the stepped engine on dense layers when
//!   delays, taus or a spiking output's thresholds are trained (`[learn]`; recurrence and
//!   hidden thresholds run on the fused path of [`stepped::SteppedEngine`], and this engine
//!   is its dense reference);
//! * [`exact::ExactEngine`]: event-based simulation with exact spike times and the exact
//!   adjoint (`eventprop-exact`); first-spike loss;
//! * [`chip::ChipEngine`]: hardware in the loop — the forward on a chip
//!   (`eventprop-chip`), the stepped adjoint on its recording.
//!
//! Adding an engine is one file here plus one arm in [`build`] and one name in
//! [`EngineKind`].

pub mod chip;
pub mod exact;
pub mod stepped;
pub mod stepped_learn;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

pub use crate::config::EngineKind;
use crate::config::TrainConfig;
use crate::error::Result;
use eventprop_core::spec::NetworkSpec;
use eventprop_data::Spike;

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
}

impl std::ops::AddAssign for ChipStats {
    fn add_assign(&mut self, o: Self) {
        self.mapping += o.mapping;
        self.saturated_weights += o.saturated_weights;
        self.total_weights += o.total_weights;
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
    ) -> Result<BatchOutcome>;

    /// The spikes of every hidden layer (in order) for one input sample, as
    /// `(time in seconds, neuron)` events sorted by time — for rasters. The stepped engine
    /// reports a spike of step `t` at `t dt`.
    ///
    /// # Errors
    /// As [`Engine::run`].
    fn hidden_spikes(&self, weights: &[Array2<f64>], input: &[Spike]) -> Result<Vec<Vec<Spike>>>;

    /// The largest weight magnitude the engine can apply (a chip's largest level); the
    /// trainer clamps the weights to it after every update. `None`: unbounded.
    fn weight_limit(&self) -> Option<f64> {
        None
    }
}

/// Everything [`crate::Trainer::new`] checks before it trains, in its order: every value
/// ([`TrainConfig::validate_settings`]), that the engine can run the config (it is built
/// once, [`build`]), and the memory estimate ([`TrainConfig::check_memory`]).
///
/// # Errors
/// The first of those errors.
pub fn check(config: &TrainConfig) -> Result<()> {
    checked(config, build).map(drop)
}

/// The engine `make` builds for `config`, between the checks of [`check`]: values first,
/// then the engine, then the memory estimate.
///
/// # Errors
/// The first of those errors.
pub fn checked(
    config: &TrainConfig,
    make: impl FnOnce(&TrainConfig) -> Result<Box<dyn Engine>>,
) -> Result<Box<dyn Engine>> {
    config.validate_settings()?;
    let engine = make(config)?;
    config.check_memory()?;
    Ok(engine)
}

/// The engine a (validated) config asks for — the registry of engines.
///
/// # Errors
/// [`crate::Error::Invalid`] when the config does not suit the engine.
pub fn build(config: &TrainConfig) -> Result<Box<dyn Engine>> {
    if config.learn.any() && config.engine == EngineKind::Chip {
        return Err(crate::Error::invalid(
            "learn",
            "all off with the chip engine (recurrent weights, delays, trained taus and \
             thresholds: stepped and exact engines)",
            format!("{:?}", config.learn),
        ));
    }
    Ok(match config.engine {
        // Recurrence and trained hidden thresholds run on the fused layers; delays, trained
        // taus and a spiking output's thresholds on the dense stepped layers.
        EngineKind::Stepped if !config.network().fused_stepped() => {
            Box::new(stepped_learn::SteppedLearnEngine::new(config)?)
        }
        EngineKind::Stepped => Box::new(stepped::SteppedEngine::new(config)?),
        EngineKind::Exact => Box::new(exact::ExactEngine::new(config)?),
        EngineKind::Chip => Box::new(chip::ChipEngine::new(config)?),
    })
}

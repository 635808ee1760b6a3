//! The trainer: one epoch loop, optimiser, evaluation, checkpoints and run folder for every
//! engine ([`crate::engine`]).
//!
//! Determinism: initial weights come from `ChaCha8(seed)`, the shuffle of epoch `e` from
//! `ChaCha8(shuffle_seed(seed, e))`, so the RNG state at an epoch boundary is `(seed, e)`;
//! together with the weights, the Adam moments and step counts (all stored bit-exactly in
//! the checkpoint) a resumed run repeats the uninterrupted one. The engines give
//! bit-identical results for a fixed thread count. Augmentation (`[augment]`) of the
//! training samples of epoch `e` is drawn per `(seed, e, sample index)`
//! ([`eventprop_data::augment::Augmenter`]), so it needs no saved state either; validation
//! and test samples are never augmented.
//!
//! Files of a run folder ([`Trainer::run`]), each written atomically: [`CONFIG_TOML`],
//! [`LAST_CHECKPOINT`] (after every epoch, and before the first one so that the folder is
//! resumable from the start), [`BEST_CHECKPOINT`] (the epoch with the best validation
//! accuracy so far), `metrics.json` and `metrics.csv` ([`crate::metrics::write`]), [`PLOT_PNG`].

use std::path::Path;
use std::time::Instant;

use ndarray::Array2;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, Checkpoint, Tensor, TensorData};
use crate::collective::{self, Collective, GlobalCounts, Single};
use crate::config::{Task, TrainConfig};
use crate::engine::{self, BatchOutcome, Engine, EngineKind, EngineSettings, Pass};
use crate::error::{Error, Result};
use crate::init::{self, LayerInit};
use crate::loss::{BatchCounts, LocalCounts};
use crate::metrics::{self, EpochMetrics};
use crate::optim::{Adam, AdamSlot, StepLr};
#[cfg(feature = "figures")]
use crate::{figures, plot};
use eventprop_data::augment::{AugmentStats, Augmenter};
use eventprop_data::{fsio, yinyang};
use eventprop_data::{EventSources, Spike, SpikeSet};

/// The config of a run folder.
pub const CONFIG_TOML: &str = "config.toml";
/// The state after the last finished epoch (weights, optimiser, history).
pub const LAST_CHECKPOINT: &str = "checkpoint.safetensors";
/// The state of the epoch with the best validation accuracy.
pub const BEST_CHECKPOINT: &str = "best.safetensors";
/// Loss and accuracy curves.
pub const PLOT_PNG: &str = "curves.png";
/// Yin-Yang runs: the predicted class over the input square with the test points.
pub const CLASS_MAP_PNG: &str = "class_map.png";
/// Event runs: input and hidden spikes of one test sample per class.
pub const RASTER_PNG: &str = "raster.png";
/// Event runs: the confusion matrix of the test set (the validation set without one).
pub const CONFUSION_PNG: &str = "confusion.png";
/// Cells per side of the class map.
#[cfg(feature = "figures")]
const CLASS_MAP_CELLS: usize = 100;

/// `format` of the checkpoints written now.
pub const FORMAT: &str = "eventprop-train/2";
/// The stepped-only format of eventprop 0.1 (still read: its config is a subset of today's).
const FORMAT_V1_STEPPED: &str = "eventprop-train/yinyang/1";
/// The exact-only format of eventprop 0.1 (not read).
const FORMAT_V1_EXACT: &str = "eventprop-exact-yinyang/1";

pub use crate::config::shuffle_seed;

/// The spike-activity watchdog ([`Trainer::activity_warnings`]) probes this many samples.
pub const WATCH_SAMPLES: usize = 32;
/// [`Trainer::run`] checks the activity after this many batches of a run's first epoch
/// (after the last batch when the epoch has fewer).
pub const WATCH_BATCH: usize = 5;
/// A hidden layer with fewer spikes per sample (all its neurons together) is silent.
pub const SILENT_SPIKES: f64 = 0.1;
/// With `init.rule = "data"`, a hidden layer whose mean rate exceeds this multiple of
/// `init.target_rate` (the rate it was calibrated to) is saturated.
pub const SATURATED_RATE_FACTOR: f64 = 20.0;

/// Loss, accuracy and activity on a data set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Mean loss (without training-only terms).
    pub loss: f64,
    /// Fraction correct.
    pub accuracy: f64,
    /// Mean hidden spikes per sample.
    pub hidden_spikes_per_sample: f64,
    /// Fraction of samples with a silent output neuron (spiking outputs only).
    pub silent_output_fraction: Option<f64>,
    /// Number of samples.
    pub samples: usize,
}

/// Progress of a running epoch, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// 1-based epoch.
    pub epoch: usize,
    /// Batches done.
    pub batch: usize,
    /// Batches in the epoch.
    pub batches: usize,
    /// Running mean loss.
    pub loss: f64,
    /// Running accuracy.
    pub accuracy: f64,
    /// Running hidden spikes per sample.
    pub hidden_spikes_per_sample: f64,
    /// Training samples done in this epoch (for a samples/s rate).
    pub samples: usize,
}

/// What [`Trainer::run`] reports while it runs.
#[derive(Debug)]
pub enum Event<'a> {
    /// A batch finished.
    Batch(Progress),
    /// An epoch finished and its files are written.
    Epoch(&'a EpochMetrics),
    /// Something failed that does not end the run (e.g. the plot could not be written), or
    /// the spike-activity watchdog found a silent or saturated hidden layer
    /// ([`Trainer::activity_warnings`]; also in the epoch's [`EpochMetrics::warnings`]).
    Warning(String),
}

/// The encoded data of a run (training, validation and test samples).
pub type RunData = eventprop_data::Splits;

/// Weights, optimiser, engine, data and history of a run (read through its accessors).
#[derive(Debug)]
pub struct Trainer {
    /// The settings.
    pub(crate) config: TrainConfig,
    /// The engine that runs the batches.
    pub(crate) engine: Box<dyn Engine>,
    /// The weights (`f64`), input side first.
    pub(crate) weights: Vec<Array2<f64>>,
    /// Optimiser state.
    pub(crate) adam: Adam,
    /// Schedule.
    pub(crate) schedule: StepLr,
    /// Completed epochs.
    pub(crate) epochs_done: usize,
    /// Metrics of the completed epochs.
    pub(crate) history: Vec<EpochMetrics>,
    /// The data.
    pub(crate) data: RunData,
    /// How each layer's initial weights were chosen ([`crate::init`]; empty for a run
    /// restored from a checkpoint).
    pub(crate) init_report: Vec<LayerInit>,
    /// How the epoch count was chosen (`epochs = 0`), for a fresh run.
    pub(crate) epochs_report: Option<String>,
    /// Processes that trained the completed epochs (the last run's; 1 for a fresh run).
    pub(crate) processes: usize,
}

impl Trainer {
    /// The settings.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The engine that runs the batches.
    pub fn engine(&self) -> &dyn Engine {
        self.engine.as_ref()
    }

    /// The trained tensors (`f64`), input side first ([`eventprop_core::NetworkSpec::tensor_shapes`]).
    pub fn weights(&self) -> &[Array2<f64>] {
        &self.weights
    }

    /// The trained tensors, to change in place (their shapes stay; the trainer clamps and
    /// checks them as after an update at the next batch).
    pub fn weights_mut(&mut self) -> &mut [Array2<f64>] {
        &mut self.weights
    }

    /// Replaces the trained tensors with `weights` of the same shapes and finite values.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the first tensor of another shape or with a non-finite
    /// value.
    pub fn set_weights(&mut self, weights: Vec<Array2<f64>>) -> Result<()> {
        self.engine.spec().check_weights(&weights)?;
        self.weights = weights;
        Ok(())
    }

    /// The optimiser's state.
    pub fn adam(&self) -> &Adam {
        &self.adam
    }

    /// The learning-rate schedule.
    pub fn schedule(&self) -> &StepLr {
        &self.schedule
    }

    /// Completed epochs.
    pub fn epochs_done(&self) -> usize {
        self.epochs_done
    }

    /// Metrics of the completed epochs.
    pub fn history(&self) -> &[EpochMetrics] {
        &self.history
    }

    /// The data.
    pub fn data(&self) -> &RunData {
        &self.data
    }

    /// How each layer's initial weights were chosen ([`crate::init`]; empty for a run
    /// restored from a checkpoint).
    pub fn init_report(&self) -> &[LayerInit] {
        &self.init_report
    }

    /// How an automatic epoch count (`epochs = 0`) was chosen
    /// ([`TrainConfig::resolve_epochs`]; `None` when it was given, and for a run restored
    /// from a checkpoint).
    pub fn epochs_report(&self) -> Option<&str> {
        self.epochs_report.as_deref()
    }

    /// Processes that trained the completed epochs ([`Trainer::run_distributed`]; 1 for a
    /// fresh run and for checkpoints written before the count was recorded).
    pub fn processes(&self) -> usize {
        self.processes
    }

    /// Trains to `epochs` epochs in all (a resumed run going on past its planned end).
    ///
    /// # Errors
    /// [`Error::Invalid`] for zero, or fewer epochs than are done.
    pub fn set_epochs(&mut self, epochs: usize) -> Result<()> {
        if epochs == 0 {
            return Err(Error::invalid("epochs", ">= 1", epochs));
        }
        if epochs < self.epochs_done {
            return Err(Error::invalid(
                "epochs",
                format!(">= {} (epochs already done)", self.epochs_done),
                epochs,
            ));
        }
        self.config.epochs = epochs;
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
struct Meta {
    format: String,
    engine: EngineKind,
    config: toml::Table,
    epochs_done: usize,
    adam_steps: Vec<u64>,
    history: Vec<EpochMetrics>,
    /// Processes of the data-parallel run (absent before it was recorded: one).
    #[serde(default = "one_process")]
    processes: usize,
}

fn one_process() -> usize {
    1
}

#[derive(Deserialize)]
struct MetaV1 {
    config: toml::Table,
    epochs_done: usize,
    adam_steps: Vec<u64>,
    history: Vec<EpochMetrics>,
}

/// The text of a run folder's [`CONFIG_TOML`]: the config, without its `[chip]` tables
/// when the engine is not the chip (no other engine reads them; a config without them
/// loads with the preset's chip settings, and run folders that have them still load).
/// The checkpoints keep the whole config.
pub fn config_toml(config: &TrainConfig) -> String {
    let text = toml::to_string(config).expect("the config serialises");
    if config.engine == EngineKind::Chip {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    let mut skip = false;
    for line in text.lines() {
        if line.starts_with('[') {
            let name = line.trim_start_matches('[');
            skip = name.starts_with("chip]") || name.starts_with("chip.");
        }
        if !skip {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Reads the files of an events run (`[data]`), holds out the validation set, and fills
/// the `[events]` values that are not given from the data: `channels` = largest unit + 1,
/// `classes` = largest label + 1, `t_max` = the step after the latest event's step
/// (`(round(t / dt) + 1) dt`, so that every event lies on the grid).
///
/// # Errors
/// [`Error::Invalid`] for another task or a missing train file; the readers' errors
/// ([`eventprop_data::events::load`]).
pub fn load_events(config: &mut TrainConfig) -> Result<RunData> {
    if config.task != Task::Events {
        return Err(Error::invalid("task", "events", config.task));
    }
    config.events.validate()?;
    let ev = config.events.clone();
    let train =
        config.data.train.clone().ok_or_else(|| {
            Error::invalid("data.train", "a training file for task `events`", "none")
        })?;
    let (data, sizes) = eventprop_data::events::load(&EventSources {
        train: &train,
        validation: config.data.validation.as_deref(),
        test: config.data.test.as_deref(),
        channels: ev.channels,
        classes: ev.classes,
        val_fraction: ev.val_fraction,
        seed: config.data_seed,
        // the events count against the memory limit (the network's own estimate is
        // checked against it once the sizes are known)
        max_bytes: Some((config.memory_limit_gib.max(0.0) * (1u64 << 30) as f64) as u64),
    })?;
    config.events.channels.get_or_insert(sizes.channels);
    config.events.classes.get_or_insert(sizes.classes);
    if config.events.channel_bin.is_none() {
        let bin = if config.engine == crate::EngineKind::Chip {
            eventprop_chip::input::channel_bin_for(
                config.events.channels.unwrap_or(sizes.channels),
                config.chip.input_rows,
            )?
        } else {
            1
        };
        config.events.channel_bin = Some(bin);
    }
    let mut data = data;
    bin_event_channels(config, &mut data.train);
    bin_event_channels(config, &mut data.validation);
    bin_event_channels(config, &mut data.test);
    if config.events.t_max.is_none() {
        let steps = (sizes.last_event / ev.dt).round() + 1.0;
        if steps < 2.0 && sizes.last_event > 0.0 && config.engine != crate::EngineKind::Exact {
            return Err(Error::invalid(
                "events.dt",
                format!(
                    "a step that resolves the data (the latest event is at {} s; with this dt every event falls in step 0)",
                    sizes.last_event
                ),
                ev.dt,
            ));
        }
        config.events.t_max = Some(steps * ev.dt);
    }
    check_memory_with_events(config, &data)?;
    let events: usize = data.train.samples.iter().map(Vec::len).sum();
    if events == 0 {
        return Err(Error::invalid(
            "data.train",
            "at least one input event (every training sample is empty)",
            format!(
                "0 events in {} samples of {}",
                data.train.len(),
                train.display()
            ),
        ));
    }
    Ok(data)
}

/// Bins the channels of `set` as `config` says (`events.channel_bin`, nothing when absent
/// or 1): channel `c` becomes input `c / channel_bin`
/// ([`eventprop_chip::input::bin_channels`]).
pub fn bin_event_channels(config: &TrainConfig, set: &mut SpikeSet) {
    if let Some(b) = config.events.channel_bin {
        eventprop_chip::input::bin_channels(&mut set.samples, b);
    }
}

/// The events of `set` that fall outside the grid of `config` (stepped and chip engines:
/// `round(t / dt) >= steps`; exact engine: `t >= t_max`), which a run does not see: their
/// count, and the first one as `(sample, time)`.
pub fn events_past_window(config: &TrainConfig, set: &SpikeSet) -> (usize, Option<(usize, f64)>) {
    let (dt, steps, t_max) = (config.dt(), config.steps(), config.t_sim());
    let past = |t: f64| match config.engine {
        crate::EngineKind::Exact => t >= t_max,
        _ => (t / dt).round() >= steps as f64,
    };
    let mut first = None;
    let mut n = 0;
    for (b, sample) in set.samples.iter().enumerate() {
        for e in sample.iter().filter(|e| past(e.time)) {
            n += 1;
            first.get_or_insert((b, e.time));
        }
    }
    (n, first)
}

/// What a run uses of its data only in part, as one-line warnings (without the
/// `warning: ` prefix): events past the window (`events.t_max` set shorter than the data),
/// a training set of one class, input channels mostly unused by the data, and
/// augmentation shifts that empty training samples ([`TrainConfig::augment_warnings`]).
pub fn data_warnings(config: &TrainConfig, data: &RunData) -> Vec<String> {
    let mut out = config.augment_warnings();
    if config.task == Task::Events {
        let sets = [
            ("train", &data.train),
            ("validation", &data.validation),
            ("test", &data.test),
        ];
        let counts: Vec<(&str, usize, usize)> = sets
            .iter()
            .map(|(k, s)| {
                let total = s.samples.iter().map(Vec::len).sum();
                (*k, events_past_window(config, s).0, total)
            })
            .collect();
        let (past, total): (usize, usize) =
            counts.iter().fold((0, 0), |(p, t), c| (p + c.1, t + c.2));
        if past > 0 {
            let parts: Vec<String> = counts
                .iter()
                .filter(|c| c.1 > 0)
                .map(|c| format!("{} {} of {}", c.0, c.1, c.2))
                .collect();
            out.push(format!(
                "events.t_max = {} s: {past} of {total} events lie past the window and are not used ({})",
                config.t_sim(),
                parts.join(", ")
            ));
        }
    }
    let mut labels = data.train.labels.iter();
    if let Some(&first) = labels.next() {
        if labels.all(|&l| l == first) {
            out.push(format!(
                "data.train: all {} training samples have label {first} (one class: nothing to tell apart)",
                data.train.len()
            ));
        }
    }
    if config.task == Task::Events {
        if let Some(w) = sparse_channels(config, [&data.train, &data.validation, &data.test]) {
            out.push(w);
        }
    }
    out
}

/// A network far wider than the channels its data use (fewer than 1 in 10 of at least 100
/// input channels carry an event in the training, validation and test sets): the mark of a
/// stray unit index, which widens the input layer to that index.
fn sparse_channels(config: &TrainConfig, sets: [&SpikeSet; 3]) -> Option<String> {
    config.events.channels?;
    let channels = config.input_channels();
    if channels < 100 {
        return None;
    }
    // one flag per channel (the weights, already within the memory limit, hold `channels`
    // columns): one pass over the events, no copy or sort of them
    let mut seen = vec![false; channels];
    for e in sets.iter().flat_map(|set| set.samples.iter()).flatten() {
        if let Some(f) = seen.get_mut(e.neuron as usize) {
            *f = true;
        }
    }
    let used = seen.iter().filter(|&&f| f).count();
    (used * 10 < channels).then(|| {
        format!(
            "data: events on only {used} of the network's {channels} input channels \
             (largest unit {}); a stray unit index widens the input layer: check the files, \
             or set events.channels",
            seen.iter().rposition(|&f| f).unwrap_or(0)
        )
    })
}

/// Replaces each data path of `config` by its canonical absolute form (a path that does
/// not resolve is left as given: reading it names it).
fn canonicalize_data_paths(config: &mut TrainConfig) {
    let d = &mut config.data;
    for p in [&mut d.train, &mut d.validation, &mut d.test]
        .into_iter()
        .flatten()
    {
        if let Ok(c) = std::fs::canonicalize(&*p) {
            *p = c;
        }
    }
}

/// The fingerprint of each data file of `config` ([`eventprop_data::fsio::fingerprint`]).
///
/// # Errors
/// [`Error::Io`] naming an unreadable file.
fn fingerprints(config: &TrainConfig) -> Result<std::collections::BTreeMap<String, String>> {
    config
        .data
        .files()
        .into_iter()
        .map(|(k, p)| Ok((k.to_string(), fsio::fingerprint(p)?)))
        .collect()
}

/// Whether a resumed run may read data files that differ from the ones it started with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataChange {
    /// Refuse changed files ([`Trainer::load`]).
    #[default]
    Refuse,
    /// Accept them and record their new fingerprints (`--allow-data-change`).
    Allow,
}

/// Checks the data files of a restored config against their recorded fingerprints.
///
/// # Errors
/// [`Error::Invalid`] naming `data.<key>`, the file, the recorded and the current
/// fingerprint (or that the file is gone), unless `change` allows it; with
/// [`DataChange::Allow`], the new fingerprints are recorded.
fn check_fingerprints(config: &mut TrainConfig, change: DataChange) -> Result<()> {
    let mut now = std::collections::BTreeMap::new();
    for (key, path) in config.data.files() {
        let Some(recorded) = config.data.fingerprints.get(key) else {
            continue;
        };
        let current = fsio::fingerprint(path)
            .unwrap_or_else(|e| format!("unreadable ({})", crate::error::chain(&e)));
        if &current != recorded && change == DataChange::Refuse {
            return Err(Error::Invalid {
                arg: match key {
                    "train" => "data.train",
                    "validation" => "data.validation",
                    _ => "data.test",
                },
                expected: format!(
                    "the data the run started with ({recorded}) at {}",
                    path.display()
                ),
                actual: format!(
                    "{current} (the file changed; pass --allow-data-change to resume on it anyway)"
                ),
            });
        }
        now.insert(key.to_string(), current);
    }
    if change == DataChange::Allow {
        config.data.fingerprints.extend(now);
    }
    Ok(())
}

/// The config's memory estimate plus the loaded events (16 B each) against
/// `memory_limit_gib`: the data are in memory for the whole run.
///
/// # Errors
/// [`Error::Invalid`] naming `memory`, both parts and the limit.
fn check_memory_with_events(config: &TrainConfig, data: &RunData) -> Result<()> {
    const GIB: f64 = (1u64 << 30) as f64;
    let events: usize = [&data.train, &data.validation, &data.test]
        .iter()
        .flat_map(|s| s.samples.iter().map(Vec::len))
        .sum();
    let data_bytes = events as f64 * std::mem::size_of::<Spike>() as f64;
    let e = config.memory_estimate();
    let gib = (e.bytes + data_bytes) / GIB;
    if gib > config.memory_limit_gib {
        return Err(Error::Invalid {
            arg: "memory",
            expected: format!(
                "an estimated peak below memory_limit_gib = {} GiB",
                config.memory_limit_gib
            ),
            actual: format!(
                "{gib:.1} GiB: the event data {:.1} GiB ({events} events × 16 B) + {:.1} GiB, mostly {} (reduce those, or raise --memory-limit-gib)",
                data_bytes / GIB,
                e.bytes / GIB,
                e.dominant
            ),
        });
    }
    Ok(())
}

/// The data of a run: the Yin-Yang splits, latency-encoded, or the event files
/// ([`load_events`], which also fills the `[events]` values taken from the data).
fn load_data(config: &mut TrainConfig) -> Result<RunData> {
    match config.task {
        Task::Yinyang => {
            let s = config.splits()?;
            Ok(RunData {
                train: yinyang::encode(&s.train, &config.encoding),
                validation: yinyang::encode(&s.validation, &config.encoding),
                test: yinyang::encode(&s.test, &config.encoding),
            })
        }
        Task::Events => load_events(config),
    }
}

/// Runs `engine` over `set` in batches of `batch_size` without gradients.
///
/// # Errors
/// The engine's errors.
pub fn evaluate(
    engine: &dyn Engine,
    weights: &[Array2<f64>],
    set: &SpikeSet,
    batch_size: usize,
) -> Result<Evaluation> {
    Ok(evaluate_with_predictions(engine, weights, set, batch_size)?.0)
}

/// [`evaluate`], also returning the predicted class of every sample (`None`: no output
/// neuron fired).
///
/// # Errors
/// The engine's errors.
pub fn evaluate_with_predictions(
    engine: &dyn Engine,
    weights: &[Array2<f64>],
    set: &SpikeSet,
    batch_size: usize,
) -> Result<(Evaluation, Vec<Option<usize>>)> {
    let idx: Vec<usize> = (0..set.len()).collect();
    let mut predictions = Vec::with_capacity(set.len());
    let (mut loss, mut correct, mut spikes, mut silent) = (0.0, 0, 0.0, None::<usize>);
    for chunk in idx.chunks(batch_size.max(1)) {
        let inputs: Vec<&[_]> = chunk.iter().map(|&i| set.samples[i].as_slice()).collect();
        let labels: Vec<usize> = chunk.iter().map(|&i| set.labels[i]).collect();
        let o = engine.run(weights, &inputs, &labels, Pass::Eval)?;
        loss += o.loss_sum;
        correct += o.correct;
        predictions.extend(o.predictions);
        spikes += o.hidden_spikes;
        if let Some(s) = o.silent_outputs {
            *silent.get_or_insert(0) += s;
        }
    }
    let n = set.len().max(1) as f64;
    let e = Evaluation {
        loss: loss / n,
        accuracy: correct as f64 / n,
        hidden_spikes_per_sample: spikes / n,
        silent_output_fraction: silent.map(|s| s as f64 / n),
        samples: set.len(),
    };
    Ok((e, predictions))
}

/// [`evaluate`] with the batches split across the ranks of `coll`: rank `r` runs a
/// contiguous range of the batches ([`collective::share`]), the per-batch sums are gathered
/// and added in batch order on every rank, so the result is bit-identical to [`evaluate`]
/// in one process (a collective: every rank must call it with the same set).
///
/// # Errors
/// The engine's errors (of this rank's batches).
pub fn evaluate_shared(
    engine: &dyn Engine,
    weights: &[Array2<f64>],
    set: &SpikeSet,
    batch_size: usize,
    coll: &dyn Collective,
) -> Result<Evaluation> {
    if coll.size() == 1 {
        return evaluate(engine, weights, set, batch_size);
    }
    // per batch: loss sum, correct, hidden spikes, silent outputs (-1: not counted)
    const W: usize = 4;
    let idx: Vec<usize> = (0..set.len()).collect();
    let batches: Vec<&[usize]> = idx.chunks(batch_size.max(1)).collect();
    let nb = batches.len();
    let mut local = vec![0.0; nb * W];
    for b in collective::share(nb, coll.rank(), coll.size()) {
        let chunk = batches[b];
        let inputs: Vec<&[_]> = chunk.iter().map(|&i| set.samples[i].as_slice()).collect();
        let labels: Vec<usize> = chunk.iter().map(|&i| set.labels[i]).collect();
        let o = engine.run(weights, &inputs, &labels, Pass::Eval)?;
        local[b * W..(b + 1) * W].copy_from_slice(&[
            o.loss_sum,
            o.correct as f64,
            o.hidden_spikes,
            o.silent_outputs.map_or(-1.0, |s| s as f64),
        ]);
    }
    let all = coll.all_gather(&local);
    let (mut loss, mut correct, mut spikes, mut silent) = (0.0, 0, 0.0, None::<usize>);
    let mut owner = 0;
    for b in 0..nb {
        while !collective::share(nb, owner, coll.size()).contains(&b) {
            owner += 1;
        }
        let r = &all[(owner * nb + b) * W..(owner * nb + b + 1) * W];
        loss += r[0];
        correct += r[1] as usize;
        spikes += r[2];
        if r[3] >= 0.0 {
            *silent.get_or_insert(0) += r[3] as usize;
        }
    }
    let n = set.len().max(1) as f64;
    Ok(Evaluation {
        loss: loss / n,
        accuracy: correct as f64 / n,
        hidden_spikes_per_sample: spikes / n,
        silent_output_fraction: silent.map(|s| s as f64 / n),
        samples: set.len(),
    })
}

/// Runs `engine` on the training samples `idx` of `train` (augmented per `(epoch, index)`
/// when `augmenter` is given), the spike-count targets' batch means from `counts`: the
/// outcome and what augmentation did.
fn run_train_samples(
    engine: &dyn Engine,
    weights: &[Array2<f64>],
    train: &SpikeSet,
    idx: &[usize],
    epoch: usize,
    augmenter: Option<&Augmenter<'_>>,
    counts: &dyn BatchCounts,
) -> Result<(BatchOutcome, AugmentStats)> {
    let mut stats = AugmentStats::default();
    let augmented: Vec<Vec<Spike>>;
    let inputs: Vec<&[_]> = match augmenter {
        Some(a) => {
            augmented = idx
                .iter()
                .map(|&i| {
                    let (x, s) = a.sample(epoch, i);
                    stats += s;
                    x
                })
                .collect();
            augmented.iter().map(Vec::as_slice).collect()
        }
        None => idx.iter().map(|&i| train.samples[i].as_slice()).collect(),
    };
    let labels: Vec<usize> = idx.iter().map(|&i| train.labels[i]).collect();
    let o = engine.run_shared(weights, &inputs, &labels, Pass::Train, counts)?;
    Ok((o, stats))
}

/// The counters of a shared batch that precede the gradient in each rank's record:
/// samples, loss sum, correct, hidden spikes and the four augmentation counts.
const SHARED_HEADER: usize = 8;

impl Trainer {
    /// A fresh run.
    ///
    /// # Errors
    /// [`Error::Invalid`] (and the engines' errors) for an invalid config; the errors of
    /// reading the data files ([`TrainConfig::splits`]).
    pub fn new(config: TrainConfig) -> Result<Self> {
        let kind = config.engine;
        Self::with_engine(config, |s| engine::build(kind, s))
    }

    /// A fresh run whose engine `build` makes from the (validated) config's engine
    /// settings — e.g. the stepped engine on an explicit
    /// [`crate::engine::stepped::SteppedPath`].
    ///
    /// # Errors
    /// As [`Trainer::new`], and those of `build`.
    pub fn with_engine(
        mut config: TrainConfig,
        build: impl FnOnce(&EngineSettings) -> Result<Box<dyn Engine>>,
    ) -> Result<Self> {
        // Data paths absolute, so that a resume works from any directory.
        canonicalize_data_paths(&mut config);
        // Event runs take their grid and sizes from the data, so the data come first.
        let events = (config.task == Task::Events)
            .then(|| load_events(&mut config))
            .transpose()?;
        let engine = config.engine_with(build)?;
        let data = match events {
            Some(d) => d,
            None => load_data(&mut config)?,
        };
        // The data rule simulates a few training batches to choose the init scales and
        // stores them in the config (the fixed rule simulates nothing).
        config.data.fingerprints = fingerprints(&config)?;
        let epochs_report = config.resolve_epochs(data.train.len());
        let init_report = init::calibrate(&mut config, engine.as_ref(), &data.train)?;
        let weights = engine.spec().init_weights(&config.inits(), config.seed)?;
        let adam = config.optim.adam()?;
        let schedule = config.optim.schedule()?;
        Ok(Self {
            config,
            engine,
            weights,
            adam,
            schedule,
            epochs_done: 0,
            history: Vec::new(),
            data,
            init_report,
            epochs_report,
            processes: 1,
        })
    }

    /// Whether all configured epochs are done.
    pub fn finished(&self) -> bool {
        self.epochs_done >= self.config.epochs
    }

    /// The best validation accuracy so far (`None` before the first epoch or without a
    /// validation set).
    pub fn best_val_acc(&self) -> Option<f64> {
        self.history
            .iter()
            .filter_map(|m| m.val_acc)
            .fold(None, |b, v| Some(b.map_or(v, |b: f64| b.max(v))))
    }

    /// Early stopping (`optim.patience`): `Some(best epoch)` when the validation accuracy
    /// has not improved for `patience` epochs after it, so [`Trainer::run`] trains no
    /// further (also after `--resume` with more epochs); derived from the history.
    pub fn stopped_early(&self) -> Option<usize> {
        let val_acc: Vec<Option<f64>> = self.history.iter().map(|m| m.val_acc).collect();
        self.config.optim.stop_after(&val_acc)
    }

    /// The metrics of the epoch whose weights [`BEST_CHECKPOINT`] holds: the first epoch
    /// with the best validation accuracy (`None` before the first epoch or without a
    /// validation set).
    pub fn best_epoch(&self) -> Option<&EpochMetrics> {
        let best = self.best_val_acc()?;
        self.history.iter().find(|m| m.val_acc == Some(best))
    }

    /// Evaluates the current weights on `set`.
    ///
    /// # Errors
    /// The engine's errors.
    pub fn evaluate(&self, set: &SpikeSet) -> Result<Evaluation> {
        evaluate(
            self.engine.as_ref(),
            &self.weights,
            set,
            self.config.eval_batch_size,
        )
    }

    /// Trains one epoch, then evaluates validation and test sets; appends and returns the
    /// epoch's metrics. `progress` is called after every batch.
    ///
    /// # Errors
    /// The engine's errors, and [`Error::Diverged`] when the loss or a weight becomes
    /// non-finite (the weights of the failing batch are not applied).
    pub fn run_epoch(&mut self, progress: &mut dyn FnMut(Progress)) -> Result<EpochMetrics> {
        self.epoch(
            &mut |e| {
                if let Event::Batch(p) = e {
                    progress(p);
                }
            },
            &Single,
        )
    }

    /// The spike-activity watchdog: the hidden layers' activity on the first
    /// [`WATCH_SAMPLES`] validation samples (training samples without a validation set)
    /// under the current weights, and one warning, with the fix it suggests, per layer
    /// that is silent (fewer than [`SILENT_SPIKES`] spikes per sample) or saturated (a
    /// neuron spiking at more than half of the steps on average, or, with `init.rule =
    /// "data"`, a mean rate above [`SATURATED_RATE_FACTOR`] × `init.target_rate`). `when`
    /// starts each warning.
    /// [`Trainer::run`] checks after the first [`WATCH_BATCH`] batches of a run and after
    /// every epoch. An engine error of the probe (e.g. the exact engine's spike cap)
    /// skips the check.
    pub fn activity_warnings(&self, when: &str) -> Vec<String> {
        let (set, name) = if self.data.validation.is_empty() {
            (&self.data.train, "training")
        } else {
            (&self.data.validation, "validation")
        };
        let n = set.len().min(WATCH_SAMPLES);
        let hidden = &self.engine.spec().hidden;
        if n == 0 || hidden.is_empty() {
            return Vec::new();
        }
        let inputs: Vec<&[Spike]> = set.samples[..n].iter().map(Vec::as_slice).collect();
        let counts = self.engine.hidden_counts(&self.weights, &inputs);
        let Ok(counts) = counts else {
            return Vec::new();
        };
        let t_sim = self.config.t_sim();
        let steps = self.config.steps().max(1) as f64;
        let target = self.config.init.target_rate;
        let calibrated = self.config.init.rule == crate::init::InitRule::Data;
        let mut out = Vec::new();
        for (l, &h) in hidden.iter().enumerate() {
            let total: usize = counts.iter().map(|c| c.get(l).copied().unwrap_or(0)).sum();
            let per_sample = total as f64 / n as f64;
            let per_neuron = per_sample / h.max(1) as f64;
            let rate = per_neuron / t_sim;
            if per_sample < SILENT_SPIKES {
                out.push(format!(
                    "{when}: hidden layer {} is silent ({per_sample:.2} spikes/sample on {n} {name} samples), so nothing reaches the output and there is no gradient; start from `--init data` (calibrated to `--init-target-rate`) or a larger `--hidden-init-std`/`--hidden-init-mean`; if it fell silent during training, lower `--lr`",
                    l + 1
                ));
            } else if per_neuron > 0.5 * steps
                || (calibrated && rate > SATURATED_RATE_FACTOR * target)
            {
                out.push(format!(
                    "{when}: hidden layer {} is saturated ({per_neuron:.1} spikes per neuron and sample over {steps} steps, {rate:.0} Hz, on {n} {name} samples); start from `--init data` (calibrated to `--init-target-rate`, {target} Hz) or a smaller `--hidden-init-std`/`--hidden-init-mean`, add `--reg-upper-strength`, or lower `--lr`",
                    l + 1
                ));
            }
        }
        out
    }

    /// One epoch ([`Trainer::run_epoch`]), reporting batches and the watchdog's warnings
    /// to `on_event`.
    fn epoch(
        &mut self,
        on_event: &mut dyn FnMut(Event<'_>),
        coll: &dyn Collective,
    ) -> Result<EpochMetrics> {
        let start = Instant::now();
        let mut warnings = Vec::new();
        let epoch = self.epochs_done;
        let cfg = &self.config;
        let val_acc: Vec<Option<f64>> = self.history.iter().map(|m| m.val_acc).collect();
        self.adam.lr = cfg.optim.lr_at(epoch, cfg.epochs, &val_acc);
        let train = &self.data.train;
        let mut order: Vec<usize> = (0..train.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(shuffle_seed(
            cfg.seed, epoch,
        )));
        let batches = order.len().div_ceil(cfg.batch_size);
        let (mut loss_sum, mut correct, mut spikes, mut seen) = (0.0, 0usize, 0.0, 0usize);
        let mut chip_stats: Option<crate::engine::ChipStats> = None;
        let weight_limit = self.engine.weight_limit();
        // Training samples only, drawn per (seed, epoch, sample index).
        let augmenter = (!cfg.augment.is_off()).then(|| {
            Augmenter::new(
                cfg.augment,
                train,
                cfg.t_sim(),
                // the data's channels (a delay line copies them after augmentation)
                self.engine.spec().n_in / cfg.events.delay_line.max(1),
                cfg.seed,
            )
        });
        let mut augment_stats = augmenter.as_ref().map(|_| AugmentStats::default());
        for (bi, chunk) in order.chunks(cfg.batch_size).enumerate() {
            let batch_error = |e: Error| Error::Batch {
                epoch: epoch + 1,
                batch: bi + 1,
                source: Box::new(e),
            };
            let (l, c, samples, hidden_spikes, grads, chip) = if coll.size() == 1 {
                let (o, stats) = run_train_samples(
                    self.engine.as_ref(),
                    &self.weights,
                    train,
                    chunk,
                    epoch,
                    augmenter.as_ref(),
                    &LocalCounts,
                )
                .map_err(batch_error)?;
                if let Some(a) = &mut augment_stats {
                    *a += stats;
                }
                let grads = o.grads.ok_or_else(|| {
                    Error::invalid("engine", "gradients for a training batch", "none")
                })?;
                (
                    o.loss_sum,
                    o.correct,
                    o.samples,
                    o.hidden_spikes,
                    grads,
                    o.chip,
                )
            } else {
                // This rank's share of the batch; every rank gathers all shares and sums
                // them in rank order (bit-identical on every rank).
                let mine = &chunk[collective::share(chunk.len(), coll.rank(), coll.size())];
                let shapes: Vec<(usize, usize)> = self.weights.iter().map(|w| w.dim()).collect();
                let width = SHARED_HEADER + shapes.iter().map(|(o, i)| o * i).sum::<usize>();
                let mut local = vec![0.0; width];
                if !mine.is_empty() {
                    let (o, a) = run_train_samples(
                        self.engine.as_ref(),
                        &self.weights,
                        train,
                        mine,
                        epoch,
                        augmenter.as_ref(),
                        &GlobalCounts(coll),
                    )
                    .map_err(batch_error)?;
                    let grads = o.grads.ok_or_else(|| {
                        Error::invalid("engine", "gradients for a training batch", "none")
                    })?;
                    local[..SHARED_HEADER].copy_from_slice(&[
                        o.samples as f64,
                        o.loss_sum,
                        o.correct as f64,
                        o.hidden_spikes,
                        a.samples as f64,
                        a.blended as f64,
                        a.dropped_time as f64,
                        a.dropped_channel as f64,
                    ]);
                    for (dst, v) in local[SHARED_HEADER..]
                        .iter_mut()
                        .zip(grads.iter().flat_map(|g| g.iter()))
                    {
                        *dst = *v;
                    }
                } else if self.config.reg.is_active() && !self.engine.spec().hidden.is_empty() {
                    // the engines of the other ranks gather the spike counts of this batch
                    GlobalCounts(coll).join_empty(self.engine.spec().hidden.iter().sum());
                }
                let all = coll.all_gather(&local);
                let mut head = [0.0; SHARED_HEADER];
                let mut sum = vec![0.0; width - SHARED_HEADER];
                for rec in all.chunks(width) {
                    let n = rec[0];
                    if n == 0.0 {
                        continue;
                    }
                    for (h, v) in head.iter_mut().zip(&rec[..SHARED_HEADER]) {
                        *h += v;
                    }
                    // each share's batch mean, weighted by its samples
                    for (s, g) in sum.iter_mut().zip(&rec[SHARED_HEADER..]) {
                        *s += n * g;
                    }
                }
                let total = head[0];
                let mut grads = Vec::with_capacity(shapes.len());
                let mut at = 0;
                for &(o, i) in &shapes {
                    let g: Vec<f64> = sum[at..at + o * i].iter().map(|s| s / total).collect();
                    grads.push(Array2::from_shape_vec((o, i), g).expect("shapes of the weights"));
                    at += o * i;
                }
                if let Some(a) = &mut augment_stats {
                    *a += AugmentStats {
                        samples: head[4] as usize,
                        blended: head[5] as usize,
                        dropped_time: head[6] as usize,
                        dropped_channel: head[7] as usize,
                    };
                }
                (
                    head[1],
                    head[2] as usize,
                    total as usize,
                    head[3],
                    grads,
                    None,
                )
            };
            if !l.is_finite() || grads.iter().any(|g| g.iter().any(|v| !v.is_finite())) {
                return Err(Error::Diverged {
                    epoch: epoch + 1,
                    batch: bi + 1,
                    what: if l.is_finite() {
                        "a gradient"
                    } else {
                        "the loss"
                    },
                });
            }
            let n_weights = self.engine.spec().layout().n_weights();
            let decay = 1.0 - self.adam.lr * cfg.optim.weight_decay;
            for (k, (w, g)) in self.weights.iter_mut().zip(&grads).enumerate() {
                if k < n_weights && cfg.optim.weight_decay > 0.0 {
                    w.mapv_inplace(|x| x * decay);
                }
                self.adam.step(
                    k,
                    w.as_slice_mut().expect("standard layout"),
                    g.as_slice().expect("standard layout"),
                );
                if k >= n_weights {
                    continue;
                }
                if let Some(c) = cfg.optim.weight_clip {
                    w.mapv_inplace(|x| x.clamp(-c, c));
                }
                if let Some(c) = weight_limit {
                    w.mapv_inplace(|x| x.clamp(-c, c));
                }
            }
            self.engine.spec().project(&mut self.weights);
            if let Some(c) = chip {
                *chip_stats.get_or_insert_with(Default::default) += c;
            }
            loss_sum += l;
            correct += c;
            spikes += hidden_spikes;
            seen += samples;
            on_event(Event::Batch(Progress {
                epoch: epoch + 1,
                batch: bi + 1,
                batches,
                loss: loss_sum / seen as f64,
                accuracy: correct as f64 / seen as f64,
                hidden_spikes_per_sample: spikes / seen as f64,
                samples: seen,
            }));
            if epoch == 0 && bi + 1 == WATCH_BATCH.min(batches) {
                for w in self.activity_warnings(&format!("after {} batches", bi + 1)) {
                    on_event(Event::Warning(w.clone()));
                    warnings.push(w);
                }
            }
        }
        let train_seconds = start.elapsed().as_secs_f64();
        let eval = |set: &SpikeSet| {
            evaluate_shared(
                self.engine.as_ref(),
                &self.weights,
                set,
                self.config.eval_batch_size,
                coll,
            )
        };
        let val = (!self.data.validation.is_empty())
            .then(|| eval(&self.data.validation))
            .transpose()?;
        let test = (!self.data.test.is_empty())
            .then(|| eval(&self.data.test))
            .transpose()?;
        let n = seen.max(1) as f64;
        let m = EpochMetrics {
            epoch: epoch + 1,
            lr: self.adam.lr,
            train_loss: loss_sum / n,
            train_acc: correct as f64 / n,
            val_loss: val.map(|e| e.loss),
            val_acc: val.map(|e| e.accuracy),
            test_loss: test.map(|e| e.loss),
            test_acc: test.map(|e| e.accuracy),
            epoch_seconds: start.elapsed().as_secs_f64(),
            train_seconds,
            hidden_spikes_per_sample: spikes / n,
            chip: chip_stats,
            augment: augment_stats,
            warnings: Vec::new(),
        };
        let after = self.activity_warnings(&format!("after epoch {}", epoch + 1));
        for w in after {
            on_event(Event::Warning(w.clone()));
            warnings.push(w);
        }
        let m = EpochMetrics { warnings, ..m };
        self.epochs_done += 1;
        self.history.push(m.clone());
        Ok(m)
    }

    /// Trains the remaining epochs, writing the run folder `dir` (see the module docs)
    /// before the first and after every epoch, holding its lock
    /// ([`eventprop_data::fsio::DirLock`]) throughout. A plot that cannot be written is an
    /// [`Event::Warning`], not the end of the run.
    ///
    /// # Errors
    /// As [`Trainer::run_epoch`], and [`Error::Io`] for the checkpoint, config and metrics
    /// files; an error naming the folder when another live process holds its lock.
    pub fn run(&mut self, dir: &Path, on_event: &mut dyn FnMut(Event<'_>)) -> Result<()> {
        self.run_distributed(dir, &Single, on_event)
    }

    /// [`Trainer::run`], data-parallel over the processes of `coll` (every process calls it
    /// with the same state; [`crate::collective`]): each rank runs its share of every
    /// global batch and of the evaluation batches, all ranks apply the same update, and
    /// rank 0 alone creates, locks and writes `dir`. Events are reported on every rank.
    /// With one process this is [`Trainer::run`].
    ///
    /// The update of a global batch is the one-process update up to rounding: the shares'
    /// batch-mean gradients are combined as `Σ_r n_r g_r / n` in rank order
    /// (docs/scale-out.md states the bound); the evaluation is bit-identical. Spike-count
    /// targets (`[reg]`) take the global batch's mean counts, gathered between each
    /// engine's forward and backward ([`GlobalCounts`]).
    ///
    /// # Errors
    /// As [`Trainer::run`]; [`Error::Invalid`] for the chip engine with several processes,
    /// a global batch smaller than the number of processes, and ranks that do not hold the
    /// same state (config, data fingerprints, weights, optimiser).
    pub fn run_distributed(
        &mut self,
        dir: &Path,
        coll: &dyn Collective,
        on_event: &mut dyn FnMut(Event<'_>),
    ) -> Result<()> {
        let p = coll.size();
        if p > 1 {
            self.check_ranks(coll)?;
        }
        if self.epochs_done > 0 && self.processes != p {
            on_event(Event::Warning(format!(
                "resumed with {p} process(es), the epochs so far ran on {}: the same global batches and updates up to rounding, not bit-identical to a run that kept {} process(es)",
                self.processes, self.processes
            )));
        }
        self.processes = p;
        let root = coll.is_root();
        // one writer per run folder, for the whole run (shared with a caller of this
        // process that already holds it, as the CLI does)
        let _lock = if root {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            let lock = fsio::DirLock::acquire(dir)?;
            fsio::clean_stale_temps(dir);
            fsio::write_atomic(&dir.join(CONFIG_TOML), config_toml(&self.config).as_bytes())?;
            self.write_files(dir, false, on_event)?;
            Some(lock)
        } else {
            None
        };
        while !self.finished() && self.stopped_early().is_none() {
            let before = self.best_val_acc();
            let m = self.epoch(on_event, coll)?;
            let improved = match (m.val_acc, before) {
                (Some(v), Some(b)) => v > b,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if root {
                self.write_files(dir, improved, on_event)?;
                #[cfg(feature = "figures")]
                if self.finished() || self.stopped_early().is_some() {
                    if let Err(e) = self.write_figures(dir) {
                        on_event(Event::Warning(format!(
                            "figures not written: {}; the run itself is complete",
                            crate::error::chain(&e)
                        )));
                    }
                }
            }
            on_event(Event::Epoch(&m));
        }
        Ok(())
    }

    /// Checks that a data-parallel run can start: not the chip engine, a global batch of
    /// at least one sample per process, and the same state on every rank (a collective).
    fn check_ranks(&self, coll: &dyn Collective) -> Result<()> {
        let p = coll.size();
        if self.config.engine == EngineKind::Chip {
            return Err(Error::invalid(
                "engine",
                "the stepped or exact engine with several processes (the chip engine trains in one process: one chip)",
                format!("chip with {p} processes"),
            ));
        }
        if self.config.batch_size < p {
            return Err(Error::invalid(
                "batch_size",
                format!(">= the number of processes ({p}): the global batch is split among them"),
                self.config.batch_size,
            ));
        }
        let mut state: Vec<f64> = Vec::new();
        for w in &self.weights {
            state.extend(w.iter());
        }
        for s in &self.adam.slots {
            state.extend(&s.m);
            state.extend(&s.v);
            state.push(s.steps as f64);
        }
        state.push(self.epochs_done as f64);
        state.push(self.data.train.len() as f64);
        state.push(self.data.validation.len() as f64);
        state.push(self.data.test.len() as f64);
        let config = config_toml(&self.config);
        let mut h = collective::fingerprint(&state);
        for b in config.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        if !collective::all_equal(coll, h) {
            return Err(Error::invalid(
                "processes",
                "the same config, data and weights on every process",
                "processes that differ (other data files or paths, another checkpoint, or another program version on some machine)",
            ));
        }
        Ok(())
    }

    #[cfg(feature = "figures")]
    /// Writes the figures of the current weights into `dir` (each atomically): for
    /// Yin-Yang [`CLASS_MAP_PNG`]; for event data [`RASTER_PNG`] and [`CONFUSION_PNG`].
    /// [`Trainer::run`] calls it after the last epoch. A prediction of "no output spike"
    /// (spiking outputs) is shown as a class of its own when it occurs.
    ///
    /// # Errors
    /// The engine's errors, the data's (Yin-Yang test points are read again with
    /// [`TrainConfig::splits`]) and the figures' ([`crate::figures`]).
    pub fn write_figures(&self, dir: &Path) -> Result<()> {
        match self.config.task {
            Task::Yinyang if self.config.test_size == 0 => Err(Error::invalid(
                "test_size",
                "at least one test sample (the class map draws the test points)",
                0,
            )),
            Task::Yinyang => self.write_class_map(&dir.join(CLASS_MAP_PNG)),
            Task::Events => {
                self.write_raster(&dir.join(RASTER_PNG))?;
                self.write_confusion(&dir.join(CONFUSION_PNG))
            }
        }
    }

    #[cfg(feature = "figures")]
    fn write_class_map(&self, path: &Path) -> Result<()> {
        let n = CLASS_MAP_CELLS;
        let centre = |i: usize| (i as f64 + 0.5) / n as f64;
        let mut grid = yinyang::Dataset::default();
        for r in 0..n {
            for c in 0..n {
                let (x, y) = (centre(c), centre(r));
                grid.features.push([x, y, 1.0 - x, 1.0 - y]);
                grid.labels.push(0);
            }
        }
        let encoded = yinyang::encode(&grid, &self.config.encoding);
        let (_, cells) = self.predict(&encoded)?;
        let test = self.config.splits()?.test;
        let (_, predicted) = self.predict(&yinyang::encode(&test, &self.config.encoding))?;
        let k = yinyang::N_CLASSES;
        let silent = cells.iter().chain(&predicted).any(Option::is_none);
        let class = |p: Option<usize>| p.unwrap_or(k);
        let grid = Array2::from_shape_vec((n, n), cells.into_iter().map(class).collect())
            .expect("n × n cells");
        let points: Vec<figures::Point> = test
            .features
            .iter()
            .zip(&test.labels)
            .zip(predicted)
            .map(|((f, &label), p)| figures::Point {
                x: f[0],
                y: f[1],
                label,
                predicted: class(p),
            })
            .collect();
        let mut names = vec!["yin", "yang", "dot"];
        if silent {
            names.push("no output spike");
        }
        figures::class_map_png(
            path,
            &grid,
            [0.0, 1.0, 0.0, 1.0],
            &points,
            &names,
            &format!(
                "Yin-Yang, {} engine, epoch {}",
                self.config.engine, self.epochs_done
            ),
        )
    }

    #[cfg(feature = "figures")]
    /// The test set of an event run, or its validation set without one.
    fn figure_set(&self) -> (&SpikeSet, &'static str) {
        if self.data.test.is_empty() {
            (&self.data.validation, "validation")
        } else {
            (&self.data.test, "test")
        }
    }

    #[cfg(feature = "figures")]
    fn write_raster(&self, path: &Path) -> Result<()> {
        let (set, name) = self.figure_set();
        let classes = self.engine.spec().n_out;
        let spec = self.engine.spec();
        let mut panels = Vec::new();
        for k in 0..classes.min(figures::MAX_PANELS) {
            let Some(i) = set.labels.iter().position(|&l| l == k) else {
                continue;
            };
            let input = &set.samples[i];
            let hidden = self.engine.hidden_spikes(&self.weights, input)?;
            let mut layers = vec![figures::RasterLayer {
                name: "input".into(),
                n_neurons: spec.n_in / self.config.events.delay_line.max(1),
                events: input.iter().map(|e| (e.time, e.neuron)).collect(),
            }];
            for (j, (events, &n)) in hidden.iter().zip(&spec.hidden).enumerate() {
                layers.push(figures::RasterLayer {
                    name: format!("hidden {}", j + 1),
                    n_neurons: n,
                    events: events.iter().map(|e| (e.time, e.neuron)).collect(),
                });
            }
            panels.push(figures::RasterPanel {
                title: format!("class {k} ({name} sample {i})"),
                layers,
            });
        }
        figures::raster_png(
            path,
            &panels,
            self.config.t_sim(),
            &format!(
                "spikes of one {name} sample per class, epoch {}",
                self.epochs_done
            ),
        )
    }

    #[cfg(feature = "figures")]
    fn write_confusion(&self, path: &Path) -> Result<()> {
        let (set, name) = self.figure_set();
        let (_, predicted) = self.predict(set)?;
        let k = self.engine.spec().n_out;
        let silent = predicted.iter().any(Option::is_none);
        let n = k + usize::from(silent);
        let predicted: Vec<usize> = predicted.into_iter().map(|p| p.unwrap_or(k)).collect();
        let matrix = figures::confusion_matrix(&set.labels, &predicted, n)?;
        let mut names: Vec<String> = (0..k).map(|c| c.to_string()).collect();
        if silent {
            names.push("none".into());
        }
        figures::confusion_png(
            path,
            &matrix,
            Some(&names),
            &format!(
                "{name} set, {} engine, epoch {}",
                self.config.engine, self.epochs_done
            ),
        )
    }

    /// Evaluation and the predicted class of every sample of `set`.
    ///
    /// # Errors
    /// The engine's errors.
    pub fn predict(&self, set: &SpikeSet) -> Result<(Evaluation, Vec<Option<usize>>)> {
        evaluate_with_predictions(
            self.engine.as_ref(),
            &self.weights,
            set,
            self.config.eval_batch_size,
        )
    }

    fn write_files(
        &self,
        dir: &Path,
        best: bool,
        on_event: &mut dyn FnMut(Event<'_>),
    ) -> Result<()> {
        #[cfg(not(feature = "figures"))]
        let _ = on_event;
        let c = self.to_checkpoint();
        checkpoint::save(&dir.join(LAST_CHECKPOINT), &c)?;
        if best {
            checkpoint::save(&dir.join(BEST_CHECKPOINT), &c)?;
        }
        metrics::write(dir, &self.history)?;
        #[cfg(feature = "figures")]
        if let Err(e) = plot::plot_metrics(&dir.join(PLOT_PNG), &self.history) {
            on_event(Event::Warning(format!(
                "plot not written: {}; training goes on",
                crate::error::chain(&e)
            )));
        }
        Ok(())
    }

    /// The checkpoint of the current state.
    pub fn to_checkpoint(&self) -> Checkpoint {
        let mut c = Checkpoint::default();
        let names = self.engine.spec().tensor_names();
        for (w, name) in self.weights.iter().zip(&names) {
            c.tensors.insert(
                name.clone(),
                Tensor {
                    shape: w.shape().to_vec(),
                    data: TensorData::F64(w.iter().copied().collect()),
                },
            );
        }
        for (s, tensor) in self.adam.slots.iter().zip(&names) {
            for (name, v) in [("m", &s.m), ("v", &s.v)] {
                c.tensors.insert(
                    format!("adam.{name}.{tensor}"),
                    Tensor {
                        shape: vec![v.len()],
                        data: TensorData::F64(v.clone()),
                    },
                );
            }
        }
        let meta = Meta {
            format: FORMAT.into(),
            engine: self.config.engine,
            config: toml::Table::try_from(&self.config).expect("the config serialises"),
            epochs_done: self.epochs_done,
            adam_steps: self.adam.slots.iter().map(|s| s.steps).collect(),
            history: self.history.clone(),
            processes: self.processes,
        };
        c.metadata = serde_json::to_string(&meta).expect("metadata serialises");
        c
    }

    /// Saves the state to `path` atomically.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn save(&self, path: &Path) -> Result<()> {
        checkpoint::save(path, &self.to_checkpoint())
    }

    /// Restores a run from a checkpoint written by [`Trainer::save`] or [`Trainer::run`]
    /// (format [`FORMAT`], or the stepped format of eventprop 0.1).
    ///
    /// # Errors
    /// [`Error::Io`] / [`Error::Format`] for a missing or corrupt file, another format, a
    /// weight of the wrong shape or with a non-finite value; the errors of reading the
    /// run's data files ([`TrainConfig::splits`]; the paths are in the checkpoint's config).
    pub fn load(path: &Path) -> Result<Self> {
        Self::load_with(path, Some(DataChange::Refuse))
    }

    /// [`Trainer::load`], with the data files checked against the fingerprints recorded
    /// when the run started as `change` says (refused, or accepted and re-recorded).
    ///
    /// # Errors
    /// As [`Trainer::load`].
    pub fn load_with_data(path: &Path, change: DataChange) -> Result<Self> {
        Self::load_with(path, Some(change))
    }

    /// Restores a checkpoint as [`Trainer::load`] does, but leaves [`Trainer::data`] empty:
    /// for evaluating on other data, without generating or reading the run's splits (whose
    /// files may be gone).
    ///
    /// # Errors
    /// As [`Trainer::load`], without the data errors.
    pub fn load_for_eval(path: &Path) -> Result<Self> {
        Self::load_with(path, None)
    }

    fn load_with(path: &Path, with_data: Option<DataChange>) -> Result<Self> {
        let c = checkpoint::load(path)?;
        let value: serde_json::Value = serde_json::from_str(&c.metadata)
            .map_err(|e| Error::format(path, format!("checkpoint metadata: {e}")))?;
        let format = value["format"].as_str().unwrap_or("").to_string();
        let bad = |e: serde_json::Error| Error::format(path, format!("checkpoint metadata: {e}"));
        let (config, epochs_done, adam_steps, history, processes) = match format.as_str() {
            FORMAT => {
                let m: Meta = serde_json::from_value(value).map_err(bad)?;
                (m.config, m.epochs_done, m.adam_steps, m.history, m.processes)
            }
            FORMAT_V1_STEPPED => {
                // Its config is JSON with `null` for an absent `weight_clip`; TOML has no null.
                let mut value = value;
                if let Some(cfg) = value["config"].as_object_mut() {
                    cfg.retain(|_, v| !v.is_null());
                }
                let m: MetaV1 = serde_json::from_value(value).map_err(bad)?;
                (m.config, m.epochs_done, m.adam_steps, m.history, 1)
            }
            FORMAT_V1_EXACT => {
                return Err(Error::format(
                    path,
                    format!(
                        "checkpoint format `{FORMAT_V1_EXACT}` (exact mode of eventprop 0.1) is not read by this version (format `{FORMAT}`); train it again with `--engine exact`"
                    ),
                ))
            }
            other => {
                return Err(Error::format(
                    path,
                    format!("expected checkpoint format `{FORMAT}`, got `{other}`"),
                ))
            }
        };
        let origin = format!("{} (checkpoint config)", path.display());
        let config = TrainConfig::layered(&[(&origin, config)])?;
        config
            .validate()
            .map_err(|e| Error::format(path, format!("checkpoint config: {e}")))?;
        let engine = engine::build(config.engine, &config.engine_settings())?;
        let shapes = engine.spec().tensor_shapes();
        let names = engine.spec().tensor_names();
        // Checkpoints written before the tensors had names held tensor `k` as `weight.{k}`
        // and its Adam state as `adam.m.{k}` / `adam.v.{k}`: read when the name is absent.
        let tensor = |k: usize, prefix: &str| -> Result<(String, &Tensor)> {
            let name = format!("{prefix}{}", names[k]);
            if let Some(t) = c.tensors.get(&name) {
                return Ok((name, t));
            }
            let old = format!(
                "{prefix}{}",
                if prefix.is_empty() {
                    format!("weight.{k}")
                } else {
                    k.to_string()
                }
            );
            match c.tensors.get(&old) {
                Some(t) => Ok((old, t)),
                None => Err(Error::format(
                    path,
                    format!("checkpoint has no tensor `{name}`"),
                )),
            }
        };
        let mut weights = Vec::with_capacity(shapes.len());
        for (k, &(o, i)) in shapes.iter().enumerate() {
            let (name, t) = tensor(k, "")?;
            if t.shape != [o, i] {
                return Err(Error::format(
                    path,
                    format!("{name}: expected shape [{o}, {i}], got {:?}", t.shape),
                ));
            }
            let data = t.data.to_f64();
            if let Some(v) = data.iter().find(|v| !v.is_finite()) {
                return Err(Error::format(
                    path,
                    format!("{name}: expected finite values, got {v}"),
                ));
            }
            weights.push(Array2::from_shape_vec((o, i), data).expect("shape checked"));
        }
        let mut adam = config.optim.adam()?;
        if adam_steps.len() > shapes.len() {
            return Err(Error::format(path, "more Adam states than weights"));
        }
        for (k, &steps) in adam_steps.iter().enumerate() {
            let (m_name, m) = tensor(k, "adam.m.")?;
            let (v_name, v) = tensor(k, "adam.v.")?;
            let (m, v) = (m.data.to_f64(), v.data.to_f64());
            if m.len() != shapes[k].0 * shapes[k].1 || v.len() != m.len() {
                return Err(Error::format(path, format!("adam state {k}: wrong length")));
            }
            // the moments of a healthy run: m finite, v (a mean of squares) finite and >= 0;
            // anything else would surface epochs later as a diverged training step
            if let Some(x) = m.iter().find(|x| !x.is_finite()) {
                return Err(Error::format(
                    path,
                    format!("{m_name}: expected finite values, got {x}"),
                ));
            }
            if let Some(x) = v.iter().find(|x| !(x.is_finite() && **x >= 0.0)) {
                return Err(Error::format(
                    path,
                    format!("{v_name}: expected finite values >= 0, got {x}"),
                ));
            }
            adam.slots.push(AdamSlot { steps, m, v });
        }
        let schedule = config.optim.schedule()?;
        let mut config = config;
        let data = if let Some(change) = with_data {
            check_fingerprints(&mut config, change)?;
            load_data(&mut config)?
        } else {
            RunData {
                train: SpikeSet::default(),
                validation: SpikeSet::default(),
                test: SpikeSet::default(),
            }
        };
        Ok(Self {
            config,
            engine,
            weights,
            adam,
            schedule,
            epochs_done,
            history,
            data,
            init_report: Vec::new(),
            epochs_report: None,
            processes,
        })
    }
}

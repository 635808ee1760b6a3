//! `eventprop train yinyang` and `eventprop eval`.
//!
//! Settings are layered: the preset of the engine (`--engine`, default `stepped`) ←
//! `--config FILE` (TOML, the keys of `TrainConfig`) ← the flags. Every setting flag is
//! declared once, in [`Settings`], with the config key it sets; the flags become one TOML
//! layer and the library turns the layers into a validated config
//! (`TrainConfig::layered`). A run directory holds `config.toml`,
//! `checkpoint.safetensors`, `best.safetensors`, `metrics.json`, `metrics.csv` and
//! `curves.png` (see `eventprop_train::trainer`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use eventprop_core::Discretization;
use eventprop_train::chip::ChipKind;
use eventprop_train::collective::Collective;
use eventprop_train::config::Task;
use eventprop_train::engine::chip::ChipEngine;
use eventprop_train::fsio::DirLock;
use eventprop_train::trainer::{DataChange, Event, BEST_CHECKPOINT, LAST_CHECKPOINT};
use eventprop_train::{metrics, yinyang, EngineKind, TrainConfig, Trainer};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// Arguments of `eventprop train`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    #[command(subcommand)]
    task: TaskCmd,
}

#[derive(Debug, clap::Subcommand)]
enum TaskCmd {
    /// Train on the Yin-Yang data set (Kriener et al. 2021): generated, or feature files.
    #[command(allow_negative_numbers = true)]
    Yinyang(Box<TaskArgs<YinYangData>>),
    /// Train on spike-event files (SHD/SSC HDF5, event `.npz`).
    #[command(allow_negative_numbers = true)]
    Events(Box<TaskArgs<EventData>>),
}

/// Loss selector of the command line (config key `loss.kind`).
#[derive(Debug, Clone, Copy, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
enum LossArg {
    /// Max-over-time of a leaky-integrator readout + cross-entropy (stepped engine).
    #[value(alias = "max_over_time")]
    MaxOverTime,
    /// First-spike-time cross-entropy on spiking output neurons.
    #[value(alias = "first_spike")]
    FirstSpike,
    /// Loss shaping's `L_time`: the first-spike-time cross-entropy (same as `first-spike`).
    Time,
    /// Cross-entropy on the mean readout membrane over the window (`L_sum`).
    Sum,
    /// Cross-entropy on the readout membrane weighted by `e^{-t/tau_w}` (`L_sum_exp`).
    #[value(alias = "sum_exp")]
    SumExp,
}

#[derive(Debug, clap::Args)]
#[command(allow_negative_numbers = true)]
struct TaskArgs<D: clap::Args> {
    /// TOML file with settings (flags override it): the keys of `TrainConfig`, with
    /// `engine = "stepped" | "exact"` choosing the preset the file is laid over.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// A named recipe laid under `--config` and the flags: `shd` (`train events`: the
    /// EventProp SHD recipe — recurrent layer, delay-line input, loss shaping, rate targets,
    /// augmentation).
    #[arg(long, value_name = "NAME", conflicts_with = "resume")]
    preset: Option<String>,
    /// Output directory (default: a fresh `runs/<UTC timestamp>`); must not hold a run.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Continue the interrupted run in DIR (only `--epochs` may change); bit-identical to an
    /// uninterrupted run with the same thread count.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["out", "config"])]
    resume: Option<PathBuf>,
    /// With `--resume`: use data files that changed since the run started (their size or
    /// content differs from the fingerprints in its config); refused without it.
    #[arg(long, requires = "resume")]
    allow_data_change: bool,
    /// Number of rayon threads (default: all cores, or under `mpirun` the cores divided
    /// among this machine's processes; at most 4 × the cores); results are identical for a
    /// fixed count.
    #[arg(long)]
    threads: Option<usize>,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
    /// Start from the tensors of this NIR graph (weights, recurrent weights, per-neuron time
    /// constants and thresholds; e.g. from `eventprop export`, or another tool's with the
    /// same network) instead of the random initialisation.
    #[arg(long, value_name = "FILE", conflicts_with = "resume")]
    init_nir: Option<PathBuf>,
    /// TOML file of the mock chip's non-idealities (the keys of `[chip.mock]`, e.g.
    /// `noise = false`), laid over `--config` (chip engine only).
    #[arg(long, value_name = "FILE", conflicts_with = "resume")]
    chip_config: Option<PathBuf>,
    /// Calibration of the mock chip saved by `eventprop chip calibrate --out FILE`: applied
    /// instead of calibrating at start (same chip seed; chip engine only).
    #[arg(long, value_name = "FILE", conflicts_with = "resume")]
    chip_calibration: Option<PathBuf>,
    #[command(flatten)]
    settings: Settings,
    #[command(flatten)]
    data: D,
}

/// The setting flags of every task. Each sets the config key of its `serde` name; absent
/// flags keep the value of the layers below.
#[derive(Debug, Default, clap::Args, Serialize)]
struct Settings {
    /// Engine: `stepped` (the seed's time-stepped function; default) or `exact` (event-based,
    /// exact spike times and gradients). Chooses the preset of every other setting.
    #[arg(long, alias = "mode")]
    engine: Option<EngineKind>,
    /// Hardware in the loop: every forward pass on a chip, `mock` (BrainScaleS-2-like,
    /// with non-idealities) or `ideal` (the software engine as a chip); sets
    /// `engine = "chip"`.
    #[arg(long, value_name = "mock|ideal")]
    #[serde(rename = "chip.kind")]
    chip: Option<ChipKind>,
    /// The mock chip instance (seed of its fixed-pattern variation).
    #[arg(long, value_name = "S", value_parser = seed_arg)]
    #[serde(rename = "chip.seed")]
    chip_seed: Option<u64>,
    /// Synapse rows that reach a chip neuron (default 256, a BrainScaleS-2 hemisphere; two
    /// per signed input): the chip refuses networks with more inputs per neuron, and event
    /// channels are binned onto them (chip engine only).
    #[arg(long, value_name = "N")]
    #[serde(rename = "chip.input_rows")]
    chip_input_rows: Option<usize>,
    /// Seed of initialisation and shuffling.
    #[arg(long, value_parser = seed_arg)]
    seed: Option<u64>,
    /// Seed of the data splits.
    #[arg(long, value_parser = seed_arg)]
    data_seed: Option<u64>,
    /// Number of epochs (may be raised on `--resume`); 0 = automatic, the default of
    /// `train events`: at least 20, and enough for `--min-steps` optimiser steps on the
    /// training set
    #[arg(long)]
    epochs: Option<usize>,
    /// With automatic epochs: the fewest optimiser steps (batches) to train for (`train
    /// events` default 1500)
    #[arg(long)]
    min_steps: Option<usize>,
    /// Mini-batch size.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Evaluation batch size.
    #[arg(long)]
    eval_batch_size: Option<usize>,
    /// Adam learning rate.
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "optim.lr")]
    lr: Option<f64>,
    /// Epochs between learning-rate decays.
    #[arg(long)]
    #[serde(rename = "optim.lr_step")]
    lr_step: Option<usize>,
    /// Learning-rate decay factor.
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "optim.lr_gamma")]
    lr_gamma: Option<f64>,
    /// Adam beta1.
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "optim.beta1")]
    beta1: Option<f64>,
    /// Adam beta2.
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "optim.beta2")]
    beta2: Option<f64>,
    /// Adam eps (> 0).
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "optim.eps")]
    eps: Option<f64>,
    /// Clip weights to [-C, C] after each update.
    #[arg(long, allow_hyphen_values = true, value_name = "C")]
    #[serde(rename = "optim.weight_clip")]
    weight_clip: Option<f64>,
    /// Decoupled (AdamW) weight decay: weights are multiplied by 1 − lr × this before each
    /// update (default 0: plain Adam).
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "optim.weight_decay")]
    weight_decay: Option<f64>,
    /// Learning-rate schedule: `step` (× --lr-gamma every --lr-step epochs; default),
    /// `cosine` (to 0 over the epochs) or `plateau` (× --lr-gamma after --lr-step epochs
    /// without a better validation accuracy).
    #[arg(long, value_name = "step|cosine|plateau")]
    #[serde(rename = "optim.lr_schedule")]
    lr_schedule: Option<eventprop_train::optim::LrSchedule>,
    /// Epochs of linear learning-rate warm-up before the schedule (default 0).
    #[arg(long, value_name = "N")]
    #[serde(rename = "optim.warmup_epochs")]
    warmup_epochs: Option<usize>,
    /// Early stopping: stop when the validation accuracy has not improved for N epochs
    /// (best.safetensors holds the best epoch; default 0: never).
    #[arg(long, value_name = "N")]
    #[serde(rename = "optim.patience")]
    patience: Option<usize>,
    /// Hidden layer sizes, comma-separated (e.g. `120` or `100,50`).
    #[arg(long, value_delimiter = ',', action = clap::ArgAction::Set)]
    #[serde(rename = "network.hidden")]
    hidden: Option<Vec<usize>>,
    /// Hidden membrane time constant (s).
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "network.tau_mem")]
    tau_mem: Option<f64>,
    /// Hidden synaptic time constant (s).
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "network.tau_syn")]
    tau_syn: Option<f64>,
    /// Threshold.
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "network.threshold")]
    threshold: Option<f64>,
    /// Leak potential.
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "network.leak")]
    leak: Option<f64>,
    /// Reset potential.
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "network.reset")]
    reset: Option<f64>,
    /// Readout (or spiking output) membrane time constant (s).
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "network.readout_tau_mem")]
    readout_tau_mem: Option<f64>,
    /// Readout (or spiking output) synaptic time constant (s).
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "network.readout_tau_syn")]
    readout_tau_syn: Option<f64>,
    /// Adjoint discretization of the stepped engine: `seed` or `corrected`.
    #[arg(long)]
    #[serde(rename = "stepped.discretization")]
    discretization: Option<Discretization>,
    /// Loss (resets the loss settings to that loss's defaults for the engine).
    #[arg(long, value_enum)]
    #[serde(rename = "loss.kind")]
    loss: Option<LossArg>,
    /// Readout regulariser weight (max-over-time loss).
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "loss.reg")]
    readout_reg: Option<f64>,
    /// Softmax temperature of the first-spike loss (s).
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "loss.tau0")]
    tau0: Option<f64>,
    /// Early-spike time constant of the first-spike loss (s).
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "loss.tau1")]
    tau1: Option<f64>,
    /// Early-spike weight of the first-spike loss.
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "loss.alpha")]
    alpha: Option<f64>,
    /// Weight of the silent-label membrane term of the first-spike loss (exact engine).
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "loss.silent_label_gamma")]
    silent_label_gamma: Option<f64>,
    /// Time constant of the `sum-exp` loss's weighting `e^{-t/tau_w}` (s; default: the
    /// window).
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "loss.tau_w")]
    tau_w: Option<f64>,
    /// Hidden firing-rate regulariser weight (stepped engine).
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "stepped.rate_reg")]
    rate_reg: Option<f64>,
    /// Spike-count target: hidden spikes per neuron and sample (batch mean) above which
    /// `reg.upper_strength` penalises (default 14).
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "reg.upper_rate")]
    reg_upper_rate: Option<f64>,
    /// Spike-count target: spikes per neuron and sample below which `reg.lower_strength`
    /// penalises (default 5; `train events`: 1 on the stepped engine, 5 on the exact).
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "reg.lower_rate")]
    reg_lower_rate: Option<f64>,
    /// Weight of `Σ_n max(0, c_n - upper_rate)²` (0 = off, the default).
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "reg.upper_strength")]
    reg_upper_strength: Option<f64>,
    /// Weight of `Σ_n max(0, lower_rate - c_n)²` (0 = off, the default of `train yinyang`;
    /// `train events`: 1e-3 on the stepped engine, 1e-2 on the exact).
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "reg.lower_strength")]
    reg_lower_strength: Option<f64>,
    /// Train recurrent weights in every hidden layer (`learn.recurrent`).
    #[arg(long)]
    #[serde(rename = "learn.recurrent", skip_serializing_if = "is_false")]
    recurrent: bool,
    /// Train a delay on every feed-forward connection (`learn.delays`).
    #[arg(long)]
    #[serde(rename = "learn.delays", skip_serializing_if = "is_false")]
    delays: bool,
    /// Train per-neuron tau_mem and tau_syn as ln tau (`learn.taus`).
    #[arg(long)]
    #[serde(rename = "learn.taus", skip_serializing_if = "is_false")]
    train_taus: bool,
    /// Train per-neuron thresholds, kept above leak and reset (`learn.threshold`).
    #[arg(long)]
    #[serde(rename = "learn.threshold", skip_serializing_if = "is_false")]
    train_threshold: bool,
    /// Hidden weight init mean.
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "network.hidden_init_mean")]
    hidden_init_mean: Option<f64>,
    /// Hidden weight init std.
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "network.hidden_init_std")]
    hidden_init_std: Option<f64>,
    /// Output weight init mean.
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "network.readout_init_mean")]
    readout_init_mean: Option<f64>,
    /// How the initial weight scales are chosen: `data` (calibrated on a few training
    /// batches before the first epoch to a target hidden rate and live outputs; the default
    /// of `train events`) or `fixed` (the `--*-init-*` values; the default of `train
    /// yinyang`). An explicit `--hidden-init-std` or `--readout-init-*` is used as given.
    #[arg(long, value_name = "data|fixed")]
    #[serde(rename = "init.rule")]
    init: Option<eventprop_train::init::InitRule>,
    /// `--init data`: the hidden layers' target mean firing rate at the start (Hz).
    #[arg(long, value_name = "HZ")]
    #[serde(rename = "init.target_rate")]
    init_target_rate: Option<f64>,
    /// Output weight init std.
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "network.readout_init_std")]
    readout_init_std: Option<f64>,
    /// Exact engine: cap on the spikes of one neuron in one sample.
    #[arg(long)]
    #[serde(rename = "exact.max_spikes_per_neuron")]
    max_spikes_per_neuron: Option<usize>,
    /// Exact engine: floor of the adjoint jump's denominator (units of threshold − leak).
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "exact.grazing_floor")]
    grazing_floor: Option<f64>,
    /// Refuse settings whose estimated peak memory exceeds this (GiB; default 16). The
    /// estimate: stepped, steps × max(batch, eval batch) × (48 B × outputs + 12 B × hidden
    /// neurons, also with --recurrent, --train-threshold and --train-taus) (8 B × steps ×
    /// batch × neurons × (6 training, 4 evaluation) with --delays, trained taus or
    /// thresholds of a spiking output, and on a chip); exact, 40 B × max spikes per neuron ×
    /// neurons × threads; plus weights and data.
    #[arg(long, allow_hyphen_values = true, value_name = "GIB")]
    memory_limit_gib: Option<f64>,
}

/// The data flags of `train yinyang`.
#[derive(Debug, Default, clap::Args, Serialize)]
struct YinYangData {
    /// Training set file instead of the generator: `.npz` with `x` (S, 4) float32/float64
    /// of (x, y, 1-x, 1-y) and integer labels `y` (S,), or CSV (4 feature columns, then the
    /// label). Without `--val`, the last `--val-size` samples of this file are the
    /// validation set (not trained on). `--train-size` is not read.
    #[arg(long, value_name = "FILE")]
    #[serde(rename = "data.train")]
    train: Option<PathBuf>,
    /// Validation set file (format as `--train`; default: held out of `--train`, or the
    /// generator's validation split without `--train`).
    #[arg(long, value_name = "FILE")]
    #[serde(rename = "data.validation")]
    val: Option<PathBuf>,
    /// Test set file (format as `--train`; default: the generator's test split of
    /// `--test-size` samples).
    #[arg(long, value_name = "FILE")]
    #[serde(rename = "data.test")]
    test: Option<PathBuf>,
    /// Training samples.
    #[arg(long)]
    train_size: Option<usize>,
    /// Validation samples.
    #[arg(long)]
    val_size: Option<usize>,
    /// Test samples.
    #[arg(long)]
    test_size: Option<usize>,
    /// Encoding: time of feature value 0 (s).
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "encoding.t_early")]
    t_early: Option<f64>,
    /// Encoding: time of feature value 1 (s).
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "encoding.t_late")]
    t_late: Option<f64>,
    /// Encoding: bias spike time (s).
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "encoding.t_bias")]
    t_bias: Option<f64>,
    /// Simulated duration (s).
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "encoding.t_sim")]
    t_sim: Option<f64>,
    /// Time step of the stepped engine (s).
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "encoding.dt")]
    dt: Option<f64>,
}

/// The data flags of `train events`.
#[derive(Debug, Default, clap::Args, Serialize)]
struct EventData {
    /// Training set: an SHD/SSC-layout HDF5 file (`spikes/times`, `spikes/units`, `labels`;
    /// `.h5`/`.hdf5`) or an event `.npz` (`times`, `units`, `labels`, and `offsets` or
    /// `sample`). Required unless `--config` names it (`[data] train`) or `--resume`.
    #[arg(long, value_name = "FILE", required_unless_present_any = ["resume", "config"])]
    #[serde(rename = "data.train")]
    train: Option<PathBuf>,
    /// Validation set file (default: `--val-fraction` of `--train`, held out).
    #[arg(long, value_name = "FILE")]
    #[serde(rename = "data.validation")]
    val: Option<PathBuf>,
    /// Test set file (default: none).
    #[arg(long, value_name = "FILE")]
    #[serde(rename = "data.test")]
    test: Option<PathBuf>,
    /// Fraction of `--train` held out for validation when there is no `--val` (chosen by
    /// `--data-seed`; default 0.1).
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "events.val_fraction")]
    val_fraction: Option<f64>,
    /// Time step of the stepped engine (s; default 1e-3).
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "events.dt")]
    dt: Option<f64>,
    /// Simulated window (s; default: from the data, the latest event's step + 1).
    #[arg(long, allow_hyphen_values = true)]
    #[serde(rename = "events.t_max")]
    t_max: Option<f64>,
    /// Input channels (default: largest unit in the data + 1).
    #[arg(long)]
    #[serde(rename = "events.channels")]
    channels: Option<usize>,
    /// Classes (default: largest label in the data + 1).
    #[arg(long)]
    #[serde(rename = "events.classes")]
    classes: Option<usize>,
    /// Channel binning: channel c feeds input c / N (neighbouring channels merged), for
    /// every engine (default: with `--chip` the smallest bin that fits the chip's synapse
    /// rows, `chip.input_rows`; else 1).
    #[arg(long, value_name = "N")]
    #[serde(rename = "events.channel_bin")]
    channel_bin: Option<usize>,
    /// Delay-line input: feed each channel this many times, copy k delayed by k ×
    /// `--delay-line-spacing` (the network gets channels × N inputs; default 1 = off).
    #[arg(long, value_name = "N")]
    #[serde(rename = "events.delay_line")]
    delay_line: Option<usize>,
    /// Delay between the copies of `--delay-line` (s; default 0.03).
    #[arg(long, allow_hyphen_values = true, value_name = "SECONDS")]
    #[serde(rename = "events.delay_line_spacing")]
    delay_line_spacing: Option<f64>,
    /// Augmentation: largest random time shift of a training sample (s; uniform in
    /// [-S, S]; events leaving the window are dropped; default 0 = off).
    #[arg(long, allow_hyphen_values = true, value_name = "SECONDS")]
    #[serde(rename = "augment.time_shift")]
    aug_time_shift: Option<f64>,
    /// Augmentation: largest random channel shift of a training sample (uniform integer in
    /// [-N, N]; events leaving the channels are dropped; default 0 = off).
    #[arg(long, value_name = "N")]
    #[serde(rename = "augment.channel_shift")]
    aug_channel_shift: Option<usize>,
    /// Augmentation: random time stretch of a training sample, by a factor uniform in
    /// [1 - F, 1 + F] (F in [0, 1); default 0 = off).
    #[arg(long, allow_hyphen_values = true, value_name = "FRACTION")]
    #[serde(rename = "augment.stretch")]
    aug_stretch: Option<f64>,
    /// Augmentation: probability of blending a training sample with another of its class
    /// (aligned by mean time and channel, each event of both kept with probability 1/2;
    /// default 0 = off).
    #[arg(long, allow_hyphen_values = true, value_name = "PROBABILITY")]
    #[serde(rename = "augment.blend")]
    aug_blend: Option<f64>,
}

/// The flags as one config layer (absent flags omitted): the common settings, the task's
/// data flags, and `task`.
fn layer(task: Task, common: &Settings, data: &impl Serialize) -> Result<toml::Table> {
    let mut t = toml::Table::try_from(common).context("flags")?;
    t.extend(toml::Table::try_from(data).context("flags")?);
    t.insert("task".into(), toml::Value::String(task.name().into()));
    Ok(t)
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The flag that sets config key `key` (the field name in kebab case, except where the
/// `serde` name differs from the flag).
fn flag_of(key: &str) -> String {
    let name = match key {
        "loss.kind" => "loss",
        "loss.reg" => "readout_reg",
        "data.validation" => "val",
        "encoding.dt" | "events.dt" => "dt",
        "chip.kind" => "chip",
        "chip.seed" => "chip_seed",
        "chip.input_rows" => "chip_input_rows",
        "learn.taus" => "train_taus",
        "learn.threshold" => "train_threshold",
        "reg.upper_rate" => "reg_upper_rate",
        "reg.lower_rate" => "reg_lower_rate",
        "reg.upper_strength" => "reg_upper_strength",
        "reg.lower_strength" => "reg_lower_strength",
        "augment.time_shift" => "aug_time_shift",
        "augment.channel_shift" => "aug_channel_shift",
        "augment.stretch" => "aug_stretch",
        "augment.blend" => "aug_blend",
        "init.rule" => "init",
        "init.target_rate" => "init_target_rate",
        _ => key.rsplit('.').next().unwrap_or(key),
    };
    format!("--{}", name.replace('_', "-"))
}

/// Refuses flags that the chosen engine would ignore.
fn check_flags_apply(flags: &toml::Table, engine: EngineKind) -> Result<()> {
    let ignored: Vec<String> = flags
        .keys()
        .filter(|k| !engine.reads(k))
        .map(|k| flag_of(k))
        .collect();
    if !ignored.is_empty() {
        bail!(
            "{}: not read by the {engine} engine (it would be ignored)",
            ignored.join(", ")
        );
    }
    Ok(())
}

/// The `--chip-config FILE` layer: the file's keys under `[chip.mock]`.
pub(crate) fn chip_config_layer(path: &Path) -> Result<(String, toml::Table)> {
    let table = eventprop_train::config::read_toml_table(path).context("--chip-config")?;
    let mut chip = toml::Table::new();
    chip.insert("mock".into(), toml::Value::Table(table));
    let mut layer = toml::Table::new();
    layer.insert("chip".into(), toml::Value::Table(chip));
    Ok((format!("--chip-config {}", path.display()), layer))
}

/// The `--chip-calibration FILE` layer: the calibration (JSON, as `eventprop chip
/// calibrate --out` writes it) as `[chip.calibration]`.
pub(crate) fn chip_calibration_layer(path: &Path) -> Result<(String, toml::Table)> {
    let flag = format!("--chip-calibration {}", path.display());
    let text = std::fs::read_to_string(path).with_context(|| format!("{flag}: cannot read"))?;
    let c: eventprop_train::chip::calibrate::Calibration = serde_json::from_str(&text)
        .with_context(|| {
            format!("{flag}: expected a calibration as `eventprop chip calibrate --out` writes it")
        })?;
    if c.chip_seed > i64::MAX as u64 {
        bail!(
            "{flag}: chip_seed: expected at most {}, got {}",
            i64::MAX,
            c.chip_seed
        );
    }
    let table = toml::Table::try_from(c).context("the calibration as a config table")?;
    let mut chip = toml::Table::new();
    chip.insert("calibration".into(), toml::Value::Table(table));
    let mut layer = toml::Table::new();
    layer.insert("chip".into(), toml::Value::Table(chip));
    Ok((flag, layer))
}

/// The config of running the network of `cfg` (a run's config) on a chip: the run's
/// settings with `engine = "chip"`, `chip.kind = kind`, and the chip seed, non-idealities
/// and calibration given (the run's own otherwise; the run's calibration is dropped when
/// another chip seed is asked for without one, so that the chip is calibrated anew).
pub(crate) fn chip_run_config(
    cfg: &TrainConfig,
    kind: ChipKind,
    chip_seed: Option<u64>,
    chip_config: Option<&Path>,
    chip_calibration: Option<&Path>,
) -> Result<TrainConfig> {
    let mut base = toml::Table::try_from(cfg).context("the checkpoint's config")?;
    base.insert("engine".into(), toml::Value::String("chip".into()));
    // an exact run's membrane-maximum loss term has no counterpart on the chip's
    // grid: its loss is reported without it (the accuracy does not depend on it)
    if let Some(toml::Value::Table(loss)) = base.get_mut("loss") {
        let gamma = loss
            .get("silent_label_gamma")
            .and_then(toml::Value::as_float);
        if let Some(g) = gamma.filter(|&g| g != 0.0) {
            loss.insert("silent_label_gamma".into(), toml::Value::Float(0.0));
            eprintln!(
                "warning: loss.silent_label_gamma = {g} is exact-engine only: the loss on the chip is reported without its term"
            );
        }
    }
    if let (Some(seed), Some(toml::Value::Table(chip))) = (chip_seed, base.get_mut("chip")) {
        if cfg.chip.calibration.is_some_and(|c| c.chip_seed != seed) {
            chip.remove("calibration");
        }
    }
    let mut layers = vec![("the checkpoint's config".to_string(), base)];
    if let Some(p) = chip_config {
        layers.push(chip_config_layer(p)?);
    }
    if let Some(p) = chip_calibration {
        layers.push(chip_calibration_layer(p)?);
    }
    let mut flags = toml::Table::new();
    flags.insert("chip.kind".into(), toml::Value::String(kind.name().into()));
    if let Some(s) = chip_seed {
        flags.insert("chip.seed".into(), toml::Value::Integer(s as i64));
    }
    layers.push(("flags".to_string(), flags));
    let layers: Vec<(&str, toml::Table)> = layers
        .iter()
        .map(|(o, t)| (o.as_str(), t.clone()))
        .collect();
    Ok(TrainConfig::layered(&layers)?)
}

/// Prints the calibration a chip engine applies, and where it comes from.
pub(crate) fn print_calibration(engine: &ChipEngine, cfg: &TrainConfig, file: Option<&Path>) {
    if let Some(c) = engine.calibration() {
        let source = match file {
            Some(p) => format!("read from {}", p.display()),
            None if cfg.chip.calibration.is_some() => "the run's".to_string(),
            None => "measured".to_string(),
        };
        println!(
            "calibration ({source}): weight scale {:.3}, trace scale {:.5}, offset {:.2}, readout offset {:.2}",
            c.weight_scale, c.trace_scale, c.offset, c.readout_offset
        );
    }
}

/// Arguments of `eventprop eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Checkpoint written by `eventprop train` (`OUT/checkpoint.safetensors` or
    /// `OUT/best.safetensors`), of either engine, or a NIR graph (`*.nir`, e.g. from
    /// `eventprop export`).
    #[arg(long, value_name = "FILE")]
    checkpoint: PathBuf,
    /// Data seed of the evaluation set (default: the run's; the set is that seed's test split).
    #[arg(long)]
    data_seed: Option<u64>,
    /// Number of samples (default: the run's test size).
    #[arg(long)]
    size: Option<usize>,
    /// Evaluate on this data file instead of a generated split: for a Yin-Yang run a
    /// feature file (as `train yinyang --train`), for an event run an event file (as
    /// `train events --train`; required there).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["data_seed", "size"])]
    data: Option<PathBuf>,
    /// Evaluate an event file whose events reach past the network's window without them
    /// (their count is printed as a warning); refused without it.
    #[arg(long, requires = "data")]
    truncate: bool,
    /// Number of rayon threads (at most 4 × the cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Deploy the checkpoint's weights on a chip (`mock` or `ideal`) instead of its engine.
    #[arg(long, value_name = "mock|ideal")]
    chip: Option<ChipKind>,
    /// The mock chip instance (default: the run's, else 0).
    #[arg(long, value_name = "S", requires = "chip", value_parser = seed_arg)]
    chip_seed: Option<u64>,
    /// TOML file of the mock chip's non-idealities (keys of `[chip.mock]`).
    #[arg(long, value_name = "FILE", requires = "chip")]
    chip_config: Option<PathBuf>,
    /// Calibration of the mock chip saved by `eventprop chip calibrate --out FILE`: applied
    /// instead of calibrating the chip here (same chip seed).
    #[arg(long, value_name = "FILE", requires = "chip")]
    chip_calibration: Option<PathBuf>,
}

/// Parses a seed: an integer in `0 ..= 2^63 - 1` (a config stores it as a TOML integer,
/// which is signed 64-bit), so that a larger one is refused naming its flag.
pub(crate) fn seed_arg(value: &str) -> std::result::Result<u64, String> {
    match value.trim().parse::<u64>() {
        Ok(n) if n <= i64::MAX as u64 => Ok(n),
        _ => Err(format!(
            "expected an integer in 0..={} (a TOML integer), got `{value}`",
            i64::MAX
        )),
    }
}

/// The most threads `--threads` accepts: 4 × the cores (more only adds scheduling cost;
/// tens of thousands hang the thread-pool start).
fn max_threads() -> usize {
    4 * std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn set_threads(threads: Option<usize>) -> Result<()> {
    if let Some(n) = threads {
        let max = max_threads();
        if n == 0 || n > max {
            bail!("--threads: expected 1 to {max} (4 × the cores), got {n}");
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .context("--threads: could not build the thread pool")?;
    }
    Ok(())
}

/// `YYYYMMDD-HHMMSS` (UTC) of the current time.
fn timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86400, secs % 86400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The output directory of a new run: `out`, or a fresh `runs/<timestamp>`; refused when it
/// already holds a run, created otherwise.
fn fresh_out_dir(out: Option<&Path>) -> Result<PathBuf> {
    let dir = out.map(Path::to_path_buf).unwrap_or_else(|| {
        // A fresh directory: `runs/<timestamp>`, suffixed when that already exists.
        let base = Path::new("runs").join(timestamp());
        (1..)
            .map(|k| {
                if k == 1 {
                    base.clone()
                } else {
                    PathBuf::from(format!("{}-{k}", base.display()))
                }
            })
            .find(|d| !d.exists())
            .expect("an unused name exists")
    });
    if dir.join(LAST_CHECKPOINT).exists() || dir.join("metrics.json").exists() {
        bail!(
            "--out {}: already holds a run (use --resume to continue it, or another --out)",
            dir.display()
        );
    }
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("--out {}: cannot create the directory", dir.display()))?;
    Ok(dir)
}

/// A progress bar for one epoch (hidden with `--quiet`).
fn epoch_bar(quiet: bool, epoch: usize, epochs: usize) -> ProgressBar {
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
    };
    bar.set_style(
        ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} | ETA {eta}")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("{epoch}/{epochs}"));
    bar
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), fmt_loss)
}

/// A loss with four decimals, or in scientific notation from 10^6 on (a huge regulariser
/// strength made the line a 300-digit number).
fn fmt_loss(x: f64) -> String {
    if x.abs() >= 1e6 {
        format!("{x:.4e}")
    } else {
        format!("{x:.4}")
    }
}

/// An accuracy (a fraction) as a percentage with two decimals, e.g. `96.60 %`.
pub(crate) fn pct(acc: f64) -> String {
    format!("{:.2} %", 100.0 * acc)
}

fn pct_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), pct)
}

/// An accuracy of `samples` samples as `96.60 % (966 of 1000)`: the count makes the
/// fraction exact.
pub(crate) fn pct_of(acc: f64, samples: usize) -> String {
    let correct = (acc * samples as f64).round() as usize;
    format!("{} ({correct} of {samples})", pct(acc))
}

/// The processes of this run: the MPI job that started it (`mpi` feature; one process when
/// started without a launcher), or this process alone.
#[cfg(feature = "mpi")]
fn processes() -> Result<Box<dyn Collective>> {
    Ok(Box::new(eventprop_train::collective::Mpi::init()?))
}

/// The processes of this run: this process alone (built without the `mpi` feature).
#[cfg(not(feature = "mpi"))]
fn processes() -> Result<Box<dyn Collective>> {
    Ok(Box::new(eventprop_train::collective::Single))
}

/// Runs `train`. Under `mpirun -n P` (`mpi` feature) every process runs this; an error on
/// any of them is printed with its rank and ends them all (`MPI_Abort`), never a hang.
pub fn run_train(args: TrainArgs) -> Result<()> {
    let coll = processes()?;
    let result = match args.task {
        TaskCmd::Yinyang(a) => layer(Task::Yinyang, &a.settings, &a.data)
            .and_then(|flags| train_task(&a, flags, coll.as_ref())),
        TaskCmd::Events(a) => layer(Task::Events, &a.settings, &a.data)
            .and_then(|flags| train_task(&a, flags, coll.as_ref())),
    };
    if let Err(e) = &result {
        if coll.size() > 1 {
            eprintln!(
                "error: process {} of {}: {e:#} (ending all {} processes)",
                coll.rank(),
                coll.size(),
                coll.size()
            );
            coll.abort(1);
        }
    }
    result
}

/// The bytes of a path, to send to the other processes ([`path_of_bytes`] reads them).
#[cfg(unix)]
fn path_bytes(p: PathBuf) -> Vec<u8> {
    std::os::unix::ffi::OsStringExt::into_vec(p.into_os_string())
}

/// The path of [`path_bytes`].
#[cfg(unix)]
fn path_of_bytes(b: Vec<u8>) -> PathBuf {
    <std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(b).into()
}

/// The bytes of a path, to send to the other processes ([`path_of_bytes`] reads them).
#[cfg(not(unix))]
fn path_bytes(p: PathBuf) -> Vec<u8> {
    p.to_string_lossy().into_owned().into_bytes()
}

/// The path of [`path_bytes`].
#[cfg(not(unix))]
fn path_of_bytes(b: Vec<u8>) -> PathBuf {
    String::from_utf8_lossy(&b).into_owned().into()
}

/// `--threads`, or under a launcher that starts several processes on this machine, the
/// cores divided among them (Open MPI's `OMPI_COMM_WORLD_LOCAL_SIZE`, MPICH's
/// `MPI_LOCALNRANKS`); `None`: rayon's default (all cores).
fn threads_per_process(threads: Option<usize>, coll: &dyn Collective) -> Option<usize> {
    if threads.is_some() || coll.size() == 1 {
        return threads;
    }
    let local = ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"]
        .iter()
        .find_map(|k| std::env::var(k).ok()?.parse::<usize>().ok())?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Some((cores / local.max(1)).max(1))
}

fn train_task<D: clap::Args>(
    args: &TaskArgs<D>,
    mut flags: toml::Table,
    coll: &dyn Collective,
) -> Result<()> {
    let threads = threads_per_process(args.threads, coll);
    set_threads(threads)?;
    let root = coll.is_root();
    // held until the run ends (the trainer shares it); rank 0 alone writes the folder
    let mut lock: Option<DirLock> = None;
    let (mut trainer, dir) = if let Some(dir) = &args.resume {
        let task = flags.remove("task");
        let epochs = flags.remove("epochs");
        if !flags.is_empty() {
            let given: Vec<String> = flags.keys().map(|k| flag_of(k)).collect();
            bail!(
                "--resume: settings cannot change when resuming (only --epochs); got {}",
                given.join(", ")
            );
        }
        // the folder's lock first: a live writer's run is not resumed under it
        if root && dir.is_dir() {
            lock = Some(DirLock::acquire(dir).context("--resume")?);
        }
        let change = if args.allow_data_change {
            DataChange::Allow
        } else {
            DataChange::Refuse
        };
        let mut t = Trainer::load_with_data(&dir.join(LAST_CHECKPOINT), change)
            .with_context(|| format!("--resume {}", dir.display()))?;
        let task = task.and_then(|v| v.as_str().map(str::to_string));
        if task.as_deref() != Some(t.config().task.name()) {
            bail!(
                "--resume {}: the run is a `train {}` run, resume it with that command",
                dir.display(),
                t.config().task
            );
        }
        if let Some(e) = epochs {
            let e = e.as_integer().unwrap_or(0) as usize;
            if e < t.epochs_done() {
                bail!(
                    "--epochs: expected >= {} (epochs already done), got {e}",
                    t.epochs_done()
                );
            }
            t.set_epochs(e)?;
        }
        (t, dir.clone())
    } else {
        let mut layers = Vec::new();
        if let Some(name) = &args.preset {
            let recipe = eventprop_train::config::Recipe::named(name)?;
            let task = flags.get("task").and_then(|v| v.as_str()).unwrap_or("");
            if recipe.task.name() != task {
                bail!(
                    "--preset {name}: a recipe for `train {}`, not `train {task}`",
                    recipe.task
                );
            }
            layers.push((format!("--preset {name}"), recipe.table()));
        }
        if let Some(p) = &args.config {
            let table = eventprop_train::config::read_toml_table(p).context("--config")?;
            layers.push((format!("--config {}", p.display()), table));
        }
        if flags.contains_key("chip.kind") && !flags.contains_key("engine") {
            flags.insert("engine".into(), toml::Value::String("chip".into()));
        }
        if let Some(p) = &args.chip_config {
            layers.push(chip_config_layer(p)?);
        }
        if let Some(p) = &args.chip_calibration {
            layers.push(chip_calibration_layer(p)?);
        }
        layers.push(("flags".to_string(), flags.clone()));
        let layers: Vec<(&str, toml::Table)> = layers
            .iter()
            .map(|(o, t)| (o.as_str(), t.clone()))
            .collect();
        let config = TrainConfig::layered(&layers)?;
        check_flags_apply(&flags, config.engine)?;
        if args.chip_config.is_some() && config.engine != EngineKind::Chip {
            bail!("--chip-config: read by the chip engine only (add --chip mock)");
        }
        if args.chip_calibration.is_some() && config.engine != EngineKind::Chip {
            bail!("--chip-calibration: read by the chip engine only (add --chip mock)");
        }
        let mut trainer = Trainer::new(config)?;
        if let Some(p) = &args.init_nir {
            crate::cmd_export::init_from_nir(&mut trainer, p)?;
        }
        // rank 0 chooses (and creates) the folder, the others learn its name
        let mut name = Vec::new();
        if root {
            let dir = fresh_out_dir(args.out.as_deref())?;
            lock = Some(DirLock::acquire(&dir).context("--out")?);
            name = path_bytes(dir);
        }
        coll.broadcast(&mut name);
        (trainer, path_of_bytes(name))
    };
    let _lock = lock;
    if !root {
        // the other ranks train in step and print nothing (errors aside)
        return trainer
            .run_distributed(&dir, coll, &mut |_| {})
            .map_err(Into::into);
    }
    let c = trainer.config();
    let spec = trainer.engine().spec();
    let sizes: Vec<String> = std::iter::once(spec.n_in)
        .chain(spec.hidden.iter().copied())
        .chain([spec.n_out])
        .map(|n| n.to_string())
        .collect();
    // The exact engine has no time grid: it reports the simulated window.
    let time = if c.engine == EngineKind::Exact {
        format!("exact spike times over {} s", c.t_sim())
    } else {
        format!("{} steps of {} s", c.steps(), c.dt())
    };
    eprintln!(
        "training {} on the {} engine: {} epochs, {}, {} loss, {time}, output in {}",
        match c.task {
            Task::Yinyang => "Yin-Yang",
            Task::Events => "event data",
        },
        c.engine,
        c.epochs,
        sizes.join("-"),
        c.loss.name().replace('_', "-"),
        dir.display()
    );
    let d = &trainer.data();
    eprintln!(
        "data: {} train, {} validation, {} test samples",
        d.train.len(),
        d.validation.len(),
        d.test.len()
    );
    if c.engine == EngineKind::Chip && c.task == Task::Events {
        let hidden: usize = spec.hidden.iter().sum();
        eprintln!(
            "chip: channels binned by {} onto {} inputs ({} of the chip's {} synapse rows, 2 per signed input); {} of its {} neurons; {} chip, times / {} on the mock",
            c.events.channel_bin.unwrap_or(1),
            spec.n_in,
            spec.n_in * eventprop_train::chip::input::ROWS_PER_INPUT,
            c.chip.input_rows,
            hidden + spec.n_out,
            c.chip.neurons,
            c.chip.kind,
            c.chip.speedup
        );
    }
    if let Some(line) = trainer.epochs_report() {
        eprintln!("epochs: {line}");
    }
    for w in eventprop_train::trainer::data_warnings(c, d) {
        eprintln!("warning: {w}");
    }
    if coll.size() > 1 {
        eprintln!(
            "data-parallel: {} processes × {} threads, {} samples of each batch of {} per process; process 0 writes the run folder",
            coll.size(),
            rayon::current_num_threads(),
            c.batch_size / coll.size(),
            c.batch_size
        );
    }
    if args.resume.is_some() {
        eprintln!("init: the checkpoint's weights (nothing recalibrated)");
    } else if args.init_nir.is_some() {
        eprintln!("init: the weights of --init-nir");
    } else {
        for l in trainer.init_report() {
            eprintln!("init: {l}");
        }
    }
    let epochs = c.epochs;
    let quiet = args.quiet;
    let n_train = d.train.len();
    let mut bar: Option<(ProgressBar, std::time::Instant)> = None;
    trainer.run_distributed(&dir, coll, &mut |e| match e {
        Event::Batch(p) => {
            let (b, start) = bar.get_or_insert_with(|| {
                (epoch_bar(quiet, p.epoch, epochs), std::time::Instant::now())
            });
            b.set_length(p.batches as u64);
            b.set_position(p.batch as u64);
            let secs = start.elapsed().as_secs_f64();
            b.set_message(format!(
                "loss {} acc {} rate {:.1} spikes/sample | {:.0} samples/s",
                fmt_loss(p.loss),
                pct(p.accuracy),
                p.hidden_spikes_per_sample,
                p.samples as f64 / secs.max(1e-9)
            ));
        }
        Event::Epoch(m) => {
            if let Some((b, _)) = bar.take() {
                b.finish_and_clear();
            }
            print_epoch(m, epochs, n_train);
        }
        Event::Warning(w) => eprintln!("warning: {w}"),
    })?;
    if let Some(best) = trainer.stopped_early() {
        println!(
            "stopped early after epoch {}: no better validation accuracy in the {} epochs after epoch {best} (--patience)",
            trainer.epochs_done(),
            trainer.config().optim.patience
        );
    }
    print_summary(&trainer);
    Ok(())
}

/// The closing lines of `train`: the last epoch (`checkpoint.safetensors`) and the best
/// validation epoch (`best.safetensors`), each with the checkpoint it belongs to.
fn print_summary(trainer: &Trainer) {
    let Some(last) = trainer.history().last() else {
        return;
    };
    let n_test = trainer.data().test.len();
    let test =
        |m: &metrics::EpochMetrics| m.test_acc.map_or_else(|| "-".into(), |a| pct_of(a, n_test));
    println!(
        "test accuracy: {}: last epoch {} ({LAST_CHECKPOINT}), validation {}",
        test(last),
        last.epoch,
        pct_opt(last.val_acc)
    );
    if let Some(best) = trainer.best_epoch() {
        println!(
            "best validation: {} at epoch {} ({BEST_CHECKPOINT}), test accuracy there {}",
            pct_opt(best.val_acc),
            best.epoch,
            test(best)
        );
    }
}

/// Runs `eval`.
pub fn run_eval(args: EvalArgs) -> Result<()> {
    set_threads(args.threads)?;
    let trainer = crate::cmd_export::load_model(&args.checkpoint)?;
    let cfg = &trainer.config();
    let (set, source) = if cfg.task == Task::Events {
        let Some(path) = &args.data else {
            bail!("--data: an event run is evaluated on a file (the format of its --train); none given");
        };
        if args.data_seed.is_some() || args.size.is_some() {
            bail!(
                "--data-seed, --size: only for Yin-Yang runs (an event run is evaluated on --data)"
            );
        }
        let mut set =
            eventprop_train::events::read_event_file(path, cfg.events.channels, cfg.events.classes)
                .context("--data")?;
        // the run's channel binning: the network's inputs
        eventprop_train::trainer::bin_event_channels(cfg, &mut set);
        let (past, first) = eventprop_train::trainer::events_past_window(cfg, &set);
        if let Some((b, t)) = first {
            let total: usize = set.samples.iter().map(Vec::len).sum();
            if !args.truncate {
                bail!(
                    "--data {}: sample {b} has an event at {t} s, past the network's window events.t_max = {} s ({past} of {total} events past it; pass --truncate to evaluate without them)",
                    path.display(),
                    cfg.t_sim()
                );
            }
            eprintln!(
                "warning: --data {}: {past} of {total} events lie past the network's window events.t_max = {} s and are not used (--truncate)",
                path.display(),
                cfg.t_sim()
            );
        }
        (set, format!("file {}", path.display()))
    } else if let Some(path) = &args.data {
        let data = eventprop_train::files::read_yinyang(path).context("--data")?;
        (
            yinyang::encode(&data, &cfg.encoding),
            format!("file {}", path.display()),
        )
    } else {
        let seed = args.data_seed.unwrap_or(cfg.data_seed);
        let size = args.size.unwrap_or(cfg.test_size);
        if size == 0 {
            bail!("--size: expected >= 1, got 0");
        }
        let gib = size as f64 * eventprop_train::config::BYTES_PER_SAMPLE / (1u64 << 30) as f64;
        if gib > cfg.memory_limit_gib {
            bail!(
                "--size: {size} samples need an estimated {gib:.1} GiB, above the run's memory_limit_gib = {} GiB",
                cfg.memory_limit_gib
            );
        }
        let data = yinyang::generate(size, yinyang::split_seeds(seed)[2]);
        (
            yinyang::encode(&data, &cfg.encoding),
            format!("data seed {seed}, test split"),
        )
    };
    let (e, engine_name) = match args.chip {
        None => (trainer.evaluate(&set)?, format!("{} engine", cfg.engine)),
        Some(kind) => {
            let chip_cfg = chip_run_config(
                cfg,
                kind,
                args.chip_seed,
                args.chip_config.as_deref(),
                args.chip_calibration.as_deref(),
            )?;
            let engine = ChipEngine::new(&chip_cfg.engine_settings()).context("--chip")?;
            print_calibration(&engine, &chip_cfg, args.chip_calibration.as_deref());
            if let Some(map) = engine.input_map() {
                let refs: Vec<&[eventprop_train::data::Spike]> =
                    set.samples.iter().map(Vec::as_slice).collect();
                let (_, st) = map.map_batch(&refs);
                println!(
                    "{}",
                    input_line(
                        &st,
                        chip_cfg.events.channel_bin.unwrap_or(1),
                        map.rows,
                        &chip_cfg.chip
                    )
                );
            }
            let e = eventprop_train::trainer::evaluate(
                &engine,
                trainer.weights(),
                &set,
                cfg.eval_batch_size,
            )?;
            (
                e,
                format!("chip engine: {kind} chip, chip seed {}", chip_cfg.chip.seed),
            )
        }
    };
    println!("accuracy: {}", pct_of(e.accuracy, e.samples));
    println!("loss: {}", e.loss);
    println!("hidden spikes per sample: {}", e.hidden_spikes_per_sample);
    if let Some(s) = e.silent_output_fraction {
        println!("silent output fraction: {s}");
    }
    println!("samples: {} ({source}, {engine_name})", e.samples);
    println!("epochs trained: {}", trainer.epochs_done());
    Ok(())
}
/// The line that tells how event inputs went onto the chip: the binning, the rows used of
/// the chip's, and what the per-row limit merged and the window dropped.
pub(crate) fn input_line(
    st: &eventprop_train::chip::input::InputStats,
    bin: usize,
    inputs: usize,
    chip: &eventprop_train::chip::ChipSettings,
) -> String {
    format!(
        "chip input: channels binned by {bin} onto {inputs} inputs ({} of the chip's {} synapse rows, 2 per signed input); {} events, {} merged (one event per row and step), {} dropped (outside the window)",
        inputs * eventprop_train::chip::input::ROWS_PER_INPUT,
        chip.input_rows,
        st.events,
        st.merged,
        st.dropped
    )
}

/// Prints one epoch's summary line (`n_train`: training samples per epoch, for the
/// samples/s of the training pass).
fn print_epoch(m: &metrics::EpochMetrics, epochs: usize, n_train: usize) {
    println!(
        "epoch {}/{}: train loss {} acc {} | val loss {} acc {} | test loss {} acc {} | {:.3} s (training {:.3} s, {:.0} samples/s) | {:.1} hidden spikes/sample",
        m.epoch,
        epochs,
        fmt_loss(m.train_loss),
        pct(m.train_acc),
        fmt_opt(m.val_loss),
        pct_opt(m.val_acc),
        fmt_opt(m.test_loss),
        pct_opt(m.test_acc),
        m.epoch_seconds,
        m.train_seconds,
        n_train as f64 / m.train_seconds.max(1e-9),
        m.hidden_spikes_per_sample
    );
    if let Some(st) = m.chip.as_ref().and_then(|c| c.input.as_ref()) {
        println!(
            "  chip input (training): {} events, {} merged (one event per synapse row and step), {} dropped (outside the window)",
            st.events, st.merged, st.dropped
        );
    }
    if let Some(a) = &m.augment {
        println!(
            "  augmentation: {} samples, {} blended, {} events dropped (left the window), {} (left the channels)",
            a.samples, a.blended, a.dropped_time, a.dropped_channel
        );
    }
}

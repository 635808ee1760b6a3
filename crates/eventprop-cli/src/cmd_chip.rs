//! `eventprop chip calibrate`: calibrate a mock chip as the hardware workflow does
//! (threshold on the readout scale, PSP amplitude per weight level) and save the result;
//! `eventprop chip map`: a recording file onto the time grid (`hw_data` arrays);
//! `eventprop chip record`: an example recording, Yin-Yang samples run on a chip and saved
//! in the format `chip map` reads.

use std::path::PathBuf;

use crate::cmd_train::seed_arg;
use anyhow::{bail, Context, Result};
use eventprop_train::chip::calibrate::calibrate;
use eventprop_train::chip::mock::MockChip;
use eventprop_train::chip::record_file::{load_npz, save_npz};
use eventprop_train::chip::{ChipKind, GridMap, Interpolation};
use eventprop_train::engine::chip::ChipEngine;
use eventprop_train::{yinyang, TrainConfig, Trainer};

/// Arguments of `eventprop chip`.
#[derive(Debug, clap::Args)]
pub struct ChipArgs {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, clap::Subcommand)]
enum Task {
    /// Measure the chip's rest and threshold (readout codes), the non-spiking readout
    /// layer's own rest, and the PSP per weight level; derive the offsets, `trace_scale`
    /// and the weight scale (training runs the same calibration before it starts).
    Calibrate(CalibrateArgs),
    /// Map a recording (`.npz`, as `eventprop_train::chip::record_file` writes it) onto
    /// the time grid: `spikes.npy` and `membrane.npy` `(T, B, N)` of one layer, ready for
    /// `eventprop neuron --hw-spikes/--hw-membrane`, and `stats.json`.
    Map(MapArgs),
    /// Run Yin-Yang test samples through a chip with a checkpoint's weights (or a fresh
    /// network's) and save what it recorded as a recording file (`.npz`), the format
    /// `chip map` reads and a real chip's recordings are written in.
    Record(RecordArgs),
}

#[derive(Debug, clap::Args)]
struct RecordArgs {
    /// The chip: `mock` (its recording holds spike times off the grid and CADC codes) or
    /// `ideal`.
    #[arg(long, value_name = "mock|ideal")]
    chip: ChipKind,
    /// Checkpoint of a Yin-Yang run whose weights are configured (default: the initial
    /// weights of a fresh `train yinyang --chip …` run with `--seed`).
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
    /// Seed of the fresh network's weights (without `--checkpoint`).
    #[arg(long, default_value_t = 0, conflicts_with = "checkpoint", value_parser = seed_arg)]
    seed: u64,
    /// The mock chip instance (default: the run's, else 0).
    #[arg(long, value_name = "S", value_parser = seed_arg)]
    chip_seed: Option<u64>,
    /// TOML file of the mock's non-idealities (keys of `[chip.mock]`).
    #[arg(long, value_name = "FILE")]
    chip_config: Option<PathBuf>,
    /// Calibration saved by `eventprop chip calibrate --out FILE` (default: calibrate here).
    #[arg(long, value_name = "FILE")]
    chip_calibration: Option<PathBuf>,
    /// Number of samples (the first of the test split of `--data-seed`).
    #[arg(long, default_value_t = 10)]
    size: usize,
    /// Seed of the Yin-Yang splits.
    #[arg(long, default_value_t = 0, value_parser = seed_arg)]
    data_seed: u64,
    /// Where to save the recording (`.npz`, written atomically).
    #[arg(long, value_name = "FILE", default_value = "recording.npz")]
    out: PathBuf,
}

#[derive(Debug, clap::Args)]
#[command(allow_negative_numbers = true)]
struct MapArgs {
    /// The recording.
    #[arg(long, value_name = "FILE")]
    recording: PathBuf,
    /// Layer to write (0 = first hidden layer; the last is the output layer).
    #[arg(long, default_value_t = 0)]
    layer: usize,
    /// Grid step (s).
    #[arg(long, default_value_t = 1e-6)]
    dt: f64,
    /// Number of grid steps T.
    #[arg(long)]
    steps: usize,
    /// Interpolation of membrane samples: `linear` or `nearest`.
    #[arg(long, default_value = "linear")]
    interpolation: String,
    /// Step k reads samples at k dt + shift (s).
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    shift: f64,
    /// Subtracted from every membrane sample (readout units).
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    offset: f64,
    /// Model units per readout unit.
    #[arg(long, default_value_t = 1.0, allow_hyphen_values = true)]
    trace_scale: f64,
    /// Output directory.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

#[derive(Debug, clap::Args)]
struct CalibrateArgs {
    /// The chip (only the mock has analog parameters to calibrate).
    #[arg(long, value_name = "mock")]
    chip: ChipKind,
    /// The mock chip instance (seed of its fixed-pattern variation).
    #[arg(long, value_name = "S", default_value_t = 0)]
    chip_seed: u64,
    /// TOML file of the mock's non-idealities (keys of `[chip.mock]`).
    #[arg(long, value_name = "FILE")]
    chip_config: Option<PathBuf>,
    /// Training config whose network (neuron parameters, dt, window) is calibrated
    /// (default: the chip engine's preset).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where to save the calibration (JSON).
    #[arg(long, value_name = "FILE", default_value = "calibration.json")]
    out: PathBuf,
}

/// Runs `chip`.
pub fn run(args: ChipArgs) -> Result<()> {
    match args.task {
        Task::Calibrate(a) => run_calibrate(a),
        Task::Map(a) => run_map(a),
        Task::Record(a) => run_record(a),
    }
}

/// Largest `--size` of `chip record` (a recording of the mock's readout holds 20 samples
/// per neuron and sample; the file reader's own bound is 10^7 samples).
const MAX_RECORD_SAMPLES: usize = 100_000;

fn run_record(args: RecordArgs) -> Result<()> {
    if args.size == 0 || args.size > MAX_RECORD_SAMPLES {
        bail!(
            "--size: expected 1 to {MAX_RECORD_SAMPLES}, got {}",
            args.size
        );
    }
    let (cfg, weights) = match &args.checkpoint {
        Some(p) => {
            let t = crate::cmd_export::load_model(p)?;
            if t.config().task != eventprop_train::config::Task::Yinyang {
                bail!(
                    "--checkpoint {}: expected a Yin-Yang run (the chips run Yin-Yang networks), got a `train {}` run",
                    p.display(),
                    t.config().task
                );
            }
            (t.config().clone(), t.weights().to_vec())
        }
        None => {
            let mut flags = toml::Table::new();
            flags.insert("engine".into(), toml::Value::String("chip".into()));
            flags.insert(
                "chip.kind".into(),
                toml::Value::String(args.chip.name().into()),
            );
            flags.insert("seed".into(), toml::Value::Integer(args.seed as i64));
            // only the initial weights are used: the smallest splits
            for (key, n) in [("train_size", 50), ("val_size", 1), ("test_size", 1)] {
                flags.insert(key.into(), toml::Value::Integer(n));
            }
            let t = Trainer::new(TrainConfig::layered(&[("flags", flags)])?)?;
            (t.config().clone(), t.weights().to_vec())
        }
    };
    let chip_cfg = crate::cmd_train::chip_run_config(
        &cfg,
        args.chip,
        args.chip_seed,
        args.chip_config.as_deref(),
        args.chip_calibration.as_deref(),
    )?;
    let engine = ChipEngine::new(&chip_cfg.engine_settings()).context("--chip")?;
    crate::cmd_train::print_calibration(&engine, &chip_cfg, args.chip_calibration.as_deref());
    let data = yinyang::generate(args.size, yinyang::split_seeds(args.data_seed)[2]);
    let set = yinyang::encode(&data, &chip_cfg.encoding);
    let inputs: Vec<&[eventprop_train::data::Spike]> =
        set.samples.iter().map(Vec::as_slice).collect();
    let configured = engine.chip().configure(&weights).context("--chip")?;
    let recording = engine.chip().run(&configured, &inputs).context("--chip")?;
    save_npz(&recording, &args.out).with_context(|| format!("--out {}", args.out.display()))?;
    let map = engine.chip().grid_map();
    for (k, l) in recording.layers.iter().enumerate() {
        let events: usize = l.spikes.iter().map(Vec::len).sum();
        let samples: usize = l
            .membrane
            .iter()
            .flatten()
            .flatten()
            .map(|t| t.times.len())
            .sum();
        println!(
            "layer {k}: {} neurons, {events} spikes, {samples} membrane samples",
            l.size
        );
    }
    println!(
        "recorded {} samples ({} chip, chip seed {}; data seed {}, test split): {}",
        recording.samples,
        args.chip,
        chip_cfg.chip.seed,
        args.data_seed,
        args.out.display()
    );
    let last = recording.layers.len() - 1;
    println!(
        "map its readout layer: eventprop chip map --recording {} --layer {last} --steps {} --dt {} --offset {} --trace-scale {} --out hw",
        args.out.display(),
        map.steps,
        map.dt,
        map.readout_offset.unwrap_or(map.offset),
        map.trace_scale
    );
    Ok(())
}

fn run_map(args: MapArgs) -> Result<()> {
    let interpolation = match args.interpolation.as_str() {
        "linear" => Interpolation::Linear,
        "nearest" => Interpolation::Nearest,
        other => bail!("--interpolation: expected `linear` or `nearest`, got `{other}`"),
    };
    let rec = load_npz(&args.recording).context("--recording")?;
    if args.layer >= rec.layers.len() {
        bail!(
            "--layer: expected < {} (the recording's layers), got {}",
            rec.layers.len(),
            args.layer
        );
    }
    let map = GridMap {
        dt: args.dt,
        steps: args.steps,
        interpolation,
        shift: args.shift,
        offset: args.offset,
        readout_offset: None,
        trace_scale: args.trace_scale,
    };
    let mapped = map.map(&rec)?;
    let layer = &mapped.layers[args.layer];
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("--out {}: cannot create the directory", args.out.display()))?;
    crate::io::write_npy(&args.out.join("spikes.npy"), &layer.spikes)?;
    let membrane = layer
        .membrane
        .clone()
        .unwrap_or_else(|| ndarray::Array3::zeros(layer.spikes.dim()));
    crate::io::write_npy(&args.out.join("membrane.npy"), &membrane)?;
    let stats = serde_json::json!({
        "layer": args.layer,
        "shape": layer.spikes.shape(),
        "spikes_on_grid": layer.spikes.sum(),
        "membrane_recorded": layer.membrane.is_some(),
        "events": mapped.stats.spikes,
        "collapsed": mapped.stats.collapsed,
        "dropped": mapped.stats.dropped,
        "held": mapped.stats.held,
    });
    crate::io::write_json(&args.out.join("stats.json"), &stats)?;
    if mapped.stats.held > 0 {
        let reads: u64 = rec
            .layers
            .iter()
            .filter(|l| l.membrane.is_some())
            .map(|l| (args.steps * rec.samples * l.size) as u64)
            .sum();
        eprintln!(
            "warning: {} of {reads} membrane reads fall outside their trace's sampled span \
             (the end sample's value is held there; check --dt, --steps and --shift)",
            mapped.stats.held
        );
    }
    println!(
        "layer {}: {:?} on the grid; events {}, collapsed {}, dropped {} (all layers); membrane {}",
        args.layer,
        layer.spikes.dim(),
        mapped.stats.spikes,
        mapped.stats.collapsed,
        mapped.stats.dropped,
        if layer.membrane.is_some() {
            "recorded"
        } else {
            "not recorded (zeros written)"
        }
    );
    Ok(())
}

fn run_calibrate(args: CalibrateArgs) -> Result<()> {
    if args.chip != ChipKind::Mock {
        bail!(
            "--chip: expected `mock` (the ideal chip has nothing to calibrate), got `{}`",
            args.chip
        );
    }
    let mut layers = Vec::new();
    if let Some(p) = &args.config {
        let table = eventprop_train::config::read_toml_table(p).context("--config")?;
        layers.push((format!("--config {}", p.display()), table));
    }
    if let Some(p) = &args.chip_config {
        layers.push(crate::cmd_train::chip_config_layer(p)?);
    }
    let mut flags = toml::Table::new();
    flags.insert("engine".into(), toml::Value::String("chip".into()));
    layers.push(("flags".to_string(), flags));
    let layers: Vec<(&str, toml::Table)> = layers
        .iter()
        .map(|(o, t)| (o.as_str(), t.clone()))
        .collect();
    let config = TrainConfig::layered(&layers)?;
    let chip = MockChip::new(
        config.network(),
        config.chip.mock.clone(),
        args.chip_seed,
        config.encoding.dt,
        config.encoding.steps(),
    )?;
    let c = calibrate(&chip)?;
    println!("chip seed: {}", c.chip_seed);
    println!("neurons measured: {}", c.neurons);
    println!("rest (offset): {:.3} codes", c.offset);
    println!(
        "readout rest (readout offset): {:.3} codes",
        c.readout_offset
    );
    println!("threshold: {:.3} codes", c.threshold_code);
    println!("trace_scale: {:.6} model units per code", c.trace_scale);
    println!("PSP per weight level: {:.6} model units", c.psp_per_level);
    println!("weight scale: {:.4} levels per model unit", c.weight_scale);
    println!(
        "threshold offset: {:+.4} model units; weight gain: {:.4}",
        c.threshold_offset, c.weight_gain
    );
    let json = serde_json::to_string_pretty(&c).expect("the calibration serialises");
    std::fs::write(&args.out, json)
        .with_context(|| format!("--out {}: cannot write", args.out.display()))?;
    println!("saved: {}", args.out.display());
    Ok(())
}

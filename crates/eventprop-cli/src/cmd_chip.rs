//! `eventprop chip calibrate`: calibrate a mock chip as the hardware workflow does
//! (threshold on the readout scale, PSP amplitude per weight level) and save the result.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use eventprop_train::chip::calibrate::calibrate;
use eventprop_train::chip::mock::MockChip;
use eventprop_train::chip::ChipKind;
use eventprop_train::TrainConfig;

/// Arguments of `eventprop chip`.
#[derive(Debug, clap::Args)]
pub struct ChipArgs {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, clap::Subcommand)]
enum Task {
    /// Measure the chip's threshold (readout codes) and PSP per weight level; derive the
    /// readout offset, `trace_scale` and the weight scale (training runs the same
    /// calibration before it starts).
    Calibrate(CalibrateArgs),
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
    let Task::Calibrate(args) = args.task;
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

//! `eventprop data`: write generated data sets as files (for trying the file-based
//! commands, tests and benchmarks without downloads).

use std::path::PathBuf;

use anyhow::{Context, Result};
use eventprop_data::timing::{timing_task, TimingTask};

/// Arguments of `eventprop data`.
#[derive(Debug, clap::Args)]
pub struct DataArgs {
    #[command(subcommand)]
    kind: Kind,
}

#[derive(Debug, clap::Subcommand)]
enum Kind {
    /// A timing-only event task (classes differ only in spike times, every channel has the
    /// same spike count in every class) as an event `.npz` (`times`, `units`, `offsets`,
    /// `labels`), in SHD's shape by default.
    Timing(TimingArgs),
}

#[derive(Debug, clap::Args)]
struct TimingArgs {
    /// Output `.npz` file (written atomically).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Samples.
    #[arg(long, default_value_t = 1000)]
    samples: usize,
    /// Input channels.
    #[arg(long, default_value_t = 700)]
    channels: usize,
    /// Classes.
    #[arg(long, default_value_t = 20)]
    classes: usize,
    /// Sample duration (s).
    #[arg(long, default_value_t = 1.0)]
    duration: f64,
    /// Events per sample.
    #[arg(long, default_value_t = 5000)]
    events_per_sample: usize,
    /// Spike-time jitter (s, Gaussian std).
    #[arg(long, default_value_t = 10e-3)]
    jitter: f64,
    /// Seed of the class templates: train and test files of one task share it.
    #[arg(long, default_value_t = 0)]
    task_seed: u64,
    /// Seed of the samples: use different ones for train and test files.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Runs `data`.
pub fn run(args: DataArgs) -> Result<()> {
    let Kind::Timing(a) = args.kind;
    if a.out.extension().and_then(|e| e.to_str()) != Some("npz") {
        anyhow::bail!("--out {}: expected a `.npz` file name", a.out.display());
    }
    let t = TimingTask {
        samples: a.samples,
        channels: a.channels,
        classes: a.classes,
        duration: a.duration,
        events_per_sample: a.events_per_sample,
        jitter: a.jitter,
        task_seed: a.task_seed,
        seed: a.seed,
    };
    let gib = (a.samples as f64) * (a.events_per_sample as f64) * 32.0 / (1u64 << 30) as f64;
    if gib > 8.0 {
        anyhow::bail!(
            "--samples × --events-per-sample: {} events need about {gib:.1} GiB to generate, expected at most 8 GiB",
            a.samples as f64 * a.events_per_sample as f64
        );
    }
    let set = timing_task(&t)?;
    eventprop_train::files::write_events(&a.out, &set)
        .with_context(|| format!("--out {}", a.out.display()))?;
    let events: usize = set.samples.iter().map(Vec::len).sum();
    println!(
        "wrote {}: {} samples, {} channels, {} classes, {events} events",
        a.out.display(),
        set.len(),
        a.channels,
        a.classes
    );
    Ok(())
}

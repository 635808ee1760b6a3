//! `eventprop data`: write generated data sets as files (for trying the file-based
//! commands, tests and benchmarks without downloads).
//!
//! Every kind writes an event `.npz` (`times`, `units`, `offsets`, `labels`) from a seeded
//! generator of `eventprop_data`: `--task-seed` fixes the classes (give the train and test
//! files of one task the same one), `--seed` the samples (give them different ones).

use std::path::PathBuf;

use anyhow::{Context, Result};
use eventprop_data::latency::{latency_task, LatencyTask};
use eventprop_data::order::{order_task, OrderTask};
use eventprop_data::place::{place_task, PlaceTask};
use eventprop_data::rates::{rates_task, RatesTask};
use eventprop_data::timing::{timing_task, TimingTask};
use eventprop_data::SpikeSet;

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
    /// Latency-coded images: one spike per pixel at (1 − intensity) · duration; class
    /// prototypes of Gaussian blobs, translated and noisy per sample (8 × 8 pixels, 10
    /// classes by default).
    Latency(LatencyArgs),
    /// Dense SHD-like Poisson rates: each class a time-varying rate profile over the
    /// channels, each sample a jittered Poisson draw plus background noise (700 channels,
    /// 20 classes, 1 s, ~4000 events per sample by default).
    Rates(RatesArgs),
    /// Place-coded feature sequences: in every time bin a narrow band of channels fires
    /// around class-specific trajectories (like formants moving along the frequency axis).
    Place(PlaceArgs),
    /// Order of events: words of the same syllables in class-specific orders, with speaker
    /// shift and tempo variation per sample; spike counts per channel carry almost no
    /// class information.
    Order(OrderArgs),
    /// The Yin-Yang generator's standard splits (those of `train yinyang --data-seed S`) as
    /// feature files `train.npz`, `validation.npz`, `test.npz` in `--out DIR` (`x` float64
    /// (S, 4), `y` int64), the format `train yinyang --train/--val/--test` reads.
    Yinyang(YinYangArgs),
}

#[derive(Debug, clap::Args)]
struct YinYangArgs {
    /// Output directory (created; the three files are written atomically).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Seed of the splits (as `train yinyang --data-seed`).
    #[arg(long, default_value_t = 0)]
    data_seed: u64,
    /// Training samples.
    #[arg(long, default_value_t = 5000)]
    train_size: usize,
    /// Validation samples.
    #[arg(long, default_value_t = 1000)]
    val_size: usize,
    /// Test samples.
    #[arg(long, default_value_t = 1000)]
    test_size: usize,
}

/// Writes the Yin-Yang splits of `data yinyang`.
fn write_yinyang(a: &YinYangArgs) -> Result<()> {
    use eventprop_train::yinyang;
    let samples = a.train_size as f64 + a.val_size as f64 + a.test_size as f64;
    // 40 B per sample (4 float64 features and a label) while generating and writing.
    if samples * 40.0 > 8.0 * (1u64 << 30) as f64 {
        anyhow::bail!("--train-size, --val-size, --test-size: {samples:.3e} samples in all, expected at most 8 GiB of features");
    }
    for (flag, n) in [
        ("--train-size", a.train_size),
        ("--val-size", a.val_size),
        ("--test-size", a.test_size),
    ] {
        if n == 0 {
            anyhow::bail!("{flag}: expected >= 1, got 0");
        }
    }
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("--out {}: cannot create the directory", a.out.display()))?;
    let seeds = yinyang::split_seeds(a.data_seed);
    for ((name, n), seed) in [
        ("train.npz", a.train_size),
        ("validation.npz", a.val_size),
        ("test.npz", a.test_size),
    ]
    .into_iter()
    .zip(seeds)
    {
        let path = a.out.join(name);
        eventprop_train::files::write_yinyang(&path, &yinyang::generate(n, seed))
            .with_context(|| format!("--out {}", a.out.display()))?;
        println!("wrote {}: {n} samples", path.display());
    }
    Ok(())
}

/// The flags every kind has.
#[derive(Debug, clap::Args)]
struct Common {
    /// Output `.npz` file (written atomically).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Samples.
    #[arg(long, default_value_t = 1000)]
    samples: usize,
    /// Seed of the classes (templates, prototypes, profiles): train and test files of one
    /// task share it.
    #[arg(long, default_value_t = 0)]
    task_seed: u64,
    /// Seed of the samples: use different ones for train and test files.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Debug, clap::Args)]
struct TimingArgs {
    #[command(flatten)]
    common: Common,
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
    /// Background noise (Hz per channel, Poisson).
    #[arg(long, default_value_t = 0.0, value_name = "HZ")]
    noise_rate: f64,
}

#[derive(Debug, clap::Args)]
struct LatencyArgs {
    #[command(flatten)]
    common: Common,
    /// Pixels per side (channels = side²).
    #[arg(long, default_value_t = 8)]
    side: usize,
    /// Classes.
    #[arg(long, default_value_t = 10)]
    classes: usize,
    /// Gaussian blobs per class prototype.
    #[arg(long, default_value_t = 3)]
    blobs: usize,
    /// Sample duration (s): intensity 1 fires at 0.
    #[arg(long, default_value_t = 50e-3)]
    duration: f64,
    /// Largest translation per axis (pixels).
    #[arg(long, default_value_t = 1.0)]
    shift: f64,
    /// Per-pixel intensity noise (Gaussian std; intensities in [0, 1]).
    #[arg(long, default_value_t = 0.1)]
    noise: f64,
    /// Pixels below this intensity do not fire.
    #[arg(long, default_value_t = 0.1)]
    threshold: f64,
    /// Background noise (Hz per channel, Poisson).
    #[arg(long, default_value_t = 0.0, value_name = "HZ")]
    noise_rate: f64,
}

#[derive(Debug, clap::Args)]
struct RatesArgs {
    #[command(flatten)]
    common: Common,
    /// Input channels.
    #[arg(long, default_value_t = 700)]
    channels: usize,
    /// Classes.
    #[arg(long, default_value_t = 20)]
    classes: usize,
    /// Sample duration (s).
    #[arg(long, default_value_t = 1.0)]
    duration: f64,
    /// Rate components (Gaussian bumps in channel × time) per class.
    #[arg(long, default_value_t = 4)]
    bumps: usize,
    /// Expected class-driven events per sample (background noise on top).
    #[arg(long, default_value_t = 3500.0)]
    events_per_sample: f64,
    /// Per-sample gain of each component (std of its logarithm).
    #[arg(long, default_value_t = 0.2)]
    gain_jitter: f64,
    /// Per-sample time offset of each component (s, Gaussian std).
    #[arg(long, default_value_t = 20e-3)]
    time_jitter: f64,
    /// Per-sample channel offset of each component (channels, Gaussian std).
    #[arg(long, default_value_t = 5.0)]
    channel_jitter: f64,
    /// Background noise (Hz per channel, Poisson).
    #[arg(long, default_value_t = 1.0, value_name = "HZ")]
    noise_rate: f64,
}

#[derive(Debug, clap::Args)]
struct PlaceArgs {
    #[command(flatten)]
    common: Common,
    /// Input channels.
    #[arg(long, default_value_t = 700)]
    channels: usize,
    /// Classes.
    #[arg(long, default_value_t = 20)]
    classes: usize,
    /// Sample duration (s).
    #[arg(long, default_value_t = 1.0)]
    duration: f64,
    /// Time bin (s).
    #[arg(long, default_value_t = 10e-3)]
    bin: f64,
    /// Trajectories per class.
    #[arg(long, default_value_t = 2)]
    tracks: usize,
    /// Knots of each piecewise linear trajectory.
    #[arg(long, default_value_t = 4)]
    knots: usize,
    /// Width of the active band (channels).
    #[arg(long, default_value_t = 10.0)]
    width: f64,
    /// Probability that a channel of the band fires in a bin.
    #[arg(long, default_value_t = 0.5)]
    fire_prob: f64,
    /// Per-sample channel offset of each track (channels, Gaussian std).
    #[arg(long, default_value_t = 10.0)]
    position_jitter: f64,
    /// Per-sample time offset of the trajectories (s, Gaussian std).
    #[arg(long, default_value_t = 20e-3)]
    time_jitter: f64,
    /// Background noise (Hz per channel, Poisson).
    #[arg(long, default_value_t = 0.0, value_name = "HZ")]
    noise_rate: f64,
}

#[derive(Debug, clap::Args)]
struct OrderArgs {
    #[command(flatten)]
    common: Common,
    /// Input channels.
    #[arg(long, default_value_t = 700)]
    channels: usize,
    /// Classes (at most syllables!).
    #[arg(long, default_value_t = 20)]
    classes: usize,
    /// Sample duration (s).
    #[arg(long, default_value_t = 1.0)]
    duration: f64,
    /// Syllables per word (every word is an order of all of them).
    #[arg(long, default_value_t = 4)]
    syllables: usize,
    /// Syllable duration at tempo 1 (s).
    #[arg(long, default_value_t = 0.15)]
    syllable_duration: f64,
    /// Pause between syllables at tempo 1 (s).
    #[arg(long, default_value_t = 0.05)]
    gap: f64,
    /// Channels of a syllable's band.
    #[arg(long, default_value_t = 120)]
    band: usize,
    /// Spikes of every channel of a band in one syllable.
    #[arg(long, default_value_t = 4)]
    spikes_per_channel: usize,
    /// Largest speaker shift (channels).
    #[arg(long, default_value_t = 20)]
    shift: usize,
    /// Tempo variation: time stretch uniform in [1 − tempo, 1 + tempo].
    #[arg(long, default_value_t = 0.1)]
    tempo: f64,
    /// Spike-time jitter (s, Gaussian std).
    #[arg(long, default_value_t = 2e-3)]
    jitter: f64,
    /// Background noise (Hz per channel, Poisson).
    #[arg(long, default_value_t = 0.0, value_name = "HZ")]
    noise_rate: f64,
}

/// Refuses sets whose generation would need more than 8 GiB (32 B per event while
/// generating and writing).
fn check_size(samples: usize, events_per_sample: f64) -> Result<()> {
    let events = samples as f64 * events_per_sample;
    let gib = events * 32.0 / (1u64 << 30) as f64;
    if gib > 8.0 {
        anyhow::bail!(
            "--samples: {events:.3e} events (about {events_per_sample:.0} per sample) need about {gib:.1} GiB to generate, expected at most 8 GiB"
        );
    }
    Ok(())
}

/// Runs `data`.
pub fn run(args: DataArgs) -> Result<()> {
    let out = match &args.kind {
        Kind::Yinyang(a) => return write_yinyang(a),
        Kind::Timing(a) => &a.common.out,
        Kind::Latency(a) => &a.common.out,
        Kind::Rates(a) => &a.common.out,
        Kind::Place(a) => &a.common.out,
        Kind::Order(a) => &a.common.out,
    };
    if out.extension().and_then(|e| e.to_str()) != Some("npz") {
        anyhow::bail!("--out {}: expected a `.npz` file name", out.display());
    }
    let (common, set, channels, classes) = match args.kind {
        Kind::Timing(a) => {
            let c = a.common;
            let noise = a.noise_rate * a.channels as f64 * a.duration;
            check_size(c.samples, a.events_per_sample as f64 + noise)?;
            let set = timing_task(&TimingTask {
                samples: c.samples,
                channels: a.channels,
                classes: a.classes,
                duration: a.duration,
                events_per_sample: a.events_per_sample,
                jitter: a.jitter,
                noise_rate: a.noise_rate,
                task_seed: c.task_seed,
                seed: c.seed,
            });
            (c, set, a.channels, a.classes)
        }
        Kind::Latency(a) => {
            let c = a.common;
            let channels = a.side.saturating_mul(a.side);
            check_size(
                c.samples,
                channels as f64 * (1.0 + a.noise_rate * a.duration),
            )?;
            let set = latency_task(&LatencyTask {
                samples: c.samples,
                side: a.side,
                classes: a.classes,
                blobs: a.blobs,
                duration: a.duration,
                shift: a.shift,
                noise: a.noise,
                threshold: a.threshold,
                noise_rate: a.noise_rate,
                task_seed: c.task_seed,
                seed: c.seed,
            });
            (c, set, channels, a.classes)
        }
        Kind::Rates(a) => {
            let c = a.common;
            let noise = a.noise_rate * a.channels as f64 * a.duration;
            // Gains are log-normal: the mean is exp(σ² / 2) times the median.
            let gain = (a.gain_jitter * a.gain_jitter / 2.0).exp();
            check_size(c.samples, a.events_per_sample * gain + noise)?;
            let set = rates_task(&RatesTask {
                samples: c.samples,
                channels: a.channels,
                classes: a.classes,
                duration: a.duration,
                bumps: a.bumps,
                events_per_sample: a.events_per_sample,
                gain_jitter: a.gain_jitter,
                time_jitter: a.time_jitter,
                channel_jitter: a.channel_jitter,
                noise_rate: a.noise_rate,
                task_seed: c.task_seed,
                seed: c.seed,
            });
            (c, set, a.channels, a.classes)
        }
        Kind::Place(a) => {
            let c = a.common;
            let bins = (a.duration / a.bin).ceil();
            let noise = a.noise_rate * a.channels as f64 * a.duration;
            check_size(
                c.samples,
                bins * a.tracks as f64 * (a.width + 1.0) * a.fire_prob + noise,
            )?;
            let set = place_task(&PlaceTask {
                samples: c.samples,
                channels: a.channels,
                classes: a.classes,
                duration: a.duration,
                bin: a.bin,
                tracks: a.tracks,
                knots: a.knots,
                width: a.width,
                fire_prob: a.fire_prob,
                position_jitter: a.position_jitter,
                time_jitter: a.time_jitter,
                noise_rate: a.noise_rate,
                task_seed: c.task_seed,
                seed: c.seed,
            });
            (c, set, a.channels, a.classes)
        }
        Kind::Yinyang(_) => unreachable!("handled above"),
        Kind::Order(a) => {
            let c = a.common;
            let noise = a.noise_rate * a.channels as f64 * a.duration;
            check_size(
                c.samples,
                a.syllables as f64 * a.band as f64 * a.spikes_per_channel as f64 + noise,
            )?;
            let set = order_task(&OrderTask {
                samples: c.samples,
                channels: a.channels,
                classes: a.classes,
                duration: a.duration,
                syllables: a.syllables,
                syllable_duration: a.syllable_duration,
                gap: a.gap,
                band: a.band,
                spikes_per_channel: a.spikes_per_channel,
                shift: a.shift,
                tempo: a.tempo,
                jitter: a.jitter,
                noise_rate: a.noise_rate,
                task_seed: c.task_seed,
                seed: c.seed,
            });
            (c, set, a.channels, a.classes)
        }
    };
    let set: SpikeSet = set?;
    eventprop_train::files::write_events(&common.out, &set)
        .with_context(|| format!("--out {}", common.out.display()))?;
    let events: usize = set.samples.iter().map(Vec::len).sum();
    println!(
        "wrote {}: {} samples, {channels} channels, {classes} classes, {events} events",
        common.out.display(),
        set.len(),
    );
    Ok(())
}

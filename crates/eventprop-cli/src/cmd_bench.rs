//! `eventprop bench`: one training pass of a first hidden layer at named sizes, in f32,
//! through the seed function (dense arrays) and through the fused event-driven layer
//! (`--task layer`, the default); or an epoch of `train events` per training
//! configuration (`--task events`, [`crate::cmd_bench_events`]).
//!
//! The workload is [`eventprop_core::workload`]: Bernoulli(0.05) input spikes, synapse
//! forward, neuron forward, neuron backward, synapse backward to the weight. Both paths do
//! the same work and must give the same weight gradient (to f32 rounding); each is timed
//! without drawing its inputs (the seed path's dense `grad_spikes`, the fused path's
//! gradient at its spikes), and its peak resident memory is measured on its own.

use std::time::Instant;

use anyhow::Result;
use eventprop_core::workload::{Size, Workload, SIZES};
use ndarray::Array2;
use serde::Serialize;

/// Arguments of `eventprop bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// What to time: one first-layer training pass at named sizes (`layer`), or an epoch of
    /// `train events` on an SHD-shaped file per training configuration (`events`: training
    /// and evaluation samples/s and peak memory per row, each row its own process).
    #[arg(long, default_value = "layer", value_parser = ["layer", "events"])]
    task: String,
    /// Size to run (default: all three).
    #[arg(long, value_parser = ["yinyang", "medium", "shd"])]
    size: Option<String>,
    /// Worker threads, >= 1 (default: all cores).
    #[arg(long, allow_hyphen_values = true, value_parser = count_arg)]
    threads: Option<usize>,
    /// Timed repetitions after one warm-up pass, >= 1 (the median is reported).
    #[arg(
        long,
        default_value_t = 7,
        allow_hyphen_values = true,
        value_parser = count_arg
    )]
    reps: usize,
    /// Time steps `T` instead of the size's own (for scaling measurements), >= 1.
    #[arg(long, allow_hyphen_values = true, value_parser = count_arg)]
    steps: Option<usize>,
    /// Which implementation to run: the fused layer (the training path; default), the seed
    /// function (dense arrays, several GB at `--size shd`), or both (the fused one last,
    /// with the agreement of their gradients checked).
    #[arg(long, default_value = "fused", value_parser = ["both", "seed", "fused"])]
    path: String,
    /// Print one JSON object per size and path instead of text.
    #[arg(long)]
    json: bool,
    /// Refuse sizes whose estimated memory exceeds this many GiB (> 0).
    #[arg(long, default_value_t = 16.0, allow_hyphen_values = true)]
    memory_limit_gib: f64,
    #[command(flatten)]
    events: EventsArgs,
}

/// The flags of `eventprop bench --task events`.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "--task events")]
struct EventsArgs {
    /// Training data file (any `train events --train` format) instead of the generated
    /// SHD-shaped timing task.
    #[arg(long, value_name = "FILE")]
    data: Option<std::path::PathBuf>,
    /// Test data file (with `--data`).
    #[arg(long, value_name = "FILE")]
    test: Option<std::path::PathBuf>,
    /// Training samples of the generated task (SHD: 8156; 10 % become the validation
    /// split).
    #[arg(long, default_value_t = 8156)]
    samples: usize,
    /// Test samples of the generated task (SHD: 2264; 0 = no test set).
    #[arg(long, default_value_t = 2264)]
    test_samples: usize,
    /// Events per generated sample.
    #[arg(long, default_value_t = 5000, allow_hyphen_values = true, value_parser = count_arg)]
    events_per_sample: usize,
    /// Channels of the generated task.
    #[arg(long, default_value_t = 700, allow_hyphen_values = true, value_parser = count_arg)]
    channels: usize,
    /// Hidden layer size (default: the trainer's, 256).
    #[arg(long, allow_hyphen_values = true, value_parser = count_arg)]
    hidden: Option<usize>,
    /// Training samples of the exact-engine rows: the first of the training data (0 = all).
    #[arg(long, default_value_t = 400)]
    exact_samples: usize,
    /// Test samples of the exact-engine rows: the first of the test data (0 = all).
    #[arg(long, default_value_t = 100)]
    exact_test_samples: usize,
    /// Epochs per row (the medians over them are reported).
    #[arg(long, default_value_t = 1, allow_hyphen_values = true, value_parser = count_arg)]
    epochs: usize,
    /// Rows, comma-separated: plain, recurrent, delays, taus-threshold, exact,
    /// exact-recurrent (default: all).
    #[arg(long, value_delimiter = ',')]
    rows: Option<Vec<String>>,
    /// Seed of every row's run.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder for the data files and the rows' run folders, kept afterwards (default: a
    /// temporary folder, removed at the end).
    #[arg(long, value_name = "DIR")]
    work_dir: Option<std::path::PathBuf>,
    /// Stop a row's run after this many seconds and report it as timed out (0 = no limit).
    #[arg(long, default_value_t = 1800.0, allow_hyphen_values = true)]
    row_timeout_s: f64,
}

/// Bytes per `(step, sample, input or hidden neuron)` of the seed path's dense arrays
/// (measured: 2.9–3.1 GB at the SHD size, `T·B·(N_in + N)` = 245 M).
const SEED_BYTES_PER_CELL: f64 = 12.0;
/// The same for the fused path alone (measured 343–345 MB at the SHD size).
const FUSED_BYTES_PER_CELL: f64 = 1.5;

/// Refuses a size whose estimated peak exceeds `limit_gib` (one line naming `--steps`, the
/// size and the estimate), before anything is allocated.
fn check_memory(size: &Size, paths: &[Path], limit_gib: f64) -> Result<()> {
    let per_cell = if paths.contains(&Path::Seed) {
        SEED_BYTES_PER_CELL
    } else {
        FUSED_BYTES_PER_CELL
    };
    let cells = size.steps as f64 * size.batch as f64 * (size.inputs + size.neurons) as f64;
    let gib = cells * per_cell / (1u64 << 30) as f64;
    if gib > limit_gib {
        anyhow::bail!(
            "memory: expected an estimated peak below --memory-limit-gib = {limit_gib} GiB, got \
             {gib:.1} GiB for size {} at T = {} steps × B = {} × (N_in = {} + N = {}) × {per_cell} B \
             (lower --steps or choose --path fused)",
            size.name,
            size.steps,
            size.batch,
            size.inputs,
            size.neurons
        );
    }
    Ok(())
}

/// Parses a count: an integer >= 1 (negative values reach here, not clap's flag parser).
fn count_arg(value: &str) -> std::result::Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("expected an integer >= 1, got `{value}`")),
    }
}

/// The implementation a result comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Path {
    /// The seed-compatible function on dense `(T, B, N)` arrays.
    Seed,
    /// The fused event-driven layer.
    Fused,
}

/// One size's result for one path.
#[derive(Debug, Serialize)]
struct BenchResult {
    size: &'static str,
    path: Path,
    steps: usize,
    batch: usize,
    inputs: usize,
    neurons: usize,
    median_ms: f64,
    min_ms: f64,
    max_ms: f64,
    reps: usize,
    threads: usize,
    neuron_steps_per_s: f64,
    spike_rate: f64,
    /// `Σ |dL/dW|` in f64.
    grad_checksum: f64,
    /// `max |gW_fused - gW_seed| / max |gW_seed|` (fused record, when both ran).
    grad_rel_diff: Option<f64>,
    /// Median forward and backward times of the fused path (ms; `None` for the seed path).
    forward_ms: Option<f64>,
    /// See `forward_ms`.
    backward_ms: Option<f64>,
    /// Peak resident memory of this path (MB; `None` where the OS does not tell).
    peak_rss_mb: Option<f64>,
    dtype: &'static str,
}

/// Runs the subcommand.
pub fn run(args: BenchArgs) -> Result<()> {
    if args.task == "events" {
        return run_events(args);
    }
    let e = &args.events;
    if e.data.is_some() || e.test.is_some() || e.rows.is_some() || e.work_dir.is_some() {
        anyhow::bail!(
            "--data, --test, --rows, --work-dir: expected with --task events only, got --task {}",
            args.task
        );
    }
    if args.reps == 0 {
        anyhow::bail!("reps: expected at least 1, got 0");
    }
    if args.threads == Some(0) {
        anyhow::bail!("threads: expected at least 1, got 0");
    }
    if !(args.memory_limit_gib.is_finite() && args.memory_limit_gib > 0.0) {
        anyhow::bail!(
            "memory_limit_gib: expected finite and > 0, got {}",
            args.memory_limit_gib
        );
    }
    let paths: &[Path] = match args.path.as_str() {
        "seed" => &[Path::Seed],
        "fused" => &[Path::Fused],
        _ => &[Path::Seed, Path::Fused],
    };
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let sizes: Vec<Size> = match &args.size {
        Some(name) => {
            vec![Size::by_name(name).ok_or_else(|| anyhow::anyhow!("size: unknown `{name}`"))?]
        }
        None => SIZES.to_vec(),
    };
    let sizes: Vec<Size> = sizes
        .into_iter()
        .map(|s| Size {
            steps: args.steps.unwrap_or(s.steps),
            ..s
        })
        .collect();
    for size in &sizes {
        check_memory(size, paths, args.memory_limit_gib)?;
    }
    for size in sizes {
        let workload = Workload::<f32>::new(size, 0);
        // The fused path runs first, so that its peak memory is not inflated by the heap the
        // seed path's dense arrays leave behind; the seed record is printed first, so that
        // the last record of a size is the fused one.
        let mut runs = paths
            .iter()
            .rev()
            .map(|&path| pool.install(|| bench_path(&workload, path, args.reps, threads)))
            .collect::<Result<Vec<_>>>()?;
        runs.reverse();
        if let [(_, seed_grad), (fused, fused_grad)] = &mut runs[..] {
            let diff = rel_diff(fused_grad, seed_grad);
            anyhow::ensure!(
                diff <= 1e-5,
                "bench: fused and seed weight gradients differ by {diff:e} (relative) at size {}",
                size.name
            );
            fused.grad_rel_diff = Some(diff);
        }
        for (result, _) in &runs {
            print_result(result, args.json)?;
        }
    }
    Ok(())
}

/// `--task events`: [`crate::cmd_bench_events::run`] with the flags.
fn run_events(args: BenchArgs) -> Result<()> {
    if args.size.is_some() || args.steps.is_some() || args.path != "fused" {
        anyhow::bail!(
            "--size, --steps, --path: expected with --task layer only, got --task events"
        );
    }
    let e = args.events;
    if !(e.row_timeout_s.is_finite() && e.row_timeout_s >= 0.0) {
        anyhow::bail!(
            "--row-timeout-s: expected finite and >= 0, got {}",
            e.row_timeout_s
        );
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let rows = e.rows.unwrap_or_else(|| {
        crate::cmd_bench_events::ROWS
            .iter()
            .map(|(n, _)| n.to_string())
            .collect()
    });
    crate::cmd_bench_events::run(&crate::cmd_bench_events::EventsBench {
        data: e.data,
        test: e.test,
        samples: e.samples,
        test_samples: e.test_samples,
        events_per_sample: e.events_per_sample,
        channels: e.channels,
        hidden: e.hidden,
        exact_samples: e.exact_samples,
        exact_test_samples: e.exact_test_samples,
        epochs: e.epochs,
        rows,
        threads,
        seed: e.seed,
        work_dir: e.work_dir,
        row_timeout: (e.row_timeout_s > 0.0).then_some(e.row_timeout_s),
        json: args.json,
    })
}

fn print_result(r: &BenchResult, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(r)?);
        return Ok(());
    }
    let path = match r.path {
        Path::Seed => "seed",
        Path::Fused => "fused",
    };
    let rss = r
        .peak_rss_mb
        .map_or_else(|| "?".to_string(), |m| format!("{m:.0} MB"));
    let split = match (r.forward_ms, r.backward_ms) {
        (Some(f), Some(b)) => format!(" = {f:.2} + {b:.2} ms fwd + bwd,"),
        _ => String::new(),
    };
    println!(
        "{:<8} {:<5} T={:<5} B={:<4} N_in={:<4} N={:<4} median {:>9.2} ms{}  (min {:.2}, max {:.2} ms, {} reps, {} threads)  {:.3e} neuron-steps/s  spike rate {:.4}  peak RSS {}  checksum {:.6e}{}",
        r.size,
        path,
        r.steps,
        r.batch,
        r.inputs,
        r.neurons,
        r.median_ms,
        split,
        r.min_ms,
        r.max_ms,
        r.reps,
        r.threads,
        r.neuron_steps_per_s,
        r.spike_rate,
        rss,
        r.grad_checksum,
        r.grad_rel_diff
            .map_or_else(String::new, |d| format!(" (vs seed {d:.1e})"))
    );
    Ok(())
}

/// `max |a - b| / max |b|` over the elements.
fn rel_diff(a: &Array2<f32>, b: &Array2<f32>) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, &v| m.max(f64::from(v).abs()));
    let diff = a.iter().zip(b).fold(0.0f64, |m, (&x, &y)| {
        m.max((f64::from(x) - f64::from(y)).abs())
    });
    if scale > 0.0 {
        diff / scale
    } else {
        diff
    }
}

/// Resets the kernel's peak-RSS mark of this process (Linux); false where unsupported.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Peak resident memory since the last reset, in MB (Linux `VmHWM`).
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn median(times: &mut [f64]) -> f64 {
    times.sort_by(f64::total_cmp);
    let n = times.len();
    if n % 2 == 1 {
        times[n / 2]
    } else {
        0.5 * (times[n / 2 - 1] + times[n / 2])
    }
}

fn bench_path(
    workload: &Workload<f32>,
    path: Path,
    reps: usize,
    threads: usize,
) -> Result<(BenchResult, Array2<f32>)> {
    let size = workload.size;
    let measured = reset_peak_rss();
    let mut times = Vec::with_capacity(reps);
    let (mut fwd_times, mut bwd_times) = (Vec::new(), Vec::new());
    let (grad, spike_rate) = match path {
        Path::Seed => {
            let dense = workload.dense();
            let warm = workload.pass(&dense)?;
            for _ in 0..reps {
                let start = Instant::now();
                let r = workload.pass(&dense)?;
                times.push(start.elapsed().as_secs_f64() * 1e3);
                // Correctness inside the timed loop: the pass is deterministic.
                anyhow::ensure!(
                    r.grad_weight == warm.grad_weight,
                    "bench: weight gradient changed between passes"
                );
            }
            (warm.grad_weight, warm.spike_rate)
        }
        Path::Fused => {
            let mut layer = workload.fused_layer()?;
            let mut warm = Array2::zeros(workload.weight.dim());
            let (rate, _) = workload.pass_fused(&mut layer, &mut warm)?;
            let mut gw = Array2::zeros(workload.weight.dim());
            for _ in 0..reps {
                let start = Instant::now();
                let spikes = layer.forward(&workload.events, workload.weight.view())?;
                let forward = start.elapsed();
                // The upstream gradient is an input of the pass (as the seed path's dense
                // `grad_spikes`): drawn outside the timed region.
                let grad = workload.grad_at_spikes(spikes);
                let start = Instant::now();
                layer.backward(&workload.events, &grad, &mut gw, None)?;
                let backward = start.elapsed();
                times.push((forward + backward).as_secs_f64() * 1e3);
                fwd_times.push(forward.as_secs_f64() * 1e3);
                bwd_times.push(backward.as_secs_f64() * 1e3);
                anyhow::ensure!(gw == warm, "bench: weight gradient changed between passes");
            }
            (warm, rate)
        }
    };
    let peak = if measured { peak_rss_mb() } else { None };
    let median_ms = median(&mut times);
    let grad_checksum = grad.iter().map(|&v| f64::from(v).abs()).sum();
    Ok((
        BenchResult {
            size: size.name,
            path,
            steps: size.steps,
            batch: size.batch,
            inputs: size.inputs,
            neurons: size.neurons,
            median_ms,
            min_ms: times[0],
            max_ms: times[times.len() - 1],
            reps,
            threads,
            neuron_steps_per_s: size.neuron_steps() as f64 / (median_ms * 1e-3),
            spike_rate,
            grad_checksum,
            grad_rel_diff: None,
            forward_ms: (!fwd_times.is_empty()).then(|| median(&mut fwd_times)),
            backward_ms: (!bwd_times.is_empty()).then(|| median(&mut bwd_times)),
            peak_rss_mb: peak,
            dtype: "f32",
        },
        grad,
    ))
}

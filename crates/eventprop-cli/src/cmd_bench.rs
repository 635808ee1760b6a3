//! `eventprop bench`: one training pass of a first hidden layer at named sizes, in f32.
//!
//! The workload is [`eventprop_core::workload`]: Bernoulli(0.05) input spikes, synapse
//! forward, neuron forward, neuron backward, synapse backward to the weight.

use std::time::Instant;

use anyhow::Result;
use eventprop_core::workload::{Size, Workload, SIZES};
use serde::Serialize;

/// Arguments of `eventprop bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
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
    /// Print one JSON object per size instead of text.
    #[arg(long)]
    json: bool,
}

/// Parses a count: an integer >= 1 (negative values reach here, not clap's flag parser).
fn count_arg(value: &str) -> std::result::Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("expected an integer >= 1, got `{value}`")),
    }
}

/// One size's result.
#[derive(Debug, Serialize)]
struct BenchResult {
    size: &'static str,
    steps: usize,
    batch: usize,
    inputs: usize,
    neurons: usize,
    median_ms: f64,
    min_ms: f64,
    reps: usize,
    threads: usize,
    neuron_steps_per_s: f64,
    spike_rate: f64,
    dtype: &'static str,
}

/// Runs the subcommand.
pub fn run(args: BenchArgs) -> Result<()> {
    if args.reps == 0 {
        anyhow::bail!("reps: expected at least 1, got 0");
    }
    if args.threads == Some(0) {
        anyhow::bail!("threads: expected at least 1, got 0");
    }
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
    for size in sizes {
        let result = pool.install(|| bench_size(size, args.reps, threads))?;
        if args.json {
            println!("{}", serde_json::to_string(&result)?);
        } else {
            println!(
                "{:<8} T={:<5} B={:<4} N_in={:<4} N={:<4} median {:>9.2} ms  (min {:.2} ms, {} reps, {} threads)  {:.3e} neuron-steps/s  hidden spike rate {:.4}",
                result.size,
                result.steps,
                result.batch,
                result.inputs,
                result.neurons,
                result.median_ms,
                result.min_ms,
                result.reps,
                result.threads,
                result.neuron_steps_per_s,
                result.spike_rate
            );
        }
    }
    Ok(())
}

fn bench_size(size: Size, reps: usize, threads: usize) -> Result<BenchResult> {
    let workload = Workload::<f32>::new(size, 0);
    let warm = workload.pass()?;
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let start = Instant::now();
        let r = workload.pass()?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
        // Correctness inside the timed loop: the pass is deterministic.
        anyhow::ensure!(
            r.grad_weight == warm.grad_weight,
            "bench: weight gradient changed between passes"
        );
    }
    times.sort_by(f64::total_cmp);
    let median_ms = if reps % 2 == 1 {
        times[reps / 2]
    } else {
        0.5 * (times[reps / 2 - 1] + times[reps / 2])
    };
    Ok(BenchResult {
        size: size.name,
        steps: size.steps,
        batch: size.batch,
        inputs: size.inputs,
        neurons: size.neurons,
        median_ms,
        min_ms: times[0],
        reps,
        threads,
        neuron_steps_per_s: size.neuron_steps() as f64 / (median_ms * 1e-3),
        spike_rate: warm.spike_rate,
        dtype: "f32",
    })
}

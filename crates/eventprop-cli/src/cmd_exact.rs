//! `eventprop exact`: exact event-based forward and EventProp gradients of a feed-forward
//! LIF network on one input sample, for checking gradients against other implementations.
//!
//! Inputs: `--weights W.npz` with `w0, w1, …` (layer `k` weight, shape `(N_{k+1}, N_k)`,
//! float64) and `--input S.npz` with `times` (float64) and `neurons` (int64) of the input
//! spikes. Outputs in `--out DIR` (each written atomically): `loss.json` (loss value, spike
//! counts per layer, guard counts), `spikes_{k}.npz` (`times`, `neurons`) for each layer
//! `k >= 1`, `grad_w{k}.npy` and `grad_input_times.npy` (`dL/dt` of each input spike, in
//! the order of the input file). Outputs of an earlier run into the same folder that this
//! run did not write (e.g. `grad_w2.npy` of a deeper network) are removed; only files with
//! these output names are touched.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use eventprop_exact::{loss, FirstSpikeCe, Lif, Network, SolverConfig, Spike};
use ndarray::{Array1, Array2, Ix1, Ix2};
use ndarray_npy::NpzWriter;
use serde::Serialize;

use crate::io::{remove_stale_outputs, write_atomic, write_json, write_npy, Npz};

/// Loss on the output spike times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LossKind {
    /// Sum of the times of all output-layer spikes.
    SpikeTimeSum,
    /// First-spike-time cross-entropy with the paper's regulariser and the silent-label
    /// membrane term, library defaults (needs `--label`).
    FirstSpikeCe,
}

/// Arguments of `eventprop exact`.
#[derive(Debug, clap::Args)]
pub struct ExactArgs {
    /// `.npz` with the weight matrices `w0, w1, …`, each `(N_{k+1}, N_k)` float64.
    #[arg(long)]
    pub weights: PathBuf,
    /// `.npz` with the input spikes: `times` (float64, seconds) and `neurons` (int64).
    #[arg(long)]
    pub input: PathBuf,
    /// End of the simulated window in seconds (input spikes after it are ignored).
    #[arg(long, allow_hyphen_values = true)]
    pub t_max: f64,
    /// Leak potential (all layers).
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    pub leak: f64,
    /// Reset potential (all layers).
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    pub reset: f64,
    /// Threshold (all layers).
    #[arg(long, default_value_t = 1.0, allow_hyphen_values = true)]
    pub threshold: f64,
    /// Synaptic time constant in seconds (all layers).
    #[arg(long, default_value_t = 5e-3, allow_hyphen_values = true)]
    pub tau_syn: f64,
    /// Membrane time constant in seconds (all layers).
    #[arg(long, default_value_t = 20e-3, allow_hyphen_values = true)]
    pub tau_mem: f64,
    /// Loss on the output spike times.
    #[arg(long, value_enum, default_value = "spike-time-sum")]
    pub loss: LossKind,
    /// Class label for `--loss first-spike-ce` (an output-neuron index >= 0).
    #[arg(long, allow_hyphen_values = true, value_parser = index_arg)]
    pub label: Option<usize>,
    /// Cap on spikes per neuron (>= 1); exceeding it is an error, not a silent drop.
    #[arg(
        long,
        default_value_t = SolverConfig::default().max_spikes_per_neuron,
        allow_hyphen_values = true,
        value_parser = count_arg
    )]
    pub max_spikes_per_neuron: usize,
    /// Output folder (created if missing). Files in it named like this command's outputs
    /// (`loss.json`, `grad_input_times.npy`, `spikes_<k>.npz`, `grad_w<k>.npy`) that this
    /// run does not write, left from an earlier run, are removed; nothing else is touched.
    #[arg(long)]
    pub out: PathBuf,
}

/// Parses an index: an integer >= 0 (negative values reach here, not clap's flag parser).
fn index_arg(value: &str) -> std::result::Result<usize, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("expected an integer >= 0, got `{value}`"))
}

/// Parses a count: an integer >= 1.
fn count_arg(value: &str) -> std::result::Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("expected an integer >= 1, got `{value}`")),
    }
}

#[derive(Debug, Serialize)]
struct LossReport {
    loss: &'static str,
    value: f64,
    /// Spikes per layer, input first.
    spike_counts: Vec<usize>,
    t_max: f64,
    params: Lif,
    /// Spikes whose `D-` was raised to the grazing floor by the adjoint.
    grazing_clamped: u64,
}

/// Runs the subcommand.
pub fn run(args: ExactArgs) -> Result<()> {
    let params = Lif {
        leak: args.leak,
        reset: args.reset,
        threshold: args.threshold,
        tau_syn: args.tau_syn,
        tau_mem: args.tau_mem,
    };
    let cfg = SolverConfig {
        max_spikes_per_neuron: args.max_spikes_per_neuron,
        ..Default::default()
    };
    let weights = read_weights(&args.weights)?;
    let n_layers = weights.len();
    let net = Network::new(weights, vec![params; n_layers]).context("network")?;
    let input = read_input(&args.input)?;
    let trace = net.forward(&input, args.t_max, &cfg).context("forward")?;
    let (name, out, grads) = match args.loss {
        LossKind::SpikeTimeSum => {
            let out = loss::spike_time_sum(trace.output());
            let grads = trace.backward(&net, &out.dl_dt, &cfg).context("backward")?;
            ("spike-time-sum", out, grads)
        }
        LossKind::FirstSpikeCe => {
            let Some(label) = args.label else {
                bail!("--label: required with --loss first-spike-ce")
            };
            let (out, grads) = FirstSpikeCe::default().sample(&net, &trace, label, &cfg)?;
            ("first-spike-ce", out, grads)
        }
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("--out: cannot create {}", args.out.display()))?;
    let mut written = Vec::new();
    for k in 1..trace.n_layers() {
        let name = format!("spikes_{k}.npz");
        write_spikes(&args.out.join(&name), trace.spikes(k))?;
        written.push(name);
    }
    for (k, g) in grads.weights.iter().enumerate() {
        let name = format!("grad_w{k}.npy");
        write_npy(&args.out.join(&name), g)?;
        written.push(name);
    }
    write_npy(
        &args.out.join("grad_input_times.npy"),
        &Array1::from(grads.input_times.clone()),
    )?;
    written.push("grad_input_times.npy".into());
    let report = LossReport {
        loss: name,
        value: out.value,
        spike_counts: trace.spike_counts(),
        t_max: args.t_max,
        params,
        grazing_clamped: grads.stats.grazing_clamped,
    };
    write_json(&args.out.join("loss.json"), &report)?;
    written.push("loss.json".into());
    remove_stale_outputs(&args.out, is_exact_output, &written)?;
    if grads.stats.grazing_clamped > 0 {
        eprintln!(
            "note: {} grazing spike(s) had D- raised to the floor",
            grads.stats.grazing_clamped
        );
    }
    Ok(())
}

/// Reads `w0, w1, …` (contiguous, at least `w0`, nothing else).
fn read_weights(path: &Path) -> Result<Vec<Array2<f64>>> {
    let mut npz = Npz::open("--weights", path)?;
    let names = npz.names();
    let n = names.len();
    for name in &names {
        let ok = name
            .strip_prefix('w')
            .and_then(|k| k.parse::<usize>().ok())
            .is_some_and(|k| k < n && name == &format!("w{k}"));
        if !ok {
            bail!(
                "--weights: expected arrays named w0 … w{} in {}, got `{name}`",
                n.saturating_sub(1),
                path.display()
            );
        }
    }
    if n == 0 {
        bail!(
            "--weights: expected at least w0 in {}, got no arrays",
            path.display()
        );
    }
    (0..n)
        .map(|k| npz.array::<f64, Ix2>(&format!("w{k}"), "a 2-D float64 array"))
        .collect()
}

fn read_input(path: &Path) -> Result<Vec<Spike>> {
    let mut npz = Npz::open("--input", path)?;
    let times = npz.array::<f64, Ix1>("times", "a 1-D float64 array")?;
    let neurons = npz.array::<i64, Ix1>("neurons", "a 1-D int64 array")?;
    if times.len() != neurons.len() {
        bail!(
            "--input: expected `times` and `neurons` of equal length, got {} and {}",
            times.len(),
            neurons.len()
        );
    }
    times
        .iter()
        .zip(&neurons)
        .enumerate()
        .map(|(i, (&time, &neuron))| {
            let neuron = u32::try_from(neuron).map_err(|_| {
                anyhow::anyhow!("--input: neurons[{i}]: expected an index >= 0, got {neuron}")
            })?;
            Ok(Spike { time, neuron })
        })
        .collect()
}

/// Whether `name` is one of this command's output names: `loss.json`,
/// `grad_input_times.npy`, `spikes_{k}.npz`, `grad_w{k}.npy` (`k` a decimal number).
fn is_exact_output(name: &str) -> bool {
    let numbered = |prefix: &str, suffix: &str| {
        name.strip_prefix(prefix)
            .and_then(|r| r.strip_suffix(suffix))
            .is_some_and(|k| !k.is_empty() && k.bytes().all(|c| c.is_ascii_digit()))
    };
    name == "loss.json"
        || name == "grad_input_times.npy"
        || numbered("spikes_", ".npz")
        || numbered("grad_w", ".npy")
}

fn write_spikes(path: &Path, spikes: &[Spike]) -> Result<()> {
    let times: Array1<f64> = spikes.iter().map(|s| s.time).collect();
    let neurons: Array1<i64> = spikes.iter().map(|s| i64::from(s.neuron)).collect();
    write_atomic(path, |w| {
        let mut npz = NpzWriter::new(w);
        npz.add_array("times", &times)
            .map_err(std::io::Error::other)?;
        npz.add_array("neurons", &neurons)
            .map_err(std::io::Error::other)?;
        npz.finish().map_err(std::io::Error::other)?;
        Ok(())
    })
}

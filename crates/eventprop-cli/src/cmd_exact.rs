//! `eventprop exact`: exact event-based forward and EventProp gradients of a feed-forward
//! LIF network on one input sample, for checking gradients against other implementations.
//!
//! Inputs: `--weights W.npz` with `w0, w1, …` (layer `k` weight, shape `(N_{k+1}, N_k)`,
//! float64) and `--input S.npz` with `times` (float64) and `neurons` (int64) of the input
//! spikes. Outputs in `--out DIR` (each written atomically): `loss.json` (loss value, spike
//! counts per layer, guard counts), `spikes_{k}.npz` (`times`, `neurons`) for each layer
//! `k >= 1`, `grad_w{k}.npy` and `grad_input_times.npy` (`dL/dt` of each input spike, in
//! the order of the input file).

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use eventprop_exact::{loss, FirstSpikeCe, Lif, Network, SolverConfig, Spike};
use ndarray::{Array1, Array2, Ix1, Ix2, OwnedRepr};
use ndarray_npy::{NpzReader, NpzWriter};
use serde::Serialize;

use crate::io::{write_atomic, write_json, write_npy};

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
    #[arg(long, allow_negative_numbers = true)]
    pub t_max: f64,
    /// Leak potential (all layers).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub leak: f64,
    /// Reset potential (all layers).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub reset: f64,
    /// Threshold (all layers).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub threshold: f64,
    /// Synaptic time constant in seconds (all layers).
    #[arg(long, default_value_t = 5e-3, allow_negative_numbers = true)]
    pub tau_syn: f64,
    /// Membrane time constant in seconds (all layers).
    #[arg(long, default_value_t = 20e-3, allow_negative_numbers = true)]
    pub tau_mem: f64,
    /// Loss on the output spike times.
    #[arg(long, value_enum, default_value = "spike-time-sum")]
    pub loss: LossKind,
    /// Class label for `--loss first-spike-ce`.
    #[arg(long)]
    pub label: Option<usize>,
    /// Cap on spikes per neuron; exceeding it is an error, not a silent drop.
    #[arg(long, default_value_t = SolverConfig::default().max_spikes_per_neuron)]
    pub max_spikes_per_neuron: usize,
    /// Output folder (created if missing).
    #[arg(long)]
    pub out: PathBuf,
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
    for k in 1..trace.n_layers() {
        write_spikes(&args.out.join(format!("spikes_{k}.npz")), trace.spikes(k))?;
    }
    for (k, g) in grads.weights.iter().enumerate() {
        write_npy(&args.out.join(format!("grad_w{k}.npy")), g)?;
    }
    write_npy(
        &args.out.join("grad_input_times.npy"),
        &Array1::from(grads.input_times.clone()),
    )?;
    let report = LossReport {
        loss: name,
        value: out.value,
        spike_counts: trace.spike_counts(),
        t_max: args.t_max,
        params,
        grazing_clamped: grads.stats.grazing_clamped,
    };
    write_json(&args.out.join("loss.json"), &report)?;
    if grads.stats.grazing_clamped > 0 {
        eprintln!(
            "note: {} grazing spike(s) had D- raised to the floor",
            grads.stats.grazing_clamped
        );
    }
    Ok(())
}

fn open_npz(arg: &str, path: &Path) -> Result<NpzReader<File>> {
    let file =
        File::open(path).with_context(|| format!("{arg}: cannot open {}", path.display()))?;
    NpzReader::new(file)
        .map_err(|e| anyhow::anyhow!("{arg}: cannot read {} as .npz ({e})", path.display()))
}

/// Reads `w0, w1, …` (contiguous, at least `w0`, nothing else).
fn read_weights(path: &Path) -> Result<Vec<Array2<f64>>> {
    let mut npz = open_npz("--weights", path)?;
    let names = npz
        .names()
        .map_err(|e| anyhow::anyhow!("--weights: cannot list {} ({e})", path.display()))?;
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
        .map(|k| {
            npz.by_name::<OwnedRepr<f64>, Ix2>(&format!("w{k}"))
                .map_err(|e| {
                    anyhow::anyhow!(
                        "--weights: w{k} in {}: expected a 2-D float64 array ({e})",
                        path.display()
                    )
                })
        })
        .collect()
}

fn read_input(path: &Path) -> Result<Vec<Spike>> {
    let mut npz = open_npz("--input", path)?;
    let times = npz.by_name::<OwnedRepr<f64>, Ix1>("times").map_err(|e| {
        anyhow::anyhow!(
            "--input: times in {}: expected a 1-D float64 array ({e})",
            path.display()
        )
    })?;
    let neurons = npz.by_name::<OwnedRepr<i64>, Ix1>("neurons").map_err(|e| {
        anyhow::anyhow!(
            "--input: neurons in {}: expected a 1-D int64 array ({e})",
            path.display()
        )
    })?;
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

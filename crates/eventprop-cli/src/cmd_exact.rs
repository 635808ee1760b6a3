//! `eventprop exact`: exact event-based forward and EventProp gradients of a LIF network
//! (feed-forward, optionally recurrent and delayed, per-neuron parameters) on one input
//! sample, for checking gradients against other implementations.
//!
//! Inputs: `--weights W.npz` with `w0, w1, …` (`w{k}`: the weights into LIF layer `k`,
//! `(N_k, N_{k-1})`, float64; layer 0 is fed by the input), optional `r{k}` (recurrent
//! weights of layer `k`, `(N_k, N_k)`) and `d{k}` (delays in seconds, `>= 0`, the shape of
//! `w{k}`); optional `--params P.npz` with per-neuron `leak{k}`, `reset{k}`,
//! `threshold{k}`, `tau_syn{k}`, `tau_mem{k}` (`(N_k,)`, float64), each overriding the
//! scalar flag for that layer; `--input S.npz` with `times` (float64) and `neurons`
//! (int64) of the input spikes. Outputs in `--out DIR` (each written atomically):
//! `loss.json` (loss value, spike counts per layer, guard and degenerate-event counts),
//! `spikes_{k}.npz` (`times`, `neurons`) for each layer `k >= 1`, `grad_w{k}.npy`,
//! `grad_r{k}.npy` / `grad_d{k}.npy` where `r{k}` / `d{k}` were given, the per-neuron
//! `grad_{tau_mem,tau_syn,threshold,leak,reset}{k}.npy`, and `grad_input_times.npy`
//! (`dL/dt` of each input spike, in the order of the input file). Outputs of an earlier run
//! into the same folder that this run did not write (e.g. `grad_w2.npy` of a deeper
//! network) are removed; only files with these output names are touched.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use eventprop_exact::{
    loss, FirstSpikeCe, ForwardStats, Lif, Network, NeuronParams, SolverConfig, Spike,
};
use ndarray::{Array1, Ix1, Ix2};
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
    /// `.npz` with the weight matrices `w0, w1, …` (`w{k}`: `(N_k, N_{k-1})` float64),
    /// optional recurrent weights `r{k}` `(N_k, N_k)` and delays `d{k}` (seconds, shape of
    /// `w{k}`).
    #[arg(long)]
    pub weights: PathBuf,
    /// `.npz` with per-neuron parameters `leak{k}`, `reset{k}`, `threshold{k}`,
    /// `tau_syn{k}`, `tau_mem{k}` (`(N_k,)` float64), any subset; each overrides the
    /// scalar flag for layer `k`.
    #[arg(long)]
    pub params: Option<PathBuf>,
    /// `.npz` with the input spikes: `times` (float64, seconds) and `neurons` (int64).
    #[arg(long)]
    pub input: PathBuf,
    /// End of the simulated window in seconds (input spikes after it are ignored).
    #[arg(long, allow_hyphen_values = true)]
    pub t_max: f64,
    /// Leak potential (all layers unless `--params` has `leak{k}`).
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    pub leak: f64,
    /// Reset potential (all layers unless `--params` has `reset{k}`).
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    pub reset: f64,
    /// Threshold (all layers unless `--params` has `threshold{k}`).
    #[arg(long, default_value_t = 1.0, allow_hyphen_values = true)]
    pub threshold: f64,
    /// Synaptic time constant in seconds (all layers unless `--params` has `tau_syn{k}`).
    #[arg(long, default_value_t = 5e-3, allow_hyphen_values = true)]
    pub tau_syn: f64,
    /// Membrane time constant in seconds (all layers unless `--params` has `tau_mem{k}`).
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
    /// (`loss.json`, `grad_input_times.npy`, `spikes_<k>.npz`, `grad_<name><k>.npy`) that
    /// this run does not write, left from an earlier run, are removed; nothing else is
    /// touched.
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
    /// The scalar parameters (overridden per neuron by `--params` where given).
    params: Lif,
    /// Layers (`k`) with recurrent weights.
    recurrent_layers: Vec<usize>,
    /// Layers (`k`) whose input connections have delays.
    delayed_layers: Vec<usize>,
    /// Spikes whose `D-` was raised to the grazing floor by the adjoint.
    grazing_clamped: u64,
    /// Degenerate events of the forward (equal-time spikes in a recurrent layer, spikes at
    /// an arrival): the loss is not differentiable there.
    forward: ForwardStats,
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
        parameter_gradients: true,
        ..Default::default()
    };
    let net = read_network(&args.weights, args.params.as_deref(), params)?;
    let n_layers = net.n_layers();
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
    let optional = [("r", &grads.recurrent), ("d", &grads.delays)];
    for (prefix, list) in optional {
        for (k, g) in list.iter().enumerate() {
            if let Some(g) = g {
                let name = format!("grad_{prefix}{k}.npy");
                write_npy(&args.out.join(&name), g)?;
                written.push(name);
            }
        }
    }
    let pg = grads
        .params
        .as_ref()
        .expect("parameter gradients requested");
    for (k, p) in pg.iter().enumerate() {
        for (field, v) in p.fields() {
            let name = format!("grad_{field}{k}.npy");
            write_npy(&args.out.join(&name), &Array1::from(v.to_vec()))?;
            written.push(name);
        }
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
        recurrent_layers: (0..n_layers)
            .filter(|&k| net.recurrent(k).is_some())
            .collect(),
        delayed_layers: (0..n_layers).filter(|&k| net.delays(k).is_some()).collect(),
        grazing_clamped: grads.stats.grazing_clamped,
        forward: trace.stats(),
    };
    write_json(&args.out.join("loss.json"), &report)?;
    written.push("loss.json".into());
    remove_stale_outputs(&args.out, is_exact_output, &written)?;
    let fs = trace.stats();
    if fs.simultaneous_spikes + fs.spikes_at_arrivals > 0 {
        eprintln!(
            "note: {} equal-time spike(s) in recurrent layers, {} spike(s) at an arrival \
             (the loss is not differentiable there)",
            fs.simultaneous_spikes, fs.spikes_at_arrivals
        );
    }
    if grads.stats.grazing_clamped > 0 {
        eprintln!(
            "note: {} grazing spike(s) had D- raised to the floor",
            grads.stats.grazing_clamped
        );
    }
    Ok(())
}

/// Splits an array name `{prefix}{k}` (`k` a decimal layer index without leading zeros).
fn layer_name<'a>(name: &str, prefixes: &[&'a str]) -> Option<(&'a str, usize)> {
    prefixes.iter().find_map(|&p| {
        let k = name.strip_prefix(p)?;
        let n: usize = k.parse().ok()?;
        (k == n.to_string()).then_some((p, n))
    })
}

/// Reads `w0, w1, …` (contiguous, at least `w0`), optional `r{k}` and `d{k}`, and the
/// optional per-neuron parameters, and builds the network.
fn read_network(path: &Path, params_path: Option<&Path>, scalar: Lif) -> Result<Network> {
    let mut npz = Npz::open("--weights", path)?;
    let names = npz.names();
    let n = names.iter().filter(|x| x.starts_with('w')).count();
    for name in &names {
        if layer_name(name, &["w", "r", "d"]).is_none_or(|(_, k)| k >= n) {
            bail!(
                "--weights: expected arrays named w0 … w{} (and optional r<k>, d<k>) in {}, got `{name}`",
                n.saturating_sub(1),
                path.display()
            );
        }
    }
    if n == 0 {
        bail!(
            "--weights: expected at least w0 in {}, got no weight arrays",
            path.display()
        );
    }
    let weights = (0..n)
        .map(|k| npz.array::<f64, Ix2>(&format!("w{k}"), "a 2-D float64 array"))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let sizes: Vec<usize> = weights.iter().map(|w| w.nrows()).collect();
    let mut net = Network::new(weights, vec![scalar; n]).context("--weights")?;
    for name in &names {
        let Some((prefix, k)) = layer_name(name, &["r", "d"]) else {
            continue;
        };
        let a = npz.array::<f64, Ix2>(name, "a 2-D float64 array")?;
        net = match prefix {
            "r" => net.with_recurrent(k, a),
            _ => net.with_delays(k, a),
        }
        .context("--weights")?;
    }
    if let Some(pp) = params_path {
        let mut npz = Npz::open("--params", pp)?;
        let mut per_layer: Vec<NeuronParams> = sizes
            .iter()
            .map(|&size| NeuronParams::uniform(&scalar, size))
            .collect();
        const FIELDS: [&str; 5] = ["leak", "reset", "threshold", "tau_syn", "tau_mem"];
        for name in npz.names() {
            let Some((field, k)) = layer_name(&name, &FIELDS).filter(|&(_, k)| k < n) else {
                bail!(
                    "--params: expected arrays named leak<k>, reset<k>, threshold<k>, tau_syn<k> or tau_mem<k> with k < {n} in {}, got `{name}`",
                    pp.display()
                );
            };
            let v = npz.array::<f64, Ix1>(&name, "a 1-D float64 array")?;
            if v.len() != sizes[k] {
                bail!(
                    "--params: {name}: expected shape ({},) (one per neuron of layer {k}), got ({},)",
                    sizes[k],
                    v.len()
                );
            }
            let slot = per_layer[k]
                .fields_mut()
                .into_iter()
                .find(|(f, _)| *f == field)
                .expect("a field name")
                .1;
            *slot = v.to_vec();
        }
        for (k, p) in per_layer.into_iter().enumerate() {
            net = net.with_neuron_params(k, p).context("--params")?;
        }
    }
    Ok(net)
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
/// `grad_input_times.npy`, `spikes_{k}.npz`, `grad_{w,r,d,leak,reset,threshold,tau_syn,
/// tau_mem}{k}.npy` (`k` a decimal number).
fn is_exact_output(name: &str) -> bool {
    let numbered = |prefix: &str, suffix: &str| {
        name.strip_prefix(prefix)
            .and_then(|r| r.strip_suffix(suffix))
            .is_some_and(|k| !k.is_empty() && k.bytes().all(|c| c.is_ascii_digit()))
    };
    name == "loss.json"
        || name == "grad_input_times.npy"
        || numbered("spikes_", ".npz")
        || [
            "w",
            "r",
            "d",
            "leak",
            "reset",
            "threshold",
            "tau_syn",
            "tau_mem",
        ]
        .iter()
        .any(|p| numbered(&format!("grad_{p}"), ".npy"))
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

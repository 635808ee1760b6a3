//! `eventprop neuron`: apply the EventProp neuron function to arrays on disk.
//!
//! For recorded hardware traces and for cross-checking other implementations. Outputs are
//! written in the input's dtype, atomically: `spikes.npy`, `membrane.npy`, `current.npy`
//! `(T, B, N)`, `grad_input.npy` `(2, T, B, N)` when `--grad-spikes` is given, and
//! `stats.json` with the spike count and the guard counts of the backward. A
//! `grad_input.npy` left in the folder by an earlier run with `--grad-spikes` is removed
//! when this run has none (only the five output names are ever touched).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use eventprop_core::{Discretization, EventPropNeuron, GuardStats, HwData, LifParams, Param, Real};
use ndarray::{Array3, ArrayD, Ix3};
use serde::Serialize;

use crate::io::{read_float_npy, remove_stale_outputs, write_json, write_npy, FloatArray};

/// Arguments of `eventprop neuron`.
#[derive(Debug, clap::Args)]
pub struct NeuronArgs {
    /// Input current `(T, B, N)` or the seed's stacked `(2, T, B, N)`, float32 or float64.
    #[arg(long, value_name = "X.npy")]
    input: PathBuf,
    /// Output folder (created if missing). Writes spikes.npy, membrane.npy, current.npy,
    /// stats.json and, with --grad-spikes, grad_input.npy; a grad_input.npy left from an
    /// earlier run is removed when this run writes none. Nothing else is touched.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Leak potential: a number or a `(N,)` .npy.
    #[arg(
        long,
        default_value = "0",
        value_name = "V|P.npy",
        allow_hyphen_values = true
    )]
    leak: std::ffi::OsString,
    /// Reset potential: a number or a `(N,)` .npy.
    #[arg(
        long,
        default_value = "0",
        value_name = "V|P.npy",
        allow_hyphen_values = true
    )]
    reset: std::ffi::OsString,
    /// Threshold: a number or a `(N,)` .npy.
    #[arg(
        long,
        default_value = "1",
        value_name = "V|P.npy",
        allow_hyphen_values = true
    )]
    threshold: std::ffi::OsString,
    /// Synaptic time constant in seconds: a number or a `(N,)` .npy.
    #[arg(
        long,
        default_value = "5e-6",
        value_name = "V|P.npy",
        allow_hyphen_values = true
    )]
    tau_syn: std::ffi::OsString,
    /// Membrane time constant in seconds: a number or a `(N,)` .npy.
    #[arg(
        long,
        default_value = "1e-5",
        value_name = "V|P.npy",
        allow_hyphen_values = true
    )]
    tau_mem: std::ffi::OsString,
    /// Step width in seconds (> 0).
    #[arg(long, default_value_t = 1e-6, allow_hyphen_values = true)]
    dt: f64,
    /// Recorded hardware spikes `(T, B, N)` (returned unchanged; needs --hw-membrane).
    #[arg(long, value_name = "S.npy", requires = "hw_membrane")]
    hw_spikes: Option<PathBuf>,
    /// Recorded hardware membrane `(T, B, N)` (needs --hw-spikes).
    #[arg(long, value_name = "M.npy", requires = "hw_spikes")]
    hw_membrane: Option<PathBuf>,
    /// Recorded hardware current `(T, B, N)`; recomputed from the input when absent.
    #[arg(long, value_name = "C.npy", requires = "hw_spikes")]
    hw_current: Option<PathBuf>,
    /// Gradient w.r.t. the spikes `(T, B, N)`: runs the EventProp backward.
    #[arg(long, value_name = "G.npy")]
    grad_spikes: Option<PathBuf>,
    /// Current used by the backward's jump terms.
    #[arg(long, default_value = "seed", value_parser = ["seed", "corrected"])]
    discretization: String,
}

/// Contents of `stats.json`.
#[derive(Debug, Serialize)]
struct Stats {
    dtype: &'static str,
    shape: [usize; 3],
    discretization: Discretization,
    hardware_data: bool,
    spike_count: f64,
    backward: bool,
    guards: Option<GuardStats>,
}

/// Runs the subcommand.
pub fn run(args: NeuronArgs) -> Result<()> {
    match read_float_npy("input", &args.input)? {
        FloatArray::F32(x) => run_typed::<f32>(&args, x),
        FloatArray::F64(x) => run_typed::<f64>(&args, x),
    }
}

/// A parameter given as a number or as a `.npy` file of shape `(N,)`.
/// A value that is not UTF-8 can only be a file name (file names need not be UTF-8).
fn parse_param<F: Real>(arg: &'static str, value: &std::ffi::OsStr) -> Result<Param<F>> {
    if let Some(v) = value.to_str().and_then(|v| v.trim().parse::<f64>().ok()) {
        return Ok(Param::Scalar(F::of(v)));
    }
    let path = Path::new(value);
    if !path.exists() {
        anyhow::bail!(
            "{arg}: expected a number or an existing .npy file, got `{}`",
            path.display()
        );
    }
    let a = read_float_npy(arg, path)?.into_f64();
    match a.ndim() {
        0 => Ok(Param::Scalar(F::of(
            a.iter().copied().next().unwrap_or(0.0),
        ))),
        1 => Ok(Param::PerNeuron(a.iter().map(|&v| F::of(v)).collect())),
        _ => anyhow::bail!(
            "{arg}: expected shape (N,) in {}, got {:?}",
            path.display(),
            a.shape()
        ),
    }
}

/// Reads a `(T, B, N)` companion array and converts it to `F`.
fn read_3d<F: Real>(arg: &'static str, path: &Path) -> Result<Array3<F>> {
    let a = read_float_npy(arg, path)?.into_f64();
    let shape = a.shape().to_vec();
    a.mapv(F::of).into_dimensionality::<Ix3>().map_err(|_| {
        anyhow::anyhow!(
            "{arg}: expected shape (T, B, N), got {shape:?} in {}",
            path.display()
        )
    })
}

fn run_typed<F: Real + ndarray_npy::WritableElement>(
    args: &NeuronArgs,
    x: ArrayD<F>,
) -> Result<()> {
    let params = LifParams {
        leak: parse_param("leak", &args.leak)?,
        reset: parse_param("reset", &args.reset)?,
        threshold: parse_param("threshold", &args.threshold)?,
        tau_syn: parse_param("tau_syn", &args.tau_syn)?,
        tau_mem: parse_param("tau_mem", &args.tau_mem)?,
    };
    let discretization: Discretization = args.discretization.parse().map_err(anyhow::Error::msg)?;
    let neuron = EventPropNeuron {
        params,
        dt: F::of(args.dt),
        discretization,
    };
    let hw = match (&args.hw_spikes, &args.hw_membrane) {
        (Some(s), Some(m)) => {
            let current = args
                .hw_current
                .as_deref()
                .map(|c| read_3d::<F>("hw_current", c))
                .transpose()?;
            Some((
                read_3d::<F>("hw_spikes", s)?,
                read_3d::<F>("hw_membrane", m)?,
                current,
            ))
        }
        _ => None,
    };
    let grad_spikes = args
        .grad_spikes
        .as_deref()
        .map(|g| read_3d::<F>("grad_spikes", g))
        .transpose()?;
    let hw_view = hw.as_ref().map(|(s, m, c)| HwData {
        spikes: s.view(),
        membrane: m.view(),
        current: c.as_ref().map(|c| c.view()),
    });
    let ctx = neuron.forward_dyn(x.view(), hw_view)?;
    let grad = grad_spikes
        .map(|g| ctx.backward(g.view(), None, None))
        .transpose()?;

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("out: cannot create {}", args.out.display()))?;
    let out = ctx.output();
    write_npy(&args.out.join("spikes.npy"), &out.spikes)?;
    write_npy(&args.out.join("membrane.npy"), &out.membrane)?;
    write_npy(&args.out.join("current.npy"), &out.current)?;
    if let Some(g) = &grad {
        write_npy(&args.out.join("grad_input.npy"), &g.grad_input)?;
    }
    let (t, b, n) = out.spikes.dim();
    let stats = Stats {
        dtype: F::NAME,
        shape: [t, b, n],
        discretization,
        hardware_data: hw.is_some(),
        spike_count: out.spikes.iter().map(|v| v.to_f64().unwrap_or(0.0)).sum(),
        backward: grad.is_some(),
        guards: grad.as_ref().map(|g| g.stats),
    };
    write_json(&args.out.join("stats.json"), &stats)?;
    let written: Vec<String> = NEURON_OUTPUTS
        .iter()
        .filter(|&&name| name != "grad_input.npy" || grad.is_some())
        .map(|&name| name.to_owned())
        .collect();
    remove_stale_outputs(&args.out, |name| NEURON_OUTPUTS.contains(&name), &written)?;
    if let Some(g) = &grad {
        if g.stats.guarded_spikes > 0 {
            eprintln!(
                "warning: {} spike(s) had a non-finite adjoint term (grad_spikes/dv_m or \
                 dv_p/dv_m, with dv_m = leak - threshold + i* zero or so small that the \
                 division overflows) and were zeroed as in the seed",
                g.stats.guarded_spikes
            );
        }
    }
    Ok(())
}

/// Every file this command writes into `--out`.
const NEURON_OUTPUTS: [&str; 5] = [
    "spikes.npy",
    "membrane.npy",
    "current.npy",
    "grad_input.npy",
    "stats.json",
];

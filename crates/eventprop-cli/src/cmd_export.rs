//! `eventprop export`: a checkpoint as a NIR graph; and the model loader of `eval`, which
//! takes a checkpoint or a NIR file.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use eventprop_train::Trainer;

/// Arguments of `eventprop export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Checkpoint written by `eventprop train` (either engine).
    #[arg(long, value_name = "FILE")]
    checkpoint: PathBuf,
    /// Output NIR file (HDF5; readable by the Python `nir` package's `nir.read`). Written
    /// atomically.
    #[arg(long, value_name = "FILE")]
    nir: PathBuf,
}

/// Whether `path` names a NIR file (extension `.nir`, any case).
fn is_nir(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("nir"))
}

/// The network of `path` for evaluation: a NIR graph when the extension is `.nir`, else a
/// checkpoint.
pub fn load_model(path: &Path) -> Result<Trainer> {
    if is_nir(path) {
        eventprop_train::nir::load(path).with_context(|| format!("--checkpoint {}", path.display()))
    } else {
        Trainer::load_for_eval(path).context("--checkpoint")
    }
}

/// Runs `export`.
pub fn run(args: ExportArgs) -> Result<()> {
    let trainer = load_model(&args.checkpoint)?;
    eventprop_train::nir::save(&trainer, &args.nir).context("--nir")?;
    let spec = trainer.engine().spec();
    println!(
        "wrote {} ({}-{}-{} network, {} engine, {} epochs trained)",
        args.nir.display(),
        spec.n_in,
        spec.hidden
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("-"),
        spec.n_out,
        trainer.config().engine,
        trainer.epochs_done()
    );
    Ok(())
}

/// Replaces the initial tensors of a fresh run by those of the NIR graph at `path`, whose
/// network (sizes, neuron parameters, readout, recurrence) must be the configured one: the
/// graph is read with the configured network as the hint (`network_from_graph`), so a
/// configured `--recurrent` run starts from zero recurrent weights where the graph has no
/// cycle, and trained time constants or thresholds start from the graph's values.
pub fn init_from_nir(trainer: &mut Trainer, path: &Path) -> Result<()> {
    let context = || format!("--init-nir {}", path.display());
    let want = trainer.engine().spec().clone();
    let got = eventprop_train::nir::read_network(path, &want).with_context(context)?;
    if want != got.spec {
        bail!(
            "--init-nir {}: the graph's network differs from the configured one in {}; set the matching flags (--hidden, --tau-mem, --tau-syn, --threshold, --leak, --reset, --readout-tau-*, --loss, --recurrent, --train-taus, --train-threshold)",
            path.display(),
            spec_diff(&got.spec, &want)
        );
    }
    trainer.set_weights(got.tensors)?;
    Ok(())
}

/// The settings in which two networks differ, as `key = graph's (configured ...)`, joined
/// by `; ` (each network flattened to its dotted keys).
fn spec_diff(
    graph: &eventprop_train::model::NetworkSpec,
    configured: &eventprop_train::model::NetworkSpec,
) -> String {
    fn flatten(
        prefix: &str,
        v: &toml::Value,
        out: &mut std::collections::BTreeMap<String, String>,
    ) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    flatten(&key, v, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), other.to_string());
            }
        }
    }
    let flat = |s: &eventprop_train::model::NetworkSpec| {
        let mut out = std::collections::BTreeMap::new();
        if let Ok(v) = toml::Value::try_from(s) {
            flatten("", &v, &mut out);
        }
        out
    };
    let (g, c) = (flat(graph), flat(configured));
    let keys: std::collections::BTreeSet<&String> = g.keys().chain(c.keys()).collect();
    let none = "(none)".to_string();
    let diffs: Vec<String> = keys
        .into_iter()
        .filter(|k| g.get(*k) != c.get(*k))
        .map(|k| {
            format!(
                "{k} = {} (configured {})",
                g.get(k).unwrap_or(&none),
                c.get(k).unwrap_or(&none)
            )
        })
        .collect();
    if diffs.is_empty() {
        "settings that do not serialise".into()
    } else {
        diffs.join("; ")
    }
}

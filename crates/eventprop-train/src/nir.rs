//! A run's network as a NIR graph and back: the network itself is `eventprop-nir`'s
//! ([`network_graph`], [`network_from_graph`]); this module adds what describes the run
//! (engine, time grid, epochs, the whole config as JSON, so that an import evaluates
//! exactly as the checkpoint does) and builds an evaluation-ready [`Trainer`] from a graph.

use std::path::Path;

use eventprop_core::spec::Readout;
use eventprop_core::Lif;
use eventprop_nir::graph::Meta;
use eventprop_nir::{network_from_graph, network_graph, Error as NirError, Graph, NirNetwork};

use crate::config::{EngineKind, TrainConfig};
use crate::error::Result;
use crate::loss::LossKind;
use crate::trainer::{RunData, Trainer};
use eventprop_data::yinyang;

/// The NIR graph of a trained network (`eventprop_nir::network_graph`) with the run's
/// metadata: `engine`, for the stepped engine `dt` and `discretization` (NIR's dynamics
/// are continuous; these say how the network was trained and how `eventprop eval` runs
/// it), `t_sim`, `epochs_done` and `eventprop_config`.
///
/// # Errors
/// As [`network_graph`] (networks with `[learn]` extras are not exported yet).
pub fn to_graph(t: &Trainer) -> Result<Graph> {
    let mut g = network_graph(t.engine.spec(), &t.weights)?;
    let c = &t.config;
    let m = &mut g.metadata;
    let s = |v: &str| Meta::Str(v.to_string());
    m.insert("engine".into(), s(c.engine.name()));
    if c.engine == EngineKind::Stepped {
        m.insert("dt".into(), Meta::F64(c.encoding.dt));
        m.insert(
            "discretization".into(),
            s(match c.stepped.discretization {
                eventprop_core::Discretization::Seed => "seed",
                eventprop_core::Discretization::Corrected => "corrected",
            }),
        );
    }
    m.insert("t_sim".into(), Meta::F64(c.encoding.t_sim));
    m.insert("epochs_done".into(), Meta::I64(t.epochs_done as i64));
    m.insert(
        "eventprop_config".into(),
        Meta::Str(
            serde_json::to_string(&toml::Table::try_from(c).expect("the config serialises"))
                .expect("a TOML table serialises to JSON"),
        ),
    );
    Ok(g)
}

/// A network from a NIR graph, ready for evaluation (no optimiser state, no data; as
/// [`Trainer::load_for_eval`]).
///
/// The config is the graph's `eventprop_config` metadata when present (graphs written by
/// [`to_graph`] or `eventprop.nir.export`), else the preset of the engine named by the
/// `engine` metadata (default stepped); the sizes and neuron parameters come from the
/// nodes. The evaluation task is Yin-Yang: 5 inputs, 3 outputs.
///
/// # Errors
/// [`network_from_graph`]'s; `Unsupported` naming the node for sizes other than 5 → … →
/// 3, or a spiking readout whose leak/threshold/reset differ from the hidden layers'; the
/// config's errors.
pub fn to_trainer(g: &Graph) -> Result<Trainer> {
    let NirNetwork {
        weights,
        hidden,
        hidden_lif,
        readout: (readout_name, readout),
        io_names: (in_name, out_name),
    } = network_from_graph(g)?;
    let n_in = weights[0].ncols();
    let n_out = weights.last().expect("one layer").nrows();
    if n_in != yinyang::N_INPUTS {
        return Err(unsupported(
            &in_name,
            "Input",
            format!(
                "{n_in} inputs; `eventprop eval` runs Yin-Yang networks (expected {})",
                yinyang::N_INPUTS
            ),
        ));
    }
    if n_out != yinyang::N_CLASSES {
        return Err(unsupported(
            &out_name,
            "Output",
            format!(
                "{n_out} outputs; `eventprop eval` runs Yin-Yang networks (expected {})",
                yinyang::N_CLASSES
            ),
        ));
    }
    let mut config = match g.metadata.get("eventprop_config") {
        Some(Meta::Str(json)) => {
            let table: toml::Table = serde_json::from_str(json).map_err(|e| {
                NirError::unsupported(
                    "graph",
                    "NIRGraph",
                    format!("metadata `eventprop_config`: not a config ({e})"),
                )
            })?;
            TrainConfig::layered(&[("NIR metadata `eventprop_config`", table)])?
        }
        _ => {
            let engine = match g.metadata.get("engine").and_then(Meta::as_str) {
                None => EngineKind::Stepped,
                Some(e) => e.parse().map_err(|e: String| {
                    NirError::unsupported("graph", "NIRGraph", format!("metadata `engine`: {e}"))
                })?,
            };
            TrainConfig::preset(engine)
        }
    };
    let lif = match (&hidden_lif, readout) {
        (Some((_, h)), _) => *h,
        (None, Readout::Spiking(l)) => l,
        (None, Readout::Integrator { .. }) => config.network().lif,
    };
    match readout {
        Readout::Integrator { tau_syn, tau_mem } => {
            if !matches!(config.loss, LossKind::MaxOverTime { .. }) {
                config.loss = LossKind::defaults("max_over_time", config.engine)?;
            }
            config.network.readout_tau_syn = tau_syn;
            config.network.readout_tau_mem = tau_mem;
        }
        Readout::Spiking(l) => {
            let shared = Lif {
                tau_syn: lif.tau_syn,
                tau_mem: lif.tau_mem,
                ..l
            };
            if shared != lif {
                return Err(unsupported(&readout_name, "CubaLIF", format!("leak/threshold/reset ({}, {}, {}) differ from the hidden layers' ({}, {}, {}); eventprop's spiking readout shares them", l.leak, l.threshold, l.reset, lif.leak, lif.threshold, lif.reset)));
            }
            if !matches!(config.loss, LossKind::FirstSpike { .. }) {
                config.loss = LossKind::defaults("first_spike", config.engine)?;
            }
            config.network.readout_tau_syn = l.tau_syn;
            config.network.readout_tau_mem = l.tau_mem;
        }
    }
    config.network.hidden = hidden;
    config.network.tau_syn = lif.tau_syn;
    config.network.tau_mem = lif.tau_mem;
    config.network.leak = lif.leak;
    config.network.reset = lif.reset;
    config.network.threshold = lif.threshold;
    let engine = config.engine()?;
    engine.spec().check_weights(&weights)?;
    let epochs_done = match g.metadata.get("epochs_done") {
        Some(Meta::I64(e)) if *e >= 0 => *e as usize,
        _ => 0,
    };
    Ok(Trainer {
        adam: config.optim.adam()?,
        schedule: config.optim.schedule()?,
        engine,
        weights,
        epochs_done,
        history: Vec::new(),
        data: RunData::default(),
        init_report: Vec::new(),
        config,
    })
}

/// Writes the network of `trainer` to `path` as a NIR file (atomically).
///
/// # Errors
/// As [`to_graph`]; `Io` for the file.
pub fn save(trainer: &Trainer, path: &Path) -> Result<()> {
    Ok(to_graph(trainer)?.write(path)?)
}

/// Reads a NIR file into a network ready for evaluation ([`to_trainer`]).
///
/// # Errors
/// As [`Graph::read`] and [`to_trainer`].
pub fn load(path: &Path) -> Result<Trainer> {
    to_trainer(&Graph::read(path)?)
}

/// An `Unsupported` NIR error as this crate's error.
fn unsupported(node: &str, kind: &str, reason: impl std::fmt::Display) -> crate::Error {
    NirError::unsupported(node, kind, reason).into()
}

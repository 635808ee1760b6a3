//! A run's network as a NIR graph and back: the network itself is `eventprop-nir`'s
//! ([`network_graph`], [`network_from_graph`]); this module adds what describes the run
//! (engine, time grid, epochs, the whole config as JSON, so that an import evaluates
//! exactly as the checkpoint does) and builds an evaluation-ready [`Trainer`] from a graph.

use std::path::Path;

use eventprop_core::spec::Readout;
use eventprop_nir::graph::Meta;
use eventprop_nir::{network_from_graph, network_graph, Error as NirError, Graph, NirNetwork};

use crate::config::{EngineKind, Task, TrainConfig};
use crate::error::Result;
use crate::loss::LossKind;
use crate::trainer::{RunData, Trainer};
use eventprop_data::yinyang;

/// How each engine times a recurrent edge (metadata `recurrence` of a graph with
/// recurrent layers; NIR does not say when the output of a cycle's weight node arrives).
pub fn recurrence(engine: EngineKind) -> &'static str {
    match engine {
        EngineKind::Exact => "instantaneous: a spike of neuron m at time t adds r[n, m] to the synaptic current of neuron n at t",
        _ => "one step: a spike of step t enters the layer's synaptic current in step t + 1, as a spike of the layer below does",
    }
}

/// The NIR graph of a trained network (`eventprop_nir::network_graph`) with the run's
/// metadata: `engine`, for the stepped engine `dt` and `discretization` (NIR's dynamics
/// are continuous; these say how the network was trained and how `eventprop eval` runs
/// it), `t_sim` (the window), `recurrence` for recurrent networks ([`recurrence`]),
/// `epochs_done` and `eventprop_config`.
///
/// # Errors
/// As [`network_graph`] (networks with trained delays are refused), and
/// [`crate::Error::Invalid`] for a delay-line input (`events.delay_line > 1`).
pub fn to_graph(t: &Trainer) -> Result<Graph> {
    if t.config.events.delay_line > 1 {
        return Err(crate::Error::invalid(
            "events.delay_line",
            "1 for a NIR export (the delay-line input copies every input channel with fixed delays before the network; the graph would take the copies as its input, so another tool given the data's own channels would run another network)",
            t.config.events.delay_line,
        ));
    }
    let spec = t.engine.spec();
    let mut g = network_graph(spec, &t.weights)?;
    let c = &t.config;
    let m = &mut g.metadata;
    let s = |v: &str| Meta::Str(v.to_string());
    m.insert("engine".into(), s(c.engine.name()));
    if c.engine == EngineKind::Stepped {
        m.insert("dt".into(), Meta::F64(c.dt()));
        m.insert(
            "discretization".into(),
            s(match c.stepped.discretization {
                eventprop_core::Discretization::Seed => "seed",
                eventprop_core::Discretization::Corrected => "corrected",
            }),
        );
    }
    if spec.learn.recurrent {
        m.insert("recurrence".into(), s(recurrence(c.engine)));
    }
    m.insert("t_sim".into(), Meta::F64(c.t_sim()));
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
/// `engine` metadata (default stepped); the network (sizes, neuron parameters, recurrent
/// weights, what is trained) comes from the nodes. The task is the config's; a graph
/// without a config must be a Yin-Yang network (5 inputs, 3 outputs).
///
/// # Errors
/// [`network_from_graph`]'s; `Unsupported` naming the node for sizes that differ from the
/// config's task, or a graph without a config whose sizes are not Yin-Yang's; the
/// config's errors.
pub fn to_trainer(g: &Graph) -> Result<Trainer> {
    let (mut config, from_run) = match g.metadata.get("eventprop_config") {
        Some(Meta::Str(json)) => {
            let table: toml::Table = serde_json::from_str(json).map_err(|e| {
                NirError::unsupported(
                    "graph",
                    "NIRGraph",
                    format!("metadata `eventprop_config`: not a config ({e})"),
                )
            })?;
            (
                TrainConfig::layered(&[("NIR metadata `eventprop_config`", table)])?,
                true,
            )
        }
        _ => {
            let engine = match g.metadata.get("engine").and_then(Meta::as_str) {
                None => EngineKind::Stepped,
                Some(e) => e.parse().map_err(|e: String| {
                    NirError::unsupported("graph", "NIRGraph", format!("metadata `engine`: {e}"))
                })?,
            };
            (TrainConfig::preset(engine), false)
        }
    };
    let hint = from_run.then(|| config.network());
    let NirNetwork {
        spec,
        tensors,
        io_names: (in_name, out_name),
        ..
    } = network_from_graph(g, hint.as_ref())?;
    let yinyang_sizes = (yinyang::N_INPUTS, yinyang::N_CLASSES);
    if !from_run && (spec.n_in, spec.n_out) != yinyang_sizes {
        return Err(unsupported(
            "graph",
            "NIRGraph",
            format!("{} inputs and {} outputs without the metadata `eventprop_config`: `eventprop eval` runs such a graph only with its run's config (event data, window, grid), and Yin-Yang graphs have {} and {}; `train events --init-nir` starts a run from it", spec.n_in, spec.n_out, yinyang_sizes.0, yinyang_sizes.1),
        ));
    }
    match config.task {
        Task::Yinyang => {
            for (name, kind, n, want, what) in [
                (&in_name, "Input", spec.n_in, yinyang_sizes.0, "inputs"),
                (&out_name, "Output", spec.n_out, yinyang_sizes.1, "outputs"),
            ] {
                if n != want {
                    return Err(unsupported(
                        name,
                        kind,
                        format!(
                            "{n} {what}; the graph's config is a Yin-Yang run (expected {want})"
                        ),
                    ));
                }
            }
        }
        Task::Events => {
            for (name, kind, n, key, have) in [
                (
                    &in_name,
                    "Input",
                    spec.n_in,
                    "events.channels",
                    &mut config.events.channels,
                ),
                (
                    &out_name,
                    "Output",
                    spec.n_out,
                    "events.classes",
                    &mut config.events.classes,
                ),
            ] {
                match *have {
                    Some(c) if from_run && c != n => {
                        return Err(unsupported(
                            name,
                            kind,
                            format!("{n} neurons; the graph's config says {key} = {c}"),
                        ))
                    }
                    _ => *have = Some(n),
                }
            }
        }
    }
    match spec.readout {
        Readout::Integrator { tau_syn, tau_mem } => {
            if matches!(config.loss, LossKind::FirstSpike { .. }) {
                config.loss = LossKind::defaults("max_over_time", config.engine)?;
            }
            config.network.readout_tau_syn = tau_syn;
            config.network.readout_tau_mem = tau_mem;
        }
        Readout::Spiking(l) => {
            if !matches!(config.loss, LossKind::FirstSpike { .. }) {
                config.loss = LossKind::defaults("first_spike", config.engine)?;
            }
            config.network.readout_tau_syn = l.tau_syn;
            config.network.readout_tau_mem = l.tau_mem;
        }
    }
    let lif = spec.lif;
    config.network.hidden = spec.hidden.clone();
    config.network.tau_syn = lif.tau_syn;
    config.network.tau_mem = lif.tau_mem;
    config.network.leak = lif.leak;
    config.network.reset = lif.reset;
    config.network.threshold = lif.threshold;
    config.learn = spec.learn;
    let engine = config.engine()?;
    if *engine.spec() != spec {
        return Err(unsupported(
            "graph",
            "NIRGraph",
            format!(
                "the network {spec:?} cannot be configured (the config gives {:?})",
                engine.spec()
            ),
        ));
    }
    engine.spec().check_weights(&tensors)?;
    let epochs_done = match g.metadata.get("epochs_done") {
        Some(Meta::I64(e)) if *e >= 0 => *e as usize,
        _ => 0,
    };
    Ok(Trainer {
        adam: config.optim.adam()?,
        schedule: config.optim.schedule()?,
        engine,
        weights: tensors,
        epochs_done,
        history: Vec::new(),
        data: RunData::default(),
        init_report: Vec::new(),
        epochs_report: None,
        processes: 1,
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

/// Reads the network of the NIR file at `path` with `expected` as the hint of
/// [`network_from_graph`] (what `expected` trains is trained, its nominal parameters kept);
/// the caller compares the network with `expected` (`--init-nir`).
///
/// # Errors
/// As [`Graph::read`] and [`network_from_graph`].
pub fn read_network(
    path: &Path,
    expected: &eventprop_core::spec::NetworkSpec,
) -> Result<NirNetwork> {
    Ok(network_from_graph(&Graph::read(path)?, Some(expected))?)
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

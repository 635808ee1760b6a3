//! A trained network ([`Trainer`]) to a NIR [`Graph`] and back.
//!
//! # Conventions (also stated in every exported graph's metadata)
//!
//! Our model (SPEC §4): `τ_mem dV/dt = (leak − V) + I`, `τ_syn dI/dt = −I`, a presynaptic
//! spike of `j` adds `W[n, j]` to `I_n`. NIR's `CubaLIF`: `τ_syn dI/dt = −I + w_in·S`,
//! `τ_mem dv/dt = (v_leak − v) + r·I` with `S` the output of the weight node, a sum of Dirac
//! deltas weighted by `W`, so a spike raises `I` by `w_in·W/τ_syn`. Hence the export writes
//!
//! * times in **seconds** (`tau_syn`, `tau_mem`; metadata `time_unit = "s"`);
//! * `r = 1`, `w_in = τ_syn` (so `w_in·W/τ_syn = W`: the weight node holds the trained
//!   weights unchanged), `v_leak = leak`, `v_threshold = threshold`, `v_reset = reset`
//!   (reset to a value, not subtractive; spike when `v > v_threshold`, as NIR says);
//! * weights as `Linear` nodes (no bias), the leaky-integrator readout as `CubaLI` with
//!   `v_leak = leak`, a spiking readout as `CubaLIF`;
//! * metadata: `format`, `time_unit`, `engine`, for the stepped engine `dt` and
//!   `discretization` (NIR's dynamics are continuous; these say how the network was
//!   trained and how `eventprop eval` runs it), `t_sim`, `conventions`, `epochs_done` and
//!   `eventprop_config` (the run's whole config as JSON, so an import evaluates exactly as
//!   the checkpoint does).
//!
//! The import accepts any `r` and `w_in`: since `I` enters `v` only through `r·I` and
//! both equations are linear, a spike's effect on `v` is that of a jump of
//! `r·w_in·W/τ_syn` in our `I`, so row `n` of the incoming weight is multiplied by
//! `r_n·w_in_n/τ_syn_n` (skipped when that is exactly 1, as for our own files, so weights
//! round-trip bit for bit). Per-neuron parameters must be equal within a layer, and all
//! hidden layers must share one set (the project's `NetworkSpec` has one `Lif`).

use std::collections::{BTreeMap, BTreeSet};

use eventprop_train::data::SpikeSet;
use eventprop_train::engine::{self, EngineKind};
use eventprop_train::loss::LossKind;
use eventprop_train::model::Readout;
use eventprop_train::optim::{Adam, StepLr};
use eventprop_train::trainer::RunData;
use eventprop_train::{yinyang, Lif, TrainConfig, Trainer};
use ndarray::{Array1, Array2};

use crate::error::{Error, Result};
use crate::graph::{CubaLi, CubaLif, Graph, Meta, Node};

/// `format` metadata of the graphs written here.
pub const FORMAT: &str = "eventprop-nir/1";

/// The conventions line written into each graph's metadata.
pub const CONVENTIONS: &str = "times in seconds; r = 1 and w_in = tau_syn, so an input spike through a weight W raises the synaptic current I by W (tau_mem dv/dt = (v_leak - v) + I); reset to v_reset (not subtractive); spike when v > v_threshold; readout CubaLI starts at v_leak; dt and discretization describe eventprop's time-stepped engine, the dynamics are continuous";

fn layer(n: usize, v: f64) -> Array1<f64> {
    Array1::from_elem(n, v)
}

fn cuba_lif(n: usize, l: &Lif) -> Node {
    Node::CubaLif(CubaLif {
        tau_syn: layer(n, l.tau_syn),
        tau_mem: layer(n, l.tau_mem),
        r: layer(n, 1.0),
        v_leak: layer(n, l.leak),
        v_threshold: layer(n, l.threshold),
        v_reset: layer(n, l.reset),
        w_in: layer(n, l.tau_syn),
    })
}

/// The NIR graph of a trained network: `input → linear0 → lif0 → … → linearL → readout →
/// output` (see the module docs for units and metadata).
pub fn to_graph(t: &Trainer) -> Graph {
    let spec = t.engine.spec();
    let mut g = Graph::default();
    let mut chain = vec!["input".to_string()];
    g.nodes.insert(
        "input".into(),
        Node::Input {
            shape: vec![spec.n_in as i64],
        },
    );
    // The feed-forward weights ([`eventprop_nir::save`] refuses networks with more).
    let n_ff = spec.layout().n_ff;
    let last = n_ff - 1;
    for (k, w) in t.weights[..n_ff].iter().enumerate() {
        let lin = format!("linear{k}");
        g.nodes
            .insert(lin.clone(), Node::Linear { weight: w.clone() });
        chain.push(lin);
        let n = w.nrows();
        let (name, node) = if k < last {
            (format!("lif{k}"), cuba_lif(n, &spec.lif))
        } else {
            let node = match spec.readout {
                Readout::Integrator { tau_syn, tau_mem } => Node::CubaLi(CubaLi {
                    tau_syn: layer(n, tau_syn),
                    tau_mem: layer(n, tau_mem),
                    r: layer(n, 1.0),
                    v_leak: layer(n, spec.lif.leak),
                    w_in: layer(n, tau_syn),
                }),
                Readout::Spiking(l) => cuba_lif(n, &l),
            };
            ("readout".to_string(), node)
        };
        g.nodes.insert(name.clone(), node);
        chain.push(name);
    }
    g.nodes.insert(
        "output".into(),
        Node::Output {
            shape: vec![spec.n_out as i64],
        },
    );
    chain.push("output".into());
    g.edges = chain
        .windows(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect();
    let c = &t.config;
    let m = &mut g.metadata;
    let s = |v: &str| Meta::Str(v.to_string());
    m.insert("format".into(), s(FORMAT));
    m.insert("time_unit".into(), s("s"));
    m.insert("engine".into(), s(c.engine.name()));
    if c.engine == EngineKind::Stepped {
        m.insert("dt".into(), Meta::F64(c.encoding.dt));
        m.insert(
            "discretization".into(),
            s(match c.discretization {
                eventprop_core::Discretization::Seed => "seed",
                eventprop_core::Discretization::Corrected => "corrected",
            }),
        );
    }
    m.insert("t_sim".into(), Meta::F64(c.encoding.t_sim));
    m.insert("conventions".into(), s(CONVENTIONS));
    m.insert("epochs_done".into(), Meta::I64(t.epochs_done as i64));
    m.insert(
        "eventprop_config".into(),
        Meta::Str(
            serde_json::to_string(&toml::Table::try_from(c).expect("the config serialises"))
                .expect("a TOML table serialises to JSON"),
        ),
    );
    m.insert(
        "source".into(),
        s(concat!("eventprop ", env!("CARGO_PKG_VERSION"))),
    );
    g
}

/// The one value of a per-neuron parameter (all entries equal), or an error naming the node.
fn uniform(node: &str, kind: &str, param: &str, a: &Array1<f64>, n: usize) -> Result<f64> {
    if a.len() != n && a.len() != 1 {
        return Err(Error::unsupported(
            node,
            kind,
            format!(
                "`{param}` has {} values, expected {n} (one per neuron)",
                a.len()
            ),
        ));
    }
    let first = a[0];
    if !first.is_finite() {
        return Err(Error::unsupported(
            node,
            kind,
            format!("`{param}` is {first}, expected a finite value"),
        ));
    }
    if let Some((i, v)) = a.iter().enumerate().find(|(_, v)| **v != first) {
        return Err(Error::unsupported(
            node,
            kind,
            format!("`{param}` differs between neurons ({first} at 0, {v} at {i}); eventprop needs one value per layer"),
        ));
    }
    Ok(first)
}

/// Scales row `n` of `w` by `r_n·w_in_n/τ_syn_n` (the current-scaling convention of the
/// target node; see the module docs), unless that factor is exactly 1 everywhere.
fn fold(w: &mut Array2<f64>, r: &Array1<f64>, w_in: &Array1<f64>, tau_syn: f64) {
    let at = |a: &Array1<f64>, i: usize| if a.len() == 1 { a[0] } else { a[i] };
    for (i, mut row) in w.rows_mut().into_iter().enumerate() {
        let f = at(r, i) * at(w_in, i) / tau_syn;
        if f != 1.0 {
            row.mapv_inplace(|x| x * f);
        }
    }
}

/// The node names from the `Input` node to the `Output` node, or an error naming the
/// node where the graph is not one chain.
fn chain(g: &Graph) -> Result<Vec<String>> {
    let inputs: Vec<&String> = g
        .nodes
        .iter()
        .filter(|(_, n)| matches!(n, Node::Input { .. }))
        .map(|(k, _)| k)
        .collect();
    if inputs.len() != 1 {
        return Err(Error::unsupported(
            "graph",
            "NIRGraph",
            format!("expected one Input node, got {}", inputs.len()),
        ));
    }
    for (a, b) in &g.edges {
        for end in [a, b] {
            if !g.nodes.contains_key(end) {
                return Err(Error::unsupported(
                    end,
                    "missing",
                    format!("edge ({a}, {b}) names a node that is not in the graph"),
                ));
            }
        }
    }
    let mut out: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut indeg: BTreeMap<&str, usize> = BTreeMap::new();
    for (a, b) in &g.edges {
        out.entry(a).or_default().push(b);
        *indeg.entry(b).or_default() += 1;
    }
    let mut names = vec![inputs[0].clone()];
    let mut seen = BTreeSet::from([inputs[0].as_str()]);
    let mut cur = inputs[0].as_str();
    loop {
        let node = &g.nodes[cur];
        if matches!(node, Node::Output { .. }) {
            break;
        }
        let next = out.get(cur).map(Vec::as_slice).unwrap_or(&[]);
        let nxt = match next {
            [one] => *one,
            [] => {
                return Err(Error::unsupported(
                    cur,
                    node.kind(),
                    "no outgoing edge before an Output node",
                ))
            }
            _ => {
                return Err(Error::unsupported(
                    cur,
                    node.kind(),
                    format!(
                        "{} outgoing edges; only feed-forward chains are supported (no branches or recurrent edges)",
                        next.len()
                    ),
                ))
            }
        };
        let incoming = indeg.get(nxt).copied().unwrap_or(0);
        if !seen.insert(nxt) || incoming > 1 {
            return Err(Error::unsupported(
                nxt,
                g.nodes[nxt].kind(),
                format!("{incoming} incoming edges; only feed-forward chains are supported (no recurrent or merging edges)"),
            ));
        }
        names.push(nxt.to_string());
        cur = nxt;
    }
    if let Some(extra) = g.nodes.keys().find(|k| !seen.contains(k.as_str())) {
        return Err(Error::unsupported(
            extra,
            g.nodes[extra].kind(),
            "not on the path from the Input to the Output node",
        ));
    }
    Ok(names)
}

/// The weight matrix of a weight node (`Linear`, or `Affine` with a zero bias).
fn weight_of(name: &str, node: &Node) -> Result<Array2<f64>> {
    match node {
        Node::Linear { weight } => Ok(weight.clone()),
        Node::Affine { weight, bias } => {
            if let Some((i, b)) = bias.iter().enumerate().find(|(_, b)| **b != 0.0) {
                return Err(Error::unsupported(
                    name,
                    "Affine",
                    format!("bias {b} at {i}; eventprop networks have no bias (expected 0)"),
                ));
            }
            Ok(weight.clone())
        }
        other => Err(Error::unsupported(
            name,
            other.kind(),
            "expected a weight node (Linear or Affine) here; supported chain: Input, (Linear|Affine, CubaLIF)*, Linear|Affine, CubaLI|CubaLIF, Output",
        )),
    }
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
/// [`Error::Unsupported`] naming the node for anything but a chain `Input, (Linear|Affine,
/// CubaLIF)*, Linear|Affine, CubaLI|CubaLIF, Output`, per-neuron parameters that differ,
/// hidden layers with different parameters, a readout whose `v_leak` (or threshold/reset)
/// differs from the hidden layers', a non-zero bias, or sizes other than 5 → … → 3;
/// [`Error::Train`] for an invalid config.
pub fn to_trainer(g: &Graph) -> Result<Trainer> {
    let names = chain(g)?;
    // names: input, (w, lif)*, w, readout, output
    let body = &names[1..names.len() - 1];
    if body.len() < 2 || body.len() % 2 != 0 {
        return Err(Error::unsupported(
            "graph",
            "NIRGraph",
            format!("expected a chain Input, (Linear|Affine, CubaLIF)*, Linear|Affine, CubaLI|CubaLIF, Output; got {}", names.join(" → ")),
        ));
    }
    let mut weights = Vec::new();
    let mut hidden = Vec::new();
    let mut hidden_lif: Option<(String, Lif)> = None;
    let mut readout = None;
    let layers = body.len() / 2;
    let mut n_prev = None::<usize>;
    for k in 0..layers {
        let (wn, nn) = (&body[2 * k], &body[2 * k + 1]);
        let mut w = weight_of(wn, &g.nodes[wn])?;
        if let Some(p) = n_prev {
            if w.ncols() != p {
                return Err(Error::unsupported(
                    wn,
                    g.nodes[wn].kind(),
                    format!(
                        "weight has {} columns, expected {p} (the previous layer's size)",
                        w.ncols()
                    ),
                ));
            }
        }
        if w.iter().any(|v| !v.is_finite()) {
            return Err(Error::unsupported(
                wn,
                g.nodes[wn].kind(),
                "non-finite weight",
            ));
        }
        let n = w.nrows();
        let node = &g.nodes[nn];
        let kind = node.kind().to_string();
        let last = k + 1 == layers;
        let u = |param: &str, a: &Array1<f64>| uniform(nn, &kind, param, a, n);
        match node {
            Node::CubaLif(p) => {
                let tau_syn = u("tau_syn", &p.tau_syn)?;
                let l = Lif {
                    leak: u("v_leak", &p.v_leak)?,
                    reset: u("v_reset", &p.v_reset)?,
                    threshold: u("v_threshold", &p.v_threshold)?,
                    tau_syn,
                    tau_mem: u("tau_mem", &p.tau_mem)?,
                };
                for (param, a) in [("r", &p.r), ("w_in", &p.w_in)] {
                    if a.len() != n && a.len() != 1 {
                        return Err(Error::unsupported(
                            nn,
                            &kind,
                            format!("`{param}` has {} values, expected {n}", a.len()),
                        ));
                    }
                }
                fold(&mut w, &p.r, &p.w_in, tau_syn);
                if last {
                    readout = Some((nn.clone(), Readout::Spiking(l)));
                } else {
                    match &hidden_lif {
                        Some((first, h)) if *h != l => {
                            return Err(Error::unsupported(
                                nn,
                                &kind,
                                format!("parameters {l:?} differ from those of `{first}` ({h:?}); eventprop hidden layers share one parameter set"),
                            ))
                        }
                        Some(_) => {}
                        None => hidden_lif = Some((nn.clone(), l)),
                    }
                    hidden.push(n);
                }
            }
            Node::CubaLi(p) if last => {
                let tau_syn = u("tau_syn", &p.tau_syn)?;
                let tau_mem = u("tau_mem", &p.tau_mem)?;
                let v_leak = u("v_leak", &p.v_leak)?;
                for (param, a) in [("r", &p.r), ("w_in", &p.w_in)] {
                    if a.len() != n && a.len() != 1 {
                        return Err(Error::unsupported(
                            nn,
                            &kind,
                            format!("`{param}` has {} values, expected {n}", a.len()),
                        ));
                    }
                }
                fold(&mut w, &p.r, &p.w_in, tau_syn);
                readout = Some((nn.clone(), Readout::Integrator { tau_syn, tau_mem }));
                // The integrator rests at the hidden layers' leak; checked below.
                if let Some((_, h)) = &hidden_lif {
                    if h.leak != v_leak {
                        return Err(Error::unsupported(nn, &kind, format!("v_leak {v_leak} differs from the hidden layers' {}; eventprop's readout rests at the hidden leak", h.leak)));
                    }
                }
            }
            other => {
                return Err(Error::unsupported(
                    nn,
                    other.kind(),
                    if last {
                        "expected CubaLI or CubaLIF as the output layer (LI, LIF, IF and other neuron types are not supported)"
                    } else {
                        "expected a CubaLIF hidden layer (LIF, IF, CubaLI and other neuron types are not supported)"
                    },
                ))
            }
        }
        n_prev = Some(n);
        weights.push(w);
    }
    let (in_name, out_name) = (&names[0], &names[names.len() - 1]);
    let n_in = weights[0].ncols();
    let n_out = weights.last().expect("one layer").nrows();
    if n_in != yinyang::N_INPUTS {
        return Err(Error::unsupported(
            in_name,
            "Input",
            format!(
                "{n_in} inputs; `eventprop eval` runs Yin-Yang networks (expected {})",
                yinyang::N_INPUTS
            ),
        ));
    }
    if n_out != yinyang::N_CLASSES {
        return Err(Error::unsupported(
            out_name,
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
                Error::unsupported(
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
                    Error::unsupported("graph", "NIRGraph", format!("metadata `engine`: {e}"))
                })?,
            };
            TrainConfig::preset(engine)
        }
    };
    let (readout_name, readout) = readout.expect("the last layer sets the readout");
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
            config.readout_tau_syn = tau_syn;
            config.readout_tau_mem = tau_mem;
        }
        Readout::Spiking(l) => {
            let shared = Lif {
                tau_syn: lif.tau_syn,
                tau_mem: lif.tau_mem,
                ..l
            };
            if shared != lif {
                return Err(Error::unsupported(&readout_name, "CubaLIF", format!("leak/threshold/reset ({}, {}, {}) differ from the hidden layers' ({}, {}, {}); eventprop's spiking readout shares them", l.leak, l.threshold, l.reset, lif.leak, lif.threshold, lif.reset)));
            }
            if !matches!(config.loss, LossKind::FirstSpike { .. }) {
                config.loss = LossKind::defaults("first_spike", config.engine)?;
            }
            config.readout_tau_syn = l.tau_syn;
            config.readout_tau_mem = l.tau_mem;
        }
    }
    config.hidden = hidden;
    config.tau_syn = lif.tau_syn;
    config.tau_mem = lif.tau_mem;
    config.leak = lif.leak;
    config.reset = lif.reset;
    config.threshold = lif.threshold;
    config.validate()?;
    let engine = engine::build(&config)?;
    engine.spec().check_weights(&weights)?;
    let epochs_done = match g.metadata.get("epochs_done") {
        Some(Meta::I64(e)) if *e >= 0 => *e as usize,
        _ => 0,
    };
    Ok(Trainer {
        adam: Adam::new(config.lr, config.beta1, config.beta2, config.eps)?,
        schedule: StepLr::new(config.lr, config.lr_step, config.lr_gamma)?,
        engine,
        weights,
        epochs_done,
        history: Vec::new(),
        data: RunData {
            train: SpikeSet::default(),
            validation: SpikeSet::default(),
            test: SpikeSet::default(),
        },
        config,
    })
}

//! A network description and its weights to a NIR [`Graph`] ([`network_graph`]) and back
//! ([`network_from_graph`]).
//!
//! # Conventions (also stated in every exported graph's metadata)
//!
//! Our model (docs/spec.md §4): `τ_mem dV/dt = (leak − V) + I`, `τ_syn dI/dt = −I`, a presynaptic
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

use eventprop_core::spec::{NetworkSpec, Readout};
use eventprop_core::Lif;
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

/// The NIR graph of a network: `input → linear0 → lif0 → … → linearL → readout → output`
/// (see the module docs for units), with the `format`, `time_unit`, `conventions` and
/// `source` metadata; the caller adds what describes the run (engine, grid, config).
///
/// # Errors
/// [`Error::Unsupported`] for a network with trained recurrent weights, delays, time
/// constants or thresholds (`[learn]`; not exported yet), or weights that do not have the
/// network's shapes.
pub fn network_graph(spec: &NetworkSpec, weights: &[Array2<f64>]) -> Result<Graph> {
    let learn = spec.learn;
    if learn.any() {
        return Err(Error::Unsupported {
            node: "graph".into(),
            kind: "export".into(),
            reason: format!(
                "expected a feed-forward network with shared neuron parameters, got [learn] \
                 {learn:?} (recurrent weights, delays and per-neuron parameters are not \
                 exported yet)"
            ),
        });
    }
    if let Err(e) = spec.check_weights(weights) {
        return Err(Error::unsupported("graph", "export", e));
    }
    let mut g = Graph::default();
    let mut chain = vec!["input".to_string()];
    g.nodes.insert(
        "input".into(),
        Node::Input {
            shape: vec![spec.n_in as i64],
        },
    );
    // The feed-forward weights (networks with more are refused above).
    let n_ff = spec.layout().n_ff;
    let last = n_ff - 1;
    for (k, w) in weights[..n_ff].iter().enumerate() {
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
    let m = &mut g.metadata;
    let s = |v: &str| Meta::Str(v.to_string());
    m.insert("format".into(), s(FORMAT));
    m.insert("time_unit".into(), s("s"));
    m.insert("conventions".into(), s(CONVENTIONS));
    m.insert(
        "source".into(),
        s(concat!("eventprop ", env!("CARGO_PKG_VERSION"))),
    );
    Ok(g)
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

/// A network read from a NIR graph ([`network_from_graph`]): the weights (with `r` and
/// `w_in` folded in), the hidden sizes, the shared hidden parameters and the readout.
#[derive(Debug, Clone, PartialEq)]
pub struct NirNetwork {
    /// Weight matrices `(N_k, N_{k-1})`, input first.
    pub weights: Vec<Array2<f64>>,
    /// Hidden layer sizes.
    pub hidden: Vec<usize>,
    /// The hidden layers' shared parameters and the first hidden node's name (none
    /// without hidden layers).
    pub hidden_lif: Option<(String, Lif)>,
    /// The output layer and its node's name.
    pub readout: (String, Readout),
    /// The names of the input and output nodes.
    pub io_names: (String, String),
}

/// Reads the network of a chain `Input, (Linear|Affine, CubaLIF)*, Linear|Affine,
/// CubaLI|CubaLIF, Output`.
///
/// # Errors
/// [`Error::Unsupported`] naming the node for anything else, per-neuron parameters that
/// differ, hidden layers with different parameters, a readout whose `v_leak` differs from
/// the hidden layers', a non-zero bias, non-finite weights or mismatched sizes.
pub fn network_from_graph(g: &Graph) -> Result<NirNetwork> {
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
    let (in_name, out_name) = (names[0].clone(), names[names.len() - 1].clone());
    Ok(NirNetwork {
        weights,
        hidden,
        hidden_lif,
        readout: readout.expect("the last layer sets the readout"),
        io_names: (in_name, out_name),
    })
}

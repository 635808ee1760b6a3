//! A network description and its tensors to a NIR [`Graph`] ([`network_graph`]) and back
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
//! * `r = 1`, `w_in = τ_syn` per neuron (so `w_in·W/τ_syn = W`: the weight node holds the
//!   trained weights unchanged), `v_leak = leak`, `v_threshold = threshold`,
//!   `v_reset = reset` (reset to a value, not subtractive; spike when `v > v_threshold`, as
//!   NIR says);
//! * weights as `Linear` nodes (no bias), the leaky-integrator readout as `CubaLI` with
//!   `v_leak = leak`, a spiking readout as `CubaLIF`;
//! * every parameter per neuron: trained time constants (`[learn] taus`, held as `ln τ`)
//!   as `e^{ln τ}`, trained thresholds (`[learn] threshold`, held as `s`) as
//!   `max(leak, reset) + e^s` ([`NetworkSpec::neuron_params`]);
//! * recurrent weights `r` of hidden layer `k` (`[learn] recurrent`, `(H, H)`, row = target)
//!   as a `Linear` node `rec{k}` on a cycle `lif{k} → rec{k} → lif{k}`: its output enters
//!   `lif{k}` like the feed-forward input (same `w_in`). The timing of that edge is the
//!   engine's (the caller states it in the metadata `recurrence`);
//! * no delays: trained delays (`[learn] delays`) are one per synapse, `(N_out, N_in)` per
//!   weight matrix, while NIR's `Delay` node delays each of its channels by one value; the
//!   exact equivalent would route every synapse through a channel of its own (`N_in·N_out`
//!   delay channels and an `(N_out, N_in·N_out)` weight per layer, 179,200 channels and
//!   46 M weights for a 700-256 layer), so such networks are refused;
//! * metadata: `format`, `time_unit`, `engine`, for the stepped engine `dt` and
//!   `discretization` (NIR's dynamics are continuous; these say how the network was
//!   trained and how `eventprop eval` runs it), `t_sim`, `conventions`, `epochs_done` and
//!   `eventprop_config` (the run's whole config as JSON, so an import evaluates exactly as
//!   the checkpoint does).
//!
//! The import accepts any `r` and `w_in`: since `I` enters `v` only through `r·I` and
//! both equations are linear, a spike's effect on `v` is that of a jump of
//! `r·w_in·W/τ_syn` in our `I`, so row `n` of every weight into a layer (feed-forward and
//! recurrent) is multiplied by `r_n·w_in_n/τ_syn_n` (skipped when that is exactly 1, as for
//! our own files, so weights round-trip bit for bit). Leak and reset are one value for the
//! whole network (eventprop's layers share them); time constants and thresholds that differ
//! between neurons or hidden layers become trained per-neuron parameters, whose tensors are
//! chosen so that `e^{ln τ}` and `max(leak, reset) + e^s` give back the file's values
//! exactly ([`ln_exact`]).

use std::collections::{BTreeMap, BTreeSet};

use eventprop_core::model::NeuronParams;
use eventprop_core::spec::{Learn, NetworkSpec, Readout};
use eventprop_core::Lif;
use ndarray::{Array1, Array2};

use crate::error::{Error, Result};
use crate::graph::{CubaLi, CubaLif, Graph, Meta, Node};

/// `format` metadata of the graphs written here.
pub const FORMAT: &str = "eventprop-nir/1";

/// The conventions line written into each graph's metadata.
pub const CONVENTIONS: &str = "times in seconds; r = 1 and w_in = tau_syn, so an input spike through a weight W raises the synaptic current I by W (tau_mem dv/dt = (v_leak - v) + I); reset to v_reset (not subtractive); spike when v > v_threshold; readout CubaLI starts at v_leak; dt and discretization describe eventprop's time-stepped engine, the dynamics are continuous";

/// The reason trained delays are not exported (one line; the Python exporter says the same).
pub const DELAYS_REFUSED: &str = "trained delays are not exported: eventprop has one delay per synapse ((N_out, N_in) per weight matrix) and NIR's Delay node one per channel, so the exact graph would need N_in*N_out delay channels and an (N_out, N_in*N_out) weight per layer";

fn layer(n: usize, v: f64) -> Array1<f64> {
    Array1::from_elem(n, v)
}

fn cuba_lif(p: &NeuronParams) -> Node {
    let a = |v: &Vec<f64>| Array1::from(v.clone());
    Node::CubaLif(CubaLif {
        tau_syn: a(&p.tau_syn),
        tau_mem: a(&p.tau_mem),
        r: layer(p.len(), 1.0),
        v_leak: a(&p.leak),
        v_threshold: a(&p.threshold),
        v_reset: a(&p.reset),
        w_in: a(&p.tau_syn),
    })
}

/// The NIR graph of a network: `input → linear0 → lif0 → … → linearL → readout → output`,
/// with a cycle `lif{k} → rec{k} → lif{k}` per hidden layer when it is recurrent (see the
/// module docs for units), and the `format`, `time_unit`, `conventions` and `source`
/// metadata; the caller adds what describes the run (engine, grid, recurrence timing,
/// config). `tensors` are all the network's tensors ([`NetworkSpec::tensor_shapes`]).
///
/// # Errors
/// [`Error::Unsupported`] for a network with trained delays ([`DELAYS_REFUSED`]), or
/// tensors that do not have the network's shapes or are not finite.
pub fn network_graph(spec: &NetworkSpec, tensors: &[Array2<f64>]) -> Result<Graph> {
    if spec.learn.delays {
        return Err(Error::unsupported("graph", "export", DELAYS_REFUSED));
    }
    if let Err(e) = spec.check_weights(tensors) {
        return Err(Error::unsupported("graph", "export", e));
    }
    let layout = spec.layout();
    let params = spec.neuron_params(tensors);
    let mut g = Graph::default();
    let mut chain = vec!["input".to_string()];
    let mut loops = Vec::new();
    g.nodes.insert(
        "input".into(),
        Node::Input {
            shape: vec![spec.n_in as i64],
        },
    );
    let last = layout.n_ff - 1;
    for (k, w) in tensors[..layout.n_ff].iter().enumerate() {
        let lin = format!("linear{k}");
        g.nodes
            .insert(lin.clone(), Node::Linear { weight: w.clone() });
        chain.push(lin);
        let n = w.nrows();
        let (name, node) = if k < last {
            let name = format!("lif{k}");
            if let Some(r) = layout.recurrent {
                let rec = format!("rec{k}");
                g.nodes.insert(
                    rec.clone(),
                    Node::Linear {
                        weight: tensors[r + k].clone(),
                    },
                );
                loops.push((name.clone(), rec.clone()));
                loops.push((rec, name.clone()));
            }
            (name, cuba_lif(&params[k]))
        } else {
            let node = match spec.readout {
                Readout::Integrator { tau_syn, tau_mem } => Node::CubaLi(CubaLi {
                    tau_syn: layer(n, tau_syn),
                    tau_mem: layer(n, tau_mem),
                    r: layer(n, 1.0),
                    v_leak: layer(n, spec.lif.leak),
                    w_in: layer(n, tau_syn),
                }),
                Readout::Spiking(_) => cuba_lif(&params[k]),
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
        .chain(loops)
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

/// A per-neuron parameter of `n` neurons (one value is broadcast), checked finite (and
/// `> 0` when `positive`), or an error naming the node and the field.
fn per_neuron(
    node: &str,
    kind: &str,
    param: &str,
    a: &Array1<f64>,
    n: usize,
    positive: bool,
) -> Result<Vec<f64>> {
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
    if let Some((i, v)) = a
        .iter()
        .enumerate()
        .find(|(_, v)| !v.is_finite() || positive && **v <= 0.0)
    {
        let want = if positive {
            "a finite value > 0"
        } else {
            "a finite value"
        };
        return Err(Error::unsupported(
            node,
            kind,
            format!("`{param}` is {v} at {i}, expected {want}"),
        ));
    }
    Ok(if a.len() == n {
        a.to_vec()
    } else {
        vec![a[0]; n]
    })
}

/// The one value of a parameter (all entries equal), or an error naming the node.
fn uniform(node: &str, kind: &str, param: &str, a: &[f64]) -> Result<f64> {
    let first = a[0];
    if let Some((i, v)) = a.iter().enumerate().find(|(_, v)| **v != first) {
        return Err(Error::unsupported(
            node,
            kind,
            format!("`{param}` differs between neurons ({first} at 0, {v} at {i}); eventprop needs one value per layer here"),
        ));
    }
    Ok(first)
}

/// Whether every entry equals the first.
fn all_equal(a: &[f64]) -> bool {
    a.iter().all(|v| *v == a[0])
}

/// Scales row `n` of `w` by `r_n·w_in_n/τ_syn_n` (the current-scaling convention of the
/// target node; see the module docs), where that factor is not exactly 1.
fn fold(w: &mut Array2<f64>, r: &[f64], w_in: &[f64], tau_syn: &[f64]) {
    for (i, mut row) in w.rows_mut().into_iter().enumerate() {
        let f = r[i] * w_in[i] / tau_syn[i];
        if f != 1.0 {
            row.mapv_inplace(|x| x * f);
        }
    }
}

/// `ln x`, nudged by a few ulps where that makes `e^v` give `x` back exactly (the stored
/// parameter of a trained time constant is `ln τ` and the engines use `e^{ln τ}`; `ln` and
/// `exp` round, so `e^{ln τ}` can miss `τ` by an ulp). Without such a value, `ln x`.
pub fn ln_exact(x: f64) -> f64 {
    inverse_exact(x.ln(), |v| v.exp() == x)
}

/// The parameter `s` of a trained threshold, `threshold = floor + e^s`, chosen as
/// [`ln_exact`] does so that the threshold comes back exactly where one exists.
fn threshold_param(threshold: f64, floor: f64) -> f64 {
    inverse_exact((threshold - floor).ln(), |s| floor + s.exp() == threshold)
}

fn inverse_exact(v: f64, ok: impl Fn(f64) -> bool) -> f64 {
    if !v.is_finite() || ok(v) {
        return v;
    }
    let bits = v.to_bits();
    (1..=8u64)
        .flat_map(|d| [bits.wrapping_add(d), bits.wrapping_sub(d)])
        .map(f64::from_bits)
        .find(|c| c.is_finite() && c.signum() == v.signum() && ok(*c))
        .unwrap_or(v)
}

/// The name of the weight node on a cycle `lif → w → lif` for each neuron node that has
/// one (`w` a `Linear`/`Affine` whose only input and only output is that node), and the
/// graph without those nodes and edges.
fn split_loops(g: &Graph) -> (BTreeMap<String, String>, Graph) {
    let mut ins: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut outs: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in &g.edges {
        outs.entry(a).or_default().push(b);
        ins.entry(b).or_default().push(a);
    }
    let mut loops = BTreeMap::new();
    for (name, node) in &g.nodes {
        if !matches!(node, Node::Linear { .. } | Node::Affine { .. }) {
            continue;
        }
        let (i, o) = (
            ins.get(name.as_str()).map(Vec::as_slice).unwrap_or(&[]),
            outs.get(name.as_str()).map(Vec::as_slice).unwrap_or(&[]),
        );
        if let ([a], [b]) = (i, o) {
            let neurons = matches!(g.nodes.get(*a), Some(Node::CubaLif(_) | Node::CubaLi(_)));
            if a == b && *a != name && neurons {
                loops.insert(a.to_string(), name.clone());
            }
        }
    }
    let weights: BTreeSet<&String> = loops.values().collect();
    let rest = Graph {
        nodes: g
            .nodes
            .iter()
            .filter(|(k, _)| !weights.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        edges: g
            .edges
            .iter()
            .filter(|(a, b)| !weights.contains(a) && !weights.contains(b))
            .cloned()
            .collect(),
        metadata: BTreeMap::new(),
    };
    (loops, rest)
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
                        "{} outgoing edges; supported are chains whose CubaLIF layers may have one recurrent cycle through a weight node (no other branches)",
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
                format!("{incoming} incoming edges; supported are chains whose CubaLIF layers may have one recurrent cycle through a weight node (no other merging edges)"),
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

/// The weight matrix of a weight node (`Linear`, or `Affine` with a zero bias), checked
/// finite.
fn weight_of(name: &str, node: &Node) -> Result<Array2<f64>> {
    let w = match node {
        Node::Linear { weight } => weight,
        Node::Affine { weight, bias } => {
            if let Some((i, b)) = bias.iter().enumerate().find(|(_, b)| **b != 0.0) {
                return Err(Error::unsupported(
                    name,
                    "Affine",
                    format!("bias {b} at {i}; eventprop networks have no bias (expected 0)"),
                ));
            }
            weight
        }
        other => return Err(Error::unsupported(
            name,
            other.kind(),
            "expected a weight node (Linear or Affine) here; supported chain: Input, (Linear|Affine, CubaLIF)*, Linear|Affine, CubaLI|CubaLIF, Output",
        )),
    };
    if let Some((i, v)) = w.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(Error::unsupported(
            name,
            node.kind(),
            format!("weight {v} at flat index {i}, expected finite values"),
        ));
    }
    Ok(w.clone())
}

/// The neurons of one layer read from a graph.
#[derive(Debug, Clone, PartialEq)]
enum Neurons {
    /// `CubaLIF`, per neuron.
    Spiking(NeuronParams),
    /// `CubaLI`, per neuron (the threshold and reset are unused).
    Integrator(NeuronParams),
}

impl Neurons {
    fn params(&self) -> &NeuronParams {
        match self {
            Self::Spiking(p) | Self::Integrator(p) => p,
        }
    }
}

/// A network read from a NIR graph ([`network_from_graph`]): its description and all its
/// tensors, in the layout of [`NetworkSpec::tensor_shapes`], with the node names.
#[derive(Debug, Clone, PartialEq)]
pub struct NirNetwork {
    /// The network (sizes, neuron parameters, readout, what is trained).
    pub spec: NetworkSpec,
    /// Its tensors: feed-forward weights (`r` and `w_in` folded in), then the recurrent
    /// matrices (zero for a hidden layer without a cycle), `ln τ` and threshold rows.
    pub tensors: Vec<Array2<f64>>,
    /// The neuron nodes, input side first (hidden layers, then the output layer).
    pub layers: Vec<String>,
    /// The names of the input and output nodes.
    pub io_names: (String, String),
}

/// Reads the network of a chain `Input, (Linear|Affine, CubaLIF)*, Linear|Affine,
/// CubaLI|CubaLIF, Output` whose hidden `CubaLIF` nodes may each have one recurrent cycle
/// `lif → Linear|Affine → lif`.
///
/// `hint` is the network this graph is expected to be (a run's config, or the configured
/// network of `--init-nir`): what it trains is trained here too (a graph without cycles
/// gives zero recurrent matrices to a recurrent network, uniform parameters become trained
/// ones), and its nominal time constants and threshold (those of the initialisation) are
/// kept where the graph has per-neuron values. Without it, the nominal values are those of
/// the first neuron of the first spiking layer.
///
/// # Errors
/// [`Error::Unsupported`] naming the node and the field for anything else: other node
/// types and topologies, a cycle into the output layer, `v_leak` or `v_reset` that differ
/// between neurons or layers, a spiking output whose leak/reset differ from the hidden
/// layers', time constants of a `CubaLI` output that differ between neurons, per-neuron
/// thresholds at or below `max(leak, reset)`, a non-zero bias, non-finite values or
/// mismatched sizes.
pub fn network_from_graph(g: &Graph, hint: Option<&NetworkSpec>) -> Result<NirNetwork> {
    let (loops, rest) = split_loops(g);
    let names = chain(&rest)?;
    // names: input, (w, lif)*, w, readout, output
    let body = &names[1..names.len() - 1];
    if body.len() < 2 || body.len() % 2 != 0 {
        return Err(Error::unsupported(
            "graph",
            "NIRGraph",
            format!("expected a chain Input, (Linear|Affine, CubaLIF)*, Linear|Affine, CubaLI|CubaLIF, Output; got {}", names.join(" → ")),
        ));
    }
    let n_layers = body.len() / 2;
    let mut weights = Vec::new();
    let mut recurrent: Vec<Option<Array2<f64>>> = Vec::new();
    let mut layers: Vec<(String, Neurons)> = Vec::new();
    let mut n_prev = None::<usize>;
    for k in 0..n_layers {
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
        let n = w.nrows();
        let node = &g.nodes[nn];
        let kind = node.kind().to_string();
        let last = k + 1 == n_layers;
        let v = |param: &str, a: &Array1<f64>, positive: bool| {
            per_neuron(nn, &kind, param, a, n, positive)
        };
        let (neurons, r, w_in) = match node {
            Node::CubaLif(p) => (
                Neurons::Spiking(NeuronParams {
                    leak: v("v_leak", &p.v_leak, false)?,
                    reset: v("v_reset", &p.v_reset, false)?,
                    threshold: v("v_threshold", &p.v_threshold, false)?,
                    tau_syn: v("tau_syn", &p.tau_syn, true)?,
                    tau_mem: v("tau_mem", &p.tau_mem, true)?,
                }),
                v("r", &p.r, false)?,
                v("w_in", &p.w_in, false)?,
            ),
            Node::CubaLi(p) if last => {
                let leak = v("v_leak", &p.v_leak, false)?;
                (
                    Neurons::Integrator(NeuronParams {
                        reset: leak.clone(),
                        threshold: leak.clone(),
                        leak,
                        tau_syn: v("tau_syn", &p.tau_syn, true)?,
                        tau_mem: v("tau_mem", &p.tau_mem, true)?,
                    }),
                    v("r", &p.r, false)?,
                    v("w_in", &p.w_in, false)?,
                )
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
        };
        let tau_syn = &neurons.params().tau_syn;
        fold(&mut w, &r, &w_in, tau_syn);
        if let Some(rn) = loops.get(nn) {
            if last {
                return Err(Error::unsupported(
                    rn,
                    g.nodes[rn].kind(),
                    format!("a recurrent cycle on the output layer `{nn}`; eventprop's recurrent weights are in hidden layers"),
                ));
            }
            let mut m = weight_of(rn, &g.nodes[rn])?;
            if m.dim() != (n, n) {
                return Err(Error::unsupported(
                    rn,
                    g.nodes[rn].kind(),
                    format!(
                        "recurrent weight of shape {:?}, expected ({n}, {n}) (the size of `{nn}`)",
                        m.dim()
                    ),
                ));
            }
            fold(&mut m, &r, &w_in, tau_syn);
            recurrent.push(Some(m));
        } else if !last {
            recurrent.push(None);
        }
        n_prev = Some(n);
        weights.push(w);
        layers.push((nn.clone(), neurons));
    }
    let (spec, tensors) = describe(&layers, weights, recurrent, hint)?;
    let (in_name, out_name) = (names[0].clone(), names[names.len() - 1].clone());
    Ok(NirNetwork {
        spec,
        tensors,
        layers: layers.into_iter().map(|(n, _)| n).collect(),
        io_names: (in_name, out_name),
    })
}

/// The network description and its tensors from the layers read by [`network_from_graph`].
fn describe(
    layers: &[(String, Neurons)],
    weights: Vec<Array2<f64>>,
    recurrent: Vec<Option<Array2<f64>>>,
    hint: Option<&NetworkSpec>,
) -> Result<(NetworkSpec, Vec<Array2<f64>>)> {
    let (readout_name, readout) = layers.last().expect("one layer");
    let hidden = &layers[..layers.len() - 1];
    let spiking: Vec<(&String, &NeuronParams)> = layers
        .iter()
        .filter_map(|(n, l)| match l {
            Neurons::Spiking(p) => Some((n, p)),
            Neurons::Integrator(_) => None,
        })
        .collect();
    // One leak and one reset for the network (eventprop's layers share them): those of
    // the first (spiking) layer's first neuron, which every neuron must have.
    let (first_name, first) = (&layers[0].0, layers[0].1.params());
    let leak = first.leak[0];
    let reset = match spiking.first() {
        Some((_, p)) => p.reset[0],
        None => hint.map_or(Lif::default().reset, |h| h.lif.reset),
    };
    for (name, l) in layers {
        let p = l.params();
        let (kind, mut checks) = match l {
            Neurons::Spiking(_) => ("CubaLIF", vec![("v_reset", &p.reset, reset)]),
            Neurons::Integrator(_) => ("CubaLI", vec![]),
        };
        checks.insert(0, ("v_leak", &p.leak, leak));
        for (param, a, want) in checks {
            if let Some((i, v)) = a.iter().enumerate().find(|(_, v)| **v != want) {
                return Err(Error::unsupported(
                    name,
                    kind,
                    format!("`{param}` is {v} at {i}, expected {want} (as `{first_name}` and every layer: eventprop's layers share one leak and one reset)"),
                ));
            }
        }
    }
    // Time constants: one pair for the hidden layers and one for the output layer, else
    // trained per neuron.
    let hidden_taus_shared = hidden.iter().all(|(_, l)| {
        let p = l.params();
        p.tau_syn.iter().all(|v| *v == first.tau_syn[0])
            && p.tau_mem.iter().all(|v| *v == first.tau_mem[0])
    });
    let out = readout.params();
    let readout_taus_uniform = all_equal(&out.tau_syn) && all_equal(&out.tau_mem);
    if matches!(readout, Neurons::Integrator(_)) {
        uniform(readout_name, "CubaLI", "tau_syn", &out.tau_syn)?;
        uniform(readout_name, "CubaLI", "tau_mem", &out.tau_mem)?;
    }
    let spiking_readout = matches!(readout, Neurons::Spiking(_));
    let hint_learn = hint.map(|h| h.learn).unwrap_or_default();
    let taus = hint_learn.taus || !hidden_taus_shared || spiking_readout && !readout_taus_uniform;
    let threshold_value = spiking.first().map(|(_, p)| p.threshold[0]);
    let thresholds_shared = spiking
        .iter()
        .all(|(_, p)| p.threshold.iter().all(|v| Some(*v) == threshold_value));
    let trained_threshold = hint_learn.threshold || !thresholds_shared;
    let learn = Learn {
        recurrent: hint_learn.recurrent || recurrent.iter().any(Option::is_some),
        delays: false,
        taus,
        threshold: trained_threshold,
    };
    // Nominal values (the initialisation's; the engines use the tensors where trained):
    // the hint's when it has this leak and reset, else the graph's first neurons'.
    let hint = hint.filter(|h| h.lif.leak == leak && h.lif.reset == reset);
    let floor = leak.max(reset);
    let threshold = match (trained_threshold, hint, threshold_value) {
        (true, Some(h), _) => h.lif.threshold,
        (_, _, Some(t)) => t,
        (_, Some(h), None) => h.lif.threshold,
        // no spiking layer and no hint: the threshold is unused; the default, kept above
        // leak and reset as the engines require
        (_, None, None) => Lif::default().threshold.max(floor + 1.0),
    };
    let (tau_syn, tau_mem) = match (taus, hint, hidden.first()) {
        (true, Some(h), _) => (h.lif.tau_syn, h.lif.tau_mem),
        (_, _, Some((_, l))) => (l.params().tau_syn[0], l.params().tau_mem[0]),
        (_, Some(h), None) => (h.lif.tau_syn, h.lif.tau_mem),
        (_, None, None) => (out.tau_syn[0], out.tau_mem[0]),
    };
    let lif = Lif {
        leak,
        reset,
        threshold,
        tau_syn,
        tau_mem,
    };
    let readout_spec = match readout {
        Neurons::Integrator(p) => Readout::Integrator {
            tau_syn: p.tau_syn[0],
            tau_mem: p.tau_mem[0],
        },
        Neurons::Spiking(p) => {
            let (ts, tm) = match (taus, hint.map(|h| h.readout)) {
                (true, Some(Readout::Spiking(h))) => (h.tau_syn, h.tau_mem),
                _ => (p.tau_syn[0], p.tau_mem[0]),
            };
            Readout::Spiking(Lif {
                tau_syn: ts,
                tau_mem: tm,
                ..lif
            })
        }
    };
    let spec = NetworkSpec {
        n_in: weights[0].ncols(),
        hidden: hidden.iter().map(|(_, l)| l.params().len()).collect(),
        n_out: readout.params().len(),
        lif,
        readout: readout_spec,
        learn,
    };
    let row = |v: Vec<f64>| Array2::from_shape_vec((1, v.len()), v).expect("a row");
    let mut tensors = weights;
    if learn.recurrent {
        for (m, &h) in recurrent.into_iter().zip(&spec.hidden) {
            tensors.push(m.unwrap_or_else(|| Array2::zeros((h, h))));
        }
    }
    if learn.taus {
        for tau_mem in [true, false] {
            for (_, p) in &spiking {
                let taus = if tau_mem { &p.tau_mem } else { &p.tau_syn };
                tensors.push(row(taus.iter().map(|&t| ln_exact(t)).collect()));
            }
        }
    }
    if learn.threshold {
        for (name, p) in &spiking {
            if let Some((i, t)) = p.threshold.iter().enumerate().find(|(_, t)| **t <= floor) {
                return Err(Error::unsupported(
                    name,
                    "CubaLIF",
                    format!("`v_threshold` is {t} at {i}, expected a value > max(v_leak, v_reset) = {floor} (eventprop's per-neuron thresholds lie above leak and reset)"),
                ));
            }
            tensors.push(row(p
                .threshold
                .iter()
                .map(|&t| threshold_param(t, floor))
                .collect()));
        }
    }
    spec.check_weights(&tensors)
        .map_err(|e| Error::unsupported("graph", "NIRGraph", e))?;
    Ok((spec, tensors))
}

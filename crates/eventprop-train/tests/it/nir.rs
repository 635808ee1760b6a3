//! Export → file → import of trained networks, the scaling conventions, and the errors for
//! graphs this project cannot run.

use std::path::Path;

use eventprop_nir::graph::{Meta, Node};
use eventprop_nir::{Error, Graph};
use eventprop_train::{yinyang, EngineKind, TrainConfig, Trainer};

fn small(engine: EngineKind) -> Trainer {
    let config = TrainConfig {
        train_size: 100,
        val_size: 0,
        test_size: 200,
        epochs: 1,
        network: eventprop_train::config::NetworkSettings {
            hidden: vec![20],
            ..TrainConfig::preset(engine).network.clone()
        },
        ..TrainConfig::preset(engine)
    };
    let mut t = Trainer::new(config).unwrap();
    t.run_epoch(&mut |_| {}).unwrap();
    t
}

fn accuracy_and_loss(t: &Trainer) -> (f64, f64) {
    let data = yinyang::generate(200, 7);
    let e = t
        .evaluate(&yinyang::encode(&data, &t.config().encoding))
        .unwrap();
    (e.accuracy, e.loss)
}

fn saved(t: &Trainer, dir: &Path) -> std::path::PathBuf {
    let p = dir.join("m.nir");
    eventprop_train::nir::save(t, &p).unwrap();
    p
}

#[test]
fn stepped_round_trip_is_bit_identical() {
    let t = small(EngineKind::Stepped);
    let dir = tempfile::tempdir().unwrap();
    let back = eventprop_train::nir::load(&saved(&t, dir.path())).unwrap();
    // Expected: the weights as trained (w_in = tau_syn, r = 1 means no rescaling), the
    // run's config, and hence the same evaluation bit for bit.
    assert_eq!(back.weights(), t.weights());
    assert_eq!(back.config(), t.config());
    assert_eq!(back.epochs_done(), 1);
    assert_eq!(accuracy_and_loss(&back), accuracy_and_loss(&t));
}

#[test]
fn exact_round_trip_is_bit_identical() {
    let t = small(EngineKind::Exact);
    let dir = tempfile::tempdir().unwrap();
    let back = eventprop_train::nir::load(&saved(&t, dir.path())).unwrap();
    assert_eq!(back.weights(), t.weights());
    assert_eq!(back.config(), t.config());
    assert_eq!(accuracy_and_loss(&back), accuracy_and_loss(&t));
}

#[test]
fn graph_layout_units_and_metadata() {
    let t = small(EngineKind::Stepped);
    let dir = tempfile::tempdir().unwrap();
    let g = Graph::read(&saved(&t, dir.path())).unwrap();
    let names: Vec<&str> = g.nodes.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["input", "lif0", "linear0", "linear1", "output", "readout"]
    );
    let edges: Vec<(&str, &str)> = g
        .edges
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(
        edges,
        [
            ("input", "linear0"),
            ("linear0", "lif0"),
            ("lif0", "linear1"),
            ("linear1", "readout"),
            ("readout", "output")
        ]
    );
    // The stepped preset (config.rs): hidden tau = 4 µs, readout LI 6 µs, dt = 1 µs,
    // corrected discretization; the convention r = 1, w_in = tau_syn (convert.rs docs).
    let Node::CubaLif(l) = &g.nodes["lif0"] else {
        panic!("lif0 is {:?}", g.nodes["lif0"])
    };
    assert_eq!(l.tau_syn.to_vec(), vec![4e-6; 20]);
    assert_eq!(l.w_in.to_vec(), vec![4e-6; 20]);
    assert_eq!(l.r.to_vec(), vec![1.0; 20]);
    assert_eq!(l.v_threshold.to_vec(), vec![1.0; 20]);
    assert_eq!(l.v_reset.to_vec(), vec![0.0; 20]);
    let Node::CubaLi(r) = &g.nodes["readout"] else {
        panic!("readout is {:?}", g.nodes["readout"])
    };
    assert_eq!(r.tau_mem.to_vec(), vec![6e-6; 3]);
    assert_eq!(g.nodes["input"], Node::Input { shape: vec![5] });
    assert_eq!(g.nodes["output"], Node::Output { shape: vec![3] });
    assert_eq!(g.metadata["dt"], Meta::F64(1e-6));
    assert_eq!(g.metadata["engine"], Meta::Str("stepped".into()));
    assert_eq!(g.metadata["discretization"], Meta::Str("corrected".into()));
    assert_eq!(g.metadata["time_unit"], Meta::Str("s".into()));
    assert_eq!(g.metadata["format"], Meta::Str("eventprop-nir/1".into()));
}

#[test]
fn exact_graph_has_no_dt_and_a_spiking_readout() {
    let t = small(EngineKind::Exact);
    let g = eventprop_train::nir::to_graph(&t).unwrap();
    assert!(!g.metadata.contains_key("dt"));
    assert!(!g.metadata.contains_key("discretization"));
    assert!(matches!(g.nodes["readout"], Node::CubaLif(_)));
}

/// `r` and `w_in` other than ours are folded into the weights: a layer with `r = 2` and
/// half the weight is the same network (the factor `r·w_in/tau_syn` of convert.rs; halving
/// and doubling are exact in binary floating point).
#[test]
fn resistance_and_input_weight_are_folded_into_the_weights() {
    let t = small(EngineKind::Stepped);
    let mut g = eventprop_train::nir::to_graph(&t).unwrap();
    if let Some(Node::CubaLif(l)) = g.nodes.get_mut("lif0") {
        l.r.fill(2.0);
    }
    if let Some(Node::Linear { weight }) = g.nodes.get_mut("linear0") {
        weight.mapv_inplace(|w| w / 2.0);
    }
    if let Some(Node::CubaLi(r)) = g.nodes.get_mut("readout") {
        // w_in = 1 (NIR's default) with weights scaled by tau_syn: the same currents.
        r.w_in.fill(1.0);
    }
    let tau = t.config().network.readout_tau_syn;
    if let Some(Node::Linear { weight }) = g.nodes.get_mut("linear1") {
        weight.mapv_inplace(|w| w * tau);
    }
    let back = eventprop_train::nir::to_trainer(&g).unwrap();
    assert_eq!(back.weights()[0], t.weights()[0]);
    // w * tau / tau: equal to rounding (one multiplication and one division).
    for (a, b) in back.weights()[1].iter().zip(&t.weights()[1]) {
        assert!((a - b).abs() <= 4.0 * f64::EPSILON * b.abs(), "{a} vs {b}");
    }
}

fn err_of(g: &Graph) -> String {
    eventprop_train::nir::to_trainer(g).unwrap_err().to_string()
}

#[test]
fn unsupported_graphs_name_the_node() {
    let t = small(EngineKind::Stepped);
    let base = eventprop_train::nir::to_graph(&t).unwrap();

    let mut g = base.clone();
    g.nodes.insert("lif0".into(), Node::Other("LIF".into()));
    assert_eq!(
        err_of(&g),
        "node `lif0` (LIF): expected a CubaLIF hidden layer (LIF, IF, CubaLI and other neuron types are not supported)"
    );

    let mut g = base.clone();
    if let Some(Node::CubaLif(l)) = g.nodes.get_mut("lif0") {
        l.tau_mem[3] = 1e-5;
    }
    assert_eq!(
        err_of(&g),
        "node `lif0` (CubaLIF): `tau_mem` differs between neurons (0.000004 at 0, 0.00001 at 3); eventprop needs one value per layer"
    );

    let mut g = base.clone();
    g.edges.push(("lif0".into(), "linear0".into()));
    assert_eq!(
        err_of(&g),
        "node `linear0` (Linear): 2 incoming edges; only feed-forward chains are supported (no recurrent or merging edges)"
    );

    let mut g = base.clone();
    g.edges.push(("lif0".into(), "output".into()));
    assert_eq!(
        err_of(&g),
        "node `lif0` (CubaLIF): 2 outgoing edges; only feed-forward chains are supported (no branches or recurrent edges)"
    );

    let mut g = base.clone();
    let Some(Node::Linear { weight }) = g.nodes.get("linear0").cloned() else {
        panic!()
    };
    let mut bias = ndarray::Array1::zeros(weight.nrows());
    bias[1] = 0.5;
    g.nodes
        .insert("linear0".into(), Node::Affine { weight, bias });
    assert_eq!(
        err_of(&g),
        "node `linear0` (Affine): bias 0.5 at 1; eventprop networks have no bias (expected 0)"
    );

    let mut g = base.clone();
    if let Some(Node::CubaLi(r)) = g.nodes.get_mut("readout") {
        r.v_leak.fill(0.25);
    }
    assert_eq!(
        err_of(&g),
        "node `readout` (CubaLI): v_leak 0.25 differs from the hidden layers' 0; eventprop's readout rests at the hidden leak"
    );

    let mut g = base.clone();
    g.nodes.insert("extra".into(), Node::Other("Delay".into()));
    assert_eq!(
        err_of(&g),
        "node `extra` (Delay): not on the path from the Input to the Output node"
    );
}

#[test]
fn a_graph_without_our_metadata_runs_on_the_preset() {
    let t = small(EngineKind::Stepped);
    let mut g = eventprop_train::nir::to_graph(&t).unwrap();
    g.metadata.clear();
    let back = eventprop_train::nir::to_trainer(&g).unwrap();
    // The stepped preset with the graph's sizes and parameters: here those are the
    // preset's own, so the config differs from the run's only in what the graph does
    // not carry (sizes of the data splits).
    assert_eq!(back.config().engine, EngineKind::Stepped);
    assert_eq!(back.config().network.hidden, vec![20]);
    assert_eq!(back.weights(), t.weights());
    assert_eq!(back.epochs_done(), 0);
}

#[test]
fn file_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.nir");
    let e = Graph::read(&missing).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
    let junk = dir.path().join("junk.nir");
    std::fs::write(&junk, b"not hdf5 at all").unwrap();
    let e = Graph::read(&junk).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{}: not a readable HDF5 file", junk.display())),
        "{e}"
    );
    // A truncated copy of a valid file is refused, not a panic.
    let t = small(EngineKind::Stepped);
    let good = saved(&t, dir.path());
    let bytes = std::fs::read(&good).unwrap();
    for cut in [100, bytes.len() / 2, bytes.len() - 10] {
        let p = dir.path().join(format!("cut{cut}.nir"));
        std::fs::write(&p, &bytes[..cut]).unwrap();
        assert!(
            eventprop_train::nir::load(&p).is_err(),
            "cut at {cut} loaded"
        );
    }
}

#[test]
fn write_is_atomic_and_leaves_no_temporary() {
    let t = small(EngineKind::Stepped);
    let dir = tempfile::tempdir().unwrap();
    saved(&t, dir.path());
    saved(&t, dir.path()); // overwrite
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["m.nir"]);
}

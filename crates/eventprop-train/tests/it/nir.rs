//! Export → file → import of trained networks, the scaling conventions, and the errors for
//! graphs this project cannot run.

use std::path::Path;

use eventprop_core::spec::Learn;
use eventprop_nir::graph::{Meta, Node};
use eventprop_nir::{Error, Graph};
use eventprop_train::config::Task;
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

    // Time constants of the leaky-integrator output are never trained: one value.
    let mut g = base.clone();
    if let Some(Node::CubaLi(r)) = g.nodes.get_mut("readout") {
        r.tau_mem[2] = 1e-5;
    }
    assert_eq!(
        err_of(&g),
        "node `readout` (CubaLI): `tau_mem` differs between neurons (0.000006 at 0, 0.00001 at 2); eventprop needs one value per layer here"
    );

    // A leak per neuron: eventprop's layers share one.
    let mut g = base.clone();
    if let Some(Node::CubaLif(l)) = g.nodes.get_mut("lif0") {
        l.v_leak[4] = 0.5;
    }
    assert_eq!(
        err_of(&g),
        "node `lif0` (CubaLIF): `v_leak` is 0.5 at 4, expected 0 (as `lif0` and every layer: eventprop's layers share one leak and one reset)"
    );

    // A weight node fed back into the previous weight node is no recurrent cycle.
    let mut g = base.clone();
    g.edges.push(("lif0".into(), "linear0".into()));
    assert_eq!(
        err_of(&g),
        "node `linear0` (Linear): 2 incoming edges; supported are chains whose CubaLIF layers may have one recurrent cycle through a weight node (no other merging edges)"
    );

    let mut g = base.clone();
    g.edges.push(("lif0".into(), "output".into()));
    assert_eq!(
        err_of(&g),
        "node `lif0` (CubaLIF): 2 outgoing edges; supported are chains whose CubaLIF layers may have one recurrent cycle through a weight node (no other branches)"
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
        "node `readout` (CubaLI): `v_leak` is 0.25 at 0, expected 0 (as `lif0` and every layer: eventprop's layers share one leak and one reset)"
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

/// A one-epoch `train events` run on a small timing task (12 channels, 4 classes, 100 ms
/// samples): the network kinds beyond Yin-Yang that the export must carry.
fn events_run(engine: EngineKind, learn: Learn, first_spike: bool) -> Trainer {
    use eventprop_train::files::write_events;
    use eventprop_train::timing::{timing_task, TimingTask};
    let dir = tempfile::tempdir().unwrap();
    let train = dir.path().join("train.npz");
    let task = TimingTask {
        samples: 96,
        channels: 12,
        classes: 4,
        duration: 0.1,
        events_per_sample: 48,
        jitter: 2e-3,
        noise_rate: 0.0,
        task_seed: 7,
        seed: 1,
    };
    write_events(&train, &timing_task(&task).unwrap()).unwrap();
    let mut c = TrainConfig::preset_for(Task::Events, engine);
    c.data.train = Some(train);
    c.network.hidden = vec![16];
    c.batch_size = 16;
    c.epochs = 1;
    c.optim.lr = 5e-3;
    c.learn = learn;
    if first_spike {
        c.loss = eventprop_train::loss::LossKind::defaults("first_spike", engine).unwrap();
    }
    let mut t = Trainer::new(c).unwrap();
    t.run_epoch(&mut |_| {}).unwrap();
    t
}

/// What an evaluation prints, compared exactly.
fn evaluation(t: &Trainer, set: &eventprop_train::data::SpikeSet) -> (f64, f64, f64, Option<f64>) {
    let e = t.evaluate(set).unwrap();
    (
        e.accuracy,
        e.loss,
        e.hidden_spikes_per_sample,
        e.silent_output_fraction,
    )
}

/// Export → file → import of an event run, for every kind of network the trainer makes.
/// Expected: the run's config; the feed-forward and recurrent weights bit for bit; the
/// per-neuron parameters the engines use (`NetworkSpec::neuron_params`: `e^{ln τ}`,
/// `max(leak, reset) + e^s`) bit for bit; hence the same evaluation, bit for bit.
fn assert_events_round_trip(engine: EngineKind, learn: Learn, first_spike: bool) {
    let t = events_run(engine, learn, first_spike);
    let dir = tempfile::tempdir().unwrap();
    let back = eventprop_train::nir::load(&saved(&t, dir.path())).unwrap();
    let spec = t.engine().spec();
    assert_eq!(back.config(), t.config(), "{engine:?} {learn:?}");
    assert_eq!(back.engine().spec(), spec);
    let n_weights = spec.layout().n_weights();
    assert_eq!(back.weights()[..n_weights], t.weights()[..n_weights]);
    let params = spec.neuron_params(t.weights());
    assert_eq!(spec.neuron_params(back.weights()), params);
    if learn.taus {
        // training moved the time constants apart: a nominal export would differ
        assert!(params[0].tau_mem.iter().any(|v| *v != params[0].tau_mem[0]));
    }
    if learn.threshold {
        assert!(params[0]
            .threshold
            .iter()
            .any(|v| *v != params[0].threshold[0]));
    }
    let set = &t.data().validation;
    assert!(!set.is_empty());
    assert_eq!(evaluation(&back, set), evaluation(&t, set));
}

#[test]
fn event_runs_round_trip_on_the_stepped_engine() {
    assert_events_round_trip(EngineKind::Stepped, Learn::default(), false);
    let all = Learn {
        recurrent: true,
        taus: true,
        threshold: true,
        delays: false,
    };
    assert_events_round_trip(
        EngineKind::Stepped,
        Learn {
            recurrent: true,
            ..Learn::default()
        },
        false,
    );
    // (A spiking output on event data is the exact engine's: the stepped engine's
    // first-spike loss diverges in the first batch of this task, trained extras or not.)
    assert_events_round_trip(EngineKind::Stepped, all, false);
}

#[test]
fn event_runs_round_trip_on_the_exact_engine() {
    assert_events_round_trip(EngineKind::Exact, Learn::default(), true);
    let all = Learn {
        recurrent: true,
        taus: true,
        threshold: true,
        delays: false,
    };
    assert_events_round_trip(EngineKind::Exact, all, true);
    assert_events_round_trip(
        EngineKind::Exact,
        Learn {
            taus: true,
            ..Learn::default()
        },
        false,
    );
}

#[test]
fn recurrent_layers_are_cycles_with_the_engines_timing() {
    let learn = Learn {
        recurrent: true,
        taus: true,
        ..Learn::default()
    };
    for (engine, timing) in [
        (EngineKind::Stepped, "one step: "),
        (EngineKind::Exact, "instantaneous: "),
    ] {
        let t = events_run(engine, learn, false);
        let g = eventprop_train::nir::to_graph(&t).unwrap();
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
                ("readout", "output"),
                ("lif0", "rec0"),
                ("rec0", "lif0")
            ]
        );
        // The recurrent matrix is the trainer's tensor after the feed-forward ones
        // (`model::Layout`), row = target neuron, as a Linear weight.
        let layout = t.engine().spec().layout();
        assert_eq!(
            g.nodes["rec0"],
            Node::Linear {
                weight: t.weights()[layout.recurrent.unwrap()].clone()
            }
        );
        let Meta::Str(r) = &g.metadata["recurrence"] else {
            panic!()
        };
        assert!(r.starts_with(timing), "{r}");
        // Per-neuron time constants as trained, w_in = tau_syn per neuron.
        let Node::CubaLif(l) = &g.nodes["lif0"] else {
            panic!()
        };
        let p = &t.engine().spec().neuron_params(t.weights())[0];
        assert_eq!(l.tau_mem.to_vec(), p.tau_mem);
        assert_eq!(l.w_in.to_vec(), p.tau_syn);
        // The window and grid of the event run, not the Yin-Yang encoding's.
        let c = t.config();
        assert_eq!(g.metadata["t_sim"], Meta::F64(c.events.t_max.unwrap()));
        if engine == EngineKind::Stepped {
            assert_eq!(g.metadata["dt"], Meta::F64(c.events.dt));
        }
    }
}

#[test]
fn trained_delays_are_refused_with_the_reason() {
    let t = events_run(
        EngineKind::Stepped,
        Learn {
            delays: true,
            ..Learn::default()
        },
        false,
    );
    let e = eventprop_train::nir::to_graph(&t).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "node `graph` (export): {}",
            eventprop_nir::convert::DELAYS_REFUSED
        )
    );
    assert!(!e.contains('\n'));
}

/// A graph edited as another tool might write it: per-neuron thresholds where the run had
/// one. Expected: they become trained thresholds with the values kept exactly; thresholds
/// at the floor, and event-network graphs without a run config, are refused naming the
/// node or the metadata.
#[test]
fn per_neuron_thresholds_of_another_tool_and_graphs_without_a_config() {
    let t = events_run(EngineKind::Stepped, Learn::default(), false);
    let mut g = eventprop_train::nir::to_graph(&t).unwrap();
    let thresholds: Vec<f64> = (0..16).map(|i| 0.75 + 0.03125 * i as f64).collect();
    if let Some(Node::CubaLif(l)) = g.nodes.get_mut("lif0") {
        l.v_threshold = ndarray::Array1::from(thresholds.clone());
    }
    let back = eventprop_train::nir::to_trainer(&g).unwrap();
    let c = back.config();
    assert!(c.learn.threshold && !c.learn.taus && !c.learn.recurrent);
    // the nominal threshold stays the run's (the hint)
    assert_eq!(c.network.threshold, t.config().network.threshold);
    let spec = back.engine().spec();
    assert_eq!(spec.neuron_params(back.weights())[0].threshold, thresholds);

    let mut g2 = g.clone();
    if let Some(Node::CubaLif(l)) = g2.nodes.get_mut("lif0") {
        l.v_threshold[5] = 0.0;
    }
    assert_eq!(
        err_of(&g2),
        "node `lif0` (CubaLIF): `v_threshold` is 0 at 5, expected a value > max(v_leak, v_reset) = 0 (eventprop's per-neuron thresholds lie above leak and reset)"
    );
    g.metadata.remove("eventprop_config");
    assert_eq!(
        err_of(&g),
        "node `graph` (NIRGraph): 12 inputs and 4 outputs without the metadata `eventprop_config`: `eventprop eval` runs such a graph only with its run's config (event data, window, grid), and Yin-Yang graphs have 5 and 3; `train events --init-nir` starts a run from it"
    );
}

/// `ln_exact` gives back the value through `exp` exactly where plain `ln` misses by an ulp.
/// Such values are rare (about 1 in 10^5 of `e^s` for `s` uniform in (-3, 0.5), counted
/// with Python's `math`, the same libm); `S_MISS` is one found by that search: `ln` of its
/// `e^s` is one ulp off and `exp` of that is one ulp above. Expected: it and every value of
/// a grid come back exactly.
#[test]
fn ln_exact_inverts_exp_exactly() {
    const S_MISS: f64 = -1.383_017_768_467_089_2;
    let x = S_MISS.exp();
    assert_ne!(x.ln().exp(), x, "plain ln misses here (glibc's exp and ln)");
    assert_eq!(eventprop_nir::convert::ln_exact(x).exp(), x);
    let golden = 0.618_033_988_749_894_9_f64;
    for i in 0..200_000u32 {
        let s = -3.0 + 3.5 * (f64::from(i) * golden).fract();
        let x = s.exp();
        assert_eq!(eventprop_nir::convert::ln_exact(x).exp(), x, "s = {s}");
    }
}

/// Cycles the import cannot run name the node: on the output layer, with a matrix of the
/// wrong shape, and a graph whose cycle was removed reads as the same network with a zero
/// recurrent matrix (the run's config trains one: the hint).
#[test]
fn recurrent_cycles_the_import_refuses_and_a_removed_cycle() {
    let t = events_run(
        EngineKind::Stepped,
        Learn {
            recurrent: true,
            ..Learn::default()
        },
        false,
    );
    let base = eventprop_train::nir::to_graph(&t).unwrap();

    let mut g = base.clone();
    g.nodes.insert(
        "rec_out".into(),
        Node::Linear {
            weight: ndarray::Array2::zeros((4, 4)),
        },
    );
    g.edges.push(("readout".into(), "rec_out".into()));
    g.edges.push(("rec_out".into(), "readout".into()));
    assert_eq!(
        err_of(&g),
        "node `rec_out` (Linear): a recurrent cycle on the output layer `readout`; eventprop's recurrent weights are in hidden layers"
    );

    let mut g = base.clone();
    g.nodes.insert(
        "rec0".into(),
        Node::Linear {
            weight: ndarray::Array2::zeros((16, 15)),
        },
    );
    assert_eq!(
        err_of(&g),
        "node `rec0` (Linear): recurrent weight of shape (16, 15), expected (16, 16) (the size of `lif0`)"
    );

    let mut g = base.clone();
    g.nodes.remove("rec0");
    g.edges.retain(|(a, b)| a != "rec0" && b != "rec0");
    let back = eventprop_train::nir::to_trainer(&g).unwrap();
    let r = back.engine().spec().layout().recurrent.unwrap();
    assert_eq!(back.weights()[r], ndarray::Array2::<f64>::zeros((16, 16)));
    assert_eq!(back.weights()[..r], t.weights()[..r]);
}

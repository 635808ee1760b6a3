//! End-to-end tests of the network, the training loop, determinism and resume.

use eventprop_core::Discretization;
use eventprop_train::loss::{self, LossKind};
use eventprop_train::network::{Init, Lif, Network, NetworkConfig, OutputLayer};
use eventprop_train::readout::LeakyIntegrator;
use eventprop_train::train::{TrainConfig, Trainer};
use eventprop_train::{yinyang, Error};
use ndarray::Array2;

fn small_config() -> TrainConfig {
    TrainConfig {
        train_size: 400,
        val_size: 200,
        test_size: 200,
        epochs: 2,
        batch_size: 25,
        lr: 1e-2,
        tau_mem: 4e-6,
        tau_syn: 4e-6,
        discretization: Discretization::Corrected,
        ..TrainConfig::default()
    }
}

fn net_config(hidden: Vec<usize>, output: OutputLayer) -> NetworkConfig {
    NetworkConfig {
        n_in: yinyang::N_INPUTS,
        hidden,
        n_out: 3,
        lif: Lif::default(),
        dt: 1e-6,
        discretization: Discretization::Seed,
        output,
    }
}

fn batch(n: usize) -> (ndarray::Array3<f64>, Vec<usize>) {
    let data = yinyang::generate(n, 11);
    let idx: Vec<usize> = (0..n).collect();
    let x = yinyang::encode_batch::<f64>(&data, &idx, &yinyang::Encoding::default());
    (x, data.labels)
}

/// Max-over-time loss of `net` on a batch.
fn mot_loss(net: &Network<f64>, x: &ndarray::Array3<f64>, labels: &[usize]) -> f64 {
    let trace = net.forward(x.view()).unwrap();
    loss::max_over_time(trace.output.view(), labels, 4e-4).loss
}

#[test]
fn readout_weight_gradient_matches_finite_differences_through_two_hidden_layers() {
    // The readout path (synapse + leaky integrator + max-over-time CE) is differentiable
    // in W_out, and W_out does not change any spike, so the backward's W_out gradient must
    // equal the central difference to O(h²).
    let cfg = net_config(
        vec![30, 20],
        OutputLayer::Integrator(LeakyIntegrator::default()),
    );
    let net = Network::<f64>::init(
        cfg,
        Init {
            mean: 1.0,
            std: 0.5,
        },
        Init {
            mean: 0.0,
            std: 0.3,
        },
        5,
    )
    .unwrap();
    let (x, labels) = batch(16);
    let trace = net.forward(x.view()).unwrap();
    assert!(
        trace.hidden_spikes(1).sum() > 0.0,
        "second hidden layer must spike"
    );
    let out = loss::max_over_time(trace.output.view(), &labels, 4e-4);
    let g = net.backward(&trace, out.grad.view(), None).unwrap();
    assert_eq!(g.weights.len(), 3);
    assert_eq!(g.weights[0].dim(), (30, 5));
    assert_eq!(g.weights[1].dim(), (20, 30));
    let h = 1e-6;
    let mut checked = 0;
    for o in 0..3 {
        for i in 0..20 {
            let mut p = net.clone();
            p.weights[2][[o, i]] += h;
            let mut m = net.clone();
            m.weights[2][[o, i]] -= h;
            let fd = (mot_loss(&p, &x, &labels) - mot_loss(&m, &x, &labels)) / (2.0 * h);
            let an = g.weights[2][[o, i]];
            assert!(
                (fd - an).abs() < 1e-7 + 1e-5 * an.abs(),
                "W_out[{o},{i}]: fd {fd} vs {an}"
            );
            checked += usize::from(an != 0.0);
        }
    }
    assert!(checked > 10, "most readout gradients are non-zero");
}

#[test]
fn a_step_against_the_hidden_gradient_lowers_the_loss() {
    // EventProp's hidden gradient is not a derivative of the (piecewise-constant in
    // W_hidden) time-stepped loss, so check the sign where it matters: steps of a few
    // percent of |W| along -g lower the batch loss, and on the whole lower it more than
    // steps along +g (single +g steps can lower it too: the loss is not smooth).
    for disc in [Discretization::Seed, Discretization::Corrected] {
        let mut cfg = net_config(
            vec![60],
            OutputLayer::Integrator(LeakyIntegrator::default()),
        );
        cfg.discretization = disc;
        let net = Network::<f64>::init(
            cfg,
            Init {
                mean: 0.8,
                std: 0.25,
            },
            Init {
                mean: 0.0,
                std: 0.5,
            },
            3,
        )
        .unwrap();
        let (x, labels) = batch(300);
        let trace = net.forward(x.view()).unwrap();
        let out = loss::max_over_time(trace.output.view(), &labels, 4e-4);
        let g = net.backward(&trace, out.grad.view(), None).unwrap();
        let gnorm = g.weights[0].iter().map(|v| v * v).sum::<f64>().sqrt();
        let wnorm = net.weights[0].iter().map(|v| v * v).sum::<f64>().sqrt();
        let l0 = out.loss;
        let (mut downs, mut ups) = (0.0, 0.0);
        for frac in [0.01, 0.02, 0.04] {
            let step = |sign: f64| {
                let mut n = net.clone();
                n.weights[0] = &net.weights[0] + &(&g.weights[0] * (sign * frac * wnorm / gnorm));
                mot_loss(&n, &x, &labels)
            };
            let (down, up) = (step(-1.0), step(1.0));
            assert!(down < l0, "{disc}, step {frac} |W|: {down} >= {l0}");
            downs += down;
            ups += up;
        }
        assert!(downs < ups, "{disc}: -g steps {downs} vs +g steps {ups}");
    }
}

#[test]
fn spiking_output_and_first_spike_loss_run_end_to_end() {
    let lif = Lif::default();
    let cfg = net_config(vec![40], OutputLayer::Spiking(lif));
    let net = Network::<f64>::init(
        cfg,
        Init {
            mean: 1.0,
            std: 0.3,
        },
        Init {
            mean: 1.0,
            std: 0.5,
        },
        1,
    )
    .unwrap();
    let (x, labels) = batch(20);
    let trace = net.forward(x.view()).unwrap();
    let out = loss::first_spike(trace.output.view(), &labels, 1e-6, 0.5e-6, 2e-5, 0.0);
    assert!(out.loss.is_finite());
    let g = net.backward(&trace, out.grad.view(), None).unwrap();
    assert_eq!(g.weights[1].dim(), (3, 40));
    // A silent network gets no gradient (no spikes, nothing to move).
    let silent = Network::<f64>::from_weights(
        net.config.clone(),
        vec![Array2::zeros((40, 5)), Array2::zeros((3, 40))],
    )
    .unwrap();
    let tr = silent.forward(x.view()).unwrap();
    let o = loss::first_spike(tr.output.view(), &labels, 1e-6, 0.5e-6, 2e-5, 0.0);
    let gs = silent.backward(&tr, o.grad.view(), None).unwrap();
    assert!(gs.weights.iter().all(|w| w.iter().all(|&v| v == 0.0)));
}

#[test]
fn short_training_lowers_the_loss_and_beats_chance() {
    let mut t = Trainer::new(small_config()).unwrap();
    let m1 = t.run_epoch(&mut |_| {}).unwrap();
    let m2 = t.run_epoch(&mut |_| {}).unwrap();
    // Chance is 1/3 (balanced classes); the untrained max-over-time loss is ~ln 3 = 1.10.
    assert!(
        m2.train_loss < m1.train_loss,
        "{} -> {}",
        m1.train_loss,
        m2.train_loss
    );
    assert!(
        m2.val_acc.unwrap() > 0.6,
        "validation accuracy {:?}",
        m2.val_acc
    );
    assert!(
        m2.test_acc.unwrap() > 0.6,
        "test accuracy {:?}",
        m2.test_acc
    );
}

fn strip_time(t: &Trainer) -> Vec<eventprop_train::metrics::EpochMetrics> {
    t.history
        .iter()
        .cloned()
        .map(|mut m| {
            m.epoch_seconds = 0.0;
            m
        })
        .collect()
}

#[test]
fn same_seed_gives_identical_runs_and_another_seed_does_not() {
    let cfg = TrainConfig {
        epochs: 1,
        ..small_config()
    };
    let run = |c: TrainConfig| {
        let mut t = Trainer::new(c).unwrap();
        t.run_epoch(&mut |_| {}).unwrap();
        t
    };
    let a = run(cfg.clone());
    let b = run(cfg.clone());
    assert_eq!(a.net.weights, b.net.weights);
    assert_eq!(strip_time(&a), strip_time(&b));
    let c = run(TrainConfig { seed: 1, ..cfg });
    assert_ne!(a.net.weights, c.net.weights);
}

#[test]
fn resumed_run_equals_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.safetensors");
    let mut full = Trainer::new(small_config()).unwrap();
    full.run_epoch(&mut |_| {}).unwrap();
    full.run_epoch(&mut |_| {}).unwrap();

    let mut first = Trainer::new(small_config()).unwrap();
    first.run_epoch(&mut |_| {}).unwrap();
    first.save(&path).unwrap();
    drop(first);
    let mut resumed = Trainer::load(&path).unwrap();
    assert_eq!(resumed.epochs_done, 1);
    resumed.run_epoch(&mut |_| {}).unwrap();
    assert!(resumed.finished());
    assert_eq!(
        resumed.net.weights, full.net.weights,
        "bit-identical weights"
    );
    assert_eq!(resumed.adam, full.adam, "bit-identical optimizer state");
    assert_eq!(strip_time(&resumed), strip_time(&full));
}

#[test]
fn corrupt_checkpoints_and_configs_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("c.safetensors");
    assert!(matches!(Trainer::load(&ck), Err(Error::Io { .. })));
    std::fs::write(&ck, b"not a checkpoint").unwrap();
    assert!(matches!(Trainer::load(&ck), Err(Error::Format { .. })));
    // A valid safetensors file without the training metadata.
    let c = eventprop_train::checkpoint::Checkpoint {
        metadata: "{}".into(),
        ..Default::default()
    };
    eventprop_train::checkpoint::save(&ck, &c).unwrap();
    let err = Trainer::load(&ck).unwrap_err();
    assert!(matches!(err, Error::Format { .. }), "{err}");

    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "lr = 0.01\nno_such_key = 3\n").unwrap();
    let err = TrainConfig::from_toml_file(&cfg).unwrap_err();
    assert!(err.to_string().contains("no_such_key"), "{err}");
    std::fs::write(&cfg, "lr = \"fast\"\n").unwrap();
    assert!(matches!(
        TrainConfig::from_toml_file(&cfg),
        Err(Error::Format { .. })
    ));
    std::fs::write(&cfg, "lr = -1.0\n").unwrap();
    let c = TrainConfig::from_toml_file(&cfg).unwrap();
    assert!(c.validate().unwrap_err().to_string().starts_with("lr:"));
    std::fs::write(&cfg, "hidden = [120, 0]\n").unwrap();
    let c = TrainConfig::from_toml_file(&cfg).unwrap();
    assert!(c.validate().unwrap_err().to_string().starts_with("hidden:"));
}

#[test]
fn toml_round_trip_of_the_config() {
    let c = TrainConfig {
        loss: LossKind::FirstSpike {
            tau0: 1e-6,
            tau1: 2e-5,
            alpha: 1e-3,
        },
        weight_clip: Some(3.0),
        hidden: vec![50, 40],
        ..TrainConfig::default()
    };
    let text = toml::to_string(&c).unwrap();
    let back: TrainConfig = toml::from_str(&text).unwrap();
    assert_eq!(back, c);
}

#[test]
fn first_spike_loss_gradient_points_downhill_with_the_corrected_discretization() {
    // Sign check of the SPEC §3 convention (grad_spikes = -dL/dt_k at output spikes) through
    // both layers: steps of 0.5–4 % of |W| along -g lower the first-spike loss on a batch.
    // (With the seed discretization the output layer's jump uses i[t-1], whose
    // `dv_m = i[t-1] - threshold` is often negative at a spike, so its direction flips:
    // measured, see the crate report; hence no such assertion for `Seed`.)
    let cfg = NetworkConfig {
        lif: Lif {
            tau_mem: 4e-6,
            tau_syn: 4e-6,
            ..Lif::default()
        },
        discretization: Discretization::Corrected,
        ..net_config(vec![60], OutputLayer::Spiking(Lif::default()))
    };
    let net = Network::<f64>::init(
        cfg,
        Init {
            mean: 0.8,
            std: 0.5,
        },
        Init {
            mean: 1.0,
            std: 0.5,
        },
        3,
    )
    .unwrap();
    let (x, labels) = batch(300);
    let fs = |n: &Network<f64>| {
        let tr = n.forward(x.view()).unwrap();
        loss::first_spike(tr.output.view(), &labels, 1e-6, 1e-6, 2e-5, 0.0).loss
    };
    let tr = net.forward(x.view()).unwrap();
    let out = loss::first_spike(tr.output.view(), &labels, 1e-6, 1e-6, 2e-5, 0.0);
    let g = net.backward(&tr, out.grad.view(), None).unwrap();
    for layer in [0, 1] {
        let gn = g.weights[layer].iter().map(|v| v * v).sum::<f64>().sqrt();
        let wn = net.weights[layer].iter().map(|v| v * v).sum::<f64>().sqrt();
        for frac in [0.005, 0.01, 0.02, 0.04] {
            let step = |s: f64| {
                let mut n = net.clone();
                n.weights[layer] =
                    &net.weights[layer] + &(&g.weights[layer] * (s * frac * wn / gn));
                fs(&n)
            };
            let (down, up) = (step(-1.0), step(1.0));
            assert!(
                down < out.loss && down < up,
                "layer {layer}, {frac}: {down} {} {up}",
                out.loss
            );
        }
    }
}

#[test]
fn seed_example_config_file_holds_the_spec_values() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/seed_example.toml");
    let c = TrainConfig::from_toml_file(&path).unwrap();
    c.validate().unwrap();
    // SPEC §5 values.
    let want = TrainConfig {
        lr: 2e-3,
        lr_step: 10,
        lr_gamma: 0.9,
        tau_mem: 6e-6,
        tau_syn: 6e-6,
        discretization: Discretization::Seed,
        hidden_init_std: 0.25,
        ..TrainConfig::default()
    };
    assert_eq!(c, want);
}

#[test]
fn per_layer_init_draws_each_layer_from_its_own_normal() {
    let cfg = net_config(
        vec![200, 200],
        OutputLayer::Integrator(LeakyIntegrator::default()),
    );
    let inits = [
        Init {
            mean: 2.0,
            std: 0.1,
        },
        Init {
            mean: -1.0,
            std: 0.5,
        },
        Init {
            mean: 0.0,
            std: 0.0,
        },
    ];
    let net = Network::<f64>::init_layers(cfg.clone(), &inits, 9).unwrap();
    for (w, init) in net.weights.iter().zip(&inits) {
        let n = w.len() as f64;
        let mean = w.sum() / n;
        let sd = (w.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        // Sample mean within 5 standard errors (std / sqrt(n)); sample sd within 10 %.
        assert!(
            (mean - init.mean).abs() <= 5.0 * init.std / n.sqrt() + 1e-12,
            "{mean}"
        );
        assert!((sd - init.std).abs() <= 0.1 * init.std + 1e-12, "{sd}");
    }
    assert_eq!(
        net,
        Network::<f64>::init_layers(cfg.clone(), &inits, 9).unwrap()
    );
    assert!(Network::<f64>::init_layers(cfg.clone(), &inits[..2], 9).is_err());
    let bad = [
        inits[0],
        Init {
            mean: 0.0,
            std: -1.0,
        },
        inits[2],
    ];
    assert!(Network::<f64>::init_layers(cfg, &bad, 9).is_err());
}

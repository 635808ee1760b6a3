//! Recurrent hidden layers and trained hidden thresholds on the stepped engine: the fused
//! path (`SteppedEngine`, the default for `[learn] recurrent` and, with the integrator
//! readout, `threshold`) against the dense layers (`SteppedLearnEngine`, built directly):
//! same spikes, losses and predictions, every gradient (feed-forward, recurrent,
//! threshold) equal to rounding; thread-count independence; training runs with the same
//! per-epoch metrics on both.
//!
//! Provenance: the expected values are the dense engine's (`SteppedLayer`, checked against
//! finite differences in `learn.rs` and `stepped_layer.rs`), computed in the same test on
//! the same batch.

use eventprop_train::config::TrainConfig;
use eventprop_train::data::Spike;
use eventprop_train::engine::stepped::{SteppedEngine, SteppedPath};
use eventprop_train::engine::stepped_learn::SteppedLearnEngine;
use eventprop_train::engine::{Engine, EngineKind, Pass};
use eventprop_train::loss::LossKind;
use eventprop_train::model::Learn;
use eventprop_train::{yinyang, Trainer};
use ndarray::Array2;

const RECURRENT: Learn = Learn {
    recurrent: true,
    delays: false,
    taus: false,
    threshold: false,
};

fn rel_max(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

fn recurrent(c: TrainConfig) -> TrainConfig {
    TrainConfig {
        learn: RECURRENT,
        ..c
    }
}

const THRESHOLD: Learn = Learn {
    recurrent: false,
    delays: false,
    taus: false,
    threshold: true,
};

const BOTH: Learn = Learn {
    recurrent: true,
    delays: false,
    taus: false,
    threshold: true,
};

const TAUS: Learn = Learn {
    recurrent: false,
    delays: false,
    taus: true,
    threshold: false,
};

/// Everything the fused path trains: recurrence, time constants, thresholds.
const ALL_FUSED: Learn = Learn {
    recurrent: true,
    delays: false,
    taus: true,
    threshold: true,
};

/// Weights of `config` from `seed`, the recurrent ones scaled by `r_scale` (so that the
/// recurrence changes the spikes), the threshold and `ln tau` parameters moved apart per
/// neuron (so that every neuron has its own threshold and time constants: `ln tau` by up
/// to ±0.25, i.e. taus within a factor 1.3 of the preset's).
fn weights(config: &TrainConfig, seed: u64, r_scale: f64) -> Vec<Array2<f64>> {
    let spec = config.network();
    let l = spec.layout();
    let mut w = spec.init_weights(&config.inits(), seed).unwrap();
    if let Some(r) = l.recurrent {
        for t in &mut w[r..r + spec.hidden.len()] {
            *t *= r_scale;
        }
    }
    if let Some(ta) = l.taus {
        let n_spiking = spec.spiking_layers().len();
        for t in &mut w[ta..ta + 2 * n_spiking] {
            let mut k = 0.0;
            t.mapv_inplace(|v| {
                k += 1.0;
                v + 0.25 * (k * 2.3 + seed as f64).cos()
            });
        }
    }
    if let Some(th) = l.threshold {
        for t in &mut w[th..] {
            let mut k = 0.0;
            t.mapv_inplace(|v| {
                k += 1.0;
                v + 0.3 * (k * 1.7 + seed as f64).sin()
            });
        }
    }
    w
}

fn compare(config: &TrainConfig, seed: u64, r_scale: f64, what: &str) {
    let w = weights(config, seed, r_scale);
    let set = yinyang::encode(&yinyang::generate(37, seed + 10), &config.encoding);
    let inputs: Vec<&[Spike]> = set.samples.iter().map(Vec::as_slice).collect();
    let fused = SteppedEngine::new(&config.engine_settings()).unwrap();
    let dense = SteppedLearnEngine::new(&config.engine_settings()).unwrap();
    let with: Vec<_> = inputs
        .iter()
        .map(|x| fused.hidden_spikes(&w, x).unwrap())
        .collect();
    // The recurrence matters: zero recurrent weights give other spikes.
    let spec = config.network();
    if let Some(r) = spec.layout().recurrent {
        let mut w0 = w.clone();
        w0[r..r + spec.hidden.len()]
            .iter_mut()
            .for_each(|t| t.fill(0.0));
        let plain: Vec<_> = inputs
            .iter()
            .map(|x| fused.hidden_spikes(&w0, x).unwrap())
            .collect();
        assert_ne!(plain, with, "{what}: the recurrence changes no spike");
    }
    for (k, x) in inputs.iter().enumerate() {
        assert_eq!(
            with[k],
            dense.hidden_spikes(&w, x).unwrap(),
            "{what}: sample {k}"
        );
    }
    for pass in [Pass::Train, Pass::Eval] {
        // Twice: the second run reuses the fused layers' buffers.
        for _ in 0..2 {
            let a = fused.run(&w, &inputs, &set.labels, pass).unwrap();
            let b = dense.run(&w, &inputs, &set.labels, pass).unwrap();
            assert!(
                b.hidden_spikes > 0.0,
                "{what}: the hidden layers must spike"
            );
            assert_eq!(a.hidden_spikes, b.hidden_spikes, "{what}");
            assert_eq!(a.predictions, b.predictions, "{what}");
            assert_eq!(a.correct, b.correct, "{what}");
            assert_eq!(a.silent_outputs, b.silent_outputs, "{what}");
            let dl = (a.loss_sum - b.loss_sum).abs() / b.loss_sum.abs().max(1e-300);
            assert!(dl <= 1e-12, "{what}: loss off by {dl:e}");
            match (a.grads, b.grads) {
                (Some(ga), Some(gb)) => {
                    assert_eq!(ga.len(), gb.len(), "{what}: tensors");
                    assert_eq!(ga.len(), w.len(), "{what}: tensors");
                    for (k, (x, y)) in ga.iter().zip(&gb).enumerate() {
                        assert!(
                            y.iter().any(|&v| v != 0.0),
                            "{what}: tensor {k} has no gradient"
                        );
                        let e = rel_max(x, y);
                        assert!(e <= 1e-12, "{what}: tensor {k} gradient off by {e:e}");
                    }
                }
                (None, None) => assert_eq!(pass, Pass::Eval),
                _ => panic!("{what}: one path returned gradients, the other not"),
            }
        }
    }
}

fn two_hidden(mut c: TrainConfig) -> TrainConfig {
    c.network.hidden = vec![30, 20];
    c.network.hidden_init_mean = 1.2;
    c
}

#[test]
fn fused_recurrent_layers_equal_the_dense_layers() {
    let preset = recurrent(TrainConfig::preset(EngineKind::Stepped));
    for seed in [3, 4] {
        compare(&preset, seed, 3.0, &format!("preset, seed {seed}"));
    }
    let mut c = two_hidden(preset.clone());
    c.stepped.rate_reg = 1e-3;
    compare(&c, 5, 2.0, "two hidden layers, rate term");
    let mut c = two_hidden(preset.clone());
    c.loss = LossKind::defaults("first_spike", EngineKind::Stepped).unwrap();
    compare(&c, 3, 1.5, "two hidden layers, spiking output");
    let mut c = preset.clone();
    c.network.hidden = vec![70];
    c.loss = LossKind::defaults("first_spike", EngineKind::Stepped).unwrap();
    compare(&c, 7, 4.0, "70 hidden, spiking output");
}

#[test]
fn fused_trained_thresholds_equal_the_dense_layers() {
    let preset = TrainConfig::preset(EngineKind::Stepped);
    for learn in [THRESHOLD, BOTH] {
        let c = TrainConfig {
            learn,
            ..preset.clone()
        };
        compare(&c, 3, 3.0, &format!("preset, {learn:?}"));
        let mut c = two_hidden(c);
        c.stepped.rate_reg = 1e-3;
        compare(
            &c,
            5,
            2.0,
            &format!("two hidden layers, rate term, {learn:?}"),
        );
    }
}

/// Trained hidden time constants on the fused path (`dL/dtau` from the auxiliary adjoints,
/// DESIGN.md) against the dense layers' Euler sums: the same spikes, every gradient
/// (including `ln tau_mem`, `ln tau_syn`) to 1e-12 relative; with and without recurrence
/// and trained thresholds, one and two hidden layers, several seeds.
#[test]
fn fused_trained_taus_equal_the_dense_layers() {
    let preset = TrainConfig::preset(EngineKind::Stepped);
    for learn in [
        TAUS,
        Learn {
            threshold: true,
            ..TAUS
        },
        Learn {
            recurrent: true,
            ..TAUS
        },
        ALL_FUSED,
    ] {
        let c = TrainConfig {
            learn,
            ..preset.clone()
        };
        for seed in [3, 4, 6] {
            compare(&c, seed, 3.0, &format!("preset, seed {seed}, {learn:?}"));
        }
        let mut c = two_hidden(c);
        c.stepped.rate_reg = 1e-3;
        compare(
            &c,
            5,
            2.0,
            &format!("two hidden layers, rate term, {learn:?}"),
        );
    }
}

#[test]
fn recurrence_and_hidden_thresholds_run_on_the_fused_path_the_rest_on_the_dense_layers() {
    let c = recurrent(TrainConfig::preset(EngineKind::Stepped));
    for learn in [RECURRENT, THRESHOLD, BOTH, TAUS, ALL_FUSED] {
        let c = TrainConfig { learn, ..c.clone() };
        let e = c.engine().unwrap();
        assert!(format!("{e:?}").starts_with("SteppedEngine"), "{e:?}");
        assert_eq!(
            SteppedEngine::new(&c.engine_settings()).unwrap().path(),
            SteppedPath::Fused
        );
    }
    for learn in [
        Learn {
            delays: true,
            ..RECURRENT
        },
        // A spiking output's thresholds and time constants have no fused gradient.
        TAUS,
        THRESHOLD,
    ] {
        let mut c = TrainConfig { learn, ..c.clone() };
        if learn
            != (Learn {
                delays: true,
                ..RECURRENT
            })
        {
            c.loss = LossKind::defaults("first_spike", EngineKind::Stepped).unwrap();
        }
        let e = c.engine().unwrap();
        assert!(format!("{e:?}").starts_with("SteppedLearnEngine"), "{e:?}");
        // The fused engine refuses them, naming `learn`.
        let err = SteppedEngine::new(&c.engine_settings())
            .unwrap_err()
            .to_string();
        assert!(err.contains("learn"), "{err}");
    }
    // The seed function has no recurrence.
    let err = SteppedEngine::with_path(&c.engine_settings(), SteppedPath::Seed)
        .unwrap_err()
        .to_string();
    assert!(err.contains("path"), "{err}");
    // As the dense layers, the fused recurrent layers implement the corrected adjoint.
    let seed_disc = TrainConfig {
        stepped: eventprop_core::stepped::SteppedSettings {
            discretization: eventprop_core::Discretization::Seed,
            ..c.clone().stepped
        },
        ..c.clone()
    };
    for err in [
        SteppedEngine::new(&seed_disc.engine_settings())
            .unwrap_err()
            .to_string(),
        SteppedLearnEngine::new(&seed_disc.engine_settings())
            .unwrap_err()
            .to_string(),
    ] {
        assert!(err.contains("discretization"), "{err}");
    }
}

#[test]
fn fused_recurrent_engine_is_independent_of_the_thread_count() {
    let c = TrainConfig {
        learn: ALL_FUSED,
        ..two_hidden(TrainConfig::preset(EngineKind::Stepped))
    };
    let w = weights(&c, 8, 2.0);
    let set = yinyang::encode(&yinyang::generate(50, 8), &c.encoding);
    let inputs: Vec<&[Spike]> = set.samples.iter().map(Vec::as_slice).collect();
    let run = |threads: usize| {
        eventprop_testkit::with_threads(threads, || {
            let e = SteppedEngine::new(&c.engine_settings()).unwrap();
            let o = e.run(&w, &inputs, &set.labels, Pass::Train).unwrap();
            let mut bits = vec![o.loss_sum.to_bits(), o.hidden_spikes.to_bits()];
            for g in o.grads.unwrap() {
                bits.extend(g.iter().map(|v| v.to_bits()));
            }
            bits
        })
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(3));
}

#[test]
fn recurrent_training_gives_the_same_epochs_on_both_paths() {
    for learn in [RECURRENT, BOTH] {
        train_on_both_paths(learn);
    }
}

fn train_on_both_paths(learn: Learn) {
    let cfg = TrainConfig {
        train_size: 200,
        val_size: 60,
        test_size: 60,
        epochs: 3,
        learn,
        ..TrainConfig::preset(EngineKind::Stepped)
    };
    let mut fused = Trainer::new(cfg.clone()).unwrap();
    let mut dense = Trainer::with_engine(cfg, |c| {
        Ok(Box::new(SteppedLearnEngine::new(c)?) as Box<dyn Engine>)
    })
    .unwrap();
    assert!(format!("{:?}", fused.engine()).starts_with("SteppedEngine"));
    assert!(format!("{:?}", dense.engine()).starts_with("SteppedLearnEngine"));
    for _ in 0..3 {
        fused.run_epoch(&mut |_| {}).unwrap();
        dense.run_epoch(&mut |_| {}).unwrap();
    }
    for (a, b) in fused.history().iter().zip(dense.history()) {
        eprintln!("fused {a:?}\ndense {b:?}");
        assert_eq!(a.train_acc, b.train_acc, "epoch {}", a.epoch);
        assert_eq!(a.val_acc, b.val_acc, "epoch {}", a.epoch);
        assert_eq!(a.test_acc, b.test_acc, "epoch {}", a.epoch);
        assert_eq!(
            a.hidden_spikes_per_sample, b.hidden_spikes_per_sample,
            "epoch {}",
            a.epoch
        );
        for (x, y) in [
            (a.train_loss, b.train_loss),
            (a.val_loss.unwrap(), b.val_loss.unwrap()),
            (a.test_loss.unwrap(), b.test_loss.unwrap()),
        ] {
            assert!(
                (x - y).abs() <= 1e-9 * y.abs(),
                "epoch {}: {x} vs {y}",
                a.epoch
            );
        }
    }
}

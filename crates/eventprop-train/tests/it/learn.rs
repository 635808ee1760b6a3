//! Training more than feed-forward weights on the exact engine (`[learn]`): the tensor
//! layout, the engine's gradients of every tensor (recurrent weights, delays, `ln tau`,
//! threshold parameters) against finite differences of its own batch loss, training,
//! checkpoints and resume, and the engines that refuse it.

use eventprop_train::engine::Pass;
use eventprop_train::model::Learn;
use eventprop_train::{EngineKind, TrainConfig, Trainer};
use ndarray::Array2;

const ALL: Learn = Learn {
    recurrent: true,
    delays: true,
    taus: true,
    threshold: true,
};

fn small(learn: Learn) -> TrainConfig {
    TrainConfig {
        train_size: 800,
        val_size: 100,
        test_size: 100,
        epochs: 2,
        seed: 3,
        learn,
        network: eventprop_train::config::NetworkSettings {
            hidden: vec![40],
            ..TrainConfig::preset(EngineKind::Exact).network.clone()
        },
        ..TrainConfig::preset(EngineKind::Exact)
    }
}

#[test]
fn tensors_follow_the_layout_and_leave_the_plain_weights_unchanged() {
    let plain = Trainer::new(TrainConfig {
        network: eventprop_train::config::NetworkSettings {
            hidden: vec![7, 5],
            ..small(Learn::default()).network.clone()
        },
        ..small(Learn::default())
    })
    .unwrap();
    let t = Trainer::new(TrainConfig {
        network: eventprop_train::config::NetworkSettings {
            hidden: vec![7, 5],
            ..small(ALL).network.clone()
        },
        ..small(ALL)
    })
    .unwrap();
    let spec = t.engine().spec();
    let l = spec.layout();
    let shapes: Vec<(usize, usize)> = t.weights().iter().map(|w| w.dim()).collect();
    // 5 → 7 → 5 → 3: 3 weight matrices, 2 recurrent, 3 delay matrices, 2 × 3 ln tau rows,
    // 3 threshold rows.
    let expected = vec![
        (7, 5),
        (5, 7),
        (3, 5),
        (7, 7),
        (5, 5),
        (7, 5),
        (5, 7),
        (3, 5),
        (1, 7),
        (1, 5),
        (1, 3),
        (1, 7),
        (1, 5),
        (1, 3),
        (1, 7),
        (1, 5),
        (1, 3),
    ];
    assert_eq!(shapes, expected);
    assert_eq!(
        (l.recurrent, l.delays, l.taus, l.threshold),
        (Some(3), Some(5), Some(8), Some(14))
    );
    assert_eq!(l.n_weights(), 5);
    // The feed-forward weights are drawn first from the same stream: unchanged.
    assert_eq!(t.weights()[..3], plain.weights()[..]);
    // Delays start at 0; ln tau and the threshold parameter at the config's values.
    assert!(t.weights()[5..8]
        .iter()
        .all(|d| d.iter().all(|&v| v == 0.0)));
    let c = &t.config();
    assert!(t.weights()[8].iter().all(|&v| v == c.network.tau_mem.ln()));
    assert!(t.weights()[10]
        .iter()
        .all(|&v| v == c.network.readout_tau_mem.ln()));
    assert!(t.weights()[11].iter().all(|&v| v == c.network.tau_syn.ln()));
    let floor = c.network.leak.max(c.network.reset);
    assert!(t.weights()[14]
        .iter()
        .all(|&v| ((floor + v.exp()) - c.network.threshold).abs() < 1e-15));
}

/// Central difference with Richardson extrapolation.
fn central(f: &dyn Fn(f64) -> f64, h: f64) -> f64 {
    let d = |h: f64| (f(h) - f(-h)) / (2.0 * h);
    (4.0 * d(0.5 * h) - d(h)) / 3.0
}

#[test]
fn engine_gradients_of_every_tensor_match_finite_differences() {
    let mut t = Trainer::new(TrainConfig {
        network: eventprop_train::config::NetworkSettings {
            hidden: vec![8],
            ..small(ALL).network.clone()
        },
        ..small(ALL)
    })
    .unwrap();
    // Move every tensor off its initial value so no gradient is trivially zero: delays
    // 0.2–1 ms (0.04–0.2 in units of tau_syn = 5 ms), ln tau and thresholds spread per
    // neuron, some recurrence.
    let l = t.engine().spec().layout();
    let mut k = 0.0_f64;
    for (i, w) in t.weights_mut().iter_mut().enumerate().skip(l.n_ff) {
        for v in w.iter_mut() {
            k += 1.0;
            let wobble = (k * 0.7).sin();
            *v = if Some(i) >= l.delays && Some(i) < l.taus {
                0.12 + 0.08 * wobble
            } else if Some(i) >= l.recurrent && Some(i) < l.delays {
                0.3 * wobble
            } else {
                *v + 0.1 * wobble
            };
        }
    }
    let set = &t.data().train;
    let inputs: Vec<&[_]> = set.samples[..16].iter().map(|s| s.as_slice()).collect();
    let labels = &set.labels[..16];
    let run = |w: &[Array2<f64>]| t.engine().run(w, &inputs, labels, Pass::Train).unwrap();
    let base = run(t.weights());
    let grads = base.grads.clone().unwrap();
    let (mut checked, mut agree) = (0, 0);
    for (i, w) in t.weights().iter().enumerate() {
        // A few entries of every tensor.
        for flat in (0..w.len()).step_by((w.len() / 3).max(1)) {
            let (r, c) = (flat / w.ncols(), flat % w.ncols());
            let v0 = w[[r, c]];
            let h = 1e-6 * v0.abs().max(1.0);
            let f = |e: f64| {
                let mut moved = t.weights().to_vec();
                moved[i][[r, c]] = v0 + e;
                run(&moved).loss_sum / inputs.len() as f64
            };
            let fd = central(&f, h);
            let g = grads[i][[r, c]];
            checked += 1;
            // Agreement to 1e-5 relative (a perturbation that changes a spike count makes
            // the loss jump; such entries are the only ones allowed to differ).
            if (g - fd).abs() <= 1e-5 * g.abs().max(fd.abs()) + 1e-9 {
                agree += 1;
            } else {
                eprintln!("tensor {i} [{r},{c}]: engine {g:e} vs finite difference {fd:e}");
            }
        }
    }
    eprintln!("{agree} of {checked} entries agree");
    assert!(
        agree * 10 >= checked * 9,
        "{agree} of {checked} entries agree"
    );
}

#[test]
fn learned_tensors_train_stay_in_range_and_resume_bit_identically() {
    let cfg = small(ALL);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.safetensors");
    let mut full = Trainer::new(cfg.clone()).unwrap();
    let init = full.weights().to_vec();
    full.run_epoch(&mut |_| {}).unwrap();
    full.run_epoch(&mut |_| {}).unwrap();
    let mut first = Trainer::new(cfg.clone()).unwrap();
    first.run_epoch(&mut |_| {}).unwrap();
    first.save(&path).unwrap();
    drop(first);
    let mut resumed = Trainer::load(&path).unwrap();
    assert_eq!(resumed.config().learn, ALL);
    resumed.run_epoch(&mut |_| {}).unwrap();
    assert_eq!(resumed.weights(), full.weights(), "bit-identical tensors");
    let l = full.engine().spec().layout();
    // Every kind of tensor moved, and the delays stayed >= 0.
    for (i, (a, b)) in full.weights().iter().zip(&init).enumerate() {
        assert_ne!(a, b, "tensor {i} trained");
    }
    let d = l.delays.unwrap();
    assert!(full.weights()[d..d + l.n_ff]
        .iter()
        .all(|t| t.iter().all(|&v| v >= 0.0)));
    // Chance is 1/3; measured 0.76 (train) / 0.85 (validation) after 2 epochs.
    assert!(full.history()[1].train_acc > 0.5, "{:?}", full.history()[1]);
}

#[test]
fn the_chip_engine_refuses_learned_extras() {
    let cfg = TrainConfig {
        learn: Learn {
            taus: true,
            ..Learn::default()
        },
        ..TrainConfig::preset(EngineKind::Chip)
    };
    let Err(err) = Trainer::new(cfg) else {
        panic!("chip: refused")
    };
    let err = err.to_string();
    assert!(err.contains("stepped and exact engines"), "{err}");
}

#[test]
fn stepped_learn_engine_matches_the_seed_engine_on_the_plain_network() {
    // With trained taus (at their initial values) but no recurrence or delays, the
    // stepped [learn] engine runs the same model as the seed-function engine: same loss,
    // predictions and weight gradients (to rounding: sums in another order), on both
    // readouts.
    use eventprop_train::loss::LossKind;
    for loss in [
        None,
        Some(LossKind::FirstSpike {
            tau0: 2e-6,
            tau1: 10e-6,
            alpha: 3e-3,
            silent_label_gamma: 0.0,
        }),
    ] {
        let base = TrainConfig {
            train_size: 64,
            val_size: 10,
            test_size: 10,
            ..TrainConfig::preset(EngineKind::Stepped)
        };
        let base = match loss {
            Some(l) => TrainConfig { loss: l, ..base },
            None => base,
        };
        let plain = Trainer::new(base.clone()).unwrap();
        let learn = Trainer::new(TrainConfig {
            learn: Learn {
                taus: true,
                threshold: true,
                ..Learn::default()
            },
            ..base
        })
        .unwrap();
        let n_ff = plain.weights().len();
        assert_eq!(plain.weights()[..], learn.weights()[..n_ff]);
        let set = &plain.data().train;
        let inputs: Vec<&[_]> = set.samples.iter().map(|s| s.as_slice()).collect();
        let a = plain
            .engine()
            .run(plain.weights(), &inputs, &set.labels, Pass::Train)
            .unwrap();
        let b = learn
            .engine()
            .run(learn.weights(), &inputs, &set.labels, Pass::Train)
            .unwrap();
        assert!((a.loss_sum - b.loss_sum).abs() <= 1e-12 * a.loss_sum.abs());
        assert_eq!(a.predictions, b.predictions);
        assert_eq!(a.hidden_spikes, b.hidden_spikes);
        let (ga, gb) = (a.grads.unwrap(), b.grads.unwrap());
        for (x, y) in ga.iter().zip(&gb[..n_ff]) {
            let scale = x.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
            assert!(scale > 0.0);
            assert!(
                x.iter().zip(y).all(|(p, q)| (p - q).abs() <= 1e-10 * scale),
                "{x} vs {y}"
            );
        }
        // The extra tensors have gradients too.
        assert!(gb[n_ff..].iter().all(|g| g.iter().any(|&v| v != 0.0)));
    }
}

#[test]
fn stepped_training_with_every_extra_learns_and_resumes() {
    let cfg = TrainConfig {
        train_size: 400,
        val_size: 100,
        test_size: 100,
        epochs: 2,
        learn: ALL,
        ..TrainConfig::preset(EngineKind::Stepped)
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.safetensors");
    let mut full = Trainer::new(cfg.clone()).unwrap();
    full.run_epoch(&mut |_| {}).unwrap();
    full.run_epoch(&mut |_| {}).unwrap();
    let mut first = Trainer::new(cfg).unwrap();
    first.run_epoch(&mut |_| {}).unwrap();
    first.save(&path).unwrap();
    let mut resumed = Trainer::load(&path).unwrap();
    resumed.run_epoch(&mut |_| {}).unwrap();
    assert_eq!(resumed.weights(), full.weights());
    eprintln!("{:?}", full.history()[1]);
    assert!(full.history()[1].train_acc > 0.5, "{:?}", full.history()[1]);
}

/// Checkpoint tensors are named by what they hold, and a checkpoint of the earlier naming
/// (every tensor `weight.{i}`, its Adam state `adam.m.{i}` / `adam.v.{i}`, `i` its index in
/// the layout) still loads to the same state.
#[test]
fn checkpoint_tensors_are_named_and_the_old_names_still_load() {
    use eventprop_train::checkpoint::{self, Checkpoint};
    let mut t = Trainer::new(TrainConfig {
        train_size: 100,
        network: eventprop_train::config::NetworkSettings {
            hidden: vec![6, 4],
            ..small(ALL).network.clone()
        },
        ..small(ALL)
    })
    .unwrap();
    t.run_epoch(&mut |_| {}).unwrap();
    let c = t.to_checkpoint();
    let mut names: Vec<&str> = c
        .tensors
        .keys()
        .map(String::as_str)
        .filter(|n| !n.starts_with("adam."))
        .collect();
    names.sort();
    // 3 weight matrices, 2 hidden layers, 3 spiking layers (the exact engine's output spikes)
    assert_eq!(
        names,
        [
            "delay.0",
            "delay.1",
            "delay.2",
            "log_tau_mem.0",
            "log_tau_mem.1",
            "log_tau_mem.2",
            "log_tau_syn.0",
            "log_tau_syn.1",
            "log_tau_syn.2",
            "recurrent.0",
            "recurrent.1",
            "threshold_param.0",
            "threshold_param.1",
            "threshold_param.2",
            "weight.0",
            "weight.1",
            "weight.2",
        ]
    );
    assert!(
        c.tensors.contains_key("adam.m.recurrent.1") && c.tensors.contains_key("adam.v.delay.2")
    );
    let spec_names = t.engine().spec().tensor_names();
    assert_eq!(spec_names.len(), t.weights().len());
    // The same checkpoint under the old names.
    let mut old = Checkpoint {
        metadata: c.metadata.clone(),
        ..Default::default()
    };
    for (i, name) in spec_names.iter().enumerate() {
        old.tensors
            .insert(format!("weight.{i}"), c.tensors[name].clone());
        for s in ["m", "v"] {
            old.tensors.insert(
                format!("adam.{s}.{i}"),
                c.tensors[&format!("adam.{s}.{name}")].clone(),
            );
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.safetensors");
    checkpoint::save(&path, &old).unwrap();
    let loaded = Trainer::load(&path).unwrap();
    assert_eq!(loaded.weights(), t.weights());
    // Saved again, it is the checkpoint of the new naming.
    assert_eq!(loaded.to_checkpoint(), c);
    // A missing tensor is named by its new name.
    old.tensors.remove("weight.4");
    checkpoint::save(&path, &old).unwrap();
    let err = Trainer::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("checkpoint has no tensor `recurrent.1`"),
        "{err}"
    );
}

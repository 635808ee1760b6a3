//! The one trainer over both engines: learning, determinism, resume, checkpoints, run
//! folders, and the layered configuration.

use eventprop_core::Discretization;
use eventprop_train::checkpoint::{self, Checkpoint};
use eventprop_train::loss::LossKind;
use eventprop_train::metrics::EpochMetrics;
use eventprop_train::trainer::{
    Event, BEST_CHECKPOINT, CLASS_MAP_PNG, CONFIG_TOML, LAST_CHECKPOINT, PLOT_PNG,
};
use eventprop_train::{EngineKind, Error, TrainConfig, Trainer};

fn small_stepped() -> TrainConfig {
    TrainConfig {
        train_size: 400,
        val_size: 200,
        test_size: 200,
        epochs: 2,
        batch_size: 25,
        ..TrainConfig::preset(EngineKind::Stepped)
    }
}

fn small_exact() -> TrainConfig {
    TrainConfig {
        train_size: 1600,
        val_size: 200,
        test_size: 200,
        epochs: 2,
        seed: 5,
        network: eventprop_train::config::NetworkSettings {
            hidden: vec![40],
            ..TrainConfig::preset(EngineKind::Exact).network.clone()
        },
        ..TrainConfig::preset(EngineKind::Exact)
    }
}

fn strip_time(h: &[EpochMetrics]) -> Vec<EpochMetrics> {
    h.iter()
        .cloned()
        .map(|mut m| {
            m.epoch_seconds = 0.0;
            m.train_seconds = 0.0;
            m
        })
        .collect()
}

#[test]
fn short_stepped_training_lowers_the_loss_and_beats_chance() {
    let mut t = Trainer::new(small_stepped()).unwrap();
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

#[test]
fn short_exact_training_beats_chance_and_counts_batches() {
    let mut t = Trainer::new(small_exact()).unwrap();
    let mut calls = 0;
    let m1 = t.run_epoch(&mut |_| calls += 1).unwrap();
    // 1600 samples in batches of 32.
    assert_eq!(calls, 50);
    let m2 = t.run_epoch(&mut |_| {}).unwrap();
    assert!(
        m2.train_loss < m1.train_loss,
        "{} -> {}",
        m1.train_loss,
        m2.train_loss
    );
    assert!(m2.train_acc > 0.5 && m2.val_acc.unwrap() > 0.5, "{m2:?}");
}

#[test]
fn same_seed_gives_identical_runs_and_another_seed_does_not() {
    for cfg in [small_stepped(), small_exact()] {
        let cfg = TrainConfig { epochs: 1, ..cfg };
        let run = |c: TrainConfig| {
            let mut t = Trainer::new(c).unwrap();
            t.run_epoch(&mut |_| {}).unwrap();
            t
        };
        let a = run(cfg.clone());
        let b = run(cfg.clone());
        assert_eq!(a.weights(), b.weights());
        assert_eq!(strip_time(a.history()), strip_time(b.history()));
        let c = run(TrainConfig { seed: 1, ..cfg });
        assert_ne!(a.weights(), c.weights());
    }
}

#[test]
fn resumed_run_equals_uninterrupted_run_on_both_engines() {
    for cfg in [small_stepped(), small_exact()] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        let mut full = Trainer::new(cfg.clone()).unwrap();
        full.run_epoch(&mut |_| {}).unwrap();
        full.run_epoch(&mut |_| {}).unwrap();

        let mut first = Trainer::new(cfg.clone()).unwrap();
        first.run_epoch(&mut |_| {}).unwrap();
        first.save(&path).unwrap();
        drop(first);
        let mut resumed = Trainer::load(&path).unwrap();
        assert_eq!(resumed.config(), &cfg);
        assert_eq!(resumed.engine().kind(), cfg.engine);
        assert_eq!(resumed.epochs_done(), 1);
        resumed.run_epoch(&mut |_| {}).unwrap();
        assert!(resumed.finished());
        assert_eq!(
            resumed.weights(),
            full.weights(),
            "{}: bit-identical weights",
            cfg.engine
        );
        assert_eq!(resumed.adam(), full.adam(), "bit-identical optimizer state");
        assert_eq!(strip_time(resumed.history()), strip_time(full.history()));
    }
}

#[test]
fn run_writes_the_folder_and_the_checkpoints_evaluate_to_the_recorded_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Trainer::new(small_exact()).unwrap();
    let (mut batches, mut epochs, mut warnings) = (0, 0, 0);
    t.run(dir.path(), &mut |e| match e {
        Event::Batch(_) => batches += 1,
        Event::Epoch(_) => epochs += 1,
        Event::Warning(_) => warnings += 1,
    })
    .unwrap();
    assert_eq!((batches, epochs, warnings), (100, 2, 0));
    for f in [
        CONFIG_TOML,
        LAST_CHECKPOINT,
        BEST_CHECKPOINT,
        PLOT_PNG,
        CLASS_MAP_PNG,
        "metrics.json",
        "metrics.csv",
    ] {
        assert!(dir.path().join(f).is_file(), "{f}");
    }
    let last = Trainer::load(&dir.path().join(LAST_CHECKPOINT)).unwrap();
    let e = last.evaluate(&last.data().test).unwrap();
    assert_eq!(Some(e.accuracy), t.history()[1].test_acc);
    assert_eq!(Some(e.loss), t.history()[1].test_loss);
    assert!(e.silent_output_fraction.is_some());
    // The best checkpoint is the epoch with the best validation accuracy.
    let best = Trainer::load(&dir.path().join(BEST_CHECKPOINT)).unwrap();
    let vals: Vec<f64> = t.history().iter().map(|m| m.val_acc.unwrap()).collect();
    let want = if vals[1] > vals[0] { 2 } else { 1 };
    assert_eq!(best.epochs_done(), want);
    let cfg = TrainConfig::from_toml_file(&dir.path().join(CONFIG_TOML)).unwrap();
    assert_eq!(cfg, small_exact());
}

#[test]
fn corrupt_checkpoints_and_configs_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("c.safetensors");
    let err = Trainer::load(&ck).unwrap_err();
    assert!(matches!(err, Error::Io { .. }) && std::error::Error::source(&err).is_some());
    std::fs::write(&ck, b"not a checkpoint").unwrap();
    assert!(matches!(Trainer::load(&ck), Err(Error::Format { .. })));
    // A valid safetensors file without the training metadata.
    let c = Checkpoint {
        metadata: "{}".into(),
        ..Default::default()
    };
    checkpoint::save(&ck, &c).unwrap();
    let err = Trainer::load(&ck).unwrap_err();
    assert!(matches!(err, Error::Format { .. }), "{err}");
    // The exact format of eventprop 0.1 is named in the message.
    let c = Checkpoint {
        metadata: r#"{"format":"eventprop-exact-yinyang/1"}"#.into(),
        ..Default::default()
    };
    checkpoint::save(&ck, &c).unwrap();
    let err = Trainer::load(&ck).unwrap_err().to_string();
    assert!(
        err.contains("eventprop-exact-yinyang/1") && err.contains("eventprop-train/2"),
        "{err}"
    );
    // A non-finite weight is refused on load.
    let t = Trainer::new(TrainConfig {
        epochs: 1,
        ..small_stepped()
    })
    .unwrap();
    let mut c = t.to_checkpoint();
    if let Some(w) = c.tensors.get_mut("weight.1") {
        w.data = eventprop_train::checkpoint::TensorData::F64(
            std::iter::once(f64::INFINITY)
                .chain(std::iter::repeat_n(0.0, 359))
                .collect(),
        );
    }
    checkpoint::save(&ck, &c).unwrap();
    let err = Trainer::load(&ck).unwrap_err().to_string();
    assert!(
        err.contains("weight.1: expected finite values, got inf"),
        "{err}"
    );
    // A non-finite or negative Adam moment is refused on load too (it used to surface as a
    // diverged training step epochs after the resume).
    let mut t = Trainer::new(TrainConfig {
        epochs: 1,
        ..small_stepped()
    })
    .unwrap();
    t.run_epoch(&mut |_| {}).unwrap();
    let good = t.to_checkpoint();
    for (name, bad, expected) in [
        (
            "adam.m.weight.1",
            f64::NAN,
            "expected finite values, got NaN",
        ),
        (
            "adam.v.weight.0",
            -1.0,
            "expected finite values >= 0, got -1",
        ),
    ] {
        let mut c = good.clone();
        let tensor = c.tensors.get_mut(name).expect("the Adam moment is stored");
        let mut v = tensor.data.to_f64();
        v[0] = bad;
        tensor.data = eventprop_train::checkpoint::TensorData::F64(v);
        checkpoint::save(&ck, &c).unwrap();
        let err = Trainer::load(&ck).unwrap_err().to_string();
        assert!(err.contains(&format!("{name}: {expected}")), "{err}");
    }

    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "lr = 0.01\nno_such_key = 3\n").unwrap();
    let err = TrainConfig::from_toml_file(&cfg).unwrap_err();
    assert!(
        err.to_string().contains("unknown key `no_such_key`"),
        "{err}"
    );
    std::fs::write(&cfg, "lr = \"fast\"\n").unwrap();
    assert!(matches!(
        TrainConfig::from_toml_file(&cfg),
        Err(Error::Config { .. })
    ));
    std::fs::write(&cfg, "lr = [\n").unwrap();
    let err = TrainConfig::from_toml_file(&cfg).unwrap_err().to_string();
    assert!(
        err.contains("invalid TOML") && err.contains("line"),
        "{err}"
    );
    std::fs::write(&cfg, "lr = -1.0\n").unwrap();
    let c = TrainConfig::from_toml_file(&cfg).unwrap();
    assert!(c
        .validate()
        .unwrap_err()
        .to_string()
        .starts_with("optim.lr:"));
    std::fs::write(&cfg, "hidden = [120, 0]\n").unwrap();
    let c = TrainConfig::from_toml_file(&cfg).unwrap();
    assert!(c.validate().unwrap_err().to_string().starts_with("hidden:"));
    std::fs::write(&cfg, "eps = 0.0\n").unwrap();
    let c = TrainConfig::from_toml_file(&cfg).unwrap();
    assert!(c
        .validate()
        .unwrap_err()
        .to_string()
        .starts_with("optim.eps:"));
}

#[test]
fn nested_tables_may_be_partial_and_unknown_nested_keys_are_named() {
    let layer = |s: &str| -> toml::Table { s.parse().unwrap() };
    // A partial nested table keeps the other keys of the preset.
    let c = TrainConfig::layered(&[("f", layer("[encoding]\nt_sim = 40e-6\n"))]).unwrap();
    assert_eq!(c.encoding.t_sim, 40e-6);
    assert_eq!(c.encoding.dt, TrainConfig::default().encoding.dt);
    // A typo inside a nested table is an error naming its path.
    let e = TrainConfig::layered(&[("f", layer("[encoding]\nfoo = 1\n"))]).unwrap_err();
    assert!(
        e.to_string().starts_with("f: unknown key `encoding.foo`"),
        "{e}"
    );
    let e = TrainConfig::layered(&[("f", layer("engine = \"exact\"\n[exact]\ngrazing = 1\n"))])
        .unwrap_err();
    assert!(e.to_string().contains("`exact.grazing`"), "{e}");
    // The engine key chooses the preset that the layers are laid over.
    let c = TrainConfig::layered(&[("f", layer("engine = \"exact\"\nepochs = 3\n"))]).unwrap();
    assert_eq!(
        c,
        TrainConfig {
            epochs: 3,
            ..TrainConfig::preset(EngineKind::Exact)
        }
    );
    // A later layer's engine wins; dotted keys (as the CLI's flags) address nested tables.
    let flags =
        layer("engine = \"stepped\"\n\"loss.kind\" = \"first_spike\"\n\"loss.alpha\" = 0.5\n");
    let c =
        TrainConfig::layered(&[("f", layer("engine = \"exact\"\n")), ("flags", flags)]).unwrap();
    assert_eq!(c.engine, EngineKind::Stepped);
    // A new loss kind starts from that kind's defaults for the engine.
    assert_eq!(
        c.loss,
        LossKind::FirstSpike {
            tau0: 1e-6,
            tau1: 2e-5,
            alpha: 0.5,
            silent_label_gamma: 0.0
        }
    );
    let e = TrainConfig::layered(&[("flags", layer("engine = \"loihi\"\n"))]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "flags: engine: expected one of `stepped`, `exact`, `chip`, got `loihi`"
    );
}

#[test]
fn engines_refuse_what_they_do_not_have() {
    let c = TrainConfig {
        loss: LossKind::MaxOverTime { reg: 4e-4 },
        ..small_exact()
    };
    assert!(c.check().unwrap_err().to_string().starts_with("loss.kind:"));
    let c = TrainConfig {
        stepped: eventprop_train::config::SteppedSettings {
            rate_reg: 1e-3,
            ..small_exact().stepped
        },
        ..small_exact()
    };
    assert!(c
        .check()
        .unwrap_err()
        .to_string()
        .starts_with("stepped.rate_reg:"));
    let c = TrainConfig {
        network: eventprop_train::config::NetworkSettings {
            reset: 2.0,
            ..small_exact().network.clone()
        },
        ..small_exact()
    };
    assert!(c
        .check()
        .unwrap_err()
        .to_string()
        .starts_with("network.reset:"));
    let c = TrainConfig {
        loss: LossKind::FirstSpike {
            tau0: 1e-6,
            tau1: 2e-5,
            alpha: 0.0,
            silent_label_gamma: 1.0,
        },
        ..small_stepped()
    };
    assert!(c
        .check()
        .unwrap_err()
        .to_string()
        .starts_with("loss.silent_label_gamma:"));
    // The exact engine runs any number of hidden layers.
    let c = TrainConfig {
        epochs: 1,
        network: eventprop_train::config::NetworkSettings {
            hidden: vec![20, 10],
            ..small_exact().network.clone()
        },
        ..small_exact()
    };
    let mut t = Trainer::new(c).unwrap();
    assert_eq!(t.weights().len(), 3);
    assert!(t.run_epoch(&mut |_| {}).unwrap().train_loss.is_finite());
}

#[test]
fn memory_estimate_follows_the_measured_model_and_refuses_oversized_runs() {
    // Stepped default (fused path): 38 steps × max(50, 1000) samples × (48 B × 3 outputs
    // + 12 B × 120 hidden), + 32 B × 960 weights + 200 B × 7000 samples.
    let c = TrainConfig::default();
    let want = 38.0 * 1000.0 * (48.0 * 3.0 + 12.0 * 120.0) + 32.0 * 960.0 + 200.0 * 7000.0;
    assert_eq!(c.memory_estimate().bytes, want);
    c.validate().unwrap();
    let mut big = c.clone();
    big.encoding.t_sim = 1.0;
    let e = big.validate().unwrap_err().to_string();
    // 1e6 steps × 1000 × 1584 B = 1.584e12 B = 1475.2 GiB.
    assert!(
        e.starts_with(
            "memory: expected an estimated peak below memory_limit_gib = 16 GiB, got 1475.2 GiB"
        ),
        "{e}"
    );
    // With delays the stepped layers are dense: 8 B × 38 × max(6 × 50, 4 × 1000) × 128
    // neurons (the measured dense model), plus the feed-forward weights' 32 B each.
    let mut dense = c.clone();
    dense.learn.delays = true;
    let dense_want = 8.0 * 38.0 * 4000.0 * 128.0 + 32.0 * 960.0 + 200.0 * 7000.0;
    assert_eq!(dense.memory_estimate().bytes, dense_want);
    // Trained taus and thresholds with the integrator readout run on the fused path: its
    // model, as without them.
    let mut fused = c.clone();
    fused.learn.taus = true;
    fused.learn.threshold = true;
    assert_eq!(fused.memory_estimate().bytes, want);
    big.memory_limit_gib = 5000.0;
    big.validate().unwrap();
    // The exact engine's estimate does not depend on the window.
    let mut ex = TrainConfig::preset(EngineKind::Exact);
    let before = ex.memory_estimate().bytes;
    ex.encoding.t_sim = 600.0;
    assert_eq!(ex.memory_estimate().bytes, before);
}

#[test]
fn toml_round_trip_of_the_config() {
    for base in [
        TrainConfig::preset(EngineKind::Stepped),
        TrainConfig::preset(EngineKind::Exact),
    ] {
        let c = TrainConfig {
            optim: eventprop_train::config::OptimSettings {
                weight_clip: Some(3.0),
                ..base.optim.clone()
            },
            network: eventprop_train::config::NetworkSettings {
                hidden: vec![50, 40],
                ..base.network.clone()
            },
            ..base
        };
        let text = toml::to_string(&c).unwrap();
        let back = TrainConfig::layered(&[("text", text.parse().unwrap())]).unwrap();
        assert_eq!(back, c);
    }
}

#[test]
fn seed_example_config_file_holds_the_spec_values() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/seed_example.toml");
    let c = TrainConfig::from_toml_file(&path).unwrap();
    c.validate().unwrap();
    // docs/spec.md §5 values.
    let want = TrainConfig {
        optim: eventprop_train::config::OptimSettings {
            lr: 2e-3,
            lr_step: 10,
            lr_gamma: 0.9,
            ..TrainConfig::default().optim.clone()
        },
        network: eventprop_train::config::NetworkSettings {
            tau_mem: 6e-6,
            tau_syn: 6e-6,
            hidden_init_std: 0.25,
            ..TrainConfig::default().network.clone()
        },
        stepped: eventprop_train::config::SteppedSettings {
            discretization: Discretization::Seed,
            ..TrainConfig::default().stepped
        },
        ..TrainConfig::default()
    };
    assert_eq!(c, want);
}

#[test]
fn a_stepped_checkpoint_of_eventprop_0_1_still_loads() {
    // The metadata layout of format `eventprop-train/yinyang/1`: the flat stepped config
    // as JSON (with `null` for an absent weight clip), no `engine`.
    let t = Trainer::new(TrainConfig {
        epochs: 1,
        ..small_stepped()
    })
    .unwrap();
    let mut c = t.to_checkpoint();
    let mut meta: serde_json::Value = serde_json::from_str(&c.metadata).unwrap();
    meta["format"] = "eventprop-train/yinyang/1".into();
    let cfg = meta["config"].as_object_mut().unwrap();
    cfg.remove("engine");
    cfg.remove("exact");
    cfg.insert("weight_clip".into(), serde_json::Value::Null);
    meta.as_object_mut().unwrap().remove("engine");
    c.metadata = meta.to_string();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("old.safetensors");
    checkpoint::save(&p, &c).unwrap();
    let back = Trainer::load(&p).unwrap();
    assert_eq!(back.config(), t.config());
    assert_eq!(back.weights(), t.weights());
}

#[test]
fn a_run_folder_is_resumable_before_the_first_epoch_ends() {
    // A run killed during its first epoch leaves a checkpoint of the initial state (formerly
    // metrics without a checkpoint: neither `--out` nor `--resume` accepted the folder).
    let dir = tempfile::tempdir().unwrap();
    let cfg = TrainConfig {
        epochs: 1,
        ..small_stepped()
    };
    let mut t = Trainer::new(cfg.clone()).unwrap();
    let mut checked = false;
    t.run(dir.path(), &mut |e| {
        if let Event::Batch(p) = e {
            if p.batch == 1 {
                let early = Trainer::load(&dir.path().join(LAST_CHECKPOINT)).unwrap();
                assert_eq!(early.epochs_done(), 0);
                assert_eq!(early.config(), &cfg);
                checked = true;
            }
        }
    })
    .unwrap();
    assert!(checked);
}

#[test]
fn a_plot_that_cannot_be_written_is_a_warning_and_training_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the plot should go: the rename onto it fails.
    std::fs::create_dir(dir.path().join(PLOT_PNG)).unwrap();
    std::fs::write(dir.path().join(PLOT_PNG).join("x"), b"x").unwrap();
    // A stale temporary file of a killed writer (another process id) is cleaned up.
    std::fs::write(dir.path().join(".metrics.json.tmp.999999999"), b"x").unwrap();
    let mut t = Trainer::new(TrainConfig {
        epochs: 2,
        ..small_stepped()
    })
    .unwrap();
    let mut warnings = Vec::new();
    t.run(dir.path(), &mut |e| {
        if let Event::Warning(w) = e {
            warnings.push(w);
        }
    })
    .unwrap();
    assert_eq!(t.epochs_done(), 2);
    // One warning per write: before the first epoch and after each epoch.
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    let w = &warnings[0];
    assert!(
        w.starts_with("plot not written: ") && w.contains(PLOT_PNG),
        "{w}"
    );
    // The OS error (the error's source) is in the message, on one line.
    assert!(
        w.contains("directory") && w.ends_with("; training goes on"),
        "{w}"
    );
    assert!(!w.contains('\n'), "{w}");
    assert!(!dir.path().join(".metrics.json.tmp.999999999").exists());
}

/// Weight decay, cosine and plateau schedules with warm-up: an interrupted run resumed
/// from its checkpoint repeats the uninterrupted one bit for bit; weight decay and each
/// schedule change the run, and the defaults spelled out change nothing.
#[test]
fn schedules_and_weight_decay_resume_bit_identically() {
    use eventprop_train::optim::LrSchedule;
    let with = |schedule: LrSchedule, warmup: usize, wd: f64| {
        let mut c = small_stepped();
        c.epochs = 4;
        c.optim.lr_schedule = schedule;
        c.optim.warmup_epochs = warmup;
        c.optim.weight_decay = wd;
        c.optim.lr_step = 1;
        c.optim.lr_gamma = 0.5;
        c
    };
    let run = |cfg: &TrainConfig| {
        let mut t = Trainer::new(cfg.clone()).unwrap();
        while !t.finished() {
            t.run_epoch(&mut |_| {}).unwrap();
        }
        t
    };
    let plain = run(&with(LrSchedule::Step, 0, 0.0));
    let mut base = small_stepped();
    base.epochs = 4;
    base.optim.lr_step = 1;
    base.optim.lr_gamma = 0.5;
    assert_eq!(
        plain.weights(),
        run(&base).weights(),
        "defaults spelled out"
    );
    for cfg in [
        with(LrSchedule::Cosine, 1, 0.0),
        with(LrSchedule::Plateau, 1, 0.0),
        with(LrSchedule::Step, 0, 0.5),
    ] {
        let full = run(&cfg);
        assert_ne!(full.weights(), plain.weights(), "{:?}", cfg.optim);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        let mut first = Trainer::new(cfg.clone()).unwrap();
        first.run_epoch(&mut |_| {}).unwrap();
        first.run_epoch(&mut |_| {}).unwrap();
        first.save(&path).unwrap();
        let mut resumed = Trainer::load(&path).unwrap();
        assert_eq!(resumed.config(), &cfg);
        while !resumed.finished() {
            resumed.run_epoch(&mut |_| {}).unwrap();
        }
        assert_eq!(resumed.weights(), full.weights(), "{:?}", cfg.optim);
        assert_eq!(strip_time(resumed.history()), strip_time(full.history()));
    }
    // Warm-up: the first epoch runs at lr / 2 (one warm-up epoch).
    let cos = run(&with(LrSchedule::Cosine, 1, 0.0));
    let lr = small_stepped().optim.lr;
    assert_eq!(cos.history()[0].lr, lr / 2.0);
    assert_eq!(cos.history()[1].lr, lr);
    assert!(cos.history()[3].lr < cos.history()[2].lr);
}

/// Early stopping: with a learning rate too small to change the validation accuracy,
/// `patience = 1` stops after the second epoch, and the run folder's files agree.
#[test]
fn early_stopping_ends_the_run_after_patience_epochs_without_improvement() {
    let mut cfg = small_stepped();
    cfg.epochs = 6;
    cfg.optim.lr = 1e-12;
    cfg.optim.patience = 1;
    let dir = tempfile::tempdir().unwrap();
    let mut t = Trainer::new(cfg).unwrap();
    t.run(dir.path(), &mut |_| {}).unwrap();
    assert_eq!(t.epochs_done(), 2);
    assert_eq!(t.stopped_early(), Some(1));
    assert!(!t.finished());
    // A resumed run stays stopped.
    let mut again = Trainer::load(&dir.path().join(LAST_CHECKPOINT)).unwrap();
    again.run(dir.path(), &mut |_| {}).unwrap();
    assert_eq!(again.epochs_done(), 2);
}

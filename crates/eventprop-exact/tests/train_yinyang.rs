//! The exact-mode Yin-Yang trainer on a small network: files, checkpoint round trip,
//! determinism, validation.

use eventprop_exact::train::{
    evaluate_checkpoint, load_checkpoint, train_yinyang, ExactTrainConfig, BEST_CHECKPOINT,
    LAST_CHECKPOINT, METRICS_CSV, METRICS_JSON, PLOT_PNG,
};

fn small() -> ExactTrainConfig {
    ExactTrainConfig {
        hidden: 20,
        epochs: 2,
        seed: 5,
        ..Default::default()
    }
}

#[test]
fn trains_writes_files_and_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let mut calls = 0;
    let history = train_yinyang(&small(), dir.path(), &mut |_| calls += 1).unwrap();
    assert_eq!(history.len(), 2);
    // 5000 training samples in batches of 32 → 157 batches per epoch, one callback each.
    assert_eq!(calls, 2 * 157);
    for f in [
        METRICS_JSON,
        METRICS_CSV,
        PLOT_PNG,
        LAST_CHECKPOINT,
        BEST_CHECKPOINT,
    ] {
        assert!(dir.path().join(f).is_file(), "{f}");
    }
    // Better than chance (1/3) after two epochs even with 20 hidden neurons.
    assert!(history[1].train_acc > 0.5, "{:?}", history[1]);
    let (cfg, net, h) = load_checkpoint(&dir.path().join(LAST_CHECKPOINT)).unwrap();
    assert_eq!(cfg, small());
    assert_eq!(h, history);
    assert_eq!(net.sizes(), vec![5, 20, 3]);
    // The last checkpoint re-evaluated on the test split gives the recorded test accuracy.
    let e = evaluate_checkpoint(&dir.path().join(LAST_CHECKPOINT)).unwrap();
    assert_eq!(Some(e.accuracy), history[1].test_acc);
    assert_eq!(Some(e.loss), history[1].test_loss);
}

#[test]
fn same_seed_same_weights() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cfg = ExactTrainConfig {
        epochs: 1,
        ..small()
    };
    let ha = train_yinyang(&cfg, a.path(), &mut |_| {}).unwrap();
    let hb = train_yinyang(&cfg, b.path(), &mut |_| {}).unwrap();
    assert_eq!(ha[0].train_loss, hb[0].train_loss);
    let (_, na, _) = load_checkpoint(&a.path().join(LAST_CHECKPOINT)).unwrap();
    let (_, nb, _) = load_checkpoint(&b.path().join(LAST_CHECKPOINT)).unwrap();
    assert_eq!(na.weights(), nb.weights());
}

#[test]
fn invalid_settings_and_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ExactTrainConfig {
        batch_size: 0,
        ..small()
    };
    let e = train_yinyang(&cfg, dir.path(), &mut |_| {}).unwrap_err();
    assert_eq!(e.to_string(), "batch_size: expected a value >= 1, got 0");
    let cfg = ExactTrainConfig {
        lr: -1.0,
        ..small()
    };
    assert!(train_yinyang(&cfg, dir.path(), &mut |_| {}).is_err());
    std::fs::write(dir.path().join("junk.safetensors"), b"junk").unwrap();
    let e = load_checkpoint(&dir.path().join("junk.safetensors")).unwrap_err();
    assert!(e.to_string().contains("junk.safetensors"), "{e}");
    assert!(load_checkpoint(&dir.path().join("missing.safetensors")).is_err());
}

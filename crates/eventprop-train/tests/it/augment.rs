//! Augmentation of event training data (`[augment]`): deterministic in the seed, different
//! per epoch, applied to training batches only, off by default, and old configs without
//! the table still load.

use std::path::Path;

use eventprop_train::config::Task;
use eventprop_train::files::write_events;
use eventprop_train::metrics::EpochMetrics;
use eventprop_train::timing::{timing_task, TimingTask};
use eventprop_train::{EngineKind, TrainConfig, Trainer};

/// A small timing task (as in `tests/events.rs`): 4 classes, 12 channels, 100 ms.
fn write_task(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let task = |samples, seed| TimingTask {
        samples,
        channels: 12,
        classes: 4,
        duration: 0.1,
        events_per_sample: 48,
        jitter: 2e-3,
        noise_rate: 0.0,
        task_seed: 7,
        seed,
    };
    let train = dir.join("train.npz");
    let test = dir.join("test.npz");
    write_events(&train, &timing_task(&task(200, 1)).unwrap()).unwrap();
    write_events(&test, &timing_task(&task(60, 2)).unwrap()).unwrap();
    (train, test)
}

fn config(train: &Path, test: &Path, augment: bool) -> TrainConfig {
    let mut c = TrainConfig::preset_for(Task::Events, EngineKind::Stepped);
    c.data.train = Some(train.to_path_buf());
    c.data.test = Some(test.to_path_buf());
    c.network.hidden = vec![32];
    c.batch_size = 16;
    c.optim.lr = 5e-3;
    c.network.hidden_init_std = 1.5;
    c.network.hidden_init_mean = 0.3;
    if augment {
        c.augment.time_shift = 5e-3;
        c.augment.channel_shift = 1;
        c.augment.stretch = 0.05;
        c.augment.blend = 0.5;
    }
    c
}

/// The metrics without the wall-clock fields.
fn timeless(mut m: EpochMetrics) -> EpochMetrics {
    m.epoch_seconds = 0.0;
    m.train_seconds = 0.0;
    m
}

#[test]
fn augmentation_is_off_by_default() {
    for &engine in EngineKind::ALL {
        assert!(TrainConfig::preset_for(Task::Events, engine)
            .augment
            .is_off());
        assert!(TrainConfig::preset(engine).augment.is_off());
    }
}

#[test]
fn augmented_training_is_deterministic_and_differs_per_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = write_task(dir.path());
    let run = |augment| {
        let mut t = Trainer::new(config(&train, &test, augment)).unwrap();
        (0..2)
            .map(|_| timeless(t.run_epoch(&mut |_| {}).unwrap()))
            .collect::<Vec<_>>()
    };
    let a = run(true);
    assert_eq!(a, run(true));
    let off = run(false);
    assert!(off.iter().all(|m| m.augment.is_none()));
    // The same initial weights and batches, other inputs: another training loss.
    assert_ne!(a[0].train_loss, off[0].train_loss);
    let (s1, s2) = (a[0].augment.unwrap(), a[1].augment.unwrap());
    // 10 % of 200 held out: 180 training samples per epoch, about half blended.
    assert_eq!((s1.samples, s2.samples), (180, 180));
    assert!((50..130).contains(&s1.blended), "{s1:?}");
    // Another epoch draws other augmentations.
    assert_ne!(s1, s2);
}

#[test]
fn evaluation_is_never_augmented() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = write_task(dir.path());
    let mut on = Trainer::new(config(&train, &test, true)).unwrap();
    let m = on.run_epoch(&mut |_| {}).unwrap();
    // The same weights in a run without augmentation evaluate to the epoch's metrics.
    let mut off = Trainer::new(config(&train, &test, false)).unwrap();
    off.set_weights(on.weights().to_vec()).unwrap();
    let val = off.evaluate(&off.data().validation).unwrap();
    let test = off.evaluate(&off.data().test).unwrap();
    assert_eq!(
        (m.val_loss, m.val_acc),
        (Some(val.loss), Some(val.accuracy))
    );
    assert_eq!(
        (m.test_loss, m.test_acc),
        (Some(test.loss), Some(test.accuracy))
    );
    assert_eq!(on.evaluate(&on.data().test).unwrap(), test);
}

#[test]
fn configs_without_the_table_load_and_values_are_checked() {
    // A config written before `[augment]` existed (no table): augmentation off.
    let mut old =
        toml::Table::try_from(TrainConfig::preset_for(Task::Events, EngineKind::Stepped)).unwrap();
    assert!(old.remove("augment").is_some());
    let c = TrainConfig::layered(&[("old.toml", old)]).unwrap();
    assert!(c.augment.is_off());
    // A partial table.
    let layer: toml::Table = "task = \"events\"\n[augment]\nblend = 0.25\n"
        .parse()
        .unwrap();
    let c = TrainConfig::layered(&[("new.toml", layer)]).unwrap();
    assert_eq!((c.augment.blend, c.augment.time_shift), (0.25, 0.0));
    let layer: toml::Table = "[augment]\nshift = 1\n".parse().unwrap();
    let err = TrainConfig::layered(&[("bad.toml", layer)]).unwrap_err();
    assert!(err.to_string().contains("augment.shift"), "{err}");
    // Out of range: refused before training, naming the key.
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = write_task(dir.path());
    let mut c = config(&train, &test, true);
    c.augment.blend = 2.0;
    let err = Trainer::new(c).unwrap_err().to_string();
    assert!(err.starts_with("augment.blend"), "{err}");
}

//! Training on event files (`task = "events"`): learning a timing-only task on both
//! engines, sizes and grid taken from the data, the validation hold-out, checkpoints, and
//! errors for data that do not fit the settings.

use std::path::Path;

use eventprop_train::config::Task;
use eventprop_train::files::write_events;
use eventprop_train::timing::{timing_task, TimingTask};
use eventprop_train::trainer::{CONFUSION_PNG, LAST_CHECKPOINT, RASTER_PNG};
use eventprop_train::{EngineKind, TrainConfig, Trainer};

/// A small timing task: 4 classes, 12 channels with 4 spikes each per sample, 100 ms
/// samples; train and test share the class templates (`task_seed`).
fn task(samples: usize, seed: u64) -> TimingTask {
    TimingTask {
        samples,
        channels: 12,
        classes: 4,
        duration: 0.1,
        events_per_sample: 48,
        jitter: 2e-3,
        noise_rate: 0.0,
        task_seed: 7,
        seed,
    }
}

fn write_task(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let train = dir.join("train.npz");
    let test = dir.join("test.npz");
    write_events(&train, &timing_task(&task(400, 1)).unwrap()).unwrap();
    write_events(&test, &timing_task(&task(100, 2)).unwrap()).unwrap();
    (train, test)
}

fn config(engine: EngineKind, train: &Path, test: &Path) -> TrainConfig {
    let mut c = TrainConfig::preset_for(Task::Events, engine);
    c.data.train = Some(train.to_path_buf());
    c.data.test = Some(test.to_path_buf());
    c.network.hidden = vec![64];
    c.epochs = 3;
    c.batch_size = 16;
    c.optim.lr = 5e-3;
    // 48 input events per 100 ms (vs ~5000 per second in the preset's SHD-like setting):
    // larger initial weights so that the hidden layer fires.
    c.network.hidden_init_std = 1.5;
    c.network.hidden_init_mean = 0.3;
    c
}

#[test]
fn sizes_grid_and_validation_come_from_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = write_task(dir.path());
    let t = Trainer::new(config(EngineKind::Stepped, &train, &test)).unwrap();
    let ev = &t.config().events;
    assert_eq!(ev.channels, Some(12));
    assert_eq!(ev.classes, Some(4));
    // Events lie in [0, 0.1 s): the last one's step is at most 100, so t_max <= 101 ms,
    // and t_max covers every event.
    let last = t
        .data()
        .train
        .samples
        .iter()
        .chain(&t.data().validation.samples)
        .chain(&t.data().test.samples)
        .flatten()
        .map(|e| e.time)
        .fold(0.0, f64::max);
    let t_max = ev.t_max.unwrap();
    assert!(t_max <= 0.101 + 1e-12 && (last / 1e-3).round() < (t_max / 1e-3).round());
    // val_fraction 0.1 of 400.
    assert_eq!((t.data().train.len(), t.data().validation.len()), (360, 40));
    assert_eq!(t.data().test.len(), 100);
    assert_eq!(t.engine().spec().n_in, 12);
    assert_eq!(t.engine().spec().n_out, 4);
}

/// The event presets' automatic epoch count (`epochs = 0`): `max(20, ceil(min_steps /
/// batches per epoch))` from the training set the run holds (after the validation
/// hold-out), stored in the config (so a resumed run keeps it); a given count is kept.
#[test]
fn automatic_epochs_come_from_the_training_set() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = write_task(dir.path());
    let mut c = config(EngineKind::Stepped, &train, &test);
    c.epochs = 0;
    assert_eq!(c.min_steps, 1500, "the event preset's");
    // 360 training samples in batches of 16: 23 batches, 1500 / 23 = 65.2 -> 66 epochs
    let t = Trainer::new(c.clone()).unwrap();
    assert_eq!(t.config().epochs, 66);
    let line = t.epochs_report().unwrap();
    assert!(
        line.starts_with("66 (automatic: at least 1500 optimiser steps of 23 per epoch"),
        "{line}"
    );
    // few steps needed (as for a large set): 20 epochs at least
    c.min_steps = 100;
    let t = Trainer::new(c.clone()).unwrap();
    assert_eq!(t.config().epochs, 20);
    // given: as given, nothing reported
    c.epochs = 3;
    let t = Trainer::new(c).unwrap();
    assert_eq!((t.config().epochs, t.epochs_report()), (3, None));
    let mut y = TrainConfig::preset(EngineKind::Stepped);
    assert_eq!((y.epochs, y.min_steps), (10, 0), "Yin-Yang keeps its count");
    assert_eq!(y.resolve_epochs(5000), None);
}

#[test]
fn stepped_engine_learns_the_timing_task() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = write_task(dir.path());
    let mut t = Trainer::new(config(EngineKind::Stepped, &train, &test)).unwrap();
    let mut last = None;
    for _ in 0..3 {
        last = Some(t.run_epoch(&mut |_| {}).unwrap());
    }
    let m = last.unwrap();
    // Chance is 1/4; spike counts per channel are equal in every class, so only timing
    // separates them.
    assert!(m.test_acc.unwrap() > 0.6, "{m:?}");
}

#[test]
fn exact_engine_trains_on_event_files() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = write_task(dir.path());
    let mut c = config(EngineKind::Exact, &train, &test);
    c.epochs = 2;
    let mut t = Trainer::new(c).unwrap();
    let m1 = t.run_epoch(&mut |_| {}).unwrap();
    let m2 = t.run_epoch(&mut |_| {}).unwrap();
    assert!(m1.train_loss.is_finite() && m2.train_loss.is_finite());
    // Chance is 1/4 (measured 0.65 validation accuracy after 2 epochs with these settings).
    assert!(m2.val_acc.unwrap() > 0.4, "{m2:?}");
}

#[test]
fn a_run_folder_resumes_and_its_checkpoint_evaluates_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = write_task(dir.path());
    let mut c = config(EngineKind::Stepped, &train, &test);
    c.epochs = 1;
    let mut t = Trainer::new(c).unwrap();
    let out = dir.path().join("run");
    let mut warnings = Vec::new();
    t.run(&out, &mut |e| {
        if let eventprop_train::trainer::Event::Warning(w) = e {
            warnings.push(w);
        }
    })
    .unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    // The figures of an event run, after the last epoch.
    for f in [RASTER_PNG, CONFUSION_PNG] {
        let bytes = std::fs::read(out.join(f)).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{f}");
    }
    let loaded = Trainer::load(&out.join(LAST_CHECKPOINT)).unwrap();
    assert_eq!(loaded.config(), t.config());
    let a = t.evaluate(&t.data().test).unwrap();
    let b = loaded.evaluate(&loaded.data().test).unwrap();
    assert_eq!(a, b);
    // The resolved sizes are stored: evaluating a file needs no data of the run.
    let e = Trainer::load_for_eval(&out.join(LAST_CHECKPOINT)).unwrap();
    assert_eq!(e.config().events.channels, Some(12));
}

#[test]
fn data_that_do_not_fit_the_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = write_task(dir.path());
    let mut c = config(EngineKind::Stepped, &train, &test);
    c.events.channels = Some(10);
    let err = Trainer::new(c).unwrap_err().to_string();
    assert!(
        err.contains("train.npz") && err.contains("`units`") && err.contains("0..10"),
        "{err}"
    );
    let mut c = config(EngineKind::Stepped, &train, &test);
    c.events.classes = Some(3);
    let err = Trainer::new(c).unwrap_err().to_string();
    assert!(err.contains("`labels`") && err.contains("0..3"), "{err}");
    let mut c = config(EngineKind::Stepped, &train, &test);
    c.data.train = None;
    let err = Trainer::new(c).unwrap_err().to_string();
    assert!(err.contains("data.train"), "{err}");
    let mut c = config(EngineKind::Stepped, &train, &test);
    c.events.val_fraction = 1.0;
    let err = Trainer::new(c).unwrap_err().to_string();
    assert!(err.contains("events.val_fraction"), "{err}");
}

//! The delay-line input (`events.delay_line`): a network with `C × copies` inputs fed the
//! delayed copies of each sample. Checked against an independent expansion of the data
//! fed to a plain network of that width (both engines), for determinism with
//! augmentation, and for its config checks.

use std::path::Path;

use eventprop_train::config::Task;
use eventprop_train::data::Spike;
use eventprop_train::engine::Pass;
use eventprop_train::files::write_events;
use eventprop_train::timing::{timing_task, TimingTask};
use eventprop_train::{EngineKind, TrainConfig, Trainer};

const CHANNELS: usize = 12;
const COPIES: usize = 3;
const SPACING: f64 = 0.01;

fn write_task(dir: &Path) -> std::path::PathBuf {
    let task = TimingTask {
        samples: 64,
        channels: CHANNELS,
        classes: 4,
        duration: 0.05,
        events_per_sample: 48,
        jitter: 2e-3,
        noise_rate: 0.0,
        task_seed: 7,
        seed: 1,
    };
    let train = dir.join("train.npz");
    write_events(&train, &timing_task(&task).unwrap()).unwrap();
    train
}

fn config(train: &Path, engine: EngineKind) -> TrainConfig {
    let mut c = TrainConfig::preset_for(Task::Events, engine);
    c.data.train = Some(train.to_path_buf());
    c.network.hidden = vec![16];
    c.batch_size = 16;
    c.epochs = 1;
    c.events.delay_line = COPIES;
    c.events.delay_line_spacing = SPACING;
    c
}

/// The expansion written out independently of the library's: copy `k` of channel `c` is
/// input `k C + c` at `t + k × spacing`, kept while before the window's end.
fn expand(x: &[Spike], t_sim: f64) -> Vec<Spike> {
    let mut out: Vec<Spike> = Vec::new();
    for k in 0..COPIES {
        for s in x {
            let t = s.time + k as f64 * SPACING;
            if k == 0 || t < t_sim {
                out.push(Spike {
                    time: t,
                    neuron: s.neuron + (k * CHANNELS) as u32,
                });
            }
        }
    }
    out.sort_by(|a, b| a.time.total_cmp(&b.time).then(a.neuron.cmp(&b.neuron)));
    out
}

#[test]
fn a_delay_line_network_equals_a_wide_network_on_the_expanded_data() {
    let dir = tempfile::tempdir().unwrap();
    let train = write_task(dir.path());
    for engine in [EngineKind::Stepped, EngineKind::Exact] {
        let t = Trainer::new(config(&train, engine)).unwrap();
        let cfg = t.config().clone();
        assert_eq!(t.engine().spec().n_in, CHANNELS * COPIES, "{engine}");
        // The same network without a delay line, `C × copies` channels wide.
        let mut wide = cfg.clone();
        wide.events.delay_line = 1;
        wide.events.channels = Some(CHANNELS * COPIES);
        let plain = wide.engine().unwrap();
        assert_eq!(plain.spec(), t.engine().spec(), "{engine}");
        let set = &t.data().train;
        let raw: Vec<&[Spike]> = set.samples[..16].iter().map(Vec::as_slice).collect();
        let expanded: Vec<Vec<Spike>> = raw.iter().map(|x| expand(x, cfg.t_sim())).collect();
        let views: Vec<&[Spike]> = expanded.iter().map(Vec::as_slice).collect();
        let labels = &set.labels[..16];
        let a = t
            .engine()
            .run(t.weights(), &raw, labels, Pass::Train)
            .unwrap();
        let b = plain.run(t.weights(), &views, labels, Pass::Train).unwrap();
        assert_eq!(
            a, b,
            "{engine}: outcome on the raw samples vs the expanded ones"
        );
        assert!(
            a.hidden_spikes > 0.0,
            "{engine}: the test needs a spiking network"
        );
        assert_eq!(
            t.engine().hidden_spikes(t.weights(), raw[0]).unwrap(),
            plain.hidden_spikes(t.weights(), views[0]).unwrap(),
            "{engine}"
        );
    }
}

#[test]
fn delay_line_training_is_deterministic_with_augmentation() {
    let dir = tempfile::tempdir().unwrap();
    let train = write_task(dir.path());
    let run = || {
        let mut c = config(&train, EngineKind::Stepped);
        c.augment.channel_shift = 2;
        c.augment.time_shift = 5e-3;
        let mut t = Trainer::new(c).unwrap();
        let mut m = t.run_epoch(&mut |_| {}).unwrap();
        m.epoch_seconds = 0.0;
        m.train_seconds = 0.0;
        (m, t.weights().to_vec())
    };
    let (a, b) = (run(), run());
    assert_eq!(a, b);
    let stats = a.0.augment.expect("augmentation ran");
    assert_eq!(stats, b.0.augment.unwrap());
}

#[test]
fn delay_line_settings_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let train = write_task(dir.path());
    for (copies, spacing, key) in [
        (0, 0.01, "events.delay_line"),
        (65, 0.01, "events.delay_line"),
        (2, 0.0, "events.delay_line_spacing"),
        (2, f64::NAN, "events.delay_line_spacing"),
    ] {
        let mut c = config(&train, EngineKind::Stepped);
        c.events.delay_line = copies;
        c.events.delay_line_spacing = spacing;
        let err = Trainer::new(c).unwrap_err().to_string();
        assert!(err.contains(key), "{copies} × {spacing}: {err}");
    }
    // The keys are written to a run's config file, and a file without them (written
    // before they existed) loads with the delay line off.
    let c = config(&train, EngineKind::Stepped);
    let text = eventprop_train::trainer::config_toml(&c);
    assert!(text.contains("delay_line = 3"), "{text}");
    let old: toml::Table = text
        .lines()
        .filter(|l| !l.starts_with("delay_line"))
        .collect::<Vec<_>>()
        .join("\n")
        .parse()
        .unwrap();
    let back = TrainConfig::layered(&[("old", old)]).unwrap();
    assert_eq!(back.events.delay_line, 1);
    assert_eq!(back.events.delay_line_spacing, 0.03);
}

#[test]
fn a_delay_line_network_is_not_exported_to_nir() {
    let dir = tempfile::tempdir().unwrap();
    let train = write_task(dir.path());
    let t = Trainer::new(config(&train, EngineKind::Stepped)).unwrap();
    let err = eventprop_train::nir::to_graph(&t).unwrap_err().to_string();
    assert!(
        err.starts_with("events.delay_line: expected 1 for a NIR export"),
        "{err}"
    );
}

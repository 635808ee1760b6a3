//! Batched hidden spike counts (`Engine::hidden_counts`, what the data-calibrated
//! initialisation and the activity watchdog measure) on every engine kind: the stepped
//! engine on its fused path (plain, and recurrent with trained hidden thresholds) and on
//! the seed path, the stepped engine's dense layers (trained taus and delays), the exact
//! engine, the mock chip, and the delay-line wrapper around the stepped and the exact
//! engines.
//!
//! Provenance: the expected counts are those of `Engine::hidden_spikes` run one sample at
//! a time (the path the calibration and the watchdog took before they were batched),
//! computed in the same test; the expected calibration is that of the same engine behind a
//! wrapper that hides its batched counts (so the calibration takes the per-sample path).

use std::path::{Path, PathBuf};

use eventprop_train::chip::ChipKind;
use eventprop_train::config::Task;
use eventprop_train::data::Spike;
use eventprop_train::engine::stepped::{SteppedEngine, SteppedPath};
use eventprop_train::engine::{self, BatchOutcome, Engine, EngineKind, Pass};
use eventprop_train::files::write_events;
use eventprop_train::init::InitRule;
use eventprop_train::loss::BatchCounts;
use eventprop_train::model::{Learn, NetworkSpec};
use eventprop_train::timing::{timing_task, TimingTask};
use eventprop_train::{Result, TrainConfig, Trainer};
use ndarray::Array2;

/// A small timing task: 12 channels, 48 events per 60 ms sample.
fn write_task(dir: &Path) -> PathBuf {
    let task = TimingTask {
        samples: 48,
        channels: 12,
        classes: 4,
        duration: 0.06,
        events_per_sample: 48,
        jitter: 2e-3,
        noise_rate: 0.0,
        task_seed: 3,
        seed: 5,
    };
    let train = dir.join("train.npz");
    write_events(&train, &timing_task(&task).unwrap()).unwrap();
    train
}

/// The event preset of `engine` on `train`: two hidden layers (16, 12), batches of 8, a
/// calibration set of 2 batches, no validation set (the watchdog reads training samples).
fn config(train: &Path, engine: EngineKind) -> TrainConfig {
    let mut c = TrainConfig::preset_for(Task::Events, engine);
    c.data.train = Some(train.to_path_buf());
    c.events.val_fraction = 0.0;
    c.network.hidden = vec![16, 12];
    c.batch_size = 8;
    c.eval_batch_size = 8;
    c.init.batches = 2;
    c.epochs = 1;
    c
}

/// Every engine kind, by name, as `(what, config, path)` (`path`: the stepped engine on an
/// explicit path).
fn cases(train: &Path) -> Vec<(&'static str, TrainConfig, Option<SteppedPath>)> {
    let stepped = config(train, EngineKind::Stepped);
    let mut fused_learn = stepped.clone();
    fused_learn.learn = Learn {
        recurrent: true,
        delays: false,
        taus: false,
        threshold: true,
    };
    let mut dense = stepped.clone();
    dense.learn = Learn {
        recurrent: false,
        delays: true,
        taus: true,
        threshold: false,
    };
    let exact = config(train, EngineKind::Exact);
    // The chip engine runs Yin-Yang networks: its preset, calibrated on 48 samples.
    let mut chip = TrainConfig::preset(EngineKind::Chip);
    chip.chip.kind = ChipKind::Mock;
    chip.init.rule = InitRule::Data;
    chip.init.batches = 2;
    chip.batch_size = 8;
    chip.eval_batch_size = 8;
    chip.train_size = 48;
    chip.val_size = 0;
    chip.test_size = 0;
    chip.epochs = 1;
    // and event data, binned onto the chip's rows and run on its time scale
    let mut chip_events = config(train, EngineKind::Chip);
    chip_events.chip.kind = ChipKind::Mock;
    chip_events.events.channel_bin = Some(2);
    let mut lined = stepped.clone();
    lined.events.delay_line = 3;
    lined.events.delay_line_spacing = 0.01;
    let mut lined_exact = exact.clone();
    lined_exact.events.delay_line = 3;
    lined_exact.events.delay_line_spacing = 0.01;
    vec![
        ("stepped, fused", stepped.clone(), None),
        ("stepped, fused, recurrent + thresholds", fused_learn, None),
        ("stepped, seed path", stepped, Some(SteppedPath::Seed)),
        ("stepped, dense layers (taus, delays)", dense, None),
        ("exact", exact, None),
        ("mock chip (Yin-Yang)", chip, None),
        ("mock chip (events)", chip_events, None),
        ("delay line, stepped", lined, None),
        ("delay line, exact", lined_exact, None),
    ]
}

/// The trainer of a case (calibrated weights: the hidden layers are active).
fn trainer(config: TrainConfig, path: Option<SteppedPath>) -> Trainer {
    match path {
        None => Trainer::new(config).unwrap(),
        Some(p) => Trainer::with_engine(config, |s| {
            Ok(Box::new(SteppedEngine::with_path(s, p)?) as Box<dyn Engine>)
        })
        .unwrap(),
    }
}

/// The counts of `hidden_spikes`, one sample at a time in sample order.
fn one_by_one(engine: &dyn Engine, w: &[Array2<f64>], inputs: &[&[Spike]]) -> Vec<Vec<usize>> {
    inputs
        .iter()
        .map(|x| {
            engine
                .hidden_spikes(w, x)
                .unwrap()
                .iter()
                .map(Vec::len)
                .collect()
        })
        .collect()
}

#[test]
fn batched_hidden_counts_are_the_per_sample_spike_counts_on_every_engine() {
    let dir = tempfile::tempdir().unwrap();
    let train = write_task(dir.path());
    for (what, config, path) in cases(&train) {
        let t = trainer(config, path);
        let e = t.engine();
        let inputs: Vec<&[Spike]> = t.data().train.samples.iter().map(Vec::as_slice).collect();
        // The calibrated weights, and the hidden weights twice as strong (more spikes).
        let n_hidden = e.spec().hidden.len();
        let mut strong = t.weights().to_vec();
        for w in &mut strong[..n_hidden] {
            *w *= 2.0;
        }
        for w in [t.weights(), &strong[..]] {
            let expected = one_by_one(e, w, &inputs);
            let total: usize = expected.iter().flatten().sum();
            assert!(
                expected.iter().all(|c| c.len() == n_hidden) && total > 0,
                "{what}: no hidden spikes ({expected:?})"
            );
            assert!(
                expected.windows(2).any(|p| p[0] != p[1]),
                "{what}: every sample has the same counts"
            );
            assert_eq!(e.hidden_counts(w, &inputs).unwrap(), expected, "{what}");
            // Any batching: odd chunks, one sample.
            let chunked: Vec<Vec<usize>> = inputs
                .chunks(7)
                .flat_map(|c| e.hidden_counts(w, c).unwrap())
                .collect();
            assert_eq!(chunked, expected, "{what}: in chunks of 7");
            assert_eq!(
                e.hidden_counts(w, &inputs[5..6]).unwrap(),
                expected[5..6],
                "{what}: one sample"
            );
        }
        assert!(
            e.hidden_counts(t.weights(), &[]).unwrap().is_empty(),
            "{what}"
        );
    }
}

#[test]
fn batched_hidden_counts_do_not_depend_on_the_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let train = write_task(dir.path());
    for (what, config, path) in cases(&train) {
        let t = trainer(config, path);
        let inputs: Vec<&[Spike]> = t.data().train.samples.iter().map(Vec::as_slice).collect();
        let run = |threads: usize| {
            eventprop_testkit::with_threads(threads, || {
                t.engine().hidden_counts(t.weights(), &inputs).unwrap()
            })
        };
        let one = run(1);
        assert_eq!(run(3), one, "{what}");
        assert_eq!(run(4), one, "{what}");
    }
}

/// Weights of the wrong shape are refused; NaN weights as by the per-sample path.
#[test]
fn batched_hidden_counts_refuse_bad_weights_as_the_per_sample_path_does() {
    let dir = tempfile::tempdir().unwrap();
    let train = write_task(dir.path());
    for (what, config, path) in cases(&train) {
        let t = trainer(config, path);
        let e = t.engine();
        let inputs: Vec<&[Spike]> = t.data().train.samples[..4]
            .iter()
            .map(Vec::as_slice)
            .collect();
        let mut wrong_shape = t.weights().to_vec();
        wrong_shape[0] = Array2::zeros((3, 3));
        let mut non_finite = t.weights().to_vec();
        non_finite[0][[0, 0]] = f64::NAN;
        assert!(e.hidden_spikes(&wrong_shape, inputs[0]).is_err(), "{what}");
        assert!(e.hidden_counts(&wrong_shape, &inputs).is_err(), "{what}");
        // NaN: refused by both or by neither (then with the same counts).
        match e.hidden_counts(&non_finite, &inputs) {
            Err(_) => assert!(e.hidden_spikes(&non_finite, inputs[0]).is_err(), "{what}"),
            Ok(c) => assert_eq!(c, one_by_one(e, &non_finite, &inputs), "{what}"),
        }
    }
}

/// An engine with the default (per-sample) `hidden_counts`: everything else is `inner`'s.
#[derive(Debug)]
struct PerSample(Box<dyn Engine>);

impl Engine for PerSample {
    fn kind(&self) -> EngineKind {
        self.0.kind()
    }
    fn spec(&self) -> &NetworkSpec {
        self.0.spec()
    }
    fn run_shared(
        &self,
        weights: &[Array2<f64>],
        inputs: &[&[Spike]],
        labels: &[usize],
        pass: Pass,
        counts: &dyn BatchCounts,
    ) -> Result<BatchOutcome> {
        self.0.run_shared(weights, inputs, labels, pass, counts)
    }
    fn hidden_spikes(&self, weights: &[Array2<f64>], input: &[Spike]) -> Result<Vec<Vec<Spike>>> {
        self.0.hidden_spikes(weights, input)
    }
    fn weight_limit(&self) -> Option<f64> {
        self.0.weight_limit()
    }
}

#[test]
fn the_calibration_is_that_of_the_per_sample_path_on_every_engine() {
    let dir = tempfile::tempdir().unwrap();
    let train = write_task(dir.path());
    for (what, config, path) in cases(&train) {
        let batched = trainer(config.clone(), path);
        let kind = config.engine;
        let per_sample = Trainer::with_engine(config, |s| {
            let inner = match path {
                None => engine::build(kind, s)?,
                Some(p) => Box::new(SteppedEngine::with_path(s, p)?) as Box<dyn Engine>,
            };
            Ok(Box::new(PerSample(inner)) as Box<dyn Engine>)
        })
        .unwrap();
        assert!(
            batched.init_report().iter().take(2).all(|l| matches!(
                l.source,
                eventprop_train::init::InitSource::Calibrated { .. }
                    | eventprop_train::init::InitSource::Unreached { .. }
            )),
            "{what}: {:?}",
            batched.init_report()
        );
        assert_eq!(batched.init_report(), per_sample.init_report(), "{what}");
        assert_eq!(batched.config().init, per_sample.config().init, "{what}");
        assert_eq!(batched.weights(), per_sample.weights(), "{what}");
        // The watchdog reads the same counts.
        assert_eq!(
            batched.activity_warnings("now"),
            per_sample.activity_warnings("now"),
            "{what}"
        );
    }
}

//! The stepped engine's fused path against its seed-function path (both in
//! `engine/stepped.rs`): same spikes, losses and predictions, gradients equal to rounding.
//!
//! Provenance: the expected values are the seed path's (`SteppedNetwork` on the seed
//! function's dense arrays, checked against finite differences in `stepped_network.rs`),
//! computed in the same test on the same batch.

use eventprop_core::Discretization;
use eventprop_train::config::TrainConfig;
use eventprop_train::data::{rasterize, Spike};
use eventprop_train::engine::stepped::{input_events, SteppedEngine, SteppedPath};
use eventprop_train::engine::{Engine, EngineKind, Pass};
use eventprop_train::loss::LossKind;
use eventprop_train::yinyang;
use ndarray::Array2;

fn rel_max(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

fn compare(config: &TrainConfig, what: &str) {
    let spec = config.network();
    let weights = spec.init_weights(&config.inits(), 3).unwrap();
    let set = yinyang::encode(&yinyang::generate(37, 5), &config.encoding);
    let inputs: Vec<&[Spike]> = set.samples.iter().map(Vec::as_slice).collect();
    let fused = SteppedEngine::with_path(&config.engine_settings(), SteppedPath::Fused).unwrap();
    let seed = SteppedEngine::with_path(&config.engine_settings(), SteppedPath::Seed).unwrap();
    assert_eq!(fused.path(), SteppedPath::Fused);
    for pass in [Pass::Train, Pass::Eval] {
        // Twice: the second run reuses the fused layers' buffers.
        for _ in 0..2 {
            let a = fused.run(&weights, &inputs, &set.labels, pass).unwrap();
            let b = seed.run(&weights, &inputs, &set.labels, pass).unwrap();
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
                    assert_eq!(ga.len(), gb.len());
                    for (k, (x, y)) in ga.iter().zip(&gb).enumerate() {
                        assert!(
                            y.iter().any(|&v| v != 0.0),
                            "{what}: weight {k} has no gradient"
                        );
                        let e = rel_max(x, y);
                        assert!(e <= 1e-12, "{what}: weight {k} gradient off by {e:e}");
                    }
                }
                (None, None) => assert_eq!(pass, Pass::Eval),
                _ => panic!("{what}: one path returned gradients, the other not"),
            }
        }
    }
    for sample in &inputs[..3] {
        assert_eq!(
            fused.hidden_spikes(&weights, sample).unwrap(),
            seed.hidden_spikes(&weights, sample).unwrap(),
            "{what}"
        );
    }
}

fn two_hidden(mut c: TrainConfig) -> TrainConfig {
    c.network.hidden = vec![30, 20];
    c.network.hidden_init_mean = 1.2;
    c
}

#[test]
fn fused_stepped_engine_equals_the_seed_path() {
    let preset = TrainConfig::preset(EngineKind::Stepped);
    // The preset: one hidden layer, corrected discretization, max-over-time.
    compare(&preset, "preset");
    for disc in [Discretization::Seed, Discretization::Corrected] {
        let mut c = two_hidden(preset.clone());
        c.stepped.discretization = disc;
        c.stepped.rate_reg = 1e-3;
        compare(&c, &format!("two hidden layers, rate term, {disc}"));
        let mut c = two_hidden(preset.clone());
        c.stepped.discretization = disc;
        c.loss = LossKind::defaults("first_spike", EngineKind::Stepped).unwrap();
        compare(&c, &format!("two hidden layers, spiking output, {disc}"));
    }
}

#[test]
fn chip_configs_use_the_fused_path_as_the_chip_engine_does() {
    let mut c = TrainConfig::preset(EngineKind::Stepped);
    assert_eq!(
        SteppedEngine::new(&c.engine_settings()).unwrap().path(),
        SteppedPath::Fused
    );
    c.engine = EngineKind::Chip;
    assert_eq!(
        SteppedEngine::new(&c.engine_settings()).unwrap().path(),
        SteppedPath::Fused
    );
}

#[test]
fn input_events_put_spikes_on_the_grid_like_rasterize() {
    let s = |time: f64, neuron: u32| Spike { time, neuron };
    // Rounding, collapsing, out-of-range times and channels, unsorted input.
    let a = [
        s(3.6e-6, 1),
        s(1.4e-6, 0),
        s(1.6e-6, 0),
        s(1.45e-6, 0),
        s(9e-6, 1),
        s(-1e-6, 0),
        s(2e-6, 7),
    ];
    let b = [s(0.0, 2), s(f64::NAN, 1)];
    let (x, _) = rasterize(&[&a, &b], 3, 5, 1e-6);
    let ev = input_events(&[&a, &b], 3, 5, 1e-6);
    assert_eq!(ev.to_dense(), x);
    // 1.4 and 1.45 µs collapse into one event of step 1.
    assert_eq!(ev.rows()[0].len(), 3);
}

//! Hardware in the loop: the ideal chip against software (bit for bit), the mock chip's
//! non-idealities and their switches, and calibration.

use eventprop_train::chip::calibrate::calibrate;
use eventprop_train::chip::ideal::IdealChip;
use eventprop_train::chip::mock::{MockChip, MockConfig, MAX_LEVEL};
use eventprop_train::chip::{Chip, ChipKind, Recording};
use eventprop_train::data::Spike;
use eventprop_train::engine::chip::ChipEngine;
use eventprop_train::engine::stepped::{SteppedEngine, SteppedPath};
use eventprop_train::engine::{Engine, Pass};
use eventprop_train::loss::LossKind;
use eventprop_train::metrics::EpochMetrics;
use eventprop_train::network::SteppedNetwork;
use eventprop_train::{yinyang, EngineKind, TrainConfig, Trainer};
use ndarray::Array2;

fn batch(config: &TrainConfig, n: usize, seed: u64) -> (Vec<Vec<Spike>>, Vec<usize>) {
    let d = yinyang::generate(n, seed);
    let s = yinyang::encode(&d, &config.encoding);
    (s.samples, s.labels)
}

fn chip_config(kind: ChipKind) -> TrainConfig {
    let mut c = TrainConfig::preset(EngineKind::Chip);
    c.chip.kind = kind;
    c
}

/// Weights after a few software updates, so that the comparison is not only at the init.
fn some_weights(config: &TrainConfig) -> Vec<Array2<f64>> {
    let mut c = config.clone();
    c.engine = EngineKind::Stepped;
    c.train_size = 200;
    c.val_size = 0;
    c.test_size = 0;
    c.epochs = 1;
    let mut t = Trainer::new(c).unwrap();
    t.run_epoch(&mut |_| {}).unwrap();
    t.weights().to_vec()
}

#[test]
fn ideal_chip_forward_mapping_and_hil_gradients_are_bit_identical_to_software() {
    for loss in ["max_over_time", "first_spike"] {
        let mut config = chip_config(ChipKind::Ideal);
        config.loss = LossKind::defaults(loss, EngineKind::Chip).unwrap();
        let weights = some_weights(&config);
        let (inputs, labels) = batch(&config, 40, 11);
        let inputs: Vec<&[Spike]> = inputs.iter().map(Vec::as_slice).collect();

        // forward + mapping: the recording on the grid equals the software's own tensors
        let net = SteppedNetwork {
            spec: config.network(),
            dt: config.encoding.dt,
            discretization: config.stepped.discretization,
        };
        let steps = config.encoding.steps();
        let chip = IdealChip {
            net: net.clone(),
            steps,
        };
        let rec = chip
            .run(&chip.configure(&weights).unwrap(), &inputs)
            .unwrap();
        let mapped = chip.grid_map().map(&rec).unwrap();
        let (x, _) = eventprop_train::data::rasterize(&inputs, 5, steps, config.encoding.dt);
        let trace = net.forward(&weights, x.view()).unwrap();
        assert_eq!(&mapped.layers[0].spikes, trace.hidden_spikes(0), "{loss}");
        assert_eq!(
            mapped.layers[0].membrane.as_ref().unwrap(),
            trace.hidden_membrane(0),
            "{loss}"
        );
        assert_eq!(
            mapped.layers[1].membrane.as_ref().unwrap(),
            trace.output_membrane(),
            "{loss}"
        );
        if loss == "first_spike" {
            assert_eq!(&mapped.layers[1].spikes, &trace.output, "{loss}");
        }
        // spikes are on the grid: nothing collapsed or dropped
        assert_eq!(mapped.stats.collapsed + mapped.stats.dropped, 0);
        assert!(mapped.stats.spikes > 0);
        // the event lists the HIL engine maps to are the same grid
        let events = chip.grid_map().map_events(&rec).unwrap();
        assert_eq!(events.stats, mapped.stats);
        for (e, d) in events.layers.iter().zip(&mapped.layers) {
            assert_eq!(e.spikes.to_dense(), d.spikes, "{loss}");
            assert_eq!(e.membrane, d.membrane, "{loss}");
        }

        // HIL loss, accuracy and gradients: bit for bit the software's (fused path, the
        // default)
        let soft = SteppedEngine::new(&config.engine_settings()).unwrap();
        assert_eq!(soft.path(), SteppedPath::Fused);
        let hil = ChipEngine::new(&config.engine_settings()).unwrap();
        for pass in [Pass::Train, Pass::Eval] {
            let a = soft.run(&weights, &inputs, &labels, pass).unwrap();
            let mut b = hil.run(&weights, &inputs, &labels, pass).unwrap();
            assert!(b.chip.take().is_some());
            assert_eq!(a, b, "{loss} {pass:?}");
        }
    }
}

fn strip(h: &[EpochMetrics]) -> Vec<EpochMetrics> {
    h.iter()
        .cloned()
        .map(|mut m| {
            m.epoch_seconds = 0.0;
            m.train_seconds = 0.0;
            m.chip = None;
            m
        })
        .collect()
}

#[test]
fn hil_training_on_the_ideal_chip_equals_software_training() {
    let small = |engine| TrainConfig {
        train_size: 300,
        val_size: 100,
        test_size: 100,
        epochs: 2,
        engine,
        chip: chip_config(ChipKind::Ideal).chip,
        // the software settings for both (the chip preset's readout regulariser differs)
        ..TrainConfig::preset(EngineKind::Stepped)
    };
    // The chip engine's backward is the fused adjoint on the recording: its software twin
    // is the stepped engine's default (fused) path.
    let mut soft = Trainer::new(small(EngineKind::Stepped)).unwrap();
    let mut hil = Trainer::new(small(EngineKind::Chip)).unwrap();
    for _ in 0..2 {
        soft.run_epoch(&mut |_| {}).unwrap();
        let m = hil.run_epoch(&mut |_| {}).unwrap();
        let c = m.chip.expect("chip stats in the metrics");
        assert_eq!(c.mapping.collapsed, 0);
        assert!(c.mapping.spikes > 0);
    }
    assert_eq!(soft.weights(), hil.weights());
    assert_eq!(strip(soft.history()), strip(hil.history()));
}

fn mock(config: MockConfig, seed: u64) -> MockChip {
    let c = TrainConfig::preset(EngineKind::Chip);
    MockChip::new(c.network(), config, seed, c.encoding.dt, c.encoding.steps()).unwrap()
}

#[test]
fn six_bit_weights_have_exactly_127_signed_levels_and_saturate() {
    let chip = mock(
        MockConfig {
            design_weight_scale: 64.0,
            ..MockConfig::default()
        },
        0,
    );
    let shapes = chip.spec().weight_shapes();
    // 960 weights evenly from -1.5 to 1.5 (steps of 0.2 levels at scale 64) cover every
    // level -63..=63 (|64 w| ≤ 96) and beyond it.
    let mut k = 0usize;
    let mut weights: Vec<Array2<f64>> = shapes
        .iter()
        .map(|&s| {
            Array2::from_shape_simple_fn(s, || {
                k += 1;
                -1.5 + (k - 1) as f64 * 3.0 / 959.0
            })
        })
        .collect();
    let conf = chip.configure(&weights).unwrap();
    let levels = conf.levels.as_ref().unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for q in levels.iter().flat_map(|l| l.iter()) {
        seen.insert(*q);
    }
    assert_eq!(seen.len(), 127);
    assert_eq!(*seen.first().unwrap(), -MAX_LEVEL);
    assert_eq!(*seen.last().unwrap(), MAX_LEVEL);
    // saturated: |round(64 w)| > 63, i.e. |w| ≥ 63.5/64 (round half away from zero)
    let expected = weights
        .iter()
        .flat_map(|w| w.iter())
        .filter(|w| (64.0 * *w).round().abs() > 63.0)
        .count();
    assert!(expected > 0);
    assert_eq!(conf.saturated_weights, expected);
    // half away from zero: 0.5/64 → level 1, -0.5/64 → -1, 1.49/64 → 1
    weights[0][[0, 0]] = 0.5 / 64.0;
    weights[0][[0, 1]] = -0.5 / 64.0;
    weights[0][[0, 2]] = 1.49 / 64.0;
    let l = chip.configure(&weights).unwrap().levels.unwrap();
    assert_eq!([l[0][[0, 0]], l[0][[0, 1]], l[0][[0, 2]]], [1, -1, 1]);
    // the trainer's clamp range is the largest level
    assert_eq!(chip.weight_limit(), Some(63.0 / 64.0));
}

fn run(chip: &MockChip, n: usize) -> Recording {
    let c = TrainConfig::preset(EngineKind::Chip);
    let weights = some_weights(&c);
    let (inputs, _) = batch(&c, n, 3);
    let inputs: Vec<&[Spike]> = inputs.iter().map(Vec::as_slice).collect();
    chip.run(&chip.configure(&weights).unwrap(), &inputs)
        .unwrap()
}

#[test]
fn cadc_values_are_8_bit_integers_and_saturate() {
    let chip = mock(MockConfig::default(), 1);
    let rec = run(&chip, 30);
    let out = rec.layers.last().unwrap().membrane.as_ref().unwrap();
    let mut n = 0;
    for tr in out.iter().flatten() {
        // every ~2 µs over the 38 µs window: 0, 2, …, 38 µs
        assert_eq!(tr.times.len(), 20);
        for v in &tr.values {
            assert!(v.fract() == 0.0 && (0.0..=255.0).contains(v), "{v}");
            n += 1;
        }
    }
    assert_eq!(n, 30 * 3 * 20);
    // a huge membrane (weights ×20 without the weight quantiser) pins codes at 255
    let c = TrainConfig::preset(EngineKind::Chip);
    let chip = mock(
        MockConfig {
            quantize_weights: false,
            ..MockConfig::default()
        },
        1,
    );
    let w: Vec<Array2<f64>> = some_weights(&c)
        .iter()
        .map(|w| w.mapv(|x| 20.0 * x.abs()))
        .collect();
    let (inputs, _) = batch(&c, 5, 3);
    let inputs: Vec<&[Spike]> = inputs.iter().map(Vec::as_slice).collect();
    let rec = chip.run(&chip.configure(&w).unwrap(), &inputs).unwrap();
    let vals: Vec<f64> = rec.layers[1]
        .membrane
        .as_ref()
        .unwrap()
        .iter()
        .flatten()
        .flat_map(|t| t.values.clone())
        .collect();
    assert!(vals.contains(&255.0));
    assert!(vals.iter().all(|&v| (0.0..=255.0).contains(&v)));
}

#[test]
fn the_same_chip_seed_gives_the_same_fixed_pattern() {
    let a = mock(MockConfig::default(), 7);
    let b = mock(MockConfig::default(), 7);
    let c = mock(MockConfig::default(), 8);
    assert_eq!(a.layers(), b.layers());
    assert_ne!(a.layers(), c.layers());
    // and the same recording (noise is seeded from chip seed, weights and sample)
    assert_eq!(run(&a, 8), run(&b, 8));
    assert_ne!(run(&a, 8), run(&c, 8));
}

#[test]
fn every_non_ideality_switch_changes_the_recording_when_on_and_not_when_off() {
    let base = MockConfig {
        record_hidden_membrane: true,
        ..MockConfig::clean()
    };
    let reference = run(&mock(base.clone(), 4), 10);
    // a clean chip is deterministic
    assert_eq!(reference, run(&mock(base.clone(), 4), 10));
    type Edit = fn(&mut MockConfig);
    // (switch on, its magnitude changed while the switch is off)
    let cases: [(&str, Edit, Edit); 7] = [
        ("quantize_weights", |c| c.quantize_weights = true, |_| {}),
        (
            "fixed_pattern",
            |c| c.fixed_pattern = true,
            |c| {
                c.tau_mem_cv = 0.3;
                c.threshold_std = 0.2;
                c.synapse_gain_cv = 0.3;
            },
        ),
        ("noise", |c| c.noise = true, |c| c.noise_std = 0.5),
        (
            "quantize_time",
            |c| c.quantize_time = true,
            |c| c.clock_hz = 1e6,
        ),
        ("cadc_quantize", |c| c.cadc_quantize = true, |_| {}),
        (
            "cadc_offset",
            |c| c.cadc_offset = true,
            |c| c.cadc_offset_std = 10.0,
        ),
        ("refractory", |c| c.refractory = 2e-6, |_| {}),
    ];
    for (name, on, off_edit) in cases {
        let mut c = base.clone();
        on(&mut c);
        assert_ne!(run(&mock(c, 4), 10), reference, "{name} on");
        let mut c = base.clone();
        off_edit(&mut c);
        assert_eq!(run(&mock(c, 4), 10), reference, "{name} off");
    }
}

#[test]
fn calibration_recovers_an_injected_threshold_offset_and_weight_gain() {
    // A mock with known parameters: no fixed pattern, no noise, unrounded readout.
    let known = MockConfig {
        threshold_offset: 0.1,
        weight_gain: 1.25,
        ..MockConfig::clean()
    };
    let cal = calibrate(&mock(known, 0)).unwrap();
    // the threshold is read at the last clock tick before the crossing (slope × 8 ns
    // below it): 1e-3 of the threshold span is the readout's resolution here
    assert!((cal.threshold_offset - 0.1).abs() < 1e-3, "{cal:?}");
    assert!((cal.weight_gain - 1.25).abs() < 1e-3, "{cal:?}");
    // offset = the CADC code of the leak (80), trace scale = 1 / (1.1 × 45 codes)
    assert!((cal.offset - 80.0).abs() < 1e-9, "{cal:?}");
    assert!((cal.trace_scale * 1.1 * 45.0 - 1.0).abs() < 2e-3, "{cal:?}");
    // weight scale: levels per model unit that give the model's PSP relative to the
    // chip's threshold: 32 (design) × 1.1 / 1.25
    let expected = 32.0 * 1.1 / 1.25;
    assert!((cal.weight_scale / expected - 1.0).abs() < 2e-3, "{cal:?}");

    // With every non-ideality on, the injected offset and gain still show (against the
    // same chip without them), within the spread of 120 neurons.
    let plain = calibrate(&mock(MockConfig::default(), 3)).unwrap();
    let injected = calibrate(&mock(
        MockConfig {
            threshold_offset: 0.1,
            weight_gain: 1.25,
            ..MockConfig::default()
        },
        3,
    ))
    .unwrap();
    let d_thr = injected.threshold_offset - plain.threshold_offset;
    let r_gain = injected.weight_gain / plain.weight_gain;
    assert!((d_thr - 0.1).abs() < 0.02, "{d_thr}");
    assert!((r_gain - 1.25).abs() < 0.05, "{r_gain}");
}

/// The shipped harsh profile (`crates/eventprop-chip/profiles/uncalibrated.toml`) parses
/// as `--chip-config` keys, is valid, is harsher than the default in every spread, and
/// calibration recovers its chip-wide threshold offset (0.1) and weight gain (0.8) — the
/// part calibration can fix; the per-neuron spreads stay (tolerances: the spread of 120
/// neurons, as in the default-chip test above, widened for the larger spreads).
#[test]
fn the_uncalibrated_profile_is_harsher_and_calibration_fixes_only_its_chip_wide_part() {
    let text = include_str!("../../../eventprop-chip/profiles/uncalibrated.toml");
    let harsh: MockConfig = toml::from_str(text).unwrap();
    harsh.validate().unwrap();
    let d = MockConfig::default();
    for (name, h, def) in [
        ("tau_mem_cv", harsh.tau_mem_cv, d.tau_mem_cv),
        ("tau_syn_cv", harsh.tau_syn_cv, d.tau_syn_cv),
        ("threshold_std", harsh.threshold_std, d.threshold_std),
        ("leak_std", harsh.leak_std, d.leak_std),
        ("reset_std", harsh.reset_std, d.reset_std),
        ("synapse_gain_cv", harsh.synapse_gain_cv, d.synapse_gain_cv),
        ("noise_std", harsh.noise_std, d.noise_std),
        ("cadc_offset_std", harsh.cadc_offset_std, d.cadc_offset_std),
    ] {
        assert!(h > def, "{name}: {h} vs the default {def}");
    }
    let plain = calibrate(&mock(
        MockConfig {
            threshold_offset: 0.0,
            weight_gain: 1.0,
            ..harsh.clone()
        },
        3,
    ))
    .unwrap();
    let cal = calibrate(&mock(harsh, 3)).unwrap();
    let d_thr = cal.threshold_offset - plain.threshold_offset;
    let r_gain = cal.weight_gain / plain.weight_gain;
    assert!((d_thr - 0.1).abs() < 0.04, "{d_thr}");
    assert!((r_gain - 0.8).abs() < 0.08, "{r_gain}");
}

/// A mock clock far faster than the hardware's (1 THz, the top of `chip.clock_hz`'s range)
/// calibrates like the 125 MHz one: the fine readout samples at most 2^16 times per window
/// (one sample per tick made this take minutes); the threshold read just before the first
/// spike is then at most one (coarser) sample early, so the scales agree to the 1e-3 of the
/// test above.
#[test]
fn calibration_on_a_fast_clock_reads_at_most_2_16_samples_and_agrees() {
    let at = |clock_hz| {
        calibrate(&mock(
            MockConfig {
                threshold_offset: 0.1,
                weight_gain: 1.25,
                clock_hz,
                ..MockConfig::clean()
            },
            0,
        ))
        .unwrap()
    };
    let (hw, fast) = (at(125e6), at(1e12));
    assert!(
        (fast.threshold_offset - hw.threshold_offset).abs() < 1e-3,
        "{fast:?} vs {hw:?}"
    );
    assert!((fast.weight_gain / hw.weight_gain - 1.0).abs() < 1e-3);
    assert!((fast.trace_scale / hw.trace_scale - 1.0).abs() < 2e-3);
}

/// The readout's own operating point (`cadc_readout_leak`): calibration measures its rest
/// code on the readout neurons, and the grid map subtracts it from the readout layer only.
#[test]
fn calibration_recovers_an_injected_readout_offset() {
    // Known parameters: no fixed pattern, no noise, unrounded codes; hidden rest at code 80
    // (the default), the readout's at 30. Expected: the rest codes themselves (model leak 0).
    let known = MockConfig {
        cadc_readout_leak: 30.0,
        record_hidden_membrane: true,
        ..MockConfig::clean()
    };
    let chip = mock(known.clone(), 0);
    let cal = calibrate(&chip).unwrap();
    assert!((cal.readout_offset - 30.0).abs() < 1e-9, "{cal:?}");
    assert!((cal.offset - 80.0).abs() < 1e-9, "{cal:?}");
    // mapped with the calibration, a silent network reads 0 in both layers (each layer's
    // rest code minus its own offset)
    let chip = chip.with_host(cal.host()).unwrap();
    let map = chip.grid_map();
    assert_eq!(map.readout_offset, Some(cal.readout_offset));
    let zeros: Vec<Array2<f64>> = chip
        .spec()
        .weight_shapes()
        .iter()
        .map(|&s| Array2::zeros(s))
        .collect();
    let config = TrainConfig::preset(EngineKind::Chip);
    let (inputs, _) = batch(&config, 3, 1);
    let inputs: Vec<&[Spike]> = inputs.iter().map(Vec::as_slice).collect();
    let rec = chip.run(&chip.configure(&zeros).unwrap(), &inputs).unwrap();
    let mapped = map.map(&rec).unwrap();
    for layer in &mapped.layers {
        let v = layer.membrane.as_ref().unwrap();
        assert!(v.iter().all(|v| v.abs() < 1e-9), "{v:?}");
    }

    // Injected per-neuron CADC offsets with 8-bit rounding: the mean of the readout
    // neurons' offsets (read from the chip instance) on top of 30, to the rounding of each
    // neuron's constant rest code (at most half a code).
    let chip = mock(
        MockConfig {
            cadc_readout_leak: 30.0,
            cadc_offset: true,
            cadc_quantize: true,
            ..MockConfig::clean()
        },
        5,
    );
    let out = &chip.layers()[chip.layers().len() - 1].neurons;
    let want = 30.0 + out.iter().map(|p| p.cadc_offset).sum::<f64>() / out.len() as f64;
    assert!(out.iter().any(|p| p.cadc_offset.abs() > 0.5));
    let cal = calibrate(&chip).unwrap();
    assert!(
        (cal.readout_offset - want).abs() <= 0.5,
        "{cal:?} vs {want}"
    );
    // the hidden layer's offset: its own rest code 80 and its neurons' offsets
    let hidden = &chip.layers()[0].neurons;
    let want = 80.0 + hidden.iter().map(|p| p.cadc_offset).sum::<f64>() / hidden.len() as f64;
    assert!((cal.offset - want).abs() <= 0.5, "{cal:?} vs {want}");

    // out of the 8-bit range: a typed error naming the key
    let err = MockConfig {
        cadc_readout_leak: 300.0,
        ..MockConfig::default()
    }
    .validate()
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "chip.cadc_readout_leak: expected in [0, 255], got 300"
    );
}

#[test]
fn hil_training_on_the_mock_resumes_bit_identically() {
    let config = TrainConfig {
        train_size: 150,
        val_size: 50,
        test_size: 50,
        epochs: 2,
        network: eventprop_train::config::NetworkSettings {
            hidden: vec![40],
            ..chip_config(ChipKind::Mock).network.clone()
        },
        ..chip_config(ChipKind::Mock)
    };
    let dir = tempfile::tempdir().unwrap();
    let mut whole = Trainer::new(config.clone()).unwrap();
    whole.run(&dir.path().join("a"), &mut |_| {}).unwrap();
    let mut first = Trainer::new(TrainConfig {
        epochs: 1,
        ..config
    })
    .unwrap();
    let b = dir.path().join("b");
    first.run(&b, &mut |_| {}).unwrap();
    let mut resumed = Trainer::load(&b.join(eventprop_train::trainer::LAST_CHECKPOINT)).unwrap();
    resumed.set_epochs(2).unwrap();
    resumed.run(&b, &mut |_| {}).unwrap();
    assert_eq!(whole.weights(), resumed.weights());
    let strip_time = |h: &[EpochMetrics]| -> Vec<EpochMetrics> {
        h.iter()
            .cloned()
            .map(|mut m| {
                m.epoch_seconds = 0.0;
                m.train_seconds = 0.0;
                m
            })
            .collect()
    };
    assert_eq!(strip_time(whole.history()), strip_time(resumed.history()));
    // the recording statistics are part of the history
    assert!(whole.history().iter().all(|m| m.chip.is_some()));
}

#[test]
fn recordings_round_trip_through_npz_and_bad_files_are_errors_naming_the_array() {
    use eventprop_train::chip::record_file::{load_npz, save_npz};
    let chip = mock(
        MockConfig {
            record_hidden_membrane: true,
            ..MockConfig::default()
        },
        2,
    );
    let rec = run(&chip, 6);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec.npz");
    save_npz(&rec, &path).unwrap();
    let back = load_npz(&path).unwrap();
    assert_eq!(back, rec);
    // the mapped hw_data is the same too
    assert_eq!(
        chip.grid_map().map(&back).unwrap(),
        chip.grid_map().map(&rec).unwrap()
    );
    // a file without the arrays
    let other = dir.path().join("other.npz");
    let mut w = ndarray_npy::NpzWriter::new(std::fs::File::create(&other).unwrap());
    w.add_array("samples", &ndarray::arr1(&[1i64])).unwrap();
    w.finish().unwrap();
    let e = load_npz(&other).unwrap_err().to_string();
    assert!(e.contains("`layers`: missing array"), "{e}");
}

/// Writes the arrays of a one-layer recording (1 sample, 1 neuron) with `edit` applied.
fn write_rec(path: &std::path::Path, edit: impl FnOnce(&mut Vec<(String, RecArray)>)) {
    use RecArray::{F, I};
    let mut arrays: Vec<(String, RecArray)> = vec![
        ("samples".into(), I(vec![1])),
        ("layers".into(), I(vec![1])),
        ("l0.size".into(), I(vec![1])),
        ("l0.spikes_recorded".into(), I(vec![1])),
        ("l0.spike_sample".into(), I(vec![0])),
        ("l0.spike_neuron".into(), I(vec![0])),
        ("l0.spike_time".into(), F(vec![1e-6])),
        ("l0.trace_offsets".into(), I(vec![0, 3])),
        ("l0.trace_times".into(), F(vec![0.0, 2e-6, 4e-6])),
        ("l0.trace_values".into(), F(vec![80.0, 125.0, 170.0])),
    ];
    edit(&mut arrays);
    let mut w = ndarray_npy::NpzWriter::new(std::fs::File::create(path).unwrap());
    for (name, a) in arrays {
        match a {
            I(v) => w.add_array(name, &ndarray::Array1::from(v)).unwrap(),
            F(v) => w.add_array(name, &ndarray::Array1::from(v)).unwrap(),
            RecArray::F32(v) => w.add_array(name, &ndarray::Array1::from(v)).unwrap(),
            RecArray::I2(v) => w.add_array(name, &v).unwrap(),
        }
    }
    w.finish().unwrap();
}

enum RecArray {
    I(Vec<i64>),
    F(Vec<f64>),
    F32(Vec<f32>),
    I2(ndarray::Array2<i64>),
}

fn set(arrays: &mut [(String, RecArray)], name: &str, a: RecArray) {
    arrays.iter_mut().find(|(n, _)| n == name).unwrap().1 = a;
}

/// Every defect of a recording file is a one-line `Error::Format` naming the file, the
/// array and what was expected vs found (the messages are the loader's own).
#[test]
fn bad_recording_files_are_typed_one_line_errors() {
    use eventprop_train::chip::record_file::load_npz;
    use RecArray::{F, F32, I, I2};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec.npz");
    write_rec(&path, |_| {});
    let good = load_npz(&path).unwrap();
    assert_eq!(good.layers[0].spikes[0].len(), 1);
    // float32 times and int32-like values are accepted (any float / integer dtype)
    write_rec(&path, |a| set(a, "l0.spike_time", F32(vec![1e-6])));
    assert!(load_npz(&path).is_ok());
    type Edit = Box<dyn FnOnce(&mut Vec<(String, RecArray)>)>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|a| set(a, "l0.spike_time", F(vec![f64::NAN]))),
            "`l0.spike_time`: entry 0: expected a finite time >= 0 s, got NaN",
        ),
        (
            Box::new(|a| set(a, "l0.spike_time", F(vec![-1e-6]))),
            "expected a finite time >= 0 s, got -0.000001",
        ),
        (
            Box::new(|a| set(a, "l0.trace_values", F(vec![80.0, f64::INFINITY, 1.0]))),
            "`l0.trace_values`: entry 1: expected a finite value, got inf",
        ),
        (
            Box::new(|a| set(a, "l0.trace_times", F(vec![0.0, 2e-6, 2e-6]))),
            "`l0.trace_times`: entry 2: expected increasing times",
        ),
        (
            Box::new(|a| set(a, "l0.spike_time", I(vec![1]))),
            "`l0.spike_time`: expected float32 or float64, got dtype '<i8'",
        ),
        (
            Box::new(|a| set(a, "l0.spike_sample", F(vec![0.0]))),
            "`l0.spike_sample`: expected an integer array, got dtype '<f8'",
        ),
        (
            Box::new(|a| set(a, "l0.spike_neuron", I2(ndarray::Array2::zeros((1, 1))))),
            "`l0.spike_neuron`: expected a 1-D array, got shape (1, 1)",
        ),
        (
            Box::new(|a| set(a, "l0.spike_neuron", I(vec![1]))),
            "`l0.spike_neuron`: entry 0: expected a neuron in [0, 1), got 1",
        ),
        (
            Box::new(|a| set(a, "l0.spike_sample", I(vec![0, 0]))),
            "`l0.spike_time`: expected 2 events as in l0.spike_sample, got 1",
        ),
        (
            Box::new(|a| set(a, "samples", I(vec![-1]))),
            "`samples`: expected one integer >= 0, got 1 values [-1]",
        ),
        (
            Box::new(|a| set(a, "layers", I(vec![2000]))),
            "`layers`: expected at most 1024, got 2000",
        ),
        (
            Box::new(|a| set(a, "l0.spikes_recorded", I(vec![2]))),
            "`l0.spikes_recorded`: expected 0 or 1, got 2",
        ),
        (
            Box::new(|a| set(a, "l0.trace_offsets", I(vec![0, 2]))),
            "`l0.trace_offsets`: expected 2 non-decreasing values from 0 to 3",
        ),
        (
            Box::new(|a| {
                a.retain(|(n, _)| n != "l0.spike_time");
            }),
            "`l0.spike_time`: missing array, expected float64 (E,)",
        ),
    ];
    for (edit, expected) in cases {
        write_rec(&path, edit);
        let e = load_npz(&path).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, eventprop_chip::Error::Format { .. }), "{msg}");
        assert!(msg.contains(expected), "expected `{expected}` in: {msg}");
        assert!(msg.contains("rec.npz") && !msg.contains('\n'), "{msg}");
    }
    // unreadable, empty and truncated files
    let e = load_npz(&dir.path().join("missing.npz")).unwrap_err();
    assert!(matches!(e, eventprop_chip::Error::Io { .. }), "{e}");
    std::fs::write(&path, b"").unwrap();
    assert!(load_npz(&path)
        .unwrap_err()
        .to_string()
        .contains("empty file"));
    write_rec(&path, |_| {});
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let msg = load_npz(&path).unwrap_err().to_string();
    assert!(msg.contains("rec.npz") && !msg.contains('\n'), "{msg}");
}

/// Fuzz (fixed seed, 300 cases, bounded): truncations and byte flips of a valid recording
/// file load or fail with a typed error — never a panic or an allocation of what a
/// corrupted header claims (the loader checks every entry's size before reading it).
#[test]
fn corrupted_recording_files_never_panic() {
    use eventprop_train::chip::record_file::{load_npz, save_npz};
    use rand::{Rng, SeedableRng};
    let chip = mock(
        MockConfig {
            record_hidden_membrane: true,
            ..MockConfig::default()
        },
        2,
    );
    let rec = run(&chip, 2);
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.npz");
    save_npz(&rec, &good).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let path = dir.path().join("fuzz.npz");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let (mut ok, mut err) = (0, 0);
    for case in 0..300 {
        let mut b = bytes.clone();
        if case % 3 == 0 {
            b.truncate(rng.random_range(0..bytes.len()));
        } else {
            for _ in 0..rng.random_range(1..8) {
                let i = rng.random_range(0..b.len());
                b[i] ^= 1 << rng.random_range(0..8);
            }
        }
        std::fs::write(&path, &b).unwrap();
        match load_npz(&path) {
            Ok(_) => ok += 1,
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.contains("fuzz.npz") && !msg.contains('\n'), "{msg}");
                err += 1;
            }
        }
    }
    assert_eq!(ok + err, 300);
    assert!(err > 100, "{err} errors");
}

/// The Python package's mock chip builds its network with `eventprop_chip::yinyang_network`
/// (it does not link the trainer); it must be the trainer's chip preset.
#[test]
fn chip_crate_yinyang_network_is_the_chip_preset() {
    let c = eventprop_train::TrainConfig::preset(eventprop_train::EngineKind::Chip);
    assert_eq!(
        c.network(),
        eventprop_chip::yinyang_network(c.network.hidden.clone())
    );
    assert_eq!(c.encoding, eventprop_data::yinyang::Encoding::default());
}

/// A small timing task as files: 48 channels, 4 classes, 10 events per channel in 50 ms
/// (so that neighbouring channels binned by 2 share steps), train and test sharing the
/// class templates.
fn event_files(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    use eventprop_train::timing::{timing_task, TimingTask};
    let task = |samples, seed| TimingTask {
        samples,
        channels: 48,
        classes: 4,
        duration: 0.05,
        events_per_sample: 480,
        jitter: 2e-3,
        noise_rate: 0.0,
        task_seed: 5,
        seed,
    };
    let (train, test) = (dir.join("train.npz"), dir.join("test.npz"));
    eventprop_train::files::write_events(&train, &timing_task(&task(120, 1)).unwrap()).unwrap();
    eventprop_train::files::write_events(&test, &timing_task(&task(40, 2)).unwrap()).unwrap();
    (train, test)
}

fn events_config(
    engine: EngineKind,
    train: &std::path::Path,
    test: &std::path::Path,
) -> TrainConfig {
    let mut c = TrainConfig::preset_for(eventprop_train::config::Task::Events, engine);
    c.data.train = Some(train.to_path_buf());
    c.data.test = Some(test.to_path_buf());
    c.network.hidden = vec![32];
    c.epochs = 2;
    c.batch_size = 16;
    c
}

#[test]
fn event_data_on_the_ideal_chip_train_bit_identically_to_software_on_the_binned_input() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = event_files(dir.path());
    let make = |engine| {
        let mut c = events_config(engine, &train, &test);
        c.chip.kind = ChipKind::Ideal;
        c.events.channel_bin = Some(2);
        // the software settings for both (the chip preset's readout regulariser differs)
        c.loss = LossKind::MaxOverTime { reg: 4e-4 };
        c
    };
    let mut soft = Trainer::new(make(EngineKind::Stepped)).unwrap();
    let mut hil = Trainer::new(make(EngineKind::Chip)).unwrap();
    // 48 channels binned by 2: 24 inputs on both
    assert_eq!(soft.engine().spec().n_in, 24);
    assert_eq!(hil.engine().spec().n_in, 24);
    for _ in 0..2 {
        soft.run_epoch(&mut |_| {}).unwrap();
        let m = hil.run_epoch(&mut |_| {}).unwrap();
        let c = m.chip.expect("chip stats in the metrics");
        let input = c.input.expect("input stats for event data");
        // every training event was offered: 108 training samples (10 % held out) × 480
        assert_eq!(input.events, 108 * 480);
        // two channels per row with 10 events each in 50 steps: some share a step
        assert!(input.merged > 0, "{input:?}");
        assert!(c.mapping.spikes > 0);
    }
    assert_eq!(soft.weights(), hil.weights());
    assert_eq!(strip(soft.history()), strip(hil.history()));
}

#[test]
fn the_chip_engine_bins_event_channels_onto_its_rows_by_default_and_refuses_what_does_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = event_files(dir.path());
    // 16 synapse rows: 8 signed inputs, so 48 channels are binned by ceil(48 / 8) = 6
    let mut c = events_config(EngineKind::Chip, &train, &test);
    c.chip.kind = ChipKind::Ideal;
    c.chip.input_rows = 16;
    c.network.hidden = vec![8];
    let t = Trainer::new(c.clone()).unwrap();
    assert_eq!(t.config().events.channel_bin, Some(6));
    assert_eq!(t.engine().spec().n_in, 8);
    // software keeps every channel unless told
    let s = Trainer::new(events_config(EngineKind::Stepped, &train, &test)).unwrap();
    assert_eq!(s.config().events.channel_bin, Some(1));
    assert_eq!(s.engine().spec().n_in, 48);
    // a bin that leaves more inputs than the rows take: refused naming the setting
    c.events.channel_bin = Some(2);
    let e = Trainer::new(c.clone()).unwrap_err().to_string();
    assert!(
        e.starts_with(
            "events.channel_bin: expected at most 8 inputs per neuron (chip.input_rows = 16"
        ),
        "{e}"
    );
    assert!(e.ends_with("got 24 inputs to the first layer"), "{e}");
    // a hidden layer wider than the rows of the next layer
    c.events.channel_bin = None;
    c.network.hidden = vec![9];
    let e = Trainer::new(c.clone()).unwrap_err().to_string();
    assert!(
        e.starts_with("network.hidden: expected at most 8 inputs per neuron"),
        "{e}"
    );
    // more neurons than the chip has
    c.chip.input_rows = 256;
    c.chip.neurons = 20;
    c.network.hidden = vec![17];
    let e = Trainer::new(c).unwrap_err().to_string();
    assert!(
        e.contains("hidden + output neurons at most chip.neurons = 20")
            && e.ends_with("got 21 (17 hidden + 4 output)"),
        "{e}"
    );
}

#[test]
fn hil_on_event_data_runs_the_mock_on_its_time_scale_and_counts_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = event_files(dir.path());
    let mut c = events_config(EngineKind::Chip, &train, &test);
    c.events.channel_bin = Some(2);
    c.epochs = 1;
    let mut t = Trainer::new(c).unwrap();
    let m = t.run_epoch(&mut |_| {}).unwrap();
    let chip = m.chip.unwrap();
    let input = chip.input.unwrap();
    assert_eq!(input.events, 108 * 480);
    assert_eq!(input.dropped, 0);
    // the same count as the input mapping of the training set gives on its own
    let map = eventprop_train::chip::input::InputMap {
        dt: t.config().events.dt,
        steps: t.config().steps(),
        rows: 24,
    };
    let refs: Vec<&[Spike]> = t.data().train.samples.iter().map(Vec::as_slice).collect();
    assert_eq!(map.map_batch(&refs).1, input);
    // the mock's recorded hidden spikes come back in the data's time (ms, not µs)
    let spikes = t
        .engine()
        .hidden_spikes(t.weights(), &t.data().train.samples[0])
        .unwrap();
    let last = spikes[0].iter().map(|s| s.time).fold(0.0, f64::max);
    assert!(
        !spikes[0].is_empty() && last > 1e-3 && last < t.config().t_sim(),
        "{last}"
    );
}

//! Hardware in the loop through the binary (the CI smoke test): `train yinyang --chip`,
//! `eval --chip`, `chip calibrate`, and the flag checks.

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eventprop"))
        .args(args)
        .output()
        .expect("binary runs")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn one_line_error(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let err = String::from_utf8_lossy(&o.stderr).trim_end().to_string();
    assert_eq!(err.lines().count(), 1, "{err}");
    err
}

const SMALL: &[&str] = &[
    "--train-size",
    "150",
    "--val-size",
    "50",
    "--test-size",
    "100",
    "--epochs",
    "1",
    "--threads",
    "1",
    "--quiet",
];

fn line<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no `{key}` in {out}"))
}

#[test]
fn hil_smoke_train_on_the_mock_and_deploy_on_both_chips() {
    let dir = tempfile::tempdir().unwrap();
    let hil = dir.path().join("hil");
    let mut a = vec!["train", "yinyang", "--chip", "mock", "--chip-seed", "3"];
    a.extend_from_slice(SMALL);
    a.extend_from_slice(&["--out", hil.to_str().unwrap()]);
    ok(&run(&a));
    let cfg = std::fs::read_to_string(hil.join("config.toml")).unwrap();
    assert!(cfg.contains("engine = \"chip\""), "{cfg}");
    // the recording statistics are in the metrics
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(hil.join("metrics.json")).unwrap()).unwrap();
    let chip = &m[0]["chip"];
    assert!(chip["mapping"]["spikes"].as_u64().unwrap() > 0, "{m}");
    assert!(chip["total_weights"].as_u64().unwrap() > 0, "{m}");

    // a software checkpoint deployed on the ideal chip gives exactly its own accuracy
    let sw = dir.path().join("sw");
    let mut a = vec!["train", "yinyang"];
    a.extend_from_slice(SMALL);
    a.extend_from_slice(&["--out", sw.to_str().unwrap()]);
    ok(&run(&a));
    let ck = sw.join("checkpoint.safetensors");
    let soft = ok(&run(&["eval", "--checkpoint", ck.to_str().unwrap()]));
    let ideal = ok(&run(&[
        "eval",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--chip",
        "ideal",
    ]));
    assert_eq!(line(&soft, "accuracy: "), line(&ideal, "accuracy: "));
    assert_eq!(line(&soft, "loss: "), line(&ideal, "loss: "));
    let mock = ok(&run(&[
        "eval",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--chip",
        "mock",
    ]));
    assert!(mock.contains("mock chip, chip seed 0"), "{mock}");
    let acc = crate::common::accuracy(&mock, "accuracy: ");
    assert!((0.0..=1.0).contains(&acc));
}

#[test]
fn calibrate_prints_and_saves_the_scales() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cal.json");
    let cfg = dir.path().join("chip.toml");
    // a chip with a known weight gain and no fixed pattern, noise or rounding
    std::fs::write(
        &cfg,
        "weight_gain = 1.25\nfixed_pattern = false\nnoise = false\ncadc_quantize = false\ncadc_offset = false\n",
    )
    .unwrap();
    let o = ok(&run(&[
        "chip",
        "calibrate",
        "--chip",
        "mock",
        "--chip-config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]));
    assert!(o.contains("weight scale:"), "{o}");
    let c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    // injected gain 1.25 → weight scale 32 / 1.25 = 25.6 levels per model unit
    assert!(
        (c["weight_gain"].as_f64().unwrap() - 1.25).abs() < 1e-3,
        "{c}"
    );
    assert!(
        (c["weight_scale"].as_f64().unwrap() - 25.6).abs() < 0.05,
        "{c}"
    );
}

#[test]
fn chip_flags_are_checked() {
    let e = one_line_error(&run(&[
        "train",
        "yinyang",
        "--engine",
        "stepped",
        "--chip-seed",
        "2",
    ]));
    assert!(
        e.contains("--chip-seed: not read by the stepped engine"),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "noise_level = 1\n").unwrap();
    let e = one_line_error(&run(&[
        "train",
        "yinyang",
        "--chip",
        "mock",
        "--chip-config",
        cfg.to_str().unwrap(),
        "--out",
        dir.path().join("r").to_str().unwrap(),
    ]));
    assert!(e.contains("unknown key `chip.mock.noise_level`"), "{e}");
    let e = one_line_error(&run(&["chip", "calibrate", "--chip", "ideal"]));
    assert!(e.contains("--chip: expected `mock`"), "{e}");
}

#[test]
fn a_saved_recording_maps_onto_the_grid_and_replays_through_neuron() {
    use eventprop_train::chip::record_file::save_npz;
    use eventprop_train::chip::{LayerRecording, Recording, SampledTrace};
    use eventprop_train::data::Spike;
    let dir = tempfile::tempdir().unwrap();
    // one sample, one layer of 2 neurons: spikes at 2.5 µs (boundary → step 3) and two in
    // step 5 (4.6, 5.4 µs: one collapses); membrane samples every 2 µs
    let trace = SampledTrace {
        times: vec![0.0, 2e-6, 4e-6, 6e-6, 8e-6],
        values: vec![80.0, 100.0, 90.0, 85.0, 80.0],
    };
    let rec = Recording {
        layers: vec![LayerRecording {
            size: 2,
            spikes: vec![vec![
                Spike {
                    time: 2.5e-6,
                    neuron: 0,
                },
                Spike {
                    time: 4.6e-6,
                    neuron: 1,
                },
                Spike {
                    time: 5.4e-6,
                    neuron: 1,
                },
            ]],
            membrane: Some(vec![vec![trace.clone(), trace]]),
        }],
        samples: 1,
    };
    let r = dir.path().join("rec.npz");
    save_npz(&rec, &r).unwrap();
    let out = dir.path().join("hw");
    let o = ok(&run(&[
        "chip",
        "map",
        "--recording",
        r.to_str().unwrap(),
        "--steps",
        "8",
        "--offset",
        "80",
        "--trace-scale",
        "0.05",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert!(o.contains("events 3, collapsed 1, dropped 0"), "{o}");
    // 10 steps read 0..9 µs; the traces end at 8 µs: one held read per neuron, reported in
    // stats.json and in one warning line
    let held = run(&[
        "chip",
        "map",
        "--recording",
        r.to_str().unwrap(),
        "--steps",
        "10",
        "--out",
        dir.path().join("held").to_str().unwrap(),
    ]);
    ok(&held);
    let warn = String::from_utf8_lossy(&held.stderr);
    assert!(
        warn.lines().count() == 1
            && warn.starts_with("warning: 2 of 20 membrane reads fall outside"),
        "{warn}"
    );
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("held/stats.json")).unwrap())
            .unwrap();
    assert_eq!(stats["held"], 2);
    // a grid shifted past the traces (reads at 9..18 µs, samples at 0..8 µs) reads none of
    // their samples: refused in one line
    let far = one_line_error(&run(&[
        "chip",
        "map",
        "--recording",
        r.to_str().unwrap(),
        "--steps",
        "10",
        "--shift",
        "9e-6",
        "--out",
        dir.path().join("far").to_str().unwrap(),
    ]));
    assert!(
        far.contains("recording: expected trace samples overlapping the grid's read times"),
        "{far}"
    );
    let z: ndarray::Array3<f64> = ndarray_npy::read_npy(out.join("spikes.npy")).unwrap();
    assert_eq!(z.dim(), (8, 1, 2));
    assert_eq!((z[[3, 0, 0]], z[[5, 0, 1]], z.sum()), (1.0, 1.0, 2.0));
    let v: ndarray::Array3<f64> = ndarray_npy::read_npy(out.join("membrane.npy")).unwrap();
    // step 1 (t = 1 µs): halfway between 80 and 100 → 90; (90 - 80) · 0.05 = 0.5
    assert!((v[[1, 0, 0]] - 0.5).abs() < 1e-12, "{v}");
    // replay: the seed function returns the recorded spikes unchanged
    let x = ndarray::Array3::<f64>::zeros((8, 1, 2));
    let xp = dir.path().join("x.npy");
    ndarray_npy::write_npy(&xp, &x).unwrap();
    let nout = dir.path().join("neuron");
    ok(&run(&[
        "neuron",
        "--input",
        xp.to_str().unwrap(),
        "--hw-spikes",
        out.join("spikes.npy").to_str().unwrap(),
        "--hw-membrane",
        out.join("membrane.npy").to_str().unwrap(),
        "--out",
        nout.to_str().unwrap(),
    ]));
    let replayed: ndarray::Array3<f64> = ndarray_npy::read_npy(nout.join("spikes.npy")).unwrap();
    assert_eq!(replayed, z);
    let e = one_line_error(&run(&[
        "chip",
        "map",
        "--recording",
        r.to_str().unwrap(),
        "--steps",
        "8",
        "--layer",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert!(e.contains("--layer: expected < 1"), "{e}");
}

#[test]
fn a_saved_calibration_is_applied_by_eval_and_train() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    ok(&run(&[
        "chip",
        "calibrate",
        "--chip",
        "mock",
        "--out",
        &p("cal.json"),
    ]));
    let mut a = vec!["train", "yinyang"];
    a.extend_from_slice(SMALL);
    let sw = p("sw");
    a.extend_from_slice(&["--out", &sw]);
    ok(&run(&a));
    let ck = p("sw/checkpoint.safetensors");
    let eval = |extra: &[&str]| {
        let mut a = vec![
            "eval",
            "--checkpoint",
            &ck,
            "--chip",
            "mock",
            "--size",
            "200",
        ];
        a.extend_from_slice(extra);
        run(&a)
    };
    // the saved calibration is the one measured at start: the same numbers
    let measured = ok(&eval(&[]));
    let cal = p("cal.json");
    let read = ok(&eval(&["--chip-calibration", &cal]));
    assert!(
        measured.contains("calibration (measured): weight scale 31.9"),
        "{measured}"
    );
    assert!(
        read.contains(&format!("calibration (read from {cal}): weight scale 31.9")),
        "{read}"
    );
    for key in ["accuracy: ", "loss: ", "hidden spikes per sample: "] {
        assert_eq!(line(&measured, key), line(&read, key), "{key}");
    }
    // and it is what the chip uses: another weight scale deploys other weights
    let mut c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cal).unwrap()).unwrap();
    c["weight_scale"] = serde_json::json!(20.0);
    std::fs::write(p("cal20.json"), c.to_string()).unwrap();
    let other = ok(&eval(&["--chip-calibration", &p("cal20.json")]));
    assert!(other.contains("weight scale 20.000"), "{other}");
    assert_ne!(line(&measured, "loss: "), line(&other, "loss: "));
    // another chip's calibration, a file that is not one, and a software run are refused
    let e = one_line_error(&eval(&["--chip-seed", "2", "--chip-calibration", &cal]));
    assert!(
        e.contains("chip.calibration: expected a calibration of the run's chip seed 2, got one of chip seed 0"),
        "{e}"
    );
    std::fs::write(p("bad.json"), "{\"weight_scale\": 3}").unwrap();
    let e = one_line_error(&eval(&["--chip-calibration", &p("bad.json")]));
    assert!(
        e.contains("--chip-calibration")
            && e.contains("expected a calibration as `eventprop chip calibrate --out` writes it"),
        "{e}"
    );
    let e = one_line_error(&run(&[
        "train",
        "yinyang",
        "--chip-calibration",
        &cal,
        "--out",
        &p("x"),
    ]));
    assert!(
        e.contains("--chip-calibration: read by the chip engine only"),
        "{e}"
    );
    // training on the mock with it: the run's config keeps it, and eval uses it
    let mut a = vec![
        "train",
        "yinyang",
        "--chip",
        "mock",
        "--chip-calibration",
        &cal,
    ];
    a.extend_from_slice(SMALL);
    let hil = p("hil");
    a.extend_from_slice(&["--out", &hil]);
    ok(&run(&a));
    let cfg: toml::Table =
        toml::from_str(&std::fs::read_to_string(dir.path().join("hil/config.toml")).unwrap())
            .unwrap();
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cal).unwrap()).unwrap();
    assert_eq!(
        cfg["chip"]["calibration"]["weight_scale"].as_float(),
        saved["weight_scale"].as_f64()
    );
    let o = ok(&run(&[
        "eval",
        "--checkpoint",
        &p("hil/checkpoint.safetensors"),
        "--chip",
        "mock",
        "--size",
        "20",
    ]));
    assert!(o.contains("calibration (the run's)"), "{o}");
}

#[test]
fn chip_record_writes_a_recording_that_chip_map_reads() {
    use eventprop_train::chip::record_file::load_npz;
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_eventprop"))
        .current_dir(dir.path())
        .args(["chip", "record", "--chip", "mock", "--size", "4"])
        .output()
        .unwrap();
    let out = ok(&o);
    assert!(
        out.contains("recorded 4 samples (mock chip, chip seed 0"),
        "{out}"
    );
    let rec = load_npz(&dir.path().join("recording.npz")).unwrap();
    assert_eq!((rec.samples, rec.layers.len()), (4, 2));
    assert_eq!((rec.layers[0].size, rec.layers[1].size), (120, 3));
    // the fresh network's hidden layer spikes, off the grid (the mock's clock)
    let times: Vec<f64> = rec.layers[0]
        .spikes
        .iter()
        .flatten()
        .map(|s| s.time)
        .collect();
    assert!(!times.is_empty());
    assert!(
        times
            .iter()
            .any(|t| ((t / 1e-6).round() * 1e-6 - t).abs() > 1e-9),
        "{times:?}"
    );
    // the readout's CADC samples every 2 µs from 0 to 38 µs
    let m = rec.layers[1].membrane.as_ref().unwrap();
    assert_eq!(m[0][0].times.len(), 20);
    // the printed `chip map` command runs as printed
    let cmd = line(&out, "map its readout layer: eventprop ");
    let args: Vec<&str> = cmd.split_whitespace().collect();
    let mapped = ok(&Command::new(env!("CARGO_BIN_EXE_eventprop"))
        .current_dir(dir.path())
        .args(&args)
        .output()
        .unwrap());
    assert!(
        mapped.contains("layer 1: (38, 4, 3) on the grid"),
        "{mapped}"
    );
    let v: ndarray::Array3<f64> =
        ndarray_npy::read_npy(dir.path().join("hw/membrane.npy")).unwrap();
    // at step 0 the readout rests at 0 (model units) up to the CADC's offsets and rounding
    assert!(
        v.index_axis(ndarray::Axis(0), 0)
            .iter()
            .all(|x| x.abs() < 0.2),
        "{v}"
    );
    assert!(v.iter().any(|x| x.abs() > 0.01), "the readout moves");
    // a size of 0 is refused
    let e = one_line_error(&run(&["chip", "record", "--chip", "mock", "--size", "0"]));
    assert!(e.contains("--size: expected 1 to 100000, got 0"), "{e}");
}

/// `train events --chip mock` on a generated timing task (64 channels binned by 2 onto 32
/// inputs): it reports the binning and the input counts, stores them in `metrics.json`,
/// and `eval --data … --chip` deploys the checkpoint on both chips; a network beyond the
/// chip's rows is one error line naming the setting.
#[test]
fn event_data_train_on_the_mock_and_eval_on_both_chips() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    for (file, samples, seed) in [("train.npz", "60", "1"), ("test.npz", "30", "2")] {
        ok(&run(&[
            "data",
            "timing",
            "--out",
            &p(file),
            "--samples",
            samples,
            "--seed",
            seed,
            "--channels",
            "64",
            "--classes",
            "3",
            "--duration",
            "0.03",
            "--events-per-sample",
            "640",
            "--jitter",
            "1e-3",
        ]));
    }
    let hil = p("hil");
    let o = run(&[
        "train",
        "events",
        "--train",
        &p("train.npz"),
        "--test",
        &p("test.npz"),
        "--chip",
        "mock",
        "--chip-seed",
        "2",
        "--channel-bin",
        "2",
        "--hidden",
        "16",
        "--epochs",
        "1",
        "--threads",
        "1",
        "--quiet",
        "--out",
        &hil,
    ]);
    let out = ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(
            "chip: channels binned by 2 onto 32 inputs (64 of the chip's 256 synapse rows"
        ),
        "{err}"
    );
    // 54 training samples (10 % of 60 held out) × 640 events
    let counts = line(&out, "  chip input (training): ");
    assert!(counts.starts_with("34560 events, "), "{counts}");
    let metrics: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("hil/metrics.json")).unwrap(),
    )
    .unwrap();
    let input = &metrics[0]["chip"]["input"];
    assert_eq!(input["events"], 34560, "{metrics}");
    // two channels per row, 10 events each in 30 steps of 1 ms: some share a step
    let merged = input["merged"].as_u64().unwrap();
    assert!(merged > 0);
    assert!(counts.contains(&format!("{merged} merged")), "{counts}");
    let ck = format!("{hil}/checkpoint.safetensors");
    for chip in ["mock", "ideal"] {
        let out = ok(&run(&[
            "eval",
            "--checkpoint",
            &ck,
            "--data",
            &p("test.npz"),
            "--chip",
            chip,
            "--threads",
            "1",
        ]));
        // the test file: 30 samples × 640 events, binned as the run was
        let l = line(&out, "chip input: channels binned by 2 onto 32 inputs");
        assert!(l.contains("; 19200 events, "), "{l}");
        assert!(line(&out, "samples: ").starts_with("30 (file "), "{out}");
        assert!(out.contains(&format!("{chip} chip")), "{out}");
    }
    // 64 channels unbinned on 32 rows (16 signed inputs): refused, naming the setting
    let e = one_line_error(&run(&[
        "train",
        "events",
        "--train",
        &p("train.npz"),
        "--chip",
        "ideal",
        "--channel-bin",
        "1",
        "--chip-input-rows",
        "32",
        "--hidden",
        "16",
        "--epochs",
        "1",
        "--quiet",
        "--out",
        &p("bad"),
    ]));
    assert!(
        e.starts_with("error: events.channel_bin: expected at most 16 inputs per neuron (chip.input_rows = 32")
            && e.contains("bin the channels by 4")
            && e.ends_with("got 64 inputs to the first layer"),
        "{e}"
    );
}

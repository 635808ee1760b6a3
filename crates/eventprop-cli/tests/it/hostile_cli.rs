//! Hostile inputs of the second reliability round: each ends in one line naming the input,
//! its value and the bound (exit 1), never a panic, a hang or an out-of-memory kill.

use std::path::Path;

use crate::common::{one_line_error, run, SMALL};

/// `chip calibrate --chip mock` with a `--chip-config` of `body`: the one-line error.
fn chip_config_error(dir: &Path, body: &str) -> String {
    let cfg = dir.join("chip.toml");
    std::fs::write(&cfg, body).unwrap();
    one_line_error(
        &run(
            dir,
            &[
                "chip",
                "calibrate",
                "--chip",
                "mock",
                "--chip-config",
                cfg.to_str().unwrap(),
                "--out",
                dir.join("cal.json").to_str().unwrap(),
            ],
        ),
        1,
    )
}

#[test]
fn chip_periods_and_clock_out_of_bounds_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (body, key, bound) in [
        ("cadc_period = 1e-300\n", "chip.cadc_period", "expected >= "),
        ("cadc_period = 1e-12\n", "chip.cadc_period", "expected >= "),
        ("noise_dt = 1e-300\n", "chip.noise_dt", "expected >= "),
        ("noise_dt = 1e-12\n", "chip.noise_dt", "expected >= "),
        (
            "clock_hz = 1e300\n",
            "chip.clock_hz",
            "expected in [1e3, 1e12] Hz",
        ),
        (
            "clock_hz = 10.0\n",
            "chip.clock_hz",
            "expected in [1e3, 1e12] Hz",
        ),
        ("clock_hz = 1e4\n", "chip.clock_hz", "expected >= 1/dt"),
        (
            "cadc_period = 1e-3\n",
            "chip.cadc_period",
            "<= the simulated window",
        ),
        (
            "noise_dt = 1e-3\n",
            "chip.noise_dt",
            "<= the simulated window",
        ),
        ("weight_gain = 1e300\n", "chip.weight_gain", "expected <= "),
        ("noise_std = 1e300\n", "chip.noise_std", "expected in [0, "),
        (
            "refractory = 1e300\n",
            "chip.refractory",
            "expected in [0, ",
        ),
        (
            "threshold_offset = -1e300\n",
            "chip.threshold_offset",
            "expected in [",
        ),
    ] {
        let e = chip_config_error(d, body);
        assert!(e.contains(key) && e.contains(bound), "{body}: {e}");
        assert!(e.contains("got "), "{body}: {e}");
    }
}

/// An event file of `samples` samples with one event each (unit `k % 4`, label `k % 2`,
/// time `k` ms), written by the library's writer.
pub fn write_events(path: &Path, samples: usize) {
    use eventprop_train::data::{Spike, SpikeSet};
    let set = SpikeSet {
        samples: (0..samples)
            .map(|k| {
                vec![Spike {
                    time: (k % 10) as f64 * 1e-3,
                    neuron: (k % 4) as u32,
                }]
            })
            .collect(),
        labels: (0..samples).map(|k| k % 2).collect(),
    };
    eventprop_train::files::write_events(path, &set).unwrap();
}

#[test]
fn sizes_from_input_are_bounded_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // bench: 10^8 steps of the Yin-Yang size
    let e = one_line_error(
        &run(
            d,
            &[
                "bench",
                "--size",
                "yinyang",
                "--steps",
                "100000000",
                "--reps",
                "1",
            ],
        ),
        1,
    );
    assert!(
        e.contains("memory: expected an estimated peak below --memory-limit-gib = 16 GiB")
            && e.contains("T = 100000000 steps"),
        "{e}"
    );
    // chip map: 10^10 steps of a one-sample recording
    use eventprop_train::chip::record_file::save_npz;
    use eventprop_train::chip::{LayerRecording, Recording};
    let rec = Recording {
        layers: vec![LayerRecording {
            size: 3,
            spikes: vec![Vec::new()],
            membrane: None,
        }],
        samples: 1,
    };
    let r = d.join("rec.npz");
    save_npz(&rec, &r).unwrap();
    let map = |steps: &str| {
        run(
            d,
            &[
                "chip",
                "map",
                "--recording",
                r.to_str().unwrap(),
                "--layer",
                "0",
                "--steps",
                steps,
                "--out",
                d.join("m").to_str().unwrap(),
            ],
        )
    };
    let e = one_line_error(&map("10000000000"), 1);
    assert!(
        e.contains("steps: expected a grid of at most 8 GiB")
            && e.contains("10000000000 steps × 1 samples × 3 neurons"),
        "{e}"
    );
    // a recording declaring a million samples of 120 + 3 neurons (the 30 GB)
    let rec = Recording {
        layers: vec![
            LayerRecording {
                size: 120,
                spikes: vec![Vec::new(); 1_000_000],
                membrane: None,
            },
            LayerRecording {
                size: 3,
                spikes: vec![Vec::new(); 1_000_000],
                membrane: None,
            },
        ],
        samples: 1_000_000,
    };
    save_npz(&rec, &r).unwrap();
    let e = one_line_error(&map("38"), 1);
    assert!(
        e.contains("`l0.size`: expected at most 10000000 samples × neurons, got 1000000 × 120"),
        "{e}"
    );
    // within the loader's bound, but 380 steps of it are a 27 GiB grid
    let rec = Recording {
        layers: vec![LayerRecording {
            size: 9,
            spikes: vec![Vec::new(); 1_000_000],
            membrane: None,
        }],
        samples: 1_000_000,
    };
    save_npz(&rec, &r).unwrap();
    let e = one_line_error(&map("380"), 1);
    assert!(e.contains("380 steps × 1000000 samples × 9 neurons"), "{e}");
    // event data against --memory-limit-gib: refused naming the file and the count
    let ev = d.join("ev.npz");
    write_events(&ev, 2000);
    let e = one_line_error(
        &run(
            d,
            &[
                "train",
                "events",
                "--train",
                ev.to_str().unwrap(),
                "--memory-limit-gib",
                "0.00001",
                "--out",
                d.join("run").to_str().unwrap(),
            ],
        ),
        1,
    );
    assert!(
        e.contains("memory: expected at most")
            && e.contains("ev.npz")
            && e.contains("2000 events declared"),
        "{e}"
    );
    // 20000 empty samples and one event: refused by the samples they declare
    let mut samples = vec![Vec::new(); 20_000];
    samples[0].push((0.0, 0));
    write_set(&d.join("many.npz"), samples, vec![0; 20_000]);
    let e = one_line_error(
        &run(
            d,
            &[
                "train",
                "events",
                "--train",
                "many.npz",
                "--memory-limit-gib",
                "0.0001",
                "--out",
                d.join("run2").to_str().unwrap(),
            ],
        ),
        1,
    );
    assert!(
        e.contains("samples in") && e.contains("20000 samples declared by `labels`"),
        "{e}"
    );
}

/// An allocation the estimate let through but the machine (here a 1.5 GB address-space
/// limit) cannot give: one line naming the bytes, exit 1, not Rust's abort (134).
#[cfg(target_os = "linux")]
#[test]
fn a_failed_allocation_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let o = std::process::Command::new("sh")
        .current_dir(dir.path())
        .arg("-c")
        .arg(format!(
            "ulimit -v 1500000; exec '{}' train yinyang --hidden 20000,20000 --memory-limit-gib 100 --epochs 1 --out run",
            env!("CARGO_BIN_EXE_eventprop")
        ))
        .output()
        .unwrap();
    let e = one_line_error(&o, 1);
    assert!(
        e.starts_with("error: memory: an allocation of ") && e.contains(" bytes failed"),
        "{e}"
    );
}

/// `train yinyang --out run SMALL EXTRA` in `dir`.
fn train_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["train", "yinyang", "--out", "run"];
    a.extend_from_slice(SMALL);
    a.extend_from_slice(extra);
    a
}

/// A run folder is written by one process at a time: a second `train` into it and a
/// `--resume` of it are refused while its writer lives (a real concurrent writer, and a
/// lock held by a live process), and accepted once the lock's process is gone.
#[cfg(target_os = "linux")]
#[test]
fn a_live_run_folder_is_locked_against_a_second_writer() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    crate::common::ok(&run(d, &train_args(&["--epochs", "1"])));
    let lock = d.join("run/.eventprop.lock");
    assert!(!lock.exists(), "released on exit");
    // a writer that lives: resume it for many epochs in the background
    let mut writer = Command::new(env!("CARGO_BIN_EXE_eventprop"))
        .current_dir(d)
        .args([
            "train", "yinyang", "--resume", "run", "--epochs", "400", "--quiet",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !lock.exists() && start.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(lock.exists(), "the writer took the lock");
    let e = one_line_error(
        &run(
            d,
            &["train", "yinyang", "--resume", "run", "--epochs", "500"],
        ),
        1,
    );
    let pid = writer.id();
    assert!(
        e.starts_with("error: --resume: run: the run folder is in use by process ")
            && e.contains(&pid.to_string()),
        "{e}"
    );
    writer.kill().unwrap();
    writer.wait().unwrap();
    // a stale lock (its process is dead) is replaced: the resume runs (one more epoch than
    // the killed writer finished: metrics.csv has a header and a line per epoch)
    assert!(lock.exists(), "a killed writer leaves its lock");
    let done = std::fs::read_to_string(d.join("run/metrics.csv"))
        .unwrap()
        .lines()
        .count()
        - 1;
    let more = (done + 1).to_string();
    crate::common::ok(&run(
        d,
        &["train", "yinyang", "--resume", "run", "--epochs", &more],
    ));
    assert!(!lock.exists());
    // a lock held by a live process refuses a fresh train into the folder too
    let fresh = d.join("fresh");
    std::fs::create_dir(&fresh).unwrap();
    let mut holder = Command::new("sleep").arg("30").spawn().unwrap();
    std::fs::write(fresh.join(".eventprop.lock"), format!("{}\n", holder.id())).unwrap();
    let mut a = train_args(&["--epochs", "1"]);
    a[3] = "fresh";
    let e = one_line_error(&run(d, &a), 1);
    assert!(
        e.contains("--out: fresh: the run folder is in use by process"),
        "{e}"
    );
    assert!(!fresh.join("metrics.json").exists());
    holder.kill().unwrap();
    holder.wait().unwrap();
}

/// Resume reads the data the run started with: the paths are stored absolute (a resume
/// from another directory works), and a regenerated file at the same path is refused in one
/// line unless `--allow-data-change`.
#[test]
fn resume_checks_the_data_fingerprints_from_any_directory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_events(&d.join("ev.npz"), 200);
    let train = |cwd: &Path, extra: &[&str]| {
        let mut a = vec!["train", "events", "--threads", "1", "--quiet"];
        a.extend_from_slice(extra);
        run(cwd, &a)
    };
    crate::common::ok(&train(
        d,
        &[
            "--train", "ev.npz", "--hidden", "8", "--epochs", "1", "--out", "run",
        ],
    ));
    let cfg = std::fs::read_to_string(d.join("run/config.toml")).unwrap();
    assert!(cfg.contains("[data.fingerprints]"), "{cfg}");
    let sub = d.join("sub");
    std::fs::create_dir(&sub).unwrap();
    crate::common::ok(&train(&sub, &["--resume", "../run", "--epochs", "2"]));
    write_events(&d.join("ev.npz"), 150);
    let e = one_line_error(&train(&sub, &["--resume", "../run", "--epochs", "3"]), 1);
    assert!(
        e.contains("data.train: expected the data the run started with (")
            && e.contains("ev.npz")
            && e.contains("--allow-data-change"),
        "{e}"
    );
    crate::common::ok(&train(
        &sub,
        &["--resume", "../run", "--epochs", "3", "--allow-data-change"],
    ));
}

/// An event file of the given samples (`(time, unit)` events) and labels.
fn write_set(path: &Path, samples: Vec<Vec<(f64, u32)>>, labels: Vec<usize>) {
    use eventprop_train::data::{Spike, SpikeSet};
    let set = SpikeSet {
        samples: samples
            .into_iter()
            .map(|s| {
                s.into_iter()
                    .map(|(time, neuron)| Spike { time, neuron })
                    .collect()
            })
            .collect(),
        labels,
    };
    eventprop_train::files::write_events(path, &set).unwrap();
}

/// The samples of [`write_events`] (one event each, units 0..4, labels 0..2, times up to
/// 9 ms) with `f` applied to sample 7.
fn samples_with(f: impl Fn(&mut (f64, u32))) -> Vec<Vec<(f64, u32)>> {
    (0..200)
        .map(|k| {
            let mut e = ((k % 10) as f64 * 1e-3, (k % 4) as u32);
            if k == 7 {
                f(&mut e);
            }
            vec![e]
        })
        .collect()
}

#[test]
fn event_data_is_checked_against_the_network() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_events(&d.join("train.npz"), 200);
    let labels: Vec<usize> = (0..200).map(|k| k % 2).collect();
    let train = |extra: &[&str]| {
        let mut a = vec![
            "train",
            "events",
            "--train",
            "train.npz",
            "--hidden",
            "8",
            "--epochs",
            "1",
            "--threads",
            "1",
            "--quiet",
        ];
        a.extend_from_slice(extra);
        run(d, &a)
    };
    // a test file with a unit or a label the train file does not have
    write_set(
        &d.join("unit.npz"),
        samples_with(|e| e.1 = 200_000),
        labels.clone(),
    );
    let e = one_line_error(&train(&["--test", "unit.npz", "--out", "r1"]), 1);
    assert!(
        e.contains("unit.npz") && e.contains("unit 200000") && e.contains("4 channels"),
        "{e}"
    );
    let mut extra_label = labels.clone();
    extra_label[7] = 2;
    write_set(&d.join("label.npz"), samples_with(|_| {}), extra_label);
    let e = one_line_error(&train(&["--test", "label.npz", "--out", "r2"]), 1);
    assert!(e.contains("label.npz") && e.contains("2 classes"), "{e}");
    // a stray unit 200000 in the train file: the network gets 200001 inputs, of which 5
    // carry events; it trains (the data say so) with one warning line naming the counts
    write_set(
        &d.join("stray.npz"),
        samples_with(|e| e.1 = 200_000),
        labels.clone(),
    );
    let o = run(
        d,
        &[
            "train",
            "events",
            "--train",
            "stray.npz",
            "--hidden",
            "4",
            "--epochs",
            "1",
            "--threads",
            "1",
            "--quiet",
            "--out",
            "r_stray",
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.lines().any(|l| l.starts_with(
            "warning: data: events on only 5 of the network's 200001 input channels (largest unit 200000)"
        )),
        "{err}"
    );
    // the same data without the stray unit: no such warning
    let o = train(&["--out", "r_plain"]);
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("input channels"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // a unit near u32::MAX in the train file: the estimate names the inputs it implies
    write_set(
        &d.join("huge_unit.npz"),
        samples_with(|e| e.1 = 4_294_967_294),
        labels.clone(),
    );
    let e = one_line_error(
        &run(
            d,
            &["train", "events", "--train", "huge_unit.npz", "--out", "r0"],
        ),
        1,
    );
    assert!(e.contains("the weights: 4294967295 inputs"), "{e}");
    // no events at all: refused
    write_set(
        &d.join("empty.npz"),
        vec![Vec::new(); 50],
        (0..50).map(|k| k % 2).collect(),
    );
    let e = one_line_error(
        &run(
            d,
            &["train", "events", "--train", "empty.npz", "--out", "r3"],
        ),
        1,
    );
    assert!(
        e.contains("data.train: expected at least one input event"),
        "{e}"
    );
    // one class: a warning line
    write_set(&d.join("one.npz"), samples_with(|_| {}), vec![0; 200]);
    let o = run(
        d,
        &[
            "train", "events", "--train", "one.npz", "--hidden", "8", "--epochs", "1", "--quiet",
            "--out", "r4",
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("warning: data.train: all 180 training samples have label 0")),
        "{err}"
    );
    // --t-max shorter than the data: a warning with the counts
    let o = train(&["--t-max", "5e-3", "--out", "r5"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("warning: events.t_max = 0.005 s: ")
                && l.contains("events lie past the window")),
        "{err}"
    );
    // --t-max below one step, --dt beyond the data: one line naming the key
    let e = one_line_error(&train(&["--t-max", "1e-9", "--out", "r6"]), 1);
    assert!(
        e.contains("events.t_max: expected at least one step"),
        "{e}"
    );
    let e = one_line_error(&train(&["--dt", "1e300", "--out", "r7"]), 1);
    assert!(
        e.contains("events.dt: expected a step that resolves the data"),
        "{e}"
    );
    // eval on a file reaching past the trained window (9 ms): refused, or truncated
    crate::common::ok(&train(&["--out", "r8"]));
    write_set(&d.join("late.npz"), samples_with(|e| e.0 = 0.5), labels);
    let ck = "r8/checkpoint.safetensors";
    let e = one_line_error(
        &run(d, &["eval", "--checkpoint", ck, "--data", "late.npz"]),
        1,
    );
    assert!(
        e.contains("late.npz: sample 7 has an event at 0.5 s, past the network's window")
            && e.contains("--truncate"),
        "{e}"
    );
    let o = run(
        d,
        &[
            "eval",
            "--checkpoint",
            ck,
            "--data",
            "late.npz",
            "--truncate",
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("warning: --data late.npz: 1 of 200 events"),
        "{err}"
    );
}

#[test]
fn misleading_messages_name_the_flag_and_the_difference() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // a repeated --hidden is an error like every other repeated flag
    let e = one_line_error(
        &run(d, &["train", "yinyang", "--hidden", "8", "--hidden", "4"]),
        2,
    );
    assert!(
        e.contains("'--hidden <HIDDEN>' cannot be used multiple times"),
        "{e}"
    );
    // a seed beyond a TOML integer names its flag
    for flag in ["--chip-seed", "--seed", "--data-seed"] {
        let e = one_line_error(
            &run(d, &["train", "yinyang", flag, "18446744073709551615"]),
            2,
        );
        assert!(
            e.contains(flag) && e.contains("0..=9223372036854775807"),
            "{e}"
        );
    }
    // --init-nir with another network: the differing settings, not two raw structs
    crate::common::ok(&run(d, &train_args(&["--epochs", "1", "--hidden", "8"])));
    crate::common::ok(&run(
        d,
        &[
            "export",
            "--checkpoint",
            "run/checkpoint.safetensors",
            "--nir",
            "net.nir",
        ],
    ));
    let e = one_line_error(
        &run(
            d,
            &[
                "train",
                "yinyang",
                "--init-nir",
                "net.nir",
                "--hidden",
                "10",
                "--out",
                "r2",
            ],
        ),
        1,
    );
    assert!(
        e.contains("hidden = [8] (configured [10])") && !e.contains("NetworkSpec"),
        "{e}"
    );
    // an exact checkpoint deployed on the mock: not refused over its exact-only loss term
    crate::common::ok(&run(
        d,
        &[
            "train",
            "yinyang",
            "--engine",
            "exact",
            "--epochs",
            "1",
            "--train-size",
            "50",
            "--val-size",
            "10",
            "--test-size",
            "10",
            "--quiet",
            "--out",
            "ex",
        ],
    ));
    let o = run(
        d,
        &[
            "eval",
            "--checkpoint",
            "ex/checkpoint.safetensors",
            "--chip",
            "ideal",
            "--size",
            "20",
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("warning: loss.silent_label_gamma = 30 is exact-engine only")
            && !err.contains("expected 0 with the stepped engine"),
        "{err}"
    );
}

//! Hostile inputs of the second reliability round: each ends in one line naming the input,
//! its value and the bound (exit 1), never a panic, a hang or an out-of-memory kill.

use std::path::Path;

use crate::common::{one_line_error, run};

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

const SMALL: &[&str] = &[
    "--train-size",
    "200",
    "--val-size",
    "100",
    "--test-size",
    "100",
    "--batch-size",
    "25",
    "--threads",
    "1",
    "--quiet",
];

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
    // a stale lock (its process is dead) is replaced: the resume runs
    assert!(lock.exists(), "a killed writer leaves its lock");
    crate::common::ok(&run(
        d,
        &["train", "yinyang", "--resume", "run", "--epochs", "2"],
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

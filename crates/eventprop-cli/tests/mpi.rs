//! Data-parallel `eventprop train` under `mpirun -n 2` (`mpi` feature; needs `mpirun` on
//! the path): the weights and metrics of two processes against one process with the same
//! global batch, the run folder written by process 0 alone, resume, the chip engine's
//! refusal, and a failing process ending the job.
//!
//! `cargo test -p eventprop-cli --features mpi --test mpi` (`.ci/mpi.sh` installs Open MPI
//! and runs it).

use std::path::Path;
use std::process::{Command, Output};

use eventprop_train::Trainer;

/// Largest difference allowed between a 2-process and a 1-process run, relative to the
/// largest magnitude of the compared values (docs/scale-out.md: measured ≤ 1e-15).
const BOUND: f64 = 1e-9;

fn eventprop(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eventprop"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("binary runs")
}

/// `mpirun -n 2 eventprop ARGS` (as root too), ended after 120 s if it hangs.
fn mpirun2(dir: &Path, args: &[&str]) -> Output {
    let mut a = vec![
        "120",
        "mpirun",
        "-n",
        "2",
        "--oversubscribe",
        env!("CARGO_BIN_EXE_eventprop"),
    ];
    a.extend_from_slice(args);
    Command::new("timeout")
        .current_dir(dir)
        .args(&a)
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .output()
        .expect("mpirun runs (is Open MPI installed?)")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed ({:?}): {}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn load(dir: &Path, run: &str) -> Trainer {
    Trainer::load_for_eval(&dir.join(run).join("checkpoint.safetensors")).expect("checkpoint")
}

/// Largest relative difference of the weights, the Adam state and the loss curves of two
/// runs; the accuracies and spike counts must be equal.
fn max_difference(a: &Trainer, b: &Trainer) -> f64 {
    let rel = |x: &[f64], y: &[f64]| {
        assert_eq!(x.len(), y.len());
        let scale = x.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
        x.iter()
            .zip(y)
            .fold(0.0f64, |m, (p, q)| m.max((p - q).abs() / scale))
    };
    let mut worst = 0.0f64;
    for (x, y) in a.weights().iter().zip(b.weights()) {
        worst = worst.max(rel(x.as_slice().unwrap(), y.as_slice().unwrap()));
    }
    for (x, y) in a.adam().slots.iter().zip(&b.adam().slots) {
        assert_eq!(x.steps, y.steps);
        worst = worst.max(rel(&x.m, &y.m)).max(rel(&x.v, &y.v));
    }
    assert_eq!(a.history().len(), b.history().len());
    for (x, y) in a.history().iter().zip(b.history()) {
        assert_eq!(
            (x.train_acc, x.val_acc, x.test_acc, x.lr),
            (y.train_acc, y.val_acc, y.test_acc, y.lr)
        );
        assert_eq!(x.hidden_spikes_per_sample, y.hidden_spikes_per_sample);
        let losses = |m: &eventprop_train::metrics::EpochMetrics| {
            [
                m.train_loss,
                m.val_loss.unwrap_or(0.0),
                m.test_loss.unwrap_or(0.0),
            ]
        };
        for (p, q) in losses(x).iter().zip(losses(y)) {
            worst = worst.max((p - q).abs() / p.abs().max(1e-300));
        }
    }
    worst
}

/// Weights, optimiser state and metrics bit-identical (resume).
fn assert_identical(a: &Trainer, b: &Trainer) {
    assert_eq!(a.weights(), b.weights());
    assert_eq!(a.adam().slots, b.adam().slots);
    let strip = |t: &Trainer| -> Vec<_> {
        t.history()
            .iter()
            .map(|m| {
                (
                    m.train_loss,
                    m.train_acc,
                    m.val_loss,
                    m.val_acc,
                    m.test_loss,
                    m.test_acc,
                )
            })
            .collect()
    };
    assert_eq!(strip(a), strip(b));
}

/// The files of a finished run folder, and nothing else (no temporary files: process 1
/// wrote nothing; had it tried to take the folder's lock, the run would have failed).
fn assert_run_folder(dir: &Path, run: &str, figures: &[&str]) {
    let mut names: Vec<String> = std::fs::read_dir(dir.join(run))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut expected: Vec<String> = [
        "best.safetensors",
        "checkpoint.safetensors",
        "config.toml",
        "curves.png",
        "metrics.csv",
        "metrics.json",
    ]
    .iter()
    .chain(figures)
    .map(|s| s.to_string())
    .collect();
    expected.sort();
    assert_eq!(names, expected);
}

/// Trains `args` in one process and in two; checks the bound, the folder, the recorded
/// process count; returns the measured difference.
fn one_vs_two(dir: &Path, args: &[&str], figures: &[&str]) -> f64 {
    let with = |out: &str| {
        let mut a = args.to_vec();
        a.extend(["--out", out, "--threads", "1", "--quiet"]);
        a.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    let one = with("one");
    let two = with("two");
    let out1 = ok(&eventprop(
        dir,
        &one.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    let out2 = ok(&mpirun2(
        dir,
        &two.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    // process 0 alone prints
    assert_eq!(
        out1.lines().filter(|l| l.starts_with("epoch ")).count(),
        out2.lines().filter(|l| l.starts_with("epoch ")).count(),
        "{out2}"
    );
    let (a, b) = (load(dir, "one"), load(dir, "two"));
    assert_eq!((a.processes(), b.processes()), (1, 2));
    assert_run_folder(dir, "two", figures);
    let d = max_difference(&a, &b);
    eprintln!("{args:?}: largest relative difference, 2 processes vs 1: {d:e}");
    assert!(d <= BOUND, "difference {d:e} above {BOUND:e}");
    d
}

const YINYANG: &[&str] = &[
    "train",
    "yinyang",
    "--train-size",
    "200",
    "--val-size",
    "100",
    "--test-size",
    "100",
    "--batch-size",
    "25",
];

#[test]
fn yinyang_two_processes_match_one_and_resume_identically() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut three = YINYANG.to_vec();
    three.extend(["--epochs", "3"]);
    one_vs_two(d, &three, &["class_map.png"]);
    // resume under 2 processes: 2 epochs, then the third, equals the 3-epoch run
    let mut a = YINYANG.to_vec();
    a.extend([
        "--epochs",
        "2",
        "--out",
        "part",
        "--threads",
        "1",
        "--quiet",
    ]);
    ok(&mpirun2(d, &a));
    ok(&mpirun2(
        d,
        &[
            "train",
            "yinyang",
            "--resume",
            "part",
            "--epochs",
            "3",
            "--threads",
            "1",
            "--quiet",
        ],
    ));
    assert_identical(&load(d, "part"), &load(d, "two"));
    // a different process count resumes with a warning
    let o = eventprop(
        d,
        &[
            "train",
            "yinyang",
            "--resume",
            "part",
            "--epochs",
            "4",
            "--threads",
            "1",
            "--quiet",
        ],
    );
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("resumed with 1 process(es), the epochs so far ran on 2"),
        "{err}"
    );
}

#[test]
fn yinyang_exact_engine_two_processes_match_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = YINYANG.to_vec();
    a.extend(["--engine", "exact", "--hidden", "30", "--epochs", "2"]);
    one_vs_two(dir.path(), &a, &["class_map.png"]);
}

#[test]
fn event_files_two_processes_match_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (file, samples, seed) in [("train.npz", "120", "1"), ("test.npz", "40", "2")] {
        ok(&eventprop(
            d,
            &[
                "data",
                "timing",
                "--out",
                file,
                "--samples",
                samples,
                "--channels",
                "12",
                "--classes",
                "4",
                "--duration",
                "0.1",
                "--events-per-sample",
                "48",
                "--task-seed",
                "7",
                "--seed",
                seed,
            ],
        ));
    }
    let mut a = vec![
        "train",
        "events",
        "--train",
        "train.npz",
        "--test",
        "test.npz",
        "--hidden",
        "32",
        "--batch-size",
        "15",
        "--eval-batch-size",
        "16",
        "--epochs",
        "2",
    ];
    // the event defaults' spike-count targets ([reg]) see the global batch's mean counts
    one_vs_two(d, &a, &["raster.png", "confusion.png"]);
    // and stronger ones, which move every update, too (a fresh folder for the runs)
    let strong = d.join("strong");
    std::fs::create_dir(&strong).unwrap();
    for f in ["train.npz", "test.npz"] {
        std::fs::copy(d.join(f), strong.join(f)).unwrap();
    }
    a.extend(["--reg-lower-strength", "1e-1", "--reg-lower-rate", "3"]);
    one_vs_two(&strong, &a, &["raster.png", "confusion.png"]);
}

#[test]
fn refusals_and_a_failing_process_end_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut a = YINYANG.to_vec();
    a.extend(["--epochs", "1", "--threads", "1", "--quiet"]);
    // the chip engine trains in one process
    let mut chip = a.clone();
    chip.extend(["--chip", "ideal", "--out", "chip"]);
    let o = mpirun2(d, &chip);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("chip engine trains in one process"), "{err}");
    // process 0 fails (its --out holds a run) while process 1 waits for the folder's name:
    // the job ends with process 0's message, not a hang (`timeout` would give 124)
    let mut first = a.clone();
    first.extend(["--out", "taken"]);
    ok(&eventprop(d, &first));
    let o = mpirun2(d, &first);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert_ne!(o.status.code(), Some(124), "hung: {err}");
    assert!(
        err.contains("error: process 0 of 2: --out taken: already holds a run"),
        "{err}"
    );
    // processes that differ (here: the seed) are refused, not trained apart
    let o = Command::new("timeout")
        .current_dir(d)
        .args([
            "120",
            "mpirun",
            "-n",
            "2",
            "--oversubscribe",
            "sh",
            "-c",
            &format!(
                "{} train yinyang --train-size 20 --epochs 1 --threads 1 --seed $OMPI_COMM_WORLD_RANK --out differ",
                env!("CARGO_BIN_EXE_eventprop")
            ),
        ])
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("expected the same config, data and weights on every process"),
        "{err}"
    );
    // a global batch smaller than the processes
    let small = [
        "train",
        "yinyang",
        "--train-size",
        "20",
        "--batch-size",
        "1",
        "--epochs",
        "1",
        "--out",
        "small",
    ];
    let o = mpirun2(d, &small);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("batch_size"), "{err}");
}

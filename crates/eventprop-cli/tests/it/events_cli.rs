//! `eventprop data timing`, `train events` and `eval --data` on event files: a generated
//! timing task trained end to end (npz and the SHD HDF5 fixtures), evaluation reproducing
//! the logged test accuracy, resume, and one-line errors.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common;
use common::{ok, one_line_error, run};

fn shd_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../eventprop-data/tests/data/shd")
        .join(name)
}

/// A small timing task (4 classes, 12 channels, 100 ms) as train and test files.
fn write_task(dir: &Path) {
    for (file, samples, seed) in [("train.npz", "240", "1"), ("test.npz", "80", "2")] {
        let out = ok(&run(
            dir,
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
                "--jitter",
                "2e-3",
                "--task-seed",
                "7",
                "--seed",
                seed,
            ],
        ));
        assert!(
            out.contains(&format!("{samples} samples, 12 channels, 4 classes")),
            "{out}"
        );
    }
}

const TRAIN: [&str; 18] = [
    "train",
    "events",
    "--train",
    "train.npz",
    "--test",
    "test.npz",
    "--hidden",
    "32",
    "--batch-size",
    "16",
    "--lr",
    "5e-3",
    "--hidden-init-std",
    "1.5",
    "--hidden-init-mean",
    "0.3",
    "--threads",
    "1",
];

#[test]
fn train_events_then_eval_data_reproduces_the_logged_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    write_task(dir.path());
    let mut a = TRAIN.to_vec();
    a.extend(["--epochs", "2", "--out", "run", "--quiet"]);
    let out = ok(&run(dir.path(), &a));
    let logged = common::accuracy(&out, "test accuracy: ");
    for f in [
        "checkpoint.safetensors",
        "curves.png",
        "raster.png",
        "confusion.png",
    ] {
        assert!(dir.path().join("run").join(f).is_file(), "{f}");
    }
    let e = ok(&run(
        dir.path(),
        &[
            "eval",
            "--checkpoint",
            "run/checkpoint.safetensors",
            "--data",
            "test.npz",
            "--threads",
            "1",
        ],
    ));
    let acc = common::accuracy(&e, "accuracy: ");
    assert_eq!(acc, logged);
    // Resume continues the run with its own command.
    ok(&run(
        dir.path(),
        &[
            "train", "events", "--resume", "run", "--epochs", "3", "--quiet",
        ],
    ));
    let err = one_line_error(
        &run(
            dir.path(),
            &["train", "yinyang", "--resume", "run", "--epochs", "4"],
        ),
        1,
    );
    assert!(err.contains("train events"), "{err}");
    // An event run is evaluated on a file.
    let err = one_line_error(
        &run(
            dir.path(),
            &["eval", "--checkpoint", "run/checkpoint.safetensors"],
        ),
        1,
    );
    assert!(err.contains("--data"), "{err}");
}

#[test]
fn shd_hdf5_files_train_and_evaluate() {
    let dir = tempfile::tempdir().unwrap();
    let f = shd_fixture("f32_u16.h5");
    let f = f.to_str().unwrap();
    // Three samples: 1 held out for validation (round(0.3 · 3) = 1), 700 channels and 20
    // classes from the data (largest unit 699, largest label 19).
    let out = run(
        dir.path(),
        &[
            "train",
            "events",
            "--train",
            f,
            "--test",
            f,
            "--epochs",
            "1",
            "--val-fraction",
            "0.3",
            "--hidden",
            "8",
            "--out",
            "run",
            "--quiet",
            "--threads",
            "1",
        ],
    );
    ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("700-8-20"), "{err}");
    assert!(
        err.contains("2 train, 1 validation, 3 test samples"),
        "{err}"
    );
    let e = ok(&run(
        dir.path(),
        &[
            "eval",
            "--checkpoint",
            "run/checkpoint.safetensors",
            "--data",
            f,
        ],
    ));
    assert!(e.contains("samples: 3"), "{e}");
}

#[test]
fn bad_event_inputs_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    write_task(dir.path());
    let bad = shd_fixture("unit_out_of_range.h5");
    let err = one_line_error(
        &run(
            dir.path(),
            &[
                "train",
                "events",
                "--train",
                bad.to_str().unwrap(),
                "--channels",
                "700",
            ],
        ),
        1,
    );
    assert!(
        err.contains("unit_out_of_range.h5") && err.contains("spikes/units"),
        "{err}"
    );
    let mut a = TRAIN.to_vec();
    a.extend(["--channels", "10"]);
    let err = one_line_error(&run(dir.path(), &a), 1);
    assert!(err.contains("train.npz") && err.contains("0..10"), "{err}");
    // The exact engine has no time step.
    let err = one_line_error(
        &run(
            dir.path(),
            &[
                "train",
                "events",
                "--train",
                "train.npz",
                "--engine",
                "exact",
                "--dt",
                "1e-3",
            ],
        ),
        1,
    );
    assert!(err.contains("--dt"), "{err}");
    let err = one_line_error(&run(dir.path(), &["data", "timing", "--out", "x.txt"]), 1);
    assert!(err.contains("--out"), "{err}");
    // --train is required.
    let o = run(dir.path(), &["train", "events"]);
    assert_eq!(o.status.code(), Some(2));
}

/// Output into a closed pipe (`eventprop … | head -1`) ends the process quietly (SIGPIPE),
/// without a panic message.
#[cfg(unix)]
#[test]
fn a_closed_stdout_pipe_is_not_a_panic() {
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_eventprop"))
        .current_dir(dir.path())
        .args([
            "data",
            "timing",
            "--out",
            "x.npz",
            "--samples",
            "4",
            "--channels",
            "2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the read end before the command prints its one line.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
}

/// `--preset shd` lays the SHD recipe under the flags: the run's config holds the recipe's
/// keys (from `recipes/shd.toml`), a flag overrides one of them, and the recipe is refused
/// for Yin-Yang and under an unknown name.
#[test]
fn the_shd_preset_is_laid_under_the_flags() {
    let dir = tempfile::tempdir().unwrap();
    write_task(dir.path());
    let o = run(
        dir.path(),
        &[
            "train",
            "events",
            "--preset",
            "shd",
            "--train",
            "train.npz",
            "--hidden",
            "8",
            "--epochs",
            "1",
            "--threads",
            "1",
            "--quiet",
            "--out",
            "run",
        ],
    );
    ok(&o);
    let out = String::from_utf8_lossy(&o.stderr);
    // 12 channels × 10 delay-line copies in, 8 hidden (the flag), 4 classes out
    assert!(out.contains("120-8-4, sum-exp loss"), "{out}");
    let config = std::fs::read_to_string(dir.path().join("run/config.toml")).unwrap();
    for line in [
        "hidden = [8]",
        "epochs = 1",
        "recurrent = true",
        "delay_line = 10",
        "channel_shift = 40",
        "blend = 0.5",
        "upper_strength = 0.0001",
    ] {
        assert!(config.lines().any(|l| l == line), "{line} in\n{config}");
    }
    let err = one_line_error(
        &run(dir.path(), &["train", "yinyang", "--preset", "shd"]),
        1,
    );
    assert!(err.contains("a recipe for `train events`"), "{err}");
    let err = one_line_error(
        &run(
            dir.path(),
            &["train", "events", "--preset", "x", "--train", "train.npz"],
        ),
        1,
    );
    assert!(
        err.contains("--preset: expected one of shd, got x"),
        "{err}"
    );
}

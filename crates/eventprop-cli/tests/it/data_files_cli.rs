//! `train yinyang --train/--val/--test FILE` and `eval --data FILE`: training on Yin-Yang
//! feature files in the published `(S, 4)` format, evaluation reproducing the logged test
//! accuracy, resume with relative paths, and one-line errors for bad files.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Output};

use eventprop_train::yinyang;
use ndarray::{Array1, Array2};
use ndarray_npy::NpzWriter;

fn bin(cwd: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_eventprop"));
    c.current_dir(cwd);
    c
}

fn run(cwd: &Path, args: &[&str]) -> Output {
    bin(cwd).args(args).output().expect("binary runs")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Expects exit `code` with a single line on stderr; returns it.
fn one_line_error(o: &Output, code: i32) -> String {
    let err = String::from_utf8_lossy(&o.stderr).trim_end().to_string();
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "expected one line, got: {err}");
    err
}

/// The published format: `x` (S, 4) float64 of (x, y, 1-x, 1-y), `y` (S,) int64.
fn write_npz(path: &Path, d: &yinyang::Dataset) {
    let x = Array2::from_shape_fn((d.len(), 4), |(i, j)| d.features[i][j]);
    let y = Array1::from_iter(d.labels.iter().map(|&l| l as i64));
    let mut w = NpzWriter::new(File::create(path).unwrap());
    w.add_array("x", &x).unwrap();
    w.add_array("y", &y).unwrap();
    w.finish().unwrap();
}

/// The same set as CSV (shortest round-trip decimal form of every feature).
fn write_csv(path: &Path, d: &yinyang::Dataset) {
    let mut s = String::from("# Yin-Yang\nx,y,1-x,1-y,label\n");
    for (f, l) in d.features.iter().zip(&d.labels) {
        s += &format!("{},{},{},{},{l}\n", f[0], f[1], f[2], f[3]);
    }
    std::fs::write(path, s).unwrap();
}

const SMALL: &[&str] = &[
    "--val-size",
    "50",
    "--batch-size",
    "25",
    "--hidden",
    "40",
    "--threads",
    "1",
    "--quiet",
];

/// Writes `train.npz` (200 samples), `test.npz` and `test.csv` (100) into `dir`.
fn write_sets(dir: &Path) {
    write_npz(&dir.join("train.npz"), &yinyang::generate(200, 11));
    let test = yinyang::generate(100, 12);
    write_npz(&dir.join("test.npz"), &test);
    write_csv(&dir.join("test.csv"), &test);
}

fn train(cwd: &Path, out: &str, extra: &[&str]) -> Output {
    let mut a = vec![
        "train",
        "yinyang",
        "--out",
        out,
        "--train",
        "train.npz",
        "--test",
        "test.npz",
    ];
    a.extend_from_slice(SMALL);
    a.extend_from_slice(extra);
    run(cwd, &a)
}

fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("metrics.json")).unwrap();
    let mut v: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    for m in &mut v {
        m.as_object_mut().unwrap().remove("epoch_seconds");
        m.as_object_mut().unwrap().remove("train_seconds");
    }
    v
}

fn eval_accuracy(cwd: &Path, args: &[&str]) -> (f64, String) {
    let mut a = vec!["eval", "--threads", "1"];
    a.extend_from_slice(args);
    let e = ok(&run(cwd, &a));
    (crate::common::accuracy(&e, "accuracy: "), e)
}

#[test]
fn train_on_files_and_eval_data_reproduces_the_logged_test_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_sets(d);
    let o = train(d, "run", &["--epochs", "2"]);
    let stdout = ok(&o);
    assert!(stdout.contains("epoch 2/2"), "{stdout}");
    let stderr = String::from_utf8_lossy(&o.stderr);
    // Validation: the last 50 samples of the train file.
    assert!(
        stderr.contains("data: 150 train, 50 validation, 100 test samples"),
        "{stderr}"
    );
    // The paths are stored canonical and absolute (a resume works from any directory),
    // with each file's fingerprint.
    let config = std::fs::read_to_string(d.join("run/config.toml")).unwrap();
    let abs = |f: &str| {
        std::fs::canonicalize(d.join(f))
            .unwrap()
            .display()
            .to_string()
    };
    assert!(
        config.contains(&format!("train = \"{}\"", abs("train.npz"))),
        "{config}"
    );
    assert!(
        config.contains(&format!("test = \"{}\"", abs("test.npz"))),
        "{config}"
    );
    assert!(config.contains("[data.fingerprints]"), "{config}");
    let m = metrics(&d.join("run"));
    let test_acc = m[1]["test_acc"].as_f64().unwrap();
    assert_eq!(
        crate::common::accuracy(&stdout, "test accuracy: "),
        test_acc
    );
    let ck = "run/checkpoint.safetensors";
    let (acc, out) = eval_accuracy(d, &["--checkpoint", ck, "--data", "test.npz"]);
    assert_eq!(acc, test_acc);
    assert!(
        out.contains("samples: 100 (file test.npz, stepped engine)"),
        "{out}"
    );
    // The same set as CSV gives the same accuracy.
    let (acc, _) = eval_accuracy(d, &["--checkpoint", ck, "--data", "test.csv"]);
    assert_eq!(acc, test_acc);
    // eval needs no training files.
    std::fs::remove_file(d.join("train.npz")).unwrap();
    let (acc, _) = eval_accuracy(d, &["--checkpoint", ck, "--data", "test.npz"]);
    assert_eq!(acc, test_acc);
}

#[test]
fn resume_with_data_files_gives_the_same_metrics_as_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_sets(d);
    ok(&train(d, "full", &["--epochs", "2"]));
    ok(&train(d, "part", &["--epochs", "1"]));
    ok(&run(
        d,
        &[
            "train",
            "yinyang",
            "--resume",
            "part",
            "--epochs",
            "2",
            "--threads",
            "1",
            "--quiet",
        ],
    ));
    assert_eq!(metrics(&d.join("part")), metrics(&d.join("full")));
    // Settings, data files included, cannot change on resume.
    let e = one_line_error(
        &run(
            d,
            &["train", "yinyang", "--resume", "part", "--test", "test.csv"],
        ),
        1,
    );
    assert!(
        e.contains("settings cannot change") && e.contains("--test"),
        "{e}"
    );
    // A resumed run needs its files: the message names the missing one.
    std::fs::remove_file(d.join("train.npz")).unwrap();
    let e = one_line_error(
        &run(
            d,
            &["train", "yinyang", "--resume", "part", "--epochs", "3"],
        ),
        1,
    );
    assert!(e.contains("train.npz"), "{e}");
}

#[test]
fn bad_data_files_are_one_line_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_sets(d);
    std::fs::write(d.join("five.csv"), "0.1,0.2,0.3,0.4,0.5,0\n").unwrap();
    std::fs::write(
        d.join("label.csv"),
        "0.1,0.2,0.9,0.8,0\n0.1,0.2,0.9,0.8,3\n",
    )
    .unwrap();
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--train", "missing.npz"],
            &["missing.npz", "No such file"],
        ),
        (
            &["--train", "five.csv"],
            &["five.csv", "5 features per sample, Yin-Yang expects 4"],
        ),
        (
            &["--val", "label.csv"],
            &["label.csv", "line 2, column 5 (label): 3, expected 0..3"],
        ),
        (
            &["--train", "train.npz", "--val-size", "200"],
            &["val_size: expected < 200", "train.npz"],
        ),
    ];
    for (k, (args, parts)) in cases.iter().enumerate() {
        let out = format!("bad{k}");
        let mut a = vec!["train", "yinyang", "--out", &out, "--quiet"];
        a.extend_from_slice(args);
        let e = one_line_error(&run(d, &a), 1);
        for p in *parts {
            assert!(e.contains(p), "`{p}` not in: {e}");
        }
        assert!(!d.join(&out).exists(), "{out} created on error");
    }
    ok(&train(d, "run", &["--epochs", "1"]));
    let ck = "run/checkpoint.safetensors";
    let e = one_line_error(
        &run(d, &["eval", "--checkpoint", ck, "--data", "five.csv"]),
        1,
    );
    assert!(
        e.starts_with("error: --data: five.csv: columns: 5 features"),
        "{e}"
    );
    let e = one_line_error(
        &run(
            d,
            &[
                "eval",
                "--checkpoint",
                ck,
                "--data",
                "test.npz",
                "--size",
                "5",
            ],
        ),
        2,
    );
    assert!(e.contains("--size"), "{e}");
}

/// `eventprop data KIND` with `args`, in `dir`; returns stdout.
fn data(dir: &Path, kind: &str, out: &str, args: &[&str]) -> String {
    let mut a = vec!["data", kind, "--out", out];
    a.extend_from_slice(args);
    ok(&run(dir, &a))
}

#[test]
fn generated_kinds_write_deterministic_event_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (kind, args, shape) in [
        (
            "latency",
            &["--samples", "30"][..],
            "30 samples, 64 channels, 10 classes",
        ),
        (
            "rates",
            &[
                "--samples",
                "10",
                "--channels",
                "50",
                "--classes",
                "5",
                "--events-per-sample",
                "300",
            ][..],
            "10 samples, 50 channels, 5 classes",
        ),
        (
            "place",
            &["--samples", "10", "--channels", "100", "--classes", "5"][..],
            "10 samples, 100 channels, 5 classes",
        ),
        (
            "order",
            &[
                "--samples",
                "12",
                "--channels",
                "200",
                "--classes",
                "6",
                "--syllables",
                "3",
                "--band",
                "30",
            ][..],
            "12 samples, 200 channels, 6 classes",
        ),
        (
            "timing",
            &[
                "--samples",
                "10",
                "--channels",
                "20",
                "--classes",
                "5",
                "--events-per-sample",
                "40",
                "--noise-rate",
                "5",
            ][..],
            "10 samples, 20 channels, 5 classes",
        ),
    ] {
        let a = format!("{kind}-a.npz");
        let b = format!("{kind}-b.npz");
        let out = data(d, kind, &a, args);
        assert!(out.contains(shape), "{kind}: {out}");
        data(d, kind, &b, args);
        assert_eq!(
            std::fs::read(d.join(&a)).unwrap(),
            std::fs::read(d.join(&b)).unwrap(),
            "{kind}: same seeds, same file"
        );
        let mut other = args.to_vec();
        other.extend(["--seed", "1"]);
        data(d, kind, &b, &other);
        assert_ne!(
            std::fs::read(d.join(&a)).unwrap(),
            std::fs::read(d.join(&b)).unwrap(),
            "{kind}: another seed, other samples"
        );
    }
    // Settings the generator refuses: one line naming the setting.
    let err = one_line_error(
        &run(d, &["data", "order", "--out", "x.npz", "--classes", "25"]),
        1,
    );
    assert!(err.contains("classes") && err.contains("24"), "{err}");
    let err = one_line_error(
        &run(
            d,
            &["data", "latency", "--out", "x.npz", "--threshold", "1"],
        ),
        1,
    );
    assert!(err.contains("threshold"), "{err}");
}

#[test]
fn train_events_augments_training_batches_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    data(
        d,
        "latency",
        "train.npz",
        &["--samples", "100", "--classes", "4"],
    );
    data(
        d,
        "latency",
        "test.npz",
        &["--samples", "40", "--classes", "4", "--seed", "1"],
    );
    let base = [
        "train",
        "events",
        "--train",
        "train.npz",
        "--test",
        "test.npz",
        "--hidden",
        "32",
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--hidden-init-std",
        "1.5",
        "--threads",
        "1",
        "--quiet",
    ];
    let aug = [
        "--aug-time-shift",
        "0.005",
        "--aug-channel-shift",
        "2",
        "--aug-stretch",
        "0.1",
        "--aug-blend",
        "0.5",
    ];
    let train_run = |out: &str, extra: &[&str]| {
        let mut a = base.to_vec();
        a.extend(["--out", out]);
        a.extend_from_slice(extra);
        ok(&run(d, &a))
    };
    let printed = train_run("on", &aug);
    assert!(printed.contains("augmentation: 90 samples"), "{printed}");
    train_run("on2", &aug);
    train_run("off", &[]);
    let (on, on2, off) = (
        metrics(&d.join("on")),
        metrics(&d.join("on2")),
        metrics(&d.join("off")),
    );
    assert_eq!(on, on2, "same seed, same augmentations");
    assert!(on[0]["augment"]["samples"] == 90 && off[0].get("augment").is_none());
    assert_ne!(on[0]["train_loss"], off[0]["train_loss"]);
    let config = std::fs::read_to_string(d.join("on/config.toml")).unwrap();
    assert!(
        config.contains("[augment]") && config.contains("blend = 0.5"),
        "{config}"
    );
    // The test set is not augmented: evaluating the checkpoint on it gives the logged
    // test accuracy.
    let (acc, _) = eval_accuracy(
        d,
        &[
            "--checkpoint",
            "on/checkpoint.safetensors",
            "--data",
            "test.npz",
        ],
    );
    assert_eq!(Some(acc), on[0]["test_acc"].as_f64());
    // Out of range: one line naming the key.
    let mut a = base.to_vec();
    a.extend(["--out", "bad", "--aug-blend", "2"]);
    let err = one_line_error(&run(d, &a), 1);
    assert!(
        err.contains("augment.blend") && err.contains("[0, 1]"),
        "{err}"
    );
}

/// `data yinyang --out DIR` writes the generator's standard splits; training on the
/// files equals training on the generator with the same data seed and sizes.
#[test]
fn data_yinyang_writes_the_splits_and_training_on_them_equals_the_generator() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sizes = [
        "--train-size",
        "200",
        "--val-size",
        "60",
        "--test-size",
        "80",
    ];
    let mut a = vec!["data", "yinyang", "--out", "yy", "--data-seed", "3"];
    a.extend_from_slice(&sizes);
    let out = ok(&run(d, &a));
    assert!(out.contains("validation.npz: 60 samples"), "{out}");
    let common = [
        "--epochs",
        "2",
        "--data-seed",
        "3",
        "--batch-size",
        "25",
        "--threads",
        "1",
        "--quiet",
    ];
    let mut gen = vec!["train", "yinyang", "--out", "gen"];
    gen.extend_from_slice(&common);
    gen.extend_from_slice(&sizes);
    ok(&run(d, &gen));
    let mut files = vec![
        "train",
        "yinyang",
        "--out",
        "files",
        "--train",
        "yy/train.npz",
        "--val",
        "yy/validation.npz",
        "--test",
        "yy/test.npz",
    ];
    files.extend_from_slice(&common);
    ok(&run(d, &files));
    let (g, f) = (metrics(&d.join("gen")), metrics(&d.join("files")));
    assert_eq!(g.len(), 2);
    assert_eq!(g, f);
    let e = one_line_error(
        &run(d, &["data", "yinyang", "--out", "z", "--test-size", "0"]),
        1,
    );
    assert!(e.contains("--test-size") && e.contains("got 0"), "{e}");
}

//! Resource limits of `train` and `eval`: settings whose estimated memory exceeds the limit,
//! too many threads, and oversized evaluation sets are refused in one line before anything
//! is allocated or written.

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eventprop"))
        .args(args)
        .output()
        .expect("binary runs")
}

/// Exit 1, one `error: ` line on stderr (returned).
fn one_line_error(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).trim_end().to_string();
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    err
}

#[test]
fn oversized_settings_are_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = out.to_str().unwrap();
    // 10^6 steps × 1000 evaluation samples × (3 × 48 B + 120 × 12 B): ~1.6 TB on the grid.
    let e = one_line_error(&run(&["train", "yinyang", "--t-sim", "1.0", "--out", o]));
    assert!(
        e.contains("memory: expected an estimated peak below memory_limit_gib = 16 GiB"),
        "{e}"
    );
    assert!(e.contains("1000000 steps"), "{e}");
    let e = one_line_error(&run(&[
        "train",
        "yinyang",
        "--hidden",
        "100000000",
        "--out",
        o,
    ]));
    assert!(e.contains("100000000 hidden neurons"), "{e}");
    let e = one_line_error(&run(&[
        "train",
        "yinyang",
        "--train-size",
        "100000000000",
        "--out",
        o,
    ]));
    assert!(e.contains("the data: 100000002000 samples"), "{e}");
    let e = one_line_error(&run(&[
        "train",
        "yinyang",
        "--engine",
        "exact",
        "--max-spikes-per-neuron",
        "100000000",
        "--out",
        o,
    ]));
    assert!(e.contains("spike buffers"), "{e}");
    // A raised limit lets a config through (here: validated, then one tiny epoch).
    let o2 = dir.path().join("ok");
    let r = run(&[
        "train",
        "yinyang",
        "--memory-limit-gib",
        "0.01",
        "--train-size",
        "50",
        "--val-size",
        "10",
        "--test-size",
        "10",
        "--eval-batch-size",
        "10",
        "--batch-size",
        "10",
        "--epochs",
        "1",
        "--quiet",
        "--out",
        o2.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let e = one_line_error(&run(&[
        "train",
        "yinyang",
        "--memory-limit-gib",
        "0.001",
        "--out",
        o,
    ]));
    assert!(e.contains("memory_limit_gib = 0.001"), "{e}");
    // Thread counts are capped at 4 × the cores.
    let e = one_line_error(&run(&[
        "train",
        "yinyang",
        "--threads",
        "100000",
        "--out",
        o,
    ]));
    assert!(e.contains("--threads: expected 1 to"), "{e}");
    assert!(!out.exists(), "refused runs write nothing");
    // eval: an evaluation set beyond the memory limit.
    let ck = o2.join("checkpoint.safetensors");
    let e = one_line_error(&run(&[
        "eval",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--size",
        "100000000000",
    ]));
    assert!(
        e.contains("--size: 100000000000 samples need an estimated"),
        "{e}"
    );
}

#[test]
fn negative_values_reach_validation_and_overflowing_weights_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = out.to_str().unwrap();
    // Formerly clap's "unexpected argument '-1' found".
    let e = one_line_error(&run(&["train", "yinyang", "--dt", "-1e-6", "--out", o]));
    assert_eq!(e, "error: dt: expected > 0, got -0.000001");
    let e = one_line_error(&run(&["train", "yinyang", "--lr", "-1e-3", "--out", o]));
    assert_eq!(e, "error: optim.lr: expected finite and > 0, got -0.001");
    // Integers stay integers: a clap usage error naming the flag (exit 2).
    let r = run(&["train", "yinyang", "--epochs", "-1", "--out", o]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("'--epochs <EPOCHS>'"));
    assert!(!out.exists());
    // Weights so large that the currents overflow: the message says where and why.
    let r = run(&[
        "train",
        "yinyang",
        "--hidden-init-mean",
        "1e308",
        "--train-size",
        "50",
        "--val-size",
        "10",
        "--test-size",
        "10",
        "--epochs",
        "1",
        "--quiet",
        "--out",
        o,
    ]);
    // stderr: the run's banner, then exactly one error line.
    assert_eq!(r.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&r.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    let e = errors[0];
    assert!(
        e.starts_with("error: training failed in epoch 1, batch 1 (weights too large or diverged?"),
        "{e}"
    );
    // The overflow is named with its value (the fused stepped path reports it as an
    // overflow of the current or membrane, the seed path as a non-finite value).
    assert!(e.contains("got inf"), "{e}");
}

/// A parameter flag given a non-UTF-8 value (a file name) names the flag (formerly clap's
/// "invalid UTF-8 was detected in one or more arguments").
#[cfg(unix)]
#[test]
fn non_utf8_parameter_values_name_the_flag() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let bad = std::ffi::OsStr::from_bytes(b"\xffmissing.npy");
    let input = dir.path().join("x.npy");
    ndarray_npy::write_npy(&input, &ndarray::Array4::<f64>::ones((2, 5, 1, 1))).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_eventprop"))
        .arg("neuron")
        .arg("--input")
        .arg(&input)
        .arg("--out")
        .arg(dir.path().join("out"))
        .arg("--tau-mem")
        .arg(bad)
        .output()
        .unwrap();
    let e = one_line_error(&o);
    assert!(
        e.starts_with("error: tau_mem: expected a number or an existing .npy file"),
        "{e}"
    );
}

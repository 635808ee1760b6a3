//! Helpers shared by the CLI integration tests: run the binary, expect success, expect a
//! one-line error.

use std::path::Path;
use std::process::{Command, Output};

/// Runs `eventprop ARGS` in `cwd`.
pub fn run(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eventprop"))
        .current_dir(cwd)
        .args(args)
        .output()
        .expect("binary runs")
}

/// Expects success; returns stdout.
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Expects exit `code` with a single line on stderr; returns it.
pub fn one_line_error(o: &Output, code: i32) -> String {
    let err = String::from_utf8_lossy(&o.stderr).trim_end().to_string();
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "expected one line, got: {err}");
    err
}

/// The accuracy on the line of `out` that starts with `prefix`, printed as
/// `96.60 % (966 of 1000)`: the exact fraction `966 / 1000`.
pub fn accuracy(out: &str, prefix: &str) -> f64 {
    let rest = out
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line in {out}"));
    let (pct, tail) = rest
        .split_once(" % (")
        .unwrap_or_else(|| panic!("`{rest}`: expected `P % (K of N)`"));
    let (k, tail) = tail.split_once(" of ").expect("`K of N`");
    let n = tail.split_once(')').expect("`N)`").0;
    let (k, n): (f64, f64) = (k.parse().unwrap(), n.parse().unwrap());
    let acc = k / n;
    let printed: f64 = pct.parse().unwrap();
    assert!((printed - 100.0 * acc).abs() <= 0.005 + 1e-9, "{rest}");
    acc
}

/// Small, fast settings (a few hundred samples, one thread for bit-identical results).
pub const SMALL: &[&str] = &[
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

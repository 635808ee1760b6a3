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

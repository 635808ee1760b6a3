//! `eventprop bench` argument validation (no benchmark is run).

use std::process::Command;

/// Runs `eventprop bench` with `args`, expecting a one-line usage error (exit 2).
fn usage_error(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_eventprop"))
        .arg("bench")
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).trim_end().to_string();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    err
}

/// Negative counts used to give clap's `unexpected argument '-1' found`; the message now
/// names the flag and the valid range.
#[test]
fn negative_and_zero_counts_name_the_flag_and_range() {
    for (flag, value) in [
        ("--threads", "-1"),
        ("--threads", "0"),
        ("--reps", "-3"),
        ("--reps", "0"),
    ] {
        let err = usage_error(&[flag, value]);
        assert!(
            err.contains(&format!("invalid value '{value}' for '{flag} <"))
                && err.contains("expected an integer >= 1"),
            "{err}"
        );
    }
}

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

/// Plain `eventprop bench` runs the fused (training) path only; `--path both` adds the
/// seed path.
#[test]
fn bench_defaults_to_the_fused_path() {
    let paths = |extra: &[&str]| -> Vec<String> {
        let out = Command::new(env!("CARGO_BIN_EXE_eventprop"))
            .args([
                "bench",
                "--size",
                "yinyang",
                "--reps",
                "1",
                "--threads",
                "1",
                "--json",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["path"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(paths(&[]), ["fused"]);
    assert_eq!(paths(&["--path", "both"]), ["seed", "fused"]);
}

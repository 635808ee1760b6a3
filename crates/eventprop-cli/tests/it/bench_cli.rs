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

/// `bench --task events` at a tiny size: one JSON record per requested row, each a real
/// `train events` run with its sample counts, rates and peak memory.
#[test]
fn events_bench_reports_every_row_as_json() {
    let work = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_eventprop"))
        .args([
            "bench",
            "--task",
            "events",
            "--samples",
            "20",
            "--test-samples",
            "6",
            "--events-per-sample",
            "100",
            "--channels",
            "12",
            "--hidden",
            "8",
            "--exact-samples",
            "10",
            "--exact-test-samples",
            "4",
            "--rows",
            "plain,recurrent,exact",
            "--threads",
            "1",
            "--json",
            "--work-dir",
        ])
        .arg(work.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recs: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let rows: Vec<&str> = recs.iter().map(|r| r["row"].as_str().unwrap()).collect();
    assert_eq!(rows, ["plain", "recurrent", "exact"]);
    for r in &recs {
        let exact = r["row"] == "exact";
        assert_eq!(r["engine"], if exact { "exact" } else { "stepped" }, "{r}");
        assert_eq!(r["task"], "events");
        assert_eq!(r["threads"], 1);
        assert_eq!(r["epochs"], 1);
        assert_eq!(r["timed_out"], false);
        // 10 % of the training file is the validation split
        let (train, eval) = if exact { (9, 1 + 4) } else { (18, 2 + 6) };
        assert_eq!(r["train_samples"], train, "{r}");
        assert_eq!(r["eval_samples"], eval, "{r}");
        for k in [
            "train_seconds",
            "eval_seconds",
            "epoch_seconds",
            "train_samples_per_s",
            "eval_samples_per_s",
            "process_seconds",
        ] {
            let v = r[k].as_f64().unwrap();
            assert!(v > 0.0 && v.is_finite(), "{k} = {v} in {r}");
        }
        let rate = r["train_samples"].as_f64().unwrap() / r["train_seconds"].as_f64().unwrap();
        assert!((r["train_samples_per_s"].as_f64().unwrap() / rate - 1.0).abs() < 1e-9);
        let epoch = r["epoch_seconds"].as_f64().unwrap();
        assert!(r["train_seconds"].as_f64().unwrap() < epoch);
        assert!(r["process_seconds"].as_f64().unwrap() >= epoch);
        if cfg!(target_os = "linux") {
            assert!(r["peak_rss_mb"].as_f64().unwrap() > 1.0, "{r}");
        }
        assert!(r["hidden_spikes_per_sample"].as_f64().is_some(), "{r}");
    }
    // the flags of each row reach its run (the run folders are kept in --work-dir)
    let config = std::fs::read_to_string(work.path().join("run-1-recurrent/config.toml")).unwrap();
    assert!(config.contains("recurrent = true"), "{config}");
    let config = std::fs::read_to_string(work.path().join("run-2-exact/config.toml")).unwrap();
    assert!(config.contains("engine = \"exact\""), "{config}");
}

/// Flags of one task are refused with the other, and unknown rows are named.
#[test]
fn events_bench_flags_are_checked() {
    for (args, msg) in [
        (&["--task", "events", "--size", "shd"][..], "--size"),
        (&["--rows", "plain"][..], "--task events only"),
        (
            &["--task", "events", "--rows", "fast"][..],
            "--rows: expected",
        ),
        (
            &["--task", "events", "--test", "x.npz"][..],
            "--test: expected with --data",
        ),
        (
            &["--task", "events", "--samples", "1"][..],
            "--samples: expected at least 2",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_eventprop"))
            .arg("bench")
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(msg), "{args:?}: {err}");
    }
}

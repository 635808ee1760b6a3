//! End-to-end tests of `eventprop train yinyang` and `eventprop eval`: outputs, resume,
//! determinism, and one-line errors that leave existing files untouched.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::SMALL;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_eventprop"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("binary runs")
}

fn train(out: &Path, extra: &[&str]) -> Output {
    let mut a = vec!["train", "yinyang", "--out", out.to_str().unwrap()];
    a.extend_from_slice(SMALL);
    a.extend_from_slice(extra);
    run(&a)
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Expects exit 1 with a single `error: ` line on stderr; returns it.
fn one_line_error(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let err = String::from_utf8_lossy(&o.stderr).trim_end().to_string();
    assert_eq!(err.lines().count(), 1, "expected one line, got: {err}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

fn metrics_without_time(dir: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("metrics.json")).unwrap();
    let mut v: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    for m in &mut v {
        m.as_object_mut().unwrap().remove("epoch_seconds");
        m.as_object_mut().unwrap().remove("train_seconds");
    }
    v
}

#[test]
fn train_writes_all_outputs_and_eval_reproduces_the_test_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = train(&out, &["--epochs", "2"]);
    let stdout = ok(&o);
    assert!(stdout.contains("epoch 2/2"), "{stdout}");
    // The preset's hidden layer is neither silent nor saturated: the watchdog is quiet.
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains("warning:"), "{stderr}");
    for f in [
        "checkpoint.safetensors",
        "metrics.json",
        "metrics.csv",
        "curves.png",
        "config.toml",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "header + 2 epochs");
    let m = metrics_without_time(&out);
    let test_acc = m[1]["test_acc"].as_f64().unwrap();
    // `eval` on the run's own test split must report the accuracy the run logged.
    let e = ok(&run(&[
        "eval",
        "--checkpoint",
        out.join("checkpoint.safetensors").to_str().unwrap(),
        "--threads",
        "1",
    ]));
    let acc = crate::common::accuracy(&e, "accuracy: ");
    assert_eq!(acc, test_acc);
    // The closing lines name the checkpoint each number belongs to.
    assert_eq!(
        crate::common::accuracy(&stdout, "test accuracy: "),
        test_acc
    );
    assert!(
        stdout.contains(": last epoch 2 (checkpoint.safetensors), validation "),
        "{stdout}"
    );
    let best = m.iter().enumerate().fold(0, |b, (i, x)| {
        if x["val_acc"].as_f64() > m[b]["val_acc"].as_f64() {
            i
        } else {
            b
        }
    });
    assert!(
        stdout.contains(&format!(
            " at epoch {} (best.safetensors), test accuracy there ",
            best + 1
        )),
        "{stdout}"
    );
    // Accuracies are percentages; the epoch line reports the training throughput.
    assert!(
        stdout.contains(" %") && stdout.contains(" samples/s)"),
        "{stdout}"
    );
    // Another data seed and size: a different set, still a fraction in [0, 1].
    let e = ok(&run(&[
        "eval",
        "--checkpoint",
        out.join("checkpoint.safetensors").to_str().unwrap(),
        "--data-seed",
        "7",
        "--size",
        "50",
    ]));
    assert!(e.contains("samples: 50"), "{e}");
}

#[test]
fn resume_gives_the_same_metrics_as_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full");
    ok(&train(&full, &["--epochs", "2"]));
    let part = dir.path().join("part");
    ok(&train(&part, &["--epochs", "1"]));
    ok(&run(&[
        "train",
        "yinyang",
        "--resume",
        part.to_str().unwrap(),
        "--epochs",
        "2",
        "--threads",
        "1",
        "--quiet",
    ]));
    assert_eq!(metrics_without_time(&part), metrics_without_time(&full));
    // Same seed and thread count → identical metrics (determinism across processes).
    let again = dir.path().join("again");
    ok(&train(&again, &["--epochs", "2"]));
    assert_eq!(metrics_without_time(&again), metrics_without_time(&full));
}

#[test]
fn config_file_is_used_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "epochs = 1\nhidden = [30]\nlr = 0.005\n").unwrap();
    let out = dir.path().join("run");
    ok(&train(
        &out,
        &["--config", cfg.to_str().unwrap(), "--lr", "0.003"],
    ));
    let written = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(written.contains("hidden = [30]"), "{written}");
    assert!(written.contains("lr = 0.003"), "{written}");
    assert!(written.contains("epochs = 1"), "{written}");
}

#[test]
fn errors_are_one_line_and_overwrite_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    ok(&train(&out, &["--epochs", "1"]));
    let before = std::fs::read(out.join("checkpoint.safetensors")).unwrap();
    let metrics_before = std::fs::read(out.join("metrics.json")).unwrap();

    // Training into a directory that holds a run.
    let e = one_line_error(&train(&out, &["--epochs", "1"]));
    assert!(e.contains("already holds a run"), "{e}");
    // Invalid values.
    let e = one_line_error(&train(&dir.path().join("x"), &["--lr=-1"]));
    assert!(e.contains("lr"), "{e}");
    let e = one_line_error(&train(&dir.path().join("x"), &["--hidden", "0"]));
    assert!(e.contains("hidden"), "{e}");
    // Changing settings on resume.
    let e = one_line_error(&run(&[
        "train",
        "yinyang",
        "--resume",
        out.to_str().unwrap(),
        "--lr",
        "0.1",
    ]));
    assert!(e.contains("--lr"), "{e}");
    // Missing / corrupt config.
    let e = one_line_error(&train(
        &dir.path().join("x"),
        &["--config", "/no/such/file.toml"],
    ));
    assert!(e.contains("file.toml"), "{e}");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "lr = [\n").unwrap();
    let e = one_line_error(&train(
        &dir.path().join("x"),
        &["--config", bad.to_str().unwrap()],
    ));
    assert!(e.contains("bad.toml"), "{e}");
    // Missing / corrupt checkpoint for eval and resume.
    let e = one_line_error(&run(&["eval", "--checkpoint", "/no/such/ck.safetensors"]));
    assert!(e.contains("ck.safetensors"), "{e}");
    let corrupt = dir.path().join("corrupt");
    std::fs::create_dir(&corrupt).unwrap();
    std::fs::write(
        corrupt.join("checkpoint.safetensors"),
        b"\x08\0\0\0\0\0\0\0garbage!",
    )
    .unwrap();
    one_line_error(&run(&[
        "eval",
        "--checkpoint",
        corrupt.join("checkpoint.safetensors").to_str().unwrap(),
    ]));
    one_line_error(&run(&[
        "train",
        "yinyang",
        "--resume",
        corrupt.to_str().unwrap(),
    ]));
    // A bad flag is a usage error (clap, exit 2).
    let o = run(&["train", "yinyang", "--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2));
    // Nothing of the existing run changed.
    assert_eq!(
        std::fs::read(out.join("checkpoint.safetensors")).unwrap(),
        before
    );
    assert_eq!(
        std::fs::read(out.join("metrics.json")).unwrap(),
        metrics_before
    );
    assert!(
        !dir.path().join("x").exists(),
        "failed runs create no directory"
    );
}

/// `--mode exact` trains the event-based network, writes the same files as the stepped
/// mode, and `eval` recognises its checkpoint: the accuracy it prints on the run's own test
/// split equals the test accuracy logged for the last epoch.
#[test]
fn exact_mode_trains_and_evaluates() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("exact");
    let o = run(&[
        "train",
        "yinyang",
        "--mode",
        "exact",
        "--epochs",
        "1",
        "--hidden",
        "40",
        "--threads",
        "1",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = ok(&o);
    assert!(stdout.contains("epoch 1/1"), "{stdout}");
    // The exact engine has no time grid; its header says so.
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("exact spike times over ") && !stderr.contains("steps of"),
        "{stderr}"
    );
    for f in [
        "config.toml",
        "checkpoint.safetensors",
        "metrics.json",
        "metrics.csv",
        "curves.png",
    ] {
        assert!(out.join(f).exists(), "missing {f}");
    }
    let m: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    let logged = m[0]["test_acc"].as_f64().unwrap();
    // One epoch of the paper setup is far above chance (1/3) on Yin-Yang.
    assert!(
        logged > 0.5,
        "test accuracy after one exact epoch: {logged}"
    );
    let ckpt = out.join("checkpoint.safetensors");
    let e = ok(&run(&["eval", "--checkpoint", ckpt.to_str().unwrap()]));
    let acc = crate::common::accuracy(&e, "accuracy: ");
    assert_eq!(acc, logged);
}

/// `--mode exact --resume` continues an exact run bit-identically (formerly refused).
#[test]
fn exact_resume_gives_the_same_metrics_as_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let exact = [
        "--mode",
        "exact",
        "--hidden",
        "30",
        "--train-size",
        "640",
        "--val-size",
        "100",
        "--test-size",
        "100",
        "--threads",
        "1",
        "--quiet",
    ];
    let go = |out: &Path, epochs: &str| {
        let mut a = vec![
            "train",
            "yinyang",
            "--out",
            out.to_str().unwrap(),
            "--epochs",
            epochs,
        ];
        a.extend_from_slice(&exact);
        ok(&run(&a));
    };
    let full = dir.path().join("full");
    go(&full, "3");
    let part = dir.path().join("part");
    go(&part, "2");
    ok(&run(&[
        "train",
        "yinyang",
        "--resume",
        part.to_str().unwrap(),
        "--epochs",
        "3",
        "--threads",
        "1",
        "--quiet",
    ]));
    assert_eq!(metrics_without_time(&part), metrics_without_time(&full));
    // The checkpoints (last and best-validation) evaluate identically (their files differ
    // only in the recorded epoch times).
    let eval = |p: &Path| {
        ok(&run(&[
            "eval",
            "--checkpoint",
            p.to_str().unwrap(),
            "--threads",
            "1",
        ]))
    };
    for f in ["checkpoint.safetensors", "best.safetensors"] {
        assert_eq!(eval(&part.join(f)), eval(&full.join(f)), "{f}");
    }
}

/// Flags that the exact engine would ignore are refused, in one line.
#[test]
fn exact_mode_rejects_stepped_only_flags() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    let o = run(&[
        "train",
        "yinyang",
        "--mode",
        "exact",
        "--dt",
        "1e-6",
        "--out",
        out.to_str().unwrap(),
    ]);
    let e = one_line_error(&o);
    assert!(e.contains("--dt: not read by the exact engine"), "{e}");
    assert!(!out.exists());
    let o = run(&[
        "train",
        "yinyang",
        "--max-spikes-per-neuron",
        "5",
        "--out",
        out.to_str().unwrap(),
    ]);
    let e = one_line_error(&o);
    assert!(
        e.contains("--max-spikes-per-neuron: not read by the stepped engine"),
        "{e}"
    );
    let o = run(&[
        "train",
        "yinyang",
        "--mode",
        "exact",
        "--loss",
        "max-over-time",
        "--out",
        out.to_str().unwrap(),
    ]);
    let e = one_line_error(&o);
    assert!(
        e.contains("loss.kind: expected first_spike, time, sum or sum_exp with the exact engine"),
        "{e}"
    );
    assert!(!out.exists());
}

/// The spike-activity watchdog: a silent hidden layer gets a `warning:` line after the
/// first batches and after the epoch, with the fix, and the epoch's metrics record it.
#[test]
fn silent_and_saturated_hidden_layers_are_warned_about_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    for (name, flags, word) in [
        (
            "silent",
            ["--hidden-init-mean", "0", "--hidden-init-std", "1e-6"],
            "is silent",
        ),
        (
            "saturated",
            ["--hidden-init-mean", "50", "--hidden-init-std", "1"],
            "is saturated",
        ),
    ] {
        let out = dir.path().join(name);
        let mut a = vec!["--epochs", "1", "--lr", "1e-9"];
        a.extend_from_slice(&flags);
        let o = train(&out, &a);
        ok(&o);
        let stderr = String::from_utf8_lossy(&o.stderr);
        let warnings: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("warning: "))
            .collect();
        assert_eq!(warnings.len(), 2, "{stderr}");
        assert!(
            warnings[0].starts_with("warning: after 5 batches: hidden layer 1 "),
            "{stderr}"
        );
        assert!(
            warnings[1].starts_with("warning: after epoch 1: hidden layer 1 "),
            "{stderr}"
        );
        for w in &warnings {
            assert!(w.contains(word) && w.contains("--init data"), "{w}");
        }
        let m = metrics_without_time(&out);
        let recorded = m[0]["warnings"].as_array().expect("warnings recorded");
        assert_eq!(recorded.len(), 2);
        assert_eq!(
            format!("warning: {}", recorded[1].as_str().unwrap()),
            warnings[1]
        );
    }
}

/// `--patience`, `--lr-schedule`, `--warmup-epochs`, `--weight-decay` reach `[optim]`;
/// bad values are one-line errors naming the flag or key.
#[test]
fn optimiser_flags_set_the_optim_section_and_early_stopping_ends_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let stdout = ok(&train(
        &out,
        &[
            "--epochs",
            "5",
            "--lr",
            "1e-12",
            "--patience",
            "1",
            "--lr-schedule",
            "cosine",
            "--warmup-epochs",
            "1",
            "--weight-decay",
            "0.01",
        ],
    ));
    assert!(
        stdout.contains("stopped early after epoch 2: no better validation accuracy in the 1 epochs after epoch 1"),
        "{stdout}"
    );
    assert_eq!(metrics_without_time(&out).len(), 2);
    let config = std::fs::read_to_string(out.join("config.toml")).unwrap();
    for line in [
        "patience = 1",
        "lr_schedule = \"cosine\"",
        "warmup_epochs = 1",
        "weight_decay = 0.01",
    ] {
        assert!(config.contains(line), "{line} in {config}");
    }
    let e = crate::common::one_line_error(
        &train(&dir.path().join("bad"), &["--lr-schedule", "linear"]),
        2,
    );
    assert!(e.contains("--lr-schedule") && e.contains("linear"), "{e}");
    let e = one_line_error(&train(&dir.path().join("bad2"), &["--weight-decay", "-1"]));
    assert!(e.contains("optim.weight_decay") && e.contains("-1"), "{e}");
}

/// Both tasks list the chip flags (the chip engine runs Yin-Yang and event data); only
/// `train events` lists the channel binning.
#[test]
fn help_lists_only_the_flags_that_apply() {
    let help = |task: &str| ok(&run(&["train", task, "--help"]));
    let events = help("events");
    assert!(
        events.contains("--chip ") && events.contains("--chip-config"),
        "{events}"
    );
    assert!(events.contains("--channel-bin"), "{events}");
    assert!(events.contains("--patience"), "{events}");
    let yy = help("yinyang");
    assert!(
        yy.contains("--chip ") && yy.contains("--chip-config"),
        "{yy}"
    );
    assert!(!yy.contains("--channel-bin"), "{yy}");
}

/// A software run's `config.toml` has no `[chip]` tables; it trains again as `--config`
/// to the same metrics, and so does an older run folder's config that has them.
#[test]
fn software_config_omits_the_chip_section_and_both_forms_load() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    ok(&train(&out, &["--epochs", "1"]));
    let cfg = out.join("config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(!text.contains("[chip"), "{text}");
    assert!(text.contains("[optim]"), "{text}");
    let again = dir.path().join("again");
    ok(&train(&again, &["--config", cfg.to_str().unwrap()]));
    assert_eq!(metrics_without_time(&again), metrics_without_time(&out));
    // The form of older versions: the chip tables written out.
    let old = dir.path().join("old.toml");
    std::fs::write(&old, format!("{text}\n[chip]\nkind = \"mock\"\nseed = 0\n")).unwrap();
    let from_old = dir.path().join("from_old");
    ok(&train(&from_old, &["--config", old.to_str().unwrap()]));
    assert_eq!(metrics_without_time(&from_old), metrics_without_time(&out));
    // Resume reads the checkpoint's config, which keeps every section.
    ok(&run(&[
        "train",
        "yinyang",
        "--resume",
        out.to_str().unwrap(),
        "--epochs",
        "2",
        "--threads",
        "1",
        "--quiet",
    ]));
    assert_eq!(metrics_without_time(&out).len(), 2);
}

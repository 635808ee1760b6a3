//! The README's Yin-Yang commands run as written (in a fresh folder, in order): the
//! quick workflow, the data-file commands and the everyday training options. Commands that
//! need downloaded data, long event runs or the exact engine's 40-epoch preset are skipped
//! (other tests run them on small sets).

use std::process::Command;

/// The `eventprop ...` lines of the README's `sh` blocks, comments removed.
fn readme_commands() -> Vec<Vec<String>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    let mut in_sh = false;
    for line in text.lines() {
        if line.starts_with("```") {
            in_sh = line == "```sh";
            continue;
        }
        if !in_sh || !line.starts_with("eventprop ") {
            continue;
        }
        let cmd = line.split(" #").next().unwrap();
        out.push(cmd.split_whitespace().skip(1).map(str::to_string).collect());
    }
    out
}

#[test]
fn readme_yinyang_commands_run_as_written() {
    let commands = readme_commands();
    let skip = |c: &[String]| {
        let s = c.join(" ");
        s.contains("events")
            || s.contains("timing")
            || s.contains(".h5")
            || s.contains("--engine exact")
    };
    let run: Vec<&Vec<String>> = commands.iter().filter(|c| !skip(c)).collect();
    // The new commands are among them.
    for want in [
        "data yinyang --out yy",
        "train yinyang --train yy/train.npz",
        "--lr-schedule cosine --warmup-epochs 2 --weight-decay 1e-4 --patience 5",
        "eval --checkpoint runs/files/best.safetensors",
    ] {
        assert!(
            run.iter().any(|c| c.join(" ").contains(want)),
            "`{want}` not in the README's commands: {run:?}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    for c in run {
        let o = Command::new(env!("CARGO_BIN_EXE_eventprop"))
            .current_dir(dir.path())
            .args(c)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "eventprop {}: {}",
            c.join(" "),
            String::from_utf8_lossy(&o.stderr)
        );
        if c[0] == "eval" {
            assert!(stdout.contains("accuracy: "), "{stdout}");
        }
    }
}

/// The `eventprop ...` lines of the first `sh` block of `doc` (a path from the repository
/// root), comments removed.
fn first_sh_block(doc: &str) -> Vec<Vec<String>> {
    let path = format!("{}/../../{doc}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).unwrap();
    let block = text
        .split("```sh\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    // `NAME="words"` lines define what `$NAME` stands for in the commands below them
    let mut vars: Vec<(String, String)> = Vec::new();
    let mut commands = Vec::new();
    for l in block.lines() {
        if let Some((name, value)) = l.split_once("=\"") {
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase()) {
                vars.push((format!("${name}"), value.trim_end_matches('"').to_string()));
                continue;
            }
        }
        if !l.starts_with("eventprop ") {
            continue;
        }
        let cmd = l.split(" #").next().unwrap();
        commands.push(
            cmd.split_whitespace()
                .skip(1)
                .flat_map(|w| match vars.iter().find(|(v, _)| v == w) {
                    Some((_, value)) => value.split_whitespace().map(str::to_string).collect(),
                    None => vec![w.to_string()],
                })
                .collect(),
        );
    }
    commands
}

/// docs/hil.md's usage commands run in order in a fresh folder (with `chip.toml` holding
/// its example key), each training run shrunk to one epoch on small splits.
#[test]
fn hil_doc_commands_run_with_small_sizes() {
    let commands = first_sh_block("docs/hil.md");
    let all: Vec<String> = commands.iter().map(|c| c.join(" ")).collect();
    for want in [
        "train yinyang --epochs 10 --out runs/sw",
        "eval --checkpoint runs/sw/checkpoint.safetensors --chip mock --chip-calibration calibration.json",
        "chip calibrate --chip mock --chip-seed 0 --out calibration.json",
        "chip record --chip mock --checkpoint runs/sw/checkpoint.safetensors",
    ] {
        assert!(all.iter().any(|c| c.contains(want)), "`{want}` not in {all:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("chip.toml"), "noise = false\n").unwrap();
    for mut c in commands {
        if c[0] == "train" {
            if let Some(k) = c.iter().position(|a| a == "--epochs") {
                c.drain(k..k + 2);
            }
            c.extend(["--epochs", "1", "--quiet"].map(String::from));
            if c[1] == "yinyang" {
                c.extend(
                    [
                        "--train-size",
                        "150",
                        "--val-size",
                        "50",
                        "--test-size",
                        "100",
                    ]
                    .map(String::from),
                );
            }
        }
        let o = Command::new(env!("CARGO_BIN_EXE_eventprop"))
            .current_dir(dir.path())
            .args(&c)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "eventprop {}: {}",
            c.join(" "),
            String::from_utf8_lossy(&o.stderr)
        );
        if c[0] == "eval" {
            assert!(stdout.contains("accuracy: "), "{stdout}");
        }
    }
    assert!(dir.path().join("rec.npz").is_file());
    let cfg = std::fs::read_to_string(dir.path().join("runs/hil-cal/config.toml")).unwrap();
    assert!(cfg.contains("[chip.calibration]"), "{cfg}");
}

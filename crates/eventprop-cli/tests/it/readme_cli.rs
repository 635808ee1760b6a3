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

//! `eventprop export --checkpoint C --nir OUT` and `eventprop eval --checkpoint OUT.nir`:
//! the exported network evaluates to exactly the checkpoint's numbers; bad NIR files and
//! unsupported graphs give one-line errors.

use crate::common;
use common::{ok, one_line_error, run};

#[test]
fn export_then_eval_prints_the_checkpoint_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&run(
        d,
        &[
            "train",
            "yinyang",
            "--epochs",
            "1",
            "--train-size",
            "200",
            "--val-size",
            "50",
            "--test-size",
            "300",
            "--quiet",
            "--out",
            "run",
        ],
    ));
    // Expected: `eval` of the checkpoint itself (every printed line).
    let expected = ok(&run(
        d,
        &["eval", "--checkpoint", "run/checkpoint.safetensors"],
    ));
    let msg = ok(&run(
        d,
        &[
            "export",
            "--checkpoint",
            "run/checkpoint.safetensors",
            "--nir",
            "m.nir",
        ],
    ));
    assert_eq!(
        msg.trim(),
        "wrote m.nir (5-120-3 network, stepped engine, 1 epochs trained)"
    );
    assert_eq!(ok(&run(d, &["eval", "--checkpoint", "m.nir"])), expected);
    // A NIR file exports again (read, then written): the same evaluation.
    ok(&run(
        d,
        &["export", "--checkpoint", "m.nir", "--nir", "again.nir"],
    ));
    assert_eq!(
        ok(&run(d, &["eval", "--checkpoint", "again.nir"])),
        expected
    );

    // Training initialised from the NIR file: with a learning rate too small to move any
    // weight (w + 1e-300 * step == w), the new run evaluates as the file does.
    ok(&run(
        d,
        &[
            "train",
            "yinyang",
            "--epochs",
            "1",
            "--train-size",
            "200",
            "--val-size",
            "50",
            "--test-size",
            "300",
            "--quiet",
            "--lr",
            "1e-300",
            "--init-nir",
            "m.nir",
            "--out",
            "from_nir",
        ],
    ));
    assert_eq!(
        ok(&run(
            d,
            &["eval", "--checkpoint", "from_nir/checkpoint.safetensors"]
        )),
        expected
    );
    let e = one_line_error(
        &run(
            d,
            &[
                "train",
                "yinyang",
                "--hidden",
                "7",
                "--init-nir",
                "m.nir",
                "--out",
                "bad",
            ],
        ),
        1,
    );
    assert!(
        e.starts_with("error: --init-nir m.nir: the graph's network"),
        "{e}"
    );

    // Bad files: one line naming the flag and the file.
    std::fs::write(d.join("junk.nir"), b"not hdf5").unwrap();
    let e = one_line_error(&run(d, &["eval", "--checkpoint", "junk.nir"]), 1);
    assert!(
        e.starts_with("error: --checkpoint junk.nir: junk.nir: not a readable HDF5 file"),
        "{e}"
    );
    let e = one_line_error(&run(d, &["eval", "--checkpoint", "missing.nir"]), 1);
    assert!(
        e.starts_with("error: --checkpoint missing.nir: missing.nir: "),
        "{e}"
    );
    let e = one_line_error(
        &run(
            d,
            &[
                "export",
                "--checkpoint",
                "run/checkpoint.safetensors",
                "--nir",
                "no/such/dir/m.nir",
            ],
        ),
        1,
    );
    assert!(e.starts_with("error: --nir: "), "{e}");
}

/// An event run with every exported extra (recurrent hidden layer, trained time constants
/// and thresholds): `eval` of the exported graph on the run's data file prints exactly
/// what `eval` of the checkpoint prints; `train events --init-nir` starts from the graph
/// (with a learning rate too small to move any tensor it evaluates as the file does); a
/// plain graph starts a `--recurrent` run (zero recurrent weights); trained delays are
/// refused by `export` in one line saying why.
#[test]
fn event_runs_export_evaluate_and_initialise_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&run(
        d,
        &[
            "data",
            "timing",
            "--out",
            "ev.npz",
            "--samples",
            "64",
            "--channels",
            "8",
            "--classes",
            "3",
            "--duration",
            "0.1",
            "--events-per-sample",
            "40",
        ],
    ));
    let train = |out: &str, extra: &[&str]| {
        let mut args = vec![
            "train",
            "events",
            "--train",
            "ev.npz",
            "--epochs",
            "1",
            "--hidden",
            "16",
            "--threads",
            "1",
            "--quiet",
            "--out",
            out,
        ];
        args.extend_from_slice(extra);
        run(d, &args)
    };
    let all = ["--recurrent", "--train-taus", "--train-threshold"];
    ok(&train("run", &all));
    let eval = |model: &str| {
        ok(&run(
            d,
            &[
                "eval",
                "--checkpoint",
                model,
                "--data",
                "ev.npz",
                "--threads",
                "1",
            ],
        ))
    };
    let expected = eval("run/checkpoint.safetensors");
    let msg = ok(&run(
        d,
        &[
            "export",
            "--checkpoint",
            "run/checkpoint.safetensors",
            "--nir",
            "m.nir",
        ],
    ));
    assert_eq!(
        msg.trim(),
        "wrote m.nir (8-16-3 network, stepped engine, 1 epochs trained)"
    );
    assert_eq!(eval("m.nir"), expected);

    let mut init = all.to_vec();
    init.extend(["--lr", "1e-300", "--init-nir", "m.nir"]);
    ok(&train("from_nir", &init));
    assert_eq!(eval("from_nir/checkpoint.safetensors"), expected);
    // The graph has a recurrent cycle: a run without --recurrent is told what differs.
    let e = one_line_error(&train("bad", &["--init-nir", "m.nir"]), 1);
    assert!(
        e.contains("learn.recurrent = true (configured false)"),
        "{e}"
    );

    ok(&train("plain", &[]));
    ok(&run(
        d,
        &[
            "export",
            "--checkpoint",
            "plain/checkpoint.safetensors",
            "--nir",
            "plain.nir",
        ],
    ));
    ok(&train(
        "plain_rec",
        &["--recurrent", "--init-nir", "plain.nir"],
    ));

    ok(&train("delays", &["--delays"]));
    let e = one_line_error(
        &run(
            d,
            &[
                "export",
                "--checkpoint",
                "delays/checkpoint.safetensors",
                "--nir",
                "d.nir",
            ],
        ),
        1,
    );
    assert!(
        e.starts_with("error: --nir: node `graph` (export): trained delays are not exported: eventprop has one delay per synapse"),
        "{e}"
    );
    assert!(!d.join("d.nir").exists());
}

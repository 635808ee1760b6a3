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

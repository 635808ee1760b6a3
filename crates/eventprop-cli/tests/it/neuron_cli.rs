//! End-to-end tests of `eventprop neuron`: outputs agree with the library, errors are one
//! line with a non-zero exit, and nothing is left half-written.

use std::path::Path;
use std::process::Command;

use eventprop_core::{Discretization, EventPropNeuron, LifParams, Param};
use ndarray::{Array1, Array3, Array4, ArrayD};
use ndarray_npy::{read_npy, write_npy};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_eventprop"))
}

/// A deterministic input with a few strong pulses so that neurons spike.
fn input(t: usize, b: usize, n: usize) -> Array4<f64> {
    Array4::from_shape_fn((2, t, b, n), |(k, ti, bi, ni)| {
        if k == 0 && (ti * 7 + bi * 3 + ni * 5) % 11 == 0 {
            3.0 + 0.5 * ni as f64
        } else {
            0.0
        }
    })
}

fn run_ok(args: &[&str]) {
    let out = bin().args(args).output().expect("binary runs");
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the binary expecting failure; returns the single stderr line.
fn run_err(args: &[&str]) -> String {
    let out = bin().args(args).output().expect("binary runs");
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected exit 1, stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr).trim_end().to_string();
    assert_eq!(err.lines().count(), 1, "expected one line, got: {err}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

fn p(dir: &Path, name: &str) -> String {
    dir.join(name).to_string_lossy().into_owned()
}

#[test]
fn outputs_match_library_with_per_neuron_params_and_backward() {
    let dir = tempfile::tempdir().unwrap();
    let x = input(40, 3, 4);
    let tau_mem = Array1::from(vec![5e-6, 6e-6, 7e-6, 8e-6]);
    let g = Array3::from_shape_fn((40, 3, 4), |(t, b, n)| {
        ((t + 2 * b + 3 * n) % 5) as f64 - 2.0
    });
    write_npy(dir.path().join("x.npy"), &x).unwrap();
    write_npy(dir.path().join("tau.npy"), &tau_mem).unwrap();
    write_npy(dir.path().join("g.npy"), &g).unwrap();
    let out = dir.path().join("out");
    run_ok(&[
        "neuron",
        "--input",
        &p(dir.path(), "x.npy"),
        "--out",
        &out.to_string_lossy(),
        "--tau-mem",
        &p(dir.path(), "tau.npy"),
        "--grad-spikes",
        &p(dir.path(), "g.npy"),
        "--discretization",
        "corrected",
    ]);
    // Expected values: the library called directly with the same arguments.
    let neuron = EventPropNeuron {
        params: LifParams {
            tau_mem: Param::PerNeuron(tau_mem.to_vec()),
            ..LifParams::default()
        },
        dt: 1e-6,
        discretization: Discretization::Corrected,
    };
    let ctx = neuron.forward_stacked(x.view(), None).unwrap();
    let grad = ctx.backward(g.view(), None, None).unwrap();
    let spikes: Array3<f64> = read_npy(out.join("spikes.npy")).unwrap();
    let membrane: Array3<f64> = read_npy(out.join("membrane.npy")).unwrap();
    let current: Array3<f64> = read_npy(out.join("current.npy")).unwrap();
    let grad_input: Array4<f64> = read_npy(out.join("grad_input.npy")).unwrap();
    assert_eq!(spikes, ctx.output().spikes);
    assert_eq!(membrane, ctx.output().membrane);
    assert_eq!(current, ctx.output().current);
    assert_eq!(grad_input, grad.grad_input);
    assert!(spikes.sum() > 0.0, "the test input must make neurons spike");
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("stats.json")).unwrap()).unwrap();
    assert_eq!(stats["spike_count"].as_f64().unwrap(), spikes.sum());
    assert_eq!(stats["dtype"], "f64");
    assert_eq!(stats["guards"]["guarded_spikes"], grad.stats.guarded_spikes);
}

#[test]
fn float32_input_gives_float32_outputs_and_hw_path_passes_through() {
    let dir = tempfile::tempdir().unwrap();
    let x = input(30, 2, 3)
        .index_axis(ndarray::Axis(0), 0)
        .mapv(|v| v as f32);
    let hw_s = Array3::from_shape_fn(
        (30, 2, 3),
        |(t, _, n)| if t == 10 + n { 1.0f32 } else { 0.0 },
    );
    let hw_m = Array3::from_shape_fn((30, 2, 3), |(t, b, n)| (t + b + n) as f32 * 0.01);
    write_npy(dir.path().join("x.npy"), &x).unwrap();
    write_npy(dir.path().join("s.npy"), &hw_s).unwrap();
    write_npy(dir.path().join("m.npy"), &hw_m).unwrap();
    let out = dir.path().join("out");
    run_ok(&[
        "neuron",
        "--input",
        &p(dir.path(), "x.npy"),
        "--out",
        &out.to_string_lossy(),
        "--hw-spikes",
        &p(dir.path(), "s.npy"),
        "--hw-membrane",
        &p(dir.path(), "m.npy"),
    ]);
    // Hardware observables are returned unchanged (docs/spec.md §1).
    let spikes: Array3<f32> = read_npy(out.join("spikes.npy")).unwrap();
    let membrane: Array3<f32> = read_npy(out.join("membrane.npy")).unwrap();
    assert_eq!(spikes, hw_s);
    assert_eq!(membrane, hw_m);
    assert!(!out.join("grad_input.npy").exists());
}

#[test]
fn bad_inputs_fail_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let x = input(20, 2, 4);
    write_npy(dir.path().join("x.npy"), &x).unwrap();
    write_npy(dir.path().join("tau2.npy"), &Array1::from(vec![5e-6, 6e-6])).unwrap();
    write_npy(
        dir.path().join("g_bad.npy"),
        &Array3::<f64>::zeros((20, 2, 3)),
    )
    .unwrap();
    write_npy(
        dir.path().join("rank2.npy"),
        &ndarray::Array2::<f64>::zeros((20, 2)),
    )
    .unwrap();
    write_npy(
        dir.path().join("ints.npy"),
        &ArrayD::<i64>::zeros(vec![20, 2, 4]),
    )
    .unwrap();
    let mut nan = x.clone();
    nan[[0, 3, 1, 2]] = f64::NAN;
    write_npy(dir.path().join("nan.npy"), &nan).unwrap();
    let bytes = std::fs::read(dir.path().join("x.npy")).unwrap();
    std::fs::write(dir.path().join("trunc.npy"), &bytes[..bytes.len() / 2]).unwrap();
    let out = p(dir.path(), "out");
    let xs = p(dir.path(), "x.npy");

    let e = run_err(&[
        "neuron",
        "--input",
        &p(dir.path(), "trunc.npy"),
        "--out",
        &out,
    ]);
    assert!(e.contains("input") && e.contains("trunc.npy"), "{e}");
    let e = run_err(&[
        "neuron",
        "--input",
        &p(dir.path(), "missing.npy"),
        "--out",
        &out,
    ]);
    assert!(e.contains("input: cannot open"), "{e}");
    let e = run_err(&[
        "neuron",
        "--input",
        &p(dir.path(), "ints.npy"),
        "--out",
        &out,
    ]);
    assert!(e.contains("float32 or float64"), "{e}");
    let e = run_err(&[
        "neuron",
        "--input",
        &p(dir.path(), "rank2.npy"),
        "--out",
        &out,
    ]);
    assert!(
        e.contains("input: expected shape (2, T, B, N) or (T, B, N), got (20, 2)"),
        "{e}"
    );
    let e = run_err(&[
        "neuron",
        "--input",
        &xs,
        "--out",
        &out,
        "--tau-mem",
        &p(dir.path(), "tau2.npy"),
    ]);
    assert!(
        e.contains("tau_mem: expected shape a scalar or (N,) = (4,), got (2,)"),
        "{e}"
    );
    let e = run_err(&["neuron", "--input", &xs, "--out", &out, "--tau-syn", "-1"]);
    assert!(e.contains("tau_syn: expected a value > 0, got -1"), "{e}");
    let e = run_err(&["neuron", "--input", &xs, "--out", &out, "--dt", "0"]);
    assert!(e.contains("dt: expected a value > 0, got 0"), "{e}");
    let e = run_err(&["neuron", "--input", &xs, "--out", &out, "--leak", "abc"]);
    assert!(
        e.contains("leak: expected a number or an existing .npy file"),
        "{e}"
    );
    let e = run_err(&[
        "neuron",
        "--input",
        &p(dir.path(), "nan.npy"),
        "--out",
        &out,
    ]);
    assert!(
        e.contains("input: expected finite values, got NaN at index [3, 1, 2]"),
        "{e}"
    );
    let e = run_err(&[
        "neuron",
        "--input",
        &xs,
        "--out",
        &out,
        "--grad-spikes",
        &p(dir.path(), "g_bad.npy"),
    ]);
    assert!(
        e.contains("grad_spikes: expected shape (20, 2, 4), got (20, 2, 3)"),
        "{e}"
    );
    let e = run_err(&[
        "neuron",
        "--input",
        &xs,
        "--out",
        &out,
        "--hw-spikes",
        &p(dir.path(), "g_bad.npy"),
        "--hw-membrane",
        &p(dir.path(), "g_bad.npy"),
    ]);
    assert!(
        e.contains("hw_spikes: expected shape (20, 2, 4), got (20, 2, 3)"),
        "{e}"
    );
    // Errors are raised before anything is written.
    assert!(!Path::new(&out).exists());
    // --hw-spikes without --hw-membrane is a usage error (clap, exit 2).
    let st = bin()
        .args(["neuron", "--input", &xs, "--out", &out, "--hw-spikes", &xs])
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(2));
    // Usage errors are one line too.
    let err = String::from_utf8_lossy(&st.stderr).trim_end().to_string();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--hw-membrane"), "{err}");
    let st = bin()
        .args(["neuron", "--input", &xs, "--out", &out, "--bogus"])
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(2));
    let err = String::from_utf8_lossy(&st.stderr).trim_end().to_string();
    assert_eq!(
        err,
        "error: unexpected argument '--bogus' found (see --help)"
    );
}

/// A `.npy` file whose header declares `shape` (a Python tuple body such as `3, 4`) of
/// dtype `descr`, followed by `data` (whatever its length).
fn raw_npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({shape}), }}");
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.extend_from_slice(data);
    out
}

/// Issue 14 #1: a 192-byte file declaring (100000, 100000, 100000) float64 used to abort
/// on an 8e15-byte allocation (exit 134); every reader now compares the declared size with
/// the file first.
#[test]
fn declared_size_is_checked_against_the_file_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let big = raw_npy("<f8", "100000, 100000, 100000", &[0; 64]);
    assert_eq!(big.len(), 192);
    std::fs::write(dir.path().join("big.npy"), &big).unwrap();
    std::fs::write(dir.path().join("empty.npy"), b"").unwrap();
    std::fs::write(dir.path().join("extra.npy"), raw_npy("<f8", "2,", &[0; 24])).unwrap();
    std::fs::write(
        dir.path().join("wrap.npy"),
        raw_npy("<f8", "4294967296, 4294967296, 4294967296", &[0; 8]),
    )
    .unwrap();
    write_npy(dir.path().join("x.npy"), &input(10, 1, 2)).unwrap();
    let out = p(dir.path(), "out");
    let xs = p(dir.path(), "x.npy");
    let big = p(dir.path(), "big.npy");
    let declared = "declares shape (100000, 100000, 100000) of dtype '<f8', \
                    8000000000000000 bytes of data, but only 64 bytes follow the header";
    let e = run_err(&["neuron", "--input", &big, "--out", &out]);
    assert!(
        e.starts_with("error: input: ") && e.contains("big.npy"),
        "{e}"
    );
    assert!(e.contains(declared), "{e}");
    for flag in ["--tau-mem", "--leak", "--grad-spikes"] {
        let e = run_err(&["neuron", "--input", &xs, "--out", &out, flag, &big]);
        let arg = flag.trim_start_matches("--").replace('-', "_");
        assert!(e.starts_with(&format!("error: {arg}: ")), "{e}");
        assert!(e.contains("big.npy") && e.contains(declared), "{e}");
    }
    let e = run_err(&[
        "neuron",
        "--input",
        &xs,
        "--out",
        &out,
        "--hw-spikes",
        &big,
        "--hw-membrane",
        &xs,
    ]);
    assert!(e.contains("hw_spikes: ") && e.contains(declared), "{e}");
    // An empty file says so (was: `failed to fill whole buffer`).
    let e = run_err(&[
        "neuron",
        "--input",
        &p(dir.path(), "empty.npy"),
        "--out",
        &out,
    ]);
    assert!(
        e.contains("input: ") && e.contains("empty.npy: the file is empty (0 bytes)"),
        "{e}"
    );
    // More data than declared, and a shape whose size does not fit in 64 bits.
    let e = run_err(&[
        "neuron",
        "--input",
        &p(dir.path(), "extra.npy"),
        "--out",
        &out,
    ]);
    assert!(
        e.contains("corrupt .npy: the header declares shape (2) of dtype '<f8', 16 bytes"),
        "{e}"
    );
    assert!(e.contains("but 24 bytes follow the header"), "{e}");
    let e = run_err(&[
        "neuron",
        "--input",
        &p(dir.path(), "wrap.npy"),
        "--out",
        &out,
    ]);
    assert!(e.contains("more data than fits in memory"), "{e}");
    assert!(!Path::new(&out).exists());
}

/// Issue 14 #7: finite inputs of 1e308 (f64) / 1e38 (f32) used to exit 0 with infinite
/// currents and a warning blaming `dv_m = 0`.
#[test]
fn overflowing_finite_inputs_are_an_error_naming_the_input() {
    let dir = tempfile::tempdir().unwrap();
    write_npy(
        dir.path().join("x64.npy"),
        &Array3::<f64>::from_elem((20, 1, 2), 1e308),
    )
    .unwrap();
    write_npy(
        dir.path().join("x32.npy"),
        &Array3::<f32>::from_elem((20, 1, 2), 1e38),
    )
    .unwrap();
    write_npy(dir.path().join("g.npy"), &Array3::<f64>::ones((20, 1, 2))).unwrap();
    let out = p(dir.path(), "out");
    let e = run_err(&[
        "neuron",
        "--input",
        &p(dir.path(), "x64.npy"),
        "--out",
        &out,
        "--grad-spikes",
        &p(dir.path(), "g.npy"),
    ]);
    assert!(
        e.starts_with(
            "error: input: finite values overflow f64 in the synaptic current (got inf at \
             index [2, 0, 0])"
        ),
        "{e}"
    );
    let e = run_err(&[
        "neuron",
        "--input",
        &p(dir.path(), "x32.npy"),
        "--out",
        &out,
    ]);
    assert!(
        e.contains("input: finite values overflow f32 in the synaptic current"),
        "{e}"
    );
    assert!(!Path::new(&out).exists());
}

/// Issue 14 #8: a second run without --grad-spikes used to leave the first run's
/// grad_input.npy beside the new outputs.
#[test]
fn stale_outputs_of_an_earlier_run_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    write_npy(dir.path().join("x.npy"), &input(20, 2, 3)).unwrap();
    write_npy(dir.path().join("g.npy"), &Array3::<f64>::ones((20, 2, 3))).unwrap();
    let out = dir.path().join("out");
    let outs = out.to_string_lossy().into_owned();
    let xs = p(dir.path(), "x.npy");
    run_ok(&[
        "neuron",
        "--input",
        &xs,
        "--out",
        &outs,
        "--grad-spikes",
        &p(dir.path(), "g.npy"),
    ]);
    assert!(out.join("grad_input.npy").exists());
    // Files that are not this command's outputs are left alone.
    for other in ["notes.txt", "grad_input.npy.bak", "grad_input_old.npy"] {
        std::fs::write(out.join(other), b"keep").unwrap();
    }
    run_ok(&["neuron", "--input", &xs, "--out", &outs]);
    assert!(!out.join("grad_input.npy").exists(), "stale output removed");
    for kept in [
        "spikes.npy",
        "membrane.npy",
        "current.npy",
        "stats.json",
        "notes.txt",
        "grad_input.npy.bak",
        "grad_input_old.npy",
    ] {
        assert!(out.join(kept).exists(), "{kept} kept");
    }
    let help = bin().args(["neuron", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("grad_input.npy left from an"), "{help}");
}

/// Negative numbers reach validation instead of clap's flag parser.
#[test]
fn negative_numbers_reach_validation() {
    let dir = tempfile::tempdir().unwrap();
    write_npy(dir.path().join("x.npy"), &input(10, 1, 2)).unwrap();
    let out = p(dir.path(), "out");
    let xs = p(dir.path(), "x.npy");
    let e = run_err(&["neuron", "--input", &xs, "--out", &out, "--dt", "-1e-6"]);
    assert!(e.contains("dt: expected a value > 0, got -0.000001"), "{e}");
    let e = run_err(&[
        "neuron",
        "--input",
        &xs,
        "--out",
        &out,
        "--tau-mem",
        "-1e-5",
    ]);
    assert!(
        e.contains("tau_mem: expected a value > 0, got -0.00001"),
        "{e}"
    );
    run_ok(&[
        "neuron", "--input", &xs, "--out", &out, "--leak", "-1e-3", "--reset", "-0.5",
    ]);
}

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
    // Hardware observables are returned unchanged (SPEC §1).
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

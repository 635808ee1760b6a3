//! End-to-end tests of `eventprop exact`: small `.npz` files in a temp dir, the binary run
//! as a subprocess.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use eventprop_exact::{loss, Lif, Network, SolverConfig, Spike};
use ndarray::{array, Array1, Array2, Ix1, OwnedRepr};
use ndarray_npy::{NpzReader, NpzWriter, ReadNpyExt};

fn write_npz(path: &Path, arrays: &[(&str, NpzArray)]) {
    let mut npz = NpzWriter::new(File::create(path).unwrap());
    for (name, a) in arrays {
        match a {
            NpzArray::F2(a) => npz.add_array(*name, a).unwrap(),
            NpzArray::F1(a) => npz.add_array(*name, a).unwrap(),
            NpzArray::I1(a) => npz.add_array(*name, a).unwrap(),
        }
    }
    npz.finish().unwrap();
}

enum NpzArray {
    F2(Array2<f64>),
    F1(Array1<f64>),
    I1(Array1<i64>),
}

fn weights() -> Vec<Array2<f64>> {
    // 3 inputs → 4 hidden → 2 outputs; sized so that both layers fire a few spikes with
    // the default tau_syn 5 ms / tau_mem 20 ms (checked by the spike-count assertion).
    vec![
        array![
            [9.0, 4.0, 2.0],
            [3.0, 8.0, 5.0],
            [6.0, 1.0, 7.0],
            [2.0, 6.0, 6.0]
        ],
        array![[4.0, 3.0, 5.0, 2.0], [2.0, 5.0, 3.0, 4.0]],
    ]
}

fn input() -> (Vec<f64>, Vec<i64>) {
    (vec![3e-3, 1e-3, 2e-3, 6e-3, 8e-3], vec![1, 0, 2, 0, 1])
}

fn setup(dir: &Path, w: &[Array2<f64>]) -> (PathBuf, PathBuf) {
    let wp = dir.join("w.npz");
    let names: Vec<String> = (0..w.len()).map(|k| format!("w{k}")).collect();
    let arrays: Vec<(&str, NpzArray)> = names
        .iter()
        .zip(w)
        .map(|(n, a)| (n.as_str(), NpzArray::F2(a.clone())))
        .collect();
    write_npz(&wp, &arrays);
    let (t, n) = input();
    let sp = dir.join("s.npz");
    write_npz(
        &sp,
        &[
            ("times", NpzArray::F1(Array1::from(t))),
            ("neurons", NpzArray::I1(Array1::from(n))),
        ],
    );
    (wp, sp)
}

fn run(w: &Path, s: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_eventprop"))
        .arg("exact")
        .arg("--weights")
        .arg(w)
        .arg("--input")
        .arg(s)
        .args(["--t-max", "0.04"])
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn loss_value(out: &Path) -> f64 {
    let v: serde_json::Value =
        serde_json::from_reader(File::open(out.join("loss.json")).unwrap()).unwrap();
    v["value"].as_f64().unwrap()
}

#[test]
fn writes_loss_spikes_and_gradients_matching_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let (wp, sp) = setup(dir.path(), &weights());
    let out = dir.path().join("out");
    let o = run(&wp, &sp, &out, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value =
        serde_json::from_reader(File::open(out.join("loss.json")).unwrap()).unwrap();
    let counts: Vec<u64> = report["spike_counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(counts[0], 5, "five input spikes");
    assert!(
        counts[1] > 0 && counts[2] > 0,
        "both layers fire: {counts:?}"
    );
    // The loss is the sum of the output spike times in spikes_2.npz.
    let mut npz = NpzReader::new(File::open(out.join("spikes_2.npz")).unwrap()).unwrap();
    let times: Array1<f64> = npz.by_name::<OwnedRepr<f64>, Ix1>("times").unwrap();
    let neurons: Array1<i64> = npz.by_name::<OwnedRepr<i64>, Ix1>("neurons").unwrap();
    assert_eq!(times.len() as u64, counts[2]);
    assert_eq!(neurons.len(), times.len());
    assert!(
        times.windows(2).into_iter().all(|w| w[0] <= w[1]),
        "sorted by time"
    );
    assert_eq!(report["value"].as_f64().unwrap(), times.sum());
    // Gradients are those of the library on the same network and input (bit-identical).
    let net = Network::new(weights(), vec![Lif::default(); 2]).unwrap();
    let (t, n) = input();
    let spikes: Vec<Spike> = t
        .iter()
        .zip(&n)
        .map(|(&time, &k)| Spike {
            time,
            neuron: k as u32,
        })
        .collect();
    let cfg = SolverConfig::default();
    let trace = net.forward(&spikes, 0.04, &cfg).unwrap();
    let g = trace
        .backward(&net, &loss::spike_time_sum(trace.output()).dl_dt, &cfg)
        .unwrap();
    for k in 0..2 {
        let gw = Array2::<f64>::read_npy(File::open(out.join(format!("grad_w{k}.npy"))).unwrap())
            .unwrap();
        assert_eq!(gw, g.weights[k]);
    }
    let gt =
        Array1::<f64>::read_npy(File::open(out.join("grad_input_times.npy")).unwrap()).unwrap();
    assert_eq!(gt.to_vec(), g.input_times);
    // Central difference through the CLI itself for one hidden weight.
    let h = 1e-6;
    let mut values = Vec::new();
    for sign in [1.0, -1.0] {
        let mut w = weights();
        w[0][[1, 1]] += sign * h;
        let sub = dir.path().join(format!("fd{sign}"));
        std::fs::create_dir_all(&sub).unwrap();
        let (wp, sp) = setup(&sub, &w);
        assert!(run(&wp, &sp, &sub.join("out"), &[]).status.success());
        values.push(loss_value(&sub.join("out")));
    }
    let fd = (values[0] - values[1]) / (2.0 * h);
    let gw0 = Array2::<f64>::read_npy(File::open(out.join("grad_w0.npy")).unwrap()).unwrap();
    // dL/dW by the adjoint vs (L(w+h) - L(w-h)) / 2h; h = 1e-6 leaves O(h^2) + rounding.
    assert!(
        (gw0[[1, 1]] - fd).abs() <= 1e-5 * gw0[[1, 1]].abs() + 1e-8,
        "{} vs {fd}",
        gw0[[1, 1]]
    );
}

fn assert_one_line_error(o: &std::process::Output, needle: &str) {
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("error: ") && err.contains(needle), "{err}");
}

#[test]
fn first_spike_ce_loss_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (wp, sp) = setup(dir.path(), &weights());
    let out = dir.path().join("out");
    let o = run(
        &wp,
        &sp,
        &out,
        &["--loss", "first-spike-ce", "--label", "1"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value =
        serde_json::from_reader(File::open(out.join("loss.json")).unwrap()).unwrap();
    assert_eq!(v["loss"], "first-spike-ce");
    // Cross-entropy of a 2-class softmax is positive (and finite).
    assert!(v["value"].as_f64().unwrap() > 0.0);
}

#[test]
fn mismatched_weight_shapes_fail_in_one_line_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = weights();
    w[1] = Array2::zeros((2, 3));
    let (wp, sp) = setup(dir.path(), &w);
    let out = dir.path().join("out");
    let o = run(&wp, &sp, &out, &[]);
    assert_one_line_error(&o, "w1: expected shape (N_2, N_1) with N_1 = 4, got (2, 3)");
    assert!(!out.exists());
}

#[test]
fn bad_inputs_fail_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let (wp, sp) = setup(dir.path(), &weights());
    let out = dir.path().join("out");
    // Missing file.
    let o = run(&dir.path().join("nope.npz"), &sp, &out, &[]);
    assert_one_line_error(&o, "--weights: cannot open");
    // Not an npz.
    std::fs::write(dir.path().join("junk.npz"), b"junk").unwrap();
    let o = run(&wp, &dir.path().join("junk.npz"), &out, &[]);
    assert_one_line_error(&o, "--input: cannot read");
    // Input neuron out of range (3 inputs).
    let bad = dir.path().join("bad.npz");
    write_npz(
        &bad,
        &[
            ("times", NpzArray::F1(array![1e-3])),
            ("neurons", NpzArray::I1(array![3])),
        ],
    );
    assert_one_line_error(
        &run(&wp, &bad, &out, &[]),
        "expected a neuron index < 3, got 3",
    );
    // Negative neuron index.
    write_npz(
        &bad,
        &[
            ("times", NpzArray::F1(array![1e-3])),
            ("neurons", NpzArray::I1(array![-1])),
        ],
    );
    assert_one_line_error(
        &run(&wp, &bad, &out, &[]),
        "neurons[0]: expected an index >= 0, got -1",
    );
    // Lengths differ.
    write_npz(
        &bad,
        &[
            ("times", NpzArray::F1(array![1e-3, 2e-3])),
            ("neurons", NpzArray::I1(array![0])),
        ],
    );
    assert_one_line_error(&run(&wp, &bad, &out, &[]), "equal length, got 2 and 1");
    // Weights as float32 are rejected (float64 required).
    let w32 = dir.path().join("w32.npz");
    let mut npz = NpzWriter::new(File::create(&w32).unwrap());
    npz.add_array("w0", &Array2::<f32>::zeros((2, 3))).unwrap();
    npz.finish().unwrap();
    assert_one_line_error(&run(&w32, &sp, &out, &[]), "w0 in");
    // Wrong array name.
    let wn = dir.path().join("wn.npz");
    write_npz(
        &wn,
        &[
            ("w0", NpzArray::F2(Array2::zeros((2, 3)))),
            ("w2", NpzArray::F2(Array2::zeros((1, 2)))),
        ],
    );
    assert_one_line_error(&run(&wn, &sp, &out, &[]), "got `w2`");
    // Invalid parameters and window.
    assert_one_line_error(
        &run(&wp, &sp, &out, &["--tau-mem", "-1"]),
        "tau_mem: expected a value > 0, got -1",
    );
    assert_one_line_error(
        &run(&wp, &sp, &out, &["--reset", "2"]),
        "reset: expected a value < threshold = 1, got 2",
    );
    let o = Command::new(env!("CARGO_BIN_EXE_eventprop"))
        .args(["exact", "--t-max", "-1", "--out"])
        .arg(&out)
        .arg("--weights")
        .arg(&wp)
        .arg("--input")
        .arg(&sp)
        .output()
        .unwrap();
    assert_one_line_error(&o, "t_max: expected a finite value > 0, got -1");
    assert_one_line_error(
        &run(&wp, &sp, &out, &["--loss", "first-spike-ce"]),
        "--label: required",
    );
    assert_one_line_error(
        &run(
            &wp,
            &sp,
            &out,
            &["--loss", "first-spike-ce", "--label", "2"],
        ),
        "label: expected a class index < 2, got 2",
    );
    // Spike cap exceeded is an error naming the cap.
    assert_one_line_error(
        &run(&wp, &sp, &out, &["--max-spikes-per-neuron", "1"]),
        "more than 1 spikes",
    );
    assert!(!out.exists());
}

/// A `.npy` stream whose header declares `shape` (a Python tuple body) of dtype `descr`,
/// followed by `data`.
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

/// A zip of raw `.npy` streams (`name.npy`), stored or deflated.
fn write_raw_npz(path: &Path, entries: &[(&str, Vec<u8>)], method: zip::CompressionMethod) {
    use std::io::Write;
    let mut z = zip::ZipWriter::new(File::create(path).unwrap());
    let options = zip::write::SimpleFileOptions::default().compression_method(method);
    for (name, bytes) in entries {
        z.start_file(format!("{name}.npy"), options).unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap();
}

/// The `.npy` bytes of an array.
fn npy_bytes<A: ndarray_npy::WriteNpyExt>(a: &A) -> Vec<u8> {
    let mut v = Vec::new();
    a.write_npy(&mut v).unwrap();
    v
}

/// Issue 14 #1: an array in an `.npz` declaring (100000, 100000, 100000) float64 used to
/// abort on an 8e15-byte allocation; the declared size is now checked against the entry.
#[test]
fn declared_sizes_in_npz_entries_are_checked_before_allocating() {
    use zip::CompressionMethod::{Deflated, Stored};
    let dir = tempfile::tempdir().unwrap();
    let (wp, sp) = setup(dir.path(), &weights());
    let out = dir.path().join("out");
    let big = raw_npy("<f8", "100000, 100000, 100000", &[0; 64]);
    let declared = "declares shape (100000, 100000, 100000) of dtype '<f8', \
                    8000000000000000 bytes of data, but only 64 bytes follow the header";
    let (t, n) = input();
    let neurons = npy_bytes(&Array1::from(n));
    let times = npy_bytes(&Array1::from(t));
    for method in [Stored, Deflated] {
        let bw = dir.path().join("bw.npz");
        write_raw_npz(&bw, &[("w0", big.clone())], method);
        assert_one_line_error(&run(&bw, &sp, &out, &[]), "--weights: w0 in ");
        assert_one_line_error(&run(&bw, &sp, &out, &[]), declared);
        let bs = dir.path().join("bs.npz");
        write_raw_npz(
            &bs,
            &[("times", big.clone()), ("neurons", neurons.clone())],
            method,
        );
        assert_one_line_error(&run(&wp, &bs, &out, &[]), "--input: times in ");
        assert_one_line_error(&run(&wp, &bs, &out, &[]), "bs.npz");
        assert_one_line_error(&run(&wp, &bs, &out, &[]), declared);
        // An empty entry is named as such.
        write_raw_npz(
            &bs,
            &[("times", times.clone()), ("neurons", Vec::new())],
            method,
        );
        assert_one_line_error(&run(&wp, &bs, &out, &[]), "--input: neurons in ");
        assert_one_line_error(&run(&wp, &bs, &out, &[]), "the file is empty (0 bytes)");
    }
    assert!(!out.exists());
}

/// A missing array is named with the file (was: `zip file error: specified file not found
/// in archive`).
#[test]
fn missing_input_array_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (wp, _) = setup(dir.path(), &weights());
    let sp = dir.path().join("times_only.npz");
    write_npz(&sp, &[("times", NpzArray::F1(array![1e-3]))]);
    let o = run(&wp, &sp, &dir.path().join("out"), &[]);
    assert_one_line_error(&o, "times_only.npz has no array `neurons`");
    assert_one_line_error(&o, "expected a 1-D int64 array; it holds: times");
}

/// `np.savez_compressed` files (deflate) used to fail with `Compression method not
/// supported`; they now give the same results as stored files.
#[test]
fn compressed_npz_inputs_match_stored_ones() {
    use zip::CompressionMethod::Deflated;
    let dir = tempfile::tempdir().unwrap();
    let (wp, sp) = setup(dir.path(), &weights());
    let w = weights();
    let wc = dir.path().join("wc.npz");
    write_raw_npz(
        &wc,
        &[("w0", npy_bytes(&w[0])), ("w1", npy_bytes(&w[1]))],
        Deflated,
    );
    let (t, n) = input();
    let sc = dir.path().join("sc.npz");
    write_raw_npz(
        &sc,
        &[
            ("times", npy_bytes(&Array1::from(t))),
            ("neurons", npy_bytes(&Array1::from(n))),
        ],
        Deflated,
    );
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let o = run(&wp, &sp, &a, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(&wc, &sc, &b, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for name in [
        "grad_w0.npy",
        "grad_w1.npy",
        "grad_input_times.npy",
        "loss.json",
    ] {
        assert_eq!(
            std::fs::read(a.join(name)).unwrap(),
            std::fs::read(b.join(name)).unwrap(),
            "{name}"
        );
    }
}

/// Issue 14 #8: a second run with fewer layers used to leave `grad_w1.npy` and
/// `spikes_2.npz` of the first run beside the new outputs.
#[test]
fn stale_outputs_of_a_deeper_run_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (wp, sp) = setup(dir.path(), &weights());
    let o = run(&wp, &sp, &out, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.join("grad_w1.npy").exists() && out.join("spikes_2.npz").exists());
    for other in ["notes.txt", "grad_w1.npy.bak", "spikes_x.npz", "grad_w.npy"] {
        std::fs::write(out.join(other), b"keep").unwrap();
    }
    // One layer: 3 inputs → 2 outputs.
    let (wp1, _) = setup(dir.path(), &[array![[9.0, 4.0, 2.0], [3.0, 8.0, 5.0]]]);
    let o = run(&wp1, &sp, &out, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for gone in ["grad_w1.npy", "spikes_2.npz"] {
        assert!(!out.join(gone).exists(), "{gone} removed");
    }
    for kept in [
        "grad_w0.npy",
        "spikes_1.npz",
        "grad_input_times.npy",
        "loss.json",
        "notes.txt",
        "grad_w1.npy.bak",
        "spikes_x.npz",
        "grad_w.npy",
    ] {
        assert!(out.join(kept).exists(), "{kept} kept");
    }
    let help = Command::new(env!("CARGO_BIN_EXE_eventprop"))
        .args(["exact", "--help"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("that this run does not write"));
}

/// Negative numbers reach validation instead of clap's `unexpected argument '-1' found`.
#[test]
fn negative_numbers_reach_validation() {
    let dir = tempfile::tempdir().unwrap();
    let (wp, sp) = setup(dir.path(), &weights());
    let out = dir.path().join("out");
    // A negative leak is valid (and 1e-3 needs the exponent form).
    let o = run(&wp, &sp, &out, &["--leak", "-1e-3", "--reset", "-0.5"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new(env!("CARGO_BIN_EXE_eventprop"))
        .args(["exact", "--t-max", "-1e-6", "--out"])
        .arg(&out)
        .arg("--weights")
        .arg(&wp)
        .arg("--input")
        .arg(&sp)
        .output()
        .unwrap();
    assert_one_line_error(&o, "t_max: expected a finite value > 0, got -0.000001");
    assert_one_line_error(
        &run(&wp, &sp, &out, &["--tau-syn", "-5e-3"]),
        "tau_syn: expected a value > 0, got -0.005",
    );
    for (flag, value, range) in [
        ("--label", "-1", ">= 0"),
        ("--max-spikes-per-neuron", "-2", ">= 1"),
        ("--max-spikes-per-neuron", "0", ">= 1"),
    ] {
        let o = run(&wp, &sp, &out, &["--loss", "first-spike-ce", flag, value]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(
            err.contains(&format!("invalid value '{value}' for '{flag} <"))
                && err.contains(&format!("expected an integer {range}")),
            "{err}"
        );
    }
}

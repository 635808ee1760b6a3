//! `eventprop exact` with recurrent weights, delays and per-neuron parameters: the files
//! it writes equal the library's gradients on the same network (bit for bit), and bad
//! extra arrays are one-line errors naming the array.

use std::fs::File;
use std::path::Path;
use std::process::Command;

use eventprop_exact::{loss, Lif, Network, NeuronParams, SolverConfig, Spike};
use ndarray::{array, Array1, Array2};
use ndarray_npy::{NpzWriter, ReadNpyExt};

#[allow(dead_code)]
use crate::common;

fn w() -> Vec<Array2<f64>> {
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

fn r0() -> Array2<f64> {
    array![
        [0.0, 0.4, -0.3, 0.2],
        [0.3, 0.0, 0.2, -0.4],
        [-0.2, 0.3, 0.0, 0.3],
        [0.4, -0.3, 0.2, 0.0]
    ]
}

fn d1() -> Array2<f64> {
    array![[1e-3, 0.0, 2e-3, 3e-3], [0.5e-3, 1.5e-3, 0.0, 2.5e-3]]
}

fn tau_mem0() -> Array1<f64> {
    array![15e-3, 20e-3, 25e-3, 5e-3]
}

fn threshold1() -> Array1<f64> {
    array![0.9, 1.1]
}

fn write_f64(path: &Path, arrays: &[(&str, ndarray::ArrayD<f64>)]) {
    let mut npz = NpzWriter::new(File::create(path).unwrap());
    for (name, a) in arrays {
        npz.add_array(*name, a).unwrap();
    }
    npz.finish().unwrap();
}

fn setup(dir: &Path, extra_w: &[(&str, ndarray::ArrayD<f64>)]) {
    let w = w();
    let mut arrays = vec![
        ("w0", w[0].clone().into_dyn()),
        ("w1", w[1].clone().into_dyn()),
    ];
    arrays.extend(extra_w.iter().cloned());
    write_f64(&dir.join("w.npz"), &arrays);
    let mut npz = NpzWriter::new(File::create(dir.join("s.npz")).unwrap());
    npz.add_array("times", &array![3e-3, 1e-3, 2e-3, 6e-3, 8e-3])
        .unwrap();
    npz.add_array("neurons", &array![1_i64, 0, 2, 0, 1])
        .unwrap();
    npz.finish().unwrap();
}

fn run(dir: &Path, params: Option<&Path>) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_eventprop"));
    c.arg("exact")
        .arg("--weights")
        .arg(dir.join("w.npz"))
        .arg("--input")
        .arg(dir.join("s.npz"))
        .args(["--t-max", "0.04"])
        .arg("--out")
        .arg(dir.join("out"));
    if let Some(p) = params {
        c.arg("--params").arg(p);
    }
    c.output().unwrap()
}

fn read1(dir: &Path, name: &str) -> Vec<f64> {
    Array1::<f64>::read_npy(File::open(dir.join("out").join(name)).unwrap())
        .unwrap()
        .to_vec()
}

fn read2(dir: &Path, name: &str) -> Array2<f64> {
    Array2::<f64>::read_npy(File::open(dir.join("out").join(name)).unwrap()).unwrap()
}

#[test]
fn recurrent_delayed_per_neuron_outputs_equal_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    setup(dir, &[("r0", r0().into_dyn()), ("d1", d1().into_dyn())]);
    let pp = dir.join("p.npz");
    write_f64(
        &pp,
        &[
            ("tau_mem0", tau_mem0().into_dyn()),
            ("threshold1", threshold1().into_dyn()),
        ],
    );
    let o = run(dir, Some(&pp));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The same network through the library.
    let lif = Lif::default();
    let mut p0 = NeuronParams::uniform(&lif, 4);
    p0.tau_mem = tau_mem0().to_vec();
    let mut p1 = NeuronParams::uniform(&lif, 2);
    p1.threshold = threshold1().to_vec();
    let net = Network::new(w(), vec![lif; 2])
        .unwrap()
        .with_recurrent(0, r0())
        .unwrap()
        .with_delays(1, d1())
        .unwrap()
        .with_neuron_params(0, p0)
        .unwrap()
        .with_neuron_params(1, p1)
        .unwrap();
    let input: Vec<Spike> = [(3e-3, 1), (1e-3, 0), (2e-3, 2), (6e-3, 0), (8e-3, 1)]
        .iter()
        .map(|&(time, neuron)| Spike { time, neuron })
        .collect();
    let cfg = SolverConfig {
        parameter_gradients: true,
        ..Default::default()
    };
    let trace = net.forward(&input, 0.04, &cfg).unwrap();
    assert!(trace.spike_counts()[1] > 0 && trace.spike_counts()[2] > 0);
    let g = trace
        .backward(&net, &loss::spike_time_sum(trace.output()).dl_dt, &cfg)
        .unwrap();
    assert_eq!(read2(dir, "grad_w0.npy"), g.weights[0]);
    assert_eq!(read2(dir, "grad_w1.npy"), g.weights[1]);
    assert_eq!(&read2(dir, "grad_r0.npy"), g.recurrent[0].as_ref().unwrap());
    assert_eq!(&read2(dir, "grad_d1.npy"), g.delays[1].as_ref().unwrap());
    assert!(!dir.join("out/grad_r1.npy").exists() && !dir.join("out/grad_d0.npy").exists());
    let gp = g.params.as_ref().unwrap();
    for (k, p) in gp.iter().enumerate() {
        for (field, v) in p.fields() {
            assert_eq!(read1(dir, &format!("grad_{field}{k}.npy")), v, "{field}{k}");
        }
    }
    assert_eq!(read1(dir, "grad_input_times.npy"), g.input_times);
    let report: serde_json::Value =
        serde_json::from_reader(File::open(dir.join("out/loss.json")).unwrap()).unwrap();
    assert_eq!(report["recurrent_layers"], serde_json::json!([0]));
    assert_eq!(report["delayed_layers"], serde_json::json!([1]));
    // A plain run into the same folder removes the recurrent/delay gradients it no longer
    // writes and keeps the always-written parameter gradients.
    setup(dir, &[]);
    assert!(run(dir, None).status.success());
    assert!(!dir.join("out/grad_r0.npy").exists() && !dir.join("out/grad_d1.npy").exists());
    assert!(dir.join("out/grad_tau_mem0.npy").exists());
}

/// One line on stderr, `error: …` with `needle`, exit code 1.
fn one_line_error(o: &std::process::Output, needle: &str) {
    let err = common::one_line_error(o, 1);
    assert!(err.starts_with("error: ") && err.contains(needle), "{err}");
}

#[test]
fn bad_recurrent_delay_and_parameter_arrays_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    setup(dir, &[("r0", Array2::<f64>::zeros((4, 3)).into_dyn())]);
    one_line_error(&run(dir, None), "r0: expected shape (4, 4), got (4, 3)");
    let mut d = d1();
    d[[1, 2]] = -1e-3;
    setup(dir, &[("d1", d.into_dyn())]);
    one_line_error(&run(dir, None), "d1[1, 2]: expected a finite delay >= 0");
    setup(dir, &[("r2", r0().into_dyn())]);
    one_line_error(&run(dir, None), "got `r2`");
    setup(dir, &[]);
    let pp = dir.join("p.npz");
    write_f64(&pp, &[("tau_syn1", array![5e-3].into_dyn())]);
    one_line_error(
        &run(dir, Some(&pp)),
        "tau_syn1: expected shape (2,) (one per neuron of layer 1), got (1,)",
    );
    write_f64(
        &pp,
        &[("threshold0", array![1.0, 1.0, -0.5, 1.0].into_dyn())],
    );
    one_line_error(
        &run(dir, Some(&pp)),
        "threshold0[2]: expected a value > leak = 0, got -0.5",
    );
    write_f64(&pp, &[("gain0", array![1.0].into_dyn())]);
    one_line_error(&run(dir, Some(&pp)), "got `gain0`");
    assert!(!dir.join("out").exists(), "nothing written on errors");
}

//! Every class of bad input returns a typed `Error` (no panic) whose message names the
//! argument and states the expected against the actual value.

use crate::common;

use eventprop_core::{
    synapse_backward, synapse_forward, Error, EventPropNeuron, HwData, LifParams, Param,
};
use ndarray::{Array2, Array3, Array4, ArrayD, IxDyn};

const DIMS: (usize, usize, usize) = (5, 2, 3);

fn neuron() -> EventPropNeuron<f64> {
    EventPropNeuron::default()
}

fn x() -> Array3<f64> {
    Array3::from_elem(DIMS, 0.5)
}

/// Asserts a `Shape` error for `arg` with exactly these expected/actual strings, and that
/// the message carries both.
#[track_caller]
fn assert_shape<T: std::fmt::Debug>(r: Result<T, Error>, arg: &str, expected: &str, actual: &str) {
    let e = r.unwrap_err();
    let msg = e.to_string();
    match &e {
        Error::Shape {
            arg: a,
            expected: ex,
            actual: ac,
        } => {
            assert_eq!(
                (*a, ex.as_str(), ac.as_str()),
                (arg, expected, actual),
                "{msg}"
            );
        }
        other => panic!("expected a Shape error for {arg}, got {other:?}"),
    }
    assert_eq!(
        msg,
        format!("{arg}: expected shape {expected}, got {actual}")
    );
}

/// Asserts a `NonFinite` error for `arg` at `index` with the given value's display.
#[track_caller]
fn assert_nonfinite<T: std::fmt::Debug>(
    r: Result<T, Error>,
    arg: &str,
    index: &[usize],
    value: &str,
) {
    let e = r.unwrap_err();
    let msg = e.to_string();
    match &e {
        Error::NonFinite {
            arg: a, index: i, ..
        } => assert_eq!((*a, i.as_slice()), (arg, index), "{msg}"),
        other => panic!("expected a NonFinite error for {arg}, got {other:?}"),
    }
    assert_eq!(
        msg,
        format!("{arg}: expected finite values, got {value} at index {index:?}")
    );
}

#[track_caller]
fn assert_nonpositive<T: std::fmt::Debug>(
    r: Result<T, Error>,
    arg: &str,
    index: usize,
    value: &str,
) {
    let e = r.unwrap_err();
    let msg = e.to_string();
    match &e {
        Error::NonPositive {
            arg: a, index: i, ..
        } => assert_eq!((*a, *i), (arg, index), "{msg}"),
        other => panic!("expected a NonPositive error for {arg}, got {other:?}"),
    }
    assert_eq!(
        msg,
        format!("{arg}: expected a value > 0, got {value} at index {index}")
    );
}

#[test]
fn input_rank_and_stacked_leading_dim() {
    let n = neuron();
    let expected = "(2, T, B, N) or (T, B, N)";
    let r2 = ArrayD::<f64>::zeros(IxDyn(&[5, 3]));
    assert_shape(n.forward_dyn(r2.view(), None), "input", expected, "(5, 3)");
    let r5 = ArrayD::<f64>::zeros(IxDyn(&[2, 5, 2, 3, 1]));
    assert_shape(
        n.forward_dyn(r5.view(), None),
        "input",
        expected,
        "(2, 5, 2, 3, 1)",
    );
    let lead3 = Array4::<f64>::zeros((3, 5, 2, 3));
    assert_shape(
        n.forward_stacked(lead3.view(), None),
        "input",
        expected,
        "(3, 5, 2, 3)",
    );
    assert_shape(
        n.forward_dyn(lead3.view().into_dyn(), None),
        "input",
        expected,
        "(3, 5, 2, 3)",
    );
}

#[test]
fn per_neuron_parameter_of_wrong_length() {
    let x = x();
    for name in ["leak", "reset", "threshold", "tau_syn", "tau_mem"] {
        let mut n = neuron();
        let bad = Param::PerNeuron(vec![1e-5; 2]);
        match name {
            "leak" => n.params.leak = bad,
            "reset" => n.params.reset = bad,
            "threshold" => n.params.threshold = bad,
            "tau_syn" => n.params.tau_syn = bad,
            _ => n.params.tau_mem = bad,
        }
        // N = 3 neurons, a vector of 2 values.
        assert_shape(
            n.forward(x.view(), None),
            name,
            "a scalar or (N,) = (3,)",
            "(2,)",
        );
    }
}

#[test]
fn non_finite_input_parameters_hw_data_and_gradients() {
    let n = neuron();
    let mut bad = x();
    bad[[1, 0, 2]] = f64::NAN;
    assert_nonfinite(n.forward(bad.view(), None), "input", &[1, 0, 2], "NaN");
    bad[[1, 0, 2]] = f64::INFINITY;
    assert_nonfinite(n.forward(bad.view(), None), "input", &[1, 0, 2], "inf");

    let mut p = neuron();
    p.params.threshold = Param::Scalar(f64::INFINITY);
    assert_nonfinite(p.forward(x().view(), None), "threshold", &[0], "inf");
    let mut p = neuron();
    p.params.tau_mem = Param::PerNeuron(vec![1e-5, 1e-5, f64::NAN]);
    assert_nonfinite(p.forward(x().view(), None), "tau_mem", &[2], "NaN");
    let p = EventPropNeuron::<f64> {
        dt: f64::NEG_INFINITY,
        ..neuron()
    };
    assert_nonfinite(p.forward(x().view(), None), "dt", &[0], "-inf");

    let good = Array3::<f64>::zeros(DIMS);
    let mut nan = Array3::<f64>::zeros(DIMS);
    nan[[4, 1, 0]] = f64::NAN;
    let hw = |s, m, c| HwData {
        spikes: s,
        membrane: m,
        current: c,
    };
    assert_nonfinite(
        n.forward(x().view(), Some(hw(nan.view(), good.view(), None))),
        "hw_spikes",
        &[4, 1, 0],
        "NaN",
    );
    assert_nonfinite(
        n.forward(x().view(), Some(hw(good.view(), nan.view(), None))),
        "hw_membrane",
        &[4, 1, 0],
        "NaN",
    );
    assert_nonfinite(
        n.forward(
            x().view(),
            Some(hw(good.view(), good.view(), Some(nan.view()))),
        ),
        "hw_current",
        &[4, 1, 0],
        "NaN",
    );

    let ctx = n.forward(x().view(), None).unwrap();
    assert_nonfinite(
        ctx.backward(nan.view(), None, None),
        "grad_spikes",
        &[4, 1, 0],
        "NaN",
    );

    // Synapse: weight, input and the neuron's gradient.
    let xs = Array3::<f64>::zeros((5, 2, 4));
    let w = Array2::<f64>::zeros((3, 4));
    let mut wn = w.clone();
    wn[[2, 1]] = f64::NAN;
    assert_nonfinite(
        synapse_forward(xs.view(), wn.view()),
        "weight",
        &[2, 1],
        "NaN",
    );
    let mut xn = xs.clone();
    xn[[0, 1, 3]] = f64::INFINITY;
    assert_nonfinite(
        synapse_forward(xn.view(), w.view()),
        "input",
        &[0, 1, 3],
        "inf",
    );
    let g = Array4::<f64>::zeros((2, 5, 2, 3));
    assert_nonfinite(
        synapse_backward(xn.view(), w.view(), g.view(), true),
        "input",
        &[0, 1, 3],
        "inf",
    );
    assert_nonfinite(
        synapse_backward(xs.view(), wn.view(), g.view(), true),
        "weight",
        &[2, 1],
        "NaN",
    );
    // The weight gradient reads g[0], the input gradient g[1]; both are checked.
    let mut g0 = g.clone();
    g0[[0, 3, 1, 2]] = f64::NAN;
    assert_nonfinite(
        synapse_backward(xs.view(), w.view(), g0.view(), false),
        "grad",
        &[3, 1, 2],
        "NaN",
    );
    let mut g1 = g.clone();
    g1[[1, 3, 1, 2]] = f64::NAN;
    assert_nonfinite(
        synapse_backward(xs.view(), w.view(), g1.view(), true),
        "grad",
        &[3, 1, 2],
        "NaN",
    );
}

#[test]
fn non_positive_time_constants_and_dt() {
    let x = x();
    let mut n = neuron();
    n.params.tau_syn = Param::Scalar(0.0);
    assert_nonpositive(n.forward(x.view(), None), "tau_syn", 0, "0");
    let mut n = neuron();
    n.params.tau_mem = Param::PerNeuron(vec![1e-5, -1e-5, 1e-5]);
    assert_nonpositive(n.forward(x.view(), None), "tau_mem", 1, "-0.00001");
    for (dt, shown) in [(0.0, "0"), (-1e-6, "-0.000001")] {
        let n = EventPropNeuron::<f64> { dt, ..neuron() };
        assert_nonpositive(n.forward(x.view(), None), "dt", 0, shown);
    }
    // Validation happens at the API, also for hardware data.
    let n = EventPropNeuron::<f64> {
        dt: 0.0,
        ..neuron()
    };
    let z = Array3::<f64>::zeros(DIMS);
    let hw = HwData {
        spikes: z.view(),
        membrane: z.view(),
        current: None,
    };
    assert_nonpositive(n.forward(x.view(), Some(hw)), "dt", 0, "0");
}

#[test]
fn hw_data_shape_mismatch() {
    let n = neuron();
    let good = Array3::<f64>::zeros(DIMS);
    let bad = Array3::<f64>::zeros((5, 2, 4));
    let (e, a) = ("(5, 2, 3)", "(5, 2, 4)");
    let hw = |s, m, c| {
        Some(HwData {
            spikes: s,
            membrane: m,
            current: c,
        })
    };
    assert_shape(
        n.forward(x().view(), hw(bad.view(), good.view(), None)),
        "hw_spikes",
        e,
        a,
    );
    assert_shape(
        n.forward(x().view(), hw(good.view(), bad.view(), None)),
        "hw_membrane",
        e,
        a,
    );
    assert_shape(
        n.forward(x().view(), hw(good.view(), good.view(), Some(bad.view()))),
        "hw_current",
        e,
        a,
    );
}

#[test]
fn grad_shape_mismatch() {
    let ctx = neuron().forward(x().view(), None).unwrap();
    let good = Array3::<f64>::zeros(DIMS);
    let bad = Array3::<f64>::zeros((4, 2, 3));
    let (e, a) = ("(5, 2, 3)", "(4, 2, 3)");
    assert_shape(ctx.backward(bad.view(), None, None), "grad_spikes", e, a);
    assert_shape(
        ctx.backward(good.view(), Some(bad.view()), None),
        "grad_membrane",
        e,
        a,
    );
    assert_shape(
        ctx.backward(good.view(), None, Some(bad.view())),
        "grad_current",
        e,
        a,
    );

    let xs = Array3::<f64>::zeros((5, 2, 4));
    let w = Array2::<f64>::zeros((3, 4));
    let g = Array4::<f64>::zeros((2, 5, 2, 2));
    assert_shape(
        synapse_backward(xs.view(), w.view(), g.view(), true),
        "grad",
        "(2, 5, 2, 3)",
        "(2, 5, 2, 2)",
    );
    let g = Array4::<f64>::zeros((3, 5, 2, 3));
    assert_shape(
        synapse_backward(xs.view(), w.view(), g.view(), true),
        "grad",
        "(2, 5, 2, 3)",
        "(3, 5, 2, 3)",
    );
}

#[test]
fn weight_shape_mismatch() {
    let xs = Array3::<f64>::zeros((5, 2, 4));
    let w = Array2::<f64>::zeros((3, 5));
    let expected = "(N_out, N_in) with N_in = 4";
    assert_shape(
        synapse_forward(xs.view(), w.view()),
        "weight",
        expected,
        "(3, 5)",
    );
    let g = Array4::<f64>::zeros((2, 5, 2, 3));
    assert_shape(
        synapse_backward(xs.view(), w.view(), g.view(), true),
        "weight",
        expected,
        "(3, 5)",
    );
}

/// Non-standard layouts (a permuted view) are valid input and give the same result.
#[test]
fn non_standard_layouts_are_accepted() {
    let mut rng = common::rng(31);
    let x = common::graded3(&mut rng, (20, 3, 4), 0.4, 1.5);
    let n = neuron();
    let base = n.forward(x.view(), None).unwrap().into_output();
    let permuted = x
        .view()
        .permuted_axes([2, 1, 0])
        .as_standard_layout()
        .into_owned(); // (N, B, T)
    let back = permuted.view().permuted_axes([2, 1, 0]); // (T, B, N), not standard
    assert!(!back.is_standard_layout());
    assert_eq!(n.forward(back, None).unwrap().into_output(), base);

    let w = common::uniform2(&mut rng, (5, 4), -1.0, 1.0);
    let wt = w.t().to_owned();
    let y = synapse_forward(x.view(), w.view()).unwrap();
    assert_eq!(synapse_forward(back, wt.t()).unwrap(), y);
}

/// Empty extents (T, B, N or N_out = 0) return empty results instead of panicking.
#[test]
fn empty_extents_do_not_panic() {
    let n = neuron();
    for dims in [(0, 2, 3), (5, 0, 3), (5, 2, 0), (1, 1, 1)] {
        let x = Array3::<f64>::zeros(dims);
        let ctx = n.forward(x.view(), None).unwrap();
        assert_eq!(ctx.output().spikes.dim(), dims);
        let g = ctx.backward(x.view(), None, None).unwrap();
        assert_eq!(g.grad_input.dim(), (2, dims.0, dims.1, dims.2));
    }
    for (t, b, n_in, n_out) in [(0, 2, 3, 4), (5, 0, 3, 4), (5, 2, 3, 0)] {
        check_empty_synapse(t, b, n_in, n_out);
    }
}

fn check_empty_synapse(t: usize, b: usize, n_in: usize, n_out: usize) {
    let x = Array3::<f64>::zeros((t, b, n_in));
    let w = Array2::<f64>::zeros((n_out, n_in));
    let y = synapse_forward(x.view(), w.view()).unwrap();
    assert_eq!(
        y.dim(),
        (t, b, n_out),
        "forward with (T, B, N_in, N_out) = {:?}",
        (t, b, n_in, n_out)
    );
    let g = Array4::<f64>::zeros((2, t, b, n_out));
    let gr = synapse_backward(x.view(), w.view(), g.view(), true).unwrap();
    assert_eq!(gr.weight.dim(), (n_out, n_in));
    assert_eq!(gr.input.unwrap().dim(), (t, b, n_in));
}

/// Regression: with `N_in = 0` (`x` `(5, 2, 0)`, `W` `(4, 0)`) the non-zero collection used
/// to report 0 rows instead of `T * B = 10`, so `synapse_forward` panicked on a reshape
/// (fixed in src). Expected: `y = 0` of shape `(5, 2, 4)`, weight gradient `(4, 0)`, input
/// gradient `(5, 2, 0)`.
#[test]
fn empty_input_layer_does_not_panic() {
    check_empty_synapse(5, 2, 0, 4);
}

/// `LifParams::default` is valid: `leak = reset = 0`, `threshold = 1`, `tau_syn = 5 µs`,
/// `tau_mem = 10 µs` (hxtorch defaults, documented in `params.rs`).
#[test]
fn defaults_resolve() {
    let c = LifParams::<f64>::default().resolve(2, 1e-6).unwrap();
    assert_eq!(c.k_syn, vec![1e-6 / 5e-6; 2]);
    assert_eq!(c.decay_mem, vec![1.0 - 1e-6 / 10e-6; 2]);
}

//! Regressions: no panic from the public API on user data, and finite arguments whose
//! computed state overflows the float type are reported as [`Error::Overflow`] instead of
//! returning infinite currents.

use eventprop_core::synapse::SparseRows;
use eventprop_core::workload::{Size, Workload};
use eventprop_core::{Error, EventPropNeuron, HwData, LifParams, Real, SynapseInput};
use ndarray::{Array2, Array3};

#[test]
fn sparse_path_rejects_a_wrong_weight_with_a_typed_error() {
    // (T * B, N_in) = (4, 3), one non-zero per row.
    let xs: Vec<f64> = (0..12)
        .map(|k| if k % 4 == 0 { 1.0 } else { 0.0 })
        .collect();
    let sparse = SparseRows::new(&xs, 3).unwrap();
    let w = Array2::<f64>::ones((2, 4));
    let e = sparse.forward(w.view()).unwrap_err();
    assert_eq!(
        e,
        Error::Shape {
            arg: "weight",
            expected: "(N_out, N_in) with N_in = 3".into(),
            actual: "(2, 4)".into(),
        }
    );
    assert_eq!(
        e.to_string(),
        "weight: expected shape (N_out, N_in) with N_in = 3, got (2, 4)"
    );
    let mut w = Array2::<f64>::ones((2, 3));
    w[[1, 2]] = f64::NAN;
    assert!(matches!(
        sparse.forward(w.view()),
        Err(Error::NonFinite { arg: "weight", .. })
    ));
    // The checked forward agrees with the (unchecked-for-NaN) legacy function.
    let w = Array2::from_shape_fn((2, 3), |(o, i)| (o * 3 + i) as f64);
    let y = sparse.forward(w.view()).unwrap();
    assert_eq!(
        y,
        eventprop_core::synapse::sparse_forward(&sparse, &w.view())
    );
    assert_eq!(y.dim(), (4, 2));
}

#[test]
fn sparse_rows_reject_a_ragged_buffer() {
    let e = SparseRows::new(&[1.0f32; 7], 3).unwrap_err();
    assert_eq!(
        e.to_string(),
        "input: expected shape a whole number of rows of N_in = 3 values, got 7 values"
    );
    assert_eq!(SparseRows::<f32>::new(&[], 0).unwrap().rows(), 0);
}

#[test]
fn workload_without_inputs_and_huge_sizes_do_not_panic() {
    let size = Size {
        name: "empty-input",
        steps: 6,
        batch: 2,
        inputs: 0,
        neurons: 3,
    };
    let w = Workload::<f64>::new(size, 1);
    assert_eq!(w.weight.dim(), (3, 0));
    let pass = w.pass(&w.dense()).unwrap();
    assert_eq!(pass.grad_weight.dim(), (3, 0));
    let mut layer = w.fused_layer().unwrap();
    let mut gw = ndarray::Array2::zeros((3, 0));
    let (rate, _) = w.pass_fused(&mut layer, &mut gw).unwrap();
    assert_eq!(rate, 0.0);
    let huge = Size {
        name: "huge",
        steps: usize::MAX,
        batch: 4,
        inputs: 1,
        neurons: 4,
    };
    assert_eq!(huge.neuron_steps(), u64::MAX);
}

/// `T` steps of a constant input `value` into `N = 2` neurons.
fn constant<F: Real>(value: F) -> Array3<F> {
    Array3::from_elem((20, 1, 2), value)
}

#[track_caller]
fn assert_overflow<T: std::fmt::Debug>(
    r: Result<T, Error>,
    arg: &str,
    quantity: &str,
    dtype: &str,
) {
    let e = r.unwrap_err();
    let msg = e.to_string();
    match &e {
        Error::Overflow {
            arg: a,
            quantity: q,
            dtype: d,
            value,
            ..
        } => {
            assert_eq!((*a, *q, *d), (arg, quantity, dtype), "{msg}");
            assert!(!value.is_finite(), "{msg}");
        }
        other => panic!("expected an Overflow error, got {other:?}"),
    }
    assert!(
        msg.starts_with(&format!(
            "{arg}: finite values overflow {dtype} in the {quantity}"
        )),
        "{msg}"
    );
}

#[test]
fn forward_reports_overflow_of_finite_inputs() {
    // i[t+1] = 0.8 i[t] + x: 1e308 (f64) and 1e38 (f32) overflow within a few steps.
    let n64 = EventPropNeuron::<f64>::default();
    assert_overflow(
        n64.forward(constant(1e308).view(), None),
        "input",
        "synaptic current",
        "f64",
    );
    let n32 = EventPropNeuron::<f32>::default();
    let r = n32.forward(constant(1e38f32).view(), None);
    // i[1..] = 1e38, 1.8e38, 2.44e38, 2.95e38, 3.36e38, then 3.69e38 > f32::MAX.
    match &r {
        Err(Error::Overflow { index, .. }) => assert_eq!(index, &vec![6, 0, 0]),
        other => panic!("{other:?}"),
    }
    assert_overflow(r, "input", "synaptic current", "f32");
    // Negative inputs overflow to -inf and then NaN in the membrane.
    assert_overflow(
        n64.forward(constant(-1e308).view(), None),
        "input",
        "synaptic current",
        "f64",
    );
    // Large but representable inputs stay fine.
    assert!(n32.forward(constant(1e30f32).view(), None).is_ok());
    // The hardware path recomputes the current the same way.
    let z = Array3::<f64>::zeros((20, 1, 2));
    let hw = HwData {
        spikes: z.view(),
        membrane: z.view(),
        current: None,
    };
    assert_overflow(
        n64.forward(constant(1e308).view(), Some(hw)),
        "input",
        "synaptic current",
        "f64",
    );
}

#[test]
fn backward_reports_overflow_of_the_adjoint() {
    // Recorded spikes at every step with i = 0: dv_m = leak - threshold = -1 and
    // dv_p = leak - reset = 1e300, so each spike multiplies lambda_v by -1e300.
    let neuron = EventPropNeuron::<f64> {
        params: LifParams::scalar(0.0, -1e300, 1.0, 5e-6, 1e-5),
        ..Default::default()
    };
    let x = Array3::<f64>::zeros((6, 1, 1));
    let z = Array3::<f64>::ones((6, 1, 1));
    let hw = HwData {
        spikes: z.view(),
        membrane: x.view(),
        current: None,
    };
    let ctx = neuron.forward(x.view(), Some(hw)).unwrap();
    assert_overflow(
        ctx.backward(z.view(), None, None),
        "grad_spikes",
        "adjoint (grad_input)",
        "f64",
    );
    // A moderate reset leaves the same gradient finite.
    let neuron = EventPropNeuron::<f64> {
        params: LifParams::scalar(0.0, -2.0, 1.0, 5e-6, 1e-5),
        ..Default::default()
    };
    let hw = HwData {
        spikes: z.view(),
        membrane: x.view(),
        current: None,
    };
    let ctx = neuron.forward(x.view(), Some(hw)).unwrap();
    assert!(ctx.backward(z.view(), None, None).is_ok());
}

#[test]
fn synapse_input_rejects_more_columns_than_u32() {
    // No rows, so no memory: only the column count is out of range.
    let x = ndarray::ArrayView3::<f32>::from_shape((0, 1, u32::MAX as usize + 1), &[]).unwrap();
    assert!(matches!(
        SynapseInput::new(x),
        Err(Error::Shape { arg: "input", .. })
    ));
}

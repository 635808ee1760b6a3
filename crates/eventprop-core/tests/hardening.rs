//! Regressions: no panic from the public API on user data.

use eventprop_core::synapse::SparseRows;
use eventprop_core::workload::{Size, Workload};
use eventprop_core::{Error, SynapseInput};
use ndarray::Array2;

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
    let pass = w.pass().unwrap();
    assert_eq!(pass.grad_weight.dim(), (3, 0));
    let huge = Size {
        name: "huge",
        steps: usize::MAX,
        batch: 4,
        inputs: 1,
        neurons: 4,
    };
    assert_eq!(huge.neuron_steps(), u64::MAX);
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

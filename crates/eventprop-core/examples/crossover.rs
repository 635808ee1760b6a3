//! Measures the synapse forward's event-driven path (including collecting the non-zeros)
//! against the dense GEMM at several input densities; the crossover sets
//! `eventprop_core::synapse::DENSE_ABOVE` (table in DESIGN.md).
//!
//! `RAYON_NUM_THREADS=1 cargo run --release -p eventprop-core --example crossover`

use std::time::Instant;

use eventprop_core::synapse::{sparse_forward, SparseRows};
use ndarray::{linalg::general_mat_mul, Array2};
use rand::{Rng, SeedableRng};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let (rows, n_in, n_out) = (12800usize, 700usize, 256usize);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let w = Array2::<f32>::from_shape_simple_fn((n_out, n_in), || rng.random::<f32>());
    for p in [0.02, 0.05, 0.1, 0.15, 0.2, 0.3] {
        let x = Array2::<f32>::from_shape_simple_fn((rows, n_in), || {
            if rng.random::<f64>() < p {
                1.0
            } else {
                0.0
            }
        });
        let (mut sparse_ms, mut dense_ms) = (Vec::new(), Vec::new());
        for _ in 0..5 {
            let start = Instant::now();
            let nz = SparseRows::from_dense(x.as_slice().expect("owned"), n_in);
            let y_sparse = sparse_forward(&nz, &w.view());
            sparse_ms.push(start.elapsed().as_secs_f64() * 1e3);
            let start = Instant::now();
            let mut y_dense = Array2::<f32>::zeros((rows, n_out));
            general_mat_mul(1.0, &x, &w.t(), 0.0, &mut y_dense);
            dense_ms.push(start.elapsed().as_secs_f64() * 1e3);
            // Both paths compute the same product.
            let (a, b) = (y_sparse.sum(), y_dense.sum());
            assert!(
                (a - b).abs() <= 1e-3 * b.abs(),
                "paths disagree: {a} vs {b}"
            );
        }
        println!(
            "density {p:.2}: event-driven {:.1} ms, dense {:.1} ms",
            median(sparse_ms),
            median(dense_ms)
        );
    }
}

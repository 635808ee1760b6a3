//! The companion synapse (docs/spec.md §3) against central differences, a naive triple loop, and
//! across its event-driven and dense paths and rayon thread counts.

use crate::common;

use eventprop_core::synapse::{self, SparseRows, DENSE_ABOVE};
use eventprop_core::{synapse_backward, synapse_forward, synapse_forward_stacked, SynapseInput};
use ndarray::{Array2, Array3, Array4, Axis};

/// `(x, W, g)` with spike density `p`: `x` `(T, B, N_in)`, `W` `(N_out, N_in)`,
/// `g` `(2, T, B, N_out)`.
fn problem(seed: u64, p: f64) -> (Array3<f64>, Array2<f64>, Array4<f64>) {
    let mut rng = common::rng(seed);
    let (t_len, b_len, n_in, n_out) = (12, 5, 40, 33);
    let x = common::bernoulli3(&mut rng, (t_len, b_len, n_in), p);
    let w = common::uniform2(&mut rng, (n_out, n_in), -1.0, 1.0);
    let g0 = common::uniform3(&mut rng, (t_len, b_len, n_out), -1.0, 1.0);
    let g1 = common::uniform3(&mut rng, (t_len, b_len, n_out), -1.0, 1.0);
    let g = ndarray::stack(Axis(0), &[g0.view(), g1.view()]).unwrap();
    (x, w, g)
}

fn density(x: &Array3<f64>) -> f64 {
    x.iter().filter(|&&v| v != 0.0).count() as f64 / x.len() as f64
}

/// Linear test losses whose gradients are the synapse backward's outputs:
/// `L0(x, W) = <g[0], x W^T>` has `dL0/dW = Σ g[0] ⊗ x` (the weight gradient), and
/// `L1(x, W) = <g[1], x W^T>` has `dL1/dx = g[1] W` (the input gradient; the synapse routes
/// the neuron's second gradient half to the previous layer, docs/spec.md §3).
fn loss(x: &Array3<f64>, w: &Array2<f64>, g: &Array3<f64>) -> f64 {
    let y = synapse_forward(x.view(), w.view()).unwrap();
    (&y * g).sum()
}

/// Central differences with step `h = 1e-3`: the losses are linear, so the difference
/// quotient is exact up to rounding (~1e-13 relative here).
#[test]
fn backward_matches_central_differences_sparse_and_dense() {
    for (seed, p) in [(1, 0.05), (2, 0.5)] {
        let (x, w, g) = problem(seed, p);
        let d = density(&x);
        assert!(
            (p < 0.1) == (d < DENSE_ABOVE),
            "density {d} picks the intended path"
        );
        let grad = synapse_backward(x.view(), w.view(), g.view(), true).unwrap();
        let (g0, g1) = (
            g.index_axis(Axis(0), 0).to_owned(),
            g.index_axis(Axis(0), 1).to_owned(),
        );
        let h = 1e-3;
        for o in 0..w.nrows() {
            for j in 0..w.ncols() {
                let (mut wp, mut wm) = (w.clone(), w.clone());
                wp[[o, j]] += h;
                wm[[o, j]] -= h;
                let fd = (loss(&x, &wp, &g0) - loss(&x, &wm, &g0)) / (2.0 * h);
                let got = grad.weight[[o, j]];
                assert!(
                    (got - fd).abs() <= 1e-9 * (1.0 + fd.abs()),
                    "dW[{o},{j}]: {got} vs {fd}"
                );
            }
        }
        let gx = grad.input.as_ref().unwrap();
        // Perturbing x also changes the density only marginally; the path may switch
        // for a zero entry, which must not matter either (both paths are exact here).
        for (idx, &got) in gx.indexed_iter().step_by(7) {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[idx] += h;
            xm[idx] -= h;
            let fd = (loss(&xp, &w, &g1) - loss(&xm, &w, &g1)) / (2.0 * h);
            assert!(
                (got - fd).abs() <= 1e-9 * (1.0 + fd.abs()),
                "dx{idx:?}: {got} vs {fd}"
            );
        }
    }
}

#[test]
fn both_paths_agree_with_naive_loops() {
    for (seed, p) in [(3, 0.05), (4, 0.5)] {
        let (x, w, g) = problem(seed, p);
        let y = synapse_forward(x.view(), w.view()).unwrap();
        let y_ref = common::naive_synapse_forward(x.view(), w.view());
        assert!(common::max_rel_err(&y.view(), &y_ref.view(), 1.0) < 1e-13);
        let stacked = synapse_forward_stacked(x.view(), w.view()).unwrap();
        assert_eq!(stacked.index_axis(Axis(0), 0), y);
        assert!(stacked.index_axis(Axis(0), 1).iter().all(|&v| v == 0.0));
        let grad = synapse_backward(x.view(), w.view(), g.view(), true).unwrap();
        let (gx_ref, gw_ref) = common::naive_synapse_backward(x.view(), w.view(), g.view());
        assert!(common::max_rel_err(&grad.weight.view(), &gw_ref.view(), 1.0) < 1e-13);
        assert!(common::max_rel_err(&grad.input.unwrap().view(), &gx_ref.view(), 1.0) < 1e-13);
        assert!(synapse_backward(x.view(), w.view(), g.view(), false)
            .unwrap()
            .input
            .is_none());
    }
}

/// The same dense input through both paths. Forward: the event-driven `sparse_forward`
/// against `synapse_forward` (dense path at density 0.5). Weight gradient: the dense path
/// on `x` against the sum of event-driven gradients of a split `x = x_1 + … + x_m` into
/// parts of density < `DENSE_ABOVE` (the gradient is linear in `x`).
#[test]
fn event_driven_and_dense_paths_agree_on_the_same_input() {
    let (x, w, g) = problem(5, 0.5);
    let xs = x.as_slice().unwrap();
    let n_in = x.dim().2;
    let sparse = SparseRows::from_dense(xs, n_in);
    assert!(sparse.density() > DENSE_ABOVE);
    let y_dense = synapse_forward(x.view(), w.view()).unwrap();
    let y_event = synapse::sparse_forward(&sparse, &w.view());
    let y_event = y_event.into_shape_with_order(y_dense.dim()).unwrap();
    assert!(common::max_rel_err(&y_event.view(), &y_dense.view(), 1.0) < 1e-13);

    let g0 = g.index_axis(Axis(0), 0);
    let gw_dense = synapse::weight_grad(&sparse, xs, g0).unwrap();
    let parts = 6;
    let mut gw_sum = Array2::<f64>::zeros(gw_dense.dim());
    for part in 0..parts {
        let mut xp = x.clone();
        let mut k = 0usize;
        xp.iter_mut().for_each(|v| {
            if *v != 0.0 {
                if k % parts != part {
                    *v = 0.0;
                }
                k += 1;
            }
        });
        let sp = SparseRows::from_dense(xp.as_slice().unwrap(), n_in);
        assert!(
            sp.density() < DENSE_ABOVE,
            "part {part} uses the event-driven path"
        );
        gw_sum += &synapse::weight_grad(&sp, xp.as_slice().unwrap(), g0).unwrap();
    }
    assert!(common::max_rel_err(&gw_sum.view(), &gw_dense.view(), 1.0) < 1e-13);
}

/// Same input twice and under rayon pools of 1 and 2 threads: bit-identical outputs and
/// gradients on both paths.
#[test]
fn synapse_is_deterministic_across_runs_and_thread_counts() {
    for (seed, p) in [(6, 0.05), (7, 0.5)] {
        let (x, w, g) = problem(seed, p);
        let run = || {
            let y = synapse_forward(x.view(), w.view()).unwrap();
            let gr = synapse_backward(x.view(), w.view(), g.view(), true).unwrap();
            (y, gr.weight, gr.input.unwrap())
        };
        let base = run();
        let again = run();
        assert!(common::bits_equal(&base.0, &again.0) && common::bits_equal(&base.1, &again.1));
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let (y, gw, gx) = pool.install(run);
            assert!(
                common::bits_equal(&y, &base.0),
                "p = {p}, {threads} threads: forward"
            );
            assert!(
                common::bits_equal(&gw, &base.1),
                "p = {p}, {threads} threads: weight grad"
            );
            assert!(
                common::bits_equal(&gx, &base.2),
                "p = {p}, {threads} threads: input grad"
            );
        }
    }
}

/// The cached `SynapseInput` (non-zeros collected once, shared by forward and weight
/// gradient) gives bit-identically what `synapse_forward`/`synapse_backward` give, on both
/// paths; its weight gradient rejects a gradient of the wrong `(T, B)`.
#[test]
fn cached_synapse_input_matches_free_functions() {
    for (seed, p) in [(8, 0.05), (9, 0.5)] {
        let (x, w, g) = problem(seed, p);
        let cached = SynapseInput::new(x.view()).unwrap();
        assert_eq!(cached.view(), x.view());
        assert!(common::bits_equal(
            &cached.forward(w.view()).unwrap(),
            &synapse_forward(x.view(), w.view()).unwrap()
        ));
        let g0 = g.index_axis(Axis(0), 0);
        let free = synapse_backward(x.view(), w.view(), g.view(), false)
            .unwrap()
            .weight;
        assert!(common::bits_equal(&cached.weight_grad(g0).unwrap(), &free));
        let bad = Array3::<f64>::zeros((3, 5, 33));
        assert!(matches!(
            cached.weight_grad(bad.view()),
            Err(eventprop_core::Error::Shape { arg: "grad", .. })
        ));
    }
}

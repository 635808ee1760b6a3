//! The fused event-driven layer (`eventprop_core::fused`) against the seed function
//! (`EventPropNeuron` + the synapse functions) on the same discretization.
//!
//! Provenance of every expected value: the seed-function path computed in the same test
//! (synapse forward → neuron forward → neuron backward → synapse backward), itself checked
//! against docs/spec.md §1–§3 in `seed_faithful.rs`. The fused layer runs the same update order, so
//! spikes must be identical and the gradients equal up to summation order: ≤ 1e-12
//! relative in f64.

use crate::common;

use eventprop_core::fused::{EventBatch, EventRow, FusedLif};
use eventprop_core::{
    synapse_backward, synapse_forward, Discretization, Error, EventPropNeuron, GuardStats,
    LifParams, Param,
};
use ndarray::{Array2, Array3};
use rand::Rng;

/// Seed-function path: spikes, weight gradient, input gradient `g1 W` (dense) and guards.
fn seed_path(
    x: &Array3<f64>,
    w: &Array2<f64>,
    params: &LifParams<f64>,
    disc: Discretization,
    grad_spikes: &Array3<f64>,
) -> (Array3<f64>, Array2<f64>, Array3<f64>, GuardStats) {
    let y = synapse_forward(x.view(), w.view()).unwrap();
    let neuron = EventPropNeuron {
        params: params.clone(),
        dt: 1e-6,
        discretization: disc,
    };
    let ctx = neuron.forward(y.view(), None).unwrap();
    let g = ctx.backward(grad_spikes.view(), None, None).unwrap();
    let s = synapse_backward(x.view(), w.view(), g.grad_input.view(), true).unwrap();
    (
        ctx.output().spikes.clone(),
        s.weight,
        s.input.unwrap(),
        g.stats,
    )
}

fn rel_max(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

/// A random layer: per-neuron parameters, graded input events, strong enough weights.
fn random_case(
    seed: u64,
    (t, b, n_in, n): (usize, usize, usize, usize),
) -> (Array3<f64>, Array2<f64>, LifParams<f64>, Array3<f64>) {
    let mut rng = common::rng(seed);
    let x = common::graded3(&mut rng, (t, b, n_in), 0.15, 2.0);
    let w = common::uniform2(&mut rng, (n, n_in), -0.5, 2.5);
    let params = LifParams {
        leak: Param::PerNeuron((0..n).map(|_| rng.random_range(-0.1..0.1)).collect()),
        reset: Param::PerNeuron((0..n).map(|_| rng.random_range(-0.3..0.0)).collect()),
        threshold: Param::PerNeuron((0..n).map(|_| rng.random_range(0.8..1.2)).collect()),
        tau_syn: Param::PerNeuron((0..n).map(|_| rng.random_range(3e-6..8e-6)).collect()),
        tau_mem: Param::PerNeuron((0..n).map(|_| rng.random_range(6e-6..2e-5)).collect()),
    };
    let g = common::uniform3(&mut rng, (t, b, n), -1.0, 1.0);
    (x, w, params, g)
}

#[test]
fn fused_layer_equals_the_seed_function_in_f64() {
    for disc in [Discretization::Seed, Discretization::Corrected] {
        for (seed, dims) in [
            (1, (40, 3, 6, 5)),
            (2, (120, 9, 20, 17)),
            (3, (7, 1, 1, 1)),
            (4, (300, 17, 11, 33)),
        ] {
            let (x, w, params, g) = random_case(seed, dims);
            let (z, gw, gx, stats) = seed_path(&x, &w, &params, disc, &g);
            // Case 3 is too short to spike: both paths must give zero gradients.
            assert_eq!(z.sum() > 0.0, seed != 3, "case {seed}: spikes");
            let input = EventBatch::from_dense(x.view()).unwrap();
            let mut layer = FusedLif::new(&params, dims.3, 1e-6, disc).unwrap();
            let spikes = layer.forward(&input, w.view()).unwrap().clone();
            assert_eq!(spikes.to_dense(), z, "case {seed} {disc}: spikes differ");
            let gs = spikes.gather(g.view()).unwrap();
            let mut fgw = Array2::zeros(w.dim());
            let mut fgx = Vec::new();
            let fstats = layer
                .backward(&input, &gs, &mut fgw, Some(&mut fgx))
                .unwrap();
            let e = rel_max(fgw.as_slice().unwrap(), gw.as_slice().unwrap());
            assert!(
                e <= 1e-12,
                "case {seed} {disc}: weight gradient off by {e:e}"
            );
            // The seed's `g1 W` at the input events (where the layer below spikes).
            let want: Vec<f64> = input.gather(gx.view()).unwrap().concat();
            let e = rel_max(&fgx.concat(), &want);
            assert!(
                e <= 1e-12,
                "case {seed} {disc}: input gradient off by {e:e}"
            );
            assert_eq!(fstats.guarded_spikes, stats.guarded_spikes);
        }
    }
}

/// A spike whose jump denominator is exactly zero: the seed drops its contribution and
/// counts it; the fused layer must do the same and agree on the gradient.
#[test]
fn guarded_spikes_are_counted_like_the_seed() {
    // One neuron, tau_syn = tau_mem = 2 µs (k = 0.5). x[0] = 1 → i[1] = 1, v[1] = 0.5;
    // x[1] = 2 → i[2] = 0.5 + 2 = 2.5, u = 0.5 + 0.5 (2.5 - 0.5) = 1.5 > 1: z[2] = 1 with
    // the seed's i* = i[1] = 1, so dv_m = 0 - 1 + 1 = 0 exactly.
    let mut x = Array3::<f64>::zeros((6, 1, 1));
    x[[0, 0, 0]] = 1.0;
    x[[1, 0, 0]] = 2.0;
    let w = Array2::from_elem((1, 1), 1.0);
    let params = LifParams::scalar(0.0, 0.0, 1.0, 2e-6, 2e-6);
    let g = Array3::from_elem((6, 1, 1), 0.5);
    let (z, gw, _, stats) = seed_path(&x, &w, &params, Discretization::Seed, &g);
    assert_eq!(z[[2, 0, 0]], 1.0);
    assert_eq!(stats.guarded_spikes, 1);
    let input = EventBatch::from_dense(x.view()).unwrap();
    let mut layer = FusedLif::new(&params, 1, 1e-6 * 1.0, Discretization::Seed).unwrap();
    let gs = layer
        .forward(&input, w.view())
        .unwrap()
        .gather(g.view())
        .unwrap();
    let mut fgw = Array2::zeros((1, 1));
    let fstats = layer.backward(&input, &gs, &mut fgw, None).unwrap();
    assert_eq!(fstats.guarded_spikes, 1);
    assert_eq!(fstats.nonfinite_out, 1);
    assert_eq!(fstats.nonfinite_jump, 1);
    assert!((fgw[[0, 0]] - gw[[0, 0]]).abs() <= 1e-12 * gw[[0, 0]].abs().max(1e-300));
}

/// Same result, bit for bit, with 1 and 3 threads, and on a second call with reused buffers.
#[test]
fn fused_layer_is_deterministic_across_threads_and_calls() {
    let (x, w, params, g) = random_case(7, (80, 21, 9, 13));
    let input = EventBatch::from_dense(x.view()).unwrap();
    let run = |threads: usize| {
        eventprop_testkit::with_threads(threads, || {
            let mut layer = FusedLif::new(&params, 13, 1e-6, Discretization::Seed).unwrap();
            let mut out = Vec::new();
            for _ in 0..2 {
                let gs = layer
                    .forward(&input, w.view())
                    .unwrap()
                    .gather(g.view())
                    .unwrap();
                let mut gw = Array2::zeros(w.dim());
                let mut gx = Vec::new();
                layer.backward(&input, &gs, &mut gw, Some(&mut gx)).unwrap();
                out.push((gw, gx));
            }
            assert_eq!(out[0], out[1]);
            out.pop().unwrap()
        })
    };
    assert_eq!(run(1), run(3));
}

/// f32: same spikes as the seed function, gradients within f32 rounding.
#[test]
fn fused_layer_agrees_in_f32() {
    let (x, w, params, g) = random_case(11, (200, 8, 30, 24));
    let f = |a: &Array3<f64>| a.mapv(|v| v as f32);
    let p32 = LifParams::<f32> {
        leak: Param::PerNeuron(
            params
                .leak
                .expand("leak", 24)
                .unwrap()
                .iter()
                .map(|&v| v as f32)
                .collect(),
        ),
        reset: Param::PerNeuron(
            params
                .reset
                .expand("reset", 24)
                .unwrap()
                .iter()
                .map(|&v| v as f32)
                .collect(),
        ),
        threshold: Param::PerNeuron(
            params
                .threshold
                .expand("threshold", 24)
                .unwrap()
                .iter()
                .map(|&v| v as f32)
                .collect(),
        ),
        tau_syn: Param::PerNeuron(
            params
                .tau_syn
                .expand("tau_syn", 24)
                .unwrap()
                .iter()
                .map(|&v| v as f32)
                .collect(),
        ),
        tau_mem: Param::PerNeuron(
            params
                .tau_mem
                .expand("tau_mem", 24)
                .unwrap()
                .iter()
                .map(|&v| v as f32)
                .collect(),
        ),
    };
    let x32 = f(&x);
    let w32 = w.mapv(|v| v as f32);
    // The f32 seed path is the reference here (same float type, same order).
    let y = synapse_forward(x32.view(), w32.view()).unwrap();
    let neuron = EventPropNeuron {
        params: p32.clone(),
        dt: 1e-6f32,
        discretization: Discretization::Seed,
    };
    let ctx = neuron.forward(y.view(), None).unwrap();
    let gr = ctx.backward(f(&g).view(), None, None).unwrap();
    let sgw = synapse_backward(x32.view(), w32.view(), gr.grad_input.view(), false)
        .unwrap()
        .weight;
    let input = EventBatch::from_dense(x32.view()).unwrap();
    let mut layer = FusedLif::new(&p32, 24, 1e-6, Discretization::Seed).unwrap();
    let spikes = layer.forward(&input, w32.view()).unwrap().clone();
    assert_eq!(spikes.to_dense(), ctx.output().spikes);
    let gs = spikes.gather(f(&g).view()).unwrap();
    let mut fgw = Array2::zeros(w.dim());
    layer.backward(&input, &gs, &mut fgw, None).unwrap();
    let a: Vec<f64> = fgw.iter().map(|&v| v as f64).collect();
    let b: Vec<f64> = sgw.iter().map(|&v| v as f64).collect();
    assert!(!spikes.is_empty());
    assert!(rel_max(&a, &b) <= 1e-5, "{:e}", rel_max(&a, &b));
}

#[test]
fn misuse_gives_typed_errors() {
    let (x, w, params, _) = random_case(5, (10, 2, 3, 4));
    let input = EventBatch::from_dense(x.view()).unwrap();
    let mut layer = FusedLif::new(&params, 4, 1e-6, Discretization::Seed).unwrap();
    let mut gw = Array2::zeros((4, 3));
    // Backward before any forward.
    let e = layer
        .backward(&input, &[vec![], vec![]], &mut gw, None)
        .unwrap_err();
    assert!(matches!(e, Error::Shape { arg: "input", .. }), "{e}");
    // Wrong weight shape.
    let e = layer
        .forward(&input, Array2::zeros((3, 4)).view())
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "weight: expected shape (N, N_in) = (4, 3), got (3, 4)"
    );
    // Non-finite weight.
    let mut bad = w.clone();
    bad[[1, 2]] = f64::NAN;
    assert!(matches!(
        layer.forward(&input, bad.view()).unwrap_err(),
        Error::NonFinite { arg: "weight", .. }
    ));
    let spikes = layer.forward(&input, w.view()).unwrap().clone();
    // Wrong number of gradient values.
    let mut gs: Vec<Vec<f64>> = spikes
        .rows()
        .iter()
        .map(|r| vec![0.0; r.len() + 1])
        .collect();
    assert!(matches!(
        layer.backward(&input, &gs, &mut gw, None).unwrap_err(),
        Error::Shape {
            arg: "grad_spikes",
            ..
        }
    ));
    gs = spikes
        .rows()
        .iter()
        .map(|r| vec![f64::INFINITY; r.len()])
        .collect();
    assert!(!spikes.is_empty(), "the case must spike");
    {
        assert!(matches!(
            layer.backward(&input, &gs, &mut gw, None).unwrap_err(),
            Error::NonFinite {
                arg: "grad_spikes",
                ..
            }
        ));
    }
    // Another input than the forward's.
    let other = EventBatch::<f64>::empty(10, 2, 3);
    let gs: Vec<Vec<f64>> = spikes.rows().iter().map(|r| vec![0.0; r.len()]).collect();
    assert!(matches!(
        layer.backward(&other, &gs, &mut gw, None).unwrap_err(),
        Error::Shape { arg: "input", .. }
    ));
    // Event rows that do not fit.
    let mut row = EventRow::<f64>::new();
    row.push(5, 1.0);
    row.end_step();
    assert!(matches!(
        EventBatch::from_rows(1, 3, vec![row]).unwrap_err(),
        Error::Shape { arg: "events", .. }
    ));
}

/// Overflow of the state is an error naming the input, not a silent NaN.
#[test]
fn overflowing_input_is_an_error() {
    let mut x = Array3::<f32>::zeros((5, 1, 1));
    x[[0, 0, 0]] = 1.0;
    x[[1, 0, 0]] = 1.0;
    let w = Array2::from_elem((1, 1), f32::MAX);
    let input = EventBatch::from_dense(x.view()).unwrap();
    let mut layer = FusedLif::new(
        &LifParams::scalar(0.0, 0.0, 1.0, 5e-6, 1e-5),
        1,
        1e-6,
        Discretization::Seed,
    )
    .unwrap();
    assert!(matches!(
        layer.forward(&input, w.view()).unwrap_err(),
        Error::Overflow { arg: "input", .. }
    ));
}

/// The hardware-in-the-loop forward (`FusedLif::forward_hw`): recorded spikes, current
/// recomputed from the input. Expected values: (a) with the layer's own forward spikes
/// recorded, the software layer's backward computed here (bit for bit: the same current,
/// the same adjoint); (b) with an arbitrary recorded raster (spikes at step 0 and at the
/// last step included), the seed function's `hw_data` path computed here (≤ 1e-12
/// relative, summation order as in `fused_layer_equals_the_seed_function_in_f64`).
#[test]
fn hw_forward_recomputes_the_current_at_recorded_spikes_like_the_seed_hw_path() {
    for disc in [Discretization::Seed, Discretization::Corrected] {
        let dims = (40, 5, 6, 7);
        let (x, w, params, g) = random_case(21, dims);
        let input = EventBatch::from_dense(x.view()).unwrap();
        // (a) own spikes
        let mut soft = FusedLif::new(&params, dims.3, 1e-6, disc).unwrap();
        let own = soft.forward(&input, w.view()).unwrap().clone();
        assert!(!own.is_empty());
        let gs = own.gather(g.view()).unwrap();
        let (mut gw_soft, mut gx_soft) = (Array2::zeros(w.dim()), Vec::new());
        soft.backward(&input, &gs, &mut gw_soft, Some(&mut gx_soft))
            .unwrap();
        let mut hw = FusedLif::new(&params, dims.3, 1e-6, disc).unwrap();
        assert_eq!(hw.forward_hw(&input, w.view(), &own).unwrap(), &own);
        let (mut gw_hw, mut gx_hw) = (Array2::zeros(w.dim()), Vec::new());
        hw.backward(&input, &gs, &mut gw_hw, Some(&mut gx_hw))
            .unwrap();
        assert_eq!(gw_hw, gw_soft, "{disc}");
        assert_eq!(gx_hw, gx_soft, "{disc}");

        // (b) a recorded raster unrelated to the software's spikes
        let mut rng = common::rng(5);
        let mut z = Array3::<f64>::zeros((dims.0, dims.1, dims.3));
        z.mapv_inplace(|_| f64::from(u8::from(rng.random_bool(0.1))));
        z[[0, 0, 0]] = 1.0;
        z[[dims.0 - 1, 1, 2]] = 1.0;
        let y = synapse_forward(x.view(), w.view()).unwrap();
        let neuron = EventPropNeuron {
            params: params.clone(),
            dt: 1e-6,
            discretization: disc,
        };
        let membrane = Array3::zeros(z.dim());
        let hw_data = eventprop_core::HwData {
            spikes: z.view(),
            membrane: membrane.view(),
            current: None,
        };
        let ctx = neuron.forward(y.view(), Some(hw_data)).unwrap();
        let gn = ctx.backward(g.view(), None, None).unwrap();
        let s = synapse_backward(x.view(), w.view(), gn.grad_input.view(), true).unwrap();
        let recorded = EventBatch::from_dense(z.view()).unwrap();
        let out = hw.forward_hw(&input, w.view(), &recorded).unwrap();
        assert_eq!(out.to_dense(), z);
        let gs = recorded.gather(g.view()).unwrap();
        let (mut gw, mut gx) = (Array2::zeros(w.dim()), Vec::new());
        hw.backward(&input, &gs, &mut gw, Some(&mut gx)).unwrap();
        let e = rel_max(gw.as_slice().unwrap(), s.weight.as_slice().unwrap());
        assert!(e <= 1e-12, "{disc}: weight gradient off by {e:e}");
        let want = input.gather(s.input.unwrap().view()).unwrap().concat();
        let e = rel_max(&gx.concat(), &want);
        assert!(e <= 1e-12, "{disc}: input gradient off by {e:e}");
    }
}

#[test]
fn hw_forward_misuse_gives_typed_errors_naming_hw_spikes() {
    let params = LifParams::scalar(0.0, 0.0, 1.0, 5e-6, 1e-5);
    let mut layer = FusedLif::new(&params, 3, 1e-6, Discretization::Seed).unwrap();
    let input = EventBatch::<f64>::empty(10, 2, 4);
    let w = Array2::<f64>::ones((3, 4));
    layer.forward(&input, w.view()).unwrap();
    // 4 channels recorded for a layer of 3 neurons
    let err = layer
        .forward_hw(&input, w.view(), &EventBatch::empty(10, 2, 4))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Shape { arg: "hw_spikes", actual, .. } if actual == "(10, 2, 4)"),
        "{err}"
    );
    // a spike of value 2
    let mut rows = vec![EventRow::new(); 2];
    for (b, row) in rows.iter_mut().enumerate() {
        for t in 0..10 {
            if b == 1 && t == 3 {
                row.push(0, 2.0);
            }
            row.end_step();
        }
    }
    let two = EventBatch::from_rows(10, 3, rows).unwrap();
    let err = layer.forward_hw(&input, w.view(), &two).unwrap_err();
    assert!(
        matches!(&err, Error::Shape { arg: "hw_spikes", actual, .. } if actual == "an event of value 2"),
        "{err}"
    );
    // no backward after a refused forward (the earlier forward's state is gone)
    let err = layer
        .backward(&input, &[vec![], vec![]], &mut Array2::zeros((3, 4)), None)
        .unwrap_err();
    assert!(matches!(err, Error::Shape { arg: "input", .. }), "{err}");
}

//! The fused layer with recurrent weights (`FusedLif::forward_recurrent` /
//! `backward_recurrent`, and the threshold, reset and time-constant gradients of every
//! fused layer)
//! against the dense time-stepped layer
//! (`eventprop_core::stepped::SteppedLayer`, `Corrected` adjoint, 2 T N state).
//!
//! Provenance of every expected value: `SteppedLayer` computed in the same test on the
//! same sample; it is checked against finite differences and the exact engine in
//! `eventprop-train`'s `tests/it/stepped_layer.rs` and `tests/it/learn.rs`. Both run the
//! same update order, so spikes must be identical and gradients equal up to summation
//! order: ≤ 1e-12 relative in f64.

use crate::common;

use eventprop_core::fused::{EventBatch, FusedLif};
use eventprop_core::stepped::SteppedLayer;
use eventprop_core::{Discretization, Error, LifParams, NeuronParams};
use ndarray::{Array2, Array3, Axis};

fn rel_max(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

struct Case {
    x: Array3<f64>,
    w: Array2<f64>,
    r: Array2<f64>,
    params: LifParams<f64>,
    g: Array3<f64>,
}

/// A random recurrent layer: binary input spikes `(T, B, N_in)`, per-neuron parameters,
/// feed-forward weights strong enough to spike, recurrent weights of both signs.
fn random_case(seed: u64, (t, b, n_in, n): (usize, usize, usize, usize), r_scale: f64) -> Case {
    let mut rng = common::rng(seed);
    let x = common::bernoulli3(&mut rng, (t, b, n_in), 0.15);
    let w = common::uniform2(&mut rng, (n, n_in), -0.5, 2.5);
    let r = common::uniform2(&mut rng, (n, n), -r_scale, r_scale);
    let params = common::random_params(&mut rng, n);
    let g = common::uniform3(&mut rng, (t, b, n), -1.0, 1.0);
    Case { x, w, r, params, g }
}

fn neuron_params(p: &LifParams<f64>, n: usize) -> NeuronParams {
    NeuronParams {
        leak: common::expand(&p.leak, n),
        reset: common::expand(&p.reset, n),
        threshold: common::expand(&p.threshold, n),
        tau_syn: common::expand(&p.tau_syn, n),
        tau_mem: common::expand(&p.tau_mem, n),
    }
}

/// Spike lists of sample `b` of a dense raster.
fn lists(x: &Array3<f64>, b: usize) -> Vec<Vec<u32>> {
    x.index_axis(Axis(1), b)
        .outer_iter()
        .map(|row| {
            row.iter()
                .enumerate()
                .filter(|(_, &v)| v != 0.0)
                .map(|(j, _)| j as u32)
                .collect()
        })
        .collect()
}

/// What both layers give: spikes `(T, B, N)`, `dL/dW`, `dL/dR` (batch sums), the input
/// gradient `(T, B, N_in)` (at the input events), `dL/dthreshold`, `dL/dreset`,
/// `dL/dtau_syn` and `dL/dtau_mem` (batch sums).
type Out = (
    Array3<f64>,
    Array2<f64>,
    Array2<f64>,
    Array3<f64>,
    [Vec<f64>; 4],
);

/// The dense reference.
fn dense(c: &Case) -> Out {
    let (t, b, n_in) = c.x.dim();
    let n = c.w.nrows();
    let np = neuron_params(&c.params, n);
    let layer = SteppedLayer {
        w: c.w.view(),
        r: Some(c.r.view()),
        delays: None,
        params: &np,
        dt: 1e-6,
    };
    let mut z = Array3::zeros((t, b, n));
    let mut gw = Array2::zeros((n, n_in));
    let mut gr = Array2::zeros((n, n));
    let mut gx = Array3::zeros((t, b, n_in));
    let mut gp = [vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]];
    for bi in 0..b {
        let input = lists(&c.x, bi);
        let run = layer.forward(&input).unwrap();
        for (s, fired) in run.spikes.iter().enumerate() {
            for &k in fired {
                z[[s, bi, k as usize]] = 1.0;
            }
        }
        let g = layer
            .backward(&input, &run, c.g.index_axis(Axis(1), bi))
            .unwrap();
        gw += &g.w;
        gr += g.r.as_ref().unwrap();
        gx.index_axis_mut(Axis(1), bi).assign(&g.input);
        let p = &g.params;
        for (sum, v) in gp
            .iter_mut()
            .zip([&p.threshold, &p.reset, &p.tau_syn, &p.tau_mem])
        {
            for (a, &b) in sum.iter_mut().zip(v) {
                *a += b;
            }
        }
    }
    (z, gw, gr, gx, gp)
}

/// The fused layer in f64.
fn fused(c: &Case) -> Out {
    let n = c.w.nrows();
    let input = EventBatch::from_dense(c.x.view()).unwrap();
    let mut layer = FusedLif::new(&c.params, n, 1e-6, Discretization::Corrected).unwrap();
    layer.set_tau_grads(true);
    let spikes = layer
        .forward_recurrent(&input, c.w.view(), c.r.view())
        .unwrap()
        .clone();
    let gs = spikes.gather(c.g.view()).unwrap();
    let mut gw = Array2::zeros(c.w.dim());
    let mut gr = Array2::zeros(c.r.dim());
    let mut gx = Vec::new();
    let stats = layer
        .backward_recurrent(&input, &gs, &mut gw, &mut gr, Some(&mut gx))
        .unwrap();
    assert_eq!(stats.guarded_spikes, 0);
    let mut gxd = Array3::zeros(c.x.dim());
    for (bi, (row, g)) in input.rows().iter().zip(&gx).enumerate() {
        for ((s, &j), &v) in row.event_steps().zip(row.indices()).zip(g) {
            gxd[[s, bi, j as usize]] = v;
        }
    }
    (
        spikes.to_dense(),
        gw,
        gr,
        gxd,
        [
            layer.grad_threshold().to_vec(),
            layer.grad_reset().to_vec(),
            layer.grad_tau_syn().to_vec(),
            layer.grad_tau_mem().to_vec(),
        ],
    )
}

#[test]
fn recurrent_fused_layer_equals_the_dense_stepped_layer_in_f64() {
    for (seed, dims, r_scale) in [
        (1, (40, 3, 6, 5), 1.0),
        (2, (120, 9, 20, 17), 0.6),
        (3, (7, 1, 1, 1), 2.0),
        (4, (300, 17, 11, 33), 0.4),
        (5, (200, 4, 8, 70), 0.3),
    ] {
        let c = random_case(seed, dims, r_scale);
        let (z, gw, gr, gx, gp) = fused(&c);
        let (rz, rgw, rgr, rgx, rgp) = dense(&c);
        assert_eq!(z, rz, "seed {seed}: spikes");
        if dims.3 > 1 {
            assert!(z.sum() > 10.0, "seed {seed}: the layer must spike");
            // The recurrence matters: without it the spikes differ.
            let plain = Case {
                r: Array2::zeros(c.r.dim()),
                ..random_case(seed, dims, r_scale)
            };
            assert_ne!(
                fused(&plain).0,
                z,
                "seed {seed}: recurrence changes nothing"
            );
            assert!(rgr.iter().any(|&v| v != 0.0), "seed {seed}: dL/dR is zero");
        }
        for (what, a, b) in [
            ("dL/dW", gw.as_slice().unwrap(), rgw.as_slice().unwrap()),
            ("dL/dR", gr.as_slice().unwrap(), rgr.as_slice().unwrap()),
            (
                "input gradient",
                gx.as_slice().unwrap(),
                rgx.as_slice().unwrap(),
            ),
            ("dL/dthreshold", &gp[0], &rgp[0]),
            ("dL/dreset", &gp[1], &rgp[1]),
            ("dL/dtau_syn", &gp[2], &rgp[2]),
            ("dL/dtau_mem", &gp[3], &rgp[3]),
        ] {
            if dims.3 > 1 {
                assert!(b.iter().any(|&v| v != 0.0), "seed {seed}: {what} is zero");
            }
            let e = rel_max(a, b);
            assert!(e <= 1e-12, "seed {seed}: {what} off by {e:e}");
        }
    }
}

/// f32: the same spikes as the f64 dense layer on a case with clear margins, gradients
/// within f32 rounding.
#[test]
fn recurrent_fused_layer_agrees_in_f32() {
    let c = random_case(11, (150, 6, 12, 20), 0.5);
    let (rz, rgw, rgr, ..) = dense(&c);
    let n = c.w.nrows();
    let x32 = c.x.mapv(|v| v as f32);
    let input = EventBatch::from_dense(x32.view()).unwrap();
    let p32 = common::params_as::<f32>(&c.params);
    let mut layer = FusedLif::new(&p32, n, 1e-6, Discretization::Corrected).unwrap();
    let (w32, r32) = (c.w.mapv(|v| v as f32), c.r.mapv(|v| v as f32));
    let spikes = layer
        .forward_recurrent(&input, w32.view(), r32.view())
        .unwrap()
        .clone();
    assert_eq!(spikes.to_dense().mapv(f64::from), rz);
    let gs = spikes.gather(c.g.mapv(|v| v as f32).view()).unwrap();
    let mut gw = Array2::<f32>::zeros(w32.dim());
    let mut gr = Array2::<f32>::zeros(r32.dim());
    layer
        .backward_recurrent(&input, &gs, &mut gw, &mut gr, None)
        .unwrap();
    for (what, a, b) in [("dL/dW", gw, rgw), ("dL/dR", gr, rgr)] {
        let a: Vec<f64> = a.iter().map(|&v| f64::from(v)).collect();
        let e = rel_max(&a, b.as_slice().unwrap());
        assert!(e <= 1e-4, "{what} off by {e:e}");
    }
}

/// Same bits with 1, 2 and 3 threads, and on a second call with reused buffers (the
/// weight, recurrent, input and time-constant gradients).
#[test]
fn recurrent_fused_layer_is_deterministic_across_threads_and_calls() {
    let c = random_case(7, (80, 21, 9, 13), 0.8);
    let input = EventBatch::from_dense(c.x.view()).unwrap();
    let run = |threads: usize| {
        eventprop_testkit::with_threads(threads, || {
            let mut layer = FusedLif::new(&c.params, 13, 1e-6, Discretization::Corrected).unwrap();
            layer.set_tau_grads(true);
            let mut out = Vec::new();
            for _ in 0..2 {
                let gs = layer
                    .forward_recurrent(&input, c.w.view(), c.r.view())
                    .unwrap()
                    .gather(c.g.view())
                    .unwrap();
                let mut gw = Array2::zeros(c.w.dim());
                let mut gr = Array2::zeros(c.r.dim());
                let mut gx = Vec::new();
                layer
                    .backward_recurrent(&input, &gs, &mut gw, &mut gr, Some(&mut gx))
                    .unwrap();
                // The time-constant gradients as two more rows.
                gx.push(layer.grad_tau_syn().to_vec());
                gx.push(layer.grad_tau_mem().to_vec());
                out.push((gw, gr, gx));
            }
            assert_eq!(out[0], out[1]);
            out.pop().unwrap()
        })
    };
    let one = run(1);
    let bits = |(gw, gr, gx): &(Array2<f64>, Array2<f64>, Vec<Vec<f64>>)| {
        gw.iter()
            .chain(gr.iter())
            .chain(gx.iter().flatten())
            .map(|v| v.to_bits())
            .collect::<Vec<_>>()
    };
    assert_eq!(bits(&one), bits(&run(2)));
    assert_eq!(bits(&one), bits(&run(3)));
}

#[test]
fn recurrent_misuse_gives_typed_errors() {
    let c = random_case(5, (10, 2, 3, 4), 0.5);
    let input = EventBatch::from_dense(c.x.view()).unwrap();
    let mut layer = FusedLif::new(&c.params, 4, 1e-6, Discretization::Corrected).unwrap();
    let shape_arg = |e: Error| match e {
        Error::Shape { arg, .. } => arg,
        other => panic!("expected a shape error, got {other:?}"),
    };
    // A recurrent weight of the wrong shape.
    let e = layer
        .forward_recurrent(&input, c.w.view(), Array2::zeros((4, 3)).view())
        .unwrap_err();
    assert_eq!(shape_arg(e), "recurrent");
    // Non-finite recurrent weights.
    let mut bad = c.r.clone();
    bad[[1, 2]] = f64::NAN;
    let e = layer
        .forward_recurrent(&input, c.w.view(), bad.view())
        .unwrap_err();
    assert!(
        matches!(e, Error::NonFinite { arg: "recurrent", ref index, .. } if index == &[1, 2]),
        "{e:?}"
    );
    // A recurrent backward after a feed-forward forward, and the other way round.
    let gs = layer
        .forward(&input, c.w.view())
        .unwrap()
        .gather(c.g.view())
        .unwrap();
    let (mut gw, mut gr) = (Array2::zeros((4, 3)), Array2::zeros((4, 4)));
    let e = layer
        .backward_recurrent(&input, &gs, &mut gw, &mut gr, None)
        .unwrap_err();
    assert_eq!(shape_arg(e), "input");
    let gs = layer
        .forward_recurrent(&input, c.w.view(), c.r.view())
        .unwrap()
        .gather(c.g.view())
        .unwrap();
    let e = layer.backward(&input, &gs, &mut gw, None).unwrap_err();
    assert!(e.to_string().contains("recurrent"), "{e}");
    // A recurrent gradient of the wrong shape.
    let mut gr_bad = Array2::zeros((3, 4));
    let e = layer
        .backward_recurrent(&input, &gs, &mut gw, &mut gr_bad, None)
        .unwrap_err();
    assert_eq!(shape_arg(e), "grad_recurrent");
    // And the right call works after those refusals.
    layer
        .backward_recurrent(&input, &gs, &mut gw, &mut gr, None)
        .unwrap();
}

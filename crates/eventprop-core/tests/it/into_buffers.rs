//! `forward_into` / `backward_into` (outputs in caller-provided buffers) against the
//! allocating API, bit for bit; their shape errors; and determinism across rayon thread
//! counts for problems above [`SERIAL_BELOW`] (run in parallel groups) and below it (run
//! on the calling thread).

use crate::common;

use eventprop_core::{
    synapse_backward, synapse_forward, synapse_forward_stacked, Discretization, Error,
    EventPropNeuron, HwData, LifParams, NeuronOutputMut, Real, SynapseInput, SERIAL_BELOW,
};
use ndarray::{Array3, Array4, Axis, ShapeBuilder};

/// Graded input (30 % non-zero, up to 1.5), per-neuron parameters and an upstream
/// gradient in `[-1, 1]`: with `threshold ~ 1`, `tau ~ 5–10 µs` this fires a fair number
/// of spikes (checked where it matters).
fn problem(seed: u64, dims: (usize, usize, usize)) -> (Array3<f64>, LifParams<f64>, Array3<f64>) {
    let mut rng = common::rng(seed);
    let x = common::graded3(&mut rng, dims, 0.3, 1.5);
    let params = common::random_params(&mut rng, dims.2);
    let grad_spikes = common::uniform3(&mut rng, dims, -1.0, 1.0);
    (x, params, grad_spikes)
}

fn neuron<F: Real>(params: &LifParams<f64>, disc: Discretization) -> EventPropNeuron<F> {
    EventPropNeuron {
        params: common::params_as(params),
        dt: F::of(1e-6),
        discretization: disc,
    }
}

/// Runs `forward_into`, `NeuronContext::backward_into` and `EventPropNeuron::backward_into`
/// into buffers pre-filled with NaN (so that an element left unwritten shows), in C order
/// or (`fortran`) in Fortran order, and compares each with the allocating API bit for bit.
fn check_into<F: Real>(x: &Array3<f64>, params: &LifParams<f64>, g: &Array3<f64>, fortran: bool) {
    let x = x.mapv(F::of);
    let g = g.mapv(F::of);
    let dims = x.dim();
    let (t, b, n) = dims;
    for disc in [Discretization::Seed, Discretization::Corrected] {
        let neuron = neuron::<F>(params, disc);
        let ctx = neuron.forward(x.view(), None).unwrap();
        let grad = ctx.backward(g.view(), None, None).unwrap();
        let out = ctx.output();
        assert!(
            out.spikes.sum() > F::of(10.0),
            "too few spikes to exercise the jump terms"
        );
        let buf3 = || Array3::from_elem(dims.set_f(fortran), F::nan());
        let (mut z, mut v, mut i) = (buf3(), buf3(), buf3());
        // Twice into the same buffers: the second call overwrites the first's values.
        for _ in 0..2 {
            neuron
                .forward_into(
                    x.view(),
                    None,
                    NeuronOutputMut {
                        spikes: z.view_mut(),
                        membrane: v.view_mut(),
                        current: i.view_mut(),
                    },
                )
                .unwrap();
        }
        assert!(common::bits_equal(&z, &out.spikes), "spikes, {disc}");
        assert!(common::bits_equal(&v, &out.membrane), "membrane, {disc}");
        assert!(common::bits_equal(&i, &out.current), "current, {disc}");

        let mut gi = Array4::from_elem((2, t, b, n).set_f(fortran), F::nan());
        let stats = ctx
            .backward_into(g.view(), None, None, gi.view_mut())
            .unwrap();
        assert!(common::bits_equal(&gi, &grad.grad_input), "context, {disc}");
        assert_eq!(stats, grad.stats);

        gi.fill(F::nan());
        let stats = neuron
            .backward_into(z.view(), i.view(), g.view(), gi.view_mut())
            .unwrap();
        assert!(common::bits_equal(&gi, &grad.grad_input), "neuron, {disc}");
        assert_eq!(stats, grad.stats);
    }
}

#[test]
fn into_buffers_equal_the_allocating_api_bit_for_bit() {
    // Below SERIAL_BELOW (one group) and above it (parallel groups, ragged last one).
    for (seed, dims) in [(0, (30, 9, 7)), (1, (40, 70, 100))] {
        let (x, params, g) = problem(seed, dims);
        for fortran in [false, true] {
            check_into::<f64>(&x, &params, &g, fortran);
            check_into::<f32>(&x, &params, &g, fortran);
        }
    }
}

/// The hardware path (recorded spikes and membrane, current recomputed or recorded) into
/// caller buffers equals the allocating forward.
#[test]
fn hw_data_into_buffers_equals_allocating() {
    let (x, params, _) = problem(3, (20, 4, 6));
    let mut rng = common::rng(4);
    let hw_z = common::bernoulli3(&mut rng, x.dim(), 0.2);
    let hw_v = common::uniform3(&mut rng, x.dim(), -1.0, 1.0);
    let hw_i = common::uniform3(&mut rng, x.dim(), -1.0, 1.0);
    let neuron = neuron::<f64>(&params, Discretization::Seed);
    for current in [None, Some(hw_i.view())] {
        let hw = || HwData {
            spikes: hw_z.view(),
            membrane: hw_v.view(),
            current,
        };
        let out = neuron.forward(x.view(), Some(hw())).unwrap().into_output();
        let buf3 = || Array3::from_elem(x.dim(), f64::NAN);
        let (mut z, mut v, mut i) = (buf3(), buf3(), buf3());
        neuron
            .forward_into(
                x.view(),
                Some(hw()),
                NeuronOutputMut {
                    spikes: z.view_mut(),
                    membrane: v.view_mut(),
                    current: i.view_mut(),
                },
            )
            .unwrap();
        assert!(common::bits_equal(&z, &out.spikes));
        assert!(common::bits_equal(&v, &out.membrane));
        assert!(common::bits_equal(&i, &out.current));
        // The recorded observables come back unchanged.
        assert!(common::bits_equal(&z, &hw_z));
        assert!(common::bits_equal(&v, &hw_v));
    }
}

/// Each buffer of the wrong shape is named with the expected and the actual shape.
#[test]
fn into_buffers_of_the_wrong_shape_are_named() {
    let (x, params, g) = problem(5, (6, 2, 3));
    let neuron = neuron::<f64>(&params, Discretization::Seed);
    let good = || Array3::<f64>::zeros((6, 2, 3));
    let bad = || Array3::<f64>::zeros((6, 2, 4));
    for (k, name) in ["out.spikes", "out.membrane", "out.current"]
        .into_iter()
        .enumerate()
    {
        let mut bufs = [good(), good(), good()];
        bufs[k] = bad();
        let [z, v, i] = &mut bufs;
        let err = neuron
            .forward_into(
                x.view(),
                None,
                NeuronOutputMut {
                    spikes: z.view_mut(),
                    membrane: v.view_mut(),
                    current: i.view_mut(),
                },
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{name}: expected shape (6, 2, 3), got (6, 2, 4)")
        );
    }
    let ctx = neuron.forward(x.view(), None).unwrap();
    let mut gi = Array4::<f64>::zeros((2, 6, 2, 2));
    let err = ctx
        .backward_into(g.view(), None, None, gi.view_mut())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "grad_input: expected shape (2, 6, 2, 3), got (2, 6, 2, 2)"
    );
    let (z, i) = (ctx.output().spikes.view(), ctx.output().current.view());
    let err = neuron
        .backward_into(z, bad().view(), g.view(), gi.view_mut())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "current: expected shape (6, 2, 3), got (6, 2, 4)"
    );
    let err = neuron
        .backward_into(z, i, bad().view(), gi.view_mut())
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Shape {
            arg: "grad_spikes",
            ..
        }
    ));
    // `EventPropNeuron::backward_into` validates the caller's spikes and current.
    let mut i_nan = ctx.output().current.clone();
    i_nan[[2, 1, 0]] = f64::NAN;
    let mut gi = Array4::<f64>::zeros((2, 6, 2, 3));
    let err = neuron
        .backward_into(z, i_nan.view(), g.view(), gi.view_mut())
        .unwrap_err();
    assert!(
        matches!(err, Error::NonFinite { arg: "current", ref index, .. } if *index == vec![2, 1, 0])
    );
}

/// Synapse `forward_into` (C order, Fortran order, and the stacked output's first half)
/// equals the allocating forward, on the event-driven and the dense path.
#[test]
fn synapse_forward_into_equals_allocating() {
    for p in [0.05, 0.5] {
        let mut rng = common::rng(6);
        let x = common::bernoulli3(&mut rng, (9, 4, 30), p);
        let w = common::uniform2(&mut rng, (11, 30), -1.0, 1.0);
        let input = SynapseInput::new(x.view()).unwrap();
        let y = input.forward(w.view()).unwrap();
        for fortran in [false, true] {
            let mut out = Array3::from_elem((9, 4, 11).set_f(fortran), f64::NAN);
            input.forward_into(w.view(), out.view_mut()).unwrap();
            assert!(common::bits_equal(&out, &y), "p = {p}, fortran = {fortran}");
        }
        let stacked = synapse_forward_stacked(x.view(), w.view()).unwrap();
        assert!(common::bits_equal(
            &stacked.index_axis(Axis(0), 0).to_owned(),
            &y
        ));
        assert!(stacked.index_axis(Axis(0), 1).iter().all(|&v| v == 0.0));
        let mut wrong = Array3::<f64>::zeros((9, 4, 12));
        let err = input.forward_into(w.view(), wrong.view_mut()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "out: expected shape (9, 4, 11), got (9, 4, 12)"
        );
    }
}

/// Above [`SERIAL_BELOW`] the kernels run in parallel groups whose count depends on the
/// pool: the results must not. Pools of 1, 2 and 3 threads against the global pool, for
/// the neuron (both discretizations) and the synapse (both paths).
#[test]
fn large_problems_are_deterministic_across_thread_counts() {
    let dims = (40, 70, 100); // 280 000 elements
    assert!(dims.0 * dims.1 * dims.2 >= SERIAL_BELOW);
    let (x, params, g) = problem(7, dims);
    let mut rng = common::rng(8);
    // Synapse: (T, B, N_in) = (40, 50, 200) → 400 000 input elements; N_out = 64.
    let spikes_sparse = common::bernoulli3(&mut rng, (40, 50, 200), 0.05);
    let spikes_dense = common::bernoulli3(&mut rng, (40, 50, 200), 0.5);
    let w = common::uniform2(&mut rng, (64, 200), -1.0, 1.0);
    let gs = common::uniform3(&mut rng, (2, 40, 50), -1.0, 1.0);
    let gsyn = Array4::from_shape_fn((2, 40, 50, 64), |(h, t, b, o)| {
        gs[[h, t, b]] * (o as f64 + 1.0) / 64.0
    });
    let run = || {
        let mut out = Vec::new();
        for disc in [Discretization::Seed, Discretization::Corrected] {
            let n = neuron::<f64>(&params, disc);
            let ctx = n.forward(x.view(), None).unwrap();
            let grad = ctx.backward(g.view(), None, None).unwrap();
            out.push(ctx.into_output().current);
            out.push(grad.grad_input.index_axis(Axis(0), 1).to_owned());
        }
        for s in [&spikes_sparse, &spikes_dense] {
            out.push(synapse_forward(s.view(), w.view()).unwrap());
            let gr = synapse_backward(s.view(), w.view(), gsyn.view(), true).unwrap();
            out.push(gr.input.unwrap());
            out.push(gr.weight.insert_axis(Axis(0)));
        }
        out
    };
    let base = run();
    for threads in [1, 2, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let again = pool.install(run);
        for (k, (a, b)) in again.iter().zip(&base).enumerate() {
            assert!(common::bits_equal(a, b), "result {k}, {threads} threads");
        }
    }
}

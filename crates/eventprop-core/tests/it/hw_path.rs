//! Hardware path: feeding the software forward's own observables back as `HwData` must
//! reproduce its outputs and gradients bit for bit (docs/spec.md §1: hardware observables are
//! returned unchanged; the current is recomputed from `x` by the same recursion).

use crate::common;

use eventprop_core::{synapse_backward, synapse_forward, Discretization, EventPropNeuron, HwData};

#[test]
fn own_observables_as_hw_data_give_identical_outputs_and_gradients() {
    let mut rng = common::rng(21);
    // B = 37 spans several rayon batch groups.
    let (t_len, b_len, n_in, n) = (60, 37, 9, 6);
    let x = common::bernoulli3(&mut rng, (t_len, b_len, n_in), 0.08);
    let w = common::uniform2(&mut rng, (n, n_in), 0.0, 3.0);
    let y = synapse_forward(x.view(), w.view()).unwrap();
    let params = common::random_params(&mut rng, n);
    let grad_spikes = common::uniform3(&mut rng, (t_len, b_len, n), -1.0, 1.0);
    for disc in [Discretization::Seed, Discretization::Corrected] {
        let neuron = EventPropNeuron {
            params: params.clone(),
            dt: 1e-6,
            discretization: disc,
        };
        let sw = neuron.forward(y.view(), None).unwrap();
        let out = sw.output();
        assert!(out.spikes.sum() > 20.0, "precondition: the layer spikes");
        let sw_grad = sw.backward(grad_spikes.view(), None, None).unwrap();
        let sw_gw = synapse_backward(x.view(), w.view(), sw_grad.grad_input.view(), true).unwrap();
        for with_current in [false, true] {
            let hw = HwData {
                spikes: out.spikes.view(),
                membrane: out.membrane.view(),
                current: with_current.then(|| out.current.view()),
            };
            let ctx = neuron.forward(y.view(), Some(hw)).unwrap();
            let hw_out = ctx.output();
            assert!(common::bits_equal(&hw_out.spikes, &out.spikes));
            assert!(common::bits_equal(&hw_out.membrane, &out.membrane));
            assert!(
                common::bits_equal(&hw_out.current, &out.current),
                "recomputed current (with_current = {with_current})"
            );
            let grad = ctx.backward(grad_spikes.view(), None, None).unwrap();
            assert!(
                common::bits_equal(&grad.grad_input, &sw_grad.grad_input),
                "{disc}, with_current = {with_current}"
            );
            assert_eq!(grad.stats, sw_grad.stats);
            let gw = synapse_backward(x.view(), w.view(), grad.grad_input.view(), true).unwrap();
            assert!(common::bits_equal(&gw.weight, &sw_gw.weight));
            assert!(common::bits_equal(
                gw.input.as_ref().unwrap(),
                sw_gw.input.as_ref().unwrap()
            ));
        }
    }
}

/// Hardware observables are returned unchanged even when they are not what the software
/// would compute (e.g. analog spike amplitudes, a noisy membrane), and a recorded current
/// is used as given.
#[test]
fn hw_data_is_passed_through_unchanged() {
    let mut rng = common::rng(22);
    let dims = (30, 3, 4);
    let x = common::graded3(&mut rng, dims, 0.3, 1.0);
    let spikes = common::uniform3(&mut rng, dims, 0.0, 2.0);
    let membrane = common::uniform3(&mut rng, dims, -5.0, 5.0);
    let current = common::uniform3(&mut rng, dims, -1.0, 1.0);
    let neuron = EventPropNeuron::<f64>::default();
    let hw = HwData {
        spikes: spikes.view(),
        membrane: membrane.view(),
        current: Some(current.view()),
    };
    let out = neuron.forward(x.view(), Some(hw)).unwrap().into_output();
    assert!(common::bits_equal(&out.spikes, &spikes));
    assert!(common::bits_equal(&out.membrane, &membrane));
    assert!(common::bits_equal(&out.current, &current));
}

//! The time-stepped network ([`SteppedNetwork`]): gradients against finite differences,
//! descent checks of the EventProp hidden gradient, spiking outputs, weight init.

use eventprop_core::{Discretization, Lif};
use eventprop_train::data::rasterize;
use eventprop_train::loss;
use eventprop_train::model::{Init, NetworkSpec, Readout};
use eventprop_train::network::SteppedNetwork;
use eventprop_train::yinyang;
use ndarray::{Array2, Array3};

/// The seed example's LIF (docs/spec.md §5): tau_mem = tau_syn = 6 µs, threshold 1.
fn seed_lif() -> Lif {
    Lif {
        tau_mem: 6e-6,
        tau_syn: 6e-6,
        ..Lif::default()
    }
}

const SEED_READOUT: Readout = Readout::Integrator {
    tau_syn: 6e-6,
    tau_mem: 6e-6,
};

fn net(hidden: Vec<usize>, readout: Readout) -> SteppedNetwork {
    SteppedNetwork {
        spec: NetworkSpec {
            n_in: yinyang::N_INPUTS,
            hidden,
            n_out: 3,
            lif: seed_lif(),
            readout,
            learn: Default::default(),
        },
        dt: 1e-6,
        discretization: Discretization::Seed,
    }
}

fn init2(net: &SteppedNetwork, hidden: Init, out: Init, seed: u64) -> Vec<Array2<f64>> {
    let mut inits = vec![hidden; net.spec.hidden.len()];
    inits.push(out);
    net.spec.init_weights(&inits, seed).unwrap()
}

fn batch(n: usize) -> (Array3<f64>, Vec<usize>) {
    let enc = yinyang::Encoding::default();
    let set = yinyang::encode(&yinyang::generate(n, 11), &enc);
    let inputs: Vec<&[_]> = set.samples.iter().map(Vec::as_slice).collect();
    let (x, dropped) = rasterize(&inputs, yinyang::N_INPUTS, enc.steps(), enc.dt);
    assert_eq!(dropped, 0);
    (x, set.labels)
}

/// Max-over-time loss of `weights` on a batch.
fn mot_loss(net: &SteppedNetwork, w: &[Array2<f64>], x: &Array3<f64>, labels: &[usize]) -> f64 {
    let trace = net.forward(w, x.view()).unwrap();
    loss::max_over_time(trace.output.view(), labels, 4e-4)
        .unwrap()
        .loss
}

#[test]
fn readout_weight_gradient_matches_finite_differences_through_two_hidden_layers() {
    // The readout path (synapse + leaky integrator + max-over-time CE) is differentiable
    // in W_out, and W_out does not change any spike, so the backward's W_out gradient must
    // equal the central difference to O(h²).
    let net = net(vec![30, 20], SEED_READOUT);
    let w = init2(
        &net,
        Init {
            mean: 1.0,
            std: 0.5,
        },
        Init {
            mean: 0.0,
            std: 0.3,
        },
        5,
    );
    let (x, labels) = batch(16);
    let trace = net.forward(&w, x.view()).unwrap();
    assert!(
        trace.hidden_spikes(1).sum() > 0.0,
        "second hidden layer must spike"
    );
    let out = loss::max_over_time(trace.output.view(), &labels, 4e-4).unwrap();
    let g = net.backward(&w, &trace, out.grad.view(), None).unwrap();
    assert_eq!(g.weights.len(), 3);
    assert_eq!(g.weights[0].dim(), (30, 5));
    assert_eq!(g.weights[1].dim(), (20, 30));
    let h = 1e-6;
    let mut checked = 0;
    for o in 0..3 {
        for i in 0..20 {
            let mut p = w.clone();
            p[2][[o, i]] += h;
            let mut m = w.clone();
            m[2][[o, i]] -= h;
            let fd =
                (mot_loss(&net, &p, &x, &labels) - mot_loss(&net, &m, &x, &labels)) / (2.0 * h);
            let an = g.weights[2][[o, i]];
            assert!(
                (fd - an).abs() < 1e-7 + 1e-5 * an.abs(),
                "W_out[{o},{i}]: fd {fd} vs {an}"
            );
            checked += usize::from(an != 0.0);
        }
    }
    assert!(checked > 10, "most readout gradients are non-zero");
}

#[test]
fn a_step_against_the_hidden_gradient_lowers_the_loss() {
    // EventProp's hidden gradient is not a derivative of the (piecewise-constant in
    // W_hidden) time-stepped loss, so check the sign where it matters: steps of a few
    // percent of |W| along -g lower the batch loss, and on the whole lower it more than
    // steps along +g (single +g steps can lower it too: the loss is not smooth).
    for disc in [Discretization::Seed, Discretization::Corrected] {
        let mut net = net(vec![60], SEED_READOUT);
        net.discretization = disc;
        let w = init2(
            &net,
            Init {
                mean: 0.8,
                std: 0.25,
            },
            Init {
                mean: 0.0,
                std: 0.5,
            },
            3,
        );
        let (x, labels) = batch(300);
        let trace = net.forward(&w, x.view()).unwrap();
        let out = loss::max_over_time(trace.output.view(), &labels, 4e-4).unwrap();
        let g = net.backward(&w, &trace, out.grad.view(), None).unwrap();
        let gnorm = g.weights[0].iter().map(|v| v * v).sum::<f64>().sqrt();
        let wnorm = w[0].iter().map(|v| v * v).sum::<f64>().sqrt();
        let l0 = out.loss;
        let (mut downs, mut ups) = (0.0, 0.0);
        for frac in [0.01, 0.02, 0.04] {
            let step = |sign: f64| {
                let mut n = w.clone();
                n[0] = &w[0] + &(&g.weights[0] * (sign * frac * wnorm / gnorm));
                mot_loss(&net, &n, &x, &labels)
            };
            let (down, up) = (step(-1.0), step(1.0));
            assert!(down < l0, "{disc}, step {frac} |W|: {down} >= {l0}");
            downs += down;
            ups += up;
        }
        assert!(downs < ups, "{disc}: -g steps {downs} vs +g steps {ups}");
    }
}

#[test]
fn spiking_output_and_first_spike_loss_run_end_to_end() {
    let net = net(vec![40], Readout::Spiking(seed_lif()));
    let w = init2(
        &net,
        Init {
            mean: 1.0,
            std: 0.3,
        },
        Init {
            mean: 1.0,
            std: 0.5,
        },
        1,
    );
    let (x, labels) = batch(20);
    let trace = net.forward(&w, x.view()).unwrap();
    let out = loss::first_spike(trace.output.view(), &labels, 1e-6, 0.5e-6, 2e-5, 0.0).unwrap();
    assert!(out.loss.is_finite());
    let g = net.backward(&w, &trace, out.grad.view(), None).unwrap();
    assert_eq!(g.weights[1].dim(), (3, 40));
    // A silent network gets no gradient (no spikes, nothing to move).
    let silent = vec![Array2::zeros((40, 5)), Array2::zeros((3, 40))];
    let tr = net.forward(&silent, x.view()).unwrap();
    let o = loss::first_spike(tr.output.view(), &labels, 1e-6, 0.5e-6, 2e-5, 0.0).unwrap();
    let gs = net.backward(&silent, &tr, o.grad.view(), None).unwrap();
    assert!(gs.weights.iter().all(|w| w.iter().all(|&v| v == 0.0)));
}

#[test]
fn a_trace_of_another_network_is_an_error_not_a_panic() {
    // Formerly an `unreachable!`: the backward of a spiking-output network given the trace
    // of an integrator network (no output context).
    let li = net(vec![10], SEED_READOUT);
    let sp = net(vec![10], Readout::Spiking(seed_lif()));
    let w = init2(
        &li,
        Init {
            mean: 1.0,
            std: 0.3,
        },
        Init {
            mean: 1.0,
            std: 0.5,
        },
        1,
    );
    let (x, _) = batch(4);
    let trace = li.forward(&w, x.view()).unwrap();
    let e = sp
        .backward(&w, &trace, trace.output.view(), None)
        .unwrap_err();
    assert!(e.to_string().starts_with("trace:"), "{e}");
    // Too few weights for the network.
    let e = li.forward(&w[..1], x.view()).unwrap_err();
    assert_eq!(e.to_string(), "weights: expected 2 matrices, got 1");
    // A weight of the wrong shape (formerly an `assert!` on the sparse path).
    let bad = vec![w[0].clone(), Array2::zeros((3, 11))];
    let e = li.forward(&bad, x.view()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "weight: expected weight.1 of shape (3, 10), got (3, 11)"
    );
}

#[test]
fn first_spike_loss_gradient_points_downhill_with_the_corrected_discretization() {
    // Sign check of the docs/spec.md §3 convention (grad_spikes = -dL/dt_k at output spikes) through
    // both layers: steps of 0.5–4 % of |W| along -g lower the first-spike loss on a batch.
    // (With the seed discretization the output layer's jump uses i[t-1], whose
    // `dv_m = i[t-1] - threshold` is often negative at a spike, so its direction flips:
    // measured, see DESIGN.md; hence no such assertion for `Seed`.)
    let mut net = net(vec![60], Readout::Spiking(seed_lif()));
    net.spec.lif.tau_mem = 4e-6;
    net.spec.lif.tau_syn = 4e-6;
    net.discretization = Discretization::Corrected;
    let w = init2(
        &net,
        Init {
            mean: 0.8,
            std: 0.5,
        },
        Init {
            mean: 1.0,
            std: 0.5,
        },
        3,
    );
    let (x, labels) = batch(300);
    let fs = |w: &[Array2<f64>]| {
        let tr = net.forward(w, x.view()).unwrap();
        loss::first_spike(tr.output.view(), &labels, 1e-6, 1e-6, 2e-5, 0.0)
            .unwrap()
            .loss
    };
    let tr = net.forward(&w, x.view()).unwrap();
    let out = loss::first_spike(tr.output.view(), &labels, 1e-6, 1e-6, 2e-5, 0.0).unwrap();
    let g = net.backward(&w, &tr, out.grad.view(), None).unwrap();
    for layer in [0, 1] {
        let gn = g.weights[layer].iter().map(|v| v * v).sum::<f64>().sqrt();
        let wn = w[layer].iter().map(|v| v * v).sum::<f64>().sqrt();
        for frac in [0.005, 0.01, 0.02, 0.04] {
            let step = |s: f64| {
                let mut n = w.clone();
                n[layer] = &w[layer] + &(&g.weights[layer] * (s * frac * wn / gn));
                fs(&n)
            };
            let (down, up) = (step(-1.0), step(1.0));
            assert!(
                down < out.loss && down < up,
                "layer {layer}, {frac}: {down} {} {up}",
                out.loss
            );
        }
    }
}

#[test]
fn per_layer_init_draws_each_layer_from_its_own_normal() {
    let spec = net(vec![200, 200], SEED_READOUT).spec;
    let inits = [
        Init {
            mean: 2.0,
            std: 0.1,
        },
        Init {
            mean: -1.0,
            std: 0.5,
        },
        Init {
            mean: 0.0,
            std: 0.0,
        },
    ];
    let w = spec.init_weights(&inits, 9).unwrap();
    for (w, init) in w.iter().zip(&inits) {
        let n = w.len() as f64;
        let mean = w.sum() / n;
        let sd = (w.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        // Sample mean within 5 standard errors (std / sqrt(n)); sample sd within 10 %.
        assert!(
            (mean - init.mean).abs() <= 5.0 * init.std / n.sqrt() + 1e-12,
            "{mean}"
        );
        assert!((sd - init.std).abs() <= 0.1 * init.std + 1e-12, "{sd}");
    }
    assert_eq!(w, spec.init_weights(&inits, 9).unwrap());
    assert!(spec.init_weights(&inits[..2], 9).is_err());
    let bad = [
        inits[0],
        Init {
            mean: 0.0,
            std: -1.0,
        },
        inits[2],
    ];
    assert!(spec.init_weights(&bad, 9).is_err());
}

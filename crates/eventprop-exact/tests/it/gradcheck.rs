//! Exact adjoint vs central finite differences of the event-based forward, in f64, on
//! random 2- and 3-layer networks (docs/spec.md §4; target: relative error <= 1e-6).
//!
//! A perturbation that changes any layer's spike list (count or neuron order) makes the
//! loss discontinuous; such entries are excluded and counted, and the test requires that
//! most entries were checked.

use eventprop_exact::{Gradients, Lif, Network, SolverConfig, Spike, Trace};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::common;
use common::fd::{central, check, check_input_times, random_input, signature, Tally, Which};

const T_MAX: f64 = 0.05;

/// A random network whose layers fire sparsely on `input`: weights ~ U(-0.3, 1) scaled,
/// then each layer rescaled until it has between 1 and 3 spikes per neuron on average
/// (dense firing makes the loss so curved that finite differences lose their accuracy).
fn random_net(rng: &mut ChaCha8Rng, sizes: &[usize], p: Lif, input: &[Spike]) -> Network {
    let mut weights: Vec<Array2<f64>> = sizes
        .windows(2)
        .map(|s| {
            Array2::from_shape_fn((s[1], s[0]), |_| {
                7.0 / (s[0] as f64).sqrt() * rng.random_range(-0.3..1.0)
            })
        })
        .collect();
    for k in 0..weights.len() {
        for _ in 0..30 {
            let net = Network::new(weights.clone(), vec![p; sizes.len() - 1]).expect("valid");
            let per_neuron = match net.forward(input, T_MAX, &SolverConfig::default()) {
                Ok(t) => t.spike_counts()[k + 1] as f64 / sizes[k + 1] as f64,
                Err(_) => f64::INFINITY, // over the spike cap: far too dense
            };
            if per_neuron > 3.0 {
                weights[k] *= 0.7;
            } else if per_neuron < 1.0 {
                weights[k] *= 1.3;
            } else {
                break;
            }
        }
    }
    Network::new(weights, vec![p; sizes.len() - 1]).expect("valid")
}

/// Loss value and its exact gradients.
fn loss_and_grad(net: &Network, t: &Trace, which: Which) -> (f64, Gradients) {
    common::fd::loss_and_grad(net, t, which, &SolverConfig::default())
}

fn run_case(seed: u64, sizes: &[usize], p: Lif, which: Which) -> Tally {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let cfg = SolverConfig::default();
    let input = random_input(&mut rng, sizes[0]);
    let mut net = random_net(&mut rng, sizes, p, &input);
    let n_out = *sizes.last().unwrap();
    let which = match which {
        Which::Ce(_) => Which::Ce(rng.random_range(0..n_out)),
        Which::SilentLabel(_) => {
            let label = rng.random_range(0..n_out);
            let mut w = net.weights_mut().last().unwrap();
            w.row_mut(label).mapv_inplace(|v| 0.1 * v);
            Which::SilentLabel(label)
        }
        w => w,
    };
    let trace = net.forward(&input, T_MAX, &cfg).unwrap();
    let base = signature(&trace);
    let (value, grads) = loss_and_grad(&net, &trace, which);
    if let Which::SilentLabel(label) = which {
        assert!(
            trace.output().iter().all(|s| s.neuron as usize != label),
            "label neuron must be silent"
        );
    }
    let mut tally = Tally {
        spikes: trace.spike_counts()[1..].iter().sum(),
        ..Default::default()
    };
    let noise = |h: f64| 100.0 * f64::EPSILON * value.abs().max(1e-3) / h;
    let eval = |n: &Network, inp: &[Spike]| -> Option<f64> {
        let t = n.forward(inp, T_MAX, &cfg).unwrap();
        (signature(&t) == base).then(|| loss_and_grad(n, &t, which).0)
    };
    for k in 0..net.n_layers() {
        let (rows, cols) = net.weight(k).dim();
        for r in 0..rows {
            for c in 0..cols {
                let w = net.weight(k)[[r, c]];
                let h = 1e-5 * w.abs().max(1.0);
                let f = |d: f64| {
                    let mut n = net.clone();
                    n.weights_mut().nth(k).unwrap()[[r, c]] = w + d;
                    eval(&n, &input)
                };
                let what = format!("seed {seed} w{k}[{r},{c}]");
                check(
                    &mut tally,
                    grads.weights[k][[r, c]],
                    central(&f, h),
                    noise(h),
                    &what,
                );
            }
        }
    }
    // Input spike times (kept apart from each other and from 0 by the perturbation size).
    let eval_input = |moved: &[Spike]| eval(&net, moved);
    check_input_times(
        &mut tally,
        &input,
        &grads.input_times,
        &eval_input,
        noise(1e-8),
        seed,
    );
    tally
}

fn run_many(sizes: &[usize], p: Lif, which: Which, seeds: std::ops::Range<u64>) {
    let mut all = Tally::default();
    for seed in seeds {
        all.add(&run_case(seed, sizes, p, which));
    }
    let Tally {
        checked,
        excluded,
        worst,
        spikes,
    } = all;
    eprintln!("sizes {sizes:?} tau_syn {} tau_mem {}: {spikes} spikes, checked {checked}, excluded {excluded}, worst rel. error {worst:.2e}", p.tau_syn, p.tau_mem);
    assert!(
        checked > 10 * excluded.max(1) / 2,
        "too many excluded: {excluded} vs {checked} checked"
    );
}

fn params(tau_syn: f64, tau_mem: f64) -> Lif {
    Lif {
        tau_syn,
        tau_mem,
        ..Default::default()
    }
}

#[test]
fn two_layer_distinct_taus_spike_time_sum() {
    run_many(&[4, 6, 3], params(5e-3, 20e-3), Which::Sum, 0..20);
}

#[test]
fn two_layer_equal_taus_spike_time_sum() {
    run_many(&[4, 6, 3], params(6e-3, 6e-3), Which::Sum, 100..120);
}

#[test]
fn two_layer_nearly_equal_taus() {
    run_many(
        &[4, 6, 3],
        params(6e-3, 6e-3 * (1.0 + 1e-10)),
        Which::Sum,
        200..210,
    );
}

#[test]
fn two_layer_syn_slower_than_mem() {
    run_many(&[4, 6, 3], params(20e-3, 5e-3), Which::Sum, 300..310);
}

#[test]
fn three_layer_distinct_taus() {
    run_many(&[3, 5, 4, 2], params(5e-3, 20e-3), Which::Sum, 400..415);
}

#[test]
fn three_layer_equal_taus() {
    run_many(&[3, 5, 4, 2], params(5e-3, 5e-3), Which::Sum, 500..515);
}

#[test]
fn first_spike_cross_entropy() {
    run_many(&[4, 6, 3], params(5e-3, 20e-3), Which::Ce(0), 600..620);
    run_many(&[3, 5, 4, 3], params(5e-3, 5e-3), Which::Ce(0), 700..710);
}

#[test]
fn silent_label_membrane_term() {
    run_many(
        &[4, 6, 3],
        params(5e-3, 20e-3),
        Which::SilentLabel(0),
        900..915,
    );
    run_many(
        &[3, 5, 4, 3],
        params(5e-3, 5e-3),
        Which::SilentLabel(0),
        950..960,
    );
}

#[test]
fn nonzero_leak_and_reset() {
    let p = Lif {
        leak: -0.3,
        reset: -0.5,
        threshold: 0.7,
        tau_syn: 4e-3,
        tau_mem: 15e-3,
    };
    run_many(&[4, 6, 3], p, Which::Sum, 800..815);
}

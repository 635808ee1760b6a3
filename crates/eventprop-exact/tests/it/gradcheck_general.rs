//! Exact adjoint of recurrent, delayed networks with per-neuron parameters vs central
//! finite differences (Richardson, f64) of the event-based forward: gradients of the
//! feed-forward and recurrent weights, the delays, every per-neuron parameter
//! (`tau_mem`, `tau_syn`, `threshold`, `leak`, `reset`) and the input spike times
//! (issue target: relative error <= 1e-6).
//!
//! A perturbation that changes any layer's spike list (count or neuron order) makes the
//! loss discontinuous; such entries are excluded and counted, and each test requires that
//! most entries were checked.

use eventprop_exact::{Gradients, Lif, Network, NeuronParams, SolverConfig, Spike, Trace};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::common;
use common::fd::{central, check, check_input_times, random_input, signature, Tally, Which};

const T_MAX: f64 = 0.05;

/// Everything that defines a network, so that single entries can be perturbed.
#[derive(Clone)]
struct Spec {
    w: Vec<Array2<f64>>,
    r: Vec<Option<Array2<f64>>>,
    d: Vec<Option<Array2<f64>>>,
    p: Vec<NeuronParams>,
}

impl Spec {
    fn build(&self) -> Network {
        let mut net = Network::new(self.w.clone(), vec![Lif::default(); self.w.len()]).unwrap();
        for k in 0..self.w.len() {
            net = net.with_neuron_params(k, self.p[k].clone()).unwrap();
            if let Some(r) = &self.r[k] {
                net = net.with_recurrent(k, r.clone()).unwrap();
            }
            if let Some(d) = &self.d[k] {
                net = net.with_delays(k, d.clone()).unwrap();
            }
        }
        net
    }
}

#[derive(Clone, Copy)]
struct Options {
    recurrent: bool,
    delays: bool,
    /// 0: random taus; 1: tau_syn = tau_mem per neuron; 2: nearly equal (1e-10 relative).
    taus: u8,
}

fn random_params(rng: &mut ChaCha8Rng, n: usize, taus: u8) -> NeuronParams {
    let mut p = NeuronParams::uniform(&Lif::default(), n);
    for i in 0..n {
        p.leak[i] = rng.random_range(-0.2..0.2);
        p.threshold[i] = p.leak[i] + rng.random_range(0.8..1.2);
        p.reset[i] = p.leak[i] - rng.random_range(0.0..0.3);
        p.tau_mem[i] = rng.random_range(8e-3..25e-3);
        p.tau_syn[i] = match taus {
            0 => rng.random_range(3e-3..8e-3),
            1 => p.tau_mem[i],
            _ => p.tau_mem[i] * (1.0 + 1e-10),
        };
    }
    p
}

/// A random network firing sparsely on `input`: each layer's feed-forward weights are
/// rescaled until it has 1–3 spikes per neuron on average (dense firing makes the loss so
/// curved that finite differences lose their accuracy).
fn random_spec(rng: &mut ChaCha8Rng, sizes: &[usize], o: Options, input: &[Spike]) -> Spec {
    let layers = sizes.len() - 1;
    let mut spec = Spec {
        w: sizes
            .windows(2)
            .map(|s| {
                Array2::from_shape_fn((s[1], s[0]), |_| {
                    7.0 / (s[0] as f64).sqrt() * rng.random_range(-0.3..1.0)
                })
            })
            .collect(),
        r: sizes[1..]
            .iter()
            .map(|&n| {
                o.recurrent
                    .then(|| Array2::from_shape_fn((n, n), |_| rng.random_range(-0.6..0.6)))
            })
            .collect(),
        d: sizes
            .windows(2)
            .map(|s| {
                o.delays
                    .then(|| Array2::from_shape_fn((s[1], s[0]), |_| rng.random_range(0.0..5e-3)))
            })
            .collect(),
        p: sizes[1..]
            .iter()
            .map(|&n| random_params(rng, n, o.taus))
            .collect(),
    };
    for k in 0..layers {
        for _ in 0..40 {
            let per_neuron = match spec.build().forward(input, T_MAX, &SolverConfig::default()) {
                Ok(t) => t.spike_counts()[k + 1] as f64 / sizes[k + 1] as f64,
                Err(_) => f64::INFINITY,
            };
            if per_neuron > 3.0 {
                spec.w[k] *= 0.7;
            } else if per_neuron < 1.0 {
                spec.w[k] *= 1.3;
            } else {
                break;
            }
        }
    }
    spec
}

/// Loss value and its exact gradients.
fn loss_and_grad(net: &Network, t: &Trace, which: Which) -> (f64, Gradients) {
    common::fd::loss_and_grad(
        net,
        t,
        which,
        &SolverConfig {
            parameter_gradients: true,
            ..Default::default()
        },
    )
}

// Indices address the same entry in the spec, its perturbed copies and the gradients.
#[allow(clippy::needless_range_loop)]
fn run_case(seed: u64, sizes: &[usize], o: Options, which: Which) -> Tally {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let cfg = SolverConfig::default();
    let input = random_input(&mut rng, sizes[0]);
    let mut spec = random_spec(&mut rng, sizes, o, &input);
    let n_out = *sizes.last().unwrap();
    let top = sizes.len() - 2;
    let which = match which {
        Which::Ce(_) => Which::Ce(rng.random_range(0..n_out)),
        Which::SilentLabel(_) => {
            let label = rng.random_range(0..n_out);
            spec.w[top].row_mut(label).mapv_inplace(|v| 0.1 * v);
            Which::SilentLabel(label)
        }
        w => w,
    };
    let net = spec.build();
    let trace = net.forward(&input, T_MAX, &cfg).unwrap();
    let base = signature(&trace);
    let (value, grads) = loss_and_grad(&net, &trace, which);
    if let Which::SilentLabel(label) = which {
        assert!(trace.output().iter().all(|s| s.neuron as usize != label));
    }
    let mut tally = Tally {
        spikes: trace.spike_counts()[1..].iter().sum(),
        ..Default::default()
    };
    let noise = |h: f64| 100.0 * f64::EPSILON * value.abs().max(1e-3) / h;
    let eval = |s: &Spec, inp: &[Spike]| -> Option<f64> {
        let n = s.build();
        let t = n.forward(inp, T_MAX, &cfg).ok()?;
        (signature(&t) == base).then(|| loss_and_grad(&n, &t, which).0)
    };
    let gp = grads
        .params
        .as_ref()
        .expect("parameter gradients requested");
    for k in 0..spec.w.len() {
        let (rows, cols) = spec.w[k].dim();
        for i in 0..rows {
            for j in 0..cols {
                let w = spec.w[k][[i, j]];
                let h = 1e-5 * w.abs().max(1.0);
                let f = |e: f64| {
                    let mut s = spec.clone();
                    s.w[k][[i, j]] = w + e;
                    eval(&s, &input)
                };
                let what = format!("seed {seed} w{k}[{i},{j}]");
                check(
                    &mut tally,
                    grads.weights[k][[i, j]],
                    central(&f, h),
                    noise(h),
                    &what,
                );
                if let Some(d) = &spec.d[k] {
                    let d0 = d[[i, j]];
                    let h = 1e-8;
                    if d0 < h {
                        tally.excluded += 1;
                        continue;
                    }
                    let f = |e: f64| {
                        let mut s = spec.clone();
                        s.d[k].as_mut().unwrap()[[i, j]] = d0 + e;
                        eval(&s, &input)
                    };
                    let adj = grads.delays[k].as_ref().unwrap()[[i, j]];
                    let what = format!("seed {seed} d{k}[{i},{j}]");
                    check(&mut tally, adj, central(&f, h), noise(h), &what);
                }
            }
        }
        if let Some(r) = &spec.r[k] {
            for i in 0..rows {
                for m in 0..rows {
                    let r0 = r[[i, m]];
                    let h = 1e-5 * r0.abs().max(1.0);
                    let f = |e: f64| {
                        let mut s = spec.clone();
                        s.r[k].as_mut().unwrap()[[i, m]] = r0 + e;
                        eval(&s, &input)
                    };
                    let adj = grads.recurrent[k].as_ref().unwrap()[[i, m]];
                    let what = format!("seed {seed} r{k}[{i},{m}]");
                    check(&mut tally, adj, central(&f, h), noise(h), &what);
                }
            }
        }
        for field in 0..5 {
            for n in 0..rows {
                let v0 = spec.p[k].fields()[field].1[n];
                let name = spec.p[k].fields()[field].0;
                // Time constants: a relative step; potentials: an absolute one.
                let h = if field >= 3 { 1e-5 * v0 } else { 1e-5 };
                let f = |e: f64| {
                    let mut s = spec.clone();
                    s.p[k].fields_mut()[field].1[n] = v0 + e;
                    eval(&s, &input)
                };
                let adj = gp[k].fields()[field].1[n];
                let what = format!("seed {seed} {name}{k}[{n}]");
                check(&mut tally, adj, central(&f, h), noise(h), &what);
            }
        }
    }
    let eval_input = |moved: &[Spike]| eval(&spec, moved);
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

fn run_many(sizes: &[usize], o: Options, which: Which, seeds: std::ops::Range<u64>) {
    let mut all = Tally::default();
    for seed in seeds {
        all.add(&run_case(seed, sizes, o, which));
    }
    eprintln!(
        "sizes {sizes:?} recurrent {} delays {} taus {}: {} spikes, checked {}, excluded {}, \
         worst rel. error {:.2e}",
        o.recurrent, o.delays, o.taus, all.spikes, all.checked, all.excluded, all.worst
    );
    assert!(
        all.checked > 5 * all.excluded.max(1),
        "too many excluded: {} vs {} checked",
        all.excluded,
        all.checked
    );
}

const REC: Options = Options {
    recurrent: true,
    delays: false,
    taus: 0,
};

#[test]
fn recurrent_hidden_layer_per_neuron_params() {
    run_many(&[4, 6, 3], REC, Which::Sum, 0..12);
}

#[test]
fn recurrent_and_delayed_cross_entropy() {
    let o = Options {
        delays: true,
        ..REC
    };
    run_many(&[4, 6, 3], o, Which::Ce(0), 100..110);
}

#[test]
fn delays_only_three_layers() {
    let o = Options {
        recurrent: false,
        delays: true,
        taus: 0,
    };
    run_many(&[3, 5, 4, 2], o, Which::Sum, 200..210);
}

#[test]
fn equal_and_nearly_equal_taus() {
    for taus in [1, 2] {
        let o = Options {
            delays: true,
            taus,
            ..REC
        };
        run_many(&[4, 6, 3], o, Which::Sum, 300..308);
    }
}

#[test]
fn silent_label_with_recurrent_output_layer() {
    // One spiking layer: the output layer itself is recurrent and delayed.
    let o = Options {
        delays: true,
        ..REC
    };
    run_many(&[5, 4], o, Which::SilentLabel(0), 400..412);
    run_many(&[4, 6, 3], o, Which::SilentLabel(0), 450..458);
}

//! The time-stepped reference: the same network run through `eventprop-core`'s
//! seed-order LIF forward and Euler adjoint (shared by the agreement test and the
//! `dt_table` example).
//!
//! Mapping (docs/spec.md §1): the stepped model adds `x[t]` into the current at step `t + 1`, and
//! step `t + 1` integrates the membrane over `(t dt, (t+1) dt]` with that current. An input
//! spike at time `s` therefore goes to `x[round(s/dt)]`, and `z[t] = 1` is a spike at time
//! `t dt` (the end of the step in which the crossing happened, so spike times lag by
//! `O(dt)`), which the next layer again receives at `x[t]`.

#![allow(dead_code)]

use eventprop_core::{
    synapse_backward, synapse_forward, Discretization, EventPropNeuron, LifParams,
};
use eventprop_exact::{Lif, Network, Spike};
use ndarray::{array, Array2, Array3, Axis};

/// Window of the comparison network.
pub const T_MAX: f64 = 40e-6;

/// Output of the stepped network: per layer `k >= 1`, spike lists `(time, neuron)`, and
/// the weight gradients of the loss `Σ` output spike times.
pub struct Stepped {
    pub spikes: Vec<Vec<Spike>>,
    pub grads: Vec<Array2<f64>>,
}

pub fn run_stepped(
    net: &Network,
    input: &[Spike],
    t_max: f64,
    dt: f64,
    discretization: Discretization,
) -> Stepped {
    let steps = (t_max / dt).round() as usize + 1;
    let sizes = net.sizes();
    let mut x = Array3::<f64>::zeros((steps, 1, sizes[0]));
    for s in input {
        let t = (s.time / dt).round() as usize;
        if t < steps {
            x[[t, 0, s.neuron as usize]] += 1.0;
        }
    }
    let mut xs = vec![x];
    let mut ctxs = Vec::new();
    for k in 0..net.n_layers() {
        let p = net.params(k);
        let neuron = EventPropNeuron {
            params: LifParams::scalar(p.leak, p.reset, p.threshold, p.tau_syn, p.tau_mem),
            dt,
            discretization,
        };
        let y = synapse_forward(xs[k].view(), net.weight(k)).unwrap();
        let ctx = neuron.forward(y.view(), None).unwrap();
        xs.push(ctx.output().spikes.clone());
        ctxs.push(ctx);
    }
    // grad_spikes = -dL/dt_k at spike steps (docs/spec.md §3 sign convention): L = Σ t_k.
    let mut grad_spikes = -xs[net.n_layers()].clone();
    let mut grads = vec![Array2::zeros((0, 0)); net.n_layers()];
    for k in (0..net.n_layers()).rev() {
        let g = ctxs[k].backward(grad_spikes.view(), None, None).unwrap();
        let sg = synapse_backward(xs[k].view(), net.weight(k), g.grad_input.view(), k > 0).unwrap();
        grads[k] = sg.weight;
        if let Some(gi) = sg.input {
            grad_spikes = gi;
        }
    }
    let spikes = xs[1..]
        .iter()
        .map(|z| {
            let mut v = Vec::new();
            for (t, row) in z.index_axis(Axis(1), 0).outer_iter().enumerate() {
                for (n, &zv) in row.iter().enumerate() {
                    if zv != 0.0 {
                        v.push(Spike {
                            time: t as f64 * dt,
                            neuron: n as u32,
                        });
                    }
                }
            }
            v
        })
        .collect();
    Stepped { spikes, grads }
}

/// Largest `|t_exact - t_stepped|` over matching spikes (k-th spike of each neuron), or
/// `None` when some neuron's spike count differs.
pub fn max_time_error(exact: &[Spike], stepped: &[Spike], n: usize) -> Option<f64> {
    let per = |v: &[Spike]| {
        let mut p = vec![Vec::new(); n];
        for s in v {
            p[s.neuron as usize].push(s.time);
        }
        p
    };
    let (a, b) = (per(exact), per(stepped));
    let mut worst = 0.0_f64;
    for (x, y) in a.iter().zip(&b) {
        if x.len() != y.len() {
            return None;
        }
        for (p, q) in x.iter().zip(y) {
            worst = worst.max((p - q).abs());
        }
    }
    Some(worst)
}

/// `||a - b||_F / ||b||_F` over all weight matrices.
pub fn rel_error(a: &[Array2<f64>], b: &[Array2<f64>]) -> f64 {
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).mapv(|v| v * v).sum())
        .sum();
    let den: f64 = b.iter().map(|y| y.mapv(|v| v * v).sum()).sum();
    (num / den).sqrt()
}

/// A small 2-layer network (3-4-2) on the core's default time constants (tau_syn 5 µs,
/// tau_mem 10 µs); weights picked by hand so that every neuron fires 1-3 times, none of
/// them grazing (`w1_scale` keeps the output layer at a few spikes per neuron when the
/// synapse is slower).
pub fn network(tau_syn: f64, tau_mem: f64, w1_scale: f64) -> (Network, Vec<Spike>) {
    let p = Lif {
        tau_syn,
        tau_mem,
        ..Default::default()
    };
    let w0 = array![
        [2.0, 1.5, 0.5],
        [0.8, 2.2, 1.0],
        [1.6, 0.3, 1.9],
        [1.2, 1.2, 1.2]
    ];
    let w1 = array![[1.5, 1.0, 1.2, 0.8], [0.6, 1.4, 1.0, 1.6]];
    let input = vec![
        Spike {
            time: 2.1e-6,
            neuron: 0,
        },
        Spike {
            time: 4.7e-6,
            neuron: 1,
        },
        Spike {
            time: 7.3e-6,
            neuron: 2,
        },
        Spike {
            time: 12.9e-6,
            neuron: 0,
        },
        Spike {
            time: 15.2e-6,
            neuron: 1,
        },
    ];
    (
        Network::new(vec![w0, w1 * w1_scale], vec![p; 2]).unwrap(),
        input,
    )
}

//! Finite-difference checking shared by the gradient-check tests: Richardson central
//! differences, the comparison with the rounding floor, random inputs and the spike-list
//! signature that detects discontinuous perturbations.

#![allow(dead_code)]

use eventprop_exact::{loss, FirstSpikeCe, Gradients, Network, SolverConfig, Spike, Trace};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// 1–3 input spikes per input neuron in `[0, 25 ms)`.
pub fn random_input(rng: &mut ChaCha8Rng, n_in: usize) -> Vec<Spike> {
    let mut v = Vec::new();
    for j in 0..n_in {
        for _ in 0..rng.random_range(1..4) {
            v.push(Spike {
                time: rng.random_range(0.0..0.025),
                neuron: j as u32,
            });
        }
    }
    v
}

/// The neuron order of every layer's spikes: a perturbation that changes it makes the loss
/// discontinuous.
pub fn signature(t: &Trace) -> Vec<Vec<u32>> {
    (1..t.n_layers())
        .map(|k| t.spikes(k).iter().map(|s| s.neuron).collect())
        .collect()
}

/// Central difference with Richardson extrapolation: `(4 D(h/2) - D(h)) / 3`, truncation
/// error O(h^4). `None` when a perturbation changes the spike lists (`f` returns `None`).
pub fn central(f: &dyn Fn(f64) -> Option<f64>, h: f64) -> Option<f64> {
    let d = |h: f64| Some((f(h)? - f(-h)?) / (2.0 * h));
    let (d1, d2) = (d(h)?, d(0.5 * h)?);
    Some((4.0 * d2 - d1) / 3.0)
}

/// Counts of a gradient check.
#[derive(Debug, Default)]
pub struct Tally {
    /// Entries compared.
    pub checked: usize,
    /// Entries whose perturbation changed a spike list.
    pub excluded: usize,
    /// Largest plain relative error where rounding cannot mask it.
    pub worst: f64,
    /// Spikes of the checked networks.
    pub spikes: usize,
}

impl Tally {
    /// Adds another tally's counts.
    pub fn add(&mut self, t: &Tally) {
        self.checked += t.checked;
        self.excluded += t.excluded;
        self.worst = self.worst.max(t.worst);
        self.spikes += t.spikes;
    }
}

/// Compares an adjoint entry with its finite difference (`None`: excluded) to 1e-6
/// relative; `noise` is the rounding floor of the difference quotient (~100 eps |L| / h),
/// below which a deviation carries no information.
pub fn check(t: &mut Tally, adj: f64, fd: Option<f64>, noise: f64, what: &str) {
    let Some(fd) = fd else {
        t.excluded += 1;
        return;
    };
    let diff = (adj - fd).abs();
    let err = if diff <= noise {
        0.0
    } else {
        (diff - noise) / adj.abs()
    };
    if adj.abs() >= 1e4 * noise {
        t.worst = t.worst.max(diff / adj.abs());
    }
    assert!(
        err <= 1e-6,
        "{what}: adjoint {adj:e} vs finite difference {fd:e} (rel. error {err:e})"
    );
    t.checked += 1;
}

/// Checks the gradient of every input spike time (step 1e-8 s; spikes closer than that to
/// 0 are excluded): `eval` runs the loss on a moved input (`None`: a spike list changed).
pub fn check_input_times(
    t: &mut Tally,
    input: &[Spike],
    grads: &[f64],
    eval: &dyn Fn(&[Spike]) -> Option<f64>,
    noise: f64,
    seed: u64,
) {
    let h = 1e-8;
    for i in 0..input.len() {
        if input[i].time < h {
            t.excluded += 1;
            continue;
        }
        let f = |d: f64| {
            let mut moved = input.to_vec();
            moved[i].time += d;
            eval(&moved)
        };
        let what = format!("seed {seed} input time {i}");
        check(t, grads[i], central(&f, h), noise, &what);
    }
}

/// The loss a gradient check differentiates.
#[derive(Clone, Copy)]
pub enum Which {
    /// Sum of the output spike times.
    Sum,
    /// First-spike cross-entropy ([`CE`]) with this label.
    Ce(usize),
    /// First-spike CE with the label neuron silenced (its incoming weights scaled down), so
    /// that the membrane term of the missing-spike policy is active.
    SilentLabel(usize),
}

/// The first-spike loss of the checks.
pub const CE: FirstSpikeCe = FirstSpikeCe {
    tau0: 2e-3,
    tau1: 10e-3,
    alpha: 1e-2,
    silent_label_gamma: 0.7,
};

/// Loss value and its exact gradients under `cfg`.
pub fn loss_and_grad(
    net: &Network,
    t: &Trace,
    which: Which,
    cfg: &SolverConfig,
) -> (f64, Gradients) {
    match which {
        Which::Sum => {
            let l = loss::spike_time_sum(t.output());
            (l.value, t.backward(net, &l.dl_dt, cfg).unwrap())
        }
        Which::Ce(label) | Which::SilentLabel(label) => {
            let (l, g) = CE.sample(net, t, label, cfg).unwrap();
            (l.value, g)
        }
    }
}

//! Loss shaping (Nowotny et al.): the readout-integral losses `sum` and `sum_exp` and the
//! per-neuron spike-count targets `[reg]`, on both engines.
//!
//! * exact engine: every gradient against Richardson central differences of its own batch
//!   loss (f64; readout integrals in closed form, so the loss is smooth between spike-count
//!   changes); the rate targets against the differences of their surrogate
//!   `-Σ_n g_n Σ_k t_{n,k}` with `g` held fixed (a count itself is piecewise constant);
//! * stepped engine: the readout weights' gradient against central differences (the loss
//!   is smooth in them on the grid), and every gradient against the exact engine as
//!   `dt → 0` (first-order convergence).

use eventprop_train::engine::{Engine, Pass};
use eventprop_train::loss::{LossKind, RateTargets};
use eventprop_train::model::Learn;
use eventprop_train::{EngineKind, TrainConfig, Trainer};
use ndarray::Array2;

/// Exact preset (5-H-3 Yin-Yang, 60 ms window) with `loss`.
fn exact(loss: LossKind, hidden: usize, learn: Learn) -> TrainConfig {
    TrainConfig {
        train_size: 40,
        val_size: 10,
        test_size: 10,
        seed: 3,
        loss,
        learn,
        network: eventprop_train::config::NetworkSettings {
            hidden: vec![hidden],
            readout_init_mean: 0.0,
            readout_init_std: 1.0,
            ..TrainConfig::preset(EngineKind::Exact).network.clone()
        },
        ..TrainConfig::preset(EngineKind::Exact)
    }
}

/// Central difference with Richardson extrapolation.
fn central(f: &dyn Fn(f64) -> f64, h: f64) -> f64 {
    let d = |h: f64| (f(h) - f(-h)) / (2.0 * h);
    (4.0 * d(0.5 * h) - d(h)) / 3.0
}

/// Compares `grads` with central differences of `value` in a few entries of every tensor;
/// returns (agreeing, checked, worst relative error among the agreeing).
fn check_all(
    weights: &[Array2<f64>],
    grads: &[Array2<f64>],
    value: &dyn Fn(&[Array2<f64>]) -> f64,
) -> (usize, usize, f64) {
    let (mut checked, mut agree, mut worst) = (0, 0, 0.0_f64);
    for (i, w) in weights.iter().enumerate() {
        for flat in (0..w.len()).step_by((w.len() / 4).max(1)) {
            let (r, c) = (flat / w.ncols(), flat % w.ncols());
            let v0 = w[[r, c]];
            let h = 1e-6 * v0.abs().max(1.0);
            let f = |e: f64| {
                let mut moved = weights.to_vec();
                moved[i][[r, c]] = v0 + e;
                value(&moved)
            };
            let fd = central(&f, h);
            let g = grads[i][[r, c]];
            checked += 1;
            let rel = (g - fd).abs() / g.abs().max(fd.abs()).max(1e-300);
            // A perturbation that changes a spike count makes the loss jump; such entries
            // are the only ones allowed to differ.
            if (g - fd).abs() <= 1e-5 * g.abs().max(fd.abs()) + 1e-8 {
                agree += 1;
                if g.abs() > 1e-4 {
                    worst = worst.max(rel);
                }
            } else {
                eprintln!("tensor {i} [{r},{c}]: engine {g:e} vs finite difference {fd:e}");
            }
        }
    }
    (agree, checked, worst)
}

const ALL: Learn = Learn {
    recurrent: true,
    delays: true,
    taus: true,
    threshold: true,
};

#[test]
fn exact_readout_losses_match_finite_differences() {
    for loss in [LossKind::Sum, LossKind::SumExp { tau_w: Some(20e-3) }] {
        for learn in [Learn::default(), ALL] {
            let mut t = Trainer::new(exact(loss, 8, learn)).unwrap();
            // Spread delays (0.2–1 ms), recurrence, taus and thresholds off their initial
            // values so no gradient is trivially zero.
            let l = t.engine().spec().layout();
            let mut k = 0.0_f64;
            for (i, w) in t.weights_mut().iter_mut().enumerate().skip(l.n_ff) {
                for v in w.iter_mut() {
                    k += 1.0;
                    let wobble = (k * 0.7).sin();
                    *v = if Some(i) >= l.delays && Some(i) < l.taus {
                        0.12 + 0.08 * wobble
                    } else if Some(i) >= l.recurrent && Some(i) < l.delays {
                        0.3 * wobble
                    } else {
                        *v + 0.1 * wobble
                    };
                }
            }
            let set = &t.data().train;
            let inputs: Vec<&[_]> = set.samples[..12].iter().map(|s| s.as_slice()).collect();
            let labels = &set.labels[..12];
            let run = |w: &[Array2<f64>]| t.engine().run(w, &inputs, labels, Pass::Train).unwrap();
            let grads = run(t.weights()).grads.unwrap();
            let (agree, checked, worst) = check_all(t.weights(), &grads, &|w| {
                run(w).loss_sum / inputs.len() as f64
            });
            eprintln!(
                "exact {} learn {:?}: {agree} of {checked} agree, worst rel. error {worst:.2e}",
                loss.name(),
                learn.any()
            );
            assert!(agree * 10 >= checked * 9, "{agree} of {checked}");
            assert!(worst <= 1e-5);
        }
    }
}

/// The batch's hidden spike times per sample (one hidden layer).
fn hidden_times(
    engine: &dyn Engine,
    w: &[Array2<f64>],
    inputs: &[&[eventprop_data::Spike]],
) -> Vec<Vec<(f64, usize)>> {
    inputs
        .iter()
        .map(|x| {
            engine.hidden_spikes(w, x).unwrap()[0]
                .iter()
                .map(|s| (s.time, s.neuron as usize))
                .collect()
        })
        .collect()
}

#[test]
fn exact_rate_targets_match_their_surrogate_differences() {
    // The targets' gradient is the exact gradient of L + Σ_b Σ_k (-g_n / B) t_k with
    // g_n = ∂L_reg/∂c̄_n held at its value (RateTargets docs): compared with central
    // differences of that function, for a readout loss and for the first-spike loss.
    // (first_spike without the silent-label term, which the evaluation pass leaves out.)
    let mut fs = LossKind::defaults("first_spike", EngineKind::Exact).unwrap();
    if let LossKind::FirstSpike {
        silent_label_gamma, ..
    } = &mut fs
    {
        *silent_label_gamma = 0.0;
    }
    for loss in [LossKind::Sum, fs] {
        let targets = RateTargets {
            upper_rate: 2.0,
            lower_rate: 1.0,
            upper_strength: 0.05,
            lower_strength: 0.3,
        };
        let mut c = exact(loss, 10, Learn::default());
        if let LossKind::FirstSpike { .. } = loss {
            c.network.readout_init_mean = 0.93;
            c.network.readout_init_std = 0.1;
        }
        let t = Trainer::new(c.clone()).unwrap();
        let set = &t.data().train;
        let inputs: Vec<&[_]> = set.samples[..8].iter().map(|s| s.as_slice()).collect();
        let labels = &set.labels[..8];
        let b = inputs.len() as f64;
        // The batch-mean counts of the network (they do not depend on the targets).
        let times = hidden_times(t.engine(), t.weights(), &inputs);
        let mut mean = vec![0.0; 10];
        for s in &times {
            for &(_, n) in s {
                mean[n] += 1.0 / b;
            }
        }
        // Targets around the median count, so that both terms act.
        let mut sorted = mean.clone();
        sorted.sort_by(f64::total_cmp);
        let targets = RateTargets {
            upper_rate: sorted[5],
            lower_rate: sorted[5],
            ..targets
        };
        c.reg = targets;
        let engine = c.engine().unwrap();
        let engine = engine.as_ref();
        let base = engine
            .run(t.weights(), &inputs, labels, Pass::Train)
            .unwrap();
        let grads = base.grads.unwrap();
        let (_, g) = targets.evaluate(&mean);
        assert!(
            g.iter().any(|&x| x > 0.0) && g.iter().any(|&x| x < 0.0),
            "{mean:?}"
        );
        let value = |w: &[Array2<f64>]| {
            let ce = engine.run(w, &inputs, labels, Pass::Eval).unwrap().loss_sum / b;
            let surrogate: f64 = hidden_times(engine, w, &inputs)
                .iter()
                .flatten()
                .map(|&(tk, n)| -g[n] / b * tk)
                .sum();
            ce + surrogate
        };
        let (agree, checked, worst) = check_all(t.weights(), &grads, &value);
        eprintln!(
            "exact {} + targets: {agree} of {checked} agree, worst rel. error {worst:.2e}",
            loss.name()
        );
        assert!(agree * 10 >= checked * 9, "{agree} of {checked}");
        assert!(worst <= 1e-5);
        // The reported training loss includes L_reg of the batch-mean counts.
        let reg: f64 = targets.evaluate(&mean).0;
        let eval = engine
            .run(t.weights(), &inputs, labels, Pass::Eval)
            .unwrap();
        assert!(((base.loss_sum - eval.loss_sum) / b - reg).abs() < 1e-12);
    }
}

#[test]
fn stepped_readout_weight_gradients_match_finite_differences() {
    // On the grid the readout losses are smooth in the readout weights (spikes do not
    // move): the stepped gradient of W_out is exact there, to ~1e-9.
    for loss in [LossKind::Sum, LossKind::SumExp { tau_w: None }] {
        let mut c = TrainConfig {
            train_size: 40,
            val_size: 10,
            test_size: 10,
            loss,
            ..TrainConfig::preset(EngineKind::Stepped)
        };
        c.network.readout_init_std = 1.0;
        let t = Trainer::new(c).unwrap();
        let set = &t.data().train;
        let inputs: Vec<&[_]> = set.samples[..16].iter().map(|s| s.as_slice()).collect();
        let labels = &set.labels[..16];
        let run = |w: &[Array2<f64>]| t.engine().run(w, &inputs, labels, Pass::Train).unwrap();
        let grads = run(t.weights()).grads.unwrap();
        let out = t.weights().len() - 1;
        let w = &t.weights()[out];
        for ((r, cc), &g) in grads[out].indexed_iter() {
            let f = |e: f64| {
                let mut moved = t.weights().to_vec();
                moved[out][[r, cc]] = w[[r, cc]] + e;
                run(&moved).loss_sum / inputs.len() as f64
            };
            let fd = central(&f, 1e-4);
            assert!((g - fd).abs() <= 1e-8 * g.abs().max(1e-3), "{g} vs {fd}");
        }
    }
}

/// `‖a - b‖ / ‖b‖` over all entries (0 when both vanish).
fn rel(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    let d: f64 = (a - b).iter().map(|x| x * x).sum::<f64>().sqrt();
    let n: f64 = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    if d == 0.0 {
        0.0
    } else {
        d / n
    }
}

#[test]
fn stepped_gradients_converge_to_the_exact_ones() {
    // Same network, weights and inputs on both engines; the stepped engine's error falls
    // about tenfold per tenfold smaller dt (first order, as the seed adjoint,
    // docs/stepped.md), for: the readout weights of sum and sum_exp, and every weight of
    // first_spike (= time) with rate targets (without the exact-only silent-label term).
    // The hidden layers below an integrator readout receive the seed pipeline's
    // spike-tensor gradient `dL/dz = dL/dy W_out` on the stepped engine, not `-dL/dt`
    // (docs/training.md), so their gradients of sum/sum_exp are not compared.
    let targets = RateTargets {
        upper_rate: 2.0,
        lower_rate: 1.0,
        upper_strength: 0.05,
        lower_strength: 0.3,
    };
    let mut fs = LossKind::defaults("time", EngineKind::Exact).unwrap();
    if let LossKind::FirstSpike {
        silent_label_gamma, ..
    } = &mut fs
    {
        *silent_label_gamma = 0.0;
    }
    for loss in [LossKind::Sum, LossKind::SumExp { tau_w: None }, fs] {
        let mut c = exact(loss, 10, Learn::default());
        if let LossKind::FirstSpike { .. } = loss {
            c.network.readout_init_mean = 0.93;
            c.network.readout_init_std = 0.1;
        }
        c.reg = targets;
        let t = Trainer::new(c.clone()).unwrap();
        let set = &t.data().train;
        let inputs: Vec<&[_]> = set.samples[..8].iter().map(|s| s.as_slice()).collect();
        let labels = &set.labels[..8];
        let g_exact = t
            .engine()
            .run(t.weights(), &inputs, labels, Pass::Train)
            .unwrap()
            .grads
            .unwrap();
        let mut errs = Vec::new();
        for dt in [1e-5, 1e-6] {
            let mut s = c.clone();
            s.engine = EngineKind::Stepped;
            s.encoding.dt = dt;
            s.memory_limit_gib = 64.0;
            let stepped = s.engine().unwrap();
            let g = stepped
                .run(t.weights(), &inputs, labels, Pass::Train)
                .unwrap()
                .grads
                .unwrap();
            let e: Vec<f64> = g.iter().zip(&g_exact).map(|(a, b)| rel(a, b)).collect();
            eprintln!(
                "{} dt {dt:e}: relative error per weight matrix {e:?}",
                loss.name()
            );
            errs.push(e);
        }
        let compared = match loss {
            LossKind::FirstSpike { .. } => 0..g_exact.len(),
            _ => g_exact.len() - 1..g_exact.len(),
        };
        for k in compared {
            if errs[0][k] == 0.0 && errs[1][k] == 0.0 {
                continue; // both exactly zero (e.g. no output spike reached the loss)
            }
            assert!(errs[1][k] < 0.3 * errs[0][k], "{errs:?}");
            assert!(errs[1][k] < 2e-2, "{errs:?}");
        }
    }
}

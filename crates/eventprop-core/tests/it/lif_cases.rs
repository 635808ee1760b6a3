//! Hand-checkable cases of the LIF neuron: closed-form spike times under a constant
//! current, the single-spike threshold edge, a silent neuron and the adjoint's guards.

use crate::common;

use eventprop_core::{
    synapse_backward, synapse_forward, Discretization, EventPropNeuron, GuardStats, LifParams,
};
use ndarray::{Array2, Array3};

/// `tau_syn` so large that `1 - dt/tau_syn` rounds to exactly 1.0 (`dt/tau_syn ~ 1e-26`,
/// far below half an ulp of 1): a current written once is then held exactly.
const TAU_HOLD: f64 = 1e20;

/// Indices `t` with `z[t] = 1` of neuron `(b, n) = (0, 0)`.
fn spike_steps(z: &Array3<f64>) -> Vec<usize> {
    (0..z.dim().0).filter(|&t| z[[t, 0, 0]] == 1.0).collect()
}

/// Constant current `I0` (held exactly, see `TAU_HOLD`): with `u = v - leak`, the stepped
/// forward gives `I0 - u[m+1] = (1 - k)(I0 - u[m])`, `k = dt/tau_mem`, so from a start
/// `u_0` the first step with `u > theta = threshold - leak` is
/// `n = floor(ln((I0 - theta)/(I0 - u_0)) / ln(1 - k)) + 1`. The ODE of docs/spec.md §4 gives
/// `t* = tau_mem ln((I0 - u_0)/(I0 - theta))`; forward Euler crosses earlier by about
/// `t*/(2 tau_mem)` steps, so `|n dt - t*| < dt` while `t* < 2 tau_mem`.
#[test]
fn constant_current_spike_times_match_closed_form() {
    // (I0, leak, reset, threshold): t*/tau_mem = ln 2 = 0.69, ln 3 = 1.10, ln(1.25/0.45) = 1.02.
    let cases: [(f64, f64, f64, f64); 3] = [
        (2.0, 0.0, 0.0, 1.0),
        (1.5, -0.2, -0.5, 0.8),
        (1.25, 0.1, -0.2, 0.9),
    ];
    let (dt, tau_mem, steps): (f64, f64, usize) = (1e-7, 10e-6, 1000);
    let k = dt / tau_mem;
    for (i0, leak, reset, threshold) in cases {
        let theta = threshold - leak;
        let steps_to_cross = |u0: f64| {
            let real = ((i0 - theta) / (i0 - u0)).ln() / (1.0 - k).ln();
            assert!(
                (real - real.round()).abs() > 1e-6,
                "case too close to a step boundary"
            );
            real.floor() as usize + 1
        };
        let t_star = |u0: f64| tau_mem * ((i0 - u0) / (i0 - theta)).ln();
        let first = steps_to_cross(0.0);
        let period = steps_to_cross(reset - leak);
        // The current enters at x[0] and is i[1..] = I0 from step 1 on; the membrane's
        // first update (step 0 -> 1) already sees it, so step m is m updates after rest.
        let mut x = Array3::<f64>::zeros((steps, 1, 1));
        x[[0, 0, 0]] = i0;
        let neuron = EventPropNeuron {
            params: LifParams::scalar(leak, reset, threshold, TAU_HOLD, tau_mem),
            dt,
            discretization: Discretization::Seed,
        };
        let out = neuron.forward(x.view(), None).unwrap().into_output();
        assert!(
            out.current.iter().skip(1).all(|&i| i == i0),
            "current not held"
        );
        let expected: Vec<usize> = (0..)
            .map(|m| first + m * period)
            .take_while(|&t| t < steps)
            .collect();
        assert!(expected.len() >= 3, "want several spikes");
        assert_eq!(
            spike_steps(&out.spikes),
            expected,
            "case {:?}",
            (i0, leak, reset, threshold)
        );
        // Closed form of the membrane before the first spike: u[m] = I0 (1 - (1-k)^m).
        for m in 0..first {
            let u = i0 * (1.0 - (1.0 - k).powi(m as i32));
            assert!(
                (out.membrane[[m, 0, 0]] - leak - u).abs() < 1e-12,
                "membrane at step {m}"
            );
        }
        // Continuous-time spike times within one step.
        let t1 = t_star(0.0);
        let isi = t_star(reset - leak);
        assert!(t1 < 2.0 * tau_mem && isi < 2.0 * tau_mem);
        assert!(
            (first as f64 * dt - t1).abs() < dt,
            "first spike {first} vs t* = {t1:e}"
        );
        assert!(
            (period as f64 * dt - isi).abs() < dt,
            "interval {period} vs {isi:e}"
        );
    }
}

/// Runs one input spike at step 5 with weight `w` through the synapse into one neuron.
fn single_input(w: f64, params: &LifParams<f64>, dt: f64, steps: usize) -> Array3<f64> {
    let mut x = Array3::<f64>::zeros((steps, 1, 1));
    x[[5, 0, 0]] = 1.0;
    let y = synapse_forward(x.view(), Array2::from_elem((1, 1), w).view()).unwrap();
    let neuron = EventPropNeuron {
        params: params.clone(),
        dt,
        discretization: Discretization::Seed,
    };
    neuron.forward(y.view(), None).unwrap().into_output().spikes
}

/// The single-spike threshold weight: below threshold the forward is linear in `w`, so
/// the discrete PSP peak `P` of `w = 1` (run with an unreachable threshold) gives
/// `w_crit = (threshold - leak) / P`. `w_crit (1 - 1e-9)` and `0.999 w_crit` give no spike,
/// `1.001 w_crit` exactly one (after the reset the remaining current `I < w_crit` cannot
/// lift the membrane to `threshold` again, since the PSP peak per unit current is < 1).
#[test]
fn threshold_edge_no_spike_below_one_spike_above() {
    let dt = 1e-7;
    let steps = 600; // 60 µs, several time constants past the peak
    for (leak, threshold, tau_syn, tau_mem) in [
        (0.0, 1.0, 5e-6, 10e-6),
        (-0.3, 0.7, 6e-6, 6e-6),
        (0.2, 1.1, 8e-6, 4e-6),
    ] {
        let mut x = Array3::<f64>::zeros((steps, 1, 1));
        x[[5, 0, 0]] = 1.0;
        let probe = EventPropNeuron {
            params: LifParams::scalar(leak, leak, 1e300, tau_syn, tau_mem),
            dt,
            discretization: Discretization::Seed,
        };
        let v = probe
            .forward(x.view(), None)
            .unwrap()
            .into_output()
            .membrane;
        let peak = v.iter().map(|&v| v - leak).fold(f64::MIN, f64::max);
        // The discrete peak approaches the docs/spec.md §4 closed-form maximum of K as dt -> 0.
        let k_max = common::psp_kernel(common::psp_peak_time(tau_syn, tau_mem), tau_syn, tau_mem);
        let rel = (peak - k_max).abs() / k_max;
        assert!(
            rel < 2.0 * dt / tau_syn.min(tau_mem),
            "discrete peak {peak} vs closed form {k_max}"
        );
        let w_crit = (threshold - leak) / peak;
        let params = LifParams::scalar(leak, leak, threshold, tau_syn, tau_mem);
        for below in [w_crit * (1.0 - 1e-9), w_crit * 0.999] {
            assert_eq!(
                single_input(below, &params, dt, steps).sum(),
                0.0,
                "w = {below} must stay silent"
            );
        }
        let spikes = single_input(w_crit * 1.001, &params, dt, steps);
        assert_eq!(
            spikes.sum(),
            1.0,
            "w = 1.001 w_crit must spike exactly once"
        );
    }
}

/// A neuron that never spikes has `z = 0` everywhere, so `out = jump = 0` and `lambda_v`
/// stays 0 whatever `grad_spikes` holds: the weight gradient is exactly zero.
#[test]
fn silent_neuron_has_zero_weight_gradient() {
    let mut rng = common::rng(11);
    let (t_len, b_len, n_in, n) = (60, 4, 6, 5);
    let x = common::bernoulli3(&mut rng, (t_len, b_len, n_in), 0.1);
    let w = common::uniform2(&mut rng, (n, n_in), 0.0, 0.05);
    let y = synapse_forward(x.view(), w.view()).unwrap();
    for disc in [Discretization::Seed, Discretization::Corrected] {
        let neuron = EventPropNeuron {
            params: LifParams::default(),
            dt: 1e-6,
            discretization: disc,
        };
        let ctx = neuron.forward(y.view(), None).unwrap();
        assert_eq!(
            ctx.output().spikes.sum(),
            0.0,
            "precondition: the layer is silent"
        );
        let grad_spikes = common::uniform3(&mut rng, (t_len, b_len, n), -1.0, 1.0);
        let grad = ctx.backward(grad_spikes.view(), None, None).unwrap();
        assert_eq!(grad.stats, GuardStats::default());
        assert!(grad.grad_input.iter().all(|&g| g == 0.0));
        let gw = synapse_backward(x.view(), w.view(), grad.grad_input.view(), true).unwrap();
        assert!(gw.weight.iter().all(|&g| g == 0.0));
        assert!(gw.input.unwrap().iter().all(|&g| g == 0.0));
    }
}

/// A deliberately constructed `dv_m = 0`: `leak = 0`, `threshold = 1`, and a held current
/// (see `TAU_HOLD`) of exactly 1, except `i[6] = 11` which drives a single spike at step 6:
/// `x[0] = 1` gives `i[1..=5] = 1`, `x[5] = 10` gives `i[6] = 11`, `x[6] = -10` gives
/// `i[7..] = 1`. With `k_mem = 0.1`, `v[5] = 1 - 0.9^5`, and step 6 has
/// `u = 0.9 v[5] + 1.1 > 1` (spike); elsewhere `v = 1 - 0.9^m` never exceeds 1.
#[test]
fn guard_counts_at_zero_dv_m() {
    let steps = 20;
    let mut x = Array3::<f64>::zeros((steps, 1, 1));
    x[[0, 0, 0]] = 1.0;
    x[[5, 0, 0]] = 10.0;
    x[[6, 0, 0]] = -10.0;
    let mut grad_spikes = Array3::<f64>::zeros((steps, 1, 1));
    grad_spikes[[6, 0, 0]] = -1.0;
    let run = |disc| {
        let neuron = EventPropNeuron {
            params: LifParams::scalar(0.0, 0.0, 1.0, TAU_HOLD, 10e-6),
            dt: 1e-6,
            discretization: disc,
        };
        let ctx = neuron.forward(x.view(), None).unwrap();
        assert_eq!(
            spike_steps(&ctx.output().spikes),
            vec![6],
            "precondition: one spike at step 6"
        );
        ctx.backward(grad_spikes.view(), None, None).unwrap()
    };

    // Seed: i* = i[t-1], which is exactly 1 (dv_m = 0 - 1 + 1 = 0) for t-1 in {1..5, 7..18},
    // i.e. t in {2..6} ∪ {8..19}: 5 + 12 = 17 steps. At the 16 steps without a spike
    // out = 0*g/0 and jump = 0*1/0 are NaN (0/0); at the spike (t = 6) out = -1/0 and
    // jump = 1/0 are infinite. Both terms are guarded at all 17; one of them is a spike.
    let seed = run(Discretization::Seed);
    assert_eq!(
        seed.stats,
        GuardStats {
            nonfinite_out: 17,
            nonfinite_jump: 17,
            guarded_spikes: 1
        }
    );
    // The guarded spike was the only source of gradient: all of it is dropped.
    assert!(seed.grad_input.iter().all(|&g| g == 0.0));

    // Corrected: i* = i[t], exactly 1 for t in {1..5} ∪ {7..19}: 5 + 13 = 18 steps, none of
    // them a spike; at the spike i[6] = 11, dv_m = 10, so the gradient survives:
    // lambda_v[5] = out = -1/10 (lambda_v[6] = 0 removes the jump term), lambda_i[5] = 0.
    let corr = run(Discretization::Corrected);
    assert_eq!(
        corr.stats,
        GuardStats {
            nonfinite_out: 18,
            nonfinite_jump: 18,
            guarded_spikes: 0
        }
    );
    assert_eq!(corr.grad_input[[1, 5, 0, 0]], -1.0 / 10.0);
    assert_eq!(corr.grad_input[[0, 5, 0, 0]], 0.0);
    assert!(
        corr.grad_input[[0, 4, 0, 0]] < 0.0,
        "lambda_i picks up lambda_v below the spike"
    );
}

//! Convergence of the time-stepped EventProp weight gradient to the exact spike-time
//! derivative of SPEC §4 as `dt → 0`, for both adjoint discretisations.
//!
//! Set-up: one input neuron spikes once at `t_in = 1 µs` (a single 1 in `x` at step
//! `round(t_in/dt)`), the weight `w` carries it through the synapse into the LIF current;
//! the loss is the LIF neuron's first spike time, `L = t*`. Per SPEC §3 the neuron receives
//! `grad_spikes = -dL/dt_k = -1` at its first spike step, and the synapse's weight
//! gradient is then `+dL/dw = dt*/dw`, which SPEC §4 gives in closed form (implicit
//! function theorem, see `common::spike_time_derivative`).

mod common;

use eventprop_core::{
    synapse_backward, synapse_forward, Discretization, EventPropNeuron, LifParams,
};
use ndarray::{Array2, Array3};

const T_IN: f64 = 1e-6;
const T_WINDOW: f64 = 30e-6;

/// EventProp weight gradient of `L = t*` for one input spike of weight `w`.
fn eventprop_dtdw(w: f64, tau_syn: f64, tau_mem: f64, dt: f64, disc: Discretization) -> f64 {
    let steps = (T_WINDOW / dt).round() as usize;
    let mut x = Array3::<f64>::zeros((steps, 1, 1));
    x[[(T_IN / dt).round() as usize, 0, 0]] = 1.0;
    let weight = Array2::from_elem((1, 1), w);
    let y = synapse_forward(x.view(), weight.view()).unwrap();
    let neuron = EventPropNeuron {
        params: LifParams::scalar(0.0, 0.0, 1.0, tau_syn, tau_mem),
        dt,
        discretization: disc,
    };
    let ctx = neuron.forward(y.view(), None).unwrap();
    let spikes = &ctx.output().spikes;
    let first = spikes
        .iter()
        .position(|&z| z == 1.0)
        .expect("the neuron must spike");
    let mut grad_spikes = Array3::<f64>::zeros(spikes.dim());
    // SPEC §3: grad_spikes holds -dL/dt_k; dL/dt_k = 1 for L = t*.
    grad_spikes[[first, 0, 0]] = -1.0;
    let grad = ctx.backward(grad_spikes.view(), None, None).unwrap();
    assert_eq!(
        grad.stats,
        Default::default(),
        "no guard may fire in this set-up"
    );
    synapse_backward(x.view(), weight.view(), grad.grad_input.view(), false)
        .unwrap()
        .weight[[0, 0]]
}

const DTS: [f64; 7] = [1e-7, 3e-8, 1e-8, 3e-9, 1e-9, 3e-10, 1e-10];

/// Relative errors `|g(dt) - exact| / |exact|` over `DTS`, printed as a table.
fn error_table(
    name: &str,
    exact: f64,
    disc: Discretization,
    g: &impl Fn(f64, Discretization) -> f64,
) -> Vec<f64> {
    let errs: Vec<f64> = DTS
        .iter()
        .map(|&dt| (g(dt, disc) - exact).abs() / exact.abs())
        .collect();
    println!("{name} {disc}: exact dL/dw = {exact:.6e} s");
    for (dt, e) in DTS.iter().zip(&errs) {
        println!("  dt = {dt:.0e}  rel err = {e:.3e}");
    }
    errs
}

/// Asserts what was measured (tables in DESIGN.md; errors are first order in `dt`, with a
/// jitter from where the exact crossing falls inside a step):
/// - Corrected: the error falls monotonically over `DTS` and is < 1e-4 at `dt = 1e-10`
///   (measured 3.4e-5 to 6.0e-5);
/// - Seed: it converges as well (> 100x smaller from `1e-7` to `1e-10`, < 2e-4 at the
///   smallest `dt`; measured 6.8e-5 to 9.0e-5), but its error is larger than the
///   Corrected one at every `dt` measured (its jump terms use `i[t-1]`, the current one
///   step before the one that drove the crossing: an extra O(dt) error).
fn check_convergence(name: &str, exact: f64, g: impl Fn(f64, Discretization) -> f64) {
    let seed = error_table(name, exact, Discretization::Seed, &g);
    let corr = error_table(name, exact, Discretization::Corrected, &g);
    for pair in corr.windows(2) {
        assert!(
            pair[1] < pair[0],
            "{name}: Corrected error must fall with dt: {corr:?}"
        );
    }
    let last = DTS.len() - 1;
    assert!(
        corr[last] < 1e-4,
        "{name}: Corrected error at dt = 1e-10: {}",
        corr[last]
    );
    assert!(
        seed[last] < 2e-4,
        "{name}: Seed error at dt = 1e-10: {}",
        seed[last]
    );
    assert!(
        seed[0] > 100.0 * seed[last],
        "{name}: Seed error must converge: {seed:?}"
    );
    for (k, (s, c)) in seed.iter().zip(&corr).enumerate() {
        assert!(
            s > c,
            "{name}: at dt = {:e} Seed error {s:e} <= Corrected {c:e}",
            DTS[k]
        );
    }
}

fn check_case(name: &str, w: f64, tau_syn: f64, tau_mem: f64) {
    let exact = common::spike_time_derivative(w, 1.0, tau_syn, tau_mem).unwrap();
    check_convergence(name, exact, |dt, disc| {
        eventprop_dtdw(w, tau_syn, tau_mem, dt, disc)
    });
}

#[test]
fn gradient_converges_tau_mem_ne_tau_syn() {
    check_case("tau_syn=5us tau_mem=10us w=6", 6.0, 5e-6, 10e-6);
}

#[test]
fn gradient_converges_tau_mem_eq_tau_syn() {
    check_case("tau_syn=tau_mem=6us w=3.5", 3.5, 6e-6, 6e-6);
}

/// Two layers in a chain: input spike → `w1` → hidden neuron → `w2` → output neuron, with
/// `L = t_out` (first output spike). In the continuous model the output spike follows the
/// hidden one by a delay that depends on `w2` only, so `dL/dw1 = dt_h/dw1` (SPEC §4 closed
/// form of the hidden neuron). The hidden neuron's `grad_spikes` is the output synapse's
/// input gradient `W2^T (lambda_v - lambda_i)` (SPEC §3), so this checks that the
/// previous layer receives `-dL/dt_h` with the right sign and scale.
fn chain_dldw1(w1: f64, w2: f64, tau_syn: f64, tau_mem: f64, dt: f64, disc: Discretization) -> f64 {
    let steps = (2.0 * T_WINDOW / dt).round() as usize;
    let mut x = Array3::<f64>::zeros((steps, 1, 1));
    x[[(T_IN / dt).round() as usize, 0, 0]] = 1.0;
    let neuron = EventPropNeuron {
        params: LifParams::scalar(0.0, 0.0, 1.0, tau_syn, tau_mem),
        dt,
        discretization: disc,
    };
    let (w1a, w2a) = (Array2::from_elem((1, 1), w1), Array2::from_elem((1, 1), w2));
    let hidden = neuron
        .forward(synapse_forward(x.view(), w1a.view()).unwrap().view(), None)
        .unwrap();
    let z_h = hidden.output().spikes.clone();
    assert_eq!(z_h.sum(), 1.0, "one hidden spike");
    let output = neuron
        .forward(
            synapse_forward(z_h.view(), w2a.view()).unwrap().view(),
            None,
        )
        .unwrap();
    let first = output
        .output()
        .spikes
        .iter()
        .position(|&z| z == 1.0)
        .expect("output spikes");
    let mut grad_out = Array3::<f64>::zeros((steps, 1, 1));
    grad_out[[first, 0, 0]] = -1.0; // -dL/dt_out
    let g_out = output.backward(grad_out.view(), None, None).unwrap();
    let to_hidden = synapse_backward(z_h.view(), w2a.view(), g_out.grad_input.view(), true)
        .unwrap()
        .input
        .unwrap();
    let g_h = hidden.backward(to_hidden.view(), None, None).unwrap();
    synapse_backward(x.view(), w1a.view(), g_h.grad_input.view(), false)
        .unwrap()
        .weight[[0, 0]]
}

#[test]
fn two_layer_chain_gradient_converges() {
    let (w1, w2, tau_syn, tau_mem) = (6.0, 6.0, 5e-6, 10e-6);
    let exact = common::spike_time_derivative(w1, 1.0, tau_syn, tau_mem).unwrap();
    check_convergence(
        "chain w1=w2=6 tau_syn=5us tau_mem=10us",
        exact,
        |dt, disc| chain_dldw1(w1, w2, tau_syn, tau_mem, dt, disc),
    );
}

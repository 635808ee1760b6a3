//! Error tables of the time-stepped core against the exact event-based mode as `dt`
//! shrinks, on the 3-4-2 network of `tests/it/stepped_agreement.rs`:
//! max spike-time error per layer (Corrected forward) and the relative weight-gradient
//! error `||g_dt - g_exact||_F / ||g_exact||_F` for the Seed and Corrected adjoints
//! (loss: sum of output spike times).
//!
//! `cargo run --release -p eventprop-exact --example dt_table`

#[path = "../tests/it/common/stepped.rs"]
mod stepped;

use eventprop_core::Discretization;
use eventprop_exact::{loss, SolverConfig};
use stepped::{max_time_error, network, rel_error, run_stepped, T_MAX};

fn main() {
    for (tau_syn, tau_mem, w1_scale) in [(5e-6, 10e-6, 1.0), (6e-6, 6e-6, 0.6)] {
        let (net, input) = network(tau_syn, tau_mem, w1_scale);
        let cfg = SolverConfig::default();
        let trace = net.forward(&input, T_MAX, &cfg).expect("forward");
        let exact = trace
            .backward(&net, &loss::spike_time_sum(trace.output()).dl_dt, &cfg)
            .expect("backward");
        println!(
            "\ntau_syn = {tau_syn:e} s, tau_mem = {tau_mem:e} s, spikes per layer {:?}",
            trace.spike_counts()
        );
        println!("| dt (s) | max dt_spike L1 | max dt_spike L2 | rel. grad error Seed | rel. grad error Corrected |");
        println!("|---|---|---|---|---|");
        for dt in [1e-6, 5e-7, 2e-7, 1e-7, 5e-8, 2e-8, 1e-8, 5e-9, 2e-9, 1e-9] {
            let corr = run_stepped(&net, &input, T_MAX, dt, Discretization::Corrected);
            let seed = run_stepped(&net, &input, T_MAX, dt, Discretization::Seed);
            let terr: Vec<String> = (1..trace.n_layers())
                .map(|k| {
                    match max_time_error(trace.spikes(k), &corr.spikes[k - 1], net.sizes()[k]) {
                        Some(e) => format!("{e:.2e}"),
                        None => "counts differ".into(),
                    }
                })
                .collect();
            println!(
                "| {dt:.0e} | {} | {} | {:.3e} | {:.3e} |",
                terr[0],
                terr[1],
                rel_error(&seed.grads, &exact.weights),
                rel_error(&corr.grads, &exact.weights)
            );
        }
    }
}

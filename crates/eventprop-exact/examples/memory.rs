//! Peak heap memory of one forward + backward (loss: sum of output spike times) of a
//! 5-200-3 network on one sample with few spikes, for growing windows `T`: the exact
//! event-based mode (weight gradients; with the per-neuron parameter gradients too; and a
//! recurrent, delayed variant of the network with all gradients) against the time-stepped
//! core (`Corrected`, `dt = 0.1 ms`).
//! A counting global allocator records the peak of live heap bytes.
//!
//! `cargo run --release -p eventprop-exact --example memory`

#[path = "../tests/it/common/stepped.rs"]
mod stepped;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use eventprop_core::Discretization;
use eventprop_exact::{loss, Lif, Network, SolverConfig, Spike};
use ndarray::Array2;
use rand::{Rng, SeedableRng};

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwards to the system allocator with the caller's layout.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn measure(f: impl FnOnce() -> usize) -> (usize, usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let spikes = f();
    (PEAK.load(Ordering::Relaxed) - base, spikes)
}

fn main() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let p = Lif::default();
    let w0 = Array2::from_shape_fn((200, 5), |_| rng.random_range(0.0..4.0));
    let w1 = Array2::from_shape_fn((3, 200), |_| rng.random_range(0.0..0.3));
    let net = Network::new(vec![w0.clone(), w1.clone()], vec![p; 2]).expect("valid");
    let full = net
        .clone()
        .with_recurrent(
            0,
            Array2::from_shape_fn((200, 200), |_| rng.random_range(-0.05..0.05)),
        )
        .and_then(|n| {
            n.with_delays(
                0,
                Array2::from_shape_fn((200, 5), |_| rng.random_range(0.0..2e-3)),
            )
        })
        .and_then(|n| {
            n.with_delays(
                1,
                Array2::from_shape_fn((3, 200), |_| rng.random_range(0.0..2e-3)),
            )
        })
        .expect("valid");
    let input: Vec<Spike> = (0..5)
        .map(|j| Spike {
            time: 1e-3 * (1 + 2 * j) as f64,
            neuron: j,
        })
        .collect();
    let cfg = SolverConfig::default();
    let with_params = SolverConfig {
        parameter_gradients: true,
        ..cfg
    };
    let dt = 1e-4;
    println!("| window T (s) | steps T/dt | spikes | exact peak heap | + parameter gradients | recurrent + delays + all gradients (spikes) | stepped peak heap (dt = 0.1 ms) |");
    println!("|---|---|---|---|---|---|---|");
    let exact_run = |net: &Network, t_max: f64, cfg: &SolverConfig| {
        measure(|| {
            let trace = net.forward(&input, t_max, cfg).expect("forward");
            let g = trace
                .backward(net, &loss::spike_time_sum(trace.output()).dl_dt, cfg)
                .expect("backward");
            std::hint::black_box(&g);
            trace.spike_counts().iter().sum()
        })
    };
    for t_max in [0.05, 0.5, 5.0, 20.0] {
        let (exact, spikes) = exact_run(&net, t_max, &cfg);
        let (params, _) = exact_run(&net, t_max, &with_params);
        let (all, all_spikes) = exact_run(&full, t_max, &with_params);
        let (stepped, _) = measure(|| {
            let s = stepped::run_stepped(&net, &input, t_max, dt, Discretization::Corrected);
            std::hint::black_box(&s.grads);
            s.spikes.iter().map(Vec::len).sum()
        });
        println!(
            "| {t_max} | {} | {spikes} | {:.1} KiB | {:.1} KiB | {:.1} KiB ({all_spikes}) | {:.1} MiB |",
            (t_max / dt).round() as usize + 1,
            exact as f64 / 1024.0,
            params as f64 / 1024.0,
            all as f64 / 1024.0,
            stepped as f64 / (1024.0 * 1024.0)
        );
    }
}

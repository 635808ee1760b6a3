//! Neuron-steps per second of the LIF forward and backward, and of a whole first-layer
//! training pass through the seed function and through the fused layer, at the three named
//! sizes (`eventprop_core::workload::SIZES`), in f32.
//!
//! `cargo bench -p eventprop-core` (the SHD-like size takes a few seconds per sample).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use eventprop_core::workload::{Workload, SIZES};
use eventprop_core::SynapseInput;
use ndarray::Array2;

fn kernels(c: &mut Criterion) {
    let mut group = c.benchmark_group("lif");
    group.sample_size(10);
    for size in SIZES {
        let w = Workload::<f32>::new(size, 0);
        let dense = w.dense();
        let current = SynapseInput::new(dense.spikes_in.view())
            .and_then(|x| x.forward(w.weight.view()))
            .expect("valid workload");
        group.throughput(Throughput::Elements(size.neuron_steps()));
        group.bench_with_input(BenchmarkId::new("forward", size.name), &current, |b, x| {
            b.iter(|| w.neuron.forward(x.view(), None).expect("valid"))
        });
        let ctx = w.neuron.forward(current.view(), None).expect("valid");
        group.bench_with_input(BenchmarkId::new("backward", size.name), &ctx, |b, ctx| {
            b.iter(|| {
                ctx.backward(dense.grad_spikes.view(), None, None)
                    .expect("valid")
            })
        });
        let reference = w.pass(&dense).expect("valid").grad_weight;
        group.bench_with_input(BenchmarkId::new("training_pass", size.name), &w, |b, w| {
            b.iter(|| {
                let r = w.pass(&dense).expect("valid");
                // Correctness inside the timed loop: the pass is deterministic.
                assert_eq!(r.grad_weight, reference);
                r
            })
        });
        let mut layer = w.fused_layer().expect("valid");
        let mut gw = Array2::zeros(w.weight.dim());
        w.pass_fused(&mut layer, &mut gw).expect("valid");
        let fused_reference = gw.clone();
        group.bench_with_input(BenchmarkId::new("fused_pass", size.name), &w, |b, w| {
            b.iter(|| {
                w.pass_fused(&mut layer, &mut gw).expect("valid");
                assert_eq!(gw, fused_reference);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);

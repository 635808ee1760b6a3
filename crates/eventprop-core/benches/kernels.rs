//! Neuron-steps per second of the LIF forward and backward, and of a whole first-layer
//! training pass, at the three named sizes (`eventprop_core::workload::SIZES`), in f32.
//!
//! `cargo bench -p eventprop-core` (the SHD-like size takes a few seconds per sample).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use eventprop_core::workload::{Workload, SIZES};
use eventprop_core::SynapseInput;

fn kernels(c: &mut Criterion) {
    let mut group = c.benchmark_group("lif");
    group.sample_size(10);
    for size in SIZES {
        let w = Workload::<f32>::new(size, 0);
        let current = SynapseInput::new(w.spikes_in.view())
            .and_then(|x| x.forward(w.weight.view()))
            .expect("valid workload");
        group.throughput(Throughput::Elements(size.neuron_steps()));
        group.bench_with_input(BenchmarkId::new("forward", size.name), &current, |b, x| {
            b.iter(|| w.neuron.forward(x.view(), None).expect("valid"))
        });
        let ctx = w.neuron.forward(current.view(), None).expect("valid");
        group.bench_with_input(BenchmarkId::new("backward", size.name), &ctx, |b, ctx| {
            b.iter(|| {
                ctx.backward(w.grad_spikes.view(), None, None)
                    .expect("valid")
            })
        });
        let reference = w.pass().expect("valid").grad_weight;
        group.bench_with_input(BenchmarkId::new("training_pass", size.name), &w, |b, w| {
            b.iter(|| {
                let r = w.pass().expect("valid");
                // Correctness inside the timed loop: the pass is deterministic.
                assert_eq!(r.grad_weight, reference);
                r
            })
        });
    }
    group.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);

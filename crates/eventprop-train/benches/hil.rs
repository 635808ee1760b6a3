//! Hardware in the loop against software: training passes (forward, loss, backward; in
//! batches of the preset's batch size) over 1000 Yin-Yang samples on the stepped engine, on
//! the chip engine with the mock chip (calibrated, default non-idealities: what `train
//! yinyang --chip mock` runs per batch), the mock chip's forward alone on the 1000
//! samples, and the host side of the HIL training pass alone (recordings made beforehand
//! mapped onto the grid, loss and EventProp adjoint: `mock_train` less the chip's runs).
//! The ratio of the first two is the HIL overhead of training.
//!
//! `cargo bench -p eventprop-train --bench hil`
//!
//! With the command-line tool's allocator (mimalloc), so that the times are those of `train`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use eventprop_train::data::Spike;
use eventprop_train::engine::chip::ChipEngine;
use eventprop_train::engine::{Engine, Pass};
use eventprop_train::{yinyang, EngineKind, TrainConfig, Trainer};

/// The allocator of the `eventprop` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SAMPLES: usize = 1000;

fn hil(c: &mut Criterion) {
    // weights after one software epoch on 1000 samples: a network that fires as in training
    let mut soft = TrainConfig::preset(EngineKind::Stepped);
    soft.train_size = SAMPLES;
    soft.val_size = 0;
    soft.test_size = 0;
    soft.epochs = 1;
    let mut t = Trainer::new(soft.clone()).expect("valid config");
    t.run_epoch(&mut |_| {}).expect("trains");
    let weights = t.weights().to_vec();
    let chip_cfg = TrainConfig::preset(EngineKind::Chip);
    let set = yinyang::encode(&yinyang::generate(SAMPLES, 11), &chip_cfg.encoding);
    let inputs: Vec<&[Spike]> = set.samples.iter().map(Vec::as_slice).collect();

    let mut group = c.benchmark_group("hil");
    group.sample_size(10);
    group.throughput(Throughput::Elements(SAMPLES as u64));
    let software = soft.engine().expect("stepped engine");
    let batches = |engine: &dyn Engine| {
        for (x, y) in inputs
            .chunks(soft.batch_size)
            .zip(set.labels.chunks(soft.batch_size))
        {
            engine.run(&weights, x, y, Pass::Train).expect("runs");
        }
    };
    group.bench_function("software_train", |b| b.iter(|| batches(&*software)));
    let chip = ChipEngine::new(&chip_cfg.engine_settings()).expect("mock chip engine");
    group.bench_function("mock_train", |b| b.iter(|| batches(&chip)));
    let mock = chip.chip();
    let configured = mock.configure(&weights).expect("valid weights");
    group.bench_function("mock_forward", |b| {
        b.iter(|| mock.run(&configured, &inputs).expect("runs"))
    });
    let recorded: Vec<_> = inputs
        .chunks(soft.batch_size)
        .map(|x| mock.run(&configured, x).expect("runs"))
        .collect();
    group.bench_function("hil_map", |b| {
        b.iter(|| {
            for r in &recorded {
                chip.grid_map().map_events(r).expect("maps");
            }
        })
    });
    group.bench_function("hil_host", |b| {
        b.iter(|| {
            for ((x, y), r) in inputs
                .chunks(soft.batch_size)
                .zip(set.labels.chunks(soft.batch_size))
                .zip(&recorded)
            {
                chip.run_recorded(&weights, x, y, Pass::Train, &configured, r)
                    .expect("runs");
            }
        })
    });
    group.finish();
}

criterion_group!(benches, hil);
criterion_main!(benches);

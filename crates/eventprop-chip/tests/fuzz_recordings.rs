//! Fuzzer of the recording reader ([`record_file::load_npz`]): recordings written by
//! [`record_file::save_npz`] (spikes only, and spikes with membrane traces), with
//! byte-level edits, a fixed proptest seed and case count. Every input gives `Ok` or a
//! one-line `Err` naming the file, never a panic, and the reader holds a bounded amount of
//! memory (an entry can declare far more samples than the file holds).

use std::path::Path;

use eventprop_chip::record_file::{load_npz, save_npz};
use eventprop_chip::{LayerRecording, Recording, SampledTrace};
use eventprop_core::Spike;
use eventprop_testkit::{fuzz_loader, Counting};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Cases per run (a few seconds).
const CASES: u32 = 2000;

/// A recording of `samples` samples: a hidden layer of 4 and an output layer of 2, with
/// membrane traces of the output layer when `traces`.
fn recording(samples: usize, traces: bool) -> Recording {
    let spikes = |n: usize| -> Vec<Vec<Spike>> {
        (0..samples)
            .map(|b| {
                (0..n)
                    .map(|k| Spike {
                        time: 1e-6 * (b + k + 1) as f64,
                        neuron: k as u32,
                    })
                    .collect()
            })
            .collect()
    };
    let membrane = traces.then(|| {
        (0..samples)
            .map(|b| {
                (0..2)
                    .map(|k| SampledTrace {
                        times: vec![0.0, 1e-6, 2e-6],
                        values: vec![0.0, 0.1 * (b + k) as f64, -0.2],
                    })
                    .collect()
            })
            .collect()
    });
    Recording {
        layers: vec![
            LayerRecording {
                size: 4,
                spikes: spikes(4),
                membrane: None,
            },
            LayerRecording {
                size: 2,
                spikes: spikes(2),
                membrane,
            },
        ],
        samples,
    }
}

fn seeds(dir: &Path) -> Vec<Vec<u8>> {
    [recording(3, false), recording(2, true)]
        .iter()
        .enumerate()
        .map(|(k, rec)| {
            let path = dir.join(format!("seed{k}.npz"));
            save_npz(rec, &path).unwrap();
            assert_eq!(&load_npz(&path).unwrap(), rec, "the seed round-trips");
            std::fs::read(&path).unwrap()
        })
        .collect()
}

#[test]
fn mutated_files_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let seeds = seeds(dir.path());
    let path = dir.path().join("case");
    fuzz_loader("load_npz", &seeds, &path, CASES, |p| load_npz(p).map(drop));
}

//! Fuzzer of the recording reader ([`record_file::load_npz`]): recordings written by
//! [`record_file::save_npz`] (spikes only, and spikes with membrane traces), with
//! byte-level edits, a fixed proptest seed and case count. Every input gives `Ok` or a
//! one-line `Err` naming the file, never a panic, and the reader holds a bounded amount of
//! memory (an entry can declare far more samples than the file holds).

use std::path::Path;

use eventprop_chip::record_file::{self, load_npz, save_npz};
use eventprop_chip::{LayerRecording, Recording, SampledTrace};
use eventprop_core::Spike;
use eventprop_testkit::edits::{apply, byte_edit_with_u64, ByteEdit};
use eventprop_testkit::{no_panic, peak_bytes, runner, Counting, MIB};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

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

/// One mutated file loaded; `Ok(true)` when it loaded.
fn check(path: &Path, bytes: &[u8]) -> Result<bool, TestCaseError> {
    std::fs::write(path, bytes).unwrap();
    let (r, peak) = peak_bytes(|| no_panic("load_npz", || record_file::load_npz(path)));
    prop_assert!(
        peak <= 16 * bytes.len() + 16 * MIB,
        "loading {} bytes held {peak} bytes",
        bytes.len()
    );
    match r? {
        Ok(_) => Ok(true),
        Err(e) => {
            let s = e.to_string();
            prop_assert!(
                !s.contains('\n') && !s.is_empty(),
                "error not one line: {s:?}"
            );
            Ok(false)
        }
    }
}

#[test]
fn mutated_recordings_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let seeds = seeds(dir.path());
    let path = dir.path().join("case.npz");
    let strategy = (
        0..seeds.len(),
        prop::collection::vec(byte_edit_with_u64(), 1..6),
    );
    let (ok, err) = (std::cell::Cell::new(0u32), std::cell::Cell::new(0u32));
    runner(CASES)
        .run(&strategy, |(k, edits): (usize, Vec<ByteEdit>)| {
            let mut bytes = seeds[k].clone();
            for e in &edits {
                apply(&mut bytes, e);
            }
            let counter = if check(&path, &bytes)? { &ok } else { &err };
            counter.set(counter.get() + 1);
            Ok(())
        })
        .unwrap();
    let (ok, err) = (ok.get(), err.get());
    assert!(err > 0 && ok + err >= CASES, "ok {ok}, err {err}");
    eprintln!("recording fuzzer: {ok} loaded, {err} refused");
}

//! Fuzzer of the SHD/SSC HDF5 reader ([`shd::read_shd`]): the fixtures of `tests/data/shd`
//! (written by h5py) with bytes overwritten, truncated or duplicated, with a fixed proptest
//! seed and case count. Every input gives `Ok` or a one-line `Err`, never a panic.

use std::path::Path;

use eventprop_data::shd;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{RngAlgorithm, RngSeed, TestCaseError, TestRunner};

const SEED: u64 = 0x05D0_F022;
const CASES: u32 = 20_000;

#[derive(Debug, Clone)]
enum Mutation {
    /// Overwrite bytes at a position.
    Set(Index, Vec<u8>),
    /// Keep only the first part.
    Truncate(Index),
    /// Copy a range over another place (moves addresses and lengths around).
    Copy(Index, Index, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        6 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..9))
            .prop_map(|(i, b)| Mutation::Set(i, b)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        2 => (any::<Index>(), any::<Index>(), 1usize..64)
            .prop_map(|(a, b, n)| Mutation::Copy(a, b, n)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    match m {
        Mutation::Set(i, b) => {
            let at = i.index(bytes.len());
            for (k, &v) in b.iter().enumerate() {
                if at + k < bytes.len() {
                    bytes[at + k] = v;
                }
            }
        }
        Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len())),
        Mutation::Copy(a, b, n) => {
            let (from, to) = (a.index(bytes.len()), b.index(bytes.len()));
            let n = (*n).min(bytes.len() - from).min(bytes.len() - to);
            let chunk = bytes[from..from + n].to_vec();
            bytes[to..to + n].copy_from_slice(&chunk);
        }
    }
}

#[test]
fn mutated_shd_files_never_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/shd");
    let seeds: Vec<Vec<u8>> = ["f32_u16.h5", "f64be_u32.h5", "gzip_f64_u8.h5"]
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("fuzz.h5");
    let mut runner = TestRunner::new(ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(SEED),
        ..ProptestConfig::default()
    });
    runner
        .run(
            &(0..seeds.len(), prop::collection::vec(mutation(), 1..4)),
            |(s, muts)| {
                let mut bytes = seeds[s].clone();
                for m in &muts {
                    apply(&mut bytes, m);
                }
                std::fs::write(&path, &bytes).unwrap();
                let r = std::panic::catch_unwind(|| shd::read_shd(&path, 700, 20))
                    .map_err(|_| TestCaseError::fail("read_shd panicked"))?;
                if let Err(e) = r {
                    let msg = e.to_string();
                    prop_assert!(!msg.contains('\n') && !msg.is_empty(), "{msg}");
                }
                Ok(())
            },
        )
        .unwrap();
}

//! # eventprop-testkit
//!
//! What the fuzzers of the eventprop crates share (a dev-dependency only):
//!
//! * [`Counting`]: a global allocator that counts the net bytes the current thread holds
//!   and their peak ([`peak_bytes`]), and refuses single requests above [`HARD_LIMIT`];
//!   a test installs it with
//!   `#[global_allocator] static GLOBAL: eventprop_testkit::Counting = eventprop_testkit::Counting;`;
//! * [`runner`]: a proptest runner with the fixed seed [`SEED`], so runs are deterministic
//!   and bounded;
//! * [`corpus`]: the seed files of a corpus folder; [`no_panic`]: a panic as a test
//!   failure with its message;
//! * [`edits`]: byte-level mutations of a file.
#![deny(missing_docs)]

pub mod edits;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;

use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestCaseError, TestRunner};

/// A mebibyte.
pub const MIB: usize = 1 << 20;

/// Single requests above this are refused with null (the process aborts at once instead of
/// touching that much memory); the fuzzers' bounds are far below it.
pub const HARD_LIMIT: usize = 1 << 30;

/// The fuzzers' proptest seed.
pub const SEED: u64 = 0x0e7e_4a11_f022_2024;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let v = live.get() + delta;
        live.set(v);
        let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
    });
}

/// The counting global allocator (see the crate docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct Counting;

// SAFETY: every call is forwarded to `System` unchanged (or refused with null, which
// callers must handle); the counters are const-initialised thread locals of plain cells.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > HARD_LIMIT {
            return std::ptr::null_mut();
        }
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > HARD_LIMIT {
            return std::ptr::null_mut();
        }
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        note(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > HARD_LIMIT {
            return std::ptr::null_mut();
        }
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            note(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Runs `f`, returning its value and the peak of the bytes it held at once (this thread;
/// 0 unless [`Counting`] is the global allocator).
pub fn peak_bytes<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let value = f();
    let peak = PEAK.with(Cell::get) - base;
    (value, peak.max(0) as usize)
}

/// A proptest runner of `cases` cases with the fixed seed [`SEED`] and no failure files.
pub fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(SEED),
        max_shrink_iters: 4096,
        ..Config::default()
    })
}

/// The files of corpus folder `dir/kind` as `(name, bytes)`, sorted by name.
///
/// # Panics
/// If the folder cannot be read or is empty (a test set-up error).
pub fn corpus(dir: &Path, kind: &str) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.join(kind))
        .unwrap_or_else(|e| panic!("corpus {kind}: {e}"))
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "corpus {kind} is empty");
    files
}

/// A panic inside `f` as a test failure (proptest shrinks it), with its message.
///
/// # Errors
/// [`TestCaseError::Fail`] naming `what` and the panic's message.
pub fn no_panic<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        TestCaseError::fail(format!("{what} panicked: {msg}"))
    })
}

/// Runs `f` on a fresh rayon pool of `threads` threads (determinism tests compare results
/// across thread counts).
///
/// # Panics
/// If the pool cannot be built.
pub fn with_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a rayon pool")
        .install(f)
}

/// Fuzzes a file loader: `cases` copies of the `seeds` (chosen by the fixed-seed
/// [`runner`]), each with 1 to 5 byte edits ([`edits::byte_edit_with_u64`]), written to
/// `path` and passed to `load`. Every case must return without a panic, hold at most
/// 16 bytes per file byte plus 16 MiB at once (with [`Counting`] installed), and give `Ok`
/// or an error whose message is one line; some cases must be refused (the counts are
/// printed).
///
/// # Panics
/// When a case breaks one of those properties (the message names `what` and the case), or
/// `path` cannot be written.
pub fn fuzz_loader<E: std::fmt::Display>(
    what: &str,
    seeds: &[Vec<u8>],
    path: &Path,
    cases: u32,
    load: impl Fn(&Path) -> Result<(), E>,
) {
    use proptest::prelude::*;
    let strategy = (
        0..seeds.len(),
        prop::collection::vec(edits::byte_edit_with_u64(), 1..6),
    );
    let (ok, err) = (Cell::new(0u32), Cell::new(0u32));
    runner(cases)
        .run(&strategy, |(k, list)| {
            let mut bytes = seeds[k].clone();
            for e in &list {
                edits::apply(&mut bytes, e);
            }
            std::fs::write(path, &bytes).unwrap();
            let (r, peak) = peak_bytes(|| no_panic(what, || load(path)));
            prop_assert!(
                peak <= 16 * bytes.len() + 16 * MIB,
                "{what}: {} bytes held {peak} bytes",
                bytes.len()
            );
            let counter = match r? {
                Ok(()) => &ok,
                Err(e) => {
                    let s = e.to_string();
                    prop_assert!(
                        !s.contains('\n') && !s.is_empty(),
                        "{what}: error not one line: {s:?}"
                    );
                    &err
                }
            };
            counter.set(counter.get() + 1);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let (ok, err) = (ok.get(), err.get());
    // Both outcomes occur: the edits reach past the headers, and not every edit breaks the
    // file (the counts depend only on the fixed seed).
    assert!(err > 0 && ok + err >= cases, "{what}: ok {ok}, err {err}");
    eprintln!("{what}: {ok} read, {err} refused");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_panic_reports_the_message() {
        let e = no_panic("reader", || panic!("boom")).unwrap_err();
        assert!(e.to_string().contains("reader panicked: boom"), "{e}");
        assert_eq!(no_panic("reader", || 3).unwrap(), 3);
    }
}

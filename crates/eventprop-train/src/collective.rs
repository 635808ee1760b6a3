//! Data-parallel training across processes: the few collective operations the trainer
//! needs ([`Collective`]), one process ([`Single`]) and MPI (`Mpi`, behind the `mpi` feature).
//!
//! [`crate::Trainer::run_distributed`] calls them at four places (docs/scale-out.md):
//!
//! 1. every training batch: each rank runs the engine on its share of the global batch
//!    (a contiguous slice of the batch's shuffled order), the shares' gradients and
//!    counters are gathered and every rank sums them **in rank order**, so all ranks hold
//!    bit-identical sums and take the same Adam step; with spike-count targets (`[reg]`)
//!    the engines also gather the hidden neurons' spike counts between forward and
//!    backward ([`GlobalCounts`]), so the targets see the global batch's mean;
//! 2. evaluation: each rank runs a contiguous range of the evaluation batches, the per-batch
//!    results are gathered and summed in batch order (bit-identical to one process);
//! 3. files: rank 0 alone writes the run folder (and holds its lock);
//! 4. errors: a rank that fails ends every rank (`MPI_Abort` through [`Collective::abort`]);
//!    a rank that dies is ended by the launcher (`mpirun` ends the job when a process
//!    exits without finalising).
//!
//! The operations need no `Result`: MPI's default error handler ends the job on a failed
//! collective, and the trainer passes equal lengths on every rank by construction.

use crate::loss::BatchCounts;

/// The collective operations of data-parallel training.
pub trait Collective {
    /// This process's rank, `0..size()`.
    fn rank(&self) -> usize;

    /// The number of processes.
    fn size(&self) -> usize;

    /// Every rank's `local`, concatenated in rank order. Every rank must pass the same
    /// length.
    fn all_gather(&self, local: &[f64]) -> Vec<f64>;

    /// Rank 0's `bytes`, on every rank (the other ranks' contents are replaced).
    fn broadcast(&self, bytes: &mut Vec<u8>);

    /// Ends every process of the job with exit status `code` (after the caller has printed
    /// its message).
    fn abort(&self, code: i32) -> !;

    /// Whether this process writes the run folder (rank 0).
    fn is_root(&self) -> bool {
        self.rank() == 0
    }
}

/// One process: gathers and broadcasts are the identity.
#[derive(Debug, Clone, Copy, Default)]
pub struct Single;

impl Collective for Single {
    fn rank(&self) -> usize {
        0
    }

    fn size(&self) -> usize {
        1
    }

    fn all_gather(&self, local: &[f64]) -> Vec<f64> {
        local.to_vec()
    }

    fn broadcast(&self, _bytes: &mut Vec<u8>) {}

    fn abort(&self, code: i32) -> ! {
        std::process::exit(code)
    }
}

/// The contiguous slice `[lo, hi)` of `n` items that rank `rank` of `size` owns: shares
/// differ by at most one item, rank order follows item order.
pub fn share(n: usize, rank: usize, size: usize) -> std::ops::Range<usize> {
    let size = size.max(1);
    (n * rank / size)..(n * (rank + 1) / size)
}

/// A 64-bit fingerprint (FNV-1a) of the bits of `values`, for checking that every rank
/// holds the same state.
pub fn fingerprint<'a>(values: impl IntoIterator<Item = &'a f64>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in values {
        for b in v.to_bits().to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Whether every rank passed the same `value` (a collective: every rank must call it).
pub fn all_equal(c: &dyn Collective, value: u64) -> bool {
    // two exact halves: an f64 holds 32-bit integers exactly
    let halves = [(value >> 32) as f64, (value & 0xffff_ffff) as f64];
    let all = c.all_gather(&halves);
    all.chunks(2).all(|h| h == halves)
}

/// The batch-mean spike counts of a global batch whose shares the ranks of a
/// [`Collective`] hold ([`BatchCounts`], for the spike-count targets `[reg]`): every
/// rank's per-neuron count sums and sample count are gathered and summed in rank order, so
/// every rank holds the one-process batch mean (the sums are integers: exact in any order).
/// A collective: every rank calls it once per training batch with targets on, a rank
/// with an empty share through [`GlobalCounts::join_empty`].
#[derive(Clone, Copy)]
pub struct GlobalCounts<'a>(pub &'a dyn Collective);

impl std::fmt::Debug for GlobalCounts<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "GlobalCounts(rank {} of {})",
            self.0.rank(),
            self.0.size()
        )
    }
}

impl GlobalCounts<'_> {
    /// Takes part in a batch's gather with no samples (a rank whose share of a short last
    /// batch is empty), for a network of `neurons` hidden neurons in all.
    pub fn join_empty(&self, neurons: usize) {
        self.mean(vec![0.0; neurons], 0);
    }
}

impl BatchCounts for GlobalCounts<'_> {
    fn mean(&self, mut sums: Vec<f64>, samples: usize) -> Vec<f64> {
        sums.push(samples as f64);
        let width = sums.len();
        let all = self.0.all_gather(&sums);
        let mut total = vec![0.0; width];
        for rec in all.chunks(width) {
            for (t, v) in total.iter_mut().zip(rec) {
                *t += v;
            }
        }
        let n = total.pop().unwrap_or(0.0).max(1.0);
        total.iter_mut().for_each(|c| *c /= n);
        total
    }
}

#[cfg(feature = "mpi")]
pub use self::mpi_impl::Mpi;

#[cfg(feature = "mpi")]
mod mpi_impl {
    use super::Collective;
    use mpi::topology::SimpleCommunicator;
    use mpi::traits::{Communicator, CommunicatorCollectives, Root};

    /// MPI's world communicator (`mpi` feature): the job `mpirun -n P` started. Created
    /// once per process ([`Mpi::init`]); MPI is finalised when it is dropped.
    pub struct Mpi {
        // dropped last: finalises MPI
        _universe: mpi::environment::Universe,
        world: SimpleCommunicator,
    }

    impl std::fmt::Debug for Mpi {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "Mpi(rank {} of {})", self.rank(), self.size())
        }
    }

    impl Mpi {
        /// Initialises MPI (a process started without a launcher is a job of one).
        ///
        /// # Errors
        /// [`crate::Error::Invalid`] when MPI was initialised before in this process.
        pub fn init() -> crate::Result<Self> {
            let universe = mpi::initialize().ok_or_else(|| {
                crate::Error::invalid("mpi", "one initialisation per process", "a second one")
            })?;
            let world = universe.world();
            Ok(Self {
                _universe: universe,
                world,
            })
        }
    }

    impl Collective for Mpi {
        fn rank(&self) -> usize {
            usize::try_from(self.world.rank()).expect("ranks are non-negative")
        }

        fn size(&self) -> usize {
            usize::try_from(self.world.size()).expect("sizes are positive")
        }

        fn all_gather(&self, local: &[f64]) -> Vec<f64> {
            let mut out = vec![0.0; local.len() * self.size()];
            self.world.all_gather_into(local, &mut out[..]);
            out
        }

        fn broadcast(&self, bytes: &mut Vec<u8>) {
            let root = self.world.process_at_rank(0);
            let mut len = bytes.len() as u64;
            root.broadcast_into(&mut len);
            bytes.resize(usize::try_from(len).expect("a length that fits"), 0);
            root.broadcast_into(&mut bytes[..]);
        }

        fn abort(&self, code: i32) -> ! {
            self.world.abort(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_the_items_in_order() {
        for n in 0..20 {
            for size in 1..6 {
                let mut next = 0;
                for rank in 0..size {
                    let r = share(n, rank, size);
                    assert_eq!(r.start, next);
                    assert!(r.len() + 1 >= n / size && r.len() <= n.div_ceil(size));
                    next = r.end;
                }
                assert_eq!(next, n);
            }
        }
    }

    #[test]
    fn single_is_the_identity() {
        let s = Single;
        assert_eq!((s.rank(), s.size(), s.is_root()), (0, 1, true));
        assert_eq!(s.all_gather(&[1.0, 2.5]), vec![1.0, 2.5]);
        let mut b = vec![1u8, 2];
        s.broadcast(&mut b);
        assert_eq!(b, [1, 2]);
        assert!(all_equal(&s, u64::MAX));
        assert_ne!(fingerprint(&[0.0]), fingerprint(&[-0.0]));
    }
}

//! Data-parallel training without MPI: ranks as threads of one process, joined by an
//! in-memory [`Collective`], against the one-process run — the update to rounding, the
//! evaluation bit-identical, the run folder written by rank 0 alone, shares that are empty
//! in a short last batch. (`mpirun` itself: `crates/eventprop-cli/tests/mpi.rs`.)

use std::path::Path;
use std::sync::{Arc, Barrier, Mutex};

use eventprop_train::collective::{Collective, Single};
use eventprop_train::loss::RateTargets;
use eventprop_train::trainer::{evaluate, evaluate_shared};
use eventprop_train::{EngineKind, TrainConfig, Trainer};

/// What the ranks of one in-memory job share.
struct Job {
    barrier: Barrier,
    slots: Mutex<Vec<Vec<f64>>>,
    bytes: Mutex<Vec<u8>>,
}

/// Rank `rank` of an in-memory job of `size` threads.
struct Threads {
    rank: usize,
    size: usize,
    job: Arc<Job>,
}

impl Collective for Threads {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.size
    }
    fn all_gather(&self, local: &[f64]) -> Vec<f64> {
        self.job.slots.lock().unwrap()[self.rank] = local.to_vec();
        self.job.barrier.wait();
        let out: Vec<f64> = self.job.slots.lock().unwrap().concat();
        self.job.barrier.wait();
        out
    }
    fn broadcast(&self, bytes: &mut Vec<u8>) {
        if self.rank == 0 {
            *self.job.bytes.lock().unwrap() = bytes.clone();
        }
        self.job.barrier.wait();
        *bytes = self.job.bytes.lock().unwrap().clone();
        self.job.barrier.wait();
    }
    fn abort(&self, code: i32) -> ! {
        panic!("abort({code})")
    }
}

/// Runs `f(rank)` on `size` threads joined by one in-memory job; the results in rank order.
fn job<T: Send>(size: usize, f: impl Fn(&dyn Collective) -> T + Sync) -> Vec<T> {
    let job = Arc::new(Job {
        barrier: Barrier::new(size),
        slots: Mutex::new(vec![Vec::new(); size]),
        bytes: Mutex::new(Vec::new()),
    });
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..size)
            .map(|rank| {
                let c = Threads {
                    rank,
                    size,
                    job: job.clone(),
                };
                let f = &f;
                s.spawn(move || f(&c))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn config(engine: EngineKind, train: usize, batch: usize) -> TrainConfig {
    let mut c = TrainConfig {
        train_size: train,
        val_size: 60,
        test_size: 70,
        epochs: 2,
        batch_size: batch,
        eval_batch_size: 16,
        ..TrainConfig::preset(engine)
    };
    c.network.hidden = vec![24];
    c
}

fn max_rel(a: &Trainer, b: &Trainer) -> f64 {
    let mut worst = 0.0f64;
    for (x, y) in a.weights().iter().zip(b.weights()) {
        let scale = x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (p, q) in x.iter().zip(y) {
            worst = worst.max((p - q).abs() / scale);
        }
    }
    worst
}

/// `size` ranks train `config` into `dir/rank{r}`; returns each rank's trainer.
fn train_ranks(dir: &Path, config: &TrainConfig, size: usize) -> Vec<Trainer> {
    job(size, |c| {
        let mut t = Trainer::new(config.clone()).unwrap();
        t.run_distributed(&dir.join(format!("rank{}", c.rank())), c, &mut |_| {})
            .unwrap();
        t
    })
}

/// Spike-count targets strong enough to change every update: at most 0.5 and at least 3
/// spikes per neuron and sample, so that most neurons of the 24 are penalised.
fn with_targets(mut c: TrainConfig) -> TrainConfig {
    c.reg = RateTargets {
        upper_rate: 0.5,
        lower_rate: 0.4,
        upper_strength: 1e-2,
        lower_strength: 1e-2,
    };
    c
}

#[test]
fn ranks_as_threads_match_one_process() {
    for (what, engine, train, batch, size, edit) in [
        ("plain", EngineKind::Stepped, 160, 20, 2, None),
        // 3 ranks, a last batch of one sample: two ranks have empty shares
        ("plain", EngineKind::Stepped, 161, 8, 3, None),
        ("plain", EngineKind::Exact, 96, 16, 2, None),
        // the targets' batch mean is the global batch's (gathered inside the engines)
        (
            "targets",
            EngineKind::Stepped,
            160,
            20,
            2,
            Some(with_targets as fn(_) -> _),
        ),
        (
            "targets",
            EngineKind::Stepped,
            161,
            8,
            3,
            Some(with_targets),
        ),
        ("targets", EngineKind::Exact, 96, 16, 2, Some(with_targets)),
        // the dense stepped layers ([learn] taus)
        (
            "targets+taus",
            EngineKind::Stepped,
            100,
            20,
            2,
            Some(|mut c: TrainConfig| {
                c.learn.taus = true;
                with_targets(c)
            }),
        ),
    ] {
        let engine_name = format!("{engine:?} {what}");
        let dir = tempfile::tempdir().unwrap();
        let base = config(engine, train, batch);
        let c = edit.map_or_else(|| base.clone(), |f| f(base.clone()));
        if edit.is_some() {
            // the edit changes the run (else this case could not fail)
            let mut plain = Trainer::new(base).unwrap();
            plain.run(&dir.path().join("plain"), &mut |_| {}).unwrap();
            let mut edited = Trainer::new(c.clone()).unwrap();
            edited.run(&dir.path().join("edited"), &mut |_| {}).unwrap();
            assert!(max_rel(&plain, &edited) > 1e-6, "{engine_name}");
        }
        let mut one = Trainer::new(c.clone()).unwrap();
        one.run(&dir.path().join("one"), &mut |_| {}).unwrap();
        let ranks = train_ranks(dir.path(), &c, size);
        // every rank holds the same state, bit for bit
        for r in &ranks[1..] {
            assert_eq!(r.weights(), ranks[0].weights());
            assert_eq!(r.adam().slots, ranks[0].adam().slots);
            assert_eq!(r.history().len(), ranks[0].history().len());
        }
        let d = max_rel(&one, &ranks[0]);
        assert!(d <= 1e-12, "{engine_name}, {size} ranks: {d:e}");
        for (a, b) in one.history().iter().zip(ranks[0].history()) {
            assert_eq!(
                (a.train_acc, a.val_acc, a.test_acc),
                (b.train_acc, b.val_acc, b.test_acc)
            );
            assert!((a.train_loss - b.train_loss).abs() <= 1e-12 * a.train_loss.abs());
        }
        assert_eq!(ranks[0].processes(), size);
        // rank 0 alone wrote a folder
        assert!(dir.path().join("rank0/checkpoint.safetensors").is_file());
        for r in 1..size {
            assert!(!dir.path().join(format!("rank{r}")).exists());
        }
    }
}

#[test]
fn shared_evaluation_is_bit_identical() {
    let c = config(EngineKind::Stepped, 100, 20);
    let t = Trainer::new(c.clone()).unwrap();
    let set = &t.data().test;
    let single = evaluate(t.engine(), t.weights(), set, 16).unwrap();
    assert_eq!(
        evaluate_shared(t.engine(), t.weights(), set, 16, &Single).unwrap(),
        single
    );
    for size in [2, 3, 5] {
        let all = job(size, |c| {
            evaluate_shared(t.engine(), t.weights(), set, 16, c).unwrap()
        });
        for e in all {
            assert_eq!(e, single, "{size} ranks");
        }
    }
}

#[test]
fn refusals_of_a_shared_run() {
    let dir = tempfile::tempdir().unwrap();
    // a batch smaller than the ranks
    let c = config(EngineKind::Stepped, 40, 1);
    let errs = job(2, |coll| {
        let mut t = Trainer::new(c.clone()).unwrap();
        t.run_distributed(dir.path(), coll, &mut |_| {})
            .unwrap_err()
            .to_string()
    });
    assert!(errs.iter().all(|e| e.contains("batch_size")), "{errs:?}");
    // ranks that differ (the seed)
    let errs = job(2, |coll| {
        let mut c = config(EngineKind::Stepped, 40, 4);
        c.seed = coll.rank() as u64;
        let mut t = Trainer::new(c).unwrap();
        t.run_distributed(&dir.path().join("differ"), coll, &mut |_| {})
            .unwrap_err()
            .to_string()
    });
    assert!(
        errs.iter()
            .all(|e| e.contains("the same config, data and weights")),
        "{errs:?}"
    );
}

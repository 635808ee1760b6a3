//! The standard benchmark workload: one training pass of a first hidden layer.
//!
//! Shared by the criterion benches and `eventprop bench`, so that figures compare with
//! other libraries: input spikes Bernoulli with `p = 0.05` per step and input,
//! `W ~ N(0.3/(N_in p), 1/sqrt(N_in p))`, `grad_spikes ~ N(0, 1)` (counter-based, see
//! [`Workload::grad_at`]),
//! `leak = reset = 0`, `threshold = 1`, `tau_syn = 5 µs`, `tau_mem = 10 µs`, `dt = 1 µs`.
//! The pass is: synapse forward, neuron forward, neuron backward, synapse backward to the
//! weight (no input gradient, as for a first layer) — through the seed function on dense
//! arrays ([`Workload::pass`]) or through the fused layer on events
//! ([`Workload::pass_fused`]).

use ndarray::{Array2, Array3, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::fused::{EventBatch, EventRow, FusedLif};
use crate::{EventPropNeuron, GuardStats, LifParams, Real, Result, SynapseInput};

/// Input spike probability per step and input.
pub const SPIKE_PROB: f64 = 0.05;

/// A named problem size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// Name (`yinyang`, `medium`, `shd`).
    pub name: &'static str,
    /// Time steps `T`.
    pub steps: usize,
    /// Batch `B`.
    pub batch: usize,
    /// Inputs `N_in`.
    pub inputs: usize,
    /// Hidden neurons `N`.
    pub neurons: usize,
}

/// The three named sizes: Yin-Yang, medium and SHD-like.
pub const SIZES: [Size; 3] = [
    Size {
        name: "yinyang",
        steps: 38,
        batch: 50,
        inputs: 5,
        neurons: 120,
    },
    Size {
        name: "medium",
        steps: 200,
        batch: 128,
        inputs: 700,
        neurons: 256,
    },
    Size {
        name: "shd",
        steps: 1000,
        batch: 256,
        inputs: 700,
        neurons: 256,
    },
];

impl Size {
    /// Looks a size up by name.
    pub fn by_name(name: &str) -> Option<Size> {
        SIZES.iter().copied().find(|s| s.name == name)
    }

    /// Neuron-steps of one pass (`T * B * N`).
    pub fn neuron_steps(&self) -> u64 {
        [self.steps, self.batch, self.neurons]
            .iter()
            .fold(1u64, |acc, &d| acc.saturating_mul(d as u64))
    }
}

/// Inputs of one pass. The input spikes are kept as events and the upstream gradient
/// as a function of its index ([`Workload::grad_at`]), so that the fused path never holds
/// a dense `(T, B, ·)` array; [`Workload::dense`] builds the seed function's dense inputs.
#[derive(Debug, Clone)]
pub struct Workload<F> {
    /// The size.
    pub size: Size,
    /// Input spikes: `B` rows of `T` steps over `N_in` channels.
    pub events: EventBatch<F>,
    /// Weight `(N, N_in)`.
    pub weight: Array2<F>,
    /// The neuron function with the workload's parameters.
    pub neuron: EventPropNeuron<F>,
    /// Seed of the upstream gradient.
    seed: u64,
}

/// The seed function's dense inputs of a [`Workload`].
#[derive(Debug, Clone)]
pub struct DenseInputs<F> {
    /// Input spikes `(T, B, N_in)`.
    pub spikes_in: Array3<F>,
    /// Upstream gradient `(T, B, N)`.
    pub grad_spikes: Array3<F>,
}

/// What one pass produced (kept so that the optimiser cannot drop the work, and so that
/// callers can check it).
#[derive(Debug, Clone)]
pub struct PassResult<F> {
    /// Weight gradient `(N, N_in)`.
    pub grad_weight: Array2<F>,
    /// Mean hidden spike rate per neuron and step.
    pub spike_rate: f64,
    /// Guard counts of the backward.
    pub stats: GuardStats,
}

/// SplitMix64: a counter-based generator, so any element of the gradient can be drawn
/// on its own.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl<F: Real> Workload<F> {
    /// Draws the workload with a seeded RNG.
    pub fn new(size: Size, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (t, b, n_in, n) = (size.steps, size.batch, size.inputs, size.neurons);
        let mut rows = vec![EventRow::new(); b];
        for _ in 0..t {
            for row in rows.iter_mut() {
                for j in 0..n_in {
                    if rng.random::<f64>() < SPIKE_PROB {
                        row.push(j as u32, F::one());
                    }
                }
                row.end_step();
            }
        }
        let events = EventBatch::from_rows(t, n_in, rows).expect("rows built to fit");
        let scale = n_in as f64 * SPIKE_PROB;
        // Without inputs (`scale = 0`) the weight has no elements and `N(inf, inf)` is not
        // a distribution: nothing is drawn then.
        let weight = match Normal::new(0.3 / scale, 1.0 / scale.sqrt()) {
            Ok(w_dist) => {
                Array2::from_shape_simple_fn((n, n_in), || F::of(w_dist.sample(&mut rng)))
            }
            Err(_) => Array2::zeros((n, n_in)),
        };
        let neuron = EventPropNeuron {
            params: LifParams::scalar(F::zero(), F::zero(), F::one(), F::of(5e-6), F::of(1e-5)),
            dt: F::of(1e-6),
            ..Default::default()
        };
        Self {
            size,
            events,
            weight,
            neuron,
            seed,
        }
    }

    /// The upstream gradient `grad_spikes[t, b, n] ~ N(0, 1)` (Box–Muller on SplitMix64 of
    /// the flat index), the same for both paths.
    pub fn grad_at(&self, t: usize, b: usize, n: usize) -> F {
        let flat = ((t * self.size.batch + b) * self.size.neurons + n) as u64;
        let h1 = splitmix(self.seed.wrapping_mul(0xD134_2543_DE82_EF95) ^ (2 * flat));
        let h2 = splitmix(h1 ^ (2 * flat + 1));
        let u1 = ((h1 >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64); // (0, 1]
        let u2 = (h2 >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        F::of((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos())
    }

    /// The upstream gradient at the spikes of a forward, row by row.
    pub fn grad_at_spikes(&self, spikes: &EventBatch<F>) -> Vec<Vec<F>> {
        spikes
            .rows()
            .iter()
            .enumerate()
            .map(|(b, row)| {
                row.event_steps()
                    .zip(row.indices())
                    .map(|(t, &n)| self.grad_at(t, b, n as usize))
                    .collect()
            })
            .collect()
    }

    /// The seed function's dense inputs.
    pub fn dense(&self) -> DenseInputs<F> {
        let (t, b, n) = (self.size.steps, self.size.batch, self.size.neurons);
        DenseInputs {
            spikes_in: self.events.to_dense(),
            grad_spikes: Array3::from_shape_fn((t, b, n), |(t, b, n)| self.grad_at(t, b, n)),
        }
    }

    /// One training pass of a first hidden layer through the seed function (dense arrays).
    ///
    /// # Errors
    /// Only if the workload was modified into an invalid state.
    pub fn pass(&self, dense: &DenseInputs<F>) -> Result<PassResult<F>> {
        let input = SynapseInput::new(dense.spikes_in.view())?;
        let current = input.forward(self.weight.view())?;
        let ctx = self.neuron.forward(current.view(), None)?;
        let grad = ctx.backward(dense.grad_spikes.view(), None, None)?;
        let grad_weight = input.weight_grad(grad.grad_input.index_axis(Axis(0), 0))?;
        let spikes = &ctx.output().spikes;
        let spike_rate = spikes
            .iter()
            .map(|v| v.to_f64().unwrap_or(0.0))
            .sum::<f64>()
            / spikes.len().max(1) as f64;
        Ok(PassResult {
            grad_weight,
            spike_rate,
            stats: grad.stats,
        })
    }

    /// The fused layer of this workload (reuse it across passes).
    ///
    /// # Errors
    /// Only if the workload was modified into an invalid state.
    pub fn fused_layer(&self) -> Result<FusedLif<F>> {
        FusedLif::new(
            &self.neuron.params,
            self.size.neurons,
            self.neuron.dt,
            self.neuron.discretization,
        )
    }

    /// The same pass through the fused layer: forward, upstream gradient at the spikes,
    /// backward into `grad_weight` `(N, N_in)`. Returns the spike rate and guards.
    ///
    /// # Errors
    /// Only if the workload was modified into an invalid state.
    pub fn pass_fused(
        &self,
        layer: &mut FusedLif<F>,
        grad_weight: &mut Array2<F>,
    ) -> Result<(f64, GuardStats)> {
        let spikes = layer.forward(&self.events, self.weight.view())?;
        let count = spikes.len();
        let grad = self.grad_at_spikes(spikes);
        let stats = layer.backward(&self.events, &grad, grad_weight, None)?;
        let rate = count as f64 / (self.size.neuron_steps().max(1) as f64);
        Ok((rate, stats))
    }
}

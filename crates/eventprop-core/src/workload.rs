//! The standard benchmark workload: one training pass of a first hidden layer.
//!
//! Shared by the criterion benches and `eventprop bench`, so that figures compare with
//! other libraries: input spikes Bernoulli with `p = 0.05` per step and input,
//! `W ~ N(0.3/(N_in p), 1/sqrt(N_in p))`, `grad_spikes ~ N(0, 1)`,
//! `leak = reset = 0`, `threshold = 1`, `tau_syn = 5 µs`, `tau_mem = 10 µs`, `dt = 1 µs`.
//! The pass is: synapse forward, neuron forward, neuron backward, synapse backward to the
//! weight (no input gradient, as for a first layer).

use ndarray::{Array2, Array3, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, StandardNormal};

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

/// Inputs of one pass.
#[derive(Debug, Clone)]
pub struct Workload<F> {
    /// The size.
    pub size: Size,
    /// Input spikes `(T, B, N_in)`.
    pub spikes_in: Array3<F>,
    /// Weight `(N, N_in)`.
    pub weight: Array2<F>,
    /// Upstream gradient `(T, B, N)`.
    pub grad_spikes: Array3<F>,
    /// The neuron function with the workload's parameters.
    pub neuron: EventPropNeuron<F>,
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

impl<F: Real> Workload<F> {
    /// Draws the workload with a seeded RNG.
    pub fn new(size: Size, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (t, b, n_in, n) = (size.steps, size.batch, size.inputs, size.neurons);
        let spikes_in = Array3::from_shape_simple_fn((t, b, n_in), || {
            if rng.random::<f64>() < SPIKE_PROB {
                F::one()
            } else {
                F::zero()
            }
        });
        let scale = n_in as f64 * SPIKE_PROB;
        // Without inputs (`scale = 0`) the weight has no elements and `N(inf, inf)` is not
        // a distribution: nothing is drawn then.
        let weight = match Normal::new(0.3 / scale, 1.0 / scale.sqrt()) {
            Ok(w_dist) => {
                Array2::from_shape_simple_fn((n, n_in), || F::of(w_dist.sample(&mut rng)))
            }
            Err(_) => Array2::zeros((n, n_in)),
        };
        // `N(0, 1)`: `StandardNormal` draws the same values as `Normal::new(0.0, 1.0)`.
        let grad_spikes =
            Array3::from_shape_simple_fn((t, b, n), || F::of(rng.sample::<f64, _>(StandardNormal)));
        let neuron = EventPropNeuron {
            params: LifParams::scalar(F::zero(), F::zero(), F::one(), F::of(5e-6), F::of(1e-5)),
            dt: F::of(1e-6),
            ..Default::default()
        };
        Self {
            size,
            spikes_in,
            weight,
            grad_spikes,
            neuron,
        }
    }

    /// Runs one training pass of a first hidden layer.
    ///
    /// # Errors
    /// Only if the workload was modified into an invalid state.
    pub fn pass(&self) -> Result<PassResult<F>> {
        let input = SynapseInput::new(self.spikes_in.view())?;
        let current = input.forward(self.weight.view())?;
        let ctx = self.neuron.forward(current.view(), None)?;
        let grad = ctx.backward(self.grad_spikes.view(), None, None)?;
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
}

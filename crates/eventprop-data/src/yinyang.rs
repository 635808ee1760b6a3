//! The Yin-Yang data set (Kriener et al. 2021) and its spike-time encoding (docs/spec.md §5).
//!
//! A sample: pick a goal class uniformly from {0, 1, 2}, rejection-sample `(x, y)` uniformly
//! in `[0, 1]²` until it lies in the disc of radius `R = 0.5` around (0.5, 0.5) and has the
//! goal class. With `d_R`, `d_L` the distances to the dots (0.75, 0.5) and (0.25, 0.5) and
//! `r = 0.1`: class 2 ("dot") if `d_R < r or d_L < r`; else class 1 ("yin") if
//! `d_R <= r or (r < d_L <= R/2) or (y > R and d_R > R/2)`; else class 0 ("yang").
//! Features `(x, y, 1-x, 1-y)`.
//!
//! Encoding: feature `f` → one spike at `t_early + f (t_late - t_early)`, plus a bias spike
//! at `t_bias`; on the time grid a spike at time `t` falls into step `round(t / dt)`.

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Radius of the two dots.
pub const R_SMALL: f64 = 0.1;
/// Radius of the whole disc.
pub const R_BIG: f64 = 0.5;
/// Number of classes.
pub const N_CLASSES: usize = 3;
/// Number of encoded inputs: 4 feature spikes + 1 bias spike.
pub const N_INPUTS: usize = 5;

/// A labelled Yin-Yang set.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Dataset {
    /// `(x, y, 1-x, 1-y)` per sample.
    pub features: Vec<[f64; 4]>,
    /// Class in {0, 1, 2} per sample.
    pub labels: Vec<usize>,
}

impl Dataset {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// The usual train / validation / test splits.
#[derive(Debug, Clone, PartialEq)]
pub struct Splits {
    /// 5000 samples.
    pub train: Dataset,
    /// 1000 samples.
    pub validation: Dataset,
    /// 1000 samples.
    pub test: Dataset,
}

/// The class of a point (docs/spec.md §5).
pub fn class_of(x: f64, y: f64) -> usize {
    let d_r = ((x - 0.75).powi(2) + (y - 0.5).powi(2)).sqrt();
    let d_l = ((x - 0.25).powi(2) + (y - 0.5).powi(2)).sqrt();
    if d_r < R_SMALL || d_l < R_SMALL {
        return 2;
    }
    let yin =
        d_r <= R_SMALL || (d_l > R_SMALL && d_l <= 0.5 * R_BIG) || (y > R_BIG && d_r > 0.5 * R_BIG);
    usize::from(yin)
}

/// Generates `n` class-balanced samples (goal class uniform, rejection sampling), seeded.
pub fn generate(n: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut features = Vec::with_capacity(n);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let goal = rng.random_range(0..N_CLASSES);
        loop {
            let x: f64 = rng.random();
            let y: f64 = rng.random();
            if ((x - 0.5).powi(2) + (y - 0.5).powi(2)).sqrt() > R_BIG {
                continue;
            }
            if class_of(x, y) == goal {
                features.push([x, y, 1.0 - x, 1.0 - y]);
                labels.push(goal);
                break;
            }
        }
    }
    Dataset { features, labels }
}

/// The seeds of the three splits derived from one data seed (first three draws of a
/// ChaCha8 stream seeded with `data_seed`): `[train, validation, test]`.
pub fn split_seeds(data_seed: u64) -> [u64; 3] {
    let mut rng = ChaCha8Rng::seed_from_u64(data_seed);
    [rng.next_u64(), rng.next_u64(), rng.next_u64()]
}

/// 5000 / 1000 / 1000 samples, each split generated with its own seed from [`split_seeds`].
pub fn standard_splits(data_seed: u64) -> Splits {
    let [a, b, c] = split_seeds(data_seed);
    Splits {
        train: generate(5000, a),
        validation: generate(1000, b),
        test: generate(1000, c),
    }
}

/// Spike-time encoding parameters (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Encoding {
    /// Time of a feature value 0.
    pub t_early: f64,
    /// Time of a feature value 1.
    pub t_late: f64,
    /// Time of the bias spike.
    pub t_bias: f64,
    /// Simulated duration.
    pub t_sim: f64,
    /// Time step.
    pub dt: f64,
}

impl Default for Encoding {
    /// The seed example's values (docs/spec.md §5): 2, 26, 2, 38 µs, dt = 1 µs.
    fn default() -> Self {
        Self {
            t_early: 2e-6,
            t_late: 26e-6,
            t_bias: 2e-6,
            t_sim: 38e-6,
            dt: 1e-6,
        }
    }
}

impl Encoding {
    /// Number of time steps `round(t_sim / dt)`.
    pub fn steps(&self) -> usize {
        (self.t_sim / self.dt).round() as usize
    }

    /// Checks that `dt > 0`, `0 <= t_early <= t_late`, and that every spike falls inside
    /// the simulated window (step < `steps()`).
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the offending field.
    ///
    /// ```
    /// let enc = eventprop_data::yinyang::Encoding { t_sim: 10e-6, ..Default::default() };
    /// assert!(enc.validate().is_err()); // t_late = 26 µs lies outside 10 µs
    /// ```
    pub fn validate(&self) -> Result<()> {
        let all = [self.t_early, self.t_late, self.t_bias, self.t_sim, self.dt];
        if all.iter().any(|v| !v.is_finite()) {
            return Err(Error::invalid(
                "encoding",
                "finite times",
                format!("{self:?}"),
            ));
        }
        if self.dt <= 0.0 {
            return Err(Error::invalid("dt", "> 0", self.dt));
        }
        if self.t_early < 0.0 || self.t_late < self.t_early {
            return Err(Error::invalid(
                "t_late",
                format!(">= t_early = {} (and t_early >= 0)", self.t_early),
                self.t_late,
            ));
        }
        if self.t_bias < 0.0 {
            return Err(Error::invalid("t_bias", ">= 0", self.t_bias));
        }
        // In f64: a huge time would saturate `as usize` and overflow `last + 1`.
        let steps = (self.t_sim / self.dt).round();
        let last = (self.t_late.max(self.t_bias) / self.dt).round();
        if last + 1.0 >= steps {
            return Err(Error::invalid(
                "t_sim",
                format!(
                    "more than {} steps so that the last input spike (step {last}) can act",
                    last + 1.0
                ),
                format!("{} ({steps} steps)", self.t_sim),
            ));
        }
        Ok(())
    }

    /// Time step index of a spike at time `t`.
    pub fn step_of(&self, t: f64) -> usize {
        (t / self.dt).round() as usize
    }
}

/// The five spike times of a sample: the four features, then the bias.
pub fn spike_times(features: &[f64; 4], enc: &Encoding) -> [f64; 5] {
    let span = enc.t_late - enc.t_early;
    [
        enc.t_early + features[0] * span,
        enc.t_early + features[1] * span,
        enc.t_early + features[2] * span,
        enc.t_early + features[3] * span,
        enc.t_bias,
    ]
}

/// The input spike events of every sample of `data` (channels 0–3: the features, 4: the
/// bias), with the labels.
pub fn encode(data: &Dataset, enc: &Encoding) -> crate::sample::SpikeSet {
    let samples = data
        .features
        .iter()
        .map(|f| {
            spike_times(f, enc)
                .iter()
                .enumerate()
                .map(|(j, &time)| crate::sample::Spike {
                    time,
                    neuron: j as u32,
                })
                .collect()
        })
        .collect();
    crate::sample::SpikeSet {
        samples,
        labels: data.labels.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_of_known_points() {
        // Centres of the dots are class 2; by the rule of docs/spec.md §5 the left half just below the
        // middle, away from the dots, is class 1 (0.1 < d_L <= 0.25) and the right half
        // near the right dot ring is class 0.
        assert_eq!(class_of(0.75, 0.5), 2);
        assert_eq!(class_of(0.25, 0.5), 2);
        assert_eq!(class_of(0.25, 0.3), 1); // d_L = 0.2
        assert_eq!(class_of(0.75, 0.3), 0); // d_R = 0.2, y < 0.5
        assert_eq!(class_of(0.5, 0.9), 1); // y > 0.5, d_R = 0.47 > 0.25
        assert_eq!(class_of(0.5, 0.1), 0); // y < 0.5, d_L = 0.47
    }

    #[test]
    fn generated_set_is_balanced_seeded_and_consistent() {
        let a = generate(3000, 7);
        assert_eq!(a, generate(3000, 7), "same seed, same set");
        assert_ne!(a, generate(3000, 8));
        let mut counts = [0usize; 3];
        for (f, &l) in a.features.iter().zip(&a.labels) {
            counts[l] += 1;
            assert_eq!(class_of(f[0], f[1]), l);
            assert!((f[0] - 0.5).hypot(f[1] - 0.5) <= R_BIG);
            assert!((f[2] - (1.0 - f[0])).abs() < 1e-15 && (f[3] - (1.0 - f[1])).abs() < 1e-15);
        }
        // Goal class uniform: each count ~ Binomial(3000, 1/3), sd ≈ 25.8; allow 5 sd.
        for c in counts {
            assert!((c as f64 - 1000.0).abs() < 130.0, "{counts:?}");
        }
    }

    #[test]
    fn splits_differ_and_have_standard_sizes() {
        let s = standard_splits(0);
        assert_eq!(
            (s.train.len(), s.validation.len(), s.test.len()),
            (5000, 1000, 1000)
        );
        assert_ne!(s.validation, s.test);
        assert_ne!(s.train.features[..1000], s.test.features[..]);
    }

    #[test]
    fn encoding_places_spikes_on_the_grid() {
        let enc = Encoding::default();
        enc.validate().unwrap();
        assert_eq!(enc.steps(), 38);
        let t = spike_times(&[0.0, 1.0, 0.5, 0.25], &enc);
        // t_early + f (t_late - t_early) with 2 µs, 26 µs: 2, 26, 14, 8 µs; bias 2 µs.
        let want = [2e-6, 26e-6, 14e-6, 8e-6, 2e-6];
        for (a, b) in t.iter().zip(want) {
            assert!((a - b).abs() < 1e-18);
        }
        let d = Dataset {
            features: vec![[0.0, 1.0, 0.5, 0.25]],
            labels: vec![0],
        };
        let set = encode(&d, &enc);
        let (x, dropped) =
            crate::sample::rasterize(&[&set.samples[0]], N_INPUTS, enc.steps(), enc.dt);
        assert_eq!(dropped, 0);
        assert_eq!(x.dim(), (38, 1, 5));
        assert_eq!(x.sum(), 5.0);
        for (k, step) in [2, 26, 14, 8, 2].into_iter().enumerate() {
            assert_eq!(x[[step, 0, k]], 1.0);
        }
    }

    #[test]
    fn bad_encodings_are_rejected_by_name() {
        let e = Encoding {
            dt: 0.0,
            ..Default::default()
        };
        assert!(e.validate().unwrap_err().to_string().starts_with("dt:"));
        let e = Encoding {
            t_late: 1e-6,
            ..Default::default()
        };
        assert!(e.validate().unwrap_err().to_string().starts_with("t_late:"));
        let e = Encoding {
            t_sim: 26e-6,
            ..Default::default()
        };
        assert!(e.validate().unwrap_err().to_string().starts_with("t_sim:"));
    }
}

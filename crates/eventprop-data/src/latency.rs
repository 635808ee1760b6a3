//! A generated task of latency-coded images (for tests, benchmarks and
//! `eventprop data latency`): small grey images, one spike per pixel whose time encodes the
//! intensity.
//!
//! Class `k` has a prototype image `P_k(x, y) = Σ_j a_j exp(−((x − x_j)² + (y − y_j)²) /
//! (2 σ_j²)) / max P_k` over the `side × side` pixel grid, a sum of `blobs` Gaussian blobs
//! (centres uniform over the grid, widths `σ_j` uniform in `[0.6, 1.6]` pixels, amplitudes
//! `a_j` uniform in `[0.5, 1]`, normalised to a maximum of 1), drawn from `task_seed`. A
//! sample of class `k` is the prototype translated by `(dx, dy)`, each uniform in
//! `[−shift, shift]` pixels (sub-pixel: the blobs are evaluated at the moved centres), plus
//! independent `N(0, noise)` per pixel, clipped to `[0, 1]`. Pixel `(x, y)` is channel
//! `y · side + x`; its intensity `I` gives one spike at `t = (1 − I) · duration` when
//! `I >= threshold` and none otherwise (bright pixels fire first).

use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::error::{Error, Result};
use crate::generated::{check_common, check_non_negative, generate};
use crate::sample::{Spike, SpikeSet};

/// Latency-coded images ([`latency_task`]).
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyTask {
    /// Samples.
    pub samples: usize,
    /// Pixels per side of the square image (channels = `side²`).
    pub side: usize,
    /// Classes.
    pub classes: usize,
    /// Blobs per class prototype.
    pub blobs: usize,
    /// Sample duration (s): intensity 1 fires at 0, intensity → 0 at `duration`.
    pub duration: f64,
    /// Largest translation of a sample (pixels, uniform in `[−shift, shift]` per axis).
    pub shift: f64,
    /// Per-pixel intensity noise (Gaussian std, intensities in `[0, 1]`).
    pub noise: f64,
    /// Pixels below this intensity do not fire (in `[0, 1)`).
    pub threshold: f64,
    /// Background noise (Hz per channel, Poisson; 0 = none).
    pub noise_rate: f64,
    /// Seed of the class prototypes (shared by the splits of one task).
    pub task_seed: u64,
    /// Seed of the samples.
    pub seed: u64,
}

impl Default for LatencyTask {
    /// 8 × 8 = 64 channels, 10 classes of 3 blobs, 50 ms; translations up to 1 pixel,
    /// intensity noise 0.1, threshold 0.1; no background noise.
    fn default() -> Self {
        Self {
            samples: 1000,
            side: 8,
            classes: 10,
            blobs: 3,
            duration: 50e-3,
            shift: 1.0,
            noise: 0.1,
            threshold: 0.1,
            noise_rate: 0.0,
            task_seed: 0,
            seed: 0,
        }
    }
}

/// One Gaussian blob of a prototype.
#[derive(Debug, Clone, Copy)]
struct Blob {
    x: f64,
    y: f64,
    sigma: f64,
    amplitude: f64,
}

/// The unnormalised intensity of `blobs` moved by `(dx, dy)` at pixel `(x, y)`.
fn intensity(blobs: &[Blob], x: f64, y: f64, dx: f64, dy: f64) -> f64 {
    blobs
        .iter()
        .map(|b| {
            let (u, v) = (x - b.x - dx, y - b.y - dy);
            b.amplitude * (-(u * u + v * v) / (2.0 * b.sigma * b.sigma)).exp()
        })
        .sum()
}

/// Latency-coded images: class prototypes of Gaussian blobs, translated and noisy per
/// sample, one spike per pixel at `(1 − intensity) · duration` (the module docs give the
/// model). Labels cycle through the classes in a `seed`-shuffled order; each sample's
/// events are sorted by time.
///
/// # Errors
/// [`Error::Invalid`] for zero sizes (`samples`, `side`, `classes`, `blobs`), a
/// non-positive or non-finite duration, a negative shift, noise or noise rate, or a
/// threshold outside `[0, 1)`.
///
/// ```
/// use eventprop_data::latency::{latency_task, LatencyTask};
/// let set = latency_task(&LatencyTask { samples: 20, ..LatencyTask::default() })?;
/// assert!(set.samples.iter().all(|s| s.len() <= 64));
/// assert!(latency_task(&LatencyTask { threshold: 1.0, ..LatencyTask::default() }).is_err());
/// # Ok::<(), eventprop_data::Error>(())
/// ```
pub fn latency_task(t: &LatencyTask) -> Result<SpikeSet> {
    if t.side == 0 {
        return Err(Error::invalid("side", ">= 1", 0));
    }
    let channels = t.side.saturating_mul(t.side);
    check_common(t.samples, channels, t.classes, t.duration, t.noise_rate)?;
    if t.blobs == 0 {
        return Err(Error::invalid("blobs", ">= 1", 0));
    }
    check_non_negative("shift", t.shift)?;
    check_non_negative("noise", t.noise)?;
    if !(0.0..1.0).contains(&t.threshold) {
        return Err(Error::invalid("threshold", "in [0, 1)", t.threshold));
    }
    let side = t.side as f64;
    let mut rng = ChaCha8Rng::seed_from_u64(t.task_seed);
    let prototypes: Vec<(Vec<Blob>, f64)> = (0..t.classes)
        .map(|_| {
            let blobs: Vec<Blob> = (0..t.blobs)
                .map(|_| Blob {
                    x: rng.random_range(0.0..side),
                    y: rng.random_range(0.0..side),
                    sigma: rng.random_range(0.6..1.6),
                    amplitude: rng.random_range(0.5..1.0),
                })
                .collect();
            let max = (0..channels)
                .map(|c| intensity(&blobs, (c % t.side) as f64, (c / t.side) as f64, 0.0, 0.0))
                .fold(0.0, f64::max);
            (blobs, max)
        })
        .collect();
    let noise = Normal::new(0.0, t.noise).expect("noise checked finite and >= 0");
    let below = t.duration * (1.0 - f64::EPSILON);
    Ok(generate(
        (t.samples, t.classes, t.seed),
        (t.noise_rate, channels, t.duration),
        |k, rng| {
            let (blobs, max) = &prototypes[k];
            let mut shift = || {
                if t.shift > 0.0 {
                    rng.random_range(-t.shift..=t.shift)
                } else {
                    0.0
                }
            };
            let (dx, dy) = (shift(), shift());
            let mut events = Vec::with_capacity(channels);
            for c in 0..channels {
                let (x, y) = ((c % t.side) as f64, (c / t.side) as f64);
                let v = intensity(blobs, x, y, dx, dy) / max.max(f64::MIN_POSITIVE);
                let v = (v + noise.sample(rng)).clamp(0.0, 1.0);
                if v >= t.threshold && v > 0.0 {
                    events.push(Spike {
                        time: ((1.0 - v) * t.duration).min(below),
                        neuron: c as u32,
                    });
                }
            }
            events
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generated::testing::{check_set, mean_events};

    fn small() -> LatencyTask {
        LatencyTask {
            samples: 50,
            classes: 5,
            ..LatencyTask::default()
        }
    }

    #[test]
    fn latency_sizes_ranges_balance_and_determinism() {
        let t = small();
        let set = latency_task(&t).unwrap();
        check_set(&set, 50, 64, 5, t.duration);
        // At most one spike per pixel (no background noise), and some pixels fire.
        for s in &set.samples {
            let mut seen = [false; 64];
            for e in s {
                assert!(!std::mem::replace(&mut seen[e.neuron as usize], true));
            }
        }
        assert!(mean_events(&set) > 5.0, "{}", mean_events(&set));
        assert_eq!(latency_task(&t).unwrap(), set);
        assert_ne!(
            latency_task(&LatencyTask {
                seed: 1,
                ..t.clone()
            })
            .unwrap(),
            set
        );
        // Another task seed: other prototypes, same labels.
        let other = latency_task(&LatencyTask {
            task_seed: 1,
            ..t.clone()
        })
        .unwrap();
        assert_eq!(other.labels, set.labels);
        assert_ne!(other.samples, set.samples);
    }

    #[test]
    fn latency_time_encodes_intensity() {
        // No noise, no shift: the prototype itself. Its brightest pixel has intensity 1
        // and fires at t = 0; every spike time is (1 − I) · duration < (1 − threshold) ·
        // duration.
        let t = LatencyTask {
            samples: 10,
            noise: 0.0,
            shift: 0.0,
            ..LatencyTask::default()
        };
        let set = latency_task(&t).unwrap();
        for s in &set.samples {
            assert_eq!(s[0].time, 0.0);
            assert!(s
                .iter()
                .all(|e| e.time <= (1.0 - t.threshold) * t.duration + 1e-15));
        }
        // Samples of one class are identical without noise and shift.
        for k in 0..t.classes {
            let of: Vec<_> = (0..10).filter(|&i| set.labels[i] == k).collect();
            for w in of.windows(2) {
                assert_eq!(set.samples[w[0]], set.samples[w[1]]);
            }
        }
    }

    #[test]
    fn latency_noise_rate_and_errors() {
        let t = LatencyTask {
            noise_rate: 20.0,
            ..small()
        };
        let set = latency_task(&t).unwrap();
        check_set(&set, 50, 64, 5, t.duration);
        // 20 Hz × 64 channels × 50 ms = 64 noise events on average.
        let clean = mean_events(&latency_task(&small()).unwrap());
        assert!((mean_events(&set) - clean - 64.0).abs() < 8.0);
        for bad in [
            LatencyTask { side: 0, ..small() },
            LatencyTask {
                blobs: 0,
                ..small()
            },
            LatencyTask {
                shift: -1.0,
                ..small()
            },
            LatencyTask {
                threshold: 1.0,
                ..small()
            },
            LatencyTask {
                duration: 0.0,
                ..small()
            },
        ] {
            assert!(latency_task(&bad).is_err(), "{bad:?}");
        }
    }
}

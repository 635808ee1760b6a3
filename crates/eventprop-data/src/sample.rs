//! Samples as input spike events: the one data form every engine reads.
//!
//! A sample is a list of [`Spike`]s (time in seconds, input channel) with a class label.
//! The exact engine simulates the events as they are; the time-stepped engine puts them on
//! its grid with [`rasterize`].

use ndarray::{Array3, ArrayView3};

pub use eventprop_core::Spike;

/// Labelled samples of input spike events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpikeSet {
    /// The input events of each sample (any order).
    pub samples: Vec<Vec<Spike>>,
    /// The class of each sample.
    pub labels: Vec<usize>,
}

impl SpikeSet {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

/// The spike tensor `(steps, B, n_in)` of a batch: a spike at time `t` of channel `c` sets
/// `x[round(t / dt), b, c] = 1` (several spikes of one channel in one step collapse to one,
/// as in the seed's hardware-data mapping); spikes at or after step `steps` and channels
/// `>= n_in` are dropped. Returns the tensor and the number of dropped events.
pub fn rasterize(samples: &[&[Spike]], n_in: usize, steps: usize, dt: f64) -> (Array3<f64>, usize) {
    let mut x = Array3::zeros((steps, samples.len(), n_in));
    let mut dropped = 0;
    for (b, events) in samples.iter().enumerate() {
        for s in events.iter() {
            let step = (s.time / dt).round();
            let c = s.neuron as usize;
            if step >= 0.0 && (step as usize) < steps && c < n_in {
                x[[step as usize, b, c]] = 1.0;
            } else {
                dropped += 1;
            }
        }
    }
    (x, dropped)
}

/// Spike events of a `(T, B, N)` spike tensor (the inverse of [`rasterize`] on the grid):
/// `(k dt, n)` for every non-zero `[k, b, n]`, per sample, in time order.
pub fn grid_spikes(z: ArrayView3<'_, f64>, dt: f64) -> Vec<Vec<Spike>> {
    let (t_len, b_len, n) = z.dim();
    let mut out = vec![Vec::new(); b_len];
    for k in 0..t_len {
        for (b, events) in out.iter_mut().enumerate() {
            for j in 0..n {
                if z[[k, b, j]] != 0.0 {
                    events.push(Spike {
                        time: k as f64 * dt,
                        neuron: j as u32,
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rasterize_rounds_collapses_and_drops() {
        let s = [
            Spike {
                time: 1.4e-6,
                neuron: 0,
            },
            Spike {
                time: 1.6e-6,
                neuron: 0,
            },
            Spike {
                time: 1.0e-6,
                neuron: 1,
            },
            Spike {
                time: 9.0e-6,
                neuron: 1,
            },
        ];
        let (x, dropped) = rasterize(&[&s], 2, 4, 1e-6);
        // 1.4 µs → step 1, 1.6 µs → step 2, 1.0 µs → step 1, 9 µs → past the end.
        assert_eq!(x[[1, 0, 0]], 1.0);
        assert_eq!(x[[2, 0, 0]], 1.0);
        assert_eq!(x[[1, 0, 1]], 1.0);
        assert_eq!(x.sum(), 3.0);
        assert_eq!(dropped, 1);
    }
}

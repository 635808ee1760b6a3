//! Leaky-integrator readout: a LIF neuron without threshold (hxtorch's `LI`).
//!
//! Forward, per neuron, with `k_syn = dt/tau_syn`, `k_mem = dt/tau_mem`, for
//! `t = 0 … T-2`:
//!
//! ```text
//! i[0] = 0,  v[0] = leak
//! i[t+1] = i[t] (1 - k_syn) + y[t]
//! v[t+1] = v[t] + k_mem (leak - v[t] + i[t+1])
//! ```
//!
//! Backward: the exact adjoint of this linear recursion. With `g_v[t] = ∂L/∂v[t]` and the
//! total derivatives `lambda_v[t] = dL/dv[t]`, `lambda_i[t] = dL/di[t]`:
//!
//! ```text
//! lambda_v[T-1] = g_v[T-1],    lambda_v[t] = g_v[t] + (1 - k_mem) lambda_v[t+1]
//! lambda_i[T-1] = k_mem lambda_v[T-1],   lambda_i[t] = k_mem lambda_v[t] + (1 - k_syn) lambda_i[t+1]
//! dL/dy[t] = lambda_i[t+1]  (t < T-1),   dL/dy[T-1] = 0
//! ```
//!
//! # Shapes
//! `y`, `v`, `i`, `g_v`, `dL/dy`: `(T, B, N)`.

use crate::Real;
use ndarray::{Array3, ArrayView3, Axis, Zip};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Parameters of the leaky-integrator readout (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LeakyIntegrator {
    /// Synaptic time constant (> 0).
    pub tau_syn: f64,
    /// Membrane time constant (> 0).
    pub tau_mem: f64,
    /// Resting potential (initial membrane).
    pub leak: f64,
    /// Time step (> 0).
    pub dt: f64,
}

impl Default for LeakyIntegrator {
    /// docs/spec.md §5: `tau_syn = tau_mem = 6 µs`, `leak = 0`, `dt = 1 µs`.
    fn default() -> Self {
        Self {
            tau_syn: 6e-6,
            tau_mem: 6e-6,
            leak: 0.0,
            dt: 1e-6,
        }
    }
}

impl LeakyIntegrator {
    /// Checks that the time constants and `dt` are finite and positive.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the field.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("readout_tau_syn", self.tau_syn),
            ("readout_tau_mem", self.tau_mem),
            ("dt", self.dt),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::invalid(name, "finite and > 0", v));
            }
        }
        if !self.leak.is_finite() {
            return Err(Error::invalid("readout_leak", "finite", self.leak));
        }
        Ok(())
    }

    /// Membrane `v` `(T, B, N)` for the input current `y`.
    pub fn forward<F: Real>(&self, y: ArrayView3<'_, F>) -> Array3<F> {
        let (t_len, b_len, n) = y.dim();
        let ks = F::of(self.dt / self.tau_syn);
        let km = F::of(self.dt / self.tau_mem);
        let leak = F::of(self.leak);
        let y = y.as_standard_layout();
        let ys = y.as_slice().expect("standard layout");
        let row = b_len * n;
        let mut v = vec![leak; t_len * row];
        let mut cur = vec![F::zero(); row];
        for t in 0..t_len.saturating_sub(1) {
            let (past, next) = v.split_at_mut((t + 1) * row);
            let vt = &past[t * row..];
            for k in 0..row {
                cur[k] = cur[k] * (F::one() - ks) + ys[t * row + k];
                next[k] = vt[k] + km * (leak - vt[k] + cur[k]);
            }
        }
        Array3::from_shape_vec((t_len, b_len, n), v).expect("sizes match")
    }

    /// `dL/dy` `(T, B, N)` for `grad_v = ∂L/∂v` (the exact adjoint of [`Self::forward`]).
    pub fn backward<F: Real>(&self, grad_v: ArrayView3<'_, F>) -> Array3<F> {
        let (t_len, b_len, n) = grad_v.dim();
        let ks = F::of(self.dt / self.tau_syn);
        let km = F::of(self.dt / self.tau_mem);
        let mut gy = Array3::<F>::zeros((t_len, b_len, n));
        if t_len == 0 {
            return gy;
        }
        let mut lv = grad_v.index_axis(Axis(0), t_len - 1).to_owned();
        let mut li = lv.mapv(|x| km * x);
        for t in (0..t_len - 1).rev() {
            // dL/dy[t] = lambda_i[t+1]
            gy.index_axis_mut(Axis(0), t).assign(&li);
            Zip::from(&mut lv)
                .and(&mut li)
                .and(grad_v.index_axis(Axis(0), t))
                .for_each(|lv, li, &g| {
                    *lv = g + (F::one() - km) * *lv;
                    *li = km * *lv + (F::one() - ks) * *li;
                });
        }
        gy
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn single_input_matches_hand_recursion() {
        // y[0] = 1: i[1] = 1, v[1] = k_m * 1; i[2] = (1-k_s), v[2] = v[1] + k_m (-v[1] + i[2]).
        let li = LeakyIntegrator {
            tau_syn: 4e-6,
            tau_mem: 5e-6,
            leak: 0.0,
            dt: 1e-6,
        };
        let mut y = Array3::<f64>::zeros((4, 1, 1));
        y[[0, 0, 0]] = 1.0;
        let v = li.forward(y.view());
        let (ks, km) = (0.25, 0.2);
        let v1 = km;
        let v2 = v1 + km * (-v1 + (1.0 - ks));
        assert_eq!(v[[0, 0, 0]], 0.0);
        assert!((v[[1, 0, 0]] - v1).abs() < 1e-15);
        assert!((v[[2, 0, 0]] - v2).abs() < 1e-15);
    }

    #[test]
    fn backward_is_the_exact_adjoint_by_finite_differences() {
        // L = Σ c[t,b,n] v[t,b,n] (+ leak offset); dL/dy by central differences must equal
        // the adjoint; the recursion is linear, so the match is to rounding.
        let li = LeakyIntegrator {
            tau_syn: 3e-6,
            tau_mem: 7e-6,
            leak: 0.3,
            dt: 1e-6,
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let dims = (9, 2, 3);
        let y = Array3::from_shape_fn(dims, |_| rng.random_range(-1.0..1.0));
        let c = Array3::from_shape_fn(dims, |_| rng.random_range(-1.0..1.0));
        let loss = |y: &Array3<f64>| (&li.forward(y.view()) * &c).sum();
        let gy = li.backward(c.view());
        let h = 1e-6;
        for idx in ndarray::indices(dims) {
            let (t, b, n) = idx;
            let mut p = y.clone();
            p[[t, b, n]] += h;
            let mut m = y.clone();
            m[[t, b, n]] -= h;
            let fd = (loss(&p) - loss(&m)) / (2.0 * h);
            assert!(
                (fd - gy[[t, b, n]]).abs() < 1e-8,
                "{idx:?}: fd {fd} vs {}",
                gy[[t, b, n]]
            );
        }
        // y[T-1] does not influence v (the recursion stops at T-2).
        assert_eq!(gy.index_axis(Axis(0), 8).sum(), 0.0);
    }
}

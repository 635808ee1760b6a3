//! Adam (Kingma & Ba 2015, PyTorch's bias-corrected form), decoupled weight decay
//! (AdamW, Loshchilov & Hutter 2019), learning-rate schedules (step, cosine, plateau, each
//! with an optional linear warm-up) and early stopping on validation
//! ([`OptimSettings`]).
//!
//! Adam, per parameter element, at its `t`-th update:
//!
//! ```text
//! m = beta1 m + (1 - beta1) g,      v = beta2 v + (1 - beta2) g²
//! p -= lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
//! ```
//!
//! The moments are kept in `f64` whatever the parameter type, so that an `f32` and an `f64`
//! run share one checkpoint format.

use std::fmt;

use eventprop_core::Real;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The state of one parameter tensor: update count and first/second moments.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AdamSlot {
    /// Number of updates applied so far (`t`).
    pub steps: u64,
    /// First moment `m`.
    pub m: Vec<f64>,
    /// Second moment `v`.
    pub v: Vec<f64>,
}

/// Adam over any number of parameter tensors, keyed by index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Adam {
    /// Learning rate (set it from a schedule before each step).
    pub lr: f64,
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Added to the denominator.
    pub eps: f64,
    /// Per-parameter state, index = parameter index.
    pub slots: Vec<AdamSlot>,
}

impl Adam {
    /// A fresh optimizer (PyTorch defaults are `0.9, 0.999, 1e-8`).
    ///
    /// # Errors
    /// [`Error::Invalid`] unless `lr > 0`, `0 <= beta1, beta2 < 1`, `eps > 0` (with `eps = 0` a zero gradient divides 0 by 0) (all finite).
    ///
    /// ```
    /// use eventprop_train::optim::Adam;
    /// assert!(Adam::new(1e-3, 0.9, 0.999, 1e-8).is_ok());
    /// assert!(Adam::new(-1.0, 0.9, 0.999, 1e-8).is_err());
    /// ```
    pub fn new(lr: f64, beta1: f64, beta2: f64, eps: f64) -> Result<Self> {
        if !(lr.is_finite() && lr > 0.0) {
            return Err(Error::invalid("lr", "finite and > 0", lr));
        }
        for (name, b) in [("beta1", beta1), ("beta2", beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(Error::invalid(name, "in [0, 1)", b));
            }
        }
        if !(eps.is_finite() && eps > 0.0) {
            return Err(Error::invalid("eps", "finite and > 0", eps));
        }
        Ok(Self {
            lr,
            beta1,
            beta2,
            eps,
            slots: Vec::new(),
        })
    }

    /// One Adam update of parameter `index` in place.
    ///
    /// # Panics
    /// If `param` and `grad` differ in length, or differ from the length this index had.
    #[track_caller]
    pub fn step<F: Real>(&mut self, index: usize, param: &mut [F], grad: &[F]) {
        assert_eq!(param.len(), grad.len(), "param and grad lengths differ");
        if self.slots.len() <= index {
            self.slots.resize_with(index + 1, AdamSlot::default);
        }
        let slot = &mut self.slots[index];
        if slot.steps == 0 && slot.m.is_empty() {
            slot.m = vec![0.0; param.len()];
            slot.v = vec![0.0; param.len()];
        }
        assert_eq!(
            slot.m.len(),
            param.len(),
            "parameter {index} changed length"
        );
        slot.steps += 1;
        let t = slot.steps as i32;
        let c1 = 1.0 - self.beta1.powi(t);
        let c2 = 1.0 - self.beta2.powi(t);
        let (b1, b2, lr, eps) = (self.beta1, self.beta2, self.lr, self.eps);
        for ((p, g), (m, v)) in param
            .iter_mut()
            .zip(grad)
            .zip(slot.m.iter_mut().zip(slot.v.iter_mut()))
        {
            let g = g.to_f64().expect("float");
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            let upd = lr * (*m / c1) / ((*v / c2).sqrt() + eps);
            *p = F::of(p.to_f64().expect("float") - upd);
        }
    }
}

/// Step schedule: `lr(epoch) = base_lr * gamma^(epoch / step_size)` (integer division,
/// epochs counted from 0), PyTorch's `StepLR` stepped once per epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepLr {
    /// Learning rate of epoch 0.
    pub base_lr: f64,
    /// Epochs between decays.
    pub step_size: usize,
    /// Factor per decay.
    pub gamma: f64,
}

impl StepLr {
    /// A schedule.
    ///
    /// # Errors
    /// [`Error::Invalid`] unless `base_lr > 0`, `step_size >= 1`, `gamma > 0` (finite).
    pub fn new(base_lr: f64, step_size: usize, gamma: f64) -> Result<Self> {
        if !(base_lr.is_finite() && base_lr > 0.0) {
            return Err(Error::invalid("lr", "finite and > 0", base_lr));
        }
        if step_size == 0 {
            return Err(Error::invalid("lr_step", ">= 1", step_size));
        }
        if !(gamma.is_finite() && gamma > 0.0) {
            return Err(Error::invalid("lr_gamma", "finite and > 0", gamma));
        }
        Ok(Self {
            base_lr,
            step_size,
            gamma,
        })
    }

    /// The learning rate of epoch `epoch` (0-based).
    pub fn lr(&self, epoch: usize) -> f64 {
        self.base_lr * self.gamma.powi((epoch / self.step_size) as i32)
    }
}

/// The learning-rate schedule after the warm-up (`optim.lr_schedule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    /// `lr · lr_gamma^(e / lr_step)` ([`StepLr`]; `e` counted from the end of the warm-up).
    #[default]
    Step,
    /// Cosine annealing from `lr` towards 0 over the run's remaining epochs:
    /// `lr · (1 + cos(π e / E)) / 2`, `E` = epochs − warm-up epochs (PyTorch's
    /// `CosineAnnealingLR` with `eta_min = 0`, stepped once per epoch).
    Cosine,
    /// Multiply by `lr_gamma` whenever the validation accuracy has not improved on its best
    /// for `lr_step` epochs (PyTorch's `ReduceLROnPlateau` in `max` mode, `cooldown = 0`);
    /// derived from the run's history, so a resumed run repeats it.
    Plateau,
}

impl fmt::Display for LrSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Step => "step",
            Self::Cosine => "cosine",
            Self::Plateau => "plateau",
        })
    }
}

impl std::str::FromStr for LrSchedule {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "step" => Ok(Self::Step),
            "cosine" => Ok(Self::Cosine),
            "plateau" => Ok(Self::Plateau),
            _ => Err(format!("expected `step`, `cosine` or `plateau`, got `{s}`")),
        }
    }
}

/// The optimiser's section of a run's config (`[optim]`): Adam (with decoupled weight
/// decay), the learning-rate schedule with its warm-up, optional weight clipping, and
/// early stopping. [`OptimSettings::adam`], [`OptimSettings::schedule`] and
/// [`OptimSettings::lr_at`] build the optimiser from this section alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimSettings {
    /// Adam learning rate of epoch 0.
    pub lr: f64,
    /// Epochs between learning-rate decays.
    pub lr_step: usize,
    /// Learning-rate decay factor.
    pub lr_gamma: f64,
    /// Adam `beta1`.
    pub beta1: f64,
    /// Adam `beta2`.
    pub beta2: f64,
    /// Adam `eps` (> 0).
    pub eps: f64,
    /// Clip all weights to `[-c, c]` after each update (absent: no clipping).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_clip: Option<f64>,
    /// Decoupled weight decay (AdamW): before each Adam update every weight matrix is
    /// multiplied by `1 − lr · weight_decay` (delays, time constants and thresholds are not
    /// decayed). 0 (the default) is plain Adam.
    #[serde(default)]
    pub weight_decay: f64,
    /// The schedule after the warm-up: `step` (default), `cosine` or `plateau`.
    #[serde(default)]
    pub lr_schedule: LrSchedule,
    /// Epochs of linear warm-up: epoch `e < warmup_epochs` (0-based) uses
    /// `lr · (e + 1) / (warmup_epochs + 1)`; the schedule starts after them (0: none).
    #[serde(default)]
    pub warmup_epochs: usize,
    /// Early stopping: end the run when the validation accuracy has not improved on its
    /// best for this many epochs (`best.safetensors` holds the best epoch); 0 (the
    /// default): never.
    #[serde(default)]
    pub patience: usize,
}

impl Default for OptimSettings {
    /// PyTorch's Adam defaults with `lr = 1e-3`, no decay, no clipping.
    fn default() -> Self {
        Self {
            lr: 1e-3,
            lr_step: 1,
            lr_gamma: 1.0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_clip: None,
            weight_decay: 0.0,
            lr_schedule: LrSchedule::Step,
            warmup_epochs: 0,
            patience: 0,
        }
    }
}

impl OptimSettings {
    /// Checks every value.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the key (`optim.lr`, ...).
    pub fn validate(&self) -> Result<()> {
        self.adam()?;
        self.schedule()?;
        if let Some(c) = self.weight_clip {
            if !(c.is_finite() && c > 0.0) {
                return Err(Error::invalid("optim.weight_clip", "finite and > 0", c));
            }
        }
        let wd = self.weight_decay;
        if !(wd.is_finite() && wd >= 0.0 && self.lr * wd < 1.0) {
            return Err(Error::invalid(
                "optim.weight_decay",
                format!("finite, >= 0 and < 1 / lr = {}", 1.0 / self.lr),
                wd,
            ));
        }
        Ok(())
    }

    /// The learning rate of epoch `epoch` (0-based) of a run of `epochs` epochs whose
    /// earlier epochs had the validation accuracies `val_acc` (`None`: not evaluated; read
    /// by the plateau schedule only, which ignores `None`). With the defaults (step
    /// schedule, no warm-up) this is [`StepLr::lr`] of [`OptimSettings::schedule`].
    pub fn lr_at(&self, epoch: usize, epochs: usize, val_acc: &[Option<f64>]) -> f64 {
        let w = self.warmup_epochs;
        if epoch < w {
            return self.lr * (epoch + 1) as f64 / (w + 1) as f64;
        }
        let e = epoch - w;
        match self.lr_schedule {
            LrSchedule::Step => StepLr {
                base_lr: self.lr,
                step_size: self.lr_step,
                gamma: self.lr_gamma,
            }
            .lr(e),
            LrSchedule::Cosine => {
                let total = epochs.saturating_sub(w).max(1) as f64;
                self.lr * 0.5 * (1.0 + (std::f64::consts::PI * e as f64 / total).cos())
            }
            LrSchedule::Plateau => {
                let (mut best, mut since, mut decays) = (None::<f64>, 0usize, 0i32);
                for a in val_acc.iter().take(epoch).skip(w).flatten() {
                    if best.is_none_or(|b| *a > b) {
                        best = Some(*a);
                        since = 0;
                    } else {
                        since += 1;
                        if since >= self.lr_step.max(1) {
                            decays += 1;
                            since = 0;
                        }
                    }
                }
                self.lr * self.lr_gamma.powi(decays)
            }
        }
    }

    /// Early stopping: `Some(best)` when `patience > 0` and the epochs after the first
    /// epoch `best` (1-based) with the best validation accuracy in `val_acc` (one per
    /// epoch done) are at least `patience`; `None` otherwise.
    pub fn stop_after(&self, val_acc: &[Option<f64>]) -> Option<usize> {
        if self.patience == 0 {
            return None;
        }
        let mut best: Option<(usize, f64)> = None;
        for (i, a) in val_acc.iter().enumerate() {
            if let Some(a) = *a {
                if best.is_none_or(|(_, b)| a > b) {
                    best = Some((i + 1, a));
                }
            }
        }
        let (epoch, _) = best?;
        (val_acc.len() - epoch >= self.patience).then_some(epoch)
    }

    /// A fresh Adam optimiser of these settings.
    ///
    /// # Errors
    /// As [`Adam::new`], naming the key under `optim.`.
    pub fn adam(&self) -> Result<Adam> {
        Adam::new(self.lr, self.beta1, self.beta2, self.eps).map_err(in_section)
    }

    /// The learning-rate schedule of these settings.
    ///
    /// # Errors
    /// As [`StepLr::new`], naming the key under `optim.`.
    pub fn schedule(&self) -> Result<StepLr> {
        StepLr::new(self.lr, self.lr_step, self.lr_gamma).map_err(in_section)
    }
}

/// An error of [`Adam::new`] or [`StepLr::new`] with its argument named by its config key.
fn in_section(e: Error) -> Error {
    match e {
        Error::Invalid {
            arg,
            expected,
            actual,
        } => Error::Invalid {
            arg: match arg {
                "lr" => "optim.lr",
                "lr_step" => "optim.lr_step",
                "lr_gamma" => "optim.lr_gamma",
                "beta1" => "optim.beta1",
                "beta2" => "optim.beta2",
                "eps" => "optim.eps",
                "weight_decay" => "optim.weight_decay",
                other => other,
            },
            expected,
            actual,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_adam_step_moves_each_element_by_lr_against_the_gradient_sign() {
        // t = 1: m̂ = g, v̂ = g², so the update is lr * g / (|g| + eps) ≈ lr * sign(g).
        let mut adam = Adam::new(0.1, 0.9, 0.999, 1e-8).unwrap();
        let mut p = [1.0f64, 1.0, 1.0];
        adam.step(0, &mut p, &[2.0, -0.5, 0.0]);
        assert!((p[0] - 0.9).abs() < 1e-8);
        assert!((p[1] - 1.1).abs() < 1e-8);
        assert_eq!(p[2], 1.0);
    }

    #[test]
    fn second_adam_step_matches_hand_computation() {
        // g1 = 1, g2 = 3, b1 = 0.9, b2 = 0.999:
        // m2 = 0.9*0.1 + 0.1*3 = 0.39, v2 = 0.999*0.001 + 0.001*9 = 0.009999
        // m̂ = 0.39 / 0.19, v̂ = 0.009999 / 0.001999.
        // eps = 1e-12 (eps must be > 0) moves the step by ~1e-12, far below the tolerance.
        let mut adam = Adam::new(0.01, 0.9, 0.999, 1e-12).unwrap();
        let mut p = [0.0f32];
        adam.step(3, &mut p, &[1.0]);
        adam.step(3, &mut p, &[3.0]);
        let mhat = 0.39 / (1.0 - 0.81);
        let vhat: f64 = 0.009999 / (1.0 - 0.999f64.powi(2));
        let want = -0.01 - 0.01 * mhat / vhat.sqrt();
        assert!((p[0] as f64 - want).abs() < 1e-6, "{} vs {want}", p[0]);
        assert_eq!(adam.slots.len(), 4);
        assert_eq!(adam.slots[3].steps, 2);
    }

    #[test]
    fn adam_minimises_a_quadratic() {
        // f(p) = Σ (p - c)², gradient 2 (p - c): converges to c.
        let c = [3.0, -2.0];
        let mut p = [0.0f64, 0.0];
        let mut adam = Adam::new(0.05, 0.9, 0.999, 1e-8).unwrap();
        for _ in 0..2000 {
            let g = [2.0 * (p[0] - c[0]), 2.0 * (p[1] - c[1])];
            adam.step(0, &mut p, &g);
        }
        assert!(
            (p[0] - 3.0).abs() < 1e-2 && (p[1] + 2.0).abs() < 1e-2,
            "{p:?}"
        );
    }

    #[test]
    fn state_round_trips_through_json() {
        let mut adam = Adam::new(0.01, 0.9, 0.999, 1e-8).unwrap();
        let mut p = [0.5f64; 4];
        adam.step(0, &mut p, &[0.1, 0.2, 0.3, 0.4]);
        let back: Adam = serde_json::from_str(&serde_json::to_string(&adam).unwrap()).unwrap();
        // serde_json's default float parser may be off by one ulp; checkpoints store the
        // moments as tensors (bit-exact), JSON is for inspection.
        assert_eq!(back.slots[0].steps, 1);
        for (a, b) in back.slots[0].m.iter().zip(&adam.slots[0].m) {
            assert!((a - b).abs() <= 1e-15 * b.abs());
        }
    }

    #[test]
    fn default_schedule_is_the_step_schedule_bit_for_bit() {
        let o = OptimSettings {
            lr: 2e-3,
            lr_step: 3,
            lr_gamma: 0.7,
            ..OptimSettings::default()
        };
        let s = o.schedule().unwrap();
        for e in 0..20 {
            assert_eq!(o.lr_at(e, 20, &[]).to_bits(), s.lr(e).to_bits());
        }
    }

    #[test]
    fn warm_up_cosine_and_plateau_schedules() {
        let base = OptimSettings {
            lr: 1.0,
            lr_step: 2,
            lr_gamma: 0.5,
            warmup_epochs: 3,
            ..OptimSettings::default()
        };
        // Warm-up: 1/4, 2/4, 3/4, then the step schedule from its start.
        let lrs: Vec<f64> = (0..6).map(|e| base.lr_at(e, 10, &[])).collect();
        assert_eq!(lrs, [0.25, 0.5, 0.75, 1.0, 1.0, 0.5]);
        let cos = OptimSettings {
            lr_schedule: LrSchedule::Cosine,
            warmup_epochs: 0,
            ..base.clone()
        };
        assert_eq!(cos.lr_at(0, 4, &[]), 1.0);
        assert!((cos.lr_at(2, 4, &[]) - 0.5).abs() < 1e-15);
        assert!(cos.lr_at(3, 4, &[]) < cos.lr_at(2, 4, &[]));
        let plateau = OptimSettings {
            lr_schedule: LrSchedule::Plateau,
            warmup_epochs: 0,
            ..base
        };
        let v = [
            Some(0.5),
            Some(0.6),
            Some(0.6),
            Some(0.55),
            Some(0.7),
            Some(0.6),
        ];
        // Two epochs without improvement after epoch 2 (index 1): one decay from epoch 4.
        let lrs: Vec<f64> = (0..=6).map(|e| plateau.lr_at(e, 10, &v)).collect();
        assert_eq!(lrs, [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5]);
    }

    #[test]
    fn early_stopping_counts_epochs_since_the_best_validation_accuracy() {
        let o = OptimSettings {
            patience: 2,
            ..OptimSettings::default()
        };
        assert_eq!(o.stop_after(&[Some(0.5), Some(0.6), Some(0.6)]), None);
        assert_eq!(
            o.stop_after(&[Some(0.5), Some(0.6), Some(0.6), Some(0.4)]),
            Some(2)
        );
        assert_eq!(o.stop_after(&[None, None, None]), None);
        let off = OptimSettings::default();
        assert_eq!(off.stop_after(&[Some(0.9), Some(0.1), Some(0.1)]), None);
    }

    #[test]
    fn weight_decay_is_validated_with_its_key() {
        let o = OptimSettings {
            weight_decay: -1.0,
            ..OptimSettings::default()
        };
        let e = o.validate().unwrap_err().to_string();
        assert!(e.contains("optim.weight_decay") && e.contains("-1"), "{e}");
    }

    #[test]
    fn step_lr_decays_every_step_size_epochs() {
        let s = StepLr::new(2e-3, 10, 0.9).unwrap();
        assert_eq!(s.lr(0), 2e-3);
        assert_eq!(s.lr(9), 2e-3);
        assert!((s.lr(10) - 1.8e-3).abs() < 1e-15); // 2e-3 * 0.9
        assert!((s.lr(25) - 2e-3 * 0.81).abs() < 1e-15); // two decays
        assert!(StepLr::new(1e-3, 0, 0.9).is_err());
        assert!(Adam::new(1e-3, 1.0, 0.999, 1e-8).is_err());
    }
}

//! Augmentation of event samples for training, as the SHD recipes use it: random time
//! shift, channel (frequency) shift, time stretch, and blending two samples of one class.
//!
//! With the settings of [`Augment`], a training sample `x` (events `(t, c)`) becomes, in
//! this order:
//!
//! 1. **blend** (with probability `blend`, when its class has another sample `y`, drawn
//!    uniformly among them): `y` is moved so that its mean time and (rounded) mean channel
//!    equal `x`'s, then every event of `x` and of the moved `y` is kept with probability
//!    1/2 — [`blend`];
//! 2. **stretch**: `t ↦ s · t` with `s` uniform in `[1 − stretch, 1 + stretch]` — [`stretch`];
//! 3. **time shift**: `t ↦ t + Δt` with `Δt` uniform in `[−time_shift, time_shift]` —
//!    [`time_shift`];
//! 4. **channel shift**: `c ↦ c + Δc` with the integer `Δc` uniform in
//!    `[−channel_shift, channel_shift]` — [`channel_shift`].
//!
//! Events that end up outside the window `[0, window)` or the channels `[0, channels)` are
//! dropped and counted ([`AugmentStats`]). The functions are pure: the transforms take the
//! drawn values, [`blend`] and [`augment_sample`] an explicit RNG. [`Augmenter`] draws
//! sample `i` of epoch `e` from stream `i` of `ChaCha8(`[`augment_seed`]`(seed, e))`, so an
//! augmented batch depends only on `(seed, epoch, sample index)` — not on the batch size,
//! the order of the batches or the thread count. Every value is drawn whether or not its
//! augmentation is on, so turning one on does not change what the others draw.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::sample::{Spike, SpikeSet};

/// Augmentation settings (the `[augment]` table of a training config). All 0 (the
/// default): no augmentation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Augment {
    /// Largest time shift (s): `Δt` uniform in `[−time_shift, time_shift]`.
    pub time_shift: f64,
    /// Largest channel shift: the integer `Δc` uniform in `[−channel_shift, channel_shift]`.
    pub channel_shift: usize,
    /// Time stretch: the factor is uniform in `[1 − stretch, 1 + stretch]` (in `[0, 1)`).
    pub stretch: f64,
    /// Probability of blending a sample with another one of its class (in `[0, 1]`).
    pub blend: f64,
}

impl Augment {
    /// Whether every augmentation is off.
    pub fn is_off(&self) -> bool {
        self.time_shift == 0.0
            && self.channel_shift == 0
            && self.stretch == 0.0
            && self.blend == 0.0
    }

    /// Checks the ranges.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the key (`augment.time_shift`, …): `time_shift` finite and
    /// `>= 0`, `channel_shift` at most `2^31 − 1`, `stretch` in `[0, 1)`, `blend` in
    /// `[0, 1]`.
    ///
    /// ```
    /// use eventprop_data::augment::Augment;
    /// assert!(Augment { blend: 0.5, ..Augment::default() }.validate().is_ok());
    /// let e = Augment { stretch: 1.0, ..Augment::default() }.validate().unwrap_err();
    /// assert_eq!(e.to_string(), "augment.stretch: expected in [0, 1), got 1");
    /// ```
    pub fn validate(&self) -> Result<()> {
        if !(self.time_shift.is_finite() && self.time_shift >= 0.0) {
            return Err(Error::invalid(
                "augment.time_shift",
                "finite and >= 0",
                self.time_shift,
            ));
        }
        if self.channel_shift > i32::MAX as usize {
            return Err(Error::invalid(
                "augment.channel_shift",
                "at most 2^31 - 1",
                self.channel_shift,
            ));
        }
        if !(0.0..1.0).contains(&self.stretch) {
            return Err(Error::invalid("augment.stretch", "in [0, 1)", self.stretch));
        }
        if !(0.0..=1.0).contains(&self.blend) {
            return Err(Error::invalid("augment.blend", "in [0, 1]", self.blend));
        }
        Ok(())
    }
}

/// What augmentation did to a set of samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AugmentStats {
    /// Samples augmented.
    pub samples: usize,
    /// Of those, blended with another sample of their class.
    pub blended: usize,
    /// Events dropped because they left the window `[0, window)`.
    pub dropped_time: usize,
    /// Events dropped because they left the channels `[0, channels)`.
    pub dropped_channel: usize,
}

impl std::ops::AddAssign for AugmentStats {
    fn add_assign(&mut self, o: Self) {
        self.samples += o.samples;
        self.blended += o.blended;
        self.dropped_time += o.dropped_time;
        self.dropped_channel += o.dropped_channel;
    }
}

/// `events` with every time moved by `shift` (s); events outside `[0, window)` are dropped.
/// Returns the events and the number dropped.
pub fn time_shift(events: &[Spike], shift: f64, window: f64) -> (Vec<Spike>, usize) {
    map_times(events, window, |t| t + shift)
}

/// `events` with every time multiplied by `factor` (a stretch about `t = 0`); events
/// outside `[0, window)` are dropped. Returns the events and the number dropped.
pub fn stretch(events: &[Spike], factor: f64, window: f64) -> (Vec<Spike>, usize) {
    map_times(events, window, |t| t * factor)
}

fn map_times(events: &[Spike], window: f64, f: impl Fn(f64) -> f64) -> (Vec<Spike>, usize) {
    let out: Vec<Spike> = events
        .iter()
        .map(|e| Spike {
            time: f(e.time),
            neuron: e.neuron,
        })
        .filter(|e| (0.0..window).contains(&e.time))
        .collect();
    let dropped = events.len() - out.len();
    (out, dropped)
}

/// `events` with every channel moved by `shift`; events outside `[0, channels)` are
/// dropped. Returns the events and the number dropped.
pub fn channel_shift(events: &[Spike], shift: i64, channels: usize) -> (Vec<Spike>, usize) {
    let out: Vec<Spike> = events
        .iter()
        .filter_map(|e| {
            let c = i64::from(e.neuron) + shift;
            (0..channels as i64).contains(&c).then_some(Spike {
                time: e.time,
                neuron: c as u32,
            })
        })
        .collect();
    let dropped = events.len() - out.len();
    (out, dropped)
}

/// The mean time and mean channel of `events` (`None` when empty).
fn centre(events: &[Spike]) -> Option<(f64, f64)> {
    if events.is_empty() {
        return None;
    }
    let n = events.len() as f64;
    let t = events.iter().map(|e| e.time).sum::<f64>() / n;
    let c = events.iter().map(|e| f64::from(e.neuron)).sum::<f64>() / n;
    Some((t, c))
}

/// Blends two samples of one class: `b` is moved so that its mean time and rounded mean
/// channel equal `a`'s, then each event of `a` and of the moved `b` is kept with
/// probability 1/2 (one draw per event, `a`'s first, then `b`'s, from `rng`). Returns the
/// union sorted by time then channel, and the events of `b` dropped by the move as
/// `(outside [0, window), outside [0, channels))`.
pub fn blend(
    a: &[Spike],
    b: &[Spike],
    window: f64,
    channels: usize,
    rng: &mut impl Rng,
) -> (Vec<Spike>, usize, usize) {
    let (dt, dc) = match (centre(a), centre(b)) {
        (Some((ta, ca)), Some((tb, cb))) => (ta - tb, (ca - cb).round() as i64),
        _ => (0.0, 0),
    };
    let (moved, dropped_channel) = channel_shift(b, dc, channels);
    let (moved, dropped_time) = time_shift(&moved, dt, window);
    let mut out: Vec<Spike> = a.iter().copied().filter(|_| rng.random_bool(0.5)).collect();
    out.extend(moved.into_iter().filter(|_| rng.random_bool(0.5)));
    out.sort_by(|x, y| x.time.total_cmp(&y.time).then(x.neuron.cmp(&y.neuron)));
    (out, dropped_time, dropped_channel)
}

/// One augmented sample (the module docs give the steps): `partner` is the other sample of
/// the class for blending (`None`: no blend). The values are drawn from `rng` in a fixed
/// order — blend or not, stretch factor, time shift, channel shift, then blend's keep
/// decisions — whether or not each augmentation is on.
pub fn augment_sample(
    events: &[Spike],
    partner: Option<&[Spike]>,
    settings: &Augment,
    window: f64,
    channels: usize,
    rng: &mut impl Rng,
) -> (Vec<Spike>, AugmentStats) {
    let u: f64 = rng.random();
    let s = 1.0 + settings.stretch * rng.random_range(-1.0..=1.0);
    let dt = settings.time_shift * rng.random_range(-1.0..=1.0);
    let n = settings.channel_shift as i64;
    let dc = rng.random_range(-n..=n);
    let mut stats = AugmentStats {
        samples: 1,
        ..AugmentStats::default()
    };
    let mut x = match partner {
        Some(p) if u < settings.blend => {
            let (x, t, c) = blend(events, p, window, channels, rng);
            stats.blended = 1;
            stats.dropped_time += t;
            stats.dropped_channel += c;
            x
        }
        _ => events.to_vec(),
    };
    if s != 1.0 {
        let d;
        (x, d) = stretch(&x, s, window);
        stats.dropped_time += d;
    }
    if dt != 0.0 {
        let d;
        (x, d) = time_shift(&x, dt, window);
        stats.dropped_time += d;
    }
    if dc != 0 {
        let d;
        (x, d) = channel_shift(&x, dc, channels);
        stats.dropped_channel += d;
    }
    (x, stats)
}

/// Seed of the augmentation of epoch `epoch` (0-based) of a run with seed `seed`.
pub fn augment_seed(seed: u64, epoch: usize) -> u64 {
    (seed ^ 0xA076_1D64_78BD_642F)
        .wrapping_add((epoch as u64 + 1).wrapping_mul(0xE703_7ED1_A0B4_28DB))
}

/// Augments the samples of a training set, deterministically in `(seed, epoch, sample
/// index)` (see the module docs).
#[derive(Debug, Clone)]
pub struct Augmenter<'a> {
    settings: Augment,
    set: &'a SpikeSet,
    /// The sample indices of each class, ascending.
    by_class: Vec<Vec<usize>>,
    window: f64,
    channels: usize,
    seed: u64,
}

impl<'a> Augmenter<'a> {
    /// An augmenter of `set` for a network with `channels` inputs simulated over
    /// `[0, window)`, seeded by the run's `seed`.
    pub fn new(
        settings: Augment,
        set: &'a SpikeSet,
        window: f64,
        channels: usize,
        seed: u64,
    ) -> Self {
        let classes = set.labels.iter().max().map_or(0, |&k| k + 1);
        let mut by_class = vec![Vec::new(); classes];
        for (i, &k) in set.labels.iter().enumerate() {
            by_class[k].push(i);
        }
        Self {
            settings,
            set,
            by_class,
            window,
            channels,
            seed,
        }
    }

    /// Sample `i` of the set, augmented for epoch `epoch` (0-based), and what was done.
    ///
    /// # Panics
    /// When `i` is not a sample of the set.
    #[track_caller]
    pub fn sample(&self, epoch: usize, i: usize) -> (Vec<Spike>, AugmentStats) {
        assert!(i < self.set.len(), "sample {i} of {}", self.set.len());
        let mut rng = ChaCha8Rng::seed_from_u64(augment_seed(self.seed, epoch));
        rng.set_stream(i as u64);
        let same = &self.by_class[self.set.labels[i]];
        let partner = if same.len() >= 2 {
            let me = same.binary_search(&i).expect("i is in its class");
            let r = rng.random_range(0..same.len() - 1);
            Some(self.set.samples[same[if r >= me { r + 1 } else { r }]].as_slice())
        } else {
            None
        };
        augment_sample(
            &self.set.samples[i],
            partner,
            &self.settings,
            self.window,
            self.channels,
            &mut rng,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(time: f64, neuron: u32) -> Spike {
        Spike { time, neuron }
    }

    #[test]
    fn shifts_and_stretch_move_and_drop() {
        let x = [sp(0.1, 0), sp(0.5, 3), sp(0.9, 9)];
        // +0.2 s: 0.9 → 1.1 leaves [0, 1).
        let (y, d) = time_shift(&x, 0.2, 1.0);
        assert_eq!(d, 1);
        assert_eq!(y, [sp(0.1 + 0.2, 0), sp(0.5 + 0.2, 3)]);
        // −0.2 s: 0.1 → −0.1 leaves it.
        let (y, d) = time_shift(&x, -0.2, 1.0);
        assert_eq!((y.len(), d), (2, 1));
        // ×1.2: 0.9 → 1.08 leaves it.
        let (y, d) = stretch(&x, 1.2, 1.0);
        assert_eq!(y, [sp(0.1 * 1.2, 0), sp(0.5 * 1.2, 3)]);
        assert_eq!(d, 1);
        // +1 channel of 10: 9 → 10 leaves [0, 10); −1: 0 → −1 leaves it.
        assert_eq!(channel_shift(&x, 1, 10), (vec![sp(0.1, 1), sp(0.5, 4)], 1));
        assert_eq!(channel_shift(&x, -1, 10), (vec![sp(0.5, 2), sp(0.9, 8)], 1));
        assert_eq!(channel_shift(&x, 0, 10), (x.to_vec(), 0));
    }

    #[test]
    fn blend_aligns_and_keeps_about_half() {
        // b is a moved by +0.1 s and +5 channels: aligned, it coincides with a.
        let a: Vec<Spike> = (0..400)
            .map(|k| sp(0.1 + k as f64 * 1e-3, k % 50))
            .collect();
        let b: Vec<Spike> = a.iter().map(|e| sp(e.time + 0.1, e.neuron + 5)).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (y, dt, dc) = blend(&a, &b, 1.0, 60, &mut rng);
        assert_eq!((dt, dc), (0, 0));
        // Every kept event is one of a's (b aligned onto a); about half of 800 are kept.
        assert!(y.iter().all(|e| a
            .iter()
            .any(|x| (x.time - e.time).abs() < 1e-12 && x.neuron == e.neuron)));
        assert!((300..500).contains(&y.len()), "{}", y.len());
        assert!(y.windows(2).all(|w| w[0].time <= w[1].time));
    }

    #[test]
    fn augmenter_is_deterministic_and_epoch_dependent() {
        let set = SpikeSet {
            samples: (0..6)
                .map(|k| {
                    (0..100)
                        .map(|j| sp(0.2 + j as f64 * 5e-3, (j + k) % 40))
                        .collect()
                })
                .collect(),
            labels: vec![0, 1, 0, 1, 0, 1],
        };
        let on = Augment {
            time_shift: 0.05,
            channel_shift: 3,
            stretch: 0.1,
            blend: 0.5,
        };
        let a = Augmenter::new(on, &set, 1.0, 40, 7);
        let (x0, s0) = a.sample(0, 2);
        assert_eq!(a.sample(0, 2), (x0.clone(), s0));
        assert_ne!(a.sample(1, 2).0, x0);
        assert_ne!(Augmenter::new(on, &set, 1.0, 40, 8).sample(0, 2).0, x0);
        // Every event stays in range; what left it is counted.
        let mut total = AugmentStats::default();
        for e in 0..20 {
            for i in 0..6 {
                let (x, s) = a.sample(e, i);
                assert!(x
                    .iter()
                    .all(|e| (0.0..1.0).contains(&e.time) && e.neuron < 40));
                total += s;
            }
        }
        assert_eq!(total.samples, 120);
        assert!(total.blended > 30 && total.blended < 90, "{total:?}");
        assert!(total.dropped_channel > 0, "{total:?}");
        // Off: the sample itself.
        let off = Augmenter::new(Augment::default(), &set, 1.0, 40, 7);
        assert_eq!(off.sample(3, 1).0, set.samples[1]);
        // A class of one sample is never blended.
        let single = SpikeSet {
            samples: vec![set.samples[0].clone()],
            labels: vec![0],
        };
        let b = Augmenter::new(
            Augment {
                blend: 1.0,
                ..Augment::default()
            },
            &single,
            1.0,
            40,
            0,
        );
        assert_eq!(b.sample(0, 0).1.blended, 0);
    }

    #[test]
    fn turning_one_augmentation_on_keeps_the_others_draws() {
        let set = SpikeSet {
            samples: vec![(0..50).map(|j| sp(0.3 + j as f64 * 1e-3, j + 10)).collect(); 2],
            labels: vec![0, 0],
        };
        let shift = Augment {
            time_shift: 0.1,
            ..Augment::default()
        };
        let both = Augment {
            channel_shift: 2,
            ..shift
        };
        let (x, _) = Augmenter::new(shift, &set, 1.0, 100, 3).sample(0, 0);
        let (y, _) = Augmenter::new(both, &set, 1.0, 100, 3).sample(0, 0);
        // Same time shift in both; y is also moved in channel.
        let dt = x[0].time - set.samples[0][0].time;
        assert!(y.iter().all(|e| e.time >= 0.3 + dt - 1e-12));
        assert_eq!(x.len(), y.len());
        assert!(x.iter().zip(&y).all(|(a, b)| a.time == b.time));
    }

    #[test]
    fn validate_names_the_key() {
        assert!(Augment::default().is_off());
        assert!(Augment::default().validate().is_ok());
        for (bad, key) in [
            (
                Augment {
                    time_shift: -1.0,
                    ..Augment::default()
                },
                "augment.time_shift",
            ),
            (
                Augment {
                    blend: 1.5,
                    ..Augment::default()
                },
                "augment.blend",
            ),
            (
                Augment {
                    stretch: f64::NAN,
                    ..Augment::default()
                },
                "augment.stretch",
            ),
        ] {
            assert!(bad.validate().unwrap_err().to_string().starts_with(key));
        }
    }
}

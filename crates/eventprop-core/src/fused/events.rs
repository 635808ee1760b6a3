//! Spike events on the time grid, one compact list per batch row: the input and output form
//! of the fused layer ([`super::FusedLif`]).

use ndarray::{Array3, ArrayView3};

use crate::error::{check_finite, Error, Result};
use crate::Real;

/// The events of one batch row, ordered by time step (CSR over steps): step `t` holds the
/// channels `indices()[range(t)]` with the values `values()[range(t)]`.
///
/// Built step by step with [`EventRow::push`] and [`EventRow::end_step`]; channels within a
/// step in increasing order give the seed's summation order.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow<F> {
    ptr: Vec<usize>,
    idx: Vec<u32>,
    val: Vec<F>,
}

impl<F: Real> Default for EventRow<F> {
    fn default() -> Self {
        Self::new()
    }
}

impl<F: Real> EventRow<F> {
    /// An empty row of zero steps.
    pub fn new() -> Self {
        Self {
            ptr: vec![0],
            idx: Vec::new(),
            val: Vec::new(),
        }
    }

    /// Empties the row (zero steps), keeping its capacity.
    pub fn clear(&mut self) {
        self.ptr.clear();
        self.ptr.push(0);
        self.idx.clear();
        self.val.clear();
    }

    /// Adds an event of `channel` with `value` to the step under construction.
    #[inline]
    pub fn push(&mut self, channel: u32, value: F) {
        self.idx.push(channel);
        self.val.push(value);
    }

    /// Adds one event of value `value` per channel of `channels` (in that order) to the step
    /// under construction: [`EventRow::push`] for each, with one capacity check.
    #[inline]
    pub fn extend_uniform(&mut self, channels: &[u32], value: F) {
        reserve_pow2(&mut self.idx, channels.len());
        reserve_pow2(&mut self.val, channels.len());
        self.idx.extend_from_slice(channels);
        self.val.resize(self.val.len() + channels.len(), value);
    }

    /// Closes the step under construction; the next events belong to the next step.
    #[inline]
    pub fn end_step(&mut self) {
        self.ptr.push(self.idx.len());
    }

    /// Number of closed steps.
    pub fn steps(&self) -> usize {
        self.ptr.len() - 1
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.idx.len()
    }

    /// Whether the row holds no event.
    pub fn is_empty(&self) -> bool {
        self.idx.is_empty()
    }

    /// Positions (into [`EventRow::indices`]) of the events of step `t`.
    ///
    /// # Panics
    /// If `t >= self.steps()`.
    #[inline]
    #[track_caller]
    pub fn range(&self, t: usize) -> std::ops::Range<usize> {
        self.ptr[t]..self.ptr[t + 1]
    }

    /// Channels of all events, step by step.
    pub fn indices(&self) -> &[u32] {
        &self.idx
    }

    /// Values of all events, aligned with [`EventRow::indices`].
    pub fn values(&self) -> &[F] {
        &self.val
    }

    /// Step of every event, aligned with [`EventRow::indices`].
    pub fn event_steps(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.steps()).flat_map(move |t| self.range(t).map(move |_| t))
    }
}

/// Events of a batch: one [`EventRow`] per batch row, `T` steps each, channels `< C`.
#[derive(Debug, Clone, PartialEq)]
pub struct EventBatch<F> {
    steps: usize,
    channels: usize,
    rows: Vec<EventRow<F>>,
}

impl<F: Real> EventBatch<F> {
    /// `batch` empty rows of `steps` steps each (no events), for `channels` channels.
    pub fn empty(steps: usize, batch: usize, channels: usize) -> Self {
        let mut row = EventRow::new();
        for _ in 0..steps {
            row.end_step();
        }
        Self {
            steps,
            channels,
            rows: vec![row; batch],
        }
    }

    /// Wraps rows built by the caller.
    ///
    /// # Errors
    /// [`Error::Shape`] naming `events` when a row does not have `steps` steps or a channel
    /// is `>= channels`; [`Error::NonFinite`] for a NaN/inf value.
    pub fn from_rows(steps: usize, channels: usize, rows: Vec<EventRow<F>>) -> Result<Self> {
        for (b, row) in rows.iter().enumerate() {
            if row.steps() != steps {
                return Err(Error::Shape {
                    arg: "events",
                    expected: format!("{steps} steps in every row"),
                    actual: format!("{} steps in row {b}", row.steps()),
                });
            }
            if let Some(&c) = row.idx.iter().find(|&&c| c as usize >= channels) {
                return Err(Error::Shape {
                    arg: "events",
                    expected: format!("channels < {channels}"),
                    actual: format!("channel {c} in row {b}"),
                });
            }
            check_finite("events", &row.val, &[row.val.len()])?;
        }
        Ok(Self {
            steps,
            channels,
            rows,
        })
    }

    /// The non-zeros of a time-major `(T, B, C)` array, in increasing channel order.
    ///
    /// # Errors
    /// [`Error::NonFinite`] naming `input` for NaN/inf; [`Error::Shape`] when `C`
    /// exceeds `u32::MAX`.
    pub fn from_dense(x: ArrayView3<'_, F>) -> Result<Self> {
        let (steps, batch, channels) = x.dim();
        if channels > u32::MAX as usize {
            return Err(Error::Shape {
                arg: "input",
                expected: format!("(T, B, C) with C <= {}", u32::MAX),
                actual: format!("C = {channels}"),
            });
        }
        let x = x.as_standard_layout();
        check_finite("input", x.as_slice().expect("standard layout"), x.shape())?;
        let mut rows = vec![EventRow::new(); batch];
        for t in 0..steps {
            for (b, row) in rows.iter_mut().enumerate() {
                for c in 0..channels {
                    let v = x[[t, b, c]];
                    if v != F::zero() {
                        row.push(c as u32, v);
                    }
                }
                row.end_step();
            }
        }
        Ok(Self {
            steps,
            channels,
            rows,
        })
    }

    /// The dense `(T, B, C)` array of these events (several events of one channel in one
    /// step add up).
    pub fn to_dense(&self) -> Array3<F> {
        let mut x = Array3::zeros((self.steps, self.rows.len(), self.channels));
        for (b, row) in self.rows.iter().enumerate() {
            for (p, t) in row.event_steps().enumerate() {
                x[[t, b, row.idx[p] as usize]] += row.val[p];
            }
        }
        x
    }

    /// Values of a dense `(T, B, C)` array at the events, row by row (aligned with each
    /// row's [`EventRow::indices`]): e.g. a loss gradient at the spikes.
    ///
    /// # Errors
    /// [`Error::Shape`] naming `dense` when the shape is not `(T, B, C)`.
    pub fn gather(&self, dense: ArrayView3<'_, F>) -> Result<Vec<Vec<F>>> {
        let want = [self.steps, self.rows.len(), self.channels];
        crate::error::check_shape("dense", dense.shape(), &want)?;
        Ok(self
            .rows
            .iter()
            .enumerate()
            .map(|(b, row)| {
                row.event_steps()
                    .zip(&row.idx)
                    .map(|(t, &c)| dense[[t, b, c as usize]])
                    .collect()
            })
            .collect())
    }

    /// Time steps `T`.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Batch rows `B`.
    pub fn batch(&self) -> usize {
        self.rows.len()
    }

    /// Channels `C`.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// The rows.
    pub fn rows(&self) -> &[EventRow<F>] {
        &self.rows
    }

    /// Total number of events.
    pub fn len(&self) -> usize {
        self.rows.iter().map(EventRow::len).sum()
    }

    /// Whether there is no event at all.
    pub fn is_empty(&self) -> bool {
        self.rows.iter().all(EventRow::is_empty)
    }

    /// Mutable rows and the shape, for a layer that refills them in place.
    pub(crate) fn reset_shape(&mut self, steps: usize, batch: usize, channels: usize) {
        self.steps = steps;
        self.channels = channels;
        self.rows.resize_with(batch, EventRow::new);
    }

    pub(crate) fn rows_mut(&mut self) -> &mut [EventRow<F>] {
        &mut self.rows
    }
}

/// Makes room for `extra` more elements in `v`, growing it to a power-of-two capacity —
/// the capacities that pushing one element at a time reaches. Bulk appends left to `Vec`
/// grow to multiples of the first append's length instead, which the allocator rounds up
/// to its size classes: measured at the SHD-like bench size, 376–380 MB peak against
/// 343–348 MB with per-element pushes.
#[inline]
pub(crate) fn reserve_pow2<T>(v: &mut Vec<T>, extra: usize) {
    let need = v.len() + extra;
    if need > v.capacity() {
        v.reserve_exact(need.next_power_of_two() - v.len());
    }
}

#[cfg(test)]
mod tests {
    use super::reserve_pow2;

    /// Bulk appends reach the power-of-two capacities of per-element pushes: after each
    /// reservation the capacity is a power of two holding everything asked for, and a
    /// reservation that fits changes nothing.
    #[test]
    fn reserve_pow2_grows_to_powers_of_two() {
        let mut v: Vec<u32> = Vec::new();
        for (extra, expected) in [(27, 32), (5, 32), (1, 64), (100, 256), (0, 256)] {
            reserve_pow2(&mut v, extra);
            assert_eq!(v.capacity(), expected, "extra {extra}");
            v.extend(std::iter::repeat_n(7, extra));
        }
    }
}

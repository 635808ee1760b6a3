//! The delay-line input of event runs (`events.delay_line`, `events.delay_line_spacing`):
//! every input channel is fed to the network `copies` times, copy `k` delayed by
//! `k × spacing`, so a feed-forward layer sees the recent past of its input at once. This
//! is the input of the EventProp SHD recipe of the loss-shaping paper (Nowotny, Turner &
//! Knight; its SHD scans use 10 copies 30 ms apart).
//!
//! The data keep their `C` channels (augmentation shifts those); the network has `C ×
//! copies` inputs, channel `c` of copy `k` being input `k C + c`. [`DelayLined`] wraps any
//! engine and expands each sample just before it runs, so training, evaluation, the
//! initialisation pass and the rasters all see the same input. Delayed events at or after
//! the window's end are dropped (they could not reach the network within it).

use ndarray::Array2;

use super::{BatchOutcome, Engine, EngineKind, Pass};
use crate::error::Result;
use crate::loss::BatchCounts;
use eventprop_core::spec::NetworkSpec;
use eventprop_data::Spike;

/// The copies of the input and their spacing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DelayLine {
    /// Channels of the data.
    pub channels: usize,
    /// Copies of each channel (1: no delay line).
    pub copies: usize,
    /// Delay between successive copies (s).
    pub spacing: f64,
    /// End of the window (s): delayed events at or after it are dropped.
    pub t_sim: f64,
}

impl DelayLine {
    /// `input` (sorted by time, channels `< channels`) with its delayed copies, sorted by
    /// `(time, neuron)`.
    pub fn expand(&self, input: &[Spike]) -> Vec<Spike> {
        let mut out = Vec::with_capacity(input.len() * self.copies);
        for k in 0..self.copies {
            let delay = k as f64 * self.spacing;
            let offset = (k * self.channels) as u32;
            out.extend(input.iter().filter_map(|s| {
                let time = s.time + delay;
                (k == 0 || time < self.t_sim).then_some(Spike {
                    time,
                    neuron: s.neuron + offset,
                })
            }));
        }
        eventprop_core::spike::sort_spikes(&mut out);
        out
    }
}

/// An engine whose inputs pass through a [`DelayLine`] first.
#[derive(Debug)]
pub struct DelayLined {
    inner: Box<dyn Engine>,
    line: DelayLine,
}

impl DelayLined {
    /// `inner` (built for `line.channels × line.copies` inputs) behind `line`.
    pub fn new(inner: Box<dyn Engine>, line: DelayLine) -> Self {
        Self { inner, line }
    }
}

impl Engine for DelayLined {
    fn kind(&self) -> EngineKind {
        self.inner.kind()
    }

    fn spec(&self) -> &NetworkSpec {
        self.inner.spec()
    }

    fn run_shared(
        &self,
        weights: &[Array2<f64>],
        inputs: &[&[Spike]],
        labels: &[usize],
        pass: Pass,
        counts: &dyn BatchCounts,
    ) -> Result<BatchOutcome> {
        let expanded: Vec<Vec<Spike>> = inputs.iter().map(|x| self.line.expand(x)).collect();
        let views: Vec<&[Spike]> = expanded.iter().map(Vec::as_slice).collect();
        self.inner.run_shared(weights, &views, labels, pass, counts)
    }

    fn hidden_spikes(&self, weights: &[Array2<f64>], input: &[Spike]) -> Result<Vec<Vec<Spike>>> {
        self.inner.hidden_spikes(weights, &self.line.expand(input))
    }

    fn hidden_counts(
        &self,
        weights: &[Array2<f64>],
        inputs: &[&[Spike]],
    ) -> Result<Vec<Vec<usize>>> {
        let expanded: Vec<Vec<Spike>> = inputs.iter().map(|x| self.line.expand(x)).collect();
        let views: Vec<&[Spike]> = expanded.iter().map(Vec::as_slice).collect();
        self.inner.hidden_counts(weights, &views)
    }

    fn weight_limit(&self) -> Option<f64> {
        self.inner.weight_limit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(time: f64, neuron: u32) -> Spike {
        Spike { time, neuron }
    }

    /// Copy `k` of channel `c` is input `k C + c`, `k × spacing` later; copies past the
    /// window are dropped; the result is sorted by time (values worked out by hand).
    #[test]
    fn copies_are_delayed_and_offset() {
        let line = DelayLine {
            channels: 3,
            copies: 3,
            spacing: 0.01,
            t_sim: 0.035,
        };
        let out = line.expand(&[s(0.0, 2), s(0.02, 0)]);
        let got: Vec<(f64, u32)> = out.iter().map(|e| (e.time, e.neuron)).collect();
        assert_eq!(
            got,
            vec![(0.0, 2), (0.01, 5), (0.02, 0), (0.02, 8), (0.03, 3)],
            "the last copy of the second event (0.04 s) is past the 0.035 s window"
        );
    }

    /// One copy is the identity.
    #[test]
    fn one_copy_is_the_input() {
        let line = DelayLine {
            channels: 4,
            copies: 1,
            spacing: 0.03,
            t_sim: 1.0,
        };
        let x = vec![s(0.1, 3), s(0.2, 0), s(0.2, 1)];
        assert_eq!(line.expand(&x), x);
    }
}

//! Event inputs on the chip: the modelled resources, the binning of input channels onto
//! synapse rows, and the per-row limit of one event per grid step.
//!
//! # The resources modelled
//! (BrainScaleS-2, one chip; the values are [`crate::ChipSettings`] keys with these
//! defaults, assumptions taken from the chip's published description, not measured.)
//!
//! * `chip.neurons = 512` neurons: every hidden and output neuron of the network is one
//!   (hidden + output ≤ 512);
//! * `chip.input_rows = 256` synapse rows reach a neuron (one hemisphere), each synapse a
//!   6-bit weight (levels 0…63) whose sign is the row's type (excitatory or inhibitory). A
//!   signed weight takes one row of each type ([`ROWS_PER_INPUT`] = 2), so a neuron takes
//!   at most `input_rows / 2 = 128` inputs: the first hidden layer's input channels and
//!   every later layer's presynaptic neurons ([`check_resources`]);
//! * 6-bit signed weights (127 levels): the mock's quantisation ([`crate::mock`]);
//! * `chip.speedup = 1000`: the chip runs 1000× faster than biological time, so an event
//!   data set's times, time step and time constants are divided by it on the mock (the
//!   ideal chip has no clock and runs in the data's time);
//! * event rate: at most one event per synapse row per grid step (`events.dt`; 1 µs on the
//!   chip at the defaults). A second event of a row in a step is merged into the first
//!   (the first's time is kept); the software collapses it the same way, so the host and
//!   the chip see the same input. The chip-wide input bandwidth is not modelled.
//!
//! # The mapping
//! Channel `c` goes to row `c / channel_bin` (neighbouring channels merged, as the
//! BrainScaleS-2 SHD work binned 700 channels onto 70); [`channel_bin_for`] is the
//! smallest bin that fits the rows. [`InputMap`] then keeps one event per (row, step) and
//! drops events outside the grid, counting both ([`InputStats`]).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use eventprop_core::spec::NetworkSpec;
use eventprop_core::Spike;

/// Synapse rows per signed input: the sign of a synapse is its row's type, so a signed
/// weight takes an excitatory and an inhibitory row.
pub const ROWS_PER_INPUT: usize = 2;

/// Default `chip.neurons`: BrainScaleS-2's 512 neurons.
pub const DEFAULT_NEURONS: usize = 512;

/// Default `chip.input_rows`: the 256 synapse rows of a BrainScaleS-2 hemisphere.
pub const DEFAULT_INPUT_ROWS: usize = 256;

/// Default `chip.speedup`: BrainScaleS-2's acceleration over biological time.
pub const DEFAULT_SPEEDUP: f64 = 1000.0;

/// The most signed inputs a neuron takes with `input_rows` synapse rows.
pub fn max_inputs(input_rows: usize) -> usize {
    input_rows / ROWS_PER_INPUT
}

/// The smallest channel bin that puts `channels` input channels on at most
/// [`max_inputs`]`(input_rows)` inputs: `ceil(channels / max_inputs)` (at least 1).
///
/// # Errors
/// [`Error::Invalid`] naming `chip.input_rows` when it is below [`ROWS_PER_INPUT`].
pub fn channel_bin_for(channels: usize, input_rows: usize) -> Result<usize> {
    let m = max_inputs(input_rows);
    if m == 0 {
        return Err(Error::invalid(
            "chip.input_rows",
            format!("at least {ROWS_PER_INPUT} (one signed input)"),
            input_rows,
        ));
    }
    Ok(channels.div_ceil(m).max(1))
}

/// The inputs of `channels` channels binned by `bin`: `ceil(channels / bin)`.
pub fn binned_channels(channels: usize, bin: usize) -> usize {
    channels.div_ceil(bin.max(1))
}

/// Moves every event of channel `c` to input `c / bin` (neighbouring channels merged).
/// Events keep their times and order; several events of one input in one step are merged
/// later ([`InputMap`], and the software's own rasterisation).
pub fn bin_channels(samples: &mut [Vec<Spike>], bin: usize) {
    if bin <= 1 {
        return;
    }
    let bin = bin as u32;
    for s in samples.iter_mut().flatten() {
        s.neuron /= bin;
    }
}

/// Refuses a network the modelled chip cannot hold: more hidden and output neurons than
/// `neurons`, or a layer with more inputs than [`max_inputs`]`(input_rows)`. `inputs_arg`
/// names the setting that sets the first layer's inputs (e.g. `events.channel_bin`).
///
/// # Errors
/// [`Error::Invalid`] naming the setting, with the limit and the network's value.
pub fn check_resources(
    spec: &NetworkSpec,
    neurons: usize,
    input_rows: usize,
    inputs_arg: &'static str,
) -> Result<()> {
    let total: usize = spec.hidden.iter().sum::<usize>() + spec.n_out;
    if total > neurons {
        return Err(Error::invalid(
            "network.hidden",
            format!("hidden + output neurons at most chip.neurons = {neurons}"),
            format!(
                "{total} ({} hidden + {} output)",
                spec.hidden.iter().sum::<usize>(),
                spec.n_out
            ),
        ));
    }
    let m = max_inputs(input_rows);
    let rows = format!(
        "at most {m} inputs per neuron (chip.input_rows = {input_rows} synapse rows, \
         {ROWS_PER_INPUT} per signed input)"
    );
    if spec.n_in > m {
        let hint = channel_bin_for(spec.n_in, input_rows)
            .map(|b| format!("; bin the channels by {b} or more"))
            .unwrap_or_default();
        return Err(Error::invalid(
            inputs_arg,
            format!("{rows}{hint}"),
            format!("{} inputs to the first layer", spec.n_in),
        ));
    }
    // every hidden layer feeds the next layer (or the output)
    if let Some((l, &n)) = spec.hidden.iter().enumerate().find(|&(_, &n)| n > m) {
        return Err(Error::invalid(
            "network.hidden",
            format!("{rows}: hidden layers of at most {m} neurons feed the next layer"),
            format!("hidden layer {l} of {n} neurons"),
        ));
    }
    Ok(())
}

/// `spec` on a chip `speedup` times faster than its own time: every time constant divided
/// by `speedup` (weights, thresholds and sizes unchanged).
pub fn on_chip_time(spec: &NetworkSpec, speedup: f64) -> NetworkSpec {
    let lif = |l: eventprop_core::Lif| eventprop_core::Lif {
        tau_syn: l.tau_syn / speedup,
        tau_mem: l.tau_mem / speedup,
        ..l
    };
    NetworkSpec {
        lif: lif(spec.lif),
        readout: match spec.readout {
            eventprop_core::spec::Readout::Integrator { tau_syn, tau_mem } => {
                eventprop_core::spec::Readout::Integrator {
                    tau_syn: tau_syn / speedup,
                    tau_mem: tau_mem / speedup,
                }
            }
            eventprop_core::spec::Readout::Spiking(l) => {
                eventprop_core::spec::Readout::Spiking(lif(l))
            }
        },
        ..spec.clone()
    }
}

/// What the input mapping did with the events of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InputStats {
    /// Input events offered (after channel binning).
    pub events: u64,
    /// Events merged into an earlier event of the same row in the same grid step (the
    /// per-row limit of one event per step).
    pub merged: u64,
    /// Events outside the grid (`round(t / dt)` not in `[0, T)`) or on no row.
    pub dropped: u64,
}

impl std::ops::AddAssign for InputStats {
    fn add_assign(&mut self, o: Self) {
        self.events += o.events;
        self.merged += o.merged;
        self.dropped += o.dropped;
    }
}

/// The input events a chip receives: at most one event per row and grid step (`round(t /
/// dt)` in `[0, steps)`, as the software rasterises them), rows below `rows`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputMap {
    /// Grid step (s, the data's time).
    pub dt: f64,
    /// Grid steps.
    pub steps: usize,
    /// Input rows (the network's inputs).
    pub rows: usize,
}

impl InputMap {
    /// The events of one sample as the chip receives them, sorted by `(time, row)`: of the
    /// events of a row in one step the earliest is kept (ties: the first given), the others
    /// are merged; events outside the grid or the rows are dropped.
    pub fn map(&self, sample: &[Spike]) -> (Vec<Spike>, InputStats) {
        let mut stats = InputStats {
            events: sample.len() as u64,
            ..InputStats::default()
        };
        let mut keyed: Vec<(u32, usize, f64, usize)> = Vec::with_capacity(sample.len());
        for (i, s) in sample.iter().enumerate() {
            let step = (s.time / self.dt).round();
            if step >= 0.0 && step < self.steps as f64 && (s.neuron as usize) < self.rows {
                keyed.push((s.neuron, step as usize, s.time, i));
            } else {
                stats.dropped += 1;
            }
        }
        keyed.sort_unstable_by(|a, b| {
            (a.0, a.1)
                .cmp(&(b.0, b.1))
                .then(a.2.total_cmp(&b.2))
                .then(a.3.cmp(&b.3))
        });
        let before = keyed.len();
        keyed.dedup_by_key(|k| (k.0, k.1));
        stats.merged = (before - keyed.len()) as u64;
        let mut out: Vec<Spike> = keyed
            .into_iter()
            .map(|(neuron, _, time, _)| Spike { time, neuron })
            .collect();
        eventprop_core::sort_spikes(&mut out);
        (out, stats)
    }

    /// [`InputMap::map`] of every sample, with the summed statistics.
    pub fn map_batch(&self, samples: &[&[Spike]]) -> (Vec<Vec<Spike>>, InputStats) {
        let mut total = InputStats::default();
        let out = samples
            .iter()
            .map(|s| {
                let (m, st) = self.map(s);
                total += st;
                m
            })
            .collect();
        (out, total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(time: f64, neuron: u32) -> Spike {
        Spike { time, neuron }
    }

    #[test]
    fn binning_merges_neighbouring_channels() {
        let mut s = vec![vec![sp(0.0, 0), sp(0.0, 9), sp(0.0, 10), sp(0.0, 699)]];
        bin_channels(&mut s, 10);
        let rows: Vec<u32> = s[0].iter().map(|e| e.neuron).collect();
        assert_eq!(rows, [0, 0, 1, 69]);
        // 700 channels by 10: SHD on BrainScaleS-2 (70 inputs)
        assert_eq!(binned_channels(700, 10), 70);
        // 700 channels on 256 rows (128 signed inputs): ceil(700 / 128) = 6, 117 inputs
        assert_eq!(channel_bin_for(700, 256).unwrap(), 6);
        assert_eq!(binned_channels(700, 6), 117);
        assert_eq!(channel_bin_for(64, 256).unwrap(), 1);
        assert_eq!(channel_bin_for(129, 256).unwrap(), 2);
        assert!(channel_bin_for(10, 1).is_err());
    }

    #[test]
    fn one_event_per_row_and_step_the_rest_merged_or_dropped() {
        let m = InputMap {
            dt: 1e-3,
            steps: 10,
            rows: 4,
        };
        let (out, st) = m.map(&[
            sp(2.2e-3, 1),  // step 2, row 1
            sp(1.6e-3, 1),  // step 2, row 1, earlier: kept
            sp(2.4e-3, 1),  // step 2: merged
            sp(2.0e-3, 0),  // another row: kept
            sp(3.0e-3, 1),  // step 3: kept
            sp(9.6e-3, 2),  // step 10 = steps: dropped
            sp(-0.6e-3, 2), // step -1: dropped
            sp(1.0e-3, 4),  // row 4 >= rows: dropped
        ]);
        assert_eq!(
            st,
            InputStats {
                events: 8,
                merged: 2,
                dropped: 3
            }
        );
        assert_eq!(out, vec![sp(1.6e-3, 1), sp(2.0e-3, 0), sp(3.0e-3, 1)]);
        // what is kept + merged + dropped is every event
        assert_eq!(out.len() as u64 + st.merged + st.dropped, st.events);
        // idempotent: the mapped input maps onto itself
        let (again, st2) = m.map(&out);
        assert_eq!(again, out);
        assert_eq!((st2.merged, st2.dropped), (0, 0));
    }

    fn spec(n_in: usize, hidden: Vec<usize>, n_out: usize) -> NetworkSpec {
        NetworkSpec {
            n_in,
            n_out,
            ..crate::yinyang_network(hidden)
        }
    }

    #[test]
    fn networks_beyond_the_chip_are_refused_naming_the_setting() {
        // the limits themselves fit: 128 inputs, 128 + 128 + 256 = 512 neurons
        check_resources(
            &spec(128, vec![128, 128], 256),
            512,
            256,
            "events.channel_bin",
        )
        .unwrap();
        let msg = |s: NetworkSpec| {
            check_resources(&s, 512, 256, "events.channel_bin")
                .unwrap_err()
                .to_string()
        };
        let e = msg(spec(700, vec![100], 20));
        assert!(
            e.starts_with("events.channel_bin: expected at most 128 inputs"),
            "{e}"
        );
        assert!(
            e.contains("bin the channels by 6") && e.ends_with("got 700 inputs to the first layer"),
            "{e}"
        );
        let e = msg(spec(70, vec![256], 20));
        assert!(
            e.starts_with("network.hidden: expected at most 128 inputs"),
            "{e}"
        );
        assert!(e.ends_with("got hidden layer 0 of 256 neurons"), "{e}");
        let e = msg(spec(70, vec![128, 128, 128, 128], 20));
        assert!(
            e.starts_with(
                "network.hidden: expected hidden + output neurons at most chip.neurons = 512"
            ),
            "{e}"
        );
        assert!(e.ends_with("got 532 (512 hidden + 20 output)"), "{e}");
        // the output layer's own size is not an input count: 128 hidden feed 384 outputs
        check_resources(&spec(5, vec![128], 384), 512, 256, "x").unwrap();
    }
}

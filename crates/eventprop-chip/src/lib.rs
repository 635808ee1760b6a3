//! # eventprop-chip
//!
//! Hardware in the loop: a chip interface, its recordings, and the software mapping of a
//! recording onto the seed function's time grid (`hw_data`).
//!
//! A [`Chip`] is configured with a network's weights ([`Chip::configure`], which returns
//! what the chip will actually use, e.g. 6-bit weights) and runs a batch of input spike
//! trains ([`Chip::run`]), returning a [`Recording`]: spike events `(time, neuron)` per
//! sample for every spiking layer, and sampled membrane traces `(times, values)` per neuron
//! where the chip records them (always for the output layer). [`mapping::GridMap`] turns a
//! recording into time-grid tensors exactly as the hardware workflow does:
//!
//! * spikes: `step = round(t / dt)` (half away from zero); several spikes of a neuron in
//!   one step collapse to one, spikes outside `[0, T)` are dropped, and both are counted;
//! * membrane samples: linear (or nearest) interpolation at the grid times `k dt + shift`,
//!   then `(value - offset) * trace_scale`.
//!
//! Two chips exist:
//!
//! * [`ideal::IdealChip`]: its core is the software engine the network trains with (the
//!   stepped network, same `dt` and discretization) with every non-ideality off; spikes
//!   are recorded at `k dt`, membranes at every grid step, so the mapping returns the
//!   software's own tensors bit for bit (tested end to end);
//! * [`mock::MockChip`]: a continuous-time analog core with seeded non-idealities
//!   (6-bit weights, fixed-pattern variation, noise, 125 MHz timestamps, an 8-bit CADC),
//!   each with a switch ([`mock::MockConfig`]).
//!
//! [`record_file`] saves and loads recordings (`.npz`: events and samples), so that a run
//! on real hardware can be replayed through the mapping.
//!
//! [`calibrate`] measures a chip's threshold on the readout scale and its PSP amplitude per
//! weight unit, as the hardware workflow does, and derives `trace_scale`, the offset and
//! the weight scale. The HIL engine of `eventprop-train` (`engine::chip`) trains with any chip.
//!
//! # Shapes
//! A recording of a batch of `B` samples: `layers[l].spikes[b]` (events of sample `b`),
//! `layers[l].membrane[b][n]` (trace of neuron `n`); mapped: `(T, B, N_l)` per layer.

#![deny(missing_docs)]
#![warn(rustdoc::broken_intra_doc_links)]

pub mod calibrate;
pub mod error;
pub mod ideal;
pub mod input;
pub mod mapping;
pub mod mock;
pub mod record_file;

use std::fmt;
use std::str::FromStr;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

pub use error::{Error, Result};
use eventprop_core::spec::NetworkSpec;
use eventprop_core::Spike;

pub use mapping::{
    GridMap, Interpolation, MappedEventLayer, MappedEvents, MappedLayer, MappedRecording,
    MappingStats,
};

/// The chips, by the name used in flags and configs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChipKind {
    /// The software engine as a chip, every non-ideality off ([`ideal::IdealChip`]).
    Ideal,
    /// The BrainScaleS-2-like mock with non-idealities ([`mock::MockChip`]).
    #[default]
    Mock,
}

impl ChipKind {
    /// The name in flags and configs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ideal => "ideal",
            Self::Mock => "mock",
        }
    }
}

impl fmt::Display for ChipKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ChipKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "ideal" => Ok(Self::Ideal),
            "mock" => Ok(Self::Mock),
            _ => Err(format!("expected `mock` or `ideal`, got `{s}`")),
        }
    }
}

/// The `[chip]` table of a training config: which chip, its seed, its non-idealities,
/// and how its recordings are mapped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChipSettings {
    /// `mock` or `ideal`.
    pub kind: ChipKind,
    /// The chip instance (fixed pattern of the mock).
    pub seed: u64,
    /// Calibrate the mock before use ([`calibrate`]) and use its weight scale, offset and
    /// trace scale (else the nominal ones).
    pub calibrate: bool,
    /// Interpolation of membrane samples onto the grid.
    pub interpolation: Interpolation,
    /// Grid step `k` reads membrane samples at `k dt + shift` (s).
    pub shift: f64,
    /// The chip's neurons: hidden + output neurons at most this ([`input::check_resources`]).
    #[serde(default = "default_neurons")]
    pub neurons: usize,
    /// Synapse rows that reach a neuron: a neuron takes at most `input_rows / 2` signed
    /// inputs ([`input::ROWS_PER_INPUT`]); event data are binned onto them ([`input`]).
    #[serde(default = "default_input_rows")]
    pub input_rows: usize,
    /// Event data run on the mock this many times faster than their own time (their
    /// times, time step and time constants divided by it); Yin-Yang is defined on the
    /// chip's time scale and the ideal chip has no clock.
    #[serde(default = "default_speedup")]
    pub speedup: f64,
    /// The mock's non-idealities.
    pub mock: mock::MockConfig,
    /// A calibration measured before (`eventprop chip calibrate --out FILE`, the CLI's
    /// `--chip-calibration FILE`): its host scales are applied to the mock instead of
    /// calibrating it at start. It must be of the same chip seed, measured with the same
    /// non-idealities and network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<calibrate::Calibration>,
}

fn default_neurons() -> usize {
    input::DEFAULT_NEURONS
}

fn default_input_rows() -> usize {
    input::DEFAULT_INPUT_ROWS
}

fn default_speedup() -> f64 {
    input::DEFAULT_SPEEDUP
}

impl ChipSettings {
    /// Checks the resource and time-scale keys (`neurons`, `input_rows` ≥ 1 and at most
    /// 2^20; `speedup` in [1e-3, 1e9]).
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the key.
    pub fn validate_resources(&self) -> Result<()> {
        for (name, v) in [
            ("chip.neurons", self.neurons),
            ("chip.input_rows", self.input_rows),
        ] {
            if !(1..=1 << 20).contains(&v) {
                return Err(Error::invalid(name, "1 to 2^20", v));
            }
        }
        if self.input_rows < input::ROWS_PER_INPUT {
            return Err(Error::invalid(
                "chip.input_rows",
                format!("at least {} (one signed input)", input::ROWS_PER_INPUT),
                self.input_rows,
            ));
        }
        if !(self.speedup.is_finite() && (1e-3..=1e9).contains(&self.speedup)) {
            return Err(Error::invalid(
                "chip.speedup",
                "in [1e-3, 1e9]",
                self.speedup,
            ));
        }
        Ok(())
    }
}

impl Default for ChipSettings {
    /// The mock with its default non-idealities, chip seed 0, calibrated at start, linear
    /// interpolation, no shift; BrainScaleS-2's resources ([`input`]).
    fn default() -> Self {
        Self {
            kind: ChipKind::Mock,
            seed: 0,
            calibrate: true,
            interpolation: Interpolation::Linear,
            shift: 0.0,
            mock: mock::MockConfig::default(),
            calibration: None,
            neurons: input::DEFAULT_NEURONS,
            input_rows: input::DEFAULT_INPUT_ROWS,
            speedup: input::DEFAULT_SPEEDUP,
        }
    }
}

/// A sampled membrane trace of one neuron: sample times (s, increasing) and values (in the
/// chip's readout units: CADC codes for the mock, model units for the ideal chip).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SampledTrace {
    /// Sample times in seconds, increasing.
    pub times: Vec<f64>,
    /// One value per sample time.
    pub values: Vec<f64>,
}

/// What a chip recorded for one layer of a batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LayerRecording {
    /// Number of neurons of the layer.
    pub size: usize,
    /// Spike events of each sample (`spikes[b]`; empty for a non-spiking readout).
    pub spikes: Vec<Vec<Spike>>,
    /// Membrane traces of each sample and neuron (`membrane[b][n]`), where recorded.
    pub membrane: Option<Vec<Vec<SampledTrace>>>,
}

/// What a chip recorded for a batch: one [`LayerRecording`] per layer after the input (the
/// hidden layers, then the output layer).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recording {
    /// Hidden layers, then the output layer.
    pub layers: Vec<LayerRecording>,
    /// Samples in the batch.
    pub samples: usize,
}

/// A network as configured on a chip: the weights it will use, in model units (after
/// quantisation and saturation), and what the configuration changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Configuration {
    /// The weights the chip applies, in model units, input side first.
    pub weights: Vec<Array2<f64>>,
    /// The integer weight levels written to the chip (mock with quantisation on), input
    /// side first.
    pub levels: Option<Vec<Array2<i8>>>,
    /// Weights clipped at the chip's largest level.
    pub saturated_weights: usize,
    /// Number of weights.
    pub total_weights: usize,
}

/// A neuromorphic chip (or a model of one) that runs a feed-forward network.
///
/// Implementations are deterministic: the same configuration, inputs and thread count give
/// the same recording (the mock's temporal noise is seeded from its chip seed, the
/// configuration and each sample, see [`mock::MockChip`]).
pub trait Chip: Send + Sync + fmt::Debug {
    /// Which chip this is.
    fn kind(&self) -> ChipKind;

    /// The network the chip runs (sizes, nominal neuron parameters).
    fn spec(&self) -> &NetworkSpec;

    /// Configures `weights` (model units, shapes of [`NetworkSpec::weight_shapes`]).
    ///
    /// # Errors
    /// [`crate::Error::Invalid`] for wrong shapes or non-finite weights.
    fn configure(&self, weights: &[Array2<f64>]) -> Result<Configuration>;

    /// Runs a batch of input spike trains on a configuration and records it.
    ///
    /// # Errors
    /// [`crate::Error::Invalid`] for a configuration of another network; the core's errors.
    fn run(&self, config: &Configuration, inputs: &[&[Spike]]) -> Result<Recording>;

    /// The mapping of this chip's recordings onto the time grid (`dt`, steps, and the
    /// readout's offset and scale from calibration).
    fn grid_map(&self) -> GridMap;

    /// The largest weight magnitude (model units) the chip can apply, if bounded.
    fn weight_limit(&self) -> Option<f64>;
}

/// The Yin-Yang network of `eventprop train yinyang --chip …` (the trainer's chip
/// preset, which a test of `eventprop-train` holds equal to this): 5 inputs, `hidden`,
/// 3 leaky-integrator outputs; hidden LIF `tau_mem = tau_syn = 4 µs`, leak and reset 0,
/// threshold 1; readout `tau_mem = tau_syn = 6 µs`. Its time grid is the default Yin-Yang
/// encoding's ([`eventprop_data::yinyang::Encoding::default`]: dt = 1 µs, 38 steps).
pub fn yinyang_network(hidden: Vec<usize>) -> NetworkSpec {
    NetworkSpec {
        n_in: eventprop_data::yinyang::N_INPUTS,
        hidden,
        n_out: eventprop_data::yinyang::N_CLASSES,
        lif: eventprop_core::Lif {
            leak: 0.0,
            reset: 0.0,
            threshold: 1.0,
            tau_syn: 4e-6,
            tau_mem: 4e-6,
        },
        readout: eventprop_core::spec::Readout::Integrator {
            tau_syn: 6e-6,
            tau_mem: 6e-6,
        },
        learn: Default::default(),
    }
}

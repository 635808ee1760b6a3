//! The hardware-in-the-loop engine: every forward pass runs on a chip
//! ([`eventprop_chip::Chip`]), the backward is the EventProp adjoint on the chip's recording.
//!
//! Per batch: the weights are configured on the chip (6-bit levels on the mock), the chip
//! runs the input spike trains and records the hidden spikes and the output membrane; the
//! recording is mapped onto the time grid ([`eventprop_chip::GridMap::map_events`]: hidden
//! spikes as event lists, the output membrane dense) and passed through the seed
//! function's `hw_data` path on the stepped engine's fused layers
//! ([`SteppedEngine::run_hw`]): each LIF layer returns the recorded spikes, its current
//! recomputed from its input (the input spikes, or the recorded spikes of the layer below,
//! through the software weights); the loss reads the recorded output membrane. The backward
//! is the stepped engine's fused adjoint (same loss, same adjoint, same discretization —
//! the numbers of the seed function on dense `hw_data` arrays,
//! [`eventprop_core::stepped::network::SteppedNetwork::forward_hw`], to rounding), with the software weights
//! in the synapse backward, as the reference's HIL loop does with its torch parameters. So
//! the ideal chip trains bit for bit as the stepped engine's default (fused) path. The
//! trainer clamps the weights to [`Engine::weight_limit`] (the chip's largest level) after
//! every update.
//!
//! Event data: the network must fit the chip's modelled resources
//! ([`eventprop_chip::input::check_resources`]; the trainer has binned the channels,
//! `events.channel_bin`); per batch the input keeps one event per row and grid step
//! ([`eventprop_chip::input::InputMap`], counted in [`ChipStats::input`]), and the mock
//! runs it `chip.speedup` times faster (times, `dt` and time constants divided).

use ndarray::Array2;

use super::stepped::{HwEvents, SteppedEngine, SteppedPath};
use super::{BatchOutcome, ChipStats, Engine, EngineKind, EngineSettings, Pass};
use crate::error::{Error, Result};
use crate::loss::BatchCounts;
use eventprop_chip::calibrate::{calibrate, Calibration};
use eventprop_chip::ideal::IdealChip;
use eventprop_chip::input::{on_chip_time, InputMap};
use eventprop_chip::mock::MockChip;
use eventprop_chip::{Chip, ChipKind, GridMap};
use eventprop_core::spec::NetworkSpec;
use eventprop_core::stepped::network::{HwLayer, SteppedNetwork};
use eventprop_data::Spike;

/// The chip engine in the registry ([`super::EngineKind::Chip`]): the stepped preset with
/// the `[chip]` table's defaults, except the readout regulariser `4e-3` (stepped: `4e-4`),
/// tuned on the validation split of HIL on the mock (DESIGN.md "HIL accuracy": a 10×
/// stronger regulariser keeps the scores inside the 8-bit CADC's range).
/// `--readout-reg 4e-4` gives the software settings (e.g. for `--chip ideal`, which then
/// trains bit-identically to software).
pub(super) const REGISTRATION: super::Registration = super::Registration {
    name: "chip",
    reads: &["chip", "stepped", "encoding.dt", "events.dt", "loss.reg"],
    preset: "[loss]\nreg = 4e-3\n",
    // 128 hidden neurons: a hidden layer feeds the readout through 2 synapse rows per
    // signed input, at most 128 of the chip's 256 rows (eventprop_chip::input)
    events_preset: "[network]\nhidden = [128]\n[loss]\nkind = \"max_over_time\"\nreg = 4e-4\n",
    loss_defaults: |kind| {
        (kind == "max_over_time").then_some(crate::loss::LossKind::MaxOverTime { reg: 4e-3 })
    },
    memory: super::stepped_learn::dense_memory,
    build: |s| {
        if s.network.learn.any() {
            return Err(Error::invalid(
                "learn",
                "all off with the chip engine (recurrent weights, delays, trained taus and \
                 thresholds: stepped and exact engines)",
                format!("{:?}", s.network.learn),
            ));
        }
        Ok(Box::new(ChipEngine::new(s)?))
    },
};

/// Training and evaluation with the forward pass on a chip.
#[derive(Debug)]
pub struct ChipEngine {
    net: SteppedNetwork,
    /// The software side: the stepped engine on its fused path.
    soft: SteppedEngine,
    chip: Box<dyn Chip>,
    map: GridMap,
    calibration: Option<Calibration>,
    /// Event data: one event per row and step, counted ([`InputMap`]).
    input: Option<InputMap>,
    /// Chip time = data time / `speedup` (the mock on event data; else 1).
    speedup: f64,
}

impl ChipEngine {
    /// The engine of `config`: the chip of `config.chip` (for the mock: its non-idealities,
    /// its chip seed, and the host scales of `chip.calibration` when given, else — with
    /// `chip.calibrate` — of a calibration measured here), the
    /// stepped network of the same config for the backward.
    ///
    /// # Errors
    /// [`Error::Invalid`] for settings the stepped engine refuses, an invalid chip config,
    /// a network beyond the chip's resources (naming `events.channel_bin`,
    /// `network.hidden` or `chip.input_rows`), or a failed calibration.
    pub fn new(config: &EngineSettings) -> Result<Self> {
        let cs = &config.chip;
        cs.validate_resources()?;
        eventprop_chip::input::check_resources(
            &config.network,
            cs.neurons,
            cs.input_rows,
            if config.events {
                "events.channel_bin"
            } else {
                "chip.input_rows"
            },
        )?;
        let soft = SteppedEngine::with_path(config, SteppedPath::Fused)?;
        let spec = config.network.clone();
        let net = SteppedNetwork {
            spec: spec.clone(),
            dt: config.dt,
            discretization: config.stepped.discretization,
        };
        let steps = config.steps;
        if let (ChipKind::Ideal, Some(_)) = (cs.kind, &cs.calibration) {
            return Err(Error::invalid(
                "chip.calibration",
                "none with the ideal chip (it has nothing to calibrate)",
                "a calibration",
            ));
        }
        let (chip, calibration): (Box<dyn Chip>, _) = match cs.kind {
            ChipKind::Ideal => (
                Box::new(IdealChip {
                    net: net.clone(),
                    steps,
                }),
                None,
            ),
            ChipKind::Mock => {
                // event data on the chip's time scale (Yin-Yang is defined on it)
                let (spec, dt) = if config.events {
                    (on_chip_time(&spec, cs.speedup), net.dt / cs.speedup)
                } else {
                    (spec, net.dt)
                };
                let mock = MockChip::new(spec, cs.mock.clone(), cs.seed, dt, steps)?;
                if let Some(c) = cs.calibration {
                    if c.chip_seed != cs.seed {
                        return Err(Error::invalid(
                            "chip.calibration",
                            format!("a calibration of the run's chip seed {}", cs.seed),
                            format!("one of chip seed {}", c.chip_seed),
                        ));
                    }
                    (Box::new(mock.with_host(c.host())?), Some(c))
                } else if cs.calibrate {
                    let c = calibrate(&mock)?;
                    (Box::new(mock.with_host(c.host())?), Some(c))
                } else {
                    (Box::new(mock), None)
                }
            }
        };
        let map = GridMap {
            interpolation: cs.interpolation,
            shift: cs.shift,
            ..chip.grid_map()
        };
        map.validate()?;
        let input = config.events.then_some(InputMap {
            dt: config.dt,
            steps,
            rows: config.network.n_in,
        });
        let speedup = if config.events && cs.kind == ChipKind::Mock {
            cs.speedup
        } else {
            1.0
        };
        Ok(Self {
            net,
            soft,
            chip,
            map,
            calibration,
            input,
            speedup,
        })
    }

    /// The mapping of event inputs onto the chip's rows (event data only).
    pub fn input_map(&self) -> Option<&InputMap> {
        self.input.as_ref()
    }

    /// Input events in the chip's time (the data's divided by the speedup on the mock).
    fn on_chip(&self, samples: &[Vec<Spike>]) -> Vec<Vec<Spike>> {
        samples
            .iter()
            .map(|s| {
                s.iter()
                    .map(|e| Spike {
                        time: e.time / self.speedup,
                        neuron: e.neuron,
                    })
                    .collect()
            })
            .collect()
    }

    /// The chip's run of `inputs` with `configured`: event data first keep one event per
    /// row and step ([`InputMap`]) and go onto the chip's time scale; returned with the
    /// recording are the mapped inputs in the data's time (what the host side reads) and
    /// their counts (`None` without an input map: Yin-Yang, run as given).
    fn run_chip(
        &self,
        configured: &eventprop_chip::Configuration,
        inputs: &[&[Spike]],
    ) -> Result<(eventprop_chip::Recording, Option<MappedInput>)> {
        let Some(map) = &self.input else {
            return Ok((self.chip.run(configured, inputs)?, None));
        };
        let (mapped, stats) = map.map_batch(inputs);
        let chip_inputs = self.on_chip(&mapped);
        let chip_refs: Vec<&[Spike]> = chip_inputs.iter().map(Vec::as_slice).collect();
        let recording = self.chip.run(configured, &chip_refs)?;
        Ok((recording, Some((mapped, stats))))
    }

    /// The chip.
    pub fn chip(&self) -> &dyn Chip {
        self.chip.as_ref()
    }

    /// The calibration the engine applied (mock with `chip.calibrate`).
    pub fn calibration(&self) -> Option<&Calibration> {
        self.calibration.as_ref()
    }

    /// The mapping of recordings onto the grid.
    pub fn grid_map(&self) -> &GridMap {
        &self.map
    }
}

impl Engine for ChipEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Chip
    }

    fn spec(&self) -> &NetworkSpec {
        &self.net.spec
    }

    fn weight_limit(&self) -> Option<f64> {
        self.chip.weight_limit()
    }

    /// Runs on one process (the trainer refuses the chip engine with several): the
    /// spike-count targets use this batch's own samples, `_counts` is not called.
    fn run_shared(
        &self,
        weights: &[Array2<f64>],
        inputs: &[&[Spike]],
        labels: &[usize],
        pass: Pass,
        _counts: &dyn BatchCounts,
    ) -> Result<BatchOutcome> {
        // Evaluation batches run in chunks: the grid tensors of a large batch are fresh
        // zeroed pages every time (measured: 24 % of an epoch in the kernel's page clearing
        // at the default evaluation batch of 1000).
        if pass == Pass::Eval && inputs.len() > EVAL_CHUNK {
            let mut total: Option<BatchOutcome> = None;
            for (x, y) in inputs.chunks(EVAL_CHUNK).zip(labels.chunks(EVAL_CHUNK)) {
                let o = self.run_batch(weights, x, y, pass)?;
                match &mut total {
                    None => total = Some(o),
                    Some(t) => {
                        t.loss_sum += o.loss_sum;
                        t.correct += o.correct;
                        t.predictions.extend(o.predictions);
                        t.samples += o.samples;
                        t.hidden_spikes += o.hidden_spikes;
                        if let (Some(a), Some(b)) = (&mut t.silent_outputs, o.silent_outputs) {
                            *a += b;
                        }
                        if let (Some(a), Some(b)) = (&mut t.chip, o.chip) {
                            a.mapping += b.mapping;
                            if let Some(i) = b.input {
                                *a.input.get_or_insert_with(Default::default) += i;
                            }
                        }
                    }
                }
            }
            return total.ok_or_else(|| Error::invalid("inputs", "at least one sample", 0));
        }
        self.run_batch(weights, inputs, labels, pass)
    }

    /// The hidden spikes as the chip recorded them (continuous times on the mock).
    fn hidden_spikes(&self, weights: &[Array2<f64>], input: &[Spike]) -> Result<Vec<Vec<Spike>>> {
        let configured = self.chip.configure(weights)?;
        let (recording, _) = self.run_chip(&configured, &[input])?;
        let speedup = self.speedup;
        let n_hidden = self.net.spec.hidden.len();
        Ok(recording
            .layers
            .into_iter()
            .take(n_hidden)
            .map(|l| {
                let mut s = l.spikes.into_iter().next().unwrap_or_default();
                for e in &mut s {
                    e.time *= speedup;
                }
                s.sort_by(|a, b| a.time.total_cmp(&b.time).then(a.neuron.cmp(&b.neuron)));
                s
            })
            .collect())
    }

    /// One configuration of the chip for the batch (not one per sample), then the chip's
    /// run of the batch in chunks of `EVAL_CHUNK` (100) samples (a sample's recording depends on
    /// the chip, the configuration and the sample only, not on the batch it runs in).
    fn hidden_counts(
        &self,
        weights: &[Array2<f64>],
        inputs: &[&[Spike]],
    ) -> Result<Vec<Vec<usize>>> {
        let configured = self.chip.configure(weights)?;
        let n_hidden = self.net.spec.hidden.len();
        let mut counts = Vec::with_capacity(inputs.len());
        for chunk in inputs.chunks(EVAL_CHUNK) {
            let (recording, _) = self.run_chip(&configured, chunk)?;
            let layers = &recording.layers[..n_hidden.min(recording.layers.len())];
            counts.extend((0..chunk.len()).map(|b| {
                layers
                    .iter()
                    .map(|l| l.spikes.get(b).map_or(0, Vec::len))
                    .collect::<Vec<usize>>()
            }));
        }
        Ok(counts)
    }
}

/// Event inputs as the host side reads them (one event per row and step, in the data's
/// time), with their counts.
type MappedInput = (Vec<Vec<Spike>>, eventprop_chip::input::InputStats);

/// Samples per chunk of an evaluation batch.
const EVAL_CHUNK: usize = 100;

impl ChipEngine {
    fn run_batch(
        &self,
        weights: &[Array2<f64>],
        inputs: &[&[Spike]],
        labels: &[usize],
        pass: Pass,
    ) -> Result<BatchOutcome> {
        let configured = self.chip.configure(weights)?;
        let (recording, event_input) = self.run_chip(&configured, inputs)?;
        let Some((mapped, stats)) = event_input else {
            return self.run_recorded(weights, inputs, labels, pass, &configured, &recording);
        };
        // event data: the chip and the host see the same input, one event per row and step
        let refs: Vec<&[Spike]> = mapped.iter().map(Vec::as_slice).collect();
        let mut o = self.run_recorded(weights, &refs, labels, pass, &configured, &recording)?;
        if let Some(c) = &mut o.chip {
            c.input = Some(stats);
        }
        Ok(o)
    }

    /// The host side of a batch: `recording` (the chip's run of `inputs` with `configured`,
    /// the configuration of `weights`) mapped onto the time grid, then the loss and, for
    /// [`Pass::Train`], the gradients (the EventProp adjoint on it). What [`Engine::run`]
    /// does after the chip has run; a recording from elsewhere (a file, a real chip) goes
    /// through the same path.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a recording that does not fit the network (layers, sizes,
    /// samples, a missing output membrane); the mapping's and the adjoint's errors.
    pub fn run_recorded(
        &self,
        weights: &[Array2<f64>],
        inputs: &[&[Spike]],
        labels: &[usize],
        pass: Pass,
        configured: &eventprop_chip::Configuration,
        recording: &eventprop_chip::Recording,
    ) -> Result<BatchOutcome> {
        let spec = &self.net.spec;
        let mapped = self.map.map_events(recording)?;
        let out_membrane_missing =
            matches!(
                spec.readout,
                eventprop_core::spec::Readout::Integrator { .. }
            ) && recording.layers.last().is_none_or(|l| l.membrane.is_none());
        if out_membrane_missing {
            return Err(Error::invalid(
                "recording",
                "the output layer's membrane (the integrator readout)",
                "none recorded",
            ));
        }
        let n_hidden = spec.hidden.len();
        if mapped.layers.len() != n_hidden + 1 {
            return Err(Error::invalid(
                "recording",
                format!("{} layers (hidden layers and the output)", n_hidden + 1),
                mapped.layers.len(),
            ));
        }
        let mut layers = mapped.layers;
        let out = layers.pop().expect("n_hidden + 1 layers");
        let spikes = out.spikes.to_dense();
        let output = HwLayer {
            membrane: out
                .membrane
                .unwrap_or_else(|| ndarray::Array3::zeros(spikes.dim())),
            spikes,
        };
        let hidden: Vec<_> = layers.into_iter().map(|l| l.spikes).collect();
        let hw = HwEvents {
            hidden: &hidden,
            output: &output,
        };
        let mut o = self.soft.run_hw(weights, inputs, labels, pass, &hw)?;
        o.chip = Some(ChipStats {
            mapping: mapped.stats,
            saturated_weights: configured.saturated_weights as u64,
            total_weights: configured.total_weights as u64,
            input: None,
        });
        Ok(o)
    }
}

//! The ideal chip: the software engine the network trains with, run as a chip.
//!
//! Its core is the stepped network ([`SteppedNetwork`], same `dt`, steps and
//! discretization as training) with every non-ideality off: weights are used as given,
//! spikes are recorded at `k dt` for a spike in step `k`, and the membrane of every layer is
//! recorded at every grid time `k dt`. Through [`GridMap::identity`] the recording maps back
//! onto the grid bit for bit (spike times `k dt` round to `k`; the interpolation weight at a
//! sample time is exactly 0), so HIL training with this chip reproduces software training
//! exactly — an end-to-end test of the recording → grid → `hw_data` path.

use eventprop_data::grid_spikes;
use ndarray::{Array2, Array3};

use crate::error::Result;
use crate::{Chip, ChipKind, Configuration, GridMap, LayerRecording, Recording, SampledTrace};
use eventprop_core::spec::NetworkSpec;
use eventprop_core::stepped::network::SteppedNetwork;
use eventprop_data::{rasterize, Spike};

/// The software engine as a chip (see the module docs).
#[derive(Debug, Clone)]
pub struct IdealChip {
    /// The network, `dt` and discretization of the software engine.
    pub net: SteppedNetwork,
    /// Grid steps of a run (`t_sim / dt`).
    pub steps: usize,
}

/// Membrane traces of a `(T, B, N)` tensor sampled at every grid time `k dt`
/// (`[b][n]`).
pub fn grid_traces(v: &Array3<f64>, dt: f64) -> Vec<Vec<SampledTrace>> {
    let (t_len, b_len, n) = v.dim();
    let times: Vec<f64> = (0..t_len).map(|k| k as f64 * dt).collect();
    (0..b_len)
        .map(|b| {
            (0..n)
                .map(|j| SampledTrace {
                    times: times.clone(),
                    values: (0..t_len).map(|k| v[[k, b, j]]).collect(),
                })
                .collect()
        })
        .collect()
}

impl Chip for IdealChip {
    fn kind(&self) -> ChipKind {
        ChipKind::Ideal
    }

    fn spec(&self) -> &NetworkSpec {
        &self.net.spec
    }

    fn configure(&self, weights: &[Array2<f64>]) -> Result<Configuration> {
        self.net.spec.check_weights(weights)?;
        Ok(Configuration {
            weights: weights.to_vec(),
            levels: None,
            saturated_weights: 0,
            total_weights: weights.iter().map(Array2::len).sum(),
        })
    }

    fn run(&self, config: &Configuration, inputs: &[&[Spike]]) -> Result<Recording> {
        let spec = &self.net.spec;
        let dt = self.net.dt;
        let (x, _) = rasterize(inputs, spec.n_in, self.steps, dt);
        let trace = self.net.forward(&config.weights, x.view())?;
        let mut layers: Vec<LayerRecording> = (0..trace.n_hidden())
            .map(|k| LayerRecording {
                size: spec.hidden[k],
                spikes: grid_spikes(trace.hidden_spikes(k).view(), dt),
                membrane: Some(grid_traces(trace.hidden_membrane(k), dt)),
            })
            .collect();
        let spiking_out = matches!(spec.readout, eventprop_core::spec::Readout::Spiking(_));
        layers.push(LayerRecording {
            size: spec.n_out,
            spikes: if spiking_out {
                grid_spikes(trace.output.view(), dt)
            } else {
                Vec::new()
            },
            membrane: Some(grid_traces(trace.output_membrane(), dt)),
        });
        Ok(Recording {
            layers,
            samples: inputs.len(),
        })
    }

    fn grid_map(&self) -> GridMap {
        GridMap::identity(self.net.dt, self.steps)
    }

    fn weight_limit(&self) -> Option<f64> {
        None
    }
}

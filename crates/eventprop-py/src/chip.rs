//! The mock chip of `eventprop-chip` ([`eventprop_chip::mock::MockChip`]) for
//! Python: configure weights, run a batch of input rasters, get each layer's `hw_data`
//! (recorded spikes and membrane on the time grid) for `EventPropNeuronFunction`; and the
//! same mapping for a recording file (`.npz`, e.g. from real hardware).
//!
//! Entry points (float64 numpy arrays):
//!
//! - `MockChip(hidden=[120], chip_seed=0, mock_toml="", calibrate=True)`: the Yin-Yang
//!   network of `eventprop train yinyang --chip mock` (5 inputs, 3 integrator outputs, the
//!   chip preset's neuron parameters, dt = 1 µs, 38 steps) on the mock instance
//!   `chip_seed`, with the non-idealities of `mock_toml` (the keys of `[chip.mock]`) laid
//!   over the defaults, calibrated like the CLI's engine;
//! - `MockChip.run(weights, input) -> (layers, stats)`: `weights` `[(N_1, 5), (3, N_1)]`,
//!   `input` `(T, B, 5)` 0/1 (a spike at step `k` enters the chip at `k dt`); `layers` is
//!   one `(spikes, membrane)` pair of `(T, B, N)` arrays per layer (hidden: membrane
//!   `None`, the LIF adjoint does not read it; output: spikes all zero, membrane in model
//!   units); `stats` a dict of counts;
//! - `map_recording(path, dt, steps, offset=0, trace_scale=1, shift=0,
//!   interpolation="linear") -> (layers, stats)`: a recording file (`chip::record_file`)
//!   mapped onto the grid the same way.
//!
//! Bad arguments and chip errors become `ValueError` with the library's one-line message.

use std::path::PathBuf;

use ndarray::{Array2, Ix2, Ix3};
use numpy::{PyArray3, PyReadonlyArrayDyn};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use eventprop_chip::calibrate::{calibrate, Calibration};
use eventprop_chip::mock::{MockChip, MockConfig};
use eventprop_chip::{record_file, Chip, GridMap, Interpolation, MappedRecording};
use eventprop_core::spec::NetworkSpec;
use eventprop_core::Spike;
use eventprop_data::grid_spikes;
use eventprop_data::yinyang::Encoding;

/// The error and its sources as one line (`path: No such file or directory (os error 2)`,
/// not just the path).
fn err(e: eventprop_chip::Error) -> PyErr {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    PyValueError::new_err(msg)
}

fn bad(arg: &str, expected: impl std::fmt::Display, actual: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(format!("{arg}: expected {expected}, got {actual}"))
}

fn shape(s: &[usize]) -> String {
    format!(
        "shape ({})",
        s.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// A layer's `(spikes, membrane)` and the mapping's counts as Python objects.
type Mapped<'py> = (
    Vec<(Bound<'py, PyArray3<f64>>, Option<Bound<'py, PyArray3<f64>>>)>,
    Bound<'py, PyDict>,
);

fn to_python<'py>(
    py: Python<'py>,
    mapped: MappedRecording,
    extra: &[(&str, u64)],
) -> PyResult<Mapped<'py>> {
    let stats = PyDict::new(py);
    stats.set_item("spikes", mapped.stats.spikes)?;
    stats.set_item("collapsed", mapped.stats.collapsed)?;
    stats.set_item("dropped", mapped.stats.dropped)?;
    stats.set_item("held", mapped.stats.held)?;
    for (k, v) in extra {
        stats.set_item(*k, *v)?;
    }
    let layers = mapped
        .layers
        .into_iter()
        .map(|l| {
            (
                PyArray3::from_owned_array(py, l.spikes),
                l.membrane.map(|m| PyArray3::from_owned_array(py, m)),
            )
        })
        .collect();
    Ok((layers, stats))
}

/// The mock chip (BrainScaleS-2-like, with non-idealities) running the Yin-Yang network.
#[pyclass(module = "eventprop._eventprop", name = "MockChip", frozen)]
pub struct PyMockChip {
    chip: MockChip,
    map: GridMap,
    calibration: Option<Calibration>,
    spec: NetworkSpec,
    encoding: Encoding,
}

#[pymethods]
impl PyMockChip {
    #[new]
    #[pyo3(signature = (hidden=vec![120], chip_seed=0, mock_toml="", calibrate=true))]
    fn new(
        py: Python<'_>,
        hidden: Vec<usize>,
        chip_seed: u64,
        mock_toml: &str,
        calibrate: bool,
    ) -> PyResult<Self> {
        let spec = eventprop_chip::yinyang_network(hidden);
        let encoding = Encoding::default();
        let spec_for_chip = spec.clone();
        let mock_config = toml::from_str::<MockConfig>(mock_toml)
            .map_err(|e| bad("mock_toml", "the keys of [chip.mock]", e.message()))?;
        spec.validate().map_err(|e| err(e.into()))?;
        mock_config.validate().map_err(err)?;
        py.detach(|| {
            let steps = encoding.steps();
            let mock = MockChip::new(spec_for_chip, mock_config, chip_seed, encoding.dt, steps)?;
            let (chip, calibration) = if calibrate {
                let c = self::calibrate(&mock)?;
                (mock.with_host(c.host())?, Some(c))
            } else {
                (mock, None)
            };
            let map = chip.grid_map();
            Ok(Self {
                chip,
                map,
                calibration,
                spec,
                encoding,
            })
        })
        .map_err(err)
    }

    /// Input channels.
    #[getter]
    fn n_in(&self) -> usize {
        self.spec.n_in
    }

    /// Hidden layer sizes.
    #[getter]
    fn hidden(&self) -> Vec<usize> {
        self.spec.hidden.clone()
    }

    /// Output neurons.
    #[getter]
    fn n_out(&self) -> usize {
        self.spec.n_out
    }

    /// Grid step (s).
    #[getter]
    fn dt(&self) -> f64 {
        self.encoding.dt
    }

    /// Grid steps `T`.
    #[getter]
    fn steps(&self) -> usize {
        self.encoding.steps()
    }

    /// The largest weight magnitude the chip applies (model units): clamp to it after each
    /// update, as the hardware loop does.
    #[getter]
    fn weight_limit(&self) -> Option<f64> {
        self.chip.weight_limit()
    }

    /// The nominal neuron parameters of the network, for the software side: a dict with
    /// `leak, reset, threshold, tau_syn, tau_mem, readout_tau_syn, readout_tau_mem`.
    #[getter]
    fn params<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = &self.spec.lif;
        let d = PyDict::new(py);
        d.set_item("leak", c.leak)?;
        d.set_item("reset", c.reset)?;
        d.set_item("threshold", c.threshold)?;
        d.set_item("tau_syn", c.tau_syn)?;
        d.set_item("tau_mem", c.tau_mem)?;
        let (tau_syn, tau_mem) = match self.spec.readout {
            eventprop_core::spec::Readout::Integrator { tau_syn, tau_mem } => (tau_syn, tau_mem),
            eventprop_core::spec::Readout::Spiking(l) => (l.tau_syn, l.tau_mem),
        };
        d.set_item("readout_tau_syn", tau_syn)?;
        d.set_item("readout_tau_mem", tau_mem)?;
        Ok(d)
    }

    /// The calibration applied (None with `calibrate=False`): a dict of `offset,
    /// readout_offset, threshold_code, trace_scale, psp_per_level, weight_scale`.
    #[getter]
    fn calibration<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(c) = &self.calibration else {
            return Ok(None);
        };
        let d = PyDict::new(py);
        d.set_item("offset", c.offset)?;
        d.set_item("readout_offset", c.readout_offset)?;
        d.set_item("threshold_code", c.threshold_code)?;
        d.set_item("trace_scale", c.trace_scale)?;
        d.set_item("psp_per_level", c.psp_per_level)?;
        d.set_item("weight_scale", c.weight_scale)?;
        Ok(Some(d))
    }

    /// Configures `weights` on the chip and runs the input raster `(T, B, n_in)`; returns
    /// `(layers, stats)`: per layer `(spikes, membrane)` on the grid (the `hw_data` of
    /// `EventPropNeuronFunction`), and the counts `spikes, collapsed, dropped, held,
    /// saturated_weights, total_weights`. Deterministic for fixed weights and inputs.
    fn run<'py>(
        &self,
        py: Python<'py>,
        weights: Vec<PyReadonlyArrayDyn<'py, f64>>,
        input: PyReadonlyArrayDyn<'py, f64>,
    ) -> PyResult<Mapped<'py>> {
        let shapes = self.chip.spec().weight_shapes();
        if weights.len() != shapes.len() {
            return Err(bad(
                "weights",
                format!("{} arrays", shapes.len()),
                weights.len(),
            ));
        }
        let mut ws: Vec<Array2<f64>> = Vec::with_capacity(weights.len());
        for (k, (w, &(r, c))) in weights.iter().zip(&shapes).enumerate() {
            let a = w.as_array();
            let v = a
                .into_dimensionality::<Ix2>()
                .ok()
                .filter(|v| v.dim() == (r, c))
                .ok_or_else(|| {
                    bad(
                        &format!("weights[{k}]"),
                        format!("shape ({r}, {c})"),
                        shape(w.as_array().shape()),
                    )
                })?;
            ws.push(v.to_owned());
        }
        let steps = self.map.steps;
        let n_in = self.chip.spec().n_in;
        let x = input.as_array();
        let xv = x
            .into_dimensionality::<Ix3>()
            .ok()
            .filter(|v| v.dim().0 == steps && v.dim().2 == n_in)
            .ok_or_else(|| {
                bad(
                    "input",
                    format!("shape ({steps}, B, {n_in})"),
                    shape(input.as_array().shape()),
                )
            })?;
        if let Some(v) = xv.iter().find(|v| !(**v == 0.0 || **v == 1.0)) {
            return Err(bad("input", "spikes 0 or 1", v));
        }
        let inputs = grid_spikes(xv.view(), self.map.dt);
        let (mapped, configured) = py
            .detach(|| {
                let configured = self.chip.configure(&ws)?;
                let refs: Vec<&[Spike]> = inputs.iter().map(|v| v.as_slice()).collect();
                let recording = self.chip.run(&configured, &refs)?;
                Ok((self.map.map(&recording)?, configured))
            })
            .map_err(err)?;
        to_python(
            py,
            mapped,
            &[
                ("saturated_weights", configured.saturated_weights as u64),
                ("total_weights", configured.total_weights as u64),
            ],
        )
    }
}

/// Maps a recording file (`.npz` of `chip::record_file`: e.g. a real chip's run) onto
/// the grid: per layer `(spikes, membrane)` `(T, B, N)` and the counts `spikes, collapsed,
/// dropped, held` (membrane reads outside a trace's sampled span). `offset` and `trace_scale` convert readout units to model units
/// (`(value - offset) * trace_scale`); `shift` delays the readout (s).
#[pyfunction]
#[pyo3(signature = (path, dt, steps, offset=0.0, trace_scale=1.0, shift=0.0, interpolation="linear"))]
#[allow(clippy::too_many_arguments)]
pub fn map_recording<'py>(
    py: Python<'py>,
    path: PathBuf,
    dt: f64,
    steps: usize,
    offset: f64,
    trace_scale: f64,
    shift: f64,
    interpolation: &str,
) -> PyResult<Mapped<'py>> {
    let interpolation = match interpolation {
        "linear" => Interpolation::Linear,
        "nearest" => Interpolation::Nearest,
        other => return Err(bad("interpolation", "'linear' or 'nearest'", other)),
    };
    let map = GridMap {
        dt,
        steps,
        interpolation,
        shift,
        offset,
        readout_offset: None,
        trace_scale,
    };
    let mapped = py
        .detach(|| {
            map.validate()?;
            let recording = record_file::load_npz(&path)?;
            map.map(&recording)
        })
        .map_err(err)?;
    to_python(py, mapped, &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    /// Provenance: a raster with spikes at steps 0 and 3 of channel 1 (sample 0) and step
    /// 2 of channel 0 (sample 1) must give exactly those events at `k dt`.
    #[test]
    fn raster_to_events() {
        let mut x = Array3::<f64>::zeros((4, 2, 2));
        x[[0, 0, 1]] = 1.0;
        x[[3, 0, 1]] = 1.0;
        x[[2, 1, 0]] = 1.0;
        let e = grid_spikes(x.view(), 0.5);
        assert_eq!(
            e[0],
            vec![
                Spike {
                    time: 0.0,
                    neuron: 1
                },
                Spike {
                    time: 1.5,
                    neuron: 1
                }
            ]
        );
        assert_eq!(
            e[1],
            vec![Spike {
                time: 1.0,
                neuron: 0
            }]
        );
    }
}

//! Event-based forward: exact spike times of a feed-forward LIF network on one sample.
//!
//! Layers are simulated one after the other (a layer only sees the spikes of the layer
//! below), each neuron independently: its state `(u, I)` is carried in closed form from
//! one input spike to the next ([`Kinetics::u_at`]), every crossing in between is found by
//! [`Kinetics::first_crossing`], the membrane is reset, and the search resumes until the
//! next input spike; at an input spike of neuron `j`, `I += W[n, j]`. A crossing at the
//! same time as an input spike is taken before the input's current jump. Spikes after
//! `t_max` are not simulated. Memory is proportional to the number of spikes.

use ndarray::ArrayView2;

use crate::dynamics::Kinetics;
use crate::error::{Error, Result};
use crate::network::{sort_spikes, Network, Spike};
use crate::params::SolverConfig;

/// Spikes of one layer, sorted by `(time, neuron)`, and the synaptic current of the
/// spiking neuron at each spike (needed by the adjoint's jump).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LayerTrace {
    pub(crate) spikes: Vec<Spike>,
    pub(crate) currents: Vec<f64>,
}

impl LayerTrace {
    /// The layer's spikes, sorted by `(time, neuron)`.
    pub fn spikes(&self) -> &[Spike] {
        &self.spikes
    }

    /// `I(t_k)` of the spiking neuron at each spike (same order as [`LayerTrace::spikes`]).
    pub fn currents(&self) -> &[f64] {
        &self.currents
    }
}

/// The forward's result for one sample; [`Trace::backward`] differentiates it.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub(crate) t_max: f64,
    /// `sorted[i] = given[input_order[i]]` for the input spikes.
    pub(crate) input_order: Vec<usize>,
    /// `layers[0]` is the (sorted) input, `layers[k]` the spikes of layer `k`.
    pub(crate) layers: Vec<LayerTrace>,
}

impl Trace {
    /// Spikes of layer `k` (0 = the input, sorted), sorted by `(time, neuron)`.
    ///
    /// # Panics
    /// If `k` exceeds the number of layers.
    #[track_caller]
    pub fn spikes(&self, k: usize) -> &[Spike] {
        &self.layers[k].spikes
    }

    /// The trace of layer `k` (0 = the input).
    ///
    /// # Panics
    /// If `k` exceeds the number of layers.
    #[track_caller]
    pub fn layer(&self, k: usize) -> &LayerTrace {
        &self.layers[k]
    }

    /// Output-layer spikes.
    pub fn output(&self) -> &[Spike] {
        &self.layers.last().expect("at least the input").spikes
    }

    /// Number of layers including the input.
    pub fn n_layers(&self) -> usize {
        self.layers.len()
    }

    /// The simulated window `[0, t_max]`.
    pub fn t_max(&self) -> f64 {
        self.t_max
    }

    /// Spike count per layer, input first.
    pub fn spike_counts(&self) -> Vec<usize> {
        self.layers.iter().map(|l| l.spikes.len()).collect()
    }
}

/// Checks the simulation window.
///
/// # Errors
/// [`Error::Invalid`] unless `t_max` is finite and `> 0`.
pub fn check_t_max(t_max: f64) -> Result<()> {
    if t_max.is_finite() && t_max > 0.0 {
        Ok(())
    } else {
        Err(Error::Invalid {
            arg: "t_max",
            expected: "a finite value > 0".into(),
            actual: t_max.to_string(),
        })
    }
}

impl Network {
    /// Simulates one sample on `[0, t_max]`; input spikes after `t_max` are ignored.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a bad `t_max` or solver setting, [`Error::InputTime`] /
    /// [`Error::InputNeuron`] for bad input spikes, [`Error::TooManySpikes`] when a neuron
    /// exceeds [`SolverConfig::max_spikes_per_neuron`].
    ///
    /// ```
    /// use eventprop_exact::{Network, Lif, SolverConfig, Spike};
    /// use ndarray::array;
    /// // One input spike at 1 ms into one neuron with a large weight: it fires (4 times).
    /// let net = Network::new(vec![array![[20.0]]], vec![Lif::default()])?;
    /// let trace = net.forward(&[Spike { time: 1e-3, neuron: 0 }], 0.05, &SolverConfig::default())?;
    /// assert_eq!(trace.output().len(), 4);
    /// assert!(trace.output()[0].time > 1e-3);
    /// # Ok::<(), eventprop_exact::Error>(())
    /// ```
    pub fn forward(&self, input: &[Spike], t_max: f64, cfg: &SolverConfig) -> Result<Trace> {
        check_t_max(t_max)?;
        cfg.validate()?;
        let (sorted, input_order) = self.check_input(input)?;
        let mut layers = Vec::with_capacity(self.n_layers() + 1);
        layers.push(LayerTrace {
            currents: vec![0.0; sorted.len()],
            spikes: sorted,
        });
        for k in 0..self.n_layers() {
            let kin = crate::params::kinetics(self.params(k));
            let next = layer_forward(
                &kin,
                self.weight(k),
                &layers[k].spikes,
                t_max,
                cfg.max_spikes_per_neuron,
                k + 1,
            )?;
            layers.push(next);
        }
        Ok(Trace {
            t_max,
            input_order,
            layers,
        })
    }
}

/// Simulates one layer on its sorted input spikes.
///
/// # Errors
/// [`Error::TooManySpikes`] naming `layer`.
pub(crate) fn layer_forward(
    kin: &Kinetics,
    w: ArrayView2<'_, f64>,
    inputs: &[Spike],
    t_max: f64,
    cap: usize,
    layer: usize,
) -> Result<LayerTrace> {
    let mut all: Vec<(Spike, f64)> = Vec::new();
    let mut scratch = Vec::new();
    for (n, w_row) in w.outer_iter().enumerate() {
        let w_row = w_row.as_slice().expect("standard layout");
        scratch.clear();
        neuron_forward(kin, w_row, inputs, t_max, cap, &mut scratch).map_err(|time| {
            Error::TooManySpikes {
                layer,
                neuron: n,
                cap,
                time,
            }
        })?;
        all.extend(scratch.iter().map(|&(time, current)| {
            (
                Spike {
                    time,
                    neuron: n as u32,
                },
                current,
            )
        }));
    }
    let mut spikes: Vec<Spike> = all.iter().map(|p| p.0).collect();
    if spikes.windows(2).any(|p| p[0].time > p[1].time) {
        all.sort_by(|x, y| {
            x.0.time
                .total_cmp(&y.0.time)
                .then(x.0.neuron.cmp(&y.0.neuron))
        });
        spikes = all.iter().map(|p| p.0).collect();
        debug_assert!({
            let mut c = spikes.clone();
            sort_spikes(&mut c);
            c == spikes
        });
    }
    let currents = all.iter().map(|p| p.1).collect();
    Ok(LayerTrace { spikes, currents })
}

/// Simulates one neuron; pushes `(t_k, I(t_k))` per spike. On exceeding `cap` spikes,
/// returns the time of the offending spike.
fn neuron_forward(
    kin: &Kinetics,
    w_row: &[f64],
    inputs: &[Spike],
    t_max: f64,
    cap: usize,
    out: &mut Vec<(f64, f64)>,
) -> std::result::Result<(), f64> {
    let (mut t, mut u, mut i) = (0.0_f64, 0.0_f64, 0.0_f64);
    let mut advance =
        |t: &mut f64, u: &mut f64, i: &mut f64, target: f64| -> std::result::Result<(), f64> {
            loop {
                let delta = target - *t;
                match kin.first_crossing(*u, *i, delta) {
                    Some(s) => {
                        let i_k = kin.i_at(*i, s);
                        let t_k = *t + s;
                        out.push((t_k, i_k));
                        if out.len() > cap {
                            return Err(t_k);
                        }
                        *t = t_k;
                        *u = kin.reset;
                        *i = i_k;
                    }
                    None => {
                        if delta > 0.0 {
                            *u = kin.u_at(*u, *i, delta);
                            *i = kin.i_at(*i, delta);
                            *t = target;
                        }
                        return Ok(());
                    }
                }
            }
        };
    for s in inputs.iter().take_while(|s| s.time <= t_max) {
        advance(&mut t, &mut u, &mut i, s.time)?;
        i += w_row[s.neuron as usize];
    }
    advance(&mut t, &mut u, &mut i, t_max)
}

/// Maximum of the membrane `u = V - leak` of a neuron that does not spike in `[0, t_max]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MembraneMax {
    /// `max_t u(t)` (relative to the leak).
    pub u_max: f64,
    /// Where it is reached (the earliest such time).
    pub time: f64,
}

/// The membrane maximum over `[0, t_max]` of a neuron without resets, fed by the sorted
/// `inputs` through `w_row`: on each inter-event interval the candidates are the interval's
/// end and the analytic extremum [`Kinetics::extremum`].
pub fn membrane_max(kin: &Kinetics, w_row: &[f64], inputs: &[Spike], t_max: f64) -> MembraneMax {
    let (mut t, mut u, mut i) = (0.0_f64, 0.0_f64, 0.0_f64);
    let mut best = MembraneMax {
        u_max: 0.0,
        time: 0.0,
    };
    let mut visit = |t: &mut f64, u: &mut f64, i: &mut f64, target: f64| {
        let delta = target - *t;
        if delta <= 0.0 {
            return;
        }
        if let Some(s) = kin.extremum(*u, *i).filter(|&s| s < delta) {
            let um = kin.u_at(*u, *i, s);
            if um > best.u_max {
                best = MembraneMax {
                    u_max: um,
                    time: *t + s,
                };
            }
        }
        *u = kin.u_at(*u, *i, delta);
        *i = kin.i_at(*i, delta);
        *t = target;
        if *u > best.u_max {
            best = MembraneMax {
                u_max: *u,
                time: target,
            };
        }
    };
    for s in inputs.iter().take_while(|s| s.time <= t_max) {
        visit(&mut t, &mut u, &mut i, s.time);
        i += w_row[s.neuron as usize];
    }
    visit(&mut t, &mut u, &mut i, t_max);
    best
}

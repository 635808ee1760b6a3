//! Exact EventProp adjoint, event by event in reverse, mirroring [`forward`](crate::forward).
//!
//! Per neuron, with `a = 1/tau_mem`, `b = 1/tau_syn` and reverse time `τ`, between events
//!
//! ```text
//! tau_mem dλ_V/dτ = -λ_V,      tau_syn dλ_I/dτ = -λ_I + λ_V
//! λ_V(τ) = λ_V0 e^{-a τ},      λ_I(τ) = λ_I0 e^{-b τ} + b λ_V0 phi(a, b, τ)
//! ```
//!
//! At a spike `t_k` of neuron `n` (processed top layer first), with
//! `D- = leak - threshold + I(t_k)`, `D+ = leak - reset + I(t_k)` and the total derivative
//! of the loss w.r.t. that spike time
//!
//! ```text
//! dL/dt_k = ∂l/∂t_k + Σ_m W[m, n] (λ_V,m - λ_I,m)(t_k)       (m: neurons of the next layer)
//! λ_V,n ← (D+/D-) λ_V,n + (dL/dt_k) / D-,                   λ_I does not jump
//! ```
//!
//! and at every presynaptic spike `t_j` of neuron `j` into `n`:
//! `dL/dW[n, j] += -tau_syn λ_I,n(t_j)`. The same sum as in `dL/dt_k` gives the gradient
//! w.r.t. the input spike times (layer 0). The adjoint is continuous at input spikes.
//!
//! Derivation in short: `μ = ∂L/∂(u, I)` obeys `dμ/dt = -Aᵀ μ` between events; a shift
//! `δt_k = -δu⁻ / u̇⁻` of a spike changes the state after the reset by
//! `δu⁺ = -u̇⁺ δt_k` and shifts the next layer's current jump, which changes its state by
//! `-δt_k W (a, -b)`; collecting terms gives the jump above with
//! `λ_V = -tau_mem⁻¹ μ_u`, `λ_I = -tau_syn⁻¹ μ_I`, `u̇± = D±/tau_mem`.
//!
//! # Degenerate crossings
//! `D-` is `tau_mem` times the membrane slope at the crossing (`>= 0` for a crossing from
//! below). When `D- < grazing_floor · (threshold - leak)` (a grazing crossing, whose exact
//! gradient diverges) it is raised to that floor, which bounds the jump, and the spike is
//! counted in [`AdjointStats::grazing_clamped`].

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::dynamics::{phi, Kinetics};
use crate::error::{check_finite, Error, Result};
use crate::forward::{LayerTrace, Trace};
use crate::network::{Network, Spike};
use crate::params::SolverConfig;

/// Counts of the numerical guards the adjoint applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AdjointStats {
    /// Spikes whose `D-` was below the grazing floor and was raised to it.
    pub grazing_clamped: u64,
}

impl std::ops::AddAssign for AdjointStats {
    fn add_assign(&mut self, o: Self) {
        self.grazing_clamped += o.grazing_clamped;
    }
}

/// Gradients of one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Gradients {
    /// `dL/dW_k`, same shapes as the network's weights.
    pub weights: Vec<Array2<f64>>,
    /// `dL/dt` of each input spike, in the order the input spikes were given.
    pub input_times: Vec<f64>,
    /// Total `dL/dt_k` of every spike of layer `k = 1 … L` (index `k - 1`), in the order of
    /// [`Trace::spikes`].
    pub spike_times: Vec<Vec<f64>>,
    /// Guards applied.
    pub stats: AdjointStats,
}

impl Trace {
    /// Runs the adjoint for the loss derivatives `dl_dt_output[k] = ∂l/∂t_k` of the output
    /// spikes (order of [`Trace::output`]).
    ///
    /// `net` must be the network that produced this trace.
    ///
    /// # Errors
    /// [`Error::Shape`] when `dl_dt_output` does not have one entry per output spike or
    /// `net` has a different number of layers; [`Error::NonFinite`] for NaN/inf.
    pub fn backward(
        &self,
        net: &Network,
        dl_dt_output: &[f64],
        cfg: &SolverConfig,
    ) -> Result<Gradients> {
        let mut direct: Vec<Vec<f64>> = self.layers[1..]
            .iter()
            .map(|l| vec![0.0; l.spikes.len()])
            .collect();
        if let Some(last) = direct.last_mut() {
            if dl_dt_output.len() != last.len() {
                return Err(Error::Shape {
                    arg: "dl_dt_output".into(),
                    expected: format!("({},) (one per output spike)", last.len()),
                    actual: format!("({},)", dl_dt_output.len()),
                });
            }
            last.copy_from_slice(dl_dt_output);
        }
        self.backward_direct(net, &direct, cfg)
    }

    /// Runs the adjoint for a loss that depends directly on the spike times of any layer:
    /// `direct[k - 1][i] = ∂l/∂t_i` for spike `i` of layer `k = 1 … L` (order of
    /// [`Trace::spikes`]).
    ///
    /// # Errors
    /// [`Error::Shape`] when `direct` does not have one entry per spike of every layer or
    /// `net` has a different number of layers; [`Error::NonFinite`] for NaN/inf.
    pub fn backward_direct(
        &self,
        net: &Network,
        direct: &[Vec<f64>],
        cfg: &SolverConfig,
    ) -> Result<Gradients> {
        cfg.validate()?;
        if net.n_layers() + 1 != self.layers.len() {
            return Err(Error::Shape {
                arg: "net".into(),
                expected: format!("{} layers (as in the trace)", self.layers.len() - 1),
                actual: net.n_layers().to_string(),
            });
        }
        let expected: Vec<usize> = self.layers[1..].iter().map(|l| l.spikes.len()).collect();
        let actual: Vec<usize> = direct.iter().map(Vec::len).collect();
        if expected != actual {
            return Err(Error::Shape {
                arg: "direct".into(),
                expected: format!("spikes per layer {expected:?}"),
                actual: format!("{actual:?}"),
            });
        }
        for d in direct {
            check_finite("direct", d)?;
        }
        let n_layers = net.n_layers();
        let mut weights = vec![Array2::zeros((0, 0)); n_layers];
        let mut spike_times = vec![Vec::new(); n_layers];
        let mut stats = AdjointStats::default();
        let mut dl_dt = direct[n_layers - 1].clone();
        for l in (1..=n_layers).rev() {
            let p = net.params(l - 1);
            let kin = crate::params::kinetics(p);
            let floor = cfg.grazing_floor * kin.theta;
            let mut dl_dt_prev = if l >= 2 {
                direct[l - 2].clone()
            } else {
                vec![0.0; self.layers[0].spikes.len()]
            };
            let gw = layer_adjoint(
                &kin,
                p.tau_syn,
                net.weight(l - 1),
                &self.layers[l - 1].spikes,
                &self.layers[l],
                &dl_dt,
                self.t_max,
                floor,
                &mut dl_dt_prev,
                &mut stats,
            );
            weights[l - 1] = gw;
            spike_times[l - 1] = std::mem::replace(&mut dl_dt, dl_dt_prev);
        }
        let mut input_times = vec![0.0; dl_dt.len()];
        for (i, &g) in dl_dt.iter().enumerate() {
            input_times[self.input_order[i]] = g;
        }
        Ok(Gradients {
            weights,
            input_times,
            spike_times,
            stats,
        })
    }
}

/// Adjoint of one layer: returns `dL/dW` and adds `dL/dt_j` of the presynaptic spikes into
/// `dl_dt_prev`.
#[allow(clippy::too_many_arguments)]
fn layer_adjoint(
    kin: &Kinetics,
    tau_syn: f64,
    w: ArrayView2<'_, f64>,
    inputs: &[Spike],
    own: &LayerTrace,
    dl_dt_own: &[f64],
    t_max: f64,
    floor: f64,
    dl_dt_prev: &mut [f64],
    stats: &mut AdjointStats,
) -> Array2<f64> {
    let (n_out, n_in) = w.dim();
    // Group the layer's spikes by neuron (CSR), keeping time order within each neuron.
    let mut start = vec![0usize; n_out + 1];
    for s in &own.spikes {
        start[s.neuron as usize + 1] += 1;
    }
    for n in 0..n_out {
        start[n + 1] += start[n];
    }
    let mut fill = start.clone();
    let mut by_neuron = vec![0usize; own.spikes.len()];
    for (k, s) in own.spikes.iter().enumerate() {
        by_neuron[fill[s.neuron as usize]] = k;
        fill[s.neuron as usize] += 1;
    }
    let n_inputs = inputs.iter().take_while(|s| s.time <= t_max).count();
    let mut gw = Array2::zeros((n_out, n_in));
    for (n, mut g_row) in gw.outer_iter_mut().enumerate() {
        let w_row = w.row(n);
        let w_row = w_row.as_slice().expect("standard layout");
        let g_row = g_row.as_slice_mut().expect("owned");
        let mine = &by_neuron[start[n]..start[n + 1]];
        let (mut lv, mut li, mut t) = (0.0_f64, 0.0_f64, t_max);
        let (mut p_in, mut p_own) = (n_inputs, mine.len());
        while p_in > 0 || p_own > 0 {
            let take_input = match (p_in > 0, p_own > 0) {
                (true, true) => inputs[p_in - 1].time >= own.spikes[mine[p_own - 1]].time,
                (x, _) => x,
            };
            let te = if take_input {
                inputs[p_in - 1].time
            } else {
                own.spikes[mine[p_own - 1]].time
            };
            let tau = t - te;
            if tau > 0.0 {
                let lv0 = lv;
                lv = lv0 * (-kin.a * tau).exp();
                li = li * (-kin.b * tau).exp() + kin.b * lv0 * phi(kin.a, kin.b, tau);
                t = te;
            }
            if take_input {
                p_in -= 1;
                let j = inputs[p_in].neuron as usize;
                g_row[j] -= tau_syn * li;
                dl_dt_prev[p_in] += w_row[j] * (lv - li);
            } else {
                p_own -= 1;
                let k = mine[p_own];
                let current = own.currents[k];
                let mut d_minus = current - kin.theta;
                if d_minus < floor {
                    d_minus = floor;
                    stats.grazing_clamped += 1;
                }
                let d_plus = current - kin.reset;
                lv = (d_plus / d_minus) * lv + dl_dt_own[k] / d_minus;
            }
        }
    }
    gw
}

//! LIF parameters: one value for all neurons or one value per neuron.

use crate::error::{check_finite, Error, Result};
use crate::Real;

/// A neuron parameter: a scalar broadcast over all neurons, or one value per neuron.
#[derive(Debug, Clone, PartialEq)]
pub enum Param<F> {
    /// The same value for every neuron.
    Scalar(F),
    /// One value per neuron; its length must equal the number of neurons `N`.
    PerNeuron(Vec<F>),
}

impl<F: Real> From<F> for Param<F> {
    fn from(value: F) -> Self {
        Param::Scalar(value)
    }
}

impl<F: Real> From<Vec<F>> for Param<F> {
    fn from(values: Vec<F>) -> Self {
        Param::PerNeuron(values)
    }
}

impl<F: Real> Param<F> {
    /// Expands to exactly `n` values, validating the length and finiteness.
    ///
    /// # Errors
    /// [`Error::Shape`] when a per-neuron vector does not have length `n`;
    /// [`Error::NonFinite`] for NaN/inf values.
    pub fn expand(&self, arg: &'static str, n: usize) -> Result<Vec<F>> {
        let values = match self {
            Param::Scalar(v) => vec![*v; n],
            Param::PerNeuron(v) if v.len() == n => v.clone(),
            Param::PerNeuron(v) => {
                return Err(Error::Shape {
                    arg,
                    expected: format!("a scalar or (N,) = ({n},)"),
                    actual: format!("({},)", v.len()),
                })
            }
        };
        check_finite(arg, &values, &[n])?;
        Ok(values)
    }
}

/// Parameters of the current-based LIF neuron, in SI units (volts are arbitrary units).
///
/// Defaults (`leak = reset = 0`, `threshold = 1`, `tau_syn = 5 µs`, `tau_mem = 10 µs`) are
/// those of the hxtorch `LIF`/`EventPropLIF` modules that the seed function belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct LifParams<F> {
    /// Leak (resting) potential.
    pub leak: Param<F>,
    /// Reset potential after a spike.
    pub reset: Param<F>,
    /// Firing threshold (a spike when the membrane is strictly above it).
    pub threshold: Param<F>,
    /// Synaptic time constant in seconds (> 0).
    pub tau_syn: Param<F>,
    /// Membrane time constant in seconds (> 0).
    pub tau_mem: Param<F>,
}

impl<F: Real> Default for LifParams<F> {
    fn default() -> Self {
        Self {
            leak: Param::Scalar(F::zero()),
            reset: Param::Scalar(F::zero()),
            threshold: Param::Scalar(F::one()),
            tau_syn: Param::Scalar(F::of(5e-6)),
            tau_mem: Param::Scalar(F::of(10e-6)),
        }
    }
}

impl<F: Real> LifParams<F> {
    /// Scalar parameters shared by all neurons.
    pub fn scalar(leak: F, reset: F, threshold: F, tau_syn: F, tau_mem: F) -> Self {
        Self {
            leak: leak.into(),
            reset: reset.into(),
            threshold: threshold.into(),
            tau_syn: tau_syn.into(),
            tau_mem: tau_mem.into(),
        }
    }

    /// Validates the parameters for `n` neurons and step `dt`, and precomputes the
    /// per-neuron coefficients the kernels use.
    ///
    /// # Errors
    /// [`Error::Shape`] for a per-neuron vector whose length is not `n`,
    /// [`Error::NonFinite`] for NaN/inf, [`Error::NonPositive`] for `tau_syn`,
    /// `tau_mem` or `dt` not strictly positive.
    ///
    /// ```
    /// use eventprop_core::{LifParams, Param};
    /// let mut p = LifParams::<f64>::default();
    /// p.tau_mem = Param::PerNeuron(vec![1e-5, -1e-5]);
    /// let err = p.resolve(2, 1e-6).unwrap_err();
    /// assert_eq!(err.to_string(), "tau_mem: expected a value > 0, got -0.00001 at index 1");
    /// ```
    pub fn resolve(&self, n: usize, dt: F) -> Result<Coefficients<F>> {
        check_dt(dt)?;
        let leak = self.leak.expand("leak", n)?;
        let reset = self.reset.expand("reset", n)?;
        let threshold = self.threshold.expand("threshold", n)?;
        let tau_syn = self.tau_syn.expand("tau_syn", n)?;
        let tau_mem = self.tau_mem.expand("tau_mem", n)?;
        check_positive("tau_syn", &tau_syn)?;
        check_positive("tau_mem", &tau_mem)?;
        // Same expressions as the seed: `dt / tau` first, then `1 - dt / tau`.
        let k_syn: Vec<F> = tau_syn.iter().map(|&tau| dt / tau).collect();
        let k_mem: Vec<F> = tau_mem.iter().map(|&tau| dt / tau).collect();
        let decay_syn = k_syn.iter().map(|&k| F::one() - k).collect();
        let decay_mem = k_mem.iter().map(|&k| F::one() - k).collect();
        Ok(Coefficients {
            dt,
            leak,
            reset,
            threshold,
            tau_syn,
            tau_mem,
            k_syn,
            k_mem,
            decay_syn,
            decay_mem,
        })
    }
}

/// Checks that the step width is finite and strictly positive.
///
/// # Errors
/// [`Error::NonPositive`] or [`Error::NonFinite`] naming `dt`.
pub fn check_dt<F: Real>(dt: F) -> Result<()> {
    check_finite("dt", &[dt], &[1])?;
    if dt <= F::zero() {
        return Err(Error::NonPositive {
            arg: "dt",
            index: 0,
            value: dt.to_f64().unwrap_or(f64::NAN),
        });
    }
    Ok(())
}

fn check_positive<F: Real>(arg: &'static str, values: &[F]) -> Result<()> {
    match values.iter().position(|&v| v <= F::zero()) {
        None => Ok(()),
        Some(index) => Err(Error::NonPositive {
            arg,
            index,
            value: values[index].to_f64().unwrap_or(f64::NAN),
        }),
    }
}

/// Validated per-neuron parameters and the step coefficients derived from them.
///
/// Every vector has length `N`. Names follow the equations in the crate docs:
/// `k_syn = dt / tau_syn`, `decay_syn = 1 - k_syn`, and likewise for the membrane.
#[derive(Debug, Clone, PartialEq)]
pub struct Coefficients<F> {
    /// Step width in seconds.
    pub dt: F,
    /// Leak potential per neuron.
    pub leak: Vec<F>,
    /// Reset potential per neuron.
    pub reset: Vec<F>,
    /// Threshold per neuron.
    pub threshold: Vec<F>,
    /// Synaptic time constant per neuron.
    pub tau_syn: Vec<F>,
    /// Membrane time constant per neuron.
    pub tau_mem: Vec<F>,
    /// `dt / tau_syn`.
    pub k_syn: Vec<F>,
    /// `dt / tau_mem`.
    pub k_mem: Vec<F>,
    /// `1 - dt / tau_syn`.
    pub decay_syn: Vec<F>,
    /// `1 - dt / tau_mem`.
    pub decay_mem: Vec<F>,
}

impl<F: Real> Coefficients<F> {
    /// Number of neurons.
    pub fn len(&self) -> usize {
        self.leak.len()
    }

    /// True for a layer of zero neurons.
    pub fn is_empty(&self) -> bool {
        self.leak.is_empty()
    }
}

//! The LIF neuron's parameters as one scalar set per layer: the vocabulary shared by every
//! engine (the time-stepped function of this crate, the exact event engine, the trainer's
//! network description).
//!
//! [`crate::LifParams`] is the same five numbers in the kernels' form (generic float, each a
//! scalar or one value per neuron); [`Lif::params`] converts.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::params::LifParams;
use crate::real::Real;

/// Parameters of a layer of current-based LIF neurons (SI units; volts arbitrary), in the
/// seed function's argument order.
///
/// `Default` is the EventProp paper's LIF (Wunderlich & Pehle 2021, Yin-Yang):
/// `leak = reset = 0`, `threshold = 1`, `tau_syn = 5 ms`, `tau_mem = 20 ms`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lif {
    /// Leak (resting) potential; the membrane starts here.
    pub leak: f64,
    /// Reset potential after a spike.
    pub reset: f64,
    /// Firing threshold.
    pub threshold: f64,
    /// Synaptic time constant in seconds (> 0).
    pub tau_syn: f64,
    /// Membrane time constant in seconds (> 0).
    pub tau_mem: f64,
}

impl Default for Lif {
    fn default() -> Self {
        Self {
            leak: 0.0,
            reset: 0.0,
            threshold: 1.0,
            tau_syn: 5e-3,
            tau_mem: 20e-3,
        }
    }
}

impl Lif {
    /// Checks that every value is finite and both time constants are `> 0` (what the
    /// time-stepped function needs; the exact engine adds `leak < threshold`, `reset <
    /// threshold`).
    ///
    /// # Errors
    /// [`Error::NonFinite`] / [`Error::NonPositive`] naming the field.
    ///
    /// ```
    /// use eventprop_core::Lif;
    /// let p = Lif { tau_mem: 0.0, ..Lif::default() };
    /// assert_eq!(p.validate().unwrap_err().to_string(), "tau_mem: expected a value > 0, got 0 at index 0");
    /// ```
    pub fn validate(&self) -> Result<()> {
        for (arg, v) in [
            ("leak", self.leak),
            ("reset", self.reset),
            ("threshold", self.threshold),
            ("tau_syn", self.tau_syn),
            ("tau_mem", self.tau_mem),
        ] {
            if !v.is_finite() {
                return Err(Error::NonFinite {
                    arg,
                    index: Vec::new(),
                    value: v,
                });
            }
        }
        for (arg, v) in [("tau_syn", self.tau_syn), ("tau_mem", self.tau_mem)] {
            if v <= 0.0 {
                return Err(Error::NonPositive {
                    arg,
                    index: 0,
                    value: v,
                });
            }
        }
        Ok(())
    }

    /// The kernels' form: every parameter a scalar of type `F`.
    pub fn params<F: Real>(&self) -> LifParams<F> {
        LifParams::scalar(
            F::of(self.leak),
            F::of(self.reset),
            F::of(self.threshold),
            F::of(self.tau_syn),
            F::of(self.tau_mem),
        )
    }
}

/// Per-neuron parameters of one layer: one value per neuron for each field of [`Lif`].
///
/// A layer without per-neuron values uses its [`Lif`] for every neuron
/// ([`NeuronParams::uniform`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeuronParams {
    /// Leak potentials.
    pub leak: Vec<f64>,
    /// Reset potentials.
    pub reset: Vec<f64>,
    /// Thresholds.
    pub threshold: Vec<f64>,
    /// Synaptic time constants in seconds.
    pub tau_syn: Vec<f64>,
    /// Membrane time constants in seconds.
    pub tau_mem: Vec<f64>,
}

impl NeuronParams {
    /// The same parameters for each of `n` neurons.
    pub fn uniform(p: &Lif, n: usize) -> Self {
        Self {
            leak: vec![p.leak; n],
            reset: vec![p.reset; n],
            threshold: vec![p.threshold; n],
            tau_syn: vec![p.tau_syn; n],
            tau_mem: vec![p.tau_mem; n],
        }
    }

    /// Number of neurons.
    pub fn len(&self) -> usize {
        self.leak.len()
    }

    /// Whether the layer has no neurons.
    pub fn is_empty(&self) -> bool {
        self.leak.is_empty()
    }

    /// The parameters of neuron `n`.
    ///
    /// # Panics
    /// If `n >= self.len()`.
    #[track_caller]
    pub fn get(&self, n: usize) -> Lif {
        Lif {
            leak: self.leak[n],
            reset: self.reset[n],
            threshold: self.threshold[n],
            tau_syn: self.tau_syn[n],
            tau_mem: self.tau_mem[n],
        }
    }

    /// The fields by name, in the order `leak, reset, threshold, tau_syn, tau_mem`.
    pub fn fields(&self) -> [(&'static str, &[f64]); 5] {
        [
            ("leak", &self.leak),
            ("reset", &self.reset),
            ("threshold", &self.threshold),
            ("tau_syn", &self.tau_syn),
            ("tau_mem", &self.tau_mem),
        ]
    }

    /// Mutable fields by name, in the order of [`NeuronParams::fields`].
    pub fn fields_mut(&mut self) -> [(&'static str, &mut Vec<f64>); 5] {
        [
            ("leak", &mut self.leak),
            ("reset", &mut self.reset),
            ("threshold", &mut self.threshold),
            ("tau_syn", &mut self.tau_syn),
            ("tau_mem", &mut self.tau_mem),
        ]
    }
}

/// A parameter outside the range the spiking engines accept ([`Lif::violation`]): the
/// field, what is allowed and what was given.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// The field (`threshold`, `tau_mem`, …).
    pub arg: &'static str,
    /// What is allowed.
    pub expected: String,
    /// What was given.
    pub actual: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: expected {}, got {}",
            self.arg, self.expected, self.actual
        )
    }
}

/// What is wrong with per-neuron parameters ([`NeuronParams::violation`]).
#[derive(Debug, Clone, PartialEq)]
pub enum NeuronViolation {
    /// A field has the wrong length: its name with the layer (`tau_mem1`), the expected
    /// and the actual shape.
    Length(String, String, String),
    /// A neuron's value is invalid: the field, layer and neuron (`threshold1[3]`) and the
    /// violation of that neuron's [`Lif`].
    Value(String, Violation),
}

impl Lif {
    /// The first parameter outside the range the spiking engines accept, if any: a
    /// non-finite value, a time constant `<= 0`, `threshold <= leak` (the resting neuron
    /// would sit above threshold) or `reset >= threshold` (the neuron would fire again at
    /// once, forever).
    ///
    /// ```
    /// use eventprop_core::Lif;
    /// let p = Lif { reset: 2.0, ..Default::default() };
    /// assert_eq!(p.violation().unwrap().to_string(), "reset: expected a value < threshold = 1, got 2");
    /// ```
    pub fn violation(&self) -> Option<Violation> {
        let bad = |arg, expected: String, actual: f64| {
            Some(Violation {
                arg,
                expected,
                actual: actual.to_string(),
            })
        };
        for (arg, v) in [
            ("leak", self.leak),
            ("reset", self.reset),
            ("threshold", self.threshold),
            ("tau_syn", self.tau_syn),
            ("tau_mem", self.tau_mem),
        ] {
            if !v.is_finite() {
                return bad(arg, "a finite value".into(), v);
            }
        }
        for (arg, v) in [("tau_syn", self.tau_syn), ("tau_mem", self.tau_mem)] {
            if v <= 0.0 {
                return bad(arg, "a value > 0".into(), v);
            }
        }
        if self.threshold <= self.leak {
            return bad(
                "threshold",
                format!("a value > leak = {}", self.leak),
                self.threshold,
            );
        }
        if self.reset >= self.threshold {
            return bad(
                "reset",
                format!("a value < threshold = {}", self.threshold),
                self.reset,
            );
        }
        None
    }
}

impl NeuronParams {
    /// The first problem of the parameters of layer `layer` (0 = the first layer after
    /// the input) with `n` neurons, if any: a field without `n` values, or a neuron whose
    /// [`Lif`] has a [`Lif::violation`].
    pub fn violation(&self, layer: usize, n: usize) -> Option<NeuronViolation> {
        for (name, v) in self.fields() {
            if v.len() != n {
                return Some(NeuronViolation::Length(
                    format!("{name}{layer}"),
                    format!("({n},) (one per neuron)"),
                    format!("({},)", v.len()),
                ));
            }
        }
        (0..n).find_map(|i| {
            self.get(i)
                .violation()
                .map(|v| NeuronViolation::Value(format!("{}{layer}[{i}]", v.arg), v))
        })
    }
}

impl std::fmt::Display for NeuronViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Length(arg, expected, actual) => {
                write!(f, "{arg}: expected shape {expected}, got {actual}")
            }
            Self::Value(arg, v) => write!(f, "{arg}: expected {}, got {}", v.expected, v.actual),
        }
    }
}

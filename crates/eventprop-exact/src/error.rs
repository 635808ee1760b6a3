//! The typed error of every public entry point of the exact mode.

/// Everything a caller can get wrong, and the one data-dependent failure (too many spikes).
///
/// Each variant names the offending argument and states the expected against the actual
/// value, so that a command-line tool can print it as one readable line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// An array has the wrong shape (e.g. consecutive weight matrices do not chain).
    #[error("{arg}: expected shape {expected}, got {actual}")]
    Shape {
        /// Argument name (`w1`, `params`, …).
        arg: String,
        /// The expected shape.
        expected: String,
        /// The shape that was passed.
        actual: String,
    },
    /// A value is NaN or ±inf.
    #[error("{arg}: expected finite values, got {value} at index {index}")]
    NonFinite {
        /// Argument name.
        arg: String,
        /// Flat index of the first offending element.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// A scalar setting is outside its valid range.
    #[error("{arg}: expected {expected}, got {actual}")]
    Invalid {
        /// Argument name.
        arg: &'static str,
        /// The valid range, in words.
        expected: String,
        /// The value that was passed.
        actual: String,
    },
    /// A per-neuron parameter, recurrent weight or delay is outside its valid range.
    #[error("{arg}: expected {expected}, got {actual}")]
    Range {
        /// Argument name with the element (`threshold1[3]`, `d0[2, 1]`, …).
        arg: String,
        /// The valid range, in words.
        expected: String,
        /// The value that was passed.
        actual: String,
    },
    /// An input spike names a neuron outside the input layer.
    #[error("input spike {index}: expected a neuron index < {n_inputs}, got {neuron}")]
    InputNeuron {
        /// Position of the spike in the given list.
        index: usize,
        /// The neuron index it names.
        neuron: u64,
        /// Number of input neurons.
        n_inputs: usize,
    },
    /// An input spike time is negative or not finite.
    #[error("input spike {index}: expected a finite time >= 0, got {time}")]
    InputTime {
        /// Position of the spike in the given list.
        index: usize,
        /// The offending time.
        time: f64,
    },
    /// A neuron fired more often than [`crate::SolverConfig::max_spikes_per_neuron`]
    /// allows; the simulation stops instead of dropping spikes silently.
    #[error(
        "layer {layer} neuron {neuron}: more than {cap} spikes (cap max_spikes_per_neuron) \
         by t = {time}; raise the cap or check the weights"
    )]
    TooManySpikes {
        /// Layer index (1 = first layer after the input).
        layer: usize,
        /// Neuron index within the layer.
        neuron: usize,
        /// The cap that was exceeded.
        cap: usize,
        /// Time of the spike that exceeded the cap.
        time: f64,
    },
    /// A class label is out of range.
    #[error("label: expected a class index < {n_classes}, got {label}")]
    Label {
        /// The label.
        label: usize,
        /// Number of output neurons.
        n_classes: usize,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Checks that every value is finite.
///
/// # Errors
/// [`Error::NonFinite`] naming `arg` and the first offending flat index.
pub fn check_finite(arg: &str, data: &[f64]) -> Result<()> {
    match data.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(index) => Err(Error::NonFinite {
            arg: arg.to_string(),
            index,
            value: data[index],
        }),
    }
}

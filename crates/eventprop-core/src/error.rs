//! The typed error of every public entry point.

/// Everything a caller can get wrong when calling the neuron or synapse functions.
///
/// Each variant names the offending argument and states the expected against the
/// actual value, so that a command-line tool can print it as one readable line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// An array has the wrong rank or the wrong extent along some axis.
    #[error("{arg}: expected shape {expected}, got {actual}")]
    Shape {
        /// Argument name, as in the API (`input`, `hw_spikes`, `weight`, …).
        arg: &'static str,
        /// The expected shape, e.g. `(T, B, N) = (38, 50, 120)`.
        expected: String,
        /// The shape that was passed.
        actual: String,
    },
    /// A value is outside its valid range (network descriptions, the stepped simulator's
    /// settings).
    #[error("{arg}: expected {expected}, got {actual}")]
    Invalid {
        /// Argument or field name.
        arg: &'static str,
        /// What is allowed.
        expected: String,
        /// What was given.
        actual: String,
    },
    /// An array or parameter holds NaN or ±inf.
    #[error("{arg}: expected finite values, got {value} at index {index:?}")]
    NonFinite {
        /// Argument name.
        arg: &'static str,
        /// Multi-dimensional index of the first offending element.
        index: Vec<usize>,
        /// The offending value (as f64).
        value: f64,
    },
    /// A quantity that must be strictly positive (time constants, `dt`) is not.
    #[error("{arg}: expected a value > 0, got {value} at index {index}")]
    NonPositive {
        /// Argument name.
        arg: &'static str,
        /// Neuron index (0 for scalars).
        index: usize,
        /// The offending value (as f64).
        value: f64,
    },
    /// Finite arguments drove a computed quantity past the float type's range: the state
    /// became ±inf or NaN by overflow (e.g. inputs near `f32::MAX`, or `dt` far above a
    /// time constant), so the results would be meaningless.
    #[error(
        "{arg}: finite values overflow {dtype} in the {quantity} (got {value} at index \
         {index:?}); scale {arg} down or check dt against tau_syn/tau_mem"
    )]
    Overflow {
        /// The argument whose values were propagated (`input`, `grad_spikes`).
        arg: &'static str,
        /// The quantity that overflowed (`synaptic current`, `membrane`, `adjoint`).
        quantity: &'static str,
        /// The float type (`f32`, `f64`).
        dtype: &'static str,
        /// Multi-dimensional index of the first non-finite element of that quantity.
        index: Vec<usize>,
        /// The non-finite value (as f64).
        value: f64,
    },
}

impl Error {
    /// An [`Error::Invalid`].
    pub fn invalid(
        arg: &'static str,
        expected: impl Into<String>,
        actual: impl std::fmt::Display,
    ) -> Self {
        Self::Invalid {
            arg,
            expected: expected.into(),
            actual: actual.to_string(),
        }
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Formats a shape as `(a, b, c)`.
pub fn fmt_shape(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("({})", parts.join(", "))
}

/// `e`'s message on one line, every run of whitespace (the line breaks of multi-line parser
/// messages) collapsed to one space, so that a command's error stays one line.
///
/// ```
/// assert_eq!(eventprop_core::error::one_line("expected `]`\n  at line 2"), "expected `]` at line 2");
/// ```
pub fn one_line(e: impl std::fmt::Display) -> String {
    e.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Converts a flat row-major index into a multi-dimensional one.
pub(crate) fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (slot, &dim) in index.iter_mut().zip(shape).rev() {
        if dim > 0 {
            *slot = flat % dim;
            flat /= dim;
        }
    }
    index
}

/// Checks that every element of a row-major buffer of the given shape is finite.
///
/// # Errors
/// [`Error::NonFinite`] naming `arg` and the first offending index.
pub fn check_finite<F: crate::Real>(arg: &'static str, data: &[F], shape: &[usize]) -> Result<()> {
    if all_finite(data) {
        return Ok(());
    }
    match data.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(flat) => Err(Error::NonFinite {
            arg,
            index: unravel(flat, shape),
            value: data[flat].to_f64().unwrap_or(f64::NAN),
        }),
    }
}

/// Whether every element is finite, in blocks without an early exit inside a block, so
/// that the compiler vectorises the test (a plain `position` scan tests one element per
/// iteration); [`check_finite`] scans again with `position` only to locate a failure.
pub(crate) fn all_finite<F: crate::Real>(data: &[F]) -> bool {
    data.chunks(256).all(|block| {
        block
            .iter()
            .fold(true, |ok, v| ok & (v.abs() <= F::max_value()))
    })
}

/// Checks that an array has exactly the expected shape.
///
/// # Errors
/// [`Error::Shape`] naming `arg`, the expected and the actual shape.
pub fn check_shape(arg: &'static str, actual: &[usize], expected: &[usize]) -> Result<()> {
    if actual == expected {
        Ok(())
    } else {
        Err(Error::Shape {
            arg,
            expected: fmt_shape(expected),
            actual: fmt_shape(actual),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unravel_row_major() {
        // 2*3*4 array: flat 23 is the last element (1, 2, 3); flat 5 is (0, 1, 1).
        assert_eq!(unravel(23, &[2, 3, 4]), vec![1, 2, 3]);
        assert_eq!(unravel(5, &[2, 3, 4]), vec![0, 1, 1]);
    }

    #[test]
    fn messages_name_argument_and_values() {
        let e = check_shape("input", &[3, 4], &[3, 5]).unwrap_err();
        assert_eq!(e.to_string(), "input: expected shape (3, 5), got (3, 4)");
        let e = check_finite("weight", &[1.0f64, f64::NAN], &[2]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "weight: expected finite values, got NaN at index [1]"
        );
    }
}

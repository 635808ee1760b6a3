//! The crate's error type.

use std::path::PathBuf;

/// Errors of the training library: each names the argument (or file) and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is out of its valid range.
    #[error("{arg}: expected {expected}, got {actual}")]
    Invalid {
        /// The argument or field name.
        arg: &'static str,
        /// What is allowed.
        expected: String,
        /// What was given.
        actual: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error (also in the message; error-chain printers should not repeat it).
        source: std::io::Error,
    },
    /// A file exists but its content is not what was expected (corrupt checkpoint/config).
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An error of the core kernels.
    #[error(transparent)]
    Core(#[from] eventprop_core::Error),
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn invalid(
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
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
    pub(crate) fn format(path: &std::path::Path, reason: impl std::fmt::Display) -> Self {
        Self::Format {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        }
    }
}

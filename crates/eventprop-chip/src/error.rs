//! The crate's error type.

use std::path::{Path, PathBuf};

/// Errors of the chips, recordings and mappings: each names the argument or file and what
/// was expected.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is out of its valid range.
    #[error("{arg}: expected {expected}, got {actual}")]
    Invalid {
        /// The argument or field name.
        arg: &'static str,
        /// What is allowed.
        expected: String,
        /// What was given.
        actual: String,
    },
    /// A file could not be read as the array it should hold; the message names the
    /// argument and the file (`eventprop_data::arrays`).
    #[error("{0}")]
    Read(String),
    /// Reading or writing a file failed (the OS error is the [source](std::error::Error::source)).
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file exists but its content is not what was expected.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An error of the time-stepped kernels or simulator.
    #[error(transparent)]
    Core(#[from] eventprop_core::Error),
    /// An error of the exact event engine (the mock chip's dynamics).
    #[error(transparent)]
    Exact(#[from] eventprop_exact::Error),
}

/// A data reader's or writer's error as the same variant of this crate's.
impl From<eventprop_data::Error> for Error {
    fn from(e: eventprop_data::Error) -> Self {
        match e {
            eventprop_data::Error::Invalid {
                arg,
                expected,
                actual,
            } => Self::Invalid {
                arg,
                expected,
                actual,
            },
            eventprop_data::Error::Io { path, source } => Self::Io { path, source },
            eventprop_data::Error::Format { path, reason } => Self::Format { path, reason },
            eventprop_data::Error::Read(m) => Self::Read(m),
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

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
    /// An [`Error::Io`] for `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
    /// An [`Error::Format`] for `path`.
    pub fn format(path: &Path, reason: impl std::fmt::Display) -> Self {
        Self::Format {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        }
    }
}

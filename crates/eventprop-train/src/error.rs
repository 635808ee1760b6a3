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
    /// A file could not be read as the array it should hold; the message names the
    /// argument and the file (`eventprop_data::arrays`).
    #[error("{0}")]
    Read(String),
    /// Reading or writing a file failed (the OS error is the [source](std::error::Error::source);
    /// print the chain, e.g. `{:#}` of `anyhow`, to see it).
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
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
    /// A configuration layer (file or flags) names an unknown key or a wrong type.
    #[error("{origin}: {reason}")]
    Config {
        /// Where the layer came from (a file name, `flags`).
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// Training diverged: the loss or a gradient became NaN or infinite.
    #[error("training diverged in epoch {epoch}, batch {batch}: {what} is not finite (the last checkpoint holds the last good state; lower the learning rate or check the initial weights)")]
    Diverged {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based batch within the epoch.
        batch: usize,
        /// `the loss` or `a gradient`.
        what: &'static str,
    },
    /// A training batch failed (e.g. non-finite currents from weights that are too large).
    #[error("training failed in epoch {epoch}, batch {batch} (weights too large or diverged? check the init and the learning rate)")]
    Batch {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based batch within the epoch.
        batch: usize,
        /// The engine's error.
        source: Box<Error>,
    },
    /// An error of the time-stepped kernels.
    #[error(transparent)]
    Core(#[from] eventprop_core::Error),
    /// An error of the exact event engine.
    #[error(transparent)]
    Exact(#[from] eventprop_exact::Error),
    /// An error of a NIR graph or file.
    #[error(transparent)]
    Nir(#[from] eventprop_nir::Error),
}

/// A data reader's, writer's or generator's error as the same variant of this crate's
/// (`Invalid`, `Io`, `Format`).
impl From<eventprop_data::Error> for Error {
    fn from(e: eventprop_data::Error) -> Self {
        eventprop_chip::Error::from(e).into()
    }
}

/// A chip's, recording's or mapping's error as the same variant of this crate's.
impl From<eventprop_chip::Error> for Error {
    fn from(e: eventprop_chip::Error) -> Self {
        match e {
            eventprop_chip::Error::Invalid {
                arg,
                expected,
                actual,
            } => Self::Invalid {
                arg,
                expected,
                actual,
            },
            eventprop_chip::Error::Io { path, source } => Self::Io { path, source },
            eventprop_chip::Error::Format { path, reason } => Self::Format { path, reason },
            eventprop_chip::Error::Read(m) => Self::Read(m),
            eventprop_chip::Error::Core(e) => Self::Core(e),
            eventprop_chip::Error::Exact(e) => Self::Exact(e),
        }
    }
}

/// `e` and its sources joined by `: ` (one line, as the CLI prints errors).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
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
    pub(crate) fn config(origin: &str, reason: impl Into<String>) -> Self {
        Self::Config {
            origin: origin.to_string(),
            reason: reason.into(),
        }
    }
    pub(crate) fn format(path: &std::path::Path, reason: impl std::fmt::Display) -> Self {
        Self::Format {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        }
    }
}

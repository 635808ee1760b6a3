//! The crate's error type.

use std::path::{Path, PathBuf};

/// Errors of NIR export and import; each names the file, the node or the parameter, and
/// what was expected.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file cannot be opened or written (the OS error is the source).
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a NIR graph as `nir.write` lays it out.
    #[error("{}: {reason}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The graph is valid NIR but not a network this project runs: an unsupported node
    /// type, topology or parameter convention.
    #[error("node `{node}` ({kind}): {reason}")]
    Unsupported {
        /// The node's name (or `graph` for the whole graph).
        node: String,
        /// Its NIR type.
        kind: String,
        /// What is not supported, with the expected and the actual value.
        reason: String,
    },
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn format(path: &Path, reason: impl Into<String>) -> Self {
        Self::Format {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    /// An [`Error::Unsupported`] naming the node, its NIR type and what is not supported.
    pub fn unsupported(node: &str, kind: &str, reason: impl std::fmt::Display) -> Self {
        Self::Unsupported {
            node: node.to_string(),
            kind: kind.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

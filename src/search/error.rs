//! Errors of hyper-parameter search.

use std::path::PathBuf;

/// Why a search could not be set up or run.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The run folder is locked by another process, or cannot be locked.
    #[error(transparent)]
    Lock(#[from] crate::run::RunLockError),
    /// A file cannot be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The search config does not parse.
    #[error("search config {}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A search setting is invalid.
    #[error("search config: `{key}` {reason}")]
    Value {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A key of `[space]` (or `fixed`, or the budget) is unusable: unknown, empty, wrong type.
    #[error("search space: `{key}` {reason}")]
    Space {
        /// The dotted key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// Writing results failed.
    #[error("{}: I/O error: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Every trial failed.
    #[error("search: no trial succeeded (first failure: {0})")]
    NoTrial(String),
}

impl From<crate::run::dotted::DottedKeyError> for SearchError {
    fn from(e: crate::run::dotted::DottedKeyError) -> Self {
        SearchError::Space {
            key: e.key,
            reason: e.reason,
        }
    }
}

impl SearchError {
    /// A bad setting.
    pub fn value(key: &str, reason: impl Into<String>) -> Self {
        SearchError::Value {
            key: key.to_string(),
            reason: reason.into(),
        }
    }
}

/// Results of this module.
pub type Result<T, E = SearchError> = std::result::Result<T, E>;

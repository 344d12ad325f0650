//! Errors of the transfer experiments.

use std::path::PathBuf;

/// Why a transfer experiment could not be set up or run.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The config file cannot be read.
    #[error("config {}: cannot read: {source}", path.display())]
    ConfigRead {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The config text does not parse (unknown key, wrong type...).
    #[error("config {}: {message}", path.display())]
    ConfigParse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A config value is out of range or inconsistent.
    #[error("config: `{key}` {reason}")]
    ConfigValue {
        /// The dotted key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A dataset cannot be loaded.
    #[error("loading {what} from {}: {source}", path.display())]
    Data {
        /// Source or target.
        what: &'static str,
        /// The folder.
        path: PathBuf,
        /// The loader's error.
        #[source]
        source: Box<crate::data::DataError>,
    },
    /// A checkpoint cannot be read or written, or does not fit the model.
    #[error(transparent)]
    Checkpoint(#[from] crate::nn::checkpoint::CheckpointError),
    /// A trunk checkpoint does not match `[model]`.
    #[error("checkpoint {}: {reason}", path.display())]
    Trunk {
        /// The file.
        path: PathBuf,
        /// What differs.
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
}

impl TransferError {
    /// A bad config value.
    pub fn value(key: &str, reason: impl Into<String>) -> Self {
        TransferError::ConfigValue {
            key: key.to_string(),
            reason: reason.into(),
        }
    }
}

/// Results of this module.
pub type Result<T, E = TransferError> = std::result::Result<T, E>;

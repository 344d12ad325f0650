//! Errors of the transfer experiments.

use std::path::PathBuf;

/// Why a transfer experiment could not be set up or run.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The run folder is locked by another process, or cannot be locked.
    #[error(transparent)]
    Lock(#[from] crate::run::RunLockError),
    /// The config file cannot be read or parsed, or a value is bad.
    #[error(transparent)]
    Config(#[from] crate::run::ConfigError),
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
    /// Training diverged: the network's weights (or a reported accuracy) became NaN or
    /// infinite.
    #[error("diverged ({run}: {what}); no result was written; lower `{lr_key}`")]
    Diverged {
        /// Which training: `pretraining` or `strategy S, budget B, seed N`.
        run: String,
        /// What is not finite.
        what: String,
        /// The learning rate to lower (`source.lr` or `target.lr`).
        lr_key: &'static str,
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
        crate::run::ConfigError::value(key, reason).into()
    }
}

/// Results of this module.
pub type Result<T, E = TransferError> = std::result::Result<T, E>;

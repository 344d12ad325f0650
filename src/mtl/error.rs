//! Typed errors of the multi-task module.

use std::path::PathBuf;

/// Why a multi-task run could not be set up or run.
#[derive(Debug, thiserror::Error)]
pub enum MtlError {
    /// The run folder is locked by another process, or cannot be locked.
    #[error(transparent)]
    Lock(#[from] crate::run::RunLockError),
    /// The config file cannot be read or parsed, or a value is bad.
    #[error(transparent)]
    Config(#[from] crate::run::ConfigError),
    /// The weighting method is not known.
    #[error("config key `weighting.method`: unknown method {name:?} (known: {known})")]
    UnknownMethod {
        /// The name given.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// A data path does not exist.
    #[error("config key `{key}`: data path {path} does not exist")]
    MissingData {
        /// The key that named it.
        key: String,
        /// The path looked for.
        path: PathBuf,
    },
    /// Loading the dataset failed.
    #[error("loading data from {path}: {source}")]
    Data {
        /// The folder.
        path: PathBuf,
        /// The loader's error.
        source: crate::data::DataError,
    },
    /// The model's heads do not match the dataset's label columns.
    #[error("config key `{key}`: {message}")]
    HeadMismatch {
        /// The offending key.
        key: String,
        /// What does not match.
        message: String,
    },
    /// Training diverged: a task's loss (or test metric) became NaN or infinite, or a loss
    /// exceeded `train.diverge_loss`.
    #[error(
        "diverged at iteration {iteration} (task {task}, {what}); no result was written; lower \
         `train.lr` (or raise `train.diverge_loss` if the loss is legitimately large)"
    )]
    Diverged {
        /// The training step (1-based) or, for a test metric, the step count at that epoch's end.
        iteration: u64,
        /// The task's name.
        task: String,
        /// What was not finite or too large, with its value.
        what: String,
    },
    /// Writing a result file failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Result alias of the multi-task module.
pub type Result<T, E = MtlError> = std::result::Result<T, E>;

impl MtlError {
    /// A bad config value of `key` (a dotted key, e.g. `weighting.c` or `tasks[1].classes`).
    pub fn value(key: &str, reason: impl Into<String>) -> Self {
        crate::run::ConfigError::value(key, reason).into()
    }
}

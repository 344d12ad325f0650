//! The errors of training, evaluation and adaptation: each names the file, key or path at
//! fault and what was expected.

use std::path::PathBuf;

/// Why a run, an evaluation or an adaptation could not be done.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The run folder is locked by another process, or cannot be locked.
    #[error(transparent)]
    Lock(#[from] crate::run::RunLockError),
    /// The config file cannot be read or parsed, or a value is bad.
    #[error(transparent)]
    Config(#[from] crate::run::ConfigError),
    /// The algorithm cannot be built from the config.
    #[error(transparent)]
    Algorithm(#[from] crate::algorithms::AlgorithmError),
    /// A dataset cannot be loaded or sampled.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// A checkpoint cannot be written or read (missing, corrupt, wrong layout...).
    #[error(transparent)]
    Checkpoint(#[from] crate::nn::checkpoint::CheckpointError),
    /// The checkpoint is a valid safetensors file but not a few-shot run of this crate.
    #[error("checkpoint {}: {reason}", path.display())]
    NotARun {
        /// The file.
        path: PathBuf,
        /// What is missing or unreadable.
        reason: String,
    },
    /// The checkpoint's tensors do not fit the architecture the config asks for.
    #[error(
        "checkpoint {} was trained with {stored}, but the config asks for {requested}: {source}",
        path.display()
    )]
    Architecture {
        /// The file.
        path: PathBuf,
        /// The checkpoint's algorithm and backbone.
        stored: String,
        /// The config's.
        requested: String,
        /// The mismatch found.
        #[source]
        source: Box<crate::nn::checkpoint::CheckpointError>,
    },
    /// More classes than the checkpoint's classifier head has outputs.
    #[error(
        "{what} has {n_way} classes, but the checkpoint {} has a {head}-way head (`data.n_way` = {head} \
         when it was trained); use at most {head} classes or retrain with a larger `data.n_way`",
        path.display()
    )]
    TooManyClasses {
        /// The checkpoint.
        path: PathBuf,
        /// What asked for the classes (the config's `data.n_way`, the support set...).
        what: String,
        /// The number asked for.
        n_way: usize,
        /// The head's width.
        head: usize,
    },
    /// Input data for `adapt` is unusable (empty folder, wrong width...).
    #[error("{}: {reason}", path.display())]
    Input {
        /// The file or folder.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// `--resume` is impossible, or a fresh run would overwrite one.
    #[error("run {}: {reason}", out_dir.display())]
    Resume {
        /// The run folder.
        out_dir: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Training diverged: a loss, gradient norm, parameter or validation metric became NaN or
    /// infinite, or a loss exceeded `train.diverge_loss`. Nothing non-finite was written.
    #[error(
        "diverged at iteration {iteration} (task {task}, {what}); {kept}; lower `train.meta_lr` \
         or the inner learning rate (or raise `train.diverge_loss` if the loss is legitimately large)"
    )]
    Diverged {
        /// The iteration (1-based).
        iteration: usize,
        /// The run (or the validation episode) that diverged.
        task: String,
        /// What was not finite or too large, with its value.
        what: String,
        /// Which checkpoints were kept.
        kept: String,
    },
    /// A checkpoint or an evaluation gives non-finite values (NaN or infinite weights, losses or
    /// scores): reported as an error rather than as a NaN number.
    #[error("{}: {reason}", path.display())]
    NonFinite {
        /// The checkpoint (or input) at fault.
        path: PathBuf,
        /// What is not finite, and where.
        reason: String,
    },
    /// Writing an output file failed.
    #[error("{}: I/O error while {action}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl TrainError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, action: &'static str, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.into(),
            action,
            source,
        }
    }

    /// A bad config value.
    pub fn value(key: &str, reason: impl Into<String>) -> Self {
        crate::run::ConfigError::value(key, reason).into()
    }
}

/// Results of this module.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;

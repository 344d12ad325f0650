//! Few-shot training, evaluation and adaptation from TOML run configs: what `metalearn train`,
//! `metalearn eval` and `metalearn adapt` do.
//!
//! - [`config`]: the run config ([`RunConfig`]: `[algorithm]`, `[backbone]`, `[data]`,
//!   `[train]`, `[eval]`), unknown keys rejected,
//! - [`data_options`]: Omniglot's named splits (Vinyals, Lake), rotation classes,
//!   within-alphabet and drawer-disjoint episodes,
//! - [`augment`](mod@augment): `[data.augment]`: augmented training episodes, support views,
//! - [`tasks`]: episodes and sinusoid tasks as tensors, the data of a run ([`TaskSource`]),
//! - `loop`: the meta-training loop (progress bar, validation, best and last checkpoints,
//!   training-episode shape, lr step schedule, early stopping,
//!   exact `--resume`),
//! - [`eval`]: the test protocol (fixed episodes, mean ± 95% CI, wall time, peak memory),
//! - [`adapt`](mod@adapt): predictions for new support/query data from a checkpoint,
//! - [`arrays`]: the same on in-memory arrays (the Python package's `adapt`),
//! - [`curve`]: the learning-curve SVG,
//! - [`objective`]: run configs as a search objective ([`FewShot`]),
//! - [`commands`]: the bodies of the three commands,
//! - [`error`]: the error type, [`TrainError`].

pub mod adapt;
pub mod arrays;
pub mod augment;
pub mod commands;
pub mod config;
pub mod curve;
pub mod data_options;
pub mod error;
pub mod eval;
pub mod input;
pub mod r#loop;
pub mod objective;
pub mod tasks;

pub use adapt::{adapt, AdaptResult, OutputFormat, Prediction};
pub use config::{DataConfig, DatasetKind, EvalConfig, RunConfig, TrainConfig};
pub use error::TrainError;
pub use eval::{evaluate, evaluate_checkpoint, load_learner, EvalReport};
pub use input::InputPipeline;
pub use objective::FewShot;
pub use r#loop::{apply_schedule, train, EarlyStop, HistoryPoint, TrainOptions, TrainReport};
pub use tasks::{Split, TaskSource};

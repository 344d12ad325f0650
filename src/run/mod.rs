//! The run layer: what the commands (`fewshot`, `mtl`, `transfer`, `search`) share, so that
//! they stand side by side on it and none imports another.
//!
//! - [`config_file`]: reading and parsing TOML configs, range checks, [`ConfigError`],
//! - [`dotted`]: dotted keys into config documents (search overrides, seeds),
//! - [`objective`]: the [`Objective`] interface through which `search` drives a command,
//! - [`stats`]: mean and 95% confidence interval ([`mean_ci95`]),
//! - [`plot`]: SVG line plots, one panel or several side by side ([`LinePlot`]),
//! - [`usage`]: wall time and peak memory readings,
//! - [`progress`] and [`report`]: the progress bar and printing a command's result,
//! - [`diverge`]: divergence checks of losses and weights,
//! - [`lock`]: one writer per run folder ([`RunLock`]),
//! - [`interrupt`]: a stop request for training loops (Ctrl-C from Python).

pub mod config_file;
pub mod diverge;
pub mod dotted;
pub mod interrupt;
pub mod lock;
pub mod objective;
pub mod plot;
pub mod progress;
pub mod report;
pub mod stats;
pub mod usage;

pub use config_file::ConfigError;
pub use lock::{RunLock, RunLockError};
pub use objective::Objective;
pub use plot::{LinePlot, Series};
pub use stats::{mean_ci95, MeanCi};

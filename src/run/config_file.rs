//! TOML config files: reading and parsing them, the range checks of their values, and the one
//! error type for all three that every command's config shares (`fewshot`, `mtl`, `transfer`,
//! `search`).

use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// Why a TOML config could not be used: the file, or the key, and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("config {}: cannot read: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The text does not parse: unknown key, unknown name, wrong type... (`message` is the
    /// TOML parser's, naming the key and its line).
    #[error("config {}: {message}", path.display())]
    Parse {
        /// The file (or what the text came from).
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A value is out of range or inconsistent with another.
    #[error("config: `{key}` {reason}")]
    Value {
        /// The key, as `section.key`.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

impl ConfigError {
    /// A bad value of `key`.
    pub fn value(key: &str, reason: impl Into<String>) -> Self {
        ConfigError::Value {
            key: key.to_string(),
            reason: reason.into(),
        }
    }
}

/// The text of the config file at `path`.
pub fn read_text(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Parses TOML `text` into `C` (`origin` names the text in errors).
pub fn parse_toml<C: DeserializeOwned>(text: &str, origin: &Path) -> Result<C, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: origin.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })
}

/// The largest count a config may give for sizes, shots, ways, batches and episodes: far
/// above any real run, low enough that products of such values cannot overflow.
pub const MAX_COUNT: usize = 1_000_000;
/// The largest number of iterations, epochs or steps a config may give.
pub const MAX_STEPS: usize = 100_000_000;
/// The largest learning rate (or step size) a config may give.
pub const MAX_LR: f64 = 100.0;

/// Checks that the integer `value` of `key` lies in `[min, max]`; the error names the key, the
/// value and the range.
pub fn int_in(key: &str, value: usize, min: usize, max: usize) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::value(
            key,
            format!("= {value} is out of range: expected an integer in [{min}, {max}]"),
        ))
    }
}

/// Checks that `value` of `key` is a finite number in `(0, max]`; the error names the key, the
/// value and the range.
pub fn positive_in(key: &str, value: f64, max: f64) -> Result<(), ConfigError> {
    if value.is_finite() && value > 0.0 && value <= max {
        Ok(())
    } else {
        Err(ConfigError::value(
            key,
            format!("= {value} is out of range: expected a finite number in (0, {max:e}]"),
        ))
    }
}

/// Checks that `value` of `key` is a finite number in `[min, max]`.
pub fn finite_in(key: &str, value: f64, min: f64, max: f64) -> Result<(), ConfigError> {
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::value(
            key,
            format!("= {value} is out of range: expected a finite number in [{min}, {max}]"),
        ))
    }
}

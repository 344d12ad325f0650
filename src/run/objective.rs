//! What a hyper-parameter search optimises: a trainable config family seen through one
//! interface, [`Objective`]. Each command implements it beside its own code (`fewshot`,
//! `mtl`, `transfer`), and `search` drives any of them without knowing which.

use std::path::Path;
use toml::Value;

/// A trainable config family, as seen by the search: it checks and runs config documents and
/// says how their score, budget, seed and output folder are named.
pub trait Objective: Sync {
    /// Parses and validates a whole config document (the error names the key at fault).
    fn check(&self, doc: &Value) -> Result<(), String>;
    /// Runs one trial of a config document in `run_dir`; returns its score.
    fn run(&self, doc: &Value, run_dir: &Path) -> Result<f64, String>;
    /// Whether higher scores are better.
    fn maximize(&self) -> bool;
    /// The score's name.
    fn metric(&self) -> String;
    /// The default key that a successive-halving budget sets.
    fn budget_key(&self) -> &str;
    /// Sets the trial seed in a document.
    fn set_seed(&self, doc: &mut Value, seed: u64);
    /// The key of the run's output folder, if any (set for trials and `best.toml`).
    fn out_dir_key(&self) -> Option<&str>;
}

/// A config document as TOML text, for the config parsers of the objectives.
pub fn config_text(doc: &Value) -> Result<String, String> {
    toml::to_string(doc).map_err(|e| format!("cannot write the config as TOML: {e}"))
}

//! `metalearn train` run configs as a search objective: a trial trains in its run folder and
//! is scored by its best validation metric (accuracy, maximised; or MSE for regression,
//! minimised).

use super::{RunConfig, TrainOptions};
use crate::run::dotted::set_dotted;
use crate::run::objective::{config_text, Objective};
use std::path::{Path, PathBuf};
use toml::Value;

/// `metalearn train` run configs.
pub struct FewShot {
    /// The base config's path (for messages).
    pub origin: PathBuf,
    /// Regression (minimise the validation MSE) or classification (maximise accuracy).
    pub regression: bool,
}

impl FewShot {
    /// The objective of the base document `base` read from `origin`; errors when it does not
    /// load.
    pub fn new(origin: &Path, base: &Value) -> Result<FewShot, String> {
        let s = FewShot {
            origin: origin.to_path_buf(),
            regression: false,
        };
        let cfg = s.parse(base)?;
        Ok(FewShot {
            regression: cfg.data.is_regression(),
            ..s
        })
    }

    fn parse(&self, doc: &Value) -> Result<RunConfig, String> {
        RunConfig::from_toml_str(&config_text(doc)?, &self.origin).map_err(|e| e.to_string())
    }
}

impl Objective for FewShot {
    fn check(&self, doc: &Value) -> Result<(), String> {
        self.parse(doc).map(|_| ())
    }

    fn run(&self, doc: &Value, run_dir: &Path) -> Result<f64, String> {
        let mut cfg = self.parse(doc)?;
        cfg.train.out_dir = run_dir.to_path_buf();
        let opts = TrainOptions {
            overwrite: true,
            ..Default::default()
        };
        let r = super::train(&cfg, &opts).map_err(|e| e.to_string())?;
        r.best
            .map(|(_, m)| m)
            .ok_or_else(|| "the run made no validation".to_string())
    }

    fn maximize(&self) -> bool {
        !self.regression
    }

    fn metric(&self) -> String {
        if self.regression {
            "val_mse".into()
        } else {
            "val_accuracy".into()
        }
    }

    fn budget_key(&self) -> &str {
        "train.iterations"
    }

    fn set_seed(&self, doc: &mut Value, seed: u64) {
        let _ = set_dotted(doc, "train.seed", Value::Integer(seed as i64));
    }

    fn out_dir_key(&self) -> Option<&str> {
        Some("train.out_dir")
    }
}

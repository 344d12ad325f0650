//! `metalearn transfer` configs as a search objective: a trial runs every (strategy, budget,
//! seed) of the config and is scored by the mean target validation accuracy
//! (`target.val_size` must be > 0).

use super::TransferConfig;
use crate::run::dotted::set_dotted;
use crate::run::objective::{config_text, Objective};
use std::path::{Path, PathBuf};
use toml::Value;

/// `metalearn transfer` configs.
pub struct Transfer {
    /// The base config's path.
    pub origin: PathBuf,
}

impl Transfer {
    fn parse(&self, doc: &Value) -> Result<TransferConfig, String> {
        let cfg = TransferConfig::from_toml_str(&config_text(doc)?, &self.origin)
            .map_err(|e| e.to_string())?;
        if cfg.target.val_size == 0 {
            return Err(
                "`target.val_size` must be > 0: trials are scored on the target validation split"
                    .into(),
            );
        }
        Ok(cfg)
    }
}

impl Objective for Transfer {
    fn check(&self, doc: &Value) -> Result<(), String> {
        self.parse(doc).map(|_| ())
    }

    fn run(&self, doc: &Value, run_dir: &Path) -> Result<f64, String> {
        let mut cfg = self.parse(doc)?;
        cfg.out_dir = Some(run_dir.to_path_buf());
        let r = super::run(&cfg, false).map_err(|e| e.to_string())?;
        r.mean_val_accuracy()
            .ok_or_else(|| "no validation accuracy".to_string())
    }

    fn maximize(&self) -> bool {
        true
    }

    fn metric(&self) -> String {
        "val_accuracy".into()
    }

    fn budget_key(&self) -> &str {
        "target.steps"
    }

    fn set_seed(&self, doc: &mut Value, seed: u64) {
        let _ = set_dotted(
            doc,
            "seeds",
            Value::Array(vec![Value::Integer(seed as i64)]),
        );
    }

    fn out_dir_key(&self) -> Option<&str> {
        Some("out_dir")
    }
}

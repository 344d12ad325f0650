//! `metalearn mtl` configs as a search objective: a trial trains on the first 90% of the
//! (limited) training set and is scored on the last 10% (mean over tasks of accuracy, or of
//! minus the RMSE for regression tasks; maximised).

use super::config::{self, MtlConfig};
use super::train::{self, TrainOptions};
use super::{weighting, MtlError};
use crate::run::dotted::set_dotted;
use crate::run::objective::{config_text, Objective};
use std::path::{Path, PathBuf};
use toml::Value;

/// `metalearn mtl` configs.
pub struct MultiTask {
    /// The base config's path (relative data paths are resolved against its folder).
    pub origin: PathBuf,
}

impl MultiTask {
    fn parse(&self, doc: &Value) -> Result<MtlConfig, String> {
        let mut cfg = MtlConfig::from_toml(&config_text(doc)?).map_err(|e| e.to_string())?;
        cfg.resolve_data_path(&self.origin);
        Ok(cfg)
    }
}

impl Objective for MultiTask {
    fn check(&self, doc: &Value) -> Result<(), String> {
        self.parse(doc).map(|_| ())
    }

    fn run(&self, doc: &Value, _run_dir: &Path) -> Result<f64, String> {
        let cfg = self.parse(doc)?;
        let e = |e: MtlError| e.to_string();
        let specs = config::task_specs(&cfg).map_err(e)?;
        let (all, _test) = config::load_data(&cfg).map_err(e)?;
        let n_val = (all.n / 10).max(1);
        if all.n <= n_val {
            return Err("too few training examples for a validation split".into());
        }
        let tr = all.subset(&(0..all.n - n_val).collect::<Vec<_>>());
        let val = all.subset(&(all.n - n_val..all.n).collect::<Vec<_>>());
        let model = config::build_model(&cfg.model, &tr.example_shape, specs.clone()).map_err(e)?;
        let mut method = weighting::build(&cfg.weighting, specs.len()).map_err(e)?;
        let opts = TrainOptions {
            grad_every: 0,
            eval_every_epoch: false,
            ..TrainOptions::from_config(&cfg)
        };
        let map: Vec<usize> = (0..specs.len()).collect();
        let out =
            train::train(model.as_ref(), method.as_mut(), &tr, &val, &map, &opts).map_err(e)?;
        let score = specs
            .iter()
            .zip(&out.test_metric)
            .map(|(s, &m)| {
                if super::model::metric_name(s.kind) == "accuracy" {
                    m
                } else {
                    -m
                }
            })
            .sum::<f64>()
            / specs.len().max(1) as f64;
        Ok(score)
    }

    fn maximize(&self) -> bool {
        true
    }

    fn metric(&self) -> String {
        "val_mean_task_score".into()
    }

    fn budget_key(&self) -> &str {
        "train.epochs"
    }

    fn set_seed(&self, doc: &mut Value, seed: u64) {
        let _ = set_dotted(doc, "seed", Value::Integer(seed as i64));
    }

    fn out_dir_key(&self) -> Option<&str> {
        None
    }
}

//! What a trial runs: a few-shot run (`metalearn train` config, scored on its fixed
//! validation episodes), a multi-task run (scored on a held-out part of its training set) or a
//! transfer experiment (scored on its target validation split).

use std::path::{Path, PathBuf};
use toml::Value;

/// A trainable config family, as seen by the search.
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

fn text(doc: &Value) -> Result<String, String> {
    toml::to_string(doc).map_err(|e| format!("cannot write the config as TOML: {e}"))
}

/// `metalearn train` run configs.
pub struct FewShot {
    /// The base config's path (for messages).
    pub origin: PathBuf,
    /// Regression (minimise the validation MSE) or classification (maximise accuracy).
    pub regression: bool,
}

impl FewShot {
    /// From the base document.
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

    fn parse(&self, doc: &Value) -> Result<crate::fewshot::RunConfig, String> {
        crate::fewshot::RunConfig::from_toml_str(&text(doc)?, &self.origin)
            .map_err(|e| e.to_string())
    }
}

impl Objective for FewShot {
    fn check(&self, doc: &Value) -> Result<(), String> {
        self.parse(doc).map(|_| ())
    }

    fn run(&self, doc: &Value, run_dir: &Path) -> Result<f64, String> {
        let mut cfg = self.parse(doc)?;
        cfg.train.out_dir = run_dir.to_path_buf();
        let opts = crate::fewshot::TrainOptions {
            overwrite: true,
            ..Default::default()
        };
        let r = crate::fewshot::train(&cfg, &opts).map_err(|e| e.to_string())?;
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
        let _ = super::space::set_dotted(doc, "train.seed", Value::Integer(seed as i64));
    }

    fn out_dir_key(&self) -> Option<&str> {
        Some("train.out_dir")
    }
}

/// `metalearn mtl` configs: trained on the first 90% of the (limited) training set, scored on
/// the last 10% (mean over tasks of accuracy, or of minus the RMSE for regression tasks).
pub struct MultiTask {
    /// The base config's path (relative data paths are resolved against its folder).
    pub origin: PathBuf,
}

impl MultiTask {
    fn parse(&self, doc: &Value) -> Result<crate::mtl::MtlConfig, String> {
        let mut cfg = crate::mtl::MtlConfig::from_toml(&text(doc)?).map_err(|e| e.to_string())?;
        if let (Some(p), Some(dir)) = (&cfg.data.path, self.origin.parent()) {
            if p.is_relative() && !p.exists() && dir.join(p).exists() {
                cfg.data.path = Some(dir.join(p));
            }
        }
        Ok(cfg)
    }
}

impl Objective for MultiTask {
    fn check(&self, doc: &Value) -> Result<(), String> {
        self.parse(doc).map(|_| ())
    }

    fn run(&self, doc: &Value, _run_dir: &Path) -> Result<f64, String> {
        use crate::mtl::{config, train, weighting, MtlError};
        let cfg = self.parse(doc)?;
        let e = |e: MtlError| e.to_string();
        let specs = config::task_specs(&cfg).map_err(e)?;
        let (all, _test) = config::load_data(&cfg).map_err(e)?;
        let n_val = (all.n / 10).max(1);
        if all.n <= n_val {
            return Err("too few training examples for a validation split".into());
        }
        let part = |idx: Vec<usize>| {
            let len: usize = all.example_shape.iter().product();
            let mut x = Vec::with_capacity(idx.len() * len);
            for &i in &idx {
                x.extend_from_slice(&all.x[i * len..(i + 1) * len]);
            }
            config::MtlData {
                x,
                n: idx.len(),
                example_shape: all.example_shape.clone(),
                targets: all.targets.iter().map(|t| t.gather(&idx)).collect(),
            }
        };
        let tr = part((0..all.n - n_val).collect());
        let val = part((all.n - n_val..all.n).collect());
        let model = config::build_model(&cfg.model, &tr.example_shape, specs.clone()).map_err(e)?;
        let mut method = weighting::build(&cfg.weighting, specs.len()).map_err(e)?;
        let opts = train::TrainOptions {
            epochs: cfg.train.epochs,
            batch_size: cfg.train.batch_size,
            lr: cfg.train.lr,
            optimizer: cfg.train.optimizer.clone(),
            seed: cfg.seed,
            grad_every: 0,
            eval_every_epoch: false,
            progress: false,
            label: String::new(),
            diverge_loss: cfg.train.diverge_loss,
        };
        let map: Vec<usize> = (0..specs.len()).collect();
        let out =
            train::train(model.as_ref(), method.as_mut(), &tr, &val, &map, &opts).map_err(e)?;
        let score = specs
            .iter()
            .zip(&out.test_metric)
            .map(|(s, &m)| {
                if crate::mtl::model::metric_name(s.kind) == "accuracy" {
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
        let _ = super::space::set_dotted(doc, "seed", Value::Integer(seed as i64));
    }

    fn out_dir_key(&self) -> Option<&str> {
        None
    }
}

/// `metalearn transfer` configs, scored on the mean target validation accuracy over every
/// (strategy, budget, seed) of the config (`target.val_size` must be > 0).
pub struct Transfer {
    /// The base config's path.
    pub origin: PathBuf,
}

impl Transfer {
    fn parse(&self, doc: &Value) -> Result<crate::transfer::TransferConfig, String> {
        let cfg = crate::transfer::TransferConfig::from_toml_str(&text(doc)?, &self.origin)
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
        let r = crate::transfer::run(&cfg, false).map_err(|e| e.to_string())?;
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
        let _ = super::space::set_dotted(
            doc,
            "seeds",
            Value::Array(vec![Value::Integer(seed as i64)]),
        );
    }

    fn out_dir_key(&self) -> Option<&str> {
        Some("out_dir")
    }
}

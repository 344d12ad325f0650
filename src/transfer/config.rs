//! The TOML config of `metalearn transfer --config FILE` (see `configs/transfer/`).
//!
//! ```toml
//! name = "mnist-to-fashion"
//! seeds = [0, 1, 2]                 # target seeds: label subset, head init, shuffling
//! budgets = [10, 100, 1000]         # labelled target examples (class-balanced)
//! strategies = ["scratch", "linear_probe", "finetune", "freeze_then_finetune"]
//! out_dir = "runs/transfer/mnist-to-fashion"
//!
//! [model]
//! arch = "mlp"                      # mlp | conv4
//! hidden = [256, 128]               # mlp: trunk widths (input size is the image's)
//! # filters = 32                    # conv4
//!
//! [source]                          # pretraining; or: checkpoint = "path/pretrained.safetensors"
//! dataset = "mnist"                 # mnist | fashion-mnist | omniglot-background | omniglot-evaluation
//! # classes = [0, 1, 2, 3, 4]       # only these classes (e.g. the base classes)
//! train_limit = 10000
//! epochs = 2
//! batch_size = 64
//! lr = 0.001
//!
//! [target]
//! dataset = "fashion-mnist"
//! test_limit = 2000
//! val_size = 500                    # held-out labelled examples for model selection (search)
//! steps = 300                       # the budget: optimizer steps of every strategy
//! batch_size = 32
//! lr = 0.001
//! freeze_steps = 100                # freeze_then_finetune: steps with the trunk frozen
//! ```

use super::error::{Result, TransferError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The datasets a source or target may name.
pub const DATASETS: &[&str] = &[
    "mnist",
    "fashion-mnist",
    "omniglot-background",
    "omniglot-evaluation",
];

/// How the target model is obtained and trained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// A fresh network trained on the target labels only.
    Scratch,
    /// The pretrained trunk frozen; only a new linear head is trained.
    LinearProbe,
    /// The pretrained trunk and a new head, all trained from the first step.
    Finetune,
    /// The trunk frozen for the first `target.freeze_steps` steps, then everything trained.
    FreezeThenFinetune,
}

impl Strategy {
    /// Every strategy, in report order.
    pub const ALL: [Strategy; 4] = [
        Strategy::Scratch,
        Strategy::LinearProbe,
        Strategy::Finetune,
        Strategy::FreezeThenFinetune,
    ];

    /// The config name.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Scratch => "scratch",
            Strategy::LinearProbe => "linear_probe",
            Strategy::Finetune => "finetune",
            Strategy::FreezeThenFinetune => "freeze_then_finetune",
        }
    }

    /// Whether it starts from the pretrained trunk.
    pub fn pretrained(self) -> bool {
        self != Strategy::Scratch
    }
}

/// A whole transfer experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferConfig {
    /// A name for logs and the default output folder.
    #[serde(default = "default_name")]
    pub name: String,
    /// Target seeds; every (strategy, budget) is run once per seed.
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// Label budgets: labelled target training examples, balanced over the classes.
    pub budgets: Vec<usize>,
    /// The strategies compared (default: all four).
    #[serde(default = "default_strategies")]
    pub strategies: Vec<Strategy>,
    /// Output folder (default `runs/transfer/<name>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_dir: Option<PathBuf>,
    /// The network.
    pub model: ModelSpec,
    /// Pretraining.
    pub source: SourceSpec,
    /// The target task and the budget of every strategy.
    pub target: TargetSpec,
}

fn default_name() -> String {
    "transfer".into()
}
fn default_seeds() -> Vec<u64> {
    vec![0, 1, 2]
}
fn default_strategies() -> Vec<Strategy> {
    Strategy::ALL.to_vec()
}

/// Trunk architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    /// Fully connected layers with ReLU on the flattened image.
    Mlp,
    /// Conv-4 (batch statistics), flattened.
    Conv4,
}

/// `[model]`: a trunk shared by source and target, plus one linear head per task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// `mlp` or `conv4`.
    pub arch: Arch,
    /// MLP trunk widths (`[256, 128]`).
    #[serde(default = "default_hidden")]
    pub hidden: Vec<usize>,
    /// Conv-4 filters per block (32).
    #[serde(default = "default_filters")]
    pub filters: usize,
}

fn default_hidden() -> Vec<usize> {
    vec![256, 128]
}
fn default_filters() -> usize {
    32
}

/// `[source]`: where the trunk comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// The pretraining dataset (one of [`DATASETS`]); exclusive with `checkpoint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// A trunk saved by an earlier run (`<out_dir>/pretrained.safetensors`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<PathBuf>,
    /// Data folder (default `$METALEARN_DATA/<mnist|fashion-mnist|omniglot>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Keep only these classes (e.g. the base classes of a dataset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<usize>>,
    /// Keep only the first N classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_classes: Option<usize>,
    /// Use only the first N training examples (0: all).
    #[serde(default)]
    pub train_limit: usize,
    /// Pretraining epochs (1).
    #[serde(default = "one")]
    pub epochs: usize,
    /// Pretraining batch size (64).
    #[serde(default = "default_source_batch")]
    pub batch_size: usize,
    /// Pretraining Adam learning rate (1e-3).
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Pretraining seed (0).
    #[serde(default)]
    pub seed: u64,
    /// Omniglot: drawings per class held out as the source test set (5).
    #[serde(default = "default_test_per_class")]
    pub test_per_class: usize,
}

/// `[target]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    /// The target dataset (one of [`DATASETS`]).
    pub dataset: String,
    /// Data folder (default `$METALEARN_DATA/<...>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Keep only these classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<usize>>,
    /// Keep only the first N classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_classes: Option<usize>,
    /// Use only the first N test examples (0: all).
    #[serde(default)]
    pub test_limit: usize,
    /// Omniglot: drawings per class held out as the test set (5).
    #[serde(default = "default_test_per_class")]
    pub test_per_class: usize,
    /// Labelled examples held out from the training pool for validation (0: none). Drawn once
    /// with `val_seed`, disjoint from every label budget.
    #[serde(default)]
    pub val_size: usize,
    /// Seed of the validation split (7).
    #[serde(default = "default_val_seed")]
    pub val_seed: u64,
    /// The budget: optimizer steps of every strategy (300).
    #[serde(default = "default_steps")]
    pub steps: usize,
    /// Batch size (32; at most the label budget).
    #[serde(default = "default_target_batch")]
    pub batch_size: usize,
    /// Adam learning rate of every strategy (1e-3).
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// `freeze_then_finetune`: steps with the trunk frozen (default: a quarter of `steps`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freeze_steps: Option<usize>,
}

fn one() -> usize {
    1
}
fn default_source_batch() -> usize {
    64
}
fn default_target_batch() -> usize {
    32
}
fn default_lr() -> f64 {
    1e-3
}
fn default_steps() -> usize {
    300
}
fn default_val_seed() -> u64 {
    7
}
fn default_test_per_class() -> usize {
    5
}

/// Which examples of which dataset: the part common to source and target.
#[derive(Clone, Debug)]
pub struct DataSel {
    /// Dataset name.
    pub dataset: String,
    /// Folder.
    pub path: Option<PathBuf>,
    /// Class list.
    pub classes: Option<Vec<usize>>,
    /// First N classes.
    pub num_classes: Option<usize>,
    /// Train limit.
    pub train_limit: usize,
    /// Test limit.
    pub test_limit: usize,
    /// Omniglot test drawings per class.
    pub test_per_class: usize,
}

impl TransferConfig {
    /// Parses and validates TOML text (`origin` names it in errors; relative data and
    /// checkpoint paths are resolved against its folder when they do not exist as given).
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Self> {
        let mut cfg: TransferConfig = crate::run::config_file::parse_toml(text, origin)?;
        if let Some(dir) = origin.parent() {
            let fix = |p: &mut Option<PathBuf>| {
                if let Some(q) = p {
                    if q.is_relative() && !q.exists() && dir.join(&*q).exists() {
                        *q = dir.join(&*q);
                    }
                }
            };
            fix(&mut cfg.source.path);
            fix(&mut cfg.source.checkpoint);
            fix(&mut cfg.target.path);
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Self> {
        Self::from_toml_str(&crate::run::config_file::read_text(path)?, path)
    }

    /// The output folder.
    pub fn out_dir(&self) -> PathBuf {
        self.out_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("runs/transfer").join(&self.name))
    }

    /// Steps with the trunk frozen for `freeze_then_finetune`.
    pub fn freeze_steps(&self) -> usize {
        self.target.freeze_steps.unwrap_or(self.target.steps / 4)
    }

    /// The source data selection (`None` with a checkpoint).
    pub fn source_sel(&self) -> Option<DataSel> {
        let s = &self.source;
        s.dataset.as_ref().map(|d| DataSel {
            dataset: d.clone(),
            path: s.path.clone(),
            classes: s.classes.clone(),
            num_classes: s.num_classes,
            train_limit: s.train_limit,
            test_limit: 2000,
            test_per_class: s.test_per_class,
        })
    }

    /// The target data selection.
    pub fn target_sel(&self) -> DataSel {
        let t = &self.target;
        DataSel {
            dataset: t.dataset.clone(),
            path: t.path.clone(),
            classes: t.classes.clone(),
            num_classes: t.num_classes,
            train_limit: 0,
            test_limit: t.test_limit,
            test_per_class: t.test_per_class,
        }
    }

    /// Checks every numeric value against its allowed range (one table), naming the key, the
    /// value and the range on error.
    fn validate_ranges(&self) -> Result<()> {
        use crate::run::config_file::{int_in, positive_in, MAX_COUNT, MAX_LR, MAX_STEPS};
        let (s, t) = (&self.source, &self.target);
        let counts: [(&str, usize, usize, usize); 11] = [
            ("source.epochs", s.epochs, 1, MAX_STEPS),
            ("source.batch_size", s.batch_size, 1, MAX_COUNT),
            ("source.train_limit", s.train_limit, 0, MAX_STEPS),
            ("source.test_per_class", s.test_per_class, 0, MAX_COUNT),
            ("target.steps", t.steps, 1, MAX_STEPS),
            ("target.batch_size", t.batch_size, 1, MAX_COUNT),
            ("target.test_limit", t.test_limit, 0, MAX_STEPS),
            ("target.test_per_class", t.test_per_class, 0, MAX_COUNT),
            ("target.val_size", t.val_size, 0, MAX_STEPS),
            ("target.freeze_steps", self.freeze_steps(), 0, MAX_STEPS),
            ("model.filters", self.model.filters, 1, 65_536),
        ];
        for (key, v, min, max) in counts {
            int_in(key, v, min, max)?;
        }
        for (i, &b) in self.budgets.iter().enumerate() {
            int_in(&format!("budgets[{i}]"), b, 1, MAX_STEPS)?;
        }
        for (i, &h) in self.model.hidden.iter().enumerate() {
            int_in(&format!("model.hidden[{i}]"), h, 1, 65_536)?;
        }
        for (key, n) in [
            ("source.num_classes", s.num_classes),
            ("target.num_classes", t.num_classes),
        ] {
            if let Some(n) = n {
                int_in(key, n, 2, MAX_COUNT)?;
            }
        }
        positive_in("source.lr", s.lr, MAX_LR)?;
        positive_in("target.lr", t.lr, MAX_LR)?;
        Ok(())
    }

    /// Checks ranges and consistency (before any data is loaded).
    pub fn validate(&self) -> Result<()> {
        let v = |k: &str, r: &str| TransferError::value(k, r);
        if self.seeds.is_empty() {
            return Err(v("seeds", "is empty: give at least one seed"));
        }
        if self.budgets.is_empty() {
            return Err(v("budgets", "is empty: give at least one label budget"));
        }
        if self.strategies.is_empty() {
            return Err(v("strategies", "is empty"));
        }
        self.validate_source()?;
        self.validate_ranges()?;
        if self.freeze_steps() > self.target.steps {
            return Err(TransferError::value(
                "target.freeze_steps",
                format!(
                    "= {} exceeds `target.steps` = {}",
                    self.freeze_steps(),
                    self.target.steps
                ),
            ));
        }
        match self.model.arch {
            Arch::Mlp if self.model.hidden.is_empty() || self.model.hidden.contains(&0) => {
                return Err(v(
                    "model.hidden",
                    "needs at least one layer, all widths >= 1",
                ))
            }
            Arch::Conv4 if self.model.filters == 0 => {
                return Err(v("model.filters", "must be at least 1"))
            }
            _ => {}
        }
        self.validate_classes()
    }

    /// Checks that the source is a dataset or a checkpoint (one, and one at all when a
    /// strategy starts from the pretrained trunk) and that the datasets are known.
    fn validate_source(&self) -> Result<()> {
        let pretrained = self.strategies.iter().any(|s| s.pretrained());
        match (&self.source.dataset, &self.source.checkpoint) {
            (Some(_), Some(_)) => {
                return Err(TransferError::value(
                    "source",
                    "give either `dataset` (pretrain) or `checkpoint` (a saved trunk), not both",
                ))
            }
            (None, None) if pretrained => {
                return Err(TransferError::value(
                    "source",
                    "needs `dataset` (to pretrain) or `checkpoint` (a saved trunk)",
                ))
            }
            _ => {}
        }
        for (key, d) in [
            ("source.dataset", self.source.dataset.as_deref()),
            ("target.dataset", Some(self.target.dataset.as_str())),
        ] {
            if let Some(d) = d {
                if !DATASETS.contains(&d) {
                    return Err(TransferError::value(
                        key,
                        format!("unknown dataset `{d}` (known: {})", DATASETS.join(", ")),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Checks the class selections: `classes` or `num_classes`, not both, at least 2.
    fn validate_classes(&self) -> Result<()> {
        for (key, c, n) in [
            (
                "source",
                self.source.classes.as_ref(),
                self.source.num_classes,
            ),
            (
                "target",
                self.target.classes.as_ref(),
                self.target.num_classes,
            ),
        ] {
            if c.is_some() && n.is_some() {
                return Err(TransferError::value(
                    key,
                    "give `classes` or `num_classes`, not both",
                ));
            }
            if c.is_some_and(|c| c.len() < 2) || n.is_some_and(|n| n < 2) {
                return Err(TransferError::value(key, "needs at least 2 classes"));
            }
        }
        Ok(())
    }
}

//! The run config of `metalearn train`: one TOML file with the method, the backbone, the data,
//! the training schedule and the evaluation protocol. Every table rejects unknown keys, and
//! an unknown algorithm name lists the known ones.
//!
//! ```toml
//! [algorithm]            # see crate::algorithms::config for each method's keys
//! name = "maml"
//! inner_lr = 0.4
//! inner_steps = 1
//! eval_inner_steps = 3
//!
//! [backbone]
//! name = "conv4"         # or: name = "mlp", sizes = [1, 40, 40]
//! filters = 64
//! image_size = 28
//!
//! [data]
//! dataset = "omniglot"   # omniglot | sinusoid | image_folder | csv
//! # data_dir = "../shared/data/omniglot"   (default: $METALEARN_DATA/omniglot)
//! n_way = 5
//! k_shot = 1
//! q_query = 15
//! # train_n_way = 60     # N and Q of the training episodes (default: n_way, q_query);
//! # train_q_query = 5    # metric methods only (no n_way-output head)
//!
//! [train]
//! iterations = 60000
//! meta_batch = 32
//! meta_lr = 0.001
//! seed = 0
//! val_every = 500
//! val_episodes = 100
//! checkpoint_every = 500
//! diverge_loss = 1e6     # stop when a meta-training loss exceeds it
//! # lr_decay_every = 2000   # meta_lr * lr_decay_factor^floor(i / 2000) (default: constant)
//! # lr_decay_factor = 0.5   # (default 0.5)
//! # early_stop_patience = 10  # stop after 10 validations without improvement (default: never)
//! out_dir = "runs/maml-omniglot-5w1s"
//!
//! [eval]
//! episodes = 600
//! seed = 2024
//! ```
//!
//! An optional `[data.augment]` table augments training images and adds test-time support
//! views ([`super::augment`]).

pub use super::data_options::DataSplit;
use super::error::{Result, TrainError};
use crate::algorithms::{AlgorithmConfig, BackboneConfig};
use crate::run::config_file::{finite_in, int_in, positive_in, MAX_COUNT, MAX_LR, MAX_STEPS};
use crate::run::diverge::DEFAULT_DIVERGE_LOSS;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A whole run: what `metalearn train` reads and what every checkpoint carries in its metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The method and its hyper-parameters.
    pub algorithm: AlgorithmConfig,
    /// The feature extractor.
    pub backbone: BackboneConfig,
    /// The task distribution.
    pub data: DataConfig,
    /// The meta-training schedule.
    #[serde(default)]
    pub train: TrainConfig,
    /// The evaluation protocol.
    #[serde(default)]
    pub eval: EvalConfig,
}

/// Where tasks come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetKind {
    /// Omniglot: `data_dir` holds `images_background.npz`, `images_evaluation.npz` and
    /// `splits/vinyals/`. Classes split by `split`: Vinyals et al.'s rotation classes
    /// (`"vinyals"`, the default) or Lake et al.'s background / evaluation alphabets
    /// (`"lake"`; see [`super::data_options`]).
    Omniglot,
    /// Finn et al.'s sinusoid regression tasks (K = `k_shot` support points).
    Sinusoid,
    /// A folder of PNGs, one subfolder per class (`data_dir`); the classes are split at random
    /// into train / validation / test by `split` and `split_seed`.
    ImageFolder,
    /// A CSV of feature vectors with a label column (`data_dir` is the file); classes split as
    /// for `image_folder`.
    Csv,
}

impl DatasetKind {
    /// The name configs use.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Omniglot => "omniglot",
            DatasetKind::Sinusoid => "sinusoid",
            DatasetKind::ImageFolder => "image_folder",
            DatasetKind::Csv => "csv",
        }
    }
}

/// `[data]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// `omniglot`, `sinusoid`, `image_folder` or `csv`.
    pub dataset: DatasetKind,
    /// The data folder or file (default for Omniglot: `$METALEARN_DATA/omniglot`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// N: classes per task (classification only; default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_way: Option<usize>,
    /// K: support examples per class (sinusoid: support points per task).
    #[serde(default = "default_k_shot")]
    pub k_shot: usize,
    /// Q: query examples per class (sinusoid: query points per task).
    #[serde(default = "default_q_query")]
    pub q_query: usize,
    /// N of the meta-training episodes (default: `n_way`); validation, test and `eval` use
    /// `n_way`. Snell et al. train ProtoNet on 60-way episodes and test 5- and 20-way. Only for
    /// the methods without an `n_way`-output head (see [`RunConfig::has_head`]); at most the
    /// number of training classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_n_way: Option<usize>,
    /// Q of the meta-training episodes (default: `q_query`); validation, test and `eval` use
    /// `q_query`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_q_query: Option<usize>,
    /// Side of the (square) images; must match the image backbone's (Conv-4, ResNet-12)
    /// `image_size`. Default: the backbone's (28 for Omniglot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<usize>,
    /// The class split. `omniglot`: a name, `"vinyals"` (default) or `"lake"`;
    /// `image_folder` and `csv`: `[train, validation]` fractions of the classes (the rest is
    /// test; default `[0.6, 0.2]`). See [`super::data_options`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<DataSplit>,
    /// Seed of that class split (0).
    #[serde(default)]
    pub split_seed: u64,
    /// `csv`: the header name of the label column (default: the last column, no header
    /// needed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_column: Option<String>,
    /// Sinusoid amplitude range (`[0.1, 5.0]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amplitude: Option<(f32, f32)>,
    /// Sinusoid phase range (`[0, pi]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<(f32, f32)>,
    /// Sinusoid input range (`[-5, 5]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x_range: Option<(f32, f32)>,
    /// Adds each training class in three more quarter turns as new classes (`omniglot` with
    /// `split = "lake"`, `image_folder`; default false). Omniglot's Vinyals split always has
    /// rotation classes; validation and test classes are never rotated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_classes: Option<bool>,
    /// Draws all N classes of an episode from one alphabet (`omniglot` only; default false).
    #[serde(default, skip_serializing_if = "is_false")]
    pub within_alphabet: bool,
    /// Whether meta-training episodes too draw their classes from one alphabet (default:
    /// `within_alphabet`). `false` with `within_alphabet = true` trains on episodes mixing
    /// alphabets (e.g. 60-way, more than any alphabet has) and validates and tests within one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_within_alphabet: Option<bool>,
    /// Takes an episode's support from K drawers shared by its classes and its queries from
    /// the other drawers (`omniglot` only; default false).
    #[serde(default, skip_serializing_if = "is_false")]
    pub disjoint_drawers: bool,
    /// `[data.augment]`: random affine augmentation of training images and test-time support
    /// views (`omniglot`, `image_folder`; absent = off). See [`super::augment`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub augment: Option<crate::data::AugmentConfig>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn default_k_shot() -> usize {
    1
}
fn default_q_query() -> usize {
    15
}

impl DataConfig {
    /// Whether the tasks are regression tasks.
    pub fn is_regression(&self) -> bool {
        self.dataset == DatasetKind::Sinusoid
    }

    /// N for classification (default 5); 0 for regression.
    pub fn n_way(&self) -> usize {
        if self.is_regression() {
            0
        } else {
            self.n_way.unwrap_or(5)
        }
    }

    /// Whether meta-training episodes draw their classes from one alphabet:
    /// `train_within_alphabet`, else `within_alphabet`.
    pub fn train_within_alphabet(&self) -> bool {
        self.train_within_alphabet.unwrap_or(self.within_alphabet)
    }

    /// N of the meta-training episodes: `train_n_way`, else [`DataConfig::n_way`].
    pub fn train_n_way(&self) -> usize {
        if self.is_regression() {
            0
        } else {
            self.train_n_way.unwrap_or_else(|| self.n_way())
        }
    }

    /// Q of the meta-training episodes: `train_q_query`, else `q_query`.
    pub fn train_q_query(&self) -> usize {
        self.train_q_query.unwrap_or(self.q_query)
    }

    /// The sinusoid task distribution.
    pub fn sinusoid(&self) -> crate::data::SinusoidConfig {
        let d = crate::data::SinusoidConfig::default();
        crate::data::SinusoidConfig {
            amplitude: self.amplitude.unwrap_or(d.amplitude),
            phase: self.phase.unwrap_or(d.phase),
            x_range: self.x_range.unwrap_or(d.x_range),
            k_support: self.k_shot,
            q_query: self.q_query,
        }
    }

    /// The data folder or file: `data_dir`, or `$METALEARN_DATA/omniglot` for Omniglot.
    pub fn data_path(&self) -> Result<PathBuf> {
        match (&self.data_dir, self.dataset) {
            (Some(p), _) => Ok(p.clone()),
            (None, DatasetKind::Omniglot) => Ok(crate::data::default_data_dir().join("omniglot")),
            (None, DatasetKind::Sinusoid) => Ok(PathBuf::new()),
            (None, k) => Err(TrainError::value(
                "data.data_dir",
                format!("is required for dataset `{}`", k.name()),
            )),
        }
    }
}

/// `[train]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Meta-training iterations (meta-batches) (60000, Finn et al.'s Omniglot count).
    pub iterations: usize,
    /// Tasks per meta-batch (32).
    pub meta_batch: usize,
    /// Adam's meta learning rate (default: the method's, 1e-3; Reptile uses `epsilon`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta_lr: Option<f64>,
    /// The seed of the initialisation and of every training meta-batch (0). Meta-batch `i`
    /// draws from ChaCha8 stream `i + 1` of this seed, so a resumed run sees the same tasks.
    pub seed: u64,
    /// Validate every this many iterations (500; 0 = only at the end).
    pub val_every: usize,
    /// Fixed validation episodes (tasks), drawn once from `val_seed` (100).
    pub val_episodes: usize,
    /// The seed of the validation episodes (7).
    pub val_seed: u64,
    /// Write `last.safetensors` (for `--resume`) every this many iterations (500).
    pub checkpoint_every: usize,
    /// The run folder: `best.safetensors`, `last.safetensors`, `learning_curve.svg`,
    /// `history.json` (`runs/fewshot`).
    pub out_dir: PathBuf,
    /// Divergence threshold (1e6): training stops with an error when a meta-training loss
    /// exceeds it (NaN and infinite losses, gradients and validation metrics always stop it).
    /// Must be a finite number > 0; the checkpoints already written are kept.
    pub diverge_loss: f64,
    /// Step schedule of the meta learning rate: iteration `i` (0-based) uses
    /// `meta_lr * lr_decay_factor^floor(i / lr_decay_every)` (unset: constant `meta_lr`).
    /// At least 1. Not for Reptile, whose outer step is `algorithm.epsilon` with its own
    /// schedule (`algorithm.epsilon_final`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lr_decay_every: Option<usize>,
    /// The factor of that schedule, in (0, 1] (unset: 0.5, halving); needs `lr_decay_every`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lr_decay_factor: Option<f64>,
    /// Early stopping: stop after this many validations in a row without a better validation
    /// metric (accuracy, or MSE for regression) than the best so far (unset: never). At least
    /// 1; needs `val_every` >= 1. The run then keeps `best.safetensors`, writes
    /// `last.safetensors`, and reports the iteration and the reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub early_stop_patience: Option<usize>,
}

/// The factor of the step schedule when `train.lr_decay_factor` is unset (halving).
pub const DEFAULT_LR_DECAY_FACTOR: f64 = 0.5;

impl TrainConfig {
    /// The factor of the step schedule: `lr_decay_factor`, else [`DEFAULT_LR_DECAY_FACTOR`].
    pub fn lr_decay_factor(&self) -> f64 {
        self.lr_decay_factor.unwrap_or(DEFAULT_LR_DECAY_FACTOR)
    }

    /// The scheduled learning rate of iteration `iteration` (0-based) for a base rate `base`:
    /// `base * factor^floor(iteration / lr_decay_every)`, or `None` without a schedule. The
    /// power is taken by repeated squaring (exact for a factor of 0.5, and the same on every
    /// machine), and `base` is returned unchanged before the first decay.
    pub fn scheduled_lr(&self, base: f64, iteration: usize) -> Option<f64> {
        let every = self.lr_decay_every?;
        let k = iteration / every.max(1);
        Some(if k == 0 {
            base
        } else {
            base * pow_by_squaring(self.lr_decay_factor(), k)
        })
    }
}

/// `x^k` by repeated squaring (deterministic: IEEE products only).
fn pow_by_squaring(x: f64, mut k: usize) -> f64 {
    let (mut acc, mut sq) = (1.0, x);
    while k > 0 {
        if k & 1 == 1 {
            acc *= sq;
        }
        sq *= sq;
        k >>= 1;
    }
    acc
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            iterations: 60000,
            meta_batch: 32,
            meta_lr: None,
            seed: 0,
            val_every: 500,
            val_episodes: 100,
            val_seed: 7,
            checkpoint_every: 500,
            out_dir: PathBuf::from("runs/fewshot"),
            diverge_loss: DEFAULT_DIVERGE_LOSS,
            lr_decay_every: None,
            lr_decay_factor: None,
            early_stop_patience: None,
        }
    }
}

/// `[eval]`: the test protocol.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalConfig {
    /// Test episodes (600, the usual minimum).
    pub episodes: usize,
    /// The seed the episodes are drawn from, once (2024): every method with the same data,
    /// N, K and Q is scored on the same episodes.
    pub seed: u64,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            episodes: 600,
            seed: 2024,
        }
    }
}

/// The methods whose learner has a linear classifier head of `n_way` outputs (so a
/// checkpoint can classify at most that many classes).
pub use crate::algorithms::HEAD_ALGORITHMS;

impl RunConfig {
    /// Parses TOML text (`origin` names it in errors) and validates it.
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Self> {
        let mut cfg: RunConfig = crate::run::config_file::parse_toml(text, origin)?;
        cfg.validate()?;
        cfg.data.normalize();
        Ok(cfg)
    }

    /// Reads and validates a TOML file.
    pub fn load(path: &Path) -> Result<Self> {
        Self::from_toml_str(&crate::run::config_file::read_text(path)?, path)
    }

    /// The config as JSON (what checkpoints store).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a run config serialises")
    }

    /// The config as TOML (for `history.json` readers and humans).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|_| self.to_json())
    }

    /// The meta learning rate: `train.meta_lr` or the method's default.
    pub fn meta_lr(&self) -> f64 {
        self.train
            .meta_lr
            .unwrap_or_else(|| self.algorithm.default_meta_lr())
    }

    /// The meta learning rate of iteration `iteration` (0-based) under `train.lr_decay_every`:
    /// `meta_lr * lr_decay_factor^floor(iteration / lr_decay_every)`; `None` without a
    /// schedule (the learner keeps the rate it was built with).
    pub fn scheduled_meta_lr(&self, iteration: usize) -> Option<f64> {
        self.train.scheduled_lr(self.meta_lr(), iteration)
    }

    /// Whether the learner has an `n_way`-output head.
    pub fn has_head(&self) -> bool {
        self.algorithm.has_head()
    }

    /// A one-line description: `maml on omniglot 5-way 1-shot (conv4)`, with the
    /// non-default episode options: `protonet on omniglot (lake split, within-alphabet)
    /// 20-way 1-shot (conv4)`.
    pub fn describe(&self) -> String {
        if self.data.is_regression() {
            format!(
                "{} on sinusoid K={} ({})",
                self.algorithm.name(),
                self.data.k_shot,
                self.backbone.name()
            )
        } else {
            let options = self.data.episode_options_words();
            format!(
                "{} on {}{} {}-way {}-shot ({})",
                self.algorithm.name(),
                self.data.dataset.name(),
                options.map(|o| format!(" ({o})")).unwrap_or_default(),
                self.data.n_way(),
                self.data.k_shot,
                self.backbone.name()
            )
        }
    }

    /// The image side the backbone expects (`None` for an MLP).
    pub fn image_size(&self) -> Option<usize> {
        match self.backbone.image_input() {
            Some((_, size)) => Some(size),
            None => self.data.image_size,
        }
    }

    /// Checks every numeric value against its allowed range (one table), naming the key, the
    /// value and the range on error.
    fn validate_ranges(&self) -> Result<()> {
        let (d, t) = (&self.data, &self.train);
        let counts: [(&str, usize, usize, usize); 9] = [
            ("data.k_shot", d.k_shot, 1, MAX_COUNT),
            ("data.q_query", d.q_query, 1, MAX_COUNT),
            ("train.iterations", t.iterations, 1, MAX_STEPS),
            ("train.meta_batch", t.meta_batch, 1, MAX_COUNT),
            ("train.val_every", t.val_every, 0, MAX_STEPS),
            ("train.val_episodes", t.val_episodes, 1, MAX_COUNT),
            ("train.checkpoint_every", t.checkpoint_every, 1, MAX_STEPS),
            ("eval.episodes", self.eval.episodes, 1, MAX_COUNT),
            (
                "data.image_size",
                d.image_size.unwrap_or(1),
                1,
                MAX_IMAGE_SIZE,
            ),
        ];
        for (key, v, min, max) in counts {
            int_in(key, v, min, max)?;
        }
        if let Some(n) = d.n_way {
            int_in("data.n_way", n, 2, MAX_COUNT)?;
        }
        if let Some(lr) = t.meta_lr {
            positive_in("train.meta_lr", lr, MAX_LR)?;
        }
        self.validate_schedule_ranges()?;
        positive_in("train.diverge_loss", t.diverge_loss, f64::MAX)?;
        let (tr, va) = d.split_fractions();
        finite_in("data.split[0] (train fraction)", tr, 0.0, 1.0)?;
        finite_in("data.split[1] (validation fraction)", va, 0.0, 1.0)?;
        if tr + va > 1.0 {
            return Err(TrainError::value(
                "data.split",
                format!("= [{tr}, {va}]: the train and validation fractions add up to more than 1"),
            ));
        }
        Ok(())
    }

    /// Checks the ranges of the training-shape and schedule keys (`data.train_n_way`,
    /// `data.train_q_query`, `train.lr_decay_every`, `train.lr_decay_factor`,
    /// `train.early_stop_patience`), naming the key, the value and the range on error.
    fn validate_schedule_ranges(&self) -> Result<()> {
        let (d, t) = (&self.data, &self.train);
        let counts = [
            ("data.train_n_way", d.train_n_way, 2, MAX_COUNT),
            ("data.train_q_query", d.train_q_query, 1, MAX_COUNT),
            ("train.lr_decay_every", t.lr_decay_every, 1, MAX_STEPS),
            (
                "train.early_stop_patience",
                t.early_stop_patience,
                1,
                MAX_STEPS,
            ),
        ];
        for (key, v, min, max) in counts {
            if let Some(v) = v {
                int_in(key, v, min, max)?;
            }
        }
        if let Some(f) = t.lr_decay_factor {
            if !(f.is_finite() && f > 0.0 && f <= 1.0) {
                return Err(TrainError::value(
                    "train.lr_decay_factor",
                    format!("= {f} is out of range: expected a finite number in (0, 1]"),
                ));
            }
        }
        Ok(())
    }

    /// Checks that the training-shape and schedule keys fit the rest of the config: a
    /// training N different from `n_way` only for methods without an `n_way`-output head,
    /// neither training key for regression, no `lr_decay_every` for Reptile, no
    /// `lr_decay_factor` without `lr_decay_every`, and no `early_stop_patience` without
    /// periodic validation.
    fn validate_schedule(&self) -> Result<()> {
        let (d, t, name) = (&self.data, &self.train, self.algorithm.name());
        if d.is_regression() {
            for (key, set) in [
                ("data.train_n_way", d.train_n_way.is_some()),
                ("data.train_q_query", d.train_q_query.is_some()),
            ] {
                if set {
                    return Err(TrainError::value(
                        key,
                        "does not apply to `sinusoid` (regression): its training and test tasks \
                         both have `k_shot` support and `q_query` query points; remove it",
                    ));
                }
            }
        } else if d.train_n_way() != d.n_way() && self.has_head() {
            let headless: Vec<&str> = crate::algorithms::ALGORITHM_NAMES
                .iter()
                .filter(|m| !HEAD_ALGORITHMS.contains(m))
                .copied()
                .collect();
            return Err(TrainError::value(
                "data.train_n_way",
                format!(
                    "= {} differs from `data.n_way` = {}, but `{name}` has a classifier head of \
                     `n_way` outputs (its parameters depend on N), so it cannot train on {}-way \
                     episodes and be tested on {}-way ones; remove `train_n_way` (or set it to \
                     {}), or use a method without a head ({})",
                    d.train_n_way(),
                    d.n_way(),
                    d.train_n_way(),
                    d.n_way(),
                    d.n_way(),
                    headless.join(", ")
                ),
            ));
        }
        if let (Some(k), "reptile") = (t.lr_decay_every, name) {
            return Err(TrainError::value(
                "train.lr_decay_every",
                format!(
                    "= {k} does not apply to `reptile`: its outer step is `algorithm.epsilon` \
                     (`train.meta_lr` is not used), with its own schedule (linear annealing to \
                     `algorithm.epsilon_final`); remove it and set `epsilon_final` instead"
                ),
            ));
        }
        if let (None, Some(f)) = (t.lr_decay_every, t.lr_decay_factor) {
            return Err(TrainError::value(
                "train.lr_decay_factor",
                format!(
                    "= {f} has no effect without `train.lr_decay_every` (the iterations between \
                     two decays); set it, or remove `lr_decay_factor`"
                ),
            ));
        }
        if let (Some(p), 0) = (t.early_stop_patience, t.val_every) {
            return Err(TrainError::value(
                "train.early_stop_patience",
                format!(
                    "= {p} needs periodic validation, but `train.val_every` = 0 (validation only \
                     at the end); set `val_every` >= 1"
                ),
            ));
        }
        Ok(())
    }

    /// Checks ranges and the consistency of the sections.
    pub fn validate(&self) -> Result<()> {
        self.algorithm.validate()?;
        self.backbone.validate()?;
        let body = crate::nn::Body::from_config(&self.backbone)?;
        self.algorithm.check_backbone(&body)?;
        self.validate_ranges()?;
        self.validate_schedule()?;
        super::data_options::validate_episode_options(&self.data)?;
        super::augment::validate(self)?;
        let d = &self.data;
        if d.is_regression() {
            if d.n_way.is_some() {
                return Err(TrainError::value(
                    "data.n_way",
                    "does not apply to `sinusoid` (regression); remove it",
                ));
            }
            self.algorithm.check_regression()?;
            match &self.backbone {
                BackboneConfig::Mlp(m) if m.sizes.first() == Some(&1) => {}
                _ => {
                    return Err(TrainError::value(
                        "backbone",
                        "sinusoid inputs are scalars: use name = \"mlp\" with sizes starting at 1, e.g. [1, 40, 40]",
                    ))
                }
            }
            d.sinusoid().validate()?;
        } else {
            int_in("data.n_way", d.n_way(), 2, MAX_COUNT)?;
            if d.amplitude.is_some() || d.phase.is_some() || d.x_range.is_some() {
                return Err(TrainError::value(
                    "data.amplitude/phase/x_range",
                    format!("only apply to `sinusoid`, not `{}`", d.dataset.name()),
                ));
            }
            if let (Some((_, size)), Some(s)) = (self.backbone.image_input(), d.image_size) {
                if size != s {
                    return Err(TrainError::value(
                        "data.image_size",
                        format!("= {s} differs from `backbone.image_size` = {size}"),
                    ));
                }
            }
            if d.dataset == DatasetKind::Csv && self.backbone.image_input().is_some() {
                return Err(TrainError::value(
                    "backbone",
                    "CSV feature vectors need name = \"mlp\" with sizes starting at the number of features",
                ));
            }
            if d.dataset != DatasetKind::Csv
                && matches!(self.backbone, BackboneConfig::Mlp(_))
                && d.image_size.is_none()
            {
                return Err(TrainError::value(
                    "data.image_size",
                    "is required with an MLP backbone on images (images are resized to it and flattened)",
                ));
            }
        }
        Ok(())
    }
}

/// The largest image side a config may ask for (images are resized to it).
pub const MAX_IMAGE_SIZE: usize = 4096;

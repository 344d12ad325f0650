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
//! out_dir = "runs/maml-omniglot-5w1s"
//!
//! [eval]
//! episodes = 600
//! seed = 2024
//! ```

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
    /// Side of the (square) images; must match the Conv-4 backbone's `image_size`. Default:
    /// the backbone's (28 for Omniglot).
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
    /// Takes an episode's support from K drawers shared by its classes and its queries from
    /// the other drawers (`omniglot` only; default false).
    #[serde(default, skip_serializing_if = "is_false")]
    pub disjoint_drawers: bool,
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
        match &self.backbone {
            BackboneConfig::Conv4(c) => Some(c.image_size),
            BackboneConfig::Mlp(_) => self.data.image_size,
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

    /// Checks ranges and the consistency of the sections.
    pub fn validate(&self) -> Result<()> {
        self.algorithm.validate()?;
        self.backbone.validate()?;
        self.validate_ranges()?;
        super::data_options::validate_episode_options(&self.data)?;
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
            if let (BackboneConfig::Conv4(c), Some(s)) = (&self.backbone, d.image_size) {
                if c.image_size != s {
                    return Err(TrainError::value(
                        "data.image_size",
                        format!(
                            "= {s} differs from `backbone.image_size` = {}",
                            c.image_size
                        ),
                    ));
                }
            }
            if d.dataset == DatasetKind::Csv && matches!(self.backbone, BackboneConfig::Conv4(_)) {
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

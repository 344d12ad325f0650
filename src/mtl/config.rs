//! The TOML config of a multi-task run (`metalearn mtl --config FILE`), and turning it into a
//! model and data. See `configs/mnist-multitask.toml` for an annotated example.

use super::architectures::{CrossStitch, Mmoe, ARCHITECTURES};
use super::error::{MtlError, Result};
use super::experts::{DSelectK, Mtan, Ple};
use super::model::{HardSharing, LayerSpec, MultiTaskModel, OutputKind, TaskSpec, TaskTargets};
use super::weighting::WeightingConfig;
use crate::data::ImageDataset;
use std::path::{Path, PathBuf};

/// A whole run.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MtlConfig {
    /// A name for logs and the output folder.
    #[serde(default = "default_name")]
    pub name: String,
    /// Seed of initialisation and shuffling.
    #[serde(default)]
    pub seed: u64,
    /// The dataset.
    pub data: DataConfig,
    /// The network.
    pub model: ModelConfig,
    /// The tasks, one head each.
    pub tasks: Vec<TaskConfig>,
    /// Optimisation.
    #[serde(default)]
    pub train: TrainConfig,
    /// Loss weighting / gradient aggregation.
    #[serde(default)]
    pub weighting: WeightingConfig,
    /// Single-task baselines.
    #[serde(default)]
    pub baselines: BaselineConfig,
    /// Gradient diagnostics and plots.
    #[serde(default)]
    pub diagnostics: DiagnosticsConfig,
    /// Seeds and methods of a benchmark (`metalearn mtl` then trains every method over every
    /// seed; see [`super::benchmark`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub benchmark: Option<super::benchmark::BenchmarkConfig>,
}

fn default_name() -> String {
    "mtl".into()
}

/// `[data]`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// `mnist`, `fashion-mnist`, or one of the two-item composites [`MULTI_DATASETS`]
    /// (`multi-mnist`, `multi-fashion`, `multi-fashion-mnist`, see [`super::multi_data`]).
    pub dataset: String,
    /// The folder holding the IDX files (relative paths: to the working directory, else to the
    /// config file's folder). Default: `$METALEARN_DATA/<dataset>` or `../shared/data/<dataset>`;
    /// for the composites, the folder holding `mnist/` and `fashion-mnist/` (default
    /// `$METALEARN_DATA`).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Use only the first `train_limit` training examples (0: all). For the composites: the
    /// number of training composites built (0: 120,000, as Lin et al.).
    #[serde(default)]
    pub train_limit: usize,
    /// Use only the first `test_limit` test examples (0: all). For the composites: the number
    /// of test composites built (0: 20,000, as Lin et al.).
    #[serde(default)]
    pub test_limit: usize,
    /// Seed of the composites' construction (item choice and shifts); other datasets ignore it.
    #[serde(default)]
    pub seed: u64,
}

/// The two-item composite datasets (see [`super::multi_data`]).
pub const MULTI_DATASETS: [&str; 3] = ["multi-mnist", "multi-fashion", "multi-fashion-mnist"];

/// Every dataset `data.dataset` may name.
pub const DATASETS: [&str; 5] = [
    "mnist",
    "fashion-mnist",
    "multi-mnist",
    "multi-fashion",
    "multi-fashion-mnist",
];

/// `[model]`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// One of [`ARCHITECTURES`]: `hard` (shared trunk + heads), `mmoe`, `cross_stitch`,
    /// `mtan`, `cgc`, `ple` or `dselect_k`.
    #[serde(default = "default_arch")]
    pub architecture: String,
    /// The trunk (hard sharing, MTAN), each expert (MMoE, CGC, DSelect-k), each column
    /// (cross-stitch); PLE cuts it into one level per stage.
    pub trunk: Vec<LayerSpec>,
    /// Experts: MMoE's and DSelect-k's, the shared experts of CGC / PLE (per level).
    #[serde(default = "default_experts")]
    pub experts: usize,
    /// CGC / PLE: each task's own experts (per level).
    #[serde(default = "one_usize")]
    pub task_experts: usize,
    /// DSelect-k: the number of selectors `k` (experts each task mixes at most).
    #[serde(default = "default_top_k")]
    pub top_k: usize,
    /// DSelect-k: the width `gamma` of the smooth-step function.
    #[serde(default = "one_f64")]
    pub gamma: f64,
    /// Run conv + ReLU + max-pool as one fused op.
    #[serde(default = "yes")]
    pub fuse: bool,
}

fn default_arch() -> String {
    "hard".into()
}
fn default_experts() -> usize {
    4
}
fn one_usize() -> usize {
    1
}
fn default_top_k() -> usize {
    2
}
fn one_f64() -> f64 {
    1.0
}
fn yes() -> bool {
    true
}

/// `[[tasks]]`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskConfig {
    /// The task's name.
    pub name: String,
    /// `multiclass`, `binary` or `regression`.
    pub kind: OutputKind,
    /// Where the targets come from (see [`LABEL_SOURCES`]).
    pub label: String,
    /// The number of classes the head predicts (checked against the labels).
    #[serde(default)]
    pub classes: Option<usize>,
    /// Hidden widths of the head.
    #[serde(default)]
    pub hidden: Vec<usize>,
}

/// `[train]`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// Learning rate.
    pub lr: f64,
    /// `adam` or `sgd`.
    pub optimizer: String,
    /// Evaluate on the test set after every epoch (metric curves); otherwise only at the end.
    pub eval_every_epoch: bool,
    /// Divergence threshold (1e6): training stops with an error when a task's training loss
    /// exceeds it (NaN and infinite losses and test metrics always stop it). Must be a finite
    /// number > 0.
    pub diverge_loss: f64,
    /// Where the gradient-based methods take the per-task gradients: `parameters` (exact,
    /// default) or `representation` (the shared trunk's output, hard sharing only; see
    /// [`super::train::GramianOn`]).
    pub gramian: super::train::GramianOn,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: 64,
            lr: 1e-3,
            optimizer: "adam".into(),
            eval_every_epoch: true,
            diverge_loss: crate::run::diverge::DEFAULT_DIVERGE_LOSS,
            gramian: super::train::GramianOn::Parameters,
        }
    }
}

/// `[baselines]`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BaselineConfig {
    /// Also train one single-task model per task (same trunk, head and budget).
    pub single_task: bool,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        BaselineConfig { single_task: true }
    }
}

/// `[diagnostics]`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiagnosticsConfig {
    /// Measure per-task gradients on the shared parameters (their pairwise cosines) every this
    /// many steps (0: never; methods that need them measure every step anyway).
    pub grad_every: usize,
    /// Folder for `history.json` and the SVG plots (empty: write nothing).
    pub out_dir: String,
}

impl Default for DiagnosticsConfig {
    fn default() -> Self {
        DiagnosticsConfig {
            grad_every: 50,
            out_dir: String::new(),
        }
    }
}

/// Target sources a task's `label` may name.
pub const LABEL_SOURCES: [&str; 9] = [
    "top_left",
    "bottom_right",
    "class",
    "class_mod3",
    "class_parity",
    "class_value",
    "coarse",
    "footwear",
    "ink",
];

/// Changes to a config from the command line.
#[derive(Clone, Debug, Default)]
pub struct MtlOverrides {
    /// Replaces `weighting.method` (the options of another method than the config's take
    /// their defaults).
    pub method: Option<String>,
    /// Replaces `model.architecture`.
    pub architecture: Option<String>,
    /// Replaces `train.epochs`.
    pub epochs: Option<usize>,
    /// Replaces `data.train_limit`.
    pub train_limit: Option<usize>,
    /// Skip the single-task baselines.
    pub no_baselines: bool,
    /// Replaces `diagnostics.out_dir`.
    pub out_dir: Option<String>,
}

impl MtlConfig {
    /// Reads and validates a config file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = crate::run::config_file::read_text(path)?;
        let mut cfg = Self::parse(&text, path)?;
        cfg.resolve_data_path(path);
        Ok(cfg)
    }

    /// Resolves a relative `data.path` that does not exist as given against the folder of
    /// `origin` (the config file), when it exists there.
    pub fn resolve_data_path(&mut self, origin: &Path) {
        if let (Some(p), Some(dir)) = (&self.data.path, origin.parent()) {
            if p.is_relative() && !p.exists() && dir.join(p).exists() {
                self.data.path = Some(dir.join(p));
            }
        }
    }

    /// Parses and validates TOML text.
    pub fn from_toml(text: &str) -> Result<Self> {
        Self::parse(text, Path::new("<text>"))
    }

    /// Parses and validates TOML text that came from `origin`.
    fn parse(text: &str, origin: &Path) -> Result<Self> {
        let cfg: MtlConfig = crate::run::config_file::parse_toml(text, origin)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Applies command-line overrides (and re-validates).
    pub fn apply(&mut self, o: &MtlOverrides) -> Result<()> {
        if let Some(m) = &o.method {
            self.weighting = self.weighting.with_method(m)?;
        }
        if let Some(a) = &o.architecture {
            self.model.architecture = a.clone();
        }
        if let Some(e) = o.epochs {
            self.train.epochs = e;
        }
        if let Some(l) = o.train_limit {
            self.data.train_limit = l;
        }
        if o.no_baselines {
            self.baselines.single_task = false;
        }
        if let Some(d) = &o.out_dir {
            self.diagnostics.out_dir = d.clone();
        }
        self.validate()
    }

    /// Checks every numeric value against its allowed range (one table), naming the key, the
    /// value and the range on error.
    fn validate_ranges(&self) -> Result<()> {
        use crate::run::config_file::{int_in, positive_in, MAX_COUNT, MAX_LR, MAX_STEPS};
        let (t, m) = (&self.train, &self.model);
        let counts: [(&str, usize, usize, usize); 8] = [
            ("train.epochs", t.epochs, 1, MAX_STEPS),
            ("train.batch_size", t.batch_size, 1, MAX_COUNT),
            ("model.experts", m.experts, 1, 1024),
            ("model.task_experts", m.task_experts, 1, 1024),
            ("model.top_k", m.top_k, 1, 1024),
            ("data.train_limit", self.data.train_limit, 0, MAX_STEPS),
            ("data.test_limit", self.data.test_limit, 0, MAX_STEPS),
            (
                "diagnostics.grad_every",
                self.diagnostics.grad_every,
                0,
                MAX_STEPS,
            ),
        ];
        for (key, v, min, max) in counts {
            int_in(key, v, min, max)?;
        }
        positive_in("train.lr", t.lr, MAX_LR)?;
        positive_in("model.gamma", m.gamma, 1e6)?;
        positive_in("train.diverge_loss", t.diverge_loss, f64::MAX)?;
        self.weighting.check_ranges()?;
        for (i, task) in self.tasks.iter().enumerate() {
            for (j, &h) in task.hidden.iter().enumerate() {
                int_in(&format!("tasks[{i}].hidden[{j}]"), h, 1, 65_536)?;
            }
            if let Some(c) = task.classes {
                int_in(&format!("tasks[{i}].classes"), c, 1, MAX_COUNT)?;
            }
        }
        for (i, layer) in m.trunk.iter().enumerate() {
            let key = |k: &str| format!("model.trunk[{i}].{k}");
            match *layer {
                LayerSpec::Conv {
                    out,
                    kernel,
                    padding,
                    stride,
                } => {
                    int_in(&key("out"), out, 1, 65_536)?;
                    int_in(&key("kernel"), kernel, 1, 64)?;
                    int_in(&key("padding"), padding, 0, 64)?;
                    int_in(&key("stride"), stride, 1, 64)?;
                }
                LayerSpec::MaxPool { kernel } => int_in(&key("kernel"), kernel, 1, 64)?,
                LayerSpec::Linear { out, .. } => int_in(&key("out"), out, 1, 65_536)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// Checks the values that do not need the data.
    pub fn validate(&self) -> Result<()> {
        let invalid = |key: &str, message: String| MtlError::value(key, message);
        if !DATASETS.contains(&self.data.dataset.as_str()) {
            return Err(invalid(
                "data.dataset",
                format!(
                    "unknown dataset {:?} (known: {})",
                    self.data.dataset,
                    DATASETS.join(", ")
                ),
            ));
        }
        if !ARCHITECTURES.contains(&self.model.architecture.as_str()) {
            return Err(invalid(
                "model.architecture",
                format!(
                    "unknown architecture {:?} (known: {})",
                    self.model.architecture,
                    ARCHITECTURES.join(", ")
                ),
            ));
        }
        if self.model.architecture == "dselect_k" && !self.model.experts.is_power_of_two() {
            return Err(invalid(
                "model.experts",
                format!(
                    "DSelect-k needs a power of two of experts, got {}",
                    self.model.experts
                ),
            ));
        }
        if self.model.trunk.is_empty() {
            return Err(invalid("model.trunk", "the trunk has no layers".into()));
        }
        if self.tasks.is_empty() {
            return Err(invalid("tasks", "no task given".into()));
        }
        for (i, t) in self.tasks.iter().enumerate() {
            if self.tasks[..i].iter().any(|u| u.name == t.name) {
                return Err(invalid(
                    &format!("tasks[{i}].name"),
                    format!("task name {:?} used twice", t.name),
                ));
            }
            if !LABEL_SOURCES.contains(&t.label.as_str()) {
                return Err(invalid(
                    &format!("tasks[{i}].label"),
                    format!(
                        "unknown label source {:?} (known: {})",
                        t.label,
                        LABEL_SOURCES.join(", ")
                    ),
                ));
            }
        }
        self.validate_ranges()?;
        if !["adam", "sgd"].contains(&self.train.optimizer.as_str()) {
            return Err(invalid(
                "train.optimizer",
                format!(
                    "unknown optimizer {:?} (known: adam, sgd)",
                    self.train.optimizer
                ),
            ));
        }
        // The method's own checks (an unknown method or option fails parsing, naming the key).
        super::weighting::build(&self.weighting, self.tasks.len())?;
        if let Some(b) = &self.benchmark {
            b.validate()?;
        }
        Ok(())
    }

    /// The data folder this config names (not checked for existence).
    pub fn data_path(&self) -> PathBuf {
        self.data.path.clone().unwrap_or_else(|| {
            let root = crate::data::default_data_dir();
            if MULTI_DATASETS.contains(&self.data.dataset.as_str()) {
                root
            } else {
                root.join(&self.data.dataset)
            }
        })
    }
}

/// A multi-task dataset in memory: inputs and one target set per task.
#[derive(Clone, Debug)]
pub struct MtlData {
    /// Inputs, example after example.
    pub x: Vec<f32>,
    /// The number of examples.
    pub n: usize,
    /// The shape of one example.
    pub example_shape: Vec<usize>,
    /// One target set per task.
    pub targets: Vec<TaskTargets>,
}

impl MtlData {
    /// The inputs of the examples `idx`, example after example.
    pub fn rows(&self, idx: &[usize]) -> Vec<f32> {
        let len: usize = self.example_shape.iter().product();
        let mut x = Vec::with_capacity(idx.len() * len);
        for &i in idx {
            x.extend_from_slice(&self.x[i * len..(i + 1) * len]);
        }
        x
    }

    /// The examples `idx` (inputs and every task's targets), in that order.
    pub fn subset(&self, idx: &[usize]) -> MtlData {
        MtlData {
            x: self.rows(idx),
            n: idx.len(),
            example_shape: self.example_shape.clone(),
            targets: self.targets.iter().map(|t| t.gather(idx)).collect(),
        }
    }

    /// The first `limit` examples (all if 0 or more than there are).
    pub fn truncate(mut self, limit: usize) -> Self {
        if limit > 0 && limit < self.n {
            let len: usize = self.example_shape.iter().product();
            self.x.truncate(limit * len);
            self.n = limit;
            let idx: Vec<usize> = (0..limit).collect();
            self.targets = self.targets.iter().map(|t| t.gather(&idx)).collect();
        }
        self
    }
}

fn coarse_fashion(c: usize) -> usize {
    match c {
        1 => 1,         // trouser: bottoms
        5 | 7 | 9 => 2, // sandal, sneaker, ankle boot: footwear
        8 => 3,         // bag
        _ => 0,         // t-shirt, pullover, dress, coat, shirt: tops
    }
}

/// The number of classes of a label source on a dataset (`None` for regression sources).
pub fn source_classes(dataset: &str, label: &str) -> Option<usize> {
    match label {
        "class" | "top_left" | "bottom_right" => Some(10),
        "class_mod3" => Some(3),
        "class_parity" | "footwear" => Some(2),
        "coarse" if dataset == "fashion-mnist" => Some(4),
        _ => None,
    }
}

/// Checks the tasks against the dataset's label sources and returns the model's task specs.
pub fn task_specs(cfg: &MtlConfig) -> Result<Vec<TaskSpec>> {
    let ds = cfg.data.dataset.as_str();
    cfg.tasks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let key = |k: &str| format!("tasks[{i}].{k}");
            if t.label == "coarse" && ds != "fashion-mnist" {
                return Err(MtlError::HeadMismatch {
                    key: key("label"),
                    message: format!(
                        "label source \"coarse\" exists only for fashion-mnist, not {ds}"
                    ),
                });
            }
            super::multi_data::check_label(ds, &t.label).map_err(|message| {
                MtlError::HeadMismatch {
                    key: key("label"),
                    message,
                }
            })?;
            let classes = source_classes(ds, &t.label);
            let outputs = match (t.kind, classes) {
                (OutputKind::Multiclass, Some(c)) => c,
                (OutputKind::Binary, Some(2)) => 1,
                (OutputKind::Binary, Some(c)) => {
                    return Err(MtlError::HeadMismatch {
                        key: key("kind"),
                        message: format!(
                            "binary task on label {:?}, which has {c} classes (binary needs 2)",
                            t.label
                        ),
                    })
                }
                (OutputKind::Regression, None) => 1,
                (OutputKind::Regression, Some(_)) => {
                    return Err(MtlError::HeadMismatch {
                        key: key("kind"),
                        message: format!(
                            "regression task on the class label {:?} (use class_value or ink)",
                            t.label
                        ),
                    })
                }
                (_, None) => {
                    return Err(MtlError::HeadMismatch {
                        key: key("kind"),
                        message: format!(
                            "{:?} task on the real-valued label {:?}",
                            t.kind, t.label
                        ),
                    })
                }
            };
            if let Some(c) = t.classes {
                let want = classes.unwrap_or(0);
                if c != want {
                    return Err(MtlError::HeadMismatch {
                        key: key("classes"),
                        message: format!(
                            "the head has {c} classes but label {:?} of {ds} has {want}",
                            t.label
                        ),
                    });
                }
            }
            Ok(TaskSpec {
                name: t.name.clone(),
                kind: t.kind,
                outputs,
                hidden: t.hidden.clone(),
            })
        })
        .collect()
}

/// Loads the train and test sets and derives every task's targets. Regression targets are
/// standardised with the training set's mean and standard deviation.
pub fn load_data(cfg: &MtlConfig) -> Result<(MtlData, MtlData)> {
    let path = cfg.data_path();
    if !path.exists() {
        return Err(MtlError::MissingData {
            key: "data.path".into(),
            path,
        });
    }
    if MULTI_DATASETS.contains(&cfg.data.dataset.as_str()) {
        return super::multi_data::load(cfg, &path);
    }
    let tt = match cfg.data.dataset.as_str() {
        "fashion-mnist" => crate::data::load_fashion_mnist(&path),
        _ => crate::data::load_mnist(&path),
    }
    .map_err(|source| MtlError::Data {
        path: path.clone(),
        source,
    })?;
    let train_limit = cfg.data.train_limit;
    let mut train = derive(cfg, tt.train).truncate(train_limit);
    let stats = regression_stats(&train);
    let mut test = derive(cfg, tt.test).truncate(cfg.data.test_limit);
    for d in [&mut train, &mut test] {
        for ((t, task), (m, s)) in d.targets.iter_mut().zip(&cfg.tasks).zip(&stats) {
            if let (TaskTargets::Values { values, .. }, OutputKind::Regression) = (t, task.kind) {
                for v in values.iter_mut() {
                    *v = ((*v as f64 - m) / s) as f32;
                }
            }
        }
    }
    Ok((train, test))
}

fn raw_target(label: &str, ds: &ImageDataset, i: usize) -> f64 {
    let c = ds.labels[i];
    match label {
        "class_value" => c as f64,
        "ink" => ds.image(i).iter().map(|&p| p as f64).sum::<f64>() / ds.image_len() as f64,
        _ => unreachable!(),
    }
}

fn regression_stats(d: &MtlData) -> Vec<(f64, f64)> {
    d.targets
        .iter()
        .map(|t| match t {
            TaskTargets::Values { values, .. } if !values.is_empty() => {
                let n = values.len() as f64;
                let m = values.iter().map(|&v| v as f64).sum::<f64>() / n;
                let v = values.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / n;
                (m, v.sqrt().max(1e-12))
            }
            _ => (0.0, 1.0),
        })
        .collect()
}

fn derive(cfg: &MtlConfig, owned: ImageDataset) -> MtlData {
    let ds = &owned;
    let targets = cfg
        .tasks
        .iter()
        .map(|t| {
            let map =
                |f: fn(usize) -> usize| -> Vec<usize> { ds.labels.iter().map(|&c| f(c)).collect() };
            let classes = match t.label.as_str() {
                "class" => Some(map(|c| c)),
                "class_mod3" => Some(map(|c| c % 3)),
                "class_parity" => Some(map(|c| c % 2)),
                "coarse" => Some(map(coarse_fashion)),
                "footwear" => Some(map(|c| usize::from(matches!(c, 5 | 7 | 9)))),
                _ => None,
            };
            match (t.kind, classes) {
                (OutputKind::Multiclass, Some(c)) => TaskTargets::Classes(c),
                (_, Some(c)) => TaskTargets::Values {
                    values: c.iter().map(|&v| v as f32).collect(),
                    dim: 1,
                },
                (_, None) => TaskTargets::Values {
                    values: (0..ds.n)
                        .map(|i| raw_target(&t.label, ds, i) as f32)
                        .collect(),
                    dim: 1,
                },
            }
        })
        .collect();
    let (n, example_shape) = (ds.n, vec![ds.channels, ds.height, ds.width]);
    MtlData {
        x: owned.images,
        n,
        example_shape,
        targets,
    }
}

/// Builds the configured architecture for `tasks` on inputs of shape `in_shape`.
pub fn build_model(
    cfg: &ModelConfig,
    in_shape: &[usize],
    tasks: Vec<TaskSpec>,
) -> Result<Box<dyn MultiTaskModel<f32>>> {
    let err = |e: super::model::ShapeError| MtlError::value("model.trunk", e.0);
    Ok(match cfg.architecture.as_str() {
        "mmoe" => {
            Box::new(Mmoe::new(&cfg.trunk, in_shape, cfg.experts, tasks, cfg.fuse).map_err(err)?)
        }
        "cross_stitch" => {
            Box::new(CrossStitch::new(&cfg.trunk, in_shape, tasks, cfg.fuse).map_err(err)?)
        }
        "mtan" => Box::new(Mtan::new(&cfg.trunk, in_shape, tasks, cfg.fuse).map_err(err)?),
        "cgc" | "ple" => {
            let experts = (cfg.experts, cfg.task_experts);
            let split = cfg.architecture == "ple";
            Box::new(Ple::new(&cfg.trunk, in_shape, experts, tasks, split, cfg.fuse).map_err(err)?)
        }
        "dselect_k" => {
            let options = (cfg.experts, cfg.top_k, cfg.gamma);
            Box::new(DSelectK::new(&cfg.trunk, in_shape, options, tasks, cfg.fuse).map_err(err)?)
        }
        _ => Box::new(HardSharing::new(&cfg.trunk, in_shape, tasks, cfg.fuse).map_err(err)?),
    })
}

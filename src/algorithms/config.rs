//! Algorithm and backbone configuration (TOML / JSON via serde).
//!
//! An [`AlgorithmConfig`] is tagged by `name` and holds that method's hyper-parameters; every
//! field has a default (documented with its source) so `name = "maml"` alone is a valid config.
//! Unknown names and unknown fields are rejected; serde's message lists the known names.
//!
//! ```toml
//! [algorithm]
//! name = "maml"            # maml | fomaml | reptile | meta_sgd | anil | protonet |
//! inner_lr = 0.4           # matching | relation | baseline | baseline_pp | r2d2
//! inner_steps = 1
//! eval_inner_steps = 3
//!
//! [backbone]
//! name = "conv4"           # or: name = "mlp", sizes = [1, 40, 40]
//! filters = 64
//! ```
//!
//! The backbone is a feature extractor. Methods that need a classifier or regressor (the
//! MAML family, Baseline) append a linear head with `n_way` (or, for regression, the number of
//! targets) outputs; metric methods compare the features themselves. The meta learning rate is
//! not part of the algorithm config: it is an argument of
//! [`crate::algorithms::registry::build_learner`] (the papers use Adam with 1e-3 throughout,
//! see [`AlgorithmConfig::default_meta_lr`]).

use crate::nn::DownsampleKind;
use serde::{Deserialize, Serialize};

/// The largest scale, ridge penalty and similar multiplier a config may give.
pub const MAX_SCALE: f64 = 1e6;
/// The largest learning rate or step size (inner, outer, fine-tuning) a config may give.
pub const MAX_STEP_SIZE: f64 = 100.0;
/// The most inner (or evaluation) steps a config may give.
pub const MAX_INNER_STEPS: usize = 10_000;
/// The most fine-tuning steps (Baseline) a config may give.
pub const MAX_FINETUNE_STEPS: usize = 100_000;
/// The widest layer (hidden widths, MLP sizes, filters) a config may give.
pub const MAX_WIDTH: usize = 65_536;
/// The most classes (Baseline's `base_classes`) a config may give.
pub const MAX_CLASSES: usize = 1_000_000;

/// Every algorithm name a config may use.
pub const ALGORITHM_NAMES: &[&str] = &[
    "maml",
    "fomaml",
    "reptile",
    "meta_sgd",
    "anil",
    "protonet",
    "matching",
    "relation",
    "baseline",
    "baseline_pp",
    "r2d2",
];

/// The algorithms that can fit real-valued targets (sinusoid regression).
pub const REGRESSION_ALGORITHMS: &[&str] = &["maml", "fomaml", "reptile", "meta_sgd", "anil"];

/// Why a learner could not be configured or built.
#[derive(Debug, thiserror::Error)]
pub enum AlgorithmError {
    /// The method only classifies.
    #[error(
        "algorithm `{name}` cannot do regression (sinusoid): {why}; the methods that can are {}",
        REGRESSION_ALGORITHMS.join(", ")
    )]
    NoRegression {
        /// The method.
        name: &'static str,
        /// Why not.
        why: &'static str,
    },
    /// A name that is not a known algorithm.
    #[error("unknown algorithm `{name}`; known algorithms: {}", ALGORITHM_NAMES.join(", "))]
    UnknownAlgorithm {
        /// The name given.
        name: String,
    },
    /// A hyper-parameter is out of range.
    #[error("algorithm `{algorithm}`: `{field}` = {value} is invalid: {reason}")]
    InvalidParameter {
        /// The method.
        algorithm: &'static str,
        /// The field.
        field: &'static str,
        /// Its value, printed.
        value: String,
        /// What is allowed.
        reason: &'static str,
    },
    /// The backbone cannot be built.
    #[error("backbone {backbone}: {reason}")]
    InvalidBackbone {
        /// The backbone kind.
        backbone: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The task's output size is unusable.
    #[error("algorithm `{algorithm}`: {what} must be at least {min}, got {got}")]
    InvalidOutputs {
        /// The method.
        algorithm: &'static str,
        /// `n_way` or `outputs`.
        what: &'static str,
        /// The least allowed.
        min: usize,
        /// The value given.
        got: usize,
    },
    /// The config text does not parse (unknown name or field, wrong type...).
    #[error("invalid algorithm config: {0}")]
    Parse(String),
}

/// A method and its hyper-parameters. TOML: a table with `name = "<method>"` and the fields of
/// that method's config struct.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum AlgorithmConfig {
    /// MAML (Finn et al. 2017), second order unless `first_order = true`.
    Maml(MamlConfig),
    /// First-order MAML: MAML's fields; always first order (`first_order` is ignored).
    Fomaml(MamlConfig),
    /// Reptile (Nichol et al. 2018).
    Reptile(ReptileConfig),
    /// Meta-SGD (Li et al. 2017): learned per-parameter step sizes.
    MetaSgd(MetaSgdConfig),
    /// ANIL (Raghu et al. 2020): only the head adapts.
    Anil(AnilConfig),
    /// Prototypical Networks (Snell et al. 2017).
    Protonet(ProtoNetConfig),
    /// Matching Networks (Vinyals et al. 2016), without full context embeddings.
    Matching(MatchingConfig),
    /// Relation Networks (Sung et al. 2018).
    Relation(RelationConfig),
    /// Baseline (Chen et al. 2019): linear classifier fine-tuned on the support set.
    Baseline(BaselineConfig),
    /// Baseline++ (Chen et al. 2019): cosine classifier fine-tuned on the support set.
    #[serde(rename = "baseline_pp", alias = "baseline++")]
    BaselinePp(BaselineConfig),
    /// R2D2 (Bertinetto et al. 2019): closed-form ridge-regression head.
    R2d2(R2d2Config),
}

/// MAML / first-order MAML. Defaults: Finn et al.'s Omniglot 5-way setting
/// (`inner_lr` 0.4, 1 step in meta-training, 3 at test time). For the sinusoid benchmark
/// they use `inner_lr` 0.01, 1 step (10 at test time).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MamlConfig {
    /// Inner-loop SGD step size alpha (0.4).
    pub inner_lr: f64,
    /// Inner steps during meta-training (1).
    pub inner_steps: usize,
    /// Inner steps when adapting for prediction (3).
    pub eval_inner_steps: usize,
    /// Treat inner gradients as constants (false; `fomaml` forces true).
    pub first_order: bool,
}

impl Default for MamlConfig {
    fn default() -> Self {
        MamlConfig {
            inner_lr: 0.4,
            inner_steps: 1,
            eval_inner_steps: 3,
            first_order: false,
        }
    }
}

/// Reptile. The outer update is `theta += epsilon_t * mean_t (phi_t - theta)` (plain SGD on
/// `theta - phi`, not Adam), with `epsilon_t` annealed linearly from `epsilon` to
/// `epsilon_final` over the run's iterations when `epsilon_final` is set (Nichol et al. anneal
/// 1.0 -> 0 on Omniglot). The inner loop is SGD, as in their sinusoid experiment and
/// learn2learn's example (their Omniglot code uses Adam with moments carried across tasks).
/// Defaults: `inner_lr` 0.1, 5 inner steps (10 at test time), `epsilon` 1.0, no annealing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReptileConfig {
    /// Inner SGD step size (0.1).
    pub inner_lr: f64,
    /// Inner steps in meta-training (5).
    pub inner_steps: usize,
    /// Inner steps when adapting for prediction (10).
    pub eval_inner_steps: usize,
    /// Outer step size epsilon (1.0); the `meta_lr` given to the builder is not used.
    pub epsilon: f64,
    /// The outer step size at the last iteration, reached linearly from `epsilon` (unset: no
    /// annealing).
    pub epsilon_final: Option<f64>,
    /// Meta-training adapts on support and query together (true; Nichol et al. train with
    /// more shots than they test with).
    pub train_on_query: bool,
}

impl Default for ReptileConfig {
    fn default() -> Self {
        ReptileConfig {
            inner_lr: 0.1,
            inner_steps: 5,
            eval_inner_steps: 10,
            epsilon: 1.0,
            epsilon_final: None,
            train_on_query: true,
        }
    }
}

/// Meta-SGD. Li et al. draw the initial step sizes from U[0.005, 0.1] and take one inner step;
/// here every step size starts at `init_lr` (0.1, the top of their range; learn2learn's
/// choice of a constant start).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetaSgdConfig {
    /// Initial per-parameter step size (0.1).
    pub init_lr: f64,
    /// Inner steps in meta-training (1).
    pub inner_steps: usize,
    /// Inner steps when adapting for prediction (1).
    pub eval_inner_steps: usize,
    /// Treat inner gradients as constants (false).
    pub first_order: bool,
}

impl Default for MetaSgdConfig {
    fn default() -> Self {
        MetaSgdConfig {
            init_lr: 0.1,
            inner_steps: 1,
            eval_inner_steps: 1,
            first_order: false,
        }
    }
}

/// ANIL: MAML where only the linear head adapts. Raghu et al. reuse MAML's Omniglot
/// hyper-parameters (0.4, 1 step; 3 at test time).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnilConfig {
    /// Inner-loop step size (0.4).
    pub inner_lr: f64,
    /// Inner steps during meta-training (1).
    pub inner_steps: usize,
    /// Inner steps for prediction (3).
    pub eval_inner_steps: usize,
    /// Treat inner gradients as constants (false).
    pub first_order: bool,
}

impl Default for AnilConfig {
    fn default() -> Self {
        AnilConfig {
            inner_lr: 0.4,
            inner_steps: 1,
            eval_inner_steps: 3,
            first_order: false,
        }
    }
}

/// Prototypical Networks: logits are minus squared Euclidean distances to class means.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProtoNetConfig {}

/// Matching Networks: softmax attention over cosine similarities to the support examples,
/// `p(y | x) = sum_i softmax_i(scale * cos(f(x), g(x_i))) y_i`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MatchingConfig {
    /// Multiplier of the cosines before the softmax (1.0, as in Vinyals et al.; larger values
    /// sharpen the attention and speed up training).
    pub scale: f64,
}

impl Default for MatchingConfig {
    fn default() -> Self {
        MatchingConfig { scale: 1.0 }
    }
}

/// Relation Networks: a learned relation module scores the concatenation of a query
/// embedding and a class embedding (the sum of its support embeddings) in (0, 1), trained with
/// mean squared error against the one-hot labels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelationConfig {
    /// Hidden widths of the relation module, each linear -> batch norm -> ReLU (`[64, 8]`:
    /// Sung et al.'s 64-filter relation block, as a fully connected layer on flattened
    /// features, then their 8-unit layer).
    pub hidden: Vec<usize>,
}

impl Default for RelationConfig {
    fn default() -> Self {
        RelationConfig {
            hidden: vec![64, 8],
        }
    }
}

/// Baseline / Baseline++: a new head (linear, or cosine for Baseline++) trained on the support
/// features of a frozen backbone. Defaults from Chen et al.'s code: SGD, lr 0.01, momentum 0.9,
/// dampening 0.9, weight decay 1e-3, 100 iterations; cosine scale 2 for up to 200 classes and 10
/// beyond (when `scale` is unset).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BaselineConfig {
    /// Fine-tuning iterations on the support set (100).
    pub finetune_steps: usize,
    /// Fine-tuning learning rate (0.01).
    pub finetune_lr: f64,
    /// Cosine scale of Baseline++ (unset: 2 up to 200 classes, else 10). Ignored by Baseline.
    pub scale: Option<f64>,
    /// Size of the global classifier used by `pretrain_step` (the number of base classes);
    /// unset: no pre-training head.
    pub base_classes: Option<usize>,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        BaselineConfig {
            finetune_steps: 100,
            finetune_lr: 0.01,
            scale: None,
            base_classes: None,
        }
    }
}

/// R2D2: ridge regression from support features to one-hot labels, in closed form through the
/// Woodbury identity `W = Z^T (Z Z^T + lambda I)^{-1} Y`, logits `scale * Z_q W`. Bertinetto et
/// al. meta-learn lambda and the output scale; defaults: lambda 1.0, scale 1.0, both learned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct R2d2Config {
    /// Initial ridge penalty (1.0), learned as `log lambda` when `learn_lambda`.
    pub lambda: f64,
    /// Meta-learn lambda (true).
    pub learn_lambda: bool,
    /// Initial logit scale (1.0).
    pub scale: f64,
    /// Meta-learn the scale (true).
    pub learn_scale: bool,
}

impl Default for R2d2Config {
    fn default() -> Self {
        R2d2Config {
            lambda: 1.0,
            learn_lambda: true,
            scale: 1.0,
            learn_scale: true,
        }
    }
}

impl AlgorithmConfig {
    /// The name configs use.
    pub fn name(&self) -> &'static str {
        match self {
            AlgorithmConfig::Maml(_) => "maml",
            AlgorithmConfig::Fomaml(_) => "fomaml",
            AlgorithmConfig::Reptile(_) => "reptile",
            AlgorithmConfig::MetaSgd(_) => "meta_sgd",
            AlgorithmConfig::Anil(_) => "anil",
            AlgorithmConfig::Protonet(_) => "protonet",
            AlgorithmConfig::Matching(_) => "matching",
            AlgorithmConfig::Relation(_) => "relation",
            AlgorithmConfig::Baseline(_) => "baseline",
            AlgorithmConfig::BaselinePp(_) => "baseline_pp",
            AlgorithmConfig::R2d2(_) => "r2d2",
        }
    }

    /// The method with all defaults, by name; errors listing the known names.
    pub fn default_for(name: &str) -> Result<Self, AlgorithmError> {
        Ok(match name {
            "maml" => AlgorithmConfig::Maml(MamlConfig::default()),
            "fomaml" => AlgorithmConfig::Fomaml(MamlConfig {
                first_order: true,
                ..MamlConfig::default()
            }),
            "reptile" => AlgorithmConfig::Reptile(ReptileConfig::default()),
            "meta_sgd" => AlgorithmConfig::MetaSgd(MetaSgdConfig::default()),
            "anil" => AlgorithmConfig::Anil(AnilConfig::default()),
            "protonet" => AlgorithmConfig::Protonet(ProtoNetConfig::default()),
            "matching" => AlgorithmConfig::Matching(MatchingConfig::default()),
            "relation" => AlgorithmConfig::Relation(RelationConfig::default()),
            "baseline" => AlgorithmConfig::Baseline(BaselineConfig::default()),
            "baseline_pp" | "baseline++" => AlgorithmConfig::BaselinePp(BaselineConfig::default()),
            "r2d2" => AlgorithmConfig::R2d2(R2d2Config::default()),
            other => {
                return Err(AlgorithmError::UnknownAlgorithm {
                    name: other.to_string(),
                })
            }
        })
    }

    /// Parses a TOML table (`name = "..."` plus fields).
    pub fn from_toml(text: &str) -> Result<Self, AlgorithmError> {
        let cfg: AlgorithmConfig =
            toml::from_str(text).map_err(|e| AlgorithmError::Parse(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The meta learning rate the papers use with Adam (1e-3 for every method here; Reptile
    /// uses its own `epsilon` instead).
    pub fn default_meta_lr(&self) -> f64 {
        1e-3
    }

    /// Whether the method can fit real-valued targets.
    pub fn supports_regression(&self) -> bool {
        REGRESSION_ALGORITHMS.contains(&self.name())
    }

    /// Checks that the method can do regression, with the reason when it cannot.
    pub fn check_regression(&self) -> Result<(), AlgorithmError> {
        let why = match self {
            AlgorithmConfig::Protonet(_)
            | AlgorithmConfig::Matching(_)
            | AlgorithmConfig::Relation(_) => {
                "it classifies by comparing query embeddings with class embeddings"
            }
            AlgorithmConfig::Baseline(_) | AlgorithmConfig::BaselinePp(_) => {
                "its heads are classifiers pre-trained on base classes"
            }
            AlgorithmConfig::R2d2(_) => "its closed-form head regresses one-hot class labels",
            _ => return Ok(()),
        };
        Err(AlgorithmError::NoRegression {
            name: self.name(),
            why,
        })
    }

    /// Checks every hyper-parameter's range.
    pub fn validate(&self) -> Result<(), AlgorithmError> {
        let name = self.name();
        let bad = |field: &'static str, value: String, reason: &'static str| {
            Err(AlgorithmError::InvalidParameter {
                algorithm: name,
                field,
                value,
                reason,
            })
        };
        let pos = |field: &'static str, v: f64| {
            if v.is_finite() && v > 0.0 && v <= MAX_SCALE {
                Ok(())
            } else {
                bad(field, v.to_string(), "must be a finite number in (0, 1e6]")
            }
        };
        // Learning rates and step sizes.
        let lr = |field: &'static str, v: f64| {
            if v.is_finite() && v > 0.0 && v <= MAX_STEP_SIZE {
                Ok(())
            } else {
                bad(field, v.to_string(), "must be a finite number in (0, 100]")
            }
        };
        let steps = |field: &'static str, v: usize| {
            if (1..=MAX_INNER_STEPS).contains(&v) {
                Ok(())
            } else {
                bad(field, v.to_string(), "must be at least 1 and at most 10000")
            }
        };
        match self {
            AlgorithmConfig::Maml(c) | AlgorithmConfig::Fomaml(c) => {
                lr("inner_lr", c.inner_lr)?;
                steps("inner_steps", c.inner_steps)?;
                steps("eval_inner_steps", c.eval_inner_steps)?;
            }
            AlgorithmConfig::Reptile(c) => {
                lr("inner_lr", c.inner_lr)?;
                lr("epsilon", c.epsilon)?;
                if let Some(f) = c.epsilon_final {
                    if !(f.is_finite() && (0.0..=MAX_STEP_SIZE).contains(&f)) {
                        return bad(
                            "epsilon_final",
                            f.to_string(),
                            "must be a finite number in [0, 100]",
                        );
                    }
                }
                steps("inner_steps", c.inner_steps)?;
                steps("eval_inner_steps", c.eval_inner_steps)?;
            }
            AlgorithmConfig::MetaSgd(c) => {
                lr("init_lr", c.init_lr)?;
                steps("inner_steps", c.inner_steps)?;
                steps("eval_inner_steps", c.eval_inner_steps)?;
            }
            AlgorithmConfig::Anil(c) => {
                lr("inner_lr", c.inner_lr)?;
                steps("inner_steps", c.inner_steps)?;
                steps("eval_inner_steps", c.eval_inner_steps)?;
            }
            AlgorithmConfig::Protonet(_) => {}
            AlgorithmConfig::Matching(c) => pos("scale", c.scale)?,
            AlgorithmConfig::Relation(c) => {
                if c.hidden.iter().any(|&w| !(1..=MAX_WIDTH).contains(&w)) {
                    return bad(
                        "hidden",
                        format!("{:?}", c.hidden),
                        "widths must be integers in [1, 65536]",
                    );
                }
            }
            AlgorithmConfig::Baseline(c) | AlgorithmConfig::BaselinePp(c) => {
                lr("finetune_lr", c.finetune_lr)?;
                if !(1..=MAX_FINETUNE_STEPS).contains(&c.finetune_steps) {
                    return bad(
                        "finetune_steps",
                        c.finetune_steps.to_string(),
                        "must be at least 1 and at most 100000",
                    );
                }
                if let Some(s) = c.scale {
                    pos("scale", s)?;
                }
                if let Some(b) = c.base_classes {
                    if !(1..=MAX_CLASSES).contains(&b) {
                        return bad(
                            "base_classes",
                            b.to_string(),
                            "must be an integer in [1, 1000000] when set",
                        );
                    }
                }
            }
            AlgorithmConfig::R2d2(c) => {
                pos("lambda", c.lambda)?;
                pos("scale", c.scale)?;
            }
        }
        Ok(())
    }
}

/// The feature extractor. TOML: `name = "conv4"` (fields of [`Conv4Backbone`]) or
/// `name = "mlp"` with `sizes`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum BackboneConfig {
    /// Conv-4 without its head.
    Conv4(Conv4Backbone),
    /// A ReLU MLP.
    Mlp(MlpBackbone),
}

/// Conv-4 blocks (conv 3x3 -> batch norm with batch statistics -> ReLU -> downsample 2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Conv4Backbone {
    /// Input channels (1).
    pub in_channels: usize,
    /// Filters per block (64).
    pub filters: usize,
    /// Input side (28).
    pub image_size: usize,
    /// `max_pool` (default) or `strided`.
    pub downsample: DownsampleKind,
    /// Number of blocks (4).
    pub blocks: usize,
}

impl Default for Conv4Backbone {
    fn default() -> Self {
        Conv4Backbone {
            in_channels: 1,
            filters: 64,
            image_size: 28,
            downsample: DownsampleKind::MaxPool,
            blocks: 4,
        }
    }
}

/// A ReLU MLP feature extractor: `sizes[0]` inputs, then one ReLU layer per further width
/// (e.g. `[1, 40, 40]` for the sinusoid; the head with the outputs is added by the method).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpBackbone {
    /// Input width, then hidden widths.
    pub sizes: Vec<usize>,
}

impl BackboneConfig {
    /// `conv4` or `mlp`.
    pub fn name(&self) -> &'static str {
        match self {
            BackboneConfig::Conv4(_) => "conv4",
            BackboneConfig::Mlp(_) => "mlp",
        }
    }

    /// Parses a TOML table.
    pub fn from_toml(text: &str) -> Result<Self, AlgorithmError> {
        toml::from_str(text).map_err(|e| AlgorithmError::Parse(e.to_string()))
    }

    /// Checks every size against its range: Conv-4 `in_channels` in [1, 64], `filters` in
    /// [1, 65536], `blocks` in [1, 8] and `image_size` in [2^blocks, 4096] (each block halves
    /// the side); MLP `sizes` non-empty, at most 64 layers, each width in [1, 65536].
    pub fn validate(&self) -> Result<(), AlgorithmError> {
        let (backbone, reason) = match self {
            BackboneConfig::Conv4(c) => {
                let min_side = 1usize << c.blocks.min(12);
                let reason = if !(1..=64).contains(&c.in_channels) {
                    format!("`backbone.in_channels` = {} is out of range: expected an integer in [1, 64]", c.in_channels)
                } else if !(1..=MAX_WIDTH).contains(&c.filters) {
                    format!("`backbone.filters` = {} is out of range: expected an integer in [1, {MAX_WIDTH}]", c.filters)
                } else if !(1..=8).contains(&c.blocks) {
                    format!(
                        "`backbone.blocks` = {} is out of range: expected an integer in [1, 8]",
                        c.blocks
                    )
                } else if !(min_side..=4096).contains(&c.image_size) {
                    format!(
                        "`backbone.image_size` = {} is out of range: expected an integer in [{min_side}, 4096] ({} blocks halve the side {} times)",
                        c.image_size, c.blocks, c.blocks
                    )
                } else {
                    return Ok(());
                };
                ("conv4", reason)
            }
            BackboneConfig::Mlp(m) => {
                let reason = if m.sizes.is_empty() || m.sizes.len() > 64 {
                    format!("`backbone.sizes` has {} entries: expected 1 to 64 (the input width, then hidden widths)", m.sizes.len())
                } else if let Some(w) = m.sizes.iter().find(|&&w| !(1..=MAX_WIDTH).contains(&w)) {
                    format!("`backbone.sizes` holds {w}: every width must be an integer in [1, {MAX_WIDTH}]")
                } else {
                    return Ok(());
                };
                ("mlp", reason)
            }
        };
        Err(AlgorithmError::InvalidBackbone { backbone, reason })
    }
}

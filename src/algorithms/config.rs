//! Algorithm and backbone configuration (TOML / JSON via serde), under one path.
//!
//! An [`AlgorithmConfig`] is tagged by `name` and holds that method's hyper-parameters (its
//! config struct lives beside the method, e.g. [`MamlConfig`] in [`super::maml`]); every field
//! has a default (documented with its source) so `name = "maml"` alone is a valid config.
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
//! not part of the algorithm config: it is an argument of [`super::build_learner`] (the papers
//! use Adam with 1e-3 throughout, see [`AlgorithmConfig::default_meta_lr`]).

pub use super::anil::AnilConfig;
pub use super::backbone_config::{BackboneConfig, Conv4Backbone, MlpBackbone};
pub use super::baseline::BaselineConfig;
pub use super::checks::{
    MAX_CLASSES, MAX_FINETUNE_STEPS, MAX_INNER_STEPS, MAX_SCALE, MAX_STEP_SIZE, MAX_WIDTH,
};
pub use super::error::AlgorithmError;
pub use super::maml::MamlConfig;
pub use super::matching::MatchingConfig;
pub use super::meta_sgd::MetaSgdConfig;
pub use super::protonet::ProtoNetConfig;
pub use super::r2d2::R2d2Config;
pub use super::relation::RelationConfig;
pub use super::reptile::ReptileConfig;
pub use super::table::{AlgorithmConfig, ALGORITHM_NAMES, HEAD_ALGORITHMS, REGRESSION_ALGORITHMS};

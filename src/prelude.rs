//! What a user of the library needs, in one import: `use metalearn::prelude::*;`.
//!
//! Tensors and gradients ([`Tensor`], [`grad`], [`no_grad`]); networks ([`Backbone`],
//! [`Network`], [`Model`], [`Params`], Conv-4 and MLP, optimizers); tasks ([`TaskData`],
//! [`Target`], [`TaskKind`]); the inner loop ([`Adapter`]); the learners ([`FewShotLearner`],
//! every method's learner and config, [`AlgorithmConfig`] and the builders); and what adding a
//! method takes ([`Method`], [`MetaLearner`], [`Metric`], [`metric_learner`], [`Algorithm`],
//! [`build_with`], [`mean_over_tasks`], [`TaskResult`]).

pub use crate::algorithms::anil::{Anil, AnilAlgorithm, AnilConfig};
pub use crate::algorithms::baseline::{
    Baseline, BaselineAlgorithm, BaselineConfig, BaselinePpAlgorithm,
};
pub use crate::algorithms::checks::ParamCheck;
pub use crate::algorithms::classes::{accuracy, class_means, num_classes, one_hot};
pub use crate::algorithms::maml::{
    meta_gradient, FomamlAlgorithm, Maml, MamlAlgorithm, MamlConfig,
};
pub use crate::algorithms::matching::{MatchingAlgorithm, MatchingConfig, MatchingNet};
pub use crate::algorithms::meta_sgd::{MetaSgd, MetaSgdAlgorithm, MetaSgdConfig};
pub use crate::algorithms::metric::{cosine_similarities, embed_both};
pub use crate::algorithms::protonet::{ProtoNet, ProtoNetAlgorithm, ProtoNetConfig};
pub use crate::algorithms::r2d2::{R2d2, R2d2Algorithm, R2d2Config};
pub use crate::algorithms::relation::{RelationAlgorithm, RelationConfig, RelationNet};
pub use crate::algorithms::reptile::{Reptile, ReptileAlgorithm, ReptileConfig};
pub use crate::algorithms::{
    build_learner, build_learner_generic, build_regression_learner, build_with, mean_over_tasks,
    metric_learner, Adapted, Adapter, Algorithm, AlgorithmConfig, AlgorithmError, BackboneConfig,
    Conv4Backbone, FewShotLearner, Learner, LearnerParts, MetaGradient, MetaLearner, Method,
    Metric, MetricLearner, MlpBackbone, Order, ResNet12Backbone, StepSize, StepStats, Target,
    TaskData, TaskKind, TaskResult,
};
pub use crate::autodiff::{grad, no_grad};
pub use crate::data::seeded_rng;
pub use crate::nn::optim::{Adam, Optimizer, Sgd};
pub use crate::nn::{
    Backbone, Body, Conv4, Conv4Config, DownsampleKind, DropBlockConfig, FeaturePooling, Mlp,
    Model, Network, Params, ResNet12, ResNet12Config,
};
pub use crate::tensor::{Float, Tensor};

//! Learning algorithms: the few-shot methods behind one trait, [`FewShotLearner`].
//!
//! Every method implements [`Method`] and is wrapped with its meta-parameters and optimizer by
//! [`MetaLearner`], the one [`FewShotLearner`] implementation; each also implements
//! [`Algorithm`] (its name, config struct, range checks and builder) and takes one line of the
//! algorithm table (`table.rs`), from which [`AlgorithmConfig`] is generated.
//!
//! Files, shared first (a shared file never uses a method's file):
//! - [`task`] (targets, task kinds, [`TaskData`]), [`classes`] (label arithmetic),
//!   [`meta_batch`] (per-task results reduced over a meta-batch), [`meta_state`]
//!   (meta-parameters and optimizer), [`adapt`] (the differentiable inner loop, [`Adapter`]),
//!   [`learner`] ([`FewShotLearner`], [`Method`], [`MetaLearner`]), [`metric`] (the shape of
//!   the metric-based methods), [`algorithm`] ([`Algorithm`], [`build_with`]), [`checks`]
//!   (hyper-parameter ranges), [`error`], [`backbone_config`];
//! - one file per method, with its config: [`maml`] (MAML, first-order MAML), [`reptile`],
//!   [`meta_sgd`], [`anil`], [`protonet`], [`matching`], [`relation`], [`baseline`]
//!   (Baseline, Baseline++), [`r2d2`];
//! - the table ([`AlgorithmConfig`], the name lists, the builders) and [`config`] (the config
//!   types under one path).

pub mod adapt;
pub mod algorithm;
pub mod anil;
pub mod backbone_config;
pub mod baseline;
pub mod checks;
pub mod classes;
pub mod config;
pub mod error;
pub mod learner;
pub mod maml;
pub mod matching;
pub mod meta_batch;
pub mod meta_sgd;
pub mod meta_state;
pub mod metric;
pub mod protonet;
pub mod r2d2;
pub mod relation;
pub mod reptile;
mod table;
pub mod task;

pub use adapt::{Adapted, Adapter, Order, StepSize};
pub use algorithm::{build_with, Algorithm, Learner, LearnerParts};
pub use backbone_config::{BackboneConfig, Conv4Backbone, MlpBackbone, ResNet12Backbone};
pub use error::AlgorithmError;
pub use learner::{FewShotLearner, MetaLearner, Method};
pub use meta_batch::{mean_over_tasks, MetaGradient, StepStats, TaskResult};
pub use meta_state::MetaState;
pub use metric::{metric_learner, Metric, MetricLearner, MetricNet};
pub use table::{
    build_learner, build_learner_generic, build_regression_learner, AlgorithmConfig,
    ALGORITHM_NAMES, HEAD_ALGORITHMS, REGRESSION_ALGORITHMS,
};
pub use task::{Target, TaskData, TaskKind};

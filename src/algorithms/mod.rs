//! Learning algorithms. Every method implements [`learner::Method`] and is wrapped with its
//! meta-parameters and optimizer by [`learner::MetaLearner`], the one [`FewShotLearner`]
//! implementation. `maml` holds the differentiable inner loop that every gradient-based
//! meta-learner (MAML, first-order MAML, Meta-SGD, ANIL, Reptile) is built from; `metric` the
//! shared shape of the metric-based ones (ProtoNet, Matching, Relation, R2D2).

pub mod anil;
pub mod baseline;
pub mod config;
pub mod learner;
pub mod maml;
pub mod matching;
pub mod meta_sgd;
pub mod metric;
pub mod protonet;
pub mod r2d2;
pub mod registry;
pub mod relation;
pub mod reptile;

pub use config::{AlgorithmConfig, AlgorithmError, BackboneConfig};
pub use learner::{FewShotLearner, StepStats};
pub use registry::{build_learner, build_learner_generic, build_regression_learner, TaskKind};

use crate::tensor::{Float, Tensor};

/// What a task's labels are, and so which loss scores a prediction.
#[derive(Clone, Debug)]
pub enum Target<T: Float> {
    /// Class indices for cross-entropy on logits `[N, C]`.
    Classes(Vec<usize>),
    /// Real targets for mean squared error, same shape as the prediction.
    Values(Tensor<T>),
}

impl<T: Float> Target<T> {
    /// The loss of `prediction`: mean cross-entropy or mean squared error.
    pub fn loss(&self, prediction: &Tensor<T>) -> Tensor<T> {
        match self {
            Target::Classes(labels) => prediction.cross_entropy(labels),
            Target::Values(y) => prediction.mse_loss(y),
        }
    }

    /// The number of examples.
    pub fn len(&self) -> usize {
        match self {
            Target::Classes(l) => l.len(),
            Target::Values(y) => y.shape().first().copied().unwrap_or(0),
        }
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

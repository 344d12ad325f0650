//! The one trait every few-shot method implements (easyfsl's shape: process the support set,
//! then predict the query set), with meta-training on top.

use super::maml::TaskData;
use super::Target;
use crate::nn::Params;
use crate::tensor::{Float, Tensor};

/// What one meta-training step reports.
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct StepStats {
    /// Mean query loss over the meta-batch (before the update).
    pub loss: f64,
    /// Mean query accuracy over the meta-batch (classification), or `NaN` for regression.
    pub accuracy: f64,
}

/// A few-shot learner: meta-trains on batches of tasks; given a labelled support set, predicts
/// the query set.
pub trait FewShotLearner<T: Float>: Send + Sync {
    /// The method's name, as configs spell it (`maml`, `protonet`, ...).
    fn name(&self) -> &'static str;

    /// One meta-training step on a meta-batch of tasks (updates the meta-parameters).
    fn meta_train_step(&mut self, tasks: &[TaskData<T>], rng: &mut dyn rand::RngCore) -> StepStats;

    /// Adapts to (or embeds) the support set and returns the query predictions:
    /// logits `[Nq, N]` for classification, values `[Nq, 1]` for regression.
    fn predict(
        &self,
        support_x: &Tensor<T>,
        support_y: &Target<T>,
        query_x: &Tensor<T>,
    ) -> Tensor<T>;

    /// Everything meta-training learns and a resumed run needs (meta-parameters, learned step
    /// sizes, optimizer state), as one named list for checkpoints.
    fn state(&self) -> Params<T>;

    /// Restores [`FewShotLearner::state`]; errors when names or shapes do not match.
    fn load_state(
        &mut self,
        state: &Params<T>,
    ) -> Result<(), crate::nn::checkpoint::CheckpointError>;
}

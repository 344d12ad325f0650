//! The one trait every few-shot learner implements (easyfsl's shape: process the support set,
//! then predict the query set), with meta-training on top; what one method supplies
//! ([`Method`]); and [`MetaLearner`], which adds the meta-parameters and their optimizer to a
//! method and so implements [`FewShotLearner`] once for every method.

use super::meta_batch::{MetaGradient, StepStats};
use super::meta_state::MetaState;
use super::task::{Target, TaskData};
use crate::nn::checkpoint::CheckpointError;
use crate::nn::optim::Optimizer;
use crate::nn::Params;
use crate::tensor::{Float, Tensor};

/// A few-shot learner: meta-trains on batches of tasks; given a labelled support set, predicts
/// the query set.
///
/// ```rust
/// use metalearn::prelude::*;
///
/// // ProtoNet on an MLP backbone, 2-way tasks of 4-dimensional points.
/// let algorithm = AlgorithmConfig::default_for("protonet").unwrap();
/// let backbone = BackboneConfig::Mlp(MlpBackbone { sizes: vec![4, 16] });
/// let mut rng = seeded_rng(0);
/// let mut learner = build_learner(&algorithm, &backbone, 2, 1e-3, &mut rng).unwrap();
/// let task = TaskData {
///     support_x: Tensor::rand_normal(&[4, 4], 0.0, 1.0, &mut rng),
///     support_y: Target::Classes(vec![0, 0, 1, 1]),
///     query_x: Tensor::rand_normal(&[6, 4], 0.0, 1.0, &mut rng),
///     query_y: Target::Classes(vec![0, 0, 0, 1, 1, 1]),
///     classes: None,
/// };
/// let stats = learner.meta_train_step(&[task.clone()], &mut rng);
/// assert!(stats.loss.is_finite());
/// let logits = learner.predict(&task.support_x, &task.support_y, &task.query_x);
/// assert_eq!(logits.shape(), [6, 2]);
/// ```
pub trait FewShotLearner<T: Float>: Send + Sync {
    /// The method's name, as configs spell it (`maml`, `protonet`, ...).
    fn name(&self) -> &'static str;

    /// One meta-training step on a meta-batch of tasks (updates the meta-parameters).
    fn meta_train_step(&mut self, tasks: &[TaskData<T>], rng: &mut dyn rand::RngCore) -> StepStats;

    /// Says, before a meta-training step, that `done` of the run's `total` iterations are done,
    /// for methods whose outer step follows a schedule (Reptile's annealed `epsilon`). A
    /// function of `(done, total)` only, so a resumed run follows the same schedule.
    fn set_progress(&mut self, done: usize, total: usize) {
        let _ = (done, total);
    }

    /// The outer optimizer's current learning rate (`None`, the default, for a learner
    /// without one).
    fn meta_lr(&self) -> Option<f64> {
        None
    }

    /// Sets the outer optimizer's learning rate for the next meta-training steps (the run's
    /// step schedule, `train.lr_decay_every`); the default ignores it (no outer optimizer).
    fn set_meta_lr(&mut self, lr: f64) {
        let _ = lr;
    }

    /// Adapts to (or embeds) the support set and returns the query predictions:
    /// logits `[Nq, N]` for classification, values `[Nq, 1]` for regression.
    fn predict(
        &self,
        support_x: &Tensor<T>,
        support_y: &Target<T>,
        query_x: &Tensor<T>,
    ) -> Tensor<T>;

    /// The loss meta-training minimises, of [`FewShotLearner::predict`]'s output on the
    /// queries (validation and `eval` report it beside the accuracy). Default: the target's
    /// own loss, cross-entropy of logits or mean squared error of values.
    fn query_loss(&self, predictions: &Tensor<T>, target: &Target<T>) -> Tensor<T> {
        target.loss(predictions)
    }

    /// Everything meta-training learns and a resumed run needs (meta-parameters, learned step
    /// sizes, optimizer state), as one named list for checkpoints.
    fn state(&self) -> Params<T>;

    /// Restores [`FewShotLearner::state`]; errors when names or shapes do not match.
    fn load_state(&mut self, state: &Params<T>) -> Result<(), CheckpointError>;
}

/// What one method supplies; [`MetaLearner`] adds the meta-parameters and their optimizer and
/// implements [`FewShotLearner`] once for every method.
pub trait Method<T: Float>: Send + Sync {
    /// The method's name, as configs spell it (also the learner state's name in errors).
    fn name(&self) -> &'static str;

    /// The mean gradient (or update direction) of a meta-batch at the meta-parameters
    /// `params` (detached leaves), in their order, and the step's statistics (methods that
    /// need randomness would take it from the tasks).
    fn batch_gradient(&self, params: &Params<T>, tasks: &[TaskData<T>]) -> MetaGradient<T>;

    /// [`FewShotLearner::predict`] at the meta-parameters `p`, for the support set `(sx, sy)`
    /// and the queries `qx`.
    fn predict(&self, p: &Params<T>, sx: &Tensor<T>, sy: &Target<T>, qx: &Tensor<T>) -> Tensor<T>;

    /// [`FewShotLearner::query_loss`]: the loss of [`Method::predict`]'s output (default:
    /// the target's loss).
    fn query_loss(&self, predictions: &Tensor<T>, target: &Target<T>) -> Tensor<T> {
        target.loss(predictions)
    }

    /// Whether the method's backbone draws training noise (DropBlock): [`MetaLearner`] then
    /// takes one seed per meta-training step from the step's generator and runs the step in
    /// [`crate::nn::noise::with_training_noise`]. `false` (the default): no draw, so
    /// deterministic backbones consume the generator exactly as before.
    fn training_noise(&self) -> bool {
        false
    }

    /// The outer optimizer's learning rate once `done` of `total` iterations are done, for
    /// methods with a schedule; `None` (the default) keeps it constant.
    fn outer_lr(&self, done: usize, total: usize) -> Option<f64> {
        let _ = (done, total);
        None
    }
}

/// A method with its meta-parameters and their optimizer: each meta-training step feeds
/// [`Method::batch_gradient`] to the optimizer; the state is [`MetaState::state`].
pub struct MetaLearner<T: Float, M> {
    pub(crate) meta: MetaState<T>,
    pub(crate) method: M,
}

impl<T: Float, M: Method<T>> MetaLearner<T, M> {
    /// `method` with meta-parameters `params` under Adam at `meta_lr`.
    pub fn adam(method: M, params: Params<T>, meta_lr: f64) -> Self {
        MetaLearner {
            meta: MetaState::adam(method.name(), params, meta_lr),
            method,
        }
    }

    /// `method` with meta-parameters `params` under a given optimizer.
    pub fn with_optimizer(
        method: M,
        params: Params<T>,
        opt: Box<dyn Optimizer<T> + Send + Sync>,
    ) -> Self {
        MetaLearner {
            meta: MetaState::with_optimizer(method.name(), params, opt),
            method,
        }
    }

    /// The method.
    pub fn method(&self) -> &M {
        &self.method
    }

    /// The current meta-parameters (for the MAML family the initialisation `theta`).
    pub fn params(&self) -> &Params<T> {
        &self.meta.params
    }

    /// The meta-parameters with their optimizer.
    pub fn meta_state(&self) -> &MetaState<T> {
        &self.meta
    }

    /// The meta-parameters with their optimizer, to update outside
    /// [`FewShotLearner::meta_train_step`] (e.g. a pre-training step on other data, as
    /// Baseline's `pretrain_step`).
    pub fn meta_state_mut(&mut self) -> &mut MetaState<T> {
        &mut self.meta
    }
}

impl<T: Float, M: Method<T>> FewShotLearner<T> for MetaLearner<T, M> {
    fn name(&self) -> &'static str {
        self.method.name()
    }

    fn meta_train_step(&mut self, tasks: &[TaskData<T>], rng: &mut dyn rand::RngCore) -> StepStats {
        let seed = self.method.training_noise().then(|| rng.next_u64());
        let (grads, mut stats) = crate::nn::noise::with_training_noise(seed, || {
            self.method.batch_gradient(&self.meta.params, tasks)
        });
        stats.grad_norm = grads
            .iter()
            .flat_map(|g| g.data().iter().map(|x| x.as_f64() * x.as_f64()))
            .sum::<f64>()
            .sqrt();
        self.meta.step(&grads);
        stats
    }

    fn set_progress(&mut self, done: usize, total: usize) {
        if let Some(lr) = self.method.outer_lr(done, total) {
            self.meta.opt.set_lr(lr);
        }
    }

    fn meta_lr(&self) -> Option<f64> {
        Some(self.meta.opt.lr())
    }

    fn set_meta_lr(&mut self, lr: f64) {
        self.meta.opt.set_lr(lr);
    }

    fn predict(
        &self,
        support_x: &Tensor<T>,
        support_y: &Target<T>,
        query_x: &Tensor<T>,
    ) -> Tensor<T> {
        self.method
            .predict(&self.meta.params, support_x, support_y, query_x)
    }

    fn query_loss(&self, predictions: &Tensor<T>, target: &Target<T>) -> Tensor<T> {
        self.method.query_loss(predictions, target)
    }

    fn state(&self) -> Params<T> {
        self.meta.state()
    }

    fn load_state(&mut self, state: &Params<T>) -> Result<(), CheckpointError> {
        self.meta.load_state(state)
    }
}

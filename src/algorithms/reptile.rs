//! Reptile (Nichol, Achiam & Schulman 2018): adapt with plain SGD on each task's support set,
//! then move the initialisation towards the adapted weights,
//! `theta <- theta + epsilon * mean_t (phi_t - theta)`.
//!
//! With `train_on_query` (the default) the inner loop of meta-training runs on the task's
//! support and query examples together, as Nichol et al. train with more shots than they test
//! with (`--train-shots 10` for 1-shot Omniglot); the reported loss and accuracy are then those
//! of the adapted weights on the query examples they were fitted to. Prediction adapts on the
//! support set only.
//!
//! The outer update is SGD with step `epsilon` on the pseudo-gradient `theta - mean_t phi_t`
//! (its optimizer state is kept, so checkpoints resume exactly), annealed linearly to
//! `epsilon_final` over the run when that is set (Nichol et al. anneal 1 -> 0). No gradient
//! flows through the inner loop, so each inner step's graph is freed at once.

use super::adapt::{Adapter, Order};
use super::algorithm::{Algorithm, Learner, LearnerParts};
use super::checks::{ParamCheck, MAX_STEP_SIZE};
use super::error::AlgorithmError;
use super::learner::{MetaLearner, Method};
use super::meta_batch::{mean_over_tasks, MetaGradient, TaskResult};
use super::task::{Target, TaskData, TaskKind};
use crate::nn::optim::Sgd;
use crate::nn::{Backbone, Body, Model, Network, Params};
use crate::tensor::{Float, Tensor};
use serde::{Deserialize, Serialize};

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

/// Reptile in the algorithm table: regresses, has a head.
pub struct ReptileAlgorithm;

impl Algorithm for ReptileAlgorithm {
    type Config = ReptileConfig;
    const NAME: &'static str = "reptile";
    const HAS_HEAD: bool = true;

    /// `inner_lr` and `epsilon` in (0, 100], `epsilon_final` (when set) in [0, 100], the
    /// step counts in [1, 10000].
    fn validate(c: &ReptileConfig) -> Result<(), AlgorithmError> {
        let check = ParamCheck::new(Self::NAME);
        check.step_size("inner_lr", c.inner_lr)?;
        check.step_size("epsilon", c.epsilon)?;
        if let Some(f) = c.epsilon_final {
            if !(f.is_finite() && (0.0..=MAX_STEP_SIZE).contains(&f)) {
                let reason = "must be a finite number in [0, 100]";
                return Err(check.invalid("epsilon_final", f.to_string(), reason));
            }
        }
        check.steps("inner_steps", c.inner_steps)?;
        check.steps("eval_inner_steps", c.eval_inner_steps)
    }

    /// Reptile's outer step is SGD at `epsilon`: `meta_lr` is not used.
    fn build<T: Float, B: Backbone>(c: &ReptileConfig, p: LearnerParts<B>) -> Learner<T> {
        Box::new(Reptile::<T, B>::new(c, p.body, p.task, p.rng))
    }
}

/// Reptile: the network and the inner loop's settings.
pub struct ReptileMethod<B = Body> {
    net: Network<B>,
    config: ReptileConfig,
}

impl<B: Backbone> ReptileMethod<B> {
    /// `steps` first-order SGD steps from `theta` on `(x, y)`; the adapted weights, detached.
    fn adapt<T: Float>(
        &self,
        theta: &Params<T>,
        x: &Tensor<T>,
        y: &Target<T>,
        steps: usize,
    ) -> Params<T> {
        let adapter = Adapter::sgd(self.config.inner_lr, steps).with_order(Order::First);
        let adapted = adapter.adapt(&self.net, &theta.requires_grad_(), x, y);
        adapted.params.detach()
    }

    /// A task's pseudo-gradient `theta - phi` and the adapted weights' query loss and
    /// accuracy.
    fn task_step<T: Float>(&self, theta: &Params<T>, t: &TaskData<T>) -> TaskResult<T> {
        let steps = self.config.inner_steps;
        let phi = if self.config.train_on_query {
            let y = t.support_y.concat(&t.query_y);
            self.adapt(theta, &t.support_and_query_x(), &y, steps)
        } else {
            self.adapt(theta, &t.support_x, &t.support_y, steps)
        };
        crate::autodiff::no_grad(|| {
            let out = self.net.forward(&phi, &t.query_x);
            let grads = theta
                .tensors()
                .iter()
                .zip(phi.tensors())
                .map(|(a, b)| a.sub(b))
                .collect();
            TaskResult {
                grads,
                loss: t.query_y.loss(&out).item().as_f64(),
                accuracy: t.query_y.accuracy(&out),
            }
        })
    }
}

impl<T: Float, B: Backbone> Method<T> for ReptileMethod<B> {
    fn name(&self) -> &'static str {
        ReptileAlgorithm::NAME
    }

    fn training_noise(&self) -> bool {
        self.net.backbone.uses_training_noise()
    }

    fn batch_gradient(&self, theta: &Params<T>, tasks: &[TaskData<T>]) -> MetaGradient<T> {
        mean_over_tasks(tasks, |t| self.task_step(theta, t))
    }

    /// `eval_inner_steps` SGD steps on the support set, then the query batch.
    fn predict(&self, p: &Params<T>, sx: &Tensor<T>, sy: &Target<T>, qx: &Tensor<T>) -> Tensor<T> {
        let phi = self.adapt(p, sx, sy, self.config.eval_inner_steps);
        crate::autodiff::no_grad(|| self.net.forward(&phi, qx))
    }

    /// `epsilon + (epsilon_final - epsilon) * done / total` when `epsilon_final` is set.
    fn outer_lr(&self, done: usize, total: usize) -> Option<f64> {
        let (e0, e1) = (self.config.epsilon, self.config.epsilon_final?);
        Some(e0 + (e1 - e0) * done as f64 / total.max(1) as f64)
    }
}

/// The Reptile learner (meta-parameters `param/...`, SGD at `epsilon` on them).
pub type Reptile<T, B = Body> = MetaLearner<T, ReptileMethod<B>>;

impl<T: Float, B: Backbone> Reptile<T, B> {
    /// A learner from its config (the outer step size is `config.epsilon`).
    pub fn new(
        config: &ReptileConfig,
        body: B,
        task: TaskKind,
        rng: &mut dyn rand::RngCore,
    ) -> Self {
        let (net, theta) = task.headed_network::<T, B>(body, rng);
        let opt = Box::new(Sgd::<T>::new(config.epsilon));
        let config = config.clone();
        let method = ReptileMethod { net, config };
        MetaLearner::with_optimizer(method, theta.prefixed("param/"), opt)
    }
}

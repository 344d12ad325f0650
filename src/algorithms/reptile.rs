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

use super::config::ReptileConfig;
use super::learner::{MetaGradient, MetaLearner, Method};
use super::maml::{adapt, Order, TaskData};
use super::registry::{self, Body, Network, TaskKind, TaskResult};
use super::Target;
use crate::nn::optim::Sgd;
use crate::nn::{Model, Params};
use crate::tensor::{Float, Tensor};

/// Reptile: the network and the inner loop's settings.
pub struct ReptileMethod {
    net: Network,
    config: ReptileConfig,
}

impl ReptileMethod {
    /// `steps` first-order SGD steps from `theta` on `(x, y)`; the adapted weights, detached.
    fn adapt<T: Float>(
        &self,
        theta: &Params<T>,
        x: &Tensor<T>,
        y: &Target<T>,
        steps: usize,
    ) -> Params<T> {
        let theta = theta.requires_grad_();
        let lr = self.config.inner_lr;
        adapt(&self.net, &theta, x, y, steps, lr, Order::First, None, None)
            .params
            .detach()
    }
}

impl<T: Float> Method<T> for ReptileMethod {
    fn name(&self) -> &'static str {
        "reptile"
    }

    fn batch_gradient(&self, theta: &Params<T>, tasks: &[TaskData<T>]) -> MetaGradient<T> {
        registry::mean_over_tasks(tasks, |t| {
            let steps = self.config.inner_steps;
            let phi = if self.config.train_on_query {
                let x = registry::cat_batch(&t.support_x, &t.query_x);
                let y = match (&t.support_y, &t.query_y) {
                    (Target::Classes(a), Target::Classes(b)) => {
                        Target::Classes([a.as_slice(), b].concat())
                    }
                    (Target::Values(a), Target::Values(b)) => {
                        Target::Values(registry::cat_batch(a, b))
                    }
                    _ => panic!("reptile: support and query targets are of different kinds"),
                };
                self.adapt(theta, &x, &y, steps)
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
                    accuracy: registry::target_accuracy(&out, &t.query_y),
                }
            })
        })
    }

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
pub type Reptile<T> = MetaLearner<T, ReptileMethod>;

impl<T: Float> Reptile<T> {
    /// A learner from its config (the outer step size is `config.epsilon`).
    pub fn new(
        config: &ReptileConfig,
        body: Body,
        task: TaskKind,
        rng: &mut dyn rand::RngCore,
    ) -> Self {
        let (net, theta) = Network::fresh::<T>(body, task, rng);
        let params = registry::prefixed(&theta, "param/");
        let opt = Box::new(Sgd::<T>::new(config.epsilon));
        let config = config.clone();
        MetaLearner::with_optimizer(ReptileMethod { net, config }, params, opt)
    }

    /// The current initialisation.
    pub fn params(&self) -> &Params<T> {
        &self.meta.params
    }
}

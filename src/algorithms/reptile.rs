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
//! (its optimizer state is kept, so checkpoints resume exactly). No gradient flows through the
//! inner loop, so each inner step's graph is freed at once.

use super::config::ReptileConfig;
use super::learner::{FewShotLearner, StepStats};
use super::maml::{adapt, Order, TaskData};
use super::registry::{self, Body, MetaState, Network, TaskKind, TaskResult};
use super::Target;
use crate::nn::optim::Sgd;
use crate::nn::{Model, Params};
use crate::tensor::{Float, Tensor};

/// The Reptile learner.
pub struct Reptile<T: Float> {
    net: Network,
    meta: MetaState<T>,
    config: ReptileConfig,
}

impl<T: Float> Reptile<T> {
    /// A learner from its config (the outer step size is `config.epsilon`).
    pub fn new(
        config: &ReptileConfig,
        body: Body,
        task: TaskKind,
        rng: &mut dyn rand::RngCore,
    ) -> Self {
        let net = Network {
            body,
            outputs: task.outputs(),
        };
        let params = registry::prefixed(&Model::<T>::init(&net, rng), "param/");
        Reptile {
            net,
            meta: MetaState::with_optimizer(
                "reptile",
                params,
                Box::new(Sgd::<T>::new(config.epsilon)),
            ),
            config: config.clone(),
        }
    }

    /// The current initialisation.
    pub fn params(&self) -> &Params<T> {
        &self.meta.params
    }

    fn adapt(&self, x: &Tensor<T>, y: &Target<T>, steps: usize) -> Params<T> {
        let theta = self.meta.leaves();
        adapt(
            &self.net,
            &theta,
            x,
            y,
            steps,
            self.config.inner_lr,
            Order::First,
            None,
            None,
        )
        .params
        .detach()
    }
}

impl<T: Float> FewShotLearner<T> for Reptile<T> {
    fn name(&self) -> &'static str {
        "reptile"
    }

    fn meta_train_step(
        &mut self,
        tasks: &[TaskData<T>],
        _rng: &mut dyn rand::RngCore,
    ) -> StepStats {
        let theta = self.meta.params.clone();
        let (grads, stats) = registry::mean_over_tasks(tasks, |t| {
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
                self.adapt(&x, &y, self.config.inner_steps)
            } else {
                self.adapt(&t.support_x, &t.support_y, self.config.inner_steps)
            };
            let (loss, acc) = crate::autodiff::no_grad(|| {
                let out = self.net.forward(&phi, &t.query_x);
                (
                    t.query_y.loss(&out).item().as_f64(),
                    registry::target_accuracy(&out, &t.query_y),
                )
            });
            let grads = crate::autodiff::no_grad(|| {
                theta
                    .tensors()
                    .iter()
                    .zip(phi.tensors())
                    .map(|(a, b)| a.sub(b))
                    .collect()
            });
            TaskResult {
                grads,
                loss,
                accuracy: acc,
            }
        });
        self.meta.step(&grads);
        stats
    }

    fn predict(
        &self,
        support_x: &Tensor<T>,
        support_y: &Target<T>,
        query_x: &Tensor<T>,
    ) -> Tensor<T> {
        let phi = self.adapt(support_x, support_y, self.config.eval_inner_steps);
        crate::autodiff::no_grad(|| self.net.forward(&phi, query_x))
    }

    fn state(&self) -> Params<T> {
        self.meta.state()
    }

    fn load_state(
        &mut self,
        state: &Params<T>,
    ) -> Result<(), crate::nn::checkpoint::CheckpointError> {
        self.meta.load_state(state)
    }
}

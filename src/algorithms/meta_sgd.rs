//! Meta-SGD (Li, Zhou, Chen & Li 2017): MAML with a learned step size per parameter element,
//! `phi = theta - alpha ∘ grad L_support(theta)`; `theta` and `alpha` are meta-learned together.
//!
//! State names: `param/<name>` (the initialisation), `lr/<name>` (the step sizes, same shapes),
//! then the optimizer's state under `opt/`.

use super::config::MetaSgdConfig;
use super::learner::{FewShotLearner, StepStats};
use super::maml::{adapt, Order, TaskData};
use super::registry::{self, Body, MetaState, Network, TaskKind, TaskResult};
use super::Target;
use crate::nn::{Model, Params};
use crate::tensor::{Float, Tensor};

/// The Meta-SGD learner.
pub struct MetaSgd<T: Float> {
    net: Network,
    /// `param/...` then `lr/...`.
    meta: MetaState<T>,
    n: usize,
    config: MetaSgdConfig,
}

impl<T: Float> MetaSgd<T> {
    /// A learner from its config; every step size starts at `config.init_lr`.
    pub fn new(
        config: &MetaSgdConfig,
        body: Body,
        task: TaskKind,
        meta_lr: f64,
        rng: &mut dyn rand::RngCore,
    ) -> Self {
        let net = Network {
            body,
            outputs: task.outputs(),
        };
        let theta: Params<T> = Model::<T>::init(&net, rng);
        let lrs = theta.map(|t| Tensor::full(t.shape(), T::of(config.init_lr)));
        let params = registry::concat_params(
            &registry::prefixed(&theta, "param/"),
            &registry::prefixed(&lrs, "lr/"),
        );
        MetaSgd {
            n: theta.len(),
            net,
            meta: MetaState::adam("meta_sgd", params, meta_lr),
            config: config.clone(),
        }
    }

    /// The initialisation `theta`.
    pub fn theta(&self) -> Params<T> {
        registry::slice(&self.meta.params, 0..self.n)
    }

    /// The learned step sizes.
    pub fn step_sizes(&self) -> Params<T> {
        registry::slice(&self.meta.params, self.n..2 * self.n)
    }

    fn order(&self) -> Order {
        if self.config.first_order {
            Order::First
        } else {
            Order::Second
        }
    }
}

impl<T: Float> FewShotLearner<T> for MetaSgd<T> {
    fn name(&self) -> &'static str {
        "meta_sgd"
    }

    fn meta_train_step(
        &mut self,
        tasks: &[TaskData<T>],
        _rng: &mut dyn rand::RngCore,
    ) -> StepStats {
        let all = self.meta.leaves();
        let theta = registry::slice(&all, 0..self.n);
        let lrs = registry::slice(&all, self.n..2 * self.n);
        let order = self.order();
        let (grads, stats) = registry::mean_over_tasks(tasks, |t| {
            let a = adapt(
                &self.net,
                &theta,
                &t.support_x,
                &t.support_y,
                self.config.inner_steps,
                0.0,
                order,
                Some(&lrs),
                None,
            );
            let out = self.net.forward(&a.params, &t.query_x);
            let loss = t.query_y.loss(&out);
            // Both orders record phi = theta - alpha * g, so the gradient reaches theta and alpha
            // (with `First`, g is a constant and d phi / d theta = I).
            let grads = crate::grad(std::slice::from_ref(&loss), all.tensors(), false);
            TaskResult {
                grads,
                loss: loss.item().as_f64(),
                accuracy: registry::target_accuracy(&out, &t.query_y),
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
        let theta = self.theta().requires_grad_();
        let lrs = self.step_sizes();
        let a = adapt(
            &self.net,
            &theta,
            support_x,
            support_y,
            self.config.eval_inner_steps,
            0.0,
            Order::First,
            Some(&lrs),
            None,
        );
        crate::autodiff::no_grad(|| self.net.forward(&a.params, query_x))
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

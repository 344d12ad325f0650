//! Meta-SGD (Li, Zhou, Chen & Li 2017): MAML with a learned step size per parameter element,
//! `phi = theta - alpha ∘ grad L_support(theta)`; `theta` and `alpha` are meta-learned together.
//!
//! State names: `param/<name>` (the initialisation), `lr/<name>` (the step sizes, same shapes),
//! then the optimizer's state under `opt/`.

use super::config::MetaSgdConfig;
use super::learner::{MetaGradient, MetaLearner, Method};
use super::maml::{adapt, adapt_and_predict, query_result, Order, TaskData};
use super::registry::{self, Body, Network, TaskKind};
use super::Target;
use crate::nn::{Model, Params};
use crate::tensor::{Float, Tensor};

/// Meta-SGD: the network, the number of its parameters `n` and the inner loop's settings.
pub struct MetaSgdMethod {
    net: Network,
    n: usize,
    config: MetaSgdConfig,
}

impl<T: Float> Method<T> for MetaSgdMethod {
    fn name(&self) -> &'static str {
        "meta_sgd"
    }

    fn batch_gradient(&self, params: &Params<T>, tasks: &[TaskData<T>]) -> MetaGradient<T> {
        let all = params.requires_grad_();
        let theta = registry::slice(&all, 0..self.n);
        let lrs = registry::slice(&all, self.n..2 * self.n);
        let order = Order::first_if(self.config.first_order);
        registry::mean_over_tasks(tasks, |t| {
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
            // Both orders record phi = theta - alpha * g, so the gradient reaches theta and alpha
            // (with `First`, g is a constant and d phi / d theta = I).
            query_result(&out, &t.query_y, all.tensors())
        })
    }

    fn predict(&self, p: &Params<T>, sx: &Tensor<T>, sy: &Target<T>, qx: &Tensor<T>) -> Tensor<T> {
        let theta = registry::slice(p, 0..self.n).requires_grad_();
        let lrs = registry::slice(p, self.n..2 * self.n);
        let steps = self.config.eval_inner_steps;
        adapt_and_predict(&self.net, &theta, sx, sy, qx, steps, 0.0, Some(&lrs))
    }
}

/// The Meta-SGD learner (meta-parameters `param/...` then `lr/...`).
pub type MetaSgd<T> = MetaLearner<T, MetaSgdMethod>;

impl<T: Float> MetaSgd<T> {
    /// A learner from its config; every step size starts at `config.init_lr`.
    pub fn new(
        config: &MetaSgdConfig,
        body: Body,
        task: TaskKind,
        meta_lr: f64,
        rng: &mut dyn rand::RngCore,
    ) -> Self {
        let (net, theta) = Network::fresh::<T>(body, task, rng);
        let lrs = theta.map(|t| Tensor::full(t.shape(), T::of(config.init_lr)));
        let params = registry::concat_params(
            &registry::prefixed(&theta, "param/"),
            &registry::prefixed(&lrs, "lr/"),
        );
        let method = MetaSgdMethod {
            n: theta.len(),
            net,
            config: config.clone(),
        };
        MetaLearner::adam(method, params, meta_lr)
    }

    /// The initialisation `theta`.
    pub fn theta(&self) -> Params<T> {
        registry::slice(&self.meta.params, 0..self.method.n)
    }

    /// The learned step sizes.
    pub fn step_sizes(&self) -> Params<T> {
        let n = self.method.n;
        registry::slice(&self.meta.params, n..2 * n)
    }
}

//! ANIL (Raghu, Raghu, Bengio & Vinyals 2020): MAML where only the linear head adapts.
//!
//! The body's features of the support and query sets are computed once per task (the body's
//! weights do not change in the inner loop, so this equals re-running the full network every
//! step, batch norm included); the inner loop runs on the head alone, and the meta-gradient
//! reaches the body through the features (second order by default).

use super::config::AnilConfig;
use super::learner::{MetaGradient, MetaLearner, Method};
use super::maml::{adapt, adapt_and_predict, query_result, Order, TaskData};
use super::registry::{self, Body, LinearHead, Network, TaskKind};
use super::Target;
use crate::nn::{Model, Params};
use crate::tensor::{Float, Tensor};

/// ANIL: the network and the inner loop's settings.
pub struct AnilMethod {
    net: Network,
    config: AnilConfig,
}

impl AnilMethod {
    /// The head (`head.weight`, `head.bias`) of `theta`.
    fn head<T: Float>(&self, theta: &Params<T>) -> Params<T> {
        let k = self.net.head_index();
        registry::slice(theta, k..k + 2)
    }

    /// The body's features of `x` under `theta`.
    fn features<T: Float>(&self, theta: &Params<T>, x: &Tensor<T>) -> Tensor<T> {
        self.net.body.embed(theta, x)
    }
}

impl<T: Float> Method<T> for AnilMethod {
    fn name(&self) -> &'static str {
        "anil"
    }

    fn batch_gradient(&self, params: &Params<T>, tasks: &[TaskData<T>]) -> MetaGradient<T> {
        let theta = params.requires_grad_();
        let order = Order::first_if(self.config.first_order);
        let (steps, lr) = (self.config.inner_steps, self.config.inner_lr);
        registry::mean_over_tasks(tasks, |t| {
            let fs = self.features(&theta, &t.support_x);
            let fq = self.features(&theta, &t.query_x);
            let head = self.head(&theta);
            let head = adapt(
                &LinearHead,
                &head,
                &fs,
                &t.support_y,
                steps,
                lr,
                order,
                None,
                None,
            );
            let out = LinearHead.forward(&head.params, &fq);
            query_result(&out, &t.query_y, theta.tensors())
        })
    }

    fn predict(&self, p: &Params<T>, sx: &Tensor<T>, sy: &Target<T>, qx: &Tensor<T>) -> Tensor<T> {
        let (fs, fq) = crate::autodiff::no_grad(|| (self.features(p, sx), self.features(p, qx)));
        let head = self.head(p).requires_grad_();
        let (steps, lr) = (self.config.eval_inner_steps, self.config.inner_lr);
        adapt_and_predict(&LinearHead, &head, &fs, sy, &fq, steps, lr, None)
    }
}

/// The ANIL learner (meta-parameters `param/...`: body, then head).
pub type Anil<T> = MetaLearner<T, AnilMethod>;

impl<T: Float> Anil<T> {
    /// A learner from its config.
    pub fn new(
        config: &AnilConfig,
        body: Body,
        task: TaskKind,
        meta_lr: f64,
        rng: &mut dyn rand::RngCore,
    ) -> Self {
        let (net, theta) = Network::fresh::<T>(body, task, rng);
        let params = registry::prefixed(&theta, "param/");
        let config = config.clone();
        MetaLearner::adam(AnilMethod { net, config }, params, meta_lr)
    }

    /// The meta-parameters (body, then head).
    pub fn params(&self) -> &Params<T> {
        &self.meta.params
    }
}

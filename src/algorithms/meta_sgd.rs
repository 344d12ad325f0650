//! Meta-SGD (Li, Zhou, Chen & Li 2017): MAML with a learned step size per parameter element,
//! `phi = theta - alpha ∘ grad L_support(theta)`; `theta` and `alpha` are meta-learned together.
//!
//! State names: `param/<name>` (the initialisation), `lr/<name>` (the step sizes, same shapes),
//! then the optimizer's state under `opt/`.

use super::adapt::{Adapter, Order};
use super::algorithm::{Algorithm, Learner, LearnerParts};
use super::checks::ParamCheck;
use super::error::AlgorithmError;
use super::learner::{MetaLearner, Method};
use super::meta_batch::{mean_over_tasks, MetaGradient, TaskResult};
use super::task::{Target, TaskData, TaskKind};
use crate::nn::{Backbone, Body, Model, Network, Params};
use crate::tensor::{Float, Tensor};
use serde::{Deserialize, Serialize};

/// Meta-SGD. Li et al. draw the initial step sizes from U[0.005, 0.1] and take one inner step;
/// here every step size starts at `init_lr` (0.1, the top of their range; learn2learn's
/// choice of a constant start).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetaSgdConfig {
    /// Initial per-parameter step size (0.1).
    pub init_lr: f64,
    /// Inner steps in meta-training (1).
    pub inner_steps: usize,
    /// Inner steps when adapting for prediction (1).
    pub eval_inner_steps: usize,
    /// Treat inner gradients as constants (false).
    pub first_order: bool,
}

impl Default for MetaSgdConfig {
    fn default() -> Self {
        MetaSgdConfig {
            init_lr: 0.1,
            inner_steps: 1,
            eval_inner_steps: 1,
            first_order: false,
        }
    }
}

/// Meta-SGD in the algorithm table: regresses, has a head.
pub struct MetaSgdAlgorithm;

impl Algorithm for MetaSgdAlgorithm {
    type Config = MetaSgdConfig;
    const NAME: &'static str = "meta_sgd";
    const HAS_HEAD: bool = true;

    /// `init_lr` in (0, 100], `inner_steps` and `eval_inner_steps` in [1, 10000].
    fn validate(c: &MetaSgdConfig) -> Result<(), AlgorithmError> {
        let check = ParamCheck::new(Self::NAME);
        check.inner_loop("init_lr", c.init_lr, c.inner_steps, c.eval_inner_steps)
    }

    fn build<T: Float, B: Backbone>(c: &MetaSgdConfig, p: LearnerParts<B>) -> Learner<T> {
        Box::new(MetaSgd::<T, B>::new(c, p.body, p.task, p.meta_lr, p.rng))
    }
}

/// Meta-SGD: the network, the number of its parameters `n` and the inner loop's settings.
pub struct MetaSgdMethod<B = Body> {
    net: Network<B>,
    n: usize,
    config: MetaSgdConfig,
}

impl<T: Float, B: Backbone> Method<T> for MetaSgdMethod<B> {
    fn name(&self) -> &'static str {
        MetaSgdAlgorithm::NAME
    }

    fn training_noise(&self) -> bool {
        self.net.backbone.uses_training_noise()
    }

    fn batch_gradient(&self, params: &Params<T>, tasks: &[TaskData<T>]) -> MetaGradient<T> {
        let all = params.requires_grad_();
        let (theta, step_sizes) = all.split_at(self.n);
        let order = Order::first_if(self.config.first_order);
        let adapter = Adapter::per_parameter(step_sizes, self.config.inner_steps).with_order(order);
        mean_over_tasks(tasks, |t| {
            let a = adapter.adapt(&self.net, &theta, &t.support_x, &t.support_y);
            let out = self.net.forward(&a.params, &t.query_x);
            // Both orders record phi = theta - alpha * g, so the gradient reaches theta and alpha
            // (with `First`, g is a constant and d phi / d theta = I).
            TaskResult::from_query(&out, &t.query_y, all.tensors())
        })
    }

    /// `eval_inner_steps` first-order steps with the learned step sizes, then the query batch.
    fn predict(&self, p: &Params<T>, sx: &Tensor<T>, sy: &Target<T>, qx: &Tensor<T>) -> Tensor<T> {
        let (theta, step_sizes) = p.split_at(self.n);
        let steps = self.config.eval_inner_steps;
        let adapter = Adapter::per_parameter(step_sizes, steps).with_order(Order::First);
        adapter.predict(&self.net, &theta.requires_grad_(), sx, sy, qx)
    }
}

/// The Meta-SGD learner (meta-parameters `param/...` then `lr/...`).
pub type MetaSgd<T, B = Body> = MetaLearner<T, MetaSgdMethod<B>>;

impl<T: Float, B: Backbone> MetaSgd<T, B> {
    /// A learner from its config; every step size starts at `config.init_lr`.
    pub fn new(
        config: &MetaSgdConfig,
        body: B,
        task: TaskKind,
        meta_lr: f64,
        rng: &mut dyn rand::RngCore,
    ) -> Self {
        let (net, theta) = task.headed_network::<T, B>(body, rng);
        let step_sizes = theta.map(|t| Tensor::full(t.shape(), T::of(config.init_lr)));
        let params = theta.prefixed("param/").concat(&step_sizes.prefixed("lr/"));
        let method = MetaSgdMethod {
            n: theta.len(),
            net,
            config: config.clone(),
        };
        MetaLearner::adam(method, params, meta_lr)
    }

    /// The initialisation `theta`.
    pub fn theta(&self) -> Params<T> {
        self.meta.params.split_at(self.method.n).0
    }

    /// The learned step sizes.
    pub fn step_sizes(&self) -> Params<T> {
        self.meta.params.split_at(self.method.n).1
    }
}

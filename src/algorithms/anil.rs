//! ANIL (Raghu, Raghu, Bengio & Vinyals 2020): MAML where only the linear head adapts.
//!
//! The body's features of the support and query sets are computed once per task (the body's
//! weights do not change in the inner loop, so this equals re-running the full network every
//! step, batch norm included); the inner loop runs on the head alone, and the meta-gradient
//! reaches the body through the features (second order by default).

use super::adapt::{Adapter, Order};
use super::algorithm::{Algorithm, Learner, LearnerParts};
use super::error::AlgorithmError;
use super::learner::{MetaLearner, Method};
use super::maml::MamlConfig;
use super::meta_batch::{mean_over_tasks, MetaGradient, TaskResult};
use super::task::{Target, TaskData, TaskKind};
use crate::nn::{Backbone, Body, LinearHead, Model, Network, Params};
use crate::tensor::{Float, Tensor};

/// ANIL's hyper-parameters: MAML's fields and defaults (Raghu et al. reuse MAML's Omniglot
/// hyper-parameters: `inner_lr` 0.4, 1 step; 3 at test time).
pub type AnilConfig = MamlConfig;

/// ANIL in the algorithm table: regresses, has a head.
pub struct AnilAlgorithm;

impl Algorithm for AnilAlgorithm {
    type Config = AnilConfig;
    const NAME: &'static str = "anil";
    const HAS_HEAD: bool = true;

    fn validate(config: &AnilConfig) -> Result<(), AlgorithmError> {
        config.validate(Self::NAME)
    }

    fn build<T: Float, B: Backbone>(c: &AnilConfig, p: LearnerParts<B>) -> Learner<T> {
        Box::new(Anil::<T, B>::new(c, p.body, p.task, p.meta_lr, p.rng))
    }
}

/// ANIL: the network and the inner loop's settings.
pub struct AnilMethod<B = Body> {
    net: Network<B>,
    config: AnilConfig,
}

impl<B: Backbone> AnilMethod<B> {
    /// The body's features of `x` under `theta`.
    fn features<T: Float>(&self, theta: &Params<T>, x: &Tensor<T>) -> Tensor<T> {
        self.net.backbone.embed(theta, x)
    }
}

impl<T: Float, B: Backbone> Method<T> for AnilMethod<B> {
    fn name(&self) -> &'static str {
        AnilAlgorithm::NAME
    }

    fn training_noise(&self) -> bool {
        self.net.backbone.uses_training_noise()
    }

    fn batch_gradient(&self, params: &Params<T>, tasks: &[TaskData<T>]) -> MetaGradient<T> {
        let theta = params.requires_grad_();
        let order = Order::first_if(self.config.first_order);
        let adapter = Adapter::sgd(self.config.inner_lr, self.config.inner_steps).with_order(order);
        mean_over_tasks(tasks, |t| {
            let fs = self.features(&theta, &t.support_x);
            let fq = self.features(&theta, &t.query_x);
            let head = self.net.head_params(&theta);
            let head = adapter.adapt(&LinearHead, &head, &fs, &t.support_y);
            let out = LinearHead.forward(&head.params, &fq);
            TaskResult::from_query(&out, &t.query_y, theta.tensors())
        })
    }

    /// `eval_inner_steps` first-order steps of the head on the support features, then the
    /// query features through it.
    fn predict(&self, p: &Params<T>, sx: &Tensor<T>, sy: &Target<T>, qx: &Tensor<T>) -> Tensor<T> {
        let (fs, fq) = crate::autodiff::no_grad(|| (self.features(p, sx), self.features(p, qx)));
        let head = self.net.head_params(p).requires_grad_();
        let (lr, steps) = (self.config.inner_lr, self.config.eval_inner_steps);
        let adapter = Adapter::sgd(lr, steps).with_order(Order::First);
        adapter.predict(&LinearHead, &head, &fs, sy, &fq)
    }
}

/// The ANIL learner (meta-parameters `param/...`: body, then head).
pub type Anil<T, B = Body> = MetaLearner<T, AnilMethod<B>>;

impl<T: Float, B: Backbone> Anil<T, B> {
    /// A learner from its config.
    pub fn new(
        config: &AnilConfig,
        body: B,
        task: TaskKind,
        meta_lr: f64,
        rng: &mut dyn rand::RngCore,
    ) -> Self {
        let (net, theta) = task.headed_network::<T, B>(body, rng);
        let config = config.clone();
        MetaLearner::adam(
            AnilMethod { net, config },
            theta.prefixed("param/"),
            meta_lr,
        )
    }
}

//! Matching Networks (Vinyals, Blundell, Lillicrap, Kavukcuoglu & Wierstra 2016), without the
//! full-context embeddings: `p(y = c | x) = sum_i a(x, x_i) [y_i = c]` with the attention
//! `a = softmax_i(scale * cos(f(x), f(x_i)))` over the support examples.
//!
//! [`FewShotLearner::predict`] returns `log p` (valid logits: their softmax is `p`); training
//! minimises the negative log-likelihood of the query labels. Support and query are embedded
//! in one batch.

use super::config::MatchingConfig;
use super::learner::{FewShotLearner, StepStats};
use super::maml::TaskData;
use super::protonet::embed_both;
use super::registry::{self, Body, MetaState, TaskResult};
use super::Target;
use crate::nn::Params;
use crate::tensor::{Float, Tensor};

/// The Matching Networks learner.
pub struct MatchingNet<T: Float> {
    body: Body,
    meta: MetaState<T>,
    scale: f64,
}

impl<T: Float> MatchingNet<T> {
    /// A learner with a fresh backbone.
    pub fn new(
        config: &MatchingConfig,
        body: Body,
        meta_lr: f64,
        rng: &mut dyn rand::RngCore,
    ) -> Self {
        let params = registry::prefixed(&body.init::<T>(rng), "param/");
        MatchingNet {
            body,
            meta: MetaState::adam("matching", params, meta_lr),
            scale: config.scale,
        }
    }

    /// `log p(y | x)` of the queries, `[Nq, N]`.
    fn log_probs(
        &self,
        params: &Params<T>,
        sx: &Tensor<T>,
        sy: &[usize],
        qx: &Tensor<T>,
    ) -> Tensor<T> {
        let (zs, zq) = embed_both(&self.body, params, sx, qx);
        let cos = registry::l2_normalize(&zq, 1e-8).matmul_nt(&registry::l2_normalize(&zs, 1e-8)); // [Nq, Ns]
        let att = cos.mul_scalar(self.scale).softmax(-1);
        let oh = registry::one_hot::<T>(sy, registry::num_classes(sy)); // [Ns, N]
        att.matmul(&oh).add_scalar(1e-8).log()
    }
}

impl<T: Float> FewShotLearner<T> for MatchingNet<T> {
    fn name(&self) -> &'static str {
        "matching"
    }

    fn meta_train_step(
        &mut self,
        tasks: &[TaskData<T>],
        _rng: &mut dyn rand::RngCore,
    ) -> StepStats {
        let theta = self.meta.leaves();
        let (grads, stats) = registry::mean_over_tasks(tasks, |t| {
            let sy = registry::class_labels(&t.support_y, "matching");
            let qy = registry::class_labels(&t.query_y, "matching");
            let out = self.log_probs(&theta, &t.support_x, sy, &t.query_x);
            // softmax(log p) = p, so cross-entropy on log p is the negative log-likelihood.
            let loss = out.cross_entropy(qy);
            TaskResult {
                grads: crate::grad(std::slice::from_ref(&loss), theta.tensors(), false),
                loss: loss.item().as_f64(),
                accuracy: registry::accuracy(&out, qy),
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
        let sy = registry::class_labels(support_y, "matching");
        crate::autodiff::no_grad(|| self.log_probs(&self.meta.params, support_x, sy, query_x))
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

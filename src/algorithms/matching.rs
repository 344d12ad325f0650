//! Matching Networks (Vinyals, Blundell, Lillicrap, Kavukcuoglu & Wierstra 2016), without the
//! full-context embeddings: `p(y = c | x) = sum_i a(x, x_i) [y_i = c]` with the attention
//! `a = softmax_i(scale * cos(f(x), f(x_i)))` over the support examples.
//!
//! [`FewShotLearner::predict`](super::FewShotLearner::predict) returns `log p` (valid logits:
//! their softmax is `p`); training minimises the negative log-likelihood of the query labels
//! (cross-entropy on `log p`, as `softmax(log p) = p`). Support and query are embedded in one
//! batch.

use super::config::MatchingConfig;
use super::metric::{metric_learner, Metric, MetricLearner};
use super::registry::{self, Body};
use crate::nn::Params;
use crate::tensor::{Float, Tensor};

/// Matching Networks' metric: `log p(y | x)` of the queries, `[Nq, N]`.
pub struct Attention {
    scale: f64,
}

impl<T: Float> Metric<T> for Attention {
    fn name(&self) -> &'static str {
        "matching"
    }

    fn scores(&self, _: &Params<T>, zs: &Tensor<T>, sy: &[usize], zq: &Tensor<T>) -> Tensor<T> {
        let cos = registry::l2_normalize(zq, 1e-8).matmul_nt(&registry::l2_normalize(zs, 1e-8)); // [Nq, Ns]
        let att = cos.mul_scalar(self.scale).softmax(-1);
        let oh = registry::one_hot::<T>(sy, registry::num_classes(sy)); // [Ns, N]
        att.matmul(&oh).add_scalar(1e-8).log()
    }
}

/// The Matching Networks learner.
pub type MatchingNet<T> = MetricLearner<T, Attention>;

impl<T: Float> MatchingNet<T> {
    /// A learner with a fresh backbone.
    pub fn new(
        config: &MatchingConfig,
        body: Body,
        meta_lr: f64,
        rng: &mut dyn rand::RngCore,
    ) -> Self {
        let scale = config.scale;
        metric_learner(body, meta_lr, rng, |_, _, _| {
            (Attention { scale }, Params::new())
        })
    }
}

//! Matching Networks (Vinyals, Blundell, Lillicrap, Kavukcuoglu & Wierstra 2016), without the
//! full-context embeddings: `p(y = c | x) = sum_i a(x, x_i) [y_i = c]` with the attention
//! `a = softmax_i(scale * cos(f(x), f(x_i)))` over the support examples.
//!
//! [`FewShotLearner::predict`](super::FewShotLearner::predict) returns `log p` (valid logits: their softmax is `p`); training
//! minimises the negative log-likelihood of the query labels (cross-entropy on `log p`, as
//! `softmax(log p) = p`). Support and query are embedded in one batch.

use super::algorithm::{Algorithm, Learner, LearnerParts};
use super::checks::ParamCheck;
use super::classes::{num_classes, one_hot};
use super::error::AlgorithmError;
use super::metric::{
    cosine_similarities, metric_learner, Metric, MetricLearner, COMPARES_CLASS_EMBEDDINGS,
};
use crate::nn::{Backbone, Body, Params};
use crate::tensor::{Float, Tensor};
use serde::{Deserialize, Serialize};

/// Matching Networks: softmax attention over cosine similarities to the support examples,
/// `p(y | x) = sum_i softmax_i(scale * cos(f(x), g(x_i))) y_i`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MatchingConfig {
    /// Multiplier of the cosines before the softmax (1.0, as in Vinyals et al.; larger values
    /// sharpen the attention and speed up training).
    pub scale: f64,
}

impl Default for MatchingConfig {
    fn default() -> Self {
        MatchingConfig { scale: 1.0 }
    }
}

/// Matching Networks in the algorithm table: classification only, no head.
pub struct MatchingAlgorithm;

impl Algorithm for MatchingAlgorithm {
    type Config = MatchingConfig;
    const NAME: &'static str = "matching";
    const CLASSIFIES_ONLY: Option<&'static str> = COMPARES_CLASS_EMBEDDINGS;

    /// `scale` in (0, 1e6].
    fn validate(config: &MatchingConfig) -> Result<(), AlgorithmError> {
        ParamCheck::new(Self::NAME).scale("scale", config.scale)
    }

    fn build<T: Float, B: Backbone>(c: &MatchingConfig, p: LearnerParts<B>) -> Learner<T> {
        Box::new(MatchingNet::<T, B>::new(c, p.body, p.meta_lr, p.rng))
    }
}

/// Matching Networks' metric: `log p(y | x)` of the queries, `[Nq, N]`.
pub struct Attention {
    scale: f64,
}

impl<T: Float> Metric<T> for Attention {
    fn name(&self) -> &'static str {
        MatchingAlgorithm::NAME
    }

    fn scores(&self, _: &Params<T>, zs: &Tensor<T>, sy: &[usize], zq: &Tensor<T>) -> Tensor<T> {
        let att = cosine_similarities(zq, zs)
            .mul_scalar(self.scale)
            .softmax(-1); // [Nq, Ns]
        let oh = one_hot::<T>(sy, num_classes(sy)); // [Ns, N]
        att.matmul(&oh).add_scalar(1e-8).log()
    }
}

/// The Matching Networks learner.
pub type MatchingNet<T, B = Body> = MetricLearner<T, Attention, B>;

impl<T: Float, B: Backbone> MatchingNet<T, B> {
    /// A learner with a fresh backbone.
    pub fn new(
        config: &MatchingConfig,
        body: B,
        meta_lr: f64,
        rng: &mut dyn rand::RngCore,
    ) -> Self {
        let scale = config.scale;
        metric_learner(body, meta_lr, rng, |_, _, _| {
            (Attention { scale }, Params::new())
        })
    }
}

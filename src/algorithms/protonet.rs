//! Prototypical Networks (Snell, Swersky & Zemel 2017): each class is the mean of its support
//! embeddings; query logits are minus the squared Euclidean distances to the prototypes.
//!
//! Support and query are embedded in one batch (so batch norm uses one set of statistics, the
//! same in training and prediction; see [`super::metric`]).

use super::metric::{metric_learner, Metric, MetricLearner};
use super::registry::{self, Body};
use crate::nn::Params;
use crate::tensor::{Float, Tensor};

/// `-||q_i - p_c||^2` for queries `q [Nq, d]` and prototypes `p [N, d]`: `[Nq, N]`.
pub fn neg_sq_distances<T: Float>(q: &Tensor<T>, p: &Tensor<T>) -> Tensor<T> {
    let qq = q.square().sum_axis(-1, true); // [Nq, 1]
    let pp = p.square().sum_axis(-1, false).unsqueeze(0); // [1, N]
    q.matmul_nt(p).mul_scalar(2.0).sub(&qq).sub(&pp)
}

/// ProtoNet's metric: negative squared distances to the class prototypes.
pub struct Prototypes;

impl<T: Float> Metric<T> for Prototypes {
    fn name(&self) -> &'static str {
        "protonet"
    }

    fn scores(&self, _: &Params<T>, zs: &Tensor<T>, sy: &[usize], zq: &Tensor<T>) -> Tensor<T> {
        let protos = registry::class_means(zs, sy, registry::num_classes(sy));
        neg_sq_distances(zq, &protos)
    }
}

/// The Prototypical Networks learner.
pub type ProtoNet<T> = MetricLearner<T, Prototypes>;

impl<T: Float> ProtoNet<T> {
    /// A learner with a fresh backbone.
    pub fn new(body: Body, meta_lr: f64, rng: &mut dyn rand::RngCore) -> Self {
        metric_learner(body, meta_lr, rng, |_, _, _| (Prototypes, Params::new()))
    }
}

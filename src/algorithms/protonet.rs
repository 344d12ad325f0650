//! Prototypical Networks (Snell, Swersky & Zemel 2017): each class is the mean of its support
//! embeddings; query logits are minus the squared Euclidean distances to the prototypes.
//!
//! Support and query are embedded in one batch (so batch norm uses one set of statistics, the
//! same in training and prediction; see [`super::metric`]).

use super::algorithm::{Algorithm, Learner, LearnerParts};
use super::classes::{class_means, num_classes};
use super::metric::{metric_learner, Metric, MetricLearner, COMPARES_CLASS_EMBEDDINGS};
use crate::nn::{Backbone, Body, Params};
use crate::tensor::{Float, Tensor};
use serde::{Deserialize, Serialize};

/// Prototypical Networks: logits are minus squared Euclidean distances to class means. No
/// hyper-parameters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProtoNetConfig {}

/// ProtoNet in the algorithm table: classification only, no head.
pub struct ProtoNetAlgorithm;

impl Algorithm for ProtoNetAlgorithm {
    type Config = ProtoNetConfig;
    const NAME: &'static str = "protonet";
    const CLASSIFIES_ONLY: Option<&'static str> = COMPARES_CLASS_EMBEDDINGS;

    fn build<T: Float, B: Backbone>(_: &ProtoNetConfig, p: LearnerParts<B>) -> Learner<T> {
        Box::new(ProtoNet::<T, B>::new(p.body, p.meta_lr, p.rng))
    }
}

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
        ProtoNetAlgorithm::NAME
    }

    fn scores(&self, _: &Params<T>, zs: &Tensor<T>, sy: &[usize], zq: &Tensor<T>) -> Tensor<T> {
        let protos = class_means(zs, sy, num_classes(sy));
        neg_sq_distances(zq, &protos)
    }
}

/// The Prototypical Networks learner.
///
/// ```rust
/// use metalearn::prelude::*;
///
/// // Two well separated classes in 2-D: the prototypes classify the queries.
/// let mut rng = seeded_rng(0);
/// let protonet = ProtoNet::<f64>::new(Body::Mlp(Mlp::new(&[2, 8])), 1e-3, &mut rng);
/// let support = Tensor::from_f64(&[-5.0, -5.0, -4.0, -5.0, 5.0, 5.0, 4.0, 5.0], &[4, 2]);
/// let labels = Target::Classes(vec![0, 0, 1, 1]);
/// let queries = Tensor::from_f64(&[-4.5, -4.5, 4.5, 4.5], &[2, 2]);
/// let logits = protonet.predict(&support, &labels, &queries);
/// assert_eq!(logits.shape(), [2, 2]);
/// assert_eq!(logits.argmax_axis(-1), vec![0, 1]);
/// ```
pub type ProtoNet<T, B = Body> = MetricLearner<T, Prototypes, B>;

impl<T: Float, B: Backbone> ProtoNet<T, B> {
    /// A learner with a fresh backbone.
    pub fn new(body: B, meta_lr: f64, rng: &mut dyn rand::RngCore) -> Self {
        metric_learner(body, meta_lr, rng, |_, _, _| (Prototypes, Params::new()))
    }
}

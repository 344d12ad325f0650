//! The shared shape of the metric-based methods (ProtoNet, Matching Networks, Relation
//! Networks, R2D2): embed support and query in one batch (so batch norm uses one set of
//! statistics, the same in training and prediction), score every query against the support
//! set with the method's [`Metric`], and meta-train the backbone (and the metric's own
//! parameters) on the query loss of those scores.

use super::learner::{MetaLearner, Method};
use super::meta_batch::{mean_over_tasks, MetaGradient, TaskResult};
use super::task::{Target, TaskData};
use crate::nn::{Backbone, Body, Params};
use crate::tensor::{Float, Tensor};

/// Why the metric-based methods only classify ([`super::Algorithm::CLASSIFIES_ONLY`]).
pub const COMPARES_CLASS_EMBEDDINGS: Option<&str> =
    Some("it classifies by comparing query embeddings with class embeddings");

/// How one metric-based method scores queries against a labelled support set.
pub trait Metric<T: Float>: Send + Sync {
    /// The method's name, as configs spell it.
    fn name(&self) -> &'static str;

    /// Query scores `[Nq, N]` (logits, or what the method predicts) from the support
    /// embeddings `zs [Ns, d]` with labels `sy` and the query embeddings `zq [Nq, d]`;
    /// `params` are all meta-parameters (the backbone's first, then the metric's own).
    fn scores(&self, params: &Params<T>, zs: &Tensor<T>, sy: &[usize], zq: &Tensor<T>)
        -> Tensor<T>;

    /// The training loss of the scores for query labels `qy` (default: cross-entropy).
    fn loss(&self, scores: &Tensor<T>, qy: &[usize]) -> Tensor<T> {
        scores.cross_entropy(qy)
    }

    /// Adjusts the mean meta-gradient before the optimizer step (default: nothing).
    fn mask_gradient(&self, _grads: &mut [Tensor<T>]) {}
}

/// A backbone with a [`Metric`] on its features.
pub struct MetricNet<M, B = Body> {
    /// The feature extractor.
    pub body: B,
    /// How queries are scored against the support set.
    pub metric: M,
}

/// A metric-based learner: backbone parameters `param/...`, then the metric's own.
pub type MetricLearner<T, M, B = Body> = MetaLearner<T, MetricNet<M, B>>;

/// A metric learner with Adam at `meta_lr` on the backbone's fresh parameters `param/...`
/// followed by the metric's own: `metric(&body, n_body, rng)` returns the metric and those
/// parameters (`n_body`, the number of backbone tensors, is where they start).
pub fn metric_learner<T: Float, M: Metric<T>, B: Backbone>(
    body: B,
    meta_lr: f64,
    rng: &mut dyn rand::RngCore,
    metric: impl FnOnce(&B, usize, &mut dyn rand::RngCore) -> (M, Params<T>),
) -> MetricLearner<T, M, B> {
    let params = body.init_params::<T>(rng).prefixed("param/");
    let (metric, extra) = metric(&body, params.len(), rng);
    MetaLearner::adam(MetricNet { body, metric }, params.concat(&extra), meta_lr)
}

/// Embeds support and query in one batch; returns `(support, query)` embeddings.
pub fn embed_both<T: Float, B: Backbone>(
    body: &B,
    params: &Params<T>,
    sx: &Tensor<T>,
    qx: &Tensor<T>,
) -> (Tensor<T>, Tensor<T>) {
    let ns = sx.dim(0);
    let z = body.embed(params, &Tensor::concat(&[sx.clone(), qx.clone()], 0));
    let nq = z.dim(0) - ns;
    (z.narrow(0, 0, ns), z.narrow(0, ns, nq))
}

/// Cosine similarities `[Na, Nb]` between the rows of `a [Na, d]` and `b [Nb, d]`, each row
/// scaled to unit norm with `1e-8` added to its squared norm.
pub fn cosine_similarities<T: Float>(a: &Tensor<T>, b: &Tensor<T>) -> Tensor<T> {
    l2_normalize(a, 1e-8).matmul_nt(&l2_normalize(b, 1e-8))
}

/// Rows scaled to unit Euclidean norm: `z / sqrt(sum z^2 + eps)`.
pub fn l2_normalize<T: Float>(z: &Tensor<T>, eps: f64) -> Tensor<T> {
    z.div(&z.square().sum_axis(-1, true).add_scalar(eps).sqrt())
}

impl<M, B: Backbone> MetricNet<M, B> {
    /// The metric's scores for the queries `qx` against the support set `(sx, sy)`.
    fn scores<T: Float>(
        &self,
        params: &Params<T>,
        sx: &Tensor<T>,
        sy: &[usize],
        qx: &Tensor<T>,
    ) -> Tensor<T>
    where
        M: Metric<T>,
    {
        let (zs, zq) = embed_both(&self.body, params, sx, qx);
        self.metric.scores(params, &zs, sy, &zq)
    }
}

impl<T: Float, M: Metric<T>, B: Backbone> Method<T> for MetricNet<M, B> {
    fn name(&self) -> &'static str {
        self.metric.name()
    }

    fn training_noise(&self) -> bool {
        self.body.uses_training_noise()
    }

    fn batch_gradient(&self, params: &Params<T>, tasks: &[TaskData<T>]) -> MetaGradient<T> {
        let theta = params.requires_grad_();
        let name = self.metric.name();
        let (mut grads, stats) = mean_over_tasks(tasks, |t| {
            let sy = t.support_y.class_labels(name);
            let qy = t.query_y.class_labels(name);
            let out = self.scores(&theta, &t.support_x, sy, &t.query_x);
            let loss = self.metric.loss(&out, qy);
            TaskResult::from_loss(&loss, theta.tensors(), super::classes::accuracy(&out, qy))
        });
        self.metric.mask_gradient(&mut grads);
        (grads, stats)
    }

    fn predict(&self, p: &Params<T>, sx: &Tensor<T>, sy: &Target<T>, qx: &Tensor<T>) -> Tensor<T> {
        let sy = sy.class_labels(self.metric.name());
        crate::autodiff::no_grad(|| self.scores(p, sx, sy, qx))
    }

    /// The metric's own loss ([`Metric::loss`]: Relation Networks' squared error of scores).
    fn query_loss(&self, predictions: &Tensor<T>, target: &Target<T>) -> Tensor<T> {
        self.metric
            .loss(predictions, target.class_labels(self.metric.name()))
    }
}

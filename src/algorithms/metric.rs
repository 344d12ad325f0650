//! The shared shape of the metric-based methods (ProtoNet, Matching Networks, Relation
//! Networks, R2D2): embed support and query in one batch (so batch norm uses one set of
//! statistics, the same in training and prediction), score every query against the support
//! set with the method's [`Metric`], and meta-train the backbone (and the metric's own
//! parameters) on the query loss of those scores.

use super::learner::{MetaGradient, MetaLearner, Method};
use super::maml::TaskData;
use super::registry::{self, Body};
use super::Target;
use crate::nn::Params;
use crate::tensor::{Float, Tensor};

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
pub struct MetricNet<M> {
    pub(crate) body: Body,
    pub(crate) metric: M,
}

/// A metric-based learner: backbone parameters `param/...`, then the metric's own.
pub type MetricLearner<T, M> = MetaLearner<T, MetricNet<M>>;

/// A metric learner with Adam at `meta_lr` on the backbone's fresh `param/...` followed by
/// `extra` (the metric's own parameters, `body` passed for their shapes).
pub(crate) fn metric_learner<T: Float, M: Metric<T>>(
    body: Body,
    meta_lr: f64,
    rng: &mut dyn rand::RngCore,
    metric: impl FnOnce(&Body, usize, &mut dyn rand::RngCore) -> (M, Params<T>),
) -> MetricLearner<T, M> {
    let params = registry::prefixed(&body.init::<T>(rng), "param/");
    let (metric, extra) = metric(&body, params.len(), rng);
    let params = registry::concat_params(&params, &extra);
    MetaLearner::adam(MetricNet { body, metric }, params, meta_lr)
}

/// Embeds support and query in one batch; returns `(support, query)` embeddings.
pub(crate) fn embed_both<T: Float>(
    body: &Body,
    params: &Params<T>,
    sx: &Tensor<T>,
    qx: &Tensor<T>,
) -> (Tensor<T>, Tensor<T>) {
    let ns = sx.dim(0);
    let z = body.embed(params, &registry::cat_batch(sx, qx));
    let nq = z.dim(0) - ns;
    (z.narrow(0, 0, ns), z.narrow(0, ns, nq))
}

impl<M> MetricNet<M> {
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

impl<T: Float, M: Metric<T>> Method<T> for MetricNet<M> {
    fn name(&self) -> &'static str {
        self.metric.name()
    }

    fn batch_gradient(&self, params: &Params<T>, tasks: &[TaskData<T>]) -> MetaGradient<T> {
        let theta = params.requires_grad_();
        let name = self.metric.name();
        let (mut grads, stats) = registry::mean_over_tasks(tasks, |t| {
            let sy = registry::class_labels(&t.support_y, name);
            let qy = registry::class_labels(&t.query_y, name);
            let out = self.scores(&theta, &t.support_x, sy, &t.query_x);
            let loss = self.metric.loss(&out, qy);
            registry::task_result(&loss, theta.tensors(), registry::accuracy(&out, qy))
        });
        self.metric.mask_gradient(&mut grads);
        (grads, stats)
    }

    fn predict(&self, p: &Params<T>, sx: &Tensor<T>, sy: &Target<T>, qx: &Tensor<T>) -> Tensor<T> {
        let sy = registry::class_labels(sy, self.metric.name());
        crate::autodiff::no_grad(|| self.scores(p, sx, sy, qx))
    }
}

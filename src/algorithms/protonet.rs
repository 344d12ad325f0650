//! Prototypical Networks (Snell, Swersky & Zemel 2017): each class is the mean of its support
//! embeddings; query logits are minus the squared Euclidean distances to the prototypes.
//!
//! Support and query are embedded in one batch (so batch norm uses one set of statistics, the
//! same in training and prediction).

use super::learner::{FewShotLearner, StepStats};
use super::maml::TaskData;
use super::registry::{self, Body, MetaState, TaskResult};
use super::Target;
use crate::nn::Params;
use crate::tensor::{Float, Tensor};

/// `-||q_i - p_c||^2` for queries `q [Nq, d]` and prototypes `p [N, d]`: `[Nq, N]`.
pub fn neg_sq_distances<T: Float>(q: &Tensor<T>, p: &Tensor<T>) -> Tensor<T> {
    let qq = q.square().sum_axis(-1, true); // [Nq, 1]
    let pp = p.square().sum_axis(-1, false).unsqueeze(0); // [1, N]
    q.matmul_nt(p).mul_scalar(2.0).sub(&qq).sub(&pp)
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

/// The Prototypical Networks learner.
pub struct ProtoNet<T: Float> {
    body: Body,
    meta: MetaState<T>,
}

impl<T: Float> ProtoNet<T> {
    /// A learner with a fresh backbone.
    pub fn new(body: Body, meta_lr: f64, rng: &mut dyn rand::RngCore) -> Self {
        let params = registry::prefixed(&body.init::<T>(rng), "param/");
        ProtoNet {
            body,
            meta: MetaState::adam("protonet", params, meta_lr),
        }
    }

    fn logits(
        &self,
        params: &Params<T>,
        sx: &Tensor<T>,
        sy: &[usize],
        qx: &Tensor<T>,
    ) -> Tensor<T> {
        let (zs, zq) = embed_both(&self.body, params, sx, qx);
        let protos = registry::class_means(&zs, sy, registry::num_classes(sy));
        neg_sq_distances(&zq, &protos)
    }
}

impl<T: Float> FewShotLearner<T> for ProtoNet<T> {
    fn name(&self) -> &'static str {
        "protonet"
    }

    fn meta_train_step(
        &mut self,
        tasks: &[TaskData<T>],
        _rng: &mut dyn rand::RngCore,
    ) -> StepStats {
        let theta = self.meta.leaves();
        let (grads, stats) = registry::mean_over_tasks(tasks, |t| {
            let sy = registry::class_labels(&t.support_y, "protonet");
            let qy = registry::class_labels(&t.query_y, "protonet");
            let out = self.logits(&theta, &t.support_x, sy, &t.query_x);
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
        let sy = registry::class_labels(support_y, "protonet");
        crate::autodiff::no_grad(|| self.logits(&self.meta.params, support_x, sy, query_x))
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

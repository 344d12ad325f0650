//! Relation Networks (Sung, Yang, Zhang, Xiang, Torr & Hospedales 2018): a learned relation
//! module scores each (query, class) pair in (0, 1); training regresses the scores onto the
//! one-hot labels with mean squared error.
//!
//! A class's embedding is the sum of its support embeddings (as the paper, for K > 1). The
//! backbone's features are flattened, so the relation module is an MLP
//! `[2d] -> (linear -> batch norm -> ReLU) per hidden width -> linear 1 -> sigmoid`: the paper's
//! relation blocks are conv -> batch norm -> ReLU on 5x5 maps of 84x84 inputs; on 28x28
//! Omniglot with four poolings the maps are 1x1, where a conv block is a fully connected layer.
//! Batch norm (batch statistics over the `Nq * N` pairs) also keeps the ReLUs from dying, which
//! otherwise collapses the scores to a constant early in training.
//! [`FewShotLearner::predict`] returns the scores `[Nq, N]`.
//!
//! State names: `param/...` (backbone), `relation/...` (relation module), `opt/...`.

use super::config::RelationConfig;
use super::learner::{FewShotLearner, StepStats};
use super::maml::TaskData;
use super::protonet::embed_both;
use super::registry::{self, Body, MetaState, TaskResult};
use super::Target;
use crate::nn::Params;
use crate::tensor::{Float, Tensor};

/// The Relation Networks learner.
pub struct RelationNet<T: Float> {
    body: Body,
    hidden: usize,
    meta: MetaState<T>,
    n_body: usize,
}

impl<T: Float> RelationNet<T> {
    /// A learner with a fresh backbone and relation module.
    pub fn new(
        config: &RelationConfig,
        body: Body,
        meta_lr: f64,
        rng: &mut dyn rand::RngCore,
    ) -> Self {
        let d = body.feature_dim();
        let b = registry::prefixed(&body.init::<T>(rng), "param/");
        let mut r = Params::new();
        let mut fan_in = 2 * d;
        for (i, &h) in config.hidden.iter().enumerate() {
            r.push(
                format!("relation/l{i}.weight"),
                registry::kaiming_uniform(&[h, fan_in], fan_in, rng),
            );
            r.push(
                format!("relation/l{i}.bias"),
                registry::kaiming_uniform(&[h], fan_in, rng),
            );
            r.push(format!("relation/l{i}.bn.weight"), Tensor::ones(&[h]));
            r.push(format!("relation/l{i}.bn.bias"), Tensor::zeros(&[h]));
            fan_in = h;
        }
        r.push(
            "relation/out.weight",
            registry::kaiming_uniform(&[1, fan_in], fan_in, rng),
        );
        r.push(
            "relation/out.bias",
            registry::kaiming_uniform(&[1], fan_in, rng),
        );
        RelationNet {
            n_body: b.len(),
            body,
            hidden: config.hidden.len(),
            meta: MetaState::adam("relation", registry::concat_params(&b, &r), meta_lr),
        }
    }

    /// Relation scores `[Nq, N]` in (0, 1).
    fn scores(
        &self,
        params: &Params<T>,
        sx: &Tensor<T>,
        sy: &[usize],
        qx: &Tensor<T>,
    ) -> Tensor<T> {
        let (zs, zq) = embed_both(&self.body, params, sx, qx);
        let n = registry::num_classes(sy);
        let classes = registry::one_hot::<T>(sy, n).matmul_tn(&zs); // [N, d], sums
        let nq = zq.dim(0);
        let qi: Vec<usize> = (0..nq * n).map(|k| k / n).collect();
        let ci: Vec<usize> = (0..nq * n).map(|k| k % n).collect();
        let pairs = Tensor::concat(&[zq.index_select(0, &qi), classes.index_select(0, &ci)], 1);
        let p = &params.tensors()[self.n_body..];
        let mut h = pairs;
        for l in 0..self.hidden {
            let k = 4 * l;
            h = h
                .linear(&p[k], Some(&p[k + 1]))
                .batch_norm(&p[k + 2], &p[k + 3], 1e-5)
                .relu();
        }
        let k = 4 * self.hidden;
        h.linear(&p[k], Some(&p[k + 1])).sigmoid().reshape(&[nq, n])
    }
}

impl<T: Float> FewShotLearner<T> for RelationNet<T> {
    fn name(&self) -> &'static str {
        "relation"
    }

    fn meta_train_step(
        &mut self,
        tasks: &[TaskData<T>],
        _rng: &mut dyn rand::RngCore,
    ) -> StepStats {
        let theta = self.meta.leaves();
        let (grads, stats) = registry::mean_over_tasks(tasks, |t| {
            let sy = registry::class_labels(&t.support_y, "relation");
            let qy = registry::class_labels(&t.query_y, "relation");
            let out = self.scores(&theta, &t.support_x, sy, &t.query_x);
            let loss = out.mse_loss(&registry::one_hot(qy, out.dim(1)));
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
        let sy = registry::class_labels(support_y, "relation");
        crate::autodiff::no_grad(|| self.scores(&self.meta.params, support_x, sy, query_x))
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

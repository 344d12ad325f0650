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
//! [`FewShotLearner::predict`](super::FewShotLearner::predict) returns the scores `[Nq, N]`.
//!
//! State names: `param/...` (backbone), `relation/...` (relation module), `opt/...`.

use super::config::RelationConfig;
use super::metric::{metric_learner, Metric, MetricLearner};
use super::registry::{self, Body};
use crate::nn::Params;
use crate::tensor::{Float, Tensor};

/// Relation Networks' metric: the relation module's scores `[Nq, N]` in (0, 1).
pub struct RelationModule {
    hidden: usize,
    n_body: usize,
}

impl<T: Float> Metric<T> for RelationModule {
    fn name(&self) -> &'static str {
        "relation"
    }

    fn scores(
        &self,
        params: &Params<T>,
        zs: &Tensor<T>,
        sy: &[usize],
        zq: &Tensor<T>,
    ) -> Tensor<T> {
        let n = registry::num_classes(sy);
        let classes = registry::one_hot::<T>(sy, n).matmul_tn(zs); // [N, d], sums
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

    /// Mean squared error of the scores against the one-hot labels.
    fn loss(&self, scores: &Tensor<T>, qy: &[usize]) -> Tensor<T> {
        scores.mse_loss(&registry::one_hot(qy, scores.dim(1)))
    }
}

/// The Relation Networks learner.
pub type RelationNet<T> = MetricLearner<T, RelationModule>;

impl<T: Float> RelationNet<T> {
    /// A learner with a fresh backbone and relation module.
    pub fn new(
        config: &RelationConfig,
        body: Body,
        meta_lr: f64,
        rng: &mut dyn rand::RngCore,
    ) -> Self {
        metric_learner(body, meta_lr, rng, |body, n_body, rng| {
            let mut r = Params::new();
            let mut fan_in = 2 * body.feature_dim();
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
            let hidden = config.hidden.len();
            (RelationModule { hidden, n_body }, r)
        })
    }
}

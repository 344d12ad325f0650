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

use super::algorithm::{Algorithm, Learner, LearnerParts};
use super::checks::{ParamCheck, MAX_WIDTH};
use super::classes::{num_classes, one_hot};
use super::error::AlgorithmError;
use super::metric::{metric_learner, Metric, MetricLearner, COMPARES_CLASS_EMBEDDINGS};
use crate::nn::init::push_weight_and_bias;
use crate::nn::{Backbone, Body, Params};
use crate::tensor::{Float, Tensor};
use serde::{Deserialize, Serialize};

/// Relation Networks: a learned relation module scores the concatenation of a query
/// embedding and a class embedding (the sum of its support embeddings) in (0, 1), trained with
/// mean squared error against the one-hot labels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelationConfig {
    /// Hidden widths of the relation module, each linear -> batch norm -> ReLU (`[64, 8]`:
    /// Sung et al.'s 64-filter relation block, as a fully connected layer on flattened
    /// features, then their 8-unit layer).
    pub hidden: Vec<usize>,
}

impl Default for RelationConfig {
    fn default() -> Self {
        RelationConfig {
            hidden: vec![64, 8],
        }
    }
}

/// Relation Networks in the algorithm table: classification only, no head.
pub struct RelationAlgorithm;

impl Algorithm for RelationAlgorithm {
    type Config = RelationConfig;
    const NAME: &'static str = "relation";
    const CLASSIFIES_ONLY: Option<&'static str> = COMPARES_CLASS_EMBEDDINGS;

    /// Every hidden width in [1, 65536].
    fn validate(config: &RelationConfig) -> Result<(), AlgorithmError> {
        if config.hidden.iter().all(|w| (1..=MAX_WIDTH).contains(w)) {
            return Ok(());
        }
        Err(ParamCheck::new(Self::NAME).invalid(
            "hidden",
            format!("{:?}", config.hidden),
            "widths must be integers in [1, 65536]",
        ))
    }

    fn build<T: Float, B: Backbone>(c: &RelationConfig, p: LearnerParts<B>) -> Learner<T> {
        Box::new(RelationNet::<T, B>::new(c, p.body, p.meta_lr, p.rng))
    }
}

/// Relation Networks' metric: the relation module's scores `[Nq, N]` in (0, 1).
pub struct RelationModule {
    hidden: usize,
    n_body: usize,
}

impl RelationModule {
    /// Every (query, class) pair's features `[Nq * N, 2d]`: the query's embedding, then the
    /// class's (the sum of its support embeddings), query-major.
    fn pairs<T: Float>(zs: &Tensor<T>, sy: &[usize], zq: &Tensor<T>) -> Tensor<T> {
        let n = num_classes(sy);
        let classes = one_hot::<T>(sy, n).matmul_tn(zs); // [N, d], sums
        let nq = zq.dim(0);
        let qi: Vec<usize> = (0..nq * n).map(|k| k / n).collect();
        let ci: Vec<usize> = (0..nq * n).map(|k| k % n).collect();
        Tensor::concat(&[zq.index_select(0, &qi), classes.index_select(0, &ci)], 1)
    }

    /// The relation module's fresh parameters on pairs of `2 * feature_dim` features:
    /// `relation/l{i}.{weight,bias,bn.weight,bn.bias}` per hidden width, then
    /// `relation/out.{weight,bias}`.
    fn init<T: Float>(
        hidden: &[usize],
        feature_dim: usize,
        rng: &mut dyn rand::RngCore,
    ) -> Params<T> {
        let mut r = Params::new();
        let mut fan_in = 2 * feature_dim;
        for (i, &h) in hidden.iter().enumerate() {
            push_weight_and_bias(&mut r, &format!("relation/l{i}."), &[h, fan_in], rng);
            r.push(format!("relation/l{i}.bn.weight"), Tensor::ones(&[h]));
            r.push(format!("relation/l{i}.bn.bias"), Tensor::zeros(&[h]));
            fan_in = h;
        }
        push_weight_and_bias(&mut r, "relation/out.", &[1, fan_in], rng);
        r
    }
}

impl<T: Float> Metric<T> for RelationModule {
    fn name(&self) -> &'static str {
        RelationAlgorithm::NAME
    }

    fn scores(
        &self,
        params: &Params<T>,
        zs: &Tensor<T>,
        sy: &[usize],
        zq: &Tensor<T>,
    ) -> Tensor<T> {
        let (nq, n) = (zq.dim(0), num_classes(sy));
        let p = &params.tensors()[self.n_body..];
        let mut h = Self::pairs(zs, sy, zq);
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
        scores.mse_loss(&one_hot(qy, scores.dim(1)))
    }
}

/// The Relation Networks learner.
pub type RelationNet<T, B = Body> = MetricLearner<T, RelationModule, B>;

impl<T: Float, B: Backbone> RelationNet<T, B> {
    /// A learner with a fresh backbone and relation module.
    pub fn new(
        config: &RelationConfig,
        body: B,
        meta_lr: f64,
        rng: &mut dyn rand::RngCore,
    ) -> Self {
        metric_learner(body, meta_lr, rng, |body, n_body, rng| {
            let params = RelationModule::init(&config.hidden, body.feature_dim(), rng);
            let hidden = config.hidden.len();
            (RelationModule { hidden, n_body }, params)
        })
    }
}

//! Relation Networks (Sung, Yang, Zhang, Xiang, Torr & Hospedales 2018): a learned relation
//! module scores each (query, class) pair in (0, 1); training regresses the scores onto the
//! one-hot labels with mean squared error.
//!
//! A class's embedding is the sum of its support embeddings (as the paper, for K > 1). The
//! relation module takes the pair's feature maps concatenated over channels through
//! `conv_blocks` blocks `conv 3x3 pad 1 -> batch norm -> ReLU -> max-pool 2` (the paper: two
//! blocks of 64 filters, on the 5x5 maps of a Conv-4 that pools only in its first two blocks),
//! flattens them, then `(linear -> batch norm -> ReLU)` per hidden width (the paper: one of 8,
//! without batch norm) and `linear 1 -> sigmoid`. With `conv_blocks = 0` the module is that
//! MLP on the flattened features (on 28x28 Omniglot through a Conv-4 that pools four times the
//! maps are 1x1, where a conv block is a fully connected layer). Batch norm (batch statistics
//! over the `Nq * N` pairs) also keeps the hidden ReLUs from dying, which otherwise collapses
//! the scores to a constant early in training.
//!
//! The first conv block convolves the concatenation `[query; class]` as
//! `conv(query, W_q) + conv(class, W_c)` with `W = [W_q | W_c]` split over input channels: the
//! same sum, from `Nq + N` convolved maps instead of `Nq * N`.
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
    /// Conv blocks of the relation module on the pairs' feature maps (0: none, the module is
    /// an MLP on flattened features; Sung et al.: 2). Each halves the maps, so the backbone's
    /// must be at least `2^conv_blocks` wide.
    pub conv_blocks: usize,
    /// Filters of each relation conv block (64).
    pub filters: usize,
    /// Hidden widths of the fully connected part, each linear -> batch norm -> ReLU (`[64, 8]`:
    /// Sung et al.'s 64-filter relation block, as a fully connected layer on flattened
    /// features, then their 8-unit layer; `[8]` after conv blocks).
    pub hidden: Vec<usize>,
}

impl Default for RelationConfig {
    fn default() -> Self {
        RelationConfig {
            conv_blocks: 0,
            filters: 64,
            hidden: vec![64, 8],
        }
    }
}

/// The most relation conv blocks a config may ask for.
const MAX_RELATION_BLOCKS: usize = 8;

/// Relation Networks in the algorithm table: classification only, no head.
pub struct RelationAlgorithm;

impl Algorithm for RelationAlgorithm {
    type Config = RelationConfig;
    const NAME: &'static str = "relation";
    const CLASSIFIES_ONLY: Option<&'static str> = COMPARES_CLASS_EMBEDDINGS;

    /// Every hidden width and `filters` in [1, 65536], `conv_blocks` in [0, 8].
    fn validate(config: &RelationConfig) -> Result<(), AlgorithmError> {
        let check = ParamCheck::new(Self::NAME);
        if !config.hidden.iter().all(|w| (1..=MAX_WIDTH).contains(w)) {
            let value = format!("{:?}", config.hidden);
            return Err(check.invalid("hidden", value, "widths must be integers in [1, 65536]"));
        }
        check.count(
            "filters",
            config.filters,
            MAX_WIDTH,
            "must be an integer in [1, 65536]",
        )?;
        if config.conv_blocks > MAX_RELATION_BLOCKS {
            let value = config.conv_blocks.to_string();
            return Err(check.invalid("conv_blocks", value, "must be an integer in [0, 8]"));
        }
        Ok(())
    }

    /// With conv blocks, the backbone's features must be maps at least `2^conv_blocks` wide.
    fn check_backbone<B: Backbone>(c: &RelationConfig, body: &B) -> Result<(), AlgorithmError> {
        if c.conv_blocks == 0 {
            return Ok(());
        }
        let min_side = 1usize << c.conv_blocks;
        let maps = match body.feature_map() {
            Some([_, h, w]) if h.min(w) >= min_side => return Ok(()),
            Some([ch, h, w]) => format!("{ch}x{h}x{w} feature maps"),
            None => "features that are not maps".into(),
        };
        Err(ParamCheck::new(Self::NAME).invalid(
            "conv_blocks",
            format!("{} on the backbone's {maps} ({})", c.conv_blocks, body.description()),
            "each relation conv block halves the maps, so they must be at least 2^conv_blocks wide: downsample less in the backbone (Conv-4: `backbone.downsample_blocks = 2`), use flattened ResNet-12 features, or set `conv_blocks = 0`",
        ))
    }

    fn build<T: Float, B: Backbone>(c: &RelationConfig, p: LearnerParts<B>) -> Learner<T> {
        Box::new(RelationNet::<T, B>::new(c, p.body, p.meta_lr, p.rng))
    }
}

/// Relation Networks' metric: the relation module's scores `[Nq, N]` in (0, 1).
pub struct RelationModule {
    /// Relation conv blocks (0: an MLP on flattened features).
    conv_blocks: usize,
    /// The backbone's feature maps `[channels, height, width]` (used with conv blocks).
    map: [usize; 3],
    hidden: usize,
    n_body: usize,
}

/// The (query, class) index of every pair, query-major: `(k / N, k % N)` for `k < Nq * N`.
fn pair_indices(nq: usize, n: usize) -> (Vec<usize>, Vec<usize>) {
    (
        (0..nq * n).map(|k| k / n).collect(),
        (0..nq * n).map(|k| k % n).collect(),
    )
}

/// Each class's embedding `[N, d]`: the sum of its support embeddings `zs`.
fn class_sums<T: Float>(zs: &Tensor<T>, sy: &[usize], n: usize) -> Tensor<T> {
    one_hot::<T>(sy, n).matmul_tn(zs)
}

impl RelationModule {
    /// Every (query, class) pair's features `[Nq * N, 2d]`: the query's embedding, then the
    /// class's (the sum of its support embeddings), query-major.
    fn pairs<T: Float>(zs: &Tensor<T>, sy: &[usize], zq: &Tensor<T>) -> Tensor<T> {
        let n = num_classes(sy);
        let classes = class_sums(zs, sy, n);
        let (qi, ci) = pair_indices(zq.dim(0), n);
        Tensor::concat(&[zq.index_select(0, &qi), classes.index_select(0, &ci)], 1)
    }

    /// Every pair's maps through the conv blocks `p[..4 * conv_blocks]`, flattened
    /// `[Nq * N, filters * s * s]`; the first block's convolution is split over the query's and
    /// the class's channels (module doc).
    fn conv_pairs<T: Float>(
        &self,
        p: &[Tensor<T>],
        zs: &Tensor<T>,
        sy: &[usize],
        zq: &Tensor<T>,
    ) -> Tensor<T> {
        let [c, h, w] = self.map;
        let (n, nq) = (num_classes(sy), zq.dim(0));
        let classes = class_sums(zs, sy, n).reshape(&[n, c, h, w]);
        let queries = zq.reshape(&[nq, c, h, w]);
        let from_query = queries.conv2d(&p[0].narrow(1, 0, c), Some(&p[1]), 1, 1);
        let from_class = classes.conv2d(&p[0].narrow(1, c, c), None, 1, 1);
        let (qi, ci) = pair_indices(nq, n);
        let sum = from_query
            .index_select(0, &qi)
            .add(&from_class.index_select(0, &ci));
        let mut maps = sum.batch_norm_relu_max_pool2(&p[2], &p[3], 1e-5);
        for k in (4..4 * self.conv_blocks).step_by(4) {
            maps = maps
                .conv2d(&p[k], Some(&p[k + 1]), 1, 1)
                .batch_norm_relu_max_pool2(&p[k + 2], &p[k + 3], 1e-5);
        }
        maps.flatten_from1()
    }

    /// The relation module's fresh parameters: with conv blocks on maps `[c, h, w]`,
    /// `relation/c{i}.conv.{weight,bias}`, `relation/c{i}.bn.{weight,bias}` per block (the
    /// first on `2c` channels), then `relation/l{i}.{weight,bias,bn.weight,bn.bias}` per hidden
    /// width (on the flattened output, or on `2 * feature_dim` features without conv blocks),
    /// then `relation/out.{weight,bias}`.
    fn init<T: Float>(
        config: &RelationConfig,
        map: [usize; 3],
        feature_dim: usize,
        rng: &mut dyn rand::RngCore,
    ) -> Params<T> {
        let mut r = Params::new();
        let mut fan_in = 2 * feature_dim;
        let [mut channels, mut side_h, mut side_w] = [2 * map[0], map[1], map[2]];
        for i in 0..config.conv_blocks {
            let f = config.filters;
            push_weight_and_bias(
                &mut r,
                &format!("relation/c{i}.conv."),
                &[f, channels, 3, 3],
                rng,
            );
            r.push(format!("relation/c{i}.bn.weight"), Tensor::ones(&[f]));
            r.push(format!("relation/c{i}.bn.bias"), Tensor::zeros(&[f]));
            (channels, side_h, side_w) = (f, side_h / 2, side_w / 2);
            fan_in = f * side_h * side_w;
        }
        for (i, &h) in config.hidden.iter().enumerate() {
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
        let mut h = match self.conv_blocks {
            0 => Self::pairs(zs, sy, zq),
            _ => self.conv_pairs(p, zs, sy, zq),
        };
        let first = 4 * self.conv_blocks;
        for l in 0..self.hidden {
            let k = first + 4 * l;
            h = h
                .linear(&p[k], Some(&p[k + 1]))
                .batch_norm(&p[k + 2], &p[k + 3], 1e-5)
                .relu();
        }
        let k = first + 4 * self.hidden;
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
    ///
    /// Panics when `config.conv_blocks > 0` and the backbone's features are not maps at least
    /// `2^conv_blocks` wide ([`RelationAlgorithm`]'s `check_backbone` turns that into an error
    /// for configs).
    pub fn new(
        config: &RelationConfig,
        body: B,
        meta_lr: f64,
        rng: &mut dyn rand::RngCore,
    ) -> Self {
        if let Err(e) = RelationAlgorithm::check_backbone(config, &body) {
            panic!("{e}");
        }
        metric_learner(body, meta_lr, rng, |body, n_body, rng| {
            let d = body.feature_dim();
            let map = body.feature_map().unwrap_or([d, 1, 1]);
            let params = RelationModule::init(config, map, d, rng);
            let module = RelationModule {
                conv_blocks: config.conv_blocks,
                map,
                hidden: config.hidden.len(),
                n_body,
            };
            (module, params)
        })
    }
}

//! Relation Networks with the paper's relation module (Sung et al. 2018): a Conv-4 that
//! downsamples only in its first blocks keeps feature maps, and the relation module convolves
//! every (query, class) pair's concatenated maps. Checked against an independent composition of
//! plain ops (the pair maps concatenated explicitly, unfused batch norm / ReLU / max-pool), by
//! finite differences, and for the errors that name the keys; its reported query loss is the
//! squared error it trains on.

mod common;

use metalearn::algorithms::relation::{RelationConfig, RelationNet};
use metalearn::algorithms::{
    build_learner_generic, AlgorithmConfig, BackboneConfig, Conv4Backbone, Target, TaskKind,
};
use metalearn::autodiff::check::assert_gradients;
use metalearn::data::seeded_rng;
use metalearn::fewshot::RunConfig;
use metalearn::nn::{Backbone, Body, Params};
use metalearn::tensor::Tensor;
use std::path::Path;

/// A Conv-4 of 3 filters on 16x16 images that downsamples in its first 2 of 3 blocks:
/// 16 -> 8 -> 4 -> 4, maps 3x4x4.
fn partial_conv4() -> Conv4Backbone {
    Conv4Backbone {
        in_channels: 1,
        filters: 3,
        image_size: 16,
        blocks: 3,
        downsample_blocks: Some(2),
        ..Conv4Backbone::default()
    }
}

/// Relation module: 2 conv blocks of 4 filters (4x4 -> 2x2 -> 1x1), one hidden layer of 5.
fn relation_config() -> RelationConfig {
    RelationConfig {
        conv_blocks: 2,
        filters: 4,
        hidden: vec![5],
    }
}

/// `conv 3x3 pad 1 -> batch norm -> ReLU`, then max-pool 2 when `pool`, with `p[k..k + 4]`.
fn block(x: &Tensor<f64>, p: &[Tensor<f64>], k: usize, pool: bool) -> Tensor<f64> {
    let h = x
        .conv2d(&p[k], Some(&p[k + 1]), 1, 1)
        .batch_norm(&p[k + 2], &p[k + 3], 1e-5)
        .relu();
    if pool {
        h.max_pool2d(2, 2)
    } else {
        h
    }
}

/// The relation scores `[Nq, N]` composed from plain ops: the backbone's blocks, class maps
/// summed over their shots, every pair's maps concatenated over channels, the relation blocks,
/// the hidden layer and the sigmoid output.
fn oracle_scores(
    state: &Params<f64>,
    sx: &Tensor<f64>,
    sy: &[usize],
    qx: &Tensor<f64>,
) -> Tensor<f64> {
    let body: Vec<Tensor<f64>> = (0..12).map(|i| state.at(i).clone()).collect();
    let rel: Vec<Tensor<f64>> = state
        .iter()
        .filter(|(n, _)| n.starts_with("relation/"))
        .map(|(_, t)| t.clone())
        .collect();
    let mut h = Tensor::concat(&[sx.clone(), qx.clone()], 0);
    for b in 0..3 {
        h = block(&h, &body, 4 * b, b < 2);
    }
    let ns = sx.dim(0);
    let n = sy.iter().max().unwrap() + 1;
    let mut pairs = Vec::new();
    for q in 0..qx.dim(0) {
        let query = h.narrow(0, ns + q, 1);
        for c in 0..n {
            let shots: Vec<usize> = (0..ns).filter(|&i| sy[i] == c).collect();
            let class = h.index_select(0, &shots).sum_axis(0, true);
            pairs.push(Tensor::concat(&[query.clone(), class], 1));
        }
    }
    let mut r = Tensor::concat(&pairs, 0);
    r = block(&r, &rel, 0, true);
    r = block(&r, &rel, 4, true).flatten_from1();
    r = r
        .linear(&rel[8], Some(&rel[9]))
        .batch_norm(&rel[10], &rel[11], 1e-5)
        .relu();
    r.linear(&rel[12], Some(&rel[13]))
        .sigmoid()
        .reshape(&[qx.dim(0), n])
}

#[test]
fn partial_downsampling_keeps_the_maps_of_the_last_blocks() {
    let body = Body::from_config(&BackboneConfig::Conv4(partial_conv4())).unwrap();
    assert_eq!(body.feature_map(), Some([3, 4, 4]));
    assert_eq!(body.feature_dim(), 48);
    assert!(body.description().contains("in the first 2 blocks"));
    // The shipped Relation Networks configs: 28 -> 14 -> 7 -> 7 -> 7.
    let paper = Conv4Backbone {
        downsample_blocks: Some(2),
        ..Conv4Backbone::default()
    };
    let body = Body::from_config(&BackboneConfig::Conv4(paper)).unwrap();
    assert_eq!(body.feature_map(), Some([64, 7, 7]));
    let full = Body::from_config(&BackboneConfig::Conv4(Conv4Backbone::default())).unwrap();
    assert_eq!(full.feature_map(), Some([64, 1, 1]));
}

#[test]
fn relation_conv_scores_match_the_explicit_pair_concatenation() {
    let mut rng = seeded_rng(5);
    let alg = AlgorithmConfig::Relation(relation_config());
    let backbone = BackboneConfig::Conv4(partial_conv4());
    let task = TaskKind::Classification { n_way: 3 };
    let learner = build_learner_generic::<f64>(&alg, &backbone, task, 1e-3, &mut rng).unwrap();
    let state = learner.state();
    assert!(state.get("relation/c1.bn.bias").is_some());
    assert_eq!(
        state.get("relation/c0.conv.weight").unwrap().shape(),
        [4, 6, 3, 3]
    );
    assert_eq!(state.get("relation/l0.weight").unwrap().shape(), [5, 4]);
    // 3 classes with 2, 1 and 2 shots (a class's maps are the sum of its shots), 4 queries.
    let sy = vec![0, 0, 1, 2, 2];
    let sx = Tensor::<f64>::rand_normal(&[5, 1, 16, 16], 0.0, 1.0, &mut rng);
    let qx = Tensor::<f64>::rand_normal(&[4, 1, 16, 16], 0.0, 1.0, &mut rng);
    let got = learner.predict(&sx, &Target::Classes(sy.clone()), &qx);
    let want = oracle_scores(&state, &sx, &sy, &qx);
    assert_eq!(got.shape(), [4, 3]);
    let err = got
        .data()
        .iter()
        .zip(want.data().iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(err < 1e-12, "max difference {err}: {got:?} vs {want:?}");
    // Validation and `eval` report the loss training minimises: the squared error of the scores
    // against one-hot labels, here computed by hand.
    let qy = vec![0, 2, 1, 0];
    let mut sq = 0.0;
    for (k, s) in want.data().iter().enumerate() {
        let one = if qy[k / 3] == k % 3 { 1.0 } else { 0.0 };
        sq += (s - one) * (s - one);
    }
    let reported = learner.query_loss(&got, &Target::Classes(qy)).item();
    assert!(
        (reported - sq / 12.0).abs() < 1e-12,
        "{reported} vs {}",
        sq / 12.0
    );
}

#[test]
fn relation_conv_module_passes_gradcheck_and_gradgradcheck() {
    let mut rng = seeded_rng(6);
    let body = Body::from_config(&BackboneConfig::Conv4(partial_conv4())).unwrap();
    let learner = RelationNet::<f64>::new(&relation_config(), body, 1e-3, &mut rng);
    let net = learner.method();
    let params = learner.params().clone();
    // Features as the backbone gives them: 3 support (classes 0, 1, 1), 2 queries, 3x4x4 maps.
    let zs = Tensor::<f64>::rand_normal(&[3, 48], 0.0, 1.0, &mut rng);
    let zq = Tensor::<f64>::rand_normal(&[2, 48], 0.0, 1.0, &mut rng);
    let sy = [0, 1, 1];
    let n_body = net.body.num_params();
    let inputs = [
        params.tensors()[n_body..].to_vec(),
        vec![zs.clone(), zq.clone()],
    ]
    .concat();
    let f = |xs: &[Tensor<f64>]| {
        let (rel, z) = xs.split_at(xs.len() - 2);
        let all = [params.tensors()[..n_body].to_vec(), rel.to_vec()].concat();
        let p = params.with_tensors(all);
        use metalearn::algorithms::Metric;
        net.metric.scores(&p, &z[0], &sy, &z[1])
    };
    assert_gradients("relation conv module", &f, &inputs);
}

/// The error text of a relation config with these `[algorithm]` and Conv-4 `[backbone]` lines.
fn config_error(algorithm: &str, backbone: &str) -> String {
    let algorithm = format!("name = \"relation\"\n{algorithm}");
    common::omniglot_config_error(&algorithm, &format!("name = \"conv4\"\n{backbone}"))
}

#[test]
fn relation_conv_blocks_and_downsampling_errors_name_the_keys() {
    let cases = [
        // Four poolings leave 1x1 maps: no room for two halving blocks.
        (
            "conv_blocks = 2",
            "",
            &["conv_blocks", "64x1x1", "downsample_blocks"][..],
        ),
        ("conv_blocks = 9", "", &["conv_blocks", "[0, 8]"]),
        ("filters = 0", "", &["filters"]),
        (
            "",
            "downsample_blocks = 5",
            &["`backbone.downsample_blocks` = 5", "[0, 4]"],
        ),
        (
            "",
            "image_size = 2\ndownsample_blocks = 2",
            &["`backbone.image_size`", "[4, 4096]"],
        ),
    ];
    for (algorithm, backbone, wants) in cases {
        let err = config_error(algorithm, backbone);
        for w in wants {
            assert!(
                err.contains(w),
                "{algorithm:?} / {backbone:?}: {err:?} lacks {w:?}"
            );
        }
    }
    // With two downsampling blocks the maps are 7x7: the same module is accepted.
    let text = "[algorithm]\nname = \"relation\"\nconv_blocks = 2\n\n[backbone]\nname = \"conv4\"\ndownsample_blocks = 2\n\n[data]\ndataset = \"omniglot\"\n";
    RunConfig::from_toml_str(text, Path::new("ok.toml")).unwrap();
}

//! A method defined outside the crate through the public API (examples/custom_algorithm.rs:
//! cosine centroids, an `Algorithm` built with `build_with`) scores a hand-computed case
//! exactly, refuses a bad config and regression like the crate's own methods, and learns:
//! its loss falls and its held-out accuracy rises well above chance.

#[path = "../examples/custom_algorithm.rs"]
#[allow(dead_code)]
mod custom_algorithm;

use custom_algorithm::{
    gaussian_task, train_cosine_centroids, CosineCentroids, CosineCentroidsAlgorithm,
    CosineCentroidsConfig, INPUTS,
};
use metalearn::prelude::*;

/// The synthetic tasks have the asked shape: `n_way * shots` support and `n_way * queries`
/// query rows of 16 inputs, labels class-major.
#[test]
fn synthetic_tasks_have_their_shape() {
    let t = gaussian_task(&mut seeded_rng(9), 3, 2, 4);
    assert_eq!(t.support_x.shape(), [6, INPUTS]);
    assert_eq!(t.query_x.shape(), [12, INPUTS]);
    assert_eq!(t.support_y.class_labels("test"), [0, 0, 1, 1, 2, 2]);
}

/// Support rows (1, 0), (3, 0) of class 0 and (0, 2) of class 1: centroids (2, 0) and (0, 2);
/// queries (1, 0) and (1, 1) have cosines (1, 0) and (1/sqrt 2, 1/sqrt 2), times the scale.
#[test]
fn scores_equal_a_hand_computed_case() {
    let zs = Tensor::<f64>::from_f64(&[1.0, 0.0, 3.0, 0.0, 0.0, 2.0], &[3, 2]);
    let zq = Tensor::<f64>::from_f64(&[1.0, 0.0, 1.0, 1.0], &[2, 2]);
    let metric = CosineCentroids { scale: 10.0 };
    let scores = metric.scores(&Params::new(), &zs, &[0, 0, 1], &zq);
    assert_eq!(scores.shape(), [2, 2]);
    let s = 10.0 / 2f64.sqrt();
    for (got, want) in scores.to_vec().iter().zip([10.0, 0.0, s, s]) {
        assert!((got - want).abs() < 1e-6, "{:?}", scores.to_vec());
    }
    assert_eq!(Metric::<f64>::name(&metric), "cosine_centroids");
}

#[test]
fn bad_configs_and_regression_are_refused() {
    let backbone = BackboneConfig::Mlp(MlpBackbone {
        sizes: vec![INPUTS, 8],
    });
    let classes = TaskKind::Classification { n_way: 3 };
    let bad = CosineCentroidsConfig { scale: -1.0 };
    let build = |config: &CosineCentroidsConfig, task| {
        build_with::<CosineCentroidsAlgorithm, f32>(
            config,
            &backbone,
            task,
            1e-3,
            &mut seeded_rng(0),
        )
    };
    let e = build(&bad, classes)
        .err()
        .expect("a negative scale")
        .to_string();
    assert!(
        e.contains("cosine_centroids") && e.contains("scale") && e.contains("-1"),
        "{e}"
    );
    let regression = TaskKind::Regression { outputs: 1 };
    let e = build(&CosineCentroidsConfig::default(), regression)
        .err()
        .expect("no regression")
        .to_string();
    assert!(e.contains("cannot do regression"), "{e}");
    let learner = build(&CosineCentroidsConfig::default(), classes).unwrap();
    assert_eq!(learner.name(), "cosine_centroids");
    assert!(learner
        .state()
        .names()
        .iter()
        .any(|n| n.starts_with("param/")));
}

#[test]
fn it_learns_synthetic_tasks_well_above_chance() {
    let report = train_cosine_centroids(100, 0).unwrap();
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
    let (first, last) = (mean(&report.losses[..10]), mean(&report.losses[90..]));
    assert!(last < 0.5 * first, "loss {first:.3} -> {last:.3}");
    assert!(
        report.accuracy_after > 0.8 && report.accuracy_after > report.accuracy_before + 0.2,
        "held-out accuracy {:.3} -> {:.3} (chance 0.333)",
        report.accuracy_before,
        report.accuracy_after
    );
}

//! Multi-task training on real data (skipped when ../shared/data is absent): a 1-epoch run on
//! an MNIST subset, every weighting method and architecture through the loop, and the
//! Fashion-MNIST example with binary and regression heads.

mod common;

use metalearn::mtl::config::{build_model, load_data, task_specs};
use metalearn::mtl::train::{train, TrainOptions};
use metalearn::mtl::{weighting, MtlConfig, RunReport, METHODS};
use std::path::Path;

fn config(path: &str, train_limit: usize, test_limit: usize) -> Option<MtlConfig> {
    let mut cfg = MtlConfig::from_file(Path::new(path)).unwrap();
    let name = cfg
        .data_path()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    common::dataset(&name.unwrap_or_default(), &[])?;
    cfg.data.train_limit = train_limit;
    cfg.data.test_limit = test_limit;
    cfg.train.epochs = 1;
    cfg.baselines.single_task = false;
    cfg.diagnostics.out_dir = String::new();
    Some(cfg)
}

/// Asserts that task `task`'s multi-task test accuracy is above `min`.
fn assert_accuracy_above(r: &RunReport, task: usize, min: f64, name: &str) {
    let accuracy = r.tasks[task].multi_task;
    assert!(accuracy > min, "{name} accuracy {accuracy}");
}

#[test]
fn one_epoch_on_an_mnist_subset_is_well_above_chance() {
    let Some(mut cfg) = config("configs/mnist-multitask.toml", 8000, 2000) else {
        return;
    };
    cfg.baselines.single_task = true;
    let r = metalearn::mtl::run(&cfg, false).unwrap();
    println!("{}", r.table());
    // Chance: 10% and 33%.
    assert_accuracy_above(&r, 0, 0.6, "digit");
    assert_accuracy_above(&r, 1, 0.6, "mod3");
    assert!(r
        .tasks
        .iter()
        .all(|t| t.single_task.is_some_and(|a| a > 0.5)));
    assert!(!r.history.cosines.is_empty());
    let c = r.history.cosines[0].cosine[0];
    assert!((-1.0..=1.0).contains(&c));
}

#[test]
fn every_method_and_architecture_trains() {
    let Some(cfg) = config("configs/mnist-multitask.toml", 1280, 500) else {
        return;
    };
    let (tr, te) = load_data(&cfg).unwrap();
    let specs = task_specs(&cfg).unwrap();
    let opts = TrainOptions {
        epochs: 2,
        grad_every: 5,
        ..TrainOptions::default()
    };
    for m in METHODS {
        let model = build_model(&cfg.model, &tr.example_shape, specs.clone()).unwrap();
        let wc = weighting::WeightingConfig::named(m).unwrap();
        let mut w = match weighting::build(&wc, 2) {
            Ok(w) => w,
            // trimmed_mean and krum need 3 and 4 tasks.
            Err(e) => {
                assert!(e.to_string().contains("needs at least"), "{m}: {e}");
                continue;
            }
        };
        let out = train(model.as_ref(), w.as_mut(), &tr, &te, &[0, 1], &opts).unwrap();
        assert!(
            out.test_metric.iter().all(|a| a.is_finite() && *a > 0.2),
            "{m}: {:?}",
            out.test_metric
        );
        assert_eq!(out.history.epochs.len(), 2);
    }
    for arch in ["mmoe", "cross_stitch"] {
        let mut mc = cfg.model.clone();
        mc.architecture = arch.into();
        mc.experts = 2;
        let model = build_model(&mc, &tr.example_shape, specs.clone()).unwrap();
        let mut w =
            weighting::build(&weighting::WeightingConfig::named("pcgrad").unwrap(), 2).unwrap();
        let out = train(model.as_ref(), w.as_mut(), &tr, &te, &[0, 1], &opts).unwrap();
        assert!(
            out.test_metric.iter().all(|a| a.is_finite() && *a > 0.2),
            "{arch}: {:?}",
            out.test_metric
        );
    }
}

#[test]
fn fashion_example_with_binary_and_regression_heads() {
    let Some(cfg) = config("configs/fashion-multitask.toml", 6000, 1000) else {
        return;
    };
    let r = metalearn::mtl::run(&cfg, false).unwrap();
    println!("{}", r.table());
    assert_eq!(r.tasks[1].metric, "accuracy");
    assert_eq!(r.tasks[2].metric, "rmse");
    assert_accuracy_above(&r, 0, 0.5, "class");
    assert_accuracy_above(&r, 1, 0.85, "footwear");
    // Standardised target: predicting the mean gives RMSE ~1.
    assert!(
        r.tasks[2].multi_task < 0.6,
        "ink rmse {}",
        r.tasks[2].multi_task
    );
    assert_eq!(r.history.pairs().len(), 3);
}

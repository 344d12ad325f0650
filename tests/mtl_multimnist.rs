//! The composite datasets as MTL data and the benchmark runner: every architecture trains
//! MultiMNIST above chance on both tasks in a short run (skipped when ../shared/data is
//! absent), the composites' labels and shapes through the config, the benchmark's records,
//! resume and table, its confidence interval against hand-computed values, and bad input.

mod common;

use common::MTL_BASE as BASE;
use metalearn::mtl::architectures::ARCHITECTURES;
use metalearn::mtl::benchmark::{self, student_ci95, t975, BenchmarkConfig};
use metalearn::mtl::config::{build_model, load_data, task_specs};
use metalearn::mtl::model::TaskTargets;
use metalearn::mtl::train::{train, TrainOptions};
use metalearn::mtl::{weighting, MtlConfig};
use std::path::Path;

/// A shipped benchmark config on a small budget, or `None` without the data.
fn small(path: &str, train_limit: usize, test_limit: usize) -> Option<MtlConfig> {
    common::dataset("mnist", &[])?;
    common::dataset("fashion-mnist", &[])?;
    let mut cfg = MtlConfig::from_file(Path::new(path)).unwrap();
    cfg.data.path = Some(metalearn::data::default_data_dir());
    cfg.data.train_limit = train_limit;
    cfg.data.test_limit = test_limit;
    cfg.diagnostics.out_dir = String::new();
    Some(cfg)
}

fn classes(t: &TaskTargets) -> &[usize] {
    match t {
        TaskTargets::Classes(c) => c,
        other => panic!("expected classes, got {other:?}"),
    }
}

#[test]
fn every_architecture_trains_multimnist_above_chance_on_both_tasks() {
    let Some(cfg) = small("configs/mtl/multimnist.toml", 3000, 600) else {
        return;
    };
    let (tr, te) = load_data(&cfg).unwrap();
    let specs = task_specs(&cfg).unwrap();
    let opts = TrainOptions {
        epochs: 2,
        ..TrainOptions::default()
    };
    for arch in ARCHITECTURES {
        let mut mc = cfg.model.clone();
        mc.architecture = arch.into();
        mc.experts = 2;
        let model = build_model(&mc, &tr.example_shape, specs.clone()).unwrap();
        let mut w = weighting::build(&weighting::WeightingConfig::Equal, 2).unwrap();
        let out = train(model.as_ref(), w.as_mut(), &tr, &te, &[0, 1], &opts).unwrap();
        // Chance is 10% on each task.
        assert!(
            out.test_metric.iter().all(|&a| a > 0.25),
            "{arch}: {:?}",
            out.test_metric
        );
    }
}

#[test]
fn composite_configs_give_two_ten_class_tasks_on_28x28_images() {
    for (path, same_source) in [
        ("configs/mtl/multimnist.toml", true),
        ("configs/mtl/multifashion.toml", true),
        ("configs/mtl/multi-fashion-mnist.toml", false),
    ] {
        let Some(cfg) = small(path, 300, 100) else {
            return;
        };
        let (tr, te) = load_data(&cfg).unwrap();
        assert_eq!((tr.n, te.n), (300, 100), "{path}");
        assert_eq!(tr.example_shape, [1, 28, 28]);
        assert_eq!(tr.x.len(), 300 * 784);
        assert!(tr.x.iter().all(|p| (0.0..=1.0).contains(p)));
        for d in [&tr, &te] {
            for t in &d.targets {
                let c = classes(t);
                assert!(c.iter().all(|&k| k < 10));
                // Both corners draw all ten classes.
                assert_eq!((0..10).filter(|k| c.contains(k)).count(), 10, "{path}");
            }
        }
        // Deterministic per data seed; another seed, other composites.
        let again = load_data(&cfg).unwrap().0;
        assert_eq!(again.x, tr.x, "{path}");
        let mut other = cfg.clone();
        other.data.seed = 7;
        assert_ne!(load_data(&other).unwrap().0.x, tr.x);
        assert!(same_source || cfg.data.dataset == "multi-fashion-mnist");
    }
}

#[test]
fn the_students_interval_by_hand() {
    // 1..=5: mean 3, s = sqrt(2.5), t(0.975, 4) = 2.776: 2.776 * 1.58114 / 2.23607 = 1.96293.
    let s = student_ci95(&[1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_eq!((s.mean, s.n), (3.0, 5));
    assert!((s.ci95 - 2.776 * 2.5f64.sqrt() / 5f64.sqrt()).abs() < 1e-12);
    assert!((s.ci95 - 1.96293).abs() < 1e-5);
    assert_eq!(student_ci95(&[0.7]).ci95, 0.0);
    assert!(student_ci95(&[]).mean.is_nan());
    assert_eq!(
        (t975(1), t975(4), t975(30), t975(200)),
        (12.706, 2.776, 2.042, 1.96)
    );
}

#[test]
fn a_benchmark_writes_records_resumes_and_tabulates() {
    let Some(mut cfg) = small("configs/mtl/multimnist.toml", 400, 100) else {
        return;
    };
    let dir = common::fresh_dir("mtl-bench", "resume");
    cfg.diagnostics.out_dir = dir.to_string_lossy().into_owned();
    cfg.train.epochs = 1;
    cfg.benchmark = Some(BenchmarkConfig {
        seeds: vec![3, 4],
        methods: vec!["equal".into(), "mgda".into()],
        architectures: vec!["mmoe".into()],
        single_task: true,
    });
    let s = benchmark::run(&cfg, false).unwrap();
    let lines = || std::fs::read_to_string(dir.join("benchmark.jsonl")).unwrap();
    assert_eq!(lines().lines().count(), 8);
    let rows: Vec<&str> = s.rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(rows, ["equal", "mgda", "arch:mmoe", "single-task"]);
    assert!(s.rows.iter().all(|r| r.1.len() == 2 && r.1[0].n == 2));
    let md = s.markdown();
    assert!(
        md.contains("| mmoe (equal) |") && md.contains("| single-task |"),
        "{md}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("benchmark.md")).unwrap(),
        md
    );
    // Started again: nothing new is trained, the same table comes back.
    let before = lines();
    let again = benchmark::run(&cfg, false).unwrap();
    assert_eq!(lines(), before);
    assert_eq!(again.markdown(), md);
    // One more seed: only its runs are added.
    cfg.benchmark.as_mut().unwrap().seeds.push(5);
    benchmark::run(&cfg, false).unwrap();
    assert_eq!(lines().lines().count(), 12);
    // Another training budget in the same folder is refused.
    cfg.train.epochs = 2;
    let err = benchmark::run(&cfg, false).unwrap_err().to_string();
    assert!(err.contains("another config"), "{err}");
}

#[test]
fn bad_benchmark_and_label_input_names_the_key() {
    let with = |extra: &str| MtlConfig::from_toml(&format!("{BASE}\n{extra}"));
    let err = with("[benchmark]\nmethods = [\"equal\", \"fancy\"]")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("benchmark.methods") && err.contains("fancy"),
        "{err}"
    );
    for m in weighting::METHODS {
        assert!(err.contains(m), "{m} missing from {err}");
    }
    let err = with("[benchmark]\narchitectures = [\"vit\"]")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("benchmark.architectures") && err.contains("dselect_k"),
        "{err}"
    );
    let err = with("[benchmark]\nseeds = []").unwrap_err().to_string();
    assert!(err.contains("benchmark.seeds"), "{err}");
    let err = with("[benchmark]\nseeds = [1, 2, 1]")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("benchmark.seeds") && err.contains("twice"),
        "{err}"
    );
    let err = with("[benchmark]\nsead = [1]").unwrap_err().to_string();
    assert!(err.contains("sead"), "{err}");
    // Every method (`methods = []`) on two tasks skips those that need more; a listed one is an
    // error.
    let (rows, skipped) = benchmark::rows(&BenchmarkConfig::default(), 2).unwrap();
    assert!(
        rows.iter().all(|r| r != "krum" && r != "trimmed_mean"),
        "{rows:?}"
    );
    assert!(skipped.iter().any(|s| s.starts_with("krum")), "{skipped:?}");
    assert_eq!(rows.len() + skipped.len(), weighting::METHODS.len() + 1);
    let krum = BenchmarkConfig {
        methods: vec!["krum".into()],
        ..Default::default()
    };
    let err = benchmark::rows(&krum, 2).unwrap_err().to_string();
    assert!(
        err.contains("benchmark.methods") && err.contains("krum"),
        "{err}"
    );
    // Composite label sources on plain MNIST, plain ones on a composite.
    let on_mnist = MtlConfig::from_toml(&BASE.replace("\"class_mod3\"", "\"top_left\"")).unwrap();
    let err = task_specs(&on_mnist).unwrap_err().to_string();
    assert!(
        err.contains("tasks[1].label") && err.contains("multi-mnist"),
        "{err}"
    );
    let composite = BASE.replace("\"mnist\"", "\"multi-mnist\"");
    let cfg = MtlConfig::from_toml(&composite).unwrap();
    let err = task_specs(&cfg).unwrap_err().to_string();
    assert!(
        err.contains("tasks[0].label") && err.contains("top_left"),
        "{err}"
    );
    let err = MtlConfig::from_toml(&BASE.replace("\"mnist\"", "\"multi-mnst\""))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("data.dataset") && err.contains("multi-fashion-mnist"),
        "{err}"
    );
}

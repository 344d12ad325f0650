//! Run configs: every shipped config parses and the set covers every method on Omniglot
//! 5/20-way 1/5-shot (and sinusoid for the methods that regress); unknown algorithms and keys
//! are errors naming them; the evaluation CI formula, checked by hand; every method is scored
//! on the same fixed episodes.

use metalearn::algorithms::config::{ALGORITHM_NAMES, REGRESSION_ALGORITHMS};
use metalearn::fewshot::tasks::{FixedTasks, Split, TaskSource};
use metalearn::fewshot::RunConfig;
use metalearn::run::stats::mean_ci95;
use std::path::{Path, PathBuf};

fn parse(text: &str) -> Result<RunConfig, String> {
    RunConfig::from_toml_str(text, Path::new("test.toml")).map_err(|e| e.to_string())
}

const BASE: &str = r#"
[algorithm]
name = "maml"
inner_lr = 0.01

[backbone]
name = "mlp"
sizes = [1, 40, 40]

[data]
dataset = "sinusoid"
k_shot = 10
q_query = 10

[train]
iterations = 10
"#;

#[test]
fn shipped_configs_parse_and_cover_every_method() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/fewshot");
    let mut seen = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let cfg = RunConfig::load(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
        // The Lake protocol configs score 1000 episodes; the others the usual 600.
        let episodes = if stem.ends_with("lake") { 1000 } else { 600 };
        assert_eq!(cfg.eval.episodes, episodes, "{}", p.display());
        seen.push(stem);
    }
    for m in ALGORITHM_NAMES {
        for s in ["5w1s", "5w5s", "20w1s", "20w5s"] {
            let name = format!("{m}-omniglot-{s}");
            assert!(seen.contains(&name), "missing configs/fewshot/{name}.toml");
        }
        let sin = format!("{m}-sinusoid");
        assert_eq!(
            seen.contains(&sin),
            REGRESSION_ALGORITHMS.contains(m),
            "{sin}"
        );
    }
    let maml = RunConfig::load(&dir.join("maml-omniglot-5w1s.toml")).unwrap();
    assert_eq!((maml.train.meta_batch, maml.train.iterations), (32, 60000));
    let maml20 = RunConfig::load(&dir.join("maml-omniglot-20w1s.toml")).unwrap();
    assert_eq!(maml20.train.meta_batch, 16);
}

#[test]
fn base_config_parses() {
    let c = parse(BASE).unwrap();
    assert_eq!(c.algorithm.name(), "maml");
    assert_eq!(c.eval.episodes, 600);
    assert!(c.data.is_regression());
}

#[test]
fn unknown_algorithm_is_named() {
    let e = parse(&BASE.replace("name = \"maml\"", "name = \"mamll\"")).unwrap_err();
    assert!(e.contains("mamll") && e.contains("protonet"), "{e}");
    assert!(e.contains("test.toml"), "{e}");
}

#[test]
fn unknown_keys_are_named_in_every_table() {
    for (from, to, key) in [
        ("iterations = 10", "itrations = 10", "itrations"),
        ("k_shot = 10", "k_shot = 10\nkshot = 3", "kshot"),
        (
            "inner_lr = 0.01",
            "inner_lr = 0.01\ninner_lrr = 1",
            "inner_lrr",
        ),
        (
            "sizes = [1, 40, 40]",
            "sizes = [1, 40, 40]\nwidth = 3",
            "width",
        ),
    ] {
        let e = parse(&BASE.replace(from, to)).unwrap_err();
        assert!(e.contains(key), "`{key}` not named in: {e}");
    }
    let e = parse(&format!("{BASE}\n[eval]\nepisode = 5\n")).unwrap_err();
    assert!(e.contains("episode"), "{e}");
    let e = parse(&format!("{BASE}\n[extra]\nx = 1\n")).unwrap_err();
    assert!(e.contains("extra"), "{e}");
}

#[test]
fn inconsistent_values_are_named() {
    let e = parse(&BASE.replace("name = \"maml\"\ninner_lr = 0.01", "name = \"protonet\""))
        .unwrap_err();
    assert!(e.contains("protonet") && e.contains("regression"), "{e}");
    let e = parse(&BASE.replace("k_shot = 10", "k_shot = 10\nn_way = 5")).unwrap_err();
    assert!(e.contains("data.n_way"), "{e}");
    let e = parse(&BASE.replace("iterations = 10", "iterations = 0")).unwrap_err();
    assert!(e.contains("train.iterations"), "{e}");
}

#[test]
fn ci95_by_hand() {
    // mean 0.75; deviations .15 .05 .25 .15 -> variance (.0225+.0025+.0625+.0225)/4 = .0275.
    let r = mean_ci95(&[0.6, 0.8, 1.0, 0.6]);
    assert!((r.mean - 0.75).abs() < 1e-12);
    assert!((r.std - 0.0275f64.sqrt()).abs() < 1e-12);
    assert!((r.ci95 - 1.96 * 0.0275f64.sqrt() / 2.0).abs() < 1e-12);
    assert!((r.ci95 - 0.162_515).abs() < 1e-5);
    let c = mean_ci95(&[0.5; 600]);
    assert_eq!((c.mean, c.ci95, c.n), (0.5, 0.0, 600));
    // Shown in percent: an interval for n >= 2, none (not "± 0.00") for a single value.
    assert_eq!(r.show(100.0, 2), "75.00 ± 16.25");
    assert_eq!(mean_ci95(&[0.8123]).show(100.0, 2), "81.23 (n = 1)");
}

#[test]
fn every_method_sees_the_same_test_episodes() {
    // A CSV dataset of 10 classes; two methods, same data/N/K/Q/eval seed.
    let dir = std::env::temp_dir().join(format!("metalearn-train-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("d.csv");
    let mut text = String::from("a,b,label\n");
    for c in 0..10 {
        for i in 0..6 {
            text.push_str(&format!(
                "{},{},k{c}\n",
                c as f32 + 0.01 * i as f32,
                -(c as f32),
            ));
        }
    }
    std::fs::write(&csv, text).unwrap();
    let cfg = |alg: &str| {
        parse(&format!(
            "[algorithm]\n{alg}\n[backbone]\nname = \"mlp\"\nsizes = [2, 8]\n[data]\ndataset = \"csv\"\ndata_dir = {:?}\nn_way = 2\nk_shot = 1\nq_query = 2\nsplit = [0.4, 0.2]\n",
            csv.display().to_string()
        ))
        .unwrap()
    };
    let a = cfg("name = \"protonet\"");
    let b = cfg("name = \"maml\"");
    let ea = TaskSource::load(&a)
        .unwrap()
        .fixed(Split::Test, a.eval.episodes, a.eval.seed)
        .unwrap();
    let eb = TaskSource::load(&b)
        .unwrap()
        .fixed(Split::Test, b.eval.episodes, b.eval.seed)
        .unwrap();
    match (ea, eb) {
        (FixedTasks::Episodes(x, _), FixedTasks::Episodes(y, _)) => {
            assert_eq!(x.len(), 600);
            assert_eq!(x, y);
        }
        _ => panic!("episodic"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

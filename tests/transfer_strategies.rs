//! Transfer experiments: config errors, class-balanced nested label subsets, paired gains, and
//! a tiny MNIST -> Fashion-MNIST run (skipped without the data) with trunk reuse, a checkpoint
//! source and a search over a transfer config.

mod common;

use metalearn::objectives::for_kind;
use metalearn::transfer::{self, label_subset, summarize, RunResult, Strategy, TransferConfig};
use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes the search config `s` over the transfer config `base.toml` next to it: `extra`
/// lines (e.g. the method), the output folder `out` and the one space line `space`.
fn write_transfer_search(s: &Path, extra: &str, out: &Path, space: &str) {
    std::fs::write(
        s,
        format!(
            "base = \"base.toml\"\nkind = \"transfer\"\n{extra}out_dir = \"{}\"\n[space]\n{space}\n",
            out.display()
        ),
    )
    .unwrap();
}

fn tiny(out: &Path) -> String {
    common::tiny_transfer_config(out)
}

fn parse(text: &str) -> Result<TransferConfig, String> {
    TransferConfig::from_toml_str(text, Path::new("<test>")).map_err(|e| e.to_string())
}

#[test]
fn config_errors_are_clear() {
    let ok = tiny(Path::new("/tmp/x"));
    assert!(parse(&ok).is_ok());
    let bad = |from: &str, to: &str, needle: &str| {
        let e = parse(&ok.replace(from, to)).unwrap_err();
        assert!(e.contains(needle), "`{e}` lacks `{needle}`");
    };
    bad("budgets = [10, 30]", "budgets = []", "budgets");
    bad("budgets = [10, 30]", "budgets = [0]", "budgets");
    bad(
        "seeds = [0, 1]",
        "seeds = [0, 1]\nstrategies = [\"magic\"]",
        "unknown variant",
    );
    bad(
        "dataset = \"mnist\"",
        "dataset = \"cifar\"",
        "source.dataset",
    );
    bad(
        "dataset = \"mnist\"",
        "dataset = \"mnist\"\ncheckpoint = \"a\"",
        "not both",
    );
    bad("freeze_steps = 5", "freeze_steps = 50", "freeze_steps");
    bad(
        "steps = 20",
        "steps = 20\nlearning_rate = 1",
        "unknown field",
    );
}

#[test]
fn label_subsets_are_balanced_and_nested() {
    let labels: Vec<usize> = (0..300).map(|i| i % 3).collect();
    let pool: Vec<usize> = (0..300).collect();
    let a = label_subset(&pool, &labels, 3, 7, 5);
    let b = label_subset(&pool, &labels, 3, 30, 5);
    assert_eq!(a.len(), 7);
    assert_eq!(b.len(), 30);
    assert!(a.iter().all(|i| b.contains(i)));
    let counts: Vec<usize> = (0..3)
        .map(|c| b.iter().filter(|&&i| labels[i] == c).count())
        .collect();
    assert_eq!(counts, vec![10, 10, 10]);
    assert_ne!(label_subset(&pool, &labels, 3, 30, 6), b);
}

#[test]
fn gains_are_paired_by_seed() {
    let r = |strategy, seed, acc| RunResult {
        strategy,
        budget: 10,
        seed,
        test_accuracy: acc,
        val_accuracy: None,
        seconds: 0.0,
    };
    let runs = vec![
        r(Strategy::Scratch, 0, 0.5),
        r(Strategy::Scratch, 1, 0.7),
        r(Strategy::Finetune, 0, 0.6),
        r(Strategy::Finetune, 1, 0.8),
    ];
    let s = summarize(&runs, &[Strategy::Scratch, Strategy::Finetune], &[10]);
    assert!((s[0].accuracy.mean - 0.6).abs() < 1e-12);
    assert!(s[0].gain.is_none());
    let g = s[1].gain.unwrap();
    assert!((g.mean - 0.1).abs() < 1e-12 && g.ci95.abs() < 1e-12);
}

fn have_data() -> bool {
    common::dataset("mnist", &[]).is_some() && common::dataset("fashion-mnist", &[]).is_some()
}

#[test]
fn tiny_mnist_to_fashion_run() {
    if !have_data() {
        return;
    }
    let out = tmp("transfer_tiny");
    let cfg = parse(&tiny(&out)).unwrap();
    let r = transfer::run(&cfg, false).unwrap();
    assert_eq!(r.runs.len(), 2 * 2 * 4);
    assert_eq!(r.summary.len(), 2 * 4);
    assert!(r.source_test_accuracy.unwrap() > 0.5);
    assert!(r.pretrain_seconds > 0.0);
    for x in &r.runs {
        assert!((0.0..=1.0).contains(&x.test_accuracy));
        assert!(x.val_accuracy.is_some());
    }
    for f in [
        "runs.csv",
        "summary.csv",
        "accuracy_vs_labels.svg",
        "report.json",
        "pretrained.safetensors",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    assert!(r.table().contains("freeze_then_finetune"));
    // Same [model] and [source]: the trunk is reused and the results are reproduced.
    let r2 = transfer::run(&cfg, false).unwrap();
    assert_eq!(r2.pretrain_seconds, 0.0);
    let acc =
        |r: &transfer::TransferReport| r.runs.iter().map(|x| x.test_accuracy).collect::<Vec<_>>();
    assert_eq!(acc(&r), acc(&r2));
    // Starting from the checkpoint instead of a source dataset.
    let ck = out.join("pretrained.safetensors");
    let text = tiny(&out.join("from_ck")).replace(
        "dataset = \"mnist\"",
        &format!("checkpoint = \"{}\"", ck.display()),
    );
    let r3 = transfer::run(&parse(&text).unwrap(), false).unwrap();
    assert!(r3.source.contains("checkpoint"));
    assert_eq!(acc(&r), acc(&r3));
    // A wrong architecture is refused.
    let text = tiny(&out.join("bad"))
        .replace(
            "dataset = \"mnist\"",
            &format!("checkpoint = \"{}\"", ck.display()),
        )
        .replace("hidden = [32]", "hidden = [16]");
    let e = transfer::run(&parse(&text).unwrap(), false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("do not fit"), "{e}");
}

#[test]
fn search_over_a_transfer_config() {
    if !have_data() {
        return;
    }
    let dir = tmp("transfer_search");
    let base = dir.join("base.toml");
    std::fs::write(
        &base,
        tiny(&dir.join("base_out"))
            .replace("seeds = [0, 1]", "seeds = [0]")
            .replace(
                "budgets = [10, 30]",
                "budgets = [30]\nstrategies = [\"finetune\"]",
            ),
    )
    .unwrap();
    let s = dir.join("search.toml");
    write_transfer_search(
        &s,
        "method = \"grid\"\n",
        &dir.join("out"),
        "\"target.lr\" = { values = [0.0001, 0.003] }",
    );
    let r = metalearn::search::command(&s, Some(1), true, &for_kind).unwrap();
    assert_eq!(r.ran, 2);
    assert!(r.maximize && (0.0..=1.0).contains(&r.best_score));
    let best = TransferConfig::load(&r.best_toml).unwrap();
    assert!([0.0001, 0.003].contains(&best.target.lr));
    // wrong type for a transfer key
    write_transfer_search(
        &s,
        "",
        &dir.join("out2"),
        "\"model.hidden\" = { values = [32] }",
    );
    let e = metalearn::search::command(&s, Some(1), true, &for_kind)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("model.hidden") && e.contains("invalid type"),
        "{e}"
    );
}

#[test]
fn shipped_configs_load() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs");
    for dir in ["transfer", "search"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                if dir == "transfer" {
                    TransferConfig::load(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                } else {
                    metalearn::search::load(&p, &for_kind)
                        .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                }
            }
        }
    }
}

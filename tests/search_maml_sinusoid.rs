//! A small successive-halving search over MAML's inner learning rate x inner steps on sinusoid:
//! it returns a best config, `best.toml` is a `metalearn train` config that trains, and bad
//! keys against the real run config are rejected before any trial.

use metalearn::objectives::for_kind;
use metalearn::search;
use std::path::PathBuf;

fn tmp(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write_search(dir: &std::path::Path, space: &str) -> PathBuf {
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/fewshot/maml-sinusoid.toml");
    let text = format!(
        r#"
base = "{}"
kind = "train"
method = "halving"
workers = 2
out_dir = "{}"
min_budget = 8
max_budget = 16
eta = 2
[fixed]
"train.meta_batch" = 4
"train.val_every" = 0
"train.val_episodes" = 10
"train.checkpoint_every" = 1000
[space]
{space}
"#,
        base.display(),
        dir.join("out").display()
    );
    let p = dir.join("search.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn maml_sinusoid_search_returns_a_config_that_trains() {
    let dir = tmp("maml_sinusoid_search");
    let p = write_search(
        &dir,
        "\"algorithm.inner_lr\" = { values = [0.001, 0.01] }\n\"algorithm.inner_steps\" = { values = [1, 2] }",
    );
    let r = search::command(&p, None, true, &for_kind).unwrap();
    assert_eq!(r.candidates.len(), 4);
    assert_eq!(r.rungs.len(), 2);
    assert_eq!(r.rungs[0].scores.len(), 4);
    assert_eq!(r.rungs[1].scores.len(), 2);
    assert!(!r.maximize && r.best_score.is_finite());
    assert_eq!(r.best_budget, Some(16));
    // best.toml is a run config: it loads and trains.
    let cfg = metalearn::fewshot::RunConfig::load(&r.best_toml).unwrap();
    assert_eq!(cfg.train.iterations, 16);
    let mut cfg = cfg;
    cfg.train.iterations = 4;
    let rep = metalearn::fewshot::train(
        &cfg,
        &metalearn::fewshot::TrainOptions {
            overwrite: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(rep.iterations, 4);
    assert!(rep.best.is_some());
    // restart: nothing redone
    let r2 = search::command(&p, None, true, &for_kind).unwrap();
    assert_eq!((r2.ran, r2.reused), (0, 6));
    assert_eq!(r2.best, r.best);
}

#[test]
fn bad_keys_of_the_run_config_fail_before_any_trial() {
    for (space, needle) in [
        ("\"algorithm.inner_lrr\" = { values = [0.01] }", "inner_lrr"),
        (
            "\"algorithm.inner_steps\" = { values = [\"two\"] }",
            "invalid type",
        ),
        ("\"trian.iterations\" = { values = [10] }", "trian"),
        ("\"algorithm.inner_lr\" = { values = [] }", "empty"),
        ("\"algorithm.inner_lr\" = { values = [-1.0] }", "inner_lr"),
    ] {
        let dir = tmp("maml_sinusoid_bad");
        let p = write_search(&dir, space);
        let e = search::command(&p, None, true, &for_kind)
            .unwrap_err()
            .to_string();
        assert!(e.contains(needle), "`{e}` lacks `{needle}`");
        assert!(!dir.join("out/trials.csv").exists(), "a trial ran");
    }
}

//! `--resume`: a run stopped abruptly between checkpoints and resumed ends with exactly the
//! numbers of an uninterrupted run with the same seed (history, best, state, test score); the
//! stopped run loses nothing before its last checkpoint.

mod common;

use metalearn::fewshot::{evaluate_checkpoint, train, RunConfig, TrainOptions};
use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    common::fresh_dir("metalearn-train-resume", name)
}

fn config(body: &str, out: &Path) -> RunConfig {
    let text = format!("{body}\nout_dir = {:?}\n", out.display().to_string());
    RunConfig::from_toml_str(&text, Path::new("test.toml")).unwrap()
}

fn check_resume(body: &str, name: &str) {
    // One worker thread: the per-task gradient sum is then in a fixed order.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    pool.install(|| {
        let (da, db) = (tmp(&format!("{name}-a")), tmp(&format!("{name}-b")));
        let (ca, cb) = (config(body, &da), config(body, &db));
        let full = train(&ca, &TrainOptions::default()).unwrap();
        assert!(!full.interrupted);

        // "Killed" after 7 iterations: the last checkpoint is the one of iteration 4.
        let stop = TrainOptions {
            stop_after: Some(7),
            ..TrainOptions::default()
        };
        let part = train(&cb, &stop).unwrap();
        assert!(part.interrupted);
        let meta = metalearn::nn::checkpoint::read_metadata(db.join("last.safetensors")).unwrap();
        assert_eq!(meta["metalearn.iteration"], "4");
        assert_eq!(part.history.len(), 2, "validations at 3 and 6 happened");

        // A fresh start over an existing run is refused.
        let e = train(&cb, &TrainOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("--resume"), "{e}");

        let resumed = train(
            &cb,
            &TrainOptions {
                resume: true,
                ..TrainOptions::default()
            },
        )
        .unwrap();
        assert_eq!(resumed.resumed_from, 4);
        assert_eq!(resumed.iterations, full.iterations);
        assert_eq!(resumed.history, full.history, "learning curves differ");
        assert_eq!(resumed.best, full.best);
        assert_eq!(
            common::checkpoint_params(&da.join("last.safetensors")),
            common::checkpoint_params(&db.join("last.safetensors"))
        );
        assert_eq!(
            common::checkpoint_params(&da.join("best.safetensors")),
            common::checkpoint_params(&db.join("best.safetensors"))
        );
        let ea = evaluate_checkpoint(&da.join("best.safetensors"), None).unwrap();
        let eb = evaluate_checkpoint(&db.join("best.safetensors"), None).unwrap();
        assert_eq!(ea.score, eb.score);
        assert!(da.join("learning_curve.svg").exists() && db.join("learning_curve.svg").exists());
        let svg = std::fs::read_to_string(db.join("learning_curve.svg")).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("polyline"));

        // Resuming with a changed config is refused, naming the section.
        let mut other = cb.clone();
        other.train.meta_batch += 1;
        let e = train(
            &other,
            &TrainOptions {
                resume: true,
                ..TrainOptions::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("[train]"), "{e}");
        let _ = std::fs::remove_dir_all(&da);
        let _ = std::fs::remove_dir_all(&db);
    });
}

#[test]
fn resumed_sinusoid_run_equals_uninterrupted() {
    check_resume(common::SINUSOID, "sin");
}

/// Reptile's annealed outer step follows the iteration count, so a resumed run follows the
/// same schedule.
#[test]
fn resumed_annealed_reptile_run_equals_uninterrupted() {
    let body =
        common::SINUSOID.replace("name = \"maml\"", "name = \"reptile\"\nepsilon_final = 0.0");
    assert!(body.contains("reptile"));
    check_resume(&body, "sin-reptile");
}

#[test]
fn resumed_episodic_run_equals_uninterrupted() {
    let dir = tmp("csvdata");
    let csv = dir.join("d.csv");
    common::write_class_csv(&csv);
    let body = common::csv_protonet_config(
        &csv,
        "iterations = 12\nmeta_batch = 2\nseed = 3\nval_every = 3\nval_episodes = 4\ncheckpoint_every = 4",
    );
    check_resume(&body, "csv");
    let _ = std::fs::remove_dir_all(&dir);
}

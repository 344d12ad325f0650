//! Baseline / Baseline++ base-class pre-training (Chen et al. 2019) through the meta-training
//! step and `metalearn train`: each training episode is a batch of the global classifier,
//! its images labelled by their dataset classes ([`TaskData::classes`]).

mod common;

use metalearn::algorithms::baseline::{Baseline, BaselineConfig};
use metalearn::algorithms::{FewShotLearner, Target, TaskData};
use metalearn::data::seeded_rng;
use metalearn::nn::{Body, Mlp, Params};
use metalearn::Tensor;

/// The cross-entropy and accuracy of logits rows `logits[i]` against `labels`, by hand.
fn cross_entropy_by_hand(logits: &[Vec<f64>], labels: &[usize]) -> (f64, f64) {
    let mut loss = 0.0;
    let mut right = 0;
    for (row, &y) in logits.iter().zip(labels) {
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        loss += lse - row[y];
        let best = (0..row.len())
            .max_by(|&a, &b| row[a].total_cmp(&row[b]))
            .unwrap();
        right += usize::from(best == y);
    }
    let n = labels.len() as f64;
    (loss / n, right as f64 / n)
}

/// The global head's logits of features `z` (`[n, d]`), by hand: `z W^T + b` (linear) or
/// `scale * cos(z_i, w_c)` (cosine, each norm `sqrt(|v|^2 + 1e-8)` as the library's).
fn head_by_hand(
    z: &[f64],
    d: usize,
    state: &Params<f64>,
    cosine: bool,
    scale: f64,
) -> Vec<Vec<f64>> {
    let w = state.get("head/weight").unwrap().to_vec();
    let classes = w.len() / d;
    let norm = |v: &[f64]| (v.iter().map(|a| a * a).sum::<f64>() + 1e-8).sqrt();
    z.chunks(d)
        .map(|zi| {
            (0..classes)
                .map(|c| {
                    let wc = &w[c * d..(c + 1) * d];
                    let dot: f64 = zi.iter().zip(wc).map(|(a, b)| a * b).sum();
                    if cosine {
                        scale * dot / (norm(zi) * norm(wc))
                    } else {
                        dot + state.get("head/bias").unwrap().to_vec()[c]
                    }
                })
                .collect()
        })
        .collect()
}

#[test]
fn a_pretraining_step_is_the_global_cross_entropy_of_the_episode_dataset_classes() {
    // Two episode labels standing for dataset classes 7 and 3 of a 10-class global head.
    let mut rng = seeded_rng(5);
    let task = TaskData {
        support_x: Tensor::<f64>::rand_normal(&[2, 3], 0.0, 1.0, &mut rng),
        support_y: Target::Classes(vec![0, 1]),
        query_x: Tensor::<f64>::rand_normal(&[4, 3], 0.0, 1.0, &mut rng),
        query_y: Target::Classes(vec![0, 1, 1, 0]),
        classes: Some(vec![7, 3]),
    };
    let global = [7, 3, 7, 3, 3, 7];
    for cosine in [false, true] {
        let config = BaselineConfig {
            base_classes: Some(10),
            scale: Some(4.0),
            ..BaselineConfig::default()
        };
        let body = Body::Mlp(Mlp::new(&[3, 5]));
        let mut learner = Baseline::<f64>::new(&config, cosine, body.clone(), 1e-3, &mut rng);
        let state = learner.state();
        let n_body = state
            .names()
            .iter()
            .filter(|n| n.starts_with("param/"))
            .count();
        let x = task.support_and_query_x();
        let z = metalearn::nn::Backbone::embed(&body, &state.slice(0..n_body), &x);
        let logits = head_by_hand(&z.to_vec(), 5, &state, cosine, 4.0);
        let (loss, accuracy) = cross_entropy_by_hand(&logits, &global);
        let stats = learner.meta_train_step(std::slice::from_ref(&task), &mut rng);
        assert!(
            (stats.loss - loss).abs() < 1e-12,
            "cosine {cosine}: step loss {} against {loss} by hand",
            stats.loss
        );
        assert_eq!(stats.accuracy, accuracy, "cosine {cosine}");
    }
}

/// `metalearn train` of Baseline with `base_classes` on the 8-class CSV of
/// [`common::write_class_csv`] (4 training classes): (success, stderr, run folder).
fn csv_baseline_run(tag: &str, base_classes: usize) -> (bool, String, std::path::PathBuf) {
    let dir = common::fresh_dir("baseline-pretrain", tag);
    let csv = dir.join("d.csv");
    common::write_class_csv(&csv);
    let out = dir.join("run");
    let train = format!(
        "iterations = 20\nmeta_lr = 0.01\nval_every = 10\nval_episodes = 4\nout_dir = {:?}",
        out.display().to_string()
    );
    let text = common::csv_protonet_config(&csv, &train).replace(
        "name = \"protonet\"",
        &format!("name = \"baseline\"\nbase_classes = {base_classes}"),
    );
    let config = dir.join("b.toml");
    std::fs::write(&config, text).unwrap();
    let o = common::bin::metalearn()
        .args(["train", "--config", config.to_str().unwrap(), "--no-eval"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    (o.status.success(), stderr, out)
}

#[test]
fn train_pretrains_a_head_over_the_training_classes_and_names_base_classes_when_too_small() {
    let (ok, stderr, out) = csv_baseline_run("fits", 4);
    assert!(ok, "{stderr}");
    let params = common::checkpoint_params(&out.join("best.safetensors"));
    let head = params.iter().find(|(n, _)| n == "head/weight").unwrap();
    assert_eq!(head.1.len(), 4 * 8, "a 4-class head on 8 features");
    let (ok, stderr, _) = csv_baseline_run("small", 3);
    assert!(!ok, "a 3-class head for 4 training classes was accepted");
    assert!(
        stderr.contains("base_classes") && stderr.contains('4') && stderr.contains("got 3"),
        "{stderr}"
    );
}

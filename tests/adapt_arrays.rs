//! `fewshot::arrays` (the Python package's `adapt` on in-memory arrays) against
//! `fewshot::adapt` (the `adapt` command) on the same checkpoint and the same examples written
//! as CSV files: the same probabilities, the classes in the same order; and its input errors
//! name the argument.

mod common;

use metalearn::fewshot::arrays::{argmax_rows, softmax_rows, ArraySupport, SupportLabels};
use metalearn::fewshot::{adapt, load_learner, train, RunConfig, TrainOptions};
use std::path::{Path, PathBuf};

/// A ProtoNet (MLP 3-8) checkpoint trained for a few iterations on the CSV of
/// `common::write_class_csv`.
fn csv_checkpoint(dir: &Path) -> PathBuf {
    let csv = dir.join("classes.csv");
    common::write_class_csv(&csv);
    let out = dir.join("run");
    let train_keys = format!(
        "iterations = 4\nmeta_batch = 1\nval_every = 2\nval_episodes = 2\ncheckpoint_every = 2\nout_dir = {:?}",
        out.display().to_string()
    );
    let text = common::csv_protonet_config(&csv, &train_keys);
    let cfg = RunConfig::from_toml_str(&text, Path::new("test.toml")).unwrap();
    let opts = TrainOptions {
        overwrite: true,
        ..TrainOptions::default()
    };
    train(&cfg, &opts).unwrap();
    out.join("best.safetensors")
}

#[test]
fn arrays_give_the_adapt_commands_probabilities() {
    let dir = common::fresh_dir("adapt-arrays", "csv");
    let ckpt = csv_checkpoint(&dir);
    // Support: labels 7 and 3, interleaved (adapt sorts them class-major, classes ascending).
    let support: [([f32; 3], i64); 4] = [
        ([0.5, 0.3, -1.0], 7),
        ([2.0, 0.1, -4.0], 3),
        ([0.5, 0.6, -1.0], 7),
        ([2.0, 0.9, -4.0], 3),
    ];
    let queries: [[f32; 3]; 3] = [[0.4, 0.2, -1.1], [1.9, 0.5, -3.8], [1.2, 0.4, -2.5]];
    let mut text = String::new();
    for (x, y) in &support {
        text.push_str(&format!("{},{},{},{y}\n", x[0], x[1], x[2]));
    }
    std::fs::write(dir.join("support.csv"), text).unwrap();
    let qtext: String = queries
        .iter()
        .map(|q| format!("{},{},{}\n", q[0], q[1], q[2]))
        .collect();
    std::fs::write(dir.join("query.csv"), qtext).unwrap();
    let cli = adapt(&ckpt, &dir.join("support.csv"), &dir.join("query.csv")).unwrap();

    let run = load_learner(&ckpt, None).unwrap();
    let x: Vec<f32> = support.iter().flat_map(|(x, _)| *x).collect();
    let y: Vec<i64> = support.iter().map(|(_, y)| *y).collect();
    let s = ArraySupport::new(&run, &x, &[4, 3], SupportLabels::Classes(&y)).unwrap();
    assert_eq!(s.classes(), [3, 7]);
    assert_eq!(cli.classes, ["3", "7"]);
    let q: Vec<f32> = queries.iter().flatten().copied().collect();
    let probs = softmax_rows(&s.outputs(&run, &q, &[3, 3]).unwrap());
    let best = argmax_rows(&probs, 2);
    for (i, p) in cli.predictions.iter().enumerate() {
        assert_eq!(&probs[2 * i..2 * i + 2], p.probabilities.as_slice());
        assert_eq!(s.classes()[best[i]].to_string(), p.prediction);
    }
}

#[test]
fn array_errors_name_the_argument() {
    let dir = common::fresh_dir("adapt-arrays", "errors");
    let ckpt = csv_checkpoint(&dir);
    let run = load_learner(&ckpt, None).unwrap();
    let x = [0.0f32; 12];
    let msg = |r: Result<ArraySupport, metalearn::fewshot::TrainError>| r.unwrap_err().to_string();
    let wrong_count = msg(ArraySupport::new(
        &run,
        &x,
        &[4, 3],
        SupportLabels::Classes(&[0, 1, 0]),
    ));
    assert!(
        wrong_count.contains("support_y: 3 labels for 4 support examples"),
        "{wrong_count}"
    );
    let one_class = msg(ArraySupport::new(
        &run,
        &x,
        &[4, 3],
        SupportLabels::Classes(&[5; 4]),
    ));
    assert!(one_class.contains("at least 2 are needed"), "{one_class}");
    let width = msg(ArraySupport::new(
        &run,
        &x,
        &[3, 4],
        SupportLabels::Classes(&[0, 1, 0]),
    ));
    assert!(
        width.starts_with("support_x: examples have 4 values"),
        "{width}"
    );
    let mut nan = x;
    nan[5] = f32::NAN;
    let nan = msg(ArraySupport::new(
        &run,
        &nan,
        &[4, 3],
        SupportLabels::Classes(&[0, 1, 0, 1]),
    ));
    assert!(
        nan.contains("support_x: value 5 (flat index) is NaN"),
        "{nan}"
    );
    let s = ArraySupport::new(&run, &x, &[4, 3], SupportLabels::Classes(&[0, 1, 0, 1])).unwrap();
    let q = s.outputs(&run, &[0.0; 4], &[1, 4]).unwrap_err().to_string();
    assert!(q.starts_with("query_x: examples have 4 values"), "{q}");
}

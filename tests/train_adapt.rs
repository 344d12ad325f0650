//! `metalearn train` / `eval` / `adapt` end to end on tiny data made here: a class-per-folder
//! PNG tree and a CSV of vectors. Checks the adapt output (CSV and JSON), and that every bad
//! input gives a clear error naming the key or path, never a panic.

mod common;

use common::bin::metalearn;
use metalearn::fewshot::{adapt, evaluate_checkpoint, train, RunConfig, TrainOptions};
use std::path::{Path, PathBuf};
use std::process::Command;

const SIDE: usize = 16;

fn tmp(name: &str) -> PathBuf {
    common::fresh_dir("metalearn-train-adapt", name)
}

/// A 16x16 gray image of class pattern `c`: a bright 4x4 block at a class-specific place,
/// plus faint noise from `seed`.
fn pattern(c: usize, seed: usize) -> Vec<u8> {
    let (r0, c0) = ((c % 4) * 4, ((c / 4) % 4) * 4);
    (0..SIDE * SIDE)
        .map(|i| {
            let (r, col) = (i / SIDE, i % SIDE);
            let on = (r0..r0 + 4).contains(&r) && (c0..c0 + 4).contains(&col);
            let noise = ((i * 31 + seed * 17 + c * 7) % 13) as u8;
            if on {
                240 - noise
            } else {
                noise
            }
        })
        .collect()
}

/// A `SIDE x SIDE` 8-bit grayscale PNG.
fn write_png(path: &Path, pixels: &[u8]) {
    let side = SIDE as u32;
    let (gray, eight) = (png::ColorType::Grayscale, png::BitDepth::Eight);
    common::write_png(path, side, side, gray, eight, pixels);
}

fn image_config(dir: &Path, data: &Path, alg: &str, iterations: usize) -> String {
    format!(
        r#"
[algorithm]
{alg}

[backbone]
name = "conv4"
in_channels = 1
filters = 4
image_size = {SIDE}
blocks = 2

[data]
dataset = "image_folder"
data_dir = {:?}
n_way = 2
k_shot = 1
q_query = 2
split = [0.6, 0.2]

[train]
iterations = {iterations}
meta_batch = 2
val_every = 5
val_episodes = 4
checkpoint_every = 5
out_dir = {:?}

[eval]
episodes = 20
"#,
        data.display().to_string(),
        dir.join("run").display().to_string()
    )
}

fn image_data(root: &Path) -> PathBuf {
    let data = root.join("train-images");
    for c in 0..10 {
        for i in 0..5 {
            write_png(
                &data.join(format!("class{c:02}")).join(format!("{i}.png")),
                &pattern(c, i),
            );
        }
    }
    data
}

fn parse(text: &str) -> RunConfig {
    RunConfig::from_toml_str(text, Path::new("test.toml")).unwrap()
}

/// `metalearn adapt --checkpoint C --support S --query Q`.
fn adapt_cmd(ckpt: &Path, support: &Path, query: &Path) -> Command {
    let mut c = metalearn();
    c.args(["adapt", "--checkpoint"]).arg(ckpt);
    c.arg("--support").arg(support).arg("--query").arg(query);
    c
}

fn run_ok(cmd: &mut Command) -> (String, String) {
    let out = cmd.output().unwrap();
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "command failed:\nstdout: {so}\nstderr: {se}"
    );
    (so, se)
}

fn run_err(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let se = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected a clean error exit, got {:?}: {se}",
        out.status
    );
    assert!(!se.contains("panicked"), "panic instead of an error: {se}");
    assert!(se.starts_with("error:"), "{se}");
    se
}

#[test]
fn cli_train_eval_adapt_on_png_folders() {
    let root = tmp("png");
    let data = image_data(&root);
    let cfg_path = root.join("protonet.toml");
    std::fs::write(
        &cfg_path,
        image_config(&root, &data, "name = \"protonet\"", 10),
    )
    .unwrap();
    let ckpt = train_and_eval(&root, &cfg_path);
    let (support, query, expected) = write_adapt_folders(&root);
    let predictions = adapt_to_json(&ckpt, &support, &query, &expected);
    adapt_to_csv_file(&root, &ckpt, &support, &query);
    csv_rows_adapt_like_pngs(&root, &ckpt, &predictions);
    transparent_query_is_an_error(&root, &ckpt, &support);
    bad_inputs_are_clean_errors(&root, &data, &ckpt, &support, &query);
    let _ = std::fs::remove_dir_all(&root);
}

/// The query files of the PNG test, each with the class it shows.
type Expected = [(&'static str, &'static str); 4];

/// `metalearn train` then `eval --json` on the run config `cfg_path`: the run's files and
/// the report's fields. Returns the best checkpoint.
fn train_and_eval(root: &Path, cfg_path: &Path) -> PathBuf {
    let (so, _) = run_ok(
        metalearn()
            .args(["--threads", "2", "train", "--config"])
            .arg(cfg_path),
    );
    assert!(so.contains("accuracy") && so.contains("± "), "{so}");
    let ckpt = root.join("run/best.safetensors");
    assert!(ckpt.exists() && root.join("run/last.safetensors").exists());
    assert!(root.join("run/learning_curve.svg").exists());

    let (so, _) = run_ok(
        metalearn()
            .args(["eval", "--json", "--checkpoint"])
            .arg(&ckpt),
    );
    let v: serde_json::Value = serde_json::from_str(so.trim()).unwrap();
    assert_eq!(v["score"]["n"], 20);
    assert!(v["wall_s"].as_f64().unwrap() >= 0.0 && v["peak_rss_mib"].as_f64().unwrap() > 0.0);
    ckpt
}

/// Support: three new classes, two shots each; queries: one image of each plus one more.
fn write_adapt_folders(root: &Path) -> (PathBuf, PathBuf, Expected) {
    let support = root.join("support");
    let query = root.join("query");
    for (name, c) in [("alpha", 11), ("beta", 12), ("gamma", 13)] {
        for i in 0..2 {
            write_png(
                &support.join(name).join(format!("s{i}.png")),
                &pattern(c, 100 + i),
            );
        }
    }
    let expected = [
        ("q0.png", "gamma"),
        ("q1.png", "alpha"),
        ("q2.png", "beta"),
        ("sub/q3.png", "alpha"),
    ];
    for (f, cls) in expected {
        let c = match cls {
            "alpha" => 11,
            "beta" => 12,
            _ => 13,
        };
        write_png(&query.join(f), &pattern(c, 200));
    }
    (support, query, expected)
}

/// `adapt --format json` on the PNG folders: the expected class of every query and
/// probabilities summing to 1. Returns the JSON report.
fn adapt_to_json(
    ckpt: &Path,
    support: &Path,
    query: &Path,
    expected: &Expected,
) -> serde_json::Value {
    let (so, se) = run_ok(
        metalearn()
            .args([
                "--threads",
                "1",
                "adapt",
                "--format",
                "json",
                "--checkpoint",
            ])
            .arg(ckpt)
            .arg("--support")
            .arg(support)
            .arg("--query")
            .arg(query),
    );
    assert!(se.contains("ms to adapt and predict on 1 thread"), "{se}");
    let v: serde_json::Value = serde_json::from_str(&so).unwrap();
    assert_eq!(v["classes"], serde_json::json!(["alpha", "beta", "gamma"]));
    let preds = v["predictions"].as_array().unwrap();
    assert_eq!(preds.len(), 4);
    for (p, (f, cls)) in preds.iter().zip(*expected) {
        assert_eq!(p["query"], f);
        assert_eq!(p["prediction"], cls, "{p}");
        let probs: Vec<f64> = p["probabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(probs.len(), 3);
        assert!((probs.iter().sum::<f64>() - 1.0).abs() < 1e-6);
    }
    v
}

/// `adapt --output pred.csv`: a header with one probability column per class.
fn adapt_to_csv_file(root: &Path, ckpt: &Path, support: &Path, query: &Path) {
    let out_csv = root.join("pred.csv");
    run_ok(
        metalearn()
            .args(["adapt", "--checkpoint"])
            .arg(ckpt)
            .arg("--support")
            .arg(support)
            .arg("--query")
            .arg(query)
            .arg("--output")
            .arg(&out_csv),
    );
    let csv = std::fs::read_to_string(&out_csv).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "query,prediction,prob_alpha,prob_beta,prob_gamma");
    assert_eq!(lines.len(), 5);
    assert!(lines[1].starts_with("q0.png,gamma,"), "{csv}");
}

/// The same images as CSV rows of 16x16 flattened pixels (value / 255, the documented
/// pipeline): a Conv-4 checkpoint reshapes rows of C*H*W numbers, same probabilities.
fn csv_rows_adapt_like_pngs(root: &Path, ckpt: &Path, v: &serde_json::Value) {
    let preds = v["predictions"].as_array().unwrap();
    let px = |c: usize, seed: usize| -> String {
        let v: Vec<String> = pattern(c, seed)
            .iter()
            .map(|&p| format!("{}", p as f32 / 255.0))
            .collect();
        v.join(",")
    };
    let mut support_csv = String::new();
    for (name, c) in [("alpha", 11), ("beta", 12), ("gamma", 13)] {
        for i in 0..2 {
            support_csv.push_str(&format!("{},{name}\n", px(c, 100 + i)));
        }
    }
    let query_csv: String = [13, 11, 12, 11]
        .iter()
        .map(|&c| px(c, 200) + "\n")
        .collect();
    std::fs::write(root.join("support.csv"), support_csv).unwrap();
    std::fs::write(root.join("query.csv"), query_csv).unwrap();
    let (so, _) = run_ok(
        metalearn()
            .args(["adapt", "--format", "json", "--checkpoint"])
            .arg(ckpt)
            .args(["--support", "support.csv", "--query", "query.csv"])
            .current_dir(root),
    );
    let from_csv: serde_json::Value = serde_json::from_str(&so).unwrap();
    assert_eq!(from_csv["classes"], v["classes"]);
    for (a, b) in from_csv["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .zip(preds)
    {
        assert_eq!(a["prediction"], b["prediction"]);
        assert_eq!(a["probabilities"], b["probabilities"]);
    }
}

/// A query drawn in transparency (alpha) is ambiguous: an error naming the file.
fn transparent_query_is_an_error(root: &Path, ckpt: &Path, support: &Path) {
    let rgba = root.join("rgba-query");
    let alpha: Vec<u8> = pattern(11, 3).iter().flat_map(|&a| [0, 0, 0, a]).collect();
    let side = SIDE as u32;
    let (color, eight) = (png::ColorType::Rgba, png::BitDepth::Eight);
    common::write_png(
        &rgba.join("see-through.png"),
        side,
        side,
        color,
        eight,
        &alpha,
    );
    let se = run_err(&mut adapt_cmd(ckpt, support, &rgba));
    assert!(
        se.contains("see-through.png") && se.contains("transparency"),
        "{se}"
    );
}

/// Bad inputs through the binary: clean errors naming what is wrong.
fn bad_inputs_are_clean_errors(
    root: &Path,
    data: &Path,
    ckpt: &Path,
    support: &Path,
    query: &Path,
) {
    let empty = root.join("empty-support");
    std::fs::create_dir_all(&empty).unwrap();
    let one_png = support.join("alpha").join("s0.png");
    let se = run_err(&mut adapt_cmd(ckpt, &one_png, query));
    assert!(
        se.contains("s0.png") && se.contains("single image file"),
        "{se}"
    );
    let se = run_err(&mut adapt_cmd(ckpt, &empty, query));
    assert!(se.contains("empty-support") && se.contains("empty"), "{se}");
    let corrupt = root.join("corrupt.safetensors");
    let bytes = std::fs::read(ckpt).unwrap();
    std::fs::write(&corrupt, &bytes[..bytes.len() / 2]).unwrap();
    let se = run_err(&mut adapt_cmd(&corrupt, support, query));
    assert!(
        se.contains("corrupt.safetensors") && se.contains("corrupt or truncated"),
        "{se}"
    );
    let se = run_err(metalearn().args(["eval", "--checkpoint"]).arg(&corrupt));
    assert!(se.contains("corrupt.safetensors"), "{se}");
    let bad_cfg = root.join("bad.toml");
    std::fs::write(
        &bad_cfg,
        image_config(root, data, "name = \"protonet\"\nshots = 3", 10),
    )
    .unwrap();
    let se = run_err(metalearn().args(["train", "--config"]).arg(&bad_cfg));
    assert!(se.contains("bad.toml") && se.contains("shots"), "{se}");
}

#[test]
fn head_size_and_architecture_mismatches_are_errors() {
    let root = tmp("mismatch");
    let data = image_data(&root);
    let text = image_config(
        &root,
        &data,
        "name = \"maml\"\ninner_lr = 0.1\neval_inner_steps = 1",
        2,
    );
    let cfg = parse(&text);
    train(&cfg, &TrainOptions::default()).unwrap();
    let ckpt = root.join("run/best.safetensors");
    let (support, query) = more_classes_than_the_head(&root, &ckpt, &cfg);
    another_architecture_or_method(&ckpt, &text);
    files_that_are_not_checkpoints(&root, &support, &query);
    queries_of_the_wrong_kind(&root, &ckpt, &query);
    let _ = std::fs::remove_dir_all(&root);
}

/// The message of `result`, which must be an error.
fn error_text<T, E: std::fmt::Display>(result: Result<T, E>) -> String {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

/// Asserts that `message` holds every one of `parts`.
fn assert_mentions(message: &str, parts: &[&str]) {
    assert!(parts.iter().all(|p| message.contains(p)), "{message}");
}

/// N-way in the config larger than the checkpoint's 2-way head, and the same from a support
/// set of three classes. Returns that support folder and a query folder of one PNG.
fn more_classes_than_the_head(root: &Path, ckpt: &Path, cfg: &RunConfig) -> (PathBuf, PathBuf) {
    let mut wide = cfg.clone();
    wide.data.n_way = Some(3);
    let e = error_text(evaluate_checkpoint(ckpt, Some(&wide)));
    assert_mentions(&e, &["3 classes", "2-way head", "data.n_way"]);
    let support = root.join("support3");
    for c in 0..3 {
        write_png(&support.join(format!("k{c}")).join("a.png"), &pattern(c, 1));
    }
    let query = root.join("q");
    write_png(&query.join("x.png"), &pattern(0, 2));
    let e = error_text(adapt(ckpt, &support, &query));
    assert_mentions(&e, &["support3", "3 classes", "2-way head"]);
    (support, query)
}

/// Another architecture (wider filters) or another method's tensors than the checkpoint's.
fn another_architecture_or_method(ckpt: &Path, text: &str) {
    let other = parse(&text.replace("filters = 4", "filters = 8"));
    let e = error_text(evaluate_checkpoint(ckpt, Some(&other)));
    assert_mentions(
        &e,
        &["best.safetensors", "another architecture", "filters 8"],
    );
    let proto = parse(&text.replace(
        "name = \"maml\"\ninner_lr = 0.1\neval_inner_steps = 1",
        "name = \"relation\"",
    ));
    let e = error_text(evaluate_checkpoint(ckpt, Some(&proto)));
    assert_mentions(&e, &["trained with maml", "relation"]);
}

/// A safetensors file that is not a run checkpoint, garbage, and a missing file.
fn files_that_are_not_checkpoints(root: &Path, support: &Path, query: &Path) {
    let plain = root.join("plain.safetensors");
    let mut p = metalearn::nn::Params::<f32>::new();
    p.push(
        "w",
        metalearn::tensor::Tensor::from_vec(vec![1.0, 2.0], &[2]),
    );
    metalearn::nn::checkpoint::save(&plain, &p, &Default::default()).unwrap();
    let e = error_text(adapt(&plain, support, query));
    assert_mentions(&e, &["plain.safetensors", "metalearn train"]);
    let junk = root.join("junk.safetensors");
    std::fs::write(&junk, b"definitely not a checkpoint").unwrap();
    let e = error_text(evaluate_checkpoint(&junk, None));
    assert_mentions(&e, &["junk.safetensors", "corrupt"]);
    let e = error_text(evaluate_checkpoint(&root.join("missing.safetensors"), None));
    assert_mentions(&e, &["missing.safetensors", "not found"]);
}

/// Queries of the wrong kind (a CSV for an image model), then the right kind.
fn queries_of_the_wrong_kind(root: &Path, ckpt: &Path, query: &Path) {
    let qcsv = root.join("q.csv");
    std::fs::write(&qcsv, "1,2,3\n").unwrap();
    let two = root.join("support2");
    for c in 0..2 {
        write_png(&two.join(format!("k{c}")).join("a.png"), &pattern(c, 1));
    }
    let e = error_text(adapt(ckpt, &two, &qcsv));
    assert!(e.contains("q.csv"), "{e}");
    let ok = adapt(ckpt, &two, query).unwrap();
    assert_eq!(ok.predictions.len(), 1);
}

#[test]
fn adapt_on_csv_vectors() {
    let root = tmp("csv");
    let ckpt = train_on_clustered_csv(&root);
    let (support, query) = write_new_class_csvs(&root);
    let r = adapt(&ckpt, &support, &query).unwrap();
    assert_eq!(r.classes, ["blue", "green", "red"]);
    let got: Vec<&str> = r
        .predictions
        .iter()
        .map(|p| p.prediction.as_str())
        .collect();
    assert_eq!(got, ["blue", "red", "green", "red"]);
    assert_eq!(r.query_score, Some(1.0));
    let csv = r.to_csv();
    assert!(
        csv.starts_with("query,label,prediction,prob_blue,prob_green,prob_red\nrow 1,blue,blue,"),
        "{csv}"
    );

    // Query rows of the wrong width name the file and the row.
    let badq = root.join("badq.csv");
    std::fs::write(&badq, "1,2\n").unwrap();
    let e = adapt(&ckpt, &support, &badq).err().unwrap().to_string();
    assert!(e.contains("badq.csv") && e.contains("row 1"), "{e}");
    let _ = std::fs::remove_dir_all(&root);
}

/// A ProtoNet (MLP 3-16, 2-way 2-shot) trained on a CSV of 9 tight clusters with string
/// labels; returns its best checkpoint.
fn train_on_clustered_csv(root: &Path) -> PathBuf {
    let centre = |c: usize| {
        [
            (c % 3) as f32 * 4.0,
            (c / 3) as f32 * 4.0,
            (c as f32).sin() * 3.0,
        ]
    };
    let mut text = String::from("x,y,z,label\n");
    for c in 0..9 {
        for i in 0..5 {
            let m = centre(c);
            let d = 0.05 * i as f32;
            text.push_str(&format!("{},{},{},cls{c}\n", m[0] + d, m[1] - d, m[2] + d));
        }
    }
    let data = root.join("train.csv");
    std::fs::write(&data, text).unwrap();
    let cfg = parse(&format!(
        r#"
[algorithm]
name = "protonet"
[backbone]
name = "mlp"
sizes = [3, 16]
[data]
dataset = "csv"
data_dir = {:?}
n_way = 2
k_shot = 2
q_query = 2
[train]
iterations = 6
meta_batch = 2
val_every = 3
val_episodes = 4
out_dir = {:?}
[eval]
episodes = 10
"#,
        data.display().to_string(),
        root.join("run").display().to_string()
    ));
    train(&cfg, &TrainOptions::default()).unwrap();
    root.join("run/best.safetensors")
}

/// New classes: far-apart centres; the query CSV carries true labels in its last column.
/// Returns the support and query CSVs.
fn write_new_class_csvs(root: &Path) -> (PathBuf, PathBuf) {
    let support = root.join("support.csv");
    let query = root.join("query.csv");
    let new = [
        ("red", [20.0f32, 0.0, 0.0]),
        ("green", [0.0, 20.0, 0.0]),
        ("blue", [0.0, 0.0, 20.0]),
    ];
    let mut s = String::from("a,b,c,label\n");
    for (name, m) in new {
        for i in 0..2 {
            s.push_str(&format!(
                "{},{},{},{name}\n",
                m[0] + i as f32 * 0.1,
                m[1],
                m[2]
            ));
        }
    }
    std::fs::write(&support, s).unwrap();
    let mut q = String::new();
    for (name, m) in [new[2], new[0], new[1], new[0]] {
        q.push_str(&format!("{},{},{},{name}\n", m[0] + 0.2, m[1] - 0.1, m[2]));
    }
    std::fs::write(&query, q).unwrap();
    (support, query)
}

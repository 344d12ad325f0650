//! Run safety through the real binary (issue 14, the run part): one writer per run folder (a
//! second writer is refused naming the holder's pid; a dead holder's lock is taken over),
//! `--resume` from `best.safetensors` alone, no checkpoint overwritten without `--overwrite`,
//! divergence (NaN validation, the `diverge_loss` threshold, the last finite checkpoint kept),
//! non-finite checkpoints and inputs refused by `eval` and `adapt`, `--threads 0`, and zero,
//! negative, huge and non-finite config values of every command named with key and range.
//! Every run is a tiny sinusoid or CSV config made here (seconds each).

mod common;

use common::bin::metalearn;
use std::path::{Path, PathBuf};
use std::process::Output;

fn tmp(name: &str) -> PathBuf {
    common::fresh_dir("metalearn-run-safety", name)
}

/// Runs the binary with `args`: (exit success, stdout, stderr).
fn run(args: &[&str]) -> (bool, String, String) {
    let out: Output = metalearn().args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs the binary and expects failure with a message holding every one of `parts`.
fn fails_with(args: &[&str], parts: &[&str]) -> String {
    let (ok, so, se) = run(args);
    assert!(!ok, "{args:?} should fail:\nstdout: {so}\nstderr: {se}");
    for p in parts {
        assert!(se.contains(p), "{args:?}: `{p}` not in the error:\n{se}");
    }
    assert!(!se.contains("panicked"), "{args:?} panicked:\n{se}");
    se
}

/// A tiny sinusoid MAML run (`common::SINUSOID`) writing into `out`.
fn sinusoid(out: &Path, extra_train: &str) -> String {
    format!(
        "{}out_dir = {:?}\n{extra_train}\n",
        common::SINUSOID,
        out.display().to_string()
    )
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_second_writer_is_refused_naming_the_holder_and_a_dead_holders_lock_is_taken_over() {
    let dir = tmp("lock");
    let out = dir.join("run");
    let long = sinusoid(&out, "").replace("iterations = 12", "iterations = 100000000");
    let long = long
        .replace("val_every = 3", "val_every = 0")
        .replace("checkpoint_every = 4", "checkpoint_every = 100000000");
    let cfg = write(&dir, "long.toml", &long);
    let mut first = metalearn()
        .args(["train", "--config", &cfg, "--no-eval", "--json"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = first.id().to_string();
    let lock = out.join("metalearn.lock");
    let t0 = std::time::Instant::now();
    while std::fs::read_to_string(&lock).unwrap_or_default().trim() != pid {
        assert!(
            t0.elapsed().as_secs() < 60,
            "the first run never wrote its pid into {}",
            lock.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Started while the first holds the lock: refused before touching anything.
    let short = write(&dir, "short.toml", &sinusoid(&out, ""));
    fails_with(
        &["train", "--config", &short, "--no-eval"],
        &["in use by another metalearn process", &pid, "run"],
    );
    assert!(!out.join("last.safetensors").exists());
    // The holder dies without releasing: its pid stays in the file, the lock is stale.
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(std::fs::read_to_string(&lock).unwrap().trim(), pid);
    let (ok, _, se) = run(&["train", "--config", &short, "--no-eval"]);
    assert!(ok, "{se}");
    assert!(
        se.contains("taking over the lock of process") && se.contains(&pid),
        "{se}"
    );
    // A clean finish leaves an empty lock file: no note next time.
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), "");
    let (ok, _, se) = run(&["train", "--config", &short, "--no-eval", "--overwrite"]);
    assert!(ok && !se.contains("taking over"), "{se}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn mtl_transfer_and_search_refuse_a_locked_output_folder() {
    let dir = tmp("lock-others");
    // mtl writes `<out_dir>/<method>`; transfer and search their `out_dir`.
    let mtl_out = dir.join("mtl");
    let held = metalearn::run::RunLock::acquire(&mtl_out.join("equal")).unwrap();
    let pid = std::process::id().to_string();
    let mtl = write(&dir, "mtl.toml", &mtl_config(&dir.join("nodata"), ""));
    let mtl_dir = mtl_out.display().to_string();
    fails_with(
        &["mtl", "--config", &mtl, "--out-dir", &mtl_dir],
        &["in use", &pid],
    );
    drop(held);
    let t_out = dir.join("transfer");
    let _held = metalearn::run::RunLock::acquire(&t_out).unwrap();
    let t = write(&dir, "t.toml", &transfer_config(&t_out, ""));
    fails_with(&["transfer", "--config", &t], &["in use", &pid]);
    let s_out = dir.join("search");
    let _held2 = metalearn::run::RunLock::acquire(&s_out).unwrap();
    write(&dir, "base.toml", &sinusoid(&dir.join("base-run"), ""));
    let s = write(&dir, "s.toml", &search_config(&s_out, ""));
    fails_with(&["search", "--config", &s], &["in use", &pid]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn resume_works_from_best_alone_and_says_why_not_otherwise() {
    let dir = tmp("best");
    let (a, b) = (dir.join("a"), dir.join("b"));
    let ca = write(&dir, "a.toml", &sinusoid(&a, ""));
    let cb = write(&dir, "b.toml", &sinusoid(&b, ""));
    fails_with(
        &["train", "--config", &cb, "--resume", "--no-eval"],
        &["nothing to resume", "best.safetensors", "last.safetensors"],
    );
    let (ok, full, se) = run(&["train", "--config", &ca, "--no-eval", "--json"]);
    assert!(ok, "{se}");
    // "Killed" after 7 iterations (as in tests/train_resume.rs), and its `last` lost: only
    // best.safetensors (of iteration 3 or 6) is left.
    let cfg_b = metalearn::fewshot::RunConfig::load(Path::new(&cb)).unwrap();
    let stop = metalearn::fewshot::TrainOptions {
        stop_after: Some(7),
        ..Default::default()
    };
    assert!(
        metalearn::fewshot::train(&cfg_b, &stop)
            .unwrap()
            .interrupted
    );
    std::fs::remove_file(b.join("last.safetensors")).unwrap();
    let (ok, resumed, se) = run(&["train", "--config", &cb, "--resume", "--no-eval", "--json"]);
    assert!(ok, "{se}");
    let (full, resumed) = (&json_lines(&full)[0], &json_lines(&resumed)[0]);
    let from = resumed["resumed_from"].as_u64().unwrap();
    assert!(from == 3 || from == 6, "resumed from best at {from}");
    assert_eq!(full["history"], resumed["history"]);
    assert_eq!(full["best"], resumed["best"]);
    assert_eq!(
        common::checkpoint_params(&a.join("last.safetensors")),
        common::checkpoint_params(&b.join("last.safetensors"))
    );
    // A best checkpoint without the loop state (older metalearn): the reason is given.
    std::fs::remove_file(b.join("last.safetensors")).unwrap();
    let best = b.join("best.safetensors");
    let mut ck = metalearn::nn::checkpoint::load::<f32>(&best).unwrap();
    ck.metadata.remove("metalearn.loop_state");
    metalearn::nn::checkpoint::save(&best, &ck.params, &ck.metadata).unwrap();
    fails_with(
        &["train", "--config", &cb, "--resume", "--no-eval"],
        &["best.safetensors", "metalearn.loop_state", "--overwrite"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_checkpoint_is_never_overwritten_without_overwrite() {
    let dir = tmp("overwrite");
    let out = dir.join("run");
    let cfg = write(&dir, "c.toml", &sinusoid(&out, ""));
    let (ok, _, se) = run(&["train", "--config", &cfg, "--no-eval"]);
    assert!(ok, "{se}");
    std::fs::remove_file(out.join("last.safetensors")).unwrap();
    let before = std::fs::read(out.join("best.safetensors")).unwrap();
    fails_with(
        &["train", "--config", &cfg, "--no-eval"],
        &[
            "already holds a run (best.safetensors)",
            "--overwrite",
            "--resume",
        ],
    );
    assert_eq!(std::fs::read(out.join("best.safetensors")).unwrap(), before);
    let (ok, _, se) = run(&["train", "--config", &cfg, "--no-eval", "--overwrite"]);
    assert!(ok, "{se}");
    assert!(out.join("last.safetensors").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn nan_validation_fails_loudly_and_writes_no_nan() {
    let dir = tmp("nanval");
    let out = dir.join("run");
    // A large inner step for many evaluation steps: training stays finite, the validation
    // adaptation blows up to NaN.
    let text = sinusoid(&out, "")
        .replace("inner_lr = 0.01", "inner_lr = 1.0")
        .replace("eval_inner_steps = 3", "eval_inner_steps = 50");
    let cfg = write(&dir, "c.toml", &text);
    for json in [false, true] {
        let mut args = vec!["train", "--config", &cfg, "--overwrite"];
        if json {
            args.push("--json");
        }
        let (ok, so, se) = run(&args);
        assert!(!ok, "a NaN validation must fail:\n{so}\n{se}");
        assert!(
            se.contains("diverged at iteration 3") && se.contains("validation"),
            "{se}"
        );
        assert!(!so.contains("NaN") && !so.contains("null"), "{so}");
    }
    assert!(!out.join("best.safetensors").exists() && !out.join("last.safetensors").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_divergence_threshold_stops_the_run_and_keeps_the_last_finite_checkpoint() {
    let dir = tmp("threshold");
    let out = dir.join("run");
    let ok_cfg = write(&dir, "ok.toml", &sinusoid(&out, ""));
    let (ok, _, se) = run(&[
        "train",
        "--config",
        &ok_cfg,
        "--no-eval",
        "--iterations",
        "8",
    ]);
    assert!(ok, "{se}");
    let kept = common::checkpoint_params(&out.join("last.safetensors"));
    // `train.diverge_loss` may change on resume; every loss is above this one.
    let low = write(&dir, "low.toml", &sinusoid(&out, "diverge_loss = 1e-9"));
    fails_with(
        &["train", "--config", &low, "--resume", "--no-eval"],
        &[
            "diverged at iteration 9",
            "maml on sinusoid",
            "above `train.diverge_loss`",
            "last written at iteration 8",
        ],
    );
    let meta = metalearn::nn::checkpoint::read_metadata(out.join("last.safetensors")).unwrap();
    assert_eq!(meta["metalearn.iteration"], "8");
    assert_eq!(
        common::checkpoint_params(&out.join("last.safetensors")),
        kept
    );
    assert!(kept.iter().all(|(_, v)| v.iter().all(|x| x.is_finite())));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn threads_zero_is_an_error() {
    let dir = tmp("threads");
    let csv = write(&dir, "d.csv", "1,2,0\n3,4,1\n5,6,0\n7,8,1\n");
    let (ok, _, se) = run(&["--threads", "1", "data", "inspect", &csv]);
    assert!(ok, "{se}");
    fails_with(
        &["--threads", "0", "data", "inspect", &csv],
        &["--threads 0", "[1, 4096]"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Bad values of a train config: (the line of the sinusoid config replaced, its replacement,
/// every part of the error).
const BAD_TRAIN_VALUES: &[(&str, &str, &[&str])] = &[
    (
        "meta_lr = 0.01",
        "meta_lr = 1e6",
        &["train.meta_lr", "1000000", "(0, 1e2]"],
    ),
    ("meta_lr = 0.01", "meta_lr = -1.0", &["train.meta_lr", "-1"]),
    ("meta_lr = 0.01", "meta_lr = nan", &["train.meta_lr", "NaN"]),
    (
        "meta_batch = 3",
        "meta_batch = 0",
        &["train.meta_batch", "= 0", "[1, 1000000]"],
    ),
    (
        "iterations = 12",
        "iterations = 0",
        &["train.iterations", "= 0"],
    ),
    (
        "k_shot = 5",
        "k_shot = 10000000",
        &["data.k_shot", "10000000"],
    ),
    (
        "val_episodes = 4",
        "val_episodes = 0",
        &["train.val_episodes"],
    ),
    ("episodes = 20", "episodes = 0", &["eval.episodes"]),
    ("val_every = 3", "val_every = -1", &["val_every", "-1"]),
    (
        "seed = 5",
        "seed = 5\ndiverge_loss = 0.0",
        &["train.diverge_loss", "= 0"],
    ),
    (
        "seed = 5",
        "seed = 5\ndiverge_loss = -1.0",
        &["train.diverge_loss"],
    ),
    (
        "seed = 5",
        "seed = 5\ndiverge_loss = inf",
        &["train.diverge_loss", "inf"],
    ),
    ("inner_lr = 0.01", "inner_lr = inf", &["inner_lr", "inf"]),
    (
        "inner_lr = 0.01",
        "inner_lr = 1e9",
        &["inner_lr", "1000000000"],
    ),
    (
        "eval_inner_steps = 3",
        "eval_inner_steps = 0",
        &["eval_inner_steps", "at least 1"],
    ),
    (
        "sizes = [1, 16]",
        "sizes = [1, 0]",
        &["backbone.sizes", "0"],
    ),
];

#[test]
fn bad_train_config_values_name_the_key_the_value_and_the_range() {
    let dir = tmp("train-values");
    let base = sinusoid(&dir.join("run"), "");
    for (i, (from, to, parts)) in BAD_TRAIN_VALUES.iter().enumerate() {
        assert!(base.contains(from), "{from}");
        let cfg = write(&dir, &format!("c{i}.toml"), &base.replacen(from, to, 1));
        fails_with(&["train", "--config", &cfg, "--no-eval"], parts);
    }
    let conv = base
        .replace(
            "name = \"mlp\"\nsizes = [1, 16]",
            "name = \"conv4\"\nimage_size = 0",
        )
        .replace(
            "dataset = \"sinusoid\"",
            "dataset = \"image_folder\"\ndata_dir = \"x\"\nn_way = 2",
        );
    let cfg = write(&dir, "conv.toml", &conv);
    fails_with(
        &["train", "--config", &cfg],
        &["backbone.image_size", "= 0"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn mtl_config(data: &Path, train_extra: &str) -> String {
    format!(
        r#"
name = "tiny"
[data]
dataset = "mnist"
path = {:?}
[model]
trunk = [
  {{ type = "flatten" }},
  {{ type = "linear", out = 8 }},
  {{ type = "relu" }},
]
[[tasks]]
name = "digit"
kind = "multiclass"
label = "class"
classes = 10
[[tasks]]
name = "parity"
kind = "multiclass"
label = "class_parity"
[train]
epochs = 1
batch_size = 16
lr = 1e-3
{train_extra}
[baselines]
single_task = false
"#,
        data.display().to_string()
    )
}

/// Tiny MNIST-format IDX files (gray 28x28, labels 0..9) in `dir`.
fn tiny_mnist(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for (prefix, n) in [("train", 64u32), ("t10k", 20u32)] {
        let mut img = vec![0, 0, 8, 3];
        for d in [n, 28, 28] {
            img.extend_from_slice(&d.to_be_bytes());
        }
        let mut lab = vec![0, 0, 8, 1];
        lab.extend_from_slice(&n.to_be_bytes());
        for i in 0..n {
            let c = (i % 10) as u8;
            img.extend((0..784u32).map(|p| if p % 10 == u32::from(c) { 200 } else { 0 }));
            lab.push(c);
        }
        std::fs::write(dir.join(format!("{prefix}-images.idx3-ubyte")), img).unwrap();
        std::fs::write(dir.join(format!("{prefix}-labels.idx1-ubyte")), lab).unwrap();
    }
}

#[test]
fn mtl_divergence_and_bad_values_fail_loudly() {
    let dir = tmp("mtl");
    let data = dir.join("mnist");
    tiny_mnist(&data);
    let ok = write(&dir, "ok.toml", &mtl_config(&data, ""));
    let (good, so, se) = run(&["mtl", "--config", &ok, "--json"]);
    assert!(good, "the tiny config trains:\n{so}\n{se}");
    let low = write(&dir, "low.toml", &mtl_config(&data, "diverge_loss = 1e-9"));
    fails_with(
        &["mtl", "--config", &low],
        &[
            "diverged at iteration 1",
            "task digit",
            "above `train.diverge_loss`",
        ],
    );
    let cases: &[(&str, &[&str])] = &[
        ("lr = 1e6", &["train.lr", "1000000"]),
        ("lr = -0.1", &["train.lr", "-0.1"]),
        ("lr = nan", &["train.lr", "NaN"]),
        ("batch_size = 0", &["train.batch_size", "= 0"]),
        ("epochs = 0", &["train.epochs", "= 0"]),
        ("epochs = 1000000000", &["train.epochs", "1000000000"]),
        ("diverge_loss = 0.0", &["train.diverge_loss"]),
    ];
    for (i, (line, parts)) in cases.iter().enumerate() {
        let key = line.split(' ').next().unwrap();
        let text = mtl_config(&data, "")
            .lines()
            .filter(|l| !l.starts_with(&format!("{key} =")))
            .collect::<Vec<_>>()
            .join("\n")
            .replace("[train]", &format!("[train]\n{line}"));
        let cfg = write(&dir, &format!("bad{i}.toml"), &text);
        fails_with(&["mtl", "--config", &cfg], parts);
    }
    let out0 = mtl_config(&data, "").replace("out = 8", "out = 0");
    let cfg = write(&dir, "out0.toml", &out0);
    fails_with(&["mtl", "--config", &cfg], &["model.trunk[1].out", "= 0"]);
    let _ = std::fs::remove_dir_all(&dir);
}

fn transfer_config(out: &Path, extra: &str) -> String {
    format!(
        r#"
name = "t"
seeds = [0]
budgets = [10]
strategies = ["scratch"]
out_dir = {:?}
{extra}
[model]
arch = "mlp"
hidden = [8]
[source]
[target]
dataset = "mnist"
path = "does-not-exist"
steps = 5
"#,
        out.display().to_string()
    )
}

#[test]
fn bad_transfer_values_name_the_key_the_value_and_the_range() {
    let dir = tmp("transfer");
    let base = transfer_config(&dir.join("out"), "");
    let cases: &[(&str, &str, &[&str])] = &[
        ("budgets = [10]", "budgets = [0]", &["budgets[0]", "= 0"]),
        ("steps = 5", "steps = 0", &["target.steps", "= 0"]),
        (
            "steps = 5",
            "steps = 5\nlr = 1e6",
            &["target.lr", "1000000"],
        ),
        ("steps = 5", "steps = 5\nlr = nan", &["target.lr", "NaN"]),
        (
            "steps = 5",
            "steps = 5\nbatch_size = 0",
            &["target.batch_size"],
        ),
        (
            "hidden = [8]",
            "hidden = [8, 0]",
            &["model.hidden[1]", "= 0"],
        ),
    ];
    for (i, (from, to, parts)) in cases.iter().enumerate() {
        assert!(base.contains(from), "{from}");
        let cfg = write(&dir, &format!("t{i}.toml"), &base.replacen(from, to, 1));
        fails_with(&["transfer", "--config", &cfg], parts);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn search_config(out: &Path, extra: &str) -> String {
    format!(
        r#"
base = "base.toml"
method = "grid"
out_dir = {:?}
{extra}
[space]
"train.meta_lr" = {{ values = [0.01, 0.02] }}
"#,
        out.display().to_string()
    )
}

#[test]
fn bad_search_values_name_the_key_the_value_and_the_range() {
    let dir = tmp("search");
    write(&dir, "base.toml", &sinusoid(&dir.join("base-run"), ""));
    for (extra, parts) in [
        ("eta = 1", &["eta", "= 1", "[2, 1000]"][..]),
        ("workers = 100000", &["workers", "100000"][..]),
        ("trials = 1000000000", &["trials", "1000000000"][..]),
    ] {
        let cfg = write(&dir, "s.toml", &search_config(&dir.join("out"), extra));
        fails_with(&["search", "--config", &cfg], parts);
    }
    // A searched value out of range is rejected before any trial, naming the key.
    let text = search_config(&dir.join("out"), "").replace("[0.01, 0.02]", "[0.01, 1e6]");
    let cfg = write(&dir, "s2.toml", &text);
    fails_with(&["search", "--config", &cfg], &["train.meta_lr", "1000000"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A CSV of 8 well-separated classes ([`common::write_class_csv`]) and a ProtoNet run on it.
fn csv_run(dir: &Path) -> (PathBuf, PathBuf) {
    let csv = dir.join("d.csv");
    common::write_class_csv(&csv);
    let out = dir.join("run");
    let train = format!(
        "iterations = 6\nmeta_batch = 2\nval_every = 3\nval_episodes = 4\ncheckpoint_every = 3\nout_dir = {:?}",
        out.display().to_string()
    );
    let cfg = common::csv_protonet_config(&csv, &train);
    let c = write(dir, "p.toml", &cfg);
    let (ok, _, se) = run(&["train", "--config", &c, "--no-eval"]);
    assert!(ok, "{se}");
    (csv, out.join("best.safetensors"))
}

/// `src` with every tensor of the learner's parameters replaced by `f(value)`.
fn doctored(src: &Path, dst: &Path, f: impl Fn(f32) -> f32) {
    let ck = metalearn::nn::checkpoint::load::<f32>(src).unwrap();
    let mut p = metalearn::nn::Params::new();
    for (n, t) in ck.params.iter() {
        let v: Vec<f32> = if n.starts_with("param/") {
            t.data().iter().map(|&x| f(x)).collect()
        } else {
            t.to_vec()
        };
        p.push(n, metalearn::Tensor::from_vec(v, t.shape()));
    }
    metalearn::nn::checkpoint::save(dst, &p, &ck.metadata).unwrap();
}

#[test]
fn eval_and_adapt_refuse_non_finite_weights_outputs_and_inputs() {
    let dir = tmp("nonfinite");
    let (csv, best) = csv_run(&dir);
    let nan = dir.join("nan.safetensors");
    doctored(&best, &nan, |_| f32::NAN);
    let nan_s = nan.display().to_string();
    fails_with(
        &["eval", "--checkpoint", &nan_s],
        &["nan.safetensors", "non-finite", "NaN"],
    );
    // Finite but huge weights: the distances overflow, every score is NaN.
    let huge = dir.join("huge.safetensors");
    doctored(&best, &huge, |x| if x >= 0.0 { 3e38 } else { -3e38 });
    let huge_s = huge.display().to_string();
    let (ok, so, se) = run(&["eval", "--checkpoint", &huge_s, "--json"]);
    assert!(!ok, "eval of non-finite scores must fail:\n{so}\n{se}");
    assert!(
        se.contains("huge.safetensors") && se.contains("not finite"),
        "{se}"
    );
    assert!(!so.contains("NaN") && !so.contains("null"), "{so}");
    // adapt: a NaN or Inf query cell is an error naming the row and column.
    let support = csv.display().to_string();
    let best_s = best.display().to_string();
    for (bad, what) in [("nan", "nan"), ("inf", "inf")] {
        let q = write(&dir, "q.csv", &format!("0.5,0.1,-1\n0.2,{bad},-2\n"));
        fails_with(
            &[
                "adapt",
                "--checkpoint",
                &best_s,
                "--support",
                &support,
                "--query",
                &q,
            ],
            &["q.csv", "row 2, column 2", what, "not a finite number"],
        );
    }
    let q = write(&dir, "q.csv", "0.5,0.1,-1\n");
    fails_with(
        &[
            "adapt",
            "--checkpoint",
            &huge_s,
            "--support",
            &support,
            "--query",
            &q,
        ],
        &["not finite"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

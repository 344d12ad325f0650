//! Runs under `mpirun -n 2` and `-n 3` (cargo feature `mpi`; README: Multi-process and
//! multi-node) against the same runs in one process, the oracle: a second-order MAML run and a
//! ProtoNet run on Omniglot end with the same parameters bit for bit (and the same validation
//! history and test score); a rank that errors or is killed stops the whole job at once with a
//! message naming it, and `--resume` (with another number of ranks) then ends with the
//! parameters of an uninterrupted run.
//!
//! Needs `mpirun` on PATH (MPICH: `apt-get install mpich libmpich-dev`) and the Omniglot data.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_metalearn");

/// `metalearn --threads 1 ARGS` in one process (MPI initialised as a job of one).
fn single(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--threads")
        .arg("1")
        .args(args)
        .output()
        .unwrap()
}

/// `mpirun -n N metalearn --threads 1 ARGS`.
fn mpirun(n: usize, args: &[&str]) -> Command {
    let mut c = Command::new("mpirun");
    c.arg("-n")
        .arg(n.to_string())
        .arg(BIN)
        .arg("--threads")
        .arg("1")
        .args(args);
    c
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write_config(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, body).unwrap();
    p
}

/// A small Omniglot run: `head` (the `[algorithm]` and `[backbone]` tables), 5-way 1-shot
/// 2-query, `meta_batch` tasks per step (5: blocks 3+2 under 2 ranks, 2+2+1 under 3), validation
/// after every step on 4 episodes, a checkpoint every `every` steps, 5 test episodes.
fn omniglot_config(head: &str, data: &Path, iterations: usize, every: usize) -> String {
    format!(
        r#"{head}
[data]
dataset = "omniglot"
data_dir = {data:?}
n_way = 5
k_shot = 1
q_query = 2
[eval]
episodes = 5
[train]
iterations = {iterations}
meta_batch = 5
meta_lr = 0.01
seed = 7
val_every = 1
val_episodes = 4
checkpoint_every = {every}
"#
    )
}

/// Second-order MAML on a Conv-4 with 8 filters.
const MAML: &str = r#"
[algorithm]
name = "maml"
inner_lr = 0.4
inner_steps = 1
eval_inner_steps = 1
first_order = false
[backbone]
name = "conv4"
in_channels = 1
filters = 8
image_size = 28
blocks = 4
"#;

/// The `history` of a run folder's history.json (the validation curve).
fn history(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("history.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["history"].clone()
}

/// The test score lines of a `train` report (`accuracy ...% ± ...%`), without the timings.
fn score(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("95% CI"))
        .unwrap_or_else(|| panic!("no test score in:\n{text}"));
    line.split(" | eval").next().unwrap().to_string()
}

/// Trains `cfg` in one process and under 2 and 3 ranks; asserts equal final parameters, bit
/// for bit, the same validation history and test score, and one report (rank 0's) per run.
fn check_same_as_one_process(name: &str, body: &str) {
    let dir = common::fresh_dir("metalearn-mpi", name);
    let cfg = write_config(&dir, name, body);
    let cfg = cfg.to_str().unwrap();
    let one = dir.join("one");
    let out1 = single(&["train", "--config", cfg, "--out-dir", one.to_str().unwrap()]);
    assert_ok(&out1, "the single-process run");
    let params1 = common::checkpoint_params(&one.join("last.safetensors"));
    for n in [2, 3] {
        let d = dir.join(format!("n{n}"));
        let out = mpirun(
            n,
            &["train", "--config", cfg, "--out-dir", d.to_str().unwrap()],
        )
        .output()
        .unwrap();
        assert_ok(&out, &format!("mpirun -n {n}"));
        let params = common::checkpoint_params(&d.join("last.safetensors"));
        assert_eq!(params.len(), params1.len());
        for ((na, a), (nb, b)) in params1.iter().zip(&params) {
            assert_eq!(na, nb);
            let same = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "{name}: parameter {na} differs under {n} ranks");
        }
        assert_eq!(
            history(&d),
            history(&one),
            "{name}: validation under {n} ranks"
        );
        assert_eq!(
            score(&out),
            score(&out1),
            "{name}: test score under {n} ranks"
        );
        let reports = |o: &Output| String::from_utf8_lossy(&o.stdout).matches("95% CI").count();
        assert_eq!(reports(&out), 1, "{name}: rank 0 alone prints");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn second_order_maml_equals_one_process_bit_for_bit() {
    let Some(data) = common::omniglot() else {
        return;
    };
    check_same_as_one_process("maml", &omniglot_config(MAML, &data, 3, 1));
}

#[test]
fn protonet_equals_one_process() {
    let Some(data) = common::omniglot() else {
        return;
    };
    // 2 episodes per step: under 3 ranks, rank 2 has none (and takes the shapes from rank 0).
    let body = omniglot_config(common::SMALL_CONV4_PROTONET, &data, 3, 1)
        .replace("meta_batch = 5", "meta_batch = 2");
    assert!(body.contains("meta_batch = 2"));
    check_same_as_one_process("protonet", &body);
}

/// Waits for `child` at most `limit`; its output, or `None` (after killing it) when it ran
/// past `limit`.
fn wait_for(mut child: std::process::Child, limit: Duration) -> Option<Output> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if child.try_wait().unwrap().is_some() {
            return Some(child.wait_with_output().unwrap());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// A rank whose config names a missing data folder (MPMD launch: rank 1 gets another
/// config) stops the job at once: a non-zero exit and a message naming rank 1.
#[test]
fn a_rank_that_errors_stops_the_job_naming_it() {
    let Some(data) = common::omniglot() else {
        return;
    };
    let dir = common::fresh_dir("metalearn-mpi", "error");
    let good = write_config(&dir, "good", &omniglot_config(MAML, &data, 50, 1));
    let bad_data = dir.join("no-such-omniglot");
    let bad = write_config(&dir, "bad", &omniglot_config(MAML, &bad_data, 50, 1));
    let run = dir.join("run");
    let rank = |cfg: &Path| {
        vec![
            "-n".to_string(),
            "1".into(),
            BIN.into(),
            "--threads".into(),
            "1".into(),
            "train".into(),
            "--config".into(),
            cfg.display().to_string(),
            "--out-dir".into(),
            run.display().to_string(),
        ]
    };
    let mut args = rank(&good);
    args.push(":".into());
    args.extend(rank(&bad));
    let child = Command::new("mpirun")
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_for(child, Duration::from_secs(60)).expect("the job hung after rank 1 failed");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rank 1 of 2"), "{err}");
    assert!(err.contains("no-such-omniglot"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The pid of the process of rank `rank` (environment `PMI_RANK`) running `BIN` on a command
/// line that names `run_dir`.
fn rank_pid(rank: usize, run_dir: &Path) -> Option<u32> {
    let want = format!("PMI_RANK={rank}");
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let exe = std::fs::read_link(e.path().join("exe")).unwrap_or_default();
        if exe != Path::new(BIN) {
            continue;
        }
        let env = std::fs::read(e.path().join("environ")).unwrap_or_default();
        let ours =
            String::from_utf8_lossy(&std::fs::read(e.path().join("cmdline")).unwrap_or_default())
                .contains(run_dir.to_str().unwrap());
        if ours && env.split(|&b| b == 0).any(|v| v == want.as_bytes()) {
            return Some(pid);
        }
    }
    None
}

/// Iterations done by a run folder's `last.safetensors` (0 when there is none yet).
fn checkpointed(dir: &Path) -> usize {
    metalearn::nn::checkpoint::read_metadata(dir.join("last.safetensors"))
        .ok()
        .and_then(|m| m.get("metalearn.iteration").and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}

/// Kills rank 1 of a 2-rank MAML run once a checkpoint is written: the job ends within seconds
/// with a non-zero exit naming rank 1; `--resume` under 3 ranks then ends with the parameters
/// of an uninterrupted single-process run, bit for bit.
#[test]
fn a_killed_rank_stops_the_job_and_resume_finishes_the_run() {
    let Some(data) = common::omniglot() else {
        return;
    };
    let dir = common::fresh_dir("metalearn-mpi", "kill");
    let iterations = 40;
    let cfg = write_config(&dir, "maml", &omniglot_config(MAML, &data, iterations, 2));
    let cfg = cfg.to_str().unwrap();
    let (one, run) = (dir.join("one"), dir.join("run"));
    let out1 = single(&[
        "train",
        "--config",
        cfg,
        "--out-dir",
        one.to_str().unwrap(),
        "--no-eval",
    ]);
    assert_ok(&out1, "the uninterrupted run");

    let run_s = run.to_str().unwrap();
    let child = mpirun(
        2,
        &["train", "--config", cfg, "--out-dir", run_s, "--no-eval"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let start = Instant::now();
    while checkpointed(&run) < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no checkpoint written"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = rank_pid(1, &run).expect("rank 1's process");
    let killed = Command::new("kill")
        .arg("-9")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    let out = wait_for(child, Duration::from_secs(30)).expect("the job hung after rank 1 died");
    assert!(
        !out.status.success(),
        "the job succeeded with a rank killed"
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // MPICH names the dead process by pid; rank 0's first line names each rank's pid.
    assert!(said.contains(&format!("PID {pid}")), "{said}");
    assert!(said.contains(&format!("rank 1 pid {pid} on")), "{said}");
    let done = checkpointed(&run);
    assert!(
        (2..iterations).contains(&done),
        "killed after {done} iterations"
    );

    let out = mpirun(
        3,
        &[
            "train",
            "--config",
            cfg,
            "--out-dir",
            run_s,
            "--no-eval",
            "--resume",
        ],
    )
    .output()
    .unwrap();
    assert_ok(&out, "the resumed run");
    assert_eq!(
        common::checkpoint_params(&run.join("last.safetensors")),
        common::checkpoint_params(&one.join("last.safetensors")),
        "resumed under 3 ranks"
    );
    assert_eq!(history(&run), history(&one));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The JSON report a run printed on stdout (rank 0's: the only one).
fn json_report(out: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("{e}: not one JSON report:\n{text}"))
}

/// `a` and `b` agree to `tol` (relative to 1) in every number, and exactly elsewhere.
fn assert_close(a: &serde_json::Value, b: &serde_json::Value, tol: f64, at: &str) {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() <= tol * x.abs().max(1.0), "{at}: {x} vs {y}");
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}");
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                assert_close(p, q, tol, &format!("{at}[{i}]"));
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                assert_close(v, &y[k], tol, &format!("{at}.{k}"));
            }
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

/// A multi-task run (MNIST, two heads, 4 batches of 64, 200 test images) under 2 and 3 ranks,
/// which split each batch's examples: the task losses of every epoch and the test losses and
/// metrics agree with one process to 1e-6, with equal weighting and with PCGrad (which
/// combines the per-task gradients).
#[test]
fn multi_task_agrees_with_one_process() {
    let Some(mnist) = common::dataset("mnist", &[]) else {
        return;
    };
    let dir = common::fresh_dir("metalearn-mpi", "mtl");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let base = std::fs::read_to_string(repo.join("configs/mnist-multitask.toml")).unwrap();
    let body = base
        .replace("train_limit = 0", "train_limit = 256")
        .replace("test_limit = 0", "test_limit = 200")
        .replace(
            "# path = \"../shared/data/mnist\"",
            &format!("path = {:?}\n#", mnist.display().to_string()),
        );
    assert!(body.contains("train_limit = 256") && body.contains("path = \""));
    let cfg = write_config(&dir, "mtl", &body);
    let cfg = cfg.to_str().unwrap();
    for method in ["equal", "pcgrad"] {
        let args = [
            "mtl",
            "--config",
            cfg,
            "--epochs",
            "2",
            "--no-baselines",
            "--json",
            "--method",
            method,
        ];
        let one = single(&args);
        assert_ok(&one, "the single-process run");
        let one = json_report(&one);
        for n in [2, 3] {
            let out = mpirun(n, &args).output().unwrap();
            assert_ok(&out, &format!("mpirun -n {n}"));
            let r = json_report(&out);
            let epochs = |v: &serde_json::Value| {
                let e = v["history"]["epochs"].as_array().unwrap().clone();
                e.iter()
                    .map(|e| e["train_loss"].clone())
                    .collect::<Vec<_>>()
            };
            let at = format!("{method} under {n} ranks");
            assert_close(
                &serde_json::json!(epochs(&r)),
                &serde_json::json!(epochs(&one)),
                1e-6,
                &at,
            );
            for k in 0..2 {
                for key in ["multi_task", "multi_task_loss"] {
                    let (a, b) = (&r["tasks"][k][key], &one["tasks"][k][key]);
                    assert_close(a, b, 1e-6, &format!("{at}: task {k} {key}"));
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A multi-task config that takes the task gradients on the shared representation is refused
/// under several ranks, naming the key (each rank holds only part of the representation).
#[test]
fn multi_task_on_the_representation_is_refused() {
    let Some(mnist) = common::dataset("mnist", &[]) else {
        return;
    };
    let dir = common::fresh_dir("metalearn-mpi", "mtl-rep");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let base = std::fs::read_to_string(repo.join("configs/mnist-multitask.toml")).unwrap();
    let body = base
        .replace("train_limit = 0", "train_limit = 128")
        .replace(
            "eval_every_epoch = true",
            "eval_every_epoch = true\ngramian = \"representation\"",
        )
        .replace(
            "# path = \"../shared/data/mnist\"",
            &format!("path = {:?}\n#", mnist.display().to_string()),
        );
    assert!(body.contains("gramian = \"representation\""));
    let cfg = write_config(&dir, "rep", &body);
    let args = [
        "mtl",
        "--config",
        cfg.to_str().unwrap(),
        "--no-baselines",
        "--method",
        "mgda",
    ];
    let out = mpirun(2, &args).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("train.gramian") && err.contains("MPI"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A successive-halving search (MAML on sinusoids, 3 inner learning rates at 20 iterations,
/// the best at 60) under 2 and 3 ranks, which spread each rung's trials: the same scores in
/// every rung, the same best config and `best.toml`.
#[test]
fn search_matches_one_process() {
    let dir = common::fresh_dir("metalearn-mpi", "search");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let base = repo.join("configs/fewshot/maml-sinusoid.toml");
    let body = |out: &Path| {
        format!(
            r#"base = {:?}
kind = "train"
method = "halving"
trials = 0
seed = 0
workers = 1
out_dir = {:?}
min_budget = 20
max_budget = 60
eta = 3
[fixed]
"train.meta_batch" = 4
"train.val_every" = 20
"train.val_episodes" = 10
"train.checkpoint_every" = 100000
[space]
"algorithm.inner_lr" = {{ values = [0.001, 0.01, 0.1] }}
"#,
            base.display().to_string(),
            out.display().to_string()
        )
    };
    let run = |name: &str, n: usize| {
        let out = dir.join(name);
        let cfg = write_config(&dir, name, &body(&out));
        let args = ["search", "--config", cfg.to_str().unwrap(), "--json"];
        let o = if n == 1 {
            single(&args)
        } else {
            mpirun(n, &args).output().unwrap()
        };
        assert_ok(&o, &format!("the search under {n} ranks"));
        let best = std::fs::read_to_string(out.join("best.toml")).unwrap();
        let best = best.replace(out.to_str().unwrap(), "OUT");
        (json_report(&o), best)
    };
    let (one, best1) = run("one", 1);
    for n in [2, 3] {
        let (r, best) = run(&format!("n{n}"), n);
        for key in ["rungs", "best", "best_score", "ran"] {
            assert_eq!(r[key], one[key], "{key} under {n} ranks");
        }
        assert_eq!(best, best1, "best.toml under {n} ranks");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A transfer experiment (MNIST -> Fashion-MNIST, an MLP, 2 seeds x 2 budgets x 4 strategies)
/// under 2 and 3 ranks, which split the 16 target runs: every run's accuracies and the summary
/// equal one process's exactly (each run is computed whole by one rank).
#[test]
fn transfer_runs_match_one_process() {
    if common::small_image_sets().is_none() {
        return;
    }
    let dir = common::fresh_dir("metalearn-mpi", "transfer");
    let run = |name: &str, n: usize| {
        let out = dir.join(name);
        let body = common::tiny_transfer_config(&out);
        let cfg = write_config(&dir, name, &body);
        let args = ["transfer", "--config", cfg.to_str().unwrap(), "--json"];
        let o = if n == 1 {
            single(&args)
        } else {
            mpirun(n, &args).output().unwrap()
        };
        assert_ok(&o, &format!("the transfer under {n} ranks"));
        let mut r = json_report(&o);
        for run in r["runs"].as_array_mut().unwrap() {
            run.as_object_mut().unwrap().remove("seconds");
        }
        assert!(
            out.join("report.json").is_file(),
            "rank 0 writes the report"
        );
        r
    };
    let one = run("one", 1);
    assert_eq!(one["runs"].as_array().unwrap().len(), 16);
    for n in [2, 3] {
        let r = run(&format!("n{n}"), n);
        assert_eq!(r["runs"], one["runs"], "target runs under {n} ranks");
        assert_eq!(r["summary"], one["summary"], "summary under {n} ranks");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

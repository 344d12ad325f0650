//! Paper-faithful training schedules (issue #16, item 4): a training episode shape separate
//! from the test shape (`data.train_n_way`, `data.train_q_query`), a step schedule of the meta
//! learning rate (`train.lr_decay_every`, `train.lr_decay_factor`) and early stopping on
//! validation (`train.early_stop_patience`), each exact under `--resume`, and every bad value
//! an error naming its key.

mod common;

use metalearn::algorithms::Target;
use metalearn::fewshot::r#loop::{build, step_rng};
use metalearn::fewshot::tasks::{Split, TaskSource};
use metalearn::fewshot::{
    apply_schedule, evaluate_checkpoint, train, RunConfig, TrainOptions, TrainReport,
};
use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    common::fresh_dir("metalearn-train-schedule", name)
}

fn parse(text: &str) -> Result<RunConfig, String> {
    RunConfig::from_toml_str(text, Path::new("test.toml")).map_err(|e| e.to_string())
}

/// `body` (ending inside `[train]`) with `out_dir = out`.
fn config(body: &str, out: &Path) -> RunConfig {
    parse(&format!(
        "{body}\nout_dir = {:?}\n",
        out.display().to_string()
    ))
    .unwrap()
}

/// Runs `f` on one worker thread (the per-task gradient sums then have one order).
fn one_thread<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(f)
}

fn resume() -> TrainOptions {
    TrainOptions {
        resume: true,
        ..TrainOptions::default()
    }
}

fn metadata(path: &Path, key: &str) -> String {
    metalearn::nn::checkpoint::read_metadata(path).unwrap()[key].clone()
}

/// The number of distinct labels of a class target, and its length.
fn classes(t: &Target<f32>) -> (usize, usize) {
    match t {
        Target::Classes(y) => (y.iter().max().map_or(0, |m| m + 1), y.len()),
        Target::Values(_) => panic!("a classification task"),
    }
}

/// A small ProtoNet (Conv-4, 8 filters) on Omniglot that trains on 10-way 2-query episodes
/// and is validated and tested on 5-way 3-query ones, ending inside `[train]`.
fn omniglot_protonet(data: &Path) -> String {
    format!(
        r#"
{head}[data]
dataset = "omniglot"
data_dir = {data:?}
n_way = 5
k_shot = 1
q_query = 3
train_n_way = 10
train_q_query = 2
[eval]
episodes = 4
[train]
iterations = 2
meta_batch = 2
meta_lr = 0.01
seed = 11
val_every = 1
val_episodes = 2
checkpoint_every = 1
"#,
        head = common::SMALL_CONV4_PROTONET
    )
}

/// The training episodes have `train_n_way` classes and `train_q_query` queries (seen in the
/// tasks the library builds for training, and in the state after `train`'s steps, which equals
/// steps on hand-drawn 10-way batches and not on 5-way ones); validation and test episodes, and
/// `eval`, are 5-way 3-query.
#[test]
fn omniglot_protonet_trains_10_way_and_evaluates_5_way() {
    let Some(data) = common::omniglot() else {
        return;
    };
    let dir = tmp("omniglot-shape");
    let cfg = config(&omniglot_protonet(&data), &dir);
    let source = TaskSource::load(&cfg).unwrap();
    let sampler = source.train_sampler().unwrap();
    let batch = source.train_batch(sampler.as_ref(), &mut step_rng(11, 0), 2);
    for t in &batch {
        assert_eq!(classes(&t.support_y), (10, 10), "10-way 1-shot support");
        assert_eq!(
            classes(&t.query_y),
            (10, 20),
            "2 queries for each of 10 classes"
        );
    }
    for split in [Split::Val, Split::Test] {
        let fixed = source.fixed(split, 2, 3).unwrap();
        let t = source.fixed_task(&fixed, 0).unwrap();
        assert_eq!(classes(&t.support_y), (5, 5), "{split:?}");
        assert_eq!(classes(&t.query_y), (5, 15), "{split:?}");
    }
    let report = one_thread(|| train(&cfg, &TrainOptions::default()).unwrap());
    assert_eq!(report.iterations, 2);

    // The same steps by hand, on the training batches of each iteration's generator.
    let by_hand = |source: &TaskSource, train_shape: bool| {
        let mut learner = build(&cfg).unwrap();
        for it in 0..2 {
            let mut rng = step_rng(cfg.train.seed, it);
            let s = if train_shape {
                source.train_sampler().unwrap()
            } else {
                source.sampler(Split::Train).unwrap()
            };
            let tasks = source.train_batch(s.as_ref(), &mut rng, 2);
            assert_eq!(
                classes(&tasks[0].support_y).0,
                if train_shape { 10 } else { 5 }
            );
            apply_schedule(&cfg, learner.as_mut(), it);
            learner.meta_train_step(&tasks, &mut rng);
        }
        learner
            .state()
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_vec()))
            .collect::<State>()
    };
    let saved = common::checkpoint_params(&dir.join("last.safetensors"));
    let (ten, five) = one_thread(|| (by_hand(&source, true), by_hand(&source, false)));
    assert_eq!(saved, ten, "train's steps are the steps on 10-way episodes");
    assert_ne!(saved, five, "and not those on 5-way episodes");

    let ev = evaluate_checkpoint(&dir.join("best.safetensors"), None).unwrap();
    assert!(ev.task.contains("5-way 1-shot"), "{}", ev.task);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A CSV ProtoNet (8 classes, 4 of them for training) ending inside `[train]`.
fn csv_protonet(dir: &Path, train: &str) -> String {
    let csv = dir.join("d.csv");
    common::write_class_csv(&csv);
    common::csv_protonet_config(&csv, train)
}

#[test]
fn train_n_way_above_the_training_classes_is_an_error_naming_the_count() {
    let dir = tmp("csv-too-many");
    let body = csv_protonet(&dir, "iterations = 2\nmeta_batch = 1")
        .replace("n_way = 2\n", "n_way = 2\ntrain_n_way = 5\n");
    let cfg = config(&body, &dir.join("run"));
    let e = train(&cfg, &TrainOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("data.train_n_way") && e.contains("= 5"), "{e}");
    assert!(e.contains("[2, 4]") && e.contains("training split"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Methods with an `n_way`-output head reject a training N different from `n_way`, naming the
/// key and why; metric methods (and Baseline, whose head is rebuilt per episode) accept it.
#[test]
fn train_n_way_is_refused_for_methods_with_a_head() {
    let base = |name: &str, train_n_way: usize| {
        format!(
            r#"
[algorithm]
name = "{name}"
[backbone]
name = "conv4"
[data]
dataset = "omniglot"
n_way = 5
train_n_way = {train_n_way}
"#
        )
    };
    for m in ["maml", "fomaml", "reptile", "meta_sgd", "anil"] {
        let e = parse(&base(m, 10)).unwrap_err();
        assert!(
            e.contains("data.train_n_way") && e.contains("= 10"),
            "{m}: {e}"
        );
        assert!(
            e.contains("head") && e.contains("`data.n_way` = 5"),
            "{m}: {e}"
        );
        assert!(e.contains(m) && e.contains("protonet"), "{m}: {e}");
        parse(&base(m, 5)).unwrap_or_else(|e| panic!("{m}: train_n_way = n_way is fine: {e}"));
    }
    for m in [
        "protonet",
        "matching",
        "relation",
        "r2d2",
        "baseline",
        "baseline_pp",
    ] {
        let c = parse(&base(m, 60)).unwrap_or_else(|e| panic!("{m}: {e}"));
        assert_eq!((c.data.train_n_way(), c.data.n_way()), (60, 5));
        assert_eq!(
            c.data.train_q_query(),
            c.data.q_query,
            "defaults to q_query"
        );
    }
}

/// Out-of-range and meaningless values are errors naming the key, the value and what was
/// expected.
#[test]
fn bad_schedule_values_are_errors_naming_the_key() {
    let episodic = "[algorithm]\nname = \"protonet\"\n[backbone]\nname = \"conv4\"\n\
                    [data]\ndataset = \"omniglot\"\n";
    let cases: &[(&str, &str, &[&str])] = &[
        ("train_n_way = 1", "", &["data.train_n_way", "= 1", "[2,"]),
        (
            "train_q_query = 0",
            "",
            &["data.train_q_query", "= 0", "[1,"],
        ),
        (
            "",
            "lr_decay_every = 0",
            &["train.lr_decay_every", "= 0", "[1,"],
        ),
        (
            "",
            "lr_decay_every = 5\nlr_decay_factor = 0.0",
            &["train.lr_decay_factor", "= 0", "(0, 1]"],
        ),
        (
            "",
            "lr_decay_every = 5\nlr_decay_factor = 1.5",
            &["train.lr_decay_factor", "= 1.5", "(0, 1]"],
        ),
        (
            "",
            "lr_decay_every = 5\nlr_decay_factor = -0.5",
            &["train.lr_decay_factor", "(0, 1]"],
        ),
        (
            "",
            "lr_decay_every = 5\nlr_decay_factor = nan",
            &["train.lr_decay_factor", "NaN", "(0, 1]"],
        ),
        (
            "",
            "lr_decay_factor = 0.5",
            &["train.lr_decay_factor", "without `train.lr_decay_every`"],
        ),
        (
            "",
            "early_stop_patience = 0",
            &["train.early_stop_patience", "= 0", "[1,"],
        ),
        (
            "",
            "early_stop_patience = 3\nval_every = 0",
            &["train.early_stop_patience", "`train.val_every` = 0"],
        ),
    ];
    for (data, train, want) in cases {
        let text = format!("{episodic}{data}\n[train]\n{train}\n");
        let e = parse(&text).unwrap_err();
        for w in *want {
            assert!(e.contains(w), "`{data}{train}`: {e:?} should mention {w:?}");
        }
    }
    // The good values at the edges parse.
    let ok = format!(
        "{episodic}train_n_way = 2\ntrain_q_query = 1\n[train]\nlr_decay_every = 1\n\
         lr_decay_factor = 1.0\nearly_stop_patience = 1\n"
    );
    parse(&ok).unwrap();
}

/// Reptile's outer step has its own schedule, and sinusoid tasks have one shape: the keys
/// that do not apply are errors naming them.
#[test]
fn schedule_keys_that_do_not_apply_are_errors_naming_the_key() {
    let reptile = common::SINUSOID.replace("name = \"maml\"", "name = \"reptile\"");
    let e = parse(&format!("{reptile}lr_decay_every = 4\n")).unwrap_err();
    assert!(
        e.contains("train.lr_decay_every") && e.contains("reptile"),
        "{e}"
    );
    assert!(e.contains("epsilon_final"), "{e}");
    for key in ["train_n_way = 5", "train_q_query = 3"] {
        let text = common::SINUSOID.replace("q_query = 5\n", &format!("q_query = 5\n{key}\n"));
        let e = parse(&text).unwrap_err();
        let name = key.split(' ').next().unwrap();
        assert!(
            e.contains(&format!("data.{name}")) && e.contains("sinusoid"),
            "{e}"
        );
    }
}

/// The learner's outer learning rate at iteration `i` is `meta_lr * factor^floor(i / K)`.
#[test]
fn the_meta_lr_steps_down_every_k_iterations() {
    let cfg = parse(&format!(
        "{}lr_decay_every = 3\nlr_decay_factor = 0.5\n",
        common::SINUSOID
    ))
    .unwrap();
    let mut learner = build(&cfg).unwrap();
    assert_eq!(learner.meta_lr(), Some(0.01), "built at meta_lr");
    for i in [0, 1, 2, 3, 4, 5, 6, 8, 9, 11, 12, 30, 3001] {
        apply_schedule(&cfg, learner.as_mut(), i);
        let want = 0.01 * 0.5f64.powi((i / 3) as i32);
        assert_eq!(learner.meta_lr(), Some(want), "iteration {i}");
        assert_eq!(cfg.scheduled_meta_lr(i), Some(want), "iteration {i}");
    }
    // Any factor in (0, 1]; the default is 0.5.
    let tenth = parse(&format!(
        "{}lr_decay_every = 2\nlr_decay_factor = 0.1\n",
        common::SINUSOID
    ))
    .unwrap();
    for i in [0, 1, 2, 5, 7, 20] {
        let want = 0.01 * 0.1f64.powi((i / 2) as i32);
        let got = tenth.scheduled_meta_lr(i).unwrap();
        assert!((got - want).abs() <= 1e-15 * want, "{i}: {got} vs {want}");
    }
    let half = parse(&format!("{}lr_decay_every = 2\n", common::SINUSOID)).unwrap();
    assert_eq!(half.scheduled_meta_lr(5), Some(0.01 * 0.25));
    // Without a schedule the rate is the one the learner was built with.
    let constant = parse(common::SINUSOID).unwrap();
    assert_eq!(constant.scheduled_meta_lr(100), None);
    let mut learner = build(&constant).unwrap();
    apply_schedule(&constant, learner.as_mut(), 100);
    assert_eq!(learner.meta_lr(), Some(0.01));
}

/// A learner state as `(name, values)` pairs.
type State = Vec<(String, Vec<f32>)>;

/// The states in the `last` and `best` checkpoints of a run folder.
fn outcome(dir: &Path) -> (State, State) {
    (
        common::checkpoint_params(&dir.join("last.safetensors")),
        common::checkpoint_params(&dir.join("best.safetensors")),
    )
}

/// `train` takes its steps at the scheduled rates (the same as hand-made steps at
/// `0.01 * 0.5^floor(i / 3)`); a schedule whose first decay comes after the last iteration
/// changes nothing, bit for bit.
#[test]
fn train_follows_the_schedule_and_a_late_schedule_changes_nothing() {
    let runs = ["const", "late", "decay"].map(|n| tmp(&format!("sin-{n}")));
    let bodies = [
        common::SINUSOID.to_string(),
        format!("{}lr_decay_every = 13\n", common::SINUSOID),
        format!("{}lr_decay_every = 3\n", common::SINUSOID),
    ];
    let cfgs: Vec<RunConfig> = (0..3).map(|i| config(&bodies[i], &runs[i])).collect();
    let reports: Vec<TrainReport> = one_thread(|| {
        cfgs.iter()
            .map(|c| train(c, &TrainOptions::default()).unwrap())
            .collect()
    });
    assert_eq!(reports[0].history, reports[1].history);
    assert_eq!(reports[0].best, reports[1].best);
    assert_eq!(
        outcome(&runs[0]),
        outcome(&runs[1]),
        "lr_decay_every > iterations"
    );
    assert_ne!(outcome(&runs[0]), outcome(&runs[2]), "the decay is applied");

    let source = TaskSource::load(&cfgs[2]).unwrap();
    let by_hand = one_thread(|| {
        let mut learner = build(&cfgs[2]).unwrap();
        for it in 0..12 {
            let mut rng = step_rng(5, it);
            let tasks = source.train_batch(None, &mut rng, 3);
            learner.set_meta_lr(0.01 * 0.5f64.powi((it / 3) as i32));
            learner.meta_train_step(&tasks, &mut rng);
        }
        learner
            .state()
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_vec()))
            .collect::<State>()
    });
    assert_eq!(outcome(&runs[2]).0, by_hand);
    for d in &runs {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// A full run and a run "killed" after `kill` iterations (at most one before the full run's
/// end) then resumed end equal: report (iterations, early stop, curve, best), and the `last`
/// and `best` checkpoints (parameters and optimizer state) bit for bit. Returns the full run's
/// report.
fn check_resume(body: &str, name: &str, kill: usize) -> TrainReport {
    one_thread(|| {
        let (da, db) = (tmp(&format!("{name}-a")), tmp(&format!("{name}-b")));
        let (ca, cb) = (config(body, &da), config(body, &db));
        let full = train(&ca, &TrainOptions::default()).unwrap();
        let kill = kill.min(full.iterations - 1);
        assert!(
            kill >= 2,
            "the full run is long enough to be killed and resumed"
        );
        let stop = TrainOptions {
            stop_after: Some(kill),
            ..TrainOptions::default()
        };
        let part = train(&cb, &stop).unwrap();
        assert!(part.interrupted && part.early_stop.is_none());
        let resumed = train(&cb, &resume()).unwrap();
        assert!(resumed.resumed_from > 0 && resumed.resumed_from <= kill);
        assert_eq!(resumed.iterations, full.iterations);
        assert_eq!(resumed.early_stop, full.early_stop);
        assert_eq!(resumed.history, full.history, "learning curves differ");
        assert_eq!(resumed.best, full.best);
        assert_eq!(outcome(&da), outcome(&db), "checkpoints differ");
        let _ = std::fs::remove_dir_all(&da);
        let _ = std::fs::remove_dir_all(&db);
        full
    })
}

#[test]
fn resume_with_the_lr_schedule_is_exact() {
    let body = format!(
        "{}lr_decay_every = 3\nlr_decay_factor = 0.25\n",
        common::SINUSOID
    );
    let full = check_resume(&body, "sched", 7);
    assert_eq!(full.iterations, 12);
}

/// ProtoNet on the CSV classes with a learning rate so small that no parameter moves: every
/// validation ties the first, so early stopping (patience 3, validation every 2) stops at
/// iteration 8 of 20, keeping the checkpoint of iteration 2 as the best.
fn frozen_protonet(dir: &Path) -> String {
    csv_protonet(
        dir,
        "iterations = 20\nmeta_batch = 2\nmeta_lr = 1e-20\nseed = 3\nval_every = 2\n\
         val_episodes = 4\ncheckpoint_every = 3\nearly_stop_patience = 3",
    )
}

#[test]
fn early_stopping_stops_after_patience_validations_without_improvement() {
    let dir = tmp("early");
    let run = dir.join("run");
    let cfg = config(&frozen_protonet(&dir), &run);
    let r = train(&cfg, &TrainOptions::default()).unwrap();
    let first = r.history[0].val_metric;
    assert!(
        r.history.iter().all(|p| p.val_metric == first),
        "no improvement possible"
    );
    assert!(!r.interrupted);
    assert_eq!(
        r.iterations, 8,
        "validations at 2 (best), 4, 6, 8: three without gain"
    );
    let e = r.early_stop.clone().expect("stopped early");
    assert_eq!((e.iteration, e.best_iteration, e.patience), (8, 2, 3));
    assert!(
        e.reason.contains("train.early_stop_patience"),
        "{}",
        e.reason
    );
    assert_eq!(r.best, Some((2, first)));
    assert_eq!(r.history.len(), 4);
    assert!(
        r.to_string().contains("stopped early at iteration 8"),
        "{r}"
    );
    assert_eq!(
        metadata(&run.join("best.safetensors"), "metalearn.iteration"),
        "2"
    );
    assert_eq!(
        metadata(&run.join("last.safetensors"), "metalearn.iteration"),
        "8"
    );
    let history: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("history.json")).unwrap()).unwrap();
    assert_eq!(history["early_stop"]["iteration"], 8);
    assert!(history["early_stop"]["reason"]
        .as_str()
        .unwrap()
        .contains("3 validations"));

    // Resuming a stopped run does no more iterations and reports the same stop.
    let again = train(&cfg, &resume()).unwrap();
    assert_eq!((again.resumed_from, again.iterations), (8, 8));
    assert_eq!(again.early_stop, r.early_stop);
    assert_eq!(
        metadata(&run.join("last.safetensors"), "metalearn.iteration"),
        "8"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Early stopping follows its rule on a run whose validation MSE goes up and down (MAML on
/// sinusoid with a large meta learning rate): the stop is at the first validation that makes `patience` in a row without a lower
/// MSE than the best, and the curve up to there is the unstopped run's.
#[test]
fn early_stopping_on_regression_follows_the_rule() {
    let body = common::SINUSOID
        .replace("val_every = 3", "val_every = 1")
        .replace("meta_lr = 0.01", "meta_lr = 0.1");
    let patience = 2;
    let (free, stopped) = one_thread(|| {
        let (da, db) = (tmp("reg-free"), tmp("reg-stop"));
        let free = train(&config(&body, &da), &TrainOptions::default()).unwrap();
        let with = format!("{body}early_stop_patience = {patience}\n");
        let stopped = train(&config(&with, &db), &TrainOptions::default()).unwrap();
        let _ = std::fs::remove_dir_all(&da);
        let _ = std::fs::remove_dir_all(&db);
        (free, stopped)
    });
    let (mut best, mut since, mut expected) = (f64::INFINITY, 0, None);
    for p in &free.history {
        if p.val_metric < best {
            (best, since) = (p.val_metric, 0);
        } else {
            since += 1;
        }
        if since >= patience && p.iteration < 12 {
            expected = Some(p.iteration);
            break;
        }
    }
    let at = expected.expect("this run has two validations in a row without gain");
    assert_eq!(stopped.iterations, at);
    assert_eq!(stopped.early_stop.as_ref().map(|e| e.iteration), Some(at));
    assert_eq!(stopped.history[..], free.history[..stopped.history.len()]);
    assert_eq!(stopped.history.last().map(|p| p.iteration), Some(at));
}

/// Killed at iteration 7 (last checkpoint at 6, two validations without gain), the resumed
/// run restores the counter and stops at 8, as the uninterrupted one (it would stop at 12 with
/// the counter reset).
#[test]
fn resume_with_early_stopping_is_exact() {
    let dir = tmp("early-resume");
    let full = check_resume(&frozen_protonet(&dir), "early", 7);
    assert_eq!(full.early_stop.map(|e| e.iteration), Some(8));
    // With the lr schedule as well, on sinusoid.
    let body = format!(
        "{}lr_decay_every = 2\nearly_stop_patience = 2\n",
        common::SINUSOID
            .replace("val_every = 3", "val_every = 1")
            .replace("meta_lr = 0.01", "meta_lr = 0.1")
            .replace("checkpoint_every = 4", "checkpoint_every = 2")
    );
    let sched = check_resume(&body, "early-sched", 7);
    assert!(sched.early_stop.is_some(), "this run stops early too");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `metalearn train` on a run that stops early says so, then tests the best checkpoint and
/// exits 0.
#[cfg(feature = "cli")]
#[test]
fn the_train_command_evaluates_the_best_checkpoint_after_an_early_stop() {
    let dir = tmp("cli");
    let body = format!(
        "{}\nout_dir = {:?}\n",
        frozen_protonet(&dir),
        dir.join("run").display().to_string()
    );
    let cfg = dir.join("run.toml");
    std::fs::write(&cfg, body).unwrap();
    let out = common::bin::run_ok(&["train".as_ref(), "--config".as_ref(), cfg.as_os_str()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("8 iterations"), "{stdout}");
    assert!(stdout.contains("stopped early at iteration 8"), "{stdout}");
    assert!(
        stdout.contains("accuracy") && stdout.contains("±"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The shipped ProtoNet Omniglot configs follow Snell et al.: 60-way 5-query training
/// episodes, Adam 1e-3 halved every 2000 episodes, tested at their own N.
#[test]
fn shipped_protonet_configs_follow_the_paper() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/fewshot");
    for (s, n) in [("5w1s", 5), ("5w5s", 5), ("20w1s", 20), ("20w5s", 20)] {
        let c = RunConfig::load(&dir.join(format!("protonet-omniglot-{s}.toml"))).unwrap();
        assert_eq!(
            (c.data.train_n_way(), c.data.train_q_query()),
            (60, 5),
            "{s}"
        );
        assert_eq!(c.data.n_way(), n, "{s}");
        assert_eq!(c.meta_lr(), 1e-3, "{s}");
        assert_eq!(c.train.lr_decay_every, Some(2000), "{s}");
        assert_eq!(c.train.lr_decay_factor(), 0.5, "{s}");
        assert!(c.train.early_stop_patience.is_some(), "{s}");
    }
}

/// Times 60-way 5-query 1-shot ProtoNet training episodes (Conv-4 64) on Omniglot: run with
/// `cargo test --release --test train_schedule -- --ignored --nocapture`.
#[test]
#[ignore]
fn time_a_60_way_training_episode() {
    let Some(data) = common::omniglot() else {
        return;
    };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/fewshot");
    let mut cfg = RunConfig::load(&dir.join("protonet-omniglot-5w1s.toml")).unwrap();
    cfg.data.data_dir = Some(data);
    let source = TaskSource::load(&cfg).unwrap();
    let sampler = source.train_sampler().unwrap();
    let mut learner = build(&cfg).unwrap();
    let (warm, n) = (2, 20);
    let mut t0 = std::time::Instant::now();
    for it in 0..warm + n {
        if it == warm {
            t0 = std::time::Instant::now();
        }
        let mut rng = step_rng(0, it);
        let tasks = source.train_batch(sampler.as_ref(), &mut rng, 1);
        assert_eq!(classes(&tasks[0].query_y), (60, 300));
        apply_schedule(&cfg, learner.as_mut(), it);
        learner.meta_train_step(&tasks, &mut rng);
    }
    let ms = t0.elapsed().as_secs_f64() * 1e3 / n as f64;
    println!(
        "60-way 5-query 1-shot ProtoNet episode: {ms:.1} ms ({} threads)",
        rayon::current_num_threads()
    );
}

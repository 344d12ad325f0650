//! The meta-training loop: meta-batches drawn from a stream derived from `(seed, iteration)`,
//! a progress bar with ETA, meta-train loss and accuracy, periodic validation on fixed episodes
//! of the validation classes, the best-on-validation checkpoint, and a periodic `last`
//! checkpoint from which `--resume` continues exactly.
//!
//! # Exact resume
//! Meta-batch `i` (0-based) is drawn from ChaCha8 stream `i + 1` of `train.seed` (stream 0
//! initialises the learner), and the same generator is handed to `meta_train_step`; nothing
//! else is random. `last.safetensors` holds the learner's whole state (meta-parameters,
//! learned step sizes, optimizer moments and step count), the number of iterations done,
//! the learning-curve history, the best validation score and the running sums of the current
//! logging window, all floats stored bit for bit. A run resumed from it therefore takes the
//! same steps as an uninterrupted run, and its final numbers are equal: each meta-gradient is
//! deterministic whatever the thread count (per-task gradients are summed in task order).
//!
//! # Files (in `train.out_dir`)
//! - `last.safetensors`: written every `checkpoint_every` iterations and at the end,
//!   atomically (a kill never leaves a half-written file, and loses at most the iterations
//!   since the last write),
//! - `best.safetensors`: the state with the best validation score so far, with the loop state
//!   too, so that `--resume` continues from it exactly when `last.safetensors` is missing,
//! - `learning_curve.svg`, `history.json`: rewritten at each validation,
//! - `metalearn.lock`: held for the run's whole life ([`crate::run::lock`]); a second writer
//!   into the same folder is refused, naming the holder's pid.
//!
//! A fresh run refuses a folder that holds `last` or `best` unless `--overwrite` (which deletes
//! them first); `--resume` refuses a folder that holds neither.
//!
//! # Schedules
//! - Training episodes have `data.train_n_way` classes and `data.train_q_query` queries per
//!   class (default: `n_way`, `q_query`); validation episodes have the test shape.
//! - Iteration `i` uses the meta learning rate `meta_lr * lr_decay_factor^floor(i /
//!   lr_decay_every)` when `train.lr_decay_every` is set ([`apply_schedule`]): a function of
//!   `i` alone, so a resumed run recomputes it and follows the same rates.
//! - With `train.early_stop_patience = P`, the run stops after the validation that makes P in
//!   a row without a better metric than the best (accuracy up, or MSE down), unless that is
//!   the last iteration. It writes `last.safetensors` there and keeps `best.safetensors`;
//!   the report, the progress lines and `history.json` (`early_stop`) give the iteration and
//!   the reason. The counter is stored with the loop state, so a resumed run stops where the
//!   uninterrupted one does, and resuming a stopped run does no more iterations.
//!
//! # Divergence
//! Every step's meta-training loss and meta-gradient norm, every validation episode's loss and
//! metric, and the state before each checkpoint write are checked: a NaN or infinite value, or
//! a loss above `train.diverge_loss`, stops the run with [`TrainError::Diverged`]. No
//! checkpoint holding a non-finite value is ever written.

use super::config::RunConfig;
use super::error::{Result, TrainError};
use super::eval::{score_tasks, CONFIG_KEY};
use super::tasks::{Split, TaskSource};
use crate::algorithms::FewShotLearner;
use crate::run::diverge::{first_non_finite, loss_divergence};
use crate::run::progress::{bar_style, progress_bar};
use crate::run::usage::{peak_rss_mib, Stopwatch};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Metadata key: iterations done when the checkpoint was written.
pub const ITERATION_KEY: &str = "metalearn.iteration";
/// Metadata key: the loop's own state (JSON, floats as bit patterns).
pub const LOOP_KEY: &str = "metalearn.loop_state";
/// Metadata key: the validation score of the checkpoint (`best.safetensors`).
pub const VAL_KEY: &str = "metalearn.val_metric";

/// The generator of meta-batch `iteration` (0-based): ChaCha8 stream `iteration + 1` of `seed`.
pub fn step_rng(seed: u64, iteration: usize) -> ChaCha8Rng {
    let mut r = crate::data::seeded_rng(seed);
    r.set_stream(iteration as u64 + 1);
    r
}

/// The generator that initialises the learner (stream 0 of `seed`).
pub fn init_rng(seed: u64) -> ChaCha8Rng {
    let mut r = crate::data::seeded_rng(seed);
    r.set_stream(0);
    r
}

/// Builds a fresh learner for a run config (initialised from stream 0 of `train.seed`).
pub fn build(cfg: &RunConfig) -> Result<Box<dyn FewShotLearner<f32>>> {
    build_with(cfg, cfg.data.n_way(), &mut init_rng(cfg.train.seed))
}

/// Builds a learner for a run config initialised from `rng`: `n_way` outputs for
/// classification, one for regression.
pub fn build_with(
    cfg: &RunConfig,
    n_way: usize,
    rng: &mut dyn rand::RngCore,
) -> Result<Box<dyn FewShotLearner<f32>>> {
    let (alg, backbone, lr) = (&cfg.algorithm, &cfg.backbone, cfg.meta_lr());
    Ok(if cfg.data.is_regression() {
        crate::algorithms::build_regression_learner(alg, backbone, 1, lr, rng)?
    } else {
        crate::algorithms::build_learner(alg, backbone, n_way, lr, rng)?
    })
}

/// One point of the learning curve.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryPoint {
    /// Iterations done.
    pub iteration: usize,
    /// Mean meta-train query loss since the previous point.
    pub train_loss: f64,
    /// Mean meta-train query accuracy since the previous point (`None` for regression).
    pub train_accuracy: Option<f64>,
    /// Mean validation query loss.
    pub val_loss: f64,
    /// Validation accuracy, or MSE for regression.
    pub val_metric: f64,
}

impl HistoryPoint {
    fn to_bits(self) -> [u64; 5] {
        [
            self.iteration as u64,
            self.train_loss.to_bits(),
            self.train_accuracy.unwrap_or(f64::NAN).to_bits(),
            self.val_loss.to_bits(),
            self.val_metric.to_bits(),
        ]
    }

    fn from_bits(b: [u64; 5]) -> Self {
        let acc = f64::from_bits(b[2]);
        HistoryPoint {
            iteration: b[0] as usize,
            train_loss: f64::from_bits(b[1]),
            train_accuracy: if acc.is_nan() { None } else { Some(acc) },
            val_loss: f64::from_bits(b[3]),
            val_metric: f64::from_bits(b[4]),
        }
    }
}

/// The loop's state beyond the learner's, as stored in `last.safetensors` (floats as bits).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct LoopState {
    history: Vec<[u64; 5]>,
    /// `(iteration, metric bits)` of the best validation so far.
    best: Option<(usize, u64)>,
    /// Sums of the current window: loss bits, accuracy bits, count.
    window: (u64, u64, usize),
    /// Training seconds before this process.
    elapsed_bits: u64,
    /// Validations since the best one (the early-stopping counter, kept only with
    /// `train.early_stop_patience`; absent when 0, so a run without early stopping stores
    /// what it stored before).
    #[serde(default, skip_serializing_if = "is_zero")]
    since_best: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Why and when a run stopped before `train.iterations`: `train.early_stop_patience`
/// validations in a row without a better validation metric than the best.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EarlyStop {
    /// Iterations done when it stopped (the iteration of the validation that exhausted the
    /// patience).
    pub iteration: usize,
    /// The iteration of the best validation, whose state `best.safetensors` holds.
    pub best_iteration: usize,
    /// `train.early_stop_patience`.
    pub patience: usize,
    /// The reason in words.
    pub reason: String,
}

/// Options of [`train`] that are not part of the run config.
#[derive(Clone, Debug, Default)]
pub struct TrainOptions {
    /// Continue from `out_dir/last.safetensors` (or `best.safetensors` when `last` is missing).
    pub resume: bool,
    /// Start over even when `out_dir` already holds a run (its checkpoints are deleted).
    pub overwrite: bool,
    /// Show the progress bar (and validation lines on stderr).
    pub progress: bool,
    /// Stop abruptly once this many iterations are done, as if killed (no final checkpoint):
    /// for tests of `--resume`.
    pub stop_after: Option<usize>,
}

/// What a run did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainReport {
    /// The run in words.
    pub task: String,
    /// Iterations done.
    pub iterations: usize,
    /// Whether it stopped early ([`TrainOptions::stop_after`], or a stop request of
    /// [`crate::run::interrupt`]: Ctrl-C from Python, with `last.safetensors` written first).
    pub interrupted: bool,
    /// Set when early stopping (`train.early_stop_patience`) ended the run before
    /// `train.iterations`: the iteration and the reason. `best.safetensors` is the best
    /// validation checkpoint, as after a normal finish.
    pub early_stop: Option<EarlyStop>,
    /// The iteration it started from (0, or the resumed checkpoint's).
    pub resumed_from: usize,
    /// The learning curve.
    pub history: Vec<HistoryPoint>,
    /// `(iteration, validation metric)` of `best.safetensors`.
    pub best: Option<(usize, f64)>,
    /// Seconds of training, summed over resumed segments.
    pub train_s: f64,
    /// Seconds of this process's segment.
    pub wall_s: f64,
    /// Peak resident memory, MiB.
    pub peak_rss_mib: f64,
    /// `out_dir/best.safetensors`.
    pub best_checkpoint: PathBuf,
    /// `out_dir/last.safetensors`.
    pub last_checkpoint: PathBuf,
    /// `out_dir/learning_curve.svg`.
    pub curve: PathBuf,
}

impl std::fmt::Display for TrainReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} iterations", self.task, self.iterations)?;
        if self.resumed_from > 0 {
            write!(f, " (resumed at {})", self.resumed_from)?;
        }
        if let Some(p) = self.history.last() {
            write!(f, ", final meta-train loss {:.4}", p.train_loss)?;
            if let Some(a) = p.train_accuracy {
                write!(f, " acc {:.2}%", 100.0 * a)?;
            }
        }
        if let Some(e) = &self.early_stop {
            write!(
                f,
                ", stopped early at iteration {}: {}",
                e.iteration, e.reason
            )?;
        }
        if let Some((it, m)) = self.best {
            let regression = self
                .history
                .first()
                .is_some_and(|p| p.train_accuracy.is_none());
            if regression {
                write!(f, ", best validation MSE {m:.4} at {it}")?;
            } else {
                write!(f, ", best validation accuracy {:.2}% at {it}", 100.0 * m)?;
            }
        }
        write!(
            f,
            " | train {:.1} s, peak RSS {:.0} MiB | {}",
            self.train_s,
            self.peak_rss_mib,
            self.best_checkpoint.display()
        )
    }
}

/// Writes a run checkpoint: the learner's state and the config plus `extra` in the metadata.
pub fn save_checkpoint(
    path: &Path,
    learner: &dyn FewShotLearner<f32>,
    cfg: &RunConfig,
    iteration: usize,
    extra: &[(&str, String)],
) -> Result<()> {
    let mut meta = BTreeMap::new();
    meta.insert(CONFIG_KEY.to_string(), cfg.to_json());
    meta.insert(ITERATION_KEY.to_string(), iteration.to_string());
    meta.insert(
        "metalearn.algorithm".to_string(),
        cfg.algorithm.name().to_string(),
    );
    meta.insert("metalearn.task".to_string(), cfg.describe());
    if let Some(input) = super::input::InputPipeline::for_config(cfg) {
        meta.extend([input.metadata_entry()]);
    }
    for (k, v) in extra {
        meta.insert(k.to_string(), v.clone());
    }
    crate::nn::checkpoint::save(path, &learner.state(), &meta)?;
    Ok(())
}

/// The sections of two configs that differ, ignoring `train.iterations`, `train.out_dir` and
/// `train.diverge_loss`.
fn config_diff(a: &RunConfig, b: &RunConfig) -> Vec<&'static str> {
    let mut out = Vec::new();
    if a.algorithm != b.algorithm {
        out.push("algorithm");
    }
    if a.backbone != b.backbone {
        out.push("backbone");
    }
    if a.data != b.data {
        out.push("data");
    }
    let strip = |t: &super::config::TrainConfig| super::config::TrainConfig {
        iterations: 0,
        out_dir: PathBuf::new(),
        diverge_loss: 0.0,
        ..t.clone()
    };
    if strip(&a.train) != strip(&b.train) {
        out.push("train");
    }
    if a.eval != b.eval {
        out.push("eval");
    }
    out
}

fn is_better(regression: bool, new: f64, old: f64) -> bool {
    if regression {
        new < old
    } else {
        new > old
    }
}

/// The checkpoint `--resume` continues from.
const LAST_FILE: &str = "last.safetensors";
/// The best-on-validation checkpoint (also resumable when `last` is missing).
const BEST_FILE: &str = "best.safetensors";
/// What a fresh run (`--overwrite`) deletes from the run folder before it starts.
const RUN_FILES: &[&str] = &[LAST_FILE, BEST_FILE, "history.json", "learning_curve.svg"];

/// Locks the run folder (creating it) for the whole run, and refuses to start a fresh run over
/// one that holds a checkpoint unless `opts.overwrite` (whose files are then deleted first).
fn open_run_folder(cfg: &RunConfig, opts: &TrainOptions) -> Result<crate::run::RunLock> {
    let out_dir = &cfg.train.out_dir;
    let lock = crate::run::RunLock::acquire(out_dir)?;
    if opts.resume {
        return Ok(lock);
    }
    let held: Vec<&str> = [LAST_FILE, BEST_FILE]
        .into_iter()
        .filter(|f| out_dir.join(f).exists())
        .collect();
    if held.is_empty() {
        return Ok(lock);
    }
    if !opts.overwrite {
        return Err(TrainError::Resume {
            out_dir: out_dir.clone(),
            reason: format!(
                "already holds a run ({}): pass --resume to continue it, or --overwrite to delete it and start over",
                held.join(", ")
            ),
        });
    }
    for f in RUN_FILES {
        let p = out_dir.join(f);
        if p.exists() {
            std::fs::remove_file(&p)
                .map_err(|e| TrainError::io(&p, "deleting the old run (--overwrite)", e))?;
        }
    }
    Ok(lock)
}

/// Restores the learner from `last.safetensors`, or from `best.safetensors` when `last` is
/// missing; returns the iterations done, the loop state and the file used.
fn resume_state(
    cfg: &RunConfig,
    learner: &mut dyn FewShotLearner<f32>,
) -> Result<(usize, LoopState, PathBuf)> {
    let out_dir = &cfg.train.out_dir;
    let resume_err = |reason: String| TrainError::Resume {
        out_dir: out_dir.clone(),
        reason,
    };
    let path = [LAST_FILE, BEST_FILE]
        .into_iter()
        .map(|f| out_dir.join(f))
        .find(|p| p.exists())
        .ok_or_else(|| {
            resume_err(format!(
                "nothing to resume: neither {LAST_FILE} nor {BEST_FILE} exists"
            ))
        })?;
    let ck = crate::nn::checkpoint::load::<f32>(&path)?;
    let stored = super::eval::stored_config(&path, &ck.metadata)?;
    let diff = config_diff(&stored, cfg);
    if !diff.is_empty() {
        return Err(resume_err(format!(
            "the config differs from the run's in [{}]; only `train.iterations` and `train.diverge_loss` may change on resume",
            diff.join("], [")
        )));
    }
    let bad_meta = |k: &str| TrainError::NotARun {
        path: path.clone(),
        reason: if k == LOOP_KEY && path.ends_with(BEST_FILE) {
            format!(
                "cannot resume from it ({LAST_FILE} is missing): it has no `{LOOP_KEY}` metadata \
                 (written by an older metalearn), so the run cannot be continued exactly; pass \
                 --overwrite to start over"
            )
        } else {
            format!("missing or invalid `{k}` metadata: not a checkpoint of `metalearn train`")
        },
    };
    let start: usize = ck
        .metadata
        .get(ITERATION_KEY)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad_meta(ITERATION_KEY))?;
    let state: LoopState = ck
        .metadata
        .get(LOOP_KEY)
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or_else(|| bad_meta(LOOP_KEY))?;
    if start > cfg.train.iterations {
        return Err(resume_err(format!(
            "the run has done {start} iterations, more than `train.iterations` = {}",
            cfg.train.iterations
        )));
    }
    if let Some(bad) = first_non_finite(&ck.params) {
        return Err(TrainError::NonFinite {
            path,
            reason: format!("cannot resume: the checkpoint is not finite ({bad})"),
        });
    }
    learner
        .load_state(&ck.params)
        .map_err(|source| TrainError::Architecture {
            path: path.clone(),
            stored: stored.describe(),
            requested: cfg.describe(),
            source: Box::new(source),
        })?;
    Ok((start, state, path))
}

/// Why a meta-training step counts as divergence, if it does.
fn step_divergence(cfg: &RunConfig, s: &crate::algorithms::StepStats) -> Option<String> {
    loss_divergence("meta-training loss", s.loss, cfg.train.diverge_loss).or_else(|| {
        (!s.grad_norm.is_finite()).then(|| format!("meta-gradient norm = {}", s.grad_norm))
    })
}

/// Why validation scores count as divergence, if they do (the first non-finite episode).
fn validation_divergence(scores: &[super::eval::TaskScore], regression: bool) -> Option<String> {
    let metric = if regression { "MSE" } else { "accuracy" };
    scores.iter().enumerate().find_map(|(i, s)| {
        if !s.loss.is_finite() {
            Some(format!("validation episode {i}: query loss = {}", s.loss))
        } else if !s.metric.is_finite() {
            Some(format!("validation episode {i}: {metric} = {}", s.metric))
        } else {
            None
        }
    })
}

/// The mutable side of a run: the loop state, the current window and what was saved.
struct Progress {
    state: LoopState,
    /// Sums of the current logging window: loss, accuracy, count.
    window: (f64, f64, usize),
    /// Training seconds before this process.
    prior_s: f64,
    clock: Stopwatch,
    /// The iteration of the last checkpoint written (`None`: none by this run yet).
    saved: Option<usize>,
    /// Set once early stopping ends the run.
    early_stop: Option<EarlyStop>,
}

impl Progress {
    /// The progress of a run continuing from `state` (a fresh run: the default state), timed
    /// by `clock`; `saved` is the iteration of the checkpoint it resumed from.
    fn restore(state: LoopState, clock: Stopwatch, saved: Option<usize>) -> Progress {
        let window = (
            f64::from_bits(state.window.0),
            f64::from_bits(state.window.1),
            state.window.2,
        );
        Progress {
            prior_s: f64::from_bits(state.elapsed_bits),
            state,
            window,
            clock,
            saved,
            early_stop: None,
        }
    }

    /// The early stop due after the validation of iteration `done`: `train.early_stop_patience`
    /// validations in a row without a better metric than the best, before the last iteration
    /// (at the last one the run ends anyway). `None` without early stopping.
    fn early_stop_due(&self, cfg: &RunConfig, done: usize) -> Option<EarlyStop> {
        let patience = cfg.train.early_stop_patience?;
        let (best_iteration, bits) = self.state.best?;
        let n = self.state.since_best;
        if n < patience || done >= cfg.train.iterations {
            return None;
        }
        let m = f64::from_bits(bits);
        let best = if cfg.data.is_regression() {
            format!("validation MSE {m:.4}")
        } else {
            format!("validation accuracy {:.2}%", 100.0 * m)
        };
        Some(EarlyStop {
            iteration: done,
            best_iteration,
            patience,
            reason: format!(
                "no validation better than the best ({best} at iteration {best_iteration}) in \
                 the last {n} validations (`train.early_stop_patience` = {patience})"
            ),
        })
    }

    /// What the run did, `done` iterations in (it started at `start`).
    fn report(&self, cfg: &RunConfig, start: usize, done: usize, interrupted: bool) -> TrainReport {
        let out_dir = &cfg.train.out_dir;
        TrainReport {
            task: cfg.describe(),
            iterations: done,
            interrupted,
            early_stop: self.early_stop.clone(),
            resumed_from: start,
            history: self.history(),
            best: self.state.best.map(|(i, b)| (i, f64::from_bits(b))),
            train_s: self.prior_s + self.clock.seconds(),
            wall_s: self.clock.seconds(),
            peak_rss_mib: peak_rss_mib(),
            best_checkpoint: out_dir.join(BEST_FILE),
            last_checkpoint: out_dir.join(LAST_FILE),
            curve: out_dir.join("learning_curve.svg"),
        }
    }

    /// The loop state with the current window and elapsed time, as checkpoints store it.
    fn snapshot(&mut self) -> String {
        let (wl, wa, wn) = self.window;
        self.state.window = (wl.to_bits(), wa.to_bits(), wn);
        self.state.elapsed_bits = (self.prior_s + self.clock.seconds()).to_bits();
        serde_json::to_string(&self.state).expect("loop state serialises")
    }

    fn history(&self) -> Vec<HistoryPoint> {
        self.state
            .history
            .iter()
            .map(|&b| HistoryPoint::from_bits(b))
            .collect()
    }
}

/// The divergence error of iteration `iteration`, naming the checkpoints kept.
fn diverged(cfg: &RunConfig, p: &Progress, iteration: usize, what: String) -> TrainError {
    let kept = match p.saved {
        Some(i) => format!(
            "the checkpoints in {} are from before it (last written at iteration {i})",
            cfg.train.out_dir.display()
        ),
        None => format!(
            "no checkpoint was written by this run in {}",
            cfg.train.out_dir.display()
        ),
    };
    TrainError::Diverged {
        iteration,
        task: cfg.describe(),
        what,
        kept,
    }
}

/// Writes a checkpoint of the learner with the loop state, refusing a non-finite state.
fn save_run_checkpoint(
    path: &Path,
    learner: &dyn FewShotLearner<f32>,
    cfg: &RunConfig,
    done: usize,
    p: &mut Progress,
    extra: Option<(&str, String)>,
) -> Result<()> {
    let state = learner.state();
    if let Some(bad) = first_non_finite(&state) {
        return Err(diverged(
            cfg,
            p,
            done,
            format!("parameter {bad} after the update"),
        ));
    }
    let mut meta = vec![(LOOP_KEY, p.snapshot())];
    meta.extend(extra);
    // Under several ranks ([`crate::dist`]) rank 0 alone writes: every rank holds the same state.
    if crate::dist::is_root() {
        save_checkpoint(path, learner, cfg, done, &meta)?;
    }
    p.saved = Some(done);
    Ok(())
}

/// Validates after iteration `done`: records the point, saves `best` when it improved, rewrites
/// the history and the curve; returns the point and whether it improved.
fn validate(
    cfg: &RunConfig,
    learner: &dyn FewShotLearner<f32>,
    source: &TaskSource,
    val: &super::tasks::FixedTasks,
    done: usize,
    p: &mut Progress,
) -> Result<(HistoryPoint, bool)> {
    let regression = cfg.data.is_regression();
    let scores = score_tasks(learner, source, val)?;
    if let Some(what) = validation_divergence(&scores, regression) {
        return Err(diverged(cfg, p, done, what));
    }
    let n = scores.len().max(1) as f64;
    let (wl, wa, wn) = p.window;
    let point = HistoryPoint {
        iteration: done,
        train_loss: wl / wn as f64,
        train_accuracy: if regression {
            None
        } else {
            Some(wa / wn as f64)
        },
        val_loss: scores.iter().map(|s| s.loss).sum::<f64>() / n,
        val_metric: scores.iter().map(|s| s.metric).sum::<f64>() / n,
    };
    p.window = (0.0, 0.0, 0);
    p.state.history.push(point.to_bits());
    let improved = match p.state.best {
        None => true,
        Some((_, b)) => is_better(regression, point.val_metric, f64::from_bits(b)),
    };
    if improved {
        p.state.since_best = 0;
        p.state.best = Some((done, point.val_metric.to_bits()));
        let best_path = cfg.train.out_dir.join(BEST_FILE);
        let extra = (VAL_KEY, point.val_metric.to_string());
        save_run_checkpoint(&best_path, learner, cfg, done, p, Some(extra))?;
    } else if cfg.train.early_stop_patience.is_some() {
        p.state.since_best += 1;
    }
    p.early_stop = p.early_stop_due(cfg, done);
    if !crate::dist::is_root() {
        return Ok((point, improved));
    }
    let history = p.history();
    write_history(&cfg.train.out_dir, cfg, &history, p.early_stop.as_ref())?;
    let curve = cfg.train.out_dir.join("learning_curve.svg");
    super::curve::write_learning_curve(&curve, &cfg.describe(), &history, regression)?;
    Ok((point, improved))
}

/// What one iteration needs besides the learner and the progress.
struct StepContext<'a> {
    cfg: &'a RunConfig,
    source: &'a TaskSource,
    sampler: Option<&'a crate::data::EpisodeSampler<'a, super::tasks::DynData>>,
    val: &'a super::tasks::FixedTasks,
    say: &'a dyn Fn(String),
}

/// Sets the learner's outer step for iteration `it` (0-based), before its meta-training step:
/// the method's own schedule ([`FewShotLearner::set_progress`], Reptile's annealed `epsilon`),
/// then the config's step schedule ([`RunConfig::scheduled_meta_lr`], `train.lr_decay_every`)
/// when it has one. A function of `it` only, so a resumed run follows the same schedule.
pub fn apply_schedule(cfg: &RunConfig, learner: &mut dyn FewShotLearner<f32>, it: usize) {
    learner.set_progress(it, cfg.train.iterations);
    if let Some(lr) = cfg.scheduled_meta_lr(it) {
        learner.set_meta_lr(lr);
    }
}

/// Iteration `it` (0-based): the meta-training step and its divergence checks, the validation
/// (and the early-stopping decision) and the `last` checkpoint when due (always when the run
/// stops early).
fn iteration(
    ctx: &StepContext<'_>,
    learner: &mut dyn FewShotLearner<f32>,
    it: usize,
    p: &mut Progress,
) -> Result<crate::algorithms::StepStats> {
    let cfg = ctx.cfg;
    let mut rng = step_rng(cfg.train.seed, it);
    let tasks = ctx
        .source
        .train_batch(ctx.sampler, &mut rng, cfg.train.meta_batch);
    apply_schedule(cfg, learner, it);
    let s = learner.meta_train_step(&tasks, &mut rng);
    let done = it + 1;
    if let Some(what) = step_divergence(cfg, &s) {
        return Err(diverged(cfg, p, done, what));
    }
    p.window.0 += s.loss;
    p.window.1 += if s.accuracy.is_nan() { 0.0 } else { s.accuracy };
    p.window.2 += 1;
    let last_iteration = done == cfg.train.iterations;
    if (cfg.train.val_every > 0 && done % cfg.train.val_every == 0) || last_iteration {
        let (point, improved) = validate(cfg, learner, ctx.source, ctx.val, done, p)?;
        (ctx.say)(format_point(&point, cfg.data.is_regression(), improved));
        if let Some(e) = &p.early_stop {
            (ctx.say)(format!("iter {done:>7}: early stop: {}", e.reason));
        }
    }
    if done % cfg.train.checkpoint_every == 0 || last_iteration || p.early_stop.is_some() {
        let last = cfg.train.out_dir.join(LAST_FILE);
        save_run_checkpoint(&last, learner, cfg, done, p, None)?;
    }
    Ok(s)
}

/// The run's first line: what, from where, how many threads, which folder, and the schedule
/// when the config sets one (training shape, lr steps, early stopping).
fn start_line(cfg: &RunConfig, start: usize, from: Option<&Path>) -> String {
    let (d, t) = (&cfg.data, &cfg.train);
    let mut schedule = String::new();
    if (d.train_n_way(), d.train_q_query()) != (d.n_way(), d.q_query) {
        schedule += &format!(
            ", training episodes {}-way {}-query (validation and test {}-way {}-query)",
            d.train_n_way(),
            d.train_q_query(),
            d.n_way(),
            d.q_query
        );
    }
    if let Some(k) = t.lr_decay_every {
        let f = t.lr_decay_factor();
        schedule += &format!(", meta lr {} x {f} every {k} iterations", cfg.meta_lr());
    }
    if let Some(n) = t.early_stop_patience {
        schedule += &format!(", early stopping after {n} validations without improvement");
    }
    format!(
        "{}: {} -> {} iterations{schedule}, {} threads, run folder {}",
        cfg.describe(),
        match from {
            Some(f) => format!("resuming at {start} from {}", f.display()),
            None => "starting".into(),
        },
        cfg.train.iterations,
        rayon::current_num_threads(),
        cfg.train.out_dir.display()
    )
}

/// The run's progress bar (hidden without `opts.progress`), at iteration `start`.
fn run_progress_bar(cfg: &RunConfig, opts: &TrainOptions, start: usize) -> indicatif::ProgressBar {
    let style = bar_style(
        "{spinner} [{elapsed_precise} < {eta_precise}] {bar:30} {pos}/{len} {per_sec} {msg}",
    );
    let bar = progress_bar(opts.progress, cfg.train.iterations as u64, style);
    if opts.progress {
        bar.set_position(start as u64);
        bar.reset_eta();
    }
    bar
}

/// Meta-trains as the config says (see the module documentation). The run folder is locked
/// for the whole run ([`crate::run::lock`]); the run stops with [`TrainError::Diverged`] at the
/// first non-finite loss, gradient norm, parameter or validation metric, or at a loss above
/// `train.diverge_loss`, keeping the checkpoints written before. Early stopping
/// (`train.early_stop_patience`) ends it normally, with [`TrainReport::early_stop`] set.
pub fn train(cfg: &RunConfig, opts: &TrainOptions) -> Result<TrainReport> {
    cfg.validate()?;
    let clock = Stopwatch::start();
    // Several ranks ([`crate::dist`]): rank 0 alone locks and writes the folder and shows
    // progress; the others compute their shares and read the checkpoint they resume from.
    let root = crate::dist::is_root();
    let opts = &TrainOptions {
        progress: opts.progress && root,
        ..opts.clone()
    };
    let _lock = root.then(|| open_run_folder(cfg, opts)).transpose()?;
    let source = TaskSource::load(cfg)?;
    let sampler = source.train_sampler()?;
    if let Some(classes) = source.train_classes() {
        cfg.algorithm.check_training_classes(classes)?;
    }
    let val = source.fixed(Split::Val, cfg.train.val_episodes, cfg.train.val_seed)?;
    let mut learner = build(cfg)?;
    let regression = cfg.data.is_regression();
    let (start, state, from) = if opts.resume {
        let (s, st, f) = resume_state(cfg, learner.as_mut())?;
        (s, st, Some(f))
    } else {
        (0, LoopState::default(), None)
    };
    // No rank writes a checkpoint before every rank has read the one it resumes from.
    crate::dist::active().barrier();
    let bar = run_progress_bar(cfg, opts, start);
    let say = |line: String| {
        if !opts.progress {
        } else if bar.is_hidden() {
            eprintln!("{line}");
        } else {
            bar.println(line);
        }
    };
    say(start_line(cfg, start, from.as_deref()));
    let mut p = Progress::restore(state, clock, from.as_ref().map(|_| start));
    p.early_stop = p.early_stop_due(cfg, start);
    if let Some(e) = &p.early_stop {
        say(format!(
            "the run had already stopped at iteration {start}: {}",
            e.reason
        ));
    }
    let (mut interrupted, mut stopped_at) = (false, None);
    for it in start..cfg.train.iterations {
        if p.early_stop.is_some() {
            break;
        }
        if opts.stop_after == Some(it) {
            interrupted = true;
            break;
        }
        if crate::run::interrupt::stop_requested() {
            // A stop request (Ctrl-C from Python): keep the iterations done for `--resume`.
            let last = cfg.train.out_dir.join(LAST_FILE);
            save_run_checkpoint(&last, learner.as_ref(), cfg, it, &mut p, None)?;
            (interrupted, stopped_at) = (true, Some(it));
            break;
        }
        let ctx = StepContext {
            cfg,
            source: &source,
            sampler: sampler.as_ref(),
            val: &val,
            say: &say,
        };
        let s = iteration(&ctx, learner.as_mut(), it, &mut p).inspect_err(|_| bar.abandon())?;
        bar.set_position(it as u64 + 1);
        bar.set_message(if regression {
            format!("loss {:.4}", s.loss)
        } else {
            format!("loss {:.4} acc {:.1}%", s.loss, 100.0 * s.accuracy)
        });
    }
    if interrupted {
        bar.abandon();
    } else {
        bar.finish();
    }
    // Rank 0's last files are written before any rank reads them (the test protocol).
    crate::dist::active().barrier();
    let done = match (&p.early_stop, interrupted) {
        (_, true) => stopped_at.or(opts.stop_after).unwrap_or(0),
        (Some(e), false) => e.iteration,
        (None, false) => cfg.train.iterations,
    };
    Ok(p.report(cfg, start, done, interrupted))
}

fn format_point(p: &HistoryPoint, regression: bool, improved: bool) -> String {
    let star = if improved { " (best)" } else { "" };
    if regression {
        format!(
            "iter {:>7}: train loss {:.4} | val MSE {:.4}{star}",
            p.iteration, p.train_loss, p.val_metric
        )
    } else {
        format!(
            "iter {:>7}: train loss {:.4} acc {:.2}% | val loss {:.4} acc {:.2}%{star}",
            p.iteration,
            p.train_loss,
            100.0 * p.train_accuracy.unwrap_or(f64::NAN),
            p.val_loss,
            100.0 * p.val_metric
        )
    }
}

/// Writes `history.json`: the task, the config, the learning curve and, when early stopping
/// ended the run, `early_stop` (iteration and reason).
fn write_history(
    out_dir: &Path,
    cfg: &RunConfig,
    history: &[HistoryPoint],
    early_stop: Option<&EarlyStop>,
) -> Result<()> {
    let path = out_dir.join("history.json");
    let mut v = serde_json::json!({ "task": cfg.describe(), "config": cfg, "history": history });
    if let Some(e) = early_stop {
        v["early_stop"] = serde_json::json!(e);
    }
    let text = serde_json::to_string_pretty(&v).expect("history serialises");
    crate::nn::checkpoint::write_atomic(&path, text.as_bytes())?;
    Ok(())
}

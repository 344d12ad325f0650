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
//! - `best.safetensors`: the state with the best validation score so far,
//! - `learning_curve.svg`, `history.json`: rewritten at each validation.

use super::config::RunConfig;
use super::error::{Result, TrainError};
use super::eval::{score_tasks, CONFIG_KEY};
use super::tasks::{Split, TaskSource};
use crate::algorithms::FewShotLearner;
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

/// Builds a fresh learner for a run config.
pub fn build(cfg: &RunConfig) -> Result<Box<dyn FewShotLearner<f32>>> {
    let mut rng = init_rng(cfg.train.seed);
    Ok(if cfg.data.is_regression() {
        crate::algorithms::build_regression_learner(
            &cfg.algorithm,
            &cfg.backbone,
            1,
            cfg.meta_lr(),
            &mut rng,
        )?
    } else {
        crate::algorithms::build_learner(
            &cfg.algorithm,
            &cfg.backbone,
            cfg.data.n_way(),
            cfg.meta_lr(),
            &mut rng,
        )?
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
}

/// Options of [`train`] that are not part of the run config.
#[derive(Clone, Debug, Default)]
pub struct TrainOptions {
    /// Continue from `out_dir/last.safetensors`.
    pub resume: bool,
    /// Start over even when `out_dir` already holds a run.
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
    /// Whether it stopped early ([`TrainOptions::stop_after`]).
    pub interrupted: bool,
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

/// The sections of two configs that differ, ignoring `train.iterations` and `train.out_dir`.
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

/// Meta-trains as the config says (see the module documentation).
pub fn train(cfg: &RunConfig, opts: &TrainOptions) -> Result<TrainReport> {
    cfg.validate()?;
    let t0 = std::time::Instant::now();
    let out_dir = cfg.train.out_dir.clone();
    let last_path = out_dir.join("last.safetensors");
    let best_path = out_dir.join("best.safetensors");
    let curve_path = out_dir.join("learning_curve.svg");
    let resume_err = |reason: String| TrainError::Resume {
        out_dir: out_dir.clone(),
        reason,
    };
    if !opts.resume && !opts.overwrite && last_path.exists() {
        return Err(resume_err(
            "already holds a run (last.safetensors): pass --resume to continue it, or --overwrite to start over".into(),
        ));
    }
    let source = TaskSource::load(cfg)?;
    let sampler = source.sampler(Split::Train)?;
    let val = source.fixed(Split::Val, cfg.train.val_episodes, cfg.train.val_seed)?;
    let mut learner = build(cfg)?;
    let regression = cfg.data.is_regression();

    let mut state = LoopState::default();
    let mut start = 0;
    if opts.resume {
        if !last_path.exists() {
            return Err(resume_err("nothing to resume: no last.safetensors".into()));
        }
        let ck = crate::nn::checkpoint::load::<f32>(&last_path)?;
        let stored = super::eval::stored_config(&last_path, &ck.metadata)?;
        let diff = config_diff(&stored, cfg);
        if !diff.is_empty() {
            return Err(resume_err(format!(
                "the config differs from the run's in [{}]; only `train.iterations` may change on resume",
                diff.join("], [")
            )));
        }
        let bad_meta = |k: &str| TrainError::NotARun {
            path: last_path.clone(),
            reason: format!(
                "missing or invalid `{k}` metadata: not a `last` checkpoint of `metalearn train`"
            ),
        };
        start = ck
            .metadata
            .get(ITERATION_KEY)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad_meta(ITERATION_KEY))?;
        state = ck
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
        learner
            .load_state(&ck.params)
            .map_err(|source| TrainError::Architecture {
                path: last_path.clone(),
                stored: stored.describe(),
                requested: cfg.describe(),
                source: Box::new(source),
            })?;
    }
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| TrainError::io(&out_dir, "creating the run folder", e))?;

    let bar = if opts.progress {
        let b = indicatif::ProgressBar::new(cfg.train.iterations as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise} < {eta_precise}] {bar:30} {pos}/{len} {per_sec} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b.set_position(start as u64);
        b.reset_eta();
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let say = |line: String| {
        if !opts.progress {
        } else if bar.is_hidden() {
            eprintln!("{line}");
        } else {
            bar.println(line);
        }
    };
    say(format!(
        "{}: {} -> {} iterations, {} threads, run folder {}",
        cfg.describe(),
        if start > 0 {
            format!("resuming at {start}")
        } else {
            "starting".into()
        },
        cfg.train.iterations,
        rayon::current_num_threads(),
        out_dir.display()
    ));

    let prior_s = f64::from_bits(state.elapsed_bits);
    let (mut wl, mut wa, mut wn) = (
        f64::from_bits(state.window.0),
        f64::from_bits(state.window.1),
        state.window.2,
    );
    let mut interrupted = false;
    for it in start..cfg.train.iterations {
        if opts.stop_after == Some(it) {
            interrupted = true;
            break;
        }
        let mut rng = step_rng(cfg.train.seed, it);
        let tasks = source.train_batch(sampler.as_ref(), &mut rng, cfg.train.meta_batch);
        learner.set_progress(it, cfg.train.iterations);
        let s = learner.meta_train_step(&tasks, &mut rng);
        let done = it + 1;
        if !s.loss.is_finite() {
            bar.abandon();
            return Err(TrainError::Diverged {
                iteration: done,
                loss: s.loss,
            });
        }
        wl += s.loss;
        wa += if s.accuracy.is_nan() { 0.0 } else { s.accuracy };
        wn += 1;
        let validate_now = (cfg.train.val_every > 0 && done % cfg.train.val_every == 0)
            || done == cfg.train.iterations;
        if validate_now {
            let scores = score_tasks(learner.as_ref(), &source, &val)?;
            let n = scores.len().max(1) as f64;
            let p = HistoryPoint {
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
            (wl, wa, wn) = (0.0, 0.0, 0);
            state.history.push(p.to_bits());
            let improved = match state.best {
                None => true,
                Some((_, b)) => is_better(regression, p.val_metric, f64::from_bits(b)),
            };
            if improved {
                state.best = Some((done, p.val_metric.to_bits()));
                save_checkpoint(
                    &best_path,
                    learner.as_ref(),
                    cfg,
                    done,
                    &[(VAL_KEY, p.val_metric.to_string())],
                )?;
            }
            let history: Vec<HistoryPoint> = state
                .history
                .iter()
                .map(|&b| HistoryPoint::from_bits(b))
                .collect();
            write_history(&out_dir, cfg, &history)?;
            super::plot::write_learning_curve(&curve_path, &cfg.describe(), &history, regression)?;
            say(format_point(&p, regression, improved));
        }
        if done % cfg.train.checkpoint_every == 0 || done == cfg.train.iterations {
            state.window = (wl.to_bits(), wa.to_bits(), wn);
            state.elapsed_bits = (prior_s + t0.elapsed().as_secs_f64()).to_bits();
            save_checkpoint(
                &last_path,
                learner.as_ref(),
                cfg,
                done,
                &[(
                    LOOP_KEY,
                    serde_json::to_string(&state).expect("loop state serialises"),
                )],
            )?;
        }
        bar.set_position(done as u64);
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
    let history: Vec<HistoryPoint> = state
        .history
        .iter()
        .map(|&b| HistoryPoint::from_bits(b))
        .collect();
    let done = if interrupted {
        opts.stop_after.unwrap_or(0)
    } else {
        cfg.train.iterations
    };
    Ok(TrainReport {
        task: cfg.describe(),
        iterations: done,
        interrupted,
        resumed_from: start,
        history,
        best: state.best.map(|(i, b)| (i, f64::from_bits(b))),
        train_s: prior_s + t0.elapsed().as_secs_f64(),
        wall_s: t0.elapsed().as_secs_f64(),
        peak_rss_mib: crate::bench::peak_rss_mib(),
        best_checkpoint: best_path,
        last_checkpoint: last_path,
        curve: curve_path,
    })
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

fn write_history(out_dir: &Path, cfg: &RunConfig, history: &[HistoryPoint]) -> Result<()> {
    let path = out_dir.join("history.json");
    let v = serde_json::json!({ "task": cfg.describe(), "config": cfg, "history": history });
    let text = serde_json::to_string_pretty(&v).expect("history serialises");
    crate::nn::checkpoint::write_atomic(&path, text.as_bytes())?;
    Ok(())
}

//! The evaluation protocol: mean accuracy (or MSE for regression) over a fixed set of test
//! episodes drawn once from `eval.seed` (so every method with the same data, N, K and Q is
//! scored on the same episodes), with a 95% confidence interval `1.96 sigma / sqrt(n)`, the
//! wall time and the peak memory ([`crate::run::stats`]).

use super::config::RunConfig;
use super::error::{Result, TrainError};
use super::tasks::{FixedTasks, Split, TaskSource};
use crate::algorithms::{BackboneConfig, FewShotLearner, Target};
use crate::run::diverge::first_non_finite;
use crate::run::stats::{mean_ci95, MeanCi};
use crate::run::usage::{peak_rss_mib, reset_peak_rss, Stopwatch};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The metadata key holding the run config (JSON) in every checkpoint of `metalearn train`.
pub const CONFIG_KEY: &str = "metalearn.run_config";

/// One task's score: the query loss and the metric (accuracy in `[0, 1]`, or the MSE).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TaskScore {
    /// Cross-entropy or MSE of the query predictions.
    pub loss: f64,
    /// Accuracy (classification) or MSE (regression).
    pub metric: f64,
}

/// Scores the learner on every task of a fixed list (tasks in parallel; the scores come back
/// in task order, so sums over them are deterministic). In a run of several ranks
/// ([`crate::dist`]) each rank scores its block of tasks and every rank gets all the scores,
/// the same as one process computes.
pub fn score_tasks(
    learner: &dyn FewShotLearner<f32>,
    source: &TaskSource,
    fixed: &FixedTasks,
) -> Result<Vec<TaskScore>> {
    if !crate::dist::is_distributed() {
        return score_range(learner, source, fixed, 0..fixed.len());
    }
    // A rank that cannot score its block stops the run (the others would wait for its share).
    let all = crate::dist::gather_in_order(fixed.len(), 2, |block| {
        match score_range(learner, source, fixed, block) {
            Ok(scores) => scores.iter().flat_map(|s| [s.loss, s.metric]).collect(),
            Err(e) => crate::dist::fail(&format!("scoring episodes: {e}")),
        }
    });
    Ok(all
        .chunks_exact(2)
        .map(|c| TaskScore {
            loss: c[0],
            metric: c[1],
        })
        .collect())
}

/// [`score_tasks`] on the tasks `range` of `fixed`.
fn score_range(
    learner: &dyn FewShotLearner<f32>,
    source: &TaskSource,
    fixed: &FixedTasks,
    range: std::ops::Range<usize>,
) -> Result<Vec<TaskScore>> {
    use rayon::prelude::*;
    let mode = crate::autodiff::is_grad_enabled();
    range
        .into_par_iter()
        .map(|i| {
            let _mode = crate::autodiff::set_grad_enabled(mode);
            let t = source.fixed_task(fixed, i)?;
            let out = learner.predict(&t.support_x, &t.support_y, &t.query_x);
            let loss = learner.query_loss(&out, &t.query_y).item() as f64;
            let metric = match &t.query_y {
                Target::Classes(labels) => {
                    let pred = out.argmax_axis(-1);
                    pred.iter().zip(labels).filter(|(p, l)| p == l).count() as f64
                        / labels.len().max(1) as f64
                }
                Target::Values(_) => loss,
            };
            Ok(TaskScore { loss, metric })
        })
        .collect()
}

/// The first test episode whose query loss or metric is NaN or infinite, in words (`None`
/// when all are finite): an evaluation never reports a NaN mean.
pub fn non_finite_score(scores: &[TaskScore], regression: bool) -> Option<String> {
    let metric = if regression { "MSE" } else { "accuracy" };
    let bad = scores
        .iter()
        .filter(|s| !(s.loss.is_finite() && s.metric.is_finite()))
        .count();
    let (i, s) = scores
        .iter()
        .enumerate()
        .find(|(_, s)| !(s.loss.is_finite() && s.metric.is_finite()))?;
    Some(format!(
        "the model's outputs are not finite on {bad} of {} test episodes (episode {i}: query \
         loss {}, {metric} {}): its weights are too large or the run diverged, so no score is \
         reported",
        scores.len(),
        s.loss,
        s.metric
    ))
}

/// The result of the protocol.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// `maml on omniglot 5-way 1-shot (conv4)`.
    pub task: String,
    /// The method.
    pub algorithm: String,
    /// `accuracy` or `mse`.
    pub metric: String,
    /// The episodes' seed.
    pub seed: u64,
    /// The metric over the episodes (accuracy as a fraction).
    pub score: MeanCi,
    /// Classification: the error rate `1 - accuracy` over the episodes (as a fraction, the
    /// same 95% CI half-width as the accuracy); `None` for regression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<MeanCi>,
    /// The mean query loss.
    pub mean_loss: f64,
    /// Seconds for all episodes (adaptation and prediction).
    pub wall_s: f64,
    /// Milliseconds per episode.
    pub ms_per_episode: f64,
    /// Peak resident memory of the evaluation, MiB (of the process when the peak could not be
    /// reset first).
    pub peak_rss_mib: f64,
    /// Worker threads.
    pub threads: usize,
    /// The checkpoint evaluated, if any.
    pub checkpoint: Option<PathBuf>,
}

impl std::fmt::Display for EvalReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.score;
        if self.metric == "accuracy" {
            write!(
                f,
                "{}: accuracy {:.2}% ± {:.2}%",
                self.task,
                100.0 * s.mean,
                100.0 * s.ci95
            )?;
            if let Some(e) = &self.error {
                write!(f, ", error {:.2}% ± {:.2}%", 100.0 * e.mean, 100.0 * e.ci95)?;
            }
        } else {
            write!(f, "{}: MSE {:.4} ± {:.4}", self.task, s.mean, s.ci95)?;
        }
        write!(
            f,
            " (95% CI, {} test episodes, seed {}) | eval {:.2} s, {:.2} ms/episode, peak RSS {:.0} MiB, {} threads",
            s.n, self.seed, self.wall_s, self.ms_per_episode, self.peak_rss_mib, self.threads
        )
    }
}

/// Runs the protocol of `cfg.eval` on the test split of `source`.
pub fn evaluate(
    learner: &dyn FewShotLearner<f32>,
    cfg: &RunConfig,
    source: &TaskSource,
) -> Result<EvalReport> {
    let fixed = source.fixed(Split::Test, cfg.eval.episodes, cfg.eval.seed)?;
    reset_peak_rss();
    let clock = Stopwatch::start();
    let scores = score_tasks(learner, source, &fixed)?;
    if let Some(reason) = non_finite_score(&scores, cfg.data.is_regression()) {
        return Err(TrainError::NonFinite {
            path: PathBuf::from(format!("evaluation of {}", cfg.describe())),
            reason,
        });
    }
    let wall_s = clock.seconds();
    let metric: Vec<f64> = scores.iter().map(|s| s.metric).collect();
    let regression = cfg.data.is_regression();
    let error =
        (!regression).then(|| mean_ci95(&metric.iter().map(|a| 1.0 - a).collect::<Vec<_>>()));
    Ok(EvalReport {
        task: cfg.describe(),
        algorithm: cfg.algorithm.name().to_string(),
        metric: if regression { "mse" } else { "accuracy" }.to_string(),
        seed: cfg.eval.seed,
        score: mean_ci95(&metric),
        error,
        mean_loss: scores.iter().map(|s| s.loss).sum::<f64>() / scores.len().max(1) as f64,
        wall_s,
        ms_per_episode: 1e3 * wall_s / scores.len().max(1) as f64,
        peak_rss_mib: peak_rss_mib(),
        threads: rayon::current_num_threads(),
        checkpoint: None,
    })
}

/// A backbone in words.
pub fn describe_backbone(b: &BackboneConfig) -> String {
    match b {
        BackboneConfig::Conv4(c) => format!(
            "conv4 (in_channels {}, filters {}, image_size {}, blocks {})",
            c.in_channels, c.filters, c.image_size, c.blocks
        ),
        BackboneConfig::ResNet12(r) => format!(
            "resnet12 (in_channels {}, channels {:?}, image_size {}, pooling {:?}, drop_block {:?})",
            r.in_channels, r.channels, r.image_size, r.pooling, r.drop_block
        ),
        BackboneConfig::Mlp(m) => format!("mlp (sizes {:?})", m.sizes),
    }
}

/// A learner restored from a checkpoint of `metalearn train`.
pub struct LoadedRun {
    /// The learner with the checkpoint's state.
    pub learner: Box<dyn FewShotLearner<f32>>,
    /// The config in effect (the override, or the stored one).
    pub config: RunConfig,
    /// The config stored in the checkpoint.
    pub stored: RunConfig,
    /// The width of the classifier head (methods with a head), else `None`.
    pub head: Option<usize>,
    /// The checkpoint's metadata.
    pub metadata: std::collections::BTreeMap<String, String>,
    /// How the checkpoint's training examples were read from files (`adapt` and `eval` read
    /// new ones the same way).
    pub input: Option<super::input::InputPipeline>,
}

/// The run config stored in a checkpoint's metadata, in the canonical form of
/// [`super::DataConfig::normalize`] (so a checkpoint of an earlier version reads as it did).
pub fn stored_config(
    path: &Path,
    metadata: &std::collections::BTreeMap<String, String>,
) -> Result<RunConfig> {
    let text = metadata
        .get(CONFIG_KEY)
        .ok_or_else(|| TrainError::NotARun {
            path: path.to_path_buf(),
            reason: format!(
                "no `{CONFIG_KEY}` in its metadata: not a checkpoint written by `metalearn train`"
            ),
        })?;
    let mut cfg: RunConfig = serde_json::from_str(text).map_err(|e| TrainError::NotARun {
        path: path.to_path_buf(),
        reason: format!("its `{CONFIG_KEY}` metadata is not a valid run config: {e}"),
    })?;
    cfg.data.normalize();
    Ok(cfg)
}

/// Loads a checkpoint and rebuilds its learner. With `config`, that config's algorithm,
/// backbone and data are used (e.g. another N or K): a config asking for more classes than
/// the checkpoint's head, or for another architecture, is an error.
pub fn load_learner(path: &Path, config: Option<&RunConfig>) -> Result<LoadedRun> {
    let ck = crate::nn::checkpoint::load::<f32>(path)?;
    let stored = stored_config(path, &ck.metadata)?;
    let input = super::input::InputPipeline::from_checkpoint(path, &ck.metadata, &stored)?;
    if let Some(bad) = first_non_finite(&ck.params) {
        return Err(TrainError::NonFinite {
            path: path.to_path_buf(),
            reason: format!(
                "the checkpoint's weights are not finite ({bad}): it is corrupt or from a diverged run"
            ),
        });
    }
    let cfg = config.cloned().unwrap_or_else(|| stored.clone());
    let head = head_width(path, &cfg, &stored, &ck.params)?;
    let n_way = head.unwrap_or(cfg.data.n_way());
    let mut learner = super::r#loop::build_with(&cfg, n_way, &mut crate::data::seeded_rng(0))?;
    learner
        .load_state(&ck.params)
        .map_err(|source| TrainError::Architecture {
            path: path.to_path_buf(),
            stored: describe_architecture(&stored, stored.data.n_way()),
            requested: describe_architecture(&cfg, n_way),
            source: Box::new(source),
        })?;
    Ok(LoadedRun {
        learner,
        config: cfg,
        stored,
        head,
        metadata: ck.metadata,
        input,
    })
}

/// The width of the checkpoint's classifier head when `cfg`'s method has one (classification
/// only); errors when `cfg` asks for more classes.
fn head_width(
    path: &Path,
    cfg: &RunConfig,
    stored: &RunConfig,
    params: &crate::nn::Params<f32>,
) -> Result<Option<usize>> {
    if !cfg.has_head() || cfg.data.is_regression() {
        return Ok(None);
    }
    let h = params
        .get("param/head.weight")
        .map(|t| t.shape()[0])
        .unwrap_or(stored.data.n_way());
    if cfg.data.n_way() > h {
        return Err(TrainError::TooManyClasses {
            path: path.to_path_buf(),
            what: "the config's `data.n_way`".into(),
            n_way: cfg.data.n_way(),
            head: h,
        });
    }
    Ok(Some(h))
}

/// A run's architecture in words: `maml on 5-way (conv4 (...))`.
fn describe_architecture(cfg: &RunConfig, n_way: usize) -> String {
    format!(
        "{} on {} ({})",
        cfg.algorithm.name(),
        if cfg.data.is_regression() {
            "regression".to_string()
        } else {
            format!("{n_way}-way")
        },
        describe_backbone(&cfg.backbone)
    )
}

/// `metalearn eval`: loads a checkpoint (with an optional config overriding the stored one,
/// e.g. another `[eval]` or N/K) and runs the protocol on the test classes.
pub fn evaluate_checkpoint(path: &Path, config: Option<&RunConfig>) -> Result<EvalReport> {
    let run = load_learner(path, config)?;
    let source = TaskSource::load_as(&run.config, run.input)?;
    let mut report = evaluate(run.learner.as_ref(), &run.config, &source).map_err(|e| match e {
        TrainError::NonFinite { reason, .. } => TrainError::NonFinite {
            path: path.to_path_buf(),
            reason,
        },
        e => e,
    })?;
    report.checkpoint = Some(path.to_path_buf());
    Ok(report)
}

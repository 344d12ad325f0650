//! Model selection: grid, random and successive-halving search over any key of a run config
//! (`metalearn search --config FILE`, see `configs/search/`).
//!
//! ```toml
//! base = "../fewshot/maml-sinusoid.toml"   # relative to this file; a `metalearn train`,
//! kind = "train"                          # `mtl` or `transfer` config (kind = train|mtl|transfer)
//! method = "halving"                      # grid | random | halving
//! trials = 9                              # random / halving: configs sampled (halving: 0 = the grid)
//! seed = 0                                # of the sampling
//! seeds = [0]                             # run seeds of every config (score = mean); default: the base's
//! workers = 2                             # trials in parallel (0 = one per core)
//! out_dir = "runs/search/maml-sinusoid"
//! min_budget = 100                        # halving: budget of the first rung, times eta per rung,
//! max_budget = 900                        # up to max_budget (grid / random: the budget of all trials)
//! eta = 3                                 # halving: keep the top 1/eta of each rung
//! # budget_key = "train.iterations"       # default: train.iterations | train.epochs | target.steps
//!
//! [fixed]                                 # overrides of every trial
//! "train.val_every" = 0
//!
//! [space]
//! "algorithm.inner_lr" = { log_uniform = [0.001, 0.1] }
//! "algorithm.inner_steps" = { values = [1, 2, 5] }
//! # "backbone.filters" = { range = [16, 64, 16] }
//! ```
//!
//! Every key of `[space]`, `[fixed]` and the budget is applied to the base document and the
//! result parsed as the run config (unknown keys, wrong types and out-of-range values are
//! rejected) for every listed value and interval end, before any trial runs.
//!
//! Trials are scored on the run's validation data (few-shot: the fixed validation episodes,
//! best validation metric of the run; multi-task: the last 10% of the training set; transfer:
//! `target.val_size` held-out target examples). Each finished trial is stored as
//! `<out_dir>/trials/<key>.json`, `key` hashing the base config, the overrides, the budget and
//! the seed; `trials.csv` is rewritten after each trial. A restarted search skips recorded
//! trials. The best config, at the final budget, is written as `<out_dir>/best.toml` (a config
//! of the base's kind, e.g. accepted by `metalearn train`), with `search_trials.svg`.
//!
//! The search drives a command through [`Objective`] only; which objective a config's `kind`
//! names is the caller's choice ([`ObjectiveFactory`], e.g. [`crate::objectives::for_kind`]).
//! Its phases: [`plan`] (every key checked, rungs and candidates), [`trials`] (the rungs run
//! and recorded), then `best.toml`, the plot and `search.json`.

pub mod error;
pub mod plan;
pub mod space;
pub mod trials;

pub use crate::run::dotted::{get_dotted, set_dotted};
pub use crate::run::objective::Objective;
pub use error::{Result, SearchError};
pub use space::{flatten_space, Dim};

use crate::run::plot::{LinePlot, Series};
use crate::run::report::print_report;
use plan::Plan;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use toml::Value;
use trials::Trials;

/// The config family of the base.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `metalearn train` run configs.
    #[default]
    Train,
    /// `metalearn mtl` configs.
    Mtl,
    /// `metalearn transfer` configs.
    Transfer,
}

/// The search method.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Every combination of the values.
    #[default]
    Grid,
    /// `trials` random combinations.
    Random,
    /// Successive halving: rungs of growing budget, the top 1/eta kept.
    Halving,
}

fn default_eta() -> usize {
    3
}

/// A search config (see the module documentation).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchConfig {
    /// The base config (relative to the search config's folder).
    pub base: PathBuf,
    /// Its family.
    #[serde(default)]
    pub kind: Kind,
    /// grid, random or halving.
    #[serde(default)]
    pub method: Method,
    /// Configs sampled (random, halving; 0 for halving = the whole grid).
    #[serde(default)]
    pub trials: usize,
    /// Seed of the sampling.
    #[serde(default)]
    pub seed: u64,
    /// Run seeds of every config (empty: the base's seed).
    #[serde(default)]
    pub seeds: Vec<u64>,
    /// Output folder (default `runs/search/<config file stem>`).
    #[serde(default)]
    pub out_dir: Option<PathBuf>,
    /// Trials run in parallel (0: one per core).
    #[serde(default)]
    pub workers: usize,
    /// The key a budget sets (default by kind).
    #[serde(default)]
    pub budget_key: Option<String>,
    /// Halving: the first rung's budget.
    #[serde(default)]
    pub min_budget: Option<usize>,
    /// Halving: the largest budget (default: the base's value); grid / random: every trial's.
    #[serde(default)]
    pub max_budget: Option<usize>,
    /// Halving: budget factor and 1/keep-fraction between rungs (3).
    #[serde(default = "default_eta")]
    pub eta: usize,
    /// Overrides of every trial (dotted keys).
    #[serde(default)]
    pub fixed: toml::Table,
    /// The search space (dotted keys).
    pub space: toml::Table,
}

impl SearchConfig {
    /// Parses TOML text and checks its numeric values ([`SearchConfig::validate`]).
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Self> {
        let cfg: SearchConfig = toml::from_str(text).map_err(|e| SearchError::Parse {
            path: origin.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks every numeric setting against its allowed range (one table), naming the key,
    /// the value and the range on error.
    pub fn validate(&self) -> Result<()> {
        use crate::run::config_file::{int_in, MAX_STEPS};
        let mut counts: Vec<(&str, usize, usize, usize)> = vec![
            ("trials", self.trials, 0, 100_000),
            ("workers", self.workers, 0, 1024),
            ("eta", self.eta, 2, 1000),
            ("seeds (count)", self.seeds.len(), 0, 1000),
        ];
        if let Some(b) = self.min_budget {
            counts.push(("min_budget", b, 1, MAX_STEPS));
        }
        if let Some(b) = self.max_budget {
            counts.push(("max_budget", b, 1, MAX_STEPS));
        }
        for (key, v, min, max) in counts {
            int_in(key, v, min, max).map_err(|e| match e {
                crate::run::ConfigError::Value { key, reason } => {
                    SearchError::Value { key, reason }
                }
                other => SearchError::value(key, other.to_string()),
            })?;
        }
        Ok(())
    }
}

/// One finished trial (`<out_dir>/trials/<key>.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrialRecord {
    /// Hash of base, overrides, budget and seed.
    pub key: String,
    /// Index of the config among the candidates.
    pub candidate: usize,
    /// Halving rung (0 otherwise).
    pub rung: usize,
    /// The budget set, if any.
    pub budget: Option<usize>,
    /// The run seed set, if any.
    pub seed: Option<u64>,
    /// The space values.
    pub overrides: BTreeMap<String, Value>,
    /// The score (`None` when the trial failed).
    pub score: Option<f64>,
    /// Why it failed.
    pub error: Option<String>,
    /// Seconds.
    pub seconds: f64,
}

/// One rung: its budget and every candidate's mean score.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Rung {
    /// The budget (`None`: the base's).
    pub budget: Option<usize>,
    /// `(candidate, mean score over seeds)`, best first; `None` = failed.
    pub scores: Vec<(usize, Option<f64>)>,
    /// Candidates promoted to the next rung.
    pub kept: Vec<usize>,
}

/// What [`search`] did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SearchReport {
    /// The method.
    pub method: Method,
    /// The score's name.
    pub metric: String,
    /// Whether higher is better.
    pub maximize: bool,
    /// The searched keys.
    pub keys: Vec<String>,
    /// The candidate configs.
    pub candidates: Vec<BTreeMap<String, Value>>,
    /// The rungs (one for grid and random).
    pub rungs: Vec<Rung>,
    /// This search's trials, in plan order.
    pub trials: Vec<TrialRecord>,
    /// Trials run by this process.
    pub ran: usize,
    /// Trials found recorded and skipped.
    pub reused: usize,
    /// The best candidate.
    pub best: usize,
    /// Its score (at the last rung).
    pub best_score: f64,
    /// The budget `best.toml` carries.
    pub best_budget: Option<usize>,
    /// `<out_dir>/best.toml`.
    pub best_toml: PathBuf,
    /// Files written.
    pub files: Vec<PathBuf>,
}

impl SearchReport {
    /// The results table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:?} search, {} candidates, metric {} ({}), {} trials run, {} reused",
            self.method,
            self.candidates.len(),
            self.metric,
            if self.maximize {
                "higher is better"
            } else {
                "lower is better"
            },
            self.ran,
            self.reused
        );
        for (r, rung) in self.rungs.iter().enumerate() {
            let _ = writeln!(
                s,
                "rung {r} (budget {}):",
                rung.budget.map_or("base".into(), |b| b.to_string())
            );
            let _ = writeln!(
                s,
                "  {:>4} {:>5} {:>12}  {}",
                "rank",
                "cand",
                self.metric,
                self.keys.join("  ")
            );
            for (rank, (c, sc)) in rung.scores.iter().enumerate() {
                let vals: Vec<String> = self
                    .keys
                    .iter()
                    .map(|k| self.candidates[*c].get(k).map_or("-".into(), space::show))
                    .collect();
                let _ = writeln!(
                    s,
                    "  {:>4} {:>5} {:>12}  {}{}",
                    rank + 1,
                    c,
                    sc.map_or("failed".into(), |v| format!("{v:.5}")),
                    vals.join("  "),
                    if rung.kept.contains(c) && r + 1 < self.rungs.len() {
                        "  -> kept"
                    } else {
                        ""
                    }
                );
            }
        }
        let vals: Vec<String> = self
            .keys
            .iter()
            .map(|k| format!("{k} = {}", space::show(&self.candidates[self.best][k])))
            .collect();
        let _ = writeln!(
            s,
            "best: candidate {} ({}), {} = {:.5} -> {}",
            self.best,
            vals.join(", "),
            self.metric,
            self.best_score,
            self.best_toml.display()
        );
        s
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SearchError + '_ {
    move |source| SearchError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The rung budgets of successive halving: `min, min*eta, ...` up to `max`.
pub fn rung_budgets(min: usize, max: usize, eta: usize) -> Vec<usize> {
    let mut v = vec![min];
    while let Some(&b) = v.last() {
        match b.checked_mul(eta) {
            Some(n) if n <= max => v.push(n),
            _ => break,
        }
    }
    v
}

/// How many of `n` candidates a rung keeps: `max(1, n / eta)`.
pub fn keep_count(n: usize, eta: usize) -> usize {
    (n / eta).max(1)
}

/// Runs a search of `cfg` over the `base` document with `objective`, in `out_dir`; `progress`
/// prints a line per trial on stderr. Every key is validated before any trial runs; `out_dir`
/// is locked for the whole search ([`crate::run::lock`]).
pub fn search(
    cfg: &SearchConfig,
    base: &Value,
    objective: &dyn Objective,
    out_dir: &Path,
    progress: bool,
) -> Result<SearchReport> {
    let plan = Plan::new(cfg, base, objective)?;
    // One writer per search folder, for the whole search.
    // Under several ranks ([`crate::dist`]) rank 0 alone locks and writes the folder.
    let root = crate::dist::is_root();
    let _lock = root
        .then(|| crate::run::RunLock::acquire(out_dir))
        .transpose()?;
    let mut trials = Trials::open(cfg, &plan, objective, out_dir, progress)?;
    let rungs = trials.run_rungs(cfg.eta)?;
    let done = trials.finish();
    let last = rungs.last().expect("at least one rung");
    let (best, best_score) = match last.scores.first() {
        Some(&(c, Some(s))) => (c, s),
        _ => {
            let first = done
                .records
                .iter()
                .find_map(|t| t.error.clone())
                .unwrap_or_else(|| "none".into());
            return Err(SearchError::NoTrial(first));
        }
    };
    let best_budget = last.budget;
    let best_toml = write_best_toml(
        cfg,
        &plan,
        objective,
        out_dir,
        (best, best_score),
        best_budget,
    )?;
    let svg = write_trials_plot(&rungs, objective, out_dir)?;
    let mut report = SearchReport {
        method: cfg.method,
        metric: objective.metric(),
        maximize: objective.maximize(),
        keys: plan.keys,
        candidates: plan.candidates,
        rungs,
        trials: done.records,
        ran: done.ran,
        reused: done.reused,
        best,
        best_score,
        best_budget,
        best_toml: best_toml.clone(),
        files: vec![done.csv_path, best_toml, svg],
    };
    let rp = out_dir.join("search.json");
    report.files.push(rp.clone());
    if !root {
        return Ok(report);
    }
    std::fs::write(
        &rp,
        serde_json::to_string_pretty(&report).expect("serialisable"),
    )
    .map_err(io(&rp))?;
    Ok(report)
}

/// Writes `<out_dir>/best.toml`: the best candidate (index, score) at `budget` as a config of the base's kind
/// (its output folder `<out_dir>/best`), checked by the objective, headed by a comment with
/// the score and the searched values.
fn write_best_toml(
    cfg: &SearchConfig,
    plan: &Plan,
    objective: &dyn Objective,
    out_dir: &Path,
    (best, best_score): (usize, f64),
    budget: Option<usize>,
) -> Result<PathBuf> {
    let point = &plan.candidates[best];
    let mut best_doc = plan.doc_for(objective, point, budget, None)?;
    if let Some(k) = objective.out_dir_key() {
        set_dotted(
            &mut best_doc,
            k,
            Value::String(out_dir.join("best").to_string_lossy().into_owned()),
        )?;
    }
    objective
        .check(&best_doc)
        .map_err(|e| SearchError::value("best.toml", format!("does not load: {e}")))?;
    let best_toml = out_dir.join("best.toml");
    let mut text = format!(
        "# best config of `metalearn search` ({:?}, {} = {best_score:.6})\n",
        cfg.method,
        objective.metric()
    );
    for k in &plan.keys {
        let _ = writeln!(text, "#   {k} = {}", space::show(&point[k]));
    }
    text.push_str(
        &toml::to_string(&best_doc).map_err(|e| SearchError::value("best.toml", e.to_string()))?,
    );
    if crate::dist::is_root() {
        std::fs::write(&best_toml, text).map_err(io(&best_toml))?;
    }
    Ok(best_toml)
}

/// Writes `<out_dir>/search_trials.svg`: each rung's scores by rank.
fn write_trials_plot(rungs: &[Rung], objective: &dyn Objective, out_dir: &Path) -> Result<PathBuf> {
    let mut plot = LinePlot::new(
        "search trials: score by rank within each rung",
        "rank",
        &objective.metric(),
    );
    for (r, rung) in rungs.iter().enumerate() {
        let pts = rung
            .scores
            .iter()
            .enumerate()
            .filter_map(|(i, (_, s))| s.map(|s| ((i + 1) as f64, s)))
            .collect();
        plot.series.push(Series::new(
            &format!(
                "rung {r} (budget {})",
                rung.budget.map_or("base".into(), |b| b.to_string())
            ),
            pts,
        ));
    }
    let svg = out_dir.join("search_trials.svg");
    if crate::dist::is_root() {
        std::fs::write(&svg, plot.to_svg()).map_err(io(&svg))?;
    }
    Ok(svg)
}

/// Builds the objective of a base config from its kind, its path and its document (the error
/// says why the base does not load). The search knows no command: the caller picks the
/// objectives (e.g. [`crate::objectives::for_kind`]).
pub type ObjectiveFactory =
    dyn Fn(Kind, &Path, &Value) -> std::result::Result<Box<dyn Objective>, String>;

/// Loads a search config and its base, and builds the objective with `objectives`:
/// `(config, base document, objective, out_dir)`. Nothing runs.
pub fn load(
    path: &Path,
    objectives: &ObjectiveFactory,
) -> Result<(SearchConfig, Value, Box<dyn Objective>, PathBuf)> {
    let text = std::fs::read_to_string(path).map_err(|source| SearchError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let cfg = SearchConfig::from_toml_str(&text, path)?;
    let base_path = match path.parent() {
        Some(d) if cfg.base.is_relative() && d.join(&cfg.base).exists() => d.join(&cfg.base),
        _ => cfg.base.clone(),
    };
    let base_text = std::fs::read_to_string(&base_path).map_err(|source| SearchError::Read {
        path: base_path.clone(),
        source,
    })?;
    let base: Value = toml::from_str(&base_text).map_err(|e| SearchError::Parse {
        path: base_path.clone(),
        message: e.to_string().trim_end().to_string(),
    })?;
    let objective = objectives(cfg.kind, &base_path, &base)
        .map_err(|e| SearchError::value("base", format!("does not load: {e}")))?;
    let out_dir = cfg
        .out_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs/search").join(path.file_stem().unwrap_or_default()));
    Ok((cfg, base, objective, out_dir))
}

/// `metalearn search --config FILE [--workers N] [--json]`.
/// The objective of the config's kind comes from `objectives`.
pub fn command(
    config: &Path,
    workers: Option<usize>,
    json: bool,
    objectives: &ObjectiveFactory,
) -> anyhow::Result<SearchReport> {
    let (mut cfg, base, objective, out_dir) = load(config, objectives)?;
    if let Some(w) = workers {
        cfg.workers = w;
    }
    let report = search(&cfg, &base, objective.as_ref(), &out_dir, !json)?;
    if crate::dist::is_root() {
        print_report(&report, json, || report.table(), &report.files)?;
    }
    Ok(report)
}

//! Transfer learning: pretrain a trunk on a source (a dataset, or some of its classes) or load
//! it from a checkpoint, then compare on a target with few labels, at the same budget
//! (`target.steps` Adam steps, same batch size and learning rate):
//! (a) training from scratch, (b) a linear probe on the frozen trunk, (c) fine-tuning
//! everything, (d) fine-tuning with the trunk frozen for the first `target.freeze_steps` steps.
//! Every (strategy, label budget) is run for every seed; the report gives the target test
//! accuracy as mean ± 1.96 sd / sqrt(n) over seeds, and the gain over scratch (paired by seed:
//! same labelled examples, same head initialisation). `metalearn transfer --config FILE`.
//!
//! Files in the output folder: `pretrained.safetensors` (the trunk, reused by later runs with
//! the same `[model]` and `[source]`), `runs.csv`, `summary.csv`, `report.json` and
//! `accuracy_vs_labels.svg`.
//!
//! The network ([`net::Net`]) is one of nn's backbones as the trunk with a linear head per side;
//! [`data`] loads the source and target sets. The pretraining is done once (with
//! `source.seed`, [`pretrain`]); the seeds vary the target side only. [`objective`] makes these
//! configs a search objective ([`Transfer`]).

pub mod config;
pub mod data;
pub mod error;
pub mod net;
pub mod objective;
pub mod pretrain;

pub use config::{Arch, ModelSpec, SourceSpec, Strategy, TargetSpec, TransferConfig};
pub use data::TrainTestSplit;
pub use error::{Result, TransferError};
pub use net::{fit, FitOptions, Net};
pub use objective::Transfer;

use crate::nn::Params;
use crate::run::diverge::first_non_finite;
use crate::run::progress::{bar_style, progress_bar};
use crate::run::report::print_report;
use crate::run::stats::{mean_ci95, MeanCi};
use crate::run::usage::Stopwatch;
use pretrain::{pretrained_trunk, Pretrained};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Metadata key of `pretrained.safetensors`: the `[model]` and `[source]` it was trained with.
pub const SOURCE_KEY: &str = "metalearn.transfer.source";

/// One target run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunResult {
    /// The strategy.
    pub strategy: Strategy,
    /// Labelled target examples.
    pub budget: usize,
    /// The seed.
    pub seed: u64,
    /// Target test accuracy.
    pub test_accuracy: f64,
    /// Accuracy on the validation split (when `target.val_size` > 0).
    pub val_accuracy: Option<f64>,
    /// Seconds of training.
    pub seconds: f64,
}

/// One (strategy, budget) cell of the report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SummaryRow {
    /// The strategy.
    pub strategy: Strategy,
    /// Labelled target examples.
    pub budget: usize,
    /// Test accuracy over seeds.
    pub accuracy: MeanCi,
    /// Test accuracy minus scratch's, paired by seed (when scratch is run).
    pub gain: Option<MeanCi>,
}

/// What [`run`] did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TransferReport {
    /// The config's name.
    pub name: String,
    /// The trunk.
    pub model: String,
    /// Where the trunk came from.
    pub source: String,
    /// Source test accuracy of the pretrained network (when pretrained in this run).
    pub source_test_accuracy: Option<f64>,
    /// Seconds of pretraining (0 when loaded).
    pub pretrain_seconds: f64,
    /// The target.
    pub target: String,
    /// Optimizer steps of every strategy.
    pub steps: usize,
    /// Frozen steps of `freeze_then_finetune`.
    pub freeze_steps: usize,
    /// Every run.
    pub runs: Vec<RunResult>,
    /// Mean ± CI per strategy and budget.
    pub summary: Vec<SummaryRow>,
    /// Seconds for everything.
    pub total_seconds: f64,
    /// Files written.
    pub files: Vec<PathBuf>,
}

impl TransferReport {
    /// The results table (accuracy in %, `mean ± ci95`, gain over scratch in points).
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} | trunk {} | source {}{} | target {}",
            self.name,
            self.model,
            self.source,
            self.source_test_accuracy
                .map(|a| format!(" (test acc {:.2}%)", 100.0 * a))
                .unwrap_or_default(),
            self.target
        );
        let seeds = self.summary.first().map_or(0, |r| r.accuracy.n);
        let _ = writeln!(
            s,
            "budget: {} Adam steps per strategy (freeze_then_finetune: {} frozen); {} seeds; mean ± 1.96 sd/sqrt(n)",
            self.steps, self.freeze_steps, seeds
        );
        let _ = writeln!(
            s,
            "{:<22} {:>7} {:>18} {:>20}",
            "strategy", "labels", "test accuracy %", "gain vs scratch"
        );
        for r in &self.summary {
            let gain = r.gain.as_ref().map_or("-".into(), |g| {
                let shown = g.show(100.0, 2);
                if g.mean >= 0.0 {
                    format!("+{shown}")
                } else {
                    shown
                }
            });
            let _ = writeln!(
                s,
                "{:<22} {:>7} {:>18} {:>20}",
                r.strategy.name(),
                r.budget,
                r.accuracy.show(100.0, 2),
                gain
            );
        }
        let _ = writeln!(
            s,
            "pretraining {:.1} s, total {:.1} s",
            self.pretrain_seconds, self.total_seconds
        );
        s
    }

    /// The mean validation accuracy over every run (`None` without a validation split): the
    /// score of a transfer config in `metalearn search`.
    pub fn mean_val_accuracy(&self) -> Option<f64> {
        let v: Vec<f64> = self.runs.iter().filter_map(|r| r.val_accuracy).collect();
        if v.is_empty() {
            None
        } else {
            Some(v.iter().sum::<f64>() / v.len() as f64)
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TransferError + '_ {
    move |source| TransferError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn rng_for(seed: u64, stream: u64) -> rand_chacha::ChaCha8Rng {
    let mut r = crate::data::seeded_rng(seed);
    r.set_stream(stream);
    r
}

/// The labelled subsets: per class a seeded shuffle of the pool, then classes taken in turn,
/// so every budget is class-balanced and a smaller budget is a subset of a larger one.
pub fn label_subset(
    pool: &[usize],
    labels: &[usize],
    classes: usize,
    budget: usize,
    seed: u64,
) -> Vec<usize> {
    use rand::seq::SliceRandom;
    let mut per: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for &i in pool {
        per[labels[i]].push(i);
    }
    let mut rng = rng_for(seed, 10);
    for p in &mut per {
        p.shuffle(&mut rng);
    }
    let mut out = Vec::with_capacity(budget);
    let mut round = 0;
    while out.len() < budget {
        let before = out.len();
        for p in &per {
            if out.len() == budget {
                break;
            }
            if let Some(&i) = p.get(round) {
                out.push(i);
            }
        }
        if out.len() == before {
            break;
        }
        round += 1;
    }
    out
}

/// Errors when a trained network's weights or its accuracy are not finite (`run` names the
/// training in the error).
fn check_finite(
    trunk: &Params,
    head: &Params,
    accuracy: f64,
    run: String,
    lr_key: &'static str,
) -> Result<()> {
    let bad = first_non_finite(trunk)
        .or_else(|| first_non_finite(head))
        .map(|b| format!("weight {b} after training"))
        .or_else(|| (!accuracy.is_finite()).then(|| format!("test accuracy = {accuracy}")));
    match bad {
        Some(what) => Err(TransferError::Diverged { run, what, lr_key }),
        None => Ok(()),
    }
}

/// The target's training examples, split: a fixed validation set (from `target.val_seed`),
/// disjoint from every label budget, and the pool the budgets are drawn from.
struct TargetSplit {
    val: Vec<usize>,
    pool: Vec<usize>,
}

impl TargetSplit {
    /// Splits `n` examples; errors when no pool is left or a budget exceeds it.
    fn new(cfg: &TransferConfig, n: usize) -> Result<TargetSplit> {
        let mut all: Vec<usize> = (0..n).collect();
        {
            use rand::seq::SliceRandom;
            all.shuffle(&mut rng_for(cfg.target.val_seed, 0));
        }
        if cfg.target.val_size >= all.len() {
            return Err(TransferError::value(
                "target.val_size",
                format!(
                    "= {} leaves no training pool ({} examples)",
                    cfg.target.val_size,
                    all.len()
                ),
            ));
        }
        let val: Vec<usize> = all[..cfg.target.val_size].to_vec();
        let mut pool: Vec<usize> = all[cfg.target.val_size..].to_vec();
        pool.sort_unstable();
        if let Some(&b) = cfg.budgets.iter().find(|&&b| b > pool.len()) {
            return Err(TransferError::value(
                "budgets",
                format!(
                    "contains {b}, more than the {} target training examples available",
                    pool.len()
                ),
            ));
        }
        Ok(TargetSplit { val, pool })
    }
}

/// What every target run of an experiment shares.
struct TargetRuns<'a> {
    cfg: &'a TransferConfig,
    net: &'a Net,
    target: &'a TrainTestSplit,
    split: &'a TargetSplit,
    /// The pretrained trunk (empty when only scratch runs).
    pretrained: &'a Params,
    /// The target's classes.
    classes: usize,
}

impl TargetRuns<'_> {
    /// Every (budget, seed, strategy), in parallel, with a progress bar when `progress`.
    fn run_all(&self, progress: bool) -> Result<Vec<RunResult>> {
        let cfg = self.cfg;
        let mut jobs = Vec::new();
        for &budget in &cfg.budgets {
            for &seed in &cfg.seeds {
                for &strategy in &cfg.strategies {
                    jobs.push((strategy, budget, seed));
                }
            }
        }
        let bar = progress_bar(
            progress,
            jobs.len() as u64,
            bar_style("target runs [{elapsed_precise} < {eta_precise}] {bar:30} {pos}/{len} {msg}"),
        );
        let mode = crate::autodiff::is_grad_enabled();
        // Under several ranks ([`crate::dist`]) each runs its block of the jobs; all gathered.
        let runs = jobs[crate::dist::my_block(jobs.len())]
            .par_iter()
            .map(|&(strategy, budget, seed)| {
                let _mode = crate::autodiff::set_grad_enabled(mode);
                let r = self.run(strategy, budget, seed)?;
                bar.inc(1);
                bar.set_message(format!("{} {budget} labels seed {seed}", strategy.name()));
                Ok(r)
            })
            .collect::<Result<Vec<RunResult>>>()
            .inspect_err(|_| bar.abandon())?;
        bar.finish_and_clear();
        if !crate::dist::is_distributed() {
            return Ok(runs);
        }
        let json: Vec<String> = runs
            .iter()
            .map(|r| serde_json::to_string(r).expect("serialisable"))
            .collect();
        Ok(crate::dist::gather_strings(&json)
            .iter()
            .map(|t| serde_json::from_str(t).expect("a run result that this program wrote"))
            .collect())
    }

    /// One target run: `strategy` trained on `budget` labelled examples drawn with `seed`,
    /// scored on the target test set (and the validation split).
    fn run(&self, strategy: Strategy, budget: usize, seed: u64) -> Result<RunResult> {
        let (cfg, net, train) = (self.cfg, self.net, &self.target.train);
        let clock = Stopwatch::start();
        let classes = self.classes;
        let labelled = label_subset(&self.split.pool, &train.labels, classes, budget, seed);
        let trunk = if strategy.pretrained() {
            self.pretrained.clone()
        } else {
            net.init_trunk(&mut rng_for(seed, 1))
        };
        let head = net.init_head(classes, &mut rng_for(seed, 2));
        let freeze_steps = match strategy {
            Strategy::Scratch | Strategy::Finetune => 0,
            Strategy::LinearProbe => cfg.target.steps,
            Strategy::FreezeThenFinetune => cfg.freeze_steps(),
        };
        let options = FitOptions {
            steps: cfg.target.steps,
            batch_size: cfg.target.batch_size,
            lr: cfg.target.lr,
            freeze_steps,
        };
        let mut rng = rng_for(seed, 3);
        let (trunk, head) = fit(net, trunk, head, train, &labelled, &options, &mut rng);
        let test_accuracy = net.accuracy(&trunk, &head, &self.target.test, None);
        let what = format!("strategy {}, budget {budget}, seed {seed}", strategy.name());
        check_finite(&trunk, &head, test_accuracy, what, "target.lr")?;
        let val = &self.split.val;
        let val_accuracy = (!val.is_empty()).then(|| net.accuracy(&trunk, &head, train, Some(val)));
        Ok(RunResult {
            strategy,
            budget,
            seed,
            test_accuracy,
            val_accuracy,
            seconds: clock.seconds(),
        })
    }
}

/// Runs a validated config; `progress` prints progress on stderr. The output folder is locked
/// for the whole run ([`crate::run::lock`]); a network whose weights or accuracy are not finite
/// stops the run with [`TransferError::Diverged`].
pub fn run(cfg: &TransferConfig, progress: bool) -> Result<TransferReport> {
    cfg.validate()?;
    let total = Stopwatch::start();
    let out_dir = cfg.out_dir();
    // Under several ranks ([`crate::dist`]) rank 0 alone locks and writes the folder and shows
    // progress; every rank pretrains (the same trunk) and runs its share of the target runs.
    let root = crate::dist::is_root();
    let progress = progress && root;
    let _lock = root
        .then(|| crate::run::RunLock::acquire(&out_dir))
        .transpose()?;
    let target = data::load(&cfg.target_sel(), "target")?;
    let shape = [
        target.train.channels,
        target.train.height,
        target.train.width,
    ];
    let net = Net::new(&cfg.model, shape)?;
    let split = TargetSplit::new(cfg, target.train.n)?;
    let pre = if cfg.strategies.iter().any(|s| s.pretrained()) {
        pretrained_trunk(cfg, &net, shape, &out_dir, progress)?
    } else {
        Pretrained {
            trunk: Params::new(),
            source: "none (scratch only)".to_string(),
            test_accuracy: None,
            seconds: 0.0,
        }
    };
    let runs = TargetRuns {
        cfg,
        net: &net,
        target: &target,
        split: &split,
        pretrained: &pre.trunk,
        classes: target.train.num_classes(),
    }
    .run_all(progress)?;
    let summary = summarize(&runs, &cfg.strategies, &cfg.budgets);
    let mut report = TransferReport {
        name: cfg.name.clone(),
        model: net.describe(),
        source: pre.source,
        source_test_accuracy: pre.test_accuracy,
        pretrain_seconds: pre.seconds,
        target: target.describe.clone(),
        steps: cfg.target.steps,
        freeze_steps: cfg.freeze_steps(),
        runs,
        summary,
        total_seconds: 0.0,
        files: Vec::new(),
    };
    report.total_seconds = total.seconds();
    if root {
        report.files = write_outputs(&report, &out_dir)?;
    }
    Ok(report)
}

/// Mean ± CI per (strategy, budget), and the paired gain over scratch.
pub fn summarize(
    runs: &[RunResult],
    strategies: &[Strategy],
    budgets: &[usize],
) -> Vec<SummaryRow> {
    let mut out = Vec::new();
    for &b in budgets {
        let scratch: BTreeMap<u64, f64> = runs
            .iter()
            .filter(|r| r.budget == b && r.strategy == Strategy::Scratch)
            .map(|r| (r.seed, r.test_accuracy))
            .collect();
        for &s in strategies {
            let rs: Vec<&RunResult> = runs
                .iter()
                .filter(|r| r.budget == b && r.strategy == s)
                .collect();
            let acc: Vec<f64> = rs.iter().map(|r| r.test_accuracy).collect();
            let gains: Vec<f64> = rs
                .iter()
                .filter_map(|r| scratch.get(&r.seed).map(|sc| r.test_accuracy - sc))
                .collect();
            out.push(SummaryRow {
                strategy: s,
                budget: b,
                accuracy: mean_ci95(&acc),
                gain: (s != Strategy::Scratch && !gains.is_empty()).then(|| mean_ci95(&gains)),
            });
        }
    }
    out
}

/// A CSV text: the `header` line, then `line(row)` for every row.
fn csv<R>(header: &str, rows: &[R], line: impl Fn(&R) -> String) -> String {
    let mut text = format!("{header}\n");
    for r in rows {
        let _ = writeln!(text, "{}", line(r));
    }
    text
}

/// `runs.csv`: one line per run (accuracies with 6 decimals, seconds with 3).
fn runs_csv(report: &TransferReport) -> String {
    let header = "strategy,budget,seed,test_accuracy,val_accuracy,seconds";
    csv(header, &report.runs, |r| {
        format!(
            "{},{},{},{:.6},{},{:.3}",
            r.strategy.name(),
            r.budget,
            r.seed,
            r.test_accuracy,
            r.val_accuracy.map_or(String::new(), |v| format!("{v:.6}")),
            r.seconds
        )
    })
}

/// `summary.csv`: one line per (strategy, budget), mean and CI, gain over scratch and its CI.
fn summary_csv(report: &TransferReport) -> String {
    let header = "strategy,budget,n,mean_accuracy,ci95,gain_vs_scratch,gain_ci95";
    let six = |x: Option<f64>| x.map_or(String::new(), |v| format!("{v:.6}"));
    csv(header, &report.summary, |r| {
        format!(
            "{},{},{},{:.6},{:.6},{},{}",
            r.strategy.name(),
            r.budget,
            r.accuracy.n,
            r.accuracy.mean,
            r.accuracy.ci95,
            six(r.gain.as_ref().map(|g| g.mean)),
            six(r.gain.as_ref().map(|g| g.ci95)),
        )
    })
}

/// The target test accuracy against log10(labels), one line per strategy.
fn accuracy_plot(report: &TransferReport) -> crate::run::plot::LinePlot {
    let mut plot = crate::run::plot::LinePlot::new(
        &format!("{}: target test accuracy vs labels", report.name),
        "labelled target examples (log10)",
        "test accuracy",
    );
    let mut strategies: Vec<Strategy> = report.summary.iter().map(|r| r.strategy).collect();
    strategies.dedup();
    strategies.sort();
    strategies.dedup();
    for s in strategies {
        let pts = report
            .summary
            .iter()
            .filter(|r| r.strategy == s)
            .map(|r| ((r.budget as f64).log10(), r.accuracy.mean))
            .collect();
        plot.series
            .push(crate::run::plot::Series::new(s.name(), pts));
    }
    plot
}

/// Writes `runs.csv`, `summary.csv`, `accuracy_vs_labels.svg` and `report.json` into `dir`;
/// returns their paths.
fn write_outputs(report: &TransferReport, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut files = Vec::new();
    let json = serde_json::to_string_pretty(report).expect("serialisable");
    for (name, text) in [
        ("runs.csv", runs_csv(report)),
        ("summary.csv", summary_csv(report)),
        ("accuracy_vs_labels.svg", accuracy_plot(report).to_svg()),
        ("report.json", json),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(io_err(&p))?;
        files.push(p);
    }
    Ok(files)
}

/// `metalearn transfer --config FILE [--json]`: runs the config, prints the table (or the
/// report as JSON) and the files written.
pub fn command(config: &Path, json: bool) -> anyhow::Result<TransferReport> {
    let cfg = TransferConfig::load(config)?;
    let report = run(&cfg, !json)?;
    if crate::dist::is_root() {
        print_report(&report, json, || report.table(), &report.files)?;
    }
    Ok(report)
}

//! Multi-task learning: shared-trunk networks with one head per task, loss weighting and
//! gradient aggregation methods, gradient diagnostics, and the `metalearn mtl` command.
//!
//! - [`model`]: layer stacks, task kinds (binary / multi-class / regression), hard parameter
//!   sharing ([`model::HardSharing`]); [`architectures`]: MMoE and cross-stitch networks;
//!   [`experts`]: MTAN, CGC / PLE and DSelect-k.
//! - [`multi_data`]: MultiMNIST, MultiFashion and Multi-(Fashion+MNIST) (Lin et al. 2019);
//!   [`benchmark`]: every method over several seeds, as a markdown table.
//! - [`weighting`]: the [`weighting::Weighting`] trait and the methods of [`METHODS`] (loss
//!   weightings, gradient manipulation, and TorchJD's Gramian weightings).
//! - [`train`]: the training loop (per-task gradients on the shared parameters through a
//!   retained graph when a method or the diagnostics need them), evaluation.
//! - [`diagnostics`]: loss / metric curves, gradient cosines, tables, SVG plots.
//! - [`config`]: the TOML config; [`run_from_config`] runs it with single-task baselines.
//! - [`objective`]: configs as a search objective ([`MultiTask`]).

pub mod architectures;
pub mod benchmark;
pub mod config;
pub mod diagnostics;
pub mod error;
pub mod experts;
pub mod model;
pub mod multi_data;
pub mod objective;
pub mod train;
pub mod weighting;

pub use config::{MtlConfig, MtlOverrides};
pub use error::{MtlError, Result};
pub use model::{HardSharing, LayerSpec, MultiTaskModel, OutputKind, Owner, TaskSpec, TaskTargets};
pub use objective::MultiTask;
pub use weighting::{Combined, StepInfo, Weighting, WeightingConfig, METHODS};

use crate::run::report::print_report;
use crate::run::usage::Stopwatch;
use diagnostics::History;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One task's results.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TaskResult {
    /// Task name.
    pub name: String,
    /// Task kind.
    pub kind: OutputKind,
    /// `accuracy` or `rmse`.
    pub metric: String,
    /// Test metric of the multi-task model.
    pub multi_task: f64,
    /// Test loss of the multi-task model.
    pub multi_task_loss: f64,
    /// Test metric of the single-task model (same trunk and budget), if trained.
    pub single_task: Option<f64>,
    /// Seconds of the single-task training.
    pub single_task_seconds: Option<f64>,
}

/// The result of [`run_from_config`].
#[derive(Clone, Debug, serde::Serialize)]
pub struct RunReport {
    /// The config's name.
    pub name: String,
    /// The weighting method.
    pub method: String,
    /// The architecture.
    pub architecture: String,
    /// The model, described.
    pub model: String,
    /// Epochs.
    pub epochs: usize,
    /// Training examples.
    pub train_examples: usize,
    /// Test examples.
    pub test_examples: usize,
    /// Per-task results.
    pub tasks: Vec<TaskResult>,
    /// Seconds spent in the multi-task model's training steps.
    pub train_seconds: f64,
    /// Multi-task training throughput (examples per second).
    pub samples_per_sec: f64,
    /// Seconds for the whole command (loading, training, evaluation, baselines).
    pub total_seconds: f64,
    /// rayon worker threads.
    pub threads: usize,
    /// Curves and gradient cosines of the multi-task run.
    pub history: History,
    /// Files written (history and plots).
    pub files: Vec<PathBuf>,
}

impl RunReport {
    /// The results table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} | method {} | {} | {} epochs | {} train / {} test examples",
            self.name,
            self.method,
            self.architecture,
            self.epochs,
            self.train_examples,
            self.test_examples
        );
        let _ = writeln!(
            s,
            "{:<12} {:<11} {:<9} {:>11} {:>12} {:>10}",
            "task", "kind", "metric", "multi-task", "single-task", "delta"
        );
        for t in &self.tasks {
            let st = t.single_task.map_or("-".to_string(), |v| format!("{v:.4}"));
            let d = t
                .single_task
                .map_or("-".to_string(), |v| format!("{:+.4}", t.multi_task - v));
            let _ = writeln!(
                s,
                "{:<12} {:<11} {:<9} {:>11.4} {:>12} {:>10}",
                t.name,
                format!("{:?}", t.kind).to_lowercase(),
                t.metric,
                t.multi_task,
                st,
                d
            );
        }
        let _ = writeln!(
            s,
            "multi-task training: {:.1} s ({:.0} samples/s, {} threads)",
            self.train_seconds, self.samples_per_sec, self.threads
        );
        for t in &self.tasks {
            if let Some(secs) = t.single_task_seconds {
                let _ = writeln!(s, "single-task {} training: {:.1} s", t.name, secs);
            }
        }
        let _ = writeln!(s, "total wall time: {:.1} s", self.total_seconds);
        s
    }
}

/// Reads a config, applies overrides, trains the multi-task model (and the single-task
/// baselines), prints progress to stderr and the results (a table, or JSON with `json`) to
/// stdout, and writes the history and plots to `diagnostics.out_dir`.
pub fn run_from_config(path: &Path, overrides: &MtlOverrides, json: bool) -> Result<RunReport> {
    let mut cfg = MtlConfig::from_file(path)?;
    cfg.apply(overrides)?;
    let report = run(&cfg, !json)?;
    let table = || format!("{}\n{}", report.history.table(), report.table());
    // Under several ranks ([`crate::dist`]) rank 0 alone prints.
    if crate::dist::is_root() {
        print_report(&report, json, table, &report.files).expect("serialisable");
    }
    Ok(report)
}

/// Trains one single-task model per task (same trunk, budget and options, equal weighting)
/// and records its test metric and training time in `tasks`.
fn single_task_baselines(
    cfg: &MtlConfig,
    specs: &[TaskSpec],
    (train_set, test_set): (&config::MtlData, &config::MtlData),
    opts: &train::TrainOptions,
    tasks: &mut [TaskResult],
) -> Result<()> {
    let shape = &train_set.example_shape;
    for (k, s) in specs.iter().enumerate() {
        let name = &s.name;
        let single = HardSharing::new(&cfg.model.trunk, shape, vec![s.clone()], cfg.model.fuse)
            .map_err(|e| MtlError::value("model.trunk", e.0))?;
        let mut eq = weighting::Equal::new(1);
        let o = train::TrainOptions {
            grad_every: 0,
            eval_every_epoch: false,
            label: format!("single {name} "),
            ..opts.clone()
        };
        let r = train::train(&single, &mut eq, train_set, test_set, &[k], &o)?;
        tasks[k].single_task = Some(r.test_metric[0]);
        tasks[k].single_task_seconds = Some(r.train_seconds);
    }
    Ok(())
}

/// Runs a validated config (see [`run_from_config`]); `progress` shows progress bars.
pub fn run(cfg: &MtlConfig, progress: bool) -> Result<RunReport> {
    let clock = Stopwatch::start();
    // One writer per output folder, held for the whole run (written only at its end).
    let out_dir = (!cfg.diagnostics.out_dir.is_empty())
        .then(|| PathBuf::from(&cfg.diagnostics.out_dir).join(cfg.weighting.method()));
    // Under several ranks ([`crate::dist`]) rank 0 alone locks, writes and shows progress; the
    // examples of every batch are split over the ranks (`train::train`).
    let root = crate::dist::is_root();
    if crate::dist::is_distributed() && cfg.train.gramian == train::GramianOn::Representation {
        return Err(MtlError::value(
            "train.gramian",
            "`representation` is not supported under several MPI ranks (each rank holds part \
             of the batch's representation); use `parameters`, or one process"
                .to_string(),
        ));
    }
    let progress = progress && root;
    let out_dir = out_dir.filter(|_| root);
    let _lock = out_dir
        .as_deref()
        .map(crate::run::RunLock::acquire)
        .transpose()?;
    let specs = config::task_specs(cfg)?;
    let (train_set, test_set) = config::load_data(cfg)?;
    let shape = train_set.example_shape.clone();
    let model = config::build_model(&cfg.model, &shape, specs.clone())?;
    let mut method = weighting::build(&cfg.weighting, specs.len())?;
    let opts = train::TrainOptions {
        progress,
        label: format!("{} ", cfg.weighting.method()),
        ..train::TrainOptions::from_config(cfg)
    };
    let all: Vec<usize> = (0..specs.len()).collect();
    let out = train::train(
        model.as_ref(),
        method.as_mut(),
        &train_set,
        &test_set,
        &all,
        &opts,
    )?;
    let mut tasks: Vec<TaskResult> = specs
        .iter()
        .enumerate()
        .map(|(k, s)| TaskResult {
            name: s.name.clone(),
            kind: s.kind,
            metric: model::metric_name(s.kind).into(),
            multi_task: out.test_metric[k],
            multi_task_loss: out.test_loss[k],
            single_task: None,
            single_task_seconds: None,
        })
        .collect();
    if cfg.baselines.single_task && specs.len() > 1 {
        single_task_baselines(cfg, &specs, (&train_set, &test_set), &opts, &mut tasks)?;
    }
    let mut files = Vec::new();
    if let Some(dir) = out_dir {
        files = out.history.write(&dir).map_err(|source| MtlError::Write {
            path: dir.clone(),
            source,
        })?;
    }
    Ok(RunReport {
        name: cfg.name.clone(),
        method: cfg.weighting.method().to_string(),
        architecture: cfg.model.architecture.clone(),
        model: model.describe(),
        epochs: cfg.train.epochs,
        train_examples: train_set.n,
        test_examples: test_set.n,
        tasks,
        train_seconds: out.train_seconds,
        samples_per_sec: out.samples_per_sec,
        total_seconds: clock.seconds(),
        threads: rayon::current_num_threads(),
        history: out.history,
        files,
    })
}

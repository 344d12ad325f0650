//! Benchmarks: every weighting method (and optionally other architectures, and single-task
//! models) trained over several seeds on one config, summarised as a markdown table of each
//! task's test metric, mean ± 95% confidence interval over the seeds.
//!
//! A config with a `[benchmark]` table (or `metalearn mtl --seeds ... / --methods ...`) runs
//! one training per (row, seed): a row is a weighting method on the config's architecture,
//! an architecture with equal weighting, or the single-task models (one hard-sharing network
//! per task, equal budget). Rows and seeds come from [`BenchmarkConfig`]; the config's own
//! `seed` and `weighting` are replaced per run. Data are loaded once.
//!
//! Each finished run is appended as one JSON line to `benchmark.jsonl` in
//! `diagnostics.out_dir`, with a fingerprint of the config; a stopped benchmark started again
//! skips the runs already there (a file written by another config is an error). The table is
//! printed and written to `benchmark.md` beside it.
//!
//! The interval is Student's: `t(0.975, n - 1) * s / sqrt(n)` with `s` the sample standard
//! deviation (`ddof = 1`) over the `n` seeds ([`student_ci95`]).

use super::config::{self, MtlConfig, MtlData, MtlOverrides};
use super::error::{MtlError, Result};
use super::model::{HardSharing, TaskSpec};
use super::train::{self, TrainOptions};
use super::weighting::{self, WeightingConfig, METHODS};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// `[benchmark]`: what a benchmark trains.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchmarkConfig {
    /// The seeds of initialisation and shuffling, one run per seed and row (default 0..5).
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// The weighting methods, on the config's architecture (empty: every one of
    /// [`METHODS`]).
    #[serde(default)]
    pub methods: Vec<String>,
    /// Architectures trained with equal weighting as extra rows (default: none).
    #[serde(default)]
    pub architectures: Vec<String>,
    /// Also train one single-task model per task (default: yes).
    #[serde(default = "yes")]
    pub single_task: bool,
}

fn default_seeds() -> Vec<u64> {
    (0..5).collect()
}
fn yes() -> bool {
    true
}

impl Default for BenchmarkConfig {
    fn default() -> Self {
        BenchmarkConfig {
            seeds: default_seeds(),
            methods: Vec::new(),
            architectures: Vec::new(),
            single_task: true,
        }
    }
}

impl BenchmarkConfig {
    /// Checks the seeds (at least one, no repeat), methods and architectures (known names;
    /// the error lists them), naming the key.
    pub fn validate(&self) -> Result<()> {
        if self.seeds.is_empty() {
            return Err(MtlError::value("benchmark.seeds", "no seed given"));
        }
        for (i, s) in self.seeds.iter().enumerate() {
            if self.seeds[..i].contains(s) {
                return Err(MtlError::value(
                    "benchmark.seeds",
                    format!("seed {s} given twice"),
                ));
            }
        }
        for m in &self.methods {
            if !METHODS.contains(&m.as_str()) {
                return Err(MtlError::value(
                    "benchmark.methods",
                    format!("unknown method {m:?} (known: {})", METHODS.join(", ")),
                ));
            }
        }
        let known = super::architectures::ARCHITECTURES;
        for a in &self.architectures {
            if !known.contains(&a.as_str()) {
                return Err(MtlError::value(
                    "benchmark.architectures",
                    format!("unknown architecture {a:?} (known: {})", known.join(", ")),
                ));
            }
        }
        Ok(())
    }

    /// The methods to run: the listed ones, else every one of [`METHODS`].
    pub fn method_names(&self) -> Vec<String> {
        if self.methods.is_empty() {
            METHODS.iter().map(|m| m.to_string()).collect()
        } else {
            self.methods.clone()
        }
    }
}

/// Command-line changes to a benchmark (`--seeds`, `--methods`).
#[derive(Clone, Debug, Default)]
pub struct BenchOverrides {
    /// Replaces `benchmark.seeds`.
    pub seeds: Option<Vec<u64>>,
    /// Replaces `benchmark.methods`.
    pub methods: Option<Vec<String>>,
}

impl BenchOverrides {
    /// Whether any override is given (then a config without `[benchmark]` runs as one).
    pub fn any(&self) -> bool {
        self.seeds.is_some() || self.methods.is_some()
    }
}

/// One finished run: a line of `benchmark.jsonl`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// The row: a method name, `arch:<architecture>` or `single-task`.
    pub row: String,
    /// The seed.
    pub seed: u64,
    /// The test metric of each task.
    pub metrics: Vec<f64>,
    /// Seconds of training steps (for single-task: all tasks' models together).
    pub train_seconds: f64,
    /// The fingerprint of the config ([`fingerprint`]).
    pub config: String,
}

/// Mean and Student-t 95% confidence half-width of a sample.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct SeedStats {
    /// The mean.
    pub mean: f64,
    /// `t(0.975, n - 1) * s / sqrt(n)` (0 for one value).
    pub ci95: f64,
    /// The number of values.
    pub n: usize,
}

/// Student's two-sided 95% quantile `t(0.975, df)` for `df` degrees of freedom (tabulated
/// for 1..=30, else 1.96).
pub fn t975(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    if (1..=30).contains(&df) {
        T[df - 1]
    } else {
        1.96
    }
}

/// The mean of `values` and its 95% interval `t(0.975, n - 1) * s / sqrt(n)`, `s` the sample
/// standard deviation (`ddof = 1`); a single value has half-width 0, none gives NaN.
pub fn student_ci95(values: &[f64]) -> SeedStats {
    let n = values.len();
    if n == 0 {
        return SeedStats {
            mean: f64::NAN,
            ci95: f64::NAN,
            n,
        };
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return SeedStats { mean, ci95: 0.0, n };
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    SeedStats {
        mean,
        ci95: t975(n - 1) * var.sqrt() / (n as f64).sqrt(),
        n,
    }
}

/// A 64-bit FNV-1a hash, in hex, of what in the config affects results: the data
/// (`dataset`, `path`, limits, `seed`), the model options (trunk, experts, `task_experts`,
/// `top_k`, `gamma`, `fuse`), the tasks and the `[train]` table; not its name, seed, weighting,
/// architecture, benchmark table or diagnostics. Options added to the config later do not change
/// it.
pub fn fingerprint(cfg: &MtlConfig) -> String {
    let (d, m, t) = (&cfg.data, &cfg.model, &cfg.train);
    let tasks: Vec<String> = (cfg.tasks.iter())
        .map(|k| {
            format!(
                "{}/{:?}/{}/{:?}/{:?}",
                k.name, k.kind, k.label, k.classes, k.hidden
            )
        })
        .collect();
    let text = format!(
        "{}|{:?}|{}|{}|{}|{:?}|{}|{}|{}|{}|{}|{:?}|{}|{}|{}|{}|{}",
        d.dataset,
        d.path,
        d.train_limit,
        d.test_limit,
        d.seed,
        m.trunk,
        m.experts,
        m.task_experts,
        m.top_k,
        m.gamma,
        m.fuse,
        tasks,
        t.epochs,
        t.batch_size,
        t.lr,
        t.optimizer,
        t.diverge_loss
    );
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Reads the records of `path` (none if it does not exist); a line that does not parse (a
/// run stopped mid-write) is skipped with a note; a record of another config is an error.
pub fn read_records(path: &Path, fingerprint: &str) -> Result<Vec<Record>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(MtlError::Write {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let mut out = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let Ok(r) = serde_json::from_str::<Record>(line) else {
            eprintln!(
                "{}: line {} is not a record; ignored",
                path.display(),
                i + 1
            );
            continue;
        };
        if r.config != fingerprint {
            return Err(MtlError::value(
                "diagnostics.out_dir",
                format!(
                    "{} holds results of another config (fingerprint {} here, {} in the file); \
                     remove it or choose another out_dir",
                    path.display(),
                    fingerprint,
                    r.config
                ),
            ));
        }
        out.push(r);
    }
    Ok(out)
}

/// The rows of a benchmark of `tasks` tasks, in table order (methods, `arch:<name>` rows,
/// `single-task`), and the methods left out: with `methods = []` (every method) those that
/// cannot run on `tasks` tasks (`trimmed_mean`, `krum` need 3 or more) are skipped; a listed
/// one is an error naming `benchmark.methods`.
pub fn rows(b: &BenchmarkConfig, tasks: usize) -> Result<(Vec<String>, Vec<String>)> {
    let (mut rows, mut skipped) = (Vec::new(), Vec::new());
    for m in b.method_names() {
        match weighting::build(&WeightingConfig::named(&m)?, tasks) {
            Ok(_) => rows.push(m),
            Err(e) if b.methods.is_empty() => skipped.push(format!("{m} ({e})")),
            Err(e) => return Err(MtlError::value("benchmark.methods", e.to_string())),
        }
    }
    rows.extend(b.architectures.iter().map(|a| format!("arch:{a}")));
    if b.single_task {
        rows.push("single-task".into());
    }
    Ok((rows, skipped))
}

/// Trains one (row, seed) of `cfg` on `data`: its task metrics and training seconds.
pub fn run_one(
    cfg: &MtlConfig,
    data: &(MtlData, MtlData),
    specs: &[TaskSpec],
    row: &str,
    seed: u64,
) -> Result<(Vec<f64>, f64)> {
    let mut c = cfg.clone();
    c.seed = seed;
    let opts = TrainOptions {
        grad_every: cfg.diagnostics.grad_every,
        ..TrainOptions::from_config(&c)
    };
    let shape = &data.0.example_shape;
    if row == "single-task" {
        let (mut metrics, mut secs) = (Vec::new(), 0.0);
        for (k, s) in specs.iter().enumerate() {
            let single = HardSharing::new(&c.model.trunk, shape, vec![s.clone()], c.model.fuse)
                .map_err(|e| MtlError::value("model.trunk", e.0))?;
            let mut eq = weighting::Equal::new(1);
            let o = TrainOptions {
                grad_every: 0,
                ..opts.clone()
            };
            let out = train::train(&single, &mut eq, &data.0, &data.1, &[k], &o)?;
            metrics.push(out.test_metric[0]);
            secs += out.train_seconds;
        }
        return Ok((metrics, secs));
    }
    if let Some(arch) = row.strip_prefix("arch:") {
        c.model.architecture = arch.to_string();
        c.weighting = WeightingConfig::Equal;
    } else {
        c.weighting = c.weighting.with_method(row)?;
    }
    let model = config::build_model(&c.model, shape, specs.to_vec())?;
    let mut method = weighting::build(&c.weighting, specs.len())?;
    let all: Vec<usize> = (0..specs.len()).collect();
    let out = train::train(
        model.as_ref(),
        method.as_mut(),
        &data.0,
        &data.1,
        &all,
        &opts,
    )?;
    Ok((out.test_metric, out.train_seconds))
}

/// A benchmark's summary: per row, each task's statistics and the mean training seconds.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Summary {
    /// The config's name.
    pub name: String,
    /// The task names.
    pub tasks: Vec<String>,
    /// `(row, per-task stats, mean training seconds per run)`, in table order.
    pub rows: Vec<(String, Vec<SeedStats>, f64)>,
    /// Where the records are (when the config has an output folder).
    pub records: Option<PathBuf>,
}

/// Summarises `records` over the rows of `rows` (rows without a record are left out).
pub fn summarise(name: &str, tasks: &[String], rows: &[String], records: &[Record]) -> Summary {
    let mut out = Vec::new();
    for row in rows {
        let rs: Vec<&Record> = records.iter().filter(|r| &r.row == row).collect();
        if rs.is_empty() {
            continue;
        }
        let stats = (0..tasks.len())
            .map(|k| student_ci95(&rs.iter().map(|r| r.metrics[k]).collect::<Vec<_>>()))
            .collect();
        let secs = rs.iter().map(|r| r.train_seconds).sum::<f64>() / rs.len() as f64;
        out.push((row.clone(), stats, secs));
    }
    Summary {
        name: name.to_string(),
        tasks: tasks.to_vec(),
        rows: out,
        records: None,
    }
}

impl Summary {
    /// The markdown table: a row per method, architecture and single-task; per task the test
    /// metric in percent (accuracy) as mean ± 95% CI, the number of seeds, and the mean
    /// training seconds of one run.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let head: Vec<String> = self.tasks.iter().map(|t| format!("{t} (%)")).collect();
        let _ = writeln!(
            s,
            "| method | {} | seeds | train s / run |",
            head.join(" | ")
        );
        let _ = writeln!(s, "|---|{}---:|---:|", "---:|".repeat(self.tasks.len()));
        for (row, stats, secs) in &self.rows {
            let cells: Vec<String> = stats
                .iter()
                .map(|st| format!("{:.2} ± {:.2}", 100.0 * st.mean, 100.0 * st.ci95))
                .collect();
            let label = match row.strip_prefix("arch:") {
                Some(a) => format!("{a} (equal)"),
                None => row.clone(),
            };
            let n = stats.first().map_or(0, |st| st.n);
            let _ = writeln!(s, "| {label} | {} | {n} | {secs:.1} |", cells.join(" | "));
        }
        s
    }
}

/// Appends `record` as one JSON line to `path`.
fn append(path: &Path, record: &Record) -> Result<()> {
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let line = serde_json::to_string(record).expect("a record serialises");
        f.write_all(format!("{line}\n").as_bytes())?;
        f.flush()
    };
    write().map_err(|source| MtlError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Runs the benchmark of `cfg` (its `[benchmark]` table, or the default one) and returns its
/// summary; `progress` prints a line per finished run to stderr.
pub fn run(cfg: &MtlConfig, progress: bool) -> Result<Summary> {
    let b = cfg.benchmark.clone().unwrap_or_default();
    b.validate()?;
    let out_dir =
        (!cfg.diagnostics.out_dir.is_empty()).then(|| PathBuf::from(&cfg.diagnostics.out_dir));
    let _lock = out_dir
        .as_deref()
        .map(crate::run::RunLock::acquire)
        .transpose()?;
    let fp = fingerprint(cfg);
    let file = out_dir.as_ref().map(|d| d.join("benchmark.jsonl"));
    let mut records = match &file {
        Some(f) => read_records(f, &fp)?,
        None => Vec::new(),
    };
    let done: HashSet<(String, u64)> = records.iter().map(|r| (r.row.clone(), r.seed)).collect();
    let specs = config::task_specs(cfg)?;
    let (rows, skipped) = rows(&b, specs.len())?;
    for m in &skipped {
        eprintln!("benchmark: skipped {m}");
    }
    let total = rows.len() * b.seeds.len();
    let todo: Vec<(u64, &String)> = (b.seeds.iter())
        .flat_map(|&s| rows.iter().map(move |r| (s, r)))
        .filter(|(s, r)| !done.contains(&((*r).clone(), *s)))
        .collect();
    if !todo.is_empty() {
        let data = config::load_data(cfg)?;
        for (i, (seed, row)) in todo.iter().enumerate() {
            let (metrics, secs) = run_one(cfg, &data, &specs, row, *seed)?;
            let record = Record {
                row: (*row).clone(),
                seed: *seed,
                metrics,
                train_seconds: secs,
                config: fp.clone(),
            };
            if let Some(f) = &file {
                append(f, &record)?;
            }
            if progress {
                let m: Vec<String> = record.metrics.iter().map(|v| format!("{v:.4}")).collect();
                let at = total - todo.len() + i + 1;
                eprintln!(
                    "[{at}/{total}] seed {seed} {row}: {} ({secs:.1} s)",
                    m.join(" ")
                );
            }
            records.push(record);
        }
    }
    let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    let mut summary = summarise(&cfg.name, &names, &rows, &records);
    if let Some(dir) = &out_dir {
        let md = dir.join("benchmark.md");
        std::fs::write(&md, summary.markdown())
            .map_err(|source| MtlError::Write { path: md, source })?;
        summary.records = file;
    }
    Ok(summary)
}

/// `metalearn mtl`: runs the config at `path` as a benchmark when it has a `[benchmark]`
/// table or `bench` overrides it (printing the markdown table, or JSON with `json`), else as
/// one run ([`super::run_from_config`]).
pub fn run_command(
    path: &Path,
    overrides: &MtlOverrides,
    bench: &BenchOverrides,
    json: bool,
) -> Result<()> {
    let mut cfg = MtlConfig::from_file(path)?;
    if cfg.benchmark.is_none() && !bench.any() {
        return super::run_from_config(path, overrides, json).map(|_| ());
    }
    cfg.apply(overrides)?;
    let mut b = cfg.benchmark.clone().unwrap_or_default();
    if let Some(s) = &bench.seeds {
        b.seeds = s.clone();
    }
    if let Some(m) = &bench.methods {
        b.methods = m.clone();
    }
    if let Some(m) = &overrides.method {
        b.methods = vec![m.clone()];
    }
    if overrides.no_baselines {
        b.single_task = false;
    }
    b.validate()?;
    cfg.benchmark = Some(b);
    let summary = run(&cfg, true)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&summary).expect("serialisable")
        );
    } else {
        println!("{}", summary.name);
        print!("{}", summary.markdown());
    }
    Ok(())
}

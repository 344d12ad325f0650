//! The second phase of a search: the trials, rung after rung, in parallel on `workers`
//! threads. Each finished trial is stored as `<out_dir>/trials/<key>.json` and `trials.csv` is
//! rewritten after it; trials found recorded (by a search that was stopped) are reused, not
//! run again. A rung scores each candidate by the mean over seeds and keeps the best `1/eta`.

use super::error::{Result, SearchError};
use super::plan::Plan;
use super::{io, keep_count, space, Rung, SearchConfig, TrialRecord};
use crate::run::report::csv_field;
use crate::run::usage::Stopwatch;
use crate::run::Objective;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use toml::Value;

/// One trial to run: a candidate at a seed, its config document and its key.
struct Job {
    candidate: usize,
    seed: Option<u64>,
    doc: Value,
    key: String,
}

/// The trials of one search: what runs them, and what they recorded.
pub struct Trials<'a> {
    plan: &'a Plan,
    objective: &'a dyn Objective,
    out_dir: &'a Path,
    trials_dir: PathBuf,
    csv_path: PathBuf,
    /// The run seeds of every candidate (`None`: the base's).
    seeds: Vec<Option<u64>>,
    pool: rayon::ThreadPool,
    progress: bool,
    /// Every trial on disk, by key.
    recorded: HashMap<String, TrialRecord>,
    /// This search's trials, in plan order (run or reused).
    log: Mutex<Vec<TrialRecord>>,
    ran: usize,
    reused: usize,
    /// Whether this process writes the records, the CSV and the progress lines (rank 0 of a
    /// distributed search, [`crate::dist`]).
    writer: bool,
}

/// What the trials of a search left: every record in plan order, how many ran and how many
/// were reused, and `trials.csv`.
pub struct TrialsDone {
    /// This search's trials, in plan order.
    pub records: Vec<TrialRecord>,
    /// Trials run by this process.
    pub ran: usize,
    /// Trials found recorded and skipped.
    pub reused: usize,
    /// `<out_dir>/trials.csv`.
    pub csv_path: PathBuf,
}

impl<'a> Trials<'a> {
    /// Opens `<out_dir>/trials` (reading the trials recorded there) and the worker pool; the
    /// caller holds the folder's lock.
    pub fn open(
        cfg: &SearchConfig,
        plan: &'a Plan,
        objective: &'a dyn Objective,
        out_dir: &'a Path,
        progress: bool,
    ) -> Result<Trials<'a>> {
        let trials_dir = out_dir.join("trials");
        let writer = crate::dist::is_root();
        let mut recorded = HashMap::new();
        if writer {
            std::fs::create_dir_all(&trials_dir).map_err(io(&trials_dir))?;
            recorded = read_recorded(&trials_dir)?;
        }
        // Every rank skips the same trials: rank 0's records.
        if crate::dist::is_distributed() {
            recorded = share_records(recorded.into_values().collect())?
                .into_iter()
                .map(|r| (r.key.clone(), r))
                .collect();
        }
        let seeds: Vec<Option<u64>> = if cfg.seeds.is_empty() {
            vec![None]
        } else {
            cfg.seeds.iter().map(|&s| Some(s)).collect()
        };
        let workers = if cfg.workers == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            cfg.workers
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .build()
            .map_err(|e| SearchError::value("workers", e.to_string()))?;
        Ok(Trials {
            plan,
            objective,
            out_dir,
            trials_dir,
            csv_path: out_dir.join("trials.csv"),
            seeds,
            pool,
            progress,
            recorded,
            log: Mutex::new(Vec::new()),
            ran: 0,
            reused: 0,
            writer,
        })
    }

    /// Runs every rung of the plan, each on the candidates the previous one kept.
    pub fn run_rungs(&mut self, eta: usize) -> Result<Vec<Rung>> {
        let plan = self.plan;
        let mut rungs = Vec::new();
        let mut alive: Vec<usize> = (0..plan.candidates.len()).collect();
        for (ri, &budget) in plan.budgets.iter().enumerate() {
            let rung = self.run_rung(ri, budget, &alive, eta)?;
            alive = rung.kept.clone();
            rungs.push(rung);
        }
        Ok(rungs)
    }

    /// The records, counts and CSV path, once every rung has run.
    pub fn finish(self) -> TrialsDone {
        TrialsDone {
            records: self.log.into_inner().expect("not poisoned"),
            ran: self.ran,
            reused: self.reused,
            csv_path: self.csv_path,
        }
    }

    /// Rung `rung` at `budget` on the candidates `alive`: runs the trials not recorded yet,
    /// scores each candidate (mean over seeds; failed if any seed failed) and keeps the best.
    fn run_rung(
        &mut self,
        rung: usize,
        budget: Option<usize>,
        alive: &[usize],
        eta: usize,
    ) -> Result<Rung> {
        let jobs = self.jobs(alive, budget)?;
        let todo: Vec<&Job> = jobs
            .iter()
            .filter(|j| !self.recorded.contains_key(&j.key))
            .collect();
        self.reused += jobs.len() - todo.len();
        self.ran += todo.len();
        {
            let mut log = self.log.lock().expect("not poisoned");
            log.extend(
                jobs.iter()
                    .filter_map(|j| self.recorded.get(&j.key).cloned()),
            );
        }
        // Under several ranks ([`crate::dist`]) each runs its block of the trials, alone.
        let block = crate::dist::my_block(todo.len());
        let mine: Vec<TrialRecord> = self.pool.install(|| {
            let mode = crate::autodiff::is_grad_enabled();
            todo[block]
                .par_iter()
                .map(|job| {
                    let _mode = crate::autodiff::set_grad_enabled(mode);
                    let rec = crate::dist::local(|| self.run_trial(rung, budget, job));
                    if !crate::dist::is_distributed() {
                        self.record(&rec)?;
                    }
                    Ok(rec)
                })
                .collect::<Result<_>>()
        })?;
        let fresh = if crate::dist::is_distributed() {
            let all = share_records(mine)?;
            all.iter().try_for_each(|r| self.record(r))?;
            all
        } else {
            mine
        };
        for r in fresh {
            self.recorded.insert(r.key.clone(), r);
        }
        if self.writer {
            self.write_csv(&self.log.lock().expect("not poisoned"))?;
        }
        let mut scores: Vec<(usize, Option<f64>)> = alive
            .iter()
            .map(|&c| (c, self.mean_score(&jobs, c)))
            .collect();
        rank(&mut scores, self.objective.maximize());
        let kept: Vec<usize> = scores
            .iter()
            .take(keep_count(scores.len(), eta))
            .map(|s| s.0)
            .collect();
        Ok(Rung {
            budget,
            scores,
            kept,
        })
    }

    /// The trials of a rung: every alive candidate at every seed.
    fn jobs(&self, alive: &[usize], budget: Option<usize>) -> Result<Vec<Job>> {
        let mut jobs = Vec::new();
        for &c in alive {
            let point = &self.plan.candidates[c];
            for &seed in &self.seeds {
                let doc = self.plan.doc_for(self.objective, point, budget, seed)?;
                let key = trial_key(&doc, point, budget, seed);
                jobs.push(Job {
                    candidate: c,
                    seed,
                    doc,
                    key,
                });
            }
        }
        Ok(jobs)
    }

    /// Candidate `c`'s mean score over its trials in `jobs` (`None` if one failed).
    fn mean_score(&self, jobs: &[Job], c: usize) -> Option<f64> {
        let s: Option<Vec<f64>> = jobs
            .iter()
            .filter(|j| j.candidate == c)
            .map(|j| self.recorded[&j.key].score)
            .collect();
        s.map(|v| v.iter().sum::<f64>() / v.len() as f64)
    }

    /// Runs one trial in `<out_dir>/runs/<key>`; a failed run is a record with its error.
    fn run_trial(&self, rung: usize, budget: Option<usize>, job: &Job) -> TrialRecord {
        let clock = Stopwatch::start();
        let run_dir = self.out_dir.join("runs").join(&job.key);
        let (score, error) = match self.objective.run(&job.doc, &run_dir) {
            Ok(s) if s.is_finite() => (Some(s), None),
            Ok(s) => (None, Some(format!("score {s}"))),
            Err(e) => (None, Some(e)),
        };
        TrialRecord {
            key: job.key.clone(),
            candidate: job.candidate,
            rung,
            budget,
            seed: job.seed,
            overrides: self.plan.candidates[job.candidate].clone(),
            score,
            error,
            seconds: clock.seconds(),
        }
    }

    /// Records a finished trial: the log and, when this process writes, its JSON file, the
    /// CSV and a line on stderr with progress.
    fn record(&self, rec: &TrialRecord) -> Result<()> {
        let mut log = self.log.lock().expect("not poisoned");
        log.push(rec.clone());
        if !self.writer {
            return Ok(());
        }
        let p = self.trials_dir.join(format!("{}.json", rec.key));
        std::fs::write(&p, serde_json::to_string_pretty(rec).expect("serialisable"))
            .map_err(io(&p))?;
        self.write_csv(&log)?;
        if self.progress {
            eprintln!("{}", self.trial_line(rec));
        }
        Ok(())
    }

    /// The progress line of a finished trial.
    fn trial_line(&self, rec: &TrialRecord) -> String {
        format!(
            "trial {} rung {} budget {} cand {} {}: {}",
            rec.key,
            rec.rung,
            rec.budget.map_or("base".into(), |b| b.to_string()),
            rec.candidate,
            serde_json::to_string(&rec.overrides).unwrap_or_default(),
            rec.score.map_or_else(
                || format!("failed: {}", rec.error.as_deref().unwrap_or("")),
                |s| format!("{} = {s:.5}", self.objective.metric())
            )
        )
    }

    /// Rewrites `trials.csv` with `records`: key, rung, candidate, budget, seed, one column
    /// per searched key, score, status and seconds.
    fn write_csv(&self, records: &[TrialRecord]) -> Result<()> {
        let keys = &self.plan.keys;
        let mut s = String::from("key,rung,candidate,budget,seed");
        for k in keys {
            s.push(',');
            s.push_str(&csv_field(k));
        }
        s.push_str(",score,status,seconds\n");
        for r in records {
            let _ = write!(
                s,
                "{},{},{},{},{}",
                r.key,
                r.rung,
                r.candidate,
                r.budget.map_or(String::new(), |b| b.to_string()),
                r.seed.map_or(String::new(), |b| b.to_string())
            );
            for k in keys {
                s.push(',');
                s.push_str(&csv_field(
                    &r.overrides.get(k).map_or(String::new(), space::show),
                ));
            }
            let _ = writeln!(
                s,
                ",{},{},{:.3}",
                r.score.map_or(String::new(), |v| format!("{v}")),
                csv_field(r.error.as_deref().map_or("ok", |e| e)),
                r.seconds
            );
        }
        std::fs::write(&self.csv_path, s).map_err(io(&self.csv_path))
    }
}

/// Every rank's `records`, in rank order, on every rank ([`crate::dist::gather_strings`]).
fn share_records(records: Vec<TrialRecord>) -> Result<Vec<TrialRecord>> {
    let json: Vec<String> = records
        .iter()
        .map(|r| serde_json::to_string(r).expect("serialisable"))
        .collect();
    crate::dist::gather_strings(&json)
        .iter()
        .map(|t| {
            serde_json::from_str(t)
                .map_err(|e| SearchError::value("trials", format!("a rank sent a bad record: {e}")))
        })
        .collect()
}

/// The trials recorded in `trials_dir` by key (unreadable files are skipped).
fn read_recorded(trials_dir: &Path) -> Result<HashMap<String, TrialRecord>> {
    let mut recorded = HashMap::new();
    for e in std::fs::read_dir(trials_dir)
        .map_err(io(trials_dir))?
        .flatten()
    {
        if e.path().extension().is_some_and(|x| x == "json") {
            if let Ok(r) = std::fs::read_to_string(e.path())
                .map_err(|_| ())
                .and_then(|t| serde_json::from_str::<TrialRecord>(&t).map_err(|_| ()))
            {
                recorded.insert(r.key.clone(), r);
            }
        }
    }
    Ok(recorded)
}

/// A trial's key: a hash of its document, candidate, budget and seed.
fn trial_key(
    doc: &Value,
    point: &BTreeMap<String, Value>,
    budget: Option<usize>,
    seed: Option<u64>,
) -> String {
    let text = serde_json::to_string(&(doc, point, budget, seed)).expect("serialisable");
    let h = Sha256::digest(text.as_bytes());
    h.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Sorts `(candidate, score)` best first (failed last; ties by candidate).
fn rank(scores: &mut [(usize, Option<f64>)], maximize: bool) {
    scores.sort_by(|a, b| match (a.1, b.1) {
        (Some(x), Some(y)) => {
            let o = x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal);
            (if maximize { o.reverse() } else { o }).then(a.0.cmp(&b.0))
        }
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.0.cmp(&b.0),
    });
}

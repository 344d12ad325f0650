//! `train`, `evaluate`, `mtl_train` and `transfer_run`: the commands, with the GIL released.
//!
//! A run goes on in a worker thread (inside a rayon pool of `threads` workers when given)
//! while the calling thread waits without the GIL and checks for signals every 100 ms: Ctrl-C
//! (`KeyboardInterrupt`) asks the few-shot loop to stop after its current iteration
//! ([`metalearn::run::interrupt`]), which writes `last.safetensors` first; the exception is
//! raised once the run has returned, so the checkpoints stay valid and `resume=True` continues.

use crate::config::{json_to_toml, RunConfig};
use crate::errors;
use metalearn::fewshot::tasks::{Split, TaskSource};
use metalearn::fewshot::{eval::score_tasks, load_learner, TrainOptions};
use metalearn::run::interrupt;
use metalearn::run::stats::mean_ci95;
use numpy::ndarray::Array1;
use numpy::IntoPyArray;
use pyo3::exceptions::{PyKeyboardInterrupt, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// Runs `f` on `threads` workers (the global pool when `None`).
fn in_pool<T: Send>(threads: Option<usize>, f: impl FnOnce() -> PyResult<T> + Send) -> PyResult<T> {
    match threads {
        None => f(),
        Some(n) if n == 0 || n > 4096 => Err(PyValueError::new_err(format!(
            "threads: {n} is out of range (1 to 4096, or None for all cores)"
        ))),
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| PyValueError::new_err(format!("threads: {e}")))?
            .install(f),
    }
}

/// Runs `f` in a worker thread without the GIL, checking for Ctrl-C meanwhile. Returns the
/// result and the `KeyboardInterrupt` caught, if any (the stop flag was then set).
fn interruptible<T: Send>(
    py: Python<'_>,
    threads: Option<usize>,
    f: impl FnOnce() -> PyResult<T> + Send,
) -> PyResult<(T, Option<PyErr>)> {
    interrupt::clear_stop();
    let (tx, rx) = mpsc::channel();
    let outcome = std::thread::scope(|s| {
        s.spawn(move || {
            let r = errors::catch(|| in_pool(threads, f));
            let _ = tx.send(r);
        });
        let mut caught = None;
        let mut rx = rx;
        loop {
            // The receiver moves into the GIL-free wait and back (it is not `Sync`).
            let (back, got) = py.detach(move || {
                let got = rx.recv_timeout(Duration::from_millis(100));
                (rx, got)
            });
            rx = back;
            match got {
                Ok(r) => return (r, caught),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Err(e) = py.check_signals() {
                        interrupt::request_stop();
                        caught.get_or_insert(e);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return (
                        Err(pyo3::exceptions::PyRuntimeError::new_err(
                            "metalearn: the worker thread ended without a result",
                        )),
                        caught,
                    )
                }
            }
        }
    });
    interrupt::clear_stop();
    let (r, caught) = outcome;
    Ok((r?, caught))
}

/// JSON text as Python objects (`json.loads`).
fn json_loads<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?.call_method1("loads", (text,))
}

/// Meta-trains a run config; returns `(report as JSON text, curve dict of numpy arrays)`.
#[pyfunction]
#[pyo3(signature = (config, out_dir=None, threads=None, progress=true, resume=false, overwrite=false, iterations=None))]
#[allow(clippy::too_many_arguments)]
pub fn train<'py>(
    py: Python<'py>,
    config: RunConfig,
    out_dir: Option<PathBuf>,
    threads: Option<usize>,
    progress: bool,
    resume: bool,
    overwrite: bool,
    iterations: Option<usize>,
) -> PyResult<(String, Bound<'py, PyDict>)> {
    let mut cfg = config.inner;
    if let Some(d) = out_dir {
        cfg.train.out_dir = d;
    }
    if let Some(n) = iterations {
        cfg.train.iterations = n;
    }
    let opts = TrainOptions {
        resume,
        overwrite,
        progress,
        stop_after: None,
    };
    let (report, caught) = interruptible(py, threads, move || {
        metalearn::fewshot::train(&cfg, &opts).map_err(errors::py)
    })?;
    if let Some(e) = caught {
        let msg = format!(
            "training interrupted after {} iterations; {} holds them (continue with resume=True)",
            report.iterations,
            report.last_checkpoint.display()
        );
        let err = PyKeyboardInterrupt::new_err(msg);
        err.set_cause(py, Some(e));
        return Err(err);
    }
    let curve = PyDict::new(py);
    let h = &report.history;
    let col = |f: &dyn Fn(&metalearn::fewshot::HistoryPoint) -> f64| {
        Array1::from_iter(h.iter().map(f)).into_pyarray(py)
    };
    curve.set_item("iteration", col(&|p| p.iteration as f64))?;
    curve.set_item("train_loss", col(&|p| p.train_loss))?;
    curve.set_item(
        "train_accuracy",
        col(&|p| p.train_accuracy.unwrap_or(f64::NAN)),
    )?;
    curve.set_item("val_loss", col(&|p| p.val_loss))?;
    curve.set_item("val_metric", col(&|p| p.val_metric))?;
    let json = serde_json::to_string(&report).map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok((json, curve))
}

/// The test protocol with per-episode scores: `(report dict, accuracies, losses)`.
#[pyfunction]
#[pyo3(signature = (checkpoint, config=None, episodes=None, seed=None, threads=None))]
pub fn evaluate<'py>(
    py: Python<'py>,
    checkpoint: PathBuf,
    config: Option<RunConfig>,
    episodes: Option<usize>,
    seed: Option<u64>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let path = checkpoint.clone();
    let ((report, metric, loss), caught) = interruptible(py, threads, move || {
        eval_scores(&path, config.map(|c| c.inner), episodes, seed)
    })?;
    if let Some(e) = caught {
        return Err(e);
    }
    let d = json_loads(py, &report)?.cast_into::<PyDict>()?;
    d.set_item("per_episode", Array1::from_vec(metric).into_pyarray(py))?;
    d.set_item("per_episode_loss", Array1::from_vec(loss).into_pyarray(py))?;
    Ok(d)
}

/// Loads the checkpoint, draws the test episodes of its config (or `config`) and scores each.
fn eval_scores(
    path: &Path,
    config: Option<metalearn::fewshot::RunConfig>,
    episodes: Option<usize>,
    seed: Option<u64>,
) -> PyResult<(String, Vec<f64>, Vec<f64>)> {
    let mut cfg = match config {
        Some(c) => c,
        None => load_learner(path, None).map_err(errors::py)?.config,
    };
    if let Some(n) = episodes {
        cfg.eval.episodes = n;
    }
    if let Some(s) = seed {
        cfg.eval.seed = s;
    }
    cfg.validate().map_err(errors::py)?;
    let run = load_learner(path, Some(&cfg)).map_err(errors::py)?;
    let source = TaskSource::load_as(&run.config, run.input).map_err(errors::py)?;
    let fixed = source
        .fixed(Split::Test, cfg.eval.episodes, cfg.eval.seed)
        .map_err(errors::py)?;
    let clock = std::time::Instant::now();
    let scores = score_tasks(run.learner.as_ref(), &source, &fixed).map_err(errors::py)?;
    let wall_s = clock.elapsed().as_secs_f64();
    let regression = cfg.data.is_regression();
    if let Some(reason) = metalearn::fewshot::eval::non_finite_score(&scores, regression) {
        return Err(PyValueError::new_err(format!(
            "{}: {reason}",
            path.display()
        )));
    }
    let metric: Vec<f64> = scores.iter().map(|s| s.metric).collect();
    let loss: Vec<f64> = scores.iter().map(|s| s.loss).collect();
    let score = mean_ci95(&metric);
    let n = scores.len().max(1) as f64;
    let report = serde_json::json!({
        "task": cfg.describe(),
        "algorithm": cfg.algorithm.name(),
        "metric": if regression { "mse" } else { "accuracy" },
        "seed": cfg.eval.seed,
        "episodes": scores.len(),
        "mean": score.mean,
        "ci95": score.ci95,
        "std": score.std,
        "error": (!regression).then_some(1.0 - score.mean),
        "mean_loss": loss.iter().sum::<f64>() / n,
        "wall_s": wall_s,
        "ms_per_episode": 1e3 * wall_s / n,
        "threads": rayon::current_num_threads(),
        "checkpoint": path,
    });
    Ok((report.to_string(), metric, loss))
}

/// TOML text of a config given as a path (`str`/`Path`) or as JSON text of a dict.
fn config_text(
    path: Option<PathBuf>,
    json: Option<String>,
    what: &str,
) -> PyResult<(String, PathBuf)> {
    match (path, json) {
        (Some(p), None) => {
            let text = metalearn::run::config_file::read_text(&p).map_err(errors::py)?;
            Ok((text, p))
        }
        (None, Some(j)) => Ok((json_to_toml(&j, what)?, PathBuf::from("<dict>"))),
        _ => Err(PyValueError::new_err(format!(
            "{what}: give a path or a dict"
        ))),
    }
}

/// Multi-task learning (`metalearn mtl`): the report as JSON text.
#[pyfunction]
#[pyo3(signature = (path=None, json=None, method=None, architecture=None, epochs=None, train_limit=None, baselines=true, out_dir=None, progress=false, threads=None))]
#[allow(clippy::too_many_arguments)]
pub fn mtl_train(
    py: Python<'_>,
    path: Option<PathBuf>,
    json: Option<String>,
    method: Option<String>,
    architecture: Option<String>,
    epochs: Option<usize>,
    train_limit: Option<usize>,
    baselines: bool,
    out_dir: Option<String>,
    progress: bool,
    threads: Option<usize>,
) -> PyResult<String> {
    let text = match (&path, json) {
        (Some(_), None) => None,
        (None, Some(j)) => Some(json_to_toml(&j, "mtl config")?),
        _ => return Err(PyValueError::new_err("mtl config: give a path or a dict")),
    };
    let overrides = metalearn::mtl::MtlOverrides {
        method,
        architecture,
        epochs,
        train_limit,
        no_baselines: !baselines,
        out_dir,
    };
    let (report, caught) = interruptible(py, threads, move || {
        let mut cfg = match (&path, &text) {
            (Some(p), _) => metalearn::mtl::MtlConfig::from_file(p),
            (None, t) => metalearn::mtl::MtlConfig::from_toml(t.as_deref().unwrap_or_default()),
        }
        .map_err(errors::py)?;
        cfg.apply(&overrides).map_err(errors::py)?;
        let r = metalearn::mtl::run(&cfg, progress).map_err(errors::py)?;
        serde_json::to_string(&r).map_err(|e| PyValueError::new_err(e.to_string()))
    })?;
    match caught {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// Transfer learning (`metalearn transfer`): the report as JSON text.
#[pyfunction]
#[pyo3(signature = (path=None, json=None, progress=false, threads=None))]
pub fn transfer_run(
    py: Python<'_>,
    path: Option<PathBuf>,
    json: Option<String>,
    progress: bool,
    threads: Option<usize>,
) -> PyResult<String> {
    let (text, origin) = config_text(path, json, "transfer config")?;
    let (report, caught) = interruptible(py, threads, move || {
        let cfg = metalearn::transfer::TransferConfig::from_toml_str(&text, &origin)
            .map_err(errors::py)?;
        let r = metalearn::transfer::run(&cfg, progress).map_err(errors::py)?;
        serde_json::to_string(&r).map_err(|e| PyValueError::new_err(e.to_string()))
    })?;
    match caught {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

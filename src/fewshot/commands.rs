//! The bodies of `metalearn train`, `metalearn eval` and `metalearn adapt` (argument parsing
//! is in [`crate::cli`]).

use super::{OutputFormat, RunConfig, TrainOptions};
use crate::run::report::print_report;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// `metalearn train --config FILE [--resume] [--overwrite] [--iterations N] [--out-dir DIR]
/// [--no-eval] [--json]`.
pub fn train_command(
    config: &Path,
    resume: bool,
    overwrite: bool,
    iterations: Option<usize>,
    out_dir: Option<PathBuf>,
    no_eval: bool,
    json: bool,
) -> Result<()> {
    let mut cfg = RunConfig::load(config)?;
    if let Some(n) = iterations {
        cfg.train.iterations = n;
    }
    if let Some(d) = out_dir {
        cfg.train.out_dir = d;
    }
    cfg.validate()?;
    let opts = TrainOptions {
        resume,
        overwrite,
        progress: !json,
        stop_after: None,
    };
    let report = super::train(&cfg, &opts)?;
    let table = || format!("{report}\nlearning curve: {}\n", report.curve.display());
    // Under several ranks ([`crate::dist`]) rank 0 alone prints.
    let root = crate::dist::is_root();
    if root {
        print_report(&report, json, table, &[])?;
    }
    if !no_eval {
        let ev = super::evaluate_checkpoint(&report.best_checkpoint, Some(&cfg))?;
        if root {
            print_report(&ev, json, || format!("{ev}\n"), &[])?;
        }
    }
    Ok(())
}

/// `metalearn eval --checkpoint CKPT [--config FILE] [--episodes N] [--seed S] [--json]`.
pub fn eval_command(
    checkpoint: &Path,
    config: Option<&Path>,
    episodes: Option<usize>,
    seed: Option<u64>,
    json: bool,
) -> Result<()> {
    let mut cfg = match config {
        Some(p) => RunConfig::load(p)?,
        None => {
            let meta = crate::nn::checkpoint::read_metadata(checkpoint)?;
            super::eval::stored_config(checkpoint, &meta)?
        }
    };
    if let Some(n) = episodes {
        cfg.eval.episodes = n;
    }
    if let Some(s) = seed {
        cfg.eval.seed = s;
    }
    cfg.validate()?;
    let report = super::evaluate_checkpoint(checkpoint, Some(&cfg))?;
    if crate::dist::is_root() {
        print_report(&report, json, || format!("{report}\n"), &[])?;
    }
    Ok(())
}

/// `metalearn adapt --checkpoint CKPT --support DIR_OR_CSV --query DIR_OR_CSV [--output FILE]
/// [--format csv|json]`.
pub fn adapt_command(
    checkpoint: &Path,
    support: &Path,
    query: &Path,
    output: Option<&Path>,
    format: Option<&str>,
) -> Result<()> {
    let format = match format.map(str::to_ascii_lowercase).as_deref() {
        Some("csv") => OutputFormat::Csv,
        Some("json") => OutputFormat::Json,
        Some(other) => bail!("adapt: unknown --format `{other}` (expected csv or json)"),
        None => match output.and_then(|p| p.extension()).and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("json") => OutputFormat::Json,
            _ => OutputFormat::Csv,
        },
    };
    let result = super::adapt(checkpoint, support, query)?;
    let text = result.render(format);
    match output {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?,
        None => print!("{text}"),
    }
    eprintln!(
        "adapt: {} support examples, {} queries, {:.2} ms to adapt and predict on {} thread(s){}",
        result.support_size,
        result.predictions.len(),
        result.adapt_ms,
        result.threads,
        match result.query_score {
            Some(s) if result.classes.is_empty() => format!(", query MSE {s:.4}"),
            Some(s) => format!(", query accuracy {:.2}%", 100.0 * s),
            None => String::new(),
        }
    );
    Ok(())
}

//! The latency of adapting a checkpoint to a support set and predicting queries, in Rust:
//! the Rust side of the README's "From Python" overhead figure (python/examples/bench_adapt.py
//! does the same work through `metalearn.load(...).adapt(x, y).predict_proba(q)`).
//!
//! Draws episode 0 of `EpisodeSet::fixed` (seed SEED) from an Omniglot npz file, as the Python
//! package's `metalearn.data.omniglot(...).episodes(...)` does, then times REPS calls of
//! [`ArraySupport::new`] + [`ArraySupport::outputs`] + [`softmax_rows`] (what one Python
//! `adapt(...).predict_proba(...)` call runs) after 3 warm-up calls, and prints the median and
//! the quartiles in milliseconds.
//!
//! Run: `cargo run --release --example adapt_latency -- CKPT NPZ [N K Q SEED REPS]`
//! (defaults 5 1 15 0 50).

use metalearn::data::{load_omniglot_npz, EpisodeSet, EpisodeSpec};
use metalearn::fewshot::arrays::{softmax_rows, ArraySupport, SupportLabels};
use metalearn::fewshot::load_learner;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

fn arg(args: &[String], i: usize, default: usize) -> Result<usize, String> {
    match args.get(i) {
        None => Ok(default),
        Some(s) => s.parse().map_err(|e| format!("argument {}: {e}", i + 1)),
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let ckpt = PathBuf::from(args.first().ok_or("missing CKPT")?);
    let npz = PathBuf::from(args.get(1).ok_or("missing NPZ")?);
    let (n, k, q) = (arg(args, 2, 5)?, arg(args, 3, 1)?, arg(args, 4, 15)?);
    let (seed, reps) = (arg(args, 5, 0)? as u64, arg(args, 6, 50)?.max(1));
    let run = load_learner(&ckpt, None).map_err(|e| e.to_string())?;
    let size = run.config.image_size().unwrap_or(28);
    let o = load_omniglot_npz(&npz, size).map_err(|e| e.to_string())?;
    let spec = EpisodeSpec::new(n, k, q).map_err(|e| e.to_string())?;
    let set = EpisodeSet::fixed(&o.images, spec, 1, seed).map_err(|e| e.to_string())?;
    let ep = set.episode(&o.images, 0).map_err(|e| e.to_string())?;
    let mut sshape = vec![ep.support_y.len()];
    sshape.extend(&ep.example_shape);
    let mut qshape = vec![ep.query_y.len()];
    qshape.extend(&ep.example_shape);
    let labels: Vec<i64> = ep.support_y.iter().map(|&y| y as i64).collect();
    let once = || -> Result<Vec<f64>, String> {
        let s = ArraySupport::new(
            &run,
            &ep.support_x,
            &sshape,
            SupportLabels::Classes(&labels),
        )
        .map_err(|e| e.to_string())?;
        let out = s
            .outputs(&run, &ep.query_x, &qshape)
            .map_err(|e| e.to_string())?;
        Ok(softmax_rows(&out))
    };
    for _ in 0..3 {
        once()?;
    }
    let mut ms = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        std::hint::black_box(once()?);
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    let at = |p: f64| ms[((ms.len() - 1) as f64 * p).round() as usize];
    println!(
        "rust adapt+predict_proba: {} ({n}-way {k}-shot, {} queries, {} threads): median {:.3} ms, quartiles {:.3} / {:.3} ms over {reps} calls",
        run.config.describe(),
        ep.query_y.len(),
        rayon::current_num_threads(),
        at(0.5),
        at(0.25),
        at(0.75)
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("adapt_latency: {e}");
            ExitCode::FAILURE
        }
    }
}

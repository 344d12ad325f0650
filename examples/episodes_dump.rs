//! The N-way K-shot episodes the crate's sampler draws from an Omniglot npz file, as JSON
//! lines: what the Python package's `metalearn.data.omniglot(path).episodes(...)` is checked
//! against (python/tests/test_episodes.py).
//!
//! Episode `i` is episode `i` of [`EpisodeSet::fixed`] over every class of the file (a
//! ChaCha8 generator seeded with `seed` on stream `i`). Each line holds the dataset classes,
//! the support and query example indices (class-major) and the sums of the support and query
//! pixels (in `f64`), so a caller can check the materialised arrays too.
//!
//! Run: `cargo run --release --example episodes_dump -- NPZ N K Q SEED COUNT [SIZE]`
//! (e.g. `../shared/data/omniglot/images_evaluation.npz 5 1 15 0 3`; SIZE default 28).

use metalearn::data::{load_omniglot_npz, EpisodeSet, EpisodeSpec};
use std::path::PathBuf;
use std::process::ExitCode;

fn parse(args: &[String], i: usize, name: &str) -> Result<usize, String> {
    args.get(i)
        .ok_or_else(|| format!("missing {name}"))?
        .parse()
        .map_err(|e| format!("{name}: {e}"))
}

fn run(args: &[String]) -> Result<(), String> {
    let npz = PathBuf::from(args.first().ok_or("missing NPZ")?);
    let spec = EpisodeSpec::new(
        parse(args, 1, "N")?,
        parse(args, 2, "K")?,
        parse(args, 3, "Q")?,
    )
    .map_err(|e| e.to_string())?;
    let seed = parse(args, 4, "SEED")? as u64;
    let count = parse(args, 5, "COUNT")?;
    let size = if args.len() > 6 {
        parse(args, 6, "SIZE")?
    } else {
        28
    };
    let o = load_omniglot_npz(&npz, size).map_err(|e| e.to_string())?;
    let set = EpisodeSet::fixed(&o.images, spec, count, seed).map_err(|e| e.to_string())?;
    for (i, idx) in set.episodes.iter().enumerate() {
        let ep = set.episode(&o.images, i).map_err(|e| e.to_string())?;
        let sum = |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>();
        let line = serde_json::json!({
            "classes": idx.classes,
            "support": idx.support,
            "query": idx.query,
            "support_sum": sum(&ep.support_x),
            "query_sum": sum(&ep.query_x),
        });
        println!("{line}");
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("episodes_dump: {e}");
            ExitCode::FAILURE
        }
    }
}

//! `metalearn bench`: the workloads of `shared/bench/peers` timed the same way as the PyTorch /
//! JAX scripts: untimed warm-up, then the median over timed iterations of exactly one training
//! step; data preparation happens before the timer. Peak RSS is the process's high-water mark.
//!
//! - [`fewshot`]: W1 (sinusoid MAML), W2 (Omniglot-shaped MAML / FOMAML), W3 (ProtoNet 60-way
//!   episode), W4 (miniImageNet-shaped MAML), and a ResNet-12 ProtoNet episode (`resnet12`),
//! - [`mtl`](mod@mtl): W5 (multi-task MNIST-shaped epoch), `mtlgram` (a Gramian-based MTL step
//!   on the LeNet against an equal-weighting step),
//! - [`adapt`]: W6 (a cold `metalearn adapt` process) and the files it adapts on,
//! - [`data`]: dataset load times and episode sampling cost.

pub mod adapt;
pub mod data;
pub mod fewshot;
pub mod mtl;

use crate::algorithms::maml::Order;
use crate::run::usage::{peak_rss_mib, Stopwatch};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

/// The parts `metalearn bench --only` accepts.
pub const PARTS: [&str; 11] = [
    "w1", "w2", "w2fo", "w3", "w4", "w5", "w6", "conv", "data", "resnet12", "mtlgram",
];

/// Timing statistics of one workload.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchResult {
    /// Workload name (`W1_sinusoid_maml`, ...).
    pub workload: String,
    /// Median milliseconds per iteration.
    pub median_ms: f64,
    /// 90th percentile milliseconds.
    pub p90_ms: f64,
    /// Timed iterations.
    pub iters: usize,
    /// Untimed warm-up iterations.
    pub warmup: usize,
    /// Peak resident memory of the process so far, MiB.
    pub peak_rss_mib: f64,
    /// Worker threads (rayon).
    pub threads: usize,
}

impl std::fmt::Display for BenchResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<22} median {:>10.3} ms  p90 {:>10.3} ms  ({} timed, {} warm-up, {} threads)  peak RSS {:.0} MiB",
            self.workload, self.median_ms, self.p90_ms, self.iters, self.warmup, self.threads, self.peak_rss_mib
        )
    }
}

impl BenchResult {
    /// The median and 90th percentile (nearest rank, `times[round((n - 1) q)]`) of per-iteration
    /// milliseconds, with the process's peak RSS and the current rayon thread count.
    pub fn from_times(workload: &str, mut times: Vec<f64>, warmup: usize) -> BenchResult {
        times.sort_by(|a, b| a.total_cmp(b));
        let pick = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        BenchResult {
            workload: workload.to_string(),
            median_ms: pick(0.5),
            p90_ms: pick(0.9),
            iters: times.len(),
            warmup,
            peak_rss_mib: peak_rss_mib(),
            threads: rayon::current_num_threads(),
        }
    }
}

/// Runs `step(0..warmup)` untimed, then times `step(warmup..warmup + iters)` one call each.
fn time_iterations(
    name: &str,
    warmup: usize,
    iters: usize,
    mut step: impl FnMut(usize),
) -> BenchResult {
    for i in 0..warmup {
        step(i);
    }
    let times: Vec<f64> = (0..iters)
        .map(|i| {
            let clock = Stopwatch::start();
            step(warmup + i);
            clock.millis()
        })
        .collect();
    BenchResult::from_times(name, times, warmup)
}

/// `metalearn bench`: runs the parts named in `only` (all when empty; see [`PARTS`]) and
/// prints one line per workload (JSON lines with `json`); `quick` runs fewer iterations.
/// `data` is the data folder of the `data` part (default [`crate::data::default_data_dir`]).
pub fn run(only: &[String], quick: bool, json: bool, data: Option<PathBuf>) -> Result<()> {
    for o in only {
        if !PARTS.contains(&o.as_str()) {
            bail!(
                "bench: unknown part '{o}' (expected one of {})",
                PARTS.join(", ")
            );
        }
    }
    let want = |p: &str| only.is_empty() || only.iter().any(|o| o == p);
    let show = |r: BenchResult| {
        if json {
            println!("{}", serde_json::to_string(&r).expect("serialisable"));
        } else {
            println!("{r}");
        }
    };
    // (warm-up, timed) iterations: the peers' counts, or fewer with --quick.
    let counts = |quick_counts: (usize, usize), full_counts: (usize, usize)| {
        if quick {
            quick_counts
        } else {
            full_counts
        }
    };
    if want("w1") {
        let (warmup, iters) = counts((5, 30), (20, 300));
        show(fewshot::bench_w1(warmup, iters));
    }
    for (part, order) in [("w2", Order::Second), ("w2fo", Order::First)] {
        if want(part) {
            let (warmup, iters) = counts((1, 2), (2, 10));
            show(fewshot::bench_w2(order, warmup, iters));
        }
    }
    if want("w3") {
        let (warmup, iters) = counts((1, 3), (3, 20));
        show(fewshot::bench_w3(warmup, iters));
    }
    if want("w4") {
        let (warmup, iters) = counts((1, 2), (1, 5));
        show(fewshot::bench_w4(warmup, iters));
    }
    if want("w5") {
        show(if quick {
            mtl::bench_w5_with(6400, 5).0
        } else {
            mtl::bench_w5()
        });
    }
    if want("mtlgram") {
        let (warmup, iters) = counts((2, 10), (5, 40));
        let batch = 256;
        let step_flop = 3.0 * mtl::LENET_FORWARD_FLOP * batch as f64;
        for (r, ratio) in mtl::bench_mtl_gramian(batch, warmup, iters) {
            if json {
                show(r);
            } else {
                println!("{r}  ratio to equal {ratio:.3}");
            }
        }
        if !json {
            println!(
                "  LeNet MTL step, batch {batch}: equal ~{:.2} GFLOP (forward + backward = 3 forwards); \
                 per-task gradients on the parameters add K-1 = 1 backward (~{:.2} GFLOP more); \
                 on the representation only the heads' backward passes",
                step_flop / 1e9,
                2.0 * mtl::LENET_FORWARD_FLOP * batch as f64 / 1e9
            );
        }
    }
    if want("w6") {
        let exe = std::env::current_exe().context("W6: locating the metalearn binary")?;
        let (warmup, iters) = counts((2, 5), (3, 30));
        show(adapt::bench_w6(&exe, warmup, iters)?);
    }
    if want("resnet12") {
        // About half a minute per step on 2 cores: few iterations.
        let (warmup, iters) = counts((1, 1), (1, 3));
        let (r, gflop) = fewshot::bench_resnet12(warmup, iters);
        let rate = gflop / (r.median_ms / 1e3);
        if json {
            show(r);
        } else {
            println!("{r}");
            println!("  ResNet-12 step: {gflop:.1} GFLOP (direct-convolution count), {rate:.1} GFLOP/s at the median");
        }
    }
    if want("conv") {
        println!("{}", crate::tensor::conv_bench_report());
    }
    if want("data") {
        let dir = data.unwrap_or_else(crate::data::default_data_dir);
        println!("{}", data::bench_data(&dir)?);
    }
    Ok(())
}

//! The `metalearn` command line (cargo feature `cli`, on by default): argument parsing and the
//! commands' top-level flow. Library errors come back typed; here they become messages and a
//! non-zero exit.
//!
//! - [`bench`](mod@bench): the benchmark workloads of `metalearn bench`,
//! - [`reference`](mod@reference): the PyTorch reference-vector verifier of `metalearn verify-reference`.

pub mod bench;
pub mod reference;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use reference::{verify_reference_dir, VerifyDtype};
use std::path::PathBuf;

/// The most worker threads `--threads` accepts.
pub const MAX_THREADS: usize = 4096;

/// metalearn: learning to learn (meta-learning, multi-task and transfer learning) in pure Rust.
#[derive(Parser, Debug)]
#[command(name = "metalearn", version, about)]
pub struct Cli {
    /// Worker threads, 1 to 4096 (default: all cores; under MPI, the cores of the node over
    /// the ranks on it).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Time the benchmark workloads (W1 sinusoid MAML, W2 Omniglot-shaped MAML / FOMAML,
    /// W3 ProtoNet 60-way episode, W4 miniImageNet-shaped MAML, W5 multi-task MNIST-shaped
    /// epoch, W6 cold `adapt` process, Conv-4 conv2d per-op costs, data loading and episode
    /// sampling).
    Bench {
        /// Which parts: any of w1, w2, w2fo, w3, w4, w5, w6, conv, data, resnet12 (comma-separated);
        /// default all.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Fewer iterations (numbers are then only indicative).
        #[arg(long)]
        quick: bool,
        /// Print results as JSON lines.
        #[arg(long)]
        json: bool,
        /// Data folder (default: $METALEARN_DATA or ../shared/data).
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Check the engine against a folder of PyTorch reference vectors.
    VerifyReference {
        /// The folder (laid out like shared/reference).
        dir: PathBuf,
        /// Run in float32 (tensor-wise tolerance 1e-4) instead of float64 (1e-8).
        #[arg(long)]
        f32: bool,
    },
    /// Multi-task learning: train a shared-trunk model from a TOML config (e.g.
    /// configs/mnist-multitask.toml), with single-task baselines; prints per-task test metrics.
    Mtl(MtlArgs),
    /// Meta-train a few-shot learner from a TOML run config (e.g. configs/fewshot/maml-omniglot-5w1s.toml):
    /// progress bar, periodic validation, best and last checkpoints and a learning curve in
    /// `train.out_dir`, then the test protocol on the best checkpoint.
    Train {
        /// The run config.
        #[arg(long)]
        config: PathBuf,
        /// Continue the run in `train.out_dir` from `last.safetensors` (or from
        /// `best.safetensors` when `last` is missing).
        #[arg(long)]
        resume: bool,
        /// Start over even if `train.out_dir` already holds a run (its checkpoints, history and
        /// curve are deleted first).
        #[arg(long, conflicts_with = "resume")]
        overwrite: bool,
        /// Override `train.iterations`.
        #[arg(long)]
        iterations: Option<usize>,
        /// Override `train.out_dir`.
        #[arg(long)]
        out_dir: Option<PathBuf>,
        /// Skip the final test evaluation.
        #[arg(long)]
        no_eval: bool,
        /// Print the reports as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Evaluate a checkpoint of `metalearn train` on fixed test episodes: mean accuracy (or MSE)
    /// ± 95% CI, wall time and peak memory.
    Eval {
        /// The checkpoint (e.g. runs/.../best.safetensors).
        #[arg(long)]
        checkpoint: PathBuf,
        /// A run config to use instead of the one stored in the checkpoint (same architecture;
        /// e.g. other N, K or `[eval]`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Override `eval.episodes`.
        #[arg(long)]
        episodes: Option<usize>,
        /// Override `eval.seed`.
        #[arg(long)]
        seed: Option<u64>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Adapt a checkpoint to a labelled support set and predict queries (CSV or JSON).
    Adapt {
        /// The checkpoint.
        #[arg(long)]
        checkpoint: PathBuf,
        /// Support set: a folder with one subfolder of PNGs per class, or a CSV (label last).
        #[arg(long)]
        support: PathBuf,
        /// Queries: a folder of PNGs, or a CSV of feature vectors.
        #[arg(long)]
        query: PathBuf,
        /// Write the predictions here instead of stdout.
        #[arg(long)]
        output: Option<PathBuf>,
        /// csv or json (default: from the output's extension, else csv).
        #[arg(long)]
        format: Option<String>,
    },
    /// Transfer learning: pretrain on a source (or load a trunk), then compare scratch, linear
    /// probe, fine-tuning and freeze-then-fine-tune on a target for several label budgets
    /// (e.g. configs/transfer/mnist-to-fashion.toml); mean ± 95% CI over seeds.
    Transfer {
        /// The transfer config.
        #[arg(long)]
        config: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Hyper-parameter search (grid, random, successive halving) over any key of a run,
    /// multi-task or transfer config (e.g. configs/search/maml-sinusoid.toml); resumable;
    /// writes trials.csv and best.toml.
    Search {
        /// The search config.
        #[arg(long)]
        config: PathBuf,
        /// Override `workers` (trials run in parallel).
        #[arg(long)]
        workers: Option<usize>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Inspect or fetch datasets.
    Data {
        /// `inspect` or `download`.
        #[command(subcommand)]
        command: DataCommand,
    },
}

/// The arguments of `metalearn mtl`.
#[derive(Args, Debug)]
pub struct MtlArgs {
    /// The config file.
    #[arg(long)]
    pub config: PathBuf,
    /// Print the results as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Override `weighting.method` (equal, upgrad, mgda, pcgrad, nash, ...: the 29 of README "MTL methods"; an unknown name lists them all).
    #[arg(long)]
    pub method: Option<String>,
    /// Override `model.architecture` (hard, mmoe, cross_stitch, mtan, cgc, ple, dselect_k).
    #[arg(long)]
    pub architecture: Option<String>,
    /// Override `train.epochs`.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Override `data.train_limit` (use only the first N training examples).
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Skip the single-task baselines.
    #[arg(long)]
    pub no_baselines: bool,
    /// Override `diagnostics.out_dir`.
    #[arg(long)]
    pub out_dir: Option<String>,
    /// Benchmark: override `benchmark.seeds` (comma-separated; runs a config without a
    /// `[benchmark]` table as one).
    #[arg(long, value_delimiter = ',')]
    pub seeds: Option<Vec<u64>>,
    /// Benchmark: override `benchmark.methods` (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub methods: Option<Vec<String>>,
}

/// `metalearn data ...`
#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Print what a dataset file or folder holds: format, counts, image size, checksum.
    Inspect {
        /// A dataset file or folder.
        path: PathBuf,
    },
    /// Fetch a dataset from its official location, verify its checksum and unpack it.
    Download {
        /// Dataset name (omniglot, mnist, fashion-mnist, digits).
        name: String,
        /// Destination folder (default: $METALEARN_DATA or ../shared/data).
        #[arg(long)]
        dest: Option<PathBuf>,
        /// Use already-downloaded files from this folder instead of the network.
        #[arg(long)]
        from: Option<PathBuf>,
    },
}

/// Parses the command line and runs the command.
pub fn run() -> Result<()> {
    let cli = Cli::parse();
    if let Some(n) = cli.threads {
        set_threads(n)?;
    }
    match cli.command {
        Command::Bench {
            only,
            quick,
            json,
            data,
        } => bench::run(&only, quick, json, data),
        Command::VerifyReference { dir, f32 } => verify_reference(&dir, f32),
        Command::Data { command } => data_command(command),
        Command::Transfer { config, json } => crate::transfer::command(&config, json).map(drop),
        Command::Search {
            config,
            workers,
            json,
        } => crate::search::command(&config, workers, json, &crate::objectives::for_kind).map(drop),
        Command::Train {
            config,
            resume,
            overwrite,
            iterations,
            out_dir,
            no_eval,
            json,
        } => crate::fewshot::commands::train_command(
            &config, resume, overwrite, iterations, out_dir, no_eval, json,
        ),
        Command::Eval {
            checkpoint,
            config,
            episodes,
            seed,
            json,
        } => crate::fewshot::commands::eval_command(
            &checkpoint,
            config.as_deref(),
            episodes,
            seed,
            json,
        ),
        Command::Adapt {
            checkpoint,
            support,
            query,
            output,
            format,
        } => crate::fewshot::commands::adapt_command(
            &checkpoint,
            &support,
            &query,
            output.as_deref(),
            format.as_deref(),
        ),
        Command::Mtl(args) => {
            let overrides = crate::mtl::MtlOverrides {
                method: args.method,
                architecture: args.architecture,
                epochs: args.epochs,
                train_limit: args.train_limit,
                no_baselines: args.no_baselines,
                out_dir: args.out_dir,
            };
            let bench = crate::mtl::benchmark::BenchOverrides {
                seeds: args.seeds,
                methods: args.methods,
            };
            crate::mtl::benchmark::run_command(&args.config, &overrides, &bench, args.json)?;
            Ok(())
        }
    }
}

/// Sets the number of worker threads of the global pool (`--threads`), in `[1, MAX_THREADS]`.
fn set_threads(n: usize) -> Result<()> {
    if !(1..=MAX_THREADS).contains(&n) {
        bail!(
            "--threads {n} is out of range: expected a number of worker threads in [1, {MAX_THREADS}] (omit --threads to use all cores)"
        );
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .context("setting the thread count")
}

fn verify_reference(dir: &std::path::Path, f32: bool) -> Result<()> {
    let dtype = if f32 {
        VerifyDtype::F32
    } else {
        VerifyDtype::F64
    };
    let report = verify_reference_dir(dir, dtype)?;
    println!("{report}");
    if !report.all_passed() {
        bail!("verify-reference: some tensors exceed the tolerance (see the table above)");
    }
    Ok(())
}

fn data_command(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Inspect { path } => {
            println!("{}", crate::data::inspect::inspect(&path)?);
            Ok(())
        }
        DataCommand::Download { name, dest, from } => {
            let dest = dest.unwrap_or_else(crate::data::default_data_dir);
            let report = crate::data::download::download(&name, &dest, from.as_deref())?;
            println!("{report}");
            Ok(())
        }
    }
}

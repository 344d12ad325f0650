//! The `metalearn` command line: argument parsing and the commands' top-level flow.
//! Library errors come back typed; here they become messages and a non-zero exit.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// metalearn: learning to learn (meta-learning, multi-task and transfer learning) in pure Rust.
#[derive(Parser, Debug)]
#[command(name = "metalearn", version, about)]
pub struct Cli {
    /// Worker threads (default: all cores).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Time the benchmark workloads (W1 sinusoid MAML, W2 Omniglot-shaped MAML / FOMAML,
    /// Conv-4 conv2d per-op costs, data loading and episode sampling).
    Bench {
        /// Which parts: any of w1, w2, w2fo, conv, data (comma-separated); default all.
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
    /// Inspect or fetch datasets.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
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
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .context("setting the thread count")?;
    }
    match cli.command {
        Command::Bench { only, quick, json, data } => bench(&only, quick, json, data),
        Command::VerifyReference { dir, f32 } => verify_reference(&dir, f32),
        Command::Data { command } => data_command(command),
    }
}

fn bench(only: &[String], quick: bool, json: bool, data: Option<PathBuf>) -> Result<()> {
    use crate::algorithms::maml::Order;
    let known = ["w1", "w2", "w2fo", "conv", "data"];
    for o in only {
        if !known.contains(&o.as_str()) {
            bail!("bench: unknown part '{o}' (expected one of {})", known.join(", "));
        }
    }
    let want = |p: &str| only.is_empty() || only.iter().any(|o| o == p);
    let show = |r: crate::bench::BenchResult| {
        if json {
            println!("{}", serde_json::to_string(&r).expect("serialisable"));
        } else {
            println!("{r}");
        }
    };
    if want("w1") {
        show(if quick { crate::bench::bench_w1(5, 30) } else { crate::bench::bench_w1(20, 300) });
    }
    if want("w2") {
        show(if quick { crate::bench::bench_w2(Order::Second, 1, 2) } else { crate::bench::bench_w2(Order::Second, 2, 10) });
    }
    if want("w2fo") {
        show(if quick { crate::bench::bench_w2(Order::First, 1, 2) } else { crate::bench::bench_w2(Order::First, 2, 10) });
    }
    if want("conv") {
        println!("{}", crate::tensor::conv_bench_report());
    }
    if want("data") {
        let dir = data.unwrap_or_else(crate::data::default_data_dir);
        println!("{}", crate::data::bench::bench_data(&dir)?);
    }
    Ok(())
}

fn verify_reference(dir: &std::path::Path, f32: bool) -> Result<()> {
    use crate::reference::{verify_reference_dir, VerifyDtype};
    let dtype = if f32 { VerifyDtype::F32 } else { VerifyDtype::F64 };
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

//! # metalearn
//!
//! Learning to learn in pure Rust: few-shot meta-learning (MAML, Reptile, ProtoNet, ...),
//! multi-task learning and transfer learning, on our own tensor engine with reverse-mode
//! automatic differentiation of any order.
//!
//! Start with [`prelude`] (`use metalearn::prelude::*;`) and ARCHITECTURE.md.
//!
//! Rooms, one per concept (data flows top to bottom, never back):
//! - [`tensor`]: storage, shapes and every op (forward kernel + backward rule),
//! - [`autodiff`]: the graph, [`autodiff::grad`], no-grad scopes, gradient checks,
//! - [`nn`]: networks as functions of their parameters ([`nn::Backbone`], [`nn::Network`]),
//!   one init, optimizers, checkpoints,
//! - [`data`]: datasets, episode samplers, task families,
//! - [`algorithms`]: the few-shot learners behind one trait,
//! - [`run`]: what the commands share: config files and their errors, statistics, SVG plots,
//!   memory and wall-time readings, progress bars and reports, divergence checks, the
//!   run-folder lock, and the [`run::Objective`] interface of a search,
//! - [`dist`]: runs split over several processes (MPI ranks, cargo feature `mpi`): the block
//!   split of tasks, episodes and trials, and the gathers that keep results equal to one process,
//! - the commands, peers side by side on [`run`] (none imports another): [`fewshot`]
//!   (`train`, `eval`, `adapt`), [`mtl`], [`transfer`], and [`search`], which drives the
//!   others through [`run::Objective`]; [`objectives`] picks the objective a search config
//!   names,
//! - [`cli`] (cargo feature `cli`, on by default; the library builds without it): the command
//!   line, with the benchmarks ([`cli::bench`](mod@cli::bench)) and the reference verifier
//!   ([`cli::reference`](mod@cli::reference)).
#![warn(missing_docs)]

pub mod algorithms;
mod alloc;
pub mod autodiff;
#[cfg(feature = "cli")]
pub mod cli;
pub mod data;
pub mod dist;
pub mod fewshot;
pub mod mtl;
pub mod nn;
pub mod objectives;
pub mod prelude;
pub mod run;
pub mod search;
pub mod tensor;
pub mod transfer;

pub use autodiff::{grad, grad_with, no_grad, GradOptions};
pub use tensor::{Device, Float, Tensor};

//! # metalearn
//!
//! Learning to learn in pure Rust: few-shot meta-learning (MAML, Reptile, ProtoNet, ...),
//! multi-task learning and transfer learning, on our own tensor engine with reverse-mode
//! automatic differentiation of any order.
//!
//! Rooms, one per concept (data flows top to bottom, never back):
//! - [`tensor`]: storage, shapes and every op (forward kernel + backward rule),
//! - [`autodiff`]: the graph, [`autodiff::grad`], no-grad scopes, gradient checks,
//! - [`nn`]: functional layers over parameter lists, optimizers, checkpoints,
//! - [`data`]: datasets, episode samplers, task families,
//! - [`runlock`]: one writer per run folder (the lock every writing command holds).

pub mod algorithms;
mod alloc;
pub mod autodiff;
pub mod bench;
pub mod cli;
pub mod data;
pub mod fewshot;
pub mod mtl;
pub mod nn;
pub mod reference;
pub mod runlock;
pub mod search;
pub mod tensor;
pub mod transfer;

pub use autodiff::{grad, grad_with, no_grad, GradOptions};
pub use tensor::{Device, Float, Tensor};

//! Functional neural networks: a model is a function of its parameters.
//!
//! A [`Params`] is an ordered, named list of tensors (PyTorch `state_dict` names). A [`Model`]
//! knows its architecture and maps `(params, input) -> output`; it holds no weights itself, so
//! MAML's fast weights are just another `Params` (as in JAX, or learn2learn's `clone`/`adapt`).

mod models;
mod params;

pub mod checkpoint;
pub mod optim;

pub use models::{linear_tasks, Conv4, Conv4Config, DownsampleKind, Mlp, Model};
pub use params::Params;

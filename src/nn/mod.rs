//! Functional neural networks: a model is a function of its parameters.
//!
//! A [`Params`] is an ordered, named list of tensors (PyTorch `state_dict` names). A [`Model`]
//! knows its architecture and maps `(params, input) -> output`; it holds no weights itself, so
//! MAML's fast weights are just another `Params` (as in JAX, or learn2learn's `clone`/`adapt`).
//! A [`Backbone`] is a feature extractor (Conv-4, ResNet-12, MLP, or the config's [`Body`]); a
//! [`Network`] puts an optional linear head on one. [`init`] draws every initial weight;
//! [`noise`] scopes the training randomness of stochastic layers (DropBlock).

mod backbone;
mod models;
mod network;
mod params;
mod resnet;

pub mod checkpoint;
pub mod init;
pub mod noise;
pub mod optim;

pub use backbone::{Backbone, Body};
pub use models::{linear_tasks, Conv4, Conv4Config, DownsampleKind, Mlp, Model};
pub use network::{LinearHead, Network};
pub use params::Params;
pub use resnet::{
    drop_block, DropBlockConfig, FeaturePooling, ResNet12, ResNet12Config, PARAMS_PER_BLOCK,
};

//! Feature extractors: the [`Backbone`] trait, implemented by Conv-4, ResNet-12 and the MLP,
//! and [`Body`], the built-in backbone a config names.

use super::{Conv4, Mlp, Model, Params, ResNet12};
use crate::tensor::{Float, Tensor};

/// A feature extractor as a function of its parameters: `embed(params, x) -> [N, d]` with
/// `d = feature_dim()`. Few-shot learners put a head on it ([`super::Network`]) or compare its
/// features (ProtoNet and the other metric methods).
///
/// The methods are generic in the element type, so one backbone serves `f32` training and
/// `f64` gradient checks. A backbone owns its description (`'static`), so learners built on it
/// can be boxed.
pub trait Backbone: Send + Sync + 'static {
    /// Fresh parameters, drawn from `rng` in a fixed order (so a seed gives the same
    /// initialisation every time).
    fn init_params<T: Float>(&self, rng: &mut dyn rand::RngCore) -> Params<T>;

    /// The features `[N, feature_dim]` of a batch `x`; `params` starts with this backbone's
    /// parameters (more may follow, e.g. a head's, and are ignored).
    fn embed<T: Float>(&self, params: &Params<T>, x: &Tensor<T>) -> Tensor<T>;

    /// [`Backbone::embed`] for a batch of tasks at once, where the backbone has such a form:
    /// every parameter stacked on a leading task axis (`[B, ...]`), `x` `[B, N, ...]`, result
    /// `[B, N, feature_dim]`. `None` (the default) when it has none.
    fn embed_tasks<T: Float>(&self, params: &Params<T>, x: &Tensor<T>) -> Option<Tensor<T>> {
        let _ = (params, x);
        None
    }

    /// The feature width `d`.
    fn feature_dim(&self) -> usize;

    /// The shape `[channels, height, width]` of the feature maps that [`Backbone::embed`]
    /// flattens (`d = channels * height * width`), or `None` (the default) when the features
    /// are not maps (an MLP, averaged pooling). A relation module convolves them.
    fn feature_map(&self) -> Option<[usize; 3]> {
        None
    }

    /// The number of parameter tensors [`Backbone::init_params`] returns.
    fn num_params(&self) -> usize;

    /// A one-line description for logs.
    fn description(&self) -> String;

    /// Whether the backbone has stochastic layers (DropBlock) that draw from the training
    /// noise of [`super::noise`] while meta-training; `false` (the default) for deterministic
    /// backbones, whose learners then draw no noise seed.
    fn uses_training_noise(&self) -> bool {
        false
    }
}

/// Conv-4 without its head (`config.head` is `None`): the flattened output of its blocks.
impl Backbone for Conv4 {
    fn init_params<T: Float>(&self, rng: &mut dyn rand::RngCore) -> Params<T> {
        Model::<T>::init(self, rng)
    }

    fn embed<T: Float>(&self, params: &Params<T>, x: &Tensor<T>) -> Tensor<T> {
        Conv4::embed(self, params, x)
    }

    fn feature_dim(&self) -> usize {
        self.embedding_dim()
    }

    fn feature_map(&self) -> Option<[usize; 3]> {
        let s = self.output_size();
        Some([self.config.filters, s, s])
    }

    fn num_params(&self) -> usize {
        4 * self.config.blocks
    }

    fn description(&self) -> String {
        Model::<f32>::describe(self)
    }
}

/// An MLP as a feature extractor: the ReLU of its last layer.
impl Backbone for Mlp {
    fn init_params<T: Float>(&self, rng: &mut dyn rand::RngCore) -> Params<T> {
        Model::<T>::init(self, rng)
    }

    fn embed<T: Float>(&self, params: &Params<T>, x: &Tensor<T>) -> Tensor<T> {
        self.forward(params, x).relu()
    }

    fn embed_tasks<T: Float>(&self, params: &Params<T>, x: &Tensor<T>) -> Option<Tensor<T>> {
        Some(self.forward_tasks(params, x)?.relu())
    }

    fn feature_dim(&self) -> usize {
        *self.sizes.last().expect("mlp sizes")
    }

    fn num_params(&self) -> usize {
        2 * (self.sizes.len() - 1)
    }

    fn description(&self) -> String {
        format!("mlp{:?}+relu", self.sizes)
    }
}

/// The built-in backbones, one of which a config names (`[backbone] name = "conv4"`,
/// `"resnet12"` or `"mlp"`): Conv-4 blocks (flattened output), ResNet-12 (flattened or
/// averaged output) or a ReLU MLP.
#[derive(Clone, Debug)]
pub enum Body {
    /// Conv-4 without head.
    Conv4(Conv4),
    /// ResNet-12 (Lee et al. 2019, MetaOptNet).
    ResNet12(ResNet12),
    /// MLP; the features are the ReLU of its last layer.
    Mlp(Mlp),
}

impl Backbone for Body {
    fn init_params<T: Float>(&self, rng: &mut dyn rand::RngCore) -> Params<T> {
        match self {
            Body::Conv4(c) => c.init_params(rng),
            Body::ResNet12(r) => r.init_params(rng),
            Body::Mlp(m) => m.init_params(rng),
        }
    }

    fn embed<T: Float>(&self, params: &Params<T>, x: &Tensor<T>) -> Tensor<T> {
        match self {
            Body::Conv4(c) => Backbone::embed(c, params, x),
            Body::ResNet12(r) => r.embed(params, x),
            Body::Mlp(m) => m.embed(params, x),
        }
    }

    fn embed_tasks<T: Float>(&self, params: &Params<T>, x: &Tensor<T>) -> Option<Tensor<T>> {
        match self {
            Body::Conv4(c) => c.embed_tasks(params, x),
            Body::ResNet12(r) => r.embed_tasks(params, x),
            Body::Mlp(m) => m.embed_tasks(params, x),
        }
    }

    fn feature_dim(&self) -> usize {
        match self {
            Body::Conv4(c) => c.feature_dim(),
            Body::ResNet12(r) => r.feature_dim(),
            Body::Mlp(m) => m.feature_dim(),
        }
    }

    fn feature_map(&self) -> Option<[usize; 3]> {
        match self {
            Body::Conv4(c) => c.feature_map(),
            Body::ResNet12(r) => r.feature_map(),
            Body::Mlp(m) => m.feature_map(),
        }
    }

    fn num_params(&self) -> usize {
        match self {
            Body::Conv4(c) => c.num_params(),
            Body::ResNet12(r) => r.num_params(),
            Body::Mlp(m) => m.num_params(),
        }
    }

    fn description(&self) -> String {
        match self {
            Body::Conv4(c) => c.description(),
            Body::ResNet12(r) => r.description(),
            Body::Mlp(m) => m.description(),
        }
    }

    fn uses_training_noise(&self) -> bool {
        match self {
            Body::ResNet12(r) => r.uses_training_noise(),
            Body::Conv4(_) | Body::Mlp(_) => false,
        }
    }
}

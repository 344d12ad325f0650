//! A backbone with an optional linear head, as a [`Model`].

use super::init::push_weight_and_bias;
use super::{linear_tasks, Backbone, Body, Model, Params};
use crate::tensor::{Float, Tensor};

/// A backbone followed by an optional linear head `head.weight [outputs, d]`,
/// `head.bias [outputs]`: `forward(x) = embed(x) W^T + b`, or the features themselves without
/// a head. Parameters: the backbone's, then the head's.
#[derive(Clone, Debug)]
pub struct Network<B = Body> {
    /// The feature extractor.
    pub backbone: B,
    /// The head's width (classes, or real targets); `None`: the network outputs the features.
    pub head: Option<usize>,
}

impl<B: Backbone> Network<B> {
    /// `backbone` with a linear head of `outputs` outputs.
    pub fn with_head(backbone: B, outputs: usize) -> Self {
        Network {
            backbone,
            head: Some(outputs),
        }
    }

    /// `backbone` alone: the network's output is its features.
    pub fn features_only(backbone: B) -> Self {
        Network {
            backbone,
            head: None,
        }
    }

    /// The index of `head.weight` in the parameters (the backbone's parameter count).
    pub fn head_index(&self) -> usize {
        self.backbone.num_params()
    }

    /// The head's parameters `[head.weight, head.bias]` of a network parameter list.
    pub fn head_params<T: Float>(&self, params: &Params<T>) -> Params<T> {
        let k = self.head_index();
        params.slice(k..k + 2)
    }
}

impl<T: Float, B: Backbone> Model<T> for Network<B> {
    /// The backbone's fresh parameters, then the head's (Kaiming uniform, as PyTorch's
    /// `nn.Linear`).
    fn init(&self, rng: &mut dyn rand::RngCore) -> Params<T> {
        let mut p = self.backbone.init_params(rng);
        if let Some(outputs) = self.head {
            let d = self.backbone.feature_dim();
            push_weight_and_bias(&mut p, "head.", &[outputs, d], rng);
        }
        p
    }

    fn forward(&self, params: &Params<T>, x: &Tensor<T>) -> Tensor<T> {
        let features = self.backbone.embed(params, x);
        match self.head {
            Some(_) => {
                let k = self.head_index();
                features.linear(params.at(k), Some(params.at(k + 1)))
            }
            None => features,
        }
    }

    fn describe(&self) -> String {
        match self.head {
            Some(outputs) => format!("{} -> linear({outputs})", self.backbone.description()),
            None => self.backbone.description(),
        }
    }

    fn forward_tasks(&self, params: &Params<T>, x: &Tensor<T>) -> Option<Tensor<T>> {
        let features = self.backbone.embed_tasks(params, x)?;
        Some(match self.head {
            Some(_) => {
                let k = self.head_index();
                linear_tasks(&features, params.at(k), params.at(k + 1))
            }
            None => features,
        })
    }
}

/// A linear layer as a model, `x W^T + b` with parameters `[weight [out, in], bias [out]]`:
/// the head alone, which ANIL adapts on fixed features. Its parameters come from elsewhere
/// (e.g. [`Network::head_params`]), so it has no initialisation of its own.
#[derive(Clone, Copy, Debug)]
pub struct LinearHead;

impl<T: Float> Model<T> for LinearHead {
    /// Panics: a `LinearHead` does not know its sizes; take the parameters from the network.
    fn init(&self, _rng: &mut dyn rand::RngCore) -> Params<T> {
        panic!("LinearHead::init: the head's parameters come from the learner")
    }

    fn forward(&self, params: &Params<T>, x: &Tensor<T>) -> Tensor<T> {
        x.linear(params.at(0), Some(params.at(1)))
    }

    fn describe(&self) -> String {
        "linear".into()
    }
}

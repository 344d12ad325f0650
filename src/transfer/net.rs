//! The network of a transfer experiment (nn's backbone as the trunk shared by source and
//! target, a linear head per task) and the training loop with an optionally frozen trunk.

use super::config::{Arch, ModelSpec};
use super::error::{Result, TransferError};
use crate::autodiff::{grad, no_grad};
use crate::data::ImageDataset;
use crate::nn::init::push_weight_and_bias_drawn_as;
use crate::nn::optim::{Adam, Optimizer};
use crate::nn::{
    Backbone, Body, Conv4, Conv4Config, DownsampleKind, LinearHead, Mlp, Model, Params,
};
use crate::tensor::Tensor;
use rand::seq::SliceRandom;
use rand::Rng;

/// The transfer network: one of nn's built-in backbones ([`Body`]: Conv-4 blocks, flattened, or
/// an MLP on the flattened image with a ReLU after its last layer) as the trunk shared by source
/// and target, and per task a linear head on the trunk's features ([`LinearHead`]):
/// `logits = features(x) W^T + b`. Trunk parameters are named `trunk.<layer>`, the head's
/// `head.weight` and `head.bias`; they are kept apart, as the trunk moves from the source to
/// the target and each side has its own head.
pub struct Net {
    backbone: Body,
    in_shape: [usize; 3],
}

impl Net {
    /// The network for `[channels, height, width]` images.
    pub fn new(spec: &ModelSpec, in_shape: [usize; 3]) -> Result<Net> {
        let [c, h, w] = in_shape;
        let backbone = match spec.arch {
            Arch::Mlp => {
                let mut sizes = vec![c * h * w];
                sizes.extend_from_slice(&spec.hidden);
                Body::Mlp(Mlp::new(&sizes))
            }
            Arch::Conv4 => {
                if h != w {
                    return Err(TransferError::value(
                        "model.arch",
                        format!("conv4 needs square images, got {h}x{w}"),
                    ));
                }
                Body::Conv4(Conv4::new(Conv4Config {
                    in_channels: c,
                    filters: spec.filters,
                    blocks: 4,
                    image_size: h,
                    head: None,
                    downsample: DownsampleKind::MaxPool,
                    downsample_blocks: None,
                }))
            }
        };
        Ok(Net { backbone, in_shape })
    }

    /// The trunk in words (the MLP's as `mlp[sizes]`, without its final ReLU, as the reports
    /// have always named it).
    pub fn describe(&self) -> String {
        match &self.backbone {
            Body::Mlp(m) => Model::<f32>::describe(m),
            conv => conv.description(),
        }
    }

    /// Fresh trunk parameters `trunk.*` (requiring gradients): the backbone's initialisation.
    pub fn init_trunk(&self, rng: &mut dyn rand::RngCore) -> Params<f32> {
        let p: Params<f32> = self.backbone.init_params(rng);
        p.prefixed("trunk.").requires_grad_()
    }

    /// A fresh `classes`-way linear head (requiring gradients): Kaiming uniform (PyTorch's
    /// default) with the values drawn as `f32`, as the transfer heads always were.
    pub fn init_head(&self, classes: usize, rng: &mut dyn rand::RngCore) -> Params<f32> {
        let mut p = Params::new();
        let shape = [classes, self.backbone.feature_dim()];
        push_weight_and_bias_drawn_as::<f32, f32>(&mut p, "head.", &shape, rng);
        p.requires_grad_()
    }

    /// The input batch of examples `idx`: `[n, c*h*w]` for the MLP, `[n, c, h, w]` for Conv-4.
    pub fn batch(&self, ds: &ImageDataset, idx: &[usize]) -> Tensor<f32> {
        let len = ds.image_len();
        let mut x = Vec::with_capacity(idx.len() * len);
        for &i in idx {
            x.extend_from_slice(ds.image(i));
        }
        let [c, h, w] = self.in_shape;
        match self.backbone {
            Body::Mlp(_) => Tensor::from_vec(x, &[idx.len(), c * h * w]),
            Body::Conv4(_) | Body::ResNet12(_) => Tensor::from_vec(x, &[idx.len(), c, h, w]),
        }
    }

    /// Trunk features `[n, feature_dim]` (the backbone's embedding).
    pub fn features(&self, trunk: &Params<f32>, x: &Tensor<f32>) -> Tensor<f32> {
        self.backbone.embed(trunk, x)
    }

    /// Class scores: the head on the trunk's features.
    pub fn logits(&self, trunk: &Params<f32>, head: &Params<f32>, x: &Tensor<f32>) -> Tensor<f32> {
        LinearHead.forward(head, &self.features(trunk, x))
    }

    /// Accuracy on `idx` of `ds` (all examples when `None`), in batches of 500, no graph.
    pub fn accuracy(
        &self,
        trunk: &Params<f32>,
        head: &Params<f32>,
        ds: &ImageDataset,
        idx: Option<&[usize]>,
    ) -> f64 {
        let all: Vec<usize>;
        let idx = match idx {
            Some(i) => i,
            None => {
                all = (0..ds.n).collect();
                &all
            }
        };
        if idx.is_empty() {
            return f64::NAN;
        }
        let correct: usize = no_grad(|| {
            idx.chunks(500)
                .map(|ch| {
                    let pred = self.logits(trunk, head, &self.batch(ds, ch)).argmax_axis(1);
                    pred.iter()
                        .zip(ch)
                        .filter(|(p, &i)| **p == ds.labels[i])
                        .count()
                })
                .sum()
        });
        correct as f64 / idx.len() as f64
    }
}

/// How [`fit`] trains.
#[derive(Clone, Debug)]
pub struct FitOptions {
    /// Optimizer steps.
    pub steps: usize,
    /// Examples per step (at most the number of examples).
    pub batch_size: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Steps during which only the head is trained (the trunk's forward pass records no
    /// graph); `steps` or more = a linear probe.
    pub freeze_steps: usize,
}

/// Trains trunk and head on the examples `idx` of `ds` with Adam (epochs of shuffled
/// batches drawn from `rng`). While frozen, only the head has an optimizer; once the trunk is
/// released, a fresh Adam over all parameters takes over.
pub fn fit(
    net: &Net,
    mut trunk: Params<f32>,
    mut head: Params<f32>,
    ds: &ImageDataset,
    idx: &[usize],
    o: &FitOptions,
    rng: &mut impl Rng,
) -> (Params<f32>, Params<f32>) {
    let bs = o.batch_size.min(idx.len()).max(1);
    let mut order = idx.to_vec();
    let mut pos = order.len();
    let mut head_opt = Adam::<f32>::new(o.lr);
    let mut all_opt = Adam::<f32>::new(o.lr);
    let k = trunk.len();
    for step in 0..o.steps {
        if pos + bs > order.len() {
            order.shuffle(rng);
            pos = 0;
        }
        let b = &order[pos..pos + bs];
        pos += bs;
        let x = net.batch(ds, b);
        let y: Vec<usize> = b.iter().map(|&i| ds.labels[i]).collect();
        if step < o.freeze_steps {
            let f = no_grad(|| net.features(&trunk, &x));
            let loss = LinearHead.forward(&head, &f).cross_entropy(&y);
            let g = grad(&[loss], head.tensors(), false);
            head = head_opt.step(&head, &g);
        } else {
            let all = trunk.concat(&head);
            let loss = net.logits(&trunk, &head, &x).cross_entropy(&y);
            let g = grad(&[loss], all.tensors(), false);
            (trunk, head) = all_opt.step(&all, &g).split_at(k);
        }
    }
    (trunk, head)
}

//! The standard few-shot backbones as functions of their parameters.

use super::init::push_weight_and_bias;
use super::Params;
use crate::tensor::{Float, Tensor};

/// A network architecture: initial parameters, and the output as a function of parameters.
pub trait Model<T: Float>: Send + Sync {
    /// Fresh parameters with PyTorch's default initialisation.
    fn init(&self, rng: &mut dyn rand::RngCore) -> Params<T>;

    /// The output for a batch `x` under parameters `params` (as listed by [`Model::init`]).
    fn forward(&self, params: &Params<T>, x: &Tensor<T>) -> Tensor<T>;

    /// A one-line description (for logs and checkpoints).
    fn describe(&self) -> String;

    /// The model on a batch of tasks at once, where it has such a form: `params` holds one
    /// parameter set per task, each tensor stacked on a new leading task axis (`[B, ...]`), and
    /// `x` is `[B, N, ...]`; the result is `[B, N, outputs]`, task `b`'s slice equal to
    /// `forward(params[b], x[b])`. `None` (the default) when the model has no batched form.
    /// MAML uses it to run a whole meta-batch as one graph of batched products.
    fn forward_tasks(&self, params: &Params<T>, x: &Tensor<T>) -> Option<Tensor<T>> {
        let _ = (params, x);
        None
    }
}

/// `x @ W^T + b` for a batch of tasks: `x [B, N, in]`, `w [B, out, in]`, `b [B, out]`.
pub fn linear_tasks<T: Float>(x: &Tensor<T>, w: &Tensor<T>, b: &Tensor<T>) -> Tensor<T> {
    x.matmul_nt(w).add(&b.unsqueeze(1))
}

/// A multi-layer perceptron `sizes[0] -> sizes[1] -> ... -> sizes[L]` with ReLU between layers
/// and a raw last layer. Parameters `l{i}.weight [out, in]`, `l{i}.bias [out]`.
#[derive(Clone, Debug)]
pub struct Mlp {
    /// Layer widths, input first.
    pub sizes: Vec<usize>,
}

impl Mlp {
    /// An MLP with the given widths, e.g. `[1, 40, 40, 1]` for the sinusoid benchmark.
    pub fn new(sizes: &[usize]) -> Self {
        assert!(
            sizes.len() >= 2,
            "Mlp::new: need at least input and output sizes, got {sizes:?}"
        );
        Mlp {
            sizes: sizes.to_vec(),
        }
    }
}

impl<T: Float> Model<T> for Mlp {
    fn init(&self, rng: &mut dyn rand::RngCore) -> Params<T> {
        let mut p = Params::new();
        for (i, w) in self.sizes.windows(2).enumerate() {
            push_weight_and_bias(&mut p, &format!("l{i}."), &[w[1], w[0]], rng);
        }
        p
    }

    fn forward(&self, params: &Params<T>, x: &Tensor<T>) -> Tensor<T> {
        let layers = self.sizes.len() - 1;
        let mut h = x.clone();
        for i in 0..layers {
            h = h.linear(params.at(2 * i), Some(params.at(2 * i + 1)));
            if i + 1 < layers {
                h = h.relu();
            }
        }
        h
    }

    fn describe(&self) -> String {
        format!("mlp{:?}", self.sizes)
    }

    fn forward_tasks(&self, params: &Params<T>, x: &Tensor<T>) -> Option<Tensor<T>> {
        let layers = self.sizes.len() - 1;
        let mut h = x.clone();
        for i in 0..layers {
            h = linear_tasks(&h, params.at(2 * i), params.at(2 * i + 1));
            if i + 1 < layers {
                h = h.relu();
            }
        }
        Some(h)
    }
}

/// How a Conv-4 block halves the resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DownsampleKind {
    /// conv stride 1, then max-pool 2x2 (Vinyals et al., Finn et al.)
    MaxPool,
    /// conv stride 2, no pooling (Finn et al.'s variant for MiniImagenet-free runs)
    Strided,
}

/// The shape of a [`Conv4`] network.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Conv4Config {
    /// Input channels (1 for Omniglot).
    pub in_channels: usize,
    /// Filters per block (64 in the papers).
    pub filters: usize,
    /// Number of blocks (4).
    pub blocks: usize,
    /// Input height and width (28 for Omniglot).
    pub image_size: usize,
    /// Output classes of a linear head; `None` for an embedding network (ProtoNet).
    pub head: Option<usize>,
    /// Pooling or strided convolutions.
    pub downsample: DownsampleKind,
    /// How many of the blocks, counted from the first, downsample; the rest keep the side
    /// (Sung et al.'s Relation Networks: 2 of 4, so a relation module sees 7x7 maps of a
    /// 28x28 input). `None`: every block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downsample_blocks: Option<usize>,
}

impl Conv4Config {
    /// How many blocks downsample: `downsample_blocks`, at most `blocks` (all when unset).
    pub fn downsampling_blocks(&self) -> usize {
        self.downsample_blocks
            .unwrap_or(self.blocks)
            .min(self.blocks)
    }
}

/// Conv-4 (Vinyals et al. 2016): `blocks` x [conv 3x3 pad 1 -> batch norm (batch statistics)
/// -> ReLU -> downsample 2], flatten, then an optional linear head. Blocks after the first
/// `downsample_blocks` keep the side (conv 3x3 stride 1 pad 1 -> batch norm -> ReLU).
/// Parameters `b{i}.conv.weight`, `b{i}.conv.bias`, `b{i}.bn.weight`, `b{i}.bn.bias`,
/// `head.weight`, `head.bias` (the names of the reference vectors).
#[derive(Clone, Debug)]
pub struct Conv4 {
    /// The architecture.
    pub config: Conv4Config,
}

impl Conv4 {
    /// A Conv-4 network.
    pub fn new(config: Conv4Config) -> Self {
        Conv4 { config }
    }

    /// Spatial size after all blocks (28 -> 14 -> 7 -> 3 -> 1 with max-pool, floor mode).
    pub fn output_size(&self) -> usize {
        let mut s = self.config.image_size;
        for _ in 0..self.config.downsampling_blocks() {
            s = match self.config.downsample {
                DownsampleKind::MaxPool => s / 2,
                DownsampleKind::Strided => (s + 2 - 3) / 2 + 1,
            };
        }
        s
    }

    /// The length of the flattened embedding.
    pub fn embedding_dim(&self) -> usize {
        let s = self.output_size();
        self.config.filters * s * s
    }

    /// The embedding before the head: `[N, embedding_dim]`.
    pub fn embed<T: Float>(&self, params: &Params<T>, x: &Tensor<T>) -> Tensor<T> {
        let mut h = x.clone();
        let stride = match self.config.downsample {
            DownsampleKind::MaxPool => 1,
            DownsampleKind::Strided => 2,
        };
        for b in 0..self.config.blocks {
            let k = 4 * b;
            let (gamma, beta) = (params.at(k + 2), params.at(k + 3));
            if b >= self.config.downsampling_blocks() {
                h = h.conv2d(params.at(k), Some(params.at(k + 1)), 1, 1);
                h = h.batch_norm(gamma, beta, 1e-5).relu();
                continue;
            }
            h = h.conv2d(params.at(k), Some(params.at(k + 1)), stride, 1);
            h = match self.config.downsample {
                DownsampleKind::MaxPool => h.batch_norm_relu_max_pool2(gamma, beta, 1e-5),
                DownsampleKind::Strided => h.batch_norm(gamma, beta, 1e-5).relu(),
            };
        }
        h.flatten_from1()
    }
}

impl<T: Float> Model<T> for Conv4 {
    fn init(&self, rng: &mut dyn rand::RngCore) -> Params<T> {
        let c = &self.config;
        let mut p = Params::new();
        let mut cin = c.in_channels;
        for b in 0..c.blocks {
            let conv = format!("b{b}.conv.");
            push_weight_and_bias(&mut p, &conv, &[c.filters, cin, 3, 3], rng);
            p.push(format!("b{b}.bn.weight"), Tensor::ones(&[c.filters]));
            p.push(format!("b{b}.bn.bias"), Tensor::zeros(&[c.filters]));
            cin = c.filters;
        }
        if let Some(classes) = c.head {
            push_weight_and_bias(&mut p, "head.", &[classes, self.embedding_dim()], rng);
        }
        p
    }

    fn forward(&self, params: &Params<T>, x: &Tensor<T>) -> Tensor<T> {
        let z = self.embed(params, x);
        match self.config.head {
            Some(_) => {
                let k = 4 * self.config.blocks;
                z.linear(params.at(k), Some(params.at(k + 1)))
            }
            None => z,
        }
    }

    fn describe(&self) -> String {
        let c = &self.config;
        let partial = match c.downsample_blocks {
            Some(d) if d < c.blocks => format!(" in the first {d} blocks"),
            _ => String::new(),
        };
        format!(
            "conv4(in={}, filters={}, blocks={}, size={}, head={:?}, {:?}{partial})",
            c.in_channels, c.filters, c.blocks, c.image_size, c.head, c.downsample
        )
    }
}

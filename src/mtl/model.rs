//! Multi-task models: layer stacks built from the crate's ops, task heads, and hard parameter
//! sharing (one trunk, one head per task). MMoE and cross-stitch networks are in
//! [`crate::mtl::architectures`].
//!
//! Models are functional like [`crate::nn::Model`]: they hold the architecture, parameters live
//! in a [`Params`] list, and each parameter has an [`Owner`] (shared, or one task's).

use crate::nn::Params;
use crate::tensor::{Float, Tensor};
use rand::Rng;

/// One layer of a trunk or head, as written in a config (`{ type = "conv", out = 16, ... }`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerSpec {
    /// 2-D convolution (input channels inferred).
    Conv {
        /// Output channels.
        out: usize,
        /// Square kernel size.
        kernel: usize,
        /// Zero padding on each side.
        #[serde(default)]
        padding: usize,
        /// Stride.
        #[serde(default = "one")]
        stride: usize,
    },
    /// ReLU.
    Relu,
    /// Logistic sigmoid.
    Sigmoid,
    /// tanh.
    Tanh,
    /// Max pooling over `kernel x kernel` windows every `kernel` pixels.
    MaxPool {
        /// Window size (= stride).
        kernel: usize,
    },
    /// Flatten everything but the batch dimension.
    Flatten,
    /// Fully connected layer (input width inferred).
    Linear {
        /// Output width.
        out: usize,
    },
}

fn one() -> usize {
    1
}

#[derive(Clone, Debug)]
enum Block {
    Conv { stride: usize, pad: usize },
    ConvReluPool { pad: usize, pool: usize },
    Relu,
    Sigmoid,
    Tanh,
    MaxPool(usize),
    Flatten,
    Linear,
}

impl Block {
    fn params(&self) -> usize {
        match self {
            Block::Conv { .. } | Block::ConvReluPool { .. } | Block::Linear => 2,
            _ => 0,
        }
    }
    fn is_block_end(&self) -> bool {
        matches!(
            self,
            Block::ConvReluPool { .. }
                | Block::Relu
                | Block::Sigmoid
                | Block::Tanh
                | Block::MaxPool(_)
        )
    }
}

/// A sequence of layers with inferred shapes: the building block of trunks, experts, columns
/// and heads. A conv (stride 1) followed by ReLU and max-pool runs as one fused op when `fuse`.
#[derive(Clone, Debug)]
pub struct Stack {
    blocks: Vec<Block>,
    /// Parameter shapes, in order (`weight`, `bias` per conv / linear layer).
    shapes: Vec<(String, Vec<usize>, usize)>,
    in_shape: Vec<usize>,
    out_shape: Vec<usize>,
}

/// Why a stack of layers cannot be built on an input shape.
#[derive(Debug, Clone)]
pub struct ShapeError(pub String);

impl Stack {
    /// Builds `layers` on inputs of shape `in_shape` (one example, e.g. `[1, 28, 28]`).
    pub fn new(layers: &[LayerSpec], in_shape: &[usize], fuse: bool) -> Result<Stack, ShapeError> {
        let mut shape = in_shape.to_vec();
        let mut blocks = Vec::new();
        let mut shapes = Vec::new();
        let mut i = 0;
        while i < layers.len() {
            let l = &layers[i];
            match l {
                LayerSpec::Conv {
                    out,
                    kernel,
                    padding,
                    stride,
                } => {
                    if shape.len() != 3 {
                        return Err(ShapeError(format!(
                            "layer {i} (conv) needs [C, H, W] input, got {shape:?}"
                        )));
                    }
                    let (c, h, w) = (shape[0], shape[1], shape[2]);
                    if *kernel == 0
                        || *stride == 0
                        || h + 2 * padding < *kernel
                        || w + 2 * padding < *kernel
                        || *out == 0
                    {
                        return Err(ShapeError(format!("layer {i} (conv {kernel}x{kernel}, padding {padding}, stride {stride}) does not fit input {shape:?}")));
                    }
                    let ho = (h + 2 * padding - kernel) / stride + 1;
                    let wo = (w + 2 * padding - kernel) / stride + 1;
                    shapes.push((
                        format!("{i}.weight"),
                        vec![*out, c, *kernel, *kernel],
                        c * kernel * kernel,
                    ));
                    shapes.push((format!("{i}.bias"), vec![*out], c * kernel * kernel));
                    let fusable = fuse
                        && *stride == 1
                        && matches!(layers.get(i + 1), Some(LayerSpec::Relu))
                        && matches!(layers.get(i + 2), Some(LayerSpec::MaxPool { kernel: k }) if *k >= 1 && *k <= ho && *k <= wo);
                    if fusable {
                        let Some(LayerSpec::MaxPool { kernel: k }) = layers.get(i + 2) else {
                            unreachable!()
                        };
                        blocks.push(Block::ConvReluPool {
                            pad: *padding,
                            pool: *k,
                        });
                        shape = vec![*out, ho / k, wo / k];
                        i += 3;
                        continue;
                    }
                    blocks.push(Block::Conv {
                        stride: *stride,
                        pad: *padding,
                    });
                    shape = vec![*out, ho, wo];
                }
                LayerSpec::Relu => blocks.push(Block::Relu),
                LayerSpec::Sigmoid => blocks.push(Block::Sigmoid),
                LayerSpec::Tanh => blocks.push(Block::Tanh),
                LayerSpec::MaxPool { kernel } => {
                    if shape.len() != 3 || *kernel == 0 || shape[1] < *kernel || shape[2] < *kernel
                    {
                        return Err(ShapeError(format!(
                            "layer {i} (max_pool {kernel}) does not fit input {shape:?}"
                        )));
                    }
                    blocks.push(Block::MaxPool(*kernel));
                    shape = vec![shape[0], shape[1] / kernel, shape[2] / kernel];
                }
                LayerSpec::Flatten => {
                    blocks.push(Block::Flatten);
                    shape = vec![shape.iter().product()];
                }
                LayerSpec::Linear { out } => {
                    if shape.len() != 1 {
                        return Err(ShapeError(format!("layer {i} (linear) needs a flat input, got {shape:?} (add a flatten layer)")));
                    }
                    if *out == 0 {
                        return Err(ShapeError(format!("layer {i} (linear) has out = 0")));
                    }
                    shapes.push((format!("{i}.weight"), vec![*out, shape[0]], shape[0]));
                    shapes.push((format!("{i}.bias"), vec![*out], shape[0]));
                    blocks.push(Block::Linear);
                    shape = vec![*out];
                }
            }
            i += 1;
        }
        Ok(Stack {
            blocks,
            shapes,
            in_shape: in_shape.to_vec(),
            out_shape: shape,
        })
    }

    /// The shape of one example's output.
    pub fn out_shape(&self) -> &[usize] {
        &self.out_shape
    }

    /// The shape of one example's input.
    pub fn in_shape(&self) -> &[usize] {
        &self.in_shape
    }

    /// The number of parameter tensors.
    pub fn num_params(&self) -> usize {
        self.shapes.len()
    }

    /// Appends fresh parameters (PyTorch's default uniform init) named `{prefix}.{layer}.weight`.
    pub fn init<T: Float>(&self, prefix: &str, rng: &mut dyn rand::RngCore, out: &mut Params<T>) {
        for (name, shape, fan_in) in &self.shapes {
            let bound = 1.0 / (*fan_in as f64).sqrt();
            let n: usize = shape.iter().product();
            let data = (0..n)
                .map(|_| T::of(rng.gen_range(-bound..bound)))
                .collect();
            out.push(format!("{prefix}.{name}"), Tensor::from_vec(data, shape));
        }
    }

    /// The output for a batch, with this stack's parameters `p` (in [`Stack::init`] order).
    pub fn forward<T: Float>(&self, p: &[Tensor<T>], x: &Tensor<T>) -> Tensor<T> {
        self.run_blocks(0..self.blocks.len(), 0, p, x)
    }

    fn run_blocks<T: Float>(
        &self,
        blocks: std::ops::Range<usize>,
        mut k: usize,
        p: &[Tensor<T>],
        x: &Tensor<T>,
    ) -> Tensor<T> {
        let mut h = x.clone();
        for b in &self.blocks[blocks] {
            h = match b {
                Block::Conv { stride, pad } => h.conv2d(&p[k], Some(&p[k + 1]), *stride, *pad),
                Block::ConvReluPool { pad, pool } => {
                    h.conv2d_relu_max_pool(&p[k], &p[k + 1], *pad, *pool)
                }
                Block::Relu => h.relu(),
                Block::Sigmoid => h.sigmoid(),
                Block::Tanh => h.tanh(),
                Block::MaxPool(kk) => h.max_pool2d(*kk, *kk),
                Block::Flatten => h.flatten_from1(),
                Block::Linear => h.linear(&p[k], Some(&p[k + 1])),
            };
            k += b.params();
        }
        h
    }

    /// The stack cut after each stage end (an activation or pooling not followed by another
    /// one): the points where cross-stitch units mix columns. A trailing segment with no stage
    /// end is included; an empty one is not.
    pub fn segments(&self) -> Vec<Segment<'_>> {
        let mut out = Vec::new();
        let (mut start, mut k) = (0, 0);
        let mut k0 = 0;
        for bi in 0..self.blocks.len() {
            k += self.blocks[bi].params();
            if self.is_stage_end(bi) {
                out.push(Segment {
                    stack: self,
                    blocks: start..bi + 1,
                    param_start: k0,
                });
                start = bi + 1;
                k0 = k;
            }
        }
        if start < self.blocks.len() {
            out.push(Segment {
                stack: self,
                blocks: start..self.blocks.len(),
                param_start: k0,
            });
        }
        out
    }

    /// Whether block `bi` ends a stage (see [`Stack::segments`]).
    pub fn is_stage_end(&self, bi: usize) -> bool {
        self.blocks[bi].is_block_end()
            && !matches!(
                self.blocks.get(bi + 1),
                Some(Block::Relu | Block::MaxPool(_) | Block::Sigmoid | Block::Tanh)
            )
    }

    /// The number of stage ends.
    pub fn stage_ends(&self) -> usize {
        (0..self.blocks.len())
            .filter(|&b| self.is_stage_end(b))
            .count()
    }
}

/// A contiguous run of a [`Stack`]'s blocks (see [`Stack::segments`]).
#[derive(Clone, Debug)]
pub struct Segment<'a> {
    stack: &'a Stack,
    blocks: std::ops::Range<usize>,
    param_start: usize,
}

impl Segment<'_> {
    /// Runs the segment; `p` holds the whole stack's parameters.
    pub fn run<T: Float>(&self, p: &[Tensor<T>], x: &Tensor<T>) -> Tensor<T> {
        self.stack
            .run_blocks(self.blocks.clone(), self.param_start, p, x)
    }
}

/// What kind of prediction a task makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// One logit, sigmoid + binary cross-entropy; metric: accuracy.
    Binary,
    /// Logits over classes, softmax + cross-entropy; metric: accuracy.
    Multiclass,
    /// Real values, mean squared error; metric: RMSE.
    Regression,
}

/// A task as the model sees it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TaskSpec {
    /// Its name (`digit`, `mod3`, ...).
    pub name: String,
    /// Binary, multi-class or regression.
    pub kind: TaskKind,
    /// Output width: classes (multi-class), 1 (binary), target dimension (regression).
    pub outputs: usize,
    /// Hidden widths of the head (ReLU between), before the output layer.
    pub hidden: Vec<usize>,
}

/// The targets of one task for a set of examples.
#[derive(Clone, Debug, PartialEq)]
pub enum Targets {
    /// Class labels (multi-class).
    Classes(Vec<usize>),
    /// Row-major values `[n, dim]` (binary: 0/1 with dim 1; regression).
    Values {
        /// The values.
        values: Vec<f32>,
        /// Values per example.
        dim: usize,
    },
}

impl Targets {
    /// The number of examples.
    pub fn len(&self) -> usize {
        match self {
            Targets::Classes(c) => c.len(),
            Targets::Values { values, dim } => values.len() / (*dim).max(1),
        }
    }

    /// Whether there is no example.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The targets of examples `idx`.
    pub fn gather(&self, idx: &[usize]) -> Targets {
        match self {
            Targets::Classes(c) => Targets::Classes(idx.iter().map(|&i| c[i]).collect()),
            Targets::Values { values, dim } => Targets::Values {
                values: idx
                    .iter()
                    .flat_map(|&i| values[i * dim..(i + 1) * dim].iter().copied())
                    .collect(),
                dim: *dim,
            },
        }
    }
}

/// The task's loss on a batch of outputs: cross-entropy, BCE with logits, or MSE (means).
pub fn task_loss<T: Float>(kind: TaskKind, out: &Tensor<T>, targets: &Targets) -> Tensor<T> {
    match (kind, targets) {
        (TaskKind::Multiclass, Targets::Classes(c)) => out.cross_entropy(c),
        (TaskKind::Binary | TaskKind::Regression, Targets::Values { values, .. }) => {
            let t = Tensor::from_vec(
                values.iter().map(|&v| T::of(v as f64)).collect(),
                out.shape(),
            );
            if kind == TaskKind::Binary {
                out.bce_with_logits(&t)
            } else {
                out.mse_loss(&t)
            }
        }
        (k, _) => panic!("task_loss: {k:?} task given the wrong kind of targets"),
    }
}

/// Running sums for a task's metric over batches.
#[derive(Clone, Debug, Default)]
pub struct MetricAcc {
    /// Correct predictions (classification) or summed squared error (regression).
    pub sum: f64,
    /// Examples (classification) or values (regression) seen.
    pub count: usize,
}

impl MetricAcc {
    /// Adds a batch of outputs.
    pub fn add<T: Float>(&mut self, kind: TaskKind, out: &Tensor<T>, targets: &Targets) {
        match (kind, targets) {
            (TaskKind::Multiclass, Targets::Classes(c)) => {
                let pred = out.argmax_axis(1);
                self.sum += pred.iter().zip(c).filter(|(p, t)| p == t).count() as f64;
                self.count += c.len();
            }
            (TaskKind::Binary, Targets::Values { values, .. }) => {
                for (o, &t) in out.data().iter().zip(values) {
                    let p = if o.as_f64() > 0.0 { 1.0 } else { 0.0 };
                    if (p - t as f64).abs() < 0.5 {
                        self.sum += 1.0;
                    }
                }
                self.count += values.len();
            }
            (TaskKind::Regression, Targets::Values { values, .. }) => {
                for (o, &t) in out.data().iter().zip(values) {
                    let d = o.as_f64() - t as f64;
                    self.sum += d * d;
                }
                self.count += values.len();
            }
            (k, _) => panic!("MetricAcc::add: {k:?} task given the wrong kind of targets"),
        }
    }

    /// Accuracy (classification) or RMSE (regression).
    pub fn value(&self, kind: TaskKind) -> f64 {
        let mean = self.sum / self.count.max(1) as f64;
        match kind {
            TaskKind::Regression => mean.sqrt(),
            _ => mean,
        }
    }
}

/// The name of a task kind's metric.
pub fn metric_name(kind: TaskKind) -> &'static str {
    match kind {
        TaskKind::Regression => "rmse",
        _ => "accuracy",
    }
}

/// Who a parameter belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// Used by every task: the per-task gradients on these are what weighting methods combine.
    Shared,
    /// Used by one task only.
    Task(usize),
}

/// A multi-task network: one output per task from shared and task-specific parameters.
pub trait MultiTaskModel<T: Float>: Send + Sync {
    /// Fresh parameters.
    fn init(&self, rng: &mut dyn rand::RngCore) -> Params<T>;
    /// One output per task (`[N, outputs]` each).
    fn forward(&self, params: &Params<T>, x: &Tensor<T>) -> Vec<Tensor<T>>;
    /// The owner of each parameter, in [`MultiTaskModel::init`] order.
    fn owners(&self) -> Vec<Owner>;
    /// The tasks.
    fn tasks(&self) -> &[TaskSpec];
    /// One-line description.
    fn describe(&self) -> String;
}

/// Builds the head of `task` on features of width `in_dim`.
pub(crate) fn head_stack(task: &TaskSpec, in_dim: usize) -> Stack {
    let mut layers = Vec::new();
    for &h in &task.hidden {
        layers.push(LayerSpec::Linear { out: h });
        layers.push(LayerSpec::Relu);
    }
    layers.push(LayerSpec::Linear { out: task.outputs });
    Stack::new(&layers, &[in_dim], false).expect("a head of linear layers fits a flat input")
}

/// Hard parameter sharing: a shared trunk, then one head per task on its (flat) output.
/// Parameters: `trunk.*` (shared), `head.{task}.*`.
#[derive(Clone, Debug)]
pub struct HardSharing {
    /// The trunk.
    pub trunk: Stack,
    /// One head per task.
    pub heads: Vec<Stack>,
    tasks: Vec<TaskSpec>,
}

impl HardSharing {
    /// A trunk of `trunk` layers on inputs of shape `in_shape`, with a head per task.
    pub fn new(
        trunk: &[LayerSpec],
        in_shape: &[usize],
        tasks: Vec<TaskSpec>,
        fuse: bool,
    ) -> Result<Self, ShapeError> {
        let trunk = Stack::new(trunk, in_shape, fuse)?;
        if trunk.out_shape().len() != 1 {
            return Err(ShapeError(format!(
                "the trunk's output {:?} must be flat (end with flatten or linear)",
                trunk.out_shape()
            )));
        }
        let d = trunk.out_shape()[0];
        let heads = tasks.iter().map(|t| head_stack(t, d)).collect();
        Ok(HardSharing {
            trunk,
            heads,
            tasks,
        })
    }

    /// The trunk's features for a batch.
    pub fn features<T: Float>(&self, params: &Params<T>, x: &Tensor<T>) -> Tensor<T> {
        self.trunk
            .forward(&params.tensors()[..self.trunk.num_params()], x)
    }
}

impl<T: Float> MultiTaskModel<T> for HardSharing {
    fn init(&self, rng: &mut dyn rand::RngCore) -> Params<T> {
        let mut p = Params::new();
        self.trunk.init("trunk", rng, &mut p);
        for (t, h) in self.tasks.iter().zip(&self.heads) {
            h.init(&format!("head.{}", t.name), rng, &mut p);
        }
        p
    }

    fn forward(&self, params: &Params<T>, x: &Tensor<T>) -> Vec<Tensor<T>> {
        let z = self.features(params, x);
        let mut k = self.trunk.num_params();
        self.heads
            .iter()
            .map(|h| {
                let out = h.forward(&params.tensors()[k..k + h.num_params()], &z);
                k += h.num_params();
                out
            })
            .collect()
    }

    fn owners(&self) -> Vec<Owner> {
        let mut o = vec![Owner::Shared; self.trunk.num_params()];
        for (t, h) in self.heads.iter().enumerate() {
            o.extend(std::iter::repeat_n(Owner::Task(t), h.num_params()));
        }
        o
    }

    fn tasks(&self) -> &[TaskSpec] {
        &self.tasks
    }

    fn describe(&self) -> String {
        format!(
            "hard sharing: trunk {:?} -> {:?}, heads {}",
            self.trunk.in_shape(),
            self.trunk.out_shape(),
            self.tasks
                .iter()
                .map(|t| format!("{}({:?}, {})", t.name, t.kind, t.outputs))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

//! Multi-task models: layer stacks built from the crate's ops ([`Stack`], an [`nn::Model`](Model)
//! and [`nn::Backbone`](Backbone)), task heads ([`TaskHeads`]), and hard parameter sharing (one
//! trunk, one head per task). MMoE and cross-stitch networks are in
//! [`crate::mtl::architectures`].
//!
//! Models are functional like [`crate::nn::Model`]: they hold the architecture, parameters live
//! in a [`Params`] list, and each parameter has an [`Owner`] (shared, or one task's).
//!
//! A task's [`OutputKind`] (binary, multi-class, regression) picks its output width, loss and
//! metric; its [`TaskTargets`] are what it is scored against. (Few-shot tasks have their own
//! types, [`crate::algorithms::task`]: `TaskKind`, `Target`.)

use crate::nn::init::push_weight_and_bias;
use crate::nn::{Backbone, Model, Params};
use crate::tensor::{Float, Tensor};

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

/// One step of a built [`Stack`]: a layer, or a conv, ReLU and max-pool fused into one op.
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
    /// The number of parameter tensors the block uses (weight and bias, or none).
    fn params(&self) -> usize {
        match self {
            Block::Conv { .. } | Block::ConvReluPool { .. } | Block::Linear => 2,
            _ => 0,
        }
    }

    /// Whether the block is an activation or a pooling (a possible stage end).
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
///
/// It is an [`nn::Model`](Model) (`init`, `forward`) and an [`nn::Backbone`](Backbone) (the
/// embedding is its output, flattened): parameters `{layer}.weight`, `{layer}.bias` for each
/// conv and linear layer, `{layer}` its index in the layer list, initialised Kaiming uniform
/// ([`crate::nn::init`]).
#[derive(Clone, Debug)]
pub struct Stack {
    blocks: Vec<Block>,
    /// The weight shape of each conv / linear layer, with the layer's index.
    weights: Vec<(usize, Vec<usize>)>,
    in_shape: Vec<usize>,
    out_shape: Vec<usize>,
}

/// Why a stack of layers cannot be built on an input shape.
#[derive(Debug, Clone)]
pub struct ShapeError(pub String);

/// A [`Stack`] being built: the example shape so far, and the blocks and weights laid.
struct StackBuilder {
    shape: Vec<usize>,
    blocks: Vec<Block>,
    weights: Vec<(usize, Vec<usize>)>,
}

impl StackBuilder {
    /// Lays layer `i` of `layers`, with the ReLU and max-pool after it when `fuse` and a
    /// stride-1 conv can run fused with them; returns how many layers it took (1 or 3).
    fn add(&mut self, layers: &[LayerSpec], i: usize, fuse: bool) -> Result<usize, ShapeError> {
        match layers[i] {
            LayerSpec::Conv {
                out,
                kernel,
                padding,
                stride,
            } => {
                let (c, ho, wo) = self.conv_output(i, out, kernel, padding, stride)?;
                self.weights.push((i, vec![out, c, kernel, kernel]));
                if let Some(pool) = fusable_pool(layers, i, ho, wo).filter(|_| fuse && stride == 1)
                {
                    let pad = padding;
                    self.blocks.push(Block::ConvReluPool { pad, pool });
                    self.shape = vec![out, ho / pool, wo / pool];
                    return Ok(3);
                }
                let pad = padding;
                self.blocks.push(Block::Conv { stride, pad });
                self.shape = vec![out, ho, wo];
            }
            LayerSpec::Relu => self.blocks.push(Block::Relu),
            LayerSpec::Sigmoid => self.blocks.push(Block::Sigmoid),
            LayerSpec::Tanh => self.blocks.push(Block::Tanh),
            LayerSpec::MaxPool { kernel } => self.max_pool(i, kernel)?,
            LayerSpec::Flatten => {
                self.blocks.push(Block::Flatten);
                self.shape = vec![self.shape.iter().product()];
            }
            LayerSpec::Linear { out } => self.linear(i, out)?,
        }
        Ok(1)
    }

    /// The input channels and output size `(c, ho, wo)` of conv layer `i` on the current shape,
    /// `ho = (h + 2 padding - kernel) / stride + 1`; errors when it does not fit.
    fn conv_output(
        &self,
        i: usize,
        out: usize,
        kernel: usize,
        padding: usize,
        stride: usize,
    ) -> Result<(usize, usize, usize), ShapeError> {
        let shape = &self.shape;
        let &[c, h, w] = shape.as_slice() else {
            return Err(ShapeError(format!(
                "layer {i} (conv) needs [C, H, W] input, got {shape:?}"
            )));
        };
        if kernel == 0
            || stride == 0
            || h + 2 * padding < kernel
            || w + 2 * padding < kernel
            || out == 0
        {
            return Err(ShapeError(format!("layer {i} (conv {kernel}x{kernel}, padding {padding}, stride {stride}) does not fit input {shape:?}")));
        }
        let ho = (h + 2 * padding - kernel) / stride + 1;
        let wo = (w + 2 * padding - kernel) / stride + 1;
        Ok((c, ho, wo))
    }

    /// Lays max-pool layer `i` (`kernel x kernel` windows every `kernel` pixels).
    fn max_pool(&mut self, i: usize, kernel: usize) -> Result<(), ShapeError> {
        let shape = &self.shape;
        if shape.len() != 3 || kernel == 0 || shape[1] < kernel || shape[2] < kernel {
            return Err(ShapeError(format!(
                "layer {i} (max_pool {kernel}) does not fit input {shape:?}"
            )));
        }
        self.blocks.push(Block::MaxPool(kernel));
        self.shape = vec![shape[0], shape[1] / kernel, shape[2] / kernel];
        Ok(())
    }

    /// Lays linear layer `i` of `out` outputs on the current (flat) shape.
    fn linear(&mut self, i: usize, out: usize) -> Result<(), ShapeError> {
        let shape = &self.shape;
        if shape.len() != 1 {
            return Err(ShapeError(format!(
                "layer {i} (linear) needs a flat input, got {shape:?} (add a flatten layer)"
            )));
        }
        if out == 0 {
            return Err(ShapeError(format!("layer {i} (linear) has out = 0")));
        }
        self.weights.push((i, vec![out, shape[0]]));
        self.blocks.push(Block::Linear);
        self.shape = vec![out];
        Ok(())
    }
}

/// The pool size when the conv at layer `i` (output `ho x wo`) is followed by a ReLU and a
/// max-pool whose window fits that output, so the three can run as one fused op.
fn fusable_pool(layers: &[LayerSpec], i: usize, ho: usize, wo: usize) -> Option<usize> {
    match (layers.get(i + 1), layers.get(i + 2)) {
        (Some(LayerSpec::Relu), Some(&LayerSpec::MaxPool { kernel }))
            if kernel >= 1 && kernel <= ho && kernel <= wo =>
        {
            Some(kernel)
        }
        _ => None,
    }
}

impl Stack {
    /// Builds `layers` on inputs of shape `in_shape` (one example, e.g. `[1, 28, 28]`).
    pub fn new(layers: &[LayerSpec], in_shape: &[usize], fuse: bool) -> Result<Stack, ShapeError> {
        let mut b = StackBuilder {
            shape: in_shape.to_vec(),
            blocks: Vec::new(),
            weights: Vec::new(),
        };
        let mut i = 0;
        while i < layers.len() {
            i += b.add(layers, i, fuse)?;
        }
        Ok(Stack {
            blocks: b.blocks,
            weights: b.weights,
            in_shape: in_shape.to_vec(),
            out_shape: b.shape,
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

    /// The number of parameter tensors (a weight and a bias per conv / linear layer).
    pub fn num_params(&self) -> usize {
        2 * self.weights.len()
    }

    /// Runs `blocks` on `x`, their parameters taken from `p` from index `k` on.
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

impl<T: Float> Model<T> for Stack {
    /// Fresh parameters in layer order, weight then bias: Kaiming uniform
    /// ([`push_weight_and_bias`], PyTorch's default), `fan_in` = inputs of one output unit.
    fn init(&self, rng: &mut dyn rand::RngCore) -> Params<T> {
        let mut p = Params::new();
        for (layer, shape) in &self.weights {
            push_weight_and_bias(&mut p, &format!("{layer}."), shape, rng);
        }
        p
    }

    /// The output `[N, out_shape...]` of a batch; `params` starts with this stack's (more may
    /// follow and are ignored).
    fn forward(&self, params: &Params<T>, x: &Tensor<T>) -> Tensor<T> {
        self.run_blocks(0..self.blocks.len(), 0, params.tensors(), x)
    }

    fn describe(&self) -> String {
        format!("stack {:?} -> {:?}", self.in_shape, self.out_shape)
    }
}

/// A stack as a feature extractor: its output, flattened (already flat for a trunk that ends in
/// a linear or flatten layer, and then not reshaped).
impl Backbone for Stack {
    fn init_params<T: Float>(&self, rng: &mut dyn rand::RngCore) -> Params<T> {
        Model::<T>::init(self, rng)
    }

    fn embed<T: Float>(&self, params: &Params<T>, x: &Tensor<T>) -> Tensor<T> {
        let out = Model::forward(self, params, x);
        if self.out_shape.len() == 1 {
            out
        } else {
            out.flatten_from1()
        }
    }

    fn feature_dim(&self) -> usize {
        self.out_shape.iter().product()
    }

    fn num_params(&self) -> usize {
        Stack::num_params(self)
    }

    fn description(&self) -> String {
        Model::<f32>::describe(self)
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
    /// Runs the segment; `params` holds the whole stack's parameters.
    pub fn run<T: Float>(&self, params: &Params<T>, x: &Tensor<T>) -> Tensor<T> {
        self.stack
            .run_blocks(self.blocks.clone(), self.param_start, params.tensors(), x)
    }
}

/// What kind of prediction a task makes, and so its output, loss and metric (`kind = "binary"`,
/// `"multiclass"` or `"regression"` in a config).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
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
    pub kind: OutputKind,
    /// Output width: classes (multi-class), 1 (binary), target dimension (regression).
    pub outputs: usize,
    /// Hidden widths of the head (ReLU between), before the output layer.
    pub hidden: Vec<usize>,
}

/// The targets of one task of a multi-task model for a set of examples.
#[derive(Clone, Debug, PartialEq)]
pub enum TaskTargets {
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

impl TaskTargets {
    /// The number of examples.
    pub fn len(&self) -> usize {
        match self {
            TaskTargets::Classes(c) => c.len(),
            TaskTargets::Values { values, dim } => values.len() / (*dim).max(1),
        }
    }

    /// Whether there is no example.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The targets of examples `idx`.
    pub fn gather(&self, idx: &[usize]) -> TaskTargets {
        match self {
            TaskTargets::Classes(c) => TaskTargets::Classes(idx.iter().map(|&i| c[i]).collect()),
            TaskTargets::Values { values, dim } => TaskTargets::Values {
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
pub fn task_loss<T: Float>(kind: OutputKind, out: &Tensor<T>, targets: &TaskTargets) -> Tensor<T> {
    match (kind, targets) {
        (OutputKind::Multiclass, TaskTargets::Classes(c)) => out.cross_entropy(c),
        (OutputKind::Binary | OutputKind::Regression, TaskTargets::Values { values, .. }) => {
            let t = Tensor::from_vec(
                values.iter().map(|&v| T::of(v as f64)).collect(),
                out.shape(),
            );
            if kind == OutputKind::Binary {
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
    pub fn add<T: Float>(&mut self, kind: OutputKind, out: &Tensor<T>, targets: &TaskTargets) {
        match (kind, targets) {
            (OutputKind::Multiclass, TaskTargets::Classes(c)) => {
                let pred = out.argmax_axis(1);
                self.sum += pred.iter().zip(c).filter(|(p, t)| p == t).count() as f64;
                self.count += c.len();
            }
            (OutputKind::Binary, TaskTargets::Values { values, .. }) => {
                for (o, &t) in out.data().iter().zip(values) {
                    let p = if o.as_f64() > 0.0 { 1.0 } else { 0.0 };
                    if (p - t as f64).abs() < 0.5 {
                        self.sum += 1.0;
                    }
                }
                self.count += values.len();
            }
            (OutputKind::Regression, TaskTargets::Values { values, .. }) => {
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
    pub fn value(&self, kind: OutputKind) -> f64 {
        let mean = self.sum / self.count.max(1) as f64;
        match kind {
            OutputKind::Regression => mean.sqrt(),
            _ => mean,
        }
    }
}

/// The name of a task kind's metric.
pub fn metric_name(kind: OutputKind) -> &'static str {
    match kind {
        OutputKind::Regression => "rmse",
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

    /// The representation `z` every head reads (hard sharing: the trunk's output) and the task
    /// outputs computed from it, when the model has a single shared one; `None` otherwise
    /// (the default). Used by the representation-Gramian step of `mtl::train`.
    fn forward_shared(&self, _params: &Params<T>, _x: &Tensor<T>) -> Option<SharedForward<T>> {
        None
    }
}

/// The shared representation and the task outputs of [`MultiTaskModel::forward_shared`].
pub type SharedForward<T> = (Tensor<T>, Vec<Tensor<T>>);

/// A multi-task network as an encoder and task heads (LibMTL's encoder / decoders): the encoder
/// (shared and task-specific layers) gives one feature tensor per task, and task `t`'s head
/// ([`TaskHeads`]) maps its features to its output. Every such network is a
/// [`MultiTaskModel`] whose parameters are the encoder's, then the heads'.
pub trait EncoderAndHeads<T: Float>: Send + Sync {
    /// The task heads.
    fn heads(&self) -> &TaskHeads;

    /// Fresh encoder parameters.
    fn init_encoder(&self, rng: &mut dyn rand::RngCore) -> Params<T>;

    /// The owner of each encoder parameter, in [`EncoderAndHeads::init_encoder`] order.
    fn encoder_owners(&self) -> Vec<Owner>;

    /// One feature tensor per task (`[N, d]`, the heads' input) for a batch; `params` starts
    /// with the encoder's parameters.
    fn encode(&self, params: &Params<T>, x: &Tensor<T>) -> Vec<Tensor<T>>;

    /// One-line description.
    fn description(&self) -> String;

    /// The single representation all heads read, when there is one (hard sharing's trunk
    /// output); `None` (the default) when heads read task-specific features.
    fn shared_representation(&self, _params: &Params<T>, _x: &Tensor<T>) -> Option<Tensor<T>> {
        None
    }
}

impl<T: Float, M: EncoderAndHeads<T>> MultiTaskModel<T> for M {
    fn init(&self, rng: &mut dyn rand::RngCore) -> Params<T> {
        let encoder = self.init_encoder(rng);
        encoder.concat(&self.heads().init(rng))
    }

    fn forward(&self, params: &Params<T>, x: &Tensor<T>) -> Vec<Tensor<T>> {
        let features = self.encode(params, x);
        let heads_start = self.encoder_owners().len();
        self.heads().forward(params, heads_start, features)
    }

    fn owners(&self) -> Vec<Owner> {
        let mut owners = self.encoder_owners();
        owners.extend(self.heads().owners());
        owners
    }

    fn tasks(&self) -> &[TaskSpec] {
        self.heads().tasks()
    }

    fn describe(&self) -> String {
        self.description()
    }

    fn forward_shared(&self, params: &Params<T>, x: &Tensor<T>) -> Option<SharedForward<T>> {
        let z = self.shared_representation(params, x)?;
        let k = self.heads().tasks().len();
        let heads_start = self.encoder_owners().len();
        let outs = self
            .heads()
            .forward(params, heads_start, vec![z.clone(); k]);
        Some((z, outs))
    }
}

/// Builds the head of `task` on features of width `in_dim`: `task.hidden` linear layers with a
/// ReLU after each, then a linear layer of `task.outputs`.
pub(crate) fn head_stack(task: &TaskSpec, in_dim: usize) -> Stack {
    let mut layers = Vec::new();
    for &h in &task.hidden {
        layers.push(LayerSpec::Linear { out: h });
        layers.push(LayerSpec::Relu);
    }
    layers.push(LayerSpec::Linear { out: task.outputs });
    Stack::new(&layers, &[in_dim], false).expect("a head of linear layers fits a flat input")
}

/// The width of `stack`'s output, which must be flat; the error names the stack as `what`
/// (`trunk`, `expert`, `column`), with `hint` after it.
fn flat_width(stack: &Stack, what: &str, hint: &str) -> Result<usize, ShapeError> {
    match stack.out_shape() {
        &[d] => Ok(d),
        other => Err(ShapeError(format!(
            "the {what}'s output {other:?} must be flat{hint}"
        ))),
    }
}

/// Fresh parameters for one stack per task, `{role}.{task}.*` (`head.digit.0.weight`), task
/// after task.
pub(crate) fn init_per_task<'a, T: Float>(
    role: &str,
    tasks: &[TaskSpec],
    stacks: impl IntoIterator<Item = &'a Stack>,
    rng: &mut dyn rand::RngCore,
) -> Params<T> {
    let mut p = Params::new();
    for (task, stack) in tasks.iter().zip(stacks) {
        let fresh: Params<T> = Model::<T>::init(stack, rng);
        p = p.concat(&fresh.prefixed(&format!("{role}.{}.", task.name)));
    }
    p
}

/// The owners of the parameters of one stack per task, task after task.
pub(crate) fn per_task_owners<'a, I: IntoIterator<Item = &'a Stack>>(
    stacks: I,
) -> impl Iterator<Item = Owner> + use<'a, I> {
    stacks
        .into_iter()
        .enumerate()
        .flat_map(|(t, s)| std::iter::repeat_n(Owner::Task(t), s.num_params()))
}

/// Walks a model's parameter list one group after the other: each stack run takes the next
/// `num_params` parameters.
pub(crate) struct ParamCursor<'a, T: Float> {
    params: &'a Params<T>,
    at: usize,
}

impl<'a, T: Float> ParamCursor<'a, T> {
    /// A cursor on `params` at index `at`.
    pub(crate) fn new(params: &'a Params<T>, at: usize) -> Self {
        ParamCursor { params, at }
    }

    /// The next `n` parameters.
    pub(crate) fn take(&mut self, n: usize) -> Params<T> {
        let p = self.params.slice(self.at..self.at + n);
        self.at += n;
        p
    }

    /// `stack`'s output on `x`, with the next parameters as its own.
    pub(crate) fn forward(&mut self, stack: &Stack, x: &Tensor<T>) -> Tensor<T> {
        let p = self.take(stack.num_params());
        Model::forward(stack, &p, x)
    }
}

/// One head per task on features of one width (`task.hidden` linear layers with a ReLU after
/// each, then a linear output layer): parameters `head.{task}.*`, each owned by its task.
#[derive(Clone, Debug)]
pub struct TaskHeads {
    tasks: Vec<TaskSpec>,
    heads: Vec<Stack>,
}

impl TaskHeads {
    /// The heads of `tasks` on features of width `in_dim`.
    pub fn new(tasks: Vec<TaskSpec>, in_dim: usize) -> Self {
        let heads = tasks.iter().map(|t| head_stack(t, in_dim)).collect();
        TaskHeads { tasks, heads }
    }

    /// The heads of `tasks` on the output of `body` (a trunk, an expert, a column), which must
    /// be flat: the error names the body `what`, with `hint` after it.
    pub fn on_output_of(
        body: &Stack,
        what: &str,
        hint: &str,
        tasks: Vec<TaskSpec>,
    ) -> Result<Self, ShapeError> {
        Ok(TaskHeads::new(tasks, flat_width(body, what, hint)?))
    }

    /// The tasks.
    pub fn tasks(&self) -> &[TaskSpec] {
        &self.tasks
    }

    /// The heads, in task order.
    pub fn stacks(&self) -> &[Stack] {
        &self.heads
    }

    /// Fresh parameters `head.{task}.*`, task after task.
    pub fn init<T: Float>(&self, rng: &mut dyn rand::RngCore) -> Params<T> {
        init_per_task("head", &self.tasks, &self.heads, rng)
    }

    /// Task `t`'s output on the `t`-th features; the heads' parameters start at index `at`
    /// of `params`.
    pub fn forward<T: Float>(
        &self,
        params: &Params<T>,
        at: usize,
        features: impl IntoIterator<Item = Tensor<T>>,
    ) -> Vec<Tensor<T>> {
        let mut cursor = ParamCursor::new(params, at);
        (self.heads.iter().zip(features))
            .map(|(head, z)| cursor.forward(head, &z))
            .collect()
    }

    /// The owner of each head parameter ([`Owner::Task`]), in [`TaskHeads::init`] order.
    pub fn owners(&self) -> impl Iterator<Item = Owner> + '_ {
        per_task_owners(&self.heads)
    }
}

/// Hard parameter sharing: a shared trunk, then one head per task on its (flat) output.
/// Parameters: `trunk.*` (shared), `head.{task}.*`.
#[derive(Clone, Debug)]
pub struct HardSharing {
    /// The trunk.
    pub trunk: Stack,
    /// One head per task.
    pub heads: TaskHeads,
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
        let hint = " (end with flatten or linear)";
        let heads = TaskHeads::on_output_of(&trunk, "trunk", hint, tasks)?;
        Ok(HardSharing { trunk, heads })
    }

    /// The trunk's features for a batch (`params` starts with the trunk's).
    pub fn features<T: Float>(&self, params: &Params<T>, x: &Tensor<T>) -> Tensor<T> {
        self.trunk.embed(params, x)
    }
}

impl<T: Float> EncoderAndHeads<T> for HardSharing {
    fn heads(&self) -> &TaskHeads {
        &self.heads
    }

    /// The trunk's parameters, `trunk.*`.
    fn init_encoder(&self, rng: &mut dyn rand::RngCore) -> Params<T> {
        let trunk: Params<T> = Model::<T>::init(&self.trunk, rng);
        trunk.prefixed("trunk.")
    }

    fn encoder_owners(&self) -> Vec<Owner> {
        vec![Owner::Shared; self.trunk.num_params()]
    }

    /// The trunk's features, once per task.
    fn encode(&self, params: &Params<T>, x: &Tensor<T>) -> Vec<Tensor<T>> {
        vec![self.features(params, x); self.heads.tasks().len()]
    }

    /// The trunk's features.
    fn shared_representation(&self, params: &Params<T>, x: &Tensor<T>) -> Option<Tensor<T>> {
        Some(self.features(params, x))
    }

    fn description(&self) -> String {
        format!(
            "hard sharing: trunk {:?} -> {:?}, heads {}",
            self.trunk.in_shape(),
            self.trunk.out_shape(),
            self.heads
                .tasks()
                .iter()
                .map(|t| format!("{}({:?}, {})", t.name, t.kind, t.outputs))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

//! Building learners from configs, and the plumbing every learner shares: the backbone with an
//! optional linear head ([`Network`]), the meta-parameters with their optimizer ([`MetaState`]),
//! and the reduction of per-task gradients over a meta-batch.

use super::config::{AlgorithmConfig, AlgorithmError, BackboneConfig};
use super::learner::{FewShotLearner, StepStats};
use super::Target;
use crate::nn::checkpoint::CheckpointError;
use crate::nn::optim::{Adam, Optimizer};
use crate::nn::{Conv4, Conv4Config, Mlp, Model, Params};
use crate::tensor::{Float, Tensor};
use rand::Rng;
use std::path::PathBuf;

/// What a learner is asked to predict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskKind {
    /// `n_way`-way classification (logits `[Nq, n_way]`).
    Classification {
        /// Classes per task.
        n_way: usize,
    },
    /// Regression onto `outputs` real targets (`[Nq, outputs]`), e.g. 1 for the sinusoid.
    Regression {
        /// Targets per example.
        outputs: usize,
    },
}

impl TaskKind {
    /// The width of the head.
    pub fn outputs(self) -> usize {
        match self {
            TaskKind::Classification { n_way } => n_way,
            TaskKind::Regression { outputs } => outputs,
        }
    }
}

/// Builds an `f32` learner for `n_way`-way classification.
pub fn build_learner(
    alg: &AlgorithmConfig,
    backbone: &BackboneConfig,
    n_way: usize,
    meta_lr: f64,
    rng: &mut dyn rand::RngCore,
) -> Result<Box<dyn FewShotLearner<f32>>, AlgorithmError> {
    build_learner_generic::<f32>(
        alg,
        backbone,
        TaskKind::Classification { n_way },
        meta_lr,
        rng,
    )
}

/// Builds an `f32` learner for regression onto `outputs` targets (1 for the sinusoid); errors
/// for the methods that only classify.
pub fn build_regression_learner(
    alg: &AlgorithmConfig,
    backbone: &BackboneConfig,
    outputs: usize,
    meta_lr: f64,
    rng: &mut dyn rand::RngCore,
) -> Result<Box<dyn FewShotLearner<f32>>, AlgorithmError> {
    build_learner_generic::<f32>(
        alg,
        backbone,
        TaskKind::Regression { outputs },
        meta_lr,
        rng,
    )
}

/// Builds a learner of any element type (`f64` for checks).
pub fn build_learner_generic<T: Float>(
    alg: &AlgorithmConfig,
    backbone: &BackboneConfig,
    task: TaskKind,
    meta_lr: f64,
    rng: &mut dyn rand::RngCore,
) -> Result<Box<dyn FewShotLearner<T>>, AlgorithmError> {
    alg.validate()?;
    let name = alg.name();
    match task {
        TaskKind::Regression { outputs } => {
            alg.check_regression()?;
            if outputs == 0 {
                return Err(AlgorithmError::InvalidOutputs {
                    algorithm: name,
                    what: "outputs",
                    min: 1,
                    got: outputs,
                });
            }
        }
        TaskKind::Classification { n_way } => {
            if n_way < 2 {
                return Err(AlgorithmError::InvalidOutputs {
                    algorithm: name,
                    what: "n_way",
                    min: 2,
                    got: n_way,
                });
            }
        }
    }
    if !(meta_lr.is_finite() && meta_lr > 0.0) {
        return Err(AlgorithmError::InvalidParameter {
            algorithm: name,
            field: "meta_lr",
            value: meta_lr.to_string(),
            reason: "must be a finite number > 0",
        });
    }
    let body = Body::from_config(backbone)?;
    use super::*;
    Ok(match alg {
        AlgorithmConfig::Maml(c) => {
            Box::new(maml::Maml::<T>::new(c, false, body, task, meta_lr, rng))
        }
        AlgorithmConfig::Fomaml(c) => {
            Box::new(maml::Maml::<T>::new(c, true, body, task, meta_lr, rng))
        }
        AlgorithmConfig::Reptile(c) => Box::new(reptile::Reptile::<T>::new(c, body, task, rng)),
        AlgorithmConfig::MetaSgd(c) => {
            Box::new(meta_sgd::MetaSgd::<T>::new(c, body, task, meta_lr, rng))
        }
        AlgorithmConfig::Anil(c) => Box::new(anil::Anil::<T>::new(c, body, task, meta_lr, rng)),
        AlgorithmConfig::Protonet(_) => Box::new(protonet::ProtoNet::<T>::new(body, meta_lr, rng)),
        AlgorithmConfig::Matching(c) => {
            Box::new(matching::MatchingNet::<T>::new(c, body, meta_lr, rng))
        }
        AlgorithmConfig::Relation(c) => {
            Box::new(relation::RelationNet::<T>::new(c, body, meta_lr, rng))
        }
        AlgorithmConfig::Baseline(c) => {
            Box::new(baseline::Baseline::<T>::new(c, false, body, meta_lr, rng))
        }
        AlgorithmConfig::BaselinePp(c) => {
            Box::new(baseline::Baseline::<T>::new(c, true, body, meta_lr, rng))
        }
        AlgorithmConfig::R2d2(c) => Box::new(r2d2::R2d2::<T>::new(c, body, meta_lr, rng)),
    })
}

/// `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`, PyTorch's default for linear layers.
pub(crate) fn kaiming_uniform<T: Float>(
    shape: &[usize],
    fan_in: usize,
    rng: &mut dyn rand::RngCore,
) -> Tensor<T> {
    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
    let n: usize = shape.iter().product();
    Tensor::from_vec(
        (0..n)
            .map(|_| T::of(rng.gen_range(-bound..bound)))
            .collect(),
        shape,
    )
}

/// A feature extractor: Conv-4 blocks (flattened output) or a ReLU MLP.
#[derive(Clone, Debug)]
pub enum Body {
    /// Conv-4 without head.
    Conv4(Conv4),
    /// MLP; the features are the ReLU of its last layer.
    Mlp(Mlp),
}

impl Body {
    /// The extractor a config describes.
    pub fn from_config(cfg: &BackboneConfig) -> Result<Body, AlgorithmError> {
        match cfg {
            BackboneConfig::Conv4(c) => {
                let bad = |reason: String| {
                    Err(AlgorithmError::InvalidBackbone {
                        backbone: "conv4",
                        reason,
                    })
                };
                if c.in_channels == 0 || c.filters == 0 || c.blocks == 0 {
                    return bad(format!(
                        "in_channels ({}), filters ({}) and blocks ({}) must be at least 1",
                        c.in_channels, c.filters, c.blocks
                    ));
                }
                let conv = Conv4::new(Conv4Config {
                    in_channels: c.in_channels,
                    filters: c.filters,
                    blocks: c.blocks,
                    image_size: c.image_size,
                    head: None,
                    downsample: c.downsample,
                });
                let mut s = c.image_size;
                for _ in 0..c.blocks {
                    if s < 2 {
                        return bad(format!(
                            "image_size {} is too small for {} downsampling blocks",
                            c.image_size, c.blocks
                        ));
                    }
                    s = match c.downsample {
                        crate::nn::DownsampleKind::MaxPool => s / 2,
                        crate::nn::DownsampleKind::Strided => (s - 1) / 2 + 1,
                    };
                }
                Ok(Body::Conv4(conv))
            }
            BackboneConfig::Mlp(m) => {
                if m.sizes.len() < 2 || m.sizes.contains(&0) {
                    return Err(AlgorithmError::InvalidBackbone {
                        backbone: "mlp",
                        reason: format!(
                            "`sizes` must list the input width and at least one hidden width, all >= 1 (got {:?})",
                            m.sizes
                        ),
                    });
                }
                Ok(Body::Mlp(Mlp::new(&m.sizes)))
            }
        }
    }

    /// The feature width.
    pub fn feature_dim(&self) -> usize {
        match self {
            Body::Conv4(c) => c.embedding_dim(),
            Body::Mlp(m) => *m.sizes.last().expect("mlp sizes"),
        }
    }

    /// The number of parameter tensors.
    pub fn num_params(&self) -> usize {
        match self {
            Body::Conv4(c) => 4 * c.config.blocks,
            Body::Mlp(m) => 2 * (m.sizes.len() - 1),
        }
    }

    /// Fresh parameters (PyTorch's default initialisation).
    pub fn init<T: Float>(&self, rng: &mut dyn rand::RngCore) -> Params<T> {
        match self {
            Body::Conv4(c) => c.init(rng),
            Body::Mlp(m) => m.init(rng),
        }
    }

    /// The features `[N, feature_dim]`; `params` starts with this body's parameters (more may
    /// follow and are ignored).
    pub fn embed<T: Float>(&self, params: &Params<T>, x: &Tensor<T>) -> Tensor<T> {
        match self {
            Body::Conv4(c) => c.embed(params, x),
            Body::Mlp(m) => m.forward(params, x).relu(),
        }
    }

    /// A description for logs.
    pub fn describe(&self) -> String {
        match self {
            Body::Conv4(c) => Model::<f32>::describe(c),
            Body::Mlp(m) => format!("mlp{:?}+relu", m.sizes),
        }
    }
}

/// A body followed by a linear head `head.weight [outputs, d]`, `head.bias [outputs]`
/// (parameters: the body's, then the head's).
#[derive(Clone, Debug)]
pub struct Network {
    /// The feature extractor.
    pub body: Body,
    /// The head's width.
    pub outputs: usize,
}

impl Network {
    /// `body` with a head for `task`, and fresh parameters for both (names unprefixed).
    pub(crate) fn fresh<T: Float>(
        body: Body,
        task: TaskKind,
        rng: &mut dyn rand::RngCore,
    ) -> (Network, Params<T>) {
        let net = Network {
            body,
            outputs: task.outputs(),
        };
        let params = Model::<T>::init(&net, rng);
        (net, params)
    }

    /// The index of `head.weight` (the body's parameter count).
    pub fn head_index(&self) -> usize {
        self.body.num_params()
    }
}

impl<T: Float> Model<T> for Network {
    fn init(&self, rng: &mut dyn rand::RngCore) -> Params<T> {
        let mut p = self.body.init(rng);
        let d = self.body.feature_dim();
        p.push("head.weight", kaiming_uniform(&[self.outputs, d], d, rng));
        p.push("head.bias", kaiming_uniform(&[self.outputs], d, rng));
        p
    }

    fn forward(&self, params: &Params<T>, x: &Tensor<T>) -> Tensor<T> {
        let k = self.head_index();
        self.body
            .embed(params, x)
            .linear(params.at(k), Some(params.at(k + 1)))
    }

    fn describe(&self) -> String {
        format!("{} -> linear({})", self.body.describe(), self.outputs)
    }

    fn forward_tasks(&self, params: &Params<T>, x: &Tensor<T>) -> Option<Tensor<T>> {
        let Body::Mlp(mlp) = &self.body else {
            return None;
        };
        let k = self.head_index();
        let features = mlp.forward_tasks(params, x)?.relu();
        Some(crate::nn::linear_tasks(
            &features,
            params.at(k),
            params.at(k + 1),
        ))
    }
}

/// A linear layer as a model (parameters `weight [out, in]`, `bias [out]`): ANIL's adapted head.
#[derive(Clone, Copy, Debug)]
pub struct LinearHead;

impl<T: Float> Model<T> for LinearHead {
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

/// The class labels of a target; panics naming the method for real-valued targets.
pub(crate) fn class_labels<'a, T: Float>(y: &'a Target<T>, method: &str) -> &'a [usize] {
    match y {
        Target::Classes(l) => l,
        Target::Values(_) => {
            panic!("algorithm `{method}` cannot do regression (sinusoid): it needs class labels")
        }
    }
}

/// The number of classes in an episode's support labels (`max + 1`).
pub(crate) fn num_classes(labels: &[usize]) -> usize {
    labels.iter().copied().max().map_or(0, |m| m + 1)
}

/// The fraction of rows whose argmax equals the label.
pub(crate) fn accuracy<T: Float>(logits: &Tensor<T>, labels: &[usize]) -> f64 {
    if labels.is_empty() {
        return f64::NAN;
    }
    let pred = logits.argmax_axis(-1);
    pred.iter().zip(labels).filter(|(p, l)| p == l).count() as f64 / labels.len() as f64
}

/// Accuracy for classification targets, `NaN` for regression.
pub(crate) fn target_accuracy<T: Float>(out: &Tensor<T>, y: &Target<T>) -> f64 {
    match y {
        Target::Classes(l) => accuracy(out, l),
        Target::Values(_) => f64::NAN,
    }
}

/// One task's contribution to a meta-gradient.
pub(crate) struct TaskResult<T: Float> {
    pub grads: Vec<Tensor<T>>,
    pub loss: f64,
    pub accuracy: f64,
}

/// A task's result from its (scalar) loss: the gradient with respect to `wrt`, the loss's
/// value and `accuracy`.
pub(crate) fn task_result<T: Float>(
    loss: &Tensor<T>,
    wrt: &[Tensor<T>],
    accuracy: f64,
) -> TaskResult<T> {
    TaskResult {
        grads: crate::grad(std::slice::from_ref(loss), wrt, false),
        loss: loss.item().as_f64(),
        accuracy,
    }
}

/// Runs `f` on every task in parallel (rayon) and averages the gradients, losses and
/// accuracies.
pub(crate) fn mean_over_tasks<T: Float, D: Sync>(
    tasks: &[D],
    f: impl Fn(&D) -> TaskResult<T> + Sync + Send,
) -> (Vec<Tensor<T>>, StepStats) {
    use rayon::prelude::*;
    assert!(!tasks.is_empty(), "meta_train_step: empty meta-batch");
    // Collect in task order, then add up sequentially: the sum is the same whatever the
    // thread count or work-stealing order, so runs are bit-reproducible.
    // Tasks first; ops inside a task split over the workers the tasks leave idle (a batch
    // smaller than the pool, or a last round that does not fill it). Same numbers either way.
    let mode = crate::autodiff::is_grad_enabled();
    let split = crate::tensor::parallel::tasks_leave_workers_idle(tasks.len());
    let results: Vec<TaskResult<T>> = tasks
        .par_iter()
        .map(|t| {
            // A rayon thread may run this job while it waits inside another job that set a
            // different recording mode: run with the caller's mode.
            let _mode = crate::autodiff::set_grad_enabled(mode);
            crate::tensor::parallel::with_op_splitting(split, || f(t))
        })
        .collect();
    let (grads, loss, acc) = crate::autodiff::no_grad(|| {
        let mut it = results.into_iter();
        let first = it.next().expect("at least one task");
        it.fold(
            (first.grads, first.loss, first.accuracy),
            |(ga, la, aa), r| {
                let g = ga.iter().zip(&r.grads).map(|(a, b)| a.add(b)).collect();
                (g, la + r.loss, aa + r.accuracy)
            },
        )
    });
    let s = 1.0 / tasks.len() as f64;
    let grads = crate::autodiff::no_grad(|| grads.iter().map(|g| g.mul_scalar(s)).collect());
    (
        grads,
        StepStats {
            loss: loss * s,
            accuracy: acc * s,
            grad_norm: 0.0,
        },
    )
}

/// Meta-parameters (names prefixed by group, e.g. `param/…`, `lr/…`) and their optimizer.
/// The state is the parameters, then the optimizer's state under `opt/`.
pub struct MetaState<T: Float> {
    /// The meta-parameters (leaves, no gradient flag).
    pub params: Params<T>,
    /// Their optimizer.
    pub opt: Box<dyn Optimizer<T> + Send + Sync>,
    who: &'static str,
}

impl<T: Float> MetaState<T> {
    /// `params` with Adam at `lr`.
    pub fn adam(who: &'static str, params: Params<T>, lr: f64) -> Self {
        Self::with_optimizer(who, params, Box::new(Adam::new(lr)))
    }

    /// `params` with a given optimizer.
    pub fn with_optimizer(
        who: &'static str,
        params: Params<T>,
        opt: Box<dyn Optimizer<T> + Send + Sync>,
    ) -> Self {
        MetaState {
            params: params.detach(),
            opt,
            who,
        }
    }

    /// Fresh leaves with gradients enabled, for one meta-gradient.
    pub fn leaves(&self) -> Params<T> {
        self.params.requires_grad_()
    }

    /// One optimizer update with one gradient per parameter.
    pub fn step(&mut self, grads: &[Tensor<T>]) {
        self.params = self.opt.step(&self.params, grads).detach();
    }

    /// The parameters followed by the optimizer state (`opt/...`).
    pub fn state(&self) -> Params<T> {
        let mut s = self.params.clone();
        for (n, t) in self.opt.state().iter() {
            s.push(format!("opt/{n}"), t.clone());
        }
        s
    }

    /// Restores [`MetaState::state`]: every parameter by name with its shape, no extra tensors.
    pub fn load_state(&mut self, state: &Params<T>) -> Result<(), CheckpointError> {
        let path = PathBuf::from(format!("<{} learner state>", self.who));
        let mut out = Vec::with_capacity(self.params.len());
        for (n, e) in self.params.iter() {
            let t = state.get(n).ok_or_else(|| CheckpointError::MissingTensor {
                path: path.clone(),
                name: n.to_string(),
                expected: e.shape().to_vec(),
                found: state
                    .names()
                    .iter()
                    .take(8)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
            if t.shape() != e.shape() {
                return Err(CheckpointError::ShapeMismatch {
                    path,
                    name: n.to_string(),
                    expected: e.shape().to_vec(),
                    found: t.shape().to_vec(),
                });
            }
            out.push(t.detach());
        }
        let extra: Vec<String> = state
            .names()
            .iter()
            .filter(|n| !n.starts_with("opt/") && self.params.get(n).is_none())
            .take(8)
            .cloned()
            .collect();
        if !extra.is_empty() {
            return Err(CheckpointError::UnexpectedTensors {
                path,
                names: extra,
                expected: self.params.len(),
            });
        }
        let mut opt_state = Params::new();
        for (n, t) in state.iter() {
            if let Some(rest) = n.strip_prefix("opt/") {
                opt_state.push(rest, t.clone());
            }
        }
        self.opt.reset();
        self.opt
            .load_state(&opt_state)
            .map_err(|e| CheckpointError::Metadata {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        self.params = self.params.with_tensors(out);
        Ok(())
    }
}

/// Prefixes every name of `p` with `prefix`.
pub(crate) fn prefixed<T: Float>(p: &Params<T>, prefix: &str) -> Params<T> {
    Params::from_parts(
        p.names().iter().map(|n| format!("{prefix}{n}")).collect(),
        p.tensors().to_vec(),
    )
}

/// The sub-list `range` of `p`.
pub(crate) fn slice<T: Float>(p: &Params<T>, range: std::ops::Range<usize>) -> Params<T> {
    Params::from_parts(
        p.names()[range.clone()].to_vec(),
        p.tensors()[range].to_vec(),
    )
}

/// `p` followed by `q`.
pub(crate) fn concat_params<T: Float>(p: &Params<T>, q: &Params<T>) -> Params<T> {
    let mut out = p.clone();
    for (n, t) in q.iter() {
        out.push(n, t.clone());
    }
    out
}

/// Concatenates support and query inputs along the batch axis (for methods that embed both in
/// one batch, so that batch norm uses one set of statistics).
pub(crate) fn cat_batch<T: Float>(a: &Tensor<T>, b: &Tensor<T>) -> Tensor<T> {
    Tensor::concat(&[a.clone(), b.clone()], 0)
}

/// The one-hot matrix `[labels.len(), n]`.
pub(crate) fn one_hot<T: Float>(labels: &[usize], n: usize) -> Tensor<T> {
    let mut d = vec![T::zero(); labels.len() * n];
    for (i, &l) in labels.iter().enumerate() {
        d[i * n + l] = T::one();
    }
    Tensor::from_vec(d, &[labels.len(), n])
}

/// Class means `[n, d]` of rows `z [N, d]` (differentiable): `onehot^T z / counts`.
pub(crate) fn class_means<T: Float>(z: &Tensor<T>, labels: &[usize], n: usize) -> Tensor<T> {
    let oh = one_hot::<T>(labels, n);
    let mut counts = vec![T::zero(); n];
    for &l in labels {
        counts[l] += T::one();
    }
    for c in counts.iter_mut() {
        if *c == T::zero() {
            *c = T::one();
        }
    }
    let inv = Tensor::from_vec(counts.iter().map(|&c| T::one() / c).collect(), &[n, 1]);
    oh.matmul_tn(z).mul(&inv)
}

/// Rows scaled to unit Euclidean norm (with `eps` for stability).
pub(crate) fn l2_normalize<T: Float>(z: &Tensor<T>, eps: f64) -> Tensor<T> {
    z.div(&z.square().sum_axis(-1, true).add_scalar(eps).sqrt())
}

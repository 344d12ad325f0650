//! MAML (Finn, Abbeel & Levine 2017) and first-order MAML: adapt the initialisation `theta` on
//! each task's support set with the [`Adapter`] inner loop, score the query set at the
//! adapted weights `phi_K`, and step Adam on the mean meta-gradient `d L_query(phi_K) / d theta`
//! (second order), or on `grad L_query` at `phi_K` (first order).

use super::adapt::Adapter;
pub use super::adapt::Order;
use super::algorithm::{Algorithm, Learner, LearnerParts};
use super::checks::ParamCheck;
use super::error::AlgorithmError;
use super::learner::{MetaLearner, Method};
use super::meta_batch::{mean_over_tasks, MetaGradient, StepStats, TaskResult};
pub use super::task::TaskData;
use super::task::{Target, TaskKind};
use crate::nn::{Backbone, Body, Model, Network, Params};
use crate::tensor::{Float, Tensor};
use serde::{Deserialize, Serialize};

/// MAML / first-order MAML (and ANIL, which reuses these fields). Defaults: Finn et al.'s
/// Omniglot 5-way setting (`inner_lr` 0.4, 1 step in meta-training, 3 at test time). For the
/// sinusoid benchmark they use `inner_lr` 0.01, 1 step (10 at test time).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MamlConfig {
    /// Inner-loop SGD step size alpha (0.4).
    pub inner_lr: f64,
    /// Inner steps during meta-training (1).
    pub inner_steps: usize,
    /// Inner steps when adapting for prediction (3).
    pub eval_inner_steps: usize,
    /// Treat inner gradients as constants (false; `fomaml` forces true).
    pub first_order: bool,
}

impl Default for MamlConfig {
    fn default() -> Self {
        MamlConfig {
            inner_lr: 0.4,
            inner_steps: 1,
            eval_inner_steps: 3,
            first_order: false,
        }
    }
}

impl MamlConfig {
    /// `inner_lr` in (0, 100], `inner_steps` and `eval_inner_steps` in [1, 10000].
    pub fn validate(&self, algorithm: &'static str) -> Result<(), AlgorithmError> {
        let (lr, steps, eval_steps) = (self.inner_lr, self.inner_steps, self.eval_inner_steps);
        ParamCheck::new(algorithm).inner_loop("inner_lr", lr, steps, eval_steps)
    }
}

/// MAML (`FIRST_ORDER = false`) and first-order MAML (`true`) in the algorithm table: they
/// regress, have a head, and share [`MamlConfig`]; first-order MAML's default sets
/// `first_order`, and it is first order whatever the config says.
pub struct MamlFamily<const FIRST_ORDER: bool>;

/// MAML in the algorithm table: second order unless `first_order`.
pub type MamlAlgorithm = MamlFamily<false>;

/// First-order MAML in the algorithm table: always first order.
pub type FomamlAlgorithm = MamlFamily<true>;

impl<const FIRST_ORDER: bool> Algorithm for MamlFamily<FIRST_ORDER> {
    type Config = MamlConfig;
    const NAME: &'static str = if FIRST_ORDER { "fomaml" } else { "maml" };
    const HAS_HEAD: bool = true;

    /// MAML's defaults, with `first_order = FIRST_ORDER`.
    fn default_config() -> MamlConfig {
        MamlConfig {
            first_order: FIRST_ORDER,
            ..MamlConfig::default()
        }
    }

    fn validate(config: &MamlConfig) -> Result<(), AlgorithmError> {
        config.validate(Self::NAME)
    }

    fn build<T: Float, B: Backbone>(c: &MamlConfig, p: LearnerParts<B>) -> Learner<T> {
        Box::new(Maml::<T, B>::new(
            c,
            FIRST_ORDER,
            p.body,
            p.task,
            p.meta_lr,
            p.rng,
        ))
    }
}

/// One task's contribution to the meta-gradient.
pub struct TaskMetaGrad<T: Float> {
    /// `d L_query(phi_K) / d theta` (second order), or `grad L_query` at `phi_K` (first order).
    pub grads: Vec<Tensor<T>>,
    /// The query loss after adaptation.
    pub query_loss: f64,
    /// The query prediction after adaptation (no history).
    pub query_output: Tensor<T>,
    /// Support losses before each step.
    pub support_losses: Vec<f64>,
    /// The fast weights (no history).
    pub adapted: Params<T>,
}

/// Adapts on the support set (`steps` SGD steps of size `lr`, of `order`), scores the query
/// set, and returns the meta-gradient of the query loss with respect to `theta` (which must
/// be leaves with gradients enabled).
#[allow(clippy::too_many_arguments)]
pub fn task_meta_grad<T: Float>(
    model: &dyn Model<T>,
    theta: &Params<T>,
    support_x: &Tensor<T>,
    support_y: &Target<T>,
    query_x: &Tensor<T>,
    query_y: &Target<T>,
    steps: usize,
    lr: f64,
    order: Order,
) -> TaskMetaGrad<T> {
    let adapter = Adapter::sgd(lr, steps).with_order(order);
    let adapted = adapter.adapt(model, theta, support_x, support_y);
    let out = model.forward(&adapted.params, query_x);
    let loss = query_y.loss(&out);
    let wrt: Vec<Tensor<T>> = match order {
        Order::Second => theta.tensors().to_vec(),
        Order::First => adapted.params.tensors().to_vec(),
    };
    let grads = crate::grad(std::slice::from_ref(&loss), &wrt, false);
    TaskMetaGrad {
        grads,
        query_loss: loss.item().as_f64(),
        query_output: out.detach(),
        support_losses: adapted.support_losses,
        adapted: adapted.params.detach(),
    }
}

/// The meta-gradient of a meta-batch: `(1/T) sum_t d L_query_t / d theta`, with tasks run in
/// parallel (rayon), each on its own graph, and summed in task order (reproducible). Returns
/// the gradients (one per parameter, in order) and the mean query loss.
pub fn meta_gradient<T: Float>(
    model: &dyn Model<T>,
    theta: &Params<T>,
    tasks: &[TaskData<T>],
    steps: usize,
    lr: f64,
    order: Order,
) -> (Vec<Tensor<T>>, f64) {
    let inner = InnerLoop { steps, lr, order };
    let (grads, stats) = batch_meta_gradient(model, theta, tasks, inner);
    (grads, stats.loss)
}

/// The inner loop of a meta-gradient: `steps` SGD steps of size `lr`, of `order`.
#[derive(Clone, Copy)]
struct InnerLoop {
    steps: usize,
    lr: f64,
    order: Order,
}

/// [`meta_gradient`] with the step statistics (mean query loss and accuracy).
fn batch_meta_gradient<T: Float>(
    model: &dyn Model<T>,
    theta: &Params<T>,
    tasks: &[TaskData<T>],
    inner: InnerLoop,
) -> MetaGradient<T> {
    let theta = theta.requires_grad_();
    if let Some(batched) = tasks_as_one_graph(model, &theta, tasks, inner) {
        return batched;
    }
    let InnerLoop { steps, lr, order } = inner;
    mean_over_tasks(tasks, |t| {
        let (sx, sy, qx, qy) = (&t.support_x, &t.support_y, &t.query_x, &t.query_y);
        let r = task_meta_grad(model, &theta, sx, sy, qx, qy, steps, lr, order);
        TaskResult {
            accuracy: qy.accuracy(&r.query_output),
            grads: r.grads,
            loss: r.query_loss,
        }
    })
}

/// The inputs and real targets of every task stacked on a leading task axis
/// (`[B, N, ...]`), when all tasks are regression tasks of one shape.
fn stack_regression<T: Float>(
    tasks: &[TaskData<T>],
    part: impl Fn(&TaskData<T>) -> (&Tensor<T>, &Target<T>),
) -> Option<(Tensor<T>, Tensor<T>)> {
    let (x0, _) = part(tasks.first()?);
    let mut xs = Vec::with_capacity(tasks.len());
    let mut ys = Vec::with_capacity(tasks.len());
    for t in tasks {
        let (x, Target::Values(y)) = part(t) else {
            return None;
        };
        if x.shape() != x0.shape()
            || ys
                .first()
                .is_some_and(|f: &Tensor<T>| f.shape() != y.shape())
        {
            return None;
        }
        xs.push(x.clone());
        ys.push(y.clone());
    }
    Some((Tensor::stack(&xs, 0), Tensor::stack(&ys, 0)))
}

/// Each task's mean squared error `[B]` of batched predictions `out` against `y` (`[B, ...]`).
fn per_task_mse<T: Float>(out: &Tensor<T>, y: &Tensor<T>) -> Tensor<T> {
    let b = y.dim(0);
    let per_task = y.numel() / b.max(1);
    out.sub(y)
        .square()
        .reshape(&[b, per_task])
        .sum_axis(-1, false)
        .mul_scalar(1.0 / per_task.max(1) as f64)
}

/// The meta-gradient of a meta-batch of regression tasks of one shape as one graph of batched
/// ops, for models with a batched form ([`Model::forward_tasks`]): `theta` broadcast to a
/// `[B, ...]` copy per task, the inner steps `phi <- phi - lr grad_phi sum_b L_b(phi_b)` (each
/// task's loss depends only on its own slice, so that gradient is every task's own), then
/// `grad_theta (1/B) sum_b L_query_b(phi_b)` (first order: the gradient at `phi_K` summed
/// over tasks): the same quantity as the task-by-task path, with
/// the sum over tasks inside `broadcast_to`'s backward. `None` when it does not apply (then the
/// tasks run one by one). Small models gain most: W1 runs ~100 batched ops instead of 25x100.
fn tasks_as_one_graph<T: Float>(
    model: &dyn Model<T>,
    theta: &Params<T>,
    tasks: &[TaskData<T>],
    inner: InnerLoop,
) -> Option<MetaGradient<T>> {
    let InnerLoop { steps, lr, order } = inner;
    let (sx, sy) = stack_regression(tasks, |t| (&t.support_x, &t.support_y))?;
    let (qx, qy) = stack_regression(tasks, |t| (&t.query_x, &t.query_y))?;
    let b = tasks.len();
    let per_task = |t: &Tensor<T>| {
        let mut shape = vec![b];
        shape.extend_from_slice(t.shape());
        t.unsqueeze(0).broadcast_to(&shape)
    };
    let mut phi = theta.map(per_task);
    for _ in 0..steps {
        let loss = per_task_mse(&model.forward_tasks(&phi, &sx)?, &sy).sum_all();
        let grads = crate::grad(&[loss], phi.tensors(), order == Order::Second);
        let next = phi.tensors().iter().zip(&grads);
        phi = phi.with_tensors(next.map(|(p, g)| p.sub(&g.mul_scalar(lr))).collect());
    }
    let losses = per_task_mse(&model.forward_tasks(&phi, &qx)?, &qy);
    let mean = losses.sum_all().mul_scalar(1.0 / b as f64);
    let grads = match order {
        Order::Second => crate::grad(&[mean], theta.tensors(), false),
        // the inner gradients are constants: d phi_K / d theta is the broadcast, whose
        // adjoint sums over the task axis
        Order::First => crate::grad(&[mean], phi.tensors(), false)
            .iter()
            .map(|g| g.sum_axis(0, false))
            .collect(),
    };
    let loss = losses.to_vec().iter().map(|l| l.as_f64()).sum::<f64>() / b as f64;
    let stats = StepStats {
        loss,
        accuracy: f64::NAN,
        grad_norm: 0.0,
    };
    Some((grads, stats))
}

/// MAML / first-order MAML: the network (backbone + linear head) and the inner loop's
/// settings.
pub struct MamlMethod<B = Body> {
    net: Network<B>,
    inner_lr: f64,
    inner_steps: usize,
    eval_inner_steps: usize,
    order: Order,
    name: &'static str,
}

impl<B> MamlMethod<B> {
    /// The meta-training inner loop: `inner_steps` steps of `inner_lr`, of `order`.
    fn inner_loop(&self) -> InnerLoop {
        InnerLoop {
            steps: self.inner_steps,
            lr: self.inner_lr,
            order: self.order,
        }
    }
}

impl<T: Float, B: Backbone> Method<T> for MamlMethod<B> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn training_noise(&self) -> bool {
        self.net.backbone.uses_training_noise()
    }

    fn batch_gradient(&self, params: &Params<T>, tasks: &[TaskData<T>]) -> MetaGradient<T> {
        batch_meta_gradient(&self.net, params, tasks, self.inner_loop())
    }

    /// `eval_inner_steps` first-order steps, then the query batch under `no_grad`.
    fn predict(&self, p: &Params<T>, sx: &Tensor<T>, sy: &Target<T>, qx: &Tensor<T>) -> Tensor<T> {
        let adapter = Adapter::sgd(self.inner_lr, self.eval_inner_steps).with_order(Order::First);
        adapter.predict(&self.net, &p.requires_grad_(), sx, sy, qx)
    }
}

/// The MAML / first-order MAML learner: [`MamlMethod`] with the initialisation `theta`
/// (`param/...`) and Adam on it.
///
/// Meta-training adapts on each task's support set with `inner_steps` SGD steps (batch norm
/// with the support batch's statistics in every step), scores the query set (query batch
/// statistics), and steps Adam on the mean meta-gradient (tasks in parallel).
/// [`predict`](super::FewShotLearner::predict) adapts with `eval_inner_steps` first-order steps and
/// runs the query batch under `no_grad`, with the query batch's statistics (transductive, as
/// Finn et al.'s code).
///
/// ```rust
/// use metalearn::prelude::*;
///
/// // MAML on a 1-input MLP, regressing y = a x onto tasks with different slopes a.
/// let mut rng = seeded_rng(0);
/// let config = MamlConfig { inner_lr: 0.01, inner_steps: 1, eval_inner_steps: 5, ..MamlConfig::default() };
/// let body = Body::Mlp(Mlp::new(&[1, 16]));
/// let task_kind = TaskKind::Regression { outputs: 1 };
/// let mut maml = Maml::<f32>::new(&config, false, body, task_kind, 1e-2, &mut rng);
/// let line = |a: f32, xs: &[f32]| {
///     let x = Tensor::from_vec(xs.to_vec(), &[xs.len(), 1]);
///     let y = Target::Values(x.mul_scalar(a as f64));
///     (x, y)
/// };
/// let tasks: Vec<TaskData<f32>> = [0.5, -1.0, 2.0]
///     .iter()
///     .map(|&a| {
///         let (support_x, support_y) = line(a, &[-1.0, 0.0, 1.0]);
///         let (query_x, query_y) = line(a, &[-0.5, 0.5]);
///         TaskData { support_x, support_y, query_x, query_y, classes: None }
///     })
///     .collect();
/// let before = maml.meta_gradient(&tasks).1.loss;
/// for _ in 0..50 {
///     maml.meta_train_step(&tasks, &mut rng);
/// }
/// assert!(maml.meta_gradient(&tasks).1.loss < before);
/// let t = &tasks[0];
/// assert_eq!(maml.predict(&t.support_x, &t.support_y, &t.query_x).shape(), [2, 1]);
/// ```
pub type Maml<T, B = Body> = MetaLearner<T, MamlMethod<B>>;

impl<T: Float, B: Backbone> Maml<T, B> {
    /// A learner from its config; `fomaml` (or `config.first_order`) selects first order.
    pub fn new(
        config: &MamlConfig,
        fomaml: bool,
        body: B,
        task: TaskKind,
        meta_lr: f64,
        rng: &mut dyn rand::RngCore,
    ) -> Self {
        let (net, theta) = task.headed_network::<T, B>(body, rng);
        let method = MamlMethod {
            net,
            inner_lr: config.inner_lr,
            inner_steps: config.inner_steps,
            eval_inner_steps: config.eval_inner_steps,
            order: Order::first_if(fomaml || config.first_order),
            name: if fomaml {
                FomamlAlgorithm::NAME
            } else {
                MamlAlgorithm::NAME
            },
        };
        MetaLearner::adam(method, theta.prefixed("param/"), meta_lr)
    }

    /// First or second order.
    pub fn order(&self) -> Order {
        self.method.order
    }

    /// The network.
    pub fn network(&self) -> &Network<B> {
        &self.method.net
    }

    /// The mean meta-gradient of a meta-batch at the current `theta` and the step statistics
    /// (without updating): what [`FewShotLearner::meta_train_step`](super::FewShotLearner::meta_train_step) feeds the optimizer.
    pub fn meta_gradient(&self, tasks: &[TaskData<T>]) -> MetaGradient<T> {
        let m = &self.method;
        batch_meta_gradient(&m.net, &self.meta.params, tasks, m.inner_loop())
    }
}

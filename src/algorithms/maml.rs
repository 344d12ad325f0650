//! The MAML inner loop (Finn et al. 2017) as a function of parameters.
//!
//! `phi_0 = theta`, `phi_{k+1} = phi_k - alpha * grad_phi L_support(phi_k)`. With
//! [`Order::Second`] each inner gradient is taken with `create_graph`, so the query loss at
//! `phi_K` differentiates back to `theta` through every step (`d phi_{k+1} / d phi_k =
//! I - alpha H_k`). With [`Order::First`] the inner gradients are constants (first-order MAML).

use super::learner::{MetaGradient, MetaLearner, Method};
use super::registry::{self, Body, Network, TaskKind, TaskResult};
use super::Target;
use crate::nn::{Model, Params};
use crate::tensor::{Float, Tensor};

/// Whether the meta-gradient differentiates through the inner gradients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// True second-order MAML.
    Second,
    /// First-order MAML: inner gradients are treated as constants.
    First,
}

impl Order {
    /// [`Order::First`] when `first_order`, else [`Order::Second`].
    pub fn first_if(first_order: bool) -> Order {
        if first_order {
            Order::First
        } else {
            Order::Second
        }
    }
}

/// The result of adapting to a support set.
pub struct Adapted<T: Float> {
    /// The fast weights `phi_K`.
    pub params: Params<T>,
    /// The support loss before each inner step (`phi_0 .. phi_{K-1}`).
    pub support_losses: Vec<f64>,
}

/// Runs `steps` SGD steps of size `lr` on the support set from `params`.
///
/// `lrs`, when given, holds one learning-rate tensor per parameter (Meta-SGD's learned step
/// sizes, elementwise); otherwise every parameter uses `lr`. `adapt_mask[i] = false` keeps
/// parameter `i` fixed (ANIL adapts only the head).
#[allow(clippy::too_many_arguments)]
pub fn adapt<T: Float>(
    model: &dyn Model<T>,
    params: &Params<T>,
    support_x: &Tensor<T>,
    support_y: &Target<T>,
    steps: usize,
    lr: f64,
    order: Order,
    lrs: Option<&Params<T>>,
    adapt_mask: Option<&[bool]>,
) -> Adapted<T> {
    let mut phi = params.clone();
    let mut support_losses = Vec::with_capacity(steps);
    for _ in 0..steps {
        let loss = support_y.loss(&model.forward(&phi, support_x));
        support_losses.push(loss.item().as_f64());
        let wrt: Vec<usize> = (0..phi.len())
            .filter(|&i| adapt_mask.is_none_or(|m| m[i]))
            .collect();
        let inputs: Vec<Tensor<T>> = wrt.iter().map(|&i| phi.at(i).clone()).collect();
        let grads = crate::grad(&[loss], &inputs, order == Order::Second);
        let mut next: Vec<Tensor<T>> = phi.tensors().to_vec();
        for (g, &i) in grads.iter().zip(&wrt) {
            let step = match lrs {
                Some(l) => g.mul(l.at(i)),
                None => g.mul_scalar(lr),
            };
            next[i] = phi.at(i).sub(&step);
        }
        phi = phi.with_tensors(next);
    }
    Adapted {
        params: phi,
        support_losses,
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

/// Adapts on the support set, scores the query set, and returns the meta-gradient of the query
/// loss with respect to `theta` (which must be leaves with gradients enabled).
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
    let adapted = adapt(
        model, theta, support_x, support_y, steps, lr, order, None, None,
    );
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

/// One task of a meta-batch: a support set to adapt on and a query set to score.
#[derive(Clone, Debug)]
pub struct TaskData<T: Float> {
    /// Support inputs `[Ns, ...]`.
    pub support_x: Tensor<T>,
    /// Support targets.
    pub support_y: Target<T>,
    /// Query inputs `[Nq, ...]`.
    pub query_x: Tensor<T>,
    /// Query targets.
    pub query_y: Target<T>,
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
    let (grads, stats) = batch_meta_gradient(model, theta, tasks, steps, lr, order);
    (grads, stats.loss)
}

/// [`meta_gradient`] with the step statistics (mean query loss and accuracy).
fn batch_meta_gradient<T: Float>(
    model: &dyn Model<T>,
    theta: &Params<T>,
    tasks: &[TaskData<T>],
    steps: usize,
    lr: f64,
    order: Order,
) -> MetaGradient<T> {
    let theta = theta.requires_grad_();
    if let Some(batched) = tasks_as_one_graph(model, &theta, tasks, steps, lr, order) {
        return batched;
    }
    registry::mean_over_tasks(tasks, |t| {
        let r = task_meta_grad(
            model,
            &theta,
            &t.support_x,
            &t.support_y,
            &t.query_x,
            &t.query_y,
            steps,
            lr,
            order,
        );
        TaskResult {
            accuracy: registry::target_accuracy(&r.query_output, &t.query_y),
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
    steps: usize,
    lr: f64,
    order: Order,
) -> Option<MetaGradient<T>> {
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
    let stats = super::learner::StepStats {
        loss,
        accuracy: f64::NAN,
        grad_norm: 0.0,
    };
    Some((grads, stats))
}

/// A task's result from the query output `out` after adaptation: the gradient of the query
/// loss with respect to `wrt`, the loss and the accuracy.
pub(crate) fn query_result<T: Float>(
    out: &Tensor<T>,
    y: &Target<T>,
    wrt: &[Tensor<T>],
) -> TaskResult<T> {
    registry::task_result(&y.loss(out), wrt, registry::target_accuracy(out, y))
}

/// The gradient-based methods' prediction: `steps` first-order steps from `theta` (leaves
/// with gradients enabled) on the support set (step `lr`, or the per-element `lrs`), then
/// `model` on the query set under `no_grad`, with the query batch's statistics.
#[allow(clippy::too_many_arguments)]
pub(crate) fn adapt_and_predict<T: Float>(
    model: &dyn Model<T>,
    theta: &Params<T>,
    support_x: &Tensor<T>,
    support_y: &Target<T>,
    query_x: &Tensor<T>,
    steps: usize,
    lr: f64,
    lrs: Option<&Params<T>>,
) -> Tensor<T> {
    let a = adapt(
        model,
        theta,
        support_x,
        support_y,
        steps,
        lr,
        Order::First,
        lrs,
        None,
    );
    crate::autodiff::no_grad(|| model.forward(&a.params, query_x))
}

/// MAML / first-order MAML: the network (body + linear head) and the inner loop's settings.
pub struct MamlMethod {
    net: Network,
    inner_lr: f64,
    inner_steps: usize,
    eval_inner_steps: usize,
    order: Order,
    name: &'static str,
}

impl<T: Float> Method<T> for MamlMethod {
    fn name(&self) -> &'static str {
        self.name
    }

    fn batch_gradient(&self, params: &Params<T>, tasks: &[TaskData<T>]) -> MetaGradient<T> {
        let (net, steps, lr) = (&self.net, self.inner_steps, self.inner_lr);
        batch_meta_gradient(net, params, tasks, steps, lr, self.order)
    }

    fn predict(&self, p: &Params<T>, sx: &Tensor<T>, sy: &Target<T>, qx: &Tensor<T>) -> Tensor<T> {
        let (steps, lr) = (self.eval_inner_steps, self.inner_lr);
        let theta = p.requires_grad_();
        adapt_and_predict(&self.net, &theta, sx, sy, qx, steps, lr, None)
    }
}

/// The MAML / first-order MAML learner: [`MamlMethod`] with the initialisation `theta`
/// (`param/...`) and Adam on it.
///
/// Meta-training adapts on each task's support set with `inner_steps` SGD steps (batch norm
/// with the support batch's statistics in every step), scores the query set (query batch
/// statistics), and steps Adam on the mean meta-gradient (tasks in parallel).
/// [`predict`](super::learner::FewShotLearner::predict) adapts with `eval_inner_steps`
/// first-order steps and runs the query batch under `no_grad`, with the query batch's
/// statistics (transductive, as Finn et al.'s code).
pub type Maml<T> = MetaLearner<T, MamlMethod>;

impl<T: Float> Maml<T> {
    /// A learner from its config; `fomaml` (or `config.first_order`) selects first order.
    pub fn new(
        config: &super::config::MamlConfig,
        fomaml: bool,
        body: Body,
        task: TaskKind,
        meta_lr: f64,
        rng: &mut dyn rand::RngCore,
    ) -> Self {
        let (net, theta) = Network::fresh::<T>(body, task, rng);
        let params = registry::prefixed(&theta, "param/");
        let method = MamlMethod {
            net,
            inner_lr: config.inner_lr,
            inner_steps: config.inner_steps,
            eval_inner_steps: config.eval_inner_steps,
            order: Order::first_if(fomaml || config.first_order),
            name: if fomaml { "fomaml" } else { "maml" },
        };
        MetaLearner::adam(method, params, meta_lr)
    }

    /// First or second order.
    pub fn order(&self) -> Order {
        self.method.order
    }

    /// The network.
    pub fn network(&self) -> &Network {
        &self.method.net
    }

    /// The current initialisation `theta`.
    pub fn params(&self) -> &Params<T> {
        &self.meta.params
    }

    /// The mean meta-gradient of a meta-batch at the current `theta` and the step statistics
    /// (without updating): what [`FewShotLearner::meta_train_step`] feeds the optimizer.
    ///
    /// [`FewShotLearner::meta_train_step`]: super::learner::FewShotLearner::meta_train_step
    pub fn meta_gradient(&self, tasks: &[TaskData<T>]) -> MetaGradient<T> {
        let m = &self.method;
        batch_meta_gradient(
            &m.net,
            &self.meta.params,
            tasks,
            m.inner_steps,
            m.inner_lr,
            m.order,
        )
    }
}

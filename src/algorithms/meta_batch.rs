//! A meta-batch's reduction: every task's contribution ([`TaskResult`]) computed in parallel
//! and averaged in task order ([`mean_over_tasks`]), and what a meta-training step reports
//! ([`StepStats`]).

use super::task::Target;
use crate::tensor::{Float, Tensor};

/// What one meta-training step reports.
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct StepStats {
    /// Mean query loss over the meta-batch (before the update).
    pub loss: f64,
    /// Mean query accuracy over the meta-batch (classification), or `NaN` for regression.
    pub accuracy: f64,
    /// Euclidean norm of the meta-gradient (or update direction) of the step, for divergence
    /// checks (0 when the learner does not measure it).
    #[serde(default)]
    pub grad_norm: f64,
}

/// The mean meta-gradient of a meta-batch (one tensor per meta-parameter) and its statistics.
pub type MetaGradient<T> = (Vec<Tensor<T>>, StepStats);

/// One task's contribution to a meta-gradient.
pub struct TaskResult<T: Float> {
    /// The gradient (or update direction), one tensor per meta-parameter.
    pub grads: Vec<Tensor<T>>,
    /// The task's query loss.
    pub loss: f64,
    /// The task's query accuracy (`NaN` for regression).
    pub accuracy: f64,
}

impl<T: Float> TaskResult<T> {
    /// A task's result from its scalar `loss`: `d loss / d wrt`, the loss's value and
    /// `accuracy`.
    pub fn from_loss(loss: &Tensor<T>, wrt: &[Tensor<T>], accuracy: f64) -> Self {
        TaskResult {
            grads: crate::grad(std::slice::from_ref(loss), wrt, false),
            loss: loss.item().as_f64(),
            accuracy,
        }
    }

    /// A task's result from the query prediction `out` against `y`: the gradient of the
    /// query loss with respect to `wrt`, the loss and the accuracy.
    pub fn from_query(out: &Tensor<T>, y: &Target<T>, wrt: &[Tensor<T>]) -> Self {
        Self::from_loss(&y.loss(out), wrt, y.accuracy(out))
    }
}

/// Runs `f` on every task in parallel (rayon) and averages the gradients, losses and
/// accuracies: `(1/B) sum_b f(task_b)`, summed in task order so that the result is
/// bit-identical whatever the thread count. Panics on an empty meta-batch.
///
/// In a run of several ranks ([`crate::dist`]), each rank computes the tasks of its block
/// ([`crate::dist::map_blocks`]), the per-task results are all-gathered, and every rank sums
/// all of them in task order: the result is bit-identical whatever the number of ranks.
pub fn mean_over_tasks<T: Float, D: Sync>(
    tasks: &[D],
    f: impl Fn(&D) -> TaskResult<T> + Sync + Send,
) -> MetaGradient<T> {
    assert!(!tasks.is_empty(), "meta_train_step: empty meta-batch");
    let results = if crate::dist::is_distributed() {
        gathered_results(tasks, f)
    } else {
        run_in_parallel(tasks, 0, f)
    };
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
    let stats = StepStats {
        loss: loss * s,
        accuracy: acc * s,
        grad_norm: 0.0,
    };
    (grads, stats)
}

/// `f` on every task in parallel, the results in task order; `tasks[0]` is task `first` of the
/// meta-batch (its index picks its training noise).
fn run_in_parallel<T: Float, D: Sync>(
    tasks: &[D],
    first: usize,
    f: impl Fn(&D) -> TaskResult<T> + Sync + Send,
) -> Vec<TaskResult<T>> {
    use rayon::prelude::*;
    // Collect in task order, then add up sequentially: the sum is the same whatever the
    // thread count or work-stealing order, so runs are bit-reproducible.
    // Tasks first; ops inside a task split over the workers the tasks leave idle (a batch
    // smaller than the pool, or a last round that does not fill it). Same numbers either way.
    let mode = crate::autodiff::is_grad_enabled();
    let split = crate::tensor::parallel::tasks_leave_workers_idle(tasks.len());
    // Training noise (DropBlock): task `i` draws from `mix(seed, i)` on whichever thread runs it.
    let noise = crate::nn::noise::training_noise_seed();
    tasks
        .par_iter()
        .enumerate()
        .map(|(i, t)| {
            // A rayon thread may run this job while it waits inside another job that set a
            // different recording mode: run with the caller's mode.
            let _mode = crate::autodiff::set_grad_enabled(mode);
            let seed = noise.map(|s| crate::nn::noise::mix(s, (first + i) as u64));
            crate::nn::noise::with_training_noise(seed, || {
                crate::tensor::parallel::with_op_splitting(split, || f(t))
            })
        })
        .collect()
}

/// Every task's result in a run of several ranks: this rank's block computed here, then all
/// blocks gathered (gradients in the tensors' own precision, bit for bit), in task order.
fn gathered_results<T: Float, D: Sync>(
    tasks: &[D],
    f: impl Fn(&D) -> TaskResult<T> + Sync + Send,
) -> Vec<TaskResult<T>> {
    let block = crate::dist::my_block(tasks.len());
    let mine = run_in_parallel(&tasks[block.clone()], block.start, f);
    let shapes = task_shapes(&mine, tasks.len());
    let mut stats = Vec::with_capacity(2 * mine.len());
    let mut values = Vec::new();
    for r in &mine {
        stats.extend([r.loss, r.accuracy]);
        for g in &r.grads {
            values.extend(g.to_vec());
        }
    }
    let stats = crate::dist::gather_in_order_f64(&stats);
    let values = gather_values(&values);
    let per_task: usize = shapes.iter().map(|s| s.iter().product::<usize>()).sum();
    assert_eq!(
        (stats.len(), values.len()),
        (2 * tasks.len(), per_task * tasks.len()),
        "meta-batch gather: the ranks' shares do not add up to the meta-batch"
    );
    (0..tasks.len())
        .map(|b| {
            let mut at = b * per_task;
            let grads = shapes
                .iter()
                .map(|shape| {
                    let n: usize = shape.iter().product();
                    at += n;
                    Tensor::from_vec(values[at - n..at].to_vec(), shape)
                })
                .collect();
            TaskResult {
                grads,
                loss: stats[2 * b],
                accuracy: stats[2 * b + 1],
            }
        })
        .collect()
}

/// The shapes of a task's gradient tensors: from this rank's first result, or from rank 0's
/// (which always has a task) when there are fewer tasks than ranks.
fn task_shapes<T: Float>(mine: &[TaskResult<T>], n_tasks: usize) -> Vec<Vec<usize>> {
    let w = crate::dist::active();
    let local = |r: &TaskResult<T>| r.grads.iter().map(|g| g.shape().to_vec()).collect();
    if n_tasks >= w.size() {
        return local(&mine[0]);
    }
    // Encoded as [count, rank_0, dims_0..., rank_1, dims_1...].
    let mut code = Vec::new();
    if let Some(r) = mine.first() {
        let shapes: Vec<Vec<usize>> = local(r);
        code.push(shapes.len() as f64);
        for s in &shapes {
            code.push(s.len() as f64);
            code.extend(s.iter().map(|&d| d as f64));
        }
    }
    w.broadcast_f64(&mut code, 0);
    let mut it = code.into_iter().map(|x| x as usize);
    let count = it.next().unwrap_or(0);
    (0..count)
        .map(|_| {
            let rank = it.next().unwrap_or(0);
            it.by_ref().take(rank).collect()
        })
        .collect()
}

/// Every rank's `values`, concatenated in rank order, sent in `T`'s own precision (`f32`
/// values as `f32`): conversions are exact, so the numbers arrive bit for bit.
fn gather_values<T: Float>(values: &[T]) -> Vec<T> {
    if T::DTYPE_NAME == "F32" {
        let mine: Vec<f32> = values.iter().map(|v| v.as_f64() as f32).collect();
        crate::dist::gather_in_order_f32(&mine)
            .into_iter()
            .map(|v| T::of(f64::from(v)))
            .collect()
    } else {
        let mine: Vec<f64> = values.iter().map(|v| v.as_f64()).collect();
        crate::dist::gather_in_order_f64(&mine)
            .into_iter()
            .map(T::of)
            .collect()
    }
}

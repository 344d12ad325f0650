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
pub fn mean_over_tasks<T: Float, D: Sync>(
    tasks: &[D],
    f: impl Fn(&D) -> TaskResult<T> + Sync + Send,
) -> MetaGradient<T> {
    assert!(!tasks.is_empty(), "meta_train_step: empty meta-batch");
    let results = run_in_parallel(tasks, f);
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

/// `f` on every task in parallel, the results in task order.
fn run_in_parallel<T: Float, D: Sync>(
    tasks: &[D],
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
            let seed = noise.map(|s| crate::nn::noise::mix(s, i as u64));
            crate::nn::noise::with_training_noise(seed, || {
                crate::tensor::parallel::with_op_splitting(split, || f(t))
            })
        })
        .collect()
}

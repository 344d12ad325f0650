//! The multi-task training loop, evaluation, and single-task baselines.

use super::config::{MtlConfig, MtlData};
use super::diagnostics::{pairs, CosineRecord, EpochRecord, History};
use super::error::MtlError;
use super::model::{metric_name, task_loss, MetricAcc, MultiTaskModel, Owner, Targets};
use super::weighting::{cosine, StepInfo, Weighting};
use crate::autodiff::{grad, grad_with, no_grad, GradOptions};
use crate::nn::optim::{Adam, Optimizer, Sgd};
use crate::nn::Params;
use crate::run::progress::{bar_style, progress_bar};
use crate::run::usage::Stopwatch;
use crate::tensor::Tensor;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// How to train.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// Passes over the data.
    pub epochs: usize,
    /// Examples per step (the last batch holds the remainder).
    pub batch_size: usize,
    /// Learning rate.
    pub lr: f64,
    /// `adam` or `sgd`.
    pub optimizer: String,
    /// Seed of initialisation and shuffling.
    pub seed: u64,
    /// Measure per-task gradient cosines every this many steps (0: only when the method needs
    /// the gradients anyway).
    pub grad_every: usize,
    /// Evaluate on the test set after every epoch (else only after the last).
    pub eval_every_epoch: bool,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// A label for the progress bar.
    pub label: String,
    /// Stop with [`MtlError::Diverged`] when a task's training loss exceeds this (NaN and
    /// infinite losses and test metrics always stop the run).
    pub diverge_loss: f64,
}

impl TrainOptions {
    /// The options of a config's multi-task run: its `[train]` section, seed and
    /// `diagnostics.grad_every`, without a progress bar.
    pub fn from_config(cfg: &MtlConfig) -> Self {
        TrainOptions {
            epochs: cfg.train.epochs,
            batch_size: cfg.train.batch_size,
            lr: cfg.train.lr,
            optimizer: cfg.train.optimizer.clone(),
            seed: cfg.seed,
            grad_every: cfg.diagnostics.grad_every,
            eval_every_epoch: cfg.train.eval_every_epoch,
            progress: false,
            label: String::new(),
            diverge_loss: cfg.train.diverge_loss,
        }
    }
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            epochs: 1,
            batch_size: 64,
            lr: 1e-3,
            optimizer: "adam".into(),
            seed: 0,
            grad_every: 0,
            eval_every_epoch: false,
            progress: false,
            label: String::new(),
            diverge_loss: crate::run::diverge::DEFAULT_DIVERGE_LOSS,
        }
    }
}

/// The first task whose loss (in `losses`, one per task) diverged, and what: NaN, infinite,
/// or above `threshold`.
fn loss_divergence(
    tasks: &[super::model::TaskSpec],
    losses: &[f64],
    threshold: f64,
) -> Option<(String, String)> {
    tasks.iter().zip(losses).find_map(|(t, &l)| {
        crate::run::diverge::loss_divergence("training loss", l, threshold)
            .map(|what| (t.name.clone(), what))
    })
}

/// The first task whose test loss or metric is NaN or infinite, and what.
fn eval_divergence(
    tasks: &[super::model::TaskSpec],
    loss: &[f64],
    metric: &[f64],
) -> Option<(String, String)> {
    tasks
        .iter()
        .zip(loss.iter().zip(metric))
        .find_map(|(t, (&l, &m))| {
            (!(l.is_finite() && m.is_finite())).then(|| {
                (
                    t.name.clone(),
                    format!("test loss {l}, test {} {m}", metric_name(t.kind)),
                )
            })
        })
}

/// The result of [`train`].
#[derive(Clone, Debug)]
pub struct TrainOutcome {
    /// Final parameters.
    pub params: Params<f32>,
    /// Curves and gradient cosines.
    pub history: History,
    /// Final test metric per task.
    pub test_metric: Vec<f64>,
    /// Final test loss per task.
    pub test_loss: Vec<f64>,
    /// Seconds spent in training steps (no evaluation).
    pub train_seconds: f64,
    /// Training examples per second.
    pub samples_per_sec: f64,
}

/// The batch `idx` of `data` as an input tensor and per-task targets (`task_map[k]` is the data
/// column of model task `k`).
pub fn gather(data: &MtlData, idx: &[usize], task_map: &[usize]) -> (Tensor<f32>, Vec<Targets>) {
    let mut shape = vec![idx.len()];
    shape.extend_from_slice(&data.example_shape);
    (
        Tensor::from_vec(data.rows(idx), &shape),
        task_map
            .iter()
            .map(|&c| data.targets[c].gather(idx))
            .collect(),
    )
}

/// What one step computed.
#[derive(Clone, Debug)]
pub struct StepOutput {
    /// The gradient of every parameter.
    pub grads: Vec<Tensor<f32>>,
    /// Per-task losses.
    pub losses: Vec<f64>,
    /// The weights the method returned.
    pub weights: Vec<f64>,
    /// Cosines of the task-gradient pairs on the shared parameters, when measured.
    pub cosines: Option<Vec<f64>>,
}

/// One step's gradients: the per-task losses, the method's combination, and (when the method
/// needs them or `measure` is set) the per-task gradients on the shared parameters.
#[allow(clippy::too_many_arguments)]
pub fn step_gradients(
    model: &dyn MultiTaskModel<f32>,
    owners: &[Owner],
    params: &Params<f32>,
    x: &Tensor<f32>,
    targets: &[Targets],
    weighting: &mut dyn Weighting,
    info_step: (u64, usize),
    measure: bool,
) -> StepOutput {
    let tasks = model.tasks();
    let outs = model.forward(params, x);
    let losses: Vec<Tensor<f32>> = tasks
        .iter()
        .zip(&outs)
        .zip(targets)
        .map(|((t, o), y)| task_loss(t.kind, o, y))
        .collect();
    let lv: Vec<f64> = losses.iter().map(|l| l.item() as f64).collect();
    let (step, epoch) = info_step;
    if !(weighting.needs_grads() || measure) {
        let comb = weighting.combine(&StepInfo {
            losses: &lv,
            grads: None,
            step,
            epoch,
        });
        let total = losses
            .iter()
            .zip(&comb.weights)
            .map(|(l, &w)| if w == 1.0 { l.clone() } else { l.mul_scalar(w) })
            .reduce(|a, b| a.add(&b))
            .expect("at least one task");
        let grads = grad(&[total], params.tensors(), false);
        return StepOutput {
            grads,
            losses: lv,
            weights: comb.weights,
            cosines: None,
        };
    }
    let t = losses.len();
    let per_task: Vec<Vec<Tensor<f32>>> = losses
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let seed = Tensor::ones(&[]);
            grad_with(
                std::slice::from_ref(l),
                &[seed],
                params.tensors(),
                GradOptions {
                    create_graph: false,
                    retain_graph: i + 1 < t,
                },
            )
        })
        .collect();
    let shared: Vec<usize> = (0..owners.len())
        .filter(|&p| owners[p] == Owner::Shared)
        .collect();
    let flat: Vec<Vec<f64>> = per_task
        .iter()
        .map(|g| {
            shared
                .iter()
                .flat_map(|&p| g[p].data().iter().map(|&v| v as f64))
                .collect()
        })
        .collect();
    let comb = weighting.combine(&StepInfo {
        losses: &lv,
        grads: Some(&flat),
        step,
        epoch,
    });
    let shared_grad = comb.shared_grad(&flat);
    let cosines = pairs(t)
        .into_iter()
        .map(|(i, j)| cosine(&flat[i], &flat[j]))
        .collect();
    let mut grads: Vec<Tensor<f32>> = Vec::with_capacity(owners.len());
    let mut off = 0;
    for (p, owner) in owners.iter().enumerate() {
        let shape = params.at(p).shape();
        match owner {
            Owner::Shared => {
                let n: usize = shape.iter().product();
                grads.push(Tensor::from_vec(
                    shared_grad[off..off + n]
                        .iter()
                        .map(|&v| v as f32)
                        .collect(),
                    shape,
                ));
                off += n;
            }
            Owner::Task(_) => {
                let mut acc = vec![0f32; params.at(p).numel()];
                for (g, &w) in per_task.iter().zip(&comb.weights) {
                    for (a, &v) in acc.iter_mut().zip(g[p].data()) {
                        *a += w as f32 * v;
                    }
                }
                grads.push(Tensor::from_vec(acc, shape));
            }
        }
    }
    StepOutput {
        grads,
        losses: lv,
        weights: comb.weights,
        cosines: Some(cosines),
    }
}

/// Test loss and metric per task, in batches of 1000 without recording gradients.
pub fn evaluate(
    model: &dyn MultiTaskModel<f32>,
    params: &Params<f32>,
    data: &MtlData,
    task_map: &[usize],
) -> (Vec<f64>, Vec<f64>) {
    let tasks = model.tasks();
    let mut accs = vec![MetricAcc::default(); tasks.len()];
    let mut loss = vec![0.0; tasks.len()];
    no_grad(|| {
        let idx: Vec<usize> = (0..data.n).collect();
        for chunk in idx.chunks(1000) {
            let (x, ys) = gather(data, chunk, task_map);
            let outs = model.forward(params, &x);
            for (k, t) in tasks.iter().enumerate() {
                accs[k].add(t.kind, &outs[k], &ys[k]);
                loss[k] += task_loss(t.kind, &outs[k], &ys[k]).item() as f64 * chunk.len() as f64;
            }
        }
    });
    let n = data.n.max(1) as f64;
    (
        loss.iter().map(|l| l / n).collect(),
        accs.iter()
            .zip(tasks)
            .map(|(a, t)| a.value(t.kind))
            .collect(),
    )
}

/// Trains `model` on `train` with `weighting`, evaluating on `test`. `task_map[k]` is the data
/// column of model task `k`. Every step's task losses and every evaluation's losses and
/// metrics are checked: a NaN or infinite value, or a loss above `opts.diverge_loss`, stops
/// with [`MtlError::Diverged`].
pub fn train(
    model: &dyn MultiTaskModel<f32>,
    weighting: &mut dyn Weighting,
    train: &MtlData,
    test: &MtlData,
    task_map: &[usize],
    opts: &TrainOptions,
) -> Result<TrainOutcome, MtlError> {
    let tasks = model.tasks();
    let t = tasks.len();
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut params = model.init(&mut rng).requires_grad_();
    let owners = model.owners();
    let mut opt: Box<dyn Optimizer<f32>> = match opts.optimizer.as_str() {
        "sgd" => Box::new(Sgd::new(opts.lr)),
        _ => Box::new(Adam::new(opts.lr)),
    };
    let mut history = History::new(
        tasks.iter().map(|t| t.name.clone()).collect(),
        tasks
            .iter()
            .map(|t| metric_name(t.kind).to_string())
            .collect(),
    );
    let steps_per_epoch = train.n.div_ceil(opts.batch_size);
    let bar = progress_bar(
        opts.progress,
        (steps_per_epoch * opts.epochs) as u64,
        bar_style("{prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}").progress_chars("=> "),
    );
    let mut order: Vec<usize> = (0..train.n).collect();
    let mut step: u64 = 0;
    let mut train_seconds = 0.0;
    let (mut test_loss, mut test_metric) = (Vec::new(), Vec::new());
    for epoch in 0..opts.epochs {
        order.shuffle(&mut rng);
        bar.set_prefix(format!("{}epoch {}/{}", opts.label, epoch + 1, opts.epochs));
        let clock = Stopwatch::start();
        let mut loss_sum = vec![0.0; t];
        let mut w_sum = vec![0.0; t];
        let mut cos_sum = vec![0.0; pairs(t).len()];
        let mut cos_n = 0usize;
        for (b, idx) in order.chunks(opts.batch_size).enumerate() {
            let (x, ys) = gather(train, idx, task_map);
            let measure = opts.grad_every > 0 && step % opts.grad_every as u64 == 0 && t > 1;
            let out = step_gradients(
                model,
                &owners,
                &params,
                &x,
                &ys,
                weighting,
                (step, epoch),
                measure,
            );
            if let Some((task, what)) = loss_divergence(tasks, &out.losses, opts.diverge_loss) {
                bar.abandon();
                return Err(MtlError::Diverged {
                    iteration: step + 1,
                    task,
                    what,
                });
            }
            params = opt.step(&params, &out.grads);
            for k in 0..t {
                loss_sum[k] += out.losses[k];
                w_sum[k] += out.weights[k];
            }
            if let Some(c) = &out.cosines {
                if measure || opts.grad_every == 0 || step % opts.grad_every.max(1) as u64 == 0 {
                    history.cosines.push(CosineRecord {
                        step,
                        cosine: c.clone(),
                    });
                    for (s, v) in cos_sum.iter_mut().zip(c) {
                        *s += v;
                    }
                    cos_n += 1;
                }
            }
            step += 1;
            bar.inc(1);
            if b % 25 == 0 {
                let msg: Vec<String> = tasks
                    .iter()
                    .zip(&out.losses)
                    .map(|(t, l)| format!("{} {l:.4}", t.name))
                    .collect();
                bar.set_message(msg.join("  "));
            }
        }
        let secs = clock.seconds();
        train_seconds += secs;
        let nb = steps_per_epoch.max(1) as f64;
        let mean_loss: Vec<f64> = loss_sum.iter().map(|s| s / nb).collect();
        weighting.end_epoch(&mean_loss);
        let last = epoch + 1 == opts.epochs;
        if opts.eval_every_epoch || last {
            (test_loss, test_metric) = evaluate(model, &params, test, task_map);
            if let Some((task, what)) = eval_divergence(tasks, &test_loss, &test_metric) {
                bar.abandon();
                return Err(MtlError::Diverged {
                    iteration: step,
                    task,
                    what,
                });
            }
        }
        history.epochs.push(EpochRecord {
            epoch: epoch + 1,
            train_loss: mean_loss,
            test_loss: if opts.eval_every_epoch || last {
                test_loss.clone()
            } else {
                Vec::new()
            },
            test_metric: if opts.eval_every_epoch || last {
                test_metric.clone()
            } else {
                Vec::new()
            },
            mean_weight: w_sum.iter().map(|s| s / nb).collect(),
            mean_cosine: if cos_n > 0 {
                cos_sum.iter().map(|s| s / cos_n as f64).collect()
            } else {
                Vec::new()
            },
            seconds: secs,
        });
    }
    bar.finish_and_clear();
    Ok(TrainOutcome {
        params,
        history,
        test_metric,
        test_loss,
        train_seconds,
        samples_per_sec: (train.n * opts.epochs) as f64 / train_seconds.max(1e-9),
    })
}

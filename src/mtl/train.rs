//! The multi-task training loop, evaluation, and single-task baselines.

use super::config::{MtlConfig, MtlData};
use super::diagnostics::{pairs, CosineRecord, EpochRecord, FallbackRecord, History};
use super::error::MtlError;
use super::model::{metric_name, task_loss, MetricAcc, MultiTaskModel, Owner, TaskTargets};
use super::weighting::{gram, gram_cosine, Combined, StepInfo, Weighting};
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
    /// Where the per-task gradients a method sees are taken ([`GramianOn`]).
    pub gramian: GramianOn,
}

/// Where the per-task gradients (and their Gramian) of the gradient-based methods are taken.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GramianOn {
    /// The shared parameters (exact; one backward pass through the whole network per task).
    #[default]
    Parameters,
    /// The shared representation `z` every head reads (hard sharing only; other models use
    /// the parameters): the task gradients `dL_i/dz` need backward passes through the heads
    /// only, the method combines them into a direction `d_z` in `z`'s space, and one backward
    /// pass of `d_z` through the trunk gives the shared parameters' update (LibMTL's
    /// `rep_grad`; for a weighting `w` this is exactly the trunk gradient of `sum_i w_i L_i`,
    /// with `w` computed from the representation's Gramian instead of the parameters' —
    /// Sener & Koltun's MGDA-UB bound). Costs about one equal-weighting step.
    Representation,
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
            gramian: cfg.train.gramian,
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
            gramian: GramianOn::Parameters,
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
pub fn gather(
    data: &MtlData,
    idx: &[usize],
    task_map: &[usize],
) -> (Tensor<f32>, Vec<TaskTargets>) {
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
    /// Why the method's solver failed and the step used the mean direction, if it did.
    pub fallback: Option<String>,
}

/// One step's gradients: the per-task losses, the method's combination, and (when the method
/// needs them or `measure` is set) the per-task gradients on the shared parameters, their
/// Gramian (computed once, for the method and the pairwise cosines).
#[allow(clippy::too_many_arguments)]
pub fn step_gradients(
    model: &dyn MultiTaskModel<f32>,
    owners: &[Owner],
    params: &Params<f32>,
    x: &Tensor<f32>,
    targets: &[TaskTargets],
    weighting: &mut dyn Weighting,
    info_step: (u64, usize),
    measure: bool,
) -> StepOutput {
    step_gradients_on(
        model,
        owners,
        params,
        (x, targets),
        weighting,
        info_step,
        measure,
        GramianOn::Parameters,
    )
}

/// [`step_gradients`] with the per-task gradients taken where `on` says: on the shared
/// representation ([`GramianOn::Representation`]) when the method needs gradients (or
/// `measure` is set) and the model has a single shared representation, else on the shared
/// parameters. `batch` is the input and the per-task targets.
#[allow(clippy::too_many_arguments)]
pub fn step_gradients_on(
    model: &dyn MultiTaskModel<f32>,
    owners: &[Owner],
    params: &Params<f32>,
    batch: (&Tensor<f32>, &[TaskTargets]),
    weighting: &mut dyn Weighting,
    info_step: (u64, usize),
    measure: bool,
    on: GramianOn,
) -> StepOutput {
    let (x, targets) = batch;
    let wants_grads = weighting.needs_grads() || measure;
    if on == GramianOn::Representation && wants_grads {
        if let Some((z, outs)) = model.forward_shared(params, x) {
            return representation_step(
                model,
                owners,
                params,
                (z, outs),
                targets,
                weighting,
                info_step,
            );
        }
    }
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
            gramian: None,
            step,
            epoch,
        });
        let grads = weighted_loss_gradients(&losses, &comb.weights, params);
        return StepOutput {
            grads,
            losses: lv,
            weights: comb.weights,
            cosines: None,
            fallback: comb.fallback,
        };
    }
    let per_task = per_task_gradients(&losses, params);
    combine_step(owners, params, &per_task, lv, weighting, info_step)
}

/// A step's output from every task's gradient (`per_task`) and loss (`lv`): the method's
/// combination on the Gramian of the shared gradients, and the pairwise cosines.
fn combine_step(
    owners: &[Owner],
    params: &Params<f32>,
    per_task: &[Vec<Tensor<f32>>],
    lv: Vec<f64>,
    weighting: &mut dyn Weighting,
    (step, epoch): (u64, usize),
) -> StepOutput {
    let flat = shared_gradients(per_task, owners);
    let (comb, cosines) = weigh(weighting, &flat, &lv, (step, epoch));
    let shared_grad = comb.shared_grad(&flat);
    StepOutput {
        grads: combine_gradients(owners, params, per_task, &comb.weights, &shared_grad),
        losses: lv,
        weights: comb.weights,
        cosines: Some(cosines),
        fallback: comb.fallback,
    }
}

/// The method's combination of one step from the flat task gradients `flat` and losses `lv`,
/// with the Gramian computed once (for the method and for the pairwise cosines, also returned).
fn weigh(
    weighting: &mut dyn Weighting,
    flat: &[Vec<f64>],
    lv: &[f64],
    (step, epoch): (u64, usize),
) -> (Combined, Vec<f64>) {
    let gramian = gram(flat);
    let comb = weighting.combine(&StepInfo {
        losses: lv,
        grads: Some(flat),
        gramian: Some(&gramian),
        step,
        epoch,
    });
    let cosines = pairs(lv.len())
        .into_iter()
        .map(|(i, j)| gram_cosine(&gramian, i, j))
        .collect();
    (comb, cosines)
}

/// The step of [`GramianOn::Representation`] from the shared representation `z` and the task
/// outputs: per-task gradients `dL_i/dz` through the heads only, the method's direction `d_z`
/// from them (and their Gramian), then the heads' gradients of `sum_i w_i L_i` (heads only) and
/// one backward pass of `d_z` through the trunk.
fn representation_step(
    model: &dyn MultiTaskModel<f32>,
    owners: &[Owner],
    params: &Params<f32>,
    (z, outs): (Tensor<f32>, Vec<Tensor<f32>>),
    targets: &[TaskTargets],
    weighting: &mut dyn Weighting,
    (step, epoch): (u64, usize),
) -> StepOutput {
    let losses: Vec<Tensor<f32>> = model
        .tasks()
        .iter()
        .zip(&outs)
        .zip(targets)
        .map(|((t, o), y)| task_loss(t.kind, o, y))
        .collect();
    let lv: Vec<f64> = losses.iter().map(|l| l.item() as f64).collect();
    let retain = GradOptions {
        create_graph: false,
        retain_graph: true,
    };
    let flat: Vec<Vec<f64>> = losses
        .iter()
        .map(|l| {
            let g = grad_with(
                std::slice::from_ref(l),
                &[Tensor::ones(&[])],
                std::slice::from_ref(&z),
                retain,
            );
            g[0].data().iter().map(|&v| v as f64).collect()
        })
        .collect();
    let (comb, cosines) = weigh(weighting, &flat, &lv, (step, epoch));
    let dz = comb.shared_grad(&flat);
    let all = params.tensors();
    let pick = |shared: bool| -> Vec<Tensor<f32>> {
        all.iter()
            .zip(owners)
            .filter(|(_, o)| (**o == Owner::Shared) == shared)
            .map(|(t, _)| t.clone())
            .collect()
    };
    let seeds: Vec<Tensor<f32>> = comb
        .weights
        .iter()
        .map(|&w| Tensor::from_vec(vec![w as f32], &[]))
        .collect();
    let mut heads = grad_with(&losses, &seeds, &pick(false), retain).into_iter();
    let cot = Tensor::from_vec(dz.iter().map(|&v| v as f32).collect(), z.shape());
    let no_retain = GradOptions {
        create_graph: false,
        retain_graph: false,
    };
    let mut trunk = grad_with(&[z], &[cot], &pick(true), no_retain).into_iter();
    let grads = owners
        .iter()
        .map(|o| {
            match o {
                Owner::Shared => trunk.next(),
                Owner::Task(_) => heads.next(),
            }
            .expect("one gradient per parameter")
        })
        .collect();
    StepOutput {
        grads,
        losses: lv,
        weights: comb.weights,
        cosines: Some(cosines),
        fallback: comb.fallback,
    }
}

/// The gradient of the weighted sum of the task losses, in one backward pass.
fn weighted_loss_gradients(
    losses: &[Tensor<f32>],
    weights: &[f64],
    params: &Params<f32>,
) -> Vec<Tensor<f32>> {
    let total = losses
        .iter()
        .zip(weights)
        .map(|(l, &w)| if w == 1.0 { l.clone() } else { l.mul_scalar(w) })
        .reduce(|a, b| a.add(&b))
        .expect("at least one task");
    grad(&[total], params.tensors(), false)
}

/// Every task loss's gradient of every parameter, through one retained graph.
fn per_task_gradients(losses: &[Tensor<f32>], params: &Params<f32>) -> Vec<Vec<Tensor<f32>>> {
    let t = losses.len();
    losses
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
        .collect()
}

/// Each task's gradient on the shared parameters, flattened in parameter order.
fn shared_gradients(per_task: &[Vec<Tensor<f32>>], owners: &[Owner]) -> Vec<Vec<f64>> {
    let shared: Vec<usize> = (0..owners.len())
        .filter(|&p| owners[p] == Owner::Shared)
        .collect();
    per_task
        .iter()
        .map(|g| {
            shared
                .iter()
                .flat_map(|&p| g[p].data().iter().map(|&v| v as f64))
                .collect()
        })
        .collect()
}

/// The step's gradient of every parameter: the method's aggregate `shared_grad` on the shared
/// parameters, the weighted sum of the task gradients on each task's own.
fn combine_gradients(
    owners: &[Owner],
    params: &Params<f32>,
    per_task: &[Vec<Tensor<f32>>],
    weights: &[f64],
    shared_grad: &[f64],
) -> Vec<Tensor<f32>> {
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
                for (g, &w) in per_task.iter().zip(weights) {
                    for (a, &v) in acc.iter_mut().zip(g[p].data()) {
                        *a += w as f32 * v;
                    }
                }
                grads.push(Tensor::from_vec(acc, shape));
            }
        }
    }
    grads
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

/// The sums of one epoch's steps: per task loss and weight, per task pair gradient cosine.
struct EpochSums {
    loss: Vec<f64>,
    weight: Vec<f64>,
    cosine: Vec<f64>,
    /// Steps whose cosines were summed.
    cosines: usize,
}

/// What a training run carries from step to step.
struct TrainRun<'a> {
    model: &'a dyn MultiTaskModel<f32>,
    owners: Vec<Owner>,
    data: &'a MtlData,
    task_map: &'a [usize],
    opts: &'a TrainOptions,
    params: Params<f32>,
    opt: Box<dyn Optimizer<f32>>,
    rng: ChaCha8Rng,
    /// Steps done.
    step: u64,
    history: History,
    bar: indicatif::ProgressBar,
}

impl<'a> TrainRun<'a> {
    /// Initialises the parameters (from `opts.seed`), the optimizer, the history and the bar.
    fn new(
        model: &'a dyn MultiTaskModel<f32>,
        data: &'a MtlData,
        task_map: &'a [usize],
        opts: &'a TrainOptions,
    ) -> Self {
        let tasks = model.tasks();
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        let params = model.init(&mut rng).requires_grad_();
        let opt: Box<dyn Optimizer<f32>> = match opts.optimizer.as_str() {
            "sgd" => Box::new(Sgd::new(opts.lr)),
            _ => Box::new(Adam::new(opts.lr)),
        };
        let history = History::new(
            tasks.iter().map(|t| t.name.clone()).collect(),
            tasks
                .iter()
                .map(|t| metric_name(t.kind).to_string())
                .collect(),
        );
        let bar = progress_bar(
            opts.progress,
            (data.n.div_ceil(opts.batch_size) * opts.epochs) as u64,
            bar_style("{prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}").progress_chars("=> "),
        );
        TrainRun {
            model,
            owners: model.owners(),
            data,
            task_map,
            opts,
            params,
            opt,
            rng,
            step: 0,
            history,
            bar,
        }
    }

    /// One pass over `order` in batches: a step per batch, its divergence check and sums.
    fn epoch(
        &mut self,
        weighting: &mut dyn Weighting,
        order: &[usize],
        epoch: usize,
    ) -> Result<EpochSums, MtlError> {
        let t = self.model.tasks().len();
        let mut sums = EpochSums {
            loss: vec![0.0; t],
            weight: vec![0.0; t],
            cosine: vec![0.0; pairs(t).len()],
            cosines: 0,
        };
        for (b, idx) in order.chunks(self.opts.batch_size).enumerate() {
            let losses = self.step(weighting, idx, epoch, &mut sums)?;
            self.bar.inc(1);
            if b % 25 == 0 {
                let msg: Vec<String> = self
                    .model
                    .tasks()
                    .iter()
                    .zip(&losses)
                    .map(|(t, l)| format!("{} {l:.4}", t.name))
                    .collect();
                self.bar.set_message(msg.join("  "));
            }
        }
        Ok(sums)
    }

    /// One optimizer step on the batch `idx`, added to `sums`; returns the task losses. A method
    /// that asks ([`Weighting::needs_losses_after_step`]) then gets the batch's task losses at
    /// the new parameters ([`Weighting::after_step`]).
    fn step(
        &mut self,
        weighting: &mut dyn Weighting,
        idx: &[usize],
        epoch: usize,
        sums: &mut EpochSums,
    ) -> Result<Vec<f64>, MtlError> {
        let (opts, step) = (self.opts, self.step);
        let tasks = self.model.tasks();
        let measure = opts.grad_every > 0 && step % opts.grad_every as u64 == 0 && tasks.len() > 1;
        let out = if crate::dist::is_distributed() {
            self.shared_step(weighting, idx, (step, epoch), measure)
        } else {
            let (x, ys) = gather(self.data, idx, self.task_map);
            step_gradients_on(
                self.model,
                &self.owners,
                &self.params,
                (&x, &ys),
                weighting,
                (step, epoch),
                measure,
                opts.gramian,
            )
        };
        if let Some((task, what)) = loss_divergence(tasks, &out.losses, opts.diverge_loss) {
            return Err(MtlError::Diverged {
                iteration: step + 1,
                task,
                what,
            });
        }
        self.params = self.opt.step(&self.params, &out.grads);
        if weighting.needs_losses_after_step() {
            // FAMO: the same batch's task losses at the new parameters (a forward pass only).
            let (x, ys) = gather(self.data, idx, self.task_map);
            let new: Vec<f64> = no_grad(|| {
                let outs = self.model.forward(&self.params, &x);
                (tasks.iter().zip(&outs).zip(&ys))
                    .map(|((t, o), y)| task_loss(t.kind, o, y).item() as f64)
                    .collect()
            });
            weighting.after_step(&new);
        }
        if let Some(why) = out.fallback {
            self.history.fallbacks.push(FallbackRecord { step, why });
        }
        for k in 0..tasks.len() {
            sums.loss[k] += out.losses[k];
            sums.weight[k] += out.weights[k];
        }
        if let Some(c) = &out.cosines {
            if measure || opts.grad_every == 0 || step % opts.grad_every.max(1) as u64 == 0 {
                self.history.cosines.push(CosineRecord {
                    step,
                    cosine: c.clone(),
                });
                for (s, v) in sums.cosine.iter_mut().zip(c) {
                    *s += v;
                }
                sums.cosines += 1;
            }
        }
        self.step += 1;
        Ok(out.losses)
    }
}

impl TrainRun<'_> {
    /// [`step_gradients`] with the batch `idx` split over the ranks of the run
    /// ([`crate::dist::map_blocks`]): each rank computes every task's loss and gradient on its
    /// share of the examples, weighted by the share's size (a loss is a mean over examples),
    /// and the sums over the ranks, in rank order, are the batch's losses and gradients on
    /// every rank (equal to one process's up to float rounding). A rank with no example of a
    /// short last batch adds zeros.
    fn shared_step(
        &self,
        weighting: &mut dyn Weighting,
        idx: &[usize],
        info_step: (u64, usize),
        measure: bool,
    ) -> StepOutput {
        let (model, params) = (self.model, &self.params);
        let t = model.tasks().len();
        let block = crate::dist::my_block(idx.len());
        let share = block.len() as f64 / idx.len().max(1) as f64;
        let mut local = vec![0.0; t];
        let mut values: Vec<f32> = Vec::new();
        if block.is_empty() {
            values.resize(
                t * params.tensors().iter().map(|p| p.numel()).sum::<usize>(),
                0.0,
            );
        } else {
            let (x, ys) = gather(self.data, &idx[block], self.task_map);
            let outs = model.forward(params, &x);
            let losses: Vec<Tensor<f32>> = model
                .tasks()
                .iter()
                .zip(&outs)
                .zip(&ys)
                .map(|((task, o), y)| task_loss(task.kind, o, y))
                .collect();
            for (l, tl) in local.iter_mut().zip(&losses) {
                *l = tl.item() as f64 * share;
            }
            for g in per_task_gradients(&losses, params).iter().flatten() {
                values.extend(g.data().iter().map(|&v| (v as f64 * share) as f32));
            }
        }
        let lv = sum_over_ranks(&crate::dist::active().all_gather_f64(&local));
        let per_task = summed_task_gradients(params, t, &values);
        if weighting.needs_grads() || measure {
            return combine_step(&self.owners, params, &per_task, lv, weighting, info_step);
        }
        let comb = weighting.combine(&StepInfo {
            losses: &lv,
            grads: None,
            gramian: None,
            step: info_step.0,
            epoch: info_step.1,
        });
        let grads = (0..params.len())
            .map(|p| {
                let mut acc = vec![0f32; params.at(p).numel()];
                for (g, &w) in per_task.iter().zip(&comb.weights) {
                    for (a, &v) in acc.iter_mut().zip(g[p].data()) {
                        *a += w as f32 * v;
                    }
                }
                Tensor::from_vec(acc, params.at(p).shape())
            })
            .collect();
        StepOutput {
            grads,
            losses: lv,
            weights: comb.weights,
            cosines: None,
            fallback: comb.fallback,
        }
    }
}

/// Every task's gradient of every parameter, summed over the ranks (in rank order) from each
/// rank's `values` (task after task, parameter after parameter, flattened).
fn summed_task_gradients(
    params: &Params<f32>,
    tasks: usize,
    values: &[f32],
) -> Vec<Vec<Tensor<f32>>> {
    let all = crate::dist::active().all_gather_f32(values);
    let wide: Vec<Vec<f64>> = all
        .iter()
        .map(|v| v.iter().map(|&x| f64::from(x)).collect())
        .collect();
    let total = sum_over_ranks(&wide);
    let mut at = 0;
    (0..tasks)
        .map(|_| {
            params
                .tensors()
                .iter()
                .map(|p| {
                    let n = p.numel();
                    at += n;
                    let v = total[at - n..at].iter().map(|&x| x as f32).collect();
                    Tensor::from_vec(v, p.shape())
                })
                .collect()
        })
        .collect()
}

/// The element-wise sum of every rank's buffer (all of one length), added in rank order.
fn sum_over_ranks(per_rank: &[Vec<f64>]) -> Vec<f64> {
    let mut total = vec![0.0; per_rank.first().map_or(0, Vec::len)];
    for v in per_rank {
        assert_eq!(v.len(), total.len(), "a rank sent a share of another size");
        for (t, x) in total.iter_mut().zip(v) {
            *t += x;
        }
    }
    total
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
    let mut run = TrainRun::new(model, train, task_map, opts);
    let steps_per_epoch = train.n.div_ceil(opts.batch_size);
    let mut order: Vec<usize> = (0..train.n).collect();
    let mut train_seconds = 0.0;
    let (mut test_loss, mut test_metric) = (Vec::new(), Vec::new());
    for epoch in 0..opts.epochs {
        order.shuffle(&mut run.rng);
        run.bar
            .set_prefix(format!("{}epoch {}/{}", opts.label, epoch + 1, opts.epochs));
        let clock = Stopwatch::start();
        let sums = run
            .epoch(weighting, &order, epoch)
            .inspect_err(|_| run.bar.abandon())?;
        let secs = clock.seconds();
        train_seconds += secs;
        let nb = steps_per_epoch.max(1) as f64;
        let mean_loss: Vec<f64> = sums.loss.iter().map(|s| s / nb).collect();
        weighting.end_epoch(&mean_loss);
        let evaluated = opts.eval_every_epoch || epoch + 1 == opts.epochs;
        if evaluated {
            (test_loss, test_metric) = evaluate(model, &run.params, test, task_map);
            if let Some((task, what)) = eval_divergence(model.tasks(), &test_loss, &test_metric) {
                run.bar.abandon();
                return Err(MtlError::Diverged {
                    iteration: run.step,
                    task,
                    what,
                });
            }
        }
        let when_evaluated = |v: &Vec<f64>| if evaluated { v.clone() } else { Vec::new() };
        run.history.epochs.push(EpochRecord {
            epoch: epoch + 1,
            train_loss: mean_loss,
            test_loss: when_evaluated(&test_loss),
            test_metric: when_evaluated(&test_metric),
            mean_weight: sums.weight.iter().map(|s| s / nb).collect(),
            mean_cosine: if sums.cosines > 0 {
                sums.cosine
                    .iter()
                    .map(|s| s / sums.cosines as f64)
                    .collect()
            } else {
                Vec::new()
            },
            seconds: secs,
        });
    }
    run.bar.finish_and_clear();
    Ok(TrainOutcome {
        params: run.params,
        history: run.history,
        test_metric,
        test_loss,
        train_seconds,
        samples_per_sec: (train.n * opts.epochs) as f64 / train_seconds.max(1e-9),
    })
}

//! Baseline and Baseline++ (Chen, Liu, Kira, Wang & Huang 2019, "A Closer Look at Few-shot
//! Classification"): train a backbone as an ordinary classifier of the base classes, then, for
//! each new task, freeze it and fit a new head on the support features. Baseline's heads are
//! linear; Baseline++'s are cosine classifiers `scale * cos(z, w_c)`.
//!
//! Training is one of two kinds, chosen by the config:
//! - with `base_classes` set, the paper's **base-class pre-training**: the backbone and a
//!   global head over `base_classes` classes are trained by cross-entropy on batches labelled
//!   by their dataset classes. In `metalearn train` each training episode is such a batch: its
//!   support and query images, labelled by [`TaskData::classes`] (the training split's class
//!   ids; `base_classes` must be at least the split's number of classes). Library code can
//!   also call [`Baseline::pretrain_step`] on any batch with global labels.
//! - without it, **episodic training** with the same head as at test time: per task, a new
//!   head is initialised from the support features (imprinting, see below), fine-tuned on the
//!   support set exactly as in `predict`, and the query loss is back-propagated to the backbone
//!   through the imprinted head and the query features; the fine-tuning delta is a constant
//!   (first order).
//!
//! Either way, validation and testing fit a new head on each task's support features.
//!
//! The new head is initialised by imprinting rather than randomly, so that predictions are
//! deterministic: Baseline `W = 2 mu_c`, `b = -||mu_c||^2` (the linear head that equals
//! ProtoNet's classifier), Baseline++ `w_c = mu_c`, with `mu_c` the support class means. It is
//! then fine-tuned with Chen et al.'s SGD (momentum 0.9, dampening 0.9, weight decay 1e-3) for
//! `finetune_steps` full-batch steps. Support and query are embedded in one batch.
//!
//! State names: `param/...` (backbone), `head/weight`, `head/bias` (global head, when
//! `base_classes` is set; Baseline++ has no bias), `opt/...`.

use super::algorithm::{Algorithm, Learner, LearnerParts};
use super::checks::{ParamCheck, MAX_CLASSES, MAX_FINETUNE_STEPS};
use super::classes::{accuracy, class_means, num_classes};
use super::error::AlgorithmError;
use super::learner::{MetaLearner, Method};
use super::meta_batch::{mean_over_tasks, MetaGradient, StepStats, TaskResult};
use super::metric::{cosine_similarities, embed_both};
use super::task::{Target, TaskData};
use crate::nn::init::{kaiming_uniform, push_weight_and_bias};
use crate::nn::optim::{Optimizer, Sgd};
use crate::nn::{Backbone, Body, Params};
use crate::tensor::{Float, Tensor};
use serde::{Deserialize, Serialize};

/// Baseline / Baseline++: a new head (linear, or cosine for Baseline++) trained on the support
/// features of a frozen backbone. Defaults from Chen et al.'s code: SGD, lr 0.01, momentum 0.9,
/// dampening 0.9, weight decay 1e-3, 100 iterations; cosine scale 2 for up to 200 classes and 10
/// beyond (when `scale` is unset).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BaselineConfig {
    /// Fine-tuning iterations on the support set (100).
    pub finetune_steps: usize,
    /// Fine-tuning learning rate (0.01).
    pub finetune_lr: f64,
    /// Cosine scale of Baseline++ (unset: 2 up to 200 classes, else 10). Ignored by Baseline.
    pub scale: Option<f64>,
    /// Size of the global classifier of base-class pre-training (at least the number of
    /// training classes); set, `train` pre-trains (Chen et al.), unset, it trains episodically.
    pub base_classes: Option<usize>,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        BaselineConfig {
            finetune_steps: 100,
            finetune_lr: 0.01,
            scale: None,
            base_classes: None,
        }
    }
}

impl BaselineConfig {
    /// `finetune_lr` in (0, 100], `finetune_steps` in [1, 100000], `scale` (when set) in
    /// (0, 1e6], `base_classes` (when set) in [1, 1000000].
    pub fn validate(&self, algorithm: &'static str) -> Result<(), AlgorithmError> {
        let check = ParamCheck::new(algorithm);
        check.step_size("finetune_lr", self.finetune_lr)?;
        let reason = "must be at least 1 and at most 100000";
        check.count(
            "finetune_steps",
            self.finetune_steps,
            MAX_FINETUNE_STEPS,
            reason,
        )?;
        if let Some(s) = self.scale {
            check.scale("scale", s)?;
        }
        if let Some(b) = self.base_classes {
            let reason = "must be an integer in [1, 1000000] when set";
            check.count("base_classes", b, MAX_CLASSES, reason)?;
        }
        Ok(())
    }
}

/// Baseline (`COSINE = false`: linear heads) and Baseline++ (`true`: cosine heads) in the
/// algorithm table: classification only, heads fitted per task, one [`BaselineConfig`].
pub struct BaselineFamily<const COSINE: bool>;

/// Baseline in the algorithm table.
pub type BaselineAlgorithm = BaselineFamily<false>;

/// Baseline++ in the algorithm table.
pub type BaselinePpAlgorithm = BaselineFamily<true>;

impl<const COSINE: bool> Algorithm for BaselineFamily<COSINE> {
    type Config = BaselineConfig;
    const NAME: &'static str = if COSINE { "baseline_pp" } else { "baseline" };
    const CLASSIFIES_ONLY: Option<&'static str> =
        Some("its heads are classifiers pre-trained on base classes");

    fn validate(config: &BaselineConfig) -> Result<(), AlgorithmError> {
        config.validate(Self::NAME)
    }

    /// Pre-training labels every image with its training class: `base_classes` must cover
    /// them all.
    fn check_training_classes(c: &BaselineConfig, classes: usize) -> Result<(), AlgorithmError> {
        match c.base_classes {
            Some(b) if b < classes => Err(AlgorithmError::InvalidOutputs {
                algorithm: Self::NAME,
                what: "base_classes (the number of classes of the training split)",
                min: classes,
                got: b,
            }),
            _ => Ok(()),
        }
    }

    fn build<T: Float, B: Backbone>(c: &BaselineConfig, p: LearnerParts<B>) -> Learner<T> {
        Box::new(Baseline::<T, B>::new(c, COSINE, p.body, p.meta_lr, p.rng))
    }
}

/// Baseline / Baseline++: the backbone and the new heads' settings.
pub struct BaselineMethod<B = Body> {
    body: B,
    n_body: usize,
    cosine: bool,
    config: BaselineConfig,
}

/// The Baseline / Baseline++ learner.
pub type Baseline<T, B = Body> = MetaLearner<T, BaselineMethod<B>>;

impl<T: Float, B: Backbone> Baseline<T, B> {
    /// A learner with a fresh backbone (and a global head when `config.base_classes` is set);
    /// `cosine` selects Baseline++.
    pub fn new(
        config: &BaselineConfig,
        cosine: bool,
        body: B,
        meta_lr: f64,
        rng: &mut dyn rand::RngCore,
    ) -> Self {
        let mut params = body.init_params::<T>(rng).prefixed("param/");
        let n_body = params.len();
        if let Some(b) = config.base_classes {
            let d = body.feature_dim();
            if cosine {
                params.push("head/weight", kaiming_uniform(&[b, d], d, rng));
            } else {
                push_weight_and_bias(&mut params, "head/", &[b, d], rng);
            }
        }
        let method = BaselineMethod {
            body,
            n_body,
            cosine,
            config: config.clone(),
        };
        MetaLearner::adam(method, params, meta_lr)
    }

    /// One pre-training step on base classes: cross-entropy of the backbone and the global
    /// head on a batch `x` with global labels in `0..base_classes`. Errors unless the config
    /// set `base_classes`.
    pub fn pretrain_step(
        &mut self,
        x: &Tensor<T>,
        labels: &[usize],
    ) -> Result<StepStats, AlgorithmError> {
        let Some(classes) = self.method.config.base_classes else {
            return Err(AlgorithmError::InvalidParameter {
                algorithm: self.method.label(),
                field: "base_classes",
                value: "unset".into(),
                reason: "pretrain_step needs a global classifier: set `base_classes` to the number of base classes",
            });
        };
        if let Some(&l) = labels.iter().find(|&&l| l >= classes) {
            return Err(AlgorithmError::InvalidOutputs {
                algorithm: self.method.label(),
                what: "base_classes (the largest pre-training label + 1)",
                min: l + 1,
                got: classes,
            });
        }
        let theta = self.meta.leaves();
        let (loss, out) = self.method.global_loss(&theta, x, labels);
        let grads = crate::grad(std::slice::from_ref(&loss), theta.tensors(), false);
        self.meta.step(&grads);
        Ok(StepStats {
            loss: loss.item().as_f64(),
            accuracy: accuracy(&out, labels),
            grad_norm: 0.0,
        })
    }
}

impl<B: Backbone> BaselineMethod<B> {
    /// `baseline` or `baseline_pp`.
    fn label(&self) -> &'static str {
        if self.cosine {
            BaselinePpAlgorithm::NAME
        } else {
            BaselineAlgorithm::NAME
        }
    }

    fn scale(&self, classes: usize) -> f64 {
        self.config
            .scale
            .unwrap_or(if classes <= 200 { 2.0 } else { 10.0 })
    }

    /// Cross-entropy of the global head on a batch `x` with global labels, and the logits.
    fn global_loss<T: Float>(
        &self,
        theta: &Params<T>,
        x: &Tensor<T>,
        labels: &[usize],
    ) -> (Tensor<T>, Tensor<T>) {
        let z = self.body.embed(&theta.slice(0..self.n_body), x);
        let out = self.head_logits(&z, &theta.tensors()[self.n_body..]);
        (out.cross_entropy(labels), out)
    }

    /// A pre-training batch of a task: its support and query images, labelled by their
    /// dataset classes. Panics when the task does not carry its classes or one is beyond the
    /// global head (`train` checks both before training).
    fn global_batch<T: Float>(&self, t: &TaskData<T>) -> (Tensor<T>, Vec<usize>) {
        let name = self.label();
        let classes = t.classes.as_deref().unwrap_or_else(|| {
            panic!("`{name}` with `base_classes` pre-trains on global labels: the tasks must carry their dataset `classes`")
        });
        let base = self.config.base_classes.unwrap_or(0);
        let labels: Vec<usize> = [t.support_y.class_labels(name), t.query_y.class_labels(name)]
            .concat()
            .iter()
            .map(|&k| classes[k])
            .collect();
        if let Some(&c) = labels.iter().find(|&&c| c >= base) {
            panic!(
                "`{name}`: dataset class {c} is beyond the global head (`base_classes` = {base})"
            );
        }
        (t.support_and_query_x(), labels)
    }

    /// Logits of features `z` under a head (`[w]` for cosine, `[w, b]` for linear).
    fn head_logits<T: Float>(&self, z: &Tensor<T>, head: &[Tensor<T>]) -> Tensor<T> {
        if self.cosine {
            let s = self.scale(head[0].dim(0));
            cosine_similarities(z, &head[0]).mul_scalar(s)
        } else {
            z.linear(&head[0], Some(&head[1]))
        }
    }

    /// The imprinted head of support features `zs` (differentiable in `zs`).
    fn imprint<T: Float>(&self, zs: &Tensor<T>, sy: &[usize]) -> Vec<Tensor<T>> {
        let mu = class_means(zs, sy, num_classes(sy));
        if self.cosine {
            vec![mu]
        } else {
            vec![mu.mul_scalar(2.0), mu.square().sum_axis(-1, false).neg()]
        }
    }

    /// Fine-tunes a head from `init` on fixed support features; returns the final values.
    fn finetune<T: Float>(
        &self,
        zs: &Tensor<T>,
        sy: &[usize],
        init: &[Tensor<T>],
    ) -> Vec<Tensor<T>> {
        let zs = zs.detach();
        let names: Vec<String> = (0..init.len()).map(|i| format!("h{i}")).collect();
        let mut head = Params::from_parts(
            names,
            init.iter().map(|t| t.detach().requires_grad_()).collect(),
        );
        let mut opt = Sgd::<T>::new(self.config.finetune_lr)
            .with_momentum(0.9)
            .with_dampening(0.9)
            .with_weight_decay(1e-3);
        for _ in 0..self.config.finetune_steps {
            let loss = self.head_logits(&zs, head.tensors()).cross_entropy(sy);
            let g = crate::grad(&[loss], head.tensors(), false);
            head = opt.step(&head, &g);
        }
        head.tensors().iter().map(|t| t.detach()).collect()
    }
}

impl<T: Float, B: Backbone> Method<T> for BaselineMethod<B> {
    fn name(&self) -> &'static str {
        self.label()
    }

    fn training_noise(&self) -> bool {
        self.body.uses_training_noise()
    }

    fn batch_gradient(&self, params: &Params<T>, tasks: &[TaskData<T>]) -> MetaGradient<T> {
        let theta = params.requires_grad_();
        if self.config.base_classes.is_some() {
            return mean_over_tasks(tasks, |t| {
                let (x, labels) = self.global_batch(t);
                let (loss, out) = self.global_loss(&theta, &x, &labels);
                TaskResult::from_loss(&loss, theta.tensors(), accuracy(&out, &labels))
            });
        }
        let body_params = theta.slice(0..self.n_body);
        let name = self.label();
        mean_over_tasks(tasks, |t| {
            let sy = t.support_y.class_labels(name);
            let qy = t.query_y.class_labels(name);
            let (zs, zq) = embed_both(&self.body, &body_params, &t.support_x, &t.query_x);
            let init = self.imprint(&zs, sy);
            let tuned = self.finetune(&zs, sy, &init);
            // W = W0 + (W* - W0) with the fine-tuning delta held constant.
            let head: Vec<Tensor<T>> = init
                .iter()
                .zip(&tuned)
                .map(|(w0, ws)| {
                    let delta = crate::autodiff::no_grad(|| ws.sub(&w0.detach()));
                    w0.add(&delta)
                })
                .collect();
            let out = self.head_logits(&zq, &head);
            let loss = out.cross_entropy(qy);
            TaskResult::from_loss(&loss, theta.tensors(), accuracy(&out, qy))
        })
    }

    fn predict(&self, p: &Params<T>, sx: &Tensor<T>, sy: &Target<T>, qx: &Tensor<T>) -> Tensor<T> {
        let sy = sy.class_labels(self.label());
        let (zs, zq) = crate::autodiff::no_grad(|| embed_both(&self.body, p, sx, qx));
        let init = crate::autodiff::no_grad(|| self.imprint(&zs, sy));
        let head = self.finetune(&zs, sy, &init);
        crate::autodiff::no_grad(|| self.head_logits(&zq, &head))
    }
}

//! Baseline and Baseline++ (Chen, Liu, Kira, Wang & Huang 2019, "A Closer Look at Few-shot
//! Classification"): train a backbone as an ordinary classifier of the base classes, then, for
//! each new task, freeze it and fit a new head on the support features. Baseline's heads are
//! linear; Baseline++'s are cosine classifiers `scale * cos(z, w_c)`.
//!
//! Training has two entry points:
//! - [`Baseline::pretrain_step`] (the paper's pre-training): one Adam step of cross-entropy of
//!   the backbone + a global head over `base_classes` on a batch with GLOBAL labels. The
//!   episodic [`TaskData`] has no global labels, so this is a separate method (the config must
//!   set `base_classes`).
//! - [`FewShotLearner::meta_train_step`](super::FewShotLearner::meta_train_step) (episodic training with the same head as at test
//!   time): per task, a new head is initialised from the support features (imprinting, see
//!   below), fine-tuned on the support set exactly as in `predict`, and the query loss is
//!   back-propagated to the backbone through the imprinted head and the query features; the
//!   fine-tuning delta is a constant (first order).
//!
//! The new head is initialised by imprinting rather than randomly, so that predictions are
//! deterministic: Baseline `W = 2 mu_c`, `b = -||mu_c||^2` (the linear head that equals
//! ProtoNet's classifier), Baseline++ `w_c = mu_c`, with `mu_c` the support class means. It is
//! then fine-tuned with Chen et al.'s SGD (momentum 0.9, dampening 0.9, weight decay 1e-3) for
//! `finetune_steps` full-batch steps. Support and query are embedded in one batch.
//!
//! State names: `param/...` (backbone), `head/weight`, `head/bias` (global head, when
//! `base_classes` is set; Baseline++ has no bias), `opt/...`.

use super::config::{AlgorithmError, BaselineConfig};
use super::learner::{MetaGradient, MetaLearner, Method, StepStats};
use super::maml::TaskData;
use super::metric::embed_both;
use super::registry::{self, Body};
use super::Target;
use crate::nn::optim::{Optimizer, Sgd};
use crate::nn::Params;
use crate::tensor::{Float, Tensor};

/// Baseline / Baseline++: the backbone and the new heads' settings.
pub struct BaselineMethod {
    body: Body,
    n_body: usize,
    cosine: bool,
    config: BaselineConfig,
}

/// The Baseline / Baseline++ learner.
pub type Baseline<T> = MetaLearner<T, BaselineMethod>;

impl<T: Float> Baseline<T> {
    /// A learner with a fresh backbone (and a global head when `config.base_classes` is set);
    /// `cosine` selects Baseline++.
    pub fn new(
        config: &BaselineConfig,
        cosine: bool,
        body: Body,
        meta_lr: f64,
        rng: &mut dyn rand::RngCore,
    ) -> Self {
        let mut params = registry::prefixed(&body.init::<T>(rng), "param/");
        let n_body = params.len();
        if let Some(b) = config.base_classes {
            let d = body.feature_dim();
            params.push("head/weight", registry::kaiming_uniform(&[b, d], d, rng));
            if !cosine {
                params.push("head/bias", registry::kaiming_uniform(&[b], d, rng));
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
        let m = &self.method;
        let z = m.body.embed(&theta, x);
        let out = m.head_logits(&z, &theta.tensors()[m.n_body..]);
        let loss = out.cross_entropy(labels);
        let grads = crate::grad(std::slice::from_ref(&loss), theta.tensors(), false);
        self.meta.step(&grads);
        Ok(StepStats {
            loss: loss.item().as_f64(),
            accuracy: registry::accuracy(&out, labels),
            grad_norm: 0.0,
        })
    }
}

impl BaselineMethod {
    /// `baseline` or `baseline_pp`.
    fn label(&self) -> &'static str {
        if self.cosine {
            "baseline_pp"
        } else {
            "baseline"
        }
    }

    fn scale(&self, classes: usize) -> f64 {
        self.config
            .scale
            .unwrap_or(if classes <= 200 { 2.0 } else { 10.0 })
    }

    /// Logits of features `z` under a head (`[w]` for cosine, `[w, b]` for linear).
    fn head_logits<T: Float>(&self, z: &Tensor<T>, head: &[Tensor<T>]) -> Tensor<T> {
        if self.cosine {
            let s = self.scale(head[0].dim(0));
            registry::l2_normalize(z, 1e-8)
                .matmul_nt(&registry::l2_normalize(&head[0], 1e-8))
                .mul_scalar(s)
        } else {
            z.linear(&head[0], Some(&head[1]))
        }
    }

    /// The imprinted head of support features `zs` (differentiable in `zs`).
    fn imprint<T: Float>(&self, zs: &Tensor<T>, sy: &[usize]) -> Vec<Tensor<T>> {
        let mu = registry::class_means(zs, sy, registry::num_classes(sy));
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

impl<T: Float> Method<T> for BaselineMethod {
    fn name(&self) -> &'static str {
        self.label()
    }

    fn batch_gradient(&self, params: &Params<T>, tasks: &[TaskData<T>]) -> MetaGradient<T> {
        let theta = params.requires_grad_();
        let body_params = registry::slice(&theta, 0..self.n_body);
        let name = self.label();
        registry::mean_over_tasks(tasks, |t| {
            let sy = registry::class_labels(&t.support_y, name);
            let qy = registry::class_labels(&t.query_y, name);
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
            registry::task_result(&loss, theta.tensors(), registry::accuracy(&out, qy))
        })
    }

    fn predict(&self, p: &Params<T>, sx: &Tensor<T>, sy: &Target<T>, qx: &Tensor<T>) -> Tensor<T> {
        let sy = registry::class_labels(sy, self.label());
        let (zs, zq) = crate::autodiff::no_grad(|| embed_both(&self.body, p, sx, qx));
        let init = crate::autodiff::no_grad(|| self.imprint(&zs, sy));
        let head = self.finetune(&zs, sy, &init);
        crate::autodiff::no_grad(|| self.head_logits(&zq, &head))
    }
}

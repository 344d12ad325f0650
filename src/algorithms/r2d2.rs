//! R2D2 (Bertinetto, Henriques, Torr & Vedaldi 2019, "Meta-learning with differentiable
//! closed-form solvers"): a ridge-regression head fitted in closed form on the support
//! features, back-propagated through.
//!
//! With support features `Z [Ns, d]` and one-hot labels `Y [Ns, N]`, the Woodbury form
//! `W = Z^T (Z Z^T + lambda I)^{-1} Y` needs only an `Ns x Ns` solve; query logits are
//! `scale * Z_q W`. `lambda` (as `log lambda`) and `scale` are meta-learned unless disabled.
//! Support and query are embedded in one batch; with `learn_lambda` / `learn_scale` off, their
//! meta-gradients are zeroed.
//!
//! State names: `param/...` (backbone), `r2d2/log_lambda`, `r2d2/scale`, `opt/...`.

use super::algorithm::{Algorithm, Learner, LearnerParts};
use super::checks::ParamCheck;
use super::classes::{num_classes, one_hot};
use super::error::AlgorithmError;
use super::metric::{metric_learner, Metric, MetricLearner};
use crate::nn::{Backbone, Body, Params};
use crate::tensor::{Float, Tensor};
use serde::{Deserialize, Serialize};

/// R2D2: ridge regression from support features to one-hot labels, in closed form through the
/// Woodbury identity `W = Z^T (Z Z^T + lambda I)^{-1} Y`, logits `scale * Z_q W`. Bertinetto et
/// al. meta-learn lambda and the output scale; defaults: lambda 1.0, scale 1.0, both learned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct R2d2Config {
    /// Initial ridge penalty (1.0), learned as `log lambda` when `learn_lambda`.
    pub lambda: f64,
    /// Meta-learn lambda (true).
    pub learn_lambda: bool,
    /// Initial logit scale (1.0).
    pub scale: f64,
    /// Meta-learn the scale (true).
    pub learn_scale: bool,
}

impl Default for R2d2Config {
    fn default() -> Self {
        R2d2Config {
            lambda: 1.0,
            learn_lambda: true,
            scale: 1.0,
            learn_scale: true,
        }
    }
}

/// R2D2 in the algorithm table: classification only, no head.
pub struct R2d2Algorithm;

impl Algorithm for R2d2Algorithm {
    type Config = R2d2Config;
    const NAME: &'static str = "r2d2";
    const CLASSIFIES_ONLY: Option<&'static str> =
        Some("its closed-form head regresses one-hot class labels");

    /// `lambda` and `scale` in (0, 1e6].
    fn validate(config: &R2d2Config) -> Result<(), AlgorithmError> {
        let check = ParamCheck::new(Self::NAME);
        check.scale("lambda", config.lambda)?;
        check.scale("scale", config.scale)
    }

    fn build<T: Float, B: Backbone>(c: &R2d2Config, p: LearnerParts<B>) -> Learner<T> {
        Box::new(R2d2::<T, B>::new(c, p.body, p.meta_lr, p.rng))
    }
}

/// R2D2's metric: the ridge-regression head fitted on the support features.
pub struct RidgeHead {
    n_body: usize,
    learn_lambda: bool,
    learn_scale: bool,
}

impl<T: Float> Metric<T> for RidgeHead {
    fn name(&self) -> &'static str {
        R2d2Algorithm::NAME
    }

    fn scores(
        &self,
        params: &Params<T>,
        zs: &Tensor<T>,
        sy: &[usize],
        zq: &Tensor<T>,
    ) -> Tensor<T> {
        let ns = zs.dim(0);
        let y = one_hot::<T>(sy, num_classes(sy));
        let lambda = params.at(self.n_body).exp();
        let mut eye = vec![T::zero(); ns * ns];
        for i in 0..ns {
            eye[i * ns + i] = T::one();
        }
        let a = zs
            .matmul_nt(zs)
            .add(&Tensor::from_vec(eye, &[ns, ns]).mul(&lambda));
        let alpha = a.solve(&y); // [Ns, N]
        zq.matmul_nt(zs)
            .matmul(&alpha)
            .mul(params.at(self.n_body + 1))
    }

    fn mask_gradient(&self, grads: &mut [Tensor<T>]) {
        if !self.learn_lambda {
            grads[self.n_body] = Tensor::zeros(&[1]);
        }
        if !self.learn_scale {
            grads[self.n_body + 1] = Tensor::zeros(&[1]);
        }
    }
}

/// The R2D2 learner.
pub type R2d2<T, B = Body> = MetricLearner<T, RidgeHead, B>;

impl<T: Float, B: Backbone> R2d2<T, B> {
    /// A learner with a fresh backbone.
    pub fn new(config: &R2d2Config, body: B, meta_lr: f64, rng: &mut dyn rand::RngCore) -> Self {
        metric_learner(body, meta_lr, rng, |_, n_body, _| {
            let mut p = Params::new();
            p.push(
                "r2d2/log_lambda",
                Tensor::from_f64(&[config.lambda.ln()], &[1]),
            );
            p.push("r2d2/scale", Tensor::from_f64(&[config.scale], &[1]));
            let head = RidgeHead {
                n_body,
                learn_lambda: config.learn_lambda,
                learn_scale: config.learn_scale,
            };
            (head, p)
        })
    }

    /// The current ridge penalty.
    pub fn lambda(&self) -> f64 {
        let n_body = self.method.metric.n_body;
        self.meta.params.at(n_body).item().as_f64().exp()
    }
}

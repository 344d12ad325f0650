//! Loss weighting and gradient aggregation for multi-task training, behind one trait.
//!
//! Every step, the trainer computes the per-task losses `L_i` and, when the method asks for them
//! ([`Weighting::needs_grads`]), the per-task gradients `g_i = dL_i/d theta_shared` on the shared
//! parameters (flattened, in `f64`). The method returns a [`Combined`] update:
//!
//! - `weights[i]`: task `i`'s task-specific parameters (its head) get `weights[i] * dL_i`;
//! - `shared`: the gradient for the shared parameters; when `None` they get
//!   `sum_i weights[i] * g_i` (so a pure loss-weighting method needs one backward pass of
//!   `sum_i w_i L_i`, and no per-task gradients).
//!
//! Gradient-manipulation methods return `shared` on the scale of the summed gradient
//! `sum_i g_i` (equal weighting of the plain sum `L_1 + ... + L_T`), so that learning rates carry
//! over between methods.
//!
//! MGDA, CAGrad and Nash-MTL follow TorchJD's split of a method into a *weighting*, a function
//! of the Gramian `G = J J^T` of the per-task gradients (`G[i][j] = g_i . g_j`) giving task
//! weights `w` ([`GramianWeighting`]), and an *aggregation*, `shared = sum_i w_i g_i`
//! ([`aggregate`]). The trainer computes the Gramian once per step and hands it over in
//! the `gramian` field of [`StepInfo`] (its gradient cosines come from it too).
//!
//! Methods ([`METHODS`]): `equal`, `uncertainty` (Kendall et al. 2018), `dwa` (Liu et al. 2019),
//! `rlw` (random loss weighting, Lin et al. 2021), `gradnorm` (Chen et al. 2018), `pcgrad`
//! (Yu et al. 2020), `mgda` (Sener & Koltun 2018, min-norm), `cagrad` (Liu et al. 2021),
//! `nash` (Nash-MTL, Navon et al. 2022); TorchJD 0.18's Gramian weightings
//! ([`jacobian_descent`]): `mean`, `upgrad`, `dualproj`, `imtl_g`, `aligned_mtl`, `config`,
//! `fairgrad`, `trimmed_mean` (needs `2 trim + 1` tasks), `krum` (needs `byzantine + 3` tasks),
//! `gradvac`; LibMTL's loss-scale methods ([`libmtl`]): `gls`, `imtl_l`, `stch`, `db_mtl`,
//! `famo` (Liu et al. 2023), `excess_mtl` (He et al. 2024); and LibMTL's gradient-manipulation
//! methods ([`libmtl_grad`]): `graddrop` (Chen et al. 2020), `moco` (Fernando et al. 2023),
//! `modo` (Chen et al. 2023), `sdmgrad` (Xiao et al. 2023).
//! `pcgrad`, `mgda`, `cagrad` and `nash` take `convention = "torchjd"` for TorchJD's form
//! (checked against its reference vectors); the default `paper` keeps the original one.
//!
//! A method whose solver does not converge (or returns a non-finite direction) makes the step
//! use the mean direction (every weight 1) and records why in [`Combined::fallback`]; the
//! trainer lists those steps in the run's history.
//!
//! FAMO needs the step's losses after the optimizer step: the trainer recomputes them on the
//! same batch for a method that asks ([`Weighting::needs_losses_after_step`],
//! [`Weighting::after_step`]). MoDo and SDMGrad sample three batches per step in their papers;
//! here all three are the step's batch (documented on [`libmtl_grad::MoDo`]). GradDrop works on
//! the gradients it is given, per coordinate (with `gramian = "representation"` the
//! representation's, LibMTL's setting). LibMTL's RGW (random gradient weights) gives the same
//! update as `rlw` here.

mod config;
mod gradient_based;
pub mod jacobian_descent;
pub mod libmtl;
pub mod libmtl_grad;
mod loss_based;
pub mod solvers;

pub use config::{
    CaGradConfig, Convention, ConventionConfig, DbMtlConfig, DwaConfig, ExcessMtlConfig,
    FairGradConfig, FamoConfig, GradDropConfig, GradNormConfig, GradVacConfig, KrumConfig,
    MoCoConfig, MoDoConfig, PcGradConfig, SdmGradConfig, SeedConfig, StchConfig, TrimmedMeanConfig,
    UncertaintyConfig, WeightingConfig,
};
pub use gradient_based::{min_norm_weights, nash_weights, CaGrad, GradNorm, Mgda, NashMtl, PcGrad};
pub use jacobian_descent::{GradVacState, JdKind, JdMethod};
pub use loss_based::{Dwa, Equal, RandomLossWeighting, Uncertainty};

use super::error::{MtlError, Result};
pub use crate::tensor::linalg::{cosine, dot, gram, gram_cosine, norm, weighted_sum};
use std::borrow::Cow;

/// What a weighting method sees at one training step.
#[derive(Clone, Copy, Debug)]
pub struct StepInfo<'a> {
    /// The per-task losses of the batch.
    pub losses: &'a [f64],
    /// The per-task gradients on the shared parameters, flattened (present when the method
    /// [needs them](Weighting::needs_grads)).
    pub grads: Option<&'a [Vec<f64>]>,
    /// The Gramian of `grads` ([`gram`]), when the caller computed it (the trainer does, once
    /// per step); [`StepInfo::gramian()`] computes it otherwise.
    pub gramian: Option<&'a [Vec<f64>]>,
    /// The global step (0 first).
    pub step: u64,
    /// The epoch (0 first).
    pub epoch: usize,
}

impl<'a> StepInfo<'a> {
    /// A step with losses only.
    pub fn losses(losses: &'a [f64]) -> Self {
        StepInfo {
            losses,
            grads: None,
            gramian: None,
            step: 0,
            epoch: 0,
        }
    }

    /// A step with losses and per-task shared gradients.
    pub fn with_grads(losses: &'a [f64], grads: &'a [Vec<f64>]) -> Self {
        StepInfo {
            losses,
            grads: Some(grads),
            gramian: None,
            step: 0,
            epoch: 0,
        }
    }

    /// The gradients; panics with the method's name if they are absent.
    pub fn grads(&self, method: &str) -> &'a [Vec<f64>] {
        self.grads.unwrap_or_else(|| {
            panic!("{method}: per-task gradients are required (needs_grads() is true)")
        })
    }

    /// The Gramian `G[i][j] = g_i . g_j` of the gradients: the one carried, else computed from
    /// them (panics with the method's name if both are absent).
    pub fn gramian(&self, method: &str) -> Cow<'a, [Vec<f64>]> {
        match self.gramian {
            Some(g) => Cow::Borrowed(g),
            None => Cow::Owned(gram(self.grads(method))),
        }
    }
}

/// The update a method returns for one step.
#[derive(Clone, Debug, PartialEq)]
pub struct Combined {
    /// Weight of each task's loss for its own parameters (and for the shared ones when
    /// `shared` is `None`).
    pub weights: Vec<f64>,
    /// The gradient for the shared parameters (flattened), if the method builds it itself.
    pub shared: Option<Vec<f64>>,
    /// Set when the method's solver failed (did not converge, or gave a non-finite result) and
    /// the step used the documented fallback instead, the mean direction (every weight 1):
    /// why, naming the method and the solver.
    pub fallback: Option<String>,
}

impl Combined {
    /// A pure loss weighting.
    pub fn weights(weights: Vec<f64>) -> Self {
        Combined {
            weights,
            shared: None,
            fallback: None,
        }
    }

    /// The fallback of a method whose solver failed: equal weights 1 for `tasks` tasks (the
    /// summed gradient), with `why` recorded in [`Combined::fallback`].
    pub fn mean_fallback(tasks: usize, why: String) -> Self {
        Combined {
            weights: vec![1.0; tasks],
            shared: None,
            fallback: Some(why),
        }
    }

    /// The shared gradient this update implies, given the per-task gradients.
    pub fn shared_grad(&self, grads: &[Vec<f64>]) -> Vec<f64> {
        match &self.shared {
            Some(s) => s.clone(),
            None => weighted_sum(grads, &self.weights),
        }
    }
}

/// A loss-weighting or gradient-aggregation method.
pub trait Weighting: Send {
    /// The method's config name (`equal`, `pcgrad`, ...).
    fn name(&self) -> &'static str;

    /// Whether [`Weighting::combine`] needs the per-task gradients on the shared parameters.
    fn needs_grads(&self) -> bool {
        false
    }

    /// The update for one step (methods with learnable weights also update them here).
    fn combine(&mut self, info: &StepInfo<'_>) -> Combined;

    /// Called at the end of each epoch with the epoch's mean training loss per task.
    fn end_epoch(&mut self, _mean_losses: &[f64]) {}

    /// Whether the method needs the step's task losses again after the optimizer step, on the
    /// same batch at the updated parameters ([`Weighting::after_step`]; FAMO does).
    fn needs_losses_after_step(&self) -> bool {
        false
    }

    /// Called after the optimizer step, when [`Weighting::needs_losses_after_step`] is true,
    /// with the batch's task losses recomputed at the new parameters (a forward pass only).
    fn after_step(&mut self, _new_losses: &[f64]) {}
}

/// A weighting that is a function of the Gramian of the per-task gradients alone (TorchJD's
/// `Weighting` on the Gramian); [`aggregate`] turns its weights into the step's update.
pub trait GramianWeighting {
    /// The task weights `w` from the Gramian `G = J J^T` (`G[i][j] = g_i . g_j`); the shared
    /// gradient is `sum_i w_i g_i`; a solver that does not converge says so.
    fn weights(&mut self, gramian: &[Vec<f64>]) -> Result<Vec<f64>, solvers::SolverError>;

    /// Whether each task's own parameters get its loss weighted by `w_i` too (else by 1).
    fn weights_heads(&self) -> bool {
        false
    }
}

/// The aggregation of a [`GramianWeighting`] named `method`: `w` from the step's Gramian,
/// `shared = sum_i w_i g_i`, and heads weighted by `w` or by 1
/// ([`GramianWeighting::weights_heads`]); the mean direction when the solver fails
/// ([`Combined::mean_fallback`]).
pub fn aggregate(
    weighting: &mut dyn GramianWeighting,
    method: &str,
    info: &StepInfo<'_>,
) -> Combined {
    let grads = info.grads(method);
    let w = match weighting.weights(&info.gramian(method)) {
        Ok(w) => w,
        Err(e) => return Combined::mean_fallback(grads.len(), format!("{method}: {e}")),
    };
    Combined {
        fallback: None,
        shared: Some(weighted_sum(grads, &w)),
        weights: if weighting.weights_heads() {
            w
        } else {
            vec![1.0; grads.len()]
        },
    }
}

/// The method names (`method = "..."` in the `[weighting]` table), in the order of the
/// README's tables.
pub const METHODS: [&str; 29] = [
    "equal",
    "uncertainty",
    "dwa",
    "rlw",
    "gradnorm",
    "pcgrad",
    "mgda",
    "cagrad",
    "nash",
    "mean",
    "upgrad",
    "dualproj",
    "imtl_g",
    "aligned_mtl",
    "config",
    "fairgrad",
    "trimmed_mean",
    "krum",
    "gradvac",
    "gls",
    "imtl_l",
    "stch",
    "db_mtl",
    "graddrop",
    "moco",
    "modo",
    "sdmgrad",
    "famo",
    "excess_mtl",
];

/// LibMTL's GradDrop, MoCo, MoDo, SDMGrad, FAMO and ExcessMTL from their options, checked
/// ([`WeightingConfig::check_ranges`]: an error names the key); another method is an error
/// naming `weighting.method`.
fn build_libmtl_more(cfg: &WeightingConfig) -> Result<Box<dyn Weighting>> {
    use WeightingConfig as W;
    cfg.check_ranges()?;
    Ok(match cfg {
        W::GradDrop(g) => Box::new(libmtl_grad::GradDrop::new(g.leak, g.seed)),
        W::MoCo(m) => Box::new(libmtl_grad::MoCo::new(
            m.beta,
            m.beta_sigma,
            m.gamma,
            m.gamma_sigma,
            m.rho,
        )),
        W::MoDo(m) => Box::new(libmtl_grad::MoDo::new(m.gamma, m.rho)),
        W::SdmGrad(sd) => Box::new(libmtl_grad::SdmGrad::new(sd.lamda, sd.niter)),
        W::Famo(f) => Box::new(libmtl::Famo::new(f.w_lr, f.w_gamma)),
        W::ExcessMtl(e) => Box::new(libmtl::ExcessMtl::new(e.robust_step_size)),
        other => {
            return Err(MtlError::value(
                "weighting.method",
                format!("{} is not one of LibMTL's later methods", other.method()),
            ))
        }
    })
}

/// `softmax(a)_i = e^(a_i - m) / sum_j e^(a_j - m)`, `m = max_j a_j` (shifted against overflow).
pub(crate) fn softmax(a: &[f64]) -> Vec<f64> {
    let m = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = a.iter().map(|v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|x| x / s).collect()
}

/// A value error of `weighting.<key>` unless `v` is a positive finite number.
fn positive(key: &str, v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(MtlError::value(
            &format!("weighting.{key}"),
            format!("must be a positive number, got {v}"),
        ))
    }
}

/// A value error naming `weighting.method` when `tasks` is below the `need` of `method`.
fn enough_tasks(method: &str, tasks: usize, need: usize, why: &str) -> Result<()> {
    if tasks >= need {
        Ok(())
    } else {
        Err(MtlError::value(
            "weighting.method",
            format!("{method} needs at least {need} tasks ({why}); this model has {tasks}"),
        ))
    }
}

/// Builds the method `cfg` configures for `tasks` tasks; a learning rate or temperature that
/// is not a positive number, or a negative CAGrad `c`, is an error naming the key, and so is a
/// method that needs more tasks than there are (`trimmed_mean`: `2 trim + 1`, `krum`:
/// `byzantine + 3`).
pub fn build(cfg: &WeightingConfig, tasks: usize) -> Result<Box<dyn Weighting>> {
    use WeightingConfig as W;
    let jd = |name: &'static str, kind: JdKind| -> Box<dyn Weighting> {
        Box::new(JdMethod::new(name, kind))
    };
    let torchjd = |c: Convention| c == Convention::Torchjd;
    Ok(match cfg {
        W::Equal => Box::new(Equal::new(tasks)),
        W::Uncertainty(u) => {
            positive("weight_lr", u.weight_lr)?;
            Box::new(Uncertainty::new(tasks, u.weight_lr))
        }
        W::Dwa(d) => {
            positive("temperature", d.temperature)?;
            Box::new(Dwa::new(tasks, d.temperature))
        }
        W::Rlw(r) => Box::new(RandomLossWeighting::new(tasks, r.seed)),
        W::GradNorm(g) => {
            positive("weight_lr", g.weight_lr)?;
            Box::new(GradNorm::new(tasks, g.alpha, g.weight_lr))
        }
        W::PcGrad(p) if torchjd(p.convention) => jd("pcgrad", JdKind::PcGradOrdered),
        W::PcGrad(p) => Box::new(PcGrad::new(p.seed)),
        W::Mgda(m) if torchjd(m.convention) => jd("mgda", JdKind::MgdaTorchjd),
        W::Mgda(_) => Box::new(Mgda::new()),
        W::CaGrad(c) => {
            if !(c.c.is_finite() && c.c >= 0.0) {
                return Err(MtlError::value(
                    "weighting.c",
                    format!("must be >= 0, got {}", c.c),
                ));
            }
            if torchjd(c.convention) {
                jd("cagrad", JdKind::CaGradTorchjd(c.c))
            } else {
                Box::new(CaGrad::new(c.c))
            }
        }
        W::Nash(n) if torchjd(n.convention) => jd("nash", JdKind::NashTorchjd(1.0)),
        W::Nash(_) => Box::new(NashMtl::new()),
        W::Mean => jd("mean", JdKind::Mean),
        W::UpGrad => jd("upgrad", JdKind::UpGrad),
        W::DualProj => jd("dualproj", JdKind::DualProj),
        W::ImtlG => jd("imtl_g", JdKind::ImtlG),
        W::AlignedMtl => jd("aligned_mtl", JdKind::AlignedMtl),
        W::Config => jd("config", JdKind::Config),
        W::FairGrad(f) => jd("fairgrad", JdKind::FairGrad(f.alpha)),
        W::TrimmedMean(t) => {
            enough_tasks("trimmed_mean", tasks, 2 * t.trim + 1, "2 trim + 1")?;
            jd("trimmed_mean", JdKind::TrimmedMean(t.trim))
        }
        W::Krum(k) => {
            enough_tasks("krum", tasks, k.byzantine + 3, "byzantine + 3")?;
            if k.selected == 0 || k.selected > tasks {
                return Err(MtlError::value(
                    "weighting.selected",
                    format!(
                        "must be between 1 and the {tasks} tasks, got {}",
                        k.selected
                    ),
                ));
            }
            jd("krum", JdKind::Krum(k.byzantine, k.selected))
        }
        W::GradVac(g) => jd("gradvac", JdKind::GradVac(GradVacState::new(g.beta, 1e-8))),
        W::Gls => Box::new(libmtl::Gls),
        W::ImtlL(u) => {
            positive("weight_lr", u.weight_lr)?;
            Box::new(libmtl::ImtlL::new(tasks, u.weight_lr))
        }
        W::Stch(st) => {
            positive("mu", st.mu)?;
            Box::new(libmtl::Stch::new(st.mu, st.warmup_epochs))
        }
        W::DbMtl(d) => Box::new(libmtl::DbMtl::new(d.beta, d.beta_sigma)),
        W::GradDrop(_) | W::MoCo(_) | W::MoDo(_) | W::SdmGrad(_) | W::Famo(_) | W::ExcessMtl(_) => {
            build_libmtl_more(cfg)?
        }
    })
}

//! The `[weighting]` table of a multi-task config: the method, tagged by `method = "..."`, and
//! that method's own options, e.g.
//!
//! ```toml
//! [weighting]
//! method = "cagrad"
//! c = 0.4
//! ```
//!
//! An option of another method (`c` given to `mgda`) is an error naming the key
//! (`weighting.c`), as is an unknown method (naming `weighting.method`). A table without
//! `method` (or no table) is `equal`; options left out take their defaults.

use super::super::error::{MtlError, Result};
use crate::run::config_file::{finite_in, int_in, positive_in, MAX_LR};
use crate::run::ConfigError;

/// Options of the loss-weighting / gradient-aggregation method (the `[weighting]` table),
/// one variant per method of [`super::METHODS`] with that method's options.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "method", rename_all = "lowercase", try_from = "toml::Table")]
pub enum WeightingConfig {
    /// Equal weights ([`super::Equal`]).
    Equal,
    /// Uncertainty weighting ([`super::Uncertainty`], Kendall et al. 2018).
    Uncertainty(UncertaintyConfig),
    /// Dynamic weight average ([`super::Dwa`], Liu et al. 2019).
    Dwa(DwaConfig),
    /// Random loss weighting ([`super::RandomLossWeighting`], Lin et al. 2021).
    Rlw(SeedConfig),
    /// GradNorm ([`super::GradNorm`], Chen et al. 2018).
    GradNorm(GradNormConfig),
    /// PCGrad ([`super::PcGrad`], Yu et al. 2020).
    PcGrad(PcGradConfig),
    /// MGDA ([`super::Mgda`], Sener & Koltun 2018).
    Mgda(ConventionConfig),
    /// CAGrad ([`super::CaGrad`], Liu et al. 2021).
    CaGrad(CaGradConfig),
    /// Nash-MTL ([`super::NashMtl`], Navon et al. 2022).
    Nash(ConventionConfig),
    /// Mean of the task gradients (TorchJD's `Mean`; on the sum's scale in training, i.e. the
    /// same update as `equal`).
    Mean,
    /// UPGrad ([`super::jacobian_descent::upgrad_weights`], Quinton & Rey 2024).
    #[serde(rename = "upgrad")]
    UpGrad,
    /// DualProj ([`super::jacobian_descent::dualproj_weights`]).
    #[serde(rename = "dualproj")]
    DualProj,
    /// IMTL-G ([`super::jacobian_descent::imtl_g_weights`], Liu et al. 2021).
    #[serde(rename = "imtl_g")]
    ImtlG,
    /// Aligned-MTL ([`super::jacobian_descent::aligned_mtl_weights`], Senushkin et al. 2023).
    #[serde(rename = "aligned_mtl")]
    AlignedMtl,
    /// ConFIG ([`super::jacobian_descent::config_weights`], Liu et al. 2024).
    Config,
    /// FairGrad ([`super::jacobian_descent::fairgrad_weights`], Ban & Ji 2024).
    FairGrad(FairGradConfig),
    /// Trimmed mean ([`super::jacobian_descent::trimmed_mean`], Yin et al. 2018).
    #[serde(rename = "trimmed_mean")]
    TrimmedMean(TrimmedMeanConfig),
    /// Krum ([`super::jacobian_descent::krum_weights`], Blanchard et al. 2017).
    Krum(KrumConfig),
    /// GradVac ([`super::jacobian_descent::GradVacState`], Wang et al. 2021).
    GradVac(GradVacConfig),
    /// Geometric loss strategy ([`super::libmtl::Gls`], Chennupati et al. 2019).
    Gls,
    /// IMTL-L ([`super::libmtl::ImtlL`], Liu et al. 2021).
    #[serde(rename = "imtl_l")]
    ImtlL(UncertaintyConfig),
    /// Smooth Tchebycheff scalarisation ([`super::libmtl::Stch`], Lin et al. 2024).
    Stch(StchConfig),
    /// DB-MTL ([`super::libmtl::DbMtl`], Lin et al. 2023).
    #[serde(rename = "db_mtl")]
    DbMtl(DbMtlConfig),
    /// Gradient sign dropout ([`super::libmtl_grad::GradDrop`], Chen et al. 2020).
    #[serde(rename = "graddrop")]
    GradDrop(GradDropConfig),
    /// MoCo ([`super::libmtl_grad::MoCo`], Fernando et al. 2023).
    #[serde(rename = "moco")]
    MoCo(MoCoConfig),
    /// MoDo ([`super::libmtl_grad::MoDo`], Chen et al. 2023).
    #[serde(rename = "modo")]
    MoDo(MoDoConfig),
    /// SDMGrad ([`super::libmtl_grad::SdmGrad`], Xiao et al. 2023).
    #[serde(rename = "sdmgrad")]
    SdmGrad(SdmGradConfig),
    /// FAMO ([`super::libmtl::Famo`], Liu et al. 2023).
    Famo(FamoConfig),
    /// ExcessMTL ([`super::libmtl::ExcessMtl`], He et al. 2024).
    #[serde(rename = "excess_mtl")]
    ExcessMtl(ExcessMtlConfig),
}

/// `graddrop`'s options.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GradDropConfig {
    /// Share of a dropped gradient that is kept (0.0, in `[0, 1]`).
    pub leak: f64,
    /// Seed of the sign draws (0).
    pub seed: u64,
}

/// `moco`'s options (LibMTL's `MoCo_*` without the prefix).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MoCoConfig {
    /// Rate of the tracked gradients (0.5, in `(0, 1]`).
    pub beta: f64,
    /// Decay exponent of that rate, `beta / t^beta_sigma` (0.5).
    pub beta_sigma: f64,
    /// Rate of the task weights (0.1).
    pub gamma: f64,
    /// Decay exponent of that rate (0.5).
    pub gamma_sigma: f64,
    /// L2 regulariser of the weights' step (0).
    pub rho: f64,
}

/// `modo`'s options (LibMTL's `MoDo_*` without the prefix).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MoDoConfig {
    /// Step of the task weights (0.001).
    pub gamma: f64,
    /// L2 regulariser of the weights' step (0.1).
    pub rho: f64,
}

/// `sdmgrad`'s options (LibMTL's `SDMGrad_*` without the prefix, and its spelling `lamda`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SdmGradConfig {
    /// Weight of the mean gradient in the direction (0.3).
    pub lamda: f64,
    /// Iterations of the weights' projected SGD per step (20).
    pub niter: usize,
}

/// `famo`'s options (LibMTL's `FAMO_*` without the prefix).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FamoConfig {
    /// Adam learning rate of the weight logits (0.025).
    pub w_lr: f64,
    /// Weight decay of the logits (0.001).
    pub w_gamma: f64,
}

/// `excess_mtl`'s options.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExcessMtlConfig {
    /// Step size of the multiplicative weight update (0.01).
    pub robust_step_size: f64,
}

impl Default for MoCoConfig {
    fn default() -> Self {
        MoCoConfig {
            beta: 0.5,
            beta_sigma: 0.5,
            gamma: 0.1,
            gamma_sigma: 0.5,
            rho: 0.0,
        }
    }
}

impl Default for MoDoConfig {
    fn default() -> Self {
        MoDoConfig {
            gamma: 1e-3,
            rho: 0.1,
        }
    }
}

impl Default for SdmGradConfig {
    fn default() -> Self {
        SdmGradConfig {
            lamda: 0.3,
            niter: 20,
        }
    }
}

impl Default for FamoConfig {
    fn default() -> Self {
        FamoConfig {
            w_lr: 0.025,
            w_gamma: 1e-3,
        }
    }
}

impl Default for ExcessMtlConfig {
    fn default() -> Self {
        ExcessMtlConfig {
            robust_step_size: 1e-2,
        }
    }
}

/// `stch`'s options.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StchConfig {
    /// Smoothing of the max (1.0).
    pub mu: f64,
    /// Epochs of `sum ln L_i` before the nadir point is fixed (the mean losses of epoch
    /// `warmup_epochs`, counting from 0; default 1).
    pub warmup_epochs: usize,
}

/// `db_mtl`'s options.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DbMtlConfig {
    /// EMA rate of the log-loss gradients (0.9).
    pub beta: f64,
    /// Decay exponent of the EMA rate, `beta / t^sigma` (0).
    pub beta_sigma: f64,
}

impl Default for StchConfig {
    fn default() -> Self {
        StchConfig {
            mu: 1.0,
            warmup_epochs: 1,
        }
    }
}

impl Default for DbMtlConfig {
    fn default() -> Self {
        DbMtlConfig {
            beta: 0.9,
            beta_sigma: 0.0,
        }
    }
}

/// Which published form a method follows where the paper (or its official code) and TorchJD
/// differ: `paper` (the default) or `torchjd` (TorchJD 0.18, checked against its reference
/// vectors).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Convention {
    /// The paper's form (this crate's original implementation).
    #[default]
    Paper,
    /// TorchJD 0.18's form.
    Torchjd,
}

/// The options of `mgda` and `nash`: the convention only.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConventionConfig {
    /// `paper` (default) or `torchjd`.
    pub convention: Convention,
}

/// `pcgrad`'s options.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PcGradConfig {
    /// Seed of the random task order (0; the `paper` convention only).
    pub seed: u64,
    /// `paper` (random order, default) or `torchjd` (index order, deterministic).
    pub convention: Convention,
}

/// `fairgrad`'s options.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FairGradConfig {
    /// The fairness parameter alpha (1.0; 0 is equal weighting, 1 proportional fairness).
    pub alpha: f64,
}

/// `trimmed_mean`'s options.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrimmedMeanConfig {
    /// Values trimmed from each end of every coordinate (1; needs `2 trim + 1` tasks).
    pub trim: usize,
}

/// `krum`'s options.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KrumConfig {
    /// Rows assumed adversarial (1; needs `byzantine + 3` tasks).
    pub byzantine: usize,
    /// Rows selected and averaged (1, Multi-Krum above 1).
    pub selected: usize,
}

/// `gradvac`'s options.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GradVacConfig {
    /// EMA rate of the target cosines (0.5, TorchJD's default).
    pub beta: f64,
}

impl Default for FairGradConfig {
    fn default() -> Self {
        FairGradConfig { alpha: 1.0 }
    }
}

impl Default for TrimmedMeanConfig {
    fn default() -> Self {
        TrimmedMeanConfig { trim: 1 }
    }
}

impl Default for KrumConfig {
    fn default() -> Self {
        KrumConfig {
            byzantine: 1,
            selected: 1,
        }
    }
}

impl Default for GradVacConfig {
    fn default() -> Self {
        GradVacConfig { beta: 0.5 }
    }
}

/// `uncertainty`'s options.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UncertaintyConfig {
    /// Learning rate of the log-variances (0.025).
    pub weight_lr: f64,
}

/// `dwa`'s options.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DwaConfig {
    /// Softmax temperature of the loss ratios (2.0).
    pub temperature: f64,
}

/// The options of `rlw`: the seed of its random weights.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SeedConfig {
    /// Seed of the random draws (0).
    pub seed: u64,
}

/// `gradnorm`'s options.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GradNormConfig {
    /// The asymmetry alpha (1.5).
    pub alpha: f64,
    /// Learning rate of the loss weights (0.025).
    pub weight_lr: f64,
}

/// `cagrad`'s options.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaGradConfig {
    /// Radius of the ball around the mean gradient, relative to its norm (0.4; TorchJD's
    /// reference vectors use 0.5).
    pub c: f64,
    /// `paper` (official code: divided by `1 + c^2`, default) or `torchjd`.
    pub convention: Convention,
}

impl Default for UncertaintyConfig {
    fn default() -> Self {
        UncertaintyConfig { weight_lr: 0.025 }
    }
}

impl Default for DwaConfig {
    fn default() -> Self {
        DwaConfig { temperature: 2.0 }
    }
}

impl Default for GradNormConfig {
    fn default() -> Self {
        GradNormConfig {
            alpha: 1.5,
            weight_lr: 0.025,
        }
    }
}

impl Default for CaGradConfig {
    fn default() -> Self {
        CaGradConfig {
            c: 0.4,
            convention: Convention::Paper,
        }
    }
}

impl Default for WeightingConfig {
    /// `equal`.
    fn default() -> Self {
        WeightingConfig::Equal
    }
}

impl WeightingConfig {
    /// The method called `method` with default options; [`MtlError::UnknownMethod`] (naming
    /// `weighting.method` and the known methods) for any other name.
    pub fn named(method: &str) -> Result<Self> {
        Ok(match method {
            "equal" => WeightingConfig::Equal,
            "uncertainty" => WeightingConfig::Uncertainty(UncertaintyConfig::default()),
            "dwa" => WeightingConfig::Dwa(DwaConfig::default()),
            "rlw" => WeightingConfig::Rlw(SeedConfig::default()),
            "gradnorm" => WeightingConfig::GradNorm(GradNormConfig::default()),
            "pcgrad" => WeightingConfig::PcGrad(PcGradConfig::default()),
            "mgda" => WeightingConfig::Mgda(ConventionConfig::default()),
            "cagrad" => WeightingConfig::CaGrad(CaGradConfig::default()),
            "nash" => WeightingConfig::Nash(ConventionConfig::default()),
            "mean" => WeightingConfig::Mean,
            "upgrad" => WeightingConfig::UpGrad,
            "dualproj" => WeightingConfig::DualProj,
            "imtl_g" => WeightingConfig::ImtlG,
            "aligned_mtl" => WeightingConfig::AlignedMtl,
            "config" => WeightingConfig::Config,
            "fairgrad" => WeightingConfig::FairGrad(FairGradConfig::default()),
            "trimmed_mean" => WeightingConfig::TrimmedMean(TrimmedMeanConfig::default()),
            "krum" => WeightingConfig::Krum(KrumConfig::default()),
            "gradvac" => WeightingConfig::GradVac(GradVacConfig::default()),
            "gls" => WeightingConfig::Gls,
            "imtl_l" => WeightingConfig::ImtlL(UncertaintyConfig::default()),
            "stch" => WeightingConfig::Stch(StchConfig::default()),
            "db_mtl" => WeightingConfig::DbMtl(DbMtlConfig::default()),
            "graddrop" => WeightingConfig::GradDrop(GradDropConfig::default()),
            "moco" => WeightingConfig::MoCo(MoCoConfig::default()),
            "modo" => WeightingConfig::MoDo(MoDoConfig::default()),
            "sdmgrad" => WeightingConfig::SdmGrad(SdmGradConfig::default()),
            "famo" => WeightingConfig::Famo(FamoConfig::default()),
            "excess_mtl" => WeightingConfig::ExcessMtl(ExcessMtlConfig::default()),
            other => {
                return Err(MtlError::UnknownMethod {
                    name: other.to_string(),
                    known: super::METHODS.join(", "),
                })
            }
        })
    }

    /// The method's config name (one of [`super::METHODS`]).
    pub fn method(&self) -> &'static str {
        match self {
            WeightingConfig::Equal => "equal",
            WeightingConfig::Uncertainty(_) => "uncertainty",
            WeightingConfig::Dwa(_) => "dwa",
            WeightingConfig::Rlw(_) => "rlw",
            WeightingConfig::GradNorm(_) => "gradnorm",
            WeightingConfig::PcGrad(_) => "pcgrad",
            WeightingConfig::Mgda(_) => "mgda",
            WeightingConfig::CaGrad(_) => "cagrad",
            WeightingConfig::Nash(_) => "nash",
            WeightingConfig::Mean => "mean",
            WeightingConfig::UpGrad => "upgrad",
            WeightingConfig::DualProj => "dualproj",
            WeightingConfig::ImtlG => "imtl_g",
            WeightingConfig::AlignedMtl => "aligned_mtl",
            WeightingConfig::Config => "config",
            WeightingConfig::FairGrad(_) => "fairgrad",
            WeightingConfig::TrimmedMean(_) => "trimmed_mean",
            WeightingConfig::Krum(_) => "krum",
            WeightingConfig::GradVac(_) => "gradvac",
            WeightingConfig::Gls => "gls",
            WeightingConfig::ImtlL(_) => "imtl_l",
            WeightingConfig::Stch(_) => "stch",
            WeightingConfig::DbMtl(_) => "db_mtl",
            WeightingConfig::GradDrop(_) => "graddrop",
            WeightingConfig::MoCo(_) => "moco",
            WeightingConfig::MoDo(_) => "modo",
            WeightingConfig::SdmGrad(_) => "sdmgrad",
            WeightingConfig::Famo(_) => "famo",
            WeightingConfig::ExcessMtl(_) => "excess_mtl",
        }
    }

    /// The keys the method takes besides `method`.
    pub fn option_keys(&self) -> &'static [&'static str] {
        match self {
            WeightingConfig::Equal
            | WeightingConfig::Mean
            | WeightingConfig::UpGrad
            | WeightingConfig::DualProj
            | WeightingConfig::ImtlG
            | WeightingConfig::AlignedMtl
            | WeightingConfig::Config
            | WeightingConfig::Gls => &[],
            WeightingConfig::ImtlL(_) => &["weight_lr"],
            WeightingConfig::Stch(_) => &["mu", "warmup_epochs"],
            WeightingConfig::DbMtl(_) => &["beta", "beta_sigma"],
            WeightingConfig::Mgda(_) | WeightingConfig::Nash(_) => &["convention"],
            WeightingConfig::Uncertainty(_) => &["weight_lr"],
            WeightingConfig::Dwa(_) => &["temperature"],
            WeightingConfig::Rlw(_) => &["seed"],
            WeightingConfig::PcGrad(_) => &["seed", "convention"],
            WeightingConfig::GradNorm(_) => &["alpha", "weight_lr"],
            WeightingConfig::CaGrad(_) => &["c", "convention"],
            WeightingConfig::FairGrad(_) => &["alpha"],
            WeightingConfig::TrimmedMean(_) => &["trim"],
            WeightingConfig::Krum(_) => &["byzantine", "selected"],
            WeightingConfig::GradVac(_) => &["beta"],
            WeightingConfig::GradDrop(_) => &["leak", "seed"],
            WeightingConfig::MoCo(_) => &["beta", "beta_sigma", "gamma", "gamma_sigma", "rho"],
            WeightingConfig::MoDo(_) => &["gamma", "rho"],
            WeightingConfig::SdmGrad(_) => &["lamda", "niter"],
            WeightingConfig::Famo(_) => &["w_lr", "w_gamma"],
            WeightingConfig::ExcessMtl(_) => &["robust_step_size"],
        }
    }

    /// This config switched to `method`: unchanged when it already is that method, else that
    /// method with default options (the `--method` override).
    pub fn with_method(&self, method: &str) -> Result<Self> {
        if method == self.method() {
            Ok(self.clone())
        } else {
            Self::named(method)
        }
    }

    /// Checks the method's options against their ranges, naming the key (`weighting.c`), the
    /// value and the range on error.
    pub fn check_ranges(&self) -> std::result::Result<(), ConfigError> {
        match self {
            WeightingConfig::Uncertainty(u) => {
                positive_in("weighting.weight_lr", u.weight_lr, MAX_LR)
            }
            WeightingConfig::Dwa(d) => positive_in("weighting.temperature", d.temperature, 1e6),
            WeightingConfig::GradNorm(g) => {
                finite_in("weighting.alpha", g.alpha, 0.0, 1e6)?;
                positive_in("weighting.weight_lr", g.weight_lr, MAX_LR)
            }
            WeightingConfig::CaGrad(c) => finite_in("weighting.c", c.c, 0.0, 1e6),
            WeightingConfig::FairGrad(f) => finite_in("weighting.alpha", f.alpha, 0.0, 1e3),
            WeightingConfig::GradVac(g) => finite_in("weighting.beta", g.beta, 0.0, 1.0),
            WeightingConfig::ImtlL(u) => positive_in("weighting.weight_lr", u.weight_lr, MAX_LR),
            WeightingConfig::Stch(st) => positive_in("weighting.mu", st.mu, 1e6),
            WeightingConfig::DbMtl(d) => {
                finite_in("weighting.beta", d.beta, 0.0, 1.0)?;
                finite_in("weighting.beta_sigma", d.beta_sigma, 0.0, 10.0)
            }
            WeightingConfig::GradDrop(g) => finite_in("weighting.leak", g.leak, 0.0, 1.0),
            WeightingConfig::MoCo(m) => {
                positive_in("weighting.beta", m.beta, 1.0)?;
                finite_in("weighting.beta_sigma", m.beta_sigma, 0.0, 10.0)?;
                positive_in("weighting.gamma", m.gamma, 1e6)?;
                finite_in("weighting.gamma_sigma", m.gamma_sigma, 0.0, 10.0)?;
                finite_in("weighting.rho", m.rho, 0.0, 1e6)
            }
            WeightingConfig::MoDo(m) => {
                positive_in("weighting.gamma", m.gamma, 1e6)?;
                finite_in("weighting.rho", m.rho, 0.0, 1e6)
            }
            WeightingConfig::SdmGrad(sd) => {
                finite_in("weighting.lamda", sd.lamda, 0.0, 1e6)?;
                int_in("weighting.niter", sd.niter, 1, 10_000)
            }
            WeightingConfig::Famo(f) => {
                positive_in("weighting.w_lr", f.w_lr, MAX_LR)?;
                finite_in("weighting.w_gamma", f.w_gamma, 0.0, 1e3)
            }
            WeightingConfig::ExcessMtl(e) => {
                positive_in("weighting.robust_step_size", e.robust_step_size, 1e3)
            }
            _ => Ok(()),
        }
    }
}

impl TryFrom<toml::Table> for WeightingConfig {
    type Error = String;

    /// The `[weighting]` table: `method` (default `equal`) picks the variant, whose options
    /// are the table's other keys; a key the method does not take is an error naming it.
    fn try_from(mut table: toml::Table) -> std::result::Result<Self, String> {
        let method = match table.remove("method") {
            None => "equal".to_string(),
            Some(toml::Value::String(name)) => name,
            Some(other) => {
                return Err(format!(
                    "config key `weighting.method`: expected a method name (a string), got {other}"
                ))
            }
        };
        let named = Self::named(&method).map_err(|e| e.to_string())?;
        let keys = named.option_keys();
        if let Some(key) = table.keys().find(|k| !keys.contains(&k.as_str())) {
            let takes = if keys.is_empty() {
                "it takes none".to_string()
            } else {
                format!("it takes {}", keys.join(", "))
            };
            return Err(format!(
                "config key `weighting.{key}`: not an option of method {method:?} ({takes})"
            ));
        }
        let options = toml::Value::Table(table);
        let bad = |e: toml::de::Error| format!("config key `weighting` (method {method:?}): {e}");
        Ok(match named {
            WeightingConfig::Uncertainty(_) => {
                WeightingConfig::Uncertainty(options.try_into().map_err(bad)?)
            }
            WeightingConfig::Dwa(_) => WeightingConfig::Dwa(options.try_into().map_err(bad)?),
            WeightingConfig::Rlw(_) => WeightingConfig::Rlw(options.try_into().map_err(bad)?),
            WeightingConfig::GradNorm(_) => {
                WeightingConfig::GradNorm(options.try_into().map_err(bad)?)
            }
            WeightingConfig::PcGrad(_) => WeightingConfig::PcGrad(options.try_into().map_err(bad)?),
            WeightingConfig::CaGrad(_) => WeightingConfig::CaGrad(options.try_into().map_err(bad)?),
            WeightingConfig::Mgda(_) => WeightingConfig::Mgda(options.try_into().map_err(bad)?),
            WeightingConfig::Nash(_) => WeightingConfig::Nash(options.try_into().map_err(bad)?),
            WeightingConfig::FairGrad(_) => {
                WeightingConfig::FairGrad(options.try_into().map_err(bad)?)
            }
            WeightingConfig::TrimmedMean(_) => {
                WeightingConfig::TrimmedMean(options.try_into().map_err(bad)?)
            }
            WeightingConfig::Krum(_) => WeightingConfig::Krum(options.try_into().map_err(bad)?),
            WeightingConfig::GradVac(_) => {
                WeightingConfig::GradVac(options.try_into().map_err(bad)?)
            }
            WeightingConfig::ImtlL(_) => WeightingConfig::ImtlL(options.try_into().map_err(bad)?),
            WeightingConfig::Stch(_) => WeightingConfig::Stch(options.try_into().map_err(bad)?),
            WeightingConfig::DbMtl(_) => WeightingConfig::DbMtl(options.try_into().map_err(bad)?),
            WeightingConfig::GradDrop(_) => {
                WeightingConfig::GradDrop(options.try_into().map_err(bad)?)
            }
            WeightingConfig::MoCo(_) => WeightingConfig::MoCo(options.try_into().map_err(bad)?),
            WeightingConfig::MoDo(_) => WeightingConfig::MoDo(options.try_into().map_err(bad)?),
            WeightingConfig::SdmGrad(_) => {
                WeightingConfig::SdmGrad(options.try_into().map_err(bad)?)
            }
            WeightingConfig::Famo(_) => WeightingConfig::Famo(options.try_into().map_err(bad)?),
            WeightingConfig::ExcessMtl(_) => {
                WeightingConfig::ExcessMtl(options.try_into().map_err(bad)?)
            }
            unit => unit,
        })
    }
}

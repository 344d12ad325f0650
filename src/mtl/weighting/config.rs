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
use crate::run::config_file::{finite_in, positive_in, MAX_LR};
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
    PcGrad(SeedConfig),
    /// MGDA ([`super::Mgda`], Sener & Koltun 2018).
    Mgda,
    /// CAGrad ([`super::CaGrad`], Liu et al. 2021).
    CaGrad(CaGradConfig),
    /// Nash-MTL ([`super::NashMtl`], Navon et al. 2022).
    Nash,
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

/// The options of the random methods, `rlw` (the weights) and `pcgrad` (the task order).
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
    /// Radius of the ball around the mean gradient, relative to its norm (0.4).
    pub c: f64,
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
        CaGradConfig { c: 0.4 }
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
            "pcgrad" => WeightingConfig::PcGrad(SeedConfig::default()),
            "mgda" => WeightingConfig::Mgda,
            "cagrad" => WeightingConfig::CaGrad(CaGradConfig::default()),
            "nash" => WeightingConfig::Nash,
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
            WeightingConfig::Mgda => "mgda",
            WeightingConfig::CaGrad(_) => "cagrad",
            WeightingConfig::Nash => "nash",
        }
    }

    /// The keys the method takes besides `method`.
    pub fn option_keys(&self) -> &'static [&'static str] {
        match self {
            WeightingConfig::Equal | WeightingConfig::Mgda | WeightingConfig::Nash => &[],
            WeightingConfig::Uncertainty(_) => &["weight_lr"],
            WeightingConfig::Dwa(_) => &["temperature"],
            WeightingConfig::Rlw(_) | WeightingConfig::PcGrad(_) => &["seed"],
            WeightingConfig::GradNorm(_) => &["alpha", "weight_lr"],
            WeightingConfig::CaGrad(_) => &["c"],
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
            unit => unit,
        })
    }
}

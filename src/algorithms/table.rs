//! The algorithm table: ONE declaration of every few-shot method (after easyfsl's one class per
//! method and LibMTL's methods picked by name), from which [`algorithm_table!`] generates the
//! [`AlgorithmConfig`] enum (serde-tagged by `name`), the name lists, the defaults and the
//! dispatch to each method's [`Algorithm`] implementation.
//!
//! Adding a method: a file beside `maml.rs` with its config struct, its learner and its
//! [`Algorithm`] implementation, its `pub mod` line in `mod.rs`, and one line below.

use super::algorithm::{build_listing, check_regression, Algorithm};
use super::backbone_config::BackboneConfig;
use super::error::AlgorithmError;
use super::learner::FewShotLearner;
use super::task::TaskKind;
use crate::nn::Body;
use crate::tensor::Float;
use serde::{Deserialize, Serialize};

/// Generates, from lines `Variant("name" | "alias"...) => AlgorithmType,` (each with its doc
/// comment), the [`AlgorithmConfig`] enum, [`ALGORITHM_NAMES`], the per-method flags behind
/// [`REGRESSION_ALGORITHMS`] and [`HEAD_ALGORITHMS`], a compile-time check that each line's
/// name is its type's [`Algorithm::NAME`], and [`AlgorithmConfig`]'s dispatching methods.
macro_rules! algorithm_table {
    ($(
        $(#[$doc:meta])*
        $variant:ident($name:literal $(| $alias:literal)*) => $algorithm:ty,
    )*) => {
        /// A method and its hyper-parameters. TOML: a table with `name = "<method>"` and the
        /// fields of that method's config struct ([`Algorithm::Config`]).
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "name")]
        pub enum AlgorithmConfig {
            $(
                $(#[$doc])*
                #[serde(rename = $name $(, alias = $alias)*)]
                $variant(<$algorithm as Algorithm>::Config),
            )*
        }

        /// Every algorithm name a config may use, in table order.
        pub const ALGORITHM_NAMES: &[&str] = &[$($name),*];

        /// Each method's name and flags, in table order.
        const FLAGS: &[MethodFlags] = &[$(MethodFlags {
            name: $name,
            regresses: <$algorithm as Algorithm>::CLASSIFIES_ONLY.is_none(),
            has_head: <$algorithm as Algorithm>::HAS_HEAD,
        }),*];

        const _: () = {$(
            assert!(
                same_str(<$algorithm as Algorithm>::NAME, $name),
                concat!("algorithm table: `", $name, "` is not the NAME of ", stringify!($algorithm))
            );
        )*};

        impl AlgorithmConfig {
            /// The name configs use.
            pub fn name(&self) -> &'static str {
                match self {
                    $(AlgorithmConfig::$variant(_) => <$algorithm as Algorithm>::NAME,)*
                }
            }

            /// The method with all defaults, by name (or alias); errors listing the known
            /// names.
            pub fn default_for(name: &str) -> Result<Self, AlgorithmError> {
                $(if name == $name $(|| name == $alias)* {
                    return Ok(AlgorithmConfig::$variant(<$algorithm as Algorithm>::default_config()));
                })*
                Err(AlgorithmError::UnknownAlgorithm {
                    name: name.to_string(),
                    known: ALGORITHM_NAMES,
                })
            }

            /// Checks every hyper-parameter's range.
            pub fn validate(&self) -> Result<(), AlgorithmError> {
                match self {
                    $(AlgorithmConfig::$variant(c) => <$algorithm as Algorithm>::validate(c),)*
                }
            }

            /// Checks that the method can work on the features of `body`
            /// ([`Algorithm::check_backbone`]).
            pub fn check_backbone(&self, body: &Body) -> Result<(), AlgorithmError> {
                match self {
                    $(AlgorithmConfig::$variant(c) => {
                        <$algorithm as Algorithm>::check_backbone(c, body)
                    })*
                }
            }

            /// Checks that the method can meta-train on a training split of `classes`
            /// classes ([`Algorithm::check_training_classes`]).
            pub fn check_training_classes(&self, classes: usize) -> Result<(), AlgorithmError> {
                match self {
                    $(AlgorithmConfig::$variant(c) => {
                        <$algorithm as Algorithm>::check_training_classes(c, classes)
                    })*
                }
            }

            /// Checks that the method can do regression, with the reason when it cannot.
            pub fn check_regression(&self) -> Result<(), AlgorithmError> {
                match self {
                    $(AlgorithmConfig::$variant(_) => {
                        check_regression::<$algorithm>(REGRESSION_ALGORITHMS)
                    })*
                }
            }

            /// Whether the learner has an `n_way`-output linear head (see
            /// [`Algorithm::HAS_HEAD`]).
            pub fn has_head(&self) -> bool {
                match self {
                    $(AlgorithmConfig::$variant(_) => <$algorithm as Algorithm>::HAS_HEAD,)*
                }
            }

            /// The method's learner: see [`build_learner_generic`].
            fn build<T: Float>(
                &self,
                backbone: &BackboneConfig,
                task: TaskKind,
                meta_lr: f64,
                rng: &mut dyn rand::RngCore,
            ) -> Result<Box<dyn FewShotLearner<T>>, AlgorithmError> {
                match self {
                    $(AlgorithmConfig::$variant(c) => build_listing::<$algorithm, T>(
                        c, backbone, task, REGRESSION_ALGORITHMS, meta_lr, rng,
                    ),)*
                }
            }
        }
    };
}

algorithm_table! {
    /// MAML (Finn et al. 2017), second order unless `first_order = true`.
    Maml("maml") => super::maml::MamlAlgorithm,
    /// First-order MAML: MAML's fields; always first order (`first_order` is ignored).
    Fomaml("fomaml") => super::maml::FomamlAlgorithm,
    /// Reptile (Nichol et al. 2018).
    Reptile("reptile") => super::reptile::ReptileAlgorithm,
    /// Meta-SGD (Li et al. 2017): learned per-parameter step sizes.
    MetaSgd("meta_sgd") => super::meta_sgd::MetaSgdAlgorithm,
    /// ANIL (Raghu et al. 2020): only the head adapts.
    Anil("anil") => super::anil::AnilAlgorithm,
    /// Prototypical Networks (Snell et al. 2017).
    Protonet("protonet") => super::protonet::ProtoNetAlgorithm,
    /// Matching Networks (Vinyals et al. 2016), without full context embeddings.
    Matching("matching") => super::matching::MatchingAlgorithm,
    /// Relation Networks (Sung et al. 2018).
    Relation("relation") => super::relation::RelationAlgorithm,
    /// Baseline (Chen et al. 2019): linear classifier fine-tuned on the support set.
    Baseline("baseline") => super::baseline::BaselineAlgorithm,
    /// Baseline++ (Chen et al. 2019): cosine classifier fine-tuned on the support set.
    BaselinePp("baseline_pp" | "baseline++") => super::baseline::BaselinePpAlgorithm,
    /// R2D2 (Bertinetto et al. 2019): closed-form ridge-regression head.
    R2d2("r2d2") => super::r2d2::R2d2Algorithm,
}

/// The algorithms that can fit real-valued targets (sinusoid regression), in table order.
pub const REGRESSION_ALGORITHMS: &[&str] = &names_where::<REGRESSION_COUNT>(Flag::Regresses);

/// The algorithms whose learner has a linear classifier head of `n_way` outputs (so a
/// checkpoint can classify at most that many classes), in table order.
pub const HEAD_ALGORITHMS: &[&str] = &names_where::<HEAD_COUNT>(Flag::HasHead);

const REGRESSION_COUNT: usize = count_where(Flag::Regresses);
const HEAD_COUNT: usize = count_where(Flag::HasHead);

/// A method's name and what it can do, for the name lists.
struct MethodFlags {
    name: &'static str,
    regresses: bool,
    has_head: bool,
}

/// Which flag a name list selects by.
#[derive(Clone, Copy)]
enum Flag {
    Regresses,
    HasHead,
}

/// Whether `method` has `flag`.
const fn has_flag(method: &MethodFlags, flag: Flag) -> bool {
    match flag {
        Flag::Regresses => method.regresses,
        Flag::HasHead => method.has_head,
    }
}

/// How many methods of the table have `flag`.
const fn count_where(flag: Flag) -> usize {
    let (mut count, mut i) = (0, 0);
    while i < FLAGS.len() {
        if has_flag(&FLAGS[i], flag) {
            count += 1;
        }
        i += 1;
    }
    count
}

/// The names of the `N` methods with `flag`, in table order.
const fn names_where<const N: usize>(flag: Flag) -> [&'static str; N] {
    let mut names = [""; N];
    let (mut n, mut i) = (0, 0);
    while i < FLAGS.len() {
        if has_flag(&FLAGS[i], flag) {
            names[n] = FLAGS[i].name;
            n += 1;
        }
        i += 1;
    }
    names
}

/// Whether two strings are equal (in a `const` context).
const fn same_str(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

impl AlgorithmConfig {
    /// Parses a TOML table (`name = "..."` plus fields) and checks its ranges.
    pub fn from_toml(text: &str) -> Result<Self, AlgorithmError> {
        let cfg: AlgorithmConfig =
            toml::from_str(text).map_err(|e| AlgorithmError::Parse(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The meta learning rate the papers use with Adam (1e-3 for every method here; Reptile
    /// uses its own `epsilon` instead).
    pub fn default_meta_lr(&self) -> f64 {
        1e-3
    }

    /// Whether the method can fit real-valued targets.
    pub fn supports_regression(&self) -> bool {
        REGRESSION_ALGORITHMS.contains(&self.name())
    }
}

/// Builds an `f32` learner for `n_way`-way classification.
pub fn build_learner(
    alg: &AlgorithmConfig,
    backbone: &BackboneConfig,
    n_way: usize,
    meta_lr: f64,
    rng: &mut dyn rand::RngCore,
) -> Result<Box<dyn FewShotLearner<f32>>, AlgorithmError> {
    let task = TaskKind::Classification { n_way };
    build_learner_generic::<f32>(alg, backbone, task, meta_lr, rng)
}

/// Builds an `f32` learner for regression onto `outputs` targets (1 for the sinusoid); errors
/// for the methods that only classify.
pub fn build_regression_learner(
    alg: &AlgorithmConfig,
    backbone: &BackboneConfig,
    outputs: usize,
    meta_lr: f64,
    rng: &mut dyn rand::RngCore,
) -> Result<Box<dyn FewShotLearner<f32>>, AlgorithmError> {
    let task = TaskKind::Regression { outputs };
    build_learner_generic::<f32>(alg, backbone, task, meta_lr, rng)
}

/// Builds a learner of any element type (`f64` for checks): checks the config's ranges, the
/// task and `meta_lr`, builds the backbone, then the method's learner (see
/// [`super::algorithm::build_with`]).
pub fn build_learner_generic<T: Float>(
    alg: &AlgorithmConfig,
    backbone: &BackboneConfig,
    task: TaskKind,
    meta_lr: f64,
    rng: &mut dyn rand::RngCore,
) -> Result<Box<dyn FewShotLearner<T>>, AlgorithmError> {
    alg.build(backbone, task, meta_lr, rng)
}

//! The [`Algorithm`] trait: what the algorithm table needs to know about one method (its name
//! in configs, its config struct, whether it regresses and has a head, its range checks, and
//! how to build its learner), and [`build_with`], which builds any method's learner.
//!
//! A method of this crate implements it beside its learner (`maml.rs` holds `MamlConfig` and
//! `MamlAlgorithm`) and takes one line of the table (`table.rs`), which makes it a config name.
//! A method of another crate implements it too and is built with [`build_with`].

use super::backbone_config::BackboneConfig;
use super::error::AlgorithmError;
use super::learner::FewShotLearner;
use super::task::TaskKind;
use crate::nn::{Backbone, Body};
use crate::tensor::Float;

/// One few-shot method as the algorithm table sees it.
pub trait Algorithm {
    /// The hyper-parameters (the fields of `[algorithm]` besides `name`).
    type Config: Clone + Default;

    /// The name configs use (`name = "maml"`).
    const NAME: &'static str;

    /// Why the method can only classify, or `None` (the default) when it also fits
    /// real-valued targets (sinusoid regression).
    const CLASSIFIES_ONLY: Option<&'static str> = None;

    /// Whether its learner has a linear head with one output per class (`n_way`), so that a
    /// checkpoint classifies at most that many classes (default: no).
    const HAS_HEAD: bool = false;

    /// The config with every default (`name = "..."` alone).
    fn default_config() -> Self::Config {
        Self::Config::default()
    }

    /// Checks every hyper-parameter's range (default: nothing to check).
    fn validate(config: &Self::Config) -> Result<(), AlgorithmError> {
        let _ = config;
        Ok(())
    }

    /// Checks that the method can work on the features of `body` (default: any backbone);
    /// the error names the key to change.
    fn check_backbone<B: Backbone>(config: &Self::Config, body: &B) -> Result<(), AlgorithmError> {
        let _ = (config, body);
        Ok(())
    }

    /// Checks that the method can meta-train on a training split of `classes` classes
    /// (default: any number); the error names the key to change.
    fn check_training_classes(config: &Self::Config, classes: usize) -> Result<(), AlgorithmError> {
        let _ = (config, classes);
        Ok(())
    }

    /// The learner for `parts.task` on the backbone `parts.body`, its meta-parameters drawn
    /// from `parts.rng` and meta-trained at `parts.meta_lr` (the config, task and rate are
    /// already checked).
    fn build<T: Float, B: Backbone>(config: &Self::Config, parts: LearnerParts<B>) -> Learner<T>;
}

/// A learner of any method, behind the one trait.
pub type Learner<T> = Box<dyn FewShotLearner<T>>;

/// What every learner is built from besides its config.
pub struct LearnerParts<'r, B> {
    /// The feature extractor (a [`Body`] when built from a config).
    pub body: B,
    /// What the learner predicts (the head's width).
    pub task: TaskKind,
    /// The outer optimizer's learning rate.
    pub meta_lr: f64,
    /// The random source of the initial meta-parameters.
    pub rng: &'r mut dyn rand::RngCore,
}

/// Checks `config`, the task (`n_way >= 2`, `outputs >= 1`, regression only for methods that
/// regress) and `meta_lr` (finite, positive), builds the backbone `backbone` describes, checks
/// that `A` can use its features, then builds `A`'s learner on it.
pub fn build_with<A: Algorithm, T: Float>(
    config: &A::Config,
    backbone: &BackboneConfig,
    task: TaskKind,
    meta_lr: f64,
    rng: &mut dyn rand::RngCore,
) -> Result<Learner<T>, AlgorithmError> {
    build_listing::<A, T>(config, backbone, task, &[], meta_lr, rng)
}

/// [`build_with`], where a refused regression lists `capable` (the table's methods that
/// regress).
pub(super) fn build_listing<A: Algorithm, T: Float>(
    config: &A::Config,
    backbone: &BackboneConfig,
    task: TaskKind,
    capable: &'static [&'static str],
    meta_lr: f64,
    rng: &mut dyn rand::RngCore,
) -> Result<Learner<T>, AlgorithmError> {
    A::validate(config)?;
    check_task::<A>(task, capable)?;
    check_meta_lr(A::NAME, meta_lr)?;
    let body = Body::from_config(backbone)?;
    A::check_backbone(config, &body)?;
    let parts = LearnerParts {
        body,
        task,
        meta_lr,
        rng,
    };
    Ok(A::build::<T, Body>(config, parts))
}

/// Checks that `A` can learn `task`: regression needs a method that regresses (the error
/// lists `capable`, the methods that can) and at least 1 output, classification at least 2
/// classes.
pub fn check_task<A: Algorithm>(
    task: TaskKind,
    capable: &'static [&'static str],
) -> Result<(), AlgorithmError> {
    let (what, min, got) = match task {
        TaskKind::Regression { outputs } => {
            check_regression::<A>(capable)?;
            ("outputs", 1, outputs)
        }
        TaskKind::Classification { n_way } => ("n_way", 2, n_way),
    };
    if got < min {
        return Err(AlgorithmError::InvalidOutputs {
            algorithm: A::NAME,
            what,
            min,
            got,
        });
    }
    Ok(())
}

/// Checks that `A` can fit real-valued targets; the error says why not and lists `capable`,
/// the methods that can.
pub fn check_regression<A: Algorithm>(
    capable: &'static [&'static str],
) -> Result<(), AlgorithmError> {
    match A::CLASSIFIES_ONLY {
        None => Ok(()),
        Some(why) => Err(AlgorithmError::NoRegression {
            name: A::NAME,
            why,
            capable,
        }),
    }
}

/// Checks that the meta learning rate is finite and positive.
pub fn check_meta_lr(algorithm: &'static str, meta_lr: f64) -> Result<(), AlgorithmError> {
    if meta_lr.is_finite() && meta_lr > 0.0 {
        Ok(())
    } else {
        Err(AlgorithmError::InvalidParameter {
            algorithm,
            field: "meta_lr",
            value: meta_lr.to_string(),
            reason: "must be a finite number > 0",
        })
    }
}

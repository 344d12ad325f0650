//! The two-item composite datasets of Lin et al. (Pareto Multi-Task Learning, 2019) as MTL
//! data: `data.dataset = "multi-mnist"` (two MNIST digits), `"multi-fashion"` (two
//! Fashion-MNIST items) and `"multi-fashion-mnist"` (an MNIST digit top-left, a Fashion-MNIST
//! item bottom-right), built by [`crate::data::multi_digit`] from the IDX files under
//! `data.path` (`mnist/`, `fashion-mnist/`). Label sources: `top_left` (task 1) and
//! `bottom_right` (task 2), 10 classes each.
//!
//! Training composites are drawn from the sources' training splits with seed
//! `2 * data.seed`, test composites from their test splits with seed `2 * data.seed + 1`;
//! `data.train_limit` / `data.test_limit` set how many are built (0: Lin et al.'s 120,000 and
//! 20,000).

use super::config::{MtlConfig, MtlData, MULTI_DATASETS};
use super::error::{MtlError, Result};
use super::model::TaskTargets;
use crate::data::{build_multi, ImageDataset, MultiDigitOptions, MultiDigitSet, TrainTest};
use std::path::Path;

/// Lin et al.'s training set size.
pub const DEFAULT_TRAIN: usize = 120_000;
/// Lin et al.'s test set size.
pub const DEFAULT_TEST: usize = 20_000;

/// The label sources of the composites.
pub const MULTI_LABELS: [&str; 2] = ["top_left", "bottom_right"];

/// Whether `label` is a label source of dataset `ds`: the composites have only
/// [`MULTI_LABELS`], the other datasets none of them. The error is the message for the key.
pub fn check_label(ds: &str, label: &str) -> std::result::Result<(), String> {
    let multi = MULTI_DATASETS.contains(&ds);
    match (multi, MULTI_LABELS.contains(&label)) {
        (true, false) => Err(format!(
            "label source {label:?} does not exist on {ds} (known: {})",
            MULTI_LABELS.join(", ")
        )),
        (false, true) => Err(format!(
            "label source {label:?} exists only for the composite datasets ({})",
            MULTI_DATASETS.join(", ")
        )),
        _ => Ok(()),
    }
}

/// Loads one MNIST-like folder under `root`.
fn source(root: &Path, name: &str) -> Result<TrainTest> {
    let dir = root.join(name);
    if !dir.exists() {
        return Err(MtlError::MissingData {
            key: "data.path".into(),
            path: dir,
        });
    }
    let loaded = if name == "mnist" {
        crate::data::load_mnist(&dir)
    } else {
        crate::data::load_fashion_mnist(&dir)
    };
    loaded.map_err(|source| MtlError::Data { path: dir, source })
}

/// The composite set as MTL data: one-channel images and one target set per task of `cfg`.
fn to_mtl(cfg: &MtlConfig, set: MultiDigitSet) -> MtlData {
    let targets = cfg
        .tasks
        .iter()
        .map(|t| match t.label.as_str() {
            "top_left" => TaskTargets::Classes(set.top_left.clone()),
            _ => TaskTargets::Classes(set.bottom_right.clone()),
        })
        .collect();
    MtlData {
        x: set.images,
        n: set.n,
        example_shape: vec![1, set.size, set.size],
        targets,
    }
}

/// Builds `n` composites (0: `default`) of `first` (top-left) and `second` (bottom-right).
fn build(
    first: &ImageDataset,
    second: &ImageDataset,
    n: usize,
    default: usize,
    seed: u64,
    root: &Path,
) -> Result<MultiDigitSet> {
    let n = if n == 0 { default } else { n };
    let opts = MultiDigitOptions {
        seed,
        ..MultiDigitOptions::default()
    };
    build_multi(first, second, n, &opts).map_err(|source| MtlError::Data {
        path: root.to_path_buf(),
        source,
    })
}

/// Loads the sources under `root` and builds the training and test composites of `cfg`'s
/// dataset (see the module documentation).
pub fn load(cfg: &MtlConfig, root: &Path) -> Result<(MtlData, MtlData)> {
    let (first, second) = match cfg.data.dataset.as_str() {
        "multi-mnist" => ("mnist", "mnist"),
        "multi-fashion" => ("fashion-mnist", "fashion-mnist"),
        _ => ("mnist", "fashion-mnist"),
    };
    let a = source(root, first)?;
    let b = if second == first {
        None
    } else {
        Some(source(root, second)?)
    };
    let b = b.as_ref().unwrap_or(&a);
    let seed = cfg.data.seed.wrapping_mul(2);
    let (d, s) = (&cfg.data, seed);
    let (train, test) = rayon::join(
        || build(&a.train, &b.train, d.train_limit, DEFAULT_TRAIN, s, root),
        || {
            build(
                &a.test,
                &b.test,
                d.test_limit,
                DEFAULT_TEST,
                s.wrapping_add(1),
                root,
            )
        },
    );
    Ok((to_mtl(cfg, train?), to_mtl(cfg, test?)))
}

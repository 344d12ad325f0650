//! Adaptation on in-memory arrays (what the Python package's `learner.adapt(x, y).predict(q)`
//! runs): the same work as `metalearn adapt` ([`super::adapt()`]) without the files.
//!
//! Examples come as one flat `f32` buffer and its shape `[N, ..example]`: images `[N, C, H, W]`
//! (`[N, H, W]` is one channel) or vectors `[N, D]`. A Conv-4 or ResNet-12 checkpoint takes
//! vectors of `C * H * W` values as images, like CSV rows of `metalearn adapt`. The support set
//! is put in class-major order (classes ascending, examples in their given order within a
//! class) and its classes compacted to `0..n`, as `adapt` does with its files, so the same
//! examples give the same probabilities.

use super::augment::adapt_support;
use super::error::{Result, TrainError};
use super::eval::LoadedRun;
use super::tasks::{check_input, InputLayout};
use crate::algorithms::Target;
use crate::tensor::Tensor;
use std::path::Path;

/// The support labels: class ids (classification) or real targets (regression).
#[derive(Clone, Copy, Debug)]
pub enum SupportLabels<'a> {
    /// Any integer class ids, one per example; the classes are their distinct values.
    Classes(&'a [i64]),
    /// One real target per example (regression checkpoints).
    Values(&'a [f32]),
}

/// A support set ready for prediction: inputs in the learner's layout, targets, and the
/// original class ids in probability order.
#[derive(Clone, Debug)]
pub struct ArraySupport {
    x: Tensor<f32>,
    y: Target<f32>,
    classes: Vec<i64>,
    example_shape: Vec<usize>,
    len: usize,
}

/// The example shape of an array of shape `[N, ..rest]` for the run's backbone: `[D]` becomes
/// `[C, H, W]` when the backbone takes images of `C * H * W` values, `[H, W]` becomes
/// `[1, H, W]`. Errors naming `what` when the shape is not `[N, ...]` with `N >= 1`, or the
/// examples do not fit the backbone.
fn example_shape(run: &LoadedRun, shape: &[usize], what: &str) -> Result<Vec<usize>> {
    let bad = |reason: String| TrainError::Input {
        path: what.into(),
        reason,
    };
    let (n, rest) = match shape {
        [n, rest @ ..] if !rest.is_empty() && rest.len() <= 3 => (*n, rest),
        _ => {
            return Err(bad(format!(
                "expected an array of shape (N, C, H, W), (N, H, W) or (N, D), got {shape:?}"
            )))
        }
    };
    if n == 0 || rest.contains(&0) {
        return Err(bad(format!("the array is empty (shape {shape:?})")));
    }
    let cfg = &run.config;
    let images = cfg.backbone.image_input();
    let ex = match (rest, images) {
        ([d], Some((c, s))) if *d == c * s * s => vec![c, s, s],
        ([h, w], Some(_)) => vec![1, *h, *w],
        _ => rest.to_vec(),
    };
    check_input(cfg, &ex, Path::new(what))?;
    Ok(ex)
}

/// Errors naming `what` when `x` holds a NaN or infinite value.
fn check_finite(x: &[f32], what: &str) -> Result<()> {
    match x.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(TrainError::Input {
            path: what.into(),
            reason: format!(
                "value {i} (flat index) is {}: NaN and infinite values cannot be adapted on or predicted",
                x[i]
            ),
        }),
    }
}

/// The tensor shape of `n` examples of `example_shape` as the run's learner takes them.
fn batch_shape(run: &LoadedRun, n: usize, example_shape: &[usize]) -> Vec<usize> {
    if run.config.data.is_regression() {
        vec![n, example_shape.iter().product()]
    } else {
        InputLayout::of(&run.config.backbone).shape(n, example_shape)
    }
}

/// Class-major order and compacted labels of classification targets; errors when there are
/// fewer than 2 classes or more than the checkpoint's head has outputs.
fn class_order(run: &LoadedRun, labels: &[i64]) -> Result<(Vec<usize>, Vec<usize>, Vec<i64>)> {
    let mut classes = labels.to_vec();
    classes.sort_unstable();
    classes.dedup();
    if classes.len() < 2 {
        return Err(TrainError::Input {
            path: "support_y".into(),
            reason: format!(
                "the support set has {} class(es); at least 2 are needed",
                classes.len()
            ),
        });
    }
    if let Some(h) = run.head {
        if classes.len() > h {
            return Err(TrainError::Input {
                path: "support_y".into(),
                reason: format!(
                    "the support set has {} classes, but the checkpoint has a {h}-way head; use at most {h} classes",
                    classes.len()
                ),
            });
        }
    }
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by_key(|&i| labels[i]);
    let y = order
        .iter()
        .map(|&i| classes.binary_search(&labels[i]).expect("present class"))
        .collect();
    Ok((order, y, classes))
}

impl ArraySupport {
    /// Checks a support set of shape `shape` (values in `x`, row-major) against the run and
    /// puts it in the learner's layout (class-major, with `data.augment.support_views` when the
    /// run has them). Errors ([`TrainError::Input`], naming `support_x` or `support_y`) on a
    /// bad shape, a label count that differs from `N`, labels of the wrong kind, NaN values,
    /// fewer than 2 or too many classes.
    pub fn new(run: &LoadedRun, x: &[f32], shape: &[usize], labels: SupportLabels) -> Result<Self> {
        let ex = example_shape(run, shape, "support_x")?;
        let n = shape[0];
        if x.len() != shape.iter().product::<usize>() {
            return Err(TrainError::Input {
                path: "support_x".into(),
                reason: format!("{} values for shape {shape:?}", x.len()),
            });
        }
        check_finite(x, "support_x")?;
        let regression = run.config.data.is_regression();
        let given = match labels {
            SupportLabels::Classes(l) => l.len(),
            SupportLabels::Values(v) => v.len(),
        };
        let bad_y = |reason: String| TrainError::Input {
            path: "support_y".into(),
            reason,
        };
        if given != n {
            return Err(bad_y(format!(
                "{given} labels for {n} support examples (expected one per row of support_x)"
            )));
        }
        let d: usize = ex.iter().product();
        let (xs, y, classes) = match (labels, regression) {
            (SupportLabels::Classes(l), false) => {
                let (order, y, classes) = class_order(run, l)?;
                let mut xs = Vec::with_capacity(x.len());
                for &i in &order {
                    xs.extend_from_slice(&x[i * d..(i + 1) * d]);
                }
                (xs, Target::Classes(y), classes)
            }
            (SupportLabels::Values(v), true) => {
                check_finite(v, "support_y")?;
                let y = Target::Values(Tensor::from_vec(v.to_vec(), &[n, 1]));
                (x.to_vec(), y, Vec::new())
            }
            (SupportLabels::Values(_), false) => {
                return Err(bad_y(
                    "this checkpoint classifies: give integer class labels".into(),
                ))
            }
            (SupportLabels::Classes(_), true) => {
                return Err(bad_y(
                    "this checkpoint is a regression model: give real-valued targets".into(),
                ))
            }
        };
        let (xs, y) = adapt_support(&run.config, xs, y, &ex)?;
        let x = Tensor::from_vec(xs, &batch_shape(run, y.len(), &ex));
        Ok(ArraySupport {
            x,
            y,
            classes,
            example_shape: ex,
            len: n,
        })
    }

    /// The class ids in probability order (ascending; empty for regression).
    pub fn classes(&self) -> &[i64] {
        &self.classes
    }

    /// The number of support examples given (before support views).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the support set is empty (never, once built).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The shape of one example as the learner takes it.
    pub fn example_shape(&self) -> &[usize] {
        &self.example_shape
    }

    /// Adapts to the support set and returns the query outputs: logits `[Nq, n_classes]`
    /// (classification) or values `[Nq, 1]` (regression). Errors, naming `query_x`, on a
    /// shape other than the support examples', NaN inputs, or non-finite outputs.
    pub fn outputs(&self, run: &LoadedRun, qx: &[f32], shape: &[usize]) -> Result<Tensor<f32>> {
        let ex = example_shape(run, shape, "query_x")?;
        let bad = |reason: String| TrainError::Input {
            path: "query_x".into(),
            reason,
        };
        if ex != self.example_shape {
            return Err(bad(format!(
                "query examples have shape {ex:?}, the support examples {:?}",
                self.example_shape
            )));
        }
        if qx.len() != shape.iter().product::<usize>() {
            return Err(bad(format!("{} values for shape {shape:?}", qx.len())));
        }
        check_finite(qx, "query_x")?;
        let q = Tensor::from_vec(qx.to_vec(), &batch_shape(run, shape[0], &ex));
        let out = run.learner.predict(&self.x, &self.y, &q);
        if out.data().iter().any(|v| !v.is_finite()) {
            return Err(TrainError::NonFinite {
                path: "query_x".into(),
                reason: "the model's outputs are not finite (NaN or infinite): its weights are too large or the inputs hold extreme values".into(),
            });
        }
        let n = self.classes.len();
        let width = out.shape()[1];
        if n == 0 || n == width {
            return Ok(out);
        }
        // A head wider than the support classes: keep the support classes' columns.
        let v = out.to_vec();
        let rows = shape[0];
        let kept = (0..rows)
            .flat_map(|r| v[r * width..r * width + n].to_vec())
            .collect();
        Ok(Tensor::from_vec(kept, &[rows, n]))
    }
}

/// Row-wise softmax of logits `[Nq, n]` in `f64` (as `metalearn adapt` writes its
/// probabilities), flat `[Nq * n]`.
pub fn softmax_rows(logits: &Tensor<f32>) -> Vec<f64> {
    let n = logits.shape()[1];
    let v = logits.to_vec();
    let mut out = Vec::with_capacity(v.len());
    for row in v.chunks(n.max(1)) {
        let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
        let e: Vec<f64> = row.iter().map(|&z| (z as f64 - m).exp()).collect();
        let sum: f64 = e.iter().sum();
        out.extend(e.iter().map(|z| z / sum));
    }
    out
}

/// The index of the largest probability of each row (the first on ties), as `adapt` picks
/// its prediction.
pub fn argmax_rows(probs: &[f64], n: usize) -> Vec<usize> {
    probs
        .chunks(n.max(1))
        .map(|row| (0..row.len()).fold(0, |b, k| if row[k] > row[b] { k } else { b }))
        .collect()
}

//! Arithmetic on class labels that the classifiers share: class counts, one-hot matrices,
//! class means (ProtoNet's prototypes) and accuracy.

use crate::tensor::{Float, Tensor};

/// The number of classes in an episode's support labels (`max + 1`).
pub fn num_classes(labels: &[usize]) -> usize {
    labels.iter().copied().max().map_or(0, |m| m + 1)
}

/// The fraction of rows of `logits [N, C]` whose argmax equals the label (`NaN` for no rows).
pub fn accuracy<T: Float>(logits: &Tensor<T>, labels: &[usize]) -> f64 {
    if labels.is_empty() {
        return f64::NAN;
    }
    let pred = logits.argmax_axis(-1);
    pred.iter().zip(labels).filter(|(p, l)| p == l).count() as f64 / labels.len() as f64
}

/// The one-hot matrix `[labels.len(), n]`.
pub fn one_hot<T: Float>(labels: &[usize], n: usize) -> Tensor<T> {
    let mut d = vec![T::zero(); labels.len() * n];
    for (i, &l) in labels.iter().enumerate() {
        d[i * n + l] = T::one();
    }
    Tensor::from_vec(d, &[labels.len(), n])
}

/// Class means `[n, d]` of rows `z [N, d]` (differentiable): `onehot^T z / counts` (a class
/// without rows gets zeros).
pub fn class_means<T: Float>(z: &Tensor<T>, labels: &[usize], n: usize) -> Tensor<T> {
    let oh = one_hot::<T>(labels, n);
    let mut counts = vec![T::zero(); n];
    for &l in labels {
        counts[l] += T::one();
    }
    for c in counts.iter_mut() {
        if *c == T::zero() {
            *c = T::one();
        }
    }
    let inv = Tensor::from_vec(counts.iter().map(|&c| T::one() / c).collect(), &[n, 1]);
    oh.matmul_tn(z).mul(&inv)
}

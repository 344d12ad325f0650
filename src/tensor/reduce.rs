//! Sums and means over axes. (Maxima live with the index ops in `index.rs`, since their
//! backward scatters to the arg-max.)
//!
//! `sum` over axes is `sum_to` the shape with those axes set to 1 (backward: broadcast back);
//! `mean` divides by the number of reduced elements.

use super::shape::normalize_axis;
use super::{Float, Tensor};

impl<T: Float> Tensor<T> {
    /// The sum of all elements, as a 0-d tensor.
    pub fn sum_all(&self) -> Tensor<T> {
        self.sum_to(&vec![1; self.ndim()]).reshape(&[])
    }

    /// The mean of all elements, as a 0-d tensor.
    pub fn mean_all(&self) -> Tensor<T> {
        let n = self.numel().max(1) as f64;
        self.sum_all().mul_scalar(1.0 / n)
    }

    /// Sums over `axes` (negative counts from the end); keeps them as size-1 dimensions when
    /// `keepdim`.
    pub fn sum_axes(&self, axes: &[isize], keepdim: bool) -> Tensor<T> {
        let (kept, dropped) = reduced_shapes(self.shape(), axes, "sum");
        let s = self.sum_to(&kept);
        if keepdim {
            s
        } else {
            s.reshape(&dropped)
        }
    }

    /// Sum over one axis.
    pub fn sum_axis(&self, axis: isize, keepdim: bool) -> Tensor<T> {
        self.sum_axes(&[axis], keepdim)
    }

    /// Means over `axes`, like [`Tensor::sum_axes`].
    pub fn mean_axes(&self, axes: &[isize], keepdim: bool) -> Tensor<T> {
        let (kept, _) = reduced_shapes(self.shape(), axes, "mean");
        let count = self.numel() / kept.iter().product::<usize>().max(1);
        self.sum_axes(axes, keepdim)
            .mul_scalar(1.0 / count.max(1) as f64)
    }

    /// Mean over one axis.
    pub fn mean_axis(&self, axis: isize, keepdim: bool) -> Tensor<T> {
        self.mean_axes(&[axis], keepdim)
    }
}

/// (shape with reduced axes set to 1, shape with reduced axes removed).
pub(crate) fn reduced_shapes(
    shape: &[usize],
    axes: &[isize],
    op: &str,
) -> (Vec<usize>, Vec<usize>) {
    let mut kept = shape.to_vec();
    for &a in axes {
        kept[normalize_axis(a, shape.len(), op)] = 1;
    }
    let mut reduced = vec![false; shape.len()];
    for &a in axes {
        reduced[normalize_axis(a, shape.len(), op)] = true;
    }
    let dropped = shape
        .iter()
        .zip(&reduced)
        .filter(|(_, &r)| !r)
        .map(|(&d, _)| d)
        .collect();
    (kept, dropped)
}

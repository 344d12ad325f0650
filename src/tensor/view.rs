//! Ops that change how the same numbers are laid out in dimensions without reordering them
//! (reshape), and the broadcast / reduce-to-shape pair that broadcasting arithmetic relies on.

use super::shape::{broadcast_shapes, broadcast_strides};
use super::{Float, Tensor};
use crate::autodiff::{Backward, BackwardCtx};

struct ReshapeBackward;
impl<T: Float> Backward<T> for ReshapeBackward {
    fn name(&self) -> &'static str {
        "reshape"
    }
    fn backward(&self, ctx: &BackwardCtx<'_, T>, g: &Tensor<T>) -> Vec<Option<Tensor<T>>> {
        vec![Some(g.reshape(ctx.inputs[0].shape()))]
    }
}

struct BroadcastBackward;
impl<T: Float> Backward<T> for BroadcastBackward {
    fn name(&self) -> &'static str {
        "broadcast_to"
    }
    fn backward(&self, ctx: &BackwardCtx<'_, T>, g: &Tensor<T>) -> Vec<Option<Tensor<T>>> {
        vec![Some(g.sum_to(ctx.inputs[0].shape()))]
    }
}

struct SumToBackward;
impl<T: Float> Backward<T> for SumToBackward {
    fn name(&self) -> &'static str {
        "sum_to"
    }
    fn backward(&self, ctx: &BackwardCtx<'_, T>, g: &Tensor<T>) -> Vec<Option<Tensor<T>>> {
        vec![Some(g.broadcast_to(ctx.inputs[0].shape()))]
    }
}

impl<T: Float> Tensor<T> {
    /// The same elements with another shape of the same size (no copy).
    pub fn reshape(&self, shape: &[usize]) -> Tensor<T> {
        let n: usize = shape.iter().product();
        assert_eq!(
            n,
            self.numel(),
            "reshape: cannot view shape {:?} ({} elements) as {:?} ({} elements)",
            self.shape(),
            self.numel(),
            shape,
            n
        );
        if shape == self.shape() {
            return self.clone();
        }
        self.share_op(shape.to_vec(), || ReshapeBackward)
    }

    /// Flattens dimensions `1..` into one: `[N, ...] -> [N, prod(...)]`.
    pub fn flatten_from1(&self) -> Tensor<T> {
        let n = self.dim(0);
        self.reshape(&[n, self.numel() / n.max(1)])
    }

    /// Repeats the tensor along stretched dimensions to `shape` (NumPy broadcasting rules).
    pub fn broadcast_to(&self, shape: &[usize]) -> Tensor<T> {
        if self.shape() == shape {
            return self.clone();
        }
        let ok = broadcast_shapes(self.shape(), shape).is_some_and(|s| s == shape);
        assert!(
            ok,
            "broadcast_to: cannot broadcast shape {:?} to {:?}",
            self.shape(),
            shape
        );
        let strides = broadcast_strides(self.shape(), shape);
        let mut out = Vec::with_capacity(shape.iter().product());
        for_each_offset(shape, &strides, |off| out.push(self.data()[off]));
        Tensor::from_op(out, shape.to_vec(), &[self], || BroadcastBackward)
    }

    /// Sums over the dimensions that broadcasting to this tensor's shape stretched, giving
    /// `shape` (the adjoint of [`Tensor::broadcast_to`]).
    pub fn sum_to(&self, shape: &[usize]) -> Tensor<T> {
        if self.shape() == shape {
            return self.clone();
        }
        let ok = broadcast_shapes(shape, self.shape()).is_some_and(|s| s == self.shape());
        assert!(
            ok,
            "sum_to: cannot reduce shape {:?} to {:?}",
            self.shape(),
            shape
        );
        let strides = broadcast_strides(shape, self.shape());
        let mut out = vec![T::zero(); shape.iter().product()];
        let src = self.data();
        let mut i = 0;
        for_each_offset(self.shape(), &strides, |off| {
            out[off] += src[i];
            i += 1;
        });
        Tensor::from_op(out, shape.to_vec(), &[self], || SumToBackward)
    }
}

/// Calls `f` with `sum_d index[d] * strides[d]` for every multi-index of `shape`, in row-major
/// order. The innermost dimension runs as a plain loop.
pub(crate) fn for_each_offset(shape: &[usize], strides: &[usize], mut f: impl FnMut(usize)) {
    let n: usize = shape.iter().product();
    if n == 0 {
        return;
    }
    if shape.is_empty() {
        f(0);
        return;
    }
    let nd = shape.len();
    let inner = shape[nd - 1];
    let inner_stride = strides[nd - 1];
    let mut index = vec![0usize; nd];
    let mut base = 0usize;
    loop {
        let mut off = base;
        for _ in 0..inner {
            f(off);
            off += inner_stride;
        }
        // advance the outer odometer
        let mut d = nd - 1;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            index[d] += 1;
            base += strides[d];
            if index[d] < shape[d] {
                break;
            }
            base -= strides[d] * shape[d];
            index[d] = 0;
        }
    }
}

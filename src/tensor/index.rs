//! Index-driven ops. The two primitives are mutual adjoints:
//! [`Tensor::take_flat`] reads `out[i] = x[idx[i]]` and [`Tensor::put_add_flat`] writes
//! `out[idx[i]] += x[i]`. The backward of each is the other, so max-reductions, max-pooling,
//! `gather` and `index_select` built on them are differentiable to any order.

use super::{Float, Tensor};
use crate::autodiff::{Backward, BackwardCtx};
use std::sync::Arc;

struct TakeBackward {
    idx: Arc<[usize]>,
}
impl<T: Float> Backward<T> for TakeBackward {
    fn name(&self) -> &'static str {
        "take_flat"
    }
    fn backward(&self, ctx: &BackwardCtx<'_, T>, g: &Tensor<T>) -> Vec<Option<Tensor<T>>> {
        vec![Some(g.put_add_flat(self.idx.clone(), ctx.inputs[0].shape()))]
    }
}

struct PutBackward {
    idx: Arc<[usize]>,
}
impl<T: Float> Backward<T> for PutBackward {
    fn name(&self) -> &'static str {
        "put_add_flat"
    }
    fn backward(&self, ctx: &BackwardCtx<'_, T>, g: &Tensor<T>) -> Vec<Option<Tensor<T>>> {
        vec![Some(g.take_flat(self.idx.clone(), ctx.inputs[0].shape()))]
    }
}

impl<T: Float> Tensor<T> {
    /// `out[i] = self.flat[idx[i]]`, shaped `shape` (`idx.len()` must equal its size).
    pub fn take_flat(&self, idx: Arc<[usize]>, shape: &[usize]) -> Tensor<T> {
        assert_eq!(
            idx.len(),
            shape.iter().product::<usize>(),
            "take_flat: {} indices for output shape {:?}",
            idx.len(),
            shape
        );
        let src = self.data();
        let n = src.len();
        let out: Vec<T> = idx
            .iter()
            .map(|&i| {
                assert!(i < n, "take_flat: index {i} out of range for {n} elements");
                src[i]
            })
            .collect();
        Tensor::from_op(out, shape.to_vec(), &[self], || TakeBackward { idx })
    }

    /// A zero tensor of shape `shape` with `self.flat[i]` added at `idx[i]` for every i.
    pub fn put_add_flat(&self, idx: Arc<[usize]>, shape: &[usize]) -> Tensor<T> {
        assert_eq!(
            idx.len(),
            self.numel(),
            "put_add_flat: {} indices for {} values",
            idx.len(),
            self.numel()
        );
        let n: usize = shape.iter().product();
        let mut out = vec![T::zero(); n];
        for (&i, &v) in idx.iter().zip(self.data()) {
            assert!(i < n, "put_add_flat: index {i} out of range for {n} elements");
            out[i] += v;
        }
        Tensor::from_op(out, shape.to_vec(), &[self], || PutBackward { idx })
    }
}

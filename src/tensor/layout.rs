//! Layout ops: permute / transpose, concat / stack, narrow and its zero-padding adjoint,
//! unsqueeze / squeeze.
//!
//! Backward rules (g = upstream gradient): `permute(p): g.permute(p^-1)`,
//! `concat: g.narrow(axis, offset_i, len_i)` for each part, `narrow(axis, s, l): g.pad_narrow(axis, s, n)`
//! and `pad_narrow(axis, s, n): g.narrow(axis, s, l)` (the two are mutual adjoints, so every
//! order of derivative stays exact). `unsqueeze` / `squeeze` are reshapes.

use super::shape::strides;
use super::view::for_each_offset;
use super::{Float, Tensor};

struct PermuteBackward {
    inverse: Vec<usize>,
}
impl_backward!(PermuteBackward, "permute", |self, _ctx, g| {
    vec![Some(g.permute(&self.inverse))]
});

struct ConcatBackward {
    axis: usize,
    /// (offset, length) of every part along `axis`.
    parts: Vec<(usize, usize)>,
}
impl_backward!(ConcatBackward, "concat", |self, ctx, g| {
    self.parts
        .iter()
        .zip(ctx.needs)
        .map(|(&(off, len), &need)| need.then(|| g.narrow(self.axis, off, len)))
        .collect()
});

struct NarrowBackward {
    axis: usize,
    start: usize,
}
impl_backward!(NarrowBackward, "narrow", |self, ctx, g| {
    let size = ctx.inputs[0].dim(self.axis);
    vec![Some(g.pad_narrow(self.axis, self.start, size))]
});

struct PadNarrowBackward {
    axis: usize,
    start: usize,
}
impl_backward!(PadNarrowBackward, "pad_narrow", |self, ctx, g| {
    let len = ctx.inputs[0].dim(self.axis);
    vec![Some(g.narrow(self.axis, self.start, len))]
});

/// (product of dims before `axis`, product of dims after `axis`).
pub(crate) fn outer_inner(shape: &[usize], axis: usize) -> (usize, usize) {
    (
        shape[..axis].iter().product(),
        shape[axis + 1..].iter().product(),
    )
}

impl<T: Float> Tensor<T> {
    /// Reorders the dimensions: `out.shape[i] = self.shape[dims[i]]` and
    /// `out[i_0, .., i_{n-1}] = self[j]` with `j[dims[k]] = i_k`.
    ///
    /// Backward: the inverse permutation. Panics unless `dims` is a permutation of `0..ndim`.
    pub fn permute(&self, dims: &[usize]) -> Tensor<T> {
        let nd = self.ndim();
        let mut seen = vec![false; nd];
        let ok = dims.len() == nd
            && dims
                .iter()
                .all(|&d| d < nd && !std::mem::replace(&mut seen[d], true));
        assert!(
            ok,
            "permute: dims {:?} are not a permutation of the axes of shape {:?}",
            dims,
            self.shape()
        );
        if dims.iter().enumerate().all(|(i, &d)| i == d) {
            return self.clone();
        }
        let st = strides(self.shape());
        let out_shape: Vec<usize> = dims.iter().map(|&d| self.shape()[d]).collect();
        let in_strides: Vec<usize> = dims.iter().map(|&d| st[d]).collect();
        let src = self.data();
        let mut out = Vec::with_capacity(src.len());
        for_each_offset(&out_shape, &in_strides, |off| out.push(src[off]));
        let mut inverse = vec![0; nd];
        for (i, &d) in dims.iter().enumerate() {
            inverse[d] = i;
        }
        Tensor::from_op(out, out_shape, &[self], || PermuteBackward { inverse })
    }

    /// Swaps dimensions `d0` and `d1` (a [`Tensor::permute`]).
    pub fn transpose(&self, d0: usize, d1: usize) -> Tensor<T> {
        let nd = self.ndim();
        assert!(
            d0 < nd && d1 < nd,
            "transpose: dims ({d0}, {d1}) out of range for shape {:?}",
            self.shape()
        );
        let mut dims: Vec<usize> = (0..nd).collect();
        dims.swap(d0, d1);
        self.permute(&dims)
    }

    /// Joins tensors along `axis`; all shapes must agree except along `axis`.
    /// `out[.., off_i + j, ..] = tensors[i][.., j, ..]` with `off_i` the sum of earlier lengths.
    ///
    /// Backward: each part's gradient is `g.narrow(axis, off_i, len_i)`.
    pub fn concat(tensors: &[Tensor<T>], axis: usize) -> Tensor<T> {
        assert!(!tensors.is_empty(), "concat: no tensors given");
        let first = tensors[0].shape();
        assert!(
            axis < first.len(),
            "concat: axis {axis} out of range for shape {:?}",
            first
        );
        for t in tensors {
            let s = t.shape();
            let ok = s.len() == first.len()
                && s.iter()
                    .zip(first)
                    .enumerate()
                    .all(|(d, (a, b))| d == axis || a == b);
            assert!(
                ok,
                "concat: shapes {:?} do not agree outside axis {axis}",
                tensors
                    .iter()
                    .map(|t| t.shape().to_vec())
                    .collect::<Vec<_>>()
            );
        }
        let (outer, inner) = outer_inner(first, axis);
        let total: usize = tensors.iter().map(|t| t.dim(axis)).sum();
        let mut out_shape = first.to_vec();
        out_shape[axis] = total;
        let mut out = Vec::with_capacity(outer * total * inner);
        for o in 0..outer {
            for t in tensors {
                let chunk = t.dim(axis) * inner;
                out.extend_from_slice(&t.data()[o * chunk..(o + 1) * chunk]);
            }
        }
        let inputs: Vec<&Tensor<T>> = tensors.iter().collect();
        Tensor::from_op(out, out_shape, &inputs, || {
            let mut off = 0;
            let parts = tensors
                .iter()
                .map(|t| {
                    let p = (off, t.dim(axis));
                    off += t.dim(axis);
                    p
                })
                .collect();
            ConcatBackward { axis, parts }
        })
    }

    /// Joins same-shaped tensors along a new dimension `axis` (`unsqueeze(axis)` of each, then
    /// [`Tensor::concat`]).
    pub fn stack(tensors: &[Tensor<T>], axis: usize) -> Tensor<T> {
        assert!(!tensors.is_empty(), "stack: no tensors given");
        let first = tensors[0].shape();
        assert!(
            tensors.iter().all(|t| t.shape() == first),
            "stack: shapes {:?} differ",
            tensors
                .iter()
                .map(|t| t.shape().to_vec())
                .collect::<Vec<_>>()
        );
        assert!(
            axis <= first.len(),
            "stack: axis {axis} out of range for shape {:?}",
            first
        );
        let parts: Vec<Tensor<T>> = tensors.iter().map(|t| t.unsqueeze(axis)).collect();
        Tensor::concat(&parts, axis)
    }

    /// The slice `start .. start + len` along `axis`: `out[.., j, ..] = self[.., start + j, ..]`.
    ///
    /// Backward: [`Tensor::pad_narrow`] (zeros outside the slice).
    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Tensor<T> {
        assert!(
            axis < self.ndim() && start + len <= self.dim(axis),
            "narrow: range {start}..{} on axis {axis} out of bounds for shape {:?}",
            start + len,
            self.shape()
        );
        if start == 0 && len == self.dim(axis) {
            return self.clone();
        }
        let (outer, inner) = outer_inner(self.shape(), axis);
        let full = self.dim(axis) * inner;
        let (a, b) = (start * inner, (start + len) * inner);
        let src = self.data();
        let mut out = Vec::with_capacity(outer * len * inner);
        for o in 0..outer {
            out.extend_from_slice(&src[o * full + a..o * full + b]);
        }
        let mut shape = self.shape().to_vec();
        shape[axis] = len;
        Tensor::from_op(out, shape, &[self], || NarrowBackward { axis, start })
    }

    /// The adjoint of [`Tensor::narrow`]: a zero tensor whose `axis` has length `size`, with
    /// `self` placed at `start .. start + self.dim(axis)` along it.
    ///
    /// Backward: `g.narrow(axis, start, self.dim(axis))`.
    pub fn pad_narrow(&self, axis: usize, start: usize, size: usize) -> Tensor<T> {
        assert!(
            axis < self.ndim() && start + self.dim(axis) <= size,
            "pad_narrow: shape {:?} placed at {start} on axis {axis} does not fit in length {size}",
            self.shape()
        );
        if start == 0 && size == self.dim(axis) {
            return self.clone();
        }
        let (outer, inner) = outer_inner(self.shape(), axis);
        let chunk = self.dim(axis) * inner;
        let full = size * inner;
        let src = self.data();
        let mut out = vec![T::zero(); outer * full];
        for o in 0..outer {
            out[o * full + start * inner..o * full + start * inner + chunk]
                .copy_from_slice(&src[o * chunk..(o + 1) * chunk]);
        }
        let mut shape = self.shape().to_vec();
        shape[axis] = size;
        Tensor::from_op(out, shape, &[self], || PadNarrowBackward { axis, start })
    }

    /// Inserts a dimension of size 1 at `axis` (`0 ..= ndim`), a reshape.
    pub fn unsqueeze(&self, axis: usize) -> Tensor<T> {
        assert!(
            axis <= self.ndim(),
            "unsqueeze: axis {axis} out of range for shape {:?}",
            self.shape()
        );
        let mut shape = self.shape().to_vec();
        shape.insert(axis, 1);
        self.reshape(&shape)
    }

    /// Removes dimension `axis`, which must have size 1 (a reshape).
    pub fn squeeze(&self, axis: usize) -> Tensor<T> {
        assert!(
            axis < self.ndim() && self.dim(axis) == 1,
            "squeeze: axis {axis} of shape {:?} is not of size 1",
            self.shape()
        );
        let mut shape = self.shape().to_vec();
        shape.remove(axis);
        self.reshape(&shape)
    }
}

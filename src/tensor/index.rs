//! Index-driven ops. The two primitives are mutual adjoints:
//! [`Tensor::take_flat`] reads `out[i] = x[idx[i]]` and [`Tensor::put_add_flat`] writes
//! `out[idx[i]] += x[i]`. The backward of each is the other, so max-reductions, max-pooling,
//! `gather` and `index_select` built on them are differentiable to any order.

use super::{Float, Tensor};
use std::sync::Arc;

struct TakeBackward {
    idx: Arc<[usize]>,
}
impl_backward!(TakeBackward, "take_flat", |self, ctx, g| {
    vec![Some(
        g.put_add_flat(self.idx.clone(), ctx.inputs[0].shape()),
    )]
});

struct PutBackward {
    idx: Arc<[usize]>,
}
impl_backward!(PutBackward, "put_add_flat", |self, ctx, g| {
    vec![Some(g.take_flat(self.idx.clone(), ctx.inputs[0].shape()))]
});

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
            match out.get_mut(i) {
                Some(o) => *o += v,
                None => panic!("put_add_flat: index {i} out of range for {n} elements"),
            }
        }
        Tensor::from_op(out, shape.to_vec(), &[self], || PutBackward { idx })
    }
}

struct IndexSelectBackward {
    axis: usize,
    idx: Arc<[usize]>,
}
impl_backward!(IndexSelectBackward, "index_select", |self, ctx, g| {
    let size = ctx.inputs[0].dim(self.axis);
    vec![Some(g.index_add_zeros(self.axis, &self.idx, size))]
});

struct IndexAddBackward {
    axis: usize,
    idx: Arc<[usize]>,
}
impl_backward!(IndexAddBackward, "index_add_zeros", |self, _ctx, g| {
    vec![Some(g.index_select(self.axis, &self.idx))]
});

/// Checks `axis` and `indices` for an op on `shape` with `size` entries along `axis`.
fn check_axis_indices(op: &str, shape: &[usize], axis: usize, indices: &[usize], size: usize) {
    assert!(
        axis < shape.len(),
        "{op}: axis {axis} out of range for shape {:?}",
        shape
    );
    if let Some(&bad) = indices.iter().find(|&&i| i >= size) {
        panic!("{op}: index {bad} out of range for size {size} on axis {axis} (shape {shape:?})");
    }
}

/// `shape` seen as `[outer, shape[axis], inner]`: (outer, size along `axis`, inner).
fn lanes(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    (outer, shape[axis], inner)
}

impl<T: Float> Tensor<T> {
    /// Picks entries `indices` along `axis` (repeats allowed):
    /// `out[.., j, ..] = self[.., indices[j], ..]`.
    ///
    /// Backward: [`Tensor::index_add_zeros`] (scatter-add of the gradient rows).
    pub fn index_select(&self, axis: usize, indices: &[usize]) -> Tensor<T> {
        check_axis_indices(
            "index_select",
            self.shape(),
            axis,
            indices,
            self.shape().get(axis).copied().unwrap_or(0),
        );
        let (outer, size, inner) = lanes(self.shape(), axis);
        let src = self.data();
        let mut out = Vec::with_capacity(outer * indices.len() * inner);
        for o in 0..outer {
            let base = o * size * inner;
            for &i in indices {
                out.extend_from_slice(&src[base + i * inner..base + (i + 1) * inner]);
            }
        }
        let mut shape = self.shape().to_vec();
        shape[axis] = indices.len();
        Tensor::from_op(out, shape, &[self], || IndexSelectBackward {
            axis,
            idx: indices.into(),
        })
    }

    /// The adjoint of [`Tensor::index_select`]: a zero tensor whose `axis` has length `size`,
    /// with `out[.., indices[j], ..] += self[.., j, ..]` (`indices.len() == self.dim(axis)`).
    ///
    /// Backward: `g.index_select(axis, indices)`.
    pub fn index_add_zeros(&self, axis: usize, indices: &[usize], size: usize) -> Tensor<T> {
        check_axis_indices("index_add_zeros", self.shape(), axis, indices, size);
        assert_eq!(
            indices.len(),
            self.dim(axis),
            "index_add_zeros: {} indices for axis {axis} of shape {:?}",
            indices.len(),
            self.shape()
        );
        let (outer, n, inner) = lanes(self.shape(), axis);
        let src = self.data();
        let mut out = vec![T::zero(); outer * size * inner];
        for o in 0..outer {
            for (j, &i) in indices.iter().enumerate() {
                let s = &src[(o * n + j) * inner..(o * n + j + 1) * inner];
                let d = &mut out[(o * size + i) * inner..(o * size + i + 1) * inner];
                for (a, &b) in d.iter_mut().zip(s) {
                    *a += b;
                }
            }
        }
        let mut shape = self.shape().to_vec();
        shape[axis] = size;
        Tensor::from_op(out, shape, &[self], || IndexAddBackward {
            axis,
            idx: indices.into(),
        })
    }

    /// PyTorch's `gather`: `out[i] = self[i with i[axis] replaced by index[i]]`, where `index`
    /// (row-major, shape `index_shape`, same number of dimensions as `self`, every other
    /// dimension at most `self`'s) may repeat entries.
    ///
    /// Built on [`Tensor::take_flat`], so the backward scatter-adds and is differentiable again.
    pub fn gather(&self, axis: usize, index: &[usize], index_shape: &[usize]) -> Tensor<T> {
        let shape = self.shape();
        let ok = axis < shape.len()
            && index_shape.len() == shape.len()
            && index_shape
                .iter()
                .zip(shape)
                .enumerate()
                .all(|(d, (a, b))| d == axis || a <= b);
        assert!(
            ok,
            "gather: index shape {:?} does not fit shape {:?} on axis {axis}",
            index_shape, shape
        );
        assert_eq!(
            index.len(),
            index_shape.iter().product::<usize>(),
            "gather: {} indices for index shape {:?}",
            index.len(),
            index_shape
        );
        check_axis_indices("gather", shape, axis, index, shape[axis]);
        let st = super::shape::strides(shape);
        let mut st_no_axis = st.clone();
        st_no_axis[axis] = 0;
        let mut flat = Vec::with_capacity(index.len());
        let mut k = 0;
        super::view::for_each_offset(index_shape, &st_no_axis, |off| {
            flat.push(off + index[k] * st[axis]);
            k += 1;
        });
        self.take_flat(flat.into(), index_shape)
    }

    /// Flat index of the first maximum of every lane along `axis` (row-major over the other
    /// dimensions), and the position within the lane.
    fn argmax_lanes(&self, axis: usize, op: &str) -> (Vec<usize>, Vec<usize>) {
        let (outer, n, inner) = lanes(self.shape(), axis);
        assert!(n > 0, "{op}: empty axis {axis} in shape {:?}", self.shape());
        let src = self.data();
        let mut best = vec![0usize; outer * inner];
        let mut flat = vec![0usize; outer * inner];
        for o in 0..outer {
            let base = o * n * inner;
            let bv = &mut best[o * inner..(o + 1) * inner];
            let mut vals: Vec<T> = src[base..base + inner].to_vec();
            for j in 1..n {
                let row = &src[base + j * inner..base + (j + 1) * inner];
                for ((v, b), &x) in vals.iter_mut().zip(bv.iter_mut()).zip(row) {
                    // NaN propagates: a NaN lane keeps its first NaN.
                    if x > *v || (x.is_nan() && !v.is_nan()) {
                        *v = x;
                        *b = j;
                    }
                }
            }
            for (i, b) in bv.iter().enumerate() {
                flat[o * inner + i] = base + b * inner + i;
            }
        }
        (flat, best)
    }

    /// The maximum over `axis` (negative counts from the end), keeping it as a size-1 dimension
    /// when `keepdim`.
    ///
    /// The gradient goes to the FIRST arg-max of each lane only (via [`Tensor::take_flat`], so
    /// it is differentiable again).
    pub fn max_axis(&self, axis: isize, keepdim: bool) -> Tensor<T> {
        let ax = super::shape::normalize_axis(axis, self.ndim(), "max_axis");
        assert!(self.ndim() > 0, "max_axis: a 0-d tensor has no axis {axis}");
        let (flat, _) = self.argmax_lanes(ax, "max_axis");
        let mut shape = self.shape().to_vec();
        if keepdim {
            shape[ax] = 1;
        } else {
            shape.remove(ax);
        }
        self.take_flat(flat.into(), &shape)
    }

    /// The maximum of all elements as a 0-d tensor; the gradient goes to the first arg-max.
    pub fn max_all(&self) -> Tensor<T> {
        assert!(
            self.numel() > 0,
            "max_all: empty tensor of shape {:?}",
            self.shape()
        );
        let flat = self.reshape(&[self.numel()]).argmax_lanes(0, "max_all").0;
        self.take_flat(flat.into(), &[])
    }

    /// The position of the first maximum along `axis` for every lane, row-major over the other
    /// dimensions (no gradient; for accuracies).
    pub fn argmax_axis(&self, axis: isize) -> Vec<usize> {
        assert!(
            self.ndim() > 0,
            "argmax_axis: a 0-d tensor has no axis {axis}"
        );
        let ax = super::shape::normalize_axis(axis, self.ndim(), "argmax_axis");
        self.argmax_lanes(ax, "argmax_axis").1
    }
}

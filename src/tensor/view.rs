//! Ops that change how the same numbers are laid out in dimensions without reordering them
//! (reshape), and the broadcast / reduce-to-shape pair that broadcasting arithmetic relies on.

use super::shape::{broadcast_shapes, broadcast_strides};
use super::{Float, Tensor};

struct ReshapeBackward;
impl_backward!(ReshapeBackward, "reshape", |self, ctx, g| {
    vec![Some(g.reshape(ctx.inputs[0].shape()))]
});

struct BroadcastBackward;
impl_backward!(BroadcastBackward, "broadcast_to", |self, ctx, g| {
    vec![Some(g.sum_to(ctx.inputs[0].shape()))]
});

struct SumToBackward;
impl_backward!(SumToBackward, "sum_to", |self, ctx, g| {
    vec![Some(g.broadcast_to(ctx.inputs[0].shape()))]
});

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
        let src = self.data();
        let dense = row_major_strides(shape);
        for_each_row(shape, [&strides, &dense], |[base, _], len, [step, _]| {
            if step == 1 {
                out.extend_from_slice(&src[base..base + len]);
            } else {
                out.extend((0..len).map(|j| src[base + j * step]));
            }
        });
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
        let dense = row_major_strides(self.shape());
        // in row-major order of the source, as an element-by-element walk would add
        for_each_row(
            self.shape(),
            [&strides, &dense],
            |[o, i], len, [step, _]| {
                let row = &src[i..i + len];
                if step == 0 {
                    let mut acc = out[o];
                    for &v in row {
                        acc += v;
                    }
                    out[o] = acc;
                } else if step == 1 {
                    for (d, &v) in out[o..o + len].iter_mut().zip(row) {
                        *d += v;
                    }
                } else {
                    for (j, &v) in row.iter().enumerate() {
                        out[o + j * step] += v;
                    }
                }
            },
        );
        Tensor::from_op(out, shape.to_vec(), &[self], || SumToBackward)
    }
}

/// The strides of a dense row-major tensor of `shape`.
pub(crate) fn row_major_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    strides
}

/// Calls `f(bases, len, steps)` for every row of `shape` (its innermost dimension after
/// merging the dimensions that every stride list in `strides` walks contiguously, and dropping
/// size-1 ones), in row-major order: row element `j` is at offset `bases[k] + j * steps[k]` of
/// operand `k`. Whole rows let the callers run tight loops instead of a call per element.
pub(crate) fn for_each_row<const K: usize>(
    shape: &[usize],
    strides: [&[usize]; K],
    mut f: impl FnMut([usize; K], usize, [usize; K]),
) {
    if shape.contains(&0) {
        return;
    }
    // (size, strides) per kept dimension, outermost first, merged where contiguous
    let mut dims: Vec<(usize, [usize; K])> = Vec::with_capacity(shape.len());
    for (d, &size) in shape.iter().enumerate() {
        if size == 1 {
            continue;
        }
        let st: [usize; K] = std::array::from_fn(|k| strides[k][d]);
        match dims.last_mut() {
            Some((ps, pst)) if (0..K).all(|k| pst[k] == st[k] * size) => {
                *ps *= size;
                *pst = st;
            }
            _ => dims.push((size, st)),
        }
    }
    let Some(&(len, steps)) = dims.last() else {
        f([0; K], 1, [0; K]);
        return;
    };
    let outer = &dims[..dims.len() - 1];
    let mut index = vec![0usize; outer.len()];
    let mut bases = [0usize; K];
    loop {
        f(bases, len, steps);
        let mut d = outer.len();
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            index[d] += 1;
            for (b, s) in bases.iter_mut().zip(outer[d].1) {
                *b += s;
            }
            if index[d] < outer[d].0 {
                break;
            }
            for (b, s) in bases.iter_mut().zip(outer[d].1) {
                *b -= s * outer[d].0;
            }
            index[d] = 0;
        }
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

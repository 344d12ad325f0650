//! Matrix products.
//!
//! The primitive is `matmul_t(a, b, ta, tb) = op(a) @ op(b)` with `op` the identity or the
//! transpose (read through strides, never copied), batched over an optional leading dimension
//! (a batch of 1 broadcasts). Its backward, for upstream `g`, is again made of `matmul_t`:
//! `d op(a) = g @ op(b)^T`, `d op(b) = op(a)^T @ g`, so gradients of any order are available.
//! `linear(x, W, b) = x @ W^T + b` is one fused op with the same rules plus `db = sum_rows(g)`.

use super::kernels::{gemm, Mat};
use super::{parallel, Float, Tensor};
use crate::autodiff::{Backward, BackwardCtx};

struct MatMulBackward {
    ta: bool,
    tb: bool,
}

impl<T: Float> Backward<T> for MatMulBackward {
    fn name(&self) -> &'static str {
        "matmul"
    }
    fn backward(&self, ctx: &BackwardCtx<'_, T>, g: &Tensor<T>) -> Vec<Option<Tensor<T>>> {
        let (a, b) = (&ctx.inputs[0], &ctx.inputs[1]);
        let (ta, tb) = (self.ta, self.tb);
        // C = op(a) op(b); dop(a) = g op(b)^T; dop(b) = op(a)^T g.
        let ga = ctx.needs[0].then(|| {
            let d = if !ta {
                matmul_t(g, b, false, !tb)
            } else {
                matmul_t(b, g, tb, true)
            };
            d.sum_to(a.shape())
        });
        let gb = ctx.needs[1].then(|| {
            let d = if !tb {
                matmul_t(a, g, !ta, false)
            } else {
                matmul_t(g, a, true, ta)
            };
            d.sum_to(b.shape())
        });
        vec![ga, gb]
    }
}

/// (batch, rows, cols) of a 2-D or 3-D operand as stored.
fn bdims(t: &Tensor<impl Float>) -> (usize, usize, usize) {
    match *t.shape() {
        [r, c] => (1, r, c),
        [b, r, c] => (b, r, c),
        _ => unreachable!(),
    }
}

/// `op(a) @ op(b)` where `op` transposes the last two dimensions when its flag is set; both
/// operands 2-D, or both 3-D with equal batch sizes or a batch of 1 (broadcast).
pub(crate) fn matmul_t<T: Float>(a: &Tensor<T>, b: &Tensor<T>, ta: bool, tb: bool) -> Tensor<T> {
    let bad = |why: &str| -> ! {
        panic!(
            "matmul: {why}: shapes {:?}{} and {:?}{}",
            a.shape(),
            if ta { "^T" } else { "" },
            b.shape(),
            if tb { "^T" } else { "" }
        )
    };
    if a.ndim() != b.ndim() || !(a.ndim() == 2 || a.ndim() == 3) {
        bad("operands must both be 2-D or both 3-D");
    }
    let (ba, ar, ac) = bdims(a);
    let (bb, br, bc) = bdims(b);
    let (m, k) = if ta { (ac, ar) } else { (ar, ac) };
    let (k2, n) = if tb { (bc, br) } else { (br, bc) };
    if k != k2 {
        bad("inner dimensions differ");
    }
    if ba != bb && ba != 1 && bb != 1 {
        bad("batch sizes differ");
    }
    let batch = ba.max(bb);
    let mut out = vec![T::zero(); batch * m * n];
    let (ad, bd) = (a.data(), b.data());
    let (asz, bsz) = (ar * ac, br * bc);
    let product = |p: usize, dst: &mut [T]| {
        let aslice = &ad[if ba == 1 { 0 } else { p * asz }..][..asz];
        let bslice = &bd[if bb == 1 { 0 } else { p * bsz }..][..bsz];
        let am = if ta {
            Mat::rows_t(aslice, ac)
        } else {
            Mat::rows(aslice, ac)
        };
        let bm = if tb {
            Mat::rows_t(bslice, bc)
        } else {
            Mat::rows(bslice, bc)
        };
        gemm_row_blocks(m, n, k, dst, false, am, bm);
    };
    if batch == 1 {
        product(0, &mut out);
    } else {
        // one product per chunk (in parallel when the batch is large enough)
        let work = parallel::product_work(batch * m * n * k);
        parallel::for_each_chunk(&mut out, m * n, work, || (), |_, p, dst| product(p, dst));
    }
    let shape = if a.ndim() == 2 {
        vec![m, n]
    } else {
        vec![batch, m, n]
    };
    Tensor::from_op(out, shape, &[a, b], || MatMulBackward { ta, tb })
}

/// Least multiply-adds per row block of [`gemm_row_blocks`].
const ROW_BLOCK_WORK: usize = 1 << 20;

/// `dst = a @ b` (or `+=` when `accumulate`) for a row-major `m x n` `dst`, in blocks of rows
/// fixed by the sizes alone (at least [`ROW_BLOCK_WORK`] multiply-adds and 16 rows each),
/// computed in parallel when large (see [`parallel`]).
fn gemm_row_blocks<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [T],
    accumulate: bool,
    a: Mat<'_, T>,
    b: Mat<'_, T>,
) {
    let rows = (ROW_BLOCK_WORK / (n * k).max(1))
        .max(16)
        .next_multiple_of(16);
    if rows >= m {
        gemm(m, n, k, dst, n, 1, accumulate, a, b);
        return;
    }
    parallel::for_each_chunk(
        dst,
        rows * n,
        parallel::product_work(m * n * k),
        || (),
        |_, i, block| {
            let r0 = i * rows;
            let a_rows = Mat {
                data: &a.data[r0 * a.rs..],
                rs: a.rs,
                cs: a.cs,
            };
            gemm(block.len() / n, n, k, block, n, 1, accumulate, a_rows, b);
        },
    );
}

struct LinearBackward;

impl<T: Float> Backward<T> for LinearBackward {
    fn name(&self) -> &'static str {
        "linear"
    }
    fn backward(&self, ctx: &BackwardCtx<'_, T>, g: &Tensor<T>) -> Vec<Option<Tensor<T>>> {
        let (x, w) = (&ctx.inputs[0], &ctx.inputs[1]);
        // y = x W^T + b: dx = g W, dW = g^T x, db = sum over rows of g.
        let gx = ctx.needs[0].then(|| matmul_t(g, w, false, false));
        let gw = ctx.needs[1].then(|| matmul_t(g, x, true, false));
        let mut res = vec![gx, gw];
        if ctx.inputs.len() == 3 {
            res.push(ctx.needs[2].then(|| g.sum_to(ctx.inputs[2].shape())));
        }
        res
    }
}

impl<T: Float> Tensor<T> {
    /// The matrix product `C[i,j] = sum_p A[i,p] B[p,j]`: `[m,k] @ [k,n] -> [m,n]`, or batched
    /// `[b,m,k] @ [b,k,n] -> [b,m,n]` where a batch of 1 on either side broadcasts (a 2-D
    /// operand next to a 3-D one counts as a batch of 1).
    ///
    /// Gradients: `dA = g B^T`, `dB = A^T g` (summed over a broadcast batch), themselves
    /// differentiable. Panics (naming the shapes) when the inner dimensions or batches differ.
    pub fn matmul(&self, other: &Tensor<T>) -> Tensor<T> {
        match (self.ndim(), other.ndim()) {
            (2, 2) | (3, 3) => matmul_t(self, other, false, false),
            (3, 2) => {
                let o = other.reshape(&[1, other.dim(0), other.dim(1)]);
                matmul_t(self, &o, false, false)
            }
            (2, 3) => {
                let s = self.reshape(&[1, self.dim(0), self.dim(1)]);
                matmul_t(&s, other, false, false)
            }
            _ => panic!(
                "matmul: operands must be 2-D or 3-D, got shapes {:?} and {:?}",
                self.shape(),
                other.shape()
            ),
        }
    }

    /// The product with the transpose of the last two dimensions of `other`:
    /// `self @ other^T` (no copy is made of the transpose).
    pub fn matmul_nt(&self, other: &Tensor<T>) -> Tensor<T> {
        matmul_t(self, other, false, true)
    }

    /// The product with the transpose of the last two dimensions of `self`:
    /// `self^T @ other` (no copy is made of the transpose).
    pub fn matmul_tn(&self, other: &Tensor<T>) -> Tensor<T> {
        matmul_t(self, other, true, false)
    }

    /// A fully connected layer, PyTorch's convention: `y = x W^T + b`, i.e.
    /// `y[i,o] = sum_j x[i,j] W[o,j] + b[o]`, with `x` `[N, in]`, `W` `[out, in]`, `b` `[out]`;
    /// `y` is `[N, out]`. A 1-D `x` (`[in]`) gives `[out]`; more leading dimensions are
    /// flattened and restored.
    ///
    /// Gradients: `dx = g W`, `dW = g^T x`, `db = sum_i g[i, :]`.
    pub fn linear(&self, weight: &Tensor<T>, bias: Option<&Tensor<T>>) -> Tensor<T> {
        let bias_shape = bias.map(|b| b.shape().to_vec());
        let bad = || -> ! {
            panic!(
                "linear: input {:?}, weight {:?} and bias {:?} do not fit (want x [N, in], W [out, in], b [out])",
                self.shape(),
                weight.shape(),
                bias_shape
            )
        };
        if weight.ndim() != 2 || self.ndim() == 0 {
            bad();
        }
        let (out_f, in_f) = (weight.dim(0), weight.dim(1));
        if self.shape()[self.ndim() - 1] != in_f {
            bad();
        }
        if let Some(b) = bias {
            if b.shape() != [out_f] {
                bad();
            }
        }
        if self.ndim() != 2 {
            let lead: Vec<usize> = self.shape()[..self.ndim() - 1].to_vec();
            let rows: usize = lead.iter().product();
            let y = self.reshape(&[rows, in_f]).linear(weight, bias);
            let mut shape = lead;
            shape.push(out_f);
            return y.reshape(&shape);
        }
        let rows = self.dim(0);
        let mut out = vec![T::zero(); rows * out_f];
        if let Some(b) = bias {
            for row in out.chunks_exact_mut(out_f.max(1)) {
                row.copy_from_slice(b.data());
            }
        }
        let (xm, wm) = (
            Mat::rows(self.data(), in_f),
            Mat::rows_t(weight.data(), in_f),
        );
        gemm_row_blocks(rows, out_f, in_f, &mut out, bias.is_some(), xm, wm);
        let shape = vec![rows, out_f];
        match bias {
            Some(b) => Tensor::from_op(out, shape, &[self, weight, b], || LinearBackward),
            None => Tensor::from_op(out, shape, &[self, weight], || LinearBackward),
        }
    }
}

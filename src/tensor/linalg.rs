//! Matrix products, the linear solve, and the `f64` vector helpers of gradient aggregation.
//!
//! The primitive is `matmul_t(a, b, ta, tb) = op(a) @ op(b)` with `op` the identity or the
//! transpose (read through strides, never copied), batched over an optional leading dimension
//! (a batch of 1 broadcasts). Its backward, for upstream `g`, is again made of `matmul_t`:
//! `d op(a) = g @ op(b)^T`, `d op(b) = op(a)^T @ g`, so gradients of any order are available.
//! `linear(x, W, b) = x @ W^T + b` is one fused op with the same rules plus `db = sum_rows(g)`.
//!
//! [`Tensor::solve`] gives `X = A^-1 B` (Gaussian elimination with partial pivoting in `f64`,
//! [`solve_f64`]); its backward follows from the adjoint: for upstream `G`, `dB = A^-T G` (one
//! more solve) and `dA = -dB X^T`, both built from differentiable ops.
//!
//! [`dot`], [`norm`], [`cosine`], [`weighted_sum`], [`gram`] and [`gram_cosine`] work on plain `f64` vectors
//! (flattened per-task gradients in multi-task learning), summing in index order.

use super::kernels::{gemm, Mat};
use super::{parallel, Float, Tensor};
use crate::autodiff::{Backward, BackwardCtx};

struct MatMulBackward {
    ta: bool,
    tb: bool,
}

impl_backward!(MatMulBackward, "matmul", |self, ctx, g| {
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
});

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

impl_backward!(LinearBackward, "linear", |self, ctx, g| {
    let (x, w) = (&ctx.inputs[0], &ctx.inputs[1]);
    // y = x W^T + b: dx = g W, dW = g^T x, db = sum over rows of g.
    let gx = ctx.needs[0].then(|| matmul_t(g, w, false, false));
    let gw = ctx.needs[1].then(|| matmul_t(g, x, true, false));
    let mut res = vec![gx, gw];
    if ctx.inputs.len() == 3 {
        res.push(ctx.needs[2].then(|| g.sum_to(ctx.inputs[2].shape())));
    }
    res
});

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

    /// The solution `X [n, m]` of `A X = B`, `self` being a square non-singular `A [n, n]` and
    /// `b` `B [n, m]` ([`solve_f64`]: Gaussian elimination with partial pivoting, in `f64`).
    ///
    /// Gradients, for upstream `G`: `dB = A^-T G`, `dA = -dB X^T`, themselves differentiable
    /// (any order). Panics on shapes that do not fit or a singular matrix (a zero pivot).
    pub fn solve(&self, b: &Tensor<T>) -> Tensor<T> {
        let a = self;
        assert!(
            a.ndim() == 2 && b.ndim() == 2 && a.dim(0) == a.dim(1) && b.dim(0) == a.dim(0),
            "solve: want A [n, n] and B [n, m], got {:?} and {:?}",
            a.shape(),
            b.shape()
        );
        let (n, m) = (b.dim(0), b.dim(1));
        let x = solve_f64(&a.to_f64_vec(), n, &b.to_f64_vec(), 0.0).unwrap_or_else(|| {
            panic!("solve: singular matrix of shape {:?}", a.shape());
        });
        let data = x.into_iter().map(T::of).collect();
        Tensor::from_op(data, vec![n, m], &[a, b], || SolveBackward)
    }
}

struct SolveBackward;

impl<T: Float> Backward<T> for SolveBackward {
    fn name(&self) -> &'static str {
        "solve"
    }

    /// `X = A^{-1} B`: `dB = A^{-T} G`, `dA = -dB X^T` (differentiable again).
    fn backward(&self, ctx: &BackwardCtx<'_, T>, g: &Tensor<T>) -> Vec<Option<Tensor<T>>> {
        let a = &ctx.inputs[0];
        let gb = a.transpose(0, 1).solve(g);
        let ga = if ctx.needs[0] {
            Some(gb.matmul_nt(ctx.output).neg())
        } else {
            None
        };
        vec![ga, if ctx.needs[1] { Some(gb) } else { None }]
    }
}

/// The solution `X` (row-major `[n, m]`) of `A X = B` for a square `A` (row-major `[n, n]`) and
/// `B` (row-major `[n, m]`, `m = b.len() / n`), by Gaussian elimination with partial pivoting:
/// for each column the row with the largest magnitude (the last such on ties) becomes the
/// pivot row, rows below subtract `f = a[r][col] / pivot` times it (skipped when `f = 0`), then
/// back substitution `x[r] = (b[r] - a[r][r+1] x[r+1] - ... - a[r][n-1] x[n-1]) / a[r][r]`,
/// subtracting in that order.
///
/// `None` when a pivot is zero, NaN, or smaller in magnitude than `min_pivot` (0 accepts every
/// nonzero pivot). Panics when the lengths do not fit.
pub fn solve_f64(a: &[f64], n: usize, b: &[f64], min_pivot: f64) -> Option<Vec<f64>> {
    let m = b.len().checked_div(n).unwrap_or(0);
    assert!(
        a.len() == n * n && b.len() == n * m,
        "solve_f64: A has {} values and B {} for {n} rows (want n*n and a multiple of n)",
        a.len(),
        b.len()
    );
    let (mut aa, mut bb) = (a.to_vec(), b.to_vec());
    for col in 0..n {
        let piv = (col..n)
            .max_by(|&i, &j| aa[i * n + col].abs().total_cmp(&aa[j * n + col].abs()))
            .expect("rows left");
        let size = aa[piv * n + col].abs();
        if !(size > 0.0 && size >= min_pivot) {
            return None;
        }
        if piv != col {
            for k in 0..n {
                aa.swap(col * n + k, piv * n + k);
            }
            for k in 0..m {
                bb.swap(col * m + k, piv * m + k);
            }
        }
        let p = aa[col * n + col];
        for r in col + 1..n {
            let f = aa[r * n + col] / p;
            if f != 0.0 {
                for k in col..n {
                    aa[r * n + k] -= f * aa[col * n + k];
                }
                for k in 0..m {
                    bb[r * m + k] -= f * bb[col * m + k];
                }
            }
        }
    }
    for col in (0..n).rev() {
        let p = aa[col * n + col];
        for k in 0..m {
            let mut s = bb[col * m + k];
            for j in col + 1..n {
                s -= aa[col * n + j] * bb[j * m + k];
            }
            bb[col * m + k] = s / p;
        }
    }
    Some(bb)
}

/// `sum_i a_i b_i`, summed in index order.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The Euclidean norm `sqrt(a . a)`.
pub fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// The cosine similarity `a . b / (||a|| ||b||)` (0 when either vector is zero).
pub fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let d = norm(a) * norm(b);
    if d > 0.0 {
        dot(a, b) / d
    } else {
        0.0
    }
}

/// `sum_i w_i v_i`, accumulated in the order of `vs` (as long as the first vector; empty when
/// there is none).
pub fn weighted_sum(vs: &[Vec<f64>], w: &[f64]) -> Vec<f64> {
    let n = vs.first().map_or(0, |v| v.len());
    let mut out = vec![0.0; n];
    for (v, &wi) in vs.iter().zip(w) {
        for (o, x) in out.iter_mut().zip(v) {
            *o += wi * x;
        }
    }
    out
}

/// The Gram matrix (Gramian) `G[i][j] = v_i . v_j` of the vectors `vs`, i.e. `J J^T` for the
/// matrix `J` whose rows they are: each `dot(v_i, v_j)` with `i <= j` once, mirrored.
pub fn gram(vs: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let t = vs.len();
    let mut g = vec![vec![0.0; t]; t];
    for i in 0..t {
        for j in i..t {
            let d = dot(&vs[i], &vs[j]);
            g[i][j] = d;
            g[j][i] = d;
        }
    }
    g
}

/// The cosine of vectors `i` and `j` from their Gram matrix `g` ([`gram`]):
/// `G[i][j] / (sqrt(G[i][i]) sqrt(G[j][j]))`, 0 when either vector is zero; the same bits as
/// [`cosine`] of the vectors themselves.
pub fn gram_cosine(g: &[Vec<f64>], i: usize, j: usize) -> f64 {
    let d = g[i][i].sqrt() * g[j][j].sqrt();
    if d > 0.0 {
        g[i][j] / d
    } else {
        0.0
    }
}

//! Fused op chains: one kernel where the composed ops would make several passes over memory.
//!
//! `batch_norm_relu_max_pool2` is Conv-4's block tail, `max_pool2d(relu(batch_norm(x)), 2, 2)`.
//! On the 28x28 layer of an Omniglot batch the composed chain makes about eight passes over a
//! 15 MB activation forward and backward, and keeps two more such tensors alive for the
//! backward pass; the fused op reads `x` once for the statistics and once for the pooled output,
//! and in the unrecorded backward gathers the winners and makes one read-`x`-write-`dx` pass. It
//! stores only the pooled output and, per window, the offset of the pixel that won.
//!
//! Its recorded backward (when a gradient must itself be differentiated, as in second-order MAML)
//! is composed from differentiable ops: the pooling and ReLU Jacobians are constant selections
//! (`put_add_flat` at the winning pixels, gated by `where_positive` on the output), followed by
//! batch norm's recorded backward, so every order of derivative matches the composed chain.

use super::functional::{
    batch_norm_grad_coefficients, batch_norm_grad_recorded, channel_stats, ncs, Pair,
};
use super::{kernels, parallel, Float, Tensor};
use crate::autodiff::{is_grad_enabled, Backward, BackwardCtx};
use std::sync::Arc;

struct BnReluPoolBackward {
    eps: f64,
    mean: Vec<f64>,
    inv_std: Vec<f64>,
    /// For every output pixel, the offset within its plane of the pixel of its 2x2 window
    /// that won.
    winner: Vec<u32>,
}

/// Flat index in `x` (`[planes, h, w]`) of the winning pixel of every output window.
fn winner_offsets(winner: &[u32], hw: usize, howo: usize) -> Vec<usize> {
    winner
        .iter()
        .enumerate()
        .map(|(j, &p)| j / howo.max(1) * hw + p as usize)
        .collect()
}

impl<T: Float> Backward<T> for BnReluPoolBackward {
    fn name(&self) -> &'static str {
        "batch_norm_relu_max_pool2"
    }
    fn backward(&self, ctx: &BackwardCtx<'_, T>, g: &Tensor<T>) -> Vec<Option<Tensor<T>>> {
        let (x, gamma) = (&ctx.inputs[0], &ctx.inputs[1]);
        let (n, c, _) = ncs(x.shape(), "batch_norm_relu_max_pool2");
        let (h, w) = (x.dim(2), x.dim(3));
        let (ho, wo) = (h / 2, w / 2);
        if is_grad_enabled() {
            // Constant selections, then batch norm's differentiable backward.
            let gate = g.where_positive(&ctx.output.detach());
            let idx: Arc<[usize]> = winner_offsets(&self.winner, h * w, ho * wo).into();
            let gy = gate.put_add_flat(idx, x.shape());
            return batch_norm_grad_recorded(x, gamma, &gy, self.eps, ctx.needs);
        }
        // Unrecorded: the upstream gradient of the batch-norm output, gy, is g at the winning
        // pixel of every window whose output is positive and 0 elsewhere. Per channel
        // sg = sum gy, sgx = sum gy x (over the winners only), then as batch norm's fused rule:
        // dx = a gy + b x + cc with a = gamma inv, b = -gamma inv^2 sgh / m, cc = -a sg/m - b mu.
        let (gd, od, xd, gm) = (g.data(), ctx.output.data(), x.data(), gamma.data());
        let (hw, howo) = (h * w, ho * wo);
        // Per output pixel: gy (g, or 0 where the output is not positive; branch-free, as the
        // sign pattern is data-dependent).
        let gy = parallel::zip_slices(gd, od, |gv, ov| if ov > T::zero() { gv } else { T::zero() });
        let pos = &self.winner;
        // per plane (sum gy, sum gy x at the winners), then per channel in sample order
        let mut plane_sums = vec![Pair::default(); n * c];
        let work = n * c * howo * 4;
        let scratch = || vec![T::zero(); howo];
        parallel::for_each_chunk(&mut plane_sums, c, work, scratch, |xg, img, sums| {
            for (k, acc) in sums.iter_mut().enumerate() {
                let pl = img * c + k;
                let xs = &xd[pl * hw..(pl + 1) * hw];
                let (gp, pp) = (
                    &gy[pl * howo..(pl + 1) * howo],
                    &pos[pl * howo..(pl + 1) * howo],
                );
                for (v, &p) in xg.iter_mut().zip(pp) {
                    *v = xs[p as usize];
                }
                *acc = Pair(kernels::sum(gp).as_f64(), kernels::dot(gp, xg).as_f64());
            }
        });
        let mut sums = vec![Pair::default(); c];
        for (pl, &p) in plane_sums.iter().enumerate() {
            sums[pl % c] += p;
        }
        let m = (n * hw).max(1) as f64;
        let (sgh, coef) = batch_norm_grad_coefficients(&self.mean, &self.inv_std, gm, &sums, m);
        let gx = ctx.needs[0].then(|| {
            let mut out = vec![T::zero(); xd.len()];
            let work = xd.len() * 2;
            parallel::for_each_chunk(
                &mut out,
                hw.max(1),
                work,
                || (),
                |_, pl, plane| {
                    let (a, b, cc) = coef[pl % c];
                    for (o, &xv) in plane.iter_mut().zip(&xd[pl * hw..(pl + 1) * hw]) {
                        *o = b * xv + cc;
                    }
                    let (gp, pp) = (
                        &gy[pl * howo..(pl + 1) * howo],
                        &pos[pl * howo..(pl + 1) * howo],
                    );
                    for (&gv, &p) in gp.iter().zip(pp) {
                        plane[p as usize] += a * gv;
                    }
                },
            );
            Tensor::from_vec(out, x.shape())
        });
        let ggamma =
            ctx.needs[1].then(|| Tensor::from_vec(sgh.iter().map(|&v| T::of(v)).collect(), &[c]));
        let gbeta =
            ctx.needs[2].then(|| Tensor::from_vec(sums.iter().map(|p| T::of(p.0)).collect(), &[c]));
        vec![gx, ggamma, gbeta]
    }
}

/// One output row of the fused forward: for every window `ox` of the row pair `r0`, `r1` (each
/// `2 * out.len()` long), the maximum of `x * a + b` over its 4 pixels, floored at 0, and the
/// offset of the first pixel that reaches it (`top` is the offset of `r0[0]` in its plane, `w`
/// the plane's width). Branch-free over contiguous indices, so the compiler vectorises it.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn pool_row<T: Float>(
    r0: &[T],
    r1: &[T],
    a: T,
    b: T,
    top: u32,
    w: u32,
    out: &mut [T],
    winner: &mut [u32],
) {
    let n = out.len();
    let (r0, r1, winner) = (&r0[..2 * n], &r1[..2 * n], &mut winner[..n]);
    for ox in 0..n {
        let (v0, v1) = (r0[2 * ox] * a + b, r0[2 * ox + 1] * a + b);
        let (v2, v3) = (r1[2 * ox] * a + b, r1[2 * ox + 1] * a + b);
        // first maximum wins (as max_pool2d), as a tournament
        let left = top + 2 * ox as u32;
        let (m01, k01) = if v1 > v0 { (v1, left + 1) } else { (v0, left) };
        let below = left + w;
        let (m23, k23) = if v3 > v2 {
            (v3, below + 1)
        } else {
            (v2, below)
        };
        let (best, kk) = if m23 > m01 { (m23, k23) } else { (m01, k01) };
        out[ox] = if best > T::zero() { best } else { T::zero() };
        winner[ox] = kk;
    }
}

impl<T: Float> Tensor<T> {
    /// `max_pool2d(relu(batch_norm(x, gamma, beta, eps)), 2, 2)` for `x` shaped `[N, C, H, W]`
    /// in one op (Conv-4's block tail): the same values and gradients of every order as the
    /// composed chain, with far less memory traffic. Pooling is floor mode (odd sizes drop
    /// the last row / column from the windows; batch statistics still use every pixel).
    pub fn batch_norm_relu_max_pool2(
        &self,
        gamma: &Tensor<T>,
        beta: &Tensor<T>,
        eps: f64,
    ) -> Tensor<T> {
        let op = "batch_norm_relu_max_pool2";
        assert!(
            self.ndim() == 4
                && self.dim(2) >= 2
                && self.dim(3) >= 2
                && self.dim(2) * self.dim(3) <= u32::MAX as usize,
            "{op}: expected an input [N, C, H, W] with H, W >= 2 and H * W < 2^32, got {:?}",
            self.shape()
        );
        let (n, c, s) = ncs(self.shape(), op);
        assert!(
            gamma.shape() == [c] && beta.shape() == [c],
            "{op}: weight shape {:?} and bias shape {:?} do not match the {c} channels of input shape {:?}",
            gamma.shape(),
            beta.shape(),
            self.shape()
        );
        let (h, w) = (self.dim(2), self.dim(3));
        let (ho, wo) = (h / 2, w / 2);
        let (mean, inv_std) = channel_stats(self.data(), n, c, s, eps);
        let (x, gm, bt) = (self.data(), gamma.data(), beta.data());
        let howo = ho * wo;
        let mut out = vec![T::zero(); n * c * howo];
        let mut winner = vec![0u32; n * c * howo];
        let pool_plane = |pl: usize, out_pl: &mut [T], win_pl: &mut [u32]| {
            let (ch, plane) = (pl % c, &x[pl * h * w..(pl + 1) * h * w]);
            // the same affine map as `batch_norm`, so the values agree bit for bit
            let a = T::of(inv_std[ch]) * gm[ch];
            let b = bt[ch] - T::of(mean[ch]) * a;
            for oy in 0..ho {
                let r0 = &plane[2 * oy * w..2 * oy * w + 2 * wo];
                let r1 = &plane[(2 * oy + 1) * w..(2 * oy + 1) * w + 2 * wo];
                let (o_row, k_row) = (
                    &mut out_pl[oy * wo..(oy + 1) * wo],
                    &mut win_pl[oy * wo..(oy + 1) * wo],
                );
                let top = (2 * oy * w) as u32;
                pool_row(r0, r1, a, b, top, w as u32, o_row, k_row);
            }
        };
        parallel::for_each_chunk2(&mut out, &mut winner, howo, x.len(), |pl, o, k| {
            pool_plane(pl, o, k)
        });
        Tensor::from_op(out, vec![n, c, ho, wo], &[self, gamma, beta], move || {
            BnReluPoolBackward {
                eps,
                mean,
                inv_std,
                winner,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autodiff::check::assert_gradients;
    use crate::autodiff::grad;
    use rand::SeedableRng;

    fn composed(x: &Tensor<f64>, g: &Tensor<f64>, b: &Tensor<f64>) -> Tensor<f64> {
        x.batch_norm(g, b, 1e-5).relu().max_pool2d(2, 2)
    }

    fn inputs(shape: &[usize], seed: u64) -> [Tensor<f64>; 3] {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let c = shape[1];
        [
            Tensor::rand_normal(shape, 0.3, 1.0, &mut rng).requires_grad_(),
            Tensor::rand_uniform(&[c], 0.5, 1.5, &mut rng).requires_grad_(),
            Tensor::rand_uniform(&[c], -0.5, 0.5, &mut rng).requires_grad_(),
        ]
    }

    #[test]
    fn values_and_gradients_match_the_composed_chain() {
        // even and odd sizes (7x7 drops the last row and column)
        for (shape, seed) in [([3, 2, 4, 6], 1), ([2, 3, 7, 7], 2), ([4, 2, 3, 2], 3)] {
            let [x, gm, bt] = inputs(&shape, seed);
            let fused = x.batch_norm_relu_max_pool2(&gm, &bt, 1e-5);
            let reference = composed(&x, &gm, &bt);
            assert_eq!(fused.shape(), reference.shape());
            assert!(fused.max_abs_diff(&reference) == 0.0, "forward differs");
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed + 10);
            let up = Tensor::rand_normal(fused.shape(), 0.0, 1.0, &mut rng);
            let params = [x.clone(), gm.clone(), bt.clone()];
            // unrecorded (fused kernel) and recorded (composed rule) against the chain's
            let want = grad(&[reference.mul(&up).sum_all()], &params, false);
            let got_rec = grad(&[fused.mul(&up).sum_all()], &params, true);
            let fused = x.batch_norm_relu_max_pool2(&gm, &bt, 1e-5);
            let got = grad(&[fused.mul(&up).sum_all()], &params, false);
            for i in 0..3 {
                assert!(
                    got[i].max_abs_diff(&want[i]) < 1e-12,
                    "input {i} unrecorded"
                );
                assert!(
                    got_rec[i].max_abs_diff(&want[i]) < 1e-12,
                    "input {i} recorded"
                );
            }
        }
    }

    #[test]
    fn second_order_matches_finite_differences() {
        let [x, gm, bt] = inputs(&[3, 2, 5, 4], 7);
        assert_gradients(
            "batch_norm_relu_max_pool2",
            &|t: &[Tensor<f64>]| t[0].batch_norm_relu_max_pool2(&t[1], &t[2], 1e-5),
            &[x, gm, bt],
        );
    }
}

//! Fused op chains: one kernel where the composed ops would make several passes over memory.
//!
//! `conv2d_relu_max_pool` is the multi-task trunks' hot path, `max_pool2d(relu(conv2d(x, W) +
//! b), k, k)` with stride 1 and zero padding. Forward: per image, the input is zero-padded once
//! and each output plane is accumulated tap by tap over the padded width (long contiguous loops
//! the compiler vectorises; AVX2/FMA code is selected at run time), then ReLU and pooling are
//! applied while the plane is in L1, keeping only the arg-max of each window. The unrecorded
//! backward only visits the pooled positions: `db[o] += g`, `dW[o,c,u,v] += g x_pad[c, y+u,
//! x+v]` and `dx[c, y+u-p, x+v-p] += g W[o,c,u,v]` at each window's arg-max `(y, x)` when its
//! value is positive. Images are split across rayon workers in chunks fixed by the batch size.
//! The recorded backward gates and scatters the gradient to the conv output and applies
//! conv2d's differentiable rules.
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

use super::conv::conv_geom;
use super::functional::{
    batch_norm_grad_coefficients, batch_norm_grad_recorded, batch_norm_param_grads, channel_stats,
    ncs, ncs_affine, Pair,
};
use super::kernels::{self, ConvGeom};
use super::{parallel, Float, Tensor};
use crate::autodiff::{is_grad_enabled, BackwardCtx};
use rayon::prelude::*;
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

impl_backward!(
    BnReluPoolBackward,
    "batch_norm_relu_max_pool2",
    |self, ctx, g| {
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
        let (ggamma, gbeta) = batch_norm_param_grads(ctx.needs, &sgh, &sums);
        vec![gx, ggamma, gbeta]
    }
);

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
        let (n, c, s) = ncs_affine(self, gamma, beta, op);
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

// ---------------------------------------------------------------------------------------------
// conv2d_relu_max_pool: max_pool2d(relu(conv2d(x, W, b, stride 1, padding)), k, k)
// ---------------------------------------------------------------------------------------------

/// Marks a pooling window whose maximum is not positive (output 0, no gradient).
const NO_WINNER: u32 = u32::MAX;

/// The geometry of [`Tensor::conv2d_relu_max_pool`]: the stride-1 convolution's, the pooling
/// window `pool` (= its stride), the pooled output `ph x pw` and the zero-padded input
/// `hp x wp` whose row stride the conv planes keep.
#[derive(Clone, Copy, Debug)]
struct ConvPoolGeom {
    conv: ConvGeom,
    pool: usize,
    ph: usize,
    pw: usize,
    hp: usize,
    wp: usize,
}

impl ConvPoolGeom {
    fn new(x: &[usize], w: &[usize], pad: usize, pool: usize) -> ConvPoolGeom {
        let conv = conv_geom("conv2d_relu_max_pool", x, w, 1, pad);
        assert!(
            pool >= 1 && conv.ho >= pool && conv.wo >= pool,
            "conv2d_relu_max_pool: pool {pool} is 0 or larger than the conv output {}x{}",
            conv.ho,
            conv.wo
        );
        ConvPoolGeom {
            conv,
            pool,
            ph: conv.ho / pool,
            pw: conv.wo / pool,
            hp: conv.h + 2 * pad,
            wp: conv.w + 2 * pad,
        }
    }
    fn in_len(&self) -> usize {
        self.conv.c * self.conv.hw()
    }
    fn out_len(&self) -> usize {
        self.conv.o * self.ph * self.pw
    }
    fn pad_len(&self) -> usize {
        self.conv.c * self.hp * self.wp
    }
    /// Flat length of a conv plane laid out with the padded row stride.
    fn ext_len(&self) -> usize {
        (self.conv.ho - 1) * self.wp + self.conv.wo
    }
}

/// Most chunks of images a batch is cut into.
const MAX_CHUNKS: usize = 32;

/// Images per rayon task: fixed by the batch size alone (at most [`MAX_CHUNKS`] chunks), so the
/// backward's per-chunk partial sums, and hence the gradients, are the same bits at any thread
/// count.
fn images_per_chunk(g: &ConvPoolGeom) -> usize {
    g.conv.n.div_ceil(MAX_CHUNKS).max(1)
}

/// Copies one image `x` (`[C, H, W]`) into the middle of the zero-bordered `xpad`
/// (`[C, hp, wp]`).
#[inline(always)]
fn pad_image<T: Float>(g: &ConvPoolGeom, x: &[T], xpad: &mut [T]) {
    let (c, h, w, pad) = (g.conv.c, g.conv.h, g.conv.w, g.conv.pad);
    if pad > 0 {
        xpad.fill(T::zero());
    }
    for ch in 0..c {
        for y in 0..h {
            let dst = ch * g.hp * g.wp + (y + pad) * g.wp + pad;
            let src = (ch * h + y) * w;
            xpad[dst..dst + w].copy_from_slice(&x[src..src + w]);
        }
    }
}

/// One output channel's conv plane (padded row stride): `plane = b_o + sum_{c,u,v}
/// W[o,c,u,v] xpad[c, y+u, x+v]`, tap by tap over long contiguous runs (three taps per pass
/// for 3-wide kernels), which the compiler vectorises. `wo_taps` is `W[o]` (`C*kh*kw`).
#[inline(always)]
fn conv_plane<T: Float>(g: &ConvPoolGeom, xpad: &[T], wo_taps: &[T], bias: T, plane: &mut [T]) {
    let (kh, kw) = (g.conv.kh, g.conv.kw);
    let len = plane.len();
    plane.fill(bias);
    for cu in 0..g.conv.c * kh {
        let (c, u) = (cu / kh, cu % kh);
        let wr = &wo_taps[cu * kw..(cu + 1) * kw];
        let start = c * g.hp * g.wp + u * g.wp;
        if kw == 3 {
            let (w0, w1, w2) = (wr[0], wr[1], wr[2]);
            let (s0, s1, s2) = (
                &xpad[start..start + len],
                &xpad[start + 1..start + 1 + len],
                &xpad[start + 2..start + 2 + len],
            );
            for (((p, &a), &b), &c) in plane.iter_mut().zip(s0).zip(s1).zip(s2) {
                *p += w0 * a + w1 * b + w2 * c;
            }
        } else {
            for (v, &wv) in wr.iter().enumerate() {
                let src = &xpad[start + v..start + v + len];
                for (p, &s) in plane.iter_mut().zip(src) {
                    *p += wv * s;
                }
            }
        }
    }
}

/// Scratch rows of the pooling: per column of a window row its maximum and first row
/// (`colmax`, `colarg`), per window its best value, row and column so far.
struct PoolScratch<T> {
    colmax: Vec<T>,
    colarg: Vec<u32>,
    hbest: Vec<T>,
    hrow: Vec<u32>,
    hcol: Vec<u32>,
}

impl<T: Float> PoolScratch<T> {
    fn new(g: &ConvPoolGeom) -> Self {
        PoolScratch {
            colmax: vec![T::zero(); g.conv.wo],
            colarg: vec![0; g.conv.wo],
            hbest: vec![T::zero(); g.pw],
            hrow: vec![0; g.pw],
            hcol: vec![0; g.pw],
        }
    }
}

/// ReLU and `pool x pool` max-pooling of one conv `plane` (padded row stride) into `out`
/// (`ph * pw`), with PyTorch's tie-break (the first maximum in row-major order): a vectorisable
/// vertical pass keeps each column's maximum and its first row, then a branch-free horizontal
/// pass picks the smallest (row, column) among the window's maxima. `idx` gets each window's
/// arg-max offset `y * wp + x`, or [`NO_WINNER`] when its maximum is not positive.
#[inline(always)]
fn relu_pool_plane<T: Float>(
    g: &ConvPoolGeom,
    plane: &[T],
    s: &mut PoolScratch<T>,
    out: &mut [T],
    idx: &mut [u32],
) {
    let PoolScratch {
        colmax,
        colarg,
        hbest,
        hrow,
        hcol,
    } = s;
    let k = g.pool;
    let cw = g.pw * k;
    for py in 0..g.ph {
        let y0 = py * k;
        colmax[..cw].copy_from_slice(&plane[y0 * g.wp..y0 * g.wp + cw]);
        colarg[..cw].fill(0);
        for dy in 1..k {
            let row = &plane[(y0 + dy) * g.wp..(y0 + dy) * g.wp + cw];
            for ((m, a), &v) in colmax[..cw]
                .iter_mut()
                .zip(colarg[..cw].iter_mut())
                .zip(row)
            {
                let gt = v > *m;
                *m = if gt { v } else { *m };
                *a = if gt { dy as u32 } else { *a };
            }
        }
        for px in 0..g.pw {
            hbest[px] = colmax[px * k];
            hrow[px] = colarg[px * k];
            hcol[px] = (px * k) as u32;
        }
        for dx in 1..k {
            for px in 0..g.pw {
                let x = px * k + dx;
                let (m, a) = (colmax[x], colarg[x]);
                let better = (m > hbest[px]) | ((m == hbest[px]) & (a < hrow[px]));
                hbest[px] = if better { m } else { hbest[px] };
                hrow[px] = if better { a } else { hrow[px] };
                hcol[px] = if better { x as u32 } else { hcol[px] };
            }
        }
        for px in 0..g.pw {
            let (best, ba, bx) = (hbest[px], hrow[px], hcol[px] as usize);
            let j = py * g.pw + px;
            if best > T::zero() {
                out[j] = best;
                idx[j] = ((y0 + ba as usize) * g.wp + bx) as u32;
            } else {
                out[j] = T::zero();
                idx[j] = NO_WINNER;
            }
        }
    }
}

/// One image's padded input, conv plane and pooling scratch.
struct ImageScratch<T> {
    xpad: Vec<T>,
    plane: Vec<T>,
    pool: PoolScratch<T>,
}

/// The forward of one image `x` into its pooled output `out` and arg-max offsets `idx` (both
/// `O * ph * pw`): pad once, then per output channel the conv plane, ReLU and pooling while the
/// plane is in L1.
#[inline(always)]
fn forward_image_body<T: Float>(
    g: &ConvPoolGeom,
    (x, w, b): (&[T], &[T], &[T]),
    s: &mut ImageScratch<T>,
    out: &mut [T],
    idx: &mut [u32],
) {
    pad_image(g, x, &mut s.xpad);
    let plane = &mut s.plane[..g.ext_len()];
    let taps = g.conv.ckk();
    let per_channel = g.ph * g.pw;
    for o in 0..g.conv.o {
        conv_plane(g, &s.xpad, &w[o * taps..(o + 1) * taps], b[o], plane);
        let (out, idx) = (
            &mut out[o * per_channel..(o + 1) * per_channel],
            &mut idx[o * per_channel..(o + 1) * per_channel],
        );
        relu_pool_plane(g, plane, &mut s.pool, out, idx);
    }
}

/// [`forward_image_body`] compiled for AVX2 and FMA.
///
/// # Safety
/// The CPU must support AVX2 and FMA ([`kernels::has_avx2_fma`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn forward_image_avx2<T: Float>(
    g: &ConvPoolGeom,
    xwb: (&[T], &[T], &[T]),
    s: &mut ImageScratch<T>,
    out: &mut [T],
    idx: &mut [u32],
) {
    forward_image_body(g, xwb, s, out, idx)
}

/// [`forward_image_body`], with AVX2/FMA code where the CPU has it.
fn forward_image<T: Float>(
    g: &ConvPoolGeom,
    xwb: (&[T], &[T], &[T]),
    s: &mut ImageScratch<T>,
    out: &mut [T],
    idx: &mut [u32],
) {
    #[cfg(target_arch = "x86_64")]
    if kernels::has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked just above).
        unsafe { forward_image_avx2(g, xwb, s, out, idx) };
        return;
    }
    forward_image_body(g, xwb, s, out, idx)
}

/// The pooled outputs and arg-max offsets of the whole batch, chunks of images in parallel.
fn conv_pool_forward<T: Float>(g: &ConvPoolGeom, x: &[T], w: &[T], b: &[T]) -> (Vec<T>, Vec<u32>) {
    let (il, ol) = (g.in_len(), g.out_len());
    let mut out = vec![T::zero(); g.conv.n * ol];
    let mut idx = vec![NO_WINNER; g.conv.n * ol];
    let ch = images_per_chunk(g);
    out.par_chunks_mut(ch * ol)
        .zip(idx.par_chunks_mut(ch * ol))
        .enumerate()
        .for_each(|(k, (out, idx))| {
            let mut s = ImageScratch {
                xpad: vec![T::zero(); g.pad_len()],
                plane: vec![T::zero(); g.ext_len()],
                pool: PoolScratch::new(g),
            };
            for (i, (o, id)) in out.chunks_mut(ol).zip(idx.chunks_mut(ol)).enumerate() {
                let n = k * ch + i;
                forward_image(g, (&x[n * il..(n + 1) * il], w, b), &mut s, o, id);
            }
        });
    (out, idx)
}

/// `dW[o] += gv * xpad[window at off]` (`dwo` is `dW[o]`, `C*kh*kw`).
#[inline(always)]
fn add_weight_grad<T: Float>(g: &ConvPoolGeom, xpad: &[T], off: usize, gv: T, dwo: &mut [T]) {
    let kw = g.conv.kw;
    let mut rows = dwo.chunks_exact_mut(kw);
    for c in 0..g.conv.c {
        for u in 0..g.conv.kh {
            let base = c * g.hp * g.wp + u * g.wp + off;
            let dst = rows.next().expect("taps = c * kh * kw");
            for (d, &s) in dst.iter_mut().zip(&xpad[base..base + kw]) {
                *d += gv * s;
            }
        }
    }
}

/// `dx[c, y+u-p, x+v-p] += gv * W[o,c,u,v]` inside the image, for the window's arg-max at
/// padded offset `off = y * wp + x` (`wo_taps` is `W[o]`, `dx_img` one image's `[C, H, W]`).
#[inline(always)]
fn add_input_grad<T: Float>(g: &ConvPoolGeom, wo_taps: &[T], off: usize, gv: T, dx_img: &mut [T]) {
    let (c_n, h, w, kh, kw, pad) = (
        g.conv.c, g.conv.h, g.conv.w, g.conv.kh, g.conv.kw, g.conv.pad,
    );
    let (y, xx) = (off / g.wp, off % g.wp);
    for c in 0..c_n {
        for u in 0..kh {
            let yy = (y + u) as isize - pad as isize;
            if yy < 0 || yy >= h as isize {
                continue;
            }
            for v in 0..kw {
                let xv = (xx + v) as isize - pad as isize;
                if xv < 0 || xv >= w as isize {
                    continue;
                }
                dx_img[(c * h + yy as usize) * w + xv as usize] +=
                    gv * wo_taps[(c * kh + u) * kw + v];
            }
        }
    }
}

/// The inputs of the unrecorded backward: `x`, `W`, the upstream gradient of the pooled output
/// and the forward's arg-max offsets.
struct BackwardInputs<'a, T> {
    x: &'a [T],
    w: &'a [T],
    gout: &'a [T],
    idx: &'a [u32],
}

/// Chunk `k`'s images' partial `(dW, db)`, adding their input gradients into `dx` (the chunk's
/// images, or empty when not needed). Only the pooled positions are visited: `db[o] += g`,
/// `dW[o,c,u,v] += g x_pad[c, y+u, x+v]`, `dx[c, y+u-p, x+v-p] += g W[o,c,u,v]` at each
/// window's arg-max `(y, x)`.
fn backward_chunk<T: Float>(
    g: &ConvPoolGeom,
    inp: &BackwardInputs<'_, T>,
    k: usize,
    dx: &mut [T],
) -> (Vec<T>, Vec<T>) {
    let (il, ol, taps) = (g.in_len(), g.out_len(), g.conv.ckk());
    let ch = images_per_chunk(g);
    let mut dw = vec![T::zero(); g.conv.o * taps];
    let mut db = vec![T::zero(); g.conv.o];
    let mut xpad = vec![T::zero(); g.pad_len()];
    for n in k * ch..((k + 1) * ch).min(g.conv.n) {
        pad_image(g, &inp.x[n * il..(n + 1) * il], &mut xpad);
        let local = n - k * ch;
        for o in 0..g.conv.o {
            for p in 0..g.ph * g.pw {
                let j = n * ol + o * g.ph * g.pw + p;
                let i = inp.idx[j];
                if i == NO_WINNER {
                    continue;
                }
                let gv = inp.gout[j];
                db[o] += gv;
                add_weight_grad(g, &xpad, i as usize, gv, &mut dw[o * taps..(o + 1) * taps]);
                if !dx.is_empty() {
                    let wo_taps = &inp.w[o * taps..(o + 1) * taps];
                    let dx_img = &mut dx[local * il..(local + 1) * il];
                    add_input_grad(g, wo_taps, i as usize, gv, dx_img);
                }
            }
        }
    }
    (dw, db)
}

/// The unrecorded gradients `(dx, dW, db)` (dx empty unless `need_dx`): chunks of images in
/// parallel, their partial `dW`, `db` added in chunk order.
fn conv_pool_backward<T: Float>(
    g: &ConvPoolGeom,
    inp: &BackwardInputs<'_, T>,
    need_dx: bool,
) -> (Vec<T>, Vec<T>, Vec<T>) {
    let il = g.in_len();
    let mut dx = vec![T::zero(); if need_dx { g.conv.n * il } else { 0 }];
    let ch = images_per_chunk(g);
    let partials: Vec<(Vec<T>, Vec<T>)> = if need_dx {
        dx.par_chunks_mut(ch * il)
            .enumerate()
            .map(|(k, d)| backward_chunk(g, inp, k, d))
            .collect()
    } else {
        (0..g.conv.n.div_ceil(ch))
            .into_par_iter()
            .map(|k| backward_chunk(g, inp, k, &mut []))
            .collect()
    };
    let mut dw = vec![T::zero(); g.conv.o * g.conv.ckk()];
    let mut db = vec![T::zero(); g.conv.o];
    for (pw, pb) in partials {
        for (a, b) in dw.iter_mut().zip(pw) {
            *a += b;
        }
        for (a, b) in db.iter_mut().zip(pb) {
            *a += b;
        }
    }
    (dx, dw, db)
}

struct ConvReluPoolBackward {
    geo: ConvPoolGeom,
    /// Per pooled output, the arg-max offset `y * wp + x` in its conv plane, or [`NO_WINNER`].
    idx: Arc<[u32]>,
}

impl ConvReluPoolBackward {
    /// The flat index in the conv output `[N, O, Ho, Wo]` of every window's arg-max (of the
    /// plane's first pixel for windows without a winner, whose gradient is gated to 0).
    fn conv_output_offsets(&self) -> Vec<usize> {
        let g = &self.geo;
        let (per_plane, howo) = (g.ph * g.pw, g.conv.howo());
        self.idx
            .iter()
            .enumerate()
            .map(|(j, &off)| {
                let base = j / per_plane * howo;
                if off == NO_WINNER {
                    return base;
                }
                let off = off as usize;
                base + off / g.wp * g.conv.wo + off % g.wp
            })
            .collect()
    }
}

/// The recorded backward of [`Tensor::conv2d_relu_max_pool`] (used when the gradient is itself
/// differentiated): the ReLU and pooling Jacobians are constant selections (`where_positive` on
/// the output, then `put_add_flat` at the winners) giving the conv output's gradient `gy`,
/// followed by conv2d's differentiable rules, so every order matches the composed chain.
fn conv_relu_pool_grad_recorded<T: Float>(
    op: &ConvReluPoolBackward,
    ctx: &BackwardCtx<'_, T>,
    g: &Tensor<T>,
) -> Vec<Option<Tensor<T>>> {
    let (x, w) = (&ctx.inputs[0], &ctx.inputs[1]);
    let conv = &op.geo.conv;
    let gate = g.where_positive(&ctx.output.detach());
    let winners: Arc<[usize]> = op.conv_output_offsets().into();
    let gy = gate.put_add_flat(winners, &[conv.n, conv.o, conv.ho, conv.wo]);
    vec![
        ctx.needs[0].then(|| gy.conv2d_input_grad(w, x.shape(), 1, conv.pad)),
        ctx.needs[1].then(|| x.conv2d_weight_grad(&gy, w.shape(), 1, conv.pad)),
        ctx.needs[2].then(|| gy.channel_sum()),
    ]
}

impl_backward!(
    ConvReluPoolBackward,
    "conv2d_relu_max_pool",
    |self, ctx, g| {
        if is_grad_enabled() {
            return conv_relu_pool_grad_recorded(self, ctx, g);
        }
        let (x, w) = (&ctx.inputs[0], &ctx.inputs[1]);
        let inputs = BackwardInputs {
            x: x.data(),
            w: w.data(),
            gout: g.data(),
            idx: &self.idx,
        };
        let (dx, dw, db) = conv_pool_backward(&self.geo, &inputs, ctx.needs[0]);
        vec![
            ctx.needs[0].then(|| Tensor::from_vec(dx, x.shape())),
            ctx.needs[1].then(|| Tensor::from_vec(dw, w.shape())),
            ctx.needs[2].then(|| Tensor::from_vec(db, &[self.geo.conv.o])),
        ]
    }
);

impl<T: Float> Tensor<T> {
    /// `max_pool2d(relu(conv2d(x, weight, bias, stride 1, padding)), pool, pool)` in one op, for
    /// `x` (`self`) shaped `[N, C, H, W]`, `weight` `[O, C, kh, kw]` and `bias` `[O]`; the result
    /// is `[N, O, Ho / pool, Wo / pool]` (floor mode), the composed chain's values with the
    /// first maximum of each window winning. The multi-task trunks' hot path: the conv output
    /// never leaves L1 and only each window's winner is stored.
    ///
    /// Its unrecorded backward visits only the winners (1/pool^2 of the conv outputs); its
    /// recorded backward is composed from differentiable ops, so gradients of every order
    /// match the composed chain's. Panics (naming the shapes) when they do not fit.
    pub fn conv2d_relu_max_pool(
        &self,
        weight: &Tensor<T>,
        bias: &Tensor<T>,
        padding: usize,
        pool: usize,
    ) -> Tensor<T> {
        let geo = ConvPoolGeom::new(self.shape(), weight.shape(), padding, pool);
        assert_eq!(
            bias.shape(),
            [geo.conv.o],
            "conv2d_relu_max_pool: bias {:?} does not fit weight {:?}",
            bias.shape(),
            weight.shape()
        );
        let (out, idx) = conv_pool_forward(&geo, self.data(), weight.data(), bias.data());
        let shape = vec![geo.conv.n, geo.conv.o, geo.ph, geo.pw];
        Tensor::from_op(out, shape, &[self, weight, bias], move || {
            ConvReluPoolBackward {
                geo,
                idx: idx.into(),
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
            let fused = || x.batch_norm_relu_max_pool2(&gm, &bt, 1e-5);
            let reference = composed(&x, &gm, &bt);
            assert_matches_the_chain(&fused, &reference, &[&x, &gm, &bt], 0.0, seed);
        }
    }

    /// Asserts that `fused()` gives `reference`'s values (within `forward_tol`) and, recorded
    /// (composed backward) or not (fused kernel), its gradients of a random projection at the
    /// three `params` (within 1e-12).
    fn assert_matches_the_chain(
        fused: &dyn Fn() -> Tensor<f64>,
        reference: &Tensor<f64>,
        params: &[&Tensor<f64>; 3],
        forward_tol: f64,
        seed: u64,
    ) {
        let out = fused();
        assert_eq!(out.shape(), reference.shape());
        assert!(
            out.max_abs_diff(reference) <= forward_tol,
            "forward differs"
        );
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed + 10);
        let up = Tensor::rand_normal(out.shape(), 0.0, 1.0, &mut rng);
        let params = params.map(|p| p.clone());
        let want = grad(&[reference.mul(&up).sum_all()], &params, false);
        let got_rec = grad(&[out.mul(&up).sum_all()], &params, true);
        let got = grad(&[fused().mul(&up).sum_all()], &params, false);
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

    #[test]
    fn second_order_matches_finite_differences() {
        let [x, gm, bt] = inputs(&[3, 2, 5, 4], 7);
        assert_gradients(
            "batch_norm_relu_max_pool2",
            &|t: &[Tensor<f64>]| t[0].batch_norm_relu_max_pool2(&t[1], &t[2], 1e-5),
            &[x, gm, bt],
        );
    }

    fn conv_inputs(
        n: usize,
        c: usize,
        h: usize,
        o: usize,
        k: usize,
        seed: u64,
    ) -> [Tensor<f64>; 3] {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        [
            Tensor::rand_normal(&[n, c, h, h], 0.0, 1.0, &mut rng).requires_grad_(),
            Tensor::rand_normal(&[o, c, k, k], 0.0, 0.5, &mut rng).requires_grad_(),
            Tensor::rand_normal(&[o], 0.0, 0.5, &mut rng).requires_grad_(),
        ]
    }

    #[test]
    fn conv_relu_max_pool_matches_the_composed_chain_recorded_or_not() {
        // 3x3 kernels (the three-tap path), other widths, padding or none, odd sizes.
        for (n, c, h, o, k, pad, pool, seed) in [
            (3, 1, 12, 4, 3, 1, 4, 1),
            (2, 2, 9, 3, 3, 0, 2, 2),
            (2, 3, 8, 2, 2, 1, 3, 3),
            (40, 2, 7, 3, 5, 2, 2, 4),
        ] {
            let [x, w, b] = conv_inputs(n, c, h, o, k, seed);
            let composed = x.conv2d(&w, Some(&b), 1, pad).relu().max_pool2d(pool, pool);
            let fused = || x.conv2d_relu_max_pool(&w, &b, pad, pool);
            // the fused op sums the taps in another order than im2col + gemm
            assert_matches_the_chain(&fused, &composed, &[&x, &w, &b], 1e-12, seed);
        }
    }

    #[test]
    fn conv_relu_max_pool_second_order_matches_finite_differences() {
        let [x, w, b] = conv_inputs(2, 2, 6, 3, 3, 7);
        assert_gradients(
            "conv2d_relu_max_pool",
            &|t: &[Tensor<f64>]| t[0].conv2d_relu_max_pool(&t[1], &t[2], 1, 2),
            &[x, w, b],
        );
    }

    #[test]
    #[should_panic(
        expected = "conv2d_relu_max_pool: pool 5 is 0 or larger than the conv output 4x4"
    )]
    fn conv_relu_max_pool_refuses_a_pool_larger_than_the_output() {
        let [x, w, b] = conv_inputs(1, 1, 4, 2, 3, 8);
        x.conv2d_relu_max_pool(&w, &b, 1, 5);
    }
}

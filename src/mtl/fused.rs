//! A fused `max_pool(relu(conv2d(x, W) + b), k)` op (stride-1 convolution with zero padding,
//! pooling `k x k` windows every `k` pixels, floor mode), the hot path of the multi-task trunks.
//!
//! Forward: per image, the input is zero-padded once and each output plane is accumulated tap
//! by tap over the padded width (long contiguous loops the compiler vectorises; AVX2/FMA code
//! is selected at run time), then ReLU and pooling are applied while the plane is in L1, keeping
//! only the arg-max of each window. Backward only visits the pooled positions (1/k^2 of the
//! convolution's outputs): `db[o] += g`, `dW[o,c,u,v] += g x_pad[c, y+u, x+v]` and
//! `dx[c, y+u-p, x+v-p] += g W[o,c,u,v]` at each window's arg-max `(y, x)` when its value is
//! positive. Images are split across rayon workers in both directions.
//!
//! The gradients it returns are plain values: the op is differentiable once (what multi-task
//! training needs), not twice; [`crate::mtl::model::Stack`] can run the unfused ops instead.

use crate::autodiff::{Backward, BackwardCtx};
use crate::tensor::{Float, Tensor};
use rayon::prelude::*;
use std::sync::Arc;

const NONE: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Geo {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    kh: usize,
    kw: usize,
    pad: usize,
    pool: usize,
    ho: usize,
    wo: usize,
    ph: usize,
    pw: usize,
    hp: usize,
    wp: usize,
}

impl Geo {
    fn new(x: &[usize], w: &[usize], pad: usize, pool: usize) -> Geo {
        assert!(
            x.len() == 4 && w.len() == 4 && x[1] == w[1] && pool >= 1,
            "conv_relu_pool: input {x:?} and weight {w:?} do not fit (want [N,C,H,W], [O,C,kh,kw])"
        );
        let (hp, wp) = (x[2] + 2 * pad, x[3] + 2 * pad);
        assert!(
            hp >= w[2] && wp >= w[3],
            "conv_relu_pool: kernel {w:?} larger than padded input {x:?}"
        );
        let (ho, wo) = (hp - w[2] + 1, wp - w[3] + 1);
        assert!(
            ho >= pool && wo >= pool,
            "conv_relu_pool: pool {pool} larger than the conv output {ho}x{wo}"
        );
        Geo {
            n: x[0],
            c: x[1],
            h: x[2],
            w: x[3],
            o: w[0],
            kh: w[2],
            kw: w[3],
            pad,
            pool,
            ho,
            wo,
            ph: ho / pool,
            pw: wo / pool,
            hp,
            wp,
        }
    }
    fn in_len(&self) -> usize {
        self.c * self.h * self.w
    }
    fn out_len(&self) -> usize {
        self.o * self.ph * self.pw
    }
    fn pad_len(&self) -> usize {
        self.c * self.hp * self.wp
    }
    /// Flat length of a conv plane laid out with the padded row stride.
    fn ext_len(&self) -> usize {
        (self.ho - 1) * self.wp + self.wo
    }
}

/// Most chunks of images a batch is cut into.
const MAX_CHUNKS: usize = 32;

/// Images per rayon task: fixed by the batch size alone (at most [`MAX_CHUNKS`] chunks), so the
/// backward's per-chunk partial sums, and hence the gradients, are the same bits at any thread
/// count (it was `n / (2 threads)`, which changed the sum's grouping with the thread count).
fn chunk(g: &Geo) -> usize {
    g.n.div_ceil(MAX_CHUNKS).max(1)
}

#[inline(always)]
fn pad_image<T: Float>(g: &Geo, x: &[T], xpad: &mut [T]) {
    if g.pad > 0 {
        xpad.fill(T::zero());
    }
    for c in 0..g.c {
        for y in 0..g.h {
            let dst = c * g.hp * g.wp + (y + g.pad) * g.wp + g.pad;
            let src = (c * g.h + y) * g.w;
            xpad[dst..dst + g.w].copy_from_slice(&x[src..src + g.w]);
        }
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn forward_image_body<T: Float>(
    g: &Geo,
    x: &[T],
    w: &[T],
    b: &[T],
    xpad: &mut [T],
    plane: &mut [T],
    colmax: &mut [T],
    colarg: &mut [u32],
    hbest: &mut [T],
    hrow: &mut [u32],
    hcol: &mut [u32],
    out: &mut [T],
    idx: &mut [u32],
) {
    pad_image(g, x, xpad);
    let len = g.ext_len();
    let plane = &mut plane[..len];
    let taps = g.c * g.kh * g.kw;
    for o in 0..g.o {
        plane.fill(b[o]);
        for cu in 0..g.c * g.kh {
            let (c, u) = (cu / g.kh, cu % g.kh);
            let wr = &w[o * taps + cu * g.kw..o * taps + (cu + 1) * g.kw];
            let start = c * g.hp * g.wp + u * g.wp;
            if g.kw == 3 {
                // One pass per kernel row: three taps per load/store of the plane.
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
        // Pooling with PyTorch's tie-break (the first maximum in row-major order): a
        // vectorisable vertical pass keeps each column's maximum and its first row, then a
        // short horizontal pass picks the smallest (row, column) among the window's maxima.
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
            // Horizontal pass, branch-free: window px's best so far in hbest / hrow / hcol.
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
                let j = (o * g.ph + py) * g.pw + px;
                if best > T::zero() {
                    out[j] = best;
                    idx[j] = ((y0 + ba as usize) * g.wp + bx) as u32;
                } else {
                    out[j] = T::zero();
                    idx[j] = NONE;
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn forward_image_avx2<T: Float>(
    g: &Geo,
    x: &[T],
    w: &[T],
    b: &[T],
    xpad: &mut [T],
    plane: &mut [T],
    colmax: &mut [T],
    colarg: &mut [u32],
    hbest: &mut [T],
    hrow: &mut [u32],
    hcol: &mut [u32],
    out: &mut [T],
    idx: &mut [u32],
) {
    forward_image_body(
        g, x, w, b, xpad, plane, colmax, colarg, hbest, hrow, hcol, out, idx,
    )
}

fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[allow(clippy::too_many_arguments)]
fn forward_image<T: Float>(
    g: &Geo,
    x: &[T],
    w: &[T],
    b: &[T],
    xpad: &mut [T],
    plane: &mut [T],
    colmax: &mut [T],
    colarg: &mut [u32],
    hbest: &mut [T],
    hrow: &mut [u32],
    hcol: &mut [u32],
    out: &mut [T],
    idx: &mut [u32],
) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU supports AVX2 and FMA (checked just above).
        unsafe {
            forward_image_avx2(
                g, x, w, b, xpad, plane, colmax, colarg, hbest, hrow, hcol, out, idx,
            )
        };
        return;
    }
    forward_image_body(
        g, x, w, b, xpad, plane, colmax, colarg, hbest, hrow, hcol, out, idx,
    )
}

fn forward<T: Float>(g: &Geo, x: &[T], w: &[T], b: &[T]) -> (Vec<T>, Vec<u32>) {
    let (il, ol) = (g.in_len(), g.out_len());
    let mut out = vec![T::zero(); g.n * ol];
    let mut idx = vec![NONE; g.n * ol];
    let ch = chunk(g);
    out.par_chunks_mut(ch * ol)
        .zip(idx.par_chunks_mut(ch * ol))
        .enumerate()
        .for_each(|(k, (out, idx))| {
            let mut xpad = vec![T::zero(); g.pad_len()];
            let mut plane = vec![T::zero(); g.ext_len()];
            let mut colmax = vec![T::zero(); g.wo];
            let mut colarg = vec![0u32; g.wo];
            let (mut hbest, mut hrow, mut hcol) =
                (vec![T::zero(); g.pw], vec![0u32; g.pw], vec![0u32; g.pw]);
            for (i, (o, id)) in out.chunks_mut(ol).zip(idx.chunks_mut(ol)).enumerate() {
                let n = k * ch + i;
                forward_image(
                    g,
                    &x[n * il..(n + 1) * il],
                    w,
                    b,
                    &mut xpad,
                    &mut plane,
                    &mut colmax,
                    &mut colarg,
                    &mut hbest,
                    &mut hrow,
                    &mut hcol,
                    o,
                    id,
                );
            }
        });
    (out, idx)
}

/// Gradients `(dx, dW, db)` (dx empty unless `need_dx`).
fn backward<T: Float>(
    g: &Geo,
    x: &[T],
    w: &[T],
    gout: &[T],
    idx: &[u32],
    need_dx: bool,
) -> (Vec<T>, Vec<T>, Vec<T>) {
    let (il, ol) = (g.in_len(), g.out_len());
    let taps = g.c * g.kh * g.kw;
    let mut dx = vec![T::zero(); if need_dx { g.n * il } else { 0 }];
    let ch = chunk(g);
    let nchunks = g.n.div_ceil(ch);
    let work = |k: usize, dx: &mut [T]| -> (Vec<T>, Vec<T>) {
        let mut dw = vec![T::zero(); g.o * taps];
        let mut db = vec![T::zero(); g.o];
        let mut xpad = vec![T::zero(); g.pad_len()];
        for n in k * ch..((k + 1) * ch).min(g.n) {
            pad_image(g, &x[n * il..(n + 1) * il], &mut xpad);
            let local = n - k * ch;
            for o in 0..g.o {
                for p in 0..g.ph * g.pw {
                    let j = n * ol + o * g.ph * g.pw + p;
                    let i = idx[j];
                    if i == NONE {
                        continue;
                    }
                    let gv = gout[j];
                    // `i` is the arg-max's offset `y * wp + x` in the padded row stride.
                    let off = i as usize;
                    db[o] += gv;
                    let wrow = &mut dw[o * taps..(o + 1) * taps];
                    let mut rows = wrow.chunks_exact_mut(g.kw);
                    for c in 0..g.c {
                        for u in 0..g.kh {
                            let base = c * g.hp * g.wp + u * g.wp + off;
                            let dst = rows.next().expect("taps = c * kh * kw");
                            for (d, &s) in dst.iter_mut().zip(&xpad[base..base + g.kw]) {
                                *d += gv * s;
                            }
                        }
                    }
                    if need_dx {
                        let (y, xx) = (off / g.wp, off % g.wp);
                        let wr = &w[o * taps..(o + 1) * taps];
                        for c in 0..g.c {
                            for u in 0..g.kh {
                                let yy = (y + u) as isize - g.pad as isize;
                                if yy < 0 || yy >= g.h as isize {
                                    continue;
                                }
                                for v in 0..g.kw {
                                    let xv = (xx + v) as isize - g.pad as isize;
                                    if xv < 0 || xv >= g.w as isize {
                                        continue;
                                    }
                                    let d =
                                        local * il + (c * g.h + yy as usize) * g.w + xv as usize;
                                    dx[d] += gv * wr[(c * g.kh + u) * g.kw + v];
                                }
                            }
                        }
                    }
                }
            }
        }
        (dw, db)
    };
    let partials: Vec<(Vec<T>, Vec<T>)> = if need_dx {
        dx.par_chunks_mut(ch * il)
            .enumerate()
            .map(|(k, d)| work(k, d))
            .collect()
    } else {
        (0..nchunks)
            .into_par_iter()
            .map(|k| work(k, &mut []))
            .collect()
    };
    let mut dw = vec![T::zero(); g.o * taps];
    let mut db = vec![T::zero(); g.o];
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
    geo: Geo,
    idx: Arc<[u32]>,
}

impl<T: Float> Backward<T> for ConvReluPoolBackward {
    fn name(&self) -> &'static str {
        "conv_relu_pool"
    }
    fn backward(&self, ctx: &BackwardCtx<'_, T>, g: &Tensor<T>) -> Vec<Option<Tensor<T>>> {
        assert!(
            !crate::autodiff::is_grad_enabled(),
            "conv_relu_pool: this fused op is differentiable once only (create_graph = false); \
             build the trunk from the unfused ops for higher-order gradients"
        );
        let geo = &self.geo;
        let (x, w) = (&ctx.inputs[0], &ctx.inputs[1]);
        let need_dx = ctx.needs[0];
        let (dx, dw, db) = backward(geo, x.data(), w.data(), g.data(), &self.idx, need_dx);
        vec![
            need_dx.then(|| Tensor::from_vec(dx, x.shape())),
            ctx.needs[1].then(|| Tensor::from_vec(dw, w.shape())),
            ctx.needs
                .get(2)
                .copied()
                .unwrap_or(false)
                .then(|| Tensor::from_vec(db, &[geo.o])),
        ]
    }
}

/// `max_pool2d(relu(conv2d(x, weight, bias, stride 1, padding)), pool, pool)` in one op
/// (differentiable once; see the module docs). `x` is `[N,C,H,W]`, `weight` `[O,C,kh,kw]`,
/// `bias` `[O]`; the result is `[N, O, Ho/pool, Wo/pool]`.
pub fn conv_relu_pool<T: Float>(
    x: &Tensor<T>,
    weight: &Tensor<T>,
    bias: &Tensor<T>,
    padding: usize,
    pool: usize,
) -> Tensor<T> {
    let geo = Geo::new(x.shape(), weight.shape(), padding, pool);
    assert_eq!(
        bias.shape(),
        [geo.o],
        "conv_relu_pool: bias {:?} does not fit weight {:?}",
        bias.shape(),
        weight.shape()
    );
    let (out, idx) = forward(&geo, x.data(), weight.data(), bias.data());
    let shape = vec![geo.n, geo.o, geo.ph, geo.pw];
    Tensor::from_op(out, shape, &[x, weight, bias], move || {
        ConvReluPoolBackward {
            geo,
            idx: idx.into(),
        }
    })
}

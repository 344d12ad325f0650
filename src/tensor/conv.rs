//! 2-D convolution and pooling on NCHW tensors.
//!
//! `conv2d` is a cross-correlation computed by im2col + a matrix product, or, for stride-1 3x3
//! layers with many channels, by Winograd's F(2x2, 3x3) (see `winograd.rs`). Its two adjoints are
//! ops of their own, each linear in each argument, so every order of derivative is available:
//!
//! - `y = conv2d(x, W) (+ b)`: `dx = conv2d_input_grad(g, W)`, `dW = conv2d_weight_grad(x, g)`,
//!   `db = sum_{n,h,w} g`;
//! - `dx = conv2d_input_grad(g, W)` (col2im of `W^T g`), for upstream `h` (shaped like `x`):
//!   `d g = conv2d(h, W)`, `d W = conv2d_weight_grad(h, g)`;
//! - `dW = conv2d_weight_grad(x, g)` (`g @ im2col(x)^T`), for upstream `H` (shaped like `W`):
//!   `d x = conv2d_input_grad(g, H)`, `d g = conv2d(x, H)`.
//!
//! These follow from `<g, conv2d(x, W)> = <conv2d_input_grad(g, W), x> = <conv2d_weight_grad(x, g), W>`.
//!
//! `max_pool2d` records the arg-max of every window and backpropagates through
//! [`Tensor::put_add_flat`] (whose own backward is [`Tensor::take_flat`]); `avg_pool2d` and
//! `avg_pool2d_backward` are each other's adjoints. Pooling has no padding and floor mode:
//! trailing rows and columns that fit no window are ignored (and get zero gradient).

use super::kernels::{col2im, gemm, group_size, im2col, nchw_to_cmajor, sum, ConvGeom, Mat};
use super::{parallel, winograd, Float, Tensor};
use std::sync::Arc;

/// Output columns (images x output pixels) per matrix product: small images are batched so
/// that every product is large enough to run at full speed (measured at the Conv-4 shapes:
/// 1 or 2 14x14 images per product are equally fast; 7x7 and 3x3 images gain up to 30%
/// from 8 and 43 per product).
const COLS_TARGET: usize = 384;

/// The checked geometry of `op`'s convolution of an input shaped `x` by a weight shaped `w`
/// (panics naming `op` and the shapes when they do not fit).
pub(super) fn conv_geom(op: &str, x: &[usize], w: &[usize], stride: usize, pad: usize) -> ConvGeom {
    let bad = |why: &str| -> ! {
        panic!("{op}: {why}: input {x:?}, weight {w:?}, stride {stride}, padding {pad}")
    };
    if x.len() != 4 || w.len() != 4 {
        bad("input must be [N, C, H, W] and weight [O, C, kh, kw]");
    }
    if x[1] != w[1] {
        bad("input channels differ from weight channels");
    }
    if stride == 0 {
        bad("stride must be at least 1");
    }
    if w[2] == 0 || w[3] == 0 || x[2] + 2 * pad < w[2] || x[3] + 2 * pad < w[3] {
        bad("kernel larger than padded input");
    }
    let ho = (x[2] + 2 * pad - w[2]) / stride + 1;
    let wo = (x[3] + 2 * pad - w[3]) / stride + 1;
    ConvGeom {
        n: x[0],
        c: x[1],
        h: x[2],
        w: x[3],
        o: w[0],
        kh: w[2],
        kw: w[3],
        stride,
        pad,
        ho,
        wo,
    }
}

/// Forward: `y[n,o] = W[o] * cols(x[n]) (+ b[o])`, one group of images per chunk (see
/// [`parallel`]).
fn conv_fwd<T: Float>(g: &ConvGeom, x: &[T], w: &[T], bias: Option<&[T]>) -> Vec<T> {
    if winograd::applies(g) {
        return winograd::conv2d(g, x, w, bias);
    }
    let (ckk, howo, o, chw) = (g.ckk(), g.howo(), g.o, g.c * g.hw());
    let gmax = group_size(g, COLS_TARGET);
    let mut out = vec![T::zero(); g.n * o * howo];
    let scratch = || {
        let tmp = if gmax > 1 { o * gmax * howo } else { 0 };
        (vec![T::zero(); ckk * gmax * howo], vec![T::zero(); tmp])
    };
    let work = parallel::product_work(g.n * o * howo * ckk);
    parallel::for_each_chunk(&mut out, gmax * o * howo, work, scratch, |bufs, i, out| {
        let gs = out.len() / (o * howo);
        let xs = &x[i * gmax * chw..(i * gmax + gs) * chw];
        fwd_group(g, xs, gs, w, bias, bufs, out);
    });
    out
}

/// [`conv_fwd`] for `gs` consecutive images `x`, into their output `out` (`gs * O*Ho*Wo`).
fn fwd_group<T: Float>(
    g: &ConvGeom,
    x: &[T],
    gs: usize,
    w: &[T],
    bias: Option<&[T]>,
    (cols, tmp): &mut (Vec<T>, Vec<T>),
    out: &mut [T],
) {
    let (ckk, howo, o) = (g.ckk(), g.howo(), g.o);
    let nc = gs * howo;
    let cols = &mut cols[..ckk * nc];
    im2col(g, x, gs, cols);
    if gs == 1 {
        // each channel's row starts as its bias, and the product is added
        for (ch, row) in out.chunks_exact_mut(howo).enumerate() {
            row.fill(bias.map_or(T::zero(), |b| b[ch]));
        }
        let (lhs, rhs) = (Mat::rows(w, ckk), Mat::rows(cols, nc));
        gemm(o, howo, ckk, out, howo, 1, true, lhs, rhs);
        return;
    }
    let tmp = &mut tmp[..o * nc];
    gemm(
        o,
        nc,
        ckk,
        tmp,
        nc,
        1,
        false,
        Mat::rows(w, ckk),
        Mat::rows(cols, nc),
    );
    for (k, dst) in out.chunks_exact_mut(howo).enumerate() {
        let (img, ch) = (k / o, k % o);
        let src = &tmp[ch * nc + img * howo..ch * nc + (img + 1) * howo];
        match bias {
            Some(b) => {
                let bv = b[ch];
                dst.iter_mut().zip(src).for_each(|(d, &s)| *d = s + bv);
            }
            None => dst.copy_from_slice(src),
        }
    }
}

/// Input gradient: `dx[n] = col2im(W^T gy[n])`, one group of images per chunk; for stride 1,
/// a square kernel and at least [`DX_AS_CONV_MIN_CHANNELS`] input channels, the forward
/// convolution of [`conv_dx_as_conv`].
fn conv_dx<T: Float>(g: &ConvGeom, gy: &[T], w: &[T]) -> Vec<T> {
    if g.stride == 1 && g.kh == g.kw && g.pad < g.kh && g.c >= DX_AS_CONV_MIN_CHANNELS {
        return conv_dx_as_conv(g, gy, w);
    }
    let (ckk, howo, o, chw) = (g.ckk(), g.howo(), g.o, g.c * g.hw());
    let gmax = group_size(g, COLS_TARGET);
    let mut dx = vec![T::zero(); g.n * chw];
    let scratch = || {
        let gbuf = if gmax > 1 { o * gmax * howo } else { 0 };
        (vec![T::zero(); ckk * gmax * howo], vec![T::zero(); gbuf])
    };
    let work = parallel::product_work(g.n * o * howo * ckk);
    parallel::for_each_chunk(&mut dx, gmax * chw, work, scratch, |(cols, gbuf), i, dx| {
        let (n0, gs) = (i * gmax, dx.len() / chw);
        let nc = gs * howo;
        let gchunk = &gy[n0 * o * howo..(n0 + gs) * o * howo];
        let rhs = channel_major(gchunk, gs, o, howo, gbuf);
        let cols = &mut cols[..ckk * nc];
        gemm(ckk, nc, o, cols, nc, 1, false, Mat::rows_t(w, ckk), rhs);
        col2im(g, cols, gs, dx);
    });
    dx
}

/// `gs` images' `[gs, O, P]` block as the channel-major matrix `[O, gs*P]`: the block itself
/// for one image, else its copy in `buf`.
fn channel_major<'a, T: Float>(
    block: &'a [T],
    gs: usize,
    o: usize,
    p: usize,
    buf: &'a mut [T],
) -> Mat<'a, T> {
    if gs == 1 {
        return Mat::rows(block, p);
    }
    nchw_to_cmajor(block, gs, o, p, &mut buf[..o * gs * p]);
    Mat::rows(&buf[..o * gs * p], gs * p)
}

/// Below this many input channels the input gradient keeps col2im: a product with fewer output
/// rows than a micro-kernel is slow (1 channel: 0.8 ms with col2im, 7 ms as a convolution, at
/// Conv-4's 28x28 layer).
const DX_AS_CONV_MIN_CHANNELS: usize = 16;

/// The stride-1 input gradient as a forward convolution: `dx = conv2d(gy, W')` with padding
/// `k-1-p`, where `W'[c,o,i,j] = W[o,c,k-1-i,k-1-j]` (the kernel turned by 180 degrees, its
/// channel axes swapped). The product then has `C*k*k`-long dot products and writes `dx` once,
/// where `col2im(W^T gy)` wrote `k*k` times more columns and added them back one by one
/// (Conv-4, 75 images, one thread: 14x14 layer 11.5 -> 9.9 ms, 7x7 layer 3.5 -> 2.6 ms).
fn conv_dx_as_conv<T: Float>(g: &ConvGeom, gy: &[T], w: &[T]) -> Vec<T> {
    let k = g.kh;
    let mut turned = Vec::with_capacity(w.len());
    for c in 0..g.c {
        for o in 0..g.o {
            let kernel = &w[(o * g.c + c) * k * k..(o * g.c + c + 1) * k * k];
            turned.extend(kernel.iter().rev());
        }
    }
    let transposed = ConvGeom {
        n: g.n,
        c: g.o,
        h: g.ho,
        w: g.wo,
        o: g.c,
        kh: k,
        kw: k,
        stride: 1,
        pad: k - 1 - g.pad,
        ho: g.h,
        wo: g.w,
    };
    conv_fwd(&transposed, gy, &turned, None)
}

/// Weight gradient: `dW = sum_n gy[n] cols(x[n])^T`, as a sum over parts of the image groups
/// added in a fixed order ([`parallel::sum_parts`]).
fn conv_dw<T: Float>(g: &ConvGeom, x: &[T], gy: &[T]) -> Vec<T> {
    if winograd::applies(g) {
        return winograd::weight_grad(g, x, gy);
    }
    let (ckk, howo, o, chw) = (g.ckk(), g.howo(), g.o, g.c * g.hw());
    let gmax = group_size(g, COLS_TARGET);
    let scratch = || {
        let gbuf = if gmax > 1 { o * gmax * howo } else { 0 };
        (vec![T::zero(); ckk * gmax * howo], vec![T::zero(); gbuf])
    };
    let (groups, work) = (
        g.n.div_ceil(gmax),
        parallel::product_work(g.n * o * howo * ckk),
    );
    parallel::sum_parts(groups, o * ckk, work, scratch, |(cols, gbuf), range, dw| {
        for (k, grp) in range.enumerate() {
            let n0 = grp * gmax;
            let gs = gmax.min(g.n - n0);
            let nc = gs * howo;
            let lhs = channel_major(&gy[n0 * o * howo..(n0 + gs) * o * howo], gs, o, howo, gbuf);
            let cols = &mut cols[..ckk * nc];
            im2col(g, &x[n0 * chw..(n0 + gs) * chw], gs, cols);
            gemm(o, ckk, nc, dw, ckk, 1, k > 0, lhs, Mat::rows_t(cols, nc));
        }
    })
}

struct Conv2dBackward {
    stride: usize,
    pad: usize,
}

impl_backward!(Conv2dBackward, "conv2d", |self, ctx, g| {
    let (x, w) = (&ctx.inputs[0], &ctx.inputs[1]);
    let (s, p) = (self.stride, self.pad);
    let mut res = vec![
        ctx.needs[0].then(|| g.conv2d_input_grad(w, x.shape(), s, p)),
        ctx.needs[1].then(|| x.conv2d_weight_grad(g, w.shape(), s, p)),
    ];
    if ctx.inputs.len() == 3 {
        res.push(ctx.needs[2].then(|| channel_sum(g)));
    }
    res
});

struct ConvInputGradBackward {
    stride: usize,
    pad: usize,
}

impl_backward!(
    ConvInputGradBackward,
    "conv2d_input_grad",
    |self, ctx, h| {
        let (gy, w) = (&ctx.inputs[0], &ctx.inputs[1]);
        let (s, p) = (self.stride, self.pad);
        vec![
            ctx.needs[0].then(|| h.conv2d(w, None, s, p)),
            ctx.needs[1].then(|| h.conv2d_weight_grad(gy, w.shape(), s, p)),
        ]
    }
);

struct ConvWeightGradBackward {
    stride: usize,
    pad: usize,
}

impl_backward!(
    ConvWeightGradBackward,
    "conv2d_weight_grad",
    |self, ctx, hw| {
        let (x, gy) = (&ctx.inputs[0], &ctx.inputs[1]);
        let (s, p) = (self.stride, self.pad);
        vec![
            ctx.needs[0].then(|| gy.conv2d_input_grad(hw, x.shape(), s, p)),
            ctx.needs[1].then(|| x.conv2d(hw, None, s, p)),
        ]
    }
);

struct ChannelSumBackward;
impl_backward!(ChannelSumBackward, "conv2d_bias_grad", |self, ctx, g| {
    vec![Some(channel_broadcast(g, ctx.inputs[0].shape()))]
});

struct ChannelBroadcastBackward;
impl_backward!(
    ChannelBroadcastBackward,
    "channel_broadcast",
    |self, _ctx, g| vec![Some(channel_sum(g))]
);

/// `[N, C, ...] -> [C]`: the sum over every dimension but the channel one.
fn channel_sum<T: Float>(t: &Tensor<T>) -> Tensor<T> {
    let (n, c) = (t.dim(0), t.dim(1));
    let inner = t.numel() / (n * c).max(1);
    let data = t.data();
    // plane sums (in parallel when large), then per channel in sample order
    let planes = parallel::fill_indexed(n * c, |i| sum(&data[i * inner..(i + 1) * inner]));
    let mut out = vec![T::zero(); c];
    for (i, &p) in planes.iter().enumerate() {
        out[i % c] += p;
    }
    Tensor::from_op(out, vec![c], &[t], || ChannelSumBackward)
}

/// `[C] -> shape` (`[N, C, ...]`): every plane of channel `c` filled with `v[c]`.
fn channel_broadcast<T: Float>(v: &Tensor<T>, shape: &[usize]) -> Tensor<T> {
    let c = shape[1];
    let inner: usize = shape[2..].iter().product();
    let mut out = vec![T::zero(); shape.iter().product()];
    let vd = v.data();
    let len = out.len();
    parallel::for_each_chunk(
        &mut out,
        inner,
        len,
        || (),
        |_, i, plane| plane.fill(vd[i % c]),
    );
    Tensor::from_op(out, shape.to_vec(), &[v], || ChannelBroadcastBackward)
}

/// Pooling geometry: (N*C planes, H, W, Ho, Wo), checked.
fn pool_geom(
    op: &str,
    shape: &[usize],
    kernel: usize,
    stride: usize,
) -> (usize, usize, usize, usize, usize) {
    if shape.len() != 4 || kernel == 0 || stride == 0 || shape[2] < kernel || shape[3] < kernel {
        panic!("{op}: needs a [N, C, H, W] input with H, W >= kernel >= 1 and stride >= 1: input {shape:?}, kernel {kernel}, stride {stride}");
    }
    let (h, w) = (shape[2], shape[3]);
    (
        shape[0] * shape[1],
        h,
        w,
        (h - kernel) / stride + 1,
        (w - kernel) / stride + 1,
    )
}

struct MaxPoolBackward {
    idx: Arc<[usize]>,
}
impl_backward!(MaxPoolBackward, "max_pool2d", |self, ctx, g| {
    vec![Some(
        g.put_add_flat(self.idx.clone(), ctx.inputs[0].shape()),
    )]
});

struct AvgPoolBackward {
    kernel: usize,
    stride: usize,
}
impl_backward!(AvgPoolBackward, "avg_pool2d", |self, ctx, g| {
    vec![Some(g.avg_pool2d_backward(
        ctx.inputs[0].shape(),
        self.kernel,
        self.stride,
    ))]
});

struct AvgPoolBackwardBackward {
    kernel: usize,
    stride: usize,
}
impl_backward!(
    AvgPoolBackwardBackward,
    "avg_pool2d_backward",
    |self, _ctx, g| vec![Some(g.avg_pool2d(self.kernel, self.stride))]
);

impl<T: Float> Tensor<T> {
    /// 2-D cross-correlation with zero padding (PyTorch's `conv2d`):
    /// `y[n,o,i,j] = b[o] + sum_{c,u,v} W[o,c,u,v] x[n,c, i*s+u-p, j*s+v-p]` (0 outside),
    /// with `x` `[N,C,H,W]`, `W` `[O,C,kh,kw]`, `b` `[O]`; `y` is `[N,O,Ho,Wo]` with
    /// `Ho = floor((H + 2p - kh)/s) + 1`, `Wo` likewise.
    ///
    /// Gradients: [`Tensor::conv2d_input_grad`], [`Tensor::conv2d_weight_grad`] and
    /// `db[o] = sum_{n,i,j} g[n,o,i,j]`, all differentiable again.
    pub fn conv2d(
        &self,
        weight: &Tensor<T>,
        bias: Option<&Tensor<T>>,
        stride: usize,
        padding: usize,
    ) -> Tensor<T> {
        let g = conv_geom("conv2d", self.shape(), weight.shape(), stride, padding);
        if let Some(b) = bias {
            assert!(
                b.shape() == [g.o],
                "conv2d: bias {:?} does not fit weight {:?} (want [{}])",
                b.shape(),
                weight.shape(),
                g.o
            );
        }
        let out = conv_fwd(&g, self.data(), weight.data(), bias.map(|b| b.data()));
        let shape = vec![g.n, g.o, g.ho, g.wo];
        let (s, p) = (stride, padding);
        match bias {
            Some(b) => Tensor::from_op(out, shape, &[self, weight, b], || Conv2dBackward {
                stride: s,
                pad: p,
            }),
            None => Tensor::from_op(out, shape, &[self, weight], || Conv2dBackward {
                stride: s,
                pad: p,
            }),
        }
    }

    /// The gradient of `conv2d` with respect to its input (the transposed convolution), `self`
    /// being the upstream gradient `g` `[N,O,Ho,Wo]`:
    /// `dx[n,c,y,x] = sum_{o,u,v : y = i*s+u-p, x = j*s+v-p} W[o,c,u,v] g[n,o,i,j]`, i.e. col2im
    /// of `W^T g`, shaped `input_shape` `[N,C,H,W]`. Linear in `g` and in `W`.
    pub fn conv2d_input_grad(
        &self,
        weight: &Tensor<T>,
        input_shape: &[usize],
        stride: usize,
        padding: usize,
    ) -> Tensor<T> {
        let g = conv_geom(
            "conv2d_input_grad",
            input_shape,
            weight.shape(),
            stride,
            padding,
        );
        let want = [g.n, g.o, g.ho, g.wo];
        assert!(
            self.shape() == want,
            "conv2d_input_grad: gradient {:?} does not fit input {:?} and weight {:?} (want {:?})",
            self.shape(),
            input_shape,
            weight.shape(),
            want
        );
        let dx = conv_dx(&g, self.data(), weight.data());
        let (s, p) = (stride, padding);
        Tensor::from_op(dx, input_shape.to_vec(), &[self, weight], || {
            ConvInputGradBackward { stride: s, pad: p }
        })
    }

    /// The gradient of `conv2d` with respect to its weight, `self` being the input `x`
    /// `[N,C,H,W]` and `grad_output` the upstream gradient `g` `[N,O,Ho,Wo]`:
    /// `dW[o,c,u,v] = sum_{n,i,j} g[n,o,i,j] x[n,c, i*s+u-p, j*s+v-p]`, i.e. `g im2col(x)^T`,
    /// shaped `weight_shape` `[O,C,kh,kw]`. Linear in `x` and in `g`.
    pub fn conv2d_weight_grad(
        &self,
        grad_output: &Tensor<T>,
        weight_shape: &[usize],
        stride: usize,
        padding: usize,
    ) -> Tensor<T> {
        let g = conv_geom(
            "conv2d_weight_grad",
            self.shape(),
            weight_shape,
            stride,
            padding,
        );
        let want = [g.n, g.o, g.ho, g.wo];
        assert!(
            grad_output.shape() == want,
            "conv2d_weight_grad: gradient {:?} does not fit input {:?} and weight {:?} (want {:?})",
            grad_output.shape(),
            self.shape(),
            weight_shape,
            want
        );
        let dw = conv_dw(&g, self.data(), grad_output.data());
        let (s, p) = (stride, padding);
        Tensor::from_op(dw, weight_shape.to_vec(), &[self, grad_output], || {
            ConvWeightGradBackward { stride: s, pad: p }
        })
    }

    /// Max pooling over `kernel x kernel` windows every `stride` pixels, no padding, floor mode:
    /// `y[n,c,i,j] = max_{u,v < k} x[n,c, i*s+u, j*s+v]`, `Ho = floor((H-k)/s) + 1`.
    ///
    /// The gradient goes to the first maximum of each window in row-major order (through
    /// [`Tensor::put_add_flat`], so it is differentiable again); rows and columns that fit no
    /// window get zero.
    pub fn max_pool2d(&self, kernel: usize, stride: usize) -> Tensor<T> {
        let (planes, h, w, ho, wo) = pool_geom("max_pool2d", self.shape(), kernel, stride);
        let x = self.data();
        let mut out = Vec::with_capacity(planes * ho * wo);
        let mut idx: Vec<usize> = Vec::with_capacity(planes * ho * wo);
        if kernel == 2 && stride == 2 {
            max_pool_2x2(x, planes, h, w, ho, wo, &mut out, &mut idx);
            let shape = vec![self.dim(0), self.dim(1), ho, wo];
            return Tensor::from_op(out, shape, &[self], move || MaxPoolBackward {
                idx: idx.into(),
            });
        }
        for pl in 0..planes {
            let base = pl * h * w;
            for oy in 0..ho {
                for ox in 0..wo {
                    let first = base + oy * stride * w + ox * stride;
                    let (mut best, mut bi) = (x[first], first);
                    for u in 0..kernel {
                        let row = first + u * w;
                        for (v, &val) in x[row..row + kernel].iter().enumerate() {
                            if val > best {
                                best = val;
                                bi = row + v;
                            }
                        }
                    }
                    out.push(best);
                    idx.push(bi);
                }
            }
        }
        let shape = vec![self.dim(0), self.dim(1), ho, wo];
        Tensor::from_op(out, shape, &[self], move || MaxPoolBackward {
            idx: idx.into(),
        })
    }

    /// Average pooling over `kernel x kernel` windows every `stride` pixels, no padding, floor
    /// mode: `y[n,c,i,j] = (1/k^2) sum_{u,v < k} x[n,c, i*s+u, j*s+v]`.
    /// Backward: [`Tensor::avg_pool2d_backward`].
    pub fn avg_pool2d(&self, kernel: usize, stride: usize) -> Tensor<T> {
        let (planes, h, w, ho, wo) = pool_geom("avg_pool2d", self.shape(), kernel, stride);
        let x = self.data();
        let scale = T::one() / T::of((kernel * kernel) as f64);
        let mut out = Vec::with_capacity(planes * ho * wo);
        for pl in 0..planes {
            let base = pl * h * w;
            for oy in 0..ho {
                for ox in 0..wo {
                    let first = base + oy * stride * w + ox * stride;
                    let mut s = T::zero();
                    for u in 0..kernel {
                        let row = first + u * w;
                        s += x[row..row + kernel].iter().copied().sum::<T>();
                    }
                    out.push(s * scale);
                }
            }
        }
        let shape = vec![self.dim(0), self.dim(1), ho, wo];
        Tensor::from_op(out, shape, &[self], || AvgPoolBackward { kernel, stride })
    }

    /// The adjoint of [`Tensor::avg_pool2d`], `self` being the upstream gradient `g`
    /// `[N,C,Ho,Wo]`: `dx[n,c,y,x] = (1/k^2) sum_{windows (i,j) covering (y,x)} g[n,c,i,j]`,
    /// shaped `input_shape`. Its own backward is `avg_pool2d`.
    pub fn avg_pool2d_backward(
        &self,
        input_shape: &[usize],
        kernel: usize,
        stride: usize,
    ) -> Tensor<T> {
        let (planes, h, w, ho, wo) = pool_geom("avg_pool2d_backward", input_shape, kernel, stride);
        let want = [input_shape[0], input_shape[1], ho, wo];
        assert!(
            self.shape() == want,
            "avg_pool2d_backward: gradient {:?} does not fit input {:?} with kernel {kernel}, stride {stride} (want {want:?})",
            self.shape(),
            input_shape
        );
        let g = self.data();
        let scale = T::one() / T::of((kernel * kernel) as f64);
        let mut dx = vec![T::zero(); planes * h * w];
        for pl in 0..planes {
            let base = pl * h * w;
            for oy in 0..ho {
                for ox in 0..wo {
                    let v = g[(pl * ho + oy) * wo + ox] * scale;
                    let first = base + oy * stride * w + ox * stride;
                    for u in 0..kernel {
                        let row = first + u * w;
                        dx[row..row + kernel].iter_mut().for_each(|d| *d += v);
                    }
                }
            }
        }
        Tensor::from_op(dx, input_shape.to_vec(), &[self], || {
            AvgPoolBackwardBackward { kernel, stride }
        })
    }
}

/// CPU time this thread has run, in nanoseconds, where Linux tells it (scheduler-tick
/// granularity, so only sums over several runs are meaningful).
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Times `conv2d` forward, input gradient and weight gradient (f32, one thread) at the
/// Conv-4 shapes (batch 75, 64 filters, 3x3, padding 1) and returns a table of median and best
/// wall-clock milliseconds, GFLOP/s at the median (`2 N O C kh kw Ho Wo` flops per op, the direct
/// convolution's count, so layers computed by Winograd show an effective rate above the
/// hardware's) and,
/// on Linux, the mean CPU milliseconds of this thread (what the op costs when other processes
/// compete for the cores and stretch the wall clock).
pub fn conv_bench_report() -> String {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let shapes: [([usize; 4], [usize; 4]); 4] = [
        ([75, 1, 28, 28], [64, 1, 3, 3]),
        ([75, 64, 14, 14], [64, 64, 3, 3]),
        ([75, 64, 7, 7], [64, 64, 3, 3]),
        ([75, 64, 3, 3], [64, 64, 3, 3]),
    ];
    let mut report = String::from(
        "conv2d f32, 1 thread, stride 1, padding 1: median ms (best ms) | GFLOP/s at the median (direct-convolution FLOPs) | mean CPU ms\n",
    );
    report.push_str(&format!(
        "{:<34} {:>30} {:>30} {:>30}\n",
        "input x weight", "forward", "input grad", "weight grad"
    ));
    let mut totals = [(0.0f64, 0.0f64); 3];
    crate::autodiff::no_grad(|| {
        for (xs, ws) in shapes {
            let x = Tensor::<f32>::rand_normal(&xs, 0.0, 1.0, &mut rng);
            let w = Tensor::<f32>::rand_normal(&ws, 0.0, 0.1, &mut rng);
            let y = x.conv2d(&w, None, 1, 1);
            let gy = Tensor::<f32>::rand_normal(y.shape(), 0.0, 1.0, &mut rng);
            let flops = 2.0 * (y.numel() * ws[1] * ws[2] * ws[3]) as f64;
            let runs = if flops > 2e8 { 11 } else { 31 };
            // (median ms, best ms, mean CPU ms)
            let time = |f: &dyn Fn() -> Tensor<f32>| -> (f64, f64, f64) {
                let _ = f();
                let cpu0 = thread_cpu_ns();
                let mut t: Vec<f64> = (0..runs)
                    .map(|_| {
                        let t0 = std::time::Instant::now();
                        std::hint::black_box(f());
                        t0.elapsed().as_secs_f64() * 1e3
                    })
                    .collect();
                let cpu = match (cpu0, thread_cpu_ns()) {
                    (Some(a), Some(b)) => (b - a) as f64 / 1e6 / runs as f64,
                    _ => f64::NAN,
                };
                t.sort_by(|a, b| a.partial_cmp(b).expect("finite times"));
                (t[runs / 2], t[0], cpu)
            };
            let ms = [
                time(&|| x.conv2d(&w, None, 1, 1)),
                time(&|| gy.conv2d_input_grad(&w, &xs, 1, 1)),
                time(&|| x.conv2d_weight_grad(&gy, &ws, 1, 1)),
            ];
            let cell = |(t, best, cpu): (f64, f64, f64)| {
                format!(
                    "{t:6.2} ({best:5.2}) | {:5.1} | {cpu:5.2}",
                    flops / (t * 1e-3) / 1e9
                )
            };
            report.push_str(&format!(
                "{:<34} {:>30} {:>30} {:>30}\n",
                format!("{xs:?} x {ws:?}"),
                cell(ms[0]),
                cell(ms[1]),
                cell(ms[2])
            ));
            for (t, m) in totals.iter_mut().zip(ms) {
                t.0 += m.0;
                t.1 += m.2;
            }
        }
    });
    let tot = |(t, cpu): (f64, f64)| format!("{t:.2} ms median, {cpu:.2} ms CPU");
    report.push_str(&format!(
        "{:<34} {:>30} {:>30} {:>30}\n",
        "total",
        tot(totals[0]),
        tot(totals[1]),
        tot(totals[2])
    ));
    report
}

/// The common 2x2 / stride 2 max-pool, branch-free: each window's four values are compared in
/// row-major order with strict `>`, so ties go to the first maximum (as PyTorch).
#[allow(clippy::too_many_arguments)]
fn max_pool_2x2<T: Float>(
    x: &[T],
    planes: usize,
    h: usize,
    w: usize,
    ho: usize,
    wo: usize,
    out: &mut Vec<T>,
    idx: &mut Vec<usize>,
) {
    for pl in 0..planes {
        let base = pl * h * w;
        for oy in 0..ho {
            let r0 = base + 2 * oy * w;
            let (row0, row1) = (&x[r0..r0 + 2 * wo], &x[r0 + w..r0 + w + 2 * wo]);
            for ox in 0..wo {
                let (a, b) = (row0[2 * ox], row0[2 * ox + 1]);
                let (c, d) = (row1[2 * ox], row1[2 * ox + 1]);
                let (mut m, mut k) = (a, 0usize);
                if b > m {
                    m = b;
                    k = 1;
                }
                if c > m {
                    m = c;
                    k = w;
                }
                if d > m {
                    m = d;
                    k = w + 1;
                }
                out.push(m);
                idx.push(r0 + 2 * ox + k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// `cargo test --release --lib conv_bench -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn conv_bench() {
        println!("{}", super::conv_bench_report());
    }
}

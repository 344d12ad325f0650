//! Winograd F(2x2, 3x3) convolution (Lavin & Gray, "Fast Algorithms for Convolutional Neural
//! Networks", CVPR 2016) for stride-1 3x3 layers with many channels: Conv-4's 14x14 and 7x7
//! layers, forward, input gradient (a forward convolution, see `conv_dx_as_conv`) and weight
//! gradient.
//!
//! The output is cut into 2x2 tiles. For one input channel, one output channel and one tile with
//! 4x4 input patch `d` and 3x3 kernel `g`,
//!
//! ```text
//! Y = A^T [ (G g G^T) ⊙ (B^T d B) ] A,
//! B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1],
//! A^T = [1 1 1 0; 0 1 -1 -1].
//! ```
//!
//! Summed over input channels, the element-wise product at each of the 16 positions `ξ` of the
//! 4x4 transform is a matrix product `M[ξ] = U[ξ] V[ξ]`, with `U[ξ]` the `[O, C]` transformed
//! kernels and `V[ξ]` the `[C, tiles]` transformed patches: 16 multiplications per 4 outputs
//! where im2col needs 36 (2.25x fewer FLOPs on even sizes). The algebra is exact; only rounding
//! differs from the direct sum.
//!
//! The weight gradient is the adjoint of the same map: with `dM = A dY A^T` per tile,
//! `dU[ξ] = sum_tiles dM[ξ] V[ξ]^T` and `dW = G^T dU G`.
//!
//! The transforms work channels-last: each image is first copied into a zero-bordered
//! `[H, W, C]` buffer, so that every transform step is an operation on contiguous runs of `C`
//! channels (which the compiler vectorises), and `V`, `M` and `dM` are stored `[16, tiles, C]`
//! (the matrix products take them through strides). Tiles are processed a few images at a time
//! (about [`TILES_TARGET`] tiles), so that one block's `V` and `M` stay in cache.

use super::kernels::{gemm, ConvGeom, Mat};
use super::{parallel, Float};

/// Tiles per block of images (a block's `V` and `M` are `16 * C * tiles` values each).
const TILES_TARGET: usize = 196;

/// Whether [`conv2d`] and [`weight_grad`] serve this convolution: 3x3 kernel, stride 1, at least
/// 16 input and output channels (thinner layers are memory-bound, where im2col is as fast), and
/// an output of at least 4x4 (on a 3x3 output the tiles cover 4x4, so Winograd would save only
/// 1.3x multiplications). Measured on Conv-4 (75 images, one thread): 14x14 layer forward 10.1
/// -> 6.5 ms, weight gradient 11.2 -> 6.8 ms; 7x7 layer forward 2.5 -> 2.1 ms, weight gradient
/// 2.9 ms either way.
pub(crate) fn applies(g: &ConvGeom) -> bool {
    g.kh == 3 && g.kw == 3 && g.stride == 1 && g.c >= 16 && g.o >= 16 && g.ho >= 4 && g.wo >= 4
}

/// The tile grid of one image and the block size.
struct Tiling {
    /// Tile rows and columns: `ceil(Ho / 2)`, `ceil(Wo / 2)`.
    th: usize,
    tw: usize,
    /// Rows and columns of the zero-bordered input the tiles read: `2 th + 2`, `2 tw + 2`.
    hp: usize,
    wp: usize,
    /// Images per block.
    block: usize,
}

impl Tiling {
    fn new(g: &ConvGeom) -> Self {
        let (th, tw) = (g.ho.div_ceil(2), g.wo.div_ceil(2));
        Tiling {
            th,
            tw,
            hp: 2 * th + 2,
            wp: 2 * tw + 2,
            block: TILES_TARGET.div_ceil(th * tw).clamp(1, g.n.max(1)),
        }
    }
    fn per_image(&self) -> usize {
        self.th * self.tw
    }
}

/// `U[ξ][o][c] = (G g[o][c] G^T)[ξ]`, laid out `[16, O, C]`.
fn transform_kernels<T: Float>(g: &ConvGeom, w: &[T]) -> Vec<T> {
    let (o, c) = (g.o, g.c);
    let half = T::of(0.5);
    let mut u = vec![T::zero(); 16 * o * c];
    for (oc, k) in w.chunks_exact(9).enumerate() {
        // rows of G g (4 x 3), then each row times G^T
        let row = |r: usize| [k[3 * r], k[3 * r + 1], k[3 * r + 2]];
        let (r0, r1, r2) = (row(0), row(1), row(2));
        let gg: [[T; 3]; 4] = [
            r0,
            std::array::from_fn(|j| half * (r0[j] + r1[j] + r2[j])),
            std::array::from_fn(|j| half * (r0[j] - r1[j] + r2[j])),
            r2,
        ];
        for (i, [a, b, cc]) in gg.into_iter().enumerate() {
            let t = [a, half * (a + b + cc), half * (a - b + cc), cc];
            for (j, v) in t.into_iter().enumerate() {
                u[(4 * i + j) * o * c + oc] = v;
            }
        }
    }
    u
}

/// `dW[o][c] = G^T dU[o][c] G` for `dU` laid out `[16, O, C]`; `dW` is `[O, C, 3, 3]`.
fn untransform_kernel_grads<T: Float>(g: &ConvGeom, du: &[T]) -> Vec<T> {
    let oc_count = g.o * g.c;
    let half = T::of(0.5);
    let mut dw = vec![T::zero(); oc_count * 9];
    for (oc, out) in dw.chunks_exact_mut(9).enumerate() {
        let d = |i: usize, j: usize| du[(4 * i + j) * oc_count + oc];
        // rows of G^T dU (3 x 4), then each row times G
        let s: [[T; 4]; 3] = [
            std::array::from_fn(|j| d(0, j) + half * (d(1, j) + d(2, j))),
            std::array::from_fn(|j| half * (d(1, j) - d(2, j))),
            std::array::from_fn(|j| half * (d(1, j) + d(2, j)) + d(3, j)),
        ];
        for (r, [a, b, cc, e]) in s.into_iter().enumerate() {
            out[3 * r] = a + half * (b + cc);
            out[3 * r + 1] = half * (b - cc);
            out[3 * r + 2] = half * (b + cc) + e;
        }
    }
    dw
}

/// `dst[k] = f(a[k], b[k])` (a loop the compiler vectorises).
#[inline(always)]
fn combine<T: Float>(dst: &mut [T], a: &[T], b: &[T], f: impl Fn(T, T) -> T) {
    for ((d, &x), &y) in dst.iter_mut().zip(a).zip(b) {
        *d = f(x, y);
    }
}

/// `dst[k] = f(a[k], b[k], c[k])`.
#[inline(always)]
fn combine3<T: Float>(dst: &mut [T], a: &[T], b: &[T], c: &[T], f: impl Fn(T, T, T) -> T) {
    for (((d, &x), &y), &z) in dst.iter_mut().zip(a).zip(b).zip(c) {
        *d = f(x, y, z);
    }
}

/// Moves `[8 planes, 8 pixels]` to `[8 pixels, 8 channels]`: 8 contiguous loads from `src`
/// (row stride `plane`), 8 contiguous stores into `dst` (row stride `k`). For `f32` on AVX
/// builds, in registers with the usual unpack / shuffle / lane-permute sequence (the generic
/// code compiles to 64 scalar moves through the stack).
#[inline(always)]
fn transpose8<T: Float>(src: &[T], plane: usize, dst: &mut [T], k: usize) {
    assert!(
        src.len() >= 7 * plane + 8 && dst.len() >= 7 * k + 8,
        "winograd transpose8: 8 rows of 8 exceed the buffers"
    );
    #[cfg(all(target_arch = "x86_64", target_feature = "avx"))]
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>() {
        // SAFETY: T is f32 (checked just above), the 8 rows of 8 values read and written are in
        // bounds (asserted), and AVX is enabled for this build (cfg).
        unsafe {
            transpose8_f32_avx(src.as_ptr().cast(), plane, dst.as_mut_ptr().cast(), k);
        }
        return;
    }
    let blk: [[T; 8]; 8] = std::array::from_fn(|cc| {
        src[cc * plane..cc * plane + 8]
            .try_into()
            .expect("8 values")
    });
    for xx in 0..8 {
        let px: &mut [T; 8] = (&mut dst[xx * k..xx * k + 8]).try_into().expect("8 values");
        *px = std::array::from_fn(|cc| blk[cc][xx]);
    }
}

/// The AVX 8 x 8 `f32` transpose behind [`transpose8`].
///
/// # Safety
/// `src + r * src_stride + 0..8` and `dst + r * dst_stride + 0..8` must be valid for `r < 8`.
#[cfg(all(target_arch = "x86_64", target_feature = "avx"))]
#[inline(always)]
unsafe fn transpose8_f32_avx(src: *const f32, src_stride: usize, dst: *mut f32, dst_stride: usize) {
    use std::arch::x86_64::*;
    let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(src.add(i * src_stride)));
    let t0 = _mm256_unpacklo_ps(r[0], r[1]);
    let t1 = _mm256_unpackhi_ps(r[0], r[1]);
    let t2 = _mm256_unpacklo_ps(r[2], r[3]);
    let t3 = _mm256_unpackhi_ps(r[2], r[3]);
    let t4 = _mm256_unpacklo_ps(r[4], r[5]);
    let t5 = _mm256_unpackhi_ps(r[4], r[5]);
    let t6 = _mm256_unpacklo_ps(r[6], r[7]);
    let t7 = _mm256_unpackhi_ps(r[6], r[7]);
    let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
    let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
    let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
    let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
    let out = [
        _mm256_permute2f128_ps::<0x20>(s0, s4),
        _mm256_permute2f128_ps::<0x20>(s1, s5),
        _mm256_permute2f128_ps::<0x20>(s2, s6),
        _mm256_permute2f128_ps::<0x20>(s3, s7),
        _mm256_permute2f128_ps::<0x31>(s0, s4),
        _mm256_permute2f128_ps::<0x31>(s1, s5),
        _mm256_permute2f128_ps::<0x31>(s2, s6),
        _mm256_permute2f128_ps::<0x31>(s3, s7),
    ];
    for (i, v) in out.into_iter().enumerate() {
        _mm256_storeu_ps(dst.add(i * dst_stride), v);
    }
}

/// `dst[j][i] = src[i][j]` for a row-major `[r, c]` matrix `src`: whole 8 x 8 blocks through
/// [`transpose8`], the edges value by value.
fn transpose<T: Float>(src: &[T], r: usize, c: usize, dst: &mut [T]) {
    let (rb, cb) = (r / 8 * 8, c / 8 * 8);
    for i0 in (0..rb).step_by(8) {
        for j0 in (0..cb).step_by(8) {
            transpose8(&src[i0 * c + j0..], c, &mut dst[j0 * r + i0..], r);
        }
    }
    for i in 0..r {
        let j_from = if i < rb { cb } else { 0 };
        for j in j_from..c {
            dst[j * r + i] = src[i * c + j];
        }
    }
}

/// Copies the planes `[K, rows, cols]` of `src` into the channels-last buffer `dst`
/// (`[.., dst_cols, K]`) at row / column offset `at`, through `tmp` (`rows * cols * K`
/// values); positions not written keep their value.
fn to_channels_last<T: Float>(
    src: &[T],
    k: usize,
    (rows, cols): (usize, usize),
    dst: &mut [T],
    dst_cols: usize,
    at: usize,
    tmp: &mut [T],
) {
    let plane = rows * cols;
    transpose(&src[..k * plane], k, plane, tmp);
    for (y, line) in tmp.chunks_exact(cols * k).take(rows).enumerate() {
        dst[((y + at) * dst_cols + at) * k..][..cols * k].copy_from_slice(line);
    }
}

/// The inverse layout change: `dst[ch][y][x] = src[(y * src_cols + x) * K + ch]` for the
/// `[K, rows, cols]` planes of `dst`, through `tmp` (`rows * cols * K` values).
fn from_channels_last<T: Float>(
    src: &[T],
    k: usize,
    src_cols: usize,
    dst: &mut [T],
    (rows, cols): (usize, usize),
    tmp: &mut [T],
) {
    for (y, line) in tmp.chunks_exact_mut(cols * k).take(rows).enumerate() {
        line.copy_from_slice(&src[y * src_cols * k..][..cols * k]);
    }
    transpose(&tmp[..rows * cols * k], rows * cols, k, dst);
}

/// Scratch space of the transforms, sized for one image.
struct Scratch<T> {
    /// One input image channels-last and zero-bordered, `[hp, wp, C]`. The border is zeroed
    /// once; every image overwrites the interior.
    input: Vec<T>,
    /// One image's output gradient (weight gradient) or output (forward) channels-last,
    /// `[2 th, 2 tw, O]`; for the gradient, the positions past an odd-sized output stay 0.
    grad: Vec<T>,
    /// `d B` (or `A^T M`) of one tile: `[4, 4, channels]`.
    rows: Vec<T>,
    /// One image channels-last without borders, on its way in or out.
    plain: Vec<T>,
}

impl<T: Float> Scratch<T> {
    fn new(g: &ConvGeom, t: &Tiling) -> Self {
        let ch = g.c.max(g.o);
        Scratch {
            input: vec![T::zero(); t.hp * t.wp * g.c],
            grad: vec![T::zero(); 4 * t.th * t.tw * g.o],
            rows: vec![T::zero(); 16 * ch],
            plain: vec![T::zero(); g.hw().max(g.howo()) * ch],
        }
    }
}

/// Writes `V[ξ][first + tile][c] = (B^T d B)[ξ]` for every tile of one image `x` (`[C, H, W]`);
/// `v` is laid out `[16, nb, C]`.
fn transform_input<T: Float>(
    g: &ConvGeom,
    t: &Tiling,
    x: &[T],
    first: usize,
    nb: usize,
    v: &mut [T],
    s: &mut Scratch<T>,
) {
    let c = g.c;
    to_channels_last(x, c, (g.h, g.w), &mut s.input, t.wp, g.pad, &mut s.plain);
    let (d, r) = (&s.input, &mut s.rows);
    for ty in 0..t.th {
        for tx in 0..t.tw {
            // d B for each of the 4 patch rows: r[i][j] = combination j of d[i][0..4]
            for i in 0..4 {
                let px = |j: usize| {
                    let at = ((2 * ty + i) * t.wp + 2 * tx + j) * c;
                    &d[at..at + c]
                };
                let (d0, d1, d2, d3) = (px(0), px(1), px(2), px(3));
                let row = &mut r[4 * i * c..4 * (i + 1) * c];
                let (r0, rest) = row.split_at_mut(c);
                let (r1, rest) = rest.split_at_mut(c);
                let (r2, r3) = rest.split_at_mut(c);
                combine(r0, d0, d2, |a, b| a - b);
                combine(r1, d1, d2, |a, b| a + b);
                combine(r2, d2, d1, |a, b| a - b);
                combine(r3, d1, d3, |a, b| a - b);
            }
            // B^T (d B): V[4i + j] = combination i of r[0..4][j]
            let tile = first + ty * t.tw + tx;
            for j in 0..4 {
                let rr = |i: usize| &r[(4 * i + j) * c..(4 * i + j + 1) * c];
                let (r0, r1, r2, r3) = (rr(0), rr(1), rr(2), rr(3));
                let out = |i: usize| (4 * i + j) * nb * c + tile * c;
                combine(&mut v[out(0)..out(0) + c], r0, r2, |a, b| a - b);
                combine(&mut v[out(1)..out(1) + c], r1, r2, |a, b| a + b);
                combine(&mut v[out(2)..out(2) + c], r2, r1, |a, b| a - b);
                combine(&mut v[out(3)..out(3) + c], r1, r3, |a, b| a - b);
            }
        }
    }
}

/// The forward convolution `y = conv2d(x, W) (+ b)` (stride 1, 3x3, padding `g.pad`), for
/// geometries where [`applies`] holds; one block of images per chunk (see [`parallel`]).
pub(crate) fn conv2d<T: Float>(g: &ConvGeom, x: &[T], w: &[T], bias: Option<&[T]>) -> Vec<T> {
    let t = Tiling::new(g);
    let (tpi, o, c, chw, ohw) = (t.per_image(), g.o, g.c, g.c * g.hw(), g.o * g.howo());
    let u = transform_kernels(g, w);
    let nb_max = t.block * tpi;
    let scratch = || {
        let (v, m) = (
            vec![T::zero(); 16 * c * nb_max],
            vec![T::zero(); 16 * o * nb_max],
        );
        (v, m, Scratch::new(g, &t))
    };
    let zeros = vec![T::zero(); o];
    let bias = bias.unwrap_or(&zeros);
    let mut out = vec![T::zero(); g.n * ohw];
    let work = parallel::product_work(16 * g.n * tpi * o * c);
    parallel::for_each_chunk(
        &mut out,
        t.block * ohw,
        work,
        scratch,
        |(v, m, s), i, out| {
            let (n0, gs) = (i * t.block, out.len() / ohw);
            let nb = gs * tpi;
            let (v, m) = (&mut v[..16 * c * nb], &mut m[..16 * o * nb]);
            for img in 0..gs {
                let xi = &x[(n0 + img) * chw..(n0 + img + 1) * chw];
                transform_input(g, &t, xi, img * tpi, nb, v, s);
            }
            // M[ξ] (O x tiles, stored tile-major) = U[ξ] (O x C) V[ξ] (C x tiles, tile-major)
            for xi in 0..16 {
                gemm(
                    o,
                    nb,
                    c,
                    &mut m[xi * o * nb..(xi + 1) * o * nb],
                    1,
                    o,
                    false,
                    Mat::rows(&u[xi * o * c..(xi + 1) * o * c], c),
                    Mat::rows_t(&v[xi * c * nb..(xi + 1) * c * nb], c),
                );
            }
            for (img, dst) in out.chunks_exact_mut(ohw).enumerate() {
                transform_output(g, &t, m, img * tpi, nb, bias, dst, s);
            }
        },
    );
    out
}

/// Writes one image's output (`[O, Ho, Wo]`) from `M` (`[16, nb, O]`, its tiles from `first`):
/// `Y = A^T M A + b` per tile, channels-last into scratch, then copied out by channel.
#[allow(clippy::too_many_arguments)]
fn transform_output<T: Float>(
    g: &ConvGeom,
    t: &Tiling,
    m: &[T],
    first: usize,
    nb: usize,
    bias: &[T],
    out: &mut [T],
    s: &mut Scratch<T>,
) {
    let o = g.o;
    let w2 = 2 * t.tw;
    let (y, r) = (&mut s.grad, &mut s.rows);
    for ty in 0..t.th {
        for tx in 0..t.tw {
            let tile = first + ty * t.tw + tx;
            let mm = |xi: usize| &m[(xi * nb + tile) * o..(xi * nb + tile + 1) * o];
            // A^T M: r[a][j] for a = 0, 1
            for j in 0..4 {
                let (m0, m1, m2, m3) = (mm(j), mm(4 + j), mm(8 + j), mm(12 + j));
                let (r0, r1) = r[2 * j * o..(2 * j + 2) * o].split_at_mut(o);
                combine3(r0, m0, m1, m2, |a, b, c| a + b + c);
                combine3(r1, m1, m2, m3, |a, b, c| a - b - c);
            }
            // (A^T M) A + b: the 2x2 outputs, channels-last
            for a in 0..2 {
                let rr = |j: usize| &r[(2 * j + a) * o..(2 * j + a + 1) * o];
                let (r0, r1, r2, r3) = (rr(0), rr(1), rr(2), rr(3));
                let at = ((2 * ty + a) * w2 + 2 * tx) * o;
                let (left, right) = y[at..at + 2 * o].split_at_mut(o);
                for ((((l, &a0), &a1), &a2), &bv) in
                    left.iter_mut().zip(r0).zip(r1).zip(r2).zip(bias)
                {
                    *l = a0 + a1 + a2 + bv;
                }
                for ((((rt, &a1), &a2), &a3), &bv) in
                    right.iter_mut().zip(r1).zip(r2).zip(r3).zip(bias)
                {
                    *rt = a1 - a2 - a3 + bv;
                }
            }
        }
    }
    // channels-last [2 th, 2 tw, O] -> [O, Ho, Wo], dropping the padding of odd sizes
    from_channels_last(y, o, w2, out, (g.ho, g.wo), &mut s.plain);
}

/// Writes `dM[ξ][first + tile][o] = (A dY A^T)[ξ]` for one image's output gradient `gy`
/// (`[O, Ho, Wo]`; pixels of edge tiles outside an odd-sized output count as 0).
fn transform_output_grad<T: Float>(
    g: &ConvGeom,
    t: &Tiling,
    gy: &[T],
    first: usize,
    nb: usize,
    dm: &mut [T],
    s: &mut Scratch<T>,
) {
    let o = g.o;
    let w2 = 2 * t.tw;
    to_channels_last(gy, o, (g.ho, g.wo), &mut s.grad, w2, 0, &mut s.plain);
    let q = &s.grad;
    for ty in 0..t.th {
        for tx in 0..t.tw {
            let px = |a: usize, b: usize| {
                let at = ((2 * ty + a) * w2 + 2 * tx + b) * o;
                &q[at..at + o]
            };
            let (g00, g01, g10, g11) = (px(0, 0), px(0, 1), px(1, 0), px(1, 1));
            let tile = first + ty * t.tw + tx;
            let out = |i: usize, j: usize| ((4 * i + j) * nb + tile) * o;
            // rows of A dY: (p_i, q_i) = (g00, g01), (g00 + g10, g01 + g11),
            // (g00 - g10, g01 - g11), (-g10, -g11); each row times A^T: (p, p + q, p - q, -q)
            for k in 0..o {
                let (a, b, c, d) = (g00[k], g01[k], g10[k], g11[k]);
                for (i, (p, qq)) in [(a, b), (a + c, b + d), (a - c, b - d), (-c, -d)]
                    .into_iter()
                    .enumerate()
                {
                    dm[out(i, 0) + k] = p;
                    dm[out(i, 1) + k] = p + qq;
                    dm[out(i, 2) + k] = p - qq;
                    dm[out(i, 3) + k] = -qq;
                }
            }
        }
    }
}

/// The weight gradient `dW = conv2d_weight_grad(x, gy)` (stride 1, 3x3, padding `g.pad`), for
/// geometries where [`applies`] holds: `dU[ξ] = sum_tiles dM[ξ] V[ξ]^T`, then `G^T dU G`; the
/// sum over blocks of images in parts added in a fixed order ([`parallel::sum_parts`]).
pub(crate) fn weight_grad<T: Float>(g: &ConvGeom, x: &[T], gy: &[T]) -> Vec<T> {
    let t = Tiling::new(g);
    let (tpi, o, c, chw, ohw) = (t.per_image(), g.o, g.c, g.c * g.hw(), g.o * g.howo());
    let nb_max = t.block * tpi;
    let scratch = || {
        let (v, dm) = (
            vec![T::zero(); 16 * c * nb_max],
            vec![T::zero(); 16 * o * nb_max],
        );
        (v, dm, Scratch::new(g, &t))
    };
    let (blocks, work) = (
        g.n.div_ceil(t.block),
        parallel::product_work(16 * g.n * tpi * o * c),
    );
    let du = parallel::sum_parts(
        blocks,
        16 * o * c,
        work,
        scratch,
        |(v, dm, s), range, du| {
            for (k, blk) in range.enumerate() {
                let n0 = blk * t.block;
                let gs = t.block.min(g.n - n0);
                let nb = gs * tpi;
                let (v, dm) = (&mut v[..16 * c * nb], &mut dm[..16 * o * nb]);
                for img in 0..gs {
                    let i = n0 + img;
                    transform_input(g, &t, &x[i * chw..(i + 1) * chw], img * tpi, nb, v, s);
                    let gyi = &gy[i * ohw..(i + 1) * ohw];
                    transform_output_grad(g, &t, gyi, img * tpi, nb, dm, s);
                }
                // dU[ξ] (O x C) += dM[ξ] (O x tiles, tile-major) V[ξ]^T (tiles x C)
                for xi in 0..16 {
                    gemm(
                        o,
                        c,
                        nb,
                        &mut du[xi * o * c..(xi + 1) * o * c],
                        c,
                        1,
                        k > 0,
                        Mat::rows_t(&dm[xi * o * nb..(xi + 1) * o * nb], o),
                        Mat::rows(&v[xi * c * nb..(xi + 1) * c * nb], c),
                    );
                }
            }
        },
    );
    untransform_kernel_grads(g, &du)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn geom(n: usize, c: usize, h: usize, w: usize, o: usize, pad: usize) -> ConvGeom {
        let (ho, wo) = (h + 2 * pad - 2, w + 2 * pad - 2);
        ConvGeom {
            n,
            c,
            h,
            w,
            o,
            kh: 3,
            kw: 3,
            stride: 1,
            pad,
            ho,
            wo,
        }
    }

    /// The defining sum, `y[n,o,i,j] = sum_{c,di,dj} x[n,c,i+di-p,j+dj-p] W[o,c,di,dj]`.
    fn direct(g: &ConvGeom, x: &[f64], w: &[f64]) -> Vec<f64> {
        let mut y = vec![0.0; g.n * g.o * g.howo()];
        for n in 0..g.n {
            for o in 0..g.o {
                for i in 0..g.ho {
                    for j in 0..g.wo {
                        let mut s = 0.0;
                        for c in 0..g.c {
                            for di in 0..3 {
                                for dj in 0..3 {
                                    let (yy, xx) = (i + di, j + dj);
                                    if yy < g.pad || xx < g.pad {
                                        continue;
                                    }
                                    let (yy, xx) = (yy - g.pad, xx - g.pad);
                                    if yy >= g.h || xx >= g.w {
                                        continue;
                                    }
                                    s += x[((n * g.c + c) * g.h + yy) * g.w + xx]
                                        * w[((o * g.c + c) * 3 + di) * 3 + dj];
                                }
                            }
                        }
                        y[((n * g.o + o) * g.ho + i) * g.wo + j] = s;
                    }
                }
            }
        }
        y
    }

    fn random(len: usize, rng: &mut impl Rng) -> Vec<f64> {
        (0..len).map(|_| rng.gen_range(-1.0..1.0)).collect()
    }

    /// Shapes: even and odd outputs, padding 0, 1 and 2, blocks of one and several images (the
    /// last block partial), channel counts below the dispatch threshold (the kernels serve any).
    const SHAPES: [(usize, usize, usize, usize, usize, usize); 6] = [
        (3, 2, 6, 6, 3, 1),
        (5, 3, 7, 7, 2, 1),
        (2, 2, 9, 6, 4, 0),
        (3, 4, 5, 8, 3, 2),
        (1, 1, 3, 3, 1, 1),
        (11, 3, 4, 5, 2, 1),
    ];

    #[test]
    fn forward_matches_the_direct_sum() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for (n, c, h, w, o, pad) in SHAPES {
            let g = geom(n, c, h, w, o, pad);
            let x = random(n * c * h * w, &mut rng);
            let wt = random(o * c * 9, &mut rng);
            let bias = random(o, &mut rng);
            let mut want = direct(&g, &x, &wt);
            for (k, v) in want.iter_mut().enumerate() {
                *v += bias[k / g.howo() % o];
            }
            let got = conv2d(&g, &x, &wt, Some(&bias));
            assert_eq!(got.len(), want.len());
            let err = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(
                err < 1e-13,
                "shape {:?}: max error {err}",
                (n, c, h, w, o, pad)
            );
        }
    }

    #[test]
    fn weight_gradient_is_the_adjoint_of_the_direct_sum() {
        // <gy, conv(x, W)> is linear in W, so its gradient is dW[o,c,di,dj] = the direct sum's
        // partial derivative: the inner product with a unit kernel.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        for (n, c, h, w, o, pad) in SHAPES {
            let g = geom(n, c, h, w, o, pad);
            let x = random(n * c * h * w, &mut rng);
            let gy = random(n * o * g.howo(), &mut rng);
            let got = weight_grad(&g, &x, &gy);
            let mut unit = vec![0.0; o * c * 9];
            for k in 0..unit.len() {
                unit[k] = 1.0;
                let want: f64 = direct(&g, &x, &unit)
                    .iter()
                    .zip(&gy)
                    .map(|(a, b)| a * b)
                    .sum();
                unit[k] = 0.0;
                assert!(
                    (got[k] - want).abs() < 1e-12,
                    "shape {:?}, weight {k}: {} vs {want}",
                    (n, c, h, w, o, pad),
                    got[k]
                );
            }
        }
    }

    #[test]
    fn single_precision_stays_close_at_conv4_shapes() {
        // The 14x14 layer: f32 Winograd against the f64 direct sum, relative to the output scale.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let g = geom(2, 64, 14, 14, 64, 1);
        let x = random(2 * 64 * 196, &mut rng);
        let wt: Vec<f64> = random(64 * 64 * 9, &mut rng)
            .iter()
            .map(|v| v * 0.1)
            .collect();
        let want = direct(&g, &x, &wt);
        let (x32, w32): (Vec<f32>, Vec<f32>) = (
            x.iter().map(|&v| v as f32).collect(),
            wt.iter().map(|&v| v as f32).collect(),
        );
        let got = conv2d(&g, &x32, &w32, None);
        let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let err = got
            .iter()
            .zip(&want)
            .map(|(&a, b)| (a as f64 - b).abs())
            .fold(0.0, f64::max);
        assert!(err < 1e-5 * scale, "max error {err} at scale {scale}");
    }
}

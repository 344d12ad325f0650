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
//! Tiles are processed a few images at a time (about [`TILES_TARGET`] tiles), so that the
//! transformed patches and products of one block stay in cache.

use super::kernels::{gemm, ConvGeom, Mat};
use super::Float;

/// Tiles per block of images (a block's `V` and `M` are `16 * C * tiles` values each).
const TILES_TARGET: usize = 196;

/// Whether [`conv2d`] and [`weight_grad`] serve this convolution: 3x3 kernel, stride 1, at least
/// 16 input and output channels (thinner layers are memory-bound, where im2col is as fast), and
/// an output of at least 8x8. Measured on Conv-4's 7x7 layer (75 images, one thread), Winograd
/// was no faster than im2col (forward 2.73 vs 2.76 ms, weight gradient 3.25 vs 3.03 ms): its 4x4
/// tiles cover 8x8, so it saves 1.7x multiplications there, not 2.25x, and the transforms eat that.
pub(crate) fn applies(g: &ConvGeom) -> bool {
    g.kh == 3 && g.kw == 3 && g.stride == 1 && g.c >= 16 && g.o >= 16 && g.ho >= 8 && g.wo >= 8
}

/// The tile grid of one image and the block size.
struct Tiling {
    /// Tile rows and columns: `ceil(Ho / 2)`, `ceil(Wo / 2)`.
    th: usize,
    tw: usize,
    /// Rows and columns of the zero-bordered input plane the tiles read: `2 th + 2`, `2 tw + 2`.
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

/// Scratch space for the input transform of one plane.
struct PlaneScratch<T> {
    /// The zero-bordered plane, `hp x wp`, its even rows first, then its odd rows (each
    /// `[th + 1, wp]`). The border is zeroed once; every plane overwrites the interior.
    padded: Vec<T>,
    /// `B^T d` for every tile row: `[4 (i), th, wp]`, plus room for the last tile's reads.
    cols: Vec<T>,
}

impl<T: Float> PlaneScratch<T> {
    fn new(t: &Tiling) -> Self {
        PlaneScratch {
            padded: vec![T::zero(); t.hp * t.wp],
            cols: vec![T::zero(); 4 * t.th * t.wp],
        }
    }
}

/// Writes `V[ξ][c][first + tile] = (B^T d B)[ξ]` for every tile of one input plane `x`
/// (`H x W`); `v` is laid out `[16, C, nb]`.
#[allow(clippy::too_many_arguments)]
fn transform_plane<T: Float>(
    g: &ConvGeom,
    t: &Tiling,
    x: &[T],
    c: usize,
    first: usize,
    nb: usize,
    v: &mut [T],
    s: &mut PlaneScratch<T>,
) {
    let (p, wp, th) = (g.pad, t.wp, t.th);
    let half = (th + 1) * wp;
    for (y, row) in x.chunks_exact(g.w).enumerate() {
        let r = y + p;
        let start = (r % 2) * half + (r / 2) * wp + p;
        s.padded[start..start + g.w].copy_from_slice(row);
    }
    // Down the columns, for all tile rows at once: tile row ty reads padded rows 2ty, 2ty + 1,
    // 2ty + 2, 2ty + 3, i.e. even row ty, odd row ty, even row ty + 1, odd row ty + 1, so each
    // combination of B^T is one contiguous run over th * wp values.
    let n = th * wp;
    let (even, odd) = s.padded.split_at(half);
    let (e0, e1, o0, o1) = (&even[..n], &even[wp..wp + n], &odd[..n], &odd[wp..wp + n]);
    let (c0, rest) = s.cols.split_at_mut(n);
    let (c1, rest) = rest.split_at_mut(n);
    let (c2, c3) = rest.split_at_mut(n);
    combine(c0, e0, e1, |a, b| a - b);
    combine(c1, o0, e1, |a, b| a + b);
    combine(c2, e1, o0, |a, b| a - b);
    combine(c3, o0, o1, |a, b| a - b);
    // Along the rows of every tile row: the same combinations of columns 2tx .. 2tx + 3.
    match t.tw {
        7 => transform_rows::<T, 7>(t, &s.cols, c, first, nb, g.c, v),
        4 => transform_rows::<T, 4>(t, &s.cols, c, first, nb, g.c, v),
        _ => transform_rows::<T, 0>(t, &s.cols, c, first, nb, g.c, v),
    }
}

/// The second half of the input transform: `V[4i + j][c][first + ty tw + tx]` from the four
/// values `cols[i][ty][2tx .. 2tx + 4]`. `TW` is the number of tile columns when known at
/// compile time (Conv-4's 14x14 and 7x7 layers), so the short row loops unroll; 0 reads it from
/// `t`.
fn transform_rows<T: Float, const TW: usize>(
    t: &Tiling,
    cols: &[T],
    c: usize,
    first: usize,
    nb: usize,
    channels: usize,
    v: &mut [T],
) {
    let tw = if TW > 0 { TW } else { t.tw };
    let (th, wp) = (t.th, t.wp);
    let plane = channels * nb;
    for i in 0..4 {
        let src = &cols[i * th * wp..(i + 1) * th * wp];
        // the four outputs of this row of B^T, each a run of th * tw tiles
        let at = |j: usize| (4 * i + j) * plane + c * nb + first;
        let (head, rest) = v.split_at_mut(at(1));
        let v0 = &mut head[at(0)..at(0) + th * tw];
        let (head, rest) = rest.split_at_mut(at(2) - at(1));
        let v1 = &mut head[..th * tw];
        let (head, rest) = rest.split_at_mut(at(3) - at(2));
        let v2 = &mut head[..th * tw];
        let v3 = &mut rest[..th * tw];
        for ty in 0..th {
            let row = &src[ty * wp..ty * wp + 2 * tw + 2];
            let k = ty * tw;
            let (d0, d1, d2, d3) = (
                &mut v0[k..k + tw],
                &mut v1[k..k + tw],
                &mut v2[k..k + tw],
                &mut v3[k..k + tw],
            );
            for tx in 0..tw {
                let q = &row[2 * tx..2 * tx + 4];
                d0[tx] = q[0] - q[2];
                d1[tx] = q[1] + q[2];
                d2[tx] = q[2] - q[1];
                d3[tx] = q[1] - q[3];
            }
        }
    }
}

/// `dst[k] = f(a[k], b[k])` (a loop the compiler vectorises).
#[inline(always)]
fn combine<T: Float>(dst: &mut [T], a: &[T], b: &[T], f: impl Fn(T, T) -> T) {
    for ((d, &x), &y) in dst.iter_mut().zip(a).zip(b) {
        *d = f(x, y);
    }
}

/// Writes `V` (`[16, C, gs * tiles per image]`) for the `gs` images of `x`.
fn transform_inputs<T: Float>(
    g: &ConvGeom,
    t: &Tiling,
    x: &[T],
    gs: usize,
    v: &mut [T],
    s: &mut PlaneScratch<T>,
) {
    let (nb, hw) = (gs * t.per_image(), g.hw());
    for img in 0..gs {
        for c in 0..g.c {
            let plane = &x[(img * g.c + c) * hw..(img * g.c + c + 1) * hw];
            transform_plane(g, t, plane, c, img * t.per_image(), nb, v, s);
        }
    }
}

/// The forward convolution `y = conv2d(x, W) (+ b)` (stride 1, 3x3, padding `g.pad`), for
/// geometries where [`applies`] holds.
pub(crate) fn conv2d<T: Float>(g: &ConvGeom, x: &[T], w: &[T], bias: Option<&[T]>) -> Vec<T> {
    let t = Tiling::new(g);
    let (tpi, o, c, chw) = (t.per_image(), g.o, g.c, g.c * g.hw());
    let u = transform_kernels(g, w);
    let nb_max = t.block * tpi;
    let mut v = vec![T::zero(); 16 * c * nb_max];
    let mut m = vec![T::zero(); 16 * o * nb_max];
    let mut y = vec![T::zero(); 12 * nb_max];
    let mut scratch = PlaneScratch::new(&t);
    let mut out = vec![T::zero(); g.n * o * g.howo()];
    let mut n0 = 0;
    while n0 < g.n {
        let gs = t.block.min(g.n - n0);
        let nb = gs * tpi;
        let (v, m) = (&mut v[..16 * c * nb], &mut m[..16 * o * nb]);
        transform_inputs(g, &t, &x[n0 * chw..(n0 + gs) * chw], gs, v, &mut scratch);
        for xi in 0..16 {
            gemm(
                o,
                nb,
                c,
                &mut m[xi * o * nb..(xi + 1) * o * nb],
                nb,
                1,
                false,
                Mat::rows(&u[xi * o * c..(xi + 1) * o * c], c),
                Mat::rows(&v[xi * c * nb..(xi + 1) * c * nb], nb),
            );
        }
        let out = &mut out[n0 * o * g.howo()..(n0 + gs) * o * g.howo()];
        for ch in 0..o {
            let bv = bias.map_or(T::zero(), |b| b[ch]);
            let mm = |xi: usize| &m[(xi * o + ch) * nb..(xi * o + ch + 1) * nb];
            let (tmp, yy) = y.split_at_mut(8 * nb_max);
            // A^T M: two rows, each of four runs over the block's tiles
            for j in 0..4 {
                let (m0, m1, m2, m3) = (mm(j), mm(4 + j), mm(8 + j), mm(12 + j));
                for k in 0..nb {
                    tmp[j * nb_max + k] = m0[k] + m1[k] + m2[k];
                    tmp[(4 + j) * nb_max + k] = m1[k] - m2[k] - m3[k];
                }
            }
            // (A^T M) A, plus the bias: the four outputs of every tile
            for a in 0..2 {
                let r = |j: usize| &tmp[(4 * a + j) * nb_max..(4 * a + j) * nb_max + nb];
                let (r0, r1, r2, r3) = (r(0), r(1), r(2), r(3));
                for k in 0..nb {
                    yy[2 * a * nb_max + k] = r0[k] + r1[k] + r2[k] + bv;
                    yy[(2 * a + 1) * nb_max + k] = r1[k] - r2[k] - r3[k] + bv;
                }
            }
            scatter_tiles(g, &t, yy, nb_max, ch, gs, out);
        }
        n0 += gs;
    }
    out
}

/// Writes the 2x2 outputs `y[2a + b][tile]` of one output channel `ch` into `out`
/// (`[gs, O, Ho, Wo]`), dropping the parts of edge tiles that fall outside an odd-sized output.
fn scatter_tiles<T: Float>(
    g: &ConvGeom,
    t: &Tiling,
    y: &[T],
    stride: usize,
    ch: usize,
    gs: usize,
    out: &mut [T],
) {
    let (ho, wo, tpi) = (g.ho, g.wo, t.per_image());
    for img in 0..gs {
        let plane = &mut out[(img * g.o + ch) * ho * wo..(img * g.o + ch + 1) * ho * wo];
        for ty in 0..t.th {
            for a in 0..2 {
                let oy = 2 * ty + a;
                if oy >= ho {
                    break;
                }
                let first = img * tpi + ty * t.tw;
                let (left, right) = (
                    &y[2 * a * stride + first..2 * a * stride + first + t.tw],
                    &y[(2 * a + 1) * stride + first..(2 * a + 1) * stride + first + t.tw],
                );
                let row = &mut plane[oy * wo..(oy + 1) * wo];
                let mut pairs = row.chunks_exact_mut(2);
                for ((dst, &l), &r) in (&mut pairs).zip(left).zip(right) {
                    dst[0] = l;
                    dst[1] = r;
                }
                if let Some(last) = pairs.into_remainder().first_mut() {
                    *last = left[t.tw - 1];
                }
            }
        }
    }
}

/// Writes `dM = A dY A^T` (`[16, O, gs * tiles per image]`) for the output gradients `gy` of
/// `gs` images; pixels of edge tiles outside an odd-sized output count as 0.
fn transform_output_grads<T: Float>(
    g: &ConvGeom,
    t: &Tiling,
    gy: &[T],
    gs: usize,
    dm: &mut [T],
    q: &mut [T],
) {
    let (ho, wo, tpi, o) = (g.ho, g.wo, t.per_image(), g.o);
    let nb = gs * tpi;
    for ch in 0..o {
        // gather the four pixels of every tile: q[2a + b][tile]
        for img in 0..gs {
            let plane = &gy[(img * o + ch) * ho * wo..(img * o + ch + 1) * ho * wo];
            for ty in 0..t.th {
                for a in 0..2 {
                    let oy = 2 * ty + a;
                    let first = img * tpi + ty * t.tw;
                    let (l, r) = q.split_at_mut((2 * a + 1) * nb);
                    let left = &mut l[2 * a * nb + first..2 * a * nb + first + t.tw];
                    let right = &mut r[first..first + t.tw];
                    if oy >= ho {
                        left.fill(T::zero());
                        right.fill(T::zero());
                        continue;
                    }
                    let row = &plane[oy * wo..(oy + 1) * wo];
                    let mut pairs = row.chunks_exact(2);
                    for ((src, lv), rv) in (&mut pairs).zip(left.iter_mut()).zip(right.iter_mut()) {
                        *lv = src[0];
                        *rv = src[1];
                    }
                    if let Some(&last) = pairs.remainder().first() {
                        left[t.tw - 1] = last;
                        right[t.tw - 1] = T::zero();
                    }
                }
            }
        }
        // rows of A dY: (p_i, q_i) = (g00, g01), (g00 + g10, g01 + g11), (g00 - g10, ...),
        // (-g10, -g11); then each row times A^T: (p, p + q, p - q, -q)
        let (g00, g01, g10, g11) = (&q[..nb], &q[nb..2 * nb], &q[2 * nb..3 * nb], &q[3 * nb..]);
        let at = |i: usize, j: usize| ((4 * i + j) * o + ch) * nb;
        for k in 0..nb {
            let (a, b, c, d) = (g00[k], g01[k], g10[k], g11[k]);
            for (i, (p, qq)) in [(a, b), (a + c, b + d), (a - c, b - d), (-c, -d)]
                .into_iter()
                .enumerate()
            {
                dm[at(i, 0) + k] = p;
                dm[at(i, 1) + k] = p + qq;
                dm[at(i, 2) + k] = p - qq;
                dm[at(i, 3) + k] = -qq;
            }
        }
    }
}

/// The weight gradient `dW = conv2d_weight_grad(x, gy)` (stride 1, 3x3, padding `g.pad`), for
/// geometries where [`applies`] holds: `dU[ξ] = sum_tiles dM[ξ] V[ξ]^T`, then `G^T dU G`.
pub(crate) fn weight_grad<T: Float>(g: &ConvGeom, x: &[T], gy: &[T]) -> Vec<T> {
    let t = Tiling::new(g);
    let (tpi, o, c, chw) = (t.per_image(), g.o, g.c, g.c * g.hw());
    let nb_max = t.block * tpi;
    let mut v = vec![T::zero(); 16 * c * nb_max];
    let mut dm = vec![T::zero(); 16 * o * nb_max];
    let mut q = vec![T::zero(); 4 * nb_max];
    let mut scratch = PlaneScratch::new(&t);
    let mut du = vec![T::zero(); 16 * o * c];
    let mut n0 = 0;
    while n0 < g.n {
        let gs = t.block.min(g.n - n0);
        let nb = gs * tpi;
        let (v, dm) = (&mut v[..16 * c * nb], &mut dm[..16 * o * nb]);
        transform_inputs(g, &t, &x[n0 * chw..(n0 + gs) * chw], gs, v, &mut scratch);
        let gy = &gy[n0 * o * g.howo()..(n0 + gs) * o * g.howo()];
        transform_output_grads(g, &t, gy, gs, dm, &mut q[..4 * nb]);
        for xi in 0..16 {
            gemm(
                o,
                c,
                nb,
                &mut du[xi * o * c..(xi + 1) * o * c],
                c,
                1,
                n0 > 0,
                Mat::rows(&dm[xi * o * nb..(xi + 1) * o * nb], nb),
                Mat::rows_t(&v[xi * c * nb..(xi + 1) * c * nb], nb),
            );
        }
        n0 += gs;
    }
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

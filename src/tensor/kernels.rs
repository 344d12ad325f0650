//! Raw slice kernels with no autodiff: a strided matrix product (small sizes by plain loops,
//! larger ones by the `gemm` crate), and the im2col / col2im pair that turns convolutions into
//! matrix products.
//!
//! Matrices are described by a slice and a row stride `rs` and column stride `cs`
//! (element `(i, j)` at `i * rs + j * cs`), so transposes cost nothing.

use super::Float;

/// `m * n * k` at or below which [`gemm`] runs its own loops instead of the `gemm` crate.
/// Measured (f32, one core): the crate's runtime-dispatched AVX2/FMA kernels win from about
/// 4x4x4 up (10x40x40: 0.45 us against 1.6 us for plain loops, which the crate's baseline
/// x86-64 build compiles to SSE2 only); below that both take ~10-70 ns.
pub(crate) const SMALL_GEMM: usize = 63;

/// A strided read-only matrix.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a, T> {
    pub data: &'a [T],
    pub rs: usize,
    pub cs: usize,
}

impl<'a, T> Mat<'a, T> {
    /// A row-major `[rows, cols]` matrix.
    pub fn rows(data: &'a [T], cols: usize) -> Self {
        Mat {
            data,
            rs: cols,
            cs: 1,
        }
    }
    /// The transpose of a row-major `[rows, cols]` matrix (`[cols, rows]`, no copy).
    pub fn rows_t(data: &'a [T], cols: usize) -> Self {
        Mat {
            data,
            rs: 1,
            cs: cols,
        }
    }
}

fn check_extent(len: usize, r: usize, c: usize, rs: usize, cs: usize, what: &str) {
    if r > 0 && c > 0 {
        let last = (r - 1) * rs + (c - 1) * cs;
        assert!(
            last < len,
            "gemm kernel: {what} of {r}x{c} (strides {rs},{cs}) exceeds its {len} elements"
        );
    }
}

/// `dst = a @ b` (or `dst += a @ b` when `accumulate`), `a` being `m x k`, `b` `k x n`, `dst`
/// `m x n` with strides `(drs, dcs)`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [T],
    drs: usize,
    dcs: usize,
    accumulate: bool,
    a: Mat<'_, T>,
    b: Mat<'_, T>,
) {
    if m == 0 || n == 0 {
        return;
    }
    check_extent(dst.len(), m, n, drs, dcs, "destination");
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    dst[i * drs + j * dcs] = T::zero();
                }
            }
        }
        return;
    }
    check_extent(a.data.len(), m, k, a.rs, a.cs, "left operand");
    check_extent(b.data.len(), k, n, b.rs, b.cs, "right operand");
    if m * n * k <= SMALL_GEMM {
        small_gemm(m, n, k, dst, drs, dcs, accumulate, a, b);
        return;
    }
    // SAFETY: every index touched, `i*rs + j*cs` for i, j within the sizes, was checked to be
    // in bounds above; `dst` does not alias `a` or `b` (it is borrowed mutably).
    unsafe {
        gemm::gemm::<T>(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dcs as isize,
            drs as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            T::one(),
            T::one(),
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Plain loops for tiny products, ordered by the layout so the inner loop is contiguous.
#[allow(clippy::too_many_arguments)]
fn small_gemm<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [T],
    drs: usize,
    dcs: usize,
    accumulate: bool,
    a: Mat<'_, T>,
    b: Mat<'_, T>,
) {
    if dcs == 1 && b.cs == 1 {
        // row of dst += a[i,p] * row p of b
        for i in 0..m {
            let row = &mut dst[i * drs..i * drs + n];
            if !accumulate {
                row.iter_mut().for_each(|v| *v = T::zero());
            }
            for p in 0..k {
                let aip = a.data[i * a.rs + p * a.cs];
                let brow = &b.data[p * b.rs..p * b.rs + n];
                for (d, &bv) in row.iter_mut().zip(brow) {
                    *d += aip * bv;
                }
            }
        }
    } else if a.cs == 1 && b.rs == 1 {
        // dot products of contiguous rows of a and columns of b
        for i in 0..m {
            let arow = &a.data[i * a.rs..i * a.rs + k];
            for j in 0..n {
                let bcol = &b.data[j * b.cs..j * b.cs + k];
                let s = dot(arow, bcol);
                let d = &mut dst[i * drs + j * dcs];
                *d = if accumulate { *d + s } else { s };
            }
        }
    } else {
        for i in 0..m {
            for j in 0..n {
                let mut s = T::zero();
                for p in 0..k {
                    s += a.data[i * a.rs + p * a.cs] * b.data[p * b.rs + j * b.cs];
                }
                let d = &mut dst[i * drs + j * dcs];
                *d = if accumulate { *d + s } else { s };
            }
        }
    }
}

/// `sum x[i] y[i]` with four independent partial sums (so it vectorises).
#[inline]
pub(crate) fn dot<T: Float>(x: &[T], y: &[T]) -> T {
    let mut acc = [T::zero(); 4];
    let xc = x.chunks_exact(4);
    let yc = y.chunks_exact(4);
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (a, b) in xc.zip(yc) {
        acc[0] += a[0] * b[0];
        acc[1] += a[1] * b[1];
        acc[2] += a[2] * b[2];
        acc[3] += a[3] * b[3];
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (&a, &b) in xr.iter().zip(yr) {
        s += a * b;
    }
    s
}

/// `sum x[i]` with eight independent partial sums (so it vectorises).
#[inline]
pub(crate) fn sum<T: Float>(x: &[T]) -> T {
    let mut acc = [T::zero(); 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    let mut s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for &v in rest {
        s += v;
    }
    s
}

/// `sum (x[i] - mu)^2` with eight independent partial sums (so it vectorises).
#[inline]
pub(crate) fn sum_sq_dev<T: Float>(x: &[T], mu: T) -> T {
    let mut acc = [T::zero(); 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            let d = v - mu;
            *a += d * d;
        }
    }
    let mut s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for &v in rest {
        s += (v - mu) * (v - mu);
    }
    s
}

/// Whether the CPU runs AVX2 and FMA instructions, for kernels compiled both with
/// `#[target_feature(enable = "avx2,fma")]` and without (the standard library caches the CPUID
/// query, so the check is cheap).
pub(super) fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The geometry of a 2-D convolution (NCHW input, OIHW weight, equal stride and padding on
/// both axes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConvGeom {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
    pub ho: usize,
    pub wo: usize,
}

impl ConvGeom {
    /// Rows of the column matrix: `C * kh * kw`.
    pub fn ckk(&self) -> usize {
        self.c * self.kh * self.kw
    }
    /// Output pixels per image and channel.
    pub fn howo(&self) -> usize {
        self.ho * self.wo
    }
    /// Input pixels per image and channel.
    pub fn hw(&self) -> usize {
        self.h * self.w
    }
    /// The valid output columns `[lo, hi)` for kernel column offset `j` (input column
    /// `ox * stride + j - pad` inside `[0, w)`), and likewise for rows.
    fn valid(&self, j: usize, size: usize, out: usize) -> (usize, usize) {
        let s = self.stride;
        let lo = if self.pad > j {
            (self.pad - j).div_ceil(s)
        } else {
            0
        };
        // ox * s + j - pad <= size - 1  <=>  ox <= (size - 1 + pad - j) / s
        let hi = if size + self.pad > j {
            ((size - 1 + self.pad - j) / s + 1).min(out)
        } else {
            0
        };
        (lo.min(hi), hi)
    }
}

/// Images per chunk so that a chunk has at least `target` output columns.
pub(crate) fn group_size(g: &ConvGeom, target: usize) -> usize {
    target.div_ceil(g.howo().max(1)).clamp(1, g.n.max(1))
}

/// Writes the column matrix `[C*kh*kw, gs*Ho*Wo]` of `gs` consecutive images `x`
/// (`gs * C*H*W` values): `cols[(c,i,j), (img,oy,ox)] = x[img, c, oy*s+i-p, ox*s+j-p]` (0 outside).
///
/// Each input plane is first copied into a zero-bordered buffer, so the copies need no bounds
/// logic.
pub(crate) fn im2col<T: Float>(g: &ConvGeom, x: &[T], gs: usize, cols: &mut [T]) {
    let (howo, hw) = (g.howo(), g.hw());
    let ncols = gs * howo;
    let (s, p) = (g.stride, g.pad);
    let wp = g.w + 2 * p;
    let mut pad = vec![T::zero(); (g.h + 2 * p) * wp];
    debug_assert!(cols.len() >= g.ckk() * ncols && x.len() >= gs * g.c * hw);
    for img in 0..gs {
        for c in 0..g.c {
            let plane = &x[(img * g.c + c) * hw..(img * g.c + c + 1) * hw];
            for (y, row) in plane.chunks_exact(g.w).enumerate() {
                pad[(y + p) * wp + p..(y + p) * wp + p + g.w].copy_from_slice(row);
            }
            for i in 0..g.kh {
                for j in 0..g.kw {
                    let r = (c * g.kh + i) * g.kw + j;
                    let dst = &mut cols[r * ncols + img * howo..r * ncols + (img + 1) * howo];
                    let src = &pad[i * wp + j..];
                    if s == 1 {
                        // Conv-4's widths get fixed-size copies (inlined vector moves; a memcpy
                        // call per 14-float row cost more than the copy)
                        match g.wo {
                            28 => copy_rows::<T, 28>(dst, src, wp),
                            14 => copy_rows::<T, 14>(dst, src, wp),
                            7 => copy_rows::<T, 7>(dst, src, wp),
                            3 => copy_rows::<T, 3>(dst, src, wp),
                            _ => {
                                for (oy, drow) in dst.chunks_exact_mut(g.wo).enumerate() {
                                    drow.copy_from_slice(&src[oy * wp..oy * wp + g.wo]);
                                }
                            }
                        }
                    } else {
                        for (oy, drow) in dst.chunks_exact_mut(g.wo).enumerate() {
                            let srow = src[oy * s * wp..].iter().step_by(s);
                            for (d, &v) in drow.iter_mut().zip(srow) {
                                *d = v;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Copies rows of width `W` from `src` (row stride `stride`) into the packed rows of `dst`.
#[inline(always)]
fn copy_rows<T: Copy, const W: usize>(dst: &mut [T], src: &[T], stride: usize) {
    for (oy, drow) in dst.chunks_exact_mut(W).enumerate() {
        let d: &mut [T; W] = drow.try_into().expect("chunk of width W");
        let s: &[T; W] = src[oy * stride..oy * stride + W]
            .try_into()
            .expect("row of width W");
        *d = *s;
    }
}

/// The adjoint of [`im2col`]: adds every column entry back into its input pixel of `dx`
/// (`gs * C*H*W` values, which the caller zeroes first).
pub(crate) fn col2im<T: Float>(g: &ConvGeom, cols: &[T], gs: usize, dx: &mut [T]) {
    let (howo, hw) = (g.howo(), g.hw());
    let ncols = gs * howo;
    let s = g.stride;
    for c in 0..g.c {
        for i in 0..g.kh {
            let (ylo, yhi) = g.valid(i, g.h, g.ho);
            for j in 0..g.kw {
                let (xlo, xhi) = g.valid(j, g.w, g.wo);
                if xlo >= xhi {
                    continue;
                }
                let r = (c * g.kh + i) * g.kw + j;
                let row = &cols[r * ncols..(r + 1) * ncols];
                for img in 0..gs {
                    let dst = &mut dx[(img * g.c + c) * hw..(img * g.c + c + 1) * hw];
                    let src = &row[img * howo..(img + 1) * howo];
                    for oy in ylo..yhi {
                        let iy = oy * s + i - g.pad;
                        let drow = &mut dst[iy * g.w..(iy + 1) * g.w];
                        let srow = &src[oy * g.wo + xlo..oy * g.wo + xhi];
                        let ix0 = xlo * s + j - g.pad;
                        if s == 1 {
                            for (d, &v) in drow[ix0..ix0 + srow.len()].iter_mut().zip(srow) {
                                *d += v;
                            }
                        } else {
                            for (t, &v) in srow.iter().enumerate() {
                                drow[ix0 + t * s] += v;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Copies `gs` images of an NCHW-like `[gs, O, P]` block into `[O, gs*P]` (channel-major).
pub(crate) fn nchw_to_cmajor<T: Float>(src: &[T], gs: usize, o: usize, p: usize, dst: &mut [T]) {
    for img in 0..gs {
        for ch in 0..o {
            let s = &src[(img * o + ch) * p..(img * o + ch + 1) * p];
            dst[ch * gs * p + img * p..ch * gs * p + (img + 1) * p].copy_from_slice(s);
        }
    }
}

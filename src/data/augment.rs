//! Image augmentation: random affine transforms of training images (Koch et al. 2015's
//! parameter set as the model) and a fixed set of transforms for test-time support views.
//!
//! # Coordinates
//! A pixel `(x, y)` is column `x`, row `y`, its centre at the integer point; the image centre
//! is `c = ((W - 1) / 2, (H - 1) / 2)`. A transform maps a source point `p` to
//! `p' = M (p - c) + c + t` with
//!
//! `M = R(theta) Sx(rho_x) Sy(rho_y) D(s_x, s_y)`,
//!
//! `R(theta) = [[cos, sin], [-sin, cos]]` (counter-clockwise as displayed, rows pointing down:
//! the direction of [`super::rotate90`], PIL and torchvision), `Sx(r) = [[1, r], [0, 1]]`,
//! `Sy(r) = [[1, 0], [r, 1]]` (so `det M = s_x s_y > 0` for every shear), `D = diag(s_x, s_y)`
//! and `t = (t_x, t_y)` in pixels.
//!
//! # Warping
//! [`warp`] maps back: output pixel `q` reads the source at `p = M^-1 (q - c - t) + c`
//! (inverse mapping) with bilinear interpolation, each of the four neighbours outside the image
//! counting as 0 (background; Omniglot's ink is 1.0 on 0.0). A source coordinate within 1e-6
//! of an integer is taken as that integer, so integer shifts and quarter turns are exact.
//!
//! # Draws
//! [`AugmentConfig::draw`] takes exactly 11 words from the generator per image, whatever is
//! switched on, so the draws of one image never shift those of the next: for rotation, shear,
//! scale and translation in turn, a coin `u < probability`, then the component's values
//! (`theta`; `rho_x, rho_y`; `s_x, s_y`; `t_x, t_y`), each uniform in its range. A component
//! whose coin fails is the identity.
//!
//! Neither `image` nor `imageproc` is used: `imageproc`'s bilinear `warp` returns the default
//! value for a pixel whose right or bottom neighbour is outside (so even the identity would
//! blank the last row and column) and `image`'s returns nothing outside `[0, W-1]`, while this
//! module needs zero-padded bilinear sampling of `[C, H, W]` `f32` planes in place.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::episode::Episode;
use super::error::{DataError, Result};
use rand::RngCore;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// The random augmentation of training images and the number of test-time support views
/// (the `[data.augment]` table of a few-shot run config). Every component defaults to off.
///
/// Koch et al. 2015's set is `rotation = 10`, `shear = 0.3`, `scale = [0.8, 1.2]`,
/// `translate = 2`, `probability = 0.5`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AugmentConfig {
    /// Largest rotation in degrees: `theta ~ U[-rotation, rotation]` (0 = off).
    pub rotation: f64,
    /// Largest shear: `rho_x, rho_y ~ U[-shear, shear]` independently (0 = off).
    pub shear: f64,
    /// `[min, max]` of the scale: `s_x, s_y ~ U[min, max]` independently (`[1, 1]` = off).
    pub scale: (f64, f64),
    /// Largest shift in pixels: `t_x, t_y ~ U[-translate, translate]` (0 = off).
    pub translate: f64,
    /// The probability that each component (rotation, shear, scale, translation) is applied
    /// to an image, independently (1.0: always; Koch et al. use 0.5).
    pub probability: f64,
    /// T: each support image at validation, test and `adapt` time is followed by `T - 1` fixed
    /// transforms of it ([`SUPPORT_VIEW_TRANSFORMS`]) with its label, so K becomes `K * T`
    /// (1 = off).
    pub support_views: usize,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        AugmentConfig {
            rotation: 0.0,
            shear: 0.0,
            scale: (1.0, 1.0),
            translate: 0.0,
            probability: 1.0,
            support_views: 1,
        }
    }
}

/// The parameters of one affine transform (see the module documentation for the formula).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AffineParams {
    /// `theta`, degrees, counter-clockwise as displayed.
    pub rotation: f64,
    /// `(rho_x, rho_y)`.
    pub shear: (f64, f64),
    /// `(s_x, s_y)`.
    pub scale: (f64, f64),
    /// `(t_x, t_y)`, pixels (`t_x > 0` moves content right, `t_y > 0` down).
    pub translate: (f64, f64),
}

impl AffineParams {
    /// The identity: `theta = 0`, `rho = (0, 0)`, `s = (1, 1)`, `t = (0, 0)`.
    pub const IDENTITY: AffineParams = AffineParams {
        rotation: 0.0,
        shear: (0.0, 0.0),
        scale: (1.0, 1.0),
        translate: (0.0, 0.0),
    };

    /// A rotation by `degrees` alone.
    pub const fn rotate(degrees: f64) -> Self {
        AffineParams {
            rotation: degrees,
            ..Self::IDENTITY
        }
    }

    /// A shift by `(tx, ty)` pixels alone.
    pub const fn shift(tx: f64, ty: f64) -> Self {
        AffineParams {
            translate: (tx, ty),
            ..Self::IDENTITY
        }
    }

    /// A scaling by `(sx, sy)` alone.
    pub const fn scaled(sx: f64, sy: f64) -> Self {
        AffineParams {
            scale: (sx, sy),
            ..Self::IDENTITY
        }
    }

    /// A shear by `(rho_x, rho_y)` alone.
    pub const fn sheared(rho_x: f64, rho_y: f64) -> Self {
        AffineParams {
            shear: (rho_x, rho_y),
            ..Self::IDENTITY
        }
    }

    /// The forward map of an `h x w` image: `p' = M (p - c) + c + t`.
    pub fn forward(&self, h: usize, w: usize) -> Affine {
        let (sin, cos) = self.rotation.to_radians().sin_cos();
        let r = [[cos, sin], [-sin, cos]];
        let shx = [[1.0, self.shear.0], [0.0, 1.0]];
        let shy = [[1.0, 0.0], [self.shear.1, 1.0]];
        let d = [[self.scale.0, 0.0], [0.0, self.scale.1]];
        let m = mul2(mul2(mul2(r, shx), shy), d);
        Affine::about(m, centre(h, w), self.translate)
    }

    /// The inverse map (output pixel to source point): `p = M^-1 (p' - c - t) + c`, with
    /// `M^-1 = D(1/s_x, 1/s_y) Sy(-rho_y) Sx(-rho_x) R(-theta)` (non-finite for a zero scale,
    /// which [`warp`] reads as all background).
    pub fn inverse(&self, h: usize, w: usize) -> Affine {
        let (sin, cos) = self.rotation.to_radians().sin_cos();
        let r_inv = [[cos, -sin], [sin, cos]];
        let shx_inv = [[1.0, -self.shear.0], [0.0, 1.0]];
        let shy_inv = [[1.0, 0.0], [-self.shear.1, 1.0]];
        let d_inv = [[1.0 / self.scale.0, 0.0], [0.0, 1.0 / self.scale.1]];
        let m = mul2(mul2(mul2(d_inv, shy_inv), shx_inv), r_inv);
        let c = centre(h, w);
        // p = m (p' - c - t) + c = m p' + (c - m (c + t)).
        let ct = (c.0 + self.translate.0, c.1 + self.translate.1);
        Affine {
            a: [
                m[0][0],
                m[0][1],
                c.0 - m[0][0] * ct.0 - m[0][1] * ct.1,
                m[1][0],
                m[1][1],
                c.1 - m[1][0] * ct.0 - m[1][1] * ct.1,
            ],
        }
    }
}

/// A 2-D affine map of pixel coordinates: `x' = a0 x + a1 y + a2`, `y' = a3 x + a4 y + a5`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Affine {
    /// `[a0, a1, a2, a3, a4, a5]`.
    pub a: [f64; 6],
}

impl Affine {
    /// The identity map `[1, 0, 0, 0, 1, 0]`.
    pub const IDENTITY: Affine = Affine {
        a: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
    };

    /// `p' = m (p - c) + c + t` as an affine map.
    fn about(m: [[f64; 2]; 2], c: (f64, f64), t: (f64, f64)) -> Affine {
        let [[m00, m01], [m10, m11]] = m;
        Affine {
            a: [
                m00,
                m01,
                c.0 + t.0 - m00 * c.0 - m01 * c.1,
                m10,
                m11,
                c.1 + t.1 - m10 * c.0 - m11 * c.1,
            ],
        }
    }

    /// The image of the point `(x, y)`: `(a0 x + a1 y + a2, a3 x + a4 y + a5)`.
    pub fn apply(&self, x: f64, y: f64) -> (f64, f64) {
        let [a0, a1, a2, a3, a4, a5] = self.a;
        (a0 * x + a1 * y + a2, a3 * x + a4 * y + a5)
    }

    /// Whether every coefficient equals the identity's exactly.
    pub fn is_identity(&self) -> bool {
        self.a == Self::IDENTITY.a
    }
}

/// The 2x2 product `a b`.
fn mul2(a: [[f64; 2]; 2], b: [[f64; 2]; 2]) -> [[f64; 2]; 2] {
    let [[a00, a01], [a10, a11]] = a;
    let [[b00, b01], [b10, b11]] = b;
    [
        [a00 * b00 + a01 * b10, a00 * b01 + a01 * b11],
        [a10 * b00 + a11 * b10, a10 * b01 + a11 * b11],
    ]
}

/// The centre of an `h x w` image in pixel coordinates: `((w - 1) / 2, (h - 1) / 2)`.
fn centre(h: usize, w: usize) -> (f64, f64) {
    ((w.max(1) - 1) as f64 / 2.0, (h.max(1) - 1) as f64 / 2.0)
}

/// The shape `[C, H, W]` of one image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageShape {
    /// C.
    pub channels: usize,
    /// H.
    pub height: usize,
    /// W.
    pub width: usize,
}

impl ImageShape {
    /// The image shape of an example shape: `[C, H, W]` as is, `[H, W]` as `[1, H, W]`; an
    /// error for other ranks or an empty side.
    pub fn of_example(example_shape: &[usize]) -> Result<Self> {
        let s = match *example_shape {
            [h, w] => ImageShape {
                channels: 1,
                height: h,
                width: w,
            },
            [c, h, w] => ImageShape {
                channels: c,
                height: h,
                width: w,
            },
            _ => {
                return Err(DataError::InvalidArgument(format!(
                    "augmentation needs image examples of shape [C, H, W] or [H, W], got {example_shape:?}"
                )))
            }
        };
        if s.is_empty() {
            return Err(DataError::InvalidArgument(format!(
                "augmentation needs non-empty images, got shape {example_shape:?}"
            )));
        }
        Ok(s)
    }

    /// `C * H * W`, the values of one image.
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Whether an image holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How close (in pixels) a source coordinate must be to an integer to be read as it.
const SNAP: f64 = 1e-6;

/// `v` split into its integer part and fraction, `v = i + f` with `f` in `[0, 1)`, a fraction
/// within [`SNAP`] of 0 or 1 snapped to the integer.
fn split(v: f64) -> (f64, f32) {
    let i = v.floor();
    let f = v - i;
    if f < SNAP {
        (i, 0.0)
    } else if f > 1.0 - SNAP {
        (i + 1.0, 0.0)
    } else {
        (i, f as f32)
    }
}

/// The bilinear taps of the source point `(sx, sy)` in an `h x w` plane: up to four
/// `(index, weight)` pairs, `weight = (1 - |x - x_i|)(1 - |y - y_i|)`, leaving out neighbours
/// outside the plane and zero weights. Returns the taps and how many are used.
fn taps(sx: f64, sy: f64, h: usize, w: usize) -> ([(usize, f32); 4], usize) {
    let mut out = [(0usize, 0f32); 4];
    let ((x0, fx), (y0, fy)) = (split(sx), split(sy));
    // Also false for NaN: a non-finite point reads as background.
    if !(x0 >= -1.0 && x0 < w as f64 && y0 >= -1.0 && y0 < h as f64) {
        return (out, 0);
    }
    let mut n = 0;
    for (dy, wy) in [(0.0, 1.0 - fy), (1.0, fy)] {
        for (dx, wx) in [(0.0, 1.0 - fx), (1.0, fx)] {
            let (xi, yi) = (x0 + dx, y0 + dy);
            let weight = wx * wy;
            let inside = xi >= 0.0 && xi < w as f64 && yi >= 0.0 && yi < h as f64;
            if weight != 0.0 && inside {
                if let Some(slot) = out.get_mut(n) {
                    *slot = (yi as usize * w + xi as usize, weight);
                    n += 1;
                }
            }
        }
    }
    (out, n)
}

/// Warps one `[C, H, W]` image: `dst[c][q] = sum_i w_i src[c][p_i]` over the bilinear taps of
/// `p = inverse(q)` (zero outside the image), every channel with the same map. `inverse` maps
/// output pixels to source points ([`AffineParams::inverse`]); the identity copies `src`
/// bit for bit. Errors when `src` or `dst` does not hold `C * H * W` values.
pub fn warp(src: &[f32], dst: &mut [f32], shape: ImageShape, inverse: &Affine) -> Result<()> {
    if src.len() != shape.len() || dst.len() != shape.len() {
        return Err(DataError::InvalidArgument(format!(
            "warp: an image of shape {shape:?} has {} values, got source {} and destination {}",
            shape.len(),
            src.len(),
            dst.len()
        )));
    }
    if inverse.is_identity() {
        dst.copy_from_slice(src);
        return Ok(());
    }
    let (h, w) = (shape.height, shape.width);
    let [a0, a1, a2, a3, a4, a5] = inverse.a;
    for y in 0..h {
        // Source point of (x, y): (a0 x + (a1 y + a2), a3 x + (a4 y + a5)).
        let (rx, ry) = (a1 * y as f64 + a2, a4 * y as f64 + a5);
        for x in 0..w {
            let (sx, sy) = (a0 * x as f64 + rx, a3 * x as f64 + ry);
            let q = y * w + x;
            if !interior(src, dst, shape, sx, sy, q) {
                border(src, dst, shape, sx, sy, q);
            }
        }
    }
    Ok(())
}

/// Output pixel `q` of every channel when all four bilinear neighbours of `(sx, sy)` are inside
/// the image: `(1 - fy) ((1 - fx) p00 + fx p01) + fy ((1 - fx) p10 + fx p11)`. Returns false
/// (writing nothing) otherwise.
fn interior(src: &[f32], dst: &mut [f32], shape: ImageShape, sx: f64, sy: f64, q: usize) -> bool {
    let (h, w) = (shape.height, shape.width);
    let ((x0, fx), (y0, fy)) = (split(sx), split(sy));
    if !(x0 >= 0.0 && x0 + 1.0 < w as f64 && y0 >= 0.0 && y0 + 1.0 < h as f64) {
        return false;
    }
    let i = y0 as usize * w + x0 as usize;
    let plane = h * w;
    for off in (0..shape.channels).map(|c| c * plane) {
        let p = |j: usize| src.get(off + j).copied().unwrap_or(0.0);
        let top = (1.0 - fx) * p(i) + fx * p(i + 1);
        let bottom = (1.0 - fx) * p(i + w) + fx * p(i + w + 1);
        if let Some(o) = dst.get_mut(off + q) {
            *o = (1.0 - fy) * top + fy * bottom;
        }
    }
    true
}

/// Output pixel `q` of every channel near or outside the border: the sum over the taps inside
/// the image ([`taps`]), 0 when there is none.
fn border(src: &[f32], dst: &mut [f32], shape: ImageShape, sx: f64, sy: f64, q: usize) {
    let (h, w) = (shape.height, shape.width);
    let plane = h * w;
    let (t, n) = taps(sx, sy, h, w);
    let used = t.get(..n).unwrap_or(&[]);
    for off in (0..shape.channels).map(|c| c * plane) {
        let v: f32 = used
            .iter()
            .map(|&(i, wt)| wt * src.get(off + i).copied().unwrap_or(0.0))
            .sum();
        if let Some(o) = dst.get_mut(off + q) {
            *o = v;
        }
    }
}

/// Warps each image of `images` (whole `[C, H, W]` images back to back; a trailing partial
/// image is left as it is) in place by its own parameters, `params[i]` for image `i` (images
/// without parameters are left as they are). Images are warped in parallel; each result
/// depends on its image and parameters only, so the output is the same at any thread count.
pub fn warp_images(images: &mut [f32], shape: ImageShape, params: &[AffineParams]) {
    if shape.is_empty() {
        return;
    }
    let (h, w) = (shape.height, shape.width);
    images
        .par_chunks_exact_mut(shape.len())
        .zip(params.par_iter())
        .for_each(|(img, p)| {
            let inv = p.inverse(h, w);
            if !inv.is_identity() {
                let src = img.to_vec();
                // Lengths match by construction: `warp` cannot fail here.
                let _ = warp(&src, img, shape, &inv);
            }
        });
}

/// A uniform draw in `[0, 1)`: the top 53 bits of one 64-bit word times `2^-53` (portable,
/// independent of `rand`'s float conversion).
fn unit<R: RngCore + ?Sized>(rng: &mut R) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A uniform draw in `[lo, hi)`: `lo + (hi - lo) u` (one word).
fn uniform<R: RngCore + ?Sized>(rng: &mut R, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * unit(rng)
}

impl AugmentConfig {
    /// Whether a draw can differ from the identity: some component has a non-trivial range
    /// and `probability > 0`.
    pub fn is_random(&self) -> bool {
        let any = self.rotation != 0.0
            || self.shear != 0.0
            || self.scale != (1.0, 1.0)
            || self.translate != 0.0;
        any && self.probability > 0.0
    }

    /// Draws the parameters of one image (11 words, see the module documentation):
    /// `theta ~ U[-rotation, rotation)`, `rho_x, rho_y ~ U[-shear, shear)`,
    /// `s_x, s_y ~ U[min, max)`, `t_x, t_y ~ U[-translate, translate)`, each component kept
    /// when its coin `u ~ U[0, 1)` is below `probability`, else the identity's.
    pub fn draw<R: RngCore + ?Sized>(&self, rng: &mut R) -> AffineParams {
        let p = self.probability;
        let (r, s, t) = (self.rotation, self.shear, self.translate);
        let rot_on = unit(rng) < p;
        let theta = uniform(rng, -r, r);
        let shear_on = unit(rng) < p;
        let rho = (uniform(rng, -s, s), uniform(rng, -s, s));
        let scale_on = unit(rng) < p;
        let (lo, hi) = self.scale;
        let sc = (uniform(rng, lo, hi), uniform(rng, lo, hi));
        let shift_on = unit(rng) < p;
        let tr = (uniform(rng, -t, t), uniform(rng, -t, t));
        let id = AffineParams::IDENTITY;
        AffineParams {
            rotation: if rot_on { theta } else { id.rotation },
            shear: if shear_on { rho } else { id.shear },
            scale: if scale_on { sc } else { id.scale },
            translate: if shift_on { tr } else { id.translate },
        }
    }

    /// Augments the images of `images` in place (whole `[C, H, W]` images back to back):
    /// the parameters of image 0, 1, ... are drawn from `rng` in order ([`Self::draw`]), then
    /// the images are warped in parallel ([`warp_images`]). Draws nothing when
    /// [`Self::is_random`] is false.
    pub fn augment_images<R: RngCore + ?Sized>(
        &self,
        images: &mut [f32],
        shape: ImageShape,
        rng: &mut R,
    ) {
        if !self.is_random() || shape.is_empty() {
            return;
        }
        let n = images.len() / shape.len();
        let params: Vec<AffineParams> = (0..n).map(|_| self.draw(rng)).collect();
        warp_images(images, shape, &params);
    }

    /// Augments one episode's support images, then its query images, in row order
    /// ([`Self::augment_images`]); labels and indices are unchanged. Errors when the examples
    /// are not images ([`ImageShape::of_example`]).
    pub fn augment_episode<R: RngCore + ?Sized>(
        &self,
        ep: &mut Episode,
        rng: &mut R,
    ) -> Result<()> {
        let shape = ImageShape::of_example(&ep.example_shape)?;
        self.augment_images(&mut ep.support_x, shape, rng);
        self.augment_images(&mut ep.query_x, shape, rng);
        Ok(())
    }
}

/// The fixed transforms of the support views, in order: view `v` (`1 <= v < T`) of a support
/// image is `SUPPORT_VIEW_TRANSFORMS[v - 1]` of it (view 0 is the image itself). Shifts are in
/// pixels whatever the image size; an odd T gives symmetric pairs.
///
/// 1-4: shift by one pixel right, left, down, up; 5-6: rotate +10, -10 degrees; 7-8: scale
/// 1.1, 0.9; 9-10: shear `rho_x` +0.1, -0.1; 11-14: shift by one pixel diagonally (+1, +1),
/// (-1, -1), (+1, -1), (-1, +1); 15: rotate +5 degrees.
pub const SUPPORT_VIEW_TRANSFORMS: [AffineParams; 15] = [
    AffineParams::shift(1.0, 0.0),
    AffineParams::shift(-1.0, 0.0),
    AffineParams::shift(0.0, 1.0),
    AffineParams::shift(0.0, -1.0),
    AffineParams::rotate(10.0),
    AffineParams::rotate(-10.0),
    AffineParams::scaled(1.1, 1.1),
    AffineParams::scaled(0.9, 0.9),
    AffineParams::sheared(0.1, 0.0),
    AffineParams::sheared(-0.1, 0.0),
    AffineParams::shift(1.0, 1.0),
    AffineParams::shift(-1.0, -1.0),
    AffineParams::shift(1.0, -1.0),
    AffineParams::shift(-1.0, 1.0),
    AffineParams::rotate(5.0),
];

/// The most support views: the original and the 15 of [`SUPPORT_VIEW_TRANSFORMS`].
pub const MAX_SUPPORT_VIEWS: usize = SUPPORT_VIEW_TRANSFORMS.len() + 1;

/// Each image of `images` followed by its `views - 1` fixed transforms
/// ([`SUPPORT_VIEW_TRANSFORMS`]): output image `i * T + v` is view `v` of input image `i`
/// (`T = views`, clamped to `[1, MAX_SUPPORT_VIEWS]`; view 0 is a bitwise copy).
pub fn expand_views(images: &[f32], shape: ImageShape, views: usize) -> Vec<f32> {
    let t = views.clamp(1, MAX_SUPPORT_VIEWS);
    if t == 1 || shape.is_empty() {
        return images.to_vec();
    }
    let len = shape.len();
    let mut params = Vec::with_capacity(t);
    params.push(AffineParams::IDENTITY);
    params.extend(SUPPORT_VIEW_TRANSFORMS.iter().take(t - 1).copied());
    let n = images.len() / len;
    let mut out = Vec::with_capacity(n * t * len);
    for img in images.chunks_exact(len) {
        for _ in 0..t {
            out.extend_from_slice(img);
        }
    }
    let all: Vec<AffineParams> = (0..n).flat_map(|_| params.iter().copied()).collect();
    warp_images(&mut out, shape, &all);
    out
}

/// An episode with `views` support views per support image ([`expand_views`]): support row
/// `(k K + s) T + v` is view `v` of shot `s` of class `k`, so the episode is a class-major
/// `K * T`-shot episode (`spec.k_shot`, `support_y` and `indices.support` follow; queries are
/// unchanged). `views <= 1` returns the episode as it is; errors when the examples are not
/// images.
pub fn with_support_views(mut ep: Episode, views: usize) -> Result<Episode> {
    let t = views.clamp(1, MAX_SUPPORT_VIEWS);
    if t == 1 {
        return Ok(ep);
    }
    let shape = ImageShape::of_example(&ep.example_shape)?;
    ep.support_x = expand_views(&ep.support_x, shape, t);
    let repeat =
        |v: &[usize]| -> Vec<usize> { v.iter().flat_map(|&x| std::iter::repeat_n(x, t)).collect() };
    ep.support_y = repeat(&ep.support_y);
    ep.indices.support = repeat(&ep.indices.support);
    ep.spec.k_shot *= t;
    Ok(ep)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::data::seeded_rng;

    const S1: ImageShape = ImageShape {
        channels: 1,
        height: 4,
        width: 5,
    };

    /// A 4x5 image with distinct values `v[y][x] = 1 + 5 y + x` (exact in f32).
    fn ramp() -> Vec<f32> {
        (0..20).map(|i| 1.0 + i as f32).collect()
    }

    fn warped(src: &[f32], shape: ImageShape, p: AffineParams) -> Vec<f32> {
        let mut dst = vec![f32::NAN; src.len()];
        warp(src, &mut dst, shape, &p.inverse(shape.height, shape.width)).unwrap();
        dst
    }

    #[test]
    fn identity_is_bitwise() {
        let src: Vec<f32> = ramp().iter().map(|v| v * 0.1 - 0.7).collect();
        let dst = warped(&src, S1, AffineParams::IDENTITY);
        assert_eq!(
            src.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            dst.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        // A full turn is not the identity map, but reads every pixel at its own centre.
        let turn = warped(&src, S1, AffineParams::rotate(360.0));
        assert_eq!(turn, src);
    }

    #[test]
    fn integer_shift_moves_indices() {
        let src = ramp();
        let dst = warped(&src, S1, AffineParams::shift(1.0, 0.0));
        for y in 0..4 {
            for x in 0..5 {
                let want = if x == 0 { 0.0 } else { src[y * 5 + x - 1] };
                assert_eq!(dst[y * 5 + x], want, "({x}, {y})");
            }
        }
        let up = warped(&src, S1, AffineParams::shift(0.0, -2.0));
        for y in 0..4 {
            for x in 0..5 {
                let want = if y >= 2 { 0.0 } else { src[(y + 2) * 5 + x] };
                assert_eq!(up[y * 5 + x], want, "({x}, {y})");
            }
        }
    }

    #[test]
    fn half_pixel_shift_averages_two_pixels() {
        let src = ramp();
        let dst = warped(&src, S1, AffineParams::shift(0.5, 0.0));
        for y in 0..4 {
            for x in 0..5 {
                let left = if x == 0 { 0.0 } else { src[y * 5 + x - 1] };
                let want = 0.5 * left + 0.5 * src[y * 5 + x];
                assert_eq!(dst[y * 5 + x], want, "({x}, {y})");
            }
        }
    }

    #[test]
    fn quarter_turn_equals_rotate90() {
        let shape = ImageShape {
            channels: 2,
            height: 6,
            width: 6,
        };
        let src: Vec<f32> = (0..72).map(|i| (i * 7 % 13) as f32 / 13.0).collect();
        for (deg, turns) in [(90.0, 1), (180.0, 2), (270.0, 3), (-90.0, 3)] {
            let dst = warped(&src, shape, AffineParams::rotate(deg));
            for c in 0..2 {
                let mut want = vec![0.0; 36];
                crate::data::rotate90(&src[c * 36..(c + 1) * 36], 6, 6, turns, &mut want);
                assert_eq!(&dst[c * 36..(c + 1) * 36], &want[..], "{deg} degrees");
            }
        }
    }

    #[test]
    fn forward_and_inverse_agree() {
        let p = AffineParams {
            rotation: 23.0,
            shear: (0.3, -0.2),
            scale: (0.8, 1.15),
            translate: (1.5, -0.75),
        };
        let (f, i) = (p.forward(28, 20), p.inverse(28, 20));
        for (x, y) in [(0.0, 0.0), (3.5, 17.0), (19.0, 27.0)] {
            let (u, v) = f.apply(x, y);
            let (bx, by) = i.apply(u, v);
            assert!((bx - x).abs() < 1e-12 && (by - y).abs() < 1e-12);
        }
        // The centre moves by t only.
        let (cx, cy) = f.apply(9.5, 13.5);
        assert!((cx - 11.0).abs() < 1e-12 && (cy - 12.75).abs() < 1e-12);
    }

    #[test]
    fn outside_and_non_finite_read_as_background() {
        let src = ramp();
        assert!(warped(&src, S1, AffineParams::shift(9.0, 0.0))
            .iter()
            .all(|&v| v == 0.0));
        assert!(warped(&src, S1, AffineParams::scaled(0.0, 1.0))
            .iter()
            .all(|&v| v == 0.0));
        let mut short = vec![0.0; 3];
        assert!(warp(&src, &mut short, S1, &Affine::IDENTITY).is_err());
    }

    /// Zero-padded bilinear sampling in f64, written out: the reference of the kernel.
    fn naive(src: &[f32], shape: ImageShape, inv: &Affine) -> Vec<f32> {
        let (c, h, w) = (shape.channels, shape.height, shape.width);
        let px = |ch: usize, x: f64, y: f64| -> f64 {
            if x < 0.0 || y < 0.0 || x >= w as f64 || y >= h as f64 {
                0.0
            } else {
                src[ch * h * w + y as usize * w + x as usize] as f64
            }
        };
        let mut out = Vec::new();
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    let (sx, sy) = inv.apply(x as f64, y as f64);
                    let (x0, y0) = (sx.floor(), sy.floor());
                    let (fx, fy) = (sx - x0, sy - y0);
                    let v = (1.0 - fy) * ((1.0 - fx) * px(ch, x0, y0) + fx * px(ch, x0 + 1.0, y0))
                        + fy * ((1.0 - fx) * px(ch, x0, y0 + 1.0)
                            + fx * px(ch, x0 + 1.0, y0 + 1.0));
                    out.push(v as f32);
                }
            }
        }
        out
    }

    #[test]
    fn random_transforms_match_the_written_out_bilinear() {
        let shape = ImageShape {
            channels: 3,
            height: 9,
            width: 7,
        };
        let src: Vec<f32> = (0..shape.len())
            .map(|i| ((i * 37) % 17) as f32 / 16.0)
            .collect();
        let cfg = AugmentConfig {
            rotation: 40.0,
            shear: 0.5,
            scale: (0.6, 1.5),
            translate: 3.0,
            ..AugmentConfig::default()
        };
        let mut rng = seeded_rng(9);
        for _ in 0..200 {
            let inv = cfg.draw(&mut rng).inverse(9, 7);
            let got = {
                let mut d = vec![f32::NAN; src.len()];
                warp(&src, &mut d, shape, &inv).unwrap();
                d
            };
            let want = naive(&src, shape, &inv);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-5, "{g} vs {w}");
            }
        }
    }

    #[test]
    fn draws_are_seeded_and_take_eleven_words() {
        let cfg = AugmentConfig {
            rotation: 10.0,
            shear: 0.3,
            scale: (0.8, 1.2),
            translate: 2.0,
            probability: 0.5,
            support_views: 1,
        };
        let (mut a, mut b) = (seeded_rng(3), seeded_rng(3));
        let pa: Vec<_> = (0..50).map(|_| cfg.draw(&mut a)).collect();
        let pb: Vec<_> = (0..50).map(|_| cfg.draw(&mut b)).collect();
        assert_eq!(pa, pb);
        let mut c = seeded_rng(3);
        for _ in 0..50 * 11 {
            c.next_u64();
        }
        assert_eq!(a.next_u64(), c.next_u64());
        for p in &pa {
            assert!(p.rotation.abs() <= 10.0 && p.translate.0.abs() <= 2.0);
            assert!((0.8..=1.2).contains(&p.scale.1) && p.shear.0.abs() <= 0.3);
        }
        // About half of each component is on.
        let on = pa.iter().filter(|p| p.rotation != 0.0).count();
        assert!((10..=40).contains(&on), "{on}");
        assert!(!AugmentConfig::default().is_random());
    }

    #[test]
    fn views_expand_class_major_with_the_original_first() {
        let src: Vec<f32> = [ramp(), ramp().iter().map(|v| v * 2.0).collect()].concat();
        let out = expand_views(&src, S1, 3);
        assert_eq!(out.len(), 2 * 3 * 20);
        assert_eq!(&out[..20], &src[..20]);
        assert_eq!(&out[60..80], &src[20..40]);
        assert_eq!(
            &out[20..40],
            &warped(&src[..20], S1, SUPPORT_VIEW_TRANSFORMS[0])[..]
        );
        assert_eq!(
            &out[100..120],
            &warped(&src[20..40], S1, SUPPORT_VIEW_TRANSFORMS[1])[..]
        );
        assert_eq!(expand_views(&src, S1, 1), src);
    }
}

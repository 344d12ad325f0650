//! Image operations: antialiased area ("box") resizing, exact quarter-turn rotation and
//! PNG decoding.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::error::{DataError, Result};

/// One axis of a box filter: for each output position `o`, the source pixels
/// `starts[o]..starts[o] + lens[o]` and their weights `weights[offsets[o]..][..lens[o]]`.
#[derive(Debug, Clone, PartialEq)]
struct Axis {
    starts: Vec<usize>,
    lens: Vec<usize>,
    offsets: Vec<usize>,
    weights: Vec<f32>,
}

impl Axis {
    fn new(src: usize, dst: usize) -> Self {
        let scale = src as f64 / dst as f64;
        let mut axis = Axis {
            starts: Vec::new(),
            lens: Vec::new(),
            offsets: Vec::new(),
            weights: Vec::new(),
        };
        for o in 0..dst {
            let lo = o as f64 * scale;
            let hi = (o + 1) as f64 * scale;
            let first = (lo.floor() as usize).min(src - 1);
            let last = (hi.ceil() as usize).min(src).max(first + 1);
            axis.starts.push(first);
            axis.lens.push(last - first);
            axis.offsets.push(axis.weights.len());
            axis.weights.extend((first..last).map(|i| {
                let overlap = (hi.min(i as f64 + 1.0) - lo.max(i as f64)).max(0.0);
                (overlap / scale) as f32
            }));
        }
        axis
    }

    /// `(first source index, weights)` of output `o`.
    #[allow(clippy::indexing_slicing)] // `o < dst` and the offsets/lens are built together in `new`
    fn taps(&self, o: usize) -> (usize, &[f32]) {
        let off = self.offsets[o];
        (self.starts[o], &self.weights[off..off + self.lens[o]])
    }
}

/// A precomputed area-averaging resampler from `src_h x src_w` to `dst_h x dst_w`.
///
/// Every output pixel is the mean of the source image over the output pixel's exact
/// (fractional) footprint, like PIL's `Image.BOX` filter or OpenCV's `INTER_AREA` when
/// shrinking. The filter is separable and its weights are computed once.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxResizer {
    src_h: usize,
    src_w: usize,
    dst_h: usize,
    dst_w: usize,
    rows: Axis,
    cols: Axis,
}

impl BoxResizer {
    /// Prepares the weights; all sizes must be nonzero.
    pub fn new(src_h: usize, src_w: usize, dst_h: usize, dst_w: usize) -> Result<Self> {
        if src_h == 0 || src_w == 0 || dst_h == 0 || dst_w == 0 {
            return Err(DataError::InvalidArgument(format!(
                "cannot resize {src_h}x{src_w} to {dst_h}x{dst_w}: sizes must be nonzero"
            )));
        }
        Ok(BoxResizer {
            src_h,
            src_w,
            dst_h,
            dst_w,
            rows: Axis::new(src_h, dst_h),
            cols: Axis::new(src_w, dst_w),
        })
    }

    /// `(src_h, src_w)`.
    pub fn src_size(&self) -> (usize, usize) {
        (self.src_h, self.src_w)
    }

    /// `(dst_h, dst_w)`.
    pub fn dst_size(&self) -> (usize, usize) {
        (self.dst_h, self.dst_w)
    }

    /// Resizes one channel. `src` has `src_h * src_w` values that `pixel` maps to `f32`;
    /// `out` receives `dst_h * dst_w` values. `tmp` is scratch space (resized as needed).
    ///
    /// The vertical pass runs first, as whole-row multiply-adds that the compiler vectorises.
    /// Panics if `src` or `out` has the wrong length.
    #[allow(clippy::indexing_slicing)] // lengths asserted on entry; taps lie inside the source
    pub fn resize_with<T: Copy>(
        &self,
        src: &[T],
        pixel: impl Fn(T) -> f32,
        out: &mut [f32],
        tmp: &mut Vec<f32>,
    ) {
        assert_eq!(src.len(), self.src_h * self.src_w, "source size");
        assert_eq!(out.len(), self.dst_h * self.dst_w, "destination size");
        if (self.src_h, self.src_w) == (self.dst_h, self.dst_w) {
            // Same size (e.g. Omniglot's 105x105 at `image_size = 105`): every box is one
            // source pixel of weight 1, so the resize is a copy; skip the passes.
            for (o, &p) in out.iter_mut().zip(src) {
                *o = pixel(p);
            }
            return;
        }
        let sw = self.src_w;
        // Vertical pass: dst_h x src_w.
        tmp.clear();
        tmp.resize(self.dst_h * sw, 0.0);
        for (o, trow) in tmp.chunks_exact_mut(sw).enumerate() {
            let (first, weights) = self.rows.taps(o);
            for (k, &w) in weights.iter().enumerate() {
                let srow = &src[(first + k) * sw..(first + k + 1) * sw];
                for (t, &p) in trow.iter_mut().zip(srow) {
                    *t += w * pixel(p);
                }
            }
        }
        // Horizontal pass: dst_h x dst_w.
        for (orow, trow) in out.chunks_exact_mut(self.dst_w).zip(tmp.chunks_exact(sw)) {
            for (o, v) in orow.iter_mut().enumerate() {
                let (first, weights) = self.cols.taps(o);
                *v = weights
                    .iter()
                    .zip(&trow[first..])
                    .map(|(&w, &p)| w * p)
                    .sum();
            }
        }
    }

    /// Resizes one `f32` channel into a new vector.
    pub fn resize(&self, src: &[f32]) -> Vec<f32> {
        let mut out = vec![0.0; self.dst_h * self.dst_w];
        self.resize_with(src, |p| p, &mut out, &mut Vec::new());
        out
    }
}

/// Rotates an `h x w` single-channel image counter-clockwise by `quarter_turns * 90` degrees
/// (the direction of `PIL.Image.rotate`, `torchvision`'s `rotate` and `numpy.rot90`), exactly.
/// `out` has `h * w` values; its shape is `w x h` for odd turns. Panics if `src` or `out`
/// does not hold `h * w` values.
pub fn rotate90(src: &[f32], h: usize, w: usize, quarter_turns: u32, out: &mut [f32]) {
    assert_eq!(src.len(), h * w, "source size");
    assert_eq!(out.len(), h * w, "destination size");
    if h == 0 || w == 0 {
        return;
    }
    match quarter_turns % 4 {
        0 => out.copy_from_slice(src),
        // out is w x h: out[y][x] = src[x][w-1-y].
        1 => turn_columns(src, h, w, out, true),
        2 => {
            for (o, &s) in out.iter_mut().zip(src.iter().rev()) {
                *o = s;
            }
        }
        // out is w x h: out[y][x] = src[h-1-x][y].
        _ => turn_columns(src, h, w, out, false),
    }
}

/// Quarter turn, four source rows at a time: each output row `y` gathers one value from
/// each source row (reading the rows backwards for a counter-clockwise turn, forwards and
/// into the reversed output position for a clockwise one).
#[allow(clippy::indexing_slicing)] // `rotate90` asserted `src.len() == out.len() == h * w`
fn turn_columns(src: &[f32], h: usize, w: usize, out: &mut [f32], ccw: bool) {
    let row = |x: usize| &src[x * w..(x + 1) * w];
    let mut x = 0;
    while x + 4 <= h {
        // Output column(s) written by source rows x..x+4.
        let (rows, col) = if ccw {
            ([row(x), row(x + 1), row(x + 2), row(x + 3)], x)
        } else {
            ([row(x + 3), row(x + 2), row(x + 1), row(x)], h - 4 - x)
        };
        for (y, orow) in out.chunks_exact_mut(h).enumerate() {
            let j = if ccw { w - 1 - y } else { y };
            orow[col..col + 4].copy_from_slice(&[rows[0][j], rows[1][j], rows[2][j], rows[3][j]]);
        }
        x += 4;
    }
    for x in x..h {
        let r = row(x);
        for (y, orow) in out.chunks_exact_mut(h).enumerate() {
            if ccw {
                orow[x] = r[w - 1 - y];
            } else {
                orow[h - 1 - x] = r[y];
            }
        }
    }
}

/// A decoded PNG: 8-bit samples, `channels` per pixel (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedPng {
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
    /// Samples per pixel.
    pub channels: usize,
    /// Row-major interleaved samples.
    pub pixels: Vec<u8>,
}

impl DecodedPng {
    /// Luma in `[0, 1]` per pixel (ITU-R 601-2 weights, as PIL's `convert("L")`); alpha ignored.
    pub fn to_gray(&self) -> Vec<f32> {
        self.pixels
            .chunks_exact(self.channels.max(1))
            .map(|p| match *p {
                [r, g, b, ..] => {
                    (0.299 * f32::from(r) + 0.587 * f32::from(g) + 0.114 * f32::from(b)) / 255.0
                }
                [v, ..] => f32::from(v) / 255.0,
                [] => 0.0,
            })
            .collect()
    }

    /// Ink in `[0, 1]` per pixel: `1 - luma` ([`DecodedPng::to_gray`]), so dark ink on light
    /// paper becomes 1.0 on 0.0, the convention of Lake's Omniglot arrays.
    pub fn to_ink(&self) -> Vec<f32> {
        self.to_gray().into_iter().map(|g| 1.0 - g).collect()
    }

    /// Errors when the image has an alpha channel that is not fully opaque: dropping alpha
    /// from a drawing made of transparency (ink in alpha, colour all black) would leave an
    /// empty image, and which background to composite onto is the user's choice.
    pub fn check_opaque(&self, name: &str) -> Result<()> {
        if self.channels != 2 && self.channels != 4 {
            return Ok(());
        }
        let c = self.channels;
        let transparent = self
            .pixels
            .iter()
            .skip(c - 1)
            .step_by(c)
            .filter(|&&a| a < 255)
            .count();
        if transparent == 0 {
            return Ok(());
        }
        Err(DataError::NotAnImage {
            file: name.to_string(),
            found: format!(
                "a PNG with transparency ({transparent} of {} pixels have alpha < 255); images are read \
                 as opaque luma/RGB, so flatten it onto its background first",
                self.height * self.width
            ),
        })
    }

    /// Planar RGB in `[0, 1]`, `[3, height, width]`; gray is replicated, alpha ignored.
    pub fn to_rgb_planar(&self) -> Vec<f32> {
        let rgb = |p: &[u8]| match *p {
            [r, g, b, ..] => [r, g, b],
            [v, ..] => [v, v, v],
            [] => [0, 0, 0],
        };
        let pixels: Vec<[u8; 3]> = self
            .pixels
            .chunks_exact(self.channels.max(1))
            .map(rgb)
            .collect();
        (0..3)
            .flat_map(|ch| {
                pixels
                    .iter()
                    .map(move |p| p.get(ch).map_or(0.0, |&v| f32::from(v) / 255.0))
            })
            .collect()
    }
}

/// The largest decoded size of one PNG (256 MiB, e.g. 8192x8192 RGBA).
pub const MAX_PNG_BYTES: usize = 256 << 20;

/// Decodes a PNG held in memory to 8-bit samples (palette and low bit depths expanded,
/// 16-bit reduced; 1-bit gray becomes 0/255). `name` is used in error messages.
pub fn decode_png(bytes: &[u8], name: &str) -> Result<DecodedPng> {
    let not_image = |why: String| DataError::NotAnImage {
        file: name.to_string(),
        found: why,
    };
    if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        let head: String = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
        return Err(not_image(format!("no PNG signature (first bytes {head})")));
    }
    let mut decoder = png::Decoder::new(bytes);
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    decoder.set_limits(png::Limits {
        bytes: MAX_PNG_BYTES,
    });
    let mut reader = decoder
        .read_info()
        .map_err(|e| not_image(format!("an undecodable PNG ({e})")))?;
    let (w, h) = (reader.info().width, reader.info().height);
    let size = reader.output_buffer_size();
    if w == 0 || h == 0 || size > MAX_PNG_BYTES {
        return Err(not_image(format!(
            "a PNG of {w}x{h} pixels (expected 1x1 up to {MAX_PNG_BYTES} decoded bytes)"
        )));
    }
    let mut buf = vec![0; size];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| not_image(format!("an undecodable PNG ({e})")))?;
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => return Err(not_image("an unexpanded palette PNG".into())),
    };
    let (width, height) = (info.width as usize, info.height as usize);
    let row = width * channels;
    let mut pixels = Vec::with_capacity(row * height);
    for line in buf.chunks(info.line_size.max(1)).take(height) {
        let px = line
            .get(..row)
            .ok_or_else(|| not_image(format!("a PNG row of {} bytes, not {row}", line.len())))?;
        pixels.extend_from_slice(px);
    }
    Ok(DecodedPng {
        height,
        width,
        channels,
        pixels,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn box_resize_integer_factor_is_block_mean() {
        let r = BoxResizer::new(4, 4, 2, 2).unwrap();
        let src: Vec<f32> = (0..16).map(|v| v as f32).collect();
        assert_eq!(r.resize(&src), vec![2.5, 4.5, 10.5, 12.5]);
    }

    #[test]
    fn box_resize_fractional_preserves_mean() {
        let r = BoxResizer::new(105, 105, 28, 28).unwrap();
        let src: Vec<f32> = (0..105 * 105).map(|v| ((v * 7919) % 13) as f32).collect();
        let out = r.resize(&src);
        let m1: f32 = src.iter().sum::<f32>() / src.len() as f32;
        let m2: f32 = out.iter().sum::<f32>() / out.len() as f32;
        assert!((m1 - m2).abs() < 1e-3, "{m1} {m2}");
        let ones = r.resize(&vec![1.0; 105 * 105]);
        assert!(ones.iter().all(|&v| (v - 1.0).abs() < 1e-5));
    }

    #[test]
    fn rotate_counter_clockwise() {
        // 1 2
        // 3 4  -> ccw 90: 2 4 / 1 3
        let src = [1.0, 2.0, 3.0, 4.0];
        let mut out = [0.0; 4];
        rotate90(&src, 2, 2, 1, &mut out);
        assert_eq!(out, [2.0, 4.0, 1.0, 3.0]);
        rotate90(&src, 2, 2, 2, &mut out);
        assert_eq!(out, [4.0, 3.0, 2.0, 1.0]);
        rotate90(&src, 2, 2, 3, &mut out);
        assert_eq!(out, [3.0, 1.0, 4.0, 2.0]);
        // non-square 2x3 -> 3x2
        let src = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut out = [0.0; 6];
        rotate90(&src, 2, 3, 1, &mut out);
        assert_eq!(out, [3.0, 6.0, 2.0, 5.0, 1.0, 4.0]);
    }
}

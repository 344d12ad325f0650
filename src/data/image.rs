//! Image operations: antialiased area ("box") resizing, exact quarter-turn rotation and
//! PNG decoding.

use super::error::{DataError, Result};

/// One axis of a box filter: for each output position, the first source index and the
/// weights of the consecutive source pixels it covers.
#[derive(Debug, Clone, PartialEq)]
struct Axis {
    starts: Vec<usize>,
    weights: Vec<Vec<f32>>,
}

impl Axis {
    fn new(src: usize, dst: usize) -> Self {
        let scale = src as f64 / dst as f64;
        let mut starts = Vec::with_capacity(dst);
        let mut weights = Vec::with_capacity(dst);
        for o in 0..dst {
            let lo = o as f64 * scale;
            let hi = (o + 1) as f64 * scale;
            let first = lo.floor() as usize;
            let last = (hi.ceil() as usize).min(src).max(first + 1);
            let w: Vec<f32> = (first..last)
                .map(|i| {
                    let overlap = (hi.min(i as f64 + 1.0) - lo.max(i as f64)).max(0.0);
                    (overlap / scale) as f32
                })
                .collect();
            starts.push(first);
            weights.push(w);
        }
        Axis { starts, weights }
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
    pub fn resize_with<T: Copy>(&self, src: &[T], pixel: impl Fn(T) -> f32, out: &mut [f32], tmp: &mut Vec<f32>) {
        assert_eq!(src.len(), self.src_h * self.src_w, "source size");
        assert_eq!(out.len(), self.dst_h * self.dst_w, "destination size");
        // Horizontal pass: src_h x dst_w.
        tmp.clear();
        tmp.resize(self.src_h * self.dst_w, 0.0);
        for (row, trow) in src.chunks_exact(self.src_w).zip(tmp.chunks_exact_mut(self.dst_w)) {
            for (o, t) in trow.iter_mut().enumerate() {
                let s = self.cols.starts[o];
                *t = self.cols.weights[o].iter().zip(&row[s..]).map(|(&w, &p)| w * pixel(p)).sum();
            }
        }
        // Vertical pass: dst_h x dst_w.
        for (o, orow) in out.chunks_exact_mut(self.dst_w).enumerate() {
            orow.fill(0.0);
            let s = self.rows.starts[o];
            for (k, &w) in self.rows.weights[o].iter().enumerate() {
                let trow = &tmp[(s + k) * self.dst_w..(s + k + 1) * self.dst_w];
                for (a, &b) in orow.iter_mut().zip(trow) {
                    *a += w * b;
                }
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
/// `out` has `h * w` values; its shape is `w x h` for odd turns.
pub fn rotate90(src: &[f32], h: usize, w: usize, quarter_turns: u32, out: &mut [f32]) {
    assert_eq!(src.len(), h * w, "source size");
    assert_eq!(out.len(), h * w, "destination size");
    match quarter_turns % 4 {
        0 => out.copy_from_slice(src),
        // out is w x h: out[y][x] = src[x][w-1-y].
        1 => {
            for y in 0..w {
                for x in 0..h {
                    out[y * h + x] = src[x * w + (w - 1 - y)];
                }
            }
        }
        2 => {
            for (o, &s) in out.iter_mut().zip(src.iter().rev()) {
                *o = s;
            }
        }
        // out is w x h: out[y][x] = src[h-1-x][y].
        _ => {
            for y in 0..w {
                for x in 0..h {
                    out[y * h + x] = src[(h - 1 - x) * w + y];
                }
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
        let c = self.channels;
        self.pixels
            .chunks_exact(c)
            .map(|p| {
                if c >= 3 {
                    (0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2])) / 255.0
                } else {
                    f32::from(p[0]) / 255.0
                }
            })
            .collect()
    }

    /// Planar RGB in `[0, 1]`, `[3, height, width]`; gray is replicated, alpha ignored.
    pub fn to_rgb_planar(&self) -> Vec<f32> {
        let n = self.height * self.width;
        let mut out = vec![0.0; 3 * n];
        for (i, p) in self.pixels.chunks_exact(self.channels).enumerate() {
            for ch in 0..3 {
                let v = if self.channels >= 3 { p[ch] } else { p[0] };
                out[ch * n + i] = f32::from(v) / 255.0;
            }
        }
        out
    }
}

/// Decodes a PNG held in memory to 8-bit samples (palette and low bit depths expanded,
/// 16-bit reduced; 1-bit gray becomes 0/255). `name` is used in error messages.
pub fn decode_png(bytes: &[u8], name: &str) -> Result<DecodedPng> {
    let not_image = |why: String| DataError::NotAnImage { file: name.to_string(), found: why };
    if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        let head: String = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
        return Err(not_image(format!("no PNG signature (first bytes {head})")));
    }
    let mut decoder = png::Decoder::new(bytes);
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(|e| not_image(format!("an undecodable PNG ({e})")))?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).map_err(|e| not_image(format!("an undecodable PNG ({e})")))?;
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
    for r in 0..height {
        pixels.extend_from_slice(&buf[r * info.line_size..r * info.line_size + row]);
    }
    Ok(DecodedPng { height, width, channels, pixels })
}

#[cfg(test)]
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

//! Two-item composite images for multi-task learning: MultiMNIST, MultiFashion and
//! Multi-(Fashion+MNIST) as Lin et al. build them (Pareto Multi-Task Learning, NeurIPS 2019).
//!
//! Each composite puts one `28 x 28` item near the top-left corner and another near the
//! bottom-right corner of a `36 x 36` canvas, each moved by a random shift of up to 4 pixels
//! (the top-left item's offset is uniform in `0..=4` on each axis, the bottom-right item's in
//! `4..=8`, so both stay on the canvas), the two combined by the pixelwise maximum where they
//! overlap, and the canvas shrunk back to `28 x 28` by area averaging ([`BoxResizer`]).
//! Task 1 is the top-left item's class, task 2 the bottom-right item's.
//!
//! The two items are drawn independently and uniformly from their source sets (so the two
//! classes may coincide). Everything comes from one seed ([`MultiDigitOptions::seed`]): the
//! same seed and sources give the same images, bit for bit.

use super::dataset::ImageDataset;
use super::episode::{seeded_rng, uniform_below};
use super::error::{DataError, Result};
use super::image::BoxResizer;
use rand_chacha::ChaCha8Rng;

/// How composites are built.
#[derive(Clone, Debug, PartialEq)]
pub struct MultiDigitOptions {
    /// The canvas side (36 in Lin et al.).
    pub canvas: usize,
    /// The largest shift of an item from its corner, in pixels (4 in Lin et al.).
    pub max_shift: usize,
    /// The side of the output images (28 in Lin et al.).
    pub out_size: usize,
    /// The seed of the item choice and the shifts.
    pub seed: u64,
}

impl Default for MultiDigitOptions {
    /// Lin et al.'s construction (36-pixel canvas, shifts up to 4, 28-pixel output), seed 0.
    fn default() -> Self {
        MultiDigitOptions {
            canvas: 36,
            max_shift: 4,
            out_size: 28,
            seed: 0,
        }
    }
}

/// A set of composite images and their two labels.
#[derive(Clone, Debug, PartialEq)]
pub struct MultiDigitSet {
    /// All pixels, image after image, each `out_size x out_size` (one channel).
    pub images: Vec<f32>,
    /// The number of images.
    pub n: usize,
    /// The side of each image.
    pub size: usize,
    /// Task 1: the class of the top-left item of each image.
    pub top_left: Vec<usize>,
    /// Task 2: the class of the bottom-right item of each image.
    pub bottom_right: Vec<usize>,
}

/// The offset `(row, col)` of the top-left corner of each of the two items on the canvas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The top-left item's offset, each in `0..=max_shift`.
    pub top_left: (usize, usize),
    /// The bottom-right item's offset, each in `canvas - item - max_shift..=canvas - item`.
    pub bottom_right: (usize, usize),
}

/// Checks the options against the items' side `item`: an error names the option at fault.
fn check_options(opts: &MultiDigitOptions, item: usize) -> Result<()> {
    let bad = |key: &str, msg: String| Err(DataError::InvalidArgument(format!("{key}: {msg}")));
    if opts.canvas < item {
        return bad(
            "canvas",
            format!("{} is smaller than the items ({item} pixels)", opts.canvas),
        );
    }
    if opts.canvas - item < opts.max_shift {
        return bad(
            "max_shift",
            format!(
                "{} does not fit: a {item}-pixel item shifted from its corner stays on a {}-pixel \
                 canvas only for shifts up to {}",
                opts.max_shift,
                opts.canvas,
                opts.canvas - item
            ),
        );
    }
    if opts.out_size == 0 {
        return bad("out_size", "must be at least 1".into());
    }
    Ok(())
}

/// Draws one placement: each axis of the top-left item uniform in `0..=max_shift`, of the
/// bottom-right item in `canvas - item - max_shift..=canvas - item`.
fn draw_placement(rng: &mut ChaCha8Rng, canvas: usize, item: usize, max_shift: usize) -> Placement {
    let span = max_shift as u64 + 1;
    let mut shift = || uniform_below(rng, span) as usize;
    let far = canvas - item;
    let top_left = (shift(), shift());
    let bottom_right = (far - shift(), far - shift());
    Placement {
        top_left,
        bottom_right,
    }
}

/// Composes one canvas (`canvas x canvas`) from two `item x item` images at `placement`:
/// each canvas pixel is the maximum of the items covering it (0 where none does).
pub fn compose(
    first: &[f32],
    second: &[f32],
    item: usize,
    canvas: usize,
    placement: Placement,
) -> Vec<f32> {
    let mut out = vec![0f32; canvas * canvas];
    for (img, (r0, c0)) in [
        (first, placement.top_left),
        (second, placement.bottom_right),
    ] {
        for (r, row) in img.chunks_exact(item).enumerate() {
            let dst = &mut out[(r0 + r) * canvas + c0..(r0 + r) * canvas + c0 + item];
            for (d, &p) in dst.iter_mut().zip(row) {
                *d = d.max(p);
            }
        }
    }
    out
}

/// Checks that a source set is a non-empty set of one-channel square images of side `item`.
fn check_source(name: &str, ds: &ImageDataset, item: usize) -> Result<()> {
    if ds.n == 0 {
        return Err(DataError::InvalidArgument(format!(
            "{name}: the source set has no image"
        )));
    }
    if ds.channels != 1 || ds.height != item || ds.width != item {
        return Err(DataError::InvalidArgument(format!(
            "{name}: images are {}x{}x{}, expected 1x{item}x{item} like the other source",
            ds.channels, ds.height, ds.width
        )));
    }
    Ok(())
}

/// Builds `n` composites: the top-left item from `first`, the bottom-right item from
/// `second` (the same set for MultiMNIST and MultiFashion), both drawn uniformly, placed and
/// resized as the module describes. Errors name the option or source at fault: `n = 0`,
/// empty or non-square or multi-channel sources, sources of different sizes, a shift that does
/// not fit the canvas.
pub fn build_multi(
    first: &ImageDataset,
    second: &ImageDataset,
    n: usize,
    opts: &MultiDigitOptions,
) -> Result<MultiDigitSet> {
    let item = first.height;
    check_source("first (top-left) source", first, item)?;
    check_source("second (bottom-right) source", second, item)?;
    check_options(opts, item)?;
    if n == 0 {
        return Err(DataError::InvalidArgument(
            "n: the number of composite images must be at least 1".into(),
        ));
    }
    let resizer = BoxResizer::new(opts.canvas, opts.canvas, opts.out_size, opts.out_size)?;
    let mut rng = seeded_rng(opts.seed);
    let plane = opts.out_size * opts.out_size;
    let mut set = MultiDigitSet {
        images: Vec::with_capacity(n * plane),
        n,
        size: opts.out_size,
        top_left: Vec::with_capacity(n),
        bottom_right: Vec::with_capacity(n),
    };
    let (mut out, mut tmp) = (vec![0f32; plane], Vec::new());
    for _ in 0..n {
        let a = uniform_below(&mut rng, first.n as u64) as usize;
        let b = uniform_below(&mut rng, second.n as u64) as usize;
        let placement = draw_placement(&mut rng, opts.canvas, item, opts.max_shift);
        let canvas = compose(
            first.image(a),
            second.image(b),
            item,
            opts.canvas,
            placement,
        );
        resizer.resize_with(&canvas, |p| p, &mut out, &mut tmp);
        set.images.extend_from_slice(&out);
        set.top_left.push(first.labels[a]);
        set.bottom_right.push(second.labels[b]);
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placements_stay_in_range() {
        let mut rng = seeded_rng(3);
        for _ in 0..200 {
            let p = draw_placement(&mut rng, 36, 28, 4);
            assert!(p.top_left.0 <= 4 && p.top_left.1 <= 4);
            assert!((4..=8).contains(&p.bottom_right.0) && (4..=8).contains(&p.bottom_right.1));
        }
    }
}

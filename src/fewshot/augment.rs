//! `[data.augment]` in a run: its range checks, the generator of the augmentation draws, the
//! augmentation of training episodes and the support views of validation, test and `adapt`
//! tasks. The geometry lives in [`crate::data::augment`].
//!
//! ```toml
//! [data.augment]        # absent: no augmentation, no views (every key defaults to off)
//! rotation = 10         # max |degrees|, in [0, 180]
//! shear = 0.3           # max |shear|, in [0, 1]
//! scale = [0.8, 1.2]    # [min, max], 0 < min <= max <= 4
//! translate = 2         # max |pixels|, in [0, image_size / 2]
//! probability = 0.5     # each component's chance per image, in [0, 1] (default 1)
//! support_views = 1     # T in [1, 16]: K becomes K * T at validation / test / adapt time
//! ```
//!
//! # Seeding
//! Meta-batch `i` draws its episodes from ChaCha8 stream `i + 1` of `train.seed`
//! ([`step_rng`](super::loop::step_rng)). Its augmentation draws come from another generator,
//! [`augment_rng`]: the same seed on stream `2^63 + i + 1`. The episode generator is never
//! read for augmentation, so the episodes (and the learner's own draws after them) are those
//! of the unaugmented run, and the augmented images depend on the seed and the iteration
//! only: the same at any thread count and on `--resume`. The draws run through the batch in
//! order: episode 0's support images (class-major), its query images, then episode 1's, and
//! so on, 11 words per image.

use super::config::{DatasetKind, RunConfig};
use super::error::{Result, TrainError};
use crate::algorithms::Target;
use crate::data::augment::{expand_views, with_support_views, MAX_SUPPORT_VIEWS};
use crate::data::{AugmentConfig, Episode, ImageShape};
use crate::run::config_file::{finite_in, int_in};
use rand_chacha::ChaCha8Rng;

/// Added to the episode stream of a meta-batch to give its augmentation stream (`2^63`).
pub const AUGMENT_STREAM_OFFSET: u64 = 1 << 63;

/// The largest `data.augment.rotation`, degrees.
pub const MAX_ROTATION: f64 = 180.0;
/// The largest `data.augment.shear`.
pub const MAX_SHEAR: f64 = 1.0;
/// The largest `data.augment.scale` bound.
pub const MAX_SCALE: f64 = 4.0;

/// The augmentation generator of a meta-batch whose episodes come from `episodes`: the same
/// ChaCha8 seed on stream `episodes.stream + 2^63` (wrapping), from its start. It does not
/// read or advance `episodes`.
pub fn augment_rng(episodes: &ChaCha8Rng) -> ChaCha8Rng {
    use rand::SeedableRng;
    let mut r = ChaCha8Rng::from_seed(episodes.get_seed());
    r.set_stream(episodes.get_stream().wrapping_add(AUGMENT_STREAM_OFFSET));
    r
}

/// Checks `[data.augment]` (nothing when absent): only for `omniglot` and `image_folder`;
/// `rotation` in [0, 180], `shear` in [0, 1], `scale` = [min, max] with `0 < min <= max <= 4`,
/// `translate` in [0, image_size / 2], `probability` in [0, 1], `support_views` in [1, 16].
/// Errors name the key, the range and the value.
pub fn validate(cfg: &RunConfig) -> Result<()> {
    let Some(a) = &cfg.data.augment else {
        return Ok(());
    };
    if !matches!(
        cfg.data.dataset,
        DatasetKind::Omniglot | DatasetKind::ImageFolder
    ) {
        return Err(TrainError::value(
            "data.augment",
            format!(
                "applies to image datasets (`omniglot`, `image_folder`), not `{}`: remove the [data.augment] table",
                cfg.data.dataset.name()
            ),
        ));
    }
    finite_in("data.augment.rotation", a.rotation, 0.0, MAX_ROTATION)?;
    finite_in("data.augment.shear", a.shear, 0.0, MAX_SHEAR)?;
    let (lo, hi) = a.scale;
    for (key, v) in [
        ("data.augment.scale[0] (min)", lo),
        ("data.augment.scale[1] (max)", hi),
    ] {
        if !(v.is_finite() && v > 0.0 && v <= MAX_SCALE) {
            return Err(TrainError::value(
                key,
                format!("= {v} is out of range: expected a finite number in (0, {MAX_SCALE}]"),
            ));
        }
    }
    if lo > hi {
        return Err(TrainError::value(
            "data.augment.scale",
            format!("= [{lo}, {hi}]: expected [min, max] with min <= max"),
        ));
    }
    let side = cfg
        .image_size()
        .or(cfg.data.image_size)
        .unwrap_or(crate::data::OMNIGLOT_SIZE);
    let max_shift = side as f64 / 2.0;
    if !(a.translate.is_finite() && (0.0..=max_shift).contains(&a.translate)) {
        return Err(TrainError::value(
            "data.augment.translate",
            format!(
                "= {} is out of range: expected a finite number of pixels in [0, {max_shift}] (half the image side, {side})",
                a.translate
            ),
        ));
    }
    finite_in("data.augment.probability", a.probability, 0.0, 1.0)?;
    int_in(
        "data.augment.support_views",
        a.support_views,
        1,
        MAX_SUPPORT_VIEWS,
    )?;
    Ok(())
}

/// The augmentation of a loaded run: the config and the image shape of its examples.
#[derive(Clone, Debug, PartialEq)]
pub struct Augment {
    /// `[data.augment]`.
    pub config: AugmentConfig,
    /// `[C, H, W]` of one example.
    pub shape: ImageShape,
}

/// The augmentation of a run whose examples have `example_shape` (`None` without
/// `[data.augment]`); errors, naming `data.augment`, when the examples are not images.
pub fn for_examples(cfg: &RunConfig, example_shape: &[usize]) -> Result<Option<Augment>> {
    let Some(config) = cfg.data.augment.clone() else {
        return Ok(None);
    };
    let shape = ImageShape::of_example(example_shape)
        .map_err(|e| TrainError::value("data.augment", e.to_string()))?;
    Ok(Some(Augment { config, shape }))
}

/// Augments a meta-batch of training episodes in place (support and query images), drawing
/// from [`augment_rng`]`(episodes)`; nothing without augmentation or when no component is on.
pub fn augment_batch(aug: Option<&Augment>, batch: &mut [Episode], episodes: &ChaCha8Rng) {
    let Some(a) = aug.filter(|a| a.config.is_random()) else {
        return;
    };
    let mut rng = augment_rng(episodes);
    for ep in batch.iter_mut() {
        a.config
            .augment_images(&mut ep.support_x, a.shape, &mut rng);
        a.config.augment_images(&mut ep.query_x, a.shape, &mut rng);
    }
}

/// A validation or test episode with its support views
/// ([`crate::data::augment::with_support_views`]): `K * T` support examples per class, view
/// 0 of each the original image; the episode as it is when `support_views <= 1`.
pub fn support_views(aug: Option<&Augment>, ep: Episode) -> Result<Episode> {
    match aug {
        Some(a) if a.config.support_views > 1 => {
            Ok(with_support_views(ep, a.config.support_views)?)
        }
        _ => Ok(ep),
    }
}

/// `adapt`'s support set with its views: each example (`example_shape`, back to back in `x`)
/// followed by its `T - 1` fixed transforms, each label repeated `T` times. The set as it is
/// without views or for regression; errors, naming `data.augment.support_views`, when the
/// examples are not images of the run's size.
pub fn adapt_support(
    cfg: &RunConfig,
    x: Vec<f32>,
    y: Target<f32>,
    example_shape: &[usize],
) -> Result<(Vec<f32>, Target<f32>)> {
    let t = cfg.data.augment.as_ref().map_or(1, |a| a.support_views);
    let labels = match &y {
        Target::Classes(l) if t > 1 => l,
        _ => return Ok((x, y)),
    };
    let shape = image_shape(cfg, example_shape).ok_or_else(|| {
        TrainError::value(
            "data.augment.support_views",
            format!("needs image examples, but the support examples have shape {example_shape:?}"),
        )
    })?;
    let labels: Vec<usize> = labels
        .iter()
        .flat_map(|&l| std::iter::repeat_n(l, t))
        .collect();
    Ok((expand_views(&x, shape, t), Target::Classes(labels)))
}

/// The image shape of examples of `example_shape`: `[D / s^2, s, s]` for the run's image side
/// `s` when `s^2` divides the `D` values of an example (images are resized to `s x s`, and
/// an MLP's are flat), else `[C, H, W]` / `[H, W]` as they are.
fn image_shape(cfg: &RunConfig, example_shape: &[usize]) -> Option<ImageShape> {
    let d: usize = example_shape.iter().product();
    match cfg.image_size() {
        Some(s) if s > 0 && d > 0 && d % (s * s) == 0 => Some(ImageShape {
            channels: d / (s * s),
            height: s,
            width: s,
        }),
        _ => ImageShape::of_example(example_shape).ok(),
    }
}

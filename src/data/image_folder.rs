//! A generic folder of images: one subfolder per class, PNG files inside
//! (`root/<class>/<image>.png`), like torchvision's `ImageFolder`.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::dataset::ImageDataset;
use super::error::{path_name, DataError, Result};
use super::image::{decode_png, BoxResizer};

/// How to turn decoded pixels into channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColorMode {
    /// One luma channel (ITU-R 601-2, as PIL's `convert("L")`).
    #[default]
    Grayscale,
    /// Three channels (gray images replicated).
    Rgb,
    /// One channel of ink, `1 - luma`: dark ink on light paper becomes 1.0 on 0.0, as in
    /// Lake's Omniglot arrays (what a model trained on them takes).
    Ink,
}

impl ColorMode {
    /// Channels per image.
    pub fn channels(self) -> usize {
        match self {
            ColorMode::Grayscale | ColorMode::Ink => 1,
            ColorMode::Rgb => 3,
        }
    }
}

/// Reads one PNG as `color` planes in `[0, 1]` (`[channels, h, w]`, row-major), resized to
/// `resize` with the exact-area [`BoxResizer`] in `f32` (no rounding to 8 bits) when given and
/// different; returns `(h, w, planes)`. Errors name the file: not a PNG, undecodable, or
/// transparent ([`super::image::DecodedPng::check_opaque`]).
pub fn load_png_as(
    file: &Path,
    color: ColorMode,
    resize: Option<(usize, usize)>,
) -> Result<(usize, usize, Vec<f32>)> {
    let name = path_name(file);
    let bytes = std::fs::read(file).map_err(|e| DataError::io(file, "read", e))?;
    let png = decode_png(&bytes, &name)?;
    png.check_opaque(&name)?;
    let planes = match color {
        ColorMode::Grayscale => png.to_gray(),
        ColorMode::Rgb => png.to_rgb_planar(),
        ColorMode::Ink => png.to_ink(),
    };
    match resize {
        Some((h, w)) if (h, w) != (png.height, png.width) => {
            let r = BoxResizer::new(png.height, png.width, h, w)?;
            let plane = png.height * png.width;
            let mut out = vec![0.0; color.channels() * h * w];
            let mut tmp = Vec::new();
            for (src, dst) in planes.chunks_exact(plane).zip(out.chunks_exact_mut(h * w)) {
                r.resize_with(src, |p| p, dst, &mut tmp);
            }
            Ok((h, w, out))
        }
        _ => Ok((png.height, png.width, planes)),
    }
}

/// Options of [`load_image_folder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImageFolderOptions {
    /// Channel handling.
    pub color: ColorMode,
    /// Resize every image to `(height, width)` with the area filter; without it all images
    /// must have the same size.
    pub resize: Option<(usize, usize)>,
}

/// The paths of `dir`'s entries, sorted.
pub(crate) fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, "list", e))? {
        out.push(e.map_err(|e| DataError::io(dir, "list", e))?.path());
    }
    out.sort();
    Ok(out)
}

/// Whether the path's file name starts with a dot.
pub(crate) fn is_hidden(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

/// Loads `root/<class>/<file>.png` (classes are the subfolders, sorted by name; hidden
/// entries ignored). Pixels are scaled to `[0, 1]`.
///
/// Errors: a class folder without images ([`DataError::EmptyClass`]), a file that is not a
/// PNG ([`DataError::NotAnImage`]), images of different sizes without `resize`.
pub fn load_image_folder(root: &Path, opts: &ImageFolderOptions) -> Result<ImageDataset> {
    let mut class_names = Vec::new();
    let mut files: Vec<(usize, PathBuf)> = Vec::new();
    for dir in sorted_entries(root)? {
        if is_hidden(&dir) || !dir.is_dir() {
            continue;
        }
        let class = class_names.len();
        let mut count = 0;
        for f in sorted_entries(&dir)? {
            if is_hidden(&f) {
                continue;
            }
            if f.is_dir() {
                return Err(DataError::NotAnImage {
                    file: path_name(&f),
                    found: "a folder".into(),
                });
            }
            let ext = f
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase);
            if ext.as_deref() != Some("png") {
                return Err(DataError::NotAnImage {
                    file: path_name(&f),
                    found: match ext {
                        Some(e) => format!("a .{e} file"),
                        None => "a file without extension".into(),
                    },
                });
            }
            files.push((class, f));
            count += 1;
        }
        if count == 0 {
            return Err(DataError::EmptyClass {
                file: path_name(&dir),
            });
        }
        class_names.push(
            dir.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
    }
    if class_names.is_empty() {
        return Err(DataError::NotFound {
            file: path_name(root),
            what: "class folder".into(),
            expected: "one subfolder per class holding PNG images".into(),
        });
    }
    let channels = opts.color.channels();
    let decoded: Vec<Result<(usize, usize, Vec<f32>)>> = files
        .par_iter()
        .map(|(_, f)| load_png_as(f, opts.color, opts.resize))
        .collect();
    let mut images = Vec::new();
    let mut size = None;
    for ((_, f), d) in files.iter().zip(decoded) {
        let (h, w, px) = d?;
        match size {
            None => size = Some((h, w)),
            Some(s) if s != (h, w) => {
                return Err(DataError::format(
                    path_name(f),
                    "image size",
                    format!("{}x{} like the first image (or set a resize)", s.0, s.1),
                    format!("{h}x{w}"),
                ))
            }
            _ => {}
        }
        images.extend_from_slice(&px);
    }
    let (h, w) = size.unwrap_or((0, 0));
    let labels = files.iter().map(|(c, _)| *c).collect();
    ImageDataset::new(images, [files.len(), channels, h, w], labels, class_names)
}

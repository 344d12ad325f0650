//! The input pipeline a checkpoint was trained with: how a file becomes the numbers the model
//! sees. Written into every checkpoint (metadata key [`INPUT_KEY`]) and applied by `adapt` and
//! `eval`, so a model meets new images exactly as it met its training images.
//!
//! Images: the PNG is decoded to 8-bit samples (palette and low bit depths expanded, 16-bit
//! reduced); a PNG with any transparent pixel is an error; each pixel becomes, by [`ColorMode`],
//! luma `L = (0.299 R + 0.587 G + 0.114 B) / 255` (gray: `v / 255`), RGB `v / 255` per channel,
//! or ink `1 - L` (Omniglot: dark ink on light paper becomes 1.0 on 0.0); each plane is then
//! resized to `size x size` by exact-area box averaging in `f32` (output pixel = mean of the
//! source over its fractional footprint; no rounding to 8 bits). No mean/std normalisation.
//! Feature vectors: the CSV's numbers, as they are.

use super::config::{DatasetKind, RunConfig};
use super::error::{Result, TrainError};
use crate::algorithms::BackboneConfig;
use crate::data::ColorMode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Checkpoint metadata key holding the [`InputPipeline`] as JSON.
pub const INPUT_KEY: &str = "metalearn.input";

/// What one example is made of, and how it is made from a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InputPipeline {
    /// PNG images read as `color` planes in `[0, 1]`, box-resized to `size x size`.
    Images {
        /// Luma, RGB or ink (see the module docs for the formulas).
        color: ColorMode,
        /// Side of the square image the model takes.
        size: usize,
    },
    /// Rows of `width` numbers (a CSV), used as they are.
    Features {
        /// Numbers per example.
        width: usize,
    },
    /// Sinusoid regression: one input `x`, the target `y` (a CSV).
    Regression,
}

impl InputPipeline {
    /// The pipeline a run config trains with: Omniglot images as ink (Lake's arrays hold ink
    /// as 1.0), image folders as luma (1 channel) or RGB (3), CSVs as feature vectors of the
    /// backbone's input width. `None` where a config gives no way to read examples (an MLP on
    /// images without `data.image_size`).
    pub fn for_config(cfg: &RunConfig) -> Option<Self> {
        if cfg.data.is_regression() {
            return Some(InputPipeline::Regression);
        }
        let (channels, size) = match &cfg.backbone {
            BackboneConfig::Conv4(_) | BackboneConfig::ResNet12(_) => {
                let (c, s) = cfg.backbone.image_input().unwrap_or_default();
                (c, Some(s))
            }
            BackboneConfig::Mlp(m) => {
                if cfg.data.dataset == DatasetKind::Csv {
                    return m
                        .sizes
                        .first()
                        .map(|&width| InputPipeline::Features { width });
                }
                (1, cfg.data.image_size)
            }
        };
        let color = match (cfg.data.dataset, channels) {
            (DatasetKind::Omniglot, _) => ColorMode::Ink,
            (_, 3) => ColorMode::Rgb,
            _ => ColorMode::Grayscale,
        };
        match (cfg.data.dataset, size) {
            (DatasetKind::Csv, _) => {
                let width = channels * size.unwrap_or(1) * size.unwrap_or(1);
                Some(InputPipeline::Features { width })
            }
            (_, Some(size)) => Some(InputPipeline::Images { color, size }),
            (_, None) => None,
        }
    }

    /// The pipeline recorded in a checkpoint's metadata; a checkpoint written before the key
    /// existed gets the one its stored config implies ([`InputPipeline::for_config`]).
    pub fn from_checkpoint(
        path: &Path,
        metadata: &BTreeMap<String, String>,
        stored: &RunConfig,
    ) -> Result<Option<Self>> {
        match metadata.get(INPUT_KEY) {
            Some(text) => serde_json::from_str(text)
                .map(Some)
                .map_err(|e| TrainError::NotARun {
                    path: path.to_path_buf(),
                    reason: format!("its `{INPUT_KEY}` metadata is not an input pipeline: {e}"),
                }),
            None => Ok(Self::for_config(stored)),
        }
    }

    /// The metadata entry to write into a checkpoint.
    pub fn metadata_entry(&self) -> (String, String) {
        let json = serde_json::to_string(self).expect("an input pipeline serialises");
        (INPUT_KEY.to_string(), json)
    }

    /// One line for messages and `--json` reports, e.g. "1x28x28 images, ink = 1 - luma,
    /// box-resized".
    pub fn describe(&self) -> String {
        match self {
            InputPipeline::Images { color, size } => {
                let c = color.channels();
                let how = match color {
                    ColorMode::Grayscale => "luma in [0, 1]",
                    ColorMode::Rgb => "RGB in [0, 1]",
                    ColorMode::Ink => "ink = 1 - luma in [0, 1] (dark ink on light paper)",
                };
                format!("{c}x{size}x{size} PNG images, {how}, box-resized in f32")
            }
            InputPipeline::Features { width } => format!("feature vectors of {width} numbers"),
            InputPipeline::Regression => "regression rows (x, then the target y)".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pipeline_survives_the_metadata_round_trip() {
        let p = InputPipeline::Images {
            color: ColorMode::Ink,
            size: 28,
        };
        let (k, v) = p.metadata_entry();
        assert_eq!(v, r#"{"kind":"images","color":"ink","size":28}"#);
        let meta = BTreeMap::from([(k, v)]);
        let cfg: RunConfig = toml::from_str(
            "[algorithm]\nname = \"protonet\"\n[backbone]\nname = \"conv4\"\n[data]\ndataset = \"omniglot\"\n",
        )
        .unwrap();
        let back = InputPipeline::from_checkpoint(Path::new("x"), &meta, &cfg).unwrap();
        assert_eq!(back, Some(p));
        // Without the key: derived from the stored config (Omniglot = ink).
        let derived = InputPipeline::from_checkpoint(Path::new("x"), &BTreeMap::new(), &cfg);
        assert_eq!(derived.unwrap(), Some(p));
        let bad = BTreeMap::from([(INPUT_KEY.to_string(), "{\"kind\":\"video\"}".to_string())]);
        let err = InputPipeline::from_checkpoint(Path::new("ck"), &bad, &cfg).unwrap_err();
        assert!(err.to_string().contains(INPUT_KEY), "{err}");
    }
}

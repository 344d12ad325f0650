//! The backbone section of a config (`[backbone] name = "conv4"` or `"mlp"`), its range
//! checks, and the [`Body`] it builds.

use super::checks::MAX_WIDTH;
use super::error::AlgorithmError;
use crate::nn::{Body, Conv4, Conv4Config, DownsampleKind, Mlp};
use serde::{Deserialize, Serialize};

/// The feature extractor. TOML: `name = "conv4"` (fields of [`Conv4Backbone`]) or
/// `name = "mlp"` with `sizes`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum BackboneConfig {
    /// Conv-4 without its head.
    Conv4(Conv4Backbone),
    /// A ReLU MLP.
    Mlp(MlpBackbone),
}

/// Conv-4 blocks (conv 3x3 -> batch norm with batch statistics -> ReLU -> downsample 2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Conv4Backbone {
    /// Input channels (1).
    pub in_channels: usize,
    /// Filters per block (64).
    pub filters: usize,
    /// Input side (28).
    pub image_size: usize,
    /// `max_pool` (default) or `strided`.
    pub downsample: DownsampleKind,
    /// Number of blocks (4).
    pub blocks: usize,
}

impl Default for Conv4Backbone {
    fn default() -> Self {
        Conv4Backbone {
            in_channels: 1,
            filters: 64,
            image_size: 28,
            downsample: DownsampleKind::MaxPool,
            blocks: 4,
        }
    }
}

/// A ReLU MLP feature extractor: `sizes[0]` inputs, then one ReLU layer per further width
/// (e.g. `[1, 40, 40]` for the sinusoid; the head with the outputs is added by the method).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpBackbone {
    /// Input width, then hidden widths.
    pub sizes: Vec<usize>,
}

impl BackboneConfig {
    /// `conv4` or `mlp`.
    pub fn name(&self) -> &'static str {
        match self {
            BackboneConfig::Conv4(_) => "conv4",
            BackboneConfig::Mlp(_) => "mlp",
        }
    }

    /// Parses a TOML table.
    pub fn from_toml(text: &str) -> Result<Self, AlgorithmError> {
        toml::from_str(text).map_err(|e| AlgorithmError::Parse(e.to_string()))
    }

    /// Checks every size against its range: Conv-4 `in_channels` in [1, 64], `filters` in
    /// [1, 65536], `blocks` in [1, 8] and `image_size` in [2^blocks, 4096] (each block halves
    /// the side); MLP `sizes` non-empty, at most 64 layers, each width in [1, 65536].
    pub fn validate(&self) -> Result<(), AlgorithmError> {
        let (backbone, reason) = match self {
            BackboneConfig::Conv4(c) => {
                let min_side = 1usize << c.blocks.min(12);
                let reason = if !(1..=64).contains(&c.in_channels) {
                    format!("`backbone.in_channels` = {} is out of range: expected an integer in [1, 64]", c.in_channels)
                } else if !(1..=MAX_WIDTH).contains(&c.filters) {
                    format!("`backbone.filters` = {} is out of range: expected an integer in [1, {MAX_WIDTH}]", c.filters)
                } else if !(1..=8).contains(&c.blocks) {
                    format!(
                        "`backbone.blocks` = {} is out of range: expected an integer in [1, 8]",
                        c.blocks
                    )
                } else if !(min_side..=4096).contains(&c.image_size) {
                    format!(
                        "`backbone.image_size` = {} is out of range: expected an integer in [{min_side}, 4096] ({} blocks halve the side {} times)",
                        c.image_size, c.blocks, c.blocks
                    )
                } else {
                    return Ok(());
                };
                ("conv4", reason)
            }
            BackboneConfig::Mlp(m) => {
                let reason = if m.sizes.is_empty() || m.sizes.len() > 64 {
                    format!("`backbone.sizes` has {} entries: expected 1 to 64 (the input width, then hidden widths)", m.sizes.len())
                } else if let Some(w) = m.sizes.iter().find(|&&w| !(1..=MAX_WIDTH).contains(&w)) {
                    format!("`backbone.sizes` holds {w}: every width must be an integer in [1, {MAX_WIDTH}]")
                } else {
                    return Ok(());
                };
                ("mlp", reason)
            }
        };
        Err(AlgorithmError::InvalidBackbone { backbone, reason })
    }
}

impl Conv4Backbone {
    /// The Conv-4 network (without head) this section describes; errors when a size is 0 or
    /// the image is too small for the downsampling blocks.
    pub fn build(&self) -> Result<Conv4, AlgorithmError> {
        let bad = |reason: String| {
            Err(AlgorithmError::InvalidBackbone {
                backbone: "conv4",
                reason,
            })
        };
        if self.in_channels == 0 || self.filters == 0 || self.blocks == 0 {
            return bad(format!(
                "in_channels ({}), filters ({}) and blocks ({}) must be at least 1",
                self.in_channels, self.filters, self.blocks
            ));
        }
        let mut side = self.image_size;
        for _ in 0..self.blocks {
            if side < 2 {
                return bad(format!(
                    "image_size {} is too small for {} downsampling blocks",
                    self.image_size, self.blocks
                ));
            }
            side = match self.downsample {
                DownsampleKind::MaxPool => side / 2,
                DownsampleKind::Strided => (side - 1) / 2 + 1,
            };
        }
        Ok(Conv4::new(Conv4Config {
            in_channels: self.in_channels,
            filters: self.filters,
            blocks: self.blocks,
            image_size: self.image_size,
            head: None,
            downsample: self.downsample,
        }))
    }
}

impl MlpBackbone {
    /// The MLP this section describes; errors unless it lists an input width and at least one
    /// hidden width, all at least 1.
    pub fn build(&self) -> Result<Mlp, AlgorithmError> {
        if self.sizes.len() < 2 || self.sizes.contains(&0) {
            return Err(AlgorithmError::InvalidBackbone {
                backbone: "mlp",
                reason: format!(
                    "`sizes` must list the input width and at least one hidden width, all >= 1 (got {:?})",
                    self.sizes
                ),
            });
        }
        Ok(Mlp::new(&self.sizes))
    }
}

/// Building the built-in backbone a config describes (here, beside the config, so that `nn`
/// does not depend on `algorithms`).
impl Body {
    /// The extractor a config describes.
    pub fn from_config(cfg: &BackboneConfig) -> Result<Body, AlgorithmError> {
        Ok(match cfg {
            BackboneConfig::Conv4(c) => Body::Conv4(c.build()?),
            BackboneConfig::Mlp(m) => Body::Mlp(m.build()?),
        })
    }
}

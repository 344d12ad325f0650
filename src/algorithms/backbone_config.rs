//! The backbone section of a config (`[backbone] name = "conv4"`, `"resnet12"` or `"mlp"`),
//! its range checks, and the [`Body`] it builds.

use super::checks::MAX_WIDTH;
use super::error::AlgorithmError;
use crate::nn::{
    Body, Conv4, Conv4Config, DownsampleKind, DropBlockConfig, FeaturePooling, Mlp, ResNet12,
    ResNet12Config,
};
use serde::{Deserialize, Serialize};

/// The feature extractor. TOML: `name = "conv4"` (fields of [`Conv4Backbone`]),
/// `name = "resnet12"` (fields of [`ResNet12Backbone`]) or `name = "mlp"` with `sizes`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum BackboneConfig {
    /// Conv-4 without its head.
    Conv4(Conv4Backbone),
    /// ResNet-12 (Lee et al. 2019, MetaOptNet) without a head.
    #[serde(rename = "resnet12")]
    ResNet12(ResNet12Backbone),
    /// A ReLU MLP.
    Mlp(MlpBackbone),
}

/// ResNet-12 (Lee et al. 2019, MetaOptNet; Oreshkin et al. 2018, TADAM): four residual blocks
/// of three 3x3 conv -> batch norm -> LeakyReLU layers (the third without activation before
/// the add) with a 1x1 conv + batch norm shortcut, add, LeakyReLU, 2x2 max pool. TOML keys and
/// defaults (MetaOptNet's network on miniImageNet):
/// `in_channels = 3`, `channels = [64, 160, 320, 640]`, `image_size = 84`,
/// `leaky_slope = 0.1`, `pooling = "flatten"` (or `"average"`), and no DropBlock unless
/// `drop_block = { size = 5, keep_prob = 0.9 }` is given (either key may be left out).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResNet12Backbone {
    /// Input channels (3).
    pub in_channels: usize,
    /// The four blocks' widths (`[64, 160, 320, 640]`).
    pub channels: Vec<usize>,
    /// Input side (84); at least 16, as the four blocks halve it.
    pub image_size: usize,
    /// LeakyReLU's negative slope (0.1).
    pub leaky_slope: f64,
    /// `flatten` (default, MetaOptNet) or `average` (global average pooling, TADAM / FEAT).
    pub pooling: FeaturePooling,
    /// DropBlock after blocks 3 and 4 while meta-training (Ghiasi et al. 2018); off when absent.
    pub drop_block: Option<DropBlockConfig>,
}

impl Default for ResNet12Backbone {
    fn default() -> Self {
        ResNet12Backbone {
            in_channels: 3,
            channels: vec![64, 160, 320, 640],
            image_size: 84,
            leaky_slope: 0.1,
            pooling: FeaturePooling::Flatten,
            drop_block: None,
        }
    }
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
    /// How many blocks, from the first, downsample (unset: all); the rest keep the side
    /// (2 of 4 for Relation Networks' spatial relation module).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub downsample_blocks: Option<usize>,
}

impl Default for Conv4Backbone {
    fn default() -> Self {
        Conv4Backbone {
            in_channels: 1,
            filters: 64,
            image_size: 28,
            downsample: DownsampleKind::MaxPool,
            blocks: 4,
            downsample_blocks: None,
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
    /// `conv4`, `resnet12` or `mlp`.
    pub fn name(&self) -> &'static str {
        match self {
            BackboneConfig::Conv4(_) => "conv4",
            BackboneConfig::ResNet12(_) => "resnet12",
            BackboneConfig::Mlp(_) => "mlp",
        }
    }

    /// Parses a TOML table.
    pub fn from_toml(text: &str) -> Result<Self, AlgorithmError> {
        toml::from_str(text).map_err(|e| AlgorithmError::Parse(e.to_string()))
    }

    /// The `(in_channels, image_size)` of a backbone that takes images `[C, S, S]` (Conv-4,
    /// ResNet-12); `None` for the MLP.
    pub fn image_input(&self) -> Option<(usize, usize)> {
        match self {
            BackboneConfig::Conv4(c) => Some((c.in_channels, c.image_size)),
            BackboneConfig::ResNet12(r) => Some((r.in_channels, r.image_size)),
            BackboneConfig::Mlp(_) => None,
        }
    }

    /// Checks every size against its range: Conv-4 `in_channels` in [1, 64], `filters` in
    /// [1, 65536], `blocks` in [1, 8] and `image_size` in [2^blocks, 4096] (each block halves
    /// the side); ResNet-12 as [`ResNet12Backbone::check`]; MLP `sizes` non-empty, at most 64
    /// layers, each width in [1, 65536]. The error names the key, the value and the range.
    pub fn validate(&self) -> Result<(), AlgorithmError> {
        let checked = match self {
            BackboneConfig::Conv4(c) => c.check(),
            BackboneConfig::ResNet12(r) => r.check(),
            BackboneConfig::Mlp(m) => m.check(),
        };
        checked.map_err(|reason| AlgorithmError::InvalidBackbone {
            backbone: self.name(),
            reason,
        })
    }
}

impl Conv4Backbone {
    /// The network's shape this section describes (no head), before any range check.
    fn config(&self) -> Conv4Config {
        Conv4Config {
            in_channels: self.in_channels,
            filters: self.filters,
            blocks: self.blocks,
            image_size: self.image_size,
            head: None,
            downsample: self.downsample,
            downsample_blocks: self.downsample_blocks,
        }
    }

    /// [`BackboneConfig::validate`] for Conv-4: the reason, naming the key, when a size is out
    /// of range.
    fn check(&self) -> Result<(), String> {
        let c = self;
        let halvings = c.config().downsampling_blocks();
        let min_side = 1usize << halvings.min(12);
        Err(if !(1..=64).contains(&c.in_channels) {
            format!(
                "`backbone.in_channels` = {} is out of range: expected an integer in [1, 64]",
                c.in_channels
            )
        } else if !(1..=MAX_WIDTH).contains(&c.filters) {
            format!(
                "`backbone.filters` = {} is out of range: expected an integer in [1, {MAX_WIDTH}]",
                c.filters
            )
        } else if !(1..=8).contains(&c.blocks) {
            format!(
                "`backbone.blocks` = {} is out of range: expected an integer in [1, 8]",
                c.blocks
            )
        } else if c.downsample_blocks.is_some_and(|d| d > c.blocks) {
            format!(
                "`backbone.downsample_blocks` = {} is out of range: expected an integer in [0, {}] (`blocks`)",
                c.downsample_blocks.unwrap_or(0),
                c.blocks
            )
        } else if !(min_side..=4096).contains(&c.image_size) {
            format!(
                "`backbone.image_size` = {} is out of range: expected an integer in [{min_side}, 4096] ({} blocks halve the side {halvings} times)",
                c.image_size, c.blocks
            )
        } else {
            return Ok(());
        })
    }
}

impl MlpBackbone {
    /// [`BackboneConfig::validate`] for the MLP.
    fn check(&self) -> Result<(), String> {
        let m = self;
        Err(if m.sizes.is_empty() || m.sizes.len() > 64 {
            format!("`backbone.sizes` has {} entries: expected 1 to 64 (the input width, then hidden widths)", m.sizes.len())
        } else if let Some(w) = m.sizes.iter().find(|&&w| !(1..=MAX_WIDTH).contains(&w)) {
            format!(
                "`backbone.sizes` holds {w}: every width must be an integer in [1, {MAX_WIDTH}]"
            )
        } else {
            return Ok(());
        })
    }
}

impl ResNet12Backbone {
    /// Checks the section: `in_channels` in [1, 64]; `channels` exactly 4 widths, each in
    /// [1, 65536]; `image_size` in [16, 4096] (four blocks halve the side, so below 16 the last
    /// block has nothing to pool); `leaky_slope` in [0, 1]; `drop_block.size` in [1, 4096] and
    /// `drop_block.keep_prob` in (0, 1]. The reason names the key, the value and the range.
    pub fn check(&self) -> Result<(), String> {
        let r = self;
        if !(1..=64).contains(&r.in_channels) {
            return Err(format!(
                "`backbone.in_channels` = {} is out of range: expected an integer in [1, 64]",
                r.in_channels
            ));
        }
        if r.channels.len() != 4 {
            return Err(format!(
                "`backbone.channels` = {:?} has {} entries: expected 4 (one width per residual block, e.g. [64, 160, 320, 640])",
                r.channels,
                r.channels.len()
            ));
        }
        if let Some(w) = r.channels.iter().find(|&&w| !(1..=MAX_WIDTH).contains(&w)) {
            return Err(format!("`backbone.channels` = {:?} holds {w}: every width must be an integer in [1, {MAX_WIDTH}]", r.channels));
        }
        if !(16..=4096).contains(&r.image_size) {
            return Err(format!(
                "`backbone.image_size` = {} is out of range: expected an integer in [16, 4096] (ResNet-12's four blocks halve the side 4 times)",
                r.image_size
            ));
        }
        if !(0.0..=1.0).contains(&r.leaky_slope) {
            return Err(format!(
                "`backbone.leaky_slope` = {} is out of range: expected a number in [0, 1]",
                r.leaky_slope
            ));
        }
        if let Some(db) = &r.drop_block {
            if !(1..=4096).contains(&db.size) {
                return Err(format!("`backbone.drop_block.size` = {} is out of range: expected an integer in [1, 4096]", db.size));
            }
            if !(db.keep_prob > 0.0 && db.keep_prob <= 1.0) {
                return Err(format!("`backbone.drop_block.keep_prob` = {} is out of range: expected a number in (0, 1]", db.keep_prob));
            }
        }
        Ok(())
    }

    /// The ResNet-12 (without head) this section describes; errors as [`Self::check`].
    pub fn build(&self) -> Result<ResNet12, AlgorithmError> {
        self.check()
            .map_err(|reason| AlgorithmError::InvalidBackbone {
                backbone: "resnet12",
                reason,
            })?;
        let mut channels = [0; 4];
        channels.copy_from_slice(&self.channels);
        Ok(ResNet12::new(ResNet12Config {
            in_channels: self.in_channels,
            channels,
            image_size: self.image_size,
            leaky_slope: self.leaky_slope,
            pooling: self.pooling,
            drop_block: self.drop_block,
        }))
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
        let config = self.config();
        let mut side = self.image_size;
        for _ in 0..config.downsampling_blocks() {
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
        Ok(Conv4::new(config))
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
            BackboneConfig::ResNet12(r) => Body::ResNet12(r.build()?),
            BackboneConfig::Mlp(m) => Body::Mlp(m.build()?),
        })
    }
}

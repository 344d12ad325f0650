//! ResNet-12, the backbone of MetaOptNet (Lee et al. 2019), TADAM (Oreshkin et al. 2018) and
//! FEAT (Ye et al. 2020), as a function of its parameters, with optional DropBlock (Ghiasi et
//! al. 2018).

use super::noise::{mix, next_noise_seed};
use super::{Backbone, Params};
use crate::tensor::{Float, Tensor};
use rand::{Rng, SeedableRng};

/// Batch norm's `eps` (PyTorch's default, as Conv-4).
const BN_EPS: f64 = 1e-5;

/// Parameter tensors per residual block: three 3x3 convs with a batch norm each (3 x 3), and
/// the shortcut's 1x1 conv with its batch norm (3).
pub const PARAMS_PER_BLOCK: usize = 12;

/// How ResNet-12 turns its last feature map `[N, C, s, s]` into a feature vector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeaturePooling {
    /// Flatten to `C * s * s` values (MetaOptNet: 640 x 5 x 5 = 16000 at 84x84).
    #[default]
    Flatten,
    /// Global average pooling to `C` values (TADAM, FEAT: 640).
    Average,
}

/// DropBlock (Ghiasi et al. 2018) after the last two residual blocks, as MetaOptNet: during
/// meta-training, square blocks of `size x size` positions of each channel are zeroed and the
/// rest scaled up so that the mean is kept; at evaluation it is the identity.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DropBlockConfig {
    /// The side of a dropped block (5 in MetaOptNet), cut to the feature map's side where that
    /// is smaller.
    pub size: usize,
    /// The fraction of positions kept (0.9 in MetaOptNet, without its linear warm-up).
    pub keep_prob: f64,
}

impl Default for DropBlockConfig {
    fn default() -> Self {
        DropBlockConfig {
            size: 5,
            keep_prob: 0.9,
        }
    }
}

/// The shape of a [`ResNet12`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ResNet12Config {
    /// Input channels (3 for miniImageNet, 1 for Omniglot).
    pub in_channels: usize,
    /// The width of each of the four residual blocks (`[64, 160, 320, 640]` in MetaOptNet;
    /// `[64, 128, 256, 512]` in TADAM).
    pub channels: [usize; 4],
    /// Input height and width (84 for miniImageNet); each block halves it (floor).
    pub image_size: usize,
    /// The negative slope of the LeakyReLUs (0.1).
    pub leaky_slope: f64,
    /// Flatten or average the last feature map.
    pub pooling: FeaturePooling,
    /// DropBlock after blocks 3 and 4 while meta-training; `None`: no DropBlock.
    pub drop_block: Option<DropBlockConfig>,
}

/// ResNet-12 (Lee et al. 2019, MetaOptNet; Oreshkin et al. 2018, TADAM): four residual blocks,
/// each `x -> [conv 3x3 -> BN -> LeakyReLU] x 2 -> conv 3x3 -> BN`, plus the shortcut
/// `conv 1x1 -> BN` of `x`, added, LeakyReLU, max-pool 2x2 (floor), then the feature map
/// flattened or averaged ([`FeaturePooling`]). Convolutions have no bias (a batch norm follows
/// each); batch norm uses the batch's statistics in every pass, as Conv-4 here.
///
/// Parameters per block `b` (0-based), in order: `b{b}.conv1.weight`, `b{b}.bn1.weight`,
/// `b{b}.bn1.bias`, the same for `conv2`/`bn2` and `conv3`/`bn3`, then
/// `b{b}.shortcut.conv.weight`, `b{b}.shortcut.bn.weight`, `b{b}.shortcut.bn.bias`.
#[derive(Clone, Debug)]
pub struct ResNet12 {
    /// The architecture.
    pub config: ResNet12Config,
}

impl ResNet12 {
    /// A ResNet-12 of the given shape (the config section checks the sizes first).
    pub fn new(config: ResNet12Config) -> Self {
        ResNet12 { config }
    }

    /// The side of the last feature map: `image_size` halved (floor) four times (84 -> 5,
    /// 28 -> 1, 105 -> 6).
    pub fn output_size(&self) -> usize {
        self.config.image_size / 16
    }

    /// The number of scalar parameters: per block of width `o` on `i` input channels,
    /// `9 i o + 18 o^2` (3x3 convs) `+ i o` (shortcut) `+ 8 o` (four batch norms' scale and
    /// shift). 12,424,320 for `[64, 160, 320, 640]` on 3 channels (MetaOptNet's "12.4M").
    pub fn parameter_count(&self) -> usize {
        let mut cin = self.config.in_channels;
        let mut total = 0;
        for &o in &self.config.channels {
            total += 9 * cin * o + 18 * o * o + cin * o + 8 * o;
            cin = o;
        }
        total
    }

    /// One residual block at parameter offset `k`: the three convs, the shortcut, the add,
    /// LeakyReLU and the 2x2 max pool.
    fn block<T: Float>(&self, p: &Params<T>, k: usize, x: &Tensor<T>) -> Tensor<T> {
        let a = self.config.leaky_slope;
        let conv_bn = |h: &Tensor<T>, i: usize, pad: usize| {
            h.conv2d(p.at(k + i), None, 1, pad)
                .batch_norm(p.at(k + i + 1), p.at(k + i + 2), BN_EPS)
        };
        let h = conv_bn(x, 0, 1).leaky_relu(a);
        let h = conv_bn(&h, 3, 1).leaky_relu(a);
        let h = conv_bn(&h, 6, 1);
        let shortcut = conv_bn(x, 9, 0);
        h.add(&shortcut).leaky_relu(a).max_pool2d(2, 2)
    }
}

/// ResNet-12 as a feature extractor: `[N, in_channels, s, s]` in, `[N, feature_dim]` out.
impl Backbone for ResNet12 {
    /// Every conv weight Kaiming uniform (`U(+-1/sqrt(fan_in))`, the crate's one init), drawn
    /// block by block in parameter order; batch-norm scales 1, shifts 0.
    fn init_params<T: Float>(&self, rng: &mut dyn rand::RngCore) -> Params<T> {
        let mut p = Params::new();
        let mut cin = self.config.in_channels;
        for (b, &o) in self.config.channels.iter().enumerate() {
            let convs = [
                ("conv1", "bn1", cin, 3),
                ("conv2", "bn2", o, 3),
                ("conv3", "bn3", o, 3),
                ("shortcut.conv", "shortcut.bn", cin, 1),
            ];
            for (conv, bn, i, k) in convs {
                let w = super::init::kaiming_uniform(&[o, i, k, k], i * k * k, rng);
                p.push(format!("b{b}.{conv}.weight"), w);
                p.push(format!("b{b}.{bn}.weight"), Tensor::ones(&[o]));
                p.push(format!("b{b}.{bn}.bias"), Tensor::zeros(&[o]));
            }
            cin = o;
        }
        p
    }

    /// The four blocks, DropBlock after the last two when training noise is on
    /// ([`super::noise`]), then flatten or global average pooling.
    fn embed<T: Float>(&self, params: &Params<T>, x: &Tensor<T>) -> Tensor<T> {
        let noise = match self.config.drop_block {
            Some(_) => next_noise_seed(),
            None => None,
        };
        let mut h = x.clone();
        for b in 0..4 {
            h = self.block(params, b * PARAMS_PER_BLOCK, &h);
            if let (Some(db), Some(seed), true) = (self.config.drop_block, noise, b >= 2) {
                h = drop_block(&h, db, mix(seed, b as u64));
            }
        }
        match self.config.pooling {
            FeaturePooling::Flatten => h.flatten_from1(),
            FeaturePooling::Average => h.mean_axes(&[2, 3], false),
        }
    }

    fn feature_dim(&self) -> usize {
        let c = self.config.channels[3];
        match self.config.pooling {
            FeaturePooling::Flatten => c * self.output_size() * self.output_size(),
            FeaturePooling::Average => c,
        }
    }

    /// `[channels[3], s, s]` when the features are flattened maps; `None` when averaged.
    fn feature_map(&self) -> Option<[usize; 3]> {
        let s = self.output_size();
        match self.config.pooling {
            FeaturePooling::Flatten => Some([self.config.channels[3], s, s]),
            FeaturePooling::Average => None,
        }
    }

    fn num_params(&self) -> usize {
        4 * PARAMS_PER_BLOCK
    }

    fn description(&self) -> String {
        let c = &self.config;
        format!(
            "resnet12(in={}, channels={:?}, size={}, leaky={}, {:?}, drop_block={:?})",
            c.in_channels, c.channels, c.image_size, c.leaky_slope, c.pooling, c.drop_block
        )
    }

    /// `true` with DropBlock.
    fn uses_training_noise(&self) -> bool {
        self.config.drop_block.is_some()
    }
}

/// DropBlock (Ghiasi et al. 2018) on `x` `[N, C, H, W]` with the mask drawn from `seed`: with
/// `b = min(size, H, W)` and `gamma = (1 - keep_prob) / b^2 * H W / ((H - b + 1)(W - b + 1))`,
/// every position `(i, j)` with `i <= H - b`, `j <= W - b` of every `(n, c)` plane starts a
/// dropped `b x b` block with probability `gamma` (MetaOptNet's placement); the output is
/// `x * M * (numel / sum M)` with `M` the 0/1 keep mask (all zeros when every position is
/// dropped). The mask is a constant, so the op is linear in `x` and differentiable to any
/// order.
pub fn drop_block<T: Float>(x: &Tensor<T>, config: DropBlockConfig, seed: u64) -> Tensor<T> {
    let &[n, c, h, w] = x.shape() else {
        return x.clone();
    };
    let b = config.size.min(h).min(w);
    if b == 0 || config.keep_prob >= 1.0 {
        return x.clone();
    }
    let (rows, cols) = (h - b + 1, w - b + 1);
    let gamma = (1.0 - config.keep_prob) / (b * b) as f64 * (h * w) as f64 / (rows * cols) as f64;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut keep = vec![1u8; n * c * h * w];
    for plane in keep.chunks_exact_mut(h * w) {
        for i in 0..rows {
            for j in 0..cols {
                if rng.gen::<f64>() < gamma {
                    for row in plane.chunks_exact_mut(w).skip(i).take(b) {
                        row[j..j + b].fill(0);
                    }
                }
            }
        }
    }
    let kept = keep.iter().filter(|&&k| k == 1).count();
    let scale = if kept == 0 {
        T::zero()
    } else {
        T::of(keep.len() as f64 / kept as f64)
    };
    let mask: Vec<T> = keep
        .iter()
        .map(|&k| if k == 1 { scale } else { T::zero() })
        .collect();
    x.mul(&Tensor::from_vec(mask, x.shape()))
}

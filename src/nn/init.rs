//! Parameter initialisation, one place for every network of the crate.

use super::Params;
use crate::tensor::{Float, Tensor};
use rand::distributions::uniform::SampleUniform;
use rand::Rng;

/// Kaiming (He) uniform, PyTorch's default for linear and convolution layers: every value
/// drawn from `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`, in row-major order (a `fan_in` of 0 counts
/// as 1). The draws are made in `f64` and rounded to `T`.
pub fn kaiming_uniform<T: Float>(
    shape: &[usize],
    fan_in: usize,
    rng: &mut dyn rand::RngCore,
) -> Tensor<T> {
    kaiming_uniform_drawn_as::<f64, T>(shape, fan_in, rng)
}

/// [`kaiming_uniform`] with the draws made in the type `S`: the bound `1/sqrt(fan_in)` is
/// computed in `S` and every value is sampled as an `S` (`U(-bound, bound)` over `S`), then
/// converted to `T`. `S = f64` is [`kaiming_uniform`]; `S = f32` gives other numbers from the
/// same seed (a different sampler): the transfer heads draw that way, and keep doing so so that
/// their results stay as they were.
pub fn kaiming_uniform_drawn_as<S: Float + SampleUniform, T: Float>(
    shape: &[usize],
    fan_in: usize,
    rng: &mut dyn rand::RngCore,
) -> Tensor<T> {
    let bound = S::one() / S::of(fan_in.max(1) as f64).sqrt();
    let n: usize = shape.iter().product();
    let data = (0..n)
        .map(|_| T::of(rng.gen_range(-bound..bound).as_f64()))
        .collect();
    Tensor::from_vec(data, shape)
}

/// Appends a layer's `{prefix}weight` of `weight_shape` (`[out, in]`, or `[out, in, kh, kw]`
/// for a convolution) and `{prefix}bias` `[out]`, both [`kaiming_uniform`] with `fan_in` the
/// product of `weight_shape[1..]`, weight drawn first.
pub fn push_weight_and_bias<T: Float>(
    params: &mut Params<T>,
    prefix: &str,
    weight_shape: &[usize],
    rng: &mut dyn rand::RngCore,
) {
    push_weight_and_bias_drawn_as::<f64, T>(params, prefix, weight_shape, rng)
}

/// [`push_weight_and_bias`] with the draws made in the type `S`
/// (see [`kaiming_uniform_drawn_as`]).
pub fn push_weight_and_bias_drawn_as<S: Float + SampleUniform, T: Float>(
    params: &mut Params<T>,
    prefix: &str,
    weight_shape: &[usize],
    rng: &mut dyn rand::RngCore,
) {
    let fan_in: usize = weight_shape[1..].iter().product();
    let weight = kaiming_uniform_drawn_as::<S, T>(weight_shape, fan_in, rng);
    params.push(format!("{prefix}weight"), weight);
    let bias = kaiming_uniform_drawn_as::<S, T>(&weight_shape[..1], fan_in, rng);
    params.push(format!("{prefix}bias"), bias);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// Every value as the draws were written before there was one init: f64 draws rounded to
    /// `T` for [`kaiming_uniform`], f32 draws with an f32 bound for the `f32` variant.
    #[test]
    fn draws_match_the_hand_written_samplers() {
        let (shape, fan_in) = ([3, 5], 5);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let b64 = 1.0 / (fan_in as f64).sqrt();
        let want64: Vec<f32> = (0..15).map(|_| rng.gen_range(-b64..b64) as f32).collect();
        let b32 = 1.0 / (fan_in as f32).sqrt();
        let want32: Vec<f32> = (0..15).map(|_| rng.gen_range(-b32..b32)).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let got64 = kaiming_uniform::<f32>(&shape, fan_in, &mut rng);
        let got32 = kaiming_uniform_drawn_as::<f32, f32>(&shape, fan_in, &mut rng);
        assert_eq!(got64.data(), want64.as_slice());
        assert_eq!(got32.data(), want32.as_slice());
        assert_ne!(want64, want32);
    }
}

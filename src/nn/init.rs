//! Parameter initialisation, one place for every network of the crate.

use super::Params;
use crate::tensor::{Float, Tensor};
use rand::Rng;

/// Kaiming (He) uniform, PyTorch's default for linear and convolution layers: every value
/// drawn from `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`, in row-major order (a `fan_in` of 0 counts
/// as 1).
pub fn kaiming_uniform<T: Float>(
    shape: &[usize],
    fan_in: usize,
    rng: &mut dyn rand::RngCore,
) -> Tensor<T> {
    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
    let n: usize = shape.iter().product();
    let data = (0..n)
        .map(|_| T::of(rng.gen_range(-bound..bound)))
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
    let fan_in: usize = weight_shape[1..].iter().product();
    let weight = kaiming_uniform(weight_shape, fan_in, rng);
    params.push(format!("{prefix}weight"), weight);
    let bias = kaiming_uniform(&weight_shape[..1], fan_in, rng);
    params.push(format!("{prefix}bias"), bias);
}

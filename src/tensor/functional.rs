//! Softmax, batch normalisation and losses, each with a fused forward kernel.
//!
//! Backward rules (g = upstream gradient, y = output), all written with differentiable ops:
//! - `softmax: y * (g - sum(g * y))`, `log_softmax: g - exp(y) * sum(g)` (sums along the axis),
//! - `cross_entropy: (softmax(z) - onehot(labels)) * g / N`,
//! - `mse_loss: x: 2 (x - t) g / n, t: -2 (x - t) g / n`,
//! - `bce_with_logits: x: (sigmoid(x) - t) g / n, t: -x g / n`,
//! - `normalize_channels: inv_std * (g - mean_c(g) - xhat * mean_c(g * xhat))`,
//! - `channel_affine: x: g * gamma_c, gamma: sum_c(g * x), beta: sum_c(g)`.
//!
//! The two channel ops compute their backward with one fused kernel when the backward itself is
//! not recorded (`create_graph = false`), and with differentiable ops when it is.

use super::kernels;
use super::shape::normalize_axis;
use super::{Float, Tensor};
use crate::autodiff::{is_grad_enabled, Backward, BackwardCtx};
use rayon::prelude::*;

// ---------------------------------------------------------------------------------------------
// softmax / log_softmax

#[derive(Clone, Copy)]
enum SoftmaxKind {
    Softmax,
    LogSoftmax,
}

/// The fused kernel: every lane along the middle axis of `[outer, n, inner]`.
fn softmax_kernel<T: Float>(
    src: &[T],
    outer: usize,
    n: usize,
    inner: usize,
    kind: SoftmaxKind,
) -> Vec<T> {
    let mut out = vec![T::zero(); src.len()];
    let mut m = vec![T::zero(); inner];
    let mut s = vec![T::zero(); inner];
    for o in 0..outer {
        let x = &src[o * n * inner..(o + 1) * n * inner];
        let y = &mut out[o * n * inner..(o + 1) * n * inner];
        m.copy_from_slice(&x[..inner]);
        for j in 1..n {
            for (mi, &v) in m.iter_mut().zip(&x[j * inner..(j + 1) * inner]) {
                if v > *mi {
                    *mi = v;
                }
            }
        }
        s.iter_mut().for_each(|v| *v = T::zero());
        for j in 0..n {
            let (xr, yr) = (
                &x[j * inner..(j + 1) * inner],
                &mut y[j * inner..(j + 1) * inner],
            );
            for i in 0..inner {
                let e = (xr[i] - m[i]).exp();
                yr[i] = e;
                s[i] += e;
            }
        }
        match kind {
            SoftmaxKind::Softmax => {
                for j in 0..n {
                    for (v, &si) in y[j * inner..(j + 1) * inner].iter_mut().zip(&s) {
                        *v /= si;
                    }
                }
            }
            SoftmaxKind::LogSoftmax => {
                for (mi, &si) in m.iter_mut().zip(&s) {
                    *mi += si.ln(); // m becomes the log-sum-exp
                }
                for j in 0..n {
                    let (xr, yr) = (
                        &x[j * inner..(j + 1) * inner],
                        &mut y[j * inner..(j + 1) * inner],
                    );
                    for i in 0..inner {
                        yr[i] = xr[i] - m[i];
                    }
                }
            }
        }
    }
    out
}

struct SoftmaxBackward {
    axis: isize,
    kind: SoftmaxKind,
}
impl<T: Float> Backward<T> for SoftmaxBackward {
    fn name(&self) -> &'static str {
        match self.kind {
            SoftmaxKind::Softmax => "softmax",
            SoftmaxKind::LogSoftmax => "log_softmax",
        }
    }
    fn backward(&self, ctx: &BackwardCtx<'_, T>, g: &Tensor<T>) -> Vec<Option<Tensor<T>>> {
        let y = ctx.output;
        let gx = match self.kind {
            SoftmaxKind::Softmax => y.mul(&g.sub(&g.mul(y).sum_axis(self.axis, true))),
            SoftmaxKind::LogSoftmax => g.sub(&y.exp().mul(&g.sum_axis(self.axis, true))),
        };
        vec![Some(gx)]
    }
}

fn softmax_op<T: Float>(x: &Tensor<T>, axis: isize, kind: SoftmaxKind, op: &str) -> Tensor<T> {
    assert!(x.ndim() > 0, "{op}: a 0-d tensor has no axis {axis}");
    let ax = normalize_axis(axis, x.ndim(), op);
    let (outer, inner) = super::layout::outer_inner(x.shape(), ax);
    let out = softmax_kernel(x.data(), outer, x.dim(ax), inner, kind);
    Tensor::from_op(out, x.shape().to_vec(), &[x], || SoftmaxBackward {
        axis: ax as isize,
        kind,
    })
}

// ---------------------------------------------------------------------------------------------
// losses

struct CrossEntropyBackward {
    labels: Vec<usize>,
}
impl_backward!(CrossEntropyBackward, "cross_entropy", |self, ctx, g| {
    let z = &ctx.inputs[0];
    let (n, c) = (z.dim(0), z.dim(1));
    let mut onehot = vec![T::zero(); n * c];
    for (i, &l) in self.labels.iter().enumerate() {
        onehot[i * c + l] = T::one();
    }
    let onehot = Tensor::from_vec(onehot, &[n, c]);
    let gz = z
        .softmax(1)
        .sub(&onehot)
        .mul(g)
        .mul_scalar(1.0 / n.max(1) as f64);
    vec![Some(gz)]
});

struct MseBackward;
impl_backward!(MseBackward, "mse_loss", |self, ctx, g| {
    let (x, t) = (&ctx.inputs[0], &ctx.inputs[1]);
    let gx = x.sub(t).mul(g).mul_scalar(2.0 / x.numel().max(1) as f64);
    let gt = ctx.needs[1].then(|| gx.neg());
    vec![ctx.needs[0].then_some(gx), gt]
});

struct BceBackward;
impl_backward!(BceBackward, "bce_with_logits", |self, ctx, g| {
    let (x, t) = (&ctx.inputs[0], &ctx.inputs[1]);
    let scale = 1.0 / x.numel().max(1) as f64;
    let gx = ctx.needs[0].then(|| x.sigmoid().sub(t).mul(g).mul_scalar(scale));
    let gt = ctx.needs[1].then(|| x.mul(g).mul_scalar(-scale));
    vec![gx, gt]
});

// ---------------------------------------------------------------------------------------------
// per-channel kernels for tensors shaped [N, C, rest...]

/// (N, C, S) with S the product of the dimensions after the channel axis.
pub(super) fn ncs(shape: &[usize], op: &str) -> (usize, usize, usize) {
    assert!(
        shape.len() >= 2,
        "{op}: expected an input shaped [N, C, ...], got {:?}",
        shape
    );
    (shape[0], shape[1], shape[2..].iter().product())
}

/// For every channel `c`, the sum over samples `n` of `f(block, c)`, where `block` is the flat
/// offset of the contiguous run `[n, c, :]` of length S.
fn channel_sums<R, F>(n: usize, c: usize, s: usize, f: F) -> Vec<R>
where
    R: Send + Copy + Default + std::ops::AddAssign,
    F: Fn(usize) -> R + Sync,
{
    let per_channel = |ch: usize| {
        let mut acc = R::default();
        for k in 0..n {
            acc += f((k * c + ch) * s);
        }
        acc
    };
    if s >= 16 && super::parallel::should_split(n * c * s, c) {
        (0..c).into_par_iter().map(per_channel).collect()
    } else {
        (0..c).map(per_channel).collect()
    }
}

/// Fills `out` (shaped [N, C, S]) by calling `f(block, c, run)` for every contiguous run
/// `[n, c, :]`, where `block` is its flat offset.
fn channel_fill<T: Float, F>(out: &mut [T], c: usize, s: usize, f: F)
where
    F: Fn(usize, usize, &mut [T]) + Sync,
{
    let cs = (c * s).max(1);
    let sample = |(k, chunk): (usize, &mut [T])| {
        for (ch, run) in chunk.chunks_mut(s.max(1)).enumerate() {
            f(k * cs + ch * s, ch, run);
        }
    };
    if super::parallel::should_split(out.len(), out.len() / cs) {
        out.par_chunks_mut(cs).enumerate().for_each(sample);
    } else {
        out.chunks_mut(cs).enumerate().for_each(sample);
    }
}

struct ChannelSumBackward;
impl_backward!(ChannelSumBackward, "channel_sum", |self, ctx, g| {
    vec![Some(g.channel_broadcast(ctx.inputs[0].shape()))]
});

struct ChannelBroadcastBackward;
impl_backward!(
    ChannelBroadcastBackward,
    "channel_broadcast",
    |self, _ctx, g| vec![Some(g.channel_sum())]
);

/// Per-channel sums of `(a, b)` pairs, added as one.
#[derive(Clone, Copy, Default)]
pub(super) struct Pair(pub f64, pub f64);
impl std::ops::AddAssign for Pair {
    fn add_assign(&mut self, o: Pair) {
        self.0 += o.0;
        self.1 += o.1;
    }
}

struct NormalizeBackward<T> {
    eps: f64,
    /// `1 / sqrt(var_c + eps)` from the forward pass (used by the fused, unrecorded backward).
    inv_std: Vec<T>,
}
impl_backward!(
    NormalizeBackward<T>,
    "normalize_channels",
    |self, ctx, g| {
        let x = &ctx.inputs[0];
        let xhat = ctx.output;
        let (n, c, s) = ncs(x.shape(), "normalize_channels");
        let m = (n * s).max(1) as f64;
        if !is_grad_enabled() {
            // fused: two passes over g and xhat
            let (gd, hd) = (g.data(), xhat.data());
            let sums = channel_sums(n, c, s, |b| {
                let (gr, hr) = (&gd[b..b + s], &hd[b..b + s]);
                Pair(kernels::sum(gr).as_f64(), kernels::dot(gr, hr).as_f64())
            });
            let coef: Vec<(T, T)> = sums
                .iter()
                .map(|p| (T::of(p.0 / m), T::of(p.1 / m)))
                .collect();
            let mut out = vec![T::zero(); gd.len()];
            channel_fill(&mut out, c, s, |b, ch, run| {
                let (mg, mgh) = coef[ch];
                let inv = self.inv_std[ch];
                for ((o, &gv), &hv) in run.iter_mut().zip(&gd[b..b + s]).zip(&hd[b..b + s]) {
                    *o = inv * (gv - mg - hv * mgh);
                }
            });
            return vec![Some(Tensor::from_vec(out, x.shape()))];
        }
        vec![Some(normalize_grad_recorded(x, xhat, g, self.eps))]
    }
);

/// The gradient of [`Tensor::normalize_channels`] built from differentiable (fused) ops, for a
/// recorded backward pass: `inv_std * (g - mean_c(g) - xhat * mean_c(g * xhat))`, with
/// `inv_std` recomputed from `x` so that second derivatives through it are exact.
fn normalize_grad_recorded<T: Float>(
    x: &Tensor<T>,
    xhat: &Tensor<T>,
    g: &Tensor<T>,
    eps: f64,
) -> Tensor<T> {
    let (n, c, s) = ncs(x.shape(), "normalize_channels");
    let m = (n * s).max(1) as f64;
    let inv_m = 1.0 / m;
    let ones = Tensor::ones(&[c]);
    let zeros = Tensor::zeros(&[c]);
    let mu = x.channel_sum().mul_scalar(inv_m);
    let centered = x.channel_affine(&ones, &mu.neg());
    let inv_std = centered
        .square()
        .channel_sum()
        .mul_scalar(inv_m)
        .add_scalar(eps)
        .powf(-0.5);
    let mg = g.channel_sum().mul_scalar(-inv_m);
    let mgh = g.mul(xhat).channel_sum().mul_scalar(-inv_m);
    // (g - mean_c(g) - xhat * mean_c(g * xhat)) * inv_std
    xhat.channel_affine(&mgh, &mg)
        .add(g)
        .channel_affine(&inv_std, &zeros)
}

struct ChannelAffineBackward;
impl_backward!(ChannelAffineBackward, "channel_affine", |self, ctx, g| {
    let (x, gamma) = (&ctx.inputs[0], &ctx.inputs[1]);
    let (n, c, s) = ncs(x.shape(), "channel_affine");
    if !is_grad_enabled() {
        let (gd, xd, gm) = (g.data(), x.data(), gamma.data());
        let gx = ctx.needs[0].then(|| {
            let mut out = vec![T::zero(); gd.len()];
            channel_fill(&mut out, c, s, |b, ch, run| {
                let k = gm[ch];
                for (o, &gv) in run.iter_mut().zip(&gd[b..b + s]) {
                    *o = gv * k;
                }
            });
            Tensor::from_vec(out, x.shape())
        });
        let (ggamma, gbeta) = if ctx.needs[1] || ctx.needs[2] {
            let sums = channel_sums(n, c, s, |b| {
                let gr = &gd[b..b + s];
                Pair(
                    kernels::sum(gr).as_f64(),
                    kernels::dot(gr, &xd[b..b + s]).as_f64(),
                )
            });
            let ggamma = ctx.needs[1]
                .then(|| Tensor::from_vec(sums.iter().map(|p| T::of(p.1)).collect(), &[c]));
            let gbeta = ctx.needs[2]
                .then(|| Tensor::from_vec(sums.iter().map(|p| T::of(p.0)).collect(), &[c]));
            (ggamma, gbeta)
        } else {
            (None, None)
        };
        return vec![gx, ggamma, gbeta];
    }
    let gx = ctx.needs[0].then(|| g.channel_affine(gamma, &Tensor::zeros(&[c])));
    let ggamma = ctx.needs[1].then(|| g.mul(x).channel_sum());
    let gbeta = ctx.needs[2].then(|| g.channel_sum());
    vec![gx, ggamma, gbeta]
});

impl<T: Float> Tensor<T> {
    /// `softmax(x)_i = exp(x_i - m) / sum_j exp(x_j - m)` along `axis` (negative counts from
    /// the end), with `m` the lane maximum for stability.
    ///
    /// Backward: `y * (g - sum(g * y))`.
    pub fn softmax(&self, axis: isize) -> Tensor<T> {
        softmax_op(self, axis, SoftmaxKind::Softmax, "softmax")
    }

    /// `log_softmax(x)_i = x_i - m - ln sum_j exp(x_j - m)` along `axis` (stable).
    ///
    /// Backward: `g - exp(y) * sum(g)`.
    pub fn log_softmax(&self, axis: isize) -> Tensor<T> {
        softmax_op(self, axis, SoftmaxKind::LogSoftmax, "log_softmax")
    }

    /// Mean cross-entropy of logits `[N, C]` against class labels:
    /// `(1/N) sum_n (logsumexp(z_n) - z_n[labels[n]])`, as a 0-d tensor.
    ///
    /// Backward: `(softmax(z) - onehot) * g / N` (twice differentiable).
    pub fn cross_entropy(&self, labels: &[usize]) -> Tensor<T> {
        assert!(
            self.ndim() == 2 && labels.len() == self.dim(0),
            "cross_entropy: {} labels for logits of shape {:?} (expected [N, C] with N labels)",
            labels.len(),
            self.shape()
        );
        let (n, c) = (self.dim(0), self.dim(1));
        if let Some(&bad) = labels.iter().find(|&&l| l >= c) {
            panic!(
                "cross_entropy: label {bad} out of range for logits of shape {:?}",
                self.shape()
            );
        }
        let z = self.data();
        let mut total = 0.0f64;
        for (row, &l) in z.chunks(c.max(1)).zip(labels) {
            let m = row.iter().copied().fold(T::neg_infinity(), T::max);
            let s: T = row.iter().map(|&v| (v - m).exp()).sum();
            total += (m + s.ln() - row[l]).as_f64();
        }
        let loss = T::of(total / n.max(1) as f64);
        Tensor::from_op(vec![loss], vec![], &[self], || CrossEntropyBackward {
            labels: labels.to_vec(),
        })
    }

    /// Mean squared error `(1/n) sum (x - t)^2` (no 1/2 factor) as a 0-d tensor; `target` has
    /// the same shape and may require a gradient too.
    ///
    /// Backward: `x: 2 (x - t) g / n`, `t: -2 (x - t) g / n`.
    pub fn mse_loss(&self, target: &Tensor<T>) -> Tensor<T> {
        let term = |x: T, t: T| {
            let d = x - t;
            d * d
        };
        self.mean_loss(target, "mse_loss: prediction", term, MseBackward)
    }

    /// Mean binary cross-entropy of logits `x` against targets `t` in [0, 1] (same shape):
    /// `(1/n) sum max(x, 0) - x t + ln(1 + exp(-|x|))` (stable), as a 0-d tensor.
    ///
    /// Backward: `x: (sigmoid(x) - t) g / n`, `t: -x g / n`.
    pub fn bce_with_logits(&self, target: &Tensor<T>) -> Tensor<T> {
        let term = |x: T, t: T| x.max(T::zero()) - x * t + (-x.abs()).exp().ln_1p();
        self.mean_loss(target, "bce_with_logits: logits", term, BceBackward)
    }

    /// `(1/n) sum term(x, t)` over the elements of `self` and `target` (same shape, else a
    /// panic naming `what`), summed in `f64` in order, as a 0-d tensor with the rule `op`.
    fn mean_loss<B: Backward<T> + 'static>(
        &self,
        target: &Tensor<T>,
        what: &str,
        term: impl Fn(T, T) -> T,
        op: B,
    ) -> Tensor<T> {
        assert_eq!(
            self.shape(),
            target.shape(),
            "{what} shape {:?} differs from target shape {:?}",
            self.shape(),
            target.shape()
        );
        let s: f64 = self
            .data()
            .iter()
            .zip(target.data())
            .map(|(&x, &t)| term(x, t).as_f64())
            .sum();
        let loss = T::of(s / self.numel().max(1) as f64);
        Tensor::from_op(vec![loss], vec![], &[self, target], || op)
    }

    /// `out[c] = sum over (n, ..) of x[n, c, ..]` for `x` shaped `[N, C, ...]` (fused).
    ///
    /// Backward: [`Tensor::channel_broadcast`] of the gradient.
    pub fn channel_sum(&self) -> Tensor<T> {
        let (n, c, s) = ncs(self.shape(), "channel_sum");
        let x = self.data();
        let sums = channel_sums(n, c, s, |b| kernels::sum(&x[b..b + s]).as_f64());
        Tensor::from_op(
            sums.into_iter().map(T::of).collect(),
            vec![c],
            &[self],
            || ChannelSumBackward,
        )
    }

    /// `out[n, c, ..] = self[c]` for `self` shaped `[C]` and `shape` = `[N, C, ...]` (fused).
    ///
    /// Backward: [`Tensor::channel_sum`] of the gradient.
    pub fn channel_broadcast(&self, shape: &[usize]) -> Tensor<T> {
        let (_, c, s) = ncs(shape, "channel_broadcast");
        assert!(
            self.shape() == [c],
            "channel_broadcast: shape {:?} does not match the {c} channels of shape {:?}",
            self.shape(),
            shape
        );
        let v = self.data();
        let mut out = vec![T::zero(); shape.iter().product()];
        channel_fill(&mut out, c, s, |_, ch, run| run.fill(v[ch]));
        Tensor::from_op(out, shape.to_vec(), &[self], || ChannelBroadcastBackward)
    }

    /// Per-channel standardisation of `x` shaped `[N, C, ...]` with batch statistics:
    /// `xhat = (x - mu_c) / sqrt(var_c + eps)`, `mu_c` and the BIASED `var_c` taken over every
    /// axis but the channel axis 1. Fused forward (two passes per channel).
    ///
    /// Backward: `inv_std * (g - mean_c(g) - xhat * mean_c(g * xhat))`.
    pub fn normalize_channels(&self, eps: f64) -> Tensor<T> {
        let (n, c, s) = ncs(self.shape(), "normalize_channels");
        let m = (n * s).max(1) as f64;
        let x = self.data();
        let mean: Vec<f64> = channel_sums(n, c, s, |b| kernels::sum(&x[b..b + s]).as_f64())
            .into_iter()
            .map(|v| v / m)
            .collect();
        let var = channel_sums(n, c, s, |b| {
            let mu = T::of(mean[(b / s.max(1)) % c]);
            kernels::sum_sq_dev(&x[b..b + s], mu).as_f64()
        });
        let inv_std: Vec<T> = var
            .iter()
            .map(|&v| T::of(1.0 / (v / m + eps).sqrt()))
            .collect();
        let mut out = vec![T::zero(); x.len()];
        channel_fill(&mut out, c, s, |b, ch, run| {
            let (mu, inv) = (T::of(mean[ch]), inv_std[ch]);
            for (o, &v) in run.iter_mut().zip(&x[b..b + s]) {
                *o = (v - mu) * inv;
            }
        });
        Tensor::from_op(out, self.shape().to_vec(), &[self], || NormalizeBackward {
            eps,
            inv_std,
        })
    }

    /// `y[n, c, ..] = x[n, c, ..] * gamma[c] + beta[c]` for `x` shaped `[N, C, ...]` and
    /// `gamma`, `beta` shaped `[C]` (one fused pass).
    ///
    /// Backward: `x: g * gamma_c`, `gamma: sum over (n, ..) of g * x`, `beta: sum of g`.
    pub fn channel_affine(&self, gamma: &Tensor<T>, beta: &Tensor<T>) -> Tensor<T> {
        let (_, c, s) = ncs_affine(self, gamma, beta, "channel_affine");
        let (x, gm, bt) = (self.data(), gamma.data(), beta.data());
        let mut out = vec![T::zero(); x.len()];
        channel_fill(&mut out, c, s, |b, ch, run| {
            let (k, a) = (gm[ch], bt[ch]);
            for (o, &v) in run.iter_mut().zip(&x[b..b + s]) {
                *o = v * k + a;
            }
        });
        Tensor::from_op(out, self.shape().to_vec(), &[self, gamma, beta], || {
            ChannelAffineBackward
        })
    }

    /// Training-mode batch normalisation of `x` shaped `[N, C]` or `[N, C, H, W]` (any
    /// `[N, C, ...]`): per channel over every other axis, `mu` and the BIASED `var`, and
    /// `y = (x - mu) / sqrt(var + eps) * gamma + beta` (`gamma`, `beta` shaped `[C]`).
    ///
    /// One fused op (statistics in two vectorised passes, output in one). Its unrecorded
    /// backward is one fused pass for all three gradients; its recorded backward is built from
    /// [`Tensor::normalize_channels`] and [`Tensor::channel_affine`], so it is differentiable to
    /// any order with respect to `x`, `gamma` and `beta`.
    pub fn batch_norm(&self, gamma: &Tensor<T>, beta: &Tensor<T>, eps: f64) -> Tensor<T> {
        let (n, c, s) = ncs_affine(self, gamma, beta, "batch_norm");
        let (mean, inv_std) = channel_stats(self.data(), n, c, s, eps);
        let (gm, bt) = (gamma.data(), beta.data());
        let mut out = Vec::with_capacity(self.numel());
        for run in self.data().chunks_exact(s.max(1)) {
            let ch = (out.len() / s.max(1)) % c;
            let a = T::of(inv_std[ch]) * gm[ch];
            let b = bt[ch] - T::of(mean[ch]) * a;
            out.extend(run.iter().map(|&v| v * a + b));
        }
        Tensor::from_op(out, self.shape().to_vec(), &[self, gamma, beta], || {
            BatchNormBackward { eps, mean, inv_std }
        })
    }
}

/// Per-channel mean and `1 / sqrt(biased var + eps)` of `x` shaped `[N, C, S]`.
///
/// One pass over memory: each contiguous run `[n, c, :]` gets its own mean and sum of squared
/// deviations (two passes over a run that is in cache), and runs are merged per channel with
/// Chan et al.'s pairwise update (`M2 = M2a + M2b + delta^2 na nb / (na + nb)`), as stable as
/// the two-pass formula.
pub(super) fn channel_stats<T: Float>(
    x: &[T],
    n: usize,
    c: usize,
    s: usize,
    eps: f64,
) -> (Vec<f64>, Vec<f64>) {
    #[derive(Clone, Copy, Default)]
    struct Moments {
        count: f64,
        mean: f64,
        m2: f64,
    }
    impl std::ops::AddAssign for Moments {
        fn add_assign(&mut self, o: Moments) {
            let count = self.count + o.count;
            if count == 0.0 {
                return;
            }
            let delta = o.mean - self.mean;
            self.mean += delta * o.count / count;
            self.m2 += o.m2 + delta * delta * self.count * o.count / count;
            self.count = count;
        }
    }
    let moments = channel_sums(n, c, s, |b| {
        let run = &x[b..b + s];
        let mean = kernels::sum(run).as_f64() / s.max(1) as f64;
        Moments {
            count: s as f64,
            mean,
            m2: kernels::sum_sq_dev(run, T::of(mean)).as_f64(),
        }
    });
    let m = (n * s).max(1) as f64;
    let mean = moments.iter().map(|mo| mo.mean).collect();
    let inv_std = moments
        .iter()
        .map(|mo| 1.0 / (mo.m2 / m + eps).sqrt())
        .collect();
    (mean, inv_std)
}

/// The gradients of [`Tensor::batch_norm`] with respect to `x`, `gamma`, `beta` (where `needs`
/// says so) for upstream `g`, built from differentiable ops (for a recorded backward pass):
/// `dgamma = sum_c g xhat`, `dbeta = sum_c g`, `dx = normalize backward of g gamma`.
pub(super) fn batch_norm_grad_recorded<T: Float>(
    x: &Tensor<T>,
    gamma: &Tensor<T>,
    g: &Tensor<T>,
    eps: f64,
    needs: &[bool],
) -> Vec<Option<Tensor<T>>> {
    let c = gamma.numel();
    let xhat = x.normalize_channels(eps);
    let ggamma = needs[1].then(|| g.mul(&xhat).channel_sum());
    let gbeta = needs[2].then(|| g.channel_sum());
    let gx = needs[0].then(|| {
        let gxhat = g.channel_affine(gamma, &Tensor::zeros(&[c]));
        normalize_grad_recorded(x, &xhat, &gxhat, eps)
    });
    vec![gx, ggamma, gbeta]
}

/// Batch norm's backward in closed form, per channel, from `sg = sum g` and `sgx = sum g x`
/// (`sums[c] = Pair(sg, sgx)`) over the `m` values of the channel: returns `dgamma = sum g xhat =
/// (sgx - mu sg) inv` and the coefficients `(a, b, cc)` of `dx = a g + b x + cc`, with
/// `a = gamma inv`, `b = -gamma inv^2 dgamma / m`, `cc = -a sg / m - b mu`.
pub(super) fn batch_norm_grad_coefficients<T: Float>(
    mean: &[f64],
    inv_std: &[f64],
    gamma: &[T],
    sums: &[Pair],
    m: f64,
) -> (Vec<f64>, Vec<(T, T, T)>) {
    let sgh: Vec<f64> = (0..gamma.len())
        .map(|ch| (sums[ch].1 - mean[ch] * sums[ch].0) * inv_std[ch])
        .collect();
    let coef = (0..gamma.len())
        .map(|ch| {
            let (inv, mu, k) = (inv_std[ch], mean[ch], gamma[ch].as_f64());
            let a = k * inv;
            let b = -k * inv * inv * sgh[ch] / m;
            let cc = -a * sums[ch].0 / m - b * mu;
            (T::of(a), T::of(b), T::of(cc))
        })
        .collect();
    (sgh, coef)
}

/// [`ncs`] of `x`, after checking that the per-channel `gamma` and `beta` are shaped `[C]`
/// (else a panic naming `op`).
pub(super) fn ncs_affine<T: Float>(
    x: &Tensor<T>,
    gamma: &Tensor<T>,
    beta: &Tensor<T>,
    op: &str,
) -> (usize, usize, usize) {
    let (n, c, s) = ncs(x.shape(), op);
    assert!(
        gamma.shape() == [c] && beta.shape() == [c],
        "{op}: weight shape {:?} and bias shape {:?} do not match the {c} channels of input shape {:?}",
        gamma.shape(),
        beta.shape(),
        x.shape()
    );
    (n, c, s)
}

/// Batch norm's `(dgamma, dbeta)` where `needs[1]`, `needs[2]`: `sgh` (from
/// [`batch_norm_grad_coefficients`]) and the per-channel `sg = sums[c].0`.
pub(super) fn batch_norm_param_grads<T: Float>(
    needs: &[bool],
    sgh: &[f64],
    sums: &[Pair],
) -> (Option<Tensor<T>>, Option<Tensor<T>>) {
    let c = sums.len();
    let ggamma = needs[1].then(|| Tensor::from_vec(sgh.iter().map(|&v| T::of(v)).collect(), &[c]));
    let gbeta = needs[2].then(|| Tensor::from_vec(sums.iter().map(|p| T::of(p.0)).collect(), &[c]));
    (ggamma, gbeta)
}

struct BatchNormBackward {
    eps: f64,
    mean: Vec<f64>,
    inv_std: Vec<f64>,
}

impl_backward!(BatchNormBackward, "batch_norm", |self, ctx, g| {
    let (x, gamma) = (&ctx.inputs[0], &ctx.inputs[1]);
    let (n, c, s) = ncs(x.shape(), "batch_norm");
    if is_grad_enabled() {
        return batch_norm_grad_recorded(x, gamma, g, self.eps, ctx.needs);
    }
    // fused: per channel sg = sum g, sgh = sum g * xhat (one pass), then
    // gx = gamma inv (g - sg/m - xhat sgh/m) = A g + B x + C (one pass)
    let (gd, xd, gm) = (g.data(), x.data(), gamma.data());
    let m = (n * s).max(1) as f64;
    let sums = channel_sums(n, c, s, |b| {
        let gr = &gd[b..b + s];
        Pair(
            kernels::sum(gr).as_f64(),
            kernels::dot(gr, &xd[b..b + s]).as_f64(),
        )
    });
    let (sgh, coef) = batch_norm_grad_coefficients(&self.mean, &self.inv_std, gm, &sums, m);
    let gx = ctx.needs[0].then(|| {
        let mut out = Vec::with_capacity(gd.len());
        for (gr, xr) in gd.chunks_exact(s.max(1)).zip(xd.chunks_exact(s.max(1))) {
            let (a, b, cc) = coef[(out.len() / s.max(1)) % c];
            out.extend(gr.iter().zip(xr).map(|(&gv, &xv)| a * gv + b * xv + cc));
        }
        Tensor::from_vec(out, x.shape())
    });
    let (ggamma, gbeta) = batch_norm_param_grads(ctx.needs, &sgh, &sums);
    vec![gx, ggamma, gbeta]
});

//! Methods that look at the per-task gradients on the shared parameters: GradNorm, PCGrad,
//! and the [Gramian weightings](GramianWeighting) MGDA, CAGrad, Nash-MTL.

use super::solvers::{alpha_fair, SolverError};
use super::{aggregate, dot, weighted_sum, Combined, GramianWeighting, StepInfo, Weighting};
use crate::tensor::linalg::solve_f64;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// GradNorm (Chen et al. 2018) with learnable loss weights `w` (initially 1, kept summing to
/// `T`). With `G_i = w_i ||g_i||`, `G = mean_i G_i`, relative inverse training rates
/// `r_i = (L_i / L_i(0)) / mean_j (L_j / L_j(0))` and targets `G r_i^alpha` (held constant),
/// the weights take a gradient step of rate `lr` on `sum_i |G_i - G r_i^alpha|`
/// (`d/dw_i = sign(G_i - target_i) ||g_i||`), then are renormalised to sum to `T`.
/// The step uses the weights from before the update. The gradient norms are taken over all
/// shared parameters (the paper's choice is the last shared layer).
#[derive(Clone, Debug)]
pub struct GradNorm {
    /// The current loss weights.
    pub weights: Vec<f64>,
    alpha: f64,
    lr: f64,
    initial: Option<Vec<f64>>,
}

impl GradNorm {
    /// GradNorm over `tasks` tasks with asymmetry `alpha` and weight learning rate `lr`.
    pub fn new(tasks: usize, alpha: f64, lr: f64) -> Self {
        GradNorm {
            weights: vec![1.0; tasks],
            alpha,
            lr,
            initial: None,
        }
    }
}

impl Weighting for GradNorm {
    fn name(&self) -> &'static str {
        "gradnorm"
    }
    fn needs_grads(&self) -> bool {
        true
    }
    fn combine(&mut self, info: &StepInfo<'_>) -> Combined {
        let gramian = info.gramian("gradnorm");
        let t = gramian.len();
        let used = self.weights.clone();
        let l0 = self
            .initial
            .get_or_insert_with(|| info.losses.iter().map(|l| l.max(1e-12)).collect())
            .clone();
        // ||g_i|| = sqrt(G_ii), the same bits as `norm(g_i)`.
        let norms: Vec<f64> = (0..t).map(|i| gramian[i][i].sqrt()).collect();
        let gw: Vec<f64> = used.iter().zip(&norms).map(|(w, n)| w * n).collect();
        let mean_g = gw.iter().sum::<f64>() / t as f64;
        let ratios: Vec<f64> = info.losses.iter().zip(&l0).map(|(l, l0)| l / l0).collect();
        let mean_r = ratios.iter().sum::<f64>() / t as f64;
        for i in 0..t {
            let target = mean_g * (ratios[i] / mean_r.max(1e-12)).powf(self.alpha);
            let d = gw[i] - target;
            let sign = if d > 0.0 {
                1.0
            } else if d < 0.0 {
                -1.0
            } else {
                0.0
            };
            self.weights[i] = (self.weights[i] - self.lr * sign * norms[i]).max(1e-6);
        }
        let s: f64 = self.weights.iter().sum();
        for w in &mut self.weights {
            *w *= t as f64 / s;
        }
        Combined::weights(used)
    }
}

/// PCGrad (Yu et al. 2020), "gradient surgery": each `g_i`, against every other task `j` in a
/// random order, loses its component along `g_j` when the two conflict (`g_i . g_j < 0`):
/// `g_i <- g_i - (g_i . g_j / ||g_j||^2) g_j`. The shared gradient is the sum of the projected
/// gradients; heads get their own unweighted gradients.
#[derive(Clone, Debug)]
pub struct PcGrad {
    rng: ChaCha8Rng,
}

impl PcGrad {
    /// PCGrad with the task order drawn from `seed`.
    pub fn new(seed: u64) -> Self {
        PcGrad {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// The projected gradients, before summing.
    pub fn project(&mut self, grads: &[Vec<f64>]) -> Vec<Vec<f64>> {
        let t = grads.len();
        let sq: Vec<f64> = grads.iter().map(|g| dot(g, g)).collect();
        (0..t)
            .map(|i| {
                let mut gi = grads[i].clone();
                let mut order: Vec<usize> = (0..t).filter(|&j| j != i).collect();
                order.shuffle(&mut self.rng);
                for j in order {
                    let d = dot(&gi, &grads[j]);
                    if d < 0.0 && sq[j] > 0.0 {
                        let s = d / sq[j];
                        for (a, b) in gi.iter_mut().zip(&grads[j]) {
                            *a -= s * b;
                        }
                    }
                }
                gi
            })
            .collect()
    }
}

impl Weighting for PcGrad {
    fn name(&self) -> &'static str {
        "pcgrad"
    }
    fn needs_grads(&self) -> bool {
        true
    }
    fn combine(&mut self, info: &StepInfo<'_>) -> Combined {
        let grads = info.grads("pcgrad");
        let p = self.project(grads);
        Combined {
            weights: vec![1.0; grads.len()],
            shared: Some(weighted_sum(&p, &vec![1.0; p.len()])),
            fallback: None,
        }
    }
}

/// `argmin_{gamma in [0,1]} ||gamma a + (1 - gamma) b||^2` from `a.a`, `a.b`, `b.b`.
fn min_norm_pair(aa: f64, ab: f64, bb: f64) -> f64 {
    let den = aa + bb - 2.0 * ab;
    if den <= 1e-20 {
        return 0.5;
    }
    ((bb - ab) / den).clamp(0.0, 1.0)
}

/// The weights `w` on the simplex of the min-norm point `sum_i w_i g_i` of the convex hull of
/// the gradients, from their Gram matrix: closed form for two tasks, an exact search over
/// supports up to 12 tasks, Frank-Wolfe with exact line search (Sener & Koltun 2018,
/// Algorithm 2) beyond.
pub fn min_norm_weights(g: &[Vec<f64>]) -> Vec<f64> {
    let t = g.len();
    match t {
        0 => return Vec::new(),
        1 => return vec![1.0],
        2 => {
            let gamma = min_norm_pair(g[0][0], g[0][1], g[1][1]);
            return vec![gamma, 1.0 - gamma];
        }
        _ => {}
    }
    if t <= 12 {
        if let Some(w) = min_norm_exact(g) {
            return w;
        }
    }
    let mut w = vec![1.0 / t as f64; t];
    for _ in 0..1000 {
        let gw: Vec<f64> = (0..t)
            .map(|i| (0..t).map(|j| g[i][j] * w[j]).sum())
            .collect();
        let vv: f64 = (0..t).map(|i| w[i] * gw[i]).sum();
        let k = (0..t).min_by(|&a, &b| gw[a].total_cmp(&gw[b])).unwrap_or(0);
        // minimise ||(1-gamma) v + gamma g_k||^2: the pair (g_k, v)
        let gamma = min_norm_pair(g[k][k], gw[k], vv);
        if gamma <= 1e-12 {
            break;
        }
        for (i, wi) in w.iter_mut().enumerate() {
            *wi *= 1.0 - gamma;
            if i == k {
                *wi += gamma;
            }
        }
        if gamma < 1e-10 {
            break;
        }
    }
    w
}

/// The exact min-norm weights for a few tasks: the best feasible solution of the KKT system
/// `[2 G_S, 1; 1^T, 0] [w; mu] = [0; 1]` over every support `S` (the problem is convex, so the
/// best of the feasible stationary points is the minimum).
fn min_norm_exact(g: &[Vec<f64>]) -> Option<Vec<f64>> {
    let t = g.len();
    let mut best: Option<(f64, Vec<f64>)> = None;
    for mask in 1u32..(1 << t) {
        let s: Vec<usize> = (0..t).filter(|&i| mask & (1 << i) != 0).collect();
        let k = s.len();
        let mut a = vec![0.0; (k + 1) * (k + 1)];
        for (r, &i) in s.iter().enumerate() {
            for (c, &j) in s.iter().enumerate() {
                a[r * (k + 1) + c] = 2.0 * g[i][j];
            }
            a[r * (k + 1) + k] = 1.0;
            a[k * (k + 1) + r] = 1.0;
        }
        let mut b = vec![0.0; k + 1];
        b[k] = 1.0;
        let Some(x) = solve_f64(&a, k + 1, &b, MIN_PIVOT) else {
            continue;
        };
        if x[..k]
            .iter()
            .any(|&v| v.is_nan() || v < -1e-12 || !v.is_finite())
        {
            continue;
        }
        let mut w = vec![0.0; t];
        for (r, &i) in s.iter().enumerate() {
            w[i] = x[r].max(0.0);
        }
        let sum: f64 = w.iter().sum();
        if sum <= 0.0 {
            continue;
        }
        w.iter_mut().for_each(|v| *v /= sum);
        let val: f64 = (0..t)
            .flat_map(|i| (0..t).map(move |j| (i, j)))
            .map(|(i, j)| w[i] * w[j] * g[i][j])
            .sum();
        if best.as_ref().is_none_or(|(bv, _)| val < *bv - 1e-15) {
            best = Some((val, w));
        }
    }
    best.map(|(_, w)| w)
}

/// MGDA-UB style min-norm aggregation (Sener & Koltun 2018): the shared gradient is
/// `T * sum_i w_i g_i` with `w` the [min-norm weights](min_norm_weights) (the factor `T` puts it
/// on the scale of the summed gradient); heads get their own unweighted gradients.
#[derive(Clone, Debug, Default)]
pub struct Mgda;

impl Mgda {
    /// MGDA.
    pub fn new() -> Self {
        Mgda
    }
}

impl GramianWeighting for Mgda {
    /// `T` times the min-norm weights.
    fn weights(&mut self, gramian: &[Vec<f64>]) -> Result<Vec<f64>, SolverError> {
        let t = gramian.len() as f64;
        Ok(min_norm_weights(gramian).iter().map(|x| x * t).collect())
    }
}

impl Weighting for Mgda {
    fn name(&self) -> &'static str {
        "mgda"
    }
    fn needs_grads(&self) -> bool {
        true
    }
    fn combine(&mut self, info: &StepInfo<'_>) -> Combined {
        aggregate(self, "mgda", info)
    }
}

/// Minimises a convex function of `gamma` on `[0, 1]` (golden section).
fn golden(f: impl Fn(f64) -> f64) -> f64 {
    let r = (5f64.sqrt() - 1.0) / 2.0;
    let (mut a, mut b) = (0.0f64, 1.0f64);
    let mut c = b - r * (b - a);
    let mut d = a + r * (b - a);
    let (mut fc, mut fd) = (f(c), f(d));
    for _ in 0..80 {
        if fc < fd {
            b = d;
            d = c;
            fd = fc;
            c = b - r * (b - a);
            fc = f(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + r * (b - a);
            fd = f(d);
        }
    }
    let mid = 0.5 * (a + b);
    [0.0, mid, 1.0]
        .into_iter()
        .min_by(|&x, &y| f(x).total_cmp(&f(y)))
        .unwrap_or(mid)
}

/// Conflict-averse gradient descent (Liu et al. 2021). With `g0 = mean_i g_i` and
/// `phi = c^2 ||g0||^2`, find `w` on the simplex minimising `g_w . g0 + sqrt(phi) ||g_w||`
/// (`g_w = sum_i w_i g_i`), then `d = (g0 + sqrt(phi) / ||g_w|| g_w) / (1 + c^2)` (the official
/// code's `rescale = 1`). The shared gradient is `T d` (sum scale); heads get their own
/// unweighted gradients. `c = 0` is plain gradient descent on the sum.
#[derive(Clone, Debug)]
pub struct CaGrad {
    c: f64,
}

impl CaGrad {
    /// CAGrad with radius `c` (0.4 in the paper's multi-task experiments).
    pub fn new(c: f64) -> Self {
        CaGrad { c }
    }

    /// The simplex weights `w` of the inner problem, from the Gram matrix.
    pub fn inner_weights(&self, g: &[Vec<f64>]) -> Vec<f64> {
        let t = g.len();
        let tf = t as f64;
        let g0g0: f64 = g.iter().flatten().sum::<f64>() / (tf * tf);
        let sphi = self.c * g0g0.max(0.0).sqrt();
        let objective = |w: &[f64]| -> f64 {
            let mut lin = 0.0;
            let mut quad = 0.0;
            for i in 0..t {
                for j in 0..t {
                    lin += w[i] * g[i][j] / tf;
                    quad += w[i] * w[j] * g[i][j];
                }
            }
            lin + sphi * quad.max(0.0).sqrt()
        };
        if t == 1 {
            return vec![1.0];
        }
        if t == 2 {
            let gamma = golden(|x| objective(&[x, 1.0 - x]));
            return vec![gamma, 1.0 - gamma];
        }
        // Frank-Wolfe with golden-section line search.
        let mut w = vec![1.0 / tf; t];
        for _ in 0..300 {
            let gw: Vec<f64> = (0..t)
                .map(|i| (0..t).map(|j| g[i][j] * w[j]).sum())
                .collect();
            let nw = (0..t).map(|i| w[i] * gw[i]).sum::<f64>().max(1e-30).sqrt();
            let grad: Vec<f64> = (0..t)
                .map(|i| (0..t).map(|j| g[i][j]).sum::<f64>() / tf + sphi * gw[i] / nw)
                .collect();
            let k = (0..t)
                .min_by(|&a, &b| grad[a].total_cmp(&grad[b]))
                .unwrap_or(0);
            let step = |s: f64| -> Vec<f64> {
                (0..t)
                    .map(|i| (1.0 - s) * w[i] + if i == k { s } else { 0.0 })
                    .collect()
            };
            let s = golden(|s| objective(&step(s)));
            if s < 1e-12 {
                break;
            }
            w = step(s);
        }
        w
    }
}

impl GramianWeighting for CaGrad {
    /// The coefficients of `T d` on the gradients: `T (1/T + lambda w_i) / (1 + c^2)`.
    fn weights(&mut self, g: &[Vec<f64>]) -> Result<Vec<f64>, SolverError> {
        let t = g.len();
        let tf = t as f64;
        let w = self.inner_weights(g);
        let g0g0: f64 = g.iter().flatten().sum::<f64>() / (tf * tf);
        let sphi = self.c * g0g0.max(0.0).sqrt();
        let gw_norm = (0..t)
            .flat_map(|i| (0..t).map(move |j| (i, j)))
            .map(|(i, j)| w[i] * w[j] * g[i][j])
            .sum::<f64>()
            .max(0.0)
            .sqrt();
        let lambda = if gw_norm > 1e-30 { sphi / gw_norm } else { 0.0 };
        // d = (g0 + lambda g_w) / (1 + c^2), times T.
        Ok(w.iter()
            .map(|wi| tf * (1.0 / tf + lambda * wi) / (1.0 + self.c * self.c))
            .collect())
    }
}

impl Weighting for CaGrad {
    fn name(&self) -> &'static str {
        "cagrad"
    }
    fn needs_grads(&self) -> bool {
        true
    }
    fn combine(&mut self, info: &StepInfo<'_>) -> Combined {
        aggregate(self, "cagrad", info)
    }
}

/// The smallest pivot magnitude the small dense solves here accept (a smaller one means a
/// singular system: that support is skipped, or Newton's iteration stops).
const MIN_PIVOT: f64 = 1e-300;

/// The Nash bargaining weights of Nash-MTL: the `alpha > 0` with `G alpha = 1 / alpha`
/// (elementwise), `G` the Gram matrix. This is the stationarity condition of the strictly convex
/// `f(alpha) = alpha^T G alpha / 2 - sum_i ln alpha_i`, minimised by [`alpha_fair`] with
/// `alpha = 1` (damped Newton; a small ridge keeps `G` definite when gradients are collinear).
pub fn nash_weights(g: &[Vec<f64>]) -> Result<Vec<f64>, SolverError> {
    alpha_fair(g, 1.0)
}

/// Nash-MTL (Navon et al. 2022): the shared gradient is `sum_i alpha_i g_i` with the
/// [Nash bargaining weights](nash_weights), and each head's loss is weighted by `alpha_i` (the
/// paper backpropagates `sum_i alpha_i L_i`). The solution is scale-dependent by design
/// (`alpha_i ~ 1 / ||g_i||`); it is not rescaled.
#[derive(Clone, Debug, Default)]
pub struct NashMtl;

impl NashMtl {
    /// Nash-MTL.
    pub fn new() -> Self {
        NashMtl
    }
}

impl Weighting for NashMtl {
    fn name(&self) -> &'static str {
        "nash"
    }
    fn needs_grads(&self) -> bool {
        true
    }
    fn combine(&mut self, info: &StepInfo<'_>) -> Combined {
        aggregate(self, "nash", info)
    }
}

impl GramianWeighting for NashMtl {
    /// The Nash bargaining weights `alpha`.
    fn weights(&mut self, gramian: &[Vec<f64>]) -> Result<Vec<f64>, SolverError> {
        nash_weights(gramian)
    }
    /// Heads are weighted by `alpha_i` too.
    fn weights_heads(&self) -> bool {
        true
    }
}

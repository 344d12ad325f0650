//! LibMTL's gradient-manipulation methods that this crate lacked: GradDrop, MoCo, MoDo and
//! SDMGrad. Each works on the per-task gradients the trainer hands over (on the shared
//! parameters, or on the shared representation with `gramian = "representation"`) and returns
//! the shared update itself. Where LibMTL's update is a convex combination of task gradients (the
//! mean's scale) the update here is `K` times it, on the scale of the summed gradient
//! `sum_i g_i`, so that learning rates carry over from `equal` (documented per method). Task
//! heads get their own loss's gradient (weight 1), as in LibMTL.
//!
//! A non-finite update (a NaN gradient, an overflowing state) makes the step use the mean
//! direction ([`Combined::mean_fallback`]) and resets the method's state.

use super::{gram, norm, softmax, weighted_sum, Combined, StepInfo, Weighting};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The Euclidean projection of `v` onto the probability simplex `{w >= 0, sum_i w_i = 1}`:
/// `w_i = max(v_i - theta, 0)` with `theta` from the sorted values (Held et al. 1974; LibMTL's
/// `_projection2simplex` and `euclidean_proj_simplex` compute the same point).
pub fn project_simplex(v: &[f64]) -> Vec<f64> {
    let mut u = v.to_vec();
    u.sort_by(|a, b| b.total_cmp(a));
    let mut sum = 0.0;
    let mut theta = (v.iter().sum::<f64>() - 1.0) / v.len().max(1) as f64;
    for (i, &ui) in u.iter().enumerate() {
        sum += ui;
        let t = (sum - 1.0) / (i + 1) as f64;
        if ui > t {
            theta = t;
        }
    }
    v.iter().map(|x| (x - theta).max(0.0)).collect()
}

/// The update with `shared` as the shared gradient and heads weighted 1, or the mean fallback
/// naming `method` when `shared` is not finite.
fn shared_or_fallback(method: &str, tasks: usize, shared: Vec<f64>) -> Combined {
    if shared.iter().all(|v| v.is_finite()) {
        Combined {
            weights: vec![1.0; tasks],
            shared: Some(shared),
            fallback: None,
        }
    } else {
        Combined::mean_fallback(
            tasks,
            format!("{method}: non-finite update (state reset); used the mean direction"),
        )
    }
}

/// Gradient sign dropout (GradDrop, Chen et al. 2020, "Just Pick a Sign"). At every
/// coordinate `j` of the gradients, the sign purity `P_j = (1 + sum_i g_ij /
/// (sum_i |g_ij| + 1e-7)) / 2` is the probability of keeping the positive gradients: with one
/// uniform draw `U_j`, task `i` keeps `g_ij` when `P_j > U_j` and `g_ij > 0`, or `P_j < U_j`
/// and `g_ij < 0`, and is scaled by `leak` otherwise (LibMTL's default `leak = 0` drops it).
/// The update is `sum_i g_ij (leak + (1 - leak) M_ij)`, on the summed gradient's scale as in
/// LibMTL (which back-propagates the sum of the masked gradients).
///
/// LibMTL applies it to the gradients at the shared representation `z` only, after
/// multiplying them by `sign(z)` and summing over the batch (one draw per feature for the whole
/// batch). The trainer does not hand a method the activations, so here the purity and the draw
/// are per coordinate of the gradients the method receives: with `gramian = "representation"`
/// the representation's gradients per example and feature (for a batch of one, the masks have
/// LibMTL's distribution wherever `z != 0`, since multiplying by `sign(z)` mirrors `P` and the
/// draw alike); on the shared parameters (the default) the parameters' gradients, the same rule
/// applied to every shared weight instead of the activations. Draws come from a generator
/// seeded by `seed`.
#[derive(Clone, Debug)]
pub struct GradDrop {
    leak: f64,
    rng: ChaCha8Rng,
}

impl GradDrop {
    /// GradDrop with leak `leak` (LibMTL: 0, in `[0, 1]`), draws seeded by `seed`.
    pub fn new(leak: f64, seed: u64) -> Self {
        GradDrop {
            leak,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// The masked sum of `grads` (one new uniform draw per coordinate).
    pub fn drop_signs(&mut self, grads: &[Vec<f64>]) -> Vec<f64> {
        let dim = grads.first().map_or(0, Vec::len);
        (0..dim)
            .map(|j| {
                let (sum, abs) = grads
                    .iter()
                    .fold((0.0, 0.0), |(s, a), g| (s + g[j], a + g[j].abs()));
                let p = 0.5 * (1.0 + sum / (abs + 1e-7));
                let u: f64 = self.rng.gen();
                grads
                    .iter()
                    .map(|g| {
                        let keep = (p > u && g[j] > 0.0) || (p < u && g[j] < 0.0);
                        let m = if keep { 1.0 } else { 0.0 };
                        g[j] * (self.leak + (1.0 - self.leak) * m)
                    })
                    .sum()
            })
            .collect()
    }
}

impl Weighting for GradDrop {
    fn name(&self) -> &'static str {
        "graddrop"
    }
    fn needs_grads(&self) -> bool {
        true
    }
    fn combine(&mut self, info: &StepInfo<'_>) -> Combined {
        let grads = info.grads("graddrop");
        let shared = self.drop_signs(grads);
        shared_or_fallback("graddrop", grads.len(), shared)
    }
}

/// MoCo (Fernando et al. 2023, "Mitigating Gradient Bias in Multi-objective Learning"), as
/// LibMTL runs it. At step `t` (1-based), with `beta_t = beta / t^beta_sigma` and
/// `gamma_t = gamma / t^gamma_sigma`:
///
/// - each gradient is rescaled to its loss, `h_i = L_i g_i / (||g_i|| + 1e-8)`;
/// - the tracked gradients move towards them, `y_i <- y_i - beta_t (y_i - h_i)` (`y` initially
///   0);
/// - the weights take a softmax step, `lambda <- softmax(lambda - gamma_t (Y Y^T + rho I)
///   lambda)` (`lambda` initially `1 / K`);
/// - the update is `K sum_i lambda_i y_i` (LibMTL: `sum_i lambda_i y_i`, a convex combination,
///   times `K` here for the summed gradient's scale).
///
/// LibMTL's defaults: `beta = 0.5`, `beta_sigma = 0.5`, `gamma = 0.1`, `gamma_sigma = 0.5`,
/// `rho = 0`. With two opposed gradients of equal loss, `Y Y^T lambda = 0` keeps `lambda`
/// uniform and the update is 0.
#[derive(Clone, Debug)]
pub struct MoCo {
    beta: f64,
    beta_sigma: f64,
    gamma: f64,
    gamma_sigma: f64,
    rho: f64,
    step: u64,
    y: Vec<Vec<f64>>,
    /// The task weights `lambda` (on the simplex; empty before the first step).
    pub lambda: Vec<f64>,
}

impl MoCo {
    /// MoCo with the rates `beta`, `gamma`, their decay exponents and the regulariser `rho`.
    pub fn new(beta: f64, beta_sigma: f64, gamma: f64, gamma_sigma: f64, rho: f64) -> Self {
        MoCo {
            beta,
            beta_sigma,
            gamma,
            gamma_sigma,
            rho,
            step: 0,
            y: Vec::new(),
            lambda: Vec::new(),
        }
    }
}

impl Weighting for MoCo {
    fn name(&self) -> &'static str {
        "moco"
    }
    fn needs_grads(&self) -> bool {
        true
    }
    fn combine(&mut self, info: &StepInfo<'_>) -> Combined {
        let grads = info.grads("moco");
        let k = grads.len();
        let dim = grads.first().map_or(0, Vec::len);
        if self.y.len() != k || self.y.iter().any(|y| y.len() != dim) {
            self.y = vec![vec![0.0; dim]; k];
            self.lambda = vec![1.0 / k as f64; k];
        }
        self.step += 1;
        let t = self.step as f64;
        let beta = self.beta / t.powf(self.beta_sigma);
        let gamma = self.gamma / t.powf(self.gamma_sigma);
        for ((y, g), &l) in self.y.iter_mut().zip(grads).zip(info.losses) {
            let s = l / (norm(g) + 1e-8);
            for (yv, gv) in y.iter_mut().zip(g) {
                *yv -= beta * (*yv - s * gv);
            }
        }
        let yy = gram(&self.y);
        let a: Vec<f64> = (0..k)
            .map(|i| {
                let row: f64 = (0..k).map(|j| yy[i][j] * self.lambda[j]).sum();
                self.lambda[i] - gamma * (row + self.rho * self.lambda[i])
            })
            .collect();
        self.lambda = softmax(&a);
        let scaled: Vec<f64> = self.lambda.iter().map(|l| k as f64 * l).collect();
        let shared = weighted_sum(&self.y, &scaled);
        if !shared.iter().all(|v| v.is_finite()) {
            self.y.clear();
            self.step = 0;
        }
        shared_or_fallback("moco", k, shared)
    }
}

/// MoDo (Chen et al. 2023, "Three-Way Trade-Off in Multi-Objective Learning"), as LibMTL runs
/// it: the weights take a projected gradient step
/// `lambda <- Proj_simplex(lambda - gamma (G_1 G_2^T lambda + rho lambda))` (`lambda` initially
/// `1 / K`) and the update is `sum_i lambda_i g_i` from a third sample, times `K` here for the
/// summed gradient's scale. LibMTL's defaults: `gamma = 0.001`, `rho = 0.1`.
///
/// MoDo's double sampling draws three independent batches per step (two for the unbiased
/// estimate `G_1 G_2^T` of the Gramian, one for the update). This trainer draws one batch per
/// step, so all three samples are that batch's gradients: the weight step uses the step's
/// Gramian `G G^T` and the update the same gradients. This is MoDo with deterministic
/// gradients (the paper's analysis of the full-batch case); with minibatches the Gramian is the
/// biased (squared-mean) estimate, as in MGDA. Its fixed point is the minimiser of
/// `||sum_i lambda_i g_i||^2 + rho ||lambda||^2` on the simplex: for orthogonal gradients,
/// `lambda_i` proportional to `1 / (||g_i||^2 + rho)`.
#[derive(Clone, Debug)]
pub struct MoDo {
    gamma: f64,
    rho: f64,
    /// The task weights `lambda` (on the simplex; empty before the first step).
    pub lambda: Vec<f64>,
}

impl MoDo {
    /// MoDo with weight step `gamma` and regulariser `rho`.
    pub fn new(gamma: f64, rho: f64) -> Self {
        MoDo {
            gamma,
            rho,
            lambda: Vec::new(),
        }
    }
}

impl Weighting for MoDo {
    fn name(&self) -> &'static str {
        "modo"
    }
    fn needs_grads(&self) -> bool {
        true
    }
    fn combine(&mut self, info: &StepInfo<'_>) -> Combined {
        let grads = info.grads("modo");
        let g = info.gramian("modo");
        let k = grads.len();
        if self.lambda.len() != k {
            self.lambda = vec![1.0 / k as f64; k];
        }
        let a: Vec<f64> = (0..k)
            .map(|i| {
                let row: f64 = (0..k).map(|j| g[i][j] * self.lambda[j]).sum();
                self.lambda[i] - self.gamma * (row + self.rho * self.lambda[i])
            })
            .collect();
        self.lambda = project_simplex(&a);
        let scaled: Vec<f64> = self.lambda.iter().map(|l| k as f64 * l).collect();
        let shared = weighted_sum(grads, &scaled);
        if !shared.iter().all(|v| v.is_finite()) {
            self.lambda.clear();
        }
        shared_or_fallback("modo", k, shared)
    }
}

/// SDMGrad (Xiao et al. 2023, "Direction-oriented Multi-objective Learning"), as LibMTL runs
/// it. The Gramian is normalised, `A = G / (s^2 + 1e-8)` with `s` the mean gradient norm
/// `mean_i sqrt(max(G_ii, 0))`, and `b = A 1 / K`; the weights `w` (initially `1 / K`, kept
/// between steps) take `niter` steps of SGD with learning rate 5 and momentum 0.5 (a fresh
/// buffer each step) on `w^T A w / 2 + lamda b^T w`, gradient `A w + lamda b`, each followed by
/// the projection onto the simplex. The update is
/// `(sum_i w_i g_i + lamda g_mean) / (1 + lamda)`, times `K` here for the summed gradient's
/// scale: `sum_i (K w_i + lamda) / (1 + lamda) g_i`. LibMTL's defaults (and names):
/// `lamda = 0.3`, `niter = 20`.
///
/// SDMGrad samples three batches per step (two for the Gramian `G_1 G_2^T`, one for the
/// update); as for [`MoDo`], this trainer's one batch per step is all three samples. LibMTL's
/// heads accumulate the gradient of each of the three backward passes (three times their
/// loss's gradient); here they get it once, as every other method gives them.
#[derive(Clone, Debug)]
pub struct SdmGrad {
    lamda: f64,
    niter: usize,
    /// The simplex weights `w` (empty before the first step).
    pub w: Vec<f64>,
}

impl SdmGrad {
    /// SDMGrad with regulariser `lamda` and `niter` weight iterations per step.
    pub fn new(lamda: f64, niter: usize) -> Self {
        SdmGrad {
            lamda,
            niter,
            w: Vec::new(),
        }
    }

    /// The normalised Gramian `A` and `b = A 1 / K` of the Gramian `g`.
    fn normalised(g: &[Vec<f64>]) -> (Vec<Vec<f64>>, Vec<f64>) {
        let k = g.len();
        let scale = (0..k).map(|i| g[i][i].max(0.0).sqrt()).sum::<f64>() / k as f64;
        let d = scale * scale + 1e-8;
        let a: Vec<Vec<f64>> = g
            .iter()
            .map(|row| row.iter().map(|v| v / d).collect())
            .collect();
        let b = a
            .iter()
            .map(|row| row.iter().sum::<f64>() / k as f64)
            .collect();
        (a, b)
    }
}

impl Weighting for SdmGrad {
    fn name(&self) -> &'static str {
        "sdmgrad"
    }
    fn needs_grads(&self) -> bool {
        true
    }
    fn combine(&mut self, info: &StepInfo<'_>) -> Combined {
        let grads = info.grads("sdmgrad");
        let k = grads.len();
        if self.w.len() != k {
            self.w = vec![1.0 / k as f64; k];
        }
        let (a, b) = Self::normalised(&info.gramian("sdmgrad"));
        let mut buf: Option<Vec<f64>> = None;
        for _ in 0..self.niter {
            let grad: Vec<f64> = (0..k)
                .map(|i| (0..k).map(|j| a[i][j] * self.w[j]).sum::<f64>() + self.lamda * b[i])
                .collect();
            let m: Vec<f64> = match buf {
                None => grad,
                Some(prev) => prev.iter().zip(&grad).map(|(p, g)| 0.5 * p + g).collect(),
            };
            let stepped: Vec<f64> = self.w.iter().zip(&m).map(|(w, v)| w - 5.0 * v).collect();
            self.w = project_simplex(&stepped);
            buf = Some(m);
        }
        let c: Vec<f64> = self
            .w
            .iter()
            .map(|w| (k as f64 * w + self.lamda) / (1.0 + self.lamda))
            .collect();
        let shared = weighted_sum(grads, &c);
        if !shared.iter().all(|v| v.is_finite()) {
            self.w.clear();
        }
        shared_or_fallback("sdmgrad", k, shared)
    }
}

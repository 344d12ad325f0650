//! The aggregators of TorchJD 0.18 (Jacobian descent), in its two-step form: a *weighting*
//! maps the Gramian `G = J J^T` of the task gradients (rows of the Jacobian `J`, `K x D`) to task
//! weights `w`, and the *aggregation* is `w^T J`. Every function here returns exactly what
//! TorchJD's `Weighting` returns (its parameters' defaults; checked against TorchJD's own
//! vectors by `metalearn verify-reference` on `shared/reference-mtl`), except
//! [`trimmed_mean`], which is not a weighting (it works coordinate-wise on `J`).
//!
//! [`JdMethod`] wraps one of them as a training [`Weighting`]: it computes the weights from the
//! step's Gramian, rescales them by the method's [`JdKind::train_scale`] (so that the shared
//! update is on the scale of the summed gradient, like `equal`), and on a solver failure uses
//! the mean direction instead, recording why in [`Combined::fallback`].

use super::solvers::{
    alpha_fair, golden_min, pinv_apply, project_weights, simplex_qp, symmetric_eigen, SolverError,
};
use super::{weighted_sum, Combined, StepInfo, Weighting};

fn matvec(g: &[Vec<f64>], x: &[f64]) -> Vec<f64> {
    g.iter()
        .map(|row| row.iter().zip(x).map(|(a, b)| a * b).sum())
        .collect()
}

fn quad(g: &[Vec<f64>], x: &[f64]) -> f64 {
    matvec(g, x).iter().zip(x).map(|(a, b)| a * b).sum()
}

/// TorchJD's `normalize` then `regularize`: `G / trace(G)` (zeros when `trace(G) < norm_eps`)
/// plus `reg_eps I`, with TorchJD's `norm_eps = reg_eps = 1e-4`.
pub fn normalize_regularize(g: &[Vec<f64>], norm_eps: f64, reg_eps: f64) -> Vec<Vec<f64>> {
    let k = g.len();
    let tr: f64 = (0..k).map(|i| g[i][i]).sum();
    (0..k)
        .map(|i| {
            (0..k)
                .map(|j| {
                    let v = if tr < norm_eps { 0.0 } else { g[i][j] / tr };
                    v + if i == j { reg_eps } else { 0.0 }
                })
                .collect()
        })
        .collect()
}

/// UPGrad (Quinton & Rey 2024) with the mean preference: `sum_i pi(e_i / K)`, each row's weight
/// vector projected onto the dual cone of the rows ([`project_weights`]) of the normalised and
/// regularised Gramian.
pub fn upgrad_weights(g: &[Vec<f64>]) -> Result<Vec<f64>, SolverError> {
    let k = g.len();
    let gn = normalize_regularize(g, 1e-4, 1e-4);
    let mut w = vec![0.0; k];
    for i in 0..k {
        let mut u = vec![0.0; k];
        u[i] = 1.0 / k as f64;
        for (a, b) in w.iter_mut().zip(project_weights(&u, &gn)?) {
            *a += b;
        }
    }
    Ok(w)
}

/// DualProj: the mean `1 / K` projected onto the dual cone of the rows ([`project_weights`]).
pub fn dualproj_weights(g: &[Vec<f64>]) -> Result<Vec<f64>, SolverError> {
    let k = g.len();
    let gn = normalize_regularize(g, 1e-4, 1e-4);
    project_weights(&vec![1.0 / k as f64; k], &gn)
}

/// MGDA as TorchJD computes it: Frank-Wolfe (Sener & Koltun 2018, Algorithm 2) from the uniform
/// weights, at most `max_iters` steps, stopping once the step size is below `epsilon`
/// (TorchJD: `1e-3`, 100). The weights lie on the simplex.
pub fn mgda_frank_wolfe(g: &[Vec<f64>], epsilon: f64, max_iters: usize) -> Vec<f64> {
    let k = g.len();
    let mut alpha = vec![1.0 / k as f64; k];
    for _ in 0..max_iters {
        let ga = matvec(g, &alpha);
        let t = (0..k).fold(0, |best, i| if ga[i] < ga[best] { i } else { best });
        let a = ga[t];
        let b = quad(g, &alpha);
        let c = g[t][t];
        let gamma = if c <= a {
            1.0
        } else if b <= a {
            0.0
        } else {
            (b - a) / (b + c - 2.0 * a)
        };
        for (i, w) in alpha.iter_mut().enumerate() {
            *w *= 1.0 - gamma;
            if i == t {
                *w += gamma;
            }
        }
        if gamma < epsilon {
            break;
        }
    }
    alpha
}

/// CAGrad's inner problem (Liu et al. 2021) on the Gramian `g`: `w` on the simplex minimising
/// `b^T w + s sqrt(w^T G w)` with `b = G 1 / K`, `s = c ||g_0||`. Written as
/// `min_t [min_w b^T w + s w^T G w / (2t)] + s t / 2` (since `sqrt(q) = min_t q/(2t) + t/2`),
/// whose outer function is convex in `t`: golden-section search on `t` in
/// `(0, max_i sqrt(G_ii)]`, each inner problem an exact [`simplex_qp`]. Returns `(w, s)`.
pub fn cagrad_inner(g: &[Vec<f64>], c: f64) -> Result<(Vec<f64>, f64), SolverError> {
    let k = g.len();
    let kf = k as f64;
    let b: Vec<f64> = (0..k).map(|i| g[i].iter().sum::<f64>() / kf).collect();
    let g0 = (g.iter().flatten().sum::<f64>() / (kf * kf))
        .max(0.0)
        .sqrt();
    let s = c * g0;
    if s <= 0.0 {
        return Ok((vec![1.0 / kf; k], s));
    }
    let tmax = (0..k).map(|i| g[i][i].max(0.0).sqrt()).fold(0.0, f64::max);
    let inner = |t: f64| -> Result<(f64, Vec<f64>), SolverError> {
        let p: Vec<Vec<f64>> = g
            .iter()
            .map(|r| r.iter().map(|v| v * s / t).collect())
            .collect();
        let w = simplex_qp(&p, &b)?;
        let val = b.iter().zip(&w).map(|(x, y)| x * y).sum::<f64>()
            + s * quad(g, &w) / (2.0 * t)
            + s * t / 2.0;
        Ok((val, w))
    };
    let lo = tmax * 1e-9;
    let t = golden_min(|t| inner(t).map_or(f64::INFINITY, |r| r.0), lo, tmax, 120);
    // The minimising t is ||g_w|| itself; one more inner solve at it gives w.
    Ok((inner(t)?.1, s))
}

/// CAGrad as TorchJD computes it: on the normalised Gramian, `w = 1/K + (s / ||g_w||) w*` with
/// `w*` from [`cagrad_inner`] (zeros when `||g_w|| < 1e-4`). The paper's official code divides
/// by `1 + c^2` as well (this crate's `cagrad` default).
pub fn cagrad_torchjd_weights(g: &[Vec<f64>], c: f64) -> Result<Vec<f64>, SolverError> {
    let k = g.len();
    let gn = normalize_regularize(g, 1e-4, 0.0);
    let (w, s) = cagrad_inner(&gn, c)?;
    let gw = quad(&gn, &w).max(0.0).sqrt();
    Ok(if gw >= 1e-4 {
        w.iter().map(|wi| 1.0 / k as f64 + s / gw * wi).collect()
    } else {
        vec![0.0; k]
    })
}

/// IMTL-G (Liu et al. 2021) in TorchJD's generalised form: `v = pinv(G) sqrt(diag G)`,
/// `w = v / sum(v)` (zeros when `|sum(v)| < 1e-12`).
pub fn imtl_g_weights(g: &[Vec<f64>]) -> Result<Vec<f64>, SolverError> {
    let d: Vec<f64> = (0..g.len()).map(|i| g[i][i].max(0.0).sqrt()).collect();
    let v = pinv_apply(g, &d)?;
    let sum: f64 = v.iter().sum();
    Ok(if sum.abs() < 1e-12 {
        vec![0.0; v.len()]
    } else {
        v.iter().map(|x| x / sum).collect()
    })
}

/// Aligned-MTL (Senushkin et al. 2023), scale mode `min`: `w = B (1/K)` with the balance
/// transformation `B = sqrt(lambda_R) V Sigma^-1 V^T` over the eigenpairs of `G` above
/// `max(lambda) K eps_f32` (TorchJD's cut-off; `lambda_R` the smallest kept), `B = I` at rank 0.
pub fn aligned_mtl_weights(g: &[Vec<f64>]) -> Result<Vec<f64>, SolverError> {
    let k = g.len();
    let (lambda, v) = symmetric_eigen(g)?;
    let max = lambda.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let tol = max * k as f64 * f64::from(f32::EPSILON);
    let kept: Vec<usize> = (0..k).filter(|&i| lambda[i] > tol).collect();
    let u = vec![1.0 / k as f64; k];
    if kept.is_empty() {
        return Ok(u);
    }
    let lmin = kept
        .iter()
        .map(|&i| lambda[i])
        .fold(f64::INFINITY, f64::min);
    let mut w = vec![0.0; k];
    for &e in &kept {
        let proj: f64 = (0..k).map(|i| v[i][e] * u[i]).sum::<f64>() / lambda[e].sqrt();
        for i in 0..k {
            w[i] += lmin.sqrt() * proj * v[i][e];
        }
    }
    Ok(w)
}

/// PCGrad (Yu et al. 2020) in TorchJD's form on the Gramian, with the other tasks visited in
/// index order (deterministic): each `g_i` loses its component along every `g_j` it conflicts
/// with, `w` sums the projected gradients' coefficients.
pub fn pcgrad_ordered_weights(g: &[Vec<f64>]) -> Vec<f64> {
    let k = g.len();
    let mut w = vec![0.0; k];
    for i in 0..k {
        let mut cur = vec![0.0; k];
        cur[i] = 1.0;
        for j in (0..k).filter(|&j| j != i) {
            let ip: f64 = g[j].iter().zip(&cur).map(|(a, b)| a * b).sum();
            if ip < 0.0 && g[j][j] > 0.0 {
                cur[j] -= ip / g[j][j];
            }
        }
        for (a, b) in w.iter_mut().zip(&cur) {
            *a += b;
        }
    }
    w
}

/// ConFIG (Liu et al. 2024) written on the Gramian: with unit rows `u_i = g_i / ||g_i||` (zero
/// rows stay zero) and their cosine matrix `C`, the direction `pinv(U) 1 = sum_i c_i g_i` with
/// `c = pinv(C) 1 / ||g||`; the aggregate is that direction's unit vector times
/// `sum_i g_i . unit`, i.e. `w = c (1^T G c) / (c^T G c)`.
pub fn config_weights(g: &[Vec<f64>]) -> Result<Vec<f64>, SolverError> {
    let k = g.len();
    let n: Vec<f64> = (0..k).map(|i| g[i][i].max(0.0).sqrt()).collect();
    let inv = |i: usize| if n[i] > 0.0 { 1.0 / n[i] } else { 0.0 };
    let cos: Vec<Vec<f64>> = (0..k)
        .map(|i| (0..k).map(|j| g[i][j] * inv(i) * inv(j)).collect())
        .collect();
    let c: Vec<f64> = pinv_apply(&cos, &vec![1.0; k])?
        .iter()
        .enumerate()
        .map(|(i, v)| v * inv(i))
        .collect();
    let dd = quad(g, &c);
    let norm = dd.max(0.0).sqrt().max(1e-12);
    let length: f64 = matvec(g, &c).iter().sum::<f64>() / norm;
    Ok(c.iter().map(|v| v * length / norm).collect())
}

/// FairGrad (Ban & Ji 2024): the `w > 0` with `G w = w^(-1/alpha)` ([`alpha_fair`]); `1/K`
/// for `alpha = 0`.
pub fn fairgrad_weights(g: &[Vec<f64>], alpha: f64) -> Result<Vec<f64>, SolverError> {
    if alpha == 0.0 {
        return Ok(vec![1.0 / g.len() as f64; g.len()]);
    }
    alpha_fair(g, alpha)
}

/// Nash-MTL (Navon et al. 2022) in TorchJD's form: the Nash bargaining weights of the
/// Gramian divided by its Frobenius norm (`G_n alpha = 1 / alpha`, solved exactly here where
/// TorchJD runs its sequence of convex programs to a tolerance of `1e-3`), scaled down so that
/// `||alpha^T J|| <= max_norm` (TorchJD: 1).
pub fn nash_torchjd_weights(g: &[Vec<f64>], max_norm: f64) -> Result<Vec<f64>, SolverError> {
    let fro = g.iter().flatten().map(|v| v * v).sum::<f64>().sqrt();
    if fro == 0.0 {
        return Ok(vec![0.0; g.len()]);
    }
    let gn: Vec<Vec<f64>> = g
        .iter()
        .map(|r| r.iter().map(|v| v / fro).collect())
        .collect();
    let mut a = alpha_fair(&gn, 1.0)?;
    let norm = quad(g, &a).max(0.0).sqrt();
    if max_norm > 0.0 && norm > max_norm {
        a.iter_mut().for_each(|v| *v *= max_norm / norm);
    }
    Ok(a)
}

/// Krum (Blanchard et al. 2017) with `byzantine` adversarial rows, selecting `selected` rows:
/// each row's score sums its distances to its `K - byzantine - 2` nearest other rows; the
/// `selected` lowest scores get weight `1 / selected`. Needs `K >= byzantine + 3`.
pub fn krum_weights(g: &[Vec<f64>], byzantine: usize, selected: usize) -> Result<Vec<f64>, String> {
    let k = g.len();
    if k < byzantine + 3 || selected == 0 || selected > k {
        return Err(format!(
            "krum with {byzantine} Byzantine row(s) needs K >= {} tasks and 1 <= selected <= K; got K = {k}, selected = {selected}",
            byzantine + 3
        ));
    }
    let n_closest = k - byzantine - 2;
    let scores: Vec<f64> = (0..k)
        .map(|i| {
            let mut d: Vec<f64> = (0..k)
                .map(|j| (g[i][i] + g[j][j] - 2.0 * g[i][j]).max(0.0).sqrt())
                .collect();
            d.sort_by(f64::total_cmp);
            d[1..=n_closest].iter().sum()
        })
        .collect();
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut w = vec![0.0; k];
    for &i in &order[..selected] {
        w[i] = 1.0 / selected as f64;
    }
    Ok(w)
}

/// The trimmed mean (Yin et al. 2018): per coordinate, the mean of the `K - 2 trim` middle
/// values of the rows `grads`. Needs `K >= 2 trim + 1`.
pub fn trimmed_mean(grads: &[Vec<f64>], trim: usize) -> Result<Vec<f64>, String> {
    let k = grads.len();
    if k < 2 * trim + 1 {
        return Err(format!(
            "trimmed_mean with trim {trim} needs K >= {} tasks; got K = {k}",
            2 * trim + 1
        ));
    }
    let d = grads.first().map_or(0, |g| g.len());
    let kept = (k - 2 * trim) as f64;
    let mut col = vec![0.0; k];
    Ok((0..d)
        .map(|c| {
            for (v, g) in col.iter_mut().zip(grads) {
                *v = g[c];
            }
            col.sort_by(f64::total_cmp);
            col[trim..k - trim].iter().sum::<f64>() / kept
        })
        .collect())
}

/// GradVac (Wang et al. 2021) as TorchJD 0.18 computes it on the Gramian, with the other tasks
/// visited in index order: for each pair, when the cosine `phi` of the (already corrected)
/// `g_i` with `g_j` is below the pair's EMA target `phi_hat`, `g_i` gains
/// `||g_i|| (phi_hat sqrt(1-phi^2) - phi sqrt(1-phi_hat^2)) / (||g_j|| sqrt(1-phi_hat^2) + eps)`
/// times `g_j`; then `phi_hat <- (1-beta) phi_hat + beta phi`. The targets persist across steps.
#[derive(Clone, Debug)]
pub struct GradVacState {
    /// EMA rate (TorchJD: 0.5).
    pub beta: f64,
    /// Added to the denominators (TorchJD: 1e-8).
    pub eps: f64,
    phi: Vec<Vec<f64>>,
}

impl GradVacState {
    /// Zero targets.
    pub fn new(beta: f64, eps: f64) -> Self {
        GradVacState {
            beta,
            eps,
            phi: Vec::new(),
        }
    }

    /// This step's weights (the sums of the corrected gradients' coefficients).
    pub fn weights(&mut self, g: &[Vec<f64>]) -> Vec<f64> {
        let m = g.len();
        if self.phi.len() != m {
            self.phi = vec![vec![0.0; m]; m];
        }
        let mut total = vec![0.0; m];
        for i in 0..m {
            let mut ci = vec![0.0; m];
            ci[i] = 1.0;
            let mut cg = g[i].clone();
            for j in (0..m).filter(|&j| j != i) {
                let norm_i = cg
                    .iter()
                    .zip(&ci)
                    .map(|(a, b)| a * b)
                    .sum::<f64>()
                    .max(0.0)
                    .sqrt();
                let norm_j = g[j][j].max(0.0).sqrt();
                let phi = cg[j] / (norm_i * norm_j + self.eps);
                let hat = self.phi[i][j];
                if phi < hat {
                    let s_phi = (1.0 - phi * phi).max(0.0).sqrt();
                    let s_hat = (1.0 - hat * hat).max(0.0).sqrt();
                    let w = norm_i * (hat * s_phi - phi * s_hat) / (norm_j * s_hat + self.eps);
                    ci[j] += w;
                    for (a, b) in cg.iter_mut().zip(&g[j]) {
                        *a += w * b;
                    }
                }
                self.phi[i][j] = (1.0 - self.beta) * hat + self.beta * phi;
            }
            for (a, b) in total.iter_mut().zip(&ci) {
                *a += b;
            }
        }
        total
    }
}

/// The Jacobian-descent methods a [`JdMethod`] can run.
#[derive(Clone, Debug)]
pub enum JdKind {
    /// `1/K` each.
    Mean,
    /// UPGrad ([`upgrad_weights`]).
    UpGrad,
    /// DualProj ([`dualproj_weights`]).
    DualProj,
    /// MGDA, TorchJD's Frank-Wolfe ([`mgda_frank_wolfe`], epsilon 1e-3, 100 iterations).
    MgdaTorchjd,
    /// CAGrad, TorchJD's form ([`cagrad_torchjd_weights`]) with radius `c`.
    CaGradTorchjd(f64),
    /// IMTL-G ([`imtl_g_weights`]).
    ImtlG,
    /// Aligned-MTL ([`aligned_mtl_weights`]).
    AlignedMtl,
    /// PCGrad in index order ([`pcgrad_ordered_weights`]).
    PcGradOrdered,
    /// ConFIG ([`config_weights`]).
    Config,
    /// FairGrad ([`fairgrad_weights`]) with its `alpha`.
    FairGrad(f64),
    /// Nash-MTL, TorchJD's form ([`nash_torchjd_weights`]) with `max_norm`.
    NashTorchjd(f64),
    /// Trimmed mean ([`trimmed_mean`]) trimming this many values per side.
    TrimmedMean(usize),
    /// Krum ([`krum_weights`]): (Byzantine rows, selected rows).
    Krum(usize, usize),
    /// GradVac ([`GradVacState`]).
    GradVac(GradVacState),
}

impl JdKind {
    /// The factor applied to TorchJD's weights in training so that the shared update is on the
    /// scale of the summed gradient: `K` for the methods whose output is on the mean's scale
    /// (mean, UPGrad, DualProj, MGDA, CAGrad, IMTL-G, Aligned-MTL, trimmed mean, Krum), 1 for
    /// those already on the sum's scale (PCGrad, ConFIG, GradVac) and for the scale-setting
    /// FairGrad and Nash-MTL.
    pub fn train_scale(&self, k: usize) -> f64 {
        match self {
            JdKind::PcGradOrdered
            | JdKind::Config
            | JdKind::GradVac(_)
            | JdKind::FairGrad(_)
            | JdKind::NashTorchjd(_) => 1.0,
            _ => k as f64,
        }
    }

    /// TorchJD's weights from the Gramian (`None` for the trimmed mean, which has none), or why
    /// they could not be computed.
    pub fn weights(&mut self, g: &[Vec<f64>]) -> Option<Result<Vec<f64>, String>> {
        let k = g.len();
        let e = |r: Result<Vec<f64>, SolverError>| r.map_err(|e| e.to_string());
        Some(match self {
            JdKind::Mean => Ok(vec![1.0 / k as f64; k]),
            JdKind::UpGrad => e(upgrad_weights(g)),
            JdKind::DualProj => e(dualproj_weights(g)),
            JdKind::MgdaTorchjd => Ok(mgda_frank_wolfe(g, 1e-3, 100)),
            JdKind::CaGradTorchjd(c) => e(cagrad_torchjd_weights(g, *c)),
            JdKind::ImtlG => e(imtl_g_weights(g)),
            JdKind::AlignedMtl => e(aligned_mtl_weights(g)),
            JdKind::PcGradOrdered => Ok(pcgrad_ordered_weights(g)),
            JdKind::Config => e(config_weights(g)),
            JdKind::FairGrad(a) => e(fairgrad_weights(g, *a)),
            JdKind::NashTorchjd(m) => e(nash_torchjd_weights(g, *m)),
            JdKind::Krum(b, s) => krum_weights(g, *b, *s),
            JdKind::GradVac(state) => Ok(state.weights(g)),
            JdKind::TrimmedMean(_) => return None,
        })
    }

    /// TorchJD's aggregate `w^T J` (or the trimmed mean) of the rows `grads`, with the weights
    /// when the method has them.
    pub fn aggregate(
        &mut self,
        grads: &[Vec<f64>],
        g: &[Vec<f64>],
    ) -> Result<(Vec<f64>, Option<Vec<f64>>), String> {
        match self.weights(g) {
            Some(w) => {
                let w = w?;
                Ok((weighted_sum(grads, &w), Some(w)))
            }
            None => match self {
                JdKind::TrimmedMean(trim) => Ok((trimmed_mean(grads, *trim)?, None)),
                _ => unreachable!("only the trimmed mean has no weights"),
            },
        }
    }
}

/// A [`JdKind`] as a training [`Weighting`]: the shared update is `train_scale * w^T J`, heads
/// get their own unweighted gradients; a failed solve (or a non-finite result) falls back to
/// the mean direction on the same scale (every weight 1) and says so in
/// [`Combined::fallback`].
#[derive(Clone, Debug)]
pub struct JdMethod {
    name: &'static str,
    kind: JdKind,
}

impl JdMethod {
    /// The method `kind` under its config name `name`.
    pub fn new(name: &'static str, kind: JdKind) -> Self {
        JdMethod { name, kind }
    }
}

impl Weighting for JdMethod {
    fn name(&self) -> &'static str {
        self.name
    }
    fn needs_grads(&self) -> bool {
        true
    }
    fn combine(&mut self, info: &StepInfo<'_>) -> Combined {
        let grads = info.grads(self.name);
        let g = info.gramian(self.name);
        let k = grads.len();
        let scale = self.kind.train_scale(k);
        let ones = vec![1.0; k];
        match self.kind.aggregate(grads, &g) {
            Ok((d, _)) if d.iter().all(|v| v.is_finite()) => Combined {
                weights: ones,
                shared: Some(d.iter().map(|v| v * scale).collect()),
                fallback: None,
            },
            Ok(_) => Combined::mean_fallback(k, format!("{}: non-finite direction", self.name)),
            Err(why) => Combined::mean_fallback(k, format!("{}: {why}", self.name)),
        }
    }
}

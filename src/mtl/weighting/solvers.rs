//! Short exact solvers for the small problems of the Gramian weightings (`K x K`, `K` = number
//! of tasks): a nonnegative QP (Lawson-Hanson active set, for UPGrad / DualProj), a QP on the
//! simplex (exact search over supports, for CAGrad's inner problem), the alpha-fair equation
//! `G x = x^(-1/alpha)` (damped Newton, for Nash-MTL and FairGrad), and a symmetric
//! eigendecomposition (cyclic Jacobi, for the pseudo-inverses of IMTL-G / ConFIG and the
//! balance transformation of Aligned-MTL).
//!
//! A solver that does not converge returns a [`SolverError`] saying which and after how many
//! iterations; the weighting then falls back to the mean (see [`super::Combined::fallback`]).

use crate::tensor::linalg::solve_f64;

/// A solver that stopped without meeting its optimality test.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{solver}: did not converge after {iterations} iterations ({why})")]
pub struct SolverError {
    /// The solver (`nonneg_qp`, `simplex_qp`, `alpha_fair`, `jacobi_eigen`).
    pub solver: &'static str,
    /// Iterations done.
    pub iterations: usize,
    /// What was left unmet.
    pub why: String,
}

/// The smallest pivot the dense solves accept.
const MIN_PIVOT: f64 = 1e-300;

fn matvec(g: &[Vec<f64>], x: &[f64]) -> Vec<f64> {
    g.iter()
        .map(|row| row.iter().zip(x).map(|(a, b)| a * b).sum())
        .collect()
}

fn quad(g: &[Vec<f64>], x: &[f64]) -> f64 {
    matvec(g, x).iter().zip(x).map(|(a, b)| a * b).sum()
}

/// Solves `G_SS z = rhs_S` on the index set `s` (row-major dense solve).
fn solve_sub(g: &[Vec<f64>], s: &[usize], rhs: &[f64]) -> Option<Vec<f64>> {
    let k = s.len();
    let a: Vec<f64> = s
        .iter()
        .flat_map(|&i| s.iter().map(move |&j| g[i][j]))
        .collect();
    let b: Vec<f64> = s.iter().map(|&i| rhs[i]).collect();
    solve_f64(&a, k, &b, MIN_PIVOT).filter(|z| z.iter().all(|v| v.is_finite()))
}

/// `argmin_{x >= 0} x^T G x / 2 + q^T x` for a positive definite `G` (Lawson-Hanson active set,
/// exact up to rounding): the KKT conditions `G x + q >= 0`, `x >= 0`, complementarity hold to
/// `1e-12` of the problem's scale on return.
pub fn nonneg_qp(g: &[Vec<f64>], q: &[f64]) -> Result<Vec<f64>, SolverError> {
    let n = q.len();
    let scale = g.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()))
        + q.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let tol = 1e-12 * scale.max(f64::MIN_POSITIVE);
    let mut x = vec![0.0; n];
    let mut passive = vec![false; n];
    let max_outer = 3 * n + 30;
    for outer in 0..max_outer {
        let grad: Vec<f64> = matvec(g, &x).iter().zip(q).map(|(a, b)| a + b).collect();
        let Some(j) = (0..n)
            .filter(|&j| !passive[j] && grad[j] < -tol)
            .min_by(|&a, &b| grad[a].total_cmp(&grad[b]))
        else {
            return Ok(x);
        };
        passive[j] = true;
        for _ in 0..=n {
            let s: Vec<usize> = (0..n).filter(|&i| passive[i]).collect();
            let minus_q: Vec<f64> = q.iter().map(|v| -v).collect();
            let Some(zs) = solve_sub(g, &s, &minus_q) else {
                return Err(SolverError {
                    solver: "nonneg_qp",
                    iterations: outer,
                    why: "singular Gramian block".into(),
                });
            };
            let mut z = vec![0.0; n];
            for (&i, v) in s.iter().zip(&zs) {
                z[i] = *v;
            }
            if s.iter().all(|&i| z[i] > 0.0) {
                x = z;
                break;
            }
            // Step from x towards z until the first passive coordinate hits 0; it leaves.
            let (hit, step) = s
                .iter()
                .filter(|&&i| z[i] <= 0.0)
                .map(|&i| (i, x[i] / (x[i] - z[i])))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .expect("a nonpositive passive coordinate");
            for i in 0..n {
                x[i] += step * (z[i] - x[i]);
                if passive[i] && (i == hit || x[i] <= 0.0) {
                    x[i] = 0.0;
                    passive[i] = false;
                }
            }
        }
    }
    Err(SolverError {
        solver: "nonneg_qp",
        iterations: max_outer,
        why: "KKT conditions not met".into(),
    })
}

/// The weights `v` of the projection of `J^T u` onto the dual cone of the rows of `J`, from the
/// Gramian `G = J J^T`: `argmin_{v >= u} v^T G v` (Quinton & Rey 2024, Proposition 1), solved as
/// `v = u + x` with `x = argmin_{x >= 0} x^T G x / 2 + (G u)^T x` ([`nonneg_qp`]).
pub fn project_weights(u: &[f64], g: &[Vec<f64>]) -> Result<Vec<f64>, SolverError> {
    let gu = matvec(g, u);
    let x = nonneg_qp(g, &gu)?;
    Ok(u.iter().zip(&x).map(|(a, b)| a + b).collect())
}

/// `argmin_{w >= 0, sum w = 1} w^T P w / 2 + c^T w` for a positive semidefinite `P`: the best
/// feasible stationary point of the KKT system over every support (exact, up to 12 tasks).
pub fn simplex_qp(p: &[Vec<f64>], c: &[f64]) -> Result<Vec<f64>, SolverError> {
    let t = c.len();
    if t == 1 {
        return Ok(vec![1.0]);
    }
    if t > 12 {
        return Err(SolverError {
            solver: "simplex_qp",
            iterations: 0,
            why: format!("{t} tasks: the exact support search handles at most 12"),
        });
    }
    let value = |w: &[f64]| 0.5 * quad(p, w) + w.iter().zip(c).map(|(a, b)| a * b).sum::<f64>();
    let mut best: Option<(f64, Vec<f64>)> = None;
    for mask in 1u32..(1 << t) {
        let s: Vec<usize> = (0..t).filter(|&i| mask & (1 << i) != 0).collect();
        let k = s.len();
        // [P_SS, -1; 1^T, 0] [w; mu] = [-c_S; 1]
        let mut a = vec![0.0; (k + 1) * (k + 1)];
        for (r, &i) in s.iter().enumerate() {
            for (col, &j) in s.iter().enumerate() {
                a[r * (k + 1) + col] = p[i][j];
            }
            a[r * (k + 1) + k] = -1.0;
            a[k * (k + 1) + r] = 1.0;
        }
        let mut b: Vec<f64> = s.iter().map(|&i| -c[i]).collect();
        b.push(1.0);
        let Some(x) = solve_f64(&a, k + 1, &b, MIN_PIVOT) else {
            continue;
        };
        if x[..k].iter().any(|v| !v.is_finite() || *v < -1e-12) {
            continue;
        }
        let mut w = vec![0.0; t];
        for (r, &i) in s.iter().enumerate() {
            w[i] = x[r].max(0.0);
        }
        let sum: f64 = w.iter().sum();
        w.iter_mut().for_each(|v| *v /= sum);
        let val = value(&w);
        if best.as_ref().is_none_or(|(bv, _)| val < *bv) {
            best = Some((val, w));
        }
    }
    best.map(|(_, w)| w).ok_or_else(|| SolverError {
        solver: "simplex_qp",
        iterations: 1 << t,
        why: "no support gave a feasible stationary point".into(),
    })
}

/// Minimises a convex function on `[lo, hi]` by golden-section search (`iters` shrinks).
pub fn golden_min(f: impl Fn(f64) -> f64, lo: f64, hi: f64, iters: usize) -> f64 {
    let r = (5f64.sqrt() - 1.0) / 2.0;
    let (mut a, mut b) = (lo, hi);
    let mut c = b - r * (b - a);
    let mut d = a + r * (b - a);
    let (mut fc, mut fd) = (f(c), f(d));
    for _ in 0..iters {
        if fc < fd {
            (b, d, fd) = (d, c, fc);
            c = b - r * (b - a);
            fc = f(c);
        } else {
            (a, c, fc) = (c, d, fd);
            d = a + r * (b - a);
            fd = f(d);
        }
    }
    0.5 * (a + b)
}

/// The `x > 0` with `G x = x^(-1/alpha)` elementwise (the alpha-fair weights of FairGrad; with
/// `alpha = 1`, `G x = 1 / x`, the Nash bargaining weights of Nash-MTL).
///
/// The equation is solved on the normalised `G' = G / c + 1e-10 I`, `c = trace(G) / K` (the
/// ridge keeps `G'` definite when gradients are collinear), whose root `y` gives
/// `x = c^(-alpha / (alpha + 1)) y`. `y` minimises the strictly convex
/// `y^T G' y / 2 + sum_i h(y_i)` with `h'(y) = -y^(-1/alpha)`: damped Newton steps from
/// `y_i = G'_ii^(-alpha / (alpha + 1))`, a step accepted when it decreases the objective
/// (Armijo) or halves the residual (near the root, where the objective's change is below
/// rounding). Converged when `||G' y - y^(-1/alpha)|| <= 1e-12 sum_i (sum_j |G'_ij y_j| +
/// y_i^(-1/alpha))`; an error after 100 steps or a stalled line search.
pub fn alpha_fair(g: &[Vec<f64>], alpha: f64) -> Result<Vec<f64>, SolverError> {
    let t = g.len();
    let c = ((0..t).map(|i| g[i][i]).sum::<f64>() / t as f64).max(1e-300);
    let gm: Vec<Vec<f64>> = (0..t)
        .map(|i| {
            (0..t)
                .map(|j| g[i][j] / c + if i == j { 1e-10 } else { 0.0 })
                .collect()
        })
        .collect();
    let problem = AlphaFair {
        gm: &gm,
        p: 1.0 / alpha,
    };
    let mut y: Vec<f64> = (0..t)
        .map(|i| gm[i][i].powf(-alpha / (alpha + 1.0)))
        .collect();
    let max_iters = 100;
    for it in 0..max_iters {
        let (grad, res, scale) = problem.residual(&y);
        if res <= 1e-12 * scale {
            let back = c.powf(-alpha / (alpha + 1.0));
            return Ok(y.iter().map(|v| v * back).collect());
        }
        let fail = |why: String| SolverError {
            solver: "alpha_fair",
            iterations: it,
            why,
        };
        let dir = problem
            .newton_direction(&y, &grad)
            .ok_or_else(|| fail("singular Newton system".into()))?;
        y = problem
            .line_search(&y, &dir, &grad, res)
            .ok_or_else(|| fail(format!("line search stalled at residual {res:.3e}")))?;
    }
    Err(SolverError {
        solver: "alpha_fair",
        iterations: max_iters,
        why: "Newton's method did not reach the residual tolerance".into(),
    })
}

/// The normalised problem of [`alpha_fair`]: `G' y = y^-p` with `p = 1 / alpha`.
struct AlphaFair<'a> {
    gm: &'a [Vec<f64>],
    p: f64,
}

impl AlphaFair<'_> {
    /// The objective `y^T G' y / 2 + sum_i h(y_i)`, `h(y) = -ln y` (`p = 1`) or
    /// `-y^(1-p) / (1-p)`.
    fn objective(&self, y: &[f64]) -> f64 {
        let p = self.p;
        let h = |v: f64| {
            if (p - 1.0).abs() < 1e-15 {
                -v.ln()
            } else {
                -v.powf(1.0 - p) / (1.0 - p)
            }
        };
        0.5 * quad(self.gm, y) + y.iter().map(|&v| h(v)).sum::<f64>()
    }

    /// The objective's gradient `G' y - y^-p`, its norm, and the scale the norm is compared
    /// with, `sum_i (sum_j |G'_ij y_j| + y_i^-p)`.
    fn residual(&self, y: &[f64]) -> (Vec<f64>, f64, f64) {
        let gy = matvec(self.gm, y);
        let grad: Vec<f64> = gy.iter().zip(y).map(|(a, v)| a - v.powf(-self.p)).collect();
        let scale: f64 = self
            .gm
            .iter()
            .zip(y)
            .map(|(row, v)| {
                row.iter().zip(y).map(|(a, b)| (a * b).abs()).sum::<f64>() + v.powf(-self.p)
            })
            .sum();
        let res = grad.iter().map(|v| v * v).sum::<f64>().sqrt();
        (grad, res, scale)
    }

    /// The Newton step `-H^-1 grad`, `H = G' + diag(p y^(-p-1))`.
    fn newton_direction(&self, y: &[f64], grad: &[f64]) -> Option<Vec<f64>> {
        let t = y.len();
        let hess: Vec<f64> = (0..t * t)
            .map(|ij| {
                let (i, j) = (ij / t, ij % t);
                let diag = if i == j {
                    self.p * y[i].powf(-self.p - 1.0)
                } else {
                    0.0
                };
                self.gm[i][j] + diag
            })
            .collect();
        let minus: Vec<f64> = grad.iter().map(|v| -v).collect();
        solve_f64(&hess, t, &minus, MIN_PIVOT)
    }

    /// The first of the steps `y + s dir`, `s = 1, 1/2, 1/4, ...`, that stays positive and
    /// decreases the objective by a quarter of the Newton decrement (Armijo) or halves the
    /// residual `res`; `None` when `s` falls below `1e-14`.
    fn line_search(&self, y: &[f64], dir: &[f64], grad: &[f64], res: f64) -> Option<Vec<f64>> {
        let dec: f64 = -grad.iter().zip(dir).map(|(a, b)| a * b).sum::<f64>();
        let f0 = self.objective(y);
        let mut s = 1.0;
        while s >= 1e-14 {
            let cand: Vec<f64> = y.iter().zip(dir).map(|(a, d)| a + s * d).collect();
            if cand.iter().all(|&v| v > 0.0)
                && (self.objective(&cand) <= f0 - 0.25 * s * dec
                    || self.residual(&cand).1 <= 0.5 * res)
            {
                return Some(cand);
            }
            s *= 0.5;
        }
        None
    }
}

/// The eigenvalues and eigenvectors (columns of `v`, `v[row][col]`) of a symmetric matrix by
/// cyclic Jacobi rotations, to full precision.
pub fn symmetric_eigen(a: &[Vec<f64>]) -> Result<(Vec<f64>, Vec<Vec<f64>>), SolverError> {
    let n = a.len();
    let mut m: Vec<Vec<f64>> = a.to_vec();
    let mut v: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| f64::from(u8::from(i == j))).collect())
        .collect();
    let total: f64 = m.iter().flatten().map(|x| x * x).sum();
    for sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).map(move |j| (i, j)))
            .filter(|(i, j)| i != j)
            .map(|(i, j)| m[i][j] * m[i][j])
            .sum();
        if off <= 1e-30 * total || off == 0.0 {
            return Ok(((0..n).map(|i| m[i][i]).collect(), v));
        }
        for p in 0..n {
            for q in p + 1..n {
                if m[p][q] == 0.0 {
                    continue;
                }
                let theta = (m[q][q] - m[p][p]) / (2.0 * m[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for row in m.iter_mut() {
                    let (mkp, mkq) = (row[p], row[q]);
                    row[p] = c * mkp - s * mkq;
                    row[q] = s * mkp + c * mkq;
                }
                let (lo, hi) = m.split_at_mut(q);
                for (a, b) in lo[p].iter_mut().zip(hi[0].iter_mut()) {
                    let (mpk, mqk) = (*a, *b);
                    *a = c * mpk - s * mqk;
                    *b = s * mpk + c * mqk;
                }
                // The rotation zeroes this pair; drop its rounding residue.
                m[p][q] = 0.0;
                m[q][p] = 0.0;
                for row in v.iter_mut() {
                    let (vp, vq) = (row[p], row[q]);
                    row[p] = c * vp - s * vq;
                    row[q] = s * vp + c * vq;
                }
            }
        }
        if sweep == 99 {
            break;
        }
    }
    Err(SolverError {
        solver: "jacobi_eigen",
        iterations: 100,
        why: "off-diagonal mass did not vanish".into(),
    })
}

/// `pinv(A) b` for a symmetric matrix `A`, dropping eigenvalues with `|lambda| <= rtol max |lambda|`
/// (`rtol = K * f64::EPSILON`, the default cut-off of `torch.linalg.pinv`).
pub fn pinv_apply(a: &[Vec<f64>], b: &[f64]) -> Result<Vec<f64>, SolverError> {
    let n = a.len();
    let (lambda, v) = symmetric_eigen(a)?;
    let max = lambda.iter().fold(0.0f64, |m, l| m.max(l.abs()));
    let cut = n as f64 * f64::EPSILON * max;
    let mut out = vec![0.0; n];
    for k in 0..n {
        if lambda[k].abs() <= cut || max == 0.0 {
            continue;
        }
        let proj: f64 = (0..n).map(|i| v[i][k] * b[i]).sum::<f64>() / lambda[k];
        for i in 0..n {
            out[i] += proj * v[i][k];
        }
    }
    Ok(out)
}

//! LibMTL's loss-scale methods that this crate lacked: GLS, IMTL-L, STCH, FAMO (loss
//! weightings: one backward pass of `sum_i w_i L_i`), DB-MTL and ExcessMTL (on the per-task
//! gradients). Each follows LibMTL's implementation; where LibMTL's total loss is on the mean's
//! scale the weights here are `K` times LibMTL's, so that learning rates carry over from
//! `equal` (documented per method). LibMTL's gradient-manipulation methods GradDrop, MoCo, MoDo
//! and SDMGrad are in [`super::libmtl_grad`].

use super::{Combined, StepInfo, Weighting};

/// The geometric loss strategy (GLS, Chennupati et al. 2019): the loss is the geometric mean
/// `GM = (prod_i L_i)^(1/K)`, whose gradient weights task `i` by `GM / (K L_i)`; returned here
/// times `K`, `w_i = GM / L_i` (losses floored at `1e-12`).
#[derive(Clone, Debug, Default)]
pub struct Gls;

impl Gls {
    /// The weights for `losses`.
    pub fn weights(losses: &[f64]) -> Vec<f64> {
        let k = losses.len() as f64;
        let l: Vec<f64> = losses.iter().map(|v| v.max(1e-12)).collect();
        let gm = (l.iter().map(|v| v.ln()).sum::<f64>() / k).exp();
        l.iter().map(|v| gm / v).collect()
    }
}

impl Weighting for Gls {
    fn name(&self) -> &'static str {
        "gls"
    }
    fn combine(&mut self, info: &StepInfo<'_>) -> Combined {
        Combined::weights(Gls::weights(info.losses))
    }
}

/// IMTL-L, the loss part of impartial multi-task learning (Liu et al. 2021): learnable scales
/// `s_i` (initially 0), loss `sum_i e^(s_i) L_i - s_i`. Each step returns `w_i = e^(s_i)` and
/// then takes a gradient step of rate `lr` on `s`: `d/ds_i = e^(s_i) L_i - 1`, whose fixed point
/// `e^(s_i) L_i = 1` makes every scaled loss equal.
#[derive(Clone, Debug)]
pub struct ImtlL {
    /// The log-scales `s`.
    pub scale: Vec<f64>,
    lr: f64,
}

impl ImtlL {
    /// Scales 0 for `tasks` tasks, learning rate `lr`.
    pub fn new(tasks: usize, lr: f64) -> Self {
        ImtlL {
            scale: vec![0.0; tasks],
            lr,
        }
    }
}

impl Weighting for ImtlL {
    fn name(&self) -> &'static str {
        "imtl_l"
    }
    fn combine(&mut self, info: &StepInfo<'_>) -> Combined {
        let w: Vec<f64> = self.scale.iter().map(|s| s.exp()).collect();
        for ((s, &l), &wi) in self.scale.iter_mut().zip(info.losses).zip(&w) {
            *s -= self.lr * (wi * l - 1.0);
        }
        Combined::weights(w)
    }
}

/// Smooth Tchebycheff scalarisation (STCH, Lin et al. 2024) as LibMTL runs it: during the
/// first `warmup` epochs the loss is `sum_i ln L_i` (weights `1 / L_i`), and the mean losses of
/// epoch `warmup` become the nadir point `z`; afterwards the loss is
/// `K mu ln sum_i exp(ln(L_i / z_i) / mu)`, i.e. weights `w_i = K softmax_i(ln(L_i/z_i) / mu) / L_i`.
#[derive(Clone, Debug)]
pub struct Stch {
    mu: f64,
    warmup: usize,
    sum: Vec<f64>,
    count: usize,
    /// The nadir point, once fixed.
    pub nadir: Option<Vec<f64>>,
}

impl Stch {
    /// STCH with smoothing `mu` (LibMTL: 1) after `warmup` epochs (epochs count from 0).
    pub fn new(mu: f64, warmup: usize) -> Self {
        Stch {
            mu,
            warmup,
            sum: Vec::new(),
            count: 0,
            nadir: None,
        }
    }
}

impl Weighting for Stch {
    fn name(&self) -> &'static str {
        "stch"
    }
    fn combine(&mut self, info: &StepInfo<'_>) -> Combined {
        let l: Vec<f64> = info.losses.iter().map(|v| v.max(1e-20)).collect();
        if info.epoch <= self.warmup && self.nadir.is_none() {
            if info.epoch == self.warmup {
                self.sum.resize(l.len(), 0.0);
                for (s, v) in self.sum.iter_mut().zip(&l) {
                    *s += v;
                }
                self.count += 1;
            }
            return Combined::weights(l.iter().map(|v| 1.0 / v).collect());
        }
        let count = self.count.max(1) as f64;
        let sum = &self.sum;
        let nadir = self.nadir.get_or_insert_with(|| {
            if sum.len() == l.len() {
                sum.iter().map(|s| (s / count).max(1e-20)).collect()
            } else {
                vec![1.0; l.len()]
            }
        });
        let z: Vec<f64> = l
            .iter()
            .zip(nadir.iter())
            .map(|(v, n)| (v / n + 1e-20).ln() / self.mu)
            .collect();
        let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
        let s: f64 = e.iter().sum();
        let k = l.len() as f64;
        Combined::weights(e.iter().zip(&l).map(|(x, v)| k * x / s / v).collect())
    }
}

/// DB-MTL (dual-balancing, Lin et al. 2023) as LibMTL runs it: the gradients of the log losses
/// `b_i = g_i / (L_i + 1e-8)` are averaged over steps,
/// `h_i <- b_i + beta / t^sigma (h_i - b_i)` (`t` the 1-based step, `h` initially 0), and the
/// shared update is `sum_i (max_j ||h_j|| / (||h_i|| + 1e-8)) h_i`: every task's averaged
/// gradient scaled up to the largest norm. Heads get the gradients of the log losses.
#[derive(Clone, Debug)]
pub struct DbMtl {
    beta: f64,
    sigma: f64,
    step: u64,
    buffer: Vec<Vec<f64>>,
}

impl DbMtl {
    /// DB-MTL with EMA rate `beta` (LibMTL: 0.9) and its decay exponent `sigma` (LibMTL: 0).
    pub fn new(beta: f64, sigma: f64) -> Self {
        DbMtl {
            beta,
            sigma,
            step: 0,
            buffer: Vec::new(),
        }
    }
}

impl Weighting for DbMtl {
    fn name(&self) -> &'static str {
        "db_mtl"
    }
    fn needs_grads(&self) -> bool {
        true
    }
    fn combine(&mut self, info: &StepInfo<'_>) -> Combined {
        let grads = info.grads("db_mtl");
        self.step += 1;
        let rate = self.beta / (self.step as f64).powf(self.sigma);
        if self.buffer.len() != grads.len() {
            self.buffer = grads.iter().map(|g| vec![0.0; g.len()]).collect();
        }
        let inv: Vec<f64> = info.losses.iter().map(|l| 1.0 / (l + 1e-8)).collect();
        for ((h, g), s) in self.buffer.iter_mut().zip(grads).zip(&inv) {
            for (hv, gv) in h.iter_mut().zip(g) {
                let b = gv * s;
                *hv = b + rate * (*hv - b);
            }
        }
        let norms: Vec<f64> = self
            .buffer
            .iter()
            .map(|h| h.iter().map(|v| v * v).sum::<f64>().sqrt())
            .collect();
        let max = norms.iter().copied().fold(0.0, f64::max);
        let alpha: Vec<f64> = norms.iter().map(|n| max / (n + 1e-8)).collect();
        Combined {
            weights: inv,
            shared: Some(super::weighted_sum(&self.buffer, &alpha)),
            fallback: None,
        }
    }
}

/// FAMO (fast adaptive multitask optimization, Liu et al. 2023), as LibMTL runs it. Logits
/// `xi` (initially 0) give `z = softmax(xi)`; with `D_i = L_i + 1e-8` (LibMTL's minimum losses
/// stay 0; losses are floored at 0 here) the loss is `sum_i z_i ln D_i / c`,
/// `c = sum_j z_j / D_j`, whose gradient weights task `i` by `z_i / (c D_i)` (weights summing
/// to 1); returned here times `K`, `w_i = K z_i / (c D_i)`.
///
/// After the optimizer step the same batch's losses `L'` at the new parameters
/// ([`Weighting::after_step`]; LibMTL's trainer recomputes them the same way) give the
/// improvement of the log losses `delta_i = ln D_i - ln D'_i`, and the logits take one Adam step
/// (LibMTL's `torch.optim.Adam`: betas 0.9 / 0.999, eps 1e-8, L2 weight decay `w_gamma`, rate
/// `w_lr`) on the gradient `d = J_softmax(xi)^T delta`, `d_i = z_i (delta_i - z . delta)`: a
/// task whose log loss fell faster than the weighted average loses weight. LibMTL's defaults:
/// `w_lr = 0.025`, `w_gamma = 0.001`. New losses that are not finite leave the logits as they
/// are.
#[derive(Clone, Debug)]
pub struct Famo {
    lr: f64,
    decay: f64,
    /// The logits `xi` (empty before the first step).
    pub logits: Vec<f64>,
    m: Vec<f64>,
    v: Vec<f64>,
    t: i32,
    prev: Option<Vec<f64>>,
}

impl Famo {
    /// FAMO with the logits' Adam rate `w_lr` and weight decay `w_gamma`.
    pub fn new(w_lr: f64, w_gamma: f64) -> Self {
        Famo {
            lr: w_lr,
            decay: w_gamma,
            logits: Vec::new(),
            m: Vec::new(),
            v: Vec::new(),
            t: 0,
            prev: None,
        }
    }

    /// `softmax(xi)`.
    fn z(&self) -> Vec<f64> {
        super::softmax(&self.logits)
    }

    /// `D = max(L, 0) + 1e-8`.
    fn shifted(losses: &[f64]) -> Vec<f64> {
        losses.iter().map(|l| l.max(0.0) + 1e-8).collect()
    }
}

impl Weighting for Famo {
    fn name(&self) -> &'static str {
        "famo"
    }
    fn combine(&mut self, info: &StepInfo<'_>) -> Combined {
        let k = info.losses.len();
        if self.logits.len() != k {
            self.logits = vec![0.0; k];
            self.m = vec![0.0; k];
            self.v = vec![0.0; k];
            self.t = 0;
        }
        let z = self.z();
        let d = Self::shifted(info.losses);
        let c: f64 = z.iter().zip(&d).map(|(z, d)| z / d).sum();
        let w = z
            .iter()
            .zip(&d)
            .map(|(z, d)| k as f64 * z / (c * d))
            .collect();
        self.prev = Some(d);
        Combined::weights(w)
    }
    fn needs_losses_after_step(&self) -> bool {
        true
    }
    fn after_step(&mut self, new_losses: &[f64]) {
        let Some(prev) = self.prev.take() else {
            return;
        };
        if prev.len() != self.logits.len() || !new_losses.iter().all(|l| l.is_finite()) {
            return;
        }
        let z = self.z();
        let delta: Vec<f64> = prev
            .iter()
            .zip(Self::shifted(new_losses))
            .map(|(p, n)| p.ln() - n.ln())
            .collect();
        let zd: f64 = z.iter().zip(&delta).map(|(z, d)| z * d).sum();
        self.t += 1;
        let (b1, b2) = (0.9f64, 0.999f64);
        let (c1, c2) = (1.0 - b1.powi(self.t), 1.0 - b2.powi(self.t));
        for i in 0..self.logits.len() {
            let g = z[i] * (delta[i] - zd) + self.decay * self.logits[i];
            self.m[i] = b1 * self.m[i] + (1.0 - b1) * g;
            self.v[i] = b2 * self.v[i] + (1.0 - b2) * g * g;
            self.logits[i] -= self.lr * (self.m[i] / c1) / ((self.v[i] / c2).sqrt() + 1e-8);
        }
    }
}

/// ExcessMTL (He et al. 2024, "Robust Multi-Task Learning with Excess Risks"), as LibMTL runs
/// it. Each task's squared gradients are summed over the steps, `S_i += g_i^2` (element-wise),
/// and its excess risk is estimated by the AdaGrad-preconditioned squared norm
/// `e_i = sum_j g_ij^2 / sqrt(S_ij + 1e-7)`. The first step's estimates `e^0` are the reference
/// and leave the weights at 1; afterwards the weights take a multiplicative step
/// `w_i <- w_i exp(robust_step_size e_i / e^0_i)` and are renormalised to sum to `K` (LibMTL's
/// total is the sum `sum_i w_i L_i`, so no rescaling). LibMTL's default:
/// `robust_step_size = 0.01`. Heads get `w_i` too. With `gramian = "representation"` the
/// gradients are the representation's per example (LibMTL sums them over the batch first).
/// Deviation: while a reference estimate is 0 (a task whose gradients have been zero), the
/// current estimates replace the reference and the weights stay (LibMTL would divide by 0);
/// weights that would still not be finite are not taken: the step uses the mean direction and
/// the weights stay.
#[derive(Clone, Debug)]
pub struct ExcessMtl {
    step_size: f64,
    /// The loss weights `w` (empty before the first step).
    pub loss_weight: Vec<f64>,
    grad_sum: Vec<Vec<f64>>,
    initial: Option<Vec<f64>>,
}

impl ExcessMtl {
    /// ExcessMTL with the weights' step size `robust_step_size`.
    pub fn new(robust_step_size: f64) -> Self {
        ExcessMtl {
            step_size: robust_step_size,
            loss_weight: Vec::new(),
            grad_sum: Vec::new(),
            initial: None,
        }
    }
}

impl Weighting for ExcessMtl {
    fn name(&self) -> &'static str {
        "excess_mtl"
    }
    fn needs_grads(&self) -> bool {
        true
    }
    fn combine(&mut self, info: &StepInfo<'_>) -> Combined {
        let grads = info.grads("excess_mtl");
        let k = grads.len();
        if self.grad_sum.len() != k
            || self
                .grad_sum
                .iter()
                .zip(grads)
                .any(|(s, g)| s.len() != g.len())
        {
            self.grad_sum = grads.iter().map(|g| vec![0.0; g.len()]).collect();
            self.loss_weight = vec![1.0; k];
            self.initial = None;
        }
        let e: Vec<f64> = self
            .grad_sum
            .iter_mut()
            .zip(grads)
            .map(|(s, g)| {
                s.iter_mut()
                    .zip(g)
                    .map(|(sv, gv)| {
                        *sv += gv * gv;
                        gv * gv / (*sv + 1e-7).sqrt()
                    })
                    .sum()
            })
            .collect();
        let usable = |e0: &&Vec<f64>| e0.iter().all(|v| v.is_finite() && *v > 0.0);
        let Some(initial) = self.initial.as_ref().filter(usable) else {
            self.initial = Some(e);
            return Combined::weights(self.loss_weight.clone());
        };
        let raised: Vec<f64> = self
            .loss_weight
            .iter()
            .zip(e.iter().zip(initial))
            .map(|(w, (e, e0))| w * (self.step_size * e / e0).exp())
            .collect();
        let total: f64 = raised.iter().sum();
        let next: Vec<f64> = raised.iter().map(|w| w / total * k as f64).collect();
        if !next.iter().all(|w| w.is_finite()) {
            return Combined::mean_fallback(
                k,
                "excess_mtl: non-finite loss weights (a zero first-step gradient?); \
                 used the mean direction"
                    .to_string(),
            );
        }
        self.loss_weight = next;
        Combined::weights(self.loss_weight.clone())
    }
}

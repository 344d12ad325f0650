//! LibMTL's loss-scale methods that this crate lacked: GLS, IMTL-L, STCH (loss weightings: one
//! backward pass of `sum_i w_i L_i`) and DB-MTL (on the per-task gradients). Each follows
//! LibMTL's implementation; where LibMTL's total loss is on the mean's scale the weights here
//! are `K` times LibMTL's, so that learning rates carry over from `equal` (documented per
//! method).

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

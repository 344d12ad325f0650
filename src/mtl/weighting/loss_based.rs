//! Methods that only look at the losses: equal, uncertainty, DWA, random loss weighting.

use super::{Combined, StepInfo, Weighting};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// `L = sum_i L_i`: every weight is 1.
#[derive(Clone, Debug)]
pub struct Equal {
    tasks: usize,
}

impl Equal {
    /// Equal weighting of `tasks` tasks.
    pub fn new(tasks: usize) -> Self {
        Equal { tasks }
    }
}

impl Weighting for Equal {
    fn name(&self) -> &'static str {
        "equal"
    }
    fn combine(&mut self, info: &StepInfo<'_>) -> Combined {
        debug_assert_eq!(info.losses.len(), self.tasks);
        Combined::weights(vec![1.0; info.losses.len()])
    }
}

/// Homoscedastic uncertainty weighting (Kendall, Gal & Cipolla 2018):
/// `L = sum_i 0.5 exp(-s_i) L_i + 0.5 s_i` with learnable log-variances `s_i = log sigma_i^2`
/// (initially 0). Each step returns `w_i = 0.5 exp(-s_i)` and then takes a gradient step of
/// rate `lr` on `s`: `dL/ds_i = 0.5 - 0.5 exp(-s_i) L_i`, whose fixed point is `s_i = log L_i`.
#[derive(Clone, Debug)]
pub struct Uncertainty {
    /// The log-variances.
    pub log_var: Vec<f64>,
    lr: f64,
}

impl Uncertainty {
    /// Log-variances 0 for `tasks` tasks, updated with learning rate `lr`.
    pub fn new(tasks: usize, lr: f64) -> Self {
        Uncertainty {
            log_var: vec![0.0; tasks],
            lr,
        }
    }
}

impl Weighting for Uncertainty {
    fn name(&self) -> &'static str {
        "uncertainty"
    }
    fn combine(&mut self, info: &StepInfo<'_>) -> Combined {
        let w: Vec<f64> = self.log_var.iter().map(|s| 0.5 * (-s).exp()).collect();
        for ((s, &l), &wi) in self.log_var.iter_mut().zip(info.losses).zip(&w) {
            *s -= self.lr * (0.5 - wi * l);
        }
        Combined::weights(w)
    }
}

/// Dynamic weight average (Liu, Johns & Davison 2019): with `r_i = L_i(e-1) / L_i(e-2)` the
/// ratio of the two previous epochs' mean losses, `w_i = T exp(r_i / tau) / sum_j exp(r_j / tau)`;
/// all weights are 1 during the first two epochs.
#[derive(Clone, Debug)]
pub struct Dwa {
    tasks: usize,
    temperature: f64,
    history: Vec<Vec<f64>>,
}

impl Dwa {
    /// DWA over `tasks` tasks with temperature `tau` (2 in the paper).
    pub fn new(tasks: usize, temperature: f64) -> Self {
        Dwa {
            tasks,
            temperature,
            history: Vec::new(),
        }
    }

    /// The weights used during the coming epoch.
    pub fn current_weights(&self) -> Vec<f64> {
        let k = self.history.len();
        if k < 2 {
            return vec![1.0; self.tasks];
        }
        let (prev, prev2) = (&self.history[k - 1], &self.history[k - 2]);
        let e: Vec<f64> = prev
            .iter()
            .zip(prev2)
            .map(|(a, b)| (a / b.max(1e-12) / self.temperature).exp())
            .collect();
        let s: f64 = e.iter().sum();
        e.iter().map(|x| self.tasks as f64 * x / s).collect()
    }
}

impl Weighting for Dwa {
    fn name(&self) -> &'static str {
        "dwa"
    }
    fn combine(&mut self, _info: &StepInfo<'_>) -> Combined {
        Combined::weights(self.current_weights())
    }
    fn end_epoch(&mut self, mean_losses: &[f64]) {
        self.history.push(mean_losses.to_vec());
    }
}

/// Random loss weighting (Lin et al. 2021): every step, `w = T softmax(z)` with `z ~ N(0, I)`
/// (scaled by `T` so that the weights average 1, like equal weighting's).
#[derive(Clone, Debug)]
pub struct RandomLossWeighting {
    tasks: usize,
    rng: ChaCha8Rng,
}

impl RandomLossWeighting {
    /// RLW over `tasks` tasks, reproducible from `seed`.
    pub fn new(tasks: usize, seed: u64) -> Self {
        RandomLossWeighting {
            tasks,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }
}

impl Weighting for RandomLossWeighting {
    fn name(&self) -> &'static str {
        "rlw"
    }
    fn combine(&mut self, _info: &StepInfo<'_>) -> Combined {
        use rand_distr::{Distribution, StandardNormal};
        let z: Vec<f64> = (0..self.tasks)
            .map(|_| StandardNormal.sample(&mut self.rng))
            .collect();
        let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
        let s: f64 = e.iter().sum();
        Combined::weights(e.iter().map(|x| self.tasks as f64 * x / s).collect())
    }
}

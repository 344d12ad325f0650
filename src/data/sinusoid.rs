//! The sinusoid regression task family of Finn et al. (2017, MAML):
//! `y = A sin(x - phi)` with `A ~ U[0.1, 5]`, `phi ~ U[0, pi]`, `x ~ U[-5, 5]`.

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::error::{DataError, Result};

/// The distribution of sinusoid tasks and the number of points per task.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SinusoidConfig {
    /// Amplitude range `[lo, hi]`.
    pub amplitude: (f32, f32),
    /// Phase range `[lo, hi]` (radians).
    pub phase: (f32, f32),
    /// Input range `[lo, hi]`.
    pub x_range: (f32, f32),
    /// K: support points per task.
    pub k_support: usize,
    /// Q: query points per task.
    pub q_query: usize,
}

impl Default for SinusoidConfig {
    /// Finn et al.'s setting with K = 10 support and Q = 10 query points.
    fn default() -> Self {
        SinusoidConfig {
            amplitude: (0.1, 5.0),
            phase: (0.0, std::f32::consts::PI),
            x_range: (-5.0, 5.0),
            k_support: 10,
            q_query: 10,
        }
    }
}

/// One sinusoid task with its support and query points (inputs and targets have shape `[K, 1]`
/// and `[Q, 1]`, stored flat).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SinusoidTask {
    /// The amplitude A.
    pub amplitude: f32,
    /// The phase phi.
    pub phase: f32,
    /// Support inputs.
    pub support_x: Vec<f32>,
    /// Support targets.
    pub support_y: Vec<f32>,
    /// Query inputs.
    pub query_x: Vec<f32>,
    /// Query targets.
    pub query_y: Vec<f32>,
}

impl SinusoidTask {
    /// The task's function at `x`: `A sin(x - phi)`.
    pub fn eval(&self, x: f32) -> f32 {
        self.amplitude * (x - self.phase).sin()
    }
}

fn uniform<R: Rng + ?Sized>(rng: &mut R, (lo, hi): (f32, f32)) -> f32 {
    if hi > lo {
        rng.gen_range(lo..=hi)
    } else {
        lo
    }
}

impl SinusoidConfig {
    /// Checks that every range is finite with `lo <= hi`.
    pub fn validate(&self) -> Result<()> {
        for (name, (lo, hi)) in [
            ("amplitude", self.amplitude),
            ("phase", self.phase),
            ("x", self.x_range),
        ] {
            if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
                return Err(DataError::InvalidArgument(format!(
                    "{name} range [{lo}, {hi}] is not a finite interval"
                )));
            }
        }
        Ok(())
    }

    /// Draws one task: amplitude, phase, then K support inputs, then Q query inputs.
    pub fn sample_task<R: Rng + ?Sized>(&self, rng: &mut R) -> SinusoidTask {
        let amplitude = uniform(rng, self.amplitude);
        let phase = uniform(rng, self.phase);
        let support_x: Vec<f32> = (0..self.k_support)
            .map(|_| uniform(rng, self.x_range))
            .collect();
        let query_x: Vec<f32> = (0..self.q_query)
            .map(|_| uniform(rng, self.x_range))
            .collect();
        let mut task = SinusoidTask {
            amplitude,
            phase,
            support_x,
            support_y: Vec::new(),
            query_x,
            query_y: Vec::new(),
        };
        task.support_y = task.support_x.iter().map(|&x| task.eval(x)).collect();
        task.query_y = task.query_x.iter().map(|&x| task.eval(x)).collect();
        task
    }

    /// Draws a meta-batch of tasks.
    pub fn sample_batch<R: Rng + ?Sized>(&self, rng: &mut R, batch: usize) -> Vec<SinusoidTask> {
        (0..batch).map(|_| self.sample_task(rng)).collect()
    }
}

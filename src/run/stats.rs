//! Statistics of repeated measurements: the mean with its 95% confidence interval
//! `1.96 sigma / sqrt(n)`, as few-shot evaluation (over test episodes) and transfer (over seeds)
//! report them.
//!
//! `sigma` is the population standard deviation (`ddof = 0`, as `np.std` in Finn et al.'s and
//! Snell et al.'s evaluation code).

use serde::{Deserialize, Serialize};

/// Mean, standard deviation and 95% confidence half-width of a sample.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeanCi {
    /// The mean.
    pub mean: f64,
    /// The population standard deviation (`ddof = 0`).
    pub std: f64,
    /// `1.96 * std / sqrt(n)`.
    pub ci95: f64,
    /// `n`.
    pub n: usize,
}

impl MeanCi {
    /// `mean ± ci95`, both times `scale`, with `decimals` places; a single value has no
    /// interval and shows as `mean (n = 1)` rather than a misleading `± 0`.
    pub fn show(&self, scale: f64, decimals: usize) -> String {
        if self.n < 2 {
            format!("{:.*} (n = {})", decimals, scale * self.mean, self.n)
        } else {
            format!(
                "{:.*} ± {:.*}",
                decimals,
                scale * self.mean,
                decimals,
                scale * self.ci95
            )
        }
    }
}

/// `mean ± 1.96 sigma / sqrt(n)` of `values` (all `NaN` for an empty sample).
pub fn mean_ci95(values: &[f64]) -> MeanCi {
    let n = values.len();
    if n == 0 {
        return MeanCi {
            mean: f64::NAN,
            std: f64::NAN,
            ci95: f64::NAN,
            n,
        };
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
    let std = var.sqrt();
    MeanCi {
        mean,
        std,
        ci95: 1.96 * std / (n as f64).sqrt(),
        n,
    }
}

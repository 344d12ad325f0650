//! Training diagnostics: per-task loss and metric curves, and the cosine similarity of every
//! pair of task gradients on the shared parameters; printed as tables and drawn as SVG plots.

use crate::run::plot::{LinePlot, Series};
use std::fmt::Write as _;
use std::path::Path;

/// One epoch's numbers.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EpochRecord {
    /// The epoch (1 first).
    pub epoch: usize,
    /// Mean training loss per task.
    pub train_loss: Vec<f64>,
    /// Test loss per task (empty when not evaluated this epoch).
    pub test_loss: Vec<f64>,
    /// Test metric per task (accuracy or RMSE; empty when not evaluated).
    pub test_metric: Vec<f64>,
    /// Mean loss weight per task over the epoch.
    pub mean_weight: Vec<f64>,
    /// Mean cosine of each task pair over the epoch's gradient measurements (empty if none).
    pub mean_cosine: Vec<f64>,
    /// Training seconds of the epoch (excluding evaluation).
    pub seconds: f64,
}

/// The cosines measured at one step.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CosineRecord {
    /// The global step.
    pub step: u64,
    /// One value per task pair, in [`History::pairs`] order.
    pub cosine: Vec<f64>,
}

/// Everything recorded during a run.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct History {
    /// Task names.
    pub tasks: Vec<String>,
    /// Metric name per task.
    pub metrics: Vec<String>,
    /// Per-epoch records.
    pub epochs: Vec<EpochRecord>,
    /// Gradient cosines over training.
    pub cosines: Vec<CosineRecord>,
    /// Steps at which the weighting's solver failed and the step used the mean direction
    /// instead (see `weighting::Combined::fallback`).
    pub fallbacks: Vec<FallbackRecord>,
}

/// A step whose weighting fell back to the mean direction.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FallbackRecord {
    /// The global step.
    pub step: u64,
    /// Why (the method and the solver's message).
    pub why: String,
}

impl History {
    /// A history for these tasks.
    pub fn new(tasks: Vec<String>, metrics: Vec<String>) -> Self {
        History {
            tasks,
            metrics,
            ..Default::default()
        }
    }

    /// The task pairs `(i, j)`, `i < j`, in the order cosines are stored.
    pub fn pairs(&self) -> Vec<(usize, usize)> {
        pairs(self.tasks.len())
    }

    fn pair_name(&self, (i, j): (usize, usize)) -> String {
        format!("{}~{}", self.tasks[i], self.tasks[j])
    }

    /// The per-epoch table: train loss, test loss and metric per task, mean cosines.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = write!(s, "{:>5}", "epoch");
        for t in &self.tasks {
            let _ = write!(
                s,
                " {:>12} {:>12}",
                format!("{t} loss"),
                format!("{t} test")
            );
        }
        for p in self.pairs() {
            let _ = write!(s, " {:>14}", format!("cos {}", self.pair_name(p)));
        }
        let _ = writeln!(s, " {:>8}", "secs");
        for e in &self.epochs {
            let _ = write!(s, "{:>5}", e.epoch);
            for k in 0..self.tasks.len() {
                let m = e
                    .test_metric
                    .get(k)
                    .map_or("-".to_string(), |m| format!("{m:.4}"));
                let _ = write!(s, " {:>12.4} {:>12}", e.train_loss[k], m);
            }
            for k in 0..self.pairs().len() {
                let c = e
                    .mean_cosine
                    .get(k)
                    .map_or("-".to_string(), |c| format!("{c:+.3}"));
                let _ = write!(s, " {c:>14}");
            }
            let _ = writeln!(s, " {:>8.2}", e.seconds);
        }
        if let Some(first) = self.fallbacks.first() {
            let _ = writeln!(
                s,
                "solver fallback (mean direction) at {} step(s), first at step {}: {}",
                self.fallbacks.len(),
                first.step,
                first.why
            );
        }
        s
    }

    /// Writes `history.json`, `loss.svg`, `metric.svg` and `grad_cosine.svg` into `dir`.
    pub fn write(&self, dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
        std::fs::create_dir_all(dir)?;
        let mut written = Vec::new();
        let p = dir.join("history.json");
        std::fs::write(&p, serde_json::to_string_pretty(self).unwrap_or_default())?;
        written.push(p);
        let epochs: Vec<f64> = self.epochs.iter().map(|e| e.epoch as f64).collect();
        let mut loss = LinePlot::new("Training loss per task", "epoch", "loss");
        let mut metric = LinePlot::new("Test metric per task", "epoch", "accuracy / RMSE");
        for (k, t) in self.tasks.iter().enumerate() {
            loss.series.push(Series::new(
                t,
                epochs
                    .iter()
                    .copied()
                    .zip(self.epochs.iter().map(|e| e.train_loss[k]))
                    .collect(),
            ));
            let pts: Vec<(f64, f64)> = self
                .epochs
                .iter()
                .filter_map(|e| e.test_metric.get(k).map(|m| (e.epoch as f64, *m)))
                .collect();
            metric
                .series
                .push(Series::new(&format!("{t} ({})", self.metrics[k]), pts));
        }
        for (name, plot) in [("loss.svg", &loss), ("metric.svg", &metric)] {
            let p = dir.join(name);
            std::fs::write(&p, plot.to_svg())?;
            written.push(p);
        }
        if !self.cosines.is_empty() {
            let mut cos = LinePlot::new(
                "Cosine similarity of task gradients (shared parameters)",
                "step",
                "cosine",
            );
            cos.y_range = Some((-1.0, 1.0));
            for (k, pr) in self.pairs().into_iter().enumerate() {
                let pts = self
                    .cosines
                    .iter()
                    .map(|c| (c.step as f64, c.cosine[k]))
                    .collect();
                cos.series.push(Series::new(&self.pair_name(pr), pts));
            }
            let p = dir.join("grad_cosine.svg");
            std::fs::write(&p, cos.to_svg())?;
            written.push(p);
        }
        Ok(written)
    }
}

/// The pairs `(i, j)`, `i < j < t`.
pub fn pairs(t: usize) -> Vec<(usize, usize)> {
    (0..t)
        .flat_map(|i| (i + 1..t).map(move |j| (i, j)))
        .collect()
}

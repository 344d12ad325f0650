//! The learning curve of a run as an SVG ([`crate::run::plot`]): meta-train and validation
//! loss on the left, meta-train and validation accuracy on the right (for regression: the
//! losses only, the validation loss being the MSE).

use super::error::{Result, TrainError};
use super::r#loop::HistoryPoint;
use crate::run::plot::{figure_svg, LinePlot, Series};
use std::path::Path;

/// The SVG text of a learning curve.
pub fn learning_curve_svg(title: &str, history: &[HistoryPoint], regression: bool) -> String {
    let curve = |label: &str, f: &dyn Fn(&HistoryPoint) -> f64| {
        Series::new(
            label,
            history.iter().map(|p| (p.iteration as f64, f(p))).collect(),
        )
    };
    let panel = |title: &str, y_label: &str, series: Vec<Series>| LinePlot {
        series,
        ..LinePlot::new(title, "iteration", y_label)
    };
    let losses = vec![
        curve("meta-train", &|p| p.train_loss),
        curve("validation", &|p| p.val_loss),
    ];
    if regression {
        return figure_svg(Some(title), &[panel("query MSE", "MSE", losses)]);
    }
    let accuracies = vec![
        curve("meta-train", &|p| {
            100.0 * p.train_accuracy.unwrap_or(f64::NAN)
        }),
        curve("validation", &|p| 100.0 * p.val_metric),
    ];
    figure_svg(
        Some(title),
        &[
            panel("query loss (cross-entropy)", "loss", losses),
            panel("query accuracy (%)", "accuracy (%)", accuracies),
        ],
    )
}

/// Writes the learning curve to `path` (atomically).
pub fn write_learning_curve(
    path: &Path,
    title: &str,
    history: &[HistoryPoint],
    regression: bool,
) -> Result<()> {
    let svg = learning_curve_svg(title, history, regression);
    crate::nn::checkpoint::write_atomic(path, svg.as_bytes()).map_err(|e| match e {
        crate::nn::checkpoint::CheckpointError::Io { source, .. } => {
            TrainError::io(path, "writing the learning curve", source)
        }
        other => TrainError::Checkpoint(other),
    })
}

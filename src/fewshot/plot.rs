//! The learning curve as a hand-written SVG (no plotting dependency): meta-train and
//! validation loss on the left, meta-train and validation accuracy on the right (for
//! regression: the losses only, the validation loss being the MSE).

use super::error::{Result, TrainError};
use super::r#loop::HistoryPoint;
use std::fmt::Write;
use std::path::Path;

type Series<'a> = (&'a str, &'a str, Vec<(f64, f64)>);

fn nice_step(range: f64) -> f64 {
    if !(range.is_finite() && range > 0.0) {
        return 1.0;
    }
    let raw = range / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let n = raw / mag;
    mag * if n < 1.5 {
        1.0
    } else if n < 3.5 {
        2.0
    } else if n < 7.5 {
        5.0
    } else {
        10.0
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn fmt_tick(v: f64, step: f64) -> String {
    if step >= 1.0 && v.abs() < 1e6 {
        format!("{v:.0}")
    } else {
        let d = (-step.log10().floor()).max(0.0) as usize;
        format!("{v:.d$}")
    }
}

#[allow(clippy::too_many_arguments)]
fn panel(
    svg: &mut String,
    x0: f64,
    y0: f64,
    w: f64,
    h: f64,
    title: &str,
    series: &[Series<'_>],
    x_max: f64,
) {
    let pts = series
        .iter()
        .flat_map(|s| s.2.iter())
        .filter(|p| p.1.is_finite());
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for p in pts {
        lo = lo.min(p.1);
        hi = hi.max(p.1);
    }
    if !lo.is_finite() {
        lo = 0.0;
        hi = 1.0;
    }
    if hi - lo < 1e-12 {
        hi = lo + 1.0;
    }
    let ys = nice_step(hi - lo);
    let (lo, hi) = ((lo / ys).floor() * ys, (hi / ys).ceil() * ys);
    let xm = x_max.max(1.0);
    let xs = nice_step(xm);
    let (l, t, pw, ph) = (x0 + 60.0, y0 + 30.0, w - 80.0, h - 70.0);
    let px = |x: f64| l + pw * x / xm;
    let py = |y: f64| t + ph * (1.0 - (y - lo) / (hi - lo));
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" font-size="14" text-anchor="middle">{}</text>"#,
        l + pw / 2.0,
        y0 + 18.0,
        esc(title)
    );
    let _ = writeln!(
        svg,
        r##"<rect x="{l:.1}" y="{t:.1}" width="{pw:.1}" height="{ph:.1}" fill="none" stroke="#444"/>"##
    );
    let mut y = lo;
    while y <= hi + ys * 1e-6 {
        let yy = py(y);
        let _ = writeln!(
            svg,
            r##"<line x1="{l:.1}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/>"##,
            l + pw
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"#,
            l - 5.0,
            yy + 4.0,
            fmt_tick(y, ys)
        );
        y += ys;
    }
    let mut x = 0.0;
    while x <= xm + xs * 1e-6 {
        let xx = px(x);
        let _ = writeln!(
            svg,
            r#"<text x="{xx:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"#,
            t + ph + 15.0,
            fmt_tick(x, xs)
        );
        x += xs;
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">iteration</text>"#,
        l + pw / 2.0,
        t + ph + 32.0
    );
    for (k, (label, color, data)) in series.iter().enumerate() {
        let path: Vec<String> = data
            .iter()
            .filter(|p| p.1.is_finite())
            .map(|p| format!("{:.1},{:.1}", px(p.0), py(p.1)))
            .collect();
        if path.len() > 1 {
            let _ = writeln!(
                svg,
                r#"<polyline fill="none" stroke="{color}" stroke-width="1.8" points="{}"/>"#,
                path.join(" ")
            );
        }
        for p in &path {
            let (cx, cy) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(
                svg,
                r#"<circle cx="{cx}" cy="{cy}" r="2.2" fill="{color}"/>"#
            );
        }
        let ly = t + 14.0 + 16.0 * k as f64;
        let _ = writeln!(
            svg,
            r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{color}" stroke-width="2"/>"#,
            l + pw - 130.0,
            l + pw - 110.0
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#,
            l + pw - 105.0,
            ly + 4.0,
            esc(label)
        );
    }
}

/// The SVG text of a learning curve.
pub fn learning_curve_svg(title: &str, history: &[HistoryPoint], regression: bool) -> String {
    let (w, h) = (960.0, 380.0);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="20" font-size="15" font-weight="bold" text-anchor="middle">{}</text>"#,
        w / 2.0,
        esc(title)
    );
    let x_max = history.last().map_or(1.0, |p| p.iteration as f64);
    let it = |f: &dyn Fn(&HistoryPoint) -> f64| -> Vec<(f64, f64)> {
        history.iter().map(|p| (p.iteration as f64, f(p))).collect()
    };
    let losses: Vec<Series<'_>> = vec![
        ("meta-train", "#1f77b4", it(&|p| p.train_loss)),
        ("validation", "#d62728", it(&|p| p.val_loss)),
    ];
    if regression {
        panel(
            &mut svg,
            0.0,
            25.0,
            w,
            h - 25.0,
            "query MSE",
            &losses,
            x_max,
        );
    } else {
        panel(
            &mut svg,
            0.0,
            25.0,
            w / 2.0,
            h - 25.0,
            "query loss (cross-entropy)",
            &losses,
            x_max,
        );
        let accs: Vec<Series<'_>> = vec![
            (
                "meta-train",
                "#1f77b4",
                it(&|p| 100.0 * p.train_accuracy.unwrap_or(f64::NAN)),
            ),
            ("validation", "#d62728", it(&|p| 100.0 * p.val_metric)),
        ];
        panel(
            &mut svg,
            w / 2.0,
            25.0,
            w / 2.0,
            h - 25.0,
            "query accuracy (%)",
            &accs,
            x_max,
        );
    }
    svg.push_str("</svg>\n");
    svg
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

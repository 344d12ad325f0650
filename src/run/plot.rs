//! SVG line plots, written by hand (no plotting dependency): one panel ([`LinePlot::to_svg`]),
//! or several side by side under one title ([`figure_svg`]). Axes get round tick steps (1, 2
//! or 5 times a power of ten), series take their colours in turn from one palette, and each
//! panel has its legend on its right. What the commands draw with it: the learning curve of
//! `train`, the loss, metric and gradient-cosine curves of `mtl`, accuracy against labels in
//! `transfer` and the trial scores of `search`.

use std::fmt::Write as _;

const COLORS: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

/// Series with at most this many points get a marker at every point.
const MAX_MARKED_POINTS: usize = 60;

/// One line of a plot.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// `(x, y)` points, drawn in order (non-finite points are skipped).
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// A series named `label` through `points`.
    pub fn new(label: &str, points: Vec<(f64, f64)>) -> Self {
        Series {
            label: label.to_string(),
            points,
        }
    }
}

/// One panel: a line chart with a title, axes, ticks and a legend.
#[derive(Clone, Debug)]
pub struct LinePlot {
    /// Title.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
    /// Fixed y range (default: the data's, widened to round ticks); points outside are drawn
    /// at its edge.
    pub y_range: Option<(f64, f64)>,
}

impl LinePlot {
    /// An empty plot.
    pub fn new(title: &str, x_label: &str, y_label: &str) -> Self {
        LinePlot {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            series: Vec::new(),
            y_range: None,
        }
    }

    /// The SVG document of this plot alone.
    pub fn to_svg(&self) -> String {
        figure_svg(None, std::slice::from_ref(self))
    }

    /// The finite points of every series.
    fn finite_points(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(|p| p.0.is_finite() && p.1.is_finite())
    }
}

/// The SVG document of `panels` side by side, under `title` when given (a single panel is
/// 720 x 420, each of several 480 x 380).
pub fn figure_svg(title: Option<&str>, panels: &[LinePlot]) -> String {
    let (pw, ph) = if panels.len() > 1 {
        (480.0, 380.0)
    } else {
        (720.0, 420.0)
    };
    let top = if title.is_some() { 30.0 } else { 0.0 };
    let (w, h) = (pw * panels.len().max(1) as f64, ph + top);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    if let Some(t) = title {
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="22" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#,
            w / 2.0,
            esc(t)
        );
    }
    for (i, plot) in panels.iter().enumerate() {
        let frame = Rect {
            x: pw * i as f64,
            y: top,
            w: pw,
            h: ph,
        };
        draw_panel(&mut svg, frame, plot);
    }
    svg.push_str("</svg>\n");
    svg
}

/// A box in SVG coordinates.
#[derive(Clone, Copy, Debug)]
struct Rect {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

/// One axis: its range and tick step.
#[derive(Clone, Copy, Debug)]
struct Axis {
    lo: f64,
    hi: f64,
    step: f64,
}

impl Axis {
    /// The range `[lo, hi]` of the data widened to whole tick steps (`[0, 1]` without data).
    fn fit(lo: f64, hi: f64) -> Axis {
        let (lo, mut hi) = if lo.is_finite() && hi.is_finite() {
            (lo, hi)
        } else {
            (0.0, 1.0)
        };
        if hi - lo < 1e-12 {
            hi = lo + 1.0;
        }
        let step = nice_step(hi - lo);
        Axis {
            lo: (lo / step).floor() * step,
            hi: (hi / step).ceil() * step,
            step,
        }
    }

    /// Exactly `[lo, hi]`, with round ticks inside.
    fn fixed(lo: f64, hi: f64) -> Axis {
        let hi = if hi - lo < 1e-12 { lo + 1.0 } else { hi };
        Axis {
            lo,
            hi,
            step: nice_step(hi - lo),
        }
    }

    /// The tick values: the multiples of the step within the range.
    fn ticks(&self) -> Vec<f64> {
        let first = (self.lo / self.step - 1e-9).ceil() as i64;
        let last = (self.hi / self.step + 1e-9).floor() as i64;
        (first..=last)
            .map(|k| {
                let v = k as f64 * self.step;
                if v.abs() < self.step * 1e-9 {
                    0.0
                } else {
                    v
                }
            })
            .collect()
    }

    /// Where `v` falls in `[0, 1]` along the axis.
    fn fraction(&self, v: f64) -> f64 {
        (v - self.lo) / (self.hi - self.lo)
    }

    /// A tick label with as many decimals as the step needs.
    fn label(&self, v: f64) -> String {
        let d = (-self.step.log10().floor()).max(0.0) as usize;
        format!("{v:.d$}")
    }
}

/// A round step (1, 2 or 5 times a power of ten) giving about five ticks over `range`.
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

/// The x and y axes of a plot: fitted to its data, the y axis fixed by `y_range` when set.
fn axes(plot: &LinePlot) -> (Axis, Axis) {
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for (x, y) in plot.finite_points() {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    let y = match plot.y_range {
        Some((lo, hi)) => Axis::fixed(lo, hi),
        None => Axis::fit(y0, y1),
    };
    (Axis::fit(x0, x1), y)
}

/// Draws one panel inside `frame`: title, plot area with grid and ticks, axis labels, the
/// series and the legend on the right.
fn draw_panel(svg: &mut String, frame: Rect, plot: &LinePlot) {
    let widest = plot.series.iter().map(|s| s.label.chars().count()).max();
    let legend_w = widest.map_or(20.0, |n| (40.0 + 6.5 * n as f64).min(200.0));
    let area = Rect {
        x: frame.x + 70.0,
        y: frame.y + 40.0,
        w: frame.w - 70.0 - legend_w - 10.0,
        h: frame.h - 90.0,
    };
    let (xa, ya) = axes(plot);
    draw_frame(svg, frame, area, plot, xa, ya);
    let to_svg = |(x, y): (f64, f64)| {
        (
            area.x + area.w * xa.fraction(x),
            area.y + area.h * (1.0 - ya.fraction(y.clamp(ya.lo, ya.hi))),
        )
    };
    for (k, series) in plot.series.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        draw_series(svg, series, color, &to_svg);
        let ly = area.y + 14.0 + 18.0 * k as f64;
        let lx = area.x + area.w + 10.0;
        let _ = writeln!(
            svg,
            r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{color}" stroke-width="3"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 20.0,
            lx + 25.0,
            ly + 4.0,
            esc(&series.label)
        );
    }
}

/// The panel's title, grid lines and ticks, the plot area's border and the axis labels.
fn draw_frame(svg: &mut String, frame: Rect, area: Rect, plot: &LinePlot, xa: Axis, ya: Axis) {
    let (right, bottom) = (area.x + area.w, area.y + area.h);
    let mid_x = area.x + area.w / 2.0;
    let _ = writeln!(
        svg,
        r#"<text x="{mid_x:.1}" y="{:.1}" text-anchor="middle" font-size="14">{}</text>"#,
        frame.y + 24.0,
        esc(&plot.title)
    );
    for v in xa.ticks() {
        let x = area.x + area.w * xa.fraction(v);
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{bottom:.1}" stroke="#eee"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            area.y,
            bottom + 16.0,
            xa.label(v)
        );
    }
    for v in ya.ticks() {
        let y = area.y + area.h * (1.0 - ya.fraction(v));
        let _ = writeln!(
            svg,
            r##"<line x1="{:.1}" y1="{y:.1}" x2="{right:.1}" y2="{y:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            area.x,
            area.x - 6.0,
            y + 4.0,
            ya.label(v)
        );
    }
    let _ = writeln!(
        svg,
        r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="black"/>"#,
        area.x, area.y, area.w, area.h
    );
    let _ = writeln!(
        svg,
        r#"<text x="{mid_x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        bottom + 36.0,
        esc(&plot.x_label)
    );
    let _ = writeln!(
        svg,
        r#"<text transform="translate({:.1},{:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        frame.x + 16.0,
        area.y + area.h / 2.0,
        esc(&plot.y_label)
    );
}

/// One series: a polyline through its finite points, and a marker at each when they are few.
fn draw_series(
    svg: &mut String,
    series: &Series,
    color: &str,
    to_svg: &dyn Fn((f64, f64)) -> (f64, f64),
) {
    let pts: Vec<(f64, f64)> = series
        .points
        .iter()
        .filter(|p| p.0.is_finite() && p.1.is_finite())
        .map(|&p| to_svg(p))
        .collect();
    if pts.len() > 1 {
        let path: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.8" points="{}"/>"#,
            path.join(" ")
        );
    }
    if pts.len() <= MAX_MARKED_POINTS {
        for (x, y) in pts {
            let _ = writeln!(
                svg,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="2.5" fill="{color}"/>"#
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_data() {
        let a = Axis::fit(0.1, 0.9);
        assert_eq!((a.lo, a.hi, a.step), (0.0, 1.0, 0.2));
        assert_eq!(
            a.ticks().iter().map(|&v| a.label(v)).collect::<Vec<_>>(),
            ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]
        );
        let c = Axis::fixed(-1.0, 1.0);
        assert_eq!(c.ticks(), [-1.0, -0.5, 0.0, 0.5, 1.0]);
        assert_eq!(Axis::fit(f64::INFINITY, f64::NEG_INFINITY).ticks().len(), 6);
    }

    #[test]
    fn panels_side_by_side() {
        let mut a = LinePlot::new("loss", "iteration", "");
        a.series.push(Series::new(
            "train <a&b>",
            vec![(0.0, 1.0), (1.0, f64::NAN), (2.0, 0.5)],
        ));
        let b = LinePlot::new("accuracy", "iteration", "%");
        let svg = figure_svg(Some("run"), &[a.clone(), b]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains(r#"width="960""#) && svg.contains("polyline"));
        assert!(svg.contains("train &lt;a&amp;b&gt;"));
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(a.to_svg().contains(r#"width="720""#));
    }
}

//! Progress bars on stderr (indicatif), the same for every command: a bar drawn with the
//! command's template, or a hidden one that ignores every update when progress is off (`--json`,
//! trials of a search, tests).

use indicatif::{ProgressBar, ProgressStyle};

/// The bar style of an indicatif `template` (the default bar when the template does not parse).
pub fn bar_style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// A progress bar of `len` steps drawn in `style` when `show`, else a hidden bar.
pub fn progress_bar(show: bool, len: u64, style: ProgressStyle) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(style);
    bar
}

//! The verification report: one row per expected tensor, per-case summaries, second-order
//! gaps and case errors, printed as tables.

use super::{VerifyDtype, RTOL_F64, TOL_F32, ZERO_ATOL_F32, ZERO_ATOL_F64};
use std::fmt;
use std::path::PathBuf;

/// How a tensor was compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// f64: `max |a - e| / (ATOL/RTOL + |e|)`, tolerance `RTOL`.
    Elementwise,
    /// f32: `max |a - e| / max |e|` (plain `max |a - e|` when `e` is all zeros).
    Tensorwise,
    /// A mathematically-zero gradient: `max |a - e|` (f64) or `max |a|` (f32).
    AbsoluteZero,
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Metric::Elementwise => "elem-rel",
            Metric::Tensorwise => "tensor-rel",
            Metric::AbsoluteZero => "abs(zero)",
        })
    }
}

/// One expected tensor of one case.
#[derive(Clone, Debug)]
pub struct CheckRow {
    /// The case (file stem).
    pub case: String,
    /// The tensor name without the `expected/` prefix.
    pub tensor: String,
    /// The comparison.
    pub metric: Metric,
    /// The measured error (NaN when nothing was computed).
    pub error: f64,
    /// The largest absolute difference.
    pub max_abs_diff: f64,
    /// The tolerance `error` is held to.
    pub tolerance: f64,
    /// Whether the tensor passed.
    pub passed: bool,
    /// Why it failed without a number (not computed, shape differs).
    pub note: Option<String>,
}

/// A case that could not be run or checked completely.
#[derive(Clone, Debug)]
pub struct CaseError {
    /// The case.
    pub case: String,
    /// What went wrong.
    pub message: String,
}

/// `||meta_grad - fo_grad|| / ||meta_grad||` (Euclidean over all parameters) for one MAML
/// variant.
#[derive(Clone, Debug)]
pub struct SecondOrderGap {
    /// The case.
    pub case: String,
    /// The variant (`steps1`, ...).
    pub variant: String,
    /// From this engine's meta-gradients.
    pub computed: f64,
    /// From the reference tensors.
    pub reference: f64,
}

/// Per-case summary of a report.
#[derive(Clone, Debug)]
pub struct CaseSummary {
    /// The case.
    pub case: String,
    /// How many tensors were checked.
    pub tensors: usize,
    /// How many failed.
    pub failed: usize,
    /// The largest error over the tensors of the relative metric (elementwise or tensor-wise).
    pub max_error: f64,
    /// The largest error over the mathematically-zero gradients (absolute).
    pub max_zero_error: f64,
    /// Whether the case ran without error and every tensor passed.
    pub passed: bool,
}

/// The result of a verification run.
#[derive(Clone, Debug)]
pub struct VerifyReport {
    /// The folder checked.
    pub dir: PathBuf,
    /// The element type.
    pub dtype: VerifyDtype,
    /// The cases found, in order.
    pub cases: Vec<String>,
    /// Every expected tensor.
    pub checks: Vec<CheckRow>,
    /// Cases that failed to run (unknown case, missing input, engine panic...).
    pub errors: Vec<CaseError>,
    /// Second-order vs first-order MAML meta-gradients.
    pub second_order: Vec<SecondOrderGap>,
}

impl VerifyReport {
    /// Whether at least one tensor was checked, every tensor passed and no case failed.
    pub fn all_passed(&self) -> bool {
        !self.checks.is_empty() && self.errors.is_empty() && self.checks.iter().all(|c| c.passed)
    }

    /// The rows that failed.
    pub fn failures(&self) -> Vec<&CheckRow> {
        self.checks.iter().filter(|c| !c.passed).collect()
    }

    /// The row of a tensor (`case`, name without `expected/`).
    pub fn check(&self, case: &str, tensor: &str) -> Option<&CheckRow> {
        self.checks
            .iter()
            .find(|c| c.case == case && c.tensor == tensor)
    }

    /// One line per case.
    pub fn summaries(&self) -> Vec<CaseSummary> {
        self.cases
            .iter()
            .map(|case| {
                let rows: Vec<&CheckRow> = self.checks.iter().filter(|c| &c.case == case).collect();
                let max_of = |zero: bool| {
                    rows.iter()
                        .filter(|r| (r.metric == Metric::AbsoluteZero) == zero)
                        .map(|r| {
                            if r.error.is_nan() {
                                f64::INFINITY
                            } else {
                                r.error
                            }
                        })
                        .fold(0.0, f64::max)
                };
                let failed = rows.iter().filter(|r| !r.passed).count();
                let errored = self.errors.iter().any(|e| &e.case == case);
                CaseSummary {
                    case: case.clone(),
                    tensors: rows.len(),
                    failed,
                    max_error: max_of(false),
                    max_zero_error: max_of(true),
                    passed: !errored && failed == 0 && !rows.is_empty(),
                }
            })
            .collect()
    }

    /// The per-case summary, second-order gaps and errors as text (without the per-tensor rows).
    pub fn summary_table(&self) -> String {
        let mut s = String::new();
        let passed = self.checks.iter().filter(|c| c.passed).count();
        s.push_str(&format!(
            "reference verification ({}) of {}: {} of {} tensors passed, {} case error(s): {}\n",
            self.dtype,
            self.dir.display(),
            passed,
            self.checks.len(),
            self.errors.len(),
            if self.all_passed() {
                "ALL PASSED"
            } else {
                "FAILED"
            }
        ));
        let (rel_name, tol) = match self.dtype {
            VerifyDtype::F64 => ("max elem-rel", RTOL_F64),
            VerifyDtype::F32 => ("max tensor-rel", TOL_F32),
        };
        s.push_str(&format!(
            "{:<22} {:>7} {:>7} {:>14} {:>14}  pass   (tolerance {:.0e}; zero grads {:.0e} abs)\n",
            "case",
            "tensors",
            "failed",
            rel_name,
            "max abs(zero)",
            tol,
            match self.dtype {
                VerifyDtype::F64 => ZERO_ATOL_F64,
                VerifyDtype::F32 => ZERO_ATOL_F32,
            }
        ));
        for c in self.summaries() {
            s.push_str(&format!(
                "{:<22} {:>7} {:>7} {:>14.3e} {:>14.3e}  {}\n",
                c.case,
                c.tensors,
                c.failed,
                c.max_error,
                c.max_zero_error,
                if c.passed { "ok" } else { "FAIL" }
            ));
        }
        if self.cases.iter().any(|c| c == "mtl_aggregators") {
            let tols: Vec<String> = super::MTL_AGGREGATOR_TOLERANCES
                .iter()
                .map(|(m, t)| format!("{m} {t:.0e}"))
                .collect();
            s.push_str(&format!(
                "mtl_aggregators: tensor-wise max|a-e|/max|e| in f64, per method: {}\n",
                tols.join(", ")
            ));
        }
        if !self.second_order.is_empty() {
            s.push_str(
                "second-order vs first-order MAML: ||meta_grad - fo_grad|| / ||meta_grad||\n",
            );
            for g in &self.second_order {
                s.push_str(&format!(
                    "  {:<22} {:<8} computed {:.4e}   reference {:.4e}\n",
                    g.case, g.variant, g.computed, g.reference
                ));
            }
        }
        for e in &self.errors {
            s.push_str(&format!("ERROR {}: {}\n", e.case, e.message));
        }
        s
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<22} {:<44} {:<10} {:>11} {:>11} {:>8}  pass",
            "case", "tensor", "metric", "error", "max|a-e|", "tol"
        )?;
        for r in &self.checks {
            writeln!(
                f,
                "{:<22} {:<44} {:<10} {:>11.3e} {:>11.3e} {:>8.0e}  {}{}",
                r.case,
                r.tensor,
                r.metric,
                r.error,
                r.max_abs_diff,
                r.tolerance,
                if r.passed { "ok" } else { "FAIL" },
                r.note
                    .as_ref()
                    .map(|n| format!("  ({n})"))
                    .unwrap_or_default()
            )?;
        }
        writeln!(f)?;
        f.write_str(&self.summary_table())
    }
}

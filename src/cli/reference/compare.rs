//! Comparing the produced tensors with the expected ones (the tolerances of the module doc).

use super::case::{Case, Produced};
use super::report::{CheckRow, Metric, VerifyReport};
use super::{VerifyDtype, ATOL_F64, RTOL_F64, TOL_F32, ZERO_ATOL_F32, ZERO_ATOL_F64};

/// Whether `tensor` (without `expected/`) is a conv-bias gradient that a following batch norm
/// makes identically zero: `.../{grad,meta_grad,fo_grad}/b<i>.conv.bias` when the case has
/// `param/b<i>.bn.weight`.
fn is_zero_conv_bias_grad(case: &Case, tensor: &str) -> bool {
    let mut parts = tensor.rsplitn(2, '/');
    let (Some(last), Some(head)) = (parts.next(), parts.next()) else {
        return false;
    };
    let kind = head.rsplit('/').next().unwrap_or("");
    if !matches!(kind, "grad" | "meta_grad" | "fo_grad") {
        return false;
    }
    let Some(block) = last.strip_suffix(".conv.bias") else {
        return false;
    };
    let digits = block.strip_prefix('b').unwrap_or("");
    !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && case.has(&format!("param/{block}.bn.weight"))
}

pub(super) fn compare_case(
    case: &Case,
    produced: &Produced,
    dtype: VerifyDtype,
    report: &mut VerifyReport,
) {
    for (name, exp) in case.file.tensors.iter() {
        let Some(tensor) = name.strip_prefix("expected/") else {
            continue;
        };
        let zero = is_zero_conv_bias_grad(case, tensor);
        let per_method = (case.name == "mtl_aggregators")
            .then(|| super::mtl_aggregators::tolerance(tensor))
            .flatten();
        let (metric, tolerance) = match (dtype, zero, per_method) {
            (_, _, Some(tol)) => (Metric::Tensorwise, tol),
            (VerifyDtype::F64, false, _) => (Metric::Elementwise, RTOL_F64),
            (VerifyDtype::F32, false, _) => (Metric::Tensorwise, TOL_F32),
            (VerifyDtype::F64, true, _) => (Metric::AbsoluteZero, ZERO_ATOL_F64),
            (VerifyDtype::F32, true, _) => (Metric::AbsoluteZero, ZERO_ATOL_F32),
        };
        let mut row = CheckRow {
            case: case.name.to_string(),
            tensor: tensor.to_string(),
            metric,
            error: f64::NAN,
            max_abs_diff: f64::NAN,
            tolerance,
            passed: false,
            note: None,
        };
        let Some(e) = exp.as_f64() else {
            row.note = Some(format!("expected tensor has integer dtype {}", exp.dtype));
            report.checks.push(row);
            continue;
        };
        match produced.get(name) {
            None => row.note = Some("not computed by the verifier".into()),
            Some((shape, _)) if *shape != exp.shape => {
                row.note = Some(format!(
                    "computed shape {shape:?}, expected {:?}",
                    exp.shape
                ));
            }
            Some((_, a)) => {
                let max_abs_diff = a
                    .iter()
                    .zip(e)
                    .map(|(a, e)| (a - e).abs())
                    .fold(0.0, nan_max);
                let error = match metric {
                    Metric::Elementwise => a
                        .iter()
                        .zip(e)
                        .map(|(a, e)| (a - e).abs() / (ATOL_F64 / RTOL_F64 + e.abs()))
                        .fold(0.0, nan_max),
                    Metric::Tensorwise => {
                        let scale = e.iter().map(|x| x.abs()).fold(0.0, nan_max);
                        if scale > 0.0 {
                            max_abs_diff / scale
                        } else {
                            max_abs_diff
                        }
                    }
                    Metric::AbsoluteZero => match dtype {
                        VerifyDtype::F64 => max_abs_diff,
                        VerifyDtype::F32 => a.iter().map(|x| x.abs()).fold(0.0, nan_max),
                    },
                };
                row.error = error;
                row.max_abs_diff = max_abs_diff;
                row.passed = error <= tolerance;
            }
        }
        report.checks.push(row);
    }
    // Anything produced that the file does not expect is harmless (e.g. an extra variant
    // tensor); only the file's expectations are checked.
}

/// `max` that propagates NaN.
fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

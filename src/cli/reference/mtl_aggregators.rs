//! The `mtl_aggregators` case (`shared/reference-mtl`): TorchJD 0.18's aggregate directions and
//! Gramian weights of four Jacobians `input/J<i>` (`K x D`), and GradVac over three steps,
//! recomputed with [`crate::mtl::weighting::jacobian_descent`] in f64 (in both verifier
//! dtypes: the weightings are f64-only).
//!
//! Every tensor is compared tensor-wise, `max |a - e| / max |e|`, with a tolerance per method
//! ([`tolerance`]): `1e-9` for the closed-form methods and for MGDA (TorchJD's Frank-Wolfe is
//! replayed step for step), `1e-6` for UPGrad and DualProj (an exact active-set QP against
//! quadprog, both exact up to rounding), `1e-4` for CAGrad, FairGrad and Nash-MTL (convex
//! problems TorchJD solves iteratively: CAGrad with Clarabel, FairGrad with scipy's
//! least-squares, Nash-MTL with a sequence of ECOS programs stopped at a `1e-3` residual).

use super::case::{Case, CaseOutput, Produced};
use crate::mtl::weighting::gram;
use crate::mtl::weighting::jacobian_descent::{GradVacState, JdKind};
use std::collections::BTreeMap;

/// The methods of the case and their tolerance (tensor-wise relative).
pub const TOLERANCES: [(&str, f64); 15] = [
    ("mean", 1e-9),
    ("sum", 1e-9),
    ("imtl_g", 1e-9),
    ("pcgrad", 1e-9),
    ("aligned_mtl", 1e-9),
    ("config", 1e-9),
    ("trimmed_mean", 1e-9),
    ("krum", 1e-9),
    ("gradvac", 1e-9),
    ("mgda", 1e-9),
    ("upgrad", 1e-6),
    ("dualproj", 1e-6),
    ("cagrad", 1e-4),
    ("fairgrad", 1e-4),
    ("nash_mtl", 1e-4),
];

/// The tolerance of an expected tensor (`<method>/...` without `expected/`); `None` for a
/// method this case does not know (it is then compared with the default f64 tolerance, and
/// fails as "not computed").
pub fn tolerance(tensor: &str) -> Option<f64> {
    let method = tensor.split('/').next()?;
    TOLERANCES
        .iter()
        .find(|(m, _)| *m == method)
        .map(|(_, t)| *t)
}

/// The rows of a `[K, D]` tensor.
fn rows(case: &Case, name: &str) -> Result<Vec<Vec<f64>>, String> {
    let (shape, v) = case.reals(name)?;
    if shape.len() != 2 {
        return Err(format!("`{name}` has shape {shape:?}, expected [K, D]"));
    }
    Ok(v.chunks(shape[1].max(1)).map(|r| r.to_vec()).collect())
}

/// The method `name` with the case's parameters (TorchJD's defaults where the JSON is silent).
fn kind(case: &Case, name: &str) -> Result<Option<JdKind>, String> {
    let p = |key: &str, d: f64| case.json_f64(&["params", name, key]).unwrap_or(d);
    Ok(Some(match name {
        "mean" => JdKind::Mean,
        "sum" => return Ok(None),
        "upgrad" => JdKind::UpGrad,
        "dualproj" => JdKind::DualProj,
        "mgda" => JdKind::MgdaTorchjd,
        "cagrad" => JdKind::CaGradTorchjd(p("c", 0.5)),
        "imtl_g" => JdKind::ImtlG,
        "aligned_mtl" => JdKind::AlignedMtl,
        "pcgrad" => JdKind::PcGradOrdered,
        "config" => JdKind::Config,
        "fairgrad" => JdKind::FairGrad(p("alpha", 1.0)),
        "nash_mtl" => JdKind::NashTorchjd(p("max_norm", 1.0)),
        "trimmed_mean" => JdKind::TrimmedMean(p("trim_number", 1.0) as usize),
        "krum" => JdKind::Krum(
            p("n_byzantine", 1.0) as usize,
            p("n_selected", 1.0) as usize,
        ),
        "gradvac" => JdKind::GradVac(GradVacState::new(p("beta", 0.5), p("eps", 1e-8))),
        other => return Err(format!("unknown aggregator `{other}`")),
    }))
}

/// The aggregate and (when the method has them) weights of `method` on the rows `j`.
fn run_one(
    case: &Case,
    method: &str,
    j: &[Vec<f64>],
) -> Result<(Vec<f64>, Option<Vec<f64>>), String> {
    let g = gram(j);
    match kind(case, method)? {
        None => {
            let w = vec![1.0; j.len()];
            Ok((crate::mtl::weighting::weighted_sum(j, &w), Some(w)))
        }
        Some(mut k) => k.aggregate(j, &g),
    }
}

fn put_vec(out: &mut Produced, name: String, v: Vec<f64>) {
    out.insert(name, (vec![v.len()], v));
}

/// Every `expected/<method>/J<i>/{aggregate,weights}` and `expected/gradvac/step<s>/aggregate`.
pub(super) fn run_mtl_aggregators(case: &Case) -> Result<CaseOutput, String> {
    let mut produced = Produced::new();
    let mut errors = Vec::new();
    let mut done: BTreeMap<(String, String), ()> = BTreeMap::new();
    let names: Vec<String> = case.file.tensors.keys().cloned().collect();
    for name in &names {
        let Some(rest) = name.strip_prefix("expected/") else {
            continue;
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let [method, input, _] = parts[..] else {
            errors.push(format!("unexpected tensor name `{name}`"));
            continue;
        };
        if method == "gradvac" || done.contains_key(&(method.into(), input.into())) {
            continue;
        }
        done.insert((method.into(), input.into()), ());
        let j = rows(case, &format!("input/{input}"))?;
        match run_one(case, method, &j) {
            Ok((agg, w)) => {
                put_vec(
                    &mut produced,
                    format!("expected/{method}/{input}/aggregate"),
                    agg,
                );
                if let Some(w) = w {
                    put_vec(
                        &mut produced,
                        format!("expected/{method}/{input}/weights"),
                        w,
                    );
                }
            }
            Err(e) => errors.push(format!("{method} on {input}: {e}")),
        }
    }
    if names.iter().any(|n| n.starts_with("expected/gradvac/")) {
        let Some(JdKind::GradVac(mut state)) = kind(case, "gradvac")? else {
            unreachable!("gradvac is a GradVac kind")
        };
        let mut s = 0;
        while case.has(&format!("input/gradvac_seq/step{s}")) {
            let j = rows(case, &format!("input/gradvac_seq/step{s}"))?;
            let w = state.weights(&gram(&j));
            let agg = crate::mtl::weighting::weighted_sum(&j, &w);
            put_vec(
                &mut produced,
                format!("expected/gradvac/step{s}/aggregate"),
                agg,
            );
            s += 1;
        }
    }
    Ok(CaseOutput {
        produced,
        gaps: Vec::new(),
        errors,
    })
}

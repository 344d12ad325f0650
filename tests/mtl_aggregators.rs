//! TorchJD's aggregators (`mtl::weighting::jacobian_descent`): the reference vectors of
//! `shared/reference-mtl` (`$METALEARN_REFERENCE_MTL`, default `../shared/reference-mtl`), and
//! each method on 2-task toy Jacobians whose answer is known in closed form (orthogonal and
//! opposed gradients), the task-count errors of the trimmed mean and Krum, and the solver
//! fallback.

use metalearn::cli::reference::{verify_reference_dir, VerifyDtype};
use metalearn::mtl::weighting::jacobian_descent::*;
use metalearn::mtl::weighting::solvers::{nonneg_qp, simplex_qp};
use metalearn::mtl::weighting::{
    build, gram, weighted_sum, JdKind, JdMethod, StepInfo, Weighting, WeightingConfig, METHODS,
};
use std::path::PathBuf;

fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= tol * (1.0 + y.abs()))
}

fn reference_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("METALEARN_REFERENCE_MTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/reference-mtl")
        });
    if dir.join("mtl_aggregators.safetensors").is_file() {
        return Some(dir);
    }
    let msg = format!(
        "reference-mtl not found at {} (set METALEARN_REFERENCE_MTL)",
        dir.display()
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
    eprintln!("skipped: {msg}");
    None
}

#[test]
fn torchjd_reference_vectors_pass_in_f64_and_f32() {
    let Some(dir) = reference_dir() else {
        return;
    };
    for dtype in [VerifyDtype::F64, VerifyDtype::F32] {
        let report = verify_reference_dir(&dir, dtype).unwrap();
        println!("{report}");
        assert!(report.all_passed(), "{}", report.summary_table());
        // Every method of the folder is checked.
        for m in [
            "upgrad",
            "cagrad",
            "nash_mtl",
            "krum",
            "trimmed_mean",
            "gradvac",
            "config",
        ] {
            assert!(report.checks.iter().any(|c| c.tensor.starts_with(m)), "{m}");
        }
    }
}

/// g1 = (1, 0), g2 = (0, 2): orthogonal, different norms.
fn orthogonal() -> Vec<Vec<f64>> {
    vec![vec![1.0, 0.0], vec![0.0, 2.0]]
}

/// g1 = (1, 1), g2 = (-1, 0): conflicting (g1 . g2 = -1).
fn conflicting() -> Vec<Vec<f64>> {
    vec![vec![1.0, 1.0], vec![-1.0, 0.0]]
}

#[test]
fn orthogonal_gradients_known_answers() {
    let j = orthogonal();
    let g = gram(&j);
    // No conflict: UPGrad and DualProj leave the mean alone.
    assert!(close(&upgrad_weights(&g).unwrap(), &[0.5, 0.5], 1e-12));
    assert!(close(&dualproj_weights(&g).unwrap(), &[0.5, 0.5], 1e-12));
    // IMTL-G: equal projections on the unit gradients, d = (2/3, 2/3).
    let w = imtl_g_weights(&g).unwrap();
    assert!(
        close(&weighted_sum(&j, &w), &[2.0 / 3.0, 2.0 / 3.0], 1e-12),
        "{w:?}"
    );
    // Aligned-MTL equalises the components: B = diag(1, 1/2), d = (1/2, 1/2).
    let w = aligned_mtl_weights(&g).unwrap();
    assert!(close(&weighted_sum(&j, &w), &[0.5, 0.5], 1e-12), "{w:?}");
    // ConFIG: along (1, 1) with length sum_i g_i . unit = 3 / sqrt 2.
    let w = config_weights(&g).unwrap();
    assert!(close(&weighted_sum(&j, &w), &[1.5, 1.5], 1e-12), "{w:?}");
    // FairGrad alpha = 1 (= Nash): w_i = 1 / ||g_i||, d = (1, 1); alpha = 2: w_i = G_ii^(-2/3).
    assert!(close(
        &fairgrad_weights(&g, 1.0).unwrap(),
        &[1.0, 0.5],
        1e-10
    ));
    let w2 = fairgrad_weights(&g, 2.0).unwrap();
    assert!(close(&w2, &[1.0, 4f64.powf(-2.0 / 3.0)], 1e-10), "{w2:?}");
    // Nash-MTL (TorchJD): the Nash direction (1, 1) scaled to norm 1.
    let w = nash_torchjd_weights(&g, 1.0).unwrap();
    let s = 1.0 / 2f64.sqrt();
    assert!(close(&weighted_sum(&j, &w), &[s, s], 1e-10), "{w:?}");
    // MGDA: the min-norm point of the hull of (1,0), (0,2) is (4/5, 2/5), weights (4/5, 1/5).
    let w = mgda_frank_wolfe(&g, 1e-12, 10_000);
    assert!(close(&w, &[0.8, 0.2], 1e-6), "{w:?}");
    // PCGrad and GradVac (zero targets) do nothing without conflict: the sum.
    assert!(close(&pcgrad_ordered_weights(&g), &[1.0, 1.0], 0.0));
    assert!(close(
        &GradVacState::new(0.5, 1e-8).weights(&g),
        &[1.0, 1.0],
        0.0
    ));
}

#[test]
fn conflicting_gradients_known_answers() {
    let j = conflicting();
    let g = gram(&j);
    // PCGrad: g1' = (0, 1), g2' = (-1/2, 1/2); the sum is (-1/2, 3/2).
    let w = pcgrad_ordered_weights(&g);
    assert!(close(&weighted_sum(&j, &w), &[-0.5, 1.5], 1e-12), "{w:?}");
    // GradVac's first step (targets 0) is PCGrad up to its eps.
    let w = GradVacState::new(0.5, 1e-8).weights(&g);
    assert!(close(&weighted_sum(&j, &w), &[-0.5, 1.5], 1e-7), "{w:?}");
    // UPGrad / DualProj: the result conflicts with no task (d . g_i >= 0), and both
    // projections of the mean end on the dual cone's boundary for this pair.
    for w in [upgrad_weights(&g).unwrap(), dualproj_weights(&g).unwrap()] {
        let d = weighted_sum(&j, &w);
        for gi in &j {
            assert!(
                gi.iter().zip(&d).map(|(a, b)| a * b).sum::<f64>() >= -1e-9,
                "{d:?}"
            );
        }
    }
    // DualProj of the mean (0, 1/2): it conflicts with nothing (g2 . m = 0), so it stays.
    let w = dualproj_weights(&g).unwrap();
    assert!(close(&weighted_sum(&j, &w), &[0.0, 0.5], 1e-9), "{w:?}");
    // IMTL-G: d . u1 = d . u2 for the unit gradients.
    let d = weighted_sum(&j, &imtl_g_weights(&g).unwrap());
    let p1 = (d[0] + d[1]) / 2f64.sqrt();
    assert!((p1 - (-d[0])).abs() < 1e-12, "{d:?}");
    // MGDA: the min-norm point of the segment [(1,1), (-1,0)] is (-1/5, 2/5)... at gamma = 2/5:
    // argmin ||gamma (1,1) + (1-gamma) (-1,0)||^2 = (2 gamma - 1)^2 + gamma^2 -> gamma = 2/5.
    let w = mgda_frank_wolfe(&g, 1e-12, 10_000);
    assert!(close(&w, &[0.4, 0.6], 1e-6), "{w:?}");
}

#[test]
fn cagrad_torchjd_closed_forms() {
    // Orthogonal, equal norms: w* = (1/2, 1/2) by symmetry, weights (1 + c) / 2.
    let g = gram(&[vec![1.0, 0.0], vec![0.0, 1.0]]);
    for c in [0.0, 0.5, 1.0] {
        let w = cagrad_torchjd_weights(&g, c).unwrap();
        assert!(
            close(&w, &[(1.0 + c) / 2.0, (1.0 + c) / 2.0], 1e-7),
            "c {c}: {w:?}"
        );
    }
}

#[test]
fn trimmed_mean_and_krum_known_answers_and_task_counts() {
    let j = vec![vec![1.0, 5.0], vec![2.0, -1.0], vec![10.0, 0.0]];
    assert_eq!(trimmed_mean(&j, 1).unwrap(), vec![2.0, 0.0]);
    let err = trimmed_mean(&j[..2], 1).unwrap_err();
    assert!(err.contains("K >= 3"), "{err}");
    let rows: Vec<Vec<f64>> = [1.0, 1.1, 0.7, 100.0, -50.0]
        .iter()
        .map(|&x| vec![x, 0.0])
        .collect();
    let w = krum_weights(&gram(&rows), 1, 1).unwrap();
    assert_eq!(w, vec![1.0, 0.0, 0.0, 0.0, 0.0]);
    let err = krum_weights(&gram(&rows[..3]), 1, 1).unwrap_err();
    assert!(err.contains("K >= 4"), "{err}");
    // The config path says so too, naming the key.
    for (m, k) in [("trimmed_mean", 2), ("krum", 3)] {
        let err = build(&WeightingConfig::named(m).unwrap(), k)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("weighting.method") && err.contains("needs at least"),
            "{err}"
        );
    }
}

#[test]
fn unknown_method_lists_the_known_ones() {
    let err = WeightingConfig::named("gradsurgery")
        .unwrap_err()
        .to_string();
    for m in METHODS {
        assert!(err.contains(m), "{m} missing from: {err}");
    }
}

#[test]
fn solver_failure_falls_back_to_the_mean_and_says_so() {
    // 13 tasks exceed the exact simplex search: CAGrad (TorchJD form) cannot solve.
    let j: Vec<Vec<f64>> = (0..13)
        .map(|i| {
            (0..20)
                .map(|d| ((i * 7 + d * 3) % 11) as f64 - 5.0)
                .collect()
        })
        .collect();
    assert!(simplex_qp(&gram(&j), &[0.0; 13]).is_err());
    let mut m = JdMethod::new("cagrad", JdKind::CaGradTorchjd(0.5));
    let losses = vec![1.0; 13];
    let c = m.combine(&StepInfo::with_grads(&losses, &j));
    let why = c.fallback.clone().expect("a fallback");
    assert!(
        why.contains("cagrad") && why.contains("simplex_qp"),
        "{why}"
    );
    let shared = c.shared_grad(&j);
    assert!(close(&shared, &weighted_sum(&j, &[1.0; 13]), 0.0));
    assert!(shared.iter().all(|v| v.is_finite()));
    // A non-finite gradient gives a non-finite direction: the fallback too, never a NaN step
    // from the solver itself.
    let mut bad = conflicting();
    bad[0][0] = f64::NAN;
    let c =
        JdMethod::new("upgrad", JdKind::UpGrad).combine(&StepInfo::with_grads(&[1.0, 1.0], &bad));
    assert!(c.fallback.is_some());
}

#[test]
fn nonneg_qp_meets_its_kkt_conditions() {
    let j = vec![
        vec![1.0, 0.2, -0.5, 0.3],
        vec![-0.4, 1.5, 0.1, 0.0],
        vec![0.3, -0.2, 0.8, -1.1],
    ];
    let g = gram(&j);
    let q = [-1.0, 0.5, -0.2];
    let x = nonneg_qp(&g, &q).unwrap();
    for i in 0..3 {
        let grad: f64 = (0..3).map(|k| g[i][k] * x[k]).sum::<f64>() + q[i];
        assert!(
            x[i] >= 0.0 && grad >= -1e-12 && (x[i] * grad).abs() < 1e-12,
            "{x:?}"
        );
    }
}

#[test]
fn training_scale_puts_mean_methods_on_the_sum_scale() {
    // Without conflict UPGrad is the mean; in training it is K times that, the plain sum.
    let j = orthogonal();
    let mut m = JdMethod::new("upgrad", JdKind::UpGrad);
    let c = m.combine(&StepInfo::with_grads(&[1.0, 1.0], &j));
    assert!(c.fallback.is_none());
    assert!(close(&c.shared_grad(&j), &[1.0, 2.0], 1e-12));
}

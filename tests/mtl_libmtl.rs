//! LibMTL's loss-scale methods (`mtl::weighting::libmtl`): GLS, IMTL-L, STCH and DB-MTL on
//! two-task toy problems with answers worked out by hand from each method's loss.

use metalearn::mtl::weighting::libmtl::{DbMtl, Gls, ImtlL, Stch};
use metalearn::mtl::weighting::{StepInfo, Weighting};

fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= tol * (1.0 + y.abs()))
}

fn at_epoch(losses: &[f64], epoch: usize) -> StepInfo<'_> {
    StepInfo {
        epoch,
        ..StepInfo::losses(losses)
    }
}

#[test]
fn gls_weights_are_the_geometric_mean_gradient() {
    // d/dL_i (L_1 L_2)^(1/2) = GM / (2 L_i) = (1, 1/4) at (1, 4); times K = 2.
    assert!(close(&Gls::weights(&[1.0, 4.0]), &[2.0, 0.5], 1e-12));
    let c = Gls.combine(&StepInfo::losses(&[3.0, 3.0]));
    assert!(close(&c.weights, &[1.0, 1.0], 1e-12));
}

#[test]
fn imtl_l_scales_every_loss_to_one() {
    let mut m = ImtlL::new(2, 0.1);
    let mut w = Vec::new();
    for _ in 0..2000 {
        w = m.combine(&StepInfo::losses(&[2.0, 0.5])).weights;
    }
    // Fixed point e^s L = 1.
    assert!(close(&w, &[0.5, 2.0], 1e-6), "{w:?}");
}

#[test]
fn stch_warms_up_on_log_losses_then_smooths_the_max() {
    let mut m = Stch::new(1.0, 1);
    // Epoch 0: ln-loss weights 1 / L.
    assert!(close(
        &m.combine(&at_epoch(&[2.0, 4.0], 0)).weights,
        &[0.5, 0.25],
        1e-12
    ));
    // Epoch 1 (= warmup): still 1 / L, and the nadir is the epoch's mean loss, (2, 1).
    m.combine(&at_epoch(&[1.0, 1.5], 1));
    m.combine(&at_epoch(&[3.0, 0.5], 1));
    // At the nadir every log ratio is 0: softmax 1/2, weights K / 2 / L = (1/2, 1).
    assert!(close(
        &m.combine(&at_epoch(&[2.0, 1.0], 2)).weights,
        &[0.5, 1.0],
        1e-12
    ));
    assert_eq!(m.nadir.as_deref(), Some(&[2.0, 1.0][..]));
    // Task 1 at twice its nadir: softmax (2/3, 1/3), weights (2 (2/3) / 4, 2 (1/3) / 1).
    let w = m.combine(&at_epoch(&[4.0, 1.0], 2)).weights;
    assert!(close(&w, &[1.0 / 3.0, 2.0 / 3.0], 1e-12), "{w:?}");
}

#[test]
fn db_mtl_scales_each_averaged_log_gradient_to_the_largest_norm() {
    let g = vec![vec![1.0, 0.0], vec![0.0, 3.0]];
    let mut m = DbMtl::new(0.9, 0.0);
    let c = m.combine(&StepInfo::with_grads(&[1.0, 1.0], &g));
    // h = 0.1 g (EMA from 0), norms 0.1 and 0.3: task 1 scaled by 3.
    assert!(
        close(c.shared.as_deref().unwrap(), &[0.3, 0.3], 1e-6),
        "{c:?}"
    );
    // Loss 2 halves the log-loss gradient: heads get 1 / L.
    let c = m.combine(&StepInfo::with_grads(&[2.0, 1.0], &g));
    assert!(close(&c.weights, &[0.5, 1.0], 1e-6));
}

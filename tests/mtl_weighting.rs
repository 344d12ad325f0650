//! Hand-checked cases for every weighting method.

use metalearn::mtl::weighting::*;

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

fn assert_vec(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!(close(*x, *y, tol), "{a:?} != {b:?}");
    }
}

#[test]
fn equal_weights_are_one() {
    let mut m = Equal::new(3);
    let c = m.combine(&StepInfo::losses(&[1.0, 2.0, 3.0]));
    assert_eq!(c.weights, vec![1.0; 3]);
    assert!(c.shared.is_none());
    // The shared gradient is then the plain sum.
    assert_vec(
        &c.shared_grad(&[vec![1.0, 2.0], vec![3.0, -1.0], vec![0.0, 1.0]]),
        &[4.0, 2.0],
        0.0,
    );
}

#[test]
fn uncertainty_weights_and_update_by_hand() {
    let mut m = Uncertainty::new(2, 0.1);
    // s = 0: w = 0.5 exp(0) = 0.5; ds = 0.5 - 0.5 L -> [0, -1.5]; s -= 0.1 ds -> [0, 0.15].
    let c = m.combine(&StepInfo::losses(&[1.0, 4.0]));
    assert_vec(&c.weights, &[0.5, 0.5], 1e-15);
    assert_vec(&m.log_var, &[0.0, 0.15], 1e-15);
    let c = m.combine(&StepInfo::losses(&[1.0, 4.0]));
    assert_vec(&c.weights, &[0.5, 0.5 * (-0.15f64).exp()], 1e-15);
    // Fixed point: s = log L.
    for _ in 0..5000 {
        m.combine(&StepInfo::losses(&[1.0, 4.0]));
    }
    assert_vec(&m.log_var, &[0.0, 4f64.ln()], 1e-9);
}

#[test]
fn dwa_by_hand() {
    let mut m = Dwa::new(2, 2.0);
    assert_eq!(
        m.combine(&StepInfo::losses(&[1.0, 1.0])).weights,
        vec![1.0, 1.0]
    );
    m.end_epoch(&[1.0, 1.0]);
    assert_eq!(
        m.combine(&StepInfo::losses(&[1.0, 1.0])).weights,
        vec![1.0, 1.0]
    );
    m.end_epoch(&[0.5, 1.0]);
    // r = [0.5, 1]; w = 2 exp(r/2) / sum exp(r/2).
    let (a, b) = ((0.25f64).exp(), (0.5f64).exp());
    let want = [2.0 * a / (a + b), 2.0 * b / (a + b)];
    assert_vec(
        &m.combine(&StepInfo::losses(&[0.5, 1.0])).weights,
        &want,
        1e-15,
    );
}

#[test]
fn rlw_is_a_scaled_softmax_with_mean_one() {
    let mut m = RandomLossWeighting::new(3, 7);
    let mut mean = [0.0; 3];
    let draws = 20000;
    for _ in 0..draws {
        let w = m.combine(&StepInfo::losses(&[1.0, 1.0, 1.0])).weights;
        assert!(w.iter().all(|&x| x > 0.0));
        assert!(close(w.iter().sum::<f64>(), 3.0, 1e-12));
        for (s, x) in mean.iter_mut().zip(&w) {
            *s += x / draws as f64;
        }
    }
    // By symmetry every weight averages 1.
    assert_vec(&mean, &[1.0, 1.0, 1.0], 0.02);
    // Reproducible from the seed.
    let a = RandomLossWeighting::new(3, 1)
        .combine(&StepInfo::losses(&[1.0; 3]))
        .weights;
    let b = RandomLossWeighting::new(3, 1)
        .combine(&StepInfo::losses(&[1.0; 3]))
        .weights;
    assert_eq!(a, b);
}

#[test]
fn gradnorm_by_hand() {
    // ||g1|| = 1, ||g2|| = 3, losses at their initial values (r = 1), w = [1, 1]:
    // G = [1, 3], mean 2, targets [2, 2]; d/dw = sign(G - target) ||g|| = [-1, 3];
    // w = [1, 1] - 0.1 [-1, 3] = [1.1, 0.7], renormalised to sum 2: [1.2222, 0.7778].
    let mut m = GradNorm::new(2, 1.5, 0.1);
    let g = vec![vec![1.0, 0.0], vec![0.0, 3.0]];
    let c = m.combine(&StepInfo::with_grads(&[2.0, 1.0], &g));
    assert_eq!(c.weights, vec![1.0, 1.0]);
    assert_vec(&m.weights, &[1.1 * 2.0 / 1.8, 0.7 * 2.0 / 1.8], 1e-12);
    assert!(m.needs_grads());
}

#[test]
fn pcgrad_two_conflicting_gradients() {
    // g1 = (1, 0), g2 = (-1, 1): g1.g2 = -1 < 0.
    // g1' = g1 - (-1/2) g2 = (0.5, 0.5); g2' = g2 - (-1/1) g1 = (0, 1); sum (0.5, 1.5).
    let g = vec![vec![1.0, 0.0], vec![-1.0, 1.0]];
    let mut m = PcGrad::new(0);
    let p = m.project(&g);
    assert_vec(&p[0], &[0.5, 0.5], 1e-15);
    assert_vec(&p[1], &[0.0, 1.0], 1e-15);
    let c = m.combine(&StepInfo::with_grads(&[1.0, 1.0], &g));
    assert_vec(c.shared.as_ref().unwrap(), &[0.5, 1.5], 1e-15);
    // Non-conflicting gradients are left alone.
    let g = vec![vec![1.0, 0.0], vec![1.0, 1.0]];
    let c = m.combine(&StepInfo::with_grads(&[1.0, 1.0], &g));
    assert_vec(c.shared.as_ref().unwrap(), &[2.0, 1.0], 1e-15);
}

#[test]
fn mgda_min_norm_points() {
    // Orthogonal unit vectors: the min-norm point of the segment is the midpoint.
    let w = min_norm_weights(&gram(&[vec![1.0, 0.0], vec![0.0, 1.0]]));
    assert_vec(&w, &[0.5, 0.5], 1e-15);
    // (1, 0) and (2, 0): the nearest point to the origin is (1, 0) itself.
    let w = min_norm_weights(&gram(&[vec![1.0, 0.0], vec![2.0, 0.0]]));
    assert_vec(&w, &[1.0, 0.0], 1e-15);
    // (2, 0) and (0, 1): gamma = 1 / 5 -> point (0.4, 0.8), orthogonal to (2, -1).
    let w = min_norm_weights(&gram(&[vec![2.0, 0.0], vec![0.0, 1.0]]));
    assert_vec(&w, &[0.2, 0.8], 1e-15);
    // Three vectors (Frank-Wolfe): (1,0), (0,1), (1,1) -> (0.5, 0.5).
    let g = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![1.0, 1.0]];
    let w = min_norm_weights(&gram(&g));
    let p = weighted_sum(&g, &w);
    assert_vec(&p, &[0.5, 0.5], 1e-12);
    // The update is T times the min-norm point.
    let c = Mgda::new().combine(&StepInfo::with_grads(
        &[1.0, 1.0],
        &[vec![1.0, 0.0], vec![0.0, 1.0]],
    ));
    assert_vec(c.shared.as_ref().unwrap(), &[1.0, 1.0], 1e-15);
}

#[test]
fn cagrad_by_hand() {
    // g1 = (1, 0), g2 = (0, 1), c = 0.5: by symmetry w = (1/2, 1/2), g_w = g0 = (1/2, 1/2),
    // sqrt(phi) = c ||g0||, lambda = sqrt(phi) / ||g_w|| = c, d = (1 + c) g0 / (1 + c^2)
    // = 1.5 / 1.25 (0.5, 0.5) = (0.6, 0.6); times T = 2: (1.2, 1.2).
    let g = vec![vec![1.0, 0.0], vec![0.0, 1.0]];
    let c = CaGrad::new(0.5).combine(&StepInfo::with_grads(&[1.0, 1.0], &g));
    assert_vec(c.shared.as_ref().unwrap(), &[1.2, 1.2], 1e-6);
    // c = 0 is gradient descent on the sum.
    let g = vec![vec![1.0, 0.0], vec![-0.5, 1.0]];
    let c = CaGrad::new(0.0).combine(&StepInfo::with_grads(&[1.0, 1.0], &g));
    assert_vec(c.shared.as_ref().unwrap(), &[0.5, 1.0], 1e-12);
    // Conflicting pair: the inner weights match a brute-force grid search of the objective.
    let m = CaGrad::new(0.4);
    let gm = gram(&g);
    let w = m.inner_weights(&gm);
    let obj = |x: f64| {
        let gw = weighted_sum(&g, &[x, 1.0 - x]);
        let g0 = weighted_sum(&g, &[0.5, 0.5]);
        dot(&gw, &g0) + 0.4 * norm(&g0) * norm(&gw)
    };
    let best = (0..=100000)
        .map(|i| i as f64 / 100000.0)
        .min_by(|a, b| obj(*a).total_cmp(&obj(*b)))
        .unwrap();
    assert!(close(w[0], best, 1e-4), "{w:?} vs {best}");
    // CAGrad raises the worst task's rate of improvement over plain averaging:
    // min_i g_i . d / ||d|| >= min_i g_i . g0 / ||g0||.
    let d = m
        .clone()
        .combine(&StepInfo::with_grads(&[1.0, 1.0], &g))
        .shared
        .unwrap();
    let g0 = weighted_sum(&g, &[1.0, 1.0]);
    let worst = |v: &[f64]| {
        g.iter()
            .map(|gi| dot(gi, v) / norm(v))
            .fold(f64::INFINITY, f64::min)
    };
    assert!(worst(&d) >= worst(&g0) - 1e-12);
}

#[test]
fn nash_bargaining_solution() {
    // Orthogonal g1 = (1, 0), g2 = (0, 2): G = diag(1, 4), alpha_i^2 G_ii = 1 -> alpha = (1, 0.5);
    // d = (1, 1): equal projection on both tasks.
    let g = vec![vec![1.0, 0.0], vec![0.0, 2.0]];
    let a = nash_weights(&gram(&g)).unwrap();
    assert_vec(&a, &[1.0, 0.5], 1e-6);
    let c = NashMtl::new().combine(&StepInfo::with_grads(&[1.0, 1.0], &g));
    assert_vec(c.shared.as_ref().unwrap(), &[1.0, 1.0], 1e-6);
    assert_vec(&c.weights, &[1.0, 0.5], 1e-6);
    // Non-orthogonal: G alpha = 1 / alpha holds.
    let g = vec![vec![1.0, 0.0], vec![1.0, 1.0], vec![0.0, -0.3]];
    let gm = gram(&g);
    let a = nash_weights(&gm).unwrap();
    for i in 0..3 {
        let ga: f64 = (0..3).map(|j| gm[i][j] * a[j]).sum();
        assert!(a[i] > 0.0 && close(ga * a[i], 1.0, 1e-6), "{a:?}");
    }
}

/// The alpha-fair equation `G x = x^(-1/alpha)` on Gramians that are badly conditioned (nearly
/// collinear, nearly opposed, norms 1e3 apart) and far from unit scale: the solver converges
/// (these failed the earlier un-normalised Newton iteration) and its root satisfies the
/// equation on the ridged `G + 1e-10 (trace(G) / K) I` (the documented problem) to 1e-9.
#[test]
fn alpha_fair_solves_ill_conditioned_gramians() {
    let bases: [[f64; 3]; 3] = [[0.3, -0.7, 0.2], [0.5, 0.1, -0.4], [-0.2, 0.6, 0.9]];
    let cases: [(f64, f64); 4] = [(1e-6, 1.0), (-0.9999, 1.0), (1e-3, 1e3), (0.5, 1e-2)];
    for (mix, ratio) in cases {
        for scale in [1e-8, 1.0, 1e4] {
            let g: Vec<Vec<f64>> = (0..3)
                .map(|i| {
                    let s = scale * if i == 2 { ratio } else { 1.0 };
                    (0..3)
                        .map(|d| {
                            let v = if i == 0 {
                                bases[0][d]
                            } else if mix < 0.0 {
                                mix * bases[0][d] + 1e-4 * bases[i][d]
                            } else {
                                bases[0][d] + mix * bases[i][d]
                            };
                            s * v
                        })
                        .collect()
                })
                .collect();
            let gm = gram(&g);
            let ridge = 1e-10 * (gm[0][0] + gm[1][1] + gm[2][2]) / 3.0;
            let ridged: Vec<Vec<f64>> = (0..3)
                .map(|i| {
                    (0..3)
                        .map(|j| gm[i][j] + if i == j { ridge } else { 0.0 })
                        .collect()
                })
                .collect();
            for alpha in [0.5, 1.0, 2.0] {
                let x = solvers::alpha_fair(&gm, alpha)
                    .unwrap_or_else(|e| panic!("mix {mix} ratio {ratio} scale {scale}: {e:?}"));
                for i in 0..3 {
                    let gx: f64 = (0..3).map(|j| ridged[i][j] * x[j]).sum();
                    let size: f64 = (0..3).map(|j| (ridged[i][j] * x[j]).abs()).sum::<f64>()
                        + x[i].powf(-1.0 / alpha);
                    let err = (gx - x[i].powf(-1.0 / alpha)).abs() / size;
                    assert!(
                        x[i] > 0.0 && err < 1e-8,
                        "mix {mix} scale {scale} alpha {alpha}: {x:?} err {err}"
                    );
                }
            }
        }
    }
}

#[test]
fn unknown_method_names_the_key() {
    let err = WeightingConfig::named("no_such_method")
        .expect_err("unknown method")
        .to_string();
    assert!(
        err.contains("weighting.method")
            && err.contains("no_such_method")
            && err.contains("pcgrad")
            && err.contains("gradvac"),
        "{err}"
    );
    for m in METHODS {
        let cfg = WeightingConfig::named(m).unwrap();
        assert_eq!(cfg.method(), m);
        assert_eq!(build(&cfg, 4).unwrap().name(), m);
    }
}

/// The Gramian weightings of MGDA, CAGrad and Nash-MTL on a 3-task Jacobian.
fn three_tasks() -> Vec<Vec<f64>> {
    vec![
        vec![1.0, 0.2, -0.5, 0.3],
        vec![-0.4, 1.5, 0.1, 0.0],
        vec![0.3, -0.2, 0.8, -1.1],
    ]
}

#[test]
fn gramian_weightings_aggregate_their_weights_and_use_the_carried_gramian() {
    let j = three_tasks();
    let g = gram(&j);
    let losses = [1.0, 0.8, 1.2];
    let carried = StepInfo {
        gramian: Some(&g),
        ..StepInfo::with_grads(&losses, &j)
    };
    let computed = StepInfo::with_grads(&losses, &j);
    let make = |name: &str| -> Box<dyn Weighting> {
        build(&WeightingConfig::named(name).unwrap(), 3).unwrap()
    };
    for name in ["mgda", "cagrad", "nash"] {
        let a = make(name).combine(&carried);
        assert_eq!(a, make(name).combine(&computed), "{name}");
        // aggregate = weights @ J, with the weights a function of the Gramian alone.
        let w = match name {
            "mgda" => Mgda::new().weights(&g).unwrap(),
            "cagrad" => CaGrad::new(0.4).weights(&g).unwrap(),
            _ => NashMtl::new().weights(&g).unwrap(),
        };
        assert_eq!(a.shared, Some(weighted_sum(&j, &w)), "{name}");
        let heads = if name == "nash" { w } else { vec![1.0; 3] };
        assert_eq!(a.weights, heads, "{name}");
    }
    // GradNorm's gradient norms are the Gramian's diagonal, the same bits either way.
    let mut a = GradNorm::new(3, 1.5, 0.1);
    let mut b = a.clone();
    a.combine(&carried);
    b.combine(&computed);
    assert_eq!(a.weights, b.weights);
    // The pairwise cosines from the Gramian are those of the vectors.
    assert_eq!(gram_cosine(&g, 0, 2), cosine(&j[0], &j[2]));
}

/// TorchJD's reference vectors (`$METALEARN_REFERENCE_MTL`, default `../shared/reference-mtl`):
/// the file's bytes, or `None` after a note (a failure under `CI=true`) when absent.
fn torchjd_reference() -> Option<Vec<u8>> {
    let dir = match std::env::var_os("METALEARN_REFERENCE_MTL") {
        Some(p) => std::path::PathBuf::from(p),
        None => {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/reference-mtl")
        }
    };
    let file = dir.join("mtl_aggregators.safetensors");
    let bytes = std::fs::read(&file).ok();
    if bytes.is_none() {
        let msg = format!("TorchJD reference vectors not found at {}", file.display());
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        eprintln!("skipped: {msg}");
    }
    bytes
}

fn relative_error(got: &[f64], want: &[f64]) -> f64 {
    let scale = want.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    got.iter()
        .zip(want)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()))
        / scale
}

/// MGDA, CAGrad and Nash-MTL against TorchJD 0.18 on its four Jacobians. Conventions: our MGDA
/// weights are `T` times the min-norm weights, our CAGrad ones `T / (1 + c^2)` times TorchJD's
/// (the official code's rescale), and TorchJD scales Nash-MTL's update down to norm 1 (so its
/// direction is compared). Tolerances: 1e-4 relative for CAGrad and Nash-MTL; 1e-2 for MGDA,
/// whose TorchJD solver stops at epsilon 1e-3 while ours is exact, so ours must also reach a
/// norm no larger than TorchJD's.
#[test]
fn gramian_weightings_match_the_torchjd_reference_vectors() {
    let Some(bytes) = torchjd_reference() else {
        return;
    };
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("valid safetensors");
    let get = |name: &str| -> (Vec<f64>, Vec<usize>) {
        let v = st.tensor(name).unwrap_or_else(|_| panic!("{name}"));
        let data = v.data().chunks_exact(8);
        let data = data.map(|c| f64::from_le_bytes(c.try_into().unwrap()));
        (data.collect(), v.shape().to_vec())
    };
    let unit = |v: &[f64]| -> Vec<f64> { v.iter().map(|x| x / norm(v)).collect() };
    for i in 0..4 {
        let (flat, shape) = get(&format!("input/J{i}"));
        let j: Vec<Vec<f64>> = flat.chunks(shape[1]).map(|r| r.to_vec()).collect();
        let (g, t) = (gram(&j), j.len() as f64);
        let mgda: Vec<f64> = Mgda::new()
            .weights(&g)
            .unwrap()
            .iter()
            .map(|w| w / t)
            .collect();
        let (want, _) = get(&format!("expected/mgda/J{i}/weights"));
        assert!(
            relative_error(&mgda, &want) < 1e-2,
            "J{i} mgda {mgda:?} vs {want:?}"
        );
        let (theirs, _) = get(&format!("expected/mgda/J{i}/aggregate"));
        assert!(norm(&weighted_sum(&j, &mgda)) <= norm(&theirs) * (1.0 + 1e-12));
        let cagrad: Vec<f64> = CaGrad::new(0.5)
            .weights(&g)
            .unwrap()
            .iter()
            .map(|w| w * 1.25 / t)
            .collect();
        let (want, _) = get(&format!("expected/cagrad/J{i}/weights"));
        assert!(
            relative_error(&cagrad, &want) < 1e-4,
            "J{i} cagrad {cagrad:?} vs {want:?}"
        );
        let nash = weighted_sum(&j, &NashMtl::new().weights(&g).unwrap());
        let (want, _) = get(&format!("expected/nash_mtl/J{i}/aggregate"));
        let err = relative_error(&unit(&nash), &unit(&want));
        assert!(err < 1e-4, "J{i} nash direction error {err}");
    }
}

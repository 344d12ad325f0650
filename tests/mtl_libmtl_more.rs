//! LibMTL's later methods (`mtl::weighting::libmtl_grad`: GradDrop, MoCo, MoDo, SDMGrad;
//! `mtl::weighting::libmtl`: FAMO, ExcessMTL) on two-task toy problems with orthogonal and with
//! opposed gradients, the answers worked out by hand from each method's update; their
//! `[weighting]` options; and a few training steps of each on the MNIST example (skipped when
//! the data is absent), FAMO's after-step hook included.

mod common;

use metalearn::mtl::config::{build_model, load_data, task_specs};
use metalearn::mtl::train::{train, GramianOn, TrainOptions};
use metalearn::mtl::weighting::libmtl::{ExcessMtl, Famo};
use metalearn::mtl::weighting::libmtl_grad::{project_simplex, GradDrop, MoCo, MoDo, SdmGrad};
use metalearn::mtl::weighting::{
    build, Combined, ExcessMtlConfig, FamoConfig, GradDropConfig, MoCoConfig, MoDoConfig,
    SdmGradConfig, StepInfo, Weighting, WeightingConfig,
};
use metalearn::mtl::MtlConfig;
use std::path::Path;

fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= tol * (1.0 + y.abs()))
}

fn shared(c: &Combined) -> &[f64] {
    c.shared.as_deref().expect("a shared update")
}

/// Orthogonal gradients of norms 1 and 2.
fn orthogonal() -> Vec<Vec<f64>> {
    vec![vec![1.0, 0.0], vec![0.0, 2.0]]
}

/// Exactly opposed gradients of norm 1.
fn opposed() -> Vec<Vec<f64>> {
    vec![vec![1.0, 0.0], vec![-1.0, 0.0]]
}

#[test]
fn simplex_projection_shifts_and_clips() {
    // (0.445, 0.295) sums to 0.74: both move up by 0.13.
    assert!(close(
        &project_simplex(&[0.445, 0.295]),
        &[0.575, 0.425],
        1e-12
    ));
    // Far apart: the larger takes everything.
    assert!(close(&project_simplex(&[-0.3, -6.8]), &[1.0, 0.0], 1e-12));
    assert!(close(
        &project_simplex(&[0.2, 0.3, 0.5]),
        &[0.2, 0.3, 0.5],
        1e-12
    ));
}

#[test]
fn graddrop_keeps_unconflicted_coordinates_and_picks_a_sign_by_purity() {
    // Every coordinate has one non-zero gradient: purity 1 (or 0) keeps it, the sum as is.
    let g = vec![vec![1.0, 0.0, 2.0], vec![0.0, -3.0, 0.0]];
    let c = GradDrop::new(0.0, 7).combine(&StepInfo::with_grads(&[1.0, 1.0], &g));
    assert!(close(shared(&c), &[1.0, -3.0, 2.0], 1e-9), "{c:?}");
    assert_eq!(c.weights, vec![1.0, 1.0]);
    // Opposed 3 and -1 on every coordinate: P = (1 + 2/4) / 2 = 3/4 keeps the positive one. With
    // leak 0.2 a coordinate is 3 - 0.2 = 2.8 (positive kept) or 0.6 - 1 = -0.4.
    let n = 20_000;
    let g = vec![vec![3.0; n], vec![-1.0; n]];
    let mut m = GradDrop::new(0.2, 1);
    let s = m.drop_signs(&g);
    let up = s.iter().filter(|&&v| (v - 2.8).abs() < 1e-9).count();
    let down = s.iter().filter(|&&v| (v + 0.4).abs() < 1e-9).count();
    assert_eq!(up + down, n);
    assert!((up as f64 / n as f64 - 0.75).abs() < 0.02, "{up}");
    // Reproducible from the seed, and another seed draws otherwise.
    assert_eq!(GradDrop::new(0.2, 1).drop_signs(&g), s);
    assert_ne!(GradDrop::new(0.2, 2).drop_signs(&g), s);
    // Exactly opposed and equal: P = 1/2, one of the two survives.
    let s = GradDrop::new(0.0, 3).drop_signs(&opposed());
    assert!(s == vec![1.0, 0.0] || s == vec![-1.0, 0.0], "{s:?}");
}

#[test]
fn moco_tracks_loss_scaled_gradients_and_softmaxes_the_weights() {
    // Step 1 (beta_1 = 0.5, gamma_1 = 0.1): h = L_i g_i / ||g_i|| = (2, 0), (0, 1) with losses
    // (2, 1); y = h / 2 = (1, 0), (0, 0.5); Y Y^T = diag(1, 1/4), so
    // lambda = softmax(1/2 - 0.1 (1/2), 1/2 - 0.1 (1/8)) = softmax(0.45, 0.4875).
    let mut m = MoCo::new(0.5, 0.5, 0.1, 0.5, 0.0);
    let c = m.combine(&StepInfo::with_grads(&[2.0, 1.0], &orthogonal()));
    let l1 = 1.0 / (1.0 + (0.0375f64).exp());
    let l2 = 1.0 - l1;
    assert!(close(&m.lambda, &[l1, l2], 1e-7), "{:?}", m.lambda);
    // Update K (l1 y_1 + l2 y_2) = 2 (l1, 0.5 l2).
    assert!(close(shared(&c), &[2.0 * l1, l2], 1e-7), "{c:?}");
    assert_eq!(c.weights, vec![1.0, 1.0]);
    // Opposed with equal losses: Y Y^T lambda = 0 keeps lambda uniform, the update cancels.
    let mut m = MoCo::new(0.5, 0.5, 0.1, 0.5, 0.0);
    for _ in 0..5 {
        let c = m.combine(&StepInfo::with_grads(&[1.0, 1.0], &opposed()));
        assert!(close(shared(&c), &[0.0, 0.0], 1e-9), "{c:?}");
        assert!(close(&m.lambda, &[0.5, 0.5], 1e-12));
    }
}

#[test]
fn modo_steps_to_the_regularised_min_norm_weights() {
    // gamma 0.1, rho 0.1, G = diag(1, 4): lambda - gamma (G lambda + rho lambda) from (1/2, 1/2)
    // is (0.445, 0.295), projected (0.575, 0.425); update 2 (0.575 g_1 + 0.425 g_2).
    let mut m = MoDo::new(0.1, 0.1);
    let c = m.combine(&StepInfo::with_grads(&[1.0, 1.0], &orthogonal()));
    assert!(close(&m.lambda, &[0.575, 0.425], 1e-12), "{:?}", m.lambda);
    assert!(close(shared(&c), &[1.15, 1.7], 1e-12), "{c:?}");
    // Fixed point: lambda_i proportional to 1 / (||g_i||^2 + rho) = (1 / 1.1, 1 / 4.1).
    for _ in 0..2000 {
        m.combine(&StepInfo::with_grads(&[1.0, 1.0], &orthogonal()));
    }
    assert!(
        close(&m.lambda, &[4.1 / 5.2, 1.1 / 5.2], 1e-9),
        "{:?}",
        m.lambda
    );
    // Opposed, equal: G lambda = 0, the uniform shrink projects back; the update cancels.
    let mut m = MoDo::new(0.1, 0.1);
    let c = m.combine(&StepInfo::with_grads(&[1.0, 1.0], &opposed()));
    assert!(close(&m.lambda, &[0.5, 0.5], 1e-12));
    assert!(close(shared(&c), &[0.0, 0.0], 1e-12));
    // Opposed 2 and -1: the minimiser of (3 l - 1)^2 + rho (l^2 + (1 - l)^2) is
    // l = (6 + 2 rho) / (18 + 4 rho).
    let g = vec![vec![2.0, 0.0], vec![-1.0, 0.0]];
    let mut m = MoDo::new(0.01, 0.1);
    for _ in 0..3000 {
        m.combine(&StepInfo::with_grads(&[1.0, 1.0], &g));
    }
    let l = 6.2 / 18.4;
    assert!(close(&m.lambda, &[l, 1.0 - l], 1e-9), "{:?}", m.lambda);
}

#[test]
fn sdmgrad_weights_follow_the_normalised_gramian() {
    // Orthogonal, equal norms: A = I, b = (1/2, 1/2); the gradient A w + lamda b is equal in
    // both coordinates, so w stays (1/2, 1/2) and the update is the sum.
    let eq = vec![vec![1.0, 0.0], vec![0.0, 1.0]];
    let mut m = SdmGrad::new(0.3, 20);
    let c = m.combine(&StepInfo::with_grads(&[1.0, 1.0], &eq));
    assert!(close(&m.w, &[0.5, 0.5], 1e-12));
    assert!(close(shared(&c), &[1.0, 1.0], 1e-12), "{c:?}");
    // Norms 1 and 3: s = 2, A = diag(1, 9) / 4, b = (1/8, 9/8). The first SGD step from
    // (1/2, 1/2) is w - 5 (0.1625, 1.4625) = (-0.3125, -6.8125), projected (1, 0), where it
    // stays (the second coordinate's gradient stays larger). Update
    // (2 * 1 + 0.3) / 1.3 g_1 + 0.3 / 1.3 g_2.
    let g = vec![vec![1.0, 0.0], vec![0.0, 3.0]];
    let mut m = SdmGrad::new(0.3, 20);
    let c = m.combine(&StepInfo::with_grads(&[1.0, 1.0], &g));
    assert!(close(&m.w, &[1.0, 0.0], 1e-12), "{:?}", m.w);
    assert!(close(shared(&c), &[2.3 / 1.3, 0.9 / 1.3], 1e-9), "{c:?}");
    // Opposed, equal: A w = 0 and b = 0 at the uniform w; the update cancels.
    let mut m = SdmGrad::new(0.3, 20);
    let c = m.combine(&StepInfo::with_grads(&[1.0, 1.0], &opposed()));
    assert!(close(&m.w, &[0.5, 0.5], 1e-12));
    assert!(close(shared(&c), &[0.0, 0.0], 1e-12), "{c:?}");
}

#[test]
fn famo_weights_the_log_losses_and_moves_them_by_the_improvement() {
    // z = (1/2, 1/2), D = (1, 3): c = 1/2 + 1/6 = 2/3, weights z / (c D) = (3/4, 1/4), times 2.
    let mut m = Famo::new(0.025, 0.001);
    assert!(m.needs_losses_after_step() && !m.needs_grads());
    let c = m.combine(&StepInfo::losses(&[1.0, 3.0]));
    assert!(close(&c.weights, &[1.5, 0.5], 1e-7), "{c:?}");
    // Task 1's loss halved: delta = (ln 2, 0), d = z (delta - z . delta) = (ln 2 / 4, -ln 2 / 4);
    // Adam's first step is lr * sign(d) (the decay is 0 at logits 0).
    m.after_step(&[0.5, 3.0]);
    assert!(close(&m.logits, &[-0.025, 0.025], 1e-6), "{:?}", m.logits);
    // At equal losses the weights are 2 softmax(logits): task 1, which improved, weighs less.
    let c = m.combine(&StepInfo::losses(&[1.0, 1.0]));
    let e = (0.05f64).exp();
    assert!(
        close(&c.weights, &[2.0 / (1.0 + e), 2.0 * e / (1.0 + e)], 1e-6),
        "{c:?}"
    );
    // Equal relative improvement is FAMO's fixed point: d = 0, and from logits 0 the decay's
    // gradient is 0 too, so the logits and the weights stay.
    let mut fresh = Famo::new(0.025, 0.001);
    fresh.combine(&StepInfo::losses(&[1.0, 1.0]));
    fresh.after_step(&[0.5, 0.5]);
    assert_eq!(fresh.logits, vec![0.0, 0.0]);
    // Non-finite new losses leave the logits as they are.
    m.combine(&StepInfo::losses(&[1.0, 1.0]));
    let before = m.logits.clone();
    m.after_step(&[f64::NAN, 1.0]);
    assert_eq!(m.logits, before);
}

#[test]
fn excess_mtl_weights_by_the_preconditioned_gradient_norm_ratio() {
    let eps = 1e-7f64;
    let mut m = ExcessMtl::new(0.01);
    // Step 1 sets the reference e0 = (1 / sqrt(1 + eps), 4 / sqrt(4 + eps)); weights 1.
    let c = m.combine(&StepInfo::with_grads(&[1.0, 1.0], &orthogonal()));
    assert_eq!(c.weights, vec![1.0, 1.0]);
    // Task 2's gradient doubles: S = (2, 20), e = (1 / sqrt(2 + eps), 16 / sqrt(20 + eps)).
    let g = vec![vec![1.0, 0.0], vec![0.0, 4.0]];
    let c = m.combine(&StepInfo::with_grads(&[1.0, 1.0], &g));
    let r1 = (1.0 / (2.0 + eps).sqrt()) / (1.0 / (1.0 + eps).sqrt());
    let r2 = (16.0 / (20.0 + eps).sqrt()) / (4.0 / (4.0 + eps).sqrt());
    let (a, b) = ((0.01 * r1).exp(), (0.01 * r2).exp());
    let want = [2.0 * a / (a + b), 2.0 * b / (a + b)];
    assert!(close(&c.weights, &want, 1e-12), "{c:?}");
    assert!(c.weights[1] > c.weights[0]);
    // Constant gradients of any norm, here opposed 1 and -3: e / e0 = 1 / sqrt(t) for both, the
    // weights stay equal.
    let g = vec![vec![1.0, 0.0], vec![-3.0, 0.0]];
    let mut m = ExcessMtl::new(0.01);
    for _ in 0..10 {
        let c = m.combine(&StepInfo::with_grads(&[1.0, 1.0], &g));
        assert!(close(&c.weights, &[1.0, 1.0], 1e-9), "{c:?}");
    }
    // A zero first gradient: the reference waits for a non-zero one, never a NaN.
    let mut m = ExcessMtl::new(0.01);
    let zero = vec![vec![0.0, 0.0], vec![0.0, 1.0]];
    for g in [&zero, &orthogonal(), &orthogonal()] {
        let c = m.combine(&StepInfo::with_grads(&[1.0, 1.0], g));
        assert!(c.fallback.is_none() && c.weights.iter().all(|w| w.is_finite()));
    }
}

#[test]
fn a_non_finite_gradient_falls_back_to_the_mean() {
    let mut bad = orthogonal();
    bad[0][0] = f64::NAN;
    let methods: Vec<Box<dyn Weighting>> = vec![
        Box::new(GradDrop::new(0.0, 0)),
        Box::new(MoCo::new(0.5, 0.5, 0.1, 0.5, 0.0)),
        Box::new(MoDo::new(0.1, 0.1)),
        Box::new(SdmGrad::new(0.3, 20)),
    ];
    for mut m in methods {
        let c = m.combine(&StepInfo::with_grads(&[1.0, 1.0], &bad));
        let why = c.fallback.clone().unwrap_or_default();
        assert!(why.contains(m.name()), "{}: {c:?}", m.name());
        assert!(c.shared.is_none() && c.weights == vec![1.0, 1.0]);
        // The state was reset: a finite step afterwards is finite.
        let c = m.combine(&StepInfo::with_grads(&[1.0, 1.0], &orthogonal()));
        assert!(c.fallback.is_none(), "{}: {c:?}", m.name());
    }
}

fn weighting(table: &str) -> Result<WeightingConfig, String> {
    MtlConfig::from_toml(&format!("{}\n[weighting]\n{table}\n", common::MTL_BASE))
        .map(|c| c.weighting)
        .map_err(|e| e.to_string())
}

#[test]
fn the_six_parse_their_options_and_reject_bad_values_naming_the_key() {
    let cases = [
        (
            "method = \"graddrop\"\nleak = 0.3\nseed = 4",
            WeightingConfig::GradDrop(GradDropConfig { leak: 0.3, seed: 4 }),
        ),
        (
            "method = \"moco\"\nbeta = 0.9\nrho = 0.2",
            WeightingConfig::MoCo(MoCoConfig {
                beta: 0.9,
                rho: 0.2,
                ..MoCoConfig::default()
            }),
        ),
        (
            "method = \"modo\"\ngamma = 0.01",
            WeightingConfig::MoDo(MoDoConfig {
                gamma: 0.01,
                rho: 0.1,
            }),
        ),
        (
            "method = \"sdmgrad\"\nlamda = 0.5\nniter = 5",
            WeightingConfig::SdmGrad(SdmGradConfig {
                lamda: 0.5,
                niter: 5,
            }),
        ),
        (
            "method = \"famo\"\nw_lr = 0.01",
            WeightingConfig::Famo(FamoConfig {
                w_lr: 0.01,
                w_gamma: 1e-3,
            }),
        ),
        (
            "method = \"excess_mtl\"",
            WeightingConfig::ExcessMtl(ExcessMtlConfig {
                robust_step_size: 1e-2,
            }),
        ),
    ];
    for (table, want) in cases {
        assert_eq!(weighting(table).unwrap(), want, "{table}");
    }
    let bad = [
        ("method = \"graddrop\"\nleak = 1.5", "weighting.leak"),
        ("method = \"moco\"\nbeta = 0.0", "weighting.beta"),
        (
            "method = \"moco\"\ngamma_sigma = -1.0",
            "weighting.gamma_sigma",
        ),
        ("method = \"modo\"\nrho = -0.1", "weighting.rho"),
        ("method = \"sdmgrad\"\nniter = 0", "weighting.niter"),
        ("method = \"sdmgrad\"\nlamda = nan", "weighting.lamda"),
        ("method = \"famo\"\nw_lr = 0.0", "weighting.w_lr"),
        ("method = \"famo\"\nw_gamma = -1.0", "weighting.w_gamma"),
        (
            "method = \"excess_mtl\"\nrobust_step_size = -1.0",
            "weighting.robust_step_size",
        ),
        ("method = \"modo\"\nleak = 0.1", "weighting.leak"),
    ];
    for (table, key) in bad {
        let err = weighting(table).expect_err(table);
        assert!(err.contains(key), "{table}: {err}");
    }
    // build() checks them too (a config made in code), with the same key.
    let cfg = WeightingConfig::SdmGrad(SdmGradConfig {
        lamda: 0.3,
        niter: 0,
    });
    let err = build(&cfg, 2).err().expect("niter 0").to_string();
    assert!(err.contains("weighting.niter"), "{err}");
}

/// The MNIST example with `n` training images (`None` without the data).
fn mnist(n: usize) -> Option<MtlConfig> {
    let mut cfg = MtlConfig::from_file(Path::new("configs/mnist-multitask.toml")).unwrap();
    common::dataset("mnist", &[])?;
    cfg.data.train_limit = n;
    cfg.data.test_limit = 200;
    Some(cfg)
}

#[test]
fn each_of_the_six_trains_the_mnist_example_without_nan() {
    let Some(cfg) = mnist(320) else {
        return;
    };
    let (tr, te) = load_data(&cfg).unwrap();
    let specs = task_specs(&cfg).unwrap();
    let runs = [
        ("graddrop", GramianOn::Parameters),
        ("graddrop", GramianOn::Representation),
        ("moco", GramianOn::Parameters),
        ("modo", GramianOn::Parameters),
        ("sdmgrad", GramianOn::Parameters),
        ("famo", GramianOn::Parameters),
        ("excess_mtl", GramianOn::Parameters),
    ];
    for (m, on) in runs {
        let opts = TrainOptions {
            epochs: 1,
            gramian: on,
            ..TrainOptions::default()
        };
        let model = build_model(&cfg.model, &tr.example_shape, specs.clone()).unwrap();
        let mut w = build(&WeightingConfig::named(m).unwrap(), 2).unwrap();
        let out = train(model.as_ref(), w.as_mut(), &tr, &te, &[0, 1], &opts).unwrap();
        let e = &out.history.epochs[0];
        assert!(
            e.train_loss
                .iter()
                .chain(&out.test_loss)
                .all(|v| v.is_finite()),
            "{m}: {e:?}"
        );
        assert!(
            out.history.fallbacks.is_empty(),
            "{m}: {:?}",
            out.history.fallbacks
        );
    }
}

/// Records what the trainer hands [`Weighting::after_step`].
struct Recorder {
    before: Vec<Vec<f64>>,
    after: Vec<Vec<f64>>,
}

impl Weighting for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }
    fn combine(&mut self, info: &StepInfo<'_>) -> Combined {
        self.before.push(info.losses.to_vec());
        Combined::weights(vec![1.0; info.losses.len()])
    }
    fn needs_losses_after_step(&self) -> bool {
        true
    }
    fn after_step(&mut self, new_losses: &[f64]) {
        self.after.push(new_losses.to_vec());
    }
}

#[test]
fn the_trainer_hands_the_losses_after_each_step() {
    let Some(cfg) = mnist(192) else {
        return;
    };
    let (tr, te) = load_data(&cfg).unwrap();
    let specs = task_specs(&cfg).unwrap();
    let model = build_model(&cfg.model, &tr.example_shape, specs).unwrap();
    let mut rec = Recorder {
        before: Vec::new(),
        after: Vec::new(),
    };
    let opts = TrainOptions {
        epochs: 1,
        ..TrainOptions::default()
    };
    train(model.as_ref(), &mut rec, &tr, &te, &[0, 1], &opts).unwrap();
    // 192 / 64 = 3 steps, one call each, on the same batch after the step: lower losses.
    assert_eq!(rec.after.len(), 3);
    assert_eq!(rec.before.len(), 3);
    for (b, a) in rec.before.iter().zip(&rec.after) {
        assert!(a.iter().all(|v| v.is_finite()));
        assert!(
            a.iter().sum::<f64>() < b.iter().sum::<f64>(),
            "{b:?} -> {a:?}"
        );
    }
}

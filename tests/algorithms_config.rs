//! Configs (TOML, defaults, errors) and learner state round trips, on tiny models.

use metalearn::algorithms::config::{MamlConfig, ALGORITHM_NAMES};
use metalearn::algorithms::maml::TaskData;
use metalearn::algorithms::TaskKind;
use metalearn::algorithms::{
    build_learner, build_learner_generic, AlgorithmConfig, BackboneConfig, Target,
};
use metalearn::data::seeded_rng;
use metalearn::tensor::Tensor;

#[test]
fn every_name_parses_with_defaults_and_round_trips() {
    for &name in ALGORITHM_NAMES {
        let cfg = AlgorithmConfig::from_toml(&format!("name = \"{name}\"")).unwrap();
        assert_eq!(cfg.name(), name);
        assert_eq!(
            cfg,
            AlgorithmConfig::default_for(name)
                .unwrap_or_else(|e| panic!("{e}"))
                .clone_without_fo(name)
        );
        let text = toml::to_string(&cfg).unwrap();
        assert_eq!(AlgorithmConfig::from_toml(&text).unwrap(), cfg, "{text}");
    }
    let cfg = AlgorithmConfig::from_toml(
        "name = \"maml\"\ninner_lr = 0.01\ninner_steps = 5\neval_inner_steps = 10",
    )
    .unwrap();
    assert_eq!(
        cfg,
        AlgorithmConfig::Maml(MamlConfig {
            inner_lr: 0.01,
            inner_steps: 5,
            eval_inner_steps: 10,
            first_order: false
        })
    );
    assert_eq!(
        AlgorithmConfig::from_toml("name = \"baseline++\"")
            .unwrap()
            .name(),
        "baseline_pp"
    );
    let bb = BackboneConfig::from_toml("name = \"conv4\"\nfilters = 32\ndownsample = \"strided\"")
        .unwrap();
    assert_eq!(bb.name(), "conv4");
    assert_eq!(
        BackboneConfig::from_toml("name = \"mlp\"\nsizes = [1, 40, 40]")
            .unwrap()
            .name(),
        "mlp"
    );
}

trait FoDefault {
    fn clone_without_fo(&self, name: &str) -> AlgorithmConfig;
}

impl FoDefault for AlgorithmConfig {
    /// `fomaml`'s default sets `first_order` (ignored by that method); parsing leaves it false.
    fn clone_without_fo(&self, name: &str) -> AlgorithmConfig {
        match (self, name) {
            (AlgorithmConfig::Fomaml(c), "fomaml") => AlgorithmConfig::Fomaml(MamlConfig {
                first_order: false,
                ..c.clone()
            }),
            _ => self.clone(),
        }
    }
}

#[test]
fn bad_configs_give_clear_errors() {
    let e = AlgorithmConfig::from_toml("name = \"mamll\"")
        .unwrap_err()
        .to_string();
    for name in ALGORITHM_NAMES {
        assert!(e.contains(name), "the error lists the known names: {e}");
    }
    assert!(e.contains("mamll"), "{e}");
    let e = AlgorithmConfig::from_toml("name = \"maml\"\ninner_lr = 0.4\nalpha = 1")
        .unwrap_err()
        .to_string();
    assert!(e.contains("alpha"), "unknown fields are rejected: {e}");
    let e = AlgorithmConfig::from_toml("name = \"protonet\"\ninner_lr = 0.4")
        .unwrap_err()
        .to_string();
    assert!(e.contains("inner_lr"), "{e}");
    let e = AlgorithmConfig::from_toml("name = \"maml\"\ninner_steps = 0")
        .unwrap_err()
        .to_string();
    assert!(e.contains("inner_steps") && e.contains("at least 1"), "{e}");
    let e = AlgorithmConfig::default_for("foo").unwrap_err().to_string();
    assert!(
        e.contains("unknown algorithm `foo`") && e.contains("r2d2"),
        "{e}"
    );
    let e = BackboneConfig::from_toml("name = \"resnet\"")
        .unwrap_err()
        .to_string();
    assert!(e.contains("conv4") && e.contains("mlp"), "{e}");
    // MAML learners that cannot be built: (backbone, N-way, part of the error).
    let maml = AlgorithmConfig::default_for("maml").unwrap();
    let unbuildable = [
        (
            "name = \"conv4\"\nimage_size = 8",
            5,
            "image_size 8 is too small",
        ),
        ("name = \"mlp\"\nsizes = [4]", 5, "sizes"),
        (
            "name = \"mlp\"\nsizes = [4, 8]",
            1,
            "n_way must be at least 2",
        ),
    ];
    for (backbone, n_way, part) in unbuildable {
        let backbone = BackboneConfig::from_toml(backbone).unwrap();
        let e = build_learner(&maml, &backbone, n_way, 1e-3, &mut seeded_rng(0))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(part), "{e}");
    }
}

fn toy_tasks(n: usize, seed: u64) -> Vec<TaskData<f64>> {
    let mut rng = seeded_rng(seed);
    (0..n)
        .map(|_| TaskData {
            support_x: Tensor::rand_normal(&[6, 4], 0.0, 1.0, &mut rng),
            support_y: Target::Classes(vec![0, 0, 1, 1, 2, 2]),
            query_x: Tensor::rand_normal(&[3, 4], 0.0, 1.0, &mut rng),
            query_y: Target::Classes(vec![0, 1, 2]),
            classes: None,
        })
        .collect()
}

/// For every method: a state saved after a step restores into a freshly built learner (same
/// predictions, and the next step agrees, so the optimizer state came along); a state of
/// another architecture is refused.
#[test]
fn state_round_trips_for_every_method() {
    let mlp = BackboneConfig::from_toml("name = \"mlp\"\nsizes = [4, 8]").unwrap();
    let wide = BackboneConfig::from_toml("name = \"mlp\"\nsizes = [4, 9]").unwrap();
    let task = TaskKind::Classification { n_way: 3 };
    let tasks = toy_tasks(2, 1);
    let probe = &toy_tasks(1, 2)[0];
    for &name in ALGORITHM_NAMES {
        let cfg = AlgorithmConfig::default_for(name).unwrap();
        let mut a =
            build_learner_generic::<f64>(&cfg, &mlp, task, 1e-2, &mut seeded_rng(1)).unwrap();
        assert_eq!(a.name(), name);
        a.meta_train_step(&tasks, &mut seeded_rng(0));
        let state = a.state();
        assert!(
            state.names().iter().any(|n| n.starts_with("param/")),
            "{name}: {:?}",
            state.names()
        );
        assert!(
            state.names().iter().any(|n| n.starts_with("opt/")),
            "{name}: {:?}",
            state.names()
        );
        if name == "meta_sgd" {
            assert!(
                state.names().iter().any(|n| n.starts_with("lr/")),
                "{:?}",
                state.names()
            );
        }
        let mut b =
            build_learner_generic::<f64>(&cfg, &mlp, task, 1e-2, &mut seeded_rng(2)).unwrap();
        b.load_state(&state).unwrap();
        let pa = a.predict(&probe.support_x, &probe.support_y, &probe.query_x);
        let pb = b.predict(&probe.support_x, &probe.support_y, &probe.query_x);
        assert_eq!(pa.shape(), [3, 3], "{name}");
        assert_eq!(
            pa.max_abs_diff(&pb),
            0.0,
            "{name}: predictions after load_state"
        );
        a.meta_train_step(&tasks, &mut seeded_rng(0));
        b.meta_train_step(&tasks, &mut seeded_rng(0));
        let (sa, sb) = (a.state(), b.state());
        assert_eq!(sa.names(), sb.names());
        for ((n, x), y) in sa.iter().zip(sb.tensors()) {
            assert!(
                x.max_abs_diff(y) < 1e-12,
                "{name}: `{n}` differs after the next step"
            );
        }
        let mut c =
            build_learner_generic::<f64>(&cfg, &wide, task, 1e-2, &mut seeded_rng(2)).unwrap();
        let e = c.load_state(&state).unwrap_err().to_string();
        assert!(e.contains("shape") || e.contains("missing"), "{name}: {e}");
    }
}

/// The `param/` tensors of a learner's state, flattened.
fn flat_params(l: &dyn metalearn::algorithms::FewShotLearner<f64>) -> Vec<f64> {
    let s = l.state();
    s.iter()
        .filter(|(n, _)| n.starts_with("param/"))
        .flat_map(|(_, t)| t.to_vec())
        .collect()
}

/// Reptile's annealed outer step: with `epsilon` 1 -> `epsilon_final` 0, a step taken when
/// `done / total = 3/4` moves the parameters exactly a quarter of the unannealed step (the
/// pseudo-gradient is the same), and a step at `done = total` does not move them.
#[test]
fn reptile_epsilon_is_annealed_linearly() {
    let mlp = BackboneConfig::from_toml("name = \"mlp\"\nsizes = [4, 8]").unwrap();
    let task = TaskKind::Classification { n_way: 3 };
    let tasks = toy_tasks(2, 3);
    for inner_lr in [0.05, 0.2] {
        let base = format!("name = \"reptile\"\ninner_lr = {inner_lr}");
        let constant = AlgorithmConfig::from_toml(&base).unwrap();
        let annealed = AlgorithmConfig::from_toml(&format!("{base}\nepsilon_final = 0.0")).unwrap();
        let build = |cfg: &AlgorithmConfig| {
            build_learner_generic::<f64>(cfg, &mlp, task, 1e-3, &mut seeded_rng(4)).unwrap()
        };
        let (mut full, mut quarter, mut last) =
            (build(&constant), build(&annealed), build(&annealed));
        let theta0 = flat_params(full.as_ref());
        full.set_progress(3, 4);
        full.meta_train_step(&tasks, &mut seeded_rng(0));
        quarter.set_progress(3, 4);
        quarter.meta_train_step(&tasks, &mut seeded_rng(0));
        last.set_progress(4, 4);
        last.meta_train_step(&tasks, &mut seeded_rng(0));
        let (t_full, t_quarter) = (flat_params(full.as_ref()), flat_params(quarter.as_ref()));
        let moved: f64 = t_full.iter().zip(&theta0).map(|(a, b)| (a - b).abs()).sum();
        assert!(
            moved > 1e-3,
            "lr {inner_lr}: the unannealed step moved only {moved}"
        );
        for ((f, q), t0) in t_full.iter().zip(&t_quarter).zip(&theta0) {
            assert!(
                (q - t0 - 0.25 * (f - t0)).abs() < 1e-12,
                "lr {inner_lr}: annealed step {} vs a quarter of {}",
                q - t0,
                f - t0
            );
        }
        assert_eq!(
            flat_params(last.as_ref()),
            theta0,
            "lr {inner_lr}: epsilon 0 moved"
        );
    }
    let e = AlgorithmConfig::from_toml("name = \"reptile\"\nepsilon_final = -1.0")
        .unwrap_err()
        .to_string();
    assert!(e.contains("epsilon_final"), "{e}");
}

//! The gradient-based learners on the sinusoid regression benchmark (Finn et al. 2017): after a
//! short meta-training, the post-adaptation query MSE on held-out tasks must be clearly below
//! the untrained model's; the metric methods must refuse regression with a clear error.

use metalearn::algorithms::config::{MlpBackbone, ALGORITHM_NAMES, REGRESSION_ALGORITHMS};
use metalearn::algorithms::maml::TaskData;
use metalearn::algorithms::{
    build_learner, build_regression_learner, AlgorithmConfig, BackboneConfig, FewShotLearner,
};
use metalearn::data::{seeded_rng, SinusoidConfig};
use metalearn::fewshot::tasks::sinusoid_task;

fn mlp() -> BackboneConfig {
    BackboneConfig::Mlp(MlpBackbone {
        sizes: vec![1, 40, 40],
    })
}

/// Mean post-adaptation query MSE over fixed held-out tasks.
fn evaluate(learner: &dyn FewShotLearner<f32>, tasks: &[TaskData<f32>]) -> f64 {
    tasks
        .iter()
        .map(|t| {
            let out = learner.predict(&t.support_x, &t.support_y, &t.query_x);
            assert_eq!(out.shape(), t.query_x.shape());
            t.query_y.loss(&out).item() as f64
        })
        .sum::<f64>()
        / tasks.len() as f64
}

/// Trains `steps` meta-steps of 10 tasks (K = 10) and returns (untrained, trained) MSE.
fn run(alg: &str, steps: usize, meta_lr: f64) -> (f64, f64) {
    let cfg = AlgorithmConfig::from_toml(alg).unwrap();
    let dist = SinusoidConfig::default();
    let mut rng = seeded_rng(3);
    let mut learner = build_regression_learner(&cfg, &mlp(), 1, meta_lr, &mut rng).unwrap();
    let held_out: Vec<TaskData<f32>> = dist
        .sample_batch(&mut seeded_rng(99), 50)
        .iter()
        .map(sinusoid_task)
        .collect();
    let untrained = evaluate(learner.as_ref(), &held_out);
    let t0 = std::time::Instant::now();
    for _ in 0..steps {
        let tasks: Vec<TaskData<f32>> = dist
            .sample_batch(&mut rng, 10)
            .iter()
            .map(sinusoid_task)
            .collect();
        let s = learner.meta_train_step(&tasks, &mut rng);
        assert!(s.loss.is_finite() && s.accuracy.is_nan());
    }
    let trained = evaluate(learner.as_ref(), &held_out);
    eprintln!(
        "{:<8} sinusoid MSE untrained {untrained:.3} -> trained {trained:.3} ({steps} steps, {:.1}s)",
        learner.name(),
        t0.elapsed().as_secs_f64()
    );
    (untrained, trained)
}

fn assert_learns(alg: &str, steps: usize, meta_lr: f64, ratio: f64) {
    let (untrained, trained) = run(alg, steps, meta_lr);
    assert!(
        trained < ratio * untrained,
        "{alg}: post-adaptation MSE {trained:.3} is not below {ratio} x the untrained {untrained:.3}"
    );
}

#[test]
fn maml_sinusoid() {
    assert_learns(
        "name = \"maml\"\ninner_lr = 0.01\neval_inner_steps = 10",
        300,
        1e-2,
        0.5,
    );
}

#[test]
fn fomaml_sinusoid() {
    assert_learns(
        "name = \"fomaml\"\ninner_lr = 0.01\neval_inner_steps = 10",
        300,
        1e-2,
        0.5,
    );
}

#[test]
fn reptile_sinusoid() {
    assert_learns(
        "name = \"reptile\"\ninner_lr = 0.02\ninner_steps = 10\neval_inner_steps = 10\nepsilon = 1.0\ntrain_on_query = false",
        1000,
        1e-3,
        0.5,
    );
}

#[test]
fn meta_sgd_sinusoid() {
    assert_learns("name = \"meta_sgd\"\ninit_lr = 0.01", 300, 1e-2, 0.5);
}

#[test]
fn anil_sinusoid() {
    assert_learns(
        "name = \"anil\"\ninner_lr = 0.01\neval_inner_steps = 10",
        300,
        1e-2,
        0.5,
    );
}

#[test]
fn metric_methods_refuse_regression() {
    let metric_methods = ALGORITHM_NAMES
        .iter()
        .filter(|name| !REGRESSION_ALGORITHMS.contains(name));
    for name in metric_methods {
        let cfg = AlgorithmConfig::default_for(name).unwrap();
        let err = build_regression_learner(&cfg, &mlp(), 1, 1e-3, &mut seeded_rng(0))
            .err()
            .expect("must refuse");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!(
                "algorithm `{name}` cannot do regression (sinusoid)"
            )),
            "{msg}"
        );
        assert!(
            msg.contains("maml"),
            "the message lists the methods that can: {msg}"
        );
        // Classification with an MLP backbone is fine.
        assert!(build_learner(
            &cfg,
            &BackboneConfig::Mlp(MlpBackbone { sizes: vec![4, 8] }),
            3,
            1e-3,
            &mut seeded_rng(0)
        )
        .is_ok());
    }
}

//! MAML's meta-gradient (second order, several inner steps, batch norm with batch statistics
//! in every step) on a real Omniglot episode equals central finite differences of the
//! post-adaptation query loss, in f64; the first-order gradient does not (so the check can
//! fail), and the two orders are selected by the config.

mod common;

use metalearn::algorithms::config::{Conv4Backbone, MamlConfig};
use metalearn::algorithms::maml::{Maml, Order, TaskData};
use metalearn::algorithms::TaskKind;
use metalearn::algorithms::{
    build_learner_generic, AlgorithmConfig, BackboneConfig, FewShotLearner, Target,
};
use metalearn::autodiff::check::dot_all as dot;
use metalearn::data::{load_omniglot_npz, seeded_rng, EpisodeSampler, EpisodeSpec};
use metalearn::nn::Body;
use metalearn::nn::Params;
use metalearn::tensor::Tensor;
use rand::Rng;

fn episode() -> TaskData<f64> {
    let path = metalearn::data::default_data_dir()
        .join("omniglot")
        .join("images_background.npz");
    let data = load_omniglot_npz(&path, 28)
        .expect("Omniglot background set")
        .images;
    let s = EpisodeSampler::with_classes(
        &data,
        EpisodeSpec::new(3, 1, 2).unwrap(),
        &[0, 1, 2, 3, 4, 5],
    )
    .unwrap();
    let ep = s.sample(&mut seeded_rng(5));
    let t =
        |v: &Vec<f32>, shape: [usize; 4]| Tensor::<f32>::from_vec(v.clone(), &shape).cast::<f64>();
    TaskData {
        support_x: t(&ep.support_x, ep.support_shape4().unwrap()),
        support_y: Target::Classes(ep.support_y.clone()),
        query_x: t(&ep.query_x, ep.query_shape4().unwrap()),
        query_y: Target::Classes(ep.query_y.clone()),
        classes: None,
    }
}

fn learner(first_order: bool) -> Maml<f64> {
    let cfg = MamlConfig {
        inner_lr: 0.4,
        inner_steps: 2,
        eval_inner_steps: 2,
        first_order,
    };
    let body = Body::from_config(&BackboneConfig::Conv4(Conv4Backbone {
        filters: 8,
        ..Conv4Backbone::default()
    }))
    .unwrap();
    Maml::new(
        &cfg,
        false,
        body,
        TaskKind::Classification { n_way: 3 },
        1e-3,
        &mut seeded_rng(11),
    )
}

/// The post-adaptation query loss at `theta` (the meta-objective).
fn objective(m: &mut Maml<f64>, theta: &Params<f64>, tasks: &[TaskData<f64>]) -> f64 {
    m.load_state(theta).unwrap();
    m.meta_gradient(tasks).1.loss
}

#[test]
fn maml_meta_gradient_matches_finite_differences() {
    let Some(_) = common::omniglot() else { return };
    let tasks = vec![episode()];
    let mut second = learner(false);
    let first = learner(true);
    assert_eq!(second.order(), Order::Second);
    assert_eq!(first.order(), Order::First);
    let theta = second.params().clone();
    assert_eq!(theta.names(), first.params().names());
    let (g2, _) = second.meta_gradient(&tasks);
    let (g1, _) = first.meta_gradient(&tasks);

    let mut rng = seeded_rng(21);
    let h = 1e-6;
    let mut worst2: f64 = 0.0;
    let mut worst1: f64 = 0.0;
    for _ in 0..4 {
        let v: Vec<Tensor<f64>> = theta
            .tensors()
            .iter()
            .map(|t| {
                Tensor::from_vec(
                    (0..t.numel()).map(|_| rng.gen_range(-1.0..1.0)).collect(),
                    t.shape(),
                )
            })
            .collect();
        let shifted = |s: f64| {
            theta.with_tensors(
                theta
                    .tensors()
                    .iter()
                    .zip(&v)
                    .map(|(t, d)| t.add(&d.mul_scalar(s)))
                    .collect(),
            )
        };
        let fd = (objective(&mut second, &shifted(h), &tasks)
            - objective(&mut second, &shifted(-h), &tasks))
            / (2.0 * h);
        let a2 = dot(&g2, &v);
        let a1 = dot(&g1, &v);
        let scale = fd.abs().max(1e-3);
        eprintln!(
            "direction: finite differences {fd:.9}, second order {a2:.9}, first order {a1:.9}"
        );
        worst2 = worst2.max((a2 - fd).abs() / scale);
        worst1 = worst1.max((a1 - fd).abs() / scale);
    }
    assert!(worst2 < 1e-5, "second-order MAML meta-gradient differs from finite differences: relative error {worst2:e}");
    assert!(worst1 > 1e-2, "first-order MAML should differ from the true meta-gradient here (relative error {worst1:e})");
}

#[test]
fn maml_orders_selected_by_config() {
    let alg = |text: &str| AlgorithmConfig::from_toml(text).unwrap();
    let bb = BackboneConfig::Mlp(metalearn::algorithms::config::MlpBackbone { sizes: vec![1, 16] });
    let tasks: Vec<TaskData<f64>> = {
        let mut rng = seeded_rng(4);
        let x = Tensor::<f64>::rand_uniform(&[6, 1], -3.0, 3.0, &mut rng);
        let y = x.mul_scalar(1.7).add_scalar(0.3);
        vec![TaskData {
            support_x: x.narrow(0, 0, 3),
            support_y: Target::Values(y.narrow(0, 0, 3)),
            query_x: x.narrow(0, 3, 3),
            query_y: Target::Values(y.narrow(0, 3, 3)),
            classes: None,
        }]
    };
    let mut params_after = Vec::new();
    for text in [
        "name = \"maml\"\ninner_lr = 0.1\ninner_steps = 3",
        "name = \"maml\"\ninner_lr = 0.1\ninner_steps = 3\nfirst_order = true",
        "name = \"fomaml\"\ninner_lr = 0.1\ninner_steps = 3",
    ] {
        let task = TaskKind::Regression { outputs: 1 };
        let mut l =
            build_learner_generic::<f64>(&alg(text), &bb, task, 1e-3, &mut seeded_rng(8)).unwrap();
        l.meta_train_step(&tasks, &mut seeded_rng(0));
        params_after.push(l.state());
    }
    let diff = |a: &Params<f64>, b: &Params<f64>| {
        a.tensors()
            .iter()
            .zip(b.tensors())
            .map(|(x, y)| x.max_abs_diff(y))
            .fold(0.0, f64::max)
    };
    assert_eq!(
        diff(&params_after[1], &params_after[2]),
        0.0,
        "first_order = true and fomaml are the same method"
    );
    assert!(
        diff(&params_after[0], &params_after[1]) > 1e-8,
        "second and first order must give different updates"
    );
}

/// A meta-batch of same-shape regression tasks runs as one batched graph
/// (`Model::forward_tasks`); its meta-gradient and loss equal the mean of the task-by-task
/// ones (`task_meta_grad`, itself checked against finite differences), in both orders.
#[test]
fn the_batched_meta_batch_equals_the_task_by_task_mean() {
    use metalearn::algorithms::maml::{meta_gradient, task_meta_grad, Order, TaskData};
    use metalearn::algorithms::Target;
    use metalearn::nn::{Mlp, Model};
    use metalearn::Tensor;
    use rand::SeedableRng;
    let model = Mlp::new(&[1, 16, 16, 1]);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let theta = Model::<f64>::init(&model, &mut rng);
    let tasks: Vec<TaskData<f64>> = (0..5)
        .map(|_| TaskData {
            support_x: Tensor::rand_uniform(&[6, 1], -5.0, 5.0, &mut rng),
            support_y: Target::Values(Tensor::rand_normal(&[6, 1], 0.0, 1.0, &mut rng)),
            query_x: Tensor::rand_uniform(&[7, 1], -5.0, 5.0, &mut rng),
            query_y: Target::Values(Tensor::rand_normal(&[7, 1], 0.0, 1.0, &mut rng)),
            classes: None,
        })
        .collect();
    for order in [Order::Second, Order::First] {
        let (batched, loss) = meta_gradient(&model, &theta, &tasks, 2, 0.05, order);
        let leaves = theta.requires_grad_();
        let per_task: Vec<_> = tasks
            .iter()
            .map(|t| {
                task_meta_grad(
                    &model,
                    &leaves,
                    &t.support_x,
                    &t.support_y,
                    &t.query_x,
                    &t.query_y,
                    2,
                    0.05,
                    order,
                )
            })
            .collect();
        let mean_loss = per_task.iter().map(|r| r.query_loss).sum::<f64>() / 5.0;
        assert!(
            (loss - mean_loss).abs() < 1e-12,
            "{order:?}: {loss} vs {mean_loss}"
        );
        for (k, g) in batched.iter().enumerate() {
            let mut want = per_task[0].grads[k].to_vec();
            for r in &per_task[1..] {
                for (w, v) in want.iter_mut().zip(r.grads[k].to_vec()) {
                    *w += v;
                }
            }
            for (a, w) in g.to_vec().iter().zip(&want) {
                let w = w / 5.0;
                assert!(
                    (a - w).abs() <= 1e-10 + 1e-8 * w.abs(),
                    "{order:?} param {k}: {a} vs {w}"
                );
            }
        }
    }
}

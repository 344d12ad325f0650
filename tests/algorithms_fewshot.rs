//! Every few-shot learner, briefly meta-trained on a small Omniglot subset (background set,
//! 28x28, 5-way 1-shot), must classify query examples of held-out characters (other
//! alphabets) clearly better than chance, and better than its untrained self.
//!
//! Data: `images_background.npz` under `metalearn::data::default_data_dir()/omniglot`
//! (`$METALEARN_DATA`). Characters 0..700 train, 800..964 are held out.

mod common;

use std::ops::Range;

use metalearn::algorithms::baseline::Baseline;
use metalearn::algorithms::config::{BaselineConfig, Conv4Backbone};
use metalearn::algorithms::maml::TaskData;
use metalearn::algorithms::{
    build_learner, AlgorithmConfig, BackboneConfig, FewShotLearner, StepStats, Target,
};
use metalearn::data::{
    load_omniglot_npz, seeded_rng, EpisodeSampler, EpisodeSpec, ImageDataset, OMNIGLOT_SIZE,
};
use metalearn::nn::Body;
use metalearn::tensor::Tensor;
use rand::Rng;
use std::sync::OnceLock;
use std::time::Instant;

const N_WAY: usize = 5;
const TRAIN_CLASSES: std::ops::Range<usize> = 0..700;
const TEST_CLASSES: std::ops::Range<usize> = 800..964;

fn omniglot() -> &'static ImageDataset {
    static DATA: OnceLock<ImageDataset> = OnceLock::new();
    DATA.get_or_init(|| {
        let path = metalearn::data::default_data_dir()
            .join("omniglot")
            .join("images_background.npz");
        load_omniglot_npz(&path, OMNIGLOT_SIZE)
            .expect("Omniglot background set")
            .images
    })
}

fn task(ep: &metalearn::data::Episode) -> TaskData<f32> {
    TaskData {
        support_x: Tensor::from_vec(ep.support_x.clone(), &ep.support_shape4().unwrap()),
        support_y: Target::Classes(ep.support_y.clone()),
        query_x: Tensor::from_vec(ep.query_x.clone(), &ep.query_shape4().unwrap()),
        query_y: Target::Classes(ep.query_y.clone()),
        classes: Some(ep.indices.classes.clone()),
    }
}

fn sampler(classes: std::ops::Range<usize>, q: usize) -> EpisodeSampler<'static, ImageDataset> {
    let c: Vec<usize> = classes.collect();
    EpisodeSampler::with_classes(omniglot(), EpisodeSpec::new(N_WAY, 1, q).unwrap(), &c).unwrap()
}

/// Mean query accuracy over a fixed set of held-out episodes.
fn evaluate(learner: &dyn FewShotLearner<f32>, episodes: &[TaskData<f32>]) -> f64 {
    let mut acc = 0.0;
    for t in episodes {
        let out = learner.predict(&t.support_x, &t.support_y, &t.query_x);
        assert_eq!(out.shape(), [t.query_x.dim(0), N_WAY]);
        let Target::Classes(l) = &t.query_y else {
            unreachable!()
        };
        let pred = out.argmax_axis(-1);
        acc += pred.iter().zip(l).filter(|(p, l)| p == l).count() as f64 / l.len() as f64;
    }
    acc / episodes.len() as f64
}

fn test_episodes() -> &'static [TaskData<f32>] {
    static EPS: OnceLock<Vec<TaskData<f32>>> = OnceLock::new();
    EPS.get_or_init(|| {
        let s = sampler(TEST_CLASSES, 5);
        let mut rng = seeded_rng(777);
        (0..20).map(|_| task(&s.sample(&mut rng))).collect()
    })
}

fn backbone(filters: usize) -> BackboneConfig {
    BackboneConfig::Conv4(Conv4Backbone {
        filters,
        ..Conv4Backbone::default()
    })
}

struct Outcome {
    untrained: f64,
    trained: f64,
}

fn seed() -> u64 {
    std::env::var("ALG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// Meta-trains `steps` steps of 4 tasks (5-way 1-shot, 5 queries per class) on the training
/// characters `classes` and evaluates on 20 fixed held-out episodes before and after.
fn train_and_eval(alg: &str, classes: Range<usize>, steps: usize, meta_lr: f64) -> Outcome {
    let cfg = AlgorithmConfig::from_toml(alg).unwrap();
    let mut rng = seeded_rng(seed());
    let mut learner = build_learner(&cfg, &backbone(16), N_WAY, meta_lr, &mut rng).unwrap();
    let t0 = Instant::now();
    let untrained = evaluate(learner.as_ref(), test_episodes());
    let train = sampler(classes, 5);
    let mut last = StepStats::default();
    for i in 0..steps {
        let tasks: Vec<TaskData<f32>> = train.sample_batch(&mut rng, 4).iter().map(task).collect();
        learner.set_progress(i, steps);
        last = learner.meta_train_step(&tasks, &mut rng);
        assert!(last.loss.is_finite() && (0.0..=1.0).contains(&last.accuracy));
    }
    let trained = evaluate(learner.as_ref(), test_episodes());
    eprintln!(
        "{:<12} held-out accuracy untrained {:.3} -> trained {:.3} (last step: loss {:.3}, accuracy {:.3}; {} steps in {:.1}s)",
        learner.name(),
        untrained,
        trained,
        last.loss,
        last.accuracy,
        steps,
        t0.elapsed().as_secs_f64()
    );
    Outcome { untrained, trained }
}

/// Chance is 0.2. Random Conv-4 features are already informative on Omniglot (an untrained
/// learner scores 0.2 to 0.4, Reptile's full fine-tuning about 0.6), so the test asks for both
/// an absolute level and a gain over the untrained learner.
fn check(alg: &str, steps: usize, meta_lr: f64, min_accuracy: f64, min_gain: f64) {
    check_on(alg, TRAIN_CLASSES, steps, meta_lr, min_accuracy, min_gain);
}

/// [`check`] training on the characters `classes`.
fn check_on(
    alg: &str,
    classes: Range<usize>,
    steps: usize,
    meta_lr: f64,
    min_accuracy: f64,
    min_gain: f64,
) {
    let o = train_and_eval(alg, classes, steps, meta_lr);
    assert!(
        o.trained >= min_accuracy && o.trained >= o.untrained + min_gain,
        "{alg}: held-out accuracy {:.3} after {steps} steps (untrained {:.3}); want >= {min_accuracy} and a gain >= {min_gain}",
        o.trained,
        o.untrained
    );
}

/// One `#[test]` per learner: `name: (algorithm table, meta-training steps, meta learning
/// rate, least held-out accuracy, least gain over the untrained learner)` runs [`check`] when
/// the Omniglot data is present.
macro_rules! omniglot_tests {
    ($($name:ident: ($alg:expr, $steps:expr, $meta_lr:expr, $min_accuracy:expr, $min_gain:expr),)*) => {$(
        #[test]
        fn $name() {
            let Some(_) = common::omniglot() else { return };
            check($alg, $steps, $meta_lr, $min_accuracy, $min_gain);
        }
    )*};
}

omniglot_tests! {
    maml_omniglot: ("name = \"maml\"", 60, 3e-3, 0.45, 0.1),
    fomaml_omniglot: ("name = \"fomaml\"\ninner_steps = 3", 60, 3e-3, 0.45, 0.05),
    reptile_omniglot: (
        "name = \"reptile\"\neval_inner_steps = 5\nepsilon = 0.5\nepsilon_final = 0.0",
        40,
        3e-3,
        0.6,
        0.05
    ),
    meta_sgd_omniglot: ("name = \"meta_sgd\"", 60, 3e-3, 0.45, 0.1),
    anil_omniglot: ("name = \"anil\"", 60, 3e-3, 0.45, 0.1),
    protonet_omniglot: ("name = \"protonet\"", 60, 3e-3, 0.55, 0.15),
    matching_omniglot: ("name = \"matching\"", 60, 3e-3, 0.5, 0.1),
    relation_omniglot: ("name = \"relation\"", 60, 3e-3, 0.5, 0.2),
    baseline_episodic_omniglot: ("name = \"baseline\"", 60, 3e-3, 0.55, 0.15),
    baseline_pp_episodic_omniglot: ("name = \"baseline_pp\"", 60, 3e-3, 0.55, 0.15),
    r2d2_omniglot: ("name = \"r2d2\"", 60, 3e-3, 0.55, 0.15),
}

/// Base-class pre-training through `meta_train_step` (Chen et al.'s Baseline and Baseline++):
/// the episodes' images, labelled by their dataset classes, train a global head over 64
/// training characters (60 steps of 20 classes: each seen about 19 times), and a new head is
/// fitted per held-out task. The bar is `baseline_pretraining_omniglot`'s (0.5, a gain of 0.1).
#[test]
fn baseline_pretrained_through_episodes_omniglot() {
    let Some(_) = common::omniglot() else { return };
    for name in ["baseline", "baseline_pp"] {
        let alg = format!("name = \"{name}\"\nbase_classes = 64");
        check_on(&alg, 0..64, 60, 3e-3, 0.5, 0.1);
    }
}

/// Chen et al.'s recipe: pre-train backbone + global classifier on base classes with global
/// labels, then fine-tune a new head per task.
#[test]
fn baseline_pretraining_omniglot() {
    let Some(_) = common::omniglot() else { return };
    let data = omniglot();
    let base: Vec<usize> = (0..64).collect();
    let examples: Vec<usize> = (0..data.len()).filter(|&i| data.labels[i] < 64).collect();
    for cosine in [false, true] {
        let cfg = BaselineConfig {
            base_classes: Some(base.len()),
            ..BaselineConfig::default()
        };
        let mut rng = seeded_rng(seed());
        let body = Body::from_config(&backbone(16)).unwrap();
        let mut b = Baseline::<f32>::new(&cfg, cosine, body, 3e-3, &mut rng);
        let untrained = evaluate(&b, test_episodes());
        let t0 = Instant::now();
        let mut last = StepStats::default();
        for _ in 0..60 {
            let idx: Vec<usize> = (0..64)
                .map(|_| examples[rng.gen_range(0..examples.len())])
                .collect();
            let mut x = Vec::with_capacity(idx.len() * 28 * 28);
            for &i in &idx {
                x.extend_from_slice(data.image(i));
            }
            let labels: Vec<usize> = idx.iter().map(|&i| data.labels[i]).collect();
            last = b
                .pretrain_step(&Tensor::from_vec(x, &[idx.len(), 1, 28, 28]), &labels)
                .unwrap();
        }
        let trained = evaluate(&b, test_episodes());
        eprintln!(
            "{:<12} pre-trained on 64 base classes: held-out accuracy {untrained:.3} -> {trained:.3} (last batch accuracy {:.3}; {:.1}s)",
            b.name(),
            last.accuracy,
            t0.elapsed().as_secs_f64()
        );
        assert!(
            trained >= 0.5 && trained >= untrained + 0.1,
            "{}: {untrained:.3} -> {trained:.3}",
            b.name()
        );
    }
    // Without base classes there is no global head to pre-train.
    let mut b = Baseline::<f32>::new(
        &BaselineConfig::default(),
        false,
        Body::from_config(&backbone(4)).unwrap(),
        1e-3,
        &mut seeded_rng(0),
    );
    let err = b
        .pretrain_step(&Tensor::zeros(&[2, 1, 28, 28]), &[0, 1])
        .unwrap_err();
    assert!(err.to_string().contains("base_classes"), "{err}");
}

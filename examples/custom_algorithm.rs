//! A few-shot method defined outside the crate, through the public API only: cosine
//! centroids, a nearest-centroid classifier by cosine similarity (ProtoNet's class means,
//! compared by angle instead of distance, as the cosine classifiers of Chen et al. 2019):
//! `logit_c(x) = scale * cos(f(x), mean_{i: y_i = c} f(x_i))`.
//!
//! It takes what a method of the crate takes: a config struct, a [`Metric`] (how queries are
//! scored against the support set; [`metric_learner`] adds the backbone, the meta-parameters
//! and Adam), and an [`Algorithm`] implementation (its name, range checks and builder), so that
//! [`build_with`] builds it from a backbone config like any method of the table. It is then
//! meta-trained on synthetic 3-way tasks whose class signal lies in 4 of 16 input dimensions,
//! the other 12 holding louder noise, so that the backbone has something to learn.
//! Run: `cargo run --release --example custom_algorithm`.

use metalearn::prelude::*;
use rand::Rng;

/// Cosine centroids' hyper-parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct CosineCentroidsConfig {
    /// Multiplier of the cosines before the softmax (10).
    pub scale: f64,
}

impl Default for CosineCentroidsConfig {
    fn default() -> Self {
        CosineCentroidsConfig { scale: 10.0 }
    }
}

/// The metric: `scale * cos(query, class centroid)`, `[Nq, N]`.
pub struct CosineCentroids {
    /// Multiplier of the cosines.
    pub scale: f64,
}

impl<T: Float> Metric<T> for CosineCentroids {
    fn name(&self) -> &'static str {
        CosineCentroidsAlgorithm::NAME
    }

    fn scores(&self, _: &Params<T>, zs: &Tensor<T>, sy: &[usize], zq: &Tensor<T>) -> Tensor<T> {
        let centroids = class_means(zs, sy, num_classes(sy));
        cosine_similarities(zq, &centroids).mul_scalar(self.scale)
    }
}

/// Cosine centroids as an algorithm: its name, its checks and how to build its learner.
pub struct CosineCentroidsAlgorithm;

impl Algorithm for CosineCentroidsAlgorithm {
    type Config = CosineCentroidsConfig;
    const NAME: &'static str = "cosine_centroids";
    const CLASSIFIES_ONLY: Option<&'static str> =
        Some("it compares query embeddings with class centroids");

    fn validate(config: &CosineCentroidsConfig) -> Result<(), AlgorithmError> {
        ParamCheck::new(Self::NAME).scale("scale", config.scale)
    }

    fn build<T: Float, B: Backbone>(c: &CosineCentroidsConfig, p: LearnerParts<B>) -> Learner<T> {
        let metric = CosineCentroids { scale: c.scale };
        Box::new(metric_learner(p.body, p.meta_lr, p.rng, |_, _, _| {
            (metric, Params::new())
        }))
    }
}

/// Input width of the synthetic tasks, and how many leading inputs carry the class signal.
pub const INPUTS: usize = 16;
const SIGNAL: usize = 4;

/// A synthetic `n_way`-way task: each class a random centre `N(0, 1)` in the first 4 inputs
/// (zero elsewhere); each example its centre plus noise `N(0, 0.3)` on those inputs and
/// `N(0, 2)` on the other 12; `shots` support and `queries` query examples per class.
pub fn gaussian_task(
    rng: &mut impl Rng,
    n_way: usize,
    shots: usize,
    queries: usize,
) -> TaskData<f32> {
    let centres: Vec<Vec<f32>> = (0..n_way)
        .map(|_| Tensor::<f32>::rand_normal(&[SIGNAL], 0.0, 1.0, rng).to_vec())
        .collect();
    let mut examples = |per_class: usize| {
        let mut x = Vec::with_capacity(n_way * per_class * INPUTS);
        let mut labels = Vec::with_capacity(n_way * per_class);
        for (class, centre) in centres.iter().enumerate() {
            for _ in 0..per_class {
                let signal = Tensor::<f32>::rand_normal(&[SIGNAL], 0.0, 0.3, rng).to_vec();
                x.extend(centre.iter().zip(&signal).map(|(c, s)| c + s));
                x.extend(Tensor::<f32>::rand_normal(&[INPUTS - SIGNAL], 0.0, 2.0, rng).to_vec());
                labels.push(class);
            }
        }
        let n = labels.len();
        (Tensor::from_vec(x, &[n, INPUTS]), Target::Classes(labels))
    };
    let (support_x, support_y) = examples(shots);
    let (query_x, query_y) = examples(queries);
    TaskData {
        support_x,
        support_y,
        query_x,
        query_y,
        classes: None,
    }
}

/// What a short meta-training run of cosine centroids did.
#[derive(Clone, Debug)]
pub struct TrainingReport {
    /// Every step's mean query loss, in order.
    pub losses: Vec<f64>,
    /// Held-out query accuracy before meta-training.
    pub accuracy_before: f64,
    /// Held-out query accuracy after.
    pub accuracy_after: f64,
}

/// The mean query accuracy of `learner` over `tasks`.
pub fn accuracy_on(learner: &dyn FewShotLearner<f32>, tasks: &[TaskData<f32>]) -> f64 {
    let total: f64 = tasks
        .iter()
        .map(|t| {
            t.query_y
                .accuracy(&learner.predict(&t.support_x, &t.support_y, &t.query_x))
        })
        .sum();
    total / tasks.len() as f64
}

/// Builds cosine centroids on an MLP 16-32-32 with [`build_with`] and meta-trains it `steps`
/// steps of 8 synthetic 3-way 5-shot tasks (Adam 1e-2), scoring 20 held-out tasks before and
/// after.
pub fn train_cosine_centroids(steps: usize, seed: u64) -> Result<TrainingReport, AlgorithmError> {
    let mut rng = seeded_rng(seed);
    let backbone = BackboneConfig::Mlp(MlpBackbone {
        sizes: vec![INPUTS, 32, 32],
    });
    let task = TaskKind::Classification { n_way: 3 };
    let config = CosineCentroidsConfig::default();
    let mut learner =
        build_with::<CosineCentroidsAlgorithm, f32>(&config, &backbone, task, 1e-2, &mut rng)?;
    let mut held_out_rng = seeded_rng(seed + 1);
    let held_out: Vec<TaskData<f32>> = (0..20)
        .map(|_| gaussian_task(&mut held_out_rng, 3, 5, 5))
        .collect();
    let accuracy_before = accuracy_on(learner.as_ref(), &held_out);
    let mut losses = Vec::with_capacity(steps);
    for _ in 0..steps {
        let batch: Vec<TaskData<f32>> = (0..8).map(|_| gaussian_task(&mut rng, 3, 5, 5)).collect();
        losses.push(learner.meta_train_step(&batch, &mut rng).loss);
    }
    Ok(TrainingReport {
        losses,
        accuracy_before,
        accuracy_after: accuracy_on(learner.as_ref(), &held_out),
    })
}

fn main() {
    let report = train_cosine_centroids(100, 0).expect("a valid config");
    let n = report.losses.len();
    println!(
        "{}: query loss {:.3} at the first step, {:.3} at the last ({n} steps)",
        CosineCentroidsAlgorithm::NAME,
        report.losses[0],
        report.losses[n - 1]
    );
    println!(
        "held-out 3-way 5-shot accuracy: {:.3} before, {:.3} after (chance 0.333)",
        report.accuracy_before, report.accuracy_after
    );
}

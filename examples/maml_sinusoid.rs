//! MAML (Finn et al. 2017) on the sinusoid regression family, through the library API:
//! `y = A sin(x - phi)` with `A ~ U[0.1, 5]`, `phi ~ U[0, pi]`, `x ~ U[-5, 5]`, 10 support and
//! 10 query points per task; an MLP 1-40-40 with MAML's linear head, one inner step of 0.01
//! in meta-training, ten when adapting, Adam 1e-3 on meta-batches of 25 tasks.
//!
//! Prints the mean post-adaptation query MSE on 100 held-out tasks before and after
//! meta-training (a few seconds in release builds).
//! Run: `cargo run --release --example maml_sinusoid [iterations]` (default 10000).

use metalearn::data::SinusoidConfig;
use metalearn::prelude::*;
use std::time::Instant;

/// The mean query MSE over `tasks` after the learner adapts to each support set.
fn post_adaptation_mse(learner: &dyn FewShotLearner<f32>, tasks: &[TaskData<f32>]) -> f64 {
    let total: f64 = tasks
        .iter()
        .map(|t| {
            let prediction = learner.predict(&t.support_x, &t.support_y, &t.query_x);
            t.query_y.loss(&prediction).item() as f64
        })
        .sum();
    total / tasks.len() as f64
}

fn main() {
    let iterations: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("iterations: a whole number"))
        .unwrap_or(10000);
    let family = SinusoidConfig::default();
    let mut rng = seeded_rng(0);
    let config = MamlConfig {
        inner_lr: 0.01,
        inner_steps: 1,
        eval_inner_steps: 10,
        first_order: false,
    };
    let body = Body::Mlp(Mlp::new(&[1, 40, 40]));
    let regression = TaskKind::Regression { outputs: 1 };
    let mut maml = Maml::<f32>::new(&config, false, body, regression, 1e-3, &mut rng);

    let held_out: Vec<TaskData<f32>> = family
        .sample_batch(&mut seeded_rng(1), 100)
        .iter()
        .map(TaskData::from)
        .collect();
    let before = post_adaptation_mse(&maml, &held_out);
    let start = Instant::now();
    for iteration in 1..=iterations {
        let batch: Vec<TaskData<f32>> = family
            .sample_batch(&mut rng, 25)
            .iter()
            .map(TaskData::from)
            .collect();
        let stats = maml.meta_train_step(&batch, &mut rng);
        if iteration % 2000 == 0 {
            println!(
                "iteration {iteration:>5}: meta-batch query MSE {:.3}",
                stats.loss
            );
        }
    }
    let after = post_adaptation_mse(&maml, &held_out);
    println!(
        "post-adaptation query MSE on 100 held-out tasks ({} steps of {}): {before:.3} before, {after:.3} after {iterations} iterations ({:.1} s)",
        config.eval_inner_steps,
        config.inner_lr,
        start.elapsed().as_secs_f64()
    );
}

//! Prototypical Networks (Snell et al. 2017) on Omniglot, through the library API: 5-way
//! 1-shot episodes of 28x28 characters, a Conv-4 backbone with 32 filters, Adam 1e-3 on
//! meta-batches of 4 episodes; characters 0..700 of the background set train, 800..964 (other
//! alphabets) are held out.
//!
//! Reads `omniglot/images_background.npz` under `$METALEARN_DATA` (default `../shared/data`
//! beside the crate); says so and exits with status 2 when it is absent. Prints the held-out
//! accuracy (chance: 0.2) before and after meta-training (about 10 s in release builds).
//! Run: `cargo run --release --example protonet_omniglot [iterations]` (default 500).

use metalearn::data::{
    load_omniglot_npz, EpisodeSampler, EpisodeSpec, ImageDataset, OMNIGLOT_SIZE,
};
use metalearn::prelude::*;
use std::time::Instant;

/// The mean query accuracy of `learner` over `episodes`.
fn accuracy_on(learner: &dyn FewShotLearner<f32>, episodes: &[TaskData<f32>]) -> f64 {
    let total: f64 = episodes
        .iter()
        .map(|t| {
            let logits = learner.predict(&t.support_x, &t.support_y, &t.query_x);
            t.query_y.accuracy(&logits)
        })
        .sum();
    total / episodes.len() as f64
}

/// The background set, or `None` (after saying where it was looked for) when it is absent.
fn load_background_set() -> Option<ImageDataset> {
    let path = metalearn::data::default_data_dir()
        .join("omniglot")
        .join("images_background.npz");
    match load_omniglot_npz(&path, OMNIGLOT_SIZE) {
        Ok(omniglot) => Some(omniglot.images),
        Err(e) => {
            eprintln!(
                "protonet_omniglot: cannot read the Omniglot background set at {}: {e}\n\
                 Set METALEARN_DATA to the folder holding omniglot/images_background.npz \
                 (`metalearn data download omniglot` fetches it).",
                path.display()
            );
            None
        }
    }
}

fn main() {
    let iterations: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("iterations: a whole number"))
        .unwrap_or(500);
    let Some(data) = load_background_set() else {
        std::process::exit(2);
    };
    let spec = EpisodeSpec::new(5, 1, 5).expect("5-way 1-shot 5-query");
    let classes = |range: std::ops::Range<usize>| range.collect::<Vec<usize>>();
    let train = EpisodeSampler::with_classes(&data, spec, &classes(0..700)).expect("train classes");
    let test = EpisodeSampler::with_classes(&data, spec, &classes(800..964)).expect("test classes");
    let held_out: Vec<TaskData<f32>> = test
        .sample_batch(&mut seeded_rng(777), 50)
        .into_iter()
        .map(TaskData::from)
        .collect();

    let mut rng = seeded_rng(1);
    let backbone = BackboneConfig::Conv4(Conv4Backbone {
        filters: 32,
        ..Conv4Backbone::default()
    });
    let body = Body::from_config(&backbone).expect("a valid backbone");
    let mut protonet = ProtoNet::<f32>::new(body, 1e-3, &mut rng);
    let before = accuracy_on(&protonet, &held_out);
    let start = Instant::now();
    for iteration in 1..=iterations {
        let batch: Vec<TaskData<f32>> = train
            .sample_batch(&mut rng, 4)
            .into_iter()
            .map(TaskData::from)
            .collect();
        let stats = protonet.meta_train_step(&batch, &mut rng);
        if iteration % 100 == 0 {
            println!(
                "iteration {iteration:>4}: loss {:.3}, accuracy {:.3}",
                stats.loss, stats.accuracy
            );
        }
    }
    let after = accuracy_on(&protonet, &held_out);
    println!(
        "held-out 5-way 1-shot accuracy over 50 episodes: {before:.3} untrained, {after:.3} after {iterations} iterations ({:.1} s)",
        start.elapsed().as_secs_f64()
    );
}

//! `[data.augment]`: range checks that name the key; off (absent, or nothing random) gives
//! today's episodes bit for bit; augmented training episodes are the same episodes with warped
//! images, drawn from their own stream (the episode generator is left where the unaugmented
//! run leaves it), deterministic for a seed and the same at 1 and 2 threads; support views give
//! K * T class-major support examples whose first view is the original image, at validation /
//! test time and in `adapt`; a short ProtoNet training run on Omniglot with augmentation on
//! reports finite numbers.
//!
//! Data: Omniglot under `$METALEARN_DATA/omniglot` (the tests that need it skip without it,
//! and fail under `CI=true`).

mod common;

use metalearn::algorithms::{Target, TaskData};
use metalearn::data::augment::{expand_views, SUPPORT_VIEW_TRANSFORMS};
use metalearn::data::{seeded_rng, ImageShape};
use metalearn::fewshot::augment::{augment_batch, augment_rng};
use metalearn::fewshot::r#loop::step_rng;
use metalearn::fewshot::tasks::{episode_task, FixedTasks, Split, TaskSource};
use metalearn::fewshot::{RunConfig, TrainOptions};
use rand::RngCore;
use std::path::Path;

/// A small ProtoNet run on Omniglot (Conv-4 with 8 filters, 5-way 1-shot 3-query) followed by
/// `extra` (e.g. a `[data.augment]` table).
fn omniglot_config(extra: &str) -> String {
    format!(
        r#"
{head}[train]
iterations = 4
meta_batch = 2
meta_lr = 0.001
seed = 11
val_every = 2
val_episodes = 4
checkpoint_every = 2
[eval]
episodes = 6
seed = 2024
[data]
dataset = "omniglot"
n_way = 5
k_shot = 1
q_query = 3
{extra}
"#,
        head = common::SMALL_CONV4_PROTONET
    )
}

const KOCH: &str = r#"
[data.augment]
rotation = 10
shear = 0.3
scale = [0.8, 1.2]
translate = 2
probability = 0.5
"#;

fn parse(text: &str) -> Result<RunConfig, String> {
    RunConfig::from_toml_str(text, Path::new("augment.toml")).map_err(|e| e.to_string())
}

fn load(text: &str) -> TaskSource {
    TaskSource::load(&parse(text).unwrap()).unwrap()
}

/// Bit patterns of a tensor.
fn bits(t: &metalearn::Tensor<f32>) -> Vec<u32> {
    t.data().iter().map(|v| v.to_bits()).collect()
}

fn labels(t: &Target<f32>) -> Vec<usize> {
    match t {
        Target::Classes(l) => l.clone(),
        Target::Values(_) => panic!("classification expected"),
    }
}

fn same_task(a: &TaskData<f32>, b: &TaskData<f32>) -> bool {
    a.support_x.shape() == b.support_x.shape()
        && bits(&a.support_x) == bits(&b.support_x)
        && bits(&a.query_x) == bits(&b.query_x)
        && labels(&a.support_y) == labels(&b.support_y)
        && labels(&a.query_y) == labels(&b.query_y)
}

/// Meta-batch `it` of a source (3 episodes, from the sampler the training loop uses), with the
/// episode generator's next word after it.
fn batch(source: &TaskSource, seed: u64, it: usize) -> (Vec<TaskData<f32>>, u64) {
    let sampler = source.train_sampler().unwrap();
    let mut rng = step_rng(seed, it);
    let tasks = source.train_batch(sampler.as_ref(), &mut rng, 3);
    (tasks, rng.next_u64())
}

#[test]
fn absent_table_changes_nothing_in_the_config() {
    let plain = parse(&omniglot_config("")).unwrap();
    assert_eq!(plain.data.augment, None);
    assert!(!plain.to_json().contains("augment"));
    // A stored config without the key (every checkpoint so far) reads back equal.
    let back: RunConfig = serde_json::from_str(&plain.to_json()).unwrap();
    assert_eq!(back, plain);
    // With the table: integers are read as numbers, omitted keys are off, and the config
    // round-trips through JSON (checkpoints) and TOML.
    let koch = parse(&omniglot_config(KOCH)).unwrap();
    let a = koch.data.augment.clone().unwrap();
    assert_eq!((a.rotation, a.shear, a.translate), (10.0, 0.3, 2.0));
    assert_eq!(
        (a.scale, a.probability, a.support_views),
        ((0.8, 1.2), 0.5, 1)
    );
    let back: RunConfig = serde_json::from_str(&koch.to_json()).unwrap();
    assert_eq!(back, koch);
    assert_eq!(parse(&koch.to_toml()).unwrap(), koch);
    let only_views = parse(&omniglot_config("[data.augment]\nsupport_views = 3")).unwrap();
    let v = only_views.data.augment.unwrap();
    assert!(!v.is_random() && v.support_views == 3 && v.probability == 1.0);
}

#[test]
fn bad_ranges_name_the_key_the_range_and_the_value() {
    for (body, key, shown) in [
        ("rotation = 181", "data.augment.rotation", "181"),
        ("rotation = -1", "data.augment.rotation", "-1"),
        ("shear = 1.5", "data.augment.shear", "1.5"),
        ("scale = [0.0, 1.2]", "data.augment.scale[0]", "0"),
        ("scale = [0.8, 4.5]", "data.augment.scale[1]", "4.5"),
        ("scale = [1.2, 0.8]", "data.augment.scale", "[1.2, 0.8]"),
        ("translate = 15", "data.augment.translate", "15"),
        ("translate = -0.5", "data.augment.translate", "-0.5"),
        ("probability = 1.01", "data.augment.probability", "1.01"),
        ("support_views = 0", "data.augment.support_views", "0"),
        ("support_views = 17", "data.augment.support_views", "17"),
        ("rotation = nan", "data.augment.rotation", "NaN"),
    ] {
        let e = parse(&omniglot_config(&format!("[data.augment]\n{body}"))).unwrap_err();
        assert!(e.contains(key) && e.contains(shown), "{body}: {e}");
        assert!(e.contains('[') && e.contains(']'), "no range in: {e}");
    }
    let e = parse(&omniglot_config("[data.augment]\nrotaton = 3")).unwrap_err();
    assert!(e.contains("rotaton"), "{e}");
    // Translate's bound is half the image side: 14 pixels at 28.
    assert!(parse(&omniglot_config("[data.augment]\ntranslate = 14")).is_ok());
    let e = parse(&omniglot_config("[data.augment]\ntranslate = 14.5")).unwrap_err();
    assert!(e.contains("[0, 14]"), "{e}");
}

#[test]
fn augment_on_non_image_data_is_an_error_naming_it() {
    let sinusoid = format!("{}\n[data.augment]\nrotation = 5\n", common::SINUSOID);
    let e = parse(&sinusoid).unwrap_err();
    assert!(e.contains("data.augment") && e.contains("sinusoid"), "{e}");
    let csv = common::csv_protonet_config(Path::new("/nonexistent.csv"), "iterations = 2");
    let e = parse(&format!("{csv}\n[data.augment]\nsupport_views = 3\n")).unwrap_err();
    assert!(e.contains("data.augment") && e.contains("csv"), "{e}");
}

#[test]
fn augmentation_off_gives_todays_episodes() {
    let Some(_) = common::omniglot() else { return };
    let plain = load(&omniglot_config(""));
    let views_only = load(&omniglot_config("[data.augment]\nsupport_views = 1"));
    let zero_p = load(&omniglot_config(&format!("{KOCH}\n").replace("0.5", "0.0")));
    // Today's batch, built by hand from the sampler.
    let TaskSource::Episodic(e) = &plain else {
        panic!("episodic")
    };
    let sampler = plain.train_sampler().unwrap().unwrap();
    let mut rng = step_rng(11, 5);
    let today: Vec<TaskData<f32>> = sampler
        .sample_batch(&mut rng, 3)
        .into_iter()
        .map(|ep| episode_task(ep, &e.layout))
        .collect();
    let next = rng.next_u64();
    for source in [&plain, &views_only, &zero_p] {
        let (tasks, after) = batch(source, 11, 5);
        assert!(tasks.iter().zip(&today).all(|(a, b)| same_task(a, b)));
        assert_eq!(after, next);
    }
    // Fixed (test) episodes too, when support_views = 1.
    let fa = plain.fixed(Split::Test, 3, 2024).unwrap();
    let fb = views_only.fixed(Split::Test, 3, 2024).unwrap();
    for i in 0..3 {
        let (a, b) = (plain.fixed_task(&fa, i), views_only.fixed_task(&fb, i));
        assert!(same_task(&a.unwrap(), &b.unwrap()));
    }
}

#[test]
fn augmented_batches_keep_the_episodes_and_the_learners_draws() {
    let Some(_) = common::omniglot() else { return };
    let source = load(&omniglot_config(KOCH));
    let TaskSource::Episodic(e) = &source else {
        panic!("episodic")
    };
    let sampler = source.train_sampler().unwrap().unwrap();
    let mut rng = step_rng(11, 5);
    let plain = sampler.sample_batch(&mut rng, 3);
    let mut augmented = plain.clone();
    augment_batch(e.augment.as_ref(), &mut augmented, &rng);
    let next = rng.next_u64();
    // Same episodes (indices, labels), other pixels, still in [0, 1] and mostly background.
    for (a, p) in augmented.iter().zip(&plain) {
        assert_eq!(
            (&a.indices, &a.support_y, &a.query_y),
            (&p.indices, &p.support_y, &p.query_y)
        );
        assert_ne!(a.query_x, p.query_x);
        assert!(a.query_x.iter().all(|v| (0.0..=1.0 + 1e-6).contains(v)));
        let ink = |x: &[f32]| x.iter().sum::<f32>();
        let ratio = ink(&a.query_x) / ink(&p.query_x);
        assert!((0.5..2.0).contains(&ratio), "ink ratio {ratio}");
    }
    // train_batch gives exactly these, and leaves the episode generator where it was.
    let (tasks, after) = batch(&source, 11, 5);
    assert_eq!(after, next);
    for (t, ep) in tasks.iter().zip(augmented) {
        assert!(same_task(t, &episode_task(ep, &e.layout)));
    }
    // The augmentation stream: same seed, stream 2^63 + iteration + 1.
    let a = augment_rng(&step_rng(11, 5));
    assert_eq!(
        (a.get_seed(), a.get_stream()),
        (seeded_rng(11).get_seed(), (1 << 63) + 6)
    );
}

#[test]
fn augmentation_is_seeded_and_thread_count_free() {
    let Some(_) = common::omniglot() else { return };
    let source = load(&omniglot_config(KOCH));
    let at = |threads: usize, seed: u64, it: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| batch(&source, seed, it).0)
    };
    let one = at(1, 11, 3);
    let two = at(2, 11, 3);
    assert!(one.iter().zip(&two).all(|(a, b)| same_task(a, b)));
    assert!(one.iter().zip(&at(2, 11, 3)).all(|(a, b)| same_task(a, b)));
    // Another seed or iteration: other episodes and other transforms.
    let other = at(2, 12, 3);
    assert!(one.iter().zip(&other).all(|(a, b)| !same_task(a, b)));
    assert!(one.iter().zip(&at(2, 11, 4)).all(|(a, b)| !same_task(a, b)));
}

#[test]
fn support_views_give_k_times_t_shots_the_original_first() {
    let Some(_) = common::omniglot() else { return };
    let k2 = omniglot_config("").replace("k_shot = 1", "k_shot = 2");
    let plain = load(&k2);
    let viewed = load(&format!(
        "{k2}\n[data.augment]\nsupport_views = 3\nrotation = 10\n"
    ));
    let shape = ImageShape {
        channels: 1,
        height: 28,
        width: 28,
    };
    for split in [Split::Val, Split::Test] {
        let (fa, fb) = (
            plain.fixed(split, 2, 2024).unwrap(),
            viewed.fixed(split, 2, 2024).unwrap(),
        );
        assert!(matches!(fb, FixedTasks::Episodes(..)));
        for i in 0..2 {
            let a = plain.fixed_task(&fa, i).unwrap();
            let b = viewed.fixed_task(&fb, i).unwrap();
            // 5 classes x K = 2 shots x T = 3 views, class-major.
            assert_eq!(b.support_x.shape(), &[30, 1, 28, 28]);
            let want: Vec<usize> = (0..5).flat_map(|k| [k; 6]).collect();
            assert_eq!(labels(&b.support_y), want);
            let (sa, sb) = (a.support_x.data(), b.support_x.data());
            for (j, img) in sa.chunks(784).enumerate() {
                // View 0 is the image, bit for bit; views 1 and 2 are the first two transforms.
                assert_eq!(&sb[(3 * j) * 784..(3 * j + 1) * 784], img);
                let views = expand_views(img, shape, 3);
                assert_eq!(&sb[(3 * j) * 784..(3 * j + 3) * 784], &views[..]);
            }
            // Queries (and their labels) are untouched: augmentation never reaches them.
            assert_eq!(bits(&a.query_x), bits(&b.query_x));
            assert_eq!(labels(&a.query_y), labels(&b.query_y));
        }
    }
    assert_eq!(SUPPORT_VIEW_TRANSFORMS.len(), 15);
}

#[test]
fn protonet_trains_with_augmentation_and_adapts_with_views() {
    let Some(_) = common::omniglot() else { return };
    let dir = common::fresh_dir("metalearn-augment", "smoke");
    let out_dir = format!(
        "checkpoint_every = 2\nout_dir = {:?}",
        dir.display().to_string()
    );
    let text = omniglot_config(&format!("{KOCH}support_views = 3\n"))
        .replace("checkpoint_every = 2", &out_dir);
    let cfg = parse(&text).unwrap();
    let report = metalearn::fewshot::train(&cfg, &TrainOptions::default()).unwrap();
    assert_eq!(report.iterations, 4);
    for p in &report.history {
        assert!(p.train_loss.is_finite() && p.val_loss.is_finite(), "{p:?}");
        assert!((0.0..=1.0).contains(&p.val_metric));
    }
    let eval = metalearn::fewshot::evaluate_checkpoint(&report.best_checkpoint, None).unwrap();
    assert!(
        eval.score.mean.is_finite() && eval.score.mean > 0.2,
        "{eval}"
    );
    eprintln!("{report}\n{eval}");

    // adapt with T = 3 views: a CSV support set of 2 Omniglot images, 2 queries.
    let source = load(&text);
    let fixed = source.fixed(Split::Test, 1, 5).unwrap();
    let task = source.fixed_task(&fixed, 0).unwrap();
    let s = task.support_x.data();
    let q = task.query_x.data();
    let row = |img: &[f32], label: &str| {
        let mut f: Vec<String> = img.iter().map(|v| v.to_string()).collect();
        f.push(label.to_string());
        f.join(",")
    };
    // Support views of the fixed task: images 0 and 3 are the originals of classes 0 and 1.
    let support = [row(&s[0..784], "a"), row(&s[3 * 784..4 * 784], "b")].join("\n");
    let queries = [row(&q[0..784], "a"), row(&q[3 * 784..4 * 784], "b")].join("\n");
    std::fs::write(dir.join("support.csv"), support + "\n").unwrap();
    std::fs::write(dir.join("query.csv"), queries + "\n").unwrap();
    let out = metalearn::fewshot::adapt(
        &report.best_checkpoint,
        &dir.join("support.csv"),
        &dir.join("query.csv"),
    )
    .unwrap();
    assert_eq!((out.support_size, out.predictions.len()), (2, 2));
    // The same as predicting from the two images and their views by hand.
    let run = metalearn::fewshot::load_learner(&report.best_checkpoint, None).unwrap();
    let shape = ImageShape {
        channels: 1,
        height: 28,
        width: 28,
    };
    let both = [&s[0..784], &s[3 * 784..4 * 784]].concat();
    let sx = metalearn::Tensor::from_vec(expand_views(&both, shape, 3), &[6, 1, 28, 28]);
    let qx =
        metalearn::Tensor::from_vec([&q[0..784], &q[3 * 784..4 * 784]].concat(), &[2, 1, 28, 28]);
    let logits = run
        .learner
        .predict(&sx, &Target::Classes(vec![0, 0, 0, 1, 1, 1]), &qx)
        .to_vec();
    for (i, p) in out.predictions.iter().enumerate() {
        let (z0, z1) = (logits[2 * i] as f64, logits[2 * i + 1] as f64);
        let p0 = 1.0 / (1.0 + (z1 - z0).exp());
        assert!((p.probabilities[0] - p0).abs() < 1e-5, "{p:?} vs {p0}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

//! The Lake protocol as data options (`split = "lake"`, `rotation_classes`,
//! `within_alphabet`, `disjoint_drawers`): the split's classes, the episode constraints, the
//! unchanged default episodes, the config errors and a short train + eval run.
//!
//! The tests that read Omniglot find it through `METALEARN_DATA` (skipped without it, failed
//! under `CI=true`).

mod common;

use metalearn::data::{
    load_lake, load_vinyals, seeded_rng, EpisodeSampler, EpisodeSet, EpisodeSpec, LabelledData,
    LakeSplits, OmniglotSet, OmniglotStructure, RotatedDataset, LAKE_VALIDATION_ALPHABETS,
};
use metalearn::fewshot::tasks::{FixedTasks, Split};
use metalearn::fewshot::{RunConfig, TaskSource};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::OnceLock;

/// The Lake splits at 28x28 without and with rotation classes, loaded once.
fn lake(rotations: bool) -> Option<&'static LakeSplits> {
    static PLAIN: OnceLock<Option<LakeSplits>> = OnceLock::new();
    static ROTATED: OnceLock<Option<LakeSplits>> = OnceLock::new();
    let cell = if rotations { &ROTATED } else { &PLAIN };
    cell.get_or_init(|| common::omniglot().map(|d| load_lake(&d, 28, rotations).unwrap()))
        .as_ref()
}

/// The alphabet of a class named `Alphabet/characterNN/rotDDD`.
fn alphabet_of(data: &dyn LabelledData, class: usize) -> String {
    let name = data.class_name(class);
    name.split('/').next().unwrap().to_string()
}

/// The character ids (base classes) of a split.
fn base_ids(l: &LakeSplits, ds: &RotatedDataset) -> BTreeSet<u32> {
    (0..ds.num_classes())
        .map(|k| l.characters[ds.class(k).0].id.unwrap())
        .collect()
}

/// A config of the shipped Lake ProtoNet file with `[data]` lines replaced (`from` -> `to`).
fn lake_config(edits: &[(&str, &str)]) -> RunConfig {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/fewshot/protonet-omniglot-lake.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "{from}");
        text = text.replace(from, to);
    }
    RunConfig::from_toml_str(&text, &path).unwrap()
}

#[test]
fn the_lake_split_trains_on_background_and_tests_on_evaluation_characters() {
    let Some(l) = lake(false) else { return };
    let (train, val, test) = (
        base_ids(l, &l.train),
        base_ids(l, &l.val),
        base_ids(l, &l.test),
    );
    assert_eq!(train.len() + val.len(), 964);
    assert_eq!((l.train.num_classes(), l.val.num_classes()), (828, 136));
    assert_eq!(test.len(), 659);
    assert_eq!(l.test.num_classes(), 659);
    // By Lake id: background is 1..=964, evaluation 965..=1623.
    assert!(train.iter().chain(&val).all(|&id| (1..=964).contains(&id)));
    assert!(test.iter().all(|&id| (965..=1623).contains(&id)));
    assert!(train.is_disjoint(&val));
    // By alphabet: no evaluation alphabet in train or validation, validation = the held-out five.
    let alphabets = |ds: &RotatedDataset| -> BTreeSet<String> {
        (0..ds.num_classes()).map(|k| alphabet_of(ds, k)).collect()
    };
    let (tr_a, va_a, te_a) = (alphabets(&l.train), alphabets(&l.val), alphabets(&l.test));
    assert_eq!((tr_a.len(), va_a.len(), te_a.len()), (25, 5, 20));
    assert!(tr_a.is_disjoint(&te_a) && va_a.is_disjoint(&te_a) && tr_a.is_disjoint(&va_a));
    let held: BTreeSet<String> = LAKE_VALIDATION_ALPHABETS
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(va_a, held);
    for ds in [&l.train, &l.val, &l.test] {
        let want = if std::ptr::eq(ds, &l.test) {
            OmniglotSet::Evaluation
        } else {
            OmniglotSet::Background
        };
        assert!((0..ds.num_classes()).all(|k| l.characters[ds.class(k).0].set() == Some(want)));
        assert!(
            (0..ds.num_classes()).all(|k| ds.class(k).1 == 0),
            "unrotated"
        );
    }
}

#[test]
fn rotation_classes_turn_only_the_training_characters_and_keep_their_drawers() {
    let (Some(plain), Some(rot)) = (lake(false), lake(true)) else {
        return;
    };
    assert_eq!(rot.train.num_classes(), 4 * plain.train.num_classes());
    assert_eq!(rot.val.num_classes(), plain.val.num_classes());
    assert_eq!(rot.test.num_classes(), plain.test.num_classes());
    for k in 0..rot.train.num_classes() {
        assert_eq!(
            rot.train.class(k),
            (plain.train.class(k / 4).0, (k % 4) as u32)
        );
    }
    let s = OmniglotStructure::of(&rot.train, &rot.characters, &rot.drawings).unwrap();
    for i in (0..rot.train.len()).step_by(97) {
        assert_eq!(s.example_drawer[i], rot.drawings[rot.train.base_example(i)]);
    }
    // An alphabet in a quarter turn is a group of its own.
    assert_eq!(s.group_names.len(), 4 * 25);
    assert!(s.group_names.contains(&"Latin/rot090".to_string()));
}

#[test]
fn within_alphabet_episodes_draw_every_class_from_one_alphabet() {
    let cfg = lake_config(&[("disjoint_drawers = true", "disjoint_drawers = false")]);
    if common::omniglot().is_none() {
        return;
    }
    let source = TaskSource::load(&cfg).unwrap();
    let TaskSource::Episodic(e) = &source else {
        panic!("episodic")
    };
    for (split, data) in [
        (Split::Train, &e.train),
        (Split::Val, &e.val),
        (Split::Test, &e.test),
    ] {
        let sampler = source.sampler(split).unwrap().unwrap();
        let mut chosen = BTreeSet::new();
        for seed in 0..300 {
            let idx = sampler.sample_indices(&mut seeded_rng(seed));
            assert_eq!(idx.classes.len(), 20);
            assert_eq!(idx.classes.iter().collect::<BTreeSet<_>>().len(), 20);
            let a: BTreeSet<String> = idx
                .classes
                .iter()
                .map(|&c| alphabet_of(data.as_ref(), c))
                .collect();
            assert_eq!(a.len(), 1, "{split:?} seed {seed}: {a:?}");
            chosen.extend(a);
        }
        // The alphabet is uniform among those with >= 20 characters: 300 draws reach them all.
        let eligible = sampler.eligible_groups().unwrap();
        assert_eq!(chosen.len(), eligible, "{split:?}");
    }
    // Test: every evaluation alphabet has >= 20 characters; train: 21 of 25 alphabets do.
    let s = |split| {
        source
            .sampler(split)
            .unwrap()
            .unwrap()
            .eligible_groups()
            .unwrap()
    };
    assert_eq!(
        (s(Split::Train), s(Split::Val), s(Split::Test)),
        (21, 5, 20)
    );
}

#[test]
fn disjoint_drawer_episodes_share_support_drawers_and_query_from_the_others() {
    let Some(l) = lake(true) else { return };
    for (ds, k, q) in [
        (&l.train, 1, 5),
        (&l.test, 1, 19),
        (&l.val, 3, 5),
        (&l.test, 5, 15),
    ] {
        let s = OmniglotStructure::of(ds, &l.characters, &l.drawings).unwrap();
        let spec = EpisodeSpec::new(20, k, q).unwrap();
        let sampler = EpisodeSampler::new(ds, spec)
            .unwrap()
            .group_by(&s.class_group)
            .unwrap()
            .disjoint_drawers(&s.example_drawer)
            .unwrap();
        for seed in 0..100 {
            let idx = sampler.sample_indices(&mut seeded_rng(seed));
            let d = |i: usize| s.example_drawer[i];
            let support: Vec<u32> = idx.support[..k].iter().map(|&i| d(i)).collect();
            assert_eq!(support.iter().collect::<BTreeSet<_>>().len(), k);
            for c in 0..20 {
                let shots: Vec<u32> = idx.support[c * k..(c + 1) * k]
                    .iter()
                    .map(|&i| d(i))
                    .collect();
                assert_eq!(shots, support, "seed {seed}: class {c} support drawers");
                let queries = &idx.query[c * q..(c + 1) * q];
                assert_eq!(queries.iter().collect::<BTreeSet<_>>().len(), q);
                assert!(
                    queries.iter().all(|&i| !support.contains(&d(i))),
                    "seed {seed}"
                );
                assert!(queries.iter().all(|&i| ds.label(i) == idx.classes[c]));
            }
            let groups: BTreeSet<usize> = idx.classes.iter().map(|&c| s.class_group[c]).collect();
            assert_eq!(groups.len(), 1);
        }
    }
}

#[test]
fn the_run_config_wires_the_constraints_into_every_split() {
    let cfg = lake_config(&[]);
    let Some(l) = lake(false) else { return };
    let source = TaskSource::load(&cfg).unwrap();
    for (split, ds) in [(Split::Val, &l.val), (Split::Test, &l.test)] {
        let s = OmniglotStructure::of(ds, &l.characters, &l.drawings).unwrap();
        let direct = EpisodeSampler::new(ds, EpisodeSpec::new(20, 1, 5).unwrap())
            .unwrap()
            .group_by(&s.class_group)
            .unwrap()
            .disjoint_drawers(&s.example_drawer)
            .unwrap();
        let FixedTasks::Episodes(set, _) = source.fixed(split, 30, 2024).unwrap() else {
            panic!("episodes")
        };
        assert_eq!(
            set.episodes,
            EpisodeSet::from_sampler(&direct, 30, 2024).episodes
        );
    }
}

#[test]
fn default_vinyals_episodes_are_unchanged() {
    let Some(dir) = common::omniglot() else {
        return;
    };
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/fewshot/protonet-omniglot-20w1s.toml"),
    )
    .unwrap();
    let cfg = RunConfig::from_toml_str(&text, Path::new("20w1s")).unwrap();
    let source = TaskSource::load(&cfg).unwrap();
    let v = load_vinyals(&dir).unwrap();
    let spec = EpisodeSpec::new(20, 1, 15).unwrap();
    for (split, ds) in [
        (Split::Train, &v.train),
        (Split::Val, &v.val),
        (Split::Test, &v.test),
    ] {
        let plain = EpisodeSampler::new(ds, spec).unwrap();
        let FixedTasks::Episodes(set, _) = source.fixed(split, 50, 2024).unwrap() else {
            panic!("episodes")
        };
        assert_eq!(
            set.episodes,
            EpisodeSet::from_sampler(&plain, 50, 2024).episodes
        );
        let ours = source.sampler(split).unwrap().unwrap();
        for seed in 0..20 {
            assert_eq!(
                ours.sample_indices(&mut seeded_rng(seed)),
                plain.sample_indices(&mut seeded_rng(seed))
            );
        }
    }
    // The same split by name.
    let named = RunConfig::from_toml_str(
        &text.replace(
            "dataset = \"omniglot\"",
            "dataset = \"omniglot\"\nsplit = \"vinyals\"",
        ),
        Path::new("named"),
    )
    .unwrap();
    assert_eq!(named.data, cfg.data);
}

/// `RunConfig::from_toml_str` of `text` fails naming `key`; returns the message.
fn fails_naming(text: &str, key: &str) -> String {
    let e = RunConfig::from_toml_str(text, Path::new("bad.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains(key), "{key}: {e}");
    e
}

fn config_with(dataset: &str, extra: &str) -> String {
    let backbone = if dataset.contains("csv") {
        "name = \"mlp\"\nsizes = [3, 8]"
    } else {
        "name = \"conv4\"\nin_channels = 1\nfilters = 4\nimage_size = 28"
    };
    format!(
        "[algorithm]\nname = \"protonet\"\n[backbone]\n{backbone}\n[data]\n{dataset}\n\
         n_way = 2\nk_shot = 1\nq_query = 1\n{extra}\n"
    )
}

#[test]
fn options_on_data_without_them_are_errors_naming_the_key() {
    let folder = "dataset = \"image_folder\"\ndata_dir = \"x\"";
    let csv = "dataset = \"csv\"\ndata_dir = \"x.csv\"";
    let omniglot = "dataset = \"omniglot\"";
    for d in [folder, csv] {
        let e = fails_naming(
            &config_with(d, "within_alphabet = true"),
            "data.within_alphabet",
        );
        assert!(e.contains("no alphabets"), "{e}");
        fails_naming(
            &config_with(d, "disjoint_drawers = true"),
            "data.disjoint_drawers",
        );
        fails_naming(
            &config_with(d, "train_within_alphabet = true"),
            "data.train_within_alphabet",
        );
        let e = fails_naming(&config_with(d, "split = \"lake\""), "data.split");
        assert!(e.contains("no named splits"), "{e}");
    }
    let e = fails_naming(&config_with(omniglot, "split = [0.6, 0.2]"), "data.split");
    assert!(e.contains("named") && e.contains("lake"), "{e}");
    let e = fails_naming(&config_with(omniglot, "split = \"lakes\""), "data.split");
    assert!(e.contains("\"lakes\""), "{e}");
    fails_naming(
        &config_with(csv, "rotation_classes = true"),
        "data.rotation_classes",
    );
    fails_naming(
        &config_with(omniglot, "rotation_classes = false"),
        "data.rotation_classes",
    );
    let e = fails_naming(
        &config_with(omniglot, "split = \"lake\"\ndisjoint_drawers = true")
            .replace("q_query = 1", "q_query = 20"),
        "data.disjoint_drawers",
    );
    assert!(e.contains("20"), "{e}");
    // A split of the wrong type is a parse error naming `split`.
    fails_naming(&config_with(omniglot, "split = 3"), "split");
    // Accepted: the options where they apply.
    for ok in [
        config_with(
            omniglot,
            "split = \"lake\"\nrotation_classes = true\nwithin_alphabet = true",
        ),
        config_with(omniglot, "split = \"vinyals\"\ndisjoint_drawers = true"),
        config_with(folder, "split = [0.5, 0.25]\nrotation_classes = true"),
    ] {
        RunConfig::from_toml_str(&ok, Path::new("ok.toml")).unwrap();
    }
}

#[test]
fn too_small_alphabets_are_an_error_naming_within_alphabet() {
    let cfg = lake_config(&[("n_way = 20", "n_way = 48"), ("q_query = 5", "q_query = 2")]);
    if common::omniglot().is_none() {
        return;
    }
    let source = TaskSource::load(&cfg).unwrap();
    assert!(
        source.sampler(Split::Train).is_ok(),
        "Tifinagh and hiragana have 55 and 52"
    );
    for (split, name) in [(Split::Val, "validation"), (Split::Test, "test")] {
        let e = source.sampler(split).err().unwrap().to_string();
        assert!(
            e.contains("data.within_alphabet") && e.contains(name),
            "{e}"
        );
    }
}

#[test]
fn stored_configs_of_earlier_versions_load_unchanged() {
    use metalearn::fewshot::eval::{stored_config, CONFIG_KEY};
    // What an earlier version stored: the unused split fractions written out for Omniglot.
    let now_cfg =
        RunConfig::from_toml_str(&config_with("dataset = \"omniglot\"", ""), Path::new("o"))
            .unwrap();
    let now = now_cfg.to_json();
    assert!(!now.contains("\"split\":"), "{now}");
    let old = now.replace("\"split_seed\"", "\"split\":[0.6,0.2],\"split_seed\"");
    assert!(old.contains("\"split\":[0.6,0.2]"), "{old}");
    let meta = std::collections::BTreeMap::from([(CONFIG_KEY.to_string(), old.to_string())]);
    let cfg = stored_config(Path::new("old.safetensors"), &meta).unwrap();
    cfg.validate().unwrap();
    assert_eq!(cfg.data.split, None);
    assert!(cfg.data.rotation_classes());
    assert!(!cfg.data.within_alphabet && !cfg.data.disjoint_drawers);
    // The same config written today compares equal (so `--resume` accepts the old run).
    assert_eq!(cfg, now_cfg);
    let meta = std::collections::BTreeMap::from([(CONFIG_KEY.to_string(), now)]);
    assert_eq!(stored_config(Path::new("new"), &meta).unwrap(), cfg);
    // An image-folder config is stored as before, split fractions included.
    let f = RunConfig::from_toml_str(
        &config_with("dataset = \"image_folder\"\ndata_dir = \"x\"", ""),
        Path::new("f.toml"),
    )
    .unwrap();
    assert!(
        f.to_json().contains(r#""split":[0.6,0.2],"split_seed":0"#),
        "{}",
        f.to_json()
    );
    // The Lake config survives its own round trip.
    let lake = lake_config(&[]);
    let json = lake.to_json();
    assert!(json.contains(r#""split":"lake""#) && json.contains(r#""within_alphabet":true"#));
    let meta = std::collections::BTreeMap::from([(CONFIG_KEY.to_string(), json)]);
    assert_eq!(stored_config(Path::new("lake"), &meta).unwrap(), lake);
}

#[test]
fn image_folder_rotation_classes_turn_the_training_classes() {
    let dir = common::fresh_dir("lake-folder", "rot");
    for c in 0..5 {
        for i in 0..3u8 {
            let px: Vec<u8> = (0..16u8)
                .map(|p| p.wrapping_mul(13).wrapping_add(40 * i + c))
                .collect();
            common::write_png(
                &dir.join(format!("c{c}/{i}.png")),
                4,
                4,
                png::ColorType::Grayscale,
                png::BitDepth::Eight,
                &px,
            );
        }
    }
    let folder = format!(
        "dataset = \"image_folder\"\ndata_dir = {:?}",
        dir.display().to_string()
    );
    let text = config_with(&folder, "split = [0.6, 0.2]\nrotation_classes = true")
        .replace("image_size = 28", "image_size = 4\nblocks = 1");
    let cfg = RunConfig::from_toml_str(&text, Path::new("f.toml")).unwrap();
    let TaskSource::Episodic(e) = TaskSource::load(&cfg).unwrap() else {
        panic!()
    };
    assert_eq!(
        (
            e.train.num_classes(),
            e.val.num_classes(),
            e.test.num_classes()
        ),
        (12, 1, 1)
    );
    let mut a = vec![0.0; 16];
    let mut b = vec![0.0; 16];
    e.train.write_example(0, &mut a);
    e.train.write_example(3, &mut b); // the same image, class 1 = a quarter turn
    assert_eq!(e.train.label(3), 1);
    let mut turned = vec![0.0; 16];
    metalearn::data::rotate90(&a, 4, 4, 1, &mut turned);
    assert_eq!(b, turned);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_short_lake_run_reports_within_alphabet_accuracy_and_error() {
    if common::omniglot().is_none() {
        return;
    }
    let out = common::fresh_dir("lake-run", "protonet");
    let mut cfg = lake_config(&[("filters = 64", "filters = 8")]);
    cfg.train.iterations = 3;
    cfg.train.val_every = 3;
    cfg.train.val_episodes = 3;
    cfg.train.out_dir = out.clone();
    cfg.eval.episodes = 20;
    let opts = metalearn::fewshot::TrainOptions {
        resume: false,
        overwrite: true,
        progress: false,
        stop_after: None,
    };
    let run = metalearn::fewshot::train(&cfg, &opts).unwrap();
    let report = metalearn::fewshot::evaluate_checkpoint(&run.best_checkpoint, None).unwrap();
    let (acc, err) = (report.score, report.error.unwrap());
    assert!(acc.mean.is_finite() && acc.ci95.is_finite() && (0.0..=1.0).contains(&acc.mean));
    assert!((acc.mean + err.mean - 1.0).abs() < 1e-12 && (acc.ci95 - err.ci95).abs() < 1e-12);
    let line = report.to_string();
    assert!(
        line.contains("lake split, within-alphabet, disjoint drawers")
            && line.contains("20-way 1-shot"),
        "{line}"
    );
    assert!(
        line.contains("accuracy") && line.contains(", error ") && !line.contains("NaN"),
        "{line}"
    );
    let _ = std::fs::remove_dir_all(&out);
}

/// 6 classes of 8 examples (example `i` of class `c` drawn by drawer `i % 4 + 1`, twice each),
/// classes 0..4 in group 0 and 4..6 in group 1.
fn grouped_synthetic() -> (metalearn::data::ImageDataset, Vec<usize>, Vec<u32>) {
    let labels: Vec<usize> = (0..48).map(|i| i / 8).collect();
    let drawers: Vec<u32> = (0..48).map(|i| (i % 4) as u32 + 1).collect();
    let names = (0..6).map(|c| format!("c{c}")).collect();
    let images = (0..48).map(|i| i as f32).collect();
    let ds = metalearn::data::ImageDataset::new(images, [48, 1, 1, 1], labels, names).unwrap();
    (ds, vec![0, 0, 0, 0, 1, 1], drawers)
}

#[test]
fn the_sampler_constraints_hold_on_synthetic_data_and_bad_input_is_an_error() {
    let (ds, groups, drawers) = grouped_synthetic();
    let spec = EpisodeSpec::new(3, 2, 3).unwrap();
    let plain = EpisodeSampler::new(&ds, spec).unwrap();
    let s = plain
        .clone()
        .group_by(&groups)
        .unwrap()
        .disjoint_drawers(&drawers)
        .unwrap();
    assert_eq!(s.eligible_groups(), Some(1), "group 1 has 2 < 3 classes");
    for seed in 0..200 {
        let idx = s.sample_indices(&mut seeded_rng(seed));
        assert!(idx.classes.iter().all(|&c| c < 4), "{idx:?}");
        let d = |i: usize| drawers[i];
        let sup: Vec<u32> = idx.support[..2].iter().map(|&i| d(i)).collect();
        assert_ne!(sup[0], sup[1]);
        for c in 0..3 {
            assert_eq!(
                idx.support[2 * c..2 * c + 2]
                    .iter()
                    .map(|&i| d(i))
                    .collect::<Vec<_>>(),
                sup
            );
            assert!(idx.query[3 * c..3 * c + 3]
                .iter()
                .all(|&i| !sup.contains(&d(i))));
            assert!(idx.query[3 * c..3 * c + 3]
                .iter()
                .all(|&i| ds.labels[i] == idx.classes[c]));
        }
    }
    // The same seed gives the same episode; the constraints are off by default.
    assert_eq!(
        s.sample_indices(&mut seeded_rng(9)),
        s.sample_indices(&mut seeded_rng(9))
    );
    assert_eq!(plain.eligible_groups(), None);
    // Bad input: wrong lengths, no group of N classes, too few drawers for K or for Q.
    let msg = |r: Result<EpisodeSampler<'_, metalearn::data::ImageDataset>, _>| match r {
        Err(e) => metalearn::data::DataError::to_string(&e),
        Ok(_) => panic!("accepted"),
    };
    assert!(msg(plain.clone().group_by(&groups[..5])).contains("one group per class"));
    assert!(msg(plain.clone().disjoint_drawers(&drawers[..47])).contains("one drawer per example"));
    let wide = EpisodeSampler::new(&ds, EpisodeSpec::new(5, 1, 1).unwrap()).unwrap();
    assert!(msg(wide.group_by(&groups)).contains("largest has 4"));
    let many_shots = EpisodeSampler::new(&ds, EpisodeSpec::new(2, 5, 1).unwrap()).unwrap();
    assert!(msg(many_shots.disjoint_drawers(&drawers)).contains("share 4 drawers"));
    let many_queries = EpisodeSampler::new(&ds, EpisodeSpec::new(2, 2, 5).unwrap()).unwrap();
    assert!(msg(many_queries.disjoint_drawers(&drawers)).contains("fewer than Q = 5"));
}

#[test]
fn train_within_alphabet_false_trains_on_mixed_alphabets_and_tests_within_one() {
    let cfg = lake_config(&[(
        "\nwithin_alphabet = true\n",
        "\nwithin_alphabet = true\ntrain_within_alphabet = false\ntrain_n_way = 60\n",
    )]);
    if common::omniglot().is_none() {
        return;
    }
    let source = TaskSource::load(&cfg).unwrap();
    let TaskSource::Episodic(e) = &source else {
        panic!("episodic")
    };
    let alphabets = |data: &dyn LabelledData, classes: &[usize]| -> BTreeSet<String> {
        classes.iter().map(|&c| alphabet_of(data, c)).collect()
    };
    // 60 classes cannot come from one alphabet (the largest background one has 55).
    let train = source.train_sampler().unwrap().unwrap();
    for seed in 0..20 {
        let idx = train.sample_indices(&mut seeded_rng(seed));
        assert_eq!(idx.classes.len(), 60);
        assert!(alphabets(e.train.as_ref(), &idx.classes).len() > 1);
    }
    for (split, data) in [(Split::Val, &e.val), (Split::Test, &e.test)] {
        let sampler = source.sampler(split).unwrap().unwrap();
        for seed in 0..50 {
            let idx = sampler.sample_indices(&mut seeded_rng(seed));
            assert_eq!(idx.classes.len(), 20);
            assert_eq!(alphabets(data.as_ref(), &idx.classes).len(), 1, "{split:?}");
        }
    }
    // Training within alphabets at 60-way is impossible: an error naming the key.
    let cfg = lake_config(&[(
        "\nwithin_alphabet = true\n",
        "\nwithin_alphabet = true\ntrain_n_way = 60\n",
    )]);
    let err = TaskSource::load(&cfg)
        .and_then(|s| s.train_sampler().map(|_| ()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("data.within_alphabet"), "{err}");
}

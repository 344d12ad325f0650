//! Loaders on the real files of the data folder (`$METALEARN_DATA`, default `../shared/data`)
//! and on small generated files.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use metalearn::data::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn data() -> PathBuf {
    default_data_dir()
}

fn temp_dir(tag: &str) -> PathBuf {
    common::unique_dir("metalearn", tag)
}

fn omniglot() -> &'static Omniglot {
    static O: OnceLock<Omniglot> = OnceLock::new();
    O.get_or_init(|| load_omniglot(&data().join("omniglot")).expect("load omniglot"))
}

#[test]
fn omniglot_npz_has_1623_characters_of_20_drawings() {
    let Some(_) = common::omniglot() else { return };
    let o = omniglot();
    let d = &o.images;
    assert_eq!(d.shape(), [32460, 1, 28, 28]);
    assert_eq!(d.num_classes(), 1623);
    assert!(d.class_counts().iter().all(|&c| c == 20));
    let bg = o
        .characters
        .iter()
        .filter(|c| c.set() == Some(OmniglotSet::Background))
        .count();
    let ev = o
        .characters
        .iter()
        .filter(|c| c.set() == Some(OmniglotSet::Evaluation))
        .count();
    assert_eq!((bg, ev), (964, 659));
    // Class k is Lake's id k + 1; names follow SOURCE.md's table.
    for (k, c) in o.characters.iter().enumerate() {
        assert_eq!(c.id, Some(k as u32 + 1));
    }
    assert_eq!(d.class_names[0], "Arcadian/character01");
    assert_eq!(d.class_names[963], "Tifinagh/character55");
    assert_eq!(d.class_names[964], "Angelic/character01");
    assert_eq!(d.class_names[1622], "ULOG/character26");
    // Drawings 1..=20 in order, ink = 1 and background = 0 (about 8% ink).
    assert_eq!(
        &o.drawings[..21],
        &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 1]
    );
    assert!(d.images.iter().all(|&v| (0.0..=1.0 + 1e-6).contains(&v)));
    let mean = d.images.iter().map(|&v| f64::from(v)).sum::<f64>() / d.images.len() as f64;
    assert!((0.03..0.2).contains(&mean), "ink mean {mean}");
    // Corners are background.
    assert_eq!(d.image(0)[0], 0.0);
    // Braille/character01 (id 192) drawings 03 and 19 are identical (SOURCE.md).
    let c = o.class_of("Braille/character01").unwrap();
    assert_eq!(c, 191);
    assert_eq!(d.image(c * 20 + 2), d.image(c * 20 + 18));
}

#[test]
fn omniglot_png_zips_match_npz_exactly() {
    let Some(_) = common::omniglot() else { return };
    let small = data().join("omniglot/lake-small");
    let zips = [
        small.join("images_background_small1.zip"),
        small.join("images_background_small2.zip"),
    ];
    let png = load_omniglot_pngs(&zips, 28).unwrap();
    let alphabets: BTreeSet<&str> = png.characters.iter().map(|c| c.alphabet.as_str()).collect();
    assert_eq!(
        alphabets.into_iter().collect::<Vec<_>>(),
        [
            "Balinese",
            "Early_Aramaic",
            "Greek",
            "Japanese_(katakana)",
            "Korean",
            "Latin",
            "Sanskrit",
            "Tagalog"
        ]
    );
    // 136 + 156 characters, Greek (24) and Latin (26) in both zips.
    assert_eq!(png.characters.len(), 242);
    assert_eq!(png.images.n, 242 * 20);
    let o = omniglot();
    for i in 0..png.images.n {
        let ch = &png.characters[png.images.labels[i]];
        let id = ch.id.expect("known alphabet") as usize;
        assert_eq!(o.characters[id - 1], *ch);
        let j = (id - 1) * 20 + png.drawings[i] as usize - 1;
        assert_eq!(
            png.images.image(i),
            o.images.image(j),
            "{} drawing {}",
            ch.name(),
            png.drawings[i]
        );
    }

    // The same from an unzipped folder (Lake's layout on disk).
    let dir = temp_dir("lake");
    let f = std::fs::File::open(&zips[0]).unwrap();
    zip::ZipArchive::new(f).unwrap().extract(&dir).unwrap();
    let from_dir = load_omniglot_pngs(&[&dir], 28).unwrap();
    let from_zip = load_omniglot_pngs(&zips[..1], 28).unwrap();
    assert_eq!(from_dir, from_zip);
    assert_eq!(from_dir.characters.len(), 136);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn vinyals_splits_have_expected_rotation_classes() {
    let Some(_) = common::omniglot() else { return };
    let o = omniglot();
    let base = Arc::new(o.images.clone());
    let split = data().join("omniglot/splits/vinyals");
    let train = load_vinyals_split(&base, &split.join("train.txt")).unwrap();
    let val = load_vinyals_split(&base, &split.join("val.txt")).unwrap();
    let test = load_vinyals_split(&base, &split.join("test.txt")).unwrap();
    assert_eq!(
        (train.num_classes(), val.num_classes(), test.num_classes()),
        (4112, 688, 1692)
    );
    assert_eq!(
        (train.len(), val.len(), test.len()),
        (4112 * 20, 688 * 20, 1692 * 20)
    );
    // Characters: 1028 / 172 / 423, disjoint, together all 1623.
    let chars = |d: &RotatedDataset| -> BTreeSet<usize> {
        (0..d.num_classes()).map(|k| d.class(k).0).collect()
    };
    let (a, b, c) = (chars(&train), chars(&val), chars(&test));
    assert_eq!((a.len(), b.len(), c.len()), (1028, 172, 423));
    assert!(a.is_disjoint(&b) && a.is_disjoint(&c) && b.is_disjoint(&c));
    assert_eq!(a.len() + b.len() + c.len(), 1623);
    // Class names and rotations.
    assert_eq!(train.class_names()[1], "Angelic/character01/rot090");
    assert_eq!(train.class(1).1, 1);
    // Examples are the base drawings turned counter-clockwise.
    let mut out = vec![0.0; 784];
    let mut expected = vec![0.0; 784];
    for k in 0..8 {
        let (bc, q) = train.class(k);
        let i = (0..train.len()).find(|&i| train.label(i) == k).unwrap();
        train.write_example(i, &mut out);
        rotate90(base.image(train.base_example(i)), 28, 28, q, &mut expected);
        assert_eq!(out, expected);
        assert_eq!(base.labels[train.base_example(i)], bc);
    }
    // Counter-clockwise: the top-right pixel moves to the top-left.
    let img: Vec<f32> = (0..784).map(|v| v as f32).collect();
    rotate90(&img, 28, 28, 1, &mut out);
    assert_eq!(out[0], 27.0);
    // The materialised dataset agrees with the lazy one.
    let small = RotatedDataset::new(Arc::clone(&base), vec![(5, 3), (7, 2)]).unwrap();
    let m = small.to_image_dataset().unwrap();
    assert_eq!(m.n, 40);
    small.write_example(25, &mut out);
    assert_eq!(m.image(25), &out[..]);
}

#[test]
fn load_vinyals_end_to_end() {
    let Some(_) = common::omniglot() else { return };
    let v = load_vinyals(&data().join("omniglot")).unwrap();
    assert_eq!(
        v.train.num_classes() + v.val.num_classes() + v.test.num_classes(),
        6492
    );
    assert_eq!(v.characters.len(), 1623);
}

#[test]
fn mnist_raw_idx_with_dotted_names() {
    let Some(_) = common::small_image_sets() else {
        return;
    };
    let m = load_mnist(&data().join("mnist")).unwrap();
    assert_eq!(m.train.shape(), [60000, 1, 28, 28]);
    assert_eq!(m.test.shape(), [10000, 1, 28, 28]);
    assert_eq!(
        m.train.class_counts(),
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    assert_eq!(
        m.test.class_counts(),
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    assert_eq!(&m.train.labels[..10], &[5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
    let mean =
        m.train.images.iter().map(|&v| f64::from(v)).sum::<f64>() / m.train.images.len() as f64;
    assert!((mean - 0.1307).abs() < 1e-3, "{mean}");
    assert!(m.train.images.iter().all(|&v| (0.0..=1.0).contains(&v)));
}

#[test]
fn fashion_mnist_gzip_idx() {
    let Some(_) = common::small_image_sets() else {
        return;
    };
    let f = load_fashion_mnist(&data().join("fashion-mnist")).unwrap();
    assert_eq!((f.train.n, f.test.n), (60000, 10000));
    assert!(f.train.class_counts().iter().all(|&c| c == 6000));
    assert!(f.test.class_counts().iter().all(|&c| c == 1000));
    assert_eq!(&f.train.labels[..10], &[9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
    assert_eq!(f.train.class_names[9], "Ankle boot");
    let mean =
        f.train.images.iter().map(|&v| f64::from(v)).sum::<f64>() / f.train.images.len() as f64;
    assert!((mean - 0.2860).abs() < 1e-3, "{mean}");
}

/// Writes an IDX file of unsigned bytes.
fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

#[test]
fn idx_raw_and_gzip_under_every_spelling() {
    let Some(_) = common::small_image_sets() else {
        return;
    };
    let raw = std::fs::read(data().join("mnist/t10k-labels.idx1-ubyte")).unwrap();
    let a = parse_idx(&raw, "raw").unwrap();
    let b = parse_idx(&common::gzip(&raw), "gz").unwrap();
    assert_eq!(a, b);
    assert_eq!(a.dims, vec![10000]);

    // A small MNIST-layout folder with the dashed names, gzipped and not.
    let dir = temp_dir("idx");
    let px: Vec<u8> = (0..3 * 4 * 5).map(|v| (v * 4) as u8).collect();
    std::fs::write(
        dir.join("train-images-idx3-ubyte.gz"),
        common::gzip(&idx_bytes(&[3, 4, 5], &px)),
    )
    .unwrap();
    std::fs::write(
        dir.join("train-labels-idx1-ubyte"),
        idx_bytes(&[3], &[2, 0, 1]),
    )
    .unwrap();
    std::fs::write(
        dir.join("t10k-images.idx3-ubyte"),
        idx_bytes(&[1, 4, 5], &px[..20]),
    )
    .unwrap();
    std::fs::write(
        dir.join("t10k-labels.idx1-ubyte.gz"),
        common::gzip(&idx_bytes(&[1], &[9])),
    )
    .unwrap();
    let m = load_mnist(&dir).unwrap();
    assert_eq!(m.train.shape(), [3, 1, 4, 5]);
    assert_eq!(m.train.labels, vec![2, 0, 1]);
    assert_eq!(m.train.image(1)[0], 80.0 / 255.0);
    assert_eq!(m.test.labels, vec![9]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn sklearn_digits() {
    let Some(_) = common::small_image_sets() else {
        return;
    };
    let d = load_digits(&data().join("sklearn-digits/digits.csv.gz")).unwrap();
    assert_eq!(d.shape(), [1797, 1, 8, 8]);
    assert_eq!(
        d.class_counts(),
        [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    );
    assert!(d.images.iter().all(|&v| (0.0..=1.0).contains(&v)));
    assert_eq!(d.image(0)[2], 5.0 / 16.0);
}

#[test]
fn multi_label_digits_with_derived_tasks() {
    let Some(_) = common::small_image_sets() else {
        return;
    };
    let d = load_digits(&data().join("sklearn-digits/digits.csv.gz")).unwrap();
    let labels = d.labels.clone();
    let mut m = MultiLabelDataset::from_image_dataset(d, "digit").unwrap();
    m.add_digit_tasks("digit").unwrap();
    assert_eq!(m.label_names, ["digit", "digit_mod3", "digit_parity"]);
    assert_eq!(m.example_shape, [1, 8, 8]);
    for (i, &l) in labels.iter().enumerate() {
        assert_eq!(m.example_labels(i), vec![l, l % 3, l % 2]);
    }
    let parity = m.task("digit_parity").unwrap();
    assert_eq!(parity.num_classes(), 2);
    assert_eq!(
        m.class_counts("digit_parity").unwrap()["0"],
        178 + 177 + 181 + 181 + 174
    );
    // Any column can feed the episode sampler.
    let mod3 = m.task("digit_mod3").unwrap();
    let s = EpisodeSampler::new(&mod3, EpisodeSpec::new(3, 2, 3).unwrap()).unwrap();
    let ep = s.sample(&mut ChaCha8Rng::seed_from_u64(1));
    assert_eq!(ep.support_shape(), [6, 1, 8, 8]);
    assert!(m.derive("x", "nope", |d| d).is_err());
    assert!(m.add_column("digit", vec![0; m.n], None).is_err());
}

#[test]
fn feature_csv_with_several_label_columns() {
    let dir = temp_dir("csv");
    let p = dir.join("f.csv");
    std::fs::write(
        &p,
        "a,kind,b,c,size\n0.5,cat,1,2,3\n1.5,dog,-1,0.25,0\n\n2,cat,3,4,1\n",
    )
    .unwrap();
    let opts = CsvOptions {
        labels: LabelColumns::Names(vec!["kind".into(), "size".into()]),
        has_header: true,
        delimiter: ',',
    };
    let m = load_feature_csv(&p, &opts).unwrap();
    assert_eq!(m.n, 3);
    assert_eq!(m.example_shape, [3]);
    assert_eq!(m.example(1), &[1.5, -1.0, 0.25]);
    assert_eq!(m.label_names, ["kind", "size"]);
    assert_eq!(m.column("kind").unwrap(), &[0, 1, 0]);
    assert_eq!(m.class_names[0], ["cat", "dog"]);
    assert_eq!(m.column("size").unwrap(), &[3, 0, 1]);
    // Same by position, gzip, semicolons.
    let p2 = dir.join("g.csv.gz");
    std::fs::write(
        &p2,
        common::gzip(b"0.5;cat;1;2;3\n1.5;dog;-1;0.25;0\n2;cat;3;4;1\n"),
    )
    .unwrap();
    let opts2 = CsvOptions {
        labels: LabelColumns::Indices(vec![1, 4]),
        has_header: false,
        delimiter: ';',
    };
    let m2 = load_feature_csv(&p2, &opts2).unwrap();
    assert_eq!(m2.data, m.data);
    assert_eq!(m2.labels, m.labels);
    assert_eq!(m2.label_names, ["label0", "label1"]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn image_folder_gray_rgb_and_resize() {
    let dir = temp_dir("imgfolder");
    for (c, name) in ["cat", "dog"].iter().enumerate() {
        std::fs::create_dir_all(dir.join(name)).unwrap();
        for i in 0..3u8 {
            let v = 40 * i + 100 * c as u8;
            common::write_png(
                &dir.join(name).join(format!("{i}.png")),
                4,
                4,
                png::ColorType::Rgb,
                png::BitDepth::Eight,
                &[v; 48],
            );
        }
    }
    // A gray image, and a hidden file that is ignored.
    common::write_png(
        &dir.join("dog/g.png"),
        4,
        4,
        png::ColorType::Grayscale,
        png::BitDepth::Eight,
        &[255; 16],
    );
    std::fs::write(dir.join("dog/.DS_Store"), b"junk").unwrap();
    let g = load_image_folder(&dir, &ImageFolderOptions::default()).unwrap();
    assert_eq!(g.shape(), [7, 1, 4, 4]);
    assert_eq!(g.class_names, ["cat", "dog"]);
    assert_eq!(g.class_counts(), [3, 4]);
    assert!((g.image(1)[0] - 40.0 / 255.0).abs() < 1e-5);
    assert_eq!(g.image(6)[0], 1.0);
    let rgb = load_image_folder(
        &dir,
        &ImageFolderOptions {
            color: ColorMode::Rgb,
            resize: Some((2, 2)),
        },
    )
    .unwrap();
    assert_eq!(rgb.shape(), [7, 3, 2, 2]);
    assert!((rgb.image(4)[11] - 140.0 / 255.0).abs() < 1e-5);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn sinusoid_tasks() {
    let cfg = SinusoidConfig {
        k_support: 5,
        q_query: 7,
        ..SinusoidConfig::default()
    };
    cfg.validate().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let tasks = cfg.sample_batch(&mut rng, 200);
    for t in &tasks {
        assert!((0.1..=5.0).contains(&t.amplitude));
        assert!((0.0..=std::f32::consts::PI).contains(&t.phase));
        assert_eq!((t.support_x.len(), t.query_x.len()), (5, 7));
        for (x, y) in t
            .support_x
            .iter()
            .zip(&t.support_y)
            .chain(t.query_x.iter().zip(&t.query_y))
        {
            assert!((-5.0..=5.0).contains(x));
            assert!((t.amplitude * (x - t.phase).sin() - y).abs() < 1e-6);
        }
    }
    let again = cfg.sample_batch(&mut ChaCha8Rng::seed_from_u64(3), 200);
    assert_eq!(tasks, again);
    let bad = SinusoidConfig {
        amplitude: (2.0, 1.0),
        ..cfg
    };
    assert!(bad.validate().is_err());
}

#[test]
fn inspect_recognises_every_format() {
    let (Some(_), Some(_)) = (common::omniglot(), common::small_image_sets()) else {
        return;
    };
    let d = data();
    // (file or folder under the data root, every part of its report)
    let shared_files: [(&str, &[&str]); 6] = [
        (
            "omniglot/images_background.npz",
            &[
                "Omniglot npz",
                "examples: 19280",
                "964",
                "sha256: 8bf84167413cd00beacdce3fe582f780ab538d8dbef043a6d688f2527bbce199",
            ],
        ),
        (
            "mnist/train-labels.idx1-ubyte",
            &["IDX", "examples: 60000", "0: 5923"],
        ),
        (
            "fashion-mnist/t10k-images-idx3-ubyte.gz",
            &["gzip IDX", "28x28", "classes: 10", "9: 1000"],
        ),
        (
            "sklearn-digits/digits.csv.gz",
            &["digits", "examples: 1797", "8x8"],
        ),
        (
            "omniglot/lake-small/images_background_small1.zip",
            &["zip of PNGs", "examples: 2720", "classes: 136", "105x105"],
        ),
        ("mnist", &["t10k-images.idx3-ubyte", "examples: 10000"]),
    ];
    for (path, parts) in shared_files {
        let r = inspect(&d.join(path)).unwrap();
        assert!(parts.iter().all(|p| r.contains(p)), "{r}");
    }

    let dir = temp_dir("inspect");
    for c in ["a", "b"] {
        std::fs::create_dir_all(dir.join(c)).unwrap();
        common::write_png(
            &dir.join(c).join("x.png"),
            3,
            2,
            png::ColorType::Grayscale,
            png::BitDepth::Eight,
            &[7; 6],
        );
    }
    let r = inspect(&dir).unwrap();
    assert!(
        r.contains("image folder")
            && r.contains("examples: 2")
            && r.contains("2x3")
            && r.contains("a: 1, b: 1"),
        "{r}"
    );
    std::fs::write(dir.join("f.csv"), "1,2,x\n3,4,y\n5,6,x\n").unwrap();
    let r = inspect(&dir.join("f.csv")).unwrap();
    assert!(r.contains("feature") && r.contains("x: 2, y: 1"), "{r}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn verify_and_unpack_local_files() {
    let (Some(_), Some(_)) = (common::omniglot(), common::small_image_sets()) else {
        return;
    };
    let d = data();
    let src = temp_dir("dl-src");
    let dest = temp_dir("dl-dest");
    // MNIST: a gzip download is unpacked to the raw IDX layout.
    let raw = std::fs::read(d.join("mnist/t10k-labels.idx1-ubyte")).unwrap();
    let gz = src.join("t10k-labels-idx1-ubyte.gz");
    std::fs::write(&gz, common::gzip(&raw)).unwrap();
    let written = verify_and_unpack("mnist", &gz, &dest).unwrap();
    assert_eq!(written, vec![dest.join("t10k-labels.idx1-ubyte")]);
    assert_eq!(std::fs::read(&written[0]).unwrap(), raw);
    // Fashion: kept compressed; another gzip of the same content is accepted too.
    let fl = d.join("fashion-mnist/train-labels-idx1-ubyte.gz");
    let w = verify_and_unpack("fashion-mnist", &fl, &dest).unwrap();
    assert_eq!(
        sha256_file(&w[0]).unwrap(),
        "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056"
    );
    let content = parse_idx(&std::fs::read(&fl).unwrap(), "x").unwrap();
    let mut plain = vec![0, 0, 8, 1, 0, 0, 0xea, 0x60];
    plain.extend_from_slice(&content.data);
    let regz = src.join("train-labels-idx1-ubyte.gz");
    std::fs::write(&regz, common::gzip(&plain)).unwrap();
    verify_and_unpack("fashion-mnist", &regz, &dest).unwrap();
    // Omniglot small zip: stored and extracted.
    let z = d.join("omniglot/lake-small/images_background_small1.zip");
    let w = verify_and_unpack("omniglot", &z, &dest).unwrap();
    assert!(w[0].ends_with("lake-small/images_background_small1.zip"));
    assert!(dest
        .join("lake-small/images_background_small1/Greek/character01")
        .is_dir());
    // A whole folder in the shared layout.
    let w = verify_and_unpack("sklearn-digits", &d.join("sklearn-digits"), &dest).unwrap();
    assert_eq!(w, vec![dest.join("digits.csv.gz")]);
    assert_eq!(load_digits(&w[0]).unwrap().n, 1797);
    // The CLI entry point with a local source.
    let root = dest.join("root");
    let report = download("mnist", &root, Some(&d)).unwrap();
    assert_eq!(report.written.len(), 4);
    assert!(report.to_string().contains("train-images.idx3-ubyte"));
    assert_eq!(load_mnist(&root.join("mnist")).unwrap().test.n, 10000);
    assert!(registry().iter().any(|r| r.name == "omniglot"));
    std::fs::remove_dir_all(&src).ok();
    std::fs::remove_dir_all(&dest).ok();
}

//! Bad inputs give typed errors whose messages name the file and the problem; parsers never
//! panic on arbitrary bytes (fuzzed with proptest).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use metalearn::data::*;
use proptest::prelude::*;

fn temp_dir(tag: &str) -> PathBuf {
    common::unique_dir("metalearn-err", tag)
}

fn zip_bytes(members: &[(&str, Vec<u8>)], deflate: bool) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let method = if deflate {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    let opts = zip::write::SimpleFileOptions::default().compression_method(method);
    for (name, data) in members {
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn small_npz(deflate: bool) -> Vec<u8> {
    let labels: Vec<u8> = (0..6i64).flat_map(|i| (i / 3).to_le_bytes()).collect();
    zip_bytes(
        &[
            (
                "images.npy",
                common::npy_bytes("|b1", "(2, 3, 4, 4)", &[1u8; 96]),
            ),
            ("labels.npy", common::npy_bytes("<i8", "(2, 3)", &labels)),
        ],
        deflate,
    )
}

fn msg<T: std::fmt::Debug>(r: Result<T>) -> String {
    r.expect_err("expected an error").to_string()
}

fn assert_mentions(m: &str, parts: &[&str]) {
    for p in parts {
        assert!(m.contains(p), "message {m:?} does not mention {p:?}");
    }
}

#[test]
fn truncated_npz() {
    let Some(_) = common::omniglot() else { return };
    let dir = temp_dir("npz");
    // Cut in the middle: the zip directory is gone.
    let real = std::fs::read(default_data_dir().join("omniglot/images_evaluation.npz")).unwrap();
    let p = dir.join("images_evaluation.npz");
    std::fs::write(&p, &real[..real.len() / 2]).unwrap();
    let m = msg(load_omniglot_npz(&p, 28));
    assert_mentions(&m, &["images_evaluation.npz", "zip archive"]);
    // A complete zip whose images.npy holds less than its header announces.
    let labels: Vec<u8> = (0..659 * 20i64)
        .flat_map(|i| (i / 20).to_le_bytes())
        .collect();
    let bytes = zip_bytes(
        &[
            (
                "images.npy",
                common::npy_bytes("|b1", "(659, 20, 105, 105)", &[1u8; 5000]),
            ),
            ("labels.npy", common::npy_bytes("<i8", "(659, 20)", &labels)),
        ],
        true,
    );
    let p2 = dir.join("short.npz");
    std::fs::write(&p2, &bytes).unwrap();
    let m = msg(load_omniglot_npz(&p2, 28));
    assert_mentions(
        &m,
        &[
            "short.npz/images.npy",
            "truncated",
            "expected 145309500 bytes",
            "found 5000",
        ],
    );
    // In memory: a truncated archive and a truncated member.
    let good = small_npz(false);
    assert!(parse_npz(&good, "ok.npz").is_ok());
    let m = msg(parse_npz(&good[..good.len() - 30], "cut.npz"));
    assert_mentions(&m, &["cut.npz", "zip"]);
    let m = msg(parse_npy(
        &common::npy_bytes("<f4", "(3, 3)", &[0; 20]),
        "a.npy",
    ));
    assert_mentions(
        &m,
        &[
            "a.npy",
            "truncated array data",
            "expected 36 bytes",
            "found 20",
        ],
    );
    let m = msg(parse_npy(
        &common::npy_bytes("<c16", "(1,)", &[0; 16]),
        "c.npy",
    ));
    assert_mentions(&m, &["c.npy", "dtype", "<c16"]);
    let m = msg(parse_npy(b"\x93NUMPX\x01\x00", "m.npy"));
    assert_mentions(&m, &["m.npy", "npy magic"]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn npz_with_wrong_labels_or_members() {
    let dir = temp_dir("npz2");
    let p = dir.join("x.npz");
    std::fs::write(
        &p,
        zip_bytes(
            &[("labels.npy", common::npy_bytes("<i8", "(2, 3)", &[0; 48]))],
            false,
        ),
    )
    .unwrap();
    assert_mentions(&msg(load_omniglot_npz(&p, 28)), &["x.npz", "labels"]);
    std::fs::write(&p, small_npz(true)).unwrap();
    // 2 characters is neither the background nor the evaluation set.
    assert_mentions(
        &msg(load_omniglot_npz(&p, 28)),
        &["x.npz/labels.npy", "964", "found 2"],
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn truncated_and_wrong_idx() {
    let Some(_) = common::small_image_sets() else {
        return;
    };
    let dir = temp_dir("idx");
    let real = std::fs::read(default_data_dir().join("mnist/t10k-labels.idx1-ubyte")).unwrap();
    let images = dir.join("t10k-images-idx3-ubyte");
    let labels = dir.join("t10k-labels-idx1-ubyte");
    std::fs::write(&images, common::idx_bytes(0x803, &[3, 2, 2], &[0; 12])).unwrap();
    truncated_idx(&real, &images, &labels);
    wrong_idx_magic(&labels);
    labels_that_do_not_fit_the_images(&images, &labels);
    // Trailing bytes, and a missing file.
    let m = msg(parse_idx(
        &common::idx_bytes(0x801, &[2], &[0, 1, 2]),
        "long",
    ));
    assert_mentions(&m, &["long", "file length", "found 11 bytes"]);
    let m = msg(load_mnist(&dir));
    assert_mentions(
        &m,
        &[
            &dir.display().to_string(),
            "train-images",
            "train-images.idx3-ubyte.gz",
        ],
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Truncated, raw and gzip (`labels` is overwritten with half of the `real` label file).
fn truncated_idx(real: &[u8], images: &Path, labels: &Path) {
    std::fs::write(labels, &real[..5000]).unwrap();
    let m = msg(load_idx_pair(images, labels, &["a"; 10]));
    assert_mentions(
        &m,
        &[
            "t10k-labels-idx1-ubyte",
            "truncated IDX data",
            "expected 10000 bytes",
            "found 4992",
        ],
    );
    let gz = common::gzip(real);
    let m = msg(parse_idx(&gz[..gz.len() / 2], "half.gz"));
    assert_mentions(&m, &["half.gz", "gzip"]);
    let m = msg(parse_idx(&[0, 0, 8], "tiny"));
    assert_mentions(
        &m,
        &[
            "tiny",
            "truncated IDX magic number",
            "expected 4 bytes",
            "found 3",
        ],
    );
}

/// Wrong magic: garbage, and a labels file where images are expected.
fn wrong_idx_magic(labels: &Path) {
    let m = msg(parse_idx(b"\x12\x34\x56\x78rest", "junk.idx"));
    assert_mentions(&m, &["junk.idx", "magic number", "found 0x12345678"]);
    std::fs::write(labels, common::idx_bytes(0x801, &[3], &[0, 1, 2])).unwrap();
    let m = msg(load_idx_pair(labels, labels, &["a"; 10]));
    assert_mentions(
        &m,
        &[
            "t10k-labels-idx1-ubyte",
            "magic number",
            "expected 0x00000803",
            "found 0x00000801",
        ],
    );
}

/// Image/label count mismatch, and a label beyond the classes.
fn labels_that_do_not_fit_the_images(images: &Path, labels: &Path) {
    std::fs::write(labels, common::idx_bytes(0x801, &[2], &[0, 1])).unwrap();
    let m = msg(load_idx_pair(images, labels, &["a"; 10]));
    assert_mentions(
        &m,
        &[
            "t10k-labels-idx1-ubyte",
            "t10k-images-idx3-ubyte",
            "count mismatch",
            "expected 3",
            "found 2",
        ],
    );

    // A label beyond the classes.
    std::fs::write(labels, common::idx_bytes(0x801, &[3], &[0, 1, 12])).unwrap();
    let m = msg(load_idx_pair(images, labels, &["a"; 10]));
    assert_mentions(
        &m,
        &[
            "t10k-labels-idx1-ubyte",
            "label of item 2",
            "below 10",
            "found 12",
        ],
    );
}

#[test]
fn image_folder_problems() {
    let dir = temp_dir("folder");
    std::fs::create_dir_all(dir.join("a")).unwrap();
    std::fs::create_dir_all(dir.join("b")).unwrap();
    let (gray, eight) = (png::ColorType::Grayscale, png::BitDepth::Eight);
    let png_bytes = common::png_bytes(2, 2, gray, eight, &[0, 64, 128, 255]);
    std::fs::write(dir.join("a/1.png"), &png_bytes).unwrap();
    let opts = ImageFolderOptions::default();
    // Empty class folder.
    let m = msg(load_image_folder(&dir, &opts));
    assert_mentions(
        &m,
        &[&dir.join("b").display().to_string(), "empty class folder"],
    );
    // A non-image file.
    std::fs::write(dir.join("b/notes.txt"), "hello").unwrap();
    let m = msg(load_image_folder(&dir, &opts));
    assert_mentions(&m, &["notes.txt", "not an image", "expected a PNG", ".txt"]);
    // A file named .png that is not one.
    std::fs::remove_file(dir.join("b/notes.txt")).unwrap();
    std::fs::write(dir.join("b/fake.png"), "GIF89a....").unwrap();
    let m = msg(load_image_folder(&dir, &opts));
    assert_mentions(&m, &["fake.png", "not an image", "no PNG signature"]);
    // A PNG cut short.
    std::fs::write(dir.join("b/fake.png"), &png_bytes[..png_bytes.len() - 20]).unwrap();
    let m = msg(load_image_folder(&dir, &opts));
    assert_mentions(&m, &["fake.png", "undecodable PNG"]);
    // Different sizes without resizing.
    let big = common::png_bytes(3, 1, gray, eight, &[1, 2, 3]);
    std::fs::write(dir.join("b/fake.png"), &big).unwrap();
    let m = msg(load_image_folder(&dir, &opts));
    assert_mentions(&m, &["fake.png", "image size", "expected 2x2", "found 1x3"]);
    assert!(load_image_folder(
        &dir,
        &ImageFolderOptions {
            resize: Some((2, 2)),
            ..opts
        }
    )
    .is_ok());
    // Not a folder of classes at all.
    let empty = temp_dir("empty");
    assert_mentions(
        &msg(load_image_folder(&empty, &opts)),
        &[&empty.display().to_string(), "class folder"],
    );
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&empty).ok();
}

#[test]
fn omniglot_png_problems() {
    let dir = temp_dir("lakepng");
    let ch = dir.join("Latin/character01");
    std::fs::create_dir_all(&ch).unwrap();
    std::fs::write(ch.join("0683_01.png"), b"not a png").unwrap();
    assert_mentions(
        &msg(load_omniglot_pngs(&[&dir], 28)),
        &["0683_01.png", "not an image"],
    );
    std::fs::remove_file(ch.join("0683_01.png")).unwrap();
    std::fs::write(ch.join("0001_01.png"), b"x").unwrap();
    assert_mentions(
        &msg(load_omniglot_pngs(&[&dir], 28)),
        &["0001_01.png", "character id", "expected 0683", "found 0001"],
    );
    let none = temp_dir("lakeempty");
    assert_mentions(
        &msg(load_omniglot_pngs(&[&none], 28)),
        &["Omniglot PNG", "not found"],
    );
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&none).ok();
}

#[test]
fn sampler_asks_too_much() {
    let d = ImageDataset::new(
        vec![0.0; 12],
        [12, 1, 1, 1],
        vec![0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2],
        vec!["cat".into(), "dog".into(), "emu".into()],
    )
    .unwrap();
    let m = msg(EpisodeSampler::new(&d, EpisodeSpec::new(4, 1, 1).unwrap()));
    assert_mentions(&m, &["not enough classes", "N-way = 4", "found 3"]);
    let m = msg(EpisodeSampler::new(&d, EpisodeSpec::new(2, 2, 1).unwrap()));
    assert_mentions(
        &m,
        &["not enough examples", "\"emu\"", "K+Q = 3", "found 2"],
    );
    assert!(EpisodeSampler::with_classes(&d, EpisodeSpec::new(2, 2, 1).unwrap(), &[0, 1]).is_ok());
    assert_mentions(&msg(EpisodeSpec::new(0, 1, 1)), &["N >= 1"]);
    assert_mentions(
        &msg(EpisodeSampler::with_classes(
            &d,
            EpisodeSpec::new(1, 1, 1).unwrap(),
            &[0, 7],
        )),
        &["class 7"],
    );
    assert_mentions(
        &msg(EpisodeSet::fixed(
            &d,
            EpisodeSpec::new(5, 1, 1).unwrap(),
            3,
            0,
        )),
        &["not enough classes"],
    );
    assert!(ClassSplit::random(10, 0.8, 0.5, 0).is_err());
    assert!(ImageDataset::new(vec![0.0; 3], [2, 1, 1, 1], vec![0, 0], vec!["a".into()]).is_err());
    assert!(ImageDataset::new(vec![0.0; 2], [2, 1, 1, 1], vec![0, 1], vec!["a".into()]).is_err());
}

#[test]
fn csv_problems() {
    let dir = temp_dir("csv");
    let p = dir.join("ragged.csv");
    std::fs::write(&p, "1,2,0\n3,4,1\n5,6\n").unwrap();
    let m = msg(load_feature_csv(&p, &CsvOptions::default()));
    assert_mentions(
        &m,
        &["ragged.csv:3", "ragged row", "expected 3 fields", "found 2"],
    );
    std::fs::write(&p, "1,2,0\n3,x,1\n").unwrap();
    let m = msg(load_feature_csv(&p, &CsvOptions::default()));
    assert_mentions(&m, &["ragged.csv:2", "column 2", "a number", "\"x\""]);
    let m = msg(load_feature_csv(
        &p,
        &CsvOptions {
            labels: LabelColumns::Names(vec!["y".into()]),
            ..CsvOptions::default()
        },
    ));
    assert_mentions(&m, &["has_header"]);
    std::fs::write(&p, "a,b\n1,2\n").unwrap();
    let opts = CsvOptions {
        labels: LabelColumns::Names(vec!["y".into()]),
        has_header: true,
        delimiter: ',',
    };
    assert_mentions(
        &msg(load_feature_csv(&p, &opts)),
        &["ragged.csv", "label column \"y\"", "not found"],
    );
    // Digits: a value out of range.
    let d = dir.join("digits.csv");
    let mut row: Vec<String> = vec!["0".into(); 64];
    row[5] = "17".into();
    row.push("3".into());
    std::fs::write(&d, row.join(",")).unwrap();
    assert_mentions(
        &msg(load_digits(&d)),
        &["digits.csv", "row 1", "pixel 5", "0..=16", "found 17"],
    );
    std::fs::write(&d, "1,2,3\n").unwrap();
    assert_mentions(
        &msg(load_digits(&d)),
        &["digits.csv", "65 (64 pixels + label)", "found 3"],
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn vinyals_split_problems() {
    let m = msg(metalearn::data::omniglot::parse_vinyals_split(
        "Latin/character01/rot000\nLatin/character02/rot045\n",
        "s.txt",
    ));
    assert_mentions(&m, &["s.txt:2", "rotDDD", "rot045"]);
    let dir = temp_dir("split");
    let p = dir.join("train.txt");
    std::fs::write(&p, "Klingon/character01/rot000\n").unwrap();
    let base = std::sync::Arc::new(
        ImageDataset::new(
            vec![0.0; 1],
            [1, 1, 1, 1],
            vec![0],
            vec!["Latin/character01".into()],
        )
        .unwrap(),
    );
    assert_mentions(
        &msg(load_vinyals_split(&base, &p)),
        &["train.txt", "Klingon/character01", "not found"],
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn checksum_and_registry_problems() {
    let Some(_) = common::small_image_sets() else {
        return;
    };
    let dir = temp_dir("sum");
    let dest = temp_dir("sumdest");
    let mut bytes = std::fs::read(default_data_dir().join("mnist/t10k-labels.idx1-ubyte")).unwrap();
    bytes[100] ^= 1;
    let p = dir.join("t10k-labels-idx1-ubyte.gz");
    std::fs::write(&p, common::gzip(&bytes)).unwrap();
    let m = msg(verify_and_unpack("mnist", &p, &dest));
    assert_mentions(
        &m,
        &[
            "t10k-labels-idx1-ubyte.gz",
            "checksum mismatch",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ],
    );
    assert!(
        !dest.join("t10k-labels.idx1-ubyte").exists(),
        "nothing unverified is written"
    );
    let z = dir.join("images_background_small1.zip");
    std::fs::write(&z, b"PK not really").unwrap();
    assert_mentions(
        &msg(verify_and_unpack("omniglot", &z, &dest)),
        &[
            "images_background_small1.zip",
            "checksum mismatch",
            "f38eb80f",
        ],
    );
    assert_mentions(
        &msg(verify_and_unpack("imagenet", &z, &dest)),
        &["unknown dataset \"imagenet\"", "omniglot", "mnist"],
    );
    assert_mentions(
        &msg(verify_and_unpack("mnist", &z, &dest)),
        &["images_background_small1.zip", "a file of dataset mnist"],
    );
    assert_mentions(
        &msg(verify_and_unpack("mnist", &dir, &dest)),
        &["train-images.idx3-ubyte", "not found"],
    );
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&dest).ok();
}

#[test]
fn inspect_problems() {
    let dir = temp_dir("insp");
    let p = dir.join("random.bin");
    std::fs::write(&p, [0xffu8, 0xfe, 0, 1, 2]).unwrap();
    assert_mentions(&msg(inspect(&p)), &["random.bin"]);
    assert_mentions(&msg(inspect(&dir.join("missing"))), &["missing"]);
    std::fs::remove_dir_all(&dir).ok();
}

// ---------------------------------------------------------------------------------------
// Fuzzing: arbitrary and mutated inputs never panic (>= 100k inputs in total).

fn valid_idx() -> Vec<u8> {
    common::idx_bytes(0x803, &[2, 3, 3], &(0..18).collect::<Vec<u8>>())
}

fn mutate(base: &[u8], edits: &[(usize, u8)], cut: usize) -> Vec<u8> {
    let mut v = base.to_vec();
    for &(pos, b) in edits {
        if !v.is_empty() {
            let n = v.len();
            v[pos % n] = b;
        }
    }
    v.truncate(cut % (base.len() + 1));
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn fuzz_idx_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..96)) {
        let _ = parse_idx(&bytes, "fuzz");
        // With a plausible header so that the size checks are reached.
        let mut v = vec![0, 0, 0x08, (bytes.first().copied().unwrap_or(1) % 4) + 1];
        v.extend_from_slice(&bytes);
        let _ = parse_idx(&v, "fuzz");
    }

    #[test]
    fn fuzz_npy_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..96)) {
        let _ = parse_npy(&bytes, "fuzz.npy");
        let mut v = b"\x93NUMPY\x01\x00".to_vec();
        v.extend_from_slice(&[(bytes.len() as u8) / 2, 0]);
        v.extend_from_slice(&bytes);
        let _ = parse_npy(&v, "fuzz.npy");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 15_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn fuzz_npz_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..160)) {
        let _ = parse_npz(&bytes, "fuzz.npz");
        let mut v = b"PK\x03\x04".to_vec();
        v.extend_from_slice(&bytes);
        v.extend_from_slice(b"PK\x05\x06\0\0\0\0\x01\0\x01\0\x30\0\0\0\0\0\0\0\0\0");
        let _ = parse_npz(&v, "fuzz.npz");
    }

    #[test]
    fn fuzz_mutated_valid_files(
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        cut in any::<usize>(),
    ) {
        let _ = parse_npz(&mutate(&small_npz(false), &edits, cut), "m.npz");
        let _ = parse_npz(&mutate(&small_npz(true), &edits, cut), "m.npz");
        let _ = parse_idx(&mutate(&valid_idx(), &edits, cut), "m.idx");
        let _ = parse_idx(&mutate(&common::gzip(&valid_idx()), &edits, cut), "m.idx.gz");
        let npy = common::npy_bytes("<i4", "(2, 2)", &[1; 16]);
        let _ = parse_npy(&mutate(&npy, &edits, cut), "m.npy");
    }
}

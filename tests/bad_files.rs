//! A corpus of bad files, generated here at run time (no committed binaries), fed to the real
//! `metalearn` binary: `data inspect` on each file (and on folders holding them) and, where the
//! CLI reads such a file, `train`, `eval` or `adapt`. Every case must exit non-zero, never
//! panic, and name the file and the problem.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Cases run so far (all tests of this file together), reported by each test.
static CASES: AtomicUsize = AtomicUsize::new(0);

fn tmp(tag: &str) -> PathBuf {
    common::fresh_dir("metalearn-bad", tag)
}

fn write(path: &Path, bytes: &[u8]) -> PathBuf {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    path.to_path_buf()
}

/// Runs `metalearn ARGS` and checks a clean failure whose stderr holds every `expect`
/// substring (the file and the problem). Returns stderr.
fn fails(args: &[&std::ffi::OsStr], expect: &[&str]) -> String {
    CASES.fetch_add(1, Ordering::SeqCst);
    let out = common::bin::metalearn().args(args).output().unwrap();
    let se = String::from_utf8_lossy(&out.stderr).into_owned();
    let cmd: Vec<String> = args.iter().map(|a| a.to_string_lossy().into()).collect();
    assert!(
        !out.status.success(),
        "`metalearn {}` exited 0\nstdout: {}\nstderr: {se}",
        cmd.join(" "),
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        !se.contains("panicked"),
        "`{}` panicked: {se}",
        cmd.join(" ")
    );
    for e in expect {
        assert!(se.contains(e), "`{}`: {e:?} not in: {se}", cmd.join(" "));
    }
    se
}

/// `metalearn data inspect PATH` fails naming `PATH`'s file name and `problem`.
fn inspect_fails(path: &Path, problem: &[&str]) -> String {
    let name = path.file_name().unwrap().to_str().unwrap().to_string();
    let mut expect = vec![name.as_str()];
    expect.extend_from_slice(problem);
    fails(
        &["data".as_ref(), "inspect".as_ref(), path.as_os_str()],
        &expect,
    )
}

fn zip(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in members {
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// Omniglot background labels: `(964, 20)` int64 with `labels[i, j] == i`.
fn omniglot_labels() -> Vec<u8> {
    let data: Vec<u8> = (0..964 * 20i64)
        .flat_map(|k| (k / 20).to_le_bytes())
        .collect();
    common::npy_bytes("<i8", "(964, 20)", &data)
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let px = vec![128u8; (w * h) as usize];
    common::png_bytes(w, h, png::ColorType::Grayscale, png::BitDepth::Eight, &px)
}

/// A PNG whose IHDR announces `w x h` (CRC fixed up), with the original tiny image data.
fn png_with_ihdr(w: u32, h: u32) -> Vec<u8> {
    let mut b = png(2, 2);
    b[16..20].copy_from_slice(&w.to_be_bytes());
    b[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32(&b[12..29]);
    b[29..33].copy_from_slice(&crc.to_be_bytes());
    b
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 == 1 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

#[test]
fn idx_files() {
    let d = tmp("idx");
    let ok = common::idx_bytes(0x0803, &[2, 2, 2], &[0; 8]);
    let truncated = write(&d.join("f/train-images-idx3-ubyte"), &ok[..ok.len() - 3]);
    inspect_fails(&truncated, &["truncated", "expected 8 bytes, found 5"]);
    // A folder holding it: the error is printed and the exit code is non-zero.
    let folder = truncated.parent().unwrap();
    inspect_fails(folder, &["train-images-idx3-ubyte", "1 of 1", "truncated"]);
    let magic = write(
        &d.join("magic-idx1-ubyte"),
        &common::idx_bytes(0x0A01, &[1], &[0]),
    );
    inspect_fails(&magic, &["magic"]);
    let huge = write(
        &d.join("huge-idx3-ubyte"),
        &common::idx_bytes(0x0803, &[u32::MAX, u32::MAX, u32::MAX], &[]),
    );
    inspect_fails(&huge, &["dimensions", "fits in memory"]);
    let big = write(
        &d.join("big-idx3-ubyte"),
        &common::idx_bytes(0x0803, &[60000, 28, 28], &[0; 16]),
    );
    inspect_fails(&big, &["truncated", "47040000"]);
    // Images with a sibling labels file that is broken or does not match.
    let imgs = write(&d.join("g/train-images-idx3-ubyte"), &ok);
    write(
        &d.join("g/train-labels-idx1-ubyte"),
        &common::idx_bytes(0x0801, &[5], &[0; 5]),
    );
    fails(
        &["data".as_ref(), "inspect".as_ref(), imgs.as_os_str()],
        &[
            "train-labels-idx1-ubyte",
            "labels array",
            "found U8, dims [5]",
        ],
    );
    write(&d.join("h/t10k-images-idx3-ubyte"), &ok);
    let lab = write(
        &d.join("h/t10k-labels-idx1-ubyte"),
        &common::idx_bytes(0x0801, &[2], &[0]),
    );
    inspect_fails(&lab, &["truncated"]);
    eprintln!("corpus cases so far: {}", CASES.load(Ordering::SeqCst));
}

#[test]
fn npy_and_npz_files() {
    let d = tmp("npy");
    let bad_header = write(
        &d.join("header.npy"),
        &common::npy_bytes("<f4", "[2, 3]", &[0; 24]),
    );
    inspect_fails(&bad_header, &["npy header", "'shape'"]);
    let huge = write(
        &d.join("huge.npy"),
        &common::npy_bytes("|b1", "(964, 20, 32000000, 32000000)", &[]),
    );
    inspect_fails(&huge, &["shape", "fits in memory"]);
    let truncated = write(
        &d.join("short.npy"),
        &common::npy_bytes("<f4", "(2, 3)", &[0; 20]),
    );
    inspect_fails(&truncated, &["truncated", "expected 24 bytes, found 20"]);
    let nan: Vec<u8> = [1.0f32, f32::NAN, 3.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let nan = write(&d.join("nan.npy"), &common::npy_bytes("<f4", "(3,)", &nan));
    inspect_fails(&nan, &["index [1]", "finite", "NaN"]);
    let inf: Vec<u8> = [1.0f64, 2.0, f64::NEG_INFINITY, 4.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let inf = write(
        &d.join("inf.npy"),
        &common::npy_bytes("<f8", "(2, 2)", &inf),
    );
    inspect_fails(&inf, &["index [1, 0]", "-inf"]);

    // npz: the crafted Omniglot header of the issue, a truncated member, a missing member,
    // a corrupt zip, an npz that is a folder (through `train`).
    let crafted = zip(&[
        ("labels.npy", omniglot_labels()),
        (
            "images.npy",
            common::npy_bytes("|b1", "(964, 20, 32000000, 32000000)", &[]),
        ),
    ]);
    let crafted = write(&d.join("crafted.npz"), &crafted);
    inspect_fails(&crafted, &["images.npy", "H, W <= 16384"]);
    let short = zip(&[
        ("labels.npy", omniglot_labels()),
        (
            "images.npy",
            common::npy_bytes("|b1", "(964, 20, 105, 105)", &[0; 1000]),
        ),
    ]);
    let short = write(&d.join("short.npz"), &short);
    inspect_fails(&short, &["images.npy", "truncated"]);
    let missing = write(
        &d.join("missing.npz"),
        &zip(&[("labels.npy", omniglot_labels())]),
    );
    inspect_fails(&missing, &["images.npy", "not found"]);
    let generic = zip(&[("x.npy", common::npy_bytes("<f4", "(4,)", &[0; 8]))]);
    let generic = write(&d.join("generic.npz"), &generic);
    inspect_fails(&generic, &["x.npy", "truncated"]);
    let mut corrupt = zip(&[("x.npy", common::npy_bytes("<f4", "(2,)", &[0; 8]))]);
    let n = corrupt.len();
    corrupt.truncate(n - 10);
    let corrupt = write(&d.join("corrupt.npz"), &corrupt);
    inspect_fails(&corrupt, &[]);
    let data = d.join("omniglot");
    std::fs::create_dir_all(data.join("images_background.npz")).unwrap();
    let cfg = write(
        &d.join("omniglot.toml"),
        omniglot_config(&data, &d.join("run")).as_bytes(),
    );
    fails(
        &["train".as_ref(), "--config".as_ref(), cfg.as_os_str()],
        &["images_background.npz", "a directory"],
    );
    eprintln!("corpus cases so far: {}", CASES.load(Ordering::SeqCst));
}

/// A 2-way 1-shot 1-query ProtoNet run config of `backbone` and `dataset` lines (TOML) on
/// `data`, writing into `out`: two iterations, with a tiny validation and evaluation.
fn run_config(backbone: &str, dataset: &str, data: &Path, out: &Path) -> String {
    format!(
        "[algorithm]\nname = \"protonet\"\n[backbone]\n{backbone}\n[data]\n{dataset}\n\
         data_dir = {:?}\nn_way = 2\nk_shot = 1\nq_query = 1\n[train]\niterations = 2\n\
         meta_batch = 1\nval_every = 1\nval_episodes = 2\nout_dir = {:?}\n[eval]\nepisodes = 2\n",
        data.display().to_string(),
        out.display().to_string()
    )
}

fn omniglot_config(data: &Path, out: &Path) -> String {
    let conv = "name = \"conv4\"\nin_channels = 1\nfilters = 4\nimage_size = 28";
    run_config(conv, "dataset = \"omniglot\"", data, out)
}

fn folder_config(data: &Path, out: &Path, image_size: usize) -> String {
    let conv = format!(
        "name = \"conv4\"\nin_channels = 1\nfilters = 4\nimage_size = {image_size}\nblocks = 1"
    );
    run_config(
        &conv,
        "dataset = \"image_folder\"\nsplit = [0.5, 0.25]",
        data,
        out,
    )
}

/// A class-per-folder PNG tree in `folder`: 4 classes of 3 images of 4x4. Returns `folder`.
fn png_class_folder(folder: &Path) -> PathBuf {
    for c in 0..4 {
        for i in 0..3 {
            write(&folder.join(format!("c{c}/{i}.png")), &png(4, 4));
        }
    }
    folder.to_path_buf()
}

/// `metalearn train` on the run config `config`, written to `d/<name>.toml`, must fail naming
/// every one of `expect`.
fn train_fails(d: &Path, name: &str, config: &str, expect: &[&str]) {
    let cfg = write(&d.join(format!("{name}.toml")), config.as_bytes());
    fails(
        &["train".as_ref(), "--config".as_ref(), cfg.as_os_str()],
        expect,
    );
}

/// [`train_fails`] on [`folder_config`] with `image_size` (run folder `d/run-<name>`).
fn train_on_folder_fails(d: &Path, name: &str, folder: &Path, image_size: usize, expect: &[&str]) {
    let out = d.join(format!("run-{name}"));
    train_fails(d, name, &folder_config(folder, &out, image_size), expect);
}

/// [`train_fails`] on [`csv_config`] over the CSV `data` (run folder `d/run-<name>`).
fn train_on_csv_fails(d: &Path, name: &str, data: &Path, expect: &[&str]) {
    let out = d.join(format!("run-{name}"));
    train_fails(d, name, &csv_config(data, &out), expect);
}

fn csv_config(data: &Path, out: &Path) -> String {
    run_config(
        "name = \"mlp\"\nsizes = [2, 8]",
        "dataset = \"csv\"",
        data,
        out,
    )
}

#[test]
fn png_files() {
    let d = tmp("png");
    let garbage = d.join("f/b/x.png");
    write(&d.join("f/a/1.png"), &png(4, 4));
    write(&d.join("f/b/1.png"), &png(4, 4));
    write(&garbage, b"garbage, not a PNG");
    inspect_fails(&d.join("f"), &["x.png", "no PNG signature"]);
    // Next to a data file, the PNG tree is still loaded and its failure counts.
    write(&d.join("f/notes.csv"), b"1,2,0\n3,4,1\n");
    inspect_fails(&d.join("f"), &["x.png", "1 of 2"]);
    let mut t = png(8, 8);
    t.truncate(t.len() - 20);
    let zip_dir = d.join("z");
    let zipped = write(
        &zip_dir.join("pngs.zip"),
        &zip(&[("a/1.png", png(4, 4)), ("b/2.png", t.clone())]),
    );
    inspect_fails(&zipped, &["b/2.png", "not an image"]);
    write(&d.join("t/a/1.png"), &png(8, 8));
    write(&d.join("t/b/1.png"), &t);
    inspect_fails(&d.join("t"), &["1.png", "undecodable"]);
    write(&d.join("zero/a/1.png"), &png_with_ihdr(0, 5));
    write(&d.join("zero/b/1.png"), &png(2, 2));
    inspect_fails(&d.join("zero"), &["1.png", "not an image"]);
    write(&d.join("huge/a/1.png"), &png_with_ihdr(1 << 20, 1 << 20));
    write(&d.join("huge/b/1.png"), &png(2, 2));
    inspect_fails(&d.join("huge"), &["1.png", "1048576x1048576"]);
    // `train` on the folder with the garbage PNG, and `image_size = 0` named by its key.
    let folder = png_class_folder(&d.join("g"));
    train_on_folder_fails(&d, "zero", &folder, 0, &["backbone.image_size", "= 0"]);
    write(&folder.join("c1/x.png"), b"garbage");
    train_on_folder_fails(&d, "g", &folder, 4, &["x.png", "not an image"]);
    eprintln!("corpus cases so far: {}", CASES.load(Ordering::SeqCst));
}

/// A small valid CSV: 16 classes of 4 rows (64 lines), 2 features, label last.
fn good_csv() -> String {
    let mut s = String::new();
    for c in 0..16 {
        for i in 0..4 {
            s.push_str(&format!("{}.0,{}.5,{c}\n", c * 3 + i, c));
        }
    }
    s
}

#[test]
fn csv_files() {
    let d = tmp("csv");
    let cases: [(&str, String, &[&str]); 8] = [
        (
            "max.csv",
            format!("{}1,2,18446744073709551615\n", good_csv()),
            &[":65", "label in column 3", "18446744073709551615"],
        ),
        (
            "huge.csv",
            format!("{}1,2,100000000\n", good_csv()),
            &[":65", "class id below 1024", "100000000"],
        ),
        (
            "nan.csv",
            format!("{}1,NaN,0\n", good_csv()),
            &[":65", "column 2", "finite", "NaN"],
        ),
        (
            "inf.csv",
            format!("inf,1,0\n{}", good_csv()),
            &[":1", "column 1", "finite", "inf"],
        ),
        (
            "neginf.csv",
            format!("{}-inf,1,0\n", good_csv()),
            &[":65", "column 1", "-inf"],
        ),
        ("header.csv", "x,y,label\n".to_string(), &["no data rows"]),
        (
            "ragged.csv",
            format!("{}1,2\n", good_csv()),
            &[":65", "ragged row", "expected 3 fields, found 2"],
        ),
        ("text.csv", "hello\n".to_string(), &["no data rows"]),
    ];
    for (name, text, problem) in &cases {
        let f = write(&d.join(name), text.as_bytes());
        inspect_fails(&f, problem);
        if *name != "text.csv" {
            let mut expect = vec![*name];
            expect.extend_from_slice(problem);
            train_on_csv_fails(&d, name, &f, &expect);
        }
    }
    // A folder holding the u64::MAX label (the panic of the issue).
    let folder = d.join("folder");
    write(&folder.join("a.csv"), good_csv().as_bytes());
    write(
        &folder.join("b.csv"),
        format!("{}1,2,18446744073709551615\n", good_csv()).as_bytes(),
    );
    inspect_fails(&folder, &["b.csv", "1 of 2", "18446744073709551615"]);
    eprintln!("corpus cases so far: {}", CASES.load(Ordering::SeqCst));
}

/// Trains a tiny CSV model and returns (root, checkpoint, support CSV, query CSV).
fn trained_checkpoint() -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    trained_checkpoint_in("ckpt")
}

/// [`trained_checkpoint`] in the temporary folder `tag`.
fn trained_checkpoint_in(tag: &str) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let d = tmp(tag);
    let data = write(&d.join("train.csv"), good_csv().as_bytes());
    let cfg = write(
        &d.join("run.toml"),
        csv_config(&data, &d.join("run")).as_bytes(),
    );
    common::bin::run_ok(&["train".as_ref(), "--config".as_ref(), cfg.as_os_str()]);
    let support = write(&d.join("support.csv"), b"0,0,a\n5,5,b\n");
    let query = write(&d.join("query.csv"), b"0.5,0\n");
    (d.clone(), d.join("run/best.safetensors"), support, query)
}

/// The checkpoint with every real value replaced by NaN.
fn nan_checkpoint(bytes: &[u8]) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let mut out = bytes.to_vec();
    for (name, t) in header.as_object().unwrap() {
        if name == "__metadata__" {
            continue;
        }
        let off = t["data_offsets"].as_array().unwrap();
        let (a, b) = (
            off[0].as_u64().unwrap() as usize,
            off[1].as_u64().unwrap() as usize,
        );
        let nan: Vec<u8> = match t["dtype"].as_str().unwrap() {
            "F32" => f32::NAN.to_le_bytes().to_vec(),
            "F64" => f64::NAN.to_le_bytes().to_vec(),
            _ => continue,
        };
        for chunk in out[8 + n + a..8 + n + b].chunks_exact_mut(nan.len()) {
            chunk.copy_from_slice(&nan);
        }
    }
    out
}

#[test]
fn safetensors_files() {
    let (d, ckpt, support, query) = trained_checkpoint();
    let bytes = std::fs::read(&ckpt).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut bad_json = bytes.clone();
    bad_json[8] = b'[';
    let mut past_end = bytes.clone();
    let header = String::from_utf8(bytes[8..8 + n].to_vec()).unwrap();
    let last = header.rfind("\"data_offsets\":[").unwrap() + "\"data_offsets\":[".len();
    let end = last + header[last..].find(']').unwrap();
    // Same width, end offset all nines: past the end of the data.
    let (a, b) = header[last..end].split_once(',').unwrap();
    let widened = format!("{a},{}", "9".repeat(b.len()));
    past_end[8 + last..8 + end].copy_from_slice(widened.as_bytes());
    let cases: [(&str, Vec<u8>, &[&str]); 5] = [
        (
            "truncated.safetensors",
            bytes[..bytes.len() / 2].to_vec(),
            &["truncated"],
        ),
        ("bad-json.safetensors", bad_json, &["JSON header"]),
        ("past-end.safetensors", past_end, &["corrupt"]),
        (
            "nan.safetensors",
            nan_checkpoint(&bytes),
            &["non-finite", "NaN", "tensor `"],
        ),
        ("tiny.safetensors", vec![1, 2, 3], &["8-byte header"]),
    ];
    for (name, data, problem) in &cases {
        let f = write(&d.join(name), data);
        let mut expect = vec![*name];
        expect.extend_from_slice(problem);
        fails(
            &["eval".as_ref(), "--checkpoint".as_ref(), f.as_os_str()],
            &expect,
        );
        fails(
            &[
                "adapt".as_ref(),
                "--checkpoint".as_ref(),
                f.as_os_str(),
                "--support".as_ref(),
                support.as_os_str(),
                "--query".as_ref(),
                query.as_os_str(),
            ],
            &expect,
        );
    }
    // A support CSV with an inf feature is rejected at load, naming the file.
    let bad_support = write(&d.join("bad-support.csv"), b"0,inf,a\n5,5,b\n");
    fails(
        &[
            "adapt".as_ref(),
            "--checkpoint".as_ref(),
            ckpt.as_os_str(),
            "--support".as_ref(),
            bad_support.as_os_str(),
            "--query".as_ref(),
            query.as_os_str(),
        ],
        &["bad-support.csv", "finite"],
    );
    eprintln!("corpus cases so far: {}", CASES.load(Ordering::SeqCst));
}

// One test per defect named in issue 14, each failing on the code before the fix.

/// A CSV label of u64::MAX panicked in `data inspect` (file and folder).
#[test]
fn defect_csv_u64_max_label_panicked() {
    let d = tmp("d-max");
    let f = write(
        &d.join("x/max.csv"),
        format!("{}1,2,18446744073709551615\n", good_csv()).as_bytes(),
    );
    inspect_fails(&f, &["max.csv:65", "18446744073709551615"]);
    inspect_fails(f.parent().unwrap(), &["max.csv:65", "1 of 1"]);
}

/// A CSV label of 100000000 made 100 million classes (3 GB); `train` named no file.
#[test]
fn defect_csv_huge_label_allocated() {
    let d = tmp("d-huge");
    let f = write(
        &d.join("huge.csv"),
        format!("{}1,2,100000000\n", good_csv()).as_bytes(),
    );
    inspect_fails(&f, &["huge.csv:65", "class id below 1024"]);
    train_on_csv_fails(&d, "c", &f, &["huge.csv:65", "100000000"]);
}

/// An Omniglot npz whose images header says (964, 20, 32000000, 32000000) aborted `train`
/// allocating 5e17 bytes, and `data inspect` accepted it.
#[test]
fn defect_npz_huge_shape_aborted() {
    let d = tmp("d-npz");
    let crafted = zip(&[
        ("labels.npy", omniglot_labels()),
        (
            "images.npy",
            common::npy_bytes("|b1", "(964, 20, 32000000, 32000000)", &[]),
        ),
    ]);
    let data = d.join("omniglot");
    let f = write(&data.join("images_background.npz"), &crafted);
    write(&data.join("images_evaluation.npz"), &crafted);
    inspect_fails(&f, &["images.npy", "H, W <= 16384"]);
    let cfg = write(
        &d.join("o.toml"),
        omniglot_config(&data, &d.join("run")).as_bytes(),
    );
    fails(
        &["train".as_ref(), "--config".as_ref(), cfg.as_os_str()],
        &["images.npy", "32000000"],
    );
}

/// `data inspect` on a folder with a truncated IDX file printed the error and exited 0.
#[test]
fn defect_inspect_folder_exit_code() {
    let d = tmp("d-idx");
    let ok = common::idx_bytes(0x0803, &[2, 2, 2], &[0; 8]);
    write(&d.join("train-images-idx3-ubyte"), &ok[..10]);
    inspect_fails(&d, &["train-images-idx3-ubyte", "truncated"]);
}

/// `data inspect` passed a truncated `.npy` and an npz member cut short.
#[test]
fn defect_inspect_truncated_npy_passed() {
    let d = tmp("d-npy");
    let f = write(
        &d.join("short.npy"),
        &common::npy_bytes("<f4", "(2, 3)", &[0; 20]),
    );
    inspect_fails(&f, &["short.npy", "truncated"]);
    let z = write(
        &d.join("short.npz"),
        &zip(&[("x.npy", common::npy_bytes("<f4", "(4,)", &[0; 8]))]),
    );
    inspect_fails(&z, &["short.npz/x.npy", "truncated"]);
}

/// `data inspect` passed a class folder with a garbage `x.png` next to a data file.
#[test]
fn defect_inspect_garbage_png_passed() {
    let d = tmp("d-png");
    write(&d.join("a/1.png"), &png(4, 4));
    write(&d.join("b/1.png"), &png(4, 4));
    write(&d.join("b/x.png"), b"garbage");
    write(&d.join("labels.csv"), b"1,2,0\n3,4,1\n");
    inspect_fails(&d, &["x.png", "not an image"]);
}

/// An npz that is a directory gave "Invalid argument (os error 22)".
#[test]
fn defect_npz_directory_vague() {
    let d = tmp("d-npzdir");
    let data = d.join("omniglot");
    std::fs::create_dir_all(data.join("images_background.npz")).unwrap();
    std::fs::create_dir_all(data.join("images_evaluation.npz")).unwrap();
    let cfg = write(
        &d.join("o.toml"),
        omniglot_config(&data, &d.join("run")).as_bytes(),
    );
    fails(
        &["train".as_ref(), "--config".as_ref(), cfg.as_os_str()],
        &[
            "images_background.npz",
            "expected an npz (zip) file, found a directory",
        ],
    );
}

/// NaN and inf features in a CSV trained (inf later blamed on the learning rate).
#[test]
fn defect_csv_non_finite_trained() {
    let d = tmp("d-inf");
    for (name, row) in [("nan.csv", "NaN,1,0"), ("inf.csv", "1,inf,0")] {
        let f = write(&d.join(name), format!("{}{row}\n", good_csv()).as_bytes());
        train_on_csv_fails(&d, name, &f, &[&format!("{name}:65"), "finite"]);
    }
}

/// A header-only CSV gave "train split (0 classes)".
#[test]
fn defect_header_only_csv_vague() {
    let d = tmp("d-header");
    let f = write(&d.join("header.csv"), b"x,y,label\n");
    train_on_csv_fails(&d, "c", &f, &["header.csv", "no data rows"]);
}

/// `image_size = 0` gave "cannot resize 105x105 to 0x0" (no key named).
#[test]
fn defect_image_size_zero_vague() {
    let d = tmp("d-size");
    let folder = png_class_folder(&d.join("g"));
    train_on_folder_fails(
        &d,
        "z",
        &folder,
        0,
        &["backbone.image_size", "out of range"],
    );
}

/// A checkpoint full of NaN evaluated to "20.00% ± 0.00%".
#[test]
fn defect_checkpoint_nan_accepted() {
    let (d, ckpt, _, _) = trained_checkpoint_in("d-nan");
    let f = write(
        &d.join("nan.safetensors"),
        &nan_checkpoint(&std::fs::read(ckpt).unwrap()),
    );
    fails(
        &["eval".as_ref(), "--checkpoint".as_ref(), f.as_os_str()],
        &["nan.safetensors", "non-finite", "tensor `"],
    );
}

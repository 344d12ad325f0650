//! What the tests share: finding the datasets and reference vectors that live outside the
//! repository (a test that needs one that is absent says which and how to get it, and passes
//! on a user's clone without the data; under `CI=true` a missing one is a failure), scratch
//! folders, the small files and run configs several tests build, and (with the `cli` feature)
//! running the `metalearn` binary.

#![allow(dead_code)]

#[cfg(feature = "cli")]
pub mod bin;

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Skips (returns `None` after a note) or, under `CI=true`, fails on a missing `what`.
fn missing(what: &str, at: &Path, how: &str) -> Option<PathBuf> {
    let msg = format!("{what} not found at {} ({how})", at.display());
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
    eprintln!("skipped: {msg}");
    None
}

/// `$METALEARN_DATA/<name>` (default `../shared/data/<name>`) when every one of `files` is in
/// it, e.g. `dataset("omniglot", &["images_background.npz"])`.
pub fn dataset(name: &str, files: &[&str]) -> Option<PathBuf> {
    let dir = metalearn::data::default_data_dir().join(name);
    if dir.is_dir() && files.iter().all(|f| dir.join(f).exists()) {
        return Some(dir);
    }
    let how = format!("set METALEARN_DATA or run `metalearn data download {name}`");
    missing(&format!("dataset {name}"), &dir, &how)
}

/// Omniglot's npz pair and Vinyals splits.
pub fn omniglot() -> Option<PathBuf> {
    dataset(
        "omniglot",
        &[
            "images_background.npz",
            "images_evaluation.npz",
            "splits/vinyals/test.txt",
        ],
    )
}

/// MNIST, Fashion-MNIST and sklearn digits (the IDX and CSV loaders' files).
pub fn small_image_sets() -> Option<PathBuf> {
    dataset("mnist", &[])?;
    dataset("fashion-mnist", &[])?;
    dataset("sklearn-digits", &[])
}

/// The full reference folder (`$METALEARN_REFERENCE`, default `../shared/reference`) when it
/// holds `case`.safetensors.
pub fn reference_case(case: &str) -> Option<PathBuf> {
    let dir = match std::env::var_os("METALEARN_REFERENCE") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/reference"),
    };
    let file = dir.join(format!("{case}.safetensors"));
    if file.is_file() {
        return Some(file);
    }
    missing(
        &format!("reference case {case}"),
        &file,
        "set METALEARN_REFERENCE",
    )
}

/// A two-task multi-task config on MNIST (a `digit` head and a 3-class `mod3` head) with a
/// small flatten-linear-relu trunk; tests append tables such as `[weighting]` or `[train]`.
pub const MTL_BASE: &str = r#"
[data]
dataset = "mnist"
path = "/nonexistent/mnist"
[model]
trunk = [{ type = "flatten" }, { type = "linear", out = 8 }, { type = "relu" }]
[[tasks]]
name = "digit"
kind = "multiclass"
label = "class"
[[tasks]]
name = "mod3"
kind = "multiclass"
label = "class_mod3"
classes = 3
"#;

/// The `[algorithm]` and `[backbone]` tables of the small ProtoNet the Omniglot run tests
/// train: Conv-4 with 8 filters on 28x28 images (4 blocks).
pub const SMALL_CONV4_PROTONET: &str = r#"
[algorithm]
name = "protonet"
[backbone]
name = "conv4"
in_channels = 1
filters = 8
image_size = 28
blocks = 4
"#;

/// A tiny sinusoid MAML run config (12 iterations, validation every 3, checkpoints every 4),
/// ending inside `[train]` so a test can append `out_dir` and other train keys.
pub const SINUSOID: &str = r#"
[algorithm]
name = "maml"
inner_lr = 0.01
eval_inner_steps = 3

[backbone]
name = "mlp"
sizes = [1, 16]

[data]
dataset = "sinusoid"
k_shot = 5
q_query = 5

[eval]
episodes = 20

[train]
iterations = 12
meta_batch = 3
meta_lr = 0.01
seed = 5
val_every = 3
val_episodes = 4
checkpoint_every = 4
"#;

/// An IDX file: the big-endian `magic`, then each dimension as a big-endian `u32`, then `data`.
pub fn idx_bytes(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

/// A version-1.0 `.npy` file: magic, header length, the header dict padded to 64 bytes, `data`.
pub fn npy_bytes(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(' ');
    }
    h.push('\n');
    let mut v = b"\x93NUMPY\x01\x00".to_vec();
    v.extend_from_slice(&(h.len() as u16).to_le_bytes());
    v.extend_from_slice(h.as_bytes());
    v.extend_from_slice(data);
    v
}

/// A fresh empty folder `<temp>/<prefix>-<pid>-<name>` (an older one of that name is removed
/// first).
pub fn fresh_dir(prefix: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("{prefix}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A new folder `<temp>/<prefix>-<tag>-<pid>-<counter>-<nanos>`, distinct on every call (for
/// property tests that make many).
pub fn unique_dir(prefix: &str, tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let p = std::env::temp_dir().join(format!(
        "{prefix}-{tag}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// `bytes` gzip-compressed (one member).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Writes a CSV of 8 well-separated classes, 5 rows each: features `(c / 2, v / 10, -c)` with
/// `v = (7c + 3i) mod 11`, label `c` last.
pub fn write_class_csv(path: &Path) {
    let mut text = String::new();
    for c in 0..8 {
        for i in 0..5 {
            let v = (c * 7 + i * 3) % 11;
            text.push_str(&format!(
                "{},{},{},{}\n",
                c as f32 * 0.5,
                (v as f32) * 0.1,
                -(c as f32),
                c
            ));
        }
    }
    std::fs::write(path, text).unwrap();
}

/// A ProtoNet run config on the CSV `csv` of [`write_class_csv`] (MLP 3-8, 2-way 1-shot
/// 2-query, split 50/25/25, 20 test episodes) whose `[train]` table holds `train` (which may
/// be followed by more train keys).
pub fn csv_protonet_config(csv: &Path, train: &str) -> String {
    format!(
        r#"
[algorithm]
name = "protonet"
[backbone]
name = "mlp"
sizes = [3, 8]
[data]
dataset = "csv"
data_dir = {:?}
n_way = 2
k_shot = 1
q_query = 2
split = [0.5, 0.25]
[eval]
episodes = 20
[train]
{train}
"#,
        csv.display().to_string()
    )
}

/// A function of a list of tensors, as the gradient checks take it.
pub type TensorFn<'a> = &'a dyn Fn(&[metalearn::Tensor<f64>]) -> metalearn::Tensor<f64>;

/// The first- and second-order gradient checks
/// ([`metalearn::autodiff::check::assert_gradients`]) of every `(name, f)` in `cases`, each a
/// function of the inputs `xs`.
pub fn check_each_on(xs: &[metalearn::Tensor<f64>], cases: &[(&str, TensorFn)]) {
    for (name, f) in cases {
        metalearn::autodiff::check::assert_gradients(name, *f, xs);
    }
}

/// [`check_each_on`] the single input `x`.
pub fn check_each(x: &metalearn::Tensor<f64>, cases: &[(&str, TensorFn)]) {
    check_each_on(std::slice::from_ref(x), cases);
}

/// A PNG file in memory: `width x height` pixels of `color` at `depth` bits per sample, the
/// rows packed in `data`.
pub fn png_bytes(
    width: u32,
    height: u32,
    color: png::ColorType,
    depth: png::BitDepth,
    data: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(color);
    enc.set_depth(depth);
    enc.write_header().unwrap().write_image_data(data).unwrap();
    out
}

/// Writes [`png_bytes`] to `path`, creating its folder.
pub fn write_png(
    path: &Path,
    width: u32,
    height: u32,
    color: png::ColorType,
    depth: png::BitDepth,
    data: &[u8],
) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, png_bytes(width, height, color, depth, data)).unwrap();
}

/// The parameters of a checkpoint as `(name, values)` pairs, in the file's order.
pub fn checkpoint_params(path: &Path) -> Vec<(String, Vec<f32>)> {
    let ck = metalearn::nn::checkpoint::load::<f32>(path).unwrap();
    ck.params
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_vec()))
        .collect()
}

/// A small transfer experiment's TOML (MNIST -> Fashion-MNIST, an MLP of 32, 2 seeds x 2
/// budgets, short source and target training) writing to `out`.
pub fn tiny_transfer_config(out: &Path) -> String {
    format!(
        r#"name = "tiny"
seeds = [0, 1]
budgets = [10, 30]
out_dir = {:?}
[model]
arch = "mlp"
hidden = [32]
[source]
dataset = "mnist"
train_limit = 600
epochs = 1
batch_size = 32
[target]
dataset = "fashion-mnist"
test_limit = 200
val_size = 50
steps = 20
batch_size = 10
freeze_steps = 5
"#,
        out.display().to_string()
    )
}

/// The error of an Omniglot run config with these `[algorithm]` and `[backbone]` sections
/// (TOML lines, `name = ...` included); panics when the config is accepted.
pub fn omniglot_config_error(algorithm: &str, backbone: &str) -> String {
    let text = format!(
        "[algorithm]\n{algorithm}\n\n[backbone]\n{backbone}\n\n[data]\ndataset = \"omniglot\"\n"
    );
    match metalearn::fewshot::RunConfig::from_toml_str(&text, Path::new("bad.toml")) {
        Ok(_) => panic!("accepted: {algorithm} on {backbone}"),
        Err(e) => e.to_string(),
    }
}

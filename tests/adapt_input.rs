//! `adapt` reads images the way the checkpoint was trained (issue 14, item 1): a ProtoNet
//! trained on the Omniglot npz (ink = 1.0) adapted on Lake-format PNGs (black ink on white,
//! 105x105, 1-bit) of real Omniglot drawings sees exactly the pixels `eval` sees, and an
//! independent re-implementation of the documented preprocessing and of the Conv-4 ProtoNet
//! forward pass (plain f64 loops over the safetensors weights) reproduces its predictions.
//!
//! Needs the Omniglot npz pair in `$METALEARN_DATA/omniglot` (get it with `metalearn data
//! download omniglot`); without it the tests say so and pass, except under `CI=true`, where a
//! missing dataset is a failure.

mod common;

use metalearn::data::omniglot::load_omniglot_npz;
use metalearn::data::{load_image_folder, load_png_as, ColorMode, ImageFolderOptions};
use metalearn::fewshot::{adapt, load_learner, InputPipeline};
use metalearn::tensor::Tensor;
use std::path::{Path, PathBuf};

const WAYS: usize = 5;
const QUERIES: usize = 3;
const SIDE: usize = 105;

fn tmp(name: &str) -> PathBuf {
    common::fresh_dir("metalearn-adapt-input", name)
}

/// Writes a 1-bit grayscale PNG as Lake's files are: `ink[i] = 1.0` is black (bit 0), the
/// rest white (bit 1).
fn write_lake_png(path: &Path, ink: &[f32]) {
    let row_bytes = SIDE.div_ceil(8);
    let mut packed = vec![0u8; row_bytes * SIDE];
    for (i, &v) in ink.iter().enumerate() {
        let (r, c) = (i / SIDE, i % SIDE);
        if v < 0.5 {
            packed[r * row_bytes + c / 8] |= 0x80 >> (c % 8);
        }
    }
    let side = SIDE as u32;
    let (gray, one_bit) = (png::ColorType::Grayscale, png::BitDepth::One);
    common::write_png(path, side, side, gray, one_bit, &packed);
}

/// The first `WAYS` evaluation characters: drawing 0 as support (`support/<class>/0.png`),
/// drawings 1..=QUERIES as queries (`query/<class>_<d>.png`); returns the example indices in
/// the npz dataset, support first (class order), then queries (file-name order).
fn write_episode(dir: &Path, raw: &metalearn::data::ImageDataset) -> Vec<usize> {
    let mut support = Vec::new();
    let mut queries = Vec::new();
    for c in 0..WAYS {
        let idx: Vec<usize> = (0..raw.n).filter(|&i| raw.labels[i] == c).collect();
        let name = format!("c{c}");
        write_lake_png(
            &dir.join("support").join(&name).join("0.png"),
            raw.image(idx[0]),
        );
        support.push(idx[0]);
        for (d, &i) in idx[1..=QUERIES].iter().enumerate() {
            write_lake_png(
                &dir.join("query").join(format!("{name}_{d}.png")),
                raw.image(i),
            );
            queries.push(i);
        }
    }
    support.extend(queries);
    support
}

/// Trains a small ProtoNet on the Omniglot npz for a few episodes with the real binary.
fn train_checkpoint(dir: &Path, data: &Path) -> PathBuf {
    let config = format!(
        r#"
{head}[data]
dataset = "omniglot"
data_dir = {data:?}
n_way = 5
k_shot = 1
q_query = 3
[train]
iterations = 6
meta_batch = 1
meta_lr = 0.01
val_every = 3
val_episodes = 2
checkpoint_every = 3
out_dir = {out:?}
[eval]
episodes = 4
"#,
        head = common::SMALL_CONV4_PROTONET,
        out = dir.join("run")
    );
    let cfg = dir.join("run.toml");
    std::fs::write(&cfg, config).unwrap();
    common::bin::run_ok(&[
        "--threads".as_ref(),
        "1".as_ref(),
        "train".as_ref(),
        "--config".as_ref(),
        cfg.as_os_str(),
    ]);
    dir.join("run").join("last.safetensors")
}

/// The start of the end-to-end tests (`None`, skipping, without Omniglot): an episode of
/// Omniglot's evaluation images at [`SIDE`] written as Lake PNGs into the fresh folder
/// `tmp(name)`, and a ProtoNet trained there: `(folder, evaluation npz, episode order,
/// checkpoint)`.
fn episode_and_checkpoint(name: &str) -> Option<(PathBuf, PathBuf, Vec<usize>, PathBuf)> {
    let data = common::omniglot()?;
    let dir = tmp(name);
    let npz = data.join("images_evaluation.npz");
    let raw = load_omniglot_npz(&npz, SIDE).unwrap().images;
    let order = write_episode(&dir, &raw);
    let ck = train_checkpoint(&dir, &data);
    Some((dir, npz, order, ck))
}

#[test]
fn an_omniglot_model_reads_lake_pngs_exactly_as_its_npz_training_images() {
    let Some((dir, npz, order, ck)) = episode_and_checkpoint("npz-vs-png") else {
        return;
    };
    let seen = load_omniglot_npz(&npz, 28).unwrap().images;

    let run = load_learner(&ck, None).unwrap();
    let ink = Some(InputPipeline::Images {
        color: ColorMode::Ink,
        size: 28,
    });
    assert_eq!(run.input, ink, "the checkpoint records its input pipeline");

    // Pixels: every PNG read through the pipeline equals the npz image bit for bit, through
    // the query reader and the folder reader (what `eval` on an image folder uses).
    let pixels = |i: usize| seen.image(i).to_vec();
    let q = load_png_as(&dir.join("query/c0_0.png"), ColorMode::Ink, Some((28, 28))).unwrap();
    assert_eq!(q.2, pixels(order[WAYS]));
    let opts = ImageFolderOptions {
        color: ColorMode::Ink,
        resize: Some((28, 28)),
    };
    let folder = load_image_folder(&dir.join("support"), &opts).unwrap();
    for (c, &i) in order.iter().take(WAYS).enumerate() {
        assert_eq!(
            folder.image(c),
            &pixels(i)[..],
            "support image of class {c}"
        );
    }

    // Predictions: `adapt` on the PNGs equals the learner on the npz images.
    let result = adapt(&ck, &dir.join("support"), &dir.join("query")).unwrap();
    let x: Vec<f32> = order.iter().flat_map(|&i| pixels(i)).collect();
    let all = Tensor::from_vec(x, &[WAYS * (1 + QUERIES), 1, 28, 28]);
    let sx = all.narrow(0, 0, WAYS);
    let qx = all.narrow(0, WAYS, WAYS * QUERIES);
    let sy: Vec<usize> = (0..WAYS).collect();
    let scores = run
        .learner
        .predict(&sx, &metalearn::algorithms::Target::Classes(sy), &qx);
    let scores = scores.to_vec();
    for (k, p) in result.predictions.iter().enumerate() {
        let row = &scores[k * WAYS..(k + 1) * WAYS];
        let best = (0..WAYS).fold(0, |b, j| if row[j] > row[b] { j } else { b });
        assert_eq!(p.prediction, format!("c{best}"), "query {}", p.query);
    }
}

/// Exact-area box resize of one plane, written from the definition in f64: each output pixel
/// is the integral of the source over its footprint divided by the footprint's area.
fn box_resize(src: &[f64], n: usize, m: usize) -> Vec<f64> {
    let scale = n as f64 / m as f64;
    let overlap = |o: usize, i: usize| {
        let (lo, hi) = (o as f64 * scale, (o + 1) as f64 * scale);
        (hi.min(i as f64 + 1.0) - lo.max(i as f64)).max(0.0)
    };
    let mut out = vec![0.0; m * m];
    for (k, v) in out.iter_mut().enumerate() {
        let (or, oc) = (k / m, k % m);
        for r in 0..n {
            let wr = overlap(or, r);
            if wr == 0.0 {
                continue;
            }
            for c in 0..n {
                *v += wr * overlap(oc, c) * src[r * n + c];
            }
        }
        *v /= scale * scale;
    }
    out
}

/// Decodes one of the 1-bit PNGs written above by hand (no filtering surprises: `png` gives
/// the raw packed rows) and applies the documented pipeline: ink = 1 - luma, box resize to 28.
fn read_as_documented(path: &Path) -> Vec<f64> {
    let dec = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(
        (info.bit_depth, info.color_type),
        (png::BitDepth::One, png::ColorType::Grayscale)
    );
    let luma: Vec<f64> = (0..SIDE * SIDE)
        .map(|i| {
            let (r, c) = (i / SIDE, i % SIDE);
            f64::from((buf[r * info.line_size + c / 8] >> (7 - c % 8)) & 1)
        })
        .collect();
    let ink: Vec<f64> = luma.iter().map(|l| 1.0 - l).collect();
    box_resize(&ink, SIDE, 28)
}

/// A read-only view of the checkpoint's f32 tensors.
struct Weights(safetensors::SafeTensors<'static>);

impl Weights {
    fn get(&self, name: &str) -> Vec<f64> {
        let t = self.0.tensor(&format!("param/{name}")).unwrap();
        assert_eq!(t.dtype(), safetensors::Dtype::F32, "{name}");
        t.data()
            .chunks_exact(4)
            .map(|b| f64::from(f32::from_le_bytes(b.try_into().unwrap())))
            .collect()
    }
}

/// conv 3x3 pad 1 (+ bias) -> batch norm with the batch's statistics (biased variance,
/// eps 1e-5) -> ReLU -> max-pool 2 (floor), over `[n, cin, s, s]` images.
fn block(x: &[f64], n: usize, cin: usize, s: usize, w: &Weights, b: usize) -> Vec<f64> {
    let (cw, cb) = (
        w.get(&format!("b{b}.conv.weight")),
        w.get(&format!("b{b}.conv.bias")),
    );
    let (g, beta) = (
        w.get(&format!("b{b}.bn.weight")),
        w.get(&format!("b{b}.bn.bias")),
    );
    let cout = cb.len();
    let mut y = vec![0.0; n * cout * s * s];
    for i in 0..n {
        for o in 0..cout {
            for r in 0..s {
                for c in 0..s {
                    let mut acc = cb[o];
                    for ci in 0..cin {
                        for (kr, kc) in (0..9).map(|k| (k / 3, k % 3)) {
                            let (rr, cc) = (r + kr, c + kc);
                            if rr >= 1 && cc >= 1 && rr <= s && cc <= s {
                                let xv = x[((i * cin + ci) * s + rr - 1) * s + cc - 1];
                                acc += cw[((o * cin + ci) * 3 + kr) * 3 + kc] * xv;
                            }
                        }
                    }
                    y[((i * cout + o) * s + r) * s + c] = acc;
                }
            }
        }
    }
    let t = s / 2;
    let mut out = vec![0.0; n * cout * t * t];
    for o in 0..cout {
        let vals: Vec<f64> = (0..n)
            .flat_map(|i| y[(i * cout + o) * s * s..][..s * s].to_vec())
            .collect();
        let mean = vals.iter().sum::<f64>() / vals.len() as f64;
        let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vals.len() as f64;
        let norm = |v: f64| (g[o] * (v - mean) / (var + 1e-5).sqrt() + beta[o]).max(0.0);
        for i in 0..n {
            let plane = &y[(i * cout + o) * s * s..][..s * s];
            for (k, v) in out[(i * cout + o) * t * t..][..t * t]
                .iter_mut()
                .enumerate()
            {
                let (r, c) = (2 * (k / t), 2 * (k % t));
                let m = [
                    plane[r * s + c],
                    plane[r * s + c + 1],
                    plane[(r + 1) * s + c],
                    plane[(r + 1) * s + c + 1],
                ];
                *v = m.into_iter().map(norm).fold(f64::MIN, f64::max);
            }
        }
    }
    out
}

#[test]
fn an_independent_conv4_protonet_reproduces_adapt_on_lake_pngs() {
    let Some((dir, _, _, ck)) = episode_and_checkpoint("independent") else {
        return;
    };
    let result = adapt(&ck, &dir.join("support"), &dir.join("query")).unwrap();

    // Support (class folders in name order) then queries (file-name order), as adapt lists them.
    let mut files: Vec<PathBuf> = (0..WAYS)
        .map(|c| dir.join(format!("support/c{c}/0.png")))
        .collect();
    files.extend(
        result
            .predictions
            .iter()
            .map(|p| dir.join("query").join(&p.query)),
    );
    let mut x: Vec<f64> = files.iter().flat_map(|f| read_as_documented(f)).collect();
    let bytes: &'static [u8] = Box::leak(std::fs::read(&ck).unwrap().into_boxed_slice());
    let w = Weights(safetensors::SafeTensors::deserialize(bytes).unwrap());
    let (n, mut cin, mut s) = (files.len(), 1, 28);
    for b in 0..4 {
        x = block(&x, n, cin, s, &w, b);
        cin = 8;
        s /= 2;
    }
    let d = cin * s * s;
    let z: Vec<&[f64]> = x.chunks_exact(d).collect();
    for (k, p) in result.predictions.iter().enumerate() {
        let q = z[WAYS + k];
        let scores: Vec<f64> = (0..WAYS)
            .map(|c| {
                -z[c]
                    .iter()
                    .zip(q)
                    .map(|(a, b)| (a - b).powi(2))
                    .sum::<f64>()
            })
            .collect();
        let m = scores.iter().cloned().fold(f64::MIN, f64::max);
        let e: Vec<f64> = scores.iter().map(|v| (v - m).exp()).collect();
        let total: f64 = e.iter().sum();
        let best = (0..WAYS).fold(0, |b, j| if scores[j] > scores[b] { j } else { b });
        assert_eq!(p.prediction, format!("c{best}"), "query {}", p.query);
        for (c, (&ours, e)) in p.probabilities.iter().zip(&e).enumerate() {
            assert!(
                (ours - e / total).abs() < 1e-4,
                "query {} class {c}: {ours} vs {}",
                p.query,
                e / total
            );
        }
    }
}

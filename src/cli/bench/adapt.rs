//! W6, edge adaptation: a cold `metalearn adapt` process on a ProtoNet checkpoint and PNG
//! folders that [`write_w6_files`] writes.

use super::{time_iterations, BenchResult};
use crate::run::usage::children_peak_rss_mib;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The RunConfig TOML of W6's checkpoint: ProtoNet, Conv-4 64 on 1x28x28, 20-way 1-shot.
const W6_CONFIG: &str = r#"
[algorithm]
name = "protonet"
[backbone]
name = "conv4"
in_channels = 1
filters = 64
image_size = 28
blocks = 4
[data]
dataset = "omniglot"
n_way = 20
k_shot = 1
q_query = 1
[train]
iterations = 1
meta_batch = 1
meta_lr = 0.001
"#;

/// A 105x105 grayscale PNG of black strokes on white (Lake's Omniglot format): `strokes`
/// random axis-parallel bars 4 pixels wide.
fn write_stroke_png(
    path: &std::path::Path,
    strokes: usize,
    rng: &mut ChaCha8Rng,
) -> std::io::Result<()> {
    use rand::Rng;
    const SIDE: usize = 105;
    let mut pixels = vec![255u8; SIDE * SIDE];
    for _ in 0..strokes {
        let (x0, y0) = (rng.gen_range(10..80), rng.gen_range(10..80));
        let len = rng.gen_range(10..25);
        let horizontal = rng.gen_bool(0.5);
        for t in 0..len {
            for wdt in 0..4 {
                let (x, y) = if horizontal {
                    (x0 + t, y0 + wdt)
                } else {
                    (x0 + wdt, y0 + t)
                };
                pixels[y * SIDE + x] = 0;
            }
        }
    }
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut enc = png::Encoder::new(file, SIDE as u32, SIDE as u32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()?.write_image_data(&pixels)?;
    Ok(())
}

/// W6's files in `dir`: `protonet.safetensors` (a fresh ProtoNet 20-way 1-shot learner saved
/// as `metalearn train` saves it), `support/<class>/0.png` for 20 classes and `query/<i>.png`
/// for 20 queries (each a noisy redraw of a support class's strokes).
pub fn write_w6_files(dir: &std::path::Path) -> anyhow::Result<()> {
    use crate::fewshot::config::RunConfig;
    let cfg = RunConfig::from_toml_str(W6_CONFIG, std::path::Path::new("W6 config"))?;
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let learner =
        crate::algorithms::build_learner(&cfg.algorithm, &cfg.backbone, 20, 1e-3, &mut rng)?;
    std::fs::create_dir_all(dir.join("query"))?;
    crate::fewshot::r#loop::save_checkpoint(
        &dir.join("protonet.safetensors"),
        learner.as_ref(),
        &cfg,
        0,
        &[],
    )?;
    for class in 0..20u64 {
        let folder = dir.join("support").join(format!("class{class:02}"));
        std::fs::create_dir_all(&folder)?;
        write_stroke_png(
            &folder.join("0.png"),
            4,
            &mut ChaCha8Rng::seed_from_u64(100 + class),
        )?;
        write_stroke_png(
            &dir.join("query").join(format!("q{class:02}.png")),
            4,
            &mut ChaCha8Rng::seed_from_u64(100 + class),
        )?;
    }
    Ok(())
}

/// W6: edge adaptation: a cold `metalearn --threads 1 adapt` process (exec to predictions
/// written and exit) on a Conv-4 ProtoNet checkpoint, 20-way 1-shot, 20 query PNGs of 105x105;
/// median and p90 over `iters` runs after `warmup` (page cache warm). `exe` is the
/// `metalearn` binary.
pub fn bench_w6(exe: &std::path::Path, warmup: usize, iters: usize) -> anyhow::Result<BenchResult> {
    let dir = std::env::temp_dir().join(format!("metalearn-w6-{}", std::process::id()));
    write_w6_files(&dir)?;
    let out = dir.join("predictions.csv");
    let mut failure = None;
    let mut result = time_iterations("W6_edge_adapt", warmup, iters, |_| {
        let status = std::process::Command::new(exe)
            .args(["--threads", "1", "adapt", "--checkpoint"])
            .arg(dir.join("protonet.safetensors"))
            .arg("--support")
            .arg(dir.join("support"))
            .arg("--query")
            .arg(dir.join("query"))
            .arg("--output")
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            failure = Some(format!("{status:?}"));
        }
    });
    let predicted = std::fs::read_to_string(&out)
        .map(|s| s.lines().count())
        .unwrap_or(0);
    let _ = std::fs::remove_dir_all(&dir);
    if let Some(f) = failure {
        anyhow::bail!("W6: `{} adapt` failed: {f}", exe.display());
    }
    anyhow::ensure!(
        predicted == 21,
        "W6: expected 20 predictions and a header, found {predicted} lines"
    );
    result.threads = 1;
    result.peak_rss_mib = children_peak_rss_mib();
    Ok(result)
}

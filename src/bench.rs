//! `metalearn bench`: the workloads of `shared/bench/peers` (W1, W2) timed the same way as the
//! PyTorch / JAX scripts: untimed warm-up, then the median over timed iterations of exactly one
//! training step (all tasks' inner loops, the meta-loss, its backward and the Adam update);
//! data preparation happens before the timer. Peak RSS is the process's high-water mark.

use crate::algorithms::maml::{meta_gradient, Order, TaskData};
use crate::algorithms::Target;
use crate::data::sinusoid::SinusoidConfig;
use crate::nn::optim::{Adam, Optimizer};
use crate::nn::{Conv4, Conv4Config, DownsampleKind, Mlp, Model, Params};
use crate::run::usage::{children_peak_rss_mib, peak_rss_mib, Stopwatch};
use crate::tensor::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Timing statistics of one workload.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchResult {
    /// Workload name (`W1_sinusoid_maml`, ...).
    pub workload: String,
    /// Median milliseconds per iteration.
    pub median_ms: f64,
    /// 90th percentile milliseconds.
    pub p90_ms: f64,
    /// Timed iterations.
    pub iters: usize,
    /// Untimed warm-up iterations.
    pub warmup: usize,
    /// Peak resident memory of the process so far, MiB.
    pub peak_rss_mib: f64,
    /// Worker threads (rayon).
    pub threads: usize,
}

impl std::fmt::Display for BenchResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<22} median {:>10.3} ms  p90 {:>10.3} ms  ({} timed, {} warm-up, {} threads)  peak RSS {:.0} MiB",
            self.workload, self.median_ms, self.p90_ms, self.iters, self.warmup, self.threads, self.peak_rss_mib
        )
    }
}

fn time_iterations(
    name: &str,
    warmup: usize,
    iters: usize,
    mut step: impl FnMut(usize),
) -> BenchResult {
    for i in 0..warmup {
        step(i);
    }
    let mut times: Vec<f64> = (0..iters)
        .map(|i| {
            let clock = Stopwatch::start();
            step(warmup + i);
            clock.millis()
        })
        .collect();
    times.sort_by(|a, b| a.total_cmp(b));
    let pick = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    BenchResult {
        workload: name.to_string(),
        median_ms: pick(0.5),
        p90_ms: pick(0.9),
        iters,
        warmup,
        peak_rss_mib: peak_rss_mib(),
        threads: rayon::current_num_threads(),
    }
}

fn meta_train_step(
    model: &dyn Model<f32>,
    theta: &mut Params<f32>,
    opt: &mut Adam<f32>,
    tasks: &[TaskData<f32>],
    lr: f64,
    order: Order,
) -> f64 {
    let (grads, loss) = meta_gradient(model, theta, tasks, 1, lr, order);
    *theta = opt.step(theta, &grads);
    loss
}

/// W1: sinusoid MAML meta-step, MLP 1-40-40-1, 25 tasks x (10 support + 10 query), 1 inner step
/// of lr 0.01, second order, Adam 1e-3. Peers: 20 warm-up + 300 timed.
pub fn bench_w1(warmup: usize, iters: usize) -> BenchResult {
    let model = Mlp::new(&[1, 40, 40, 1]);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut theta: Params<f32> = model.init(&mut rng);
    let mut opt = Adam::new(1e-3);
    let sampler = SinusoidConfig::default();
    let batches: Vec<Vec<TaskData<f32>>> = (0..warmup + iters)
        .map(|_| {
            sampler
                .sample_batch(&mut rng, 25)
                .into_iter()
                .map(|t| TaskData {
                    support_x: Tensor::from_vec(t.support_x, &[10, 1]),
                    support_y: Target::Values(Tensor::from_vec(t.support_y, &[10, 1])),
                    query_x: Tensor::from_vec(t.query_x, &[10, 1]),
                    query_y: Target::Values(Tensor::from_vec(t.query_y, &[10, 1])),
                })
                .collect()
        })
        .collect();
    time_iterations("W1_sinusoid_maml", warmup, iters, |i| {
        meta_train_step(
            &model,
            &mut theta,
            &mut opt,
            &batches[i],
            0.01,
            Order::Second,
        );
    })
}

/// W2's network: Conv-4 (64 filters, batch norm, ReLU, max-pool 2) on 1x28x28 images with a
/// linear 5-way head.
pub fn w2_model() -> Conv4 {
    Conv4::new(Conv4Config {
        in_channels: 1,
        filters: 64,
        blocks: 4,
        image_size: 28,
        head: Some(5),
        downsample: DownsampleKind::MaxPool,
    })
}

/// W2: Omniglot-shaped MAML meta-step: Conv-4 (64 filters, BN, ReLU, max-pool 2) + linear 5 on
/// 1x28x28 N(0,1) images, 32 tasks of 5-way 1-shot with 15 queries per class, 1 inner step of
/// lr 0.4, Adam 1e-3; second order or first order. Peers: 2 warm-up + 10 timed.
pub fn bench_w2(order: Order, warmup: usize, iters: usize) -> BenchResult {
    let model = w2_model();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut theta: Params<f32> = model.init(&mut rng);
    let mut opt = Adam::new(1e-3);
    let query_labels: Vec<usize> = (0..75).map(|i| i % 5).collect();
    let batches: Vec<Vec<TaskData<f32>>> = (0..2)
        .map(|_| {
            (0..32)
                .map(|_| TaskData {
                    support_x: Tensor::rand_normal(&[5, 1, 28, 28], 0.0, 1.0, &mut rng),
                    support_y: Target::Classes((0..5).collect()),
                    query_x: Tensor::rand_normal(&[75, 1, 28, 28], 0.0, 1.0, &mut rng),
                    query_y: Target::Classes(query_labels.clone()),
                })
                .collect()
        })
        .collect();
    let name = match order {
        Order::Second => "W2_omniglot_maml",
        Order::First => "W2_omniglot_fomaml",
    };
    time_iterations(name, warmup, iters, |i| {
        meta_train_step(&model, &mut theta, &mut opt, &batches[i % 2], 0.4, order);
    })
}

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

/// W3: Prototypical Networks training episode: Conv-4 (64 filters, no head) on 1x28x28 N(0,1)
/// images, 60-way 5-shot 5-query (support and query embedded in one batch of 600), logits
/// minus squared Euclidean distances to the class means, cross-entropy, Adam 1e-3. Peers
/// (`w3_protonet_torch.py`): 3 warm-up + 20 timed episodes over a pool of 2.
pub fn bench_w3(warmup: usize, iters: usize) -> BenchResult {
    use crate::nn::Body;
    const WAYS: usize = 60;
    const SHOT: usize = 5;
    const QUERY: usize = 5;
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let body = Body::Conv4(Conv4::new(Conv4Config {
        head: None,
        ..w2_model().config
    }));
    let mut learner = crate::algorithms::protonet::ProtoNet::<f32>::new(body, 1e-3, &mut rng);
    let pool: Vec<TaskData<f32>> = (0..2)
        .map(|_| TaskData {
            support_x: Tensor::rand_normal(&[WAYS * SHOT, 1, 28, 28], 0.0, 1.0, &mut rng),
            support_y: Target::Classes((0..WAYS * SHOT).map(|i| i / SHOT).collect()),
            query_x: Tensor::rand_normal(&[WAYS * QUERY, 1, 28, 28], 0.0, 1.0, &mut rng),
            query_y: Target::Classes((0..WAYS * QUERY).map(|i| i / QUERY).collect()),
        })
        .collect();
    time_iterations("W3_protonet", warmup, iters, |i| {
        use crate::algorithms::FewShotLearner;
        learner.meta_train_step(std::slice::from_ref(&pool[i % 2]), &mut rng);
    })
}

/// W4's network: Conv-4 with 32 filters on 3x84x84 (84 -> 42 -> 21 -> 10 -> 5) and a linear
/// head 800 -> 5.
pub fn w4_model() -> Conv4 {
    Conv4::new(Conv4Config {
        in_channels: 3,
        filters: 32,
        blocks: 4,
        image_size: 84,
        head: Some(5),
        downsample: DownsampleKind::MaxPool,
    })
}

/// W4: miniImageNet-shaped MAML meta-step: [`w4_model`] on N(0,1) images, 4 tasks of 5-way
/// 1-shot with 15 queries per class, 5 inner SGD steps of lr 0.01, second order, Adam 1e-3.
/// Peers (`w4_miniimagenet_maml_torch.py`): 1 warm-up + 5 timed over a pool of 2.
pub fn bench_w4(warmup: usize, iters: usize) -> BenchResult {
    let model = w4_model();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let mut theta: Params<f32> = model.init(&mut rng);
    let mut opt = Adam::new(1e-3);
    let batches: Vec<Vec<TaskData<f32>>> = (0..2)
        .map(|_| {
            (0..4)
                .map(|_| TaskData {
                    support_x: Tensor::rand_normal(&[5, 3, 84, 84], 0.0, 1.0, &mut rng),
                    support_y: Target::Classes((0..5).collect()),
                    query_x: Tensor::rand_normal(&[75, 3, 84, 84], 0.0, 1.0, &mut rng),
                    query_y: Target::Classes((0..75).map(|i| i / 15).collect()),
                })
                .collect()
        })
        .collect();
    time_iterations("W4_miniimagenet_maml", warmup, iters, |i| {
        let (grads, _) = meta_gradient(&model, &theta, &batches[i % 2], 5, 0.01, Order::Second);
        theta = opt.step(&theta, &grads);
    })
}

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

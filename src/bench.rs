//! `metalearn bench`: the workloads of `shared/bench/peers` (W1, W2) timed the same way as the
//! PyTorch / JAX scripts: untimed warm-up, then the median over timed iterations of exactly one
//! training step (all tasks' inner loops, the meta-loss, its backward and the Adam update);
//! data preparation happens before the timer. Peak RSS is the process's high-water mark.

use crate::algorithms::maml::{meta_gradient, Order, TaskData};
use crate::algorithms::Target;
use crate::data::sinusoid::SinusoidConfig;
use crate::nn::optim::{Adam, Optimizer};
use crate::nn::{Conv4, Conv4Config, DownsampleKind, Mlp, Model, Params};
use crate::tensor::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

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

/// The process's peak resident set size in MiB (`VmHWM` from `/proc/self/status`; 0 if unknown).
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(0.0)
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
            let t0 = Instant::now();
            step(warmup + i);
            t0.elapsed().as_secs_f64() * 1e3
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

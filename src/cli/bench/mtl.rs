//! W5 of `shared/bench/peers`: multi-task MNIST-shaped training throughput.

use super::BenchResult;
use crate::mtl::config::MtlData;
use crate::mtl::model::{HardSharing, LayerSpec, OutputKind, TaskSpec, TaskTargets};
use crate::mtl::train::{gather, step_gradients};
use crate::mtl::weighting::Equal;
use crate::mtl::MultiTaskModel;
use crate::nn::optim::{Adam, Optimizer};
use crate::run::usage::Stopwatch;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The W5 network: conv 1->16 3x3 pad 1, ReLU, max-pool 4, flatten, linear 784->32, ReLU; heads
/// digit (10) and digit mod 3 (3) on raw logits.
pub fn w5_model() -> HardSharing {
    let trunk = [
        LayerSpec::Conv {
            out: 16,
            kernel: 3,
            padding: 1,
            stride: 1,
        },
        LayerSpec::Relu,
        LayerSpec::MaxPool { kernel: 4 },
        LayerSpec::Flatten,
        LayerSpec::Linear { out: 32 },
        LayerSpec::Relu,
    ];
    let tasks = vec![
        TaskSpec {
            name: "digit".into(),
            kind: OutputKind::Multiclass,
            outputs: 10,
            hidden: vec![],
        },
        TaskSpec {
            name: "mod3".into(),
            kind: OutputKind::Multiclass,
            outputs: 3,
            hidden: vec![],
        },
    ];
    HardSharing::new(&trunk, &[1, 28, 28], tasks, true).expect("the W5 network fits 1x28x28")
}

/// W5 as the peer runs it: 60000 synthetic 1x28x28 U[0,1) images with uniform random digit
/// labels (and their mod 3), batch 64 (the last batch holds 32), one shuffled epoch,
/// loss = CE(digit) + CE(mod 3), Adam 1e-3; `warmup` untimed steps first, then fresh parameters
/// and optimizer for the timed epoch. The epoch time includes gathering each batch by index.
/// `median_ms` / `p90_ms` are per step; `samples_per_sec` = 60000 / epoch seconds.
pub fn bench_w5_with(samples: usize, warmup: usize) -> (BenchResult, f64) {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let x: Vec<f32> = (0..samples * 784).map(|_| rng.gen::<f32>()).collect();
    let y: Vec<usize> = (0..samples).map(|_| rng.gen_range(0..10)).collect();
    let data = MtlData {
        x,
        n: samples,
        example_shape: vec![1, 28, 28],
        targets: vec![
            TaskTargets::Classes(y.clone()),
            TaskTargets::Classes(y.iter().map(|d| d % 3).collect()),
        ],
    };
    let mut perm: Vec<usize> = (0..samples).collect();
    perm.shuffle(&mut rng);
    let model = w5_model();
    let owners = MultiTaskModel::<f32>::owners(&model);
    let map = [0usize, 1];
    let run = |steps: Option<usize>, times: &mut Vec<f64>| {
        let mut init_rng = ChaCha8Rng::seed_from_u64(0);
        let mut params = MultiTaskModel::<f32>::init(&model, &mut init_rng).requires_grad_();
        let mut opt = Adam::new(1e-3);
        let mut eq = Equal::new(2);
        for (s, idx) in perm.chunks(64).enumerate() {
            if steps.is_some_and(|n| s >= n) {
                break;
            }
            let clock = Stopwatch::start();
            let (xb, ys) = gather(&data, idx, &map);
            let out = step_gradients(
                &model,
                &owners,
                &params,
                &xb,
                &ys,
                &mut eq,
                (s as u64, 0),
                false,
            );
            params = opt.step(&params, &out.grads);
            times.push(clock.millis());
        }
    };
    run(Some(warmup), &mut Vec::new());
    let mut times = Vec::new();
    let clock = Stopwatch::start();
    run(None, &mut times);
    let epoch = clock.seconds();
    (
        BenchResult::from_times("W5_multitask_mnist", times, warmup),
        samples as f64 / epoch,
    )
}

/// W5 with the peer's settings (60000 samples, 20 warm-up steps). The epoch's samples/s is
/// printed to stderr as well; [`bench_w5_with`] returns it.
pub fn bench_w5() -> BenchResult {
    let (r, sps) = bench_w5_with(60000, 20);
    eprintln!("W5_multitask_mnist: {sps:.0} samples/s (one epoch of 60000)");
    r
}

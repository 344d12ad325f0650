//! W5 of `shared/bench/peers`: multi-task MNIST-shaped training throughput.

use super::BenchResult;
use crate::mtl::config::MtlData;
use crate::mtl::model::{HardSharing, LayerSpec, OutputKind, TaskSpec, TaskTargets};
use crate::mtl::train::{gather, step_gradients, step_gradients_on, GramianOn};
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

/// The LeNet-style network of the MultiMNIST experiments (Sener & Koltun 2018; Lin et al.
/// 2019): trunk conv 1->10 5x5, max-pool 2, ReLU, conv 10->20 5x5, max-pool 2, ReLU, flatten,
/// linear 320->50, ReLU; two 10-class linear heads, on 1x28x28 inputs.
pub fn lenet_mtl_model() -> HardSharing {
    let trunk = [
        LayerSpec::Conv {
            out: 10,
            kernel: 5,
            padding: 0,
            stride: 1,
        },
        LayerSpec::MaxPool { kernel: 2 },
        LayerSpec::Relu,
        LayerSpec::Conv {
            out: 20,
            kernel: 5,
            padding: 0,
            stride: 1,
        },
        LayerSpec::MaxPool { kernel: 2 },
        LayerSpec::Relu,
        LayerSpec::Flatten,
        LayerSpec::Linear { out: 50 },
        LayerSpec::Relu,
    ];
    let head = |name: &str| TaskSpec {
        name: name.into(),
        kind: OutputKind::Multiclass,
        outputs: 10,
        hidden: vec![],
    };
    HardSharing::new(
        &trunk,
        &[1, 28, 28],
        vec![head("left"), head("right")],
        true,
    )
    .expect("the LeNet fits 1x28x28")
}

/// Multiply-add FLOPs (2 per multiply-add) of one LeNet forward pass per example: the two
/// convolutions, the linear layer and the two heads.
pub const LENET_FORWARD_FLOP: f64 =
    2.0 * (24.0 * 24.0 * 10.0 * 25.0 + 8.0 * 8.0 * 20.0 * 250.0 + 320.0 * 50.0 + 2.0 * 500.0);

/// One timed configuration of [`bench_mtl_gramian`].
struct GramCase {
    label: &'static str,
    method: &'static str,
    on: GramianOn,
}

/// The MTL step on the LeNet with batch `batch` of synthetic 1x28x28 images (two random
/// 10-class labels): equal weighting against Gramian-based methods (UPGrad, MGDA in TorchJD's
/// form) with the per-task gradients on the parameters (exact, one backward pass per task) and
/// on the shared representation ([`GramianOn::Representation`]). The configurations are timed
/// in turn, one step each per round, `warmup` untimed rounds then `iters` timed ones; each
/// step is `step_gradients_on` plus its Adam update. Returns each configuration's timing and
/// its median's ratio to equal weighting's.
pub fn bench_mtl_gramian(batch: usize, warmup: usize, iters: usize) -> Vec<(BenchResult, f64)> {
    use crate::mtl::weighting::{build, WeightingConfig};
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let model = lenet_mtl_model();
    let owners = MultiTaskModel::<f32>::owners(&model);
    let x = crate::tensor::Tensor::from_vec(
        (0..batch * 784).map(|_| rng.gen::<f32>()).collect(),
        &[batch, 1, 28, 28],
    );
    let ys: Vec<TaskTargets> = (0..2)
        .map(|_| TaskTargets::Classes((0..batch).map(|_| rng.gen_range(0..10)).collect()))
        .collect();
    let p = GramianOn::Parameters;
    let r = GramianOn::Representation;
    let cases = [
        GramCase {
            label: "equal",
            method: "equal",
            on: p,
        },
        GramCase {
            label: "upgrad_params",
            method: "upgrad",
            on: p,
        },
        GramCase {
            label: "upgrad_repr",
            method: "upgrad",
            on: r,
        },
        GramCase {
            label: "mgda_params",
            method: "mgda",
            on: p,
        },
        GramCase {
            label: "mgda_repr",
            method: "mgda",
            on: r,
        },
    ];
    let mut state: Vec<_> = cases
        .iter()
        .map(|c| {
            let mut init_rng = ChaCha8Rng::seed_from_u64(0);
            let params = MultiTaskModel::<f32>::init(&model, &mut init_rng).requires_grad_();
            let w = build(&WeightingConfig::named(c.method).expect("known"), 2).expect("builds");
            (params, Adam::new(1e-3), w, Vec::new())
        })
        .collect();
    for round in 0..warmup + iters {
        for (c, (params, opt, w, times)) in cases.iter().zip(state.iter_mut()) {
            let clock = Stopwatch::start();
            let out = step_gradients_on(
                &model,
                &owners,
                params,
                (&x, &ys),
                w.as_mut(),
                (round as u64, 0),
                false,
                c.on,
            );
            *params = opt.step(params, &out.grads);
            if round >= warmup {
                times.push(clock.millis());
            }
        }
    }
    let results: Vec<BenchResult> = cases
        .iter()
        .zip(state)
        .map(|(c, s)| BenchResult::from_times(&format!("MTL_lenet_{}", c.label), s.3, warmup))
        .collect();
    let base = results[0].median_ms;
    results
        .into_iter()
        .map(|r| {
            let ratio = r.median_ms / base;
            (r, ratio)
        })
        .collect()
}

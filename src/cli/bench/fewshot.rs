//! The few-shot workloads W1 to W4: one meta-training step (all tasks' inner loops, the
//! meta-loss, its backward and the Adam update) timed per iteration.

use super::{time_iterations, BenchResult};
use crate::algorithms::maml::{meta_gradient, Order, TaskData};
use crate::algorithms::Target;
use crate::data::sinusoid::SinusoidConfig;
use crate::nn::optim::{Adam, Optimizer};
use crate::nn::{Conv4, Conv4Config, DownsampleKind, Mlp, Model, Params};
use crate::tensor::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// One MAML meta-step with `steps` inner SGD steps of learning rate `lr`: [`meta_gradient`]
/// then an Adam update of `theta`; returns the meta-loss.
fn meta_train_step(
    model: &dyn Model<f32>,
    theta: &mut Params<f32>,
    opt: &mut Adam<f32>,
    tasks: &[TaskData<f32>],
    (steps, lr): (usize, f64),
    order: Order,
) -> f64 {
    let (grads, loss) = meta_gradient(model, theta, tasks, steps, lr, order);
    *theta = opt.step(theta, &grads);
    loss
}

/// A pool of 2 meta-batches of `tasks` 5-way 1-shot tasks with 75 queries on N(0,1) images of
/// shape `image` (support then query drawn per task); support labels 0..5, query labels
/// `query_labels`.
fn random_image_tasks(
    rng: &mut ChaCha8Rng,
    tasks: usize,
    image: [usize; 3],
    query_labels: &[usize],
) -> Vec<Vec<TaskData<f32>>> {
    let [c, h, w] = image;
    (0..2)
        .map(|_| {
            (0..tasks)
                .map(|_| TaskData {
                    support_x: Tensor::rand_normal(&[5, c, h, w], 0.0, 1.0, rng),
                    support_y: Target::Classes((0..5).collect()),
                    query_x: Tensor::rand_normal(&[75, c, h, w], 0.0, 1.0, rng),
                    query_y: Target::Classes(query_labels.to_vec()),
                    classes: None,
                })
                .collect()
        })
        .collect()
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
                    classes: None,
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
            (1, 0.01),
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
        downsample_blocks: None,
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
    let batches = random_image_tasks(&mut rng, 32, [1, 28, 28], &query_labels);
    let name = match order {
        Order::Second => "W2_omniglot_maml",
        Order::First => "W2_omniglot_fomaml",
    };
    time_iterations(name, warmup, iters, |i| {
        meta_train_step(
            &model,
            &mut theta,
            &mut opt,
            &batches[i % 2],
            (1, 0.4),
            order,
        );
    })
}

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
            classes: None,
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
        downsample_blocks: None,
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
    let query_labels: Vec<usize> = (0..75).map(|i| i / 15).collect();
    let batches = random_image_tasks(&mut rng, 4, [3, 84, 84], &query_labels);
    time_iterations("W4_miniimagenet_maml", warmup, iters, |i| {
        meta_train_step(
            &model,
            &mut theta,
            &mut opt,
            &batches[i % 2],
            (5, 0.01),
            Order::Second,
        );
    })
}

/// The direct-convolution FLOPs (`2 N O C kh kw Ho Wo` per conv) of one ProtoNet training
/// step of a ResNet-12 on `n` images: every conv's forward and weight gradient, and the input
/// gradient of every conv whose input is not the image (the first block's conv1 and shortcut
/// take the image, which needs no gradient).
pub fn resnet12_step_flops(net: &crate::nn::ResNet12, n: usize) -> f64 {
    let c = &net.config;
    let (mut cin, mut side, mut total) = (c.in_channels, c.image_size, 0.0);
    for (b, &o) in c.channels.iter().enumerate() {
        let plane = (side * side) as f64;
        let conv = |i: usize, k: usize| 2.0 * (n * o * i * k * k) as f64 * plane;
        let fwd = [conv(cin, 3), conv(o, 3), conv(o, 3), conv(cin, 1)];
        let input_grads = if b == 0 {
            fwd[1] + fwd[2]
        } else {
            fwd.iter().sum()
        };
        total += 2.0 * fwd.iter().sum::<f64>() + input_grads;
        cin = o;
        side /= 2;
    }
    total
}

/// ResNet-12 workload: one Prototypical Networks training episode on MetaOptNet's ResNet-12
/// (`[64, 160, 320, 640]`, flattened 16000-d features, no DropBlock) on 3x84x84 N(0,1)
/// images, 5-way 1-shot 15-query (support and query embedded in one batch of 80), Adam 1e-3;
/// a pool of 2 episodes. Returns the timing and the step's GFLOP ([`resnet12_step_flops`]).
pub fn bench_resnet12(warmup: usize, iters: usize) -> (BenchResult, f64) {
    use crate::algorithms::FewShotLearner;
    use crate::nn::{Body, FeaturePooling, ResNet12, ResNet12Config};
    const WAYS: usize = 5;
    const QUERY: usize = 15;
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let net = ResNet12::new(ResNet12Config {
        in_channels: 3,
        channels: [64, 160, 320, 640],
        image_size: 84,
        leaky_slope: 0.1,
        pooling: FeaturePooling::Flatten,
        drop_block: None,
    });
    let gflop = resnet12_step_flops(&net, WAYS * (1 + QUERY)) / 1e9;
    let body = Body::ResNet12(net);
    let mut learner = crate::algorithms::protonet::ProtoNet::<f32>::new(body, 1e-3, &mut rng);
    let pool: Vec<TaskData<f32>> = (0..2)
        .map(|_| TaskData {
            support_x: Tensor::rand_normal(&[WAYS, 3, 84, 84], 0.0, 1.0, &mut rng),
            support_y: Target::Classes((0..WAYS).collect()),
            query_x: Tensor::rand_normal(&[WAYS * QUERY, 3, 84, 84], 0.0, 1.0, &mut rng),
            query_y: Target::Classes((0..WAYS * QUERY).map(|i| i / QUERY).collect()),
            classes: None,
        })
        .collect();
    let result = time_iterations("ResNet12_protonet", warmup, iters, |i| {
        learner.meta_train_step(std::slice::from_ref(&pool[i % 2]), &mut rng);
    });
    (result, gflop)
}

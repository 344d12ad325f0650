//! Thread-count independence: the same seed gives bit-identical losses, gradients and
//! parameters on 1, 2 and 3 worker threads, with ops splitting their work over idle workers
//! (a single ProtoNet episode, a MAML meta-batch smaller than the pool, a multi-task step).
//! Every op cuts its work into chunks fixed by its shapes, so only the speed may change.

use metalearn::algorithms::maml::{meta_gradient, Order, TaskData};
use metalearn::algorithms::{FewShotLearner, Target};
use metalearn::mtl::model::TaskTargets;
use metalearn::mtl::train::step_gradients;
use metalearn::mtl::weighting::Equal;
use metalearn::mtl::MultiTaskModel;
use metalearn::nn::Body;
use metalearn::nn::{Conv4, Conv4Config, DownsampleKind, Model, Params};
use metalearn::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Runs `f` on a fresh pool of `threads` workers.
fn on_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool")
        .install(f)
}

/// The bit patterns of every value of `tensors`.
fn bits(tensors: &[Tensor<f32>]) -> Vec<Vec<u32>> {
    tensors
        .iter()
        .map(|t| t.to_vec().iter().map(|v| v.to_bits()).collect())
        .collect()
}

/// Asserts that `run` gives the same bits on 1, 2 and 3 threads (and that it is not trivial).
fn same_bits_at_every_thread_count(what: &str, run: impl Fn() -> Vec<Vec<u32>> + Sync) {
    let one = on_threads(1, &run);
    assert!(
        one.iter().flatten().any(|&b| b != 0),
        "{what}: all zero, nothing was compared"
    );
    for threads in [2, 3] {
        let other = on_threads(threads, &run);
        assert_eq!(one.len(), other.len());
        for (k, (a, b)) in one.iter().zip(&other).enumerate() {
            let differ = a.iter().zip(b).filter(|(x, y)| x != y).count();
            assert_eq!(
                differ,
                0,
                "{what}: tensor {k} differs in {differ} of {} values at {threads} threads",
                a.len()
            );
        }
    }
}

fn conv4(in_channels: usize, image_size: usize, head: Option<usize>) -> Conv4 {
    Conv4::new(Conv4Config {
        in_channels,
        filters: 64,
        blocks: 4,
        image_size,
        head,
        downsample: DownsampleKind::MaxPool,
        downsample_blocks: None,
    })
}

fn classes(n: usize, per_class: usize) -> Target<f32> {
    Target::Classes((0..n * per_class).map(|i| i / per_class).collect())
}

#[test]
fn a_protonet_episode_is_bit_identical_at_any_thread_count() {
    same_bits_at_every_thread_count("protonet", || {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let body = Body::Conv4(conv4(1, 28, None));
        let mut learner =
            metalearn::algorithms::protonet::ProtoNet::<f32>::new(body, 1e-3, &mut rng);
        let task = TaskData {
            support_x: Tensor::rand_normal(&[40, 1, 28, 28], 0.0, 1.0, &mut rng),
            support_y: classes(20, 2),
            query_x: Tensor::rand_normal(&[40, 1, 28, 28], 0.0, 1.0, &mut rng),
            query_y: classes(20, 2),
            classes: None,
        };
        let mut loss = Vec::new();
        for _ in 0..2 {
            let stats = learner.meta_train_step(std::slice::from_ref(&task), &mut rng);
            loss.push(Tensor::from_vec(vec![stats.loss as f32], &[1]));
        }
        let state: Vec<Tensor<f32>> = learner.state().tensors().to_vec();
        [bits(&loss), bits(&state)].concat()
    });
}

#[test]
fn a_second_order_maml_meta_step_is_bit_identical_at_any_thread_count() {
    // Two tasks: on 3 threads the tasks leave a worker idle, so the ops split.
    same_bits_at_every_thread_count("maml", || {
        let model = conv4(1, 28, Some(5));
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let theta: Params<f32> = model.init(&mut rng);
        let tasks: Vec<TaskData<f32>> = (0..2)
            .map(|_| TaskData {
                support_x: Tensor::rand_normal(&[5, 1, 28, 28], 0.0, 1.0, &mut rng),
                support_y: classes(5, 1),
                query_x: Tensor::rand_normal(&[50, 1, 28, 28], 0.0, 1.0, &mut rng),
                query_y: classes(5, 10),
                classes: None,
            })
            .collect();
        let (grads, loss) = meta_gradient(&model, &theta, &tasks, 2, 0.4, Order::Second);
        [
            bits(&[Tensor::from_vec(vec![loss as f32], &[1])]),
            bits(&grads),
        ]
        .concat()
    });
}

#[test]
fn a_multi_task_step_is_bit_identical_at_any_thread_count() {
    same_bits_at_every_thread_count("mtl", || {
        let model = metalearn::cli::bench::mtl::w5_model();
        let owners = MultiTaskModel::<f32>::owners(&model);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let params = MultiTaskModel::<f32>::init(&model, &mut rng).requires_grad_();
        let x = Tensor::<f32>::rand_uniform(&[256, 1, 28, 28], 0.0, 1.0, &mut rng);
        let digits: Vec<usize> = (0..256).map(|i| (i * 7) % 10).collect();
        let ys = vec![
            TaskTargets::Classes(digits.clone()),
            TaskTargets::Classes(digits.iter().map(|d| d % 3).collect()),
        ];
        let mut eq = Equal::new(2);
        let out = step_gradients(&model, &owners, &params, &x, &ys, &mut eq, (0, 0), false);
        let losses: Vec<f32> = out.losses.iter().map(|&l| l as f32).collect();
        [bits(&[Tensor::from_vec(losses, &[2])]), bits(&out.grads)].concat()
    });
}

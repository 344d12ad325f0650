//! ResNet-12 (Lee et al. 2019, MetaOptNet; Oreshkin et al. 2018, TADAM) as a backbone of every
//! few-shot method: its new op (LeakyReLU) and the whole network pass first- and second-order
//! gradient checks, MAML's second-order meta-gradient through it matches finite differences,
//! its parameter count is the published one, its shapes are right at 28, 84 and 105, every
//! method takes a training step on it, DropBlock (Ghiasi et al. 2018) is seeded and off at
//! evaluation, checkpoints round-trip, `train` / `eval` / `adapt` run on it, Omniglot works at
//! 28, 56, 84 and 105 with Conv-4 and ResNet-12, and bad sizes are errors naming the key.

mod common;

use metalearn::algorithms::config::ALGORITHM_NAMES;
use metalearn::algorithms::maml::{meta_gradient, Order};
use metalearn::algorithms::{
    build_learner, AlgorithmConfig, BackboneConfig, ResNet12Backbone, Target, TaskData,
};
use metalearn::autodiff::check::{assert_gradients, dot_all, gradcheck};
use metalearn::data::seeded_rng;
use metalearn::fewshot::{RunConfig, Split, TaskSource};
use metalearn::nn::noise::with_training_noise;
use metalearn::nn::{
    Backbone, Body, DropBlockConfig, FeaturePooling, Model, Network, Params, ResNet12,
    ResNet12Config,
};
use metalearn::tensor::Tensor;
use std::path::Path;

/// A ResNet-12 of the given widths on `in_channels` x `size` x `size` images.
fn resnet(in_channels: usize, channels: [usize; 4], size: usize) -> ResNet12 {
    ResNet12::new(ResNet12Config {
        in_channels,
        channels,
        image_size: size,
        leaky_slope: 0.1,
        pooling: FeaturePooling::Flatten,
        drop_block: None,
    })
}

/// The tiny config section the method tests use: 1 channel, widths [2, 3, 4, 5], `size`.
fn tiny_section(size: usize, drop_block: Option<DropBlockConfig>) -> BackboneConfig {
    BackboneConfig::ResNet12(ResNet12Backbone {
        in_channels: 1,
        channels: vec![2, 3, 4, 5],
        image_size: size,
        drop_block,
        ..ResNet12Backbone::default()
    })
}

/// `params` (as f64 tensors) followed by `x`.
fn with_input(params: &Params<f64>, x: Tensor<f64>) -> Vec<Tensor<f64>> {
    let mut xs: Vec<Tensor<f64>> = params.tensors().to_vec();
    xs.push(x);
    xs
}

#[test]
fn leaky_relu_passes_gradcheck_and_gradgradcheck() {
    let mut rng = seeded_rng(1);
    let x = Tensor::<f64>::rand_normal(&[3, 7], 0.0, 1.0, &mut rng);
    assert_gradients(
        "leaky_relu",
        &|xs| xs[0].leaky_relu(0.1),
        std::slice::from_ref(&x),
    );
    // Composed with a smooth op so the second derivative is not trivially zero.
    assert_gradients(
        "leaky_relu(x)^2",
        &|xs| xs[0].leaky_relu(0.2).square(),
        std::slice::from_ref(&x),
    );
    // The backward op itself, in both of its inputs' roles.
    let g = Tensor::<f64>::rand_normal(&[3, 7], 0.0, 1.0, &mut rng);
    let mask_of = x.clone();
    assert_gradients(
        "where_positive_else_scaled",
        &|xs| xs[0].where_positive_else_scaled(&mask_of, 0.3).mul(&xs[0]),
        &[g],
    );
    let y = x.leaky_relu(0.1);
    for (a, b) in x.data().iter().zip(y.data()) {
        assert_eq!(*b, if *a > 0.0 { *a } else { 0.1 * a });
    }
}

#[test]
fn resnet12_passes_gradcheck_and_gradgradcheck() {
    // Widths [2, 3, 4, 5] on 2 images of 2x16x16: 16 -> 8 -> 4 -> 2 -> 1, 5 features.
    let net = resnet(2, [2, 3, 4, 5], 16);
    let mut rng = seeded_rng(2);
    let params: Params<f64> = net.init_params(&mut rng);
    let x = Tensor::<f64>::rand_normal(&[2, 2, 16, 16], 0.0, 1.0, &mut rng);
    let names = params.clone();
    let f = move |xs: &[Tensor<f64>]| {
        let p = names.with_tensors(xs[..xs.len() - 1].to_vec());
        net.embed(&p, &xs[xs.len() - 1])
    };
    assert_eq!(f(&with_input(&params, x.clone())).shape(), [2, 5]);
    assert_gradients("resnet12", &f, &with_input(&params, x));
}

#[test]
fn resnet12_average_pooling_and_drop_block_pass_gradcheck() {
    // A fixed mask: every evaluation runs in a fresh scope of the same seed.
    let net = ResNet12::new(ResNet12Config {
        pooling: FeaturePooling::Average,
        drop_block: Some(DropBlockConfig {
            size: 2,
            keep_prob: 0.6,
        }),
        ..resnet(1, [2, 3, 4, 5], 20).config
    });
    assert_eq!(net.feature_dim(), 5);
    let mut rng = seeded_rng(3);
    let params: Params<f64> = net.init_params(&mut rng);
    let x = Tensor::<f64>::rand_normal(&[3, 1, 20, 20], 0.0, 1.0, &mut rng);
    let names = params.clone();
    let f = move |xs: &[Tensor<f64>]| {
        let p = names.with_tensors(xs[..xs.len() - 1].to_vec());
        with_training_noise(Some(99), || net.embed(&p, &xs[xs.len() - 1]))
    };
    let r = gradcheck(&f, &with_input(&params, x), 5, &mut rng);
    assert!(r.max_error < 1e-6, "gradcheck error {}", r.max_error);
}

#[test]
fn drop_block_masks_blocks_and_keeps_the_mean_scale() {
    let x = Tensor::<f64>::ones(&[4, 3, 10, 10]);
    let cfg = DropBlockConfig {
        size: 3,
        keep_prob: 0.8,
    };
    let y = metalearn::nn::drop_block(&x, cfg, 5);
    let zeros = y.data().iter().filter(|v| **v == 0.0).count();
    assert!(
        zeros > 0 && zeros < y.numel(),
        "{zeros} of {} dropped",
        y.numel()
    );
    // Kept values are scaled by numel / kept, so the sum is unchanged.
    assert!((y.sum_all().item() - x.numel() as f64).abs() < 1e-9);
    // The same seed gives the same mask; another seed another one.
    assert_eq!(metalearn::nn::drop_block(&x, cfg, 5).data(), y.data());
    assert_ne!(metalearn::nn::drop_block(&x, cfg, 6).data(), y.data());
    // keep_prob 1 is the identity.
    let keep_all = DropBlockConfig {
        keep_prob: 1.0,
        ..cfg
    };
    assert_eq!(metalearn::nn::drop_block(&x, keep_all, 5).data(), x.data());
}

#[test]
fn maml_second_order_through_resnet12_matches_finite_differences() {
    let model = Network::with_head(resnet(1, [2, 2, 3, 3], 16), 3);
    let mut rng = seeded_rng(4);
    let theta: Params<f64> = model.init(&mut rng);
    let tasks = vec![TaskData {
        support_x: Tensor::<f64>::rand_normal(&[3, 1, 16, 16], 0.0, 1.0, &mut rng),
        support_y: Target::Classes(vec![0, 1, 2]),
        query_x: Tensor::<f64>::rand_normal(&[6, 1, 16, 16], 0.0, 1.0, &mut rng),
        query_y: Target::Classes(vec![0, 1, 2, 0, 1, 2]),
        classes: None,
    }];
    let (steps, lr) = (2, 0.1);
    let (g2, _) = meta_gradient(&model, &theta, &tasks, steps, lr, Order::Second);
    let (g1, _) = meta_gradient(&model, &theta, &tasks, steps, lr, Order::First);
    let objective = |t: &Params<f64>| meta_gradient(&model, t, &tasks, steps, lr, Order::First).1;
    let (mut worst2, mut worst1) = (0.0f64, 0.0f64);
    for _ in 0..3 {
        let v: Vec<Tensor<f64>> = theta
            .tensors()
            .iter()
            .map(|t| Tensor::rand_uniform(t.shape(), -1.0, 1.0, &mut rng))
            .collect();
        let shifted = |s: f64| {
            let moved = theta.tensors().iter().zip(&v);
            theta.with_tensors(moved.map(|(t, d)| t.add(&d.mul_scalar(s))).collect())
        };
        let h = 1e-6;
        let fd = (objective(&shifted(h)) - objective(&shifted(-h))) / (2.0 * h);
        let scale = fd.abs().max(1e-3);
        worst2 = worst2.max((dot_all(&g2, &v) - fd).abs() / scale);
        worst1 = worst1.max((dot_all(&g1, &v) - fd).abs() / scale);
    }
    assert!(
        worst2 < 1e-5,
        "second-order meta-gradient: relative error {worst2:e}"
    );
    assert!(worst1 > 1e-4, "first order should differ here: {worst1:e}");
}

/// The parameter count from the layer list, block by block: three 3x3 convs without bias
/// (`o i 9`, then `o o 9` twice), the 1x1 shortcut conv (`o i`) and four batch norms (`2 o`
/// each: scale and shift).
fn count_by_hand(in_channels: usize, widths: [usize; 4]) -> usize {
    let conv = |o: usize, i: usize, k: usize| o * i * k * k;
    let bn = |o: usize| 2 * o;
    let mut cin = in_channels;
    let mut total = 0;
    for o in widths {
        total += conv(o, cin, 3) + bn(o);
        total += conv(o, o, 3) + bn(o);
        total += conv(o, o, 3) + bn(o);
        total += conv(o, cin, 1) + bn(o);
        cin = o;
    }
    total
}

#[test]
fn parameter_count_is_metaoptnets() {
    // MetaOptNet (Lee et al. 2019, Table 1 and section 4.1) reports ~12.4M parameters for its
    // ResNet-12 [64, 160, 320, 640] on RGB: by hand, block 1 = 1728 + 73728 + 192 + 512 =
    // 76,160, block 2 = 564,480, block 3 = 2,357,760, block 4 = 9,425,920; 12,424,320 in all.
    let want3 = count_by_hand(3, [64, 160, 320, 640]);
    assert_eq!(want3, 12_424_320);
    assert!((want3 as f64 / 1e6 - 12.4).abs() < 0.05);
    let body = Body::from_config(&BackboneConfig::ResNet12(ResNet12Backbone::default())).unwrap();
    let p: Params<f32> = body.init_params(&mut seeded_rng(0));
    assert_eq!(p.numel(), want3);
    assert_eq!(p.len(), body.num_params());
    assert_eq!(p.len(), 48);
    assert_eq!(
        &p.names()[..3],
        ["b0.conv1.weight", "b0.bn1.weight", "b0.bn1.bias"]
    );
    assert_eq!(p.names()[9], "b0.shortcut.conv.weight");
    assert_eq!(p.get("b3.conv3.weight").unwrap().shape(), [640, 640, 3, 3]);
    assert_eq!(
        p.get("b2.shortcut.conv.weight").unwrap().shape(),
        [320, 160, 1, 1]
    );
    // One input channel (Omniglot): block 1's first conv and shortcut shrink by 2 x 64 x 10.
    let want1 = count_by_hand(1, [64, 160, 320, 640]);
    assert_eq!(want1, 12_424_320 - 2 * 64 * 10);
    assert_eq!(resnet(1, [64, 160, 320, 640], 84).parameter_count(), want1);
    assert_eq!(resnet(3, [64, 160, 320, 640], 84).parameter_count(), want3);
    // TADAM's widths [64, 128, 256, 512].
    assert_eq!(
        resnet(3, [64, 128, 256, 512], 84).parameter_count(),
        count_by_hand(3, [64, 128, 256, 512])
    );
}

#[test]
fn forward_shapes_at_28_84_and_105() {
    let mut rng = seeded_rng(5);
    // side after four floor halvings: 28 -> 1, 84 -> 5, 105 -> 6.
    for (size, side) in [(28, 1), (84, 5), (105, 6)] {
        let net = resnet(1, [2, 3, 4, 5], size);
        let p: Params<f32> = net.init_params(&mut rng);
        let x = Tensor::<f32>::rand_normal(&[2, 1, size, size], 0.0, 1.0, &mut rng);
        let z = net.embed(&p, &x);
        assert_eq!(z.shape(), [2, 5 * side * side], "image_size {size}");
        assert_eq!(net.feature_dim(), 5 * side * side);
        assert!(z.data().iter().all(|v| v.is_finite()));
        let avg = ResNet12::new(ResNet12Config {
            pooling: FeaturePooling::Average,
            ..net.config.clone()
        });
        assert_eq!(avg.embed(&p, &x).shape(), [2, 5]);
    }
    // The published network at 84x84 RGB: 640 x 5 x 5 = 16000 flattened features.
    let net = resnet(3, [64, 160, 320, 640], 84);
    assert_eq!(net.feature_dim(), 16000);
    let p: Params<f32> = net.init_params(&mut rng);
    let x = Tensor::<f32>::rand_normal(&[2, 3, 84, 84], 0.0, 1.0, &mut rng);
    assert_eq!(net.embed(&p, &x).shape(), [2, 16000]);
}

/// Two 3-way 1-shot tasks with 2 queries per class of N(0,1) images `1 x size x size`.
fn random_tasks(size: usize, seed: u64) -> Vec<TaskData<f32>> {
    let mut rng = seeded_rng(seed);
    (0..2)
        .map(|_| TaskData {
            support_x: Tensor::rand_normal(&[3, 1, size, size], 0.0, 1.0, &mut rng),
            support_y: Target::Classes(vec![0, 1, 2]),
            query_x: Tensor::rand_normal(&[6, 1, size, size], 0.0, 1.0, &mut rng),
            query_y: Target::Classes(vec![0, 1, 2, 0, 1, 2]),
            classes: None,
        })
        .collect()
}

/// Every method of the table takes one meta-training step on a tiny ResNet-12 (with and
/// without DropBlock): a finite loss and gradient norm, finite `[6, 3]` predictions.
#[test]
fn every_method_trains_a_step_on_resnet12() {
    let tasks = random_tasks(16, 6);
    let drop = Some(DropBlockConfig {
        size: 2,
        keep_prob: 0.8,
    });
    for name in ALGORITHM_NAMES {
        for db in [None, drop] {
            let alg = AlgorithmConfig::default_for(name).unwrap();
            let mut rng = seeded_rng(7);
            let mut learner = build_learner(&alg, &tiny_section(16, db), 3, 1e-3, &mut rng)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let s = learner.meta_train_step(&tasks, &mut rng);
            assert!(
                s.loss.is_finite() && s.grad_norm.is_finite() && s.grad_norm > 0.0,
                "{name} (drop_block {db:?}): loss {}, gradient norm {}",
                s.loss,
                s.grad_norm
            );
            let t = &tasks[0];
            let out = learner.predict(&t.support_x, &t.support_y, &t.query_x);
            assert_eq!(out.shape(), [6, 3], "{name}");
            assert!(out.data().iter().all(|v| v.is_finite()), "{name}");
        }
    }
}

/// DropBlock draws from the step's generator: the same seed gives the same step on 1 and 3
/// threads, it changes the training loss, and it is off when predicting.
#[test]
fn drop_block_is_seeded_thread_independent_and_off_at_eval() {
    let tasks = random_tasks(16, 8);
    let alg = AlgorithmConfig::default_for("protonet").unwrap();
    let drop = Some(DropBlockConfig {
        size: 2,
        keep_prob: 0.7,
    });
    let step = |db: Option<DropBlockConfig>, threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut rng = seeded_rng(9);
            let mut l = build_learner(&alg, &tiny_section(16, db), 3, 1e-3, &mut rng).unwrap();
            let t = &tasks[0];
            let before = l.predict(&t.support_x, &t.support_y, &t.query_x);
            let s = l.meta_train_step(&tasks, &mut rng);
            let after = l.predict(&t.support_x, &t.support_y, &t.query_x);
            (s.loss, before.data().to_vec(), after.data().to_vec())
        })
    };
    let (loss1, before1, after1) = step(drop, 1);
    let (loss3, _, after3) = step(drop, 3);
    assert_eq!(loss1.to_bits(), loss3.to_bits());
    assert_eq!(after1, after3);
    let (plain, before_plain, _) = step(None, 1);
    assert_ne!(loss1, plain, "DropBlock should change the training loss");
    assert_eq!(
        before1, before_plain,
        "DropBlock must be off when predicting"
    );
}

#[test]
fn checkpoint_round_trip() {
    let tasks = random_tasks(16, 10);
    let dir = common::fresh_dir("metalearn-resnet12", "ckpt");
    for name in ["protonet", "maml"] {
        let alg = AlgorithmConfig::default_for(name).unwrap();
        let section = tiny_section(16, None);
        let mut rng = seeded_rng(11);
        let mut a = build_learner(&alg, &section, 3, 1e-3, &mut rng).unwrap();
        a.meta_train_step(&tasks, &mut rng);
        let path = dir.join(format!("{name}.safetensors"));
        metalearn::nn::checkpoint::save(&path, &a.state(), &Default::default()).unwrap();
        let ck = metalearn::nn::checkpoint::load::<f32>(&path).unwrap();
        let mut b = build_learner(&alg, &section, 3, 1e-3, &mut seeded_rng(12)).unwrap();
        b.load_state(&ck.params).unwrap();
        let t = &tasks[1];
        let pa = a.predict(&t.support_x, &t.support_y, &t.query_x);
        let pb = b.predict(&t.support_x, &t.support_y, &t.query_x);
        assert_eq!(pa.data(), pb.data(), "{name}");
        // Another architecture refuses the state, naming what differs.
        let other = BackboneConfig::ResNet12(ResNet12Backbone {
            in_channels: 1,
            channels: vec![2, 3, 4, 6],
            image_size: 16,
            ..ResNet12Backbone::default()
        });
        let mut c = build_learner(&alg, &other, 3, 1e-3, &mut seeded_rng(13)).unwrap();
        let err = c.load_state(&ck.params).unwrap_err().to_string();
        assert!(err.contains("b3."), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A run config of `method` on ResNet-12 widths [2, 3, 4, 5] with `data` and `train` tables.
fn run_config(method: &str, backbone: &str, data: &str, out: &Path) -> String {
    format!(
        "[algorithm]\nname = \"{method}\"\n\n[backbone]\n{backbone}\n\n[data]\n{data}\n\n\
         [train]\niterations = 4\nmeta_batch = 2\nval_every = 2\nval_episodes = 2\n\
         checkpoint_every = 2\nout_dir = {:?}\n\n[eval]\nepisodes = 4\n",
        out.display().to_string()
    )
}

/// A 16x16 gray PNG of class `c`: a bright 4x4 square at a class-specific place, faint noise.
fn write_pattern(path: &Path, c: usize, seed: usize) {
    let pixels: Vec<u8> = (0..256)
        .map(|i| {
            let (r, col) = (i / 16, i % 16);
            let on = (r / 4 == c % 4) && (col / 4 == (c / 4) % 4);
            let noise = ((i * 31 + seed * 17 + c * 7) % 13) as u8;
            if on {
                240 - noise
            } else {
                noise
            }
        })
        .collect();
    let (gray, eight) = (png::ColorType::Grayscale, png::BitDepth::Eight);
    common::write_png(path, 16, 16, gray, eight, &pixels);
}

/// `train`, `eval` and `adapt` on a ResNet-12 checkpoint (image folders of 16x16 PNGs).
#[test]
fn train_eval_and_adapt_with_resnet12() {
    use metalearn::fewshot::{adapt, evaluate_checkpoint, train, TrainOptions};
    let root = common::fresh_dir("metalearn-resnet12", "train");
    let data = root.join("images");
    for c in 0..10 {
        for i in 0..4 {
            write_pattern(&data.join(format!("c{c}")).join(format!("{i}.png")), c, i);
        }
    }
    let backbone = "name = \"resnet12\"\nin_channels = 1\nchannels = [2, 3, 4, 5]\nimage_size = 16\ndrop_block = { size = 2 }";
    let data_table = format!(
        "dataset = \"image_folder\"\ndata_dir = {:?}\nn_way = 2\nk_shot = 1\nq_query = 2\nsplit = [0.6, 0.2]",
        data.display().to_string()
    );
    let out = root.join("run");
    let text = run_config("protonet", backbone, &data_table, &out);
    let cfg = RunConfig::from_toml_str(&text, Path::new("resnet12.toml")).unwrap();
    match &cfg.backbone {
        BackboneConfig::ResNet12(r) => {
            assert_eq!(r.drop_block.map(|d| (d.size, d.keep_prob)), Some((2, 0.9)));
        }
        other => panic!("parsed as {other:?}"),
    }
    train(&cfg, &TrainOptions::default()).unwrap();
    let ckpt = out.join("best.safetensors");
    let report = evaluate_checkpoint(&ckpt, None).unwrap();
    assert!(report.score.mean.is_finite());
    let (support, query) = (root.join("support"), root.join("query"));
    for (name, c) in [("alpha", 11), ("beta", 12)] {
        write_pattern(&support.join(name).join("s.png"), c, 50);
        write_pattern(&query.join(format!("{name}.png")), c, 60);
    }
    let r = adapt(&ckpt, &support, &query).unwrap();
    assert_eq!(r.classes, ["alpha", "beta"]);
    assert_eq!(r.predictions.len(), 2);
    let _ = std::fs::remove_dir_all(&root);
}

/// Omniglot at 28, 56, 84 and 105 (105 is the source size: no resampling, so every pixel is
/// exactly ink or paper): the loader gives the backbone's size, and Conv-4 and ResNet-12 each
/// take a ProtoNet step and a MAML step on an episode of it.
#[test]
fn omniglot_at_every_size_end_to_end() {
    let Some(dir) = common::omniglot() else {
        return;
    };
    for size in [28, 56, 84, 105] {
        let conv4 = format!("name = \"conv4\"\nfilters = 8\nimage_size = {size}");
        let data = format!(
            "dataset = \"omniglot\"\ndata_dir = {:?}\nn_way = 3\nk_shot = 1\nq_query = 2",
            dir.display().to_string()
        );
        let out = std::env::temp_dir().join("metalearn-resnet12-unused");
        let text = run_config("protonet", &conv4, &data, &out);
        let cfg = RunConfig::from_toml_str(&text, Path::new("omniglot.toml")).unwrap();
        let source = TaskSource::load(&cfg).unwrap();
        let fixed = source.fixed(Split::Train, 2, 3).unwrap();
        let tasks: Vec<TaskData<f32>> = (0..2)
            .map(|i| source.fixed_task(&fixed, i).unwrap())
            .collect();
        assert_eq!(tasks[0].support_x.shape(), [3, 1, size, size]);
        if size == 105 {
            let x = tasks[0].support_x.data();
            assert!(
                x.iter().all(|&v| v == 0.0 || v == 1.0),
                "105 must not resample"
            );
        }
        let resnet = BackboneConfig::ResNet12(ResNet12Backbone {
            in_channels: 1,
            channels: vec![4, 4, 8, 8],
            image_size: size,
            ..ResNet12Backbone::default()
        });
        for backbone in [&cfg.backbone, &resnet] {
            for name in ["protonet", "maml"] {
                let alg = AlgorithmConfig::default_for(name).unwrap();
                let mut rng = seeded_rng(14);
                let mut l = build_learner(&alg, backbone, 3, 1e-3, &mut rng).unwrap();
                let s = l.meta_train_step(&tasks, &mut rng);
                assert!(
                    s.loss.is_finite(),
                    "{name} on {} at {size}",
                    backbone.name()
                );
            }
        }
    }
}

fn config_error(backbone: &str) -> String {
    common::omniglot_config_error("name = \"protonet\"", backbone)
}

#[test]
fn bad_sizes_are_errors_naming_the_key() {
    let cases = [
        (
            "name = \"resnet12\"\nin_channels = 1\nimage_size = 15",
            &["`backbone.image_size`", "15", "[16, 4096]"][..],
        ),
        (
            "name = \"resnet12\"\nimage_size = 0",
            &["`backbone.image_size`", "= 0"],
        ),
        (
            "name = \"resnet12\"\nchannels = [64, 160, 320]",
            &["`backbone.channels`", "3 entries", "expected 4"],
        ),
        (
            "name = \"resnet12\"\nchannels = [64, 0, 320, 640]",
            &["`backbone.channels`", "holds 0"],
        ),
        (
            "name = \"resnet12\"\nchannels = []",
            &["`backbone.channels`", "0 entries"],
        ),
        (
            "name = \"resnet12\"\nin_channels = 0",
            &["`backbone.in_channels`", "[1, 64]"],
        ),
        (
            "name = \"resnet12\"\nleaky_slope = -1.0",
            &["`backbone.leaky_slope`"],
        ),
        (
            "name = \"resnet12\"\ndrop_block = { keep_prob = 0.0 }",
            &["`backbone.drop_block.keep_prob`", "(0, 1]"],
        ),
        (
            "name = \"resnet12\"\ndrop_block = { size = 0 }",
            &["`backbone.drop_block.size`"],
        ),
        ("name = \"resnet12\"\nwidths = [1, 2, 3, 4]", &["widths"]),
        ("name = \"resnet12\"\npooling = \"max\"", &["max"]),
        (
            "name = \"conv4\"\nimage_size = 8",
            &["`backbone.image_size`", "[16, 4096]"],
        ),
        (
            "name = \"conv4\"\nimage_size = 3\nblocks = 2",
            &["`backbone.image_size`", "[4, 4096]"],
        ),
    ];
    for (backbone, wants) in cases {
        let err = config_error(backbone);
        for w in wants {
            assert!(err.contains(w), "{backbone:?}: {err:?} does not say {w:?}");
        }
    }
    // Omniglot is grayscale: ResNet-12's default 3 channels are refused, naming the key.
    let dir = std::env::temp_dir().join("metalearn-resnet12-no-data");
    let text = format!(
        "[algorithm]\nname = \"protonet\"\n\n[backbone]\nname = \"resnet12\"\n\n[data]\ndataset = \"omniglot\"\ndata_dir = {:?}\n",
        dir.display().to_string()
    );
    let cfg = RunConfig::from_toml_str(&text, Path::new("rgb.toml")).unwrap();
    let err = TaskSource::load(&cfg)
        .err()
        .expect("3 channels on Omniglot")
        .to_string();
    assert!(err.contains("backbone.in_channels"), "{err}");
    // data.image_size must agree with the backbone's.
    let text = "[algorithm]\nname = \"protonet\"\n\n[backbone]\nname = \"resnet12\"\nin_channels = 1\nimage_size = 28\n\n[data]\ndataset = \"omniglot\"\nimage_size = 84\n";
    let err = RunConfig::from_toml_str(text, Path::new("sizes.toml"))
        .expect_err("two sizes")
        .to_string();
    assert!(
        err.contains("data.image_size") && err.contains("`backbone.image_size` = 28"),
        "{err}"
    );
}

#[test]
fn shipped_config_builds_the_published_network() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("configs/fewshot/protonet-omniglot-5w1s-resnet12.toml");
    let cfg = RunConfig::load(&path).unwrap();
    let body = Body::from_config(&cfg.backbone).unwrap();
    assert_eq!(body.feature_dim(), 640);
    let Body::ResNet12(net) = &body else {
        panic!("{}", body.description())
    };
    assert_eq!(net.parameter_count(), count_by_hand(1, [64, 160, 320, 640]));
    assert_eq!(net.parameter_count(), 12_423_040);
}

//! Multi-task models: the fused conv op against the unfused ops, the W5 network against the
//! PyTorch reference (`mtl_seed_mnist`), MMoE / cross-stitch, and config errors.

mod common;

use common::MTL_BASE as BASE;

use metalearn::autodiff::grad;
use metalearn::cli::bench::mtl::w5_model;
use metalearn::cli::reference::MTL_PARAMS;
use metalearn::mtl::model::Stack;
use metalearn::mtl::model::{
    HardSharing, MultiTaskModel, OutputKind, Owner, TaskSpec, TaskTargets,
};
use metalearn::mtl::weighting::Equal;
use metalearn::mtl::{architectures, train, LayerSpec, MtlConfig, MtlError};
use metalearn::nn::init::push_weight_and_bias;
use metalearn::nn::{Backbone, Model, Params};
use metalearn::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[test]
fn fused_conv_relu_pool_matches_the_unfused_ops() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for &(n, c, h, o, k, pad, pool) in &[
        (3usize, 1usize, 12usize, 4usize, 3usize, 1usize, 4usize),
        (2, 2, 9, 3, 3, 0, 2),
        (2, 3, 8, 2, 2, 1, 3),
    ] {
        let x = Tensor::<f64>::rand_normal(&[n, c, h, h], 0.0, 1.0, &mut rng).requires_grad_();
        let w = Tensor::<f64>::rand_normal(&[o, c, k, k], 0.0, 0.5, &mut rng).requires_grad_();
        let b = Tensor::<f64>::rand_normal(&[o], 0.0, 0.5, &mut rng).requires_grad_();
        let fused = x.conv2d_relu_max_pool(&w, &b, pad, pool);
        let plain = x.conv2d(&w, Some(&b), 1, pad).relu().max_pool2d(pool, pool);
        assert_eq!(fused.shape(), plain.shape());
        assert!(fused.max_abs_diff(&plain) < 1e-12);
        let up = Tensor::<f64>::rand_normal(fused.shape(), 0.0, 1.0, &mut rng);
        let gf = grad(
            &[fused.mul(&up).sum_all()],
            &[x.clone(), w.clone(), b.clone()],
            false,
        );
        let gp = grad(
            &[plain.mul(&up).sum_all()],
            &[x.clone(), w.clone(), b.clone()],
            false,
        );
        for (a, e) in gf.iter().zip(&gp) {
            assert!(a.max_abs_diff(e) < 1e-12, "{a:?} vs {e:?}");
        }
    }
}

fn read_ref() -> Option<safetensors::SafeTensors<'static>> {
    let path = common::reference_case("mtl_seed_mnist")?;
    let bytes = std::fs::read(path).ok()?;
    Some(
        safetensors::SafeTensors::deserialize(Box::leak(bytes.into_boxed_slice()))
            .expect("valid safetensors"),
    )
}

fn f64_tensor(st: &safetensors::SafeTensors<'_>, name: &str) -> Tensor<f64> {
    let v = st.tensor(name).unwrap();
    let data: Vec<f64> = v
        .data()
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    Tensor::from_vec(data, v.shape())
}

fn labels(st: &safetensors::SafeTensors<'_>, name: &str) -> Vec<usize> {
    st.tensor(name)
        .unwrap()
        .data()
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as usize)
        .collect()
}

#[test]
fn w5_network_matches_the_pytorch_reference() {
    let Some(st) = read_ref() else { return };
    let model = w5_model();
    let init: Params<f64> = MultiTaskModel::<f64>::init(&model, &mut ChaCha8Rng::seed_from_u64(0));
    let tensors: Vec<Tensor<f64>> = MTL_PARAMS
        .iter()
        .map(|n| f64_tensor(&st, &format!("param/{n}")).requires_grad_())
        .collect();
    let params = init.with_tensors(tensors);
    let x = f64_tensor(&st, "input/x");
    let (yd, ym) = (labels(&st, "input/y_digit"), labels(&st, "input/y_mod3"));
    let out = model.forward(&params, &x);
    assert!(out[0].max_abs_diff(&f64_tensor(&st, "expected/logits_digit")) < 1e-10);
    assert!(out[1].max_abs_diff(&f64_tensor(&st, "expected/logits_mod3")) < 1e-10);
    let loss = out[0].cross_entropy(&yd).add(&out[1].cross_entropy(&ym));
    assert!((loss.item() - f64_tensor(&st, "expected/loss").item()).abs() < 1e-10);
    let g = grad(&[loss], params.tensors(), false);
    for (n, gi) in MTL_PARAMS.iter().zip(&g) {
        let e = f64_tensor(&st, &format!("expected/grad/{n}"));
        assert!(
            gi.max_abs_diff(&e) < 1e-9,
            "grad {n}: {}",
            gi.max_abs_diff(&e)
        );
    }
}

fn tasks() -> Vec<TaskSpec> {
    vec![
        TaskSpec {
            name: "a".into(),
            kind: OutputKind::Multiclass,
            outputs: 4,
            hidden: vec![],
        },
        TaskSpec {
            name: "b".into(),
            kind: OutputKind::Binary,
            outputs: 1,
            hidden: vec![5],
        },
        TaskSpec {
            name: "c".into(),
            kind: OutputKind::Regression,
            outputs: 1,
            hidden: vec![],
        },
    ]
}

fn trunk() -> Vec<LayerSpec> {
    vec![
        LayerSpec::Conv {
            out: 3,
            kernel: 3,
            padding: 1,
            stride: 1,
        },
        LayerSpec::Relu,
        LayerSpec::MaxPool { kernel: 2 },
        LayerSpec::Flatten,
        LayerSpec::Linear { out: 6 },
        LayerSpec::Tanh,
    ]
}

fn check_model(model: &dyn MultiTaskModel<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let params = model.init(&mut rng).requires_grad_();
    let owners = model.owners();
    assert_eq!(owners.len(), params.len(), "{}", model.describe());
    assert!(owners.contains(&Owner::Shared));
    let x = Tensor::<f64>::rand_uniform(&[5, 1, 8, 8], 0.0, 1.0, &mut rng);
    let outs = model.forward(&params, &x);
    assert_eq!(outs.len(), 3);
    assert_eq!(outs[0].shape(), [5, 4]);
    assert_eq!(outs[1].shape(), [5, 1]);
    assert_eq!(outs[2].shape(), [5, 1]);
    // Every task's loss reaches the shared parameters; its own head is reached by it alone.
    for (k, o) in outs.iter().enumerate() {
        let opts = metalearn::GradOptions {
            create_graph: false,
            retain_graph: true,
        };
        let g = metalearn::grad_with(&[o.sum_all()], &[Tensor::ones(&[])], params.tensors(), opts);
        let shared_norm: f64 = owners
            .iter()
            .zip(&g)
            .filter(|(w, _)| **w == Owner::Shared)
            .map(|(_, t)| t.data().iter().map(|v| v * v).sum::<f64>())
            .sum();
        assert!(
            shared_norm > 0.0,
            "task {k} does not reach the shared parameters of {}",
            model.describe()
        );
    }
}

#[test]
fn hard_mmoe_and_cross_stitch_shapes_and_gradients() {
    check_model(&HardSharing::new(&trunk(), &[1, 8, 8], tasks(), true).unwrap());
    check_model(&architectures::Mmoe::new(&trunk(), &[1, 8, 8], 3, tasks(), true).unwrap());
    check_model(&architectures::CrossStitch::new(&trunk(), &[1, 8, 8], tasks(), false).unwrap());
}

#[test]
fn a_stack_is_an_nn_model_and_backbone_with_nn_init() {
    let stack = Stack::new(&trunk(), &[1, 8, 8], true).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let params: Params<f64> = Model::init(&stack, &mut rng);
    assert_eq!(params.names(), ["0.weight", "0.bias", "4.weight", "4.bias"]);
    // Kaiming uniform from nn::init, layer after layer, weight before bias.
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let mut want = Params::<f64>::new();
    push_weight_and_bias(&mut want, "0.", &[3, 1, 3, 3], &mut rng);
    push_weight_and_bias(&mut want, "4.", &[6, 48], &mut rng);
    for (a, b) in params.tensors().iter().zip(want.tensors()) {
        assert_eq!(a.data(), b.data());
    }
    let x = Tensor::<f64>::rand_uniform(&[5, 1, 8, 8], 0.0, 1.0, &mut rng);
    let out = Model::forward(&stack, &params, &x);
    assert_eq!(out.shape(), [5, 6]);
    assert_eq!(Backbone::feature_dim(&stack), 6);
    assert_eq!(Backbone::num_params(&stack), 4);
    assert_eq!(stack.embed(&params, &x).data(), out.data());
    // Hard sharing's trunk is that stack, its parameters prefixed `trunk.`.
    let model = HardSharing::new(&trunk(), &[1, 8, 8], tasks(), true).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let all: Params<f64> = MultiTaskModel::init(&model, &mut rng);
    assert_eq!(&all.names()[..2], ["trunk.0.weight", "trunk.0.bias"]);
    assert_eq!(all.at(2).data(), params.at(2).data());
    assert_eq!(model.features(&all, &x).data(), out.data());
}

#[test]
fn per_task_gradients_sum_to_the_joint_gradient() {
    // With equal weights, the per-task path (gradients measured) gives the same update as the
    // single backward pass of the summed loss.
    let model = HardSharing::new(&trunk(), &[1, 8, 8], tasks(), true).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let params: Params<f32> = MultiTaskModel::<f32>::init(&model, &mut rng).requires_grad_();
    let owners = MultiTaskModel::<f32>::owners(&model);
    let x = Tensor::<f32>::rand_uniform(&[6, 1, 8, 8], 0.0, 1.0, &mut rng);
    let ys = vec![
        TaskTargets::Classes(vec![0, 1, 2, 3, 0, 1]),
        TaskTargets::Values {
            values: vec![0.0, 1.0, 1.0, 0.0, 1.0, 0.0],
            dim: 1,
        },
        TaskTargets::Values {
            values: vec![0.5, -1.0, 0.2, 0.0, 1.5, -0.3],
            dim: 1,
        },
    ];
    // Without and with measuring the per-task gradients (their cosines).
    let [a, b] = [false, true].map(|measure| {
        let mut weighting = Equal::new(3);
        train::step_gradients(
            &model,
            &owners,
            &params,
            &x,
            &ys,
            &mut weighting,
            (0, 0),
            measure,
        )
    });
    assert!(a.cosines.is_none());
    assert_eq!(b.cosines.as_ref().unwrap().len(), 3);
    for (ga, gb) in a.grads.iter().zip(&b.grads) {
        assert!(ga.max_abs_diff(gb) < 1e-5);
    }
}

#[test]
fn config_errors_name_the_key_or_path() {
    let ok = MtlConfig::from_toml(BASE).unwrap();
    // Missing data folder.
    let err = metalearn::mtl::run(&ok, false).unwrap_err();
    assert!(matches!(err, MtlError::MissingData { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("data.path") && msg.contains("/nonexistent/mnist"),
        "{msg}"
    );
    // Configs that do not parse: (text, every part of the error).
    let unparsable = [
        // Unknown method.
        (
            format!("{BASE}\n[weighting]\nmethod = \"fancy\"\n"),
            vec!["weighting.method", "fancy"],
        ),
        // Unknown label source and unknown keys.
        (
            BASE.replace("class_mod3", "class_mod7"),
            vec!["tasks[1].label", "class_mod7"],
        ),
        (format!("{BASE}\n[train]\nepochz = 3\n"), vec!["epochz"]),
    ];
    for (text, parts) in &unparsable {
        let err = MtlConfig::from_toml(text).unwrap_err().to_string();
        assert!(parts.iter().all(|p| err.contains(p)), "{err}");
    }
    // Heads that do not fit their labels: (text, part of the error).
    let misfit_heads = [
        // The wrong number of classes.
        (
            BASE.replace("classes = 3", "classes = 10"),
            "tasks[1].classes",
        ),
        // A binary head on a 10-class label.
        (
            BASE.replacen("kind = \"multiclass\"", "kind = \"binary\"", 1),
            "tasks[0].kind",
        ),
    ];
    for (text, part) in &misfit_heads {
        let cfg = MtlConfig::from_toml(text).unwrap();
        let err = metalearn::mtl::config::task_specs(&cfg)
            .unwrap_err()
            .to_string();
        assert!(err.contains(part), "{err}");
    }
    // The shipped configs parse.
    for f in [
        "configs/mnist-multitask.toml",
        "configs/fashion-multitask.toml",
    ] {
        let c = MtlConfig::from_file(std::path::Path::new(f)).unwrap();
        metalearn::mtl::config::task_specs(&c).unwrap();
    }
}

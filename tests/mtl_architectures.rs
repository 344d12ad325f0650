//! MTAN, CGC / PLE and DSelect-k ([`metalearn::mtl::experts`]): shapes, parameter owners (a
//! task's own parameters get gradient from its loss alone, every loss reaches the shared ones),
//! the DSelect-k gate against hand-computed values, stage cutting, and config errors (an
//! unknown architecture lists the known ones).

mod common;

use common::MTL_BASE as BASE;
use metalearn::mtl::architectures::ARCHITECTURES;
use metalearn::mtl::experts::{stage_groups, DSelectK, Mtan, Ple};
use metalearn::mtl::model::{MultiTaskModel, OutputKind, Owner, TaskSpec};
use metalearn::mtl::{LayerSpec, MtlConfig};
use metalearn::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A small LeNet-like trunk on 1x8x8 inputs: two stages of conv + ReLU (+ pool), then a flat one.
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
        LayerSpec::Conv {
            out: 4,
            kernel: 3,
            padding: 1,
            stride: 1,
        },
        LayerSpec::Relu,
        LayerSpec::Flatten,
        LayerSpec::Linear { out: 6 },
        LayerSpec::Relu,
    ]
}

fn tasks() -> Vec<TaskSpec> {
    let spec = |name: &str, kind, outputs| TaskSpec {
        name: name.into(),
        kind,
        outputs,
        hidden: vec![],
    };
    vec![
        spec("a", OutputKind::Multiclass, 4),
        spec("b", OutputKind::Binary, 1),
        spec("c", OutputKind::Regression, 1),
    ]
}

/// Shapes, and the owners against the gradients: every task's output reaches some shared
/// parameter, and no parameter owned by task `j` gets gradient from task `k != j`.
fn check_model(model: &dyn MultiTaskModel<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let params = model.init(&mut rng).requires_grad_();
    let owners = model.owners();
    assert_eq!(owners.len(), params.len(), "{}", model.describe());
    let x = Tensor::<f64>::rand_uniform(&[5, 1, 8, 8], 0.0, 1.0, &mut rng);
    let outs = model.forward(&params, &x);
    let shapes: Vec<&[usize]> = outs.iter().map(|o| o.shape()).collect();
    assert_eq!(shapes, [&[5, 4][..], &[5, 1], &[5, 1]]);
    for (k, o) in outs.iter().enumerate() {
        let opts = metalearn::GradOptions {
            create_graph: false,
            retain_graph: true,
        };
        let g = metalearn::grad_with(&[o.sum_all()], &[Tensor::ones(&[])], params.tensors(), opts);
        let norm = |t: &Tensor<f64>| t.data().iter().map(|v| v * v).sum::<f64>();
        let shared: f64 = (owners.iter().zip(&g))
            .filter(|(w, _)| **w == Owner::Shared)
            .map(|(_, t)| norm(t))
            .sum();
        assert!(
            shared > 0.0,
            "task {k}: no shared gradient in {}",
            model.describe()
        );
        for (p, (w, t)) in owners.iter().zip(&g).enumerate() {
            if let Owner::Task(j) = w {
                if *j != k {
                    assert_eq!(norm(t), 0.0, "param {p} of task {j} reached by task {k}");
                }
            }
        }
    }
}

#[test]
fn stage_groups_cut_after_each_activation_or_pooling_run() {
    assert_eq!(stage_groups(&trunk()), [0..3, 3..5, 5..8]);
    let tail = [LayerSpec::Flatten, LayerSpec::Linear { out: 2 }];
    let groups = stage_groups(&tail);
    assert_eq!((groups.len(), &groups[0]), (1, &(0..2)));
}

#[test]
fn mtan_cgc_ple_and_dselect_k_shapes_and_owners() {
    let s = [1, 8, 8];
    check_model(&Mtan::new(&trunk(), &s, tasks(), true).unwrap());
    check_model(&Ple::new(&trunk(), &s, (2, 1), tasks(), false, true).unwrap());
    check_model(&Ple::new(&trunk(), &s, (1, 2), tasks(), true, false).unwrap());
    check_model(&DSelectK::new(&trunk(), &s, (4, 2, 1.0), tasks(), true).unwrap());
    check_model(&DSelectK::new(&trunk(), &s, (1, 1, 1.0), tasks(), true).unwrap());
}

#[test]
fn parameter_counts_follow_the_structure() {
    let s = [1, 8, 8];
    // Trunk tensors: 3 weighted layers = 6; heads: 3 tasks x 2 = 6.
    let count = |m: &dyn MultiTaskModel<f64>| m.owners().len();
    // MTAN: 3 levels x (2 weighted layers) per task = 3 x 3 x 4 = 36 attention tensors.
    assert_eq!(
        count(&Mtan::new(&trunk(), &s, tasks(), true).unwrap()),
        6 + 36 + 6
    );
    // CGC with 2 shared + 1 per task: (2 + 3) experts x 6, 3 gates x 2.
    let cgc = Ple::new(&trunk(), &s, (2, 1), tasks(), false, true).unwrap();
    assert_eq!(count(&cgc), 30 + 6 + 6);
    // PLE with 1 shared + 1 per task on 3 levels (2 tensors per expert per level), 3 task
    // gates per level, a shared gate on the first two levels.
    let ple = Ple::new(&trunk(), &s, (1, 1), tasks(), true, true).unwrap();
    assert_eq!(count(&ple), 3 * (4 * 2 + 3 * 2) + 2 * 2 + 6);
    // DSelect-k with 4 experts: 4 x 6 + 3 gates x 2.
    let ds = DSelectK::new(&trunk(), &s, (4, 2, 1.0), tasks(), true).unwrap();
    assert_eq!(count(&ds), 24 + 6 + 6);
}

#[test]
fn dselect_k_smooth_step_and_gate_by_hand() {
    // S(t) = -2 t^3 / g^3 + 3 t / (2 g) + 1/2 on [-g/2, g/2], 0 below, 1 above (g = 1).
    let t = Tensor::<f64>::from_f64(&[-1.0, -0.5, 0.0, 0.25, 0.5, 3.0], &[6]);
    let s = DSelectK::smooth_step(&t, 1.0);
    let want = [0.0, 0.0, 0.5, -2.0 / 64.0 + 0.375 + 0.5, 1.0, 1.0];
    for (a, b) in s.data().iter().zip(want) {
        assert!((a - b).abs() < 1e-12, "{:?}", s.data());
    }
    // 4 experts (2 bits), k = 1 selector. Logits [z0, z1, w]: z = (+5, -5) selects the expert
    // with bit 0 set and bit 1 clear, expert 1; z = (0, 0) spreads 1/4 over each.
    let ds = DSelectK::new(&trunk(), &[1, 8, 8], (4, 1, 1.0), tasks(), true).unwrap();
    let logits = Tensor::<f64>::from_f64(&[5.0, -5.0, 0.3, 0.0, 0.0, -1.0], &[2, 3]);
    let g = ds.gate_weights(&logits);
    assert_eq!(g.shape(), [2, 4]);
    assert_eq!(&g.data()[..4], &[0.0, 1.0, 0.0, 0.0]);
    for v in &g.data()[4..] {
        assert!((v - 0.25).abs() < 1e-12);
    }
    // Two selectors, each one-hot (experts 3 and 0), mixed by softmax(w) = (0.5, 0.5).
    let ds = DSelectK::new(&trunk(), &[1, 8, 8], (4, 2, 1.0), tasks(), true).unwrap();
    let logits = Tensor::<f64>::from_f64(&[9.0, 9.0, -9.0, -9.0, 0.7, 0.7], &[1, 6]);
    let g = ds.gate_weights(&logits);
    assert_eq!(g.data(), &[0.5, 0.0, 0.0, 0.5]);
}

#[test]
fn bad_architectures_and_options_are_errors_naming_the_key() {
    let with = |model: &str| BASE.replace("[model]\n", &format!("[model]\n{model}\n"));
    let err = MtlConfig::from_toml(&with("architecture = \"tranformer\""))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("model.architecture") && err.contains("tranformer"),
        "{err}"
    );
    for a in ARCHITECTURES {
        assert!(err.contains(a), "{a} missing from: {err}");
    }
    let err = MtlConfig::from_toml(&with("architecture = \"dselect_k\"\nexperts = 3"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("model.experts") && err.contains("power of two"),
        "{err}"
    );
    for (opt, key) in [
        ("task_experts = 0", "model.task_experts"),
        ("top_k = 0", "model.top_k"),
        ("gamma = -1.0", "model.gamma"),
    ] {
        let err = MtlConfig::from_toml(&with(opt)).unwrap_err().to_string();
        assert!(err.contains(key), "{opt}: {err}");
    }
    for a in ARCHITECTURES {
        MtlConfig::from_toml(&with(&format!("architecture = \"{a}\""))).unwrap();
    }
}

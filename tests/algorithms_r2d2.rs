//! R2D2 pinned to the bit: its closed-form ridge head goes through the differentiable linear
//! solve (`Tensor::solve`), forward (the query logits) and backward (the meta-gradient through
//! `A^-1`). The numbers below were recorded before the solve moved from `algorithms/r2d2.rs` to
//! `tensor/linalg.rs`; any change to the solve's arithmetic changes them.

use metalearn::algorithms::config::MlpBackbone;
use metalearn::algorithms::maml::TaskData;
use metalearn::algorithms::{build_learner, AlgorithmConfig, BackboneConfig, Target};
use metalearn::data::seeded_rng;
use metalearn::tensor::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const WAYS: usize = 3;
const SHOTS: usize = 2;
const QUERIES: usize = 3;
const FEATURES: usize = 6;

/// A synthetic 3-way task: class `c`'s examples scatter around a class centre.
fn task(rng: &mut ChaCha8Rng) -> TaskData<f32> {
    let centres = Tensor::<f32>::rand_normal(&[WAYS, FEATURES], 0.0, 1.0, rng).to_vec();
    let mut examples = |per_class: usize| {
        let noise = Tensor::<f32>::rand_normal(&[WAYS * per_class, FEATURES], 0.0, 0.5, rng);
        let mut x = noise.to_vec();
        let mut y = Vec::new();
        for (i, row) in x.chunks_exact_mut(FEATURES).enumerate() {
            let c = i % WAYS;
            for (v, m) in row
                .iter_mut()
                .zip(&centres[c * FEATURES..(c + 1) * FEATURES])
            {
                *v += m;
            }
            y.push(c);
        }
        (Tensor::from_vec(x, &[WAYS * per_class, FEATURES]), y)
    };
    let (support_x, sy) = examples(SHOTS);
    let (query_x, qy) = examples(QUERIES);
    TaskData {
        support_x,
        support_y: Target::Classes(sy),
        query_x,
        query_y: Target::Classes(qy),
        classes: None,
    }
}

/// FNV-1a over the bits of every value.
fn bits_hash(values: &[f32]) -> u64 {
    values.iter().fold(0xcbf2_9ce4_8422_2325, |h, v| {
        (h ^ u64::from(v.to_bits())).wrapping_mul(0x0100_0000_01b3)
    })
}

#[test]
fn r2d2_losses_gradients_and_predictions_are_pinned_to_the_bit() {
    let cfg = AlgorithmConfig::from_toml("name = \"r2d2\"").unwrap();
    let backbone = BackboneConfig::Mlp(MlpBackbone {
        sizes: vec![FEATURES, 16, 8],
    });
    let mut learner = build_learner(&cfg, &backbone, WAYS, 1e-2, &mut seeded_rng(5)).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut seen = Vec::new();
    for _ in 0..3 {
        let tasks: Vec<TaskData<f32>> = (0..2).map(|_| task(&mut rng)).collect();
        let stats = learner.meta_train_step(&tasks, &mut rng);
        seen.push((stats.loss.to_bits(), stats.grad_norm.to_bits()));
    }
    let t = task(&mut rng);
    let logits = learner.predict(&t.support_x, &t.support_y, &t.query_x);
    let state: Vec<f32> = learner
        .state()
        .tensors()
        .iter()
        .flat_map(|p| p.to_vec())
        .collect();
    let got = (seen, bits_hash(&logits.to_vec()), bits_hash(&state));
    // (loss 1.0327942967414856, gradient norm 0.38751980927887186), ...
    let want = (
        vec![
            (0x3ff0_8653_5000_0000, 0x3fd8_cd1f_e2d9_ea14),
            (0x3ff1_1e73_3000_0000, 0x3fd2_30e5_c83e_f02c),
            (0x3ff0_3db8_c000_0000, 0x3fd9_51fb_37ca_bbbb),
        ],
        0x6014_a15c_4780_e2ed,
        0x0712_41cf_f619_3823,
    );
    assert_eq!(got, want);
}

//! The representation-Gramian step (`GramianOn::Representation`): for a weighting `w` it must
//! give exactly the gradient of `sum_i w_i L_i` (linearity of the chain rule), here checked
//! against the plain equal-weighting step (the `mean` method's weights are all 1 on the sum's
//! scale), and it must see per-task gradients of the representation's size.

use metalearn::mtl::model::{HardSharing, LayerSpec, OutputKind, TaskSpec, TaskTargets};
use metalearn::mtl::train::{step_gradients, step_gradients_on, GramianOn};
use metalearn::mtl::weighting::{build, Equal, WeightingConfig};
use metalearn::mtl::MultiTaskModel;
use metalearn::tensor::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn model() -> HardSharing {
    let trunk = [
        LayerSpec::Flatten,
        LayerSpec::Linear { out: 6 },
        LayerSpec::Relu,
    ];
    let task = |name: &str, outputs| TaskSpec {
        name: name.into(),
        kind: OutputKind::Multiclass,
        outputs,
        hidden: vec![],
    };
    HardSharing::new(&trunk, &[1, 4, 4], vec![task("a", 3), task("b", 4)], false).unwrap()
}

#[test]
fn representation_step_of_unit_weights_is_the_summed_gradient() {
    let m = model();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let params = MultiTaskModel::<f32>::init(&m, &mut rng).requires_grad_();
    let owners = MultiTaskModel::<f32>::owners(&m);
    let x = Tensor::from_vec(
        (0..5 * 16).map(|_| rng.gen::<f32>()).collect(),
        &[5, 1, 4, 4],
    );
    let ys = vec![
        TaskTargets::Classes((0..5).map(|i| i % 3).collect()),
        TaskTargets::Classes((0..5).map(|i| (i * 3) % 4).collect()),
    ];
    let want = step_gradients(
        &m,
        &owners,
        &params,
        &x,
        &ys,
        &mut Equal::new(2),
        (0, 0),
        false,
    );
    let mut mean = build(&WeightingConfig::named("mean").unwrap(), 2).unwrap();
    let got = step_gradients_on(
        &m,
        &owners,
        &params,
        (&x, &ys),
        mean.as_mut(),
        (0, 0),
        false,
        GramianOn::Representation,
    );
    assert!(got.cosines.is_some() && got.fallback.is_none());
    for (g, w) in got.grads.iter().zip(&want.grads) {
        assert_eq!(g.shape(), w.shape());
        for (a, b) in g.data().iter().zip(w.data()) {
            assert!((a - b).abs() <= 1e-6 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }
    // UPGrad on the representation runs and stays finite.
    let mut up = build(&WeightingConfig::named("upgrad").unwrap(), 2).unwrap();
    let out = step_gradients_on(
        &m,
        &owners,
        &params,
        (&x, &ys),
        up.as_mut(),
        (0, 0),
        false,
        GramianOn::Representation,
    );
    assert!(out
        .grads
        .iter()
        .all(|g| g.data().iter().all(|v| v.is_finite())));
}

//! Gradient checks for the core elementwise, broadcasting and reduction ops.

mod common;

use common::{check_each, check_each_on};
use metalearn::autodiff::check::assert_gradients as check;
use metalearn::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn rand(shape: &[usize], lo: f64, hi: f64, seed: u64) -> Tensor<f64> {
    Tensor::rand_uniform(shape, lo, hi, &mut ChaCha8Rng::seed_from_u64(seed))
}

#[test]
fn binary_ops_with_broadcasting() {
    let a = rand(&[3, 1, 4], -1.0, 1.0, 1);
    let b = rand(&[1, 5, 4], 0.5, 2.0, 2);
    check_each_on(
        &[a.clone(), b.clone()],
        &[
            ("add", &|x| x[0].add(&x[1])),
            ("sub", &|x| x[0].sub(&x[1])),
            ("mul", &|x| x[0].mul(&x[1])),
            ("div", &|x| x[0].div(&x[1])),
        ],
    );
    let s = rand(&[1], 0.5, 2.0, 3);
    check(
        "div by scalar-shaped",
        &|x| x[0].div(&x[1]),
        &[a.clone(), s],
    );
}

#[test]
fn unary_ops() {
    let x = rand(&[4, 5], -2.0, 2.0, 4);
    let pos = rand(&[4, 5], 0.5, 2.0, 5);
    check_each(
        &x,
        &[
            ("exp", &|x| x[0].exp()),
            ("tanh", &|x| x[0].tanh()),
            ("sigmoid", &|x| x[0].sigmoid()),
            ("neg", &|x| x[0].neg().mul(&x[0])),
        ],
    );
    check_each(
        &pos,
        &[
            ("log", &|x| x[0].log()),
            ("sqrt", &|x| x[0].sqrt()),
            ("powf", &|x| x[0].powf(2.5)),
        ],
    );
    check(
        "scalar ops",
        &|x| x[0].mul_scalar(3.0).add_scalar(-1.0).square(),
        std::slice::from_ref(&x),
    );
    // piecewise ops: keep inputs away from the kinks
    let away: Vec<f64> = x
        .to_f64_vec()
        .iter()
        .map(|v| if v.abs() < 0.1 { v + 0.3 } else { *v })
        .collect();
    let away = Tensor::from_vec(away, &[4, 5]);
    check_each(
        &away,
        &[
            ("relu", &|x| x[0].relu().mul(&x[0])),
            ("abs", &|x| x[0].abs().mul(&x[0])),
            ("clamp", &|x| x[0].clamp(-0.95, 0.95).mul(&x[0])),
        ],
    );
}

#[test]
fn reductions_and_views() {
    let x = rand(&[3, 4, 5], -1.0, 1.0, 6);
    check_each(
        &x,
        &[
            ("sum_axis", &|x| x[0].sum_axis(1, false).square()),
            ("mean_axes keepdim", &|x| {
                x[0].mean_axes(&[0, 2], true).mul(&x[0])
            }),
            ("reshape", &|x| x[0].reshape(&[4, 15]).square()),
        ],
    );
    let b = rand(&[4, 1], -1.0, 1.0, 8);
    check(
        "broadcast_to",
        &|x| x[0].broadcast_to(&[3, 4, 5]).square(),
        std::slice::from_ref(&b),
    );
}

#[test]
fn hand_computed_values() {
    let a = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0], &[3, 1]);
    let b = Tensor::<f64>::from_vec(vec![10.0, 20.0], &[1, 2]);
    assert_eq!(a.add(&b).to_vec(), vec![11.0, 21.0, 12.0, 22.0, 13.0, 23.0]);
    assert_eq!(a.add(&b).sum_axis(0, false).to_vec(), vec![36.0, 66.0]);
    let x = a.requires_grad_();
    let y = x.mul(&x).mul(&x).sum_all(); // sum x^3
    let g = metalearn::grad(&[y], std::slice::from_ref(&x), true);
    assert_eq!(g[0].to_vec(), vec![3.0, 12.0, 27.0]); // 3x^2
    let gg = metalearn::grad(&[g[0].sum_all()], &[x], false);
    assert_eq!(gg[0].to_vec(), vec![6.0, 12.0, 18.0]); // 6x
}

#[test]
#[should_panic(expected = "add: shapes [2, 3] and [4] do not broadcast")]
fn shape_mismatch_names_op_and_shapes() {
    let _ = Tensor::<f32>::zeros(&[2, 3]).add(&Tensor::zeros(&[4]));
}

#[test]
fn where_mask_selects_and_routes_gradients() {
    let a = rand(&[3, 4], -1.0, 1.0, 21);
    let b = rand(&[3, 4], -1.0, 1.0, 22);
    let mask = a.mask(|v| v > 0.0);
    let y = Tensor::where_mask(&mask, &a, &b);
    for ((&m, &yv), (&av, &bv)) in mask
        .data()
        .iter()
        .zip(y.data())
        .zip(a.data().iter().zip(b.data()))
    {
        assert_eq!(yv, if m == 1.0 { av } else { bv });
    }
    check(
        "where_mask",
        &|x| Tensor::where_mask(&mask, &x[0], &x[1]).square(),
        &[a, b],
    );
}

//! The linear solve (`Tensor::solve`, `linalg::solve_f64`) and the `f64` vector helpers of
//! `tensor::linalg`: hand-computed values, the adjoint gradient by hand, gradient checks of
//! first and second order, and the singular / shape errors.

use metalearn::autodiff::check::assert_gradients;
use metalearn::autodiff::grad;
use metalearn::tensor::linalg::{cosine, dot, gram, norm, solve_f64, weighted_sum};
use metalearn::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn assert_close(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len());
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!((a - b).abs() <= tol, "element {i}: {got:?} vs {want:?}");
    }
}

#[test]
fn solve_by_hand() {
    // A = [[2, 1], [1, 3]], det 5, A^-1 = [[3, -1], [-1, 2]] / 5; B = [3, 5]^T -> X = [0.8, 1.4].
    let a = Tensor::<f64>::from_vec(vec![2.0, 1.0, 1.0, 3.0], &[2, 2]);
    let b = Tensor::<f64>::from_vec(vec![3.0, 5.0], &[2, 1]);
    let x = a.solve(&b);
    assert_eq!(x.shape(), [2, 1]);
    assert_close(&x.to_vec(), &[0.8, 1.4], 1e-15);
    // A zero leading entry needs the row swap: [[0, 1], [1, 0]] X = B swaps B's rows.
    let p = Tensor::<f64>::from_vec(vec![0.0, 1.0, 1.0, 0.0], &[2, 2]);
    let b2 = Tensor::<f64>::from_vec(vec![2.0, 3.0, 4.0, 5.0], &[2, 2]);
    assert_eq!(p.solve(&b2).to_vec(), vec![4.0, 5.0, 2.0, 3.0]);
    // Upper triangular: back substitution only. x3 = 6/3 = 2, x2 = (4 - 1*2)/2 = 1,
    // x1 = (9 - 2*1 - 1*2)/1 = 5.
    let u = [1.0, 2.0, 1.0, 0.0, 2.0, 1.0, 0.0, 0.0, 3.0];
    assert_eq!(
        solve_f64(&u, 3, &[9.0, 4.0, 6.0], 0.0).unwrap(),
        vec![5.0, 1.0, 2.0]
    );
    // In f32 too (computed in f64, rounded once).
    let x32 = a.cast::<f32>().solve(&b.cast::<f32>());
    assert_eq!(x32.to_vec(), vec![0.8f32, 1.4f32]);
}

#[test]
fn solve_recovers_a_known_solution() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let n = 6;
    let mut a = Tensor::<f64>::rand_uniform(&[n, n], -1.0, 1.0, &mut rng).to_vec();
    for i in 0..n {
        a[i * n + i] += 4.0;
    }
    let a = Tensor::from_vec(a, &[n, n]);
    let x = Tensor::<f64>::rand_uniform(&[n, 3], -2.0, 2.0, &mut rng);
    let got = a.solve(&a.matmul(&x));
    assert!(got.max_abs_diff(&x) < 1e-13, "{}", got.max_abs_diff(&x));
}

#[test]
fn solve_gradient_is_the_adjoint_by_hand() {
    // L = sum X with A, B as in `solve_by_hand`: dB = A^-T [1, 1] = [0.4, 0.2],
    // dA = -dB X^T = -[[0.32, 0.56], [0.16, 0.28]].
    let a = Tensor::<f64>::from_vec(vec![2.0, 1.0, 1.0, 3.0], &[2, 2]).requires_grad_();
    let b = Tensor::<f64>::from_vec(vec![3.0, 5.0], &[2, 1]).requires_grad_();
    let g = grad(&[a.solve(&b).sum_all()], &[a.clone(), b.clone()], false);
    assert_close(&g[0].to_vec(), &[-0.32, -0.56, -0.16, -0.28], 1e-15);
    assert_close(&g[1].to_vec(), &[0.4, 0.2], 1e-15);
}

#[test]
fn solve_gradients_of_first_and_second_order() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut a = Tensor::<f64>::rand_uniform(&[3, 3], -1.0, 1.0, &mut rng).to_vec();
    for i in 0..3 {
        a[i * 3 + i] += 3.0;
    }
    let a = Tensor::from_vec(a, &[3, 3]).requires_grad_();
    let b = Tensor::<f64>::rand_uniform(&[3, 2], -1.0, 1.0, &mut rng).requires_grad_();
    assert_gradients("solve", &|t: &[Tensor<f64>]| t[0].solve(&t[1]), &[a, b]);
    // R2D2's use: A = Z Z^T + lambda I built from differentiable ops.
    let z = Tensor::<f64>::rand_uniform(&[3, 4], -1.0, 1.0, &mut rng).requires_grad_();
    let y = Tensor::<f64>::rand_uniform(&[3, 2], 0.0, 1.0, &mut rng).requires_grad_();
    let ridge = |t: &[Tensor<f64>]| {
        let eye =
            Tensor::<f64>::from_vec(vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0], &[3, 3]);
        t[0].matmul_nt(&t[0]).add(&eye.mul_scalar(0.5)).solve(&t[1])
    };
    assert_gradients("ridge solve", &ridge, &[z, y]);
}

#[test]
fn singular_systems() {
    // Rank 1: the second pivot is exactly zero.
    let a = [1.0, 2.0, 2.0, 4.0];
    assert!(solve_f64(&a, 2, &[1.0, 2.0], 0.0).is_none());
    // A tiny pivot is refused only below `min_pivot`.
    let tiny = [1e-310, 0.0, 0.0, 1.0];
    assert!(solve_f64(&tiny, 2, &[1e-310, 1.0], 0.0).is_some());
    assert!(solve_f64(&tiny, 2, &[1e-310, 1.0], 1e-300).is_none());
    // NaN pivots are refused.
    assert!(solve_f64(&[f64::NAN], 1, &[1.0], 0.0).is_none());
    let r = std::panic::catch_unwind(|| {
        Tensor::<f64>::from_vec(a.to_vec(), &[2, 2]).solve(&Tensor::ones(&[2, 1]))
    });
    let msg = *r.unwrap_err().downcast::<String>().unwrap();
    assert!(
        msg.contains("solve: singular matrix of shape [2, 2]"),
        "{msg}"
    );
}

#[test]
#[should_panic(expected = "solve: want A [n, n] and B [n, m], got [2, 3] and [2, 1]")]
fn solve_refuses_a_non_square_matrix() {
    Tensor::<f64>::zeros(&[2, 3]).solve(&Tensor::zeros(&[2, 1]));
}

#[test]
fn vector_helpers_by_hand() {
    let (a, b, c) = (vec![3.0, 4.0], vec![-4.0, 3.0], vec![1.0, 1.0]);
    assert_eq!(dot(&a, &c), 7.0);
    assert_eq!(norm(&a), 5.0);
    assert_eq!(cosine(&a, &b), 0.0);
    assert_eq!(cosine(&a, &[6.0, 8.0]), 1.0);
    assert_eq!(cosine(&a, &[0.0, 0.0]), 0.0);
    assert_eq!(
        weighted_sum(&[a.clone(), b.clone()], &[2.0, -1.0]),
        vec![10.0, 5.0]
    );
    assert!(weighted_sum(&[], &[]).is_empty());
    // G = J J^T for the rows a, b, c.
    let g = gram(&[a, b, c]);
    assert_eq!(
        g,
        vec![
            vec![25.0, 0.0, 7.0],
            vec![0.0, 25.0, -1.0],
            vec![7.0, -1.0, 2.0]
        ]
    );
}

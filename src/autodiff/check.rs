//! Gradient checks against central finite differences, for tests of every op.
//!
//! `gradcheck` compares the directional derivative `<grad F(x), v>` from [`crate::grad`] with
//! `(F(x + e v) - F(x - e v)) / 2e`; `gradgradcheck` does the same for the gradient itself,
//! i.e. it checks the Hessian-vector product `d/dx <grad F(x), u>` (second order).
//! `F(x) = sum(w * f(x))` with a fixed random `w`, so every output element is exercised.

use crate::tensor::Tensor;
use rand::Rng;

/// The result of a check: the worst relative error over all directions.
#[derive(Debug, Clone, Copy)]
pub struct CheckReport {
    /// max over directions of |analytic - numeric| / max(1, |numeric|, |analytic|)
    pub max_error: f64,
}

fn weighted_sum(outs: &Tensor<f64>, w: &Tensor<f64>) -> Tensor<f64> {
    outs.mul(w).sum_all()
}

/// `x + eps d` for each `x` of `xs` and its direction `d` of `dirs`.
pub fn perturbed(xs: &[Tensor<f64>], dirs: &[Tensor<f64>], eps: f64) -> Vec<Tensor<f64>> {
    xs.iter()
        .zip(dirs)
        .map(|(x, d)| {
            let v: Vec<f64> = x
                .data()
                .iter()
                .zip(d.data())
                .map(|(a, b)| a + eps * b)
                .collect();
            Tensor::from_vec(v, x.shape())
        })
        .collect()
}

/// `sum_i <a_i, b_i>`: the inner product of two lists of tensors taken as one vector.
pub fn dot_all(a: &[Tensor<f64>], b: &[Tensor<f64>]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            x.data()
                .iter()
                .zip(y.data())
                .map(|(p, q)| p * q)
                .sum::<f64>()
        })
        .sum()
}

fn rel(a: f64, n: f64) -> f64 {
    (a - n).abs() / 1f64.max(a.abs()).max(n.abs())
}

/// Checks first derivatives of `f` at `xs` along `directions` random directions.
pub fn gradcheck(
    f: &dyn Fn(&[Tensor<f64>]) -> Tensor<f64>,
    xs: &[Tensor<f64>],
    directions: usize,
    rng: &mut impl Rng,
) -> CheckReport {
    let out0 = f(xs);
    let w = Tensor::<f64>::rand_uniform(out0.shape(), -1.0, 1.0, rng);
    let leaves: Vec<Tensor<f64>> = xs.iter().map(|x| x.detach().requires_grad_()).collect();
    let g = crate::grad(&[weighted_sum(&f(&leaves), &w)], &leaves, false);
    CheckReport {
        max_error: first_order_error(f, xs, &g, &w, directions, rng),
    }
}

/// The worst relative error, over `directions` random directions `v`, of `<g, v>` against the
/// central difference (step 1e-6) of `sum(w * f(x))` at `xs` along `v`.
fn first_order_error(
    f: &dyn Fn(&[Tensor<f64>]) -> Tensor<f64>,
    xs: &[Tensor<f64>],
    g: &[Tensor<f64>],
    w: &Tensor<f64>,
    directions: usize,
    rng: &mut impl Rng,
) -> f64 {
    let eps = 1e-6;
    let mut worst: f64 = 0.0;
    for _ in 0..directions {
        let dirs: Vec<Tensor<f64>> = xs
            .iter()
            .map(|x| Tensor::rand_uniform(x.shape(), -1.0, 1.0, rng))
            .collect();
        let analytic = dot_all(g, &dirs);
        let fp = weighted_sum(&f(&perturbed(xs, &dirs, eps)), w).item();
        let fm = weighted_sum(&f(&perturbed(xs, &dirs, -eps)), w).item();
        worst = worst.max(rel(analytic, (fp - fm) / (2.0 * eps)));
    }
    worst
}

/// Checks second derivatives of `f` at `xs`: for random `u`, the gradient of
/// `h(x) = <grad F(x), u>` (taken by differentiating the differentiable gradient) against
/// finite differences of `h`, after checking the recorded (`create_graph = true`) gradient
/// itself against finite differences of `F`. Also checks the derivative of the backward pass with respect to
/// the upstream weights `w` (the path MAML's inner gradient exercises for linear ops).
pub fn gradgradcheck(
    f: &dyn Fn(&[Tensor<f64>]) -> Tensor<f64>,
    xs: &[Tensor<f64>],
    directions: usize,
    rng: &mut impl Rng,
) -> CheckReport {
    let out0 = f(xs);
    let w0 = Tensor::<f64>::rand_uniform(out0.shape(), -1.0, 1.0, rng);
    let u: Vec<Tensor<f64>> = xs
        .iter()
        .map(|x| Tensor::rand_uniform(x.shape(), -1.0, 1.0, rng))
        .collect();
    // h(x, w) = <grad_x sum(w * f(x)), u>
    let h =
        |xs: &[Tensor<f64>], w: &Tensor<f64>, create: bool| -> (Tensor<f64>, Vec<Tensor<f64>>) {
            let leaves: Vec<Tensor<f64>> = xs.iter().map(|x| x.detach().requires_grad_()).collect();
            let w = if create {
                w.detach().requires_grad_()
            } else {
                w.detach()
            };
            let g = crate::grad(&[weighted_sum(&f(&leaves), &w)], &leaves, true);
            let hv = g
                .iter()
                .zip(&u)
                .map(|(a, b)| a.mul(b).sum_all())
                .reduce(|a, b| a.add(&b))
                .expect("at least one input");
            let mut wrt = leaves.clone();
            wrt.push(w);
            if create {
                let second = crate::grad(std::slice::from_ref(&hv), &wrt, false);
                (hv, second)
            } else {
                (hv, Vec::new())
            }
        };
    let (_, second) = h(xs, &w0, true);
    let eps = 1e-5;
    // The recorded first-order rule (the one MAML's inner loop uses) must itself agree with
    // finite differences: otherwise a wrong but smooth recorded rule would pass the check below.
    let leaves: Vec<Tensor<f64>> = xs.iter().map(|x| x.detach().requires_grad_()).collect();
    let recorded = crate::grad(&[weighted_sum(&f(&leaves), &w0)], &leaves, true);
    let mut worst = first_order_error(f, xs, &recorded, &w0, directions, rng);
    for _ in 0..directions {
        let dirs: Vec<Tensor<f64>> = xs
            .iter()
            .map(|x| Tensor::rand_uniform(x.shape(), -1.0, 1.0, rng))
            .collect();
        let dw = Tensor::<f64>::rand_uniform(w0.shape(), -1.0, 1.0, rng);
        let mut all_dirs = dirs.clone();
        all_dirs.push(dw.clone());
        let analytic = dot_all(&second, &all_dirs);
        let wp = perturbed(std::slice::from_ref(&w0), std::slice::from_ref(&dw), eps);
        let wm = perturbed(std::slice::from_ref(&w0), std::slice::from_ref(&dw), -eps);
        let hp = h(&perturbed(xs, &dirs, eps), &wp[0], false).0.item();
        let hm = h(&perturbed(xs, &dirs, -eps), &wm[0], false).0.item();
        worst = worst.max(rel(analytic, (hp - hm) / (2.0 * eps)));
    }
    CheckReport { max_error: worst }
}

/// Asserts that `f`'s first derivatives ([`gradcheck`], error < 1e-6) and second derivatives
/// ([`gradgradcheck`], error < 1e-5) at `xs` agree with finite differences along 5 random
/// directions each (seeded, so the check is reproducible); the panic message names `name`.
pub fn assert_gradients(name: &str, f: &dyn Fn(&[Tensor<f64>]) -> Tensor<f64>, xs: &[Tensor<f64>]) {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let g = gradcheck(f, xs, 5, &mut rng);
    assert!(
        g.max_error < 1e-6,
        "{name}: gradcheck error {}",
        g.max_error
    );
    let gg = gradgradcheck(f, xs, 5, &mut rng);
    assert!(
        gg.max_error < 1e-5,
        "{name}: gradgradcheck error {}",
        gg.max_error
    );
}

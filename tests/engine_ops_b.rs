//! Matrix products, linear layers, convolutions and pooling: gradient checks (first and second
//! order), values against naive references, and shape errors.

mod common;

use common::{check_each, check_each_on};
use metalearn::autodiff::check::{assert_gradients as check, perturbed};
use metalearn::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn rand(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::rand_uniform(shape, -1.0, 1.0, &mut ChaCha8Rng::seed_from_u64(seed))
}

fn assert_close(got: &Tensor<f64>, want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.numel(), want.len(), "{what}: size");
    for (i, (a, b)) in got.to_f64_vec().iter().zip(want).enumerate() {
        assert!(
            (a - b).abs() <= tol * (1.0 + b.abs()),
            "{what}: element {i}: {a} vs {b}"
        );
    }
}

fn naive_matmul(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
        }
    }
    c
}

fn transpose(a: &[f64], r: usize, c: usize) -> Vec<f64> {
    let mut t = vec![0.0; r * c];
    for i in 0..r {
        for j in 0..c {
            t[j * r + i] = a[i * c + j];
        }
    }
    t
}

/// Direct 6-loop cross-correlation (N, C, H, W), (O, C, kh, kw).
fn naive_conv(x: &Tensor<f64>, w: &Tensor<f64>, s: usize, p: usize) -> Vec<f64> {
    let (xs, ws) = (x.shape(), w.shape());
    let (n, c, h, wd) = (xs[0], xs[1], xs[2], xs[3]);
    let (o, kh, kw) = (ws[0], ws[2], ws[3]);
    let ho = (h + 2 * p - kh) / s + 1;
    let wo = (wd + 2 * p - kw) / s + 1;
    let (xd, wdat) = (x.data(), w.data());
    let mut out = vec![0.0; n * o * ho * wo];
    for b in 0..n {
        for oc in 0..o {
            for i in 0..ho {
                for j in 0..wo {
                    let mut acc = 0.0;
                    for ic in 0..c {
                        for u in 0..kh {
                            for v in 0..kw {
                                let y = (i * s + u) as isize - p as isize;
                                let xx = (j * s + v) as isize - p as isize;
                                if y >= 0 && xx >= 0 && (y as usize) < h && (xx as usize) < wd {
                                    acc += wdat[((oc * c + ic) * kh + u) * kw + v]
                                        * xd[((b * c + ic) * h + y as usize) * wd + xx as usize];
                                }
                            }
                        }
                    }
                    out[((b * o + oc) * ho + i) * wo + j] = acc;
                }
            }
        }
    }
    out
}

#[test]
fn matmul_2d_gradients() {
    let a = rand(&[3, 4], 1);
    let b = rand(&[4, 5], 2);
    check_each_on(
        &[a.clone(), b.clone()],
        &[
            ("matmul", &|x| x[0].matmul(&x[1])),
            ("matmul tanh", &|x| x[0].matmul(&x[1]).tanh()),
        ],
    );
    check(
        "matmul self",
        &|x| x[0].matmul(&x[0]).tanh(),
        &[rand(&[4, 4], 3)],
    );
    let bt = rand(&[5, 4], 4);
    check(
        "matmul_nt",
        &|x| x[0].matmul_nt(&x[1]).tanh(),
        &[a.clone(), bt],
    );
    let at = rand(&[4, 3], 5);
    check("matmul_tn", &|x| x[0].matmul_tn(&x[1]).tanh(), &[at, b]);
}

#[test]
fn batched_matmul_gradients() {
    let a = rand(&[2, 3, 4], 6);
    let b = rand(&[2, 4, 5], 7);
    check(
        "bmm",
        &|x| x[0].matmul(&x[1]).tanh(),
        &[a.clone(), b.clone()],
    );
    check(
        "bmm broadcast lhs",
        &|x| x[0].matmul(&x[1]).tanh(),
        &[rand(&[1, 3, 4], 8), b.clone()],
    );
    check(
        "bmm broadcast rhs",
        &|x| x[0].matmul(&x[1]).tanh(),
        &[a.clone(), rand(&[1, 4, 5], 9)],
    );
    check(
        "3-D @ 2-D",
        &|x| x[0].matmul(&x[1]).tanh(),
        &[a, rand(&[4, 5], 10)],
    );
    check(
        "bmm_nt",
        &|x| x[0].matmul_nt(&x[1]).tanh(),
        &[rand(&[2, 3, 4], 12), rand(&[2, 5, 4], 13)],
    );
}

#[test]
fn linear_gradients_and_shapes() {
    let x = rand(&[5, 3], 14);
    let w = rand(&[4, 3], 15);
    let b = rand(&[4], 16);
    check(
        "linear bias",
        &|t| t[0].linear(&t[1], Some(&t[2])).tanh(),
        &[x.clone(), w.clone(), b.clone()],
    );
    check(
        "linear",
        &|t| t[0].linear(&t[1], None).tanh(),
        &[x.clone(), w.clone()],
    );
    // value against x @ W^T + b
    let y = x.linear(&w, Some(&b));
    let mut want = naive_matmul(x.data(), &transpose(w.data(), 4, 3), 5, 3, 4);
    for (i, v) in want.iter_mut().enumerate() {
        *v += b.data()[i % 4];
    }
    assert_close(&y, &want, 1e-12, "linear value");
    assert_eq!(rand(&[3], 17).linear(&w, Some(&b)).shape(), &[4]);
    assert_eq!(rand(&[2, 5, 3], 18).linear(&w, None).shape(), &[2, 5, 4]);
    check(
        "linear 3-D",
        &|t| t[0].linear(&t[1], Some(&t[2])).tanh(),
        &[rand(&[2, 2, 3], 19), w, b],
    );
}

#[test]
fn matmul_values_large_and_transposed() {
    // sizes above the small-product threshold go through the gemm crate
    for &(m, k, n) in &[(1, 1, 1), (10, 40, 40), (33, 65, 47), (64, 576, 196)] {
        let a = rand(&[m, k], 20);
        let b = rand(&[k, n], 21);
        let want = naive_matmul(a.data(), b.data(), m, k, n);
        assert_close(&a.matmul(&b), &want, 1e-12, "matmul");
        let at = Tensor::from_vec(transpose(a.data(), m, k), &[k, m]);
        let bt = Tensor::from_vec(transpose(b.data(), k, n), &[n, k]);
        assert_close(&at.matmul_tn(&b), &want, 1e-12, "matmul_tn");
        assert_close(&a.matmul_nt(&bt), &want, 1e-12, "matmul_nt");
        // f32 against f64
        let c32 = a.cast::<f32>().matmul(&b.cast::<f32>()).cast::<f64>();
        assert_close(&c32, &want, 1e-4, "matmul f32");
    }
    let a = rand(&[3, 20, 30], 22);
    let b = rand(&[1, 30, 25], 23);
    let c = a.matmul(&b);
    assert_eq!(c.shape(), &[3, 20, 25]);
    for p in 0..3 {
        let want = naive_matmul(&a.data()[p * 600..(p + 1) * 600], b.data(), 20, 30, 25);
        assert_close(
            &Tensor::from_vec(c.data()[p * 500..(p + 1) * 500].to_vec(), &[500]),
            &want,
            1e-12,
            "bmm",
        );
    }
}

#[test]
fn conv2d_stride1_pad1_gradients() {
    let x = rand(&[2, 3, 7, 7], 30);
    let w = rand(&[4, 3, 3, 3], 31);
    let b = rand(&[4], 32);
    check(
        "conv2d s1 p1",
        &|t| t[0].conv2d(&t[1], Some(&t[2]), 1, 1).tanh(),
        &[x.clone(), w.clone(), b],
    );
    check(
        "conv2d s1 p1 5x5",
        &|t| t[0].conv2d(&t[1], None, 1, 1).tanh(),
        &[rand(&[1, 2, 5, 5], 33), rand(&[3, 2, 3, 3], 34)],
    );
    check(
        "conv2d s1 p0",
        &|t| t[0].conv2d(&t[1], None, 1, 0).tanh(),
        &[x, w],
    );
}

#[test]
fn conv2d_stride2_pad1_gradients() {
    let x = rand(&[2, 2, 7, 7], 40);
    let w = rand(&[3, 2, 3, 3], 41);
    let b = rand(&[3], 42);
    check(
        "conv2d s2 p1 7x7",
        &|t| t[0].conv2d(&t[1], Some(&t[2]), 2, 1).tanh(),
        &[x, w, b.clone()],
    );
    check(
        "conv2d s2 p1 5x5",
        &|t| t[0].conv2d(&t[1], Some(&t[2]), 2, 1).tanh(),
        &[rand(&[1, 2, 5, 5], 43), rand(&[3, 2, 3, 3], 44), b],
    );
    check(
        "conv2d 2x3 kernel s2 p2",
        &|t| t[0].conv2d(&t[1], None, 2, 2).tanh(),
        &[rand(&[2, 2, 6, 5], 45), rand(&[2, 2, 2, 3], 46)],
    );
}

#[test]
fn conv2d_adjoint_ops_gradients() {
    // (input channels, output channels, size, stride, padding). 3 input channels: the input
    // gradient by col2im; 16 at stride 1: as a forward convolution with the turned kernel
    // (padding 1 and 0); 16 -> 16 channels (outputs of 4x4 and larger): forward, input
    // gradient and weight gradient by Winograd F(2x2, 3x3).
    for &(c, o, size, s, p) in &[
        (3usize, 4usize, 7usize, 1usize, 1usize),
        (3, 4, 7, 2, 1),
        (16, 4, 7, 1, 1),
        (16, 4, 7, 1, 0),
        (16, 16, 9, 1, 1),
    ] {
        let xs = [2usize, c, size, size];
        let ws = [o, c, 3, 3];
        let ho = (size + 2 * p - 3) / s + 1;
        let g = rand(&[2, o, ho, ho], 50);
        let w = rand(&ws, 51);
        let x = rand(&xs, 52);
        check(
            "conv2d",
            &|t| t[0].conv2d(&t[1], None, s, p).tanh(),
            &[x.clone(), w.clone()],
        );
        check(
            "conv2d_input_grad",
            &|t| t[0].conv2d_input_grad(&t[1], &xs, s, p).tanh(),
            &[g.clone(), w.clone()],
        );
        check(
            "conv2d_weight_grad",
            &|t| t[0].conv2d_weight_grad(&t[1], &ws, s, p).tanh(),
            &[x.clone(), g.clone()],
        );
        // adjoint identities: <g, conv(x, W)> = <input_grad(g, W), x> = <weight_grad(x, g), W>
        let dot = |a: &Tensor<f64>, b: &Tensor<f64>| {
            a.data()
                .iter()
                .zip(b.data())
                .map(|(p, q)| p * q)
                .sum::<f64>()
        };
        let lhs = dot(&g, &x.conv2d(&w, None, s, p));
        let r1 = dot(&g.conv2d_input_grad(&w, &xs, s, p), &x);
        let r2 = dot(&x.conv2d_weight_grad(&g, &ws, s, p), &w);
        assert!(
            (lhs - r1).abs() < 1e-10 && (lhs - r2).abs() < 1e-10,
            "adjoint: {lhs} {r1} {r2}"
        );
    }
}

#[test]
fn conv2d_second_order_through_a_small_network() {
    // MAML-like: one inner step on w, then a loss of the adapted weights, differentiated in w.
    let f = |t: &[Tensor<f64>]| {
        let x = &t[0];
        // finite differences call f on plain tensors: make w differentiable for the inner step
        let w = &if t[1].requires_grad() {
            t[1].clone()
        } else {
            t[1].detach().requires_grad_()
        };
        let inner = x
            .conv2d(w, None, 1, 1)
            .tanh()
            .max_pool2d(2, 2)
            .square()
            .sum_all();
        let g = metalearn::grad(&[inner], std::slice::from_ref(w), true);
        let w2 = w.sub(&g[0].mul_scalar(0.1));
        x.conv2d(&w2, None, 2, 1).tanh()
    };
    check(
        "conv inner step",
        &f,
        &[rand(&[2, 2, 5, 5], 60), rand(&[3, 2, 3, 3], 61)],
    );
}

#[test]
fn conv2d_hand_computed_values() {
    let x = Tensor::<f64>::from_vec((1..=9).map(f64::from).collect(), &[1, 1, 3, 3]);
    let lap = Tensor::<f64>::from_vec(
        vec![0.0, 1.0, 0.0, 1.0, -4.0, 1.0, 0.0, 1.0, 0.0],
        &[1, 1, 3, 3],
    );
    let y = x.conv2d(&lap, None, 1, 1);
    assert_eq!(y.shape(), &[1, 1, 3, 3]);
    assert_eq!(
        y.to_vec(),
        vec![2.0, 1.0, -4.0, -3.0, 0.0, -7.0, -16.0, -11.0, -22.0]
    );
    let b = Tensor::<f64>::from_vec(vec![0.5], &[1]);
    assert_eq!(x.conv2d(&lap, Some(&b), 1, 0).to_vec(), vec![0.5]);
    assert_eq!(
        x.conv2d(&lap, None, 2, 1).to_vec(),
        vec![2.0, -4.0, -16.0, -22.0]
    );
    // an asymmetric kernel: cross-correlation, not flipped
    let k = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[1, 1, 2, 2]);
    assert_eq!(
        x.conv2d(&k, None, 1, 0).to_vec(),
        vec![37.0, 47.0, 67.0, 77.0]
    );
}

#[test]
fn conv2d_values_against_naive_f64_and_f32() {
    // (x shape, w shape, stride, pad): the per-image path, the batched (grouped) path for small
    // outputs, strides, non-square kernels, and sizes large enough for the gemm crate.
    let cases: &[([usize; 4], [usize; 4], usize, usize)] = &[
        ([3, 8, 14, 14], [16, 8, 3, 3], 1, 1),
        ([40, 4, 3, 3], [8, 4, 3, 3], 1, 1),
        ([7, 5, 7, 7], [6, 5, 3, 3], 2, 1),
        ([2, 3, 28, 28], [8, 3, 3, 3], 1, 1),
        ([5, 2, 9, 8], [3, 2, 2, 3], 2, 0),
        // this one and the next two by Winograd F(2x2, 3x3): odd and even outputs, padding
        // 1 and 0
        ([30, 16, 7, 7], [32, 16, 3, 3], 1, 1),
        ([3, 16, 9, 10], [16, 16, 3, 3], 1, 1),
        ([2, 16, 10, 11], [17, 16, 3, 3], 1, 0),
    ];
    for (k, &(xs, ws, s, p)) in cases.iter().enumerate() {
        let x = rand(&xs, 70 + k as u64);
        let w = rand(&ws, 80 + k as u64);
        let b = rand(&[ws[0]], 90 + k as u64);
        let y = check_conv2d_values(&x, &w, &b, (s, p));
        check_conv2d_adjoints(&x, &w, y.shape(), (s, p));
    }
}

/// `conv2d` (stride and padding `sp`) against [`naive_conv`]: in f64 to 1e-12, in f32 to 1e-5
/// of the largest output, and with a bias. Returns the f64 output.
fn check_conv2d_values(
    x: &Tensor<f64>,
    w: &Tensor<f64>,
    b: &Tensor<f64>,
    (s, p): (usize, usize),
) -> Tensor<f64> {
    let (xs, ws) = (x.shape(), w.shape());
    let want = naive_conv(x, w, s, p);
    let y = x.conv2d(w, None, s, p);
    assert_close(&y, &want, 1e-12, "conv2d f64");
    let y32 = x
        .cast::<f32>()
        .conv2d(&w.cast::<f32>(), None, s, p)
        .cast::<f64>();
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let err = y32
        .to_f64_vec()
        .iter()
        .zip(&want)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        err <= 1e-5 * scale,
        "conv2d f32 vs f64: max error {err} for max |y| {scale}"
    );
    // bias
    let yb = x.conv2d(w, Some(b), s, p);
    let hw = yb.numel() / (xs[0] * ws[0]);
    let wantb: Vec<f64> = want
        .iter()
        .enumerate()
        .map(|(i, v)| v + b.data()[(i / hw) % ws[0]])
        .collect();
    assert_close(&yb, &wantb, 1e-12, "conv2d bias");
    y
}

/// The adjoints `conv2d_input_grad` and `conv2d_weight_grad` against autodiff of
/// `sum(conv2d(x, w) * g)` for a random `g` (exactly), and against central differences of the
/// naive convolution along a random direction.
fn check_conv2d_adjoints(
    x: &Tensor<f64>,
    w: &Tensor<f64>,
    y_shape: &[usize],
    (s, p): (usize, usize),
) {
    let (xs, ws) = (x.shape().to_vec(), w.shape().to_vec());
    let g = rand(y_shape, 99);
    let dx = g.conv2d_input_grad(w, &xs, s, p);
    let dw = x.conv2d_weight_grad(&g, &ws, s, p);
    let (lx, lw) = {
        let xl = x.detach().requires_grad_();
        let wl = w.detach().requires_grad_();
        let l = xl.conv2d(&wl, None, s, p).mul(&g).sum_all();
        let gs = metalearn::grad(&[l], &[xl, wl], false);
        (gs[0].clone(), gs[1].clone())
    };
    assert_eq!(dx.to_vec(), lx.to_vec());
    assert_eq!(dw.to_vec(), lw.to_vec());
    // numerical: finite difference of the loss along one random direction
    let d = rand(&xs, 100);
    let num = central_difference(|xd| dot(&naive_conv(xd, w, s, p), g.data()), x, &d);
    assert_matches_difference("conv2d_input_grad", &dx, &d, num);
    let dwd = rand(&ws, 101);
    let num = central_difference(|wd| dot(&naive_conv(x, wd, s, p), g.data()), w, &dwd);
    assert_matches_difference("conv2d_weight_grad", &dw, &dwd, num);
}

/// `sum_i a_i b_i`.
fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(p, q)| p * q).sum::<f64>()
}

/// Asserts that the derivative along `d` of the gradient `grad` (`grad . d`) is within
/// `1e-6 (1 + |numeric|)` of the central difference `numeric`.
fn assert_matches_difference(what: &str, grad: &Tensor<f64>, d: &Tensor<f64>, numeric: f64) {
    let ana = dot(grad.data(), d.data());
    assert!(
        (numeric - ana).abs() < 1e-6 * (1.0 + numeric.abs()),
        "{what}: {ana} vs {numeric}"
    );
}

/// `(f(t + h d) - f(t - h d)) / 2h` with `h = 1e-6`.
fn central_difference(f: impl Fn(&Tensor<f64>) -> f64, t: &Tensor<f64>, d: &Tensor<f64>) -> f64 {
    let (t, d) = (std::slice::from_ref(t), std::slice::from_ref(d));
    let shifted = |step: f64| perturbed(t, d, step).remove(0);
    (f(&shifted(1e-6)) - f(&shifted(-1e-6))) / 2e-6
}

/// Distinct values (a shuffled ramp, gaps 0.05), so finite differences never cross a tie.
fn distinct(shape: &[usize], seed: u64) -> Tensor<f64> {
    use rand::seq::SliceRandom;
    let n: usize = shape.iter().product();
    let mut v: Vec<f64> = (0..n).map(|i| i as f64 * 0.05 - 1.0).collect();
    v.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    Tensor::from_vec(v, shape)
}

#[test]
fn max_pool2d_gradients_and_values() {
    let x = distinct(&[2, 2, 7, 7], 110);
    check_each(
        &x,
        &[
            ("max_pool2d 2/2", &|t| t[0].max_pool2d(2, 2).square()),
            ("max_pool2d 3/2", &|t| t[0].max_pool2d(3, 2).square()),
            ("max_pool2d 3/1", &|t| t[0].max_pool2d(3, 1).tanh()),
        ],
    );
    let v = Tensor::<f64>::from_vec((0..16).map(f64::from).collect(), &[1, 1, 4, 4]);
    assert_eq!(v.max_pool2d(2, 2).to_vec(), vec![5.0, 7.0, 13.0, 15.0]);
    assert_eq!(v.max_pool2d(3, 1).to_vec(), vec![10.0, 11.0, 14.0, 15.0]);
}

#[test]
fn max_pool2d_floor_mode_ignores_last_row_and_column() {
    let x = distinct(&[1, 2, 7, 7], 120).requires_grad_();
    let y = x.max_pool2d(2, 2);
    assert_eq!(y.shape(), &[1, 2, 3, 3]);
    let g = metalearn::grad(&[y.sum_all()], std::slice::from_ref(&x), false);
    let gd = g[0].to_vec();
    for c in 0..2 {
        for i in 0..7 {
            assert_eq!(gd[c * 49 + 6 * 7 + i], 0.0, "last row");
            assert_eq!(gd[c * 49 + i * 7 + 6], 0.0, "last column");
        }
    }
    // exactly one 1 per window
    assert_eq!(gd.iter().sum::<f64>(), 18.0);
    // ties: the first maximum in row-major order gets the gradient
    let t = Tensor::<f64>::from_vec(vec![1.0, 3.0, 3.0, 3.0], &[1, 1, 2, 2]).requires_grad_();
    let g = metalearn::grad(
        &[t.max_pool2d(2, 2).sum_all()],
        std::slice::from_ref(&t),
        false,
    );
    assert_eq!(g[0].to_vec(), vec![0.0, 1.0, 0.0, 0.0]);
}

#[test]
fn avg_pool2d_gradients_and_values() {
    let x = rand(&[2, 2, 7, 7], 130);
    check_each(
        &x,
        &[
            ("avg_pool2d 2/2", &|t| t[0].avg_pool2d(2, 2).tanh()),
            ("avg_pool2d 3/2", &|t| t[0].avg_pool2d(3, 2).tanh()),
        ],
    );
    let g = rand(&[2, 2, 3, 3], 131);
    check(
        "avg_pool2d_backward",
        &|t| t[0].avg_pool2d_backward(&[2, 2, 7, 7], 2, 2).tanh(),
        &[g],
    );
    let v = Tensor::<f64>::from_vec((0..16).map(f64::from).collect(), &[1, 1, 4, 4]);
    assert_eq!(v.avg_pool2d(2, 2).to_vec(), vec![2.5, 4.5, 10.5, 12.5]);
    let xl = x.requires_grad_();
    let g = metalearn::grad(
        &[xl.avg_pool2d(2, 2).sum_all()],
        std::slice::from_ref(&xl),
        false,
    );
    assert_eq!(g[0].to_vec()[6], 0.0);
    assert_eq!(g[0].to_vec()[0], 0.25);
}

#[test]
fn first_layer_input_gradient_is_skipped() {
    // data input without requires_grad: only the weight gradient is computed
    let x = rand(&[2, 1, 5, 5], 140);
    let w = rand(&[3, 1, 3, 3], 141).requires_grad_();
    let y = x.conv2d(&w, None, 1, 1).sum_all();
    let g = metalearn::grad(&[y], std::slice::from_ref(&w), false);
    assert_eq!(g[0].shape(), &[3, 1, 3, 3]);
}

#[test]
#[should_panic(
    expected = "conv2d: input channels differ from weight channels: input [1, 3, 5, 5], weight [2, 4, 3, 3]"
)]
fn conv2d_channel_mismatch_panics() {
    let _ = Tensor::<f32>::zeros(&[1, 3, 5, 5]).conv2d(&Tensor::zeros(&[2, 4, 3, 3]), None, 1, 1);
}

#[test]
#[should_panic(expected = "conv2d: bias [3] does not fit weight [2, 3, 3, 3]")]
fn conv2d_bias_mismatch_panics() {
    let _ = Tensor::<f32>::zeros(&[1, 3, 5, 5]).conv2d(
        &Tensor::zeros(&[2, 3, 3, 3]),
        Some(&Tensor::zeros(&[3])),
        1,
        1,
    );
}

#[test]
#[should_panic(expected = "matmul: inner dimensions differ: shapes [2, 3] and [4, 5]")]
fn matmul_inner_mismatch_panics() {
    let _ = Tensor::<f32>::zeros(&[2, 3]).matmul(&Tensor::zeros(&[4, 5]));
}

#[test]
#[should_panic(expected = "matmul: batch sizes differ: shapes [2, 3, 4] and [3, 4, 5]")]
fn matmul_batch_mismatch_panics() {
    let _ = Tensor::<f32>::zeros(&[2, 3, 4]).matmul(&Tensor::zeros(&[3, 4, 5]));
}

#[test]
#[should_panic(expected = "linear: input [5, 3], weight [4, 2] and bias None do not fit")]
fn linear_mismatch_panics() {
    let _ = Tensor::<f32>::zeros(&[5, 3]).linear(&Tensor::zeros(&[4, 2]), None);
}

#[test]
#[should_panic(
    expected = "max_pool2d: needs a [N, C, H, W] input with H, W >= kernel >= 1 and stride >= 1: input [1, 1, 1, 1], kernel 2"
)]
fn max_pool_too_small_panics() {
    let _ = Tensor::<f32>::zeros(&[1, 1, 1, 1]).max_pool2d(2, 2);
}

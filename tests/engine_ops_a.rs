//! Gradient checks (first and second order) and value tests for the layout, index and
//! functional ops: permute, concat, narrow, index_select, gather, max, softmax, losses and
//! batch normalisation.

mod common;

use common::{check_each, check_each_on};
use metalearn::autodiff::check::assert_gradients as check;
use metalearn::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn rand(shape: &[usize], lo: f64, hi: f64, seed: u64) -> Tensor<f64> {
    Tensor::rand_uniform(shape, lo, hi, &mut ChaCha8Rng::seed_from_u64(seed))
}

fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
}

// ---------------------------------------------------------------------------------------------
// layout

#[test]
fn permute_and_transpose() {
    let x = rand(&[2, 3, 4], -1.0, 1.0, 1);
    check_each(
        &x,
        &[
            ("permute 3-D", &|x| x[0].permute(&[2, 0, 1]).square()),
            ("permute 3-D (1,2,0)", &|x| {
                x[0].permute(&[1, 2, 0])
                    .mul(&x[0].permute(&[1, 2, 0]).exp())
            }),
            ("transpose", &|x| x[0].transpose(0, 2).square()),
        ],
    );
    // values
    let a = Tensor::<f64>::from_vec((0..24).map(f64::from).collect(), &[2, 3, 4]);
    let p = a.permute(&[2, 0, 1]);
    assert_eq!(p.shape(), &[4, 2, 3]);
    for i in 0..4 {
        for j in 0..2 {
            for k in 0..3 {
                assert_eq!(p.data()[i * 6 + j * 3 + k], a.data()[j * 12 + k * 4 + i]);
            }
        }
    }
    let m = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    assert_eq!(
        m.transpose(0, 1).to_vec(),
        vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]
    );
    assert_eq!(m.transpose(0, 1).transpose(1, 0).to_vec(), m.to_vec());
}

#[test]
fn concat_stack_narrow() {
    let a = rand(&[2, 3, 2], -1.0, 1.0, 2);
    let b = rand(&[2, 1, 2], -1.0, 1.0, 3);
    let c = rand(&[2, 4, 2], -1.0, 1.0, 4);
    check(
        "concat axis 1",
        &|x| Tensor::concat(&[x[0].clone(), x[1].clone(), x[2].clone()], 1).square(),
        &[a.clone(), b.clone(), c.clone()],
    );
    check(
        "concat axis 0",
        &|x| Tensor::concat(&[x[0].clone(), x[1].clone()], 0).tanh(),
        &[a.clone(), rand(&[1, 3, 2], -1.0, 1.0, 5)],
    );
    check(
        "concat same tensor twice",
        &|x| Tensor::concat(&[x[0].clone(), x[0].clone()], 2).square(),
        std::slice::from_ref(&a),
    );
    check(
        "stack",
        &|x| Tensor::stack(&[x[0].clone(), x[1].clone()], 1).square(),
        &[a.clone(), rand(&[2, 3, 2], -1.0, 1.0, 6)],
    );
    let x = rand(&[3, 5, 2], -1.0, 1.0, 7);
    check_each(
        &x,
        &[
            ("narrow axis 1", &|x| x[0].narrow(1, 1, 3).square()),
            ("narrow axis 0", &|x| x[0].narrow(0, 2, 1).exp()),
            ("narrow + concat", &|x| {
                Tensor::concat(&[x[0].narrow(1, 3, 2), x[0].narrow(1, 0, 3)], 1).mul(&x[0])
            }),
            ("pad_narrow", &|x| x[0].pad_narrow(1, 2, 7).square()),
            ("unsqueeze/squeeze", &|x| {
                x[0].unsqueeze(1).squeeze(1).unsqueeze(3).square()
            }),
        ],
    );

    // values
    let p = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
    let q = Tensor::<f64>::from_vec(vec![5.0, 6.0], &[2, 1]);
    let cat = Tensor::concat(&[p.clone(), q.clone()], 1);
    assert_eq!(cat.shape(), &[2, 3]);
    assert_eq!(cat.to_vec(), vec![1.0, 2.0, 5.0, 3.0, 4.0, 6.0]);
    assert_eq!(cat.narrow(1, 1, 2).to_vec(), vec![2.0, 5.0, 4.0, 6.0]);
    assert_eq!(
        q.pad_narrow(1, 1, 3).to_vec(),
        vec![0.0, 5.0, 0.0, 0.0, 6.0, 0.0]
    );
    let st = Tensor::stack(&[p.clone(), p.mul_scalar(10.0)], 0);
    assert_eq!(st.shape(), &[2, 2, 2]);
    assert_eq!(
        st.to_vec(),
        vec![1.0, 2.0, 3.0, 4.0, 10.0, 20.0, 30.0, 40.0]
    );
    let st1 = Tensor::stack(&[p.clone(), p.mul_scalar(10.0)], 2);
    assert_eq!(
        st1.to_vec(),
        vec![1.0, 10.0, 2.0, 20.0, 3.0, 30.0, 4.0, 40.0]
    );
    assert_eq!(p.unsqueeze(0).shape(), &[1, 2, 2]);
    assert_eq!(p.unsqueeze(2).squeeze(2).shape(), &[2, 2]);

    // gradient of concat to each part, by hand
    let pl = p.requires_grad_();
    let ql = q.requires_grad_();
    let w = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    let y = Tensor::concat(&[pl.clone(), ql.clone()], 1)
        .mul(&w)
        .sum_all();
    let g = metalearn::grad(&[y], &[pl, ql], false);
    assert_eq!(g[0].to_vec(), vec![1.0, 2.0, 4.0, 5.0]);
    assert_eq!(g[1].to_vec(), vec![3.0, 6.0]);
}

// ---------------------------------------------------------------------------------------------
// index

#[test]
fn index_select_and_gather_with_repeats() {
    let x = rand(&[4, 3, 2], -1.0, 1.0, 8);
    check_each(
        &x,
        &[
            ("index_select axis 0 repeated", &|x| {
                x[0].index_select(0, &[2, 0, 2, 3, 2]).square()
            }),
            ("index_select axis 1 repeated", &|x| {
                x[0].index_select(1, &[1, 1, 0]).exp()
            }),
            ("index_select axis 2", &|x| {
                x[0].index_select(2, &[1, 0, 1, 1]).square()
            }),
        ],
    );
    let g = rand(&[3, 2], -1.0, 1.0, 9);
    check(
        "index_add_zeros repeated",
        &|x| x[0].index_add_zeros(0, &[3, 1, 3], 5).square(),
        std::slice::from_ref(&g),
    );

    // gather along axis 1 with repeats, smaller index shape along axis 0
    let idx1 = [2, 2, 0, 1, 1, 1];
    check(
        "gather axis 1",
        &|x| x[0].gather(1, &idx1, &[2, 3, 1]).square(),
        std::slice::from_ref(&x),
    );
    let idx0 = [3, 3, 0, 3, 1, 2, 0, 0, 0, 3, 3, 3];
    check(
        "gather axis 0",
        &|x| {
            x[0].gather(0, &idx0, &[2, 3, 2])
                .mul(&x[0].gather(0, &idx0, &[2, 3, 2]).tanh())
        },
        std::slice::from_ref(&x),
    );

    // values
    let m = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    assert_eq!(
        m.index_select(1, &[2, 0, 2]).to_vec(),
        vec![3.0, 1.0, 3.0, 6.0, 4.0, 6.0]
    );
    assert_eq!(
        m.index_select(0, &[1, 1]).to_vec(),
        vec![4.0, 5.0, 6.0, 4.0, 5.0, 6.0]
    );
    // torch.gather(m, 1, [[0, 0], [1, 0]]) = [[1, 1], [5, 4]]
    assert_eq!(
        m.gather(1, &[0, 0, 1, 0], &[2, 2]).to_vec(),
        vec![1.0, 1.0, 5.0, 4.0]
    );
    // torch.gather(m, 0, [[1, 0, 1]]) = [[4, 2, 6]]
    assert_eq!(
        m.gather(0, &[1, 0, 1], &[1, 3]).to_vec(),
        vec![4.0, 2.0, 6.0]
    );
    let v = Tensor::<f64>::from_vec(vec![1.0, 2.0], &[2, 1]);
    assert_eq!(
        v.index_add_zeros(0, &[2, 2], 3).to_vec(),
        vec![0.0, 0.0, 3.0]
    );

    // repeated rows: gradient counts each use
    let ml = m.clone().requires_grad_();
    let y = ml.index_select(0, &[1, 1, 0]).sum_all();
    let g = metalearn::grad(&[y], std::slice::from_ref(&ml), false);
    assert_eq!(g[0].to_vec(), vec![1.0, 1.0, 1.0, 2.0, 2.0, 2.0]);
}

#[test]
fn max_and_argmax() {
    // distinct values (random), well separated enough for finite differences
    let x = rand(&[3, 4, 5], -1.0, 1.0, 10);
    check_each(
        &x,
        &[
            ("max_axis 1", &|x| x[0].max_axis(1, false).square()),
            ("max_axis -1 keepdim", &|x| {
                x[0].max_axis(-1, true).mul(&x[0])
            }),
            ("max_axis 0", &|x| x[0].max_axis(0, false).exp()),
            ("max_all", &|x| x[0].max_all().square().mul(&x[0].sum_all())),
        ],
    );

    let m = Tensor::<f64>::from_vec(vec![1.0, 7.0, 3.0, 9.0, 2.0, 9.0], &[2, 3]);
    assert_eq!(m.max_axis(1, false).to_vec(), vec![7.0, 9.0]);
    assert_eq!(m.max_axis(0, true).shape(), &[1, 3]);
    assert_eq!(m.max_axis(0, true).to_vec(), vec![9.0, 7.0, 9.0]);
    assert_eq!(m.max_all().item(), 9.0);
    assert_eq!(m.max_all().shape(), &[] as &[usize]);
    assert_eq!(m.argmax_axis(1), vec![1, 0]);
    assert_eq!(m.argmax_axis(-2), vec![1, 0, 1]);
    // ties: the gradient goes to the first arg-max only
    let ml = m.clone().requires_grad_();
    let g = metalearn::grad(
        &[ml.max_axis(1, false).sum_all()],
        std::slice::from_ref(&ml),
        false,
    );
    assert_eq!(g[0].to_vec(), vec![0.0, 1.0, 0.0, 1.0, 0.0, 0.0]);
    let g = metalearn::grad(&[ml.max_all()], std::slice::from_ref(&ml), false);
    assert_eq!(g[0].to_vec(), vec![0.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
}

// ---------------------------------------------------------------------------------------------
// softmax and losses

#[test]
fn softmax_and_log_softmax() {
    let x = rand(&[3, 5], -2.0, 2.0, 12);
    check_each(
        &x,
        &[
            ("softmax -1", &|x| x[0].softmax(-1)),
            ("log_softmax -1", &|x| x[0].log_softmax(-1)),
        ],
    );
    let x3 = rand(&[2, 4, 3], -2.0, 2.0, 13);
    check_each(
        &x3,
        &[
            ("softmax axis 1 of 3-D", &|x| x[0].softmax(1)),
            ("log_softmax axis 0 of 3-D", &|x| x[0].log_softmax(0)),
        ],
    );
    check(
        "softmax composed",
        &|x| x[0].softmax(-1).mul(&x[0]).log_softmax(0),
        std::slice::from_ref(&x),
    );

    // values: rows sum to 1, exp(log_softmax) == softmax, stable for huge logits
    let s = x3.softmax(1);
    for o in 0..2 {
        for i in 0..3 {
            let t: f64 = (0..4).map(|j| s.data()[o * 12 + j * 3 + i]).sum();
            assert!((t - 1.0).abs() < 1e-12);
        }
    }
    assert!(x3.log_softmax(1).exp().max_abs_diff(&s) < 1e-12);
    let big = Tensor::<f64>::from_vec(vec![1000.0, 1000.0, 0.0, -1000.0], &[1, 4]);
    let sb = big.softmax(-1).to_vec();
    assert!(close(&sb, &[0.5, 0.5, 0.0, 0.0], 1e-12));
    let lb = big.log_softmax(-1).to_vec();
    assert!((lb[0] + 2f64.ln()).abs() < 1e-12 && lb.iter().all(|v| v.is_finite()));
    let f = Tensor::<f32>::from_vec(vec![1.0, 2.0, 3.0], &[1, 3]).softmax(-1);
    assert!((f.data().iter().sum::<f32>() - 1.0).abs() < 1e-6);
}

#[test]
fn cross_entropy_grads_and_values() {
    let z = rand(&[4, 5], -2.0, 2.0, 14);
    let labels = [3, 0, 3, 4];
    check_each(
        &z,
        &[
            ("cross_entropy", &|x| x[0].cross_entropy(&labels)),
            ("cross_entropy of a product", &|x| {
                x[0].mul(&x[0]).cross_entropy(&labels)
            }),
        ],
    );

    // uniform logits: ln C
    let u = Tensor::<f64>::full(&[3, 7], 0.25);
    assert!((u.cross_entropy(&[0, 6, 2]).item() - 7f64.ln()).abs() < 1e-12);
    // hand-computed: logits [0, ln 3] label 1 -> -ln(3/4)
    let h = Tensor::<f64>::from_vec(vec![0.0, 3f64.ln()], &[1, 2]);
    assert!((h.cross_entropy(&[1]).item() - (4.0f64 / 3.0).ln()).abs() < 1e-12);
    // matches -mean(log_softmax[label])
    let ls = z.log_softmax(-1);
    let expect = -labels
        .iter()
        .enumerate()
        .map(|(i, &l)| ls.data()[i * 5 + l])
        .sum::<f64>()
        / 4.0;
    assert!((z.cross_entropy(&labels).item() - expect).abs() < 1e-12);
    // stable for huge logits
    let big = Tensor::<f32>::from_vec(vec![1000.0, -1000.0], &[1, 2]);
    assert!(big.cross_entropy(&[0]).item().abs() < 1e-6);
    assert!((big.cross_entropy(&[1]).item() - 2000.0).abs() < 1e-2);
    // gradient: (softmax - onehot) / N
    let zl = z.clone().requires_grad_();
    let g = metalearn::grad(
        &[zl.cross_entropy(&labels)],
        std::slice::from_ref(&zl),
        false,
    );
    let mut expect = z.softmax(-1).to_vec();
    for (i, &l) in labels.iter().enumerate() {
        expect[i * 5 + l] -= 1.0;
    }
    let expect: Vec<f64> = expect.iter().map(|v| v / 4.0).collect();
    assert!(close(&g[0].to_vec(), &expect, 1e-12));
    // under no_grad: a value, no history
    let loss = metalearn::no_grad(|| zl.cross_entropy(&labels));
    assert!(!loss.requires_grad() && !loss.has_grad_fn());
    assert!((loss.item() - z.cross_entropy(&labels).item()).abs() < 1e-15);
}

#[test]
fn mse_and_bce() {
    let x = rand(&[3, 4], -2.0, 2.0, 15);
    let t = rand(&[3, 4], -1.0, 1.0, 16);
    let p = rand(&[3, 4], 0.0, 1.0, 17);
    check_each_on(
        &[x.clone(), t.clone()],
        &[
            ("mse_loss wrt x and t", &|x| x[0].mse_loss(&x[1])),
            ("mse_loss of tanh", &|x| {
                x[0].tanh().mse_loss(&x[1].square())
            }),
        ],
    );
    check_each_on(
        &[x.clone(), p.clone()],
        &[
            ("bce_with_logits wrt x and t", &|x| {
                x[0].bce_with_logits(&x[1])
            }),
            ("bce_with_logits of a product", &|x| {
                x[0].mul(&x[1]).bce_with_logits(&x[1])
            }),
        ],
    );

    // values
    let a = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[4]);
    let b = Tensor::<f64>::from_vec(vec![1.0, 0.0, 3.0, 1.0], &[4]);
    assert_eq!(a.mse_loss(&b).item(), (0.0 + 4.0 + 0.0 + 9.0) / 4.0);
    let l = Tensor::<f64>::from_vec(vec![0.0, 2.0, -3.0], &[3]);
    let y = Tensor::<f64>::from_vec(vec![1.0, 0.0, 1.0], &[3]);
    let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
    let expect = -((sig(0.0)).ln() + (1.0 - sig(2.0)).ln() + sig(-3.0).ln()) / 3.0;
    assert!((l.bce_with_logits(&y).item() - expect).abs() < 1e-12);
    // stable for huge logits (f32)
    let big = Tensor::<f32>::from_vec(vec![200.0, -200.0], &[2]);
    let tgt = Tensor::<f32>::from_vec(vec![1.0, 0.0], &[2]);
    let v = big.bce_with_logits(&tgt).item();
    assert!(v.is_finite() && v.abs() < 1e-6);
    // no_grad
    let xl = x.clone().requires_grad_();
    let v = metalearn::no_grad(|| xl.mse_loss(&t));
    assert!(!v.requires_grad());
}

// ---------------------------------------------------------------------------------------------
// batch norm

/// Batch-norm inputs: `x` of `shape` in [-2, 2] (seed `seed`), `gamma` in [0.5, 1.5] and
/// `beta` in [-0.5, 0.5] per channel (`shape[1]`; seeds `seed + 1`, `seed + 2`).
fn bn_inputs(shape: &[usize], seed: u64) -> [Tensor<f64>; 3] {
    let c = shape[1];
    [
        rand(shape, -2.0, 2.0, seed),
        rand(&[c], 0.5, 1.5, seed + 1),
        rand(&[c], -0.5, 0.5, seed + 2),
    ]
}

fn bn_reference(x: &Tensor<f64>, gamma: &Tensor<f64>, beta: &Tensor<f64>, eps: f64) -> Tensor<f64> {
    let axes: Vec<isize> = std::iter::once(0).chain(2..x.ndim() as isize).collect();
    let mut bshape = vec![1; x.ndim()];
    bshape[1] = x.dim(1);
    let mu = x.mean_axes(&axes, true);
    let d = x.sub(&mu);
    let var = d.square().mean_axes(&axes, true);
    d.div(&var.add_scalar(eps).sqrt())
        .mul(&gamma.reshape(&bshape))
        .add(&beta.reshape(&bshape))
}

/// Asserts that `batch_norm` (eps 1e-5) is within 1e-12 of [`bn_reference`].
fn assert_matches_reference(x: &Tensor<f64>, gamma: &Tensor<f64>, beta: &Tensor<f64>) {
    assert!(
        x.batch_norm(gamma, beta, 1e-5)
            .max_abs_diff(&bn_reference(x, gamma, beta, 1e-5))
            < 1e-12
    );
}

#[test]
fn batch_norm_2d_first_and_second_order() {
    let [x, gamma, beta] = bn_inputs(&[5, 3], 18);
    check_each_on(
        &[x.clone(), gamma.clone(), beta.clone()],
        &[
            ("batch_norm 2-D", &|x| x[0].batch_norm(&x[1], &x[2], 1e-5)),
            ("batch_norm 2-D then tanh", &|x| {
                x[0].batch_norm(&x[1], &x[2], 0.1).tanh()
            }),
        ],
    );
    check(
        "normalize_channels 2-D",
        &|x| x[0].normalize_channels(1e-3),
        std::slice::from_ref(&x),
    );
    assert_matches_reference(&x, &gamma, &beta);
}

#[test]
fn batch_norm_4d_first_and_second_order() {
    let [x, gamma, beta] = bn_inputs(&[3, 2, 3, 2], 21);
    check_each_on(
        &[x.clone(), gamma.clone(), beta.clone()],
        &[
            ("batch_norm 4-D", &|x| x[0].batch_norm(&x[1], &x[2], 1e-5)),
            ("batch_norm 4-D squared", &|x| {
                x[0].batch_norm(&x[1], &x[2], 1e-2).square()
            }),
            ("channel_affine 4-D", &|x| {
                x[0].channel_affine(&x[1], &x[2]).square()
            }),
        ],
    );
    check(
        "channel_sum",
        &|x| x[0].channel_sum().square(),
        std::slice::from_ref(&x),
    );
    check(
        "channel_broadcast",
        &|x| x[0].channel_broadcast(&[2, 2, 3]).square(),
        std::slice::from_ref(&gamma),
    );
    check(
        "normalize_channels 4-D",
        &|x| x[0].normalize_channels(1e-5).mul(&x[0]),
        std::slice::from_ref(&x),
    );
    check(
        "batch_norm 4-D twice",
        &|x| {
            x[0].batch_norm(&x[1], &x[2], 1e-5)
                .relu()
                .batch_norm(&x[1], &x[2], 1e-5)
        },
        &[x.clone(), gamma.clone(), beta.clone()],
    );
    assert_matches_reference(&x, &gamma, &beta);
}

#[test]
fn batch_norm_statistics_and_paths() {
    batch_norm_statistics_and_hand_values();
    batch_norm_backward_paths_agree();
}

/// Per-channel mean 0 and variance 1 with gamma = 1 and beta = 0, and a hand-computed case.
fn batch_norm_statistics_and_hand_values() {
    // gamma = 1, beta = 0: per-channel mean 0 and biased variance ~1
    let x = rand(&[4, 3, 5, 5], -3.0, 7.0, 24);
    let y = x.batch_norm(&Tensor::ones(&[3]), &Tensor::zeros(&[3]), 1e-5);
    for c in 0..3 {
        let vals: Vec<f64> = (0..4)
            .flat_map(|n| y.data()[(n * 3 + c) * 25..(n * 3 + c + 1) * 25].to_vec())
            .collect();
        let mean = vals.iter().sum::<f64>() / 100.0;
        let var = vals.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / 100.0;
        assert!(mean.abs() < 1e-12, "channel {c} mean {mean}");
        assert!((var - 1.0).abs() < 1e-5, "channel {c} var {var}");
    }
    // hand-computed (eps = 0): channel 0 holds [1, 3] and channel 1 [10, 12]: mean 2 and 11,
    // biased var 1, so xhat = [-1, 1] in both
    let h = Tensor::<f64>::from_vec(vec![1.0, 10.0, 3.0, 12.0], &[2, 2]);
    let yh = h.batch_norm(
        &Tensor::from_vec(vec![2.0, 1.0], &[2]),
        &Tensor::from_vec(vec![0.5, -1.0], &[2]),
        0.0,
    );
    assert!(close(&yh.to_vec(), &[-1.5, -2.0, 2.5, 0.0], 1e-12));
}

/// On inputs large enough for the parallel kernels: the fused (create_graph = false) and
/// recorded (create_graph = true) backward paths, f32 and no-grad forward passes agree with
/// the composed reference.
fn batch_norm_backward_paths_agree() {
    let [x, gamma, beta] = bn_inputs(&[4, 8, 48, 48], 25);
    let w = rand(&[4, 8, 48, 48], -1.0, 1.0, 28);
    let leaves = [
        x.clone().requires_grad_(),
        gamma.clone().requires_grad_(),
        beta.clone().requires_grad_(),
    ];
    let [fused, recorded] = [false, true].map(|create_graph| {
        metalearn::grad(
            &[leaves[0]
                .batch_norm(&leaves[1], &leaves[2], 1e-5)
                .mul(&w)
                .sum_all()],
            &leaves,
            create_graph,
        )
    });
    let reference = metalearn::grad(
        &[bn_reference(&leaves[0], &leaves[1], &leaves[2], 1e-5)
            .mul(&w)
            .sum_all()],
        &leaves,
        false,
    );
    for i in 0..3 {
        assert!(
            fused[i].max_abs_diff(&reference[i]) < 1e-9,
            "fused grad {i}: {}",
            fused[i].max_abs_diff(&reference[i])
        );
        assert!(
            recorded[i].max_abs_diff(&reference[i]) < 1e-9,
            "recorded grad {i}"
        );
        assert!(!fused[i].requires_grad());
    }
    // (the beta gradient is a sum of the constant upstream gradient, so it has no history)
    assert!(recorded[0].requires_grad() && recorded[1].requires_grad());
    let y = leaves[0].batch_norm(&leaves[1], &leaves[2], 1e-5);
    assert!(y.max_abs_diff(&bn_reference(&x, &gamma, &beta, 1e-5)) < 1e-10);

    // f32 agrees with f64
    let y32 = x
        .cast::<f32>()
        .batch_norm(&gamma.cast(), &beta.cast(), 1e-5);
    assert!(y32.cast::<f64>().max_abs_diff(&y) < 1e-4);
    // under no_grad
    let v = metalearn::no_grad(|| leaves[0].batch_norm(&leaves[1], &leaves[2], 1e-5));
    assert!(!v.requires_grad() && v.max_abs_diff(&y) == 0.0);
}

// ---------------------------------------------------------------------------------------------
// programmer errors name the op and the shapes

#[test]
#[should_panic(expected = "cross_entropy: 2 labels for logits of shape [3, 4]")]
fn cross_entropy_label_count_mismatch() {
    let _ = Tensor::<f32>::zeros(&[3, 4]).cross_entropy(&[0, 1]);
}

#[test]
#[should_panic(expected = "cross_entropy: label 4 out of range for logits of shape [2, 4]")]
fn cross_entropy_label_out_of_range() {
    let _ = Tensor::<f32>::zeros(&[2, 4]).cross_entropy(&[0, 4]);
}

#[test]
#[should_panic(expected = "mse_loss: prediction shape [2, 3] differs from target shape [3, 2]")]
fn mse_shape_mismatch() {
    let _ = Tensor::<f32>::zeros(&[2, 3]).mse_loss(&Tensor::zeros(&[3, 2]));
}

#[test]
#[should_panic(
    expected = "batch_norm: weight shape [4] and bias shape [3] do not match the 3 channels of input shape [2, 3, 4, 4]"
)]
fn batch_norm_param_shape_mismatch() {
    let _ = Tensor::<f32>::zeros(&[2, 3, 4, 4]).batch_norm(
        &Tensor::ones(&[4]),
        &Tensor::zeros(&[3]),
        1e-5,
    );
}

#[test]
#[should_panic(
    expected = "permute: dims [0, 0, 1] are not a permutation of the axes of shape [2, 3, 4]"
)]
fn permute_bad_dims() {
    let _ = Tensor::<f32>::zeros(&[2, 3, 4]).permute(&[0, 0, 1]);
}

#[test]
#[should_panic(expected = "concat: shapes [[2, 3], [3, 3]] do not agree outside axis 1")]
fn concat_shape_mismatch() {
    let _ = Tensor::concat(&[Tensor::<f32>::zeros(&[2, 3]), Tensor::zeros(&[3, 3])], 1);
}

#[test]
#[should_panic(expected = "narrow: range 2..5 on axis 1 out of bounds for shape [2, 4]")]
fn narrow_out_of_bounds() {
    let _ = Tensor::<f32>::zeros(&[2, 4]).narrow(1, 2, 3);
}

#[test]
#[should_panic(expected = "gather: index shape [3, 1] does not fit shape [2, 4] on axis 1")]
fn gather_bad_index_shape() {
    let _ = Tensor::<f32>::zeros(&[2, 4]).gather(1, &[0, 1, 2], &[3, 1]);
}

#[test]
#[should_panic(expected = "index_select: index 5 out of range for size 4 on axis 1 (shape [2, 4])")]
fn index_select_out_of_range() {
    let _ = Tensor::<f32>::zeros(&[2, 4]).index_select(1, &[0, 5]);
}

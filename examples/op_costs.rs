//! Per-op costs of one Conv-4 block at W2's query size ([75, C, H, W], f32, one thread):
//! forward and backward of conv2d, batch norm, ReLU and max-pool, composed and fused, to see
//! where time goes.
//! Run: `cargo run --release --example op_costs`.

use metalearn::Tensor;
use rand::SeedableRng;
use std::time::Instant;

fn time(label: &str, reps: usize, mut f: impl FnMut()) {
    f();
    let t0 = Instant::now();
    for _ in 0..reps {
        f();
    }
    println!(
        "{label:<40} {:>8.3} ms",
        t0.elapsed().as_secs_f64() * 1e3 / reps as f64
    );
}

/// Backpropagates ones from `out` to `inputs` (unrecorded), dropping the gradients.
fn backward(out: Tensor<f32>, inputs: &[Tensor<f32>]) {
    let g = Tensor::ones(out.shape());
    drop(metalearn::grad_with(
        &[out],
        &[g],
        inputs,
        metalearn::GradOptions::new(false),
    ));
}

fn main() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    for &(c, s) in &[(1usize, 28usize), (64, 14), (64, 7)] {
        println!("block input [75, {c}, {s}, {s}]");
        let x = Tensor::<f32>::rand_normal(&[75, c, s, s], 0.0, 1.0, &mut rng);
        let w = Tensor::<f32>::rand_normal(&[64, c, 3, 3], 0.0, 0.1, &mut rng).requires_grad_();
        let b = Tensor::<f32>::zeros(&[64]).requires_grad_();
        let gamma = Tensor::<f32>::ones(&[64]).requires_grad_();
        let beta = Tensor::<f32>::zeros(&[64]).requires_grad_();
        let y = x.conv2d(&w, Some(&b), 1, 1);
        let n = y.batch_norm(&gamma, &beta, 1e-5);
        let r = n.relu();
        let p = r.max_pool2d(2, 2);
        time("  conv2d forward", 5, || drop(x.conv2d(&w, Some(&b), 1, 1)));
        let gy = Tensor::<f32>::rand_normal(y.shape(), 0.0, 1.0, &mut rng);
        time("  conv2d weight gradient", 10, || {
            drop(x.conv2d_weight_grad(&gy, w.shape(), 1, 1))
        });
        time("  conv2d input gradient", 10, || {
            drop(gy.conv2d_input_grad(&w, x.shape(), 1, 1))
        });
        time("  batch_norm forward", 5, || {
            drop(y.batch_norm(&gamma, &beta, 1e-5))
        });
        time("  relu forward", 5, || drop(n.relu()));
        time("  max_pool2d forward", 5, || drop(r.max_pool2d(2, 2)));
        let inputs = [w.clone(), b.clone(), gamma.clone(), beta.clone()];
        time("  whole block forward", 5, || {
            drop(
                x.conv2d(&w, Some(&b), 1, 1)
                    .batch_norm(&gamma, &beta, 1e-5)
                    .relu()
                    .max_pool2d(2, 2),
            )
        });
        time("  whole block forward + backward", 5, || {
            let out = x
                .conv2d(&w, Some(&b), 1, 1)
                .batch_norm(&gamma, &beta, 1e-5)
                .relu()
                .max_pool2d(2, 2);
            backward(out, &inputs);
        });
        time("  fused bn+relu+pool forward", 20, || {
            drop(y.batch_norm_relu_max_pool2(&gamma, &beta, 1e-5))
        });
        let yg = y.detach().requires_grad_();
        let fused_inputs = [yg.clone(), gamma.clone(), beta.clone()];
        time("  fused bn+relu+pool forward + backward", 20, || {
            let out = yg.batch_norm_relu_max_pool2(&gamma, &beta, 1e-5);
            backward(out, &fused_inputs);
        });
        time("  whole block forward + backward (fused)", 5, || {
            let out = x
                .conv2d(&w, Some(&b), 1, 1)
                .batch_norm_relu_max_pool2(&gamma, &beta, 1e-5);
            backward(out, &inputs);
        });
        drop(p);
    }
}

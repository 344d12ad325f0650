//! Where one W2 task's time goes (one thread, f32): the support forward, the support gradient
//! (recorded for second order), the query forward and the meta-gradient backward, for second-
//! and first-order MAML. Run: `cargo run --release --example w2_phases`.

use metalearn::algorithms::Target;
use metalearn::nn::Model;
use metalearn::Tensor;
use rand::SeedableRng;
use std::time::{Duration, Instant};

fn main() {
    let model = metalearn::cli::bench::fewshot::w2_model();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
    let theta = model.init(&mut rng).requires_grad_();
    let sx = Tensor::<f32>::rand_normal(&[5, 1, 28, 28], 0.0, 1.0, &mut rng);
    let sy = Target::Classes((0..5).collect());
    let qx = Tensor::<f32>::rand_normal(&[75, 1, 28, 28], 0.0, 1.0, &mut rng);
    let qy = Target::Classes((0..75).map(|i| i % 5).collect());
    // `w2_phases first` or `w2_phases second` runs one order only (for profiling).
    let only = std::env::args().nth(1);
    for second in [true, false] {
        if only
            .as_deref()
            .is_some_and(|o| o != if second { "second" } else { "first" })
        {
            continue;
        }
        let mut t = [Duration::ZERO; 5];
        let reps: usize = std::env::var("REPS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(20);
        for rep in 0..reps + 2 {
            let mut lap = Instant::now();
            let mut mark = |i: usize, lap: &mut Instant| {
                if rep >= 2 {
                    t[i] += lap.elapsed();
                }
                *lap = Instant::now();
            };
            let loss = sy.loss(&model.forward(&theta, &sx));
            mark(0, &mut lap);
            let g = metalearn::grad(&[loss], theta.tensors(), second);
            mark(1, &mut lap);
            let phi = theta.with_tensors(
                theta
                    .tensors()
                    .iter()
                    .zip(&g)
                    .map(|(p, g)| p.sub(&g.mul_scalar(0.4)))
                    .collect(),
            );
            let phi = if second {
                phi
            } else {
                phi.detach().requires_grad_()
            };
            mark(2, &mut lap);
            let ql = qy.loss(&model.forward(&phi, &qx));
            mark(3, &mut lap);
            let wrt = if second {
                theta.tensors()
            } else {
                phi.tensors()
            };
            drop(metalearn::grad(&[ql], wrt, false));
            mark(4, &mut lap);
        }
        let names = [
            "support forward",
            "support grad",
            "fast weights",
            "query forward",
            "meta-gradient backward",
        ];
        println!(
            "{} order, ms per task:",
            if second { "second" } else { "first" }
        );
        for (n, d) in names.iter().zip(t) {
            println!("  {n:<24} {:>8.3}", d.as_secs_f64() * 1e3 / reps as f64);
        }
    }
}

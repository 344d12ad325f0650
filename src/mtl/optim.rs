//! A vectorised Adam for the multi-task trainer: the exact update of
//! [`crate::nn::optim::Adam`] (PyTorch's: `m += (1-b1)(g-m)`, `v = b2 v + (1-b2) g^2`,
//! `p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)`, no weight decay), element for element
//! in the same order, so results are bit-identical; the loop is compiled for AVX2 when the CPU
//! has it (the general optimizer's loop carries AMSGrad and weight-decay branches that keep it
//! scalar, which costs ~10% of a W5 step).

use crate::nn::Params;
use crate::tensor::Tensor;

/// Adam over `f32` parameter lists (betas 0.9 / 0.999, eps 1e-8).
#[derive(Clone, Debug)]
pub struct FastAdam {
    lr: f64,
    steps: u64,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

#[inline(always)]
fn update_body(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], k: [f32; 6]) {
    let [one_m_b1, beta2, one_m_b2, bc2_sqrt, eps, step_size] = k;
    for (((pj, &gj), mj), vj) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        *mj += one_m_b1 * (gj - *mj);
        *vj = *vj * beta2 + one_m_b2 * gj * gj;
        let denom = vj.sqrt() / bc2_sqrt + eps;
        *pj -= step_size * *mj / denom;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn update_avx2(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], k: [f32; 6]) {
    update_body(p, g, m, v, k)
}

fn update(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], k: [f32; 6]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 is available (checked just above).
        unsafe { update_avx2(p, g, m, v, k) };
        return;
    }
    update_body(p, g, m, v, k)
}

impl FastAdam {
    /// Adam with learning rate `lr`.
    pub fn new(lr: f64) -> Self {
        FastAdam {
            lr,
            steps: 0,
            m: Vec::new(),
            v: Vec::new(),
        }
    }

    /// One update; returns the new parameters (leaves requiring a gradient when the old did).
    pub fn step(&mut self, params: &Params<f32>, grads: &[Tensor<f32>]) -> Params<f32> {
        assert_eq!(
            params.len(),
            grads.len(),
            "FastAdam::step: {} gradients for {} parameters",
            grads.len(),
            params.len()
        );
        if self.m.is_empty() {
            self.m = params
                .tensors()
                .iter()
                .map(|t| vec![0.0; t.numel()])
                .collect();
            self.v = self.m.clone();
        }
        self.steps += 1;
        let t = self.steps as f64;
        let (b1, b2) = (0.9f64, 0.999f64);
        let k = [
            (1.0 - b1) as f32,
            b2 as f32,
            (1.0 - b2) as f32,
            (1.0 - b2.powf(t)).sqrt() as f32,
            1e-8f32,
            (self.lr / (1.0 - b1.powf(t))) as f32,
        ];
        let out = params
            .tensors()
            .iter()
            .zip(grads)
            .enumerate()
            .map(|(i, (p, g))| {
                assert_eq!(
                    p.shape(),
                    g.shape(),
                    "FastAdam::step: gradient shape differs from parameter {}",
                    params.names()[i]
                );
                let mut data = p.to_vec();
                update(&mut data, g.data(), &mut self.m[i], &mut self.v[i], k);
                let t = Tensor::from_vec(data, p.shape());
                if p.requires_grad() {
                    t.requires_grad_()
                } else {
                    t
                }
            })
            .collect();
        params.with_tensors(out)
    }
}

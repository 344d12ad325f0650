//! The differentiable inner loop of the gradient-based meta-learners (MAML, first-order MAML,
//! Meta-SGD, ANIL, Reptile), as a value: an [`Adapter`] (learn2learn's
//! `MAML(model, lr).clone().adapt(loss)`).
//!
//! `phi_0 = theta`, `phi_{k+1} = phi_k - alpha * grad_phi L_support(phi_k)`. With
//! [`Order::Second`] each inner gradient is taken with `create_graph`, so a loss at `phi_K`
//! differentiates back to `theta` through every step (`d phi_{k+1} / d phi_k = I - alpha H_k`).
//! With [`Order::First`] the inner gradients are constants (first-order MAML).

use super::task::Target;
use crate::nn::{Model, Params};
use crate::tensor::{Float, Tensor};

/// Whether the meta-gradient differentiates through the inner gradients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// True second-order MAML.
    Second,
    /// First-order MAML: inner gradients are treated as constants.
    First,
}

impl Order {
    /// [`Order::First`] when `first_order`, else [`Order::Second`].
    pub fn first_if(first_order: bool) -> Order {
        if first_order {
            Order::First
        } else {
            Order::Second
        }
    }
}

/// How an inner step scales each parameter's gradient.
#[derive(Clone, Debug)]
pub enum StepSize<T: Float> {
    /// One step size `alpha` for every parameter: `phi - alpha * g`.
    Scalar(f64),
    /// One tensor per parameter, elementwise (Meta-SGD's learned step sizes):
    /// `phi_i - alpha_i * g_i`.
    PerParameter(Params<T>),
}

/// The result of adapting to a support set.
pub struct Adapted<T: Float> {
    /// The fast weights `phi_K`.
    pub params: Params<T>,
    /// The support loss before each inner step (`phi_0 .. phi_{K-1}`).
    pub support_losses: Vec<f64>,
}

/// The inner loop's settings: `steps` SGD steps of [`StepSize`], first or second
/// [`Order`], and which parameters adapt (`mask[i] = false` keeps parameter `i` fixed; `None`:
/// all adapt).
///
/// ```rust
/// use metalearn::prelude::*;
///
/// // One step of size 0.5 on L(w) = (w x - y)^2 with x = 1, y = 3, from w = 1:
/// // dL/dw = 2 (w - 3) = -4, so w' = 1 - 0.5 * -4 = 3.
/// let model = Mlp::new(&[1, 1]);
/// let w = Params::from_parts(
///     vec!["l0.weight".into(), "l0.bias".into()],
///     vec![Tensor::<f64>::from_f64(&[1.0], &[1, 1]), Tensor::from_f64(&[0.0], &[1])],
/// );
/// let y = Target::Values(Tensor::from_f64(&[3.0], &[1, 1]));
/// let x = Tensor::from_f64(&[1.0], &[1, 1]);
/// let adapter = Adapter::sgd(0.5, 1).with_mask(vec![true, false]);
/// let adapted = adapter.adapt(&model, &w.requires_grad_(), &x, &y);
/// assert_eq!(adapted.params.at(0).item(), 3.0);
/// assert_eq!(adapted.params.at(1).item(), 0.0); // masked: not adapted
/// assert_eq!(adapted.support_losses, vec![4.0]);
/// ```
#[derive(Clone, Debug)]
pub struct Adapter<T: Float> {
    /// Inner steps `K`.
    pub steps: usize,
    /// The step size of every inner step.
    pub step_size: StepSize<T>,
    /// Whether the inner gradients are recorded for differentiation.
    pub order: Order,
    /// Which parameters adapt (`None`: all).
    pub mask: Option<Vec<bool>>,
}

impl<T: Float> Adapter<T> {
    /// `steps` second-order steps of `step_size`, every parameter adapting.
    pub fn new(step_size: StepSize<T>, steps: usize) -> Self {
        Adapter {
            steps,
            step_size,
            order: Order::Second,
            mask: None,
        }
    }

    /// `steps` second-order SGD steps of size `step_size`, every parameter adapting.
    pub fn sgd(step_size: f64, steps: usize) -> Self {
        Self::new(StepSize::Scalar(step_size), steps)
    }

    /// `steps` second-order steps with one step-size tensor per parameter (Meta-SGD).
    pub fn per_parameter(step_sizes: Params<T>, steps: usize) -> Self {
        Self::new(StepSize::PerParameter(step_sizes), steps)
    }

    /// The same settings with `order`.
    pub fn with_order(self, order: Order) -> Self {
        Adapter { order, ..self }
    }

    /// The same settings adapting only the parameters `i` with `mask[i]`.
    pub fn with_mask(self, mask: Vec<bool>) -> Self {
        Adapter {
            mask: Some(mask),
            ..self
        }
    }

    /// One inner step from `phi` on a scalar `loss` computed from `phi`:
    /// `phi_i - alpha_i * d loss / d phi_i` for every adapting `i` (learn2learn's
    /// `learner.adapt(loss)`), the gradient recorded when the order is second.
    pub fn step(&self, phi: &Params<T>, loss: Tensor<T>) -> Params<T> {
        let adapting: Vec<usize> = (0..phi.len())
            .filter(|&i| self.mask.as_ref().is_none_or(|m| m[i]))
            .collect();
        let inputs: Vec<Tensor<T>> = adapting.iter().map(|&i| phi.at(i).clone()).collect();
        let grads = crate::grad(&[loss], &inputs, self.order == Order::Second);
        let mut next: Vec<Tensor<T>> = phi.tensors().to_vec();
        for (g, &i) in grads.iter().zip(&adapting) {
            let step = match &self.step_size {
                StepSize::PerParameter(alphas) => g.mul(alphas.at(i)),
                StepSize::Scalar(alpha) => g.mul_scalar(*alpha),
            };
            next[i] = phi.at(i).sub(&step);
        }
        phi.with_tensors(next)
    }

    /// Runs the inner loop on the support set `(x, y)` from `params` (leaves with gradients
    /// enabled, or a graph to differentiate through).
    pub fn adapt(
        &self,
        model: &dyn Model<T>,
        params: &Params<T>,
        x: &Tensor<T>,
        y: &Target<T>,
    ) -> Adapted<T> {
        let mut phi = params.clone();
        let mut support_losses = Vec::with_capacity(self.steps);
        for _ in 0..self.steps {
            let loss = y.loss(&model.forward(&phi, x));
            support_losses.push(loss.item().as_f64());
            phi = self.step(&phi, loss);
        }
        Adapted {
            params: phi,
            support_losses,
        }
    }

    /// The gradient-based methods' prediction: adapts from `theta` (leaves with gradients
    /// enabled) on the support set `(sx, sy)`, then runs `model` on the queries `qx` under
    /// `no_grad` (with the query batch's statistics).
    pub fn predict(
        &self,
        model: &dyn Model<T>,
        theta: &Params<T>,
        sx: &Tensor<T>,
        sy: &Target<T>,
        qx: &Tensor<T>,
    ) -> Tensor<T> {
        let adapted = self.adapt(model, theta, sx, sy);
        crate::autodiff::no_grad(|| model.forward(&adapted.params, qx))
    }
}

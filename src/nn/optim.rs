//! First-order optimizers over named parameter lists, with PyTorch's exact update rules.
//!
//! An optimizer maps `(params, grads)` to new parameters. The update is plain arithmetic on the
//! raw values (no autodiff graph is recorded); the returned tensors are fresh leaves that
//! require a gradient exactly when the corresponding input did, so the next forward pass can
//! differentiate with respect to them again.
//!
//! The state (momentum buffers, Adam moments, the step count) is exposed as a named
//! [`Params`] list by [`Optimizer::state`] and restored by [`Optimizer::load_state`], so that it
//! can be written to a checkpoint next to the parameters (see [`crate::nn::checkpoint`]).
//!
//! Notation below: `p` a parameter, `g` its gradient, `t` the step count (1 for the first step),
//! `lr` the learning rate, `wd` the weight decay.

use super::Params;
use crate::tensor::{Float, Tensor};

/// Why optimizer state could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum OptimStateError {
    /// A state tensor the optimizer needs is absent.
    #[error("optimizer state: missing tensor `{name}` (the state holds: {found})")]
    Missing {
        /// The name that was looked for.
        name: String,
        /// The names that were present.
        found: String,
    },
    /// Two moment buffers of one parameter have different shapes.
    #[error("optimizer state: tensor `{name}` has shape {found:?}, expected {expected:?}")]
    Shape {
        /// The offending state tensor.
        name: String,
        /// The shape it should have.
        expected: Vec<usize>,
        /// The shape it has.
        found: Vec<usize>,
    },
    /// A state tensor name does not follow the `kind/param` pattern of this optimizer.
    #[error("optimizer state: unexpected tensor `{name}` for {optimizer}")]
    Unexpected {
        /// The unexpected name.
        name: String,
        /// The optimizer that rejected it.
        optimizer: &'static str,
    },
}

/// A first-order optimizer over a named parameter list.
pub trait Optimizer<T: Float> {
    /// One update. `grads[i]` is the gradient of `params.at(i)` (same shape). Returns the new
    /// parameters as fresh leaves (requiring a gradient exactly when the input did); no graph is
    /// recorded. The first call fixes the parameter names and shapes the state refers to.
    ///
    /// Panics if the number, names or shapes of the parameters change between calls, or if a
    /// gradient's shape differs from its parameter's.
    fn step(&mut self, params: &Params<T>, grads: &[Tensor<T>]) -> Params<T>;

    /// [`Optimizer::step`] with the gradients as a named list; panics unless its names equal
    /// `params`' names.
    fn step_params(&mut self, params: &Params<T>, grads: &Params<T>) -> Params<T> {
        assert_eq!(
            params.names(),
            grads.names(),
            "Optimizer::step_params: gradient names differ from parameter names"
        );
        self.step(params, grads.tensors())
    }

    /// The state as a named list (`step` as a 0-d tensor, then one buffer per parameter and kind,
    /// named `<kind>/<parameter name>`). Empty before the first step.
    fn state(&self) -> Params<T>;

    /// Restores a state written by [`Optimizer::state`] (replacing the current one).
    fn load_state(&mut self, state: &Params<T>) -> Result<(), OptimStateError>;

    /// Forgets all state (as a freshly built optimizer).
    fn reset(&mut self);

    /// The current learning rate.
    fn lr(&self) -> f64;

    /// Changes the learning rate (for schedules).
    fn set_lr(&mut self, lr: f64);
}

/// Per-parameter buffers: the parameter names and shapes, then one flat buffer per kind.
#[derive(Clone, Debug, Default)]
struct Slots<T: Float> {
    names: Vec<String>,
    shapes: Vec<Vec<usize>>,
    /// `buffers[kind][param]`.
    buffers: Vec<Vec<Vec<T>>>,
}

impl<T: Float> Slots<T> {
    fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Creates zero buffers for `params` on first use; checks names and shapes afterwards.
    fn ensure(&mut self, params: &Params<T>, grads: &[Tensor<T>], kinds: usize, who: &str) {
        assert_eq!(
            grads.len(),
            params.len(),
            "{who}::step: {} gradients for {} parameters",
            grads.len(),
            params.len()
        );
        for ((n, p), g) in params.iter().zip(grads) {
            assert_eq!(
                p.shape(),
                g.shape(),
                "{who}::step: gradient of `{n}` has shape {:?}, parameter has {:?}",
                g.shape(),
                p.shape()
            );
        }
        if self.is_empty() {
            self.names = params.names().to_vec();
            self.shapes = params
                .tensors()
                .iter()
                .map(|t| t.shape().to_vec())
                .collect();
            self.buffers = (0..kinds)
                .map(|_| {
                    params
                        .tensors()
                        .iter()
                        .map(|t| vec![T::zero(); t.numel()])
                        .collect()
                })
                .collect();
            return;
        }
        assert_eq!(
            self.names.as_slice(),
            params.names(),
            "{who}::step: the parameter names differ from those the optimizer state was built for"
        );
        for ((n, s), p) in self.names.iter().zip(&self.shapes).zip(params.tensors()) {
            assert_eq!(
                s.as_slice(),
                p.shape(),
                "{who}::step: `{n}` has shape {:?}, the optimizer state has {:?}",
                p.shape(),
                s
            );
        }
    }

    fn to_params(&self, step: Option<u64>, kinds: &[&str]) -> Params<T> {
        let mut out = Params::new();
        if self.is_empty() {
            return out;
        }
        if let Some(s) = step {
            out.push("step", Tensor::scalar(T::of(s as f64)));
        }
        for (k, kind) in kinds.iter().enumerate() {
            for ((n, s), b) in self.names.iter().zip(&self.shapes).zip(&self.buffers[k]) {
                out.push(format!("{kind}/{n}"), Tensor::from_vec(b.clone(), s));
            }
        }
        out
    }

    /// Parses `<kind>/<name>` entries (in the order of the first kind) and an optional `step`.
    fn from_params(
        state: &Params<T>,
        kinds: &[&str],
        optimizer: &'static str,
    ) -> Result<(Self, Option<u64>), OptimStateError> {
        let mut step = None;
        let mut names = Vec::new();
        let mut shapes = Vec::new();
        for (n, t) in state.iter() {
            if n == "step" {
                step = Some(
                    t.data()
                        .first()
                        .map_or(0.0, |v| v.as_f64())
                        .round()
                        .max(0.0) as u64,
                );
                continue;
            }
            match n.split_once('/') {
                Some((k, p)) if k == kinds[0] => {
                    names.push(p.to_string());
                    shapes.push(t.shape().to_vec());
                }
                Some((k, _)) if kinds.contains(&k) => {}
                _ => {
                    return Err(OptimStateError::Unexpected {
                        name: n.to_string(),
                        optimizer,
                    })
                }
            }
        }
        let found = || state.names().join(", ");
        let mut buffers = Vec::with_capacity(kinds.len());
        for kind in kinds {
            let mut per = Vec::with_capacity(names.len());
            for (n, s) in names.iter().zip(&shapes) {
                let key = format!("{kind}/{n}");
                let t = state.get(&key).ok_or_else(|| OptimStateError::Missing {
                    name: key.clone(),
                    found: found(),
                })?;
                if t.shape() != s.as_slice() {
                    return Err(OptimStateError::Shape {
                        name: key,
                        expected: s.clone(),
                        found: t.shape().to_vec(),
                    });
                }
                per.push(t.to_vec());
            }
            buffers.push(per);
        }
        Ok((
            Slots {
                names,
                shapes,
                buffers,
            },
            step,
        ))
    }
}

/// A new leaf with `data`, requiring a gradient when `like` does.
fn leaf_like<T: Float>(data: Vec<T>, like: &Tensor<T>) -> Tensor<T> {
    let t = Tensor::from_vec(data, like.shape());
    if like.requires_grad() {
        t.requires_grad_()
    } else {
        t
    }
}

/// Stochastic gradient descent with momentum, dampening, L2 weight decay and Nesterov
/// momentum: `torch.optim.SGD`.
///
/// ```text
/// d   = g + wd * p                                  (when wd != 0)
/// b_1 = d                                           (first step: the buffer is the gradient)
/// b_t = momentum * b_{t-1} + (1 - dampening) * d    (t > 1)
/// d   = d + momentum * b_t    (nesterov)   or   d = b_t    (momentum != 0)
/// p   = p - lr * d
/// ```
/// With `momentum = 0` there is no buffer and the step is `p - lr * (g + wd * p)`.
#[derive(Clone, Debug)]
pub struct Sgd<T: Float = f32> {
    /// The learning rate.
    pub lr: f64,
    /// The momentum factor (0 for plain SGD).
    pub momentum: f64,
    /// Dampening of the momentum (PyTorch's default 0).
    pub dampening: f64,
    /// The L2 penalty coefficient added to the gradient.
    pub weight_decay: f64,
    /// Nesterov momentum (needs `momentum > 0` and `dampening = 0`).
    pub nesterov: bool,
    steps: u64,
    slots: Slots<T>,
}

impl<T: Float> Sgd<T> {
    /// Plain SGD with learning rate `lr` (no momentum, no weight decay).
    pub fn new(lr: f64) -> Self {
        Sgd {
            lr,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            steps: 0,
            slots: Slots::default(),
        }
    }

    /// Sets the momentum factor.
    pub fn with_momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Sets the dampening.
    pub fn with_dampening(mut self, dampening: f64) -> Self {
        self.dampening = dampening;
        self
    }

    /// Sets the L2 weight decay.
    pub fn with_weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Turns Nesterov momentum on or off.
    pub fn with_nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }

    /// The number of steps taken.
    pub fn steps(&self) -> u64 {
        self.steps
    }
}

impl<T: Float> Optimizer<T> for Sgd<T> {
    fn step(&mut self, params: &Params<T>, grads: &[Tensor<T>]) -> Params<T> {
        assert!(
            !self.nesterov || (self.momentum > 0.0 && self.dampening == 0.0),
            "Sgd: Nesterov momentum requires a momentum and zero dampening"
        );
        let use_buf = self.momentum != 0.0;
        self.slots
            .ensure(params, grads, usize::from(use_buf), "Sgd");
        let first = self.steps == 0;
        self.steps += 1;
        let lr = T::of(self.lr);
        let wd = T::of(self.weight_decay);
        let mom = T::of(self.momentum);
        let damp = T::of(1.0 - self.dampening);
        let (has_wd, nesterov) = (self.weight_decay != 0.0, self.nesterov);
        crate::autodiff::no_grad(|| {
            let mut out = Vec::with_capacity(params.len());
            for (i, (p, g)) in params.tensors().iter().zip(grads).enumerate() {
                let mut data = p.to_vec();
                let gd = g.data();
                for j in 0..data.len() {
                    let mut d = gd[j];
                    if has_wd {
                        d += wd * data[j];
                    }
                    if use_buf {
                        let b = &mut self.slots.buffers[0][i][j];
                        if first {
                            *b = d;
                        } else {
                            *b = *b * mom + damp * d;
                        }
                        d = if nesterov { d + mom * *b } else { *b };
                    }
                    data[j] -= lr * d;
                }
                out.push(leaf_like(data, p));
            }
            params.with_tensors(out)
        })
    }

    fn state(&self) -> Params<T> {
        if self.momentum != 0.0 {
            self.slots.to_params(Some(self.steps), &["momentum_buffer"])
        } else if self.steps > 0 {
            let mut p = Params::new();
            p.push("step", Tensor::scalar(T::of(self.steps as f64)));
            p
        } else {
            Params::new()
        }
    }

    fn load_state(&mut self, state: &Params<T>) -> Result<(), OptimStateError> {
        let (slots, step) = Slots::from_params(state, &["momentum_buffer"], "Sgd")?;
        self.steps = step.unwrap_or(if slots.is_empty() { 0 } else { 1 });
        self.slots = slots;
        Ok(())
    }

    fn reset(&mut self) {
        self.steps = 0;
        self.slots = Slots::default();
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
}

/// The shared Adam / AdamW update.
#[derive(Clone, Debug)]
struct AdamCore<T: Float> {
    lr: f64,
    betas: (f64, f64),
    eps: f64,
    weight_decay: f64,
    amsgrad: bool,
    decoupled: bool,
    steps: u64,
    slots: Slots<T>,
}

impl<T: Float> AdamCore<T> {
    fn kinds(&self) -> &'static [&'static str] {
        if self.amsgrad {
            &["exp_avg", "exp_avg_sq", "max_exp_avg_sq"]
        } else {
            &["exp_avg", "exp_avg_sq"]
        }
    }

    fn step(&mut self, params: &Params<T>, grads: &[Tensor<T>], who: &str) -> Params<T> {
        let kinds = self.kinds().len();
        self.slots.ensure(params, grads, kinds, who);
        self.steps += 1;
        let t = self.steps as f64;
        let (b1, b2) = self.betas;
        // Scalars as torch computes them (Python floats), then rounded to T.
        let bias_correction1 = 1.0 - b1.powf(t);
        let bias_correction2 = 1.0 - b2.powf(t);
        let step_size = T::of(self.lr / bias_correction1);
        let bc2_sqrt = T::of(bias_correction2.sqrt());
        let eps = T::of(self.eps);
        let one_m_b1 = T::of(1.0 - b1);
        let beta2 = T::of(b2);
        let one_m_b2 = T::of(1.0 - b2);
        let wd = T::of(self.weight_decay);
        let decay = T::of(1.0 - self.lr * self.weight_decay);
        let has_wd = self.weight_decay != 0.0;
        let (decoupled, amsgrad) = (self.decoupled, self.amsgrad);
        crate::autodiff::no_grad(|| {
            let mut out = Vec::with_capacity(params.len());
            for (i, (p, g)) in params.tensors().iter().zip(grads).enumerate() {
                let mut data = p.to_vec();
                let gd = g.data();
                let (first, rest) = self.slots.buffers.split_at_mut(1);
                let (second, third) = rest.split_at_mut(1);
                let m = &mut first[0][i];
                let v = &mut second[0][i];
                let vmax = third.first_mut().map(|b| &mut b[i]);
                // Weight decay first (its own pass), so that the moment loops below carry no
                // branches and vectorise.
                let decayed: Vec<T>;
                let gd: &[T] = if has_wd && !decoupled {
                    decayed = gd
                        .iter()
                        .zip(&data)
                        .map(|(&gj, &pj)| gj + wd * pj)
                        .collect();
                    &decayed
                } else {
                    gd
                };
                if has_wd && decoupled {
                    data.iter_mut().for_each(|pj| *pj *= decay);
                }
                // exp_avg.lerp_(grad, 1 - beta1); exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2)
                for ((mj, vj), &gj) in m.iter_mut().zip(v.iter_mut()).zip(gd) {
                    *mj += one_m_b1 * (gj - *mj);
                    *vj = *vj * beta2 + one_m_b2 * gj * gj;
                }
                let second_moment: &[T] = match vmax {
                    Some(vm) if amsgrad => {
                        vm.iter_mut()
                            .zip(v.iter())
                            .for_each(|(a, &b)| *a = a.max(b));
                        vm
                    }
                    _ => v,
                };
                for ((pj, &mj), &sj) in data.iter_mut().zip(m.iter()).zip(second_moment) {
                    *pj -= step_size * mj / (sj.sqrt() / bc2_sqrt + eps);
                }
                out.push(leaf_like(data, p));
            }
            params.with_tensors(out)
        })
    }

    fn load_state(&mut self, state: &Params<T>, who: &'static str) -> Result<(), OptimStateError> {
        let kinds = self.kinds();
        let (slots, step) = Slots::from_params(state, kinds, who)?;
        if !slots.is_empty() && step.is_none() {
            return Err(OptimStateError::Missing {
                name: "step".into(),
                found: state.names().join(", "),
            });
        }
        self.steps = step.unwrap_or(0);
        self.slots = slots;
        Ok(())
    }
}

/// Adam (Kingma & Ba 2015) with optional L2 weight decay: `torch.optim.Adam`.
///
/// ```text
/// g     = g + wd * p                                  (L2 penalty, when wd != 0)
/// m_t   = beta1 * m_{t-1} + (1 - beta1) * g           (m_0 = 0)
/// v_t   = beta2 * v_{t-1} + (1 - beta2) * g^2         (v_0 = 0)
/// m_hat = m_t / (1 - beta1^t),   v_hat = v_t / (1 - beta2^t)
/// p     = p - lr * m_hat / (sqrt(v_hat) + eps)        (eps OUTSIDE the sqrt, after correction)
/// ```
/// With `amsgrad`, `v_hat` uses the running maximum of `v_t` (`max_exp_avg_sq`).
/// At `t = 1` the step is `lr * g / (|g| + eps)`. State names: `step`, `exp_avg/<p>`,
/// `exp_avg_sq/<p>` (and `max_exp_avg_sq/<p>`), as in PyTorch's `state_dict`.
#[derive(Clone, Debug)]
pub struct Adam<T: Float = f32> {
    core: AdamCore<T>,
}

/// AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay, `torch.optim.AdamW`.
///
/// ```text
/// p     = p * (1 - lr * wd)                           (decay first, not added to the gradient)
/// m_t, v_t, m_hat, v_hat as in Adam with the raw gradient g
/// p     = p - lr * m_hat / (sqrt(v_hat) + eps)
/// ```
/// PyTorch's default `wd` for AdamW is 0.01.
#[derive(Clone, Debug)]
pub struct AdamW<T: Float = f32> {
    core: AdamCore<T>,
}

macro_rules! adam_api {
    ($ty:ident, $name:literal, $decoupled:expr, $default_wd:expr) => {
        impl<T: Float> $ty<T> {
            /// A new optimizer with learning rate `lr`, betas (0.9, 0.999), eps 1e-8 and
            /// PyTorch's default weight decay for this optimizer.
            pub fn new(lr: f64) -> Self {
                $ty {
                    core: AdamCore {
                        lr,
                        betas: (0.9, 0.999),
                        eps: 1e-8,
                        weight_decay: $default_wd,
                        amsgrad: false,
                        decoupled: $decoupled,
                        steps: 0,
                        slots: Slots::default(),
                    },
                }
            }

            /// Sets the moment decay rates `(beta1, beta2)`.
            pub fn with_betas(mut self, beta1: f64, beta2: f64) -> Self {
                self.core.betas = (beta1, beta2);
                self
            }

            /// Sets `eps` (added to `sqrt(v_hat)`).
            pub fn with_eps(mut self, eps: f64) -> Self {
                self.core.eps = eps;
                self
            }

            /// Sets the weight decay.
            pub fn with_weight_decay(mut self, weight_decay: f64) -> Self {
                self.core.weight_decay = weight_decay;
                self
            }

            /// Turns the AMSGrad variant on or off (before the first step).
            pub fn with_amsgrad(mut self, amsgrad: bool) -> Self {
                assert!(
                    self.core.slots.is_empty(),
                    concat!($name, "::with_amsgrad: state exists")
                );
                self.core.amsgrad = amsgrad;
                self
            }

            /// `(beta1, beta2)`.
            pub fn betas(&self) -> (f64, f64) {
                self.core.betas
            }

            /// `eps`.
            pub fn eps(&self) -> f64 {
                self.core.eps
            }

            /// The weight decay.
            pub fn weight_decay(&self) -> f64 {
                self.core.weight_decay
            }

            /// Whether AMSGrad is on.
            pub fn amsgrad(&self) -> bool {
                self.core.amsgrad
            }

            /// The number of steps taken (`t`).
            pub fn steps(&self) -> u64 {
                self.core.steps
            }

            /// The first-moment buffer of a parameter (`exp_avg`), after at least one step.
            pub fn exp_avg(&self, name: &str) -> Option<Tensor<T>> {
                self.buffer(0, name)
            }

            /// The second-moment buffer of a parameter (`exp_avg_sq`), after at least one step.
            pub fn exp_avg_sq(&self, name: &str) -> Option<Tensor<T>> {
                self.buffer(1, name)
            }

            fn buffer(&self, kind: usize, name: &str) -> Option<Tensor<T>> {
                let s = &self.core.slots;
                let i = s.names.iter().position(|n| n == name)?;
                Some(Tensor::from_vec(s.buffers[kind][i].clone(), &s.shapes[i]))
            }
        }

        impl<T: Float> Optimizer<T> for $ty<T> {
            fn step(&mut self, params: &Params<T>, grads: &[Tensor<T>]) -> Params<T> {
                self.core.step(params, grads, $name)
            }

            fn state(&self) -> Params<T> {
                self.core
                    .slots
                    .to_params(Some(self.core.steps), self.core.kinds())
            }

            fn load_state(&mut self, state: &Params<T>) -> Result<(), OptimStateError> {
                self.core.load_state(state, $name)
            }

            fn reset(&mut self) {
                self.core.steps = 0;
                self.core.slots = Slots::default();
            }

            fn lr(&self) -> f64 {
                self.core.lr
            }

            fn set_lr(&mut self, lr: f64) {
                self.core.lr = lr;
            }
        }
    };
}

adam_api!(Adam, "Adam", false, 0.0);
adam_api!(AdamW, "AdamW", true, 0.01);

//! Meta-parameters and their optimizer ([`MetaState`]): what a learner updates once per
//! meta-training step, and what its checkpoints hold.

use crate::nn::checkpoint::CheckpointError;
use crate::nn::optim::{Adam, Optimizer};
use crate::nn::Params;
use crate::tensor::{Float, Tensor};
use std::path::PathBuf;

/// Meta-parameters (names prefixed by group, e.g. `param/…`, `lr/…`) and their optimizer.
/// The state is the parameters, then the optimizer's state under `opt/`.
pub struct MetaState<T: Float> {
    /// The meta-parameters (leaves, no gradient flag).
    pub params: Params<T>,
    /// Their optimizer.
    pub opt: Box<dyn Optimizer<T> + Send + Sync>,
    /// The method's name, for load errors (`<maml learner state>`).
    who: &'static str,
}

impl<T: Float> MetaState<T> {
    /// `params` with Adam at `lr`; `who` names the method in load errors.
    pub fn adam(who: &'static str, params: Params<T>, lr: f64) -> Self {
        Self::with_optimizer(who, params, Box::new(Adam::new(lr)))
    }

    /// `params` (detached) with a given optimizer; `who` names the method in load errors.
    pub fn with_optimizer(
        who: &'static str,
        params: Params<T>,
        opt: Box<dyn Optimizer<T> + Send + Sync>,
    ) -> Self {
        MetaState {
            params: params.detach(),
            opt,
            who,
        }
    }

    /// Fresh leaves with gradients enabled, for one meta-gradient.
    pub fn leaves(&self) -> Params<T> {
        self.params.requires_grad_()
    }

    /// One optimizer update with one gradient per parameter.
    pub fn step(&mut self, grads: &[Tensor<T>]) {
        self.params = self.opt.step(&self.params, grads).detach();
    }

    /// The parameters followed by the optimizer state (`opt/...`).
    pub fn state(&self) -> Params<T> {
        let mut s = self.params.clone();
        for (n, t) in self.opt.state().iter() {
            s.push(format!("opt/{n}"), t.clone());
        }
        s
    }

    /// Restores [`MetaState::state`]: every parameter by name with its shape, no extra tensors.
    pub fn load_state(&mut self, state: &Params<T>) -> Result<(), CheckpointError> {
        let path = PathBuf::from(format!("<{} learner state>", self.who));
        let mut out = Vec::with_capacity(self.params.len());
        for (n, e) in self.params.iter() {
            let t = state.get(n).ok_or_else(|| CheckpointError::MissingTensor {
                path: path.clone(),
                name: n.to_string(),
                expected: e.shape().to_vec(),
                found: state
                    .names()
                    .iter()
                    .take(8)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
            if t.shape() != e.shape() {
                return Err(CheckpointError::ShapeMismatch {
                    path,
                    name: n.to_string(),
                    expected: e.shape().to_vec(),
                    found: t.shape().to_vec(),
                });
            }
            out.push(t.detach());
        }
        let extra: Vec<String> = state
            .names()
            .iter()
            .filter(|n| !n.starts_with("opt/") && self.params.get(n).is_none())
            .take(8)
            .cloned()
            .collect();
        if !extra.is_empty() {
            return Err(CheckpointError::UnexpectedTensors {
                path,
                names: extra,
                expected: self.params.len(),
            });
        }
        let mut opt_state = Params::new();
        for (n, t) in state.iter() {
            if let Some(rest) = n.strip_prefix("opt/") {
                opt_state.push(rest, t.clone());
            }
        }
        self.opt.reset();
        self.opt
            .load_state(&opt_state)
            .map_err(|e| CheckpointError::Metadata {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        self.params = self.params.with_tensors(out);
        Ok(())
    }
}

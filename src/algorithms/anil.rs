//! ANIL (Raghu, Raghu, Bengio & Vinyals 2020): MAML where only the linear head adapts.
//!
//! The body's features of the support and query sets are computed once per task (the body's
//! weights do not change in the inner loop, so this equals re-running the full network every
//! step, batch norm included); the inner loop runs on the head alone, and the meta-gradient
//! reaches the body through the features (second order by default).

use super::config::AnilConfig;
use super::learner::{FewShotLearner, StepStats};
use super::maml::{adapt, Order, TaskData};
use super::registry::{self, Body, LinearHead, MetaState, Network, TaskKind, TaskResult};
use super::Target;
use crate::nn::{Model, Params};
use crate::tensor::{Float, Tensor};

/// The ANIL learner.
pub struct Anil<T: Float> {
    net: Network,
    meta: MetaState<T>,
    config: AnilConfig,
}

impl<T: Float> Anil<T> {
    /// A learner from its config.
    pub fn new(
        config: &AnilConfig,
        body: Body,
        task: TaskKind,
        meta_lr: f64,
        rng: &mut dyn rand::RngCore,
    ) -> Self {
        let net = Network {
            body,
            outputs: task.outputs(),
        };
        let params = registry::prefixed(&Model::<T>::init(&net, rng), "param/");
        Anil {
            net,
            meta: MetaState::adam("anil", params, meta_lr),
            config: config.clone(),
        }
    }

    /// The meta-parameters (body, then head).
    pub fn params(&self) -> &Params<T> {
        &self.meta.params
    }

    /// Adapts the head of `theta` on the support features; returns the adapted head.
    fn adapt_head(
        &self,
        theta: &Params<T>,
        fs: &Tensor<T>,
        ys: &Target<T>,
        steps: usize,
        order: Order,
    ) -> Params<T> {
        let k = self.net.head_index();
        let head = registry::slice(theta, k..k + 2);
        adapt(
            &LinearHead,
            &head,
            fs,
            ys,
            steps,
            self.config.inner_lr,
            order,
            None,
            None,
        )
        .params
    }
}

impl<T: Float> FewShotLearner<T> for Anil<T> {
    fn name(&self) -> &'static str {
        "anil"
    }

    fn meta_train_step(
        &mut self,
        tasks: &[TaskData<T>],
        _rng: &mut dyn rand::RngCore,
    ) -> StepStats {
        let theta = self.meta.leaves();
        let order = if self.config.first_order {
            Order::First
        } else {
            Order::Second
        };
        let (grads, stats) = registry::mean_over_tasks(tasks, |t| {
            let fs = self.net.body.embed(&theta, &t.support_x);
            let fq = self.net.body.embed(&theta, &t.query_x);
            let head = self.adapt_head(&theta, &fs, &t.support_y, self.config.inner_steps, order);
            let out = LinearHead.forward(&head, &fq);
            let loss = t.query_y.loss(&out);
            let grads = crate::grad(std::slice::from_ref(&loss), theta.tensors(), false);
            TaskResult {
                grads,
                loss: loss.item().as_f64(),
                accuracy: registry::target_accuracy(&out, &t.query_y),
            }
        });
        self.meta.step(&grads);
        stats
    }

    fn predict(
        &self,
        support_x: &Tensor<T>,
        support_y: &Target<T>,
        query_x: &Tensor<T>,
    ) -> Tensor<T> {
        let theta = self.meta.params.clone();
        let (fs, fq) = crate::autodiff::no_grad(|| {
            (
                self.net.body.embed(&theta, support_x),
                self.net.body.embed(&theta, query_x),
            )
        });
        let k = self.net.head_index();
        let head = registry::slice(&theta, k..k + 2).requires_grad_();
        let head = adapt(
            &LinearHead,
            &head,
            &fs,
            support_y,
            self.config.eval_inner_steps,
            self.config.inner_lr,
            Order::First,
            None,
            None,
        )
        .params;
        crate::autodiff::no_grad(|| LinearHead.forward(&head, &fq))
    }

    fn state(&self) -> Params<T> {
        self.meta.state()
    }

    fn load_state(
        &mut self,
        state: &Params<T>,
    ) -> Result<(), crate::nn::checkpoint::CheckpointError> {
        self.meta.load_state(state)
    }
}

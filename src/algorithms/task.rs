//! What a few-shot task is: its targets ([`Target`]), what a learner predicts ([`TaskKind`]),
//! and one task of a meta-batch ([`TaskData`]), which an [`Episode`] or a [`SinusoidTask`]
//! becomes.

use super::classes::accuracy;
use crate::data::{Episode, SinusoidTask};
use crate::nn::{Backbone, Model, Network, Params};
use crate::tensor::{Float, Tensor};

/// What a task's labels are, and so which loss scores a prediction.
#[derive(Clone, Debug)]
pub enum Target<T: Float> {
    /// Class indices for cross-entropy on logits `[N, C]`.
    Classes(Vec<usize>),
    /// Real targets for mean squared error, same shape as the prediction.
    Values(Tensor<T>),
}

impl<T: Float> Target<T> {
    /// The loss of `prediction`: mean cross-entropy or mean squared error.
    pub fn loss(&self, prediction: &Tensor<T>) -> Tensor<T> {
        match self {
            Target::Classes(labels) => prediction.cross_entropy(labels),
            Target::Values(y) => prediction.mse_loss(y),
        }
    }

    /// The number of examples.
    pub fn len(&self) -> usize {
        match self {
            Target::Classes(l) => l.len(),
            Target::Values(y) => y.shape().first().copied().unwrap_or(0),
        }
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The class labels; panics naming `method` for real-valued targets (a method that only
    /// classifies was given a regression task).
    pub fn class_labels(&self, method: &str) -> &[usize] {
        match self {
            Target::Classes(labels) => labels,
            Target::Values(_) => {
                panic!(
                    "algorithm `{method}` cannot do regression (sinusoid): it needs class labels"
                )
            }
        }
    }

    /// The fraction of `prediction`'s rows whose argmax is the label (classification), `NaN`
    /// for real-valued targets.
    pub fn accuracy(&self, prediction: &Tensor<T>) -> f64 {
        match self {
            Target::Classes(labels) => accuracy(prediction, labels),
            Target::Values(_) => f64::NAN,
        }
    }

    /// `self`'s examples followed by `other`'s; panics when one holds classes and the other
    /// values.
    pub fn concat(&self, other: &Target<T>) -> Target<T> {
        match (self, other) {
            (Target::Classes(a), Target::Classes(b)) => Target::Classes([a.as_slice(), b].concat()),
            (Target::Values(a), Target::Values(b)) => {
                Target::Values(Tensor::concat(&[a.clone(), b.clone()], 0))
            }
            _ => panic!("Target::concat: one target holds classes, the other real values"),
        }
    }
}

/// What a learner is asked to predict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskKind {
    /// `n_way`-way classification (logits `[Nq, n_way]`).
    Classification {
        /// Classes per task.
        n_way: usize,
    },
    /// Regression onto `outputs` real targets (`[Nq, outputs]`), e.g. 1 for the sinusoid.
    Regression {
        /// Targets per example.
        outputs: usize,
    },
}

impl TaskKind {
    /// The width of the head: `n_way` or `outputs`.
    pub fn outputs(self) -> usize {
        match self {
            TaskKind::Classification { n_way } => n_way,
            TaskKind::Regression { outputs } => outputs,
        }
    }

    /// `body` with a linear head of [`TaskKind::outputs`] outputs, and its parameters drawn
    /// from `rng`.
    pub fn headed_network<T: Float, B: Backbone>(
        self,
        body: B,
        rng: &mut dyn rand::RngCore,
    ) -> (Network<B>, Params<T>) {
        let net = Network::with_head(body, self.outputs());
        let theta = net.init(rng);
        (net, theta)
    }
}

/// One task of a meta-batch: a support set to adapt on and a query set to score.
#[derive(Clone, Debug)]
pub struct TaskData<T: Float> {
    /// Support inputs `[Ns, ...]`.
    pub support_x: Tensor<T>,
    /// Support targets.
    pub support_y: Target<T>,
    /// Query inputs `[Nq, ...]`.
    pub query_x: Tensor<T>,
    /// Query targets.
    pub query_y: Target<T>,
    /// The dataset class of each episode label (`classes[k]` is label `k`'s class in its
    /// split), when the task is an episode of a dataset; `None` for tasks built by hand and
    /// regression tasks. Baseline's base-class pre-training labels its global classifier with
    /// them (Chen et al. 2019).
    pub classes: Option<Vec<usize>>,
}

impl<T: Float> TaskData<T> {
    /// The support and query inputs in one batch `[Ns + Nq, ...]`, support first.
    pub fn support_and_query_x(&self) -> Tensor<T> {
        Tensor::concat(&[self.support_x.clone(), self.query_x.clone()], 0)
    }
}

/// An episode as a classification task: inputs `[N*K, ..example_shape]` and
/// `[N*Q, ..example_shape]`, labels `0..N`.
impl From<Episode> for TaskData<f32> {
    fn from(ep: Episode) -> Self {
        let (support_shape, query_shape) = (ep.support_shape(), ep.query_shape());
        TaskData {
            support_x: Tensor::from_vec(ep.support_x, &support_shape),
            support_y: Target::Classes(ep.support_y),
            query_x: Tensor::from_vec(ep.query_x, &query_shape),
            query_y: Target::Classes(ep.query_y),
            classes: Some(ep.indices.classes),
        }
    }
}

/// A sinusoid task as a regression task: inputs and targets as columns `[K, 1]`, `[Q, 1]`.
impl From<&SinusoidTask> for TaskData<f32> {
    fn from(t: &SinusoidTask) -> Self {
        let column = |v: &Vec<f32>| Tensor::from_vec(v.clone(), &[v.len(), 1]);
        TaskData {
            support_x: column(&t.support_x),
            support_y: Target::Values(column(&t.support_y)),
            query_x: column(&t.query_x),
            query_y: Target::Values(column(&t.query_y)),
            classes: None,
        }
    }
}

//! Named, ordered parameter lists.

use crate::tensor::{Float, Tensor};

/// An ordered list of named tensors: a model's parameters, their gradients, or optimizer state.
#[derive(Clone, Debug, Default)]
pub struct Params<T: Float = f32> {
    names: Vec<String>,
    tensors: Vec<Tensor<T>>,
}

impl<T: Float> Params<T> {
    /// An empty list.
    pub fn new() -> Self {
        Params {
            names: Vec::new(),
            tensors: Vec::new(),
        }
    }

    /// A list from names and tensors of equal length.
    pub fn from_parts(names: Vec<String>, tensors: Vec<Tensor<T>>) -> Self {
        assert_eq!(
            names.len(),
            tensors.len(),
            "Params::from_parts: {} names for {} tensors",
            names.len(),
            tensors.len()
        );
        Params { names, tensors }
    }

    /// Appends a named tensor.
    pub fn push(&mut self, name: impl Into<String>, t: Tensor<T>) {
        self.names.push(name.into());
        self.tensors.push(t);
    }

    /// The number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// The names, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The tensors, in order.
    pub fn tensors(&self) -> &[Tensor<T>] {
        &self.tensors
    }

    /// The tensor at position `i`.
    pub fn at(&self, i: usize) -> &Tensor<T> {
        &self.tensors[i]
    }

    /// The tensor called `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Tensor<T>> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| &self.tensors[i])
    }

    /// `(name, tensor)` pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor<T>)> {
        self.names.iter().map(|s| s.as_str()).zip(&self.tensors)
    }

    /// The total number of scalars.
    pub fn numel(&self) -> usize {
        self.tensors.iter().map(|t| t.numel()).sum()
    }

    /// The same names with each tensor mapped by `f`.
    pub fn map(&self, f: impl Fn(&Tensor<T>) -> Tensor<T>) -> Params<T> {
        Params {
            names: self.names.clone(),
            tensors: self.tensors.iter().map(f).collect(),
        }
    }

    /// The same names with tensors replaced by `tensors` (same count and shapes).
    pub fn with_tensors(&self, tensors: Vec<Tensor<T>>) -> Params<T> {
        assert_eq!(
            tensors.len(),
            self.len(),
            "Params::with_tensors: {} tensors for {} names",
            tensors.len(),
            self.len()
        );
        for ((n, a), b) in self.iter().zip(&tensors) {
            assert_eq!(
                a.shape(),
                b.shape(),
                "Params::with_tensors: shape of {n} changes"
            );
        }
        Params {
            names: self.names.clone(),
            tensors,
        }
    }

    /// The same tensors with every name prefixed by `prefix` (`"param/"` turns `head.weight`
    /// into `param/head.weight`).
    pub fn prefixed(&self, prefix: &str) -> Params<T> {
        Params {
            names: self.names.iter().map(|n| format!("{prefix}{n}")).collect(),
            tensors: self.tensors.clone(),
        }
    }

    /// The entries at positions `range`, names and tensors.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Params<T> {
        Params {
            names: self.names[range.clone()].to_vec(),
            tensors: self.tensors[range].to_vec(),
        }
    }

    /// `self`'s entries followed by `other`'s.
    pub fn concat(&self, other: &Params<T>) -> Params<T> {
        let mut out = self.clone();
        out.names.extend_from_slice(&other.names);
        out.tensors.extend_from_slice(&other.tensors);
        out
    }

    /// The first `mid` entries and the rest: `(self[..mid], self[mid..])`.
    pub fn split_at(&self, mid: usize) -> (Params<T>, Params<T>) {
        (self.slice(0..mid), self.slice(mid..self.len()))
    }

    /// Fresh leaves holding the same values, with gradients enabled (for meta-parameters).
    pub fn requires_grad_(&self) -> Params<T> {
        self.map(|t| t.detach().requires_grad_())
    }

    /// The same values with no history.
    pub fn detach(&self) -> Params<T> {
        self.map(|t| t.detach())
    }

    /// `self - lr * grads`, recorded (differentiable in both when gradients are being recorded).
    /// This is MAML's inner step `phi' = phi - alpha * grad L(phi)`.
    pub fn sgd_step(&self, grads: &[Tensor<T>], lr: f64) -> Params<T> {
        assert_eq!(
            grads.len(),
            self.len(),
            "Params::sgd_step: {} gradients for {} parameters",
            grads.len(),
            self.len()
        );
        self.with_tensors(
            self.tensors
                .iter()
                .zip(grads)
                .map(|(p, g)| p.sub(&g.mul_scalar(lr)))
                .collect(),
        )
    }

    /// Elementwise `self + other * scale` (no history): accumulating gradients or averaging.
    pub fn axpy(&self, other: &Params<T>, scale: f64) -> Params<T> {
        crate::autodiff::no_grad(|| {
            self.with_tensors(
                self.tensors
                    .iter()
                    .zip(&other.tensors)
                    .map(|(a, b)| a.add(&b.mul_scalar(scale)))
                    .collect(),
            )
        })
    }

    /// Zeros of the same names and shapes.
    pub fn zeros_like(&self) -> Params<T> {
        self.map(|t| Tensor::zeros(t.shape()))
    }

    /// Keeps the entries whose name satisfies `keep`.
    pub fn filter(&self, keep: impl Fn(&str) -> bool) -> Params<T> {
        let mut out = Params::new();
        for (n, t) in self.iter() {
            if keep(n) {
                out.push(n, t.clone());
            }
        }
        out
    }

    /// Replaces the entries named in `other` by `other`'s tensors.
    pub fn merged(&self, other: &Params<T>) -> Params<T> {
        let mut out = self.clone();
        for (n, t) in other.iter() {
            if let Some(i) = out.names.iter().position(|m| m == n) {
                out.tensors[i] = t.clone();
            }
        }
        out
    }

    /// Converts every tensor to another element type (no history).
    pub fn cast<U: Float>(&self) -> Params<U> {
        Params {
            names: self.names.clone(),
            tensors: self.tensors.iter().map(|t| t.cast()).collect(),
        }
    }

    /// The Euclidean norm over all tensors, `sqrt(sum_i ||t_i||^2)`.
    pub fn global_norm(&self) -> f64 {
        self.tensors
            .iter()
            .flat_map(|t| t.data().iter().map(|x| x.as_f64() * x.as_f64()))
            .sum::<f64>()
            .sqrt()
    }
}

//! Dense row-major tensors of `f32` or `f64`, and every differentiable op on them.
//!
//! A [`Tensor`] is an immutable, cheaply clonable handle (an `Arc`). An op computes its result
//! with a CPU kernel and, when gradients are being recorded (see [`crate::autodiff`]), attaches a
//! backward rule that is itself written with tensor ops, so gradients can be differentiated again.
//!
//! Files: `shape` (broadcasting), `elementwise` (arithmetic and pointwise functions),
//! `reduce` (sums, means, maxima), `layout` (reshape, permute, concat, slicing, indexing),
//! `linalg` (matmul, the linear solve, `f64` dot / Gram helpers), `conv` (conv2d and pooling), `functional` (softmax, batch norm, losses),
//! `fused` (op chains computed in one kernel).

/// `impl_backward!(Op, "name", |self, ctx, g| body)`: implements [`Backward`] for `Op`, whose
/// [`Backward::name`] is `"name"` and whose [`Backward::backward`] is `body`, with `ctx` the
/// op's [`crate::autodiff::BackwardCtx`] and `g` the gradient of its output.
macro_rules! impl_backward {
    ($op:ty, $name:literal, |$this:ident, $ctx:ident, $g:ident| $body:expr) => {
        impl<T: Float> $crate::autodiff::Backward<T> for $op {
            fn name(&self) -> &'static str {
                $name
            }
            fn backward(
                &$this,
                $ctx: &$crate::autodiff::BackwardCtx<'_, T>,
                $g: &Tensor<T>,
            ) -> Vec<Option<Tensor<T>>> {
                $body
            }
        }
    };
}

mod conv;
mod elementwise;
mod functional;
mod fused;
mod index;
mod kernels;
mod layout;
pub mod linalg;
pub mod parallel;
mod reduce;
pub mod shape;
mod storage;
mod view;
mod winograd;

pub use conv::conv_bench_report;
pub use storage::{Device, Storage};

use crate::autodiff::{is_grad_enabled, Backward, GradFn};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The element types a tensor can hold: `f32` for speed, `f64` for checks and references.
pub trait Float:
    num_traits::Float
    + num_traits::FromPrimitive
    + std::iter::Sum
    + std::ops::AddAssign
    + std::ops::SubAssign
    + std::ops::MulAssign
    + std::ops::DivAssign
    + Default
    + fmt::Debug
    + fmt::Display
    + Send
    + Sync
    + 'static
{
    /// The name of the type as safetensors spells it (`F32`, `F64`).
    const DTYPE_NAME: &'static str;

    /// Converts from `f64` (rounding to nearest for `f32`).
    fn of(x: f64) -> Self;

    /// Converts to `f64` exactly.
    fn as_f64(self) -> f64;
}

impl Float for f32 {
    const DTYPE_NAME: &'static str = "F32";
    #[inline]
    fn of(x: f64) -> Self {
        x as f32
    }
    #[inline]
    fn as_f64(self) -> f64 {
        self as f64
    }
}

impl Float for f64 {
    const DTYPE_NAME: &'static str = "F64";
    #[inline]
    fn of(x: f64) -> Self {
        x
    }
    #[inline]
    fn as_f64(self) -> f64 {
        self
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) struct Inner<T: Float> {
    pub(crate) id: u64,
    pub(crate) storage: Arc<Storage<T>>,
    pub(crate) shape: Vec<usize>,
    pub(crate) requires_grad: bool,
    /// The op that made this tensor, with its inputs. `None` for leaves, and taken out when a
    /// backward pass that does not retain the graph has gone through it.
    pub(crate) grad_fn: Mutex<Option<GradFn<T>>>,
    /// Whether `grad_fn` was set once and freed since.
    pub(crate) graph_freed: std::sync::atomic::AtomicBool,
}

/// A dense, row-major, contiguous n-dimensional array with an optional autodiff history.
///
/// Cloning is O(1) (shared data). Tensors are immutable: every op returns a new tensor.
pub struct Tensor<T: Float = f32> {
    pub(crate) inner: Arc<Inner<T>>,
}

impl<T: Float> Clone for Tensor<T> {
    fn clone(&self) -> Self {
        Tensor {
            inner: self.inner.clone(),
        }
    }
}

impl<T: Float> fmt::Debug for Tensor<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let data = self.data();
        let shown: Vec<T> = data.iter().take(8).copied().collect();
        write!(
            f,
            "Tensor<{}>{:?}{} {:?}{}",
            T::DTYPE_NAME,
            self.shape(),
            if self.requires_grad() { " (grad)" } else { "" },
            shown,
            if data.len() > 8 { " ..." } else { "" }
        )
    }
}

impl<T: Float> Tensor<T> {
    fn build(
        storage: Arc<Storage<T>>,
        shape: Vec<usize>,
        requires_grad: bool,
        grad_fn: Option<GradFn<T>>,
    ) -> Self {
        crate::alloc::init();
        Tensor {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                storage,
                shape,
                requires_grad,
                grad_fn: Mutex::new(grad_fn),
                graph_freed: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// A tensor holding `data` (row-major) with the given shape.
    ///
    /// Panics if `data.len()` is not the product of `shape`.
    pub fn from_vec(data: Vec<T>, shape: &[usize]) -> Self {
        let n: usize = shape.iter().product();
        assert_eq!(
            data.len(),
            n,
            "Tensor::from_vec: {} values given for shape {:?} ({} expected)",
            data.len(),
            shape,
            n
        );
        Self::build(Arc::new(Storage::Cpu(data)), shape.to_vec(), false, None)
    }

    /// Adds `other` into `self`'s buffer in place when that is unobservable: `self` is the only
    /// handle to its data, and neither side is part of a recorded graph. Returns whether it did;
    /// callers fall back to `add` otherwise. (Gradient accumulation in an unrecorded backward
    /// pass: saves one allocation and one pass per accumulated gradient.)
    pub(crate) fn add_assign_unique(&mut self, other: &Tensor<T>) -> bool {
        if self.shape() != other.shape() || self.requires_grad() || other.requires_grad() {
            return false;
        }
        let Some(inner) = Arc::get_mut(&mut self.inner) else {
            return false;
        };
        let Some(Storage::Cpu(buf)) = Arc::get_mut(&mut inner.storage) else {
            return false;
        };
        parallel::add_assign(buf, other.data());
        true
    }

    /// A tensor with every element equal to `value`.
    pub fn full(shape: &[usize], value: T) -> Self {
        Self::from_vec(vec![value; shape.iter().product()], shape)
    }

    /// A tensor of zeros.
    pub fn zeros(shape: &[usize]) -> Self {
        Self::full(shape, T::zero())
    }

    /// A tensor of ones.
    pub fn ones(shape: &[usize]) -> Self {
        Self::full(shape, T::one())
    }

    /// A 0-d tensor holding one value.
    pub fn scalar(value: T) -> Self {
        Self::from_vec(vec![value], &[])
    }

    /// A tensor converted from `f64` values.
    pub fn from_f64(data: &[f64], shape: &[usize]) -> Self {
        Self::from_vec(data.iter().map(|&x| T::of(x)).collect(), shape)
    }

    /// Values drawn independently from U[lo, hi).
    pub fn rand_uniform(shape: &[usize], lo: f64, hi: f64, rng: &mut impl rand::Rng) -> Self {
        let n = shape.iter().product();
        let data = (0..n).map(|_| T::of(rng.gen_range(lo..hi))).collect();
        Self::from_vec(data, shape)
    }

    /// Values drawn independently from N(mean, std^2).
    pub fn rand_normal(shape: &[usize], mean: f64, std: f64, rng: &mut impl rand::Rng) -> Self {
        use rand_distr::Distribution;
        let dist = rand_distr::Normal::new(mean, std)
            .expect("Tensor::rand_normal: std must be finite and >= 0");
        let n = shape.iter().product();
        let data = (0..n).map(|_| T::of(dist.sample(rng))).collect();
        Self::from_vec(data, shape)
    }

    /// The result of an op: records `backward` with its `inputs` when gradients are being
    /// recorded and some input requires a gradient. `backward` is only called in that case.
    pub(crate) fn from_op<B: Backward<T> + 'static>(
        data: Vec<T>,
        shape: Vec<usize>,
        inputs: &[&Tensor<T>],
        backward: impl FnOnce() -> B,
    ) -> Self {
        debug_assert_eq!(data.len(), shape.iter().product::<usize>());
        let record = is_grad_enabled() && inputs.iter().any(|t| t.requires_grad());
        let grad_fn = if record {
            Some(GradFn {
                op: Box::new(backward()),
                inputs: inputs.iter().map(|t| (*t).clone()).collect(),
            })
        } else {
            None
        };
        Self::build(Arc::new(Storage::Cpu(data)), shape, record, grad_fn)
    }

    /// A tensor sharing this one's data with another shape (no copy), recording `backward`.
    pub(crate) fn share_op<B: Backward<T> + 'static>(
        &self,
        shape: Vec<usize>,
        backward: impl FnOnce() -> B,
    ) -> Self {
        let record = is_grad_enabled() && self.requires_grad();
        let grad_fn = if record {
            Some(GradFn {
                op: Box::new(backward()),
                inputs: vec![self.clone()],
            })
        } else {
            None
        };
        Self::build(self.inner.storage.clone(), shape, record, grad_fn)
    }

    /// The same data as a leaf that gradients are taken with respect to
    /// (PyTorch's `x.detach().requires_grad_()`).
    pub fn requires_grad_(self) -> Self {
        self.leaf(true)
    }

    /// The same data with no history: gradients do not flow through the result.
    pub fn detach(&self) -> Self {
        self.leaf(false)
    }

    /// The same data as a new leaf (no history), taking gradients when `requires_grad`.
    fn leaf(&self, requires_grad: bool) -> Self {
        Self::build(
            self.inner.storage.clone(),
            self.inner.shape.clone(),
            requires_grad,
            None,
        )
    }

    /// Whether gradients flow to or through this tensor.
    pub fn requires_grad(&self) -> bool {
        self.inner.requires_grad
    }

    /// Whether this tensor was made by a recorded op (it is not a leaf).
    pub fn has_grad_fn(&self) -> bool {
        self.inner
            .grad_fn
            .lock()
            .expect("poisoned grad_fn")
            .is_some()
    }

    /// A process-unique id (used as a key by the autodiff engine).
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The shape, outermost dimension first.
    pub fn shape(&self) -> &[usize] {
        &self.inner.shape
    }

    /// The number of dimensions.
    pub fn ndim(&self) -> usize {
        self.inner.shape.len()
    }

    /// The size of dimension `d`.
    pub fn dim(&self, d: usize) -> usize {
        self.inner.shape[d]
    }

    /// The number of elements.
    pub fn numel(&self) -> usize {
        self.inner.shape.iter().product()
    }

    /// The device holding the data.
    pub fn device(&self) -> Device {
        self.inner.storage.device()
    }

    /// The elements, row-major.
    pub fn data(&self) -> &[T] {
        self.inner.storage.as_slice()
    }

    /// The elements as a new vector.
    pub fn to_vec(&self) -> Vec<T> {
        self.data().to_vec()
    }

    /// The elements converted to `f64`.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        self.data().iter().map(|x| x.as_f64()).collect()
    }

    /// The single value of a one-element tensor.
    pub fn item(&self) -> T {
        assert_eq!(
            self.numel(),
            1,
            "Tensor::item on a tensor of shape {:?}",
            self.shape()
        );
        self.data()[0]
    }

    /// A copy in another element type (no history).
    pub fn cast<U: Float>(&self) -> Tensor<U> {
        Tensor::from_vec(
            self.data().iter().map(|x| U::of(x.as_f64())).collect(),
            self.shape(),
        )
    }

    /// The largest absolute difference to another tensor of the same shape.
    pub fn max_abs_diff(&self, other: &Tensor<T>) -> f64 {
        assert_eq!(self.shape(), other.shape(), "max_abs_diff: shapes differ");
        self.data()
            .iter()
            .zip(other.data())
            .map(|(a, b)| (a.as_f64() - b.as_f64()).abs())
            .fold(0.0, f64::max)
    }
}

//! Elementwise arithmetic with broadcasting, scalar arithmetic and pointwise functions.
//!
//! Backward rules (g = upstream gradient, y = output):
//! `a+b: (g, g)`, `a-b: (g, -g)`, `a*b: (g b, g a)`, `a/b: (g/b, -g y/b)`, each summed back to
//! its input's shape; `exp: g y`, `log: g/x`, `sqrt: g/(2y)`, `x^p: g p x^(p-1)`,
//! `sigmoid: g y (1-y)`, `tanh: g (1-y^2)`, `relu, abs, clamp: g * mask` with a constant mask
//! (ReLU'(0) = 0, as PyTorch), `leaky_relu(a): g` where `x > 0`, else `a g` (also at 0, as
//! PyTorch).

use super::shape::{broadcast_shapes, broadcast_strides};
use super::view::for_each_row;
use super::{parallel, Float, Tensor};
use crate::autodiff::{Backward, BackwardCtx};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BinaryKind {
    Add,
    Sub,
    Mul,
    Div,
}

impl BinaryKind {
    fn name(self) -> &'static str {
        match self {
            BinaryKind::Add => "add",
            BinaryKind::Sub => "sub",
            BinaryKind::Mul => "mul",
            BinaryKind::Div => "div",
        }
    }
}

struct BinaryBackward(BinaryKind);

impl<T: Float> Backward<T> for BinaryBackward {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn backward(&self, ctx: &BackwardCtx<'_, T>, g: &Tensor<T>) -> Vec<Option<Tensor<T>>> {
        let (a, b) = (&ctx.inputs[0], &ctx.inputs[1]);
        let (ga, gb) = match self.0 {
            BinaryKind::Add => (
                ctx.needs[0].then(|| g.clone()),
                ctx.needs[1].then(|| g.clone()),
            ),
            BinaryKind::Sub => (
                ctx.needs[0].then(|| g.clone()),
                ctx.needs[1].then(|| g.neg()),
            ),
            BinaryKind::Mul => (
                ctx.needs[0].then(|| g.mul(b)),
                ctx.needs[1].then(|| g.mul(a)),
            ),
            BinaryKind::Div => (
                ctx.needs[0].then(|| g.div(b)),
                ctx.needs[1].then(|| g.mul(ctx.output).div(b).neg()),
            ),
        };
        vec![
            ga.map(|t| t.sum_to(a.shape())),
            gb.map(|t| t.sum_to(b.shape())),
        ]
    }
}

fn binary<T: Float>(a: &Tensor<T>, b: &Tensor<T>, kind: BinaryKind) -> Tensor<T> {
    // One monomorphised (vectorisable) loop per kind: a closure chosen at run time would be
    // called through a function pointer for every element.
    match kind {
        BinaryKind::Add => binary_with(a, b, kind, |x, y| x + y),
        BinaryKind::Sub => binary_with(a, b, kind, |x, y| x - y),
        BinaryKind::Mul => binary_with(a, b, kind, |x, y| x * y),
        BinaryKind::Div => binary_with(a, b, kind, |x, y| x / y),
    }
}

#[inline(always)]
fn binary_with<T: Float>(
    a: &Tensor<T>,
    b: &Tensor<T>,
    kind: BinaryKind,
    f: impl Fn(T, T) -> T + Sync + Send,
) -> Tensor<T> {
    let (ad, bd) = (a.data(), b.data());
    let (data, shape) = if a.shape() == b.shape() {
        (parallel::zip_slices(ad, bd, &f), a.shape().to_vec())
    } else if b.numel() == 1 && b.ndim() <= a.ndim() {
        let y = bd[0];
        (parallel::map_slice(ad, |x| f(x, y)), a.shape().to_vec())
    } else if a.numel() == 1 && a.ndim() <= b.ndim() {
        let x = ad[0];
        (parallel::map_slice(bd, |y| f(x, y)), b.shape().to_vec())
    } else {
        let shape = broadcast_shapes(a.shape(), b.shape()).unwrap_or_else(|| {
            panic!(
                "{}: shapes {:?} and {:?} do not broadcast",
                kind.name(),
                a.shape(),
                b.shape()
            )
        });
        (
            broadcast_zip(ad, a.shape(), bd, b.shape(), &shape, f),
            shape,
        )
    };
    Tensor::from_op(data, shape, &[a, b], || BinaryBackward(kind))
}

/// `f(a[i], b[i])` over the broadcast shape `out`.
fn broadcast_zip<T: Float>(
    ad: &[T],
    ash: &[usize],
    bd: &[T],
    bsh: &[usize],
    out: &[usize],
    f: impl Fn(T, T) -> T,
) -> Vec<T> {
    let sa = broadcast_strides(ash, out);
    let sb = broadcast_strides(bsh, out);
    let n: usize = out.iter().product();
    let mut res = Vec::with_capacity(n);
    for_each_row(out, [&sa, &sb], |[oa, ob], len, [da, db]| match (da, db) {
        (1, 0) => {
            let y = bd[ob];
            res.extend(ad[oa..oa + len].iter().map(|&x| f(x, y)));
        }
        (0, 1) => {
            let x = ad[oa];
            res.extend(bd[ob..ob + len].iter().map(|&y| f(x, y)));
        }
        _ => res.extend((0..len).map(|j| f(ad[oa + j * da], bd[ob + j * db]))),
    });
    res
}

#[derive(Clone, Copy, Debug)]
enum UnaryKind {
    Neg,
    Exp,
    Log,
    Sqrt,
    Abs,
    Relu,
    Sigmoid,
    Tanh,
    Powf(f64),
    AddScalar(f64),
    MulScalar(f64),
    Clamp(f64, f64),
    LeakyRelu(f64),
}

impl UnaryKind {
    fn name(self) -> &'static str {
        match self {
            UnaryKind::Neg => "neg",
            UnaryKind::Exp => "exp",
            UnaryKind::Log => "log",
            UnaryKind::Sqrt => "sqrt",
            UnaryKind::Abs => "abs",
            UnaryKind::Relu => "relu",
            UnaryKind::Sigmoid => "sigmoid",
            UnaryKind::Tanh => "tanh",
            UnaryKind::Powf(_) => "powf",
            UnaryKind::AddScalar(_) => "add_scalar",
            UnaryKind::MulScalar(_) => "mul_scalar",
            UnaryKind::Clamp(_, _) => "clamp",
            UnaryKind::LeakyRelu(_) => "leaky_relu",
        }
    }
}

struct UnaryBackward(UnaryKind);

impl<T: Float> Backward<T> for UnaryBackward {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn backward(&self, ctx: &BackwardCtx<'_, T>, g: &Tensor<T>) -> Vec<Option<Tensor<T>>> {
        let x = &ctx.inputs[0];
        let y = ctx.output;
        let gx = match self.0 {
            UnaryKind::Neg => g.neg(),
            UnaryKind::Exp => g.mul(y),
            UnaryKind::Log => g.div(x),
            UnaryKind::Sqrt => g.div(y).mul_scalar(0.5),
            UnaryKind::Abs => g.mul(&mask_of(x, |v| {
                if v > T::zero() {
                    T::one()
                } else if v < T::zero() {
                    -T::one()
                } else {
                    T::zero()
                }
            })),
            UnaryKind::Relu => g.where_positive(x),
            UnaryKind::Sigmoid => g.mul(&y.mul(&y.neg().add_scalar(1.0))),
            UnaryKind::Tanh => g.mul(&y.mul(y).neg().add_scalar(1.0)),
            UnaryKind::Powf(p) => g.mul(&x.powf(p - 1.0)).mul_scalar(p),
            UnaryKind::AddScalar(_) => g.clone(),
            UnaryKind::MulScalar(c) => g.mul_scalar(c),
            UnaryKind::Clamp(lo, hi) => {
                let (lo, hi) = (T::of(lo), T::of(hi));
                g.mul(&mask_of(x, |v| {
                    if v >= lo && v <= hi {
                        T::one()
                    } else {
                        T::zero()
                    }
                }))
            }
            UnaryKind::LeakyRelu(a) => g.where_positive_else_scaled(x, a),
        };
        vec![Some(gx)]
    }
}

/// A constant (history-free) tensor `m(x)` elementwise.
fn mask_of<T: Float>(x: &Tensor<T>, m: impl Fn(T) -> T) -> Tensor<T> {
    Tensor::from_vec(x.data().iter().map(|&v| m(v)).collect(), x.shape())
}

fn unary<T: Float>(x: &Tensor<T>, kind: UnaryKind) -> Tensor<T> {
    let d = x.data();
    let data: Vec<T> = match kind {
        UnaryKind::Neg => parallel::map_slice(d, |v| -v),
        UnaryKind::Exp => parallel::map_slice(d, |v| v.exp()),
        UnaryKind::Log => parallel::map_slice(d, |v| v.ln()),
        UnaryKind::Sqrt => parallel::map_slice(d, |v| v.sqrt()),
        UnaryKind::Abs => parallel::map_slice(d, |v| v.abs()),
        UnaryKind::Relu => parallel::map_slice(d, |v| if v > T::zero() { v } else { T::zero() }),
        UnaryKind::Sigmoid => parallel::map_slice(d, |v| sigmoid(v)),
        UnaryKind::Tanh => parallel::map_slice(d, |v| v.tanh()),
        UnaryKind::Powf(p) => {
            let p = T::of(p);
            parallel::map_slice(d, |v| v.powf(p))
        }
        UnaryKind::AddScalar(c) => {
            let c = T::of(c);
            parallel::map_slice(d, |v| v + c)
        }
        UnaryKind::MulScalar(c) => {
            let c = T::of(c);
            parallel::map_slice(d, |v| v * c)
        }
        UnaryKind::Clamp(lo, hi) => {
            let (lo, hi) = (T::of(lo), T::of(hi));
            parallel::map_slice(d, |v| v.max(lo).min(hi))
        }
        UnaryKind::LeakyRelu(a) => {
            let a = T::of(a);
            parallel::map_slice(d, |v| if v > T::zero() { v } else { a * v })
        }
    };
    Tensor::from_op(data, x.shape().to_vec(), &[x], || UnaryBackward(kind))
}

/// The logistic function, computed without overflow for large |x|.
#[inline]
pub(crate) fn sigmoid<T: Float>(v: T) -> T {
    if v >= T::zero() {
        T::one() / (T::one() + (-v).exp())
    } else {
        let e = v.exp();
        e / (T::one() + e)
    }
}

/// `where_positive(g, x)`: linear in `g` with a constant pattern from `x`, so its gradient
/// with respect to `g` is the same op and `x` gets none (ReLU's second derivative is 0).
struct WherePositiveBackward;
impl_backward!(WherePositiveBackward, "where_positive", |self, ctx, g| {
    vec![ctx.needs[0].then(|| g.where_positive(&ctx.inputs[1])), None]
});

/// `where_positive_else_scaled(g, x, a)`: linear in `g` with a constant pattern from `x`, so
/// its gradient with respect to `g` is the same op and `x` gets none (LeakyReLU's second
/// derivative is 0).
struct WherePositiveElseScaledBackward {
    slope: f64,
}
impl_backward!(
    WherePositiveElseScaledBackward,
    "where_positive_else_scaled",
    |self, ctx, g| {
        vec![
            ctx.needs[0].then(|| g.where_positive_else_scaled(&ctx.inputs[1], self.slope)),
            None,
        ]
    }
);

/// The elementwise methods of [`Tensor`]: `binary name => Kind;` is
/// `pub fn name(&self, other: &Tensor<T>) -> Tensor<T>` computing `BinaryKind::Kind`, and
/// `unary name => Kind;` is `pub fn name(&self) -> Tensor<T>` computing `UnaryKind::Kind`,
/// each under the doc comment written before it.
macro_rules! elementwise_methods {
    ($($(#[$doc:meta])* $arity:ident $name:ident => $kind:ident;)*) => {
        $(elementwise_methods!(@one $(#[$doc])* $arity $name $kind);)*
    };
    (@one $(#[$doc:meta])* binary $name:ident $kind:ident) => {
        $(#[$doc])*
        pub fn $name(&self, other: &Tensor<T>) -> Tensor<T> {
            binary(self, other, BinaryKind::$kind)
        }
    };
    (@one $(#[$doc:meta])* unary $name:ident $kind:ident) => {
        $(#[$doc])*
        pub fn $name(&self) -> Tensor<T> {
            unary(self, UnaryKind::$kind)
        }
    };
}

impl<T: Float> Tensor<T> {
    /// `self` where `x > 0`, else 0 (one pass): ReLU's backward, `g * [x > 0]`.
    pub fn where_positive(&self, x: &Tensor<T>) -> Tensor<T> {
        assert_eq!(
            self.shape(),
            x.shape(),
            "where_positive: shapes {:?} and {:?} differ",
            self.shape(),
            x.shape()
        );
        let data = self
            .data()
            .iter()
            .zip(x.data())
            .map(|(&g, &v)| if v > T::zero() { g } else { T::zero() })
            .collect();
        Tensor::from_op(data, self.shape().to_vec(), &[self, x], || {
            WherePositiveBackward
        })
    }

    /// `self` where `x > 0`, else `slope * self` (one pass): LeakyReLU's backward,
    /// `g * (x > 0 ? 1 : slope)`. Differentiable again with respect to `self` (itself, with the
    /// same `x`); `x` only selects, so it gets no gradient.
    pub fn where_positive_else_scaled(&self, x: &Tensor<T>, slope: f64) -> Tensor<T> {
        assert_eq!(
            self.shape(),
            x.shape(),
            "where_positive_else_scaled: shapes {:?} and {:?} differ",
            self.shape(),
            x.shape()
        );
        let a = T::of(slope);
        let data = self
            .data()
            .iter()
            .zip(x.data())
            .map(|(&g, &v)| if v > T::zero() { g } else { a * g })
            .collect();
        Tensor::from_op(data, self.shape().to_vec(), &[self, x], || {
            WherePositiveElseScaledBackward { slope }
        })
    }

    /// Leaky ReLU (Maas et al. 2013; the activation of ResNet-12 in Lee et al. 2019,
    /// MetaOptNet, with `slope` 0.1): `x` where `x > 0`, else `slope * x`, elementwise.
    /// Gradient 1 where `x > 0`, else `slope` (so `slope` at 0, as PyTorch's `LeakyReLU`);
    /// second derivative 0.
    pub fn leaky_relu(&self, slope: f64) -> Tensor<T> {
        unary(self, UnaryKind::LeakyRelu(slope))
    }

    elementwise_methods! {
        /// `self + other`, broadcasting.
        binary add => Add;
        /// `self - other`, broadcasting.
        binary sub => Sub;
        /// `self * other` elementwise, broadcasting.
        binary mul => Mul;
        /// `self / other` elementwise, broadcasting.
        binary div => Div;
        /// `-self`.
        unary neg => Neg;
        /// `e^x` elementwise.
        unary exp => Exp;
        /// Natural logarithm elementwise.
        unary log => Log;
        /// Square root elementwise.
        unary sqrt => Sqrt;
        /// `|x|` elementwise (gradient `sign(x)`, 0 at 0).
        unary abs => Abs;
        /// `max(x, 0)` elementwise (gradient 1 for x > 0, else 0).
        unary relu => Relu;
        /// `1 / (1 + e^-x)` elementwise.
        unary sigmoid => Sigmoid;
        /// Hyperbolic tangent elementwise.
        unary tanh => Tanh;
    }
    /// `x^p` elementwise for a constant real `p`.
    pub fn powf(&self, p: f64) -> Tensor<T> {
        unary(self, UnaryKind::Powf(p))
    }
    /// `x^2` elementwise.
    pub fn square(&self) -> Tensor<T> {
        self.mul(self)
    }
    /// `x + c` for a constant `c`.
    pub fn add_scalar(&self, c: f64) -> Tensor<T> {
        unary(self, UnaryKind::AddScalar(c))
    }
    /// `c * x` for a constant `c`.
    pub fn mul_scalar(&self, c: f64) -> Tensor<T> {
        unary(self, UnaryKind::MulScalar(c))
    }
    /// `min(max(x, lo), hi)` elementwise (gradient 1 where `lo <= x <= hi`, as PyTorch).
    pub fn clamp(&self, lo: f64, hi: f64) -> Tensor<T> {
        unary(self, UnaryKind::Clamp(lo, hi))
    }
    /// `mask ? a : b` elementwise, with `mask` a constant tensor of 0s and 1s (broadcasting):
    /// computed as `a * mask + b * (1 - mask)`, so gradients go to the selected side only.
    pub fn where_mask(mask: &Tensor<T>, a: &Tensor<T>, b: &Tensor<T>) -> Tensor<T> {
        assert!(
            !mask.requires_grad(),
            "where_mask: the mask must be a constant"
        );
        a.mul(mask).add(&b.mul(&mask.neg().add_scalar(1.0)))
    }
    /// A constant 0/1 tensor: 1 where `pred(x)` holds.
    pub fn mask(&self, pred: impl Fn(T) -> bool) -> Tensor<T> {
        mask_of(self, |v| if pred(v) { T::one() } else { T::zero() })
    }
}

macro_rules! impl_std_op {
    ($tr:ident, $m:ident) => {
        impl<T: Float> std::ops::$tr<&Tensor<T>> for &Tensor<T> {
            type Output = Tensor<T>;
            fn $m(self, rhs: &Tensor<T>) -> Tensor<T> {
                Tensor::$m(self, rhs)
            }
        }
    };
}
impl_std_op!(Add, add);
impl_std_op!(Sub, sub);
impl_std_op!(Mul, mul);
impl_std_op!(Div, div);

impl<T: Float> std::ops::Neg for &Tensor<T> {
    type Output = Tensor<T>;
    fn neg(self) -> Tensor<T> {
        Tensor::neg(self)
    }
}

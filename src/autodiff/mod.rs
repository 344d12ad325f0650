//! Reverse-mode automatic differentiation of any order.
//!
//! Every recorded op stores a [`Backward`] rule. Rules are written with differentiable tensor
//! ops, so when [`grad`] runs with `create_graph = true` the gradients it returns carry a graph
//! of their own and can be differentiated again (what true second-order MAML needs, like
//! `torch.autograd.grad(..., create_graph=True)`).
//!
//! Recording is on by default on every thread; [`no_grad`] turns it off for a scope. The mode is
//! per thread, and a rayon thread that waits inside one job may run another: code that runs
//! graph-building closures in parallel passes the caller's mode into each closure
//! (`set_grad_enabled(mode)` at its start), as `algorithms::registry::mean_over_tasks` does.

pub mod check;

use crate::tensor::{Float, Tensor};
use std::cell::Cell;
use std::collections::HashMap as StdHashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Tensor ids are unique integers, so they hash to themselves (mixed by a multiply):
/// much cheaper than SipHash on the autodiff hot path.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | b as u64;
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type HashMap<K, V> = StdHashMap<K, V, BuildHasherDefault<IdHasher>>;

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Whether ops on this thread record their history now.
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Restores the previous recording mode when dropped.
pub struct GradModeGuard {
    previous: bool,
}

impl Drop for GradModeGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.previous));
    }
}

/// Sets whether ops on this thread record history, until the guard is dropped.
pub fn set_grad_enabled(enabled: bool) -> GradModeGuard {
    let previous = GRAD_ENABLED.with(|g| g.replace(enabled));
    GradModeGuard { previous }
}

/// Runs `f` without recording any history (evaluation, optimizer updates).
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _guard = set_grad_enabled(false);
    f()
}

/// What an op gives its backward rule.
pub struct BackwardCtx<'a, T: Float> {
    /// The op's inputs, in the order the op recorded them.
    pub inputs: &'a [Tensor<T>],
    /// The op's result.
    pub output: &'a Tensor<T>,
    /// `needs[i]`: whether the gradient for `inputs[i]` is wanted (others may be `None`).
    pub needs: &'a [bool],
}

/// The backward rule of one op: maps the gradient of the output to the gradients of the inputs
/// (vector-Jacobian products), using only differentiable tensor ops.
pub trait Backward<T: Float>: Send + Sync {
    /// The op's name, for error messages.
    fn name(&self) -> &'static str;

    /// One gradient per input (`None` where not needed or identically zero).
    fn backward(&self, ctx: &BackwardCtx<'_, T>, grad_output: &Tensor<T>)
        -> Vec<Option<Tensor<T>>>;
}

/// A recorded op: its rule and its inputs.
pub struct GradFn<T: Float> {
    pub(crate) op: Box<dyn Backward<T>>,
    pub(crate) inputs: Vec<Tensor<T>>,
}

/// How [`grad_with`] runs.
#[derive(Clone, Copy, Debug)]
pub struct GradOptions {
    /// Record the backward pass so that the returned gradients are differentiable.
    pub create_graph: bool,
    /// Keep the forward graph after the pass so that it can be differentiated again.
    /// When false, each op's saved tensors are released as soon as the pass has gone through it.
    pub retain_graph: bool,
}

impl GradOptions {
    /// PyTorch's defaults: the graph is retained exactly when a graph is created.
    pub fn new(create_graph: bool) -> Self {
        GradOptions {
            create_graph,
            retain_graph: create_graph,
        }
    }
}

/// The gradients of the sum of `outputs` with respect to each of `inputs`.
///
/// Each output is seeded with ones (for a scalar loss: d loss / d input). With `create_graph`
/// the results are differentiable tensors; without it they are plain values, the forward graph
/// is freed as the pass goes (as with PyTorch's default `retain_graph = create_graph`), and no
/// graph is kept. An input the outputs do not depend on gets a zero gradient.
pub fn grad<T: Float>(
    outputs: &[Tensor<T>],
    inputs: &[Tensor<T>],
    create_graph: bool,
) -> Vec<Tensor<T>> {
    let seeds: Vec<Tensor<T>> = outputs.iter().map(|o| Tensor::ones(o.shape())).collect();
    grad_with(outputs, &seeds, inputs, GradOptions::new(create_graph))
}

struct Visit<T: Float> {
    tensor: Tensor<T>,
    inputs: Vec<Tensor<T>>,
}

/// [`grad`] with explicit upstream gradients (`grad_outputs[i]` has the shape of `outputs[i]`)
/// and options.
pub fn grad_with<T: Float>(
    outputs: &[Tensor<T>],
    grad_outputs: &[Tensor<T>],
    inputs: &[Tensor<T>],
    options: GradOptions,
) -> Vec<Tensor<T>> {
    assert_eq!(
        outputs.len(),
        grad_outputs.len(),
        "grad: {} outputs but {} upstream gradients",
        outputs.len(),
        grad_outputs.len()
    );
    for (o, g) in outputs.iter().zip(grad_outputs) {
        assert_eq!(
            o.shape(),
            g.shape(),
            "grad: upstream gradient shape differs from its output's"
        );
    }
    let targets: HashMap<u64, usize> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id(), i))
        .collect();

    // Topological order (inputs before users) of every node that requires grad, by an
    // iterative depth-first search, and whether each node leads to a target.
    let mut order: Vec<Visit<T>> = Vec::new();
    let mut index_of: HashMap<u64, usize> = HashMap::default();
    let mut reaches: Vec<bool> = Vec::new();
    {
        let mut state: HashMap<u64, bool> = HashMap::default(); // false: open, true: done
        let mut stack: Vec<(Tensor<T>, Vec<Tensor<T>>, usize)> = Vec::new();
        for out in outputs.iter().filter(|o| o.requires_grad()) {
            if state.contains_key(&out.id()) {
                continue;
            }
            state.insert(out.id(), false);
            stack.push((out.clone(), node_inputs(out), 0));
            while let Some((node, node_ins, next)) = stack.last_mut() {
                if *next < node_ins.len() {
                    let child = node_ins[*next].clone();
                    *next += 1;
                    if child.requires_grad() && !state.contains_key(&child.id()) {
                        state.insert(child.id(), false);
                        let ins = node_inputs(&child);
                        stack.push((child, ins, 0));
                    }
                } else {
                    let reach = targets.contains_key(&node.id())
                        || node_ins
                            .iter()
                            .any(|c| index_of.get(&c.id()).is_some_and(|&k| reaches[k]));
                    state.insert(node.id(), true);
                    index_of.insert(node.id(), order.len());
                    reaches.push(reach);
                    let (node, node_ins, _) = stack.pop().expect("stack is not empty");
                    order.push(Visit {
                        tensor: node,
                        inputs: node_ins,
                    });
                }
            }
        }
    }

    let _mode = crate::autodiff::set_grad_enabled(options.create_graph);
    let mut grads: HashMap<u64, Tensor<T>> = HashMap::default();
    for (o, g) in outputs.iter().zip(grad_outputs) {
        if o.requires_grad() {
            accumulate(&mut grads, o.id(), g.clone());
        }
    }
    let mut results: Vec<Option<Tensor<T>>> = vec![None; inputs.len()];
    for (k, visit) in order.iter().enumerate().rev() {
        let id = visit.tensor.id();
        let Some(g) = grads.remove(&id) else { continue };
        if let Some(&slot) = targets.get(&id) {
            results[slot] = Some(g.clone());
        }
        if !reaches[k] || visit.inputs.is_empty() {
            continue;
        }
        let needs: Vec<bool> = visit
            .inputs
            .iter()
            .map(|c| c.requires_grad() && index_of.get(&c.id()).is_some_and(|&j| reaches[j]))
            .collect();
        if !needs.iter().any(|&n| n) {
            continue;
        }
        let input_grads = {
            let guard = visit.tensor.inner.grad_fn.lock().expect("poisoned grad_fn");
            let grad_fn = guard.as_ref().unwrap_or_else(|| {
                panic!("grad: the graph behind this tensor was already freed; pass retain_graph = true to differentiate twice")
            });
            let ctx = BackwardCtx {
                inputs: &grad_fn.inputs,
                output: &visit.tensor,
                needs: &needs,
            };
            let gs = grad_fn.op.backward(&ctx, &g);
            assert_eq!(
                gs.len(),
                visit.inputs.len(),
                "{}: backward returned the wrong number of gradients",
                grad_fn.op.name()
            );
            for (gi, inp) in gs.iter().zip(&visit.inputs) {
                if let Some(gi) = gi {
                    assert_eq!(
                        gi.shape(),
                        inp.shape(),
                        "{}: backward produced a gradient of shape {:?} for an input of shape {:?}",
                        grad_fn.op.name(),
                        gi.shape(),
                        inp.shape()
                    );
                }
            }
            gs
        };
        if !options.retain_graph {
            let mut guard = visit.tensor.inner.grad_fn.lock().expect("poisoned grad_fn");
            *guard = None;
            visit
                .tensor
                .inner
                .graph_freed
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        for ((gi, inp), need) in input_grads.into_iter().zip(&visit.inputs).zip(&needs) {
            if let (Some(gi), true) = (gi, *need) {
                accumulate(&mut grads, inp.id(), gi);
            }
        }
    }
    results
        .into_iter()
        .zip(inputs)
        .map(|(g, input)| g.unwrap_or_else(|| Tensor::zeros(input.shape())))
        .collect()
}

fn node_inputs<T: Float>(t: &Tensor<T>) -> Vec<Tensor<T>> {
    let guard = t.inner.grad_fn.lock().expect("poisoned grad_fn");
    match guard.as_ref() {
        Some(f) => f.inputs.clone(),
        None => {
            if t.inner
                .graph_freed
                .load(std::sync::atomic::Ordering::Relaxed)
            {
                panic!("grad: the graph behind this tensor was already freed; pass retain_graph = true to differentiate twice");
            }
            Vec::new()
        }
    }
}

fn accumulate<T: Float>(grads: &mut HashMap<u64, Tensor<T>>, id: u64, g: Tensor<T>) {
    match grads.remove(&id) {
        Some(mut prev) => {
            if !prev.add_assign_unique(&g) {
                prev = prev.add(&g);
            }
            grads.insert(id, prev);
        }
        None => {
            grads.insert(id, g);
        }
    }
}

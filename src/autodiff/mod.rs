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
//! (`set_grad_enabled(mode)` at its start), as `algorithms::meta_batch::mean_over_tasks` does.

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

/// A node of the graph in backward order: the tensor and the inputs of the op that made it.
struct Visit<T: Float> {
    tensor: Tensor<T>,
    inputs: Vec<Tensor<T>>,
}

/// The part of the graph a backward pass walks: every node that requires grad, inputs before
/// users, and whether each leads to a wanted input.
struct Walk<T: Float> {
    /// The nodes in topological order (inputs before users).
    order: Vec<Visit<T>>,
    /// A node's position in `order`, by tensor id.
    index_of: HashMap<u64, usize>,
    /// `reaches[k]`: whether `order[k]` depends on one of the wanted inputs (or is one).
    reaches: Vec<bool>,
}

impl<T: Float> Walk<T> {
    /// Whether the node with tensor id `id` is on the walk and leads to a wanted input.
    fn leads_to_target(&self, id: u64) -> bool {
        self.index_of.get(&id).is_some_and(|&k| self.reaches[k])
    }
}

/// [`grad`] with explicit upstream gradients (`grad_outputs[i]` has the shape of `outputs[i]`)
/// and options.
///
/// Phases: the topological order of the graph behind `outputs` (`walk_graph`), then one
/// backward rule per node from the outputs down (`backward_rule`), accumulating each
/// node's gradient before its own rule runs, and freeing the graph as it goes unless
/// `retain_graph`.
pub fn grad_with<T: Float>(
    outputs: &[Tensor<T>],
    grad_outputs: &[Tensor<T>],
    inputs: &[Tensor<T>],
    options: GradOptions,
) -> Vec<Tensor<T>> {
    check_upstream(outputs, grad_outputs);
    let targets: HashMap<u64, usize> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id(), i))
        .collect();
    let walk = walk_graph(outputs, &targets);

    let _mode = crate::autodiff::set_grad_enabled(options.create_graph);
    let mut grads: HashMap<u64, Tensor<T>> = HashMap::default();
    for (o, g) in outputs.iter().zip(grad_outputs) {
        if o.requires_grad() {
            accumulate(&mut grads, o.id(), g.clone());
        }
    }
    let mut results: Vec<Option<Tensor<T>>> = vec![None; inputs.len()];
    for (k, visit) in walk.order.iter().enumerate().rev() {
        let id = visit.tensor.id();
        let Some(g) = grads.remove(&id) else { continue };
        if let Some(&slot) = targets.get(&id) {
            results[slot] = Some(g.clone());
        }
        if !walk.reaches[k] || visit.inputs.is_empty() {
            continue;
        }
        let needs: Vec<bool> = visit
            .inputs
            .iter()
            .map(|c| c.requires_grad() && walk.leads_to_target(c.id()))
            .collect();
        if !needs.iter().any(|&n| n) {
            continue;
        }
        let input_grads = backward_rule(visit, &g, &needs);
        if !options.retain_graph {
            free_graph(&visit.tensor);
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

/// Panics unless there is one upstream gradient per output, of the output's shape.
fn check_upstream<T: Float>(outputs: &[Tensor<T>], grad_outputs: &[Tensor<T>]) {
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
}

/// The topological order (inputs before users) of every node behind `outputs` that requires
/// grad, by an iterative depth-first search, and whether each node leads to a target.
fn walk_graph<T: Float>(outputs: &[Tensor<T>], targets: &HashMap<u64, usize>) -> Walk<T> {
    let mut walk = Walk {
        order: Vec::new(),
        index_of: HashMap::default(),
        reaches: Vec::new(),
    };
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
                    || node_ins.iter().any(|c| walk.leads_to_target(c.id()));
                state.insert(node.id(), true);
                walk.index_of.insert(node.id(), walk.order.len());
                walk.reaches.push(reach);
                let (node, node_ins, _) = stack.pop().expect("stack is not empty");
                walk.order.push(Visit {
                    tensor: node,
                    inputs: node_ins,
                });
            }
        }
    }
    walk
}

/// Runs the backward rule of the op that made `visit.tensor` on its gradient `g`, for the
/// inputs `needs` marks; panics when the graph was freed or the rule returns gradients of
/// the wrong count or shapes.
fn backward_rule<T: Float>(
    visit: &Visit<T>,
    g: &Tensor<T>,
    needs: &[bool],
) -> Vec<Option<Tensor<T>>> {
    let guard = visit.tensor.inner.grad_fn.lock().expect("poisoned grad_fn");
    let grad_fn = guard.as_ref().unwrap_or_else(|| {
        panic!("grad: the graph behind this tensor was already freed; pass retain_graph = true to differentiate twice")
    });
    let ctx = BackwardCtx {
        inputs: &grad_fn.inputs,
        output: &visit.tensor,
        needs,
    };
    let gs = grad_fn.op.backward(&ctx, g);
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
}

/// Releases the op record behind `t` (its saved tensors) and marks its graph as freed.
fn free_graph<T: Float>(t: &Tensor<T>) {
    let mut guard = t.inner.grad_fn.lock().expect("poisoned grad_fn");
    *guard = None;
    t.inner
        .graph_freed
        .store(true, std::sync::atomic::Ordering::Relaxed);
}

impl<T: Float> Tensor<T> {
    /// The gradients of this tensor (summed over its elements when it is not a scalar) with
    /// respect to each of `wrt`, `d sum(self) / d wrt_i`, as plain values: [`grad`] with
    /// `create_graph = false`, so the graph behind `self` is freed (use [`grad`] with
    /// `create_graph = true` to differentiate again). An input `self` does not depend on gets
    /// a zero gradient.
    ///
    /// ```rust
    /// use metalearn::prelude::*;
    ///
    /// let x = Tensor::<f64>::from_f64(&[1.0, 2.0, 3.0], &[3]).requires_grad_();
    /// let y = x.square().sum_all(); // y = sum_i x_i^2, so dy/dx = 2x
    /// let dx = y.grad(&[&x]);
    /// assert_eq!(dx[0].to_vec(), vec![2.0, 4.0, 6.0]);
    /// ```
    pub fn grad(&self, wrt: &[&Tensor<T>]) -> Vec<Tensor<T>> {
        let inputs: Vec<Tensor<T>> = wrt.iter().map(|&t| t.clone()).collect();
        grad(std::slice::from_ref(self), &inputs, false)
    }
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

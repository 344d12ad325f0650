//! Expert-based and attention-based multi-task architectures beside MMoE and cross-stitch
//! ([`super::architectures`]): CGC and PLE (Tang et al. 2020), DSelect-k (Hazimeh et al. 2021)
//! and MTAN (Liu et al. 2019), each built from the config's trunk layers.
//!
//! A trunk is cut into *levels* at its stage ends ([`stage_groups`]: after an activation or
//! pooling not followed by another one, the points where cross-stitch units mix columns);
//! PLE stacks one extraction layer per level, MTAN puts one attention module after each.

use super::model::{
    per_task_owners, EncoderAndHeads, LayerSpec, Owner, ParamCursor, ShapeError, Stack, TaskHeads,
    TaskSpec,
};
use crate::nn::{Model, Params};
use crate::tensor::{Float, Tensor};
use std::ops::Range;

/// The trunk's layers cut after each stage end (an activation or pooling not followed by
/// another one); trailing layers after the last stage end form a last group.
pub fn stage_groups(layers: &[LayerSpec]) -> Vec<Range<usize>> {
    let ends = |l: &LayerSpec| {
        matches!(
            l,
            LayerSpec::Relu | LayerSpec::Sigmoid | LayerSpec::Tanh | LayerSpec::MaxPool { .. }
        )
    };
    let mut out = Vec::new();
    let mut start = 0;
    for i in 0..layers.len() {
        if ends(&layers[i]) && !layers.get(i + 1).is_some_and(ends) {
            out.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < layers.len() {
        out.push(start..layers.len());
    }
    out
}

/// The levels of `trunk` on inputs of shape `in_shape`: one stack per stage group
/// (`split`), or the whole trunk as one level.
fn levels(
    trunk: &[LayerSpec],
    in_shape: &[usize],
    split: bool,
    fuse: bool,
) -> Result<Vec<Stack>, ShapeError> {
    let whole = std::iter::once(0..trunk.len());
    let groups: Vec<Range<usize>> = if split {
        stage_groups(trunk)
    } else {
        whole.collect()
    };
    let mut shape = in_shape.to_vec();
    let mut out = Vec::new();
    for g in groups {
        let s = Stack::new(&trunk[g], &shape, fuse)?;
        shape = s.out_shape().to_vec();
        out.push(s);
    }
    Ok(out)
}

/// A softmax gate over `n` choices: flatten, then one linear layer, on inputs of `in_shape`.
fn gate(in_shape: &[usize], n: usize) -> Result<Stack, ShapeError> {
    Stack::new(
        &[LayerSpec::Flatten, LayerSpec::Linear { out: n }],
        in_shape,
        false,
    )
}

/// `sum_e w[:, e] * outs[e]` for expert outputs `outs` (each `[N, ...]`) and weights `w`
/// `[N, E]` (each row a distribution).
fn mix<T: Float>(outs: &[Tensor<T>], w: &Tensor<T>) -> Tensor<T> {
    let stacked = Tensor::stack(outs, 1); // [N, E, ...]
    let mut shape = vec![w.dim(0), w.dim(1)];
    shape.extend(std::iter::repeat_n(1, stacked.ndim() - 2));
    stacked.mul(&w.reshape(&shape)).sum_axis(1, false)
}

/// Fresh parameters of `stack`, named `{prefix}{layer}.weight` / `.bias`.
pub(crate) fn init_stack<T: Float>(
    stack: &Stack,
    prefix: &str,
    rng: &mut dyn rand::RngCore,
) -> Params<T> {
    let p: Params<T> = Model::<T>::init(stack, rng);
    p.prefixed(prefix)
}

/// One PLE extraction layer: shared experts, each task's experts, each task's gate over the
/// shared and its own experts, and (except on the last level) a shared gate over all experts.
#[derive(Clone, Debug)]
struct Level {
    expert: Stack,
    shared_experts: usize,
    task_experts: usize,
    task_gate: Stack,
    shared_gate: Option<Stack>,
}

/// Progressive Layered Extraction (Tang et al. 2020, PLE) and its one-level form, Customized
/// Gate Control (CGC). At every level, `experts` shared experts and `task_experts` experts per
/// task (copies of that level's layers) run; task `t`'s output is its softmax gate's mix of the
/// shared experts and its own, `sum_e softmax(W_t h_t)_e expert_e(.)` (shared experts read the
/// shared input, task `t`'s experts read `h_t`); below the last level a shared gate mixes all
/// experts into the shared output. Level 0's inputs are all `x`; gates are linear on the
/// flattened input. CGC (`split = false`) has one level, the whole trunk; PLE one per stage.
///
/// Parameters `level.{l}.shared.{e}.*`, `level.{l}.{task}.{e}.*`, `level.{l}.gate.{task}.*`,
/// `level.{l}.gate.shared.*`. Every parameter below the last level is [`Owner::Shared`] (the
/// shared gates carry every expert to every task); on the last level the shared experts are
/// shared, and each task's experts and gate are its own.
#[derive(Clone, Debug)]
pub struct Ple {
    levels: Vec<Level>,
    heads: TaskHeads,
    /// `cgc` or `ple`, for the description.
    kind: &'static str,
}

impl Ple {
    /// CGC (`split = false`) or PLE (`split = true`) on `trunk`'s layers.
    pub fn new(
        trunk: &[LayerSpec],
        in_shape: &[usize],
        (experts, task_experts): (usize, usize),
        tasks: Vec<TaskSpec>,
        split: bool,
        fuse: bool,
    ) -> Result<Self, ShapeError> {
        if experts == 0 || task_experts == 0 {
            return Err(ShapeError(
                "CGC / PLE need at least one shared and one task expert".into(),
            ));
        }
        let stacks = levels(trunk, in_shape, split, fuse)?;
        let t = tasks.len();
        let last = stacks.len() - 1;
        let mut out = Vec::new();
        for (l, expert) in stacks.into_iter().enumerate() {
            let ins = expert.in_shape().to_vec();
            out.push(Level {
                task_gate: gate(&ins, experts + task_experts)?,
                shared_gate: (l < last)
                    .then(|| gate(&ins, experts + t * task_experts))
                    .transpose()?,
                expert,
                shared_experts: experts,
                task_experts,
            });
        }
        let hint = " (end the trunk with flatten or linear)";
        let heads = TaskHeads::on_output_of(&out[last].expert, "expert", hint, tasks)?;
        Ok(Ple {
            levels: out,
            heads,
            kind: if split { "ple" } else { "cgc" },
        })
    }

    /// The level's outputs: per task, and the shared one (below the last level).
    fn run_level<T: Float>(
        lv: &Level,
        cursor: &mut ParamCursor<'_, T>,
        shared_in: &Tensor<T>,
        task_in: &[Tensor<T>],
    ) -> (Vec<Tensor<T>>, Option<Tensor<T>>) {
        let shared: Vec<Tensor<T>> = (0..lv.shared_experts)
            .map(|_| cursor.forward(&lv.expert, shared_in))
            .collect();
        let own: Vec<Vec<Tensor<T>>> = (task_in.iter())
            .map(|h| {
                (0..lv.task_experts)
                    .map(|_| cursor.forward(&lv.expert, h))
                    .collect()
            })
            .collect();
        let outs = (task_in.iter().zip(&own))
            .map(|(h, mine)| {
                let w = cursor.forward(&lv.task_gate, h).softmax(1);
                let mut all = shared.clone();
                all.extend(mine.iter().cloned());
                mix(&all, &w)
            })
            .collect();
        let shared_out = lv.shared_gate.as_ref().map(|g| {
            let w = cursor.forward(g, shared_in).softmax(1);
            let mut all = shared.clone();
            all.extend(own.iter().flatten().cloned());
            mix(&all, &w)
        });
        (outs, shared_out)
    }
}

impl<T: Float> EncoderAndHeads<T> for Ple {
    fn heads(&self) -> &TaskHeads {
        &self.heads
    }

    /// Level after level: shared experts, each task's experts, task gates, the shared gate.
    fn init_encoder(&self, rng: &mut dyn rand::RngCore) -> Params<T> {
        let mut p = Params::new();
        let tasks = self.heads.tasks();
        for (l, lv) in self.levels.iter().enumerate() {
            for e in 0..lv.shared_experts {
                p = p.concat(&init_stack(
                    &lv.expert,
                    &format!("level.{l}.shared.{e}."),
                    rng,
                ));
            }
            for task in tasks {
                for e in 0..lv.task_experts {
                    let prefix = format!("level.{l}.{}.{e}.", task.name);
                    p = p.concat(&init_stack(&lv.expert, &prefix, rng));
                }
            }
            for task in tasks {
                let prefix = format!("level.{l}.gate.{}.", task.name);
                p = p.concat(&init_stack(&lv.task_gate, &prefix, rng));
            }
            if let Some(g) = &lv.shared_gate {
                p = p.concat(&init_stack(g, &format!("level.{l}.gate.shared."), rng));
            }
        }
        p
    }

    fn encoder_owners(&self) -> Vec<Owner> {
        let t = self.heads.tasks().len();
        let last = self.levels.len() - 1;
        let mut owners = Vec::new();
        for (l, lv) in self.levels.iter().enumerate() {
            let np = lv.expert.num_params();
            owners.extend(std::iter::repeat_n(Owner::Shared, lv.shared_experts * np));
            let own_experts = (0..t).flat_map(|k| std::iter::repeat_n(k, lv.task_experts));
            let gates = std::iter::repeat_n(&lv.task_gate, t);
            if l == last {
                owners.extend(own_experts.flat_map(|k| std::iter::repeat_n(Owner::Task(k), np)));
                owners.extend(per_task_owners(gates));
            } else {
                let n = t * lv.task_experts * np + t * lv.task_gate.num_params();
                owners.extend(std::iter::repeat_n(Owner::Shared, n));
            }
            if let Some(g) = &lv.shared_gate {
                owners.extend(std::iter::repeat_n(Owner::Shared, g.num_params()));
            }
        }
        owners
    }

    fn encode(&self, params: &Params<T>, x: &Tensor<T>) -> Vec<Tensor<T>> {
        let t = self.heads.tasks().len();
        let mut cursor = ParamCursor::new(params, 0);
        let (mut shared, mut tasks) = (x.clone(), vec![x.clone(); t]);
        for lv in &self.levels {
            let (outs, s) = Self::run_level(lv, &mut cursor, &shared, &tasks);
            tasks = outs;
            if let Some(s) = s {
                shared = s;
            }
        }
        tasks
    }

    fn description(&self) -> String {
        let lv = &self.levels[0];
        format!(
            "{}: {} level(s), {} shared + {} per-task experts, {} tasks",
            self.kind,
            self.levels.len(),
            lv.shared_experts,
            lv.task_experts,
            self.heads.tasks().len()
        )
    }
}

/// DSelect-k (Hazimeh et al. 2021): `E` experts (copies of the trunk, shared; `E` a power of
/// two) and per task a gate of `k` selectors. Selector `s` has `m = log2 E` logits `z_s` (linear
/// in the flattened input); expert `i` (bits `b_j(i)`) gets
/// `r_s(i) = prod_j (b_j(i) ? S(z_sj) : 1 - S(z_sj))`, with the smooth step
/// `S(t) = 0` below `-gamma/2`, `1` above `gamma/2`, `-2 t^3 / gamma^3 + 3 t / (2 gamma) + 1/2`
/// between, so each `r_s` is a distribution over the experts that becomes one-hot as the `z`
/// leave `[-gamma/2, gamma/2]`. The gate is `sum_s softmax(w)_s r_s` (`w`: `k` more linear
/// outputs), so at most `k` experts are mixed: `f_t(x) = head_t(sum_i gate_i expert_i(x))`.
/// The paper's entropy regulariser (to speed up the selectors' convergence) is left out.
/// Parameters `expert.{e}.*` (shared), `gate.{task}.*` and `head.{task}.*`.
#[derive(Clone, Debug)]
pub struct DSelectK {
    expert: Stack,
    experts: usize,
    gate: Stack,
    k: usize,
    bits: usize,
    gamma: f64,
    heads: TaskHeads,
}

impl DSelectK {
    /// `experts` copies of `trunk` (a power of two), `k` selectors per task, smooth-step width
    /// `gamma`.
    pub fn new(
        trunk: &[LayerSpec],
        in_shape: &[usize],
        (experts, k, gamma): (usize, usize, f64),
        tasks: Vec<TaskSpec>,
        fuse: bool,
    ) -> Result<Self, ShapeError> {
        if experts == 0 || !experts.is_power_of_two() {
            return Err(ShapeError(format!(
                "DSelect-k needs a power of two of experts, got {experts}"
            )));
        }
        if k == 0 || !(gamma.is_finite() && gamma > 0.0) {
            return Err(ShapeError(format!(
                "DSelect-k needs k >= 1 and gamma > 0, got k = {k}, gamma = {gamma}"
            )));
        }
        let bits = experts.trailing_zeros() as usize;
        let expert = Stack::new(trunk, in_shape, fuse)?;
        let heads = TaskHeads::on_output_of(&expert, "expert", "", tasks)?;
        Ok(DSelectK {
            gate: gate(in_shape, k * bits + k)?,
            expert,
            experts,
            k,
            bits,
            gamma,
            heads,
        })
    }

    /// The smooth step `S(t)` of width `gamma`, elementwise.
    pub fn smooth_step<T: Float>(t: &Tensor<T>, gamma: f64) -> Tensor<T> {
        let u = t.clamp(-gamma / 2.0, gamma / 2.0);
        let cube = u.mul(&u).mul(&u).mul_scalar(-2.0 / gamma.powi(3));
        cube.add(&u.mul_scalar(1.5 / gamma)).add_scalar(0.5)
    }

    /// The gate `[N, E]` from the gate layer's output `[N, k m + k]`.
    pub fn gate_weights<T: Float>(&self, logits: &Tensor<T>) -> Tensor<T> {
        let (n, k, m) = (logits.dim(0), self.k, self.bits);
        if m == 0 {
            // One expert: every selector picks it.
            return Tensor::ones(&[n, 1]);
        }
        let s = Self::smooth_step(&logits.narrow(1, 0, k * m), self.gamma).reshape(&[n, k, m]);
        let bit = |j: usize| s.narrow(2, j, 1); // [N, k, 1]
        let codes: Vec<Tensor<T>> = (0..self.experts)
            .map(|i| {
                let mut r = Tensor::ones(&[n, k, 1]);
                for j in 0..m {
                    let b = bit(j);
                    r = r.mul(&if (i >> j) & 1 == 1 {
                        b
                    } else {
                        b.neg().add_scalar(1.0)
                    });
                }
                r
            })
            .collect();
        let r = Tensor::concat(&codes, 2); // [N, k, E]
        let w = logits.narrow(1, k * m, k).softmax(1).reshape(&[n, k, 1]);
        r.mul(&w).sum_axis(1, false)
    }
}

impl<T: Float> EncoderAndHeads<T> for DSelectK {
    fn heads(&self) -> &TaskHeads {
        &self.heads
    }

    /// The experts' parameters `expert.{e}.*`, then the gates' `gate.{task}.*`.
    fn init_encoder(&self, rng: &mut dyn rand::RngCore) -> Params<T> {
        let mut p = Params::new();
        for e in 0..self.experts {
            p = p.concat(&init_stack(&self.expert, &format!("expert.{e}."), rng));
        }
        for task in self.heads.tasks() {
            p = p.concat(&init_stack(
                &self.gate,
                &format!("gate.{}.", task.name),
                rng,
            ));
        }
        p
    }

    fn encoder_owners(&self) -> Vec<Owner> {
        let shared = self.experts * self.expert.num_params();
        let gates = std::iter::repeat_n(&self.gate, self.heads.tasks().len());
        std::iter::repeat_n(Owner::Shared, shared)
            .chain(per_task_owners(gates))
            .collect()
    }

    fn encode(&self, params: &Params<T>, x: &Tensor<T>) -> Vec<Tensor<T>> {
        let mut cursor = ParamCursor::new(params, 0);
        let outs: Vec<Tensor<T>> = (0..self.experts)
            .map(|_| cursor.forward(&self.expert, x))
            .collect();
        (0..self.heads.tasks().len())
            .map(|_| {
                let w = self.gate_weights(&cursor.forward(&self.gate, x));
                mix(&outs, &w)
            })
            .collect()
    }

    fn description(&self) -> String {
        format!(
            "dselect_k: {} experts {:?} -> {:?}, k = {}, gamma = {}, {} tasks",
            self.experts,
            self.expert.in_shape(),
            self.expert.out_shape(),
            self.k,
            self.gamma,
            self.heads.tasks().len()
        )
    }
}

/// Multi-Task Attention Network (Liu et al. 2019, MTAN): a shared trunk, cut into levels at
/// its stage ends, and per task an attention module after each level. Task `t`'s features at
/// level `l` are `a_l = m_l * h_l`, `h_l` the shared trunk's output there and
/// `m_l = sigmoid(W2 relu(W1 [h_l ; f_l]))` its soft mask (1x1 convolutions on feature maps,
/// linear layers on flat features), where `f_l` is `a_{l-1}` passed through level `l`'s
/// shared layers (level 0 reads `h_0` alone). The heads read the last level's `a`.
/// Simplification of the paper's VGG/SegNet design: the per-task block that carries `a_{l-1}`
/// to the next resolution is the shared level itself here, not a task-specific conv.
/// Parameters `trunk.{l}.*` (shared), `attention.{task}.{l}.*` (task-specific).
#[derive(Clone, Debug)]
pub struct Mtan {
    levels: Vec<Stack>,
    attention: Vec<Stack>,
    heads: TaskHeads,
}

/// The attention module of a level with output shape `shape`, reading `inputs` copies of it
/// stacked along the channels (or features).
fn attention_module(shape: &[usize], inputs: usize) -> Result<Stack, ShapeError> {
    let (layers, in_shape) = match shape {
        &[c, h, w] => (
            vec![
                LayerSpec::Conv {
                    out: c,
                    kernel: 1,
                    padding: 0,
                    stride: 1,
                },
                LayerSpec::Relu,
                LayerSpec::Conv {
                    out: c,
                    kernel: 1,
                    padding: 0,
                    stride: 1,
                },
                LayerSpec::Sigmoid,
            ],
            vec![inputs * c, h, w],
        ),
        &[d] => (
            vec![
                LayerSpec::Linear { out: d },
                LayerSpec::Relu,
                LayerSpec::Linear { out: d },
                LayerSpec::Sigmoid,
            ],
            vec![inputs * d],
        ),
        other => {
            return Err(ShapeError(format!(
                "MTAN: a level's output {other:?} is neither [C, H, W] nor flat"
            )))
        }
    };
    Stack::new(&layers, &in_shape, false)
}

impl Mtan {
    /// MTAN on `trunk`'s layers (which must end flat, for the heads).
    pub fn new(
        trunk: &[LayerSpec],
        in_shape: &[usize],
        tasks: Vec<TaskSpec>,
        fuse: bool,
    ) -> Result<Self, ShapeError> {
        let levels = levels(trunk, in_shape, true, fuse)?;
        let attention = (levels.iter().enumerate())
            .map(|(l, s)| attention_module(s.out_shape(), if l == 0 { 1 } else { 2 }))
            .collect::<Result<Vec<_>, _>>()?;
        let last = levels.last().expect("a trunk has layers");
        let hint = " (end with flatten or linear)";
        let heads = TaskHeads::on_output_of(last, "trunk", hint, tasks)?;
        Ok(Mtan {
            levels,
            attention,
            heads,
        })
    }
}

impl<T: Float> EncoderAndHeads<T> for Mtan {
    fn heads(&self) -> &TaskHeads {
        &self.heads
    }

    /// The trunk's levels `trunk.{l}.*`, then each task's attention modules.
    fn init_encoder(&self, rng: &mut dyn rand::RngCore) -> Params<T> {
        let mut p = Params::new();
        for (l, s) in self.levels.iter().enumerate() {
            p = p.concat(&init_stack(s, &format!("trunk.{l}."), rng));
        }
        for task in self.heads.tasks() {
            for (l, a) in self.attention.iter().enumerate() {
                let prefix = format!("attention.{}.{l}.", task.name);
                p = p.concat(&init_stack(a, &prefix, rng));
            }
        }
        p
    }

    fn encoder_owners(&self) -> Vec<Owner> {
        let trunk: usize = self.levels.iter().map(Stack::num_params).sum();
        let att: usize = self.attention.iter().map(Stack::num_params).sum();
        let t = self.heads.tasks().len();
        std::iter::repeat_n(Owner::Shared, trunk)
            .chain((0..t).flat_map(|k| std::iter::repeat_n(Owner::Task(k), att)))
            .collect()
    }

    fn encode(&self, params: &Params<T>, x: &Tensor<T>) -> Vec<Tensor<T>> {
        let t = self.heads.tasks().len();
        let mut cursor = ParamCursor::new(params, 0);
        let level_params: Vec<Params<T>> = (self.levels.iter())
            .map(|s| cursor.take(s.num_params()))
            .collect();
        let att_params: Vec<Vec<Params<T>>> = (0..t)
            .map(|_| {
                (self.attention.iter())
                    .map(|a| cursor.take(a.num_params()))
                    .collect()
            })
            .collect();
        let mut shared = x.clone();
        let mut feats: Vec<Option<Tensor<T>>> = vec![None; t];
        for (l, (level, lp)) in self.levels.iter().zip(&level_params).enumerate() {
            shared = Model::forward(level, lp, &shared);
            for (k, f) in feats.iter_mut().enumerate() {
                let input = match f.take() {
                    Some(prev) => {
                        Tensor::concat(&[shared.clone(), Model::forward(level, lp, &prev)], 1)
                    }
                    None => shared.clone(),
                };
                let mask = Model::forward(&self.attention[l], &att_params[k][l], &input);
                *f = Some(mask.mul(&shared));
            }
        }
        feats
            .into_iter()
            .map(|f| f.expect("at least one level"))
            .collect()
    }

    fn description(&self) -> String {
        format!(
            "mtan: {} levels {:?} -> {:?}, attention per task and level, {} tasks",
            self.levels.len(),
            self.levels[0].in_shape(),
            self.levels
                .last()
                .map(|s| s.out_shape().to_vec())
                .unwrap_or_default(),
            self.heads.tasks().len()
        )
    }
}

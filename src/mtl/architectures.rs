//! Soft-sharing architectures: Multi-gate Mixture-of-Experts and cross-stitch networks.

use super::experts::init_stack;
use super::model::{
    init_per_task, per_task_owners, EncoderAndHeads, LayerSpec, Owner, ParamCursor, ShapeError,
    Stack, TaskHeads, TaskSpec,
};
use crate::nn::Params;
use crate::tensor::{Float, Tensor};

/// Every architecture `model.architecture` may name: hard sharing
/// ([`super::model::HardSharing`]), MMoE, cross-stitch ([`Mmoe`], [`CrossStitch`]), MTAN, CGC,
/// PLE and DSelect-k ([`super::experts`]).
pub const ARCHITECTURES: [&str; 7] = [
    "hard",
    "mmoe",
    "cross_stitch",
    "mtan",
    "cgc",
    "ple",
    "dselect_k",
];

/// MMoE (Ma et al. 2018): `E` experts (each a copy of the trunk, shared by all tasks), and per
/// task a softmax gate (linear on the flattened input) that mixes the experts' outputs,
/// followed by the task's tower (head): `f_t(x) = head_t(sum_e softmax(W_t x + b_t)_e expert_e(x))`.
/// Parameters: `expert.{e}.*` (shared), `gate.{task}.*` and `head.{task}.*` (task-specific).
#[derive(Clone, Debug)]
pub struct Mmoe {
    experts: Vec<Stack>,
    gates: Vec<Stack>,
    heads: TaskHeads,
}

impl Mmoe {
    /// `experts` copies of `trunk` on inputs of shape `in_shape`.
    pub fn new(
        trunk: &[LayerSpec],
        in_shape: &[usize],
        experts: usize,
        tasks: Vec<TaskSpec>,
        fuse: bool,
    ) -> Result<Self, ShapeError> {
        if experts == 0 {
            return Err(ShapeError("MMoE needs at least one expert".into()));
        }
        let e = Stack::new(trunk, in_shape, fuse)?;
        let heads = TaskHeads::on_output_of(&e, "expert", "", tasks)?;
        let gate = Stack::new(
            &[LayerSpec::Flatten, LayerSpec::Linear { out: experts }],
            in_shape,
            false,
        )?;
        Ok(Mmoe {
            experts: vec![e; experts],
            gates: vec![gate; heads.tasks().len()],
            heads,
        })
    }
}

impl<T: Float> EncoderAndHeads<T> for Mmoe {
    fn heads(&self) -> &TaskHeads {
        &self.heads
    }

    /// The experts' parameters `expert.{e}.*`, then the gates' `gate.{task}.*`.
    fn init_encoder(&self, rng: &mut dyn rand::RngCore) -> Params<T> {
        let mut p = Params::new();
        for (i, e) in self.experts.iter().enumerate() {
            p = p.concat(&init_stack(e, &format!("expert.{i}."), rng));
        }
        p.concat(&init_per_task("gate", self.heads.tasks(), &self.gates, rng))
    }

    /// The experts are shared; each gate is its task's.
    fn encoder_owners(&self) -> Vec<Owner> {
        let experts = self.experts.iter().map(Stack::num_params).sum();
        std::iter::repeat_n(Owner::Shared, experts)
            .chain(per_task_owners(&self.gates))
            .collect()
    }

    /// Task `t`'s mixture of the experts' outputs, `sum_e softmax(W_t x + b_t)_e expert_e(x)`.
    fn encode(&self, params: &Params<T>, x: &Tensor<T>) -> Vec<Tensor<T>> {
        let mut cursor = ParamCursor::new(params, 0);
        let outs: Vec<Tensor<T>> = self.experts.iter().map(|e| cursor.forward(e, x)).collect();
        let stacked = Tensor::stack(&outs, 1); // [N, E, D]
        let (n, ne) = (x.dim(0), self.experts.len());
        (self.gates.iter())
            .map(|g| {
                let w = cursor.forward(g, x).softmax(1).reshape(&[n, ne, 1]);
                stacked.mul(&w).sum_axis(1, false)
            })
            .collect()
    }

    fn description(&self) -> String {
        format!(
            "mmoe: {} experts {:?} -> {:?}, {} tasks",
            self.experts.len(),
            self.experts[0].in_shape(),
            self.experts[0].out_shape(),
            self.heads.tasks().len()
        )
    }
}

/// Cross-stitch networks (Misra et al. 2016): one column (a copy of the trunk) per task; after
/// every stage of the trunk (see [`Stack::segments`]) the columns' activations are mixed by
/// a learnable `T x T` cross-stitch unit, `h_i <- sum_j alpha_ij h_j` (initially 0.9 on the
/// diagonal, 0.1 / (T - 1) off it). Parameters: `column.{task}.*` and `head.{task}.*`
/// (task-specific), `stitch.{k}` (shared: the only parameters every task's loss depends on).
#[derive(Clone, Debug)]
pub struct CrossStitch {
    /// The column every task has a copy of.
    column: Stack,
    heads: TaskHeads,
}

impl CrossStitch {
    /// Columns of `trunk` layers on inputs of shape `in_shape`.
    pub fn new(
        trunk: &[LayerSpec],
        in_shape: &[usize],
        tasks: Vec<TaskSpec>,
        fuse: bool,
    ) -> Result<Self, ShapeError> {
        let column = Stack::new(trunk, in_shape, fuse)?;
        let heads = TaskHeads::on_output_of(&column, "column", "", tasks)?;
        Ok(CrossStitch { column, heads })
    }

    /// The tasks' copies of the column.
    fn columns(&self) -> impl Iterator<Item = &Stack> {
        std::iter::repeat_n(&self.column, self.heads.tasks().len())
    }

    /// The initial stitch unit of `t` tasks, `[t, t]`: 0.9 on the diagonal, 0.1 / (t - 1) off
    /// it (the identity for one task).
    fn initial_stitch<T: Float>(t: usize) -> Tensor<T> {
        let off = if t > 1 { 0.1 / (t - 1) as f64 } else { 0.0 };
        let diag = if t > 1 { 0.9 } else { 1.0 };
        let a: Vec<f64> = (0..t * t)
            .map(|ij| if ij / t == ij % t { diag } else { off })
            .collect();
        Tensor::from_f64(&a, &[t, t])
    }
}

impl<T: Float> EncoderAndHeads<T> for CrossStitch {
    fn heads(&self) -> &TaskHeads {
        &self.heads
    }

    /// The columns' parameters `column.{task}.*`, then the stitch units `stitch.{k}`.
    fn init_encoder(&self, rng: &mut dyn rand::RngCore) -> Params<T> {
        let mut p = init_per_task("column", self.heads.tasks(), self.columns(), rng);
        for k in 0..self.column.stage_ends() {
            let t = self.heads.tasks().len();
            p.push(format!("stitch.{k}"), Self::initial_stitch(t));
        }
        p
    }

    /// Each column is its task's; the stitch units are shared.
    fn encoder_owners(&self) -> Vec<Owner> {
        let stitches = std::iter::repeat_n(Owner::Shared, self.column.stage_ends());
        per_task_owners(self.columns()).chain(stitches).collect()
    }

    /// Each column's output after the last stage.
    fn encode(&self, params: &Params<T>, x: &Tensor<T>) -> Vec<Tensor<T>> {
        let t = self.heads.tasks().len();
        let cp = self.column.num_params();
        let columns: Vec<Params<T>> = (0..t).map(|i| params.slice(i * cp..(i + 1) * cp)).collect();
        let stitches = params.slice(t * cp..t * cp + self.column.stage_ends());
        run_stitched(&self.column, &columns, &stitches, x)
    }

    fn description(&self) -> String {
        format!(
            "cross-stitch: {} columns {:?} -> {:?}, {} stitch units",
            self.heads.tasks().len(),
            self.column.in_shape(),
            self.column.out_shape(),
            self.column.stage_ends()
        )
    }
}

/// Runs one copy of `column` per task on `x` (`columns[i]` the parameters of task `i`'s copy)
/// stage by stage, mixing them with the stitch units (`stitches[s]` after stage `s`); returns
/// each column's output.
fn run_stitched<T: Float>(
    column: &Stack,
    columns: &[Params<T>],
    stitches: &Params<T>,
    x: &Tensor<T>,
) -> Vec<Tensor<T>> {
    let t = columns.len();
    let stages = column.stage_ends();
    let segments = column.segments();
    debug_assert!(segments.len() == stages || segments.len() == stages + 1);
    let mut hs: Vec<Tensor<T>> = vec![x.clone(); t];
    for (s, seg) in segments.iter().enumerate() {
        for (h, p) in hs.iter_mut().zip(columns) {
            *h = seg.run(p, h);
        }
        if s < stages {
            hs = cross_stitch(stitches.at(s), &hs);
        }
    }
    hs
}

/// One cross-stitch unit: `h_i <- sum_j alpha_ij h_j` for `alpha` `[t, t]`, the sum taken in
/// the order `j = 0, 1, ...`.
fn cross_stitch<T: Float>(alpha: &Tensor<T>, hs: &[Tensor<T>]) -> Vec<Tensor<T>> {
    let t = hs.len();
    let alpha = alpha.reshape(&[t * t]);
    (0..t)
        .map(|i| {
            let mut acc: Option<Tensor<T>> = None;
            for (j, h) in hs.iter().enumerate() {
                let term = h.mul(&alpha.narrow(0, i * t + j, 1));
                acc = Some(match acc {
                    Some(a) => a.add(&term),
                    None => term,
                });
            }
            acc.expect("at least one task")
        })
        .collect()
}

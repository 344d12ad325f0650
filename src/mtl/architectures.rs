//! Soft-sharing architectures: Multi-gate Mixture-of-Experts and cross-stitch networks.

use super::model::{head_stack, LayerSpec, MultiTaskModel, Owner, ShapeError, Stack, TaskSpec};
use crate::nn::Params;
use crate::tensor::{Float, Tensor};

/// MMoE (Ma et al. 2018): `E` experts (each a copy of the trunk, shared by all tasks), and per
/// task a softmax gate (linear on the flattened input) that mixes the experts' outputs,
/// followed by the task's tower (head): `f_t(x) = head_t(sum_e softmax(W_t x + b_t)_e expert_e(x))`.
/// Parameters: `expert.{e}.*` (shared), `gate.{task}.*` and `head.{task}.*` (task-specific).
#[derive(Clone, Debug)]
pub struct Mmoe {
    experts: Vec<Stack>,
    gates: Vec<Stack>,
    heads: Vec<Stack>,
    tasks: Vec<TaskSpec>,
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
        if e.out_shape().len() != 1 {
            return Err(ShapeError(format!(
                "the expert's output {:?} must be flat",
                e.out_shape()
            )));
        }
        let d = e.out_shape()[0];
        let gate = Stack::new(
            &[LayerSpec::Flatten, LayerSpec::Linear { out: experts }],
            in_shape,
            false,
        )?;
        Ok(Mmoe {
            experts: vec![e; experts],
            gates: vec![gate; tasks.len()],
            heads: tasks.iter().map(|t| head_stack(t, d)).collect(),
            tasks,
        })
    }
}

impl<T: Float> MultiTaskModel<T> for Mmoe {
    fn init(&self, rng: &mut dyn rand::RngCore) -> Params<T> {
        let mut p = Params::new();
        for (i, e) in self.experts.iter().enumerate() {
            e.init(&format!("expert.{i}"), rng, &mut p);
        }
        for (t, g) in self.tasks.iter().zip(&self.gates) {
            g.init(&format!("gate.{}", t.name), rng, &mut p);
        }
        for (t, h) in self.tasks.iter().zip(&self.heads) {
            h.init(&format!("head.{}", t.name), rng, &mut p);
        }
        p
    }

    fn forward(&self, params: &Params<T>, x: &Tensor<T>) -> Vec<Tensor<T>> {
        let ps = params.tensors();
        let mut k = 0;
        let outs: Vec<Tensor<T>> = self
            .experts
            .iter()
            .map(|e| {
                let o = e.forward(&ps[k..k + e.num_params()], x);
                k += e.num_params();
                o
            })
            .collect();
        let stacked = Tensor::stack(&outs, 1); // [N, E, D]
        let (n, ne) = (x.dim(0), self.experts.len());
        let mixes: Vec<Tensor<T>> = self
            .gates
            .iter()
            .map(|g| {
                let w = g
                    .forward(&ps[k..k + g.num_params()], x)
                    .softmax(1)
                    .reshape(&[n, ne, 1]);
                k += g.num_params();
                stacked.mul(&w).sum_axis(1, false)
            })
            .collect();
        self.heads
            .iter()
            .zip(mixes)
            .map(|(h, z)| {
                let o = h.forward(&ps[k..k + h.num_params()], &z);
                k += h.num_params();
                o
            })
            .collect()
    }

    fn owners(&self) -> Vec<Owner> {
        let mut o: Vec<Owner> = self
            .experts
            .iter()
            .flat_map(|e| std::iter::repeat_n(Owner::Shared, e.num_params()))
            .collect();
        for (t, g) in self.gates.iter().enumerate() {
            o.extend(std::iter::repeat_n(Owner::Task(t), g.num_params()));
        }
        for (t, h) in self.heads.iter().enumerate() {
            o.extend(std::iter::repeat_n(Owner::Task(t), h.num_params()));
        }
        o
    }

    fn tasks(&self) -> &[TaskSpec] {
        &self.tasks
    }

    fn describe(&self) -> String {
        format!(
            "mmoe: {} experts {:?} -> {:?}, {} tasks",
            self.experts.len(),
            self.experts[0].in_shape(),
            self.experts[0].out_shape(),
            self.tasks.len()
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
    column: Stack,
    heads: Vec<Stack>,
    tasks: Vec<TaskSpec>,
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
        if column.out_shape().len() != 1 {
            return Err(ShapeError(format!(
                "the column's output {:?} must be flat",
                column.out_shape()
            )));
        }
        let d = column.out_shape()[0];
        Ok(CrossStitch {
            heads: tasks.iter().map(|t| head_stack(t, d)).collect(),
            column,
            tasks,
        })
    }
}

impl<T: Float> MultiTaskModel<T> for CrossStitch {
    fn init(&self, rng: &mut dyn rand::RngCore) -> Params<T> {
        let t = self.tasks.len();
        let mut p = Params::new();
        for task in &self.tasks {
            self.column
                .init(&format!("column.{}", task.name), rng, &mut p);
        }
        let off = if t > 1 { 0.1 / (t - 1) as f64 } else { 0.0 };
        let diag = if t > 1 { 0.9 } else { 1.0 };
        for k in 0..self.column.stage_ends() {
            let a: Vec<f64> = (0..t * t)
                .map(|ij| if ij / t == ij % t { diag } else { off })
                .collect();
            p.push(format!("stitch.{k}"), Tensor::from_f64(&a, &[t, t]));
        }
        for (task, h) in self.tasks.iter().zip(&self.heads) {
            h.init(&format!("head.{}", task.name), rng, &mut p);
        }
        p
    }

    fn forward(&self, params: &Params<T>, x: &Tensor<T>) -> Vec<Tensor<T>> {
        let t = self.tasks.len();
        let ps = params.tensors();
        let cp = self.column.num_params();
        let stitch0 = t * cp;
        let stages = self.column.stage_ends();
        let mut hs: Vec<Tensor<T>> = vec![x.clone(); t];
        let blocks_out = run_stitched(
            &self.column,
            &ps[..stitch0],
            cp,
            &ps[stitch0..stitch0 + stages],
            &mut hs,
            t,
        );
        let mut k = stitch0 + stages;
        self.heads
            .iter()
            .zip(blocks_out)
            .map(|(h, z)| {
                let o = h.forward(&ps[k..k + h.num_params()], &z);
                k += h.num_params();
                o
            })
            .collect()
    }

    fn owners(&self) -> Vec<Owner> {
        let t = self.tasks.len();
        let mut o = Vec::new();
        for i in 0..t {
            o.extend(std::iter::repeat_n(
                Owner::Task(i),
                self.column.num_params(),
            ));
        }
        o.extend(std::iter::repeat_n(Owner::Shared, self.column.stage_ends()));
        for (i, h) in self.heads.iter().enumerate() {
            o.extend(std::iter::repeat_n(Owner::Task(i), h.num_params()));
        }
        o
    }

    fn tasks(&self) -> &[TaskSpec] {
        &self.tasks
    }

    fn describe(&self) -> String {
        format!(
            "cross-stitch: {} columns {:?} -> {:?}, {} stitch units",
            self.tasks.len(),
            self.column.in_shape(),
            self.column.out_shape(),
            self.column.stage_ends()
        )
    }
}

/// Runs `t` columns of `column` stage by stage, mixing them with the stitch units after each
/// stage.
fn run_stitched<T: Float>(
    column: &Stack,
    col_params: &[Tensor<T>],
    cp: usize,
    stitches: &[Tensor<T>],
    hs: &mut [Tensor<T>],
    t: usize,
) -> Vec<Tensor<T>> {
    let stages = column.stage_ends();
    let segments = column.segments();
    debug_assert!(segments.len() == stages || segments.len() == stages + 1);
    for (s, seg) in segments.iter().enumerate() {
        for (i, h) in hs.iter_mut().enumerate() {
            let p = &col_params[i * cp..(i + 1) * cp];
            *h = seg.run(p, h);
        }
        if s < stages {
            let alpha = stitches[s].reshape(&[t * t]);
            let mixed: Vec<Tensor<T>> = (0..t)
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
                .collect();
            hs.clone_from_slice(&mixed);
        }
    }
    hs.to_vec()
}

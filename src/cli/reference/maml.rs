//! The MAML cases (`mlp_maml_sinusoid`, `conv4_maml_omniglot`): per `steps<K>` variant, the
//! second- and first-order meta-gradients, losses, outputs and adapted parameters of every task.

use super::case::{
    conv4_from_file, mlp_from_file, put_params, put_stacked, seeded, Arch, Case, CaseOutput,
    Produced,
};
use crate::algorithms::maml::{task_meta_grad, Order};
use crate::algorithms::Target;
use crate::autodiff::no_grad;
use crate::nn::checkpoint::RawFile;
use crate::nn::{Model, Params};
use crate::tensor::{Float, Tensor};

/// Runs every `steps<K>` variant of a MAML case on the file's tasks; the inner learning rate is
/// the JSON's `hyperparameters.inner_lr` (else `default_lr`).
pub(super) fn run_maml<T: Float>(
    case: &Case,
    arch: Arch,
    default_lr: f64,
) -> Result<CaseOutput, String> {
    let setup = MamlSetup::<T>::from_case(case, arch, default_lr)?;
    let mut produced = Produced::new();
    let mut gaps = Vec::new();
    for variant in case.variants() {
        let steps: usize = variant
            .strip_prefix("steps")
            .and_then(|k| k.parse().ok())
            .ok_or_else(|| {
                format!("unknown variant `expected/{variant}/...` (expected `steps<K>`)")
            })?;
        let run = setup.run_variant(case, steps)?;
        let gap = run.second_order_gap();
        run.put(&mut produced, &format!("expected/{variant}"), &setup.theta);
        gaps.push((variant.clone(), gap));
    }
    if gaps.is_empty() {
        return Err("the file has no `expected/steps<K>/...` tensors".into());
    }
    Ok(CaseOutput {
        produced,
        gaps,
        errors: Vec::new(),
    })
}

/// A MAML case's model (rebuilt from the parameter shapes), its initial parameters, inner
/// learning rate and task count.
struct MamlSetup<T: Float> {
    arch: Arch,
    model: Box<dyn Model<T>>,
    theta: Params<T>,
    lr: f64,
    n_tasks: usize,
}

/// One variant's results accumulated over the tasks: the task-averaged second- and first-order
/// meta-gradients, and per task its losses, outputs and adapted parameters.
struct VariantRun<T: Float> {
    steps: usize,
    n_tasks: usize,
    meta: Params<T>,
    fo: Params<T>,
    query_losses: Vec<f64>,
    support_losses: Vec<f64>,
    query_out: Vec<Tensor<T>>,
    support_out0: Vec<Tensor<T>>,
    /// Per parameter, the adapted value of every task.
    adapted: Vec<Vec<Tensor<T>>>,
}

impl<T: Float> MamlSetup<T> {
    fn from_case(case: &Case, arch: Arch, default_lr: f64) -> Result<Self, String> {
        let sx_shape = case.shape("input/support_x")?.to_vec();
        let n_tasks = *sx_shape.first().ok_or("`input/support_x` is a scalar")?;
        let model: Box<dyn Model<T>> = match arch {
            Arch::Mlp => Box::new(mlp_from_file(case)?),
            Arch::Conv4 => Box::new(conv4_from_file(case, *sx_shape.last().unwrap_or(&0))?),
        };
        let layout = model.init(&mut seeded());
        let theta = case.params::<T>(&layout)?.requires_grad_();
        let lr = case
            .json_f64(&["hyperparameters", "inner_lr"])
            .unwrap_or(default_lr);
        Ok(MamlSetup {
            arch,
            model,
            theta,
            lr,
            n_tasks,
        })
    }

    /// Task `t`'s labels: regression values (MLP) or class indices (Conv-4).
    fn target(&self, case: &Case, name: &str, t: usize) -> Result<Target<T>, String> {
        Ok(match self.arch {
            Arch::Mlp => Target::Values(case.tensor_at(name, t)?),
            Arch::Conv4 => Target::Classes(case.indices_at(name, t)?),
        })
    }

    /// Every task with `steps` inner steps, second order then first order.
    fn run_variant(&self, case: &Case, steps: usize) -> Result<VariantRun<T>, String> {
        let theta = &self.theta;
        let scale = 1.0 / self.n_tasks as f64;
        let mut run = VariantRun {
            steps,
            n_tasks: self.n_tasks,
            meta: theta.zeros_like(),
            fo: theta.zeros_like(),
            query_losses: Vec::new(),
            support_losses: Vec::new(),
            query_out: Vec::new(),
            support_out0: Vec::new(),
            adapted: vec![Vec::new(); theta.len()],
        };
        for t in 0..self.n_tasks {
            let sx: Tensor<T> = case.tensor_at("input/support_x", t)?;
            let qx: Tensor<T> = case.tensor_at("input/query_x", t)?;
            let sy = self.target(case, "input/support_y", t)?;
            let qy = self.target(case, "input/query_y", t)?;
            let [second, first] = [Order::Second, Order::First].map(|order| {
                let model = self.model.as_ref();
                task_meta_grad(model, theta, &sx, &sy, &qx, &qy, steps, self.lr, order)
            });
            run.meta = run.meta.axpy(&theta.with_tensors(second.grads), scale);
            run.fo = run.fo.axpy(&theta.with_tensors(first.grads), scale);
            run.query_losses.push(second.query_loss);
            run.support_losses
                .extend(second.support_losses.iter().copied());
            run.query_out.push(second.query_output);
            run.support_out0
                .push(no_grad(|| self.model.forward(theta, &sx)));
            for (i, a) in second.adapted.tensors().iter().enumerate() {
                run.adapted[i].push(a.clone());
            }
        }
        Ok(run)
    }
}

impl<T: Float> VariantRun<T> {
    /// `||meta_grad - fo_grad|| / ||meta_grad||`.
    fn second_order_gap(&self) -> f64 {
        let diff = self.meta.axpy(&self.fo, -1.0).global_norm();
        diff / self.meta.global_norm()
    }

    /// The variant's tensors under the prefix `p` (`expected/<variant>`).
    fn put(self, produced: &mut Produced, p: &str, theta: &Params<T>) {
        let n_tasks = self.n_tasks;
        let meta_loss = self.query_losses.iter().sum::<f64>() / n_tasks as f64;
        produced.insert(format!("{p}/meta_loss"), (vec![], vec![meta_loss]));
        produced.insert(
            format!("{p}/query_loss"),
            (vec![n_tasks], self.query_losses),
        );
        produced.insert(
            format!("{p}/support_loss"),
            (vec![n_tasks, self.steps], self.support_losses),
        );
        put_params(produced, &format!("{p}/meta_grad"), &self.meta);
        put_params(produced, &format!("{p}/fo_grad"), &self.fo);
        put_stacked(produced, format!("{p}/query_out"), &self.query_out);
        put_stacked(
            produced,
            format!("{p}/support_out_step0"),
            &self.support_out0,
        );
        for (i, n) in theta.names().iter().enumerate() {
            put_stacked(produced, format!("{p}/adapted/{n}"), &self.adapted[i]);
        }
    }
}

/// The second-order gap of the reference tensors themselves.
pub(super) fn reference_gap(file: &RawFile, variant: &str) -> Option<f64> {
    let (mut d2, mut m2) = (0.0, 0.0);
    let prefix = format!("expected/{variant}/meta_grad/");
    let mut any = false;
    for (k, meta) in file.tensors.iter() {
        let Some(p) = k.strip_prefix(&prefix) else {
            continue;
        };
        let fo = file
            .tensors
            .get(&format!("expected/{variant}/fo_grad/{p}"))?;
        for (a, b) in meta.as_f64()?.iter().zip(fo.as_f64()?) {
            d2 += (a - b) * (a - b);
            m2 += a * a;
        }
        any = true;
    }
    any.then(|| d2.sqrt() / m2.sqrt())
}

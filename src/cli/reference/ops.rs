//! The `ops_double_backward` case: per op, its value, the gradient of `sum(w * f)`, a
//! Hessian-vector product and a JVP (the gradient of that HVP with respect to `w`).

use super::case::{put, Case, CaseOutput, Produced};
use crate::tensor::{Float, Tensor};
use std::collections::HashMap;

fn apply_op<T: Float>(
    case: &Case,
    op: &str,
    x: &HashMap<String, Tensor<T>>,
    f_shape: &[usize],
) -> Result<Tensor<T>, String> {
    let get = |n: &str| {
        x.get(n).ok_or_else(|| {
            format!("op `{op}`: no differentiable input `{n}` (no `input/{op}/v_{n}`)")
        })
    };
    let constant = |n: &str| case.tensor::<T>(&format!("input/{op}/{n}"));
    let index = |n: &str| case.indices(&format!("input/{op}/{n}"));
    Ok(match op {
        "relu" => get("x")?.relu(),
        "sigmoid" => get("x")?.sigmoid(),
        "tanh" => get("x")?.tanh(),
        "exp" => get("x")?.exp(),
        "log" => get("x")?.log(),
        "sqrt" => get("x")?.sqrt(),
        "matmul" => get("a")?.matmul(get("b")?),
        "linear" => get("x")?.linear(get("weight")?, Some(get("bias")?)),
        "conv2d" => get("x")?.conv2d(get("weight")?, Some(get("bias")?), 1, 1),
        "conv2d_stride2" => get("x")?.conv2d(get("weight")?, Some(get("bias")?), 2, 1),
        "max_pool2d" => get("x")?.max_pool2d(2, 2),
        "avg_pool2d" => get("x")?.avg_pool2d(2, 2),
        "batch_norm2d" | "batch_norm1d" => get("x")?.batch_norm(get("weight")?, get("bias")?, 1e-5),
        "log_softmax" => get("x")?.log_softmax(-1),
        "softmax" => get("x")?.softmax(-1),
        "cross_entropy" => get("x")?.cross_entropy(&index("labels")?.1),
        "mse_loss" => get("x")?.mse_loss(&constant("target")?),
        "bce_with_logits" => get("x")?.bce_with_logits(&constant("target")?),
        "sum_dim" => get("x")?.sum_axis(1, false),
        "mean_dim" => get("x")?.mean_axis(1, false),
        "add_broadcast" => get("a")?.add(get("b")?),
        "mul_broadcast" => get("a")?.mul(get("b")?),
        "transpose" => get("x")?.transpose(1, 2),
        "permute" => get("x")?.permute(&[2, 0, 1]),
        "reshape" => get("x")?.reshape(f_shape),
        "concat" => Tensor::concat(&[get("a")?.clone(), get("b")?.clone()], 1),
        "gather" => {
            let (shape, idx) = index("index")?;
            get("x")?.gather(1, &idx, &shape)
        }
        "index_select" => get("x")?.index_select(0, &index("index")?.1),
        other => return Err(format!("unknown op `{other}`")),
    })
}

pub(super) fn run_ops<T: Float>(case: &Case) -> Result<CaseOutput, String> {
    let mut produced = Produced::new();
    let mut unknown = Vec::new();
    for op in case.variants() {
        // Differentiable inputs: those with a direction `input/<op>/v_<name>`.
        let prefix = format!("input/{op}/v_");
        let names: Vec<String> = case
            .file
            .tensors
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix).map(|n| n.to_string()))
            .collect();
        let mut leaves = HashMap::new();
        let mut xs = Vec::new();
        let mut vs = Vec::new();
        for n in &names {
            let t = case
                .tensor::<T>(&format!("input/{op}/{n}"))?
                .requires_grad_();
            leaves.insert(n.clone(), t.clone());
            xs.push(t);
            vs.push(case.tensor::<T>(&format!("input/{op}/v_{n}"))?);
        }
        let w = case.tensor::<T>(&format!("input/{op}/w"))?.requires_grad_();
        let f_shape = case.shape(&format!("expected/{op}/f"))?.to_vec();
        let f = match apply_op(case, &op, &leaves, &f_shape) {
            Ok(f) => f,
            Err(e) if e.starts_with("unknown op") => {
                unknown.push(op.clone());
                continue;
            }
            Err(e) => return Err(e),
        };
        let big_f = f.mul(&w).sum_all();
        let grads = crate::grad(std::slice::from_ref(&big_f), &xs, true);
        let mut h: Option<Tensor<T>> = None;
        for (g, v) in grads.iter().zip(&vs) {
            let term = g.mul(v).sum_all();
            h = Some(match h {
                Some(acc) => acc.add(&term),
                None => term,
            });
        }
        let h = h.ok_or_else(|| format!("op `{op}` has no differentiable inputs"))?;
        let mut wrt = xs.clone();
        wrt.push(w.clone());
        let second = crate::grad(std::slice::from_ref(&h), &wrt, false);
        let p = format!("expected/{op}");
        put(&mut produced, format!("{p}/f"), &f);
        for (i, n) in names.iter().enumerate() {
            put(&mut produced, format!("{p}/grad_{n}"), &grads[i]);
            put(&mut produced, format!("{p}/hvp_{n}"), &second[i]);
        }
        put(&mut produced, format!("{p}/jvp"), &second[names.len()]);
    }
    let errors = if unknown.is_empty() {
        Vec::new()
    } else {
        vec![format!(
            "unknown op(s) {unknown:?} (the verifier knows no rule for them; their expected tensors are reported as not computed)"
        )]
    };
    Ok(CaseOutput {
        produced,
        gaps: Vec::new(),
        errors,
    })
}

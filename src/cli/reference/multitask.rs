//! The `mtl_seed_mnist` case: the W5 multi-task network's forward pass, losses and gradients,
//! and one Adam step with its moment estimates.

use super::case::{put, put_params, Case, CaseOutput, Produced};
use crate::nn::optim::{Adam, Optimizer};
use crate::nn::Params;
use crate::tensor::{Float, Tensor};

/// The parameters of the `mtl_seed_mnist` network (the W5 network), with PyTorch's names in its order.
pub const MTL_PARAMS: [&str; 8] = [
    "conv.weight",
    "conv.bias",
    "fc.weight",
    "fc.bias",
    "head_digit.weight",
    "head_digit.bias",
    "head_mod3.weight",
    "head_mod3.bias",
];

pub(super) fn run_mtl<T: Float>(case: &Case) -> Result<CaseOutput, String> {
    let mut theta = Params::new();
    for n in MTL_PARAMS {
        theta.push(n, case.tensor::<T>(&format!("param/{n}"))?);
    }
    let extra: Vec<&String> = case
        .file
        .tensors
        .keys()
        .filter(|k| {
            k.strip_prefix("param/")
                .is_some_and(|n| !MTL_PARAMS.contains(&n))
        })
        .collect();
    if !extra.is_empty() {
        return Err(format!("unexpected parameters {extra:?}"));
    }
    let theta = theta.requires_grad_();
    let x: Tensor<T> = case.tensor("input/x")?;
    let (_, y_digit) = case.indices("input/y_digit")?;
    let (_, y_mod3) = case.indices("input/y_mod3")?;
    let p = |i: usize| theta.at(i);
    let h = x
        .conv2d(p(0), Some(p(1)), 1, 1)
        .relu()
        .max_pool2d(4, 4)
        .flatten_from1();
    let h = h.linear(p(2), Some(p(3))).relu();
    let logits_digit = h.linear(p(4), Some(p(5)));
    let logits_mod3 = h.linear(p(6), Some(p(7)));
    let loss_digit = logits_digit.cross_entropy(&y_digit);
    let loss_mod3 = logits_mod3.cross_entropy(&y_mod3);
    let loss = loss_digit.add(&loss_mod3);
    let grads = crate::grad(std::slice::from_ref(&loss), theta.tensors(), false);

    let adam = |k: &str, d: f64| case.json_f64(&["adam", k]).unwrap_or(d);
    let mut opt = Adam::<T>::new(adam("lr", 1e-3))
        .with_betas(adam("beta1", 0.9), adam("beta2", 0.999))
        .with_eps(adam("eps", 1e-8))
        .with_weight_decay(adam("weight_decay", 0.0));
    let stepped = opt.step(&theta, &grads);
    let state = opt.state();

    let mut produced = Produced::new();
    put(&mut produced, "expected/logits_digit".into(), &logits_digit);
    put(&mut produced, "expected/logits_mod3".into(), &logits_mod3);
    put(&mut produced, "expected/loss_digit".into(), &loss_digit);
    put(&mut produced, "expected/loss_mod3".into(), &loss_mod3);
    put(&mut produced, "expected/loss".into(), &loss);
    put_params(&mut produced, "expected/grad", &theta.with_tensors(grads));
    put_params(&mut produced, "expected/adam_step1", &stepped);
    for (n, t) in state.iter() {
        if let Some(rest) = n.strip_prefix("exp_avg/") {
            put(&mut produced, format!("expected/adam_exp_avg/{rest}"), t);
        } else if let Some(rest) = n.strip_prefix("exp_avg_sq/") {
            put(&mut produced, format!("expected/adam_exp_avg_sq/{rest}"), t);
        }
    }
    Ok(CaseOutput {
        produced,
        gaps: Vec::new(),
        errors: Vec::new(),
    })
}

//! The `protonet_episode` case: embeddings, prototypes, logits, loss and parameter gradients of
//! one Prototypical Networks episode (support and query embedded jointly or separately).

use super::case::{conv4_from_file, put, put_params, seeded, Case, CaseOutput, Produced};
use crate::nn::{Model, Params};
use crate::tensor::{Float, Tensor};

pub(super) fn run_protonet<T: Float>(case: &Case) -> Result<CaseOutput, String> {
    let sx: Tensor<T> = case.tensor("input/support_x")?;
    let qx: Tensor<T> = case.tensor("input/query_x")?;
    let (_, sy) = case.indices("input/support_y")?;
    let (_, qy) = case.indices("input/query_y")?;
    let model = conv4_from_file(case, *sx.shape().last().unwrap_or(&0))?;
    let layout: Params<T> = model.init(&mut seeded());
    let theta = case.params::<T>(&layout)?.requires_grad_();
    let n_way = sy.iter().copied().max().map_or(0, |m| m + 1);
    // Prototypes as `A @ z_support`, with A[k, s] = 1 / |{s: y_s = k}| where y_s = k.
    let mut counts = vec![0usize; n_way];
    sy.iter().for_each(|&y| counts[y] += 1);
    let mut avg = vec![0.0; n_way * sy.len()];
    for (s, &y) in sy.iter().enumerate() {
        avg[y * sy.len() + s] = 1.0 / counts[y] as f64;
    }
    let avg: Tensor<T> = Tensor::from_f64(&avg, &[n_way, sy.len()]);

    let mut produced = Produced::new();
    for variant in case.variants() {
        let (zs, zq) = match variant.as_str() {
            "joint" => {
                let z = model.forward(&theta, &Tensor::concat(&[sx.clone(), qx.clone()], 0));
                let ns = sx.dim(0);
                (z.narrow(0, 0, ns), z.narrow(0, ns, qx.dim(0)))
            }
            "separate" => (model.forward(&theta, &sx), model.forward(&theta, &qx)),
            other => {
                return Err(format!(
                    "unknown ProtoNet variant `{other}` (expected `joint` or `separate`)"
                ))
            }
        };
        let protos = avg.matmul(&zs);
        let (nq, d) = (zq.dim(0), zq.dim(1));
        let diff = zq.reshape(&[nq, 1, d]).sub(&protos.reshape(&[1, n_way, d]));
        let logits = diff.square().sum_axis(-1, false).neg();
        let loss = logits.cross_entropy(&qy);
        let grads = crate::grad(std::slice::from_ref(&loss), theta.tensors(), false);
        let p = format!("expected/{variant}");
        put(&mut produced, format!("{p}/support_embeddings"), &zs);
        put(&mut produced, format!("{p}/query_embeddings"), &zq);
        put(&mut produced, format!("{p}/prototypes"), &protos);
        put(&mut produced, format!("{p}/logits"), &logits);
        put(&mut produced, format!("{p}/loss"), &loss);
        put_params(
            &mut produced,
            &format!("{p}/grad"),
            &theta.with_tensors(grads),
        );
    }
    Ok(CaseOutput {
        produced,
        gaps: Vec::new(),
        errors: Vec::new(),
    })
}

//! Optimizers against hand-computed steps, and safetensors checkpoints.

mod common;

use metalearn::nn::checkpoint::{self, CheckpointError};
use metalearn::nn::optim::{Adam, AdamW, Optimizer, Sgd};
use metalearn::nn::Params;
use metalearn::Tensor;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn one_param(values: &[f64]) -> Params<f64> {
    let mut p = Params::new();
    p.push(
        "w",
        Tensor::from_vec(values.to_vec(), &[values.len()]).requires_grad_(),
    );
    p
}

fn grads_of(g: &[f64]) -> Vec<Tensor<f64>> {
    vec![Tensor::from_vec(g.to_vec(), &[g.len()])]
}

fn assert_close(a: &[f64], e: &[f64], what: &str) {
    assert_eq!(a.len(), e.len(), "{what}: lengths differ");
    for (i, (x, y)) in a.iter().zip(e).enumerate() {
        assert!(
            (x - y).abs() <= 1e-14 + 1e-12 * y.abs(),
            "{what}[{i}]: {x} vs {y} (all: {a:?} vs {e:?})"
        );
    }
}

/// The gradients fed to every optimizer test: three steps of a 2-element parameter.
const GRADS: [[f64; 2]; 3] = [[0.5, -1.0], [0.1, 0.2], [-0.3, 1e-3]];
const P0: [f64; 2] = [1.0, -2.0];

/// The Adam and AdamW tests' learning rate, betas, eps and weight decay.
const HYPER: (f64, f64, f64, f64, f64) = (0.01, 0.9, 0.999, 1e-8, 0.1);

/// The closed form, written out, of Adam (`decoupled = false`: L2 decay into the gradient) or
/// AdamW (`true`: `p *= 1 - lr wd`, the gradient untouched) with [`HYPER`] from `P0` over
/// `GRADS`: moments, bias correction, eps outside the sqrt. Returns the parameters and the
/// two moments after each step.
fn written_out_steps(decoupled: bool) -> Vec<[[f64; 2]; 3]> {
    let (lr, b1, b2, eps, wd) = HYPER;
    let mut p = P0;
    let (mut m, mut v) = ([0.0f64; 2], [0.0f64; 2]);
    let mut after = Vec::new();
    for (k, g) in GRADS.iter().enumerate() {
        let t = (k + 1) as i32;
        for j in 0..2 {
            let gj = if decoupled {
                p[j] *= 1.0 - lr * wd;
                g[j]
            } else {
                g[j] + wd * p[j]
            };
            m[j] = b1 * m[j] + (1.0 - b1) * gj;
            v[j] = b2 * v[j] + (1.0 - b2) * gj * gj;
            let m_hat = m[j] / (1.0 - b1.powi(t));
            let v_hat = v[j] / (1.0 - b2.powi(t));
            p[j] -= lr * m_hat / (v_hat.sqrt() + eps);
        }
        after.push([p, m, v]);
    }
    after
}

/// Steps `opt` over `GRADS` from `P0` and hands `check` each step's number (from 1), the new
/// parameters, the optimizer and [`written_out_steps`]'s values for that step.
fn run_steps<O: Optimizer<f64>>(
    opt: &mut O,
    decoupled: bool,
    mut check: impl FnMut(usize, &Params<f64>, &O, [[f64; 2]; 3]),
) {
    let mut params = one_param(&P0);
    for (k, (g, expected)) in GRADS.iter().zip(written_out_steps(decoupled)).enumerate() {
        params = opt.step(&params, &grads_of(g));
        check(k + 1, &params, opt, expected);
    }
}

#[test]
fn adam_matches_hand_computed_steps() {
    let (lr, b1, b2, eps, wd) = HYPER;
    let mut opt = Adam::<f64>::new(lr)
        .with_betas(b1, b2)
        .with_eps(eps)
        .with_weight_decay(wd);
    run_steps(&mut opt, false, |t, params, opt, [p, m, v]| {
        assert_close(params.at(0).data(), &p, &format!("adam step {t}"));
        assert_close(opt.exp_avg("w").unwrap().data(), &m, "exp_avg");
        assert_close(opt.exp_avg_sq("w").unwrap().data(), &v, "exp_avg_sq");
        assert!(params.at(0).requires_grad(), "requires_grad is preserved");
        assert!(!params.at(0).has_grad_fn(), "the result is a leaf");
    });
    assert_eq!(opt.steps(), 3);

    // At t = 1 without decay the step is lr * g / (|g| + eps).
    let mut opt = Adam::<f64>::new(1e-3);
    let out = opt.step(&one_param(&P0), &grads_of(&[0.5, 0.0]));
    assert_close(
        out.at(0).data(),
        &[1.0 - 1e-3 * 0.5 / (0.5 + 1e-8), -2.0],
        "adam t=1",
    );

    // Literal values for the first step with L2 decay: g' = [0.6, -1.2] -> p - lr*g'/(|g'|+eps).
    let mut opt = Adam::<f64>::new(0.01).with_weight_decay(0.1);
    let out = opt.step(&one_param(&P0), &grads_of(&GRADS[0]));
    assert_close(
        out.at(0).data(),
        &[0.990_000_000_166_666_7, -1.990_000_000_083_333_3],
        "adam literal",
    );
}

#[test]
fn adamw_decays_decoupled() {
    let (lr, b1, b2, eps, wd) = HYPER;
    let mut opt = AdamW::<f64>::new(lr)
        .with_betas(b1, b2)
        .with_eps(eps)
        .with_weight_decay(wd);
    run_steps(&mut opt, true, |t, params, _, [p, _, _]| {
        assert_close(params.at(0).data(), &p, &format!("adamw step {t}"));
    });
    // With a zero gradient only the decay acts: p * (1 - lr * wd).
    let mut opt = AdamW::<f64>::new(0.01).with_weight_decay(0.5);
    let out = opt.step(&one_param(&P0), &grads_of(&[0.0, 0.0]));
    assert_close(
        out.at(0).data(),
        &[1.0 * 0.995, -2.0 * 0.995],
        "adamw pure decay",
    );
    assert_eq!(
        AdamW::<f32>::new(1e-3).weight_decay(),
        0.01,
        "PyTorch's default"
    );
}

#[test]
fn adam_amsgrad_uses_the_running_max() {
    let (lr, b1, b2, eps) = (0.1, 0.9, 0.999, 1e-8);
    let mut opt = Adam::<f64>::new(lr).with_amsgrad(true);
    let mut params = one_param(&P0);
    let mut p = P0;
    let (mut m, mut v, mut vmax) = ([0.0f64; 2], [0.0f64; 2], [0.0f64; 2]);
    for (k, g) in [[1.0, -1.0], [0.01, 0.01], [0.0, 0.0]].iter().enumerate() {
        let t = (k + 1) as i32;
        for j in 0..2 {
            m[j] = b1 * m[j] + (1.0 - b1) * g[j];
            v[j] = b2 * v[j] + (1.0 - b2) * g[j] * g[j];
            vmax[j] = vmax[j].max(v[j]);
            p[j] -=
                lr / (1.0 - b1.powi(t)) * m[j] / (vmax[j].sqrt() / (1.0 - b2.powi(t)).sqrt() + eps);
        }
        params = opt.step(&params, &grads_of(g));
        assert_close(params.at(0).data(), &p, &format!("amsgrad step {t}"));
    }
    assert!(opt.state().get("max_exp_avg_sq/w").is_some());
}

#[test]
fn sgd_momentum_weight_decay_dampening_nesterov() {
    let (lr, mom, damp, wd) = (0.1, 0.9, 0.25, 0.01);
    for nesterov in [false, true] {
        let damp = if nesterov { 0.0 } else { damp };
        let mut opt = Sgd::<f64>::new(lr)
            .with_momentum(mom)
            .with_dampening(damp)
            .with_weight_decay(wd)
            .with_nesterov(nesterov);
        let mut params = one_param(&P0);
        let mut p = P0;
        let mut buf = [0.0f64; 2];
        for (k, g) in GRADS.iter().enumerate() {
            for j in 0..2 {
                let d = g[j] + wd * p[j];
                buf[j] = if k == 0 {
                    d
                } else {
                    mom * buf[j] + (1.0 - damp) * d
                };
                let step = if nesterov { d + mom * buf[j] } else { buf[j] };
                p[j] -= lr * step;
            }
            params = opt.step(&params, &grads_of(g));
            assert_close(
                params.at(0).data(),
                &p,
                &format!("sgd nesterov={nesterov} step {}", k + 1),
            );
            assert_close(
                opt.state().get("momentum_buffer/w").unwrap().data(),
                &buf,
                "momentum buffer",
            );
        }
    }
    // Literal first two steps of plain momentum SGD (no decay): buffer = g1, then 0.9 g1 + g2.
    let mut opt = Sgd::<f64>::new(0.1).with_momentum(0.9);
    let p1 = opt.step(&one_param(&P0), &grads_of(&GRADS[0]));
    assert_close(p1.at(0).data(), &[0.95, -1.9], "sgd literal step 1");
    let p2 = opt.step(&p1, &grads_of(&GRADS[1]));
    assert_close(
        p2.at(0).data(),
        &[0.95 - 0.1 * 0.55, -1.9 - 0.1 * (-0.7)],
        "sgd literal step 2",
    );

    // Plain SGD: p - lr * g, no state beyond the step count.
    let mut opt = Sgd::<f64>::new(0.5);
    let p1 = opt.step(&one_param(&P0), &grads_of(&GRADS[0]));
    assert_close(p1.at(0).data(), &[0.75, -1.5], "plain sgd");
    assert!(opt.state().get("momentum_buffer/w").is_none());
}

#[test]
fn optimizer_state_round_trips_through_a_checkpoint() {
    let dir = temp_dir("optstate");
    let mut a = Adam::<f64>::new(0.01).with_weight_decay(0.05);
    let mut pa = one_param(&P0);
    pa = a.step(&pa, &grads_of(&GRADS[0]));
    pa = a.step(&pa, &grads_of(&GRADS[1]));
    let state = a.state();
    assert_eq!(state.names(), ["step", "exp_avg/w", "exp_avg_sq/w"]);
    let path = dir.join("opt.safetensors");
    checkpoint::save(&path, &state, &BTreeMap::new()).unwrap();
    let loaded = checkpoint::load::<f64>(&path).unwrap();
    assert_eq!(loaded.params.names(), state.names());

    let mut b = Adam::<f64>::new(0.01).with_weight_decay(0.05);
    b.load_state(&loaded.params).unwrap();
    assert_eq!(b.steps(), 2);
    let next_a = a.step(&pa, &grads_of(&GRADS[2]));
    let next_b = b.step(&pa, &grads_of(&GRADS[2]));
    assert_eq!(
        next_a.at(0).data(),
        next_b.at(0).data(),
        "resumed optimizer continues identically"
    );

    // SGD momentum state too.
    let mut s = Sgd::<f64>::new(0.1).with_momentum(0.9);
    let ps = s.step(&one_param(&P0), &grads_of(&GRADS[0]));
    let mut s2 = Sgd::<f64>::new(0.1).with_momentum(0.9);
    s2.load_state(&s.state()).unwrap();
    assert_eq!(
        s.step(&ps, &grads_of(&GRADS[1])).at(0).data(),
        s2.step(&ps, &grads_of(&GRADS[1])).at(0).data()
    );

    // A state with a missing buffer is an error, not a panic.
    let broken = state.filter(|n| n != "exp_avg_sq/w");
    let err = Adam::<f64>::new(0.01).load_state(&broken).unwrap_err();
    assert!(err.to_string().contains("exp_avg_sq/w"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

// ------------------------------------------------------------------------------------------
// Checkpoints

fn temp_dir(tag: &str) -> PathBuf {
    common::fresh_dir("metalearn-ckpt", tag)
}

fn sample_params<T: metalearn::Float>() -> Params<T> {
    let mut p = Params::new();
    // Deliberately not in sorted order, to check the order survives.
    p.push(
        "l1.weight",
        Tensor::from_f64(&[0.1, -0.2, 0.3, 1.0 / 3.0, 5e-8, -7.25], &[2, 3]),
    );
    p.push("l1.bias", Tensor::from_f64(&[1.5, -2.5], &[2]));
    p.push(
        "b0.bn.weight",
        Tensor::from_f64(&[std::f64::consts::PI], &[1]),
    );
    p.push("scale", Tensor::from_f64(&[0.125], &[]));
    p
}

/// Parses the safetensors header by hand (8-byte little-endian length + JSON), as Python's
/// reader does.
fn header(path: &std::path::Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    serde_json::from_slice(&bytes[8..8 + n]).unwrap()
}

fn round_trip<T: metalearn::Float>(dtype: &str, bytes_per: usize) {
    let dir = temp_dir(&format!("rt_{dtype}"));
    let path = dir.join("model.safetensors");
    let params = sample_params::<T>();
    let mut meta = BTreeMap::new();
    meta.insert("architecture".to_string(), "mlp[1, 40, 40, 1]".to_string());
    meta.insert(
        "config".to_string(),
        "[train]\nlr = 0.001\nsteps = 10\n".to_string(),
    );
    meta.insert("step".to_string(), "1234".to_string());
    checkpoint::save(&path, &params, &meta).unwrap();

    let h = header(&path);
    for (n, t) in params.iter() {
        assert_eq!(h[n]["dtype"], dtype, "{n}");
        assert_eq!(h[n]["shape"], serde_json::json!(t.shape()), "{n}");
        let off = &h[n]["data_offsets"];
        let len = off[1].as_u64().unwrap() - off[0].as_u64().unwrap();
        assert_eq!(len as usize, t.numel() * bytes_per);
    }
    assert_eq!(h["__metadata__"]["step"], "1234");

    let loaded = checkpoint::load::<T>(&path).unwrap();
    assert_eq!(loaded.params.names(), params.names(), "order preserved");
    for ((n, a), b) in loaded.params.iter().zip(params.tensors()) {
        assert_eq!(a.shape(), b.shape(), "{n}");
        assert_eq!(a.data(), b.data(), "{n}: bit-exact");
    }
    assert_eq!(
        loaded.metadata, meta,
        "user metadata round trips (internal keys removed)"
    );

    // Loading into the expected layout keeps requires_grad of the layout.
    let expected = sample_params::<T>().requires_grad_();
    let into = checkpoint::load_into(&path, &expected).unwrap();
    assert!(into.params.tensors().iter().all(|t| t.requires_grad()));

    // The other precision converts on load.
    let other = checkpoint::load::<f64>(&path).unwrap();
    assert_eq!(other.params.at(0).to_f64_vec(), params.at(0).to_f64_vec());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn checkpoint_round_trip_f32_and_f64_with_metadata() {
    round_trip::<f32>("F32", 4);
    round_trip::<f64>("F64", 8);
}

#[test]
fn atomic_write_leaves_no_temp_file_and_replaces_the_old_file() {
    let dir = temp_dir("atomic");
    let path = dir.join("ckpt.safetensors");
    checkpoint::save(&path, &sample_params::<f32>(), &BTreeMap::new()).unwrap();
    let mut small = Params::<f32>::new();
    small.push("only", Tensor::from_vec(vec![1.0, 2.0], &[2]));
    checkpoint::save(&path, &small, &BTreeMap::new()).unwrap();
    let entries: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        entries,
        vec!["ckpt.safetensors".to_string()],
        "no temporary file is left"
    );
    let loaded = checkpoint::load::<f32>(&path).unwrap();
    assert_eq!(loaded.params.names(), ["only"]);

    // A save into a missing directory fails cleanly and leaves nothing behind.
    let err = checkpoint::save(
        dir.join("missing/sub/ckpt.safetensors"),
        &small,
        &BTreeMap::new(),
    )
    .unwrap_err();
    assert!(matches!(err, CheckpointError::Io { .. }), "{err:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn load_errors_are_typed_and_clear() {
    let dir = temp_dir("errors");
    let path = dir.join("model.safetensors");
    missing_and_truncated_files(&dir, &path);
    parameters_of_another_model(&path);
    integer_tensors(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A missing file, then (after saving `path`) truncated and corrupt copies of it.
fn missing_and_truncated_files(dir: &Path, path: &Path) {
    // Missing file.
    let err = checkpoint::load::<f32>(path).unwrap_err();
    assert!(matches!(err, CheckpointError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("model.safetensors"), "{err}");

    // Truncated file.
    checkpoint::save(path, &sample_params::<f64>(), &BTreeMap::new()).unwrap();
    let bytes = std::fs::read(path).unwrap();
    let cut = dir.join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() - 5]).unwrap();
    let err = checkpoint::load::<f64>(&cut).unwrap_err();
    assert!(matches!(err, CheckpointError::Corrupt { .. }), "{err:?}");
    assert!(
        err.to_string().contains("truncated") && err.to_string().contains("cut.safetensors"),
        "{err}"
    );
    std::fs::write(&cut, &bytes[..3]).unwrap();
    assert!(matches!(
        checkpoint::load::<f64>(&cut).unwrap_err(),
        CheckpointError::Corrupt { .. }
    ));
    std::fs::write(&cut, b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!").unwrap();
    assert!(matches!(
        checkpoint::load::<f64>(&cut).unwrap_err(),
        CheckpointError::Corrupt { .. }
    ));
}

/// Loading the checkpoint `path` into parameters of another shape, with a tensor more or
/// one fewer.
fn parameters_of_another_model(path: &Path) {
    // Shape mismatch (another architecture): names the tensor and both shapes.
    let mut wider = sample_params::<f64>();
    wider = wider.map(|t| {
        if t.shape() == [2, 3] {
            Tensor::zeros(&[4, 3])
        } else {
            t.clone()
        }
    });
    let err = checkpoint::load_into(path, &wider).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, CheckpointError::ShapeMismatch { .. }),
        "{err:?}"
    );
    assert!(
        msg.contains("l1.weight") && msg.contains("[2, 3]") && msg.contains("[4, 3]"),
        "{msg}"
    );
    assert!(msg.contains("another architecture"), "{msg}");

    // Missing tensor.
    let mut more = sample_params::<f64>();
    more.push("head.weight", Tensor::zeros(&[5, 2]));
    let err = checkpoint::load_into(path, &more).unwrap_err();
    assert!(
        matches!(&err, CheckpointError::MissingTensor { name, .. } if name == "head.weight"),
        "{err:?}"
    );

    // Extra tensors in the file.
    let fewer = sample_params::<f64>().filter(|n| n != "scale");
    let err = checkpoint::load_into(path, &fewer).unwrap_err();
    assert!(
        matches!(&err, CheckpointError::UnexpectedTensors { names, .. } if names == &["scale"]),
        "{err:?}"
    );
}

/// Wrong dtype: an integer tensor where parameters are expected.
fn integer_tensors(dir: &Path) {
    let ints = dir.join("ints.safetensors");
    let data: Vec<u8> = [1i64, 2, 3].iter().flat_map(|x| x.to_le_bytes()).collect();
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::I64, vec![3], &data).unwrap();
    std::fs::write(
        &ints,
        safetensors::serialize([("labels", view)], &None).unwrap(),
    )
    .unwrap();
    let err = checkpoint::load::<f32>(&ints).unwrap_err();
    assert!(
        matches!(&err, CheckpointError::WrongDtype { name, found, .. } if name == "labels" && found == "I64"),
        "{err:?}"
    );
    // ... which the raw reader accepts as integers.
    let raw = checkpoint::read_safetensors_f64(&ints).unwrap();
    assert_eq!(raw.tensors["labels"].as_i64(), Some(&[1i64, 2, 3][..]));
}

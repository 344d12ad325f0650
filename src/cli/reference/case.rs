//! A reference case's inputs (tensors of the safetensors file and hyper-parameters of its JSON
//! description), the tensors the verifier produces, and the models rebuilt from the parameter
//! shapes.

use crate::nn::checkpoint::{RawData, RawFile, RawTensor};
use crate::nn::{Conv4, Conv4Config, DownsampleKind, Mlp, Params};
use crate::tensor::{Float, Tensor};
use std::collections::{BTreeMap, BTreeSet};

pub(super) struct Case<'a> {
    pub(super) name: &'a str,
    pub(super) file: &'a RawFile,
    pub(super) json: Option<&'a serde_json::Value>,
}

pub(super) type Produced = BTreeMap<String, (Vec<usize>, Vec<f64>)>;

pub(super) struct CaseOutput {
    pub(super) produced: Produced,
    /// (variant, computed second-order gap).
    pub(super) gaps: Vec<(String, f64)>,
    /// Problems that did not stop the case (reported as case errors).
    pub(super) errors: Vec<String>,
}

impl Case<'_> {
    pub(super) fn raw(&self, name: &str) -> Result<&RawTensor, String> {
        self.file
            .tensors
            .get(name)
            .ok_or_else(|| format!("the file has no tensor `{name}`"))
    }

    pub(super) fn reals(&self, name: &str) -> Result<(&[usize], &[f64]), String> {
        let r = self.raw(name)?;
        match &r.data {
            RawData::F64(v) => Ok((&r.shape, v)),
            RawData::I64(_) => Err(format!(
                "tensor `{name}` has dtype {}, expected a real dtype",
                r.dtype
            )),
        }
    }

    pub(super) fn tensor<T: Float>(&self, name: &str) -> Result<Tensor<T>, String> {
        let (shape, v) = self.reals(name)?;
        Ok(Tensor::from_f64(v, shape))
    }

    /// Entry `t` along the first dimension.
    pub(super) fn tensor_at<T: Float>(&self, name: &str, t: usize) -> Result<Tensor<T>, String> {
        let (shape, v) = self.reals(name)?;
        let (n, rest) = shape.split_first().ok_or_else(|| {
            format!("tensor `{name}` is a scalar; expected a leading task dimension")
        })?;
        if t >= *n {
            return Err(format!(
                "tensor `{name}` has {n} entries, entry {t} asked for"
            ));
        }
        let m: usize = rest.iter().product();
        Ok(Tensor::from_f64(&v[t * m..(t + 1) * m], rest))
    }

    pub(super) fn indices(&self, name: &str) -> Result<(Vec<usize>, Vec<usize>), String> {
        let r = self.raw(name)?;
        let v = match &r.data {
            RawData::I64(v) => v,
            RawData::F64(_) => {
                return Err(format!(
                    "tensor `{name}` has dtype {}, expected I64",
                    r.dtype
                ))
            }
        };
        let out = v
            .iter()
            .map(|&x| {
                usize::try_from(x)
                    .map_err(|_| format!("tensor `{name}` holds a negative index {x}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((r.shape.clone(), out))
    }

    pub(super) fn indices_at(&self, name: &str, t: usize) -> Result<Vec<usize>, String> {
        let (shape, v) = self.indices(name)?;
        let n = *shape
            .first()
            .ok_or_else(|| format!("tensor `{name}` is a scalar"))?;
        if t >= n {
            return Err(format!(
                "tensor `{name}` has {n} entries, entry {t} asked for"
            ));
        }
        let m = v.len() / n;
        Ok(v[t * m..(t + 1) * m].to_vec())
    }

    pub(super) fn has(&self, name: &str) -> bool {
        self.file.tensors.contains_key(name)
    }

    pub(super) fn shape(&self, name: &str) -> Result<&[usize], String> {
        Ok(&self.raw(name)?.shape)
    }

    /// The parameters `param/<name>` in `layout`'s order and shapes; every `param/...` tensor of
    /// the file must be in the layout.
    pub(super) fn params<T: Float>(&self, layout: &Params<T>) -> Result<Params<T>, String> {
        let mut out = Params::new();
        for (n, t) in layout.iter() {
            let key = format!("param/{n}");
            let p: Tensor<T> = self.tensor(&key)?;
            if p.shape() != t.shape() {
                return Err(format!(
                    "`{key}` has shape {:?} but the model expects {:?}",
                    p.shape(),
                    t.shape()
                ));
            }
            out.push(n, p);
        }
        let extra: Vec<&str> = self
            .file
            .tensors
            .keys()
            .filter_map(|k| k.strip_prefix("param/"))
            .filter(|n| layout.get(n).is_none())
            .collect();
        if !extra.is_empty() {
            return Err(format!("parameters {extra:?} are not part of the model"));
        }
        Ok(out)
    }

    /// The distinct second path segments of `expected/<variant>/<...>` names.
    pub(super) fn variants(&self) -> BTreeSet<String> {
        self.file
            .tensors
            .keys()
            .filter_map(|k| k.strip_prefix("expected/"))
            .filter_map(|k| k.split_once('/').map(|(v, _)| v.to_string()))
            .collect()
    }

    pub(super) fn json_f64(&self, path: &[&str]) -> Option<f64> {
        let mut v = self.json?;
        for p in path {
            v = v.get(p)?;
        }
        v.as_f64()
    }
}

pub(super) fn put<T: Float>(out: &mut Produced, name: String, t: &Tensor<T>) {
    out.insert(name, (t.shape().to_vec(), t.to_f64_vec()));
}

pub(super) fn put_params<T: Float>(out: &mut Produced, prefix: &str, p: &Params<T>) {
    for (n, t) in p.iter() {
        put(out, format!("{prefix}/{n}"), t);
    }
}

pub(super) fn put_stacked<T: Float>(out: &mut Produced, name: String, parts: &[Tensor<T>]) {
    let mut shape = vec![parts.len()];
    shape.extend_from_slice(parts.first().map(|t| t.shape()).unwrap_or(&[]));
    let data = parts.iter().flat_map(|t| t.to_f64_vec()).collect();
    out.insert(name, (shape, data));
}

#[derive(Clone, Copy)]
pub(super) enum Arch {
    Mlp,
    Conv4,
}

pub(super) fn seeded() -> rand_chacha::ChaCha8Rng {
    use rand::SeedableRng;
    rand_chacha::ChaCha8Rng::seed_from_u64(0)
}

pub(super) fn mlp_from_file(case: &Case) -> Result<Mlp, String> {
    let mut sizes = Vec::new();
    let mut i = 0;
    while case.has(&format!("param/l{i}.weight")) {
        let s = case.shape(&format!("param/l{i}.weight"))?;
        if s.len() != 2 {
            return Err(format!(
                "`param/l{i}.weight` has shape {s:?}, expected [out, in]"
            ));
        }
        if i == 0 {
            sizes.push(s[1]);
        }
        sizes.push(s[0]);
        i += 1;
    }
    if sizes.len() < 2 {
        return Err("no MLP parameters `param/l0.weight`... in the file".into());
    }
    Ok(Mlp::new(&sizes))
}

pub(super) fn conv4_from_file(case: &Case, image_size: usize) -> Result<Conv4, String> {
    let w0 = case.shape("param/b0.conv.weight")?;
    if w0.len() != 4 {
        return Err(format!(
            "`param/b0.conv.weight` has shape {w0:?}, expected [out, in, 3, 3]"
        ));
    }
    let mut blocks = 0;
    while case.has(&format!("param/b{blocks}.conv.weight")) {
        blocks += 1;
    }
    let head = if case.has("param/head.weight") {
        Some(case.shape("param/head.weight")?[0])
    } else {
        None
    };
    Ok(Conv4::new(Conv4Config {
        in_channels: w0[1],
        filters: w0[0],
        blocks,
        image_size,
        head,
        downsample: DownsampleKind::MaxPool,
        downsample_blocks: None,
    }))
}

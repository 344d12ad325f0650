//! The reference verifier behind `metalearn verify-reference DIR`.
//!
//! A reference folder (laid out like `shared/reference`, see its README) holds, per case, a
//! `<case>.safetensors` file with inputs (`input/...`), initial parameters (`param/...`) and the
//! values PyTorch computed in float64 (`expected/...`), plus a `<case>.json` description with the
//! hyper-parameters. [`verify_reference_dir`] recomputes every expected tensor with this
//! library's own code paths ([`crate::nn::Mlp`], [`crate::nn::Conv4`],
//! [`crate::algorithms::maml::task_meta_grad`], [`crate::nn::optim::Adam`] and the tensor ops)
//! and compares:
//!
//! * **f64** ([`VerifyDtype::F64`]): elementwise, pass when `|a - e| <= 1e-10 + 1e-8 |e|`. The
//!   reported error is `max |a - e| / (1e-2 + |e|)`, which passes when `<= 1e-8`.
//! * **f32** ([`VerifyDtype::F32`]): the same computation in `f32`, tensor-wise: the error is
//!   `max |a - e| / max |e|`, which passes when `<= 1e-4`.
//! * The conv-bias gradients of Conv-4 (`b<i>.conv.bias` under `grad`, `meta_grad`, `fo_grad`),
//!   which are mathematically zero because a batch norm follows each conv, are compared with an
//!   absolute tolerance: `max |a - e| <= 1e-10` in f64, `max |a| <= 1e-4` in f32.
//!
//! The cases are driven by the files: every `expected/...` tensor in a file is checked (a tensor
//! the verifier does not produce is a failure, not a skip), and a case name the verifier does
//! not know is reported as an error. For the MAML cases the report also gives the relative
//! difference `||meta_grad - fo_grad|| / ||meta_grad||` between the second-order meta-gradient
//! and the first-order one, to show the second-order terms are real.

use crate::algorithms::maml::{task_meta_grad, Order};
use crate::algorithms::Target;
use crate::autodiff::no_grad;
use crate::nn::checkpoint::{read_safetensors_f64, CheckpointError, RawData, RawFile, RawTensor};
use crate::nn::optim::{Adam, Optimizer};
use crate::nn::{Conv4, Conv4Config, DownsampleKind, Mlp, Model, Params};
use crate::tensor::{Float, Tensor};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

/// The cases this verifier knows.
pub const KNOWN_CASES: [&str; 5] = [
    "mlp_maml_sinusoid",
    "conv4_maml_omniglot",
    "protonet_episode",
    "mtl_seed_mnist",
    "ops_double_backward",
];

/// f64 elementwise tolerance: `|a - e| <= ATOL_F64 + RTOL_F64 * |e|`.
pub const RTOL_F64: f64 = 1e-8;
/// See [`RTOL_F64`].
pub const ATOL_F64: f64 = 1e-10;
/// f64 absolute tolerance for the mathematically-zero conv-bias gradients.
pub const ZERO_ATOL_F64: f64 = 1e-10;
/// f32 tensor-wise tolerance: `max |a - e| <= TOL_F32 * max |e|`.
pub const TOL_F32: f64 = 1e-4;
/// f32 absolute tolerance for the mathematically-zero conv-bias gradients: `max |a| <= 1e-4`.
pub const ZERO_ATOL_F32: f64 = 1e-4;

/// The element type the engine runs the cases in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifyDtype {
    /// Double precision, elementwise tolerances.
    F64,
    /// Single precision, tensor-wise tolerances.
    F32,
}

impl fmt::Display for VerifyDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VerifyDtype::F64 => "f64",
            VerifyDtype::F32 => "f32",
        })
    }
}

/// How a tensor was compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// f64: `max |a - e| / (ATOL/RTOL + |e|)`, tolerance `RTOL`.
    Elementwise,
    /// f32: `max |a - e| / max |e|` (plain `max |a - e|` when `e` is all zeros).
    Tensorwise,
    /// A mathematically-zero gradient: `max |a - e|` (f64) or `max |a|` (f32).
    AbsoluteZero,
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Metric::Elementwise => "elem-rel",
            Metric::Tensorwise => "tensor-rel",
            Metric::AbsoluteZero => "abs(zero)",
        })
    }
}

/// One expected tensor of one case.
#[derive(Clone, Debug)]
pub struct CheckRow {
    /// The case (file stem).
    pub case: String,
    /// The tensor name without the `expected/` prefix.
    pub tensor: String,
    /// The comparison.
    pub metric: Metric,
    /// The measured error (NaN when nothing was computed).
    pub error: f64,
    /// The largest absolute difference.
    pub max_abs_diff: f64,
    /// The tolerance `error` is held to.
    pub tolerance: f64,
    /// Whether the tensor passed.
    pub passed: bool,
    /// Why it failed without a number (not computed, shape differs).
    pub note: Option<String>,
}

/// A case that could not be run or checked completely.
#[derive(Clone, Debug)]
pub struct CaseError {
    /// The case.
    pub case: String,
    /// What went wrong.
    pub message: String,
}

/// `||meta_grad - fo_grad|| / ||meta_grad||` (Euclidean over all parameters) for one MAML
/// variant.
#[derive(Clone, Debug)]
pub struct SecondOrderGap {
    /// The case.
    pub case: String,
    /// The variant (`steps1`, ...).
    pub variant: String,
    /// From this engine's meta-gradients.
    pub computed: f64,
    /// From the reference tensors.
    pub reference: f64,
}

/// Per-case summary of a report.
#[derive(Clone, Debug)]
pub struct CaseSummary {
    /// The case.
    pub case: String,
    /// How many tensors were checked.
    pub tensors: usize,
    /// How many failed.
    pub failed: usize,
    /// The largest error over the tensors of the relative metric (elementwise or tensor-wise).
    pub max_error: f64,
    /// The largest error over the mathematically-zero gradients (absolute).
    pub max_zero_error: f64,
    /// Whether the case ran without error and every tensor passed.
    pub passed: bool,
}

/// The result of a verification run.
#[derive(Clone, Debug)]
pub struct VerifyReport {
    /// The folder checked.
    pub dir: PathBuf,
    /// The element type.
    pub dtype: VerifyDtype,
    /// The cases found, in order.
    pub cases: Vec<String>,
    /// Every expected tensor.
    pub checks: Vec<CheckRow>,
    /// Cases that failed to run (unknown case, missing input, engine panic...).
    pub errors: Vec<CaseError>,
    /// Second-order vs first-order MAML meta-gradients.
    pub second_order: Vec<SecondOrderGap>,
}

impl VerifyReport {
    /// Whether at least one tensor was checked, every tensor passed and no case failed.
    pub fn all_passed(&self) -> bool {
        !self.checks.is_empty() && self.errors.is_empty() && self.checks.iter().all(|c| c.passed)
    }

    /// The rows that failed.
    pub fn failures(&self) -> Vec<&CheckRow> {
        self.checks.iter().filter(|c| !c.passed).collect()
    }

    /// The row of a tensor (`case`, name without `expected/`).
    pub fn check(&self, case: &str, tensor: &str) -> Option<&CheckRow> {
        self.checks
            .iter()
            .find(|c| c.case == case && c.tensor == tensor)
    }

    /// One line per case.
    pub fn summaries(&self) -> Vec<CaseSummary> {
        self.cases
            .iter()
            .map(|case| {
                let rows: Vec<&CheckRow> = self.checks.iter().filter(|c| &c.case == case).collect();
                let max_of = |zero: bool| {
                    rows.iter()
                        .filter(|r| (r.metric == Metric::AbsoluteZero) == zero)
                        .map(|r| {
                            if r.error.is_nan() {
                                f64::INFINITY
                            } else {
                                r.error
                            }
                        })
                        .fold(0.0, f64::max)
                };
                let failed = rows.iter().filter(|r| !r.passed).count();
                let errored = self.errors.iter().any(|e| &e.case == case);
                CaseSummary {
                    case: case.clone(),
                    tensors: rows.len(),
                    failed,
                    max_error: max_of(false),
                    max_zero_error: max_of(true),
                    passed: !errored && failed == 0 && !rows.is_empty(),
                }
            })
            .collect()
    }

    /// The per-case summary, second-order gaps and errors as text (without the per-tensor rows).
    pub fn summary_table(&self) -> String {
        let mut s = String::new();
        let passed = self.checks.iter().filter(|c| c.passed).count();
        s.push_str(&format!(
            "reference verification ({}) of {}: {} of {} tensors passed, {} case error(s): {}\n",
            self.dtype,
            self.dir.display(),
            passed,
            self.checks.len(),
            self.errors.len(),
            if self.all_passed() {
                "ALL PASSED"
            } else {
                "FAILED"
            }
        ));
        let (rel_name, tol) = match self.dtype {
            VerifyDtype::F64 => ("max elem-rel", RTOL_F64),
            VerifyDtype::F32 => ("max tensor-rel", TOL_F32),
        };
        s.push_str(&format!(
            "{:<22} {:>7} {:>7} {:>14} {:>14}  pass   (tolerance {:.0e}; zero grads {:.0e} abs)\n",
            "case",
            "tensors",
            "failed",
            rel_name,
            "max abs(zero)",
            tol,
            match self.dtype {
                VerifyDtype::F64 => ZERO_ATOL_F64,
                VerifyDtype::F32 => ZERO_ATOL_F32,
            }
        ));
        for c in self.summaries() {
            s.push_str(&format!(
                "{:<22} {:>7} {:>7} {:>14.3e} {:>14.3e}  {}\n",
                c.case,
                c.tensors,
                c.failed,
                c.max_error,
                c.max_zero_error,
                if c.passed { "ok" } else { "FAIL" }
            ));
        }
        if !self.second_order.is_empty() {
            s.push_str(
                "second-order vs first-order MAML: ||meta_grad - fo_grad|| / ||meta_grad||\n",
            );
            for g in &self.second_order {
                s.push_str(&format!(
                    "  {:<22} {:<8} computed {:.4e}   reference {:.4e}\n",
                    g.case, g.variant, g.computed, g.reference
                ));
            }
        }
        for e in &self.errors {
            s.push_str(&format!("ERROR {}: {}\n", e.case, e.message));
        }
        s
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<22} {:<44} {:<10} {:>11} {:>11} {:>8}  pass",
            "case", "tensor", "metric", "error", "max|a-e|", "tol"
        )?;
        for r in &self.checks {
            writeln!(
                f,
                "{:<22} {:<44} {:<10} {:>11.3e} {:>11.3e} {:>8.0e}  {}{}",
                r.case,
                r.tensor,
                r.metric,
                r.error,
                r.max_abs_diff,
                r.tolerance,
                if r.passed { "ok" } else { "FAIL" },
                r.note
                    .as_ref()
                    .map(|n| format!("  ({n})"))
                    .unwrap_or_default()
            )?;
        }
        writeln!(f)?;
        f.write_str(&self.summary_table())
    }
}

/// Why a reference folder could not be verified at all.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    /// The folder cannot be listed.
    #[error("reference folder {}: cannot be read: {source}", path.display())]
    ReadDir {
        /// The folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The folder holds no `<case>.safetensors` file.
    #[error("reference folder {}: no <case>.safetensors files found", path.display())]
    NoCases {
        /// The folder.
        path: PathBuf,
    },
    /// A case file cannot be read (missing, truncated, corrupt, unsupported dtype).
    #[error("reference case `{case}`: {source}")]
    File {
        /// The case.
        case: String,
        /// The reading error (it names the file and what is wrong).
        #[source]
        source: Box<CheckpointError>,
    },
    /// A case's JSON description exists but cannot be parsed.
    #[error("reference case `{case}`: {}: invalid JSON: {message}", path.display())]
    Json {
        /// The case.
        case: String,
        /// The JSON file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
}

/// Runs every case of a reference folder (every `*.safetensors` file, sorted by name) in the
/// given element type and compares every expected tensor.
pub fn verify_reference_dir(
    dir: &Path,
    dtype: VerifyDtype,
) -> Result<VerifyReport, ReferenceError> {
    let entries = std::fs::read_dir(dir).map_err(|e| ReferenceError::ReadDir {
        path: dir.to_path_buf(),
        source: e,
    })?;
    let mut files: Vec<PathBuf> = Vec::new();
    for e in entries {
        let e = e.map_err(|e| ReferenceError::ReadDir {
            path: dir.to_path_buf(),
            source: e,
        })?;
        let p = e.path();
        if p.extension().is_some_and(|x| x == "safetensors") && p.is_file() {
            files.push(p);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(ReferenceError::NoCases {
            path: dir.to_path_buf(),
        });
    }
    verify_reference_files(dir, &files, dtype)
}

/// Runs the cases of the given `<case>.safetensors` files (their `<case>.json` next to them is
/// read when present). `dir` is only recorded in the report.
pub fn verify_reference_files(
    dir: &Path,
    files: &[PathBuf],
    dtype: VerifyDtype,
) -> Result<VerifyReport, ReferenceError> {
    let mut report = VerifyReport {
        dir: dir.to_path_buf(),
        dtype,
        cases: Vec::new(),
        checks: Vec::new(),
        errors: Vec::new(),
        second_order: Vec::new(),
    };
    for path in files {
        let case = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let raw = read_safetensors_f64(path).map_err(|source| ReferenceError::File {
            case: case.clone(),
            source: Box::new(source),
        })?;
        let json_path = path.with_extension("json");
        let json =
            match std::fs::read_to_string(&json_path) {
                Ok(text) => Some(serde_json::from_str::<serde_json::Value>(&text).map_err(
                    |e| ReferenceError::Json {
                        case: case.clone(),
                        path: json_path.clone(),
                        message: e.to_string(),
                    },
                )?),
                Err(_) => None,
            };
        report.cases.push(case.clone());
        let ctx = Case {
            name: &case,
            file: &raw,
            json: json.as_ref(),
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match dtype {
            VerifyDtype::F64 => run_case::<f64>(&ctx),
            VerifyDtype::F32 => run_case::<f32>(&ctx),
        }));
        let outcome = match outcome {
            Ok(r) => r,
            Err(payload) => {
                let msg = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown panic".into());
                Err(format!("the engine panicked: {msg}"))
            }
        };
        match outcome {
            Ok(out) => {
                compare_case(&ctx, &out.produced, dtype, &mut report);
                for message in out.errors {
                    report.errors.push(CaseError {
                        case: case.clone(),
                        message,
                    });
                }
                for (variant, computed) in out.gaps {
                    let reference = reference_gap(&raw, &variant).unwrap_or(f64::NAN);
                    report.second_order.push(SecondOrderGap {
                        case: case.clone(),
                        variant,
                        computed,
                        reference,
                    });
                }
            }
            Err(message) => report.errors.push(CaseError {
                case: case.clone(),
                message,
            }),
        }
    }
    Ok(report)
}

// ------------------------------------------------------------------------------------------
// Reading inputs

struct Case<'a> {
    name: &'a str,
    file: &'a RawFile,
    json: Option<&'a serde_json::Value>,
}

type Produced = BTreeMap<String, (Vec<usize>, Vec<f64>)>;

struct CaseOutput {
    produced: Produced,
    /// (variant, computed second-order gap).
    gaps: Vec<(String, f64)>,
    /// Problems that did not stop the case (reported as case errors).
    errors: Vec<String>,
}

impl Case<'_> {
    fn raw(&self, name: &str) -> Result<&RawTensor, String> {
        self.file
            .tensors
            .get(name)
            .ok_or_else(|| format!("the file has no tensor `{name}`"))
    }

    fn reals(&self, name: &str) -> Result<(&[usize], &[f64]), String> {
        let r = self.raw(name)?;
        match &r.data {
            RawData::F64(v) => Ok((&r.shape, v)),
            RawData::I64(_) => Err(format!(
                "tensor `{name}` has dtype {}, expected a real dtype",
                r.dtype
            )),
        }
    }

    fn tensor<T: Float>(&self, name: &str) -> Result<Tensor<T>, String> {
        let (shape, v) = self.reals(name)?;
        Ok(Tensor::from_f64(v, shape))
    }

    /// Entry `t` along the first dimension.
    fn tensor_at<T: Float>(&self, name: &str, t: usize) -> Result<Tensor<T>, String> {
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

    fn indices(&self, name: &str) -> Result<(Vec<usize>, Vec<usize>), String> {
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

    fn indices_at(&self, name: &str, t: usize) -> Result<Vec<usize>, String> {
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

    fn has(&self, name: &str) -> bool {
        self.file.tensors.contains_key(name)
    }

    fn shape(&self, name: &str) -> Result<&[usize], String> {
        Ok(&self.raw(name)?.shape)
    }

    /// The parameters `param/<name>` in `layout`'s order and shapes; every `param/...` tensor of
    /// the file must be in the layout.
    fn params<T: Float>(&self, layout: &Params<T>) -> Result<Params<T>, String> {
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
    fn variants(&self) -> BTreeSet<String> {
        self.file
            .tensors
            .keys()
            .filter_map(|k| k.strip_prefix("expected/"))
            .filter_map(|k| k.split_once('/').map(|(v, _)| v.to_string()))
            .collect()
    }

    fn json_f64(&self, path: &[&str]) -> Option<f64> {
        let mut v = self.json?;
        for p in path {
            v = v.get(p)?;
        }
        v.as_f64()
    }
}

fn put<T: Float>(out: &mut Produced, name: String, t: &Tensor<T>) {
    out.insert(name, (t.shape().to_vec(), t.to_f64_vec()));
}

fn put_params<T: Float>(out: &mut Produced, prefix: &str, p: &Params<T>) {
    for (n, t) in p.iter() {
        put(out, format!("{prefix}/{n}"), t);
    }
}

fn put_stacked<T: Float>(out: &mut Produced, name: String, parts: &[Tensor<T>]) {
    let mut shape = vec![parts.len()];
    shape.extend_from_slice(parts.first().map(|t| t.shape()).unwrap_or(&[]));
    let data = parts.iter().flat_map(|t| t.to_f64_vec()).collect();
    out.insert(name, (shape, data));
}

fn run_case<T: Float>(case: &Case) -> Result<CaseOutput, String> {
    match case.name {
        "mlp_maml_sinusoid" => run_maml::<T>(case, Arch::Mlp, 0.01),
        "conv4_maml_omniglot" => run_maml::<T>(case, Arch::Conv4, 0.4),
        "protonet_episode" => run_protonet::<T>(case),
        "mtl_seed_mnist" => run_mtl::<T>(case),
        "ops_double_backward" => run_ops::<T>(case),
        other => Err(format!(
            "unknown reference case `{other}`: this verifier knows {KNOWN_CASES:?}; its {} expected tensors were not checked",
            case.file.tensors.keys().filter(|k| k.starts_with("expected/")).count()
        )),
    }
}

// ------------------------------------------------------------------------------------------
// Models from the parameter shapes

#[derive(Clone, Copy)]
enum Arch {
    Mlp,
    Conv4,
}

fn seeded() -> rand_chacha::ChaCha8Rng {
    use rand::SeedableRng;
    rand_chacha::ChaCha8Rng::seed_from_u64(0)
}

fn mlp_from_file(case: &Case) -> Result<Mlp, String> {
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

fn conv4_from_file(case: &Case, image_size: usize) -> Result<Conv4, String> {
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
    }))
}

// ------------------------------------------------------------------------------------------
// MAML

fn run_maml<T: Float>(case: &Case, arch: Arch, default_lr: f64) -> Result<CaseOutput, String> {
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
    let target = |name: &str, t: usize| -> Result<Target<T>, String> {
        Ok(match arch {
            Arch::Mlp => Target::Values(case.tensor_at(name, t)?),
            Arch::Conv4 => Target::Classes(case.indices_at(name, t)?),
        })
    };

    let mut produced = Produced::new();
    let mut gaps = Vec::new();
    for variant in case.variants() {
        let steps: usize = variant
            .strip_prefix("steps")
            .and_then(|k| k.parse().ok())
            .ok_or_else(|| {
                format!("unknown variant `expected/{variant}/...` (expected `steps<K>`)")
            })?;
        let mut meta = theta.zeros_like();
        let mut fo = theta.zeros_like();
        let scale = 1.0 / n_tasks as f64;
        let mut query_losses = Vec::new();
        let mut support_losses = Vec::new();
        let mut query_out = Vec::new();
        let mut support_out0 = Vec::new();
        let mut adapted: Vec<Vec<Tensor<T>>> = vec![Vec::new(); theta.len()];
        for t in 0..n_tasks {
            let sx: Tensor<T> = case.tensor_at("input/support_x", t)?;
            let qx: Tensor<T> = case.tensor_at("input/query_x", t)?;
            let sy = target("input/support_y", t)?;
            let qy = target("input/query_y", t)?;
            let second = task_meta_grad(
                model.as_ref(),
                &theta,
                &sx,
                &sy,
                &qx,
                &qy,
                steps,
                lr,
                Order::Second,
            );
            let first = task_meta_grad(
                model.as_ref(),
                &theta,
                &sx,
                &sy,
                &qx,
                &qy,
                steps,
                lr,
                Order::First,
            );
            meta = meta.axpy(&theta.with_tensors(second.grads), scale);
            fo = fo.axpy(&theta.with_tensors(first.grads), scale);
            query_losses.push(second.query_loss);
            support_losses.extend(second.support_losses.iter().copied());
            query_out.push(second.query_output);
            support_out0.push(no_grad(|| model.forward(&theta, &sx)));
            for (i, a) in second.adapted.tensors().iter().enumerate() {
                adapted[i].push(a.clone());
            }
        }
        let p = format!("expected/{variant}");
        let meta_loss = query_losses.iter().sum::<f64>() / n_tasks as f64;
        produced.insert(format!("{p}/meta_loss"), (vec![], vec![meta_loss]));
        produced.insert(format!("{p}/query_loss"), (vec![n_tasks], query_losses));
        produced.insert(
            format!("{p}/support_loss"),
            (vec![n_tasks, steps], support_losses),
        );
        put_params(&mut produced, &format!("{p}/meta_grad"), &meta);
        put_params(&mut produced, &format!("{p}/fo_grad"), &fo);
        put_stacked(&mut produced, format!("{p}/query_out"), &query_out);
        put_stacked(
            &mut produced,
            format!("{p}/support_out_step0"),
            &support_out0,
        );
        for (i, n) in theta.names().iter().enumerate() {
            put_stacked(&mut produced, format!("{p}/adapted/{n}"), &adapted[i]);
        }
        let diff = meta.axpy(&fo, -1.0).global_norm();
        gaps.push((variant.clone(), diff / meta.global_norm()));
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

/// The second-order gap of the reference tensors themselves.
fn reference_gap(file: &RawFile, variant: &str) -> Option<f64> {
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

// ------------------------------------------------------------------------------------------
// ProtoNet

fn run_protonet<T: Float>(case: &Case) -> Result<CaseOutput, String> {
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

// ------------------------------------------------------------------------------------------
// Multi-task MNIST net and one Adam step

const MTL_PARAMS: [&str; 8] = [
    "conv.weight",
    "conv.bias",
    "fc.weight",
    "fc.bias",
    "head_digit.weight",
    "head_digit.bias",
    "head_mod3.weight",
    "head_mod3.bias",
];

fn run_mtl<T: Float>(case: &Case) -> Result<CaseOutput, String> {
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

// ------------------------------------------------------------------------------------------
// Per-op value, gradient, Hessian-vector product and JVP

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

fn run_ops<T: Float>(case: &Case) -> Result<CaseOutput, String> {
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

// ------------------------------------------------------------------------------------------
// Comparison

/// Whether `tensor` (without `expected/`) is a conv-bias gradient that a following batch norm
/// makes identically zero: `.../{grad,meta_grad,fo_grad}/b<i>.conv.bias` when the case has
/// `param/b<i>.bn.weight`.
fn is_zero_conv_bias_grad(case: &Case, tensor: &str) -> bool {
    let mut parts = tensor.rsplitn(2, '/');
    let (Some(last), Some(head)) = (parts.next(), parts.next()) else {
        return false;
    };
    let kind = head.rsplit('/').next().unwrap_or("");
    if !matches!(kind, "grad" | "meta_grad" | "fo_grad") {
        return false;
    }
    let Some(block) = last.strip_suffix(".conv.bias") else {
        return false;
    };
    let digits = block.strip_prefix('b').unwrap_or("");
    !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && case.has(&format!("param/{block}.bn.weight"))
}

fn compare_case(case: &Case, produced: &Produced, dtype: VerifyDtype, report: &mut VerifyReport) {
    for (name, exp) in case.file.tensors.iter() {
        let Some(tensor) = name.strip_prefix("expected/") else {
            continue;
        };
        let zero = is_zero_conv_bias_grad(case, tensor);
        let (metric, tolerance) = match (dtype, zero) {
            (VerifyDtype::F64, false) => (Metric::Elementwise, RTOL_F64),
            (VerifyDtype::F32, false) => (Metric::Tensorwise, TOL_F32),
            (VerifyDtype::F64, true) => (Metric::AbsoluteZero, ZERO_ATOL_F64),
            (VerifyDtype::F32, true) => (Metric::AbsoluteZero, ZERO_ATOL_F32),
        };
        let mut row = CheckRow {
            case: case.name.to_string(),
            tensor: tensor.to_string(),
            metric,
            error: f64::NAN,
            max_abs_diff: f64::NAN,
            tolerance,
            passed: false,
            note: None,
        };
        let Some(e) = exp.as_f64() else {
            row.note = Some(format!("expected tensor has integer dtype {}", exp.dtype));
            report.checks.push(row);
            continue;
        };
        match produced.get(name) {
            None => row.note = Some("not computed by the verifier".into()),
            Some((shape, _)) if *shape != exp.shape => {
                row.note = Some(format!(
                    "computed shape {shape:?}, expected {:?}",
                    exp.shape
                ));
            }
            Some((_, a)) => {
                let max_abs_diff = a
                    .iter()
                    .zip(e)
                    .map(|(a, e)| (a - e).abs())
                    .fold(0.0, nan_max);
                let error = match metric {
                    Metric::Elementwise => a
                        .iter()
                        .zip(e)
                        .map(|(a, e)| (a - e).abs() / (ATOL_F64 / RTOL_F64 + e.abs()))
                        .fold(0.0, nan_max),
                    Metric::Tensorwise => {
                        let scale = e.iter().map(|x| x.abs()).fold(0.0, nan_max);
                        if scale > 0.0 {
                            max_abs_diff / scale
                        } else {
                            max_abs_diff
                        }
                    }
                    Metric::AbsoluteZero => match dtype {
                        VerifyDtype::F64 => max_abs_diff,
                        VerifyDtype::F32 => a.iter().map(|x| x.abs()).fold(0.0, nan_max),
                    },
                };
                row.error = error;
                row.max_abs_diff = max_abs_diff;
                row.passed = error <= tolerance;
            }
        }
        report.checks.push(row);
    }
    // Anything produced that the file does not expect is harmless (e.g. an extra variant
    // tensor); only the file's expectations are checked.
}

/// `max` that propagates NaN.
fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

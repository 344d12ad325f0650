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
//! * The `mtl_aggregators` case (`shared/reference-mtl`, TorchJD's aggregators) is computed in
//!   f64 in both modes and compared tensor-wise with a tolerance per method, from `1e-9` for the
//!   closed-form methods to `1e-4` for the iterative solvers ([`mtl_aggregators::TOLERANCES`]).
//!
//! The cases are driven by the files: every `expected/...` tensor in a file is checked (a tensor
//! the verifier does not produce is a failure, not a skip), and a case name the verifier does
//! not know is reported as an error. For the MAML cases the report also gives the relative
//! difference `||meta_grad - fo_grad|| / ||meta_grad||` between the second-order meta-gradient
//! and the first-order one, to show the second-order terms are real.

mod case;
mod compare;
mod maml;
mod mtl_aggregators;
mod multitask;
mod ops;
mod protonet;
mod report;

pub use mtl_aggregators::TOLERANCES as MTL_AGGREGATOR_TOLERANCES;
pub use multitask::MTL_PARAMS;
pub use report::{CaseError, CaseSummary, CheckRow, Metric, SecondOrderGap, VerifyReport};

use crate::nn::checkpoint::{read_safetensors_f64, CheckpointError, RawFile};
use crate::tensor::Float;
use case::{Arch, Case, CaseOutput};
use compare::compare_case;
use maml::{reference_gap, run_maml};
use multitask::run_mtl;
use ops::run_ops;
use protonet::run_protonet;
use std::fmt;
use std::path::{Path, PathBuf};

/// The cases this verifier knows.
pub const KNOWN_CASES: [&str; 6] = [
    "mlp_maml_sinusoid",
    "conv4_maml_omniglot",
    "protonet_episode",
    "mtl_seed_mnist",
    "ops_double_backward",
    "mtl_aggregators",
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
        let (case, raw, json) = read_case(path)?;
        report.cases.push(case.clone());
        let ctx = Case {
            name: &case,
            file: &raw,
            json: json.as_ref(),
        };
        match run_case_catching_panics(&ctx, dtype) {
            Ok(out) => record_case(&mut report, &ctx, out, dtype),
            Err(message) => report.errors.push(CaseError {
                case: case.clone(),
                message,
            }),
        }
    }
    Ok(report)
}

/// A case's name (the file stem), its tensors, and its `<case>.json` description when that file
/// exists.
fn read_case(path: &Path) -> Result<(String, RawFile, Option<serde_json::Value>), ReferenceError> {
    let case = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let raw = read_safetensors_f64(path).map_err(|source| ReferenceError::File {
        case: case.clone(),
        source: Box::new(source),
    })?;
    let json_path = path.with_extension("json");
    let json = match std::fs::read_to_string(&json_path) {
        Ok(text) => Some(
            serde_json::from_str::<serde_json::Value>(&text).map_err(|e| ReferenceError::Json {
                case: case.clone(),
                path: json_path.clone(),
                message: e.to_string(),
            })?,
        ),
        Err(_) => None,
    };
    Ok((case, raw, json))
}

/// [`run_case`] in `dtype`, with an engine panic turned into the case's error message.
fn run_case_catching_panics(ctx: &Case, dtype: VerifyDtype) -> Result<CaseOutput, String> {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match dtype {
        VerifyDtype::F64 => run_case::<f64>(ctx),
        VerifyDtype::F32 => run_case::<f32>(ctx),
    }));
    match outcome {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(format!("the engine panicked: {msg}"))
        }
    }
}

/// Adds a case's comparisons, its non-fatal errors and its second-order gaps (with the
/// reference tensors' own gap) to the report.
fn record_case(report: &mut VerifyReport, ctx: &Case, out: CaseOutput, dtype: VerifyDtype) {
    compare_case(ctx, &out.produced, dtype, report);
    for message in out.errors {
        report.errors.push(CaseError {
            case: ctx.name.to_string(),
            message,
        });
    }
    for (variant, computed) in out.gaps {
        let reference = reference_gap(ctx.file, &variant).unwrap_or(f64::NAN);
        report.second_order.push(SecondOrderGap {
            case: ctx.name.to_string(),
            variant,
            computed,
            reference,
        });
    }
}

/// The produced tensors of one case, by its name (see [`KNOWN_CASES`]).
fn run_case<T: Float>(case: &Case) -> Result<CaseOutput, String> {
    match case.name {
        "mlp_maml_sinusoid" => run_maml::<T>(case, Arch::Mlp, 0.01),
        "conv4_maml_omniglot" => run_maml::<T>(case, Arch::Conv4, 0.4),
        "protonet_episode" => run_protonet::<T>(case),
        "mtl_seed_mnist" => run_mtl::<T>(case),
        "ops_double_backward" => run_ops::<T>(case),
        "mtl_aggregators" => mtl_aggregators::run_mtl_aggregators(case),
        other => Err(format!(
            "unknown reference case `{other}`: this verifier knows {KNOWN_CASES:?}; its {} expected tensors were not checked",
            case.file.tensors.keys().filter(|k| k.starts_with("expected/")).count()
        )),
    }
}

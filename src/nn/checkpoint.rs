//! Checkpoints: named parameter lists in the safetensors format.
//!
//! A checkpoint is a standard `.safetensors` file (readable by Python's `safetensors`, e.g.
//! `safetensors.torch.load_file`): one little-endian `F32` or `F64` tensor per parameter, under
//! its `Params` name, plus a string-to-string metadata map (architecture, config TOML, step...).
//! The parameter order is kept in the metadata entry [`ORDER_KEY`] (a JSON list of names), since
//! safetensors itself stores tensors sorted by name.
//!
//! Files are written atomically: to a temporary file in the same directory, flushed to disk,
//! then renamed over the destination, so a crash never leaves a half-written checkpoint under
//! the final name.
//!
//! Every failure is a [`CheckpointError`] naming the file, what was expected and what was found.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::Params;
use crate::data::idx::array;
use crate::tensor::{Float, Tensor};
use safetensors::{Dtype, SafeTensors};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The metadata key holding the parameter order (a JSON list of names).
pub const ORDER_KEY: &str = "metalearn.order";

/// The metadata key holding the element type the parameters were saved in (`F32` / `F64`).
pub const DTYPE_KEY: &str = "metalearn.dtype";

/// Why a checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file does not exist.
    #[error("checkpoint {}: file not found (expected a .safetensors file)", path.display())]
    NotFound {
        /// The path that was opened.
        path: PathBuf,
    },
    /// Reading or writing failed.
    #[error("checkpoint {}: I/O error while {action}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid safetensors file (truncated, bad header, bad offsets...).
    #[error("checkpoint {}: corrupt or truncated safetensors file ({size} bytes): {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// What is wrong.
        reason: String,
    },
    /// A tensor has an element type that cannot be read here.
    #[error("checkpoint {}: tensor `{name}` has dtype {found}, expected {expected}", path.display())]
    WrongDtype {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// The accepted dtypes.
        expected: String,
        /// The dtype in the file.
        found: String,
    },
    /// A tensor of the expected layout is absent.
    #[error(
        "checkpoint {}: tensor `{name}` (shape {expected:?}) is missing; the file holds {found} \
         (a checkpoint from another architecture?)",
        path.display()
    )]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The missing tensor.
        name: String,
        /// Its expected shape.
        expected: Vec<usize>,
        /// A summary of the names in the file.
        found: String,
    },
    /// A tensor has another shape than the expected layout.
    #[error(
        "checkpoint {}: tensor `{name}` has shape {found:?}, expected {expected:?} \
         (a checkpoint from another architecture?)",
        path.display()
    )]
    ShapeMismatch {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// The expected shape.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// The file holds tensors the expected layout does not have.
    #[error(
        "checkpoint {}: unexpected tensors {names:?} not in the expected layout of {expected} tensors \
         (a checkpoint from another architecture?)",
        path.display()
    )]
    UnexpectedTensors {
        /// The file.
        path: PathBuf,
        /// The extra names (at most 8 shown).
        names: Vec<String>,
        /// How many tensors the layout has.
        expected: usize,
    },
    /// A tensor holds a NaN or an infinity.
    #[error(
        "checkpoint {}: tensor `{name}` holds a non-finite value ({value}) at flat index \
         {index}: expected finite numbers (a diverged run?)",
        path.display()
    )]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// The position of the first non-finite value, in storage order.
        index: usize,
        /// The value (NaN, inf or -inf).
        value: f64,
    },
    /// The metadata is inconsistent with the tensors (e.g. the stored order names a tensor
    /// that is absent).
    #[error("checkpoint {}: invalid metadata: {reason}", path.display())]
    Metadata {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The tensors could not be serialized (e.g. a duplicate name).
    #[error("checkpoint {}: cannot serialize: {reason}", path.display())]
    Serialize {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// A loaded checkpoint: the parameters and the metadata (without the internal keys
/// [`ORDER_KEY`] and [`DTYPE_KEY`]).
#[derive(Clone, Debug)]
pub struct Checkpoint<T: Float = f32> {
    /// The parameters, in saved order.
    pub params: Params<T>,
    /// The user metadata.
    pub metadata: BTreeMap<String, String>,
}

/// The values of a tensor read by [`read_safetensors_f64`].
#[derive(Clone, Debug, PartialEq)]
pub enum RawData {
    /// Real values (`F64`, `F32`, `F16`, `BF16` converted exactly to `f64`).
    F64(Vec<f64>),
    /// Integer values (`I64`, `I32`, `I16`, `I8`, `U8`...), e.g. class labels or indices.
    I64(Vec<i64>),
}

/// A tensor read by [`read_safetensors_f64`]: its shape, dtype name and values.
#[derive(Clone, Debug, PartialEq)]
pub struct RawTensor {
    /// The shape (empty for a 0-d scalar).
    pub shape: Vec<usize>,
    /// The dtype as written in the file (`F64`, `I64`...).
    pub dtype: String,
    /// The values, row-major.
    pub data: RawData,
}

impl RawTensor {
    /// The real values, or `None` for an integer tensor.
    pub fn as_f64(&self) -> Option<&[f64]> {
        match &self.data {
            RawData::F64(v) => Some(v),
            RawData::I64(_) => None,
        }
    }

    /// The integer values, or `None` for a real tensor.
    pub fn as_i64(&self) -> Option<&[i64]> {
        match &self.data {
            RawData::I64(v) => Some(v),
            RawData::F64(_) => None,
        }
    }

    /// The number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Tensors in a safetensors file, as `f64` or `i64` values, and the file's metadata.
#[derive(Clone, Debug, Default)]
pub struct RawFile {
    /// Tensor name -> tensor.
    pub tensors: BTreeMap<String, RawTensor>,
    /// The `__metadata__` map (empty when absent).
    pub metadata: BTreeMap<String, String>,
}

struct Bytes<'a> {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Cow<'a, [u8]>,
}

impl safetensors::View for Bytes<'_> {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn dtype_of<T: Float>() -> Dtype {
    match T::DTYPE_NAME {
        "F64" => Dtype::F64,
        "F32" => Dtype::F32,
        other => panic!("checkpoint: unsupported element type {other}"),
    }
}

fn to_le_bytes<T: Float>(t: &Tensor<T>) -> Vec<u8> {
    let mut out = Vec::with_capacity(t.numel() * std::mem::size_of::<T>());
    match T::DTYPE_NAME {
        "F64" => t
            .data()
            .iter()
            .for_each(|x| out.extend_from_slice(&x.as_f64().to_le_bytes())),
        _ => t
            .data()
            .iter()
            .for_each(|x| out.extend_from_slice(&(x.as_f64() as f32).to_le_bytes())),
    }
    out
}

/// Writes `bytes` to `path` atomically: a temporary file next to it, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let io = |action: &'static str, source| CheckpointError::Io {
        path: path.to_path_buf(),
        action,
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| CheckpointError::Serialize {
            path: path.to_path_buf(),
            reason: "the path has no file name".into(),
        })?
        .to_string_lossy()
        .into_owned();
    let tmp = dir.join(format!(
        ".{file_name}.tmp.{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(|e| io("creating a temporary file", e))?;
        f.write_all(bytes).map_err(|e| io("writing", e))?;
        f.sync_all().map_err(|e| io("syncing to disk", e))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| io("renaming the temporary file", e))?;
        // Make the rename itself durable where the platform allows it.
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Serializes `params` and `metadata` to safetensors bytes (in `T`'s dtype).
pub fn to_bytes<T: Float>(
    params: &Params<T>,
    metadata: &BTreeMap<String, String>,
    path_for_errors: &Path,
) -> Result<Vec<u8>, CheckpointError> {
    let err = |reason: String| CheckpointError::Serialize {
        path: path_for_errors.to_path_buf(),
        reason,
    };
    let mut seen = std::collections::HashSet::new();
    for n in params.names() {
        if !seen.insert(n.as_str()) {
            return Err(err(format!("duplicate tensor name `{n}`")));
        }
        if n == "__metadata__" {
            return Err(err("`__metadata__` is reserved".into()));
        }
    }
    let mut meta: std::collections::HashMap<String, String> =
        metadata.clone().into_iter().collect();
    meta.insert(
        ORDER_KEY.to_string(),
        serde_json::to_string(params.names()).map_err(|e| err(e.to_string()))?,
    );
    meta.insert(DTYPE_KEY.to_string(), T::DTYPE_NAME.to_string());
    let views: Vec<(String, Bytes)> = params
        .iter()
        .map(|(n, t)| {
            (
                n.to_string(),
                Bytes {
                    dtype: dtype_of::<T>(),
                    shape: t.shape().to_vec(),
                    data: Cow::Owned(to_le_bytes(t)),
                },
            )
        })
        .collect();
    safetensors::serialize(views, &Some(meta)).map_err(|e| err(format!("{e:?}")))
}

/// Saves `params` (in `T`'s dtype, `F32` or `F64`) and `metadata` to `path` atomically.
///
/// The keys [`ORDER_KEY`] and [`DTYPE_KEY`] are added to the metadata (and override entries of
/// the same name).
pub fn save<T: Float>(
    path: impl AsRef<Path>,
    params: &Params<T>,
    metadata: &BTreeMap<String, String>,
) -> Result<(), CheckpointError> {
    let path = path.as_ref();
    let bytes = to_bytes(params, metadata, path)?;
    write_atomic(path, &bytes)
}

fn read_bytes(path: &Path) -> Result<Vec<u8>, CheckpointError> {
    std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            CheckpointError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            CheckpointError::Io {
                path: path.to_path_buf(),
                action: "reading",
                source: e,
            }
        }
    })
}

fn describe_st_error(e: &safetensors::SafeTensorError, bytes: &[u8]) -> String {
    use safetensors::SafeTensorError as E;
    let header_len = bytes.get(..8).map(|b| u64::from_le_bytes(array(b)));
    match e {
        E::HeaderTooSmall => "the file is shorter than the 8-byte header length".into(),
        E::InvalidHeaderLength => format!(
            "the header length {} runs past the end of the file: truncated?",
            header_len.unwrap_or(0)
        ),
        E::MetadataIncompleteBuffer => {
            "the header's tensor sizes do not match the data in the file: truncated or padded?"
                .into()
        }
        E::HeaderTooLarge => format!("the header length {} is too large", header_len.unwrap_or(0)),
        E::InvalidHeader | E::InvalidHeaderStart | E::InvalidHeaderDeserialization => {
            "the JSON header cannot be parsed".into()
        }
        other => format!("{other:?}"),
    }
}

fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<SafeTensors<'a>, CheckpointError> {
    SafeTensors::deserialize(bytes).map_err(|e| CheckpointError::Corrupt {
        path: path.to_path_buf(),
        size: bytes.len() as u64,
        reason: describe_st_error(&e, bytes),
    })
}

fn file_metadata(bytes: &[u8]) -> BTreeMap<String, String> {
    SafeTensors::read_metadata(bytes)
        .ok()
        .and_then(|(_, m)| m.metadata().clone())
        .map(|m| m.into_iter().collect())
        .unwrap_or_default()
}

/// The little-endian `$ty` values packed in `$data`, each converted by `$conv`.
macro_rules! le_values {
    ($data:expr, $ty:ty, $conv:expr) => {
        $data
            .chunks_exact(std::mem::size_of::<$ty>())
            .map(|b| ($conv)(<$ty>::from_le_bytes(array(b))))
            .collect()
    };
}

fn decode_real(
    path: &Path,
    name: &str,
    dtype: Dtype,
    data: &[u8],
) -> Result<Vec<f64>, CheckpointError> {
    let v = match dtype {
        Dtype::F64 => le_values!(data, f64, |v| v),
        Dtype::F32 => le_values!(data, f32, f64::from),
        other => {
            return Err(CheckpointError::WrongDtype {
                path: path.to_path_buf(),
                name: name.to_string(),
                expected: "F32 or F64".into(),
                found: format!("{other:?}"),
            })
        }
    };
    Ok(v)
}

fn decode_int(dtype: Dtype, data: &[u8]) -> Option<Vec<i64>> {
    let v = match dtype {
        Dtype::I64 => le_values!(data, i64, |v| v),
        Dtype::I32 => le_values!(data, i32, i64::from),
        Dtype::I16 => le_values!(data, i16, i64::from),
        Dtype::I8 => data.iter().map(|&b| b as i8 as i64).collect(),
        Dtype::U8 | Dtype::BOOL => data.iter().map(|&b| b as i64).collect(),
        Dtype::U16 => le_values!(data, u16, i64::from),
        Dtype::U32 => le_values!(data, u32, i64::from),
        _ => return None,
    };
    Some(v)
}

fn half_to_f64(bits: u16) -> f64 {
    let sign = if bits >> 15 == 1 { -1.0 } else { 1.0 };
    let exp = ((bits >> 10) & 0x1f) as i32;
    let frac = (bits & 0x3ff) as f64;
    match exp {
        0 => sign * frac * 2f64.powi(-24),
        31 => {
            if frac == 0.0 {
                sign * f64::INFINITY
            } else {
                f64::NAN
            }
        }
        e => sign * (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    }
}

/// Reads every tensor of a safetensors file: real tensors (`F64`, `F32`, `F16`, `BF16`) as
/// `f64`, integer tensors (`I64` labels and indices, and the other integer types) as `i64`,
/// plus the metadata. This is what the reference verifier uses.
pub fn read_safetensors_f64(path: impl AsRef<Path>) -> Result<RawFile, CheckpointError> {
    let path = path.as_ref();
    let bytes = read_bytes(path)?;
    let st = parse(path, &bytes)?;
    let mut tensors = BTreeMap::new();
    for (name, view) in st.iter() {
        let dtype = view.dtype();
        let data = match dtype {
            Dtype::F64 | Dtype::F32 => RawData::F64(decode_real(path, name, dtype, view.data())?),
            Dtype::F16 => RawData::F64(le_values!(view.data(), u16, half_to_f64)),
            Dtype::BF16 => RawData::F64(le_values!(view.data(), u16, |h: u16| {
                f32::from_bits((h as u32) << 16) as f64
            })),
            other => match decode_int(other, view.data()) {
                Some(v) => RawData::I64(v),
                None => {
                    return Err(CheckpointError::WrongDtype {
                        path: path.to_path_buf(),
                        name: name.to_string(),
                        expected: "a real (F64/F32/F16/BF16) or integer dtype".into(),
                        found: format!("{other:?}"),
                    })
                }
            },
        };
        tensors.insert(
            name.to_string(),
            RawTensor {
                shape: view.shape().to_vec(),
                dtype: format!("{dtype:?}"),
                data,
            },
        );
    }
    Ok(RawFile {
        tensors,
        metadata: file_metadata(&bytes),
    })
}

/// Reads only the metadata map of a safetensors file (including [`ORDER_KEY`] if present).
pub fn read_metadata(path: impl AsRef<Path>) -> Result<BTreeMap<String, String>, CheckpointError> {
    let path = path.as_ref();
    let bytes = read_bytes(path)?;
    parse(path, &bytes)?;
    Ok(file_metadata(&bytes))
}

/// Loads a checkpoint. Tensors stored as `F32` or `F64` are converted to `T`; any other dtype is
/// a [`CheckpointError::WrongDtype`]. The order is the saved one ([`ORDER_KEY`]), or sorted by
/// name for files written elsewhere.
pub fn load<T: Float>(path: impl AsRef<Path>) -> Result<Checkpoint<T>, CheckpointError> {
    let path = path.as_ref();
    from_bytes(&read_bytes(path)?, path)
}

/// [`load`] from the bytes of a safetensors file held in memory; `path` names it in errors
/// (this is what the fuzz targets call).
pub fn from_bytes<T: Float>(bytes: &[u8], path: &Path) -> Result<Checkpoint<T>, CheckpointError> {
    let st = parse(path, bytes)?;
    let mut metadata = file_metadata(bytes);
    let mut names: Vec<String> = st.names().into_iter().cloned().collect();
    names.sort();
    if let Some(order) = metadata.remove(ORDER_KEY) {
        let listed: Vec<String> =
            serde_json::from_str(&order).map_err(|e| CheckpointError::Metadata {
                path: path.to_path_buf(),
                reason: format!("`{ORDER_KEY}` is not a JSON list of names: {e}"),
            })?;
        let mut a = listed.clone();
        a.sort();
        if a != names {
            return Err(CheckpointError::Metadata {
                path: path.to_path_buf(),
                reason: format!(
                    "`{ORDER_KEY}` lists {} names that do not match the {} tensors in the file",
                    listed.len(),
                    names.len()
                ),
            });
        }
        names = listed;
    }
    metadata.remove(DTYPE_KEY);
    let mut params = Params::new();
    for n in names {
        let view = st.tensor(&n).map_err(|e| CheckpointError::Corrupt {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
            reason: format!("tensor `{n}`: {e:?}"),
        })?;
        let values = decode_real(path, &n, view.dtype(), view.data())?;
        if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(CheckpointError::NonFinite {
                path: path.to_path_buf(),
                name: n,
                index,
                value,
            });
        }
        params.push(n, Tensor::from_f64(&values, view.shape()));
    }
    Ok(Checkpoint { params, metadata })
}

fn summarize_names(names: &[String]) -> String {
    if names.is_empty() {
        return "no tensors".into();
    }
    let shown: Vec<&str> = names.iter().take(6).map(|s| s.as_str()).collect();
    let more = if names.len() > 6 {
        format!(", ... ({} in all)", names.len())
    } else {
        String::new()
    };
    format!("[{}{}]", shown.join(", "), more)
}

/// Loads a checkpoint into an expected layout: every name of `expected` must be present with the
/// same shape, and the file must hold no other tensors. Returns the parameters in `expected`'s
/// order, requiring a gradient where `expected`'s tensors do, and the metadata.
///
/// A checkpoint of another architecture gives [`CheckpointError::MissingTensor`],
/// [`CheckpointError::ShapeMismatch`] or [`CheckpointError::UnexpectedTensors`], naming the
/// tensor and both shapes.
pub fn load_into<T: Float>(
    path: impl AsRef<Path>,
    expected: &Params<T>,
) -> Result<Checkpoint<T>, CheckpointError> {
    let path = path.as_ref();
    let ck = load::<T>(path)?;
    let mut out = Vec::with_capacity(expected.len());
    for (n, e) in expected.iter() {
        let t = ck
            .params
            .get(n)
            .ok_or_else(|| CheckpointError::MissingTensor {
                path: path.to_path_buf(),
                name: n.to_string(),
                expected: e.shape().to_vec(),
                found: summarize_names(ck.params.names()),
            })?;
        if t.shape() != e.shape() {
            return Err(CheckpointError::ShapeMismatch {
                path: path.to_path_buf(),
                name: n.to_string(),
                expected: e.shape().to_vec(),
                found: t.shape().to_vec(),
            });
        }
        out.push(if e.requires_grad() {
            t.detach().requires_grad_()
        } else {
            t.clone()
        });
    }
    let extra: Vec<String> = ck
        .params
        .names()
        .iter()
        .filter(|n| expected.get(n).is_none())
        .cloned()
        .collect();
    if !extra.is_empty() {
        return Err(CheckpointError::UnexpectedTensors {
            path: path.to_path_buf(),
            names: extra.into_iter().take(8).collect(),
            expected: expected.len(),
        });
    }
    Ok(Checkpoint {
        params: expected.with_tensors(out),
        metadata: ck.metadata,
    })
}

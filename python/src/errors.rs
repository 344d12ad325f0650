//! Rust errors as Python exceptions, with the message the command line prints.
//!
//! The error's chain of causes decides the type: an I/O error anywhere in it (or a missing
//! checkpoint or dataset file) is an `OSError` (`FileNotFoundError` / `PermissionError` where
//! the kind says so); a diverged run is a `RuntimeError`; everything else (a bad config value,
//! a corrupt file, arrays of the wrong shape) is a `ValueError`.

use metalearn::fewshot::TrainError;
use metalearn::nn::checkpoint::CheckpointError;
use pyo3::exceptions::{
    PyFileNotFoundError, PyOSError, PyPermissionError, PyRuntimeError, PyValueError,
};
use pyo3::PyErr;
use std::error::Error;

/// The message of `e` and its causes, each cause once (as the `metalearn` binary prints it).
pub fn message(e: &(dyn Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let t = c.to_string();
        if !text.contains(&t) {
            text = format!("{text}: {t}");
        }
        cause = c.source();
    }
    text
}

/// What kind of Python exception an error becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    NotFound,
    Permission,
    Os,
    Runtime,
    Value,
}

fn io_kind(e: &std::io::Error) -> Kind {
    match e.kind() {
        std::io::ErrorKind::NotFound => Kind::NotFound,
        std::io::ErrorKind::PermissionDenied => Kind::Permission,
        _ => Kind::Os,
    }
}

/// The kind of one error of the chain, if it decides it.
fn kind_of(e: &(dyn Error + 'static)) -> Option<Kind> {
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        return Some(io_kind(io));
    }
    if let Some(CheckpointError::NotFound { .. }) = e.downcast_ref::<CheckpointError>() {
        return Some(Kind::NotFound);
    }
    if let Some(metalearn::data::DataError::NotFound { file, .. }) =
        e.downcast_ref::<metalearn::data::DataError>()
    {
        if !std::path::Path::new(file).exists() {
            return Some(Kind::NotFound);
        }
    }
    match e.downcast_ref::<TrainError>() {
        Some(TrainError::Diverged { .. }) => Some(Kind::Runtime),
        Some(TrainError::Input { path, .. }) if path.is_absolute() && !path.exists() => {
            Some(Kind::NotFound)
        }
        _ => None,
    }
}

/// The error a `#[error(transparent)]` variant wraps (its `source()` skips it, so the chain
/// alone would miss a missing checkpoint or a locked folder).
fn transparent_inner<'a>(e: &'a (dyn Error + 'static)) -> Option<&'a (dyn Error + 'static)> {
    use metalearn::mtl::MtlError;
    use metalearn::transfer::TransferError;
    if let Some(t) = e.downcast_ref::<TrainError>() {
        return match t {
            TrainError::Lock(x) => Some(x),
            TrainError::Config(x) => Some(x),
            TrainError::Data(x) => Some(x),
            TrainError::Checkpoint(x) => Some(x),
            TrainError::Algorithm(x) => Some(x),
            _ => None,
        };
    }
    if let Some(m) = e.downcast_ref::<MtlError>() {
        return match m {
            MtlError::Lock(x) => Some(x),
            MtlError::Config(x) => Some(x),
            _ => None,
        };
    }
    match e.downcast_ref::<TransferError>() {
        Some(TransferError::Lock(x)) => Some(x),
        Some(TransferError::Config(x)) => Some(x),
        Some(TransferError::Checkpoint(x)) => Some(x),
        _ => None,
    }
}

/// The kind of the first error of the chain (transparent wrappers included) that decides it.
fn classify(e: &(dyn Error + 'static)) -> Option<Kind> {
    if e.downcast_ref::<metalearn::run::RunLockError>().is_some() {
        return Some(Kind::Os);
    }
    kind_of(e)
        .or_else(|| transparent_inner(e).and_then(classify))
        .or_else(|| e.source().and_then(classify))
}

/// The Python exception for a Rust error.
pub fn to_py(e: &(dyn Error + 'static)) -> PyErr {
    let msg = message(e);
    match classify(e).unwrap_or(Kind::Value) {
        Kind::NotFound => PyFileNotFoundError::new_err(msg),
        Kind::Permission => PyPermissionError::new_err(msg),
        Kind::Os => PyOSError::new_err(msg),
        Kind::Runtime => PyRuntimeError::new_err(msg),
        Kind::Value => PyValueError::new_err(msg),
    }
}

/// `to_py` for any owned error.
pub fn py<E: Error + 'static>(e: E) -> PyErr {
    to_py(&e)
}

/// A panic's payload as a `RuntimeError` (the interpreter keeps running).
pub fn panic_to_py(payload: Box<dyn std::any::Any + Send>) -> PyErr {
    let text = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into());
    PyRuntimeError::new_err(format!("metalearn: internal error (Rust panic): {text}"))
}

/// Runs `f`, turning a panic into a `RuntimeError`.
pub fn catch<T>(f: impl FnOnce() -> pyo3::PyResult<T>) -> pyo3::PyResult<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => Err(panic_to_py(p)),
    }
}

//! `RunConfig`: a few-shot run config (what `metalearn train --config FILE` reads), from a
//! TOML file or a dict, validated with the same messages as the command line.

use crate::errors;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use std::path::{Path, PathBuf};

/// A validated few-shot run config.
#[pyclass(module = "metalearn._native", frozen, from_py_object)]
#[derive(Clone)]
pub struct RunConfig {
    pub inner: metalearn::fewshot::RunConfig,
}

/// JSON text (a dict as `json.dumps` writes it) as TOML text, for the config parsers (so a
/// dict gets the same checks and messages as a file).
pub fn json_to_toml(json: &str, what: &str) -> PyResult<String> {
    let v: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| PyValueError::new_err(format!("{what}: not a JSON-like dict: {e}")))?;
    let t = toml::Value::try_from(v).map_err(|e| {
        PyValueError::new_err(format!(
            "{what}: cannot be written as TOML ({e}); use str, int, float, bool, lists and dicts, no None"
        ))
    })?;
    toml::to_string(&t).map_err(|e| PyValueError::new_err(format!("{what}: {e}")))
}

impl RunConfig {
    /// Parses TOML text (`origin` names it in errors).
    pub fn parse(text: &str, origin: &Path) -> PyResult<Self> {
        let inner =
            metalearn::fewshot::RunConfig::from_toml_str(text, origin).map_err(errors::py)?;
        Ok(RunConfig { inner })
    }
}

#[pymethods]
impl RunConfig {
    /// Reads and validates a TOML run config.
    #[staticmethod]
    fn from_toml(path: PathBuf) -> PyResult<Self> {
        let inner = metalearn::fewshot::RunConfig::load(&path).map_err(errors::py)?;
        Ok(RunConfig { inner })
    }

    /// Parses TOML text.
    #[staticmethod]
    fn from_toml_str(text: &str) -> PyResult<Self> {
        Self::parse(text, Path::new("<string>"))
    }

    /// Builds a config from JSON text of a dict (the Python wrapper's `from_dict`).
    #[staticmethod]
    fn from_json(json: &str) -> PyResult<Self> {
        let text = json_to_toml(json, "config dict")?;
        Self::parse(&text, Path::new("<dict>"))
    }

    /// The config as JSON text (every key, defaults filled in).
    fn to_json(&self) -> String {
        self.inner.to_json()
    }

    /// The config as TOML text.
    fn to_toml(&self) -> String {
        self.inner.to_toml()
    }

    /// A copy with dotted keys set (`{"train.iterations": 10}`), given as JSON text of a
    /// dict; validated again.
    fn with_values(&self, json: &str) -> PyResult<Self> {
        let values: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json)
            .map_err(|e| PyValueError::new_err(format!("values: not a dict: {e}")))?;
        let mut doc: toml::Value = toml::from_str(&self.inner.to_toml())
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        for (k, v) in values {
            let v = toml::Value::try_from(v)
                .map_err(|e| PyValueError::new_err(format!("`{k}`: {e}")))?;
            metalearn::run::dotted::set_dotted(&mut doc, &k, v).map_err(errors::py)?;
        }
        let text = toml::to_string(&doc).map_err(|e| PyValueError::new_err(e.to_string()))?;
        Self::parse(&text, Path::new("<with_values>"))
    }

    /// The run in words (`protonet on omniglot 5-way 1-shot (conv4)`).
    fn describe(&self) -> String {
        self.inner.describe()
    }

    /// The run folder (`train.out_dir`).
    #[getter]
    fn out_dir(&self) -> PathBuf {
        self.inner.train.out_dir.clone()
    }

    fn __repr__(&self) -> String {
        format!("RunConfig({})", self.inner.describe())
    }
}

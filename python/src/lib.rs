//! `metalearn._native`: the PyO3 extension module behind the Python package `metalearn`
//! (python/metalearn/__init__.py wraps it with docstrings, argument checks and type stubs).
//!
//! - [`errors`]: Rust errors as Python exceptions (`OSError` for files, `ValueError` for bad
//!   input, `RuntimeError` for a diverged run or a panic),
//! - [`config`]: `RunConfig` (from TOML files or dicts),
//! - [`learner`]: `load(checkpoint)`, `Learner.adapt`, `Predictor.predict` on numpy arrays,
//! - [`runs`]: `train`, `evaluate`, the multi-task and transfer commands, with the GIL released
//!   and Ctrl-C turned into a clean stop,
//! - [`data`]: datasets (Omniglot, image folders, CSV) and their episodes as numpy arrays.

mod config;
mod data;
mod errors;
mod learner;
mod runs;

use pyo3::prelude::*;

/// The extension module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<config::RunConfig>()?;
    m.add_class::<learner::Learner>()?;
    m.add_class::<learner::Predictor>()?;
    m.add_class::<data::Dataset>()?;
    m.add_function(wrap_pyfunction!(learner::load, m)?)?;
    m.add_function(wrap_pyfunction!(runs::train, m)?)?;
    m.add_function(wrap_pyfunction!(runs::evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(runs::mtl_train, m)?)?;
    m.add_function(wrap_pyfunction!(runs::transfer_run, m)?)?;
    m.add_function(wrap_pyfunction!(data::omniglot, m)?)?;
    m.add_function(wrap_pyfunction!(data::image_folder, m)?)?;
    m.add_function(wrap_pyfunction!(data::csv, m)?)?;
    m.add_function(wrap_pyfunction!(data::read_images, m)?)?;
    Ok(())
}

//! `load(checkpoint)` -> `Learner`; `Learner.adapt(support_x, support_y)` -> `Predictor`;
//! `Predictor.predict / predict_proba / outputs(query_x)`: what `metalearn adapt` does, on
//! numpy arrays. The GIL is released while the engine adapts and predicts.

use crate::config::RunConfig;
use crate::errors;
use metalearn::fewshot::arrays::{argmax_rows, softmax_rows, ArraySupport, SupportLabels};
use metalearn::fewshot::eval::LoadedRun;
use numpy::ndarray::{Array1, Array2};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;

/// A trained few-shot learner restored from a checkpoint of `metalearn train`.
#[pyclass(module = "metalearn._native", frozen)]
pub struct Learner {
    run: Arc<LoadedRun>,
    checkpoint: PathBuf,
}

/// A learner adapted to a support set: predicts queries.
#[pyclass(module = "metalearn._native", frozen)]
pub struct Predictor {
    run: Arc<LoadedRun>,
    support: ArraySupport,
}

/// The values of a float32 array (borrowed when C-contiguous) and its shape.
pub fn f32_values<'a>(a: &'a PyReadonlyArrayDyn<'_, f32>) -> (Cow<'a, [f32]>, Vec<usize>) {
    let shape = a.shape().to_vec();
    match a.as_slice() {
        Ok(s) => (Cow::Borrowed(s), shape),
        Err(_) => (Cow::Owned(a.as_array().iter().copied().collect()), shape),
    }
}

/// Loads a checkpoint (optionally with a run config overriding the stored one).
#[pyfunction]
#[pyo3(signature = (checkpoint, config=None))]
pub fn load(py: Python<'_>, checkpoint: PathBuf, config: Option<RunConfig>) -> PyResult<Learner> {
    let path = checkpoint.clone();
    let run = py.detach(move || {
        errors::catch(|| {
            metalearn::fewshot::load_learner(&path, config.as_ref().map(|c| &c.inner))
                .map_err(errors::py)
        })
    })?;
    Ok(Learner {
        run: Arc::new(run),
        checkpoint,
    })
}

impl Learner {
    fn adapt_with(
        &self,
        py: Python<'_>,
        x: &PyReadonlyArrayDyn<'_, f32>,
        labels: SupportLabels<'_>,
    ) -> PyResult<Predictor> {
        let (values, shape) = f32_values(x);
        let run = &self.run;
        let support = py.detach(|| {
            errors::catch(|| ArraySupport::new(run, &values, &shape, labels).map_err(errors::py))
        })?;
        Ok(Predictor {
            run: Arc::clone(&self.run),
            support,
        })
    }
}

#[pymethods]
impl Learner {
    /// Adapts to a labelled support set with integer class labels.
    fn adapt_classes(
        &self,
        py: Python<'_>,
        support_x: PyReadonlyArrayDyn<'_, f32>,
        support_y: PyReadonlyArrayDyn<'_, i64>,
    ) -> PyResult<Predictor> {
        let y = support_y.as_array().iter().copied().collect::<Vec<i64>>();
        self.adapt_with(py, &support_x, SupportLabels::Classes(&y))
    }

    /// Adapts to a support set with real-valued targets (regression checkpoints).
    fn adapt_values(
        &self,
        py: Python<'_>,
        support_x: PyReadonlyArrayDyn<'_, f32>,
        support_y: PyReadonlyArrayDyn<'_, f32>,
    ) -> PyResult<Predictor> {
        let y = support_y.as_array().iter().copied().collect::<Vec<f32>>();
        self.adapt_with(py, &support_x, SupportLabels::Values(&y))
    }

    /// Whether the checkpoint is a regression model.
    #[getter]
    fn is_regression(&self) -> bool {
        self.run.config.data.is_regression()
    }

    /// The method (`protonet`, `maml`, ...).
    #[getter]
    fn algorithm(&self) -> String {
        self.run.config.algorithm.name().to_string()
    }

    /// The width of the classifier head (methods with one), else None.
    #[getter]
    fn head(&self) -> Option<usize> {
        self.run.head
    }

    /// The run config in effect.
    #[getter]
    fn config(&self) -> RunConfig {
        RunConfig {
            inner: self.run.config.clone(),
        }
    }

    /// The checkpoint file.
    #[getter]
    fn checkpoint(&self) -> PathBuf {
        self.checkpoint.clone()
    }

    /// The shape of one example the backbone takes: `(C, H, W)` for images, `(D,)` for vectors.
    #[getter]
    fn input_shape(&self) -> Vec<usize> {
        match self.run.config.backbone.image_input() {
            Some((c, s)) => vec![c, s, s],
            None => match &self.run.config.backbone {
                metalearn::algorithms::BackboneConfig::Mlp(m) => {
                    m.sizes.first().copied().into_iter().collect()
                }
                _ => Vec::new(),
            },
        }
    }

    /// `(color, size)` of the images the checkpoint was trained on (`color` is `gray`, `rgb`
    /// or `ink`), when it takes images read from files.
    #[getter]
    fn image_input(&self) -> Option<(String, usize)> {
        match self.run.input {
            Some(metalearn::fewshot::InputPipeline::Images { color, size }) => {
                Some((crate::data::color_name(color).to_string(), size))
            }
            _ => None,
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "Learner({}, checkpoint={})",
            self.run.config.describe(),
            self.checkpoint.display()
        )
    }
}

impl Predictor {
    fn outputs_of(
        &self,
        py: Python<'_>,
        query_x: &PyReadonlyArrayDyn<'_, f32>,
    ) -> PyResult<metalearn::Tensor<f32>> {
        let (values, shape) = f32_values(query_x);
        let (run, support) = (&self.run, &self.support);
        py.detach(|| errors::catch(|| support.outputs(run, &values, &shape).map_err(errors::py)))
    }
}

#[pymethods]
impl Predictor {
    /// The class labels in probability order (ascending), as given in `support_y`.
    #[getter]
    fn classes<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        PyArray1::from_vec(py, self.support.classes().to_vec())
    }

    /// Support examples given.
    #[getter]
    fn support_size(&self) -> usize {
        self.support.len()
    }

    /// Raw outputs: logits `(Nq, n_classes)`, or values `(Nq, 1)` for regression.
    fn outputs<'py>(
        &self,
        py: Python<'py>,
        query_x: PyReadonlyArrayDyn<'_, f32>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let out = self.outputs_of(py, &query_x)?;
        let (r, c) = (out.shape()[0], out.shape()[1]);
        let a = Array2::from_shape_vec((r, c), out.to_vec())
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(a.into_pyarray(py))
    }

    /// Class probabilities `(Nq, n_classes)` (softmax of the outputs, float64).
    fn predict_proba<'py>(
        &self,
        py: Python<'py>,
        query_x: PyReadonlyArrayDyn<'_, f32>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        if self.support.classes().is_empty() {
            return Err(PyValueError::new_err(
                "predict_proba: this checkpoint is a regression model (use predict)",
            ));
        }
        let out = self.outputs_of(py, &query_x)?;
        let (r, c) = (out.shape()[0], out.shape()[1]);
        let a = Array2::from_shape_vec((r, c), softmax_rows(&out))
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(a.into_pyarray(py))
    }

    /// Predicted class labels `(Nq,)` (int64, from `classes`); regression: values `(Nq,)`.
    fn predict<'py>(
        &self,
        py: Python<'py>,
        query_x: PyReadonlyArrayDyn<'_, f32>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let out = self.outputs_of(py, &query_x)?;
        let classes = self.support.classes();
        if classes.is_empty() {
            return Ok(Array1::from_vec(out.to_vec()).into_pyarray(py).into_any());
        }
        let best = argmax_rows(&softmax_rows(&out), classes.len());
        let labels: Vec<i64> = best.into_iter().map(|k| classes[k]).collect();
        Ok(PyArray1::from_vec(py, labels).into_any())
    }
}

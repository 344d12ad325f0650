//! Datasets as numpy arrays, and N-way K-shot episodes drawn by the crate's sampler
//! (`metalearn.data.omniglot(path).episodes(...)`).
//!
//! Episode `i` of `episodes(n_way, k_shot, q_query, seed)` is what the crate's fixed episode
//! sets ([`metalearn::data::EpisodeSet`], the evaluation episodes of `metalearn eval`) draw:
//! a ChaCha8 generator seeded with `seed` on stream `i`, over every class of the dataset.

use crate::errors;
use metalearn::data::omniglot::load_omniglot_sized;
use metalearn::data::{
    load_image_folder, load_omniglot_npz, load_omniglot_pngs, seeded_rng, ColorMode,
    EpisodeSampler, EpisodeSpec, ImageDataset, ImageFolderOptions,
};
use numpy::ndarray::{Array1, ArrayD, IxDyn};
use numpy::{IntoPyArray, PyArray1, PyArrayDyn};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use std::path::PathBuf;
use std::sync::Arc;

/// A labelled dataset held by the engine (images `(n, C, H, W)` or vectors `(n, D)`).
#[pyclass(module = "metalearn._native", frozen)]
pub struct Dataset {
    data: Arc<ImageDataset>,
    /// The example shape numpy sees: `[D]` for CSV vectors, `[C, H, W]` for images.
    shape: Vec<usize>,
}

/// The name of a colour mode, as `image_folder(color=...)` takes it.
pub fn color_name(c: ColorMode) -> &'static str {
    match c {
        ColorMode::Grayscale => "gray",
        ColorMode::Rgb => "rgb",
        ColorMode::Ink => "ink",
    }
}

fn parse_color(color: &str) -> PyResult<ColorMode> {
    match color {
        "gray" | "grayscale" | "l" => Ok(ColorMode::Grayscale),
        "rgb" => Ok(ColorMode::Rgb),
        "ink" => Ok(ColorMode::Ink),
        other => Err(PyValueError::new_err(format!(
            "color: unknown `{other}` (expected gray, rgb or ink)"
        ))),
    }
}

impl Dataset {
    fn new(data: ImageDataset) -> Self {
        let shape = if data.channels == 1 && data.height == 1 {
            vec![data.width]
        } else {
            vec![data.channels, data.height, data.width]
        };
        Dataset {
            data: Arc::new(data),
            shape,
        }
    }

    fn array<'py>(
        &self,
        py: Python<'py>,
        n: usize,
        values: Vec<f32>,
    ) -> Bound<'py, PyArrayDyn<f32>> {
        let mut shape = vec![n];
        shape.extend(&self.shape);
        ArrayD::from_shape_vec(IxDyn(&shape), values)
            .expect("episode values match their shape")
            .into_pyarray(py)
    }
}

fn usize_array<'py>(py: Python<'py>, v: &[usize]) -> Bound<'py, PyArray1<i64>> {
    Array1::from_iter(v.iter().map(|&x| x as i64)).into_pyarray(py)
}

#[pymethods]
impl Dataset {
    /// The number of examples.
    fn __len__(&self) -> usize {
        self.data.n
    }

    /// The number of classes.
    #[getter]
    fn num_classes(&self) -> usize {
        self.data.class_names.len()
    }

    /// The class names (label `k` is `class_names[k]`).
    #[getter]
    fn class_names(&self) -> Vec<String> {
        self.data.class_names.clone()
    }

    /// The shape of one example.
    #[getter]
    fn example_shape(&self) -> Vec<usize> {
        self.shape.clone()
    }

    /// All examples `(n, ...)` float32 and labels `(n,)` int64 (copies).
    fn arrays<'py>(&self, py: Python<'py>) -> Bound<'py, PyTuple> {
        let x = self.array(py, self.data.n, self.data.images.clone());
        let y = usize_array(py, &self.data.labels);
        PyTuple::new(py, [x.into_any(), y.into_any()]).expect("a tuple of two arrays")
    }

    /// Episodes `start .. start + count` of `(n_way, k_shot, q_query, seed)`: a list of
    /// tuples `(support_x, support_y, query_x, query_y, classes, support_index, query_index)`.
    #[pyo3(signature = (n_way, k_shot, q_query, seed, start, count))]
    #[allow(clippy::too_many_arguments)]
    fn episode_batch<'py>(
        &self,
        py: Python<'py>,
        n_way: usize,
        k_shot: usize,
        q_query: usize,
        seed: u64,
        start: u64,
        count: usize,
    ) -> PyResult<Vec<Bound<'py, PyTuple>>> {
        let spec = EpisodeSpec::new(n_way, k_shot, q_query).map_err(errors::py)?;
        let data = Arc::clone(&self.data);
        let episodes = py.detach(move || {
            errors::catch(|| {
                let sampler = EpisodeSampler::new(data.as_ref(), spec).map_err(errors::py)?;
                (0..count as u64)
                    .map(|i| {
                        let mut rng = seeded_rng(seed);
                        rng.set_stream(start + i);
                        let idx = sampler.sample_indices(&mut rng);
                        let ep = sampler.materialize(&idx).map_err(errors::py)?;
                        Ok((ep, idx))
                    })
                    .collect::<PyResult<Vec<_>>>()
            })
        })?;
        let mut out = Vec::with_capacity(episodes.len());
        for (ep, idx) in episodes {
            let items = [
                self.array(py, ep.support_y.len(), ep.support_x).into_any(),
                usize_array(py, &ep.support_y).into_any(),
                self.array(py, ep.query_y.len(), ep.query_x).into_any(),
                usize_array(py, &ep.query_y).into_any(),
                usize_array(py, &idx.classes).into_any(),
                usize_array(py, &idx.support).into_any(),
                usize_array(py, &idx.query).into_any(),
            ];
            out.push(PyTuple::new(py, items)?);
        }
        Ok(out)
    }

    fn __repr__(&self) -> String {
        format!(
            "Dataset({} examples of shape {:?}, {} classes)",
            self.data.n,
            self.shape,
            self.data.class_names.len()
        )
    }
}

/// Omniglot from `path`: a folder with `images_background.npz` and `images_evaluation.npz`
/// (`split` all, background or evaluation), one such npz file, or a folder / zip of Lake's
/// PNGs; images resized to `image_size`, ink = 1.
#[pyfunction]
#[pyo3(signature = (path, image_size=28, split="all"))]
pub fn omniglot(
    py: Python<'_>,
    path: PathBuf,
    image_size: usize,
    split: &str,
) -> PyResult<Dataset> {
    if !(1..=105).contains(&image_size) {
        return Err(PyValueError::new_err(format!(
            "image_size: {image_size} is out of range (1 to 105, Omniglot's side)"
        )));
    }
    let file = match split {
        "all" => None,
        "background" => Some("images_background.npz"),
        "evaluation" => Some("images_evaluation.npz"),
        other => {
            return Err(PyValueError::new_err(format!(
                "split: unknown `{other}` (expected all, background or evaluation)"
            )))
        }
    };
    let o = py.detach(move || {
        errors::catch(|| {
            let is_npz_dir = path.join("images_background.npz").exists();
            let r = match (is_npz_dir, file) {
                (true, None) => load_omniglot_sized(&path, image_size),
                (true, Some(f)) => load_omniglot_npz(&path.join(f), image_size),
                (false, _) if path.extension().is_some_and(|e| e == "npz") => {
                    load_omniglot_npz(&path, image_size)
                }
                (false, _) => load_omniglot_pngs(&[&path], image_size),
            };
            r.map_err(errors::py)
        })
    })?;
    Ok(Dataset::new(o.images))
}

/// A folder with one subfolder of PNG images per class (classes sorted by name).
#[pyfunction]
#[pyo3(signature = (path, color="gray", image_size=None))]
pub fn image_folder(
    py: Python<'_>,
    path: PathBuf,
    color: &str,
    image_size: Option<usize>,
) -> PyResult<Dataset> {
    let opts = ImageFolderOptions {
        color: parse_color(color)?,
        resize: image_size.map(|s| (s, s)),
    };
    let ds =
        py.detach(move || errors::catch(|| load_image_folder(&path, &opts).map_err(errors::py)))?;
    Ok(Dataset::new(ds))
}

/// A CSV of feature vectors with a label column (the last, or the header's `label_column`).
#[pyfunction]
#[pyo3(signature = (path, label_column=None))]
pub fn csv(py: Python<'_>, path: PathBuf, label_column: Option<String>) -> PyResult<Dataset> {
    let ds = py.detach(move || {
        errors::catch(|| {
            metalearn::fewshot::tasks::load_csv_dataset(&path, label_column.as_deref())
                .map_err(errors::py)
        })
    })?;
    Ok(Dataset::new(ds))
}

/// The PNG images of a folder (searched recursively, sorted; as `metalearn adapt` reads its
/// queries): `(x (n, C, size, size) float32, names)`.
#[pyfunction]
#[pyo3(signature = (path, color="gray", image_size=28))]
pub fn read_images<'py>(
    py: Python<'py>,
    path: PathBuf,
    color: &str,
    image_size: usize,
) -> PyResult<(Bound<'py, PyArrayDyn<f32>>, Vec<String>)> {
    let color = parse_color(color)?;
    let (x, names) = py.detach(move || {
        errors::catch(|| {
            let mut files = Vec::new();
            metalearn::fewshot::adapt::png_files(&path, &path, &mut files).map_err(errors::py)?;
            if files.is_empty() {
                return Err(PyValueError::new_err(format!(
                    "{}: the folder holds no PNG images",
                    path.display()
                )));
            }
            let mut x = Vec::new();
            for (_, f) in &files {
                let (_, _, v) =
                    metalearn::data::load_png_as(f, color, Some((image_size, image_size)))
                        .map_err(errors::py)?;
                x.extend(v);
            }
            Ok((x, files.into_iter().map(|(n, _)| n).collect::<Vec<_>>()))
        })
    })?;
    let shape = [names.len(), color.channels(), image_size, image_size];
    let a = ArrayD::from_shape_vec(IxDyn(&shape), x)
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok((a.into_pyarray(py), names))
}

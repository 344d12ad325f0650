//! In-memory datasets: [`ImageDataset`] (one label per example), [`MultiLabelDataset`]
//! (several label columns, for multi-task learning), the per-class [`ClassIndex`], and the
//! [`LabelledData`] trait through which the episode sampler reads any of them.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;

use super::error::{DataError, Result};

/// `names[class]`, or `class <class>` when the dataset has no name for it.
pub(crate) fn name_or_number(names: &[String], class: usize) -> String {
    names
        .get(class)
        .cloned()
        .unwrap_or_else(|| format!("class {class}"))
}

/// Each class's position in `classes` (`None` for a class not in the list), after checking
/// that the list names each of the `num_classes` classes at most once; `verb` says what the
/// list does, in the error for a repeat (`class 3 selected twice`).
pub(crate) fn class_positions(
    classes: &[usize],
    num_classes: usize,
    verb: &str,
) -> Result<Vec<Option<usize>>> {
    let mut positions = vec![None; num_classes];
    for (j, &c) in classes.iter().enumerate() {
        match positions.get_mut(c) {
            Some(slot @ None) => *slot = Some(j),
            Some(Some(_)) => {
                return Err(DataError::InvalidArgument(format!(
                    "class {c} {verb} twice"
                )))
            }
            None => {
                return Err(DataError::InvalidArgument(format!(
                    "class {c} out of range for {num_classes} classes"
                )))
            }
        }
    }
    Ok(positions)
}

/// Read access to a dataset of fixed-shape `f32` examples with one class label each.
///
/// This is what [`crate::data::EpisodeSampler`] needs; it is implemented by [`ImageDataset`],
/// by [`LabelColumn`] (one task of a [`MultiLabelDataset`]) and by
/// [`crate::data::RotatedDataset`] (rotation classes, computed on the fly).
pub trait LabelledData {
    /// The number of examples.
    fn len(&self) -> usize;
    /// Whether there is no example.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The shape of one example, e.g. `[C, H, W]` for images or `[D]` for feature vectors.
    fn example_shape(&self) -> Vec<usize>;
    /// The number of `f32` values of one example (the product of [`Self::example_shape`]).
    fn example_len(&self) -> usize {
        self.example_shape().iter().product()
    }
    /// The number of classes; every label is below it.
    fn num_classes(&self) -> usize;
    /// The class of example `i` (`i < len()`).
    fn label(&self, i: usize) -> usize;
    /// A readable name of `class`, used in error messages and reports.
    fn class_name(&self, class: usize) -> String {
        format!("class {class}")
    }
    /// Writes example `i` into `out`, whose length is [`Self::example_len`].
    fn write_example(&self, i: usize, out: &mut [f32]);
    /// Appends example `i` (of `len` = [`Self::example_len`] values) to `out`.
    fn extend_example(&self, i: usize, len: usize, out: &mut Vec<f32>) {
        let start = out.len();
        out.resize(start + len, 0.0);
        if let Some(tail) = out.get_mut(start..) {
            self.write_example(i, tail);
        }
    }
}

/// The examples of each class, in dataset order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassIndex {
    per_class: Vec<Vec<usize>>,
}

impl ClassIndex {
    /// Groups example indices by label. Labels must be below `num_classes`
    /// (examples with larger labels are ignored).
    pub fn new(labels: impl IntoIterator<Item = usize>, num_classes: usize) -> Self {
        let mut per_class = vec![Vec::new(); num_classes];
        for (i, l) in labels.into_iter().enumerate() {
            if let Some(v) = per_class.get_mut(l) {
                v.push(i);
            }
        }
        ClassIndex { per_class }
    }

    /// Builds the index of any [`LabelledData`].
    pub fn of(data: &(impl LabelledData + ?Sized)) -> Self {
        Self::new((0..data.len()).map(|i| data.label(i)), data.num_classes())
    }

    /// The number of classes.
    pub fn num_classes(&self) -> usize {
        self.per_class.len()
    }

    /// The example indices of `class` (empty if out of range).
    pub fn examples(&self, class: usize) -> &[usize] {
        self.per_class.get(class).map_or(&[], Vec::as_slice)
    }

    /// The number of examples of every class.
    pub fn counts(&self) -> Vec<usize> {
        self.per_class.iter().map(Vec::len).collect()
    }

    /// The size of the smallest class (0 when there is no class).
    pub fn min_count(&self) -> usize {
        self.per_class.iter().map(Vec::len).min().unwrap_or(0)
    }
}

/// A dataset of equally sized images, stored as one contiguous `[n, channels, height, width]`
/// row-major `f32` buffer with one class label per image.
///
/// Invariants (checked by [`ImageDataset::new`] and [`ImageDataset::validate`]):
/// `images.len() == n * channels * height * width`, `labels.len() == n`, and every label is
/// below `class_names.len()`. Pixel values are normally in `[0, 1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageDataset {
    /// All pixels, image after image, each `[channels, height, width]` row-major.
    pub images: Vec<f32>,
    /// The number of images.
    pub n: usize,
    /// Channels per image (1 for grayscale).
    pub channels: usize,
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
    /// The class of each image, `0..class_names.len()`.
    pub labels: Vec<usize>,
    /// A name for each class.
    pub class_names: Vec<String>,
}

impl ImageDataset {
    /// Builds a dataset after checking its invariants; `shape` is `[n, channels, height, width]`.
    pub fn new(
        images: Vec<f32>,
        shape: [usize; 4],
        labels: Vec<usize>,
        class_names: Vec<String>,
    ) -> Result<Self> {
        let [n, channels, height, width] = shape;
        let ds = ImageDataset {
            images,
            n,
            channels,
            height,
            width,
            labels,
            class_names,
        };
        ds.validate()?;
        Ok(ds)
    }

    /// Checks the invariants listed on the type.
    pub fn validate(&self) -> Result<()> {
        let per = self
            .channels
            .checked_mul(self.height)
            .and_then(|v| v.checked_mul(self.width));
        let total = per.and_then(|p| p.checked_mul(self.n));
        if total != Some(self.images.len()) {
            return Err(DataError::InvalidArgument(format!(
                "image buffer holds {} values, expected n*c*h*w = {}*{}*{}*{}",
                self.images.len(),
                self.n,
                self.channels,
                self.height,
                self.width
            )));
        }
        if self.labels.len() != self.n {
            return Err(DataError::InvalidArgument(format!(
                "{} labels for {} images",
                self.labels.len(),
                self.n
            )));
        }
        if let Some((i, &l)) = self
            .labels
            .iter()
            .enumerate()
            .find(|(_, &l)| l >= self.class_names.len())
        {
            return Err(DataError::InvalidArgument(format!(
                "label {l} of image {i} is not below the number of classes {}",
                self.class_names.len()
            )));
        }
        Ok(())
    }

    /// `[n, channels, height, width]`.
    pub fn shape(&self) -> [usize; 4] {
        [self.n, self.channels, self.height, self.width]
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether there is no image.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The number of classes.
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// Values per image: `channels * height * width`.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The pixels of image `i`, or `None` if `i >= n`.
    pub fn try_image(&self, i: usize) -> Option<&[f32]> {
        let len = self.image_len();
        self.images
            .get(i.checked_mul(len)?..i.checked_add(1)?.checked_mul(len)?)
    }

    /// The pixels of image `i`, `[channels, height, width]` row-major. Panics if `i >= n`.
    #[allow(clippy::indexing_slicing)] // documented panic: `i < n` is the caller's contract
    pub fn image(&self, i: usize) -> &[f32] {
        let len = self.image_len();
        &self.images[i * len..(i + 1) * len]
    }

    /// The images of each class.
    pub fn class_index(&self) -> ClassIndex {
        ClassIndex::new(self.labels.iter().copied(), self.num_classes())
    }

    /// The number of images of each class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes()];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(l) {
                *c += 1;
            }
        }
        counts
    }

    /// A new dataset holding the images of `indices`, in that order (same classes).
    pub fn subset(&self, indices: &[usize]) -> Result<ImageDataset> {
        let len = self.image_len();
        let mut images = Vec::with_capacity(indices.len() * len);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            let (Some(&label), Some(image)) = (self.labels.get(i), self.try_image(i)) else {
                return Err(DataError::InvalidArgument(format!(
                    "subset index {i} out of range for {} images",
                    self.n
                )));
            };
            images.extend_from_slice(image);
            labels.push(label);
        }
        ImageDataset::new(
            images,
            [indices.len(), self.channels, self.height, self.width],
            labels,
            self.class_names.clone(),
        )
    }

    /// A new dataset holding only the images of `classes`, relabelled so that `classes[j]`
    /// becomes class `j` (its name is kept). Images keep their relative order.
    pub fn select_classes(&self, classes: &[usize]) -> Result<ImageDataset> {
        let map = class_positions(classes, self.num_classes(), "selected")?;
        let mapped = |l: usize| map.get(l).copied().flatten();
        let keep: Vec<usize> = (0..self.n)
            .filter(|&i| self.labels.get(i).and_then(|&l| mapped(l)).is_some())
            .collect();
        let mut out = self.subset(&keep)?;
        for l in &mut out.labels {
            *l = mapped(*l).unwrap_or(*l);
        }
        out.class_names = classes.iter().map(|&c| self.class_name(c)).collect();
        Ok(out)
    }
}

// `LabelledData` takes `i < len()` by contract; the constructors validate the buffers.
#[allow(clippy::indexing_slicing)]
impl LabelledData for ImageDataset {
    fn len(&self) -> usize {
        self.n
    }
    fn example_shape(&self) -> Vec<usize> {
        vec![self.channels, self.height, self.width]
    }
    fn num_classes(&self) -> usize {
        self.class_names.len()
    }
    fn label(&self, i: usize) -> usize {
        self.labels[i]
    }
    fn class_name(&self, class: usize) -> String {
        name_or_number(&self.class_names, class)
    }
    fn write_example(&self, i: usize, out: &mut [f32]) {
        out.copy_from_slice(self.image(i));
    }
    fn extend_example(&self, i: usize, _len: usize, out: &mut Vec<f32>) {
        out.extend_from_slice(self.image(i));
    }
}

/// Examples with several label columns (tasks), for multi-task learning.
///
/// The data is one contiguous row-major `f32` buffer of `n` examples of shape
/// `example_shape` (e.g. `[1, 28, 28]` images or `[64]` feature vectors). Each label column
/// has a name, `n` labels and class names; columns can be derived from others
/// (e.g. digit mod 3, digit parity) with [`MultiLabelDataset::derive`].
#[derive(Debug, Clone, PartialEq)]
pub struct MultiLabelDataset {
    /// All example values, example after example.
    pub data: Vec<f32>,
    /// The number of examples.
    pub n: usize,
    /// The shape of one example.
    pub example_shape: Vec<usize>,
    /// The name of each label column.
    pub label_names: Vec<String>,
    /// The label columns: `labels[c][i]` is the class of example `i` in column `c`.
    pub labels: Vec<Vec<usize>>,
    /// The class names of each column: `class_names[c][k]` names class `k` of column `c`.
    pub class_names: Vec<Vec<String>>,
}

impl MultiLabelDataset {
    /// Builds a dataset with no label column yet; `data.len()` must be `n * prod(example_shape)`.
    pub fn new(data: Vec<f32>, n: usize, example_shape: Vec<usize>) -> Result<Self> {
        let per: usize = example_shape.iter().product();
        if per.checked_mul(n) != Some(data.len()) {
            return Err(DataError::InvalidArgument(format!(
                "data holds {} values, expected n * prod({example_shape:?}) = {n} * {per}",
                data.len()
            )));
        }
        Ok(MultiLabelDataset {
            data,
            n,
            example_shape,
            label_names: Vec::new(),
            labels: Vec::new(),
            class_names: Vec::new(),
        })
    }

    /// Wraps an [`ImageDataset`], its labels becoming the column `label_name`.
    pub fn from_image_dataset(ds: ImageDataset, label_name: &str) -> Result<Self> {
        let mut out =
            MultiLabelDataset::new(ds.images, ds.n, vec![ds.channels, ds.height, ds.width])?;
        out.add_column(label_name, ds.labels, Some(ds.class_names))?;
        Ok(out)
    }

    /// Adds a label column. Without `class_names` the classes are named by their number and
    /// their count is one more than the largest label.
    pub fn add_column(
        &mut self,
        name: &str,
        labels: Vec<usize>,
        class_names: Option<Vec<String>>,
    ) -> Result<()> {
        if labels.len() != self.n {
            return Err(DataError::InvalidArgument(format!(
                "label column {name:?} has {} labels for {} examples",
                labels.len(),
                self.n
            )));
        }
        if self.column_index(name).is_some() {
            return Err(DataError::InvalidArgument(format!(
                "label column {name:?} already exists"
            )));
        }
        let needed = match labels.iter().max() {
            None => 0,
            Some(&m) => m.checked_add(1).ok_or_else(|| {
                DataError::InvalidArgument(format!(
                    "label column {name:?} has a label {m} too large to be a class id"
                ))
            })?,
        };
        let names = match class_names {
            Some(names) if names.len() >= needed => names,
            Some(names) => {
                return Err(DataError::InvalidArgument(format!(
                    "label column {name:?} has labels up to {} but only {} class names",
                    needed - 1,
                    names.len()
                )))
            }
            None => (0..needed).map(|k| k.to_string()).collect(),
        };
        self.label_names.push(name.to_string());
        self.labels.push(labels);
        self.class_names.push(names);
        Ok(())
    }

    /// Adds column `name` with `f(label)` for every label of column `from`
    /// (e.g. `derive("parity", "digit", |d| d % 2)`).
    pub fn derive(&mut self, name: &str, from: &str, f: impl Fn(usize) -> usize) -> Result<()> {
        let c = self.column_index(from).ok_or_else(|| {
            DataError::InvalidArgument(format!(
                "no label column {from:?} (have {:?})",
                self.label_names
            ))
        })?;
        let labels = self
            .labels
            .get(c)
            .into_iter()
            .flatten()
            .map(|&l| f(l))
            .collect();
        self.add_column(name, labels, None)
    }

    /// Adds the derived digit tasks `"{from}_mod3"` (digit mod 3) and `"{from}_parity"`
    /// (0 = even, 1 = odd) from column `from`.
    pub fn add_digit_tasks(&mut self, from: &str) -> Result<()> {
        self.derive(&format!("{from}_mod3"), from, |d| d % 3)?;
        self.derive(&format!("{from}_parity"), from, |d| d % 2)
    }

    /// The position of column `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.label_names.iter().position(|n| n == name)
    }

    /// The labels of column `name`.
    pub fn column(&self, name: &str) -> Option<&[usize]> {
        self.column_index(name)
            .and_then(|c| self.labels.get(c))
            .map(Vec::as_slice)
    }

    /// The number of `f32` values of one example.
    pub fn example_len(&self) -> usize {
        self.example_shape.iter().product()
    }

    /// The values of example `i`. Panics if `i >= n`.
    #[allow(clippy::indexing_slicing)] // documented panic: `i < n` is the caller's contract
    pub fn example(&self, i: usize) -> &[f32] {
        let len = self.example_len();
        &self.data[i * len..(i + 1) * len]
    }

    /// The labels of example `i` in every column, in column order. Panics if `i >= n`.
    #[allow(clippy::indexing_slicing)] // documented panic: `i < n` is the caller's contract
    pub fn example_labels(&self, i: usize) -> Vec<usize> {
        self.labels.iter().map(|col| col[i]).collect()
    }

    /// A single-task view of column `name`, usable by the episode sampler.
    pub fn task(&self, name: &str) -> Result<LabelColumn<'_>> {
        let column = self.column_index(name).ok_or_else(|| {
            DataError::InvalidArgument(format!(
                "no label column {name:?} (have {:?})",
                self.label_names
            ))
        })?;
        Ok(LabelColumn { data: self, column })
    }

    /// The number of examples of each class of column `name`.
    pub fn class_counts(&self, name: &str) -> Option<BTreeMap<String, usize>> {
        let c = self.column_index(name)?;
        let mut counts = BTreeMap::new();
        let names = self.class_names.get(c)?;
        for &l in self.labels.get(c)? {
            let class = names.get(l).cloned().unwrap_or_else(|| l.to_string());
            *counts.entry(class).or_insert(0) += 1;
        }
        Some(counts)
    }
}

/// One label column of a [`MultiLabelDataset`] seen as a single-label dataset.
#[derive(Debug, Clone, Copy)]
pub struct LabelColumn<'a> {
    data: &'a MultiLabelDataset,
    column: usize,
}

impl LabelColumn<'_> {
    /// The column's name.
    pub fn name(&self) -> &str {
        self.data
            .label_names
            .get(self.column)
            .map_or("", String::as_str)
    }
}

// `column` is a valid column (made by `task`); `i < len()` is the trait's contract.
#[allow(clippy::indexing_slicing)]
impl LabelledData for LabelColumn<'_> {
    fn len(&self) -> usize {
        self.data.n
    }
    fn example_shape(&self) -> Vec<usize> {
        self.data.example_shape.clone()
    }
    fn num_classes(&self) -> usize {
        self.data.class_names[self.column].len()
    }
    fn label(&self, i: usize) -> usize {
        self.data.labels[self.column][i]
    }
    fn class_name(&self, class: usize) -> String {
        name_or_number(&self.data.class_names[self.column], class)
    }
    fn write_example(&self, i: usize, out: &mut [f32]) {
        out.copy_from_slice(self.data.example(i));
    }
    fn extend_example(&self, i: usize, _len: usize, out: &mut Vec<f32>) {
        out.extend_from_slice(self.data.example(i));
    }
}

/// A train and a test dataset, as shipped by MNIST-like datasets.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainTest {
    /// The training set.
    pub train: ImageDataset,
    /// The test set.
    pub test: ImageDataset,
}

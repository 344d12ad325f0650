//! The data of a transfer experiment: a dataset selection ([`DataSel`]) loaded as a train and a
//! test set ([`TrainTestSplit`]).

use super::config::DataSel;
use super::error::{Result, TransferError};
use crate::data::ImageDataset;
use std::path::{Path, PathBuf};

/// The train and test sets of one side of a transfer experiment (the source or the target),
/// the selected classes relabelled `0..C`. (Not a few-shot task: see
/// [`crate::algorithms::task`] for those.)
#[derive(Clone, Debug)]
pub struct TrainTestSplit {
    /// Training pool.
    pub train: ImageDataset,
    /// Test set.
    pub test: ImageDataset,
    /// The dataset in words (`mnist (10 classes, 60000 train / 10000 test images)`).
    pub describe: String,
}

/// The folder of a selection: its `path`, else `$METALEARN_DATA/<dataset>` (both Omniglot
/// halves live in `omniglot/`).
fn data_dir(sel: &DataSel) -> PathBuf {
    sel.path.clone().unwrap_or_else(|| {
        let d = crate::data::default_data_dir();
        match sel.dataset.as_str() {
            "omniglot-background" | "omniglot-evaluation" => d.join("omniglot"),
            other => d.join(other),
        }
    })
}

/// The first `limit` examples of `ds` (all of them when `limit` is 0 or at least `ds.n`).
fn head_n(ds: ImageDataset, limit: usize) -> ImageDataset {
    if limit == 0 || limit >= ds.n {
        return ds;
    }
    let idx: Vec<usize> = (0..limit).collect();
    ds.subset(&idx).expect("indices in range")
}

/// Loads a dataset selection: train and test sets with the selected classes relabelled
/// `0..C`, truncated to the limits. Omniglot has no test split: the last `test_per_class`
/// drawings of every character are the test set. `what` (`source` or `target`) names the
/// selection in errors.
pub fn load(sel: &DataSel, what: &'static str) -> Result<TrainTestSplit> {
    let path = data_dir(sel);
    let (train, test) = match sel.dataset.as_str() {
        "mnist" | "fashion-mnist" => load_mnist_like(sel, what, &path)?,
        _ => load_omniglot_half(sel, what, &path)?,
    };
    let total = train.num_classes();
    let classes = selected_classes(sel, what, total)?;
    let (train, test) = if classes.len() == total {
        (train, test)
    } else {
        let derr = data_error(what, &path);
        (
            train.select_classes(&classes).map_err(&derr)?,
            test.select_classes(&classes).map_err(derr)?,
        )
    };
    let train = head_n(train, sel.train_limit);
    let test = head_n(test, sel.test_limit);
    let describe = format!(
        "{} ({} classes, {} train / {} test images)",
        sel.dataset,
        classes.len(),
        train.n,
        test.n
    );
    Ok(TrainTestSplit {
        train,
        test,
        describe,
    })
}

/// The error of a loader that failed on `path` while loading `what`.
fn data_error(what: &'static str, path: &Path) -> impl Fn(crate::data::DataError) -> TransferError {
    let path = path.to_path_buf();
    move |source| TransferError::Data {
        what,
        path: path.clone(),
        source: Box::new(source),
    }
}

/// MNIST or Fashion-MNIST from `path`: its own train and test sets.
fn load_mnist_like(
    sel: &DataSel,
    what: &'static str,
    path: &Path,
) -> Result<(ImageDataset, ImageDataset)> {
    let tt = if sel.dataset == "mnist" {
        crate::data::load_mnist(path)
    } else {
        crate::data::load_fashion_mnist(path)
    }
    .map_err(data_error(what, path))?;
    Ok((tt.train, tt.test))
}

/// One half of Omniglot (`omniglot-background` or `omniglot-evaluation`, from its npz file in
/// `path`), split by drawing: the last `test_per_class` drawings of every character (of 20)
/// are the test set, the others the training set.
fn load_omniglot_half(
    sel: &DataSel,
    what: &'static str,
    path: &Path,
) -> Result<(ImageDataset, ImageDataset)> {
    let derr = data_error(what, path);
    let file = if sel.dataset == "omniglot-background" {
        "images_background.npz"
    } else {
        "images_evaluation.npz"
    };
    let o = crate::data::load_omniglot_npz(&path.join(file), crate::data::OMNIGLOT_SIZE)
        .map_err(&derr)?;
    let tpc = sel.test_per_class as u32;
    if tpc == 0 || tpc >= 20 {
        return Err(TransferError::value(
            &format!("{what}.test_per_class"),
            "must be between 1 and 19 (Omniglot has 20 drawings per character)",
        ));
    }
    let (test, train): (Vec<usize>, Vec<usize>) =
        (0..o.drawings.len()).partition(|&i| o.drawings[i] > 20 - tpc);
    Ok((
        o.images.subset(&train).map_err(&derr)?,
        o.images.subset(&test).map_err(&derr)?,
    ))
}

/// The classes a selection keeps among `total`: its `classes`, else the first `num_classes`,
/// else all; errors naming `{what}.classes` when one is out of range.
fn selected_classes(sel: &DataSel, what: &str, total: usize) -> Result<Vec<usize>> {
    let classes: Vec<usize> = match (&sel.classes, sel.num_classes) {
        (Some(c), _) => c.clone(),
        (None, Some(n)) => (0..n.min(total)).collect(),
        (None, None) => (0..total).collect(),
    };
    if let Some(&c) = classes.iter().find(|&&c| c >= total) {
        return Err(TransferError::value(
            &format!("{what}.classes"),
            format!(
                "class {c} out of range: `{}` has {total} classes",
                sel.dataset
            ),
        ));
    }
    Ok(classes)
}

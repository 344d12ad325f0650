//! The error type shared by every loader, parser and sampler in [`crate::data`].

use std::path::Path;

use thiserror::Error;

/// Everything that can go wrong while reading, checking or sampling data.
///
/// Every variant that concerns a file names it (`file`), and format errors say what was
/// expected and what was found, so a message such as
/// `train-labels.idx1-ubyte: bad magic number: expected 0x00000801 (unsigned byte, 1 dim), found 0x00000803`
/// is enough to fix the input. Loaders never panic on bad input; they return one of these.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DataError {
    /// The operating system refused an operation on a file or folder.
    #[error("{file}: {action} failed: {source}")]
    Io {
        /// The file or folder concerned.
        file: String,
        /// What was being done (`open`, `read`, `write`, ...).
        action: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A required file or archive member is missing.
    #[error("{file}: {what} not found: expected {expected}")]
    NotFound {
        /// The folder or archive that was searched.
        file: String,
        /// What was looked for.
        what: String,
        /// The names that were tried.
        expected: String,
    },
    /// A file ends before the data its header announces.
    #[error("{file}: truncated {what}: expected {expected} bytes, found {found}")]
    Truncated {
        /// The file concerned.
        file: String,
        /// The part that is cut short (header, pixel data, ...).
        what: String,
        /// The number of bytes needed.
        expected: u64,
        /// The number of bytes present.
        found: u64,
    },
    /// A field of a file does not have the value or form its format requires.
    #[error("{file}: bad {what}: expected {expected}, found {found}")]
    Format {
        /// The file concerned (possibly with a line number or archive member).
        file: String,
        /// The field or property that is wrong (magic number, shape, dtype, ...).
        what: String,
        /// What the format requires.
        expected: String,
        /// What the file holds.
        found: String,
    },
    /// An images file and its labels file disagree on the number of examples.
    #[error(
        "{labels_file}: image/label count mismatch: expected {expected} labels (one per image \
         of {images_file}), found {found}"
    )]
    CountMismatch {
        /// The images file.
        images_file: String,
        /// The labels file.
        labels_file: String,
        /// The number of images.
        expected: u64,
        /// The number of labels.
        found: u64,
    },
    /// A row of a delimited text file has the wrong number of fields.
    #[error("{file}:{line}: ragged row: expected {expected} fields, found {found}")]
    RaggedRow {
        /// The file concerned.
        file: String,
        /// The 1-based line number.
        line: usize,
        /// The number of fields of the first row.
        expected: usize,
        /// The number of fields of this row.
        found: usize,
    },
    /// A class folder of an image folder holds no image.
    #[error("{file}: empty class folder: expected at least one PNG image, found none")]
    EmptyClass {
        /// The empty class folder.
        file: String,
    },
    /// A file inside an image folder is not a decodable PNG image.
    #[error("{file}: not an image: expected a PNG file, found {found}")]
    NotAnImage {
        /// The offending file.
        file: String,
        /// What was found instead (extension, or the decoder's complaint).
        found: String,
    },
    /// A file's SHA-256 digest differs from the registered one.
    #[error("{file}: checksum mismatch: expected sha256 {expected}, found {found}")]
    Checksum {
        /// The file concerned.
        file: String,
        /// The registered digest (lowercase hex).
        expected: String,
        /// The digest of the file (lowercase hex).
        found: String,
    },
    /// An episode asks for more classes than the dataset (or split) offers.
    #[error(
        "{dataset}: not enough classes for an episode: N-way = {requested} needs {requested} \
         classes, found {available}"
    )]
    NotEnoughClasses {
        /// A description of the dataset or split.
        dataset: String,
        /// N, the number of classes per episode.
        requested: usize,
        /// The number of classes available.
        available: usize,
    },
    /// Some class has fewer examples than an episode takes from each class.
    #[error(
        "{dataset}: not enough examples in class {class:?}: K+Q = {needed} needs {needed} \
         examples per class, found {available}"
    )]
    NotEnoughExamples {
        /// A description of the dataset or split.
        dataset: String,
        /// The name of the class that is too small.
        class: String,
        /// K + Q.
        needed: usize,
        /// The number of examples of that class.
        available: usize,
    },
    /// A dataset name is not in the download registry.
    #[error("unknown dataset {name:?}: expected one of {expected}")]
    UnknownDataset {
        /// The name that was asked for.
        name: String,
        /// The registered names.
        expected: String,
    },
    /// Fetching a file over the network failed.
    #[error("download of {url} failed: {reason}")]
    Download {
        /// The address tried.
        url: String,
        /// Why it failed.
        reason: String,
    },
    /// `metalearn data inspect` found files that the loaders reject; `report` holds the
    /// summary of every file, with the errors in place.
    #[error("{file}: {failed} of {total} data file(s) failed to load:\n{report}")]
    Inspect {
        /// The folder inspected.
        file: String,
        /// How many files (or image trees) failed.
        failed: usize,
        /// How many were inspected.
        total: usize,
        /// The full report, errors included.
        report: String,
    },
    /// An argument is out of its valid range (for example K = 0).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// Shorthand for `Result<T, DataError>`.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

impl DataError {
    /// An [`DataError::Io`] error for `path`.
    pub fn io(path: impl AsRef<Path>, action: &'static str, source: std::io::Error) -> Self {
        DataError::Io {
            file: path.as_ref().display().to_string(),
            action,
            source,
        }
    }

    /// A [`DataError::Format`] error.
    pub fn format(
        file: impl Into<String>,
        what: impl Into<String>,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> Self {
        DataError::Format {
            file: file.into(),
            what: what.into(),
            expected: expected.into(),
            found: found.into(),
        }
    }

    /// Checks that the data after a header holds exactly the `expected` bytes the header
    /// announces: shorter is [`DataError::truncated`] on `part`; longer is a format error on
    /// `length_field`, expecting `expected_text` and finding `found_text`.
    pub(crate) fn check_data_length(
        file: &str,
        part: &str,
        expected: usize,
        found: usize,
        length_field: &str,
        expected_text: impl FnOnce() -> String,
        found_text: impl FnOnce() -> String,
    ) -> Result<()> {
        if found < expected {
            return Err(DataError::truncated(
                file,
                part,
                expected as u64,
                found as u64,
            ));
        }
        if found > expected {
            return Err(DataError::format(
                file,
                length_field,
                expected_text(),
                found_text(),
            ));
        }
        Ok(())
    }

    /// A [`DataError::Truncated`] error.
    pub fn truncated(
        file: impl Into<String>,
        what: impl Into<String>,
        expected: u64,
        found: u64,
    ) -> Self {
        DataError::Truncated {
            file: file.into(),
            what: what.into(),
            expected,
            found,
        }
    }
}

/// The display form of a path, used as the `file` of errors.
pub(crate) fn path_name(path: &Path) -> String {
    path.display().to_string()
}

/// Opens `path` for reading, checking first that it is a regular file: a folder gives a
/// [`DataError::Format`] naming it and `expected` (e.g. "an npz (zip) file") instead of the
/// operating system's "Is a directory" or "Invalid argument".
pub(crate) fn open_regular_file(path: &Path, expected: &str) -> Result<std::fs::File> {
    let meta = std::fs::metadata(path).map_err(|e| DataError::io(path, "open", e))?;
    if !meta.is_file() {
        let found = if meta.is_dir() {
            "a directory"
        } else {
            "not a regular file"
        };
        return Err(DataError::format(
            path_name(path),
            "file type",
            expected,
            found,
        ));
    }
    std::fs::File::open(path).map_err(|e| DataError::io(path, "open", e))
}

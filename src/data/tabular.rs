//! Delimited text data: feature-vector CSVs with one or more label columns (raw or gzip) and
//! scikit-learn's `digits.csv.gz`.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeSet;
use std::path::Path;

use super::dataset::{ImageDataset, MultiLabelDataset};
use super::error::{path_name, DataError, Result};
use super::idx::{maybe_gunzip, read_file};

/// Which columns of a CSV hold labels (all other columns are features).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelColumns {
    /// The last `n` columns.
    Last(usize),
    /// The first `n` columns.
    First(usize),
    /// These 0-based column positions.
    Indices(Vec<usize>),
    /// The columns with these header names (needs `has_header`).
    Names(Vec<String>),
}

/// How to read a feature CSV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvOptions {
    /// The label columns.
    pub labels: LabelColumns,
    /// Whether the first non-empty line is a header of column names.
    pub has_header: bool,
    /// The field separator.
    pub delimiter: char,
}

impl Default for CsvOptions {
    /// One label in the last column, no header, comma-separated.
    fn default() -> Self {
        CsvOptions {
            labels: LabelColumns::Last(1),
            has_header: false,
            delimiter: ',',
        }
    }
}

/// Parses a feature CSV held in memory (gzip detected by its magic bytes). `name` is used in
/// error messages. Labels that are all non-negative integers are used as class ids (class
/// names "0", "1", ...); otherwise the distinct strings, sorted, become the classes.
pub fn parse_feature_csv(bytes: &[u8], name: &str, opts: &CsvOptions) -> Result<MultiLabelDataset> {
    let raw = maybe_gunzip(bytes, name)?;
    let text = std::str::from_utf8(&raw).map_err(|e| {
        DataError::format(
            name,
            "text encoding",
            "UTF-8 text",
            format!("invalid byte at offset {}", e.valid_up_to()),
        )
    })?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let header: Option<Vec<String>> = if opts.has_header {
        let (_, l) = lines
            .next()
            .ok_or_else(|| DataError::format(name, "content", "a header line", "an empty file"))?;
        Some(
            l.split(opts.delimiter)
                .map(|f| f.trim().to_string())
                .collect(),
        )
    } else {
        None
    };
    let mut width = header.as_ref().map(Vec::len);
    let mut rows: Vec<(usize, Vec<&str>)> = Vec::new();
    for (i, l) in lines {
        let fields: Vec<&str> = l.split(opts.delimiter).map(str::trim).collect();
        match width {
            None => width = Some(fields.len()),
            Some(w) if w != fields.len() => {
                return Err(DataError::RaggedRow {
                    file: name.to_string(),
                    line: i + 1,
                    expected: w,
                    found: fields.len(),
                })
            }
            _ => {}
        }
        rows.push((i + 1, fields));
    }
    let width =
        width.ok_or_else(|| DataError::format(name, "content", "at least one data row", "none"))?;
    if rows.is_empty() {
        return Err(DataError::format(
            name,
            "content",
            "at least one data row after the header",
            "a header line only (the file has no data rows)",
        ));
    }
    let label_cols = label_columns(&opts.labels, width, header.as_deref(), name)?;
    let distinct: BTreeSet<usize> = label_cols.iter().copied().collect();
    if distinct.len() != label_cols.len() {
        return Err(DataError::InvalidArgument(format!(
            "{name}: a label column is listed twice: {label_cols:?}"
        )));
    }
    let feature_cols: Vec<usize> = (0..width).filter(|c| !distinct.contains(c)).collect();
    let data = parse_features(&rows, &feature_cols, name)?;
    let mut ds = MultiLabelDataset::new(data, rows.len(), vec![feature_cols.len()])?;
    for (j, &c) in label_cols.iter().enumerate() {
        let col_name = match header.as_ref().and_then(|h| h.get(c)) {
            Some(h) => h.clone(),
            None if label_cols.len() == 1 => "label".to_string(),
            None => format!("label{j}"),
        };
        let (labels, classes) = parse_labels(&rows, c, name)?;
        ds.add_column(&col_name, labels, classes)?;
    }
    Ok(ds)
}

/// The 0-based positions of the label columns of a CSV `width` columns wide.
fn label_columns(
    labels: &LabelColumns,
    width: usize,
    header: Option<&[String]>,
    name: &str,
) -> Result<Vec<usize>> {
    Ok(match labels {
        LabelColumns::Last(n) if *n <= width => (width - n..width).collect(),
        LabelColumns::First(n) if *n <= width => (0..*n).collect(),
        LabelColumns::Last(n) | LabelColumns::First(n) => {
            return Err(DataError::format(
                name,
                "number of columns",
                format!("at least {n} (label columns)"),
                width.to_string(),
            ))
        }
        LabelColumns::Indices(ix) => {
            if let Some(&c) = ix.iter().find(|&&c| c >= width) {
                return Err(DataError::format(
                    name,
                    "label column",
                    format!("a column below {width}"),
                    c.to_string(),
                ));
            }
            ix.clone()
        }
        LabelColumns::Names(names) => {
            let h = header.ok_or_else(|| {
                DataError::InvalidArgument(format!(
                    "{name}: label columns given by name need has_header = true"
                ))
            })?;
            names
                .iter()
                .map(|n| {
                    h.iter()
                        .position(|c| c == n)
                        .ok_or_else(|| DataError::NotFound {
                            file: name.to_string(),
                            what: format!("label column {n:?}"),
                            expected: format!("one of the header names {h:?}"),
                        })
                })
                .collect::<Result<_>>()?
        }
    })
}

/// The field of `fields` in column `c`; the rows were checked to have the same width.
fn field<'a>(fields: &[&'a str], c: usize, name: &str, line: usize) -> Result<&'a str> {
    fields.get(c).copied().ok_or_else(|| DataError::RaggedRow {
        file: name.to_string(),
        line,
        expected: c + 1,
        found: fields.len(),
    })
}

/// The feature values of every row, row after row; each must be a finite number.
fn parse_features(rows: &[(usize, Vec<&str>)], cols: &[usize], name: &str) -> Result<Vec<f32>> {
    let mut data = Vec::with_capacity(rows.len().saturating_mul(cols.len()));
    for (line, fields) in rows {
        for &c in cols {
            let text = field(fields, c, name, *line)?;
            let v: f32 = text.parse().map_err(|_| {
                DataError::format(
                    format!("{name}:{line}"),
                    format!("value in column {}", c + 1),
                    "a number",
                    format!("{text:?}"),
                )
            })?;
            if !v.is_finite() {
                return Err(DataError::format(
                    format!("{name}:{line}"),
                    format!("value in column {}", c + 1),
                    "a finite number (not NaN or infinite)",
                    format!("{text:?}"),
                ));
            }
            data.push(v);
        }
    }
    Ok(data)
}

/// The fewest classes integer labels may always use: a label must be below the larger of
/// this and the number of data rows, so that a stray huge id cannot allocate millions of
/// empty classes.
pub const MIN_CLASS_LIMIT: usize = 1024;

/// The labels of column `c` and, for string labels, the sorted class names. Labels that are
/// all non-negative integers are class ids, each below `max(rows, MIN_CLASS_LIMIT)`.
fn parse_labels(
    rows: &[(usize, Vec<&str>)],
    c: usize,
    name: &str,
) -> Result<(Vec<usize>, Option<Vec<String>>)> {
    let values: Vec<&str> = rows
        .iter()
        .map(|(line, f)| field(f, c, name, *line))
        .collect::<Result<_>>()?;
    let ints: Option<Vec<usize>> = values.iter().map(|v| v.parse::<usize>().ok()).collect();
    if let Some(labels) = ints {
        let limit = rows.len().max(MIN_CLASS_LIMIT);
        if let Some(((line, _), l)) = rows.iter().zip(&labels).find(|(_, &l)| l >= limit) {
            return Err(DataError::format(
                format!("{name}:{line}"),
                format!("label in column {}", c + 1),
                format!(
                    "a class id below {limit} (the larger of {MIN_CLASS_LIMIT} and the number \
                     of data rows, {})",
                    rows.len()
                ),
                l.to_string(),
            ));
        }
        return Ok((labels, None));
    }
    let classes: Vec<String> = values
        .iter()
        .map(|s| s.to_string())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let labels = values
        .iter()
        .map(|v| classes.binary_search_by(|c| c.as_str().cmp(v)).unwrap_or(0))
        .collect();
    Ok((labels, Some(classes)))
}

/// Loads a feature CSV file (raw or gzip).
pub fn load_feature_csv(path: &Path, opts: &CsvOptions) -> Result<MultiLabelDataset> {
    parse_feature_csv(&read_file(path)?, &path_name(path), opts)
}

/// Parses scikit-learn's digits CSV (held in memory, raw or gzip): rows of 64 pixel values
/// 0..=16 and a label 0..=9. Returns `[n, 1, 8, 8]` images scaled by 1/16 and classes "0".."9".
pub fn parse_digits(bytes: &[u8], name: &str) -> Result<ImageDataset> {
    let ds = parse_feature_csv(bytes, name, &CsvOptions::default())?;
    if ds.example_shape != [64] {
        return Err(DataError::format(
            name,
            "number of columns",
            "65 (64 pixels + label)",
            (ds.example_len() + 1).to_string(),
        ));
    }
    if let Some((i, v)) = ds
        .data
        .iter()
        .enumerate()
        .find(|(_, &v)| !(0.0..=16.0).contains(&v) || v.fract() != 0.0)
    {
        return Err(DataError::format(
            format!("{name}: row {}", i / 64 + 1),
            format!("pixel {}", i % 64),
            "an integer in 0..=16",
            v.to_string(),
        ));
    }
    let labels = ds.labels.first().cloned().unwrap_or_default();
    if let Some((i, l)) = labels.iter().enumerate().find(|(_, &l)| l > 9) {
        return Err(DataError::format(
            format!("{name}: row {}", i + 1),
            "label",
            "a digit 0..=9",
            l.to_string(),
        ));
    }
    let images = ds.data.iter().map(|v| v / 16.0).collect();
    ImageDataset::new(
        images,
        [ds.n, 1, 8, 8],
        labels,
        (0..10).map(|d| d.to_string()).collect(),
    )
}

/// Loads scikit-learn's `digits.csv.gz` (1797 images of 8x8), see [`parse_digits`].
pub fn load_digits(path: &Path) -> Result<ImageDataset> {
    parse_digits(&read_file(path)?, &path_name(path))
}

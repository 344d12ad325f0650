//! `metalearn adapt`: a trained checkpoint, a labelled support set and unlabelled queries in,
//! predictions out.
//!
//! - Support: a folder with one subfolder of PNG images per class (the subfolder names are
//!   the class names), or a CSV of feature vectors with the label in the last column (or in
//!   the column the run's `data.label_column` names; a header line is detected). For a
//!   regression checkpoint (sinusoid), the CSV's last column is the real target.
//! - Query: a folder of PNG images (searched recursively; names relative to the folder), or a
//!   CSV of feature vectors. A query CSV with one column more than the features carries true
//!   labels, reported beside the predictions.
//!
//! Images and CSV rows are read the way the checkpoint's training data was
//! ([`InputPipeline`], recorded in the checkpoint): an Omniglot model reads Lake's PNGs (black
//! ink on white) as ink = 1 - luma; a Conv-4 checkpoint takes CSV rows of `C * H * W` pixels
//! as images. The output lists, per query, the predicted class and the probabilities (softmax
//! of the method's scores over the support classes), as CSV or JSON.

use super::config::RunConfig;
use super::error::{Result, TrainError};
use super::eval::load_learner;
use super::input::InputPipeline;
use super::tasks::{check_input, load_csv_dataset, InputLayout};
use crate::algorithms::{BackboneConfig, Target};
use crate::data::ColorMode;
use crate::run::report::csv_field;
use crate::tensor::Tensor;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// CSV or JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// `query,[label,]prediction,prob_<class>...`
    Csv,
    /// One JSON object.
    Json,
}

/// One query's prediction.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Prediction {
    /// The query's name (file path relative to the query folder, or `row N`).
    pub query: String,
    /// The true label, when the query data has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The predicted class name (classification) or value (regression).
    pub prediction: String,
    /// Probabilities over [`AdaptResult::classes`] (empty for regression).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub probabilities: Vec<f64>,
}

/// What `adapt` returns.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AdaptResult {
    /// The checkpoint.
    pub checkpoint: PathBuf,
    /// The checkpoint's run.
    pub task: String,
    /// The support classes, in probability order (empty for regression).
    pub classes: Vec<String>,
    /// Support examples read (before `data.augment.support_views`).
    pub support_size: usize,
    /// One entry per query, in query order.
    pub predictions: Vec<Prediction>,
    /// Accuracy (or MSE for regression) when the queries have labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_score: Option<f64>,
    /// Milliseconds of adaptation and prediction (`predict`).
    pub adapt_ms: f64,
    /// Worker threads it ran on.
    pub threads: usize,
}

impl AdaptResult {
    /// The predictions as CSV.
    pub fn to_csv(&self) -> String {
        let has_label = self.predictions.iter().any(|p| p.label.is_some());
        let mut out = String::from("query");
        if has_label {
            out.push_str(",label");
        }
        out.push_str(",prediction");
        for c in &self.classes {
            out.push(',');
            out.push_str(&csv_field(&format!("prob_{c}")));
        }
        out.push('\n');
        for p in &self.predictions {
            out.push_str(&csv_field(&p.query));
            if has_label {
                out.push(',');
                out.push_str(&csv_field(p.label.as_deref().unwrap_or("")));
            }
            out.push(',');
            out.push_str(&csv_field(&p.prediction));
            for v in &p.probabilities {
                out.push_str(&format!(",{v:.6}"));
            }
            out.push('\n');
        }
        out
    }

    /// The result as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("adapt result serialises")
    }

    /// In `format`.
    pub fn render(&self, format: OutputFormat) -> String {
        match format {
            OutputFormat::Csv => self.to_csv(),
            OutputFormat::Json => self.to_json() + "\n",
        }
    }
}

/// Rows of a small CSV (empty lines skipped) and whether the first was a header.
/// A CSV's header (if detected) and data rows.
type CsvRows = (Option<Vec<String>>, Vec<Vec<String>>);

fn read_csv(path: &Path) -> Result<CsvRows> {
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, "reading", e))?;
    let mut rows: Vec<Vec<String>> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split(',')
                .map(|f| f.trim().trim_matches('"').to_string())
                .collect()
        })
        .collect();
    let header = match rows.first() {
        Some(r)
            if r.iter()
                .take(r.len().saturating_sub(1).max(1))
                .any(|f| f.parse::<f64>().is_err()) =>
        {
            Some(rows.remove(0))
        }
        _ => None,
    };
    if rows.is_empty() {
        return Err(TrainError::Input {
            path: path.to_path_buf(),
            reason: "the CSV holds no data rows".into(),
        });
    }
    Ok((header, rows))
}

fn parse_row(path: &Path, row: usize, fields: &[String]) -> Result<Vec<f32>> {
    fields
        .iter()
        .enumerate()
        .map(|(c, f)| {
            match f.parse::<f32>() {
                Ok(v) if v.is_finite() => Ok(v),
                Ok(_) => Err(TrainError::Input {
                    path: path.to_path_buf(),
                    reason: format!(
                        "row {}, column {}: `{f}` is not a finite number (NaN and infinite values cannot be adapted on or predicted)",
                        row + 1,
                        c + 1
                    ),
                }),
                Err(_) => Err(TrainError::Input {
                    path: path.to_path_buf(),
                    reason: format!("row {}, column {}: `{f}` is not a number", row + 1, c + 1),
                }),
            }
        })
        .collect()
}

/// Query examples: values, names and optional true labels.
struct Queries {
    x: Vec<f32>,
    shape: Vec<usize>,
    names: Vec<String>,
    labels: Option<Vec<String>>,
}

/// Errors when `path` is one image file (PNG signature or an image extension): the sets are
/// folders of images or CSVs, and reading an image as CSV text gives a confusing message.
fn reject_single_image(path: &Path, expected: &str) -> Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let mut head = [0u8; 8];
    let png_signature = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok()
        && head == *b"\x89PNG\r\n\x1a\n";
    if png_signature || matches!(ext.as_deref(), Some("png" | "jpg" | "jpeg" | "bmp" | "gif")) {
        return Err(TrainError::Input {
            path: path.to_path_buf(),
            reason: format!("this is a single image file; expected {expected}, or a CSV"),
        });
    }
    Ok(())
}

/// The colour mode and side of the images a run's checkpoint takes, if it takes images.
fn image_input(input: Option<InputPipeline>) -> Option<(ColorMode, usize)> {
    match input {
        Some(InputPipeline::Images { color, size }) => Some((color, size)),
        _ => None,
    }
}

/// A CSV's flat rows as the backbone's example shape: a Conv-4 or ResNet-12 checkpoint takes
/// rows of `channels * size * size` pixels (in `[C, H, W]` order) as images.
fn example_shape(backbone: &BackboneConfig, csv_shape: Vec<usize>) -> Vec<usize> {
    let width: usize = csv_shape.iter().product();
    match backbone.image_input() {
        Some((c, s)) if width == c * s * s => vec![c, s, s],
        _ => csv_shape,
    }
}

/// Every `.png` file below `dir` (any depth; hidden entries skipped), in sorted path order, as
/// `(path relative to root with '/' separators, full path)`: the files `adapt` reads from an
/// image folder.
pub fn png_files(dir: &Path, root: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| TrainError::io(dir, "listing", e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        let hidden = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if p.is_dir() {
            png_files(&p, root, out)?;
        } else if p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("png"))
        {
            let name = p
                .strip_prefix(root)
                .unwrap_or(&p)
                .to_string_lossy()
                .replace('\\', "/");
            out.push((name, p));
        }
    }
    Ok(())
}

fn load_query_images(dir: &Path, color: ColorMode, size: usize) -> Result<Queries> {
    let mut files = Vec::new();
    png_files(dir, dir, &mut files)?;
    if files.is_empty() {
        return Err(TrainError::Input {
            path: dir.to_path_buf(),
            reason: "the query folder holds no PNG images".into(),
        });
    }
    let channels = color.channels();
    let mut x = Vec::with_capacity(files.len() * channels * size * size);
    for (_, f) in &files {
        x.extend(crate::data::load_png_as(f, color, Some((size, size)))?.2);
    }
    Ok(Queries {
        x,
        shape: vec![channels, size, size],
        names: files.into_iter().map(|(n, _)| n).collect(),
        labels: None,
    })
}

fn load_query_csv(path: &Path, width: usize) -> Result<Queries> {
    let (_, rows) = read_csv(path)?;
    let mut x = Vec::with_capacity(rows.len() * width);
    let mut labels = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        if r.len() != width && r.len() != width + 1 {
            return Err(TrainError::Input {
                path: path.to_path_buf(),
                reason: format!(
                    "row {} has {} columns; the checkpoint takes {width} features (plus, optionally, a label column)",
                    i + 1,
                    r.len()
                ),
            });
        }
        x.extend(parse_row(path, i, &r[..width])?);
        if r.len() == width + 1 {
            labels.push(r[width].clone());
        }
    }
    let labels = if labels.len() == rows.len() {
        Some(labels)
    } else {
        None
    };
    Ok(Queries {
        x,
        shape: vec![width],
        names: (1..=rows.len()).map(|i| format!("row {i}")).collect(),
        labels,
    })
}

/// Errors naming the first query whose model outputs are NaN or infinite (no NaN probability
/// or prediction is ever written).
fn check_outputs(checkpoint: &Path, out: &Tensor<f32>, names: &[String]) -> Result<()> {
    let width = out.shape().last().copied().unwrap_or(1).max(1);
    let v = out.data();
    let Some(i) = (0..names.len()).find(|&i| {
        v.get(i * width..(i + 1) * width)
            .is_some_and(|r| r.iter().any(|z| !z.is_finite()))
    }) else {
        return Ok(());
    };
    Err(TrainError::NonFinite {
        path: checkpoint.to_path_buf(),
        reason: format!(
            "the model's outputs for query {} are not finite (NaN or infinite): its weights are too large or the support set holds extreme values; no prediction is written",
            names[i]
        ),
    })
}

fn mlp_width(backbone: &BackboneConfig) -> Option<usize> {
    match backbone {
        BackboneConfig::Mlp(m) => m.sizes.first().copied(),
        BackboneConfig::Conv4(_) | BackboneConfig::ResNet12(_) => None,
    }
}

/// A labelled support set: inputs, example shape, targets and class names (class-major
/// order; no classes for regression).
struct SupportSet {
    x: Vec<f32>,
    shape: Vec<usize>,
    y: Target<f32>,
    classes: Vec<String>,
}

/// Errors when the support or the query set is missing or a single image file.
fn check_sets(support: &Path, query: &Path) -> Result<()> {
    if !support.exists() {
        return Err(TrainError::Input {
            path: support.to_path_buf(),
            reason: "support set not found (expected a folder with one subfolder of PNGs per class, or a CSV)".into(),
        });
    }
    if !query.exists() {
        return Err(TrainError::Input {
            path: query.to_path_buf(),
            reason: "query set not found (expected a folder of PNGs or a CSV)".into(),
        });
    }
    reject_single_image(
        support,
        "a folder with one subfolder of PNG images per class",
    )?;
    reject_single_image(query, "a folder of PNG images")
}

/// A regression support set: a CSV of the inputs, then the target.
fn load_regression_support(cfg: &RunConfig, support: &Path) -> Result<SupportSet> {
    if support.is_dir() {
        return Err(TrainError::Input {
            path: support.to_path_buf(),
            reason: "a regression checkpoint takes a CSV support set (inputs, then the target)"
                .into(),
        });
    }
    let width = mlp_width(&cfg.backbone).unwrap_or(1);
    let (_, rows) = read_csv(support)?;
    let mut x = Vec::new();
    let mut y = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        if r.len() != width + 1 {
            return Err(TrainError::Input {
                path: support.to_path_buf(),
                reason: format!(
                    "row {} has {} columns, expected {width} inputs and the target",
                    i + 1,
                    r.len()
                ),
            });
        }
        let v = parse_row(support, i, r)?;
        x.extend_from_slice(&v[..width]);
        y.push(v[width]);
    }
    let n = y.len();
    Ok(SupportSet {
        x,
        shape: vec![width],
        y: Target::Values(Tensor::from_vec(y, &[n, 1])),
        classes: Vec::new(),
    })
}

/// The labelled examples of a classification support set: a folder with one subfolder of
/// images per class (when the checkpoint takes images), or a CSV.
fn read_class_support(
    cfg: &RunConfig,
    support: &Path,
    images: Option<(ColorMode, usize)>,
) -> Result<crate::data::ImageDataset> {
    if !support.is_dir() {
        return load_csv_dataset(support, cfg.data.label_column.as_deref());
    }
    let nonempty = std::fs::read_dir(support)
        .map_err(|e| TrainError::io(support, "listing", e))?
        .filter_map(|e| e.ok())
        .any(|e| !e.file_name().to_string_lossy().starts_with('.'));
    if !nonempty {
        return Err(TrainError::Input {
            path: support.to_path_buf(),
            reason: "the support folder is empty: expected one subfolder of PNG images per class"
                .into(),
        });
    }
    let Some((color, size)) = images else {
        return Err(TrainError::Input {
            path: support.to_path_buf(),
            reason: "this checkpoint takes feature vectors: give the support set as a CSV".into(),
        });
    };
    let opts = crate::data::ImageFolderOptions {
        color,
        resize: Some((size, size)),
    };
    Ok(crate::data::load_image_folder(support, &opts)?)
}

/// A classification support set: at least 2 classes, at most the checkpoint's head width,
/// the classes present compacted (CSV class ids may have gaps) in class-major order.
fn load_class_support(
    run: &super::eval::LoadedRun,
    checkpoint: &Path,
    support: &Path,
    images: Option<(ColorMode, usize)>,
) -> Result<SupportSet> {
    let cfg = &run.config;
    let ds = read_class_support(cfg, support, images)?;
    let present: Vec<usize> = {
        let mut p: Vec<usize> = ds.labels.clone();
        p.sort_unstable();
        p.dedup();
        p
    };
    let classes: Vec<String> = present.iter().map(|&c| ds.class_names[c].clone()).collect();
    if classes.len() < 2 {
        return Err(TrainError::Input {
            path: support.to_path_buf(),
            reason: format!(
                "the support set has {} class(es); at least 2 are needed",
                classes.len()
            ),
        });
    }
    if let Some(h) = run.head {
        if classes.len() > h {
            return Err(TrainError::TooManyClasses {
                path: checkpoint.to_path_buf(),
                what: format!("the support set {}", support.display()),
                n_way: classes.len(),
                head: h,
            });
        }
    }
    let shape = if support.is_dir() {
        vec![ds.channels, ds.height, ds.width]
    } else {
        example_shape(&cfg.backbone, vec![ds.channels * ds.height * ds.width])
    };
    check_input(cfg, &shape, support)?;
    let mut order: Vec<usize> = (0..ds.n).collect();
    order.sort_by_key(|&i| ds.labels[i]);
    let mut x = Vec::with_capacity(ds.images.len());
    let mut y = Vec::with_capacity(ds.n);
    for &i in &order {
        x.extend_from_slice(ds.image(i));
        y.push(present.binary_search(&ds.labels[i]).expect("present class"));
    }
    Ok(SupportSet {
        x,
        shape,
        y: Target::Classes(y),
        classes,
    })
}

/// The queries: a folder of images (when the checkpoint takes images), or a CSV of as many
/// features as a support example has.
fn load_queries(
    cfg: &RunConfig,
    query: &Path,
    images: Option<(ColorMode, usize)>,
    support_shape: &[usize],
) -> Result<Queries> {
    let q = if query.is_dir() {
        let Some((color, size)) = images else {
            return Err(TrainError::Input {
                path: query.to_path_buf(),
                reason: "this checkpoint takes feature vectors: give the queries as a CSV".into(),
            });
        };
        load_query_images(query, color, size)?
    } else {
        let width: usize = match mlp_width(&cfg.backbone) {
            Some(w) => w,
            None => support_shape.iter().product(),
        };
        let mut q = load_query_csv(query, width)?;
        q.shape = example_shape(&cfg.backbone, q.shape);
        q
    };
    check_input(cfg, &q.shape, query)?;
    Ok(q)
}

/// A batch of `n` examples of `shape` as the learner takes it: flat rows for regression, the
/// backbone's layout otherwise.
fn batch_shape(cfg: &RunConfig, n: usize, shape: &[usize]) -> Vec<usize> {
    if cfg.data.is_regression() {
        vec![n, shape.iter().product()]
    } else {
        InputLayout::of(&cfg.backbone).shape(n, shape)
    }
}

/// Regression predictions, and the query MSE when the queries have targets.
fn regression_predictions(out: &Tensor<f32>, q: &Queries) -> (Vec<Prediction>, Option<f64>) {
    let v = out.to_vec();
    let mut se = 0.0;
    let mut predictions = Vec::with_capacity(q.names.len());
    for (i, name) in q.names.iter().enumerate() {
        let label = q.labels.as_ref().map(|l| l[i].clone());
        if let Some(t) = label.as_ref().and_then(|l| l.parse::<f64>().ok()) {
            se += (v[i] as f64 - t).powi(2);
        }
        predictions.push(Prediction {
            query: name.clone(),
            label,
            prediction: format!("{}", v[i]),
            probabilities: Vec::new(),
        });
    }
    let score = q.labels.is_some().then(|| se / q.names.len().max(1) as f64);
    (predictions, score)
}

/// Class predictions (softmax over the support classes), and the query accuracy when the
/// queries have labels.
fn class_predictions(
    out: &Tensor<f32>,
    q: &Queries,
    classes: &[String],
) -> (Vec<Prediction>, Option<f64>) {
    let n = classes.len();
    let width = out.shape()[1];
    let v = out.to_vec();
    let mut correct = 0;
    let mut predictions = Vec::with_capacity(q.names.len());
    for (i, name) in q.names.iter().enumerate() {
        let row = &v[i * width..i * width + n];
        let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
        let e: Vec<f64> = row.iter().map(|&z| (z as f64 - m).exp()).collect();
        let sum: f64 = e.iter().sum();
        let probs: Vec<f64> = e.iter().map(|z| z / sum).collect();
        let best = (0..n).fold(0, |b, k| if probs[k] > probs[b] { k } else { b });
        let label = q.labels.as_ref().map(|l| l[i].clone());
        if label.as_deref() == Some(classes[best].as_str()) {
            correct += 1;
        }
        predictions.push(Prediction {
            query: name.clone(),
            label,
            prediction: classes[best].clone(),
            probabilities: probs,
        });
    }
    let score = q
        .labels
        .is_some()
        .then(|| correct as f64 / q.names.len().max(1) as f64);
    (predictions, score)
}

/// Adapts the checkpoint's learner to the support set and predicts the queries.
pub fn adapt(checkpoint: &Path, support: &Path, query: &Path) -> Result<AdaptResult> {
    let run = load_learner(checkpoint, None)?;
    let cfg = &run.config;
    let images = image_input(run.input);
    check_sets(support, query)?;
    let s = if cfg.data.is_regression() {
        load_regression_support(cfg, support)?
    } else {
        load_class_support(&run, checkpoint, support, images)?
    };
    let ns = s.y.len();
    let mut q = load_queries(cfg, query, images, &s.shape)?;
    // `data.augment.support_views` = T: each support image and its T - 1 fixed views.
    let (sx, sy) = super::augment::adapt_support(cfg, s.x, s.y, &s.shape)?;
    let support_x = Tensor::from_vec(sx, &batch_shape(cfg, sy.len(), &s.shape));
    let query_shape = batch_shape(cfg, q.names.len(), &q.shape);
    let query_x = Tensor::from_vec(std::mem::take(&mut q.x), &query_shape);

    let clock = crate::run::usage::Stopwatch::start();
    let out = run.learner.predict(&support_x, &sy, &query_x);
    let adapt_ms = clock.millis();

    check_outputs(checkpoint, &out, &q.names)?;
    let (predictions, query_score) = if cfg.data.is_regression() {
        regression_predictions(&out, &q)
    } else {
        class_predictions(&out, &q, &s.classes)
    };
    Ok(AdaptResult {
        checkpoint: checkpoint.to_path_buf(),
        task: cfg.describe(),
        classes: s.classes,
        support_size: ns,
        predictions,
        query_score,
        adapt_ms,
        threads: rayon::current_num_threads(),
    })
}

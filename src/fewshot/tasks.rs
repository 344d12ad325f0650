//! Tasks as tensors: episodes ([`Episode`]) and sinusoid tasks become [`TaskData`], and a
//! [`TaskSource`] holds the train / validation / test data a run config describes.

use super::config::{DatasetKind, RunConfig};
use super::data_options::EpisodeConstraints;
use super::error::{Result, TrainError};
use super::input::InputPipeline;
use crate::algorithms::maml::TaskData;
use crate::algorithms::{BackboneConfig, Target};
use crate::data::{
    seeded_rng, ClassSplit, Episode, EpisodeSampler, EpisodeSet, EpisodeSpec, ImageDataset,
    LabelledData, SinusoidConfig, SinusoidTask,
};
use crate::tensor::Tensor;
use std::path::Path;

/// A dataset behind a trait object.
pub type DynData = dyn LabelledData + Send + Sync;

/// How examples are fed to the backbone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputLayout {
    /// Images `[N, C, H, W]` (Conv-4, ResNet-12).
    Image,
    /// Flat vectors `[N, D]` (MLP).
    Flat,
}

impl InputLayout {
    /// The layout a backbone takes.
    pub fn of(backbone: &BackboneConfig) -> Self {
        match backbone.image_input() {
            Some(_) => InputLayout::Image,
            None => InputLayout::Flat,
        }
    }

    /// The tensor shape of `n` examples of `example_shape`.
    pub fn shape(&self, n: usize, example_shape: &[usize]) -> Vec<usize> {
        match self {
            InputLayout::Flat => vec![n, example_shape.iter().product()],
            InputLayout::Image => {
                let mut s = vec![n];
                match example_shape {
                    [d] => s.extend([1, 1, *d]),
                    [h, w] => s.extend([1, *h, *w]),
                    other => s.extend_from_slice(other),
                }
                s
            }
        }
    }
}

/// An episode as a classification task (labels `0..N`).
pub fn episode_task(ep: Episode, layout: &InputLayout) -> TaskData<f32> {
    let ss = layout.shape(ep.support_y.len(), &ep.example_shape);
    let qs = layout.shape(ep.query_y.len(), &ep.example_shape);
    TaskData {
        support_x: Tensor::from_vec(ep.support_x, &ss),
        support_y: Target::Classes(ep.support_y),
        query_x: Tensor::from_vec(ep.query_x, &qs),
        query_y: Target::Classes(ep.query_y),
        classes: Some(ep.indices.classes),
    }
}

/// A sinusoid task as a regression task (inputs and targets `[K, 1]`, `[Q, 1]`).
pub fn sinusoid_task(t: &SinusoidTask) -> TaskData<f32> {
    TaskData::from(t)
}

/// Sinusoid task `i` of the fixed set drawn from `seed` (ChaCha8 stream `i`).
pub fn fixed_sinusoid(dist: &SinusoidConfig, seed: u64, i: usize) -> SinusoidTask {
    let mut rng = seeded_rng(seed);
    rng.set_stream(i as u64);
    dist.sample_task(&mut rng)
}

/// Which part of the classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// Meta-training classes.
    Train,
    /// Validation classes.
    Val,
    /// Test classes.
    Test,
}

impl Split {
    fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "validation",
            Split::Test => "test",
        }
    }
}

/// Class-disjoint train / validation / test data with the episode shape.
pub struct EpisodicData {
    /// Meta-training classes.
    pub train: Box<DynData>,
    /// Validation classes.
    pub val: Box<DynData>,
    /// Test classes.
    pub test: Box<DynData>,
    /// N, K, Q of validation, test and `eval` episodes (`data.n_way`, `k_shot`, `q_query`).
    pub spec: EpisodeSpec,
    /// N, K, Q of meta-training episodes (`data.train_n_way`, `k_shot`, `data.train_q_query`;
    /// equal to `spec` unless a config sets them).
    pub train_spec: EpisodeSpec,
    /// Tensor layout.
    pub layout: InputLayout,
    /// The episode constraints of the train, validation and test splits (`within_alphabet`,
    /// `disjoint_drawers`; none by default).
    pub constraints: Box<[EpisodeConstraints; 3]>,
    /// `[data.augment]`: training episodes augmented, validation / test support views.
    pub augment: Option<super::augment::Augment>,
}

/// Where a run's tasks come from.
pub enum TaskSource {
    /// Sinusoid regression.
    Sinusoid(SinusoidConfig),
    /// N-way K-shot classification episodes.
    Episodic(EpisodicData),
}

/// A fixed list of tasks: episode indices, or sinusoid tasks by seed.
pub enum FixedTasks {
    /// Episodes of a split.
    Episodes(EpisodeSet, Split),
    /// `count` sinusoid tasks of `seed`.
    Sinusoid {
        /// The seed.
        seed: u64,
        /// How many.
        count: usize,
    },
}

impl FixedTasks {
    /// The number of tasks.
    pub fn len(&self) -> usize {
        match self {
            FixedTasks::Episodes(s, _) => s.len(),
            FixedTasks::Sinusoid { count, .. } => *count,
        }
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn csv_has_header(path: &Path) -> Result<bool> {
    let bytes = std::fs::read(path).map_err(|e| TrainError::io(path, "reading", e))?;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(1 << 16)]).into_owned();
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    // A header has a non-numeric field among the feature columns (all but the last).
    let fields: Vec<&str> = first.split(',').map(str::trim).collect();
    Ok(fields
        .iter()
        .take(fields.len().saturating_sub(1).max(1))
        .any(|f| f.parse::<f64>().is_err()))
}

/// Loads a CSV of feature vectors and one label column as a dataset of `[1, 1, D]` examples.
/// `label_column`: a header name (the CSV then needs a header); `None`: the last column, with
/// a header detected when a feature field of the first line is not a number.
pub fn load_csv_dataset(path: &Path, label_column: Option<&str>) -> Result<ImageDataset> {
    use crate::data::{load_feature_csv, CsvOptions, LabelColumns};
    let opts = match label_column {
        Some(name) => CsvOptions {
            labels: LabelColumns::Names(vec![name.to_string()]),
            has_header: true,
            delimiter: ',',
        },
        None => CsvOptions {
            labels: LabelColumns::Last(1),
            has_header: csv_has_header(path)?,
            delimiter: ',',
        },
    };
    let m = load_feature_csv(path, &opts)?;
    let d = m.example_len();
    let labels = m.labels.first().cloned().unwrap_or_default();
    let names = m.class_names.first().cloned().unwrap_or_default();
    Ok(ImageDataset::new(m.data, [m.n, 1, 1, d], labels, names)?)
}

/// Checks that the backbone takes the data's examples.
pub fn check_input(cfg: &RunConfig, example_shape: &[usize], origin: &Path) -> Result<()> {
    match &cfg.backbone {
        BackboneConfig::Mlp(m) => {
            let d: usize = example_shape.iter().product();
            if m.sizes.first() != Some(&d) {
                return Err(TrainError::Input {
                    path: origin.to_path_buf(),
                    reason: format!(
                        "examples have {d} values but `backbone.sizes[0]` = {} (the MLP's input width)",
                        m.sizes.first().copied().unwrap_or(0)
                    ),
                });
            }
        }
        BackboneConfig::Conv4(_) | BackboneConfig::ResNet12(_) => {
            let (channels, size) = cfg.backbone.image_input().unwrap_or_default();
            let ok =
                matches!(example_shape, [ch, h, w] if *ch == channels && *h == size && *w == size);
            if !ok {
                return Err(TrainError::Input {
                    path: origin.to_path_buf(),
                    reason: format!(
                        "examples have shape {example_shape:?} but the {} backbone takes [{channels}, {size}, {size}] \
                         (`backbone.in_channels`, `backbone.image_size`)",
                        paper_name(&cfg.backbone)
                    ),
                });
            }
        }
    }
    Ok(())
}

/// A backbone as papers write it (`Conv-4`, `ResNet-12`, `MLP`), for messages.
fn paper_name(backbone: &BackboneConfig) -> &'static str {
    match backbone {
        BackboneConfig::Conv4(_) => "Conv-4",
        BackboneConfig::ResNet12(_) => "ResNet-12",
        BackboneConfig::Mlp(_) => "MLP",
    }
}

fn split_dataset(all: ImageDataset, cfg: &RunConfig) -> Result<[Box<DynData>; 3]> {
    let (tr, va) = cfg.data.split_fractions();
    let s = ClassSplit::random(all.num_classes(), tr, va, cfg.data.split_seed)?;
    Ok([
        super::data_options::training_classes(&cfg.data, all.select_classes(&s.train)?)?,
        Box::new(all.select_classes(&s.val)?),
        Box::new(all.select_classes(&s.test)?),
    ])
}

impl TaskSource {
    /// Loads the data a config describes (all three splits), read the way the config trains
    /// ([`InputPipeline::for_config`]).
    pub fn load(cfg: &RunConfig) -> Result<Self> {
        Self::load_as(cfg, InputPipeline::for_config(cfg))
    }

    /// Loads the data a config describes, reading image folders with `input`'s colour mode
    /// (`eval` passes the checkpoint's, so a model trained on Omniglot's ink reads a folder
    /// of Lake's PNGs as ink).
    pub fn load_as(cfg: &RunConfig, input: Option<InputPipeline>) -> Result<Self> {
        let d = &cfg.data;
        if d.is_regression() {
            return Ok(TaskSource::Sinusoid(d.sinusoid()));
        }
        let path = d.data_path()?;
        let size = cfg.image_size();
        let channels = cfg.backbone.image_input().map_or(1, |(c, _)| c);
        let mut constraints: [EpisodeConstraints; 3] = Default::default();
        let [train, val, test]: [Box<DynData>; 3] = match d.dataset {
            DatasetKind::Omniglot => {
                if channels != 1 {
                    return Err(TrainError::value(
                        "backbone.in_channels",
                        "must be 1 for Omniglot (grayscale)",
                    ));
                }
                let size = size.unwrap_or(crate::data::OMNIGLOT_SIZE);
                let (splits, c) = super::data_options::load_omniglot_splits(cfg, &path, size)?;
                constraints = c;
                splits
            }
            DatasetKind::ImageFolder => {
                use crate::data::{load_image_folder, ColorMode, ImageFolderOptions};
                let color = match input {
                    Some(InputPipeline::Images { color, .. }) => color,
                    _ if channels == 3 => ColorMode::Rgb,
                    _ => ColorMode::Grayscale,
                };
                let opts = ImageFolderOptions {
                    color,
                    resize: size.map(|s| (s, s)),
                };
                split_dataset(load_image_folder(&path, &opts)?, cfg)?
            }
            DatasetKind::Csv => {
                split_dataset(load_csv_dataset(&path, d.label_column.as_deref())?, cfg)?
            }
            DatasetKind::Sinusoid => unreachable!("handled above"),
        };
        check_input(cfg, &train.example_shape(), &path)?;
        let augment = super::augment::for_examples(cfg, &train.example_shape())?;
        let spec = EpisodeSpec::new(d.n_way(), d.k_shot, d.q_query)?;
        let train_spec = EpisodeSpec::new(d.train_n_way(), d.k_shot, d.train_q_query())?;
        Ok(TaskSource::Episodic(EpisodicData {
            train,
            val,
            test,
            spec,
            train_spec,
            layout: InputLayout::of(&cfg.backbone),
            constraints: Box::new(constraints),
            augment,
        }))
    }

    /// The episode sampler of a split (`None` for sinusoid tasks), with the split's episode
    /// constraints; errors name the split when it has too few classes or examples for N-way
    /// K-shot Q-query episodes, and the key of a constraint it cannot meet.
    pub fn sampler(&self, split: Split) -> Result<Option<EpisodeSampler<'_, DynData>>> {
        match self {
            TaskSource::Sinusoid(_) => Ok(None),
            TaskSource::Episodic(e) => {
                let (data, constraints): (&DynData, _) = match split {
                    Split::Train => (e.train.as_ref(), &e.constraints[0]),
                    Split::Val => (e.val.as_ref(), &e.constraints[1]),
                    Split::Test => (e.test.as_ref(), &e.constraints[2]),
                };
                let sampler = EpisodeSampler::new(data, e.spec).map_err(|err| {
                    TrainError::value(
                        "data",
                        format!(
                            "the {} split ({} classes) cannot give {}-way {}-shot episodes with {} queries: {err}",
                            split.name(),
                            data.num_classes(),
                            e.spec.n_way,
                            e.spec.k_shot,
                            e.spec.q_query
                        ),
                    )
                })?;
                constraints.apply(sampler, split.name()).map(Some)
            }
        }
    }

    /// The number of classes of the training split (`None` for sinusoid tasks).
    pub fn train_classes(&self) -> Option<usize> {
        match self {
            TaskSource::Sinusoid(_) => None,
            TaskSource::Episodic(e) => Some(e.train.num_classes()),
        }
    }

    /// The sampler of meta-training episodes: the training classes in the training shape
    /// ([`EpisodicData::train_spec`]; `None` for sinusoid tasks). Errors name
    /// `data.train_n_way` (with the number of training classes) when it exceeds the classes,
    /// the split when it has too few examples per class, and the key of an episode constraint
    /// (`within_alphabet`, `disjoint_drawers`) the training shape cannot meet.
    pub fn train_sampler(&self) -> Result<Option<EpisodeSampler<'_, DynData>>> {
        let e = match self {
            TaskSource::Sinusoid(_) => return Ok(None),
            TaskSource::Episodic(e) if e.train_spec == e.spec => return self.sampler(Split::Train),
            TaskSource::Episodic(e) => e,
        };
        let (spec, classes) = (e.train_spec, e.train.num_classes());
        if spec.n_way > classes {
            return Err(TrainError::value(
                "data.train_n_way",
                format!(
                    "= {} is out of range: expected an integer in [2, {classes}], the number of \
                     classes of the training split",
                    spec.n_way
                ),
            ));
        }
        let sampler = EpisodeSampler::new(e.train.as_ref(), spec).map_err(|err| {
            TrainError::value(
                "data.train_q_query",
                format!(
                    "= {}: the train split ({classes} classes) cannot give {}-way {}-shot \
                         training episodes with {} queries per class: {err}",
                    spec.q_query, spec.n_way, spec.k_shot, spec.q_query
                ),
            )
        })?;
        e.constraints[0].apply(sampler, "train").map(Some)
    }

    /// A meta-batch of training tasks drawn from `rng`; with `[data.augment]`, their images
    /// are augmented from a generator derived from `rng`'s seed and stream, without reading
    /// `rng` ([`super::augment::augment_rng`]).
    pub fn train_batch(
        &self,
        sampler: Option<&EpisodeSampler<'_, DynData>>,
        rng: &mut rand_chacha::ChaCha8Rng,
        batch: usize,
    ) -> Vec<TaskData<f32>> {
        match (self, sampler) {
            (TaskSource::Sinusoid(dist), _) => dist
                .sample_batch(rng, batch)
                .iter()
                .map(sinusoid_task)
                .collect(),
            (TaskSource::Episodic(e), Some(s)) => {
                let mut episodes = s.sample_batch(rng, batch);
                super::augment::augment_batch(e.augment.as_ref(), &mut episodes, rng);
                episodes
                    .into_iter()
                    .map(|ep| episode_task(ep, &e.layout))
                    .collect()
            }
            (TaskSource::Episodic(_), None) => {
                panic!("train_batch: episodic data needs its sampler")
            }
        }
    }

    /// `count` fixed tasks of a split drawn from `seed` (the same for every method).
    pub fn fixed(&self, split: Split, count: usize, seed: u64) -> Result<FixedTasks> {
        match self {
            // Validation and test sinusoid tasks differ by their seeds only
            // (`train.val_seed`, `eval.seed`).
            TaskSource::Sinusoid(_) => Ok(FixedTasks::Sinusoid { seed, count }),
            TaskSource::Episodic(_) => {
                let s = self.sampler(split)?.expect("episodic");
                Ok(FixedTasks::Episodes(
                    EpisodeSet::from_sampler(&s, count, seed),
                    split,
                ))
            }
        }
    }

    /// Task `i` of a fixed list (with `data.augment.support_views` = T > 1, each support
    /// image followed by its T - 1 fixed views: K * T support examples per class).
    pub fn fixed_task(&self, fixed: &FixedTasks, i: usize) -> Result<TaskData<f32>> {
        match (self, fixed) {
            (TaskSource::Sinusoid(dist), FixedTasks::Sinusoid { seed, .. }) => {
                Ok(sinusoid_task(&fixed_sinusoid(dist, *seed, i)))
            }
            (TaskSource::Episodic(e), FixedTasks::Episodes(set, split)) => {
                let data: &DynData = match split {
                    Split::Train => e.train.as_ref(),
                    Split::Val => e.val.as_ref(),
                    Split::Test => e.test.as_ref(),
                };
                let ep = set.episode(data, i)?;
                let ep = super::augment::support_views(e.augment.as_ref(), ep)?;
                Ok(episode_task(ep, &e.layout))
            }
            _ => Err(TrainError::value(
                "data",
                "fixed tasks of another kind of data",
            )),
        }
    }
}

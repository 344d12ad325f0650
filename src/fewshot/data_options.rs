//! The `[data]` options that shape classification episodes beyond N, K and Q: Omniglot's
//! named class splits (`split = "vinyals"` or `"lake"`), rotation classes
//! (`rotation_classes`), within-alphabet episodes (`within_alphabet`) and drawer-disjoint
//! support and query (`disjoint_drawers`).
//!
//! ```toml
//! [data]
//! dataset = "omniglot"
//! split = "lake"              # default "vinyals"; image_folder / csv: [train, val] fractions
//! rotation_classes = false    # lake / image_folder: add 3 quarter turns of each train class
//! within_alphabet = true      # all N classes of an episode from one alphabet
//! train_within_alphabet = false  # default: within_alphabet; false: training mixes alphabets
//! disjoint_drawers = true     # K support drawers shared by the classes, queries by others
//! ```
//!
//! # The Lake split
//! Lake et al. (2015) train on the 964 characters of the 30 background alphabets and test on
//! the 659 characters of the 20 evaluation alphabets. The validation classes are whole
//! background alphabets held out of training ([`crate::data::LAKE_VALIDATION_ALPHABETS`]: Balinese,
//! Early Aramaic, Futurama, Greek, Korean; 136 characters), so that within-alphabet validation
//! episodes, like the test ones, contrast the characters of an alphabet the model never saw.
//!
//! # Within-alphabet episodes
//! Each episode picks one alphabet uniformly among the alphabets of the split that have at
//! least N characters, then N of its characters uniformly (an alphabet in a quarter turn is
//! an alphabet of its own, so an episode never mixes rotations). With the option off, the
//! episodes are exactly those of earlier versions.
//!
//! # Disjoint drawers
//! Omniglot's drawing number `JJ` (1..=20) is the person who drew it. Each episode picks K of
//! the 20 drawers: support shot `s` of every class is drawn by drawer `s`, and every query by
//! one of the other drawers (as in Lake's one-shot runs, where the training images of a run
//! come from one drawer and the test images from another).

use super::config::{DataConfig, DatasetKind, RunConfig};
use super::error::{Result, TrainError};
use super::tasks::DynData;
use crate::data::omniglot::{load_omniglot_sized, DRAWINGS_PER_CHARACTER};
use crate::data::{
    load_vinyals_split, EpisodeSampler, ImageDataset, LakeSplits, OmniglotStructure, RotatedDataset,
};
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::path::Path;
use std::sync::Arc;

/// `data.split`: a named split (Omniglot) or the `[train, validation]` class fractions
/// (`image_folder`, `csv`). In TOML either a string or a two-number array.
#[derive(Clone, Debug, PartialEq)]
pub enum DataSplit {
    /// A named class split: `"vinyals"` or `"lake"` (checked by [`RunConfig::validate`]).
    Named(String),
    /// The fractions of the classes for training and validation (the rest is test).
    Fractions(f64, f64),
}

/// The fractions `image_folder` and `csv` split their classes by when `data.split` is absent.
pub const DEFAULT_SPLIT_FRACTIONS: (f64, f64) = (0.6, 0.2);

/// The names `data.split` accepts for Omniglot.
pub const OMNIGLOT_SPLIT_NAMES: [&str; 2] = ["vinyals", "lake"];

impl Serialize for DataSplit {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            DataSplit::Named(n) => s.serialize_str(n),
            DataSplit::Fractions(a, b) => (a, b).serialize(s),
        }
    }
}

struct DataSplitVisitor;

impl<'de> Visitor<'de> for DataSplitVisitor {
    type Value = DataSplit;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(
            "a split name (\"vinyals\" or \"lake\" for omniglot) or a pair [train, validation] \
             of class fractions (image_folder, csv)",
        )
    }

    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<DataSplit, E> {
        Ok(DataSplit::Named(v.to_string()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<DataSplit, A::Error> {
        let a = seq
            .next_element::<f64>()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let b = seq
            .next_element::<f64>()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(3, &self));
        }
        Ok(DataSplit::Fractions(a, b))
    }
}

impl<'de> Deserialize<'de> for DataSplit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(DataSplitVisitor)
    }
}

/// Omniglot's class splits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OmniglotSplit {
    /// Vinyals et al. (2016): rotation classes of all 50 alphabets, `splits/vinyals/*.txt`.
    Vinyals,
    /// Lake et al. (2015): background alphabets for training (and validation), evaluation
    /// alphabets for test ([`LakeSplits`]).
    Lake,
}

impl DataConfig {
    /// The Omniglot split `data.split` names (Vinyals' when absent or not a known name).
    pub fn omniglot_split(&self) -> OmniglotSplit {
        match &self.split {
            Some(DataSplit::Named(n)) if n == "lake" => OmniglotSplit::Lake,
            _ => OmniglotSplit::Vinyals,
        }
    }

    /// The `[train, validation]` class fractions of `image_folder` and `csv` (default
    /// [`DEFAULT_SPLIT_FRACTIONS`]).
    pub fn split_fractions(&self) -> (f64, f64) {
        match self.split {
            Some(DataSplit::Fractions(a, b)) => (a, b),
            _ => DEFAULT_SPLIT_FRACTIONS,
        }
    }

    /// Whether the training classes come in four quarter turns: always for Omniglot's Vinyals
    /// split, else `rotation_classes` (default false).
    pub fn rotation_classes(&self) -> bool {
        let vinyals = self.dataset == DatasetKind::Omniglot
            && self.omniglot_split() == OmniglotSplit::Vinyals;
        vinyals || self.rotation_classes.unwrap_or(false)
    }

    /// The canonical form every loaded config is kept in (so that configs and the configs
    /// stored in checkpoints compare equal when they mean the same): `image_folder`, `csv`
    /// and `sinusoid` get their split fractions written out (as every earlier version
    /// stored them), and Omniglot drops a pair of fractions, which earlier versions stored as
    /// the unused default of every config, and the name of its default split, `"vinyals"`.
    pub fn normalize(&mut self) {
        match (self.dataset, &self.split) {
            (DatasetKind::Omniglot, Some(DataSplit::Fractions(..))) => self.split = None,
            (DatasetKind::Omniglot, Some(DataSplit::Named(n))) if n == "vinyals" => {
                self.split = None
            }
            (DatasetKind::Omniglot, _) | (_, Some(_)) => {}
            (_, None) => {
                let (a, b) = DEFAULT_SPLIT_FRACTIONS;
                self.split = Some(DataSplit::Fractions(a, b));
            }
        }
    }

    /// A short description of the non-default episode options (`None` when all are the
    /// defaults), e.g. `lake split, within-alphabet, disjoint drawers`.
    pub fn episode_options_words(&self) -> Option<String> {
        let mut words = Vec::new();
        if self.dataset == DatasetKind::Omniglot && self.omniglot_split() == OmniglotSplit::Lake {
            words.push("lake split");
        }
        let vinyals = self.dataset == DatasetKind::Omniglot
            && self.omniglot_split() == OmniglotSplit::Vinyals;
        if self.rotation_classes == Some(true) && !vinyals {
            words.push("rotation classes");
        }
        match (self.within_alphabet, self.train_within_alphabet()) {
            (true, true) => words.push("within-alphabet"),
            (true, false) => words.push("within-alphabet evaluation"),
            (false, true) => words.push("within-alphabet training"),
            (false, false) => {}
        }
        if self.disjoint_drawers {
            words.push("disjoint drawers");
        }
        (!words.is_empty()).then(|| words.join(", "))
    }
}

/// Checks `data.split`: a known name for Omniglot, a pair for the others.
fn validate_split(d: &DataConfig) -> Result<()> {
    match (&d.split, d.dataset) {
        (Some(DataSplit::Named(n)), DatasetKind::Omniglot) => {
            if OMNIGLOT_SPLIT_NAMES.contains(&n.as_str()) {
                Ok(())
            } else {
                Err(TrainError::value(
                    "data.split",
                    format!("= {n:?} is not an Omniglot split: expected \"vinyals\" or \"lake\""),
                ))
            }
        }
        (Some(DataSplit::Named(n)), k) => Err(TrainError::value(
            "data.split",
            format!(
                "= {n:?}: dataset `{}` has no named splits (only `omniglot` has: \"vinyals\", \
                 \"lake\"); give the class fractions, e.g. split = [0.6, 0.2]",
                k.name()
            ),
        )),
        (Some(DataSplit::Fractions(a, b)), DatasetKind::Omniglot) => Err(TrainError::value(
            "data.split",
            format!(
                "= [{a}, {b}]: Omniglot's splits are named, not fractions: expected \
                 split = \"vinyals\" (the default) or split = \"lake\""
            ),
        )),
        _ => Ok(()),
    }
}

/// Checks `rotation_classes`, `within_alphabet`, `train_within_alphabet` and
/// `disjoint_drawers` against the dataset
/// and the split.
pub(super) fn validate_episode_options(d: &DataConfig) -> Result<()> {
    validate_split(d)?;
    let omniglot = d.dataset == DatasetKind::Omniglot;
    let vinyals = omniglot && d.omniglot_split() == OmniglotSplit::Vinyals;
    match (d.rotation_classes, d.dataset) {
        (Some(false), DatasetKind::Omniglot) if vinyals => {
            return Err(TrainError::value(
                "data.rotation_classes",
                "= false: the Vinyals split's classes are rotation classes by definition; \
                 remove the key, or use split = \"lake\" for unrotated classes",
            ))
        }
        (Some(true), DatasetKind::Csv | DatasetKind::Sinusoid) => {
            return Err(TrainError::value(
                "data.rotation_classes",
                format!(
                    "= true: dataset `{}` has no images to rotate (only `omniglot` and \
                     `image_folder` have)",
                    d.dataset.name()
                ),
            ))
        }
        _ => {}
    }
    for (key, on) in [
        ("data.within_alphabet", d.within_alphabet),
        ("data.train_within_alphabet", d.train_within_alphabet()),
        ("data.disjoint_drawers", d.disjoint_drawers),
    ] {
        if on && !omniglot {
            let what = if key != "data.disjoint_drawers" {
                "alphabets (groups of classes)"
            } else {
                "drawer ids"
            };
            return Err(TrainError::value(
                key,
                format!(
                    "= true: dataset `{}` has no {what}; only `omniglot` has",
                    d.dataset.name()
                ),
            ));
        }
    }
    let q_query = d.q_query.max(d.train_q_query());
    if d.disjoint_drawers && d.k_shot + q_query > DRAWINGS_PER_CHARACTER {
        return Err(TrainError::value(
            "data.disjoint_drawers",
            format!(
                "= true needs k_shot + q_query <= {DRAWINGS_PER_CHARACTER} (Omniglot's drawers; \
                 q_query: the larger of q_query and train_q_query), found {} + {q_query}",
                d.k_shot
            ),
        ));
    }
    Ok(())
}

/// The episode constraints of one split: filled only where the config asks for them.
#[derive(Clone, Debug, Default)]
pub struct EpisodeConstraints {
    /// `within_alphabet`: the group (alphabet) of each class and each group's name.
    pub groups: Option<(Vec<usize>, Vec<String>)>,
    /// `disjoint_drawers`: the drawer of each example.
    pub drawers: Option<Vec<u32>>,
}

impl EpisodeConstraints {
    /// The constraints `d` asks for, read from the Omniglot structure of a split.
    fn of(d: &DataConfig, within_alphabet: bool, s: OmniglotStructure) -> Self {
        EpisodeConstraints {
            groups: within_alphabet.then_some((s.class_group, s.group_names)),
            drawers: d.disjoint_drawers.then_some(s.example_drawer),
        }
    }

    /// `sampler` restricted by the constraints; errors name the config key and the split.
    pub fn apply<'a>(
        &self,
        sampler: EpisodeSampler<'a, DynData>,
        split: &str,
    ) -> Result<EpisodeSampler<'a, DynData>> {
        let n = sampler.spec().n_way;
        let sampler = match &self.groups {
            None => sampler,
            Some((groups, names)) => sampler.group_by(groups).map_err(|_| {
                let mut sizes = vec![0usize; names.len()];
                for &g in groups {
                    if let Some(s) = sizes.get_mut(g) {
                        *s += 1;
                    }
                }
                TrainError::value(
                    "data.within_alphabet",
                    format!(
                        "= true: the {split} split has no alphabet with N = {n} characters (its \
                         {} alphabets have at most {}): lower data.n_way or set \
                         within_alphabet = false",
                        names.len(),
                        sizes.iter().max().unwrap_or(&0)
                    ),
                )
            })?,
        };
        match &self.drawers {
            None => Ok(sampler),
            Some(drawers) => sampler.disjoint_drawers(drawers).map_err(|e| {
                let why = match e {
                    crate::data::DataError::InvalidArgument(m) => m,
                    e => e.to_string(),
                };
                TrainError::value(
                    "data.disjoint_drawers",
                    format!("= true: the {split} split cannot give such episodes: {why}"),
                )
            }),
        }
    }
}

/// The three splits of a run and their episode constraints.
pub(super) type LoadedSplits = ([Box<DynData>; 3], [EpisodeConstraints; 3]);

/// Loads Omniglot from `path` at `size x size` and builds the split `cfg` names (train,
/// validation, test), with the structure its episode options need.
pub(super) fn load_omniglot_splits(
    cfg: &RunConfig,
    path: &Path,
    size: usize,
) -> Result<LoadedSplits> {
    let d = &cfg.data;
    let o = load_omniglot_sized(path, size)?;
    let (splits, characters, drawings) = match d.omniglot_split() {
        OmniglotSplit::Vinyals => {
            let base = Arc::new(o.images);
            let split_dir = path.join("splits").join("vinyals");
            let load = |f: &str| load_vinyals_split(&base, &split_dir.join(f));
            let splits = [load("train.txt")?, load("val.txt")?, load("test.txt")?];
            (splits, o.characters, o.drawings)
        }
        OmniglotSplit::Lake => {
            let l = LakeSplits::new(o, d.rotation_classes())?;
            ([l.train, l.val, l.test], l.characters, l.drawings)
        }
    };
    let mut constraints: [EpisodeConstraints; 3] = Default::default();
    if d.within_alphabet || d.train_within_alphabet() || d.disjoint_drawers {
        let within = [
            d.train_within_alphabet(),
            d.within_alphabet,
            d.within_alphabet,
        ];
        for ((c, s), within) in constraints.iter_mut().zip(&splits).zip(within) {
            let structure = OmniglotStructure::of(s, &characters, &drawings)?;
            *c = EpisodeConstraints::of(d, within, structure);
        }
    }
    let [train, val, test] = splits;
    Ok((
        [Box::new(train), Box::new(val), Box::new(test)],
        constraints,
    ))
}

/// The training classes of an image folder, in four quarter turns each when
/// `rotation_classes` is set (class `4 * c + q` is class `c` turned `q` times
/// counter-clockwise); an error naming the key when the images are not square.
pub(super) fn training_classes(d: &DataConfig, train: ImageDataset) -> Result<Box<DynData>> {
    if !d.rotation_classes() {
        return Ok(Box::new(train));
    }
    let (h, w) = (train.height, train.width);
    RotatedDataset::all_rotations(Arc::new(train))
        .map(|r| Box::new(r) as Box<DynData>)
        .map_err(|e| {
            TrainError::value(
                "data.rotation_classes",
                format!(
                    "= true needs square images ({h}x{w} found; set data.image_size or \
                     backbone.image_size to resize them): {e}"
                ),
            )
        })
}

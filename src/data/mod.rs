//! Datasets and task samplers for meta-learning, independent of the tensor engine.
//!
//! - Loaders ([`load_omniglot`], [`load_omniglot_pngs`], [`load_vinyals`], [`load_lake`],
//!   [`load_mnist`], [`load_fashion_mnist`], [`load_digits`], [`load_image_folder`],
//!   [`load_feature_csv`])
//!   return an [`ImageDataset`] / [`MultiLabelDataset`] or a typed [`DataError`].
//! - In-memory parsers for fuzzing and embedding: [`parse_idx`], [`parse_npy`], [`parse_npz`].
//! - Tasks: the sinusoid family ([`SinusoidConfig`]) and N-way K-shot episodes
//!   ([`EpisodeSampler`], [`EpisodeSet`], [`ClassSplit`]).
//! - Augmentation: random affine transforms of images and fixed support views
//!   ([`augment`], [`AugmentConfig`]).
//! - Tools: [`inspect()`] and the download registry ([`download::registry`],
//!   [`verify_and_unpack`]).
//!
//! Data lives in `$METALEARN_DATA`, by default `../shared/data` next to the crate
//! ([`default_data_dir`]).

pub mod augment;
pub mod dataset;
pub mod download;
pub mod episode;
pub mod error;
pub mod idx;
pub mod image;
pub mod image_folder;
pub mod inspect;
pub mod multi_digit;
pub mod npy;
pub mod omniglot;
pub mod sinusoid;
pub mod tabular;

use std::path::PathBuf;

pub use augment::{AffineParams, AugmentConfig, ImageShape};
pub use dataset::{
    ClassIndex, ImageDataset, LabelColumn, LabelledData, MultiLabelDataset, TrainTest,
};
pub use download::{
    dataset_info, download, registry, sha256_file, verify_and_unpack, DownloadReport,
};
pub use episode::{
    seeded_rng, ClassSplit, Episode, EpisodeIndices, EpisodeSampler, EpisodeSet, EpisodeSpec,
};
pub use error::{DataError, Result};
pub use idx::{
    find_idx_file, load_fashion_mnist, load_idx_pair, load_mnist, parse_idx, read_idx, IdxArray,
    IdxType,
};
pub use image::{decode_png, rotate90, BoxResizer};
pub use image_folder::{load_image_folder, load_png_as, ColorMode, ImageFolderOptions};
pub use inspect::inspect;
pub use multi_digit::{build_multi, MultiDigitOptions, MultiDigitSet};
pub use npy::{parse_npy, parse_npz, NpyArray, NpyDtype, NpyHeader, Npz};
pub use omniglot::{
    load_lake, load_omniglot, load_omniglot_npz, load_omniglot_pngs, load_vinyals,
    load_vinyals_split, LakeSplits, Omniglot, OmniglotCharacter, OmniglotSet, OmniglotStructure,
    RotatedDataset, VinyalsSplits, LAKE_VALIDATION_ALPHABETS, OMNIGLOT_SIZE,
};
pub use sinusoid::{SinusoidConfig, SinusoidTask};
pub use tabular::{
    load_digits, load_feature_csv, parse_digits, parse_feature_csv, CsvOptions, LabelColumns,
};

/// The environment variable naming the data folder.
pub const DATA_ENV: &str = "METALEARN_DATA";

/// The data folder: `$METALEARN_DATA` if set, else `../shared/data` relative to the crate root.
pub fn default_data_dir() -> PathBuf {
    match std::env::var_os(DATA_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("shared")
            .join("data"),
    }
}

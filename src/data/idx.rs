//! IDX files (MNIST, Fashion-MNIST), raw or gzip-compressed, and the MNIST-style loaders.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use rayon::prelude::*;

use super::dataset::{ImageDataset, TrainTest};
use super::error::{open_regular_file, path_name, DataError, Result};

/// The two bytes that start every gzip stream.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The largest decompressed size accepted from a gzip file (4 GiB).
const MAX_DECOMPRESSED: u64 = 4 << 30;

/// Element types of IDX files (third byte of the magic number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdxType {
    /// `0x08`: unsigned byte.
    U8,
    /// `0x09`: signed byte.
    I8,
    /// `0x0B`: big-endian i16.
    I16,
    /// `0x0C`: big-endian i32.
    I32,
    /// `0x0D`: big-endian f32.
    F32,
    /// `0x0E`: big-endian f64.
    F64,
}

impl IdxType {
    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0x08 => IdxType::U8,
            0x09 => IdxType::I8,
            0x0B => IdxType::I16,
            0x0C => IdxType::I32,
            0x0D => IdxType::F32,
            0x0E => IdxType::F64,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            IdxType::U8 | IdxType::I8 => 1,
            IdxType::I16 => 2,
            IdxType::I32 | IdxType::F32 => 4,
            IdxType::F64 => 8,
        }
    }

    /// The type code of the magic number.
    pub fn code(self) -> u8 {
        match self {
            IdxType::U8 => 0x08,
            IdxType::I8 => 0x09,
            IdxType::I16 => 0x0B,
            IdxType::I32 => 0x0C,
            IdxType::F32 => 0x0D,
            IdxType::F64 => 0x0E,
        }
    }
}

/// A parsed IDX array: element type, dimensions and the raw (big-endian) element bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// The element type.
    pub dtype: IdxType,
    /// The dimensions (first = number of items).
    pub dims: Vec<usize>,
    /// The element bytes, row-major, big-endian.
    pub data: Vec<u8>,
}

impl IdxArray {
    /// The 32-bit magic number of this array's header.
    pub fn magic(&self) -> u32 {
        (u32::from(self.dtype.code()) << 8) | self.dims.len() as u32
    }

    /// The elements as `f64`, in order.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        let d = &self.data;
        match self.dtype {
            IdxType::U8 => d.iter().map(|&b| f64::from(b)).collect(),
            IdxType::I8 => d.iter().map(|&b| f64::from(b as i8)).collect(),
            IdxType::I16 => d
                .chunks_exact(2)
                .map(|c| f64::from(i16::from_be_bytes(array(c))))
                .collect(),
            IdxType::I32 => d
                .chunks_exact(4)
                .map(|c| f64::from(i32::from_be_bytes(array(c))))
                .collect(),
            IdxType::F32 => d
                .chunks_exact(4)
                .map(|c| f64::from(f32::from_be_bytes(array(c))))
                .collect(),
            IdxType::F64 => d
                .chunks_exact(8)
                .map(|c| f64::from_be_bytes(array(c)))
                .collect(),
        }
    }
}

/// The first `N` bytes of `c` as an array (zero-padded if shorter; callers pass
/// `chunks_exact(N)` chunks, so it never is).
pub(crate) fn array<const N: usize>(c: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    for (d, s) in a.iter_mut().zip(c) {
        *d = *s;
    }
    a
}

/// Decompresses a gzip stream (several members are concatenated), keeping at most `limit`
/// bytes of output.
pub(crate) fn gunzip_at_most(bytes: &[u8], name: &str, limit: u64) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(2).min(1 << 28));
    MultiGzDecoder::new(bytes)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| {
            DataError::format(
                name,
                "gzip stream",
                "a complete, valid gzip stream",
                e.to_string(),
            )
        })?;
    Ok(out)
}

/// Decompresses `bytes` if they start with the gzip magic, else borrows them.
pub fn maybe_gunzip<'a>(bytes: &'a [u8], name: &str) -> Result<std::borrow::Cow<'a, [u8]>> {
    if bytes.starts_with(&GZIP_MAGIC) {
        Ok(std::borrow::Cow::Owned(gunzip_at_most(
            bytes,
            name,
            MAX_DECOMPRESSED,
        )?))
    } else {
        Ok(std::borrow::Cow::Borrowed(bytes))
    }
}

/// Parses an IDX file held in memory, gunzipping it first if it starts with the gzip magic.
/// `name` is used in error messages.
pub fn parse_idx(bytes: &[u8], name: &str) -> Result<IdxArray> {
    let raw = maybe_gunzip(bytes, name)?;
    parse_idx_raw(&raw, name)
}

fn parse_idx_raw(b: &[u8], name: &str) -> Result<IdxArray> {
    let Some(&[z0, z1, code, nd]) = b.get(..4) else {
        return Err(DataError::truncated(
            name,
            "IDX magic number",
            4,
            b.len() as u64,
        ));
    };
    let magic = u32::from_be_bytes([z0, z1, code, nd]);
    let (Some(dtype), 0, 0, 1..) = (IdxType::from_code(code), z0, z1, nd) else {
        return Err(DataError::format(
            name,
            "IDX magic number",
            "0x0000TTDD (TT = 08, 09, 0B, 0C, 0D or 0E; DD = number of dims >= 1)",
            format!("{magic:#010x}"),
        ));
    };
    let header = 4 + 4 * usize::from(nd);
    let (Some(dim_bytes), Some(data)) = (b.get(4..header), b.get(header..)) else {
        return Err(DataError::truncated(
            name,
            "IDX header",
            header as u64,
            b.len() as u64,
        ));
    };
    let dims: Vec<usize> = dim_bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes(array(c)) as usize)
        .collect();
    let len = dims
        .iter()
        .try_fold(dtype.size(), |a, &d| a.checked_mul(d))
        .ok_or_else(|| {
            DataError::format(
                name,
                "IDX dimensions",
                "a size that fits in memory",
                format!("{dims:?}"),
            )
        })?;
    DataError::check_data_length(
        name,
        "IDX data",
        len,
        data.len(),
        "IDX file length",
        || format!("{} bytes (header + data for dims {dims:?})", header + len),
        || format!("{} bytes", b.len()),
    )?;
    Ok(IdxArray {
        dtype,
        dims,
        data: data.to_vec(),
    })
}

/// Reads a whole file into memory.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    let mut f = open_regular_file(path, "a data file")?;
    let mut out = Vec::new();
    f.read_to_end(&mut out)
        .map_err(|e| DataError::io(path, "read", e))?;
    Ok(out)
}

/// Reads and parses an IDX file (raw or gzip).
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    parse_idx(&read_file(path)?, &path_name(path))
}

/// Checks that `a` holds unsigned bytes with `ndims` dimensions.
fn expect_u8(a: &IdxArray, ndims: usize, name: &str) -> Result<()> {
    if a.dtype != IdxType::U8 || a.dims.len() != ndims {
        let what = if ndims == 1 { "labels" } else { "images" };
        return Err(DataError::format(
            name,
            "magic number",
            format!(
                "{:#010x} (unsigned byte, {ndims} dim{}: {what})",
                0x800 | ndims,
                if ndims == 1 { "" } else { "s" }
            ),
            format!("{:#010x}", a.magic()),
        ));
    }
    Ok(())
}

/// Builds an [`ImageDataset`] from an images IDX file (`u8`, 3 dims) and a labels IDX file
/// (`u8`, 1 dim), raw or gzip. Pixels are scaled to `[0, 1]`; labels must be below
/// `class_names.len()`.
pub fn load_idx_pair(images: &Path, labels: &Path, class_names: &[&str]) -> Result<ImageDataset> {
    let (img, lab) = rayon::join(|| read_idx(images), || read_idx(labels));
    let (img, lab) = (img?, lab?);
    let (iname, lname) = (path_name(images), path_name(labels));
    expect_u8(&img, 3, &iname)?;
    expect_u8(&lab, 1, &lname)?;
    // expect_u8 checked the number of dims.
    let (&[n, h, w], &[m]) = (img.dims.as_slice(), lab.dims.as_slice()) else {
        return Err(DataError::InvalidArgument(format!(
            "{iname}: dims {:?} / {lname}: dims {:?}",
            img.dims, lab.dims
        )));
    };
    if m != n {
        return Err(DataError::CountMismatch {
            images_file: iname,
            labels_file: lname,
            expected: n as u64,
            found: m as u64,
        });
    }
    if let Some((i, &l)) = lab
        .data
        .iter()
        .enumerate()
        .find(|(_, &l)| l as usize >= class_names.len())
    {
        return Err(DataError::format(
            lname,
            format!("label of item {i}"),
            format!("a class below {}", class_names.len()),
            l.to_string(),
        ));
    }
    let images: Vec<f32> = img
        .data
        .par_iter()
        .map(|&p| f32::from(p) * (1.0 / 255.0))
        .collect();
    ImageDataset::new(
        images,
        [n, 1, h, w],
        lab.data.iter().map(|&l| l as usize).collect(),
        class_names.iter().map(|s| s.to_string()).collect(),
    )
}

/// Finds `{stem}-{kind}` in `dir` under any usual spelling: `train-images-idx3-ubyte`,
/// `train-images.idx3-ubyte`, each possibly with `.gz`.
pub fn find_idx_file(dir: &Path, stem: &str, kind: &str) -> Result<PathBuf> {
    let candidates = [
        format!("{stem}-{kind}"),
        format!("{stem}.{kind}"),
        format!("{stem}-{kind}.gz"),
        format!("{stem}.{kind}.gz"),
    ];
    candidates
        .iter()
        .map(|c| dir.join(c))
        .find(|p| p.is_file())
        .ok_or_else(|| DataError::NotFound {
            file: path_name(dir),
            what: format!("{stem} IDX file"),
            expected: candidates.join(", "),
        })
}

/// The class names of MNIST.
pub const MNIST_CLASSES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// The class names of Fashion-MNIST.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Loads the train and test sets of an MNIST-layout folder (`train-images`, `train-labels`,
/// `t10k-images`, `t10k-labels`; any spelling accepted by [`find_idx_file`]).
pub fn load_mnist_like(dir: &Path, class_names: &[&str]) -> Result<TrainTest> {
    let train_i = find_idx_file(dir, "train-images", "idx3-ubyte")?;
    let train_l = find_idx_file(dir, "train-labels", "idx1-ubyte")?;
    let test_i = find_idx_file(dir, "t10k-images", "idx3-ubyte")?;
    let test_l = find_idx_file(dir, "t10k-labels", "idx1-ubyte")?;
    let (train, test) = rayon::join(
        || load_idx_pair(&train_i, &train_l, class_names),
        || load_idx_pair(&test_i, &test_l, class_names),
    );
    Ok(TrainTest {
        train: train?,
        test: test?,
    })
}

/// Loads MNIST (60,000 + 10,000 digits, 1x28x28, classes "0".."9") from `dir`.
pub fn load_mnist(dir: &Path) -> Result<TrainTest> {
    load_mnist_like(dir, &MNIST_CLASSES)
}

/// Loads Fashion-MNIST (60,000 + 10,000 images, 1x28x28, 10 clothing classes) from `dir`.
pub fn load_fashion_mnist(dir: &Path) -> Result<TrainTest> {
    load_mnist_like(dir, &FASHION_MNIST_CLASSES)
}

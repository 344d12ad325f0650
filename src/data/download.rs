//! A registry of the official datasets (addresses, file names, SHA-256 digests) and the
//! verify-and-unpack step that turns downloaded files into the layout the loaders read.
//!
//! The fetch itself ([`download`]) shells out to `curl`, so it needs no extra dependency;
//! files fetched by any other means go through [`verify_and_unpack`].

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::error::{path_name, DataError, Result};
use super::idx::{gunzip_at_most, GZIP_MAGIC};
use super::npy::open_zip;

/// What to do with a verified download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unpack {
    /// Store the file unchanged.
    Keep,
    /// Store the decompressed content (a file that is not gzip is taken as already
    /// decompressed).
    Gunzip,
    /// Store the zip unchanged and also extract it into the folder holding it.
    Unzip,
}

/// One file of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteFile {
    /// The path of the stored file, relative to the dataset folder.
    pub target: &'static str,
    /// Official addresses, tried in order.
    pub urls: &'static [&'static str],
    /// SHA-256 (lowercase hex) of the stored file (for [`Unpack::Gunzip`]: of the
    /// decompressed content).
    pub sha256: &'static str,
    /// For gzip files kept compressed: SHA-256 of the decompressed content, which also
    /// accepts another compression of the same data (e.g. a gzip header with another mtime).
    pub content_sha256: Option<&'static str>,
    /// What to do after verification.
    pub unpack: Unpack,
}

impl RemoteFile {
    /// The file names under which a download of this file may be found.
    pub fn candidate_names(&self) -> Vec<String> {
        let mut names = vec![self.target.to_string()];
        let base = self
            .target
            .rsplit('/')
            .next()
            .unwrap_or(self.target)
            .to_string();
        names.push(base);
        for u in self.urls {
            names.push(u.rsplit('/').next().unwrap_or(u).to_string());
        }
        names.dedup();
        let mut uniq = Vec::new();
        for n in names {
            if !uniq.contains(&n) {
                uniq.push(n);
            }
        }
        uniq
    }
}

/// A dataset of the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatasetInfo {
    /// The name used by `metalearn data download NAME`.
    pub name: &'static str,
    /// A one-line description.
    pub description: &'static str,
    /// Its files.
    pub files: &'static [RemoteFile],
}

macro_rules! omniglot_npz_base {
    () => {
        "https://raw.githubusercontent.com/bitsandscraps/omniglot/b0481240b7eb42393285a93ce7d2f266ff10c62b"
    };
}
macro_rules! lake_base {
    () => {
        "https://raw.githubusercontent.com/brendenlake/omniglot/057f034baf2ecb8530bc5710e5a23584d2a519cc/python"
    };
}
macro_rules! protonets_base {
    () => {
        "https://raw.githubusercontent.com/jakesnell/prototypical-networks/c9bb4d258267c11cb6e23f0a19242d24ca98ad8a/data/omniglot/splits/vinyals"
    };
}
macro_rules! mnist_mirror {
    () => {
        "https://ossci-datasets.s3.amazonaws.com/mnist"
    };
}
macro_rules! mnist_lecun {
    () => {
        "http://yann.lecun.com/exdb/mnist"
    };
}
macro_rules! fashion_s3 {
    () => {
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com"
    };
}
macro_rules! fashion_github {
    () => {
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion"
    };
}

macro_rules! urls {
    ($($base:expr, $file:expr);+ $(;)?) => { &[$(concat!($base, "/", $file)),+] };
}

static REGISTRY: &[DatasetInfo] = &[
    DatasetInfo {
        name: "omniglot",
        description: "Omniglot: 1623 characters x 20 drawings (npz pair), Lake's small PNG sets, Vinyals splits",
        files: &[
            RemoteFile {
                target: "images_background.npz",
                urls: &[concat!(omniglot_npz_base!(), "/images_background.npz")],
                sha256: "8bf84167413cd00beacdce3fe582f780ab538d8dbef043a6d688f2527bbce199",
                content_sha256: None,
                unpack: Unpack::Keep,
            },
            RemoteFile {
                target: "images_evaluation.npz",
                urls: &[concat!(omniglot_npz_base!(), "/images_evaluation.npz")],
                sha256: "0b84c7ffd94c4841c0040e529c86a82eaaccb986d8eadad5673f7991b7475276",
                content_sha256: None,
                unpack: Unpack::Keep,
            },
            RemoteFile {
                target: "lake-small/images_background_small1.zip",
                urls: &[concat!(lake_base!(), "/images_background_small1.zip")],
                sha256: "f38eb80f801274ac2b4dff5b24289016bfaba4a7d5bb50deebf27104ad6cb8a4",
                content_sha256: None,
                unpack: Unpack::Unzip,
            },
            RemoteFile {
                target: "lake-small/images_background_small2.zip",
                urls: &[concat!(lake_base!(), "/images_background_small2.zip")],
                sha256: "3ccaa407515a8778e5d0861875af38b17e418f301ad5bb3b5a6b65d901a41c7f",
                content_sha256: None,
                unpack: Unpack::Unzip,
            },
            RemoteFile {
                target: "splits/vinyals/train.txt",
                urls: &[concat!(protonets_base!(), "/train.txt")],
                sha256: "984522c194c30fb678ce53304a160a42faf5403ad4f9a67010f32dd3a35738e0",
                content_sha256: None,
                unpack: Unpack::Keep,
            },
            RemoteFile {
                target: "splits/vinyals/val.txt",
                urls: &[concat!(protonets_base!(), "/val.txt")],
                sha256: "11f99e54faee3e26f53d3231c1cceac5bf7b8730e9be31cb6dab256551dc0c1a",
                content_sha256: None,
                unpack: Unpack::Keep,
            },
            RemoteFile {
                target: "splits/vinyals/test.txt",
                urls: &[concat!(protonets_base!(), "/test.txt")],
                sha256: "845264cc5c156180828ccf17915668b17ee21424d0170df6e7d81676aa5d1204",
                content_sha256: None,
                unpack: Unpack::Keep,
            },
            RemoteFile {
                target: "splits/vinyals/trainval.txt",
                urls: &[concat!(protonets_base!(), "/trainval.txt")],
                sha256: "5276ae50c755596d0bff7f2284e85625695549a85ee6e36b6491ad1e5d1cc26a",
                content_sha256: None,
                unpack: Unpack::Keep,
            },
        ],
    },
    DatasetInfo {
        name: "mnist",
        description: "MNIST handwritten digits, 60,000 + 10,000 images 28x28 (stored as raw IDX)",
        files: &[
            RemoteFile {
                target: "train-images.idx3-ubyte",
                urls: urls!(mnist_mirror!(), "train-images-idx3-ubyte.gz"; mnist_lecun!(), "train-images-idx3-ubyte.gz"),
                sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                content_sha256: None,
                unpack: Unpack::Gunzip,
            },
            RemoteFile {
                target: "train-labels.idx1-ubyte",
                urls: urls!(mnist_mirror!(), "train-labels-idx1-ubyte.gz"; mnist_lecun!(), "train-labels-idx1-ubyte.gz"),
                sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                content_sha256: None,
                unpack: Unpack::Gunzip,
            },
            RemoteFile {
                target: "t10k-images.idx3-ubyte",
                urls: urls!(mnist_mirror!(), "t10k-images-idx3-ubyte.gz"; mnist_lecun!(), "t10k-images-idx3-ubyte.gz"),
                sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                content_sha256: None,
                unpack: Unpack::Gunzip,
            },
            RemoteFile {
                target: "t10k-labels.idx1-ubyte",
                urls: urls!(mnist_mirror!(), "t10k-labels-idx1-ubyte.gz"; mnist_lecun!(), "t10k-labels-idx1-ubyte.gz"),
                sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
                content_sha256: None,
                unpack: Unpack::Gunzip,
            },
        ],
    },
    DatasetInfo {
        name: "fashion-mnist",
        description: "Fashion-MNIST clothing images, 60,000 + 10,000 images 28x28 (stored as gzip IDX)",
        files: &[
            RemoteFile {
                target: "train-images-idx3-ubyte.gz",
                urls: urls!(fashion_s3!(), "train-images-idx3-ubyte.gz"; fashion_github!(), "train-images-idx3-ubyte.gz"),
                sha256: "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
                content_sha256: Some("c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
                unpack: Unpack::Keep,
            },
            RemoteFile {
                target: "train-labels-idx1-ubyte.gz",
                urls: urls!(fashion_s3!(), "train-labels-idx1-ubyte.gz"; fashion_github!(), "train-labels-idx1-ubyte.gz"),
                sha256: "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
                content_sha256: Some("bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
                unpack: Unpack::Keep,
            },
            RemoteFile {
                target: "t10k-images-idx3-ubyte.gz",
                urls: urls!(fashion_s3!(), "t10k-images-idx3-ubyte.gz"; fashion_github!(), "t10k-images-idx3-ubyte.gz"),
                sha256: "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
                content_sha256: Some("5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
                unpack: Unpack::Keep,
            },
            RemoteFile {
                target: "t10k-labels-idx1-ubyte.gz",
                urls: urls!(fashion_s3!(), "t10k-labels-idx1-ubyte.gz"; fashion_github!(), "t10k-labels-idx1-ubyte.gz"),
                sha256: "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
                content_sha256: Some("0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
                unpack: Unpack::Keep,
            },
        ],
    },
    DatasetInfo {
        name: "sklearn-digits",
        description: "scikit-learn digits: 1797 images 8x8, values 0..16 (gzip CSV)",
        files: &[RemoteFile {
            target: "digits.csv.gz",
            urls: &["https://raw.githubusercontent.com/scikit-learn/scikit-learn/main/sklearn/datasets/data/digits.csv.gz"],
            sha256: "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22",
            content_sha256: None,
            unpack: Unpack::Keep,
        }],
    },
];

/// Every registered dataset.
pub fn registry() -> &'static [DatasetInfo] {
    REGISTRY
}

/// The registered dataset called `name` (`"omniglot"`, `"mnist"`, `"fashion-mnist"`,
/// `"sklearn-digits"`; `"digits"` is accepted too).
pub fn dataset_info(name: &str) -> Result<&'static DatasetInfo> {
    let name = if name == "digits" {
        "sklearn-digits"
    } else {
        name
    };
    REGISTRY
        .iter()
        .find(|d| d.name == name)
        .ok_or_else(|| DataError::UnknownDataset {
            name: name.to_string(),
            expected: REGISTRY
                .iter()
                .map(|d| d.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The lowercase hex SHA-256 of a file, read in blocks.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| DataError::io(path, "open", e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| DataError::io(path, "read", e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The whole decompressed stream (no size limit: the registry's checksums pin the files).
fn gunzip(bytes: &[u8], name: &str) -> Result<Vec<u8>> {
    gunzip_at_most(bytes, name, u64::MAX)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent, "create folder", e))?;
    }
    let tmp = path.with_extension(format!("partial-{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| DataError::io(&tmp, "write", e))?;
    std::fs::rename(&tmp, path).map_err(|e| DataError::io(path, "rename into place", e))
}

/// Verifies one downloaded file against `file` and stores it under `dest`; returns the
/// paths written.
pub fn verify_and_store(file: &RemoteFile, downloaded: &Path, dest: &Path) -> Result<Vec<PathBuf>> {
    let name = path_name(downloaded);
    let bytes = std::fs::read(downloaded).map_err(|e| DataError::io(downloaded, "read", e))?;
    let digest = sha256_hex(&bytes);
    let target = dest.join(file.target);
    match file.unpack {
        Unpack::Keep => {
            if digest == file.sha256 {
                write_atomic(&target, &bytes)?;
                return Ok(vec![target]);
            }
            if let Some(content) = file.content_sha256 {
                if bytes.starts_with(&GZIP_MAGIC) {
                    let found = sha256_hex(&gunzip(&bytes, &name)?);
                    if found == content {
                        write_atomic(&target, &bytes)?;
                        return Ok(vec![target]);
                    }
                    return Err(DataError::Checksum {
                        file: format!("{name} (decompressed)"),
                        expected: content.to_string(),
                        found,
                    });
                } else if digest == content {
                    // Already decompressed: store without the .gz suffix.
                    let plain = dest.join(file.target.strip_suffix(".gz").unwrap_or(file.target));
                    write_atomic(&plain, &bytes)?;
                    return Ok(vec![plain]);
                }
            }
            Err(DataError::Checksum {
                file: name,
                expected: file.sha256.to_string(),
                found: digest,
            })
        }
        Unpack::Gunzip => {
            let (content, label) = if bytes.starts_with(&GZIP_MAGIC) {
                (gunzip(&bytes, &name)?, format!("{name} (decompressed)"))
            } else {
                (bytes, name)
            };
            let found = sha256_hex(&content);
            if found != file.sha256 {
                return Err(DataError::Checksum {
                    file: label,
                    expected: file.sha256.to_string(),
                    found,
                });
            }
            write_atomic(&target, &content)?;
            Ok(vec![target])
        }
        Unpack::Unzip => {
            if digest != file.sha256 {
                return Err(DataError::Checksum {
                    file: name,
                    expected: file.sha256.to_string(),
                    found: digest,
                });
            }
            write_atomic(&target, &bytes)?;
            let folder = target.parent().unwrap_or(dest).to_path_buf();
            let mut archive = open_zip(std::io::Cursor::new(&bytes), &name)?;
            archive.extract(&folder).map_err(|e| {
                DataError::format(
                    name,
                    "zip archive",
                    "an archive that extracts cleanly",
                    e.to_string(),
                )
            })?;
            Ok(vec![target, folder])
        }
    }
}

fn find_in_dir(dir: &Path, dataset: &str, file: &RemoteFile) -> Option<PathBuf> {
    for base in [dir.to_path_buf(), dir.join(dataset)] {
        for n in file.candidate_names() {
            let p = base.join(&n);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Verifies downloaded files of dataset `name` and stores them in `dest` in the layout the
/// loaders read (gunzipping or unzipping where the registry says so).
///
/// `downloaded` is either one file (matched to a registry entry by its file name) or a folder
/// holding every file of the dataset (under its target path, its base name, or the base name
/// of one of its addresses), directly or in a subfolder named after the dataset. `dest` is
/// the dataset's own folder (e.g. `<data>/mnist`). A digest mismatch is a [`DataError::Checksum`] naming the file;
/// nothing unverified is written. Returns the paths written.
pub fn verify_and_unpack(name: &str, downloaded: &Path, dest: &Path) -> Result<Vec<PathBuf>> {
    let info = dataset_info(name)?;
    if downloaded.is_dir() {
        let mut found = Vec::new();
        for f in info.files {
            let p = find_in_dir(downloaded, info.name, f).ok_or_else(|| DataError::NotFound {
                file: path_name(downloaded),
                what: format!("file {} of dataset {}", f.target, info.name),
                expected: f.candidate_names().join(" or "),
            })?;
            found.push((f, p));
        }
        let mut written = Vec::new();
        for (f, p) in found {
            written.extend(verify_and_store(f, &p, dest)?);
        }
        Ok(written)
    } else {
        let base = downloaded
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let f = info
            .files
            .iter()
            .find(|f| {
                f.candidate_names()
                    .iter()
                    .any(|c| c.rsplit('/').next() == Some(&base))
            })
            .ok_or_else(|| DataError::NotFound {
                file: path_name(downloaded),
                what: format!("a file of dataset {}", info.name),
                expected: info
                    .files
                    .iter()
                    .map(|f| f.target)
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        verify_and_store(f, downloaded, dest)
    }
}

/// What [`download`] stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadReport {
    /// The dataset name.
    pub dataset: String,
    /// The folder it was stored in.
    pub dest: PathBuf,
    /// The files and folders written.
    pub written: Vec<PathBuf>,
}

impl std::fmt::Display for DownloadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{}: verified and stored in {}",
            self.dataset,
            self.dest.display()
        )?;
        for p in &self.written {
            writeln!(f, "  {}", p.display())?;
        }
        Ok(())
    }
}

/// Fetches dataset `name` and stores it, verified, in `data_root/<name>/` (the layout of
/// the shared data folder, e.g. `<data>/mnist/train-images.idx3-ubyte`).
///
/// With `from`, the files are taken from that already-downloaded file or folder (see
/// [`verify_and_unpack`]) and nothing goes over the network. Without it, each file is
/// fetched with `curl` from its official addresses in turn; without network access or
/// `curl` this returns [`DataError::Download`].
pub fn download(name: &str, data_root: &Path, from: Option<&Path>) -> Result<DownloadReport> {
    let info = dataset_info(name)?;
    let dest = data_root.join(info.name);
    let dest = dest.as_path();
    let report = |written| DownloadReport {
        dataset: info.name.to_string(),
        dest: dest.to_path_buf(),
        written,
    };
    if let Some(src) = from {
        return Ok(report(verify_and_unpack(info.name, src, dest)?));
    }
    let tmp = dest.join(".download");
    std::fs::create_dir_all(&tmp).map_err(|e| DataError::io(&tmp, "create folder", e))?;
    let mut written = Vec::new();
    for f in info.files {
        let mut last_err = None;
        let mut ok = false;
        for url in f.urls {
            let out = tmp.join(url.rsplit('/').next().unwrap_or("download"));
            match fetch(url, &out) {
                Ok(()) => match verify_and_store(f, &out, dest) {
                    Ok(paths) => {
                        written.extend(paths);
                        let _ = std::fs::remove_file(&out);
                        ok = true;
                        break;
                    }
                    Err(e) => last_err = Some(e),
                },
                Err(e) => last_err = Some(e),
            }
        }
        if !ok {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(last_err.unwrap_or_else(|| DataError::Download {
                url: f.target.into(),
                reason: "no address".into(),
            }));
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(report(written))
}

fn fetch(url: &str, out: &Path) -> Result<()> {
    let status = Command::new("curl")
        .args([
            "--fail",
            "--silent",
            "--show-error",
            "--location",
            "--retry",
            "2",
            "--output",
        ])
        .arg(out)
        .arg(url)
        .status();
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(DataError::Download {
            url: url.to_string(),
            reason: format!("curl exited with {s}"),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(DataError::Download {
            url: url.to_string(),
            reason:
                "curl is not installed; fetch the file by other means and run verify_and_unpack"
                    .into(),
        }),
        Err(e) => Err(DataError::Download {
            url: url.to_string(),
            reason: format!("cannot run curl: {e}"),
        }),
    }
}

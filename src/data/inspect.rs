//! `metalearn data inspect PATH`: recognise a dataset file or folder and summarise it.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use super::dataset::ImageDataset;
use super::download::{sha256_file, sha256_hex};
use super::error::{path_name, DataError, Result};
use super::idx::{maybe_gunzip, parse_idx, read_file, IdxType, GZIP_MAGIC};
use super::image::decode_png;
use super::image_folder::{is_hidden, load_image_folder, sorted_entries, ImageFolderOptions};
use super::npy::{open_zip, parse_npy, parse_npz, zip_error, NPY_MAGIC};
use super::omniglot::{load_omniglot_npz, load_omniglot_pngs, OmniglotSet};
use super::tabular::{parse_digits, parse_feature_csv, CsvOptions};

/// Describes the dataset at `path`: its format, numbers of examples and classes, image size,
/// examples per class (summarised when there are many classes) and SHA-256 checksum(s).
///
/// Recognised: Omniglot npz (and other npz / npy), IDX raw or gzip, scikit-learn digits
/// CSV (raw or gzip), feature CSV (label in the last column), zips of PNGs (Lake's Omniglot
/// layout or one folder per class), Omniglot PNG folders, image folders, and folders holding
/// any of these files.
pub fn inspect(path: &Path) -> Result<String> {
    let meta = std::fs::metadata(path).map_err(|e| DataError::io(path, "inspect", e))?;
    if meta.is_dir() {
        inspect_dir(path)
    } else {
        inspect_file(path)
    }
}

fn inspect_file(path: &Path) -> Result<String> {
    let name = path_name(path);
    let mut head = [0u8; 8];
    let n = File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| DataError::io(path, "read", e))?;
    let head = head.get(..n).unwrap_or_default();
    let mut out = String::new();
    writeln!(out, "{name}").ok();
    if head.starts_with(b"PK") {
        inspect_zip(path, &mut out)?;
    } else if head.starts_with(NPY_MAGIC) {
        let h = parse_npy(&read_file(path)?, &name)?.header;
        writeln!(out, "  format: NumPy .npy array").ok();
        writeln!(
            out,
            "  dtype: {}  shape: {:?}  fortran_order: {}",
            h.descr, h.shape, h.fortran_order
        )
        .ok();
    } else {
        let bytes = read_file(path)?;
        let raw = maybe_gunzip(&bytes, &name)?;
        let gz = if bytes.starts_with(&GZIP_MAGIC) {
            "gzip "
        } else {
            ""
        };
        if matches!(*raw, [0, 0, 0x08..=0x0E, 1..=4, ..]) {
            inspect_idx(path, &bytes, gz, &mut out)?;
        } else if let Some(split) = vinyals_split(&raw, &name) {
            let chars: std::collections::BTreeSet<&str> =
                split.iter().map(|c| c.character.as_str()).collect();
            let alphabets: std::collections::BTreeSet<&str> =
                chars.iter().filter_map(|c| c.split('/').next()).collect();
            writeln!(
                out,
                "  format: Omniglot class split (Alphabet/characterNN/rotDDD per line)"
            )
            .ok();
            writeln!(
                out,
                "  classes: {} (rotation classes); characters: {}; alphabets: {}",
                split.len(),
                chars.len(),
                alphabets.len()
            )
            .ok();
            writeln!(out, "  examples per class: 20 (Omniglot drawings)").ok();
        } else {
            inspect_csv(&bytes, &name, gz, &mut out)?;
        }
    }
    writeln!(out, "  sha256: {}", sha256_file(path)?).ok();
    Ok(out)
}

fn inspect_idx(path: &Path, bytes: &[u8], gz: &str, out: &mut String) -> Result<()> {
    let name = path_name(path);
    let a = parse_idx(bytes, &name)?;
    writeln!(
        out,
        "  format: {gz}IDX, magic {:#010x} ({:?}, {} dims), dims {:?}",
        a.magic(),
        a.dtype,
        a.dims.len(),
        a.dims
    )
    .ok();
    let dim = |k: usize| a.dims.get(k).copied().unwrap_or(0);
    match (a.dtype, a.dims.len()) {
        (IdxType::U8, 1) => {
            let counts = byte_counts(&a.data);
            writeln!(
                out,
                "  kind: labels; examples: {}; classes: {}",
                a.data.len(),
                counts.len()
            )
            .ok();
            write_counts(out, &counts);
        }
        (_, 3) => {
            writeln!(
                out,
                "  kind: images; examples: {}; image size: {}x{}",
                dim(0),
                dim(1),
                dim(2)
            )
            .ok();
            if let Some(labels) = sibling_labels(path) {
                writeln!(out, "  labels file: {}", path_name(&labels)).ok();
                let lname = path_name(&labels);
                let l = parse_idx(&read_file(&labels)?, &lname)?;
                if l.dtype != IdxType::U8 || l.dims.len() != 1 || l.dims.first() != a.dims.first() {
                    return Err(DataError::format(
                        lname,
                        "labels array",
                        format!("unsigned bytes, 1 dim, {} labels", dim(0)),
                        format!("{:?}, dims {:?}", l.dtype, l.dims),
                    ));
                }
                let counts = byte_counts(&l.data);
                writeln!(out, "  classes: {}", counts.len()).ok();
                write_counts(out, &counts);
            }
        }
        _ => {
            writeln!(out, "  examples: {}", dim(0)).ok();
        }
    }
    Ok(())
}

/// `(label, count)` for the byte labels `0..=max` of an IDX labels array.
fn byte_counts(labels: &[u8]) -> Vec<(String, usize)> {
    let mut counts = [0usize; 256];
    for &l in labels {
        if let Some(c) = counts.get_mut(usize::from(l)) {
            *c += 1;
        }
    }
    let k = counts.iter().rposition(|&c| c > 0).map_or(0, |p| p + 1);
    counts
        .iter()
        .take(k)
        .enumerate()
        .map(|(c, &n)| (c.to_string(), n))
        .collect()
}

fn vinyals_split(raw: &[u8], name: &str) -> Option<Vec<super::omniglot::VinyalsClass>> {
    let text = std::str::from_utf8(raw).ok()?;
    super::omniglot::parse_vinyals_split(text, name)
        .ok()
        .filter(|v| !v.is_empty())
}

fn sibling_labels(images: &Path) -> Option<PathBuf> {
    let file = images.file_name()?.to_str()?;
    let labels = file
        .replacen("images", "labels", 1)
        .replacen("idx3", "idx1", 1);
    let p = images.with_file_name(labels);
    (p != images && p.is_file()).then_some(p)
}

fn inspect_csv(bytes: &[u8], name: &str, gz: &str, out: &mut String) -> Result<()> {
    if let Ok(d) = parse_digits(bytes, name) {
        writeln!(
            out,
            "  format: {gz}CSV, scikit-learn digits (64 pixel values 0..16 + label)"
        )
        .ok();
        write_image_summary(out, &d);
        return Ok(());
    }
    const EXPECTED: &str =
        "a recognised dataset file (npz, npy, IDX, numeric CSV, zip of PNGs, split list)";
    let opts = CsvOptions {
        has_header: csv_has_header(bytes),
        ..CsvOptions::default()
    };
    let ds = parse_feature_csv(bytes, name, &opts).map_err(|e| {
        DataError::format(
            name,
            "format",
            EXPECTED,
            format!("neither IDX nor a numeric CSV ({e})"),
        )
    })?;
    if ds.example_len() == 0 {
        return Err(DataError::format(
            name,
            "format",
            EXPECTED,
            "a text file with a single column",
        ));
    }
    writeln!(
        out,
        "  format: {gz}CSV of feature vectors (label in the last column)"
    )
    .ok();
    writeln!(out, "  examples: {}; features: {}", ds.n, ds.example_len()).ok();
    let name0 = ds.label_names.first().cloned().unwrap_or_default();
    let counts: Vec<(String, usize)> = ds
        .class_counts(&name0)
        .unwrap_or_default()
        .into_iter()
        .collect();
    writeln!(out, "  classes: {}", counts.len()).ok();
    write_counts(out, &counts);
    Ok(())
}

/// Summarises an npz with the loaders: Omniglot's pair of arrays through
/// [`load_omniglot_npz`], any other archive through [`parse_npz`] (every member read and
/// checked).
fn inspect_npz(path: &Path, names: &[String], out: &mut String) -> Result<()> {
    let has = |n: &str| names.iter().any(|m| m == n);
    if has("images.npy") || has("labels.npy") {
        let o = load_omniglot_npz(path, 28)?;
        let set = match o.characters.first().and_then(|c| c.set()) {
            Some(OmniglotSet::Evaluation) => "images_evaluation",
            _ => "images_background",
        };
        writeln!(
            out,
            "  format: Omniglot npz ({set}; bool images, true = background)"
        )
        .ok();
        write_image_summary(out, &o.images);
        writeln!(out, "  (images resized to 28x28)").ok();
        return Ok(());
    }
    let npz = parse_npz(&read_file(path)?, &path_name(path))?;
    writeln!(out, "  format: NumPy .npz archive").ok();
    for (n, a) in &npz.arrays {
        writeln!(
            out,
            "  {n}.npy: dtype {} shape {:?}",
            a.header.descr, a.header.shape
        )
        .ok();
    }
    Ok(())
}

/// Whether the first non-empty line of a CSV is a header: one of its feature fields (all but
/// the last) is not a number, as `train` decides.
fn csv_has_header(bytes: &[u8]) -> bool {
    let Ok(raw) = maybe_gunzip(bytes, "") else {
        return false;
    };
    let text = String::from_utf8_lossy(&raw);
    let Some(first) = text.lines().find(|l| !l.trim().is_empty()) else {
        return false;
    };
    let fields: Vec<&str> = first.split(',').map(str::trim).collect();
    fields
        .iter()
        .take(fields.len().saturating_sub(1).max(1))
        .any(|f| f.parse::<f64>().is_err())
}

fn inspect_zip(path: &Path, out: &mut String) -> Result<()> {
    let name = path_name(path);
    let file = File::open(path).map_err(|e| DataError::io(path, "open", e))?;
    let mut archive = open_zip(BufReader::new(file), &name)?;
    let names: Vec<String> = archive.file_names().map(str::to_string).collect();
    let npys: Vec<&String> = names.iter().filter(|n| n.ends_with(".npy")).collect();
    let pngs: Vec<&String> = names
        .iter()
        .filter(|n| n.to_ascii_lowercase().ends_with(".png"))
        .collect();
    if !npys.is_empty() {
        drop(archive);
        return inspect_npz(path, &names, out);
    }
    if !pngs.is_empty() {
        return inspect_png_zip(path, &mut archive, &pngs, out);
    }
    writeln!(
        out,
        "  format: zip archive ({} entries, no .npy or .png)",
        names.len()
    )
    .ok();
    Ok(())
}

/// A zip of PNGs: its layout (Omniglot's `Alphabet/characterNN/...` with its alphabets, or one
/// class per parent folder), the example and class counts, and the first image's size (every
/// PNG is decoded, so a corrupt one is an error).
fn inspect_png_zip<R: Read + std::io::Seek>(
    path: &Path,
    archive: &mut zip::ZipArchive<R>,
    pngs: &[&String],
    out: &mut String,
) -> Result<()> {
    let name = path_name(path);
    let lake = pngs.iter().any(|p| {
        p.split('/')
            .rev()
            .nth(1)
            .is_some_and(|d| d.starts_with("character"))
    });
    if lake {
        let o = load_omniglot_pngs(&[path], 28)?;
        let alphabets: std::collections::BTreeSet<&str> =
            o.characters.iter().map(|c| c.alphabet.as_str()).collect();
        writeln!(
            out,
            "  format: zip of PNGs, Omniglot layout Alphabet/characterNN/IIII_JJ.png"
        )
        .ok();
        writeln!(
            out,
            "  alphabets: {} ({})",
            alphabets.len(),
            alphabets.into_iter().collect::<Vec<_>>().join(", ")
        )
        .ok();
    } else {
        writeln!(out, "  format: zip of PNGs (classes = parent folders)").ok();
    }
    let classes = png_zip_classes(pngs, lake);
    let mut first = None;
    for p in pngs {
        let member = format!("{name}/{p}");
        let mut f = archive.by_name(p).map_err(|e| zip_error(&name, e))?;
        let mut bytes = Vec::new();
        (&mut f)
            .take(64 << 20)
            .read_to_end(&mut bytes)
            .map_err(|e| DataError::io(&member, "read", e))?;
        let png = decode_png(&bytes, &member)?;
        first.get_or_insert(png);
    }
    let Some(png) = first else {
        return Ok(());
    };
    writeln!(
        out,
        "  examples: {}; classes: {}",
        pngs.len(),
        classes.len()
    )
    .ok();
    writeln!(
        out,
        "  image size: {}x{}, {} channel(s) (first image)",
        png.height, png.width, png.channels
    )
    .ok();
    write_counts(out, &classes.into_iter().collect::<Vec<_>>());
    Ok(())
}

/// PNGs per class: the parent folder, or `Alphabet/characterNN` in Omniglot's layout (`lake`).
fn png_zip_classes(pngs: &[&String], lake: bool) -> std::collections::BTreeMap<String, usize> {
    let mut classes = std::collections::BTreeMap::new();
    for p in pngs {
        let parent = p.rsplit_once('/').map_or("", |(d, _)| d);
        let parent = if lake {
            parent
                .rsplitn(3, '/')
                .take(2)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("/")
        } else {
            parent.to_string()
        };
        *classes.entry(parent).or_default() += 1;
    }
    classes
}

fn inspect_dir(dir: &Path) -> Result<String> {
    let data_files = collect_data_files(dir, 0)?;
    let all = list_files(dir, 0)?;
    let has_png = all
        .iter()
        .any(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")));
    if data_files.is_empty() {
        if !has_png && !has_visible_subdir(dir)? {
            return Err(DataError::NotFound {
                file: path_name(dir),
                what: "dataset".into(),
                expected: "data files (.npz, IDX, .csv[.gz], .zip) or class subfolders of PNG \
                           images"
                    .into(),
            });
        }
        return inspect_image_dir(dir, &all);
    }
    let mut out = String::new();
    writeln!(
        out,
        "{}: folder with {} data file(s)",
        path_name(dir),
        data_files.len()
    )
    .ok();
    let mut failed = 0;
    for f in &data_files {
        match inspect_file(f) {
            Ok(s) => out.push_str(&s),
            Err(e) => {
                failed += 1;
                writeln!(out, "{}\n  error: {e}", path_name(f)).ok();
            }
        }
    }
    let mut total = data_files.len();
    if has_png {
        total += 1;
        match inspect_image_dir(dir, &all) {
            Ok(s) => out.push_str(&s),
            Err(e) => {
                failed += 1;
                writeln!(out, "{} (PNG images)\n  error: {e}", path_name(dir)).ok();
            }
        }
    }
    if failed > 0 {
        return Err(DataError::Inspect {
            file: path_name(dir),
            failed,
            total,
            report: out,
        });
    }
    Ok(out)
}

/// Whether `dir` has a subfolder whose name does not start with a dot.
fn has_visible_subdir(dir: &Path) -> Result<bool> {
    for e in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, "list", e))? {
        let p = e.map_err(|e| DataError::io(dir, "list", e))?.path();
        if p.is_dir() && !is_hidden(&p) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Loads a folder of PNGs (Omniglot layout or one subfolder per class) with the loaders and
/// summarises it; `all` lists every file under `dir`.
fn inspect_image_dir(dir: &Path, all: &[PathBuf]) -> Result<String> {
    let mut out = String::new();
    let lake = all.iter().any(|p| {
        p.parent()
            .and_then(|d| d.file_name())
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("character"))
            && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png"))
    });
    writeln!(out, "{}", path_name(dir)).ok();
    if lake {
        let o = load_omniglot_pngs(&[dir], 28)?;
        writeln!(
            out,
            "  format: Omniglot PNG folder (Alphabet/characterNN/IIII_JJ.png)"
        )
        .ok();
        write_image_summary(&mut out, &o.images);
        writeln!(out, "  (images resized to 28x28)").ok();
    } else {
        let d = load_image_folder(dir, &ImageFolderOptions::default())?;
        writeln!(out, "  format: image folder (one subfolder per class, PNG)").ok();
        write_image_summary(&mut out, &d);
    }
    // A digest of the whole tree: sha256 of the sorted "sha256  relative/path" lines.
    let mut listing = String::new();
    for p in all {
        let rel = p.strip_prefix(dir).unwrap_or(p);
        writeln!(listing, "{}  {}", sha256_file(p)?, rel.display()).ok();
    }
    writeln!(
        out,
        "  files: {}; sha256 of the sorted per-file checksums: {}",
        all.len(),
        sha256_hex(listing.as_bytes())
    )
    .ok();
    Ok(out)
}

fn is_data_file(p: &Path) -> bool {
    let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    [
        ".npz",
        ".npy",
        "-ubyte",
        "-ubyte.gz",
        ".csv",
        ".csv.gz",
        ".zip",
        ".txt",
    ]
    .iter()
    .any(|e| n.ends_with(e))
}

/// Data files in `dir` and its subfolders (not inside image class folders), sorted.
fn collect_data_files(dir: &Path, depth: usize) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in sorted_entries(dir)? {
        if is_hidden(&p) {
            continue;
        }
        if p.is_dir() {
            if depth < 4 {
                out.extend(collect_data_files(&p, depth + 1)?);
            }
        } else if is_data_file(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

fn list_files(dir: &Path, depth: usize) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in sorted_entries(dir)? {
        if p.is_dir() {
            if depth < 8 {
                out.extend(list_files(&p, depth + 1)?);
            }
        } else {
            out.push(p);
        }
    }
    Ok(out)
}

fn write_image_summary(out: &mut String, d: &ImageDataset) {
    writeln!(out, "  examples: {}; classes: {}", d.n, d.num_classes()).ok();
    writeln!(
        out,
        "  image size: {}x{}, {} channel(s)",
        d.height, d.width, d.channels
    )
    .ok();
    let counts: Vec<(String, usize)> = d
        .class_names
        .iter()
        .cloned()
        .zip(d.class_counts())
        .collect();
    write_counts(out, &counts);
}

/// Writes per-class counts, listing them when there are at most 20 classes and summarising
/// them (min / median / max and the smallest classes) otherwise.
fn write_counts(out: &mut String, counts: &[(String, usize)]) {
    if counts.is_empty() {
        return;
    }
    if counts.len() <= 20 {
        let list: Vec<String> = counts.iter().map(|(n, c)| format!("{n}: {c}")).collect();
        writeln!(out, "  per class: {}", list.join(", ")).ok();
    } else {
        let mut v: Vec<usize> = counts.iter().map(|(_, c)| *c).collect();
        v.sort_unstable();
        writeln!(
            out,
            "  per class: min {}, median {}, max {} (over {} classes)",
            v.first().unwrap_or(&0),
            v.get(v.len() / 2).unwrap_or(&0),
            v.last().unwrap_or(&0),
            v.len()
        )
        .ok();
    }
}

//! `metalearn data inspect PATH`: recognise a dataset file or folder and summarise it.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use super::dataset::ImageDataset;
use super::download::{sha256_file, sha256_hex};
use super::error::{path_name, DataError, Result};
use super::idx::{maybe_gunzip, parse_idx, read_file, IdxType, GZIP_MAGIC};
use super::image::decode_png;
use super::image_folder::{load_image_folder, ImageFolderOptions};
use super::npy::{open_zip, read_npy_header, zip_error, NPY_MAGIC};
use super::omniglot::load_omniglot_pngs;
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
    let head = &head[..n];
    let mut out = String::new();
    writeln!(out, "{name}").ok();
    if head.starts_with(b"PK") {
        inspect_zip(path, &mut out)?;
    } else if head.starts_with(NPY_MAGIC) {
        let mut f = BufReader::new(File::open(path).map_err(|e| DataError::io(path, "open", e))?);
        let h = read_npy_header(&mut f, &name)?;
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
        if raw.len() >= 4
            && raw[0] == 0
            && raw[1] == 0
            && (0x08..=0x0E).contains(&raw[2])
            && (1..=4).contains(&raw[3])
        {
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
    match (a.dtype, a.dims.len()) {
        (IdxType::U8, 1) => {
            let mut counts = vec![0usize; 256];
            for &l in &a.data {
                counts[l as usize] += 1;
            }
            let k = counts.iter().rposition(|&c| c > 0).map_or(0, |p| p + 1);
            writeln!(out, "  kind: labels; examples: {}; classes: {k}", a.dims[0]).ok();
            write_counts(
                out,
                &(0..k)
                    .map(|c| (c.to_string(), counts[c]))
                    .collect::<Vec<_>>(),
            );
        }
        (_, 3) => {
            writeln!(
                out,
                "  kind: images; examples: {}; image size: {}x{}",
                a.dims[0], a.dims[1], a.dims[2]
            )
            .ok();
            if let Some(labels) = sibling_labels(path) {
                writeln!(out, "  labels file: {}", path_name(&labels)).ok();
                if let Ok(l) = parse_idx(&read_file(&labels)?, &path_name(&labels)) {
                    let k = l.data.iter().copied().max().map_or(0, |m| m as usize + 1);
                    let mut counts = vec![0usize; k];
                    for &v in &l.data {
                        counts[v as usize] += 1;
                    }
                    writeln!(out, "  classes: {k}").ok();
                    write_counts(
                        out,
                        &(0..k)
                            .map(|c| (c.to_string(), counts[c]))
                            .collect::<Vec<_>>(),
                    );
                }
            }
        }
        _ => {
            writeln!(out, "  examples: {}", a.dims[0]).ok();
        }
    }
    Ok(())
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
    let ds = parse_feature_csv(bytes, name, &CsvOptions::default()).map_err(|e| {
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
    let name0 = ds.label_names[0].clone();
    let counts: Vec<(String, usize)> = ds
        .class_counts(&name0)
        .unwrap_or_default()
        .into_iter()
        .collect();
    writeln!(out, "  classes: {}", counts.len()).ok();
    write_counts(out, &counts);
    Ok(())
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
        let mut shapes = Vec::new();
        for n in &npys {
            let mut f = archive.by_name(n).map_err(|e| zip_error(&name, e))?;
            let h = read_npy_header(&mut f, &format!("{name}/{n}"))?;
            shapes.push((n.to_string(), h));
        }
        let images = shapes.iter().find(|(n, _)| n == "images.npy");
        let labels = shapes.iter().find(|(n, _)| n == "labels.npy");
        if let (Some((_, im)), Some(_)) = (images, labels) {
            if im.shape.len() == 4 {
                let set = match im.shape[0] {
                    964 => "images_background",
                    659 => "images_evaluation",
                    _ => "unknown set",
                };
                writeln!(
                    out,
                    "  format: Omniglot npz ({set}; images {} {:?}, true = background)",
                    im.descr, im.shape
                )
                .ok();
                writeln!(
                    out,
                    "  examples: {}; classes (characters): {}",
                    im.shape[0] * im.shape[1],
                    im.shape[0]
                )
                .ok();
                writeln!(
                    out,
                    "  image size: {}x{} (resized to 28x28 when loaded)",
                    im.shape[2], im.shape[3]
                )
                .ok();
                writeln!(out, "  examples per class: {} (all classes)", im.shape[1]).ok();
                return Ok(());
            }
        }
        writeln!(out, "  format: NumPy .npz archive").ok();
        for (n, h) in shapes {
            writeln!(out, "  {n}: dtype {} shape {:?}", h.descr, h.shape).ok();
        }
        return Ok(());
    }
    if !pngs.is_empty() {
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
        let mut classes: std::collections::BTreeMap<String, usize> =
            std::collections::BTreeMap::new();
        for p in &pngs {
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
        let first = pngs[0].clone();
        let mut f = archive.by_name(&first).map_err(|e| zip_error(&name, e))?;
        let mut bytes = Vec::new();
        (&mut f)
            .take(64 << 20)
            .read_to_end(&mut bytes)
            .map_err(|e| DataError::io(path, "read", e))?;
        let png = decode_png(&bytes, &format!("{name}/{first}"))?;
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
        return Ok(());
    }
    writeln!(
        out,
        "  format: zip archive ({} entries, no .npy or .png)",
        names.len()
    )
    .ok();
    Ok(())
}

fn inspect_dir(dir: &Path) -> Result<String> {
    let mut out = String::new();
    let mut subdirs = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, "list", e))? {
        let p = e.map_err(|e| DataError::io(dir, "list", e))?.path();
        if p.is_dir()
            && !p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
        {
            subdirs.push(p);
        }
    }
    let data_files = collect_data_files(dir, 0)?;
    if !data_files.is_empty() {
        writeln!(
            out,
            "{}: folder with {} data file(s)",
            path_name(dir),
            data_files.len()
        )
        .ok();
        for f in &data_files {
            match inspect_file(f) {
                Ok(s) => out.push_str(&s),
                Err(e) => {
                    writeln!(out, "{}\n  error: {e}", path_name(f)).ok();
                }
            }
        }
        return Ok(out);
    }
    if subdirs.is_empty() {
        return Err(DataError::NotFound {
            file: path_name(dir),
            what: "dataset".into(),
            expected: "data files (.npz, IDX, .csv[.gz], .zip) or class subfolders of PNG images"
                .into(),
        });
    }
    let all = list_files(dir, 0)?;
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
    for p in &all {
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
    let mut entries = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, "list", e))? {
        entries.push(e.map_err(|e| DataError::io(dir, "list", e))?.path());
    }
    entries.sort();
    for p in entries {
        if p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'))
        {
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
    let mut entries = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, "list", e))? {
        entries.push(e.map_err(|e| DataError::io(dir, "list", e))?.path());
    }
    entries.sort();
    for p in entries {
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
            v[0],
            v[v.len() / 2],
            v[v.len() - 1],
            v.len()
        )
        .ok();
    }
}

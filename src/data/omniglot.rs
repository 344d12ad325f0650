//! Omniglot (Lake et al. 2015): the `images_{background,evaluation}.npz` pair, Lake's
//! `Alphabet/characterNN/IIII_JJ.png` layout (folders or zips), and the Vinyals et al. (2016)
//! rotation-class splits.
//!
//! Images are resized from 105x105 to `size x size` (28 by default) with the exact-area
//! [`BoxResizer`]; ink is 1.0 and background 0.0.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;

use super::dataset::{name_or_number, ImageDataset, LabelledData};
use super::error::{open_regular_file, path_name, DataError, Result};
use super::image::{decode_png, rotate90, BoxResizer};
use super::image_folder::sorted_entries;
use super::npy::{
    open_zip, parse_npy, read_npy_header, read_up_to, zip_error, NpyDtype, NpyHeader,
};

/// The side of Omniglot images after resizing, as used by most few-shot papers.
pub const OMNIGLOT_SIZE: usize = 28;

/// Drawings per character.
pub const DRAWINGS_PER_CHARACTER: usize = 20;

/// Which of Lake's two sets a character belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OmniglotSet {
    /// `images_background`: 30 alphabets, 964 characters, ids 1..=964.
    Background,
    /// `images_evaluation`: 20 alphabets, 659 characters, ids 965..=1623.
    Evaluation,
}

impl OmniglotSet {
    /// The global id of the set's first character.
    pub fn first_id(self) -> u32 {
        match self {
            OmniglotSet::Background => 1,
            OmniglotSet::Evaluation => 965,
        }
    }

    /// The number of characters of the set.
    pub fn num_characters(self) -> usize {
        match self {
            OmniglotSet::Background => 964,
            OmniglotSet::Evaluation => 659,
        }
    }

    /// `"background"` or `"evaluation"`.
    pub fn name(self) -> &'static str {
        match self {
            OmniglotSet::Background => "background",
            OmniglotSet::Evaluation => "evaluation",
        }
    }
}

/// The 50 alphabets in Lake's id order: `(folder name, first global id, number of characters)`.
/// Character `characterNN` of an alphabet has id `first id + NN - 1`.
pub const OMNIGLOT_ALPHABETS: [(&str, u32, u32); 50] = [
    ("Arcadian", 1, 26),
    ("Armenian", 27, 41),
    ("Asomtavruli_(Georgian)", 68, 40),
    ("Balinese", 108, 24),
    ("Bengali", 132, 46),
    ("Blackfoot_(Canadian_Aboriginal_Syllabics)", 178, 14),
    ("Braille", 192, 26),
    ("Cyrillic", 218, 33),
    ("Early_Aramaic", 251, 22),
    ("Syriac_(Estrangelo)", 273, 23),
    ("Anglo-Saxon_Futhorc", 296, 29),
    ("Futurama", 325, 26),
    ("Grantha", 351, 43),
    ("Greek", 394, 24),
    ("Gujarati", 418, 48),
    ("Hebrew", 466, 22),
    ("Japanese_(hiragana)", 488, 52),
    ("Inuktitut_(Canadian_Aboriginal_Syllabics)", 540, 16),
    ("Malay_(Jawi_-_Arabic)", 556, 40),
    ("Japanese_(katakana)", 596, 47),
    ("Korean", 643, 40),
    ("Latin", 683, 26),
    ("Alphabet_of_the_Magi", 709, 20),
    ("Mkhedruli_(Georgian)", 729, 41),
    ("Burmese_(Myanmar)", 770, 34),
    ("N_Ko", 804, 33),
    ("Ojibwe_(Canadian_Aboriginal_Syllabics)", 837, 14),
    ("Sanskrit", 851, 42),
    ("Tagalog", 893, 17),
    ("Tifinagh", 910, 55),
    ("Angelic", 965, 20),
    ("Atemayar_Qelisayer", 985, 26),
    ("Atlantean", 1011, 26),
    ("Aurek-Besh", 1037, 26),
    ("Avesta", 1063, 26),
    ("Ge_ez", 1089, 26),
    ("Glagolitic", 1115, 45),
    ("Gurmukhi", 1160, 45),
    ("Kannada", 1205, 41),
    ("Keble", 1246, 26),
    ("Malayalam", 1272, 47),
    ("Manipuri", 1319, 40),
    ("Mongolian", 1359, 30),
    ("Old_Church_Slavonic_(Cyrillic)", 1389, 45),
    ("Oriya", 1434, 46),
    ("Syriac_(Serto)", 1480, 23),
    ("Sylheti", 1503, 28),
    ("Tengwar", 1531, 25),
    ("Tibetan", 1556, 42),
    ("ULOG", 1598, 26),
];

/// One Omniglot character (one class).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OmniglotCharacter {
    /// Lake's global id (1..=1623), `None` for an alphabet outside [`OMNIGLOT_ALPHABETS`].
    pub id: Option<u32>,
    /// The alphabet folder name, e.g. `"Latin"`.
    pub alphabet: String,
    /// The `NN` of `characterNN` (1-based).
    pub number: u32,
}

impl OmniglotCharacter {
    /// The character with global id `id` (1..=1623).
    pub fn from_id(id: u32) -> Option<Self> {
        OMNIGLOT_ALPHABETS
            .iter()
            .find(|(_, first, count)| (*first..first + count).contains(&id))
            .map(|(name, first, _)| OmniglotCharacter {
                id: Some(id),
                alphabet: name.to_string(),
                number: id - first + 1,
            })
    }

    /// The character `alphabet/characterNN`, with its id if the alphabet is known.
    pub fn from_folder(alphabet: &str, number: u32) -> Self {
        let id = OMNIGLOT_ALPHABETS
            .iter()
            .find(|(name, _, count)| *name == alphabet && (1..=*count).contains(&number))
            .map(|(_, first, _)| first + number - 1);
        OmniglotCharacter {
            id,
            alphabet: alphabet.to_string(),
            number,
        }
    }

    /// The set the character belongs to, if known.
    pub fn set(&self) -> Option<OmniglotSet> {
        self.id.map(|id| {
            if id < 965 {
                OmniglotSet::Background
            } else {
                OmniglotSet::Evaluation
            }
        })
    }

    /// `"Alphabet/characterNN"`, the class name used everywhere in this module.
    pub fn name(&self) -> String {
        format!("{}/character{:02}", self.alphabet, self.number)
    }
}

/// Omniglot images with their character metadata.
///
/// `images` is `[n, 1, size, size]`; class `k` is `characters[k]`, and example `i` is drawing
/// `drawings[i]` (1-based, Lake's `JJ`) of character `images.labels[i]`. The examples of a
/// class are contiguous and ordered by drawing.
#[derive(Debug, Clone, PartialEq)]
pub struct Omniglot {
    /// The images; class names are `"Alphabet/characterNN"`.
    pub images: ImageDataset,
    /// The character of each class.
    pub characters: Vec<OmniglotCharacter>,
    /// The drawing number of each example.
    pub drawings: Vec<u32>,
}

impl Omniglot {
    /// The class of character `"Alphabet/characterNN"`.
    pub fn class_of(&self, name: &str) -> Option<usize> {
        self.images.class_names.iter().position(|n| n == name)
    }

    /// The example index of drawing `drawing` of class `class`.
    pub fn example_of(&self, class: usize, drawing: u32) -> Option<usize> {
        self.images
            .labels
            .iter()
            .zip(&self.drawings)
            .position(|(&l, &d)| l == class && d == drawing)
    }

    /// Concatenates two Omniglot collections (for example background + evaluation).
    pub fn concat(mut self, other: Omniglot) -> Result<Omniglot> {
        let a = &mut self.images;
        let b = other.images;
        if (a.channels, a.height, a.width) != (b.channels, b.height, b.width) {
            return Err(DataError::InvalidArgument(format!(
                "cannot concatenate {}x{} images with {}x{} images",
                a.height, a.width, b.height, b.width
            )));
        }
        let offset = a.class_names.len();
        a.images.extend_from_slice(&b.images);
        a.labels.extend(b.labels.iter().map(|l| l + offset));
        a.class_names.extend(b.class_names);
        a.n += b.n;
        self.characters.extend(other.characters);
        self.drawings.extend(other.drawings);
        Ok(self)
    }
}

/// The largest image side accepted from an npz header or PNG (Omniglot's is 105).
pub const MAX_IMAGE_SIDE: usize = 1 << 14;

/// Loads one of the npz files (`images.npy`: bool `(chars, 20, 105, 105)` with `true` =
/// background; `labels.npy`: `(chars, 20)` with `labels[i, j] == i`). The set is recognised
/// from the number of characters (964 = background, 659 = evaluation).
pub fn load_omniglot_npz(path: &Path, size: usize) -> Result<Omniglot> {
    let name = path_name(path);
    let file = open_regular_file(path, "an npz (zip) file")?;
    let mut archive = open_zip(BufReader::with_capacity(1 << 16, file), &name)?;
    let (set, rows, cols) = read_npz_labels(&mut archive, &name)?;
    let images_member = format!("{name}/images.npy");
    let mut f = npz_member(&mut archive, &name, "images.npy")?;
    let declared = f.size();
    let header = read_npy_header(&mut f, &images_member)?;
    let (h, w) = check_images_header(&header, rows, cols, declared, &images_member)?;
    let images = read_npz_images(&mut f, (rows, cols, h, w), size, &images_member)?;
    let n = rows * cols;
    let characters: Vec<OmniglotCharacter> = (0..rows)
        .map(|r| {
            let id = u32::try_from(r)
                .ok()
                .and_then(|r| r.checked_add(set.first_id()));
            id.and_then(OmniglotCharacter::from_id).ok_or_else(|| {
                DataError::format(&name, "character row", "a known Omniglot id", r.to_string())
            })
        })
        .collect::<Result<_>>()?;
    let labels: Vec<usize> = (0..n).map(|i| i / cols).collect();
    let drawings: Vec<u32> = (0..n).map(|i| (i % cols) as u32 + 1).collect();
    let class_names = characters.iter().map(OmniglotCharacter::name).collect();
    Ok(Omniglot {
        images: ImageDataset::new(images, [n, 1, size, size], labels, class_names)?,
        characters,
        drawings,
    })
}

/// The member `member` of the npz `name`, or a [`DataError::NotFound`] naming it.
fn npz_member<'a, R: Read + std::io::Seek>(
    archive: &'a mut zip::ZipArchive<R>,
    name: &str,
    member: &str,
) -> Result<zip::read::ZipFile<'a, R>> {
    archive.by_name(member).map_err(|_| DataError::NotFound {
        file: name.to_string(),
        what: "npz member".into(),
        expected: member.into(),
    })
}

/// Reads and checks `labels.npy` (`labels[i, j] == i`): the set, characters and drawings.
fn read_npz_labels<R: Read + std::io::Seek>(
    archive: &mut zip::ZipArchive<R>,
    name: &str,
) -> Result<(OmniglotSet, usize, usize)> {
    let labels_member = format!("{name}/labels.npy");
    let mut f = npz_member(archive, name, "labels.npy")?;
    let mut buf = Vec::new();
    let declared = f.size();
    (&mut f)
        .take(declared.min(1 << 30))
        .read_to_end(&mut buf)
        .map_err(|e| {
            DataError::format(
                &labels_member,
                "zip member",
                "a readable stream",
                e.to_string(),
            )
        })?;
    let labels = parse_npy(&buf, &labels_member)?;
    let &[rows, cols] = labels.header.shape.as_slice() else {
        return Err(DataError::format(
            labels_member,
            "shape",
            "(characters, drawings)",
            format!("{:?}", labels.header.shape),
        ));
    };
    let set = match rows {
        964 => OmniglotSet::Background,
        659 => OmniglotSet::Evaluation,
        _ => {
            return Err(DataError::format(
                labels_member,
                "number of characters",
                "964 (images_background) or 659 (images_evaluation)",
                rows.to_string(),
            ))
        }
    };
    if cols == 0 {
        return Err(DataError::format(
            labels_member,
            "number of drawings",
            "at least 1",
            "0",
        ));
    }
    let label_values = labels.to_i64_vec(&labels_member)?;
    if let Some((k, v)) = label_values
        .iter()
        .enumerate()
        .find(|(k, &v)| v != (k / cols) as i64)
    {
        return Err(DataError::format(
            labels_member,
            format!("labels[{}, {}]", k / cols, k % cols),
            format!("{} (the row index)", k / cols),
            v.to_string(),
        ));
    }
    Ok((set, rows, cols))
}

/// Checks the header of `images.npy` against the labels and the member's declared size;
/// returns the image height and width.
fn check_images_header(
    header: &NpyHeader,
    rows: usize,
    cols: usize,
    declared: u64,
    member: &str,
) -> Result<(usize, usize)> {
    let (h, w) = match *header.shape.as_slice() {
        [r, c, h, w]
            if matches!(header.dtype, NpyDtype::Bool | NpyDtype::U8)
                && !header.fortran_order
                && (r, c) == (rows, cols)
                && (1..=MAX_IMAGE_SIDE).contains(&h)
                && (1..=MAX_IMAGE_SIDE).contains(&w) =>
        {
            (h, w)
        }
        _ => {
            return Err(DataError::format(
                member,
                "array",
                format!(
                    "C-order bool array of shape ({rows}, {cols}, H, W) with 1 <= H, W <= \
                     {MAX_IMAGE_SIDE}"
                ),
                format!(
                    "descr {:?}, fortran_order {}, shape {:?}",
                    header.descr, header.fortran_order, header.shape
                ),
            ))
        }
    };
    let data_len = header.data_len().and_then(|l| u64::try_from(l).ok());
    let total = data_len.and_then(|l| l.checked_add(header.header_len as u64));
    match (data_len, total) {
        (Some(len), Some(total)) if declared < total => Err(DataError::truncated(
            member,
            "array data",
            len,
            declared.saturating_sub(header.header_len as u64),
        )),
        (Some(_), Some(_)) => Ok((h, w)),
        _ => Err(DataError::format(
            member,
            "shape",
            "a shape whose size fits in memory",
            format!("{:?}", header.shape),
        )),
    }
}

/// Streams the `(rows, cols, h, w)` images of `images.npy`, resizing chunk by chunk in
/// parallel to `size x size` (ink = 1.0).
fn read_npz_images(
    f: &mut impl Read,
    (rows, cols, h, w): (usize, usize, usize, usize),
    size: usize,
    member: &str,
) -> Result<Vec<f32>> {
    const CHUNK: usize = 512;
    let too_big = || {
        DataError::format(
            member,
            "image count and size",
            "a resized dataset that fits in memory",
            format!("{rows}x{cols} images resized to {size}x{size}"),
        )
    };
    let n = rows.checked_mul(cols).ok_or_else(too_big)?;
    let out_len = size.checked_mul(size).ok_or_else(too_big)?;
    let total = n.checked_mul(out_len).ok_or_else(too_big)?;
    let resizer = BoxResizer::new(h, w, size, size)?;
    let (hw, data_len) = (h * w, (n as u64).saturating_mul((h * w) as u64));
    let mut images = vec![0.0f32; total];
    let mut buf = vec![0u8; CHUNK * hw];
    let mut done = 0usize;
    for out_chunk in images.chunks_mut(CHUNK * out_len) {
        let m = out_chunk.len() / out_len;
        let src = buf.get_mut(..m * hw).ok_or_else(too_big)?;
        let got = read_up_to(f, src, member)?;
        if got < src.len() {
            return Err(DataError::truncated(
                member,
                "array data",
                data_len,
                (done * hw + got) as u64,
            ));
        }
        src.par_chunks(hw)
            .zip(out_chunk.par_chunks_mut(out_len))
            .for_each_init(Vec::new, |tmp, (s, d)| {
                resizer.resize_with(s, |b: u8| if b == 0 { 1.0 } else { 0.0 }, d, tmp)
            });
        done += m;
    }
    Ok(images)
}

/// Loads `images_background.npz` and `images_evaluation.npz` from `dir` (in parallel) as one
/// collection of 1623 characters, class `k` being global id `k + 1`, resized to 28x28.
pub fn load_omniglot(dir: &Path) -> Result<Omniglot> {
    load_omniglot_sized(dir, OMNIGLOT_SIZE)
}

/// [`load_omniglot`] with another output size.
pub fn load_omniglot_sized(dir: &Path, size: usize) -> Result<Omniglot> {
    let (bg, ev) = rayon::join(
        || load_omniglot_npz(&dir.join("images_background.npz"), size),
        || load_omniglot_npz(&dir.join("images_evaluation.npz"), size),
    );
    bg?.concat(ev?)
}

/// A PNG of Lake's layout found in a folder or zip, not yet decoded.
struct PngItem {
    alphabet: String,
    number: u32,
    file_name: String,
    source: String,
    bytes: Vec<u8>,
}

/// Splits `.../Alphabet/characterNN/file.png` into its parts; `None` if the path has another form.
fn lake_parts(path: &str) -> Option<(String, u32, String)> {
    let parts: Vec<&str> = path.split(['/', '\\']).filter(|p| !p.is_empty()).collect();
    let &[.., alphabet, chardir, file] = parts.as_slice() else {
        return None;
    };
    if !file.to_ascii_lowercase().ends_with(".png")
        || alphabet.starts_with('.')
        || file.starts_with('.')
    {
        return None;
    }
    let number: u32 = chardir.strip_prefix("character")?.parse().ok()?;
    Some((alphabet.to_string(), number, file.to_string()))
}

fn collect_dir(dir: &Path, out: &mut Vec<PngItem>, depth: usize) -> Result<()> {
    for p in sorted_entries(dir)? {
        if p.is_dir() {
            if depth < 8 {
                collect_dir(&p, out, depth + 1)?;
            }
        } else if let Some((alphabet, number, file_name)) = lake_parts(&p.to_string_lossy()) {
            let bytes = std::fs::read(&p).map_err(|e| DataError::io(&p, "read", e))?;
            out.push(PngItem {
                alphabet,
                number,
                file_name,
                source: path_name(&p),
                bytes,
            });
        }
    }
    Ok(())
}

fn collect_zip(path: &Path, out: &mut Vec<PngItem>) -> Result<()> {
    let name = path_name(path);
    let file = File::open(path).map_err(|e| DataError::io(path, "open", e))?;
    let mut archive = open_zip(BufReader::new(file), &name)?;
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).map_err(|e| zip_error(&name, e))?;
        if f.is_dir() {
            continue;
        }
        let Some((alphabet, number, file_name)) = lake_parts(f.name()) else {
            continue;
        };
        let source = format!("{name}/{}", f.name());
        let mut bytes = Vec::with_capacity(f.size().min(1 << 20) as usize);
        (&mut f)
            .take(64 << 20)
            .read_to_end(&mut bytes)
            .map_err(|e| {
                DataError::format(
                    source.clone(),
                    "zip member",
                    "a readable stream",
                    e.to_string(),
                )
            })?;
        out.push(PngItem {
            alphabet,
            number,
            file_name,
            source,
            bytes,
        });
    }
    Ok(())
}

/// Loads Omniglot PNGs in Lake's layout (`Alphabet/characterNN/IIII_JJ.png`, white =
/// background) from any mix of folders (searched recursively) and zip files, resizing to
/// `size x size`. A drawing present in several sources (e.g. Greek in both small zips) is kept
/// once. Classes are ordered by Lake's id (unknown alphabets last, by name); examples by drawing.
pub fn load_omniglot_pngs<P: AsRef<Path>>(sources: &[P], size: usize) -> Result<Omniglot> {
    let items = collect_pngs(sources)?;
    let (characters, work) = number_drawings(items)?;
    let images = decode_and_resize(&work, size)?;
    let labels = work.iter().map(|(c, _, _)| *c).collect();
    let drawings = work.iter().map(|(_, d, _)| *d).collect();
    let class_names = characters.iter().map(OmniglotCharacter::name).collect();
    Ok(Omniglot {
        images: ImageDataset::new(images, [work.len(), 1, size, size], labels, class_names)?,
        characters,
        drawings,
    })
}

/// A PNG with its class index and drawing number.
type NumberedPng = (usize, u32, PngItem);

/// Every PNG of the sources (folders searched recursively, zip files); an error when there is
/// none.
fn collect_pngs<P: AsRef<Path>>(sources: &[P]) -> Result<Vec<PngItem>> {
    let mut items = Vec::new();
    for s in sources {
        let s = s.as_ref();
        if s.is_dir() {
            collect_dir(s, &mut items, 0)?;
        } else {
            collect_zip(s, &mut items)?;
        }
    }
    if items.is_empty() {
        let names: Vec<String> = sources.iter().map(|s| path_name(s.as_ref())).collect();
        return Err(DataError::NotFound {
            file: names.join(", "),
            what: "Omniglot PNG".into(),
            expected: "files Alphabet/characterNN/IIII_JJ.png".into(),
        });
    }
    Ok(items)
}

/// The PNGs grouped by character (ordered by Lake's id, unknown alphabets last by name), each
/// with its class index and drawing number, duplicates dropped.
fn number_drawings(items: Vec<PngItem>) -> Result<(Vec<OmniglotCharacter>, Vec<NumberedPng>)> {
    let mut groups: BTreeMap<(u32, String, u32), Vec<PngItem>> = BTreeMap::new();
    for it in items {
        let ch = OmniglotCharacter::from_folder(&it.alphabet, it.number);
        let key = (ch.id.unwrap_or(u32::MAX), it.alphabet.clone(), it.number);
        groups.entry(key).or_default().push(it);
    }
    let mut characters = Vec::new();
    let mut work: Vec<NumberedPng> = Vec::new();
    for ((_, alphabet, number), list) in groups {
        let ch = OmniglotCharacter::from_folder(&alphabet, number);
        let class = characters.len();
        let entries = character_drawings(&ch, list)?;
        work.extend(entries.into_iter().map(|(d, it)| (class, d, it)));
        characters.push(ch);
    }
    Ok((characters, work))
}

/// One character's PNGs by drawing number: `JJ` of `IIII_JJ.png` (where `IIII` must be the
/// character's Lake id when it has one), else 1, 2, ... in file-name order; a drawing seen
/// twice is kept once.
fn character_drawings(
    ch: &OmniglotCharacter,
    mut list: Vec<PngItem>,
) -> Result<Vec<(u32, PngItem)>> {
    list.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    let mut seen = BTreeSet::new();
    let mut fallback = 0u32;
    let mut entries = Vec::new();
    for it in list {
        let stem = &it.file_name[..it.file_name.len() - 4];
        let drawing = match stem.split_once('_') {
            Some((id, d)) if id.parse::<u32>().is_ok() && d.parse::<u32>().is_ok() => {
                let file_id: u32 = id.parse().unwrap_or(0);
                if let Some(expected) = ch.id {
                    if file_id != expected {
                        return Err(DataError::format(
                            it.source,
                            "character id in file name",
                            format!("{expected:04} (id of {})", ch.name()),
                            format!("{file_id:04}"),
                        ));
                    }
                }
                d.parse().unwrap_or(0)
            }
            _ => {
                fallback += 1;
                fallback
            }
        };
        if seen.insert(drawing) {
            entries.push((drawing, it));
        }
    }
    entries.sort_by_key(|(d, _)| *d);
    Ok(entries)
}

/// The PNGs decoded (ink = 1 - intensity) and area-resized to `size x size`, in parallel,
/// concatenated in order.
fn decode_and_resize(work: &[NumberedPng], size: usize) -> Result<Vec<f32>> {
    let out_len = size * size;
    let decoded: Vec<Result<Vec<f32>>> = work
        .par_iter()
        .map(|(_, _, it)| {
            let png = decode_png(&it.bytes, &it.source)?;
            let ink = png.to_ink();
            let resizer = BoxResizer::new(png.height, png.width, size, size).map_err(|_| {
                DataError::format(
                    it.source.clone(),
                    "image size",
                    "a nonempty image",
                    "0 pixels",
                )
            })?;
            let mut out = vec![0.0; out_len];
            resizer.resize_with(&ink, |p| p, &mut out, &mut Vec::new());
            Ok(out)
        })
        .collect();
    let mut images = Vec::with_capacity(work.len() * out_len);
    for d in decoded {
        images.extend_from_slice(&d?);
    }
    Ok(images)
}

/// One class of a Vinyals split file: a character and a rotation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VinyalsClass {
    /// `"Alphabet/characterNN"`.
    pub character: String,
    /// Counter-clockwise quarter turns (0..=3) for `rot000`, `rot090`, `rot180`, `rot270`.
    pub quarter_turns: u32,
}

/// Parses a Vinyals split file (`Alphabet/characterNN/rotDDD` per line; blank lines ignored).
pub fn parse_vinyals_split(text: &str, name: &str) -> Result<Vec<VinyalsClass>> {
    let mut out = Vec::new();
    for (ln, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad = |found: &str| {
            DataError::format(
                format!("{name}:{}", ln + 1),
                "split line",
                "Alphabet/characterNN/rotDDD with DDD in 000, 090, 180, 270",
                found.to_string(),
            )
        };
        let (character, rot) = line.rsplit_once('/').ok_or_else(|| bad(line))?;
        let quarter_turns = match rot {
            "rot000" => 0,
            "rot090" => 1,
            "rot180" => 2,
            "rot270" => 3,
            _ => return Err(bad(line)),
        };
        if !character.contains('/') {
            return Err(bad(line));
        }
        out.push(VinyalsClass {
            character: character.to_string(),
            quarter_turns,
        });
    }
    Ok(out)
}

/// A dataset whose classes are (base class, rotation) pairs: each example of the base class,
/// rotated counter-clockwise by the class's quarter turns, computed when an example is read.
#[derive(Debug, Clone)]
pub struct RotatedDataset {
    base: Arc<ImageDataset>,
    classes: Vec<(usize, u32)>,
    class_names: Vec<String>,
    examples: Vec<usize>,
    labels: Vec<usize>,
}

impl RotatedDataset {
    /// Builds the dataset of `classes` = `(base class, quarter turns)`; the examples of class
    /// `k` are all examples of its base class, in base order. Rotations other than 0 and 2
    /// need square images.
    pub fn new(base: Arc<ImageDataset>, classes: Vec<(usize, u32)>) -> Result<Self> {
        let index = base.class_index();
        let mut examples = Vec::new();
        let mut labels = Vec::new();
        let mut class_names = Vec::with_capacity(classes.len());
        for (k, &(c, q)) in classes.iter().enumerate() {
            if c >= base.num_classes() {
                return Err(DataError::InvalidArgument(format!(
                    "base class {c} out of range for {} classes",
                    base.num_classes()
                )));
            }
            if q % 2 == 1 && base.height != base.width {
                return Err(DataError::InvalidArgument(format!(
                    "cannot rotate {}x{} images by 90 degrees within a fixed shape",
                    base.height, base.width
                )));
            }
            class_names.push(format!("{}/rot{:03}", base.class_name(c), (q % 4) * 90));
            examples.extend_from_slice(index.examples(c));
            labels.extend(std::iter::repeat_n(k, index.examples(c).len()));
        }
        Ok(RotatedDataset {
            base,
            classes,
            class_names,
            examples,
            labels,
        })
    }

    /// Every class of `base` in all four rotations (class `4 * c + q` is class `c` turned `q` times).
    pub fn all_rotations(base: Arc<ImageDataset>) -> Result<Self> {
        let classes = (0..base.num_classes())
            .flat_map(|c| (0..4).map(move |q| (c, q)))
            .collect();
        Self::new(base, classes)
    }

    /// The unrotated images.
    pub fn base(&self) -> &Arc<ImageDataset> {
        &self.base
    }

    /// `(base class, quarter turns)` of class `k`. Panics if `k` is not a class.
    #[allow(clippy::indexing_slicing)] // documented panic: `k < num_classes()` is the contract
    pub fn class(&self, k: usize) -> (usize, u32) {
        self.classes[k]
    }

    /// The names of the classes, `"<base name>/rotDDD"`.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// The base example behind example `i`. Panics if `i >= len()`.
    #[allow(clippy::indexing_slicing)] // documented panic: `i < len()` is the contract
    pub fn base_example(&self, i: usize) -> usize {
        self.examples[i]
    }

    /// Materialises every (rotated) example into an [`ImageDataset`].
    pub fn to_image_dataset(&self) -> Result<ImageDataset> {
        let len = self.example_len();
        let mut images = vec![0.0; self.len() * len];
        images
            .par_chunks_mut(len.max(1))
            .enumerate()
            .for_each(|(i, out)| self.write_example(i, out));
        ImageDataset::new(
            images,
            [
                self.len(),
                self.base.channels,
                self.base.height,
                self.base.width,
            ],
            self.labels.clone(),
            self.class_names.clone(),
        )
    }
}

// `i < len()` is the trait's contract; `new` built `examples`, `labels` and `classes` together.
#[allow(clippy::indexing_slicing)]
impl LabelledData for RotatedDataset {
    fn len(&self) -> usize {
        self.examples.len()
    }
    fn example_shape(&self) -> Vec<usize> {
        vec![self.base.channels, self.base.height, self.base.width]
    }
    fn num_classes(&self) -> usize {
        self.classes.len()
    }
    fn label(&self, i: usize) -> usize {
        self.labels[i]
    }
    fn class_name(&self, class: usize) -> String {
        name_or_number(&self.class_names, class)
    }
    fn write_example(&self, i: usize, out: &mut [f32]) {
        out.copy_from_slice(self.base.image(self.examples[i]));
        self.rotate_in_place(i, out);
    }
    fn extend_example(&self, i: usize, _len: usize, out: &mut Vec<f32>) {
        let start = out.len();
        out.extend_from_slice(self.base.image(self.examples[i]));
        self.rotate_in_place(i, &mut out[start..]);
    }
}

// `i < len()` as in the trait; `plane <= local.len()` is checked before slicing `local`.
#[allow(clippy::indexing_slicing)]
impl RotatedDataset {
    /// Rotates `img` (a copy of example `i`'s base image) by example `i`'s quarter turns.
    fn rotate_in_place(&self, i: usize, img: &mut [f32]) {
        let (_, q) = self.classes[self.labels[i]];
        if q % 4 == 0 {
            return;
        }
        let (h, w) = (self.base.height, self.base.width);
        let plane = h * w;
        let mut local = [0.0f32; 1024];
        let mut heap = Vec::new();
        let buf: &mut [f32] = if plane <= local.len() {
            &mut local[..plane]
        } else {
            heap.resize(plane, 0.0);
            &mut heap
        };
        for chunk in img.chunks_exact_mut(plane) {
            buf.copy_from_slice(chunk);
            rotate90(buf, h, w, q, chunk);
        }
    }
}

/// The Vinyals et al. (2016) Omniglot splits: class-disjoint train / val / test sets of
/// rotation classes (4112 / 688 / 1692 classes of 20 examples).
#[derive(Debug, Clone)]
pub struct VinyalsSplits {
    /// All 1623 characters (unrotated), shared by the three splits.
    pub omniglot: Arc<ImageDataset>,
    /// The character of each class of `omniglot`.
    pub characters: Vec<OmniglotCharacter>,
    /// `splits/vinyals/train.txt`.
    pub train: RotatedDataset,
    /// `splits/vinyals/val.txt`.
    pub val: RotatedDataset,
    /// `splits/vinyals/test.txt`.
    pub test: RotatedDataset,
}

/// Builds the rotation classes listed in a split file over `omniglot` (whose class names are
/// `"Alphabet/characterNN"`).
pub fn load_vinyals_split(
    omniglot: &Arc<ImageDataset>,
    split_file: &Path,
) -> Result<RotatedDataset> {
    let name = path_name(split_file);
    let text =
        std::fs::read_to_string(split_file).map_err(|e| DataError::io(split_file, "read", e))?;
    let lines = parse_vinyals_split(&text, &name)?;
    let by_name: HashMap<&str, usize> = omniglot
        .class_names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let mut classes = Vec::with_capacity(lines.len());
    for (k, l) in lines.iter().enumerate() {
        let c = by_name
            .get(l.character.as_str())
            .ok_or_else(|| DataError::NotFound {
                file: format!("{name}: class {k}"),
                what: format!("character {:?}", l.character),
                expected: format!(
                    "one of the {} loaded Omniglot characters",
                    omniglot.num_classes()
                ),
            })?;
        classes.push((*c, l.quarter_turns));
    }
    RotatedDataset::new(Arc::clone(omniglot), classes)
}

/// Loads both npz files of `dir` and the three split files of `dir/splits/vinyals/`.
pub fn load_vinyals(dir: &Path) -> Result<VinyalsSplits> {
    let o = load_omniglot(dir)?;
    let omniglot = Arc::new(o.images);
    let split_dir = dir.join("splits").join("vinyals");
    Ok(VinyalsSplits {
        train: load_vinyals_split(&omniglot, &split_dir.join("train.txt"))?,
        val: load_vinyals_split(&omniglot, &split_dir.join("val.txt"))?,
        test: load_vinyals_split(&omniglot, &split_dir.join("test.txt"))?,
        characters: o.characters,
        omniglot,
    })
}

/// The background alphabets that the Lake split holds out as its validation classes (136 of
/// the 964 background characters): whole alphabets, so that within-alphabet validation
/// episodes, like the test episodes, contrast characters of an alphabet never trained on.
/// Each has at least 20 characters (20-way within-alphabet validation episodes draw from
/// all five), none shares its script with another background alphabet, and together they
/// span small (Early Aramaic, 22) to large (Korean, 40) alphabets.
pub const LAKE_VALIDATION_ALPHABETS: [&str; 5] =
    ["Balinese", "Early_Aramaic", "Futurama", "Greek", "Korean"];

/// Lake et al.'s (2015) Omniglot protocol as class splits: train on the background set,
/// test on the 659 characters of the 20 evaluation alphabets.
///
/// - train: the background characters outside [`LAKE_VALIDATION_ALPHABETS`] (828 of 964), in
///   Lake's id order; with rotation classes, each of them in four quarter turns (class
///   `4 * c + q` is training character `c` turned `q` times counter-clockwise);
/// - validation: the 136 characters of the five held-out background alphabets, unrotated;
/// - test: the 659 evaluation characters, unrotated.
#[derive(Debug, Clone)]
pub struct LakeSplits {
    /// All loaded characters (unrotated), shared by the three splits.
    pub omniglot: Arc<ImageDataset>,
    /// The character of each class of `omniglot`.
    pub characters: Vec<OmniglotCharacter>,
    /// The drawing (drawer, Lake's `JJ`) of each example of `omniglot`.
    pub drawings: Vec<u32>,
    /// Training classes.
    pub train: RotatedDataset,
    /// Validation classes.
    pub val: RotatedDataset,
    /// Test classes.
    pub test: RotatedDataset,
}

impl LakeSplits {
    /// Splits a loaded Omniglot collection (both sets, e.g. [`load_omniglot_sized`]) into the
    /// Lake train / validation / test classes. Characters of unknown alphabets are left out;
    /// an empty split is an error naming it.
    pub fn new(o: Omniglot, rotation_classes: bool) -> Result<Self> {
        let omniglot = Arc::new(o.images);
        let (mut train, mut val, mut test) = (Vec::new(), Vec::new(), Vec::new());
        for (c, ch) in o.characters.iter().enumerate() {
            match ch.set() {
                Some(OmniglotSet::Evaluation) => test.push((c, 0)),
                Some(OmniglotSet::Background)
                    if LAKE_VALIDATION_ALPHABETS.contains(&ch.alphabet.as_str()) =>
                {
                    val.push((c, 0))
                }
                Some(OmniglotSet::Background) if rotation_classes => {
                    train.extend((0..4).map(|q| (c, q)))
                }
                Some(OmniglotSet::Background) => train.push((c, 0)),
                None => {}
            }
        }
        for (name, classes) in [("train", &train), ("validation", &val), ("test", &test)] {
            if classes.is_empty() {
                return Err(DataError::InvalidArgument(format!(
                    "the Lake {name} split is empty: the data needs both images_background and \
                     images_evaluation ({} characters loaded)",
                    o.characters.len()
                )));
            }
        }
        Ok(LakeSplits {
            train: RotatedDataset::new(Arc::clone(&omniglot), train)?,
            val: RotatedDataset::new(Arc::clone(&omniglot), val)?,
            test: RotatedDataset::new(Arc::clone(&omniglot), test)?,
            omniglot,
            characters: o.characters,
            drawings: o.drawings,
        })
    }
}

/// Loads both npz files of `dir` at `size x size` and splits them by [`LakeSplits::new`].
pub fn load_lake(dir: &Path, size: usize, rotation_classes: bool) -> Result<LakeSplits> {
    LakeSplits::new(load_omniglot_sized(dir, size)?, rotation_classes)
}

/// What an episode sampler needs to know about a split of Omniglot rotation classes beyond
/// the images: which alphabet each class belongs to, and who drew each example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OmniglotStructure {
    /// The group of each class: one group per (alphabet, quarter turns), so a within-alphabet
    /// episode never mixes an alphabet with its rotated copy (a rotated alphabet is a new
    /// alphabet, as a rotated character is a new character).
    pub class_group: Vec<usize>,
    /// The name of each group: `"Latin"`, or `"Latin/rot090"` for a rotated copy.
    pub group_names: Vec<String>,
    /// The drawer (Lake's `JJ`, 1..=20) of each example; a rotated example keeps its base
    /// image's drawer.
    pub example_drawer: Vec<u32>,
}

impl OmniglotStructure {
    /// The structure of `ds`, whose base classes are `characters` and whose base examples
    /// were drawn by `drawings`; an error if `ds` refers to a character or example they lack.
    pub fn of(
        ds: &RotatedDataset,
        characters: &[OmniglotCharacter],
        drawings: &[u32],
    ) -> Result<Self> {
        let mut names: Vec<String> = Vec::new();
        let mut ids: HashMap<String, usize> = HashMap::new();
        let mut class_group = Vec::with_capacity(ds.num_classes());
        for k in 0..ds.num_classes() {
            let (c, q) = ds.class(k);
            let ch = characters.get(c).ok_or_else(|| {
                DataError::InvalidArgument(format!(
                    "class {k} is base character {c}, but only {} characters are known",
                    characters.len()
                ))
            })?;
            let name = match q % 4 {
                0 => ch.alphabet.clone(),
                q => format!("{}/rot{:03}", ch.alphabet, q * 90),
            };
            let next = names.len();
            let g = *ids.entry(name.clone()).or_insert(next);
            if g == next {
                names.push(name);
            }
            class_group.push(g);
        }
        let example_drawer = (0..ds.len())
            .map(|i| {
                drawings.get(ds.base_example(i)).copied().ok_or_else(|| {
                    DataError::InvalidArgument(format!(
                        "example {i} has no drawing number ({} known)",
                        drawings.len()
                    ))
                })
            })
            .collect::<Result<_>>()?;
        Ok(OmniglotStructure {
            class_group,
            group_names: names,
            example_drawer,
        })
    }
}

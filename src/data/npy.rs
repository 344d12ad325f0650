//! A small, panic-free reader for NumPy `.npy` arrays and `.npz` archives (zips of `.npy`).
//!
//! Only what datasets need: numeric and boolean dtypes, C or Fortran order, any shape.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::{Cursor, Read, Seek};

use super::error::{DataError, Result};

/// The first bytes of every `.npy` file.
pub const NPY_MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Element types of `.npy` arrays that this reader understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NpyDtype {
    /// `|b1`: one byte, 0 = false, nonzero = true.
    Bool,
    /// `|u1`.
    U8,
    /// `|i1`.
    I8,
    /// `u2`.
    U16,
    /// `i2`.
    I16,
    /// `u4`.
    U32,
    /// `i4`.
    I32,
    /// `u8`.
    U64,
    /// `i8`.
    I64,
    /// `f4`.
    F32,
    /// `f8`.
    F64,
}

impl NpyDtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            NpyDtype::Bool | NpyDtype::U8 | NpyDtype::I8 => 1,
            NpyDtype::U16 | NpyDtype::I16 => 2,
            NpyDtype::U32 | NpyDtype::I32 | NpyDtype::F32 => 4,
            NpyDtype::U64 | NpyDtype::I64 | NpyDtype::F64 => 8,
        }
    }
}

/// The parsed header of a `.npy` array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// The `descr` string as written (e.g. `"<i8"`).
    pub descr: String,
    /// The element type.
    pub dtype: NpyDtype,
    /// Whether multi-byte elements are big-endian.
    pub big_endian: bool,
    /// Whether the data is in column-major (Fortran) order.
    pub fortran_order: bool,
    /// The array shape (empty for a scalar).
    pub shape: Vec<usize>,
    /// The number of bytes before the data (magic, version, length field and header).
    pub header_len: usize,
}

impl NpyHeader {
    /// The number of elements (product of the shape), or `None` on overflow.
    pub fn num_elements(&self) -> Option<usize> {
        self.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
    }

    /// The number of data bytes, or `None` on overflow.
    pub fn data_len(&self) -> Option<usize> {
        self.num_elements()?.checked_mul(self.dtype.size())
    }
}

/// A `.npy` array: its header and raw data bytes (in the file's byte order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyArray {
    /// The header.
    pub header: NpyHeader,
    /// The raw element bytes.
    pub data: Vec<u8>,
}

macro_rules! convert {
    ($self:ident, $ty:ty, $f:expr) => {{
        let be = $self.header.big_endian;
        $self
            .data
            .chunks_exact(std::mem::size_of::<$ty>())
            .map(|c| {
                let b = super::idx::array(c);
                let v = if be {
                    <$ty>::from_be_bytes(b)
                } else {
                    <$ty>::from_le_bytes(b)
                };
                $f(v)
            })
            .collect()
    }};
}

impl NpyArray {
    /// The elements converted to `f64` (booleans as 0/1), in storage order.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match self.header.dtype {
            NpyDtype::Bool => self
                .data
                .iter()
                .map(|&b| f64::from(u8::from(b != 0)))
                .collect(),
            NpyDtype::U8 => self.data.iter().map(|&b| f64::from(b)).collect(),
            NpyDtype::I8 => self.data.iter().map(|&b| f64::from(b as i8)).collect(),
            NpyDtype::U16 => convert!(self, u16, f64::from),
            NpyDtype::I16 => convert!(self, i16, f64::from),
            NpyDtype::U32 => convert!(self, u32, f64::from),
            NpyDtype::I32 => convert!(self, i32, f64::from),
            NpyDtype::U64 => convert!(self, u64, |v: u64| v as f64),
            NpyDtype::I64 => convert!(self, i64, |v: i64| v as f64),
            NpyDtype::F32 => convert!(self, f32, f64::from),
            NpyDtype::F64 => convert!(self, f64, |v| v),
        }
    }

    /// The elements as `i64` if the dtype is an integer or boolean type, in storage order.
    pub fn to_i64_vec(&self, name: &str) -> Result<Vec<i64>> {
        Ok(match self.header.dtype {
            NpyDtype::Bool => self.data.iter().map(|&b| i64::from(b != 0)).collect(),
            NpyDtype::U8 => self.data.iter().map(|&b| i64::from(b)).collect(),
            NpyDtype::I8 => self.data.iter().map(|&b| i64::from(b as i8)).collect(),
            NpyDtype::U16 => convert!(self, u16, i64::from),
            NpyDtype::I16 => convert!(self, i16, i64::from),
            NpyDtype::U32 => convert!(self, u32, i64::from),
            NpyDtype::I32 => convert!(self, i32, i64::from),
            NpyDtype::I64 => convert!(self, i64, |v| v),
            NpyDtype::U64 => convert!(self, u64, |v: u64| v as i64),
            NpyDtype::F32 | NpyDtype::F64 => {
                return Err(DataError::format(
                    name,
                    "dtype",
                    "an integer dtype",
                    self.header.descr.clone(),
                ))
            }
        })
    }
}

/// Parses a `.npy` file held in memory. `name` is used in error messages.
pub fn parse_npy(bytes: &[u8], name: &str) -> Result<NpyArray> {
    let mut cursor = Cursor::new(bytes);
    let header = read_npy_header(&mut cursor, name)?;
    let rest = bytes.get(header.header_len..).unwrap_or_default();
    let len = header.data_len().ok_or_else(|| {
        DataError::format(
            name,
            "shape",
            "a shape whose size fits in memory",
            format!("{:?}", header.shape),
        )
    })?;
    DataError::check_data_length(
        name,
        "array data",
        len,
        rest.len(),
        "file length",
        || format!("{len} data bytes after the header"),
        || format!("{} bytes", rest.len()),
    )?;
    let array = NpyArray {
        header,
        data: rest.to_vec(),
    };
    check_finite(&array, name)?;
    Ok(array)
}

/// Rejects a float array holding a NaN or an infinity, naming the first such element by its
/// index in the array's shape (in storage order for Fortran-order arrays).
fn check_finite(a: &NpyArray, name: &str) -> Result<()> {
    if !matches!(a.header.dtype, NpyDtype::F32 | NpyDtype::F64) {
        return Ok(());
    }
    let Some((flat, v)) = a
        .to_f64_vec()
        .into_iter()
        .enumerate()
        .find(|(_, v)| !v.is_finite())
    else {
        return Ok(());
    };
    let mut index = Vec::with_capacity(a.header.shape.len());
    let mut rest = flat;
    for &d in a.header.shape.iter().rev() {
        index.push(rest % d.max(1));
        rest /= d.max(1);
    }
    index.reverse();
    Err(DataError::format(
        name,
        format!("value at index {index:?}"),
        "a finite number (not NaN or infinite)",
        v.to_string(),
    ))
}

/// Reads and parses the header of a `.npy` stream, leaving `reader` at the first data byte.
pub fn read_npy_header<R: Read>(reader: &mut R, name: &str) -> Result<NpyHeader> {
    let (len_field, hlen) = read_preamble(reader, name)?;
    let text = read_header_text(reader, hlen, name)?;
    header_from_text(&text, name, 6 + 2 + len_field + hlen)
}

/// The preamble: the magic `\x93NUMPY`, the version (1.0, 2.0 or 3.0) and the header length.
/// Returns the length field's width (2 bytes in version 1, 4 after) and the header length.
fn read_preamble<R: Read>(reader: &mut R, name: &str) -> Result<(usize, usize)> {
    let mut pre = [0u8; 10];
    let got = read_up_to(reader, &mut pre, name)?;
    if got < 8 {
        return Err(DataError::truncated(name, "npy preamble", 10, got as u64));
    }
    if &pre[..6] != NPY_MAGIC {
        return Err(DataError::format(
            name,
            "npy magic",
            "\\x93NUMPY",
            escape(&pre[..6]),
        ));
    }
    let (major, minor) = (pre[6], pre[7]);
    match major {
        1 => {
            if got < 10 {
                return Err(DataError::truncated(name, "npy preamble", 10, got as u64));
            }
            Ok((2usize, u16::from_le_bytes([pre[8], pre[9]]) as usize))
        }
        2 | 3 => {
            let mut more = [0u8; 2];
            let got2 = if got == 10 {
                read_up_to(reader, &mut more, name)?
            } else {
                0
            };
            if got < 10 || got2 < 2 {
                return Err(DataError::truncated(
                    name,
                    "npy preamble",
                    12,
                    (got + got2) as u64,
                ));
            }
            Ok((
                4usize,
                u32::from_le_bytes([pre[8], pre[9], more[0], more[1]]) as usize,
            ))
        }
        _ => Err(DataError::format(
            name,
            "npy version",
            "1.0, 2.0 or 3.0",
            format!("{major}.{minor}"),
        )),
    }
}

/// The header's `hlen` bytes (at most 1 MiB) as text.
fn read_header_text<R: Read>(reader: &mut R, hlen: usize, name: &str) -> Result<String> {
    const MAX_HEADER: usize = 1 << 20;
    if hlen > MAX_HEADER {
        return Err(DataError::format(
            name,
            "npy header length",
            format!("at most {MAX_HEADER}"),
            hlen.to_string(),
        ));
    }
    let mut text = vec![0u8; hlen];
    let got = read_up_to(reader, &mut text, name)?;
    if got < hlen {
        return Err(DataError::truncated(
            name,
            "npy header",
            hlen as u64,
            got as u64,
        ));
    }
    String::from_utf8(text)
        .map_err(|_| DataError::format(name, "npy header", "UTF-8 / ASCII text", "invalid UTF-8"))
}

/// The header dictionary's `descr`, `fortran_order` and `shape` (each required); `header_len`
/// is the byte offset of the data.
fn header_from_text(text: &str, name: &str, header_len: usize) -> Result<NpyHeader> {
    let dict = parse_header_dict(text, name)?;
    let descr = dict
        .descr
        .ok_or_else(|| DataError::format(name, "npy header", "a 'descr' key", text.trim()))?;
    let fortran_order = dict.fortran_order.ok_or_else(|| {
        DataError::format(name, "npy header", "a 'fortran_order' key", text.trim())
    })?;
    let shape = dict
        .shape
        .ok_or_else(|| DataError::format(name, "npy header", "a 'shape' key", text.trim()))?;
    let (dtype, big_endian) = parse_descr(&descr).ok_or_else(|| {
        DataError::format(
            name,
            "npy dtype",
            "a boolean or numeric dtype such as '|b1' or '<i8'",
            descr.clone(),
        )
    })?;
    Ok(NpyHeader {
        descr,
        dtype,
        big_endian,
        fortran_order,
        shape,
        header_len,
    })
}

/// Reads as many bytes as possible into `buf` (stops early only at end of stream).
pub(crate) fn read_up_to<R: Read>(reader: &mut R, buf: &mut [u8], name: &str) -> Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        let Some(free) = buf.get_mut(got..) else {
            break;
        };
        match reader.read(free) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(DataError::Io {
                    file: name.to_string(),
                    action: "read",
                    source: e,
                })
            }
        }
    }
    Ok(got)
}

fn escape(b: &[u8]) -> String {
    b.iter()
        .flat_map(|&c| std::ascii::escape_default(c))
        .map(char::from)
        .collect()
}

fn parse_descr(descr: &str) -> Option<(NpyDtype, bool)> {
    let b = descr.as_bytes();
    if b.len() < 2 {
        return None;
    }
    let (order, ty) = match (b.first(), descr.get(1..)) {
        (Some(&o @ (b'<' | b'>' | b'|' | b'=')), Some(rest)) => (o, rest),
        _ => (b'=', descr),
    };
    let dtype = match ty {
        "b1" | "?" => NpyDtype::Bool,
        "u1" | "B" => NpyDtype::U8,
        "i1" | "b" => NpyDtype::I8,
        "u2" => NpyDtype::U16,
        "i2" => NpyDtype::I16,
        "u4" => NpyDtype::U32,
        "i4" => NpyDtype::I32,
        "u8" => NpyDtype::U64,
        "i8" => NpyDtype::I64,
        "f4" => NpyDtype::F32,
        "f8" => NpyDtype::F64,
        _ => return None,
    };
    let big_endian = order == b'>' || (order == b'=' && cfg!(target_endian = "big"));
    Some((dtype, big_endian && dtype.size() > 1))
}

#[derive(Default)]
struct HeaderDict {
    descr: Option<String>,
    fortran_order: Option<bool>,
    shape: Option<Vec<usize>>,
}

/// Parses the Python-literal dict of a `.npy` header, e.g.
/// `{'descr': '<i8', 'fortran_order': False, 'shape': (964, 20), }`.
fn parse_header_dict(text: &str, name: &str) -> Result<HeaderDict> {
    let bad = |found: &str| {
        DataError::format(
            name,
            "npy header",
            "a dict like {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
            found.to_string(),
        )
    };
    let mut p = Lexer {
        s: text.as_bytes(),
        i: 0,
    };
    let mut out = HeaderDict::default();
    p.ws();
    if !p.eat(b'{') {
        return Err(bad(text.trim()));
    }
    loop {
        p.ws();
        if p.eat(b'}') {
            break;
        }
        let key = p.string().ok_or_else(|| bad(text.trim()))?;
        p.ws();
        if !p.eat(b':') {
            return Err(bad(text.trim()));
        }
        p.ws();
        match key.as_str() {
            "descr" => out.descr = Some(p.string().ok_or_else(|| bad(text.trim()))?),
            "fortran_order" => {
                out.fortran_order = Some(p.boolean().ok_or_else(|| bad(text.trim()))?)
            }
            "shape" => out.shape = Some(p.tuple().ok_or_else(|| bad(text.trim()))?),
            _ => p.skip_value().ok_or_else(|| bad(text.trim()))?,
        }
        p.ws();
        if p.eat(b',') {
            continue;
        }
        p.ws();
        if p.eat(b'}') {
            break;
        }
        return Err(bad(text.trim()));
    }
    Ok(out)
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn string(&mut self) -> Option<String> {
        let q = self.peek().filter(|&q| q == b'\'' || q == b'"')?;
        self.i += 1;
        let start = self.i;
        while self.peek()? != q {
            self.i += 1;
        }
        let s = std::str::from_utf8(self.s.get(start..self.i)?)
            .ok()?
            .to_string();
        self.i += 1;
        Some(s)
    }
    fn boolean(&mut self) -> Option<bool> {
        let rest = self.s.get(self.i..)?;
        if rest.starts_with(b"True") {
            self.i += 4;
            Some(true)
        } else if rest.starts_with(b"False") {
            self.i += 5;
            Some(false)
        } else {
            None
        }
    }
    fn int(&mut self) -> Option<usize> {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        let v = std::str::from_utf8(self.s.get(start..self.i)?)
            .ok()?
            .parse()
            .ok()?;
        // Python 2 era headers may write `3L`.
        self.eat(b'L');
        Some(v)
    }
    fn tuple(&mut self) -> Option<Vec<usize>> {
        if !self.eat(b'(') {
            return None;
        }
        let mut dims = Vec::new();
        loop {
            self.ws();
            if self.eat(b')') {
                return Some(dims);
            }
            dims.push(self.int()?);
            self.ws();
            if self.eat(b',') {
                continue;
            }
            self.ws();
            if self.eat(b')') {
                return Some(dims);
            }
            return None;
        }
    }
    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'\'' | b'"' => self.string().map(|_| ()),
            b'(' => self.tuple().map(|_| ()),
            b'T' | b'F' => self.boolean().map(|_| ()),
            _ => self.int().map(|_| ()),
        }
    }
}

/// A `.npz` archive: named arrays, in archive order (names without the `.npy` suffix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Npz {
    /// `(name, array)` pairs.
    pub arrays: Vec<(String, NpyArray)>,
}

impl Npz {
    /// The array called `name` (with or without `.npy`).
    pub fn get(&self, name: &str) -> Option<&NpyArray> {
        let name = name.strip_suffix(".npy").unwrap_or(name);
        self.arrays.iter().find(|(n, _)| n == name).map(|(_, a)| a)
    }
}

/// The largest total decompressed size of the members of an npz read into memory (4 GiB).
pub const MAX_NPZ_BYTES: u64 = 4 << 30;

/// Parses a `.npz` archive held in memory (stored or deflated members).
pub fn parse_npz(bytes: &[u8], name: &str) -> Result<Npz> {
    let mut archive = open_zip(Cursor::new(bytes), name)?;
    let mut arrays = Vec::new();
    let mut budget = MAX_NPZ_BYTES;
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).map_err(|e| zip_error(name, e))?;
        if file.is_dir() {
            continue;
        }
        let member = format!("{name}/{}", file.name());
        let key = file
            .name()
            .strip_suffix(".npy")
            .unwrap_or(file.name())
            .to_string();
        let declared = file.size();
        if declared > budget {
            return Err(DataError::format(
                member,
                "zip member size",
                format!("at most {MAX_NPZ_BYTES} bytes decompressed for the whole archive"),
                format!("{declared} bytes declared"),
            ));
        }
        budget -= declared;
        // Deflate expands at most ~1032:1, so reading is bounded by the input's size.
        let mut data = Vec::with_capacity((declared as usize).min(1 << 20));
        let got = (&mut file)
            .take(declared)
            .read_to_end(&mut data)
            .map_err(|e| {
                DataError::format(
                    member.clone(),
                    "zip member",
                    "a readable deflate/stored stream",
                    e.to_string(),
                )
            })?;
        if (got as u64) < declared {
            return Err(DataError::truncated(
                member,
                "zip member",
                declared,
                got as u64,
            ));
        }
        arrays.push((key, parse_npy(&data, &member)?));
    }
    Ok(Npz { arrays })
}

/// Opens a zip archive, mapping failures to [`DataError::Format`].
pub(crate) fn open_zip<R: Read + Seek>(reader: R, name: &str) -> Result<zip::ZipArchive<R>> {
    zip::ZipArchive::new(reader).map_err(|e| zip_error(name, e))
}

/// Maps a zip error to a [`DataError`] naming `name`.
pub(crate) fn zip_error(name: &str, e: zip::result::ZipError) -> DataError {
    match e {
        zip::result::ZipError::Io(io) => DataError::format(
            name,
            "zip archive",
            "a readable zip archive",
            io.to_string(),
        ),
        other => DataError::format(
            name,
            "zip archive",
            "a valid zip archive",
            other.to_string(),
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn npy(header: &str, data: &[u8]) -> Vec<u8> {
        let mut h = header.to_string();
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut v = NPY_MAGIC.to_vec();
        v.extend_from_slice(&[1, 0]);
        v.extend_from_slice(&(h.len() as u16).to_le_bytes());
        v.extend_from_slice(h.as_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn parses_simple_array() {
        let bytes = npy(
            "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 1), }",
            &[1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0],
        );
        let a = parse_npy(&bytes, "x.npy").unwrap();
        assert_eq!(a.header.shape, vec![2, 1]);
        assert_eq!(a.to_i64_vec("x").unwrap(), vec![1, 2]);
    }

    #[test]
    fn parses_scalar_and_one_tuple() {
        let a = parse_npy(
            &npy(
                "{'descr': '|u1', 'fortran_order': False, 'shape': (), }",
                &[7],
            ),
            "s",
        )
        .unwrap();
        assert_eq!(a.header.shape, Vec::<usize>::new());
        let a = parse_npy(
            &npy(
                "{\"descr\": \">f4\", \"shape\": (1,), \"fortran_order\": True}",
                &[0x3f, 0x80, 0, 0],
            ),
            "s",
        )
        .unwrap();
        assert_eq!(a.to_f64_vec(), vec![1.0]);
        assert!(a.header.fortran_order);
    }
}

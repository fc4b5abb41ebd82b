//! Reading and writing numpy `.npy` arrays.
//!
//! Implements the [NPY format](https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html)
//! versions 1.0, 2.0 and 3.0 for the plain numeric dtypes (bool, 8- to 64-bit integers, float32,
//! float64) in either byte order and either memory order. Files are written as version 1.0
//! (2.0 when the header needs it), little-endian, C order, with the header padded to 64 bytes as
//! numpy does, so `numpy.load` reads them back unchanged.
//!
//! Reading is strict: a wrong magic string, a malformed header, a truncated data section or
//! trailing bytes after the data all give a [`CoreError::NpyFormat`] naming the file.
//!
//! ```
//! use ndarray::array;
//! use memia_core::npy::{read_npy, write_npy};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("a.npy");
//! write_npy(&path, &array![[1.0f32, 2.0], [3.0, 4.0]]).unwrap();
//! let back: ndarray::Array2<f32> = read_npy(&path).unwrap();
//! assert_eq!(back, array![[1.0f32, 2.0], [3.0, 4.0]]);
//! ```

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use ndarray::{ArrayBase, ArrayD, Data, Dimension, IxDyn, ShapeBuilder};

use crate::error::{CoreError, Result};
use crate::fsutil::atomic_write;

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// numpy pads headers so that the data starts at a multiple of this.
const HEADER_ALIGN: usize = 64;

/// The element types memia reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// numpy `bool` (`|b1`).
    Bool,
    /// `uint8`.
    U8,
    /// `int8`.
    I8,
    /// `uint16`.
    U16,
    /// `int16`.
    I16,
    /// `uint32`.
    U32,
    /// `int32`.
    I32,
    /// `uint64`.
    U64,
    /// `int64`.
    I64,
    /// `float32`.
    F32,
    /// `float64`.
    F64,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::Bool | DType::U8 | DType::I8 => 1,
            DType::U16 | DType::I16 => 2,
            DType::U32 | DType::I32 | DType::F32 => 4,
            DType::U64 | DType::I64 | DType::F64 => 8,
        }
    }

    /// numpy's little-endian `descr` string for this type (`'<f4'`, `'|b1'`, ...).
    pub fn descr(self) -> &'static str {
        match self {
            DType::Bool => "|b1",
            DType::U8 => "|u1",
            DType::I8 => "|i1",
            DType::U16 => "<u2",
            DType::I16 => "<i2",
            DType::U32 => "<u4",
            DType::I32 => "<i4",
            DType::U64 => "<u8",
            DType::I64 => "<i8",
            DType::F32 => "<f4",
            DType::F64 => "<f8",
        }
    }

    /// Parses a numpy `descr` string; returns the type and whether it is big-endian.
    fn parse(descr: &str) -> Option<(DType, bool)> {
        let mut chars = descr.chars();
        let (order, rest) = match chars.next()? {
            c @ ('<' | '>' | '|' | '=') => (c, chars.as_str()),
            _ => ('|', descr),
        };
        let dtype = match rest {
            "b1" | "?" => DType::Bool,
            "u1" => DType::U8,
            "i1" => DType::I8,
            "u2" => DType::U16,
            "i2" => DType::I16,
            "u4" => DType::U32,
            "i4" => DType::I32,
            "u8" => DType::U64,
            "i8" => DType::I64,
            "f4" => DType::F32,
            "f8" => DType::F64,
            _ => return None,
        };
        let big_endian = order == '>' || (order == '=' && cfg!(target_endian = "big"));
        Some((dtype, big_endian && dtype.size() > 1))
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A Rust type that has a numpy counterpart ([`DType`]).
pub trait Element: Copy + Send + Sync + 'static + sealed::Sealed {
    /// The matching numpy type.
    const DTYPE: DType;
    /// Decodes one element from exactly `DTYPE.size()` bytes.
    fn decode(bytes: &[u8], big_endian: bool) -> Self;
    /// Appends the little-endian encoding of `self`.
    fn encode(self, out: &mut Vec<u8>);
}

macro_rules! numeric_element {
    ($t:ty, $d:expr) => {
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const DTYPE: DType = $d;
            #[inline]
            fn decode(bytes: &[u8], big_endian: bool) -> Self {
                let raw: [u8; std::mem::size_of::<$t>()] =
                    bytes.try_into().expect("caller passes exactly one element");
                if big_endian {
                    <$t>::from_be_bytes(raw)
                } else {
                    <$t>::from_le_bytes(raw)
                }
            }
            #[inline]
            fn encode(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    };
}

numeric_element!(u8, DType::U8);
numeric_element!(i8, DType::I8);
numeric_element!(u16, DType::U16);
numeric_element!(i16, DType::I16);
numeric_element!(u32, DType::U32);
numeric_element!(i32, DType::I32);
numeric_element!(u64, DType::U64);
numeric_element!(i64, DType::I64);
numeric_element!(f32, DType::F32);
numeric_element!(f64, DType::F64);

impl sealed::Sealed for bool {}
impl Element for bool {
    const DTYPE: DType = DType::Bool;
    #[inline]
    fn decode(bytes: &[u8], _big_endian: bool) -> Self {
        // numpy treats any non-zero byte of a bool array as True.
        bytes[0] != 0
    }
    #[inline]
    fn encode(self, out: &mut Vec<u8>) {
        out.push(self as u8);
    }
}

/// The parsed header of a `.npy` stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// Element type.
    pub dtype: DType,
    /// Whether the elements are stored big-endian.
    pub big_endian: bool,
    /// Whether the data is in Fortran (column-major) order.
    pub fortran_order: bool,
    /// The array's shape.
    pub shape: Vec<usize>,
    /// The `descr` string as written in the file.
    pub descr: String,
}

impl NpyHeader {
    /// Number of elements (the product of the shape), or `None` on overflow.
    pub fn len(&self) -> Option<usize> {
        self.shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
}

/// An array of any supported dtype, as read from a file whose type the caller does not know.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum AnyArray {
    Bool(ArrayD<bool>),
    U8(ArrayD<u8>),
    I8(ArrayD<i8>),
    U16(ArrayD<u16>),
    I16(ArrayD<i16>),
    U32(ArrayD<u32>),
    I32(ArrayD<i32>),
    U64(ArrayD<u64>),
    I64(ArrayD<i64>),
    F32(ArrayD<f32>),
    F64(ArrayD<f64>),
}

macro_rules! for_each_variant {
    ($value:expr, $a:ident => $body:expr) => {
        match $value {
            AnyArray::Bool($a) => $body,
            AnyArray::U8($a) => $body,
            AnyArray::I8($a) => $body,
            AnyArray::U16($a) => $body,
            AnyArray::I16($a) => $body,
            AnyArray::U32($a) => $body,
            AnyArray::I32($a) => $body,
            AnyArray::U64($a) => $body,
            AnyArray::I64($a) => $body,
            AnyArray::F32($a) => $body,
            AnyArray::F64($a) => $body,
        }
    };
}

impl AnyArray {
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            AnyArray::Bool(_) => DType::Bool,
            AnyArray::U8(_) => DType::U8,
            AnyArray::I8(_) => DType::I8,
            AnyArray::U16(_) => DType::U16,
            AnyArray::I16(_) => DType::I16,
            AnyArray::U32(_) => DType::U32,
            AnyArray::I32(_) => DType::I32,
            AnyArray::U64(_) => DType::U64,
            AnyArray::I64(_) => DType::I64,
            AnyArray::F32(_) => DType::F32,
            AnyArray::F64(_) => DType::F64,
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        for_each_variant!(self, a => a.shape())
    }

    /// A one-dimensional integer array (class labels, indices) as `i64` values; an error naming
    /// `location` for other dtypes or shapes.
    pub fn to_i64_vec(&self, location: &str) -> Result<Vec<i64>> {
        let values = self.to_i64().ok_or_else(|| CoreError::DType {
            location: location.to_string(),
            found: self.dtype().descr().to_string(),
            expected: "an integer dtype".into(),
        })?;
        let values: ndarray::Array1<i64> = into_dimension(values, location)?;
        Ok(values.into_raw_vec_and_offset().0)
    }

    /// Integer arrays as `i64` (class labels, indices); `None` for float and bool arrays, and
    /// for `uint64` values above `i64::MAX`.
    pub fn to_i64(&self) -> Option<ArrayD<i64>> {
        Some(match self {
            AnyArray::U8(a) => a.mapv(i64::from),
            AnyArray::I8(a) => a.mapv(i64::from),
            AnyArray::U16(a) => a.mapv(i64::from),
            AnyArray::I16(a) => a.mapv(i64::from),
            AnyArray::U32(a) => a.mapv(i64::from),
            AnyArray::I32(a) => a.mapv(i64::from),
            AnyArray::I64(a) => a.clone(),
            AnyArray::U64(a) => {
                if a.iter().any(|&v| v > i64::MAX as u64) {
                    return None;
                }
                a.mapv(|v| v as i64)
            }
            AnyArray::Bool(_) | AnyArray::F32(_) | AnyArray::F64(_) => return None,
        })
    }

    /// Float arrays as `f64` (float32 widens exactly); `None` for other types.
    pub fn to_f64(&self) -> Option<ArrayD<f64>> {
        match self {
            AnyArray::F32(a) => Some(a.mapv(f64::from)),
            AnyArray::F64(a) => Some(a.clone()),
            _ => None,
        }
    }

    /// Takes the array out as element type `T`, or fails naming both dtypes.
    pub fn into_typed<T: Element>(self, location: &str) -> Result<ArrayD<T>> {
        let found = self.dtype();
        let boxed: Box<dyn std::any::Any> = for_each_variant!(self, a => Box::new(a));
        boxed
            .downcast::<ArrayD<T>>()
            .map(|b| *b)
            .map_err(|_| CoreError::DType {
                location: location.to_string(),
                found: found.descr().to_string(),
                expected: format!(
                    "'{0}' (convert it with numpy: `np.save(path, np.load(path).astype('{0}'))`)",
                    T::DTYPE.descr()
                ),
            })
    }
}

/// Reads a `.npy` file whose element type must be `T` and whose dimensionality must be `D`.
pub fn read_npy<T: Element, D: Dimension>(path: impl AsRef<Path>) -> Result<ndarray::Array<T, D>> {
    let path = path.as_ref();
    let location = path.display().to_string();
    let any = read_npy_any(path)?;
    into_dimension(any.into_typed::<T>(&location)?, &location)
}

/// Reads a `.npy` file of any supported element type.
pub fn read_npy_any(path: impl AsRef<Path>) -> Result<AnyArray> {
    read_npy_any_reusing(path, Vec::new())
}

/// [`read_npy_any`], reading little-endian float32 data into `buffer` (any earlier content is
/// overwritten) rather than fresh memory: one model after another through the same two buffers
/// costs a third of the time of fresh ones, whose every page the kernel must fault in and zero.
pub fn read_npy_any_reusing(path: impl AsRef<Path>, buffer: Vec<f32>) -> Result<AnyArray> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| CoreError::io(path, e))?;
    let size = file.metadata().map_err(|e| CoreError::io(path, e))?.len();
    read_npy_bounded(
        BufReader::new(file),
        &path.display().to_string(),
        Some(size),
        buffer,
    )
}

/// Converts a dynamic-dimensional array to dimensionality `D`, or fails with a shape error.
pub fn into_dimension<T, D: Dimension>(
    a: ArrayD<T>,
    location: &str,
) -> Result<ndarray::Array<T, D>> {
    let found = a.shape().to_vec();
    a.into_dimensionality::<D>().map_err(|_| CoreError::Shape {
        location: location.to_string(),
        found,
        expected: match D::NDIM {
            Some(n) => format!("{n} dimensions"),
            None => "any shape".to_string(),
        },
    })
}

/// Counts the bytes read through it (the header's length, to know how much data follows).
struct CountingReader<'a, R> {
    inner: &'a mut R,
    read: u64,
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

/// Reads the header of a `.npy` stream, leaving the reader at the first data byte.
pub fn read_header<R: Read>(reader: &mut R, location: &str) -> Result<NpyHeader> {
    let bad = |reason: String| CoreError::NpyFormat {
        location: location.to_string(),
        reason,
    };
    let mut preamble = [0u8; 8];
    read_exact_or(reader, &mut preamble, location, "the 8-byte preamble")?;
    if &preamble[..6] != MAGIC {
        // The usual mistakes, said with what to do instead.
        let hint = if preamble.starts_with(b"PK\x03\x04") {
            ": this is a zip archive, such as a `torch.save` file or an `.npz`; save the array \
             with numpy instead: `np.save(path, tensor.detach().cpu().numpy())`"
        } else if preamble[0] == 0x80 && (2..=5).contains(&preamble[1]) {
            ": this is a Python pickle (`pickle.dump` or an old `torch.save`); save the array \
             with numpy instead: `np.save(path, array)`"
        } else {
            ""
        };
        return Err(bad(format!(
            "wrong magic bytes {:?} (expected \\x93NUMPY){hint}",
            String::from_utf8_lossy(&preamble[..6])
        )));
    }
    let (major, minor) = (preamble[6], preamble[7]);
    let header_len = match major {
        1 => {
            let mut len = [0u8; 2];
            read_exact_or(reader, &mut len, location, "the header length")?;
            u16::from_le_bytes(len) as usize
        }
        2 | 3 => {
            let mut len = [0u8; 4];
            read_exact_or(reader, &mut len, location, "the header length")?;
            u32::from_le_bytes(len) as usize
        }
        _ => return Err(bad(format!("unsupported format version {major}.{minor}"))),
    };
    if header_len > 1 << 24 {
        return Err(bad(format!(
            "header length {header_len} is implausibly large"
        )));
    }
    let mut header = vec![0u8; header_len];
    read_exact_or(reader, &mut header, location, "the header")?;
    let text = if major == 3 {
        String::from_utf8(header).map_err(|_| bad("header is not UTF-8".into()))?
    } else {
        header.iter().map(|&b| b as char).collect() // latin-1
    };
    parse_header_dict(&text).map_err(bad)
}

/// The header of a `.npy` file with where its data starts and how long the file is: what
/// [`read_file_header`] returns, enough to tell whether the file is whole without reading its
/// data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyFileHeader {
    /// The parsed header.
    pub header: NpyHeader,
    /// Offset of the first data byte: the preamble, the length field and the padded header.
    pub data_offset: u64,
    /// The file's length in bytes.
    pub file_len: u64,
}

impl NpyFileHeader {
    /// Bytes of data the header's shape and element type call for, or `None` on overflow.
    pub fn data_len(&self) -> Option<u64> {
        let bytes = self.header.len()?.checked_mul(self.header.dtype.size())?;
        u64::try_from(bytes).ok()
    }

    /// Whether the file holds exactly the data its header describes: not truncated, and with
    /// no bytes after the data (what [`read_npy`] would check, without reading the data).
    pub fn is_whole(&self) -> bool {
        self.data_len()
            .and_then(|n| n.checked_add(self.data_offset))
            .is_some_and(|end| end == self.file_len)
    }
}

/// Reads only the header of the `.npy` file at `path`, with its data offset and the file's
/// length; the data is not read. Opening the file fails with [`CoreError::Io`] (a missing file
/// included: its `source` is then of kind `NotFound`); a header that does not parse with
/// [`CoreError::NpyFormat`].
///
/// ```
/// use memia_core::npy::{read_file_header, write_npy, DType};
///
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("a.npy");
/// write_npy(&path, &ndarray::Array2::<f32>::zeros((3, 4))).unwrap();
/// let file = read_file_header(&path).unwrap();
/// assert_eq!((file.header.dtype, file.header.shape.as_slice()), (DType::F32, &[3, 4][..]));
/// assert_eq!(file.data_offset, 128);
/// assert!(file.is_whole());
/// ```
pub fn read_file_header(path: impl AsRef<Path>) -> Result<NpyFileHeader> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| CoreError::io(path, e))?;
    let file_len = file.metadata().map_err(|e| CoreError::io(path, e))?.len();
    let mut reader = BufReader::new(file);
    let mut counted = CountingReader {
        inner: &mut reader,
        read: 0,
    };
    let header = read_header(&mut counted, &path.display().to_string())?;
    Ok(NpyFileHeader {
        header,
        data_offset: counted.read,
        file_len,
    })
}

/// Reads a whole `.npy` stream; `location` names it in error messages. Memory stays bounded
/// by the bytes the stream really holds, whatever shape its header claims.
pub fn read_npy_from<R: Read>(reader: R, location: &str) -> Result<AnyArray> {
    read_npy_bounded(reader, location, None, Vec::new())
}

/// [`read_npy_from`] for a stream of `total` bytes (a file's length) when known: a header that
/// claims more data than that is refused before anything is allocated for it.
fn read_npy_bounded<R: Read>(
    mut reader: R,
    location: &str,
    total: Option<u64>,
    buffer: Vec<f32>,
) -> Result<AnyArray> {
    let mut counted = CountingReader {
        inner: &mut reader,
        read: 0,
    };
    let header = read_header(&mut counted, location)?;
    let header_bytes = counted.read;
    let bad = |reason: String| CoreError::NpyFormat {
        location: location.to_string(),
        reason,
    };
    let count = header
        .len()
        .ok_or_else(|| bad(format!("shape {:?} overflows", header.shape)))?;
    let size = header.dtype.size();
    let nbytes = count
        .checked_mul(size)
        .ok_or_else(|| bad(format!("shape {:?} overflows", header.shape)))?;
    let truncated = |found: u64| {
        bad(format!(
            "truncated data: shape {:?} of {} needs {nbytes} bytes, found {found}",
            header.shape, header.descr
        ))
    };
    let available = total.map(|t| t.saturating_sub(header_bytes));
    if let Some(found) = available.filter(|&a| a < nbytes as u64) {
        return Err(truncated(found));
    }
    // Little-endian float32 (every model's logits) straight into its values: no byte buffer
    // to decode from, so one model's read costs its size once, not twice.
    #[cfg(target_endian = "little")]
    if header.dtype == DType::F32
        && !header.big_endian
        && let Some(available) = available
    {
        if available > nbytes as u64 {
            return Err(bad(format!(
                "unexpected bytes after the {nbytes} data bytes of shape {:?}",
                header.shape
            )));
        }
        // A buffer of at least `count` values is only shortened (its values are all overwritten
        // below); a shorter one grows with zeros.
        let mut values = buffer;
        if values.len() >= count {
            values.truncate(count);
        } else {
            values.resize(count, 0.0);
        }
        // SAFETY: the byte view covers exactly the vector's initialised memory (count values of
        // 4 bytes), and every bit pattern is a valid f32, so any bytes read leave it valid.
        let bytes =
            unsafe { std::slice::from_raw_parts_mut(values.as_mut_ptr().cast::<u8>(), nbytes) };
        read_exact_or(&mut reader, bytes, location, "the data")?;
        return Ok(AnyArray::F32(shape_array(values, &header).map_err(bad)?));
    }
    // Read at most one byte past the expected end, so trailing garbage is detected without
    // reading an arbitrarily long stream; reserve only what the stream is known to hold (the
    // vector grows with the data otherwise).
    let known = available.map_or(1 << 20, |a| a.min(nbytes as u64 + 1) as usize);
    let mut data = Vec::with_capacity(nbytes.min(known));
    reader
        .by_ref()
        .take(nbytes as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| bad(format!("reading data failed: {e}")))?;
    if data.len() < nbytes {
        return Err(truncated(data.len() as u64));
    }
    if data.len() > nbytes {
        return Err(bad(format!(
            "unexpected bytes after the {nbytes} data bytes of shape {:?}",
            header.shape
        )));
    }
    let be = header.big_endian;
    macro_rules! decode {
        ($variant:ident, $t:ty) => {{
            let values: Vec<$t> = data
                .chunks_exact(size)
                .map(|c| <$t>::decode(c, be))
                .collect();
            AnyArray::$variant(shape_array(values, &header).map_err(bad)?)
        }};
    }
    Ok(match header.dtype {
        DType::Bool => decode!(Bool, bool),
        DType::U8 => decode!(U8, u8),
        DType::I8 => decode!(I8, i8),
        DType::U16 => decode!(U16, u16),
        DType::I16 => decode!(I16, i16),
        DType::U32 => decode!(U32, u32),
        DType::I32 => decode!(I32, i32),
        DType::U64 => decode!(U64, u64),
        DType::I64 => decode!(I64, i64),
        DType::F32 => decode!(F32, f32),
        DType::F64 => decode!(F64, f64),
    })
}

fn shape_array<T: Clone>(
    values: Vec<T>,
    header: &NpyHeader,
) -> std::result::Result<ArrayD<T>, String> {
    let shape = IxDyn(&header.shape);
    let result = if header.fortran_order && header.shape.len() > 1 {
        ArrayD::from_shape_vec(shape.f(), values).map(|a| a.as_standard_layout().into_owned())
    } else {
        ArrayD::from_shape_vec(shape, values)
    };
    result.map_err(|e| format!("cannot shape data as {:?}: {e}", header.shape))
}

fn read_exact_or<R: Read>(
    reader: &mut R,
    buf: &mut [u8],
    location: &str,
    what: &str,
) -> Result<()> {
    reader.read_exact(buf).map_err(|e| CoreError::NpyFormat {
        location: location.to_string(),
        reason: if e.kind() == std::io::ErrorKind::UnexpectedEof {
            format!("file ends inside {what}")
        } else {
            format!("reading {what} failed: {e}")
        },
    })
}

/// Writes `array` as a `.npy` file, atomically: the file appears under its name only once it
/// is complete.
pub fn write_npy<T, S, D>(path: impl AsRef<Path>, array: &ArrayBase<S, D>) -> Result<()>
where
    T: Element,
    S: Data<Elem = T>,
    D: Dimension,
{
    atomic_write(path.as_ref(), |w| write_npy_to(w, array))
}

/// Writes `array` in `.npy` format to any writer.
pub fn write_npy_to<T, S, D, W>(writer: W, array: &ArrayBase<S, D>) -> std::io::Result<()>
where
    T: Element,
    S: Data<Elem = T>,
    D: Dimension,
    W: Write,
{
    let mut w = BufWriter::with_capacity(1 << 16, writer);
    w.write_all(&encode_header(T::DTYPE, array.shape()))?;
    let mut buf = Vec::with_capacity(1 << 16);
    for &v in array.iter() {
        v.encode(&mut buf);
        if buf.len() >= 1 << 16 {
            w.write_all(&buf)?;
            buf.clear();
        }
    }
    w.write_all(&buf)?;
    w.flush()
}

/// The bytes of a `.npy` header (preamble, length and padded dictionary).
fn encode_header(dtype: DType, shape: &[usize]) -> Vec<u8> {
    let shape_text = match shape {
        [] => "()".to_string(),
        [n] => format!("({n},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape_text}, }}",
        dtype.descr()
    );
    // Version 1.0 has a 2-byte length; longer headers need version 2.0 (4-byte length).
    let (version, prefix) = if dict.len() + 1 + 10 <= u16::MAX as usize {
        (1u8, 10)
    } else {
        (2u8, 12)
    };
    let pad = (HEADER_ALIGN - (prefix + dict.len() + 1) % HEADER_ALIGN) % HEADER_ALIGN;
    dict.push_str(&" ".repeat(pad));
    dict.push('\n');
    let mut out = Vec::with_capacity(prefix + dict.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(dict.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out
}

/// Parses numpy's header dictionary, a Python literal such as
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`.
fn parse_header_dict(text: &str) -> std::result::Result<NpyHeader, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    p.expect(b'{')?;
    loop {
        p.skip_ws();
        if p.eat(b'}') {
            break;
        }
        let key = p.string()?;
        p.expect(b':')?;
        p.skip_ws();
        match key.as_str() {
            "descr" => {
                if p.peek() == Some(b'[') {
                    return Err("structured dtypes (a list 'descr') are not supported".into());
                }
                descr = Some(p.string()?)
            }
            "fortran_order" => fortran = Some(p.boolean()?),
            "shape" => shape = Some(p.tuple()?),
            other => return Err(format!("unknown header key '{other}'")),
        }
        p.skip_ws();
        if !p.eat(b',') {
            p.expect(b'}')?;
            break;
        }
    }
    let descr = descr.ok_or("header lacks 'descr'")?;
    let fortran_order = fortran.ok_or("header lacks 'fortran_order'")?;
    let shape = shape.ok_or("header lacks 'shape'")?;
    let (dtype, big_endian) = DType::parse(&descr).ok_or_else(|| {
        format!("unsupported dtype '{descr}' (supported: bool, int8..int64, uint8..uint64, float32, float64)")
    })?;
    Ok(NpyHeader {
        dtype,
        big_endian,
        fortran_order,
        shape,
        descr,
    })
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: u8) -> std::result::Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!(
                "malformed header: expected '{}' at byte {}",
                c as char, self.i
            ))
        }
    }
    fn string(&mut self) -> std::result::Result<String, String> {
        self.skip_ws();
        let quote = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => {
                return Err(format!(
                    "malformed header: expected a string at byte {}",
                    self.i
                ));
            }
        };
        self.i += 1;
        let start = self.i;
        while self.peek().is_some_and(|c| c != quote) {
            self.i += 1;
        }
        if self.peek().is_none() {
            return Err("malformed header: unterminated string".into());
        }
        let out = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        self.i += 1;
        Ok(out)
    }
    fn boolean(&mut self) -> std::result::Result<bool, String> {
        for (word, value) in [("True", true), ("False", false)] {
            if self.s[self.i..].starts_with(word.as_bytes()) {
                self.i += word.len();
                return Ok(value);
            }
        }
        Err(format!(
            "malformed header: expected True or False at byte {}",
            self.i
        ))
    }
    fn tuple(&mut self) -> std::result::Result<Vec<usize>, String> {
        self.expect(b'(')?;
        let mut dims = Vec::new();
        loop {
            if self.eat(b')') {
                return Ok(dims);
            }
            let start = self.i;
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.i += 1;
            }
            let digits = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
            let dim = digits
                .trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| format!("malformed header: bad dimension at byte {start}"))?;
            dims.push(dim);
            if !self.eat(b',') {
                self.expect(b')')?;
                return Ok(dims);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, Array3, array};

    fn roundtrip<T: Element + PartialEq + std::fmt::Debug>(a: ArrayD<T>) {
        let mut bytes = Vec::new();
        write_npy_to(&mut bytes, &a).unwrap();
        assert_eq!((bytes.len() - a.len() * T::DTYPE.size()) % HEADER_ALIGN, 0);
        let back = read_npy_from(&bytes[..], "mem")
            .unwrap()
            .into_typed::<T>("mem")
            .unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn roundtrips_every_dtype() {
        roundtrip(array![true, false, true].into_dyn());
        roundtrip(array![[1u8, 2], [3, 255]].into_dyn());
        roundtrip(array![-1i8, 127].into_dyn());
        roundtrip(array![1u16, 65535].into_dyn());
        roundtrip(array![-5i16, 5].into_dyn());
        roundtrip(array![7u32].into_dyn());
        roundtrip(array![-7i32, 1 << 30].into_dyn());
        roundtrip(array![u64::MAX].into_dyn());
        roundtrip(array![i64::MIN, 0].into_dyn());
        roundtrip(
            Array3::<f32>::from_shape_fn((2, 3, 4), |(a, b, c)| (a * 100 + b * 10 + c) as f32)
                .into_dyn(),
        );
        roundtrip(array![f64::NAN.abs().min(1.5), -0.0, f64::INFINITY].into_dyn());
        roundtrip(ArrayD::<f32>::zeros(IxDyn(&[0, 5])));
        roundtrip(ArrayD::<f64>::from_elem(IxDyn(&[]), 3.5));
    }

    #[test]
    fn writes_numpy_header_text() {
        let mut bytes = Vec::new();
        write_npy_to(&mut bytes, &array![[1.0f32, 2.0, 3.0]]).unwrap();
        let text = String::from_utf8_lossy(&bytes[10..]);
        assert!(text.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3), }"));
        assert_eq!(bytes[6..8], [1, 0]);
    }

    #[test]
    fn reads_fortran_order_and_big_endian() {
        // 2x3 float64 array [[0,1,2],[3,4,5]] stored in Fortran order, big-endian.
        let mut dict = "{'descr': '>f8', 'fortran_order': True, 'shape': (2, 3), }".to_string();
        while !(dict.len() + 11).is_multiple_of(64) {
            dict.push(' ');
        }
        dict.push('\n');
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&[1, 0]);
        bytes.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        bytes.extend_from_slice(dict.as_bytes());
        for v in [0.0f64, 3.0, 1.0, 4.0, 2.0, 5.0] {
            bytes.extend_from_slice(&v.to_be_bytes());
        }
        let a = read_npy_from(&bytes[..], "f")
            .unwrap()
            .into_typed::<f64>("f")
            .unwrap();
        let a: Array2<f64> = into_dimension(a, "f").unwrap();
        assert_eq!(a, array![[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]);
    }

    fn sample_bytes() -> Vec<u8> {
        let mut bytes = Vec::new();
        write_npy_to(&mut bytes, &array![[1.0f32, 2.0], [3.0, 4.0]]).unwrap();
        bytes
    }

    fn format_error(bytes: &[u8]) -> String {
        match read_npy_from(bytes, "x.npy") {
            Err(e @ CoreError::NpyFormat { .. }) => e.to_string(),
            other => panic!("expected a format error, got {other:?}"),
        }
    }

    #[test]
    fn rejects_corrupt_files_with_precise_errors() {
        let good = sample_bytes();
        let mut bad_magic = good.clone();
        bad_magic[1] = b'X';
        assert!(format_error(&bad_magic).contains("wrong magic"));
        assert!(format_error(&good[..5]).contains("preamble"));
        assert!(format_error(&good[..9]).contains("header length"));
        assert!(format_error(&good[..40]).contains("inside the header"));
        let truncated = format_error(&good[..good.len() - 3]);
        assert!(
            truncated.contains("truncated data") && truncated.contains("needs 16 bytes, found 13")
        );
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(format_error(&trailing).contains("after the 16 data bytes"));
        let mut version = good.clone();
        version[6] = 9;
        assert!(format_error(&version).contains("version 9.0"));
        let mut dtype = good.clone();
        let pos = dtype.windows(3).position(|w| w == b"<f4").unwrap();
        dtype[pos + 1..pos + 3].copy_from_slice(b"c8");
        assert!(format_error(&dtype).contains("unsupported dtype '<c8'"));
        let mut garbled = good.clone();
        let pos = garbled.windows(5).position(|w| w == b"shape").unwrap();
        garbled[pos + 8] = b'x';
        assert!(format_error(&garbled).contains("malformed header"));
    }

    #[test]
    fn wrong_dtype_and_rank_are_named() {
        let bytes = sample_bytes();
        let err = read_npy_from(&bytes[..], "x.npy")
            .unwrap()
            .into_typed::<f64>("x.npy")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "x.npy: array has dtype '<f4', expected '<f8' (convert it with numpy: \
             `np.save(path, np.load(path).astype('<f8'))`)"
        );
        // The usual wrong files: a torch.save zip archive, a pickle.
        for (bytes, expected) in [
            (&b"PK\x03\x04\x14\x00\x00\x00rest"[..], "`torch.save` file"),
            (&b"\x80\x02}q\x00(X\x01\x00"[..], "Python pickle"),
        ] {
            let err = read_npy_from(bytes, "model.npy").unwrap_err().to_string();
            assert!(err.contains(expected) && err.contains("np.save"), "{err}");
        }
        let a = read_npy_from(&bytes[..], "x.npy")
            .unwrap()
            .into_typed::<f32>("x.npy")
            .unwrap();
        let err = into_dimension::<f32, ndarray::Ix3>(a, "x.npy").unwrap_err();
        assert_eq!(
            err.to_string(),
            "x.npy: array has shape [2, 2], expected 3 dimensions"
        );
    }

    #[test]
    fn write_npy_is_atomic_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.npy");
        write_npy(&path, &array![true, false]).unwrap();
        let back: ndarray::Array1<bool> = read_npy(&path).unwrap();
        assert_eq!(back, array![true, false]);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("k.npy")],
            "no temporary file left behind"
        );
        let missing = read_npy::<f32, ndarray::Ix1>(dir.path().join("missing.npy")).unwrap_err();
        assert!(matches!(missing, CoreError::Io { .. }));
        assert!(missing.to_string().contains("missing.npy"));
    }

    #[test]
    fn file_header_tells_whole_from_truncated_and_padded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npy");
        write_npy(&path, &ndarray::Array3::<f32>::zeros((5, 1, 3))).unwrap();
        let file = read_file_header(&path).unwrap();
        assert_eq!(file.header.shape, vec![5, 1, 3]);
        assert_eq!(file.header.descr, "<f4");
        assert_eq!(file.data_len(), Some(60));
        assert_eq!(file.data_offset % HEADER_ALIGN as u64, 0);
        assert_eq!(file.file_len, file.data_offset + 60);
        assert!(file.is_whole());

        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        assert!(!read_file_header(&path).unwrap().is_whole(), "truncated");
        let mut longer = bytes.clone();
        longer.push(0);
        std::fs::write(&path, &longer).unwrap();
        assert!(
            !read_file_header(&path).unwrap().is_whole(),
            "trailing bytes"
        );
        std::fs::write(&path, &bytes[..20]).unwrap();
        assert!(matches!(
            read_file_header(&path),
            Err(CoreError::NpyFormat { .. })
        ));
        match read_file_header(dir.path().join("missing.npy")) {
            Err(CoreError::Io { source, .. }) => {
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound)
            }
            other => panic!("expected a NotFound error, got {other:?}"),
        }
    }
}

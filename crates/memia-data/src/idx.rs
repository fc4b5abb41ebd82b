//! IDX files (MNIST, Fashion-MNIST, KMNIST, notMNIST in MNIST format), gzipped or raw.

use std::io::Read;
use std::path::Path;

use crate::dataset::InMemoryDataset;
use crate::error::{DataError, Result, format_error};

/// Opens a file for reading, transparently decompressing it if it starts with the gzip magic
/// bytes.
fn open_maybe_gzipped(path: &Path) -> Result<Box<dyn Read>> {
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
    let gzipped = std::io::BufRead::fill_buf(&mut file)
        .map_err(io)?
        .starts_with(&[0x1f, 0x8b]);
    Ok(if gzipped {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    })
}

/// Reads at most `limit` more bytes of `reader` onto `out` (decompressing no further).
fn read_at_most(reader: &mut dyn Read, out: &mut Vec<u8>, limit: u64, path: &Path) -> Result<()> {
    reader
        .take(limit)
        .read_to_end(out)
        .map(drop)
        .map_err(|e| DataError::Gzip {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}

/// Reads a file, transparently decompressing it if it starts with the gzip magic bytes.
pub fn read_maybe_gzipped(path: &Path) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    read_at_most(&mut open_maybe_gzipped(path)?, &mut out, u64::MAX, path)?;
    Ok(out)
}

/// [`read_maybe_gzipped`] for files without a header that declares their size: refuses one
/// that holds (or decompresses to) more than `limit` bytes, having read no more than that.
pub fn read_maybe_gzipped_bounded(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    read_at_most(&mut open_maybe_gzipped(path)?, &mut out, limit + 1, path)?;
    if out.len() as u64 > limit {
        return Err(format_error(
            path.display(),
            format!("holds more than {limit} bytes (decompressed): not a data file of this kind"),
        ));
    }
    Ok(out)
}

/// An IDX array of unsigned bytes: its dimensions and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimensions, outermost first (`[n, rows, cols]` for images, `[n]` for labels).
    pub dims: Vec<usize>,
    /// The values, C order.
    pub data: Vec<u8>,
}

/// Parses an IDX file of unsigned bytes (type code 0x08), gzipped or raw.
pub fn read_idx(path: impl AsRef<Path>) -> Result<IdxArray> {
    let path = path.as_ref();
    // Read (and decompress) no more than the header declares, plus one byte to detect trailing
    // data: memory stays bounded by the declared size, whatever the stream holds.
    let mut reader = open_maybe_gzipped(path)?;
    let mut bytes = Vec::new();
    read_at_most(&mut reader, &mut bytes, 4, path)?;
    if bytes.len() == 4 && bytes[..3] == [0, 0, 0x08] {
        let ndims = bytes[3];
        read_at_most(&mut reader, &mut bytes, 4 * u64::from(ndims), path)?;
        let dims = bytes[4..].chunks_exact(4);
        let complete = bytes.len() == 4 + 4 * usize::from(ndims);
        let count = dims
            .map(|d| u64::from(u32::from_be_bytes(d.try_into().expect("4 bytes"))))
            .try_fold(1u64, |acc, d| acc.checked_mul(d));
        if let (true, Some(count)) = (complete, count) {
            read_at_most(&mut reader, &mut bytes, count.saturating_add(1), path)?;
            if bytes.len() as u64 > 4 + 4 * u64::from(ndims) + count {
                // More than declared: say whether the stream is corrupt (decoding on into a
                // sink, so memory stays bounded) before calling it trailing data.
                std::io::copy(&mut reader.take(1 << 30), &mut std::io::sink()).map_err(|e| {
                    DataError::Gzip {
                        path: path.to_path_buf(),
                        reason: e.to_string(),
                    }
                })?;
            }
        }
    }
    parse_idx(&bytes, &path.display().to_string())
}

fn parse_idx(bytes: &[u8], location: &str) -> Result<IdxArray> {
    if bytes.len() < 4 {
        return Err(format_error(
            location,
            format!(
                "file has {} bytes, too short for the IDX magic number",
                bytes.len()
            ),
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(format_error(
            location,
            format!(
                "wrong magic number {:02x}{:02x}{:02x}{:02x} (IDX files start with two zero bytes)",
                bytes[0], bytes[1], bytes[2], bytes[3]
            ),
        ));
    }
    if bytes[2] != 0x08 {
        return Err(format_error(
            location,
            format!(
                "element type 0x{:02x} is not unsigned bytes (0x08)",
                bytes[2]
            ),
        ));
    }
    let ndims = bytes[3] as usize;
    if ndims == 0 {
        return Err(format_error(location, "IDX header declares 0 dimensions"));
    }
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(format_error(
            location,
            format!(
                "file ends inside the header ({} of {header} bytes)",
                bytes.len()
            ),
        ));
    }
    let dims: Vec<usize> = (0..ndims)
        .map(|d| {
            u32::from_be_bytes(bytes[4 + 4 * d..8 + 4 * d].try_into().expect("4 bytes")) as usize
        })
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format_error(location, format!("dimensions {dims:?} overflow")))?;
    let data = &bytes[header..];
    if data.len() != count {
        return Err(format_error(
            location,
            format!(
                "dimensions {dims:?} need {count} data bytes, found {} ({})",
                data.len(),
                if data.len() < count {
                    "truncated"
                } else {
                    "trailing bytes"
                }
            ),
        ));
    }
    Ok(IdxArray {
        dims,
        data: data.to_vec(),
    })
}

/// Loads an IDX image file (`n x rows x cols`) and its label file (`n`) as a data set of
/// `[1, rows, cols]` samples scaled to [0, 1] (pixel / 255). `classes`: the number of classes
/// (labels must be below it), or `None` for the largest label plus one.
pub fn load_idx(
    images: impl AsRef<Path>,
    labels: impl AsRef<Path>,
    name: &str,
    classes: Option<usize>,
) -> Result<InMemoryDataset> {
    let (images, labels) = (images.as_ref(), labels.as_ref());
    let img = read_idx(images)?;
    let lab = read_idx(labels)?;
    if img.dims.len() != 3 {
        return Err(format_error(
            images.display(),
            format!(
                "images must have 3 dimensions (n, rows, cols), found {:?}",
                img.dims
            ),
        ));
    }
    if lab.dims.len() != 1 {
        return Err(format_error(
            labels.display(),
            format!("labels must have 1 dimension, found {:?}", lab.dims),
        ));
    }
    if img.dims[0] != lab.dims[0] {
        return Err(format_error(
            labels.display(),
            format!(
                "{} labels for the {} images of {}",
                lab.dims[0],
                img.dims[0],
                images.display()
            ),
        ));
    }
    let as_i64: Vec<i64> = lab.data.iter().map(|&l| i64::from(l)).collect();
    let classes = memia_core::class_count(&as_i64, classes)
        .map_err(|e| format_error(labels.display(), e.to_string()))?;
    if let Some((sample, &label)) = lab
        .data
        .iter()
        .enumerate()
        .find(|&(_, &l)| usize::from(l) >= classes)
    {
        return Err(DataError::LabelOutOfRange {
            location: labels.display().to_string(),
            sample,
            label: i64::from(label),
            classes,
        });
    }
    let features = img.data.iter().map(|&p| f32::from(p) / 255.0).collect();
    InMemoryDataset::new(
        name,
        vec![1, img.dims[1], img.dims[2]],
        features,
        lab.data.iter().map(|&l| u32::from(l)).collect(),
        classes,
    )
}

/// Writes an IDX file of unsigned bytes (raw, not gzipped): for tests and for exporting pools.
pub fn write_idx(path: impl AsRef<Path>, dims: &[usize], data: &[u8]) -> Result<()> {
    let path = path.as_ref();
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        bytes.extend_from_slice(&(d as u32).to_be_bytes());
    }
    bytes.extend_from_slice(data);
    std::fs::write(path, bytes).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })
}

//! Reading and writing numpy `.npz` archives (a zip file of `.npy` entries).
//!
//! Entry names follow numpy: `np.savez(f, keep=k)` stores `keep.npy`, read back here as `"keep"`.
//!
//! ```
//! use ndarray::array;
//! use memia_core::npz::{NpzArchive, NpzWriter};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("run.npz");
//! let mut npz = NpzWriter::create(&path, true);
//! npz.add("scores", &array![0.5f64, 0.25]).unwrap();
//! npz.add("labels", &array![1u8, 0]).unwrap();
//! npz.finish().unwrap();
//!
//! let mut archive = NpzArchive::open(&path).unwrap();
//! assert_eq!(archive.names(), vec!["labels", "scores"]);
//! let scores: ndarray::Array1<f64> = archive.read("scores").unwrap();
//! assert_eq!(scores, array![0.5, 0.25]);
//! ```

use std::fs::File;
use std::io::{BufReader, Cursor, Read};
use std::path::{Path, PathBuf};

use ndarray::{ArrayBase, Data, Dimension};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::error::{CoreError, Result};
use crate::fsutil::atomic_write;
use crate::npy::{AnyArray, Element, into_dimension, read_npy_from, write_npy_to};

/// An open `.npz` archive.
pub struct NpzArchive {
    path: PathBuf,
    zip: ZipArchive<BufReader<File>>,
}

impl std::fmt::Debug for NpzArchive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NpzArchive")
            .field("path", &self.path)
            .finish()
    }
}

impl NpzArchive {
    /// Opens an archive; fails if the file is missing or not a zip file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|e| CoreError::io(&path, e))?;
        let zip = ZipArchive::new(BufReader::new(file)).map_err(|e| CoreError::Npz {
            location: path.display().to_string(),
            reason: format!("not a readable .npz (zip) archive: {e}"),
        })?;
        Ok(NpzArchive { path, zip })
    }

    /// The array names in the archive (entry names without `.npy`), sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .zip
            .file_names()
            .filter_map(|n| n.ok())
            .map(|n| n.strip_suffix(".npy").unwrap_or(&n).to_string())
            .collect();
        names.sort();
        names
    }

    /// Reads the array `name`, of any supported dtype.
    pub fn read_any(&mut self, name: &str) -> Result<AnyArray> {
        let location = format!("{}:{name}.npy", self.path.display());
        let entry_name = if self.zip.index_for_name(&format!("{name}.npy")).is_some() {
            format!("{name}.npy")
        } else if self.zip.index_for_name(name).is_some() {
            name.to_string()
        } else {
            return Err(CoreError::Npz {
                location: self.path.display().to_string(),
                reason: format!(
                    "no array named '{name}' (the archive holds: {})",
                    self.names().join(", ")
                ),
            });
        };
        let mut entry = self.zip.by_name(&entry_name).map_err(|e| CoreError::Npz {
            location: location.clone(),
            reason: format!("cannot open entry: {e}"),
        })?;
        // Decompressed as it is read, no further than the array's header declares (plus one
        // byte to detect trailing data) and the archive's declared size: a small archive that
        // inflates to gigabytes is refused without inflating it.
        let declared = entry.size();
        let result = read_npy_from(entry.by_ref().take(declared.saturating_add(1)), &location);
        result.map_err(|e| match e {
            CoreError::NpyFormat { reason, .. } if reason.starts_with("reading data failed") => {
                CoreError::Npz {
                    location: location.clone(),
                    reason: format!("corrupt entry: {reason}"),
                }
            }
            other => other,
        })
    }

    /// Reads the array `name`, which must have element type `T` and dimensionality `D`.
    pub fn read<T: Element, D: Dimension>(&mut self, name: &str) -> Result<ndarray::Array<T, D>> {
        let location = format!("{}:{name}.npy", self.path.display());
        into_dimension(self.read_any(name)?.into_typed::<T>(&location)?, &location)
    }
}

/// Builds a `.npz` archive in memory and writes it atomically on [`NpzWriter::finish`].
pub struct NpzWriter {
    path: PathBuf,
    compress: bool,
    zip: ZipWriter<Cursor<Vec<u8>>>,
}

impl NpzWriter {
    /// Starts an archive that will be written to `path`; `compress` selects deflate
    /// (as `np.savez_compressed`) or stored entries (as `np.savez`).
    pub fn create(path: impl AsRef<Path>, compress: bool) -> Self {
        NpzWriter {
            path: path.as_ref().to_path_buf(),
            compress,
            zip: ZipWriter::new(Cursor::new(Vec::new())),
        }
    }

    /// Adds an array under `name` (stored as `name.npy`).
    pub fn add<T, S, D>(&mut self, name: &str, array: &ArrayBase<S, D>) -> Result<()>
    where
        T: Element,
        S: Data<Elem = T>,
        D: Dimension,
    {
        let method = if self.compress {
            CompressionMethod::Deflated
        } else {
            CompressionMethod::Stored
        };
        let large = array.len() * T::DTYPE.size() >= u32::MAX as usize;
        let options = SimpleFileOptions::default()
            .compression_method(method)
            .large_file(large);
        let location = format!("{}:{name}.npy", self.path.display());
        self.zip
            .start_file(format!("{name}.npy"), options)
            .map_err(|e| CoreError::Npz {
                location: location.clone(),
                reason: format!("cannot add entry: {e}"),
            })?;
        write_npy_to(&mut self.zip, array).map_err(|e| CoreError::io(&self.path, e))
    }

    /// Finishes the archive and writes it to its path atomically.
    pub fn finish(self) -> Result<()> {
        let path = self.path;
        let bytes = self
            .zip
            .finish()
            .map_err(|e| CoreError::Npz {
                location: path.display().to_string(),
                reason: format!("cannot finish archive: {e}"),
            })?
            .into_inner();
        atomic_write(&path, |f| std::io::Write::write_all(f, &bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, Array2, array};

    #[test]
    fn roundtrip_stored_and_compressed() {
        let dir = tempfile::tempdir().unwrap();
        for compress in [false, true] {
            let path = dir.path().join(format!("a{compress}.npz"));
            let mut w = NpzWriter::create(&path, compress);
            w.add("keep", &array![[true, false], [false, true]])
                .unwrap();
            w.add("logits", &Array2::<f32>::from_elem((100, 10), 0.5))
                .unwrap();
            w.finish().unwrap();
            let mut r = NpzArchive::open(&path).unwrap();
            assert_eq!(r.names(), vec!["keep", "logits"]);
            let keep: Array2<bool> = r.read("keep").unwrap();
            assert_eq!(keep, array![[true, false], [false, true]]);
            let logits: Array2<f32> = r.read("logits").unwrap();
            assert_eq!(logits, Array2::<f32>::from_elem((100, 10), 0.5));
            let err = r.read::<f32, ndarray::Ix1>("nope").unwrap_err().to_string();
            assert!(
                err.contains("no array named 'nope'") && err.contains("keep, logits"),
                "{err}"
            );
            let err = r.read::<f64, ndarray::Ix1>("keep").unwrap_err().to_string();
            assert!(err.contains("keep.npy") && err.contains("'|b1'"), "{err}");
        }
    }

    #[test]
    fn corrupt_archives_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.npz");
        std::fs::write(&path, b"definitely not a zip file").unwrap();
        let err = NpzArchive::open(&path).unwrap_err().to_string();
        assert!(
            err.contains("bad.npz") && err.contains("not a readable .npz"),
            "{err}"
        );

        let good = dir.path().join("good.npz");
        let mut w = NpzWriter::create(&good, true);
        w.add("x", &Array1::<f64>::linspace(0.0, 1.0, 5000))
            .unwrap();
        w.finish().unwrap();
        let mut bytes = std::fs::read(&good).unwrap();
        let cut = bytes.len() / 2;
        bytes[cut..cut + 200].iter_mut().for_each(|b| *b ^= 0x5A);
        let corrupt = dir.path().join("corrupt.npz");
        std::fs::write(&corrupt, &bytes).unwrap();
        let outcome = NpzArchive::open(&corrupt).and_then(|mut a| a.read::<f64, ndarray::Ix1>("x"));
        assert!(
            outcome.is_err(),
            "corruption in the deflate stream must not go unnoticed"
        );
    }
}

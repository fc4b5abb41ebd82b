//! Data sets stored as numpy arrays: an `.npz` with `x` and `y`, or two `.npy` files.

use std::path::Path;

use memia_core::npy::{AnyArray, read_npy_any};
use memia_core::npz::NpzArchive;

use crate::dataset::InMemoryDataset;
use crate::error::{DataError, Result, format_error};

/// Loads an `.npz` archive holding features under `x_key` (N x ...; uint8 is scaled to [0, 1],
/// floats are kept, other integers converted) and integer labels under `y_key` (N).
pub fn load_npz(
    path: impl AsRef<Path>,
    x_key: &str,
    y_key: &str,
    classes: Option<usize>,
) -> Result<InMemoryDataset> {
    let path = path.as_ref();
    let mut npz = NpzArchive::open(path)?;
    let x = npz.read_any(x_key)?;
    let y = npz.read_any(y_key)?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    from_arrays(&name, x, y, &format!("{}:{y_key}", path.display()), classes)
}

/// Loads features and labels from two `.npy` files (see [`load_npz`] for the conversions).
pub fn load_npy_pair(
    x_path: impl AsRef<Path>,
    y_path: impl AsRef<Path>,
    classes: Option<usize>,
) -> Result<InMemoryDataset> {
    let (x_path, y_path) = (x_path.as_ref(), y_path.as_ref());
    let name = x_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    from_arrays(
        &name,
        read_npy_any(x_path)?,
        read_npy_any(y_path)?,
        &y_path.display().to_string(),
        classes,
    )
}

fn from_arrays(
    name: &str,
    x: AnyArray,
    y: AnyArray,
    y_location: &str,
    classes: Option<usize>,
) -> Result<InMemoryDataset> {
    let shape = x.shape().to_vec();
    if shape.len() < 2 {
        return Err(format_error(
            name,
            format!(
                "features of shape {shape:?}: expected (N, ...) with at least one feature axis"
            ),
        ));
    }
    let features: Vec<f32> = match &x {
        AnyArray::U8(a) => a.iter().map(|&v| f32::from(v) / 255.0).collect(),
        AnyArray::F32(a) => a.iter().copied().collect(),
        AnyArray::F64(a) => a.iter().map(|&v| v as f32).collect(),
        AnyArray::Bool(a) => a.iter().map(|&v| f32::from(u8::from(v))).collect(),
        other => other
            .to_i64()
            .ok_or_else(|| format_error(name, "features are not numeric"))?
            .iter()
            .map(|&v| v as f32)
            .collect(),
    };
    let labels = y.to_i64_vec(y_location)?;
    if labels.len() != shape[0] {
        return Err(format_error(
            y_location,
            format!(
                "{} labels for {} samples (expected ({},))",
                labels.len(),
                shape[0],
                shape[0]
            ),
        ));
    }
    let classes = memia_core::class_count(&labels, classes)
        .map_err(|e| format_error(y_location, e.to_string()))?;
    let labels: Vec<u32> = labels
        .iter()
        .enumerate()
        .map(|(sample, &label)| {
            if label < 0 || label as u64 >= classes as u64 {
                Err(DataError::LabelOutOfRange {
                    location: y_location.to_string(),
                    sample,
                    label,
                    classes,
                })
            } else {
                Ok(label as u32)
            }
        })
        .collect::<Result<_>>()?;
    InMemoryDataset::new(name, shape[1..].to_vec(), features, labels, classes)
}

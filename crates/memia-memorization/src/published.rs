//! Import of the memorization estimates Feldman and Zhang published
//! ("What Neural Networks Memorize and Why", 2020), so memia's estimates can be compared with
//! theirs on the same samples.
//!
//! Their score files are numpy `.npz` archives holding at least `tr_mem` (float, one
//! memorization value per training sample) and usually `tr_labels` (int); the CIFAR-100 file
//! adds influence matrices and index maps, which are listed but not loaded.

use std::path::Path;

use memia_core::npy::into_dimension;
use memia_core::npz::NpzArchive;
use memia_core::{CoreError, labels_from_i64};
use ndarray::Array1;

use crate::error::Result;

/// Published memorization estimates.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedMemorization {
    /// `tr_mem`: one estimate per training sample.
    pub memorization: Array1<f64>,
    /// `tr_labels`, when present.
    pub labels: Option<Vec<u32>>,
    /// Names of the other arrays in the archive.
    pub other_arrays: Vec<String>,
}

/// Reads a published Feldman-Zhang `.npz` score file.
pub fn read_published(path: impl AsRef<Path>) -> Result<PublishedMemorization> {
    let path = path.as_ref();
    let mut npz = NpzArchive::open(path)?;
    let names = npz.names();
    let location = |name: &str| format!("{}:{name}.npy", path.display());
    let mem_any = npz.read_any("tr_mem")?;
    let memorization = mem_any.to_f64().ok_or_else(|| CoreError::DType {
        location: location("tr_mem"),
        found: mem_any.dtype().descr().to_string(),
        expected: "float32 or float64".into(),
    })?;
    let memorization: Array1<f64> = into_dimension(memorization, &location("tr_mem"))?;
    if let Some((i, v)) = memorization
        .iter()
        .enumerate()
        .find(|(_, v)| !v.is_finite())
    {
        return Err(crate::MemorizationError::BadValue {
            what: "tr_mem",
            index: vec![i],
            value: *v,
            expected: "published estimates must be finite",
        });
    }
    let labels = if names.iter().any(|n| n == "tr_labels") {
        let values = npz
            .read_any("tr_labels")?
            .to_i64_vec(&location("tr_labels"))?;
        if values.len() != memorization.len() {
            return Err(CoreError::Shape {
                location: location("tr_labels"),
                found: vec![values.len()],
                expected: format!("one label per tr_mem entry ({})", memorization.len()),
            }
            .into());
        }
        let classes = values.iter().copied().max().unwrap_or(0).max(0) as usize + 1;
        Some(labels_from_i64(&values, classes)?)
    } else {
        None
    };
    let other_arrays = names
        .into_iter()
        .filter(|n| n != "tr_mem" && n != "tr_labels")
        .collect();
    Ok(PublishedMemorization {
        memorization,
        labels,
        other_arrays,
    })
}

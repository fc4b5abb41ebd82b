//! One model's logits, read and checked in one place: every way logits enter memia (a trainer's
//! output, an external command's file, an imported folder, a target trained elsewhere, a LiRA
//! reference experiment, a run's own files) goes through [`check_model_logits`] and, from a file,
//! [`read_model_logits`], so the rules and the messages are the same everywhere.
//!
//! ```
//! use memia_core::{LogitsProblem, check_model_logits};
//! use ndarray::Array3;
//!
//! let mut logits = Array3::<f32>::zeros((4, 1, 3));
//! assert!(check_model_logits(logits.view(), Some([4, 1, 3])).is_ok());
//! logits[[2, 0, 1]] = f32::NAN;
//! let problem = check_model_logits(logits.view(), None).unwrap_err();
//! assert_eq!(problem.to_string(), "logit NaN of sample 2, query 0, class 1 is not finite");
//! assert!(matches!(problem, LogitsProblem::NotFinite { sample: 2, .. }));
//! ```

use std::path::{Path, PathBuf};

use ndarray::{Array3, ArrayD, ArrayView3, Axis};

use crate::error::{CoreError, Result};
use crate::npy::{AnyArray, read_npy_any_reusing};

/// What is wrong with one model's logits.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LogitsProblem {
    /// The array is not samples x queries x classes (nor samples x classes, nor the LiRA
    /// reference's samples x 1 x queries x classes).
    #[error(
        "{} dimensions {found:?}: expected samples x queries x classes (or samples x classes)",
        found.len()
    )]
    Dimensions {
        /// The shape found.
        found: Vec<usize>,
    },
    /// The shape differs from the one expected (the run's, or the other models').
    #[error("shape {found:?}, expected {expected:?} (samples x queries x classes)")]
    Shape {
        /// The shape found.
        found: [usize; 3],
        /// The shape expected.
        expected: [usize; 3],
    },
    /// A logit is NaN or infinite: no signal can be computed from it.
    #[error("logit {value} of sample {sample}, query {query}, class {class} is not finite")]
    NotFinite {
        /// The sample's index.
        sample: usize,
        /// The query's index.
        query: usize,
        /// The class's index.
        class: usize,
        /// The value found.
        value: f32,
    },
}

/// One model's logits read from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelLogits {
    /// The logits, samples x queries x classes.
    pub logits: Array3<f32>,
    /// Whether the file held float64 values, converted to float32 (callers say so).
    pub converted_from_f64: bool,
}

/// Checks one model's N x A x C logits: the shape, where one is `expected`, then that every logit
/// is finite (the first that is not is named).
pub fn check_model_logits(
    logits: ArrayView3<'_, f32>,
    expected: Option<[usize; 3]>,
) -> std::result::Result<(), LogitsProblem> {
    let found = [logits.dim().0, logits.dim().1, logits.dim().2];
    if let Some(expected) = expected.filter(|&e| e != found) {
        return Err(LogitsProblem::Shape { found, expected });
    }
    match crate::first_non_finite(logits) {
        Some(((sample, query, class), value)) => Err(LogitsProblem::NotFinite {
            sample,
            query,
            class,
            value,
        }),
        None => Ok(()),
    }
}

/// One model's logits as an array of any of the accepted layouts: N x A x C as it is, N x C as
/// one query, and the LiRA reference's N x 1 x A x C without its singleton axis.
pub fn model_logits_from(array: ArrayD<f32>) -> std::result::Result<Array3<f32>, LogitsProblem> {
    let array = match array.ndim() {
        2 => array.insert_axis(Axis(1)),
        4 if array.shape()[1] == 1 => array.index_axis_move(Axis(1), 0),
        _ => array,
    };
    let found = array.shape().to_vec();
    array
        .into_dimensionality()
        .map_err(|_| LogitsProblem::Dimensions { found })
}

/// Reads and checks one model's logits file (`.npy`: float32, or float64 converted; any layout
/// [`model_logits_from`] accepts), against `expected` where given. Errors name the file.
pub fn read_model_logits(path: &Path, expected: Option<[usize; 3]>) -> Result<ModelLogits> {
    read_model_logits_reusing(path, expected, Vec::new())
}

/// [`read_model_logits`] into `buffer` where the file holds float32 (see
/// [`crate::npy::read_npy_any_reusing`]).
pub fn read_model_logits_reusing(
    path: &Path,
    expected: Option<[usize; 3]>,
    buffer: Vec<f32>,
) -> Result<ModelLogits> {
    let location = path.display().to_string();
    let (array, converted_from_f64) = match read_npy_any_reusing(path, buffer)? {
        AnyArray::F64(a) => (a.mapv(|v| v as f32), true),
        other => (other.into_typed::<f32>(&location)?, false),
    };
    let problem = |problem| CoreError::ModelLogits {
        path: PathBuf::from(path),
        problem,
    };
    let logits = model_logits_from(array).map_err(problem)?;
    check_model_logits(logits.view(), expected).map_err(problem)?;
    Ok(ModelLogits {
        logits,
        converted_from_f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::npy::write_npy;

    #[test]
    fn every_layout_reads_as_samples_by_queries_by_classes() {
        let dir = tempfile::tempdir().unwrap();
        let flat = ndarray::Array2::<f64>::from_shape_fn((5, 3), |(i, c)| (i * 3 + c) as f64);
        write_npy(dir.path().join("flat.npy"), &flat).unwrap();
        let read = read_model_logits(&dir.path().join("flat.npy"), Some([5, 1, 3])).unwrap();
        assert!(read.converted_from_f64);
        assert_eq!(read.logits[[4, 0, 2]], 14.0);
        let lira = ndarray::Array4::<f32>::zeros((5, 1, 2, 3));
        write_npy(dir.path().join("lira.npy"), &lira).unwrap();
        let read = read_model_logits(&dir.path().join("lira.npy"), None).unwrap();
        assert_eq!(read.logits.dim(), (5, 2, 3));
        assert!(!read.converted_from_f64);
    }

    #[test]
    fn problems_are_named_with_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.npy");
        write_npy(&path, &ndarray::Array3::<f32>::zeros((5, 1, 3))).unwrap();
        let err = read_model_logits(&path, Some([6, 1, 3])).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: shape [5, 1, 3], expected [6, 1, 3] (samples x queries x classes)",
                path.display()
            )
        );
        write_npy(&path, &ndarray::Array1::<f32>::zeros(5)).unwrap();
        let err = read_model_logits(&path, None).unwrap_err();
        assert!(err.to_string().contains("1 dimensions [5]"), "{err}");
        let mut bad = ndarray::Array3::<f32>::zeros((2, 1, 2));
        bad[[1, 0, 0]] = f32::INFINITY;
        write_npy(&path, &bad).unwrap();
        let err = read_model_logits(&path, None).unwrap_err();
        assert!(
            matches!(
                &err,
                CoreError::ModelLogits {
                    problem: LogitsProblem::NotFinite {
                        sample: 1,
                        class: 0,
                        ..
                    },
                    ..
                }
            ),
            "{err}"
        );
    }
}

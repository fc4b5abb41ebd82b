//! Shadow-model outputs: logits of every model on every pool sample under every query.

use std::path::Path;

use ndarray::{Array3, Array4, ArrayView3, ArrayView4, Axis};

use crate::error::{CoreError, Result};
use crate::npy::{read_npy, write_npy};
use crate::signal::Signal;

/// Logits of K models on N samples under A queries (the plain input and its augmentations),
/// over C classes: a K x N x A x C `f32` array in C order.
///
/// ```
/// use ndarray::Array4;
/// use memia_core::{Logits, Signal};
///
/// // 2 models, 3 samples, 1 query, 2 classes.
/// let logits = Logits::new(Array4::from_shape_vec((2, 3, 1, 2), vec![
///     2.0, 0.0,  0.0, 1.0,  5.0, 5.0,
///     1.0, 0.0,  0.0, 3.0,  0.0, 1.0,
/// ]).unwrap()).unwrap();
/// let correct = logits.signals(&[0, 1, 0], Signal::Correct).unwrap();
/// assert_eq!(correct.shape(), &[2, 3, 1]);
/// assert_eq!(correct[[0, 2, 0]], 1.0); // a tie goes to the first class, as numpy's argmax
/// assert_eq!(correct[[1, 2, 0]], 0.0);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Logits {
    data: Array4<f32>,
}

impl Logits {
    /// Wraps a K x N x A x C array; needs K, N, A >= 1 and C >= 2.
    pub fn new(data: Array4<f32>) -> Result<Self> {
        Self::checked(data, "logits")
    }

    fn checked(data: Array4<f32>, location: &str) -> Result<Self> {
        let (k, n, a, c) = data.dim();
        if k == 0 || n == 0 || a == 0 || c < 2 {
            return Err(CoreError::Shape {
                location: location.to_string(),
                found: vec![k, n, a, c],
                expected: "models x samples x queries x classes with at least one model, \
                           sample and query, and at least 2 classes"
                    .into(),
            });
        }
        Ok(Logits {
            data: data.as_standard_layout().into_owned(),
        })
    }

    /// Number of models K.
    pub fn models(&self) -> usize {
        self.data.dim().0
    }

    /// Number of pool samples N.
    pub fn samples(&self) -> usize {
        self.data.dim().1
    }

    /// Number of queries (augmentations) A per sample.
    pub fn queries(&self) -> usize {
        self.data.dim().2
    }

    /// Number of classes C.
    pub fn classes(&self) -> usize {
        self.data.dim().3
    }

    /// The whole array.
    pub fn view(&self) -> ArrayView4<'_, f32> {
        self.data.view()
    }

    /// Model `model`'s N x A x C logits (the layout of one `logits/model_*.npy` file).
    pub fn model(&self, model: usize) -> ArrayView3<'_, f32> {
        self.data.index_axis(Axis(0), model)
    }

    /// The logits of the models `models` (in that order), e.g. a target's shadow models.
    /// Fails if the list is empty or an index is not below K.
    pub fn select_models(&self, models: &[usize]) -> Result<Self> {
        if let Some(&bad) = models.iter().find(|&&k| k >= self.models()) {
            return Err(CoreError::invalid(
                "models",
                format!("model {bad} selected but the logits hold {}", self.models()),
            ));
        }
        Self::new(self.data.select(Axis(0), models))
    }

    /// Consumes the value, returning the array.
    pub fn into_array(self) -> Array4<f32> {
        self.data
    }

    /// Stacks per-model N x A x C arrays into K x N x A x C; all must have one shape.
    pub fn from_models(models: &[ArrayView3<'_, f32>]) -> Result<Self> {
        let first = models
            .first()
            .ok_or_else(|| CoreError::invalid("models", "no model logits given"))?;
        for (k, m) in models.iter().enumerate() {
            if m.shape() != first.shape() {
                return Err(CoreError::Shape {
                    location: format!("logits of model {k}"),
                    found: m.shape().to_vec(),
                    expected: format!("{:?} like model 0", first.shape()),
                });
            }
        }
        let stacked = ndarray::stack(Axis(0), models)
            .map_err(|e| CoreError::invalid("models", e.to_string()))?;
        Self::new(stacked)
    }

    /// Saves as one K x N x A x C float32 `.npy` file (atomically).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        write_npy(path, &self.data)
    }

    /// Loads a K x N x A x C float32 `.npy` file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Self::checked(read_npy(path)?, &path.display().to_string())
    }

    /// Computes `signal` for every model, sample and query: a K x N x A array.
    ///
    /// `labels` holds the true class of each of the N samples. Fails, naming the first
    /// offender, if a label is not below C or if a logit is NaN or infinite. Runs on all
    /// threads of the current rayon pool. The same computation as
    /// [`Signals::compute`](crate::Signals::compute), which reads models one at a time.
    pub fn signals(&self, labels: &[u32], signal: Signal) -> Result<Array3<f64>> {
        let all: Vec<usize> = (0..self.models()).collect();
        let mut signals = crate::Signals::compute(self, &all, labels, &[signal], |_, _| {})?;
        Ok(signals.take(signal).expect("the signal asked for"))
    }
}

/// Checks that there is one label per sample and each is below `classes`.
pub fn check_labels(labels: &[u32], samples: usize, classes: usize) -> Result<()> {
    if labels.len() != samples {
        return Err(CoreError::Shape {
            location: "labels".into(),
            found: vec![labels.len()],
            expected: format!("one label per sample ({samples})"),
        });
    }
    if let Some((sample, &label)) = labels
        .iter()
        .enumerate()
        .find(|&(_, &l)| l as usize >= classes)
    {
        return Err(CoreError::LabelOutOfRange {
            sample,
            label: i64::from(label),
            classes,
        });
    }
    Ok(())
}

/// Converts integer labels read from a file (any integer dtype, as `i64`) to `u32`, failing on
/// negative values or values not below `classes`.
pub fn labels_from_i64(values: &[i64], classes: usize) -> Result<Vec<u32>> {
    values
        .iter()
        .enumerate()
        .map(|(sample, &label)| {
            if label < 0 || label as u64 >= classes as u64 {
                Err(CoreError::LabelOutOfRange {
                    sample,
                    label,
                    classes,
                })
            } else {
                Ok(label as u32)
            }
        })
        .collect()
}

/// The first NaN or infinite value of one model's N x A x C logits, as its
/// `(sample, query, class)` and value: what to name when refusing a file.
pub fn first_non_finite(
    model: ndarray::ArrayView3<'_, f32>,
) -> Option<((usize, usize, usize), f32)> {
    // The common case, all finite, in one vectorised pass over contiguous values: an exponent
    // of all ones is NaN or infinite; blocks are or-ed without a branch per value.
    let all_finite = |s: &[f32]| {
        s.chunks(4096).all(|block| {
            block.iter().fold(0u32, |acc, v| {
                acc | u32::from(v.to_bits() & 0x7f80_0000 == 0x7f80_0000)
            }) == 0
        })
    };
    if model.as_slice().is_some_and(all_finite) {
        return None;
    }
    model
        .indexed_iter()
        .find(|(_, v)| !v.is_finite())
        .map(|(i, &v)| (i, v))
}

/// The number of classes of integer labels: `explicit` when given (the labels are then checked
/// against it where they are converted), else the largest label + 1. Labels decide memory (every
/// model writes N x C logits), so an inferred count above the number of labels (a label of 2^40
/// in a small file) is refused rather than allocated: give the count explicitly if it is meant.
pub fn class_count(labels: &[i64], explicit: Option<usize>) -> Result<usize> {
    if let Some(classes) = explicit {
        return Ok(classes);
    }
    let largest = labels.iter().copied().max().unwrap_or(0).max(0);
    if largest as u64 >= labels.len().max(2) as u64 {
        let sample = labels.iter().position(|&l| l == largest).unwrap_or(0);
        return Err(CoreError::InvalidArgument {
            name: "labels",
            reason: format!(
                "label {largest} of sample {sample} would make {} classes for {} samples: \
                 give the number of classes explicitly if it is meant",
                largest as u128 + 1,
                labels.len()
            ),
        });
    }
    Ok(largest as usize + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_counts_are_bounded_by_the_labels() {
        assert_eq!(class_count(&[0, 2, 1, 2], None).unwrap(), 3);
        assert_eq!(class_count(&[0, 1], None).unwrap(), 2);
        assert_eq!(class_count(&[0], None).unwrap(), 1);
        let err = class_count(&[0, 1 << 40, 1], None).unwrap_err().to_string();
        assert!(err.contains("label 1099511627776 of sample 1"), "{err}");
        assert!(class_count(&[0, 1_000_000], None).is_err());
        assert_eq!(class_count(&[0, 7], Some(10)).unwrap(), 10);
    }

    #[test]
    fn select_models_picks_models() {
        let logits = Logits::new(Array4::from_shape_fn((3, 2, 1, 2), |(k, i, _, c)| {
            (k * 100 + i * 10 + c) as f32
        }))
        .unwrap();
        let sub = logits.select_models(&[2, 0]).unwrap();
        assert_eq!(sub.model(0), logits.model(2));
        assert_eq!(sub.model(1), logits.model(0));
        assert!(
            logits
                .select_models(&[3])
                .unwrap_err()
                .to_string()
                .contains("model 3")
        );
        assert!(logits.select_models(&[]).is_err());
    }

    fn small() -> Logits {
        Logits::new(Array4::from_shape_fn((3, 4, 2, 5), |(k, n, a, c)| {
            (k as f32) * 0.5 - (n as f32) * 0.25
                + (a as f32)
                + if c == n % 5 { 2.0 } else { -(c as f32) * 0.1 }
        }))
        .unwrap()
    }

    #[test]
    fn signals_match_per_vector_computation() {
        let logits = small();
        let labels = [0u32, 1, 2, 4];
        for signal in Signal::ALL {
            let s = logits.signals(&labels, signal).unwrap();
            assert_eq!(s.shape(), &[3, 4, 2]);
            for ((k, n, a), &v) in s.indexed_iter() {
                let z = logits.view().slice(ndarray::s![k, n, a, ..]).to_vec();
                assert_eq!(v, signal.of(&z, labels[n] as usize));
            }
        }
    }

    #[test]
    fn rejects_bad_labels_and_non_finite_logits() {
        let logits = small();
        let err = logits.signals(&[0, 1, 5, 0], Signal::Phi).unwrap_err();
        assert_eq!(
            err.to_string(),
            "label 5 of sample 2 is out of range: the logits have 5 classes"
        );
        assert!(
            logits
                .signals(&[0, 1], Signal::Phi)
                .unwrap_err()
                .to_string()
                .contains("one label per sample (4)")
        );
        let mut raw = logits.clone().into_array();
        raw[[2, 1, 1, 3]] = f32::NAN;
        let err = Logits::new(raw)
            .unwrap()
            .signals(&[0, 1, 2, 3], Signal::Loss)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "logit of model 2, sample 1, query 1 is not finite (NaN)"
        );
        assert!(
            labels_from_i64(&[0, -1], 3)
                .unwrap_err()
                .to_string()
                .contains("label -1 of sample 1")
        );
        assert_eq!(labels_from_i64(&[2, 0], 3).unwrap(), vec![2, 0]);
    }

    #[test]
    fn rejects_degenerate_shapes() {
        assert!(Logits::new(Array4::zeros((0, 2, 1, 3))).is_err());
        let err = Logits::new(Array4::zeros((1, 2, 1, 1)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("at least 2 classes"), "{err}");
    }

    #[test]
    fn save_load_and_stack() {
        let dir = tempfile::tempdir().unwrap();
        let logits = small();
        logits.save(dir.path().join("l.npy")).unwrap();
        assert_eq!(Logits::load(dir.path().join("l.npy")).unwrap(), logits);
        let per_model: Vec<_> = (0..3).map(|k| logits.model(k)).collect();
        assert_eq!(Logits::from_models(&per_model).unwrap(), logits);
        let other = Array3::<f32>::zeros((4, 2, 6));
        let err = Logits::from_models(&[logits.model(0), other.view()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("model 1"), "{err}");
    }
}

//! The `Dataset` trait and its in-memory implementation.

use crate::error::{DataError, Result, invalid};

/// A labelled data set of fixed-shape `f32` samples. Implement it to audit your own data.
///
/// Samples are read one at a time as contiguous slices, so a subset or a view needs no copy.
pub trait Dataset: Send + Sync {
    /// A short name, used in provenance and reports.
    fn name(&self) -> &str;

    /// Number of samples.
    fn len(&self) -> usize;

    /// Whether there are no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Shape of one sample: `[channels, height, width]` for images, `[features]` for vectors.
    fn feature_shape(&self) -> &[usize];

    /// Number of values per sample (the product of the shape).
    fn feature_len(&self) -> usize {
        self.feature_shape().iter().product()
    }

    /// Number of classes; every label is below it.
    fn classes(&self) -> usize;

    /// Sample `i`'s values, `feature_len()` of them, in C order of `feature_shape()`.
    fn features(&self, i: usize) -> &[f32];

    /// Sample `i`'s label.
    fn label(&self, i: usize) -> u32;

    /// All samples' values, row-major (N x `feature_len()`), e.g. for a training framework.
    fn to_row_major(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.len() * self.feature_len());
        for i in 0..self.len() {
            out.extend_from_slice(self.features(i));
        }
        out
    }

    /// All labels.
    fn labels(&self) -> Vec<u32> {
        (0..self.len()).map(|i| self.label(i)).collect()
    }
}

impl std::fmt::Debug for dyn Dataset + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Dataset({}, {} samples of {:?})",
            self.name(),
            self.len(),
            self.feature_shape()
        )
    }
}

/// A data set held in memory: N samples, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct InMemoryDataset {
    name: String,
    shape: Vec<usize>,
    features: Vec<f32>,
    labels: Vec<u32>,
    classes: usize,
}

impl InMemoryDataset {
    /// Builds a data set, checking that `features` holds one row of `shape` per label, that
    /// every value is finite and every label is below `classes`.
    pub fn new(
        name: impl Into<String>,
        shape: Vec<usize>,
        features: Vec<f32>,
        labels: Vec<u32>,
        classes: usize,
    ) -> Result<Self> {
        let name = name.into();
        let d: usize = shape.iter().product();
        if shape.is_empty() || d == 0 {
            return Err(invalid(
                "shape",
                format!("{name}: sample shape {shape:?} has no values"),
            ));
        }
        if features.len() != labels.len() * d {
            return Err(invalid(
                "features",
                format!(
                    "{name}: {} values for {} samples of shape {shape:?} (expected {})",
                    features.len(),
                    labels.len(),
                    labels.len() * d
                ),
            ));
        }
        if let Some(pos) = features.iter().position(|v| !v.is_finite()) {
            return Err(invalid(
                "features",
                format!(
                    "{name}: value {} of sample {} is not finite",
                    features[pos],
                    pos / d
                ),
            ));
        }
        if let Some((sample, &label)) = labels
            .iter()
            .enumerate()
            .find(|&(_, &l)| l as usize >= classes)
        {
            return Err(DataError::LabelOutOfRange {
                location: name,
                sample,
                label: i64::from(label),
                classes,
            });
        }
        Ok(InMemoryDataset {
            name,
            shape,
            features,
            labels,
            classes,
        })
    }

    /// Copies any data set into memory.
    pub fn from_dataset(ds: &dyn Dataset) -> Self {
        InMemoryDataset {
            name: ds.name().to_string(),
            shape: ds.feature_shape().to_vec(),
            features: ds.to_row_major(),
            labels: ds.labels(),
            classes: ds.classes(),
        }
    }

    /// A view of the samples `indices` (in that order), without copying them.
    pub fn subset(&self, indices: Vec<usize>) -> Result<Subset<'_>> {
        Subset::new(self, indices)
    }

    /// All values, row-major (N x `feature_len()`).
    pub fn as_slice(&self) -> &[f32] {
        &self.features
    }

    /// Transforms every sample in place (for preprocessing), then checks the values as
    /// [`InMemoryDataset::new`] does: a non-finite value is an error naming its sample, and the
    /// data set is consumed, so that no half-transformed copy remains in use.
    pub fn map_samples(mut self, mut f: impl FnMut(&mut [f32])) -> Result<Self> {
        let d = self.feature_len();
        self.features.chunks_exact_mut(d).for_each(&mut f);
        if let Some(pos) = self.features.iter().position(|v| !v.is_finite()) {
            return Err(invalid(
                "features",
                format!(
                    "{}: the transformation made value {} of sample {} non-finite",
                    self.name,
                    self.features[pos],
                    pos / d
                ),
            ));
        }
        Ok(self)
    }

    /// Changes the per-sample shape to another of the same size (e.g. flattening).
    pub fn reshape(&mut self, shape: Vec<usize>) -> Result<()> {
        if shape.is_empty() {
            return Err(invalid(
                "shape",
                format!(
                    "{}: an empty sample shape (samples have at least one axis)",
                    self.name
                ),
            ));
        }
        if shape.iter().product::<usize>() != self.feature_len() {
            return Err(invalid(
                "shape",
                format!(
                    "{:?} does not hold the {} values of {:?}",
                    shape,
                    self.feature_len(),
                    self.shape
                ),
            ));
        }
        self.shape = shape;
        Ok(())
    }

    /// Renames the data set.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

impl Dataset for InMemoryDataset {
    fn name(&self) -> &str {
        &self.name
    }
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn feature_shape(&self) -> &[usize] {
        &self.shape
    }
    fn classes(&self) -> usize {
        self.classes
    }
    fn features(&self, i: usize) -> &[f32] {
        let d = self.feature_len();
        &self.features[i * d..(i + 1) * d]
    }
    fn label(&self, i: usize) -> u32 {
        self.labels[i]
    }
    fn labels(&self) -> Vec<u32> {
        self.labels.clone()
    }
}

/// Some samples of a data set, by index, borrowed rather than copied.
#[derive(Debug, Clone)]
pub struct Subset<'a> {
    parent: &'a InMemoryDataset,
    indices: Vec<usize>,
}

impl<'a> Subset<'a> {
    /// The samples `indices` of `parent`; fails on an index out of range.
    pub fn new(parent: &'a InMemoryDataset, indices: Vec<usize>) -> Result<Self> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= parent.len()) {
            return Err(invalid(
                "indices",
                format!(
                    "{}: index {bad} is not below {} samples",
                    parent.name(),
                    parent.len()
                ),
            ));
        }
        Ok(Subset { parent, indices })
    }

    /// Position `i` of the subset in the parent.
    pub fn parent_index(&self, i: usize) -> usize {
        self.indices[i]
    }
}

impl Dataset for Subset<'_> {
    fn name(&self) -> &str {
        self.parent.name()
    }
    fn len(&self) -> usize {
        self.indices.len()
    }
    fn feature_shape(&self) -> &[usize] {
        self.parent.feature_shape()
    }
    fn classes(&self) -> usize {
        self.parent.classes()
    }
    fn features(&self, i: usize) -> &[f32] {
        self.parent.features(self.indices[i])
    }
    fn label(&self, i: usize) -> u32 {
        self.parent.label(self.indices[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> InMemoryDataset {
        InMemoryDataset::new(
            "tiny",
            vec![1, 2],
            vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
            vec![0, 2, 1],
            3,
        )
        .unwrap()
    }

    #[test]
    fn rows_subsets_and_copies() {
        let ds = tiny();
        assert_eq!((ds.len(), ds.feature_len(), ds.classes()), (3, 2, 3));
        assert_eq!(ds.features(1), &[2.0, 3.0]);
        let sub = ds.subset(vec![2, 0]).unwrap();
        assert_eq!(
            (sub.len(), sub.label(0), sub.features(1)),
            (2, 1, &[0.0f32, 1.0][..])
        );
        assert_eq!(sub.parent_index(0), 2);
        let copy = InMemoryDataset::from_dataset(&sub);
        assert_eq!(copy.as_slice(), &[4.0, 5.0, 0.0, 1.0]);
        assert!(
            ds.subset(vec![3])
                .unwrap_err()
                .to_string()
                .contains("index 3 is not below 3")
        );
    }

    #[test]
    fn validation() {
        assert!(InMemoryDataset::new("x", vec![2], vec![0.0; 3], vec![0, 0], 1).is_err());
        let err = InMemoryDataset::new("x", vec![1], vec![0.0, 1.0], vec![0, 4], 3).unwrap_err();
        assert_eq!(
            err.to_string(),
            "x: label 4 of sample 1 is out of range for 3 classes"
        );
        assert!(InMemoryDataset::new("x", vec![1], vec![f32::NAN], vec![0], 1).is_err());
        assert!(InMemoryDataset::new("x", vec![0], vec![], vec![], 1).is_err());
        let mut ds = tiny();
        ds.reshape(vec![2]).unwrap();
        assert!(ds.reshape(vec![3]).is_err());
        // `new` refuses an empty sample shape; so does `reshape`, even of one-value samples.
        let mut single = InMemoryDataset::new("s", vec![1], vec![0.5, 1.5], vec![0, 0], 1).unwrap();
        assert!(InMemoryDataset::new("s", vec![], vec![0.5, 1.5], vec![0, 0], 1).is_err());
        let err = single.reshape(vec![]).unwrap_err();
        assert!(err.to_string().contains("empty sample shape"), "{err}");
        assert_eq!(single.feature_shape(), &[1]);
    }

    #[test]
    fn transformed_samples_stay_finite() {
        let halved = tiny().map_samples(|x| x.iter_mut().for_each(|v| *v /= 2.0));
        assert_eq!(halved.unwrap().features(2), &[2.0, 2.5]);
        // A transformation that makes NaN is refused with the sample named, not kept.
        let err = tiny()
            .map_samples(|x| x[0] = if x[0] == 4.0 { f32::NAN } else { x[0] })
            .unwrap_err();
        assert!(
            err.to_string().contains("value NaN of sample 2 non-finite"),
            "{err}"
        );
    }
}

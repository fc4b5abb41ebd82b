//! The keep matrix: which pool samples each shadow model was trained on.

use std::path::Path;

use ndarray::{Array1, Array2, ArrayView1, Axis};
use rand::RngExt;
use rand::seq::SliceRandom;

use crate::error::{CoreError, Result};
use crate::npy::{read_npy, write_npy};
use crate::rng::stream_rng;

/// `keep[k][i]`: whether pool sample `i` was in the training set of model `k`.
///
/// K models (rows) by N samples (columns), stored as a `bool` array so that it saves as a
/// numpy `bool` `.npy` file, the format of the LiRA reference code. Always at least one model
/// and one sample.
///
/// ```
/// use memia_core::KeepMatrix;
///
/// let keep = KeepMatrix::balanced(8, 1000, 42).unwrap();
/// assert!((0..1000).all(|i| keep.in_count(i) == 4)); // every sample IN for exactly K/2 models
/// assert_eq!(keep.row(3).len(), 1000);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeepMatrix {
    keep: Array2<bool>,
}

impl KeepMatrix {
    /// Wraps an existing K x N array; fails if K or N is 0.
    pub fn from_array(keep: Array2<bool>) -> Result<Self> {
        let (k, n) = keep.dim();
        if k == 0 || n == 0 {
            return Err(CoreError::Shape {
                location: "keep matrix".into(),
                found: vec![k, n],
                expected: "at least one model (K > 0) and one sample (N > 0)".into(),
            });
        }
        // Row-major already (as nearly every caller's is): kept as it is, not copied again.
        let keep = if keep.is_standard_layout() {
            keep
        } else {
            keep.as_standard_layout().into_owned()
        };
        Ok(KeepMatrix { keep })
    }

    /// The LiRA reference's balanced scheme with half the models per sample: see
    /// [`KeepMatrix::balanced_with_ratio`].
    pub fn balanced(models: usize, samples: usize, seed: u64) -> Result<Self> {
        Self::balanced_with_ratio(models, samples, 0.5, seed)
    }

    /// Every sample is IN for exactly `floor(ratio * K)` models, chosen per sample by a random
    /// order of the models (the first models in that order keep it), as the LiRA reference's
    /// `train.py` builds its keep matrix. Sample `i` uses random stream `i` of `seed`.
    ///
    /// Unlike the other schemes, rows depend on K: adding models changes every row.
    pub fn balanced_with_ratio(
        models: usize,
        samples: usize,
        ratio: f64,
        seed: u64,
    ) -> Result<Self> {
        check_dims(models, samples)?;
        check_probability("ratio", ratio)?;
        let keep_per_sample = (ratio * models as f64).floor() as usize;
        let mut keep = Array2::from_elem((models, samples), false);
        let mut order: Vec<usize> = (0..models).collect();
        for i in 0..samples {
            let mut rng = stream_rng(seed, i as u64);
            order.sort_unstable();
            order.shuffle(&mut rng);
            for &k in &order[..keep_per_sample] {
                keep[[k, i]] = true;
            }
        }
        Ok(KeepMatrix { keep })
    }

    /// Each sample is IN for each model independently with probability `p`. Model `k` uses
    /// random stream `k` of `seed`, so more models can be added later with the same seed
    /// without changing the existing rows.
    pub fn bernoulli(models: usize, samples: usize, p: f64, seed: u64) -> Result<Self> {
        check_dims(models, samples)?;
        check_probability("p", p)?;
        let mut keep = Array2::from_elem((models, samples), false);
        for (k, mut row) in keep.axis_iter_mut(Axis(0)).enumerate() {
            let mut rng = stream_rng(seed, k as u64);
            row.iter_mut().for_each(|v| *v = rng.random::<f64>() < p);
        }
        Ok(KeepMatrix { keep })
    }

    /// Each model trains on a uniformly random subset of exactly `round(ratio * N)` samples
    /// (the Feldman-Zhang subsampling scheme). Model `k` uses random stream `k` of `seed`, so
    /// more models can be added later without changing the existing rows.
    pub fn fixed_size(models: usize, samples: usize, ratio: f64, seed: u64) -> Result<Self> {
        check_dims(models, samples)?;
        check_probability("ratio", ratio)?;
        let size = (ratio * samples as f64).round() as usize;
        let mut keep = Array2::from_elem((models, samples), false);
        let mut indices: Vec<usize> = (0..samples).collect();
        for (k, mut row) in keep.axis_iter_mut(Axis(0)).enumerate() {
            let mut rng = stream_rng(seed, k as u64);
            indices.sort_unstable();
            let (chosen, _) = indices.partial_shuffle(&mut rng, size);
            for &i in chosen.iter() {
                row[i] = true;
            }
        }
        Ok(KeepMatrix { keep })
    }

    /// Number of models K.
    pub fn models(&self) -> usize {
        self.keep.nrows()
    }

    /// Number of pool samples N.
    pub fn samples(&self) -> usize {
        self.keep.ncols()
    }

    /// Whether sample `sample` was in model `model`'s training set.
    pub fn get(&self, model: usize, sample: usize) -> bool {
        self.keep[[model, sample]]
    }

    /// Model `model`'s membership row (length N): the ground truth when it is the target.
    pub fn row(&self, model: usize) -> ArrayView1<'_, bool> {
        self.keep.row(model)
    }

    /// Sample `sample`'s column (length K): which models trained on it.
    pub fn column(&self, sample: usize) -> ArrayView1<'_, bool> {
        self.keep.column(sample)
    }

    /// For how many models sample `sample` is IN.
    pub fn in_count(&self, sample: usize) -> usize {
        self.keep.column(sample).iter().filter(|&&v| v).count()
    }

    /// For how many models sample `sample` is OUT.
    pub fn out_count(&self, sample: usize) -> usize {
        self.models() - self.in_count(sample)
    }

    /// IN counts of all samples (length N).
    pub fn in_counts(&self) -> Array1<usize> {
        let mut counts = Array1::<usize>::zeros(self.samples());
        for row in self.keep.outer_iter() {
            counts.zip_mut_with(&row, |c, &v| *c += usize::from(v));
        }
        counts
    }

    /// Training-set size of every model (length K).
    pub fn train_sizes(&self) -> Array1<usize> {
        self.keep
            .outer_iter()
            .map(|row| row.iter().filter(|&&v| v).count())
            .collect()
    }

    /// The keep matrix of the models `models` (in that order), e.g. a subset of shadow models.
    /// Fails if the list is empty or an index is not below K.
    pub fn select_models(&self, models: &[usize]) -> Result<Self> {
        self.select(Axis(0), models, "model")
    }

    /// The keep matrix restricted to the pool samples `samples` (in that order), e.g. the
    /// candidates of a focused audit. Fails if the list is empty or an index is not below N.
    pub fn select_samples(&self, samples: &[usize]) -> Result<Self> {
        self.select(Axis(1), samples, "sample")
    }

    /// Rows (axis 0, models) or columns (axis 1, samples) by index, checked.
    fn select(&self, axis: Axis, indices: &[usize], what: &'static str) -> Result<Self> {
        let len = self.keep.len_of(axis);
        if let Some(&bad) = indices.iter().find(|&&i| i >= len) {
            return Err(CoreError::invalid(
                if axis.index() == 0 {
                    "models"
                } else {
                    "samples"
                },
                format!("{what} {bad} selected but the keep matrix has {len}"),
            ));
        }
        Self::from_array(self.keep.select(axis, indices))
    }

    /// The whole K x N array.
    pub fn as_array(&self) -> &Array2<bool> {
        &self.keep
    }

    /// Consumes the matrix, returning the K x N array.
    pub fn into_array(self) -> Array2<bool> {
        self.keep
    }

    /// Saves as a K x N bool `.npy` file (atomically).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        write_npy(path, &self.keep)
    }

    /// Loads a K x N bool `.npy` file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let keep: Array2<bool> = read_npy(path)?;
        Self::from_array(keep).map_err(|e| match e {
            CoreError::Shape {
                found, expected, ..
            } => CoreError::Shape {
                location: path.display().to_string(),
                found,
                expected,
            },
            other => other,
        })
    }
}

fn check_dims(models: usize, samples: usize) -> Result<()> {
    if models == 0 {
        return Err(CoreError::invalid("models", "K must be at least 1"));
    }
    if samples == 0 {
        return Err(CoreError::invalid("samples", "N must be at least 1"));
    }
    Ok(())
}

fn check_probability(name: &'static str, p: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&p) {
        return Err(CoreError::invalid(name, format!("{p} is not in [0, 1]")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_keeps_each_sample_for_exactly_half() {
        let keep = KeepMatrix::balanced(16, 500, 1).unwrap();
        assert!(keep.in_counts().iter().all(|&c| c == 8));
        // Rows differ in size, but on average hold half the pool.
        let total: usize = keep.train_sizes().sum();
        assert_eq!(total, 500 * 8);
        let odd = KeepMatrix::balanced_with_ratio(5, 100, 0.5, 1).unwrap();
        assert!(
            odd.in_counts().iter().all(|&c| c == 2),
            "floor(0.5 * 5) = 2 as in the reference"
        );
    }

    #[test]
    fn balanced_orders_are_random_per_sample() {
        let keep = KeepMatrix::balanced(8, 2000, 3).unwrap();
        // Each model keeps each sample with probability 1/2: 1000 +- 3 * sqrt(500).
        for size in keep.train_sizes() {
            assert!((933..=1067).contains(&size), "train size {size}");
        }
    }

    #[test]
    fn fixed_size_subsets_have_exact_size() {
        let keep = KeepMatrix::fixed_size(10, 1001, 0.7, 9).unwrap();
        assert!(keep.train_sizes().iter().all(|&s| s == 701));
        let more = KeepMatrix::fixed_size(12, 1001, 0.7, 9).unwrap();
        for k in 0..10 {
            assert_eq!(keep.row(k), more.row(k), "adding models keeps the old rows");
        }
    }

    #[test]
    fn bernoulli_has_the_right_rate_and_extends() {
        let keep = KeepMatrix::bernoulli(20, 5000, 0.3, 5).unwrap();
        let rate = keep.train_sizes().sum() as f64 / (20.0 * 5000.0);
        assert!((rate - 0.3).abs() < 0.01, "rate {rate}");
        let more = KeepMatrix::bernoulli(25, 5000, 0.3, 5).unwrap();
        assert_eq!(keep.row(19), more.row(19));
    }

    #[test]
    fn seeds_determine_the_matrix() {
        for build in [
            |s| KeepMatrix::balanced(6, 300, s),
            |s| KeepMatrix::bernoulli(6, 300, 0.5, s),
            |s| KeepMatrix::fixed_size(6, 300, 0.5, s),
        ] {
            assert_eq!(build(11).unwrap(), build(11).unwrap());
            assert_ne!(build(11).unwrap(), build(12).unwrap());
        }
    }

    #[test]
    fn bad_arguments_are_rejected() {
        assert!(
            KeepMatrix::balanced(0, 10, 1)
                .unwrap_err()
                .to_string()
                .contains("K must be at least 1")
        );
        assert!(
            KeepMatrix::bernoulli(3, 0, 0.5, 1)
                .unwrap_err()
                .to_string()
                .contains("N must be")
        );
        assert!(
            KeepMatrix::bernoulli(3, 3, 1.5, 1)
                .unwrap_err()
                .to_string()
                .contains("1.5 is not in [0, 1]")
        );
        assert!(KeepMatrix::fixed_size(3, 3, f64::NAN, 1).is_err());
        assert!(KeepMatrix::from_array(Array2::from_elem((0, 4), true)).is_err());
    }

    #[test]
    fn select_models_picks_rows() {
        let keep = KeepMatrix::bernoulli(5, 20, 0.5, 8).unwrap();
        let sub = keep.select_models(&[4, 1]).unwrap();
        assert_eq!(sub.models(), 2);
        assert_eq!(sub.row(0), keep.row(4));
        assert_eq!(sub.row(1), keep.row(1));
        assert!(
            keep.select_models(&[5])
                .unwrap_err()
                .to_string()
                .contains("model 5 selected")
        );
        assert!(keep.select_models(&[]).is_err());
        let cols = keep.select_samples(&[19, 0]).unwrap();
        assert_eq!(cols.samples(), 2);
        assert_eq!(cols.column(0), keep.column(19));
        assert!(keep.select_samples(&[20]).is_err());
    }

    #[test]
    fn save_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let keep = KeepMatrix::balanced(4, 33, 2).unwrap();
        keep.save(dir.path().join("keep.npy")).unwrap();
        assert_eq!(KeepMatrix::load(dir.path().join("keep.npy")).unwrap(), keep);
        crate::npy::write_npy(
            dir.path().join("empty.npy"),
            &Array2::from_elem((0, 3), false),
        )
        .unwrap();
        let err = KeepMatrix::load(dir.path().join("empty.npy"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("empty.npy") && err.contains("K > 0"), "{err}");
    }
}

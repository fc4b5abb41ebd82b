//! Memorization from training trajectories: which samples the models learn only late.
//!
//! Feldman and Zhang's estimate compares models trained with a sample against models trained
//! without it, so it needs many models on each side. A model that trains on a sample is,
//! early in its training, close to a model that never saw it: a typical sample is already
//! right after a few epochs (the other samples teach it), while a sample the model memorizes
//! becomes right only once fitted individually. The trajectory estimate reads that difference
//! off the models' own training, recorded at a few checkpoints (`checkpoint_every` in the
//! training settings, or a trajectory file written by an external trainer):
//!
//! `late(i) = mean_{k: keep[k][i]} [ o_k(i, last) - o_k(i, first) ]`,
//!
//! where `o_k(i, t)` is model k's outcome (correctness, or true-class probability) on sample i
//! at checkpoint t. With correctness it is on memorization's scale (1: wrong at the first
//! checkpoint, right at the end). It uses only the models trained on the sample, so a sample
//! needs one IN model where Feldman and Zhang's estimate needs an IN and an OUT one, and its
//! cost is the checkpoints' predictions (a forward pass over the pool each), not models. The first checkpoint must come before the
//! models memorize: on MNIST with 30 epochs, memorized samples are right on 22% of their IN
//! models at epoch 5 (10% on OUT models) and typical samples on 89%, so the first checkpoint
//! at a sixth of the training works (`examples/audit_cost.rs`).

use memia_core::{KeepMatrix, Logits};
use ndarray::{Array1, Array2};

use crate::Outcome;
use crate::error::{MemorizationError, Result, check_shape, invalid};
use crate::estimator::accumulate;

/// The trajectory estimate for N samples (NaN where no model trained on the sample).
#[derive(Debug, Clone, PartialEq)]
pub struct LateLearning {
    /// `late(i)`, in [-1, 1]: the outcome gained between the first and the last checkpoint,
    /// averaged over the models trained on the sample.
    pub score: Array1<f64>,
    /// Its standard error over those models (NaN with fewer than two).
    pub std_error: Array1<f64>,
    /// Number of models trained on the sample.
    pub in_count: Array1<u32>,
}

/// Estimates late learning ([module docs](self)) from the K x N x T x C `trajectories` (the
/// checkpoints on the queries' axis, as `memia_shadow::RunDir::trajectories` reads them) of
/// the models of `keep` and the pool's `labels`. Needs at least two checkpoints; samples no
/// model trained on are NaN (or an error, with [`crate::Missing::Error`]).
///
/// ```
/// use memia_core::{KeepMatrix, Logits};
/// use memia_memorization::{Missing, Outcome, late_learning};
/// use ndarray::Array4;
///
/// // Two models, two samples, three checkpoints, two classes; both models train on both.
/// let keep = KeepMatrix::from_array(ndarray::Array2::from_elem((2, 2), true))?;
/// // Sample 0 is right from the start; sample 1 only at the last checkpoint.
/// let logits = Array4::from_shape_fn((2, 2, 3, 2), |(_, i, t, c)| {
///     let right = i == 0 || t == 2;
///     if (c == 0) == right { 1.0 } else { 0.0 }
/// });
/// let late = late_learning(&keep, &Logits::new(logits)?, &[0, 0], Outcome::Correct, Missing::Error)?;
/// assert_eq!(late.score.to_vec(), vec![0.0, 1.0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn late_learning(
    keep: &KeepMatrix,
    trajectories: &Logits,
    labels: &[u32],
    outcome: Outcome,
    missing: crate::Missing,
) -> Result<LateLearning> {
    let (k, n, t) = (
        trajectories.models(),
        trajectories.samples(),
        trajectories.queries(),
    );
    check_shape("trajectories", &[k, n], &[keep.models(), keep.samples()])?;
    if t < 2 {
        return Err(invalid(
            "trajectories",
            format!("{t} checkpoint(s): late learning compares the last with the first"),
        ));
    }
    let outcomes = trajectories.signals(labels, outcome.signal())?;
    // Each model's gain, K x N; its mean and unbiased variance over the IN models are the
    // Feldman-Zhang estimator's IN side.
    let gains = Array2::from_shape_fn((k, n), |(m, i)| {
        outcomes[[m, i, t - 1]] - outcomes[[m, i, 0]]
    });
    let mut late = LateLearning {
        score: Array1::from_elem(n, f64::NAN),
        std_error: Array1::from_elem(n, f64::NAN),
        in_count: Array1::zeros(n),
    };
    for (i, sums) in accumulate(keep, gains.view()).iter().enumerate() {
        late.in_count[i] = sums.n_in;
        if sums.n_in > 0 {
            let (mean, var) = sums.mean_var(true);
            late.score[i] = mean;
            late.std_error[i] = (var / f64::from(sums.n_in)).sqrt();
        }
    }
    let untrained: Vec<usize> = (0..n).filter(|&i| late.in_count[i] == 0).collect();
    if let (Some(&sample), crate::Missing::Error) = (untrained.first(), missing) {
        return Err(MemorizationError::Undetermined {
            sample,
            in_count: 0,
            out_count: k,
            missing: untrained.len(),
        });
    }
    Ok(late)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array4;

    /// Logits that give probability `p` to class 0 of two classes.
    fn logit_pair(p: f64) -> [f32; 2] {
        [(p / (1.0 - p)).ln() as f32, 0.0]
    }

    #[test]
    fn late_learning_is_the_direct_mean_of_the_in_models_gains() {
        // 3 models x 4 samples x 3 checkpoints; random probabilities; labels all 0.
        let keep = KeepMatrix::from_array(ndarray::array![
            [true, false, true, false],
            [true, true, false, false],
            [false, true, true, false],
        ])
        .unwrap();
        let p = |m: usize, i: usize, t: usize| {
            0.05 + 0.9 * (((m * 31 + i * 7 + t * 3) % 17) as f64 / 16.0)
        };
        let logits = Array4::from_shape_fn((3, 4, 3, 2), |(m, i, t, c)| logit_pair(p(m, i, t))[c]);
        let logits = Logits::new(logits).unwrap();
        let late = late_learning(
            &keep,
            &logits,
            &[0; 4],
            Outcome::Probability,
            crate::Missing::Allow,
        )
        .unwrap();
        for i in 0..3 {
            let gains: Vec<f64> = (0..3)
                .filter(|&m| keep.get(m, i))
                .map(|m| p(m, i, 2) - p(m, i, 0))
                .collect();
            let mean = gains.iter().sum::<f64>() / gains.len() as f64;
            let var =
                gains.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / (gains.len() - 1) as f64;
            assert!(
                (late.score[i] - mean).abs() < 1e-6,
                "sample {i}: {} vs {mean}",
                late.score[i]
            );
            assert!((late.std_error[i] - (var / gains.len() as f64).sqrt()).abs() < 1e-6);
            assert_eq!(late.in_count[i], 2);
        }
        // Sample 3 has no IN model: NaN when allowed, an error naming it otherwise.
        assert!(late.score[3].is_nan());
        assert_eq!(late.in_count[3], 0);
        let err = late_learning(
            &keep,
            &logits,
            &[0; 4],
            Outcome::Probability,
            crate::Missing::Error,
        )
        .unwrap_err();
        assert!(err.to_string().contains("sample 3"), "{err}");
    }

    #[test]
    fn bad_trajectories_are_refused_by_name() {
        let keep = KeepMatrix::from_array(ndarray::array![[true, false]]).unwrap();
        let one = Logits::new(Array4::zeros((1, 2, 1, 2))).unwrap();
        let err = late_learning(
            &keep,
            &one,
            &[0, 1],
            Outcome::Correct,
            crate::Missing::Allow,
        )
        .unwrap_err();
        assert!(err.to_string().contains("checkpoint"), "{err}");
        let wrong = Logits::new(Array4::zeros((2, 2, 3, 2))).unwrap();
        let err = late_learning(
            &keep,
            &wrong,
            &[0, 1],
            Outcome::Correct,
            crate::Missing::Allow,
        )
        .unwrap_err();
        assert!(err.to_string().contains("trajectories"), "{err}");
        let three = Logits::new(Array4::zeros((1, 2, 3, 2))).unwrap();
        let err = late_learning(
            &keep,
            &three,
            &[0, 2],
            Outcome::Correct,
            crate::Missing::Allow,
        )
        .unwrap_err();
        assert!(err.to_string().contains("label"), "{err}");
    }
}

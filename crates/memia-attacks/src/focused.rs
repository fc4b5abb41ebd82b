//! The memorization-aware attack: audit only the samples most likely to leak.
//!
//! Choi et al. (2023): the samples a model memorizes are the ones it exposes, so an auditor who
//! picks candidates by memorization (or privacy score) from the shadow models, and attacks only
//! them, reaches near-perfect success with far fewer shadow models than a blind audit.

use memia_core::KeepMatrix;
use memia_memorization::Memorization;
use ndarray::{Array1, ArrayView2, ArrayView3, Axis};

use crate::error::{Result, check_shadow_shape, invalid};
use crate::{FittedTest, MembershipTest};

/// The memorization threshold of the candidates wherever no other is given: the paper's 0.8.
/// Every command and library default uses this one value, so that `memia metrics`, `memia
/// report` and `memia audit` choose the same candidates from the same memorization unless told
/// otherwise.
pub const DEFAULT_MEMORIZATION_THRESHOLD: f64 = 0.8;

/// Checks a memorization threshold: memorization is a difference of two rates, in [-1, 1], so a
/// threshold outside it (or NaN) selects every sample or none. The one check every front-end
/// uses; the error's reason reads `T: memorization thresholds are numbers in [-1, 1]`.
pub fn check_memorization_threshold(threshold: f64) -> Result<f64> {
    if (-1.0..=1.0).contains(&threshold) {
        Ok(threshold)
    } else {
        Err(invalid(
            "threshold",
            format!("{threshold}: memorization thresholds are numbers in [-1, 1]"),
        ))
    }
}

/// How to choose the candidates. In TOML: `memorization_at_least = 0.8`,
/// `top_memorized = 100` or `privacy_score_at_least = 1.0`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CandidateRule {
    /// Samples whose memorization is at least the value.
    MemorizationAtLeast(f64),
    /// The given number of most memorized samples.
    TopMemorized(usize),
    /// Samples whose privacy score is at least the value.
    PrivacyScoreAtLeast(f64),
}

impl CandidateRule {
    /// The candidates (sorted indices) under this rule. `privacy_score` is needed only by
    /// [`CandidateRule::PrivacyScoreAtLeast`]; undetermined (NaN) samples are never chosen.
    pub fn select(
        &self,
        memorization: &Memorization,
        privacy_score: Option<&Array1<f64>>,
    ) -> Result<Vec<usize>> {
        // Any memory layout of the caller's arrays (strided, reversed) is accepted.
        let privacy = privacy_score.map(|d| d.to_vec());
        self.select_scores(&memorization.score.to_vec(), privacy.as_deref())
    }

    /// [`CandidateRule::select`] on plain arrays: each sample's memorization score and, for
    /// [`CandidateRule::PrivacyScoreAtLeast`], its privacy score.
    pub fn select_scores(
        &self,
        memorization: &[f64],
        privacy_score: Option<&[f64]>,
    ) -> Result<Vec<usize>> {
        if let CandidateRule::MemorizationAtLeast(t) | CandidateRule::PrivacyScoreAtLeast(t) = *self
            && t.is_nan()
        {
            return Err(invalid("candidates", "a threshold of NaN selects nothing"));
        }
        let mut chosen = match *self {
            CandidateRule::MemorizationAtLeast(t) => {
                memia_memorization::select::above_threshold(memorization, t)
            }
            CandidateRule::TopMemorized(k) => memia_memorization::select::top_k(memorization, k),
            CandidateRule::PrivacyScoreAtLeast(t) => {
                let d = privacy_score
                    .ok_or_else(|| invalid("privacy_score", "the rule needs privacy scores"))?;
                if d.len() != memorization.len() {
                    return Err(invalid(
                        "privacy_score",
                        format!("{} scores for {} samples", d.len(), memorization.len()),
                    ));
                }
                memia_memorization::select::above_threshold(d, t)
            }
        };
        chosen.sort_unstable();
        Ok(chosen)
    }
}

/// Any attack, fitted and scored on the candidate samples only; every other sample scores NaN
/// (and so drops out of an evaluation, which then reports on the candidates alone).
#[derive(Debug, Clone, PartialEq)]
pub struct Focused<T> {
    /// The attack.
    pub attack: T,
    /// Candidate pool indices.
    pub candidates: Vec<usize>,
}

/// A fitted [`Focused`] attack.
#[derive(Debug, Clone)]
pub struct FittedFocused<F> {
    inner: F,
    candidates: Vec<usize>,
    samples: usize,
}

impl<T: MembershipTest> MembershipTest for Focused<T> {
    type Fitted = FittedFocused<T::Fitted>;

    fn fit(&self, keep: &KeepMatrix, shadow: ArrayView3<'_, f64>) -> Result<Self::Fitted> {
        check_shadow_shape(keep, &shadow)?;
        if self.candidates.is_empty() {
            return Err(invalid("candidates", "no candidate sample to attack"));
        }
        let sub_keep = keep.select_samples(&self.candidates)?;
        let sub_shadow = shadow.select(Axis(1), &self.candidates);
        Ok(FittedFocused {
            inner: self.attack.fit(&sub_keep, sub_shadow.view())?,
            candidates: self.candidates.clone(),
            samples: keep.samples(),
        })
    }
}

impl<F: FittedTest> FittedTest for FittedFocused<F> {
    fn samples(&self) -> usize {
        self.samples
    }

    fn score(&self, target: ArrayView2<'_, f64>) -> Result<Array1<f64>> {
        if target.nrows() != self.samples {
            return Err(crate::AttackError::Shape {
                what: "target observations",
                found: target.shape().to_vec(),
                expected: format!("[{}, A] (the whole pool)", self.samples),
            });
        }
        let sub = self
            .inner
            .score(target.select(Axis(0), &self.candidates).view())?;
        let mut scores = Array1::from_elem(self.samples, f64::NAN);
        for (&i, &s) in self.candidates.iter().zip(sub.iter()) {
            scores[i] = s;
        }
        Ok(scores)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LiraConfig;
    use ndarray::{Array2, Array3};

    #[test]
    fn focused_scores_equal_the_full_attack_on_candidates() {
        let keep = KeepMatrix::balanced(8, 50, 1).unwrap();
        let obs = Array3::from_shape_fn((8, 50, 1), |(k, i, _)| {
            ((k * 3 + i) % 7) as f64 + keep.get(k, i) as u8 as f64
        });
        let target = Array2::from_shape_fn((50, 1), |(i, _)| (i % 5) as f64);
        let full = LiraConfig::online()
            .fit(&keep, obs.view())
            .unwrap()
            .score(target.view())
            .unwrap();
        let focused = Focused {
            attack: LiraConfig::online(),
            candidates: vec![3, 10, 40],
        };
        let scores = focused
            .fit(&keep, obs.view())
            .unwrap()
            .score(target.view())
            .unwrap();
        for i in 0..50 {
            if [3, 10, 40].contains(&i) {
                assert_eq!(scores[i], full[i]);
            } else {
                assert!(scores[i].is_nan());
            }
        }
        let empty = Focused {
            attack: LiraConfig::online(),
            candidates: vec![],
        };
        assert!(empty.fit(&keep, obs.view()).is_err());
    }

    #[test]
    fn rules_pick_candidates() {
        let keep = KeepMatrix::balanced(6, 4, 2).unwrap();
        let outcome = Array2::from_shape_fn((6, 4), |(k, i)| match i {
            0 | 2 => keep.get(k, i) as u8 as f32,
            _ => 1.0,
        });
        let mem = memia_memorization::MemorizationConfig::default()
            .estimate(&keep, outcome.view())
            .unwrap();
        assert_eq!(
            CandidateRule::MemorizationAtLeast(0.5)
                .select(&mem, None)
                .unwrap(),
            vec![0, 2]
        );
        assert_eq!(
            CandidateRule::TopMemorized(1)
                .select(&mem, None)
                .unwrap()
                .len(),
            1
        );
        let d = Array1::from(vec![0.1, 2.0, 0.3, 5.0]);
        assert_eq!(
            CandidateRule::PrivacyScoreAtLeast(1.0)
                .select(&mem, Some(&d))
                .unwrap(),
            vec![1, 3]
        );
        assert!(
            CandidateRule::PrivacyScoreAtLeast(1.0)
                .select(&mem, None)
                .is_err()
        );
        // The caller's arrays in any layout: reversed (negative stride) and strided views.
        let mut reversed = mem.clone();
        reversed.score = Array1::from(mem.score.iter().rev().copied().collect::<Vec<f64>>());
        reversed.score.invert_axis(ndarray::Axis(0)); // back in order, negatively strided
        assert_eq!(reversed.score, mem.score);
        assert!(reversed.score.as_slice().is_none());
        assert_eq!(
            CandidateRule::MemorizationAtLeast(0.5)
                .select(&reversed, None)
                .unwrap(),
            vec![0, 2]
        );
        assert!(
            CandidateRule::MemorizationAtLeast(f64::NAN)
                .select(&mem, None)
                .is_err()
        );
        let wide = Array1::from(vec![0.1, 9.0, 2.0, 9.0, 0.3, 9.0, 5.0, 9.0]);
        let strided = wide.slice_move(ndarray::s![..;2]);
        assert!(strided.as_slice().is_none());
        assert_eq!(
            CandidateRule::PrivacyScoreAtLeast(1.0)
                .select(&mem, Some(&strided))
                .unwrap(),
            vec![1, 3]
        );
    }
}

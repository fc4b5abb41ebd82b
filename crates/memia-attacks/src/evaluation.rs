//! The one evaluation of an attack on a target: fit on the shadow models, score the target,
//! then per sample set a ROC curve with its intervals, or the reason there is none.
//!
//! Every consumer (the report, leave-one-model-out, the command line, the examples) reads
//! scores the same way. Higher is member. A score that is not finite means the shadow models
//! could not judge the sample; such a sample is *undetermined* and counts by
//! [`memia_metrics::Undetermined`]'s rule: an undetermined member is not detected (it stays in
//! the TPR's denominator), an undetermined non-member is left out of the FPR's denominator,
//! and the number of each is carried beside every figure. The rule is the cautious one: it can
//! only lower a TPR.
//!
//! ```
//! use memia_attacks::evaluation::{EvalGroup, evaluate_sets};
//! let scores = [3.0, f64::NAN, 0.5, 0.1, 2.0, f64::NAN];
//! let members = [true, true, false, false, true, false];
//! let sets = [EvalGroup { name: "first four".into(), samples: vec![0, 1, 2, 3] }];
//! let judged = evaluate_sets(&scores, Some(&members), &sets, &[0.5])?;
//! let all = judged[0].scored().unwrap();
//! assert_eq!((all.positives, all.negatives), (3, 2)); // the NaN member stays, the NaN non-member goes
//! assert_eq!(all.undetermined.total(), 2);
//! assert_eq!(judged[1].scored().unwrap().undetermined.members, 1);
//! # Ok::<(), memia_attacks::AttackError>(())
//! ```

use memia_core::KeepMatrix;
use memia_metrics::{Direction, MetricsError, RocCurve, RocSummary, TprAtFpr};
use ndarray::{Array1, ArrayView2, ArrayView3};

use crate::error::Result;
use crate::{FittedTest, MembershipTest};

/// A named set of pool samples to report on separately (a memorization bin, the candidates,
/// the canaries).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EvalGroup {
    /// Name in the report.
    pub name: String,
    /// Pool sample indices.
    pub samples: Vec<usize>,
}

/// The name of the set of every sample, first in [`evaluate_sets`]'s answer.
pub const ALL_SAMPLES: &str = "all samples";

/// Fits `test` on the shadow models (`keep`, K x N x A `shadow` signals) and scores the
/// target's N x A signals: one score per sample, higher is member, NaN where undetermined.
pub fn score_target<T: MembershipTest>(
    test: &T,
    keep: &KeepMatrix,
    shadow: ArrayView3<'_, f64>,
    target: ArrayView2<'_, f64>,
) -> Result<Array1<f64>> {
    test.fit(keep, shadow)?.score(target)
}

/// [`score_target`] for several targets attacked with the same shadow models: fitted once.
pub fn score_targets<'a, T: MembershipTest>(
    test: &T,
    keep: &KeepMatrix,
    shadow: ArrayView3<'_, f64>,
    targets: impl IntoIterator<Item = ArrayView2<'a, f64>>,
) -> Result<Vec<Array1<f64>>> {
    let fitted = test.fit(keep, shadow)?;
    targets.into_iter().map(|t| fitted.score(t)).collect()
}

/// Why a sample set has no ROC curve: a reader must see why a set has no row rather than a
/// misleading one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum NoCurve {
    /// The target's membership is not known (a model trained elsewhere, no members given).
    MembershipUnknown,
    /// The set holds no sample.
    EmptySet,
    /// Every score of the set is undetermined.
    NothingJudged {
        /// Samples in the set.
        samples: usize,
    },
    /// The judged samples are all members or all non-members.
    OneClass {
        /// Judged members.
        members: usize,
        /// Judged non-members.
        non_members: usize,
    },
}

impl std::fmt::Display for NoCurve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoCurve::MembershipUnknown => f.write_str(
                "the target's membership is not known (give its members to score the attack)",
            ),
            NoCurve::EmptySet => f.write_str("no sample in the set"),
            NoCurve::NothingJudged { samples } => {
                write!(f, "the attack judged none of its {samples} samples")
            }
            NoCurve::OneClass {
                members,
                non_members,
            } => {
                let (side, count) = if *members == 0 {
                    ("non-members", non_members)
                } else {
                    ("members", members)
                };
                write!(
                    f,
                    "all {count} judged samples are {side} of the target: no ROC curve"
                )
            }
        }
    }
}

/// One sample set judged: its curve and summary, or why it has none.
#[derive(Debug, Clone, PartialEq)]
pub struct SetEvaluation {
    /// The set's name ([`ALL_SAMPLES`] for every sample).
    pub name: String,
    /// Samples (or sample-target pairs) in the set.
    pub samples: usize,
    /// The curve with its summary at the requested FPRs, or the reason there is none.
    pub outcome: std::result::Result<ScoredSet, NoCurve>,
}

/// A set with a ROC curve.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredSet {
    /// AUROC, TPR at the requested FPRs with intervals, undetermined counts.
    pub summary: RocSummary,
    /// The curve (the report draws it).
    pub curve: RocCurve,
}

impl SetEvaluation {
    /// The summary, when the set has a curve.
    pub fn scored(&self) -> Option<&RocSummary> {
        self.outcome.as_ref().ok().map(|s| &s.summary)
    }
}

/// Judges `scores` against `members` (same length; higher is member) at `fprs` (reference
/// convention, [`TprAtFpr::LiraStrict`]) by the undetermined rule of this module.
pub fn judge(
    scores: &[f64],
    members: &[bool],
    fprs: &[f64],
) -> Result<std::result::Result<ScoredSet, NoCurve>> {
    if scores.is_empty() {
        return Ok(Err(NoCurve::EmptySet));
    }
    let curve = match RocCurve::with_undetermined(scores, members, Direction::HigherIsMember) {
        Ok(curve) => curve,
        Err(MetricsError::NothingJudged { samples }) => {
            return Ok(Err(NoCurve::NothingJudged { samples }));
        }
        Err(
            MetricsError::OneClass {
                members,
                non_members,
            }
            | MetricsError::OneClassJudged {
                members,
                non_members,
                ..
            },
        ) => {
            return Ok(Err(NoCurve::OneClass {
                members,
                non_members,
            }));
        }
        Err(e) => return Err(e.into()),
    };
    let summary = curve.summary(fprs, TprAtFpr::LiraStrict)?;
    Ok(Ok(ScoredSet { summary, curve }))
}

/// Judges one target's `scores` on every sample ([`ALL_SAMPLES`]), then on each of `sets`,
/// against its membership (`None`: unknown, so no set has a curve). Refuses a set that names a
/// sample outside the scores.
pub fn evaluate_sets(
    scores: &[f64],
    members: Option<&[bool]>,
    sets: &[EvalGroup],
    fprs: &[f64],
) -> Result<Vec<SetEvaluation>> {
    let n = scores.len();
    if let Some(m) = members
        && m.len() != n
    {
        return Err(crate::error::invalid(
            "members",
            format!("{} membership entries for {n} scores", m.len()),
        ));
    }
    for g in sets {
        if let Some(&bad) = g.samples.iter().find(|&&i| i >= n) {
            return Err(crate::error::invalid(
                "sets",
                format!("set '{}' holds sample {bad}, not below N = {n}", g.name),
            ));
        }
    }
    let everyone: Vec<usize> = (0..n).collect();
    std::iter::once((ALL_SAMPLES, everyone.as_slice()))
        .chain(sets.iter().map(|g| (g.name.as_str(), g.samples.as_slice())))
        .map(|(name, samples)| {
            let outcome = match members {
                None => Err(NoCurve::MembershipUnknown),
                Some(members) => {
                    let (s, m): (Vec<f64>, Vec<bool>) =
                        samples.iter().map(|&i| (scores[i], members[i])).unzip();
                    judge(&s, &m, fprs)?
                }
            };
            Ok(SetEvaluation {
                name: name.to_string(),
                samples: samples.len(),
                outcome,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A NaN score gives one answer: the member undetected, the non-member left out, the counts
    /// beside the figures; sets without a curve say why.
    #[test]
    fn undetermined_scores_read_one_way() {
        let scores = [0.9, f64::NAN, 0.8, 0.1, f64::NAN, 0.7];
        let members = [true, true, false, false, false, true];
        let sets = [
            EvalGroup {
                name: "members".into(),
                samples: vec![0, 5],
            },
            EvalGroup {
                name: "undetermined".into(),
                samples: vec![1, 4],
            },
            EvalGroup {
                name: "empty".into(),
                samples: vec![],
            },
        ];
        let judged = evaluate_sets(&scores, Some(&members), &sets, &[0.5]).unwrap();
        let all = judged[0].scored().unwrap();
        assert_eq!((all.positives, all.negatives), (3, 2));
        assert_eq!(
            (all.undetermined.members, all.undetermined.non_members),
            (1, 1)
        );
        // Members 0.9, 0.7 and one never detected; non-members 0.8, 0.1: pairs won
        // (0.9: 2, 0.7: 1, NaN: 0) of 6.
        assert_eq!(all.auroc, 0.5);
        assert_eq!(
            judged[1].outcome,
            Err(NoCurve::OneClass {
                members: 2,
                non_members: 0
            })
        );
        assert_eq!(
            judged[2].outcome,
            Err(NoCurve::NothingJudged { samples: 2 })
        );
        assert_eq!(judged[3].outcome, Err(NoCurve::EmptySet));
        let unknown = evaluate_sets(&scores, None, &sets, &[0.5]).unwrap();
        assert!(
            unknown
                .iter()
                .all(|s| s.outcome == Err(NoCurve::MembershipUnknown))
        );
        assert!(evaluate_sets(&scores, Some(&members[..2]), &[], &[0.5]).is_err());
        let outside = [EvalGroup {
            name: "far".into(),
            samples: vec![6],
        }];
        assert!(evaluate_sets(&scores, Some(&members), &outside, &[0.5]).is_err());
    }
}

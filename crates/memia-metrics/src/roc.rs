//! ROC curves with exact tie handling, AUROC, TPR at low FPR, balanced accuracy, advantage.

use crate::error::{MetricsError, Result, check_finite, check_same_len, check_unit_interval};
use crate::interval::clopper_pearson_bounds;
use crate::sort::{key, radix_sort, unkey};

/// Which way an attack's scores point. memia never guesses: every metric takes it explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// A larger score means "more likely a member" (LiRA's likelihood ratio, `phi`).
    HigherIsMember,
    /// A smaller score means "more likely a member" (a loss, the LiRA reference's negated
    /// likelihood ratio).
    LowerIsMember,
}

impl Direction {
    /// The score oriented so that larger means member.
    #[inline]
    pub(crate) fn orient(self, score: f64) -> f64 {
        match self {
            Direction::HigherIsMember => score,
            Direction::LowerIsMember => -score,
        }
    }
}

/// How to read "TPR at FPR t" off a ROC curve. The two differ at low FPR, where published
/// numbers are most often compared, so memia names both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TprAtFpr {
    /// Linear interpolation of the ROC polyline at `t` (`numpy.interp(t, fpr, tpr)` on the full
    /// curve); where the curve is vertical at `t`, the upper end.
    Interpolated,
    /// The LiRA reference's `tpr[np.where(fpr < t)[0][-1]]` on scikit-learn's default curve
    /// (`roc_curve` with `drop_intermediate=True`): the TPR of the largest kept threshold whose
    /// FPR is strictly below `t`. An operating point that an attacker can actually choose. Ties
    /// that put several thresholds on one straight segment make it differ from the full curve's
    /// reading: the intermediate points are not on the reference's curve.
    LiraStrict,
}

/// Scores of member and non-member samples, oriented so that larger means member, as sorted
/// order-preserving keys. Shared by the curve, AUROC and the bootstrap.
pub(crate) struct SortedClasses {
    /// Member keys, ascending.
    pub pos: Vec<u64>,
    /// Non-member keys, ascending.
    pub neg: Vec<u64>,
}

impl SortedClasses {
    pub(crate) fn new(scores: &[f64], is_member: &[bool], direction: Direction) -> Result<Self> {
        check_same_len("scores", scores.len(), "is_member", is_member.len())?;
        if scores.is_empty() {
            return Err(MetricsError::Empty { what: "scores" });
        }
        check_finite("scores", scores)?;
        let members = is_member.iter().filter(|&&m| m).count();
        let non_members = scores.len() - members;
        if members == 0 || non_members == 0 {
            return Err(MetricsError::OneClass {
                members,
                non_members,
            });
        }
        let mut pos = Vec::with_capacity(members);
        let mut neg = Vec::with_capacity(non_members);
        for (&s, &m) in scores.iter().zip(is_member) {
            let k = key(direction.orient(s));
            if m { pos.push(k) } else { neg.push(k) }
        }
        rayon::join(|| radix_sort(&mut pos), || radix_sort(&mut neg));
        Ok(SortedClasses { pos, neg })
    }

    /// Walks the distinct thresholds from the highest down. For each, calls
    /// `visit(true_positives, false_positives, key)` with the weighted counts of members and
    /// non-members whose key is at least the threshold. `pos_weight(i)` / `neg_weight(i)` give
    /// the multiplicity of the i-th sorted key (1 for a plain curve, resample counts for the
    /// bootstrap); keys of weight 0 still produce no point of their own.
    pub(crate) fn sweep(
        &self,
        pos_weight: impl Fn(usize) -> u64,
        neg_weight: impl Fn(usize) -> u64,
        mut visit: impl FnMut(u64, u64, u64),
    ) {
        let (mut ip, mut ineg) = (self.pos.len(), self.neg.len());
        let (mut tp, mut fp) = (0u64, 0u64);
        while ip > 0 || ineg > 0 {
            let top = match (ip, ineg) {
                (0, _) => self.neg[ineg - 1],
                (_, 0) => self.pos[ip - 1],
                _ => self.pos[ip - 1].max(self.neg[ineg - 1]),
            };
            let (tp0, fp0) = (tp, fp);
            while ip > 0 && self.pos[ip - 1] == top {
                ip -= 1;
                tp += pos_weight(ip);
            }
            while ineg > 0 && self.neg[ineg - 1] == top {
                ineg -= 1;
                fp += neg_weight(ineg);
            }
            if tp != tp0 || fp != fp0 {
                visit(tp, fp, top);
            }
        }
    }

    /// AUROC with the given weights: the trapezoid area under the ROC curve, computed exactly
    /// in integers (it equals the Mann-Whitney U statistic with ties counted one half).
    pub(crate) fn weighted_auc(
        &self,
        pos_weight: impl Fn(usize) -> u64,
        neg_weight: impl Fn(usize) -> u64,
    ) -> f64 {
        let (mut area2, mut last_tp, mut last_fp) = (0u128, 0u64, 0u64);
        self.sweep(pos_weight, neg_weight, |tp, fp, _| {
            area2 += u128::from(fp - last_fp) * u128::from(tp + last_tp);
            last_tp = tp;
            last_fp = fp;
        });
        area2 as f64 / (2.0 * last_tp as f64 * last_fp as f64)
    }
}

/// Area under the ROC curve of `scores` against the ground truth `is_member`.
///
/// Exact for ties (a tied member/non-member pair counts one half, as `roc_auc_score`); runs
/// in linear time after a radix sort, on two threads.
///
/// ```
/// use memia_metrics::{auroc, Direction};
/// let auc = auroc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true], Direction::HigherIsMember)?;
/// assert_eq!(auc, 0.75);
/// # Ok::<(), memia_metrics::MetricsError>(())
/// ```
pub fn auroc(scores: &[f64], is_member: &[bool], direction: Direction) -> Result<f64> {
    Ok(SortedClasses::new(scores, is_member, direction)?.weighted_auc(|_| 1, |_| 1))
}

/// A ROC curve: one point per distinct score threshold, from (0, 0) to (1, 1).
///
/// Point `i` predicts "member" for every sample whose score is at or beyond `thresholds[i]`
/// (`>=` for [`Direction::HigherIsMember`], `<=` for [`Direction::LowerIsMember`]). The first
/// point has an infinite threshold and predicts no member, as scikit-learn's `roc_curve`.
/// Unlike scikit-learn's default, no collinear points are dropped
/// (see [`RocCurve::drop_intermediate`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RocCurve {
    fpr: Vec<f64>,
    tpr: Vec<f64>,
    thresholds: Vec<f64>,
    true_positives: Vec<u64>,
    false_positives: Vec<u64>,
    direction: Direction,
    undetermined: Undetermined,
}

/// Samples whose score is not finite: the attack could not judge them (LiRA with no IN or no
/// OUT shadow model, say). memia reads them one way everywhere, the cautious way, which can
/// only lower a TPR: an undetermined member is never detected (it stays among the positives),
/// an undetermined non-member is left out (it lowers no FPR it was never tested against).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Undetermined {
    /// Members with no finite score: counted as not detected.
    pub members: u64,
    /// Non-members with no finite score: left out of the FPR's denominator.
    pub non_members: u64,
}

impl Undetermined {
    /// Both counts together.
    pub fn total(&self) -> u64 {
        self.members + self.non_members
    }
}

impl RocCurve {
    /// Builds the curve. Fails on empty or mismatched inputs, non-finite scores, or labels
    /// of one class only.
    pub fn new(scores: &[f64], is_member: &[bool], direction: Direction) -> Result<Self> {
        let sorted = SortedClasses::new(scores, is_member, direction)?;
        Ok(Self::from_sorted(&sorted, |_| 1, |_| 1, direction))
    }

    /// The curve of scores some of which are undetermined (NaN or infinite), read by memia's one
    /// rule ([`Undetermined`]): an undetermined member is never detected, an undetermined
    /// non-member is left out. The curve ends with a last point at FPR 1 where the undetermined
    /// members join (so AUROC ranks them below every non-member). Fails when no member or no
    /// non-member has a finite score ([`MetricsError::OneClassJudged`]: a TPR read where no
    /// member was judged, or an FPR where no non-member was, would mean nothing).
    ///
    /// ```
    /// use memia_metrics::{Direction, RocCurve};
    /// let scores = [0.9, f64::NAN, 0.2, 0.1, f64::NAN];
    /// let members = [true, true, false, false, false];
    /// let roc = RocCurve::with_undetermined(&scores, &members, Direction::HigherIsMember)?;
    /// assert_eq!((roc.positives(), roc.negatives()), (2, 2)); // the NaN non-member is left out
    /// assert_eq!(roc.undetermined().members, 1);
    /// assert_eq!(roc.auc(), 0.5); // one member above both non-members, one never detected
    /// # Ok::<(), memia_metrics::MetricsError>(())
    /// ```
    pub fn with_undetermined(
        scores: &[f64],
        is_member: &[bool],
        direction: Direction,
    ) -> Result<Self> {
        check_same_len("scores", scores.len(), "is_member", is_member.len())?;
        let mut undetermined = Undetermined::default();
        let (judged, judged_members): (Vec<f64>, Vec<bool>) = scores
            .iter()
            .zip(is_member)
            .filter(|&(s, &m)| {
                let finite = s.is_finite();
                if !finite {
                    if m {
                        undetermined.members += 1;
                    } else {
                        undetermined.non_members += 1;
                    }
                }
                finite
            })
            .map(|(&s, &m)| (s, m))
            .unzip();
        if judged.is_empty() && !scores.is_empty() {
            return Err(MetricsError::NothingJudged {
                samples: scores.len(),
            });
        }
        let mut roc = match Self::new(&judged, &judged_members, direction) {
            Err(MetricsError::OneClass {
                members,
                non_members,
            }) if undetermined.total() > 0 => {
                return Err(MetricsError::OneClassJudged {
                    members,
                    non_members,
                    undetermined_members: undetermined.members,
                    undetermined_non_members: undetermined.non_members,
                });
            }
            other => other?,
        };
        if undetermined.members > 0 {
            let (tp, fp) = (roc.positives(), roc.negatives());
            let mut tps = std::mem::take(&mut roc.true_positives);
            let mut fps = std::mem::take(&mut roc.false_positives);
            let mut thresholds = std::mem::take(&mut roc.thresholds);
            tps.push(tp + undetermined.members);
            fps.push(fp);
            thresholds.push(direction.orient(f64::NEG_INFINITY));
            roc = Self::from_counts(tps, fps, thresholds, direction);
        }
        roc.undetermined = undetermined;
        Ok(roc)
    }

    pub(crate) fn from_sorted(
        sorted: &SortedClasses,
        pos_weight: impl Fn(usize) -> u64,
        neg_weight: impl Fn(usize) -> u64,
        direction: Direction,
    ) -> Self {
        let mut tps = vec![0u64];
        let mut fps = vec![0u64];
        let mut thresholds = vec![direction.orient(f64::INFINITY)];
        sorted.sweep(pos_weight, neg_weight, |tp, fp, k| {
            tps.push(tp);
            fps.push(fp);
            thresholds.push(direction.orient(unkey(k)));
        });
        Self::from_counts(tps, fps, thresholds, direction)
    }

    fn from_counts(
        tps: Vec<u64>,
        fps: Vec<u64>,
        thresholds: Vec<f64>,
        direction: Direction,
    ) -> Self {
        let p = *tps.last().expect("non-empty") as f64;
        let n = *fps.last().expect("non-empty") as f64;
        RocCurve {
            tpr: tps.iter().map(|&t| t as f64 / p).collect(),
            fpr: fps.iter().map(|&f| f as f64 / n).collect(),
            thresholds,
            true_positives: tps,
            false_positives: fps,
            direction,
            undetermined: Undetermined::default(),
        }
    }

    /// False-positive rates, non-decreasing from 0 to 1.
    pub fn fpr(&self) -> &[f64] {
        &self.fpr
    }

    /// True-positive rates, non-decreasing from 0 to 1.
    pub fn tpr(&self) -> &[f64] {
        &self.tpr
    }

    /// The score thresholds, in the scores' own units (the first is +-infinity).
    pub fn thresholds(&self) -> &[f64] {
        &self.thresholds
    }

    /// Number of members at or beyond each threshold.
    pub fn true_positives(&self) -> &[u64] {
        &self.true_positives
    }

    /// Number of non-members at or beyond each threshold.
    pub fn false_positives(&self) -> &[u64] {
        &self.false_positives
    }

    /// Number of members (positives).
    pub fn positives(&self) -> u64 {
        *self.true_positives.last().expect("non-empty")
    }

    /// Number of non-members (negatives).
    pub fn negatives(&self) -> u64 {
        *self.false_positives.last().expect("non-empty")
    }

    /// The direction the scores were read in.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.fpr.len()
    }

    /// Always false: a curve has at least its two end points.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Area under the curve (trapezoids, exact in integer arithmetic).
    pub fn auc(&self) -> f64 {
        let mut area2 = 0u128;
        for w in 0..self.len() - 1 {
            let dfp = self.false_positives[w + 1] - self.false_positives[w];
            area2 +=
                u128::from(dfp) * u128::from(self.true_positives[w + 1] + self.true_positives[w]);
        }
        area2 as f64 / (2.0 * self.positives() as f64 * self.negatives() as f64)
    }

    /// The TPR at false-positive rate `fpr`, read in the given convention.
    ///
    /// `fpr` must be in [0, 1] for [`TprAtFpr::Interpolated`] and in (0, 1] for
    /// [`TprAtFpr::LiraStrict`] (no threshold has an FPR below 0).
    pub fn tpr_at_fpr(&self, fpr: f64, convention: TprAtFpr) -> Result<f64> {
        match convention {
            TprAtFpr::Interpolated => {
                check_unit_interval("fpr", fpr, false)?;
                // Last point with FPR <= t; interpolate towards the next one.
                let i = self.fpr.partition_point(|&f| f <= fpr) - 1;
                if i + 1 == self.len() || self.fpr[i] == fpr {
                    return Ok(self.tpr[i]);
                }
                let (f0, f1, t0, t1) = (self.fpr[i], self.fpr[i + 1], self.tpr[i], self.tpr[i + 1]);
                Ok(t0 + (t1 - t0) * (fpr - f0) / (f1 - f0))
            }
            TprAtFpr::LiraStrict => {
                if !(fpr > 0.0 && fpr <= 1.0) {
                    return Err(MetricsError::InvalidArgument {
                        name: "fpr",
                        reason: format!("{fpr} is not in (0, 1]"),
                    });
                }
                let mut i = self.fpr.partition_point(|&f| f < fpr) - 1;
                while self.is_intermediate(i) {
                    i -= 1; // point 0 is never intermediate
                }
                Ok(self.tpr[i])
            }
        }
    }

    /// The best balanced accuracy over thresholds, as the LiRA reference computes it:
    /// `max(1 - (fpr + (1 - tpr)) / 2)`.
    pub fn balanced_accuracy(&self) -> f64 {
        self.fpr
            .iter()
            .zip(&self.tpr)
            .map(|(f, t)| 1.0 - (f + (1.0 - t)) / 2.0)
            .fold(f64::NEG_INFINITY, f64::max)
    }

    /// The membership advantage `max(TPR - FPR)` over thresholds (Yeom et al. 2018).
    pub fn advantage(&self) -> f64 {
        self.fpr
            .iter()
            .zip(&self.tpr)
            .map(|(f, t)| t - f)
            .fold(f64::NEG_INFINITY, f64::max)
    }

    /// Whether point `m` lies inside a straight run of the curve (horizontal, vertical or
    /// diagonal, as ties make), so that scikit-learn's `drop_intermediate=True` drops it.
    /// scikit-learn decides before prepending its (0, 0) point, so the first threshold's point
    /// and the last are always kept, and so is (0, 0).
    fn is_intermediate(&self, m: usize) -> bool {
        if m < 2 || m + 1 >= self.len() {
            return false;
        }
        let second_diff = |v: &[u64]| v[m + 1] as i128 - 2 * v[m] as i128 + v[m - 1] as i128;
        second_diff(&self.true_positives) == 0 && second_diff(&self.false_positives) == 0
    }

    /// The samples left undetermined ([`RocCurve::with_undetermined`]; none for
    /// [`RocCurve::new`]).
    pub fn undetermined(&self) -> Undetermined {
        self.undetermined
    }

    /// The curve without the points that lie inside a straight run, as scikit-learn's
    /// `roc_curve(..., drop_intermediate=True)` (its default) returns it. AUC, balanced
    /// accuracy and advantage are unchanged by this; [`TprAtFpr::LiraStrict`] reads this curve.
    pub fn drop_intermediate(&self) -> RocCurve {
        let keep: Vec<usize> = (0..self.len())
            .filter(|&m| !self.is_intermediate(m))
            .collect();
        let pick_u = |v: &[u64]| keep.iter().map(|&m| v[m]).collect();
        let thresholds = keep.iter().map(|&m| self.thresholds[m]).collect();
        let mut kept = Self::from_counts(
            pick_u(&self.true_positives),
            pick_u(&self.false_positives),
            thresholds,
            self.direction,
        );
        kept.undetermined = self.undetermined;
        kept
    }

    /// AUROC, balanced accuracy, advantage and the TPR at each of `fprs`.
    ///
    /// Each TPR carries its 95% Clopper-Pearson interval (from the members behind it) and says
    /// whether the FPR is measurable at all: with `negatives` non-members, an FPR below
    /// `1 / negatives` allows no false positive, so the TPR there is read at zero false
    /// positives and says nothing about that rate.
    pub fn summary(&self, fprs: &[f64], convention: TprAtFpr) -> Result<RocSummary> {
        let (p, n) = (self.positives(), self.negatives());
        let tpr_at_fpr = fprs
            .iter()
            .map(|&fpr| {
                let tpr = self.tpr_at_fpr(fpr, convention)?;
                // tpr is a count over p members (interpolation aside): its interval is theirs.
                let (tpr_lower, tpr_upper) = clopper_pearson_bounds(tpr * p as f64, p as f64, 0.95);
                let false_positives_allowed = (fpr * n as f64 + 1e-9).floor() as u64;
                Ok(TprPoint {
                    fpr,
                    tpr,
                    tpr_lower,
                    tpr_upper,
                    false_positives_allowed,
                    measurable: false_positives_allowed >= 1,
                })
            })
            .collect::<Result<_>>()?;
        Ok(RocSummary {
            auroc: self.auc(),
            balanced_accuracy: self.balanced_accuracy(),
            advantage: self.advantage(),
            tpr_at_fpr,
            positives: p,
            negatives: n,
            undetermined: self.undetermined,
        })
    }
}

/// The TPR at one FPR, with its uncertainty. As JSON, a point that is not
/// [`measurable`](TprPoint::measurable) has `null` for `tpr`, `tpr_lower` and `tpr_upper`: a
/// number there would rest on zero false positives, and a reader of the file (`memia metrics`,
/// a report's `summary.json`) would take it for a result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TprPoint {
    /// The false-positive rate.
    pub fpr: f64,
    /// The true-positive rate read there.
    pub tpr: f64,
    /// Lower end of the TPR's 95% Clopper-Pearson interval over the members.
    pub tpr_lower: f64,
    /// Upper end of that interval.
    pub tpr_upper: f64,
    /// Non-members the FPR allows to be called members: `floor(fpr * negatives)`.
    pub false_positives_allowed: u64,
    /// Whether the FPR can be measured with these non-members (at least one false positive
    /// allowed). When not, print no TPR for it: it rests on zero false positives.
    pub measurable: bool,
}

impl serde::Serialize for TprPoint {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        // Where not measurable the TPR and its interval are written as null, never as numbers.
        let shown = |v: f64| self.measurable.then_some(v);
        let mut s = serializer.serialize_struct("TprPoint", 6)?;
        s.serialize_field("fpr", &self.fpr)?;
        s.serialize_field("tpr", &shown(self.tpr))?;
        s.serialize_field("tpr_lower", &shown(self.tpr_lower))?;
        s.serialize_field("tpr_upper", &shown(self.tpr_upper))?;
        s.serialize_field("false_positives_allowed", &self.false_positives_allowed)?;
        s.serialize_field("measurable", &self.measurable)?;
        s.end()
    }
}

impl RocSummary {
    /// The point at `fpr` (one of those the summary was made for).
    pub fn at(&self, fpr: f64) -> Option<&TprPoint> {
        self.tpr_at_fpr
            .iter()
            .find(|p| (p.fpr - fpr).abs() <= fpr * 1e-9)
    }
}

/// The headline numbers of an attack, for tables and reports (serialises to JSON with
/// `tpr_at_fpr` as a list of `{"fpr", "tpr", "tpr_lower", "tpr_upper",
/// "false_positives_allowed", "measurable"}` objects).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RocSummary {
    /// Area under the ROC curve.
    pub auroc: f64,
    /// Best balanced accuracy (LiRA reference definition).
    pub balanced_accuracy: f64,
    /// `max(TPR - FPR)`.
    pub advantage: f64,
    /// The TPR at each FPR asked for, with its uncertainty.
    pub tpr_at_fpr: Vec<TprPoint>,
    /// Number of members (undetermined members included).
    pub positives: u64,
    /// Number of non-members.
    pub negatives: u64,
    /// Samples with no finite score: the members among them are in `positives` (never
    /// detected), the non-members are not in `negatives` ([`Undetermined`]).
    pub undetermined: Undetermined,
}

/// The low false-positive rates at which membership attacks are usually reported.
pub const STANDARD_FPRS: [f64; 5] = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1];

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    fn brute_force_auc(scores: &[f64], members: &[bool]) -> f64 {
        let (mut num, mut den) = (0.0, 0.0);
        for (i, &si) in scores.iter().enumerate() {
            for (j, &sj) in scores.iter().enumerate() {
                if members[i] && !members[j] {
                    den += 1.0;
                    num += if si > sj {
                        1.0
                    } else if si == sj {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
        }
        num / den
    }

    #[test]
    fn tiny_curve_by_hand() {
        // Scores 0.9(m) 0.8(n) 0.8(m) 0.3(n): thresholds inf, 0.9, 0.8, 0.3.
        let roc = RocCurve::new(
            &[0.9, 0.8, 0.8, 0.3],
            &[true, false, true, false],
            Direction::HigherIsMember,
        )
        .unwrap();
        assert_eq!(roc.thresholds(), &[f64::INFINITY, 0.9, 0.8, 0.3]);
        assert_eq!(roc.tpr(), &[0.0, 0.5, 1.0, 1.0]);
        assert_eq!(roc.fpr(), &[0.0, 0.0, 0.5, 1.0]);
        assert_eq!(roc.auc(), 0.875);
        assert_eq!(roc.advantage(), 0.5);
        assert_eq!(roc.balanced_accuracy(), 0.75);
        assert_eq!(roc.tpr_at_fpr(0.25, TprAtFpr::Interpolated).unwrap(), 0.75);
        assert_eq!(roc.tpr_at_fpr(0.25, TprAtFpr::LiraStrict).unwrap(), 0.5);
        assert_eq!(roc.tpr_at_fpr(0.5, TprAtFpr::Interpolated).unwrap(), 1.0);
        assert_eq!(
            roc.tpr_at_fpr(0.0, TprAtFpr::Interpolated).unwrap(),
            0.5,
            "top of the vertical run"
        );
    }

    #[test]
    fn direction_flips_the_curve() {
        let scores = [3.0, 1.0, 2.0, 0.5, 0.5];
        let members = [false, true, false, true, false];
        let low = RocCurve::new(&scores, &members, Direction::LowerIsMember).unwrap();
        let negated: Vec<f64> = scores.iter().map(|s| -s).collect();
        let high = RocCurve::new(&negated, &members, Direction::HigherIsMember).unwrap();
        assert_eq!(low.fpr(), high.fpr());
        assert_eq!(low.tpr(), high.tpr());
        assert_eq!(low.thresholds()[0], f64::NEG_INFINITY);
        assert_eq!(low.thresholds()[1], 0.5);
        assert_eq!(
            low.auc(),
            auroc(&scores, &members, Direction::LowerIsMember).unwrap()
        );
        assert_eq!(
            low.auc() + auroc(&scores, &members, Direction::HigherIsMember).unwrap(),
            1.0
        );
    }

    #[test]
    fn auc_matches_pairwise_count_with_ties() {
        let mut rng = memia_core::rng::seeded_rng(99);
        let mut next = || rng.random::<u64>() >> 33;
        for n in [2usize, 3, 10, 57, 300] {
            let scores: Vec<f64> = (0..n).map(|_| (next() % 7) as f64 * 0.5 - 1.0).collect();
            let mut members: Vec<bool> = (0..n).map(|_| next() % 3 == 0).collect();
            members[0] = true;
            members[n - 1] = false;
            let expected = brute_force_auc(&scores, &members);
            let roc = RocCurve::new(&scores, &members, Direction::HigherIsMember).unwrap();
            assert!((roc.auc() - expected).abs() < 1e-12, "n={n}");
            assert!(
                (auroc(&scores, &members, Direction::HigherIsMember).unwrap() - expected).abs()
                    < 1e-12
            );
            let dropped = roc.drop_intermediate();
            assert!((dropped.auc() - roc.auc()).abs() < 1e-12);
            assert_eq!(dropped.advantage(), roc.advantage());
        }
    }

    #[test]
    fn summaries_carry_intervals_and_say_what_cannot_be_measured() {
        // 100 members scored 1..100, 250 non-members scored below all but the top 5.
        let mut scores: Vec<f64> = (0..100).map(|i| 1000.0 + i as f64).collect();
        scores.extend((0..250).map(|i| if i < 5 { 2000.0 + i as f64 } else { i as f64 }));
        let members: Vec<bool> = (0..350).map(|i| i < 100).collect();
        let roc = RocCurve::new(&scores, &members, Direction::HigherIsMember).unwrap();
        let s = roc
            .summary(&[1e-3, 1e-2, 0.1], TprAtFpr::LiraStrict)
            .unwrap();
        // 0.1% of 250 non-members is 0.25: no false positive allowed, not measurable.
        let low = s.at(1e-3).unwrap();
        assert_eq!((low.false_positives_allowed, low.measurable), (0, false));
        let mid = s.at(1e-2).unwrap();
        assert_eq!((mid.false_positives_allowed, mid.measurable), (2, true));
        let high = s.at(0.1).unwrap();
        assert_eq!(high.tpr, 1.0);
        // The interval is Clopper-Pearson's over the 100 members: 100/100 -> [0.9638, 1].
        assert!(
            (high.tpr_lower - 0.9637833073548235).abs() < 1e-9,
            "{high:?}"
        ); // statsmodels proportion_confint(100, 100, method="beta")
        assert_eq!(high.tpr_upper, 1.0);
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"measurable\":false"), "{json}");
    }

    #[test]
    fn negative_zero_ties_with_zero() {
        let auc = auroc(&[0.0, -0.0], &[true, false], Direction::HigherIsMember).unwrap();
        assert_eq!(auc, 0.5);
    }

    #[test]
    fn bad_input_is_rejected() {
        let d = Direction::HigherIsMember;
        assert_eq!(
            auroc(&[0.1, f64::NAN], &[true, false], d)
                .unwrap_err()
                .to_string(),
            "scores[1] is NaN: every value must be finite"
        );
        assert!(matches!(
            auroc(&[0.1, f64::INFINITY], &[true, false], d),
            Err(MetricsError::NonFinite { index: 1, .. })
        ));
        assert_eq!(
            auroc(&[0.1, 0.2], &[true], d).unwrap_err().to_string(),
            "scores has 2 entries but is_member has 1"
        );
        assert_eq!(
            auroc(&[], &[], d).unwrap_err(),
            MetricsError::Empty { what: "scores" }
        );
        assert_eq!(
            auroc(&[0.1, 0.2], &[true, true], d)
                .unwrap_err()
                .to_string(),
            "labels hold 2 members and 0 non-members: both classes are needed"
        );
        let roc = RocCurve::new(&[0.1, 0.2], &[true, false], d).unwrap();
        assert!(roc.tpr_at_fpr(0.0, TprAtFpr::LiraStrict).is_err());
        assert!(roc.tpr_at_fpr(1.5, TprAtFpr::Interpolated).is_err());
        assert!(roc.tpr_at_fpr(f64::NAN, TprAtFpr::Interpolated).is_err());
    }

    /// A TPR at an FPR below one false positive is written as null, with its interval; a
    /// measurable one keeps its numbers (issue 23, item 10).
    #[test]
    fn unmeasurable_tprs_serialise_as_null() {
        // 4 non-members: FPR 0.1 allows no false positive, 0.5 allows two.
        let scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2];
        let members = [true, true, false, true, false, true, false, false];
        let roc = RocCurve::new(&scores, &members, Direction::HigherIsMember).unwrap();
        let summary = roc.summary(&[0.1, 0.5], TprAtFpr::LiraStrict).unwrap();
        assert!(!summary.tpr_at_fpr[0].measurable && summary.tpr_at_fpr[0].tpr > 0.0);
        let json = serde_json::to_value(&summary).unwrap();
        let low = &json["tpr_at_fpr"][0];
        assert_eq!(low["measurable"], false);
        for key in ["tpr", "tpr_lower", "tpr_upper"] {
            assert!(low[key].is_null(), "{key}: {low}");
        }
        assert_eq!(low["fpr"], 0.1);
        assert_eq!(low["false_positives_allowed"], 0);
        let high = &json["tpr_at_fpr"][1];
        assert_eq!(high["measurable"], true);
        assert_eq!(high["tpr"], summary.tpr_at_fpr[1].tpr);
        assert!(high["tpr_lower"].is_f64() && high["tpr_upper"].is_f64());
    }

    /// The undetermined rule equals its definition: an undetermined member ranked below every
    /// judged sample (never detected before FPR 1), an undetermined non-member removed. Checked
    /// on random scores with NaN and infinities in both classes, for AUROC (against the brute
    /// force), every TPR at FPR below 1, the counts, and for both directions.
    #[test]
    fn undetermined_members_are_never_detected_and_non_members_left_out() {
        let mut rng = memia_core::rng::seeded_rng(7);
        for case in 0..200 {
            let n = 4 + case % 40;
            let mut scores: Vec<f64> = (0..n)
                .map(|_| (rng.random::<f64>() * 8.0).round())
                .collect();
            let members: Vec<bool> = (0..n).map(|i| i % 2 == 0 || rng.random::<bool>()).collect();
            let mut members = members;
            members[1] = false;
            members[3] = false;
            for i in 0..n {
                if i > 3 && rng.random::<f64>() < 0.2 {
                    scores[i] = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY][i % 3];
                }
            }
            for direction in [Direction::HigherIsMember, Direction::LowerIsMember] {
                let roc = RocCurve::with_undetermined(&scores, &members, direction).unwrap();
                // The definition: undetermined members just beyond the non-member end, the
                // undetermined non-members gone.
                let below = match direction {
                    Direction::HigherIsMember => -1e9,
                    Direction::LowerIsMember => 1e9,
                };
                let (s, m): (Vec<f64>, Vec<bool>) = scores
                    .iter()
                    .zip(&members)
                    .filter(|&(s, &m)| s.is_finite() || m)
                    .map(|(&s, &m)| (if s.is_finite() { s } else { below }, m))
                    .unzip();
                let reference = RocCurve::new(&s, &m, direction).unwrap();
                let undetermined = roc.undetermined();
                let bad = |want: bool| {
                    scores
                        .iter()
                        .zip(&members)
                        .filter(|&(s, &m)| !s.is_finite() && m == want)
                        .count() as u64
                };
                assert_eq!(undetermined.members, bad(true));
                assert_eq!(undetermined.non_members, bad(false));
                assert_eq!(roc.positives(), reference.positives());
                assert_eq!(roc.negatives(), reference.negatives());
                assert!((roc.auc() - reference.auc()).abs() < 1e-12, "case {case}");
                let oriented: Vec<f64> = s
                    .iter()
                    .map(|&v| {
                        if direction == Direction::HigherIsMember {
                            v
                        } else {
                            -v
                        }
                    })
                    .collect();
                assert!((roc.auc() - brute_force_auc(&oriented, &m)).abs() < 1e-12);
                for fpr in [0.01, 0.1, 0.25, 0.5, 0.99] {
                    for convention in [TprAtFpr::LiraStrict, TprAtFpr::Interpolated] {
                        assert_eq!(
                            roc.tpr_at_fpr(fpr, convention).unwrap(),
                            reference.tpr_at_fpr(fpr, convention).unwrap(),
                            "case {case}, fpr {fpr}, {convention:?}"
                        );
                    }
                }
                let summary = roc.summary(&[0.1], TprAtFpr::LiraStrict).unwrap();
                assert_eq!(summary.undetermined, undetermined);
                assert_eq!(roc.drop_intermediate().undetermined(), undetermined);
            }
        }
        // Nothing judged, or one judged class: no curve.
        let nan = [f64::NAN, f64::NAN];
        assert!(matches!(
            RocCurve::with_undetermined(&nan, &[true, false], Direction::HigherIsMember),
            Err(MetricsError::NothingJudged { samples: 2 })
        ));
        assert!(matches!(
            RocCurve::with_undetermined(
                &[1.0, f64::NAN],
                &[false, true],
                Direction::HigherIsMember
            ),
            Err(MetricsError::OneClassJudged {
                members: 0,
                non_members: 1,
                undetermined_members: 1,
                undetermined_non_members: 0
            })
        ));
        // Finite scores: the plain curve, nothing undetermined.
        let plain = RocCurve::with_undetermined(
            &[0.9, 0.8, 0.3],
            &[true, false, false],
            Direction::HigherIsMember,
        )
        .unwrap();
        assert_eq!(
            plain,
            RocCurve::new(
                &[0.9, 0.8, 0.3],
                &[true, false, false],
                Direction::HigherIsMember
            )
            .unwrap()
        );
    }
}

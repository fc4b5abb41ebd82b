//! Bootstrap confidence intervals for AUROC and TPR at a fixed FPR.

use memia_core::rng::{MemiaRng, stream_rng};
use rand::RngExt;
use rayon::prelude::*;

use crate::error::{MetricsError, Result, check_unit_interval};
use crate::interval::Interval;
use crate::roc::{Direction, RocCurve, SortedClasses, TprAtFpr};

/// The statistic to bootstrap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Statistic {
    /// Area under the ROC curve.
    Auroc,
    /// TPR at the given FPR, read in the given convention.
    TprAtFpr(f64, TprAtFpr),
}

/// The most resamples a bootstrap draws: their values are kept to read the quantiles (800 MB
/// at this count), and the interval's quantiles settle long before it.
pub const MAX_RESAMPLES: usize = 100_000_000;

/// Settings of a bootstrap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bootstrap {
    /// Number of resamples (at least 2; 1,000 to 10,000 is usual).
    pub resamples: usize,
    /// Coverage of the interval, in (0, 1).
    pub confidence: f64,
    /// Master seed; resample `b` draws from its own stream, so results do not depend on the
    /// number of threads.
    pub seed: u64,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Bootstrap {
            resamples: 1000,
            confidence: 0.95,
            seed: 0,
        }
    }
}

impl Bootstrap {
    /// A percentile-bootstrap interval for `statistic` of the attack `scores`.
    ///
    /// Resampling is stratified: members and non-members are each drawn with replacement to
    /// their original counts (as pROC does), so no resample lacks a class. The interval is the
    /// `(1 - confidence)/2` and `(1 + confidence)/2` quantiles of the resampled statistic
    /// (numpy's default linear interpolation); the estimate is the statistic on the data.
    /// Each resample reuses the one sort of the data, so it costs linear time.
    pub fn interval(
        &self,
        scores: &[f64],
        is_member: &[bool],
        direction: Direction,
        statistic: Statistic,
    ) -> Result<Interval> {
        if self.resamples < 2 {
            return Err(MetricsError::InvalidArgument {
                name: "resamples",
                reason: format!("{} is fewer than 2", self.resamples),
            });
        }
        if self.resamples > MAX_RESAMPLES {
            return Err(MetricsError::InvalidArgument {
                name: "resamples",
                reason: format!(
                    "{} is more than {MAX_RESAMPLES} (their values alone would take {} GB)",
                    self.resamples,
                    self.resamples as u128 * 8 / 1_000_000_000
                ),
            });
        }
        check_unit_interval("confidence", self.confidence, true)?;
        if let Statistic::TprAtFpr(fpr, _) = statistic {
            check_unit_interval("fpr", fpr, false)?;
        }
        let sorted = SortedClasses::new(scores, is_member, direction)?;
        let evaluate =
            |pos_w: &dyn Fn(usize) -> u64, neg_w: &dyn Fn(usize) -> u64| -> Result<f64> {
                match statistic {
                    Statistic::Auroc => Ok(sorted.weighted_auc(pos_w, neg_w)),
                    Statistic::TprAtFpr(fpr, convention) => {
                        RocCurve::from_sorted(&sorted, pos_w, neg_w, direction)
                            .tpr_at_fpr(fpr, convention)
                    }
                }
            };
        let estimate = evaluate(&|_| 1, &|_| 1)?;
        let mut values: Vec<f64> = (0..self.resamples)
            .into_par_iter()
            .map(|b| {
                let mut rng = stream_rng(self.seed, b as u64);
                let pos_counts = resample_counts(sorted.pos.len(), &mut rng);
                let neg_counts = resample_counts(sorted.neg.len(), &mut rng);
                evaluate(&|i| u64::from(pos_counts[i]), &|i| u64::from(neg_counts[i]))
            })
            .collect::<Result<_>>()?;
        values.sort_by(f64::total_cmp);
        let alpha = 1.0 - self.confidence;
        Ok(Interval {
            estimate,
            lower: quantile_sorted(&values, alpha / 2.0),
            upper: quantile_sorted(&values, 1.0 - alpha / 2.0),
            confidence: self.confidence,
        })
    }
}

/// How often each of `n` items is drawn in `n` draws with replacement.
fn resample_counts(n: usize, rng: &mut MemiaRng) -> Vec<u32> {
    let mut counts = vec![0u32; n];
    for _ in 0..n {
        counts[rng.random_range(0..n)] += 1;
    }
    counts
}

/// numpy's default (`method="linear"`) quantile of sorted values.
pub(crate) fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    #[test]
    fn resamples_beyond_memory_are_refused_before_drawing() {
        let (scores, members) = data(50);
        let many = Bootstrap {
            resamples: usize::MAX,
            ..Default::default()
        };
        let err = many
            .interval(
                &scores,
                &members,
                Direction::HigherIsMember,
                Statistic::Auroc,
            )
            .unwrap_err();
        assert!(err.to_string().contains("more than 100000000"), "{err}");
    }

    fn data(n: usize) -> (Vec<f64>, Vec<bool>) {
        let mut rng = memia_core::rng::seeded_rng(7);
        let mut next = || rng.random::<f64>();
        let members: Vec<bool> = (0..n).map(|i| i % 2 == 0).collect();
        let scores = members
            .iter()
            .map(|&m| next() + if m { 0.3 } else { 0.0 })
            .collect();
        (scores, members)
    }

    #[test]
    fn interval_brackets_the_estimate_and_is_reproducible() {
        let (scores, members) = data(2000);
        let boot = Bootstrap {
            resamples: 400,
            confidence: 0.9,
            seed: 3,
        };
        let a = boot
            .interval(
                &scores,
                &members,
                Direction::HigherIsMember,
                Statistic::Auroc,
            )
            .unwrap();
        let b = boot
            .interval(
                &scores,
                &members,
                Direction::HigherIsMember,
                Statistic::Auroc,
            )
            .unwrap();
        assert_eq!(a, b);
        assert!(a.lower < a.estimate && a.estimate < a.upper);
        // Standard error of AUROC here is about 0.01 (Hanley-McNeil): a 90% interval spans ~0.03.
        assert!(
            a.upper - a.lower > 0.01 && a.upper - a.lower < 0.08,
            "{a:?}"
        );
        let t = boot
            .interval(
                &scores,
                &members,
                Direction::HigherIsMember,
                Statistic::TprAtFpr(0.1, TprAtFpr::Interpolated),
            )
            .unwrap();
        assert!(t.lower <= t.estimate && t.estimate <= t.upper);
    }

    #[test]
    fn more_data_narrows_the_interval() {
        let boot = Bootstrap {
            resamples: 300,
            confidence: 0.95,
            seed: 1,
        };
        let width = |n| {
            let (s, m) = data(n);
            let i = boot
                .interval(&s, &m, Direction::HigherIsMember, Statistic::Auroc)
                .unwrap();
            i.upper - i.lower
        };
        assert!(width(8000) < width(500) / 2.0);
    }

    #[test]
    fn rejects_bad_settings() {
        let (s, m) = data(10);
        let bad = Bootstrap {
            resamples: 1,
            ..Default::default()
        };
        assert!(
            bad.interval(&s, &m, Direction::HigherIsMember, Statistic::Auroc)
                .is_err()
        );
        let bad = Bootstrap {
            confidence: 1.0,
            ..Default::default()
        };
        assert!(
            bad.interval(&s, &m, Direction::HigherIsMember, Statistic::Auroc)
                .is_err()
        );
    }

    #[test]
    fn quantiles_match_numpy_linear() {
        let v = [1.0, 2.0, 4.0, 8.0];
        assert_eq!(quantile_sorted(&v, 0.0), 1.0);
        assert_eq!(quantile_sorted(&v, 1.0), 8.0);
        assert_eq!(quantile_sorted(&v, 0.5), 3.0); // np.quantile([1,2,4,8], 0.5)
        assert!((quantile_sorted(&v, 0.9) - 6.8).abs() < 1e-12);
    }
}

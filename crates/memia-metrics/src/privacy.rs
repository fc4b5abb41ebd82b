//! The differential-privacy lower bound an attack's error rates imply, at one threshold or
//! the best over a ROC curve, from the Clopper-Pearson intervals of `interval.rs`.

use crate::error::{Result, check_unit_interval};
use crate::interval::{Interval, clopper_pearson};
use crate::roc::RocCurve;

/// A lower bound on the epsilon of (epsilon, delta)-differential privacy implied by an
/// attack's observed error rates (Kairouz et al. 2015; Jagielski et al. 2020).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpsilonBound {
    /// The bound; 0 when the attack proves nothing.
    pub epsilon: f64,
    /// Clopper-Pearson interval of the true-positive rate.
    pub tpr: Interval,
    /// Clopper-Pearson interval of the false-positive rate.
    pub fpr: Interval,
    /// The delta assumed.
    pub delta: f64,
}

/// Epsilon lower bound from `true_positives` of `positives` members and `false_positives` of
/// `negatives` non-members at one threshold.
///
/// Any (epsilon, delta)-DP mechanism satisfies `TPR <= e^eps FPR + delta` and
/// `1 - FPR <= e^eps (1 - TPR) + delta`. With the pessimistic ends of two-sided
/// Clopper-Pearson intervals at `confidence` (a lower TPR, a higher FPR), the bound
/// `eps >= max(ln((TPR_lo - delta) / FPR_hi), ln((1 - FPR_hi - delta) / (1 - TPR_lo)), 0)`
/// holds with probability at least `confidence`.
pub fn epsilon_lower_bound(
    true_positives: u64,
    positives: u64,
    false_positives: u64,
    negatives: u64,
    confidence: f64,
    delta: f64,
) -> Result<EpsilonBound> {
    check_unit_interval("delta", delta, false)?;
    let tpr = clopper_pearson(true_positives, positives, confidence)?;
    let fpr = clopper_pearson(false_positives, negatives, confidence)?;
    // Clopper-Pearson ends are strictly inside (0, 1) where they enter a denominator.
    let epsilon = epsilon_from_rates(tpr.lower, fpr.upper, delta);
    Ok(EpsilonBound {
        epsilon,
        tpr,
        fpr,
        delta,
    })
}

impl RocCurve {
    /// The largest [`epsilon_lower_bound`] over the curve's thresholds.
    ///
    /// Choosing the best of many thresholds on the same data is optimistic: for an audit that
    /// must hold at `confidence`, pick the threshold on separate data and call
    /// [`epsilon_lower_bound`] once.
    pub fn epsilon_lower_bound(&self, confidence: f64, delta: f64) -> Result<EpsilonBound> {
        let (p, n) = (self.positives(), self.negatives());
        // The bound from the point estimates is never below the Clopper-Pearson bound (the
        // interval ends are more pessimistic), so visit thresholds by decreasing point bound
        // and stop once no remaining threshold can beat the best bound found.
        let optimistic: Vec<f64> = self
            .tpr()
            .iter()
            .zip(self.fpr())
            .map(|(&t, &f)| epsilon_from_rates(t, f, delta))
            .collect();
        let mut order: Vec<usize> = (0..optimistic.len()).collect();
        order.sort_by(|&a, &b| optimistic[b].total_cmp(&optimistic[a]));
        let mut best: Option<EpsilonBound> = None;
        for i in order {
            if best.is_some_and(|b| optimistic[i] <= b.epsilon) {
                break;
            }
            let bound = epsilon_lower_bound(
                self.true_positives()[i],
                p,
                self.false_positives()[i],
                n,
                confidence,
                delta,
            )?;
            if best.is_none_or(|b| bound.epsilon > b.epsilon) {
                best = Some(bound);
            }
        }
        Ok(best.expect("a curve has points"))
    }
}

/// `max(ln((tpr - delta) / fpr), ln((1 - fpr - delta) / (1 - tpr)), 0)`, infinite where a
/// denominator is 0 and its numerator positive.
fn epsilon_from_rates(tpr: f64, fpr: f64, delta: f64) -> f64 {
    let ratio_bound = |num: f64, den: f64| {
        if num <= 0.0 {
            0.0
        } else if den <= 0.0 {
            f64::INFINITY
        } else {
            (num / den).ln()
        }
    };
    ratio_bound(tpr - delta, fpr)
        .max(ratio_bound(1.0 - fpr - delta, 1.0 - tpr))
        .max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    #[test]
    fn bad_arguments() {
        assert!(epsilon_lower_bound(1, 2, 1, 2, 0.95, -0.1).is_err());
        assert!(epsilon_lower_bound(1, 0, 1, 2, 0.95, 0.0).is_err());
    }

    #[test]
    fn epsilon_bound_behaves() {
        // A perfect attack on 1000 + 1000 samples: FPR_hi = 1 - 0.025^(1/1000) ~ 3.7e-3.
        let perfect = epsilon_lower_bound(1000, 1000, 0, 1000, 0.95, 0.0).unwrap();
        let expected = ((0.025f64).powf(1.0 / 1000.0) / (1.0 - 0.025f64.powf(1.0 / 1000.0))).ln();
        assert!(
            (perfect.epsilon - expected).abs() < 1e-9,
            "{} vs {expected}",
            perfect.epsilon
        );
        // A useless attack proves nothing.
        let coin = epsilon_lower_bound(500, 1000, 500, 1000, 0.95, 0.0).unwrap();
        assert_eq!(coin.epsilon, 0.0);
        // More data, same rates: a tighter (larger) bound.
        let small = epsilon_lower_bound(50, 100, 5, 100, 0.95, 0.0).unwrap();
        let large = epsilon_lower_bound(5000, 10000, 500, 10000, 0.95, 0.0).unwrap();
        assert!(large.epsilon > small.epsilon && large.epsilon < (0.5f64 / 0.05).ln());
    }

    #[test]
    fn curve_scan_finds_the_best_threshold() {
        let mut rng = memia_core::rng::seeded_rng(3);
        let mut next = || rng.random::<f64>();
        let members: Vec<bool> = (0..3000).map(|i| i % 3 == 0).collect();
        let scores: Vec<f64> = members
            .iter()
            .map(|&m| next() + if m { next() * 0.8 } else { 0.0 })
            .collect();
        let roc = RocCurve::new(&scores, &members, crate::Direction::HigherIsMember).unwrap();
        let scanned = roc.epsilon_lower_bound(0.95, 1e-5).unwrap();
        let brute = roc
            .true_positives()
            .iter()
            .zip(roc.false_positives())
            .map(|(&tp, &fp)| {
                epsilon_lower_bound(tp, roc.positives(), fp, roc.negatives(), 0.95, 1e-5)
                    .unwrap()
                    .epsilon
            })
            .fold(0.0, f64::max);
        assert!(brute > 0.5, "the attack is informative: {brute}");
        assert_eq!(scanned.epsilon, brute);
    }
}

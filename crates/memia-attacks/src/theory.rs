//! The theory's tools: how exposed a sample is, and how many shadow models an audit needs.
//!
//! Choi et al. (2023) show that a sample with label memorization `mem` is exposed: the attack
//! "member iff the model is right" already has advantage `mem`, and when
//! `P[correct | IN] = 1`, `P[correct | OUT] = 1 - mem`, the squared Hellinger distance between
//! the IN and OUT outcome distributions is `1 - sqrt(1 - mem)` (between `mem / 2` and `mem`).
//! Telling IN from OUT with error `delta` then takes `Theta(log(1 / delta) / mem)` shadow
//! models: few for memorized samples, hundreds for typical ones.

use memia_core::KeepMatrix;
use memia_memorization::Memorization;
use ndarray::{Array1, ArrayView3};

use crate::MembershipTest;
use crate::error::{Result, invalid};
use crate::lira::{Center, FittedLira, LiraConfig};

/// Squared Hellinger distance between two Bernoulli distributions:
/// `1 - (sqrt(p q) + sqrt((1 - p)(1 - q)))`.
pub fn hellinger_sq_bernoulli(p: f64, q: f64) -> f64 {
    (1.0 - ((p * q).sqrt() + ((1.0 - p) * (1.0 - q)).sqrt())).clamp(0.0, 1.0)
}

/// Squared Hellinger distance between `N(mu1, s1^2)` and `N(mu2, s2^2)`:
/// `1 - sqrt(2 s1 s2 / (s1^2 + s2^2)) exp(-(mu1 - mu2)^2 / (4 (s1^2 + s2^2)))`.
/// Two point masses (both spreads 0) are at distance 0 if equal, else 1.
pub fn hellinger_sq_gaussian(mu1: f64, s1: f64, mu2: f64, s2: f64) -> f64 {
    let v = s1 * s1 + s2 * s2;
    if v == 0.0 {
        return if mu1 == mu2 { 0.0 } else { 1.0 };
    }
    let d = mu1 - mu2;
    (1.0 - (2.0 * s1 * s2 / v).sqrt() * (-d * d / (4.0 * v)).exp()).clamp(0.0, 1.0)
}

/// `1 - sqrt(1 - mem)`: the squared Hellinger distance for a sample that every IN model gets
/// right and OUT models get right with probability `1 - mem` (the paper's idealisation).
pub fn hellinger_sq_from_memorization(mem: f64) -> f64 {
    1.0 - (1.0 - mem.clamp(0.0, 1.0)).sqrt()
}

/// Shadow models needed to tell a sample's IN and OUT distributions apart with error at most
/// `delta`, when their squared Hellinger distance is `h2`.
///
/// With n observations of each side, the Bayes error of deciding between them is at most
/// `BC^n / 2`, where `BC = 1 - h2` is the Bhattacharyya coefficient; so
/// `n = ceil(ln(1 / (2 delta)) / -ln(1 - h2))` per side suffices, and twice that many shadow
/// models are needed when each trains on half the pool. `n ~ ln(1 / delta) / h2` for small
/// `h2`. `None` when `h2 = 0` (no number of models separates identical distributions).
pub fn models_needed(h2: f64, delta: f64) -> Result<Option<u64>> {
    if !(delta > 0.0 && delta < 0.5) {
        return Err(invalid("delta", format!("{delta} is not in (0, 0.5)")));
    }
    if !(0.0..=1.0).contains(&h2) {
        return Err(invalid(
            "h2",
            format!("{h2} is not a squared Hellinger distance in [0, 1]"),
        ));
    }
    if h2 == 0.0 {
        return Ok(None);
    }
    let rate = -(1.0 - h2).ln(); // +inf when h2 = 1
    let per_side = ((1.0 / (2.0 * delta)).ln() / rate).ceil().max(1.0);
    Ok(Some(2 * per_side as u64))
}

/// A per-sample shadow-model budget.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetPlan {
    /// Squared Hellinger distance between each sample's IN and OUT distributions (NaN where
    /// unknown).
    pub hellinger_sq: Array1<f64>,
    /// Shadow models needed per sample (`None`: never, or unknown).
    pub models_needed: Vec<Option<u64>>,
    /// The error the plan is for.
    pub delta: f64,
}

impl BudgetPlan {
    fn from_distances(hellinger_sq: Array1<f64>, delta: f64) -> Result<Self> {
        let models_needed = hellinger_sq
            .iter()
            .map(|&h| {
                if h.is_nan() {
                    Ok(None)
                } else {
                    models_needed(h, delta)
                }
            })
            .collect::<Result<_>>()?;
        Ok(BudgetPlan {
            hellinger_sq,
            models_needed,
            delta,
        })
    }

    /// From memorization estimates: the Bernoulli distance between each sample's IN and OUT
    /// correctness rates (the estimator's `in_mean` and `out_mean`).
    pub fn from_memorization(memorization: &Memorization, delta: f64) -> Result<Self> {
        let h2 = Array1::from_shape_fn(memorization.len(), |i| {
            if memorization.is_defined(i) {
                hellinger_sq_bernoulli(memorization.in_mean[i], memorization.out_mean[i])
            } else {
                f64::NAN
            }
        });
        Self::from_distances(h2, delta)
    }

    /// From fitted IN and OUT Gaussians (online LiRA): the Gaussian distance, averaged over
    /// queries.
    pub fn from_fit(fit: &FittedLira, delta: f64) -> Result<Self> {
        let (n, a) = fit.mu_in.dim();
        let h2 = Array1::from_shape_fn(n, |i| {
            (0..a)
                .map(|q| {
                    hellinger_sq_gaussian(
                        fit.mu_in[[i, q]],
                        fit.sd_in[[i, q]],
                        fit.mu_out[[i, q]],
                        fit.sd_out[[i, q]],
                    )
                })
                .sum::<f64>()
                / a as f64
        });
        Self::from_distances(h2, delta)
    }

    /// The samples an audit with `budget` shadow models can expect to attack.
    pub fn attackable(&self, budget: u64) -> Vec<usize> {
        (0..self.models_needed.len())
            .filter(|&i| self.models_needed[i].is_some_and(|m| m <= budget))
            .collect()
    }
}

/// The privacy score `d(i) = |mu_in - mu_out| / (sd_in + sd_out)` of every sample, from the
/// mean and standard deviation of its IN and OUT shadow observations (averaged over queries).
/// NaN for samples without IN or OUT models; infinite where both spreads are 0 and the means
/// differ.
pub fn privacy_score(keep: &KeepMatrix, shadow: ArrayView3<'_, f64>) -> Result<Array1<f64>> {
    let fit = LiraConfig::online()
        .with_center(Center::Mean)
        .fit(keep, shadow)?;
    let (n, a) = fit.mu_in.dim();
    Ok(Array1::from_shape_fn(n, |i| {
        if !fit.is_defined(i) {
            return f64::NAN;
        }
        (0..a)
            .map(|q| {
                let gap = (fit.mu_in[[i, q]] - fit.mu_out[[i, q]]).abs();
                let spread = fit.sd_in[[i, q]] + fit.sd_out[[i, q]];
                if gap == 0.0 { 0.0 } else { gap / spread }
            })
            .sum::<f64>()
            / a as f64
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array3, array};

    #[test]
    fn hellinger_closed_forms() {
        assert_eq!(hellinger_sq_bernoulli(0.3, 0.3), 0.0);
        assert_eq!(hellinger_sq_bernoulli(1.0, 0.0), 1.0);
        for mem in [0.01, 0.3, 0.9, 1.0] {
            let h = hellinger_sq_from_memorization(mem);
            assert!((h - hellinger_sq_bernoulli(1.0, 1.0 - mem)).abs() < 1e-15);
            assert!(
                h >= mem / 2.0 - 1e-15 && h <= mem + 1e-15,
                "mem/2 <= H^2 <= mem"
            );
        }
        assert!(hellinger_sq_gaussian(0.0, 1.0, 0.0, 1.0).abs() < 1e-15);
        // Equal variances: 1 - exp(-d^2 / 8).
        assert!(
            (hellinger_sq_gaussian(2.0, 1.0, 0.0, 1.0) - (1.0 - (-0.5f64).exp())).abs() < 1e-15
        );
        assert_eq!(hellinger_sq_gaussian(1.0, 0.0, 0.0, 0.0), 1.0);
    }

    #[test]
    fn budget_scales_like_log_delta_over_distance() {
        // ln(1 / (2 * 0.001)) = 6.21; h2 = 0.01: -ln(0.99) = 0.01005 -> 619 per side.
        assert_eq!(models_needed(0.01, 0.001).unwrap(), Some(2 * 619));
        assert_eq!(models_needed(1.0, 0.001).unwrap(), Some(2));
        assert_eq!(models_needed(0.0, 0.001).unwrap(), None);
        let memorized = models_needed(hellinger_sq_from_memorization(0.9), 0.01)
            .unwrap()
            .unwrap();
        let typical = models_needed(hellinger_sq_from_memorization(0.02), 0.01)
            .unwrap()
            .unwrap();
        assert!(memorized <= 8 && typical >= 200, "{memorized} vs {typical}");
        assert!(models_needed(0.5, 0.5).is_err() && models_needed(1.5, 0.1).is_err());
    }

    #[test]
    fn privacy_score_by_hand() {
        let keep = KeepMatrix::from_array(array![
            [true, true],
            [true, false],
            [false, true],
            [false, false]
        ])
        .unwrap();
        // Sample 0: IN {1, 3} (mean 2, sd 1), OUT {0, 0} (sd 0): d = 2 / 1.
        let shadow =
            Array3::from_shape_vec((4, 2, 1), vec![1.0, 5.0, 3.0, 5.0, 0.0, 5.0, 0.0, 5.0])
                .unwrap();
        let d = privacy_score(&keep, shadow.view()).unwrap();
        assert_eq!(d[0], 2.0);
        assert_eq!(d[1], 0.0, "identical IN and OUT observations");
    }

    #[test]
    fn plans_and_attackable_sets() {
        let keep = KeepMatrix::balanced(20, 3, 0).unwrap();
        let correct = ndarray::Array2::from_shape_fn((20, 3), |(k, i)| match i {
            0 => keep.get(k, 0) as u8 as f32, // fully memorized
            1 => 1.0,                         // never memorized
            _ => ((k % 4) != 0 || keep.get(k, 2)) as u8 as f32,
        });
        let mem = memia_memorization::MemorizationConfig::default()
            .estimate(&keep, correct.view())
            .unwrap();
        let plan = BudgetPlan::from_memorization(&mem, 0.01).unwrap();
        assert_eq!(plan.models_needed[0], Some(2));
        assert_eq!(plan.models_needed[1], None);
        assert!(plan.models_needed[2].unwrap() > 10);
        assert_eq!(plan.attackable(4), vec![0]);
    }
}

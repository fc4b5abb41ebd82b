//! RMIA, the robust membership inference attack (Zarifzadeh, Liu, Lee, Shokri 2024).
//!
//! For a target model `theta`, a sample `x` and a population sample `z`, the pairwise
//! likelihood ratio is `LR(x, z) = [p(x | theta) / p(x)] / [p(z | theta) / p(z)]`, where
//! `p(. | theta)` is the target's true-class probability and `p(.)` its average over reference
//! (shadow) models. The score of `x` is the fraction of population samples `z` with
//! `LR(x, z) >= gamma`.

use memia_core::KeepMatrix;
use ndarray::{Array1, ArrayView2, ArrayView3};
use rayon::prelude::*;

use crate::error::{AttackError, Result, check_shadow, check_target, invalid};
use crate::{FittedTest, MembershipTest};

/// RMIA's settings. Observations are true-class probabilities (`memia_core::Signal::Probability`)
/// in [0, 1]; several queries are averaged into one probability per model and sample.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RmiaConfig {
    /// Threshold on the pairwise likelihood ratio, > 0 (the paper uses 1 to 2).
    pub gamma: f64,
    /// `None`: online, `p(x)` is the mean over all shadow models (IN and OUT).
    /// `Some(a)`: offline, from the OUT models only, with the paper's linear approximation
    /// `p(x) = ((1 + a) p_OUT(x) + (1 - a)) / 2`, `a` in [0, 1].
    pub offline_a: Option<f64>,
    /// Indices of the population samples `z`; `None` uses every pool sample. A sample is never
    /// compared with itself.
    pub population: Option<Vec<usize>>,
}

impl Default for RmiaConfig {
    fn default() -> Self {
        RmiaConfig {
            gamma: 1.0,
            offline_a: None,
            population: None,
        }
    }
}

impl RmiaConfig {
    /// Online RMIA with threshold `gamma`.
    pub fn online(gamma: f64) -> Self {
        RmiaConfig {
            gamma,
            ..Default::default()
        }
    }

    /// Offline RMIA with threshold `gamma` and approximation parameter `a`.
    pub fn offline(gamma: f64, a: f64) -> Self {
        RmiaConfig {
            gamma,
            offline_a: Some(a),
            population: None,
        }
    }

    /// Compares against the population samples `indices` only.
    pub fn with_population(mut self, indices: Vec<usize>) -> Self {
        self.population = Some(indices);
        self
    }
}

/// RMIA fitted to the shadow models: each sample's reference probability `p(x)`.
#[derive(Debug, Clone)]
pub struct FittedRmia {
    gamma: f64,
    queries: usize,
    /// `p(x)` per sample; NaN where offline RMIA has no OUT model.
    pub reference_probability: Array1<f64>,
    population: Vec<usize>,
}

impl MembershipTest for RmiaConfig {
    type Fitted = FittedRmia;

    fn fit(&self, keep: &KeepMatrix, shadow: ArrayView3<'_, f64>) -> Result<FittedRmia> {
        if !(self.gamma > 0.0 && self.gamma.is_finite()) {
            return Err(invalid(
                "gamma",
                format!("{} is not a positive number", self.gamma),
            ));
        }
        if let Some(a) = self.offline_a
            && !(0.0..=1.0).contains(&a)
        {
            return Err(invalid("offline_a", format!("{a} is not in [0, 1]")));
        }
        check_shadow(keep, &shadow)?;
        check_probabilities(shadow.iter().copied(), "shadow observations")?;
        let (k, n, a) = shadow.dim();
        let population = match &self.population {
            Some(p) => {
                if let Some(&bad) = p.iter().find(|&&i| i >= n) {
                    return Err(invalid(
                        "population",
                        format!("index {bad} is not below N = {n}"),
                    ));
                }
                p.clone()
            }
            None => (0..n).collect(),
        };
        let reference: Vec<f64> = (0..n)
            .into_par_iter()
            .map(|i| {
                let (mut sum, mut count) = (0.0, 0usize);
                for m in 0..k {
                    if self.offline_a.is_none() || !keep.get(m, i) {
                        sum += (0..a).map(|q| shadow[[m, i, q]]).sum::<f64>() / a as f64;
                        count += 1;
                    }
                }
                if count == 0 {
                    return f64::NAN;
                }
                let p = sum / count as f64;
                match self.offline_a {
                    None => p,
                    Some(a) => ((1.0 + a) * p + (1.0 - a)) / 2.0,
                }
            })
            .collect();
        Ok(FittedRmia {
            gamma: self.gamma,
            queries: a,
            reference_probability: Array1::from(reference),
            population,
        })
    }
}

fn check_probabilities(values: impl Iterator<Item = f64>, what: &'static str) -> Result<()> {
    for (i, v) in values.enumerate() {
        if !(0.0..=1.0).contains(&v) {
            return Err(AttackError::InvalidArgument {
                name: what,
                reason: format!(
                    "value {v} at flat index {i} is not a probability in [0, 1] (RMIA needs Signal::Probability)"
                ),
            });
        }
    }
    Ok(())
}

impl FittedTest for FittedRmia {
    fn samples(&self) -> usize {
        self.reference_probability.len()
    }

    fn score(&self, target: ArrayView2<'_, f64>) -> Result<Array1<f64>> {
        check_target(self.samples(), self.queries, &target)?;
        check_probabilities(target.iter().copied(), "target observations")?;
        let ratio = |i: usize| {
            let p_theta = target.row(i).sum() / self.queries as f64;
            p_theta / self.reference_probability[i].max(f64::MIN_POSITIVE)
        };
        let ratios: Vec<f64> = (0..self.samples()).map(ratio).collect();
        let mut population: Vec<f64> = self
            .population
            .iter()
            .map(|&z| ratios[z])
            .filter(|r| !r.is_nan())
            .collect();
        population.sort_by(f64::total_cmp);
        let mut in_population = vec![false; self.samples()];
        for &z in &self.population {
            in_population[z] = !ratios[z].is_nan();
        }
        let scores = (0..self.samples())
            .into_par_iter()
            .map(|i| {
                let rx = ratios[i];
                if rx.is_nan() {
                    return f64::NAN;
                }
                // LR(x, z) >= gamma  <=>  ratio(z) <= ratio(x) / gamma.
                let bound = rx / self.gamma;
                let mut count = population.partition_point(|&rz| rz <= bound);
                let mut total = population.len();
                if in_population[i] {
                    total -= 1;
                    if rx <= bound {
                        count -= 1; // x itself was counted
                    }
                }
                if total == 0 {
                    f64::NAN
                } else {
                    count as f64 / total as f64
                }
            })
            .collect::<Vec<f64>>();
        Ok(Array1::from(scores))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, Array3, array};

    /// The definition, pair by pair.
    fn brute_force(
        config: &RmiaConfig,
        keep: &KeepMatrix,
        shadow: &Array3<f64>,
        target: &Array2<f64>,
    ) -> Vec<f64> {
        let (k, n, a) = shadow.dim();
        let p_ref = |i: usize| {
            let models: Vec<usize> = (0..k)
                .filter(|&m| config.offline_a.is_none() || !keep.get(m, i))
                .collect();
            let p = models
                .iter()
                .map(|&m| (0..a).map(|q| shadow[[m, i, q]]).sum::<f64>() / a as f64)
                .sum::<f64>()
                / models.len() as f64;
            match config.offline_a {
                None => p,
                Some(a) => ((1.0 + a) * p + (1.0 - a)) / 2.0,
            }
        };
        let p_t = |i: usize| target.row(i).sum() / a as f64;
        (0..n)
            .map(|x| {
                let others: Vec<usize> = (0..n).filter(|&z| z != x).collect();
                let hits = others
                    .iter()
                    .filter(|&&z| (p_t(x) / p_ref(x)) / (p_t(z) / p_ref(z)) >= config.gamma)
                    .count();
                hits as f64 / others.len() as f64
            })
            .collect()
    }

    #[test]
    fn matches_the_pairwise_definition() {
        let keep = KeepMatrix::balanced(6, 30, 2).unwrap();
        let shadow = Array3::from_shape_fn((6, 30, 2), |(m, i, q)| {
            let base = 0.2 + 0.6 * ((i * 7 + q) % 11) as f64 / 10.0;
            if keep.get(m, i) {
                (base + 0.15).min(1.0)
            } else {
                base * (0.9 + 0.02 * m as f64)
            }
        });
        let target = Array2::from_shape_fn((30, 2), |(i, q)| {
            0.1 + 0.8 * ((i * 5 + q * 3) % 13) as f64 / 12.0
        });
        for config in [
            RmiaConfig::online(1.0),
            RmiaConfig::online(1.5),
            RmiaConfig::offline(2.0, 0.3),
        ] {
            let ours = config
                .fit(&keep, shadow.view())
                .unwrap()
                .score(target.view())
                .unwrap();
            let expected = brute_force(&config, &keep, &shadow, &target);
            for (i, (a, b)) in ours.iter().zip(&expected).enumerate() {
                assert!((a - b).abs() < 1e-12, "{config:?} sample {i}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn rejects_bad_settings_and_non_probabilities() {
        let keep = KeepMatrix::balanced(2, 3, 0).unwrap();
        let shadow = Array3::from_elem((2, 3, 1), 0.5);
        assert!(RmiaConfig::online(0.0).fit(&keep, shadow.view()).is_err());
        assert!(
            RmiaConfig::offline(1.0, 1.5)
                .fit(&keep, shadow.view())
                .is_err()
        );
        assert!(
            RmiaConfig::online(1.0)
                .with_population(vec![3])
                .fit(&keep, shadow.view())
                .is_err()
        );
        let err = RmiaConfig::online(1.0)
            .fit(&keep, Array3::from_elem((2, 3, 1), 2.0).view())
            .unwrap_err();
        assert!(err.to_string().contains("Signal::Probability"), "{err}");
        let fitted = RmiaConfig::online(1.0).fit(&keep, shadow.view()).unwrap();
        assert!(fitted.score(array![[0.5], [1.5], [0.5]].view()).is_err());
    }
}

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
    /// `None`: online, `p(x)` is the mean of the IN models' mean and the OUT models' mean, as
    /// the RMIA paper's code weighs them (with a balanced keep matrix a member target leaves
    /// one IN model fewer than a non-member, so a plain mean over all models would itself
    /// depend on membership); the one side's mean where the other has no model.
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
                // Twice listed, a sample would be compared with itself once it is left out.
                let mut listed = vec![false; n];
                if let Some(&twice) = p.iter().find(|&&i| std::mem::replace(&mut listed[i], true)) {
                    return Err(invalid(
                        "population",
                        format!("index {twice} is listed more than once"),
                    ));
                }
                p.clone()
            }
            None => (0..n).collect(),
        };
        let reference: Vec<f64> = (0..n)
            .into_par_iter()
            .map(|i| {
                // [OUT, IN]: sum of the models' query-averaged probabilities, and their count.
                let mut sides = [(0.0, 0usize); 2];
                for m in 0..k {
                    let side = &mut sides[usize::from(keep.get(m, i))];
                    side.0 += (0..a).map(|q| shadow[[m, i, q]]).sum::<f64>() / a as f64;
                    side.1 += 1;
                }
                let mean = |(sum, count): (f64, usize)| (count > 0).then(|| sum / count as f64);
                let (p_out, p_in) = (mean(sides[0]), mean(sides[1]));
                match self.offline_a {
                    None => match (p_in, p_out) {
                        (Some(p_in), Some(p_out)) => (p_in + p_out) / 2.0,
                        (Some(p), None) | (None, Some(p)) => p,
                        (None, None) => f64::NAN,
                    },
                    Some(a) => p_out.map_or(f64::NAN, |p| ((1.0 + a) * p + (1.0 - a)) / 2.0),
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
        // The mean over the models whose membership of sample i is `member`.
        let side = |i: usize, member: bool| {
            let models: Vec<usize> = (0..k).filter(|&m| keep.get(m, i) == member).collect();
            models
                .iter()
                .map(|&m| (0..a).map(|q| shadow[[m, i, q]]).sum::<f64>() / a as f64)
                .sum::<f64>()
                / models.len() as f64
        };
        let p_ref = |i: usize| match config.offline_a {
            None => (side(i, true) + side(i, false)) / 2.0,
            Some(a) => ((1.0 + a) * side(i, false) + (1.0 - a)) / 2.0,
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

    /// Online, IN and OUT weigh equally: a sample's reference probability (and so its score)
    /// depends on its IN and OUT signals, not on how many of its shadow models are IN.
    #[test]
    fn online_reference_weighs_in_and_out_equally() {
        // Six models; sample 0 is IN for 1 of them, sample 1 for 5, sample 2 for 3. Every IN
        // model gives 0.9, every OUT model 0.3.
        let rows = [
            [true, false, false],
            [false, true, true],
            [false, true, true],
        ];
        let keep = Array2::from_shape_fn((6, 3), |(m, i)| match m {
            0..3 => rows[m][i],
            _ => i > 0 && !(i == 2 && m > 3),
        });
        let keep = KeepMatrix::from_array(keep).unwrap();
        assert_eq!(
            (keep.in_count(0), keep.in_count(1), keep.in_count(2)),
            (1, 5, 3)
        );
        let shadow = Array3::from_shape_fn(
            (6, 3, 1),
            |(m, i, _)| if keep.get(m, i) { 0.9 } else { 0.3 },
        );
        let fitted = RmiaConfig::online(1.0).fit(&keep, shadow.view()).unwrap();
        for i in 0..3 {
            assert!((fitted.reference_probability[i] - 0.6).abs() < 1e-15);
        }
        // Equal target outputs then give equal scores, whatever the IN counts.
        let scores = fitted.score(array![[0.8], [0.8], [0.8]].view()).unwrap();
        assert_eq!(scores[0], scores[1]);
        assert_eq!(scores[1], scores[2]);
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
        // A population that lists a sample twice would compare it with itself.
        let err = RmiaConfig::online(1.0)
            .with_population(vec![0, 2, 0])
            .fit(&keep, shadow.view())
            .unwrap_err();
        assert!(
            err.to_string().contains("index 0 is listed more than once"),
            "{err}"
        );
        let err = RmiaConfig::online(1.0)
            .fit(&keep, Array3::from_elem((2, 3, 1), 2.0).view())
            .unwrap_err();
        assert!(err.to_string().contains("Signal::Probability"), "{err}");
        let fitted = RmiaConfig::online(1.0).fit(&keep, shadow.view()).unwrap();
        assert!(fitted.score(array![[0.5], [1.5], [0.5]].view()).is_err());
    }
}

//! Synthetic long-tailed data after Feldman's model ("Does learning require memorization?",
//! 2020): each class is a mixture of subpopulations whose frequencies follow a Zipf law, so a
//! few are frequent and many are rare or singletons. Rare subpopulations are what a model
//! must memorize to classify well.

use memia_core::rng::stream_rng;
use rand::RngExt;
use rand_distr::StandardNormal;

use crate::dataset::InMemoryDataset;
use crate::error::{Result, invalid};

/// Settings of the generator.
#[derive(Debug, Clone, PartialEq)]
pub struct LongTailConfig {
    /// Number of classes.
    pub classes: usize,
    /// Subpopulations per class.
    pub subpopulations_per_class: usize,
    /// Samples of the most frequent subpopulation of each class.
    pub max_frequency: usize,
    /// Zipf exponent: subpopulation of rank r (1-based) has `max(1, round(max_frequency / r^s))`.
    pub zipf_exponent: f64,
    /// Feature dimension.
    pub dims: usize,
    /// Standard deviation of subpopulation centres.
    pub center_scale: f64,
    /// Standard deviation of samples around their centre.
    pub noise: f64,
    /// Seed.
    pub seed: u64,
}

impl Default for LongTailConfig {
    fn default() -> Self {
        LongTailConfig {
            classes: 10,
            subpopulations_per_class: 50,
            max_frequency: 100,
            zipf_exponent: 1.2,
            dims: 32,
            center_scale: 3.0,
            noise: 0.5,
            seed: 0,
        }
    }
}

impl LongTailConfig {
    /// The frequency of the subpopulation of rank `rank` (1-based) in its class.
    pub fn frequency(&self, rank: usize) -> usize {
        ((self.max_frequency as f64 / (rank as f64).powf(self.zipf_exponent)).round() as usize)
            .max(1)
    }

    /// Generates the data.
    pub fn generate(&self) -> Result<LongTail> {
        if self.classes == 0
            || self.subpopulations_per_class == 0
            || self.max_frequency == 0
            || self.dims == 0
        {
            return Err(invalid(
                "long-tail config",
                format!(
                    "classes, subpopulations, max_frequency and dims must be positive: {self:?}"
                ),
            ));
        }
        if !(self.zipf_exponent >= 0.0 && self.noise >= 0.0 && self.center_scale >= 0.0) {
            return Err(invalid(
                "long-tail config",
                "exponent, noise and centre scale must be non-negative",
            ));
        }
        let (mut features, mut labels, mut subpopulation, mut frequency) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for class in 0..self.classes {
            for rank in 1..=self.subpopulations_per_class {
                let id = class * self.subpopulations_per_class + (rank - 1);
                let mut rng = stream_rng(self.seed, id as u64);
                let centre: Vec<f64> = (0..self.dims)
                    .map(|_| self.center_scale * rng.sample::<f64, _>(StandardNormal))
                    .collect();
                let f = self.frequency(rank);
                for _ in 0..f {
                    features.extend(
                        centre.iter().map(|c| {
                            (c + self.noise * rng.sample::<f64, _>(StandardNormal)) as f32
                        }),
                    );
                    labels.push(class as u32);
                    subpopulation.push(id);
                    frequency.push(f);
                }
            }
        }
        Ok(LongTail {
            dataset: InMemoryDataset::new(
                "long-tail",
                vec![self.dims],
                features,
                labels,
                self.classes,
            )?,
            subpopulation,
            frequency,
        })
    }
}

/// Generated long-tailed data, each sample tagged with its subpopulation and its frequency.
#[derive(Debug, Clone)]
pub struct LongTail {
    /// The samples.
    pub dataset: InMemoryDataset,
    /// Subpopulation id of each sample (`class * subpopulations_per_class + rank - 1`).
    pub subpopulation: Vec<usize>,
    /// Size of each sample's subpopulation.
    pub frequency: Vec<usize>,
}

//! Audit pools: an in-distribution subset plus canaries, every sample with its provenance.
//!
//! The paper's experiments mix an in-distribution data set with samples a model can only
//! learn by memorizing them: out-of-distribution images (notMNIST letters in an MNIST pool) or
//! in-distribution images with random labels.

use memia_core::rng::stream_rng;
use rand::RngExt;
use rand::seq::SliceRandom;

use crate::dataset::{Dataset, InMemoryDataset};
use crate::error::{Result, invalid};
use crate::preprocess::convert_image;

/// Where canaries come from.
#[derive(Clone, Copy)]
pub enum CanarySource<'a> {
    /// Samples of another data set, converted to the pool's sample shape.
    OutOfDistribution(&'a dyn Dataset),
    /// In-distribution samples not otherwise in the pool, relabelled by the label policy
    /// (which must change the label: `Random` or `Fixed`).
    Mislabeled,
}

impl std::fmt::Debug for CanarySource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CanarySource::OutOfDistribution(ds) => write!(f, "OutOfDistribution({})", ds.name()),
            CanarySource::Mislabeled => write!(f, "Mislabeled"),
        }
    }
}

/// The label a canary gets in the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelPolicy {
    /// Its own label (must be a valid class of the pool).
    Keep,
    /// A uniformly random class of the pool, different from its own label.
    Random,
    /// This class for every canary.
    Fixed(u32),
    /// A uniformly random class among `extra` classes added after the base's own (classes `C`
    /// to `C + extra - 1`; the pool then has `C + extra` classes, the largest over its canary
    /// groups). A model that did not train on a canary names its class by luck about once in
    /// `extra` times (once in `C - 1` with `Random`): with `extra` well above `C` the lucky
    /// guesses that look like members become rare.
    RandomExtra(u32),
}

/// Where a pool sample came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// Name of the source data set.
    pub source: String,
    /// Index in the source data set.
    pub index: usize,
    /// Whether it is a canary.
    pub canary: bool,
    /// Its label in the source (the pool label may differ for canaries).
    pub original_label: u32,
}

impl std::fmt::Display for Provenance {
    /// `source:index`, followed by ` canary` for canaries (e.g. `notmnist:17 canary`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.source, self.index)?;
        if self.canary {
            f.write_str(" canary")?;
        }
        Ok(())
    }
}

/// A pool and the provenance of each of its samples.
#[derive(Debug, Clone)]
pub struct Pool {
    /// The samples: in-distribution first, then canaries.
    pub dataset: InMemoryDataset,
    /// One entry per pool sample.
    pub provenance: Vec<Provenance>,
}

impl Pool {
    /// Indices of the canaries in the pool.
    pub fn canaries(&self) -> Vec<usize> {
        (0..self.provenance.len())
            .filter(|&i| self.provenance[i].canary)
            .collect()
    }
}

/// Builds a [`Pool`].
///
/// ```
/// use memia_data::{Dataset, PoolBuilder, CanarySource, LabelPolicy, embedded};
///
/// let digits = embedded::digits();
/// let pool = PoolBuilder::new(&digits)
///     .in_distribution(1000)
///     .canaries(CanarySource::Mislabeled, 50, LabelPolicy::Random)
///     .build(7)?;
/// assert_eq!(pool.dataset.len(), 1050);
/// assert_eq!(pool.canaries().len(), 50);
/// # Ok::<(), memia_data::DataError>(())
/// ```
#[derive(Debug)]
pub struct PoolBuilder<'a> {
    base: &'a dyn Dataset,
    in_count: Option<usize>,
    canaries: Vec<(CanarySource<'a>, usize, LabelPolicy)>,
}

impl<'a> PoolBuilder<'a> {
    /// A pool drawn from `base`, which fixes the sample shape and the classes.
    pub fn new(base: &'a dyn Dataset) -> Self {
        PoolBuilder {
            base,
            in_count: None,
            canaries: Vec::new(),
        }
    }

    /// Takes `count` random in-distribution samples (default: all of `base`).
    pub fn in_distribution(mut self, count: usize) -> Self {
        self.in_count = Some(count);
        self
    }

    /// Adds `count` canaries from `source`, labelled by `policy`.
    pub fn canaries(mut self, source: CanarySource<'a>, count: usize, policy: LabelPolicy) -> Self {
        self.canaries.push((source, count, policy));
        self
    }

    /// Draws the pool; the same seed gives the same pool.
    pub fn build(&self, seed: u64) -> Result<Pool> {
        let base = self.base;
        let classes = base.classes();
        // Every group's extra classes are checked (one RandomExtra(0) beside a larger one would
        // otherwise draw from an empty range); the pool gains the most any group asks for.
        let mut extra = 0usize;
        for c in &self.canaries {
            match c.2 {
                LabelPolicy::RandomExtra(0) => {
                    return Err(invalid(
                        "label policy",
                        "RandomExtra needs at least one extra class",
                    ));
                }
                LabelPolicy::RandomExtra(e) => extra = extra.max(e as usize),
                _ => {}
            }
        }
        let pool_classes = classes + extra;
        let in_count = self.in_count.unwrap_or(base.len());
        let mut order: Vec<usize> = (0..base.len()).collect();
        order.shuffle(&mut stream_rng(seed, 0));
        let mislabeled_needed: usize = self
            .canaries
            .iter()
            .filter(|c| matches!(c.0, CanarySource::Mislabeled))
            .map(|c| c.1)
            .sum();
        if in_count + mislabeled_needed > base.len() {
            return Err(invalid(
                "in_distribution",
                format!(
                    "{in_count} in-distribution samples and {mislabeled_needed} mislabeled canaries exceed the {} samples of {}",
                    base.len(),
                    base.name()
                ),
            ));
        }
        let (mut features, mut labels, mut provenance) = (Vec::new(), Vec::new(), Vec::new());
        let mut chosen: Vec<usize> = order[..in_count].to_vec();
        chosen.sort_unstable();
        for &i in &chosen {
            features.extend_from_slice(base.features(i));
            labels.push(base.label(i));
            provenance.push(Provenance {
                source: base.name().to_string(),
                index: i,
                canary: false,
                original_label: base.label(i),
            });
        }
        let mut unused = order[in_count..].iter().copied();
        for (group, &(source, count, policy)) in self.canaries.iter().enumerate() {
            let mut rng = stream_rng(seed, 1 + group as u64);
            let (ds, indices): (&dyn Dataset, Vec<usize>) = match source {
                CanarySource::Mislabeled => {
                    if policy == LabelPolicy::Keep {
                        return Err(invalid(
                            "label policy",
                            "mislabeled canaries need a Random or Fixed label",
                        ));
                    }
                    (base, unused.by_ref().take(count).collect())
                }
                CanarySource::OutOfDistribution(ood) => {
                    if count > ood.len() {
                        return Err(invalid(
                            "canaries",
                            format!(
                                "{count} canaries requested from the {} samples of {}",
                                ood.len(),
                                ood.name()
                            ),
                        ));
                    }
                    let mut idx: Vec<usize> = (0..ood.len()).collect();
                    idx.shuffle(&mut rng);
                    idx.truncate(count);
                    idx.sort_unstable();
                    (ood, idx)
                }
            };
            for i in indices {
                let original = ds.label(i);
                let label = match policy {
                    LabelPolicy::Keep => {
                        if original as usize >= classes {
                            return Err(invalid(
                                "label policy",
                                format!(
                                    "{} label {original} is not a class of {} ({classes} classes): use Random or Fixed",
                                    ds.name(),
                                    base.name()
                                ),
                            ));
                        }
                        original
                    }
                    LabelPolicy::Fixed(c) => {
                        if c as usize >= classes {
                            return Err(invalid(
                                "label policy",
                                format!("fixed label {c} is not below {classes}"),
                            ));
                        }
                        c
                    }
                    LabelPolicy::RandomExtra(e) => classes as u32 + rng.random_range(0..e),
                    LabelPolicy::Random => {
                        if classes < 2 {
                            return Err(invalid(
                                "label policy",
                                "random relabelling needs at least 2 classes",
                            ));
                        }
                        // A class other than the original one (when it is a valid class).
                        let draw = rng.random_range(
                            0..classes as u32 - u32::from((original as usize) < classes),
                        );
                        if (original as usize) < classes && draw >= original {
                            draw + 1
                        } else {
                            draw
                        }
                    }
                };
                features.extend(convert_image(
                    ds.features(i),
                    ds.feature_shape(),
                    base.feature_shape(),
                )?);
                labels.push(label);
                provenance.push(Provenance {
                    source: ds.name().to_string(),
                    index: i,
                    canary: true,
                    original_label: original,
                });
            }
        }
        let name = format!("{}-pool", base.name());
        Ok(Pool {
            dataset: InMemoryDataset::new(
                name,
                base.feature_shape().to_vec(),
                features,
                labels,
                pool_classes,
            )?,
            provenance,
        })
    }
}

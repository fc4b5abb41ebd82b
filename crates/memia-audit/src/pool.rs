//! Building the pool a configuration describes.

use memia_data::idx::load_idx;
use memia_data::numpy::load_npz;
use memia_data::{
    CanarySource, Dataset, InMemoryDataset, LabelPolicy, Pool, PoolBuilder, embedded,
};

use crate::config::{CanaryKind, CanaryLabels, Cifar100Labels, DataConfig, DataSource};
use crate::error::{AuditError, Result};

/// Loads a data set.
pub fn load(source: &DataSource) -> Result<InMemoryDataset> {
    Ok(match source {
        DataSource::Digits {} => embedded::digits(),
        DataSource::Idx {
            images,
            labels,
            classes,
        } => {
            let name = images
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            load_idx(images, labels, &name, *classes)?
        }
        DataSource::Npz {
            path,
            x,
            y,
            classes,
        } => load_npz(path, x, y, *classes)?,
        DataSource::Cifar10 { files } => memia_data::cifar::load_cifar10(files)?,
        DataSource::Cifar100 { files, labels } => memia_data::cifar::load_cifar100(
            files,
            match labels {
                Cifar100Labels::Fine => memia_data::cifar::Cifar100Labels::Fine,
                Cifar100Labels::Coarse => memia_data::cifar::Cifar100Labels::Coarse,
            },
        )?,
    })
}

/// The pool: the in-distribution subset plus canaries, with every sample's provenance.
pub fn build(config: &DataConfig, seed: u64) -> Result<Pool> {
    let base = load(&config.source)?;
    let ood;
    let mut builder = PoolBuilder::new(&base);
    if let Some(n) = config.samples {
        builder = builder.in_distribution(n);
    }
    if let Some(c) = &config.canaries {
        let policy = match c.labels {
            CanaryLabels::Keep => LabelPolicy::Keep,
            CanaryLabels::Random => LabelPolicy::Random,
            CanaryLabels::Fixed(l) => LabelPolicy::Fixed(l),
            CanaryLabels::RandomExtra(e) => LabelPolicy::RandomExtra(e),
        };
        let source = match (c.kind, &c.data) {
            (CanaryKind::Mislabeled, None) => CanarySource::Mislabeled,
            (CanaryKind::Mislabeled, Some(_)) => {
                return Err(AuditError::Usage(
                    "[data.canaries]: mislabeled canaries come from the pool's own data set; remove 'data' or use kind = \"out-of-distribution\"".into(),
                ));
            }
            (CanaryKind::OutOfDistribution, Some(d)) => {
                ood = load(d)?;
                CanarySource::OutOfDistribution(&ood)
            }
            (CanaryKind::OutOfDistribution, None) => {
                return Err(AuditError::Usage(
                    "[data.canaries]: out-of-distribution canaries need 'data' (their data set)"
                        .into(),
                ));
            }
        };
        builder = builder.canaries(source, c.count, policy);
    }
    let mut pool = builder.build(seed)?;
    if config.normalize {
        let norm = memia_data::preprocess::Normalization::fit(&pool.dataset)?;
        pool.dataset = norm.apply(pool.dataset)?;
    }
    Ok(pool)
}

/// The pool's named sample sets that reports show separately: its canaries, if any.
pub fn groups(pool: &Pool) -> Vec<memia_attacks::evaluation::EvalGroup> {
    let canaries = pool.canaries();
    if canaries.is_empty() {
        return Vec::new();
    }
    vec![memia_attacks::evaluation::EvalGroup {
        name: "canaries".into(),
        samples: canaries,
    }]
}

/// One line per sample for reports: `source:index`, with ` canary` for canaries.
pub fn provenance_strings(pool: &Pool) -> Vec<String> {
    pool.provenance.iter().map(ToString::to_string).collect()
}

/// Checks that the pool suits the model before anything is planned.
pub fn check_shape(pool: &dyn Dataset, model: &memia_models::ModelConfig) -> Result<()> {
    use memia_models::ModelConfig;
    let shape = pool.feature_shape();
    if matches!(model, ModelConfig::Cnn(_) | ModelConfig::ResNet(_)) && shape.len() != 3 {
        return Err(AuditError::Usage(format!(
            "a convolutional model needs image samples [channels, height, width]; '{}' has samples of shape {shape:?}",
            pool.name()
        )));
    }
    Ok(())
}

//! The run configuration (`CONFIG.toml`): data, plan, model, training, audit.
//!
//! ```toml
//! [data]
//! source = "idx"
//! images = "$MEMIA_DATA_DIR/mnist-t10k-images-idx3-ubyte.gz"
//! labels = "$MEMIA_DATA_DIR/mnist-t10k-labels-idx1-ubyte.gz"
//! samples = 5000
//!
//! [data.canaries]
//! kind = "out-of-distribution"
//! count = 100
//! labels = "random"
//! data = { source = "idx", images = "...", labels = "..." }
//!
//! [plan]
//! models = 16
//! scheme = { kind = "balanced", ratio = 0.5 }
//! seed = 2026
//! queries = ["plain"]
//!
//! [model.mlp]
//! hidden = [128]
//!
//! [training]
//! epochs = 20
//!
//! [train]
//! group_size = 8
//! device = "cpu"
//! engine = "auto"
//!
//! [audit]
//! attack = { method = "lira-online", global_variance = true }
//! ```

use std::path::{Path, PathBuf};

use memia_models::{Engine, MlpConfig, ModelConfig, Query, TrainingConfig};
use memia_report::AuditConfig;
use memia_shadow::InclusionScheme;
use serde::{Deserialize, Serialize};

use crate::error::{AuditError, Result};

/// A data set from files, or the embedded digits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DataSource {
    /// The UCI handwritten digits compiled into memia (1,797 8 x 8 images, 10 classes).
    /// (A struct variant with no field, so that unknown keys beside it are refused too.)
    Digits {},
    /// An IDX image file and its label file (MNIST layout, gzipped or not).
    Idx {
        /// The images (n x rows x cols, u8).
        images: PathBuf,
        /// The labels (n, u8).
        labels: PathBuf,
        /// Number of classes (default: largest label + 1).
        #[serde(default)]
        classes: Option<usize>,
    },
    /// CIFAR-10 binary batches (records of a label byte and 3,072 channel-major pixels), raw
    /// or gzipped, concatenated in order: `[3, 32, 32]` images in [0, 1], 10 classes.
    Cifar10 {
        /// The batch files.
        files: Vec<PathBuf>,
    },
    /// CIFAR-100 binary batches (a coarse and a fine label byte per record), raw or gzipped.
    Cifar100 {
        /// The batch files.
        files: Vec<PathBuf>,
        /// `fine` (100 classes, the default) or `coarse` (20 superclasses).
        #[serde(default)]
        labels: Cifar100Labels,
    },
    /// An `.npz` archive with features and integer labels.
    Npz {
        /// The archive.
        path: PathBuf,
        /// Key of the features.
        #[serde(default = "default_x")]
        x: String,
        /// Key of the labels.
        #[serde(default = "default_y")]
        y: String,
        /// Number of classes (default: largest label + 1).
        #[serde(default)]
        classes: Option<usize>,
    },
}

/// Which CIFAR-100 label a pool uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cifar100Labels {
    /// The 100 classes.
    #[default]
    Fine,
    /// The 20 superclasses.
    Coarse,
}

fn default_x() -> String {
    "x".into()
}
fn default_y() -> String {
    "y".into()
}

/// The label a canary gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum CanaryLabels {
    /// Its own label.
    Keep,
    /// A random other class.
    Random,
    /// This class for every canary.
    Fixed(u32),
    /// A random class among this many classes added after the data set's own (the pool gains
    /// them; a lucky guess by a model that did not train on a canary becomes rarer). In TOML:
    /// `labels = { random-extra = 90 }`.
    RandomExtra(u32),
}

/// Where canaries come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CanaryKind {
    /// In-distribution samples not otherwise in the pool, relabelled.
    Mislabeled,
    /// Samples of another data set (`data`), converted to the pool's shape.
    OutOfDistribution,
}

/// Canaries added to the pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanaryConfig {
    /// Mislabeled in-distribution samples or out-of-distribution samples.
    pub kind: CanaryKind,
    /// How many.
    pub count: usize,
    /// Their labels in the pool.
    #[serde(default = "random_labels")]
    pub labels: CanaryLabels,
    /// The out-of-distribution data set.
    #[serde(default)]
    pub data: Option<DataSource>,
}

fn random_labels() -> CanaryLabels {
    CanaryLabels::Random
}

/// `[data]`: the pool. (Unknown keys are refused by the flattened source.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataConfig {
    /// The in-distribution data set.
    #[serde(flatten)]
    pub source: DataSource,
    /// A random subset of this many in-distribution samples (default: all).
    #[serde(default)]
    pub samples: Option<usize>,
    /// Canaries.
    #[serde(default)]
    pub canaries: Option<CanaryConfig>,
    /// Standardise every channel to mean 0 and deviation 1 over the pool (canaries included),
    /// as image models usually train.
    #[serde(default, skip_serializing_if = "is_false")]
    pub normalize: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// `[plan]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlanConfig {
    /// Number of shadow models K.
    pub models: usize,
    /// How each model's training subset is drawn.
    pub scheme: InclusionScheme,
    /// Master seed (pool draw, keep matrix, every model).
    pub seed: u64,
    /// Queries of the outputs (plain, mirror, shifts).
    pub queries: Vec<Query>,
}

impl Default for PlanConfig {
    fn default() -> Self {
        PlanConfig {
            models: 16,
            scheme: InclusionScheme::Balanced { ratio: 0.5 },
            seed: 0,
            queries: vec![Query::Plain],
        }
    }
}

/// `[train]`: how (not what) to train; not part of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainSettings {
    /// Models trained together in one batched pass.
    pub group_size: usize,
    /// Burn device name (`cpu`, `ndarray`, `wgpu`, `wgpu-cpu`).
    pub device: String,
    /// `auto` (memia's fused CPU kernels where they apply) or `burn`.
    pub engine: Engine,
    /// Train each model with this command instead of memia's models (any framework):
    /// `{pool}`, `{indices}`, `{seed}`, `{out}` and `{model}` are replaced; it writes the model's
    /// N x A x C logits to `{out}`. Part of the plan (a run is of one model family).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<String>,
    /// Queries A the external command writes per sample.
    pub external_queries: usize,
    /// Where the external command runs (default: the configuration file's directory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_dir: Option<PathBuf>,
}

impl Default for TrainSettings {
    fn default() -> Self {
        TrainSettings {
            group_size: 8,
            device: "cpu".into(),
            engine: Engine::Auto,
            external: None,
            external_queries: 1,
            external_dir: None,
        }
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// The pool.
    pub data: DataConfig,
    /// K, subsets, seed, queries.
    #[serde(default)]
    pub plan: PlanConfig,
    /// The network.
    #[serde(default = "default_model")]
    pub model: ModelConfig,
    /// The training procedure.
    #[serde(default)]
    pub training: TrainingConfig,
    /// Group size and device.
    #[serde(default)]
    pub train: TrainSettings,
    /// The audit of `memia report` and `memia run`.
    #[serde(default)]
    pub audit: AuditConfig,
}

fn default_model() -> ModelConfig {
    ModelConfig::Mlp(MlpConfig::mlp(128))
}

impl RunConfig {
    /// The defaults on the embedded digits.
    pub fn digits() -> Self {
        RunConfig {
            data: DataConfig {
                source: DataSource::Digits {},
                samples: None,
                canaries: None,
                normalize: false,
            },
            plan: PlanConfig::default(),
            model: default_model(),
            training: TrainingConfig::default(),
            train: TrainSettings::default(),
            audit: AuditConfig::default(),
        }
    }

    /// Parses a configuration; relative data paths are resolved against `base` (the directory
    /// of the file), and a leading `$MEMIA_DATA_DIR` is replaced by that variable's value.
    pub fn parse(text: &str, origin: &Path, base: &Path) -> Result<Self> {
        let error = |reason: String| AuditError::Config {
            path: origin.to_path_buf(),
            reason,
        };
        let mut config: RunConfig = toml::from_str(text).map_err(|e| AuditError::Syntax {
            path: origin.to_path_buf(),
            source: Box::new(e),
        })?;
        config.resolve_paths(base)?;
        // What needs no data is checked now; the rest when the plan is made.
        let refused = |table: &'static str| {
            move |source| AuditError::ModelSetting {
                path: origin.to_path_buf(),
                table: Some(table),
                source,
            }
        };
        config.model.check().map_err(refused("model"))?;
        config.training.check().map_err(refused("training"))?;
        if config.train.group_size == 0 {
            return Err(error("[train] group_size: must be at least 1".into()));
        }
        if config.data.samples == Some(0) {
            return Err(error("[data] samples: must be at least 1".into()));
        }
        Ok(config)
    }

    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| AuditError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, path, base)
    }

    /// The configuration as TOML (with resolved, absolute paths).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("configurations serialise")
    }

    fn resolve_paths(&mut self, base: &Path) -> Result<()> {
        if self.train.external.is_some() {
            let dir = self.train.external_dir.take().unwrap_or_default();
            let joined = base.join(dir);
            let joined = if joined.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                joined
            };
            self.train.external_dir =
                Some(
                    std::path::absolute(&joined).map_err(|source| AuditError::Io {
                        path: joined.clone(),
                        source,
                    })?,
                );
        }
        let mut sources = vec![&mut self.data.source];
        if let Some(CanaryConfig { data: Some(d), .. }) = &mut self.data.canaries {
            sources.push(d);
        }
        for source in sources {
            match source {
                DataSource::Digits {} => {}
                DataSource::Idx { images, labels, .. } => {
                    *images = resolve(images, base)?;
                    *labels = resolve(labels, base)?;
                }
                DataSource::Npz { path, .. } => *path = resolve(path, base)?,
                DataSource::Cifar10 { files } | DataSource::Cifar100 { files, .. } => {
                    for file in files.iter_mut() {
                        *file = resolve(file, base)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// `$MEMIA_DATA_DIR/...` expanded, relative paths joined to `base`.
fn resolve(path: &Path, base: &Path) -> Result<PathBuf> {
    let text = path.to_string_lossy();
    let expanded = if let Some(rest) = text.strip_prefix("$MEMIA_DATA_DIR") {
        let dir = std::env::var_os("MEMIA_DATA_DIR").ok_or_else(|| {
            AuditError::Usage(format!(
                "{text} uses $MEMIA_DATA_DIR, which is not set: point it at the directory of the data files"
            ))
        })?;
        PathBuf::from(format!("{}{}", PathBuf::from(dir).display(), rest))
    } else {
        path.to_path_buf()
    };
    // Absolute, so that the run's copy of the configuration (memia.toml) finds the files from
    // wherever a later command runs.
    let joined = base.join(expanded);
    std::path::absolute(&joined).map_err(crate::error::io(&joined))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_configuration() {
        let text = r#"
            [data]
            source = "idx"
            images = "imgs.gz"
            labels = "/abs/labels.gz"
            samples = 100
            [data.canaries]
            kind = "out-of-distribution"
            count = 10
            labels = { fixed = 3 }
            data = { source = "npz", path = "ood.npz" }
            [plan]
            models = 8
            scheme = { kind = "bernoulli", p = 0.5 }
            seed = 7
            queries = ["plain", "mirror"]
            [model.cnn]
            channels = [6, 16]
            kernel = 5
            hidden = [120]
            [training]
            epochs = 3
            optimizer = { kind = "adam", beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8 }
            [audit]
            target = 2
            attack = { method = "rmia", gamma = 2.0 }
            candidates = { top_memorized = 5 }
        "#;
        let c = RunConfig::parse(text, Path::new("c.toml"), Path::new("/base")).unwrap();
        assert_eq!(
            c.data.source,
            DataSource::Idx {
                images: "/base/imgs.gz".into(),
                labels: "/abs/labels.gz".into(),
                classes: None
            }
        );
        let canaries = c.data.canaries.as_ref().unwrap();
        assert_eq!(canaries.labels, CanaryLabels::Fixed(3));
        assert_eq!(c.plan.models, 8);
        assert_eq!(c.plan.queries, vec![Query::Plain, Query::Mirror]);
        assert_eq!(c.training.epochs, 3);
        assert_eq!(c.training.batch_size, TrainingConfig::default().batch_size);
        assert_eq!(c.audit.target, 2);
        // The serialised form parses back to the same value.
        let again = RunConfig::parse(&c.to_toml(), Path::new("x"), Path::new("/")).unwrap();
        assert_eq!(again, c);
        // Canaries labelled among extra classes, written and read back.
        let extra = text.replace("labels = { fixed = 3 }", "labels = { random-extra = 90 }");
        assert_ne!(
            extra, text,
            "the fixture names its canaries' labels as expected"
        );
        let c = RunConfig::parse(&extra, Path::new("c.toml"), Path::new("/base")).unwrap();
        let labels = c.data.canaries.as_ref().unwrap().labels;
        assert_eq!(labels, CanaryLabels::RandomExtra(90));
        let again = RunConfig::parse(&c.to_toml(), Path::new("x"), Path::new("/")).unwrap();
        assert_eq!(again, c);
    }

    /// CIFAR batches and standardisation: the files resolved like every path, `normalize`
    /// read, and the pool it builds standardised per channel.
    #[test]
    fn cifar_sources_and_normalisation() {
        let text = r#"
            [data]
            source = "cifar100"
            files = ["a.bin.gz", "/abs/b.bin"]
            labels = "coarse"
            normalize = true
        "#;
        let c = RunConfig::parse(text, Path::new("c.toml"), Path::new("/base")).unwrap();
        assert_eq!(
            c.data.source,
            DataSource::Cifar100 {
                files: vec!["/base/a.bin.gz".into(), "/abs/b.bin".into()],
                labels: Cifar100Labels::Coarse,
            }
        );
        assert!(c.data.normalize);
        let again = RunConfig::parse(&c.to_toml(), Path::new("x"), Path::new("/")).unwrap();
        assert_eq!(again, c);
        let mut digits = RunConfig::digits();
        digits.data.normalize = true;
        let pool = crate::pool::build(&digits.data, 1).unwrap();
        let values = memia_data::Dataset::to_row_major(&pool.dataset);
        let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / values.len() as f64;
        let var = values
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / values.len() as f64;
        assert!(
            mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-3,
            "{mean} {var}"
        );
    }

    #[test]
    fn typos_are_named() {
        let err = RunConfig::parse(
            "[data]\nsource = \"digits\"\n[plan]\nmodel = 3\n",
            Path::new("c.toml"),
            Path::new("."),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("c.toml") && err.contains("model"), "{err}");
        let err = RunConfig::parse(
            "[data]\nsource = \"cifar\"\n",
            Path::new("c.toml"),
            Path::new("."),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("cifar"), "{err}");
        // Unknown keys beside every source, and misspelt tables, are refused.
        for (text, key) in [
            ("[data]\nsource = \"digits\"\nsampels = 10\n", "sampels"),
            (
                "[data]\nsource = \"digits\"\n[data.canary]\nkind = \"mislabeled\"\ncount = 5\n",
                "canary",
            ),
            (
                "[data]\nsource = \"npz\"\npath = \"d.npz\"\nclases = 3\n",
                "clases",
            ),
        ] {
            let err = RunConfig::parse(text, Path::new("c.toml"), Path::new("."))
                .unwrap_err()
                .to_string();
            assert!(err.contains("c.toml") && err.contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn relative_paths_become_absolute() {
        let c = RunConfig::parse(
            "[data]\nsource = \"npz\"\npath = \"data.npz\"\n",
            Path::new("sub/c.toml"),
            Path::new("sub"),
        )
        .unwrap();
        let DataSource::Npz { path, .. } = &c.data.source else {
            panic!("an npz source")
        };
        assert!(path.is_absolute(), "{}", path.display());
        assert_eq!(path, &std::env::current_dir().unwrap().join("sub/data.npz"));
    }
}

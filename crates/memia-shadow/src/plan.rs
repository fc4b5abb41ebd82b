//! The plan: everything that determines a run's outputs, with a content hash.

use memia_core::KeepMatrix;
use memia_core::rng::splitmix64;
use memia_data::Dataset;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Result, invalid};
use crate::memory::{MemoryLimit, check_keep_matrix, check_training};
use crate::trainer::ShadowTrainer;

/// How each model's training subset is drawn (see `memia_core::KeepMatrix`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InclusionScheme {
    /// Every sample IN for exactly `floor(ratio * K)` models (the LiRA reference's scheme).
    /// Rows depend on K, so a balanced plan cannot be extended with more models.
    Balanced {
        /// Fraction of models per sample.
        ratio: f64,
    },
    /// Every (model, sample) IN with probability `p`, independently.
    Bernoulli {
        /// Inclusion probability.
        p: f64,
    },
    /// Every model trains on a random subset of `round(ratio * N)` samples (Feldman-Zhang).
    FixedSize {
        /// Subset fraction.
        ratio: f64,
    },
    /// A keep matrix made elsewhere (an imported run), identified by the SHA-256 of its bits
    /// (one byte per entry, row-major). It lives in the run's `keep.npy`; it cannot be extended.
    Given {
        /// SHA-256 of the keep matrix (see [`keep_sha256`]).
        sha256: String,
    },
}

/// SHA-256 of a keep matrix's entries (one byte, 0 or 1, per entry, models outermost) and its
/// shape: the identity of a [`InclusionScheme::Given`] matrix.
pub fn keep_sha256(keep: &KeepMatrix) -> String {
    let mut hasher = Sha256::new();
    hasher.update((keep.models() as u64).to_le_bytes());
    hasher.update((keep.samples() as u64).to_le_bytes());
    for k in 0..keep.models() {
        let row: Vec<u8> = keep.row(k).iter().map(|&b| u8::from(b)).collect();
        hasher.update(&row);
    }
    hex(&hasher.finalize())
}

impl std::fmt::Display for InclusionScheme {
    /// As in a configuration: `balanced ratio 0.5`, `bernoulli p 0.5`, `fixed_size ratio 0.5`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InclusionScheme::Balanced { ratio } => write!(f, "balanced ratio {ratio}"),
            InclusionScheme::Bernoulli { p } => write!(f, "bernoulli p {p}"),
            InclusionScheme::FixedSize { ratio } => write!(f, "fixed_size ratio {ratio}"),
            InclusionScheme::Given { sha256 } => write!(f, "given keep matrix {sha256}"),
        }
    }
}

impl InclusionScheme {
    /// The fraction of models per sample (balanced), of samples per model (fixed size) or the
    /// inclusion probability (Bernoulli); `None` for a given keep matrix.
    pub fn fraction(&self) -> Option<f64> {
        match *self {
            InclusionScheme::Balanced { ratio } | InclusionScheme::FixedSize { ratio } => {
                Some(ratio)
            }
            InclusionScheme::Bernoulli { p } => Some(p),
            InclusionScheme::Given { .. } => None,
        }
    }

    /// Whether models can be added later without changing the existing ones' subsets.
    pub fn extendable(&self) -> bool {
        !matches!(
            self,
            InclusionScheme::Balanced { .. } | InclusionScheme::Given { .. }
        )
    }

    /// The keep matrix for `models` models over `samples` samples.
    pub fn keep_matrix(&self, models: usize, samples: usize, seed: u64) -> Result<KeepMatrix> {
        Ok(match *self {
            InclusionScheme::Balanced { ratio } => {
                KeepMatrix::balanced_with_ratio(models, samples, ratio, seed)?
            }
            InclusionScheme::Bernoulli { p } => KeepMatrix::bernoulli(models, samples, p, seed)?,
            InclusionScheme::FixedSize { ratio } => {
                KeepMatrix::fixed_size(models, samples, ratio, seed)?
            }
            InclusionScheme::Given { .. } => {
                return Err(invalid(
                    "scheme",
                    "a given keep matrix is not derived from a seed: it is read from the run's keep.npy",
                ));
            }
        })
    }
}

/// What the plan knows of the pool: enough to refuse a different one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolFingerprint {
    /// The data set's name.
    pub name: String,
    /// Number of samples N.
    pub samples: usize,
    /// Number of classes C.
    pub classes: usize,
    /// Per-sample shape.
    pub feature_shape: Vec<usize>,
    /// SHA-256 of the samples' values (f32, little-endian) and labels (u32, little-endian).
    pub sha256: String,
    /// SHA-256 of the labels alone ([`labels_sha256`]), so that a copy of the labels kept beside
    /// the run can be checked without the pool. Absent in plans made before memia recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels_sha256: Option<String>,
}

/// SHA-256 of labels (u32, little-endian): [`PoolFingerprint::labels_sha256`].
pub fn labels_sha256(labels: &[u32]) -> String {
    let mut hasher = Sha256::new();
    labels.iter().for_each(|l| hasher.update(l.to_le_bytes()));
    hex(&hasher.finalize())
}

impl PoolFingerprint {
    /// Fingerprints a pool (reads every value once).
    pub fn of(pool: &dyn Dataset) -> Self {
        let mut hasher = Sha256::new();
        for i in 0..pool.len() {
            for v in pool.features(i) {
                hasher.update(v.to_le_bytes());
            }
            hasher.update(pool.label(i).to_le_bytes());
        }
        PoolFingerprint {
            name: pool.name().to_string(),
            samples: pool.len(),
            classes: pool.classes(),
            feature_shape: pool.feature_shape().to_vec(),
            sha256: hex(&hasher.finalize()),
            labels_sha256: Some(labels_sha256(&pool.labels())),
        }
    }

    /// Whether `pool` is the pool of this fingerprint (a fingerprint without a labels hash,
    /// from an older plan, is compared on the rest).
    pub fn describes(&self, pool: &dyn Dataset) -> bool {
        let mut of = Self::of(pool);
        if self.labels_sha256.is_none() {
            of.labels_sha256 = None;
        }
        of == *self
    }

    /// Checks a copy of the pool's labels against the recorded hash (`Ok` when none was
    /// recorded); the error says what differs.
    pub fn check_labels(&self, labels: &[u32]) -> std::result::Result<(), String> {
        if labels.len() != self.samples {
            return Err(format!(
                "{} labels, the plan has {} samples",
                labels.len(),
                self.samples
            ));
        }
        match &self.labels_sha256 {
            Some(recorded) if *recorded != labels_sha256(labels) => Err(
                "the labels differ from those the plan was made with (their SHA-256 differs)"
                    .into(),
            ),
            _ => Ok(()),
        }
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A shadow-model training plan (`plan.json` in a run directory).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Format version of this file.
    pub format: u32,
    /// The pool the models train on.
    pub pool: PoolFingerprint,
    /// Number of models K.
    pub models: usize,
    /// How subsets are drawn.
    pub scheme: InclusionScheme,
    /// Master seed: the keep matrix and every model's seed derive from it.
    pub seed: u64,
    /// Queries (augmentations) per sample in the outputs.
    pub queries: usize,
    /// The trainer's model and training settings.
    pub trainer: serde_json::Value,
}

impl Plan {
    /// A plan to train `models` models of `trainer` on `pool`.
    pub fn new(
        pool: &dyn Dataset,
        models: usize,
        scheme: InclusionScheme,
        seed: u64,
        trainer: &dyn ShadowTrainer,
    ) -> Result<Self> {
        if models == 0 {
            return Err(invalid("models", "a plan needs at least one model"));
        }
        if pool.is_empty() {
            return Err(invalid("pool", format!("{} is empty", pool.name())));
        }
        if trainer.queries() == 0 {
            return Err(invalid(
                "queries",
                "the trainer queries its models on no input: at least one query is needed",
            ));
        }
        // Sizes are checked before anything of their size is allocated: the keep matrix (in
        // `keep_matrix`), then one model and one group of the trainer.
        let limit = MemoryLimit::detect()?;
        check_keep_matrix(models, pool.len(), &limit)?;
        let plan = Plan {
            format: 1,
            pool: PoolFingerprint::of(pool),
            models,
            scheme,
            seed,
            queries: trainer.queries(),
            trainer: trainer.config(),
        };
        check_training(trainer, pool, trainer.group_size().clamp(1, models), &limit)?;
        let keep = plan.keep_matrix()?; // validates the scheme's parameters
        // (A given scheme has no fraction, and no keep matrix to derive: refused above.)
        if let Some(fraction) = plan.scheme.fraction()
            && !(fraction > 0.0 && fraction < 1.0)
        {
            return Err(invalid(
                "scheme",
                format!(
                    "{}: a fraction of {fraction} leaves no model on one side of a sample (IN or OUT); use one in (0, 1)",
                    plan.scheme
                ),
            ));
        }
        if let Some(k) = (0..models).find(|&k| !keep.row(k).iter().any(|&b| b)) {
            return Err(invalid(
                "scheme",
                format!(
                    "{} with {models} models on {} samples gives model {k} an empty training set",
                    plan.scheme,
                    pool.len()
                ),
            ));
        }
        Ok(plan)
    }

    /// A plan for a keep matrix made elsewhere, for outputs produced elsewhere (an imported
    /// run): `pool` describes the samples as far as they are known, `trainer` records where the
    /// outputs came from. Its models are stored with [`crate::RunDir::store`], not trained.
    pub fn given(
        pool: PoolFingerprint,
        keep: &KeepMatrix,
        queries: usize,
        trainer: serde_json::Value,
    ) -> Result<Self> {
        if keep.samples() != pool.samples {
            return Err(invalid(
                "keep",
                format!(
                    "covers {} samples, the pool has {}",
                    keep.samples(),
                    pool.samples
                ),
            ));
        }
        if queries == 0 {
            return Err(invalid("queries", "at least one query is needed"));
        }
        Ok(Plan {
            format: 1,
            pool,
            models: keep.models(),
            scheme: InclusionScheme::Given {
                sha256: keep_sha256(keep),
            },
            seed: 0,
            queries,
            trainer,
        })
    }

    /// The keep matrix (K x N) the plan determines.
    ///
    /// For [`InclusionScheme::Given`] plans it is not derivable: read it from the run directory.
    /// A matrix larger than the memory available is refused before it is allocated (a
    /// `plan.json` may say any number of models).
    pub fn keep_matrix(&self) -> Result<KeepMatrix> {
        check_keep_matrix(self.models, self.pool.samples, &MemoryLimit::detect()?)?;
        self.scheme
            .keep_matrix(self.models, self.pool.samples, self.seed)
    }

    /// Model `k`'s own seed (initialisation, minibatch order, augmentation).
    pub fn model_seed(&self, k: usize) -> u64 {
        splitmix64(self.seed ^ splitmix64(0x4D45_4D49_4100_0000 ^ k as u64))
    }

    /// SHA-256 of the plan's canonical JSON. For extendable schemes the number of models is left
    /// out, so that a plan with more models keeps the hash of the run it extends.
    pub fn content_hash(&self) -> String {
        let mut value = serde_json::to_value(self).expect("plans serialise");
        if self.scheme.extendable() {
            value["models"] = serde_json::Value::Null;
        }
        hex(&Sha256::digest(value.to_string().as_bytes()))
    }
}

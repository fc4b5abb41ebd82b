//! The trait a model family implements to be trained by the scheduler, and the record of what
//! produced each model's outputs.

use std::collections::BTreeMap;

use memia_data::Dataset;
use ndarray::Array3;
use serde::{Deserialize, Serialize};

use crate::memory::checked_product;

/// One model to train.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelJob {
    /// Its index k in the plan.
    pub index: usize,
    /// Its seed (initialisation, minibatch order, augmentation): `Plan::model_seed(k)`.
    pub seed: u64,
    /// Pool indices of its training set (row k of the keep matrix).
    pub train: Vec<usize>,
}

/// Any error a trainer reports. The scheduler keeps it as the `source` of
/// [`crate::ShadowError::Trainer`], so that the whole chain of causes can be printed.
pub type TrainerError = Box<dyn std::error::Error + Send + Sync>;

/// A model family and its training procedure, as the scheduler sees it.
///
/// **Determinism.** An implementation must give the same outputs, bit for bit, for the same
/// jobs trained in the same groups on the same pool by the same [`Producer`]. Whether outputs
/// also stay the same across groupings (and so across shards, which regroup models), devices
/// or CPUs is the implementation's to state in its documentation; the scheduler records each
/// model's producer beside its logits so that a run that mixes producers can say so.
pub trait ShadowTrainer: Send + Sync {
    /// The model and training settings, as JSON; they enter the plan and its hash.
    fn config(&self) -> serde_json::Value;

    /// Queries per sample in the outputs: 1 for the plain input, more with augmentations.
    fn queries(&self) -> usize;

    /// How many models to train together in one pass (default 1).
    fn group_size(&self) -> usize {
        1
    }

    /// The memory that training `models` models of this family together on `pool` needs at
    /// least (parameters, optimiser state, activations, outputs), counted with checked
    /// arithmetic and without allocating, so that a plan, and every training call, refuses
    /// a model or group size this machine cannot hold instead of aborting on a failed
    /// allocation (see [`crate::memory`]). The default counts the outputs alone: per model
    /// N x A x C float32 logits.
    fn memory_needed(&self, pool: &dyn Dataset, models: usize) -> MemoryNeed {
        let (n, a, c) = (
            pool.len() as u64,
            self.queries() as u64,
            pool.classes() as u64,
        );
        MemoryNeed {
            bytes: checked_product(&[models as u64, n, a, c, 4]),
            setting: "queries",
            value: self.queries().to_string(),
            what: format!("{n} samples x {a} queries x {c} classes of float32 logits per model"),
        }
    }

    /// What produces the outputs, beyond the plan's settings (default: the type's name). It
    /// is recorded with every model this trainer writes.
    fn producer(&self) -> Producer {
        Producer::new(std::any::type_name::<Self>())
    }

    /// Trains each job's model on its training set and returns, per job and in order, its
    /// logits on every pool sample: N x A x C.
    fn train_group(
        &self,
        pool: &dyn Dataset,
        jobs: &[ModelJob],
    ) -> Result<Vec<Array3<f32>>, TrainerError>;

    /// Prepares training on `pool` once per `RunDir::train` call, for trainers with work that
    /// depends only on the pool (converting its layout, transforming it for the queries): the
    /// session keeps the result and trains every group. `None` (the default) trains each group
    /// with [`ShadowTrainer::train_group`].
    fn session<'a>(
        &'a self,
        pool: &'a dyn Dataset,
    ) -> Result<Option<Box<dyn TrainingSession + 'a>>, TrainerError> {
        let _ = pool;
        Ok(None)
    }
}

/// What a trainer needs to train some models together (see [`ShadowTrainer::memory_needed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryNeed {
    /// Bytes needed at least; `None` when the count overflows 64 bits.
    pub bytes: Option<u64>,
    /// The setting that decides the size most (`model`, `queries`), for messages.
    pub setting: &'static str,
    /// Its value.
    pub value: String,
    /// What the bytes are for, e.g. `74000000010 parameters per model with their gradients`.
    pub what: String,
}

/// A trainer prepared for one pool (see [`ShadowTrainer::session`]).
pub trait TrainingSession {
    /// As [`ShadowTrainer::train_group`], on the pool the session was prepared for.
    fn train_group(&mut self, jobs: &[ModelJob]) -> Result<Vec<Array3<f32>>, TrainerError>;

    /// The training trajectories of the last [`TrainingSession::train_group`]'s models, in
    /// job order: each model's logits on every pool sample's plain input after each of its
    /// checkpoint epochs, N x T x C. `None` (the default) where the trainer records none; the
    /// run stores them as `trajectories/model_KKKKK.npy` beside the logits.
    fn take_trajectories(&mut self) -> Option<Vec<Array3<f32>>> {
        None
    }
}

/// Who produced a model's outputs: the trainer, and what else can change their last bits
/// without changing the plan (an engine, a device, CPU kernels, a version). Recorded beside
/// each model's logits file and gathered in `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Producer {
    /// The trainer or source, e.g. `memia-models BurnTrainer`.
    pub trainer: String,
    /// Named details, e.g. `engine = fused`, `device = Flex`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, String>,
}

impl Producer {
    /// A producer with no details.
    pub fn new(trainer: impl Into<String>) -> Self {
        Producer {
            trainer: trainer.into(),
            details: BTreeMap::new(),
        }
    }

    /// The same producer with one more detail.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }
}

impl std::fmt::Display for Producer {
    /// `memia-models BurnTrainer (device Flex, engine fused)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.trainer)?;
        if !self.details.is_empty() {
            let details: Vec<String> = self
                .details
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            write!(f, " ({})", details.join(", "))?;
        }
        Ok(())
    }
}

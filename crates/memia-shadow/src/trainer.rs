//! The trait a model family implements to be trained by the scheduler.

use memia_data::Dataset;
use ndarray::Array3;

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

/// A model family and its training procedure, as the scheduler sees it.
///
/// Implementations must be deterministic: the same jobs on the same pool give the same outputs,
/// bit for bit on CPU, whatever the grouping.
pub trait ShadowTrainer: Send + Sync {
    /// The model and training settings, as JSON; they enter the plan and its hash.
    fn config(&self) -> serde_json::Value;

    /// Queries per sample in the outputs: 1 for the plain input, more with augmentations.
    fn queries(&self) -> usize;

    /// How many models to train together in one pass (default 1).
    fn group_size(&self) -> usize {
        1
    }

    /// Trains each job's model on its training set and returns, per job and in order, its
    /// logits on every pool sample: N x A x C.
    fn train_group(
        &self,
        pool: &dyn Dataset,
        jobs: &[ModelJob],
    ) -> Result<Vec<Array3<f32>>, String>;
}

//! What a plan records of memia's own models, without Burn: the settings of the model zoo's
//! trainer ([`ZooSettings`]), so that a build without the `burn` feature (memia for Python's
//! default wheel, say) plans and opens runs of memia's models that another build trains.

use memia_data::Dataset;
use memia_shadow::{MemoryNeed, ModelJob, ShadowTrainer, TrainerError};
use ndarray::Array3;

use crate::augment::Query;
use crate::config::{ModelConfig, Optimizer, TrainingConfig};

/// The model zoo's trainer settings: what enters a plan (the network, the training procedure,
/// the queries) and the group size. It plans as the Burn trainer does, byte for byte (the
/// Burn trainer's [`ShadowTrainer::config`] is this one's), and trains nothing: its
/// `train_group` says which feature trains.
#[derive(Debug, Clone, PartialEq)]
pub struct ZooSettings {
    /// The network.
    pub model: ModelConfig,
    /// The training procedure.
    pub training: TrainingConfig,
    /// Models trained together in one pass.
    pub group_size: usize,
    /// Inputs the trained models are queried on.
    pub queries: Vec<Query>,
}

impl ShadowTrainer for ZooSettings {
    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "model": self.model, "training": self.training, "queries": self.queries })
    }

    fn queries(&self) -> usize {
        self.queries.len()
    }

    fn group_size(&self) -> usize {
        self.group_size
    }

    /// Per model: the parameters with their gradients and optimiser state, one batch's
    /// activations (kept for the backward pass), the predictions and logits on the whole
    /// pool; once: the pool's features as the models read them (a copy per transformed
    /// query). A lower bound of what the ensemble allocates, so that what it refuses could not
    /// have trained.
    fn memory_needed(&self, pool: &dyn Dataset, models: usize) -> MemoryNeed {
        let (n, classes) = (pool.len() as u64, pool.classes() as u64);
        let a = self.queries.len() as u64;
        let footprint = self.model.footprint(pool.feature_shape(), pool.classes());
        let states: u64 = match self.training.optimizer {
            Optimizer::Sgd { momentum: 0.0 } => 0,
            Optimizer::Sgd { .. } => 1,
            Optimizer::Adam { .. } => 2,
        };
        // The configured batch, not capped at the pool: the fused kernels size their buffers
        // by it (`batch_size = 100000000000` aborted there).
        let batch = self.training.batch_size as u64;
        let inputs = pool
            .feature_shape()
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
        let copies = 1 + self.queries.iter().filter(|&&q| q != Query::Plain).count() as u64;
        // With a trajectory, each checkpoint keeps a copy of the parameters and its logits.
        let checkpoints = self.training.checkpoints().len() as u64;
        let bytes = footprint.and_then(|f| {
            let per_model = f
                .parameters
                .checked_mul(2 + states + checkpoints)?
                .checked_add(batch.checked_mul(f.activations)?)?
                .checked_add(
                    n.checked_mul(a + checkpoints)?
                        .checked_mul(classes)?
                        .checked_mul(2)?,
                )?;
            let shared = n.checked_mul(inputs?)?.checked_mul(copies)?;
            (models as u64)
                .checked_mul(per_model)?
                .checked_add(shared)?
                .checked_mul(4)
        });
        let parameters = footprint.map_or("more than 2^64".into(), |f| f.parameters.to_string());
        let (copies_note, logits_note) = match checkpoints {
            0 => (String::new(), String::new()),
            t => (
                format!(" and {t} checkpoint copies"),
                format!(" and at {t} checkpoints"),
            ),
        };
        MemoryNeed {
            bytes,
            setting: "model",
            value: serde_json::to_string(&self.model).unwrap_or_default(),
            what: format!(
                "{parameters} parameters per model with their gradients and optimizer state{copies_note}, \
                 the activations of a batch of {batch}, the logits of {n} samples x {a} queries \
                 x {classes} classes{logits_note}, float32"
            ),
        }
    }

    fn train_group(
        &self,
        _pool: &dyn Dataset,
        _jobs: &[ModelJob],
    ) -> Result<Vec<Array3<f32>>, TrainerError> {
        Err(
            "training memia's own models needs memia-models' `burn` feature; this build \
             plans and opens their runs only"
                .into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MlpConfig;

    #[test]
    fn checkpoints_are_counted_in_the_memory_needed() {
        let pool = memia_data::embedded::digits();
        let settings = |checkpoint_every| ZooSettings {
            model: MlpConfig::mlp(64).into(),
            training: TrainingConfig {
                epochs: 6,
                checkpoint_every,
                ..Default::default()
            },
            group_size: 4,
            queries: vec![Query::Plain],
        };
        let plain = settings(None).memory_needed(&pool, 4);
        let three = settings(Some(2)).memory_needed(&pool, 4);
        let (plain_bytes, three_bytes) = (plain.bytes.unwrap(), three.bytes.unwrap());
        // Per model and checkpoint: a copy of the parameters (the digits' 64 inputs, 64
        // hidden, 10 classes) and the pool's 1,797 x 10 logits, counted twice as the final
        // logits are (predictions and logits), float32.
        let parameters = 64 * 64 + 64 + 64 * 10 + 10;
        let expected = 4 * 3 * (parameters + 1797 * 10 * 2) * 4;
        assert_eq!(three_bytes - plain_bytes, expected as u64);
        assert!(three.what.contains("3 checkpoint copies"), "{}", three.what);
        assert!(!plain.what.contains("checkpoint"), "{}", plain.what);
    }
}

//! The scheduler's view of the model zoo: a [`ShadowTrainer`] that trains groups of models as
//! one [`Ensemble`] on a Burn device.

use burn::tensor::Device;
use memia_data::Dataset;
use memia_shadow::{ModelJob, ShadowTrainer};
use ndarray::Array3;

use crate::augment::{Query, apply_query};
use crate::ensemble::{Engine, Ensemble, Member, ModelConfig, TrainingConfig};

/// Trains shadow models of one architecture, `group_size` at a time, on `device`.
///
/// Neither the device nor the engine is part of the plan: the same plan may be trained on any
/// device (outputs are bit-identical across runs on one machine with the CPU backends, and equal
/// within float tolerance across devices and engines).
#[derive(Debug, Clone)]
pub struct BurnTrainer {
    /// The network.
    pub model: ModelConfig,
    /// The training procedure.
    pub training: TrainingConfig,
    /// Models trained together in one pass.
    pub group_size: usize,
    /// Inputs the trained models are queried on (default: the plain input only); the logits
    /// of each query form the A axis of the outputs.
    pub queries: Vec<Query>,
    /// Where to train.
    pub device: Device,
    /// Which code trains (default: the fused CPU kernels where they apply).
    pub engine: Engine,
}

impl BurnTrainer {
    /// A trainer on Burn's default device (Flex on CPU unless `BURN_DEVICE` says otherwise).
    pub fn new(model: impl Into<ModelConfig>, training: TrainingConfig, group_size: usize) -> Self {
        BurnTrainer {
            model: model.into(),
            training,
            group_size: group_size.max(1),
            queries: vec![Query::Plain],
            device: Device::default(),
            engine: Engine::Auto,
        }
    }

    /// Queries the models under these input transformations (for example plain and mirrored).
    pub fn with_queries(mut self, queries: Vec<Query>) -> Self {
        self.queries = queries;
        self
    }

    /// The same trainer on another device.
    pub fn on(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    /// The same trainer with another engine.
    pub fn with_engine(mut self, engine: Engine) -> Self {
        self.engine = engine;
        self
    }

    /// Whether it trains with memia's fused CPU kernels (else Burn's operations on the device).
    pub fn uses_fused_kernels(&self) -> bool {
        self.engine.uses_fused_kernels(&self.model, &self.device)
    }
}

impl ShadowTrainer for BurnTrainer {
    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "model": self.model, "training": self.training, "queries": self.queries })
    }

    fn queries(&self) -> usize {
        self.queries.len()
    }

    fn group_size(&self) -> usize {
        self.group_size
    }

    fn train_group(
        &self,
        pool: &dyn Dataset,
        jobs: &[ModelJob],
    ) -> Result<Vec<Array3<f32>>, String> {
        let (n, classes) = (pool.len(), pool.classes());
        let features = pool.to_row_major();
        let labels = pool.labels();
        let seeds: Vec<u64> = jobs.iter().map(|j| j.seed).collect();
        let mut ensemble = Ensemble::init(
            &self.model,
            pool.feature_shape(),
            classes,
            &seeds,
            &self.device,
        )?
        .with_engine(self.engine);
        let members: Vec<Member> = jobs
            .iter()
            .map(|j| Member {
                seed: j.seed,
                train: j.train.clone(),
            })
            .collect();
        ensemble.train(&features, &labels, &members, &self.training)?;
        if self.queries.is_empty() {
            return Err("at least one query is needed".into());
        }
        // [query][model][sample][class] -> per model N x A x C.
        let per_query: Vec<Vec<f32>> = self
            .queries
            .iter()
            .map(|&q| ensemble.predict(&apply_query(&features, pool.feature_shape(), q)?))
            .collect::<Result<_, String>>()?;
        let a = self.queries.len();
        Ok((0..jobs.len())
            .map(|m| {
                Array3::from_shape_fn((n, a, classes), |(i, q, c)| {
                    per_query[q][(m * n + i) * classes + c]
                })
            })
            .collect())
    }
}

//! The scheduler's view of the model zoo: a [`ShadowTrainer`] that trains groups of models as
//! one [`Ensemble`] on a Burn device, and what it records as each model's producer.

use burn::tensor::Device;
use memia_data::Dataset;
use memia_shadow::{
    MemoryLimit, MemoryNeed, ModelJob, Producer, ShadowTrainer, TrainerError, TrainingSession,
};
use ndarray::Array3;

use crate::augment::{Query, apply_query};
use crate::config::{Engine, Member, ModelConfig, TrainingConfig};
use crate::ensemble::Ensemble;
use crate::error::{ModelError, Result, invalid_setting};

/// Trains shadow models of one architecture, `group_size` at a time, on `device`.
///
/// Neither the device nor the engine is part of the plan: the same plan may be trained on any
/// device, and every model file records its [`Producer`] (engine, device, CPU kernels, memia
/// version), so that a run that mixes them says so.
///
/// **Determinism contract** (what is bit for bit, and what only within float tolerance):
///
/// | engine (who runs it) | same models, same groups | other groups or shards | across producers |
/// |---|---|---|---|
/// | fused CPU kernels (`Engine::Auto` on Flex: MLP, logistic regression, LeNet-style CNN, ResNet) | identical | identical: each model's arithmetic runs alone | equal within float tolerance (1e-4 on parameters, tested against Burn's engine); the convolution kernels give the same bits with AVX-512 and AVX2 (tested), the dense layers' `gemm` kernels and the portable ones (no FMA) may round differently |
/// | Burn's operations (`Engine::Burn`, other devices) | identical on the CPU backends | within float tolerance (1e-4 MLP, 1e-3 ResNet, tested): batched products sum in another order | within float tolerance (tested on NdArray and wgpu against Flex) |
///
/// So a run trained by one producer is reproducible bit for bit; shards of a fused run equal
/// the single run byte for byte; shards of a Burn-engine run differ from it in the last bits.
///
/// ```
/// use memia_data::embedded;
/// use memia_models::{BurnTrainer, MlpConfig, TrainingConfig};
/// use memia_shadow::{InclusionScheme, Plan, RunDir, ShadowTrainer};
///
/// let pool = embedded::digits();
/// let training = TrainingConfig { epochs: 2, ..Default::default() };
/// let trainer = BurnTrainer::new(MlpConfig::mlp(16), training, 4);
/// let plan = Plan::new(&pool, 4, InclusionScheme::Balanced { ratio: 0.5 }, 0, &trainer)?;
/// let dir = tempfile::tempdir().unwrap();
/// let run = RunDir::create(dir.path().join("run"), &plan)?;
/// run.train(&trainer, &pool, 0..4, |_| {})?;
/// assert_eq!(run.logits()?.models(), 4);
/// let producers = run.producers()?;                  // one producer: the fused kernels
/// assert_eq!(producers[0].producer, Some(trainer.producer()));
/// # Ok::<(), memia_shadow::ShadowError>(())
/// ```
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

    /// What a plan records of it (and what it needs in memory): its settings without the
    /// device and engine, which a build without Burn has too.
    pub fn settings(&self) -> crate::ZooSettings {
        crate::ZooSettings {
            model: self.model.clone(),
            training: self.training,
            group_size: self.group_size,
            queries: self.queries.clone(),
        }
    }

    /// Whether it trains with memia's fused CPU kernels (else Burn's operations on the device).
    pub fn uses_fused_kernels(&self) -> bool {
        self.engine.uses_fused_kernels(&self.model, &self.device)
    }

    /// Checks the settings that do not depend on the pool: the architecture, the training
    /// procedure, at least one query.
    pub fn check(&self) -> Result<()> {
        self.model.check()?;
        self.training.check()?;
        if self.queries.is_empty() {
            return Err(invalid_setting("queries", "at least one query is needed"));
        }
        Ok(())
    }

    /// Checks everything that can be checked before training on `pool`: [`BurnTrainer::check`],
    /// the architecture on the pool's samples and classes, and the augmentation and queries
    /// against the samples' shape. A plan should pass this before it is made.
    pub fn check_pool(&self, pool: &dyn Dataset) -> Result<()> {
        self.check()?;
        // One model must fit in the memory available before its layers are even listed; the
        // scheduler checks the group size where it knows it (plans and training calls).
        let limit = MemoryLimit::detect().map_err(|e| ModelError::Memory(Box::new(e)))?;
        memia_shadow::memory::check_training(self, pool, 1, &limit)
            .map_err(|e| ModelError::Memory(Box::new(e)))?;
        let shape = pool.feature_shape();
        Ensemble::check_architecture(&self.model, shape, pool.classes())?;
        self.training.augmentation.check(shape)?;
        self.queries.iter().try_for_each(|q| q.check(shape))
    }

    /// Prepares training on `pool`: its features in row-major order and transformed by every
    /// query, once for all the groups to come.
    pub fn prepare<'a>(&'a self, pool: &'a dyn Dataset) -> Result<PreparedPool<'a>> {
        self.check_pool(pool)?;
        let features = pool.to_row_major();
        let queried = self
            .queries
            .iter()
            .map(|&q| match q {
                Query::Plain => Ok(None),
                _ => apply_query(&features, pool.feature_shape(), q).map(Some),
            })
            .collect::<Result<_>>()?;
        Ok(PreparedPool {
            trainer: self,
            pool,
            labels: pool.labels(),
            features,
            queried,
            trajectories: None,
        })
    }
}

/// The name of the CPU kernels the `gemm` crate selects at run time on this machine (they
/// round differently, so they are part of a model's producer).
pub fn cpu_kernels() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            "x86-64 AVX-512"
        } else if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
        {
            "x86-64 AVX2+FMA"
        } else {
            "x86-64 SSE2"
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        "aarch64 NEON"
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        std::env::consts::ARCH
    }
}

/// A pool prepared for a [`BurnTrainer`] (see [`BurnTrainer::prepare`]): trains groups of
/// models without converting the pool again.
pub struct PreparedPool<'a> {
    trainer: &'a BurnTrainer,
    pool: &'a dyn Dataset,
    features: Vec<f32>,
    labels: Vec<u32>,
    /// Per query, the transformed features (`None`: the plain features).
    queried: Vec<Option<Vec<f32>>>,
    /// The trajectories of the last group trained as a session, per model N x T x C.
    trajectories: Option<Vec<Array3<f32>>>,
}

impl PreparedPool<'_> {
    /// Trains each job's model and returns its logits on every pool sample, N x A x C.
    pub fn train(&self, jobs: &[ModelJob]) -> Result<Vec<Array3<f32>>> {
        self.outputs(&self.trained(jobs)?)
    }

    /// Each model's training trajectory (see [`Ensemble::trajectory`]) as N x T x C arrays.
    fn trajectories(&self, ensemble: &Ensemble) -> Option<Vec<Array3<f32>>> {
        let (n, classes) = (self.pool.len(), self.pool.classes());
        // [model][checkpoint][sample][class] -> per model N x T x C.
        let (checkpoints, values) = ensemble.trajectory()?;
        Some(
            (0..ensemble.models())
                .map(|m| {
                    Array3::from_shape_fn((n, checkpoints, classes), |(i, t, c)| {
                        values[((m * checkpoints + t) * n + i) * classes + c]
                    })
                })
                .collect(),
        )
    }

    /// Each of the trained `ensemble`'s models' logits on every pool sample, N x A x C.
    fn outputs(&self, ensemble: &Ensemble) -> Result<Vec<Array3<f32>>> {
        let (n, classes) = (self.pool.len(), self.pool.classes());
        // [query][model][sample][class] -> per model N x A x C.
        let per_query: Vec<Vec<f32>> = self
            .queried
            .iter()
            .map(|q| ensemble.predict(q.as_deref().unwrap_or(&self.features)))
            .collect::<Result<_>>()?;
        let a = per_query.len();
        Ok((0..ensemble.models())
            .map(|m| {
                Array3::from_shape_fn((n, a, classes), |(i, q, c)| {
                    per_query[q][(m * n + i) * classes + c]
                })
            })
            .collect())
    }

    /// The ensemble of the jobs' models, trained.
    fn trained(&self, jobs: &[ModelJob]) -> Result<Ensemble> {
        let t = self.trainer;
        let classes = self.pool.classes();
        let seeds: Vec<u64> = jobs.iter().map(|j| j.seed).collect();
        let mut ensemble = Ensemble::init(
            &t.model,
            self.pool.feature_shape(),
            classes,
            &seeds,
            &t.device,
        )?
        .with_engine(t.engine);
        let members: Vec<Member> = jobs
            .iter()
            .map(|j| Member {
                seed: j.seed,
                train: j.train.clone(),
            })
            .collect();
        ensemble.train(&self.features, &self.labels, &members, &t.training)?;
        Ok(ensemble)
    }
}

impl TrainingSession for PreparedPool<'_> {
    fn train_group(&mut self, jobs: &[ModelJob]) -> Result<Vec<Array3<f32>>, TrainerError> {
        let ensemble = self.trained(jobs)?;
        self.trajectories = self.trajectories(&ensemble);
        Ok(self.outputs(&ensemble)?)
    }

    fn take_trajectories(&mut self) -> Option<Vec<Array3<f32>>> {
        self.trajectories.take()
    }
}

impl ShadowTrainer for BurnTrainer {
    fn config(&self) -> serde_json::Value {
        self.settings().config()
    }

    fn queries(&self) -> usize {
        self.queries.len()
    }

    fn memory_needed(&self, pool: &dyn Dataset, models: usize) -> MemoryNeed {
        self.settings().memory_needed(pool, models)
    }

    fn group_size(&self) -> usize {
        self.group_size
    }

    /// `memia-models BurnTrainer` with its engine (`fused` or `burn`), device, CPU kernels and
    /// memia version.
    fn producer(&self) -> Producer {
        let engine = if self.uses_fused_kernels() {
            "fused"
        } else {
            "burn"
        };
        Producer::new("memia-models BurnTrainer")
            .with("engine", engine)
            .with("device", format!("{:?}", self.device))
            .with("cpu_kernels", cpu_kernels())
            .with("memia", env!("CARGO_PKG_VERSION"))
    }

    /// Prepares the pool and trains one group (a scheduler prepares once per run instead).
    fn train_group(
        &self,
        pool: &dyn Dataset,
        jobs: &[ModelJob],
    ) -> Result<Vec<Array3<f32>>, TrainerError> {
        Ok(self.prepare(pool)?.train(jobs)?)
    }

    fn session<'a>(
        &'a self,
        pool: &'a dyn Dataset,
    ) -> Result<Option<Box<dyn TrainingSession + 'a>>, TrainerError> {
        Ok(Some(Box::new(self.prepare(pool)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CnnConfig, MlpConfig, ResNetConfig};
    use memia_data::embedded;

    /// The producer record names the engine that trained. For every architecture, engine and
    /// device of this build, the trainer's decision (`uses_fused_kernels`, the producer's
    /// `engine`) is the ensemble's, and after training the parameters are where the engine
    /// that ran keeps them (on the host: the fused kernels; in Burn tensors: Burn's engine).
    #[test]
    fn the_producer_names_the_engine_that_ran() {
        let pool = embedded::digits();
        #[allow(unused_mut)]
        let mut devices = vec![Device::flex()];
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)]
        devices.push(Device::ndarray());
        let models: [ModelConfig; 4] = [
            MlpConfig::mlp(8).into(),
            MlpConfig::logistic_regression().into(),
            CnnConfig {
                channels: vec![2],
                kernel: 3,
                hidden: vec![],
            }
            .into(),
            ResNetConfig {
                widths: vec![2],
                blocks_per_stage: 1,
            }
            .into(),
        ];
        let training = TrainingConfig {
            epochs: 1,
            batch_size: 64,
            ..Default::default()
        };
        let jobs: Vec<ModelJob> = (0..2)
            .map(|m| ModelJob {
                index: m,
                seed: m as u64,
                train: (m..200).step_by(2).collect(),
            })
            .collect();
        for model in models {
            for engine in [Engine::Auto, Engine::Burn] {
                for device in &devices {
                    let trainer = BurnTrainer::new(model.clone(), training, 2)
                        .on(device.clone())
                        .with_engine(engine);
                    let ensemble = trainer.prepare(&pool).unwrap().trained(&jobs).unwrap();
                    let ran_fused = ensemble.parameters_on_host();
                    let what = format!("{model:?} {engine} {device:?}");
                    assert_eq!(
                        ran_fused,
                        engine == Engine::Auto && *device == Device::flex(),
                        "{what}"
                    );
                    assert_eq!(trainer.uses_fused_kernels(), ran_fused, "{what}");
                    assert_eq!(ensemble.uses_fused_kernels(), ran_fused, "{what}");
                    let recorded = trainer.producer().details["engine"].clone();
                    assert_eq!(recorded, if ran_fused { "fused" } else { "burn" }, "{what}");
                }
            }
        }
    }
}

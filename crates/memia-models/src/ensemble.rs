//! The ensemble: G models of one architecture (MLP, logistic regression, CNN or ResNet), trained
//! together in one pass, each as if it were trained alone. This module builds the network
//! ([`Network`]) and the fused kernels' plan of it, draws every model's initial weights from its
//! own seeded stream, checks the arguments of training and inference, decides once which engine
//! runs ([`Engine::uses_fused_kernels`]) and hands the work to it: memia's fused CPU kernels
//! ([`crate::fused`], [`crate::fused_cnn`], [`crate::fused_resnet`]) on the Flex device, Burn's
//! operations ([`crate::burn_engine`]) otherwise (other devices, `Engine::Burn`). The parameters
//! stay where the engine that runs keeps them: on the host between calls of the fused
//! kernels, which train them in place.

use burn::tensor::Device;

use crate::burn_engine::Stacked;
use crate::config::{Engine, Family, Member, ModelConfig, TrainingConfig};
use crate::error::{Result, architecture, invalid_data, invalid_setting};
use crate::fused;
use crate::fused_cnn::{self, Cnn};
use crate::fused_resnet::{self, ResNetShape};
use crate::network::Network;
use crate::params::HostParams;

impl Engine {
    /// Whether this engine runs memia's fused CPU kernels for a model on `device`: what
    /// [`Ensemble::uses_fused_kernels`] says of every ensemble of that model, and what a
    /// trainer's producer records.
    pub fn uses_fused_kernels(self, model: &ModelConfig, device: &Device) -> bool {
        self.runs_fused(model.family(), device)
    }

    /// The one decision of which code runs a network: the fused kernels for `Engine::Auto` on
    /// the Flex device, for every family that has them (all do: a family added without them
    /// answers false here), Burn's operations otherwise. The ensemble builds its fused plan
    /// whatever the engine and refuses a network the kernels would refuse, so that this
    /// decision never meets a network the fused kernels cannot run.
    fn runs_fused(self, family: Family, device: &Device) -> bool {
        let has_kernels = match family {
            Family::Dense | Family::Cnn | Family::ResNet => true,
        };
        self == Engine::Auto && has_kernels && *device == Device::flex()
    }
}

/// What the fused CPU kernels run, made from the [`Network`] and checked when the ensemble is
/// built (for every engine, so that the engine can change without a new refusal).
#[derive(Debug, Clone)]
enum FusedNet {
    /// Dense layers of these sizes, input first.
    Dense(Vec<usize>),
    /// A LeNet-style CNN.
    Cnn(Cnn),
    /// A small ResNet.
    ResNet(ResNetShape),
}

impl FusedNet {
    fn new(network: &Network) -> Result<Self> {
        let (convs, dense) = (network.convs(), network.dense_sizes());
        if convs.is_empty() {
            // An MLP, or a CNN without convolution stages.
            return Ok(FusedNet::Dense(dense.to_vec()));
        }
        match (network.family(), network.input_shape()) {
            (Family::ResNet, &[c, h, w]) => {
                let classes = network.classes();
                let shape = ResNetShape::checked(convs, network.blocks(), [c, h, w], classes)?;
                Ok(FusedNet::ResNet(shape))
            }
            (Family::Cnn, _) => Ok(FusedNet::Cnn(Cnn::new(convs, dense)?)),
            (family, shape) => Err(architecture(format!(
                "a {family:?} network with convolutions on samples of shape {shape:?}"
            ))),
        }
    }
}

/// Where an ensemble's parameters are between calls: on the host while the fused kernels run
/// it (they train them in place), as stacked Burn tensors once Burn's engine has trained it.
/// Each engine takes them from the other's place when it finds them there (an ensemble whose
/// engine was changed): a copy of the same values.
#[derive(Debug, Clone)]
enum Params {
    Host(Vec<HostParams>),
    Burn(Stacked),
}

impl Params {
    /// The parameters on the host, moved there first if Burn's engine holds them.
    fn host(&mut self) -> Result<&mut [HostParams]> {
        if let Params::Burn(stacked) = self {
            *self = Params::Host(stacked.to_host()?);
        }
        match self {
            Params::Host(models) => Ok(models),
            Params::Burn(_) => unreachable!("moved to the host above"),
        }
    }

    /// The parameters as Burn tensors on `device`, stacked first if they are on the host.
    fn burn(&mut self, network: &Network, device: &Device) -> &mut Stacked {
        if let Params::Host(models) = self {
            *self = Params::Burn(Stacked::from_host(network, models, device));
        }
        match self {
            Params::Burn(stacked) => stacked,
            Params::Host(_) => unreachable!("stacked above"),
        }
    }
}

/// G models of one architecture, trained and queried together.
///
/// ```
/// use memia_models::{Device, Ensemble, Member, MlpConfig, TrainingConfig};
///
/// // Four samples of two features, two classes; two logistic regressions on halves of them.
/// let features = [0.0, 1.0, 1.0, 0.0, 0.1, 0.9, 0.9, 0.1];
/// let labels = [0, 1, 0, 1];
/// let mut ensemble = Ensemble::init(
///     &MlpConfig::logistic_regression().into(), &[2], 2, &[7, 8], &Device::flex())?;
/// let members = [
///     Member { seed: 7, train: vec![0, 1] },
///     Member { seed: 8, train: vec![2, 3] },
/// ];
/// let config = TrainingConfig { epochs: 20, batch_size: 2, ..Default::default() };
/// ensemble.train(&features, &labels, &members, &config)?;
/// let logits = ensemble.predict(&features)?;      // [2 models, 4 samples, 2 classes]
/// assert_eq!(logits.len(), 2 * 4 * 2);
/// # Ok::<(), memia_models::ModelError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Ensemble {
    network: Network,
    fused: FusedNet,
    params: Params,
    device: Device,
    engine: Engine,
    /// The last [`Ensemble::train`]'s trajectory: `[G, T, n, C]` logits, row-major.
    trajectory: Option<(usize, Vec<f32>)>,
}

impl Ensemble {
    /// Initialises one model per seed ([`Network::new`] on `config`, `input_shape` and
    /// `classes`): weights and biases uniform in `+-1/sqrt(fan_in)` (as PyTorch's `nn.Linear`
    /// and `nn.Conv2d`), drawn on the host from each model's own stream so that they do not
    /// depend on the group or the backend. `input_shape` is one sample's shape (`[C, H, W]` for
    /// a CNN; an MLP flattens any shape).
    pub fn init(
        config: &ModelConfig,
        input_shape: &[usize],
        classes: usize,
        seeds: &[u64],
        device: &Device,
    ) -> Result<Self> {
        if seeds.is_empty() {
            return Err(invalid_setting(
                "seeds",
                "an ensemble needs at least one model (no seed given)",
            ));
        }
        let (network, fused) = Self::build(config, input_shape, classes)?;
        let models = seeds
            .iter()
            .map(|&seed| HostParams::init(&network, seed))
            .collect::<Result<_>>()?;
        Ok(Ensemble {
            network,
            fused,
            params: Params::Host(models),
            device: device.clone(),
            engine: Engine::Auto,
            trajectory: None,
        })
    }

    /// The network and the fused kernels' plan of it, both checked.
    fn build(
        config: &ModelConfig,
        input_shape: &[usize],
        classes: usize,
    ) -> Result<(Network, FusedNet)> {
        let network = Network::new(config, input_shape, classes)?;
        let fused = FusedNet::new(&network)?;
        Ok((network, fused))
    }

    /// Checks, without drawing any parameter, that `config` can be built on samples of
    /// `input_shape` with `classes` classes: what [`Ensemble::init`] would refuse.
    pub fn check_architecture(
        config: &ModelConfig,
        input_shape: &[usize],
        classes: usize,
    ) -> Result<()> {
        Self::build(config, input_shape, classes).map(drop)
    }

    /// Number of models G.
    pub fn models(&self) -> usize {
        match &self.params {
            Params::Host(models) => models.len(),
            Params::Burn(stacked) => stacked.models(),
        }
    }

    /// The network each model is.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// The same ensemble, trained and queried by `engine`.
    pub fn with_engine(mut self, engine: Engine) -> Self {
        self.engine = engine;
        self
    }

    /// Whether [`Ensemble::train`] and [`Ensemble::predict`] run memia's fused CPU kernels
    /// (otherwise Burn's operations on the device): [`Engine::uses_fused_kernels`] of its
    /// network's family, engine and device.
    pub fn uses_fused_kernels(&self) -> bool {
        self.engine.runs_fused(self.network.family(), &self.device)
    }

    /// Trains model m on `members[m]`'s rows of `features` (n x d, row-major) with `labels`.
    /// The settings, the members and the data are checked first; nothing trains if any is wrong.
    pub fn train(
        &mut self,
        features: &[f32],
        labels: &[u32],
        members: &[Member],
        config: &TrainingConfig,
    ) -> Result<()> {
        self.trajectory = None;
        let (g, d, classes) = (self.models(), self.network.inputs(), self.network.classes());
        if members.len() != g {
            return Err(invalid_data(
                "members",
                format!("{} members for {g} models", members.len()),
            ));
        }
        config.check()?;
        if config.checkpoint_every.is_some() && !self.uses_fused_kernels() {
            return Err(invalid_setting(
                "checkpoint_every",
                format!(
                    "training trajectories are recorded by memia's fused kernels (engine auto \
                     on the Flex device); this ensemble runs on {:?} with the {} engine",
                    self.device, self.engine
                ),
            ));
        }
        if let Some(dp) = &config.dp {
            let family = self.network.family();
            if !self.uses_fused_kernels() || family == Family::ResNet {
                return Err(invalid_setting(
                    "dp",
                    format!(
                        "DP-SGD runs on memia's fused kernels for MLPs, logistic regression and \
                         LeNet-style CNNs (engine auto on the Flex device); this ensemble is a \
                         {:?} network on \
                         {:?} with the {} engine",
                        self.network.family(),
                        self.device,
                        self.engine
                    ),
                ));
            }
            for member in members {
                dp.noise_for(member.train.len(), config)?;
            }
        }
        let n = labels.len();
        if features.len() != n * d {
            return Err(invalid_data(
                "features",
                format!(
                    "{} feature values for {n} labels of {d} features each",
                    features.len()
                ),
            ));
        }
        if let Some(i) = labels.iter().position(|&y| y as usize >= classes) {
            return Err(invalid_data(
                "labels",
                format!(
                    "label {} of sample {i} is out of range for {classes} classes",
                    labels[i]
                ),
            ));
        }
        for (m, member) in members.iter().enumerate() {
            if member.train.is_empty() {
                return Err(invalid_data(
                    "members",
                    format!("model {m} of the group has an empty training set"),
                ));
            }
            if let Some(&i) = member.train.iter().find(|&&i| i >= n) {
                return Err(invalid_data(
                    "members",
                    format!("model {m} of the group trains on row {i} of {n} samples"),
                ));
            }
        }
        let augment = config
            .augmentation
            .check(self.network.input_shape())?
            .map(|shape| (shape, &config.augmentation));
        if !self.uses_fused_kernels() {
            let stacked = self.params.burn(&self.network, &self.device);
            return stacked.train(features, labels, members, config, augment);
        }
        let models = self.params.host()?;
        let snapshots = match &self.fused {
            FusedNet::Dense(sizes) => {
                fused::train(models, sizes, features, labels, members, config, augment)
            }
            FusedNet::Cnn(cnn) => {
                fused_cnn::train(models, cnn, features, labels, members, config, augment)
            }
            FusedNet::ResNet(shape) => {
                fused_resnet::train(models, shape, features, labels, members, config, augment)
            }
        };
        let checkpoints = config.checkpoints().len();
        if checkpoints > 0 {
            // Model-major, checkpoint-minor: the predictions come out as [G, T, n, C].
            let flat: Vec<HostParams> = snapshots.into_iter().flatten().collect();
            self.trajectory = Some((checkpoints, self.predict_host(&flat, features)));
        }
        Ok(())
    }

    /// The logits of every model on every row of the features it was last trained on, after
    /// each checkpoint epoch of that training ([`TrainingConfig::checkpoints`]): `[G, T, n, C]`
    /// row-major, with T the number of checkpoints. `None` unless the last
    /// [`Ensemble::train`] had `checkpoint_every` set.
    pub fn trajectory(&self) -> Option<(usize, &[f32])> {
        self.trajectory.as_ref().map(|(t, v)| (*t, v.as_slice()))
    }

    /// Logits of every model on every row of `features` (n x d, row-major): `[G, n, C]`,
    /// row-major. A length that is not a whole number of rows is an error.
    pub fn predict(&self, features: &[f32]) -> Result<Vec<f32>> {
        let d = self.network.inputs();
        if !features.len().is_multiple_of(d) {
            return Err(invalid_data(
                "features",
                format!(
                    "{} feature values are not rows of {d} features",
                    features.len()
                ),
            ));
        }
        if !self.uses_fused_kernels() {
            return match &self.params {
                Params::Burn(stacked) => stacked.predict(features),
                Params::Host(models) => {
                    Stacked::from_host(&self.network, models, &self.device).predict(features)
                }
            };
        }
        self.on_host(|models| self.predict_host(models, features))
    }

    /// The fused kernels' logits of `models` (of this ensemble's network) on `features`.
    fn predict_host(&self, models: &[HostParams], features: &[f32]) -> Vec<f32> {
        match &self.fused {
            FusedNet::Dense(sizes) => fused::predict(models, sizes, features),
            FusedNet::Cnn(cnn) => fused_cnn::predict(models, cnn, features),
            FusedNet::ResNet(shape) => fused_resnet::predict(models, shape, features),
        }
    }

    /// Parameters of model `m`, layer by layer (weights `in x out` then bias `out`; a
    /// convolution's weights `out_channels x (in_channels * kernel^2)`), to compare models.
    pub fn parameters(&self, m: usize) -> Result<Vec<Vec<f32>>> {
        let g = self.models();
        if m >= g {
            return Err(invalid_data(
                "model",
                format!("{m} is not one of the ensemble's {g} models"),
            ));
        }
        self.on_host(|models| {
            models[m]
                .layers
                .iter()
                .flat_map(|(w, b)| [w.clone(), b.clone()])
                .collect()
        })
    }

    /// Whether the parameters are on the host: the fused kernels ran last (or nothing did).
    #[cfg(test)]
    pub(crate) fn parameters_on_host(&self) -> bool {
        matches!(self.params, Params::Host(_))
    }

    /// `f` of every model's parameters on the host (a copy when Burn's engine holds them).
    fn on_host<T>(&self, f: impl FnOnce(&[HostParams]) -> T) -> Result<T> {
        Ok(match &self.params {
            Params::Host(models) => f(models),
            Params::Burn(stacked) => f(&stacked.to_host()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CnnConfig, MlpConfig, ResNetConfig, TrainingConfig};
    use crate::{BurnTrainer, ModelError};

    /// The counts agree with the networks the ensemble builds: parameters with the values of
    /// one model, layers with its tensors (a weight and a bias each).
    #[test]
    fn footprints_count_what_the_ensemble_builds() {
        let cases: Vec<(ModelConfig, Vec<usize>)> = vec![
            (MlpConfig::mlp(16).into(), vec![1, 8, 8]),
            (MlpConfig::logistic_regression().into(), vec![64]),
            (CnnConfig::lenet().into(), vec![1, 12, 12]),
            (
                ResNetConfig {
                    widths: vec![4, 8],
                    blocks_per_stage: 2,
                }
                .into(),
                vec![3, 8, 8],
            ),
        ];
        for (config, shape) in cases {
            let f = config.footprint(&shape, 10).unwrap();
            let ensemble = Ensemble::init(&config, &shape, 10, &[1, 2], &Device::flex()).unwrap();
            let tensors = ensemble.parameters(1).unwrap();
            let values: usize = tensors.iter().map(Vec::len).sum();
            assert_eq!(f.parameters, values as u64, "{config:?}");
            assert_eq!(2 * f.layers, tensors.len() as u64, "{config:?}");
            assert!(f.activations >= 10, "{config:?}");
        }
    }

    /// `hidden = [1000000000]` was accepted by `plan` and aborted in `train`; a billion ResNet
    /// blocks, or a count that overflows, would abort when their layers were listed. Each is
    /// now refused by the trainer's check, before anything of that size is allocated.
    #[test]
    fn models_larger_than_memory_are_refused() {
        let pool = memia_data::embedded::digits();
        let training = TrainingConfig::default();
        let too_large = [
            ModelConfig::from(MlpConfig::mlp(1_000_000_000)),
            MlpConfig {
                hidden: vec![usize::MAX, 2],
            }
            .into(),
            CnnConfig {
                channels: vec![1 << 40],
                kernel: 3,
                hidden: vec![],
            }
            .into(),
            ResNetConfig {
                widths: vec![8],
                blocks_per_stage: 1_000_000_000_000,
            }
            .into(),
        ];
        for model in too_large {
            let trainer = BurnTrainer::new(model.clone(), training, 1);
            let err = trainer.check_pool(&pool).unwrap_err();
            assert!(matches!(err, ModelError::Memory(_)), "{model:?}: {err:?}");
            let text = err.to_string();
            assert!(
                text.starts_with("model = {") && text.contains("training one model"),
                "{text}"
            );
            assert!(
                text.contains("available") || text.contains("limit"),
                "{text}"
            );
        }
        let text = BurnTrainer::new(MlpConfig::mlp(1_000_000_000), training, 1)
            .check_pool(&pool)
            .unwrap_err()
            .to_string();
        // 64 x 10^9 + 10^9 x 10 weights and 10^9 + 10 biases: 75000000010 parameters, 4 bytes
        // each for the values, their gradients and momentum: at least 900 GB, 1.4 TB with the
        // activations of a batch of 128.
        assert!(
            text.contains("75000000010 parameters") && text.contains("1.4 TB"),
            "{text}"
        );
        // A batch size far beyond the pool: the fused kernels' buffers are sized by it.
        let huge_batch = TrainingConfig {
            batch_size: 100_000_000_000,
            ..training
        };
        let err = BurnTrainer::new(MlpConfig::mlp(128), huge_batch, 1)
            .check_pool(&pool)
            .unwrap_err()
            .to_string();
        assert!(err.contains("a batch of 100000000000"), "{err}");
        // Too many ResNet stages for the image: an architecture error, not a wrapped shift.
        let deep = ResNetConfig {
            widths: vec![4; 70],
            blocks_per_stage: 1,
        };
        let err = Ensemble::check_architecture(&deep.into(), &[1, 8, 8], 10).unwrap_err();
        assert!(err.to_string().contains("too small for 70 stages"), "{err}");
    }
}

//! The settings of a model zoo run: the architectures ([`ModelConfig`]), the training procedure
//! ([`TrainingConfig`] with its [`Optimizer`] and [`Schedule`]), what one model trains on
//! ([`Member`]) and which code trains it ([`Engine`]). Plain serialisable data: they enter a
//! plan's hash as JSON; the ensemble checks them when it trains.

use serde::{Deserialize, Serialize};

use crate::augment::Augmentation;
use crate::error::{ModelError, architecture, invalid_setting};

/// The network: a multilayer perceptron on flattened inputs. No hidden layer is multinomial
/// logistic regression.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpConfig {
    /// Widths of the hidden layers (ReLU between layers).
    pub hidden: Vec<usize>,
}

impl MlpConfig {
    /// Logistic regression (no hidden layer).
    pub fn logistic_regression() -> Self {
        MlpConfig { hidden: Vec::new() }
    }

    /// One hidden layer of `width` units.
    pub fn mlp(width: usize) -> Self {
        MlpConfig {
            hidden: vec![width],
        }
    }
}

/// A small convolutional network (LeNet-style) on `[C, H, W]` images: per entry of `channels`,
/// a `kernel` x `kernel` convolution with "same" padding, ReLU and 2 x 2 max pooling; then the
/// `hidden` dense layers (ReLU) and the output layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CnnConfig {
    /// Output channels of each convolution.
    pub channels: Vec<usize>,
    /// Odd kernel size.
    pub kernel: usize,
    /// Widths of the dense hidden layers.
    pub hidden: Vec<usize>,
}

impl CnnConfig {
    /// LeNet-style: convolutions of 6 and 16 channels, kernel 5, dense 120 and 84.
    pub fn lenet() -> Self {
        CnnConfig {
            channels: vec![6, 16],
            kernel: 5,
            hidden: vec![120, 84],
        }
    }
}

/// A small residual network on `[C, H, W]` images, without normalisation layers (so that each
/// model's computation stays independent of the others and of padding rows): a 3 x 3 stem,
/// then per stage `blocks_per_stage` residual blocks of two 3 x 3 convolutions (the first block
/// of every stage after the first halves the resolution, with a 1 x 1 projection shortcut),
/// global average pooling and the output layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResNetConfig {
    /// Channels of each stage.
    pub widths: Vec<usize>,
    /// Residual blocks per stage.
    pub blocks_per_stage: usize,
}

impl ResNetConfig {
    /// Three stages of 16, 32 and 64 channels, one block each (for 32 x 32 x 3 images).
    pub fn small() -> Self {
        ResNetConfig {
            widths: vec![16, 32, 64],
            blocks_per_stage: 1,
        }
    }
}

/// The architectures the ensemble trains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelConfig {
    /// A multilayer perceptron on flattened inputs.
    Mlp(MlpConfig),
    /// A convolutional network on images (grouped convolutions across the models).
    Cnn(CnnConfig),
    /// A small residual network on images.
    ResNet(ResNetConfig),
}

/// The kind of network a [`ModelConfig`] builds: what decides which code may run it (see
/// [`Engine`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Dense layers only: an MLP, or logistic regression.
    Dense,
    /// LeNet-style convolution stages, then dense layers.
    Cnn,
    /// A stem, residual blocks, global average pooling, the output layer.
    ResNet,
}

impl ModelConfig {
    /// The kind of network it builds.
    pub fn family(&self) -> Family {
        match self {
            ModelConfig::Mlp(_) => Family::Dense,
            ModelConfig::Cnn(_) => Family::Cnn,
            ModelConfig::ResNet(_) => Family::ResNet,
        }
    }

    /// Checks what does not depend on the data: no layer, stage or channel count of zero, an
    /// odd kernel, at least one ResNet stage and block. The sample shape is checked when the
    /// ensemble is built.
    pub fn check(&self) -> Result<(), ModelError> {
        let zero = |what: &str, widths: &[usize]| {
            if widths.contains(&0) {
                Err(architecture(format!(
                    "{what} {widths:?} include a width of 0"
                )))
            } else {
                Ok(())
            }
        };
        match self {
            ModelConfig::Mlp(mlp) => zero("hidden layers", &mlp.hidden),
            ModelConfig::Cnn(cnn) => {
                zero("channels", &cnn.channels)?;
                zero("hidden layers", &cnn.hidden)?;
                if cnn.kernel % 2 == 0 {
                    return Err(architecture(format!(
                        "kernel size {} must be odd (\"same\" padding)",
                        cnn.kernel
                    )));
                }
                Ok(())
            }
            ModelConfig::ResNet(net) => {
                if net.widths.is_empty() {
                    return Err(architecture("a ResNet needs at least one stage width"));
                }
                zero("stage widths", &net.widths)?;
                if net.blocks_per_stage == 0 {
                    return Err(architecture("a ResNet needs at least one block per stage"));
                }
                Ok(())
            }
        }
    }
}

impl From<ResNetConfig> for ModelConfig {
    fn from(c: ResNetConfig) -> Self {
        ModelConfig::ResNet(c)
    }
}

impl From<MlpConfig> for ModelConfig {
    fn from(c: MlpConfig) -> Self {
        ModelConfig::Mlp(c)
    }
}

impl From<CnnConfig> for ModelConfig {
    fn from(c: CnnConfig) -> Self {
        ModelConfig::Cnn(c)
    }
}

/// The optimiser (both in PyTorch's formulation; L2 weight decay added to the gradient).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Optimizer {
    /// SGD with (heavy-ball) momentum, no dampening.
    Sgd {
        /// Momentum factor (0 for plain SGD).
        momentum: f64,
    },
    /// Adam.
    Adam {
        /// First-moment decay.
        beta1: f64,
        /// Second-moment decay.
        beta2: f64,
        /// Added to the denominator.
        epsilon: f64,
    },
}

/// Learning-rate schedule over a model's own steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// The same rate throughout.
    Constant,
    /// Cosine decay from the rate to 0 over the model's training steps.
    Cosine,
}

/// How the models are trained. Fields left out of a configuration file take their
/// [`Default`] values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainingConfig {
    /// Passes over each model's training subset.
    pub epochs: usize,
    /// Samples per step.
    pub batch_size: usize,
    /// Step size.
    pub learning_rate: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// SGD with momentum or Adam.
    pub optimizer: Optimizer,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Training-time augmentation of image samples.
    pub augmentation: Augmentation,
    /// Differentially private training (DP-SGD); absent for ordinary training (and then left
    /// out of the plan's JSON, so that plans made before it keep their hash).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dp: Option<DpConfig>,
    /// Record every model's logits on the whole pool (plain input) after every this many
    /// epochs and after the last: its *training trajectory*, from which the cheap memorization estimators of
    /// `memia-memorization` work without extra models. Absent: none recorded (and left out of
    /// the plan's JSON, so that earlier plans keep their hash). Fused engine only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_every: Option<usize>,
}

/// DP-SGD (Abadi et al. 2016): every step samples each training sample independently with
/// probability `batch_size / n` (Poisson sampling, as the accountant assumes), clips each
/// sample's gradient to L2 norm `clip`, adds Gaussian noise of standard deviation
/// `noise_multiplier x clip` to their sum and divides by the expected batch size; the
/// optimiser then steps as usual. A model of n samples takes `epochs x ceil(n / batch_size)`
/// steps, and its epsilon is the RDP accountant's (`memia_dp::dp_sgd_epsilon`) for those
/// steps, that rate and `delta`.
///
/// In a configuration file: `dp = { clip = 1.0, noise_multiplier = 1.1, delta = 1e-5 }`, or
/// `target_epsilon = 4.0` in place of the noise multiplier, from which each model's noise is
/// derived (the least noise whose epsilon is at most the target, for its training-set size).
///
/// Built for memia's fused kernels (MLPs, logistic regression, LeNet-style CNNs on the Flex
/// device); ResNets and Burn's engine refuse it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpConfig {
    /// L2 norm each sample's gradient is clipped to.
    pub clip: f64,
    /// Noise standard deviation over `clip` (give this or `target_epsilon`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_multiplier: Option<f64>,
    /// The epsilon to reach (give this or `noise_multiplier`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_epsilon: Option<f64>,
    /// The delta of the (epsilon, delta) guarantee.
    pub delta: f64,
}

impl DpConfig {
    /// DP-SGD with this clip norm, noise multiplier and delta.
    pub fn with_noise(clip: f64, noise_multiplier: f64, delta: f64) -> Self {
        DpConfig {
            clip,
            noise_multiplier: Some(noise_multiplier),
            target_epsilon: None,
            delta,
        }
    }

    /// DP-SGD with this clip norm, the noise that reaches `epsilon` at `delta`.
    pub fn with_target_epsilon(clip: f64, epsilon: f64, delta: f64) -> Self {
        DpConfig {
            clip,
            noise_multiplier: None,
            target_epsilon: Some(epsilon),
            delta,
        }
    }

    /// Checks a positive finite clip norm, exactly one of a non-negative noise multiplier and
    /// a positive target epsilon, and delta in (0, 1).
    pub fn check(&self) -> Result<(), ModelError> {
        if !(self.clip.is_finite() && self.clip > 0.0) {
            return Err(invalid_setting(
                "dp.clip",
                format!("{} must be positive and finite", self.clip),
            ));
        }
        match (self.noise_multiplier, self.target_epsilon) {
            (Some(noise), None) if noise.is_finite() && noise >= 0.0 => {}
            (Some(noise), None) => {
                return Err(invalid_setting(
                    "dp.noise_multiplier",
                    format!("{noise} must be finite and not negative"),
                ));
            }
            (None, Some(eps)) if eps.is_finite() && eps > 0.0 => {}
            (None, Some(eps)) => {
                return Err(invalid_setting(
                    "dp.target_epsilon",
                    format!("{eps} must be positive and finite"),
                ));
            }
            _ => {
                return Err(invalid_setting(
                    "dp",
                    "give exactly one of noise_multiplier and target_epsilon",
                ));
            }
        }
        if !(self.delta > 0.0 && self.delta < 1.0) {
            return Err(invalid_setting(
                "dp.delta",
                format!("{} is not in (0, 1)", self.delta),
            ));
        }
        Ok(())
    }

    /// The steps and sampling rate of a model that trains on `n` samples: `epochs x ceil(n /
    /// batch_size)` steps at rate `min(batch_size / n, 1)`.
    pub fn steps_and_rate(n: usize, training: &TrainingConfig) -> (u64, f64) {
        let b = training.batch_size;
        let steps = (n.div_ceil(b.max(1)) * training.epochs) as u64;
        (steps, (b as f64 / n.max(1) as f64).min(1.0))
    }

    /// The noise multiplier of a model that trains on `n` samples: the configured one, or the
    /// least that reaches the target epsilon for its steps and rate.
    pub fn noise_for(&self, n: usize, training: &TrainingConfig) -> Result<f64, ModelError> {
        if let Some(noise) = self.noise_multiplier {
            return Ok(noise);
        }
        let target = self.target_epsilon.unwrap_or(f64::NAN);
        let (steps, rate) = Self::steps_and_rate(n, training);
        memia_dp::noise_for_epsilon(rate, steps, self.delta, target)
            .map_err(|e| invalid_setting("dp.target_epsilon", e.to_string()))
    }

    /// The (epsilon, delta) a model that trains on `n` samples with noise multiplier `noise`
    /// gets, from the RDP accountant.
    pub fn epsilon_for(
        &self,
        n: usize,
        noise: f64,
        training: &TrainingConfig,
    ) -> Result<memia_dp::Epsilon, ModelError> {
        let (steps, rate) = Self::steps_and_rate(n, training);
        memia_dp::dp_sgd_epsilon(rate, noise, steps, self.delta)
            .map_err(|e| invalid_setting("dp", e.to_string()))
    }
}

impl Default for TrainingConfig {
    fn default() -> Self {
        TrainingConfig {
            epochs: 10,
            batch_size: 128,
            learning_rate: 0.1,
            weight_decay: 5e-4,
            optimizer: Optimizer::Sgd { momentum: 0.9 },
            schedule: Schedule::Constant,
            augmentation: Augmentation::default(),
            dp: None,
            checkpoint_every: None,
        }
    }
}

impl TrainingConfig {
    /// The epochs (counted from 1) after which the trajectory is recorded: every
    /// `checkpoint_every`-th and the last (so that the trajectory ends at the final model),
    /// none without `checkpoint_every`.
    pub fn checkpoints(&self) -> Vec<usize> {
        match self.checkpoint_every {
            Some(every) if every > 0 => {
                let mut epochs: Vec<usize> = (every..=self.epochs).step_by(every).collect();
                if epochs.last() != Some(&self.epochs) {
                    epochs.push(self.epochs);
                }
                epochs
            }
            _ => Vec::new(),
        }
    }

    /// Checks every setting: positive epochs, batch size and learning rate, finite
    /// non-negative weight decay, momentum in [0, 1), Adam's betas in [0, 1) and a positive
    /// epsilon. Each error names the setting.
    pub fn check(&self) -> Result<(), ModelError> {
        if self.epochs == 0 {
            return Err(invalid_setting("epochs", "must be at least 1"));
        }
        if self.batch_size == 0 {
            return Err(invalid_setting("batch_size", "must be at least 1"));
        }
        let positive = |name, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(invalid_setting(
                    name,
                    format!("{v} must be positive and finite"),
                ))
            }
        };
        let fraction = |name, v: f64| {
            if (0.0..1.0).contains(&v) {
                Ok(())
            } else {
                Err(invalid_setting(name, format!("{v} is not in [0, 1)")))
            }
        };
        positive("learning_rate", self.learning_rate)?;
        if let Some(every) = self.checkpoint_every
            && !(1..=self.epochs).contains(&every)
        {
            return Err(invalid_setting(
                "checkpoint_every",
                format!("{every} is not between 1 and the {} epochs", self.epochs),
            ));
        }
        if let Some(dp) = &self.dp {
            dp.check()?;
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(invalid_setting(
                "weight_decay",
                format!("{} must be finite and not negative", self.weight_decay),
            ));
        }
        match self.optimizer {
            Optimizer::Sgd { momentum } => fraction("momentum", momentum),
            Optimizer::Adam {
                beta1,
                beta2,
                epsilon,
            } => {
                fraction("beta1", beta1)?;
                fraction("beta2", beta2)?;
                positive("epsilon", epsilon)
            }
        }
    }
}

/// The data one model trains on.
#[derive(Debug, Clone)]
pub struct Member {
    /// Seed of its initialisation and minibatch order.
    pub seed: u64,
    /// Row indices of its training samples in the feature matrix.
    pub train: Vec<usize>,
}

/// Which code trains and queries an ensemble.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    /// The fastest path for the device and model: memia's fused CPU kernels on the Flex device
    /// (every architecture: MLPs, logistic regression, LeNet-style CNNs, ResNets), Burn's
    /// tensor operations otherwise.
    #[default]
    Auto,
    /// Burn's tensor operations and autodiff on every device (to compare backends, or to check
    /// the fused kernels).
    Burn,
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Engine::Auto => "auto",
            Engine::Burn => "burn",
        })
    }
}

impl std::str::FromStr for Engine {
    type Err = ModelError;

    /// `auto` or `burn`.
    fn from_str(name: &str) -> Result<Self, ModelError> {
        match name {
            "auto" => Ok(Engine::Auto),
            "burn" => Ok(Engine::Burn),
            _ => Err(ModelError::UnknownEngine(name.to_string())),
        }
    }
}

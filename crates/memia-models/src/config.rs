//! The settings of a model zoo run: the architectures ([`ModelConfig`]), the training procedure
//! ([`TrainingConfig`] with its [`Optimizer`] and [`Schedule`]), what one model trains on
//! ([`Member`]) and which code trains it ([`Engine`]). Plain serialisable data: they enter a
//! plan's hash as JSON; the ensemble checks them when it trains.

use burn::tensor::Device;
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

    /// Layer sizes from input to output.
    pub fn sizes(&self, inputs: usize, classes: usize) -> Vec<usize> {
        std::iter::once(inputs)
            .chain(self.hidden.iter().copied())
            .chain(std::iter::once(classes))
            .collect()
    }

    /// Multiply-adds of one forward pass of one sample.
    pub fn forward_macs(&self, inputs: usize, classes: usize) -> usize {
        self.sizes(inputs, classes)
            .windows(2)
            .map(|w| w[0] * w[1])
            .sum()
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
    /// Multiply-adds of one sample's forward pass on `[c, h, w]` images with `classes`
    /// outputs: each "same" convolution `h w cout cin k^2` (pooling halves h and w after it),
    /// then the dense layers. The throughput figures count FLOPs as 2 per multiply-add.
    pub fn forward_macs(&self, [c, h, w]: [usize; 3], classes: usize) -> usize {
        let (mut c, mut h, mut w, mut macs) = (c, h, w, 0);
        for &out in &self.channels {
            macs += h * w * out * c * self.kernel * self.kernel;
            (c, h, w) = (out, h / 2, w / 2);
        }
        let mut width = c * h * w;
        for &next in self.hidden.iter().chain(std::iter::once(&classes)) {
            macs += width * next;
            width = next;
        }
        macs
    }

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
    /// Multiply-adds of one sample's forward pass on `[c, h, w]` images with `classes`
    /// outputs: the stem, each block's two 3 x 3 convolutions and projection (a strided
    /// convolution of "same" padding has `ceil(h / 2) x ceil(w / 2)` outputs), the output layer.
    pub fn forward_macs(&self, [c, h, w]: [usize; 3], classes: usize) -> usize {
        let first = self.widths.first().copied().unwrap_or(c);
        let (mut width, mut h, mut w) = (first, h, w);
        let mut macs = h * w * first * c * 9;
        for (stage, &out) in self.widths.iter().enumerate() {
            for block in 0..self.blocks_per_stage {
                let stride = if stage > 0 && block == 0 { 2 } else { 1 };
                (h, w) = ((h - 1) / stride + 1, (w - 1) / stride + 1);
                macs += h * w * out * (width * 9 + out * 9);
                if stride != 1 || width != out {
                    macs += h * w * out * width;
                }
                width = out;
            }
        }
        macs + width * classes
    }

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

impl ModelConfig {
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

/// The sizes of one model that decide its memory, counted without building anything (see
/// [`ModelConfig::footprint`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    /// Trainable values (weights and biases).
    pub parameters: u64,
    /// Values one sample's forward pass produces, over every layer (convolutions before and
    /// after pooling), the outputs included.
    pub activations: u64,
    /// Layers with parameters.
    pub layers: u64,
}

impl ModelConfig {
    /// The parameters, activations and layers of one model on samples of `input_shape` with
    /// `classes` outputs, with checked arithmetic: `None` when a count overflows 64 bits. It
    /// allocates nothing and loops once per stage (not per block), so that a plan can refuse
    /// `hidden = [1000000000]` or a billion blocks before building them. The shape is not
    /// checked here (an image that is too small counts its empty layers as zero).
    pub fn footprint(&self, input_shape: &[usize], classes: usize) -> Option<Footprint> {
        let mut f = Footprint {
            parameters: 0,
            activations: 0,
            layers: 0,
        };
        // A layer of `count` copies, each of `weights` + `bias` parameters and `outputs` values.
        let mut add = |count: u64, weights: u64, bias: u64, outputs: u64| -> Option<()> {
            f.parameters = f
                .parameters
                .checked_add(count.checked_mul(weights.checked_add(bias)?)?)?;
            f.activations = f.activations.checked_add(count.checked_mul(outputs)?)?;
            f.layers = f.layers.checked_add(count)?;
            Some(())
        };
        let m = |a: usize, b: usize| (a as u64).checked_mul(b as u64);
        let dense = |add: &mut dyn FnMut(u64, u64, u64, u64) -> Option<()>,
                     mut width: u64,
                     hidden: &[usize]|
         -> Option<()> {
            for &h in hidden.iter().chain(std::iter::once(&classes)) {
                let h = h as u64;
                add(1, width.checked_mul(h)?, h, h)?;
                width = h;
            }
            Some(())
        };
        let inputs = input_shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))?;
        match self {
            ModelConfig::Mlp(mlp) => dense(&mut add, inputs, &mlp.hidden)?,
            ModelConfig::Cnn(cnn) => {
                let &[c, h, w] = input_shape else {
                    return dense(&mut add, inputs, &cnn.hidden).map(|_| f);
                };
                let (mut c, mut h, mut w) = (c as u64, h as u64, w as u64);
                let k2 = m(cnn.kernel, cnn.kernel)?;
                for &out in &cnn.channels {
                    let out = out as u64;
                    let plane = h.checked_mul(w)?;
                    let pooled = (h / 2).checked_mul(w / 2)?;
                    let outputs = out.checked_mul(plane.checked_add(pooled)?)?;
                    add(1, out.checked_mul(c)?.checked_mul(k2)?, out, outputs)?;
                    (c, h, w) = (out, h / 2, w / 2);
                }
                dense(&mut add, c.checked_mul(h)?.checked_mul(w)?, &cnn.hidden)?;
            }
            ModelConfig::ResNet(net) => {
                let &[c, h, w] = input_shape else {
                    return Some(f); // not an image: refused when the network is built
                };
                let (c, mut h, mut w) = (c as u64, h as u64, w as u64);
                let first = net.widths.first().copied().unwrap_or(1) as u64;
                add(
                    1,
                    first.checked_mul(c)?.checked_mul(9)?,
                    first,
                    first.checked_mul(h)?.checked_mul(w)?,
                )?;
                let blocks = net.blocks_per_stage as u64;
                let mut width = first;
                for (stage, &out) in net.widths.iter().enumerate() {
                    let out = out as u64;
                    if blocks == 0 {
                        break;
                    }
                    if stage > 0 {
                        (h, w) = (h.div_ceil(2), w.div_ceil(2));
                    }
                    let plane = out.checked_mul(h)?.checked_mul(w)?;
                    // The first block: maybe strided, maybe with a projection shortcut.
                    add(1, out.checked_mul(width)?.checked_mul(9)?, out, plane)?;
                    if stage > 0 || width != out {
                        add(1, out.checked_mul(width)?, out, plane)?;
                    }
                    add(1, out.checked_mul(out)?.checked_mul(9)?, out, plane)?;
                    // The other blocks of the stage: two 3 x 3 convolutions of `out` channels.
                    add(
                        (blocks - 1).checked_mul(2)?,
                        out.checked_mul(out)?.checked_mul(9)?,
                        out,
                        plane,
                    )?;
                    width = out;
                }
                dense(&mut add, width, &[])?;
            }
        }
        Some(f)
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
        }
    }
}

impl TrainingConfig {
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
    /// The fastest path for the device and model: memia's fused CPU kernels for dense models
    /// (MLPs, logistic regression) and LeNet-style CNNs on the Flex device, Burn's tensor
    /// operations otherwise.
    #[default]
    Auto,
    /// Burn's tensor operations and autodiff on every device (to compare backends, or to check
    /// the fused kernels).
    Burn,
}

impl Engine {
    /// Whether this engine runs memia's fused CPU kernels for a model on `device`.
    pub fn uses_fused_kernels(self, model: &ModelConfig, device: &Device) -> bool {
        self.fuses(
            matches!(
                model,
                ModelConfig::Mlp(_) | ModelConfig::Cnn(_) | ModelConfig::ResNet(_)
            ),
            device,
        )
    }

    /// Whether the fused kernels run a network they `support` (dense layers, LeNet-style
    /// convolution stages, residual blocks) on `device`.
    pub(crate) fn fuses(self, supported: bool, device: &Device) -> bool {
        self == Engine::Auto && supported && *device == Device::flex()
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BurnTrainer, Ensemble};
    use burn::tensor::Device;

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

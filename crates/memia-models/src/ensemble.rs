//! The batched ensemble: G multilayer perceptrons with stacked parameters, trained together in
//! one pass, each exactly as if it were trained alone.
//!
//! Every layer's weights are one `[G, in, out]` tensor, so a step is a handful of batched
//! matrix products for all G models. Each model keeps its own initialisation (its own seeded
//! stream), its own training subset and its own minibatch order. The loss is the **sum** of
//! the models' mean cross-entropies, so each model's gradient is the one it would get alone.
//! Models whose subsets are smaller finish their epoch earlier: a per-model mask stops their
//! updates (momentum included), and the last, partial batch of an epoch is padded and masked.
//! The optimiser is applied per model with these masks rather than through a shared optimiser,
//! which would keep moving a finished model through its momentum or weight decay.

use burn::tensor::activation::{log_softmax, relu};
use burn::tensor::module::{conv2d, max_pool2d};
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Tensor, TensorData};
use memia_core::rng::{MemiaRng, stream_rng};

use crate::augment::{Augmentation, image_shape, transform};
use crate::fused::{self, DenseParams};
use rand::RngExt;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

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

/// What a layer computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `x W + b` with weights `[G, in, out]`, bias `[G, 1, out]`.
    Dense,
    /// A grouped convolution with "same" padding (`kernel / 2`), weights
    /// `[G, out_channels, in_channels * kernel^2]` and bias `[G, 1, out_channels]` (reshaped to
    /// the convolution's layout, models outermost, when applied), then what `role` says.
    Conv {
        cin: usize,
        cout: usize,
        kernel: usize,
        stride: usize,
        role: Role,
    },
}

/// Where a convolution sits in the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// ReLU, then 2 x 2 max pooling (LeNet-style stage).
    Pooled,
    /// ReLU (a ResNet stem).
    Plain,
    /// First convolution of a residual branch: remembers its input, then ReLU.
    BranchStart,
    /// Projection of the remembered input (1 x 1, strided) when the branch changes its shape.
    Shortcut,
    /// Last convolution of a residual branch: adds the remembered input, then ReLU.
    BranchEnd,
}

/// One layer of G stacked models; every parameter has the models on its first axis.
#[derive(Debug, Clone)]
struct Layer {
    op: Op,
    weight: Tensor<3>,
    bias: Tensor<3>,
}

/// How a step's updates apply to the models of the group.
#[allow(clippy::large_enum_variant)] // one short-lived value per training step
enum Masks {
    /// Every model steps, at the same rate.
    Uniform {
        /// The learning rate.
        rate: f32,
    },
    /// `mask` is 1 for models that step and 0 for idle ones; `rate` is each model's rate (0
    /// for idle ones), both `[G, 1, 1]`.
    PerModel { mask: Tensor<3>, rate: Tensor<3> },
}

/// Per-parameter optimiser state: `first` is momentum (SGD) or the first moment (Adam).
#[derive(Debug, Clone)]
struct State {
    first: Tensor<3>,
    second: Tensor<3>,
}

/// Which code trains and queries an ensemble.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    /// The fastest path for the device and model: memia's fused CPU kernels for dense models
    /// (MLPs, logistic regression) on the Flex device, Burn's tensor operations otherwise.
    #[default]
    Auto,
    /// Burn's tensor operations and autodiff on every device (to compare backends, or to check
    /// the fused kernels).
    Burn,
}

impl Engine {
    /// Whether this engine runs memia's fused CPU kernels for a model on `device`.
    pub fn uses_fused_kernels(self, model: &ModelConfig, device: &Device) -> bool {
        self.fuses(matches!(model, ModelConfig::Mlp(_)), device)
    }

    fn fuses(self, dense: bool, device: &Device) -> bool {
        self == Engine::Auto && dense && *device == Device::flex()
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
    type Err = String;

    /// `auto` or `burn`.
    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "auto" => Ok(Engine::Auto),
            "burn" => Ok(Engine::Burn),
            _ => Err(format!("unknown engine '{name}' (auto or burn)")),
        }
    }
}

/// G models of one architecture with stacked parameters.
#[derive(Debug, Clone)]
pub struct Ensemble {
    layers: Vec<Layer>,
    input_shape: Vec<usize>,
    inputs: usize,
    classes: usize,
    device: Device,
    engine: Engine,
}

/// The data one model trains on.
#[derive(Debug, Clone)]
pub struct Member {
    /// Seed of its initialisation and minibatch order.
    pub seed: u64,
    /// Row indices of its training samples in the feature matrix.
    pub train: Vec<usize>,
}

impl Ensemble {
    /// Initialises one model per seed: weights and biases uniform in `+-1/sqrt(fan_in)` (as
    /// PyTorch's `nn.Linear` and `nn.Conv2d`), drawn on the host from each model's own stream so
    /// that they do not depend on the group or the backend. `input_shape` is one sample's shape
    /// (`[C, H, W]` for a CNN; an MLP flattens any shape).
    pub fn init(
        config: &ModelConfig,
        input_shape: &[usize],
        classes: usize,
        seeds: &[u64],
        device: &Device,
    ) -> Result<Self, String> {
        let inputs: usize = input_shape.iter().product();
        let conv = |cin: usize, cout: usize, kernel: usize, stride: usize, role: Role| {
            let op = Op::Conv {
                cin,
                cout,
                kernel,
                stride,
                role,
            };
            (
                op,
                cin * kernel * kernel,
                [cout, cin * kernel * kernel],
                cout,
            )
        };
        // (op, fan_in, parameter shape per model)
        let mut plan: Vec<(Op, usize, [usize; 2], usize)> = Vec::new();
        let dense_from =
            |plan: &mut Vec<(Op, usize, [usize; 2], usize)>, mut width: usize, hidden: &[usize]| {
                for &h in hidden.iter().chain(std::iter::once(&classes)) {
                    plan.push((Op::Dense, width, [width, h], h));
                    width = h;
                }
            };
        match config {
            ModelConfig::Mlp(mlp) => dense_from(&mut plan, inputs, &mlp.hidden),
            ModelConfig::Cnn(cnn) => {
                let &[mut c, mut h, mut w] = input_shape else {
                    return Err(format!(
                        "a CNN needs [C, H, W] samples, got shape {input_shape:?}"
                    ));
                };
                if cnn.kernel % 2 == 0 {
                    return Err(format!(
                        "kernel size {} must be odd (\"same\" padding)",
                        cnn.kernel
                    ));
                }
                for &cout in &cnn.channels {
                    if h < 2 || w < 2 {
                        return Err(format!(
                            "input {input_shape:?} is too small for {} pooling stages",
                            cnn.channels.len()
                        ));
                    }
                    let k = cnn.kernel;
                    plan.push(conv(c, cout, k, 1, Role::Pooled));
                    (c, h, w) = (cout, h / 2, w / 2);
                }
                dense_from(&mut plan, c * h * w, &cnn.hidden);
            }
            ModelConfig::ResNet(net) => {
                let &[c, h, w] = input_shape else {
                    return Err(format!(
                        "a ResNet needs [C, H, W] samples, got shape {input_shape:?}"
                    ));
                };
                let Some(&first) = net.widths.first() else {
                    return Err("a ResNet needs at least one stage width".into());
                };
                if net.blocks_per_stage == 0 {
                    return Err("a ResNet needs at least one block per stage".into());
                }
                if h >> (net.widths.len() - 1) == 0 || w >> (net.widths.len() - 1) == 0 {
                    return Err(format!(
                        "input {input_shape:?} is too small for {} stages",
                        net.widths.len()
                    ));
                }
                plan.push(conv(c, first, 3, 1, Role::Plain));
                let mut width = first;
                for (stage, &out) in net.widths.iter().enumerate() {
                    for block in 0..net.blocks_per_stage {
                        let stride = if stage > 0 && block == 0 { 2 } else { 1 };
                        plan.push(conv(width, out, 3, stride, Role::BranchStart));
                        if stride != 1 || width != out {
                            plan.push(conv(width, out, 1, stride, Role::Shortcut));
                        }
                        plan.push(conv(out, out, 3, 1, Role::BranchEnd));
                        width = out;
                    }
                }
                dense_from(&mut plan, width, &[]);
            }
        }
        let g = seeds.len();
        let layers = plan
            .into_iter()
            .enumerate()
            .map(|(l, (op, fan_in, [rows, cols], outs))| {
                let bound = 1.0 / (fan_in as f64).sqrt();
                let (mut weights, mut biases) = (
                    Vec::with_capacity(g * rows * cols),
                    Vec::with_capacity(g * outs),
                );
                for &seed in seeds {
                    let mut rng = stream_rng(seed, l as u64);
                    weights.extend(
                        (0..rows * cols)
                            .map(|_| ((rng.random::<f64>() * 2.0 - 1.0) * bound) as f32),
                    );
                    biases.extend(
                        (0..outs).map(|_| ((rng.random::<f64>() * 2.0 - 1.0) * bound) as f32),
                    );
                }
                Layer {
                    op,
                    weight: Tensor::from_data(TensorData::new(weights, [g, rows, cols]), device),
                    bias: Tensor::from_data(TensorData::new(biases, [g, 1, outs]), device),
                }
            })
            .collect();
        Ok(Ensemble {
            layers,
            input_shape: input_shape.to_vec(),
            inputs,
            classes,
            device: device.clone(),
            engine: Engine::Auto,
        })
    }

    /// Number of models G.
    pub fn models(&self) -> usize {
        self.layers[0].weight.dims()[0]
    }

    /// The same ensemble, trained and queried by `engine`.
    pub fn with_engine(mut self, engine: Engine) -> Self {
        self.engine = engine;
        self
    }

    /// Whether [`Ensemble::train`] and [`Ensemble::predict`] run memia's fused CPU kernels
    /// (otherwise Burn's operations on the device).
    pub fn uses_fused_kernels(&self) -> bool {
        self.fused_sizes().is_some()
    }

    /// The layer sizes (input to classes) when the fused kernels apply.
    fn fused_sizes(&self) -> Option<Vec<usize>> {
        let dense = self.layers.iter().all(|l| l.op == Op::Dense);
        if !self.engine.fuses(dense, &self.device) {
            return None;
        }
        let mut sizes = vec![self.inputs];
        sizes.extend(self.layers.iter().map(|l| l.weight.dims()[2]));
        Some(sizes)
    }

    /// Every model's parameters copied to the host.
    fn host_parameters(&self) -> Vec<DenseParams> {
        let host = |t: &Tensor<3>| -> Vec<f32> {
            t.clone()
                .into_data()
                .try_into_vec::<f32>()
                .expect("float32 parameters")
        };
        let layers: Vec<(Vec<f32>, Vec<f32>)> = self
            .layers
            .iter()
            .map(|l| (host(&l.weight), host(&l.bias)))
            .collect();
        let g = self.models();
        (0..g)
            .map(|m| DenseParams {
                layers: layers
                    .iter()
                    .map(|(w, b)| {
                        let (wn, bn) = (w.len() / g, b.len() / g);
                        (
                            w[m * wn..(m + 1) * wn].to_vec(),
                            b[m * bn..(m + 1) * bn].to_vec(),
                        )
                    })
                    .collect(),
            })
            .collect()
    }

    /// Stacks host parameters back into the layers' tensors.
    fn set_host_parameters(&mut self, models: &[DenseParams]) {
        for (l, layer) in self.layers.iter_mut().enumerate() {
            let stack = |pick: &dyn Fn(&DenseParams) -> &Vec<f32>, dims: [usize; 3]| {
                let values: Vec<f32> = models
                    .iter()
                    .flat_map(|m| pick(m).iter().copied())
                    .collect();
                Tensor::<3>::from_data(TensorData::new(values, dims), &self.device)
            };
            layer.weight = stack(&|m| &m.layers[l].0, layer.weight.dims());
            layer.bias = stack(&|m| &m.layers[l].1, layer.bias.dims());
        }
    }

    /// Forward pass of all models: `x` is `[G, B, inputs]`, the result `[G, B, classes]`.
    fn forward(layers: &[Layer], input_shape: &[usize], x: Tensor<3>) -> Tensor<3> {
        let [g, b, _] = x.dims();
        let last = layers.len() - 1;
        let mut h = x;
        let mut image: Option<Tensor<4>> = None;
        let mut skip: Option<Tensor<4>> = None;
        if let Some(Layer {
            op: Op::Conv { .. },
            ..
        }) = layers.first()
        {
            let &[c, height, width] = input_shape else {
                unreachable!("checked at init")
            };
            // [G, B, C*H*W] -> [B, G*C, H, W]: model g's channels form group g.
            let x5: Tensor<5> = h.clone().reshape([g, b, c, height, width]);
            image = Some(x5.swap_dims(0, 1).reshape([
                b as i64,
                (g * c) as i64,
                height as i64,
                width as i64,
            ]));
        }
        for (i, layer) in layers.iter().enumerate() {
            match layer.op {
                Op::Conv {
                    cin,
                    cout,
                    kernel,
                    stride,
                    role,
                } => {
                    let x4 = image.take().expect("convolutions come first");
                    let weight: Tensor<4> =
                        layer
                            .weight
                            .clone()
                            .reshape([g * cout, cin, kernel, kernel]);
                    let bias: Tensor<1> = layer.bias.clone().reshape([g * cout]);
                    let pad = kernel / 2;
                    let options = ConvOptions::new([stride, stride], [pad, pad], [1, 1], g);
                    let out = match role {
                        Role::Pooled => max_pool2d(
                            relu(conv2d(x4, weight, Some(bias), options)),
                            MaxPoolOptions::new([2, 2]),
                        ),
                        Role::Plain => relu(conv2d(x4, weight, Some(bias), options)),
                        Role::BranchStart => {
                            skip = Some(x4.clone());
                            relu(conv2d(x4, weight, Some(bias), options))
                        }
                        Role::Shortcut => {
                            let saved = skip.take().expect("a shortcut follows a branch start");
                            skip = Some(conv2d(saved, weight, Some(bias), options));
                            x4
                        }
                        Role::BranchEnd => {
                            let saved = skip.take().expect("a branch end follows a branch start");
                            relu(conv2d(x4, weight, Some(bias), options) + saved)
                        }
                    };
                    let next_is_dense =
                        !matches!(layers.get(i + 1).map(|l| l.op), Some(Op::Conv { .. }));
                    if !next_is_dense {
                        image = Some(out);
                    } else if role == Role::Pooled {
                        // LeNet: flatten [B, G*C, H', W'] -> [G, B, C*H'*W'].
                        let [_, gc, ph, pw] = out.dims();
                        let flat: Tensor<3> = out.reshape([b, g, gc / g * ph * pw]);
                        h = flat.swap_dims(0, 1);
                    } else {
                        // ResNet: global average pooling -> [G, B, C].
                        let [_, gc, _, _] = out.dims();
                        let pooled: Tensor<4> = out.mean_dim(3).mean_dim(2);
                        let flat: Tensor<3> = pooled.reshape([b, g, gc / g]);
                        h = flat.swap_dims(0, 1);
                    }
                }
                Op::Dense => {
                    let z = h.matmul(layer.weight.clone()) + layer.bias.clone();
                    h = if i < last { relu(z) } else { z };
                }
            }
        }
        h
    }

    /// Trains member g on its rows of `features` (n x d, row-major) with `labels`.
    pub fn train(
        &mut self,
        features: &[f32],
        labels: &[u32],
        members: &[Member],
        config: &TrainingConfig,
    ) -> Result<(), String> {
        let (g, d, classes) = (self.models(), self.inputs, self.classes);
        if members.len() != g {
            return Err(format!("{} members for {g} models", members.len()));
        }
        if config.batch_size == 0
            || config.epochs == 0
            || config.learning_rate.is_nan()
            || config.learning_rate <= 0.0
        {
            return Err(format!(
                "batch size, epochs and learning rate must be positive: {config:?}"
            ));
        }
        let n = labels.len();
        if features.len() != n * d {
            return Err(format!(
                "{} feature values for {n} labels of {d} features each",
                features.len()
            ));
        }
        if let Some(i) = labels.iter().position(|&y| y as usize >= classes) {
            return Err(format!(
                "label {} of sample {i} is out of range for {classes} classes",
                labels[i]
            ));
        }
        for (m, member) in members.iter().enumerate() {
            if member.train.is_empty() {
                return Err(format!("model {m} of the group has an empty training set"));
            }
            if let Some(&i) = member.train.iter().find(|&&i| i >= n) {
                return Err(format!(
                    "model {m} of the group trains on row {i} of {n} samples"
                ));
            }
        }
        let augment = if config.augmentation.is_identity() {
            None
        } else {
            let shape = image_shape(&self.input_shape).ok_or_else(|| {
                format!(
                    "augmentation needs [C, H, W] samples, got shape {:?}",
                    self.input_shape
                )
            })?;
            Some((shape, &config.augmentation))
        };
        if let Some(sizes) = self.fused_sizes() {
            let mut models = self.host_parameters();
            fused::train(
                &mut models,
                &sizes,
                features,
                labels,
                members,
                config,
                augment,
            );
            self.set_host_parameters(&models);
            return Ok(());
        }
        self.train_burn(features, labels, members, config, augment)
    }

    /// The Burn path of [`Ensemble::train`] (arguments checked): one autodiff step of all G
    /// models per minibatch, masked optimiser.
    fn train_burn(
        &mut self,
        features: &[f32],
        labels: &[u32],
        members: &[Member],
        config: &TrainingConfig,
        augment: Option<([usize; 3], &Augmentation)>,
    ) -> Result<(), String> {
        let (g, d, classes) = (self.models(), self.inputs, self.classes);
        let b = config.batch_size;
        let steps_of: Vec<usize> = members.iter().map(|m| m.train.len().div_ceil(b)).collect();
        let total_steps: Vec<usize> = steps_of.iter().map(|s| s * config.epochs).collect();
        let group_steps = *steps_of.iter().max().expect("g > 0");
        let mut state: Vec<(State, State)> = self
            .layers
            .iter()
            .map(|l| {
                let zeros = |t: &Tensor<3>| Tensor::<3>::zeros(t.dims(), &self.device);
                (
                    State {
                        first: zeros(&l.weight),
                        second: zeros(&l.weight),
                    },
                    State {
                        first: zeros(&l.bias),
                        second: zeros(&l.bias),
                    },
                )
            })
            .collect();
        let mut taken = vec![0usize; g]; // steps done per model
        let autodiff = self.device.clone().autodiff();
        for epoch in 0..config.epochs {
            let (orders, mut writers): (Vec<_>, Vec<_>) =
                members.iter().map(|m| epoch_streams(m, epoch)).unzip();
            for step in 0..group_steps {
                // Host-side batch: inputs, one-hot targets weighted by 1/count, active mask.
                let mut x = vec![0f32; g * b * d];
                let mut target = vec![0f32; g * b * classes];
                let mut active = vec![0f32; g];
                for (m, (order, writer)) in orders.iter().zip(&mut writers).enumerate() {
                    if step >= steps_of[m] {
                        continue;
                    }
                    active[m] = 1.0;
                    let rows = &order[step * b..((step + 1) * b).min(order.len())];
                    let weight = 1.0 / rows.len() as f32;
                    for (r, &i) in rows.iter().enumerate() {
                        let dst = (m * b + r) * d;
                        let src = &features[i * d..(i + 1) * d];
                        writer.write_sample(src, &mut x[dst..dst + d], augment);
                        target[(m * b + r) * classes + labels[i] as usize] = weight;
                    }
                }
                let x = Tensor::<3>::from_data(TensorData::new(x, [g, b, d]), &autodiff);
                let target =
                    Tensor::<3>::from_data(TensorData::new(target, [g, b, classes]), &autodiff);
                let params: Vec<Layer> = self
                    .layers
                    .iter()
                    .map(|l| Layer {
                        op: l.op,
                        weight: l.weight.clone().autodiff().require_grad(),
                        bias: l.bias.clone().autodiff().require_grad(),
                    })
                    .collect();
                let logits = Self::forward(&params, &self.input_shape, x);
                // Sum over models of each model's mean cross-entropy over its real samples.
                let loss = (log_softmax(logits, 2) * target).sum().neg();
                let grads = loss.backward();

                let rates: Vec<f32> = (0..g)
                    .map(|m| {
                        (step_rate(config, taken[m], total_steps[m]) * f64::from(active[m])) as f32
                    })
                    .collect();
                for m in 0..g {
                    taken[m] += active[m] as usize;
                }
                // Most steps update every model at one rate: then plain scalar arithmetic, without
                // the masks' extra passes over the parameters (same values: x * 1 + y * 0 = x).
                let masks =
                    if active.iter().all(|&a| a == 1.0) && rates.iter().all(|&r| r == rates[0]) {
                        Masks::Uniform { rate: rates[0] }
                    } else {
                        Masks::PerModel {
                            mask: self.per_model(&active),
                            rate: self.per_model(&rates),
                        }
                    };
                let corrections = self.bias_corrections(&taken, config);
                for ((layer, param), (ws, bs)) in
                    self.layers.iter_mut().zip(&params).zip(state.iter_mut())
                {
                    let gw = param
                        .weight
                        .grad(&grads)
                        .ok_or("no gradient for a weight")?;
                    let gb = param.bias.grad(&grads).ok_or("no gradient for a bias")?;
                    layer.weight = update(
                        layer.weight.clone(),
                        gw,
                        ws,
                        &masks,
                        corrections.as_ref(),
                        config,
                    );
                    layer.bias = update(
                        layer.bias.clone(),
                        gb,
                        bs,
                        &masks,
                        corrections.as_ref(),
                        config,
                    );
                }
            }
        }
        Ok(())
    }

    /// A `[G, 1, 1]` tensor of per-model values.
    fn per_model(&self, values: &[f32]) -> Tensor<3> {
        Tensor::from_data(
            TensorData::new(values.to_vec(), [values.len(), 1, 1]),
            &self.device,
        )
    }

    /// Adam's bias corrections `1 - beta^t` per model (None for SGD).
    fn bias_corrections(
        &self,
        taken: &[usize],
        config: &TrainingConfig,
    ) -> Option<(Tensor<3>, Tensor<3>)> {
        match config.optimizer {
            Optimizer::Sgd { .. } => None,
            Optimizer::Adam { beta1, beta2, .. } => {
                let c = |beta: f64| -> Vec<f32> {
                    taken.iter().map(|&t| adam_correction(beta, t)).collect()
                };
                Some((self.per_model(&c(beta1)), self.per_model(&c(beta2))))
            }
        }
    }

    /// Logits of every model on every row of `features` (n x d): `[G, n, C]`, row-major, in
    /// chunks of rows so that memory stays bounded. A length that is not a multiple of d is an
    /// error.
    pub fn predict(&self, features: &[f32]) -> Result<Vec<f32>, String> {
        let (g, d, classes) = (self.models(), self.inputs, self.classes);
        if !features.len().is_multiple_of(d) {
            return Err(format!(
                "{} feature values are not rows of {d} features",
                features.len()
            ));
        }
        if let Some(sizes) = self.fused_sizes() {
            return Ok(fused::predict(&self.host_parameters(), &sizes, features));
        }
        let n = features.len() / d;
        let mut out = vec![0f32; g * n * classes];
        const CHUNK: usize = 2048;
        for start in (0..n).step_by(CHUNK) {
            let rows = CHUNK.min(n - start);
            let x = Tensor::<2>::from_data(
                TensorData::new(features[start * d..(start + rows) * d].to_vec(), [rows, d]),
                &self.device,
            );
            let x = x.unsqueeze_dim::<3>(0).expand([g, rows, d]);
            let logits = Self::forward(&self.layers, &self.input_shape, x).into_data();
            let values = logits.as_slice::<f32>().expect("float32 logits");
            for m in 0..g {
                let dst = (m * n + start) * classes;
                out[dst..dst + rows * classes]
                    .copy_from_slice(&values[m * rows * classes..(m + 1) * rows * classes]);
            }
        }
        Ok(out)
    }

    /// Parameters of model `m`, layer by layer (weights `in x out` then bias `out`), for tests.
    pub fn parameters(&self, m: usize) -> Vec<Vec<f32>> {
        self.layers
            .iter()
            .flat_map(|l| {
                [l.weight.clone(), l.bias.clone()]
                    .into_iter()
                    .map(move |t| {
                        let dims = t.dims();
                        let slice = t.slice([m..m + 1, 0..dims[1], 0..dims[2]]).into_data();
                        slice.as_slice::<f32>().expect("float32").to_vec()
                    })
            })
            .collect()
    }
}

/// A model's minibatch order for one epoch (its training rows shuffled) and the sampler that
/// writes its samples in that order, drawing augmentations from the model's own stream. Both
/// engines read them.
pub(crate) fn epoch_streams(member: &Member, epoch: usize) -> (Vec<usize>, SampleWriter) {
    let mut order = member.train.clone();
    order.shuffle(&mut stream_rng(member.seed, 1_000_000 + epoch as u64));
    let writer = SampleWriter {
        augment: stream_rng(member.seed, 2_000_000 + epoch as u64),
    };
    (order, writer)
}

/// Writes a model's training samples, augmented from its own random stream.
pub(crate) struct SampleWriter {
    augment: MemiaRng,
}

impl SampleWriter {
    /// Writes one training sample into `dst`: copied, or randomly shifted and flipped when
    /// `augment` gives the image shape and the augmentation.
    pub(crate) fn write_sample(
        &mut self,
        src: &[f32],
        dst: &mut [f32],
        augment: Option<([usize; 3], &Augmentation)>,
    ) {
        match augment {
            Some((shape, aug)) => {
                let rng = &mut self.augment;
                let span = 2 * aug.max_shift as i32 + 1;
                let dx = rng.random_range(0..span) - aug.max_shift as i32;
                let dy = rng.random_range(0..span) - aug.max_shift as i32;
                let mirror = aug.flip && rng.random::<bool>();
                transform(src, dst, shape, mirror, dx, dy);
            }
            None => dst.copy_from_slice(src),
        }
    }
}

/// The learning rate of a model's step after `taken` of its `total` steps.
pub(crate) fn step_rate(config: &TrainingConfig, taken: usize, total: usize) -> f64 {
    match config.schedule {
        Schedule::Constant => config.learning_rate,
        Schedule::Cosine => {
            let t = taken as f64 / total as f64;
            0.5 * config.learning_rate * (1.0 + (std::f64::consts::PI * t).cos())
        }
    }
}

/// Adam's bias correction `1 - beta^t` after `t` steps.
pub(crate) fn adam_correction(beta: f64, t: usize) -> f32 {
    (1.0 - beta.powi(t.max(1) as i32)) as f32
}

/// One optimiser step on a stacked parameter (PyTorch's SGD / Adam formulas, with the L2
/// penalty added to the gradient), for the models `masks` says step; idle models keep their
/// parameters and optimiser state.
fn update(
    param: Tensor<3>,
    grad: Tensor<3>,
    state: &mut State,
    masks: &Masks,
    corrections: Option<&(Tensor<3>, Tensor<3>)>,
    config: &TrainingConfig,
) -> Tensor<3> {
    let grad = if config.weight_decay == 0.0 {
        grad
    } else {
        grad + param.clone() * config.weight_decay
    };
    // Keeps the new optimiser state of the models that step, the old one of idle models.
    let select = |new: Tensor<3>, old: Tensor<3>| match masks {
        Masks::Uniform { .. } => new,
        Masks::PerModel { mask, .. } => {
            let idle = mask.clone().neg() + 1.0;
            new * mask.clone() + old * idle
        }
    };
    let scaled = |step: Tensor<3>| match masks {
        Masks::Uniform { rate } => step * *rate,
        Masks::PerModel { rate, .. } => step * rate.clone(),
    };
    match config.optimizer {
        Optimizer::Sgd { momentum } => {
            let velocity = if momentum == 0.0 {
                grad
            } else {
                state.first.clone() * momentum + grad
            };
            state.first = select(velocity, state.first.clone());
            param - scaled(state.first.clone())
        }
        Optimizer::Adam {
            beta1,
            beta2,
            epsilon,
        } => {
            let (c1, c2) = corrections.expect("Adam has bias corrections");
            let first = state.first.clone() * beta1 + grad.clone() * (1.0 - beta1);
            let second = state.second.clone() * beta2 + grad.clone() * grad * (1.0 - beta2);
            state.first = select(first, state.first.clone());
            state.second = select(second, state.second.clone());
            let denom = (state.second.clone() / c2.clone()).sqrt() + epsilon;
            param - scaled((state.first.clone() / c1.clone()) / denom)
        }
    }
}

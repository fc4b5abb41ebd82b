//! The ensemble: G models of one architecture (MLP, logistic regression, CNN or ResNet) with
//! stacked parameters, trained together in one pass, each as if it were trained alone. This
//! module builds the architecture and draws every model's initial weights from its own seeded
//! stream, checks the arguments of training and inference, and hands the work to the engine
//! that runs it: memia's fused CPU kernels ([`crate::fused`], [`crate::fused_cnn`],
//! [`crate::fused_resnet`]) on the Flex device, Burn's operations ([`crate::burn_engine`])
//! otherwise (other devices, `Engine::Burn`).

use burn::tensor::{Device, Tensor, TensorData};
use memia_core::rng::stream_rng;
use rand::RngExt;

use crate::burn_engine::{Layer, Op, Role, Stacked};
use crate::config::{Engine, Member, ModelConfig, TrainingConfig};
use crate::error::{ModelError, Result, architecture, invalid_data, invalid_setting};
use crate::fused::{self, DenseParams};
use crate::fused_cnn::{self, CnnShape, Stage};
use crate::fused_resnet::{self, ResNetShape};

/// What the fused CPU kernels train.
enum FusedNet {
    /// Dense layers of these sizes, input first.
    Dense(Vec<usize>),
    /// A LeNet-style CNN.
    Cnn(CnnShape),
    /// A small ResNet.
    ResNet(ResNetShape),
}

/// G models of one architecture with stacked parameters.
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
    net: Stacked,
    engine: Engine,
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
    ) -> Result<Self> {
        if seeds.is_empty() {
            return Err(invalid_setting(
                "seeds",
                "an ensemble needs at least one model (no seed given)",
            ));
        }
        let plan = layer_plan(config, input_shape, classes)?;
        let g = seeds.len();
        // Reserved fallibly: a model too large for this machine is an error, not an abort
        // (the scheduler refuses it earlier, against the memory available).
        let reserve = |values: Option<usize>, what: &str, l: usize| {
            let mut v: Vec<f32> = Vec::new();
            match values {
                Some(count) if v.try_reserve_exact(count).is_ok() => Ok(v),
                _ => Err(architecture(format!(
                    "the {what} of layer {l} for {g} models cannot be allocated on this machine"
                ))),
            }
        };
        let layers = plan
            .into_iter()
            .enumerate()
            .map(|(l, (op, fan_in, [rows, cols], outs))| {
                let bound = 1.0 / (fan_in as f64).sqrt();
                let (mut weights, mut biases) = (
                    reserve(
                        g.checked_mul(rows).and_then(|v| v.checked_mul(cols)),
                        "weights",
                        l,
                    )?,
                    reserve(g.checked_mul(outs), "biases", l)?,
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
                Ok(Layer {
                    op,
                    weight: Tensor::from_data(TensorData::new(weights, [g, rows, cols]), device),
                    bias: Tensor::from_data(TensorData::new(biases, [g, 1, outs]), device),
                })
            })
            .collect::<Result<_>>()?;
        Ok(Ensemble {
            net: Stacked {
                layers,
                input_shape: input_shape.to_vec(),
                device: device.clone(),
            },
            engine: Engine::Auto,
        })
    }

    /// Checks, without building anything, that `config` can be built on samples of
    /// `input_shape` with `classes` classes: what [`Ensemble::init`] would refuse.
    pub fn check_architecture(
        config: &ModelConfig,
        input_shape: &[usize],
        classes: usize,
    ) -> Result<()> {
        layer_plan(config, input_shape, classes).map(drop)
    }

    /// Number of models G.
    pub fn models(&self) -> usize {
        self.net.models()
    }

    /// The same ensemble, trained and queried by `engine`.
    pub fn with_engine(mut self, engine: Engine) -> Self {
        self.engine = engine;
        self
    }

    /// Whether [`Ensemble::train`] and [`Ensemble::predict`] run memia's fused CPU kernels
    /// (otherwise Burn's operations on the device).
    pub fn uses_fused_kernels(&self) -> bool {
        self.fused_net().is_some()
    }

    /// The network as the fused kernels see it, when they apply: dense models (MLPs, logistic
    /// regression) and LeNet-style CNNs, on the Flex device with `Engine::Auto`.
    fn fused_net(&self) -> Option<FusedNet> {
        let dense_from = self
            .net
            .layers
            .iter()
            .position(|l| l.op == Op::Dense)
            .unwrap_or(self.net.layers.len());
        let stages = &self.net.layers[..dense_from];
        let dense = &self.net.layers[dense_from..];
        let lenet = stages.iter().all(|l| {
            matches!(
                l.op,
                Op::Conv {
                    stride: 1,
                    role: Role::Pooled,
                    ..
                }
            )
        });
        let residual = !lenet && dense.len() == 1;
        let supported = dense.iter().all(|l| l.op == Op::Dense) && (lenet || residual);
        if !self.engine.fuses(supported, &self.net.device) {
            return None;
        }
        if residual {
            let convs: Vec<_> = stages
                .iter()
                .filter_map(|l| match l.op {
                    Op::Conv {
                        cin,
                        cout,
                        kernel,
                        stride,
                        role,
                    } => Some((role, cin, cout, kernel, stride)),
                    Op::Dense => None,
                })
                .collect();
            let &[c, h, w] = self.net.input_shape.as_slice() else {
                return None;
            };
            let classes = dense[0].weight.dims()[2];
            return ResNetShape::new(&convs, [c, h, w], classes).map(FusedNet::ResNet);
        }
        let outs = |l: &Layer| l.weight.dims()[2];
        if stages.is_empty() {
            let mut sizes = vec![self.net.inputs()];
            sizes.extend(self.net.layers.iter().map(outs));
            return Some(FusedNet::Dense(sizes));
        }
        let &[_, mut h, mut w] = self.net.input_shape.as_slice() else {
            return None;
        };
        let mut shape = CnnShape {
            stages: Vec::new(),
            dense: Vec::new(),
        };
        let mut channels = 0;
        for layer in stages {
            if let Op::Conv {
                cin, cout, kernel, ..
            } = layer.op
            {
                shape.stages.push(Stage::same(cin, cout, kernel, h, w));
                (h, w, channels) = (h / 2, w / 2, cout);
            }
        }
        shape.dense.push(channels * h * w);
        shape
            .dense
            .extend(self.net.layers[dense_from..].iter().map(outs));
        Some(FusedNet::Cnn(shape))
    }

    /// Every model's parameters copied to the host, for the fused kernels.
    fn host_parameters(&self) -> Result<Vec<DenseParams>> {
        let g = self.models();
        let tensors = self.net.host_tensors()?;
        Ok((0..g)
            .map(|m| DenseParams {
                layers: tensors
                    .chunks_exact(2)
                    .map(|wb| (model_slice(&wb[0], g, m), model_slice(&wb[1], g, m)))
                    .collect(),
            })
            .collect())
    }

    /// Stacks host parameters back into the layers' tensors.
    fn set_host_parameters(&mut self, models: &[DenseParams]) {
        let device = &self.net.device;
        for (l, layer) in self.net.layers.iter_mut().enumerate() {
            let stack = |pick: &dyn Fn(&DenseParams) -> &Vec<f32>, dims: [usize; 3]| {
                let values: Vec<f32> = models
                    .iter()
                    .flat_map(|m| pick(m).iter().copied())
                    .collect();
                Tensor::<3>::from_data(TensorData::new(values, dims), device)
            };
            layer.weight = stack(&|m| &m.layers[l].0, layer.weight.dims());
            layer.bias = stack(&|m| &m.layers[l].1, layer.bias.dims());
        }
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
        let (g, d, classes) = (self.models(), self.net.inputs(), self.net.classes());
        if members.len() != g {
            return Err(invalid_data(
                "members",
                format!("{} members for {g} models", members.len()),
            ));
        }
        config.check()?;
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
            .check(&self.net.input_shape)?
            .map(|shape| (shape, &config.augmentation));
        if let Some(net) = self.fused_net() {
            let mut models = self.host_parameters()?;
            match &net {
                FusedNet::Dense(sizes) => fused::train(
                    &mut models,
                    sizes,
                    features,
                    labels,
                    members,
                    config,
                    augment,
                ),
                FusedNet::Cnn(shape) => fused_cnn::train(
                    &mut models,
                    shape,
                    features,
                    labels,
                    members,
                    config,
                    augment,
                ),
                FusedNet::ResNet(shape) => fused_resnet::train(
                    &mut models,
                    shape,
                    features,
                    labels,
                    members,
                    config,
                    augment,
                ),
            }
            self.set_host_parameters(&models);
            return Ok(());
        }
        self.net.train(features, labels, members, config, augment)
    }

    /// Logits of every model on every row of `features` (n x d, row-major): `[G, n, C]`,
    /// row-major. A length that is not a whole number of rows is an error.
    pub fn predict(&self, features: &[f32]) -> Result<Vec<f32>> {
        let d = self.net.inputs();
        if !features.len().is_multiple_of(d) {
            return Err(invalid_data(
                "features",
                format!(
                    "{} feature values are not rows of {d} features",
                    features.len()
                ),
            ));
        }
        match self.fused_net() {
            Some(FusedNet::Dense(sizes)) => {
                Ok(fused::predict(&self.host_parameters()?, &sizes, features))
            }
            Some(FusedNet::Cnn(shape)) => Ok(fused_cnn::predict(
                &self.host_parameters()?,
                &shape,
                features,
            )),
            Some(FusedNet::ResNet(shape)) => Ok(fused_resnet::predict(
                &self.host_parameters()?,
                &shape,
                features,
            )),
            None => self.net.predict(features),
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
        Ok(self
            .net
            .host_tensors()?
            .iter()
            .map(|t| model_slice(t, g, m))
            .collect())
    }
}

/// One layer of the plan: what it computes, its fan-in (for the initial weights' bound), the
/// shape of one model's weights and its number of outputs (the bias length).
type LayerSpec = (Op, usize, [usize; 2], usize);

/// The layers of `config` on samples of `input_shape` with `classes` outputs, checked: the
/// architecture's own settings, and that it can be built on such samples.
fn layer_plan(
    config: &ModelConfig,
    input_shape: &[usize],
    classes: usize,
) -> Result<Vec<LayerSpec>> {
    if input_shape.is_empty() || input_shape.contains(&0) {
        return Err(architecture(format!(
            "sample shape {input_shape:?} has no values"
        )));
    }
    if classes < 2 {
        return Err(invalid_setting(
            "classes",
            format!("{classes} classes: a classifier needs at least 2"),
        ));
    }
    config.check()?;
    // Counted before anything is built: a size that overflows is refused here, and the layer
    // list below is reserved fallibly (a billion blocks fail as an error, not an abort).
    let footprint = config.footprint(input_shape, classes).ok_or_else(|| {
        architecture(format!(
            "{config:?} on samples of shape {input_shape:?}: its size overflows 64 bits"
        ))
    })?;
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
    let mut plan: Vec<LayerSpec> = Vec::new();
    let layers = usize::try_from(footprint.layers).unwrap_or(usize::MAX);
    plan.try_reserve_exact(layers).map_err(|_| {
        architecture(format!(
            "{} layers cannot be allocated on this machine",
            footprint.layers
        ))
    })?;
    let dense_from = |plan: &mut Vec<LayerSpec>, mut width: usize, hidden: &[usize]| {
        for &h in hidden.iter().chain(std::iter::once(&classes)) {
            plan.push((Op::Dense, width, [width, h], h));
            width = h;
        }
    };
    match config {
        ModelConfig::Mlp(mlp) => dense_from(&mut plan, inputs, &mlp.hidden),
        ModelConfig::Cnn(cnn) => {
            let &[mut c, mut h, mut w] = input_shape else {
                return Err(ModelError::NotAnImage {
                    what: "a CNN".into(),
                    shape: input_shape.to_vec(),
                });
            };
            for &cout in &cnn.channels {
                if h < 2 || w < 2 {
                    return Err(architecture(format!(
                        "input {input_shape:?} is too small for {} pooling stages",
                        cnn.channels.len()
                    )));
                }
                let k = cnn.kernel;
                plan.push(conv(c, cout, k, 1, Role::Pooled));
                (c, h, w) = (cout, h / 2, w / 2);
            }
            dense_from(&mut plan, c * h * w, &cnn.hidden);
        }
        ModelConfig::ResNet(net) => {
            let &[c, h, w] = input_shape else {
                return Err(ModelError::NotAnImage {
                    what: "a ResNet".into(),
                    shape: input_shape.to_vec(),
                });
            };
            let first = net.widths[0]; // at least one stage: checked above
            // (A checked shift: 64 stages or more leave no pixel, not a wrapped shift.)
            let halvings = u32::try_from(net.widths.len() - 1).unwrap_or(u32::MAX);
            if h.checked_shr(halvings).unwrap_or(0) == 0
                || w.checked_shr(halvings).unwrap_or(0) == 0
            {
                return Err(architecture(format!(
                    "input {input_shape:?} is too small for {} stages",
                    net.widths.len()
                )));
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
    Ok(plan)
}

/// Model `m`'s share of a stacked parameter of `g` models (models on the first axis).
fn model_slice(stacked: &[f32], g: usize, m: usize) -> Vec<f32> {
    let per = stacked.len() / g;
    stacked[m * per..(m + 1) * per].to_vec()
}

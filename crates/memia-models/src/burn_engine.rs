//! Burn's engine: the layers of G models as stacked tensors on a Burn device, their forward
//! pass (dense layers as batched matrix products, convolutions as grouped convolutions), the
//! training step through Burn's autodiff and the masked per-model optimiser. It runs every
//! architecture on every device; `Ensemble` picks it where the fused CPU kernels do not apply.
//!
//! The loss is the **sum** of the models' mean cross-entropies, so each model's gradient is the
//! one it would get alone. Models whose subsets are smaller finish their epoch earlier: a
//! per-model mask stops their updates (momentum included), and the last, partial batch of an
//! epoch is padded and masked. The optimiser is applied per model with these masks rather than
//! through a shared optimiser, which would keep moving a finished model through its momentum or
//! weight decay.

use burn::tensor::activation::{log_softmax, relu};
use burn::tensor::module::{conv2d, max_pool2d};
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Tensor, TensorData};

use crate::augment::Augmentation;
use crate::config::{Member, Optimizer, TrainingConfig};
use crate::error::{ModelError, Result};
use crate::network::{Layer as Spec, Network, Role};
use crate::params::HostParams;
use crate::schedule::{adam_correction, epoch_streams, step_rate};

/// One layer of G stacked models; every parameter has the models on its first axis: a dense
/// layer's weights `[G, in, out]`, a convolution's `[G, out_channels, in_channels * kernel^2]`
/// (reshaped to the grouped convolution's layout, models outermost, when applied), the bias
/// `[G, 1, out]`.
#[derive(Debug, Clone)]
struct Layer {
    spec: Spec,
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

/// G models of one architecture as stacked tensors on one device.
#[derive(Debug, Clone)]
pub(crate) struct Stacked {
    /// The layers, input first.
    layers: Vec<Layer>,
    /// One sample's shape (`[C, H, W]` when the first layer is a convolution).
    input_shape: Vec<usize>,
    /// Where the tensors live.
    device: Device,
}

impl Stacked {
    /// The `models`' parameters of `network` stacked on `device`, model by model on the first
    /// axis of each tensor.
    pub fn from_host(network: &Network, models: &[HostParams], device: &Device) -> Self {
        let g = models.len();
        let layers = network
            .layers()
            .enumerate()
            .map(|(l, spec)| {
                let stack = |pick: &dyn Fn(&HostParams) -> &Vec<f32>, dims: [usize; 3]| {
                    let values: Vec<f32> = models
                        .iter()
                        .flat_map(|m| pick(m).iter().copied())
                        .collect();
                    Tensor::<3>::from_data(TensorData::new(values, dims), device)
                };
                let [rows, cols] = spec.weight_shape();
                Layer {
                    spec,
                    weight: stack(&|m| &m.layers[l].0, [g, rows, cols]),
                    bias: stack(&|m| &m.layers[l].1, [g, 1, spec.outputs()]),
                }
            })
            .collect();
        Stacked {
            layers,
            input_shape: network.input_shape().to_vec(),
            device: device.clone(),
        }
    }

    /// Every model's parameters copied to the host.
    pub fn to_host(&self) -> Result<Vec<HostParams>> {
        let g = self.models();
        let host = |t: &Tensor<3>| {
            t.clone()
                .into_data()
                .try_into_vec::<f32>()
                .map_err(|e| ModelError::Backend(format!("parameters are not float32: {e:?}")))
        };
        let tensors = self
            .layers
            .iter()
            .map(|l| Ok((host(&l.weight)?, host(&l.bias)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok((0..g)
            .map(|m| HostParams {
                layers: tensors
                    .iter()
                    .map(|(w, b)| (model_slice(w, g, m), model_slice(b, g, m)))
                    .collect(),
            })
            .collect())
    }

    /// Number of models G.
    pub fn models(&self) -> usize {
        self.layers[0].weight.dims()[0]
    }

    /// Values per sample.
    pub fn inputs(&self) -> usize {
        self.input_shape.iter().product()
    }

    /// Number of classes (outputs of the last layer).
    pub fn classes(&self) -> usize {
        self.layers[self.layers.len() - 1].weight.dims()[2]
    }

    /// Forward pass of all models: `x` is `[G, B, inputs]`, the result `[G, B, classes]`.
    fn forward(layers: &[Layer], input_shape: &[usize], x: Tensor<3>) -> Tensor<3> {
        let [g, b, _] = x.dims();
        let last = layers.len() - 1;
        let mut h = x;
        let mut image: Option<Tensor<4>> = None;
        let mut skip: Option<Tensor<4>> = None;
        if let Some(Layer {
            spec: Spec::Conv(_),
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
            match layer.spec {
                Spec::Conv(conv) => {
                    let (cin, cout, kernel) = (conv.cin(), conv.cout(), conv.kernel());
                    let (stride, role) = (conv.stride(), conv.role());
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
                        Role::Stem => relu(conv2d(x4, weight, Some(bias), options)),
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
                        !matches!(layers.get(i + 1).map(|l| l.spec), Some(Spec::Conv(_)));
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
                Spec::Dense { .. } => {
                    let z = h.matmul(layer.weight.clone()) + layer.bias.clone();
                    h = if i < last { relu(z) } else { z };
                }
            }
        }
        h
    }

    /// Trains model m on `members[m]`'s rows of `features` (n x d, row-major) with `labels`:
    /// one autodiff step of all G models per minibatch, masked optimiser. The arguments are
    /// checked by `Ensemble::train`.
    pub fn train(
        &mut self,
        features: &[f32],
        labels: &[u32],
        members: &[Member],
        config: &TrainingConfig,
        augment: Option<([usize; 3], &Augmentation)>,
    ) -> Result<()> {
        let (g, d, classes) = (self.models(), self.inputs(), self.classes());
        let b = config.batch_size;
        let steps_of: Vec<usize> = members.iter().map(|m| m.train.len().div_ceil(b)).collect();
        let total_steps: Vec<usize> = steps_of.iter().map(|s| s * config.epochs).collect();
        let group_steps = steps_of.iter().copied().max().unwrap_or(0);
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
                        spec: l.spec,
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
                    let missing = || ModelError::Backend("no gradient for a parameter".into());
                    let gw = param.weight.grad(&grads).ok_or_else(missing)?;
                    let gb = param.bias.grad(&grads).ok_or_else(missing)?;
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

    /// Logits of every model on every row of `features` (n x d, whole rows, checked by
    /// `Ensemble::predict`): `[G, n, C]`, row-major, in chunks of rows so that memory stays
    /// bounded.
    pub fn predict(&self, features: &[f32]) -> Result<Vec<f32>> {
        let (g, d, classes) = (self.models(), self.inputs(), self.classes());
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
            let values = logits
                .as_slice::<f32>()
                .map_err(|e| ModelError::Backend(format!("logits are not float32: {e:?}")))?;
            for m in 0..g {
                let dst = (m * n + start) * classes;
                out[dst..dst + rows * classes]
                    .copy_from_slice(&values[m * rows * classes..(m + 1) * rows * classes]);
            }
        }
        Ok(out)
    }
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

/// Model `m`'s share of a stacked parameter of `g` models (models on the first axis).
fn model_slice(stacked: &[f32], g: usize, m: usize) -> Vec<f32> {
    let per = stacked.len() / g;
    stacked[m * per..(m + 1) * per].to_vec()
}

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
use burn::tensor::{Device, Tensor, TensorData};
use memia_core::rng::stream_rng;
use rand::RngExt;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

/// The network: a multilayer perceptron on flattened inputs. No hidden layer is multinomial
/// logistic regression.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// How the models are trained.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
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
        }
    }
}

/// One layer of G stacked models: weights `[G, in, out]`, bias `[G, 1, out]`.
#[derive(Debug, Clone)]
struct Layer {
    weight: Tensor<3>,
    bias: Tensor<3>,
}

/// Per-parameter optimiser state: `first` is momentum (SGD) or the first moment (Adam).
#[derive(Debug, Clone)]
struct State {
    first: Tensor<3>,
    second: Tensor<3>,
}

/// G models of one architecture with stacked parameters.
#[derive(Debug, Clone)]
pub struct Ensemble {
    layers: Vec<Layer>,
    sizes: Vec<usize>,
    device: Device,
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
    /// PyTorch's `nn.Linear`), drawn on the host from each model's own stream so that they do
    /// not depend on the group or the backend.
    pub fn init(
        config: &MlpConfig,
        inputs: usize,
        classes: usize,
        seeds: &[u64],
        device: &Device,
    ) -> Self {
        let sizes = config.sizes(inputs, classes);
        let g = seeds.len();
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(l, w)| {
                let (fan_in, fan_out) = (w[0], w[1]);
                let bound = 1.0 / (fan_in as f64).sqrt();
                let (mut weights, mut biases) = (
                    Vec::with_capacity(g * fan_in * fan_out),
                    Vec::with_capacity(g * fan_out),
                );
                for &seed in seeds {
                    let mut rng = stream_rng(seed, l as u64);
                    weights.extend(
                        (0..fan_in * fan_out)
                            .map(|_| ((rng.random::<f64>() * 2.0 - 1.0) * bound) as f32),
                    );
                    biases.extend(
                        (0..fan_out).map(|_| ((rng.random::<f64>() * 2.0 - 1.0) * bound) as f32),
                    );
                }
                Layer {
                    weight: Tensor::from_data(
                        TensorData::new(weights, [g, fan_in, fan_out]),
                        device,
                    ),
                    bias: Tensor::from_data(TensorData::new(biases, [g, 1, fan_out]), device),
                }
            })
            .collect();
        Ensemble {
            layers,
            sizes,
            device: device.clone(),
        }
    }

    /// Number of models G.
    pub fn models(&self) -> usize {
        self.layers[0].weight.dims()[0]
    }

    fn forward(layers: &[Layer], x: Tensor<3>) -> Tensor<3> {
        let last = layers.len() - 1;
        layers.iter().enumerate().fold(x, |h, (i, layer)| {
            let z = h.matmul(layer.weight.clone()) + layer.bias.clone();
            if i < last { relu(z) } else { z }
        })
    }

    /// Trains member g on its rows of `features` (n x d, row-major) with `labels`.
    pub fn train(
        &mut self,
        features: &[f32],
        labels: &[u32],
        members: &[Member],
        config: &TrainingConfig,
    ) -> Result<(), String> {
        let (g, d, classes) = (
            self.models(),
            self.sizes[0],
            *self.sizes.last().expect("layers"),
        );
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
        if let Some(m) = members.iter().position(|m| m.train.is_empty()) {
            return Err(format!("model {m} of the group has an empty training set"));
        }
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
            let orders: Vec<Vec<usize>> = members
                .iter()
                .map(|m| {
                    let mut o = m.train.clone();
                    o.shuffle(&mut stream_rng(m.seed, 1_000_000 + epoch as u64));
                    o
                })
                .collect();
            for step in 0..group_steps {
                // Host-side batch: inputs, one-hot targets weighted by 1/count, active mask.
                let mut x = vec![0f32; g * b * d];
                let mut target = vec![0f32; g * b * classes];
                let mut active = vec![0f32; g];
                for (m, order) in orders.iter().enumerate() {
                    if step >= steps_of[m] {
                        continue;
                    }
                    active[m] = 1.0;
                    let rows = &order[step * b..((step + 1) * b).min(order.len())];
                    let weight = 1.0 / rows.len() as f32;
                    for (r, &i) in rows.iter().enumerate() {
                        let dst = (m * b + r) * d;
                        x[dst..dst + d].copy_from_slice(&features[i * d..(i + 1) * d]);
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
                        weight: l.weight.clone().autodiff().require_grad(),
                        bias: l.bias.clone().autodiff().require_grad(),
                    })
                    .collect();
                let logits = Self::forward(&params, x);
                // Sum over models of each model's mean cross-entropy over its real samples.
                let loss = (log_softmax(logits, 2) * target).sum().neg();
                let grads = loss.backward();

                let rates: Vec<f32> = (0..g)
                    .map(|m| {
                        let lr = match config.schedule {
                            Schedule::Constant => config.learning_rate,
                            Schedule::Cosine => {
                                let t = taken[m] as f64 / total_steps[m] as f64;
                                0.5 * config.learning_rate
                                    * (1.0 + (std::f64::consts::PI * t).cos())
                            }
                        };
                        (lr * f64::from(active[m])) as f32
                    })
                    .collect();
                for m in 0..g {
                    taken[m] += active[m] as usize;
                }
                let mask = self.per_model(&active);
                let rate = self.per_model(&rates);
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
                        &mask,
                        &rate,
                        corrections.as_ref(),
                        config,
                    );
                    layer.bias = update(
                        layer.bias.clone(),
                        gb,
                        bs,
                        &mask,
                        &rate,
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
                    taken
                        .iter()
                        .map(|&t| (1.0 - beta.powi(t.max(1) as i32)) as f32)
                        .collect()
                };
                Some((self.per_model(&c(beta1)), self.per_model(&c(beta2))))
            }
        }
    }

    /// Logits of every model on every row of `features` (n x d): `[G, n, C]`, row-major, in
    /// chunks of rows so that memory stays bounded.
    pub fn predict(&self, features: &[f32]) -> Vec<f32> {
        let (g, d, classes) = (
            self.models(),
            self.sizes[0],
            *self.sizes.last().expect("layers"),
        );
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
            let logits = Self::forward(&self.layers, x).into_data();
            let values = logits.as_slice::<f32>().expect("float32 logits");
            for m in 0..g {
                let dst = (m * n + start) * classes;
                out[dst..dst + rows * classes]
                    .copy_from_slice(&values[m * rows * classes..(m + 1) * rows * classes]);
            }
        }
        out
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

/// One masked optimiser step on a stacked parameter (PyTorch's SGD / Adam formulas, with the
/// L2 penalty added to the gradient). `mask` is 1 for models that take this step, else 0;
/// `rate` is the per-model learning rate, already 0 where masked.
fn update(
    param: Tensor<3>,
    grad: Tensor<3>,
    state: &mut State,
    mask: &Tensor<3>,
    rate: &Tensor<3>,
    corrections: Option<&(Tensor<3>, Tensor<3>)>,
    config: &TrainingConfig,
) -> Tensor<3> {
    let grad = grad + param.clone() * config.weight_decay;
    let keep = mask.clone().neg() + 1.0; // 1 where the model is idle this step
    match config.optimizer {
        Optimizer::Sgd { momentum } => {
            let velocity = state.first.clone() * momentum + grad;
            state.first = velocity.clone() * mask.clone() + state.first.clone() * keep;
            param - velocity * rate.clone()
        }
        Optimizer::Adam {
            beta1,
            beta2,
            epsilon,
        } => {
            let (c1, c2) = corrections.expect("Adam has bias corrections");
            let first = state.first.clone() * beta1 + grad.clone() * (1.0 - beta1);
            let second = state.second.clone() * beta2 + grad.clone() * grad * (1.0 - beta2);
            state.first = first * mask.clone() + state.first.clone() * keep.clone();
            state.second = second * mask.clone() + state.second.clone() * keep;
            let denom = (state.second.clone() / c2.clone()).sqrt() + epsilon;
            param - (state.first.clone() / c1.clone()) / denom * rate.clone()
        }
    }
}

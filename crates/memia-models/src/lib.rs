//! # memia-models
//!
//! The model zoo on Burn and the batched ensemble that trains many shadow models in one pass.
//!
//! * [`Ensemble`]: G models of one architecture ([`MlpConfig`]: multilayer perceptron, or
//!   logistic regression with no hidden layer; [`CnnConfig`]: LeNet-style convolutional network,
//!   run as grouped convolutions; [`ResNetConfig`]: a small residual network) with stacked
//!   parameters, trained together, each exactly as if alone: its own initialisation, subset,
//!   minibatch order and masked optimiser state.
//! * [`Engine`]: on the Flex device, every architecture (MLPs, logistic regressions, LeNet-style
//!   CNNs, ResNets) trains with memia's fused CPU kernels by default (dense layers through
//!   `gemm`, convolutions computed directly image by image, one-pass loss gradient, pooling and
//!   optimiser, the group's models concurrently, one per core): the same training as Burn's
//!   operations (equal within float tolerance), 2.5 - 13x faster. `Engine::Burn` keeps Burn's
//!   operations; other devices always use them.
//! * [`BurnTrainer`]: plugs the ensemble into `memia-shadow`'s scheduler, with its
//!   determinism contract per engine and device, and records each model's producer.
//! * [`ModelError`]: the one error type.
//!
//! Every entry point takes a Burn `Device`: `Device::flex()` (the default pure-Rust CPU
//! backend), `Device::ndarray()` with the `ndarray` feature, `Device::wgpu(..)` with `wgpu`.
//! Nothing hard-codes one; `BURN_DEVICE` overrides `Device::default()`.
//!
//! ```
//! use memia_data::{Dataset, embedded};
//! use memia_models::{Device, Ensemble, Member, MlpConfig, TrainingConfig};
//!
//! let digits = embedded::digits();                          // 1797 samples of 8 x 8 pixels
//! let (x, y) = (digits.to_row_major(), digits.labels());
//! let members: Vec<Member> = (0..2)
//!     .map(|m| Member { seed: m, train: (0..1797).filter(|i| i % 2 == m as usize).collect() })
//!     .collect();
//! let mut mlps = Ensemble::init(&MlpConfig::mlp(32).into(), &[64], 10, &[0, 1], &Device::flex())?;
//! mlps.train(&x, &y, &members, &TrainingConfig { epochs: 3, ..Default::default() })?;
//! let logits = mlps.predict(&x)?;                           // [2, 1797, 10], row-major
//! assert_eq!(logits.len(), 2 * 1797 * 10);
//! # Ok::<(), memia_models::ModelError>(())
//! ```
//!
//! Modules, each with one concern (none imports one that imports it back): `config` (the
//! settings), `schedule` (what both engines must agree on: minibatch orders, augmentation
//! streams, step rates, Adam's correction), `burn_engine` (Burn's layers, forward pass and
//! masked optimiser), `fused` (memia's dense CPU kernels), `ensemble` (initialisation,
//! validation, engine choice), `augment` (augmentation and queries), `device`, `trainer`.
#![warn(missing_docs)]

mod augment;
mod burn_engine;
mod config;
mod device;
mod direct_conv;
mod ensemble;
mod error;
mod fused;
mod fused_cnn;
mod fused_resnet;
mod schedule;
mod trainer;

pub use augment::{Augmentation, Query, apply_query};
pub use config::{
    CnnConfig, Engine, Footprint, Member, MlpConfig, ModelConfig, Optimizer, ResNetConfig,
    Schedule, TrainingConfig,
};
pub use device::{device_by_name, device_names};
pub use ensemble::Ensemble;
pub use error::{ModelError, Result};
pub use trainer::{BurnTrainer, PreparedPool, cpu_kernels};

/// Burn's device type, re-exported so that users need not depend on Burn directly.
pub use burn::tensor::Device;

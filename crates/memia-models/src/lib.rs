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
//! # #[cfg(not(feature = "burn"))] fn main() {}
//! # #[cfg(feature = "burn")] fn main() -> Result<(), memia_models::ModelError> {
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
//! # Ok(())
//! # }
//! ```
//!
//! Modules, each with one concern (none imports one that imports it back): `config` (the
//! settings), `network` (the one engine-neutral description of a network, [`Network`], built
//! from the settings, and the counts of [`ModelConfig::footprint`] by the same rules), `params`
//! (one model's parameters on the host and their initialisation), `schedule` (what both
//! engines must agree on: minibatch orders, augmentation streams, step rates, Adam's
//! correction), `burn_engine` (Burn's layers, forward pass and masked optimiser), `fused`,
//! `fused_cnn`, `fused_resnet` and `direct_conv` (memia's CPU kernels), `ensemble`
//! (validation, the one engine choice, where the parameters are kept), `augment` (augmentation
//! and queries), `device`, `trainer`.
//!
//! Everything that trains (the ensemble, both engines, the trainer, devices) needs the `burn`
//! feature, on by default; without it the crate is the settings and the network description.
#![warn(missing_docs)]

mod augment;
#[cfg(feature = "burn")]
mod burn_engine;
mod config;
#[cfg(feature = "burn")]
mod device;
#[cfg(feature = "burn")]
mod direct_conv;
#[cfg(feature = "burn")]
mod ensemble;
mod error;
#[cfg(feature = "burn")]
mod fused;
#[cfg(feature = "burn")]
mod fused_cnn;
#[cfg(feature = "burn")]
mod fused_resnet;
mod network;
#[cfg(feature = "burn")]
mod params;
#[cfg(feature = "burn")]
mod schedule;
mod settings;
#[cfg(feature = "burn")]
mod trainer;

pub use augment::{Augmentation, Query, apply_query};
pub use config::{
    CnnConfig, DpConfig, Engine, Family, Member, MlpConfig, ModelConfig, Optimizer, ResNetConfig,
    Schedule, TrainingConfig,
};
pub use error::{ModelError, Result};
pub use network::{Block, Conv, Footprint, Layer, Network, Role};
pub use settings::ZooSettings;

#[cfg(feature = "burn")]
pub use device::{device_by_name, device_names};
#[cfg(feature = "burn")]
pub use ensemble::Ensemble;
#[cfg(feature = "burn")]
pub use trainer::{BurnTrainer, PreparedPool, cpu_kernels};

/// Burn's device type, re-exported so that users need not depend on Burn directly.
#[cfg(feature = "burn")]
pub use burn::tensor::Device;

//! # memia-models
//!
//! The model zoo on Burn and the batched ensemble that trains many shadow models in one pass.
//!
//! * [`Ensemble`]: G models of one architecture ([`MlpConfig`]: multilayer perceptron, or
//!   logistic regression with no hidden layer; [`CnnConfig`]: LeNet-style convolutional network,
//!   run as grouped convolutions; [`ResNetConfig`]: a small residual network) with stacked
//!   parameters, trained together, each exactly as if
//!   alone: its own initialisation, subset, minibatch order and masked optimiser state.
//! * [`Engine`]: on the Flex device, MLPs and logistic regressions train with memia's fused CPU
//!   kernels by default (`gemm` products, one-pass loss gradient and optimiser, the group's
//!   models concurrently, one per core): the same training as Burn's operations (equal within
//!   float tolerance), 2.5 - 3x faster. `Engine::Burn` keeps Burn's operations; CNNs, ResNets
//!   and other devices always use them.
//! * [`BurnTrainer`]: plugs the ensemble into `memia-shadow`'s scheduler.
//!
//! Every entry point takes a Burn `Device`: `Device::flex()` (the default pure-Rust CPU
//! backend), `Device::ndarray()` with the `ndarray` feature, `Device::wgpu(..)` with `wgpu`.
//! Nothing hard-codes one; `BURN_DEVICE` overrides `Device::default()`.
#![warn(missing_docs)]

mod augment;
mod device;
mod ensemble;
mod fused;
mod trainer;

pub use augment::{Augmentation, Query, apply_query};
pub use device::{device_by_name, device_names};
pub use ensemble::{
    CnnConfig, Engine, Ensemble, Member, MlpConfig, ModelConfig, Optimizer, ResNetConfig, Schedule,
    TrainingConfig,
};
pub use trainer::BurnTrainer;

/// Burn's device type, re-exported so that users need not depend on Burn directly.
pub use burn::tensor::Device;

//! # memia-dp
//!
//! Differential privacy for memia: how much a DP-SGD training run claims, and whether its
//! models bear the claim out.
//!
//! * [`RdpAccountant`], [`dp_sgd_epsilon`] and [`noise_for_epsilon`]: the Rényi-DP accountant
//!   of the Poisson-subsampled Gaussian mechanism, the same numbers as Google's
//!   `dp-accounting` (tested on a grid of 90 settings).
//! * [`OneRunAudit`]: the audit of Steinke, Nasr and Jagielski (2023) from a single training
//!   run with many canaries, each included with probability 1/2.
//! * [`ManyRunAudit`]: the audit from many runs (a canary in half of the models), its threshold
//!   chosen on some of the models and the bound computed on the others.
//!
//! Both audits give a lower bound on epsilon that holds with the stated confidence whatever
//! the attack: a bound above the claimed epsilon proves the claim false (a bug in the training
//! or in its accounting). A bound below it proves nothing: with a black-box attack on the final
//! model, that is the expected outcome for a correct DP-SGD.
//!
//! No Burn: the trainer (`memia-models`) uses the accountant, the audits read scores.
#![warn(missing_docs)]

mod accountant;
mod audit;
pub mod error;

pub use accountant::{Epsilon, RdpAccountant, default_orders, dp_sgd_epsilon, noise_for_epsilon};
pub use audit::{ManyRunAudit, ManyRunBound, OneRunAudit, OneRunBound, one_run_p_value};
pub use error::{DpError, Result};

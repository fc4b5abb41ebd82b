//! # memia-memorization
//!
//! The memorization oracle. Feldman and Zhang's *label memorization* of a pool sample is how
//! much more often a model is right on it when trained on it than when not:
//!
//! `mem(i) = P[h(x_i) = y_i | i in S] - P[h(x_i) = y_i | i not in S]`.
//!
//! memia estimates it from the same shadow models an attack trains (a [`KeepMatrix`] and the
//! models' logits), with a standard error and a confidence interval per sample, and never turns
//! a sample without IN or OUT models into a silent 0. Also here: influence on held-out samples,
//! import of Feldman and Zhang's published estimates, the outlierness baselines the paper
//! compares against, and helpers to select attack candidates.
//!
//! ```
//! use memia_core::KeepMatrix;
//! use memia_memorization::MemorizationConfig;
//! use ndarray::Array2;
//!
//! let keep = KeepMatrix::balanced(8, 3, 1)?;
//! // Every model is right on sample 0; only the models trained on sample 1 are right on it.
//! let correct = Array2::from_shape_fn((8, 3), |(k, i)| match i {
//!     0 => 1.0f32,
//!     1 => if keep.get(k, 1) { 1.0 } else { 0.0 },
//!     _ => (k % 2) as f32,
//! });
//! let mem = MemorizationConfig::default().estimate(&keep, correct.view())?;
//! assert_eq!(mem.score[0], 0.0);
//! assert_eq!(mem.score[1], 1.0);
//! # Ok::<(), memia_memorization::MemorizationError>(())
//! ```
//!
//! [`KeepMatrix`]: memia_core::KeepMatrix
#![warn(missing_docs)]

pub mod error;
mod estimator;
mod influence;
pub mod outlier;
mod published;
pub mod select;
mod trajectory;

pub use error::{MemorizationError, Result};
pub use estimator::{Memorization, MemorizationConfig, Missing, Outcome, SampleMemorization};
pub use influence::{influence, influence_rows};
pub use published::{PublishedMemorization, read_published};
pub use trajectory::{LateLearning, late_learning};

//! # memia-data
//!
//! The data pools that shadow-model audits start from.
//!
//! * [`Dataset`]: the trait a user implements to audit their own data; [`InMemoryDataset`]
//!   and cheap [`Subset`]s by index.
//! * Loaders that fail loudly and precisely: [`idx`] (MNIST-format files, gzipped or raw),
//!   [`cifar`] (CIFAR-10/100 binary batches), [`numpy`] (`.npz` / `.npy`).
//! * [`embedded::digits`]: a real default data set compiled into the crate (feature
//!   `embedded`, on by default), so an audit runs with no files.
//! * [`longtail`]: synthetic long-tailed data after Feldman's model.
//! * [`PoolBuilder`]: an in-distribution subset plus out-of-distribution or mislabeled
//!   canaries, each sample with its [`Provenance`].
//! * [`preprocess`]: normalisation, flattening, image conversion, seeded shuffles and splits.
//! * `download` (feature `download`): the canonical MNIST-family files, fetched into a cache
//!   and checked by SHA-256.
//!
//! ```
//! use memia_data::{Dataset, embedded};
//!
//! let digits = embedded::digits();
//! assert_eq!((digits.len(), digits.feature_shape(), digits.classes()), (1797, &[1, 8, 8][..], 10));
//! ```
#![warn(missing_docs)]

pub mod cifar;
mod dataset;
#[cfg(feature = "download")]
pub mod download;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod error;
pub mod idx;
pub mod longtail;
pub mod numpy;
mod pool;
pub mod preprocess;

pub use dataset::{Dataset, InMemoryDataset, Subset};
pub use error::{DataError, Result};
pub use pool::{CanarySource, LabelPolicy, Pool, PoolBuilder, Provenance};

//! # memia-shadow
//!
//! The shadow-model scheduler. A [`Plan`] fixes everything that determines a run (the pool's
//! fingerprint, the number of models, how their training subsets are drawn, the seed, the
//! trainer's settings) and has a content hash. A [`RunDir`] trains the plan's models in groups
//! with any [`ShadowTrainer`] and writes each model's logits on the whole pool as soon as it is
//! done, atomically, so that:
//!
//! * rerunning skips finished models, and a run killed at any moment loses only the models in
//!   progress;
//! * several processes or machines can each train a shard (a range of models) of one plan,
//!   and their union is identical to a single run for trainers whose outputs do not depend on
//!   how models are grouped (see [`ShadowTrainer`]'s determinism contract);
//! * every model file records its [`Producer`], so a run that mixes producers says so;
//! * a run directory of another plan is refused with a clear error;
//! * extendable plans (Bernoulli and fixed-size subsets) can grow later without retraining.
//!
//! Model families implement [`ShadowTrainer`]; [`SoftmaxRegression`] is a small pure-Rust one.
//!
//! ```
//! use memia_data::embedded;
//! use memia_shadow::{InclusionScheme, Plan, RunDir, SoftmaxRegression};
//!
//! let pool = embedded::digits();
//! let trainer = SoftmaxRegression { epochs: 5, ..Default::default() };
//! let plan = Plan::new(&pool, 4, InclusionScheme::Balanced { ratio: 0.5 }, 1, &trainer)?;
//! let dir = tempfile::tempdir().unwrap();
//! let run = RunDir::create(dir.path().join("run"), &plan)?;
//! run.train(&trainer, &pool, 0..4, |p| eprintln!("{}/{} models", p.done, p.total))?;
//! let logits = run.logits()?;                       // 4 x 1797 x 1 x 10
//! assert_eq!(logits.models(), 4);
//! # Ok::<(), memia_shadow::ShadowError>(())
//! ```
#![warn(missing_docs)]

pub mod error;
mod external;
pub mod memory;
mod plan;
mod run;
mod softmax;
mod trainer;

pub use error::{Result, ShadowError};
pub use external::{ExternalTrainer, seed32, shell_quote};
pub use memory::MemoryLimit;
pub use plan::{InclusionScheme, Plan, PoolFingerprint, keep_sha256, labels_sha256};
pub use run::{ProducedModels, Progress, RunDir, Storing, TrainReport, model_ranges};
pub use softmax::SoftmaxRegression;
pub use trainer::{MemoryNeed, ModelJob, Producer, ShadowTrainer, TrainerError, TrainingSession};

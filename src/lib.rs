//! # memia
//!
//! Memorization-aware membership inference. This facade re-exports the focused crates so an
//! application needs one dependency:
//!
//! * [`core`] (`memia-core`): keep matrices, shadow-model logits, membership signals, numpy I/O,
//!   import of LiRA reference runs;
//! * [`metrics`] (`memia-metrics`): ROC curves, AUROC, TPR at low FPR, epsilon lower bounds,
//!   bootstrap intervals, correlations;
//! * [`memorization`] (`memia-memorization`): Feldman-Zhang memorization and influence with
//!   error bars, outlierness baselines, candidate selection;
//! * [`attacks`] (`memia-attacks`): LiRA variants, RMIA, LOSS, global threshold, privacy score,
//!   Hellinger distances, the shadow-model budget planner, leave-one-model-out evaluation;
//! * [`data`] (`memia-data`): the `Dataset` trait, IDX / CIFAR / npz loaders, the embedded
//!   digits, long-tail data, pools with canaries;
//! * [`shadow`] (`memia-shadow`): the shadow-model scheduler (content-hashed plans, resumable,
//!   sharded runs);
//! * [`models`] (`memia-models`): the model zoo's settings and network description; with the
//!   default feature `models`, the Burn model zoo and the batched ensemble trainer. Without it
//!   (`memia = { version = "0.1", default-features = false }`) nothing of Burn is compiled: the
//!   statistics work on logits from any framework;
//! * [`dp`] (`memia-dp`): the RDP accountant of DP-SGD and privacy audits whose epsilon lower
//!   bounds hold (one run, many runs);
//! * [`report`] (`memia-report`): the audit of a run as JSON, CSV, SVG plots and HTML;
//! * [`audit`] (`memia-audit`): what the `memia` command does, as a library: a run directory
//!   with its configuration, pool and trainer, one target type, one evaluation, the audit, the
//!   sequential audit and imports (training memia's own models needs the `models` feature).
//!
//! ```
//! use memia::metrics::{Direction, RocCurve};
//!
//! let roc = RocCurve::new(&[0.9, 0.8, 0.3, 0.1], &[true, false, true, false], Direction::HigherIsMember)?;
//! assert_eq!(roc.auc(), 0.75);
//! # Ok::<(), memia::metrics::MetricsError>(())
//! ```
#![warn(missing_docs)]

pub use memia_attacks as attacks;
pub use memia_audit as audit;
pub use memia_core as core;
pub use memia_data as data;
pub use memia_dp as dp;
pub use memia_memorization as memorization;
pub use memia_metrics as metrics;
pub use memia_models as models;
pub use memia_report as report;
pub use memia_shadow as shadow;

/// The README's Rust examples, compiled (and run where they are not `no_run`) as doctests so
/// that they cannot go stale.
#[cfg(all(doctest, feature = "models"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

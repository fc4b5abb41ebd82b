//! memia's application layer: what the `memia` command does, callable from Rust.
//!
//! * [`Run`]: a run directory and everything memia keeps in it (plan, keep matrix, logits,
//!   labels, pool description, configuration, producers), planned from a [`RunConfig`] with
//!   [`Run::plan`] or opened with [`Run::open`];
//! * [`RunConfig`]: the configuration file's schema, and building the pool ([`pool`]) and the
//!   trainer ([`trainer`]) from it;
//! * [`AuditTarget`]: the model attacked, a model of the run or one trained elsewhere;
//! * the one evaluation: [`Run::score`] then [`TargetScores::evaluate`] (per sample set a ROC
//!   curve with its intervals, or the reason there is none; undetermined scores read by
//!   [`memia_metrics::Undetermined`]'s rule), which the report ([`Run::audit`]) and the
//!   leave-one-model-out curve read too;
//! * [`import::Import`]: models trained elsewhere become a run;
//! * [`AuditError`]: one error type, with the library errors kept as sources.
//!
//! Plan, train, audit and report in a few lines, on the embedded digits (training memia's own
//! models needs the `train` feature, on by default; without it, no Burn is compiled and the
//! crate plans, opens, scores, audits and imports runs, memia's models included, and trains
//! those of an external trainer):
//!
//! ```
//! # #[cfg(feature = "train")] {
//! use memia_audit::{AuditTarget, Run, RunConfig};
//! use memia_audit::trainer::{Placement, trainer};
//!
//! let dir = tempfile::tempdir()?;
//! let mut config = RunConfig::digits();
//! config.plan.models = 4;
//! config.training.epochs = 2;
//! let planned = Run::plan(&config, "example".as_ref(), &dir.path().join("run"))?;
//! let run = planned.run;
//! let trainer = trainer(&config, &run.path(), &Placement::default())?;
//! run.train(trainer.as_dyn(), &planned.pool, 0..4, false, |_| {})?;
//!
//! let target = AuditTarget::Model(0);
//! let judged = run.score(&config.audit.attack, &target)?.evaluate(&[], &[0.1])?;
//! let all = judged[0].scored().expect("model 0's membership is known");
//! assert!(all.auroc > 0.0 && all.positives + all.negatives > 0);
//!
//! let audit = run.audit(&config.audit, &target, Some(&planned.pool), |_, _, _| {})?;
//! assert_eq!(audit.summary.all.as_ref().map(|s| s.auroc), Some(all.auroc));
//! audit.write(&dir.path().join("report"))?;
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod config;
pub mod dp;
pub mod error;
pub mod import;
pub mod pool;
mod run;
mod status;
mod target;
pub mod text;
pub mod trainer;

pub use config::RunConfig;
pub use dp::{Claim, DpAudit, DpAuditConfig};
pub use error::{AuditError, Result};
pub use run::{CheckedTraining, Planned, PoolInfo, Run, TargetScores, write_run_files};
pub use status::RunStatus;
pub use target::{AuditTarget, OutsideModel, read_membership};

//! # memia-report
//!
//! An audit of one run, and its report. [`Audit::run`] takes the keep matrix, every model's
//! logits and the labels, picks a target model (the others are its shadow models) and
//! computes what an auditor wants to see: memorization and privacy scores from the shadow
//! models, the attack's scores on the target, ROC summaries for all samples, the
//! high-memorization candidates and any named groups, the budget planner's prediction, and
//! the attack's quality against the number of shadow models (leave one model out).
//! [`Audit::write`] writes `summary.json`, `samples.csv`, four SVG plots, thumbnails of the
//! samples it singles out (for image pools) and an `index.html` that shows them together and
//! explains every line and band. The target is a model of the run, or a model trained
//! elsewhere ([`ExternalTarget`]), with or without its membership.
//!
//! ```
//! use memia_core::{KeepMatrix, Logits};
//! use memia_report::{Audit, AuditConfig, AuditInputs};
//! use ndarray::Array4;
//!
//! let keep = KeepMatrix::balanced(8, 60, 1)?;
//! // Models are right on what they trained on, and on every third other sample.
//! let logits = Logits::new(Array4::from_shape_fn((8, 60, 1, 2), |(k, i, _, c)| {
//!     let right = keep.get(k, i) || i % 3 == 0;
//!     if (c == 0) == right { 2.0 + (k + i) as f32 * 0.01 } else { 0.0 }
//! }))?;
//! let labels = vec![0u32; 60];
//! let inputs = AuditInputs::new(&keep, &logits, &labels);
//! let audit = Audit::run(inputs, &AuditConfig::default(), |_, _, _| {})?;
//! assert!(audit.summary.all.as_ref().unwrap().auroc > 0.5);
//! let dir = tempfile::tempdir().unwrap();
//! let files = audit.write(dir.path())?;
//! assert!(files.index.exists());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

mod audit;
pub mod csv;
pub mod error;
pub mod plots;
pub mod sequential;
mod thumbnails;
mod write;

pub use audit::{
    Audit, AuditConfig, AuditInputs, AuditStage, BudgetSummary, ExternalTarget,
    MemorizationSummary, NotScored, Panel, SCHEMA_VERSION, SHOWN_PER_PANEL, SampleImages, Summary,
    Target, Thumbnail, describe_rule,
};
pub use error::{ReportError, Result};
pub use write::{PLOTS, ReportFiles, counted, headline, html_escape, run_shape};

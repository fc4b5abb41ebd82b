//! The one error type of `memia-report`.

use std::path::PathBuf;

/// Everything that can go wrong while auditing or writing a report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// Error from `memia-core`.
    #[error(transparent)]
    Core(#[from] memia_core::CoreError),
    /// Error from `memia-metrics`.
    #[error(transparent)]
    Metrics(#[from] memia_metrics::MetricsError),
    /// Error from `memia-memorization`.
    #[error(transparent)]
    Memorization(#[from] memia_memorization::MemorizationError),
    /// Error from `memia-attacks`.
    #[error(transparent)]
    Attack(#[from] memia_attacks::AttackError),
    /// Error from `memia-shadow` (training the shadow models of a sequential audit).
    #[error(transparent)]
    Shadow(#[from] memia_shadow::ShadowError),
    /// The inputs do not fit together.
    #[error("{0}")]
    Invalid(String),
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A plot could not be drawn.
    #[error("plot {name}: {reason}")]
    Plot {
        /// Which plot.
        name: &'static str,
        /// What failed.
        reason: String,
    },
}

/// Result with [`ReportError`].
pub type Result<T> = std::result::Result<T, ReportError>;

//! The one error type of the command line.

use std::path::PathBuf;

/// Everything a command can fail with; printed as `error: ...` with a non-zero exit.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments or a bad combination of them.
    #[error("{0}")]
    Usage(String),
    /// A configuration file that does not parse.
    #[error("{path}: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file that cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A run directory that is not complete or not consistent.
    #[error("run {path}: {reason}")]
    Run {
        /// The run directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// From memia-core.
    #[error(transparent)]
    Core(#[from] memia_core::CoreError),
    /// From memia-data.
    #[error(transparent)]
    Data(#[from] memia_data::DataError),
    /// From memia-shadow.
    #[error(transparent)]
    Shadow(#[from] memia_shadow::ShadowError),
    /// From memia-memorization.
    #[error(transparent)]
    Memorization(#[from] memia_memorization::MemorizationError),
    /// From memia-attacks.
    #[error(transparent)]
    Attack(#[from] memia_attacks::AttackError),
    /// From memia-metrics.
    #[error(transparent)]
    Metrics(#[from] memia_metrics::MetricsError),
    /// From memia-report.
    #[error(transparent)]
    Report(#[from] memia_report::ReportError),
}

/// Result with [`CliError`].
pub type Result<T> = std::result::Result<T, CliError>;

/// An I/O error on `path`.
pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> CliError {
    let path = path.into();
    move |source| CliError::Io { path, source }
}

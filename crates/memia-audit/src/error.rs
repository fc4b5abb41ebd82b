//! The one error type of the audit layer (and of the command line, which prints it).

use std::path::PathBuf;

/// Everything a run, its configuration or an audit can fail with. The command line prints it as
/// `error: ...` with its sources and exits non-zero.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A setting, or a combination of settings, that cannot be used (a flag, an argument of a
    /// library call, a value of the configuration without a file to name).
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
    /// A file that does not parse (TOML, JSON); the parser's error is the source.
    #[error("{path}: {source}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A setting that a library refuses where no file names it (the external command of
    /// `[train]`); the library's error is the source.
    #[error("[{table}] {source}")]
    Refused {
        /// The table of the setting.
        table: &'static str,
        /// What the library said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The plan the settings of a configuration file describe, refused by the scheduler (a
    /// size that does not fit the memory, a scheme it cannot draw); its error is the source.
    #[error("{path}: [{table}] {source}")]
    PlanSetting {
        /// The configuration file.
        path: PathBuf,
        /// The table of the setting (`plan`, `train`, `model`).
        table: &'static str,
        /// What memia-shadow said.
        #[source]
        source: memia_shadow::ShadowError,
    },
    /// memia's own models were asked to train, and this build has no model zoo.
    #[error(
        "training memia's own models needs memia-audit's `train` feature (memia's default \
         `models` feature); this build has no Burn"
    )]
    TrainingNotBuilt,
    /// A file that cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A target model the run does not have.
    #[error("target model {target} is out of range: the run has {}", crate::text::run_models(*.models))]
    TargetOutOfRange {
        /// The model asked for.
        target: usize,
        /// Models in the run.
        models: usize,
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
    /// From memia-models: a device name this build does not have, a model that cannot be
    /// built or trained. The library's error and its causes stay in the chain.
    #[error(transparent)]
    Model(#[from] memia_models::ModelError),
    /// The differential-privacy accountant or audit refused its input.
    #[error(transparent)]
    Dp(#[from] memia_dp::DpError),
    /// A setting of a configuration file that memia-models refuses (an architecture, a
    /// training setting, a model that does not fit the pool or the memory). The message names
    /// the file and the table the setting lives in; the library's error is the
    /// [`source`](std::error::Error::source), so that its own causes (a memory limit that
    /// does not parse, say) are printed after it.
    #[error("{path}: {}{source}", in_table(*.table))]
    ModelSetting {
        /// The configuration file.
        path: PathBuf,
        /// The table of the setting (`model`, `training`), when one is named.
        table: Option<&'static str>,
        /// What memia-models said.
        #[source]
        source: memia_models::ModelError,
    },
}

/// `[table] ` before a setting's error, or nothing.
fn in_table(table: Option<&str>) -> String {
    table.map(|t| format!("[{t}] ")).unwrap_or_default()
}

/// Result with [`AuditError`].
pub type Result<T> = std::result::Result<T, AuditError>;

/// A [`AuditError::Usage`] with this message.
pub fn usage(message: impl Into<String>) -> AuditError {
    AuditError::Usage(message.into())
}

/// An I/O error on `path`.
pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> AuditError {
    let path = path.into();
    move |source| AuditError::Io { path, source }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    /// A model setting's error names the file and the table, and keeps memia-models' error as
    /// its source (which `main` does not print twice: the message already holds it).
    #[test]
    fn a_refused_setting_keeps_its_source() {
        let refused = || "tpu".parse::<memia_models::Engine>().unwrap_err();
        let e = AuditError::ModelSetting {
            path: PathBuf::from("a.toml"),
            table: Some("train"),
            source: refused(),
        };
        let said = e.to_string();
        assert!(
            said.starts_with("a.toml: [train] unknown engine 'tpu'"),
            "{said}"
        );
        let source = e.source().expect("the library's error is the source");
        assert!(source.is::<memia_models::ModelError>());
        assert!(said.ends_with(&source.to_string()));
        let untabled = AuditError::ModelSetting {
            path: PathBuf::from("a.toml"),
            table: None,
            source: refused(),
        };
        assert!(untabled.to_string().starts_with("a.toml: unknown engine"));
        // Through `?`, the library's error is kept whole, with its message.
        let plain = AuditError::from(refused());
        assert!(matches!(plain, AuditError::Model(_)));
        assert_eq!(plain.to_string(), refused().to_string());
    }
}

//! The one error type of `memia-shadow`.

use std::path::PathBuf;

/// Everything that can go wrong when planning or running shadow-model training.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShadowError {
    /// Error from `memia-core` (arrays, files).
    #[error(transparent)]
    Core(#[from] memia_core::CoreError),

    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A JSON file is malformed.
    #[error("{}: {reason}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },

    /// The run directory belongs to another plan, or the pool or trainer differ from the plan.
    #[error("{}: {reason}", path.display())]
    PlanMismatch {
        /// The run directory.
        path: PathBuf,
        /// What differs.
        reason: String,
    },

    /// A setting is invalid.
    #[error("invalid {name}: {reason}")]
    InvalidArgument {
        /// The setting.
        name: &'static str,
        /// Why.
        reason: String,
    },

    /// The trainer failed on a model.
    #[error("training model {model} failed: {reason}")]
    Trainer {
        /// The model index.
        model: usize,
        /// The trainer's message.
        reason: String,
    },

    /// Outputs were requested before every model finished.
    #[error("{}: {missing} of {models} models are not trained yet (first missing: model {first})", path.display())]
    Incomplete {
        /// The run directory.
        path: PathBuf,
        /// How many are missing.
        missing: usize,
        /// Total models.
        models: usize,
        /// The first missing model.
        first: usize,
    },
}

/// Short for `Result<T, ShadowError>`.
pub type Result<T, E = ShadowError> = std::result::Result<T, E>;

pub(crate) fn invalid(name: &'static str, reason: impl Into<String>) -> ShadowError {
    ShadowError::InvalidArgument {
        name,
        reason: reason.into(),
    }
}

pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> ShadowError {
    ShadowError::Io {
        path: path.into(),
        source,
    }
}

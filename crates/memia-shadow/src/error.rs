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

    /// The trainer failed on a group of models, or returned outputs that cannot be right (wrong
    /// shape, non-finite logits). The trainer's own error is the `source`.
    #[error("training {} failed", model_list(models))]
    Trainer {
        /// The plan's indices of the models of the group.
        models: Vec<usize>,
        /// What went wrong.
        #[source]
        source: crate::TrainerError,
    },

    /// A model's logits cannot be right: wrong shape or non-finite values.
    #[error("model {model}'s logits: {reason}")]
    BadLogits {
        /// The model index.
        model: usize,
        /// What is wrong.
        reason: String,
    },

    /// A setting asks for more memory than memia may use (see [`crate::MemoryLimit`]):
    /// refused before anything of that size is allocated, rather than aborting on a failed
    /// allocation. Boxed: the details are larger than every other variant.
    #[error("{0}")]
    TooLarge(Box<crate::memory::TooLarge>),

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

/// `model 3` or `models 3, 4, 5`.
fn model_list(models: &[usize]) -> String {
    let list: Vec<String> = models.iter().map(usize::to_string).collect();
    match list.len() {
        1 => format!("model {}", list[0]),
        _ => format!("models {}", list.join(", ")),
    }
}

pub(crate) fn trainer(models: &[usize], source: impl Into<crate::TrainerError>) -> ShadowError {
    ShadowError::Trainer {
        models: models.to_vec(),
        source: source.into(),
    }
}

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

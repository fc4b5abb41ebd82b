//! The one error type of `memia-models`.

/// Everything that can go wrong when building, training or querying models. Messages name the
/// setting, the model or the sample that is wrong and what was expected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The architecture cannot be built for the data (wrong sample shape, too small images,
    /// an even kernel, no stage).
    #[error("invalid architecture: {reason}")]
    Architecture {
        /// What is wrong.
        reason: String,
    },

    /// A training or ensemble setting is out of range.
    #[error("invalid {name}: {reason}")]
    InvalidSetting {
        /// The setting.
        name: &'static str,
        /// Why.
        reason: String,
    },

    /// The data given to train or query do not fit the ensemble (lengths, labels, rows).
    #[error("invalid {name}: {reason}")]
    InvalidData {
        /// The argument.
        name: &'static str,
        /// What is wrong.
        reason: String,
    },

    /// An image operation (augmentation, a query) on samples that are not `[C, H, W]` images.
    #[error("{what} needs [C, H, W] samples, got shape {shape:?}")]
    NotAnImage {
        /// The operation.
        what: String,
        /// The samples' shape.
        shape: Vec<usize>,
    },

    /// A device name that is unknown, or whose backend this build lacks.
    #[error("{reason}; this build has: {}", available.join(", "))]
    Device {
        /// What is wrong with the name.
        reason: String,
        /// The names this build understands.
        available: Vec<&'static str>,
    },

    /// An engine name that is not `auto` or `burn`.
    #[error("unknown engine '{0}' (auto or burn)")]
    UnknownEngine(String),

    /// The memory check of the scheduler ([`memia_shadow::memory`]) refused: a model needs
    /// more memory than memia may use (refused before anything is allocated), or
    /// `MEMIA_MEMORY_LIMIT` does not parse.
    #[error(transparent)]
    Memory(Box<memia_shadow::ShadowError>),

    /// Burn returned something it should not have (a missing gradient, a tensor of another
    /// element type): a bug in memia or Burn, reported rather than unwrapped.
    #[error("Burn backend: {0}")]
    Backend(String),
}

/// Short for `Result<T, ModelError>`.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;

pub(crate) fn invalid_setting(name: &'static str, reason: impl Into<String>) -> ModelError {
    ModelError::InvalidSetting {
        name,
        reason: reason.into(),
    }
}

#[cfg(feature = "burn")] // the ensemble's arguments
pub(crate) fn invalid_data(name: &'static str, reason: impl Into<String>) -> ModelError {
    ModelError::InvalidData {
        name,
        reason: reason.into(),
    }
}

pub(crate) fn architecture(reason: impl Into<String>) -> ModelError {
    ModelError::Architecture {
        reason: reason.into(),
    }
}

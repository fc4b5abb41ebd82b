//! The one error type of `memia-memorization`.

/// Everything that can go wrong when estimating memorization or outlierness.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MemorizationError {
    /// Error from `memia-core` (files, shapes, labels).
    #[error(transparent)]
    Core(#[from] memia_core::CoreError),

    /// Two inputs disagree in shape.
    #[error("{what}: shape {found:?}, expected {expected:?}")]
    Shape {
        /// Which input.
        what: &'static str,
        /// Its shape.
        found: Vec<usize>,
        /// The shape it must have.
        expected: Vec<usize>,
    },

    /// An input value is NaN, infinite or outside its range.
    #[error("{what}[{index:?}] = {value}: {expected}")]
    BadValue {
        /// Which input.
        what: &'static str,
        /// Position of the first offending value.
        index: Vec<usize>,
        /// The value.
        value: f64,
        /// What was expected.
        expected: &'static str,
    },

    /// A sample has no IN model or no OUT model, and the caller asked for every sample.
    #[error(
        "sample {sample} is IN for {in_count} and OUT for {out_count} models: memorization needs \
         at least one of each ({missing} samples lack one; allow missing values to keep them as NaN)"
    )]
    Undetermined {
        /// The first such sample.
        sample: usize,
        /// Its IN count.
        in_count: usize,
        /// Its OUT count.
        out_count: usize,
        /// How many samples are affected.
        missing: usize,
    },

    /// A parameter is outside its valid range.
    #[error("invalid {name}: {reason}")]
    InvalidArgument {
        /// The parameter.
        name: &'static str,
        /// Why.
        reason: String,
    },

    /// A result would not fit the memory budget the caller set.
    #[error("{what} needs {needed} bytes, over the budget of {budget}: {hint}")]
    TooLarge {
        /// What was to be allocated.
        what: &'static str,
        /// Bytes needed.
        needed: u64,
        /// The budget.
        budget: u64,
        /// What to do instead.
        hint: &'static str,
    },
}

/// Short for `Result<T, MemorizationError>`.
pub type Result<T, E = MemorizationError> = std::result::Result<T, E>;

pub(crate) fn invalid(name: &'static str, reason: impl Into<String>) -> MemorizationError {
    MemorizationError::InvalidArgument {
        name,
        reason: reason.into(),
    }
}

pub(crate) fn check_shape(what: &'static str, found: &[usize], expected: &[usize]) -> Result<()> {
    if found != expected {
        return Err(MemorizationError::Shape {
            what,
            found: found.to_vec(),
            expected: expected.to_vec(),
        });
    }
    Ok(())
}

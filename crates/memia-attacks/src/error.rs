//! The one error type of `memia-attacks`.

/// Everything that can go wrong when fitting, scoring or evaluating an attack.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttackError {
    /// Error from `memia-core`.
    #[error(transparent)]
    Core(#[from] memia_core::CoreError),

    /// Error from `memia-metrics`.
    #[error(transparent)]
    Metrics(#[from] memia_metrics::MetricsError),

    /// Two inputs disagree in shape.
    #[error("{what}: shape {found:?}, expected {expected}")]
    Shape {
        /// Which input.
        what: &'static str,
        /// Its shape.
        found: Vec<usize>,
        /// What it must be.
        expected: String,
    },

    /// An observation is NaN or infinite.
    #[error("{what}{index:?} = {value}: observations must be finite")]
    NonFinite {
        /// Which input.
        what: &'static str,
        /// Where.
        index: Vec<usize>,
        /// The value.
        value: f64,
    },

    /// A setting is invalid or the data cannot support it.
    #[error("invalid {name}: {reason}")]
    InvalidArgument {
        /// The setting.
        name: &'static str,
        /// Why.
        reason: String,
    },
}

/// Short for `Result<T, AttackError>`.
pub type Result<T, E = AttackError> = std::result::Result<T, E>;

pub(crate) fn invalid(name: &'static str, reason: impl Into<String>) -> AttackError {
    AttackError::InvalidArgument {
        name,
        reason: reason.into(),
    }
}

/// Checks a K x N x A shadow array against the keep matrix, and that it is finite.
pub(crate) fn check_shadow(
    keep: &memia_core::KeepMatrix,
    shadow: &ndarray::ArrayView3<'_, f64>,
) -> Result<()> {
    let (k, n, a) = shadow.dim();
    if k != keep.models() || n != keep.samples() || a == 0 {
        return Err(AttackError::Shape {
            what: "shadow observations",
            found: vec![k, n, a],
            expected: format!(
                "[{}, {}, A >= 1] (models x samples x queries, as the keep matrix)",
                keep.models(),
                keep.samples()
            ),
        });
    }
    check_finite(
        "shadow observations",
        shadow
            .indexed_iter()
            .map(|((k, i, a), &v)| (vec![k, i, a], v)),
    )
}

/// Checks an N x A target array.
pub(crate) fn check_target(
    samples: usize,
    queries: usize,
    target: &ndarray::ArrayView2<'_, f64>,
) -> Result<()> {
    if target.dim() != (samples, queries) {
        return Err(AttackError::Shape {
            what: "target observations",
            found: target.shape().to_vec(),
            expected: format!(
                "[{samples}, {queries}] (samples x queries, as the shadow observations)"
            ),
        });
    }
    check_finite(
        "target observations",
        target.indexed_iter().map(|((i, a), &v)| (vec![i, a], v)),
    )
}

fn check_finite(
    what: &'static str,
    mut values: impl Iterator<Item = (Vec<usize>, f64)>,
) -> Result<()> {
    match values.find(|(_, v)| !v.is_finite()) {
        Some((index, value)) => Err(AttackError::NonFinite { what, index, value }),
        None => Ok(()),
    }
}

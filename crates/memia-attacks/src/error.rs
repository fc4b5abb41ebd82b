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

    /// Error from `memia-memorization`.
    #[error(transparent)]
    Memorization(#[from] memia_memorization::MemorizationError),

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
    check_shadow_shape(keep, shadow)?;
    check_finite("shadow observations", shadow)
}

/// The shape half of [`check_shadow`], for callers that check finiteness during their own pass.
pub(crate) fn check_shadow_shape(
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
    Ok(())
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
    check_finite("target observations", target)
}

/// Fails naming the first non-finite value. A fast scan first; indices only on failure.
pub(crate) fn check_finite<D: ndarray::Dimension>(
    what: &'static str,
    values: &ndarray::ArrayView<'_, f64, D>,
) -> Result<()> {
    use rayon::prelude::*;
    let all_finite = match values.as_slice_memory_order() {
        Some(slice) => slice
            .par_chunks(1 << 16)
            .all(|chunk| chunk.iter().all(|v| v.is_finite())),
        None => values.iter().all(|v| v.is_finite()),
    };
    if all_finite {
        return Ok(());
    }
    let flat = values
        .iter()
        .position(|v| !v.is_finite())
        .expect("a non-finite value exists");
    let value = *values.iter().nth(flat).expect("in range");
    // Unravel the logical (C-order) position into an index.
    let mut index = vec![0; values.ndim()];
    let mut rest = flat;
    for (slot, &dim) in index.iter_mut().zip(values.shape()).rev() {
        *slot = rest % dim;
        rest /= dim;
    }
    Err(AttackError::NonFinite { what, index, value })
}

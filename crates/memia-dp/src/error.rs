//! The one error type of `memia-dp`.

/// What can go wrong in an accountant's or an audit's computation. Messages name the argument
/// and what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DpError {
    /// An argument is outside its domain (a sampling rate outside (0, 1], a negative noise
    /// multiplier, a delta outside (0, 1), ...).
    #[error("{name}: {reason}")]
    InvalidArgument {
        /// The argument.
        name: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// No noise multiplier reaches the target epsilon (it is too small for the steps and delta).
    #[error(
        "no noise multiplier up to {max_noise} reaches epsilon {target} for {steps} steps at \
         sampling rate {rate} and delta {delta}"
    )]
    Unreachable {
        /// The epsilon asked for.
        target: f64,
        /// The largest noise multiplier tried.
        max_noise: f64,
        /// Steps of DP-SGD.
        steps: u64,
        /// Sampling rate.
        rate: f64,
        /// Delta.
        delta: f64,
    },
    /// A metric failed (an empty or invalid set of scores).
    #[error(transparent)]
    Metrics(#[from] memia_metrics::MetricsError),
}

/// `Result` with [`DpError`].
pub type Result<T, E = DpError> = std::result::Result<T, E>;

pub(crate) fn invalid(name: &'static str, reason: impl Into<String>) -> DpError {
    DpError::InvalidArgument {
        name,
        reason: reason.into(),
    }
}

/// Checks that `value` is finite and in the open interval (0, 1) (or (0, 1] with `one`).
pub(crate) fn check_rate(name: &'static str, value: f64, one: bool) -> Result<()> {
    let ok = value > 0.0 && (value < 1.0 || (one && value == 1.0));
    if ok {
        Ok(())
    } else {
        let interval = if one { "(0, 1]" } else { "(0, 1)" };
        Err(invalid(name, format!("{value} is not in {interval}")))
    }
}

//! The one error type of `memia-metrics`.

/// Everything that can go wrong when computing a metric. Messages name the argument and what
/// was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// An input value is NaN or infinite.
    #[error("{what}[{index}] is {value}: every value must be finite")]
    NonFinite {
        /// Which input.
        what: &'static str,
        /// Position of the first offending value.
        index: usize,
        /// The value.
        value: f64,
    },

    /// Two inputs that must pair up have different lengths.
    #[error("{left} has {left_len} entries but {right} has {right_len}")]
    LengthMismatch {
        /// First input's name.
        left: &'static str,
        /// Its length.
        left_len: usize,
        /// Second input's name.
        right: &'static str,
        /// Its length.
        right_len: usize,
    },

    /// An input has no elements.
    #[error("{what} is empty")]
    Empty {
        /// Which input.
        what: &'static str,
    },

    /// Every score is undetermined (not finite): there is nothing to draw a curve from.
    #[error("none of the {samples} scores is finite: the attack judged no sample")]
    NothingJudged {
        /// Number of scores.
        samples: usize,
    },

    /// The judged (finite) scores hold one class only, the others being undetermined.
    #[error(
        "the judged scores hold {members} members and {non_members} non-members \
         ({undetermined_members} members and {undetermined_non_members} non-members undetermined): \
         both classes are needed among the judged"
    )]
    OneClassJudged {
        /// Judged members.
        members: usize,
        /// Judged non-members.
        non_members: usize,
        /// Members with no finite score.
        undetermined_members: u64,
        /// Non-members with no finite score.
        undetermined_non_members: u64,
    },

    /// Membership labels hold only one class, so there is no ROC curve.
    #[error("labels hold {members} members and {non_members} non-members: both classes are needed")]
    OneClass {
        /// Number of `true` labels.
        members: usize,
        /// Number of `false` labels.
        non_members: usize,
    },

    /// An input is constant, so a correlation with it is undefined.
    #[error("{what} is constant: the correlation is undefined")]
    Constant {
        /// Which input.
        what: &'static str,
    },

    /// Too few samples for the statistic.
    #[error("{what} needs at least {needed} samples, got {got}")]
    TooFew {
        /// The statistic.
        what: &'static str,
        /// The minimum.
        needed: usize,
        /// What was given.
        got: usize,
    },

    /// A parameter is outside its valid range.
    #[error("invalid {name}: {reason}")]
    InvalidArgument {
        /// The parameter.
        name: &'static str,
        /// Why.
        reason: String,
    },
}

/// Short for `Result<T, MetricsError>`.
pub type Result<T, E = MetricsError> = std::result::Result<T, E>;

pub(crate) fn check_finite(what: &'static str, values: &[f64]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(MetricsError::NonFinite {
            what,
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

pub(crate) fn check_same_len(
    left: &'static str,
    a: usize,
    right: &'static str,
    b: usize,
) -> Result<()> {
    if a != b {
        return Err(MetricsError::LengthMismatch {
            left,
            left_len: a,
            right,
            right_len: b,
        });
    }
    Ok(())
}

pub(crate) fn check_unit_interval(name: &'static str, value: f64, open: bool) -> Result<()> {
    let ok = if open {
        value > 0.0 && value < 1.0
    } else {
        (0.0..=1.0).contains(&value)
    };
    if !ok {
        let range = if open { "(0, 1)" } else { "[0, 1]" };
        return Err(MetricsError::InvalidArgument {
            name,
            reason: format!("{value} is not in {range}"),
        });
    }
    Ok(())
}

//! The one error type of `memia-core`.

use std::path::PathBuf;

/// Everything that can go wrong in `memia-core`.
///
/// Messages name the file (or archive entry), the field and what was expected, so that
/// a user can fix the input without reading the source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// Reading or writing a file failed at the operating-system level.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file that could not be read or written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A `.npy` stream is not a valid numpy array file (bad magic, bad header, truncated data).
    #[error("{location}: not a valid .npy array: {reason}")]
    NpyFormat {
        /// The file, or `archive.npz:entry.npy` for an entry of an archive.
        location: String,
        /// What was wrong.
        reason: String,
    },

    /// A `.npy` array has a different element type than the caller asked for.
    #[error("{location}: array has dtype '{found}', expected {expected}")]
    DType {
        /// The file or archive entry.
        location: String,
        /// The dtype string found in the header (numpy's `descr`).
        found: String,
        /// What the caller accepts.
        expected: String,
    },

    /// An array has a different shape than the caller asked for.
    #[error("{location}: array has shape {found:?}, expected {expected}")]
    Shape {
        /// The file, archive entry or argument.
        location: String,
        /// The shape found.
        found: Vec<usize>,
        /// What was expected, in words.
        expected: String,
    },

    /// A `.npz` archive is unreadable, or lacks an entry.
    #[error("{location}: {reason}")]
    Npz {
        /// The archive (and entry, where known).
        location: String,
        /// What was wrong.
        reason: String,
    },

    /// A function argument is outside its valid range.
    #[error("invalid {name}: {reason}")]
    InvalidArgument {
        /// The argument's name.
        name: &'static str,
        /// Why it is invalid.
        reason: String,
    },

    /// A class label is negative or not below the number of classes.
    #[error("label {label} of sample {sample} is out of range: the logits have {classes} classes")]
    LabelOutOfRange {
        /// The sample's index in the pool.
        sample: usize,
        /// The offending label.
        label: i64,
        /// The number of classes (the last axis of the logits).
        classes: usize,
    },

    /// A logit is NaN or infinite, so no signal can be computed from it.
    #[error("logit of model {model}, sample {sample}, query {query} is not finite ({value})")]
    NonFiniteLogit {
        /// Model index.
        model: usize,
        /// Sample index.
        sample: usize,
        /// Query (augmentation) index.
        query: usize,
        /// The value found.
        value: f32,
    },

    /// One model's logits file is unusable (layout, shape or a value).
    #[error("{}: {problem}", path.display())]
    ModelLogits {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: crate::LogitsProblem,
    },

    /// A directory does not have the layout of a LiRA reference run.
    #[error("LiRA run {}: {reason}", path.display())]
    LiraLayout {
        /// The directory (or the file inside it) that was wrong.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
}

/// Short for `Result<T, CoreError>`.
pub type Result<T, E = CoreError> = std::result::Result<T, E>;

impl CoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CoreError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(name: &'static str, reason: impl Into<String>) -> Self {
        CoreError::InvalidArgument {
            name,
            reason: reason.into(),
        }
    }
}

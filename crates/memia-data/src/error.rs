//! The one error type of `memia-data`.

use std::path::PathBuf;

/// Everything that can go wrong when loading or building data. Messages name the file (or
/// source), the field and what was expected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// Reading a file failed at the operating-system level.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A file is not in the expected format (wrong magic, truncated, inconsistent sizes).
    #[error("{location}: {reason}")]
    Format {
        /// The file (or source) that is wrong.
        location: String,
        /// What is wrong.
        reason: String,
    },

    /// A gzip stream is corrupt.
    #[error("{}: corrupt gzip data: {reason}", path.display())]
    Gzip {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        reason: String,
    },

    /// A label is not below the number of classes.
    #[error("{location}: label {label} of sample {sample} is out of range for {classes} classes")]
    LabelOutOfRange {
        /// The file or data set.
        location: String,
        /// Sample index.
        sample: usize,
        /// The label.
        label: i64,
        /// Number of classes.
        classes: usize,
    },

    /// An argument is outside its valid range.
    #[error("invalid {name}: {reason}")]
    InvalidArgument {
        /// The argument.
        name: &'static str,
        /// Why.
        reason: String,
    },

    /// Error from `memia-core` (`.npy` / `.npz` files).
    #[error(transparent)]
    Core(#[from] memia_core::CoreError),

    /// A download failed.
    #[error("downloading {url}: {reason}")]
    Download {
        /// The address.
        url: String,
        /// What failed.
        reason: String,
    },

    /// A file's SHA-256 differs from the expected one.
    #[error("{}: SHA-256 is {found}, expected {expected}", path.display())]
    Checksum {
        /// The file.
        path: PathBuf,
        /// Expected digest (hex).
        expected: String,
        /// Digest found (hex).
        found: String,
    },
}

/// Short for `Result<T, DataError>`.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

pub(crate) fn invalid(name: &'static str, reason: impl Into<String>) -> DataError {
    DataError::InvalidArgument {
        name,
        reason: reason.into(),
    }
}

pub(crate) fn format_error(
    location: impl std::fmt::Display,
    reason: impl Into<String>,
) -> DataError {
    DataError::Format {
        location: location.to_string(),
        reason: reason.into(),
    }
}

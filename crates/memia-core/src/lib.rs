//! # memia-core
//!
//! The data that carries shadow-model results through memia, with no machine-learning
//! framework attached: a user who already has logits from PyTorch or JAX starts here.
//!
//! * [`KeepMatrix`]: which pool samples each of K shadow models trained on, with the three
//!   seeded inclusion schemes (LiRA's balanced halves, Bernoulli, fixed-size subsets).
//! * [`Logits`]: K models x N samples x A queries x C classes, and the scalar [`Signal`]s
//!   derived from them (LiRA's `phi`, hinge, loss, true-class probability, correctness).
//! * [`LogitsSource`] and [`Signals`]: logits one model at a time ([`ModelFiles`]: one file
//!   per model), so that signals of 10 GB of logits are computed in the memory of the signals.
//! * [`npy`] and [`npz`]: numpy-compatible array files; [`lira`]: import of a LiRA reference run.
//! * [`rng`]: the seeded random streams every random choice derives from.
//!
//! ```
//! use ndarray::Array4;
//! use memia_core::{KeepMatrix, Logits, Signal};
//!
//! let keep = KeepMatrix::balanced(4, 10, 7)?;            // 4 models, 10 samples
//! let logits = Logits::new(Array4::from_elem((4, 10, 1, 3), 0.5f32))?;
//! let labels = vec![0u32; 10];
//! let phi = logits.signals(&labels, Signal::Phi)?;      // 4 x 10 x 1
//! // All classes equal: p_y = 1/3, so phi = log(1/3) - log(2/3) = -log 2.
//! assert!((phi[[0, 0, 0]] + 2f64.ln()).abs() < 1e-12);
//! assert_eq!(keep.in_count(0), 2);
//! # Ok::<(), memia_core::CoreError>(())
//! ```
#![warn(missing_docs)]

pub mod error;
mod fsutil;
mod keep;
pub mod lira;
mod logits;
mod model_logits;
pub mod npy;
pub mod npz;
pub mod rng;
mod signal;
pub mod source;
pub mod synthetic;

pub use error::{CoreError, Result};
pub use fsutil::{
    TEMPORARY_SUFFIX, atomic_write, hard_link_atomically, is_temporary_name,
    remove_stale_temporaries_in, remove_stale_temporaries_of, replace_dir, temporary_dir_for,
    temporary_file_for,
};
pub use keep::KeepMatrix;
pub use lira::{LiraImportOptions, LiraRun, import_lira_run};
pub use logits::{Logits, check_labels, class_count, first_non_finite, labels_from_i64};
pub use model_logits::{
    LogitsProblem, ModelLogits, check_model_logits, model_logits_from, read_model_logits,
    read_model_logits_reusing,
};
pub use signal::{Signal, logsumexp};
pub use source::{
    LogitsSource, ModelFiles, Signals, for_each_model, is_plain_f32_file, model_shape_of,
};

//! # memia-attacks
//!
//! Membership inference as a hypothesis test: from the observations of K shadow models on a
//! pool (a `KeepMatrix` and a K x N x A array of signals) fit a test, then score a target
//! model's observations, **higher = more likely a member**.
//!
//! * [`LiraConfig`]: LiRA online and offline, per-example or global variance, median or mean,
//!   the offline tail and log-density scores, and a named compatibility mode that reproduces
//!   the reference code's quirks.
//! * [`RmiaConfig`]: RMIA's pairwise likelihood ratios against a population.
//! * [`Threshold`]: the LOSS attack and the reference's global threshold.
//! * [`Focused`] with [`CandidateRule`]: the memorization-aware attack, any of the above on the
//!   samples chosen by memorization or privacy score.
//! * [`theory`]: privacy score, Hellinger distances, the shadow-model budget planner.
//! * [`AttackSpec`]: any of the above by name, with the signal it reads (for configuration files).
//! * [`loo`]: leave-one-model-out evaluation as a function of the number of shadow models.
//! * [`sequential`]: membership decisions with their expected error, for audits that train
//!   shadow models until the decisions are confident.
//!
//! ```
//! use memia_attacks::{FittedTest, LiraConfig, MembershipTest};
//! use memia_core::{KeepMatrix, Logits, Signal};
//! use ndarray::{Array4, Axis};
//!
//! let keep = KeepMatrix::balanced(16, 100, 1)?;
//! // Models are more confident on their training samples.
//! let logits = Logits::new(Array4::from_shape_fn((16, 100, 1, 2), |(k, i, _, c)| {
//!     let boost = if keep.get(k, i) { 2.0 } else { 0.0 };
//!     if c == 0 { boost + ((k * 7 + i * 3) % 5) as f32 * 0.2 } else { 0.0 }
//! }))?;
//! let phi = logits.signals(&vec![0; 100], Signal::Phi)?;       // 16 x 100 x 1
//! let lira = LiraConfig::online().fit(&keep.select_models(&(1..16).collect::<Vec<_>>())?,
//!                                      phi.slice(ndarray::s![1.., .., ..]))?;
//! let scores = lira.score(phi.index_axis(Axis(0), 0))?;          // model 0 is the target
//! assert_eq!(scores.len(), 100);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

mod baselines;
pub mod error;
pub mod evaluation;
mod focused;
mod gaussian;
mod lira;
pub mod loo;
mod rmia;
pub mod sequential;
mod spec;
pub mod theory;

use memia_core::KeepMatrix;
use ndarray::{Array1, ArrayView2, ArrayView3};

pub use baselines::Threshold;
pub use error::{AttackError, Result};
pub use focused::{
    CandidateRule, DEFAULT_MEMORIZATION_THRESHOLD, FittedFocused, Focused,
    check_memorization_threshold,
};
pub use gaussian::{norm_logpdf, norm_logsf};
pub use lira::{
    Center, FittedLira, LiraConfig, LiraMode, LuckyGuesses, OfflineScore, OutSide, STD_EPSILON,
    Variance, VariancePrior,
};
pub use loo::doubling_counts;
pub use rmia::{FittedRmia, RmiaConfig};
pub use spec::{AttackSpec, FittedSpec, LiraSignal};

/// A membership test that learns from shadow models (LiRA, RMIA, thresholds).
pub trait MembershipTest {
    /// The fitted test.
    type Fitted: FittedTest;

    /// Fits the test to shadow observations: `shadow[k][i][a]` is model k's signal on pool
    /// sample i under query a, and `keep[k][i]` says whether model k trained on sample i.
    fn fit(&self, keep: &KeepMatrix, shadow: ArrayView3<'_, f64>) -> Result<Self::Fitted>;
}

/// A fitted membership test: scores a target model's observations.
pub trait FittedTest: Send + Sync {
    /// Number of pool samples it was fitted on.
    fn samples(&self) -> usize;

    /// Scores the target's N x A observations (the same signal and queries as the shadows):
    /// one score per sample, **higher = more likely member**, NaN for samples the shadow models
    /// cannot judge (for example, no OUT model).
    fn score(&self, target: ArrayView2<'_, f64>) -> Result<Array1<f64>>;
}

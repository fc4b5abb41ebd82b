//! # memia-metrics
//!
//! How membership-inference attacks are judged, computed exactly and fast:
//!
//! * [`RocCurve`]: the full ROC curve with exact handling of tied scores; AUROC, TPR at a
//!   fixed FPR in two named conventions ([`TprAtFpr`]), balanced accuracy, advantage;
//!   [`auroc`] alone in linear time after a radix sort.
//! * [`clopper_pearson`] intervals and the [`epsilon_lower_bound`] an attack implies.
//! * [`Bootstrap`] confidence intervals for AUROC and TPR at FPR.
//! * [`pearson`], [`spearman`] and [`kendall_tau_b`] correlations with SciPy's p-values.
//!
//! Every function that reads attack scores takes a [`Direction`]: memia never guesses whether
//! a high score means "member". Results agree with scikit-learn and SciPy on recorded fixtures
//! (`tests/fixtures/`, with the script that produced them).
//!
//! ```
//! use memia_metrics::{Direction, RocCurve, TprAtFpr};
//!
//! // Losses of four samples; members (true) have lower loss.
//! let losses = [0.05, 0.40, 0.10, 2.30];
//! let members = [true, false, true, false];
//! let roc = RocCurve::new(&losses, &members, Direction::LowerIsMember)?;
//! assert_eq!(roc.auc(), 1.0);
//! assert_eq!(roc.tpr_at_fpr(0.01, TprAtFpr::LiraStrict)?, 1.0);
//! # Ok::<(), memia_metrics::MetricsError>(())
//! ```
#![warn(missing_docs)]

mod bootstrap;
mod correlation;
pub mod error;
mod interval;
mod privacy;
mod roc;
mod sort;

pub use bootstrap::{Bootstrap, Statistic};
pub use correlation::{Correlation, average_ranks, kendall_tau_b, pearson, spearman};
pub use error::{MetricsError, Result};
pub use interval::{Interval, clopper_pearson, clopper_pearson_bounds};
pub use privacy::{EpsilonBound, epsilon_lower_bound};
pub use roc::{
    Direction, RocCurve, RocSummary, STANDARD_FPRS, TprAtFpr, TprPoint, Undetermined, auroc,
};
pub use sort::median;

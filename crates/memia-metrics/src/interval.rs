//! Confidence intervals for rates: the Clopper-Pearson ("exact") interval of a binomial
//! proportion, and the [`Interval`] type. The ROC summary ([`crate::RocCurve::summary`]) and
//! the differential-privacy bound ([`crate::epsilon_lower_bound`]) take their intervals from
//! here; the bootstrap returns its own as an [`Interval`]. This module depends on no other
//! module of the crate but `error`.

use statrs::function::beta::{beta_reg, inv_beta_reg};

use crate::error::{MetricsError, Result, check_unit_interval};

/// A point estimate with a two-sided confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// The point estimate.
    pub estimate: f64,
    /// Lower end.
    pub lower: f64,
    /// Upper end.
    pub upper: f64,
    /// Coverage the interval was built for, e.g. 0.95.
    pub confidence: f64,
}

/// The Clopper-Pearson ("exact") interval for a binomial proportion: `successes` out of
/// `trials`, two-sided at `confidence`.
///
/// The ends are quantiles of Beta distributions, `Beta(alpha/2; x, n-x+1)` and
/// `Beta(1-alpha/2; x+1, n-x)`, with 0 and 1 at the boundary counts: the same numbers as
/// `scipy.stats.beta.ppf` and statsmodels' `proportion_confint(method="beta")`.
///
/// ```
/// use memia_metrics::clopper_pearson;
/// let ci = clopper_pearson(0, 1000, 0.95)?;
/// assert_eq!(ci.lower, 0.0);
/// assert!((ci.upper - 0.003682083).abs() < 1e-8); // the "rule of three", 3/n, exactly
/// # Ok::<(), memia_metrics::MetricsError>(())
/// ```
pub fn clopper_pearson(successes: u64, trials: u64, confidence: f64) -> Result<Interval> {
    check_unit_interval("confidence", confidence, true)?;
    if trials == 0 {
        return Err(MetricsError::Empty { what: "trials" });
    }
    if successes > trials {
        return Err(MetricsError::InvalidArgument {
            name: "successes",
            reason: format!("{successes} successes out of {trials} trials"),
        });
    }
    let (x, n) = (successes as f64, trials as f64);
    let (lower, upper) = clopper_pearson_bounds(x, n, confidence);
    Ok(Interval {
        estimate: x / n,
        lower,
        upper,
        confidence,
    })
}

/// The Clopper-Pearson bounds for `successes` out of `trials` > 0, both real: the beta
/// quantiles `Beta(x, n - x + 1)` and `Beta(x + 1, n - x)`, continued to non-integer `x` (a
/// sum of outcomes in [0, 1], such as true-class probabilities), with 0 and 1 at the ends.
/// `confidence` in (0, 1); arguments are not checked (see [`clopper_pearson`]).
pub fn clopper_pearson_bounds(successes: f64, trials: f64, confidence: f64) -> (f64, f64) {
    let alpha = 1.0 - confidence;
    let (x, n) = (successes, trials);
    let lower = if x <= 0.0 {
        0.0
    } else {
        beta_quantile(alpha / 2.0, x, n - x + 1.0)
    };
    let upper = if x >= n {
        1.0
    } else {
        beta_quantile(1.0 - alpha / 2.0, x + 1.0, n - x)
    };
    (lower, upper)
}

/// The `p`-quantile of `Beta(a, b)`: statrs' inverse, polished by Newton steps on the
/// regularised incomplete beta function so that it agrees with SciPy to ~1e-12.
fn beta_quantile(p: f64, a: f64, b: f64) -> f64 {
    let mut x = inv_beta_reg(a, b, p);
    let ln_beta = statrs::function::beta::ln_beta(a, b);
    for _ in 0..8 {
        if !(x > 0.0 && x < 1.0) {
            break;
        }
        let f = beta_reg(a, b, x) - p;
        let log_density = (a - 1.0) * x.ln() + (b - 1.0) * (1.0 - x).ln() - ln_beta;
        let density = log_density.exp();
        if density == 0.0 || !density.is_finite() {
            break;
        }
        let step = f / density;
        let next = (x - step).clamp(x / 2.0, (1.0 + x) / 2.0);
        if (next - x).abs() <= 1e-15 * x.max(1e-300) {
            x = next;
            break;
        }
        x = next;
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_counts() {
        let all = clopper_pearson(20, 20, 0.9).unwrap();
        assert_eq!(all.upper, 1.0);
        // Lower end for x = n solves p^n = alpha/2.
        assert!((all.lower - 0.05f64.powf(1.0 / 20.0)).abs() < 1e-12);
        let none = clopper_pearson(0, 20, 0.9).unwrap();
        assert!((none.upper - (1.0 - 0.05f64.powf(1.0 / 20.0))).abs() < 1e-12);
    }

    #[test]
    fn bad_arguments() {
        assert!(clopper_pearson(3, 0, 0.95).is_err());
        assert!(
            clopper_pearson(4, 3, 0.95)
                .unwrap_err()
                .to_string()
                .contains("4 successes out of 3")
        );
        assert!(clopper_pearson(1, 3, 1.0).is_err());
    }
}

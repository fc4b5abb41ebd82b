//! Normal-distribution helpers with SciPy's conventions.

use statrs::function::erf::erfc;

const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// `scipy.stats.norm.logpdf(x, loc, scale)`.
#[inline]
pub fn norm_logpdf(x: f64, loc: f64, scale: f64) -> f64 {
    let z = (x - loc) / scale;
    -0.5 * z * z - LN_SQRT_2PI - scale.ln()
}

/// `scipy.stats.norm.logsf(z)`: the log of the upper tail `P[Z > z]` of a standard normal,
/// accurate far into the tail (an asymptotic series where `erfc` underflows).
pub fn norm_logsf(z: f64) -> f64 {
    if z < 30.0 {
        (0.5 * erfc(z / std::f64::consts::SQRT_2)).ln()
    } else {
        // Mills ratio: sf(z) = pdf(z) / z * (1 - 1/z^2 + 3/z^4 - 15/z^6 + ...).
        let z2 = z * z;
        -0.5 * z2 - LN_SQRT_2PI - z.ln()
            + (1.0 - 1.0 / z2 + 3.0 / (z2 * z2) - 15.0 / (z2 * z2 * z2)).ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn against_scipy_values() {
        // scipy.stats.norm.logpdf(1.3, 0.2, 2.5) and norm.logsf(z) (SciPy 1.17.1).
        assert!((norm_logpdf(1.3, 0.2, 2.5) - -1.9320292650788278).abs() < 1e-14);
        for (z, expected) in [
            (-3.0, -0.0013508099647481925),
            (0.0, -std::f64::consts::LN_2),
            (5.0, -15.064998393988727),
            (29.0, -424.78741990973026),
            (31.0, -484.8539636271794),
            (100.0, -5005.524208694205),
        ] {
            let got = norm_logsf(z);
            assert!(
                (got - expected).abs() <= 1e-10 * expected.abs().max(1.0),
                "z={z}: {got} vs {expected}"
            );
        }
    }
}

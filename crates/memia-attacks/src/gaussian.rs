//! Normal- and Student-t-distribution helpers with SciPy's conventions.

use statrs::function::beta::{beta_reg, ln_beta};
use statrs::function::erf::erfc;
use statrs::function::gamma::ln_gamma;

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

/// Degrees of freedom beyond which a Student t is a normal to within float precision (and its
/// gamma-function terms would lose digits).
const T_IS_NORMAL: f64 = 1e7;

/// `scipy.stats.t.logpdf(x, dof, loc, scale)`.
pub fn t_logpdf(x: f64, loc: f64, scale: f64, dof: f64) -> f64 {
    if dof > T_IS_NORMAL {
        return norm_logpdf(x, loc, scale);
    }
    let z = (x - loc) / scale;
    ln_gamma(0.5 * (dof + 1.0))
        - ln_gamma(0.5 * dof)
        - 0.5 * (dof * std::f64::consts::PI).ln()
        - scale.ln()
        - 0.5 * (dof + 1.0) * (z * z / dof).ln_1p()
}

/// `scipy.stats.t.logsf(z, dof)`: the log of the upper tail `P[T > z]` of a standard Student
/// t, from the regularised incomplete beta function (`I_x(dof/2, 1/2) / 2` above 0), its
/// leading term where that underflows.
pub fn t_logsf(z: f64, dof: f64) -> f64 {
    if dof > T_IS_NORMAL {
        return norm_logsf(z);
    }
    let x = dof / (dof + z * z);
    let (a, b) = (0.5 * dof, 0.5);
    let half_tail = 0.5 * beta_reg(a, b, x);
    if z <= 0.0 {
        (1.0 - half_tail).ln()
    } else if half_tail > 0.0 {
        half_tail.ln()
    } else {
        // I_x(a, b) ~ x^a / (a B(a, b)) as x -> 0.
        -std::f64::consts::LN_2 + a * x.ln() - a.ln() - ln_beta(a, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T_LOGPDF: f64 = -1.9988778786409833;
    const T_LOGSF: [(f64, f64, f64); 7] = [
        (-2.0, 3.0, -0.07220837598426767),
        (0.0, 4.0, -std::f64::consts::LN_2),
        (1.5, 2.5, -2.0881333942804177),
        (10.0, 7.0, -11.44553774614908),
        (1e3, 3.0, -20.62554599789672),
        (1e20, 5.0, -228.0082530635911),
        (40.0, 50.0, -90.27785301120115),
    ];

    #[test]
    fn student_t_against_scipy_values() {
        // scipy.stats.t.logpdf(1.3, 5, 0.2, 2.5), t.logsf(z, dof) (SciPy 1.17.1).
        assert!(
            (t_logpdf(1.3, 0.2, 2.5, 5.0) - T_LOGPDF).abs() < 1e-12,
            "{}",
            t_logpdf(1.3, 0.2, 2.5, 5.0)
        );
        for (z, dof, expected) in T_LOGSF {
            let got = t_logsf(z, dof);
            assert!(
                (got - expected).abs() <= 1e-9 * expected.abs().max(1.0),
                "z={z} dof={dof}: {got} vs {expected}"
            );
        }
        // A t with huge degrees of freedom is the normal.
        assert_eq!(t_logpdf(0.7, 0.1, 1.5, 1e9), norm_logpdf(0.7, 0.1, 1.5));
    }

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

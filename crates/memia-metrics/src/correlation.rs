//! Linear and rank correlations with two-sided p-values, as SciPy computes them.
//!
//! Used to ask "does memorization predict the privacy score?" across a pool.

use statrs::function::beta::beta_reg;
use statrs::function::erf::erfc;

use crate::error::{MetricsError, Result, check_finite, check_same_len};

/// A correlation coefficient and its two-sided p-value under the null of no association.
#[derive(serde::Serialize, Debug, Clone, Copy, PartialEq)]
pub struct Correlation {
    /// The coefficient, in [-1, 1].
    pub statistic: f64,
    /// Two-sided p-value.
    pub p_value: f64,
}

fn check_pair(x: &[f64], y: &[f64], what: &'static str, needed: usize) -> Result<()> {
    check_same_len("x", x.len(), "y", y.len())?;
    if x.len() < needed {
        return Err(MetricsError::TooFew {
            what,
            needed,
            got: x.len(),
        });
    }
    check_finite("x", x)?;
    check_finite("y", y)
}

/// Pearson's r with the exact p-value for normal data (`scipy.stats.pearsonr`): the null
/// distribution of r is `Beta(n/2 - 1, n/2 - 1)` on [-1, 1].
pub fn pearson(x: &[f64], y: &[f64]) -> Result<Correlation> {
    check_pair(x, y, "pearson", 2)?;
    let r = pearson_r(x, y)?;
    let n = x.len() as f64;
    let p_value = if x.len() == 2 {
        1.0
    } else {
        let a = n / 2.0 - 1.0;
        (2.0 * beta_reg(a, a, (1.0 - r.abs()) / 2.0)).min(1.0)
    };
    Ok(Correlation {
        statistic: r,
        p_value,
    })
}

fn pearson_r(x: &[f64], y: &[f64]) -> Result<f64> {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (&a, &b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 {
        return Err(MetricsError::Constant { what: "x" });
    }
    if syy == 0.0 {
        return Err(MetricsError::Constant { what: "y" });
    }
    Ok((sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0))
}

/// Ranks 1..n with ties given their average rank (`scipy.stats.rankdata(method="average")`).
pub fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        let rank = (start + end + 1) as f64 / 2.0; // mean of ranks start+1 ..= end
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

/// Spearman's rho (Pearson's r of average ranks) with SciPy's p-value: a t-test with n - 2
/// degrees of freedom, `t = rho sqrt((n - 2) / (1 - rho^2))` (`scipy.stats.spearmanr`).
pub fn spearman(x: &[f64], y: &[f64]) -> Result<Correlation> {
    check_pair(x, y, "spearman", 3)?;
    let rho = pearson_r(&average_ranks(x), &average_ranks(y))?;
    let df = (x.len() - 2) as f64;
    let p_value = if rho.abs() == 1.0 {
        0.0
    } else {
        let t2 = rho * rho * df / ((1.0 + rho) * (1.0 - rho));
        // Two-sided Student t tail: I_{df / (df + t^2)}(df / 2, 1 / 2).
        beta_reg(df / 2.0, 0.5, df / (df + t2))
    };
    Ok(Correlation {
        statistic: rho,
        p_value,
    })
}

/// Kendall's tau-b with the asymptotic (tie-corrected normal) p-value
/// (`scipy.stats.kendalltau(x, y, method="asymptotic")`), in O(n log n) (Knight 1966).
pub fn kendall_tau_b(x: &[f64], y: &[f64]) -> Result<Correlation> {
    check_pair(x, y, "kendall_tau_b", 3)?;
    let n = x.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]).then(y[a].total_cmp(&y[b])));
    let xs: Vec<f64> = order.iter().map(|&i| x[i]).collect();
    let mut ys: Vec<f64> = order.iter().map(|&i| y[i]).collect();

    // Pairs tied in x, and tied in both, from runs of the (x, y)-sorted sequence.
    let joint_ties = tie_stats(&xs, &ys).0;
    let (x_ties, x0, x1) = tie_stats(&xs, &xs);
    let mut y_sorted = y.to_vec();
    y_sorted.sort_by(f64::total_cmp);
    let (y_ties, y0, y1) = tie_stats(&y_sorted, &y_sorted);

    let total = (n as u64) * (n as u64 - 1) / 2;
    if x_ties == total {
        return Err(MetricsError::Constant { what: "x" });
    }
    if y_ties == total {
        return Err(MetricsError::Constant { what: "y" });
    }
    let discordant = count_inversions(&mut ys);
    let con_minus_dis =
        total as f64 - x_ties as f64 - y_ties as f64 + joint_ties as f64 - 2.0 * discordant as f64;
    let tau = (con_minus_dis
        / (total as f64 - x_ties as f64).sqrt()
        / (total as f64 - y_ties as f64).sqrt())
    .clamp(-1.0, 1.0);

    let size = n as f64;
    let m = size * (size - 1.0);
    let var = (m * (2.0 * size + 5.0) - x1 - y1) / 18.0
        + (2.0 * x_ties as f64 * y_ties as f64) / m
        + x0 * y0 / (9.0 * m * (size - 2.0));
    let z = con_minus_dis / var.sqrt();
    Ok(Correlation {
        statistic: tau,
        p_value: erfc(z.abs() / std::f64::consts::SQRT_2),
    })
}

/// For runs of equal `(a, b)` pairs in sorted sequences: `(sum t(t-1)/2, sum t(t-1)(t-2),
/// sum t(t-1)(2t+5))` over run lengths t, the tie terms of Kendall's variance.
fn tie_stats(a: &[f64], b: &[f64]) -> (u64, f64, f64) {
    let (mut pairs, mut s0, mut s1) = (0u64, 0.0, 0.0);
    let mut start = 0;
    while start < a.len() {
        let mut end = start + 1;
        while end < a.len() && a[end] == a[start] && b[end] == b[start] {
            end += 1;
        }
        let t = (end - start) as u64;
        pairs += t * (t - 1) / 2;
        let tf = t as f64;
        s0 += tf * (tf - 1.0) * (tf - 2.0);
        s1 += tf * (tf - 1.0) * (2.0 * tf + 5.0);
        start = end;
    }
    (pairs, s0, s1)
}

/// Number of pairs i < j with `v[i] > v[j]` (strictly), by merge sort; sorts `v`.
fn count_inversions(v: &mut [f64]) -> u64 {
    let mut buf = v.to_vec();
    merge_count(v, &mut buf)
}

fn merge_count(v: &mut [f64], buf: &mut [f64]) -> u64 {
    let n = v.len();
    if n < 2 {
        return 0;
    }
    let mid = n / 2;
    let mut count =
        merge_count(&mut v[..mid], &mut buf[..mid]) + merge_count(&mut v[mid..], &mut buf[mid..]);
    let (mut i, mut j, mut k) = (0, mid, 0);
    while i < mid && j < n {
        if v[j] < v[i] {
            count += (mid - i) as u64; // v[j] is smaller than every remaining left element
            buf[k] = v[j];
            j += 1;
        } else {
            buf[k] = v[i];
            i += 1;
        }
        k += 1;
    }
    buf[k..k + mid - i].copy_from_slice(&v[i..mid]);
    k += mid - i;
    buf[k..k + n - j].copy_from_slice(&v[j..n]);
    v.copy_from_slice(&buf[..n]);
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    fn brute_tau_b(x: &[f64], y: &[f64]) -> f64 {
        let (mut c, mut d, mut tx, mut ty) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
        for i in 0..x.len() {
            for j in i + 1..x.len() {
                // f64::signum(0.0) is 1.0, so compare explicitly.
                let sign = |d: f64| (d > 0.0) as i32 - (d < 0.0) as i32;
                let s = sign(x[i] - x[j]) * sign(y[i] - y[j]);
                if x[i] == x[j] && y[i] != y[j] {
                    tx += 1.0;
                } else if y[i] == y[j] && x[i] != x[j] {
                    ty += 1.0;
                } else if s > 0 {
                    c += 1.0;
                } else if s < 0 {
                    d += 1.0;
                }
            }
        }
        (c - d) / ((c + d + tx) * (c + d + ty)).sqrt()
    }

    #[test]
    fn kendall_matches_pairwise_definition() {
        let mut rng = memia_core::rng::seeded_rng(5);
        let mut next = || f64::from(rng.random_range(0..6u32));
        for n in [3usize, 7, 50, 201] {
            let x: Vec<f64> = (0..n).map(|_| next()).collect();
            let y: Vec<f64> = x.iter().map(|v| v + next()).collect();
            let tau = kendall_tau_b(&x, &y).unwrap().statistic;
            assert!(
                (tau - brute_tau_b(&x, &y)).abs() < 1e-12,
                "n={n}: {tau} vs {}",
                brute_tau_b(&x, &y)
            );
        }
    }

    #[test]
    fn ranks_average_ties() {
        assert_eq!(
            average_ranks(&[10.0, 20.0, 10.0, 5.0]),
            vec![2.5, 4.0, 2.5, 1.0]
        );
    }

    #[test]
    fn perfect_and_constant() {
        let x = [1.0, 2.0, 3.0, 4.0];
        let s = spearman(&x, &[10.0, 20.0, 30.0, 45.0]).unwrap();
        assert!(
            (s.statistic - 1.0).abs() < 1e-15 && s.p_value < 1e-12,
            "{s:?}"
        );
        assert_eq!(
            pearson(&x, &[2.0; 4]).unwrap_err(),
            MetricsError::Constant { what: "y" }
        );
        assert_eq!(
            kendall_tau_b(&[1.0; 4], &x).unwrap_err(),
            MetricsError::Constant { what: "x" }
        );
        assert!(matches!(
            spearman(&x[..2], &x[..2]),
            Err(MetricsError::TooFew {
                needed: 3,
                got: 2,
                ..
            })
        ));
        assert!(matches!(
            pearson(&x, &x[..3]),
            Err(MetricsError::LengthMismatch { .. })
        ));
        assert!(matches!(
            pearson(&[1.0, f64::NAN], &[1.0, 2.0]),
            Err(MetricsError::NonFinite {
                what: "x",
                index: 1,
                ..
            })
        ));
    }
}

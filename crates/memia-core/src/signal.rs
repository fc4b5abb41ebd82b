//! Scalar membership signals derived from one logit vector and its true label.

/// Which scalar to derive from a model's logits `z` (length C) for a sample of label `y`.
///
/// All are computed in `f64` from `f32` logits, and are finite for any finite logits: no
/// exponential is taken of an unshifted logit, so logits of +-1000 are fine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Signal {
    /// LiRA's logit-scaled confidence `phi = log p_y - log sum_{j != y} p_j`, computed exactly
    /// as `z_y - logsumexp_{j != y} z_j` (the softmax normaliser cancels). Unbounded.
    Phi,
    /// `phi` as the LiRA reference's `score.py` computes it: shift by the max and exponentiate
    /// in float32, normalise in float64, then `log(p_y + 1e-45) - log(sum_{j != y} p_j + 1e-45)`.
    /// Saturates near +-103.6 where float32 underflows; use it to reproduce reference scores.
    /// Equal to `score.py` within about 2e-7, not bit for bit: numpy's float32 `exp` and Rust's
    /// (libm's `expf`) differ by one unit in the last place on many inputs.
    PhiReference,
    /// `z_y - max_{j != y} z_j` (Carlini et al.'s hinge, a cheap proxy for `phi`).
    Hinge,
    /// Cross-entropy loss `-log p_y = logsumexp_j z_j - z_y` (LOSS attack, Yeom et al.).
    Loss,
    /// True-class softmax probability `p_y` (the soft memorization estimator uses it).
    Probability,
    /// 1.0 if the model predicts `y` (the first index of the largest logit, as numpy's
    /// `argmax`), else 0.0 (label memorization uses it).
    Correct,
}

impl Signal {
    /// Every signal, for iteration in tests and user interfaces.
    pub const ALL: [Signal; 6] = [
        Signal::Phi,
        Signal::PhiReference,
        Signal::Hinge,
        Signal::Loss,
        Signal::Probability,
        Signal::Correct,
    ];

    /// A short stable name (`"phi"`, `"phi-reference"`, `"hinge"`, `"loss"`, `"probability"`,
    /// `"correct"`), as used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Phi => "phi",
            Signal::PhiReference => "phi-reference",
            Signal::Hinge => "hinge",
            Signal::Loss => "loss",
            Signal::Probability => "probability",
            Signal::Correct => "correct",
        }
    }

    /// Whether a larger value of this signal indicates a member (true for all but
    /// [`Signal::Loss`]: members have lower loss).
    pub fn higher_is_member(self) -> bool {
        !matches!(self, Signal::Loss)
    }

    /// Computes the signal for one logit vector. The caller guarantees `label < z.len()`,
    /// `z.len() >= 2`, and finite logits (see [`crate::Logits::signals`], which checks).
    #[inline]
    pub fn of(self, z: &[f32], label: usize) -> f64 {
        let zy = f64::from(z[label]);
        match self {
            Signal::Phi => zy - logsumexp_except(z, label),
            Signal::PhiReference => phi_reference(z, label),
            Signal::Hinge => zy - max_except(z, label),
            Signal::Loss => logsumexp(z) - zy,
            Signal::Probability => (zy - logsumexp(z)).exp(),
            Signal::Correct => {
                // The largest logit (a branch-free pass the compiler vectorises; the logits are
                // finite), then the first class that has it, as numpy's argmax.
                let max = z
                    .iter()
                    .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
                let first_max = z.iter().position(|&v| v == max).unwrap_or(0);
                if first_max == label { 1.0 } else { 0.0 }
            }
        }
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Signal {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Signal::ALL
            .into_iter()
            .find(|sig| sig.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Signal::ALL.iter().map(|s| s.name()).collect();
                format!(
                    "unknown signal '{s}' (expected one of: {})",
                    names.join(", ")
                )
            })
    }
}

/// The logits other than `z[skip]`, as two contiguous runs (cheaper than filtering by index).
#[inline]
fn others(z: &[f32], skip: usize) -> impl Iterator<Item = f64> + '_ {
    z[..skip]
        .iter()
        .chain(&z[skip + 1..])
        .map(|&v| f64::from(v))
}

#[inline]
fn max_except(z: &[f32], skip: usize) -> f64 {
    others(z, skip).fold(f64::NEG_INFINITY, f64::max)
}

#[inline]
fn logsumexp_except(z: &[f32], skip: usize) -> f64 {
    let m = max_except(z, skip);
    m + others(z, skip).map(|v| (v - m).exp()).sum::<f64>().ln()
}

/// `log sum_j exp(z_j)` in f64, shifted by the maximum so that it never overflows.
#[inline]
pub fn logsumexp(z: &[f32]) -> f64 {
    let m = z
        .iter()
        .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
    m + z
        .iter()
        .map(|&v| (f64::from(v) - m).exp())
        .sum::<f64>()
        .ln()
}

/// The LiRA reference's `score.py` arithmetic, step by step (see [`Signal::PhiReference`]).
fn phi_reference(z: &[f32], label: usize) -> f64 {
    let m = z.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    // `opredictions - max` and `np.exp` happen on the float32 array; the cast follows.
    let e = |v: f32| f64::from((v - m).exp());
    let total: f64 = z.iter().map(|&v| e(v)).sum();
    let p_true = e(z[label]) / total;
    let p_wrong: f64 = z[..label]
        .iter()
        .chain(&z[label + 1..])
        .map(|&v| e(v) / total)
        .sum();
    (p_true + 1e-45).ln() - (p_wrong + 1e-45).ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    fn naive_probs(z: &[f32]) -> Vec<f64> {
        let e: Vec<f64> = z.iter().map(|&v| f64::from(v).exp()).collect();
        let s: f64 = e.iter().sum();
        e.iter().map(|v| v / s).collect()
    }

    #[test]
    fn matches_naive_formulas_on_moderate_logits() {
        let z = [1.5f32, -0.25, 3.0, 0.0];
        let p = naive_probs(&z);
        for y in 0..4 {
            let wrong: f64 = (0..4).filter(|&j| j != y).map(|j| p[j]).sum();
            assert_relative_eq!(
                Signal::Phi.of(&z, y),
                p[y].ln() - wrong.ln(),
                epsilon = 1e-12
            );
            assert_relative_eq!(
                Signal::PhiReference.of(&z, y),
                p[y].ln() - wrong.ln(),
                epsilon = 1e-6
            );
            assert_relative_eq!(Signal::Loss.of(&z, y), -p[y].ln(), epsilon = 1e-12);
            assert_relative_eq!(Signal::Probability.of(&z, y), p[y], epsilon = 1e-12);
            let others = (0..4)
                .filter(|&j| j != y)
                .map(|j| f64::from(z[j]))
                .fold(f64::MIN, f64::max);
            assert_relative_eq!(Signal::Hinge.of(&z, y), f64::from(z[y]) - others);
            assert_eq!(Signal::Correct.of(&z, y), if y == 2 { 1.0 } else { 0.0 });
        }
    }

    #[test]
    fn extreme_logits_stay_finite_and_exact() {
        let z = [1000.0f32, -1000.0, 0.0];
        // phi(y=0) = 1000 - logsumexp(-1000, 0) = 1000 - (0 + log(1 + e^-1000)) = 1000.
        assert_eq!(Signal::Phi.of(&z, 0), 1000.0);
        // phi(y=1) = -1000 - logsumexp(1000, 0) = -2000 (approximately, to 1e-12).
        assert_relative_eq!(Signal::Phi.of(&z, 1), -2000.0, epsilon = 1e-9);
        assert_relative_eq!(Signal::Loss.of(&z, 1), 2000.0, epsilon = 1e-9);
        assert_eq!(Signal::Probability.of(&z, 1), 0.0);
        for s in Signal::ALL {
            for y in 0..3 {
                assert!(s.of(&z, y).is_finite(), "{s} y={y}");
            }
        }
        // The reference form saturates where float32 underflows.
        assert_relative_eq!(
            Signal::PhiReference.of(&z, 1),
            (1e-45f64).ln(),
            epsilon = 1e-9
        );
    }

    #[test]
    fn correct_breaks_ties_like_argmax() {
        let z = [2.0f32, 2.0, 1.0];
        assert_eq!(Signal::Correct.of(&z, 0), 1.0);
        assert_eq!(Signal::Correct.of(&z, 1), 0.0);
    }

    #[test]
    fn names_round_trip() {
        for s in Signal::ALL {
            assert_eq!(s.name().parse::<Signal>().unwrap(), s);
        }
        assert!(
            "nope"
                .parse::<Signal>()
                .unwrap_err()
                .contains("phi, phi-reference")
        );
    }
}

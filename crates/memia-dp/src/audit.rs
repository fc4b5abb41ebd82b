//! Privacy audits: lower bounds on the epsilon of (epsilon, delta)-DP from an attack's scores
//! on canaries, valid at a stated confidence whatever the attack. Scores are higher-is-member
//! throughout (negate a loss).

use memia_metrics::{Direction, EpsilonBound, RocCurve, epsilon_lower_bound};
use serde::{Deserialize, Serialize};
use statrs::distribution::{Binomial, Discrete, DiscreteCDF};

use crate::error::{Result, check_rate, invalid};

/// The one-run audit of Steinke, Nasr and Jagielski ("Privacy auditing with one (1) training
/// run", NeurIPS 2023): m canaries, each included in the training run with probability 1/2
/// independently; the attacker guesses "in" for its `positive_guesses` highest-scoring
/// canaries and "out" for its `negative_guesses` lowest, abstaining on the rest. Under
/// (epsilon, delta)-DP the number of correct guesses is dominated by a binomial (Theorem 3.1
/// there, with its delta term), so a count improbable under that binomial bounds epsilon from
/// below.
///
/// The guess counts must be fixed before the scores are seen: choosing them on the same scores
/// voids the confidence.
///
/// ```
/// use memia_dp::OneRunAudit;
///
/// // 1,000 canaries; the attack separates them perfectly, and guesses 100 each way.
/// let included: Vec<bool> = (0..1000).map(|i| i % 2 == 0).collect();
/// let scores: Vec<f64> = included.iter().map(|&i| if i { 1.0 } else { 0.0 }).collect();
/// let audit = OneRunAudit::new(100, 100, 1e-5)?.with_confidence(0.95)?;
/// let bound = audit.run(&scores, &included)?;
/// assert_eq!((bound.guesses, bound.correct), (200, 200));
/// assert!(bound.epsilon > 3.0);
/// # Ok::<(), memia_dp::DpError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OneRunAudit {
    /// Canaries guessed "in" (the highest scores).
    pub positive_guesses: usize,
    /// Canaries guessed "out" (the lowest scores).
    pub negative_guesses: usize,
    /// The delta of the claim under test.
    pub delta: f64,
    /// Probability that the bound holds (0.95: a bound above the truth one time in twenty at
    /// most).
    pub confidence: f64,
}

/// What a [`OneRunAudit`] found.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OneRunBound {
    /// The epsilon lower bound (0 when the guesses prove nothing).
    pub epsilon: f64,
    /// Canaries (m).
    pub canaries: usize,
    /// Guesses made (r).
    pub guesses: usize,
    /// Correct guesses (v).
    pub correct: usize,
    /// Its confidence.
    pub confidence: f64,
    /// The delta assumed.
    pub delta: f64,
}

impl OneRunAudit {
    /// An audit guessing `positive` canaries in and `negative` out, for the claim's `delta`
    /// (in [0, 1)), at confidence 0.95.
    pub fn new(positive: usize, negative: usize, delta: f64) -> Result<Self> {
        if positive + negative == 0 {
            return Err(invalid(
                "guesses",
                "the audit must guess at least one canary",
            ));
        }
        if !(0.0..1.0).contains(&delta) {
            return Err(invalid("delta", format!("{delta} is not in [0, 1)")));
        }
        Ok(OneRunAudit {
            positive_guesses: positive,
            negative_guesses: negative,
            delta,
            confidence: 0.95,
        })
    }

    /// The same audit at another confidence, in (0, 1).
    pub fn with_confidence(mut self, confidence: f64) -> Result<Self> {
        check_rate("confidence", confidence, false)?;
        self.confidence = confidence;
        Ok(self)
    }

    /// The bound from the canaries' `scores` (higher is member) and whether each was
    /// `included` in the run.
    pub fn run(&self, scores: &[f64], included: &[bool]) -> Result<OneRunBound> {
        let m = check_scores(scores, included)?;
        let r = self.positive_guesses + self.negative_guesses;
        if r > m {
            return Err(invalid(
                "guesses",
                format!(
                    "{} in and {} out is more guesses than the {m} canaries",
                    self.positive_guesses, self.negative_guesses
                ),
            ));
        }
        // Highest scores first; ties in canary order, a rule fixed before the scores.
        let mut order: Vec<usize> = (0..m).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        let correct_in = order[..self.positive_guesses]
            .iter()
            .filter(|&&i| included[i])
            .count();
        let correct_out = order[m - self.negative_guesses..]
            .iter()
            .filter(|&&i| !included[i])
            .count();
        let v = correct_in + correct_out;
        Ok(OneRunBound {
            epsilon: one_run_epsilon(m, r, v, self.delta, self.confidence),
            canaries: m,
            guesses: r,
            correct: v,
            confidence: self.confidence,
            delta: self.delta,
        })
    }
}

/// The p-value of `correct` (v) or more correct guesses out of `guesses` (r) on `canaries`
/// (m) under (epsilon, delta)-DP: Steinke, Nasr and Jagielski's bound, `P[Binomial(r, q) >= v]`
/// with `q = e^eps / (1 + e^eps)`, plus `2 m delta` times the largest `P[v > Binomial(r, q) >=
/// v - i] / i` (their Proposition 5.2 and reference code). At most 1.
pub fn one_run_p_value(
    canaries: usize,
    guesses: usize,
    correct: usize,
    epsilon: f64,
    delta: f64,
) -> f64 {
    let (m, r, v) = (canaries, guesses, correct);
    debug_assert!(v <= r && r <= m);
    let q = 1.0 / (1.0 + (-epsilon).exp());
    let binomial = Binomial::new(q, r as u64).expect("q in [0.5, 1], r guesses");
    let beta = if v == 0 {
        1.0
    } else {
        binomial.sf(v as u64 - 1)
    };
    let (mut alpha, mut sum) = (0f64, 0f64);
    for i in 1..=v {
        sum += binomial.pmf((v - i) as u64);
        if sum > i as f64 * alpha {
            alpha = sum / i as f64;
        }
    }
    (beta + alpha * delta * 2.0 * m as f64).min(1.0)
}

/// The largest epsilon (to 1e-9, rounded down) whose [`one_run_p_value`] is below `1 -
/// confidence`: the one-run audit's lower bound, 0 when even epsilon 0 is not rejected.
fn one_run_epsilon(m: usize, r: usize, v: usize, delta: f64, confidence: f64) -> f64 {
    let p = 1.0 - confidence;
    let rejected = |eps: f64| one_run_p_value(m, r, v, eps, delta) < p;
    if !rejected(0.0) {
        return 0.0;
    }
    let (mut low, mut high) = (0.0, 1.0);
    while rejected(high) {
        low = high;
        high *= 2.0;
        if high > 1e3 {
            return low;
        }
    }
    while high - low > 1e-9 {
        let mid = 0.5 * (low + high);
        if rejected(mid) {
            low = mid;
        } else {
            high = mid;
        }
    }
    low
}

/// The audit from many training runs: one trial per run, a canary's score in that run and
/// whether the run included it (each included in half of the runs, say). The threshold is
/// chosen on the first `selection` share of the trials (the one with the largest bound there),
/// and the bound is computed on the others with Clopper-Pearson intervals
/// ([`memia_metrics::epsilon_lower_bound`]), so it holds at the stated confidence.
///
/// Trials must be independent: one canary per run (several canaries of one run are not
/// independent trials; audit those with [`OneRunAudit`], which also pools runs).
///
/// ```
/// use memia_dp::ManyRunAudit;
///
/// // 400 runs; members score higher, with some overlap.
/// let members: Vec<bool> = (0..400).map(|k| k % 2 == 0).collect();
/// let scores: Vec<f64> = (0..400).map(|k| (k % 2 == 0) as u8 as f64 * 2.0 + (k % 7) as f64 * 0.4).collect();
/// let bound = ManyRunAudit::new(1e-5)?.run(&scores, &members)?;
/// assert!(bound.epsilon > 0.5, "{bound:?}");
/// # Ok::<(), memia_dp::DpError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ManyRunAudit {
    /// Share of the trials (the first ones) that choose the threshold, in (0, 1).
    pub selection: f64,
    /// The delta of the claim under test.
    pub delta: f64,
    /// Probability that the bound holds.
    pub confidence: f64,
}

/// What a [`ManyRunAudit`] found.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ManyRunBound {
    /// The epsilon lower bound (0 when the attack proves nothing).
    pub epsilon: f64,
    /// The threshold chosen (scores at or above it guessed members).
    pub threshold: f64,
    /// The bound's true- and false-positive intervals on the held-out trials.
    #[serde(skip)]
    pub detail: Option<EpsilonBound>,
    /// The canary chosen, for [`ManyRunAudit::run_canaries`].
    pub canary: Option<usize>,
    /// Trials that chose the threshold.
    pub selection_trials: usize,
    /// Trials the bound was computed on.
    pub bound_trials: usize,
}

impl ManyRunAudit {
    /// Half the trials choose the threshold, the bound is at confidence 0.95, for the claim's
    /// `delta` in [0, 1).
    pub fn new(delta: f64) -> Result<Self> {
        if !(0.0..1.0).contains(&delta) {
            return Err(invalid("delta", format!("{delta} is not in [0, 1)")));
        }
        Ok(ManyRunAudit {
            selection: 0.5,
            delta,
            confidence: 0.95,
        })
    }

    /// The same audit at another confidence, in (0, 1).
    pub fn with_confidence(mut self, confidence: f64) -> Result<Self> {
        check_rate("confidence", confidence, false)?;
        self.confidence = confidence;
        Ok(self)
    }

    /// The same audit with another share of the trials choosing the threshold, in (0, 1).
    pub fn with_selection(mut self, selection: f64) -> Result<Self> {
        check_rate("selection", selection, false)?;
        self.selection = selection;
        Ok(self)
    }

    /// The bound from one trial per run: the canary's score (higher is member) and whether
    /// the run included it. Both parts need members and non-members.
    pub fn run(&self, scores: &[f64], members: &[bool]) -> Result<ManyRunBound> {
        let n = check_scores(scores, members)?;
        let cut = self.cut(n);
        let (threshold, _) = self.best_threshold(&scores[..cut], &members[..cut])?;
        self.bound(&scores[cut..], &members[cut..], threshold, None, cut)
    }

    /// The bound from many canaries in each of K runs: `scores` and `members` are K x m,
    /// row-major (run k's score for canary j, and whether run k included it). The canary and
    /// its threshold are chosen together on the first runs (the selection share), the best
    /// bound there; the bound is that canary's at that threshold on the other runs, each run
    /// one independent trial.
    pub fn run_canaries(
        &self,
        scores: &[f64],
        members: &[bool],
        canaries: usize,
    ) -> Result<ManyRunBound> {
        check_scores(scores, members)?;
        if canaries == 0 || !scores.len().is_multiple_of(canaries) {
            return Err(invalid(
                "scores",
                format!(
                    "{} scores are not runs of {canaries} canaries",
                    scores.len()
                ),
            ));
        }
        let runs = scores.len() / canaries;
        if runs < 2 {
            return Err(invalid(
                "scores",
                format!("{runs} run: at least 2 are needed"),
            ));
        }
        let cut = self.cut(runs);
        let column = |j: usize, range: std::ops::Range<usize>| -> (Vec<f64>, Vec<bool>) {
            range
                .map(|k| (scores[k * canaries + j], members[k * canaries + j]))
                .unzip()
        };
        let mut best: Option<(f64, f64, usize)> = None;
        for j in 0..canaries {
            let (s, m) = column(j, 0..cut);
            // A canary in every selection run or in none cannot be judged there.
            let Ok((threshold, bound)) = self.best_threshold(&s, &m) else {
                continue;
            };
            if best.is_none_or(|b| bound > b.0) {
                best = Some((bound, threshold, j));
            }
        }
        let Some((_, threshold, j)) = best else {
            return Err(invalid(
                "members",
                "no canary is both in and out of the threshold-selection runs",
            ));
        };
        let (s, m) = column(j, cut..runs);
        self.bound(&s, &m, threshold, Some(j), cut)
    }

    /// How many of `n` trials choose the threshold (at least one, and one left).
    fn cut(&self, n: usize) -> usize {
        ((n as f64 * self.selection).round() as usize).clamp(1, n.saturating_sub(1).max(1))
    }

    /// The threshold with the largest bound on these trials, and that bound.
    fn best_threshold(&self, scores: &[f64], members: &[bool]) -> Result<(f64, f64)> {
        both_classes(members, "threshold-selection")?;
        let roc = RocCurve::new(scores, members, Direction::HigherIsMember)?;
        let (p, neg) = (roc.positives(), roc.negatives());
        let mut best = (f64::INFINITY, f64::NEG_INFINITY);
        for i in 0..roc.len() {
            let (tp, fp) = (roc.true_positives()[i], roc.false_positives()[i]);
            let bound = epsilon_lower_bound(tp, p, fp, neg, self.confidence, self.delta)?;
            if bound.epsilon > best.1 {
                best = (roc.thresholds()[i], bound.epsilon);
            }
        }
        Ok(best)
    }

    /// The bound on held-out trials at `threshold` (scores at or above it guessed members).
    fn bound(
        &self,
        scores: &[f64],
        members: &[bool],
        threshold: f64,
        canary: Option<usize>,
        selection_trials: usize,
    ) -> Result<ManyRunBound> {
        both_classes(members, "held-out")?;
        let (mut tp, mut fp, mut pos, mut negs) = (0u64, 0u64, 0u64, 0u64);
        for (&s, &member) in scores.iter().zip(members) {
            let guessed = (s >= threshold) as u64;
            if member {
                pos += 1;
                tp += guessed;
            } else {
                negs += 1;
                fp += guessed;
            }
        }
        let detail = epsilon_lower_bound(tp, pos, fp, negs, self.confidence, self.delta)?;
        Ok(ManyRunBound {
            epsilon: detail.epsilon,
            threshold,
            detail: Some(detail),
            canary,
            selection_trials,
            bound_trials: scores.len(),
        })
    }
}

/// Refuses trials that hold members only or non-members only.
fn both_classes(members: &[bool], what: &str) -> Result<()> {
    let inside = members.iter().filter(|&&m| m).count();
    if inside == 0 || inside == members.len() {
        return Err(invalid(
            "members",
            format!("the {what} trials ({}) hold one class only", members.len()),
        ));
    }
    Ok(())
}

/// Checks that scores and memberships pair up, are at least two and finite; returns their
/// number.
fn check_scores(scores: &[f64], members: &[bool]) -> Result<usize> {
    if scores.len() != members.len() {
        return Err(invalid(
            "scores",
            format!("{} scores for {} memberships", scores.len(), members.len()),
        ));
    }
    if scores.len() < 2 {
        return Err(invalid(
            "scores",
            format!("{} canaries: at least 2 are needed", scores.len()),
        ));
    }
    if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
        return Err(invalid("scores", format!("score {i} is {}", scores[i])));
    }
    Ok(scores.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// p-values from the reference code (Steinke et al. 2023, Appendix D) run with SciPy
    /// 1.17.1: `p_value_DP_audit(m, r, v, eps, delta)` (see tests/fixtures/one_run_reference.py).
    #[test]
    fn p_values_equal_the_papers_code() {
        let text = include_str!("../tests/fixtures/one_run_reference.json");
        let cases: serde_json::Value = serde_json::from_str(text).unwrap();
        let mut n = 0;
        for c in cases["p_values"].as_array().unwrap() {
            let u = |k: &str| c[k].as_u64().unwrap() as usize;
            let f = |k: &str| c[k].as_f64().unwrap();
            let ours = one_run_p_value(u("m"), u("r"), u("v"), f("eps"), f("delta"));
            let want = f("p");
            assert!((ours - want).abs() <= 1e-9 + 1e-7 * want, "{c}: {ours}");
            n += 1;
        }
        for c in cases["epsilons"].as_array().unwrap() {
            let u = |k: &str| c[k].as_u64().unwrap() as usize;
            let f = |k: &str| c[k].as_f64().unwrap();
            let ours = one_run_epsilon(u("m"), u("r"), u("v"), f("delta"), 1.0 - f("p"));
            assert!((ours - f("eps")).abs() < 1e-6, "{c}: {ours}");
            n += 1;
        }
        assert!(n >= 20);
    }

    #[test]
    fn chance_guesses_prove_nothing() {
        let included: Vec<bool> = (0..1000).map(|i| i % 2 == 0).collect();
        let scores: Vec<f64> = (0..1000).map(|i| ((i * 7919) % 1000) as f64).collect();
        let bound = OneRunAudit::new(100, 100, 1e-5)
            .unwrap()
            .run(&scores, &included)
            .unwrap();
        assert!(bound.epsilon < 0.5, "{bound:?}");
    }

    #[test]
    fn bad_inputs_are_refused() {
        let audit = OneRunAudit::new(2, 2, 1e-5).unwrap();
        assert!(audit.run(&[1.0, 2.0, 3.0], &[true, false, true]).is_err()); // 4 guesses > 3
        assert!(audit.run(&[1.0, f64::NAN, 3.0, 4.0], &[true; 4]).is_err());
        assert!(audit.run(&[1.0], &[true, false]).is_err());
        assert!(OneRunAudit::new(0, 0, 1e-5).is_err());
        assert!(OneRunAudit::new(1, 1, 1.0).is_err());
        let many = ManyRunAudit::new(1e-5).unwrap();
        assert!(
            many.run(&[1.0, 2.0, 3.0, 4.0], &[true, true, false, false])
                .is_err()
        );
        assert!(many.with_selection(1.0).is_err());
    }
}

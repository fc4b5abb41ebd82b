//! The audit: every number a report shows, computed from a keep matrix and the models' logits.

use memia_attacks::loo::{EvalGroup, LooConfig, LooReport, leave_one_out};
use memia_attacks::theory::{BudgetPlan, privacy_score};
use memia_attacks::{AttackSpec, CandidateRule, FittedTest, MembershipTest};
use memia_core::{KeepMatrix, Logits, Signal};
use memia_memorization::{Memorization, MemorizationConfig, Outcome};
use memia_metrics::{
    Correlation, Direction, RocCurve, RocSummary, STANDARD_FPRS, TprAtFpr, median, spearman,
};
use ndarray::{Array1, Axis};
use serde::{Deserialize, Serialize};

use crate::error::{ReportError, Result};

/// What to audit and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// The attack (default: online LiRA with a global variance).
    pub attack: AttackSpec,
    /// The model attacked as the target; the others are its shadow models.
    pub target: usize,
    /// How the high-memorization candidates are chosen (default: memorization >= 0.5).
    pub candidates: CandidateRule,
    /// Number of target models in the leave-one-model-out curve (models 0, 1, ...).
    pub curve_targets: usize,
    /// Shadow-model counts of the curve (default: 1, 2, 4, ..., K - 1).
    pub shadow_counts: Option<Vec<usize>>,
    /// Error probability of the shadow-model budget planner.
    pub delta: f64,
    /// Seed of the curve's random draws of shadow models.
    pub seed: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            attack: AttackSpec::default(),
            target: 0,
            candidates: CandidateRule::MemorizationAtLeast(0.5),
            curve_targets: 8,
            shadow_counts: None,
            delta: 0.01,
            seed: 0,
        }
    }
}

/// The data of an audit: who trained on what, and what every model answered.
#[derive(Debug, Clone, Copy)]
pub struct AuditInputs<'a> {
    /// K x N: which model trained on which sample.
    pub keep: &'a KeepMatrix,
    /// K x N x A x C logits of every model on every sample.
    pub logits: &'a Logits,
    /// The N true labels.
    pub labels: &'a [u32],
    /// Optional description of each sample (e.g. "mnist:17" or "canary:notmnist:3").
    pub provenance: Option<&'a [String]>,
    /// Named sample sets reported separately (e.g. the canaries).
    pub groups: &'a [EvalGroup],
}

/// Memorization in the summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemorizationSummary {
    /// Mean memorization over the samples it is defined for.
    pub mean: f64,
    /// Samples with no IN or no OUT model (NaN estimates).
    pub undetermined: usize,
    /// The candidate rule, as text.
    pub candidate_rule: String,
    /// Number of candidates it selects.
    pub candidates: usize,
    /// Median standard error.
    pub median_std_error: f64,
}

/// The shadow-model budget planner's prediction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetSummary {
    /// Error probability the budget is for.
    pub delta: f64,
    /// Median shadow models needed by the candidates (the mean of the middle two for an even
    /// count; None: no candidate is attackable).
    pub candidates_median: Option<f64>,
    /// Median over all samples whose memorization is positive.
    pub all_median: Option<f64>,
}

/// Everything `summary.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Models K.
    pub models: usize,
    /// Pool samples N.
    pub samples: usize,
    /// Queries per sample A.
    pub queries: usize,
    /// Classes C.
    pub classes: usize,
    /// The attack, described.
    pub attack: String,
    /// The target model.
    pub target: usize,
    /// Memorization (estimated from the K - 1 shadow models of the target).
    pub memorization: MemorizationSummary,
    /// The target attack on all samples.
    pub all: RocSummary,
    /// The target attack on the candidates (None when they hold one class only).
    pub candidates: Option<RocSummary>,
    /// The target attack on each named group (None when it holds one class only).
    pub groups: Vec<(String, Option<RocSummary>)>,
    /// Spearman correlation between memorization and privacy score.
    pub memorization_vs_privacy: Option<Correlation>,
    /// The budget planner.
    pub budget: BudgetSummary,
    /// Attack quality against the number of shadow models (leave one model out).
    pub shadow_curve: LooReport,
}

/// A finished audit: per-sample results and the summary.
#[derive(Debug, Clone)]
pub struct Audit {
    /// The settings.
    pub config: AuditConfig,
    /// The summary (`summary.json`).
    pub summary: Summary,
    /// Memorization from the target's shadow models.
    pub memorization: Memorization,
    /// Privacy score from the target's shadow models.
    pub privacy_score: Array1<f64>,
    /// The attack's score of each sample on the target (NaN: not judgeable).
    pub scores: Vec<f64>,
    /// Whether each sample was in the target's training set.
    pub members: Vec<bool>,
    /// The high-memorization candidates.
    pub candidates: Vec<usize>,
    /// The labels.
    pub labels: Vec<u32>,
    /// Per-sample provenance, when known.
    pub provenance: Option<Vec<String>>,
    /// The target attack's ROC curves: all samples, then the candidates.
    pub roc: Vec<(String, RocCurve)>,
    /// The budget planner's per-sample prediction.
    pub budget: BudgetPlan,
}

impl Audit {
    /// Runs the audit. `progress(done, total)` follows the leave-one-out curve, the long part.
    pub fn run(
        inputs: AuditInputs<'_>,
        config: &AuditConfig,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<Audit> {
        let (keep, logits, labels) = (inputs.keep, inputs.logits, inputs.labels);
        let (k, n, a, c) = logits.view().dim();
        if keep.models() != k || keep.samples() != n {
            return Err(ReportError::Invalid(format!(
                "the keep matrix is {} x {} but the logits cover {k} models x {n} samples",
                keep.models(),
                keep.samples()
            )));
        }
        if labels.len() != n {
            return Err(ReportError::Invalid(format!(
                "{} labels for {n} samples",
                labels.len()
            )));
        }
        if let Some(p) = inputs.provenance
            && p.len() != n
        {
            return Err(ReportError::Invalid(format!(
                "{} provenance entries for {n} samples",
                p.len()
            )));
        }
        if k < 2 {
            return Err(ReportError::Invalid(format!(
                "an audit needs at least 2 models (a target and a shadow model), the run has {k}"
            )));
        }
        if config.target >= k {
            return Err(ReportError::Invalid(format!(
                "target model {} does not exist: the run has models 0..{k}",
                config.target
            )));
        }
        let t = config.target;
        let shadows: Vec<usize> = (0..k).filter(|&m| m != t).collect();
        let shadow_keep = keep.select_models(&shadows)?;
        let shadow_logits = logits.select_models(&shadows)?;

        // Memorization and privacy score from the shadow models only: an auditor does not
        // know the target's training set.
        let memorization = MemorizationConfig::default()
            .allow_missing()
            .estimate_from_logits(&shadow_keep, &shadow_logits, labels, Outcome::Correct)?;
        // `phi` of every model: the privacy score reads the shadows' rows, and LiRA and the
        // global threshold attack it too.
        let phi = logits.signals(labels, Signal::Phi)?;
        let shadow_phi = phi.select(Axis(0), &shadows);
        let privacy = privacy_score(&shadow_keep, shadow_phi.view())?;
        let candidates = config.candidates.select(&memorization, Some(&privacy))?;

        let other_signal;
        let signal = if config.attack.signal() == Signal::Phi {
            &phi
        } else {
            other_signal = logits.signals(labels, config.attack.signal())?;
            &other_signal
        };
        let fitted = config
            .attack
            .fit(&shadow_keep, signal.select(Axis(0), &shadows).view())?;
        let scores = fitted.score(signal.index_axis(Axis(0), t))?.to_vec();
        let members = keep.row(t).to_vec();

        let summarize = |samples: &[usize]| -> Result<Option<(RocSummary, RocCurve)>> {
            let (s, m): (Vec<f64>, Vec<bool>) = samples
                .iter()
                .filter(|&&i| scores[i].is_finite())
                .map(|&i| (scores[i], members[i]))
                .unzip();
            if !m.iter().any(|&x| x) || m.iter().all(|&x| x) {
                return Ok(None);
            }
            let roc = RocCurve::new(&s, &m, Direction::HigherIsMember)?;
            Ok(Some((
                roc.summary(&STANDARD_FPRS, TprAtFpr::LiraStrict)?,
                roc,
            )))
        };
        let everyone: Vec<usize> = (0..n).collect();
        if !scores.iter().any(|s| s.is_finite()) {
            return Err(ReportError::Invalid(format!(
                "{} judged no sample with the {} shadow models of target {t} (online LiRA and RMIA need IN and OUT shadow models of each sample): use more models or an offline attack",
                config.attack.describe(),
                k - 1
            )));
        }
        let (all, all_roc) = summarize(&everyone)?.ok_or_else(|| {
            ReportError::Invalid(format!(
                "target model {t} has only members or only non-members among the judged samples"
            ))
        })?;
        let mut roc = vec![("all samples".to_string(), all_roc)];
        let candidate_summary = summarize(&candidates)?.map(|(s, r)| {
            roc.push(("high-memorization candidates".to_string(), r));
            s
        });
        let groups = inputs
            .groups
            .iter()
            .map(|g| {
                if let Some(&bad) = g.samples.iter().find(|&&i| i >= n) {
                    return Err(ReportError::Invalid(format!(
                        "group '{}' names sample {bad}, the pool has {n}",
                        g.name
                    )));
                }
                Ok((g.name.clone(), summarize(&g.samples)?.map(|(s, _)| s)))
            })
            .collect::<Result<Vec<_>>>()?;

        let finite: Vec<(f64, f64)> = (0..n)
            .map(|i| (memorization.score[i], privacy[i]))
            .filter(|(m, p)| m.is_finite() && p.is_finite())
            .collect();
        let (mx, py): (Vec<f64>, Vec<f64>) = finite.into_iter().unzip();
        let correlation = spearman(&mx, &py).ok();

        let budget = BudgetPlan::from_memorization(&memorization, config.delta)?;
        let needed = &budget.models_needed;
        let budget_summary = BudgetSummary {
            delta: config.delta,
            candidates_median: median_models(needed, candidates.iter().copied()),
            all_median: median_models(needed, (0..n).filter(|&i| memorization.score[i] > 0.0)),
        };

        let mut curve_groups = Vec::new();
        if !candidates.is_empty() {
            curve_groups.push(EvalGroup {
                name: "candidates".into(),
                samples: candidates.clone(),
            });
        }
        curve_groups.extend(inputs.groups.iter().cloned());
        let loo = LooConfig {
            shadow_counts: config.shadow_counts.clone(),
            targets: Some((0..config.curve_targets.clamp(1, k)).collect()),
            fprs: vec![1e-3, 1e-2],
            groups: curve_groups,
            seed: config.seed,
            ..Default::default()
        };
        let shadow_curve = leave_one_out(&config.attack, keep, signal.view(), &loo, |d, t| {
            progress(d, t)
        })?;

        let mut finite_se: Vec<f64> = memorization
            .std_error
            .iter()
            .copied()
            .filter(|x| x.is_finite())
            .collect();
        let defined: Vec<f64> = memorization
            .score
            .iter()
            .copied()
            .filter(|x| x.is_finite())
            .collect();
        let summary = Summary {
            models: k,
            samples: n,
            queries: a,
            classes: c,
            attack: config.attack.describe(),
            target: t,
            memorization: MemorizationSummary {
                mean: defined.iter().sum::<f64>() / defined.len().max(1) as f64,
                undetermined: n - defined.len(),
                candidate_rule: describe_rule(&config.candidates),
                candidates: candidates.len(),
                median_std_error: median(&mut finite_se).unwrap_or(f64::NAN),
            },
            all,
            candidates: candidate_summary,
            groups,
            memorization_vs_privacy: correlation,
            budget: budget_summary,
            shadow_curve,
        };
        Ok(Audit {
            config: config.clone(),
            summary,
            memorization,
            privacy_score: privacy,
            scores,
            members,
            candidates,
            labels: labels.to_vec(),
            provenance: inputs.provenance.map(<[String]>::to_vec),
            roc,
            budget,
        })
    }
}

/// A candidate rule in words.
pub fn describe_rule(rule: &CandidateRule) -> String {
    match rule {
        CandidateRule::MemorizationAtLeast(t) => format!("memorization >= {t}"),
        CandidateRule::TopMemorized(k) => format!("the {k} most memorized samples"),
        CandidateRule::PrivacyScoreAtLeast(t) => format!("privacy score >= {t}"),
    }
}

/// The median of the shadow models the samples `set` need (those the planner can attack).
fn median_models(needed: &[Option<u64>], set: impl Iterator<Item = usize>) -> Option<f64> {
    let mut models: Vec<f64> = set.filter_map(|i| needed[i]).map(|m| m as f64).collect();
    median(&mut models)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_budget_of_an_even_count_is_the_middle_mean() {
        let needed = [Some(4), None, Some(8), Some(100), Some(6)];
        // 4 and 8: 6 (not the upper middle value, 8).
        assert_eq!(median_models(&needed, [0, 1, 2].into_iter()), Some(6.0));
        assert_eq!(median_models(&needed, [0, 2, 4].into_iter()), Some(6.0));
        assert_eq!(median_models(&needed, 0..5), Some(7.0));
        assert_eq!(median_models(&needed, [1].into_iter()), None);
    }
}

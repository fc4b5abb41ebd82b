//! The privacy audit of a run whose models claim differential privacy: does the training give
//! the epsilon it claims? The canaries' LiRA signal (the logit-scaled confidence of their
//! label, higher is member) in every model of the run feeds two audits from `memia-dp`, each a
//! lower bound on epsilon that holds at the stated confidence:
//!
//! * one run (Steinke, Nasr and Jagielski 2023): one model, its canaries each in with
//!   probability 1/2, the attacker guessing only its most confident canaries either way; and,
//!   where every (model, canary) inclusion is an independent fair coin (a Bernoulli(1/2) plan),
//!   the same audit over all the models at once;
//! * many runs: the canary and the threshold chosen on half of the models, the bound
//!   (Clopper-Pearson) on the other half.
//!
//! The claim is the accountant's for memia's own DP-SGD runs (`[training] dp`), or the user's
//! (models trained elsewhere, imported or by an external trainer). A bound above the claim
//! proves the claim false; a bound below it is the expected outcome for a correct DP-SGD audited
//! black-box, and proves nothing.

use memia_core::{Signal, Signals};
use memia_dp::{ManyRunAudit, ManyRunBound, OneRunAudit, OneRunBound};
use memia_metrics::{Direction, RocCurve};
use memia_shadow::InclusionScheme;
use serde::{Deserialize, Serialize};

use crate::error::{AuditError, Result};
use crate::run::Run;

/// What the audit is asked.
#[derive(Debug, Clone, PartialEq)]
pub struct DpAuditConfig {
    /// The claim under test; `None`: the accountant's, from the run's `[training] dp`.
    pub claim: Option<Claim>,
    /// The canaries (pool indices); `None`: the run's canaries (its `canaries` sample set).
    pub canaries: Option<Vec<usize>>,
    /// Probability that each bound holds.
    pub confidence: f64,
    /// Canaries guessed "in" and as many "out" by the one-run audit; `None`: a tenth of the
    /// canaries each way (at least one).
    pub guesses: Option<usize>,
    /// The model the one-run audit attacks.
    pub model: usize,
}

impl Default for DpAuditConfig {
    fn default() -> Self {
        DpAuditConfig {
            claim: None,
            canaries: None,
            confidence: 0.95,
            guesses: None,
            model: 0,
        }
    }
}

/// A claimed (epsilon, delta) and where it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    /// The claimed epsilon.
    pub epsilon: f64,
    /// Its delta.
    pub delta: f64,
    /// The noise multiplier behind it, when memia's accountant computed it (the largest
    /// epsilon over the run's models, which differ only by their training-set sizes).
    pub noise_multiplier: Option<f64>,
}

/// What the audit found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DpAudit {
    /// The claim tested.
    pub claim: Claim,
    /// Canaries audited.
    pub canaries: usize,
    /// Models of the run.
    pub models: usize,
    /// The confidence of each bound.
    pub confidence: f64,
    /// The one-run audit of `model`, or why it could not run (the plan's inclusions are not
    /// independent fair coins).
    pub one_run: Audited<OneRunBound>,
    /// The model it attacked.
    pub model: usize,
    /// The one-run audit over every model at once (Bernoulli(1/2) plans only), or why not.
    pub pooled: Audited<OneRunBound>,
    /// The many-run audit, or why it could not run.
    pub many_runs: Audited<ManyRunBound>,
    /// The canaries' ROC curve over every (model, canary) pair (false- and true-positive
    /// rates), for the report's plot against the claim's region.
    pub roc: Vec<(f64, f64)>,
    /// Assumptions the bounds rest on that memia could not check.
    pub notes: Vec<String>,
}

/// An audit's bound, or why the audit did not run (JSON: `{"bound": ...}` or `{"not_run":
/// "why"}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audited<T> {
    /// The audit ran.
    Bound(T),
    /// Why it did not.
    NotRun(String),
}

impl<T> Audited<T> {
    /// The bound, if the audit ran.
    pub fn bound(&self) -> Option<&T> {
        match self {
            Audited::Bound(b) => Some(b),
            Audited::NotRun(_) => None,
        }
    }
}

impl<T> From<std::result::Result<T, String>> for Audited<T> {
    fn from(result: std::result::Result<T, String>) -> Self {
        match result {
            Ok(b) => Audited::Bound(b),
            Err(why) => Audited::NotRun(why),
        }
    }
}

impl DpAudit {
    /// The largest bound found.
    pub fn largest_bound(&self) -> f64 {
        let pooled = self.pooled.bound().map_or(0.0, |b| b.epsilon);
        let many = self.many_runs.bound().map_or(0.0, |b| b.epsilon);
        let one = self.one_run.bound().map_or(0.0, |b| b.epsilon);
        one.max(pooled).max(many)
    }

    /// Whether an audit disproved the claim. Each bound holds at the confidence on its own;
    /// with three of them, the chance that any exceeds a true claim is at most three times the
    /// error rate (a union bound), which the text report states.
    pub fn claim_refuted(&self) -> bool {
        self.largest_bound() > self.claim.epsilon
    }
}

impl Run {
    /// Audits the run's differential-privacy claim (see the module documentation).
    pub fn dp_audit(&self, config: &DpAuditConfig) -> Result<DpAudit> {
        let keep = self.dir.keep();
        let (models, samples) = (keep.models(), keep.samples());
        let canaries = match &config.canaries {
            Some(c) => c.clone(),
            None => self
                .pool
                .groups
                .iter()
                .find(|g| g.name == "canaries")
                .map(|g| g.samples.clone())
                .ok_or_else(|| {
                    AuditError::Usage(
                        "the run has no canaries (no `canaries` sample set in pool.json): name \
                         the canary samples"
                            .into(),
                    )
                })?,
        };
        if canaries.len() < 2 {
            return Err(AuditError::Usage(format!(
                "{} canaries: a DP audit needs at least 2",
                canaries.len()
            )));
        }
        if let Some(&i) = canaries.iter().find(|&&i| i >= samples) {
            return Err(AuditError::Usage(format!(
                "canary {i} is not a sample of the run's pool of {samples}"
            )));
        }
        if config.model >= models {
            return Err(AuditError::TargetOutOfRange {
                target: config.model,
                models,
            });
        }
        let claim = match config.claim {
            Some(claim) => claim,
            None => self.accountant_claim()?,
        };
        let m = canaries.len();
        let guesses = config.guesses.unwrap_or((m / 10).max(1));
        let mut notes = Vec::new();

        // Phi of every canary in every model: K x m, row-major.
        let all: Vec<usize> = (0..models).collect();
        let mut signals = Signals::compute(
            &self.logits_files(&all, 1)?,
            &all,
            &self.labels,
            &[Signal::Phi],
            |_, _| {},
        )?;
        let phi = signals.take(Signal::Phi).expect("computed above");
        let mut scores = Vec::with_capacity(models * m);
        let mut members = Vec::with_capacity(models * m);
        for k in 0..models {
            for &i in &canaries {
                scores.push(phi[[k, i, 0]]);
                members.push(keep.row(k)[i]);
            }
        }
        if let Some(p) = scores.iter().position(|s| !s.is_finite()) {
            return Err(AuditError::Usage(format!(
                "model {}'s logits for canary {} give no finite signal",
                p / m,
                canaries[p % m]
            )));
        }

        let fair_coins = match self.dir.plan().scheme {
            InclusionScheme::Balanced { ratio } => ratio == 0.5 && models.is_multiple_of(2),
            InclusionScheme::Bernoulli { p } => p == 0.5,
            InclusionScheme::FixedSize { .. } => false,
            InclusionScheme::Given { .. } => {
                notes.push(
                    "the keep matrix was made elsewhere: the one-run audit assumes that each \
                     canary was included in each model independently with probability 1/2"
                        .into(),
                );
                true
            }
        };
        let unfair = format!(
            "the one-run audit needs each canary in each model with probability 1/2, \
             independently; the run's scheme is {:?} over {models} models (balanced 0.5 with an \
             even number of models, or bernoulli 0.5)",
            self.dir.plan().scheme
        );
        let one =
            OneRunAudit::new(guesses, guesses, claim.delta)?.with_confidence(config.confidence)?;
        let row = config.model * m..(config.model + 1) * m;
        let one_run = match fair_coins {
            true => Audited::Bound(one.run(&scores[row.clone()], &members[row])?),
            false => Audited::NotRun(unfair.clone()),
        };
        let pooled = match self.dir.plan().scheme {
            _ if !fair_coins => Audited::NotRun(unfair),
            InclusionScheme::Bernoulli { .. } => {
                let pooled = OneRunAudit::new(guesses * models, guesses * models, claim.delta)?
                    .with_confidence(config.confidence)?;
                Audited::Bound(pooled.run(&scores, &members)?)
            }
            _ => Audited::NotRun(
                "the one-run audit pools models only when every (model, canary) inclusion is an \
                 independent fair coin (a bernoulli 0.5 plan)"
                    .to_string(),
            ),
        };
        let many_runs = ManyRunAudit::new(claim.delta)?
            .with_confidence(config.confidence)?
            .run_canaries(&scores, &members, m)
            .map_err(|e| e.to_string())
            .into();
        let curve =
            RocCurve::new(&scores, &members, Direction::HigherIsMember)?.drop_intermediate();
        let roc = curve
            .fpr()
            .iter()
            .zip(curve.tpr())
            .map(|(&f, &t)| (f, t))
            .collect();
        Ok(DpAudit {
            claim,
            canaries: m,
            models,
            confidence: config.confidence,
            one_run,
            model: config.model,
            pooled,
            many_runs,
            roc,
            notes,
        })
    }

    /// The claim of memia's DP-SGD for this run: the accountant's epsilon for each model's
    /// training-set size, the largest.
    fn accountant_claim(&self) -> Result<Claim> {
        let dp_of = |config: &crate::RunConfig| config.training.dp.map(|dp| (dp, config.training));
        let Some((dp, training)) = self.config.as_ref().and_then(dp_of) else {
            return Err(AuditError::Usage(
                "the run was not trained with memia's DP-SGD ([training] dp): give the claimed \
                 epsilon and delta"
                    .into(),
            ));
        };
        let keep = self.dir.keep();
        let mut claim = Claim {
            epsilon: 0.0,
            delta: dp.delta,
            noise_multiplier: None,
        };
        // Models of one size have one noise and one epsilon: each size is accounted once.
        let sizes: std::collections::BTreeSet<usize> = keep.train_sizes().into_iter().collect();
        for n in sizes {
            let noise = dp.noise_for(n, &training)?;
            let eps = dp.epsilon_for(n, noise, &training)?.epsilon;
            if eps >= claim.epsilon {
                claim.epsilon = eps;
                claim.noise_multiplier = Some(noise);
            }
        }
        Ok(claim)
    }
}

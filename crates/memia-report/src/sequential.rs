//! A sequential audit of one target: train shadow models in rounds (1, 2, 4, ... of them),
//! decide the high-memorization candidates' membership after each round, and stop as soon as
//! the decisions are confident ([`memia_attacks::sequential`] gives the rule) or the budget is
//! spent. Trained models stay in the run directory, so an interrupted audit resumes where it
//! stopped and a repeated one trains nothing.

use std::time::Instant;

use memia_attacks::sequential::{Decision, Round, SequentialConfig};
use memia_core::{Signal, Signals};
use memia_data::Dataset;
use memia_shadow::{Progress, RunDir, ShadowTrainer};
use serde::Serialize;

use crate::audit::Target;
use crate::error::{ReportError, Result};

/// Settings of a sequential audit.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SequentialAudit {
    /// The decisions and the stopping rule.
    pub config: SequentialConfig,
    /// Shadow-model counts of the rounds (default 1, 2, 4, ... and the budget); each at most
    /// the shadow models the run can give.
    pub rounds: Option<Vec<usize>>,
}

/// One round, as the report lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoundSummary {
    /// Shadow models used.
    pub shadow_models: usize,
    /// Candidates (memorization at least the threshold).
    pub candidates: usize,
    /// Candidates decided (with IN and OUT shadow models).
    pub decided: usize,
    /// Mean posterior error of the decisions (NaN: none).
    pub expected_error_rate: f64,
    /// Fraction of decisions that are wrong, when the target's membership is known.
    pub realized_error_rate: Option<f64>,
    /// The budget planner's median prediction for the decided candidates.
    pub planner_median: Option<f64>,
    /// The stopping rule held.
    pub confident: bool,
    /// Seconds since the audit started (training included).
    pub seconds: f64,
}

/// Why the audit stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stop {
    /// The decisions' expected error rate reached `delta`.
    Confident,
    /// The budget (or the run's models) ran out first: the decisions are reported with the
    /// error they have.
    Budget,
}

/// The outcome: every round, why it stopped, and the last round's decisions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SequentialReport {
    /// [`crate::SCHEMA_VERSION`], first in the file.
    pub schema_version: u32,
    /// The settings' `delta` and `threshold`.
    pub config: SequentialConfig,
    /// The rounds run, in order.
    pub rounds: Vec<RoundSummary>,
    /// Why it stopped.
    pub stop: Stop,
    /// Shadow models used by the last round.
    pub shadow_models: usize,
    /// The last round's decisions.
    pub decisions: Vec<Decision>,
}

/// What a sequential audit reports while it works.
#[derive(Debug)]
pub enum SequentialEvent<'a> {
    /// Training progress (the models of the next round).
    Training(&'a Progress),
    /// A round was evaluated.
    Round(&'a RoundSummary),
}

impl SequentialAudit {
    /// The shadow-model counts of the rounds for `available` shadow models.
    fn schedule(&self, available: usize) -> Result<Vec<usize>> {
        let rounds = match &self.rounds {
            Some(r) => r.clone(),
            None => memia_attacks::doubling_counts(available),
        };
        if rounds.is_empty() || rounds.windows(2).any(|w| w[0] >= w[1]) || rounds[0] == 0 {
            return Err(ReportError::Rounds { rounds });
        }
        if let Some(&last) = rounds.last()
            && last > available
        {
            return Err(ReportError::RoundTooLarge {
                shadow_models: last,
                available,
            });
        }
        Ok(rounds)
    }

    /// Runs the audit on `run`: trains (with `trainer` on `pool`) the models each round needs
    /// that are not finished yet, then decides. `labels` are the pool's labels.
    pub fn run(
        &self,
        run: &RunDir,
        trainer: Option<&dyn ShadowTrainer>,
        pool: Option<&dyn Dataset>,
        labels: &[u32],
        target: Target<'_>,
        mut progress: impl FnMut(SequentialEvent<'_>),
    ) -> Result<SequentialReport> {
        self.config.check()?;
        let models = run.plan().models;
        let start = Instant::now();
        target.check(models, run.expected_logits_shape())?;
        let candidates_pool = target.available_shadows(models);
        let members: Option<Vec<bool>> = match target {
            Target::Model(t) => Some(run.keep().row(t).to_vec()),
            Target::External(external) => external.members.map(<[bool]>::to_vec),
        };
        let rounds = self.schedule(candidates_pool.len())?;
        let target_logits = match target {
            Target::Model(t) => {
                ensure_trained(run, trainer, pool, &[t], &mut progress)?;
                run.logits_of(&[t])?
            }
            Target::External(external) => external.logits.clone(),
        };
        let target_phi = target_logits.signals(labels, Signal::Phi)?;
        drop(target_logits);
        let mut summaries = Vec::new();
        let mut last: Option<Round> = None;
        for &n in &rounds {
            let shadows = &candidates_pool[..n];
            ensure_trained(run, trainer, pool, shadows, &mut progress)?;
            let keep = run.keep().select_models(shadows)?;
            // The shadows' signals, read one model file at a time.
            let mut signals = Signals::compute(
                &run.logits_files(shadows, 2)?,
                shadows,
                labels,
                &[Signal::Correct, Signal::Phi],
                |_, _| {},
            )?;
            let correct = signals.take(Signal::Correct).expect("computed above");
            let phi = signals.take(Signal::Phi).expect("computed above");
            let round = self.config.round_on_signals(
                &keep,
                correct.view(),
                phi.view(),
                target_phi.index_axis(ndarray::Axis(0), 0),
            )?;
            let realized = members.as_ref().and_then(|m| {
                (!round.decisions.is_empty()).then(|| {
                    round
                        .decisions
                        .iter()
                        .filter(|d| d.member != m[d.sample])
                        .count() as f64
                        / round.decisions.len() as f64
                })
            });
            let summary = RoundSummary {
                shadow_models: n,
                candidates: round.candidates,
                decided: round.decisions.len(),
                expected_error_rate: round.expected_error_rate,
                realized_error_rate: realized,
                planner_median: round.planner_median,
                confident: round.confident,
                seconds: start.elapsed().as_secs_f64(),
            };
            progress(SequentialEvent::Round(&summary));
            summaries.push(summary);
            let confident = round.confident;
            last = Some(round);
            if confident {
                break;
            }
        }
        let round = last.expect("at least one round");
        Ok(SequentialReport {
            schema_version: crate::SCHEMA_VERSION,
            config: self.config.clone(),
            stop: if round.confident {
                Stop::Confident
            } else {
                Stop::Budget
            },
            shadow_models: round.shadow_models,
            rounds: summaries,
            decisions: round.decisions,
        })
    }
}

/// Trains the models of `needed` that are not finished (as one range, from the first missing to
/// the last: finished ones inside it are skipped).
fn ensure_trained(
    run: &RunDir,
    trainer: Option<&dyn ShadowTrainer>,
    pool: Option<&dyn Dataset>,
    needed: &[usize],
    progress: &mut impl FnMut(SequentialEvent<'_>),
) -> Result<()> {
    let done = run.completed()?;
    let missing: Vec<usize> = needed.iter().copied().filter(|&m| !done[m]).collect();
    let (Some(&first), Some(&last)) = (missing.first(), missing.last()) else {
        return Ok(());
    };
    let (Some(trainer), Some(pool)) = (trainer, pool) else {
        return Err(ReportError::Untrained { first, last });
    };
    run.train(trainer, pool, first..last + 1, |p| {
        progress(SequentialEvent::Training(p))
    })?;
    Ok(())
}

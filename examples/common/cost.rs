//! The cost study shared by `audit_cost` and `cifar_ood`: memorization estimators from m shadow
//! models scored against the oracle, and the focused audit on each estimator's own candidates
//! against the blind audit on the same samples, every cost in model-epochs.

use std::time::Instant;

use memia::attacks::{LiraConfig, Variance};
use memia::core::{KeepMatrix, Logits};
use memia::data::Pool;
use memia::memorization::{Memorization, MemorizationConfig, Missing, Outcome, late_learning};
use memia::metrics::{RocSummary, spearman};
use memia::models::{BurnTrainer, TrainingConfig};
use memia::shadow::{ModelJob, RunDir};
use ndarray::Array1;

use super::Targets;

/// Memorization at or above this makes a candidate (the paper's threshold).
pub const THRESHOLD: f64 = 0.8;

/// How the focused audit finds its candidates among the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Estimator {
    /// Feldman-Zhang label memorization (0/1 correctness, IN against OUT models).
    Correct,
    /// The same with the true-class probability: the OUT models' confidences.
    Soft,
    /// Late learning from the models' own training trajectories (IN models only: right at the
    /// last checkpoint, not at the first).
    LateLearning,
}

impl Estimator {
    pub const ALL: [Estimator; 3] = [Estimator::Correct, Estimator::Soft, Estimator::LateLearning];

    pub fn name(self) -> &'static str {
        match self {
            Estimator::Correct => "Feldman-Zhang (correct)",
            Estimator::Soft => "Feldman-Zhang (soft)",
            Estimator::LateLearning => "late learning",
        }
    }
}

/// The LiRA variants of the focused audit.
pub fn variants() -> [(&'static str, LiraConfig); 3] {
    [
        ("global", LiraConfig::online().with_global_variance(true)),
        ("per-sample", LiraConfig::online()),
        ("prior", LiraConfig::online().with_variance(Variance::Prior)),
    ]
}

/// Seconds to train the same models with and without checkpoints.
pub struct Overhead {
    pub with: f64,
    pub without: f64,
    pub models: usize,
}

impl Overhead {
    /// The checkpoints' share of training time (never below 0: a noisy timing is not a gain).
    pub fn fraction(&self) -> f64 {
        (self.with / self.without - 1.0).max(0.0)
    }
}

/// Trains `models` of the run's models (from index `first`) again with `with`'s settings and
/// without its checkpoints, the faster of `rounds` interleaved rounds each.
pub fn checkpoint_overhead(
    with: &BurnTrainer,
    pool: &Pool,
    run: &RunDir,
    first: usize,
    models: usize,
    rounds: usize,
) -> Result<Overhead, Box<dyn std::error::Error>> {
    let jobs: Vec<ModelJob> = (first..first + models)
        .map(|k| ModelJob {
            index: k,
            seed: run.plan().model_seed(k),
            train: (0..run.keep().samples())
                .filter(|&i| run.keep().get(k, i))
                .collect(),
        })
        .collect();
    let without = BurnTrainer {
        training: TrainingConfig {
            checkpoint_every: None,
            ..with.training
        },
        ..with.clone()
    };
    let time = |trainer: &BurnTrainer| -> Result<f64, Box<dyn std::error::Error>> {
        let prepared = trainer.prepare(&pool.dataset)?;
        let t = Instant::now();
        prepared.train(&jobs)?;
        Ok(t.elapsed().as_secs_f64())
    };
    let (mut best_with, mut best_without) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..rounds {
        best_without = best_without.min(time(&without)?);
        best_with = best_with.min(time(with)?);
    }
    Ok(Overhead {
        with: best_with,
        without: best_without,
        models,
    })
}

/// What the study reads: the run's keep matrix, logits, trajectories and labels, the targets'
/// audit, the shadow models in order, and the training's epochs and checkpoint cost.
pub struct Study<'a> {
    pub keep: &'a KeepMatrix,
    pub logits: &'a Logits,
    pub trajectories: &'a Logits,
    pub labels: &'a [u32],
    pub targets: &'a Targets<'a>,
    pub shadows: &'a [usize],
    pub epochs: usize,
    pub overhead: &'a Overhead,
}

/// When the focused audit (one estimator, one variant) matches the blind one: the first m, and
/// the first m from which every larger m matches too (the steadier reading), each with its
/// cost in model-epochs.
pub struct Match {
    pub estimator: Estimator,
    pub variance: &'static str,
    pub first: Option<(usize, f64)>,
    pub from: Option<(usize, f64)>,
}
/// What [`Study::run`] found: the matches, and the focused scores it computed (per m of its
/// counts, per LiRA variant, per target), for further tables on other samples.
pub struct StudyRun {
    pub matched: Vec<Match>,
    pub focused: Vec<Vec<Vec<Array1<f64>>>>,
}

impl Study<'_> {
    /// Feldman-Zhang from `used` with `outcome` (NaN where a sample lacks IN or OUT models).
    pub fn memorization(
        &self,
        used: &[usize],
        outcome: Outcome,
    ) -> Result<Memorization, Box<dyn std::error::Error>> {
        Ok(MemorizationConfig::default()
            .allow_missing()
            .estimate_from_logits(
                &self.keep.select_models(used)?,
                &self.logits.select_models(used)?,
                self.labels,
                outcome,
            )?)
    }

    /// `estimator`'s scores from the models `used`.
    pub fn estimate(
        &self,
        estimator: Estimator,
        used: &[usize],
    ) -> Result<Vec<f64>, Box<dyn std::error::Error>> {
        Ok(match estimator {
            Estimator::Correct => self.memorization(used, Outcome::Correct)?.score.to_vec(),
            Estimator::Soft => self
                .memorization(used, Outcome::Probability)?
                .score
                .to_vec(),
            Estimator::LateLearning => late_learning(
                &self.keep.select_models(used)?,
                &self.trajectories.select_models(used)?,
                self.labels,
                Outcome::Correct,
                Missing::Allow,
            )?
            .score
            .to_vec(),
        })
    }

    /// The estimate's cost in model-epochs with m models: their training, plus the
    /// checkpoints' predictions for the trajectories.
    pub fn model_epochs(&self, estimator: Estimator, m: usize) -> f64 {
        let training = (m * self.epochs) as f64;
        match estimator {
            Estimator::Correct | Estimator::Soft => training,
            Estimator::LateLearning => training * (1.0 + self.overhead.fraction()),
        }
    }

    /// Prints, for each m of `counts` and each estimator, its candidates against `oracle`'s
    /// (precision, recall, Spearman) with its cost, then the focused audit on those candidates
    /// with each LiRA variant against the `blind` scores on the same samples; returns the
    /// matches of each (estimator, variant) and the focused scores it computed.
    pub fn run(
        &self,
        counts: &[usize],
        oracle: &[f64],
        blind: &[Array1<f64>],
    ) -> Result<StudyRun, Box<dyn std::error::Error>> {
        let n = oracle.len();
        let oracle_count = oracle.iter().filter(|&&v| v >= THRESHOLD).count();
        let variants = variants();
        println!(
            "\nthe estimators against the oracle (memorization >= {THRESHOLD} from all {} shadow models: {oracle_count} samples):\n{:>6} | {:<24} | {:>10} | {:>9} | {:>6} | {:>8} | {:>12}",
            self.shadows.len(),
            "shadow",
            "estimator",
            "candidates",
            "precision",
            "recall",
            "Spearman",
            "model-epochs"
        );
        let mut rows = Vec::new();
        let mut all_focused = Vec::with_capacity(counts.len());
        for &m in counts {
            let used = &self.shadows[..m];
            let focused: Vec<Vec<Array1<f64>>> = variants
                .iter()
                .map(|(_, attack)| self.targets.scores(attack, used))
                .collect::<Result<_, _>>()?;
            for (e, estimator) in Estimator::ALL.into_iter().enumerate() {
                let score = self.estimate(estimator, used)?;
                let own: Vec<usize> = (0..n).filter(|&i| score[i] >= THRESHOLD).collect();
                let hits = own.iter().filter(|&&i| oracle[i] >= THRESHOLD).count();
                let (x, y): (Vec<f64>, Vec<f64>) = (0..n)
                    .filter(|&i| score[i].is_finite() && oracle[i].is_finite())
                    .map(|i| (score[i], oracle[i]))
                    .unzip();
                let rho = spearman(&x, &y).map_or(f64::NAN, |c| c.statistic);
                let cost = self.model_epochs(estimator, m);
                println!(
                    "{m:>6} | {:<24} | {:>10} | {:>9.3} | {:>6.3} | {rho:>8.3} | {cost:>12.1}",
                    estimator.name(),
                    own.len(),
                    hits as f64 / own.len().max(1) as f64,
                    hits as f64 / oracle_count.max(1) as f64,
                );
                let on_own: Vec<Option<RocSummary>> = focused
                    .iter()
                    .map(|f| self.targets.pooled(f, &own))
                    .collect();
                let blind_own = self.targets.pooled(blind, &own);
                rows.push((m, e, own.len(), on_own, blind_own, cost));
            }
            all_focused.push(focused);
        }
        println!(
            "\nthe focused audit on each estimator's own candidates (from the same m models); AUROC  TPR@0.1%FPR [95% CI], {} targets pooled:\n{:>6} | {:<24} | {:>10} | {:>32} | {:>32} | {:>32} | {:>32}",
            self.targets.targets.len(),
            "shadow",
            "estimator",
            "candidates",
            "focused, global variance",
            "focused, per-sample variance",
            "focused, variance prior",
            "blind, all shadows, same samples"
        );
        // Per estimator and variant: (m, cost, whether it matches), in increasing m.
        let mut seen = vec![vec![Vec::new(); variants.len()]; Estimator::ALL.len()];
        for (m, e, count, on_own, blind_own, cost) in &rows {
            println!(
                "{m:>6} | {:<24} | {count:>10} | {:>32} | {:>32} | {:>32} | {:>32}",
                Estimator::ALL[*e].name(),
                cell(&on_own[0]),
                cell(&on_own[1]),
                cell(&on_own[2]),
                cell(blind_own),
            );
            for (v, f) in on_own.iter().enumerate() {
                let ok = matches!((f, blind_own), (Some(f), Some(b)) if super::matches(f, b));
                seen[*e][v].push((*m, *cost, ok));
            }
        }
        let mut matched = Vec::new();
        for (e, per_variant) in seen.iter().enumerate() {
            for (v, seen) in per_variant.iter().enumerate() {
                let first = seen.iter().find(|s| s.2).map(|s| (s.0, s.1));
                let from = (0..seen.len())
                    .find(|&j| seen[j..].iter().all(|s| s.2))
                    .map(|j| (seen[j].0, seen[j].1));
                matched.push(Match {
                    estimator: Estimator::ALL[e],
                    variance: variants[v].0,
                    first,
                    from,
                });
            }
        }
        Ok(StudyRun {
            matched,
            focused: all_focused,
        })
    }

    /// Prints each (estimator, variant)'s first match, or that it has none.
    pub fn print_matches(&self, matched: &[Match]) {
        let blind = (self.shadows.len() * self.epochs) as f64;
        println!(
            "\n'matches': AUROC at least the blind audit's minus 0.005 and TPR@0.1%FPR at least the lower end of the blind audit's 95% interval, on the same samples; costs in model-epochs (one model, one epoch on its half of the pool; the blind audit: {} x {} = {blind:.0}; the checkpoints' predictions measured on {} models: {:.2} s with, {:.2} s without, +{:.1}%)",
            self.shadows.len(),
            self.epochs,
            self.overhead.models,
            self.overhead.with,
            self.overhead.without,
            100.0 * self.overhead.fraction()
        );
        let describe = |reading: Option<(usize, f64)>| match reading {
            Some((m, cost)) => format!(
                "{m} shadow models, {cost:.0} model-epochs ({:.1}x fewer, {:.1} models' worth)",
                blind / cost,
                cost / self.epochs as f64
            ),
            None => format!("none up to {}", self.shadows.len()),
        };
        for x in matched {
            println!(
                "{}, {} variance: first match {}; matches at every m from {}",
                x.estimator.name(),
                x.variance,
                describe(x.first),
                describe(x.from)
            );
        }
    }
}

/// AUROC and TPR at 0.1% FPR of a summary, or why there is none.
pub fn cell(s: &Option<RocSummary>) -> String {
    s.as_ref()
        .map_or("no members and non-members".to_string(), |s| {
            format!("{:.4}  {}", s.auroc, super::tpr(s))
        })
}

//! The paper's cost claim, measured: how many shadow models a memorization-aware audit needs to
//! match a blind audit at the state of the art's scale, with the cost of finding the memorized
//! samples counted in.
//!
//! The pool of `mnist_ood` (5,000 MNIST digits + 100 notMNIST letters with random labels),
//! 16 target MLPs and 256 shadow MLPs on balanced halves, each model's logits on the pool
//! recorded every 5 of its 30 epochs (its training trajectory). The **blind** audit is online
//! LiRA with per-sample variances (the reference setting at this scale) with all 256 shadow
//! models on every sample. The **focused** audit uses only the first m = 2, 4, ..., 256 of them:
//! it estimates memorization from those m models itself, takes the samples at or above 0.8 as
//! candidates and attacks them with online LiRA (a global variance, per-sample variances, or
//! per-sample variances under a prior fitted across samples). Three estimators find the
//! candidates, each scored against the oracle (Feldman-Zhang from all 256 shadow models:
//! precision and recall of its candidates, Spearman's rank correlation) with its cost in
//! model-epochs (one model trained one epoch on its half of the pool):
//!
//! * Feldman-Zhang label memorization from the m models (correctness, IN against OUT);
//! * the same with the true-class probability (the OUT models' confidences);
//! * late learning, from the m models' own trajectories (right at the last checkpoint and not at
//!   the first), which needs no OUT model; its cost includes the checkpoints' predictions,
//!   measured here by training 16 models with and without them.
//!
//! Both audits are scored on the same samples, the 16 targets' (sample, target) pairs pooled
//! (16 so that the candidates hold more than 1,000 non-members and a TPR at 0.1% FPR can be
//! measured); then the attacks on the oracle's candidates, the setting of a paper that takes
//! memorization scores as given (their cost: the oracle's models).
//!
//! Samples the m models cannot judge (no IN or no OUT model) count as not detected. Every TPR
//! carries its 95% Clopper-Pearson interval, or "n/m" where 0.1% FPR allows no false positive.
//!
//! Run: `cargo run --release --example audit_cost [DATA_DIR]` (default `$MEMIA_DATA_DIR`),
//! about a minute. The 272 models are kept in the temporary directory and reused by a second
//! run. Results are in docs/REPRODUCTION.md.

#[path = "common/mod.rs"]
mod common;

use common::cost::{self, THRESHOLD};

use std::time::Instant;

use memia::attacks::{LiraConfig, doubling_counts};
use memia::core::Signal;
use memia::data::Dataset;
use memia::memorization::Outcome;
use ndarray::Array1;

const SEED: u64 = 2026;
const TARGETS: usize = 16;
const SHADOWS: usize = 256;
/// Each model's training epochs.
const EPOCHS: usize = 30;
const DIGITS: usize = 5000;
const LETTERS: usize = 100;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Models 0..16 are the targets, 16..272 the shadow models: planned and trained through the
    // library behind `memia run` (memia::audit). The trajectories for the late-learning
    // estimate: the pool predicted every 5 epochs.
    let models = TARGETS + SHADOWS;
    let mut trainer = common::mlp_trainer(EPOCHS, 0);
    trainer.training.checkpoint_every = Some(5);
    let config = common::mnist_letters_config(DIGITS, LETTERS, models, trainer.clone(), SEED)?;
    let common::Trained {
        run,
        pool,
        report,
        seconds: train_seconds,
        ..
    } = common::plan_and_train(&config, "memia-audit-cost")?;
    let n = pool.dataset.len();
    let labels = run.labels.clone();
    // Seconds per model: measured now, or (all reused) from the same settings' rate here.
    let per_model = if report.trained.is_empty() {
        None
    } else {
        Some(train_seconds / report.trained.len() as f64)
    };
    println!(
        "pool {n} samples ({DIGITS} MNIST + {LETTERS} notMNIST letters, random labels); {models} MLPs 784-128-10: {} trained in {train_seconds:.1} s{}, {} reused from {}",
        report.trained.len(),
        per_model.map_or(String::new(), |s| format!(" ({:.2} models/s)", 1.0 / s)),
        report.skipped.len(),
        run.path().display()
    );
    let logits = run.logits()?;
    let keep = run.dir.keep();
    let phi = logits.signals(&labels, Signal::Phi)?;
    let targets: Vec<usize> = (0..TARGETS).collect();
    let shadows: Vec<usize> = (TARGETS..models).collect();
    let audit = common::Targets {
        keep,
        phi: &phi,
        targets: targets.clone(),
    };
    let scores_of = |attack: &LiraConfig, fit: &[usize]| audit.scores(attack, fit);
    let pooled = |scores: &[Array1<f64>], samples: &[usize]| audit.pooled(scores, samples);

    // The trajectories, and what their checkpoints cost: 16 shadow models trained again with
    // and without them, in this process (the faster of 3 rounds each).
    let trajectories = run.dir.trajectories(&(0..models).collect::<Vec<_>>())?;
    let overhead = cost::checkpoint_overhead(&trainer, &pool, &run.dir, TARGETS, 16, 3)?;
    let study = cost::Study {
        keep,
        logits: &logits,
        trajectories: &trajectories,
        labels: &labels,
        targets: &audit,
        shadows: &shadows,
        epochs: EPOCHS,
        overhead: &overhead,
    };

    // The blind audit: 256 shadow models, per-sample variances, every sample.
    let t = Instant::now();
    let blind = scores_of(&LiraConfig::online(), &shadows)?;
    let blind_attack_seconds = t.elapsed().as_secs_f64();
    let oracle = study.memorization(&shadows, Outcome::Correct)?;
    let oracle_candidates: Vec<usize> = (0..n).filter(|&i| oracle.score[i] >= THRESHOLD).collect();
    let blind_all = pooled(&blind, &(0..n).collect::<Vec<_>>()).ok_or("one class")?;
    println!(
        "blind audit (online LiRA, per-sample variance, {SHADOWS} shadow models, {TARGETS} targets pooled): all samples AUROC {:.4}, TPR@0.1%FPR {}; attack {blind_attack_seconds:.2} s",
        blind_all.auroc,
        common::tpr(&blind_all)
    );
    println!(
        "oracle candidates (memorization >= {THRESHOLD} from all {SHADOWS} shadow models): {} samples ({} letters)",
        oracle_candidates.len(),
        oracle_candidates.iter().filter(|&&i| i >= DIGITS).count()
    );
    let blind_oracle = pooled(&blind, &oracle_candidates).ok_or("one class")?;
    // Why late learning works: how often the shadow models that trained on a sample are right
    // on it at the first and at the last checkpoint, the oracle's candidates against the rest.
    let right = trajectories.signals(&labels, Signal::Correct)?;
    let last = trajectories.queries() - 1;
    let in_rate = |candidate: bool, t: usize| {
        let (mut hits, mut total) = (0.0, 0usize);
        for &k in &shadows {
            for i in
                (0..n).filter(|&i| keep.get(k, i) && (oracle.score[i] >= THRESHOLD) == candidate)
            {
                hits += right[[k, i, t]];
                total += 1;
            }
        }
        hits / total.max(1) as f64
    };
    println!(
        "IN models right at the first checkpoint (epoch 5) / the last: the oracle's candidates {:.3} / {:.3}, the other samples {:.3} / {:.3}",
        in_rate(true, 0),
        in_rate(true, last),
        in_rate(false, 0),
        in_rate(false, last)
    );

    // 2, 4, ..., 256 shadow models.
    let counts = doubling_counts(SHADOWS)[1..].to_vec();
    let found = study.run(&counts, oracle.score.as_slice().ok_or("layout")?, &blind)?;

    // The same attacks on the oracle's candidates (a paper that takes memorization as given).
    println!(
        "\non the oracle's candidates ({} samples; its cost: the {SHADOWS} oracle models); AUROC  TPR@0.1%FPR [95% CI]:\n{:>6} | {:>32} | {:>32} | {:>32} | {:>32}",
        oracle_candidates.len(),
        "shadow",
        "focused, global variance",
        "focused, per-sample variance",
        "focused, variance prior",
        "blind, 256 models"
    );
    // The study's own focused scores, pooled on the oracle's candidates.
    for (&m, focused) in counts.iter().zip(&found.focused) {
        let cells: Vec<String> = focused
            .iter()
            .map(|scores| cost::cell(&pooled(scores, &oracle_candidates)))
            .collect();
        println!(
            "{m:>6} | {:>32} | {:>32} | {:>32} | {:>32}",
            cells[0],
            cells[1],
            cells[2],
            cost::cell(&Some(blind_oracle.clone()))
        );
    }
    study.print_matches(&found.matched);
    if let Some(s) = per_model {
        println!("training here: {s:.3} s per model");
    }
    Ok(())
}

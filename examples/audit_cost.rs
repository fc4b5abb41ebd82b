//! The paper's cost claim, measured: how many shadow models a memorization-aware audit needs to
//! match a blind audit at the state of the art's scale, with the cost of finding the memorized
//! samples counted in.
//!
//! The pool of `mnist_ood` (5,000 MNIST digits + 100 notMNIST letters with random labels),
//! 8 target MLPs and 256 shadow MLPs on balanced halves. The **blind** audit is online LiRA with
//! per-sample variances (the reference setting at this scale) with all 256 shadow models on every
//! sample. The **focused** audit uses only the first m = 2, 4, ..., 256 of them: it estimates
//! memorization from those m models itself, takes the samples at or above 0.8 as candidates and
//! attacks them with online LiRA with a global variance (the better choice with few models). Both
//! are scored on the same samples, the 8 targets' (sample, target) pairs pooled:
//!
//! * on the focused audit's own candidates (its true cost: m models, the memorization estimate
//!   reuses them);
//! * on the candidates of an oracle, memorization from all 256 (the setting of a paper that
//!   takes memorization scores as given: their cost is the oracle's models).
//!
//! Samples the m models cannot judge (no IN or no OUT model) count as not detected. Every TPR
//! carries its 95% Clopper-Pearson interval, or "n/m" where 0.1% FPR allows no false positive.
//!
//! Run: `cargo run --release --example audit_cost [DATA_DIR]` (default `$MEMIA_DATA_DIR`). The
//! 264 models are kept in the temporary directory and reused by a second run. Results are in
//! docs/REPRODUCTION.md.

#[path = "common/mod.rs"]
mod common;

use std::time::Instant;

use memia::attacks::LiraConfig;
use memia::core::Signal;
use memia::data::Dataset;
use memia::memorization::{MemorizationConfig, Outcome};
use memia::metrics::RocSummary;
use ndarray::Array1;

const SEED: u64 = 2026;
const TARGETS: usize = 8;
const SHADOWS: usize = 256;
const DIGITS: usize = 5000;
const LETTERS: usize = 100;
/// The paper's memorization threshold for candidates.
const THRESHOLD: f64 = 0.8;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Models 0..8 are the targets, 8..264 the shadow models: planned and trained through the
    // library behind `memia run` (memia::audit).
    let models = TARGETS + SHADOWS;
    let config =
        common::mnist_letters_config(DIGITS, LETTERS, models, common::mlp_trainer(30, 0), SEED)?;
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
    let memorization = |fit_models: &[usize]| {
        MemorizationConfig::default()
            .allow_missing()
            .estimate_from_logits(
                &keep.select_models(fit_models)?,
                &logits.select_models(fit_models)?,
                &labels,
                Outcome::Correct,
            )
    };
    let candidates = |mem: &memia::memorization::Memorization| -> Vec<usize> {
        (0..n).filter(|&i| mem.score[i] >= THRESHOLD).collect()
    };

    // The blind audit: 256 shadow models, per-sample variances, every sample.
    let t = Instant::now();
    let blind = scores_of(&LiraConfig::online(), &shadows)?;
    let blind_attack_seconds = t.elapsed().as_secs_f64();
    let oracle = memorization(&shadows)?;
    let oracle_candidates = candidates(&oracle);
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
    let cell = |s: &Option<RocSummary>| {
        s.as_ref()
            .map_or("no members and non-members".to_string(), |s| {
                format!("{:.4}  {}", s.auroc, common::tpr(s))
            })
    };
    let variants = [
        ("global", LiraConfig::online().with_global_variance(true)),
        ("per-sample", LiraConfig::online()),
    ];
    // Rows per shadow-model count: (m, own candidates, [focused variants on own, blind on own],
    // [focused variants on the oracle's]).
    let mut rows = Vec::new();
    let mut m = 2;
    while m <= SHADOWS {
        let used = &shadows[..m];
        let t = Instant::now();
        let mem = memorization(used)?;
        let own = candidates(&mem);
        let mut on_own = Vec::new();
        let mut on_oracle = Vec::new();
        for (_, attack) in &variants {
            let focused = scores_of(attack, used)?;
            on_own.push(pooled(&focused, &own));
            on_oracle.push(pooled(&focused, &oracle_candidates));
        }
        let seconds = t.elapsed().as_secs_f64();
        rows.push((
            m,
            own.len(),
            on_own,
            pooled(&blind, &own),
            on_oracle,
            seconds,
        ));
        m *= 2;
    }
    let mut matched: Vec<Vec<Option<usize>>> = vec![vec![None; variants.len()]; 2];
    for (table, title) in [
        (
            0,
            "on the focused audit's own candidates (memorization from its m models)",
        ),
        (
            1,
            "on the oracle's candidates (memorization from all 256 shadow models)",
        ),
    ] {
        println!(
            "\n{title}; AUROC  TPR@0.1%FPR [95% CI], {TARGETS} targets pooled:\n{:>6} | {:>10} | {:>32} | {:>32} | {:>32}",
            "shadow",
            "candidates",
            "focused, global variance",
            "focused, per-sample variance",
            "blind, 256 models, same samples"
        );
        for (m, own, on_own, blind_own, on_oracle, seconds) in &rows {
            let (focused, blind_same, count) = if table == 0 {
                (on_own, blind_own.clone(), *own)
            } else {
                (
                    on_oracle,
                    Some(blind_oracle.clone()),
                    oracle_candidates.len(),
                )
            };
            println!(
                "{m:>6} | {count:>10} | {:>32} | {:>32} | {:>32}   ({seconds:.2} s)",
                cell(&focused[0]),
                cell(&focused[1]),
                cell(&blind_same),
            );
            for (v, f) in focused.iter().enumerate() {
                if matched[table][v].is_none()
                    && let (Some(f), Some(b)) = (f, &blind_same)
                    && common::matches(f, b)
                {
                    matched[table][v] = Some(*m);
                }
            }
        }
    }
    let rate = per_model.map_or("(models reused: time not measured)".to_string(), |s| {
        format!("at {:.2} s per model", s)
    });
    println!(
        "\n'matches': AUROC at least the blind audit's minus 0.005 and TPR@0.1%FPR at least the lower end of the blind audit's 95% interval, on the same samples."
    );
    for (table, what, extra) in [
        (
            0,
            "its own candidates (memorization from the same models)",
            0,
        ),
        (1, "the oracle's candidates (+256 oracle models)", SHADOWS),
    ] {
        for (v, (variance, _)) in variants.iter().enumerate() {
            match matched[table][v] {
                Some(m) => {
                    let cost = m + extra;
                    println!(
                        "on {what}, {variance} variance: matches the blind {SHADOWS}-model audit with {m} shadow models: {cost} models against {SHADOWS} ({:.1}x fewer); training {} against {} {rate}",
                        SHADOWS as f64 / cost as f64,
                        per_model.map_or("-".to_string(), |s| format!("{:.0} s", s * cost as f64)),
                        per_model
                            .map_or("-".to_string(), |s| format!("{:.0} s", s * SHADOWS as f64)),
                    );
                }
                None => println!(
                    "on {what}, {variance} variance: does not match the blind {SHADOWS}-model audit with up to {SHADOWS} shadow models"
                ),
            }
        }
    }
    Ok(())
}

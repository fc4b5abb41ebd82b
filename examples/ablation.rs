//! What it takes to reach the paper's "TPR about 100% at 0.1% FPR" on highly memorized samples
//! with few shadow models: an ablation of the attack, the queries and the training length, per
//! target and pooled over targets.
//!
//! The pool: 5,000 MNIST digits and 4,000 notMNIST letters with random digit labels, so that a
//! single target's candidates can hold a thousand non-members and a TPR at 0.1% FPR can be
//! measured per target (with 100 letters, as in `mnist_ood`, it can only be pooled). Each
//! setting trains 4 targets and 64 shadow MLPs (784-128-10) on balanced halves:
//!
//! * `base`: 30 epochs, the plain input as the only query;
//! * `long`: 90 epochs;
//! * `shifts`: training with random shifts of up to 2 pixels, queried at the input and its four
//!   1-pixel shifts (LiRA's augmented queries);
//! * two other canary constructions with `base`'s training (issue 27): `letters`, each letter
//!   keeping its own notMNIST class (a consistent label per letter, which the models can learn
//!   from the other letters of its class), and `c100`, the letters labelled at random among 90
//!   classes added after the digits' 10 (a 100-class pool, where a model that did not train on
//!   a letter names its class by luck about once in 90 times instead of once in 9);
//!
//! and attacks each target with online LiRA (global and per-sample variance, per-sample
//! variances under a prior fitted across samples, and the prior with an OUT side that allows for
//! lucky guesses, `OutSide::RightByChance`) and offline LiRA (global variance, and the prior)
//! with 4, 16 and 64 shadow models, on the candidates the same shadow models
//! find (memorization >= 0.8 and >= 0.5). Each cell: TPR at 0.1% FPR pooled over the 4 targets
//! with its 95% interval, and the median (lowest - highest) of the 4 targets' own TPRs ("n/m"
//! where a target's non-members allow no false positive). Unjudgeable samples count as not
//! detected. After the table, why the goal is or is not reached: the TPR on the letters alone,
//! and how often the target is right on a candidate it did not train on (a lucky guess among 10
//! classes looks like a member); then the best pooled TPR with at most 16 shadow models for each
//! canary construction separately.
//!
//! Run: `cargo run --release --example ablation [DATA_DIR]` (default `$MEMIA_DATA_DIR`); about
//! 3 minutes on 2 cores (the models are kept in the temporary directory and reused). Results are
//! in docs/REPRODUCTION.md.

#[path = "common/mod.rs"]
mod common;

use memia::attacks::{LiraConfig, OutSide, Variance};
use memia::audit::config::CanaryLabels;
use memia::core::Signal;
use memia::memorization::{MemorizationConfig, Outcome};
use memia::metrics::{RocSummary, median};
use memia::models::Query;

const SEED: u64 = 7;
const TARGETS: usize = 4;
const SHADOWS: usize = 64;
const DIGITS: usize = 5000;
const LETTERS: usize = 4000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n = DIGITS + LETTERS;
    println!(
        "pool {n} samples ({DIGITS} MNIST + {LETTERS} notMNIST letters, random labels); {TARGETS} targets + {SHADOWS} shadow MLPs 784-128-10 per setting"
    );
    let shifts = vec![
        Query::Plain,
        Query::Shift { dx: 1, dy: 0 },
        Query::Shift { dx: -1, dy: 0 },
        Query::Shift { dx: 0, dy: 1 },
        Query::Shift { dx: 0, dy: -1 },
    ];
    // (name, trainer, the canaries' labels): random digit labels in the first three, then the
    // two other canary constructions with `base`'s training.
    let settings = [
        ("base", common::mlp_trainer(30, 0), CanaryLabels::Random),
        ("long", common::mlp_trainer(90, 0), CanaryLabels::Random),
        (
            "shifts",
            common::mlp_trainer(30, 2).with_queries(shifts),
            CanaryLabels::Random,
        ),
        ("letters", common::mlp_trainer(30, 0), CanaryLabels::Keep),
        (
            "c100",
            common::mlp_trainer(30, 0),
            CanaryLabels::RandomExtra(90),
        ),
    ];
    let attacks = [
        (
            "online, global var.",
            LiraConfig::online().with_global_variance(true),
        ),
        ("online, per-sample var.", LiraConfig::online()),
        (
            "online, variance prior",
            LiraConfig::online().with_variance(Variance::Prior),
        ),
        (
            "online, prior, lucky",
            LiraConfig::online()
                .with_variance(Variance::Prior)
                .with_out_side(OutSide::RightByChance),
        ),
        (
            "offline, global var.",
            LiraConfig::offline().with_global_variance(true),
        ),
        (
            "offline, variance prior",
            LiraConfig::offline().with_variance(Variance::Prior),
        ),
    ];
    let models = TARGETS + SHADOWS;
    let targets: Vec<usize> = (0..TARGETS).collect();
    println!(
        "\n{:<7} {:<24} {:>6} {:>9} {:>10} | {:>27} | {:>22}",
        "setting",
        "attack",
        "shadow",
        "threshold",
        "candidates",
        "TPR@0.1%FPR pooled [95% CI]",
        "per target: median (range)"
    );
    // The best pooled TPR per canary construction (a construction may not stand in for a
    // better attack: each is reported on its own).
    let mut best: Vec<(CanaryLabels, f64, String)> = Vec::new();
    let mut why: Vec<String> = Vec::new();
    for (name, trainer, canary_labels) in settings {
        let mut config = common::mnist_letters_config(DIGITS, LETTERS, models, trainer, SEED)?;
        if let Some(canaries) = config.data.canaries.as_mut() {
            canaries.labels = canary_labels;
        }
        let common::Trained {
            run,
            report,
            seconds,
            ..
        } = common::plan_and_train(&config, "memia-ablation")?;
        eprintln!(
            "{name}: {} models trained in {seconds:.1} s, {} reused",
            report.trained.len(),
            report.skipped.len()
        );
        let logits = run.logits()?;
        let keep = run.dir.keep();
        let labels = &run.labels;
        let phi = logits.signals(labels, Signal::Phi)?;
        for m in [4, 16, 64] {
            let used: Vec<usize> = (TARGETS..TARGETS + m).collect();
            let mem = MemorizationConfig::default()
                .allow_missing()
                .estimate_from_logits(
                    &keep.select_models(&used)?,
                    &logits.select_models(&used)?,
                    labels,
                    Outcome::Correct,
                )?;
            for (attack_name, attack) in &attacks {
                let audit = common::Targets {
                    keep,
                    phi: &phi,
                    targets: targets.clone(),
                };
                let scores = audit.scores(attack, &used)?;
                let all: Vec<usize> = (0..TARGETS).collect();
                // The pooled TPR at 0.1% FPR as text ("n/m" where not measurable).
                let tpr_text = |s: Option<RocSummary>| {
                    s.as_ref()
                        .and_then(|s| s.at(1e-3))
                        .map_or("no curve".to_string(), |p| {
                            if p.measurable {
                                format!("{:.3} [{:.3}, {:.3}]", p.tpr, p.tpr_lower, p.tpr_upper)
                            } else {
                                "n/m".into()
                            }
                        })
                };
                if attack_name.starts_with("online, global") && m >= 16 {
                    let chosen: Vec<usize> = (0..n).filter(|&i| mem.score[i] >= 0.8).collect();
                    let letters: Vec<usize> =
                        chosen.iter().copied().filter(|&i| i >= DIGITS).collect();
                    let letters_tpr = tpr_text(audit.summary(&scores, &all, &letters));
                    let (mut outside, mut lucky) = (0usize, 0usize);
                    for &t in &targets {
                        for &i in &chosen {
                            if !keep.get(t, i) {
                                outside += 1;
                                lucky += usize::from(phi[[t, i, 0]] > 0.0);
                            }
                        }
                    }
                    why.push(format!(
                        "{name:<7} {m:>3} shadow models, memorization >= 0.8: {} candidates ({} letters); TPR@0.1%FPR on the letters alone {letters_tpr}; the target is right on {:.1}% of the candidates it did not train on",
                        chosen.len(),
                        letters.len(),
                        100.0 * lucky as f64 / outside.max(1) as f64
                    ));
                }
                for threshold in [0.8, 0.5] {
                    let chosen: Vec<usize> =
                        (0..n).filter(|&i| mem.score[i] >= threshold).collect();
                    let summary = |which: &[usize]| audit.summary(&scores, which, &chosen);
                    let pooled = summary(&all);
                    let mut each: Vec<f64> = all
                        .iter()
                        .filter_map(|&w| summary(&[w]))
                        .filter_map(|s| s.at(1e-3).filter(|p| p.measurable).map(|p| p.tpr))
                        .collect();
                    let per_target = if each.len() == TARGETS {
                        let (lo, hi) = (
                            each.iter().copied().fold(f64::INFINITY, f64::min),
                            each.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                        );
                        format!(
                            "{:.3} ({lo:.3} - {hi:.3})",
                            median(&mut each).unwrap_or(f64::NAN)
                        )
                    } else {
                        format!("n/m for {} of {TARGETS}", TARGETS - each.len())
                    };
                    let pooled_text = tpr_text(pooled.clone());
                    println!(
                        "{name:<7} {attack_name:<24} {m:>6} {threshold:>9} {:>10} | {pooled_text:>27} | {per_target:>22}",
                        chosen.len()
                    );
                    if let Some(p) = pooled.as_ref().and_then(|s| s.at(1e-3))
                        && p.measurable
                        && threshold == 0.8
                        && m <= 16
                    {
                        let found = format!("{name}, {attack_name}, {m} shadow models");
                        match best.iter_mut().find(|b| b.0 == canary_labels) {
                            Some(b) if p.tpr > b.1 => (b.1, b.2) = (p.tpr, found),
                            Some(_) => {}
                            None => best.push((canary_labels, p.tpr, found)),
                        }
                    }
                }
            }
        }
    }
    println!("\nwhy (online LiRA, global variance):");
    for line in &why {
        println!("  {line}");
    }
    // The goal, per canary construction.
    for (labels, tpr, what) in best {
        println!(
            "best pooled TPR@0.1%FPR on memorization >= 0.8 with at most 16 shadow models, canaries labelled {labels:?}: {tpr:.3} ({what}); goal 0.5 (paper: 0.95): {}",
            if tpr >= 0.5 { "reached" } else { "not reached" }
        );
    }
    Ok(())
}

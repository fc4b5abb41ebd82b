//! memia quickstart: a memorization-aware membership audit, end to end.
//!
//! Part 1 runs the whole pipeline on real data compiled into memia: the UCI handwritten digits
//! plus 50 mislabeled canaries form the pool; 16 shadow MLPs are planned and trained with the
//! batched Burn ensemble (into a run directory, resumable); Feldman-Zhang memorization comes
//! from the same models; the audit attacks one model with the others (online LiRA), compares
//! all samples, the canaries and the memorization-selected candidates as the number of shadow
//! models grows, and writes a report (summary.json, samples.csv, SVG plots, index.html).
//!
//! Part 2 runs the audit's statistics on generated shadow outputs whose answer is known in
//! closed form: memorization, the budget planner, leave-one-out LiRA, and a single target's
//! metrics (bootstrap interval, epsilon lower bound, per-group AUROC beside the optimum).
//!
//! The generated pool: most samples are typical (a model trained on them is barely more
//! confident: `phi` shifts by 0.5, and OUT models get them right 90% of the time); 5% are
//! atypical and memorized (`phi` shifts by 4, and only the models trained on them get them
//! right). That is the paper's picture of the long tail.
//!
//! Run: `cargo run --release --example quickstart`

use std::path::Path;
use std::time::Instant;

use memia::attacks::loo::{EvalGroup, LooConfig, leave_one_out};
use memia::attacks::theory::BudgetPlan;
use memia::attacks::{CandidateRule, FittedTest, LiraConfig, MembershipTest};
use memia::audit::trainer::{Placement, trainer};
use memia::audit::{AuditTarget, Planned, Run, RunConfig};
use memia::core::KeepMatrix;
use memia::core::rng::stream_rng;
use memia::data::Dataset;
use memia::memorization::MemorizationConfig;
use memia::memorization::Outcome;
use memia::metrics::{Bootstrap, Direction, RocCurve, Statistic, TprAtFpr};
use memia::report::headline;
use ndarray::{Array2, Array3, Axis, s};
use rand::RngExt;
use rand_distr::StandardNormal;
use statrs::distribution::{ContinuousCDF, Normal};

const MODELS: usize = 32;
const SAMPLES: usize = 20_000;
const MEMORIZED_FRACTION: f64 = 0.05;
const SEED: u64 = 2026;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    digits_audit()?;
    println!("\n--- part 2: the statistics on generated outputs with a known answer ---\n");
    generated_audit()?;
    println!("done in {:.2} s", start.elapsed().as_secs_f64());
    Ok(())
}

/// Part 1: plan, train, memorization and the audit on the embedded digits, through the
/// library behind the `memia` command (`memia::audit`): the same run and report as
/// `memia run` on this configuration.
fn digits_audit() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    // examples/configs/digits.toml: 1700 digits + 50 mislabeled canaries, 16 MLPs, LiRA on
    // model 0 with candidates memorization >= 0.5 (the numbers in README.md and
    // docs/REPRODUCTION.md); `memia run` on the same file gives the same summary.
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/configs/digits.toml");
    let config = RunConfig::load(&file)?;
    let root = std::env::temp_dir().join("memia-quickstart");
    let Planned { run, pool, .. } = Run::plan_in(&config, &file, &root)?;
    let dir = run.path();
    let canaries = pool.canaries();
    let trainer = trainer(&config, &dir, &Placement::default())?;
    println!(
        "--- part 1: {} digits + {} mislabeled canaries, {} shadow MLPs (64-128-10) {} ---",
        pool.dataset.len() - canaries.len(),
        canaries.len(),
        config.plan.models,
        trainer.describe()
    );
    let report = run.train(trainer.as_dyn(), &pool, 0..config.plan.models, false, |p| {
        eprint!("\r  {p}   ")
    })?;
    eprintln!();
    println!(
        "run directory {} ({} models trained now, {} found finished)",
        dir.display(),
        report.trained.len(),
        report.skipped.len()
    );
    let mem = MemorizationConfig::default().estimate_from_logits(
        run.dir.keep(),
        &run.logits()?,
        &run.labels,
        Outcome::Correct,
    )?;
    let mean = |idx: &[usize]| idx.iter().map(|&i| mem.score[i]).sum::<f64>() / idx.len() as f64;
    let typical: Vec<usize> = (0..pool.dataset.len())
        .filter(|i| !canaries.contains(i))
        .collect();
    let candidates = CandidateRule::MemorizationAtLeast(0.5).select(&mem, None)?;
    println!(
        "memorization: canaries {:.3} on average, other digits {:.3}; {} candidates with mem >= 0.5 ({} of them canaries)",
        mean(&canaries),
        mean(&typical),
        candidates.len(),
        candidates.iter().filter(|i| canaries.contains(i)).count()
    );
    // The audit: model 0 as the target, the other 15 as its shadow models, and every model in
    // turn for the curve against the number of shadow models; then the report.
    let audit = run.audit(
        &config.audit,
        &AuditTarget::Model(0),
        Some(&pool),
        |_, _, _| {},
    )?;
    let s = &audit.summary;
    println!(
        "{} on {} with {} shadow models:",
        s.attack, s.target_name, s.shadow_models
    );
    println!("  {}", headline("all samples", s.all.as_ref()));
    println!("  {}", headline("candidates", s.candidates.as_ref()));
    println!("  {}", headline("canaries", s.groups[0].1.as_ref()));
    println!(
        "leave-one-model-out ({} targets), by number of shadow models:\n{}",
        audit.config.curve_targets, s.shadow_curve
    );
    let files = audit.write(dir.join("report"))?;
    println!("report: {}", files.index.display());
    println!("part 1 took {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}

/// Part 2: the audit's statistics on generated shadow outputs with a known answer.
fn generated_audit() -> Result<(), Box<dyn std::error::Error>> {
    let keep = KeepMatrix::balanced(MODELS, SAMPLES, SEED)?;
    let mut rng = stream_rng(SEED, 1);
    let atypical: Vec<bool> = (0..SAMPLES)
        .map(|_| rng.random::<f64>() < MEMORIZED_FRACTION)
        .collect();
    let offsets: Vec<f64> = (0..SAMPLES)
        .map(|_| 2.0 * rng.sample::<f64, _>(StandardNormal))
        .collect();
    // What each model would output: phi (K x N x 1) and 0/1 correctness (K x N).
    let phi = Array3::from_shape_fn((MODELS, SAMPLES, 1), |(k, i, _)| {
        let shift = if atypical[i] { 4.0 } else { 0.5 };
        offsets[i] + rng.sample::<f64, _>(StandardNormal) + if keep.get(k, i) { shift } else { 0.0 }
    });
    let correct = Array2::from_shape_fn((MODELS, SAMPLES), |(k, i)| {
        let p = match (keep.get(k, i), atypical[i]) {
            (true, _) => 1.0,
            (false, true) => 0.0,
            (false, false) => 0.9,
        };
        f32::from(u8::from(rng.random::<f64>() < p))
    });
    println!(
        "memia quickstart: {MODELS} shadow models, {SAMPLES} samples, {:.0}% atypical\n",
        MEMORIZED_FRACTION * 100.0
    );

    // 1. Memorization from the same models, and the candidates it selects.
    let mem = MemorizationConfig::default().estimate(&keep, correct.view())?;
    let candidates = CandidateRule::MemorizationAtLeast(0.5).select(&mem, None)?;
    let found = candidates.iter().filter(|&&i| atypical[i]).count();
    println!(
        "memorization: {} candidates with mem >= 0.5 ({found} of the {} atypical samples; median standard error {:.3})",
        candidates.len(),
        atypical.iter().filter(|&&a| a).count(),
        median(mem.std_error.to_vec())
    );
    let plan = BudgetPlan::from_memorization(&mem, 0.01)?;
    let budget = |set: &[usize]| {
        median(
            set.iter()
                .filter_map(|&i| plan.models_needed[i])
                .map(|m| m as f64)
                .collect(),
        )
    };
    let typical: Vec<usize> = (0..SAMPLES).filter(|&i| !atypical[i]).collect();
    println!(
        "budget planner (error 1%): candidates need ~{:.0} shadow models, typical samples ~{:.0}\n",
        budget(&candidates),
        budget(&typical)
    );

    // 2. Leave-one-model-out LiRA: all samples against the candidates.
    let config = LooConfig {
        shadow_counts: Some(vec![2, 4, 8, 16, MODELS - 1]),
        targets: Some((0..8).collect()),
        groups: vec![EvalGroup {
            name: "candidates".into(),
            samples: candidates.clone(),
        }],
        seed: SEED,
        ..Default::default()
    };
    let lira = LiraConfig::online().with_global_variance(true);
    let report = leave_one_out(&lira, &keep, phi.view(), &config, |_, _| {})?;
    println!("leave-one-model-out, online LiRA with global variance (8 targets):\n{report}");

    // 3. One target model (model 0), attacked with the other 31, and its metrics.
    let others: Vec<usize> = (1..MODELS).collect();
    let fitted = lira.fit(&keep.select_models(&others)?, phi.slice(s![1.., .., ..]))?;
    let scores = fitted.score(phi.index_axis(Axis(0), 0))?.to_vec();
    let members = keep.row(0).to_vec();
    let roc = RocCurve::new(&scores, &members, Direction::HigherIsMember)?;
    let boot = Bootstrap {
        resamples: 200,
        confidence: 0.95,
        seed: SEED,
    };
    let ci = boot.interval(
        &scores,
        &members,
        Direction::HigherIsMember,
        Statistic::Auroc,
    )?;
    let eps = roc.epsilon_lower_bound(0.95, 1e-5)?;
    let summary = roc.summary(&[1e-3], TprAtFpr::LiraStrict)?;
    let tpr = summary.tpr_at_fpr[0];
    let tpr = if tpr.measurable {
        format!(
            "{:.4} [{:.3}, {:.3}]",
            tpr.tpr, tpr.tpr_lower, tpr.tpr_upper
        )
    } else {
        format!("not measurable with {} non-members", summary.negatives)
    };
    println!(
        "target model 0: AUROC {:.4} (95% bootstrap {:.4} .. {:.4}), TPR@0.1%FPR {tpr}, balanced accuracy {:.4}",
        roc.auc(),
        ci.lower,
        ci.upper,
        roc.balanced_accuracy(),
    );
    println!(
        "                epsilon >= {:.2} (95% confidence, delta 1e-5; best threshold, so optimistic)",
        eps.epsilon
    );
    // Per group, the best possible test (known Gaussians, shift d) has AUROC Phi(d / sqrt 2).
    let normal = Normal::standard();
    for (name, is_atypical, d) in [("atypical", true, 4.0), ("typical", false, 0.5)] {
        let idx: Vec<usize> = (0..SAMPLES)
            .filter(|&i| atypical[i] == is_atypical)
            .collect();
        let group_scores: Vec<f64> = idx.iter().map(|&i| scores[i]).collect();
        let group_members: Vec<bool> = idx.iter().map(|&i| members[i]).collect();
        let auc = RocCurve::new(&group_scores, &group_members, Direction::HigherIsMember)?.auc();
        println!(
            "                {name:<8} samples: AUROC {auc:.4}, optimum with known distributions {:.4}",
            normal.cdf(d / 2f64.sqrt())
        );
    }
    println!(
        "\nThe memorized candidates are where the audit finds its evidence, with few shadow models."
    );
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

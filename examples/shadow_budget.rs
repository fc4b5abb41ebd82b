//! How many shadow models does an audit need? TPR and AUROC against the number of shadow models,
//! for samples grouped by memorization and for random samples, with the budget planner's
//! prediction beside the measurement.
//!
//! The pool is the embedded UCI digits with 50 mislabeled canaries; 64 shadow MLPs train on
//! balanced halves. Every one of 16 target models is attacked (online LiRA, global variance) with
//! K' = 2 ... 63 of the other models as shadows, and the pooled ROC of each group is measured.
//! The planner predicts, from memorization alone, how many shadow models separate IN from OUT
//! with error `DELTA` (a Bhattacharyya bound on the Bernoulli correctness distributions, so an
//! upper bound for an attack that sees confidences rather than 0/1 correctness); the measured
//! column is the first K' whose pooled balanced accuracy reaches 1 - `DELTA`.
//!
//! Run: `cargo run --release --example shadow_budget` (about a minute on 2 cores; the trained
//! models are kept in a temporary run directory and reused by later runs).

#[path = "common/mod.rs"]
mod common;

use std::path::Path;
use std::time::Instant;

use memia::audit::RunConfig;
use memia::data::Dataset;

use memia::attacks::loo::{EvalGroup, LooConfig, leave_one_out};
use memia::attacks::theory::BudgetPlan;
use memia::attacks::{AttackSpec, CandidateRule};
use memia::core::rng::stream_rng;
use memia::memorization::{MemorizationConfig, Outcome};
use memia::report::plots;
use rand::seq::SliceRandom;

const SEED: u64 = 7;
const MODELS: usize = 64;
const DELTA: f64 = 0.05;
const COUNTS: [usize; 6] = [2, 4, 8, 16, 32, 63];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    // examples/configs/digits.toml (the quickstart's digits, canaries, MLP and training) with
    // 64 models and this example's seed, through the library behind `memia run`.
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/configs/digits.toml");
    let mut config = RunConfig::load(&file)?;
    config.plan.models = MODELS;
    config.plan.seed = SEED;
    let common::Trained {
        run,
        pool,
        report,
        seconds,
        ..
    } = common::plan_and_train(&config, "memia-shadow-budget")?;
    let dir = run.path();
    println!(
        "{MODELS} shadow MLPs on {} samples: {} trained in {seconds:.1} s, {} reused ({})",
        pool.dataset.len(),
        report.trained.len(),
        report.skipped.len(),
        dir.display()
    );
    let logits = run.logits()?;
    let labels = &run.labels;
    let keep = run.dir.keep();
    // Memorization from all models groups the samples (an oracle view: with K = 64 the target's
    // own membership moves a sample's estimate by at most ~1/32).
    let mem = MemorizationConfig::default()
        .allow_missing()
        .estimate_from_logits(keep, &logits, labels, Outcome::Correct)?;
    let budget = BudgetPlan::from_memorization(&mem, DELTA)?;
    let bin = |lo: f64, hi: f64| -> Vec<usize> {
        (0..mem.score.len())
            .filter(|&i| mem.score[i] >= lo && (mem.score[i] < hi || hi >= 1.0))
            .collect()
    };
    let high = CandidateRule::MemorizationAtLeast(0.5).select(&mem, None)?;
    let mut random: Vec<usize> = (0..mem.score.len()).collect();
    random.shuffle(&mut stream_rng(SEED, 5));
    random.truncate(high.len());
    random.sort_unstable();
    let groups = vec![
        EvalGroup {
            name: "mem [0.75, 1]".into(),
            samples: bin(0.75, 1.0),
        },
        EvalGroup {
            name: "mem [0.5, 0.75)".into(),
            samples: bin(0.5, 0.75),
        },
        EvalGroup {
            name: "mem [0.25, 0.5)".into(),
            samples: bin(0.25, 0.5),
        },
        EvalGroup {
            name: "random samples".into(),
            samples: random,
        },
    ];
    let attack = AttackSpec::default();
    let signal = logits.signals(labels, attack.signal())?;
    let t = Instant::now();
    let loo = leave_one_out(
        &attack,
        keep,
        signal.view(),
        &LooConfig {
            shadow_counts: Some(COUNTS.to_vec()),
            targets: Some((0..16).collect()),
            fprs: vec![1e-3, 1e-2],
            groups: groups.clone(),
            seed: SEED,
            ..Default::default()
        },
        |_, _| {},
    )?;
    println!(
        "{} against 16 targets, K' = {COUNTS:?} shadow models ({:.1} s)\n",
        attack.describe(),
        t.elapsed().as_secs_f64()
    );

    println!(
        "{:<18} {:>7} {:>9} {:>9}   TPR at 0.1% FPR (AUROC) for K' = {COUNTS:?}",
        "group", "samples", "planner", "measured"
    );
    for g in &groups {
        let mut needed: Vec<u64> = g
            .samples
            .iter()
            .filter_map(|&i| budget.models_needed[i])
            .collect();
        needed.sort_unstable();
        let planner = needed
            .get(needed.len() / 2)
            .map_or("-".to_string(), |m| m.to_string());
        let rows = loo.group(&g.name);
        let measured = rows
            .iter()
            .find(|r| r.balanced_accuracy >= 1.0 - DELTA)
            .map_or(format!("> {}", COUNTS[COUNTS.len() - 1]), |r| {
                r.shadow_models.to_string()
            });
        let cells: Vec<String> = rows
            .iter()
            .map(|r| format!("{} ({:.3})", r.tpr_text(0, 2), r.auroc))
            .collect();
        println!(
            "{:<18} {:>7} {:>9} {:>9}   {}",
            g.name,
            g.samples.len(),
            planner,
            measured,
            cells.join("  ")
        );
    }
    println!(
        "\nplanner: median shadow models to tell IN from OUT with error {DELTA} (from memorization);\nmeasured: first K' whose pooled balanced accuracy reaches {}",
        1.0 - DELTA
    );
    let svg = plots::shadow_curve(&loo, None)?;
    let path = dir.join("shadow_models.svg");
    std::fs::write(&path, svg)?;
    println!("plot: {}", path.display());
    println!("done in {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}

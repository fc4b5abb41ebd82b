//! The paper's main experiment on real data: MNIST digits with notMNIST letters as
//! out-of-distribution canaries.
//!
//! A pool of 5,000 MNIST test digits and 100 notMNIST letters, each letter given a random digit
//! label, so a model gets a letter right only by memorizing it. 32 shadow MLPs (784-128-10) train
//! on balanced halves. From the same models:
//!
//! 1. memorization (Feldman-Zhang) against the privacy score and two outlierness baselines
//!    (input-space nearest-neighbour distance, OUT models' 1 - max softmax);
//! 2. the memorization-aware audit (online LiRA on the samples with memorization >= 0.5) against
//!    a random-sample audit of the same size and against all samples, as the number of shadow
//!    models grows (every model in turn the target, leave one model out);
//! 3. the report (summary.json, samples.csv, SVG plots, index.html) for model 0 as the target.
//!
//! Run: `cargo run --release --example mnist_ood [DATA_DIR]` (default `$MEMIA_DATA_DIR`; the
//! directory holds `mnist-t10k-{images-idx3,labels-idx1}-ubyte.gz` and the notMNIST files of
//! the same names). Results are in docs/REPRODUCTION.md.

#[path = "common/mod.rs"]
mod common;

use std::path::Path;
use std::time::Instant;

use memia::audit::trainer::{Placement, trainer};
use memia::audit::{AuditTarget, Planned, Run};

use memia::attacks::loo::EvalGroup;
use memia::attacks::theory::privacy_score;
use memia::core::Signal;
use memia::core::rng::stream_rng;
use memia::data::Dataset;
use memia::memorization::outlier::{knn_distance, out_model_msp_outlierness};
use memia::memorization::{MemorizationConfig, Outcome};
use memia::metrics::spearman;
use memia::report::{AuditConfig, headline};
use ndarray::Array2;
use rand::seq::SliceRandom;

const SEED: u64 = 2026;
const MODELS: usize = 32;
const DIGITS: usize = 5000;
const LETTERS: usize = 100;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    // The pool and the models through the library behind `memia run` (memia::audit).
    let config =
        common::mnist_letters_config(DIGITS, LETTERS, MODELS, common::mlp_trainer(30, 0), SEED)?;
    let root = std::env::temp_dir().join("memia-mnist-ood");
    let Planned { run, pool, .. } = Run::plan_in(&config, Path::new("mnist_ood.rs"), &root)?;
    let dir = run.path();
    let canaries = pool.canaries();
    let n = pool.dataset.len();
    println!(
        "pool: {DIGITS} MNIST digits + {LETTERS} notMNIST letters with random digit labels ({n} samples)"
    );

    // 1. Train the shadow models (resumable: a second run reuses them).
    let trainer = trainer(&config, &dir, &Placement::default())?;
    let t = Instant::now();
    let trained = run.train(trainer.as_dyn(), &pool, 0..MODELS, false, |p| {
        eprint!("\r  {p}   ")
    })?;
    eprintln!();
    println!(
        "{MODELS} MLPs 784-128-10 (30 epochs, ~2,550 samples each) {}: {} trained in {:.1} s, {} reused from {}",
        trainer.describe(),
        trained.trained.len(),
        t.elapsed().as_secs_f64(),
        trained.skipped.len(),
        dir.display()
    );
    let logits = run.logits()?;
    let labels = &run.labels;
    let keep = run.dir.keep();

    // 2. Memorization against privacy score and outlierness, all from the same models.
    let t = Instant::now();
    let mem = MemorizationConfig::default()
        .allow_missing()
        .estimate_from_logits(keep, &logits, labels, Outcome::Correct)?;
    let phi = logits.signals(labels, Signal::Phi)?;
    let privacy = privacy_score(keep, phi.view())?;
    let features =
        Array2::from_shape_vec((n, pool.dataset.feature_len()), pool.dataset.to_row_major())?;
    let knn = knn_distance(features.view(), 1)?;
    let msp = out_model_msp_outlierness(keep, &logits, 0)?;
    let mean_of = |idx: &[usize]| {
        idx.iter()
            .map(|&i| mem.score[i])
            .filter(|m| m.is_finite())
            .sum::<f64>()
            / idx.len() as f64
    };
    let digits: Vec<usize> = (0..n).filter(|i| !canaries.contains(i)).collect();
    println!(
        "memorization: letters {:.3} on average, digits {:.3}; {} samples >= 0.5 ({} letters)",
        mean_of(&canaries),
        mean_of(&digits),
        (0..n).filter(|&i| mem.score[i] >= 0.5).count(),
        canaries.iter().filter(|&&i| mem.score[i] >= 0.5).count()
    );
    let finite: Vec<usize> = (0..n)
        .filter(|&i| mem.score[i].is_finite() && privacy[i].is_finite())
        .collect();
    let pick = |v: &ndarray::Array1<f64>| finite.iter().map(|&i| v[i]).collect::<Vec<f64>>();
    let m = pick(&mem.score);
    println!(
        "Spearman correlation with memorization ({} samples):",
        finite.len()
    );
    for (name, values) in [
        ("privacy score", &privacy),
        ("1-NN distance in pixel space", &knn),
        ("OUT models' 1 - max softmax", &msp),
    ] {
        let c = spearman(&m, &pick(values))?;
        println!("  {name:<30} rho {:+.3} (p {:.1e})", c.statistic, c.p_value);
    }
    println!("  (statistics in {:.2} s)", t.elapsed().as_secs_f64());

    // 3. The memorization-aware audit against a random-sample audit of the same size.
    let candidates: Vec<usize> = (0..n).filter(|&i| mem.score[i] >= 0.5).collect();
    let mut random: Vec<usize> = (0..n).collect();
    random.shuffle(&mut stream_rng(SEED, 99));
    random.truncate(candidates.len());
    random.sort_unstable();
    let groups = [
        EvalGroup {
            name: "notMNIST letters".into(),
            samples: canaries.clone(),
        },
        EvalGroup {
            name: "random samples".into(),
            samples: random,
        },
    ];
    let t = Instant::now();
    let audit_config = AuditConfig {
        // memorization >= 0.5, not the default 0.8: the candidates of the numbers in
        // README.md and docs/REPRODUCTION.md.
        candidates: memia::attacks::CandidateRule::MemorizationAtLeast(0.5),
        shadow_counts: Some(vec![2, 4, 8, 16, MODELS - 1]),
        curve_targets: 16,
        seed: SEED,
        ..Default::default()
    };
    let audit = run.audit_groups(
        &audit_config,
        &AuditTarget::Model(0),
        Some(&pool),
        &groups,
        |_, _, _| {},
    )?;
    let s = &audit.summary;
    println!(
        "\n{} on model 0 with {} shadow models (audit in {:.1} s):",
        s.attack,
        MODELS - 1,
        t.elapsed().as_secs_f64()
    );
    println!("  {}", headline("all samples", s.all.as_ref()));
    println!(
        "  {}",
        headline("memorization >= 0.5", s.candidates.as_ref())
    );
    for (name, r) in &s.groups {
        println!("  {}", headline(name, r.as_ref()));
    }
    println!(
        "budget planner (error 1%): candidates need ~{} shadow models; samples with positive memorization ~{}",
        s.budget
            .candidates_median
            .map_or("-".into(), |m| m.to_string()),
        s.budget.all_median.map_or("-".into(), |m| m.to_string())
    );
    println!(
        "\nleave-one-model-out over 16 targets, by number of shadow models:\n{}",
        s.shadow_curve
    );
    let files = audit.write(dir.join("report"))?;
    println!("report: {}", files.index.display());
    println!("done in {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}

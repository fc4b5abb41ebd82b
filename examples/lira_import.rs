//! Score an existing LiRA reference run with memia.
//!
//! The LiRA reference code (Carlini et al., `research/mi_lira_2021`) leaves a directory of
//! `experiment-*/keep.npy` and `experiment-*/logits/*.npy` (N x 1 x A x C) files and a
//! `y_train.npy`. This example imports such a directory, then does what the reference's
//! `plot.py` does, with memia: each experiment in turn is the target, the others are its shadow
//! models, and online LiRA, offline LiRA and the global threshold are scored (AUROC, best
//! balanced accuracy, TPR at 0.1% FPR). It adds what the reference lacks: memorization from the
//! same models, and the attack on the high-memorization samples.
//!
//! Run: `cargo run --release --example lira_import -- DIR` (for instance
//! `exp/cifar10` of the reference). Without `DIR`, a small synthetic run in the reference
//! layout is written to a temporary directory first, so the example runs anywhere; its
//! numbers then say nothing about real models.

use std::path::{Path, PathBuf};

use memia::attacks::loo::{EvalGroup, LooConfig, leave_one_out};
use memia::attacks::{AttackSpec, CandidateRule, LiraSignal, OfflineScore};
use memia::core::npy::write_npy;
use memia::core::rng::stream_rng;
use memia::core::{KeepMatrix, LiraImportOptions, LogitsSource, Signal, Signals, import_lira_run};
use memia::memorization::MemorizationConfig;
use ndarray::{Array1, Array4};
use rand::RngExt;
use rand_distr::StandardNormal;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = match std::env::args_os().nth(1) {
        Some(d) => PathBuf::from(d),
        None => {
            let d = std::env::temp_dir().join("memia-lira-import-synthetic");
            write_synthetic_run(&d)?;
            println!(
                "no directory given: wrote a synthetic run in the reference layout to {}",
                d.display()
            );
            d
        }
    };
    let run = import_lira_run(&dir, &LiraImportOptions::default())?;
    let labels = run
        .labels
        .clone()
        .ok_or("the run has no y_train.npy, so the true classes are unknown")?;
    let (k, n) = (run.keep.models(), run.keep.samples());
    let [_, queries, classes] = run.logits.model_shape();
    println!(
        "imported {k} experiments x {n} samples x {queries} queries x {classes} classes from {}",
        dir.display()
    );
    // Every signal below in one pass over the experiments' files, one file at a time: memory
    // holds the signals, not the logits.
    let all: Vec<usize> = (0..k).collect();
    let signals = Signals::compute(
        &run.logits,
        &all,
        &labels,
        &[Signal::Correct, Signal::Phi, Signal::PhiReference],
        |_, _| {},
    )?;
    let mem = MemorizationConfig::default()
        .allow_missing()
        .estimate_from_signals(
            &run.keep,
            signals.get(Signal::Correct).expect("computed").view(),
        )?;
    let candidates = CandidateRule::MemorizationAtLeast(0.5).select(&mem, None)?;
    println!(
        "memorization: {} of {n} samples at least 0.5",
        candidates.len()
    );
    let groups = if candidates.is_empty() {
        Vec::new()
    } else {
        vec![EvalGroup {
            name: "mem >= 0.5".into(),
            samples: candidates,
        }]
    };
    println!(
        "\n{:<34} {:<12} {:>8} {:>9} {:>12}",
        "attack (all targets pooled)", "samples", "AUROC", "bal.acc", "TPR@0.1%FPR"
    );
    for attack in [
        AttackSpec::LiraOnline {
            global_variance: false,
            variance_prior: false,
            right_by_chance: false,
            reference_compatible: false,
            signal: LiraSignal::Phi,
        },
        AttackSpec::default(), // online, global variance
        AttackSpec::LiraOffline {
            global_variance: false,
            variance_prior: false,
            right_by_chance: false,
            score: OfflineScore::Tail,
            reference_compatible: false,
            signal: LiraSignal::Phi,
        },
        AttackSpec::LiraOffline {
            global_variance: false,
            variance_prior: false,
            right_by_chance: false,
            score: OfflineScore::LogDensity,
            reference_compatible: true,
            signal: LiraSignal::PhiReference,
        },
        AttackSpec::Global,
    ] {
        let signal = signals.get(attack.signal()).expect("computed above");
        let report = leave_one_out(
            &attack,
            &run.keep,
            signal.view(),
            &LooConfig {
                shadow_counts: Some(vec![k - 1]),
                groups: groups.clone(),
                fprs: vec![1e-3],
                ..Default::default()
            },
            |_, _| {},
        )?;
        for row in &report.rows {
            println!(
                "{:<34} {:<12} {:>8.4} {:>9.4} {:>12}",
                attack.describe(),
                row.group,
                row.auroc,
                row.balanced_accuracy,
                row.tpr_text(0, 4)
            );
        }
    }
    Ok(())
}

/// A run in the reference layout: 16 experiments, 2,000 samples, 2 queries, 10 classes, with
/// 5% of the samples memorized (right only when trained on).
fn write_synthetic_run(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let (k, n, a, c) = (16, 2000, 2, 10);
    let keep = KeepMatrix::balanced(k, n, 3)?;
    let mut rng = stream_rng(3, 0);
    let memorized: Vec<bool> = (0..n).map(|_| rng.random::<f64>() < 0.05).collect();
    let labels: Vec<i64> = (0..n).map(|i| (i % c) as i64).collect();
    let logits = Array4::from_shape_fn((k, n, a, c), |(m, i, _, class)| {
        let noise: f32 = rng.sample(StandardNormal);
        let margin = match (memorized[i], keep.get(m, i)) {
            (true, true) => 4.0,
            (true, false) => -1.0,
            (false, true) => 3.0,
            (false, false) => 2.5,
        };
        if class as i64 == labels[i] {
            margin + 0.5 * noise
        } else {
            0.5 * noise
        }
    });
    for m in 0..k {
        let exp = dir.join(format!("experiment-{m}_{k}"));
        std::fs::create_dir_all(exp.join("logits"))?;
        write_npy(exp.join("keep.npy"), &keep.row(m).to_owned())?;
        let model = logits
            .index_axis(ndarray::Axis(0), m)
            .to_owned()
            .into_shape_with_order((n, 1, a, c))?;
        write_npy(exp.join("logits").join("0000000100.npy"), &model)?;
    }
    write_npy(dir.join("y_train.npy"), &Array1::from(labels))?;
    Ok(())
}

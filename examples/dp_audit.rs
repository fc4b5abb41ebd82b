//! Auditing DP-SGD (issue 26; results in docs/REPRODUCTION.md, "Auditing DP-SGD").
//!
//! A pool of 5,000 MNIST test digits and 1,000 notMNIST letters with random digit labels (the
//! canaries). 32 MLPs 784-128-10, each on its own Bernoulli(1/2) subset of the pool (so that
//! every (model, canary) inclusion is an independent fair coin), 30 epochs of batch 128, SGD
//! with momentum 0.9, rate 0.05; trained with memia's DP-SGD at claimed epsilon 1, 4 and 8
//! (delta 1e-5, clipping to norm 1, the noise from the RDP accountant) and without DP. For
//! each setting:
//!
//! * the one-run audit of model 0 (100 guesses each way) and of all 32 models pooled
//!   (3,200 each way), the many-run audit (canary and threshold chosen on 16 models, the bound
//!   on the other 16), all at confidence 0.95 and the claim's delta; the run without DP is
//!   audited against claims of 1, 4 and 8 (can the audit tell no DP from them?);
//! * the canaries' and digits' memorization (Feldman-Zhang, from the 32 models);
//! * the accuracy of each model on the digits it did not train on (the cost of DP);
//! * the time.
//!
//! Run: `cargo run --release --example dp_audit [DATA_DIR]` (default `$MEMIA_DATA_DIR`). The
//! runs stay in the system's temporary directory (`memia-dp-audit/`) and are reused (their time
//! is then printed as "-"; delete the directory to measure it again).

#[path = "common/mod.rs"]
mod common;

use std::path::Path;
use std::time::Instant;

use memia::audit::dp::{Claim, DpAuditConfig};
use memia::audit::trainer::{Placement, trainer};
use memia::audit::{Planned, Run};
use memia::core::Signal;
use memia::data::Dataset;
use memia::memorization::{MemorizationConfig, Outcome};
use memia::models::DpConfig;
use memia::shadow::InclusionScheme;

const SEED: u64 = 2026;
const MODELS: usize = 32;
const DIGITS: usize = 5000;
const LETTERS: usize = 1000;
const DELTA: f64 = 1e-5;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::env::temp_dir().join("memia-dp-audit");
    println!(
        "pool: {DIGITS} MNIST digits + {LETTERS} notMNIST letters (random labels) as canaries; \
         {MODELS} MLPs 784-128-10 on Bernoulli(1/2) subsets, 30 epochs, batch 128"
    );
    println!(
        "{:>9} {:>7} {:>8} {:>9} {:>10} {:>9} {:>9} {:>9} {:>8} {:>7}",
        "setting",
        "noise",
        "claimed",
        "one run",
        "pooled",
        "many",
        "mem lett",
        "mem dig",
        "acc OUT",
        "time s"
    );
    for target in [Some(1.0), Some(4.0), Some(8.0), None] {
        let start = Instant::now();
        let mut trainer_settings = common::mlp_trainer(30, 0);
        trainer_settings.training.dp =
            target.map(|eps| DpConfig::with_target_epsilon(1.0, eps, DELTA));
        let mut config =
            common::mnist_letters_config(DIGITS, LETTERS, MODELS, trainer_settings, SEED)?;
        config.plan.scheme = InclusionScheme::Bernoulli { p: 0.5 };
        let name = match target {
            Some(eps) => format!("eps{eps}"),
            None => "no-dp".to_string(),
        };
        let Planned { run, pool, .. } =
            Run::plan(&config, Path::new("dp_audit.rs"), &root.join(&name))?;
        let trainer = trainer(&config, &run.path(), &Placement::default())?;
        let report = run.train(trainer.as_dyn(), &pool, 0..MODELS, false, |p| {
            eprint!("\r  {name}: {p}   ")
        })?;
        eprintln!();
        // The training time, or "-" where the models were trained by an earlier run and reused.
        let train_secs = match report.trained.len() {
            0 => "-".to_string(),
            _ => format!("{:.1}", start.elapsed().as_secs_f64()),
        };

        // Memorization and the accuracy of each model on the digits it did not train on.
        let logits = run.logits()?;
        let keep = run.dir.keep();
        let mem = MemorizationConfig::default()
            .allow_missing()
            .estimate_from_logits(keep, &logits, &run.labels, Outcome::Correct)?;
        let canaries = pool.canaries();
        let digits: Vec<usize> = (0..pool.dataset.len())
            .filter(|i| !canaries.contains(i))
            .collect();
        let mean = |idx: &[usize]| {
            let v: Vec<f64> = idx
                .iter()
                .map(|&i| mem.score[i])
                .filter(|m| m.is_finite())
                .collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        let correct = logits.signals(&run.labels, Signal::Correct)?;
        let (mut right, mut total) = (0.0, 0usize);
        for k in 0..MODELS {
            for &i in digits.iter().filter(|&&i| !keep.get(k, i)) {
                right += correct[[k, i, 0]];
                total += 1;
            }
        }
        let accuracy = right / total as f64;

        let claims: Vec<Option<Claim>> = match target {
            Some(_) => vec![None],
            None => [1.0, 4.0, 8.0]
                .iter()
                .map(|&epsilon| {
                    Some(Claim {
                        epsilon,
                        delta: DELTA,
                        noise_multiplier: None,
                    })
                })
                .collect(),
        };
        for claim in claims {
            let audit = run.dp_audit(&DpAuditConfig {
                claim,
                guesses: Some(100),
                ..Default::default()
            })?;
            let show = |b: Option<f64>| b.map_or("-".to_string(), |e| format!("{e:.3}"));
            println!(
                "{:>9} {:>7} {:>8.3} {:>9} {:>10} {:>9} {:>9.3} {:>9.3} {:>8.3} {:>7}",
                name,
                audit
                    .claim
                    .noise_multiplier
                    .map_or("-".into(), |n| format!("{n:.3}")),
                audit.claim.epsilon,
                show(audit.one_run.bound().map(|b| b.epsilon)),
                show(audit.pooled.bound().map(|b| b.epsilon)),
                show(audit.many_runs.bound().map(|b| b.epsilon)),
                mean(&canaries),
                mean(&digits),
                accuracy,
                train_secs
            );
            if let (Some(p), Some(one)) = (audit.pooled.bound(), audit.one_run.bound()) {
                println!(
                    "{:>9}   pooled one run: {} of {} guesses correct; model 0: {} of {}",
                    "", p.correct, p.guesses, one.correct, one.guesses
                );
            }
        }
    }
    println!("runs kept in {}", root.display());
    Ok(())
}

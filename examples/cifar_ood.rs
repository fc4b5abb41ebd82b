//! The paper's setting at CIFAR scale: CIFAR-10 images with notMNIST letters as
//! out-of-distribution canaries, 256 convolutional shadow models.
//!
//! A pool of 2,500 CIFAR-10 test images (`cifar10-test-jpeg.bin.gz`) and 250 notMNIST letters
//! converted to 3 x 32 x 32 colour images, each letter with a random CIFAR label, so a model gets
//! a letter right only by memorizing it; standardised per channel. 256 LeNet-style CNNs (5x5
//! convolutions of 6 and 16 channels, 2x2 max pooling, dense 120-84-10; memia's fused CPU
//! kernels; Adam, rate 0.002, batch 128, 60 epochs, long enough to fit their 1,375 images) train
//! on balanced halves. (SGD with momentum 0.9 at rate 0.05 or 0.03 left about 2% of the models
//! far from fitting, whichever engine trained them.) From the same models:
//!
//! 1. how well the models fit their training data, and memorization (Feldman-Zhang) of letters
//!    and images;
//! 2. the audit of model 0 (online LiRA, global variance, with the other 255 as shadow models) on
//!    all samples, the high-memorization candidates and the letters, and the attack against the
//!    number of shadow models with 8 targets pooled; the report (HTML, plots, thumbnails);
//! 3. the cost study of `audit_cost` at this scale: three memorization estimators from m shadow
//!    models (Feldman-Zhang with correctness or probabilities, late learning from the models'
//!    trajectories, recorded every 10 epochs) against the oracle of all 248 non-target models,
//!    and the focused audit on each one's candidates (online LiRA, global, per-sample or prior
//!    variance) against the blind audit with the 248 models (per-sample variances) on the same
//!    samples, 8 targets pooled, every cost in model-epochs.
//!
//! Run: `cargo run --release --example cifar_ood [DATA_DIR]` (default `$MEMIA_DATA_DIR`); the
//! models are kept in the temporary directory and reused by a second run. Results are in
//! docs/REPRODUCTION.md.

#[path = "common/mod.rs"]
mod common;

use std::time::Instant;

use memia::attacks::LiraConfig;
use memia::attacks::loo::EvalGroup;
use memia::audit::config::{CanaryConfig, CanaryKind, CanaryLabels, DataConfig, DataSource};
use memia::audit::{AuditTarget, RunConfig};
use memia::core::Signal;
use memia::data::Dataset;
use memia::memorization::{MemorizationConfig, Outcome};
use memia::models::{CnnConfig, Optimizer, TrainingConfig};
use memia::report::{AuditConfig, headline};
use memia::shadow::InclusionScheme;

const SEED: u64 = 2026;
const IMAGES: usize = 2500;
const LETTERS: usize = 250;
const EPOCHS: usize = 60;
/// Targets of the pooled evaluations.
const TARGETS: usize = 8;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let dir = common::data_dir()?;
    // 256 models, as the blind audit of `audit_cost`; `MEMIA_CIFAR_MODELS` sets another count
    // (e.g. 16 for a quick look; at least TARGETS + 2).
    let models: usize = std::env::var("MEMIA_CIFAR_MODELS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    if models < TARGETS + 2 {
        return Err(format!(
            "MEMIA_CIFAR_MODELS = {models}: at least {} models",
            TARGETS + 2
        )
        .into());
    }
    // The configuration of examples/configs/cifar10_notmnist.toml with this example's counts,
    // planned and trained through the library behind `memia run` (memia::audit). The pool is
    // standardised per channel (letters included), as CIFAR models are trained.
    let mut config = RunConfig::digits();
    config.data = DataConfig {
        source: DataSource::Cifar10 {
            files: vec![dir.join("cifar10-test-jpeg.bin.gz")],
        },
        samples: Some(IMAGES),
        canaries: Some(CanaryConfig {
            kind: CanaryKind::OutOfDistribution,
            count: LETTERS,
            labels: CanaryLabels::Random,
            data: Some(common::idx_source("notmnist")?),
        }),
        normalize: true,
    };
    config.plan.models = models;
    config.plan.scheme = InclusionScheme::Balanced { ratio: 0.5 };
    config.plan.seed = SEED;
    config.model = CnnConfig::lenet().into();
    config.training = TrainingConfig {
        epochs: EPOCHS,
        batch_size: 128,
        learning_rate: 0.002,
        optimizer: Optimizer::Adam {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
        },
        weight_decay: 0.0,
        // The trajectories for the late-learning estimate: the pool predicted every 10 epochs.
        checkpoint_every: Some(10),
        ..Default::default()
    };
    config.train.group_size = 8;
    println!(
        "pool: {IMAGES} CIFAR-10 images + {LETTERS} notMNIST letters as 3x32x32 images with random labels ({} samples)",
        IMAGES + LETTERS
    );

    // 1. Train (resumable: a second run reuses the models).
    let common::Trained {
        run,
        pool,
        report: trained,
        seconds,
        trainer,
    } = common::plan_and_train(&config, "memia-cifar-ood")?;
    let canaries = pool.canaries();
    let n = pool.dataset.len();
    let labels = run.labels.clone();
    println!(
        "{models} CNNs (LeNet-style, {EPOCHS} epochs, ~{} images each) {trainer}: {} trained in {seconds:.1} s ({:.2} models/s), {} reused from {}",
        n / 2,
        trained.trained.len(),
        trained.trained.len() as f64 / seconds.max(1e-9),
        trained.skipped.len(),
        run.path().display()
    );
    let logits = run.logits()?;
    let keep = run.dir.keep();

    // How well the models fit: accuracy on their own training halves and on the other halves.
    let correct = logits.signals(&labels, Signal::Phi)?.mapv(|phi| phi > 0.0);
    let rate = |inside: bool, set: &dyn Fn(usize) -> bool| {
        let (mut right, mut total) = (0usize, 0usize);
        for m in 0..models {
            for i in (0..n).filter(|&i| set(i) && keep.get(m, i) == inside) {
                right += usize::from(correct[[m, i, 0]]);
                total += 1;
            }
        }
        right as f64 / total.max(1) as f64
    };
    let is_letter = |i: usize| i >= IMAGES;
    let is_image = |i: usize| i < IMAGES;
    println!(
        "fit: training accuracy {:.3} on images, {:.3} on letters; held-out accuracy {:.3} on images, {:.3} on letters",
        rate(true, &is_image),
        rate(true, &is_letter),
        rate(false, &is_image),
        rate(false, &is_letter)
    );
    let mem = MemorizationConfig::default()
        .allow_missing()
        .estimate_from_logits(keep, &logits, &labels, Outcome::Correct)?;
    let mean_of = |set: &dyn Fn(usize) -> bool| {
        let v: Vec<f64> = (0..n)
            .filter(|&i| set(i))
            .map(|i| mem.score[i])
            .filter(|m| m.is_finite())
            .collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    println!(
        "memorization (all {models} models): letters {:.3} on average, images {:.3}; {} samples >= 0.8 ({} letters)",
        mean_of(&is_letter),
        mean_of(&is_image),
        (0..n).filter(|&i| mem.score[i] >= 0.8).count(),
        canaries.iter().filter(|&&i| mem.score[i] >= 0.8).count()
    );

    // 2. The audit of model 0, the curve with 8 targets, the report.
    let t = Instant::now();
    let groups = [EvalGroup {
        name: "letters".into(),
        samples: canaries.clone(),
    }];
    let audit_config = AuditConfig {
        candidates: memia::attacks::CandidateRule::MemorizationAtLeast(0.8),
        shadow_counts: Some(
            (1..)
                .map(|p| 1usize << p)
                .take_while(|&m| m < models - 1)
                .chain([models - 1])
                .collect(),
        ),
        curve_targets: TARGETS,
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
        "\n{} on model 0 with {} shadow models ({:.1} s):",
        s.attack,
        s.shadow_models,
        t.elapsed().as_secs_f64()
    );
    println!("  {}", headline("all samples", s.all.as_ref()));
    println!(
        "  {}",
        headline("candidates (memorization >= 0.8)", s.candidates.as_ref())
    );
    println!("  {}", headline("letters", s.groups[0].1.as_ref()));
    println!(
        "\nleave one model out, {TARGETS} targets pooled (AUROC / TPR at 0.1% FPR, n/m: not measurable):"
    );
    println!("{}", s.shadow_curve);
    let report_dir = std::env::temp_dir().join("memia-cifar-ood-report");
    let files = audit.write(&report_dir)?;
    println!("report: {}", files.index.display());

    // 3. The cost table: the estimators and the focused audit with m models against the blind
    // audit with all non-target models, every cost in model-epochs.
    let phi = logits.signals(&labels, Signal::Phi)?;
    let targets = common::Targets {
        keep,
        phi: &phi,
        targets: (0..TARGETS).collect(),
    };
    let shadows: Vec<usize> = (TARGETS..models).collect();
    let blind = targets.scores(&LiraConfig::online(), &shadows)?;
    let trajectories = run.dir.trajectories(&(0..models).collect::<Vec<_>>())?;
    // The checkpoints' cost: 8 shadow models trained again with and without them (one round:
    // a CNN trains for seconds, so one round is steady enough).
    // The trainer `memia run` would use for this configuration, on this machine.
    let memia::audit::trainer::RunTrainer::Burn(burn) = memia::audit::trainer::trainer(
        &config,
        &run.path(),
        &memia::audit::trainer::Placement::default(),
    )?
    else {
        return Err("the configuration trains memia's own models".into());
    };
    let overhead = common::cost::checkpoint_overhead(
        &burn,
        &pool,
        &run.dir,
        TARGETS,
        8.min(shadows.len()),
        1,
    )?;
    let study = common::cost::Study {
        keep,
        logits: &logits,
        trajectories: &trajectories,
        labels: &labels,
        targets: &targets,
        shadows: &shadows,
        epochs: EPOCHS,
        overhead: &overhead,
    };
    let oracle = study.memorization(&shadows, Outcome::Correct)?;
    // 2, 4, ..., then all the shadow models.
    let counts = memia::attacks::doubling_counts(shadows.len())[1..].to_vec();
    let found = study.run(&counts, oracle.score.as_slice().ok_or("layout")?, &blind)?;
    study.print_matches(&found.matched);
    println!("\nwhole example: {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}

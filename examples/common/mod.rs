//! What the examples of the paper's experiments share: the data directory, the pool of MNIST
//! digits with notMNIST letters as out-of-distribution canaries, the paper-setting MLP, and
//! audits pooled over target models. Not every example uses every piece.
#![allow(dead_code)]

pub mod cost;

use std::path::PathBuf;

use memia::attacks::LiraConfig;
use memia::attacks::evaluation::{judge, score_targets};
use memia::audit::config::{CanaryConfig, CanaryKind, CanaryLabels, DataConfig, DataSource};
use memia::audit::trainer::{Placement, trainer};
use memia::audit::{Planned, Run, RunConfig};
use memia::core::KeepMatrix;
use memia::data::Pool;
use memia::metrics::RocSummary;
use memia::models::{Augmentation, BurnTrainer, MlpConfig, TrainingConfig};
use memia::shadow::InclusionScheme;
use memia::shadow::TrainReport;
use ndarray::{Array1, Array3, Axis};

/// The data directory: the first argument, else `$MEMIA_DATA_DIR`.
pub fn data_dir() -> Result<PathBuf, Box<dyn std::error::Error>> {
    std::env::args_os()
        .nth(1)
        .or_else(|| std::env::var_os("MEMIA_DATA_DIR"))
        .map(PathBuf::from)
        .ok_or_else(|| "give the data directory as the argument or in MEMIA_DATA_DIR".into())
}

/// The test set of an IDX family in the data directory, as a configuration names it: `mnist`
/// or `notmnist` (`<name>-t10k-{images-idx3,labels-idx1}-ubyte.gz`), 10 classes.
pub fn idx_source(name: &str) -> Result<DataSource, Box<dyn std::error::Error>> {
    let dir = data_dir()?;
    Ok(DataSource::Idx {
        images: dir.join(format!("{name}-t10k-images-idx3-ubyte.gz")),
        labels: dir.join(format!("{name}-t10k-labels-idx1-ubyte.gz")),
        classes: Some(10),
    })
}

/// `digits` MNIST test digits and `letters` notMNIST letters, each letter with a random digit
/// label (so that a model gets it right only by memorizing it), trained with `trainer`'s
/// settings (model, training, group size, queries), `models` models on balanced halves, as
/// `memia run` reads it from a file: the examples plan and train it with [`memia::audit::Run`].
pub fn mnist_letters_config(
    digits: usize,
    letters: usize,
    models: usize,
    trainer: BurnTrainer,
    seed: u64,
) -> Result<RunConfig, Box<dyn std::error::Error>> {
    let mut config = RunConfig::digits();
    config.data = DataConfig {
        source: idx_source("mnist")?,
        samples: Some(digits),
        canaries: Some(CanaryConfig {
            kind: CanaryKind::OutOfDistribution,
            count: letters,
            labels: CanaryLabels::Random,
            data: Some(idx_source("notmnist")?),
        }),
        normalize: false,
    };
    config.plan.models = models;
    config.plan.scheme = InclusionScheme::Balanced { ratio: 0.5 };
    config.plan.seed = seed;
    config.plan.queries = trainer.queries;
    config.model = trainer.model;
    config.training = trainer.training;
    config.train.group_size = trainer.group_size;
    Ok(config)
}

/// A planned and trained run, as the examples use it.
pub struct Trained {
    /// The run (`temp/<root>/<plan hash>`).
    pub run: Run,
    /// Its pool.
    pub pool: Pool,
    /// What training did (models trained now and found finished).
    pub report: TrainReport,
    /// Seconds spent training now.
    pub seconds: f64,
    /// Where and how it trained, for the examples' lines.
    pub trainer: String,
}

/// Plans `config` under `temp/<root>/<plan hash>` and trains every model not finished yet
/// (resumable: a second run reuses them), with progress on stderr: `memia run` without the
/// report, through the library (`memia::audit`).
pub fn plan_and_train(
    config: &RunConfig,
    root: &str,
) -> Result<Trained, Box<dyn std::error::Error>> {
    let origin = PathBuf::from(format!("the {root} example's configuration"));
    let Planned { run, pool, .. } =
        Run::plan_in(config, &origin, &std::env::temp_dir().join(root))?;
    let trainer = trainer(config, &run.path(), &Placement::default())?;
    let start = std::time::Instant::now();
    let report = run.train(trainer.as_dyn(), &pool, 0..config.plan.models, false, |p| {
        eprint!("\r  {p}   ")
    })?;
    eprintln!();
    Ok(Trained {
        run,
        pool,
        report,
        seconds: start.elapsed().as_secs_f64(),
        trainer: trainer.describe(),
    })
}

/// The paper-setting MLP (784-128-10; SGD with momentum 0.9, rate 0.05, batch 128, no weight
/// decay) trained for `epochs`, with random shifts of up to `max_shift` pixels, 8 models at a time.
pub fn mlp_trainer(epochs: usize, max_shift: usize) -> BurnTrainer {
    BurnTrainer::new(
        MlpConfig::mlp(128),
        TrainingConfig {
            epochs,
            batch_size: 128,
            learning_rate: 0.05,
            weight_decay: 0.0,
            augmentation: Augmentation {
                max_shift,
                flip: false,
            },
            ..Default::default()
        },
        8,
    )
}

/// A run's target models and their `phi` signals, for audits whose (sample, target) pairs are
/// pooled into one ROC curve.
pub struct Targets<'a> {
    /// Who trained on what (all models of the run).
    pub keep: &'a KeepMatrix,
    /// Every model's `phi`, K x N x A.
    pub phi: &'a Array3<f64>,
    /// The target models.
    pub targets: Vec<usize>,
}

impl Targets<'_> {
    /// Each target's scores (in the order of `targets`) by `attack` fitted on `shadows`; NaN
    /// where the shadows cannot judge a sample.
    pub fn scores(
        &self,
        attack: &LiraConfig,
        shadows: &[usize],
    ) -> Result<Vec<Array1<f64>>, Box<dyn std::error::Error>> {
        let keep = self.keep.select_models(shadows)?;
        let shadow = self.phi.select(Axis(0), shadows);
        let targets = self
            .targets
            .iter()
            .map(|&t| self.phi.index_axis(Axis(0), t));
        Ok(score_targets(attack, &keep, shadow.view(), targets)?)
    }

    /// The ROC summary (TPR at 0.1% FPR) of the pairs of `samples` and the targets at positions
    /// `which` of `targets`, by memia's one evaluation (an undetermined member is not detected,
    /// an undetermined non-member is left out). None when the pairs have no curve.
    pub fn summary(
        &self,
        scores: &[Array1<f64>],
        which: &[usize],
        samples: &[usize],
    ) -> Option<RocSummary> {
        let (s, m): (Vec<f64>, Vec<bool>) = which
            .iter()
            .flat_map(|&w| {
                let t = self.targets[w];
                samples
                    .iter()
                    .map(move |&i| (scores[w][i], self.keep.get(t, i)))
            })
            .unzip();
        judge(&s, &m, &[1e-3]).ok()?.ok().map(|set| set.summary)
    }

    /// [`Targets::summary`] over every target.
    pub fn pooled(&self, scores: &[Array1<f64>], samples: &[usize]) -> Option<RocSummary> {
        let all: Vec<usize> = (0..self.targets.len()).collect();
        self.summary(scores, &all, samples)
    }
}

/// The TPR at 0.1% FPR with its interval, or "n/m" (not measurable) and the non-members.
pub fn tpr(s: &RocSummary) -> String {
    match s.at(1e-3) {
        Some(p) if p.measurable => format!("{:.3} [{:.3}, {:.3}]", p.tpr, p.tpr_lower, p.tpr_upper),
        _ => format!("n/m ({} non-members)", s.negatives),
    }
}

/// A focused audit matches a blind one: AUROC within 0.005, TPR at 0.1% FPR at least the blind
/// audit's lower 95% bound (both measurable).
pub fn matches(focused: &RocSummary, blind: &RocSummary) -> bool {
    let (Some(f), Some(b)) = (focused.at(1e-3), blind.at(1e-3)) else {
        return false;
    };
    f.measurable && b.measurable && focused.auroc >= blind.auroc - 0.005 && f.tpr >= b.tpr_lower
}

//! A run: the scheduler's directory (plan, keep matrix, logits, manifest, producers) and what
//! memia keeps beside it, opened and written by one type, [`Run`]:
//!
//! ```text
//! RUN/memia.toml     the configuration the run was planned from (absent for imported runs)
//! RUN/labels.npy     N int64: the pool's labels
//! RUN/pool.json      per-sample provenance and named groups (e.g. the canaries)
//! ```

use std::path::{Path, PathBuf};

use std::ops::Range;

use memia_attacks::AttackSpec;
use memia_attacks::evaluation::{EvalGroup, SetEvaluation, evaluate_sets, score_target};
use memia_core::npy::{read_npy_any, write_npy_to};
use memia_core::{Logits, ModelFiles, Signals, atomic_write, labels_from_i64};
use memia_data::Pool;
use memia_report::sequential::{SequentialAudit, SequentialEvent, SequentialReport};
use memia_report::{Audit, AuditConfig, AuditInputs, AuditStage, ReportError, SampleImages};
use memia_shadow::{Plan, RunDir, ShadowError, ShadowTrainer, TrainReport};
use ndarray::{Array1, Axis};
use serde::{Deserialize, Serialize};

use crate::config::RunConfig;
use crate::error::{AuditError, Result, io};
use crate::target::AuditTarget;
use crate::trainer::{Placement, RunTrainer, settings};

/// `pool.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PoolInfo {
    /// One description per sample, when known.
    pub provenance: Option<Vec<String>>,
    /// Named sample sets reported separately.
    pub groups: Vec<EvalGroup>,
}

/// A run directory with everything memia keeps in it; the only owner of its files.
#[derive(Debug)]
pub struct Run {
    /// The scheduler's view.
    pub dir: RunDir,
    /// The pool's labels.
    pub labels: Vec<u32>,
    /// Provenance and groups.
    pub pool: PoolInfo,
    /// The configuration, for runs planned by `memia plan` or `memia run`.
    pub config: Option<RunConfig>,
}

/// Writes memia's files (`memia.toml`, `labels.npy`, `pool.json`) into `dir`, each only where its content changes (so that planning
/// again into the run of the same plan is a no-op); returns the names it wrote.
pub fn write_run_files(
    dir: &Path,
    config: Option<&RunConfig>,
    labels: &[u32],
    pool: &PoolInfo,
) -> Result<Vec<&'static str>> {
    let mut files: Vec<(&'static str, Vec<u8>)> = Vec::new();
    if let Some(config) = config {
        files.push(("memia.toml", config.to_toml().into_bytes()));
    }
    let labels: Array1<i64> = labels.iter().map(|&l| i64::from(l)).collect();
    let mut npy = Vec::new();
    write_npy_to(&mut npy, &labels).map_err(io(dir.join("labels.npy")))?;
    files.push(("labels.npy", npy));
    let text = serde_json::to_string(pool).expect("plain data serialises");
    files.push(("pool.json", text.into_bytes()));
    let mut written = Vec::new();
    for (name, bytes) in files {
        let path = dir.join(name);
        if std::fs::read(&path).is_ok_and(|old| old == bytes) {
            continue;
        }
        atomic_write(&path, |f| std::io::Write::write_all(f, &bytes))?;
        written.push(name);
    }
    Ok(written)
}

/// The plan of models made elsewhere: the keep matrix is the plan, the pool is known by its name,
/// size and labels (`[queries, classes]` of every model's logits).
pub(crate) fn given_plan(
    keep: &memia_core::KeepMatrix,
    labels: &[u32],
    [queries, classes]: [usize; 2],
    name: &str,
    description: &serde_json::Value,
) -> Result<Plan> {
    let pool = memia_shadow::PoolFingerprint {
        name: name.to_string(),
        samples: keep.samples(),
        classes,
        feature_shape: Vec::new(),
        sha256: String::new(),
        labels_sha256: Some(memia_shadow::labels_sha256(labels)),
    };
    Ok(Plan::given(pool, keep, queries, description.clone())?)
}

/// The pool's pixels of an imported run (`memia import --images`), N x C x H x W float32.
pub const IMAGES_FILE: &str = "images.npy";

fn run_error(path: &Path, reason: impl Into<String>) -> AuditError {
    AuditError::Run {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

impl Run {
    /// Opens a run directory with its labels, pool information and configuration.
    pub fn open(path: &Path) -> Result<Run> {
        if !path.join("plan.json").is_file() {
            return Err(run_error(
                path,
                "not a run directory (no plan.json): create one with `memia plan` or `memia import-lira`",
            ));
        }
        let dir = RunDir::open(path)?;
        // The manifest is derived from logits/: bring it up to date with files written by hand.
        match dir.refresh_manifest() {
            Ok(_) => {}
            // A run directory this process may not write (shared, read-only) is still read: every
            // command reads logits/ itself, not the manifest.
            Err(ShadowError::Core(memia_core::CoreError::Io { .. }) | ShadowError::Io { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let samples = dir.plan().pool.samples;
        let classes = dir.plan().pool.classes;
        let labels_path = path.join("labels.npy");
        if !labels_path.is_file() {
            return Err(run_error(
                path,
                "labels.npy is missing (the run was not made by the memia command line?)",
            ));
        }
        let raw = read_npy_any(&labels_path)?.to_i64_vec(&labels_path.display().to_string())?;
        if raw.len() != samples {
            return Err(run_error(
                path,
                format!(
                    "labels.npy holds {} labels, the plan has {samples} samples",
                    raw.len()
                ),
            ));
        }
        let labels = labels_from_i64(&raw, classes)?;
        // Every command checks the run's files against its plan, not only `train`.
        dir.plan()
            .pool
            .check_labels(&labels)
            .map_err(|reason| run_error(path, format!("labels.npy: {reason}")))?;
        let pool_path = path.join("pool.json");
        let pool: PoolInfo = match std::fs::read_to_string(&pool_path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| AuditError::Syntax {
                path: pool_path.clone(),
                source: Box::new(e),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => PoolInfo::default(),
            Err(e) => return Err(io(&pool_path)(e)),
        };
        if let Some(p) = &pool.provenance
            && p.len() != samples
        {
            return Err(run_error(
                path,
                format!(
                    "pool.json describes {} samples, the plan has {samples}",
                    p.len()
                ),
            ));
        }
        let config_path = path.join("memia.toml");
        let config = if config_path.is_file() {
            Some(RunConfig::load(&config_path)?)
        } else {
            None
        };
        Ok(Run {
            dir,
            labels,
            pool,
            config,
        })
    }

    /// All models' logits in memory (K x N x A x C float32: for runs that fit; the audit and
    /// scores read [`Run::logits_files`] one model at a time); an error saying how to finish
    /// the run if some are missing.
    pub fn logits(&self) -> Result<Logits> {
        self.finish_hint(self.dir.logits())
    }

    /// Models `models`' logits as a source read one file at a time, for an analysis that keeps
    /// `signals` signals of them ([`memia_core::Signals`] computes them in the memory of the
    /// signals; refused if even that is more than the machine has); an error saying how to
    /// finish the run if some of them are missing.
    pub fn logits_files(&self, models: &[usize], signals: usize) -> Result<ModelFiles> {
        self.finish_hint(self.dir.logits_files(models, signals))
    }

    /// `read`'s result, with the command that finishes the run when models are missing.
    fn finish_hint<T>(&self, read: std::result::Result<T, ShadowError>) -> Result<T> {
        match read {
            Err(ShadowError::Incomplete {
                path,
                missing,
                models,
                first,
            }) => Err(run_error(
                &path,
                format!(
                    "{missing} of {models} models are not trained yet (first: model {first}): run `memia train {}`",
                    path.display()
                ),
            )),
            other => Ok(other?),
        }
    }

    /// A run for models trained elsewhere and stored one by one as they finish
    /// (`run.dir.store(k, logits, producer)`, e.g. from a training loop): the keep matrix is
    /// the plan, with the pool's `labels`, every model's `[queries, classes]`, a `name` and
    /// named `groups`. The same run in `dir` is opened again; another plan there is refused.
    pub fn create_given(
        dir: &Path,
        keep: &memia_core::KeepMatrix,
        labels: &[u32],
        shape: [usize; 2],
        name: &str,
        groups: &[EvalGroup],
    ) -> Result<Run> {
        let n = keep.samples();
        let refuse = |reason: String| Err(AuditError::Usage(reason));
        if labels.len() != n {
            return refuse(format!("{} labels for {n} samples", labels.len()));
        }
        if shape[0] == 0 || shape[1] < 2 {
            return refuse(format!(
                "{} queries and {} classes: at least one query and two classes",
                shape[0], shape[1]
            ));
        }
        memia_core::check_labels(labels, n, shape[1])?;
        if let Some(g) = groups.iter().find(|g| g.samples.iter().any(|&i| i >= n)) {
            return refuse(format!(
                "group '{}' holds a sample not below N = {n}",
                g.name
            ));
        }
        let description = serde_json::json!({ "created_for": "models stored one by one" });
        let plan = given_plan(keep, labels, shape, name, &description)?;
        RunDir::create_given(dir, &plan, keep)?;
        let info = PoolInfo {
            provenance: None,
            groups: groups.to_vec(),
        };
        write_run_files(dir, None, labels, &info)?;
        Run::open(dir)
    }

    /// The pool's pixels kept with an imported run (`images.npy`, N x C x H x W), if any:
    /// what its report's thumbnails are drawn from. Read when asked, not when the run opens.
    pub fn images(&self) -> Result<Option<ndarray::Array4<f32>>> {
        let path = self.dir.path().join(IMAGES_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let images: ndarray::Array4<f32> = memia_core::npy::read_npy(&path)?;
        if images.dim().0 != self.labels.len() {
            return Err(run_error(
                &path,
                format!(
                    "{} images for the run's {} samples",
                    images.dim().0,
                    self.labels.len()
                ),
            ));
        }
        Ok(Some(images))
    }

    /// The run directory.
    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Plans `config` (read from `origin`, named in errors) into `dir`, or finds the same plan
    /// there, and writes memia's files beside it. Every setting is checked against the pool
    /// here, so that training does not find it wrong after a plan was made.
    pub fn plan(config: &RunConfig, origin: &Path, dir: &Path) -> Result<Planned> {
        Self::plan_at(config, origin, dir, |_| dir.to_path_buf())
    }

    /// [`Run::plan`] into `root/<the first 16 hex digits of the plan's hash>`: one directory per
    /// plan under a common root, found again by the same configuration (what examples and
    /// scripts that change their settings want).
    pub fn plan_in(config: &RunConfig, origin: &Path, root: &Path) -> Result<Planned> {
        Self::plan_at(config, origin, root, |plan| {
            root.join(&plan.content_hash()[..16])
        })
    }

    /// Plans `config`; the run directory is `dir_of(plan)` (`near`: a directory beside which
    /// the trainer's settings are made; they do not enter the plan).
    fn plan_at(
        config: &RunConfig,
        origin: &Path,
        near: &Path,
        dir_of: impl FnOnce(&Plan) -> std::path::PathBuf,
    ) -> Result<Planned> {
        let pool = crate::pool::build(&config.data, config.plan.seed)?;
        // Only the settings enter the plan; the device is chosen when training.
        let trainer = settings(config, near, None)?;
        // memia's models (in any build): the architecture must suit the pool's samples.
        if !matches!(trainer, RunTrainer::External(_)) {
            crate::pool::check_shape(&pool.dataset, &config.model)?;
        }
        #[cfg(feature = "train")]
        if let RunTrainer::Burn(burn) = &trainer {
            burn.check_pool(&pool.dataset)
                .map_err(|source| AuditError::ModelSetting {
                    path: origin.to_path_buf(),
                    table: None,
                    source,
                })?;
        }
        let plan = Plan::new(
            &pool.dataset,
            config.plan.models,
            config.plan.scheme.clone(),
            config.plan.seed,
            trainer.as_dyn(),
        )
        .map_err(|source| AuditError::PlanSetting {
            path: origin.to_path_buf(),
            // A size refused for memory names the table its setting lives in.
            table: match &source {
                ShadowError::TooLarge(t) if t.setting == "group_size" => "train",
                ShadowError::TooLarge(t) if t.setting == "model" => "model",
                _ => "plan",
            },
            source,
        })?;
        let dir = &dir_of(&plan);
        let existed = dir.join("plan.json").exists();
        RunDir::create(dir, &plan)?;
        let groups = crate::pool::groups(&pool);
        let labels = memia_data::Dataset::labels(&pool.dataset);
        let updated = write_run_files(
            dir,
            Some(config),
            &labels,
            &PoolInfo {
                provenance: Some(crate::pool::provenance_strings(&pool)),
                groups,
            },
        )?;
        Ok(Planned {
            run: Run::open(dir)?,
            pool,
            existed,
            updated,
        })
    }

    /// The configuration, or why the run has none (an imported run: memia did not train its
    /// models and cannot rebuild its pool).
    pub fn config(&self) -> Result<&RunConfig> {
        self.config.as_ref().ok_or_else(|| AuditError::Run {
            path: self.path(),
            reason: "has no memia.toml (an imported run?): its models were not trained by memia \
                     and its pool's samples are not known to memia"
                .into(),
        })
    }

    /// The pool the run was planned on, rebuilt from its configuration and checked against the
    /// plan's fingerprint.
    pub fn planned_pool(&self) -> Result<Pool> {
        let config = self.config()?;
        let pool = crate::pool::build(&config.data, config.plan.seed)?;
        if !self.dir.plan().pool.describes(&pool.dataset) {
            return Err(AuditError::Run {
                path: self.path(),
                reason: "the data files no longer give the pool this run was planned on (its \
                         fingerprint differs)"
                    .into(),
            });
        }
        Ok(pool)
    }

    /// Who produced the models, one line per producer (`models 0..16 by ...`).
    pub fn producer_lines(&self) -> Result<Vec<String>> {
        Ok(self
            .dir
            .producers()?
            .iter()
            .map(ToString::to_string)
            .collect())
    }

    /// Models of another family (logits copied in, another trainer) are not silently joined by
    /// memia's own: engines of memia's trainer may mix (said after training), families may not.
    pub fn refuse_mixed_families(&self, trainer: &dyn ShadowTrainer) -> Result<()> {
        let ours = trainer.producer().trainer;
        let foreign: Vec<String> = self
            .dir
            .producers()?
            .iter()
            .filter(|g| g.producer.as_ref().is_none_or(|p| p.trainer != ours))
            .map(ToString::to_string)
            .collect();
        if foreign.is_empty() {
            return Ok(());
        }
        Err(AuditError::Run {
            path: self.path(),
            reason: format!(
                "holds models that {ours} did not produce ({}): training its models into the \
                 other slots would mix model families in one audit; pass \
                 --allow-mixed-producers to do it anyway",
                foreign.join("; ")
            ),
        })
    }

    /// Trains `models` of the run with `trainer` on `pool` (the run's pool: its labels are
    /// checked against labels.npy), skipping finished ones; refuses to add memia's models to
    /// another family's unless `allow_mixed_producers`. `progress` follows each model.
    pub fn train(
        &self,
        trainer: &dyn ShadowTrainer,
        pool: &Pool,
        models: Range<usize>,
        allow_mixed_producers: bool,
        progress: impl FnMut(&memia_shadow::Progress),
    ) -> Result<TrainReport> {
        self.check_training(trainer, pool, allow_mixed_producers)?
            .train(models, progress)
    }

    /// What [`Run::train`] refuses, checked once, without training: a pool whose labels are not
    /// labels.npy's, and (unless `allow_mixed_producers`) models of another family. The answer
    /// trains (a front-end says what it will do in between).
    pub fn check_training<'r>(
        &'r self,
        trainer: &'r dyn ShadowTrainer,
        pool: &'r Pool,
        allow_mixed_producers: bool,
    ) -> Result<CheckedTraining<'r>> {
        if memia_data::Dataset::labels(&pool.dataset) != self.labels {
            return Err(AuditError::Run {
                path: self.path(),
                reason: "labels.npy differs from the pool the configuration builds".into(),
            });
        }
        if !allow_mixed_producers {
            self.refuse_mixed_families(trainer)?;
        }
        Ok(CheckedTraining {
            run: self,
            trainer,
            pool,
        })
    }

    /// Checks `target` against the run before any work: a model of the run that exists, or a
    /// model trained elsewhere with one model's logits on this pool (1 x N x A x C) and, when
    /// given, N membership entries.
    pub fn check_target(&self, target: &AuditTarget) -> Result<()> {
        let models = self.dir.plan().models;
        target
            .as_report()
            .check(models, self.dir.expected_logits_shape())
            .map_err(|e| match e {
                // Typed here too, so that a front-end can name the setting that gave it.
                ReportError::TargetOutOfRange { target, models } => {
                    AuditError::TargetOutOfRange { target, models }
                }
                other => other.into(),
            })
    }

    /// `attack` fitted on the target's shadow models (every other model of the run for a model
    /// of the run, every model for one trained elsewhere) and run on `target`: one score per
    /// sample (higher is member, NaN undetermined) and the target's membership when known.
    pub fn score(&self, attack: &AttackSpec, target: &AuditTarget) -> Result<TargetScores> {
        self.check_target(target)?;
        let keep = self.dir.keep();
        let shadows = target.as_report().available_shadows(keep.models());
        let signal = attack.signal();
        // The shadows, then a target of the run, in one pass over the files: the shadows' rows
        // come first, so no copy separates them.
        let mut models = shadows.clone();
        if let AuditTarget::Model(t) = target {
            models.push(*t);
        }
        let mut signals = Signals::compute(
            &self.logits_files(&models, 1)?,
            &models,
            &self.labels,
            &[signal],
            |_, _| {},
        )?;
        let all = signals.take(signal).expect("computed above");
        let shadow_signal = all.slice(ndarray::s![..shadows.len(), .., ..]);
        let outside;
        let (target_signal, members) = match target {
            AuditTarget::Model(t) => (
                all.index_axis(Axis(0), shadows.len()),
                Some(keep.row(*t).to_vec()),
            ),
            AuditTarget::Outside(m) => {
                outside = m.logits.signals(&self.labels, signal)?;
                (outside.index_axis(Axis(0), 0), m.members.clone())
            }
        };
        let scores = score_target(
            attack,
            &keep.select_models(&shadows)?,
            shadow_signal,
            target_signal,
        )?;
        Ok(TargetScores {
            scores: scores.to_vec(),
            members,
            shadow_models: shadows.len(),
        })
    }

    /// The audit of `target` and every figure of its report (memorization, privacy score, the
    /// attack per sample set, the budget, the shadow-model curve). `pool` gives the report's
    /// thumbnails (the run's pool; `None`: no thumbnails). `progress(stage, done, total)` follows
    /// the long parts: reading the models (one file at a time, so memory holds their signals,
    /// not their logits) and the shadow-model curve.
    pub fn audit(
        &self,
        config: &AuditConfig,
        target: &AuditTarget,
        pool: Option<&Pool>,
        progress: impl FnMut(AuditStage, usize, usize),
    ) -> Result<Audit> {
        self.audit_groups(config, target, pool, &self.pool.groups, progress)
    }

    /// [`Run::audit`] reporting `groups` (instead of the run's own, `pool.json`'s) separately.
    pub fn audit_groups(
        &self,
        config: &AuditConfig,
        target: &AuditTarget,
        pool: Option<&Pool>,
        groups: &[EvalGroup],
        progress: impl FnMut(AuditStage, usize, usize),
    ) -> Result<Audit> {
        self.check_target(target)?;
        // Correctness, phi and the attack's own signal (see Audit::run), and a copy of one of
        // them for the shadow models' rows.
        let logits = self.logits_files(&(0..self.dir.plan().models).collect::<Vec<_>>(), 4)?;
        let producers = self.producer_lines()?;
        let mut inputs = AuditInputs::new(self.dir.keep(), &logits, &self.labels)
            .with_groups(groups)
            .with_producers(&producers)
            .with_target(target.as_report());
        if let Some(p) = self.pool.provenance.as_deref() {
            inputs = inputs.with_provenance(p);
        }
        // The pool's pixels: the planned pool's, else those kept with an imported run.
        let kept = match pool {
            Some(_) => None,
            None => self.images()?,
        };
        let images = match (pool, &kept) {
            (Some(p), _) => {
                use memia_data::Dataset;
                SampleImages::from_feature_shape(p.dataset.feature_shape(), p.dataset.as_slice())
            }
            (None, Some(kept)) => kept
                .as_slice()
                .and_then(|pixels| SampleImages::from_feature_shape(&kept.shape()[1..], pixels)),
            (None, None) => None,
        };
        if let Some(images) = images {
            inputs = inputs.with_images(images);
        }
        Ok(Audit::run(inputs, config, progress)?)
    }
}

impl Run {
    /// The sequential audit's rounds for `target` with at most `budget` shadow models (default:
    /// every model the run can give it): 1, 2, 4, ... and the budget. Refuses a budget of 0 or
    /// above what the run can give, saying what it can.
    pub fn sequential_rounds(
        &self,
        target: &AuditTarget,
        config: memia_attacks::sequential::SequentialConfig,
        budget: Option<usize>,
    ) -> Result<SequentialAudit> {
        let available = target
            .as_report()
            .available_shadows(self.dir.plan().models)
            .len();
        let budget = budget.unwrap_or(available);
        if budget == 0 || budget > available {
            return Err(AuditError::Usage(format!(
                "budget {budget} is out of range: the run can give 1-{available} shadow models (plan more models to raise it)"
            )));
        }
        config.check()?;
        Ok(SequentialAudit {
            config,
            rounds: Some(memia_attacks::doubling_counts(budget)),
        })
    }

    /// The sequential audit of `target`: shadow models in rounds (`audit.rounds`, default
    /// 1, 2, 4, ...) until its decisions on the candidates are confident. A planned run trains
    /// the models each round needs (with its configuration's trainer, placed by `placement`);
    /// an imported run uses the models it has. Finished models stay, so an interrupted audit
    /// resumes.
    pub fn sequential(
        &self,
        audit: &SequentialAudit,
        target: &AuditTarget,
        placement: &Placement,
        progress: impl FnMut(SequentialEvent<'_>),
    ) -> Result<SequentialReport> {
        self.check_target(target)?;
        audit.config.check()?;
        let trainer = match &self.config {
            Some(config) => match crate::trainer::trainer(config, &self.path(), placement) {
                Ok(trainer) => Some(trainer),
                // Built without memia's model zoo: the models the rounds need must be trained
                // already (the audit says which are missing).
                Err(AuditError::TrainingNotBuilt) => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        let pool = match &trainer {
            Some(trainer) => {
                self.refuse_mixed_families(trainer.as_dyn())?;
                Some(self.planned_pool()?)
            }
            None => None,
        };
        Ok(audit.run(
            &self.dir,
            trainer.as_ref().map(RunTrainer::as_dyn),
            pool.as_ref()
                .map(|p| &p.dataset as &dyn memia_data::Dataset),
            &self.labels,
            target.as_report(),
            progress,
        )?)
    }
}

/// Training that [`Run::check_training`] allowed.
pub struct CheckedTraining<'r> {
    run: &'r Run,
    trainer: &'r dyn ShadowTrainer,
    pool: &'r Pool,
}

impl CheckedTraining<'_> {
    /// Trains `models` of the run, skipping finished ones; `progress` follows each model.
    pub fn train(
        &self,
        models: Range<usize>,
        progress: impl FnMut(&memia_shadow::Progress),
    ) -> Result<TrainReport> {
        Ok(self
            .run
            .dir
            .train(self.trainer, &self.pool.dataset, models, progress)?)
    }

    /// [`CheckedTraining::train`] that stops after a group when `progress` answers `false`
    /// (the models trained so far are kept; [`TrainReport::stopped`] says so).
    pub fn train_while(
        &self,
        models: Range<usize>,
        progress: impl FnMut(&memia_shadow::Progress) -> bool,
    ) -> Result<TrainReport> {
        Ok(self
            .run
            .dir
            .train_while(self.trainer, &self.pool.dataset, models, progress)?)
    }
}

/// What [`Run::plan`] did.
#[derive(Debug)]
pub struct Planned {
    /// The run, opened.
    pub run: Run,
    /// The pool it was planned on (train on it without building it again).
    pub pool: Pool,
    /// Whether the same plan was there already.
    pub existed: bool,
    /// memia's files that changed (`memia.toml` when settings outside the plan changed).
    pub updated: Vec<&'static str>,
}

/// One target's scores from [`Run::score`].
#[derive(Debug, Clone, PartialEq)]
pub struct TargetScores {
    /// One score per sample: higher is member, NaN where the shadow models cannot judge it.
    pub scores: Vec<f64>,
    /// The target's membership, when known.
    pub members: Option<Vec<bool>>,
    /// Shadow models the attack was fitted on.
    pub shadow_models: usize,
}

impl TargetScores {
    /// The one evaluation ([`memia_attacks::evaluation`]) on every sample, then on each of
    /// `sets`, at `fprs`.
    pub fn evaluate(&self, sets: &[EvalGroup], fprs: &[f64]) -> Result<Vec<SetEvaluation>> {
        Ok(evaluate_sets(
            &self.scores,
            self.members.as_deref(),
            sets,
            fprs,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use memia_data::{Dataset, embedded};
    use memia_shadow::{InclusionScheme, Plan, SoftmaxRegression};
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    /// The command line's own files of a run (`memia.toml`, `pool.json`, `labels.npy`) and the
    /// configuration parser, fed random bytes and mutations of valid files: an error or a run,
    /// never a panic. `MEMIA_FUZZ_CASES` cases each (default 1,000).
    #[test]
    fn run_files_and_configurations_survive_corruption() {
        let cases = std::env::var("MEMIA_FUZZ_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000);
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().join("run");
        let pool = embedded::digits();
        let plan = Plan::new(
            &pool,
            2,
            InclusionScheme::Bernoulli { p: 0.5 },
            1,
            &SoftmaxRegression::default(),
        )
        .unwrap();
        RunDir::create(&run, &plan).unwrap();
        let info = PoolInfo {
            provenance: Some((0..pool.len()).map(|i| format!("digits:{i}")).collect()),
            groups: vec![EvalGroup {
                name: "canaries".into(),
                samples: vec![3, 5],
            }],
        };
        write_run_files(&run, Some(&RunConfig::digits()), &pool.labels(), &info).unwrap();
        for name in ["memia.toml", "pool.json", "labels.npy"] {
            let file = run.join(name);
            let valid = std::fs::read(&file).unwrap();
            let len = valid.len();
            let mutated = (prop::collection::vec((0..len, any::<u8>()), 0..8), 0..=len).prop_map({
                let valid = valid.clone();
                move |(changes, cut)| {
                    let mut bytes = valid.clone();
                    changes.into_iter().for_each(|(i, b)| bytes[i] = b);
                    bytes.truncate(cut);
                    bytes
                }
            });
            let inputs = prop_oneof![prop::collection::vec(any::<u8>(), 0..256), mutated];
            let mut runner = TestRunner::new(Config {
                cases,
                failure_persistence: None,
                ..Config::default()
            });
            runner
                .run(&inputs, |bytes| {
                    std::fs::write(&file, &bytes).unwrap();
                    let _ = Run::open(&run);
                    if name == "memia.toml" {
                        let text = String::from_utf8_lossy(&bytes);
                        let _ = RunConfig::parse(&text, &file, tmp.path());
                    }
                    Ok(())
                })
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            std::fs::write(&file, valid).unwrap();
        }
        assert!(Run::open(&run).is_ok());
    }
}

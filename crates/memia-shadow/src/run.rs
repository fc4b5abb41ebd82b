//! A run directory: the plan, the keep matrix, one logits file per finished model.
//!
//! ```text
//! RUN/
//!   plan.json               the plan and its content hash
//!   keep.npy                K x N bool
//!   logits/model_00000.npy  N x A x C float32, written to a temporary name, then renamed
//!   logits/model_00000.json what produced it (written just before the logits)
//!   manifest.json           which models are complete and what produced them (rebuilt from
//!                           the files in logits/)
//! ```
//!
//! The logits files are the ground truth: a model is complete exactly when its file exists, so
//! a run killed at any moment loses at most the models in progress, and several processes can
//! train disjoint shards of one run directory at once.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use memia_core::npy::{DType, read_file_header, write_npy};
use memia_core::{CoreError, KeepMatrix, Logits, atomic_write};
use memia_data::Dataset;
use ndarray::{Array3, ArrayView3};
use serde::{Deserialize, Serialize};

use crate::error::{Result, ShadowError, invalid, io, trainer as trainer_error};
use crate::plan::{InclusionScheme, Plan, keep_sha256};
use crate::trainer::{ModelJob, Producer, ShadowTrainer};

/// Age after which a temporary file in `logits/` is a leftover of a killed write: no write of
/// one model's logits takes this long, even on a slow shared file system.
const STALE_TEMPORARY: Duration = Duration::from_secs(3600);

/// `plan.json`: the plan with its hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PlanFile {
    content_hash: String,
    plan: Plan,
}

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    content_hash: String,
    models: usize,
    complete: Vec<usize>,
    /// The distinct producers of the complete models, each with the models it produced.
    #[serde(default)]
    producers: Vec<ProducedModels>,
}

/// One producer and the models it produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducedModels {
    /// What produced them; `None` for models whose producer was not recorded (written by an
    /// older memia, or copied into the run by hand).
    pub producer: Option<Producer>,
    /// Their indices, ascending.
    pub models: Vec<usize>,
}

impl std::fmt::Display for ProducedModels {
    /// `models 0..3, 5 by memia-models BurnTrainer (engine fused, ...)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} by ", model_ranges(&self.models))?;
        match &self.producer {
            Some(p) => write!(f, "{p}"),
            None => f.write_str("an unrecorded producer"),
        }
    }
}

/// Ascending model indices as ranges (end exclusive, as `--models` takes them):
/// `[0, 1, 2, 5]` -> `models 0..3, 5`; `[4]` -> `model 4`; `[]` -> `no model`.
pub fn model_ranges(models: &[usize]) -> String {
    let mut runs: Vec<String> = Vec::new();
    let mut rest = models.iter().copied().peekable();
    while let Some(start) = rest.next() {
        let mut end = start + 1;
        while rest.next_if_eq(&end).is_some() {
            end += 1;
        }
        runs.push(if end == start + 1 {
            start.to_string()
        } else {
            format!("{start}..{end}")
        });
    }
    match models.len() {
        0 => "no model".into(),
        1 => format!("model {}", runs[0]),
        _ => format!("models {}", runs.join(", ")),
    }
}

/// Progress of a `train` call, reported after every group.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Models finished by this call.
    pub done: usize,
    /// Models this call has to train (already finished ones excluded).
    pub total: usize,
    /// Models skipped because they were already finished.
    pub skipped: usize,
    /// Time since the call started.
    pub elapsed: Duration,
}

impl Progress {
    /// Models per second so far.
    pub fn models_per_second(&self) -> f64 {
        self.done as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Estimated time left at the current rate.
    pub fn remaining(&self) -> Option<Duration> {
        (self.done > 0).then(|| {
            Duration::from_secs_f64((self.total - self.done) as f64 / self.models_per_second())
        })
    }
}

impl std::fmt::Display for Progress {
    /// `trained 8/16 models, 1.52 models/s, about 5 s left`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "trained {}/{} models, {:.2} models/s",
            self.done,
            self.total,
            self.models_per_second()
        )?;
        if let Some(left) = self.remaining().filter(|_| self.done < self.total) {
            write!(f, ", about {:.0} s left", left.as_secs_f64())?;
        }
        Ok(())
    }
}

/// What a `train` call did.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainReport {
    /// Models trained by this call.
    pub trained: Vec<usize>,
    /// Models in the range that were already complete.
    pub skipped: Vec<usize>,
    /// Wall time.
    pub elapsed: Duration,
    /// Whether the caller's progress asked to stop before every model was trained
    /// ([`RunDir::train_while`]); the trained models are kept.
    pub stopped: bool,
}

/// What a `train` call knows of the run's complete models between two groups.
struct KnownComplete {
    /// Models known complete: checked at the start of the call, written by it, or found
    /// complete since.
    done: Vec<bool>,
    /// Each known complete model's producer once read (`Some(None)`: none recorded).
    producers: Vec<Option<Option<Producer>>>,
}

/// Models stored into a run one by one ([`RunDir::storing`]), with the manifest kept from
/// what the session knows. Dropping it without [`Storing::finish`] leaves every stored model
/// in place; the next command that opens the run brings the manifest up to date.
pub struct Storing<'r> {
    run: &'r RunDir,
    known: KnownComplete,
    /// When the manifest was last written.
    written: Instant,
}

/// How often a [`Storing`] session rewrites the manifest.
const MANIFEST_EVERY: Duration = Duration::from_secs(5);

impl Storing<'_> {
    /// Checks and stores model `k`'s logits with their producer (replacing the file of a
    /// model stored before). With `file`, the file they were read from, the run links it
    /// rather than copying it where it can (little-endian float32 in C order of the run's
    /// shape, on the same filesystem): the run then shares the file, so it must not be
    /// changed in place afterwards. Returns whether it was linked.
    pub fn store(
        &mut self,
        k: usize,
        logits: ArrayView3<'_, f32>,
        file: Option<&Path>,
        producer: &Producer,
    ) -> Result<bool> {
        let models = self.run.plan.models;
        if k >= models {
            return Err(invalid(
                "model",
                format!("{k} is not one of the plan's {models} models"),
            ));
        }
        let linked = self.run.write_or_link_model(k, logits, file, producer)?;
        self.known.done[k] = true;
        self.known.producers[k] = Some(Some(producer.clone()));
        if self.written.elapsed() >= MANIFEST_EVERY {
            self.write_manifest()?;
        }
        Ok(linked)
    }

    /// The manifest of what the session knows and what other processes (concurrent shards)
    /// finished since: one listing of `logits/`, a header read of each new file.
    fn write_manifest(&mut self) -> Result<()> {
        self.run.update_manifest(&mut self.known)?;
        self.written = Instant::now();
        Ok(())
    }

    /// Writes the manifest of everything stored.
    pub fn finish(mut self) -> Result<()> {
        self.write_manifest()
    }
}

/// An open run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
    plan: Plan,
    hash: String,
    keep: KeepMatrix,
}

impl RunDir {
    /// Creates the run directory for `plan`, or opens it if it already holds the same plan.
    /// A directory holding a different plan (another hash) is refused.
    pub fn create(path: impl AsRef<Path>, plan: &Plan) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(run) = Self::open_same(&path, plan)? {
            return Ok(run);
        }
        let keep = plan.keep_matrix()?;
        Self::create_with_keep(path, plan, keep)
    }

    /// [`RunDir::create`] in `root/<the first 16 hex digits of the plan's hash>`: one directory
    /// per plan under a common root, found again by the same plan.
    pub fn create_in(root: impl AsRef<Path>, plan: &Plan) -> Result<Self> {
        Self::create(root.as_ref().join(&plan.content_hash()[..16]), plan)
    }

    /// Creates the run directory of a [`Plan::given`] plan with its keep matrix, or opens it if
    /// it already holds the same plan. Its models' outputs are then recorded with
    /// [`RunDir::store`].
    pub fn create_given(path: impl AsRef<Path>, plan: &Plan, keep: &KeepMatrix) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        match &plan.scheme {
            InclusionScheme::Given { sha256 } if *sha256 == keep_sha256(keep) => {}
            _ => {
                return Err(invalid(
                    "keep",
                    "the plan does not record this keep matrix (build it with Plan::given)",
                ));
            }
        }
        if let Some(run) = Self::open_same(&path, plan)? {
            return Ok(run);
        }
        Self::create_with_keep(path, plan, keep.clone())
    }

    /// The run in `path` if there is one: it must hold `plan` (same hash, same model count).
    fn open_same(path: &Path, plan: &Plan) -> Result<Option<Self>> {
        if !path.join("plan.json").exists() {
            return Ok(None);
        }
        let run = Self::open(path)?;
        let mismatch = |reason: String| ShadowError::PlanMismatch {
            path: path.to_path_buf(),
            reason,
        };
        if run.hash != plan.content_hash() {
            return Err(mismatch(format!(
                "holds a run of plan {} but this plan hashes to {}: use another directory, or the plan that made it",
                run.hash,
                plan.content_hash()
            )));
        }
        if run.plan.models != plan.models {
            return Err(mismatch(format!(
                "holds {} models, this plan {}: use RunDir::extend to add models",
                run.plan.models, plan.models
            )));
        }
        Ok(Some(run))
    }

    fn create_with_keep(path: PathBuf, plan: &Plan, keep: KeepMatrix) -> Result<Self> {
        std::fs::create_dir_all(path.join("logits")).map_err(|e| io(&path, e))?;
        keep.save(path.join("keep.npy"))?;
        let run = RunDir {
            hash: plan.content_hash(),
            plan: plan.clone(),
            keep,
            path,
        };
        run.write_plan()?;
        run.write_manifest()?;
        Ok(run)
    }

    /// Opens an existing run directory, checking that `plan.json` and `keep.npy` agree.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let plan_path = path.join("plan.json");
        let text = std::fs::read_to_string(&plan_path).map_err(|e| io(&plan_path, e))?;
        let file: PlanFile = serde_json::from_str(&text).map_err(|e| ShadowError::Json {
            path: plan_path.clone(),
            reason: e.to_string(),
        })?;
        let hash = file.plan.content_hash();
        if hash != file.content_hash {
            return Err(ShadowError::PlanMismatch {
                path: plan_path,
                reason: format!(
                    "records hash {} but its plan hashes to {hash}: the file was edited",
                    file.content_hash
                ),
            });
        }
        let keep = KeepMatrix::load(path.join("keep.npy"))?;
        let agrees = match &file.plan.scheme {
            InclusionScheme::Given { sha256 } => *sha256 == keep_sha256(&keep),
            _ => keep == file.plan.keep_matrix()?,
        };
        if !agrees {
            return Err(ShadowError::PlanMismatch {
                path: path.join("keep.npy"),
                reason: "differs from the keep matrix the plan determines".into(),
            });
        }
        Ok(RunDir {
            path,
            plan: file.plan,
            hash,
            keep,
        })
    }

    /// The plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The keep matrix.
    pub fn keep(&self) -> &KeepMatrix {
        &self.keep
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Path of model `k`'s logits file.
    pub fn logits_path(&self, k: usize) -> PathBuf {
        self.path.join("logits").join(format!("model_{k:05}.npy"))
    }

    /// Path of model `k`'s training trajectory: its logits on every pool sample's plain input
    /// after each checkpoint epoch, N x T x C float32 (written when the trainer records one,
    /// for example memia's fused engine with `checkpoint_every`; an external trainer or an
    /// import may write it itself, in the same format).
    pub fn trajectory_path(&self, k: usize) -> PathBuf {
        self.path
            .join("trajectories")
            .join(format!("model_{k:05}.npy"))
    }

    /// The training trajectories of `models`, K x N x T x C (the checkpoints on the queries'
    /// axis, so that [`Logits::signals`] gives each sample's signal at each checkpoint). The
    /// models must be complete (a trajectory is written just before its model's logits, so a
    /// training killed in between leaves one of an unfinished model), and every file must
    /// exist, hold the run's samples and classes, finite values, and the same number of
    /// checkpoints; the error names the first that does not.
    pub fn trajectories(&self, models: &[usize]) -> Result<Logits> {
        self.check_models(models)?;
        self.require_complete(models)?;
        let [n, _, classes] = self.expected_logits_shape();
        let mut read: Vec<Array3<f32>> = Vec::with_capacity(models.len());
        for &k in models {
            let path = self.trajectory_path(k);
            if !path.exists() {
                return Err(invalid(
                    "trajectories",
                    format!(
                        "model {k} has no training trajectory ({} is missing): train with \
                         `checkpoint_every`, or write it as N x T x C float32 logits",
                        path.display()
                    ),
                ));
            }
            // The first file gives the number of checkpoints (its samples and classes checked
            // after reading); every other file is read against the whole shape.
            let first = read.first().map(|t| [n, t.dim().1, classes]);
            let trajectory = self.read_model_file(k, &path, first, "trajectory ")?;
            let (found_n, t, found_c) = trajectory.dim();
            if first.is_none() {
                if [found_n, found_c] != [n, classes] {
                    let problem = memia_core::LogitsProblem::Shape {
                        found: [found_n, t, found_c],
                        expected: [n, t, classes],
                    };
                    return Err(ShadowError::BadLogits {
                        model: k,
                        reason: format!("trajectory {}: {problem}", path.display()),
                    });
                }
                // All of them, read and stacked: refused where they cannot be held.
                crate::MemoryLimit::detect()?.check(
                    "models",
                    models.len().to_string(),
                    format!(
                        "reading the trajectories of {} models ({n} samples x {t} checkpoints x {classes} classes, float32, read and stacked)",
                        models.len()
                    ),
                    crate::memory::checked_product(&[
                        models.len() as u64,
                        n as u64,
                        t as u64,
                        classes as u64,
                        4,
                        2,
                    ]),
                )?;
            }
            read.push(trajectory);
        }
        let views: Vec<ArrayView3<'_, f32>> = read.iter().map(|t| t.view()).collect();
        Ok(Logits::from_models(&views)?)
    }

    /// Reads and checks (every value, and the shape where `expected`) model `k`'s output file
    /// `path` (its logits, or with `what = "trajectory "` its trajectory); a problem is named by
    /// the file and the run's model index, not later by its index in a selection.
    fn read_model_file(
        &self,
        k: usize,
        path: &Path,
        expected: Option<[usize; 3]>,
        what: &str,
    ) -> Result<Array3<f32>> {
        match memia_core::read_model_logits(path, expected) {
            Ok(model) => Ok(model.logits),
            Err(CoreError::ModelLogits { path, problem }) => Err(ShadowError::BadLogits {
                model: k,
                reason: format!("{what}{}: {problem}", path.display()),
            }),
            Err(other) => Err(other.into()),
        }
    }

    /// Checks model `k`'s outputs (its logits, or with `what` its trajectory) against
    /// `expected` before they are written.
    fn check_outputs(
        k: usize,
        outputs: ArrayView3<'_, f32>,
        expected: [usize; 3],
        what: &str,
    ) -> Result<()> {
        memia_core::check_model_logits(outputs, Some(expected)).map_err(|problem| {
            let hint = match problem {
                memia_core::LogitsProblem::NotFinite { .. } => " (training diverged?)",
                _ => "",
            };
            ShadowError::BadLogits {
                model: k,
                reason: format!("{what}{problem}{hint}"),
            }
        })
    }

    /// Checks and writes model `k`'s training trajectory (N x T x C) into `trajectories/`
    /// (made by the caller).
    fn write_trajectory(&self, k: usize, trajectory: ArrayView3<'_, f32>) -> Result<()> {
        let [n, _, classes] = self.expected_logits_shape();
        let expected = [n, trajectory.dim().1, classes];
        Self::check_outputs(k, trajectory, expected, "its training trajectory: ")?;
        write_npy(self.trajectory_path(k), &trajectory)?;
        Ok(())
    }

    /// Which models are complete: their logits file exists, with the expected shape, as
    /// little-endian float32, and as long as its header says. A file of another shape belongs
    /// to another plan (an error); a damaged one (truncated, another element type, a header
    /// that does not parse) counts as not complete, so that training writes it again.
    pub fn completed(&self) -> Result<Vec<bool>> {
        (0..self.plan.models).map(|k| self.is_complete(k)).collect()
    }

    /// Whether model `k` is complete, as [`RunDir::completed`] says: one read of its file's
    /// header, none of its data.
    fn is_complete(&self, k: usize) -> Result<bool> {
        #[cfg(test)]
        header_reads::count();
        let path = self.logits_path(k);
        let file = match read_file_header(&path) {
            Ok(file) => file,
            Err(CoreError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Ok(false);
            }
            Err(CoreError::Io { path, source }) => return Err(io(path, source)),
            // A header that does not parse: a damaged file, written again by training.
            Err(_) => return Ok(false),
        };
        // N x A x C, or the same bytes as N x C (one query) or N x 1 x A x C (a linked LiRA
        // reference file).
        let expected = self.expected_logits_shape();
        if memia_core::model_shape_of(&file.header.shape) != Some(expected) {
            return Err(ShadowError::PlanMismatch {
                path,
                reason: format!(
                    "logits of shape {:?}, the plan expects {expected:?}",
                    file.header.shape
                ),
            });
        }
        Ok(
            file.header.descr == DType::F32.descr()
                && !file.header.fortran_order
                && file.is_whole(),
        )
    }

    /// The models whose logits file is in `logits/` under its final name, whole or not: one
    /// directory read, no file opened.
    fn listed_models(&self) -> Result<Vec<usize>> {
        let dir = self.path.join("logits");
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&dir, e)),
        };
        let mut models = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io(&dir, e))?;
            let name = entry.file_name();
            let Some(k) = name
                .to_str()
                .and_then(|n| n.strip_prefix("model_")?.strip_suffix(".npy"))
                .filter(|digits| digits.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|digits| digits.parse::<usize>().ok())
            else {
                continue;
            };
            // Only the name `logits_path` gives (`model_1.npy` is not model 1's file).
            if k < self.plan.models && self.logits_path(k).file_name() == Some(name.as_os_str()) {
                models.push(k);
            }
        }
        Ok(models)
    }

    /// Removes temporary files that a killed write left in `logits/` (`.model_*.RANDOM.tmp`, and
    /// the `.model_*.tmp-PID` of older memia), once they are older than `age`, so that a
    /// concurrent shard's write in progress is left alone.
    fn remove_stale_temporaries(&self, age: Duration) {
        for dir in ["logits", "trajectories"] {
            memia_core::remove_stale_temporaries_in(
                &self.path.join(dir),
                |name| memia_core::is_temporary_name(name, "model_"),
                age,
            );
        }
    }

    /// The shape every model's logits have in this run: samples x queries x classes.
    pub fn expected_logits_shape(&self) -> [usize; 3] {
        [
            self.plan.pool.samples,
            self.plan.queries,
            self.plan.pool.classes,
        ]
    }

    /// Trains the models in `models` (a shard; `0..K` for all) that are not complete yet, in
    /// groups of `trainer.group_size()`, writing each one's logits as soon as its group is done.
    /// `progress` is called after each group.
    pub fn train(
        &self,
        trainer: &dyn ShadowTrainer,
        pool: &dyn Dataset,
        models: Range<usize>,
        mut progress: impl FnMut(&Progress),
    ) -> Result<TrainReport> {
        self.train_while(trainer, pool, models, |p| {
            progress(p);
            true
        })
    }

    /// [`RunDir::train`] that stops after a group when `progress` answers `false` (an
    /// interrupt from a front-end that cannot be killed, such as a Python session): the models
    /// trained so far are written, the others stay missing, and the report says it stopped.
    pub fn train_while(
        &self,
        trainer: &dyn ShadowTrainer,
        pool: &dyn Dataset,
        models: Range<usize>,
        mut progress: impl FnMut(&Progress) -> bool,
    ) -> Result<TrainReport> {
        if models.start > models.end || models.end > self.plan.models {
            return Err(invalid(
                "models",
                format!(
                    "{models:?} is not a range within the plan's {} models",
                    self.plan.models
                ),
            ));
        }
        if let InclusionScheme::Given { .. } = self.plan.scheme {
            return Err(invalid(
                "plan",
                "this run's outputs were made elsewhere (a given keep matrix): they are stored, not trained",
            ));
        }
        if !self.plan.pool.describes(pool) {
            return Err(ShadowError::PlanMismatch {
                path: self.path.clone(),
                reason: format!(
                    "the pool '{}' is not the one this run was planned on (its fingerprint differs)",
                    pool.name()
                ),
            });
        }
        if trainer.config() != self.plan.trainer || trainer.queries() != self.plan.queries {
            return Err(ShadowError::PlanMismatch {
                path: self.path.clone(),
                reason: format!(
                    "the trainer's settings {} differ from the plan's {}",
                    trainer.config(),
                    self.plan.trainer
                ),
            });
        }
        // A deleted logits/ folder is made again; leftovers of killed writes are removed.
        let logits_dir = self.path.join("logits");
        std::fs::create_dir_all(&logits_dir).map_err(|e| io(&logits_dir, e))?;
        self.remove_stale_temporaries(STALE_TEMPORARY);
        let done = self.completed()?;
        let (todo, skipped): (Vec<usize>, Vec<usize>) = models.partition(|&k| !done[k]);
        let mut known = KnownComplete {
            producers: vec![None; done.len()],
            done,
        };
        let start = Instant::now();
        let group = trainer.group_size().max(1);
        let producer = trainer.producer();
        let mut trained = Vec::with_capacity(todo.len());
        // A group this machine cannot hold is refused before the trainer allocates it (the
        // plan was checked where it was made, perhaps on another machine or group size).
        if !todo.is_empty() {
            crate::memory::check_training(
                trainer,
                pool,
                group.min(todo.len()),
                &crate::MemoryLimit::detect()?,
            )?;
        }
        let mut session = if todo.is_empty() {
            None
        } else {
            trainer
                .session(pool)
                .map_err(|source| trainer_error(&todo, source))?
        };
        let groups = todo.chunks(group).len();
        for (g, chunk) in todo.chunks(group).enumerate() {
            let jobs: Vec<ModelJob> = chunk
                .iter()
                .map(|&k| ModelJob {
                    index: k,
                    seed: self.plan.model_seed(k),
                    train: (0..self.plan.pool.samples)
                        .filter(|&i| self.keep.get(k, i))
                        .collect(),
                })
                .collect();
            let outputs = match session.as_mut() {
                Some(session) => session.train_group(&jobs),
                None => trainer.train_group(pool, &jobs),
            }
            .map_err(|source| trainer_error(chunk, source))?;
            if outputs.len() != jobs.len() {
                return Err(trainer_error(
                    chunk,
                    format!(
                        "the trainer returned {} outputs for {} models",
                        outputs.len(),
                        jobs.len()
                    ),
                ));
            }
            let trajectories = session.as_mut().and_then(|s| s.take_trajectories());
            if let Some(t) = &trajectories {
                if t.len() != jobs.len() {
                    return Err(trainer_error(
                        chunk,
                        format!(
                            "the trainer returned {} trajectories for {} models",
                            t.len(),
                            jobs.len()
                        ),
                    ));
                }
                let dir = self.path.join("trajectories");
                std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
            }
            for (j, (&k, logits)) in chunk.iter().zip(&outputs).enumerate() {
                // The trajectory first: a complete model has the trajectory it was trained with.
                if let Some(trajectories) = &trajectories {
                    self.write_trajectory(k, trajectories[j].view())?;
                }
                self.write_model(k, logits.view(), &producer)?;
                known.done[k] = true;
                known.producers[k] = Some(Some(producer.clone()));
                trained.push(k);
            }
            if g + 1 == groups {
                // The last group: every model's file checked again, as a reading command would.
                self.write_manifest()?;
            } else {
                self.update_manifest(&mut known)?;
            }
            let go_on = progress(&Progress {
                done: trained.len(),
                total: todo.len(),
                skipped: skipped.len(),
                elapsed: start.elapsed(),
            });
            if !go_on && g + 1 < groups {
                self.write_manifest()?;
                return Ok(TrainReport {
                    trained,
                    skipped,
                    elapsed: start.elapsed(),
                    stopped: true,
                });
            }
        }
        Ok(TrainReport {
            trained,
            skipped,
            elapsed: start.elapsed(),
            stopped: false,
        })
    }

    /// Records model `k`'s logits (N x A x C) produced elsewhere, for example by an imported
    /// run, with the same checks and atomic write as trained models, and what produced them.
    pub fn store(&self, k: usize, logits: ArrayView3<'_, f32>, producer: &Producer) -> Result<()> {
        let mut storing = self.storing_from_manifest()?;
        storing.store(k, logits, None, producer)?;
        storing.finish()
    }

    /// A session of many [`Storing::store`]s (an import): the run's files are checked once
    /// here, and the manifest is written from what the session knows, at most every few
    /// seconds and at [`Storing::finish`], so storing K models costs O(K), not O(K^2).
    pub fn storing(&self) -> Result<Storing<'_>> {
        let done = self.completed()?;
        Ok(Storing {
            run: self,
            known: KnownComplete {
                producers: vec![None; done.len()],
                done,
            },
            written: Instant::now(),
        })
    }

    /// A session that knows the complete models from `manifest.json` (when it is this plan's)
    /// and a listing of `logits/`, reading the header of only the files the manifest does not
    /// name: what one [`RunDir::store`] costs.
    fn storing_from_manifest(&self) -> Result<Storing<'_>> {
        let path = self.path.join("manifest.json");
        let manifest = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| serde_json::from_str::<Manifest>(&text).ok())
            .filter(|m| m.content_hash == self.hash && m.models == self.plan.models);
        let Some(manifest) = manifest else {
            return self.storing();
        };
        let mut known = KnownComplete {
            done: vec![false; self.plan.models],
            producers: vec![None; self.plan.models],
        };
        let mut listed = vec![false; self.plan.models];
        for k in self.listed_models()? {
            listed[k] = true;
        }
        // A model the manifest names counts only while its file is there.
        for group in manifest.producers {
            for &k in group
                .models
                .iter()
                .filter(|&&k| k < self.plan.models && listed[k])
            {
                known.done[k] = true;
                known.producers[k] = Some(group.producer.clone());
            }
        }
        for k in (0..self.plan.models).filter(|&k| listed[k]) {
            if !known.done[k] && self.is_complete(k)? {
                known.done[k] = true;
            }
        }
        Ok(Storing {
            run: self,
            known,
            written: Instant::now(),
        })
    }

    /// Refuses a model index outside the plan.
    fn check_models(&self, models: &[usize]) -> Result<()> {
        match models.iter().find(|&&k| k >= self.plan.models) {
            Some(&bad) => Err(invalid(
                "models",
                format!(
                    "model {bad} is not in the plan's {} models",
                    self.plan.models
                ),
            )),
            None => Ok(()),
        }
    }

    /// Refuses, naming the first and counting them, models of `models` that are not complete.
    fn require_complete(&self, models: &[usize]) -> Result<()> {
        let done = self.completed()?;
        let missing: Vec<usize> = models.iter().copied().filter(|&k| !done[k]).collect();
        match missing.first() {
            Some(&first) => Err(ShadowError::Incomplete {
                path: self.path.clone(),
                missing: missing.len(),
                models: models.len(),
                first,
            }),
            None => Ok(()),
        }
    }

    /// The models `models` as a source of logits read one file at a time, for an analysis that
    /// keeps `signals` float64 signals of them (K' x N x A each: [`memia_core::Signals`]), so
    /// of any size in the memory of its signals. Refused, before anything is read, if that
    /// memory (and one model's logits, read and decoded) is more than the machine has; an error
    /// naming the first missing model if some are not complete. Model `k` of the source is
    /// model `k` of the run.
    pub fn logits_files(&self, models: &[usize], signals: usize) -> Result<memia_core::ModelFiles> {
        self.check_models(models)?;
        let [n, a, c] = self.expected_logits_shape();
        let (kept, one_model) = (
            crate::memory::checked_product(&[
                models.len() as u64,
                n as u64,
                a as u64,
                signals as u64,
                8,
            ]),
            crate::memory::checked_product(&[n as u64, a as u64, c as u64, 4, 2]),
        );
        crate::MemoryLimit::detect()?.check(
            "models",
            models.len().to_string(),
            format!(
                "{signals} signal{} of {} models ({n} samples x {a} queries, float64), read one model at a time",
                if signals == 1 { "" } else { "s" },
                models.len()
            ),
            kept.and_then(|k| k.checked_add(one_model?)),
        )?;
        self.require_complete(models)?;
        let files = (0..self.plan.models).map(|k| self.logits_path(k)).collect();
        Ok(memia_core::ModelFiles::new(
            files,
            Some(self.expected_logits_shape()),
        )?)
    }

    /// Path of the record of what produced model `k`'s logits.
    fn producer_path(&self, k: usize) -> PathBuf {
        self.logits_path(k).with_extension("json")
    }

    /// Checks and writes model `k`'s logits, its producer first: a model whose logits exist
    /// always has the record of the run that wrote them.
    fn write_model(
        &self,
        k: usize,
        logits: ArrayView3<'_, f32>,
        producer: &Producer,
    ) -> Result<()> {
        self.write_or_link_model(k, logits, None, producer)
            .map(drop)
    }

    /// Checks model `k`'s `logits` and records them with their producer: as a hard link to
    /// `file` where it is given, holds exactly these logits as little-endian float32 in
    /// C order, and lies on the run's filesystem; written otherwise. Returns whether it linked.
    fn write_or_link_model(
        &self,
        k: usize,
        logits: ArrayView3<'_, f32>,
        file: Option<&Path>,
        producer: &Producer,
    ) -> Result<bool> {
        Self::check_outputs(k, logits, self.expected_logits_shape(), "")?;
        let text = serde_json::to_string_pretty(producer).expect("producers serialise");
        atomic_write(&self.producer_path(k), |f| {
            std::io::Write::write_all(f, text.as_bytes())
        })?;
        if let Some(file) = file
            && self.links(file)?
        {
            match memia_core::hard_link_atomically(file, &self.logits_path(k)) {
                Ok(()) => return Ok(true),
                // Another filesystem, or one without hard links: written instead.
                Err(CoreError::Io { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        write_npy(self.logits_path(k), &logits)?;
        Ok(false)
    }

    /// Whether `file` can stand as one of this run's model files as it is: little-endian
    /// float32 in C order, of the run's shape (any layout of the same bytes), whole.
    fn links(&self, file: &Path) -> Result<bool> {
        Ok(memia_core::is_plain_f32_file(
            file,
            self.expected_logits_shape(),
        )?)
    }

    /// What produced each complete model, grouped by producer (in order of their first model).
    /// One entry means the run is of one producer; more mean it mixes them, and its outputs
    /// are only as comparable as those producers' (see each trainer's determinism contract).
    pub fn producers(&self) -> Result<Vec<ProducedModels>> {
        Self::group_producers(&self.completed()?, |k| self.read_producer(k))
    }

    /// The complete models (`done`) grouped by producer, `producer_of` giving each one's.
    fn group_producers(
        done: &[bool],
        mut producer_of: impl FnMut(usize) -> Result<Option<Producer>>,
    ) -> Result<Vec<ProducedModels>> {
        let mut groups: Vec<ProducedModels> = Vec::new();
        for (k, &done) in done.iter().enumerate() {
            if !done {
                continue;
            }
            let producer = producer_of(k)?;
            match groups.iter_mut().find(|g| g.producer == producer) {
                Some(group) => group.models.push(k),
                None => groups.push(ProducedModels {
                    producer,
                    models: vec![k],
                }),
            }
        }
        Ok(groups)
    }

    /// The recorded producer of model `k`, `None` where there is no record.
    fn read_producer(&self, k: usize) -> Result<Option<Producer>> {
        let path = self.producer_path(k);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(serde_json::from_str::<Producer>(&text).map_err(
                |e| ShadowError::Json {
                    path: path.clone(),
                    reason: e.to_string(),
                },
            )?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path, e)),
        }
    }

    /// All models' logits, K x N x A x C; fails if any model is missing.
    pub fn logits(&self) -> Result<Logits> {
        self.logits_of(&(0..self.plan.models).collect::<Vec<_>>())
    }

    /// The logits of the models `models`, in that order (e.g. the shadow models trained so far
    /// in a sequential audit); fails if one of them is missing or outside the plan.
    pub fn logits_of(&self, models: &[usize]) -> Result<Logits> {
        self.check_models(models)?;
        // Each model's array, then all of them stacked: refused before reading where they
        // cannot be held.
        let (n, a, c) = (
            self.plan.pool.samples,
            self.plan.queries,
            self.plan.pool.classes,
        );
        crate::MemoryLimit::detect()?.check(
            "models",
            models.len().to_string(),
            format!("reading the logits of {} models ({n} samples x {a} queries x {c} classes, float32, read and stacked)", models.len()),
            crate::memory::checked_product(&[models.len() as u64, n as u64, a as u64, c as u64, 4, 2]),
        )?;
        self.require_complete(models)?;
        let models: Vec<Array3<f32>> = models
            .iter()
            .map(|&k| {
                // The one reader of a model's logits: any layout of the run's shape (a linked
                // N x 1 x A x C file too), every logit checked; named here by its file and run
                // index, not later by its index in a selection.
                self.read_model_file(k, &self.logits_path(k), Some([n, a, c]), "")
            })
            .collect::<Result<_>>()?;
        let views: Vec<_> = models.iter().map(|m| m.view()).collect();
        Ok(Logits::from_models(&views)?)
    }

    /// Grows the plan to `models` models. Only for extendable schemes (Bernoulli, fixed-size):
    /// the existing models keep their subsets and outputs, the new ones are then trained by
    /// [`RunDir::train`].
    pub fn extend(&mut self, models: usize) -> Result<()> {
        if !self.plan.scheme.extendable() {
            return Err(invalid(
                "models",
                "a balanced plan's subsets depend on the number of models, so it cannot be extended; plan a new run",
            ));
        }
        if models < self.plan.models {
            return Err(invalid(
                "models",
                format!(
                    "{models} is fewer than the {} models already planned",
                    self.plan.models
                ),
            ));
        }
        let mut plan = self.plan.clone();
        plan.models = models;
        let keep = plan.keep_matrix()?;
        debug_assert_eq!(
            keep.select_models(&(0..self.plan.models).collect::<Vec<_>>())?,
            self.keep
        );
        keep.save(self.path.join("keep.npy"))?;
        self.plan = plan;
        self.keep = keep;
        self.write_plan()?;
        self.write_manifest()
    }

    fn write_plan(&self) -> Result<()> {
        let file = PlanFile {
            content_hash: self.hash.clone(),
            plan: self.plan.clone(),
        };
        let text = serde_json::to_string_pretty(&file).expect("plans serialise");
        Ok(atomic_write(&self.path.join("plan.json"), |f| {
            std::io::Write::write_all(f, text.as_bytes())
        })?)
    }

    /// Rewrites `manifest.json` from the files present in `logits/`.
    fn write_manifest(&self) -> Result<()> {
        self.refresh_manifest().map(drop)
    }

    /// Rewrites `manifest.json` if it no longer matches the files in `logits/` (models written
    /// or removed by hand since the last train); returns whether it did. Reading commands call
    /// it so that the manifest does not go stale.
    pub fn refresh_manifest(&self) -> Result<bool> {
        self.write_manifest_of(self.producers()?)
    }

    /// The manifest between two groups of `train`: the models `known` holds complete, and those
    /// another process (a concurrent shard) has finished since, found by one read of `logits/`
    /// and a header read of each file not known complete yet. So its cost grows with the new
    /// files, not with the run; the last group's manifest checks every file again.
    fn update_manifest(&self, known: &mut KnownComplete) -> Result<()> {
        for k in self.listed_models()? {
            if !known.done[k] && self.is_complete(k)? {
                known.done[k] = true;
            }
        }
        let KnownComplete { done, producers } = known;
        let producers = Self::group_producers(done, |k| match &producers[k] {
            Some(producer) => Ok(producer.clone()),
            None => {
                let producer = self.read_producer(k)?;
                producers[k] = Some(producer.clone());
                Ok(producer)
            }
        })?;
        self.write_manifest_of(producers).map(drop)
    }

    /// Writes `manifest.json` listing the complete models `producers` groups, unless it already
    /// says so; returns whether it wrote.
    fn write_manifest_of(&self, producers: Vec<ProducedModels>) -> Result<bool> {
        let mut complete: Vec<usize> = producers
            .iter()
            .flat_map(|g| g.models.iter().copied())
            .collect();
        complete.sort_unstable();
        let manifest = Manifest {
            content_hash: self.hash.clone(),
            models: self.plan.models,
            complete,
            producers,
        };
        let text = serde_json::to_string_pretty(&manifest).expect("manifests serialise");
        let path = self.path.join("manifest.json");
        if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
            return Ok(false);
        }
        atomic_write(&path, |f| std::io::Write::write_all(f, text.as_bytes()))?;
        Ok(true)
    }
}

/// Counts this thread's header reads of logits files, for the tests that bound them.
#[cfg(test)]
mod header_reads {
    use std::cell::Cell;

    thread_local! {
        static READS: Cell<usize> = const { Cell::new(0) };
    }

    pub(super) fn count() {
        READS.with(|r| r.set(r.get() + 1));
    }

    /// The reads since the last call.
    pub(super) fn take() -> usize {
        READS.with(|r| r.replace(0))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn model_ranges_read_as_shards() {
        use super::model_ranges;
        assert_eq!(model_ranges(&[0, 1, 2, 5, 7, 8]), "models 0..3, 5, 7..9");
        assert_eq!(model_ranges(&[4]), "model 4");
        assert_eq!(model_ranges(&[]), "no model");
    }

    use super::*;

    #[test]
    fn produced_models_read_as_ranges() {
        let group = ProducedModels {
            producer: Some(Producer::new("t").with("engine", "fused")),
            models: vec![0, 1, 2, 5, 7, 8],
        };
        assert_eq!(
            group.to_string(),
            "models 0..3, 5, 7..9 by t (engine fused)"
        );
        let one = ProducedModels {
            producer: None,
            models: vec![4],
        };
        assert_eq!(one.to_string(), "model 4 by an unrecorded producer");
    }

    #[test]
    fn progress_reads_as_a_line() {
        let p = Progress {
            done: 4,
            total: 16,
            skipped: 0,
            elapsed: Duration::from_secs(2),
        };
        assert_eq!(
            p.to_string(),
            "trained 4/16 models, 2.00 models/s, about 6 s left"
        );
        let finished = Progress { done: 16, ..p };
        assert_eq!(finished.to_string(), "trained 16/16 models, 8.00 models/s");
    }

    use std::sync::atomic::{AtomicBool, Ordering};

    use memia_data::{Dataset, InMemoryDataset, embedded};
    use ndarray::Array3;

    use crate::{ModelJob, SoftmaxRegression, TrainerError};

    fn pool() -> InMemoryDataset {
        let digits = embedded::digits();
        InMemoryDataset::from_dataset(&digits.subset((0..80).collect()).unwrap())
    }

    fn softmax() -> SoftmaxRegression {
        SoftmaxRegression {
            epochs: 2,
            group_size: 1,
            ..Default::default()
        }
    }

    fn plan(models: usize, trainer: &dyn ShadowTrainer) -> Plan {
        Plan::new(
            &pool(),
            models,
            InclusionScheme::Balanced { ratio: 0.5 },
            7,
            trainer,
        )
        .unwrap()
    }

    fn manifest(run: &RunDir) -> Manifest {
        let text = std::fs::read_to_string(run.path().join("manifest.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn a_run_of_k_models_reads_each_header_a_bounded_number_of_times() {
        // One model per group: rebuilding the manifest from every header after each group
        // read K + K * K headers (156 for K = 12); reading only the new files reads K at the
        // start and K for the last group's full check.
        const K: usize = 12;
        let dir = tempfile::tempdir().unwrap();
        let trainer = softmax();
        let run = RunDir::create(dir.path(), &plan(K, &trainer)).unwrap();
        header_reads::take();
        let mut groups = 0;
        let report = run.train(&trainer, &pool(), 0..K, |_| groups += 1).unwrap();
        assert_eq!((report.trained.len(), groups), (K, K));
        assert_eq!(header_reads::take(), 2 * K);
        assert_eq!(manifest(&run).complete, (0..K).collect::<Vec<_>>());
        // A full refresh still reads every header once, and finds the manifest current.
        assert!(!run.refresh_manifest().unwrap());
        assert_eq!(header_reads::take(), K);
    }

    #[test]
    fn storing_k_models_reads_no_header_of_the_others() {
        // Rebuilding the manifest from every header after each store read 0 + 1 + ... + K - 1
        // headers (an import of 10,000 models: 50 million). From the manifest and a listing of
        // `logits/`, a store reads only the headers of files the manifest does not name.
        const K: usize = 12;
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::create(dir.path(), &plan(K, &softmax())).unwrap();
        let shape = run.expected_logits_shape();
        let logits = Array3::<f32>::zeros((shape[0], shape[1], shape[2]));
        let producer = Producer::new("a test");
        header_reads::take();
        for k in 0..K - 2 {
            run.store(k, logits.view(), &producer).unwrap();
        }
        assert_eq!(header_reads::take(), 0);
        assert_eq!(manifest(&run).complete, (0..K - 2).collect::<Vec<_>>());
        // A file copied in by hand is found by the next store: its header alone is read.
        std::fs::copy(run.logits_path(0), run.logits_path(K - 2)).unwrap();
        run.store(K - 1, logits.view(), &producer).unwrap();
        assert_eq!(header_reads::take(), 1);
        let m = manifest(&run);
        assert_eq!(m.complete, (0..K).collect::<Vec<_>>());
        assert_eq!(
            m.producers.len(),
            2,
            "the hand-copied model has no recorded producer"
        );
        // A session reads every header once, at its start, then none.
        let mut session = run.storing().unwrap();
        for k in 0..K {
            session.store(k, logits.view(), None, &producer).unwrap();
        }
        session.finish().unwrap();
        assert_eq!(header_reads::take(), K);
        assert_eq!(manifest(&run).producers.len(), 1);
    }

    /// Trains as `SoftmaxRegression` does, and on its first group stores model `other` as a
    /// concurrent shard would (another `RunDir` on the same directory, another producer).
    struct WithNeighbour {
        inner: SoftmaxRegression,
        path: PathBuf,
        other: usize,
        stored: AtomicBool,
    }

    impl ShadowTrainer for WithNeighbour {
        fn config(&self) -> serde_json::Value {
            self.inner.config()
        }
        fn queries(&self) -> usize {
            self.inner.queries()
        }
        fn producer(&self) -> Producer {
            self.inner.producer()
        }
        fn train_group(
            &self,
            pool: &dyn Dataset,
            jobs: &[ModelJob],
        ) -> std::result::Result<Vec<Array3<f32>>, TrainerError> {
            if !self.stored.swap(true, Ordering::SeqCst) {
                // On a thread of its own, so that its header reads are not counted as ours.
                std::thread::scope(|scope| {
                    scope
                        .spawn(|| {
                            let neighbour = RunDir::open(&self.path).unwrap();
                            let shape = neighbour.expected_logits_shape();
                            let logits = Array3::<f32>::zeros((shape[0], shape[1], shape[2]));
                            let producer = Producer::new("neighbour");
                            neighbour
                                .store(self.other, logits.view(), &producer)
                                .unwrap();
                        })
                        .join()
                        .unwrap()
                });
            }
            self.inner.train_group(pool, jobs)
        }
    }

    #[test]
    fn the_manifest_between_groups_lists_what_a_concurrent_shard_finished() {
        let dir = tempfile::tempdir().unwrap();
        let trainer = WithNeighbour {
            inner: softmax(),
            path: dir.path().to_path_buf(),
            other: 3,
            stored: AtomicBool::new(false),
        };
        let run = RunDir::create(dir.path(), &plan(4, &trainer)).unwrap();
        header_reads::take();
        let mut seen = Vec::new();
        run.train(&trainer, &pool(), 0..3, |p| {
            let m = manifest(&run);
            let producers: Vec<_> = m
                .producers
                .iter()
                .map(|g| (g.producer.as_ref().unwrap().to_string(), g.models.clone()))
                .collect();
            seen.push((p.done, m.complete, producers, header_reads::take()));
        })
        .unwrap();
        let ours = trainer.producer().to_string();
        let theirs = Producer::new("neighbour").to_string();
        assert_eq!(
            seen,
            vec![
                // 4 headers read at the start, then only the neighbour's new file.
                (
                    1,
                    vec![0, 3],
                    vec![(ours.clone(), vec![0]), (theirs.clone(), vec![3])],
                    5
                ),
                (
                    2,
                    vec![0, 1, 3],
                    vec![(ours.clone(), vec![0, 1]), (theirs.clone(), vec![3])],
                    0
                ),
                // The last group checks every file.
                (
                    3,
                    vec![0, 1, 2, 3],
                    vec![(ours, vec![0, 1, 2]), (theirs, vec![3])],
                    4
                ),
            ]
        );
    }
}

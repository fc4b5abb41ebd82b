//! Shadow models trained by any program: a [`ShadowTrainer`] that runs a user's command per
//! model (PyTorch, JAX, anything that writes a `.npy`).
//!
//! memia writes the pool once (`DIR/pool.npz`: `x`, N x sample shape float32, `y`, N int64,
//! and `classes`, C as a one-element int64 array), and for each model its training indices (`DIR/indices/model_K.npy`, int64); the
//! command, with `{pool}`, `{indices}`, `{seed}`, `{out}` and `{model}` replaced (paths quoted for
//! the shell), trains the model and writes its logits on every pool sample to `{out}` as an
//! N x A x C float32 `.npy` (N x C is read as one query). memia checks the shape and that every
//! logit is finite; the scheduler then stores the model atomically. A command that fails (or
//! writes nothing usable) leaves the model unfinished, and the error carries the end of its
//! standard error.
//!
//! ```no_run
//! use memia_shadow::ExternalTrainer;
//!
//! let trainer = ExternalTrainer::new(
//!     "python3 train.py --pool {pool} --indices {indices} --seed {seed} --out {out}",
//!     "run/external",
//! )
//! .with_queries(1);
//! // plan with it (the command enters the plan's hash) and train with `RunDir::train`.
//! # let _ = trainer;
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

use memia_core::npy::{AnyArray, read_npy_any};
use memia_core::npz::NpzWriter;
use memia_data::Dataset;
use ndarray::{Array1, Array3, ArrayD};

use crate::trainer::{ModelJob, Producer, ShadowTrainer, TrainerError};

/// Lines of a failed command's standard error kept in the error.
const STDERR_LINES: usize = 20;

/// Runs a command per model; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalTrainer {
    command: String,
    dir: PathBuf,
    workdir: Option<PathBuf>,
    queries: usize,
}

impl ExternalTrainer {
    /// A trainer running `command` (with the placeholders above), keeping its files in `dir`.
    pub fn new(command: impl Into<String>, dir: impl Into<PathBuf>) -> Self {
        ExternalTrainer {
            command: command.into(),
            dir: dir.into(),
            workdir: None,
            queries: 1,
        }
    }

    /// The same trainer whose command runs in `workdir` (default: the current directory).
    pub fn in_directory(mut self, workdir: impl Into<PathBuf>) -> Self {
        self.workdir = Some(workdir.into());
        self
    }

    /// The number of queries A the command writes per sample (default 1).
    pub fn with_queries(mut self, queries: usize) -> Self {
        self.queries = queries;
        self
    }

    /// The command template.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// Checks the template: it must write `{out}`, and every placeholder must be known.
    pub fn check(&self) -> Result<(), TrainerError> {
        if !self.command.contains("{out}") {
            return Err(format!(
                "external command '{}' never names {{out}}, where it must write the logits",
                self.command
            )
            .into());
        }
        let mut rest = self.command.as_str();
        while let Some(open) = rest.find('{') {
            let close = rest[open..].find('}').map(|c| open + c).ok_or_else(|| {
                format!(
                    "external command '{}': a '{{' is never closed",
                    self.command
                )
            })?;
            let name = &rest[open + 1..close];
            if !["pool", "indices", "seed", "out", "model"].contains(&name) {
                return Err(format!(
                    "external command '{}': unknown placeholder {{{name}}} (known: {{pool}} {{indices}} {{seed}} {{out}} {{model}})",
                    self.command
                )
                .into());
            }
            rest = &rest[close + 1..];
        }
        if self.queries == 0 {
            return Err("external trainer: queries must be at least 1".into());
        }
        Ok(())
    }

    /// `DIR/pool.npz`.
    pub fn pool_path(&self) -> PathBuf {
        self.dir.join("pool.npz")
    }

    /// Writes the pool for the command (`x` and `y`) if it is not there yet, atomically.
    pub fn write_pool(&self, pool: &dyn Dataset) -> Result<(), TrainerError> {
        let path = self.pool_path();
        if path.is_file() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| io_error(&self.dir, e))?;
        let shape: Vec<usize> = std::iter::once(pool.len())
            .chain(pool.feature_shape().iter().copied())
            .collect();
        let x = ArrayD::from_shape_vec(shape, pool.to_row_major())?;
        let y: Array1<i64> = pool.labels().iter().map(|&l| i64::from(l)).collect();
        let classes = Array1::from(vec![pool.classes() as i64]);
        let tmp = self
            .dir
            .join(format!(".pool.npz.tmp-{}", std::process::id()));
        let mut npz = NpzWriter::create(&tmp, false);
        npz.add("x", &x)?;
        npz.add("y", &y)?;
        npz.add("classes", &classes)?;
        npz.finish()?;
        std::fs::rename(&tmp, &path).map_err(|e| io_error(&path, e))?;
        Ok(())
    }

    /// Trains one model by running the command.
    fn train_one(&self, pool: &dyn Dataset, job: &ModelJob) -> Result<Array3<f32>, TrainerError> {
        let indices_dir = self.dir.join("indices");
        let out_dir = self.dir.join("out");
        for d in [&indices_dir, &out_dir] {
            std::fs::create_dir_all(d).map_err(|e| io_error(d, e))?;
        }
        let indices_path = indices_dir.join(format!("model_{:05}.npy", job.index));
        let train: Array1<i64> = job.train.iter().map(|&i| i as i64).collect();
        memia_core::npy::write_npy(&indices_path, &train)?;
        let out = out_dir.join(format!("model_{:05}.{}.npy", job.index, std::process::id()));
        let _ = std::fs::remove_file(&out);
        let command = self
            .command
            .replace("{pool}", &quote(&self.pool_path()))
            .replace("{indices}", &quote(&indices_path))
            .replace("{seed}", &job.seed.to_string())
            .replace("{out}", &quote(&out))
            .replace("{model}", &job.index.to_string());
        let mut process = Command::new("sh");
        process.arg("-c").arg(&command);
        if let Some(w) = &self.workdir {
            process.current_dir(w);
        }
        let output = process
            .output()
            .map_err(|e| format!("model {}: could not run `{command}`: {e}", job.index))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let lines: Vec<&str> = stderr.lines().collect();
            let tail = lines[lines.len().saturating_sub(STDERR_LINES)..].join("\n");
            return Err(format!(
                "model {}: `{command}` failed ({}); its standard error ends:\n{tail}",
                job.index, output.status
            )
            .into());
        }
        let logits = self.read_output(pool, job, &out);
        let _ = std::fs::remove_file(&out);
        logits
    }

    /// The command's output, checked: N x A x C (or N x C) float32 (float64 converted), finite.
    fn read_output(
        &self,
        pool: &dyn Dataset,
        job: &ModelJob,
        out: &Path,
    ) -> Result<Array3<f32>, TrainerError> {
        let location = format!(
            "model {}: the command's output {}",
            job.index,
            out.display()
        );
        if !out.is_file() {
            return Err(format!("{location} was not written").into());
        }
        let array = match read_npy_any(out)? {
            AnyArray::F64(a) => a.mapv(|v| v as f32),
            other => other.into_typed::<f32>(&location)?,
        };
        let array = if array.ndim() == 2 {
            array.insert_axis(ndarray::Axis(1))
        } else {
            array
        };
        let expected = [pool.len(), self.queries, pool.classes()];
        if array.shape() != expected {
            return Err(format!(
                "{location} has shape {:?}, expected {expected:?} (samples x queries x classes)",
                array.shape()
            )
            .into());
        }
        let array = array.into_dimensionality::<ndarray::Ix3>()?;
        if let Some(((i, q, c), v)) = memia_core::first_non_finite(array.view()) {
            return Err(format!(
                "{location}: logit {v} of sample {i}, query {q}, class {c} is not finite (training diverged?)"
            )
            .into());
        }
        Ok(array)
    }
}

impl ShadowTrainer for ExternalTrainer {
    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "external": self.command, "queries": self.queries })
    }

    fn queries(&self) -> usize {
        self.queries
    }

    fn producer(&self) -> Producer {
        Producer::new("external command").with("command", self.command.clone())
    }

    fn train_group(
        &self,
        pool: &dyn Dataset,
        jobs: &[ModelJob],
    ) -> Result<Vec<Array3<f32>>, TrainerError> {
        self.check()?;
        self.write_pool(pool)?;
        jobs.iter().map(|job| self.train_one(pool, job)).collect()
    }
}

/// A path as one shell word.
fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}

fn io_error(path: &Path, e: std::io::Error) -> TrainerError {
    format!("{}: {e}", path.display()).into()
}

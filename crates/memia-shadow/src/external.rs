//! Shadow models trained by any program: a [`ShadowTrainer`] that runs a user's command per
//! model (PyTorch, JAX, anything that writes a `.npy`).
//!
//! memia writes the pool once (`DIR/pool.npz`: `x`, N x sample shape float32, `y`, N int64,
//! and `classes`, C as a one-element int64 array), and for each model its training indices
//! (`DIR/indices/model_K.npy`, int64). The command trains the model and writes its logits on
//! every pool sample to `{out}` as an N x A x C float32 `.npy` (N x C is read as one query).
//! memia checks the shape and that every logit is finite; the scheduler then stores the model
//! atomically. A command that fails (or writes nothing usable) leaves the model unfinished, and
//! the error carries the end of its standard error.
//!
//! The command runs with `sh -c` in the trainer's working directory ([`ExternalTrainer::in_directory`],
//! by default memia's own), and it receives each value twice:
//!
//! | placeholder | environment variable | value |
//! |---|---|---|
//! | `{pool}` | `MEMIA_POOL` | absolute path of `pool.npz` |
//! | `{indices}` | `MEMIA_INDICES` | absolute path of the model's training indices |
//! | `{out}` | `MEMIA_OUT` | absolute path where the logits must be written (a fresh, private directory per attempt) |
//! | `{seed}` | `MEMIA_SEED` | the model's seed, 0 to 2^64 - 1 |
//! | `{seed32}` | `MEMIA_SEED32` | the same seed folded to 0 to 2^32 - 1 (for `np.random.seed`) |
//! | `{model}` | `MEMIA_MODEL` | the model's index |
//!
//! The placeholders are replaced in one pass over the template, never inside a value already
//! substituted, and every path is quoted as one shell word: a path may hold spaces, quotes, `$`,
//! newlines or text like `{out}` without reaching the shell as code. So write a placeholder bare
//! (`--out {out}`, not `--out "{out}"`); a placeholder inside quotes is refused. The environment
//! variables are there for scripts that would rather not be given arguments; the command also
//! inherits memia's environment, which is where a secret it needs (a token, a password) belongs:
//! the command line itself is recorded in the plan, the manifest and every model's provenance.
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

use memia_core::npz::NpzWriter;
use memia_data::Dataset;
use ndarray::{Array1, Array3, ArrayD};

use crate::trainer::{ModelJob, Producer, ShadowTrainer, TrainerError};

/// Age after which a private output directory left by a killed attempt is removed.
const STALE_ATTEMPT: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

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

    /// Checks the template: it must write `{out}`, every placeholder must be known, and no path
    /// placeholder may stand inside quotes (memia quotes the paths it substitutes).
    pub fn check(&self) -> Result<(), TrainerError> {
        let pieces = parse_template(&self.command)
            .map_err(|reason| format!("external command '{}': {reason}", self.command))?;
        if !pieces
            .iter()
            .any(|p| matches!(p, Piece::Value(Placeholder::Out, _)))
        {
            return Err(format!(
                "external command '{}' never names {{out}}, where it must write the logits",
                self.command
            )
            .into());
        }
        if let Some(Piece::Value(p, _)) = pieces
            .iter()
            .find(|p| matches!(p, Piece::Value(v, true) if v.is_path()))
        {
            return Err(format!(
                "external command '{}': write {{{}}} without quotes around it: memia quotes every path it substitutes, and a quoted placeholder would give a path with literal quotes",
                self.command,
                p.name()
            )
            .into());
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
        // Written atomically through a temporary of random name: shards that write it at once
        // each put a complete, identical file in place.
        let mut npz = NpzWriter::create(&path, false);
        npz.add("x", &x)?;
        npz.add("y", &y)?;
        npz.add("classes", &classes)?;
        npz.finish()?;
        Ok(())
    }

    /// Trains one model by running the command.
    fn train_one(&self, pool: &dyn Dataset, job: &ModelJob) -> Result<Array3<f32>, TrainerError> {
        // Absolute paths: the command runs in its own working directory, not memia's.
        let dir = std::path::absolute(&self.dir).map_err(|e| io_error(&self.dir, e))?;
        let indices_dir = dir.join("indices");
        let out_dir = dir.join("out");
        for d in [&indices_dir, &out_dir] {
            std::fs::create_dir_all(d).map_err(|e| io_error(d, e))?;
        }
        let indices_path = indices_dir.join(format!("model_{:05}.npy", job.index));
        let train: Array1<i64> = job.train.iter().map(|&i| i as i64).collect();
        memia_core::npy::write_npy(&indices_path, &train)?;
        // A private directory per attempt (random name, created exclusively, removed when
        // dropped): concurrent shards, even with equal PIDs, never share an output path.
        let private = out_dir.join(format!("model_{:05}", job.index));
        // Attempts of killed processes a day ago (a live one's is left alone).
        memia_core::remove_stale_temporaries_of(&private, STALE_ATTEMPT);
        let attempt = memia_core::temporary_dir_for(&private).map_err(|e| io_error(&private, e))?;
        let out = attempt.path().join("logits.npy");
        let values = Values {
            pool: dir.join("pool.npz"),
            indices: indices_path,
            out: out.clone(),
            seed: job.seed,
            model: job.index,
        };
        let pieces = parse_template(&self.command)
            .map_err(|reason| format!("external command '{}': {reason}", self.command))?;
        let command =
            render(&pieces, &values).map_err(|reason| format!("model {}: {reason}", job.index))?;
        let mut process = Command::new("sh");
        process.arg("-c").arg(&command);
        for placeholder in Placeholder::ALL {
            process.env(placeholder.variable(), values.get(placeholder));
        }
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
        self.read_output(pool, job, &out)
    }

    /// The command's output, read and checked by memia's one reader of a model's logits:
    /// N x A x C (or N x C) float32 (float64 converted), of the pool's shape, finite.
    fn read_output(
        &self,
        pool: &dyn Dataset,
        job: &ModelJob,
        out: &Path,
    ) -> Result<Array3<f32>, TrainerError> {
        if !out.is_file() {
            return Err(format!(
                "model {}: the command's output {} was not written",
                job.index,
                out.display()
            )
            .into());
        }
        let expected = [pool.len(), self.queries, pool.classes()];
        match memia_core::read_model_logits(out, Some(expected)) {
            Ok(read) => Ok(read.logits),
            Err(memia_core::CoreError::ModelLogits { problem, .. }) => {
                let hint = match problem {
                    memia_core::LogitsProblem::NotFinite { .. } => " (training diverged?)",
                    _ => "",
                };
                Err(format!(
                    "model {}: the command's output {}: {problem}{hint}",
                    job.index,
                    out.display()
                )
                .into())
            }
            Err(e) => Err(format!("model {}: the command's output: {e}", job.index).into()),
        }
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

/// A value the template can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placeholder {
    /// The pool's `.npz`.
    Pool,
    /// The model's training indices.
    Indices,
    /// Where the command writes the logits.
    Out,
    /// The model's 64-bit seed.
    Seed,
    /// The seed folded to 32 bits, for libraries that take no more.
    Seed32,
    /// The model's index in the plan.
    Model,
}

impl Placeholder {
    const ALL: [Placeholder; 6] = [
        Placeholder::Pool,
        Placeholder::Indices,
        Placeholder::Out,
        Placeholder::Seed,
        Placeholder::Seed32,
        Placeholder::Model,
    ];

    fn name(self) -> &'static str {
        match self {
            Placeholder::Pool => "pool",
            Placeholder::Indices => "indices",
            Placeholder::Out => "out",
            Placeholder::Seed => "seed",
            Placeholder::Seed32 => "seed32",
            Placeholder::Model => "model",
        }
    }

    fn variable(self) -> String {
        format!("MEMIA_{}", self.name().to_uppercase())
    }

    fn is_path(self) -> bool {
        matches!(
            self,
            Placeholder::Pool | Placeholder::Indices | Placeholder::Out
        )
    }
}

/// A template cut at its placeholders: literal text, or a value (and whether the template put
/// it inside quotes).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Value(Placeholder, bool),
}

/// Cuts `template` at its placeholders, tracking the shell's quoting as it goes (single quotes,
/// double quotes, backslashes) to tell whether a placeholder stands inside quotes.
fn parse_template(template: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let (mut single, mut double, mut escaped) = (false, false, false);
    let mut chars = template.char_indices();
    while let Some((at, c)) = chars.next() {
        if escaped {
            escaped = false;
            text.push(c);
            continue;
        }
        match c {
            '\\' if !single => escaped = true,
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '{' => {
                let rest = &template[at + 1..];
                let close = rest
                    .find('}')
                    .ok_or_else(|| format!("the '{{' at byte {at} is never closed"))?;
                let name = &rest[..close];
                let placeholder = Placeholder::ALL
                    .into_iter()
                    .find(|p| p.name() == name)
                    .ok_or_else(|| {
                        let known: Vec<String> = Placeholder::ALL
                            .iter()
                            .map(|p| format!("{{{}}}", p.name()))
                            .collect();
                        format!(
                            "unknown placeholder {{{name}}} (known: {})",
                            known.join(" ")
                        )
                    })?;
                pieces.push(Piece::Text(std::mem::take(&mut text)));
                pieces.push(Piece::Value(placeholder, single || double));
                for _ in 0..=name.chars().count() {
                    chars.next();
                }
                continue;
            }
            _ => {}
        }
        text.push(c);
    }
    pieces.push(Piece::Text(text));
    Ok(pieces)
}

/// One model's values.
struct Values {
    pool: PathBuf,
    indices: PathBuf,
    out: PathBuf,
    seed: u64,
    model: usize,
}

impl Values {
    fn get(&self, placeholder: Placeholder) -> std::ffi::OsString {
        match placeholder {
            Placeholder::Pool => self.pool.clone().into(),
            Placeholder::Indices => self.indices.clone().into(),
            Placeholder::Out => self.out.clone().into(),
            Placeholder::Seed => self.seed.to_string().into(),
            Placeholder::Seed32 => seed32(self.seed).to_string().into(),
            Placeholder::Model => self.model.to_string().into(),
        }
    }
}

/// A 64-bit seed folded to 32 bits (the two halves XORed): what `np.random.seed` and other
/// 32-bit generators accept, still different for the seeds of one plan in practice.
pub fn seed32(seed: u64) -> u32 {
    (seed as u32) ^ ((seed >> 32) as u32)
}

/// The command line: the template's text as written, every path as one shell word. A path
/// that is not UTF-8 is refused rather than passed on altered.
fn render(pieces: &[Piece], values: &Values) -> Result<String, String> {
    pieces
        .iter()
        .map(|piece| match piece {
            Piece::Text(text) => Ok(text.clone()),
            // Numbers are digits only: bare, so that they may also stand inside quotes.
            Piece::Value(p, _) if !p.is_path() => Ok(values.get(*p).to_string_lossy().into_owned()),
            Piece::Value(p, _) => {
                let value = values.get(*p);
                value.to_str().map(shell_quote).ok_or_else(|| {
                    format!(
                        "the path {value:?} for {{{}}} is not UTF-8: it cannot be written into the command line (use a UTF-8 run directory)",
                        p.name()
                    )
                })
            }
        })
        .collect()
}

/// `text` as one word for a POSIX shell: in single quotes, each `'` written as `'\''`.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

fn io_error(path: &Path, e: std::io::Error) -> TrainerError {
    format!("{}: {e}", path.display()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(out: &str) -> Values {
        Values {
            pool: PathBuf::from("/r/external/pool.npz"),
            indices: PathBuf::from("/r/external/indices/model_00003.npy"),
            out: PathBuf::from(out),
            seed: 0x1234_5678_9abc_def0,
            model: 3,
        }
    }

    fn command(template: &str, out: &str) -> String {
        render(&parse_template(template).unwrap(), &values(out)).unwrap()
    }

    #[test]
    fn placeholders_are_replaced_in_one_pass() {
        // A value that holds placeholder text is never expanded again.
        let out = "/runs/r{out}$(touch PWNED)'{indices}/logits.npy";
        let line = command("cp x {out} && echo {seed} {seed32} {model}", out);
        assert_eq!(
            line,
            format!(
                "cp x {} && echo {} {} 3",
                shell_quote(out),
                0x1234_5678_9abc_def0u64,
                0x1234_5678u32 ^ 0x9abc_def0
            )
        );
        // And the shell reads the quoted value back as one word, unchanged.
        let echoed = Command::new("sh")
            .arg("-c")
            .arg(command("printf %s {out}", out))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&echoed.stdout), out);
    }

    #[test]
    fn quoted_and_unknown_placeholders_are_refused() {
        let check = |t: &str| {
            ExternalTrainer::new(t, "d")
                .check()
                .map_err(|e| e.to_string())
        };
        assert!(check("train --out {out}").is_ok());
        assert!(check("train --seed '{seed}' --out {out}").is_ok());
        let quoted = check("train --out \"{out}\"").unwrap_err();
        assert!(quoted.contains("without quotes"), "{quoted}");
        let quoted = check("train --pool='{pool}' --out {out}").unwrap_err();
        assert!(quoted.contains("{pool}"), "{quoted}");
        // An escaped quote does not open a quotation.
        assert!(check("echo \\' --out {out}").is_ok());
        let unknown = check("train {outt} --out {out}").unwrap_err();
        assert!(unknown.contains("unknown placeholder {outt}"), "{unknown}");
        assert!(
            check("train --out {out")
                .unwrap_err()
                .contains("never closed")
        );
        assert!(check("train").unwrap_err().contains("never names {out}"));
    }

    #[test]
    fn seeds_fold_to_32_bits() {
        assert_eq!(seed32(7), 7);
        assert_eq!(seed32(u64::MAX), 0);
        assert_eq!(seed32(1 << 32 | 5), 4);
    }
}

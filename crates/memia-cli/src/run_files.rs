//! What the command line keeps in a run directory besides the scheduler's files:
//!
//! ```text
//! RUN/memia.toml     the configuration the run was planned from (absent for imported runs)
//! RUN/labels.npy     N int64: the pool's labels
//! RUN/pool.json      per-sample provenance and named groups (e.g. the canaries)
//! ```

use std::path::{Path, PathBuf};

use memia_attacks::loo::EvalGroup;
use memia_core::npy::{read_npy_any, write_npy_to};
use memia_core::{Logits, atomic_write, labels_from_i64};
use memia_shadow::{RunDir, ShadowError};
use ndarray::Array1;
use serde::{Deserialize, Serialize};

use crate::config::RunConfig;
use crate::error::{CliError, Result, io};

/// `pool.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PoolInfo {
    /// One description per sample, when known.
    pub provenance: Option<Vec<String>>,
    /// Named sample sets reported separately.
    pub groups: Vec<EvalGroup>,
}

/// A run directory opened by the command line.
#[derive(Debug)]
pub struct LoadedRun {
    /// The scheduler's view.
    pub dir: RunDir,
    /// The pool's labels.
    pub labels: Vec<u32>,
    /// Provenance and groups.
    pub pool: PoolInfo,
    /// The configuration, for runs planned by `memia plan` or `memia run`.
    pub config: Option<RunConfig>,
}

/// Writes the command line's files into `dir`, each only where its content changes (so that
/// planning again into the run of the same plan is a no-op); returns the names it wrote.
pub fn write_extras(
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

fn run_error(path: &Path, reason: impl Into<String>) -> CliError {
    CliError::Run {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Opens a run directory with its labels, pool information and configuration.
pub fn open(path: &Path) -> Result<LoadedRun> {
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
        Ok(text) => serde_json::from_str(&text).map_err(|e| CliError::Config {
            path: pool_path.clone(),
            reason: e.to_string(),
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
    Ok(LoadedRun {
        dir,
        labels,
        pool,
        config,
    })
}

impl LoadedRun {
    /// All models' logits; an error saying how to finish the run if some are missing.
    pub fn logits(&self) -> Result<Logits> {
        match self.dir.logits() {
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

    /// The run directory.
    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
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
        write_extras(&run, Some(&RunConfig::digits()), &pool.labels(), &info).unwrap();
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
                    let _ = open(&run);
                    if name == "memia.toml" {
                        let text = String::from_utf8_lossy(&bytes);
                        let _ = RunConfig::parse(&text, &file, tmp.path());
                    }
                    Ok(())
                })
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            std::fs::write(&file, valid).unwrap();
        }
        assert!(open(&run).is_ok());
    }
}

//! Import of a run directory written by the LiRA reference code
//! (tensorflow/privacy `research/mi_lira_2021`), so its users can score existing runs.
//!
//! The layout it reads:
//!
//! ```text
//! LOGDIR/
//!   y_train.npy                    labels of the pool (optional here; any integer dtype)
//!   experiment-0_16/keep.npy       bool, (N,): which samples this model trained on
//!   experiment-0_16/logits/0000000100.npy   float32, (N, 1, A, C), one file per saved epoch
//!   experiment-1_16/...
//! ```
//!
//! Experiments are ordered by the number after `experiment-` (then by name). As the reference's
//! `plot.py` does, each experiment's last logits file in name order is used unless an epoch is
//! given, and `keep` is truncated to the number of samples the logits cover.

use std::path::{Path, PathBuf};

use ndarray::{Array1, Axis};

use crate::error::{CoreError, Result};
use crate::keep::KeepMatrix;
use crate::logits::labels_from_i64;
use crate::npy::read_file_header;
use crate::npy::{into_dimension, read_npy_any};
use crate::source::{ModelFiles, model_shape_of};

/// What to import.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiraImportOptions {
    /// Use `logits/{epoch:010}.npy` in every experiment; `None` takes each experiment's last file.
    pub epoch: Option<u64>,
}

/// One experiment (shadow model) found in the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiraExperiment {
    /// Directory name, e.g. `experiment-3_16`.
    pub name: String,
    /// The logits file that was read.
    pub logits_file: PathBuf,
}

/// A LiRA reference run as memia's arrays.
#[derive(Debug, Clone)]
pub struct LiraRun {
    /// K x N membership.
    pub keep: KeepMatrix,
    /// Every experiment's logits file (N x 1 x A x C, read as N x A x C), one model at a time:
    /// a reference run of any size is read in the memory of its signals.
    pub logits: ModelFiles,
    /// Pool labels from `y_train.npy`, truncated to N, when the file exists.
    pub labels: Option<Vec<u32>>,
    /// The experiments in model order (row k of `keep` is `experiments[k]`).
    pub experiments: Vec<LiraExperiment>,
}

/// Imports the run in `dir`; see the [module documentation](self) for the layout.
pub fn import_lira_run(dir: impl AsRef<Path>, options: &LiraImportOptions) -> Result<LiraRun> {
    let dir = dir.as_ref();
    let layout = |path: &Path, reason: String| CoreError::LiraLayout {
        path: path.to_path_buf(),
        reason,
    };
    let mut experiments = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| CoreError::io(dir, e))? {
        let entry = entry.map_err(|e| CoreError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("experiment") && entry.path().is_dir() {
            experiments.push(name);
        }
    }
    if experiments.is_empty() {
        return Err(layout(dir, "no experiment-* directories found".into()));
    }
    experiments.sort_by_key(|name| (experiment_number(name), name.clone()));

    let mut found_experiments = Vec::with_capacity(experiments.len());
    let mut keeps: Vec<Array1<bool>> = Vec::with_capacity(experiments.len());
    let mut shape: Option<[usize; 3]> = None;
    for name in &experiments {
        let exp_dir = dir.join(name);
        let logits_file = pick_logits_file(&exp_dir, options.epoch)?;
        // Only the header here: the data is read (and checked, by the one reader of a model's
        // logits) when the models are used, one at a time.
        let header = read_file_header(&logits_file)?.header;
        let found = model_shape_of(&header.shape).ok_or_else(|| CoreError::ModelLogits {
            path: logits_file.clone(),
            problem: crate::LogitsProblem::Dimensions {
                found: header.shape.clone(),
            },
        })?;
        let first = *shape.get_or_insert(found);
        if found != first {
            return Err(layout(
                &logits_file,
                format!(
                    "logits of shape {found:?} (without the singleton axis) differ from the first experiment's {first:?}"
                ),
            ));
        }

        let keep_path = exp_dir.join("keep.npy");
        let keep =
            read_npy_any(&keep_path)?.into_typed::<bool>(&keep_path.display().to_string())?;
        let keep: Array1<bool> = into_dimension(keep, &keep_path.display().to_string())?;
        let n = first[0];
        if keep.len() < n {
            return Err(layout(
                &keep_path,
                format!(
                    "keep has {} entries but the logits cover {n} samples",
                    keep.len()
                ),
            ));
        }
        keeps.push(keep.slice_move(ndarray::s![..n]));
        found_experiments.push(LiraExperiment {
            name: name.clone(),
            logits_file,
        });
    }
    let shape = shape.expect("at least one experiment");
    let logits = ModelFiles::new(
        found_experiments
            .iter()
            .map(|e| e.logits_file.clone())
            .collect(),
        Some(shape),
    )?;
    let views: Vec<_> = keeps.iter().map(|k| k.view()).collect();
    let keep = KeepMatrix::from_array(
        ndarray::stack(Axis(0), &views)
            .map_err(|e| layout(dir, format!("cannot stack keep vectors: {e}")))?
            .into_dimensionality::<ndarray::Ix2>()
            .map_err(|e| layout(dir, e.to_string()))?,
    )?;
    let labels = read_labels(dir, shape[0], shape[2])?;
    Ok(LiraRun {
        keep,
        logits,
        labels,
        experiments: found_experiments,
    })
}

/// `experiment-12_256` -> Some(12).
fn experiment_number(name: &str) -> Option<u64> {
    let rest = name
        .strip_prefix("experiment")?
        .trim_start_matches(['-', '_']);
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

fn pick_logits_file(exp_dir: &Path, epoch: Option<u64>) -> Result<PathBuf> {
    let logits_dir = exp_dir.join("logits");
    if let Some(epoch) = epoch {
        let path = logits_dir.join(format!("{epoch:010}.npy"));
        if !path.is_file() {
            return Err(CoreError::LiraLayout {
                path,
                reason: format!("no logits for epoch {epoch}"),
            });
        }
        return Ok(path);
    }
    let entries = std::fs::read_dir(&logits_dir).map_err(|e| CoreError::LiraLayout {
        path: logits_dir.clone(),
        reason: format!("cannot list the logits directory: {e}"),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "npy"))
        .collect();
    files.sort();
    files.pop().ok_or_else(|| CoreError::LiraLayout {
        path: logits_dir,
        reason: "no .npy logits files".into(),
    })
}

/// The labels in `y_train.npy`, truncated to the `samples` the logits cover, if the file exists.
fn read_labels(dir: &Path, samples: usize, classes: usize) -> Result<Option<Vec<u32>>> {
    let path = dir.join("y_train.npy");
    if !path.is_file() {
        return Ok(None);
    }
    let values = read_npy_any(&path)?.to_i64_vec(&path.display().to_string())?;
    if values.len() < samples {
        return Err(CoreError::LiraLayout {
            path,
            reason: format!("{} labels for {samples} samples", values.len()),
        });
    }
    let labels = labels_from_i64(&values[..samples], classes)?;
    Ok(Some(labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::npy::write_npy;
    use ndarray::array;

    fn write_experiment(root: &Path, name: &str, keep: &Array1<bool>, epochs: &[(u64, f32)]) {
        let logits_dir = root.join(name).join("logits");
        std::fs::create_dir_all(&logits_dir).unwrap();
        write_npy(root.join(name).join("keep.npy"), keep).unwrap();
        for &(epoch, offset) in epochs {
            let n = keep.len() - 1; // logits cover one sample fewer than keep
            let logits = ndarray::Array4::from_shape_fn((n, 1, 2, 3), |(i, _, a, c)| {
                offset + i as f32 + a as f32 * 0.5 + c as f32 * 0.1
            });
            write_npy(logits_dir.join(format!("{epoch:010}.npy")), &logits).unwrap();
        }
    }

    #[test]
    fn imports_reference_layout_in_numeric_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_npy(root.join("y_train.npy"), &array![0i64, 2, 1, 1, 0]).unwrap();
        write_experiment(
            root,
            "experiment-10_12",
            &array![true, false, true, false, true],
            &[(10, 100.0)],
        );
        write_experiment(
            root,
            "experiment-2_12",
            &array![false, true, true, false, false],
            &[(10, 20.0), (20, 200.0)],
        );
        std::fs::create_dir(root.join("other")).unwrap();

        let run = import_lira_run(root, &LiraImportOptions::default()).unwrap();
        assert_eq!(
            run.experiments
                .iter()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>(),
            ["experiment-2_12", "experiment-10_12"]
        );
        assert_eq!(
            run.keep.as_array(),
            array![[false, true, true, false], [true, false, true, false]]
        );
        use crate::LogitsSource;
        assert_eq!(
            (run.logits.models(), run.logits.model_shape()),
            (2, [4, 2, 3])
        );
        assert_eq!(
            run.logits.model_logits(0).unwrap()[[0, 0, 0]],
            200.0,
            "last epoch of experiment-2"
        );
        assert_eq!(
            run.logits.model_logits(1).unwrap()[[3, 1, 2]],
            100.0 + 3.0 + 0.5 + 0.2
        );
        assert_eq!(run.labels, Some(vec![0, 2, 1, 1]));

        let run = import_lira_run(root, &LiraImportOptions { epoch: Some(10) }).unwrap();
        assert_eq!(run.logits.model_logits(0).unwrap()[[0, 0, 0]], 20.0);
        let err = import_lira_run(root, &LiraImportOptions { epoch: Some(20) })
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("experiment-10_12") && err.contains("no logits for epoch 20"),
            "{err}"
        );
    }

    #[test]
    fn reports_layout_problems() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let err = import_lira_run(root, &LiraImportOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("no experiment-* directories"), "{err}");

        write_experiment(
            root,
            "experiment-0_2",
            &array![true, false, true],
            &[(1, 0.0)],
        );
        write_experiment(
            root,
            "experiment-1_2",
            &array![true, false, true, true],
            &[(1, 0.0)],
        );
        let err = import_lira_run(root, &LiraImportOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("experiment-1_2") && err.contains("differ from the first"),
            "{err}"
        );

        std::fs::remove_dir_all(root.join("experiment-1_2")).unwrap();
        write_npy(root.join("y_train.npy"), &array![0.5f32, 1.0, 2.0]).unwrap();
        let err = import_lira_run(root, &LiraImportOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("y_train.npy") && err.contains("integer dtype"),
            "{err}"
        );
        write_npy(root.join("y_train.npy"), &array![0u8, 7]).unwrap();
        let err = import_lira_run(root, &LiraImportOptions::default())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "label 7 of sample 1 is out of range: the logits have 3 classes"
        );

        std::fs::remove_file(root.join("experiment-0_2/keep.npy")).unwrap();
        let err = import_lira_run(root, &LiraImportOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("keep.npy"), "{err}");

        // NaN logits are refused by the reader when the model is read (one at a time), naming
        // the file and the entry.
        write_experiment(
            root,
            "experiment-0_2",
            &array![true, false, true],
            &[(1, f32::NAN)],
        );
        std::fs::remove_file(root.join("y_train.npy")).unwrap();
        let run = import_lira_run(root, &LiraImportOptions::default()).unwrap();
        let err = crate::LogitsSource::model_logits(&run.logits, 0)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("experiment-0_2/logits/0000000001.npy")
                && err.contains("logit NaN of sample 0, query 0, class 0 is not finite"),
            "{err}"
        );
    }
}

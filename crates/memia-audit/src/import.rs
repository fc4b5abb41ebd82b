//! Models trained elsewhere (a LiRA reference run, `.npy` files of any trainer) become a run
//! directory: the keep matrix is the plan, every model's logits are stored with their producer,
//! and memia's files are written beside them. The run is built in a staging folder beside the
//! output and renamed into place when complete, so a failed or interrupted import leaves
//! nothing that looks like a run.

use std::path::Path;

use memia_attacks::evaluation::EvalGroup;
use memia_core::{KeepMatrix, LogitsSource};
use memia_shadow::{Producer, RunDir};
use ndarray::ArrayView3;

use crate::error::{AuditError, Result, io};
use crate::run::{PoolInfo, write_run_files};

/// Models made elsewhere, ready to become a run directory.
#[derive(Debug, Clone, Copy)]
pub struct Import<'a> {
    /// K x N: which model trained on which sample.
    pub keep: &'a KeepMatrix,
    /// Every model's N x A x C logits, read one model at a time (a folder of files:
    /// [`memia_core::ModelFiles`]; or a [`memia_core::Logits`] in memory).
    pub logits: &'a dyn LogitsSource,
    /// The N labels.
    pub labels: &'a [u32],
    /// Named sample sets reported separately.
    pub groups: &'a [EvalGroup],
    /// The pool's name in the plan.
    pub name: &'a str,
    /// Where the outputs came from, as the plan's trainer settings.
    pub description: &'a serde_json::Value,
    /// Who produced the models.
    pub producer: &'a Producer,
    /// Hard-link each model's file into the run rather than copy it, where the file is
    /// already in the run's format (little-endian float32, C order) on the same filesystem:
    /// an import of 10 GB then takes the time to read it once. The run shares those files,
    /// so they must not be changed in place afterwards.
    pub link: bool,
    /// The pool's pixels, N x C x H x W ([`pool_images`] checks and arranges them), kept in the
    /// run as `images.npy` so that its report shows thumbnails as a trained run's does.
    pub images: Option<&'a ndarray::Array4<f32>>,
}

/// The pool's pixels as the run keeps them, N x C x H x W (C = 1 or 3), from an array of any
/// of the layouts image pools come in: N x C x H x W, N x H x W x C (channels last, as numpy
/// and TensorFlow hold CIFAR), or N x H x W (grey). Refused, naming the shape, if it is none of
/// them or does not hold `samples` images.
pub fn pool_images(images: ndarray::ArrayD<f32>, samples: usize) -> Result<ndarray::Array4<f32>> {
    let shape = images.shape().to_vec();
    let refuse = || {
        AuditError::Usage(format!(
            "images of shape {shape:?}: expected {samples} images as N x C x H x W, N x H x W x C \
             (C = 1 or 3) or N x H x W"
        ))
    };
    if shape.first() != Some(&samples) {
        return Err(refuse());
    }
    if let Some((at, value)) = images.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(AuditError::Usage(format!(
            "images: pixel {value} at {:?} is not finite",
            ndarray::Dimension::slice(&at)
        )));
    }
    let arranged = match *shape.as_slice() {
        [_, h, w] if h > 0 && w > 0 => images.insert_axis(ndarray::Axis(1)),
        [_, 1 | 3, h, w] if h > 0 && w > 0 => images,
        [_, h, w, 1 | 3] if h > 0 && w > 0 => images.permuted_axes(vec![0, 3, 1, 2]),
        _ => return Err(refuse()),
    };
    let arranged = arranged
        .into_dimensionality::<ndarray::Ix4>()
        .map_err(|_| refuse())?;
    Ok(arranged.as_standard_layout().into_owned())
}

/// What [`Import::store`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// The output already held this import (only a finished import is ever renamed into
    /// place): nothing written.
    AlreadyThere,
    /// The run was written; `linked` of its models share their file with the import's.
    Written {
        /// Models linked rather than copied.
        linked: usize,
    },
}

impl Import<'_> {
    /// Stores the import as the run directory `output` (new, or an empty directory); finds it
    /// there if the same import was stored before. `progress(done, total)` follows the models.
    pub fn store(&self, output: &Path, progress: impl FnMut(usize, usize)) -> Result<Stored> {
        self.store_inspecting(output, progress, |_, _| {})
    }

    /// [`Import::store`], handing each model's logits to `inspect(model, logits)` as they are
    /// read (checks of an import that need every model, made in the same single pass).
    pub fn store_inspecting(
        &self,
        output: &Path,
        mut progress: impl FnMut(usize, usize),
        mut inspect: impl FnMut(usize, ArrayView3<'_, f32>),
    ) -> Result<Stored> {
        self.check()?;
        let [_, queries, classes] = self.logits.model_shape();
        let k = self.keep.models();
        let plan = crate::run::given_plan(
            self.keep,
            self.labels,
            [queries, classes],
            self.name,
            self.description,
        )?;
        if output.join("plan.json").exists() {
            // Refuses a run of another plan.
            RunDir::create_given(output, &plan, self.keep)?;
            // The pixels are not part of the plan: given now to a run without them, they are
            // added; a run that has them keeps its own.
            let images_path = output.join(crate::run::IMAGES_FILE);
            if let Some(images) = self.images
                && !images_path.exists()
            {
                memia_core::npy::write_npy(&images_path, images)?;
            }
            return Ok(Stored::AlreadyThere);
        }
        if output.exists() && std::fs::read_dir(output).map_or(true, |mut d| d.next().is_some()) {
            return Err(AuditError::Run {
                path: output.to_path_buf(),
                reason: "exists and is not an empty directory: import into a new directory".into(),
            });
        }
        let output_abs = std::path::absolute(output).map_err(io(output))?;
        let parent = output_abs.parent().unwrap_or(Path::new("/"));
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        // `.RUN.RANDOM.tmp`, created exclusively; those of imports killed over an hour ago go.
        memia_core::remove_stale_temporaries_of(&output_abs, std::time::Duration::from_secs(3600));
        let staging = memia_core::temporary_dir_for(&output_abs).map_err(io(parent))?;
        let run = RunDir::create_given(staging.path(), &plan, self.keep)?;
        let mut storing = run.storing()?;
        let mut linked = 0;
        // The next model is read while this one is checked and stored.
        memia_core::for_each_model(
            self.logits,
            &(0..k).collect::<Vec<_>>(),
            |_, m, logits| -> Result<()> {
                inspect(m, logits);
                let file = self.logits.model_file(m).filter(|_| self.link);
                linked += usize::from(storing.store(m, logits, file, self.producer)?);
                progress(m + 1, k);
                Ok(())
            },
        )?;
        storing.finish()?;
        let info = PoolInfo {
            provenance: None,
            groups: self.groups.to_vec(),
        };
        write_run_files(staging.path(), None, self.labels, &info)?;
        if let Some(images) = self.images {
            memia_core::npy::write_npy(staging.path().join(crate::run::IMAGES_FILE), images)?;
        }
        if output.exists() {
            // The empty directory checked above.
            std::fs::remove_dir(output).map_err(io(output))?;
        }
        std::fs::rename(staging.path(), output).map_err(io(output))?;
        // The staging folder is the output now: nothing left to delete.
        let _ = staging.keep();
        Ok(Stored::Written { linked })
    }
}

impl Import<'_> {
    /// Refuses parts that disagree before anything is written: a run that `Run::open` would
    /// refuse is never renamed into place.
    fn check(&self) -> Result<()> {
        let (k, n) = (self.keep.models(), self.keep.samples());
        let refuse = |reason: String| Err(AuditError::Usage(format!("import: {reason}")));
        let [samples, _, classes] = self.logits.model_shape();
        if (self.logits.models(), samples) != (k, n) {
            return refuse(format!(
                "logits of {} models x {samples} samples for a keep matrix of {k} x {n}",
                self.logits.models(),
            ));
        }
        if self.labels.len() != n {
            return refuse(format!("{} labels for {n} samples", self.labels.len()));
        }
        if let Some((i, l)) = self
            .labels
            .iter()
            .enumerate()
            .find(|&(_, &l)| l as usize >= classes)
        {
            return refuse(format!(
                "label {l} of sample {i} is not below the logits' {classes} classes"
            ));
        }
        if let Some(images) = self.images
            && images.dim().0 != n
        {
            return refuse(format!("{} images for {n} samples", images.dim().0));
        }
        for (i, g) in self.groups.iter().enumerate() {
            if self.groups[..i].iter().any(|h| h.name == g.name) {
                return refuse(format!(
                    "two groups are named '{}': give each group its own name",
                    g.name
                ));
            }
            if let Some(&bad) = g.samples.iter().find(|&&i| i >= n) {
                return refuse(format!(
                    "group '{}' holds sample {bad}, not below N = {n}",
                    g.name
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use memia_core::Logits;

    /// An import becomes a run that opens with its labels and groups; storing it again finds
    /// it; a non-empty directory is refused and left as it was.
    #[test]
    fn an_import_becomes_a_run_once() {
        let tmp = tempfile::tempdir().unwrap();
        let keep = KeepMatrix::balanced(2, 6, 1).unwrap();
        let logits = Logits::new(ndarray::Array4::from_elem((2, 6, 1, 3), 0.5f32)).unwrap();
        let labels = [0, 1, 2, 0, 1, 2];
        let groups = [EvalGroup {
            name: "first".into(),
            samples: vec![0],
        }];
        let description = serde_json::json!({"from": "test"});
        let producer = Producer::new("a test");
        let import = Import {
            keep: &keep,
            logits: &logits,
            labels: &labels,
            groups: &groups,
            name: "test pool",
            description: &description,
            producer: &producer,
            link: false,
            images: None,
        };
        let out = tmp.path().join("run");
        let mut calls = 0;
        assert_eq!(
            import.store(&out, |_, _| calls += 1).unwrap(),
            Stored::Written { linked: 0 }
        );
        assert_eq!(calls, 2);
        let run = crate::Run::open(&out).unwrap();
        assert_eq!(run.labels, labels);
        assert_eq!(run.pool.groups, groups);
        assert_eq!(run.logits().unwrap(), logits);
        assert_eq!(import.store(&out, |_, _| {}).unwrap(), Stored::AlreadyThere);
        let busy = tmp.path().join("busy");
        std::fs::create_dir(&busy).unwrap();
        std::fs::write(busy.join("mine.txt"), "keep me").unwrap();
        assert!(matches!(
            import.store(&busy, |_, _| {}),
            Err(AuditError::Run { .. })
        ));
        assert_eq!(
            std::fs::read_to_string(busy.join("mine.txt")).unwrap(),
            "keep me"
        );
        // Parts that disagree are refused before anything is written.
        let fresh = tmp.path().join("fresh");
        let short = [0, 1];
        let bad_label = [0, 1, 2, 0, 1, 3];
        let far = [EvalGroup {
            name: "far".into(),
            samples: vec![6],
        }];
        let twice = [
            EvalGroup {
                name: "same".into(),
                samples: vec![0],
            },
            EvalGroup {
                name: "same".into(),
                samples: vec![1],
            },
        ];
        let wide = ndarray::Array4::<f32>::zeros((5, 1, 2, 2));
        for (broken, what) in [
            (
                Import {
                    labels: &short,
                    ..import
                },
                "2 labels for 6 samples",
            ),
            (
                Import {
                    labels: &bad_label,
                    ..import
                },
                "label 3 of sample 5",
            ),
            (
                Import {
                    groups: &far,
                    ..import
                },
                "group 'far' holds sample 6",
            ),
            (
                Import {
                    groups: &twice,
                    ..import
                },
                "two groups are named 'same'",
            ),
            (
                Import {
                    images: Some(&wide),
                    ..import
                },
                "5 images for 6 samples",
            ),
        ] {
            let e = broken.store(&fresh, |_, _| {}).unwrap_err().to_string();
            assert!(e.contains(what), "{e}");
            assert!(!fresh.exists(), "nothing written for {what}");
        }
    }
}

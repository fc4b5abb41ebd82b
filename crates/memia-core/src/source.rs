//! Logits one model at a time: what lets an audit of hundreds of models on tens of thousands of
//! samples over a hundred classes (10 GB of logits) run in the memory of its signals.
//!
//! Every signal memia computes (LiRA's `phi`, the hinge, the loss, the true-class probability,
//! correctness) is a function of one model's logits on one sample, so nothing needs the
//! K x N x A x C array at once. A [`LogitsSource`] hands out one model's N x A x C logits on
//! request: [`Logits`] from memory, [`ModelFiles`] from one `.npy` file per model (a run's
//! `logits/`, a folder to import, LiRA reference experiments). [`Signals::compute`] reads the
//! models in turn and keeps only the K x N x A signals asked for, so peak memory is the signals
//! plus one model's logits.
//!
//! ```
//! use memia_core::{Logits, ModelFiles, Signal, Signals};
//! use ndarray::Array4;
//!
//! let logits = Logits::new(Array4::from_shape_fn((3, 4, 1, 2), |(k, i, _, c)| {
//!     (k + i * c) as f32
//! }))?;
//! let dir = tempfile::tempdir().unwrap();
//! let files: Vec<_> = (0..3)
//!     .map(|k| {
//!         let path = dir.path().join(format!("model_{k}.npy"));
//!         memia_core::npy::write_npy(&path, &logits.model(k)).unwrap();
//!         path
//!     })
//!     .collect();
//! let on_disk = ModelFiles::new(files, None)?;
//! let labels = [0, 1, 1, 0];
//! // The two models 2 and 0, read one file at a time: the same numbers as from memory.
//! let streamed = Signals::compute(&on_disk, &[2, 0], &labels, &[Signal::Phi, Signal::Correct], |_, _| {})?;
//! let in_memory = logits.select_models(&[2, 0])?.signals(&labels, Signal::Phi)?;
//! assert_eq!(streamed.get(Signal::Phi).unwrap(), &in_memory);
//! # Ok::<(), memia_core::CoreError>(())
//! ```

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use ndarray::{Array3, ArrayView3, CowArray, Ix3};
use rayon::prelude::*;

use crate::error::{CoreError, Result};
use crate::logits::{Logits, check_labels};
use crate::npy::{DType, read_file_header};
use crate::signal::Signal;

/// K models' logits, one model at a time: each model's N x A x C `f32` array, checked (its shape
/// is [`LogitsSource::model_shape`] and every logit is finite, or an error names the first that
/// is not). Implement it to feed memia from your own storage.
pub trait LogitsSource: Debug + Sync {
    /// Number of models K.
    fn models(&self) -> usize;

    /// Every model's shape: samples N, queries A, classes C.
    fn model_shape(&self) -> [usize; 3];

    /// Model `k`'s N x A x C logits (`k < models()`); borrowed where they are in memory.
    fn model_logits(&self, k: usize) -> Result<CowArray<'_, f32, Ix3>>;

    /// The file model `k`'s logits are read from, when there is one and it holds exactly
    /// them (an import can then link it rather than copy it).
    fn model_file(&self, k: usize) -> Option<&Path> {
        let _ = k;
        None
    }

    /// Takes back logits that [`LogitsSource::model_logits`] gave and the caller is done with,
    /// so that a source reading files can read the next model into the same memory
    /// ([`for_each_model`] hands every model back). By default they are dropped.
    fn recycle(&self, logits: CowArray<'_, f32, Ix3>) {
        drop(logits);
    }
}

impl LogitsSource for Logits {
    fn models(&self) -> usize {
        Logits::models(self)
    }

    fn model_shape(&self) -> [usize; 3] {
        [self.samples(), self.queries(), self.classes()]
    }

    fn model_logits(&self, k: usize) -> Result<CowArray<'_, f32, Ix3>> {
        if k >= Logits::models(self) {
            return Err(model_out_of_range(k, Logits::models(self)));
        }
        Ok(CowArray::from(self.model(k)))
    }
}

fn model_out_of_range(k: usize, models: usize) -> CoreError {
    CoreError::invalid("model", format!("model {k} asked for, there are {models}"))
}

/// One `.npy` file per model, read when asked (by [`crate::read_model_logits`], the one reader
/// of a model's logits: float32 or float64, N x A x C, N x C or the LiRA reference's
/// N x 1 x A x C). Model `k` is `files[k]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFiles {
    files: Vec<PathBuf>,
    shape: [usize; 3],
    /// Buffers of models handed back, read into again.
    spare: Spare,
}

/// Buffers handed back to a [`ModelFiles`] (at most two: the model being worked on and the one
/// being read). Not part of its value: clones start without, and any two compare equal.
#[derive(Debug, Default)]
struct Spare(std::sync::Mutex<Vec<Vec<f32>>>);

impl Clone for Spare {
    fn clone(&self) -> Self {
        Spare::default()
    }
}

impl PartialEq for Spare {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Spare {}

impl Spare {
    fn take(&self) -> Vec<f32> {
        self.0
            .lock()
            .map(|mut spare| spare.pop())
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    fn give(&self, buffer: Vec<f32>) {
        if let Ok(mut spare) = self.0.lock()
            && spare.len() < 2
        {
            spare.push(buffer);
        }
    }
}

impl ModelFiles {
    /// The models in `files`, all of shape `shape` (samples x queries x classes), or of the
    /// first file's shape, read from its header, when `None`. Only that header is read here;
    /// each file is checked when it is read.
    pub fn new(files: Vec<PathBuf>, shape: Option<[usize; 3]>) -> Result<Self> {
        let Some(first) = files.first() else {
            return Err(CoreError::invalid("files", "no model logits file given"));
        };
        let shape = match shape {
            Some(shape) => shape,
            None => {
                let header = read_file_header(first)?.header;
                model_shape_of(&header.shape).ok_or_else(|| CoreError::ModelLogits {
                    path: first.clone(),
                    problem: crate::LogitsProblem::Dimensions {
                        found: header.shape.clone(),
                    },
                })?
            }
        };
        let [n, a, c] = shape;
        if n == 0 || a == 0 || c < 2 {
            return Err(CoreError::Shape {
                location: first.display().to_string(),
                found: shape.to_vec(),
                expected: "samples x queries x classes with at least one sample and query, and \
                           at least 2 classes"
                    .into(),
            });
        }
        Ok(ModelFiles {
            files,
            shape,
            spare: Spare::default(),
        })
    }

    /// The files, in model order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Whether model `k`'s file holds little-endian float32 in C order (no conversion when read):
    /// one header read.
    pub fn is_plain_f32(&self, k: usize) -> Result<bool> {
        is_plain_f32_file(&self.files[k], self.shape)
    }
}

/// Whether the `.npy` file at `path` holds exactly one model's logits of `shape` (samples x
/// queries x classes, in any layout of the same bytes) as little-endian float32 in C order,
/// whole: what can be read, or linked into a run, as it is. One header read.
pub fn is_plain_f32_file(path: &Path, shape: [usize; 3]) -> Result<bool> {
    let file = read_file_header(path)?;
    let h = &file.header;
    Ok(h.dtype == DType::F32
        && !h.big_endian
        && !h.fortran_order
        && model_shape_of(&h.shape) == Some(shape)
        && file.is_whole())
}

impl LogitsSource for ModelFiles {
    fn models(&self) -> usize {
        self.files.len()
    }

    fn model_shape(&self) -> [usize; 3] {
        self.shape
    }

    fn model_logits(&self, k: usize) -> Result<CowArray<'_, f32, Ix3>> {
        let path = self
            .files
            .get(k)
            .ok_or_else(|| model_out_of_range(k, self.files.len()))?;
        let read = crate::read_model_logits_reusing(path, Some(self.shape), self.spare.take())?;
        Ok(CowArray::from(read.logits))
    }

    fn model_file(&self, k: usize) -> Option<&Path> {
        self.files.get(k).map(PathBuf::as_path)
    }

    fn recycle(&self, logits: CowArray<'_, f32, Ix3>) {
        if let Some(owned) = logits.try_into_owned_nocopy().ok()
            && owned.is_standard_layout()
        {
            self.spare.give(owned.into_raw_vec_and_offset().0);
        }
    }
}

/// Hands models `models` of `source` to `f(row, k, logits)` in that order, reading model k + 1
/// on another thread while `f` works on model k (reading and computing overlap; two models'
/// logits are in memory at most). Stops at the first error, of a read or of `f`.
pub fn for_each_model<S: LogitsSource + ?Sized, E: From<CoreError>>(
    source: &S,
    models: &[usize],
    mut f: impl FnMut(usize, usize, ArrayView3<'_, f32>) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    std::thread::scope(|scope| {
        let read = |k: usize| scope.spawn(move || source.model_logits(k));
        let mut next = models.first().map(|&k| read(k));
        for (row, &k) in models.iter().enumerate() {
            let current = next
                .take()
                .expect("one read in flight per model")
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
            next = models.get(row + 1).map(|&k| read(k));
            let done = f(row, k, current.view());
            source.recycle(current);
            done?;
        }
        Ok(())
    })
}

/// The samples x queries x classes shape of one model's logits array of shape `shape`, in the
/// layouts [`crate::model_logits_from`] accepts (N x A x C, N x C, N x 1 x A x C).
pub fn model_shape_of(shape: &[usize]) -> Option<[usize; 3]> {
    match *shape {
        [n, a, c] => Some([n, a, c]),
        [n, c] => Some([n, 1, c]),
        [n, 1, a, c] => Some([n, a, c]),
        _ => None,
    }
}

/// Signals of some models of a [`LogitsSource`], computed one model at a time: one K' x N x A
/// `f64` array per signal kind, where K' are the models asked for, in the order asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Signals {
    models: Vec<usize>,
    kinds: Vec<Signal>,
    values: Vec<Array3<f64>>,
}

impl Signals {
    /// Reads models `models` of `source` in that order, one at a time, and computes each of
    /// `kinds` (duplicates are computed once) for every sample and query. `labels` holds the N
    /// true classes. `progress(done, total)` follows the models. Fails naming the first label
    /// not below C or the first logit that is not finite (by its model's index in `source`).
    pub fn compute(
        source: &(impl LogitsSource + ?Sized),
        models: &[usize],
        labels: &[u32],
        kinds: &[Signal],
        mut progress: impl FnMut(usize, usize),
    ) -> Result<Signals> {
        let [n, a, c] = source.model_shape();
        check_labels(labels, n, c)?;
        if let Some(&bad) = models.iter().find(|&&k| k >= source.models()) {
            return Err(model_out_of_range(bad, source.models()));
        }
        let mut unique: Vec<Signal> = Vec::new();
        for &kind in kinds {
            if !unique.contains(&kind) {
                unique.push(kind);
            }
        }
        let mut values: Vec<Array3<f64>> = unique
            .iter()
            .map(|_| Array3::zeros((models.len(), n, a)))
            .collect();
        for_each_model(source, models, |row, k, logits| {
            if logits.dim() != (n, a, c) {
                return Err(CoreError::Shape {
                    location: format!("logits of model {k}"),
                    found: logits.shape().to_vec(),
                    expected: format!("{n} x {a} x {c} (samples x queries x classes)"),
                });
            }
            // Every logit finite, in one vectorised pass over the model, before any signal.
            if let Some(((sample, query, _), value)) = crate::first_non_finite(logits) {
                return Err(CoreError::NonFiniteLogit {
                    model: k,
                    sample,
                    query,
                    value,
                });
            }
            for (kind, out) in unique.iter().zip(values.iter_mut()) {
                let mut out = out.index_axis_mut(ndarray::Axis(0), row);
                model_signal(logits, labels, *kind, &mut out);
            }
            progress(row + 1, models.len());
            Ok(())
        })?;
        Ok(Signals {
            models: models.to_vec(),
            kinds: unique,
            values,
        })
    }

    /// The models the signals are of, in row order.
    pub fn models(&self) -> &[usize] {
        &self.models
    }

    /// The K' x N x A values of `kind`, if it was computed.
    pub fn get(&self, kind: Signal) -> Option<&Array3<f64>> {
        let i = self.kinds.iter().position(|&k| k == kind)?;
        Some(&self.values[i])
    }

    /// Takes the values of `kind` out (to keep them without the others), if it was computed.
    pub fn take(&mut self, kind: Signal) -> Option<Array3<f64>> {
        let i = self.kinds.iter().position(|&k| k == kind)?;
        self.kinds.remove(i);
        Some(self.values.remove(i))
    }
}

/// `signal` of one model's N x A x C finite logits into `out` (N x A), on all threads of the
/// current rayon pool.
fn model_signal(
    logits: ArrayView3<'_, f32>,
    labels: &[u32],
    signal: Signal,
    out: &mut ndarray::ArrayViewMut2<'_, f64>,
) {
    let (_, a, c) = logits.dim();
    let standard = logits.as_standard_layout();
    let logits = standard.as_slice().expect("standard layout");
    let out = out
        .as_slice_mut()
        .expect("a row of a fresh standard-layout array is contiguous");
    out.par_chunks_mut(a)
        .zip(logits.par_chunks(a * c))
        .enumerate()
        .for_each(|(sample, (dst, src))| {
            let label = labels[sample] as usize;
            for (d, z) in dst.iter_mut().zip(src.chunks_exact(c)) {
                *d = signal.of(z, label);
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::npy::write_npy;
    use ndarray::{Array4, s};

    fn logits() -> Logits {
        Logits::new(Array4::from_shape_fn((4, 5, 2, 3), |(k, i, a, c)| {
            ((k * 7 + i * 3 + a * 5 + c * 11) % 13) as f32 * 0.37 - 2.0
        }))
        .unwrap()
    }

    fn files(logits: &Logits, dir: &Path) -> Vec<PathBuf> {
        (0..logits.models())
            .map(|k| {
                let path = dir.join(format!("m{k}.npy"));
                write_npy(&path, &logits.model(k)).unwrap();
                path
            })
            .collect()
    }

    #[test]
    fn streamed_signals_equal_the_in_memory_ones_for_every_kind() {
        let (logits, labels) = (logits(), [0u32, 1, 2, 0, 2]);
        let dir = tempfile::tempdir().unwrap();
        let source = ModelFiles::new(files(&logits, dir.path()), None).unwrap();
        assert_eq!(source.model_shape(), [5, 2, 3]);
        let models = [3, 1];
        let mut seen = Vec::new();
        let streamed = Signals::compute(&source, &models, &labels, &Signal::ALL, |d, t| {
            seen.push((d, t))
        })
        .unwrap();
        assert_eq!(seen, [(1, 2), (2, 2)]);
        assert_eq!(streamed.models(), &models);
        let chosen = logits.select_models(&models).unwrap();
        for kind in Signal::ALL {
            let expected = chosen.signals(&labels, kind).unwrap();
            assert_eq!(streamed.get(kind).unwrap(), &expected, "{kind:?}");
            // Against the per-vector definition, so the shared path is itself checked.
            let z = chosen.view().slice(s![1, 4, 1, ..]).to_vec();
            assert_eq!(expected[[1, 4, 1]], kind.of(&z, 2));
        }
    }

    #[test]
    fn every_accepted_layout_streams_and_a_wrong_shape_names_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let two_d = dir.path().join("nc.npy");
        write_npy(&two_d, &ndarray::Array2::<f32>::zeros((5, 3))).unwrap();
        let lira = dir.path().join("lira.npy");
        write_npy(&lira, &Array4::<f32>::ones((5, 1, 1, 3))).unwrap();
        let source = ModelFiles::new(vec![two_d.clone(), lira.clone()], None).unwrap();
        assert_eq!(source.model_shape(), [5, 1, 3]);
        assert!(source.is_plain_f32(1).unwrap());
        assert_eq!(source.model_file(1), Some(lira.as_path()));
        assert_eq!(source.model_logits(1).unwrap().dim(), (5, 1, 3));
        let odd = dir.path().join("odd.npy");
        write_npy(&odd, &ndarray::Array3::<f32>::zeros((4, 1, 3))).unwrap();
        let source = ModelFiles::new(vec![two_d, odd.clone()], None).unwrap();
        let err = Signals::compute(&source, &[0, 1], &[0; 5], &[Signal::Phi], |_, _| {})
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("odd.npy") && err.contains("[4, 1, 3]"),
            "{err}"
        );
    }

    #[test]
    fn bad_input_is_named_not_computed() {
        let mut raw = logits().into_array();
        raw[[2, 3, 1, 0]] = f32::NAN;
        let bad = Logits::new(raw).unwrap();
        let err = Signals::compute(&bad, &[0, 2], &[0, 1, 2, 0, 2], &[Signal::Phi], |_, _| {})
            .unwrap_err();
        assert!(
            matches!(
                err,
                CoreError::NonFiniteLogit {
                    model: 2,
                    sample: 3,
                    query: 1,
                    ..
                }
            ),
            "{err}"
        );
        let err = Signals::compute(&bad, &[9], &[0; 5], &[Signal::Phi], |_, _| {}).unwrap_err();
        assert!(err.to_string().contains("model 9"), "{err}");
        let err =
            Signals::compute(&bad, &[0], &[0, 1, 3, 0, 0], &[Signal::Phi], |_, _| {}).unwrap_err();
        assert!(
            matches!(err, CoreError::LabelOutOfRange { sample: 2, .. }),
            "{err}"
        );
        assert!(ModelFiles::new(Vec::new(), None).is_err());
    }
}

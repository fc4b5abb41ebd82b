//! memia for Python: the native module `memia._memia`, thin over memia's crates.
//!
//! The Python package (`python/memia/__init__.py`) converts what users pass (any numeric dtype,
//! any layout) into the contiguous arrays these functions take, so that this layer only checks
//! shapes, releases the GIL for the work and maps memia's errors to Python exceptions:
//! `MemiaError`, and below it `InvalidInput` for bad arguments and data, `RunError` for run
//! directories, `FileError` for files.

use std::path::PathBuf;

mod analysis;
mod progress;

use progress::Reporter;

use memia_attacks::AttackSpec;
use memia_core::{KeepMatrix, Logits, Signal, Signals};
use memia_memorization::MemorizationConfig;
use memia_metrics::{Direction, RocCurve, TprAtFpr};
use ndarray::{Array1, Array4};
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArray3, PyReadonlyArray1, PyReadonlyArray2,
    PyReadonlyArray3, PyReadonlyArray4,
};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyDict;

create_exception!(_memia, MemiaError, PyException, "Every error memia raises.");
create_exception!(
    _memia,
    InvalidInput,
    MemiaError,
    "Bad arguments or data: wrong shapes, NaN, labels out of range, unknown names."
);
create_exception!(
    _memia,
    RunError,
    MemiaError,
    "A run directory that is missing, incomplete, damaged or of another plan."
);
create_exception!(
    _memia,
    FileError,
    MemiaError,
    "A file that cannot be read or written."
);

/// The K x N keep matrix of a Python bool array.
fn keep_of(keep: PyReadonlyArray2<'_, bool>) -> PyResult<KeepMatrix> {
    KeepMatrix::from_array(keep.as_array().to_owned()).map_err(raise)
}

/// The exception for one of memia's errors, by its family; the message is memia's own.
pub(crate) fn raise(error: impl Into<Failure>) -> PyErr {
    match error.into() {
        Failure::Input(m) => InvalidInput::new_err(m),
        Failure::Run(m) => RunError::new_err(m),
        Failure::File(m) => FileError::new_err(m),
    }
}

/// memia's errors sorted into the families Python sees.
pub(crate) enum Failure {
    Input(String),
    Run(String),
    File(String),
}

impl From<memia_core::CoreError> for Failure {
    fn from(e: memia_core::CoreError) -> Self {
        match e {
            memia_core::CoreError::Io { .. } => Failure::File(e.to_string()),
            _ => Failure::Input(e.to_string()),
        }
    }
}

macro_rules! input_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for Failure {
            fn from(e: $t) -> Self {
                Failure::Input(e.to_string())
            }
        }
    )*};
}
input_errors!(
    memia_metrics::MetricsError,
    memia_memorization::MemorizationError,
    memia_attacks::AttackError,
    serde_json::Error
);

impl From<memia_audit::AuditError> for Failure {
    fn from(e: memia_audit::AuditError) -> Self {
        use memia_audit::AuditError as E;
        match e {
            E::Usage(_) | E::TargetOutOfRange { .. } => Failure::Input(e.to_string()),
            E::TrainingNotBuilt => Failure::Run(
                "this build of memia for Python trains none of memia's own models (no Burn in \
                 it): build it with `MATURIN_PEP517_ARGS=\"--features train\" pip install \
                 ./crates/memia-py` (a longer build); runs of an external trainer (`[train] \
                 external`) and imported runs need nothing more"
                    .into(),
            ),
            _ => Failure::Run(e.to_string()),
        }
    }
}

impl From<memia_shadow::ShadowError> for Failure {
    fn from(e: memia_shadow::ShadowError) -> Self {
        Failure::Run(e.to_string())
    }
}

/// A keep matrix, K x N bool: which samples each model trains on. `scheme` is `balanced`
/// (LiRA's halves: every sample IN for `ratio` of the models), `bernoulli` (each pair IN with
/// probability `ratio`) or `fixed-size` (each model trains on `ratio` of the samples).
#[pyfunction]
#[pyo3(signature = (models, samples, seed, scheme = "balanced", ratio = 0.5))]
fn keep_matrix<'py>(
    py: Python<'py>,
    models: usize,
    samples: usize,
    seed: u64,
    scheme: &str,
    ratio: f64,
) -> PyResult<Bound<'py, PyArray2<bool>>> {
    // A size this machine cannot hold is refused before anything is allocated.
    memia_shadow::MemoryLimit::detect()
        .and_then(|limit| memia_shadow::memory::check_keep_matrix(models, samples, &limit))
        .map_err(raise)?;
    let keep = py
        .detach(|| match scheme {
            "balanced" => KeepMatrix::balanced_with_ratio(models, samples, ratio, seed),
            "bernoulli" => KeepMatrix::bernoulli(models, samples, ratio, seed),
            "fixed-size" => KeepMatrix::fixed_size(models, samples, ratio, seed),
            other => Err(memia_core::CoreError::InvalidArgument {
                name: "scheme",
                reason: format!("'{other}': use balanced, bernoulli or fixed-size"),
            }),
        })
        .map_err(raise)?;
    Ok(keep.into_array().into_pyarray(py))
}

fn signal_named(name: &str) -> PyResult<Signal> {
    Signal::ALL
        .into_iter()
        .find(|s| s.name() == name)
        .ok_or_else(|| {
            let known: Vec<&str> = Signal::ALL.iter().map(|s| s.name()).collect();
            InvalidInput::new_err(format!("signal '{name}': use one of {}", known.join(", ")))
        })
}

pub(crate) fn logits_of(logits: PyReadonlyArray4<'_, f32>) -> PyResult<Logits> {
    Logits::new(logits.as_array().to_owned()).map_err(raise)
}

/// The signal `kind` (`phi`, `phi-reference`, `hinge`, `loss`, `probability`, `correct`) of
/// K x N x A x C float32 logits for the N `labels`: a K x N x A float64 array.
#[pyfunction]
fn signals<'py>(
    py: Python<'py>,
    logits: PyReadonlyArray4<'py, f32>,
    labels: PyReadonlyArray1<'py, u32>,
    kind: &str,
) -> PyResult<Bound<'py, PyArray3<f64>>> {
    let signal = signal_named(kind)?;
    let logits = logits_of(logits)?;
    let labels = labels.as_array().to_vec();
    let all: Vec<usize> = (0..logits.models()).collect();
    let mut computed = py
        .detach(|| Signals::compute(&logits, &all, &labels, &[signal], |_, _| {}))
        .map_err(raise)?;
    Ok(computed
        .take(signal)
        .expect("the signal asked for")
        .into_pyarray(py))
}

/// Feldman-Zhang memorization of every sample from the K x N keep matrix and the K x N x A
/// outcomes (correctness for label memorization, true-class probability for the soft one):
/// a dict of arrays `score`, `std_error`, `lower`, `upper`, `in_mean`, `out_mean`, `in_count`,
/// `out_count`, and `confidence`. Samples without IN or OUT models are NaN when
/// `allow_missing`, else an error.
#[pyfunction]
#[pyo3(signature = (keep, outcomes, confidence = 0.95, query = Some(0), allow_missing = true))]
fn memorization<'py>(
    py: Python<'py>,
    keep: PyReadonlyArray2<'py, bool>,
    outcomes: PyReadonlyArray3<'py, f64>,
    confidence: f64,
    query: Option<usize>,
    allow_missing: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let keep = keep_of(keep)?;
    let outcomes = outcomes.as_array();
    let (k, n, _) = outcomes.dim();
    if (k, n) != (keep.models(), keep.samples()) {
        return Err(InvalidInput::new_err(format!(
            "outcomes of {k} models x {n} samples for a keep matrix of {} x {}",
            keep.models(),
            keep.samples()
        )));
    }
    let mut config = MemorizationConfig::default()
        .with_confidence(confidence)
        .with_query(query);
    if allow_missing {
        config = config.allow_missing();
    }
    let mem = py
        .detach(|| config.estimate_from_signals(&keep, outcomes))
        .map_err(raise)?;
    let out = PyDict::new(py);
    out.set_item("score", mem.score.into_pyarray(py))?;
    out.set_item("std_error", mem.std_error.into_pyarray(py))?;
    out.set_item("lower", mem.lower.into_pyarray(py))?;
    out.set_item("upper", mem.upper.into_pyarray(py))?;
    out.set_item("in_mean", mem.in_mean.into_pyarray(py))?;
    out.set_item("out_mean", mem.out_mean.into_pyarray(py))?;
    out.set_item("in_count", mem.in_count.into_pyarray(py))?;
    out.set_item("out_count", mem.out_count.into_pyarray(py))?;
    out.set_item("confidence", mem.confidence)?;
    Ok(out)
}

/// Late learning (`memia_memorization::late_learning`) of every sample from the K x N keep
/// matrix and the models' K x N x T x C float32 training trajectories (logits at T
/// checkpoints): the IN models' outcome (`correct` or `probability`) at the last checkpoint
/// minus at the first, averaged. A dict of arrays `score`, `std_error`, `in_count`; samples no
/// model trained on are NaN when `allow_missing`, else an error.
#[pyfunction]
#[pyo3(signature = (keep, trajectories, labels, outcome = "correct", allow_missing = true))]
fn late_learning<'py>(
    py: Python<'py>,
    keep: PyReadonlyArray2<'py, bool>,
    trajectories: PyReadonlyArray4<'py, f32>,
    labels: PyReadonlyArray1<'py, u32>,
    outcome: &str,
    allow_missing: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let keep = keep_of(keep)?;
    let trajectories = logits_of(trajectories)?;
    let labels = labels.as_array().to_vec();
    let outcome = match outcome {
        "correct" => memia_memorization::Outcome::Correct,
        "probability" => memia_memorization::Outcome::Probability,
        other => {
            return Err(InvalidInput::new_err(format!(
                "outcome '{other}': use correct or probability"
            )));
        }
    };
    let missing = if allow_missing {
        memia_memorization::Missing::Allow
    } else {
        memia_memorization::Missing::Error
    };
    let late = py
        .detach(|| {
            memia_memorization::late_learning(&keep, &trajectories, &labels, outcome, missing)
        })
        .map_err(raise)?;
    let out = PyDict::new(py);
    out.set_item("score", late.score.into_pyarray(py))?;
    out.set_item("std_error", late.std_error.into_pyarray(py))?;
    out.set_item("in_count", late.in_count.into_pyarray(py))?;
    Ok(out)
}

/// The attack described by `spec_json` (as a configuration names it: `{"method":
/// "lira-online", "global_variance": true}`, `"rmia"`, `"loss"`, `"global"`, ...) fitted on the
/// shadow models (K x N keep, K x N x A signals of the attack's signal) and run on the target
/// (N x A): one score per sample, higher is member, NaN where it cannot judge. With
/// `candidates`, the focused attack: fitted and scored on those samples only (NaN elsewhere).
#[pyfunction]
#[pyo3(signature = (spec_json, keep, shadow, target, candidates = None))]
fn attack_scores<'py>(
    py: Python<'py>,
    spec_json: &str,
    keep: PyReadonlyArray2<'py, bool>,
    shadow: PyReadonlyArray3<'py, f64>,
    target: PyReadonlyArray2<'py, f64>,
    candidates: Option<Vec<usize>>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let spec: AttackSpec = serde_json::from_str(spec_json).map_err(raise)?;
    let keep = keep_of(keep)?;
    let (shadow, target) = (shadow.as_array(), target.as_array());
    if let Some(&bad) = candidates
        .as_deref()
        .and_then(|c| c.iter().find(|&&i| i >= keep.samples()))
    {
        return Err(InvalidInput::new_err(format!(
            "candidates: sample {bad} of {}",
            keep.samples()
        )));
    }
    let scores = py
        .detach(|| match candidates {
            None => memia_attacks::evaluation::score_target(&spec, &keep, shadow, target),
            Some(candidates) => {
                let focused = memia_attacks::Focused {
                    attack: spec,
                    candidates,
                };
                memia_attacks::evaluation::score_target(&focused, &keep, shadow, target)
            }
        })
        .map_err(raise)?;
    Ok(scores.into_pyarray(py))
}

/// The signal an attack (`spec_json`, as [`attack_scores`] takes it) reads, by name.
#[pyfunction]
fn attack_signal(spec_json: &str) -> PyResult<&'static str> {
    let spec: AttackSpec = serde_json::from_str(spec_json).map_err(raise)?;
    Ok(spec.signal().name())
}

/// Which way scores point, from the Python flag.
pub(crate) fn direction(lower_is_member: bool) -> Direction {
    if lower_is_member {
        Direction::LowerIsMember
    } else {
        Direction::HigherIsMember
    }
}

pub(crate) fn convention_named(name: &str) -> PyResult<TprAtFpr> {
    match name {
        "lira-strict" => Ok(TprAtFpr::LiraStrict),
        "interpolated" => Ok(TprAtFpr::Interpolated),
        other => Err(InvalidInput::new_err(format!(
            "convention '{other}': use lira-strict or interpolated"
        ))),
    }
}

/// A ROC curve of scores against membership, by memia's one rule for scores that are not
/// finite (a member not detected, a non-member left out).
#[pyclass(module = "memia._memia", frozen)]
struct Roc {
    curve: RocCurve,
}

#[pymethods]
impl Roc {
    #[new]
    #[pyo3(signature = (scores, members, lower_is_member = false))]
    fn new(
        py: Python<'_>,
        scores: PyReadonlyArray1<'_, f64>,
        members: PyReadonlyArray1<'_, bool>,
        lower_is_member: bool,
    ) -> PyResult<Self> {
        let direction = direction(lower_is_member);
        let (scores, members) = (scores.as_slice()?, members.as_slice()?);
        let curve = py
            .detach(|| RocCurve::with_undetermined(scores, members, direction))
            .map_err(raise)?;
        Ok(Roc { curve })
    }

    /// The area under the curve.
    #[getter]
    fn auroc(&self) -> f64 {
        self.curve.auc()
    }

    /// The true-positive rate at false-positive rate `fpr` (`lira-strict`: the largest TPR
    /// with FPR at most `fpr`, as the LiRA reference; `interpolated`: as scikit-learn's curve
    /// read between its points).
    #[pyo3(signature = (fpr, convention = "lira-strict"))]
    fn tpr_at_fpr(&self, fpr: f64, convention: &str) -> PyResult<f64> {
        self.curve
            .tpr_at_fpr(fpr, convention_named(convention)?)
            .map_err(raise)
    }

    /// The curve's points: false-positive rates, true-positive rates, thresholds.
    fn points<'py>(&self, py: Python<'py>) -> [Bound<'py, PyArray1<f64>>; 3] {
        [
            Array1::from(self.curve.fpr().to_vec()).into_pyarray(py),
            Array1::from(self.curve.tpr().to_vec()).into_pyarray(py),
            Array1::from(self.curve.thresholds().to_vec()).into_pyarray(py),
        ]
    }

    /// The summary memia reports (AUROC, balanced accuracy, advantage, TPR at each of `fprs`
    /// with its Clopper-Pearson interval, counts, undetermined samples), as JSON text.
    #[pyo3(signature = (fprs, convention = "lira-strict"))]
    fn summary_json(&self, fprs: Vec<f64>, convention: &str) -> PyResult<String> {
        let summary = self
            .curve
            .summary(&fprs, convention_named(convention)?)
            .map_err(raise)?;
        serde_json::to_string(&summary).map_err(raise)
    }
}

/// A model trained elsewhere as Python hands it over: its name, its N x A x C float32 logits on
/// the pool, and which samples it trained on when known.
type Outside<'py> = (
    String,
    PyReadonlyArray3<'py, f32>,
    Option<PyReadonlyArray1<'py, bool>>,
);

/// A run directory: open one, create one for models stored one by one, store a model's
/// logits, read where it stands, audit it.
#[pyclass(module = "memia._memia")]
struct Run {
    run: memia_audit::Run,
}

impl Run {
    /// The model an audit attacks: `outside` when given, else model `model` of the run.
    fn target(
        &self,
        model: Option<usize>,
        outside: Option<Outside<'_>>,
    ) -> PyResult<memia_audit::AuditTarget> {
        let Some((name, logits, members)) = outside else {
            return Ok(memia_audit::AuditTarget::Model(model.unwrap_or(0)));
        };
        let model = memia_audit::OutsideModel::from_logits(
            name.as_str(),
            logits.as_array(),
            self.run.dir.expected_logits_shape(),
        )
        .map_err(raise)?;
        Ok(memia_audit::AuditTarget::Outside(match members {
            Some(m) => model
                .with_members(m.as_array().to_vec(), &name)
                .map_err(raise)?,
            None => model,
        }))
    }
}

#[pymethods]
impl Run {
    /// Opens the run directory `path`.
    #[staticmethod]
    fn open(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let run = py.detach(|| memia_audit::Run::open(&path)).map_err(raise)?;
        Ok(Run { run })
    }

    /// Creates (or opens again) a run for models trained elsewhere, stored one by one with
    /// `store`: the K x N keep matrix is the plan; `labels` (N), every model's `queries` and
    /// `classes`, a `name`, and named groups as JSON (`[{"name": ..., "samples": [...]}]`).
    #[staticmethod]
    #[pyo3(signature = (path, keep, labels, queries, classes, name, groups_json = "[]"))]
    #[allow(clippy::too_many_arguments)] // Python's keyword arguments, one by one
    fn create(
        py: Python<'_>,
        path: PathBuf,
        keep: PyReadonlyArray2<'_, bool>,
        labels: PyReadonlyArray1<'_, u32>,
        queries: usize,
        classes: usize,
        name: &str,
        groups_json: &str,
    ) -> PyResult<Self> {
        let keep = keep_of(keep)?;
        let labels = labels.as_array().to_vec();
        let groups: Vec<memia_attacks::evaluation::EvalGroup> =
            serde_json::from_str(groups_json).map_err(raise)?;
        let run = py
            .detach(|| {
                memia_audit::Run::create_given(
                    &path,
                    &keep,
                    &labels,
                    [queries, classes],
                    name,
                    &groups,
                )
            })
            .map_err(raise)?;
        Ok(Run { run })
    }

    /// Imports models trained elsewhere as the new run `path` (built beside it and renamed into
    /// place when complete): the K x N keep matrix, the N labels, and either `logits` (K x N x
    /// A x C float32, in memory) or `files` (one `.npy` per model, in keep-row order, read one
    /// at a time; `link` hard-links them into the run instead of copying where it can), named
    /// `groups` (JSON) and the pool's `images` (N x C x H x W, for the report's thumbnails).
    /// `progress("storing", done, total)` per model. Returns the run and how many files were
    /// linked.
    #[staticmethod]
    #[pyo3(signature = (path, keep, labels, name, logits = None, files = None, groups_json = "[]", images = None, link = false, progress = None))]
    #[allow(clippy::too_many_arguments)] // Python's keyword arguments, one by one
    fn import_models(
        py: Python<'_>,
        path: PathBuf,
        keep: PyReadonlyArray2<'_, bool>,
        labels: PyReadonlyArray1<'_, u32>,
        name: &str,
        logits: Option<PyReadonlyArray4<'_, f32>>,
        files: Option<Vec<PathBuf>>,
        groups_json: &str,
        images: Option<PyReadonlyArray4<'_, f32>>,
        link: bool,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<(Self, usize)> {
        let keep = keep_of(keep)?;
        let labels = labels.as_array().to_vec();
        let groups: Vec<memia_attacks::evaluation::EvalGroup> =
            serde_json::from_str(groups_json).map_err(raise)?;
        let images = match images {
            Some(i) => Some(
                memia_audit::import::pool_images(i.as_array().to_owned().into_dyn(), labels.len())
                    .map_err(raise)?,
            ),
            None => None,
        };
        let in_memory = logits.map(logits_of).transpose()?;
        let on_disk = files
            .map(|f| memia_core::ModelFiles::new(f, None))
            .transpose()
            .map_err(raise)?;
        let source: &dyn memia_core::LogitsSource = match (&in_memory, &on_disk) {
            (Some(l), None) => l,
            (None, Some(f)) => f,
            _ => {
                return Err(InvalidInput::new_err(
                    "give the models' logits either as an array (logits) or as files (files)",
                ));
            }
        };
        let description = serde_json::json!({ "imported_from": "memia for Python" });
        let producer = memia_shadow::Producer::new("memia for Python import");
        let mut reporter = Reporter::new(progress);
        if !reporter.start("storing", keep.models()) {
            return reporter.finish(Err(InvalidInput::new_err("stopped before storing")));
        }
        let stored = py.detach(|| {
            memia_audit::import::Import {
                keep: &keep,
                logits: source,
                labels: &labels,
                groups: &groups,
                name,
                description: &description,
                producer: &producer,
                link,
                images: images.as_ref(),
            }
            .store(&path, |done, total| reporter.report("storing", done, total))
        });
        let stored = reporter.finish(stored.map_err(raise))?;
        let linked = match stored {
            memia_audit::import::Stored::Written { linked } => linked,
            memia_audit::import::Stored::AlreadyThere => 0,
        };
        let run = py.detach(|| memia_audit::Run::open(&path)).map_err(raise)?;
        Ok((Run { run }, linked))
    }

    /// The run's directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.run.path()
    }

    /// `(models, samples, queries, classes)`.
    #[getter]
    fn shape(&self) -> (usize, usize, usize, usize) {
        let [n, a, c] = self.run.dir.expected_logits_shape();
        (self.run.dir.plan().models, n, a, c)
    }

    /// The K x N keep matrix.
    #[getter]
    fn keep<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<bool>> {
        self.run.dir.keep().as_array().clone().into_pyarray(py)
    }

    /// The N labels.
    #[getter]
    fn labels<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u32>> {
        Array1::from(self.run.labels.clone()).into_pyarray(py)
    }

    /// The pool's named sample sets (`pool.json`'s groups: canaries, out-of-distribution
    /// samples, ...) as JSON `[{"name": ..., "samples": [...]}]`.
    fn groups_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.run.pool.groups).map_err(raise)
    }

    /// Which models are complete (bool per model): one header read each.
    fn completed(&self, py: Python<'_>) -> PyResult<Vec<bool>> {
        py.detach(|| self.run.dir.completed()).map_err(raise)
    }

    /// Stores model `k`'s N x A x C float32 logits (checked: shape, finite), recorded as made
    /// by `producer`.
    #[pyo3(signature = (k, logits, producer = "memia for Python"))]
    fn store(
        &self,
        py: Python<'_>,
        k: usize,
        logits: PyReadonlyArray3<'_, f32>,
        producer: &str,
    ) -> PyResult<()> {
        let logits = logits.as_array();
        let producer = memia_shadow::Producer::new(producer);
        py.detach(|| self.run.dir.store(k, logits, &producer))
            .map_err(raise)
    }

    /// Signals of models `models` (`kind` as for `signals`), read one model file at a time:
    /// a len(models) x N x A float64 array. `progress("reading", done, total)` per model.
    #[pyo3(signature = (models, kind, progress = None))]
    fn signals<'py>(
        &self,
        py: Python<'py>,
        models: Vec<usize>,
        kind: &str,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyArray3<f64>>> {
        let signal = signal_named(kind)?;
        let mut reporter = Reporter::new(progress);
        if !reporter.start("reading", models.len()) {
            return reporter.finish(Ok(PyArray3::zeros(py, [0, 0, 0], false)));
        }
        let computed = py.detach(|| -> Result<Signals, Failure> {
            let files = self.run.logits_files(&models, 1)?;
            Ok(Signals::compute(
                &files,
                &models,
                &self.run.labels,
                &[signal],
                |done, total| reporter.report("reading", done, total),
            )?)
        });
        let mut computed = reporter.finish(computed.map_err(raise))?;
        Ok(computed
            .take(signal)
            .expect("the signal asked for")
            .into_pyarray(py))
    }

    /// The sequential audit of the target (model `target` of the run, default its last; or
    /// `outside`, a model trained elsewhere): shadow models in rounds of 1, 2, 4, ... (at most
    /// `budget`) until the decisions on the candidates (memorization at least `threshold`) have
    /// an expected error rate of at most `delta`. A planned run trains the models a round needs
    /// where this build trains memia's models (or the run's trainer is an external command);
    /// otherwise it uses the models the run has. `progress("training", done, total)` while
    /// training, `progress("round", shadow_models, budget)` after each round. Returns its
    /// report as JSON text.
    #[pyo3(signature = (target = None, outside = None, delta = 0.01, threshold = 0.8, budget = None, progress = None))]
    #[allow(clippy::too_many_arguments)] // Python's keyword arguments, one by one
    fn sequential(
        &self,
        py: Python<'_>,
        target: Option<usize>,
        outside: Option<Outside<'_>>,
        delta: f64,
        threshold: f64,
        budget: Option<usize>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<String> {
        let models = self.run.dir.plan().models;
        let target = self.target(target.or(Some(models.saturating_sub(1))), outside)?;
        self.run.check_target(&target).map_err(raise)?;
        let config = memia_attacks::sequential::SequentialConfig { delta, threshold };
        let audit = self
            .run
            .sequential_rounds(&target, config, budget)
            .map_err(raise)?;
        let last = audit
            .rounds
            .as_ref()
            .and_then(|r| r.last().copied())
            .unwrap_or(0);
        let mut reporter = Reporter::new(progress);
        let report = py.detach(|| {
            self.run.sequential(
                &audit,
                &target,
                &memia_audit::trainer::Placement::default(),
                |event| match event {
                    memia_report::sequential::SequentialEvent::Training(p) => {
                        reporter.report("training", p.done, p.total)
                    }
                    memia_report::sequential::SequentialEvent::Round(r) => {
                        reporter.report("round", r.shadow_models, last)
                    }
                },
            )
        });
        if report.is_ok() {
            // The audit may stop before its budget: the last report closes the stage.
            reporter.report("round", last, last);
        }
        let report = reporter.finish(report.map_err(raise))?;
        serde_json::to_string(&report).map_err(raise)
    }

    /// The report's audit of model `target` (the other models its shadows) or of `outside`, a
    /// model trained elsewhere (every model of the run a shadow), with `config_json` (an
    /// `[audit]` table as JSON) or else the run's `[audit]` settings (or else the defaults);
    /// writes the report into `report_dir` when given.
    /// `progress(stage, done, total)` follows reading the models (`"reading"`) and the
    /// shadow-model curve (`"curve"`). Returns `summary.json`'s text.
    #[pyo3(signature = (target = None, outside = None, config_json = None, report_dir = None, progress = None))]
    fn audit(
        &self,
        py: Python<'_>,
        target: Option<usize>,
        outside: Option<Outside<'_>>,
        config_json: Option<&str>,
        report_dir: Option<PathBuf>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<String> {
        let mut config: memia_report::AuditConfig = match config_json {
            Some(json) => serde_json::from_str(json).map_err(raise)?,
            None => self
                .run
                .config()
                .map(|c| c.audit.clone())
                .unwrap_or_default(),
        };
        if let Some(t) = target {
            config.target = t;
        }
        let target = self.target(Some(config.target), outside)?;
        let mut reporter = Reporter::new(progress);
        if !reporter.start("reading", self.run.dir.plan().models) {
            return reporter.finish(Ok(String::new()));
        }
        let summary = py.detach(|| -> Result<String, Failure> {
            let audit = self
                .run
                .audit(&config, &target, None, |stage, done, total| {
                    let stage = match stage {
                        memia_report::AuditStage::Reading => "reading",
                        memia_report::AuditStage::Curve => "curve",
                    };
                    reporter.report(stage, done, total)
                })?;
            if let Some(dir) = &report_dir {
                audit.write(dir).map_err(|e| Failure::File(e.to_string()))?;
            }
            Ok(audit.summary_json())
        });
        reporter.finish(summary.map_err(raise))
    }

    /// Where the run stands: `memia status --json`'s fields (plan, finished and missing
    /// models, producers) as JSON text.
    fn status_json(&self, py: Python<'_>) -> PyResult<String> {
        let status = py.detach(|| self.run.status()).map_err(raise)?;
        serde_json::to_string(&status).map_err(raise)
    }

    /// Plans the run in `path` from a configuration (`memia plan`): `config_toml` (the file's
    /// text; relative data paths resolved against `base`) named `origin` in errors. Planning
    /// the same configuration again finds the run. `in_root`: `path` is a root under which
    /// each plan has its own directory (named by the plan's hash). Returns the run and whether
    /// it existed.
    #[staticmethod]
    #[pyo3(signature = (path, config_toml, origin, base, in_root = false))]
    fn plan(
        py: Python<'_>,
        path: PathBuf,
        config_toml: &str,
        origin: PathBuf,
        base: PathBuf,
        in_root: bool,
    ) -> PyResult<(Self, bool)> {
        let planned = py
            .detach(|| -> Result<_, Failure> {
                let config = memia_audit::RunConfig::parse(config_toml, &origin, &base)?;
                Ok(if in_root {
                    memia_audit::Run::plan_in(&config, &origin, &path)?
                } else {
                    memia_audit::Run::plan(&config, &origin, &path)?
                })
            })
            .map_err(raise)?;
        Ok((Run { run: planned.run }, planned.existed))
    }

    /// Trains models `start..end` of a planned run (default all) that are not finished, with
    /// its configuration's trainer: an external command, or memia's own models where this
    /// build has them (the `train` feature). `device`, `engine` and `group_size` override the
    /// configuration's `[train]` table. `progress("training", done, total)` before the first
    /// group and after each; Ctrl-C (or an exception from `progress`) stops after the group in
    /// training, keeping the finished models, and is raised (also when it came during the last
    /// group). Returns `(trained, skipped, seconds)`.
    #[pyo3(signature = (models = None, device = None, engine = None, group_size = None, allow_mixed_producers = false, progress = None))]
    #[allow(clippy::too_many_arguments)] // Python's keyword arguments, one by one
    fn train(
        &self,
        py: Python<'_>,
        models: Option<(usize, usize)>,
        device: Option<String>,
        engine: Option<&str>,
        group_size: Option<usize>,
        allow_mixed_producers: bool,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<(Vec<usize>, Vec<usize>, f64)> {
        let config = self.run.config().map_err(raise)?;
        let planned = self.run.dir.plan().models;
        let range = match models {
            Some((start, end)) if start <= end && end <= planned => start..end,
            Some((start, end)) => {
                return Err(InvalidInput::new_err(format!(
                    "models ({start}, {end}): not a range within the run's {planned} models"
                )));
            }
            None => 0..planned,
        };
        let placement = memia_audit::trainer::Placement {
            device,
            engine: engine
                .map(str::parse)
                .transpose()
                .map_err(|e: memia_models::ModelError| InvalidInput::new_err(e.to_string()))?,
            group_size,
        };
        let mut reporter = Reporter::new(progress);
        let report = py.detach(|| -> Result<_, Failure> {
            let trainer = memia_audit::trainer::trainer(config, &self.run.path(), &placement)?;
            let pool = self.run.planned_pool()?;
            let training =
                self.run
                    .check_training(trainer.as_dyn(), &pool, allow_mixed_producers)?;
            let done = self.run.dir.completed()?;
            let todo = range.clone().filter(|&k| !done[k]).count();
            if todo > 0 && !reporter.start("training", todo) {
                return Ok(None);
            }
            Ok(Some(training.train_while(range, |p| {
                reporter.report("training", p.done, p.total);
                !reporter.stopped()
            })?))
        });
        let Some(report) = reporter.finish(report.map_err(raise))? else {
            return Err(InvalidInput::new_err("stopped before training"));
        };
        Ok((report.trained, report.skipped, report.elapsed.as_secs_f64()))
    }
}

/// The area under the ROC curve of finite `scores` against `members`, without building the
/// curve (sorted in integer keys, summed exactly): the fast path for large score sets.
#[pyfunction]
#[pyo3(signature = (scores, members, lower_is_member = false))]
fn auroc(
    py: Python<'_>,
    scores: PyReadonlyArray1<'_, f64>,
    members: PyReadonlyArray1<'_, bool>,
    lower_is_member: bool,
) -> PyResult<f64> {
    let direction = direction(lower_is_member);
    let (scores, members) = (scores.as_slice()?, members.as_slice()?);
    py.detach(|| memia_metrics::auroc(scores, members, direction))
        .map_err(raise)
}

/// The correlation `kind` (`spearman`, `pearson`, `kendall`: Kendall's tau-b) of `x` and `y`
/// with its two-sided p-value: `(statistic, p_value)`.
#[pyfunction]
fn correlation(
    x: PyReadonlyArray1<'_, f64>,
    y: PyReadonlyArray1<'_, f64>,
    kind: &str,
) -> PyResult<(f64, f64)> {
    let (x, y) = (x.as_array().to_vec(), y.as_array().to_vec());
    let c = match kind {
        "spearman" => memia_metrics::spearman(&x, &y),
        "pearson" => memia_metrics::pearson(&x, &y),
        "kendall" => memia_metrics::kendall_tau_b(&x, &y),
        other => {
            return Err(InvalidInput::new_err(format!(
                "correlation '{other}': use spearman, pearson or kendall"
            )));
        }
    }
    .map_err(raise)?;
    Ok((c.statistic, c.p_value))
}

/// `(epsilon, (tpr_lower, tpr_upper), (fpr_lower, fpr_upper))`.
type EpsilonBoundTuple = (f64, (f64, f64), (f64, f64));

/// The epsilon lower bound of (epsilon, delta)-DP from one threshold's `true_positives` of
/// `positives` members and `false_positives` of `negatives` non-members, with Clopper-Pearson
/// intervals at `confidence` (valid when the threshold was chosen on other data):
/// `(epsilon, (tpr_lower, tpr_upper), (fpr_lower, fpr_upper))`.
#[pyfunction]
#[pyo3(signature = (true_positives, positives, false_positives, negatives, confidence = 0.95, delta = 0.0))]
fn epsilon_lower_bound(
    true_positives: u64,
    positives: u64,
    false_positives: u64,
    negatives: u64,
    confidence: f64,
    delta: f64,
) -> PyResult<EpsilonBoundTuple> {
    let b = memia_metrics::epsilon_lower_bound(
        true_positives,
        positives,
        false_positives,
        negatives,
        confidence,
        delta,
    )
    .map_err(raise)?;
    Ok((
        b.epsilon,
        (b.tpr.lower, b.tpr.upper),
        (b.fpr.lower, b.fpr.upper),
    ))
}

/// Leave one model out: each of `targets` (default: every model) in turn is the target, the
/// others its shadow models, drawn `repeats` times at each of `shadow_counts` (default 1, 2,
/// 4, ..., K - 1); the attack (`spec_json`) judged on all samples and on each named group (JSON
/// `[{"name": ..., "samples": [...]}]`). Returns the report as JSON text.
#[pyfunction]
#[pyo3(signature = (spec_json, keep, shadow, shadow_counts = None, targets = None, repeats = 1, fprs = vec![1e-3, 1e-2], groups_json = "[]", seed = 0, progress = None))]
#[allow(clippy::too_many_arguments)] // Python's keyword arguments, one by one
fn leave_one_out(
    py: Python<'_>,
    spec_json: &str,
    keep: PyReadonlyArray2<'_, bool>,
    shadow: PyReadonlyArray3<'_, f64>,
    shadow_counts: Option<Vec<usize>>,
    targets: Option<Vec<usize>>,
    repeats: usize,
    fprs: Vec<f64>,
    groups_json: &str,
    seed: u64,
    progress: Option<Py<PyAny>>,
) -> PyResult<String> {
    let spec: AttackSpec = serde_json::from_str(spec_json).map_err(raise)?;
    let keep = keep_of(keep)?;
    let groups = serde_json::from_str(groups_json).map_err(raise)?;
    let config = memia_attacks::loo::LooConfig {
        shadow_counts,
        repeats,
        targets,
        fprs,
        groups,
        seed,
    };
    let shadow = shadow.as_array();
    let mut reporter = Reporter::new(progress);
    let report = py.detach(|| {
        memia_attacks::loo::leave_one_out(&spec, &keep, shadow, &config, |done, total| {
            reporter.report("curve", done, total)
        })
    });
    let report = reporter.finish(report.map_err(raise))?;
    serde_json::to_string(&report).map_err(raise)
}

/// What [`budget`] returns: squared Hellinger distances and models needed.
type BudgetArrays<'py> = (Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<i64>>);

/// The shadow-model budget (the paper's theory): from the K x N keep matrix and K x N x A
/// correctness, each sample's squared Hellinger distance between its IN and OUT correctness and
/// the shadow models an auditor needs to tell them apart with error `delta` (-1: never, or
/// unknown). Returns `(hellinger_sq, models_needed)`.
#[pyfunction]
#[pyo3(signature = (keep, correct, delta = 0.01))]
fn budget<'py>(
    py: Python<'py>,
    keep: PyReadonlyArray2<'py, bool>,
    correct: PyReadonlyArray3<'py, f64>,
    delta: f64,
) -> PyResult<BudgetArrays<'py>> {
    let keep = keep_of(keep)?;
    let correct = correct.as_array();
    let plan = py
        .detach(|| -> Result<_, Failure> {
            let mem = MemorizationConfig::default()
                .allow_missing()
                .estimate_from_signals(&keep, correct)?;
            Ok(memia_attacks::theory::BudgetPlan::from_memorization(
                &mem, delta,
            )?)
        })
        .map_err(raise)?;
    let needed: Array1<i64> = plan
        .models_needed
        .iter()
        .map(|m| m.map_or(-1, |m| i64::try_from(m).unwrap_or(i64::MAX)))
        .collect();
    Ok((plan.hellinger_sq.into_pyarray(py), needed.into_pyarray(py)))
}

/// What [`synthetic_run`] returns: logits, keep matrix, labels, true memorization.
type SyntheticArrays<'py> = (
    Bound<'py, numpy::PyArray4<f32>>,
    Bound<'py, PyArray2<bool>>,
    Bound<'py, PyArray1<u32>>,
    Bound<'py, PyArray1<f64>>,
);

/// A K x N x A x C float32 logits array of known memorization, for tests and examples
/// (`memia_core::synthetic`): returns `(logits, keep, labels, memorization)`.
#[pyfunction]
#[pyo3(signature = (models, samples, queries, classes, seed = 0))]
fn synthetic_run<'py>(
    py: Python<'py>,
    models: usize,
    samples: usize,
    queries: usize,
    classes: usize,
    seed: u64,
) -> PyResult<SyntheticArrays<'py>> {
    let run = memia_core::synthetic::SyntheticRun {
        models,
        samples,
        queries,
        classes,
        seed,
    };
    if samples == 0 || queries == 0 || classes < 2 || models == 0 {
        return Err(InvalidInput::new_err(format!(
            "{models} models x {samples} samples x {queries} queries x {classes} classes: each at least 1, classes at least 2"
        )));
    }
    // The whole array is made in memory: a size this machine cannot hold is refused first.
    analysis::check_memory(
        "models",
        models,
        format!("the synthetic logits ({models} x {samples} x {queries} x {classes} float32)"),
        memia_shadow::memory::checked_product(&[
            models as u64,
            samples as u64,
            queries as u64,
            classes as u64,
            4,
        ]),
    )?;
    let (logits, keep, memorization) = py
        .detach(|| -> Result<_, memia_core::CoreError> {
            let keep = run.keep()?;
            let memorization = run.memorization();
            let mem = memorization.as_slice().expect("fresh array");
            let mut all = Array4::<f32>::zeros((models, samples, queries, classes));
            for k in 0..models {
                let model = run.model_logits(k, &keep, mem);
                all.index_axis_mut(ndarray::Axis(0), k)
                    .assign(&model.index_axis(ndarray::Axis(1), 0));
            }
            Ok((all, keep, memorization))
        })
        .map_err(raise)?;
    let labels: Array1<u32> = (0..samples).map(|i| (i % classes) as u32).collect();
    Ok((
        logits.into_pyarray(py),
        keep.into_array().into_pyarray(py),
        labels.into_pyarray(py),
        memorization.into_pyarray(py),
    ))
}

/// What [`load_pool`] returns: name, samples (N x sample shape), labels, classes, groups as
/// JSON, one provenance line per sample.
type PoolParts<'py> = (
    String,
    Bound<'py, numpy::PyArrayDyn<f32>>,
    Bound<'py, PyArray1<u32>>,
    usize,
    String,
    Vec<String>,
);

/// The pool a configuration's `[data]` table describes (`config_toml`, relative paths against
/// `base`, named `origin` in errors), drawn with its `[plan] seed`: the embedded digits, MNIST,
/// CIFAR-10 or a `.npz`, with its canaries, as `memia plan` builds it.
#[pyfunction]
fn load_pool<'py>(
    py: Python<'py>,
    config_toml: &str,
    origin: PathBuf,
    base: PathBuf,
) -> PyResult<PoolParts<'py>> {
    use memia_data::Dataset;
    let (pool, groups) = py
        .detach(|| -> Result<_, Failure> {
            let config = memia_audit::RunConfig::parse(config_toml, &origin, &base)?;
            let pool = memia_audit::pool::build(&config.data, config.plan.seed)?;
            let groups = memia_audit::pool::groups(&pool);
            Ok((pool, groups))
        })
        .map_err(raise)?;
    let data = &pool.dataset;
    let mut shape = vec![data.len()];
    shape.extend_from_slice(data.feature_shape());
    let samples = ndarray::ArrayD::from_shape_vec(shape, data.as_slice().to_vec())
        .expect("the data set's values fill its shape");
    Ok((
        data.name().to_string(),
        samples.into_pyarray(py),
        Array1::from(data.labels()).into_pyarray(py),
        data.classes(),
        serde_json::to_string(&groups).map_err(raise)?,
        memia_audit::pool::provenance_strings(&pool),
    ))
}

/// memia's native module.
#[pymodule]
fn _memia(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("MemiaError", py.get_type::<MemiaError>())?;
    m.add("InvalidInput", py.get_type::<InvalidInput>())?;
    m.add("RunError", py.get_type::<RunError>())?;
    m.add("FileError", py.get_type::<FileError>())?;
    m.add("SCHEMA_VERSION", memia_report::SCHEMA_VERSION)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(keep_matrix, m)?)?;
    m.add_function(wrap_pyfunction!(signals, m)?)?;
    m.add_function(wrap_pyfunction!(memorization, m)?)?;
    m.add_function(wrap_pyfunction!(late_learning, m)?)?;
    m.add_function(wrap_pyfunction!(attack_scores, m)?)?;
    m.add_function(wrap_pyfunction!(attack_signal, m)?)?;
    m.add_function(wrap_pyfunction!(synthetic_run, m)?)?;
    m.add_function(wrap_pyfunction!(correlation, m)?)?;
    m.add_function(wrap_pyfunction!(auroc, m)?)?;
    m.add_function(wrap_pyfunction!(epsilon_lower_bound, m)?)?;
    m.add_function(wrap_pyfunction!(leave_one_out, m)?)?;
    m.add_function(wrap_pyfunction!(budget, m)?)?;
    m.add_function(wrap_pyfunction!(load_pool, m)?)?;
    m.add_function(wrap_pyfunction!(analysis::knn_distance, m)?)?;
    m.add_function(wrap_pyfunction!(analysis::mahalanobis, m)?)?;
    m.add_function(wrap_pyfunction!(analysis::out_model_outlierness, m)?)?;
    m.add_function(wrap_pyfunction!(analysis::out_model_logits, m)?)?;
    m.add_function(wrap_pyfunction!(analysis::privacy_score, m)?)?;
    m.add_function(wrap_pyfunction!(analysis::candidates, m)?)?;
    m.add_function(wrap_pyfunction!(analysis::sequential_decisions, m)?)?;
    m.add_function(wrap_pyfunction!(analysis::bootstrap, m)?)?;
    m.add("TRAINING_BUILT", cfg!(feature = "train"))?;
    m.add_class::<Roc>()?;
    m.add_class::<Run>()?;
    Ok(())
}

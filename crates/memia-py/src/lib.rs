//! memia for Python: the native module `memia._memia`, thin over memia's crates.
//!
//! The Python package (`python/memia/__init__.py`) converts what users pass (any numeric dtype,
//! any layout) into the contiguous arrays these functions take, so that this layer only checks
//! shapes, releases the GIL for the work and maps memia's errors to Python exceptions:
//! `MemiaError`, and below it `InvalidInput` for bad arguments and data, `RunError` for run
//! directories, `FileError` for files.

use std::path::PathBuf;

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

/// The exception for one of memia's errors, by its family; the message is memia's own.
fn raise(error: impl Into<Failure>) -> PyErr {
    match error.into() {
        Failure::Input(m) => InvalidInput::new_err(m),
        Failure::Run(m) => RunError::new_err(m),
        Failure::File(m) => FileError::new_err(m),
    }
}

/// memia's errors sorted into the families Python sees.
enum Failure {
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

fn logits_of(logits: PyReadonlyArray4<'_, f32>) -> PyResult<Logits> {
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
    let keep = KeepMatrix::from_array(keep.as_array().to_owned()).map_err(raise)?;
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

/// The attack described by `spec_json` (as a configuration names it: `{"method":
/// "lira-online", "global_variance": true}`, `"rmia"`, `"loss"`, `"global"`, ...) fitted on the
/// shadow models (K x N keep, K x N x A signals of the attack's signal) and run on the target
/// (N x A): one score per sample, higher is member, NaN where it cannot judge.
#[pyfunction]
fn attack_scores<'py>(
    py: Python<'py>,
    spec_json: &str,
    keep: PyReadonlyArray2<'py, bool>,
    shadow: PyReadonlyArray3<'py, f64>,
    target: PyReadonlyArray2<'py, f64>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let spec: AttackSpec = serde_json::from_str(spec_json).map_err(raise)?;
    let keep = KeepMatrix::from_array(keep.as_array().to_owned()).map_err(raise)?;
    let (shadow, target) = (shadow.as_array(), target.as_array());
    let scores = py
        .detach(|| memia_attacks::evaluation::score_target(&spec, &keep, shadow, target))
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
fn direction(lower_is_member: bool) -> Direction {
    if lower_is_member {
        Direction::LowerIsMember
    } else {
        Direction::HigherIsMember
    }
}

fn convention_named(name: &str) -> PyResult<TprAtFpr> {
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

/// A run directory: open one, create one for models stored one by one, store a model's
/// logits, read where it stands, audit it.
#[pyclass(module = "memia._memia")]
struct Run {
    run: memia_audit::Run,
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
        let keep = KeepMatrix::from_array(keep.as_array().to_owned()).map_err(raise)?;
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
    /// Returns the run and how many files were linked.
    #[staticmethod]
    #[pyo3(signature = (path, keep, labels, name, logits = None, files = None, groups_json = "[]", images = None, link = false))]
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
    ) -> PyResult<(Self, usize)> {
        let keep = KeepMatrix::from_array(keep.as_array().to_owned()).map_err(raise)?;
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
        let stored = py
            .detach(|| {
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
                .store(&path, |_, _| {})
            })
            .map_err(raise)?;
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
    /// a len(models) x N x A float64 array.
    fn signals<'py>(
        &self,
        py: Python<'py>,
        models: Vec<usize>,
        kind: &str,
    ) -> PyResult<Bound<'py, PyArray3<f64>>> {
        let signal = signal_named(kind)?;
        let mut computed = py
            .detach(|| -> Result<Signals, Failure> {
                let files = self.run.logits_files(&models, 1)?;
                Ok(Signals::compute(
                    &files,
                    &models,
                    &self.run.labels,
                    &[signal],
                    |_, _| {},
                )?)
            })
            .map_err(raise)?;
        Ok(computed
            .take(signal)
            .expect("the signal asked for")
            .into_pyarray(py))
    }

    /// The sequential audit of model `target` (default: the run's last): shadow models in
    /// rounds of 1, 2, 4, ... (at most `budget`) until the decisions on the candidates
    /// (memorization at least `threshold`) have an expected error rate of at most `delta`. Uses
    /// the models the run has (this build trains none). Returns its report as JSON text.
    #[pyo3(signature = (target = None, delta = 0.01, threshold = 0.8, budget = None))]
    fn sequential(
        &self,
        py: Python<'_>,
        target: Option<usize>,
        delta: f64,
        threshold: f64,
        budget: Option<usize>,
    ) -> PyResult<String> {
        let models = self.run.dir.plan().models;
        let target = memia_audit::AuditTarget::Model(target.unwrap_or(models.saturating_sub(1)));
        self.run.check_target(&target).map_err(raise)?;
        let config = memia_attacks::sequential::SequentialConfig { delta, threshold };
        let audit = self
            .run
            .sequential_rounds(&target, config, budget)
            .map_err(raise)?;
        let report = py
            .detach(|| {
                self.run.sequential(
                    &audit,
                    &target,
                    &memia_audit::trainer::Placement::default(),
                    |_| {},
                )
            })
            .map_err(raise)?;
        serde_json::to_string(&report).map_err(raise)
    }

    /// The report's audit of model `target` (the other models its shadows), with the run's
    /// `[audit]` settings when it has a configuration, `config_json` (an `[audit]` table as
    /// JSON) otherwise or over them; writes the report into `report_dir` when given. Returns
    /// `summary.json`'s text.
    #[pyo3(signature = (target = None, config_json = None, report_dir = None))]
    fn audit(
        &self,
        py: Python<'_>,
        target: Option<usize>,
        config_json: Option<&str>,
        report_dir: Option<PathBuf>,
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
        py.detach(|| -> Result<String, Failure> {
            let target = memia_audit::AuditTarget::Model(config.target);
            let audit = self.run.audit(&config, &target, None, |_, _, _| {})?;
            if let Some(dir) = &report_dir {
                audit.write(dir).map_err(|e| Failure::File(e.to_string()))?;
            }
            Ok(audit.summary_json())
        })
        .map_err(raise)
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
#[pyo3(signature = (spec_json, keep, shadow, shadow_counts = None, targets = None, repeats = 1, fprs = vec![1e-3, 1e-2], groups_json = "[]", seed = 0))]
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
) -> PyResult<String> {
    let spec: AttackSpec = serde_json::from_str(spec_json).map_err(raise)?;
    let keep = KeepMatrix::from_array(keep.as_array().to_owned()).map_err(raise)?;
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
    let report = py
        .detach(|| memia_attacks::loo::leave_one_out(&spec, &keep, shadow, &config, |_, _| {}))
        .map_err(raise)?;
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
    let keep = KeepMatrix::from_array(keep.as_array().to_owned()).map_err(raise)?;
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
    m.add_function(wrap_pyfunction!(attack_scores, m)?)?;
    m.add_function(wrap_pyfunction!(attack_signal, m)?)?;
    m.add_function(wrap_pyfunction!(synthetic_run, m)?)?;
    m.add_function(wrap_pyfunction!(correlation, m)?)?;
    m.add_function(wrap_pyfunction!(auroc, m)?)?;
    m.add_function(wrap_pyfunction!(epsilon_lower_bound, m)?)?;
    m.add_function(wrap_pyfunction!(leave_one_out, m)?)?;
    m.add_function(wrap_pyfunction!(budget, m)?)?;
    m.add_class::<Roc>()?;
    m.add_class::<Run>()?;
    Ok(())
}

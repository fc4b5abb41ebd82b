//! The analysis functions beside the attacks: outlierness baselines, candidate selection, the
//! privacy score, the sequential decisions and the bootstrap.

use memia_attacks::CandidateRule;
use memia_attacks::sequential::SequentialConfig;
use memia_memorization::outlier;
use memia_metrics::{Bootstrap, Statistic};
use ndarray::Array1;
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyReadonlyArray3,
    PyReadonlyArray4,
};
use pyo3::prelude::*;

use crate::{Failure, InvalidInput, convention_named, direction, keep_of, logits_of, raise};

/// Refuses work whose buffers (`bytes`, `None`: more than 64 bits count) do not fit in this
/// machine's memory, naming the setting at fault: an allocation that fails aborts the
/// interpreter.
pub(crate) fn check_memory(
    setting: &'static str,
    value: usize,
    what: String,
    bytes: Option<u64>,
) -> PyResult<()> {
    memia_shadow::MemoryLimit::detect()
        .and_then(|limit| limit.check(setting, value.to_string(), what, bytes))
        .map_err(raise)
}

/// Mean Euclidean distance from each sample (a row of the N x d float32 `features`) to its
/// `k` nearest other samples, as scikit-learn's `NearestNeighbors` (exact, brute force).
#[pyfunction]
pub(crate) fn knn_distance<'py>(
    py: Python<'py>,
    features: PyReadonlyArray2<'py, f32>,
    k: usize,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let features = features.as_array();
    let (n, d) = features.dim();
    // The samples in float64, and per thread a block of 256 rows' distances to every sample.
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get()) as u64;
    check_memory(
        "features",
        n,
        format!("the distances of {n} samples ({threads} threads x 256 x {n} float64)"),
        memia_shadow::memory::checked_product(&[n as u64, d as u64 + 256 * threads, 8]),
    )?;
    let out = py
        .detach(|| outlier::knn_distance(features, k))
        .map_err(raise)?;
    Ok(out.into_pyarray(py))
}

/// Class-conditional Mahalanobis distance of each sample (N x d float32 `features`, N
/// `labels`) to its class mean, one covariance shared by the classes, `ridge` added to its
/// diagonal (Lee et al. 2018).
#[pyfunction]
pub(crate) fn mahalanobis<'py>(
    py: Python<'py>,
    features: PyReadonlyArray2<'py, f32>,
    labels: PyReadonlyArray1<'py, u32>,
    ridge: f64,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let features = features.as_array();
    let labels = labels.as_array().to_vec();
    let (n, d) = features.dim();
    // The covariance, its Cholesky factor and inverse (d x d each), and the samples twice.
    check_memory(
        "features",
        d,
        format!("the covariance of {d} features (3 x {d} x {d} float64)"),
        memia_shadow::memory::checked_product(&[d as u64, 3 * d as u64 + 2 * n as u64, 8]),
    )?;
    let out = py
        .detach(|| outlier::mahalanobis(features, &labels, ridge))
        .map_err(raise)?;
    Ok(out.into_pyarray(py))
}

/// The OUT models' view of each sample from K x N x A x C float32 logits: `msp` (one minus
/// the maximum softmax probability) or `energy` (`-logsumexp`), averaged over the models that
/// did not train on it, at query `query`.
#[pyfunction]
pub(crate) fn out_model_outlierness<'py>(
    py: Python<'py>,
    keep: PyReadonlyArray2<'py, bool>,
    logits: PyReadonlyArray4<'py, f32>,
    kind: &str,
    query: usize,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let keep = keep_of(keep)?;
    let logits = logits_of(logits)?;
    let score = match kind {
        "msp" => outlier::out_model_msp_outlierness,
        "energy" => outlier::out_model_energy,
        other => {
            return Err(InvalidInput::new_err(format!(
                "outlierness '{other}': use msp or energy"
            )));
        }
    };
    let out = py.detach(|| score(&keep, &logits, query)).map_err(raise)?;
    Ok(out.into_pyarray(py))
}

/// Each sample's mean logits over its OUT models (N x C float32): the features of the
/// logit-space Mahalanobis baseline.
#[pyfunction]
pub(crate) fn out_model_logits<'py>(
    py: Python<'py>,
    keep: PyReadonlyArray2<'py, bool>,
    logits: PyReadonlyArray4<'py, f32>,
    query: usize,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let keep = keep_of(keep)?;
    let logits = logits_of(logits)?;
    let out = py
        .detach(|| outlier::out_model_logits(&keep, &logits, query))
        .map_err(raise)?;
    Ok(out.into_pyarray(py))
}

/// The privacy score `|mu_in - mu_out| / (sd_in + sd_out)` of every sample from the K x N keep
/// matrix and K x N x A shadow signals (NaN without IN or OUT models).
#[pyfunction]
pub(crate) fn privacy_score<'py>(
    py: Python<'py>,
    keep: PyReadonlyArray2<'py, bool>,
    shadow: PyReadonlyArray3<'py, f64>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let keep = keep_of(keep)?;
    let shadow = shadow.as_array();
    let out = py
        .detach(|| memia_attacks::theory::privacy_score(&keep, shadow))
        .map_err(raise)?;
    Ok(out.into_pyarray(py))
}

/// The focused attack's candidates, sorted: the samples whose `memorization` is at least
/// `at_least`, the `top` most memorized, or those whose `privacy` score is at least
/// `privacy_at_least` (exactly one rule). NaN is never chosen.
#[pyfunction]
#[pyo3(signature = (memorization, at_least = None, top = None, privacy = None, privacy_at_least = None))]
pub(crate) fn candidates<'py>(
    py: Python<'py>,
    memorization: PyReadonlyArray1<'py, f64>,
    at_least: Option<f64>,
    top: Option<usize>,
    privacy: Option<PyReadonlyArray1<'py, f64>>,
    privacy_at_least: Option<f64>,
) -> PyResult<Bound<'py, PyArray1<u64>>> {
    let rule = match (at_least, top, privacy_at_least) {
        (Some(t), None, None) => CandidateRule::MemorizationAtLeast(
            memia_attacks::check_memorization_threshold(t).map_err(raise)?,
        ),
        (None, Some(k), None) => CandidateRule::TopMemorized(k),
        (None, None, Some(t)) => CandidateRule::PrivacyScoreAtLeast(t),
        _ => {
            return Err(InvalidInput::new_err(
                "candidates: give exactly one rule (at_least, top or privacy_at_least)",
            ));
        }
    };
    let memorization = memorization.as_array().to_vec();
    let privacy = privacy.map(|p| p.as_array().to_vec());
    let chosen = rule
        .select_scores(&memorization, privacy.as_deref())
        .map_err(raise)?;
    Ok(Array1::from_iter(chosen.into_iter().map(|i| i as u64)).into_pyarray(py))
}

/// The sequential audit's decisions on `samples` from the shadow models (K x N keep, K x N x
/// A signals of `phi`) and the target's N x A signals: one JSON object per decided sample
/// (`sample`, `member`, `error`, `memorization`, `in_models`, `out_models`).
#[pyfunction]
#[pyo3(signature = (keep, shadow, target, samples, delta = 0.01, threshold = 0.8))]
#[allow(clippy::too_many_arguments)] // Python's keyword arguments, one by one
pub(crate) fn sequential_decisions(
    py: Python<'_>,
    keep: PyReadonlyArray2<'_, bool>,
    shadow: PyReadonlyArray3<'_, f64>,
    target: PyReadonlyArray2<'_, f64>,
    samples: Vec<usize>,
    delta: f64,
    threshold: f64,
) -> PyResult<String> {
    let keep = keep_of(keep)?;
    let config = SequentialConfig { delta, threshold };
    config.check().map_err(raise)?;
    let (shadow, target) = (shadow.as_array(), target.as_array());
    let decisions = py
        .detach(|| config.decide(&keep, shadow, target, &samples))
        .map_err(raise)?;
    serde_json::to_string(&decisions).map_err(raise)
}

/// A stratified percentile bootstrap of the AUROC (`fpr` None) or of the TPR at `fpr` (in
/// `convention`) of `scores` against `members`: `(estimate, lower, upper)` at `confidence`,
/// from `resamples` resamples drawn from `seed` (the same on any number of threads).
#[pyfunction]
#[pyo3(signature = (scores, members, fpr = None, convention = "lira-strict", resamples = 1000, confidence = 0.95, seed = 0, lower_is_member = false))]
#[allow(clippy::too_many_arguments)] // Python's keyword arguments, one by one
pub(crate) fn bootstrap(
    py: Python<'_>,
    scores: PyReadonlyArray1<'_, f64>,
    members: PyReadonlyArray1<'_, bool>,
    fpr: Option<f64>,
    convention: &str,
    resamples: usize,
    confidence: f64,
    seed: u64,
    lower_is_member: bool,
) -> PyResult<(f64, f64, f64)> {
    let statistic = match fpr {
        None => Statistic::Auroc,
        Some(f) => Statistic::TprAtFpr(f, convention_named(convention)?),
    };
    let settings = Bootstrap {
        resamples,
        confidence,
        seed,
    };
    let (scores, members) = (scores.as_slice()?, members.as_slice()?);
    let interval = py
        .detach(|| -> Result<_, Failure> {
            Ok(settings.interval(scores, members, direction(lower_is_member), statistic)?)
        })
        .map_err(raise)?;
    Ok((interval.estimate, interval.lower, interval.upper))
}

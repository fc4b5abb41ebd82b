"""memia: memorization-aware membership inference, from Python.

Numpy arrays in and out; the work runs in memia's Rust crates with the GIL released. The same
numbers as the ``memia`` command line and the Rust crates (one implementation underneath).

>>> import numpy as np, memia
>>> logits, keep, labels, truth = memia.synthetic_run(16, 200, 1, 10, seed=1)
>>> mem = memia.memorization(keep, memia.signals(logits, labels, "correct"))
>>> phi = memia.signals(logits, labels, "phi")
>>> scores = memia.attack_scores("lira-online", keep[1:], phi[1:], phi[0])
>>> 0.5 < memia.Roc(scores, keep[0]).auroc <= 1.0
True
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

import numpy as np

from . import _memia
from ._memia import (  # noqa: F401  (re-exported)
    SCHEMA_VERSION,
    FileError,
    InvalidInput,
    MemiaError,
    TRAINING_BUILT,
    RunError,
    __version__,
)

__all__ = [
    "SCHEMA_VERSION",
    "TRAINING_BUILT",
    "MemiaError",
    "InvalidInput",
    "RunError",
    "FileError",
    "keep_matrix",
    "signals",
    "memorization",
    "Memorization",
    "late_learning",
    "attack_scores",
    "attack_signal",
    "Roc",
    "Run",
    "synthetic_run",
    "correlation",
    "auroc",
    "epsilon_lower_bound",
    "leave_one_out",
    "budget",
    "candidates",
    "privacy_score",
    "knn_distance",
    "mahalanobis",
    "out_model_outlierness",
    "out_model_logits",
    "sequential_decisions",
    "bootstrap",
    "Interval",
    "OutsideModel",
    "print_progress",
    "Pool",
    "load_pool",
]

AttackLike = Union[str, Dict[str, Any]]
#: ``progress(stage, done, total)``, called at most ten times a second during long work; or
#: ``True`` for :func:`print_progress`.
Progress = Union[None, bool, Callable[[str, int, int], Any]]


def print_progress(stage: str, done: int, total: int) -> None:
    """A progress line on standard error (what ``progress=True`` uses): the stage, the count
    and the elapsed time, rewritten in place."""
    now = time.monotonic()
    started = _progress_started.setdefault(stage, now)
    end = "\n" if done >= total else ""
    sys.stderr.write(f"\r{stage}: {done}/{total} ({now - started:.1f} s)" + end)
    sys.stderr.flush()
    if done >= total:
        _progress_started.pop(stage, None)


_progress_started: Dict[str, float] = {}


def _progress(progress: Progress) -> Optional[Callable[[str, int, int], Any]]:
    if progress is True:
        return print_progress
    if progress is None or progress is False:
        return None
    if not callable(progress):
        raise InvalidInput(f"progress: a callable or True, found {type(progress).__name__}")
    return progress


def _array(value: Any, dtype: Any, ndim: int, name: str) -> np.ndarray:
    """``value`` as a C-contiguous array of ``dtype`` and ``ndim`` dimensions (copied only where
    its dtype or layout differ), or ``InvalidInput`` naming ``name``."""
    try:
        array = np.asarray(value)
    except Exception as e:  # pragma: no cover - numpy's own message is kept
        raise InvalidInput(f"{name}: not an array ({e})") from None
    if array.ndim != ndim:
        raise InvalidInput(f"{name}: {array.ndim} dimensions {array.shape}, expected {ndim}")
    if dtype is bool:
        if array.dtype != np.bool_:
            if not np.issubdtype(array.dtype, np.integer) or not np.isin(array, (0, 1)).all():
                raise InvalidInput(f"{name}: expected booleans or 0/1, found {array.dtype}")
        return np.ascontiguousarray(array, dtype=np.bool_)
    if dtype is np.uint32:
        if not np.issubdtype(array.dtype, np.integer):
            raise InvalidInput(f"{name}: expected integer labels, found {array.dtype}")
        if array.size and (array.min() < 0 or array.max() > np.iinfo(np.uint32).max):
            raise InvalidInput(f"{name}: labels must be non-negative (found {array.min()})")
        return np.ascontiguousarray(array, dtype=np.uint32)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise InvalidInput(f"{name}: expected numbers, found {array.dtype}")
    try:
        with np.errstate(over="raise"):
            return np.ascontiguousarray(array, dtype=dtype)
    except FloatingPointError:
        raise InvalidInput(f"{name}: values beyond {np.dtype(dtype).name}'s range "
                           f"(largest magnitude {np.abs(array).max():g})") from None


def _per_query(value: Any, ndim: int, name: str) -> np.ndarray:
    """float64 signals with their query axis last: one dimension fewer is read as one query."""
    array = np.asarray(value)
    if array.ndim == ndim - 1:
        array = array[..., None]
    return _array(array, np.float64, ndim, name)


def _logits(value: Any, name: str = "logits") -> np.ndarray:
    """K x N x A x C float32 logits; K x N x C is read as one query."""
    array = np.asarray(value)
    if array.ndim == 3:
        array = array[:, :, None, :]
    return _array(array, np.float32, 4, name)


def _scores_members(scores: Any, members: Any) -> "tuple[np.ndarray, np.ndarray]":
    """Attack scores (float64) and membership (bool) of the same samples, or ``InvalidInput``."""
    scores_array = _array(scores, np.float64, 1, "scores")
    members_array = _array(members, bool, 1, "members")
    if len(scores_array) != len(members_array):
        raise InvalidInput(
            f"{len(scores_array)} scores for {len(members_array)} membership entries")
    return scores_array, members_array


def _groups_from_json(text: str) -> Dict[str, np.ndarray]:
    """memia's named sample sets (``[{"name": ..., "samples": [...]}]``) as name to indices."""
    return {g["name"]: np.asarray(g["samples"], dtype=np.intp) for g in json.loads(text)}


def _groups_json(groups: Optional[Dict[str, Iterable[int]]]) -> str:
    """Named sample sets as memia reads them: ``[{"name": ..., "samples": [...]}]``."""
    return json.dumps([{"name": n, "samples": [int(i) for i in s]}
                       for n, s in (groups or {}).items()])


def _attack_json(attack: AttackLike) -> str:
    if isinstance(attack, str):
        return json.dumps({"method": attack})
    if isinstance(attack, dict):
        return json.dumps(attack)
    raise InvalidInput(f"attack: a method name or a dict, found {type(attack).__name__}")


def keep_matrix(
    models: int, samples: int, seed: int, scheme: str = "balanced", ratio: float = 0.5
) -> np.ndarray:
    """A seeded K x N bool keep matrix: row k says which samples model k trains on.

    ``scheme``: ``"balanced"`` (LiRA's halves: every sample IN for ``ratio`` of the models),
    ``"bernoulli"`` (each model-sample pair IN with probability ``ratio``) or ``"fixed-size"``
    (each model trains on ``ratio`` of the samples). The same seed gives the same matrix as the
    Rust crates and the command line.
    """
    return _memia.keep_matrix(models, samples, seed, scheme, ratio)


def signals(logits: Any, labels: Any, kind: str = "phi") -> np.ndarray:
    """A scalar signal of every model, sample and query: a K x N x A float64 array.

    ``logits``: K x N x A x C (or K x N x C), any float dtype and layout. ``labels``: N integers.
    ``kind``: ``"phi"`` (LiRA's logit-scaled confidence), ``"phi-reference"`` (as the LiRA
    reference's score.py), ``"hinge"``, ``"loss"``, ``"probability"`` or ``"correct"``.
    """
    return _memia.signals(_logits(logits), _array(labels, np.uint32, 1, "labels"), kind)


class Memorization:
    """Feldman-Zhang memorization of every sample, with its standard error and interval.

    Attributes (numpy arrays of N): ``score``, ``std_error``, ``lower``, ``upper`` (the
    interval, Newcombe's combination of Clopper-Pearson intervals), ``in_mean``, ``out_mean``,
    ``in_count``, ``out_count``; and ``confidence``. NaN where a sample has no IN or no OUT model.
    """

    score: np.ndarray
    std_error: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    in_mean: np.ndarray
    out_mean: np.ndarray
    in_count: np.ndarray
    out_count: np.ndarray
    confidence: float

    def __init__(self, fields: Dict[str, Any]) -> None:
        for key, value in fields.items():
            setattr(self, key, value)

    def to_dict(self) -> Dict[str, Any]:
        """Plain lists and floats (NaN as None), for JSON."""
        out: Dict[str, Any] = {}
        for key in ("score", "std_error", "lower", "upper", "in_mean", "out_mean",
                    "in_count", "out_count"):
            values = getattr(self, key).tolist()
            out[key] = [None if isinstance(v, float) and v != v else v for v in values]
        out["confidence"] = self.confidence
        return out

    def __repr__(self) -> str:
        defined = self.score[np.isfinite(self.score)]
        return (f"Memorization({len(self.score)} samples, mean {defined.mean():.4f}, "
                f"{int((defined >= 0.8).sum())} at least 0.8)" if len(defined)
                else f"Memorization({len(self.score)} samples, none determined)")


def memorization(
    keep: Any,
    outcomes: Any,
    confidence: float = 0.95,
    query: Optional[int] = 0,
    allow_missing: bool = True,
) -> Memorization:
    """Feldman-Zhang memorization from the K x N keep matrix and K x N x A outcomes.

    ``outcomes``: ``signals(logits, labels, "correct")`` for label memorization, or
    ``"probability"`` for the soft variant (K x N is read as one query). ``query``: which query
    to use (``None``: their mean). Samples without IN or OUT models are NaN unless
    ``allow_missing`` is false (then ``InvalidInput`` names the first).
    """
    fields = _memia.memorization(
        _array(keep, bool, 2, "keep"),
        _per_query(outcomes, 3, "outcomes"),
        confidence,
        query,
        allow_missing,
    )
    return Memorization(fields)


def late_learning(keep: Any, trajectories: Any, labels: Any, outcome: str = "correct",
                  allow_missing: bool = True) -> Dict[str, np.ndarray]:
    """Memorization read off the models' own training: late learning of every sample.

    ``trajectories``: the K x N x T x C logits of the models of ``keep`` (K x N) at T >= 2
    checkpoints, oldest first (a run's ``trajectories/model_KKKKK.npy`` stacked, or your
    trainer's). The score is the mean over the models trained on the sample of their outcome
    (``"correct"`` or ``"probability"``) at the last checkpoint minus at the first: 1 for a
    sample wrong at the first checkpoint and right at the end. No OUT model is needed. Returns
    ``score``, ``std_error`` and ``in_count`` (arrays of N); NaN where no model trained on the
    sample unless ``allow_missing`` is false (then ``InvalidInput`` names it).
    """
    return _memia.late_learning(
        _array(keep, bool, 2, "keep"),
        _logits(trajectories, "trajectories"),
        _array(labels, np.uint32, 1, "labels"),
        outcome,
        allow_missing,
    )


def attack_signal(attack: AttackLike) -> str:
    """The signal ``attack`` reads (``"phi"``, ``"probability"``, ``"loss"``, ...)."""
    return _memia.attack_signal(_attack_json(attack))


def attack_scores(attack: AttackLike, keep: Any, shadow: Any, target: Any,
                  candidates: Any = None) -> np.ndarray:
    """An attack fitted on the shadow models and run on a target: one score per sample.

    ``attack``: a method (``"lira-online"``, ``"lira-offline"``, ``"rmia"``, ``"loss"``,
    ``"global"``) or a dict as a configuration file names it
    (``{"method": "lira-online", "global_variance": True}``). ``keep``: the shadow models'
    K x N keep matrix; ``shadow``: their K x N x A signals of ``attack_signal(attack)``;
    ``target``: the target's N x A signals (N is read as one query). Higher is member; NaN
    where the shadows cannot judge a sample. ``candidates`` (sample indices, say from
    :func:`candidates`; repeats count once): the focused attack, fitted and scored on them only
    (NaN elsewhere).
    """
    return _memia.attack_scores(
        _attack_json(attack),
        _array(keep, bool, 2, "keep"),
        _per_query(shadow, 3, "shadow"),
        _per_query(target, 2, "target"),
        None if candidates is None else sorted(set(_indices(candidates, "candidates"))),
    )


def _indices(values: Any, name: str) -> List[int]:
    array = np.asarray(values)
    if array.ndim != 1 or not (np.issubdtype(array.dtype, np.integer) or array.size == 0):
        raise InvalidInput(f"{name}: expected a list of sample indices, found {array.dtype} "
                           f"of shape {array.shape}")
    if array.size and array.min() < 0:
        raise InvalidInput(f"{name}: negative sample index {array.min()}")
    return [int(i) for i in array]


def candidates(memorization: Any, at_least: Optional[float] = None, top: Optional[int] = None,
               privacy: Any = None, privacy_at_least: Optional[float] = None) -> np.ndarray:
    """The focused attack's candidate samples (sorted indices) by exactly one rule: memorization
    at least ``at_least`` (the paper's 0.8), the ``top`` most memorized, or a ``privacy`` score
    (:func:`privacy_score`) at least ``privacy_at_least``. ``memorization``: a
    :class:`Memorization` or its N scores. Undetermined (NaN) samples are never chosen."""
    scores = memorization.score if isinstance(memorization, Memorization) else memorization
    return _memia.candidates(
        _array(scores, np.float64, 1, "memorization"), at_least, top,
        None if privacy is None else _array(privacy, np.float64, 1, "privacy"),
        privacy_at_least).astype(np.intp)


def privacy_score(keep: Any, shadow: Any) -> np.ndarray:
    """Each sample's privacy score ``|mu_in - mu_out| / (sd_in + sd_out)`` from the shadow
    models' K x N ``keep`` matrix and K x N x A signals (NaN without IN or OUT models)."""
    return _memia.privacy_score(_array(keep, bool, 2, "keep"), _per_query(shadow, 3, "shadow"))


def knn_distance(features: Any, k: int = 5) -> np.ndarray:
    """Outlierness baseline: each sample's mean Euclidean distance to its ``k`` nearest other
    samples (rows of the N x d ``features``), as scikit-learn's ``NearestNeighbors``."""
    return _memia.knn_distance(_array(features, np.float32, 2, "features"), k)


def mahalanobis(features: Any, labels: Any, ridge: float = 0.0) -> np.ndarray:
    """Outlierness baseline: each sample's Mahalanobis distance to its class mean, one
    covariance shared by the classes (``ridge`` added to its diagonal; Lee et al. 2018)."""
    return _memia.mahalanobis(_array(features, np.float32, 2, "features"),
                              _array(labels, np.uint32, 1, "labels"), ridge)


def out_model_outlierness(keep: Any, logits: Any, kind: str = "msp",
                          query: int = 0) -> np.ndarray:
    """Outlierness baseline from the models that did not train on each sample: ``"msp"`` (one
    minus the maximum softmax probability) or ``"energy"`` (``-logsumexp`` of the logits),
    averaged over its OUT models."""
    return _memia.out_model_outlierness(_array(keep, bool, 2, "keep"), _logits(logits), kind,
                                        query)


def out_model_logits(keep: Any, logits: Any, query: int = 0) -> np.ndarray:
    """Each sample's mean logits over its OUT models (N x C float32): the features of the
    logit-space Mahalanobis baseline (``mahalanobis(out_model_logits(keep, logits), labels)``)."""
    return _memia.out_model_logits(_array(keep, bool, 2, "keep"), _logits(logits), query)


def sequential_decisions(keep: Any, shadow: Any, target: Any, samples: Any,
                         delta: float = 0.01, threshold: float = 0.8) -> List[Dict[str, Any]]:
    """The sequential audit's membership decisions on ``samples`` from the shadow models'
    K x N ``keep`` matrix and K x N x A ``phi`` signals and the target's N x A: one dict per
    decided sample (``sample``, ``member``, ``error``: the posterior probability that the
    decision is wrong, ``memorization``, ``in_models``, ``out_models``)."""
    decisions: List[Dict[str, Any]] = json.loads(_memia.sequential_decisions(
        _array(keep, bool, 2, "keep"), _per_query(shadow, 3, "shadow"),
        _per_query(target, 2, "target"), _indices(samples, "samples"),
        delta, threshold))
    return decisions


class Interval:
    """A point estimate with its interval: ``estimate``, ``lower``, ``upper``,
    ``confidence``."""

    def __init__(self, estimate: float, lower: float, upper: float, confidence: float) -> None:
        self.estimate, self.lower, self.upper = estimate, lower, upper
        self.confidence = confidence

    def to_dict(self) -> Dict[str, float]:
        return {"estimate": self.estimate, "lower": self.lower, "upper": self.upper,
                "confidence": self.confidence}

    def __repr__(self) -> str:
        return (f"Interval({self.estimate:.6g}, {self.confidence:.0%}: "
                f"[{self.lower:.6g}, {self.upper:.6g}])")


def bootstrap(scores: Any, members: Any, fpr: Optional[float] = None,
              convention: str = "lira-strict", resamples: int = 1000,
              confidence: float = 0.95, seed: int = 0,
              lower_is_member: bool = False) -> Interval:
    """A stratified percentile-bootstrap interval of the AUROC (or, with ``fpr``, of the TPR
    at that FPR in ``convention``) of ``scores`` against ``members``: members and non-members
    each resampled to their counts, ``resamples`` times from ``seed`` (the same result on any
    number of threads)."""
    scores_array, members_array = _scores_members(scores, members)
    estimate, lower, upper = _memia.bootstrap(scores_array, members_array, fpr, convention,
                                              resamples, confidence, seed, lower_is_member)
    return Interval(estimate, lower, upper, confidence)


class Roc:
    """The ROC curve of ``scores`` against ``members`` (higher is member unless
    ``lower_is_member``). Scores that are not finite follow memia's one rule: a member counts as
    not detected, a non-member is left out."""

    def __init__(self, scores: Any, members: Any, lower_is_member: bool = False) -> None:
        scores_array, members_array = _scores_members(scores, members)
        self._roc = _memia.Roc(scores_array, members_array, lower_is_member)

    @property
    def auroc(self) -> float:
        """The area under the curve."""
        return float(self._roc.auroc)

    def tpr_at_fpr(self, fpr: float, convention: str = "lira-strict") -> float:
        """The TPR at FPR ``fpr``: ``"lira-strict"`` (the largest TPR at an FPR of at most
        ``fpr``, as the LiRA reference) or ``"interpolated"``."""
        return float(self._roc.tpr_at_fpr(fpr, convention))

    def points(self) -> "tuple[np.ndarray, np.ndarray, np.ndarray]":
        """``(fpr, tpr, thresholds)`` of the curve's points."""
        fpr, tpr, thresholds = self._roc.points()
        return fpr, tpr, thresholds

    def summary(self, fprs: Sequence[float] = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1),
                convention: str = "lira-strict") -> Dict[str, Any]:
        """What memia reports: AUROC, balanced accuracy, advantage, each TPR at ``fprs`` with
        its Clopper-Pearson interval and whether it is measurable, counts, undetermined."""
        summary: Dict[str, Any] = json.loads(self._roc.summary_json(list(fprs), convention))
        return summary


class Pool:
    """A pool of samples as memia builds it from a configuration: ``x`` (N x sample shape
    float32: N x C x H x W for images), ``y`` (N labels), ``classes``, ``groups`` (name to
    sample indices: the canaries), ``provenance`` (one line per sample) and ``name``."""

    def __init__(self, name: str, x: np.ndarray, y: np.ndarray, classes: int,
                 groups: Dict[str, np.ndarray], provenance: List[str]) -> None:
        self.name, self.x, self.y, self.classes = name, x, y, classes
        self.groups, self.provenance = groups, provenance

    def __len__(self) -> int:
        return len(self.y)

    def __repr__(self) -> str:
        sets = ", ".join(f"{len(v)} {k}" for k, v in self.groups.items())
        return (f"Pool({self.name!r}: {len(self)} samples of {list(self.x.shape[1:])}, "
                f"{self.classes} classes" + (f"; {sets}" if sets else "") + ")")


def _config_text(toml: Optional[str], file: Optional[Union[str, "os.PathLike[str]"]]
                 ) -> "tuple[str, str, str]":
    """A configuration's text, the name errors give it and the directory its relative paths
    are read from."""
    if (toml is None) == (file is None):
        raise InvalidInput("give the configuration as toml (its text) or as file")
    if file is None:
        return str(toml), "(the configuration given from Python)", os.getcwd()
    try:
        with open(file, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise FileError(f"{file}: {e.strerror or e}") from None
    return text, str(file), os.path.dirname(os.path.abspath(file))


def load_pool(toml: Optional[str] = None,
              file: Optional[Union[str, "os.PathLike[str]"]] = None) -> Pool:
    r"""The pool a memia configuration's ``[data]`` table describes (``toml``: its text, or
    ``file``), drawn with its ``[plan] seed`` exactly as ``memia plan`` draws it: the embedded
    digits (``source = "digits"``), MNIST or CIFAR-10 files, a ``.npz``, with canaries
    (mislabeled or out-of-distribution). Train your own models on it and store their logits
    with :meth:`Run.create` and :meth:`Run.store`.

    >>> pool = load_pool(toml='[data]\nsource = "digits"\nsamples = 100\n'
    ...                       '[data.canaries]\nkind = "mislabeled"\ncount = 10\n')
    >>> pool.x.shape, len(pool.groups["canaries"])
    ((110, 1, 8, 8), 10)
    """
    name, x, y, classes, groups, provenance = _memia.load_pool(*_config_text(toml, file))
    return Pool(name, x, y, classes,
                _groups_from_json(groups), provenance)


class OutsideModel:
    """A model trained elsewhere, the target of :meth:`Run.audit` or :meth:`Run.sequential`
    (every model of the run is then a shadow model): its ``logits`` on the run's pool
    (N x A x C, or N x C for one query, any float dtype), which samples it trained on
    (``members``, N booleans) when known (without: scores but no ROC curve), and how reports
    name it."""

    def __init__(self, logits: Any, members: Any = None,
                 name: str = "model trained elsewhere") -> None:
        array = np.asarray(logits)
        if array.ndim == 2:
            array = array[:, None, :]
        self.logits = _array(array, np.float32, 3, "logits")
        self.members = None if members is None else _array(members, bool, 1, "members")
        self.name = name

    def _native(self) -> "tuple[str, np.ndarray, Optional[np.ndarray]]":
        return (self.name, self.logits, self.members)


Target = Union[None, int, OutsideModel]


def _target(target: Target) -> "tuple[Optional[int], Any]":
    if isinstance(target, OutsideModel):
        return None, target._native()
    if target is None or isinstance(target, (int, np.integer)):
        return None if target is None else int(target), None
    raise InvalidInput(f"target: a model index or an OutsideModel, found {type(target).__name__}")


class Run:
    """A run directory: shadow models' keep matrix, labels and one logits file per model."""

    def __init__(self, native: _memia.Run) -> None:
        self._run = native

    @staticmethod
    def open(path: Union[str, "os.PathLike[str]"]) -> "Run":
        """Opens the run directory ``path`` (planned by ``memia plan``, imported, or created)."""
        return Run(_memia.Run.open(str(path)))

    @staticmethod
    def plan(path: Union[str, "os.PathLike[str]"], toml: Optional[str] = None,
             file: Optional[Union[str, "os.PathLike[str]"]] = None) -> "Run":
        """Plans a run from a memia configuration (what ``memia plan`` does): ``toml``, the
        configuration's text (relative data paths resolved against the working directory), or
        ``file``, a configuration file. Planning the same configuration again finds the run;
        another plan in ``path`` is refused. Train it with :meth:`train`."""
        native, _ = _memia.Run.plan(str(path), *_config_text(toml, file))
        return Run(native)

    @staticmethod
    def plan_in(root: Union[str, "os.PathLike[str]"], toml: Optional[str] = None,
                file: Optional[Union[str, "os.PathLike[str]"]] = None) -> "Run":
        """:meth:`plan` into ``root/<the plan's hash>``: one directory per plan under a common
        root, found again by the same configuration (what scripts that change their settings
        want; the Rust examples keep their runs so)."""
        native, _ = _memia.Run.plan(str(root), *_config_text(toml, file), in_root=True)
        return Run(native)

    @staticmethod
    def create(path: Union[str, "os.PathLike[str]"], keep: Any, labels: Any, queries: int,
               classes: int, name: str = "models stored from Python",
               groups: Optional[Dict[str, Iterable[int]]] = None) -> "Run":
        """A run for models trained elsewhere, stored one by one with ``store`` as they finish:
        the K x N ``keep`` matrix is the plan, with the N ``labels``, every model's ``queries``
        and ``classes``, and named ``groups`` of samples reported separately. Opening the same
        run again is fine; another plan in ``path`` is refused."""
        return Run(_memia.Run.create(str(path), _array(keep, bool, 2, "keep"),
                                     _array(labels, np.uint32, 1, "labels"), queries, classes,
                                     name, _groups_json(groups)))

    @staticmethod
    def import_models(path: Union[str, "os.PathLike[str]"], keep: Any, labels: Any,
                      logits: Any, name: str = "models imported from Python",
                      groups: Optional[Dict[str, Iterable[int]]] = None,
                      images: Any = None, link: bool = False,
                      progress: Progress = None) -> "Run":
        """Models trained elsewhere as the new run ``path`` (built beside it, renamed into
        place when complete; the same import again finds it there): the K x N ``keep`` matrix,
        the N ``labels``, and ``logits`` as one K x N x A x C (or K x N x C) array, or as a list
        of K ``.npy`` files in keep-row order (read one at a time: any size; ``link`` hard-links
        them into the run instead of copying where it can, so do not change them afterwards).
        ``groups``: named sample sets; ``images``: the pool's pixels (N x C x H x W, N x H x W x C
        or N x H x W) for the report's thumbnails. ``progress``: see :data:`Progress`."""
        keep_array = _array(keep, bool, 2, "keep")
        labels_array = _array(labels, np.uint32, 1, "labels")
        pixels = None
        if images is not None:
            raw = np.asarray(images)
            if raw.ndim == 3:
                raw = raw[:, None, :, :]
            elif raw.ndim == 4 and raw.shape[-1] in (1, 3) and raw.shape[1] not in (1, 3):
                raw = raw.transpose(0, 3, 1, 2)
            pixels = _array(raw, np.float32, 4, "images")
        if isinstance(logits, (list, tuple)):
            native, _ = _memia.Run.import_models(str(path), keep_array, labels_array, name,
                                                 None, [str(f) for f in logits],
                                                 _groups_json(groups), pixels, link,
                                                 _progress(progress))
        else:
            native, _ = _memia.Run.import_models(str(path), keep_array, labels_array, name,
                                                 _logits(logits), None, _groups_json(groups),
                                                 pixels, link, _progress(progress))
        return Run(native)

    @property
    def path(self) -> str:
        return str(self._run.path)

    @property
    def shape(self) -> "tuple[int, int, int, int]":
        """``(models, samples, queries, classes)``."""
        return self._run.shape

    @property
    def keep(self) -> np.ndarray:
        return self._run.keep

    @property
    def labels(self) -> np.ndarray:
        return self._run.labels

    @property
    def groups(self) -> Dict[str, np.ndarray]:
        """The pool's named sample sets (canaries, out-of-distribution samples, ...): name to
        sample indices."""
        return _groups_from_json(self._run.groups_json())

    def completed(self) -> List[bool]:
        """Which models are complete."""
        return self._run.completed()

    def status(self) -> Dict[str, Any]:
        """Where the run stands, as ``memia status --json`` says it: ``plan`` (its hash),
        ``pool``, ``models``, ``samples``, ``queries``, ``classes``, ``finished`` and
        ``missing`` model indices, ``producers`` (who produced which models)."""
        status: Dict[str, Any] = json.loads(self._run.status_json())
        return status

    def producers(self) -> List[Dict[str, Any]]:
        """Who produced the finished models: one dict per producer (``producer``: its
        description or None where none was recorded, ``models``: their indices)."""
        producers: List[Dict[str, Any]] = self.status()["producers"]
        return producers

    def train(self, models: Optional["tuple[int, int]"] = None, device: Optional[str] = None,
              engine: Optional[str] = None, group_size: Optional[int] = None,
              allow_mixed_producers: bool = False, progress: Progress = None
              ) -> Dict[str, Any]:
        """Trains the planned run's unfinished models ``models`` (``(start, end)``, default
        all) with its configuration's trainer: an external command, or memia's own models
        where this build has them (:data:`TRAINING_BUILT`; else ``RunError`` says how to build
        it, and ``memia train`` trains the run as well). ``device``, ``engine`` and ``group_size`` override the configuration's. Ctrl-C
        stops after the group in training: finished models stay, and training again resumes.
        A ``progress`` that raises stops it the same way.
        ``{"trained": [...], "skipped": [...], "seconds": s}``."""
        trained, skipped, seconds = self._run.train(
            None if models is None else (int(models[0]), int(models[1])), device, engine,
            group_size, allow_mixed_producers, _progress(progress))
        return {"trained": trained, "skipped": skipped, "seconds": seconds}

    def store(self, k: int, logits: Any, producer: str = "memia for Python") -> None:
        """Stores model ``k``'s N x A x C (or N x C) logits, checked, atomically."""
        array = np.asarray(logits)
        if array.ndim == 2:
            array = array[:, None, :]
        self._run.store(k, _array(array, np.float32, 3, "logits"), producer)

    def signals(self, models: Sequence[int], kind: str = "phi",
                progress: Progress = None) -> np.ndarray:
        """Signals of ``models``, read one model file at a time: len(models) x N x A."""
        return self._run.signals([int(m) for m in models], kind, _progress(progress))

    def sequential(self, target: Target = None, delta: float = 0.01,
                   threshold: float = 0.8, budget: Optional[int] = None,
                   progress: Progress = None) -> Dict[str, Any]:
        """The sequential audit of ``target`` (a model index, default the last, or an
        :class:`OutsideModel`): shadow models in rounds of 1, 2, 4, ... (at most ``budget``)
        until the decisions on the candidates (memorization at least ``threshold``) have an
        expected error rate of at most ``delta``. A planned run trains what a round needs
        where it can (see :meth:`train`); otherwise the run's models are used. Its report
        (what ``memia audit -o`` writes) as a dict."""
        model, outside = _target(target)
        report: Dict[str, Any] = json.loads(self._run.sequential(
            model, outside, delta, threshold, budget, _progress(progress)))
        return report

    def audit(self, target: Target = None, config: Optional[Dict[str, Any]] = None,
              report: Optional[Union[str, "os.PathLike[str]"]] = None,
              progress: Progress = None) -> Dict[str, Any]:
        """The report's audit of ``target``: a model of the run (the others are its shadow
        models; default the configuration's target, else 0) or an :class:`OutsideModel`
        (every model of the run a shadow): ``summary.json`` as a dict. ``config``: an
        ``[audit]`` table (the run's own settings otherwise); ``report``: a directory to write
        the report into; ``progress``: see :data:`Progress`."""
        model, outside = _target(target)
        text = self._run.audit(model, outside, None if config is None else json.dumps(config),
                               None if report is None else str(report), _progress(progress))
        summary: Dict[str, Any] = json.loads(text)
        return summary

    def __repr__(self) -> str:
        k, n, a, c = self.shape
        return f"Run({self.path!r}: {k} models x {n} samples x {a} queries x {c} classes)"


def auroc(scores: Any, members: Any, lower_is_member: bool = False) -> float:
    """The area under the ROC curve of finite ``scores`` against ``members``, without building
    the curve (the fast path for millions of scores; ``Roc`` for curves, TPRs and scores that
    are not finite)."""
    scores_array, members_array = _scores_members(scores, members)
    return float(_memia.auroc(scores_array, members_array, lower_is_member))


def correlation(x: Any, y: Any, kind: str = "spearman") -> "tuple[float, float]":
    """``(statistic, p_value)`` of the ``kind`` correlation of ``x`` and ``y``: ``"spearman"``,
    ``"pearson"`` or ``"kendall"`` (tau-b), as SciPy computes them."""
    return _memia.correlation(_array(x, np.float64, 1, "x"), _array(y, np.float64, 1, "y"), kind)


def epsilon_lower_bound(true_positives: int, positives: int, false_positives: int,
                        negatives: int, confidence: float = 0.95, delta: float = 0.0
                        ) -> Dict[str, Any]:
    """The epsilon of (epsilon, delta)-DP that one threshold's error rates prove, with
    Clopper-Pearson intervals at ``confidence``: valid when the threshold was chosen on other
    data. ``{"epsilon", "tpr": (lower, upper), "fpr": (lower, upper)}``."""
    epsilon, tpr, fpr = _memia.epsilon_lower_bound(
        true_positives, positives, false_positives, negatives, confidence, delta)
    return {"epsilon": epsilon, "tpr": tpr, "fpr": fpr}


def leave_one_out(attack: AttackLike, keep: Any, shadow: Any,
                  shadow_counts: Optional[Sequence[int]] = None,
                  targets: Optional[Sequence[int]] = None, repeats: int = 1,
                  fprs: Sequence[float] = (1e-3, 1e-2),
                  groups: Optional[Dict[str, Iterable[int]]] = None,
                  seed: int = 0, progress: Progress = None) -> Dict[str, Any]:
    """The attack's quality against the number of shadow models: each of ``targets``
    (default: every model) in turn attacked with ``shadow_counts`` of the others (default 1, 2,
    4, ..., K - 1), ``repeats`` draws each, on all samples and on each named group. The report
    ``summary.json`` holds as ``shadow_curve``."""
    text = _memia.leave_one_out(
        _attack_json(attack), _array(keep, bool, 2, "keep"), _per_query(shadow, 3, "shadow"),
        None if shadow_counts is None else [int(c) for c in shadow_counts],
        None if targets is None else [int(t) for t in targets],
        repeats, [float(f) for f in fprs], _groups_json(groups), seed, _progress(progress))
    report: Dict[str, Any] = json.loads(text)
    return report


def budget(keep: Any, correct: Any, delta: float = 0.01) -> "tuple[np.ndarray, np.ndarray]":
    """The shadow-model budget planner: each sample's squared Hellinger distance between its
    IN and OUT correctness, and the shadow models needed to tell them apart with error
    ``delta`` (-1: never, or unknown)."""
    return _memia.budget(_array(keep, bool, 2, "keep"), _per_query(correct, 3, "correct"), delta)


def synthetic_run(models: int, samples: int, queries: int, classes: int,
                  seed: int = 0) -> "tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]":
    """``(logits, keep, labels, memorization)`` of a synthetic run whose memorization is known
    (5% of the samples memorized at 0.8 or more), for tests and examples."""
    return _memia.synthetic_run(models, samples, queries, classes, seed)


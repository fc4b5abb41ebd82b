"""memia for Python: the same numbers as the references and as memia's command line, and clear
exceptions for bad input. Run by .ci/run on the wheel it builds, installed into a fresh virtual
environment (`pip install`); MEMIA_BIN names the `memia` binary for the parity tests."""

import json
import os
import subprocess

import numpy as np
import pytest

import memia

REQUIRE_SKLEARN = os.environ.get("MEMIA_REQUIRE_SKLEARN") == "1"


def memia_bin():
    path = os.environ.get("MEMIA_BIN")
    if not path or not os.path.exists(path):
        pytest.skip("skipped: MEMIA_BIN does not name the memia binary")
    return path


def logsumexp(z, axis=-1):
    m = z.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(z - m).sum(axis=axis, keepdims=True))).squeeze(axis)


@pytest.fixture(scope="module")
def run_data():
    return memia.synthetic_run(16, 300, 2, 10, seed=3)


def test_signals_are_the_formulas(run_data):
    logits, _, labels, _ = run_data
    z = logits.astype(np.float64)
    y = labels[None, :, None, None].repeat(z.shape[0], 0).repeat(z.shape[2], 2)
    zy = np.take_along_axis(z, y, axis=3)[..., 0]
    others = z.copy()
    np.put_along_axis(others, y, -np.inf, axis=3)
    np.testing.assert_allclose(memia.signals(logits, labels, "phi"), zy - logsumexp(others),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(memia.signals(logits, labels, "loss"), logsumexp(z) - zy,
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(memia.signals(logits, labels, "correct"),
                                  (z.argmax(axis=3) == y[..., 0]).astype(float))
    # Any layout and dtype: float64, Fortran order, negative strides give the same numbers.
    flipped = np.asfortranarray(logits[::-1].astype(np.float64))
    np.testing.assert_array_equal(memia.signals(flipped, labels.astype(np.int32), "phi"),
                                  memia.signals(logits, labels, "phi")[::-1])


def test_memorization_is_feldman_zhang(run_data):
    logits, keep, labels, truth = run_data
    correct = memia.signals(logits, labels, "correct")
    mem = memia.memorization(keep, correct)
    c = correct[:, :, 0]
    expected = (np.where(keep, c, 0).sum(0) / keep.sum(0)
                - np.where(~keep, c, 0).sum(0) / (~keep).sum(0))
    np.testing.assert_allclose(mem.score, expected, rtol=1e-12, atol=1e-12)
    assert np.all(mem.lower <= mem.score + 1e-12) and np.all(mem.score <= mem.upper + 1e-12)
    assert np.abs(mem.score - truth).mean() < 0.15
    assert json.loads(json.dumps(mem.to_dict()))["confidence"] == 0.95


def test_late_learning_is_the_in_models_gain(run_data):
    # The synthetic run's two queries stand for two checkpoints.
    logits, keep, labels, _ = run_data
    late = memia.late_learning(keep, logits, labels)
    correct = memia.signals(logits, labels, "correct")
    gain = correct[:, :, -1] - correct[:, :, 0]
    expected = np.where(keep, gain, 0).sum(0) / keep.sum(0)
    np.testing.assert_allclose(late["score"], expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(late["in_count"], keep.sum(0))
    soft = memia.late_learning(keep, logits, labels, outcome="probability")
    p = memia.signals(logits, labels, "probability")
    expected = np.where(keep, p[:, :, -1] - p[:, :, 0], 0).sum(0) / keep.sum(0)
    np.testing.assert_allclose(soft["score"], expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(memia.InvalidInput, match="checkpoint"):
        memia.late_learning(keep, logits[:, :, :1], labels)
    with pytest.raises(memia.InvalidInput, match="outcome"):
        memia.late_learning(keep, logits, labels, outcome="loss")


def test_roc_matches_scikit_learn():
    try:
        from sklearn.metrics import roc_auc_score, roc_curve
    except ImportError:
        if REQUIRE_SKLEARN:
            raise
        pytest.skip("skipped: scikit-learn not installed")
    rng = np.random.default_rng(7)
    members = rng.random(20000) < 0.5
    scores = rng.normal(size=20000) + 0.5 * members
    scores[:100] = np.round(scores[:100], 1)  # ties
    roc = memia.Roc(scores, members)
    assert roc.auroc == pytest.approx(roc_auc_score(members, scores), abs=1e-12)
    assert memia.auroc(scores, members) == pytest.approx(roc.auroc, abs=1e-15)
    fpr, tpr, _ = roc_curve(members, scores)
    ours_fpr, ours_tpr, _ = roc.points()
    np.testing.assert_allclose(np.interp(0.1, fpr, tpr), roc.tpr_at_fpr(0.1, "interpolated"),
                               atol=1e-12)
    assert ours_fpr[-1] == 1.0 and ours_tpr[-1] == 1.0
    summary = roc.summary()
    assert summary["auroc"] == pytest.approx(roc.auroc)
    assert summary["positives"] == int(members.sum())


def test_a_run_stored_from_python_audits_as_the_command_line(tmp_path, run_data):
    logits, keep, labels, truth = run_data
    path = tmp_path / "run"
    run = memia.Run.create(path, keep, labels, queries=2, classes=10,
                           groups={"memorized": np.flatnonzero(truth >= 0.8)})
    assert run.completed() == [False] * 16
    for k in range(16):  # as a training loop would, model by model
        run.store(k, logits[k])
    assert all(memia.Run.open(path).completed())
    assert run.shape == (16, 300, 2, 10)
    np.testing.assert_array_equal(run.signals([3, 1], "phi"),
                                  memia.signals(logits, labels, "phi")[[3, 1]])
    # The attack from Python equals memia attack on the same run.
    phi = run.signals(list(range(16)), "phi")
    ours = memia.attack_scores({"method": "lira-online", "global_variance": True},
                               keep[1:], phi[1:], phi[0])
    binary = memia_bin()
    subprocess.run([binary, "attack", str(path), "--target", "0", "-o",
                    str(tmp_path / "s.npy"), "-q"], check=True)
    np.testing.assert_array_equal(ours, np.load(tmp_path / "s.npy"))
    # The audit from Python equals memia report's summary.json.
    summary = run.audit(target=0, report=tmp_path / "py-report")
    subprocess.run([binary, "report", str(path), "-o", str(tmp_path / "cli-report"),
                    "--target", "0", "-q"], check=True)
    cli = json.loads((tmp_path / "cli-report" / "summary.json").read_text())
    assert summary == cli
    assert summary["schema_version"] == memia.SCHEMA_VERSION
    assert "memorized" in summary["groups"]
    np.testing.assert_array_equal(run.groups["memorized"], np.flatnonzero(truth >= 0.8))
    assert (tmp_path / "py-report" / "index.html").exists()
    # The sequential audit from Python equals memia audit's report on the same run.
    ours = run.sequential(target=0, budget=8)
    subprocess.run([binary, "audit", str(path), "--target", "0", "--budget", "8", "-o",
                    str(tmp_path / "sequential.json"), "-q"], check=True)
    theirs = json.loads((tmp_path / "sequential.json").read_text())
    for report in (ours, theirs):
        for r in report["rounds"]:
            r.pop("seconds")
    assert ours == theirs
    with pytest.raises(memia.InvalidInput, match="budget 99 is out of range"):
        run.sequential(target=0, budget=99)


@pytest.mark.parametrize("call, message", [
    (lambda: memia.signals(np.zeros((2, 3, 1, 4), np.float32), [0, 1, 9], "phi"), "label 9"),
    (lambda: memia.signals(np.full((1, 2, 1, 3), np.nan, np.float32), [0, 1], "phi"), "NaN"),
    (lambda: memia.signals(np.zeros((1, 2, 3)), [0, 1], "nope"), "signal 'nope'"),
    (lambda: memia.signals(np.array([["a"]]), [0], "phi"), "dimensions"),
    (lambda: memia.signals(np.zeros((1, 2, 3)), [0, -1], "phi"), "non-negative"),
    (lambda: memia.signals(np.zeros((0, 2, 3)), [0, 1], "phi"), "at least one model"),
    (lambda: memia.memorization(np.ones((2, 3), bool), np.zeros((2, 4))), "4 samples"),
    (lambda: memia.memorization([[0, 2]], np.zeros((1, 2))), "booleans or 0/1"),
    (lambda: memia.Roc([0.1, 0.2], [True]), "2 scores for 1"),
    (lambda: memia.Roc([], []), ""),
    (lambda: memia.attack_scores("nope", np.ones((1, 2), bool), np.zeros((1, 2)),
                                 np.zeros(2)), "nope"),
    (lambda: memia.keep_matrix(10**9, 10**9, 1), "models"),
    (lambda: memia.signals(np.full((1, 2, 1, 3), 1e300), [0, 1], "phi"), "float32's range"),
    (lambda: memia.synthetic_run(10**6, 10**6, 10**3, 10**3), "synthetic logits"),
    (lambda: memia.mahalanobis(np.zeros((2, 400_000), np.float32), [0, 1]), "covariance"),
    (lambda: memia.bootstrap([0.1, 0.2], [True, False], resamples=10**12), "resamples"),
    (lambda: memia.keep_matrix(4, 10, 1, scheme="odd"), "scheme"),
    (lambda: memia.Run.open("/nonexistent/run"), "plan.json"),
])
def test_bad_input_raises_memia_errors(call, message):
    with pytest.raises(memia.MemiaError) as raised:
        call()
    assert message in str(raised.value)


def test_error_families_are_exceptions_of_their_own():
    assert issubclass(memia.InvalidInput, memia.MemiaError)
    assert issubclass(memia.RunError, memia.MemiaError)
    with pytest.raises(memia.RunError):
        memia.Run.open("/nonexistent/run")
    with pytest.raises(memia.InvalidInput):
        memia.keep_matrix(4, 10, 1, scheme="odd")


def test_keep_matrices_are_seeded_and_balanced():
    keep = memia.keep_matrix(8, 100, seed=5)
    assert keep.dtype == np.bool_ and keep.shape == (8, 100)
    assert (keep.sum(axis=0) == 4).all()
    np.testing.assert_array_equal(keep, memia.keep_matrix(8, 100, seed=5))
    assert not np.array_equal(keep, memia.keep_matrix(8, 100, seed=6))


def test_models_imported_from_python_report_as_the_command_line_import(tmp_path, run_data):
    logits, keep, labels, truth = run_data
    folder = tmp_path / "models"
    folder.mkdir()
    files = []
    for k in range(16):
        files.append(folder / f"model_{k}.npy")
        np.save(files[-1], logits[k])
    groups = {"memorized": np.flatnonzero(truth >= 0.8)}
    from_files = memia.Run.import_models(tmp_path / "a", keep, labels, files, groups=groups,
                                         link=True)
    in_memory = memia.Run.import_models(tmp_path / "b", keep, labels, logits, groups=groups)
    assert from_files.shape == in_memory.shape == (16, 300, 2, 10)
    assert from_files.audit(target=0) == in_memory.audit(target=0)
    # Linked: the run's model file is the imported one.
    assert os.path.samefile(files[3], tmp_path / "a" / "logits" / "model_00003.npy")
    with pytest.raises(memia.InvalidInput, match="2 labels for 300 samples"):
        memia.Run.import_models(tmp_path / "c", keep, [0, 1], logits)
    with pytest.raises(memia.MemiaError, match="holds 15 models|15 models"):
        memia.Run.import_models(tmp_path / "d", keep, labels, files[:15])
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()


def test_correlations_are_the_definitions():
    rng = np.random.default_rng(3)
    x = rng.normal(size=500)
    y = x + rng.normal(size=500)
    pearson, p = memia.correlation(x, y, "pearson")
    assert pearson == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-12) and p < 1e-10
    rank = lambda v: np.argsort(np.argsort(v)).astype(float)  # no ties here
    spearman, _ = memia.correlation(x, y, "spearman")
    assert spearman == pytest.approx(np.corrcoef(rank(x), rank(y))[0, 1], abs=1e-12)
    with pytest.raises(memia.InvalidInput):
        memia.correlation(x, y[:3], "pearson")


def test_an_epsilon_bound_holds_and_grows_with_the_evidence():
    weak = memia.epsilon_lower_bound(60, 100, 40, 100)
    strong = memia.epsilon_lower_bound(600, 1000, 10, 1000)
    assert 0.0 <= weak["epsilon"] < strong["epsilon"]
    lo, hi = strong["tpr"]
    assert lo < 0.6 < hi
    with pytest.raises(memia.InvalidInput):
        memia.epsilon_lower_bound(5, 3, 0, 10)


def test_leave_one_out_and_the_budget(run_data):
    logits, keep, labels, truth = run_data
    phi = memia.signals(logits, labels, "phi")
    report = memia.leave_one_out("lira-online", keep, phi, shadow_counts=[4, 15],
                                 targets=[0, 1], groups={"memorized": np.flatnonzero(truth >= 0.8)})
    assert report["models"] == 16 and report["samples"] == 300
    assert len(report["rows"]) > 0
    h2, needed = memia.budget(keep, memia.signals(logits, labels, "correct"))
    assert h2.shape == (300,) and needed.dtype == np.int64
    # The theory: memorized samples need few models, the others (memorization 0) none can tell.
    memorized = truth >= 0.8
    assert np.median(needed[memorized & (needed >= 0)]) < 64


def test_outlierness_baselines_are_the_definitions(run_data):
    logits, keep, labels, _ = run_data
    rng = np.random.default_rng(11)
    features = rng.normal(size=(200, 6)).astype(np.float32)
    x = features.astype(np.float64)
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    np.testing.assert_allclose(memia.knn_distance(features, k=4),
                               np.sort(d, axis=1)[:, :4].mean(1), rtol=1e-9)
    try:
        from sklearn.neighbors import NearestNeighbors
    except ImportError:
        if REQUIRE_SKLEARN:
            raise
    else:
        dist, _ = NearestNeighbors(n_neighbors=5).fit(x).kneighbors(x)
        np.testing.assert_allclose(memia.knn_distance(features, k=4), dist[:, 1:].mean(1),
                                   rtol=1e-6)
    y = rng.integers(0, 3, size=200)
    centred = x - np.stack([x[y == c].mean(0) for c in range(3)])[y]
    cov = centred.T @ centred / len(x) + 0.5 * np.eye(6)
    expected = np.sqrt(np.einsum("ij,jk,ik->i", centred, np.linalg.inv(cov), centred))
    np.testing.assert_allclose(memia.mahalanobis(features, y, ridge=0.5), expected, rtol=1e-9)
    # Labels are names: any values, as large as uint32 holds, give the same classes.
    np.testing.assert_array_equal(memia.mahalanobis(features, y * 2_000_000_000, ridge=0.5),
                                  memia.mahalanobis(features, y, ridge=0.5))
    # OUT models' MSP and energy: each sample's mean over the models that did not train on it.
    z = logits[:, :, 0, :].astype(np.float64)
    out = ~keep
    lse = logsumexp(z)
    msp = 1 - np.exp(z.max(-1) - lse)
    np.testing.assert_allclose(memia.out_model_outlierness(keep, logits, "msp"),
                               (msp * out).sum(0) / out.sum(0), rtol=1e-9)
    np.testing.assert_allclose(memia.out_model_outlierness(keep, logits, "energy"),
                               (-lse * out).sum(0) / out.sum(0), rtol=1e-9)
    mean_logits = (z * out[:, :, None]).sum(0) / out.sum(0)[:, None]
    np.testing.assert_allclose(memia.out_model_logits(keep, logits), mean_logits, rtol=1e-5)
    with pytest.raises(memia.InvalidInput, match="energy"):
        memia.out_model_outlierness(keep, logits, "entropy")
    with pytest.raises(memia.InvalidInput, match="neighbours"):
        memia.knn_distance(features, k=200)


def test_the_focused_attack_is_the_attack_on_its_candidates(run_data):
    logits, keep, labels, truth = run_data
    phi = memia.signals(logits, labels, "phi")
    mem = memia.memorization(keep[1:], memia.signals(logits[1:], labels, "correct"))
    chosen = memia.candidates(mem, at_least=0.5)
    defined = np.isfinite(mem.score)
    np.testing.assert_array_equal(chosen, np.flatnonzero(defined & (mem.score >= 0.5)))
    top = memia.candidates(mem.score, top=7)
    assert len(top) == 7 and np.all(np.diff(top) > 0)
    assert set(top) == set(np.argsort(-np.where(defined, mem.score, -np.inf), kind="stable")[:7])
    focused = memia.attack_scores("lira-online", keep[1:], phi[1:], phi[0], candidates=chosen)
    alone = memia.attack_scores("lira-online", keep[1:, chosen], phi[1:, chosen], phi[0, chosen])
    np.testing.assert_array_equal(focused[chosen], alone)
    others = np.setdiff1d(np.arange(len(labels)), chosen)
    assert np.isnan(focused[others]).all()
    privacy = memia.privacy_score(keep[1:], phi[1:])
    # Per query, |mu_in - mu_out| / (sd_in + sd_out) (np.std, ddof 0), averaged over queries.
    k = keep[1:, :, None]
    shadow = phi[1:]
    mean = lambda v, w: (v * w).sum(0) / w.sum(0)
    mu_in, mu_out = mean(shadow, k), mean(shadow, ~k)
    sd_in = np.sqrt(mean((shadow - mu_in) ** 2, k))
    sd_out = np.sqrt(mean((shadow - mu_out) ** 2, ~k))
    np.testing.assert_allclose(privacy, (np.abs(mu_in - mu_out) / (sd_in + sd_out)).mean(1),
                               rtol=1e-9)
    by_privacy = memia.candidates(mem, privacy=privacy, privacy_at_least=1.0)
    assert 0 < len(by_privacy) < len(labels)
    np.testing.assert_array_equal(by_privacy, np.flatnonzero(privacy >= 1.0))
    twice = memia.attack_scores("lira-online", keep[1:], phi[1:], phi[0],
                                candidates=list(chosen) + list(chosen[:3]))
    np.testing.assert_array_equal(twice, focused)
    with pytest.raises(memia.InvalidInput, match="exactly one rule"):
        memia.candidates(mem, at_least=0.5, top=3)
    with pytest.raises(memia.InvalidInput, match=r"\[-1, 1\]"):
        memia.candidates(mem, at_least=2.0)
    with pytest.raises(memia.InvalidInput, match="sample 300 of 300"):
        memia.attack_scores("lira-online", keep[1:], phi[1:], phi[0], candidates=[300])
    with pytest.raises(memia.InvalidInput, match="negative"):
        memia.attack_scores("lira-online", keep[1:], phi[1:], phi[0], candidates=[-1])


def test_bootstrap_intervals_are_seeded_and_hold_the_estimate():
    rng = np.random.default_rng(5)
    members = rng.random(4000) < 0.5
    scores = rng.normal(size=4000) + 0.8 * members
    interval = memia.bootstrap(scores, members, resamples=400, seed=1)
    assert interval.estimate == pytest.approx(memia.Roc(scores, members).auroc, abs=1e-15)
    assert interval.lower < interval.estimate < interval.upper
    assert 0.01 < interval.upper - interval.lower < 0.06
    again = memia.bootstrap(scores, members, resamples=400, seed=1)
    assert again.to_dict() == interval.to_dict()
    assert memia.bootstrap(scores, members, resamples=400, seed=2).lower != interval.lower
    tpr = memia.bootstrap(scores, members, fpr=0.1, resamples=200)
    assert tpr.estimate == memia.Roc(scores, members).tpr_at_fpr(0.1)
    with pytest.raises(memia.InvalidInput, match="resamples"):
        memia.bootstrap(scores, members, resamples=1)


def test_sequential_decisions_judge_memorized_samples(run_data):
    logits, keep, labels, truth = run_data
    phi = memia.signals(logits, labels, "phi")
    memorized = np.flatnonzero(truth >= 0.8)
    decisions = memia.sequential_decisions(keep[1:], phi[1:], phi[0], memorized)
    assert len(decisions) == len(memorized)
    right = [d["member"] == bool(keep[0, d["sample"]]) for d in decisions]
    assert np.mean(right) > 0.9
    assert all(0.0 <= d["error"] <= 0.5 for d in decisions)
    with pytest.raises(memia.InvalidInput, match="delta"):
        memia.sequential_decisions(keep[1:], phi[1:], phi[0], memorized, delta=0.7)


def test_status_and_progress_of_a_run(tmp_path, run_data):
    logits, keep, labels, _ = run_data
    run = memia.Run.create(tmp_path / "run", keep, labels, queries=2, classes=10)
    for k in range(10):
        run.store(k, logits[k], producer="my torch loop")
    status = run.status()
    assert status["finished"] == list(range(10)) and status["missing"] == list(range(10, 16))
    assert run.producers() == [{"producer": status["producers"][0]["producer"],
                                "models": list(range(10))}]
    assert "my torch loop" in json.dumps(run.producers())
    cli = json.loads(subprocess.run([memia_bin(), "status", str(tmp_path / "run"), "--json"],
                                    check=True, capture_output=True, text=True).stdout)
    assert {k: v for k, v in cli.items() if k not in ("schema_version", "command")} == status
    for k in range(10, 16):
        run.store(k, logits[k])
    seen = []
    run.audit(target=0, progress=lambda stage, done, total: seen.append((stage, done, total)))
    assert ("reading", 16, 16) in seen and seen[-1][1] == seen[-1][2]
    assert all(done <= total for _, done, total in seen)

    def fail(stage, done, total):
        raise KeyError("stop here")

    with pytest.raises(KeyError, match="stop here"):
        run.signals(list(range(16)), "phi", progress=fail)
    with pytest.raises(memia.InvalidInput, match="progress"):
        run.signals([0], "phi", progress="yes")


def test_a_model_trained_elsewhere_is_audited_as_the_command_line(tmp_path, run_data):
    logits, keep, labels, truth = run_data
    run = memia.Run.import_models(tmp_path / "run", keep[1:], labels, logits[1:])
    target = memia.OutsideModel(logits[0], members=keep[0], name="target.npy")
    ours = run.audit(target=target)
    np.save(tmp_path / "target.npy", logits[0])
    np.save(tmp_path / "members.npy", keep[0])
    subprocess.run([memia_bin(), "report", str(tmp_path / "run"), "-o", str(tmp_path / "r"),
                    "--target-logits", str(tmp_path / "target.npy"), "--members",
                    str(tmp_path / "members.npy"), "-q"], check=True)
    theirs = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert ours["target_name"] == "target.npy"
    theirs["target_name"] = "target.npy"  # each front-end names the model its own way
    assert ours == theirs
    assert ours["all"]["auroc"] > 0.5
    unknown = run.audit(target=memia.OutsideModel(logits[0]))
    assert unknown["all"] is None
    decided = run.sequential(target=target, budget=8)
    subprocess.run([memia_bin(), "audit", str(tmp_path / "run"), "--target-logits",
                    str(tmp_path / "target.npy"), "--members", str(tmp_path / "members.npy"),
                    "--budget", "8", "-o", str(tmp_path / "seq.json"), "-q"], check=True)
    cli = json.loads((tmp_path / "seq.json").read_text())
    for report in (decided, cli):
        for r in report["rounds"]:
            r.pop("seconds")
    assert [r["shadow_models"] for r in decided["rounds"]][-1] <= 8
    assert decided["rounds"] == cli["rounds"]
    with pytest.raises(memia.InvalidInput, match=r"logits of shape \[300, 1, 10\]"):
        run.audit(target=memia.OutsideModel(logits[0, :, 0, :]))
    with pytest.raises(memia.InvalidInput, match="3 membership entries"):
        run.audit(target=memia.OutsideModel(logits[0], members=[True, False, True]))
    with pytest.raises(memia.InvalidInput, match="OutsideModel"):
        run.audit(target="model 0")


def test_a_run_planned_and_trained_from_python(tmp_path):
    import shlex
    import sys
    trainer = os.path.join(os.path.dirname(__file__), "..", "..", "..", "examples", "external",
                           "train_numpy.py")
    if not os.path.exists(trainer):
        pytest.skip("skipped: examples/external/train_numpy.py is not beside the tests")
    command = (f"{shlex.quote(sys.executable)} {shlex.quote(os.path.abspath(trainer))} "
               "--pool {pool} --indices {indices} --seed {seed} --out {out} --epochs 30")
    config = f"""
[data]
source = "digits"
samples = 300
[data.canaries]
kind = "mislabeled"
count = 20
[plan]
models = 6
seed = 5
[train]
external = {json.dumps(command)}
"""
    (tmp_path / "memia.toml").write_text(config)
    run = memia.Run.plan(tmp_path / "run", file=tmp_path / "memia.toml")
    assert run.status()["missing"] == list(range(6))
    seen = []
    first = run.train(models=(0, 2), progress=lambda *a: seen.append(a))
    assert first["trained"] == [0, 1]
    assert seen[0] == ("training", 0, 2) and seen[-1] == ("training", 2, 2)

    def interrupt(stage, done, total):
        if done >= 1:
            raise KeyboardInterrupt  # what Ctrl-C raises in the callback

    with pytest.raises(KeyboardInterrupt):
        run.train(progress=interrupt)
    assert run.status()["finished"] == [0, 1, 2], "stopped after one model, which is kept"
    with pytest.raises(memia.InvalidInput, match="not a range"):
        run.train(models=(0, 99))
    rest = run.train()
    assert rest["skipped"] == [0, 1, 2] and rest["trained"] == [3, 4, 5]
    assert run.status()["missing"] == []
    assert "external command" in json.dumps(run.producers())
    summary = run.audit(target=0)
    assert summary["all"]["positives"] > 0
    again = memia.Run.plan(tmp_path / "run", file=tmp_path / "memia.toml")
    assert again.status()["finished"] == list(range(6)), "the same plan is found again"
    with pytest.raises(memia.RunError) as other:
        memia.Run.plan(tmp_path / "run", toml=config.replace("models = 6", "models = 7"))
    assert "plan" in str(other.value)
    with pytest.raises(memia.InvalidInput, match="toml"):
        memia.Run.plan(tmp_path / "x")
    # The pool Python loads is the run's: same labels, canaries as its group.
    pool = memia.load_pool(file=tmp_path / "memia.toml")
    np.testing.assert_array_equal(pool.y, run.labels)
    np.testing.assert_array_equal(pool.groups["canaries"], run.groups["canaries"])
    assert pool.x.shape == (320, 1, 8, 8) and pool.x.dtype == np.float32 and pool.classes == 10
    with pytest.raises(memia.MemiaError, match="samples"):
        memia.load_pool(toml='[data]\nsource = "digits"\nsamples = 0\n')
    with pytest.raises(memia.FileError):
        memia.load_pool(file=tmp_path / "missing.toml")


def test_training_memias_own_models_needs_the_train_build(tmp_path):
    config = '[data]\nsource = "digits"\nsamples = 200\n[plan]\nmodels = 2\n'
    (tmp_path / "memia.toml").write_text(config)
    # Every build plans memia's models as the command line does: the same plan, the same hash.
    run = memia.Run.plan(tmp_path / "run", file=tmp_path / "memia.toml")
    subprocess.run([memia_bin(), "plan", "--config", str(tmp_path / "memia.toml"), "-o",
                    str(tmp_path / "cli"), "-q"], check=True)
    assert run.status()["plan"] == memia.Run.open(tmp_path / "cli").status()["plan"]
    if memia.TRAINING_BUILT:
        assert run.train()["trained"] == [0, 1]
    else:
        with pytest.raises(memia.RunError, match="--features train"):
            run.train()
        subprocess.run([memia_bin(), "train", str(tmp_path / "run"), "-q"], check=True)
    assert run.status()["missing"] == []


HOSTILE = [
    np.zeros((0,)), np.zeros((0, 0)), np.zeros((0, 3, 1, 2), np.float32),
    np.full((2, 3), np.nan), np.full((2, 3, 1, 4), np.inf, np.float32),
    np.array([[1e308, -1e308]]), np.arange(6, dtype=np.int8).reshape(2, 3),
    np.ones((3, 2), bool)[::-1], np.asfortranarray(np.ones((2, 3, 1, 4))), np.array("text"),
    np.zeros((2, 3, 1, 4), np.complex64), [[1, 2], [3]], None, 7, -1, 2.5,
]


@pytest.mark.parametrize("index", range(len(HOSTILE)))
def test_no_input_crashes_the_interpreter(index):
    """Every function, given hostile arguments, answers or raises an ordinary exception: never
    a panic (pyo3's PanicException is a BaseException) or a crash."""
    bad = HOSTILE[index]
    ok_keep = np.ones((2, 3), bool)
    calls = [
        lambda: memia.signals(bad, [0, 1, 2], "phi"),
        lambda: memia.signals(np.zeros((1, 3, 1, 2), np.float32), bad, "phi"),
        lambda: memia.memorization(bad, np.zeros((2, 3))),
        lambda: memia.memorization(ok_keep, bad),
        lambda: memia.attack_scores("lira-online", bad, np.zeros((2, 3)), np.zeros(3)),
        lambda: memia.attack_scores("rmia", ok_keep, bad, np.zeros(3)),
        lambda: memia.attack_scores("lira-offline", ok_keep, np.zeros((2, 3)), bad),
        lambda: memia.Roc(bad, [True, False]),
        lambda: memia.auroc(bad, bad),
        lambda: memia.bootstrap(bad, [True, False]),
        lambda: memia.correlation(bad, bad),
        lambda: memia.knn_distance(bad, 1),
        lambda: memia.mahalanobis(bad, [0, 1]),
        lambda: memia.out_model_outlierness(ok_keep, bad),
        lambda: memia.privacy_score(ok_keep, bad),
        lambda: memia.candidates(bad, at_least=0.5),
        lambda: memia.budget(ok_keep, bad),
        lambda: memia.leave_one_out("lira-online", ok_keep, bad),
        lambda: memia.sequential_decisions(ok_keep, bad, np.zeros(3), [0]),
        lambda: memia.OutsideModel(bad),
        lambda: memia.keep_matrix(bad, 3, 1),
    ]
    for call in calls:
        try:
            call()
        except Exception:
            pass  # an ordinary exception (InvalidInput, TypeError, ...) is the answer

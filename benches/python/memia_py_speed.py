"""memia for Python against the same Rust calls (issue 25, item 6): online LiRA (per-example
variance) fitted and scored on 256 shadow models x 1,000,000 samples, and AUROC on 10^7 scores,
the sizes of benches/lira.rs and benches/metrics.rs (same distributions, numpy's RNG). Best of
three after a warm-up; run `cargo bench --bench lira` and `--bench metrics` beside it, interleaved.
With `--baselines`, the numpy LiRA reference (benches/python/numpy_lira.py's computation, once:
it takes minutes) and scikit-learn's `roc_auc_score` (best of three) run on the same arrays in
the same process, and their answers are checked against memia's.

    python3 benches/python/memia_py_speed.py [--baselines]   # with the memia wheel installed
"""

import sys
import time

import numpy as np

import memia


def best(f, runs=3):
    f()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times), max(times)


def main():
    baselines = "--baselines" in sys.argv[1:]
    rng = np.random.default_rng(1)
    k, n = 256, 1_000_000
    keep = memia.keep_matrix(k, n, seed=1)
    shadow = rng.standard_normal((k, n, 1)) + keep[:, :, None]
    target = rng.standard_normal((n, 1))
    low, high = best(lambda: memia.attack_scores("lira-online", keep, shadow, target))
    print(f"LiRA online, {k} x {n:,}: fit + score {low:.2f} - {high:.2f} s")
    if baselines:
        from scipy.stats import norm

        start = time.perf_counter()
        ins = np.array([shadow[keep[:, j], j, :] for j in range(n)])
        outs = np.array([shadow[~keep[:, j], j, :] for j in range(n)])
        mu_in, mu_out = np.median(ins, 1), np.median(outs, 1)
        sd_in, sd_out = np.std(ins, 1), np.std(outs, 1)
        reference = (-norm.logpdf(target, mu_in, sd_in + 1e-30)
                     + norm.logpdf(target, mu_out, sd_out + 1e-30)).mean(1)
        print(f"  numpy reference (numpy_lira.py's computation): "
              f"{time.perf_counter() - start:.1f} s")
        del ins, outs
        ours = memia.attack_scores("lira-online", keep, shadow, target)
        # memia's score is the reference's with the sign that makes higher mean member.
        np.testing.assert_allclose(ours, -reference, rtol=1e-9, atol=1e-9)
    del shadow

    m = 10_000_000
    members = rng.random(m) < 0.5
    scores = rng.standard_normal(m) + 0.5 * members
    low, high = best(lambda: memia.auroc(scores, members))
    print(f"AUROC, {m:,} scores (memia.auroc): {low * 1e3:.0f} - {high * 1e3:.0f} ms")
    if baselines:
        from sklearn.metrics import roc_auc_score

        low, high = best(lambda: roc_auc_score(members, scores))
        print(f"  scikit-learn roc_auc_score: {low * 1e3:.0f} - {high * 1e3:.0f} ms")
        assert abs(roc_auc_score(members, scores) - memia.auroc(scores, members)) < 1e-12
    low, high = best(lambda: memia.Roc(scores[:1_000_000], members[:1_000_000]).auroc)
    print(f"ROC curve, 1,000,000 scores (memia.Roc): {low * 1e3:.0f} - {high * 1e3:.0f} ms")


if __name__ == "__main__":
    main()

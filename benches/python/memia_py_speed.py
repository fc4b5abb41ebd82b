"""memia for Python against the same Rust calls (issue 25, item 6): online LiRA (per-example
variance) fitted and scored on 256 shadow models x 1,000,000 samples, and AUROC on 10^7 scores,
the sizes of benches/lira.rs and benches/metrics.rs (same distributions, numpy's RNG). Best of
three after a warm-up; run `cargo bench --bench lira` and `--bench metrics` beside it, interleaved.

    python3 benches/python/memia_py_speed.py        # with the memia wheel installed
"""

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
    rng = np.random.default_rng(1)
    k, n = 256, 1_000_000
    keep = memia.keep_matrix(k, n, seed=1)
    shadow = rng.standard_normal((k, n, 1)) + keep[:, :, None]
    target = rng.standard_normal((n, 1))
    low, high = best(lambda: memia.attack_scores("lira-online", keep, shadow, target))
    print(f"LiRA online, {k} x {n:,}: fit + score {low:.2f} - {high:.2f} s")
    del shadow

    m = 10_000_000
    members = rng.random(m) < 0.5
    scores = rng.standard_normal(m) + 0.5 * members
    low, high = best(lambda: memia.auroc(scores, members))
    print(f"AUROC, {m:,} scores (memia.auroc): {low * 1e3:.0f} - {high * 1e3:.0f} ms")
    low, high = best(lambda: memia.Roc(scores[:1_000_000], members[:1_000_000]).auroc)
    print(f"ROC curve, 1,000,000 scores (memia.Roc): {low * 1e3:.0f} - {high * 1e3:.0f} ms")


if __name__ == "__main__":
    main()

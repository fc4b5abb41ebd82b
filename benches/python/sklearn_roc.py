"""The scikit-learn side of docs/PERFORMANCE.md: roc_auc_score and roc_curve on Gaussian scores
(members shifted by 0.5), the same sizes and distribution as benches/metrics.rs.
Run: python3 benches/python/sklearn_roc.py   (needs numpy, scikit-learn)
"""
import time, numpy as np, sklearn
from sklearn.metrics import roc_auc_score, roc_curve
rng = np.random.default_rng(42)
for n in [10**6, 10**7]:
    m = rng.random(n) < 0.5
    s = rng.standard_normal(n) + 0.5 * m
    ts = []
    for _ in range(3 if n == 10**7 else 5):
        t = time.perf_counter(); roc_auc_score(m, s); ts.append(time.perf_counter() - t)
    print(f"roc_auc_score n={n}: best {min(ts)*1e3:.0f} ms, median {np.median(ts)*1e3:.0f} ms")
    if n == 10**6:
        ts = []
        for _ in range(5):
            t = time.perf_counter(); roc_curve(m, s, drop_intermediate=False); ts.append(time.perf_counter() - t)
        print(f"roc_curve(drop_intermediate=False) n={n}: best {min(ts)*1e3:.0f} ms")
print("sklearn", sklearn.__version__, "numpy", np.__version__)

"""The numpy side of docs/PERFORMANCE.md: online LiRA (per-example variance, median) for 256
shadow models x 1,000,000 samples, one query, with the reference plot.py's computation
(re-implemented: per-sample IN/OUT split in a Python loop, np.median / np.std over models,
scipy.stats.norm.logpdf), the same shapes as benches/lira.rs.
Run: python3 benches/python/numpy_lira.py   (needs numpy, scipy; about 8 GB of memory)
"""
import time

import numpy as np
from scipy.stats import norm

K, N = 256, 1_000_000
rng = np.random.default_rng(1)
# Balanced keep: every sample IN for exactly half the models.
keep = rng.random((K, N)).argsort(0) < K // 2
scores = rng.standard_normal((K, N, 1)) + keep[:, :, None]
target = rng.standard_normal((N, 1))

t = time.perf_counter()
ins = np.array([scores[keep[:, j], j, :] for j in range(N)])
outs = np.array([scores[~keep[:, j], j, :] for j in range(N)])
t_split = time.perf_counter() - t
mu_in, mu_out = np.median(ins, 1), np.median(outs, 1)
sd_in, sd_out = np.std(ins, 1), np.std(outs, 1)
prediction = (-norm.logpdf(target, mu_in, sd_in + 1e-30) + norm.logpdf(target, mu_out, sd_out + 1e-30)).mean(1)
total = time.perf_counter() - t
print(f"numpy online LiRA 256x1000000: {total:.1f} s (of which the per-sample split {t_split:.1f} s)")

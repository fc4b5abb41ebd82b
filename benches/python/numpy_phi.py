"""The numpy side of docs/PERFORMANCE.md: phi with the LiRA reference scorer's arithmetic
(score.py: float32 shift and exp, float64 normalisation, log(p + 1e-45)), re-implemented here, over
a 64 x 50,000 x 10 float32 logit array, one model at a time as score.py works, as benches/signals.rs.
Run: python3 benches/python/numpy_phi.py   (needs numpy)
"""
import time

import numpy as np

K, N, A, C = 64, 50000, 1, 10
rng = np.random.default_rng(7)
logits = (4 * rng.standard_normal((K, N, A, C))).astype(np.float32)
labels = np.arange(N) % C
rows = np.arange(N)


def reference_phi(model_logits):
    e = np.exp(model_logits - model_logits.max(axis=-1, keepdims=True)).astype(np.float64)
    p = e / e.sum(axis=-1, keepdims=True)
    p_true = p[rows, :, labels]
    p[rows, :, labels] = 0.0
    return np.log(p_true + 1e-45) - np.log(p.sum(axis=-1) + 1e-45)


ts = []
for _ in range(3):
    t = time.perf_counter()
    out = [reference_phi(logits[k]) for k in range(K)]
    ts.append(time.perf_counter() - t)
print(f"reference-arithmetic phi, 64x50000x10: best {min(ts)*1e3:.0f} ms")

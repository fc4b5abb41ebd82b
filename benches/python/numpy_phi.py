"""The numpy side of docs/PERFORMANCE.md: the LiRA reference score.py computation of phi over a
64 x 50,000 x 10 float32 logit array (one model at a time, as score.py does), as benches/signals.rs.
Run: python3 benches/python/numpy_phi.py   (needs numpy, scipy)
"""
import time, numpy as np
from scipy.special import logsumexp
K, N, A, C = 64, 50000, 1, 10
rng = np.random.default_rng(7)
logits = (4 * rng.standard_normal((K, N, A, C))).astype(np.float32)
labels = np.arange(N) % C
def reference_phi(opredictions):  # score.py, one model (N, 1, A, C)
    predictions = opredictions - np.max(opredictions, axis=3, keepdims=True)
    predictions = np.array(np.exp(predictions), dtype=np.float64)
    predictions = predictions / np.sum(predictions, axis=3, keepdims=True)
    COUNT = predictions.shape[0]
    y_true = predictions[np.arange(COUNT), :, :, labels[:COUNT]]
    predictions[np.arange(COUNT), :, :, labels[:COUNT]] = 0
    y_wrong = np.sum(predictions, axis=3)
    return np.log(y_true.mean((1)) + 1e-45) - np.log(y_wrong.mean((1)) + 1e-45)
ts = []
for _ in range(3):
    t = time.perf_counter()
    out = [reference_phi(logits[k][:, None]) for k in range(K)]
    ts.append(time.perf_counter() - t)
print(f"score.py phi, 64x50000x10: best {min(ts)*1e3:.0f} ms")

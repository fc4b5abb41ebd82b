"""The numpy side of docs/PERFORMANCE.md: Feldman-Zhang memorization for 256 models x 1,000,000
samples with the formula of google-research/heldout-influence-estimation (masked means), the same
shapes and dtypes as benches/memorization.rs (float32 0/1 outcomes, bool keep).
Run: python3 benches/python/numpy_memorization.py   (needs numpy; about 3 GB of memory)
"""
import time
import numpy as np

K, N = 256, 1_000_000
rng = np.random.default_rng(3)
keep = rng.random((K, N), dtype=np.float32) < 0.5
correct = (rng.random((K, N), dtype=np.float32) < np.where(keep, 0.95, 0.8)).astype(np.float32)


def masked_mean(x, mask):
    # The reference estimator: sum over the masked models / max(count, 1e-10), as float32.
    return (np.sum(x * mask, axis=0) / np.maximum(mask.sum(axis=0), 1e-10)).astype(np.float32)


ts = []
for _ in range(3):
    t = time.perf_counter()
    inv = np.logical_not(keep)
    mem = masked_mean(correct, keep) - masked_mean(correct, inv)
    ts.append(time.perf_counter() - t)
print(f"numpy masked-mean memorization 256x1000000: best {min(ts)*1e3:.0f} ms (no standard errors)")

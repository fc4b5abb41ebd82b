"""Trains one model per row of a memia plan's keep matrix, outside memia, and writes what
`memia import` reads: the stand-in, in numpy alone, for your own trainer (train_torch.py is the
same in PyTorch). memia's CI runs this script end to end (crates/memia-cli/tests/cli.rs).

    memia export-pool RUN -o pool.npz
    python3 train_numpy.py pool.npz OUT [EPOCHS]
    memia import --keep OUT/keep.npy --logits OUT/logits --labels OUT/y.npy \
        --groups OUT/groups.json -o RUN-imported

pool.npz holds x (N x sample shape, float32), y (N int64), keep (K x N bool) and one
group_<name> index array per group. OUT receives logits/model_00000.npy ... (each N x 1 x C
float32: the model's logits on every pool sample, one query), keep.npy, y.npy, groups.json.
The models are small networks in plain numpy: a random ReLU layer of 1,024 units (fixed, drawn
from the model's own seed) under a softmax layer trained by full-batch gradient descent, enough
capacity to memorize mislabeled samples as a trained MLP does.
"""
import json
import os
import sys

import numpy as np


def main():
    pool_path, out = sys.argv[1], sys.argv[2]
    epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    pool = np.load(pool_path)
    x = pool["x"].reshape(len(pool["x"]), -1).astype(np.float64)
    y, keep = pool["y"], pool["keep"]
    classes = int(y.max()) + 1
    os.makedirs(os.path.join(out, "logits"), exist_ok=True)
    for k, row in enumerate(keep):
        logits = train_model(x, y, row, k, classes, epochs)  # one seed per model
        np.save(os.path.join(out, "logits", f"model_{k:05}.npy"), logits)
    write_pool_files(pool, out)
    print(f"trained {len(keep)} models on {len(y)} samples into {out}")


def train_model(x, y, row, seed, classes, epochs):
    """One model trained on the samples where `row` is true; its N x 1 x C float32 logits on
    every sample. Shared with ../external/train_numpy.py."""
    rng = np.random.default_rng(seed)
    features = rng.normal(0.0, 1.0 / np.sqrt(x.shape[1]), (x.shape[1], 1024))
    shift = rng.normal(0.0, 0.1, 1024)
    h = np.maximum(x @ features + shift, 0.0)
    xs, onehot = h[row], np.eye(classes)[y[row]]
    w, b = np.zeros((h.shape[1], classes)), np.zeros(classes)
    for _ in range(epochs):
        z = xs @ w + b
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        grad = (p - onehot) / len(xs)
        w -= 0.5 * xs.T @ grad
        b -= 0.5 * grad.sum(axis=0)
    return (h @ w + b).astype(np.float32)[:, None, :]


def write_pool_files(pool, out):
    """What `memia import` reads besides the logits, from the exported pool: OUT/keep.npy,
    OUT/y.npy and OUT/groups.json (shared with train_torch.py)."""
    np.save(os.path.join(out, "keep.npy"), pool["keep"])
    np.save(os.path.join(out, "y.npy"), pool["y"])
    groups = [
        {"name": key[len("group_"):], "samples": pool[key].tolist()}
        for key in pool.files
        if key.startswith("group_")
    ]
    with open(os.path.join(out, "groups.json"), "w") as f:
        json.dump(groups, f)


if __name__ == "__main__":
    main()

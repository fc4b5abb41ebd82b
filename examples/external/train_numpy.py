"""One shadow model for memia's external-trainer mechanism, in numpy alone: the stand-in that
memia's CI runs (under Slurm too) for your own trainer (train_torch.py is the PyTorch one).

    [train]
    external = "python3 examples/external/train_numpy.py --pool {pool} --indices {indices} --seed {seed} --out {out}"

memia writes the pool once (pool.npz: x, N x sample shape float32; y, N int64; classes) and each model's
training indices (int64 .npy); this script trains that model (the network of
../byo/train_numpy.py: a fixed random ReLU layer under a trained softmax layer) and writes its
logits on every pool sample to --out, N x 1 x C float32. MEMIA_EXTERNAL_SLEEP (seconds) makes it
slow on purpose, for the tests that cancel a job mid-way.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "byo"))
from train_numpy import train_model  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", required=True)
    parser.add_argument("--indices", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--epochs", type=int, default=100)
    args = parser.parse_args()
    pool = np.load(args.pool)
    x = pool["x"].reshape(len(pool["x"]), -1).astype(np.float64)
    y = pool["y"]
    row = np.zeros(len(y), dtype=bool)
    row[np.load(args.indices)] = True
    classes = int(pool["classes"][0])
    time.sleep(float(os.environ.get("MEMIA_EXTERNAL_SLEEP", "0")))
    # numpy seeds take 64-bit values as they are.
    logits = train_model(x, y, row, args.seed, classes, args.epochs)
    np.save(args.out, logits)


if __name__ == "__main__":
    main()

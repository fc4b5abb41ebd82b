"""The PyTorch version of train_numpy.py: one MLP per row of a memia plan's keep matrix, trained
on the pool `memia export-pool` wrote, each model's logits on the whole pool saved for
`memia import`. Same command line and outputs as train_numpy.py:

    python3 train_torch.py pool.npz OUT [EPOCHS]

Not run in memia's CI (PyTorch is not installed there); train_numpy.py, with the same inputs and
outputs, is. Replace `make_model` with your own architecture.
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_numpy import write_pool_files  # noqa: E402  (keep.npy, y.npy, groups.json)


def make_model(inputs, classes):
    return torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(inputs, 128), torch.nn.ReLU(), torch.nn.Linear(128, classes)
    )


def main():
    pool_path, out = sys.argv[1], sys.argv[2]
    epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 30
    pool = np.load(pool_path)
    x = torch.from_numpy(pool["x"].astype(np.float32))
    y = torch.from_numpy(pool["y"].astype(np.int64))
    keep = pool["keep"]
    classes = int(y.max()) + 1
    inputs = int(np.prod(x.shape[1:]))
    os.makedirs(os.path.join(out, "logits"), exist_ok=True)
    for k, row in enumerate(keep):
        torch.manual_seed(k)  # one seed per model: its initialisation and minibatch order
        model = make_model(inputs, classes)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
        train = torch.utils.data.TensorDataset(x[torch.from_numpy(row)], y[torch.from_numpy(row)])
        loader = torch.utils.data.DataLoader(train, batch_size=128, shuffle=True)
        model.train()
        for _ in range(epochs):
            for xb, yb in loader:
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(xb), yb).backward()
                opt.step()
        model.eval()
        with torch.no_grad():
            logits = model(x).numpy().astype(np.float32)[:, None, :]
        np.save(os.path.join(out, "logits", f"model_{k:05}.npy"), logits)
    write_pool_files(pool, out)
    print(f"trained {len(keep)} models on {len(y)} samples into {out}")


if __name__ == "__main__":
    main()

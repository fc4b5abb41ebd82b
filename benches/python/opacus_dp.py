"""DP-SGD throughput in Opacus, for comparison with
`cargo run --release --example shadow_throughput dp` (same workload).

MLP 784-128-10 on 5,000-sample subsets of the MNIST test set, one epoch of DP-SGD each: Poisson
sampling at rate 128 / 5000 (40 steps), per-sample clipping to norm 1.0, noise multiplier 1.1,
SGD momentum 0.9, weight decay 5e-4, learning rate 0.05; K = 8 models. Opacus trains one model
at a time (it has no ensemble mode), on PyTorch's threads (all cores).

Opacus's grad-sample modes are all tried and each is reported; its best is what
benches/compare.sh compares with:
* hooks: per-sample gradients from module hooks (Opacus's default);
* ew: expanded weights (torch.nn.utils._expanded_weights);
* functorch: torch.func vmap of per-sample gradients;
* ghost: fast gradient clipping (per-sample norms without per-sample gradients, as memia).
The data sit in memory as one TensorDataset (no decoding, no workers). Each mode is warmed up
on one model, then timed three times over the K models; the best time is reported as a
`RESULT dp K opacus-MODE models/s` line.

Install: pip install torch numpy opacus. Run: python benches/python/opacus_dp.py [DATA_DIR].
"""
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine  # noqa: E402
from torch_jax_ensemble import load_mnist, subsets  # noqa: E402

B, H, C, LR, MOM, WD = 128, 128, 10, 0.05, 0.9, 5e-4
CLIP, NOISE, K = 1.0, 1.1, 8


def train_one(x, y, subset, mode, seed):
    import torch
    from opacus import PrivacyEngine
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(784, H), torch.nn.ReLU(), torch.nn.Linear(H, C))
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOM, weight_decay=WD)
    data = TensorDataset(x[subset], y[subset])
    loader = DataLoader(data, batch_size=B)
    criterion = torch.nn.CrossEntropyLoss()
    engine = PrivacyEngine(accountant="rdp")
    made = engine.make_private(
        module=model,
        optimizer=optimizer,
        criterion=criterion,
        data_loader=loader,
        noise_multiplier=NOISE,
        max_grad_norm=CLIP,
        poisson_sampling=True,
        grad_sample_mode=mode,
    )
    if mode == "ghost":
        model, optimizer, criterion, loader = made
    else:
        model, optimizer, loader = made
    for xb, yb in loader:
        if len(yb) == 0:
            continue
        optimizer.zero_grad()
        loss = criterion(model(xb), yb)
        loss.backward()
        optimizer.step()


def main():
    import torch

    warnings.filterwarnings("ignore")
    data = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("MEMIA_DATA_DIR", "../shared/data")
    os.environ.setdefault("MEMIA_DATA_DIR", data)
    machine.report(torch)
    x, y = load_mnist()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    subs = [torch.from_numpy(s) for s in subsets(K, len(x), np.random.default_rng(0))]
    print(f"Opacus DP-SGD, MLP 784-{H}-{C}, {K} models one by one, torch threads {torch.get_num_threads()}")
    for mode in ["hooks", "ew", "functorch", "ghost"]:
        try:
            train_one(xt, yt, subs[0], mode, 0)  # warm-up
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                for k, s in enumerate(subs):
                    train_one(xt, yt, s, mode, k)
                best = min(best, time.perf_counter() - start)
            print(f"  {mode:10s} {K / best:8.2f} models/s")
            print(f"RESULT dp {K} opacus-{mode} {K / best:.4f}")
        except Exception as e:  # a mode this Opacus or PyTorch lacks
            print(f"  {mode:10s} skipped: {type(e).__name__}: {e}")


if __name__ == "__main__":
    main()

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
And, as a PyTorch expert would write it without Opacus, "by-hand": the same DP-SGD in plain
tensor operations (Poisson mask, the two layers' backward by hand, per-sample norms from the
layers' inputs and output gradients, clipping, noise, SGD with momentum and weight decay), no
autograd, no data loader.
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


def train_by_hand(x, y, subset, seed):
    import torch

    g = torch.Generator().manual_seed(seed)
    xs, ys = x[subset], y[subset]
    n = len(subset)
    q, steps = B / n, -(-n // B)
    bound1, bound2 = 1 / 784 ** 0.5, 1 / H ** 0.5
    w1 = (torch.rand(H, 784, generator=g) * 2 - 1) * bound1
    b1 = (torch.rand(H, generator=g) * 2 - 1) * bound1
    w2 = (torch.rand(C, H, generator=g) * 2 - 1) * bound2
    b2 = (torch.rand(C, generator=g) * 2 - 1) * bound2
    params = [w1, b1, w2, b2]
    moments = [torch.zeros_like(p) for p in params]
    sd = NOISE * CLIP / B
    for _ in range(steps):
        mask = torch.rand(n, generator=g) < q
        xb, yb = xs[mask], ys[mask]
        h = torch.relu(torch.addmm(b1, xb, w1.T))
        dz = torch.softmax(torch.addmm(b2, h, w2.T), dim=1)
        dz[torch.arange(len(yb)), yb] -= 1.0
        dh = (dz @ w2) * (h > 0)
        norms = ((xb * xb).sum(1) + 1) * (dh * dh).sum(1) + ((h * h).sum(1) + 1) * (dz * dz).sum(1)
        scale = (CLIP / norms.sqrt()).clamp(max=1.0) / B
        dz *= scale[:, None]
        dh *= scale[:, None]
        grads = [dh.T @ xb, dh.sum(0), dz.T @ h, dz.sum(0)]
        for p, m, gr in zip(params, moments, grads):
            gr += sd * torch.randn(gr.shape, generator=g)
            gr += WD * p
            m.mul_(MOM).add_(gr)
            p.sub_(LR * m)


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
    for mode in ["hooks", "ew", "functorch", "ghost", "by-hand"]:
        one = train_by_hand if mode == "by-hand" else (lambda x, y, s, seed, m=mode: train_one(x, y, s, m, seed))
        try:
            one(xt, yt, subs[0], 0)  # warm-up
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                for k, s in enumerate(subs):
                    one(xt, yt, s, k)
                best = min(best, time.perf_counter() - start)
            print(f"  {mode:10s} {K / best:8.2f} models/s")
            label = "torch-by-hand" if mode == "by-hand" else f"opacus-{mode}"
            print(f"RESULT dp {K} {label} {K / best:.4f}")
        except Exception as e:  # a mode this Opacus or PyTorch lacks
            print(f"  {mode:10s} skipped: {type(e).__name__}: {e}")


if __name__ == "__main__":
    main()

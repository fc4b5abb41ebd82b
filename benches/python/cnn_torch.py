"""CNN shadow-model training throughput in PyTorch, for comparison with
`cargo run --release --example shadow_throughput -- cnn` (same workload, same FLOP count).

memia's LeNet-style CNN (`[model.cnn] channels = [6, 16], kernel = 5, hidden = [120, 84]`):
5x5 "same" convolutions, ReLU, 2x2 max pooling, dense 1024-120-84-10. K models, each one epoch
on its 2,500-image half of 5,000 CIFAR-10 images (../shared/data/cifar10-test-jpeg.bin.gz),
SGD momentum 0.9, learning rate 0.05, batch 128, then its logits on the 5,000 images:
* one by one: nn.Sequential per model;
* grouped-convolution ensemble: the K models as one network whose convolutions have K groups and
  whose dense layers are `bmm`s, each model its own minibatch, the loss the sum of the models'
  mean cross-entropies;
* torch.func vmap of one model's functional step over the K models.
GFLOP/s counts the multiply-adds of the forward pass (x2), times 3 for a training step, as the
Rust example does.

With `resnet` as the first argument, memia's small ResNet instead (`ResNetConfig::small`: a 3x3
stem of 16 channels, one residual block per stage of 16, 32 and 64 channels, two 3x3
convolutions each and a strided 1x1 projection where the resolution halves, no normalisation,
global average pooling, a linear layer) on 2,000 images (1,000-image halves), K = 8, one by one
and vmap (the grouped-convolution mode is the LeNet's only), as `shadow_throughput resnet`.

Fair to PyTorch (issue 28): the machine's CPU, vector extensions and sgemm rate are printed
first (machine.py); every mode is warmed up (the one-time set-up of the convolution primitives
stays out of the timing) and timed RUNS times (default 2), the best reported; the pool's logits
are computed in batches of the size that is fastest for PyTorch on this machine, chosen by timing
one model's inference at several sizes (printed). Each result is also printed as a
`RESULT workload K mode models/s` line for benches/compare.sh.

Install: pip install torch numpy. Run: python benches/python/cnn_torch.py [resnet] [DATA_DIR]
[K ...] (default $MEMIA_DATA_DIR, K = 8 32). Threads: all cores, as Rust's rayon pool.
"""
import gzip
import os
import sys
import time

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine  # noqa: E402

RESNET = len(sys.argv) > 1 and sys.argv[1] == "resnet"
ARGS = sys.argv[2:] if RESNET else sys.argv[1:]
DATA = ARGS[0] if ARGS else os.environ.get("MEMIA_DATA_DIR", "../shared/data")
KS = [int(k) for k in ARGS[1:]] or ([8] if RESNET else [8, 32])
N, B, LR, MOM, C = (2000 if RESNET else 5000), 128, 0.05, 0.9, 10
RUNS = int(os.environ.get("RUNS", "2"))
LOGITS_BATCH = 500  # replaced by the fastest size measured in main()


def load_cifar():
    with gzip.open(os.path.join(DATA, "cifar10-test-jpeg.bin.gz")) as f:
        raw = np.frombuffer(f.read(), np.uint8).reshape(-1, 3073)[:N]
    x = raw[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0
    x = (x - x.mean(axis=(0, 2, 3), keepdims=True)) / x.std(axis=(0, 2, 3), keepdims=True)
    return torch.from_numpy(x), torch.from_numpy(raw[:, 0].astype(np.int64))


def forward_macs():
    if RESNET:
        stem = 32 * 32 * 16 * 3 * 9
        block1 = 32 * 32 * 16 * (16 * 9 + 16 * 9)
        block2 = 16 * 16 * 32 * (16 * 9 + 32 * 9 + 16)
        block3 = 8 * 8 * 64 * (32 * 9 + 64 * 9 + 32)
        return stem + block1 + block2 + block3 + 64 * C
    conv1 = 32 * 32 * 6 * 3 * 25
    conv2 = 16 * 16 * 16 * 6 * 25
    dense = 1024 * 120 + 120 * 84 + 84 * 10
    return conv1 + conv2 + dense


def gflops(k, seconds):
    train = 3 * 2 * forward_macs() * (N // 2) * k
    infer = 2 * forward_macs() * N * k
    return (train + infer) / seconds / 1e9


def lenet():
    return nn.Sequential(
        nn.Conv2d(3, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1024, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, C),
    )


class Block(nn.Module):
    """A residual block without normalisation: relu(conv2(relu(conv1(x))) + skip(x))."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.proj = nn.Conv2d(cin, cout, 1, stride) if stride != 1 or cin != cout else None

    def forward(self, x):
        skip = x if self.proj is None else self.proj(x)
        return torch.relu(self.conv2(torch.relu(self.conv1(x))) + skip)


def resnet():
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, 1, 1), nn.ReLU(),
        Block(16, 16, 1), Block(16, 32, 2), Block(32, 64, 2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, C),
    )


def network():
    return resnet() if RESNET else lenet()


def halves(k, rng):
    return [torch.from_numpy(np.sort(rng.choice(N, N // 2, replace=False))) for _ in range(k)]


def one_by_one(x, y, k, rng):
    subs = halves(k, rng)
    start = time.perf_counter()
    for s in subs:
        model = network()
        opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOM)
        order = s[torch.randperm(len(s))]
        for i in range(0, len(order), B):
            idx = order[i:i + B]
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
        with torch.no_grad():
            for i in range(0, N, LOGITS_BATCH):
                model(x[i:i + LOGITS_BATCH])
    return time.perf_counter() - start


class Grouped(nn.Module):
    """K LeNets as one network: grouped convolutions, batched dense layers."""

    def __init__(self, k):
        super().__init__()
        self.k = k
        self.conv1 = nn.Conv2d(3 * k, 6 * k, 5, padding=2, groups=k)
        self.conv2 = nn.Conv2d(6 * k, 16 * k, 5, padding=2, groups=k)
        self.w = nn.ParameterList(
            [nn.Parameter(torch.randn(k, i, o) / i ** 0.5) for i, o in [(1024, 120), (120, 84), (84, C)]]
        )
        self.b = nn.ParameterList([nn.Parameter(torch.zeros(k, 1, o)) for o in (120, 84, C)])

    def forward(self, xb):  # xb [K, b, 3, 32, 32]
        k, b = xb.shape[:2]
        h = xb.transpose(0, 1).reshape(b, k * 3, 32, 32)
        h = nn.functional.max_pool2d(torch.relu(self.conv1(h)), 2)
        h = nn.functional.max_pool2d(torch.relu(self.conv2(h)), 2)
        h = h.reshape(b, k, 1024).transpose(0, 1)  # [K, b, 1024]
        for i, (w, bias) in enumerate(zip(self.w, self.b)):
            h = torch.bmm(h, w) + bias
            if i < 2:
                h = torch.relu(h)
        return h


def grouped(x, y, k, rng):
    subs = halves(k, rng)
    model = Grouped(k)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOM)
    orders = [s[torch.randperm(len(s))] for s in subs]
    start = time.perf_counter()
    for i in range(0, N // 2, B):
        idx = torch.stack([o[i:i + B] for o in orders])  # [K, b]
        opt.zero_grad()
        logits = model(x[idx])
        loss = sum(nn.functional.cross_entropy(logits[m], y[idx[m]]) for m in range(k))
        loss.backward()
        opt.step()
    with torch.no_grad():
        for i in range(0, N, LOGITS_BATCH):
            model(x[i:i + LOGITS_BATCH].unsqueeze(0).expand(k, -1, -1, -1, -1))
    return time.perf_counter() - start


def vmapped(x, y, k, rng):
    from torch.func import functional_call, grad, stack_module_state, vmap

    models = [network() for _ in range(k)]
    params, buffers = stack_module_state(models)
    base = network().to("meta")

    def loss(p, b, xb, yb):
        return nn.functional.cross_entropy(functional_call(base, (p, b), (xb,)), yb)

    step = vmap(grad(loss), in_dims=(0, 0, 0, 0))
    predict = vmap(lambda p, b, xb: functional_call(base, (p, b), (xb,)), in_dims=(0, 0, None))
    velocity = {n: torch.zeros_like(v) for n, v in params.items()}
    subs = halves(k, rng)
    orders = [s[torch.randperm(len(s))] for s in subs]
    start = time.perf_counter()
    for i in range(0, N // 2, B):
        idx = torch.stack([o[i:i + B] for o in orders])
        grads = step(params, buffers, x[idx], y[idx])
        with torch.no_grad():
            for n in params:
                velocity[n].mul_(MOM).add_(grads[n])
                params[n] -= LR * velocity[n]
    with torch.no_grad():
        for i in range(0, N, LOGITS_BATCH):
            predict(params, buffers, x[i:i + LOGITS_BATCH])
    return time.perf_counter() - start


def fastest_logits_batch(x):
    """The batch size at which one model computes the pool's logits fastest here (best of 3
    after a warm-up at each size)."""
    model = network()
    timings = {}
    with torch.no_grad():
        for size in sorted({s for s in (50, 100, 250, 500, 1000, 2500) if s < N} | {N}):
            def infer():
                for i in range(0, N, size):
                    model(x[i:i + size])
            infer()
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                infer()
                best = min(best, time.perf_counter() - start)
            timings[size] = best
    chosen = min(timings, key=timings.get)
    shown = ", ".join(f"{size}: {t * 1e3:.0f} ms" for size, t in timings.items())
    print(f"logits of {N} images by one model, by batch size: {shown}; using {chosen}")
    return chosen


def main():
    global LOGITS_BATCH
    torch.manual_seed(0)
    machine.report(torch)
    x, y = load_cifar()
    workload = "resnet" if RESNET else "cnn"
    model = "ResNet" if RESNET else "LeNet-style CNN"
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads; {model}, {N} CIFAR-10 "
          f"images; each mode warmed up, then the best of {RUNS} runs")
    LOGITS_BATCH = fastest_logits_batch(x)
    modes = [("one by one", one_by_one), ("grouped conv", grouped), ("vmap", vmapped)]
    if RESNET:
        modes.pop(1)
    for k in KS:
        for name, run in modes:
            try:
                # Warm-up: the same shapes (one by one: two models are enough to set up every
                # primitive), untimed.
                run(x, y, min(k, 2) if run is one_by_one else k, np.random.default_rng(k + 1))
                times = [run(x, y, k, np.random.default_rng(k)) for _ in range(RUNS)]
            except Exception as e:  # vmap may not support an operation on this version
                print(f"K={k:>3} {name:<13} failed: {e}")
                continue
            seconds = min(times)
            print(
                f"K={k:>3} {name:<13} {seconds:7.2f} s  {k / seconds:6.2f} models/s  "
                f"{gflops(k, seconds):6.1f} GFLOP/s  (runs: "
                f"{', '.join(f'{t:.2f}' for t in times)} s)"
            )
            print(f"RESULT {workload} {k} {name.replace(' ', '-')} {k / seconds:.4f}")


if __name__ == "__main__":
    main()

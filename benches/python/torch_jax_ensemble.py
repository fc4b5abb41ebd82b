"""Shadow-model training throughput in PyTorch and JAX, for comparison with
`cargo run --release --example shadow_throughput` (same workload, same FLOP count).

MLP 784-128-10, SGD momentum 0.9, weight decay 5e-4, learning rate 0.05, batch 128, one epoch
on 5,000-sample subsets (fixed_size 0.5) of the MNIST test set, for K = 8 and K = 32 models:
* PyTorch `bmm` ensemble: parameters stacked [K, ...], each model its own minibatch (gathered
  with index_select), the loss the sum of the models' mean cross-entropies; torch.optim.SGD;
* PyTorch one by one: nn.Sequential(Linear, ReLU, Linear) per model;
* JAX `vmap` of one model's SGD step over K models, jitted.
GFLOP/s = 6 x 128 x (784*128 + 128*10) x (steps of all models) / seconds, as the Rust example.

Each mode is warmed up and timed three times, the best reported; the machine's CPU, vector
extensions and sgemm rate come first (machine.py), and each result also as a
`RESULT mlp K mode models/s` line for benches/compare.sh. JAX is optional (skipped, and said,
where it is not installed).

Install: pip install torch numpy [jax jaxlib]. Run: python benches/python/torch_jax_ensemble.py
[DATA_DIR] (default $MEMIA_DATA_DIR). Threads: all cores (2 here), as Rust's rayon pool.
"""
import gzip
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine  # noqa: E402

DATA = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("MEMIA_DATA_DIR", "../shared/data")
B, H, C, LR, MOM, WD = 128, 128, 10, 0.05, 0.9, 5e-4


def load_mnist():
    with gzip.open(os.path.join(DATA, "mnist-t10k-images-idx3-ubyte.gz")) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784).astype(np.float32) / 255
    with gzip.open(os.path.join(DATA, "mnist-t10k-labels-idx1-ubyte.gz")) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    return x, y


def subsets(k, n, rng):
    return [np.sort(rng.choice(n, n // 2, replace=False)) for _ in range(k)]


def flops(k, n):
    steps = k * -(-(n // 2) // B)
    return 6.0 * B * (784 * H + H * C) * steps


def torch_bmm(x, y, k, rng):
    import torch

    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    subs = [torch.from_numpy(s) for s in subsets(k, len(x), rng)]
    w1 = (torch.rand(k, 784, H) * 2 - 1) / 28.0
    b1 = torch.zeros(k, 1, H)
    w2 = (torch.rand(k, H, C) * 2 - 1) / H ** 0.5
    b2 = torch.zeros(k, 1, C)
    params = [p.requires_grad_() for p in (w1, b1, w2, b2)]
    opt = torch.optim.SGD(params, lr=LR, momentum=MOM, weight_decay=WD)
    orders = [s[torch.randperm(len(s))] for s in subs]
    steps = -(-len(orders[0]) // B)
    start = time.perf_counter()
    for step in range(steps):
        idx = torch.stack([o[step * B:(step + 1) * B] for o in orders])  # [K, b]
        xb = xt[idx]  # [K, b, 784]
        yb = yt[idx]
        h = torch.relu(torch.baddbmm(b1, xb, w1))
        z = torch.baddbmm(b2, h, w2)
        loss = torch.nn.functional.cross_entropy(z.reshape(-1, C), yb.reshape(-1), reduction="sum") / idx.shape[1]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def torch_one_by_one(x, y, k, rng):
    import torch

    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    subs = [torch.from_numpy(s) for s in subsets(k, len(x), rng)]
    start = time.perf_counter()
    for s in subs:
        model = torch.nn.Sequential(torch.nn.Linear(784, H), torch.nn.ReLU(), torch.nn.Linear(H, C))
        opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOM, weight_decay=WD)
        order = s[torch.randperm(len(s))]
        for step in range(-(-len(order) // B)):
            rows = order[step * B:(step + 1) * B]
            loss = torch.nn.functional.cross_entropy(model(xt[rows]), yt[rows])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return time.perf_counter() - start


def jax_vmap(x, y, k, rng):
    import jax
    import jax.numpy as jnp

    def loss_fn(p, xb, yb):
        h = jax.nn.relu(xb @ p["w1"] + p["b1"])
        z = h @ p["w2"] + p["b2"]
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(z), yb[:, None], 1))

    def step(p, v, xb, yb):
        g = jax.grad(loss_fn)(p, xb, yb)
        g = jax.tree.map(lambda gi, pi: gi + WD * pi, g, p)
        v = jax.tree.map(lambda vi, gi: MOM * vi + gi, v, g)
        p = jax.tree.map(lambda pi, vi: pi - LR * vi, p, v)
        return p, v

    vstep = jax.jit(jax.vmap(step))
    key = jax.random.PRNGKey(0)
    p = {
        "w1": jax.random.uniform(key, (k, 784, H), minval=-1 / 28, maxval=1 / 28),
        "b1": jnp.zeros((k, H)),
        "w2": jax.random.uniform(key, (k, H, C), minval=-H ** -0.5, maxval=H ** -0.5),
        "b2": jnp.zeros((k, C)),
    }
    v = jax.tree.map(jnp.zeros_like, p)
    orders = np.stack([rng.permutation(s) for s in subsets(k, len(x), rng)])  # [K, n/2]
    full = orders.shape[1] // B
    xj, yj = jnp.asarray(x), jnp.asarray(y)
    # Compile outside the timing (full batches; the last partial batch compiles once more).
    p, v = vstep(p, v, xj[orders[:, :B]], yj[orders[:, :B]])
    last = orders[:, full * B:]
    if last.shape[1]:
        vstep(p, v, xj[last], yj[last])[0]["w1"].block_until_ready()
    start = time.perf_counter()
    for s in range(full):
        rows = orders[:, s * B:(s + 1) * B]
        p, v = vstep(p, v, xj[rows], yj[rows])
    if last.shape[1]:
        p, v = vstep(p, v, xj[last], yj[last])
    p["w1"].block_until_ready()
    return time.perf_counter() - start


def main():
    import torch

    machine.report(torch)
    modes = [("pytorch bmm ensemble", torch_bmm), ("pytorch one-by-one", torch_one_by_one)]
    try:
        import jax
        modes.append(("jax vmap", jax_vmap))
        jax_version = jax.__version__
    except ImportError:
        jax_version = "not installed (its mode skipped)"
    x, y = load_mnist()
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), jax {jax_version}, numpy {np.__version__}")
    print(f"{'K':>4} {'mode':>22} {'seconds':>9} {'models/s':>9} {'GFLOP/s':>8}")
    for k in (8, 32):
        for name, fn in modes:
            fn(x, y, k, np.random.default_rng(1))  # warm-up
            best = min(fn(x, y, k, np.random.default_rng(r)) for r in range(3))
            print(f"{k:>4} {name:>22} {best:>9.2f} {k / best:>9.2f} {flops(k, len(x)) / best / 1e9:>8.1f}")
            print(f"RESULT mlp {k} {name.replace(' ', '-')} {k / best:.4f}")


if __name__ == "__main__":
    main()

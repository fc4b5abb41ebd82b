"""A PyTorch researcher's audit with memia, in one script: train a handful of shadow models in
a loop, store each model's logits in a memia run as it finishes, then audit a target model
trained elsewhere and write the report.

    pip install ./crates/memia-py torch
    python examples/python/train_torch_loop.py [--models 16] [--out runs/torch-digits]

The pool is memia's embedded digits (1,700 images) plus 50 mislabeled canaries, built by
memia exactly as `memia plan` builds it (`memia.load_pool`); the models are PyTorch MLPs
(64-128-10). The loop is resumable: a model whose logits are stored is not trained again, so
interrupting the script (Ctrl-C) and running it again loses nothing. memia's CI runs this script
end to end with PyTorch from the package registry.
"""
import argparse
import time

import numpy as np
import torch
from torch import nn

import memia

CONFIG = """
[data]
source = "digits"
samples = 1700
[data.canaries]
kind = "mislabeled"
count = 50
labels = "random"
[plan]
seed = 2026
"""


def train_mlp(x, y, seed, epochs, classes):
    """One MLP trained on (x, y) with minibatch SGD, its own seed."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(x.shape[1], 128), nn.ReLU(), nn.Linear(128, classes))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for batch in torch.randperm(len(x), generator=generator).split(64):
            optimizer.zero_grad()
            loss(model(x[batch]), y[batch]).backward()
            optimizer.step()
    return model


def logits_of(model, x):
    """The model's logits on every pool sample: N x C float32, in batches."""
    with torch.inference_mode():
        return torch.cat([model(b) for b in x.split(1024)]).numpy()


def describe(figures):
    """AUROC and the TPR at 0.1% and 1% FPR, or why a TPR cannot be read (fewer non-members
    than one false positive needs)."""
    if figures is None:
        return "no curve"
    parts = [f"AUROC {figures['auroc']:.3f}"]
    for row in figures["tpr_at_fpr"]:
        if row["fpr"] in (1e-3, 1e-2):
            parts.append(f"TPR@{row['fpr']:.1%} FPR " + (
                f"{row['tpr']:.3f} [{row['tpr_lower']:.3f}, {row['tpr_upper']:.3f}]"
                if row["measurable"] else "not measurable"))
    return ", ".join(parts) + f" ({figures['positives']} in, {figures['negatives']} out)"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=16, help="shadow models (default 16)")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--out", default="runs/torch-digits", help="the run directory")
    parser.add_argument("--report", default=None, help="report directory (default OUT/report)")
    args = parser.parse_args()
    if args.models < 3:
        parser.error("--models: at least 3 (the curve leaves one model out of two or more)")

    pool = memia.load_pool(toml=CONFIG)
    print(pool)
    x = torch.from_numpy(pool.x.reshape(len(pool), -1))
    y = torch.from_numpy(pool.y.astype(np.int64))

    # The shadow models' plan: each trains on a random half of the pool (LiRA's balanced halves).
    keep = memia.keep_matrix(args.models, len(pool), seed=2026)
    run = memia.Run.create(args.out, keep, pool.y, queries=1, classes=pool.classes,
                           name="PyTorch MLPs on memia's digits", groups=pool.groups)
    done = run.completed()
    start = time.monotonic()
    trained = 0
    for k in range(args.models):
        if done[k]:
            continue  # stored by an earlier run of this script
        rows = torch.from_numpy(np.flatnonzero(keep[k]))
        model = train_mlp(x[rows], y[rows], seed=k, epochs=args.epochs, classes=pool.classes)
        run.store(k, logits_of(model, x), producer=f"torch {torch.__version__} MLP 64-128-10")
        trained += 1
        print(f"  model {k} stored ({trained / (time.monotonic() - start):.2f} models/s)")
    print(f"{trained} models trained now, {args.models - trained} found stored")

    # The target: a model trained elsewhere on its own random half; memia attacks it with every
    # shadow model of the run.
    members = np.random.default_rng(7).random(len(pool)) < 0.5
    rows = torch.from_numpy(np.flatnonzero(members))
    target = train_mlp(x[rows], y[rows], seed=10_000, epochs=args.epochs, classes=pool.classes)
    outside = memia.OutsideModel(logits_of(target, x), members=members, name="target MLP")
    report = args.report or f"{args.out}/report"
    summary = run.audit(target=outside, report=report, progress=True,
                        config={"attack": {"method": "lira-online", "global_variance": True},
                                "candidates": {"memorization_at_least": 0.5},
                                "shadow_counts": sorted({c for c in (2, 4, 8)
                                                         if c < args.models - 1}
                                                        | {args.models - 1})})
    print(f"{summary['attack']} on {summary['target_name']} with "
          f"{summary['shadow_models']} shadow models:")
    for name, figures in [("all samples", summary["all"]),
                          ("candidates", summary["candidates"]),
                          ("canaries", summary["groups"]["canaries"])]:
        print(f"  {name:<12} {describe(figures)}")
    mem = summary["memorization"]
    print(f"memorization: mean {mem['mean']:.3f}, {mem['candidates']} candidates "
          f"({mem['candidate_rule']})")
    print(f"report: {report}/index.html")


if __name__ == "__main__":
    main()

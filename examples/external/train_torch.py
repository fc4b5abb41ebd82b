"""One shadow model for memia's external-trainer mechanism, in PyTorch: the LeNet-style CNN or
the MLP of memia's zoo, trained as memia trains them (SGD with momentum, minibatches, a fixed
number of epochs), on the training indices memia gives, with the seed memia gives.

    [train]
    external = "python3 examples/external/train_torch.py --pool {pool} --indices {indices} --seed {seed} --out {out} --model cnn"

Writes the model's logits on every pool sample to --out (N x 1 x C float32 .npy). Not run by
memia's CI (no PyTorch there); examples/external/train_numpy.py is the tested stand-in. Needs
torch and numpy; uses a GPU when one is visible (CUDA_VISIBLE_DEVICES, as Slurm's --gres sets).
"""
import argparse

import numpy as np
import torch
from torch import nn


def network(kind, shape, classes):
    channels, height, width = shape if len(shape) == 3 else (1, *shape)
    if kind == "mlp":
        return nn.Sequential(
            nn.Flatten(), nn.Linear(channels * height * width, 128), nn.ReLU(), nn.Linear(128, classes)
        )
    # memia's `cnn`: 5x5 "same" convolutions with 6 and 16 channels, 2x2 max pooling, 120-84 dense.
    flat = 16 * (height // 4) * (width // 4)
    return nn.Sequential(
        nn.Conv2d(channels, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(flat, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, classes),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", required=True)
    parser.add_argument("--indices", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--model", choices=["cnn", "mlp"], default="cnn")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.05)
    args = parser.parse_args()
    torch.manual_seed(args.seed % 2**63)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    pool = np.load(args.pool)
    x = torch.from_numpy(pool["x"].astype(np.float32))
    if x.ndim == 2:
        x = x[:, None, None, :]
    elif x.ndim == 3:
        x = x[:, None]
    y = torch.from_numpy(pool["y"].astype(np.int64))
    classes = int(pool["classes"][0])
    train = torch.from_numpy(np.load(args.indices).astype(np.int64))
    model = network(args.model, tuple(x.shape[1:]), classes).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    generator = torch.Generator().manual_seed(args.seed % 2**63)
    for _ in range(args.epochs):
        order = train[torch.randperm(len(train), generator=generator)]
        for start in range(0, len(order), args.batch_size):
            batch = order[start:start + args.batch_size]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x[batch].to(device)), y[batch].to(device))
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(x[i:i + 1024].to(device)).cpu() for i in range(0, len(x), 1024)])
    np.save(args.out, logits.numpy().astype(np.float32)[:, None, :])


if __name__ == "__main__":
    main()

"""PyTorch DDP (gloo) training of the tfjs-ddp zoo's Fashion-MNIST models: one rank.

The models match tfjs-ddp's zoo layer for layer: mlp = Flatten, Dense(128, relu), Dense(10);
cnn = Conv(32, 3x3, relu), MaxPool 2, Conv(64, 3x3, relu), MaxPool 2, Flatten, Dense(128, relu),
Dense(10). Adam, the same global batch split evenly over the ranks, a seeded permutation per epoch,
one compute thread per rank. Training time runs from a barrier before the first step to a barrier
after the last step of each epoch; evaluation (rank 0, on the test set) is not part of it.

Rank 0 prints one JSON line: {"torch", "samplesPerSec", "epochs": [{"epoch", "samples", "seconds",
"testAccuracy"?}], "reached"?: {"epoch", "trainSeconds", "wallSeconds"}}.
"""

import argparse
import json
import time

START = time.perf_counter()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn.parallel import DistributedDataParallel  # noqa: E402

from fashion_mnist import load  # noqa: E402


def build(model: str) -> nn.Module:
    if model == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    return nn.Sequential(
        nn.Conv2d(1, 32, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(5 * 5 * 64, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rank", type=int, required=True)
    p.add_argument("--world", type=int, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--model", choices=["mlp", "cnn"], required=True)
    p.add_argument("--data", required=True, help="directory of the Fashion-MNIST .gz files")
    p.add_argument("--train-samples", type=int, default=0, help="the first N training samples (0: all)")
    p.add_argument("--batch", type=int, required=True, help="global batch size")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--target", type=float, default=0.0, help="stop once test accuracy reaches it (0: no evaluation)")
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args()

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    torch.manual_seed(a.seed)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{a.port}", rank=a.rank, world_size=a.world)
    x, y = load(a.data, "train", a.train_samples)
    if a.model == "cnn":
        x = x[:, None, :, :]
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    test = None
    if a.target > 0 and a.rank == 0:
        tx, ty = load(a.data, "t10k")
        test = (torch.from_numpy(tx[:, None, :, :] if a.model == "cnn" else tx), torch.from_numpy(ty))

    model = DistributedDataParallel(build(a.model))
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    loss_fn = nn.CrossEntropyLoss()
    n = len(y)
    per_rank = a.batch // a.world
    if per_rank * a.world != a.batch:
        raise SystemExit(f"--batch {a.batch} must divide evenly over {a.world} ranks")
    epochs = []
    reached = None
    train_seconds = 0.0
    for epoch in range(a.epochs):
        order = torch.from_numpy(np.random.default_rng([a.seed, epoch]).permutation(n))
        dist.barrier()
        t0 = time.perf_counter()
        samples = 0
        for start in range(0, n - a.batch + 1, a.batch):
            idx = order[start + a.rank * per_rank : start + (a.rank + 1) * per_rank]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x[idx]), y[idx]).backward()
            opt.step()
            samples += a.batch
        dist.barrier()
        seconds = time.perf_counter() - t0
        train_seconds += seconds
        record = {"epoch": epoch, "samples": samples, "seconds": seconds}
        stop = torch.zeros(1)
        if test is not None:
            with torch.no_grad():
                pred = model.module(test[0]).argmax(dim=1)
            record["testAccuracy"] = float((pred == test[1]).float().mean())
            if record["testAccuracy"] >= a.target and reached is None:
                reached = {"epoch": epoch, "trainSeconds": train_seconds, "wallSeconds": time.perf_counter() - START}
                stop[0] = 1
        epochs.append(record)
        dist.broadcast(stop, 0)
        if stop[0] == 1:
            break
    # Every rank reaches teardown together: a rank torn down while a peer still talks to it aborts.
    dist.barrier()
    dist.destroy_process_group()
    if a.rank == 0:
        total = sum(e["samples"] for e in epochs)
        out = {"torch": torch.__version__, "samplesPerSec": total / train_seconds, "epochs": epochs}
        if reached:
            out["reached"] = reached
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
